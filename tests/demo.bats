#!/usr/bin/env bats
# demo.sh (make demo): the narrated tour. It must finish on its own (how fast
# is for the reader to see, not for a test to time: the deadlines below only
# keep a hung tour from hanging the suite),
# show each step's lesson, write a clean log when stdout is not a terminal,
# and leave no process behind, also when it is interrupted with Ctrl-C.

load helper

# helper.bash's teardown, kept under another name: this file's teardown first
# stops whatever is left of the demo's session, then runs it.
eval "helper_$(declare -f teardown)"
teardown() {
    stop_session
    helper_teardown
}

# The demo runs in a session of its own (setsid), so that every process it
# starts, in whatever process group, can be found afterwards by session ID.
need_setsid() {
    command -v setsid >/dev/null || skip "needs setsid (util-linux) to find every process the demo started"
}

# start_demo [ENV=VALUE...]: starts ./demo.sh in a new session, output in
# $T/demo.log, its own files under $T. Sets WRAPPER (setsid, which waits for
# the demo and exits with its status) and DEMO (the demo itself, whose PID is
# also its session ID). tests/sigdefault puts SIGINT back to its default
# first: a suite started in the background by a script (nohup, CI) inherits
# SIGINT ignored, and a shell can never trap a signal ignored when it started.
start_demo() {
    set -m
    env TMPDIR="$T" "$@" setsid -w "$ROOT/tests/sigdefault" "$ROOT/demo.sh" >"$T/demo.log" 2>&1 </dev/null 3>&- &
    WRAPPER=$!
    set +m
    BG_PIDS+=("$WRAPPER")
    wait_until demo_started
}
demo_started() {
    DEMO=$(ps -A -o ppid= -o pid= | awk -v p="$WRAPPER" '$1 == p { print $2; exit }')
    [ -n "$DEMO" ]
}

# in_session SID: the processes (other than zombies) of session SID.
in_session() {
    ps -A -o sid= -o pid= -o stat= -o args= | awk -v s="$1" '$1 == s && $3 !~ /^Z/'
}
session_empty() { [ -z "$(in_session "$1")" ]; }

# log_lacks WHAT PATTERN: the demo's log has no line matching PATTERN (a
# regular expression); otherwise it says what it found, and fails.
log_lacks() {
    local found
    LC_ALL=C grep -q -e "$2" "$T/demo.log" || return 0
    found=$(LC_ALL=C grep -n -m 3 -e "$2" "$T/demo.log" | LC_ALL=C cat -v)
    echo "expected no $1 in the demo's log, found: $found" >&2
    return 1
}

log_has() { grep -q -e "$1" "$T/demo.log"; }
# log_shows WHAT PATTERN: the demo's log has a line matching PATTERN;
# otherwise it says which, and fails.
log_shows() {
    log_has "$2" && return 0
    echo "expected $1 in the demo's log (a line matching '$2'), found none" >&2
    return 1
}
# in_chapter N [M]: the log from step N's chapter to step M's (or the end).
in_chapter() {
    if [ -n "${2:-}" ]; then
        sed -n "/^== Step $1/,/^== Step $2/p" "$T/demo.log"
    else
        sed -n "/^== Step $1/,\$p" "$T/demo.log"
    fi
}
# expect_equal WHAT EXPECTED GOT
expect_equal() {
    [ "$2" = "$3" ] || { echo "expected $1: $2, got: $3" >&2; return 1; }
}

# A client running in the session.
no_client_in_session() { ! in_session "$1" | grep -q 'client/client '; }

# A pause that lasts until the test ends it: the tests that interrupt the tour
# do it in a pause, with no race against the tour's progress.
LONG=300
# next_scene: ends the pause the demo is in (waiting for it first), as a
# reader would who has read the scene. It kills the demo's `sleep` with
# SIGPIPE: bash reports a command killed by most signals ("Terminated"),
# but not by SIGPIPE, and SIGINT would look like a Ctrl-C.
next_scene() {
    wait_until pausing
    kill -PIPE "$PAUSE_PID"
    wait_until pause_ended
}
pausing() {
    PAUSE_PID=$(ps -A -o ppid= -o pid= -o args= |
        awk -v p="$DEMO" -v s="sleep $LONG" '$1 == p && substr($0, index($0, $3)) == s { print $2; exit }')
    [ -n "$PAUSE_PID" ]
}
pause_ended() { ! kill -0 "$PAUSE_PID" 2>/dev/null; }

# expect_status N: the demo's exit status ($status) is N.
expect_status() {
    [ "$status" -eq "$1" ] || { echo "expected the demo to exit with status $1, got $status" >&2; false; }
}

# finish_demo SECONDS: waits at most SECONDS for the demo to end and returns
# its exit status. A demo still running then is a failure: finish_demo says
# what was left, stops the whole session and returns 124, instead of waiting
# for a tour that may never end.
finish_demo() {
    DEADLINE=$1 wait_until exited "$WRAPPER" || {
        echo "expected the demo to end within $1 s; still running in its session:" >&2
        in_session "$DEMO" >&2
        stop_session
        return 124
    }
    wait "$WRAPPER"
}

# stop_session: stops every process of the demo's session (found by session
# ID, whatever group it runs in), then collects setsid, which ends with the
# demo (and is killed if it does not, say because the demo never started).
stop_session() {
    [ -n "${WRAPPER:-}" ] || return 0
    [ -n "${DEMO:-}" ] || demo_started || true
    [ -z "$DEMO" ] || stop_processes_of_session
    DEADLINE=2 wait_until exited "$WRAPPER" 2>/dev/null || kill -KILL "$WRAPPER" 2>/dev/null || true
    wait "$WRAPPER" 2>/dev/null || true
}
# stop_processes_of_session: SIGTERM to each, up to 2 s for them to go, then
# SIGKILL to the rest (a hung or stopped process may outlast SIGTERM, but
# not SIGKILL).
stop_processes_of_session() {
    local pid
    for pid in $(in_session "$DEMO" | awk '{ print $2 }'); do
        kill -TERM "$pid" 2>/dev/null || true
    done
    if ! DEADLINE=2 wait_until session_empty "$DEMO" 2>/dev/null; then
        for pid in $(in_session "$DEMO" | awk '{ print $2 }'); do
            kill -KILL "$pid" 2>/dev/null || true
        done
        DEADLINE=2 wait_until session_empty "$DEMO" ||
            { echo "still in the demo's session after SIGKILL:" >&2; in_session "$DEMO" >&2; }
    fi
    return 0
}

@test "make demo's script runs the whole tour on its own and exits 0" {
    need_setsid
    local start=$SECONDS
    start_demo
    status=0
    finish_demo 120 || status=$?
    echo "exit status $status after $((SECONDS - start)) s"
    cat "$T/demo.log"
    expect_status 0
    # Nothing it started is left running.
    wait_until session_empty "$DEMO"
}

@test "the tour shows each step's lesson" {
    need_setsid
    start_demo
    status=0
    finish_demo 120 || status=$?
    expect_status 0
    cat "$T/demo.log"
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
    need_setsid
    start_demo
    status=0
    finish_demo 120 || status=$?
    expect_status 0
    log_lacks "escape sequence" $'\e'
    log_lacks "carriage return" $'\r'
    log_lacks "unprintable character" '[^[:print:]]'
}

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
    finish_demo 10 || status=$?
    cat "$T/demo.log"
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
    finish_demo 10 || status=$?
    cat "$T/demo.log"
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
    [ $((SECONDS - start)) -le 10 ] || { echo "expected finish_demo to give up within 10 s, took $((SECONDS - start)) s" >&2; false; }
    session_empty "$DEMO" || { echo "expected nothing left in the session, found:" >&2; in_session "$DEMO" >&2; false; }
}
