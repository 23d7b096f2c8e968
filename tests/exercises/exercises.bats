#!/usr/bin/env bats
# The classroom exercises (exercises/): every checker proven three ways, and
# make exercise / make exercises as a student meets them.
#
# The proof (exercises/lib/prove.sh NN, which you can run by hand): on its
# unchanged starter a checker FAILS, and every test that fails is one of its
# lesson tests (marked `# bats test_tags=lesson`), so it fails for the right
# reason: not a build error, not a run out of time, not a test that has
# nothing to do with the lesson. On the reference solution and on every
# second solution it PASSES, every check, none skipped. The proofs run before
# the tests (prove.sh both), PROVE_JOBS (5) at a time; each test reads its
# verdict.
#
# The third way, every wrong solution (tests/wrong-solutions/NN-name/*.c, at
# least 3 per exercise) FAILS in the lesson test its "Caught by:" line names,
# is make mutants' (prove.sh wrong-all), which CI runs: with it this file
# would take several minutes. This file checks that the proof of the wrong
# solutions can fail, and that every exercise has at least three.

# Not in make test (it takes about a minute and a half on a 2-core machine): make test-exercises runs this
# folder. The repository's helper.bash assumes a file directly in tests/, so
# this file takes only the harness, like the checkers do.
ROOT="$(cd "$BATS_TEST_DIRNAME/../.." && pwd)"
source "$ROOT/tests/harness.bash"
setup() { harness_setup; }
teardown() { harness_teardown; }

EXERCISES="01 02 03 04 05 06 07 08 09 10 11 12"

setup_file() {
    local proofs="$BATS_FILE_TMPDIR/proofs"
    mkdir -p "$proofs"
    PROVE_JOBS=${PROVE_JOBS:-5} PROVE_DEADLINE=${PROVE_DEADLINE:-$(scaled 60)} \
        "$ROOT/exercises/lib/prove.sh" both "$proofs" >"$proofs/all.out" 2>&1 </dev/null 3>&- || true
}

# proof NN WHICH: the verdict of prove.sh (WHICH: starter, solution, second,
# second-NAME, wrong-NAME); fails with its reason.
proof() {
    local file="$BATS_FILE_TMPDIR/proofs/$1.$2"
    if ! ls -d "$ROOT/exercises/$1"-*/ >/dev/null 2>&1; then
        fail_because "expected a folder exercises/$1-*, found none"
        return 1
    fi
    [ -f "$file" ] || {
        fail_because "expected a verdict from exercises/lib/prove.sh for $1 on the $2, got: $(excerpt_file "$BATS_FILE_TMPDIR/proofs/all.out")"
        return 1
    }
    case $(cat "$file") in
        ok:*) return 0 ;;
    esac
    fail_because "exercise $1 on the $2: $(cut -c1-600 "$file")"
}

@test "checker 01 fails on the unchanged starter, in its lesson's test" { proof 01 starter; }
@test "checker 01 passes on the reference solution" { proof 01 solution; }
@test "checker 02 fails on the unchanged starter, in its lesson's test" { proof 02 starter; }
@test "checker 02 passes on the reference solution" { proof 02 solution; }
@test "checker 03 fails on the unchanged starter, in its lesson's test" { proof 03 starter; }
@test "checker 03 passes on the reference solution" { proof 03 solution; }
@test "checker 04 fails on the unchanged starter, in its lesson's test" { proof 04 starter; }
@test "checker 04 passes on the reference solution" { proof 04 solution; }
@test "checker 05 fails on the unchanged starter, in its lesson's test" { proof 05 starter; }
@test "checker 05 passes on the reference solution" { proof 05 solution; }
@test "checker 06 fails on the unchanged starter, in its lesson's test" { proof 06 starter; }
@test "checker 06 passes on the reference solution" { proof 06 solution; }
@test "checker 07 fails on the unchanged starter, in its lesson's test" { proof 07 starter; }
@test "checker 07 passes on the reference solution" { proof 07 solution; }
@test "checker 08 fails on the unchanged starter, in its lesson's test" { proof 08 starter; }
@test "checker 08 passes on the reference solution" { proof 08 solution; }
@test "checker 09 fails on the unchanged starter, in its lesson's test" { proof 09 starter; }
@test "checker 09 passes on the reference solution" { proof 09 solution; }
@test "checker 10 fails on the unchanged starter, in its lesson's test" { proof 10 starter; }
@test "checker 10 passes on the reference solution" { proof 10 solution; }
@test "checker 11 fails on the unchanged starter, in its lesson's test" { proof 11 starter; }
@test "checker 11 passes on the reference solution" { proof 11 solution; }
@test "checker 12 fails on the unchanged starter, in its lesson's test" { proof 12 starter; }
@test "checker 12 passes on the reference solution" { proof 12 solution; }

# A checker must accept any correct solution, not only its author's: these were
# written from the README alone by someone who had not seen the reference.
@test "checker 03 passes on an independent second solution (poll() before every read)" { proof 03 second; }
@test "checker 05 passes on an independent second solution (saved statuses and pselect(), no self-pipe)" { proof 05 second; }
@test "checker 06 passes on an independent second solution (SIGCHLD blocked but in sigsuspend() and accept())" { proof 06 second; }
@test "checker 07 passes on an independent second solution (a self-pipe for SIGTERM and SIGCHLD)" { proof 07 second; }
@test "checker 08 passes on a second solution that names the address structures through typedefs" { proof 08 second; }
@test "checker 08 passes on a second solution that keeps the address in a union outside the functions" { proof 08 second-union-global; }
@test "checker 08 passes on a second solution with a macro for the address type and getsockname() in a helper" { proof 08 second-macro-and-helper; }

# The third way (make mutants proves it): at least 3 plausible wrong
# solutions per exercise, each naming the lesson test that must catch it.
@test "every exercise has at least 3 wrong solutions, each naming the one lesson test that must catch it" {
    local dir nn wdir f n k caught lessons bad=
    for dir in "$ROOT"/exercises/[0-9][0-9]-*/; do
        nn=$(basename "$dir")
        wdir="$ROOT/tests/wrong-solutions/$nn"
        lessons=$(source "$ROOT/exercises/lib/common.bash" && ex_lesson_tests "$dir/check.bats")
        n=0
        for f in "$wdir"/*.c; do
            [ -f "$f" ] || continue
            n=$((n + 1))
            caught=$(sed -n 's/^[[:space:]*/#]*Caught by:[[:space:]]*//p' "$f" | head -n 1 | sed 's/[[:space:]]*$//')
            if [ -z "$caught" ]; then
                bad="$bad; $nn/$(basename "$f"): no 'Caught by:' line"
            else
                k=$(printf '%s\n' "$lessons" | grep -cF -- "$caught" || true)
                [ "$k" -eq 1 ] || bad="$bad; $nn/$(basename "$f"): 'Caught by: $caught' names $k lesson tests, not one"
            fi
        done
        [ "$n" -ge 3 ] || bad="$bad; $nn: $n wrong solution(s) in tests/wrong-solutions/$nn/, not 3"
    done
    [ -z "$bad" ] || fail_because "expected every exercise to have at least 3 wrong solutions, each naming one lesson test, got: ${bad#; }"
}

# The proof of the wrong solutions can fail: a "wrong" solution that is in
# fact correct, and one whose header names no test, are both reported.
@test "prove.sh wrong-all fails, naming the file, on a wrong solution its checker passes or whose header names no lesson test" {
    local wrong="$T/wrong/01-who-is-calling"
    mkdir -p "$wrong"
    { printf '/*\n * Not wrong at all.\n * Caught by: names a client as soon as it accepts it\n */\n'
      cat "$ROOT/exercises/solutions/01-who-is-calling/server.c"; } >"$wrong/not-wrong.c"
    cp "$ROOT/exercises/01-who-is-calling/server.c" "$wrong/unnamed.c"
    run with_deadline env WRONG_DIR="$T/wrong" "$ROOT/exercises/lib/prove.sh" wrong-all
    [ "$status" -ne 0 ] || fail_because "expected prove.sh wrong-all to fail, got status 0: $(excerpt "$output")" || return 1
    [[ $output == *"wrong-not-wrong: bad: 'names a client as soon as it accepts it"*"passes: the bug goes unseen"* ]] ||
        fail_because "expected the verdict that not-wrong.c passes its test, got: $(excerpt "$output")"
    [[ $output == *"wrong-unnamed: bad: its header has no line 'Caught by:"* ]] ||
        fail_because "expected the verdict that unnamed.c names no test, got: $(excerpt "$output")"
}

@test "every exercise folder is proven by this file, and has a README, a starter and a checker" {
    local dir nn missing=
    for dir in "$ROOT"/exercises/[0-9][0-9]-*/; do
        nn=$(basename "$dir" | cut -c1-2)
        [[ " $EXERCISES " == *" $nn "* ]] || missing="$missing $nn (not in this file's list)"
        [ -f "$dir/README.md" ] || missing="$missing $nn (no README.md)"
        [ -f "$dir/check.bats" ] || missing="$missing $nn (no check.bats)"
        [ -f "$dir/server.c" ] || [ -f "$dir/client.c" ] || missing="$missing $nn (no server.c or client.c)"
    done
    [ -z "$missing" ] || fail_because "expected every exercise to be complete and listed here, got:$missing"
}

# ---------------------------------------------------------------- make exercise, as a student meets it
# On a fake exercise in $T (serve two clients in a row), with its status kept in $T.

# fake_exercise: exercises/01-echo in $T, its starter step 1 (which serves
# one client and exits, so the checker fails), and a fresh status directory.
fake_exercise() {
    local ex="$T/exercises/01-echo"
    mkdir -p "$ex" "$T/exercises/02-empty"
    printf '# 01. Echo twice\n\nAfter: Step 2 ([tutorial.md](../../tutorial.md))\n' >"$ex/README.md"
    printf '# 02. Nothing here yet\n' >"$T/exercises/02-empty/README.md"
    cp "$ROOT/step1-single/server.c" "$ex/server.c"
    # (bats reads a line starting with @test as a test of this file, even in
    # a here-document: hence "TEST" and sed.)
    sed 's/^TEST /@test /' >"$ex/check.bats" <<EOF
#!/usr/bin/env bats
load "$ROOT/exercises/lib/checker"

# bats test_tags=lesson
TEST "serves two clients in a row" {
    start_ex_server
    served one
    served two
}

TEST "serves one client" {
    start_ex_server
    served one
}
EOF
    export EXERCISES_DIR="$T/exercises" EX_STATUS_DIR="$T/status"
}

exercise() { run with_deadline make -s -C "$ROOT" exercise "$@"; }
exercises_list() { run with_deadline make -s -C "$ROOT" exercises; }

@test "make exercise without EX, with an unknown number, or on a folder without a starter: a clear message, the list, non-zero" {
    fake_exercise
    exercise
    [ "$status" -ne 0 ] || fail_because "expected a non-zero exit without EX, got 0"
    [[ $output == *"Which exercise?"* ]] || fail_because "expected 'Which exercise?' without EX, got: $(excerpt "$output")"
    [[ $output == *"01  Echo twice"* ]] || fail_because "expected the list without EX, got: $(excerpt "$output")"
    exercise EX=42
    [ "$status" -ne 0 ] || fail_because "expected a non-zero exit for EX=42, got 0"
    [[ $output == *"There is no exercise 42."* ]] || fail_because "expected 'There is no exercise 42.', got: $(excerpt "$output")"
    exercise EX=x1
    [ "$status" -ne 0 ] || fail_because "expected a non-zero exit for EX=x1, got 0"
    [[ $output == *"'x1' is not an exercise number"* ]] || fail_because "expected \"'x1' is not an exercise number\", got: $(excerpt "$output")"
    exercise EX=2
    [ "$status" -ne 0 ] || fail_because "expected a non-zero exit for a folder without a starter, got 0"
    [[ $output == *"has no server.c or client.c"* ]] || fail_because "expected 'has no server.c or client.c', got: $(excerpt "$output")"
}

@test "make exercise on a file that does not compile: the compiler's message and the pointer, no checker output" {
    fake_exercise
    printf 'int main(void) { return x; }\n' >"$T/exercises/01-echo/server.c"
    exercise EX=01
    [ "$status" -ne 0 ] || fail_because "expected a non-zero exit, got 0"
    [[ $output == *"error: "*"x"*"undeclared"* ]] || fail_because "expected the compiler's message, got: $(excerpt "$output")"
    [[ $output == *"fix the build first: make exercise EX=01 shows this again"* ]] ||
        fail_because "expected the pointer 'fix the build first: ...', got: $(excerpt "$output")"
    [[ $output != *"not ok"* ]] && [[ $output != *"FAIL"* ]] ||
        fail_because "expected no checker output, got: $(excerpt "$output")"
}

@test "make exercise on a failing file: the failing check's name and its expected/got line, no bats trace, non-zero" {
    fake_exercise
    exercise EX=1
    [ "$status" -ne 0 ] || fail_because "expected a non-zero exit, got 0"
    [[ $output == *"FAIL  serves two clients in a row"* ]] || fail_because "expected 'FAIL  serves two clients in a row', got: $(excerpt "$output")"
    [[ $output == *"ok    serves one client"* ]] || fail_because "expected 'ok    serves one client', got: $(excerpt "$output")"
    [[ $output == *"expected the client sending 'two' to print 'I got your message'"* ]] ||
        fail_because "expected the checker's expected/got line, got: $(excerpt "$output")"
    [[ $output != *"in test file"* ]] && [[ $output != *"from function"* ]] ||
        fail_because "expected no bats trace, got: $(excerpt "$(printf '%s\n' "$output" | grep -e 'in test file' -e 'from function')")"
    [[ $output == *"01: not yet: 1 of 2 checks failed"* ]] || fail_because "expected the summary '01: not yet: 1 of 2 checks failed', got: $(excerpt "$output")"
}

@test "make exercises: not yet, then passed once the check passes, then 'changed since last check' after an edit" {
    fake_exercise
    exercises_list
    [ "$status" -eq 0 ] || fail_because "expected make exercises to exit 0, got $status: $(excerpt "$output")"
    [[ $output == *"01  Echo twice"*"Step 2"*"not yet"* ]] || fail_because "expected '01  Echo twice ... Step 2 ... not yet', got: $(excerpt "$output")"
    cp "$ROOT/step2-loop/server.c" "$T/exercises/01-echo/server.c"
    exercise EX=01
    [ "$status" -eq 0 ] || fail_because "expected make exercise to pass on step 2, got $status: $(excerpt "$output")"
    [[ $output == *"01: passed, all 2 checks"* ]] || fail_because "expected '01: passed, all 2 checks', got: $(excerpt "$output")"
    exercises_list
    [[ $output == *"Step 2"*"passed"* ]] || fail_because "expected the list to say passed, got: $(excerpt "$output")"
    echo "/* an edit */" >>"$T/exercises/01-echo/server.c"
    exercises_list
    [[ $output == *"not yet (changed since last check)"* ]] ||
        fail_because "expected 'not yet (changed since last check)' after an edit, got: $(excerpt "$output")"
}

@test "make exercise EX_WERROR= on a file that warns and passes: not a pass, since make grade would not build it; the list agrees" {
    fake_exercise
    cp "$ROOT/step2-loop/server.c" "$T/exercises/01-echo/server.c"
    printf 'static int unused_helper(void) { int unused; return 0; }\n' >>"$T/exercises/01-echo/server.c"
    exercise EX=01 EX_WERROR=
    [ "$status" -ne 0 ] || fail_because "expected a non-zero exit for a pass with warnings, got 0: $(excerpt "$output")"
    [[ $output == *"warning:"* ]] || fail_because "expected the compiler's warning to be shown, got: $(excerpt "$output")"
    [[ $output == *"01: not yet: all 2 checks passed, but the compiler warned"*"make grade counts a warning as a failed build"* ]] ||
        fail_because "expected '01: not yet: all 2 checks passed, but the compiler warned ... make grade counts a warning as a failed build', got: $(excerpt "$output")"
    exercises_list
    [[ $output == *"not yet: passed with warnings (make grade: does not build)"* ]] ||
        fail_because "expected the list to say 'not yet: passed with warnings (make grade: does not build)', got: $(excerpt "$output")"
    [[ $output == *"0 of 2 passed"* ]] || fail_because "expected the list to count it as not passed ('0 of 2 passed'), got: $(excerpt "$output")"
}
