#!/usr/bin/env bats
# make grade SUBMISSIONS=DIR (exercises/lib/grade.sh): a class where one student
# got it right, one got it wrong, one does not compile, one hangs, one forks
# without end, one prints without end, one sent nothing, one sent a
# check.bats of their own, one sent the starter unchanged, one handed in the
# exercises/ folder, one put it a level deeper, and one's check was skipped.
# Each is reported for what it is, the table fits 80 columns, the logs name
# the student's own files, the whole run ends in bounded time, and nothing it
# started is left: no process, no directory. It grades two fake exercises
# built here (serve two clients in a row; one that skips a check), so that
# the test does not depend on any real exercise's checker.

# Not in make test (it takes most of a minute): make test-exercises runs this
# folder. The repository's helper.bash assumes a file directly in tests/, so
# this file takes only the harness, like the checkers do.
ROOT="$(cd "$BATS_TEST_DIRNAME/../.." && pwd)"
source "$ROOT/tests/harness.bash"
setup() { harness_setup; }
teardown() { harness_teardown; }

# The class is graded once, for the whole file: setup_file builds the fake
# exercise and the class in $G, runs make grade on it with a short deadline
# per checker, and keeps its output, status and time in $G.
setup_file() {
    G="$BATS_FILE_TMPDIR/g"
    mkdir -p "$G"
    # The harness's deadlines and group-killing, for this one command.
    T=$G
    BG_PIDS=()
    HARNESS_GROUPS="$G/.process-groups"
    : >"$HARNESS_GROUPS"
    # Run as root, the students' programs run as other users, who may not
    # enter bats' own directories: their directories go in one of their own.
    GT=$(mktemp -d "${TMPDIR:-/tmp}/grade-test.XXXXXX")
    chmod 755 "$GT"
    echo "$GT" >"$G/gt"
    grade_class >"$G/output" 2>&1
    echo "$?" >"$G/status"
    stop_everything
}

teardown_file() {
    local gt
    gt=$(cat "$BATS_FILE_TMPDIR/g/gt" 2>/dev/null) && [ -n "$gt" ] && rm -rf "$gt"
    return 0
}

grade_class() {
    local ex="$T/exercises/01-echo" s
    mkdir -p "$ex"
    printf '# 01. Echo twice\n\nAfter: Step 2\n' >"$ex/README.md"
    # The starter: step 1 with a TODO (which fails the checker).
    { cat "$ROOT/step1-single/server.c"; echo "/* TODO(exercise): serve every client */"; } >"$ex/server.c"
    # A second fake exercise whose checker skips a check (as 08's do where a
    # tool is missing): the result is neither passed nor failed.
    mkdir -p "$T/exercises/02-skip"
    printf '# 02. Skip one\n\nAfter: Step 2\n' >"$T/exercises/02-skip/README.md"
    cp "$ROOT/step2-loop/server.c" "$T/exercises/02-skip/server.c"
    sed 's/^TEST /@test /' >"$T/exercises/02-skip/check.bats" <<EOF
#!/usr/bin/env bats
load "$ROOT/exercises/lib/checker"
TEST "a check that runs" { true; }
TEST "a check that needs a tool" { skip "needs a tool this machine lacks"; }
EOF
    # (bats would read a line of this file that starts with @test as a test
    # of its own, even inside a here-document: hence "TEST" and sed.)
    sed 's/^TEST /@test /' >"$ex/check.bats" <<EOF
#!/usr/bin/env bats
# A fake exercise for tests/exercises/grade.bats: the server serves two clients in a row.
load "$ROOT/exercises/lib/checker"
DEADLINE=30     # longer than make grade's own deadline below

# bats test_tags=lesson
TEST "serves two clients in a row" {
    start_ex_server
    served one
    served two
}
EOF
    for s in good failing broken hangs forks prints cheats same; do mkdir -p "$T/class/$s/01-echo"; done
    mkdir -p "$T/class/absent" "$T/class/nested/exercises/01-echo" "$T/class/deep/my-copy/exercises/01-echo" \
        "$T/class/skips/02-skip"
    cp "$ROOT/step2-loop/server.c" "$T/class/good/01-echo/"
    cp "$ex/server.c" "$T/class/same/01-echo/"                        # the starter, untouched
    cp "$ROOT/step2-loop/server.c" "$T/class/nested/exercises/01-echo/" # handed in as in the repository
    cp "$ROOT/step2-loop/server.c" "$T/class/deep/my-copy/exercises/01-echo/"   # one level too deep
    { cat "$ROOT/step2-loop/server.c"; echo "/* done */"; } >"$T/class/skips/02-skip/server.c"
    cp "$ROOT/step1-single/server.c" "$T/class/failing/01-echo/"      # serves one, then exits
    printf 'int main(void) { return x; }\n' >"$T/class/broken/01-echo/server.c"
    # Announces a port, never accepts, and ignores SIGTERM.
    cat >"$T/class/hangs/01-echo/server.c" <<'EOF'
#define _POSIX_C_SOURCE 200809L
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

int main(void)
{
    struct sockaddr_in a;
    socklen_t len = sizeof a;
    int fd = socket(AF_INET, SOCK_STREAM, 0);

    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    signal(SIGTERM, SIG_IGN);
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a) < 0 || listen(fd, 5) < 0 ||
        getsockname(fd, (struct sockaddr *)&a, &len) < 0)
        return 1;
    printf("Listening on port %d\n", ntohs(a.sin_port));
    fflush(stdout);
    for (;;)
        pause();
}
EOF
    # The same, then every process forks once, and each child leaves for a
    # session of its own, until fork fails; then they all wait. (A bomb that
    # spins would do the same and burn both cores of the machine meanwhile.)
    sed 's/^        pause();$/        if (fork() == 0) setsid(); else pause();/' \
        "$T/class/hangs/01-echo/server.c" >"$T/class/forks/01-echo/server.c"
    cat >"$T/class/prints/01-echo/server.c" <<'EOF'
#include <stdio.h>

int main(void)
{
    for (;;)
        puts("Listening on port 0, and on, and on, and on, and on, and on, and on ...");
}
EOF
    # A submission's own checker is never used: this one passes anything.
    cp "$ROOT/step1-single/server.c" "$T/class/cheats/01-echo/"
    printf '@%s "anything" { true; }\n' test >"$T/class/cheats/01-echo/check.bats"
    local start=$SECONDS rc=0
    DEADLINE=120 with_deadline env EXERCISES_DIR="$T/exercises" GRADE_OUT="$T/out" GRADE_TMPDIR="$GT" \
        GRADE_DEADLINE=5 OUTPUT_LIMIT_KB=1024 make -s -C "$ROOT" grade SUBMISSIONS="$T/class" || rc=$?
    echo "$((SECONDS - start))" >"$T/elapsed"
    return "$rc"
}

# grade_is STUDENT RESULT [RESULT02]: the CSV's row for STUDENT says RESULT
# for 01, and RESULT02 (missing unless said) for 02.
grade_is() {
    local row
    row=$(grep "^$1," "$G/out/grades.csv")
    expect_same "grades.csv's row for $1" "$1,$2,${3:-missing}" "$row"
}

# table_row STUDENT: the table's row for STUDENT, from make grade's output.
table_row() { printf '%s\n' "$output" | grep "^$1 "; }

# run_users: the user IDs the runs ran as (as root), from the logs.
run_users() { sed -n 's/^== as user \([0-9][0-9]*\)$/\1/p' "$G"/out/logs/*/01.txt | sort -u; }

# graded: what make grade did, for one test: sets status, output, elapsed.
graded() {
    G="$BATS_FILE_TMPDIR/g"
    status=$(cat "$G/status")
    output=$(cat "$G/output")
    elapsed=$(cat "$G/elapsed")
    [ "$status" -eq 0 ] || fail_because "expected make grade to exit 0, got $status: $(excerpt "$output")"
}

@test "make grade reports each submission for what it is: passed, failed, unchanged, skipped, does not build, timed out, missing" {
    graded
    expect_same "grades.csv's first line" "student,01-echo,02-skip" "$(head -n 1 "$G/out/grades.csv")"
    grade_is absent missing
    grade_is broken "does not build"
    grade_is cheats failed
    grade_is failing failed
    grade_is forks "timed out"
    grade_is good passed
    grade_is hangs "timed out"
    grade_is prints failed
    grade_is same unchanged
    grade_is nested passed
    grade_is skips missing "skipped: needs a tool this machine lacks"
    # The table on stdout says the same, in short.
    expect_same "the table's row for good" "good                 P  -  1/1" "$(table_row good)"
    expect_same "the table's row for same" "same                 U  -  0/1" "$(table_row same)"
    expect_same "the table's row for skips" "skips                -  S  0/1" "$(table_row skips)"
    # What each run printed is kept, in plain words.
    grep -q "error: .x. undeclared" "$G/out/logs/broken/01.txt" ||
        fail_because "expected the compiler's message in broken's log, got: $(excerpt_file "$G/out/logs/broken/01.txt")"
    grep -q "expected the client sending 'two' to print 'I got your message'" "$G/out/logs/failing/01.txt" ||
        fail_because "expected the checker's expected/got line in failing's log, got: $(excerpt_file "$G/out/logs/failing/01.txt")"
}

@test "make grade ends in bounded time and leaves no process, no directory and no huge file behind" {
    graded
    # Two runs stop at the 5 s deadline (with a second's grace); the rest take a second or two.
    [ "$elapsed" -lt 60 ] || fail_because "expected make grade to take well under 60s, took ${elapsed}s"
    local leftovers
    leftovers=$(ls -A "$(cat "$G/gt")")
    [ -z "$leftovers" ] || fail_because "expected make grade to remove its directories, found: $(excerpt "$leftovers")"
    if [ "$(id -u)" -eq 0 ]; then
        local users uid
        users=$(run_users)
        [ "$(printf '%s\n' "$users" | grep -c .)" -ge 7 ] ||
            fail_because "expected each run (as root) to run as a user ID of its own, got: $(excerpt "$users")"
        for uid in $users; do
            left=$(ps -A -o uid= -o pid= -o stat= -o args= | awk -v u="$uid" '$1 == u && $3 !~ /^Z/')
            [ -z "$left" ] || fail_because "expected no process of user $uid after make grade, found: $(excerpt "$left")"
        done
    fi
    # (the directories go to awk through its environment, or awk would find itself)
    local gt
    gt=$(cat "$G/gt")
    left=$(ps -A -o pid= -o args= | G_DIR="$G/" T_DIR="$gt/" \
        awk 'index($0, ENVIRON["G_DIR"]) || index($0, ENVIRON["T_DIR"])')
    [ -z "$left" ] || fail_because "expected no process running from the class's directories after make grade, found: $(excerpt "$left")"
    local big
    big=$(find "$G/out" -type f -size +200k)
    [ -z "$big" ] || fail_because "expected every log to stay small, found: $(excerpt "$big")"
    [ "${#output}" -lt 20000 ] || fail_because "expected make grade to print a short table, it printed ${#output} bytes"
}

@test "make grade without SUBMISSIONS, or with a folder that is not there, says so and exits non-zero" {
    run with_deadline make -s -C "$ROOT" grade
    [ "$status" -ne 0 ] || fail_because "expected a non-zero exit without SUBMISSIONS, got 0"
    [[ $output == *"SUBMISSIONS=DIR"* ]] || fail_because "expected a hint 'SUBMISSIONS=DIR', got: $(excerpt "$output")"
    run with_deadline make -s -C "$ROOT" grade SUBMISSIONS="$T/nothing-here"
    [ "$status" -ne 0 ] || fail_because "expected a non-zero exit for a missing folder, got 0"
    [[ $output == *"is not a directory"* ]] || fail_because "expected 'is not a directory', got: $(excerpt "$output")"
}

@test "make grade finds exercises handed in under exercises/, and names a student whose folders are deeper still" {
    graded
    grade_is nested passed
    grade_is deep missing
    [[ $output == *"warning: deep: no exercise folder in "*"/class/deep/"*"but there is my-copy/exercises/01-echo/server.c deeper down"* ]] ||
        fail_because "expected a warning naming deep's folder my-copy/exercises/01-echo/server.c, got: $(excerpt "$(printf '%s\n' "$output" | grep -i -e warning -e '^deep')")"
}

@test "make grade's logs name the student's file as the student knows it, not the temporary directory" {
    graded
    grep -q '^01-echo/server.c:1:[0-9]*: error' "$G/out/logs/broken/01.txt" ||
        fail_because "expected the compiler's message to start '01-echo/server.c:1:', got: $(excerpt_file "$G/out/logs/broken/01.txt")"
    local gt tmp
    gt=$(cat "$G/gt")
    tmp=$(grep -l -F "$gt/" "$G"/out/logs/*/*.txt || true)
    [ -z "$tmp" ] || fail_because "expected no log to name the temporary directory $gt, found it in: $(excerpt "$tmp")"
}

@test "make grade's table fits 80 columns, with no trailing spaces, a legend and a total per student" {
    graded
    local table long
    table=$(cat "$G/out/grades.txt")
    long=$(printf '%s\n' "$table" | awk 'length($0) > 80')
    [ -z "$long" ] || fail_because "expected every line of grades.txt within 80 columns, got: $(excerpt "$long")"
    long=$(printf '%s\n' "$table" | grep -n ' $' || true)
    [ -z "$long" ] || fail_because "expected no trailing spaces in grades.txt, got: $(excerpt "$long")"
    expect_same "the table's head" "student              01 02 total" "$(head -n 1 "$G/out/grades.txt")"
    [[ $table == *"P passed, F failed, U unchanged"*"S skipped"*"- missing"* ]] ||
        fail_because "expected the legend under the table, got: $(excerpt "$table")"
    expect_same "the table's row for absent" "absent               -  -  0/0" "$(printf '%s\n' "$table" | grep '^absent ')"
}
