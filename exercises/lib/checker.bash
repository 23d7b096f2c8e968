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
    # bats runs a DEBUG trap before every command of a test, to keep a
    # stack trace for its failure report; it costs about 60 lines of bash
    # for each command, and made up most of the bash that a checker ran (173,000
    # of 181,000 lines for exercise 04's checker). A checker says why it failed
    # in its own words (fail_because), and make exercise and make grade show
    # those words, not bats' trace, so the checks run without it.
    trap - DEBUG
    harness_setup
    local prog
    for prog in "$CLIENT" "$PEER"; do
        [ -x "$prog" ] || { echo "$prog is missing: run 'make' first" >&2; return 1; }
    done
    [ -n "${EX_PROG:-}" ] || { echo "EX_PROG is not set: run 'make exercise EX=NN'" >&2; return 1; }
    [ -x "$EX_PROG" ] || { echo "$EX_PROG is missing: run 'make exercise EX=NN', which builds it" >&2; return 1; }
}

teardown() {
    forget_foreign_groups
    harness_teardown
}

# forget_foreign_groups: drops from the harness's list (HARNESS_GROUPS,
# BG_PIDS) every process group that has no process left in our session.
# Linux reuses process IDs (after pid_max of them, 32768 by default: under a
# minute when many tests fork at once), so a group that ended early in a long
# test may have the number of another run's group by the time teardown kills
# what the test started, and that kill must not reach it. Everything a test
# starts stays in the session of its run (start_bg makes process groups, not
# sessions; make exercise, make grade and the proofs give each run a session
# of its own): a group with none of our processes is not ours any more.
forget_foreign_groups() {
    [ -f "${HARNESS_GROUPS:-}" ] || return 0
    local ours keep=() groups=() g p nl=$'\n'
    # (nothing started, nothing to forget: no ps)
    [ -s "$HARNESS_GROUPS" ] || [ ${#BG_PIDS[@]} -gt 0 ] || return 0
    our_session
    [ -n "$OUR_SID" ] || return 0
    ours=$(our_groups)
    while read -r g; do
        [ -n "$g" ] && [[ "$nl$ours" == *"$nl$g "* ]] && groups+=("$g")
    done <"$HARNESS_GROUPS"
    printf '%s\n' ${groups[@]+"${groups[@]}"} >"$HARNESS_GROUPS"
    for p in ${BG_PIDS[@]+"${BG_PIDS[@]}"}; do
        [[ "$nl$ours" == *"$nl$p "* ]] && keep+=("$p")
    done
    BG_PIDS=(${keep[@]+"${keep[@]}"})
}

# ---------------------------------------------------------------- the student's server

# start_ex_server [ARGS...]: starts $EX_PROG with ARGS (default: 0, for port 0)
# and waits until it prints "Listening on port N". Sets SERVER_PID and PORT;
# its output goes to $T/server.out and $T/server.err. Environment variables set
# before the call (e.g. `IDLE_TIMEOUT=1 start_ex_server`) reach the server.
#
# A server that has not announced its port gets DEADLINE to do it, unless it
# has exited, or it (with every process it forked) has slept for a second
# without announcing it: a correct server does nothing before its
# announcement that could put it to sleep for that long (socket, bind,
# listen, getsockname and printf do not wait for anyone), so such a server
# is waiting for something that will not come. A server that is still
# running when DEADLINE is out (it spins, or forks without end) fails this
# check, and the later checks of the file fail at once, saying so, instead
# of waiting DEADLINE each: one wait of that length is enough to know.
start_ex_server() {
    [ $# -gt 0 ] || set -- 0
    local earlier="${BATS_FILE_TMPDIR:-$T}/.no-announcement"
    if [ -f "$earlier" ]; then
        fail_because "not tried: in an earlier check, $(cat "$earlier")"
        return 1
    fi
    start_bg server "$EX_PROG" "$@"
    SERVER_PID=$BG_PID
    ASLEEP_SINCE=
    if ! wait_until ex_server_announced 2>/dev/null; then
        if grep -q '^Listening on port [0-9][0-9]*$' "$T/server.out" 2>/dev/null; then
            :   # (it announced just now)
        elif exited "$SERVER_PID"; then
            fail_because "expected the server to start and print 'Listening on port N', but it exited;" \
                "its stdout: $(excerpt_file "$T/server.out"), its stderr: $(excerpt_file "$T/server.err")"
            return 1
        elif [ -n "$ASLEEP_SINCE" ]; then
            fail_because "expected the server to print 'Listening on port N', but it went to sleep without printing it" \
                "(is stdout flushed? does it wait for something first?); it printed: $(excerpt_file "$T/server.out")," \
                "on stderr: $(excerpt_file "$T/server.err")"
            return 1
        else
            echo "the server did not print 'Listening on port N' within ${DEADLINE}s (it was still running; it printed: $(excerpt_file "$T/server.out"))" \
                >"$earlier" 2>/dev/null
            fail_because "expected the server to print 'Listening on port N' within ${DEADLINE}s, got: $(excerpt_file "$T/server.out")" \
                "(it is still running: does it loop, or fork without end, before it listens?)"
            return 1
        fi
    fi
    PORT=$(announced_port "$T/server.out")
}

# not_tried_again: true, with the reason in output, when an earlier check of
# this file found the program still running without its port at DEADLINE
# (start_ex_server): a check that runs the program directly then does not
# wait that long again.
not_tried_again() {
    local earlier="${BATS_FILE_TMPDIR:-$T}/.no-announcement"
    [ -f "$earlier" ] || return 1
    output="not tried: in an earlier check, $(cat "$earlier")"
}

# run_ex ARGS...: bats' run of the program with ARGS, under the deadline: for
# a command line it must refuse at once (status 124, and why, when
# not_tried_again says so).
run_ex() {
    if not_tried_again; then status=124; return 0; fi
    run with_deadline "$EX_PROG" "$@"
}

# ex_server_announced: the server has printed its port; $NEVER once it has
# exited, or slept for a second (ASLEEP_SINCE: when it was first seen asleep)
# without printing it.
ex_server_announced() {
    grep -q '^Listening on port [0-9][0-9]*$' "$T/server.out" && return 0
    alive "$SERVER_PID" || return "$NEVER"
    due || return 1
    if family_asleep "$SERVER_PID"; then
        clock_ms
        [ -n "$ASLEEP_SINCE" ] || ASLEEP_SINCE=$NOW_MS
        [ $((NOW_MS - ASLEEP_SINCE)) -ge 1000 ] || return 1
        grep -q '^Listening on port [0-9][0-9]*$' "$T/server.out" && return 0
        return "$NEVER"
    fi
    ASLEEP_SINCE=
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

# ---------------------------------------------------------------- deadlines that load cannot break
# A correct program does what a check waits for in milliseconds, so every
# wait has the generous DEADLINE (scaled with the machine's load, see
# tests/harness.bash). A broken program never does it, and waiting out that
# deadline in every check would make a broken starter slow to fail. So the
# checks also watch for the moment when it can no longer happen: the server,
# with every process it forked, is asleep (waiting for a client, a child or a
# signal) although what it should have done before going to sleep is not
# done. Then the wait gives up at once (it returns $NEVER). A correct program
# that is merely slow because the machine is busy is running or ready to run,
# never asleep at that point, so this cannot fail it.
# Where a lesson is itself about time (a timeout of N seconds), the check
# bounds it from below exactly (not before N seconds, measured from a moment
# before the client connected) and from above generously: N + SLACK seconds.
SLACK=$(scaled 2)

# clock_ms: sets NOW_MS to the time in milliseconds (bash 5's EPOCHREALTIME,
# or perl's clock on older shells, such as macOS's bash 3.2).
clock_ms() {
    local t=${EPOCHREALTIME:-}
    if [ -n "$t" ]; then
        t=${t/[.,]/}                        # microseconds
        NOW_MS=$((10#$t / 1000))
    else
        NOW_MS=$(perl -MTime::HiRes=time -e 'printf "%d\n", time() * 1000')
    fi
}

# seconds_of MS: MS milliseconds in seconds, to two decimals (for a message).
seconds_of() { printf '%d.%02d' $(($1 / 1000)) $(($1 % 1000 / 10)); }

# seconds_since MS: the time since MS (from clock_ms), the same way.
seconds_since() {
    clock_ms
    seconds_of $((NOW_MS - $1))
}

# asleep PID: every thread of PID is blocked in the kernel, waiting for
# something outside itself. On Linux: state S in /proc/PID/task/*/stat, and
# a wait channel in wchan, which Linux 5.16 and later give only to a thread
# that is off the CPUs' run queues (a thread preempted on its way into a wait
# it would leave at once shows S for a moment, but no wait channel); where
# wchan says 0 (older kernels, or no right to look), we cannot tell, and the
# answer is no. Elsewhere: ps shows S or I.
asleep() {
    local t line state w
    if [ -d "/proc/$1/task" ]; then
        for t in /proc/"$1"/task/*; do
            line=
            read -r line <"$t/stat" 2>/dev/null || return 1
            state=${line##*) }
            [ "${state%% *}" = S ] || return 1
            w=
            read -r w <"$t/wchan" 2>/dev/null || true
            [ -n "$w" ] && [ "$w" != 0 ] || return 1
        done
        return 0
    fi
    case $(ps -o stat= -p "$1" 2>/dev/null) in
        S* | I*) return 0 ;;
    esac
    return 1
}

# family PID: PID and every process it forked, and those forked, and so on,
# zombies left out, one per line.
family() {
    ps -A -o pid= -o ppid= -o stat= | awk -v root="$1" '
        { pid[NR] = $1; ppid[NR] = $2; zombie[NR] = ($3 ~ /^Z/) }
        END {
            inside[root] = 1
            for (changed = 1; changed; ) {
                changed = 0
                for (i = 1; i <= NR; i++)
                    if (!(pid[i] in inside) && (ppid[i] in inside)) { inside[pid[i]] = 1; changed = 1 }
            }
            for (i = 1; i <= NR; i++) if ((pid[i] in inside) && !zombie[i]) print pid[i]
        }'
}

# family_asleep PID: PID is alive, and it and every process of its family is
# asleep: nothing in the server will happen until something from outside
# (a client, a signal) wakes it.
family_asleep() {
    local p found=
    for p in $(family "$1"); do
        asleep "$p" || return 1
        found=1
    done
    [ -n "$found" ]
}

# live_children PID: how many children of PID are alive (zombies left out).
live_children() {
    ps -A -o ppid= -o stat= | awk -v p="$1" '$1 == p && $2 !~ /^Z/ { n++ } END { print n + 0 }'
}

# due: true on every 5th call only. A condition polled by wait_until (every
# 20 ms) asks it before its costlier look at the processes (ps, ss), so that
# the look runs about every 0.1 s.
DUE_CALLS=0
due() {
    DUE_CALLS=$((DUE_CALLS + 1))
    [ $((DUE_CALLS % 5)) -eq 1 ]
}

# connections: one line per end of every TCP connection to or from port
# $PORT on this machine, "server STATE RECV-Q SEND-Q" for the server's ends
# (connections not yet accepted included) and "client STATE RECV-Q SEND-Q"
# for the clients'. Recv-Q is what has arrived and was not read yet; Send-Q
# what was sent and not yet acknowledged by the other end (ss on Linux,
# netstat elsewhere).
connections() {
    if command -v ss >/dev/null; then
        ss -Htn "( sport = :$PORT or dport = :$PORT )" | awk -v end=":$PORT" '
            { side = (substr($4, length($4) - length(end) + 1) == end) ? "server" : "client"
              print side, $1, $2, $3 }'
    else
        netstat -an -p tcp | awk -v end=".$PORT" '
            $6 != "LISTEN" && (substr($4, length($4) - length(end) + 1) == end || substr($5, length($5) - length(end) + 1) == end) {
                side = (substr($4, length($4) - length(end) + 1) == end) ? "server" : "client"
                print side, $6, $2, $3 }'
    fi
}

# server_waits_on_a_client: some connection on the server's side is still
# open, or half-open waiting for the client's end of file: a process of the
# server may be asleep reading it. (TIME-WAIT, LAST-ACK and CLOSING ends have
# been closed, or will read an end of file at once.)
server_waits_on_a_client() {
    connections | awk '$1 == "server" && $2 ~ /^(ESTAB|SYN-RECV|SYN_RCVD|CLOSE-WAIT|CLOSE_WAIT|FIN-WAIT|FIN_WAIT)/ { f = 1 } END { exit !f }'
}

# listening_on PORT: some socket listens on PORT.
listening_on() {
    if command -v ss >/dev/null; then
        [ -n "$(ss -Hltn "sport = :$1")" ]
    else
        netstat -an -p tcp | awk -v end=".$1" \
            '$6 == "LISTEN" && substr($4, length($4) - length(end) + 1) == end { f = 1 } END { exit !f }'
    fi
}

# all_delivered: every byte sent on every connection to $PORT has arrived
# and was acknowledged, and every server's end has read all it received:
# what the server read, a correct server has acted on before it sleeps.
all_delivered() {
    connections | awk '$4 != 0 || ($1 == "server" && $3 != 0) { bad = 1 } END { exit bad }'
}

# unread_at_server: some end of a connection on the server's side holds
# bytes a client sent that nobody has read (accepted or not yet).
unread_at_server() {
    connections | awk '$1 == "server" && $3 != 0 { f = 1 } END { exit !f }'
}

# term_pending PID: a SIGTERM sent to PID waits to be delivered (Linux:
# /proc/PID/status, ShdPnd and SigPnd). Elsewhere we cannot tell: yes.
term_pending() {
    local f hex
    [ -r "/proc/$1/status" ] || return 0
    for f in ShdPnd SigPnd; do
        hex=$(awk -v f="$f:" '$1 == f { print $2 }' "/proc/$1/status")
        [ -n "$hex" ] || return 0
        [ $((16#$hex & 16384)) -eq 0 ] || return 0        # bit 15 - 1: SIGTERM
    done
    return 1
}

# ---------------------------------------------------------------- runs that end
# start_timed NAME CMD...: start_bg NAME CMD..., and when CMD ends, its exit
# status and the time it ended (clock_ms) go into $T/NAME.end, "STATUS MS".
start_timed() {
    local name=$1
    shift
    start_bg "$name" timed "$T/$name.end" "$@"
}
timed() {
    local file=$1 rc=0
    shift
    "$@" || rc=$?
    clock_ms
    echo "$rc $NOW_MS" >"$file.tmp" && mv "$file.tmp" "$file"
}
# ended NAME [DIR]: the command started by start_timed NAME (in DIR, by
# default $T) has ended; sets END_STATUS and END_MS.
ended() {
    local file="${2:-$T}/$1.end"
    [ -f "$file" ] || return 1
    read -r END_STATUS END_MS <"$file"
}

# try_env VAR VALUE: starts the program with VAR=VALUE (and port 0), and waits
# until it exits, or until it prints "Listening on port N", which a program
# that refuses VALUE never does. Sets status (124 if it went on to listen or
# ran out of time; teardown stops it) and output (its stdout and stderr).
try_env() {
    if not_tried_again; then status=124; return 0; fi
    start_bg try-env env "$1=$2" "$EX_PROG" 0
    TRY_PID=$BG_PID
    wait_until try_env_done 2>/dev/null || true
    status=124          # still running: teardown stops it
    if exited "$TRY_PID"; then
        status=0
        wait "$TRY_PID" 2>/dev/null || status=$?
    fi
    output=$(cat "$T/try-env.out" "$T/try-env.err" 2>/dev/null)
}
try_env_done() {
    exited "$TRY_PID" && return 0
    grep -q '^Listening on port' "$T/try-env.out" 2>/dev/null && return "$NEVER"
    return 1
}
