#!/usr/bin/env bats
# Exercise 02, many lines per connection: the server answers every line of a
# connection with "I got your message\n" until the client closes, however the
# bytes are cut into pieces on the way: lines one at a time, two lines in one
# write, one line in two writes, more lines at once than the server's buffer
# holds, a line longer than the buffer followed by a short one, and a last
# line without a newline.

load ../lib/checker

REPLY_LINE="I got your message"

# replies N: what a client should have read after N lines: N replies, each
# ending with a newline.
replies() {
    local i
    for ((i = 0; i < $1; i++)); do
        echo "$REPLY_LINE"
    done
}

# expect_replies N FILE: FILE (a peer's output: "connected", "sent" lines and
# what it read) holds exactly N replies.
expect_replies() {
    local got
    got=$(grep -v -x -e connected -e sent "$2")
    [ "$got" = "$(replies "$1")" ] && return 0
    echo "expected $1 times '$REPLY_LINE' (each ending with a newline) for $1 lines," \
        "got: $(excerpt "$got")" >&2
    server_said
    return 1
}

# expect_messages LINE...: the server printed exactly these messages, in order.
# On failure it names the first message that differs.
expect_messages() {
    local got=() i=0 line
    while IFS= read -r line; do
        got+=("${line#Here is the message: }")
    done < <(grep '^Here is the message' "$T/server.out")
    while [ "$i" -lt "$#" ] || [ "$i" -lt "${#got[@]}" ]; do
        i=$((i + 1))
        [ "${!i-}" = "${got[i - 1]-}" ] && [ "$i" -le "$#" ] && [ "$i" -le "${#got[@]}" ] && continue
        if [ "$i" -gt "${#got[@]}" ]; then
            fail_because "expected $# messages, the server printed ${#got[@]}; message $i, 'Here is the message: ${!i}', is missing"
        elif [ "$i" -gt "$#" ]; then
            fail_because "expected $# messages, the server printed ${#got[@]}; one too many: 'Here is the message: ${got[i - 1]}'"
        else
            fail_because "expected message $i of $# to be 'Here is the message: ${!i}'," \
                "the server printed: 'Here is the message: ${got[i - 1]}'"
        fi
        return 1
    done
}

# server_printed LINE PEER SENDS [WHERE]: waits for the server to print the
# message LINE, which the peer PEER sent in its SENDS-th send.
server_printed() {
    wait_until printed "$1" "$2" "$3" 2>/dev/null && return 0
    fail_because "expected the server to print 'Here is the message: $1'${4:-}, got: $(excerpt_file "$T/server.out")"
}

# printed LINE PEER SENDS: the server has printed the message LINE. It can no
# longer come ($NEVER) once PEER has made SENDS sends, the server has read
# every byte of them, and the server is asleep without having printed it: a
# correct server prints a line as soon as it has read it.
printed() {
    grep -qxF "Here is the message: $1" "$T/server.out" 2>/dev/null && return 0
    due || return 1
    [ "$(grep -cx sent "$T/$2.out")" -ge "$3" ] && all_delivered && family_asleep "$SERVER_PID" || return 1
    grep -qxF "Here is the message: $1" "$T/server.out" 2>/dev/null && return 0
    return "$NEVER"
}

# client_end: the state of the client's end of the connection to our server
# and the bytes that wait in it, unread, as the kernel shows them.
client_end() {
    if command -v ss >/dev/null; then
        ss -Htn "dport = :$PORT" | awk '{ print $1, $2; exit }'
    else
        netstat -an -p tcp | awk -v end=".$PORT" \
            'substr($5, length($5) - length(end) + 1) == end { print $6, $2; exit }'
    fi
}
client_end_is() { [ "$(client_end)" = "$1" ]; }

# reply_waits WANT: the client's end of the connection is WANT (its state and
# the bytes that wait in it). It can no longer be ($NEVER) once the server has
# closed its side, or once the client's line was read and the server is
# asleep with everything it sent delivered and the client's end not WANT.
reply_waits() {
    client_end_is "$1" && return 0
    due || return 1
    case $(client_end) in
        ESTAB* | ESTABLISHED*) ;;
        *) return "$NEVER" ;;
    esac
    grep -qx sent "$T/waiting.out" && all_delivered && family_asleep "$SERVER_PID" || return 1
    client_end_is "$1" && return 0
    return "$NEVER"
}

# server_unread: bytes that wait, unread, in the server's end of the connection.
server_unread() {
    if command -v ss >/dev/null; then
        ss -Htn state established "sport = :$PORT" | awk '{ print $1; exit }'
    else
        netstat -an -p tcp | awk -v end=".$PORT" \
            '$6 == "ESTABLISHED" && substr($4, length($4) - length(end) + 1) == end { print $2; exit }'
    fi
}
server_unread_is() { [ "$(server_unread)" = "$1" ]; }

established() { if command -v ss >/dev/null; then echo ESTAB; else echo ESTABLISHED; fi; }

# bats test_tags=lesson
@test "answers every line of a connection until the client closes" {
    start_ex_server
    start_peer talker send $'one\n' waitfor "$T/go2" send $'two\n' waitfor "$T/go3" send $'three\n' shutdown read
    server_printed one talker 1
    touch "$T/go2"
    server_printed two talker 2 " for the second line on the same connection"
    touch "$T/go3"
    server_printed three talker 3 " for the third line on the same connection"
    wait_until exited "$BG_PID"
    expect_replies 3 "$T/talker.out"
    expect_messages one two three
    server_is_alive
}

# bats test_tags=lesson
@test "answers each line at once, while the client keeps the connection open" {
    start_ex_server
    start_peer waiting send $'first\n' waitfor "$T/more" send $'second\n' shutdown read
    local want="$(established) 19"
    if ! wait_until reply_waits "$want" 2>/dev/null; then
        fail_because "expected the reply '$REPLY_LINE\\n' (19 bytes) to wait at the client, connection still open," \
            "after its first line; the kernel shows the client's end as: $(client_end) (state, unread bytes)"
        return 1
    fi
    touch "$T/more"
    wait_until exited "$BG_PID"
    expect_replies 2 "$T/waiting.out"
}

# bats test_tags=lesson
@test "two lines in one write are two messages, each answered" {
    start_ex_server
    run peer send $'alpha\nbeta\n' shutdown read
    [ "$status" -eq 0 ] || fail_because "expected the client to get its replies, it ended with status $status: $(excerpt "$output")"
    printf '%s\n' "$output" >"$T/pair.out"
    expect_replies 2 "$T/pair.out"
    expect_messages alpha beta
}

@test "one line that arrives in two pieces is one message, answered once" {
    start_ex_server
    start_peer split send hel waitfor "$T/go" send $'lo\n' shutdown read
    wait_until queue_is 0
    wait_until grep -qx sent "$T/split.out"
    wait_until server_unread_is 0       # the server has read "hel" on its own
    touch "$T/go"
    wait_until exited "$BG_PID"
    expect_replies 1 "$T/split.out"
    expect_messages hello
}

# bats test_tags=lesson
@test "a hundred lines in one write, more than the server's buffer, get a hundred answers in order" {
    start_ex_server
    local text= sent=() i pad=xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx
    for ((i = 1; i <= 100; i++)); do
        # Lines of different lengths, so that line ends fall anywhere in a read.
        sent+=("line $i ${pad:0:$((i * 7 % 61))}")
        text+="line $i ${pad:0:$((i * 7 % 61))}"$'\n'
    done
    run peer send "$text" shutdown read
    [ "$status" -eq 0 ] || fail_because "expected the client to get its replies, it ended with status $status: $(excerpt "$output")"
    printf '%s\n' "$output" >"$T/many.out"
    expect_replies 100 "$T/many.out"
    expect_messages "${sent[@]}"
}

# bats test_tags=lesson
@test "a line longer than the buffer (300 bytes) does not stop the server: the short line after it is printed and answered" {
    start_ex_server
    local long
    long=$(printf '%0300d' 0 | tr 0 x)
    run peer send "$long"$'\n'$'after the long one\n' shutdown read
    [ "$status" -eq 0 ] || fail_because "expected the client to get its replies, it ended with status $status: $(excerpt "$output")"
    printf '%s\n' "$output" >"$T/long.out"
    local last count
    last=$(grep '^Here is the message' "$T/server.out" | tail -n 1 || true)
    count=$(grep -c '^Here is the message' "$T/server.out" || true)
    [ "$last" = "Here is the message: after the long one" ] || {
        fail_because "after a 300-byte line, expected the server to print 'Here is the message: after the long one'" \
            "for the short line that followed it on the same connection, its last message was: $(if [ -n "$last" ]; then excerpt "$last"; else echo none; fi)"
        return 1
    }
    # The long line may come out in pieces, cut short or not at all; each
    # message printed is answered once, the short line's too.
    expect_replies "$count" "$T/long.out"
    server_is_alive
}

# bats test_tags=lesson
@test "a last line without a newline is answered when the client closes" {
    start_ex_server
    run peer send $'first\nlast' shutdown read
    [ "$status" -eq 0 ] || fail_because "expected the client to get its replies, it ended with status $status: $(excerpt "$output")"
    printf '%s\n' "$output" >"$T/last.out"
    expect_replies 2 "$T/last.out"
    expect_messages first last
}

@test "a client that sends nothing gets no answer, and the repository's client is served after it" {
    start_ex_server
    run peer close
    served "after a silent close"
    served "and once more"
    expect_messages "after a silent close" "and once more"
    server_is_alive
}
