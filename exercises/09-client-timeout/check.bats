#!/usr/bin/env bats
# Exercise 09, a client that does not wait forever: with REPLY_TIMEOUT=N, the
# client gives up on a server that sends nothing for N seconds, printing
# "ERROR, no reply within N seconds" on stderr and exiting 1; a reply that
# comes in time is printed as before; a bad REPLY_TIMEOUT, an empty one too,
# is refused.
# Here $EX_PROG is the student's client, and the servers are known to work.
#
# The lesson is about time, so the checks time it: the client gives up no
# sooner than N seconds after it started (a correct client's N seconds start
# later, once it has sent its line, so it can only be later, apart from one
# tick of the kernel's clock), and no later than N + SLACK seconds (SLACK is
# 2 s, more on a busy machine: see checker.bash).

load ../lib/checker

# By how much a timeout may end early: one tick of the kernel's clock, which
# counts SO_RCVTIMEO (Linux: 1 to 10 ms, from CONFIG_HZ).
TICK_MS=10

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

# gave_up_in_time N T0 TEND STATUS STDERR: a client started at T0 (clock_ms),
# with a limit of N seconds, ended at TEND with STATUS and STDERR: it must
# have given up as the README says, no sooner than N seconds after T0 and no
# later than N + SLACK seconds.
gave_up_in_time() {
    local n=$1 t0=$2 waited=$(($3 - $2))
    shift 2
    if [ "$2" -eq 124 ]; then
        fail_because "expected the client to give up after $n s (at most $((n + SLACK)) s on this machine)," \
            "with a server that never answers; after $(seconds_of "$waited") s it was still waiting, and was killed"
        return 1
    fi
    if [ "$2" -ne 1 ] || ! grep -qxF "ERROR, no reply within $n seconds" <<<"$3"; then
        fail_because "expected exit status 1 and 'ERROR, no reply within $n seconds' on stderr, with a server that" \
            "never answers; got exit status $2 after $(seconds_of "$waited") s; stderr: $(excerpt "$3")"
        return 1
    fi
    [ "$waited" -ge $((n * 1000 - TICK_MS)) ] ||
        fail_because "expected the client to wait $n s before giving up, not less; it gave up after $(seconds_of "$waited") s" || return 1
    [ "$waited" -le $(((n + SLACK) * 1000)) ] ||
        fail_because "expected the client to give up $n s after the server fell silent (at most $((n + SLACK)) s on" \
            "this machine); it gave up after $(seconds_of "$waited") s"
}

# bats test_tags=lesson
@test "gives up on a server that never answers: 'ERROR, no reply within 2 seconds' and exit 1, after 2 s, not sooner" {
    start_silent_server waitfor "$T/never"
    clock_ms
    local t0=$NOW_MS
    # One second more than the limit: with_deadline counts whole seconds.
    DEADLINE=$((2 + SLACK + 1)) try_client "hello?" REPLY_TIMEOUT=2
    clock_ms
    gave_up_in_time 2 "$t0" "$NOW_MS" "$status" "$stderr" || return 1
    [ -z "$output" ] || fail_because "expected nothing on stdout when no reply came, got: $(excerpt "$output")"
}

# REPLY_TIMEOUT is 1 + SLACK: 3 on a quiet machine, more on a busy one, where
# the pause may take longer than the 1 s asked for.
@test "waits for a reply that comes after a 1 s pause, with REPLY_TIMEOUT=3, and prints it" {
    start_silent_server read waitfor "$T/answer" send "I got your message" close
    start_bg slow sh -c 'echo slow | REPLY_TIMEOUT=$3 "$1" 127.0.0.1 "$2"' sh "$EX_PROG" "$PORT" $((1 + SLACK))
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
        fail_because "expected 'I got your message' and exit status 0 for a reply after 1 s with REPLY_TIMEOUT=$((1 + SLACK))," \
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

# ------------------------------------------------------------ the default, 10 s
# Seeing a 10 s default takes 10 s. So a client without REPLY_TIMEOUT starts
# before the first test (setup_file), against a server that never answers,
# and the last test looks at how and when it ended: the wait runs beside the
# other tests instead of after them.
setup_file() {
    DEFAULT_T="$BATS_FILE_TMPDIR/default"
    export DEFAULT_T
    mkdir -p "$DEFAULT_T"
    (
        T=$DEFAULT_T HARNESS_GROUPS="$DEFAULT_T/.process-groups" BG_PIDS=()
        : >"$HARNESS_GROUPS"
        [ -n "${EX_PROG:-}" ] && [ -x "$EX_PROG" ] && [ -x "$PEER" ] || exit 0
        start_silent_server waitfor "$T/never" 2>"$T/start.err" || exit 0
        unset REPLY_TIMEOUT
        clock_ms
        echo "$NOW_MS" >"$T/t0"
        start_timed client sh -c 'echo "no limit set" | "$1" 127.0.0.1 "$2"' sh "$EX_PROG" "$PORT"
    ) || true
}

teardown_file() {
    T=$DEFAULT_T HARNESS_GROUPS="$DEFAULT_T/.process-groups" BG_PIDS=()
    forget_foreign_groups
    stop_everything
}

# default_ended: the client of setup_file has ended (sets END_STATUS, END_MS).
default_ended() { ended client "$DEFAULT_T"; }

# bats test_tags=lesson
@test "without REPLY_TIMEOUT, gives up after 10 seconds, not sooner: 'ERROR, no reply within 10 seconds' and exit 1" {
    local t0
    t0=$(cat "$DEFAULT_T/t0" 2>/dev/null) || {
        fail_because "expected tests/peer to listen as a silent server, got: $(excerpt_file "$DEFAULT_T/start.err")"
        return 1
    }
    local end=$((t0 + (10 + SLACK) * 1000))
    while ! default_ended; do
        clock_ms
        [ "$NOW_MS" -le "$end" ] || break
        nap 0.05
    done
    if ! default_ended; then
        fail_because "expected the client without REPLY_TIMEOUT to give up after 10 s (at most $((10 + SLACK)) s on" \
            "this machine), with a server that never answers; after $(seconds_since "$t0") s it was still waiting"
        return 1
    fi
    gave_up_in_time 10 "$t0" "$END_MS" "$END_STATUS" "$(cat "$DEFAULT_T/client.err")"
}
