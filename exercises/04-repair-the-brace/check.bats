#!/usr/bin/env bats
# Exercise 04, repair the misplaced brace: the repaired server must do what
# step 3 does. Every client gets its reply, one silent client holds up nobody,
# and the parent closes its copy of every connection, so its descriptors do
# not grow with the number of clients.

load ../lib/checker

# A correct server answers in milliseconds; the broken one never does. A short
# deadline keeps the whole checker quick on the broken starter.
QUICK=3

# answered TEXT: a client sends TEXT and gets "I got your message" within
# $QUICK seconds, and the server prints "Here is the message: TEXT".
answered() {
    DEADLINE=$QUICK ask "$1"
    if [ "$status" -eq 124 ]; then
        fail_because "expected the client sending '$1' to get 'I got your message'," \
            "but after ${QUICK}s it was still waiting for a reply" || server_said
        return 1
    fi
    if [ "$status" -ne 0 ] || [ "$output" != "I got your message" ]; then
        fail_because "expected the client sending '$1' to print 'I got your message' and exit 0," \
            "got exit status $status and: $(excerpt "$output")" || server_said
        return 1
    fi
    DEADLINE=$QUICK wait_until grep -qxF "Here is the message: $1" "$T/server.out" 2>/dev/null ||
        fail_because "expected 'Here is the message: $1' on the server's stdout, got: $(excerpt_file "$T/server.out")"
}

fds_are() { [ "$(count_fds "$SERVER_PID")" -eq "$1" ]; }

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
    DEADLINE=$QUICK wait_until grep -qx "I got your message" "$T/silent.out" 2>/dev/null ||
        fail_because "expected the silent client, once it spoke, to get 'I got your message', got: $(excerpt_file "$T/silent.out")"
}

# bats test_tags=lesson
@test "the parent closes its copy of each connection: after 10 clients it holds as many descriptors as before" {
    start_ex_server
    local before i
    before=$(count_fds "$SERVER_PID")
    for i in 1 2 3 4 5 6 7 8 9 10; do
        answered "client $i of 10"
    done
    DEADLINE=$QUICK wait_until fds_are "$before" 2>/dev/null ||
        fail_because "expected the server to hold $before open descriptors after 10 clients, as before them," \
            "got $(count_fds "$SERVER_PID"): the parent keeps a descriptor for each client"
}
