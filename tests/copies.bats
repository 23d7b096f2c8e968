#!/usr/bin/env bats
# tests/copies.bats - the exercises' starters, their reference solutions and
# the second solutions copy a step's code, comments included. When a step
# changes (a fix, a claim corrected in a comment), every copy must change
# with it: no copy may keep what its step has dropped. tests/copies.txt
# lists each copy, the step it copies and the blocks it changes on purpose;
# everything else must be the step's. The rule is in tests/copies.txt and
# tests/README.md.

load helper
load copies

@test "every copy of a step's code is listed in tests/copies.txt, with a step that exists" {
    local file copy step problems=
    for file in $(copy_files); do
        copies_listed | awk -v f="$file" '$1 == f { found = 1 } END { exit !found }' ||
            problems="$problems
  $file copies a step and is not listed: add a line 'COPY STEP CHANGED-BLOCKS' (run this test again to see which blocks)"
    done
    while read -r copy step _; do
        [ -f "$ROOT/$copy" ] || problems="$problems
  tests/copies.txt lists $copy, which does not exist"
        [ -f "$ROOT/$step" ] || problems="$problems
  tests/copies.txt says $copy copies $step, which does not exist"
    done < <(copies_listed)
    [ -z "$problems" ] || fail_because "expected every copy listed in tests/copies.txt, got:$problems"
}

@test "every copy keeps its step's code and comments, outside the blocks tests/copies.txt says it changes" {
    local copy step blocks problems
    problems=$(copies_listed | while read -r copy step blocks; do
        # shellcheck disable=SC2086 # the blocks are words
        check_copy "$copy" "$step" $blocks
    done)
    [ -z "$problems" ] || fail_because "expected every copy to keep what its step has, got:
$problems"
}

# The check must be able to fail.

@test "the copies check fails on a copy that keeps a comment its step has changed" {
    # Exercise 05's starter, with main's comment about SIGPIPE as it was.
    sed 's|A write that fails with EPIPE (the client has gone) also raises|Writing to a client that has gone raises SIGPIPE, which kills the|' \
        "$ROOT/exercises/05-log-child-exits/server.c" >"$T/old.c"
    ! cmp -s "$ROOT/exercises/05-log-child-exits/server.c" "$T/old.c"
    run check_copy "$T/old.c" step4-reap/server.c main reap_children
    echo "$output"
    [[ $output == *"in 'main', step4-reap/server.c's comment \"A write that fails with EPIPE"*"is missing or changed"* ]]
}

@test "the copies check fails on a copy whose unlisted block differs from its step" {
    sed 's|^    if (shutdown(sockfd, SHUT_WR) == 0) {$|    if (shutdown(sockfd, SHUT_RDWR) == 0) {|' \
        "$ROOT/exercises/07-graceful-stop/server.c" >"$T/old.c"
    ! cmp -s "$ROOT/exercises/07-graceful-stop/server.c" "$T/old.c"
    run check_copy "$T/old.c" step4-reap/server.c main
    echo "$output"
    [[ $output == *"'hang_up' differs from step4-reap/server.c's"* ]]
}

@test "the copies check fails on a block listed as changed that is the step's" {
    run check_copy exercises/07-graceful-stop/server.c step4-reap/server.c main hang_up
    echo "$output"
    [[ $output == *"lists 'hang_up' as changed, and it is the same as in step4-reap/server.c"* ]]
}
