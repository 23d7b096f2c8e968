# tests/demo.bash - what tests/demo.bats (the tour) and tests/demo-interrupt.bats
# (Ctrl-C, and a tour killed or hung) share: starting ./demo.sh in a session
# of its own, reading its log, ending its pauses, and stopping everything in
# its session. Load it after helper.bash.

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
# $T/demo.log, its own files under $T, and $QUICK seconds for each condition
# it waits for (a client's reply, a server's port, ...). Sets WRAPPER (setsid, which waits for
# the demo and exits with its status) and DEMO (the demo itself, whose PID is
# also its session ID). tests/sigdefault puts SIGINT back to its default
# first: a suite started in the background by a script (nohup, CI) inherits
# SIGINT ignored, and a shell can never trap a signal ignored when it started.
start_demo() {
    set -m
    # ulimit -f: a server broken so that it prints an error in a loop must not
    # fill the disk (it gets SIGXFSZ at 64 MB).
    (ulimit -f 65536 && exec env TMPDIR="$T" DEADLINE="$QUICK" "$@" \
        setsid -w "$ROOT/tests/sigdefault" "$ROOT/demo.sh") >"$T/demo.log" 2>&1 </dev/null 3>&- &
    WRAPPER=$!
    set +m
    BG_PIDS+=("$WRAPPER")
    wait_until demo_started
}
# show_log: the tour's log for bats to show when a test fails: its first 200
# lines, each cut at 300 characters (a broken server that prints an error in
# a loop writes megabytes of it in seconds).
show_log() {
    local n
    n=$(wc -l <"$T/demo.log" | tr -d ' ')
    head -n 200 "$T/demo.log" | cut -c1-300
    [ "$n" -le 200 ] || echo "... and $((n - 200)) more lines in the log"
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
        DEADLINE=$(scaled 2) wait_until session_empty "$DEMO" ||
            { echo "still in the demo's session after SIGKILL:" >&2; in_session "$DEMO" >&2; }
    fi
    return 0
}
