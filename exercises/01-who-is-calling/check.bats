#!/usr/bin/env bats
# Exercise 01, who is calling: for every client it accepts, the server prints
# "Connection from ADDRESS:PORT" at once, with the address and port the kernel
# shows for the client's end of the connection, and it still serves the
# client as step 2 does.

load ../lib/checker

# client_ports: the local port of every client's end of an established
# connection to our server, one per line (the kernel's view: ss or netstat).
client_ports() {
    if command -v ss >/dev/null; then
        ss -Htn state established "dport = :$PORT" | awk '{ n = split($3, a, ":"); print a[n] }'
    else
        netstat -an -p tcp | awk -v end=".$PORT" \
            '$6 == "ESTABLISHED" && substr($5, length($5) - length(end) + 1) == end { n = split($4, a, "."); print a[n] }'
    fi
}
clients_are() { [ "$(client_ports | grep -c .)" -eq "$1" ]; }

# connection_lines: what the server printed on its lines that name a client.
connection_lines() { grep '^Connection from' "$T/server.out" || true; }
connection_lines_are() { [ "$(connection_lines | grep -c .)" -ge "$1" ]; }

# named_at_once: the server has printed a line that names a client. Once it
# has accepted the client (the test waits for that first), a correct server
# prints the line before it waits for anything: if the server is asleep and
# the line is still missing, it waits for the client to speak first, and the
# line can no longer come "as soon as it accepts" ($NEVER).
named_at_once() {
    connection_lines_are 1 && return 0
    due || return 1
    family_asleep "$SERVER_PID" && ! connection_lines_are 1 && return "$NEVER"
    return 1
}
messages_at_least() { [ "$(grep -c '^Here is the message' "$T/server.out")" -ge "$1" ]; }

# expect_lines LINE...: the server's lines that name a client or a message
# are exactly these, in this order. On failure it names the first that differs.
expect_lines() {
    local got=() i=0 line
    while IFS= read -r line; do
        got+=("$line")
    done < <(grep -e '^Connection from' -e '^Here is the message' "$T/server.out")
    while [ "$i" -lt "$#" ] || [ "$i" -lt "${#got[@]}" ]; do
        i=$((i + 1))
        [ "$i" -le "$#" ] && [ "$i" -le "${#got[@]}" ] && [ "${!i}" = "${got[i - 1]}" ] && continue
        if [ "$i" -gt "${#got[@]}" ]; then
            fail_because "expected, on the server's stdout, '${!i}' as its line $i that names a client or a message, but it printed no more" \
                "('Connection from' and 'Here is the message' lines: ${#got[@]}, expected $#)"
        elif [ "$i" -gt "$#" ]; then
            fail_because "expected $# lines ('Connection from' and 'Here is the message'), the server printed" \
                "one more: '${got[i - 1]}'"
        else
            fail_because "expected, on the server's stdout, '${!i}' as its line $i that names a client or a message, got: '${got[i - 1]}'$(swap_note "${!i}" "${got[i - 1]}")"
        fi
        return 1
    done
}

# swap_note EXPECTED GOT: when GOT is the line EXPECTED ("Connection from
# ADDRESS:PORT") with the two bytes of PORT swapped, says so (the port was
# printed in network byte order); otherwise says nothing.
swap_note() {
    local port=${1##*:} swapped
    swapped=$(( ((port & 255) << 8) | (port >> 8) ))
    [ "$swapped" -ne "$port" ] && [ "$2" = "${1%:*}:$swapped" ] || return 0
    echo "; that is the port with its two bytes swapped: network byte order, see Hint 3"
}

# call NAME TEXT: a client that connects and stays silent until the test
# touches $T/NAME.go, then sends TEXT as a line and reads the reply. Sets
# CALLER_PORT to its own port, as the kernel sees it.
call() {
    start_peer "$1" waitfor "$T/$1.go" send "$2"$'\n' shutdown read
    wait_until clients_are 1 ||
        fail_because "expected one connection to port $PORT, the kernel shows: $(client_ports | tr '\n' ' ')"
    CALLER_PORT=$(client_ports)
}

# bats test_tags=lesson
@test "names a client as soon as it accepts it: 'Connection from 127.0.0.1:PORT' with the client's own port" {
    start_ex_server
    call caller hello
    wait_until queue_is 0          # the server has accept()ed the silent client
    if ! wait_until named_at_once 2>/dev/null; then
        fail_because "expected 'Connection from 127.0.0.1:$CALLER_PORT' on the server's stdout as soon as it" \
            "accepted the client (before the client spoke), got: $(excerpt_file "$T/server.out")"
        return 1
    fi
    local want="Connection from 127.0.0.1:$CALLER_PORT" got
    got=$(connection_lines)
    [ "$got" = "$want" ] || fail_because "expected the server's line for a client whose port is $CALLER_PORT" \
        "to be '$want', got: $(excerpt "$got")$(swap_note "$want" "$got")"
}

# bats test_tags=lesson
@test "still serves every client, and names each one with its own port before its message" {
    start_ex_server
    local expected=() name
    for name in first second third; do
        call "$name" "message from the $name client"
        expected+=("Connection from 127.0.0.1:$CALLER_PORT" "Here is the message: message from the $name client")
        touch "$T/$name.go"
        wait_until grep -qx "I got your message" "$T/$name.out" 2>/dev/null || {
            fail_because "expected the $name client to get 'I got your message', got: $(excerpt_file "$T/$name.out")"
            server_said
            return 1
        }
        wait_until clients_are 0
    done
    wait_until messages_at_least 3
    expect_lines "${expected[@]}"
    server_is_alive
}

@test "the repository's client still gets its reply" {
    start_ex_server
    served "hello from the client"
    server_is_alive
}
