#!/usr/bin/env bats
# Exercise 09, a client that does not wait forever: with REPLY_TIMEOUT=N, the
# client gives up on a server that sends nothing for N seconds, printing
# "ERROR, no reply within N seconds" on stderr and exiting 1; a reply that
# comes in time is printed as before; a bad REPLY_TIMEOUT, an empty one too,
# is refused.
# Here $EX_PROG is the student's client, and the servers are known to work.

load ../lib/checker

STEP2="$REPO/step2-loop/server"

# start_silent_server ACTION...: tests/peer as a server that accepts one
# client and then does what the actions say. Sets PORT.
start_silent_server() {
    start_bg peer_server "$PEER" -l 127.0.0.1 "$@"
    wait_until grep -q '^Listening on port' "$T/peer_server.out" ||
        fail_because "expected tests/peer to listen, got: $(excerpt_file "$T/peer_server.err")"
    PORT=$(announced_port "$T/peer_server.out")
}

# start_step2: step 2's server, which always answers at once. Sets PORT.
start_step2() {
    [ -x "$STEP2" ] || fail_because "$STEP2 is missing: run 'make' first"
    start_bg server "$STEP2" 0
    wait_until grep -q '^Listening on port' "$T/server.out" ||
        fail_because "expected step 2's server to start, got: $(excerpt_file "$T/server.err")"
    PORT=$(announced_port "$T/server.out")
}

# try_client LINE ENV...: runs the student's client under a deadline, with
# the environment ENV (NAME=VALUE, or -u NAME) and LINE on its stdin. Sets
# status, output (its stdout) and stderr.
try_client() {
    local line=$1
    shift
    run with_deadline client_apart "$@" <<<"$line"
    output=$(grep -v '^still running after' <<<"$output" || true)
    stderr=$(cat "$T/client.err")
}
client_apart() { env "$@" "$EX_PROG" 127.0.0.1 "$PORT" 2>"$T/client.err"; }

# what_came_back: the client's status, stdout and stderr, in one line.
what_came_back() {
    local how="exit status $status"
    [ "$status" -ne 124 ] || how="still waiting after ${DEADLINE}s, killed"
    echo "$how; stdout: $(excerpt "$output"); stderr: $(excerpt "$stderr")"
}

# bats test_tags=lesson
@test "gives up on a server that never answers: 'ERROR, no reply within 2 seconds' and exit 1" {
    start_silent_server waitfor "$T/never"
    local started=$SECONDS DEADLINE=6
    try_client "hello?" REPLY_TIMEOUT=2
    local waited=$((SECONDS - started))
    if [ "$status" -ne 1 ] || ! grep -qxF "ERROR, no reply within 2 seconds" <<<"$stderr"; then
        fail_because "expected exit status 1 and 'ERROR, no reply within 2 seconds' on stderr, with REPLY_TIMEOUT=2" \
            "and a server that never answers; got $(what_came_back)"
        return 1
    fi
    [ -z "$output" ] || fail_because "expected nothing on stdout when no reply came, got: $(excerpt "$output")"
    # SECONDS counts whole seconds, so a wait of 2 s shows as 1 or more.
    [ "$waited" -ge 1 ] ||
        fail_because "expected the client to wait about 2 s (REPLY_TIMEOUT=2) before giving up, it gave up at once"
}

@test "waits for a reply that comes after a 1 s pause, with REPLY_TIMEOUT=3, and prints it" {
    start_silent_server read waitfor "$T/answer" send "I got your message" close
    start_bg slow sh -c 'echo slow | REPLY_TIMEOUT=3 "$1" 127.0.0.1 "$2"' sh "$EX_PROG" "$PORT"
    local client=$BG_PID
    wait_until grep -qx slow "$T/peer_server.out"     # the server has the line
    sleep 1                                           # the pause is the point of this test
    touch "$T/answer"
    wait_until exited "$client"
    status=0
    wait "$client" || status=$?
    output=$(cat "$T/slow.out")
    stderr=$(cat "$T/slow.err")
    if [ "$status" -ne 0 ] || [ "$output" != "I got your message" ]; then
        fail_because "expected 'I got your message' and exit status 0 for a reply after 1 s with REPLY_TIMEOUT=3," \
            "got $(what_came_back)"
    fi
}

@test "still prints step 2's reply, with REPLY_TIMEOUT=1 and with REPLY_TIMEOUT unset" {
    start_step2
    try_client "in time" REPLY_TIMEOUT=1
    [ "$status" -eq 0 ] && [ "$output" = "I got your message" ] ||
        fail_because "expected 'I got your message' and exit status 0 with REPLY_TIMEOUT=1, got $(what_came_back)"
    try_client "no limit set" -u REPLY_TIMEOUT
    [ "$status" -eq 0 ] && [ "$output" = "I got your message" ] ||
        fail_because "expected 'I got your message' and exit status 0 with REPLY_TIMEOUT unset, got $(what_came_back)"
    wait_until grep -qx "Here is the message: no limit set" "$T/server.out"
}

# bats test_tags=lesson
@test "a REPLY_TIMEOUT that is not whole seconds from 1 to 86400 in digits (empty, 0, 86401, huge, signed, ...) is refused with exit status 2" {
    start_step2
    local bad
    for bad in "" abc 0 -1 +5 " 5" 1.5 2x 86401 99999999999999999999; do
        try_client "bad limit" REPLY_TIMEOUT="$bad"
        if [ "$status" -ne 2 ] || [[ $stderr != *REPLY_TIMEOUT* ]]; then
            fail_because "expected REPLY_TIMEOUT='$bad' to be refused with exit status 2 and a message naming" \
                "REPLY_TIMEOUT on stderr, got $(what_came_back)"
            return 1
        fi
    done
}
