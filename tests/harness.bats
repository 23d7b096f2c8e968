#!/usr/bin/env bats
# The harness itself: whatever the program under test does, a test fails
# within its deadline and leaves no process behind. Students will break these
# programs on purpose, and the exercise checkers and make grade run code that
# hangs; a suite that hangs with it would be no help.

load helper

# helper.bash's teardown, kept under another name: this file's teardown first
# kills whatever is left of the inner suites, then runs it.
eval "helper_$(declare -f teardown)"
teardown() {
    stop_inner_suites
    helper_teardown
}

# fake_tree MODE: a tree shaped like the repository's, in $T/MODE, whose four
# servers are tests/stuck in MODE (copied there, so that every process it
# starts can be found by its path) and whose client is the real one.
fake_tree() {
    local step tree="$T/$1"
    mkdir -p "$tree/client" "$tree.tmp"
    cp "$ROOT/tests/stuck" "$tree/stuck"
    cp "$CLIENT" "$tree/client/client"
    for step in step1-single step2-loop step3-fork step4-reap; do
        mkdir -p "$tree/$step"
        printf '#!/bin/sh\nexec "%s" %s "$@"\n' "$tree/stuck" "$1" >"$tree/$step/server"
        chmod +x "$tree/$step/server"
    done
}

# left_behind MODE: processes still running from the fake tree, or from the
# inner suite's temporary directory (clients, peers, bats itself).
left_behind() {
    ps -A -o pid= -o stat= -o args= | TREE="$T/$1" awk '$2 !~ /^Z/ && index($0, ENVIRON["TREE"])'
}
nothing_left_behind() { [ -z "$(left_behind "$1")" ]; }

# hang_suite MODE: runs tests/harness/hang.bats against servers in MODE, with
# a 1 s deadline per condition (QUICK too), and 30 s for the whole file
# (scaled: how long the inner suite takes depends on the load; that each of
# its tests fails on its own 1 s deadline does not). The inner suite runs in
# a session of its own (setsid, where there is one), whose ID goes to
# $T/MODE.sid: teardown kills every process of it, even if the suite had to
# be killed before its own teardown ran. Its output goes to $T/MODE.out and
# its exit status to $T/MODE.status. The inner suite keeps going after its
# first failure: all five must fail.
hang_suite() {
    local status=0 session=()
    command -v setsid >/dev/null && session=(setsid -w bash -c 'echo $$ >"$0" && exec "$@"' "$T/$1.sid")
    DEADLINE=$(scaled 30) with_deadline ${session[@]+"${session[@]}"} \
        env -u MAKE_TEST_FIRST_FAILURE BIN="$T/$1" DEADLINE=1 QUICK=1 TERM_GRACE_TENTHS=5 TMPDIR="$T/$1.tmp" STOP_AT_FIRST_FAILURE= \
        bats --tap "$ROOT/tests/harness/hang.bats" >"$T/$1.out" 2>&1 4>&- || status=$?
    echo "$status" >"$T/$1.status"
}

# stop_inner_suites: SIGKILL to every process of the inner suites' sessions,
# and to anything still running from their trees (where setsid is missing),
# until none is left.
stop_inner_suites() {
    local mode
    for mode in mute forker; do
        kill_listed "$(inner_processes "$mode")"
    done
    DEADLINE=$(scaled 5) wait_until inner_suites_gone 2>/dev/null || true
}
inner_processes() {
    local sid=
    [ -s "$T/$1.sid" ] && sid=$(cat "$T/$1.sid")
    ps -A -o pid= -o sid= -o stat= -o args= |
        TREE="$T/$1" awk -v s="$sid" -v me=$$ '$3 !~ /^Z/ && $1 != me && ((s != "" && $2 == s) || index($0, ENVIRON["TREE"])) { print $1 }'
}
inner_suites_gone() { [ -z "$(inner_processes mute)$(inner_processes forker)" ]; }
kill_listed() {
    local pid
    for pid in $1; do
        kill -KILL "$pid" 2>/dev/null || true
    done
}

# check_hang_suite MODE: every test of the inner suite failed on a deadline,
# the suite ended in time, and nothing is left running.
check_hang_suite() {
    local out status test reasons
    out=$(cat "$T/$1.out")
    status=$(cat "$T/$1.status")
    echo "== against stuck $1: exit status $status"
    echo "$out"
    [ "$status" -ne 124 ] || fail_because "expected the inner suite ($1) to end within $(scaled 30) s, it had to be killed"
    [ "$status" -ne 0 ] || fail_because "expected every test of the inner suite ($1) to fail, the suite passed"
    ! grep -q '^ok' <<<"$out" || fail_because "expected no test to pass ($1), got: $(grep '^ok' <<<"$out")"
    [ "$(grep -c '^not ok' <<<"$out")" -eq 5 ] ||
        fail_because "expected 5 failed tests ($1), got: $(grep -c '^not ok' <<<"$out")"
    # ... and each for the right reason: a deadline ran out (not a missing
    # file or a typo, which would fail at once and prove nothing). On a busy
    # machine a test may run out of time before the point where it was meant
    # to, say while its peer starts; that is a deadline too (start_peer says
    # so in its own words: it fails only when its wait gives up).
    for test in 1 2 3 4 5; do
        reasons=$(sed -n "/^not ok $test /,/^not ok /p" <<<"$out" |
            grep -cE "still running after 1s, killed|gave up after 1s|failed with status 124|expected the peer '[^']*' to connect" || true)
        [ "$reasons" -ge 1 ] || fail_because "expected test $test of the inner suite ($1) to fail on a deadline, got:" \
            "$(sed -n "/^not ok $test /,/^not ok /p" <<<"$out" | sed -n 2,5p)"
    done
    DEADLINE=$(scaled 5) wait_until nothing_left_behind "$1" ||
        fail_because "expected nothing left running ($1), got: $(excerpt "$(left_behind "$1")")"
}

@test "whatever the server does (never answers; forks children that never exit and ignore SIGTERM), every test fails within its deadline and leaves nothing behind" {
    fake_tree mute
    fake_tree forker
    local start=$SECONDS
    hang_suite mute &
    hang_suite forker &
    wait
    echo "both inner suites took $((SECONDS - start)) s"
    check_hang_suite mute
    check_hang_suite forker
}
