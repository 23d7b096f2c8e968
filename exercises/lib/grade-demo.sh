#!/usr/bin/env bash
# exercises/lib/grade-demo.sh - what `make grade-demo` runs: makes a class and
# grades it with make grade, so that anyone can repeat the timing in
# exercises/TEACHING.md.
#
# The class (DEMO_STUDENTS students, 30 by default, times every exercise, or
# the exercises DEMO_EXERCISES names, e.g. "01 02 03") is
# made in $DEMO_DIR/class (build/grade-demo by default) from the repository:
# two runs in three are a reference solution, with a comment of the student's
# added (and, where there is one, the second solution from
# tests/second-solutions/ instead, every other time); the third is the
# starter with a comment added, which fails its checker as the starter does.
# A few of those are hostile instead: one does not compile, one prints
# without end, one forks without end, one hangs and ignores SIGTERM. Every
# student hands in every exercise, half of them in an exercises/ folder as in
# the repository. Then it grades the class (GRADE_JOBS, TIME_SCALE and the
# other make grade settings apply) and prints the machine's load before and
# after, beside make grade's own total time.
# Written for bash 3.2 and later (macOS still ships 3.2).
set -u

source "$(dirname "$0")/common.bash"

DEMO_STUDENTS="${DEMO_STUDENTS:-30}"
DEMO_DIR="${DEMO_DIR:-$REPO/build/grade-demo}"
DEMO_EXERCISES="${DEMO_EXERCISES:-}"     # e.g. "01 02 03": only those (all by default)
case $DEMO_STUDENTS in '' | *[!0-9]* | 0) echo "DEMO_STUDENTS must be a whole number from 1 up" >&2; exit 2 ;; esac
[ -d "$REPO/exercises/solutions" ] || { echo "make grade-demo needs the reference solutions in exercises/solutions/" >&2; exit 2; }

rm -rf "$DEMO_DIR/class"
mkdir -p "$DEMO_DIR/class"
expected="$DEMO_DIR/expected"
: >"$expected"

# hostile KIND: a server.c (or client.c) that misbehaves as KIND says.
hostile() {
    case $1 in
        broken) printf 'int main(void) { return x; }\n' ;;
        printer) printf '#include <stdio.h>\nint main(void)\n{\n    for (;;)\n        puts("Listening on port 0, and on, and on");\n}\n' ;;
        forker) printf '#define _POSIX_C_SOURCE 200809L\n#include <unistd.h>\nint main(void)\n{\n    for (;;)\n        if (fork() == 0)\n            setsid();\n}\n' ;;
        hanger) printf '#define _POSIX_C_SOURCE 200809L\n#include <signal.h>\n#include <unistd.h>\nint main(void)\n{\n    signal(SIGTERM, SIG_IGN);\n    for (;;)\n        pause();\n}\n' ;;
    esac
}

n_ex=0 correct=0 wrong=0 hostile_runs=0
s=1
while [ "$s" -le "$DEMO_STUDENTS" ]; do
    student=$(printf 'student%02d' "$s")
    base="$DEMO_DIR/class/$student"
    [ $((s % 2)) -eq 0 ] && base="$base/exercises"
    e=0
    while IFS= read -r dir; do
        [ -n "$dir" ] || continue
        name=$(basename "$dir")
        if [ -n "$DEMO_EXERCISES" ]; then
            case " $DEMO_EXERCISES " in *" ${name%%-*} "*) ;; *) continue ;; esac
        fi
        starter=$(ex_starter "$dir") || continue
        mkdir -p "$base/$name"
        out="$base/$name/$starter"
        k=$((s * 7 + e))
        if [ $((k % 3)) -ne 0 ]; then
            sol="$REPO/exercises/solutions/$name/$starter"
            second="$REPO/tests/second-solutions/$name/$starter"
            [ $((s % 2)) -eq 1 ] && [ -f "$second" ] && sol=$second
            { cat "$sol"; echo "/* $student */"; } >"$out"
            correct=$((correct + 1))
            echo "$student $name passed" >>"$expected"
        else
            # One of each hostile kind, in the first students' wrong runs.
            case $wrong in
                1) hostile broken >"$out" ;;
                4) hostile printer >"$out" ;;
                7) hostile forker >"$out" ;;
                10) hostile hanger >"$out" ;;
                *) { cat "$dir/$starter"; echo "/* $student tried */"; } >"$out" ;;
            esac
            case $wrong in 1 | 4 | 7 | 10) hostile_runs=$((hostile_runs + 1)) ;; esac
            wrong=$((wrong + 1))
            echo "$student $name not-passed" >>"$expected"
        fi
        e=$((e + 1))
    done <<EOF
$(ex_dirs)
EOF
    n_ex=$e
    s=$((s + 1))
done

echo "a class of $DEMO_STUDENTS students x $n_ex exercises in $DEMO_DIR/class: $correct correct, $wrong wrong ($hostile_runs of them hostile)"
echo "load before: $(uptime)"
rc=0
GRADE_OUT="$DEMO_DIR/out" GRADE_EXERCISES="$DEMO_EXERCISES" "$LIB/grade.sh" "$DEMO_DIR/class" || rc=$?
echo "load after:  $(uptime)"
[ "$rc" -eq 0 ] || exit "$rc"

# Every correct run must have passed, and no other.
wrong_verdicts=$(awk -F, '
    NR == FNR { split($0, a, " "); want[a[1] " " a[2]] = a[3]; next }
    FNR == 1 { for (i = 2; i <= NF; i++) ex[i] = $i; next }
    {
        for (i = 2; i <= NF; i++) {
            w = want[$1 " " ex[i]]
            if (w == "passed" && $i != "passed") print $1 " " ex[i] ": expected passed, got " $i
            if (w == "not-passed" && $i == "passed") print $1 " " ex[i] ": expected a failure, got passed"
        }
    }' "$expected" "$DEMO_DIR/out/grades.csv")
if [ -n "$wrong_verdicts" ]; then
    echo "make grade-demo: $(printf '%s\n' "$wrong_verdicts" | grep -c .) runs got the wrong verdict:"
    printf '%s\n' "$wrong_verdicts"
    exit 1
fi
echo "make grade-demo: every run got the verdict it should ($correct passed, $wrong did not)"
