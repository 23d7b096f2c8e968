#!/usr/bin/env bats
# client: sends one line, prints the reply; clear errors, never a hang.

load helper

# ---------------------------------------------------------------- helpers of this file

# side_state SIDE: "STATE BYTES" of our connection as one end sees it: the
# server's end (local port $PORT, remote port $CPORT) or the client's end (the
# other way round). BYTES: what arrived at that end and was not read yet. Both
# ports are needed: the kernel hands out the same numbers to listeners and to
# clients, and an earlier connection that used $PORT may still be in TIME_WAIT.
side_state() {
    side_columns "$1" | awk '{ print $1, $2 }'
}

# side_columns SIDE: "STATE RECV-Q SEND-Q" of that end, in ss's names.
# Once the other side's FIN is in, Linux counts it in Recv-Q as one byte more
# than there is to read ("hi\n" shows as 4): that byte is taken off here.
side_columns() {
    local here=$PORT there=$CPORT
    [ "$1" = client ] && { here=$CPORT; there=$PORT; }
    if command -v ss >/dev/null; then
        ss -Htan "sport = :$here and dport = :$there" | awk '{
            if ($1 == "CLOSE-WAIT" || $1 == "LAST-ACK" || $1 == "CLOSING") $2--
            print $1, $2, $3; exit }'
    else
        netstat -an -p tcp | awk -v l=".$here" -v r=".$there" \
            'substr($4, length($4) - length(l) + 1) == l && substr($5, length($5) - length(r) + 1) == r {
                 s = $6; if (s == "ESTABLISHED") s = "ESTAB"; gsub("_", "-", s); print s, $2, $3; exit }'
    fi
}

# client_port: waits until the peer server (started with the action "ports"
# first) has accepted the client and said which port the client's end has;
# sets CPORT.
client_port() {
    wait_until grep -q '^ports ' "$T/peer_server.out" ||
        fail_because "expected the peer server to accept the client, got: $(excerpt_file "$T/peer_server.err")"
    CPORT=$(sed -n 's/^ports [0-9]* \([0-9]*\)$/\1/p' "$T/peer_server.out")
}
side_is() { [ "$(side_state "$1")" = "$2" ]; }
# side_gone SIDE: that end of the connection no longer exists.
side_gone() { [ -z "$(side_state "$1")" ]; }

# start_late_client: the client, in the background, connected to $PORT; its
# line ("hello") arrives on its standard input only once $T/go exists, so a
# test can decide what happens first. Output in $T/client.out and .err.
start_late_client() {
    start_bg client late_client
    CLIENT_PID=$BG_PID
}
late_client() { line_after_go | "$CLIENT" 127.0.0.1 "$PORT"; }
line_after_go() {
    while [ ! -e "$T/go" ]; do sleep 0.01; done
    echo hello
}

# finish_client: waits for the background client to end; sets status.
finish_client() {
    wait_until exited "$CLIENT_PID"
    status=0
    wait "$CLIENT_PID" || status=$?
}

# client_ended STATUS TEXT: the background client exited with STATUS and
# printed TEXT (on stdout when STATUS is 0, on stderr otherwise), and nothing else:
# after an error, not even an empty line on stdout (which $(...) would hide).
# Which error a reset gives (ECONNRESET, EPIPE, ...) is the system's choice:
# the texts here are Linux's. Elsewhere an error must still be an ERROR line.
client_ended() {
    local want_status=$1 want=$2 out err
    out=$(cat "$T/client.out")
    err=$(cat "$T/client.err")
    if [ "$want_status" -ne 0 ] && [ -s "$T/client.out" ]; then
        out="$out [$(bytes "$T/client.out")]"
    fi
    if [ "$(uname -s)" != Linux ] && [ "$want_status" -ne 0 ] && [[ $err == ERROR* ]]; then
        want=$err
    fi
    if [ "$status" -ne "$want_status" ] ||
       { [ "$want_status" -eq 0 ] && { [ "$out" != "$want" ] || [ -n "$err" ]; }; } ||
       { [ "$want_status" -ne 0 ] && { [ "$err" != "$want" ] || [ -n "$out" ]; }; }; then
        echo "expected the client to exit $want_status and print '$want'," \
             "got exit $status, stdout '$out', stderr '$err'" >&2
        return 1
    fi
}

# bytes FILE: the bytes of FILE, shown one by one (od -c) on one line.
bytes() { od -An -c "$1" | tr -s ' \n' ' '; }

# same_bytes FILE TEXT: FILE holds exactly the bytes of TEXT (printf format).
same_bytes() {
    printf "$2" >"$1.expected"
    cmp -s "$1.expected" "$1" ||
        { echo "expected the bytes [$(bytes "$1.expected")], got [$(bytes "$1")]" >&2; return 1; }
}

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

# stdout and stderr apart, and stdout byte for byte: an empty reply must not
# come out as an empty line, which bats' $output would not show.
@test "client reports a server that hangs up without replying, and prints nothing on stdout" {
    start_peer_server read close
    status=0
    with_deadline "$CLIENT" 127.0.0.1 "$PORT" <<<"hello?" >"$T/stdout" 2>"$T/stderr" || status=$?
    expect_same "exit status" 1 "$status"
    expect_same "stderr" "ERROR, the server closed the connection without replying" "$(cat "$T/stderr")"
    same_bytes "$T/stdout" ''
}

# A server that hangs up before it has read all of a long line sends its FIN,
# then a reset, as its close() throws away the input it never read. A write
# after both fails with EPIPE and raises SIGPIPE, whose default action kills
# the client without a word (exit status 141 in a shell). The line must be
# longer than the loopback can hold for a server that does not read (the
# client's send buffer grows to tcp_wmem's maximum, 4 MB by default), or the
# client would finish writing before the reset.
@test "client reports a server that hangs up in the middle of a long line, and is not killed by SIGPIPE" {
    start_peer_server shutdown close
    huge_line 30000000 >"$T/huge"
    status=0
    with_deadline "$CLIENT" 127.0.0.1 "$PORT" <"$T/huge" >"$T/stdout" 2>"$T/stderr" || status=$?
    [ "$status" -ne 141 ] || fail_because "expected the client to report the closed connection and exit 1, got exit status 141: killed by SIGPIPE"
    expect_same "exit status" 1 "$status"
    if [ "$(uname -s)" = Linux ]; then
        expect_same "stderr" "ERROR writing to socket: Broken pipe" "$(cat "$T/stderr")"
    else
        [[ $(cat "$T/stderr") == "ERROR writing to socket: "* ]] ||
            fail_because "expected 'ERROR writing to socket: ...' on stderr, got: $(excerpt_file "$T/stderr")"
    fi
    same_bytes "$T/stdout" ''
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

# ---------------------------------------------------------------- the end of the reply
# bats' $output drops trailing newlines, so these compare the bytes of stdout.

@test "client ends our servers' reply, which has no newline, with one newline (bytes)" {
    start_server step2-loop
    with_deadline "$CLIENT" 127.0.0.1 "$PORT" <<<"hello" >"$T/stdout"
    same_bytes "$T/stdout" 'I got your message\n'
}

@test "client adds no newline to a reply that already ends with one (bytes)" {
    start_peer_server read send $'hi\n' close
    with_deadline "$CLIENT" 127.0.0.1 "$PORT" <<<"hello" >"$T/stdout"
    same_bytes "$T/stdout" 'hi\n'
}

@test "client ends a reply of two lines, the last without a newline, with one newline (bytes)" {
    start_peer_server read send $'one\ntwo' close
    with_deadline "$CLIENT" 127.0.0.1 "$PORT" <<<"hello" >"$T/stdout"
    same_bytes "$T/stdout" 'one\ntwo\n'
}

# ---------------------------------------------------------------- a server that is gone first
# The line reaches the client's input only once the test has seen, in the
# kernel's tables, that the server has closed or reset (or not yet).
# When the server closed first, the client's line then gets a reset back,
# and its shutdown() fails with ENOTCONN: it must read on, not give up.

@test "client prints a reply that the server sent before closing, though its own shutdown then fails" {
    [ "$(uname -s)" = Linux ] ||
        skip "checked on Linux, which keeps received data readable after a reset; RFC 9293 lets other systems drop it"
    start_peer_server ports send $'hi\n' close
    start_late_client
    client_port
    wait_until side_is client "CLOSE-WAIT 3"    # the reply and the server's FIN are in
    touch "$T/go"
    finish_client
    client_ended 0 "hi"
}

@test "client whose line comes after the server closed says the server closed without replying" {
    start_peer_server ports close
    start_late_client
    client_port
    wait_until side_is client "CLOSE-WAIT 0"    # the server's FIN is in, no reply
    touch "$T/go"
    finish_client
    client_ended 1 "ERROR, the server closed the connection without replying"
}

@test "client whose line came before the server closed reports the reset that closing unread input sends" {
    start_peer_server ports waitfor "$T/close" close
    touch "$T/go"
    start_late_client
    client_port
    wait_until side_is server "CLOSE-WAIT 6"    # "hello\n" and the client's FIN wait, unread
    touch "$T/close"
    finish_client
    client_ended 1 "ERROR reading from socket: Connection reset by peer"
}

@test "client whose line comes after the server reset says so, when it writes" {
    start_peer_server ports reset
    local server=$BG_PID
    start_late_client
    client_port
    wait_until exited "$server"                 # the reset is sent ...
    wait_until side_gone client                 # ... and has ended the client's end
    touch "$T/go"
    finish_client
    client_ended 1 "ERROR writing to socket: Connection reset by peer"
}

@test "client whose line came before the server reset says so, when it reads" {
    start_peer_server ports waitfor "$T/reset" reset
    touch "$T/go"
    start_late_client
    client_port
    wait_until side_is server "CLOSE-WAIT 6"
    touch "$T/reset"
    finish_client
    client_ended 1 "ERROR reading from socket: Connection reset by peer"
}

# ---------------------------------------------------------------- a reply that stdout cannot take
# stdio keeps what fwrite() gets in a buffer and writes it out later. When
# that write fails, stdio drops what it held and sets the error flag; a later
# flush may then succeed. Here stdout is a small non-blocking pipe that
# nobody reads at first: writing to it fails with EAGAIN. Once the client has
# taken in the whole 100 kB reply, the pipe is emptied, and the server sends
# its last line. A client that checks only its last fflush() exits 0 with
# most of the reply gone. Either all of the reply comes out, or the client
# must say that it could not write it.
@test "client never loses part of a reply in silence when stdout fails for a while" {
    command -v python3 >/dev/null || skip "needs python3 to give the client a non-blocking pipe"
    cat >"$T/nbpipe.py" <<'PY'
# nbpipe.py GO CMD...: runs CMD with stdout on a small non-blocking pipe that
# is not read until the file GO exists; then copies it all to our stdout and
# prints "drained" on stderr each time the pipe is empty. Exits as CMD does.
import fcntl, os, select, subprocess, sys, time
go, cmd = sys.argv[1], sys.argv[2:]
r, w = os.pipe()
try:
    fcntl.fcntl(w, 1031, 4096)          # F_SETPIPE_SZ, Linux: a 4 kB pipe
except (OSError, AttributeError):
    pass
fcntl.fcntl(w, fcntl.F_SETFL, fcntl.fcntl(w, fcntl.F_GETFL) | os.O_NONBLOCK)
child = subprocess.Popen(cmd, stdout=w)
os.close(w)
while not os.path.exists(go):
    time.sleep(0.01)
while True:
    if not select.select([r], [], [], 0.05)[0]:
        sys.stderr.write("drained\n")
        sys.stderr.flush()
        continue
    data = os.read(r, 65536)
    if not data:
        break
    os.write(1, data)
sys.stderr.write("drained\n")
sys.exit(child.wait())
PY
    huge_line 100000 | tr -d '\n' >"$T/big"
    start_peer_server ports read send "$(cat "$T/big")" waitfor "$T/last" send $'end\n' close
    PEER_SERVER_PID=$BG_PID
    start_bg nb python3 "$T/nbpipe.py" "$T/drain" sh -c 'echo hello | exec "$0" 127.0.0.1 "$1"' "$CLIENT" "$PORT"
    local nb=$BG_PID
    client_port
    wait_until reply_taken_in                   # the client has read all 100 kB
    touch "$T/drain"
    wait_until grep -qx drained "$T/nb.err"     # the pipe is empty
    touch "$T/last"
    wait_until exited "$nb"
    status=0
    wait "$nb" || status=$?
    printf 'end\n' >>"$T/big"
    if [ "$status" -eq 0 ]; then
        cmp -s "$T/big" "$T/nb.out" || {
            echo "expected all $(wc -c <"$T/big" | tr -d ' ') bytes of the reply on stdout, or an error;" \
                 "got exit 0 and $(wc -c <"$T/nb.out" | tr -d ' ') bytes" >&2
            return 1
        }
    else
        grep -q "^ERROR writing to standard output" "$T/nb.err" || {
            echo "expected 'ERROR writing to standard output' with exit $status, got: '$(grep -v drained "$T/nb.err")'" >&2
            return 1
        }
    fi
}

# reply_taken_in: the server has sent all it had, and the client has read it
# (or one of them has ended, a write having failed: the test then judges).
reply_taken_in() {
    exited "$PEER_SERVER_PID" && return 0
    grep -qx sent "$T/peer_server.out" || return 1
    local client server
    client=$(side_columns client)
    server=$(side_columns server)
    [ -z "$client" ] || [ "$(echo "$client" | cut -d' ' -f2)" = 0 ] || return 1
    [ -z "$server" ] || [ "$(echo "$server" | cut -d' ' -f3)" = 0 ]
}
