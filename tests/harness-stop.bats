#!/usr/bin/env bats
# The harness's two rules about stopping things (tests/harness.bash): the
# first failure stops the run when STOP_AT_FIRST_FAILURE is set (make test
# sets it), and stop_everything kills a recorded process group only while it
# is still ours, since process IDs are reused. (harness.bats proves the rest:
# deadlines, and nothing left behind.)

load helper

# helper.bash's teardown, kept under another name: this file's teardown first
# kills the other session's process of the last test, whatever happened.
eval "helper_$(declare -f teardown)"
teardown() {
    [ ! -s "$T/other.pid" ] || kill -KILL "$(cat "$T/other.pid")" 2>/dev/null || true
    helper_teardown
}

# The inner suites' tests are written with ${at}test: bats would take a line
# that starts with the word itself for a test of this file.
at=@

# inner_suite FILE: runs the bats FILE (written by the test) with the
# harness's stop on, in a process group of its own, under a deadline; its
# output goes to $T/inner.out.
inner_suite() {
    local status=0
    with_deadline env -u MAKE_TEST_FIRST_FAILURE STOP_AT_FIRST_FAILURE=1 TMPDIR="$T" bats --tap "$1" >"$T/inner.out" 2>&1 4>&- || status=$?
    echo "$status"
}

@test "after the first failing test, every later test fails at once and names it, when STOP_AT_FIRST_FAILURE is set" {
    cat >"$T/three.bats" <<EOF
load "$ROOT/tests/helper.bash"
${at}test "passes" { true; }
${at}test "breaks" { false; }
${at}test "would pass" { true; }
${at}test "would pass too" { true; }
EOF
    local status
    status=$(inner_suite "$T/three.bats")
    cat "$T/inner.out"
    [ "$status" -ne 0 ] || fail_because "expected the inner suite to fail, it passed"
    expect_same "test results" "ok 1 passes|not ok 2 breaks|not ok 3 would pass|not ok 4 would pass too" \
        "$(grep -E '^(not )?ok ' "$T/inner.out" | paste -s -d'|' -)"
    [ "$(grep -c "^# not run: the run stopped at its first failure, test 2 in .*three.bats ('breaks')" "$T/inner.out")" -eq 2 ] ||
        fail_because "expected tests 3 and 4 to say that test 2 stopped the run, got: $(excerpt "$(grep '^# ' "$T/inner.out")")"
}

@test "without STOP_AT_FIRST_FAILURE, a failure stops nothing" {
    cat >"$T/two.bats" <<EOF
load "$ROOT/tests/helper.bash"
${at}test "breaks" { false; }
${at}test "passes" { true; }
EOF
    run with_deadline env -u MAKE_TEST_FIRST_FAILURE STOP_AT_FIRST_FAILURE= TMPDIR="$T" bats --tap "$T/two.bats" 4>&-
    expect_same "test results" "not ok 1 breaks|ok 2 passes" "$(grep -E '^(not )?ok ' <<<"$output" | paste -s -d'|' -)"
}

# A process in a session of its own stands for a group whose number the
# kernel gave to someone else after ours ended: stop_everything must leave it
# alone, and still kill the groups that are ours.
@test "stop_everything kills the groups still ours, and not a recorded group whose number is now another session's" {
    command -v setsid >/dev/null || skip "needs setsid (util-linux) to start a process in another session"
    start_bg ours sleep 300
    local ours=$BG_PID other
    setsid sleep 300 </dev/null >/dev/null 2>&1 3>&- 4>&- &
    other=$!
    echo "$other" >"$T/other.pid"
    wait_until session_leader "$other"
    remember_group "$other"
    stop_everything
    local other_alive=yes
    alive "$other" || other_alive=no
    kill -KILL "$other" 2>/dev/null || true
    expect_same "the other session's process still running" yes "$other_alive"
    wait_until exited "$ours" || fail_because "expected our own group killed, it still runs"
}
# session_leader PID: PID has made its own session (setsid has run).
session_leader() { [ "$(ps -o sid= -p "$1" | tr -d ' ')" = "$1" ]; }
