#!/usr/bin/env bats
# step1-single: serves exactly one client, then exits.

load helper

@test "step1 announces the port the kernel chose for port 0" {
    start_server step1-single
    [ "$PORT" -gt 0 ]
    [ "$(queued_connections)" = 0 ]
}

@test "step1 prints the message, replies, and exits 0 after one client" {
    start_server step1-single
    served "hello, server"
    wait_until exited "$SERVER_PID"
    wait "$SERVER_PID"
}

@test "step1 refuses a second client: nobody is listening any more" {
    start_server step1-single
    served "first"
    wait_until exited "$SERVER_PID"
    ask "second"
    [ "$status" -ne 0 ]
    [[ $output == *"ERROR connecting: Connection refused"* ]]
}

@test "step1 exits quietly, without replying, when the client sends nothing" {
    start_server step1-single
    peer shutdown read >"$T/peer.out"
    wait_until exited "$SERVER_PID"
    wait "$SERVER_PID"
    [ "$(cat "$T/peer.out")" = connected ]   # and no reply
    ! grep -q 'Here is the message' "$T/server.out"
}

@test "step1 reads a line that arrives in two pieces as one message" {
    check_split_line step1-single
}

@test "step1 shows unprintable bytes escaped, never raw" {
    check_escapes_unprintable step1-single
}

@test "step1 replies to a line longer than its buffer without resetting the client" {
    check_huge_line step1-single
}

@test "step1 prints each line exactly once when stdout is a pipe" {
    check_lines_printed_once step1-single 1
}

@test "step1 rejects a missing, malformed or out-of-range port" {
    check_rejects_bad_ports step1-single
}

@test "step1 reports a port that is already in use" {
    check_port_in_use step1-single
}

@test "step1 reports a low port it has no right to" {
    check_low_port_needs_privilege step1-single
}

@test "step1 can be restarted on the same port right after serving (TIME_WAIT)" {
    check_restart_after_serving step1-single
}
