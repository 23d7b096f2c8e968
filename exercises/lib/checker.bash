# exercises/lib/checker.bash - what every exercise checker (exercises/NN-*/check.bats)
# shares. A checker loads it with `load ../lib/checker`.
#
# A checker tests the student's program from the outside, the way tests/ tests
# the steps: port 0, conditions with deadlines, the kernel as the witness, and
# everything killed after each test (tests/harness.bash does that part). When a
# check fails, it says in one or two lines what was expected and what happened.
#
# The program under test is $EX_PROG: `make exercise EX=NN` builds the
# student's file and sets it, and so do make grade and tests/exercises/exercises.bats
# (which point it at a starter or a reference solution). Run by hand:
#   EX_PROG=$PWD/exercises/01-who-is-calling/server EX_SRC=$PWD/exercises/01-who-is-calling/server.c bats exercises/01-who-is-calling/check.bats
# $EX_SRC is the student's source file, for the rare check that can only read
# the source (its test's name then says "(read from the source)"); the scripts
# set it (make grade to a copy the student's program cannot change).
# Student code may hang, fork without end or print without end: every wait has
# a deadline, and what it writes to a file is capped (OUTPUT_LIMIT_KB).
#
# The lesson tests. Mark each test that checks the exercise's lesson (the one
# the unchanged starter must fail) with bats-core's tag, on a comment line
# just above its @test line:
#   # bats test_tags=lesson
#   @test "names each client: 'Connection from 127.0.0.1:PORT'" {
# The other tests are the ones every version must keep passing (the client
# still gets its reply, ...). tests/exercises/exercises.bats proves every checker both
# ways with exercises/lib/prove.sh: on the unchanged starter at least one test
# fails and every test that fails is a lesson test; on the reference solution
# every test passes and none is skipped. `bats --filter-tags lesson
# exercises/NN-*/check.bats` runs the lesson tests alone.

# The repository this file is in (not the checker's: tests/exercises/grade.bats loads
# this file from fake exercises elsewhere).
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
source "$REPO/tests/harness.bash"
CLIENT="$REPO/client/client"        # the repository's own client, known to be right
PEER="$REPO/tests/peer"             # a client that misbehaves on request
OUTPUT_LIMIT_KB="${OUTPUT_LIMIT_KB:-16384}"

setup() {
    harness_setup
    local prog
    for prog in "$CLIENT" "$PEER"; do
        [ -x "$prog" ] || { echo "$prog is missing: run 'make' first" >&2; return 1; }
    done
    [ -n "${EX_PROG:-}" ] || { echo "EX_PROG is not set: run 'make exercise EX=NN'" >&2; return 1; }
    [ -x "$EX_PROG" ] || { echo "$EX_PROG is missing: run 'make exercise EX=NN', which builds it" >&2; return 1; }
}

teardown() {
    harness_teardown
}

# ---------------------------------------------------------------- the student's server

# start_ex_server [ARGS...]: starts $EX_PROG with ARGS (default: 0, for port 0)
# and waits until it prints "Listening on port N". Sets SERVER_PID and PORT;
# its output goes to $T/server.out and $T/server.err. Environment variables set
# before the call (e.g. `IDLE_TIMEOUT=1 start_ex_server`) reach the server.
start_ex_server() {
    [ $# -gt 0 ] || set -- 0
    start_bg server "$EX_PROG" "$@"
    SERVER_PID=$BG_PID
    if ! wait_until ex_server_announced 2>/dev/null; then
        if exited "$SERVER_PID"; then
            fail_because "expected the server to start and print 'Listening on port N', but it exited;" \
                "its stderr: $(excerpt_file "$T/server.err")"
        else
            fail_because "expected the server to print 'Listening on port N' within ${DEADLINE}s, got: $(excerpt_file "$T/server.out")"
        fi
        return 1
    fi
    PORT=$(announced_port "$T/server.out")
}

ex_server_announced() {
    grep -q '^Listening on port [0-9][0-9]*$' "$T/server.out" && return 0
    alive "$SERVER_PID" || return "$NEVER"
    return 1
}

# server_is_alive: fails, saying so, if the server has exited.
server_is_alive() {
    alive "$SERVER_PID" && return 0
    fail_because "expected the server to keep running, but it exited; its stderr: $(excerpt_file "$T/server.err")"
}

# server_said: what the server printed, in short (for a failing check's report).
server_said() {
    echo "the server's stdout ended with: $(excerpt_file "$T/server.out")" >&2
    echo "the server's stderr ended with: $(excerpt_file "$T/server.err")" >&2
}

# ---------------------------------------------------------------- the source
# A checker tests behaviour from the outside. The one exception is a rule that
# no client can see (say, "no printf in a signal handler"): then it reads
# EX_SRC, the student's source file, by default the server.c beside the
# program under test, and says "(read from the source)" in the test's name.
EX_SRC="${EX_SRC:-$(dirname "${EX_PROG:-.}")/server.c}"

# code_of FILE: FILE with its comments and string literals blanked out.
code_of() {
    awk '
    { src = src $0 "\n" }
    END {
        len = length(src); out = ""
        for (i = 1; i <= len; i++) {
            c = substr(src, i, 1); d = substr(src, i + 1, 1)
            if (c == "/" && d == "*") {
                i += 2
                while (i <= len && !(substr(src, i, 1) == "*" && substr(src, i + 1, 1) == "/")) {
                    if (substr(src, i, 1) == "\n") out = out "\n"
                    i++
                }
                i++; out = out " "
            } else if (c == "/" && d == "/") {
                while (i + 1 <= len && substr(src, i + 1, 1) != "\n") i++
            } else if (c == "\"" || c == "\047") {
                i++
                while (i <= len && substr(src, i, 1) != c) { if (substr(src, i, 1) == "\\") i++; i++ }
                out = out c c
            } else out = out c
        }
        printf "%s", out
    }' "$1"
}

# ---------------------------------------------------------------- clients

# ask TEXT: sends TEXT as one line with the repository's client; sets status and output.
ask() { run with_deadline client_says "$1"; }
client_says() { printf '%s\n' "$1" | "$CLIENT" 127.0.0.1 "$PORT"; }

# served TEXT: the client sending TEXT got "I got your message" and the server
# printed "Here is the message: TEXT".
served() {
    ask "$1"
    if [ "$status" -ne 0 ] || [ "$output" != "I got your message" ]; then
        echo "expected the client sending '$1' to print 'I got your message' and exit 0," \
            "got exit status $status and: $(excerpt "$output")" >&2
        server_said
        return 1
    fi
    wait_until grep -qxF "Here is the message: $1" "$T/server.out" 2>/dev/null ||
        fail_because "expected 'Here is the message: $1' on the server's stdout, got: $(excerpt_file "$T/server.out")"
}

# start_peer NAME ACTION...: tests/peer in the background (see tests/peer.c for
# the actions: send TEXT, waitfor PATH, read, shutdown, close, reset); waits
# until it has connected. Its output is in $T/NAME.out.
start_peer() {
    local name=$1
    shift
    start_bg "$name" "$PEER" 127.0.0.1 "$PORT" "$@"
    wait_until grep -qx connected "$T/$name.out" 2>/dev/null ||
        fail_because "expected a client to connect to port $PORT, got: $(excerpt_file "$T/$name.err")"
}

# peer ACTION...: the same in the foreground, under a deadline.
peer() { with_deadline "$PEER" 127.0.0.1 "$PORT" "$@"; }

# queued_connections and queue_is (the listen queue on $PORT) come from
# tests/harness.bash.
