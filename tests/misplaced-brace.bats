#!/usr/bin/env bats
# step3-fork/misplaced-brace.patch: step 3 with the brace of
# `if (newsockfd < 0) { ... }` moved below the whole fork block, the way the
# classic loop is often printed. It compiles; this file shows what it does:
# every connection is accepted, never served, and its descriptor leaks.
# tutorial.md, "The misplaced brace", explains it line by line.

load helper

PATCH_FILE="$ROOT/step3-fork/misplaced-brace.patch"

# build_broken: applies the patch to a copy of step 3 in the test's own
# directory and compiles it with the Makefile's warnings. Sets BROKEN.
build_broken() {
    command -v patch >/dev/null || skip "needs patch (Debian: apt-get install patch)"
    patch -s -o "$T/broken.c" "$ROOT/step3-fork/server.c" "$PATCH_FILE"
    "${CC:-cc}" -std=c99 -pedantic -Wall -Wextra -o "$T/broken" "$T/broken.c"
    BROKEN="$T/broken"
}

# start_program NAME PATH: like start_server, for a server outside the steps.
start_program() {
    start_bg server "$1" 0
    SERVER_PID=$BG_PID
    wait_until server_announced || { cat "$T/server.err" >&2; return 1; }
    PORT=$(sed -n 's/^Listening on port \([0-9][0-9]*\)$/\1/p' "$T/server.out")
}

fds_are() { [ "$(count_fds "$SERVER_PID")" -eq "$1" ]; }

# connections_unread N: N connections to the server's port hold bytes that
# the server has not read.
connections_unread() {
    [ "$(ss -Htn "sport = :$PORT" | awk '$2 > 0 { n++ } END { print n + 0 }')" -eq "$1" ]
}

@test "the misplaced-brace patch moves one closing brace and changes nothing else" {
    # Exactly one line removed and one added, and each is a lone "}".
    [ "$(grep -c '^-[^-]' "$PATCH_FILE")" -eq 1 ]
    [ "$(grep -c '^+[^+]' "$PATCH_FILE")" -eq 1 ]
    grep -qx -- '-        }' "$PATCH_FILE"
    grep -qx -- '+        }' "$PATCH_FILE"
    build_broken
    # The compiler has nothing to say about it.
    run "${CC:-cc}" -std=c99 -pedantic -Wall -Wextra -fsyntax-only "$T/broken.c"
    [ "$status" -eq 0 ]
    [ -z "$output" ]
}

@test "with the misplaced brace, clients are accepted and never answered" {
    build_broken
    start_program "$BROKEN"
    local before i
    before=$(count_fds "$SERVER_PID")
    for i in 1 2 3 4 5; do
        start_bg "client$i" with_deadline client_says "hello $i"
        # accept() returned: the server holds one more descriptor ...
        wait_until fds_are $((before + i))
        # ... and nothing is queued: the loop is back in accept().
        wait_until queue_is 0
    done
    # Five connections accepted by one process, so it went back to accept()
    # each time without reading: every line is still unread in the kernel,
    if command -v ss >/dev/null; then wait_until connections_unread 5; fi
    # nobody forked, nothing was printed, and every client is still waiting.
    [ "$(count_children "$SERVER_PID")" -eq 0 ]
    ! grep -q 'Here is the message' "$T/server.out"
    for i in 1 2 3 4 5; do
        alive "${BG_PIDS[$i]}" || { echo "client $i finished:" >&2; cat "$T/client$i.err" >&2; false; }
    done
    # When the server goes, the kernel closes its descriptors at last. Each
    # connection still holds an unread line, so it is reset, not ended: the
    # clients learn that they were waiting for nothing.
    kill -TERM "$SERVER_PID"
    for i in 1 2 3 4 5; do
        wait_until grep -q "^ERROR" "$T/client$i.err"
        if [ "$(uname -s)" = Linux ]; then
            grep -qx "ERROR reading from socket: Connection reset by peer" "$T/client$i.err"
        fi
    done
}

@test "with the brace where it belongs (step3 as it is), the same clients are answered" {
    start_server step3-fork
    local before i
    before=$(count_fds "$SERVER_PID")
    for i in 1 2 3 4 5; do
        served "hello $i"
    done
    [ "$(count_fds "$SERVER_PID")" -eq "$before" ]
}
