#!/usr/bin/env bash
# tests/check.sh - the test suite again, under tools that find what tests miss.
#
#  1. bench/*.c build without a warning under gcc and clang (CI builds the rest);
#  2. a self-test: a deliberate heap overflow and a deliberate signed overflow in
#     a forked child, and a leak, must each leave a sanitizer report, or the
#     checks below could not be trusted to see one;
#  3. the bats files of the steps and the client (tests/step*.bats and
#     tests/client.bats), run against builds with AddressSanitizer,
#     UndefinedBehaviorSanitizer and LeakSanitizer, in build/asan/; then each
#     exercise's checker against the same build of its reference solution;
#  4. those builds of step2, step3 and step4 under load from bench/loadgen,
#     itself built with ThreadSanitizer (it is the one program with threads);
#  5. the client and step1 through real conversations under valgrind memcheck;
#  6. cppcheck and clang-tidy over every C source, the reference solutions too.
# Any sanitizer finding fails the run. The sanitizers write their reports to
# files in build/sanitizer-reports/, not to stderr, so that a report from a
# forked child, or from a server whose output a test threw away, is still
# seen: after each stage, any report file there is printed and fails it.
#
# Run:        make check      (as CI does; under a minute on 2 cores)
# Needs:      clang or gcc with sanitizer runtimes, bats, valgrind, cppcheck,
#             clang-tidy (Debian: apt-get install bats valgrind cppcheck clang-tidy)
# Read more:  bench/README.md
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
BATS=${BATS:-bats}

began=$SECONDS
failed=()
WARN=(-std=c99 -pedantic -Wall -Wextra -Werror)
SOURCES=(step1-single/server.c step2-loop/server.c step3-fork/server.c step4-reap/server.c
         client/client.c tests/peer.c tests/stuck.c tests/sigdefault.c tests/probe.c bench/loadgen.c bench/minfork.c bench/nullserver.c)
# The exercises' reference solutions are checked like the steps. (The starters
# are not: exercise 04's starter is the misplaced brace, unreachable code on
# purpose, and the others are copies of the steps.)
SOLUTIONS=()
for src in exercises/solutions/*/*.c; do
    [ -e "$src" ] && SOLUTIONS+=("$src")
done
REPORTS=$ROOT/build/sanitizer-reports
WORK=$(mktemp -d "${TMPDIR:-/tmp}/check.XXXXXX")
PIDS=()

cleanup() {
    local pid
    for pid in "${PIDS[@]}"; do kill -TERM -- "-$pid" 2>/dev/null || true; done
    for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# start_server NAME CMD...: starts CMD (a server on port 0) in a process group
# of its own, output in $WORK/NAME.out and .err, and waits up to 20 s for the
# port it announces. Sets pid, and port (empty if it never announced one).
start_server() {
    local name=$1 i
    shift
    set -m
    "$@" >"$WORK/$name.out" 2>"$WORK/$name.err" </dev/null &
    pid=$!
    set +m
    PIDS+=("$pid")
    for ((i = 0; i < 1000; i++)); do
        grep -qs '^Listening on port' "$WORK/$name.out" && break
        sleep 0.02
    done
    port=$(sed -n 's/^Listening on port \([0-9][0-9]*\)$/\1/p' "$WORK/$name.out")
}

stage() { echo "== check: $*"; stage_began=$SECONDS; }
passed() { echo "   ok ($((SECONDS - stage_began)) s)"; }
# failing WHAT: notes a failure and goes on with the next stage, so one run
# shows every problem; the exit status says whether there was any.
failing() { echo "   FAILED: $*"; failed+=("$*"); }

for tool in "$BATS" valgrind cppcheck clang-tidy; do
    command -v "$tool" >/dev/null ||
        { echo "make check needs $tool (Debian: apt-get install bats valgrind cppcheck clang-tidy)" >&2; exit 1; }
done

# ---------------------------------------------------------------- sanitizer setup
# halt_on_error with -fno-sanitize-recover=all: the first finding ends the
# program, which a test then notices. log_path: each process writes its report
# to REPORTS/report.PID, which no test can throw away. The directory is open
# to everybody because some tests run the servers as the user nobody.
rm -rf "$REPORTS"
mkdir -p "$REPORTS"
chmod 1777 "$REPORTS"
export ASAN_OPTIONS="halt_on_error=1:detect_leaks=1:detect_stack_use_after_return=1:strict_string_checks=1:check_initialization_order=1:log_path=$REPORTS/report"
export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1:log_path=$REPORTS/report"
export TSAN_OPTIONS="halt_on_error=1:second_deadlock_stack=1:log_path=$REPORTS/report"
# shellcheck disable=SC2054 # the commas are part of one option
SANITIZE=(-O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=all)

# Clang, and gcc where clang's sanitizer runtimes are missing.
SAN_CC=
for cc in ${SAN_CC_CHOICES:-clang gcc}; do
    if command -v "$cc" >/dev/null &&
       echo 'int main(void) { return 0; }' | "$cc" "${SANITIZE[@]}" -x c -o "$WORK/probe" - 2>/dev/null &&
       "$WORK/probe"; then
        SAN_CC=$cc
        break
    fi
done
[ -n "$SAN_CC" ] || { echo "no compiler here can build with -fsanitize=address,undefined" >&2; exit 1; }

# no_reports: true when no sanitizer wrote a report; otherwise prints them,
# moves them aside (so the next stage starts clean) and returns false.
no_reports() {
    local reports=("$REPORTS"/report.*)
    [ -e "${reports[0]}" ] || return 0
    echo "   ${#reports[@]} sanitizer reports; their summaries:"
    grep -h '^SUMMARY' "${reports[@]}" | sort | uniq -c | sort -rn | head -n 20 | sed 's/^/   | /'
    echo "   the first in full:"
    sed 's/^/   | /' "${reports[0]}" | head -n 60
    mkdir -p "$ROOT/build/sanitizer-failures"
    mv "${reports[@]}" "$ROOT/build/sanitizer-failures/"
    echo "   (kept in build/sanitizer-failures/)"
    return 1
}

# ---------------------------------------------------------------- 1. bench builds
stage "bench/*.c build without warnings under gcc and clang"
ok=1
for cc in gcc clang; do
    command -v "$cc" >/dev/null || { echo "   ($cc is not installed: skipped)"; continue; }
    mkdir -p "build/werror/$cc/bench"
    for prog in loadgen minfork nullserver; do
        "$cc" "${WARN[@]}" -O2 -o "build/werror/$cc/bench/$prog" "bench/$prog.c" -pthread || ok=0
    done
done
if [ "$ok" -eq 1 ]; then passed; else failing "bench/*.c do not build cleanly"; fi

# ---------------------------------------------------------------- 2. self-test
stage "sanitizers report, to files, from a forked child too ($SAN_CC)"
mkdir -p build/asan
cat >"$WORK/selftest.c" <<'EOF'
/* Each mode makes exactly one mistake of the kind the sanitizers must catch. */
#define _POSIX_C_SOURCE 200809L
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

int main(int argc, char *argv[])
{
    volatile int big = INT_MAX, i = 4;
    char *p = malloc(4);
    pid_t pid;

    if (argc < 2 || p == NULL)
        return 2;
    if (strcmp(argv[1], "leak") == 0) {
        p = NULL;
        return 0;
    }
    pid = fork();
    if (pid == 0) {
        if (strcmp(argv[1], "overflow") == 0)
            p[i] = 1;
        else
            big = big + i;
        _exit(0);
    }
    waitpid(pid, NULL, 0);
    free(p);
    return big == 0;
}
EOF
"$SAN_CC" "${SANITIZE[@]}" -o build/asan/selftest "$WORK/selftest.c"
LEAKS=1
ok=1
# selftest_catches MODE PATTERN: running MODE leaves one report, saying PATTERN.
selftest_catches() {
    local reports
    build/asan/selftest "$1" 2>/dev/null || true
    reports=("$REPORTS"/report.*)
    if [ ! -e "${reports[0]}" ]; then
        echo "   no report about $1"
        return 1
    fi
    grep -q "$2" "${reports[@]}" || { echo "   the report about $1 does not say '$2':"; head -n 5 "${reports[@]}"; }
    grep -q "$2" "${reports[@]}"
}
selftest_catches overflow 'AddressSanitizer: heap-buffer-overflow' || ok=0
rm -f "$REPORTS"/report.*
selftest_catches signed-overflow 'runtime error: signed integer overflow' || ok=0
rm -f "$REPORTS"/report.*
if ! selftest_catches leak 'LeakSanitizer: detected memory leaks' >/dev/null; then
    # LeakSanitizer stops the program's threads with ptrace, which some
    # containers forbid; then leaks cannot be checked, and we say so.
    echo "   LeakSanitizer does not work here: leaks will not be checked"
    LEAKS=0
fi
rm -f "$REPORTS"/report.*
[ "$LEAKS" -eq 1 ] || export ASAN_OPTIONS="${ASAN_OPTIONS/detect_leaks=1/detect_leaks=0}"
if [ "$ok" -eq 1 ]; then passed; else failing "the sanitizers' reports cannot be relied on"; fi

# ---------------------------------------------------------------- 3. bats under sanitizers
stage "the step and client tests against ASan+UBSan$([ "$LEAKS" -eq 1 ] && echo +LSan) builds ($SAN_CC)"
for src in step1-single/server.c step2-loop/server.c step3-fork/server.c step4-reap/server.c client/client.c; do
    mkdir -p "build/asan/$(dirname "$src")"
    "$SAN_CC" "${WARN[@]}" "${SANITIZE[@]}" -o "build/asan/${src%.c}" "$src"
done
suites=()
for f in tests/step*.bats tests/client.bats; do
    [ -e "$f" ] && suites+=("$f")
done
if [ "${#suites[@]}" -eq 0 ]; then
    failing "no tests/step*.bats or tests/client.bats to run"
else
    echo "   ${suites[*]}"
    if BIN="$ROOT/build/asan" "$BATS" --tap "${suites[@]}" </dev/null >"$WORK/bats.log" 2>&1; then
        bats_ok=1
    else
        bats_ok=0
    fi
    # Every failing or skipped test, with what it printed; then the counts.
    grep -E '^(not ok|ok .*# skip|# )' "$WORK/bats.log" | head -n 80 | sed 's/^/   /' || true
    awk '/^ok / { n++; if (/# skip/) s++ } /^not ok / { n++; f++ }
         END { printf "   %d tests: %d passed, %d failed, %d skipped\n", n, n - f - s, f, s }' "$WORK/bats.log"
    if no_reports && [ "$bats_ok" -eq 1 ]; then passed; else failing "the tests under sanitizers"; fi
fi

# ---------------------------------------------------------------- 3b. exercise solutions
stage "the exercises' reference solutions against their checkers, ASan+UBSan builds ($SAN_CC)"
ok=1
for src in exercises/solutions/*/*.c; do
    [ -e "$src" ] || continue
    ex=$(basename "$(dirname "$src")")
    [ -f "exercises/$ex/check.bats" ] || continue
    out="build/asan/exercises/$ex/$(basename "${src%.c}")"
    mkdir -p "$(dirname "$out")"
    # shellcheck disable=SC2046 # the exercise's build-flags (-pthread) are a list of words
    if ! "$SAN_CC" "${WARN[@]}" "${SANITIZE[@]}" -o "$out" "$src" $(cat "exercises/$ex/build-flags" 2>/dev/null); then
        echo "   $ex: the solution does not build"
        ok=0
        continue
    fi
    if EX_PROG="$ROOT/$out" EX_SRC="$ROOT/$src" "$BATS" --tap "exercises/$ex/check.bats" </dev/null >"$WORK/ex.log" 2>&1; then
        echo "   $ex: $(grep -c '^ok' "$WORK/ex.log") checks passed"
    else
        echo "   $ex: the checker failed on the sanitizer build:"
        grep -E '^(not ok|# )' "$WORK/ex.log" | head -n 20 | sed 's/^/   /'
        ok=0
    fi
done
if no_reports && [ "$ok" -eq 1 ]; then passed; else failing "the exercise solutions under sanitizers"; fi

# ---------------------------------------------------------------- 4. under load
stage "ASan+UBSan step2, step3, step4 under load from a ThreadSanitizer loadgen"
mkdir -p build/tsan/bench
LOADGEN=build/tsan/bench/loadgen
# ThreadSanitizer, where clang has it and it runs on this kernel: without
# arguments loadgen must print its usage and exit with status 2.
tsan=0
if clang "${WARN[@]}" -O1 -g -fsanitize=thread -o "$LOADGEN" bench/loadgen.c -pthread 2>/dev/null; then
    status=0
    "$LOADGEN" >/dev/null 2>&1 || status=$?
    [ "$status" -eq 2 ] && tsan=1
fi
if [ "$tsan" -eq 0 ]; then
    rm -f "$REPORTS"/report.*   # whatever the failed attempt wrote
    echo "   (no ThreadSanitizer here: loadgen built with ASan+UBSan instead)"
    "$SAN_CC" "${WARN[@]}" "${SANITIZE[@]}" -o "$LOADGEN" bench/loadgen.c -pthread
fi
ok=1
for step in step2-loop step3-fork step4-reap; do
    start_server "$step" "build/asan/$step/server" 0
    if [ -z "$port" ]; then
        echo "   $step did not start: $(cat "$WORK/$step.err")"
        ok=0
        continue
    fi
    # Conversations, 8 at a time; then, for the forking steps, 100 at once.
    if ! "$LOADGEN" -n 2000 -c 8 -T 20 127.0.0.1 "$port" >"$WORK/load" 2>&1; then
        echo "   $step: $(cat "$WORK/load")"
        ok=0
    fi
    if [ "$step" != step2-loop ]; then
        rm -f "$WORK/go"
        "$LOADGEN" -H 100 -w "$WORK/go" -T 20 127.0.0.1 "$port" >"$WORK/hold" 2>&1 &
        hold=$!
        for ((i = 0; i < 500; i++)); do
            grep -qs '^holding' "$WORK/hold" && break
            sleep 0.02
        done
        touch "$WORK/go"
        wait "$hold" || { echo "   $step, 100 at once: $(cat "$WORK/hold")"; ok=0; }
    fi
    [ -s "$WORK/$step.err" ] && { echo "   $step stderr: $(head -n 3 "$WORK/$step.err")"; ok=0; }
    kill -TERM -- "-$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
done
if no_reports && [ "$ok" -eq 1 ]; then passed; else failing "the sanitizer builds under load"; fi

# ---------------------------------------------------------------- 5. valgrind
stage "the client and step1 under valgrind memcheck"
# shellcheck disable=SC2054 # the commas are part of one option
VALGRIND=(valgrind -q --error-exitcode=99 --leak-check=full --show-leak-kinds=definite,indirect,possible
          --errors-for-leak-kinds=definite,indirect,possible --track-origins=yes)
# Built here with DWARF 4 debug information: valgrind 3.19 (Debian 12) cannot
# read the DWARF 5 that clang 14 writes by default, and says so in its log.
mkdir -p build/valgrind/step1-single build/valgrind/client
for prog in step1-single/server client/client; do
    "${CC:-cc}" "${WARN[@]}" -O1 -g -gdwarf-4 -o "build/valgrind/$prog" "$prog.c"
done
ok=1
# converse NAME STDIN: step1 and the client, both under valgrind, one
# conversation with STDIN (a file) as the client's input. Valgrind's exit
# status 99 means it found an error; the programs' own status is checked too.
converse() {
    local name=$1 input=$2 port i server_status=0 client_status=0
    start_server "$name" "${VALGRIND[@]}" --log-file="$WORK/vg.$name.server" \
        build/valgrind/step1-single/server 0
    [ -n "$port" ] || { echo "   $name: step1 did not start under valgrind"; ok=0; return; }
    "${VALGRIND[@]}" --log-file="$WORK/vg.$name.client" build/valgrind/client/client 127.0.0.1 "$port" \
        <"$input" >"$WORK/$name.reply" 2>"$WORK/$name.client.err" || client_status=$?
    wait "$pid" || server_status=$?
    for log in "$WORK/vg.$name.server" "$WORK/vg.$name.client"; do
        if [ -s "$log" ]; then
            echo "   $name: valgrind says:"
            sed 's/^/   | /' "$log" | head -n 40
            ok=0
        fi
    done
    echo "   $name: client exit $client_status, step1 exit $server_status"
    case $name in
        empty-input)        # the client has no line to send: it must say so, and fail
            [ "$client_status" -eq 1 ] && [ "$server_status" -eq 0 ] || ok=0 ;;
        *)
            [ "$client_status" -eq 0 ] && [ "$server_status" -eq 0 ] &&
                [ "$(cat "$WORK/$name.reply")" = "I got your message" ] || ok=0 ;;
    esac
}
printf 'hello, valgrind\n' >"$WORK/line"
head -c 1000000 /dev/zero | tr '\0' x >"$WORK/huge"
echo >>"$WORK/huge"
: >"$WORK/empty"
converse one-line "$WORK/line"
converse huge-line "$WORK/huge"     # longer than every buffer: reads, drains
converse empty-input "$WORK/empty"  # error paths: the client exits, step1 reads nothing
if [ "$ok" -eq 1 ]; then passed; else failing "valgrind memcheck"; fi

# ---------------------------------------------------------------- 6. analysers
stage "cppcheck"
# Left out, and why:
#   variableScope:       the sources declare a function's variables at its top on
#                        purpose, so a student sees them all at once (house style);
#   redundantContinue:   "while (waitpid(...) > 0) continue;" spells out an empty
#                        loop body (step4's reaper), where a lone ";" is easy to miss;
#   missingIncludeSystem: cppcheck is not given the system headers (it does not
#                        need them, and parsing them is slow); this only says so.
if cppcheck --enable=all --inconclusive --std=c99 --error-exitcode=1 --quiet \
        --suppress=variableScope --suppress=redundantContinue --suppress=missingIncludeSystem \
        "${SOURCES[@]}" ${SOLUTIONS[@]+"${SOLUTIONS[@]}"}; then
    passed
else
    failing "cppcheck"
fi

stage "clang-tidy"
# The checks: the static analyzer and every family that finds bugs; not the
# readability-* family, whose rules on braces, names and numbers are a matter
# of style, and the house style differs. Left out, and why:
#   bugprone-reserved-identifier, cert-dcl37-c, cert-dcl51-cpp: they flag
#       "#define _POSIX_C_SOURCE", which POSIX requires the program to define;
#   cert-err33-c: it wants the result of every printf, fprintf, fflush and
#       signal(SIGPIPE, SIG_IGN) checked; for messages to a terminal or a log that
#       would bury the lesson (see the report for the one place where it matters);
#   bugprone-easily-swappable-parameters: a heuristic about two parameters of
#       the same type next to each other, such as (fd, key): style, not a bug;
#   concurrency-mt-unsafe, except for bench/loadgen.c: exit(), strerror() and
#       the like are unsafe only when threads call them at once; exercise 11's
#       solution, the one other program here with threads, calls exit() only
#       before its first thread starts.
TIDY='-*,clang-analyzer-*,bugprone-*,cert-*,concurrency-*,misc-*,performance-*,portability-*'
TIDY+=',-bugprone-reserved-identifier,-cert-dcl37-c,-cert-dcl51-cpp,-cert-err33-c'
TIDY+=',-bugprone-easily-swappable-parameters'
ok=1
tidy() {
    local checks=$1
    shift
    clang-tidy --quiet --warnings-as-errors='*' --checks="$checks" "$@" \
        -- -std=c99 -pedantic -Wall -Wextra -pthread 2>"$WORK/tidy.err" || ok=0
    grep -v -E '^[0-9]+ warnings? (and [0-9]+ errors? )?generated\.$' "$WORK/tidy.err" || true
}
tidy "$TIDY,-concurrency-mt-unsafe" step1-single/server.c step2-loop/server.c \
    step3-fork/server.c step4-reap/server.c client/client.c tests/peer.c \
    tests/stuck.c tests/sigdefault.c tests/probe.c bench/minfork.c bench/nullserver.c ${SOLUTIONS[@]+"${SOLUTIONS[@]}"}
tidy "$TIDY" bench/loadgen.c
if [ "$ok" -eq 1 ]; then passed; else failing "clang-tidy"; fi

# ---------------------------------------------------------------- verdict
echo "== check: $(( ${#failed[@]} )) of 7 stages failed, in $((SECONDS - began)) s"
if [ "${#failed[@]}" -gt 0 ]; then
    printf '   failed: %s\n' "${failed[@]}"
    exit 1
fi
