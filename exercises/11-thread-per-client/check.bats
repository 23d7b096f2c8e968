#!/usr/bin/env bats
# Exercise 11, a thread per client: the server serves each client in a POSIX
# thread of its own process, never in a child process; it serves a client
# while another is silent, and many at once, each on its own connection; the
# listening socket outlives the threads, every connection is closed once
# served, and no thread is left behind (neither its task nor its stack);
# resets, huge lines and a reply that can no longer be sent do not stop it.

load ../lib/checker

# ---------------------------------------------------------------- threads, seen from outside

# thread_count PID: how many threads PID has (Linux: /proc/PID/task; macOS: ps -M).
thread_count() {
    if [ -d "/proc/$1/task" ]; then
        ls "/proc/$1/task" | wc -l | tr -d ' '
    else
        ps -M -p "$1" | awk 'NR > 1 { n++ } END { print n + 0 }'
    fi
}
threads_are() { [ "$(thread_count "$SERVER_PID")" -eq "$1" ]; }

# threads_not_children N: the server has N threads ($NEVER once it has a
# child process: it forks).
threads_not_children() {
    threads_are "$1" && return 0
    [ "$(count_children "$SERVER_PID")" -eq 0 ] || return "$NEVER"
    return 1
}

# fds_back N: the server has N descriptors open again. It can no longer
# ($NEVER) once the main thread is the only one left, asleep, with more:
# every thread that could have closed one has ended.
fds_back() {
    [ "$(count_fds "$SERVER_PID")" -eq "$1" ] && return 0
    due || return 1
    threads_are 1 && asleep "$SERVER_PID" && [ "$(count_fds "$SERVER_PID")" -gt "$1" ] && return "$NEVER"
    return 1
}

# map_count PID: how many memory mappings PID has (Linux: /proc/PID/maps).
# A thread's stack is a mapping of its own with a guard page below it, two
# lines of the file; glibc unmaps it, or keeps it to reuse for the next
# thread, only once the thread is detached or joined.
map_count() { wc -l <"/proc/$1/maps" | tr -d ' '; }

# vm_size PID: the process's virtual memory in kB (VmSize in /proc/PID/status).
vm_size() { awk '$1 == "VmSize:" { print $2 }' "/proc/$1/status"; }

# all_stopped PID: every thread of PID is stopped (SIGSTOP): state T.
all_stopped() {
    local t line
    if [ -d "/proc/$1/task" ]; then
        for t in /proc/"$1"/task/*; do
            line=
            read -r line <"$t/stat" 2>/dev/null || return 1
            line=${line##*) }
            [ "${line%% *}" = T ] || return 1
        done
        return 0
    fi
    ps -o stat= -p "$1" | grep -q '^T'
}

# stop_server: SIGSTOP, and wait until it has taken effect: kill() returns
# before the process stops, and a server that is still running may take a
# connection that arrives meanwhile.
stop_server() {
    kill -STOP "$SERVER_PID"
    wait_until all_stopped "$SERVER_PID" 2>/dev/null ||
        fail_because "expected the server to stop on SIGSTOP, got state $(ps -o stat= -p "$SERVER_PID")"
}

# no_children: fails, saying so, if the server has any child process.
no_children() {
    local kids
    kids=$(count_children "$SERVER_PID")
    [ "$kids" -eq 0 ] ||
        fail_because "expected no child process (each client is served by a thread), got $kids child(ren):" \
            "the server still forks"
}

# ---------------------------------------------------------------- clients

# tcp_ask TEXT: one client in bash itself, no process per client (so that 200
# of them are quick): connects, sends TEXT and a newline, reads until the
# server closes the connection. Sets GOT to what came back; fails if it could
# not connect, or if nothing closed the connection within DEADLINE seconds.
tcp_ask() {
    local rc=0
    GOT=
    exec 5<>"/dev/tcp/127.0.0.1/$PORT" || return 1
    printf '%s\n' "$1" >&5 || true
    # -d '': read up to a NUL byte, which never comes; status 1 at end of file.
    IFS= read -r -d '' -t "$DEADLINE" -u 5 GOT || rc=$?
    exec 5<&-
    [ "$rc" -le 1 ]
}

# clients_in_a_row N: N clients, one after another, each must get the reply.
clients_in_a_row() {
    local i
    for ((i = 1; i <= $1; i++)); do
        if ! tcp_ask "client $i of $1"; then
            echo "client $i of $1 could not connect, or its connection stayed open"
            return 1
        fi
        if [ "$GOT" != "I got your message" ]; then
            echo "client $i of $1 got: '$GOT'"
            return 1
        fi
    done
}

# answered NAME: the peer NAME got the reply. It can no longer ($NEVER) once
# the peer has ended without it, or once the server is asleep, every thread,
# with a client's bytes unread on its side: no thread serves that client.
answered() {
    grep -qx "I got your message" "$T/$1.out" 2>/dev/null && return 0
    exited_peer "$1" && ! grep -qx "I got your message" "$T/$1.out" 2>/dev/null && return "$NEVER"
    due || return 1
    unread_at_server && family_asleep "$SERVER_PID" && unread_at_server && return "$NEVER"
    return 1
}
exited_peer() { grep -q . "$T/$1.err" 2>/dev/null; }

# all_answered N: the peers c1 .. cN all got the reply. It can no longer
# ($NEVER) once one has ended without it, or once the server is asleep, every
# thread, with a client's bytes unread on its side. (One grep for all N: this
# is polled every 20 ms.)
all_answered() {
    local i files=()
    for ((i = 1; i <= $1; i++)); do files+=("$T/c$i.out"); done
    [ "$(grep -lx "I got your message" "${files[@]}" 2>/dev/null | wc -l)" -eq "$1" ] && return 0
    due || return 1
    for ((i = 1; i <= $1; i++)); do
        grep -qx "I got your message" "$T/c$i.out" 2>/dev/null || ! exited_peer "c$i" || return "$NEVER"
    done
    unread_at_server && family_asleep "$SERVER_PID" && unread_at_server && return "$NEVER"
    return 1
}

# all_sent N: the peers c1 .. cN have all sent their line.
all_sent() {
    local i files=()
    for ((i = 1; i <= $1; i++)); do files+=("$T/c$i.out"); done
    [ "$(grep -lx sent "${files[@]}" 2>/dev/null | wc -l)" -eq "$1" ]
}

# not_answered N: the first of the peers c1 .. cN without a reply, with what it got.
not_answered() {
    local i
    for ((i = 1; i <= $1; i++)); do
        grep -qx "I got your message" "$T/c$i.out" 2>/dev/null && continue
        echo "client $i got $(excerpt_file "$T/c$i.out") $(excerpt_file "$T/c$i.err")"
        return
    done
}

# times_printed LINE: how many lines of the server's stdout are exactly LINE.
times_printed() { grep -cxF -- "$1" "$T/server.out" || true; }

# second_answered: the peer "second" is answered while a silent one holds its
# connection. It can no longer ($NEVER) once it waits in the listen queue
# while every thread of the server is asleep.
second_answered() {
    grep -qx "I got your message" "$T/second.out" 2>/dev/null && return 0
    exited_peer second && ! grep -qx "I got your message" "$T/second.out" 2>/dev/null && return "$NEVER"
    due || return 1
    queue_is 1 && family_asleep "$SERVER_PID" && queue_is 1 && return "$NEVER"
    return 1
}

# logged_or_gone TEXT: the server's stderr has a line starting with TEXT
# ($NEVER once the server has exited without it).
logged_or_gone() {
    grep -q "^$1" "$T/server.err" && return 0
    alive "$SERVER_PID" || return "$NEVER"
    return 1
}

# ---------------------------------------------------------------- the checks

# bats test_tags=lesson
@test "serves each client in a thread of its own process: three silent clients make three threads and no child process" {
    start_ex_server
    local i
    for i in 1 2 3; do
        start_peer "c$i" waitfor "$T/speak" send "silent $i"$'\n' shutdown read || return 1
    done
    wait_until threads_not_children 4 2>/dev/null || {
        no_children || return 1
        fail_because "expected 4 threads (the main thread and one per connected client), got $(thread_count "$SERVER_PID")"
        return 1
    }
    no_children || return 1
    touch "$T/speak"
    wait_until all_answered 3 2>/dev/null ||
        fail_because "expected the three clients to get their reply once they spoke, got: $(not_answered 3)" || return 1
    no_children
}

# bats test_tags=lesson
@test "a silent client holds up nobody: another is served while it waits, then it is served too" {
    start_ex_server
    start_peer silent waitfor "$T/speak" send $'the silent one\n' shutdown read || return 1
    start_bg second "$PEER" 127.0.0.1 "$PORT" send $'the second one\n' shutdown read
    wait_until second_answered 2>/dev/null || {
        fail_because "expected a second client to be answered while the first stays silent, got" \
            "$(excerpt_file "$T/second.out") ($(queued_connections) connection(s) wait in the listen queue)"
        return 1
    }
    touch "$T/speak"
    wait_until answered silent 2>/dev/null ||
        fail_because "expected the silent client to be answered once it spoke, got: $(excerpt_file "$T/silent.out")"
}

# All 20 connect and send while the server is stopped (SIGSTOP), so that when
# it runs again, 20 connections wait in the listen queue and the main thread
# accepts them one right after another: a thread that reads the main
# thread's newsockfd late then finds the next client's descriptor there.
# bats test_tags=lesson
@test "20 clients at once, each with its own line: each gets its reply, and the server prints each line exactly once" {
    start_ex_server
    stop_server || return 1
    local i
    for ((i = 1; i <= 20; i++)); do
        start_bg "c$i" "$PEER" 127.0.0.1 "$PORT" send "client $i of 20"$'\n' shutdown read
    done
    wait_until all_sent 20 2>/dev/null || {
        kill -CONT "$SERVER_PID"
        fail_because "expected the 20 clients to connect and send their lines, got: $(not_answered 20)"
        return 1
    }
    kill -CONT "$SERVER_PID"
    wait_until all_answered 20 2>/dev/null || {
        fail_because "expected each of the 20 clients to get 'I got your message', but $(not_answered 20)" \
            "(is each thread handed the descriptor of its own client?)"
        server_said
        return 1
    }
    for ((i = 1; i <= 20; i++)); do
        [ "$(times_printed "Here is the message: client $i of 20")" -eq 1 ] || {
            fail_because "expected 'Here is the message: client $i of 20' once on the server's stdout," \
                "got it $(times_printed "Here is the message: client $i of 20") times"
            server_said
            return 1
        }
    done
    local lines
    lines=$(grep -c '^Here is the message: ' "$T/server.out" || true)
    [ "$lines" -eq 20 ] || fail_because "expected 20 lines 'Here is the message: ...', got $lines:" \
        "$(excerpt "$(grep -v -x 'Here is the message: client [0-9]* of 20' "$T/server.out")")"
}

# bats test_tags=lesson
@test "the listening socket outlives the threads: 5 clients one after another are all served, and the port still listens" {
    start_ex_server
    local i
    for i in 1 2 3 4 5; do
        served "client $i of 5, one after another" || return 1
    done
    listening_on "$PORT" || fail_because "expected the server to listen on port $PORT still, got no listening socket"
}

# The server's descriptors: 0, 1, 2 and the listening socket at the start,
# and one more for each connection while a thread serves it.
# bats test_tags=lesson
@test "each connection is closed once served (the client sees end of file), and after 20 clients the server holds as many descriptors as at the start" {
    start_ex_server
    local before
    before=$(count_fds "$SERVER_PID")
    run with_deadline clients_in_a_row 20
    if [ "$status" -ne 0 ]; then
        fail_because "expected 20 clients in a row each to get its reply and then end of file, got:" \
            "$(excerpt "$output")$([ "$status" -eq 124 ] && echo " (still waiting after ${DEADLINE}s)")"
        server_said
        return 1
    fi
    wait_until fds_back "$before" 2>/dev/null ||
        fail_because "expected $before open descriptors in the server once the 20 clients were served," \
            "as at the start, got $(count_fds "$SERVER_PID")"
}

# What we measure (Linux): the threads in /proc/PID/task, and the lines of
# /proc/PID/maps. A thread that ends leaves /proc/PID/task at once, detached
# or not; but glibc gives its stack back (or keeps it to reuse for the next
# thread) only when the thread is detached or joined. A thread nobody
# detaches or joins keeps its stack mapped for good: two more lines in
# /proc/PID/maps (the stack and the guard page below it) and, with the usual
# 8 MB limit on stacks (ulimit -s), 8 MB more VmSize, for each client ever
# served. Measured on Linux with glibc 2.36 and ulimit -s 8192, from the 10th
# client to the 210th: a detached server went from 32 mappings to 36; one
# that neither detaches nor joins from 48 to 450. We allow 100 more.
# bats test_tags=lesson
@test "no thread is left behind: after 200 clients one after another, one thread again, and no stack kept per client" {
    [ -r "/proc/$$/maps" ] || skip "needs /proc/PID/maps (Linux) to see the threads' stacks"
    start_ex_server
    run with_deadline clients_in_a_row 10
    [ "$status" -eq 0 ] || fail_because "expected 10 clients in a row to be served, got: $(excerpt "$output")" || return 1
    wait_until threads_are 1 2>/dev/null ||
        fail_because "expected one thread once the clients were served, got $(thread_count "$SERVER_PID")" || return 1
    local maps0 vm0 maps1 vm1
    maps0=$(map_count "$SERVER_PID")
    vm0=$(vm_size "$SERVER_PID")
    run with_deadline clients_in_a_row 200
    [ "$status" -eq 0 ] || fail_because "expected 200 clients in a row to be served, got: $(excerpt "$output")" || return 1
    wait_until threads_are 1 2>/dev/null || {
        fail_because "expected one thread (the main one) once the 200 clients were served, got" \
            "$(thread_count "$SERVER_PID"): threads that never end"
        return 1
    }
    maps1=$(map_count "$SERVER_PID")
    vm1=$(vm_size "$SERVER_PID")
    [ $((maps1 - maps0)) -le 100 ] ||
        fail_because "expected the server's memory mappings to stay about the same over 200 clients, got" \
            "$((maps1 - maps0)) more ($maps0 to $maps1; VmSize $((vm0 / 1024)) MB to $((vm1 / 1024)) MB):" \
            "a stack kept for each thread that ended, neither detached nor joined"
}

# Writing to a connection the client has reset raises SIGPIPE, whose default
# action ends the whole process, every thread. The server is stopped while a
# client sends a line, its end of file and a reset; once it runs again, the
# line is there to read but the reply can only fail.
# bats test_tags=lesson
@test "a reply that can no longer be sent (the client reset) ends no more than that client: the server still serves" {
    start_ex_server
    stop_server || return 1
    peer send $'doomed\n' shutdown reset >/dev/null
    kill -CONT "$SERVER_PID"
    wait_until grep -qx "Here is the message: doomed" "$T/server.out" 2>/dev/null ||
        fail_because "expected 'Here is the message: doomed' on the server's stdout, got: $(excerpt_file "$T/server.out")" ||
        return 1
    wait_until logged_or_gone "ERROR writing to socket" 2>/dev/null || {
        if exited "$SERVER_PID"; then
            fail_because "expected the server to report the failed reply and go on, but the process ended" \
                "(SIGPIPE kills every thread unless the process ignores it); its stderr: $(excerpt_file "$T/server.err")"
        else
            fail_because "expected 'ERROR writing to socket: ...' on the server's stderr, got: $(excerpt_file "$T/server.err")"
        fi
        return 1
    }
    served "after a failed write"
}

@test "a bad port is refused with exit status 2; clients that reset, send junk or a huge line do not stop the server" {
    run_ex 80x
    [ "$status" -eq 2 ] || fail_because "expected the server to refuse port '80x' with exit status 2," \
        "got status $status and: $(excerpt "$output")" || return 1
    start_ex_server
    peer close >/dev/null
    served "after a client left without a word" || return 1
    peer reset >/dev/null
    served "after a reset before sending" || return 1
    peer send $'half a li' reset >/dev/null
    served "after a reset in the middle of a line" || return 1
    peer send $'whole line\n' reset >/dev/null
    served "after a reset after a whole line" || return 1
    head -c 20000 /dev/urandom | with_deadline "$CLIENT" 127.0.0.1 "$PORT" >/dev/null 2>&1 || true
    served "after binary junk" || return 1
    { head -c 1000000 /dev/zero | tr '\0' x; echo; } | with_deadline "$CLIENT" 127.0.0.1 "$PORT" >/dev/null 2>&1 || true
    served "after a huge line" || return 1
    server_is_alive
}
