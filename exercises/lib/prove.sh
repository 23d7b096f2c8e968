#!/usr/bin/env bash
# exercises/lib/prove.sh - proves the exercise checkers three ways:
#   - on the unchanged starter a checker FAILS, and only in its lesson tests
#     (the tests marked `# bats test_tags=lesson`), not in a build error,
#     not in a checker that runs out of time, not in a test that has nothing
#     to do with the lesson;
#   - on the reference solution (exercises/solutions/NN-name/) and on every
#     second solution (tests/second-solutions/NN-name/*.c) it PASSES, every
#     check, none skipped;
#   - on every wrong solution (tests/wrong-solutions/NN-name/*.c: plausible
#     answers with one bug each) it FAILS in the lesson test that the file's
#     header names on a line "Caught by: PART OF THE TEST'S NAME".
#
#   exercises/lib/prove.sh NN [OUTDIR]         all of exercise NN
#   exercises/lib/prove.sh all [OUTDIR]        all of every exercise
#   exercises/lib/prove.sh both [OUTDIR]       every exercise's starter, reference and
#                                              second solutions (make test-exercises)
#   exercises/lib/prove.sh wrong-all [OUTDIR]  the wrong solutions of every exercise
#   exercises/lib/prove.sh load [RUNS]         every reference and second solution,
#                                              RUNS times in a row (20), beside two CPU hogs
#
# Each proof builds its program into a scratch directory with the warnings
# as errors and runs the checker on it (PROVE_DEADLINE seconds at most, 120
# by default), PROVE_JOBS (4) proofs at a time, the longest first. A wrong
# solution runs only the test that must catch it. Prints one verdict per
# proof and exits 0 if all are good. With OUTDIR it also writes each to
# OUTDIR/NN.WHICH ("ok: ..." or "bad: ..."), bats' output beside it (.tap),
# for tests/exercises/exercises.bats; WHICH is starter, solution, second (or
# second-NAME for a file not named server.c or client.c), or wrong-NAME.
#
# load (make prove-load RUNS=20): each reference and second solution's
# checker RUNS times in a row while two processes spin on the CPUs, to show
# that load cannot make a correct program fail. Prints "NN WHICH: K of RUNS
# passed" with uptime before and after, and the first failure of each.
# Written for bash 3.2 and later (macOS still ships 3.2).
set -u

source "$(dirname "$0")/common.bash"

PROVE_DEADLINE="${PROVE_DEADLINE:-120}"
PROVE_JOBS="${PROVE_JOBS:-4}"
BATS="${BATS:-bats}"
WRONG_DIR="${WRONG_DIR:-$REPO/tests/wrong-solutions}"
SECOND_DIR="${SECOND_DIR:-$REPO/tests/second-solutions}"

scratch=$(mktemp -d "${TMPDIR:-/tmp}/prove.XXXXXX")
HOGS=
cleanup() {
    local h
    for h in $HOGS; do kill "$h" 2>/dev/null; done
    rm -rf "$scratch"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# joined: lines as one, separated by "; ".
joined() { awk 'NR > 1 { printf "; " } { printf "%s", $0 }'; }

# ere_escape TEXT: TEXT as a regular expression that matches it literally.
ere_escape() { printf '%s' "$1" | sed 's/[][\\.^$|?*+(){}]/\\&/g'; }

# ---------------------------------------------------------------- what there is to prove

# units NN: the proofs of exercise NN, one per line: "NN WHICH FILE".
units() {
    local nn=$1 dir starter f name
    dir=$(ex_find "$nn") || { echo "$nn starter -"; return; }
    echo "$nn starter $dir"
    starter=$(ex_starter "$dir") || starter=server.c
    echo "$nn solution $EXERCISES_DIR/solutions/$(basename "$dir")/$starter"
    for f in "$SECOND_DIR/$(basename "$dir")"/*.c; do
        [ -f "$f" ] || continue
        name=$(basename "$f" .c)
        case $name.c in server.c | client.c) echo "$nn second $f" ;; *) echo "$nn second-$name $f" ;; esac
    done
    for f in "$WRONG_DIR/$(basename "$dir")"/*.c; do
        [ -f "$f" ] && echo "$nn wrong-$(basename "$f" .c) $f"
    done
    return 0
}

# all_units [wrong|both]: the proofs of every exercise (only the wrong
# solutions with "wrong", all but them with "both"), the longest first: those of an exercise whose checker
# waits for a default time limit (it has a setup_file), then the others.
all_units() {
    local d nn
    for d in $(ex_dirs); do
        nn=$(ex_number "$(basename "$d")") || continue
        if grep -q '^setup_file()' "$d/check.bats" 2>/dev/null; then
            units "$nn" | sed 's/^/0 /'
        else
            units "$nn" | sed 's/^/1 /'
        fi
    done | { case ${1:-} in wrong) awk '$3 ~ /^wrong-/' ;; both) awk '$3 !~ /^wrong-/' ;; *) cat ;; esac; } |
        sort -s -k1,1 | cut -d' ' -f2-
}

# ---------------------------------------------------------------- one proof

# verdict NN WHICH ok|bad TEXT: records and prints one verdict.
verdict() {
    [ -z "$OUT" ] || printf '%s: %s\n' "$3" "$4" >"$OUT/$1.$2"
    printf '%s %s on the %s: %s: %s\n' "$1" "$(basename "$(ex_find "$1" 2>/dev/null || echo "?")")" "$2" "$3" "$4"
}

# build NN WHICH SRC: copies SRC to a scratch directory of its own and builds
# it there; sets PROG and SRC_COPY. Fails with a bad verdict if it does not build.
build() {
    local nn=$1 which=$2 src=$3 dir work
    dir=$(ex_find "$nn")
    work="$scratch/$nn.$which"
    mkdir -p "$work"
    cp "$src" "$work/"
    SRC_COPY="$work/$(basename "$src")"
    PROG="${SRC_COPY%.c}"
    EX_BUILD_FLAGS=$(ex_build_flags "$dir")
    if ! build_program "$SRC_COPY" "$PROG" "$work/build.log"; then
        verdict "$nn" "$which" bad "it does not build: $(head -n 3 "$work/build.log" | joined)"
        return 1
    fi
}

# check NN TAP [BATS-ARGS...]: runs the checker of NN on $PROG; sets RC
# (124: ran out of time) and SECS, bats' output in TAP.
check() {
    local nn=$1 tap=$2 dir start
    shift 2
    dir=$(ex_find "$nn")
    start=$SECONDS
    RC=0
    (clean_bats_env && run_contained "$PROVE_DEADLINE" "$tap" env EX_PROG="$PROG" EX_SRC="$SRC_COPY" \
        "$BATS" --tap "$@" "$dir/check.bats") || RC=$?
    SECS=$((SECONDS - start))
}

# prove NN WHICH FILE: one proof, one verdict.
prove() {
    local nn=$1 which=$2 file=$3 dir tap planned failed lessons not_lessons name ok bad caught test
    dir=$(ex_find "$nn") || { verdict "$nn" "$which" bad "there is no exercise $nn"; return 1; }
    tap="$scratch/$nn.$which.tap"
    [ -z "$OUT" ] || tap="$OUT/$nn.$which.tap"
    [ -f "$dir/check.bats" ] || { verdict "$nn" "$which" bad "no check.bats in $dir"; return 1; }
    lessons=$(ex_lesson_tests "$dir/check.bats")
    case $which in
    starter)
        # ---- the starter: fails, in its lesson tests only
        local starter
        starter=$(ex_starter "$dir") || { verdict "$nn" starter bad "no server.c or client.c in $dir"; return 1; }
        [ -n "$lessons" ] || { verdict "$nn" starter bad "check.bats marks no test as its lesson (# bats test_tags=lesson above the @test line)"; return 1; }
        build "$nn" starter "$dir/$starter" || return 1
        check "$nn" "$tap"
        [ "$RC" -ne 124 ] || { verdict "$nn" starter bad "the checker did not end within ${PROVE_DEADLINE}s"; return 1; }
        planned=$(tap_planned "$tap")
        [ -n "$planned" ] || { verdict "$nn" starter bad "bats did not run the checker: $(head -n 3 "$tap" | joined)"; return 1; }
        failed=$(tap_names failed "$tap")
        [ -n "$failed" ] || { verdict "$nn" starter bad "the checker passes on the unchanged starter ($(tap_count ok "$tap") of $planned checks)"; return 1; }
        not_lessons=$(printf '%s\n' "$failed" | while IFS= read -r name; do
            printf '%s\n' "$lessons" | grep -qxF -- "$name" || printf '%s\n' "$name"
        done)
        [ -z "$not_lessons" ] || { verdict "$nn" starter bad "it fails in tests that are not lesson tests: $(printf '%s\n' "$not_lessons" | joined)"; return 1; }
        verdict "$nn" starter ok "fails in its lesson test(s) only, in ${SECS}s: $(printf '%s\n' "$failed" | joined)"
        ;;
    solution | second*)
        # ---- a correct solution: passes every check. The second solutions
        # were written from the README alone, by someone who had not seen the
        # reference: a checker must accept any correct solution.
        [ -f "$file" ] || { verdict "$nn" "$which" bad "no such solution ($file)"; return 1; }
        build "$nn" "$which" "$file" || return 1
        check "$nn" "$tap"
        [ "$RC" -ne 124 ] || { verdict "$nn" "$which" bad "the checker did not end within ${PROVE_DEADLINE}s"; return 1; }
        planned=$(tap_planned "$tap")
        [ -n "$planned" ] || { verdict "$nn" "$which" bad "bats did not run the checker: $(head -n 3 "$tap" | joined)"; return 1; }
        ok=$(tap_count ok "$tap")
        bad=$( { tap_names failed "$tap" | sed 's/^/failed: /'; tap_names skipped "$tap" | sed 's/^/skipped: /'; } | joined)
        if [ "$RC" -ne 0 ] || [ -n "$bad" ] || [ "$ok" -ne "$planned" ]; then
            verdict "$nn" "$which" bad "$ok of $planned checks passed; $bad; $(tap_for_students "$tap" | grep -v '^  ok  ' | head -n 6 | sed 's/^ *//' | joined)"
            return 1
        fi
        verdict "$nn" "$which" ok "passes all $planned checks in ${SECS}s"
        ;;
    wrong-*)
        # ---- a wrong solution: fails in the lesson test its header names.
        caught=$(sed -n 's/^[[:space:]*/#]*Caught by:[[:space:]]*//p' "$file" | head -n 1 | sed 's/[[:space:]]*$//')
        [ -n "$caught" ] || { verdict "$nn" "$which" bad "its header has no line 'Caught by: PART OF A LESSON TEST'S NAME'"; return 1; }
        test=$(printf '%s\n' "$lessons" | grep -F -- "$caught" || true)
        case $(printf '%s' "$test" | grep -c .) in
            1) ;;
            0) verdict "$nn" "$which" bad "no lesson test of $(basename "$dir")/check.bats has '$caught' in its name"; return 1 ;;
            *) verdict "$nn" "$which" bad "'$caught' names several lesson tests: $(printf '%s\n' "$test" | joined)"; return 1 ;;
        esac
        build "$nn" "$which" "$file" || return 1
        check "$nn" "$tap" -f "^$(ere_escape "$test")\$"
        [ "$RC" -ne 124 ] || { verdict "$nn" "$which" bad "the checker did not end within ${PROVE_DEADLINE}s"; return 1; }
        planned=$(tap_planned "$tap")
        [ "$planned" = 1 ] || { verdict "$nn" "$which" bad "expected bats to run the one test '$test', it planned ${planned:-none}: $(head -n 3 "$tap" | joined)"; return 1; }
        if [ -z "$(tap_names failed "$tap")" ]; then
            verdict "$nn" "$which" bad "'$test' $( [ -n "$(tap_names skipped "$tap")" ] && echo 'was skipped' || echo 'passes'): the bug goes unseen"
            return 1
        fi
        verdict "$nn" "$which" ok "caught in ${SECS}s by '$test': $(tap_for_students "$tap" | sed -n 2p | sed 's/^ *//' | cut -c1-200)"
        ;;
    *)
        verdict "$nn" "$which" bad "unknown proof '$which'"
        return 1
        ;;
    esac
}

# prove_units: the proofs read from stdin ("NN WHICH FILE"), PROVE_JOBS at a
# time (bash 3.2 has no wait -n); fails if any verdict is bad.
prove_units() {
    local nn which file running status=0 list
    list="$scratch/units"
    cat >"$list"
    while read -r nn which file; do
        while running=$(jobs -pr | wc -l) && [ "$running" -ge "$PROVE_JOBS" ]; do
            sleep 0.1
        done
        prove "$nn" "$which" "$file" >"$scratch/$nn.$which.verdict" 2>&1 </dev/null &
    done <"$list"
    wait
    while read -r nn which file; do
        cat "$scratch/$nn.$which.verdict"
        grep -q "on the $which: ok: " "$scratch/$nn.$which.verdict" || status=1
    done <"$list"
    return "$status"
}

# ---------------------------------------------------------------- under load

# load_proof RUNS: every reference and second solution, RUNS times, two hogs beside.
load_proof() {
    local runs=$1 nn which file i passed first h status=0 list
    list="$scratch/units"
    all_units | awk '$2 == "solution" || $2 ~ /^second/' >"$list"
    echo "uptime before: $(uptime)"
    for h in 1 2; do
        (trap - INT TERM EXIT; while :; do :; done) &
        HOGS="$HOGS $!"
    done
    echo "two CPU hogs running (PIDs$HOGS); $runs runs of each checker, $PROVE_JOBS checkers at a time"
    # One job per solution: build once, then RUNS runs in a row.
    load_one() {
        local nn=$1 which=$2 file=$3 i passed=0 first= tap
        build "$nn" "$which" "$file" >/dev/null || { echo "$nn $which: does not build"; return 1; }
        for ((i = 1; i <= runs; i++)); do
            tap="$scratch/$nn.$which.$i.tap"
            check "$nn" "$tap"
            if [ "$RC" -eq 0 ] && [ "$(tap_count ok "$tap")" = "$(tap_planned "$tap")" ] && [ -z "$(tap_names skipped "$tap")" ]; then
                passed=$((passed + 1))
            elif [ -z "$first" ]; then
                first="run $i: $(tap_for_students "$tap" | grep -v '^  ok  ' | head -n 4 | sed 's/^ *//' | joined)"
                [ "$RC" -ne 124 ] || first="run $i: the checker did not end within ${PROVE_DEADLINE}s"
            fi
        done
        echo "$nn $(basename "$(ex_find "$nn")") $which: $passed of $runs passed${first:+; first failure: $first}"
        [ "$passed" -eq "$runs" ]
    }
    while read -r nn which file; do
        while running=$(jobs -pr | wc -l) && [ "$running" -ge $((PROVE_JOBS + 2)) ]; do
            sleep 0.5
        done
        load_one "$nn" "$which" "$file" >"$scratch/$nn.$which.load" 2>&1 </dev/null &
    done <"$list"
    # The hogs are jobs too: wait for the others only.
    while [ "$(jobs -pr | wc -l)" -gt 2 ]; do sleep 0.5; done
    echo "uptime after:  $(uptime)"
    while read -r nn which file; do
        cat "$scratch/$nn.$which.load"
        grep -q ": $runs of $runs passed" "$scratch/$nn.$which.load" || status=1
    done <"$list"
    return "$status"
}

# ---------------------------------------------------------------- main
OUT=
case ${1:-} in
    all | both | wrong-all)
        OUT=${2:-}
        [ -z "$OUT" ] || mkdir -p "$OUT"
        case $1 in all) all_units ;; both) all_units both ;; *) all_units wrong ;; esac | prove_units
        exit $?
        ;;
    load)
        runs=${2:-20}
        case $runs in '' | *[!0-9]* | 0) echo "usage: $0 load [RUNS]" >&2; exit 2 ;; esac
        load_proof "$runs"
        exit $?
        ;;
esac
nn=$(ex_number "${1:-}") || { echo "usage: $0 NN|all|both|wrong-all [OUTDIR], or $0 load [RUNS]" >&2; exit 2; }
OUT=${2:-}
[ -z "$OUT" ] || mkdir -p "$OUT"
units "$nn" | prove_units
