#!/usr/bin/env bats
# framing: where one message ends. TCP carries bytes, not messages, so our
# servers read until a newline or the client's end of file (its half-close).
# A client that sends neither and then waits for the reply waits for ever, and
# so does the server: the classic tutorial's client does exactly that with a
# line longer than its fgets() keeps. And a line may end in CRLF, as telnet
# sends it: the server must not print the CR.

load helper

# The classic client's fgets(buffer, 255, stdin) keeps at most 254 bytes.
LONG_LINE=$(printf '%254s' '' | tr ' ' x)

# side_state SIDE: "STATE BYTES" of our connection as one end sees it: the
# server's end (local port $PORT, remote port $CPORT) or the client's end (the
# other way round). BYTES: what arrived there and was not read yet. Both ports
# are needed: the kernel hands out the same numbers to listeners and to
# clients, and an earlier connection that used $PORT may still be in TIME_WAIT.
side_state() { side_columns "$1" | awk '{ print $1, $2 }'; }

# side_columns SIDE: "STATE RECV-Q SEND-Q" of that end; SEND-Q: what it sent
# that the other end has not acknowledged yet.
side_columns() {
    local here=$PORT there=$CPORT
    [ "$1" = client ] && { here=$CPORT; there=$PORT; }
    if command -v ss >/dev/null; then
        ss -Htan "sport = :$here and dport = :$there" | awk '{ print $1, $2, $3; exit }'
    else
        netstat -an -p tcp | awk -v l=".$here" -v r=".$there" \
            'substr($4, length($4) - length(l) + 1) == l && substr($5, length($5) - length(r) + 1) == r {
                 s = $6; if (s == "ESTABLISHED") s = "ESTAB"; gsub("_", "-", s); print s, $2, $3; exit }'
    fi
}

# server_read_all: every byte the client sent has reached the server's end
# (the client's end has nothing left unacknowledged) and none waits there
# unread (or one of the ends has gone already, which the checks after the wait
# will report).
server_read_all() {
    local client server
    client=$(side_columns client)
    server=$(side_columns server)
    [ -z "$client" ] || [ "${client##* }" = 0 ] || return 1
    [ -z "$server" ] || [ "$(echo "$server" | cut -d' ' -f2)" = 0 ]
}

# Neither side can go on: the server has read every byte the client sent
# and waits in read() for the rest of the line, while the client waits for a
# reply. The kernel is the witness that nothing moves.
check_both_wait() {
    local step=$1 got
    start_server "$step"
    start_peer classic ports send "$LONG_LINE" read
    wait_until grep -qx sent "$T/classic.out"
    CPORT=$(sed -n 's/^ports \([0-9]*\) .*/\1/p' "$T/classic.out")   # the client's own port
    wait_until server_read_all                 # accepted, and all 254 bytes read
    # The client is still connected, and nothing came back: no byte waits
    # for it, and the server neither replied nor hung up (that would have
    # moved its end out of ESTAB).
    alive "$BG_PID" ||
        { echo "expected the client to wait for a reply, but it ended: '$(cat "$T/classic.out" "$T/classic.err" | tr '\n' ' ')'" >&2; return 1; }
    got=$(side_state client)
    [ "$got" = "ESTAB 0" ] || { echo "expected the client's end to be 'ESTAB 0' (connected, nothing to read), got: '$got'" >&2; return 1; }
    got=$(side_state server)
    [ "$got" = "ESTAB 0" ] || { echo "expected the server's end to be 'ESTAB 0' (connected, all read), got: '$got'" >&2; return 1; }
    got=$(sed '1,3d' "$T/classic.out")            # connected, ports, sent: then the reply
    [ -z "$got" ] || { echo "expected the client to have received nothing, got: '$got'" >&2; return 1; }
    ! grep -q 'Here is the message' "$T/server.out" ||
        { echo "expected the server to print nothing while it waits, got: '$(grep 'Here is the message' "$T/server.out")'" >&2; return 1; }
}

# The same 254 bytes, followed by the half-close: end of file ends the line.
check_half_close_ends_it() {
    local step=$1
    start_server "$step"
    run with_deadline "$PEER" 127.0.0.1 "$PORT" send "$LONG_LINE" shutdown read
    [ "$status" -eq 0 ] || { echo "expected the peer to get a reply, got status $status: $output" >&2; return 1; }
    [[ $output == *"I got your message"* ]] || { echo "expected 'I got your message', got: '$output'" >&2; return 1; }
    wait_until grep -qxF "Here is the message: $LONG_LINE" "$T/server.out"
}

# What telnet sends: the line ends in CR LF. The CR is part of the ending,
# not of the message, so the server must not print it (as \x0d or raw).
check_crlf() {
    local step=$1
    start_server "$step"
    run with_deadline "$PEER" 127.0.0.1 "$PORT" send $'hello\r\n' shutdown read
    [ "$status" -eq 0 ] || { echo "expected the peer to get a reply, got status $status: $output" >&2; return 1; }
    wait_until grep -q '^Here is the message: ' "$T/server.out"
    [ "$(grep '^Here is the message: ' "$T/server.out")" = "Here is the message: hello" ] ||
        { echo "expected 'Here is the message: hello', got: '$(grep '^Here is the message: ' "$T/server.out")'" >&2; return 1; }
}

# A newline alone is a line, the empty one: the server must print an empty
# message and reply. (Counting the newline in the line's length is what tells
# an empty line, one byte, from a client that sent nothing at all, none.)
check_empty_line() {
    start_server "$1"
    ask ""
    [ "$status" -eq 0 ] && [ "$output" = "I got your message" ] ||
        fail_because "expected the client sending an empty line to print 'I got your message' and exit 0, got exit status $status and: $(excerpt "$output")"
    wait_until grep -qx 'Here is the message: ' "$T/server.out" ||
        fail_because "expected 'Here is the message: ' (and nothing after it) on the server's stdout, got: $(excerpt_file "$T/server.out")"
}

@test "step1 and a client that sends 254 bytes without a newline wait for each other" {
    check_both_wait step1-single
}

@test "step2 and a client that sends 254 bytes without a newline wait for each other" {
    check_both_wait step2-loop
}

@test "step3 and a client that sends 254 bytes without a newline wait for each other" {
    check_both_wait step3-fork
}

@test "step4 and a client that sends 254 bytes without a newline wait for each other" {
    check_both_wait step4-reap
}

@test "step1 replies to the same 254 bytes once the client half-closes" {
    check_half_close_ends_it step1-single
}

@test "step2 replies to the same 254 bytes once the client half-closes" {
    check_half_close_ends_it step2-loop
}

@test "step3 replies to the same 254 bytes once the client half-closes" {
    check_half_close_ends_it step3-fork
}

@test "step4 replies to the same 254 bytes once the client half-closes" {
    check_half_close_ends_it step4-reap
}

@test "step1 prints a CRLF line (what telnet sends) without the CR" {
    check_crlf step1-single
}

@test "step2 prints a CRLF line (what telnet sends) without the CR" {
    check_crlf step2-loop
}

@test "step3 prints a CRLF line (what telnet sends) without the CR" {
    check_crlf step3-fork
}

@test "step4 prints a CRLF line (what telnet sends) without the CR" {
    check_crlf step4-reap
}

@test "step1 replies to an empty line (a newline alone is a message)" {
    check_empty_line step1-single
}

@test "step2 replies to an empty line (a newline alone is a message)" {
    check_empty_line step2-loop
}

@test "step3 replies to an empty line (a newline alone is a message)" {
    check_empty_line step3-fork
}

@test "step4 replies to an empty line (a newline alone is a message)" {
    check_empty_line step4-reap
}
