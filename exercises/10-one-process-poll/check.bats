#!/usr/bin/env bats
# Exercise 10, one process, many clients: poll. The server serves many
# clients at once in one process with one thread: a silent client, or one
# silent in the middle of its line, or one that has its reply and does not
# close, holds nobody up; the pieces of a line, and of two clients' lines
# interleaved, add up in a buffer per client; two lines in one segment get
# one reply, as in the steps; at most 32 clients are connected at once and
# the next waits in the listen queue while the server sleeps; the listening
# socket is non-blocking; resets, a huge line and SIGPIPE stop nothing.

load ../lib/checker

# The most clients the README lets the server have connected at once.
MAX_CLIENTS=32

# A correct server answers in milliseconds; the starter, which serves one
# client at a time, never does while another client is silent. The checks
# wait with the generous DEADLINE and give up at once when the server can no
# longer do what they wait for (see checker.bash): above all, when every
# process of it is asleep while a client waits in the listen queue or a
# client's bytes lie unread on the server's side.

# stuck: the server can no longer get on by itself: a connection waits in
# the listen queue or bytes wait unread at the server's end, and every
# process and thread of the server is asleep. (Only where nothing should wait:
# not while the server is full.) Looked at twice, before and after the look
# at the server, so that a client that has just arrived is not taken for one
# that waits.
stuck() {
    waiting_at_server && family_asleep "$SERVER_PID" && waiting_at_server
}
waiting_at_server() { [ "$(queued_connections)" -gt 0 ] 2>/dev/null || unread_at_server; }

# read_all: every client has been accepted and the server has read all that
# they sent ($NEVER once it is stuck).
read_all() {
    queue_is 0 && all_delivered && return 0
    due || return 1
    stuck && return "$NEVER"
    return 1
}

# server_has_read WHAT: waits until the server has accepted every client and
# read every byte they sent; fails saying so, WHAT being what they sent.
server_has_read() {
    wait_until read_all 2>/dev/null && return 0
    fail_because "expected the server to accept every client and read $1, got $(queued_connections)" \
        "connection(s) waiting in the listen queue and $(unread_bytes_at_server) byte(s) unread at the server," \
        "while it sleeps: it waits for another client (a blocking read() or accept()?)"
}
unread_bytes_at_server() { connections | awk '$1 == "server" { n += $3 } END { print n + 0 }'; }

# sent NAME K: the peer NAME has made K sends.
sent() { [ "$(grep -cx sent "$T/$1.out" 2>/dev/null)" -ge "$2" ]; }

# asked NAME TEXT: the repository's client sends TEXT, in the background; its
# output goes to $T/NAME.out, its status to $T/NAME.end.
asked() { start_timed "$1" client_says "$2"; }

# reply_came NAME: the client NAME has ended ($NEVER once the server is stuck).
reply_came() {
    ended "$1" && return 0
    due || return 1
    stuck && return "$NEVER"
    return 1
}

# answered NAME TEXT [WHILE]: the client NAME sends TEXT and gets
# "I got your message", and the server prints "Here is the message: TEXT".
answered() {
    asked "$1" "$2"
    if ! wait_until reply_came "$1" 2>/dev/null; then
        fail_because "expected the client sending '$2' to get 'I got your message'${3:+ $3}, but it still waits:" \
            "$(queued_connections) connection(s) in the listen queue, $(unread_bytes_at_server) byte(s) unread" \
            "at the server, and the server asleep (in a read() or accept() for another client?)" || server_said
        return 1
    fi
    expect_reply "$1" "$2"
}

# expect_reply NAME TEXT: the client NAME, which sent TEXT, printed the reply
# and exited 0, and the server printed the message.
expect_reply() {
    if [ "${END_STATUS:-1}" -ne 0 ] || [ "$(cat "$T/$1.out")" != "I got your message" ]; then
        fail_because "expected the client sending '$2' to print 'I got your message' and exit 0," \
            "got exit status ${END_STATUS:-?} and: $(excerpt "$(cat "$T/$1.out" "$T/$1.err")")" || server_said
        return 1
    fi
    wait_until grep -qxF "Here is the message: $2" "$T/server.out" 2>/dev/null ||
        fail_because "expected 'Here is the message: $2' on the server's stdout, got: $(excerpt_file "$T/server.out")"
}

# peer_replied NAME: the peer NAME (tests/peer ... read) has ended
# ($NEVER once the server is stuck).
peer_replied() {
    exited "$PEER_PID" && return 0
    due || return 1
    stuck && return "$NEVER"
    return 1
}

# expect_peer_reply NAME: the peer NAME, started last, ends having read the
# one reply "I got your message".
expect_peer_reply() {
    local got
    wait_until peer_replied 2>/dev/null || {
        fail_because "expected client '$1' to get its reply, but it still waits, with $(queued_connections)" \
            "connection(s) in the listen queue and the server asleep" || server_said
        return 1
    }
    got=$(grep -v -x -e connected -e sent "$T/$1.out" | grep . || true)
    [ "$got" = "I got your message" ] ||
        fail_because "expected client '$1' to read 'I got your message' and then the server's end of file, got:" \
            "$(excerpt "$got") $(excerpt_file "$T/$1.err")"
}
start_peer_named() {
    start_peer "$@" || return 1
    PEER_PID=$BG_PID
}

# expect_messages LINE...: the server printed exactly these messages, in order.
expect_messages() {
    local want got
    want=$(printf 'Here is the message: %s\n' "$@")
    got=$(grep '^Here is the message' "$T/server.out" || true)
    [ "$got" = "$want" ] ||
        fail_because "expected the server to print $(excerpt "$want"), got: $(excerpt "$got")"
}

# hold_connections N: opens N connections to the server and says nothing on
# them ("held I" as connection I is made); closes connection I when the file
# $T/release-I appears, and ends when $T/release-all does. One process for all
# N, so that a whole class's checkers stay under make grade's process limit.
# (bash's /dev/tcp: descriptors 20 and up, as bash 3.2 has no {fd}.)
hold_connections() {
    local i
    for ((i = 1; i <= $1; i++)); do
        eval "exec $((19 + i))<>/dev/tcp/127.0.0.1/$PORT" || return 1
        echo "held $i"
    done
    while [ ! -e "$T/release-all" ]; do
        for ((i = 1; i <= $1; i++)); do
            if [ -e "$T/release-$i" ] && [ ! -e "$T/released-$i" ]; then
                eval "exec $((19 + i))>&-"
                : >"$T/released-$i"
            fi
        done
        nap 0.02
    done
}

# hold N: N silent connections, held by hold_connections; waits until all are
# made (by the kernel: the server may not have accepted them).
hold() {
    start_bg holder hold_connections "$1"
    wait_until grep -qx "held $1" "$T/holder.out" 2>/dev/null ||
        fail_because "expected to connect $1 clients to port $PORT, got: $(excerpt_file "$T/holder.out") $(excerpt_file "$T/holder.err")"
}

# threads PID: how many threads PID has (Linux: /proc/PID/task; elsewhere ps -M).
threads() {
    if [ -d "/proc/$1/task" ]; then
        ls "/proc/$1/task" | wc -l | tr -d ' '
    else
        ps -M -p "$1" | awk 'NR > 1 { n++ } END { print n + 0 }'
    fi
}

# cpu_ticks PID: the CPU time PID has used (user + system), in 1/100 s.
cpu_ticks() {
    local hz
    if [ -r "/proc/$1/stat" ]; then
        hz=$(getconf CLK_TCK)
        # The fields after the command name, which is in parentheses and may
        # hold spaces: utime and stime are fields 14 and 15 of the line.
        sed 's/^.*) //' "/proc/$1/stat" | awk -v hz="$hz" '{ print int(($12 + $13) * 100 / hz) }'
    else
        # macOS: [[dd-]hh:]mm:ss.cc
        ps -o time= -p "$1" | awk -F'[-:]' '{ t = 0; for (i = 1; i <= NF; i++) t = t * 60 + $i; print int(t * 100) }'
    fi
}

# wakeups PID: how often PID has been switched out (Linux only; empty elsewhere).
wakeups() {
    [ -r "/proc/$1/status" ] || return 0
    awk '/^(voluntary|nonvoluntary)_ctxt_switches:/ { n += $2 } END { print n + 0 }' "/proc/$1/status"
}

# What a sleeping server costs: nothing. Asleep in poll() with nothing to
# wake it, it uses no CPU and is never switched out (0 times, measured on a
# 2-core Linux machine shared with other test runs; at most once more, if
# the watch begins just before it goes to sleep). One that polls a closed
# descriptor, or the listening socket while no slot is free, returns from
# poll() at once, again and again: on an idle machine it uses a whole CPU;
# on one too busy to give it much (a load of 80 on 2 cores), it was still
# switched out 11 and 25 times a second. The bounds, 0.10 s of CPU per second
# and 3 switches in all, leave a sleeping server a wide margin.

# expect_asleep_while CMD...: for at least a second, the server uses at most
# 0.10 s of CPU per second and (on Linux) is switched out at most 3 times in
# all, and CMD (a check) holds all along. (To see that something does not
# happen, we have to watch for a while: this is that while, not a wait for a
# condition.)
expect_asleep_while() {
    local cpu0 cpu1 woke0 woke1 start ms
    cpu0=$(cpu_ticks "$SERVER_PID")
    woke0=$(wakeups "$SERVER_PID")
    clock_ms
    start=$NOW_MS
    while :; do
        "$@" || return 1
        clock_ms
        [ $((NOW_MS - start)) -lt 1000 ] || break
        nap 0.2
    done
    cpu1=$(cpu_ticks "$SERVER_PID")
    woke1=$(wakeups "$SERVER_PID")
    clock_ms
    ms=$((NOW_MS - start))
    [ $(((cpu1 - cpu0) * 1000)) -le $((10 * ms)) ] || {
        fail_because "expected the server to sleep in poll() (at most 0.10 s of CPU per second), got" \
            "$(seconds_of $(((cpu1 - cpu0) * 10))) s in $(seconds_of "$ms") s: poll() returns at once, again and" \
            "again (a closed descriptor left in its array, or the listening socket while no slot is free?)"
        return 1
    }
    if [ -n "$woke0" ] && [ $((woke1 - woke0)) -gt 3 ]; then
        fail_because "expected the server to sleep in poll() (switched out at most 3 times while watched), got" \
            "$((woke1 - woke0)) times in $(seconds_of "$ms") s: poll() returns at once, again and again (a closed" \
            "descriptor left in its array, or the listening socket while no slot is free?)"
        return 1
    fi
}

# ---------------------------------------------------------------- many at once

# bats test_tags=lesson
@test "a silent client, and one silent in the middle of its line, hold nobody up: three others are served meanwhile" {
    start_ex_server
    start_peer silent waitfor "$T/speak" send $'the silent one\n' shutdown read
    start_peer halfway send 'stopped half' waitfor "$T/finish" send $'way through\n' shutdown read
    wait_until sent halfway 1
    server_has_read "'stopped half' from the second" || return 1
    answered c1 "client 1" "while one client is silent and one stopped in the middle of its line" || return 1
    answered c2 "client 2" || return 1
    answered c3 "client 3" || return 1
    touch "$T/finish"
    wait_until grep -qx "I got your message" "$T/halfway.out" 2>/dev/null ||
        fail_because "expected the client that stopped half way to get its reply once it finished its line," \
            "got: $(excerpt_file "$T/halfway.out")" || return 1
    touch "$T/speak"
    wait_until grep -qx "I got your message" "$T/silent.out" 2>/dev/null ||
        fail_because "expected the silent client to get its reply once it spoke, got: $(excerpt_file "$T/silent.out")" ||
        return 1
    expect_messages "client 1" "client 2" "client 3" "stopped halfway through" "the silent one"
}

# settled: every connection the server has is accepted and every process and
# thread of it is asleep: whatever it starts for a client, it has started
# ($NEVER once it is stuck with a client in the listen queue).
settled() {
    queue_is 0 && family_asleep "$SERVER_PID" && queue_is 0 && return 0
    due || return 1
    stuck && return "$NEVER"
    return 1
}

# bats test_tags=lesson
@test "one process, one thread: no child process and no second thread while five clients are connected" {
    start_ex_server
    hold 5 || return 1
    wait_until settled 2>/dev/null || {
        fail_because "expected the server to accept all 5 clients, got $(queued_connections) still in the listen" \
            "queue while it sleeps (it waits on the first one)"
        return 1
    }
    local kids tasks
    kids=$(count_children "$SERVER_PID")
    tasks=$(threads "$SERVER_PID")
    [ "$kids" -eq 0 ] || {
        fail_because "expected no child process with 5 clients connected (one process serves them all), got $kids"
        return 1
    }
    [ "$tasks" -eq 1 ] ||
        fail_because "expected one thread with 5 clients connected (one thread serves them all), got $tasks"
}

# ---------------------------------------------------------------- lines in pieces

# bats test_tags=lesson
@test "a line that arrives in three pieces is one message, answered once" {
    start_ex_server
    start_peer_named pieces send 'hel' waitfor "$T/go2" send 'lo wor' waitfor "$T/go3" send $'ld\n' shutdown read || return 1
    wait_until sent pieces 1
    server_has_read "the first piece, 'hel'" || return 1
    touch "$T/go2"
    wait_until sent pieces 2
    server_has_read "the second piece, 'lo wor'" || return 1
    touch "$T/go3"
    expect_peer_reply pieces || return 1
    expect_messages "hello world"
}

# bats test_tags=lesson
@test "two clients' lines, interleaved piece by piece, are two messages, each client's own" {
    start_ex_server
    start_peer_named first send 'alpha ' waitfor "$T/a2" send $'one\n' shutdown read || return 1
    local first_pid=$PEER_PID
    wait_until sent first 1
    server_has_read "'alpha ' from the first client" || return 1
    start_peer_named second send 'beta ' waitfor "$T/b2" send $'two\n' shutdown read || return 1
    local second_pid=$PEER_PID
    wait_until sent second 1
    server_has_read "'beta ' from the second client" || return 1
    touch "$T/a2"
    PEER_PID=$first_pid
    expect_peer_reply first || return 1
    wait_until grep -q '^Here is the message' "$T/server.out" 2>/dev/null
    expect_messages "alpha one" || return 1
    touch "$T/b2"
    PEER_PID=$second_pid
    expect_peer_reply second || return 1
    expect_messages "alpha one" "beta two"
}

# bats test_tags=lesson
@test "two lines in one segment: the first is answered, and what follows it is ignored, as in the steps" {
    start_ex_server
    start_peer_named pair send $'first\nsecond\n' shutdown read || return 1
    expect_peer_reply pair || return 1
    # A moment for a second message, if the server wrongly prints one: the
    # first is printed before the reply, and the peer has read the reply.
    expect_messages "first"
}

# ---------------------------------------------------------------- hanging up

# bats test_tags=lesson
@test "a client that has its reply and does not close holds nobody up" {
    start_ex_server
    start_peer_named stays send $'stay\n' read waitfor "$T/leave" close || return 1
    wait_until grep -qx "I got your message" "$T/stays.out" 2>/dev/null ||
        fail_because "expected the first client to get its reply, got: $(excerpt_file "$T/stays.out")" || return 1
    answered next "the next one" "while the first client has its reply and keeps its side open" || return 1
    touch "$T/leave"
    expect_messages "stay" "the next one"
}

# ---------------------------------------------------------------- at most 32

# extra_waits: the 33rd client waits in the listen queue. It can no longer
# ($NEVER) once the server has taken it: it got a reply or its connection
# ended.
extra_waits() {
    queue_is 1 && ! exited "$PEER_PID" && return 0
    exited "$PEER_PID" && return "$NEVER"
    grep -q . "$T/extra.err" 2>/dev/null && return "$NEVER"
    return 1
}
extra_still_waits() {
    queue_is 1 && ! exited "$PEER_PID" && ! grep -qxF "Here is the message: number 33" "$T/server.out" && return 0
    fail_because "expected client 33 to keep waiting in the listen queue while $MAX_CLIENTS clients are connected," \
        "got $(queued_connections) connection(s) waiting$(exited "$PEER_PID" && echo ', and client 33 has ended:' \
        "$(excerpt_file "$T/extra.out")")"
}

# extra_served: the 33rd client has its reply. It can no longer ($NEVER) when
# the server holds fewer descriptors than when it was full (it closed the
# connection that left) and sleeps with client 33 still in the listen queue.
extra_served() {
    exited "$PEER_PID" && return 0
    due || return 1
    [ "$(count_fds "$SERVER_PID")" -lt "$FULL_FDS" ] && queue_is 1 && family_asleep "$SERVER_PID" && queue_is 1 &&
        return "$NEVER"
    return 1
}

# bats test_tags=lesson
@test "with 32 clients connected, the 33rd waits in the listen queue while the server sleeps, and is served as soon as one leaves" {
    start_ex_server
    hold "$MAX_CLIENTS" || return 1
    wait_until settled 2>/dev/null || {
        fail_because "expected the server to accept all $MAX_CLIENTS clients, got $(queued_connections) still in the" \
            "listen queue while it sleeps"
        return 1
    }
    FULL_FDS=$(count_fds "$SERVER_PID")
    start_peer_named extra send $'number 33\n' shutdown read || return 1
    wait_until extra_waits 2>/dev/null || {
        fail_because "expected client 33 to wait in the listen queue while $MAX_CLIENTS clients are connected," \
            "got $(queued_connections) connection(s) waiting; client 33 printed: $(excerpt_file "$T/extra.out")"
        return 1
    }
    expect_asleep_while extra_still_waits || return 1
    touch "$T/release-1"
    wait_until extra_served 2>/dev/null || {
        fail_because "expected client 33 to be served once one of the $MAX_CLIENTS had closed its connection, got" \
            "$(queued_connections) connection(s) still in the listen queue while the server sleeps" \
            "with $(count_fds "$SERVER_PID") descriptors (it had $FULL_FDS when full)"
        return 1
    }
    expect_peer_reply extra || return 1
    expect_messages "number 33"
}

# all_closed: the server has closed every connection (none of its ends is
# open, or half-closed and waiting for it to close).
all_closed() { ! server_waits_on_a_client; }

# bats test_tags=lesson
@test "between clients the server sleeps in poll(): no CPU, and nothing on stderr, after clients have come and gone" {
    start_ex_server
    answered c1 "one" || return 1
    answered c2 "two" || return 1
    wait_until all_closed 2>/dev/null || {
        fail_because "expected the server to close every connection once its client had closed, got:" \
            "$(excerpt "$(connections | grep '^server')")"
        return 1
    }
    expect_asleep_while true || return 1
    [ ! -s "$T/server.err" ] || {
        fail_because "expected nothing on the server's stderr for well-behaved clients, got: $(excerpt_file "$T/server.err")"
        return 1
    }
    start_peer_named gone send 'half a li' close || return 1
    wait_until grep -qxF "Here is the message: half a li" "$T/server.out" 2>/dev/null ||
        fail_because "expected 'Here is the message: half a li' from a client that closed in the middle of its line," \
            "got: $(excerpt_file "$T/server.out")" || return 1
    wait_until all_closed 2>/dev/null || {
        fail_because "expected the server to close the connection of a client that closed in the middle of its line," \
            "got: $(excerpt "$(connections | grep '^server')")"
        return 1
    }
    expect_asleep_while true
}

# ---------------------------------------------------------------- non-blocking

# listener_fd: the descriptor of the server's listening socket (Linux: its
# inode from /proc/net/tcp*, then the link in /proc/PID/fd that names it).
listener_fd() {
    local hex ino fd
    hex=$(printf '%04X' "$PORT")
    ino=$(cat /proc/net/tcp /proc/net/tcp6 2>/dev/null | awk -v p=":$hex" '$4 == "0A" && substr($2, length($2) - 4) == p { print $10; exit }')
    [ -n "$ino" ] || return 1
    for fd in /proc/"$SERVER_PID"/fd/*; do
        [ "$(readlink "$fd")" = "socket:[$ino]" ] && { basename "$fd"; return 0; }
    done
    return 1
}

# The flags in /proc/PID/fdinfo/FD are the file's status flags in octal;
# O_NONBLOCK is 04000 on Linux on x86 and ARM (include/uapi/asm-generic/fcntl.h).
# bats test_tags=lesson
@test "(kernel, /proc) the listening socket is non-blocking (O_NONBLOCK), so that accept() never waits" {
    [ -r /proc/net/tcp ] || skip "needs Linux's /proc to see a socket's flags"
    start_ex_server
    local fd flags
    fd=$(listener_fd) || {
        fail_because "expected to find the server's listening socket on port $PORT in /proc/$SERVER_PID/fd, found none"
        return 1
    }
    flags=$(awk '$1 == "flags:" { print $2 }' "/proc/$SERVER_PID/fdinfo/$fd")
    [ $((8#$flags & 8#4000)) -ne 0 ] ||
        fail_because "expected the listening socket (descriptor $fd) to be non-blocking (O_NONBLOCK, see fcntl)," \
            "got the flags $flags (octal), without 04000"
}

# ---------------------------------------------------------------- what the steps survive

@test "keeps serving after clients that reset, leave in the middle of a line, send nothing or send a huge line" {
    start_ex_server
    peer close >/dev/null
    answered a1 "after a client left without a word" || return 1
    peer reset >/dev/null
    answered a2 "after a reset before sending" || return 1
    peer send $'half a li' reset >/dev/null
    answered a3 "after a reset in the middle of a line" || return 1
    peer send $'left in the middle of a li' close >/dev/null
    wait_until grep -qxF "Here is the message: left in the middle of a li" "$T/server.out" 2>/dev/null ||
        fail_because "expected 'Here is the message: left in the middle of a li' (what a client sent before it" \
            "closed is its message, as in the steps), got: $(excerpt_file "$T/server.out")" || return 1
    answered a4 "after a client left in the middle of a line" || return 1
    peer send $'whole line\n' reset >/dev/null
    answered a5 "after a reset after a whole line" || return 1
    head -c 1000000 /dev/zero | tr '\0' x >"$T/huge"
    echo >>"$T/huge"
    run with_deadline "$CLIENT" 127.0.0.1 "$PORT" <"$T/huge"
    [ "$status" -eq 0 ] && [ "$output" = "I got your message" ] || {
        fail_because "expected the client sending a 1 MB line to get 'I got your message' (the server reads the" \
            "rest before it closes, as the steps do), got status $status and: $(excerpt "$output")"
        return 1
    }
    local first255
    first255=$(head -c 255 "$T/huge")
    wait_until grep -qxF "Here is the message: $first255" "$T/server.out" 2>/dev/null ||
        fail_because "expected the first 255 bytes of the 1 MB line as its message, as in the steps, got:" \
            "$(excerpt "$(grep '^Here is the message: xx' "$T/server.out" | cut -c1-80)")" || return 1
    answered a6 "after a huge line" || return 1
    server_is_alive
}

# Writing to a connection the client has already reset raises SIGPIPE, which
# kills a process that does not ignore it. The server is stopped while a
# client sends a line, its end of file and a reset; once it runs again, the
# line is there to read but the reply can only fail.
@test "survives writing to a client that has gone (SIGPIPE), and says so on stderr" {
    start_ex_server
    kill -STOP "$SERVER_PID"
    peer send $'doomed\n' shutdown reset >/dev/null
    kill -CONT "$SERVER_PID"
    wait_until grep -qxF "Here is the message: doomed" "$T/server.out" 2>/dev/null ||
        fail_because "expected 'Here is the message: doomed', got: $(excerpt_file "$T/server.out")" || return 1
    wait_until grep -q "^ERROR writing to socket" "$T/server.err" 2>/dev/null ||
        fail_because "expected 'ERROR writing to socket: ...' on stderr, got: $(excerpt_file "$T/server.err")" || return 1
    server_is_alive || return 1
    answered after "after a failed write"
}

@test "refuses a missing, malformed or out-of-range port, as the steps do" {
    local bad
    run_ex
    [ "$status" -eq 2 ] && [[ $output == *usage:* ]] ||
        fail_because "expected a usage message and exit status 2 without a port, got status $status and: $(excerpt "$output")" ||
        return 1
    for bad in "" abc 80x -1 65536; do
        run_ex "$bad"
        [ "$status" -eq 2 ] && [[ $output == *"bad port '$bad'"* ]] && [[ $output != *Listening* ]] ||
            fail_because "expected \"bad port '$bad'\" and exit status 2, got status $status and: $(excerpt "$output")" ||
            return 1
    done
}
