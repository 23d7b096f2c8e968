#!/usr/bin/env bash
# exercises/lib/grade.sh - what `make grade SUBMISSIONS=DIR` runs.
#
# DIR holds one folder per student, each with any of the exercise folders,
# directly or in a folder exercises/ (as in the repository):
#   DIR/alice/03-silent-client-timeout/server.c
#   DIR/bob/exercises/09-client-timeout/client.c
# For every student and every exercise it copies only the student's server.c
# (or client.c) into a fresh directory, builds it, and runs the repository's
# checker on it (never anything else from the submission). The result is one
# of passed, failed, unchanged (the starter, byte for byte), does not build,
# timed out, skipped: REASON (no check failed, one could not run here), or
# missing. It prints a table that fits 80 columns (one letter per result),
# and writes the results in full as CSV; what each run printed is kept beside
# it, with the student's own file names:
#   $GRADE_OUT/grades.txt             the table (GRADE_OUT defaults to build/grade)
#   $GRADE_OUT/grades.csv             the results in full
#   $GRADE_OUT/logs/STUDENT/NN.txt    the compiler's messages, the checks
#
# Every submission is treated as hostile. Each build and each checker run has
# a deadline (GRADE_BUILD_DEADLINE, GRADE_DEADLINE) and runs in a session of
# its own that is killed afterwards; the student's program may write at most
# OUTPUT_LIMIT_KB to any file and have at most GRADE_NPROC processes. Run as
# root (as CI does), the build and the student's program run as a user ID of
# their own that nothing else on the machine uses (GRADE_UID, default: a free
# one), with no groups, and after each run every process of that user is
# killed: a program that forks without end, or calls setsid() to slip out of
# its session, is gone with the rest. Run as an ordinary user, the limits
# apply within that user's own processes (see exercises/TEACHING.md).
# Written for bash 3.2 and later (macOS still ships 3.2).
set -u

source "$(dirname "$0")/common.bash"

GRADE_DEADLINE="${GRADE_DEADLINE:-60}"
GRADE_BUILD_DEADLINE="${GRADE_BUILD_DEADLINE:-30}"
GRADE_NPROC="${GRADE_NPROC:-64}"
GRADE_MEMORY_KB="${GRADE_MEMORY_KB:-1048576}"     # address space per process
GRADE_SOURCE_KB="${GRADE_SOURCE_KB:-512}"         # a larger "source" is not built
export OUTPUT_LIMIT_KB="${OUTPUT_LIMIT_KB:-4096}"
GRADE_OUT="${GRADE_OUT:-$REPO/build/grade}"
# Where each run's directory goes; as root, the student's user must be able
# to enter it (a bats test's own directory is not a place for it).
GRADE_TMPDIR="${GRADE_TMPDIR:-${TMPDIR:-/tmp}}"
BATS="${BATS:-bats}"

say() { printf '%s\n' "$*" >&2; }
die() { say "make grade: $*"; exit 2; }

SUBMISSIONS=${1:-}
[ -n "$SUBMISSIONS" ] || die "say where the submissions are: make grade SUBMISSIONS=DIR (one folder per student in DIR)"
[ -d "$SUBMISSIONS" ] || die "'$SUBMISSIONS' is not a directory"
SUBMISSIONS=$(cd "$SUBMISSIONS" && pwd)
command -v "$BATS" >/dev/null 2>&1 || die "needs bats-core (Debian: apt-get install bats; macOS: brew install bats-core)"

# ---------------------------------------------------------------- who runs the student's code

ROOT_MODE=
if [ "$(id -u)" -eq 0 ]; then
    command -v setpriv >/dev/null 2>&1 ||
        die "running as root, and setpriv (util-linux) is missing to run student code as another user; install util-linux or run make grade as an ordinary user"
    ROOT_MODE=1
fi

# uid_in_use UID: a process runs as UID, or the password database knows it.
uid_in_use() {
    ps -A -o uid= | awk -v u="$1" '$1 == u { f = 1 } END { exit !f }' && return 0
    getent passwd "$1" >/dev/null 2>&1
}

# pick_student_user: as root, sets GRADE_UID and AS_STUDENT, the prefix that
# runs a command as that user. Each run gets a user ID of its own that no
# process uses and the password database does not know, so that "kill every
# process of this user" cannot hit anybody else's (nobody's, say, from a
# test), and one run's leftovers (a zombie its parent left to init) do not
# count against the next run's limit on processes. GRADE_UID fixes one.
pick_student_user() {
    AS_STUDENT=()
    [ -n "$ROOT_MODE" ] || return 0
    if [ -n "${FIXED_UID:-}" ]; then
        GRADE_UID=$FIXED_UID
    else
        local tries=0
        while :; do
            GRADE_UID=$((200000 + (RANDOM * 32768 + RANDOM) % 800000))
            uid_in_use "$GRADE_UID" || break
            tries=$((tries + 1))
            [ "$tries" -lt 50 ] || { say "make grade: found no free user ID to run student code as (set GRADE_UID)"; return 1; }
        done
    fi
    AS_STUDENT=(setpriv --reuid="$GRADE_UID" --regid="$GRADE_UID" --clear-groups --)
}
FIXED_UID=${GRADE_UID:-}
AS_STUDENT=()

# limits_prefix: the command prefix that puts the limits on a process (and,
# as root, turns it into the student's user).
limits_prefix() {
    if [ -n "$ROOT_MODE" ] && command -v prlimit >/dev/null 2>&1; then
        printf '%s\n' prlimit "--nproc=$GRADE_NPROC:$GRADE_NPROC" "--as=$((GRADE_MEMORY_KB * 1024))" -- "${AS_STUDENT[@]}"
    fi
}

# write_wrapper FILE PROGRAM: the program the checker starts as $EX_PROG: it
# puts the limits in place and execs PROGRAM, so that the checker's process is
# the student's program itself (same PID, same output).
write_wrapper() {
    local file=$1 prog=$2 nproc
    {
        echo '#!/usr/bin/env bash'
        echo '# written by make grade: runs the student program under limits'
        if [ -n "$ROOT_MODE" ]; then
            if command -v prlimit >/dev/null 2>&1; then
                printf 'exec prlimit --nproc=%s:%s --as=%s -- setpriv --reuid=%s --regid=%s --clear-groups -- %q "$@"\n' \
                    "$GRADE_NPROC" "$GRADE_NPROC" "$((GRADE_MEMORY_KB * 1024))" "$GRADE_UID" "$GRADE_UID" "$prog"
            else
                printf 'ulimit -u %s && ulimit -v %s || exit 126\n' "$GRADE_NPROC" "$GRADE_MEMORY_KB"
                printf 'exec setpriv --reuid=%s --regid=%s --clear-groups -- %q "$@"\n' "$GRADE_UID" "$GRADE_UID" "$prog"
            fi
        else
            # The limit on processes counts all of this user's processes (and,
            # on Linux, threads), so it is set above what the user runs now.
            nproc=$(( $(ps -A -L -o uid= 2>/dev/null | awk -v u="$(id -u)" '$1 == u' | wc -l) ))
            [ "$nproc" -gt 0 ] || nproc=$(ps -A -o uid= | awk -v u="$(id -u)" '$1 == u' | wc -l)
            printf 'ulimit -u %s 2>/dev/null\n' "$((nproc + GRADE_NPROC))"
            printf 'ulimit -v %s 2>/dev/null\n' "$GRADE_MEMORY_KB"
            printf 'exec %q "$@"\n' "$prog"
        fi
    } >"$file"
    chmod 755 "$file"
}

# kill_student_processes: as root, every process of the student's user ID is
# killed (kill -1 from that user reaches exactly that user's processes, in one
# sweep that a fork cannot outrun). Then waits until none is left.
kill_student_processes() {
    [ -n "$ROOT_MODE" ] || return 0
    local tries=0
    while ps -A -o uid= -o stat= | awk -v u="$GRADE_UID" '$1 == u && $2 !~ /^Z/ { f = 1 } END { exit !f }'; do
        # (bash's kill: procps' kill(1) takes -1 for an option)
        "${AS_STUDENT[@]}" bash -c 'kill -KILL -1' 2>/dev/null || true
        tries=$((tries + 1))
        [ "$tries" -lt 100 ] || { say "make grade: processes of user $GRADE_UID are still there"; return 1; }
        sleep 0.05
    done
}

# kill_run_processes DIR: kills every process whose command line starts with
# DIR/ (the student's program, and its copies that fork made), until none is
# left. As an ordinary user this is what finds a child that left its session
# with setsid(); as root kill_student_processes has done it already.
kill_run_processes() {
    local pids tries=0
    while :; do
        pids=$(ps -A -o pid= -o stat= -o args= | awk -v d="$1/" '$2 !~ /^Z/ && index($3, d) == 1 { print $1 }')
        [ -n "$pids" ] || return 0
        # shellcheck disable=SC2086
        kill -KILL $pids 2>/dev/null || true
        tries=$((tries + 1))
        [ "$tries" -lt 100 ] || { say "make grade: processes of $1 are still there: $pids"; return 1; }
        sleep 0.05
    done
}

# ---------------------------------------------------------------- one run

# find_submission STUDENT_DIR EXDIR STARTER: the student's file for that
# exercise: STUDENT_DIR/NN-name/STARTER, or NN-anything/, or NN/; the same
# under STUDENT_DIR/exercises/ (the student handed in the folder as it is in
# the repository).
find_submission() {
    local name nn d base
    name=$(basename "$2")
    nn=${name%%-*}
    for base in "$1" "$1/exercises"; do
        for d in "$base/$name" "$base/$nn"-*/ "$base/$nn"; do
            d=${d%/}
            if [ -e "$d/$3" ] || [ -L "$d/$3" ]; then
                printf '%s\n' "$d/$3"
                return 0
            fi
        done
    done
    return 1
}

# deeper_submission STUDENT_DIR: a student's server.c or client.c in an
# exercise folder (NN-...) deeper than find_submission looks, if there is one.
deeper_submission() {
    find "$1" -mindepth 3 -maxdepth 8 \( -name server.c -o -name client.c \) 2>/dev/null |
        grep '/[0-9][0-9][^/]*/[^/]*$' | head -n 1
}

# student_paths RUN STARTER REL: a filter that writes the run directory's
# paths (the compiler's "/tmp/grade.XXXXXX/student/server.c:139:25") as the
# student knows the file: REL, such as 02-many-lines/server.c.
student_paths() {
    local prog_rel=${3%.c} dir_rel
    dir_rel=$(dirname "$3")
    F1="$1/student/$2" T1=$3 F2="$1/source/$2" T2=$3 F3="$1/student/${2%.c}" T3=$prog_rel \
        F4="$1/run-student" T4=$prog_rel F5="$1/student" T5=$dir_rel F6="$1/tmp" T6='$TMPDIR' \
        F7="$1" T7='(the run directory)' awk '
        function swap(s, from, to,    out, i) {
            out = ""
            while ((i = index(s, from)) > 0) {
                out = out substr(s, 1, i - 1) to
                s = substr(s, i + length(from))
            }
            return out s
        }
        {
            line = $0
            for (k = 1; k <= 7; k++) line = swap(line, ENVIRON["F" k], ENVIRON["T" k])
            print line
        }'
}

# grade_one STUDENT_DIR EXDIR LOG: prints one of passed, failed, missing,
# unchanged, "does not build", "timed out", "skipped: REASON" (no check
# failed, but at least one could not run here); what happened goes to LOG.
grade_one() {
    local student_dir=$1 exdir=$2 log=$3 starter src run rc prog planned ok failed skipped size rel reason
    starter=$(ex_starter "$exdir")
    pick_student_user || { echo "no free user ID" >"$log"; echo failed; return; }
    if ! src=$(find_submission "$student_dir" "$exdir" "$starter"); then
        echo "no $(basename "$exdir")/$starter in $student_dir" >"$log"
        echo missing
        return
    fi
    rel=${src#"$student_dir"/}
    if [ -L "$src" ] || [ ! -f "$src" ]; then
        echo "$rel is not a regular file (a link, say); not graded" >"$log"
        echo missing
        return
    fi
    if cmp -s "$src" "$exdir/$starter"; then
        echo "$rel is the starter as handed out, byte for byte; not graded" >"$log"
        echo unchanged
        return
    fi
    size=$(wc -c <"$src" | tr -d ' ')
    if [ "$size" -gt $((GRADE_SOURCE_KB * 1024)) ]; then
        echo "$rel has $size bytes, more than GRADE_SOURCE_KB=$GRADE_SOURCE_KB kB; not built" >"$log"
        echo "does not build"
        return
    fi

    # $run (root's) holds the wrapper and bats' files, which the student's
    # program must not be able to change; $run/student (the student's user's)
    # holds the source and the program, and is the program's working directory.
    run=$(mktemp -d "$GRADE_TMPDIR/grade.XXXXXX") || { echo "cannot make a temporary directory" >"$log"; echo failed; return; }
    chmod 755 "$run"
    mkdir "$run/tmp" "$run/student" "$run/source"
    cp "$src" "$run/source/$starter"
    cp "$src" "$run/student/$starter"
    prog="$run/student/${starter%.c}"
    [ -z "$ROOT_MODE" ] || chown -R "$GRADE_UID:$GRADE_UID" "$run/student"

    # Build, as the student's user, under a deadline.
    local prefix=() word
    while IFS= read -r word; do
        [ -n "$word" ] && prefix+=("$word")
    done <<EOF
$(limits_prefix)
EOF
    [ ${#prefix[@]} -gt 0 ] || prefix=(${AS_STUDENT[@]+"${AS_STUDENT[@]}"})
    rc=0
    # shellcheck disable=SC2086 # the flags are lists of words on purpose
    (cd "$run/student" && LOG_LIMIT_KB=1024 TMPDIR="$run/student" run_contained "$GRADE_BUILD_DEADLINE" "$run/build.log" \
        ${prefix[@]+"${prefix[@]}"} $CC $WARN $EX_WERROR $CFLAGS -o "$prog" "$run/student/$starter" $(ex_build_flags "$exdir")) || rc=$?
    kill_student_processes
    kill_run_processes "$run"
    {
        [ -z "$ROOT_MODE" ] || echo "== as user $GRADE_UID"
        echo "== build: $CC $WARN $EX_WERROR $CFLAGS $rel $(ex_build_flags "$exdir")"
        head -c 65536 "$run/build.log" | student_paths "$run" "$starter" "$rel"
    } >"$log"
    if [ "$rc" -ne 0 ] || [ ! -x "$prog" ]; then
        [ "$rc" -ne 124 ] || echo "(the build did not end within ${GRADE_BUILD_DEADLINE}s and was stopped)" >>"$log"
        rm -rf "$run"
        echo "does not build"
        return
    fi

    # Check, with the repository's checker, under a deadline for the whole run.
    write_wrapper "$run/run-student" "$prog"
    rc=0
    (cd "$run/student" && clean_bats_env && TMPDIR="$run/tmp" run_contained "$GRADE_DEADLINE" "$run/checks.tap" \
        env EX_PROG="$run/run-student" EX_SRC="$run/source/$starter" TMPDIR="$run/tmp" "$BATS" --tap "$exdir/check.bats") || rc=$?
    kill_student_processes
    kill_run_processes "$run"
    planned=$(tap_planned "$run/checks.tap")
    ok=$(tap_count ok "$run/checks.tap")
    failed=$(tap_count failed "$run/checks.tap")
    skipped=$(tap_count skipped "$run/checks.tap")
    reason=$(sed -n 's/^ok [0-9][0-9]* .* # skip *//p' "$run/checks.tap" | head -n 1 | tr -d '\r' | cut -c1-100)
    {
        echo "== checks: exercises/$(basename "$exdir")/check.bats"
        tap_for_students "$run/checks.tap" | head -c 65536
        tap_incomplete "$run/checks.tap"
    } | student_paths "$run" "$starter" "$rel" >>"$log"
    rm -rf "$run"
    if [ "$rc" -eq 124 ]; then
        echo "(the checks did not end within ${GRADE_DEADLINE}s and were stopped)" >>"$log"
        echo "timed out"
    elif [ "$rc" -eq 0 ] && [ -n "$planned" ] && [ "$ok" -eq "$planned" ] && [ "$failed" -eq 0 ] && [ "$skipped" -eq 0 ]; then
        echo "passed"
    elif [ "$rc" -eq 0 ] && [ -n "$planned" ] && [ $((ok + skipped)) -eq "$planned" ] && [ "$failed" -eq 0 ]; then
        # Neither passed nor failed: every check that ran passed, and at
        # least one could not run on this machine.
        printf 'skipped: %s\n' "${reason:-a check could not run here}"
    else
        echo "failed"
    fi
}

# ---------------------------------------------------------------- the class

csv_field() {
    case $1 in
        *[\",]* | *$'\n'*) printf '"%s"' "$(printf '%s' "$1" | sed 's/"/""/g')" ;;
        *) printf '%s' "$1" ;;
    esac
}

EXDIRS=()
while IFS= read -r d; do
    [ -n "$d" ] && ex_starter "$d" >/dev/null && [ -f "$d/check.bats" ] && EXDIRS+=("$d")
done <<EOF
$(ex_dirs)
EOF
[ ${#EXDIRS[@]} -gt 0 ] || die "no exercise with a starter and a checker in $EXERCISES_DIR"

STUDENTS=()
for d in "$SUBMISSIONS"/*/; do
    [ -d "$d" ] && STUDENTS+=("${d%/}")
done
[ ${#STUDENTS[@]} -gt 0 ] || die "no student folders in $SUBMISSIONS"

mkdir -p "$GRADE_OUT/logs"
if [ -n "$ROOT_MODE" ]; then
    pick_student_user || exit 2
    probe=$(mktemp -d "$GRADE_TMPDIR/grade.XXXXXX") || die "cannot make a directory in $GRADE_TMPDIR (set GRADE_TMPDIR)"
    chmod 755 "$probe"
    reachable=1
    "${AS_STUDENT[@]}" test -x "$probe" || reachable=
    rmdir "$probe"
    [ -n "$reachable" ] || die "student code runs as another user, who cannot enter $GRADE_TMPDIR; set GRADE_TMPDIR to a directory anyone may enter (such as /tmp)"
fi
CSV="$GRADE_OUT/grades.csv"
TABLE="$GRADE_OUT/grades.txt"

say "grading ${#STUDENTS[@]} students x ${#EXDIRS[@]} exercises from $SUBMISSIONS"
[ -z "$ROOT_MODE" ] || say "(student code runs as a user ID of its own, at most $GRADE_NPROC processes, ${GRADE_DEADLINE}s per checker)"

{
    printf 'student'
    for ex in "${EXDIRS[@]}"; do printf ',%s' "$(basename "$ex")"; done
    printf '\n'
} >"$CSV"

# code RESULT: the table's one-letter code for a result.
code() {
    case $1 in
        passed) echo P ;;
        failed) echo F ;;
        unchanged) echo U ;;
        "does not build") echo B ;;
        "timed out") echo T ;;
        missing) echo - ;;
        skipped*) echo S ;;
        *) echo '?' ;;
    esac
}

# The table fits 80 columns: the student's name, a letter per exercise, and
# how many passed of those handed in. The CSV has the results in full.
{
    printf '%-20s' student
    for ex in "${EXDIRS[@]}"; do printf ' %-2s' "$(basename "$ex" | cut -c1-2)"; done
    printf ' total\n'
} >"$TABLE"

WARNINGS=
for student_dir in "${STUDENTS[@]}"; do
    student=$(basename "$student_dir")
    mkdir -p "$GRADE_OUT/logs/$student"
    rm -f "$GRADE_OUT/logs/$student/"[0-9][0-9].txt      # an older grading's logs
    row_csv=$(csv_field "$student")
    row_table=$(printf '%-20s' "$(printf '%s' "$student" | cut -c1-20)")
    n_passed=0 n_submitted=0
    for ex in "${EXDIRS[@]}"; do
        nn=$(basename "$ex" | cut -c1-2)
        result=$(grade_one "$student_dir" "$ex" "$GRADE_OUT/logs/$student/$nn.txt")
        say "  $student $nn: $result"
        row_csv="$row_csv,$(csv_field "$result")"
        row_table="$row_table $(printf '%-2s' "$(code "$result")")"
        [ "$result" = missing ] || n_submitted=$((n_submitted + 1))
        [ "$result" != passed ] || n_passed=$((n_passed + 1))
    done
    if [ "$n_submitted" -eq 0 ] && deeper=$(deeper_submission "$student_dir") && [ -n "$deeper" ]; then
        warning="warning: $student: no exercise folder in $student_dir/ (nor in $student_dir/exercises/), but there is ${deeper#"$student_dir"/} deeper down; move the NN-name folders up to $student_dir/ and grade again"
        say "make grade: $warning"
        WARNINGS="$WARNINGS$warning
"
    fi
    printf '%s\n' "$row_csv" >>"$CSV"
    printf '%s %s/%s\n' "$row_table" "$n_passed" "$n_submitted" | sed 's/ *$//' >>"$TABLE"
done
{
    echo
    echo "P passed, F failed, U unchanged (the starter as handed out), B does not build,"
    echo "T timed out, S skipped (a check could not run here), - missing."
    echo "total: passed / handed in. The CSV has the results in full, with the reasons."
} >>"$TABLE"

cat "$TABLE"
echo
[ -z "$WARNINGS" ] || printf '%s\n' "$WARNINGS"
echo "CSV: $CSV; what each run printed: $GRADE_OUT/logs/STUDENT/NN.txt"
