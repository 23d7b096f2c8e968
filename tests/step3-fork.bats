#!/usr/bin/env bats
# step3-fork: a child per connection; finished children are never reaped.

load helper

@test "step3 serves a second client while the first one stays silent" {
    start_server step3-fork
    start_peer silent waitfor "$T/speak" send $'first\n' shutdown read
    served "second"                           # answered while the first is silent
    alive "$BG_PID"                           # the silent client is still waiting
    ! grep -q 'Here is the message: first' "$T/server.out"
    touch "$T/speak"
    wait_until grep -qx "I got your message" "$T/silent.out"
}

# The lesson's limitation: nobody calls wait() for the children, so each one
# that has finished stays in the process table as a zombie, for as long as
# the server runs. When the server exits, its zombies pass to init, whose job
# it is to reap them.
@test "step3 leaves every finished child behind as a zombie until it exits" {
    start_server step3-fork
    for i in 1 2 3 4 5; do
        served "client $i"
    done
    wait_until children_are "$SERVER_PID" 5 Z
    local zombies
    zombies=$(ps -A -o ppid=,pid= | awk -v p="$SERVER_PID" '$1 == p { print $2 }')
    for i in 6 7 8; do
        served "client $i"
    done
    wait_until children_are "$SERVER_PID" 8 Z
    for pid in $zombies; do                   # the first five are all still there
        [ "$(ps -o ppid=,stat= -p "$pid" | awk '{ print $1, substr($2, 1, 1) }')" = "$SERVER_PID Z" ]
    done
    kill -TERM "$SERVER_PID"
    wait_until exited "$SERVER_PID"
    for pid in $zombies; do                   # no longer the server's: reaped, or init's
        wait_until parent_is_not "$pid" "$SERVER_PID"
    done
}

@test "step3's parent does not gain a descriptor per connection" {
    start_server step3-fork
    served "warm-up"
    local before
    before=$(count_fds "$SERVER_PID")
    for i in 1 2 3 4 5 6 7 8 9 10; do
        served "client $i"
    done
    [ "$(count_fds "$SERVER_PID")" -eq "$before" ]
}

@test "step3 keeps serving when fork() fails, and closes that one connection" {
    check_survives_failed_fork step3-fork
}

@test "step3 keeps serving after clients that reset, leave, go silent or send junk" {
    check_survives_misbehaving_clients step3-fork
}

@test "step3 survives writing to a client that has gone (SIGPIPE)" {
    check_survives_sigpipe step3-fork
}

@test "step3 keeps serving when accept() fails for want of descriptors (EMFILE)" {
    check_survives_emfile step3-fork
}

@test "step3's child closes its copy of the listening socket: with the parent gone, the port is free" {
    check_child_lets_go_of_listener step3-fork
}

@test "step3 reads a line that arrives in two pieces as one message" {
    check_split_line step3-fork
}

@test "step3 shows unprintable bytes escaped, never raw" {
    check_escapes_unprintable step3-fork
}

@test "step3 replies to a line longer than its buffer without resetting the client" {
    check_huge_line step3-fork
}

@test "step3 prints each line exactly once when stdout is a pipe" {
    check_lines_printed_once step3-fork 5
}

@test "step3 rejects a missing, malformed or out-of-range port" {
    check_rejects_bad_ports step3-fork
}

@test "step3 reports a port that is already in use" {
    check_port_in_use step3-fork
}

@test "step3 reports a low port it has no right to" {
    check_low_port_needs_privilege step3-fork
}

@test "step3 can be restarted on the same port right after serving (TIME_WAIT)" {
    check_restart_after_serving step3-fork
}
