#!/usr/bin/env bats
# step2-loop: runs forever, serving one client at a time.

load helper

@test "step2 serves client after client and never exits on its own" {
    start_server step2-loop
    for i in 1 2 3 4 5; do
        served "client $i"
    done
    alive "$SERVER_PID"
}

# The lesson's limitation: while the server sits in read() for a silent
# client, the next client's connection is complete (the kernel accepted it
# into the listen queue) but nobody calls accept() for it.
@test "step2 makes the next client wait while one client stays silent" {
    start_server step2-loop
    start_peer silent waitfor "$T/speak" send $'first\n' shutdown read
    wait_until queue_is 0                     # the server accept()ed the silent one
    start_bg second with_deadline client_says "second"
    wait_until queue_is 1                     # the second is connected, not accepted
    alive "$BG_PID"                           # ... and still has no reply
    ! grep -q 'Here is the message: second' "$T/server.out"
    touch "$T/speak"                          # the silent client says its line
    wait_until grep -qx "I got your message" "$T/second.out"
    wait "$BG_PID"
    # The server printed the messages in the order it served the clients.
    [ "$(grep -n 'Here is the message' "$T/server.out" | cut -d: -f2-)" = \
      "$(printf 'Here is the message: first\nHere is the message: second')" ]
}

@test "step2 keeps serving after clients that reset, leave, go silent or send junk" {
    check_survives_misbehaving_clients step2-loop
}

@test "step2 survives writing to a client that has gone (SIGPIPE)" {
    check_survives_sigpipe step2-loop
}

@test "step2 keeps serving when accept() fails for want of descriptors (EMFILE)" {
    check_survives_emfile step2-loop
}

@test "step2 reads a line that arrives in two pieces as one message" {
    check_split_line step2-loop
}

@test "step2 shows unprintable bytes escaped, never raw" {
    check_escapes_unprintable step2-loop
}

@test "step2 replies to a line longer than its buffer without resetting the client" {
    check_huge_line step2-loop
}

@test "step2 prints each line exactly once when stdout is a pipe" {
    check_lines_printed_once step2-loop 5
}

@test "step2 rejects a missing, malformed or out-of-range port" {
    check_rejects_bad_ports step2-loop
}

@test "step2 reports a port that is already in use" {
    check_port_in_use step2-loop
}

@test "step2 reports a low port it has no right to" {
    check_low_port_needs_privilege step2-loop
}

@test "step2 can be restarted on the same port right after serving (TIME_WAIT)" {
    check_restart_after_serving step2-loop
}
