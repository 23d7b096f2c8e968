#!/usr/bin/env bash
# exercises/lib/prove.sh - proves an exercise's checker both ways:
#   - on the unchanged starter it FAILS, and only in its lesson tests (the
#     tests marked `# bats test_tags=lesson`), not in a build error, not in a
#     checker that runs out of time, not in a test that has nothing to do with
#     the lesson;
#   - on the reference solution (exercises/solutions/NN-name/) it PASSES,
#     every check, none skipped.
#
#   exercises/lib/prove.sh NN [OUTDIR]
#
# Builds both into a scratch directory with the warnings as errors, runs the
# checker on each (PROVE_DEADLINE seconds at most, 120 by default), prints two
# verdicts and exits 0 if both are good. With OUTDIR it also writes them to
# OUTDIR/NN.starter and OUTDIR/NN.solution ("ok: ..." or "bad: ..."), with
# bats' output beside them (.tap), for tests/exercises/exercises.bats.
# Written for bash 3.2 and later (macOS still ships 3.2).
set -u

source "$(dirname "$0")/common.bash"

PROVE_DEADLINE="${PROVE_DEADLINE:-120}"
BATS="${BATS:-bats}"

nn=$(ex_number "${1:-}") || { echo "usage: $0 NN [OUTDIR]" >&2; exit 2; }
out=${2:-}
scratch=$(mktemp -d "${TMPDIR:-/tmp}/prove.XXXXXX")
trap 'rm -rf "$scratch"' EXIT
[ -n "$out" ] || out=$scratch
mkdir -p "$out"

# verdict WHICH ok|bad TEXT: records and prints one verdict.
verdict() {
    printf '%s: %s\n' "$2" "$3" >"$out/$nn.$1"
    printf '%s %s on the %s: %s: %s\n' "$nn" "$(basename "${dir:-?}")" "$1" "$2" "$3"
}

# joined: lines as one, separated by "; ".
joined() { awk 'NR > 1 { printf "; " } { printf "%s", $0 }'; }

# check_program WHICH SRC: builds SRC and runs the checker on it; sets
# RC (124: ran out of time), TAP (bats' output), SECS; returns 1 and records
# a bad verdict if it did not build.
check_program() {
    local which=$1 src=$2 prog start
    mkdir -p "$scratch/$which"
    cp "$src" "$scratch/$which/"
    src="$scratch/$which/$(basename "$src")"
    prog="${src%.c}"
    TAP="$out/$nn.$which.tap"
    EX_BUILD_FLAGS=$(ex_build_flags "$dir")
    if ! build_program "$src" "$prog" "$scratch/$which/build.log"; then
        verdict "$which" bad "it does not build: $(head -n 3 "$scratch/$which/build.log" | joined)"
        return 1
    fi
    start=$SECONDS
    RC=0
    (clean_bats_env && run_contained "$PROVE_DEADLINE" "$TAP" env EX_PROG="$prog" EX_SRC="$src" "$BATS" --tap "$dir/check.bats") || RC=$?
    SECS=$((SECONDS - start))
}

dir=$(ex_find "$nn") || { dir=; verdict starter bad "there is no exercise $nn"; verdict solution bad "there is no exercise $nn"; exit 1; }
status=0

# ---- the starter: fails, in its lesson tests only
prove_starter() {
    local starter lessons failed planned not_lessons name
    starter=$(ex_starter "$dir") || { verdict starter bad "no server.c or client.c in $dir"; return 1; }
    [ -f "$dir/check.bats" ] || { verdict starter bad "no check.bats in $dir"; return 1; }
    lessons=$(ex_lesson_tests "$dir/check.bats")
    [ -n "$lessons" ] || { verdict starter bad "check.bats marks no test as its lesson (# bats test_tags=lesson above the @test line)"; return 1; }
    check_program starter "$dir/$starter" || return 1
    [ "$RC" -ne 124 ] || { verdict starter bad "the checker did not end within ${PROVE_DEADLINE}s"; return 1; }
    planned=$(tap_planned "$TAP")
    [ -n "$planned" ] || { verdict starter bad "bats did not run the checker: $(head -n 3 "$TAP" | joined)"; return 1; }
    failed=$(tap_names failed "$TAP")
    [ -n "$failed" ] || { verdict starter bad "the checker passes on the unchanged starter ($(tap_count ok "$TAP") of $planned checks)"; return 1; }
    not_lessons=$(printf '%s\n' "$failed" | while IFS= read -r name; do
        printf '%s\n' "$lessons" | grep -qxF -- "$name" || printf '%s\n' "$name"
    done)
    [ -z "$not_lessons" ] || { verdict starter bad "it fails in tests that are not lesson tests: $(printf '%s\n' "$not_lessons" | joined)"; return 1; }
    verdict starter ok "fails in its lesson test(s) only, in ${SECS}s: $(printf '%s\n' "$failed" | joined)"
}

# ---- the reference solution: passes every check
# prove_solution [second]: the same for the independent second solution in
# tests/second-solutions/NN-name/, written from the README alone by someone
# who had not seen the reference, where there is one (a checker must accept
# any correct solution, not only the one its author wrote).
prove_solution() {
    local starter sol planned ok bad which=${1:-solution}
    starter=$(ex_starter "$dir") || { verdict "$which" bad "no starter, so no name for the solution's file"; return 1; }
    if [ "$which" = second ]; then
        sol="$REPO/tests/second-solutions/$(basename "$dir")/$starter"
        [ -f "$sol" ] || return 0
    else
        sol="$EXERCISES_DIR/solutions/$(basename "$dir")/$starter"
    fi
    [ -f "$sol" ] || { verdict solution bad "no reference solution ($sol)"; return 1; }
    [ -f "$dir/check.bats" ] || { verdict "$which" bad "no check.bats in $dir"; return 1; }
    check_program "$which" "$sol" || return 1
    [ "$RC" -ne 124 ] || { verdict "$which" bad "the checker did not end within ${PROVE_DEADLINE}s"; return 1; }
    planned=$(tap_planned "$TAP")
    [ -n "$planned" ] || { verdict "$which" bad "bats did not run the checker: $(head -n 3 "$TAP" | joined)"; return 1; }
    ok=$(tap_count ok "$TAP")
    bad=$( { tap_names failed "$TAP" | sed 's/^/failed: /'; tap_names skipped "$TAP" | sed 's/^/skipped: /'; } | joined)
    if [ "$RC" -ne 0 ] || [ -n "$bad" ] || [ "$ok" -ne "$planned" ]; then
        verdict "$which" bad "$ok of $planned checks passed; $bad; $(tap_for_students "$TAP" | grep -v '^  ok  ' | head -n 6 | sed 's/^ *//' | joined)"
        return 1
    fi
    verdict "$which" ok "passes all $planned checks in ${SECS}s"
}

prove_starter || status=1
prove_solution || status=1
prove_solution second || status=1
exit "$status"
