#!/usr/bin/env bats
# demo.sh (make demo): the narrated tour. It must finish on its own (how fast
# is for the reader to see, not for a test to time: the deadline below only
# keeps a hung tour from hanging the suite),
# show each step's lesson, write a clean log when stdout is not a terminal,
# and leave no process behind, also when it is interrupted with Ctrl-C.

load helper

# The demo runs in a session of its own (setsid), so that every process it
# starts, in whatever process group, can be found afterwards by session ID.
need_setsid() {
    command -v setsid >/dev/null || skip "needs setsid (util-linux) to find every process the demo started"
}

# start_demo [ENV=VALUE...]: starts ./demo.sh in a new session, output in
# $T/demo.log. Sets WRAPPER (setsid, which waits for the demo and exits with
# its status) and DEMO (the demo itself, whose PID is also its session ID).
start_demo() {
    set -m
    env "$@" setsid -w "$ROOT/demo.sh" >"$T/demo.log" 2>&1 </dev/null 3>&- &
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

# A server of this repository running in the session.
server_in_session() { in_session "$1" | grep -q '/server 0$'; }

finish_demo() {
    local deadline=$1
    DEADLINE=$deadline wait_until exited "$WRAPPER"
    wait "$WRAPPER"
}

@test "make demo's script runs the whole tour on its own and exits 0" {
    need_setsid
    local start=$SECONDS
    start_demo
    status=0
    finish_demo 120 || status=$?
    echo "exit status $status after $((SECONDS - start)) s"
    cat "$T/demo.log"
    [ "$status" -eq 0 ]
    # Nothing it started is left running.
    wait_until session_empty "$DEMO"
}

@test "the tour shows each step's lesson" {
    need_setsid
    start_demo
    finish_demo 120
    local log="$T/demo.log"
    cat "$log"
    # step 1: one client, then nobody listens.
    grep -q '^== Step 1' "$log"
    grep -q 'exited with status 0' "$log"
    grep -q 'ERROR connecting: Connection refused' "$log"
    # step 2: the second client is queued, unanswered, until the first speaks;
    # then the server serves them in order.
    grep -q '^LISTEN 1 ' <(sed 's/^    | //; s/  */ /g' "$log")
    grep -q 'B has connected and sent its line, and has no reply' "$log"
    [ "$(sed -n '/^== Step 2/,/^== Step 3/p' "$log" | grep 'Here is the message' | sed 's/.*message: //')" = \
      "$(printf 'hello from A\nhello from B')" ]
    # step 3: B is answered while A is silent; five zombies.
    sed -n '/^== Step 3/,/^== Step 4/p' "$log" | grep -q 'B got, while A still says nothing'
    grep -q 'zombies after 5 clients: 5\.' "$log"
    [ "$(sed -n '/^== Step 3/,/^== Step 4/p' "$log" | grep -c ' Z .*<defunct>$')" -eq 5 ]
    # step 4: the same load, none.
    grep -q 'zombies after 5 clients: 0\.' "$log"
    [ "$(sed -n '/^== Step 4/,$p' "$log" | grep -c ' Z .*<defunct>$')" -eq 0 ]
}

@test "the tour's log holds no escape sequences or other garbage when stdout is not a terminal" {
    need_setsid
    start_demo
    finish_demo 120
    ! grep -q $'\e' "$T/demo.log"
    ! grep -q $'\r' "$T/demo.log"
    ! LC_ALL=C grep -q '[^[:print:]]' "$T/demo.log"
}

@test "Ctrl-C stops the tour and every process it started" {
    need_setsid
    # Long pauses keep a server running long enough to interrupt it there.
    start_demo DEMO_PAUSE=2
    DEADLINE=40 wait_until server_in_session "$DEMO"
    in_session "$DEMO"
    # What Ctrl-C does: SIGINT to the terminal's foreground process group,
    # which is the demo's. Its servers run in groups of their own.
    kill -INT -- "-$DEMO"
    status=0
    finish_demo 10 || status=$?
    cat "$T/demo.log"
    [ "$status" -eq 130 ]
    wait_until session_empty "$DEMO"
    grep -q 'Interrupted' "$T/demo.log"
}
