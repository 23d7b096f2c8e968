#!/usr/bin/env bats
# demo.sh (make demo), interrupted: one Ctrl-C stops the tour and every
# process it started, also while it polls for a condition; a demo killed
# outright leaves no client waiting for its input; and a tour that hangs fails
# its test within the deadline and leaves nothing behind. (demo.bats runs
# the whole tour; this file is apart so that make test can run that one first
# and this one later.)

load helper
load demo

@test "Ctrl-C stops the tour and every process it started" {
    need_setsid
    start_demo DEMO_PAUSE=$LONG
    # Step 2's pause: the server, silent client A and waiting client B run.
    next_scene
    next_scene
    wait_until log_has 'That is B\.$'
    in_session "$DEMO"
    # What Ctrl-C does: SIGINT to the terminal's foreground process group,
    # which is the demo's. Its servers and clients run in groups of their
    # own. One SIGINT, once: a person presses Ctrl-C once.
    kill -INT -- "-$DEMO"
    status=0
    finish_demo "$(scaled 10)" || status=$?
    show_log
    expect_status 130
    wait_until session_empty "$DEMO"
    grep -q 'Interrupted' "$T/demo.log"
    # Its files are gone too.
    for dir in "$T"/tcp-demo.*; do
        [ ! -e "$dir" ] || { echo "expected the demo's files gone, found $dir" >&2; false; }
    done
}

@test "Ctrl-C stops the tour while it polls for a condition" {
    need_setsid
    start_demo DEMO_PAUSE=$LONG DEADLINE=60
    next_scene
    next_scene
    wait_until log_has 'That is B\.$'
    # A stopped server answers nobody: once A has spoken, the demo polls
    # every 20 ms for B's reply (its deadline is far away) until the SIGINT.
    local server
    server=$(in_session "$DEMO" | awk '/step2-loop\/server 0$/ { print $2 }')
    kill -STOP "$server"
    next_scene
    wait_until log_has '^Now A speaks\.$'
    kill -INT -- "-$DEMO"
    # A stopped process keeps a SIGTERM pending until it runs again.
    kill -CONT "$server"
    status=0
    finish_demo "$(scaled 10)" || status=$?
    show_log
    expect_status 130
    log_lacks "B's reply after the Ctrl-C" '^B got:'
    wait_until session_empty "$DEMO"
}

@test "a demo killed outright leaves no client waiting for its input" {
    need_setsid
    # In step 2, client A waits for a line on a FIFO whose only writer must be
    # the demo: when the demo dies, A reads end of file and ends, and so does
    # B once the server is free. The server itself is left for teardown.
    start_demo DEMO_PAUSE=$LONG
    next_scene
    next_scene
    wait_until log_has 'That is B\.$'
    kill -KILL "$DEMO"
    wait "$WRAPPER" || true
    wait_until no_client_in_session "$DEMO" ||
        { echo "expected no client left once the demo was gone; the session holds:" >&2
          in_session "$DEMO" >&2; false; }
}

@test "a tour that hangs fails its test within the deadline and leaves nothing behind" {
    need_setsid
    # A stopped demo hangs for good: finish_demo must give up, and stop
    # everything in its session, servers and clients too, with SIGKILL if
    # SIGTERM is not enough.
    start_demo DEMO_PAUSE=$LONG
    next_scene
    next_scene
    wait_until log_has 'That is B\.$'
    kill -STOP "$DEMO"
    local start=$SECONDS
    status=0
    finish_demo 1 || status=$?
    [ "$status" -eq 124 ] || { echo "expected finish_demo to give up with 124, got $status" >&2; false; }
    [ $((SECONDS - start)) -le "$(scaled 10)" ] ||
        { echo "expected finish_demo to give up within $(scaled 10) s, took $((SECONDS - start)) s" >&2; false; }
    session_empty "$DEMO" || { echo "expected nothing left in the session, found:" >&2; in_session "$DEMO" >&2; false; }
}
