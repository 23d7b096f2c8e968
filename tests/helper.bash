# tests/helper.bash - shared by every .bats file in this folder.
#
# Rules the tests keep (see tests/README.md):
#  - wait for a condition, never for a fixed time: wait_until polls with a deadline;
#  - servers listen on port 0 and we read the port they announce;
#  - everything started in the background runs in its own process group and that
#    whole group is killed in teardown, so no forked child outlives its test.

ROOT="$(cd "$BATS_TEST_DIRNAME/.." && pwd)"
# Where the programs under test live: the source tree, unless BIN names another
# tree of the same shape (make check points it at sanitizer builds).
BIN="${BIN:-$ROOT}"
case $BIN in /*) ;; *) BIN="$ROOT/$BIN" ;; esac
CLIENT="$BIN/client/client"
PEER="$ROOT/tests/peer"
# How long any one condition may take before the test fails. Generous, because
# a loaded machine is slow; a passing test never waits this long.
DEADLINE="${DEADLINE:-10}"

setup() {
    BG_PIDS=()
    T="$BATS_TEST_TMPDIR"
    for prog in "$BIN"/step*/server "$CLIENT" "$PEER"; do
        [ -x "$prog" ] || { echo "$prog is missing: run 'make test', not bats directly" >&2; return 1; }
    done
}

teardown() {
    local pid
    for pid in "${BG_PIDS[@]}"; do
        kill -TERM -- "-$pid" 2>/dev/null || true
    done
    for pid in "${BG_PIDS[@]}"; do
        wait "$pid" 2>/dev/null || true
    done
    if [ -n "${NOBODY_DIR:-}" ]; then rm -rf "$NOBODY_DIR"; fi
}

# ---------------------------------------------------------------- running things

# wait_until CMD...: runs CMD every 20 ms until it succeeds; fails after $DEADLINE s.
# CMD runs anew each time, but a $(...) in its arguments is expanded only once,
# before the first try: put such a check in a function (see queue_is below).
wait_until() {
    local end=$((SECONDS + DEADLINE))
    until "$@"; do
        if [ "$SECONDS" -ge "$end" ]; then
            echo "gave up after ${DEADLINE}s waiting for: $*" >&2
            return 1
        fi
        sleep 0.02
    done
}

# with_deadline CMD...: runs CMD (with our stdin); kills it and returns 124
# if it is still running after $DEADLINE s. Use it for anything that could hang.
with_deadline() {
    local pid end=$((SECONDS + DEADLINE))
    "$@" 0<&0 3>&- &
    pid=$!
    while kill -0 "$pid" 2>/dev/null; do
        if [ "$SECONDS" -ge "$end" ]; then
            kill -KILL "$pid" 2>/dev/null
            wait "$pid" 2>/dev/null
            echo "still running after ${DEADLINE}s, killed: $*" >&2
            return 124
        fi
        sleep 0.02
    done
    wait "$pid"
}

# start_bg NAME CMD...: starts CMD in the background, in a process group of its
# own, with stdout in $T/NAME.out and stderr in $T/NAME.err. Sets BG_PID.
start_bg() {
    local name=$1
    shift
    set -m
    "$@" >"$T/$name.out" 2>"$T/$name.err" </dev/null 3>&- &
    BG_PID=$!
    set +m
    BG_PIDS+=("$BG_PID")
}

# ---------------------------------------------------------------- servers

# start_server STEP [CMD-PREFIX...]: starts STEP/server on port 0, optionally
# behind a prefix such as `unprivileged`, and waits for its announcement.
# Sets SERVER_PID and PORT; its output goes to $T/server.out and .err.
start_server() {
    local step=$1
    shift
    start_bg server "$@" "$(server_path "$step")" 0
    SERVER_PID=$BG_PID
    wait_until server_announced || { cat "$T/server.err" >&2; return 1; }
    PORT=$(sed -n 's/^Listening on port \([0-9][0-9]*\)$/\1/p' "$T/server.out")
}

# start_peer_server: tests/peer as a server that accepts one client and then
# does what the arguments say. Sets PORT.
start_peer_server() {
    start_bg peer_server "$PEER" -l 127.0.0.1 "$@"
    wait_until grep -q '^Listening on port' "$T/peer_server.out"
    PORT=$(sed -n 's/^Listening on port \([0-9][0-9]*\)$/\1/p' "$T/peer_server.out")
}

server_path() {
    if [ -n "${NOBODY_DIR:-}" ]; then echo "$NOBODY_DIR/$1/server"; else echo "$BIN/$1/server"; fi
}

server_announced() {
    alive "$SERVER_PID" || { echo "the server exited before announcing its port" >&2; return 2; }
    grep -q '^Listening on port [0-9][0-9]*$' "$T/server.out"
}

alive() { kill -0 "$1" 2>/dev/null && [ "$(ps -o stat= -p "$1" | cut -c1)" != Z ]; }
# exited PID: it no longer runs (a zombie that nobody has waited for yet counts).
exited() { ! alive "$1"; }

# count_lines TEXT FILE: how many lines of FILE are exactly TEXT.
count_lines() { grep -cxF -- "$1" "$2" || true; }

# ---------------------------------------------------------------- clients

# ask TEXT: sends TEXT as one line with the real client; sets status and output.
ask() { run with_deadline client_says "$1"; }
client_says() { printf '%s\n' "$1" | "$CLIENT" 127.0.0.1 "$PORT"; }

# served TEXT: TEXT got its reply and the server logged it.
served() {
    ask "$1"
    [ "$status" -eq 0 ] || { echo "client failed ($status): $output" >&2; return 1; }
    [ "$output" = "I got your message" ]
    wait_until grep -qxF "Here is the message: $1" "$T/server.out"
}

# start_peer NAME ACTION...: a misbehaving client in the background; waits
# until it is connected.
start_peer() {
    local name=$1
    shift
    start_bg "$name" "$PEER" 127.0.0.1 "$PORT" "$@"
    wait_until grep -qx connected "$T/$name.out"
}

# ---------------------------------------------------------------- what the kernel knows

# queued_connections: connections the kernel has completed for our port that
# the server has not accept()ed yet (the listen queue).
queued_connections() {
    if command -v ss >/dev/null; then
        ss -Hltn "sport = :$PORT" | awk '{ print $2; exit }'
    else
        netstat -Lan -p tcp | awk -v end=".$PORT" \
            'substr($2, length($2) - length(end) + 1) == end { split($1, q, "/"); print q[1]; exit }'
    fi
}
queue_is() { [ "$(queued_connections)" = "$1" ]; }

# in_time_wait PORT: a connection on the local port PORT is in TIME_WAIT.
in_time_wait() { [ -n "$(ss -Htan state time-wait "sport = :$1")" ]; }

# unread_bytes: bytes that arrived on the server's side of our connection
# and that the server has not read yet.
unread_bytes() {
    if command -v ss >/dev/null; then
        ss -Htn state established "sport = :$PORT" | awk '{ print $1; exit }'
    else
        netstat -an -p tcp | awk -v end=".$PORT" \
            '$6 == "ESTABLISHED" && substr($4, length($4) - length(end) + 1) == end { print $2; exit }'
    fi
}

unread_is() { [ "$(unread_bytes)" = "$1" ]; }

# messages_at_least N: the server has printed at least N messages.
messages_at_least() { [ "$(grep -c '^Here is the message' "$T/server.out")" -ge "$1" ]; }

# parent_is_not PID PARENT: PID is gone, or its parent is no longer PARENT.
parent_is_not() { [ "$(ps -o ppid= -p "$1" | tr -d ' ')" != "$2" ]; }

# count_children PID [STATE]: processes whose parent is PID (only those whose
# state starts with STATE, e.g. Z for zombies, when STATE is given).
count_children() {
    ps -A -o ppid= -o stat= | awk -v p="$1" -v s="${2:-}" \
        '$1 == p && substr($2, 1, length(s)) == s { n++ } END { print n + 0 }'
}
children_are() { [ "$(count_children "$1" "${3:-}")" -eq "$2" ]; }

# count_fds PID: descriptors the process has open.
count_fds() {
    if [ -d "/proc/$1/fd" ]; then
        ls "/proc/$1/fd" | wc -l | tr -d ' '
    else
        lsof -p "$1" 2>/dev/null | awk 'NR > 1 && $4 ~ /^[0-9]/ { n++ } END { print n + 0 }'
    fi
}

# ---------------------------------------------------------------- privileges

# As root, a server may bind any port and ignores the limit on processes, so
# those tests run it as the user nobody. nobody must be able to reach the
# binaries: use_nobody copies them to a directory anybody may read.
use_nobody() {
    [ "$(id -u)" -eq 0 ] || return 0
    command -v setpriv >/dev/null || skip "running as root, and setpriv (util-linux) is missing to drop privileges"
    UNPRIVILEGED=(setpriv --reuid=65534 --regid=65534 --clear-groups --)
    NOBODY_DIR=$(mktemp -d "${TMPDIR:-/tmp}/tcp-steps.XXXXXX")
    chmod 755 "$NOBODY_DIR"
    local step
    for step in step1-single step2-loop step3-fork step4-reap; do
        mkdir -m 755 "$NOBODY_DIR/$step"
        cp "$BIN/$step/server" "$NOBODY_DIR/$step/server"
    done
}

# "${UNPRIVILEGED[@]}" CMD...: runs CMD as an ordinary user (set by use_nobody;
# a command prefix, not a function, so that CMD keeps the process it starts in).
UNPRIVILEGED=()

# ================================================================ checks every step shares
# The code they exercise is the same in every step (diff -u shows it), but each
# step is its own program, so each step's file runs them against its own server.

check_rejects_bad_ports() {
    local step=$1 bad
    run with_deadline "$BIN/$step/server"
    [ "$status" -ne 0 ]
    [[ $output == *usage:* ]]
    run with_deadline "$BIN/$step/server" 5000 6000
    [ "$status" -ne 0 ]
    [[ $output == *usage:* ]]
    for bad in "" abc 80x -1 +80 " 80" 65536 99999999999999999999 0x50; do
        run with_deadline "$BIN/$step/server" "$bad"
        echo "port '$bad' gave status $status: $output"
        [ "$status" -ne 0 ]
        [[ $output == *"bad port '$bad'"* ]]
        [[ $output != *Listening* ]]
    done
}

check_port_in_use() {
    start_server "$1"
    run with_deadline "$BIN/$1/server" "$PORT"
    [ "$status" -ne 0 ]
    [[ $output == *"ERROR on binding: Address already in use"* ]]
}

check_low_port_needs_privilege() {
    local first
    first=$(cat /proc/sys/net/ipv4/ip_unprivileged_port_start 2>/dev/null) ||
        skip "only Linux reserves low ports here (macOS lets anyone bind them)"
    [ "$first" -gt 1 ] || skip "this kernel lets anyone bind any port (ip_unprivileged_port_start=$first)"
    use_nobody
    run with_deadline "${UNPRIVILEGED[@]}" "$(server_path "$1")" 1
    [ "$status" -ne 0 ]
    [[ $output == *"ERROR on binding: Permission denied"* ]]
}

# Whichever side sends its FIN first keeps the connection in TIME_WAIT for a
# while after it is closed. This client waits for the server's FIN before
# closing, so the TIME_WAIT is on the server's port, and a new server binding
# that port fails with "Address already in use" unless it sets SO_REUSEADDR.
check_restart_after_serving() {
    local step=$1 port
    start_server "$step"
    run with_deadline "$PEER" 127.0.0.1 "$PORT" send $'before restart\n' read
    [ "$status" -eq 0 ]
    [[ $output == *"I got your message"* ]]
    port=$PORT
    if command -v ss >/dev/null; then
        wait_until in_time_wait "$port"
    fi
    kill -TERM -- "-$SERVER_PID" 2>/dev/null || true
    wait_until exited "$SERVER_PID"
    start_bg server "$BIN/$step/server" "$port"
    SERVER_PID=$BG_PID
    wait_until server_announced || { cat "$T/server.err" >&2; return 1; }
    grep -qx "Listening on port $port" "$T/server.out"
    served "after restart"
}

# Send "hel", make sure the server has read it, then send "lo\n": the server
# must print one message, "hello", not "hel".
check_split_line() {
    start_server "$1"
    start_peer split send hel waitfor "$T/go" send $'lo\n' shutdown read
    wait_until grep -qx sent "$T/split.out"
    wait_until queue_is 0
    wait_until unread_is 0
    touch "$T/go"
    wait_until grep -qx "I got your message" "$T/split.out"
    [ "$(count_lines "Here is the message: hello" "$T/server.out")" -eq 1 ]
    ! grep -q "Here is the message: hel$" "$T/server.out"
}

check_escapes_unprintable() {
    start_server "$1"
    ask $'bell\a esc\e[31m tab\t back\\slash del\x7f \xff'
    [ "$status" -eq 0 ]
    wait_until grep -q '^Here is the message: bell' "$T/server.out"
    grep -qxF 'Here is the message: bell\x07 esc\x1b[31m tab\x09 back\\slash del\x7f \xff' "$T/server.out"
    # And nothing unprintable reached the output file.
    ! LC_ALL=C grep -q '[^[:print:]]' "$T/server.out"
}

# A line far longer than the buffer: the server reads part of it, replies, and
# must read (and throw away) the rest before closing, or the kernel resets the
# connection and the client loses the reply.
check_huge_line() {
    start_server "$1"
    huge_line 3000000 >"$T/huge"
    run with_deadline "$CLIENT" 127.0.0.1 "$PORT" <"$T/huge"
    [ "$status" -eq 0 ]
    [ "$output" = "I got your message" ]
    wait_until grep -q '^Here is the message: xxx' "$T/server.out"
}

# huge_line N: N times x and a newline.
huge_line() { head -c "$1" /dev/zero | tr '\0' x; echo; }

# stdout is a pipe here, where stdio would buffer fully unless told otherwise.
check_lines_printed_once() {
    local step=$1 clients=$2 i
    set -m
    "$BIN/$step/server" 0 2>"$T/server.err" </dev/null 3>&- | cat >"$T/server.out" 3>&- &
    set +m
    # The server is the first process of the pipeline, so it leads the group.
    SERVER_PID=$(ps -o pgid= -p "$!" | tr -d ' ')
    BG_PIDS+=("$SERVER_PID")
    wait_until grep -q '^Listening on port' "$T/server.out"
    PORT=$(sed -n 's/^Listening on port \([0-9][0-9]*\)$/\1/p' "$T/server.out")
    for ((i = 1; i <= clients; i++)); do
        ask "message $i"
        [ "$status" -eq 0 ]
    done
    wait_until messages_at_least "$clients"
    [ "$(count_lines "Listening on port $PORT" "$T/server.out")" -eq 1 ]
    for ((i = 1; i <= clients; i++)); do
        [ "$(count_lines "Here is the message: message $i" "$T/server.out")" -eq 1 ]
    done
}

# Clients that misbehave one after another; after each, a well-behaved
# client must still be served.
check_survives_misbehaving_clients() {
    start_server "$1"
    "$PEER" 127.0.0.1 "$PORT" close >/dev/null
    served "after a client left without a word"
    "$PEER" 127.0.0.1 "$PORT" reset >/dev/null
    served "after a reset before sending"
    "$PEER" 127.0.0.1 "$PORT" send $'half a li' reset >/dev/null
    served "after a reset in the middle of a line"
    "$PEER" 127.0.0.1 "$PORT" send $'whole line\n' reset >/dev/null
    served "after a reset after a whole line"
    head -c 20000 /dev/urandom | with_deadline "$CLIENT" 127.0.0.1 "$PORT" >/dev/null
    served "after binary junk"
    huge_line 1000000 | with_deadline "$CLIENT" 127.0.0.1 "$PORT" >/dev/null
    served "after a huge line"
    start_peer silent waitfor "$T/leave" close
    touch "$T/leave"
    served "after a silent client left"
    alive "$SERVER_PID"
}

# Writing to a connection the client has already reset raises SIGPIPE, which
# kills a process that does not ignore it. The server is stopped while a client
# sends a line, its end of file and a reset; once it runs again, the line is
# there to read but the reply can only fail.
check_survives_sigpipe() {
    start_server "$1"
    kill -STOP "$SERVER_PID"
    "$PEER" 127.0.0.1 "$PORT" send $'doomed\n' shutdown reset >/dev/null
    kill -CONT "$SERVER_PID"
    wait_until grep -qx "Here is the message: doomed" "$T/server.out"
    wait_until grep -q "ERROR writing to socket" "$T/server.err"
    served "after a failed write"
    if [ "$(uname -s)" = Linux ]; then
        grep -qx "ERROR writing to socket: Broken pipe" "$T/server.err"
    fi
}

# The limit on processes is lowered to 0 while the server runs, so its next
# fork() fails; then the limit is restored and the server must serve again.
# prlimit runs as the server's own user: changing another user's limits needs
# a privilege (CAP_SYS_RESOURCE) that root in a container may lack.
check_survives_failed_fork() {
    command -v prlimit >/dev/null || skip "needs prlimit (util-linux) to change a running process's limits"
    use_nobody
    start_server "$1" "${UNPRIVILEGED[@]}"
    local soft
    soft=$("${UNPRIVILEGED[@]}" prlimit --pid "$SERVER_PID" --nproc --raw --noheadings --output SOFT)
    "${UNPRIVILEGED[@]}" prlimit --pid "$SERVER_PID" --nproc=0:
    ask "no process for me"
    [ "$status" -ne 0 ]
    [[ $output == *ERROR* ]]
    grep -qx "ERROR on fork: Resource temporarily unavailable" "$T/server.err"
    "${UNPRIVILEGED[@]}" prlimit --pid "$SERVER_PID" --nproc="$soft":
    served "after fork failed"
    [ "$(grep -c . "$T/server.err")" -eq 1 ]
}
