# tests/helper.bash - shared by every .bats file in this folder.
#
# Rules the tests keep (see tests/README.md):
#  - wait for a condition, never for a fixed time: wait_until polls with a deadline;
#  - servers listen on port 0 and we read the port they announce;
#  - everything started in the background runs in its own process group and that
#    whole group is killed in teardown, so no forked child outlives its test.

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# Deadlines, process groups, killing everything, plain-words failures.
source "$ROOT/tests/harness.bash"
# Where the programs under test live: the source tree, unless BIN names another
# tree of the same shape (make check points it at sanitizer builds).
BIN="${BIN:-$ROOT}"
case $BIN in /*) ;; *) BIN="$ROOT/$BIN" ;; esac
CLIENT="$BIN/client/client"
PEER="$ROOT/tests/peer"
# What start_bg starts may write at most this much to any file (a server
# broken so that it prints an error in a loop would fill the disk).
OUTPUT_LIMIT_KB="${OUTPUT_LIMIT_KB:-65536}"

setup() {
    harness_setup
    for prog in "$BIN"/step*/server "$CLIENT" "$PEER"; do
        [ -x "$prog" ] || { echo "$prog is missing: run 'make test', not bats directly" >&2; return 1; }
    done
}

teardown() {
    harness_teardown
    if [ -n "${NOBODY_DIR:-}" ]; then rm -rf "$NOBODY_DIR"; fi
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
    # A working server announces its port within milliseconds.
    DEADLINE=$QUICK wait_until server_announced || { server_said; return 1; }
    PORT=$(announced_port "$T/server.out")
}

# server_said: what the server printed, in short (for a failing test's report).
server_said() {
    echo "the server's stdout ended with: $(excerpt_file "$T/server.out")" >&2
    echo "the server's stderr ended with: $(excerpt_file "$T/server.err")" >&2
}

# start_peer_server: tests/peer as a server that accepts one client and then
# does what the arguments say. Sets PORT.
start_peer_server() {
    start_bg peer_server "$PEER" -l 127.0.0.1 "$@"
    wait_until grep -q '^Listening on port' "$T/peer_server.out" 2>/dev/null
    PORT=$(announced_port "$T/peer_server.out")
}

server_path() {
    if [ -n "${NOBODY_DIR:-}" ]; then echo "$NOBODY_DIR/$1/server"; else echo "$BIN/$1/server"; fi
}

server_announced() {
    alive "$SERVER_PID" || { echo "the server exited before announcing its port" >&2; return "$NEVER"; }
    grep -q '^Listening on port [0-9][0-9]*$' "$T/server.out"
}


# count_lines TEXT FILE: how many lines of FILE are exactly TEXT.
count_lines() { grep -cxF -- "$1" "$2" || true; }

# ---------------------------------------------------------------- clients

# ask TEXT: sends TEXT as one line with the real client; sets status and output.
# A working server that is free answers a line within milliseconds (QUICK).
ask() { DEADLINE=$QUICK run with_deadline client_says "$1"; }
client_says() { printf '%s\n' "$1" | "$CLIENT" 127.0.0.1 "$PORT"; }

# served TEXT: TEXT got its reply and the server logged it. On failure it
# says what was expected and what came back, and what the server said.
served() {
    ask "$1"
    if [ "$status" -ne 0 ] || [ "$output" != "I got your message" ]; then
        echo "expected the client sending '$1' to print 'I got your message' and exit 0," \
             "got exit status $status and: $(excerpt "$output")" >&2
        server_said
        return 1
    fi
    wait_until grep -qxF "Here is the message: $1" "$T/server.out" 2>/dev/null || {
        echo "expected 'Here is the message: $1' on the server's stdout, got: $(excerpt_file "$T/server.out")" >&2
        return 1
    }
}

# start_peer NAME ACTION...: a misbehaving client in the background; waits
# until it is connected.
start_peer() {
    local name=$1
    shift
    start_bg "$name" "$PEER" 127.0.0.1 "$PORT" "$@"
    wait_until grep -qx connected "$T/$name.out" 2>/dev/null || {
        echo "expected the peer '$name' to connect to port $PORT, got: $(excerpt_file "$T/$name.err")" >&2
        return 1
    }
}

# peer ACTION...: a misbehaving client in the foreground, under a deadline
# (a server that never accepts would leave connect() or read() waiting).
peer() { with_deadline "$PEER" 127.0.0.1 "$PORT" "$@"; }

# ---------------------------------------------------------------- what the kernel knows

# queued_connections and queue_is (the listen queue on $PORT): in harness.bash.

# in_time_wait PORT: a connection on the local port PORT is in TIME_WAIT.
in_time_wait() {
    if command -v ss >/dev/null; then
        [ -n "$(ss -Htan state time-wait "sport = :$1")" ]
    else
        netstat -an -p tcp | awk -v end=".$1" \
            '$6 == "TIME_WAIT" && substr($4, length($4) - length(end) + 1) == end { f = 1 } END { exit !f }'
    fi
}

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
# If the kernel's table of TIME_WAIT sockets is full (another program on the
# machine filled it), the kernel drops the entry instead of keeping it, and
# counts that in TCPTimeWaitOverflow; then there is nothing to test, and the
# test is skipped with the reason: neither failed nor passed.
check_restart_after_serving() {
    local step=$1 port overflows
    start_server "$step"
    overflows=$(time_wait_overflows)
    run with_deadline "$PEER" 127.0.0.1 "$PORT" send $'before restart\n' read
    [ "$status" -eq 0 ]
    [[ $output == *"I got your message"* ]]
    port=$PORT
    if ! wait_until in_time_wait "$port" 2>/dev/null; then
        [ "$(time_wait_overflows)" = "$overflows" ] ||
            skip "the kernel's TIME_WAIT table is full (TCPTimeWaitOverflow went from $overflows to $(time_wait_overflows)), so there is no TIME_WAIT to restart beside"
        fail_because "expected the server's side of the connection on port $port in TIME_WAIT, got: $(ss -Htan "sport = :$port" 2>&1 | head -n 3)"
    fi
    kill -TERM -- "-$SERVER_PID" 2>/dev/null || true
    wait_until exited "$SERVER_PID"
    start_bg server "$BIN/$step/server" "$port"
    SERVER_PID=$BG_PID
    wait_until server_announced || { server_said; return 1; }
    grep -qx "Listening on port $port" "$T/server.out"
    served "after restart"
}

# time_wait_overflows: how often the kernel has had to drop a TIME_WAIT entry
# for want of room (Linux; "none" where /proc/net/netstat does not say).
time_wait_overflows() {
    awk '/^TcpExt:/ { if (!seen) { for (i = 1; i <= NF; i++) if ($i == "TCPTimeWaitOverflow") col = i; seen = 1 }
                      else if (col) { print $col; found = 1 } }
         END { if (!found) print "none" }' /proc/net/netstat 2>/dev/null || echo none
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
# must read (and throw away) the rest before closing. When a server closes
# with input unread, the kernel sends a reset after the reply and the FIN, and
# the client, still writing, fails with "Broken pipe". 30 MB is more than the
# loopback holds for a server that has stopped reading (the client's send
# buffer grows to tcp_wmem's maximum, 4 MB by default, and the server's
# receive buffer grows only as the server reads): with a few MB, the client
# would have sent it all before the reset, and such a server would pass.
check_huge_line() {
    start_server "$1"
    huge_line 30000000 >"$T/huge"
    run with_deadline "$CLIENT" 127.0.0.1 "$PORT" <"$T/huge"
    [ "$status" -eq 0 ] && [ "$output" = "I got your message" ] || {
        echo "expected the client sending a 30 MB line to print 'I got your message' and exit 0," \
             "got exit status $status and: $(excerpt "$output")" >&2
        server_said
        return 1
    }
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
    remember_group "$SERVER_PID"
    # A working server announces its port within milliseconds (QUICK); one
    # that buffers its stdout never does.
    DEADLINE=$QUICK wait_until grep -q '^Listening on port' "$T/server.out"
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
    peer close >/dev/null
    served "after a client left without a word"
    peer reset >/dev/null
    served "after a reset before sending"
    peer send $'half a li' reset >/dev/null
    served "after a reset in the middle of a line"
    peer send $'whole line\n' reset >/dev/null
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
    peer send $'doomed\n' shutdown reset >/dev/null
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

# accept() can fail for reasons that are no client's fault: with every
# descriptor the process may have in use, it fails with EMFILE. The server must
# report it and go on: once a descriptor is free again, the client that waited
# in the listen queue is served. The limit is a bound on descriptor numbers:
# lowered to the lowest free one, it leaves the next accept() none to use.
check_survives_emfile() {
    command -v prlimit >/dev/null || skip "needs prlimit (util-linux) to change a running process's limits"
    start_server "$1"
    served "warm-up"
    local soft free
    soft=$(prlimit --pid "$SERVER_PID" --nofile --raw --noheadings --output SOFT)
    free=$(lowest_free_fd "$SERVER_PID")
    prlimit --pid "$SERVER_PID" --nofile="$free":
    start_bg waiting with_deadline client_says "out of descriptors"
    wait_until grep -q "^ERROR on accept: Too many open files" "$T/server.err" ||
        fail_because "expected 'ERROR on accept: Too many open files' on the server's stderr, got: $(excerpt_file "$T/server.err")"
    prlimit --pid "$SERVER_PID" --nofile="$soft":
    wait_until grep -qx "I got your message" "$T/waiting.out" || {
        echo "expected the waiting client to be served once a descriptor was free, got: $(excerpt_file "$T/waiting.out") $(excerpt_file "$T/waiting.err")" >&2
        server_said
        return 1
    }
    served "after running out of descriptors"
    alive "$SERVER_PID"
}

# The child serves one connection and has no use for the listening socket, so
# it closes its copy. Then, once the parent is gone, nothing listens on the
# port any more, even while a child still serves a client, and a new server
# can bind it. A child that kept the copy would hold the port: the new
# server's bind fails with "Address already in use".
check_child_lets_go_of_listener() {
    local step=$1 port
    start_server "$step"
    start_peer silent waitfor "$T/speak" send $'still here\n' shutdown read
    wait_until children_are "$SERVER_PID" 1
    port=$PORT
    kill -KILL "$SERVER_PID"                      # the parent alone, not its group
    wait_until exited "$SERVER_PID"
    wait_until no_listener_on "$port" ||
        fail_because "expected nothing listening on port $port once the parent was gone, got: $(ss -Hltn "sport = :$port" 2>&1 | head -n 2)"
    start_bg server "$BIN/$step/server" "$port"
    SERVER_PID=$BG_PID
    wait_until server_announced || { server_said; return 1; }
    served "to the new server"
    touch "$T/speak"                              # the old child still serves its client
    wait_until grep -qx "I got your message" "$T/silent.out"
}

# The backlog: while the server is busy elsewhere (here: stopped, so the
# test need not race it), the kernel completes handshakes and holds the
# connections for it, up to the backlog given to listen(). A burst of
# BURST_CLIENTS clients must all be held. With a small backlog the kernel
# drops the SYNs of the rest, and their connect() sends the SYN again only
# after a second, then after two more, and so on: the burst is served seconds
# late.
BURST_CLIENTS=20
check_backlog_holds_burst() {
    local i limit somaxconn
    somaxconn=$(cat /proc/sys/net/core/somaxconn 2>/dev/null || sysctl -n kern.ipc.somaxconn 2>/dev/null || echo unknown)
    [ "$somaxconn" = unknown ] || [ "$somaxconn" -ge "$BURST_CLIENTS" ] ||
        skip "this system holds at most $somaxconn connections per listening socket (somaxconn), fewer than the $BURST_CLIENTS this test sends"
    start_server "$1"
    # The kernel says at once how many it will hold: no need to wait for
    # clients that would never be held.
    limit=$(listen_limit)
    [ "${limit:-0}" -ge "$BURST_CLIENTS" ] ||
        fail_because "expected room for at least $BURST_CLIENTS connections in the listen queue (the backlog), the kernel says: $limit"
    kill -STOP "$SERVER_PID"
    wait_until is_stopped "$SERVER_PID"
    for ((i = 1; i <= BURST_CLIENTS; i++)); do
        start_bg "burst$i" "$PEER" 127.0.0.1 "$PORT" send "burst $i"$'\n' shutdown read
    done
    wait_until queue_is "$BURST_CLIENTS" || {
        limit=$(queued_connections)
        kill -CONT "$SERVER_PID"
        fail_because "expected all $BURST_CLIENTS clients held in the listen queue while the server is stopped, got: $limit"
    }
    kill -CONT "$SERVER_PID"
    for ((i = 1; i <= BURST_CLIENTS; i++)); do
        wait_until grep -qx "I got your message" "$T/burst$i.out" ||
            fail_because "expected client $i of the burst to be served once the server ran again, got: $(excerpt_file "$T/burst$i.out") $(excerpt_file "$T/burst$i.err")"
    done
}

# listen_limit: how many connections the kernel holds for the listener on
# $PORT (ss shows the backlog as a listener's Send-Q; netstat -L as maxqlen).
listen_limit() {
    if command -v ss >/dev/null; then
        ss -Hltn "sport = :$PORT" | awk '{ print $3; exit }'
    else
        netstat -Lan -p tcp | awk -v end=".$PORT" \
            'substr($2, length($2) - length(end) + 1) == end { split($1, q, "/"); print q[3]; exit }'
    fi
}

# is_stopped PID: the process is stopped (SIGSTOP): ps shows state T.
is_stopped() { ps -o stat= -p "$1" | grep -q '^T'; }

# no_listener_on PORT: no socket listens on PORT.
no_listener_on() {
    if command -v ss >/dev/null; then
        [ -z "$(ss -Hltn "sport = :$1")" ]
    else
        ! netstat -an -p tcp | awk -v end=".$1" \
            '$6 == "LISTEN" && substr($4, length($4) - length(end) + 1) == end { f = 1 } END { exit !f }'
    fi
}

# lowest_free_fd PID: the descriptor number the process would get next (Linux).
lowest_free_fd() {
    ls "/proc/$1/fd" | sort -n | awk 'BEGIN { n = 0 } $1 == n { n++ } END { print n }'
}
