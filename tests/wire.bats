#!/usr/bin/env bats
# tests/wire.bats - ./wire.sh (make wire), the tool that shows the segments of
# a lesson: its command line, what it says where it cannot capture, and that
# it leaves nothing behind. What it prints is checked in tests/claims.bats:
# the claims about segments read its output, and tutorial.md's quotes of it
# are compared with a real run there.

load helper

WIRE="$ROOT/wire.sh"

@test "./wire.sh --list names each scene with what it shows" {
    run "$WIRE" --list
    echo "$output"
    [ "$status" -eq 0 ]
    expect_same "the scenes" "client-first server-first reset refused" "$(printf '%s\n' "$output" | awk '{ print $1 }' | paste -s -d' ' -)"
}

@test "./wire.sh refuses an unknown scene or step with a clear message and status 2" {
    run "$WIRE" handshake
    [ "$status" -eq 2 ]
    [[ $output == *"wire: no scene 'handshake'"* ]]
    STEP=5 run "$WIRE" refused
    [ "$status" -eq 2 ]
    [[ $output == *"STEP must be 1, 2, 3 or 4, not '5'"* ]]
}

@test "where it cannot capture, ./wire.sh says why in one line and exits 77" {
    TCPDUMP=/nonexistent/tcpdump run "$WIRE" refused
    [ "$status" -eq 77 ]
    expect_same "what it says" "wire: cannot capture here: tcpdump is not installed (Debian: apt-get install tcpdump)" "$output"
}

# wire.sh killed outright while a program it started runs: here a stand-in
# for tcpdump that never says it is listening, so that wire.sh waits for it
# (for up to a minute). The stand-in, like everything a scene starts, must go
# with wire.sh: they share its PID namespace.
@test "./wire.sh killed outright leaves nothing running" {
    command -v setsid >/dev/null || skip "needs setsid (util-linux) to run wire.sh in a session of its own"
    printf '#!/bin/sh\n# stand-in for tcpdump: says nothing, captures nothing\nwhile :; do sleep 1; done\n' >"$T/mute-tcpdump"
    chmod 755 "$T" "$T/mute-tcpdump"
    # Not a process group leader, so setsid makes the session in this very
    # process: its PID is the session's ID.
    TCPDUMP="$T/mute-tcpdump" DEADLINE=60 setsid "$WIRE" refused >"$T/wire.out" 2>"$T/wire.err" </dev/null 3>&- &
    local sid=$!
    BG_PIDS+=("$sid")
    wait_until session_runs "$sid" mute-tcpdump || {
        grep -q 'cannot capture here' "$T/wire.err" && skip "$(cat "$T/wire.err")"
        fail_because "expected the stand-in for tcpdump to run in wire.sh's session, got: $(excerpt_file "$T/wire.err")"
    }
    # The first process only: the others must go because it went.
    kill -KILL "$sid"
    wait_until session_empty "$sid" || {
        echo "left running:" >&2
        ps -A -o sid= -o pid= -o args= | awk -v s="$sid" '$1 == s' >&2
        ps -A -o sid= -o pid= | awk -v s="$sid" '$1 == s { print $2 }' | xargs kill -KILL 2>/dev/null
        false
    }
}

# session_runs SID WORD: a process of session SID has WORD in its command line.
session_runs() { ps -A -o sid= -o args= | awk -v s="$1" -v w="$2" '$1 == s && index($0, w) { f = 1 } END { exit !f }'; }
session_empty() { ! ps -A -o sid= | awk -v s="$1" '$1 == s { f = 1 } END { exit !f }'; }
