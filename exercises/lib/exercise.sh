#!/usr/bin/env bash
# exercises/lib/exercise.sh - what `make exercises` and `make exercise EX=NN` run.
#
#   exercise.sh list         the exercises: number, title, chapter, status
#   exercise.sh check NN     build exercises/NN-*/server.c (or client.c) and run
#                            its checker; one line of summary at the end
#
# The result of the last check is kept in build/exercises/NN.status, keyed by
# a checksum of the student's file and of the checker. The list shows
# "passed" only while both are what they were when the check passed; once the
# file changes it says "not yet (changed since last check)" until the next
# `make exercise` (the list never runs a checker itself, so it stays quick).
# Written for bash 3.2 and later (macOS still ships 3.2).
set -u

source "$(dirname "$0")/common.bash"

STATUS_DIR="${EX_STATUS_DIR:-$REPO/build/exercises}"
# The whole checker run may take this long (180 s times TIME_SCALE, 1 plus
# the load per processor, as every deadline of the checks inside is: see
# tests/harness.bash); each check inside has its own deadlines.
if [ -z "${EX_RUN_DEADLINE:-}" ]; then
    EX_RUN_DEADLINE=$(source "$REPO/tests/harness.bash" && scaled 180)
fi

# key DIR STARTER: a checksum of the student's file and of the checker (cksum is POSIX).
key() {
    cat "$1/$2" "$1/check.bats" 2>/dev/null | cksum | awk '{ print $1 "-" $2 }'
}

# status_of DIR: the list's status column for one exercise.
status_of() {
    local dir=$1 nn starter file_key saved_key saved_result
    nn=$(basename "$dir" | cut -c1-2)
    starter=$(ex_starter "$dir") || { echo "no starter file yet"; return; }
    [ -f "$dir/check.bats" ] || { echo "no checker yet"; return; }
    [ -f "$STATUS_DIR/$nn.status" ] || { echo "not yet"; return; }
    file_key=$(key "$dir" "$starter")
    { read -r saved_key; read -r saved_result; } <"$STATUS_DIR/$nn.status"
    if [ "$saved_key" != "$file_key" ]; then
        echo "not yet (changed since last check)"
    elif [ "$saved_result" = passed ]; then
        echo "passed"
    elif [ "$saved_result" = "passed with warnings" ]; then
        echo "not yet: passed with warnings (make grade: does not build)"
    else
        echo "not yet"
    fi
}

list() {
    local dir nn after passed=0 total=0 status
    printf '%-3s %-50s %-22s %s\n' "#" "exercise" "after" "status"
    while IFS= read -r dir; do
        [ -n "$dir" ] || continue
        nn=$(basename "$dir" | cut -c1-2)
        after=$(ex_after "$dir")
        status=$(status_of "$dir")
        total=$((total + 1))
        [ "$status" != passed ] || passed=$((passed + 1))
        printf '%-3s %-50s %-22s %s\n' "$nn" "$(ex_title "$dir" | cut -c1-50)" "${after:-?}" "$status"
    done <<EOF
$(ex_dirs)
EOF
    if [ "$total" -eq 0 ]; then
        echo "(no exercises in $EXERCISES_DIR yet)"
        return 0
    fi
    echo
    echo "$passed of $total passed. Check one with: make exercise EX=NN (its task: exercises/NN-*/README.md)"
}

# usage MESSAGE: says what is wrong, shows the list, and fails.
usage() {
    echo "$1" >&2
    echo >&2
    list >&2
    exit 2
}

check() {
    local arg=${1:-} nn dir starter prog name log rc title failed ok skipped planned warned
    [ -n "$arg" ] || usage "Which exercise? Say its number: make exercise EX=03"
    nn=$(ex_number "$arg") || usage "'$arg' is not an exercise number: say make exercise EX=03 (or EX=3)"
    dir=$(ex_find "$nn") || usage "There is no exercise $nn."
    starter=$(ex_starter "$dir") ||
        usage "Exercise $nn ($dir) has no server.c or client.c to work on (git status shows whether it was deleted)."
    [ -f "$dir/check.bats" ] || usage "Exercise $nn has no checker ($dir/check.bats is missing)."
    command -v "${BATS:-bats}" >/dev/null 2>&1 || {
        echo "make exercise needs bats-core, which is not installed."
        echo "  Debian/Ubuntu: sudo apt-get install bats"
        echo "  macOS:         brew install bats-core"
        exit 2
    } >&2
    title=$(ex_title "$dir")
    prog="$dir/${starter%.c}"
    name="exercises/$(basename "$dir")/$starter"
    mkdir -p "$STATUS_DIR"
    log="$STATUS_DIR/$nn.log"

    echo "== $nn. $title"
    # What the checker runs besides the student's program (the client, step
    # 2's server, ...), built first if it is not there yet.
    ex_build_needs "$dir" || {
        echo "could not build what the checker of exercise $nn needs (make's messages above); run 'make' and try again"
        exit 2
    }
    echo "building $name"
    rm -f "$prog"
    EX_BUILD_FLAGS=$(ex_build_flags "$dir")
    if ! build_program "$dir/$starter" "$prog" "$log"; then
        cat "$log"
        echo
        echo "$name does not compile (warnings count: the build uses $EX_WERROR)."
        echo "fix the build first: make exercise EX=$nn shows this again"
        save_status "$dir" "$starter" "does not build"
        exit 1
    fi
    cat "$log"          # warnings, when EX_WERROR= lets them through
    warned=
    ! grep -q 'warning:' "$log" || warned=1
    echo "checking it with $(grep -c '^[[:space:]]*@test' "$dir/check.bats" | tr -d ' ') checks from exercises/$(basename "$dir")/check.bats"
    clean_bats_env
    rc=0
    run_contained "$EX_RUN_DEADLINE" "$log" env EX_PROG="$prog" EX_SRC="$dir/$starter" "${BATS:-bats}" --tap "$dir/check.bats" || rc=$?
    tap_for_students "$log"
    tap_incomplete "$log"
    planned=$(tap_planned "$log")
    ok=$(tap_count ok "$log")
    failed=$(tap_count failed "$log")
    skipped=$(tap_count skipped "$log")
    echo
    if [ "$rc" -eq 124 ]; then
        echo "$nn: not yet: the checks did not finish within ${EX_RUN_DEADLINE}s and were stopped ($ok passed so far)."
        save_status "$dir" "$starter" "not yet"
        exit 1
    fi
    if [ -z "$planned" ]; then
        echo "$nn: the checker did not run (see what bats said above)."
        save_status "$dir" "$starter" "not yet"
        exit 1
    fi
    if [ "$rc" -eq 0 ] && [ "$failed" -eq 0 ] && [ "$skipped" -eq 0 ] && [ "$ok" -eq "$planned" ] && [ -n "$warned" ]; then
        # Built with EX_WERROR= and the compiler warned: make grade, which
        # builds with -Werror, would say "does not build". Not a pass yet.
        echo "$nn: not yet: all $planned checks passed, but the compiler warned (see above), and make grade counts a warning as a failed build. Fix the warnings: make exercise EX=$nn"
        save_status "$dir" "$starter" "passed with warnings"
        exit 1
    fi
    if [ "$rc" -eq 0 ] && [ "$failed" -eq 0 ] && [ "$skipped" -eq 0 ] && [ "$ok" -eq "$planned" ]; then
        echo "$nn: passed, all $planned checks. Compare with exercises/solutions/$(basename "$dir")/ if it is there."
        save_status "$dir" "$starter" passed
        exit 0
    fi
    if [ "$failed" -eq 0 ] && [ "$skipped" -gt 0 ]; then
        echo "$nn: not yet: $ok of $planned checks passed, $skipped could not be checked on this machine (the reasons are above)."
    else
        echo "$nn: not yet: $failed of $planned checks failed (read the FAIL lines above). Hints: the bottom of exercises/$(basename "$dir")/README.md"
    fi
    save_status "$dir" "$starter" "not yet"
    exit 1
}

# save_status DIR STARTER RESULT: remembers RESULT for the file as it is now.
save_status() {
    local nn
    nn=$(basename "$1" | cut -c1-2)
    printf '%s\n%s\n' "$(key "$1" "$2")" "$3" >"$STATUS_DIR/$nn.status"
}

case ${1:-} in
    list) list ;;
    check) check "${2:-}" ;;
    *) echo "usage: $0 list | check NN" >&2; exit 2 ;;
esac
