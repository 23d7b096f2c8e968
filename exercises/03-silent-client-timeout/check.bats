#!/usr/bin/env bats
# Exercise 03, a silent client must not hold the server forever: with
# IDLE_TIMEOUT=N, a client that sends nothing for N seconds is dropped (the
# server closes its side) and the next client is served, at once and not N
# seconds later; a client that got its reply and never closes is dropped
# too; a client that speaks in time is served; a bad or empty IDLE_TIMEOUT
# is refused; without IDLE_TIMEOUT, N is 10.
#
# The lesson is about time, so the checks time it: a client is dropped no
# sooner than N seconds after it connected (the clock starts before the
# client connects, so a correct server can only be later, never sooner,
# apart from one tick of the kernel's clock), and no later than N + SLACK
# seconds (SLACK is 2 s, more on a busy machine: see checker.bash).

load ../lib/checker

# By how much a timeout may end early: one tick of the kernel's clock, which
# counts SO_RCVTIMEO (Linux: 1 to 10 ms, from CONFIG_HZ).
TICK_MS=10

# in_time N T0 WHAT CMD...: waits until CMD succeeds (WHAT says what that
# means, for the message) and checks when: not before N seconds after the
# client connected, less TICK_MS, and within N + SLACK seconds of T0 (a
# clock_ms taken before the client connected). A CMD that returns $NEVER
# fails at once. It looks as wait_until does (every 20 ms, after a second
# every 100 ms).
#
# The lower bound is read from the client itself when IN_TIME_FROM names a
# peer started with "read elapsed" (it prints "elapsed MS" as soon as the
# server closes its connection, MS counted from just before it connected):
# our looks every 50 ms can come late on a busy machine, and a look that
# comes after N s could not tell a server that dropped the client at once
# from a correct one. Without IN_TIME_FROM, the time of the first look that
# sees it, never earlier than the event, bounds it. Either way a correct
# server cannot fail the lower bound.
in_time() {
    local n=$1 t0=$2 what=$3 rc ms looks=0
    shift 3
    while :; do
        rc=0
        "$@" || rc=$?
        clock_ms
        if [ "$rc" -eq 0 ]; then
            ms=$((NOW_MS - t0))
            if [ -n "${IN_TIME_FROM:-}" ]; then
                wait_until grep -q '^elapsed ' "$T/$IN_TIME_FROM.out" 2>/dev/null ||
                    fail_because "expected the client to see its connection closed once the server had closed it, got:" \
                        "$(excerpt_file "$T/$IN_TIME_FROM.out") $(excerpt_file "$T/$IN_TIME_FROM.err")" || return 1
                ms=$(sed -n 's/^elapsed //p' "$T/$IN_TIME_FROM.out" | head -n 1)
            fi
            [ "$ms" -ge $((n * 1000 - TICK_MS)) ] && return 0
            fail_because "expected $what $n s after the client connected, not sooner; it happened after $(seconds_of "$ms") s"
            return 1
        fi
        if [ "$rc" -eq "$NEVER" ] || [ $((NOW_MS - t0)) -gt $(((n + SLACK) * 1000)) ]; then
            fail_because "expected $what $n s after the client connected (at most $((n + SLACK)) s on this machine);" \
                "after $(seconds_since "$t0") s it had not happened$([ "$rc" -ne "$NEVER" ] ||
                    echo ", and the server had slept for longer than $n s without doing it")${IN_TIME_NOTE:+: $IN_TIME_NOTE}"
            return 1
        fi
        looks=$((looks + 1))
        poll_pause "$looks"
    done
}

# client_ports: the local ports of the clients' ends of connections to our
# server, in any state, one per line (the kernel's view: ss or netstat).
client_ports() {
    if command -v ss >/dev/null; then
        ss -Htn "dport = :$PORT" | awk '{ n = split($4, a, ":"); print a[n] }'
    else
        netstat -an -p tcp | awk -v end=".$PORT" \
            'substr($5, length($5) - length(end) + 1) == end { n = split($4, a, "."); print a[n] }'
    fi
}

# client_state LOCALPORT: the state of the client's end that uses LOCALPORT
# (ESTAB or ESTABLISHED while open; CLOSE-WAIT or CLOSE_WAIT once the server
# has closed its side; nothing once it is gone).
client_state() {
    if command -v ss >/dev/null; then
        ss -Htn "( sport = :$1 and dport = :$PORT )" | awk '{ print $1; exit }'
    else
        netstat -an -p tcp | awk -v mine=".$1" -v end=".$PORT" \
            'substr($4, length($4) - length(mine) + 1) == mine && substr($5, length($5) - length(end) + 1) == end { print $6; exit }'
    fi
}
# server_closed LOCALPORT: the server has closed its side of that connection.
server_closed() { case $(client_state "$1") in ESTAB | ESTABLISHED) return 1 ;; esac; }

# slept_for MS: the server has been asleep at every look (of due's) for at
# least MS milliseconds (SLEEPING_SINCE: since when; a look that finds it
# awake starts the count again).
slept_for() {
    if family_asleep "$SERVER_PID"; then
        clock_ms
        [ -n "${SLEEPING_SINCE:-}" ] || SLEEPING_SINCE=$NOW_MS
        [ $((NOW_MS - SLEEPING_SINCE)) -ge "$1" ]
    else
        SLEEPING_SINCE=
        return 1
    fi
}

# dropped_within LOCALPORT N: the server has closed its side of that
# connection; $NEVER once it has slept N s and a quarter without doing so.
# (When a check calls this, the server has accepted the client and taken
# what it sent: asleep, it waits in a read whose N seconds have begun. A
# server whose limit works wakes up when they are over, and is then running,
# or has closed the connection, at every later look: one asleep for longer,
# the connection still open, has no limit, and will never close it.)
dropped_within() {
    server_closed "$1" && return 0
    due || return 1
    slept_for $(($2 * 1000 + 250)) && ! server_closed "$1" && return "$NEVER"
    return 1
}

# server_unread: bytes that wait, unread, in the server's end of a connection.
server_unread() {
    if command -v ss >/dev/null; then
        ss -Htn state established "sport = :$PORT" | awk '{ print $1; exit }'
    else
        netstat -an -p tcp | awk -v end=".$PORT" \
            '$6 == "ESTABLISHED" && substr($4, length($4) - length(end) + 1) == end { print $2; exit }'
    fi
}
server_unread_is() { [ "$(server_unread)" = "$1" ]; }

# silent_client_then_next: connects a client that never speaks (its local
# port in SILENT_PORT, its pid in SILENT_PID), waits until the server has
# accepted it, then queues the repository's client sending "next" behind it
# (its output in $T/next.out, its pid in NEXT_PID). Sets T0 (clock_ms) to a
# moment before the silent client connected.
silent_client_then_next() {
    clock_ms
    T0=$NOW_MS
    start_peer silent read elapsed waitfor "$T/never"
    SILENT_PID=$BG_PID
    wait_until queue_is 0
    SILENT_PORT=$(client_ports)
    # A command, not a function: start_bg runs it with exec (under ulimit -f).
    start_bg next sh -c 'echo next | "$1" 127.0.0.1 "$2"' sh "$CLIENT" "$PORT"
    NEXT_PID=$BG_PID
    # (A server that drops the silent client at once empties the queue
    # before we look: the test then sees it drop the client too soon.)
    wait_until next_queued ||
        fail_because "expected the second client to wait in the listen queue, the queue holds: $(queued_connections)"
}
next_queued() { queue_is 1 || server_closed "$SILENT_PORT"; }

# next_served: the next client got its reply ($NEVER once it has ended without).
next_served() {
    grep -qx "I got your message" "$T/next.out" 2>/dev/null && return 0
    exited "$NEXT_PID" && ! grep -qx "I got your message" "$T/next.out" 2>/dev/null && return "$NEVER"
    return 1
}

# next_served_within N: the same, and $NEVER once the server has slept N s
# and a quarter with the next client still in the listen queue (called once
# the client before it has its reply: asleep, the server waits in a read
# whose N seconds have begun; see dropped_within).
next_served_within() {
    local rc=0
    next_served || rc=$?
    [ "$rc" -eq 1 ] || return "$rc"
    due || return 1
    slept_for $(($1 * 1000 + 250)) && queue_is 1 && ! next_served && return "$NEVER"
    return 1
}

# next_accepted: the next client has left the listen queue. Once the server
# has closed the silent client's side, a correct server goes straight back to
# accept(): asleep with the next client still queued, it waits for something
# else (hang_up's read, for the same N seconds again), and the next client
# cannot be accepted "at once" any more ($NEVER).
next_accepted() {
    queue_is 0 && return 0
    due || return 1
    queue_is 1 && family_asleep "$SERVER_PID" && queue_is 1 && return "$NEVER"
    return 1
}

# bats test_tags=lesson
@test "drops a client that stays silent for IDLE_TIMEOUT seconds, not sooner, and serves the next one" {
    IDLE_TIMEOUT=1 start_ex_server
    silent_client_then_next
    IN_TIME_FROM=silent in_time 1 "$T0" "the server to drop the silent client (close its side) with IDLE_TIMEOUT=1," \
        dropped_within "$SILENT_PORT" 1 || { server_said; return 1; }
    if ! wait_until next_served 2>/dev/null; then
        echo "expected the next client to be served once the silent one was dropped;" \
            "the client printed: $(excerpt_file "$T/next.out"), on stderr: $(excerpt_file "$T/next.err")" >&2
        server_said
        return 1
    fi
    alive "$SILENT_PID" ||         # the silent client has neither spoken nor left
        fail_because "expected the silent client to be still there, but it ended: $(excerpt_file "$T/silent.err")"
    grep -q . "$T/server.err" ||
        fail_because "expected a line on the server's stderr about the dropped client, got nothing"
    wait_until grep -qx "Here is the message: next" "$T/server.out" 2>/dev/null ||
        fail_because "expected 'Here is the message: next' on the server's stdout, got: $(excerpt_file "$T/server.out")"
    server_is_alive
}

# hang_up sends its end of file and then reads until the client closes. With
# the read timeout in place, that read also waits N seconds for a client that
# never closes: the next client then waits 2N instead of N.
# bats test_tags=lesson
@test "dropping a silent client takes IDLE_TIMEOUT once, not twice: the next client is accepted at once" {
    IDLE_TIMEOUT=3 start_ex_server
    silent_client_then_next
    IN_TIME_FROM=silent in_time 3 "$T0" "the server to close its side of a silent client's connection with IDLE_TIMEOUT=3," \
        dropped_within "$SILENT_PORT" 3 || return 1
    if ! wait_until next_accepted 2>/dev/null; then
        fail_because "expected the next client to be accepted as soon as the silent one was dropped; the server" \
            "closed its side, then went to sleep with the next client still in the listen queue (does hang_up wait another 3 s?)"
        return 1
    fi
    wait_until next_served 2>/dev/null ||
        fail_because "expected the next client to get 'I got your message', got: $(excerpt_file "$T/next.out")"
}

# A limit checked only before the first read lets a client hold the server
# by sending a few bytes and then nothing.
# bats test_tags=lesson
@test "a client that sends half a line and then nothing is dropped too" {
    IDLE_TIMEOUT=1 start_ex_server
    clock_ms
    local t0=$NOW_MS half_port
    start_peer half send "half a li" read elapsed waitfor "$T/never"
    wait_until queue_is 0
    wait_until server_unread_is 0          # the server has read "half a li"
    half_port=$(client_ports)
    IN_TIME_NOTE="the kernel shows the client's end as $(client_state "$half_port")" IN_TIME_FROM=half \
        in_time 1 "$t0" "the server to drop a client that sent 'half a li' and then nothing, with IDLE_TIMEOUT=1," \
        dropped_within "$half_port" 1 || return 1
    served "after half a line"
}

# hang_up sends its end of file and then reads until the client closes. A
# client that got its reply and never closes must not hold the server there
# for ever: the time limit bounds that read too (SO_RCVTIMEO does by itself;
# a poll() in read_message alone does not). With IDLE_TIMEOUT=2, the next
# client is served 2 s after the first one connected (not sooner: the first
# one's 2 s of silence start after its reply) and within 2 + SLACK s.
# bats test_tags=lesson
@test "a client that gets its reply and then never closes is dropped too, and the next one is served" {
    IDLE_TIMEOUT=2 start_ex_server
    clock_ms
    local t0=$NOW_MS
    start_peer lingerer send $'first\n' read waitfor "$T/never"
    local lingerer=$BG_PID
    wait_until grep -qx "I got your message" "$T/lingerer.out" 2>/dev/null ||
        fail_because "expected the first client to get 'I got your message', got: $(excerpt_file "$T/lingerer.out")" ||
        return 1
    start_bg next sh -c 'echo next | "$1" 127.0.0.1 "$2"' sh "$CLIENT" "$PORT"
    NEXT_PID=$BG_PID
    IN_TIME_NOTE="does hang_up wait for that client's end of file for ever?" \
        in_time 2 "$t0" "the next client to be served, with IDLE_TIMEOUT=2 and a client before it that got its reply and never closed," \
        next_served_within 2 || return 1
    alive "$lingerer" ||
        fail_because "expected the first client to be still connected (it never closes), but it ended:" \
            "$(excerpt_file "$T/lingerer.err")"
}

# IDLE_TIMEOUT is 1 + SLACK: 3 on a quiet machine, more on a busy one, where
# the pause may take longer than the 1 s asked for.
@test "a client that pauses for 1 s in the middle of its line, with IDLE_TIMEOUT=3, is served" {
    IDLE_TIMEOUT=$((1 + SLACK)) start_ex_server
    start_peer slow send "slow " waitfor "$T/go" send $'but here\n' shutdown read
    wait_until queue_is 0
    wait_until grep -qx sent "$T/slow.out"
    wait_until server_unread_is 0          # the server has read "slow "
    sleep 1                                # the pause is the point of this test: a slow client, not a silent one
    touch "$T/go"
    wait_until exited "$BG_PID"
    if ! grep -qx "I got your message" "$T/slow.out"; then
        echo "expected the slow client to get 'I got your message', got:" \
            "$(excerpt "$(grep -v -x -e connected -e sent "$T/slow.out")") $(excerpt_file "$T/slow.err")" >&2
        server_said
        return 1
    fi
    grep -qx "Here is the message: slow but here" "$T/server.out" ||
        fail_because "expected 'Here is the message: slow but here' on the server's stdout, got: $(excerpt_file "$T/server.out")"
}

# bats test_tags=lesson
@test "an IDLE_TIMEOUT that is not 1 to 86400 in decimal digits (an empty one too) is refused with exit status 2" {
    local bad
    for bad in abc 0 -1 1.5 2x ' 5' +5 '' 86401; do
        try_env IDLE_TIMEOUT "$bad"
        if [ "$status" -ne 2 ] || [[ $output != *IDLE_TIMEOUT* ]] || [[ $output == *Listening* ]]; then
            fail_because "expected IDLE_TIMEOUT='$bad' to be refused with exit status 2 and a message naming" \
                "IDLE_TIMEOUT, got exit status $status ($([ "$status" -eq 124 ] && echo 'it went on to listen, killed' || echo 'it ended')) and: $(excerpt "$output")"
            return 1
        fi
    done
}

# ------------------------------------------------------------ the default, 10 s
# Seeing a 10 s default takes 10 s. So its server starts before the first
# test (setup_file), with a client that connects, says nothing and reads
# until the server closes, and the last test looks at when that happened:
# the wait runs beside the other tests instead of after them.
setup_file() {
    DEFAULT_T="$BATS_FILE_TMPDIR/default"
    export DEFAULT_T
    mkdir -p "$DEFAULT_T"
    (
        T=$DEFAULT_T HARNESS_GROUPS="$DEFAULT_T/.process-groups" BG_PIDS=()
        : >"$HARNESS_GROUPS"
        [ -n "${EX_PROG:-}" ] && [ -x "$EX_PROG" ] && [ -x "$PEER" ] || exit 0
        unset IDLE_TIMEOUT
        start_ex_server 2>"$T/start.err" || exit 0
        clock_ms
        echo "$NOW_MS" >"$T/t0"
        start_timed silent "$PEER" 127.0.0.1 "$PORT" read
    ) || true
}

teardown_file() {
    T=$DEFAULT_T HARNESS_GROUPS="$DEFAULT_T/.process-groups" BG_PIDS=()
    forget_foreign_groups
    stop_everything
}

# default_dropped: the silent client of setup_file has ended, the server having closed.
default_dropped() { ended silent "$DEFAULT_T"; }

# bats test_tags=lesson
@test "without IDLE_TIMEOUT, a silent client is dropped after 10 seconds, not sooner" {
    local t0
    t0=$(cat "$DEFAULT_T/t0" 2>/dev/null) || {
        fail_because "expected the server to start without IDLE_TIMEOUT, got: $(excerpt_file "$DEFAULT_T/start.err");" \
            "its stderr: $(excerpt_file "$DEFAULT_T/server.err")"
        return 1
    }
    if default_dropped; then
        # It ended before this test began: when is in the file.
        [ $((END_MS - t0)) -ge $((10000 - TICK_MS)) ] ||
            fail_because "expected a server without IDLE_TIMEOUT to drop a silent client after 10 s, not sooner;" \
                "it closed the connection after $(seconds_of $((END_MS - t0))) s"
        return
    fi
    in_time 10 "$t0" "a server without IDLE_TIMEOUT to drop a silent client (the default is 10 s)" default_dropped || return 1
    [ $((END_MS - t0)) -ge $((10000 - TICK_MS)) ] ||
        fail_because "expected a server without IDLE_TIMEOUT to drop a silent client after 10 s, not sooner;" \
            "it closed the connection after $(seconds_of $((END_MS - t0))) s"
}
