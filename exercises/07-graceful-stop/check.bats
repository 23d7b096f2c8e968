#!/usr/bin/env bats
# Exercise 07, stop gracefully: on SIGTERM the server closes its listening
# socket (new clients are refused), lets the child that is serving a client
# finish, collects it and exits 0; with no client it exits 0 at once, and a
# second SIGTERM makes it exit 0 at once. SIGTERM goes to the server's
# process only, never to its children.

load ../lib/checker

# "At once" is the generous DEADLINE: the server only has to notice the
# signal. The checks give up sooner when it can no longer happen (see
# checker.bash): when the server has handled SIGTERM (it no longer waits to
# be delivered) and has gone back to sleep without doing what it must.

# server_has_child: the server has forked a child for a connected client.
server_has_child() {
    [ "$(count_children "$SERVER_PID")" -ge 1 ] && return 0
    alive "$SERVER_PID" || return "$NEVER"
    due || return 1
    queue_is 0 && family_asleep "$SERVER_PID" && [ "$(count_children "$SERVER_PID")" -eq 0 ] && return "$NEVER"
    return 1
}

# after_term: the server has handled the SIGTERM sent to it and sleeps.
after_term() { ! term_pending "$SERVER_PID" && asleep "$SERVER_PID" && ! term_pending "$SERVER_PID"; }

# refused_soon: a new client is refused. It can no longer be ($NEVER) when
# the server has handled SIGTERM and sleeps with its listening socket open.
refused_soon() {
    if listening_on "$PORT" && after_term && listening_on "$PORT"; then
        KNOCK="the server handled SIGTERM and went back to sleep with its listening socket open"
        return "$NEVER"
    fi
    refused
}

# exits_soon ALONE: the server has exited. With ALONE, it can no longer exit
# at once ($NEVER) when it has handled SIGTERM and sleeps; without, when it
# sleeps with no child left alive to wait for.
exits_soon() {
    exited "$SERVER_PID" && return 0
    due || return 1
    if [ -n "$1" ]; then
        after_term && alive "$SERVER_PID" && return "$NEVER"
    else
        [ "$(live_children "$SERVER_PID")" -eq 0 ] && after_term &&
            [ "$(live_children "$SERVER_PID")" -eq 0 ] && alive "$SERVER_PID" && return "$NEVER"
    fi
    return 1
}

# server_children: the PIDs of the server's children, one per line.
server_children() {
    ps -A -o pid= -o ppid= | awk -v p="$SERVER_PID" '$2 == p { print $1 }'
}

# start_silent_client NAME: a client that connects and says nothing until
# $T/NAME.go exists; then it sends "NAME\n" and reads the reply. Waits until
# the server has a child for it.
start_silent_client() {
    start_peer "$1" waitfor "$T/$1.go" send "$1"$'\n' read
    wait_until server_has_child 2>/dev/null ||
        fail_because "expected the server to fork a child for a connected client, got none;" \
            "its stderr: $(excerpt_file "$T/server.err")"
}

# refused: a new client's connect is refused. Sets KNOCK to what happened.
refused() {
    local rc=0
    KNOCK=$(printf 'knock knock\n' | DEADLINE=$(scaled 2) with_deadline "$CLIENT" 127.0.0.1 "$PORT" 2>&1) || rc=$?
    case $rc in
        0) KNOCK="it was served: $(excerpt "$KNOCK")" ;;
        124) KNOCK="it connected, then waited $(scaled 2)s for a reply in vain (is the listening socket still open?)" ;;
        *) case $KNOCK in *"Connection refused"*) return 0 ;; esac
           KNOCK="the client failed with: $(excerpt "$KNOCK")" ;;
    esac
    return 1
}

# server_ended: sets ENDED to how the server ended, in words ("exit status 0",
# "killed by signal 15"). The server must have exited. Not in $(...): only
# this shell, the server's parent, can wait for it.
server_ended() {
    local rc=0
    [ -z "${ENDED:-}" ] || return 0
    wait "$SERVER_PID" 2>/dev/null || rc=$?
    if [ "$rc" -gt 128 ]; then ENDED="killed by signal $((rc - 128))"; else ENDED="exit status $rc"; fi
}

# still_running_after WHAT: fails, saying how the server ended, if it exited.
still_running_after() {
    alive "$SERVER_PID" && return 0
    server_ended
    fail_because "expected the server to keep running after $1, while a child still serves a client," \
        "but it ended ($ENDED); its stderr: $(excerpt_file "$T/server.err")"
}

# ends_with_status_0 WHEN [ALONE]: the server exits, with status 0; with
# ALONE, at once after SIGTERM, whatever children it still has.
ends_with_status_0() {
    wait_until exits_soon "${2:-}" 2>/dev/null ||
        fail_because "expected the server to exit $1, but it was still running, asleep, having handled SIGTERM" \
            "($(live_children "$SERVER_PID") child(ren) alive)" || return 1
    server_ended
    [ "$ENDED" = "exit status 0" ] ||
        fail_because "expected the server to exit with status 0 $1, got: $ENDED"
}

# bats test_tags=lesson
@test "SIGTERM while a client is mid-conversation: new clients are refused, that client gets its reply, the server exits 0" {
    start_ex_server
    start_silent_client talker
    local child
    child=$(server_children | head -n 1)
    kill -TERM "$SERVER_PID"
    wait_until refused_soon 2>/dev/null ||
        fail_because "expected a new client to be refused after SIGTERM (the listening socket closed);" \
            "$KNOCK"
    still_running_after "SIGTERM"
    alive "$child" ||
        fail_because "expected the child $child to go on serving its client after SIGTERM, but it has ended"
    touch "$T/talker.go"
    wait_until grep -qx "I got your message" "$T/talker.out" 2>/dev/null ||
        fail_because "expected the client that was mid-conversation at SIGTERM to get 'I got your message'," \
            "got: $(excerpt_file "$T/talker.out"); its stderr: $(excerpt_file "$T/talker.err")"
    ends_with_status_0 "once its last child has ended"
    kill -0 "$child" 2>/dev/null &&
        fail_because "expected the server to have collected its child $child before exiting," \
            "but the child is still there ($(ps -o stat= -p "$child"))"
    true
}

# bats test_tags=lesson
@test "SIGTERM with no client connected: the server exits 0 at once" {
    start_ex_server
    served "before the stop"
    kill -TERM "$SERVER_PID"
    ends_with_status_0 "at once after SIGTERM with no client connected"
}

# bats test_tags=lesson
@test "a second SIGTERM while a client is still being served: the server exits 0 at once" {
    start_ex_server
    start_silent_client dawdler
    kill -TERM "$SERVER_PID"
    # Signals of one kind are not queued: wait until the first has been
    # handled (new clients are refused) before sending the second.
    wait_until refused_soon 2>/dev/null ||
        fail_because "expected a new client to be refused after SIGTERM (the listening socket closed);" \
            "$KNOCK"
    still_running_after "the first SIGTERM"
    kill -TERM "$SERVER_PID"
    ends_with_status_0 "at once after a second SIGTERM" alone
}
