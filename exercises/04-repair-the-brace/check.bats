#!/usr/bin/env bats
# Exercise 04, repair the misplaced brace: the repaired server must do what
# step 3 does. Every client gets its reply, one silent client holds up nobody,
# the parent closes its copy of every connection, so its descriptors do not
# grow with the number of clients, and each child serves its one client and
# exits, without the listening socket (that is the parent's).

load ../lib/checker

# A correct server answers in milliseconds; the broken starter never does.
# The checks wait with the generous DEADLINE, and give up at once when the
# server has gone to sleep with a client's line unread (see checker.bash).

# asked N TEXT: the repository's client sends TEXT, in the background; its
# output goes to $T/askN.out, its status to $T/askN.end.
ASKS=0
asked() { start_timed "ask$1" client_says "$2"; }

# reply_came NAME: the client NAME has ended. It can no longer get a reply
# ($NEVER) when a client's line waits unread on the server's side while every
# process of the server is asleep: nobody is going to read it.
reply_came() {
    ended "$1" && return 0
    due || return 1
    unread_at_server && family_asleep "$SERVER_PID" && unread_at_server && return "$NEVER"
    return 1
}

# answered TEXT: a client sends TEXT and gets "I got your message", and the
# server prints "Here is the message: TEXT".
answered() {
    ASKS=$((ASKS + 1))
    asked "$ASKS" "$1"
    if ! wait_until reply_came "ask$ASKS" 2>/dev/null; then
        fail_because "expected the client sending '$1' to get 'I got your message', but it was still waiting:" \
            "its line lies unread on the server's side and every process of the server is asleep" || server_said
        return 1
    fi
    if [ "$END_STATUS" -ne 0 ] || [ "$(cat "$T/ask$ASKS.out")" != "I got your message" ]; then
        fail_because "expected the client sending '$1' to print 'I got your message' and exit 0," \
            "got exit status $END_STATUS and: $(excerpt "$(cat "$T/ask$ASKS.out" "$T/ask$ASKS.err")")" || server_said
        return 1
    fi
    wait_until grep -qxF "Here is the message: $1" "$T/server.out" 2>/dev/null ||
        fail_because "expected 'Here is the message: $1' on the server's stdout, got: $(excerpt_file "$T/server.out")"
}

fds_are() { [ "$(count_fds "$SERVER_PID")" -eq "$1" ]; }

# fds_back_to N: the server holds N descriptors. Once every client has been
# answered, a parent asleep with more than N keeps them for good ($NEVER).
fds_back_to() {
    fds_are "$1" && return 0
    due || return 1
    [ "$(count_fds "$SERVER_PID")" -gt "$1" ] && asleep "$SERVER_PID" &&
        [ "$(count_fds "$SERVER_PID")" -gt "$1" ] && return "$NEVER"
    return 1
}

# a_child_serves: the server has a child for the connected client. It can no
# longer fork one ($NEVER) once it has accepted the client and every process
# of it is asleep with no child.
a_child_serves() {
    [ "$(live_children "$SERVER_PID")" -ge 1 ] && return 0
    due || return 1
    queue_is 0 && family_asleep "$SERVER_PID" && [ "$(live_children "$SERVER_PID")" -eq 0 ] && return "$NEVER"
    return 1
}

# children_done: no child of the server is alive any more (finished children
# stay as zombies in step 3, or are collected: either is fine). A child that
# goes on after serving its client goes round the parent's loop: it calls
# accept() on the listening socket it has closed, fails, says so on stderr and
# tries again, for ever ($NEVER as soon as stderr shows it); or, if it kept
# the listening socket, it waits there for clients of its own (also $NEVER:
# a child asleep while no connection of the server is left open).
children_done() {
    [ -s "$T/server.err" ] && return "$NEVER"
    [ "$(live_children "$SERVER_PID")" -eq 0 ] && return 0
    due || return 1
    ! server_waits_on_a_client && family_asleep "$SERVER_PID" &&
        [ "$(live_children "$SERVER_PID")" -gt 0 ] && ! server_waits_on_a_client && return "$NEVER"
    return 1
}

# bats test_tags=lesson
@test "every client gets its reply: 5 clients, one after another" {
    start_ex_server
    local i
    for i in 1 2 3 4 5; do
        answered "hello $i"
    done
}

# bats test_tags=lesson
@test "a silent client holds up nobody: others are answered while it waits, then it is answered too" {
    start_ex_server
    start_peer silent waitfor "$T/speak" send $'at last\n' read
    answered "while one is silent 1"
    answered "while one is silent 2"
    touch "$T/speak"
    wait_until silent_answered 2>/dev/null ||
        fail_because "expected the silent client, once it spoke, to get 'I got your message', got: $(excerpt_file "$T/silent.out")"
}
silent_answered() {
    grep -qx "I got your message" "$T/silent.out" 2>/dev/null && return 0
    due || return 1
    grep -qx sent "$T/silent.out" && unread_at_server && family_asleep "$SERVER_PID" && unread_at_server && return "$NEVER"
    return 1
}

# bats test_tags=lesson
@test "the parent closes its copy of each connection: after 10 clients it holds as many descriptors as before" {
    start_ex_server
    local before i
    before=$(count_fds "$SERVER_PID")
    for i in 1 2 3 4 5 6 7 8 9 10; do
        answered "client $i of 10"
    done
    wait_until fds_back_to "$before" 2>/dev/null ||
        fail_because "expected the server to hold $before open descriptors after 10 clients, as before them," \
            "got $(count_fds "$SERVER_PID"): the parent keeps a descriptor for each client"
}

# bats test_tags=lesson
@test "each child exits once its client is served (step 3 leaves it a zombie), and the server reports no error" {
    start_ex_server
    local i
    for i in 1 2 3 4 5; do
        answered "served and gone $i"
    done
    if ! wait_until children_done 2>/dev/null; then
        if [ -s "$T/server.err" ]; then
            fail_because "expected nothing on the server's stderr, got: $(excerpt "$(head -c 4096 "$T/server.err" | head -n 3)")" \
                "$(grep -q 'accept' "$T/server.err" && echo '(a child that does not _exit after serving goes round the parent'"'"'s loop to accept())')"
        else
            fail_because "expected every child to exit once its client was served, got $(live_children "$SERVER_PID")" \
                "children still alive, asleep with no client left (a child that does not _exit after serving waits in the parent's accept())"
        fi
        return 1
    fi
}

# The listening socket belongs to the parent. A child that keeps its copy
# keeps the port open after the parent has gone: the port cannot be used
# again (a restarted server fails to bind), and the child could accept
# clients that are not its own.
# bats test_tags=lesson
@test "each child lets go of the listening socket: with the parent gone, the port is free while a child still serves its client" {
    start_ex_server
    start_peer silent waitfor "$T/speak" send $'still here\n' shutdown read
    wait_until a_child_serves 2>/dev/null || {
        fail_because "expected the server to fork a child for a connected client, got none"
        return 1
    }
    local port=$PORT
    disown "$SERVER_PID" 2>/dev/null || true      # (bash would report the kill)
    kill -KILL "$SERVER_PID"                      # the parent alone, not its group
    wait_until exited "$SERVER_PID"
    # The kernel closes a process's descriptors as it exits: a listening
    # socket still there belongs to some other process, the child.
    ! listening_on "$port" ||
        fail_because "expected nothing listening on port $port once the parent was gone, but a socket still listens:" \
            "the child kept its copy of the listening socket (close it in the child, as step 3 does)" || return 1
    touch "$T/speak"
    wait_until grep -qx "I got your message" "$T/silent.out" 2>/dev/null ||
        fail_because "expected the child to go on serving its client once the parent was gone, got: $(excerpt_file "$T/silent.out")"
}
