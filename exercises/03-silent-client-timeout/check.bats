#!/usr/bin/env bats
# Exercise 03, a silent client must not hold the server forever: with
# IDLE_TIMEOUT=N, a client that sends nothing for N seconds is dropped (the
# server closes its side) and the next client is served, at once and not N
# seconds later; a client that got its reply and never closes is dropped
# too; a client that speaks in time is served; a bad or empty IDLE_TIMEOUT
# is refused.

load ../lib/checker

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
# (its output in $T/next.out).
silent_client_then_next() {
    start_peer silent waitfor "$T/never"
    SILENT_PID=$BG_PID
    wait_until queue_is 0
    SILENT_PORT=$(client_ports)
    # A command, not a function: start_bg runs it with exec (under ulimit -f).
    start_bg next sh -c 'echo next | "$1" 127.0.0.1 "$2"' sh "$CLIENT" "$PORT"
    wait_until queue_is 1 ||
        fail_because "expected the second client to wait in the listen queue, the queue holds: $(queued_connections)"
}

# bats test_tags=lesson
@test "drops a client that stays silent for IDLE_TIMEOUT seconds, and serves the next one" {
    IDLE_TIMEOUT=1 start_ex_server
    silent_client_then_next
    if ! DEADLINE=4 wait_until grep -qx "I got your message" "$T/next.out" 2>/dev/null; then
        echo "expected the next client to be served within 4 s, with IDLE_TIMEOUT=1 and a silent client" \
            "before it; the client printed: $(excerpt_file "$T/next.out"), on stderr: $(excerpt_file "$T/next.err")" >&2
        server_said
        return 1
    fi
    alive "$SILENT_PID"            # the silent client has neither spoken nor left
    server_closed "$SILENT_PORT" ||
        fail_because "expected the server to have closed the silent client's connection, the kernel shows" \
            "the client's end as: $(client_state "$SILENT_PORT")"
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
    if ! DEADLINE=6 wait_until server_closed "$SILENT_PORT" 2>/dev/null; then
        fail_because "expected the server to close a silent client's connection after IDLE_TIMEOUT=3 s," \
            "the kernel still shows the client's end as: $(client_state "$SILENT_PORT") after 6 s"
        return 1
    fi
    if ! DEADLINE=2 wait_until queue_is 0 2>/dev/null; then
        fail_because "expected the next client to be accepted as soon as the silent one was dropped; it was" \
            "still in the listen queue more than a second after the server closed its side (does hang_up wait another 3 s?)"
        return 1
    fi
    wait_until grep -qx "I got your message" "$T/next.out" 2>/dev/null ||
        fail_because "expected the next client to get 'I got your message', got: $(excerpt_file "$T/next.out")"
}

# A limit checked only before the first read lets a client hold the server
# by sending a few bytes and then nothing.
# bats test_tags=lesson
@test "a client that sends half a line and then nothing is dropped too" {
    IDLE_TIMEOUT=1 start_ex_server
    start_peer half send "half a li" waitfor "$T/never"
    wait_until queue_is 0
    wait_until server_unread_is 0          # the server has read "half a li"
    local half_port
    half_port=$(client_ports)
    if ! DEADLINE=4 wait_until server_closed "$half_port" 2>/dev/null; then
        fail_because "expected the server to drop a client that sent 'half a li' and then nothing, with" \
            "IDLE_TIMEOUT=1; after 4 s the kernel still shows the client's end as: $(client_state "$half_port")"
        return 1
    fi
    served "after half a line"
}

# hang_up sends its end of file and then reads until the client closes. A
# client that got its reply and never closes must not hold the server there
# for ever: the time limit bounds that read too (SO_RCVTIMEO does by itself;
# a poll() in read_message alone does not). With IDLE_TIMEOUT=2, the next
# client must be served within 5 s of the first one getting its reply.
# bats test_tags=lesson
@test "a client that gets its reply and then never closes is dropped too, and the next one is served" {
    IDLE_TIMEOUT=2 start_ex_server
    start_peer lingerer send $'first\n' read waitfor "$T/never"
    local lingerer=$BG_PID
    wait_until grep -qx "I got your message" "$T/lingerer.out" 2>/dev/null ||
        fail_because "expected the first client to get 'I got your message', got: $(excerpt_file "$T/lingerer.out")" ||
        return 1
    start_bg next sh -c 'echo next | "$1" 127.0.0.1 "$2"' sh "$CLIENT" "$PORT"
    if ! DEADLINE=5 wait_until grep -qx "I got your message" "$T/next.out" 2>/dev/null; then
        fail_because "expected the next client to be served within 5 s, with IDLE_TIMEOUT=2 and a client before it" \
            "that got its reply and never closed; the next client printed: $(excerpt_file "$T/next.out")" \
            "(does hang_up wait for that client's end of file for ever?)"
        return 1
    fi
    alive "$lingerer" ||
        fail_because "expected the first client to be still connected (it never closes), but it ended:" \
            "$(excerpt_file "$T/lingerer.err")"
}

@test "a client that pauses for 1 s in the middle of its line, with IDLE_TIMEOUT=3, is served" {
    IDLE_TIMEOUT=3 start_ex_server
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
        DEADLINE=2 run with_deadline env IDLE_TIMEOUT="$bad" "$EX_PROG" 0
        if [ "$status" -ne 2 ] || [[ $output != *IDLE_TIMEOUT* ]] || [[ $output == *Listening* ]]; then
            fail_because "expected IDLE_TIMEOUT='$bad' to be refused with exit status 2 and a message naming" \
                "IDLE_TIMEOUT, got exit status $status ($([ "$status" -eq 124 ] && echo 'still running after 2 s, killed' || echo 'it ended')) and: $(excerpt "$output")"
            return 1
        fi
    done
}
