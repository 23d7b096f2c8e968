#!/usr/bin/env bats
# demo.sh (make demo): the narrated tour. It must finish on its own (how fast
# is for the reader to see, not for a test to time: the deadlines below only
# keep a hung tour from hanging the suite),
# show each step's lesson, write a clean log when stdout is not a terminal,
# and leave no process behind (demo-interrupt.bats: also when it is
# interrupted with Ctrl-C, killed, or hung).
# make test runs this file first: the tour uses every step within seconds,
# and each of its waits has a deadline of its own (QUICK: every condition it
# waits for, a working server meets in milliseconds), so a broken step fails
# here soon, saying which scene it broke.

load helper
load demo

# The whole tour, run once for the three tests that read it (the first runs
# it; the others read its log, or run their own when run alone): each scene
# has its deadline in the demo itself, and the tour as a whole TOUR_BOUND.
TOUR_BOUND=$(scaled 30)
# whole_tour: runs the tour, or reuses the one this file ran; sets status and
# $T/demo.log.
whole_tour() {
    local saved="$BATS_FILE_TMPDIR/tour"
    if [ -f "$saved.status" ]; then
        cp "$saved.log" "$T/demo.log"
        status=$(cat "$saved.status")
        return 0
    fi
    need_setsid
    local start=$SECONDS
    start_demo
    status=0
    finish_demo "$TOUR_BOUND" || status=$?
    echo "exit status $status after $((SECONDS - start)) s"
    # Nothing it started is left running.
    wait_until session_empty "$DEMO" ||
        fail_because "expected nothing left of the tour, got: $(excerpt "$(in_session "$DEMO")")"
    cp "$T/demo.log" "$saved.log"
    echo "$status" >"$saved.status"
}

# expect_tour_ended: the tour exited 0; otherwise one line with how it ended
# (the demo's own complaint, "demo: ...", if it made one).
expect_tour_ended() {
    local said
    [ "$status" -eq 0 ] && return 0
    said=$(grep -m 1 '^demo: ' "$T/demo.log") || said=$(tail -n 3 "$T/demo.log")
    fail_because "expected the tour to exit 0, got status $status and: $(excerpt "$said")"
}

@test "make demo's script runs the whole tour on its own and exits 0" {
    whole_tour
    show_log
    expect_tour_ended
}

@test "the tour shows each step's lesson" {
    whole_tour
    expect_tour_ended
    show_log
    # step 1: one client, then nobody listens.
    log_shows "step 1" '^== Step 1'
    log_shows "step 1's exit status" 'exited with status 0'
    log_shows "the second client refused" 'ERROR connecting: Connection refused'
    # step 2: the second client is queued, unanswered, until the first speaks;
    # then the server serves them in order.
    sed 's/^    | //; s/  */ /g' "$T/demo.log" >"$T/plain.log"
    grep -q '^LISTEN 1 ' "$T/plain.log" ||
        { echo "expected ss to show one connection queued (LISTEN 1), got: $(grep LISTEN "$T/plain.log")" >&2; false; }
    log_shows "B waiting" 'B has connected and sent its line, and has no reply'
    expect_equal "step 2's messages, in order" "hello from A, hello from B" \
        "$(in_chapter 2 3 | sed -n 's/.*Here is the message: //p' | paste -s -d, - | sed 's/,/, /g')"
    # step 3: B is answered while A is silent; five zombies.
    in_chapter 3 4 | grep -q 'B got, while A still says nothing' ||
        { echo "expected step 3 to answer B while A is silent" >&2; false; }
    log_shows "five zombies" 'zombies after 5 clients: 5\.'
    expect_equal "<defunct> lines in step 3" 5 "$(in_chapter 3 4 | grep -c ' Z .*<defunct>$')"
    # step 4: the same load, none.
    log_shows "no zombies" 'zombies after 5 clients: 0\.'
    expect_equal "<defunct> lines in step 4" 0 "$(in_chapter 4 | grep -c ' Z .*<defunct>$')"
}

@test "the tour's log holds no escape sequences or other garbage when stdout is not a terminal" {
    whole_tour
    expect_tour_ended
    log_lacks "escape sequence" $'\e'
    log_lacks "carriage return" $'\r'
    log_lacks "unprintable character" '[^[:print:]]'
}
