#!/usr/bin/env bats
# client: sends one line, prints the reply; clear errors, never a hang.

load helper

@test "client sends one line and prints the reply" {
    start_server step2-loop
    run with_deadline "$CLIENT" 127.0.0.1 "$PORT" <<<"hello"
    [ "$status" -eq 0 ]
    [ "$output" = "I got your message" ]
    wait_until grep -qx "Here is the message: hello" "$T/server.out"
}

@test "client sends only the first line of its input" {
    start_server step2-loop
    run with_deadline "$CLIENT" 127.0.0.1 "$PORT" <<<$'one\ntwo'
    [ "$status" -eq 0 ]
    served "next"
    ! grep -q 'two' "$T/server.out"
}

@test "client sends a last line that has no newline (end of input ends it)" {
    start_server step2-loop
    printf 'no newline' >"$T/in"
    run with_deadline "$CLIENT" 127.0.0.1 "$PORT" <"$T/in"
    [ "$status" -eq 0 ]
    [ "$output" = "I got your message" ]
    wait_until grep -qx "Here is the message: no newline" "$T/server.out"
}

@test "client reaches a server by the name localhost, whatever address comes first" {
    start_server step2-loop
    run with_deadline "$CLIENT" localhost "$PORT" <<<"by name"
    [ "$status" -eq 0 ]
    [ "$output" = "I got your message" ]
}

# A name with two addresses, ::1 first: the IPv4-only server refuses the
# first, and the client must go on to the second. The name lives in a private
# copy of /etc/hosts, mounted over the real one for this one command only.
@test "client tries the next address when the first one refuses" {
    [ "$(id -u)" -eq 0 ] && command -v unshare >/dev/null ||
        skip "needs root and unshare to give the client its own /etc/hosts"
    start_server step2-loop
    printf '::1 dual.test\n127.0.0.1 dual.test\n' >"$T/hosts"
    run with_deadline unshare --mount sh -c \
        'mount --bind "$1" /etc/hosts && getent ahosts dual.test | head -n 1 && exec "$2" dual.test "$3"' \
        sh "$T/hosts" "$CLIENT" "$PORT" <<<"second address"
    echo "$output"
    [ "$status" -eq 0 ]
    [[ ${lines[0]} == "::1 "* ]]                    # ::1 really came first
    [ "${lines[1]}" = "I got your message" ]
}

@test "client connects to an IPv6 literal" {
    start_bg v6 "$PEER" -l ::1 read send "I got your message" close
    wait_until grep -q . "$T/v6.out" "$T/v6.err"       # listening, or failed to
    if grep -q 'peer: ' "$T/v6.err"; then skip "this machine has no IPv6 loopback"; fi
    PORT=$(sed -n 's/^Listening on port //p' "$T/v6.out")
    run with_deadline "$CLIENT" ::1 "$PORT" <<<"over IPv6"
    [ "$status" -eq 0 ]
    [ "$output" = "I got your message" ]
    grep -qx "over IPv6" "$T/v6.out"
}

@test "client without a terminal prints no prompt; with one, it asks for the message" {
    start_server step2-loop
    run with_deadline "$CLIENT" 127.0.0.1 "$PORT" <<<"piped"
    [[ $output != *"Please enter the message"* ]]
    command -v script >/dev/null && [ "$(uname -s)" = Linux ] ||
        skip "needs util-linux script to give the client a terminal"
    run with_deadline script -qec "'$CLIENT' 127.0.0.1 $PORT" /dev/null <<<"typed"
    [ "$status" -eq 0 ]
    [[ $output == *"Please enter the message: "* ]]
    [[ $output == *"I got your message"* ]]
}

@test "client without arguments, or with too many, prints its usage" {
    run with_deadline "$CLIENT"
    [ "$status" -ne 0 ]
    [[ $output == usage:* ]]
    run with_deadline "$CLIENT" localhost
    [ "$status" -ne 0 ]
    [[ $output == usage:* ]]
    run with_deadline "$CLIENT" localhost 5000 extra
    [ "$status" -ne 0 ]
    [[ $output == usage:* ]]
}

@test "client rejects a port that is not a number from 1 to 65535" {
    for bad in "" 0 http 80x -1 65536 " 80"; do
        run with_deadline "$CLIENT" localhost "$bad" </dev/null
        echo "port '$bad' gave status $status: $output"
        [ "$status" -ne 0 ]
        [[ $output == *"bad port '$bad'"* ]]
    done
}

@test "client reports a host that does not exist" {
    run with_deadline "$CLIENT" no-such-host.invalid 5000 </dev/null
    [ "$status" -ne 0 ]
    [[ $output == *"ERROR, no such host 'no-such-host.invalid'"* ]]
}

@test "client reports a refused connection" {
    start_server step1-single
    "$PEER" 127.0.0.1 "$PORT" close >/dev/null     # step1 serves this one and exits
    wait_until exited "$SERVER_PID"
    run with_deadline "$CLIENT" 127.0.0.1 "$PORT" <<<"anyone?"
    [ "$status" -ne 0 ]
    [[ $output == *"ERROR connecting: Connection refused"* ]]
}

@test "client reports a server that hangs up without replying" {
    start_peer_server read close
    run with_deadline "$CLIENT" 127.0.0.1 "$PORT" <<<"hello?"
    [ "$status" -ne 0 ]
    [[ $output == *"ERROR, the server closed the connection without replying"* ]]
}

@test "client reports a server that resets the connection" {
    start_peer_server reset
    run with_deadline "$CLIENT" 127.0.0.1 "$PORT" <<<"hello?"
    [ "$status" -ne 0 ]
    [[ $output == *ERROR* ]]
}

@test "client reports empty input instead of sending nothing" {
    start_server step2-loop
    run with_deadline "$CLIENT" 127.0.0.1 "$PORT" </dev/null
    [ "$status" -ne 0 ]
    [[ $output == *"ERROR, no message"* ]]
    served "the server is fine"
}

@test "client reports a reply it could not write out" {
    [ -w /dev/full ] || skip "needs /dev/full, a device on which every write fails"
    start_server step2-loop
    run with_deadline sh -c 'echo hello | "$1" 127.0.0.1 "$2" >/dev/full' sh "$CLIENT" "$PORT"
    [ "$status" -ne 0 ]
    [[ $output == *"ERROR writing to standard output"* ]]
}
