#!/usr/bin/env bats
# step4-reap: a child per connection, and every finished child is reaped.

load helper

# burst N PREFIX: N clients at the same time; each must get its reply.
burst() {
    local n=$1 prefix=$2 i pids=()
    for ((i = 1; i <= n; i++)); do
        with_deadline client_says "$prefix $i" >"$T/$prefix-$i.out" 2>&1 &
        pids+=("$!")
    done
    for ((i = 1; i <= n; i++)); do
        wait "${pids[i - 1]}" || { cat "$T/$prefix-$i.out" >&2; return 1; }
        [ "$(cat "$T/$prefix-$i.out")" = "I got your message" ]
    done
}

@test "step4 serves a second client while the first one stays silent" {
    start_server step4-reap
    start_peer silent waitfor "$T/speak" send $'first\n' shutdown read
    served "second"
    alive "$BG_PID"
    touch "$T/speak"
    wait_until grep -qx "I got your message" "$T/silent.out"
}

# Children end while the parent waits in accept(): each ending interrupts it
# with SIGCHLD. The server must neither stop nor report an error, and once
# the clients are gone it must have no child left at all, not even a zombie.
@test "step4 leaves no zombies after bursts of simultaneous clients" {
    start_server step4-reap
    for round in 1 2 3; do
        burst 40 "round$round"
    done
    wait_until children_are "$SERVER_PID" 0
    [ "$(grep -c '^Here is the message: round' "$T/server.out")" -eq 120 ]
    served "after the bursts"
    alive "$SERVER_PID"
    [ ! -s "$T/server.err" ]
}

# Signals of one kind are not queued: children that end while their parent
# cannot run leave it one SIGCHLD for them all (signal(7), "Queueing and
# delivery semantics for standard signals"). Here the parent is stopped while
# five children end, so this happens every time, not only when the machine
# happens to be slow: the handler, run once, must collect all five.
@test "step4 collects five children that ended while one SIGCHLD stood for them all" {
    start_server step4-reap
    local i left
    for i in 1 2 3 4 5; do
        start_peer "held$i" waitfor "$T/speak" send "held $i"$'\n' shutdown read
    done
    wait_until children_are "$SERVER_PID" 5
    kill -STOP "$SERVER_PID"
    wait_until is_stopped "$SERVER_PID"
    touch "$T/speak"
    # Each child serves its client and ends; the parent, stopped, can collect none.
    wait_until children_are "$SERVER_PID" 5 Z
    kill -CONT "$SERVER_PID"
    # The handler runs once; nothing will make it run again.
    wait_until zombies_below "$SERVER_PID" 5
    DEADLINE=$QUICK wait_until children_are "$SERVER_PID" 0 || {
        left=$(count_children "$SERVER_PID" Z)
        fail_because "expected the 5 children that ended while the server was stopped (one SIGCHLD pending for them all) to be collected once it ran again, got $left zombie(s) left"
    }
    for i in 1 2 3 4 5; do
        grep -qx "I got your message" "$T/held$i.out" ||
            fail_because "expected client $i to be served by its child, got: $(excerpt_file "$T/held$i.out")"
    done
    served "after them"
}

# zombies_below PID N: PID has fewer than N zombie children.
zombies_below() { [ "$(count_children "$1" Z)" -lt "$2" ]; }

@test "step4 reaps children one at a time as well" {
    start_server step4-reap
    for i in 1 2 3 4 5; do
        served "client $i"
        wait_until children_are "$SERVER_PID" 0
    done
}

# The handler must collect the children that have ended and return at once,
# even while another child still serves a client: a waitpid() that blocks for
# that live child (no WNOHANG), or a loop that never stops, would keep the
# parent in the handler, and nobody would accept the next client.
@test "step4 reaps a finished child while another still serves, and goes on accepting" {
    start_server step4-reap
    start_peer silent waitfor "$T/speak" send $'first\n' shutdown read
    served "second"
    wait_until children_are "$SERVER_PID" 1       # the silent client's child, alive
    [ "$(count_children "$SERVER_PID" Z)" -eq 0 ]
    served "third"
    wait_until children_are "$SERVER_PID" 1
    touch "$T/speak"
    wait_until grep -qx "I got your message" "$T/silent.out"
    wait_until children_are "$SERVER_PID" 0
}

@test "step4's listen queue holds a burst of clients while the server is busy" {
    check_backlog_holds_burst step4-reap
}

@test "step4's parent does not gain a descriptor per connection" {
    start_server step4-reap
    served "warm-up"
    local before
    before=$(count_fds "$SERVER_PID")
    burst 20 many
    [ "$(count_fds "$SERVER_PID")" -eq "$before" ]
}

@test "step4 keeps serving when fork() fails, and closes that one connection" {
    check_survives_failed_fork step4-reap
}

@test "step4 keeps serving after clients that reset, leave, go silent or send junk" {
    check_survives_misbehaving_clients step4-reap
}

@test "step4 survives writing to a client that has gone (SIGPIPE)" {
    check_survives_sigpipe step4-reap
}

@test "step4 keeps serving when accept() fails for want of descriptors (EMFILE)" {
    check_survives_emfile step4-reap
}

@test "step4's child closes its copy of the listening socket: with the parent gone, the port is free" {
    check_child_lets_go_of_listener step4-reap
}

@test "step4 reads a line that arrives in two pieces as one message" {
    check_split_line step4-reap
}

@test "step4 shows unprintable bytes escaped, never raw" {
    check_escapes_unprintable step4-reap
}

@test "step4 replies to a line longer than its buffer without resetting the client" {
    check_huge_line step4-reap
}

@test "step4 prints each line exactly once when stdout is a pipe" {
    check_lines_printed_once step4-reap 5
}

@test "step4 rejects a missing, malformed or out-of-range port" {
    check_rejects_bad_ports step4-reap
}

@test "step4 reports a port that is already in use" {
    check_port_in_use step4-reap
}

@test "step4 reports a low port it has no right to" {
    check_low_port_needs_privilege step4-reap
}

@test "step4 can be restarted on the same port right after serving (TIME_WAIT)" {
    check_restart_after_serving step4-reap
}
