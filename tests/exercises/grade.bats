#!/usr/bin/env bats
# make grade SUBMISSIONS=DIR (exercises/lib/grade.sh) against a class that
# tries everything: one student got it right, one got it wrong, one does not
# compile, one hangs, one forks without end, one prints without end, one
# leaves a daemon behind, one sent nothing, one sent a check.bats, a Makefile
# and a lib/ of their own, one the starter unchanged; one
# handed in the exercises/ folder, one put it a level deeper, one's check was
# skipped. And the attacks: links to the answers, to another student, to
# another student's file; an #include of a reference solution by its full
# path; a program that finds its checker in its parent's command line and
# looks for the solution beside it; one that fills /tmp and /dev/shm, makes
# a SysV segment and writes wherever it can; six children of 800 MB; one
# that kills its parent, its group and everything it may; a folder whose
# name starts with a dot, names with a newline, UTF-8, a '*', '-rf' and
# '$(touch PWNED)' in them. Each is reported for what it is, the logs say
# which limit stopped a run, the table fits 80 columns, and nothing is left:
# no process, no file, no segment, no cgroup; no file outside the runs
# changes. It grades two fake exercises built here (serve two clients in a
# row; one that skips a check), so that the test does not depend on any real
# exercise's checker.
#
# Beside it, in the same minute: a small class graded one run at a time and
# four at a time (the same verdicts), and a fresh copy of the repository, in
# which nothing was built, where an ordinary user runs make exercise EX=09
# and make grade (both build what the checkers need; the sandbox holds
# without root).

# Not in make test (with exercises.bats beside it, under two minutes on a 2-core machine): make test-exercises runs this
# folder. The repository's helper.bash assumes a file directly in tests/, so
# this file takes only the harness, like the checkers do.
ROOT="$(cd "$BATS_TEST_DIRNAME/../.." && pwd)"
source "$ROOT/tests/harness.bash"
setup() { harness_setup; }
teardown() { harness_teardown; }

# ---------------------------------------------------------------- the gradings, once for the file

# setup_file builds the fake exercises and the classes in $G, starts the
# three gradings at once and keeps what they printed, their status and time.
setup_file() {
    G="$BATS_FILE_TMPDIR/g"
    mkdir -p "$G"
    # The harness's deadlines and group-killing, for these commands.
    T=$G
    BG_PIDS=()
    HARNESS_GROUPS="$G/.process-groups"
    : >"$HARNESS_GROUPS"
    # Where the runs' directories and the fresh copy go: somewhere the
    # students' user IDs (and nobody) may enter, unlike bats' own.
    GT=$(mktemp -d "${TMPDIR:-/tmp}/grade-test.XXXXXX")
    chmod 755 "$GT"
    echo "$GT" >"$G/gt"
    # A tag for this test's files, so that none of another test is mistaken for ours.
    TAG="$$-$RANDOM"
    echo "$TAG" >"$G/tag"
    printf '0x%08x\n' $((0x47000000 + RANDOM * 256 + RANDOM % 256)) >"$G/key"
    make_exercises "$G"
    hostile_class
    small_class
    tree_sum "$ROOT" >"$G/repo.before"
    tree_sum "$G/class" >"$G/class.before"
    cgroups_of_make_grade >"$G/cgroups.before"
    grade "$G/class" "$G/out" &
    # (a class of its own, with a longer deadline, for the six children of
    # 800 MB: they fill the run's 256 MB, one page fault at a time, at half a
    # processor, before the kernel's OOM killer stops them; where page faults
    # are slow, as in a virtual machine whose page tables go through the
    # hypervisor, that took longer than 5 s.)
    [ ! -d "$G/memclass" ] || grade "$G/memclass" "$G/mem" GRADE_DEADLINE="$(scaled 20)" &
    grade "$G/small" "$G/one" GRADE_JOBS=1 &
    grade "$G/small" "$G/four" GRADE_JOBS=4 &
    grade "$G/small" "$G/only02" GRADE_EXERCISES=02 &
    fresh_exercise &
    fresh_grade &
    wait
    stop_everything
    tree_sum "$ROOT" >"$G/repo.after"
    tree_sum "$G/class" >"$G/class.after"
    cgroups_of_make_grade >"$G/cgroups.after"
}

# cgroups_of_make_grade: the cgroups make grade made (that are there now), one a line.
cgroups_of_make_grade() { find /sys/fs/cgroup -maxdepth 4 -name 'make-grade.*' 2>/dev/null | sort; }

teardown_file() {
    local gt
    gt=$(cat "$BATS_FILE_TMPDIR/g/gt" 2>/dev/null) && [ -n "$gt" ] && rm -rf "$gt"
    return 0
}

# grade CLASS OUT [NAME=VALUE...]: make grade on CLASS, results in OUT, under
# a deadline (the runs that hang stop at GRADE_DEADLINE, 15 s: a failing run
# takes 4 to 7 s here on an idle machine, and three times that in CI, beside
# the other tests; a run cut short would say "timed out", not "failed"); what it printed,
# its status and the time it took go to OUT.output, OUT.status, OUT.elapsed.
grade() {
    local class=$1 out=$2 start=$SECONDS rc=0
    shift 2
    DEADLINE=$(scaled 90) with_deadline env EXERCISES_DIR="$G/exercises" GRADE_OUT="$out" GRADE_TMPDIR="$GT" \
        GRADE_DEADLINE="$(scaled 15)" OUTPUT_LIMIT_KB=1024 GRADE_DISK_MB=16 "$@" \
        make -s -C "$ROOT" grade SUBMISSIONS="$class" >"$out.output" 2>&1 || rc=$?
    echo "$rc" >"$out.status"
    echo "$((SECONDS - start))" >"$out.elapsed"
}

# tree_sum DIR: every file below DIR (what git would see, in a repository)
# with its checksum, and every link with its target.
tree_sum() {
    if [ -d "$1/.git" ] || [ -f "$1/.git" ]; then
        (cd "$1" && git ls-files -co --exclude-standard | while IFS= read -r f; do
            [ -f "$f" ] && printf '%s %s\n' "$(cksum <"$f")" "$f"
        done)
    else
        (cd "$1" && find . -type f -exec cksum {} + && find . -type l -exec ls -l {} +) | sort
    fi
}

# make_exercises DIR: DIR/exercises with 01-echo (serve two clients in a
# row; the starter is step 1, which fails) and 02-skip (a checker that skips
# one check), and a reference solution for 01 in DIR/exercises/solutions/.
make_exercises() {
    local ex="$1/exercises/01-echo"
    mkdir -p "$ex" "$1/exercises/02-skip" "$1/exercises/solutions/01-echo"
    printf '# 01. Echo twice\n\nAfter: Step 2\n' >"$ex/README.md"
    { cat "$ROOT/step1-single/server.c"; echo "/* TODO(exercise): serve every client */"; } >"$ex/server.c"
    cp "$ROOT/step2-loop/server.c" "$1/exercises/solutions/01-echo/server.c"
    printf '# 02. Skip one\n\nAfter: Step 2\n' >"$1/exercises/02-skip/README.md"
    cp "$ROOT/step2-loop/server.c" "$1/exercises/02-skip/server.c"
    echo "-pthread" >"$1/exercises/02-skip/build-flags"      # (as a threaded server's exercise has)
    # (bats would read a line of this file that starts with @test as a test
    # of its own, even inside a here-document: hence "TEST" and sed.)
    sed 's/^TEST /@test /' >"$1/exercises/02-skip/check.bats" <<EOF
#!/usr/bin/env bats
load "$ROOT/exercises/lib/checker"
TEST "a check that runs" { true; }
TEST "a check that needs a tool" { skip "needs a tool this machine lacks"; }
EOF
    sed 's/^TEST /@test /' >"$ex/check.bats" <<EOF
#!/usr/bin/env bats
# A fake exercise for tests/exercises/grade.bats: the server serves two clients in a row.
load "$ROOT/exercises/lib/checker"
DEADLINE=\$(scaled 30)     # longer than make grade's own deadline in the test, \$(scaled 15)

# bats test_tags=lesson
TEST "serves two clients in a row" {
    start_ex_server
    served one
    served two
}
EOF
}

# with_memory_cgroup: as root, where make grade can make a cgroup with a
# memory limit (cgroup v1 or v2), so that six children of 800 MB are safe to try.
with_memory_cgroup() {
    [ "$(id -u)" -eq 0 ] || return 1
    [ -w /sys/fs/cgroup/memory ] || [ -w /sys/fs/cgroup/cgroup.subtree_control ]
}

# A server that announces a port, never accepts, and ignores SIGTERM.
HANGS='#define _POSIX_C_SOURCE 200809L
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
}'

hostile_class() {
    local c="$G/class" s tag key solution
    tag=$(cat "$G/tag")
    key=$(cat "$G/key")
    solution="$ROOT/exercises/solutions/02-many-lines/server.c"
    for s in good failing broken hangs forks prints cheats same include cmdline fills killer daemon linkother linkfile; do
        mkdir -p "$c/$s/01-echo"
    done
    mkdir -p "$c/absent" "$c/nested/exercises/01-echo" "$c/deep/my-copy/exercises/01-echo" "$c/skips/02-skip" \
        "$c/.hidden/01-echo" "$c/new
line/01-echo" "$c/Zoë Ångström-Øster" "$c/abcdefghijklmnopqrstu-first" "$c/abcdefghijklmnopqrstu-second" \
        "$c/-rf" "$c/*" "$c/\$(touch PWNED)" "$c/linksol"
    cp "$ROOT/step2-loop/server.c" "$c/good/01-echo/"
    cp "$G/exercises/01-echo/server.c" "$c/same/01-echo/"                  # the starter, untouched
    cp "$ROOT/step2-loop/server.c" "$c/nested/exercises/01-echo/"         # handed in as in the repository
    cp "$ROOT/step2-loop/server.c" "$c/deep/my-copy/exercises/01-echo/"   # one level too deep
    cp "$ROOT/step2-loop/server.c" "$c/.hidden/01-echo/"
    cp "$ROOT/step2-loop/server.c" "$c/new
line/01-echo/"
    { cat "$ROOT/step2-loop/server.c"; echo "/* done */"; } >"$c/skips/02-skip/server.c"
    cp "$ROOT/step1-single/server.c" "$c/failing/01-echo/"               # serves one, then exits
    printf 'int main(void) { return x; }\n' >"$c/broken/01-echo/server.c"
    printf '%s\n' "$HANGS" >"$c/hangs/01-echo/server.c"
    # The same, then every process forks once, and each child leaves for a
    # session of its own, until fork fails; then they all wait. (A bomb that
    # spins would do the same and burn both cores of the machine meanwhile.)
    printf '%s\n' "$HANGS" | sed 's/^        pause();$/        if (fork() == 0) setsid(); else pause();/' \
        >"$c/forks/01-echo/server.c"
    printf '#include <stdio.h>\n\nint main(void)\n{\n    for (;;)\n        puts("Listening on port 0, and on, and on, and on, and on, and on, and on ...");\n}\n' \
        >"$c/prints/01-echo/server.c"
    # A submission's own checker, Makefile and lib/ are never used: these pass anything.
    cp "$ROOT/step1-single/server.c" "$c/cheats/01-echo/"
    printf '@%s "anything" { true; }\n' test >"$c/cheats/01-echo/check.bats"
    printf 'all:\n\ttrue\n' >"$c/cheats/01-echo/Makefile"
    mkdir -p "$c/cheats/01-echo/lib" "$c/cheats/lib"
    printf 'setup() { true; }\nstart_ex_server() { PORT=1; }\nserved() { true; }\n' >"$c/cheats/01-echo/lib/checker.bash"
    cp "$c/cheats/01-echo/lib/checker.bash" "$c/cheats/lib/checker.bash"
    # A correct server that first leaves a daemon behind: forked twice, in a
    # session of its own, asleep for an hour.
    {
        sed 's/^int main(int argc, char \*argv\[\])$/static int step2_main(int argc, char *argv[])/' "$ROOT/step2-loop/server.c"
        printf '\nint main(int argc, char *argv[])\n{\n    if (fork() == 0) {\n        setsid();\n        if (fork() == 0)\n            sleep(3600);\n        _exit(0);\n    }\n    return step2_main(argc, argv);\n}\n'
    } >"$c/daemon/01-echo/server.c"

    # Links: to the answers, to another student's folder, to another student's file.
    ln -s "$G/exercises/solutions" "$c/linksol/exercises"
    rmdir "$c/linkother/01-echo"
    ln -s ../good/01-echo "$c/linkother/01-echo"
    ln -s ../../good/01-echo/server.c "$c/linkfile/01-echo/server.c"
    # The whole reference solution of 02 (it serves two clients in a row too), by its full path.
    printf '#include "%s"\n' "$solution" >"$c/include/01-echo/server.c"
    # Finds its checker in an ancestor's command line, and the solution beside it.
    cat >"$c/cmdline/01-echo/server.c" <<'EOF'
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

/* The checker's path (an argument ending in /check.bats) in process PID's
 * command line, into PATH; returns PID's parent, or 0. */
static long look(long pid, char *path, size_t size)
{
    char name[64], buf[8192];
    size_t n, i;
    long ppid = 0;
    FILE *f;

    sprintf(name, "/proc/%ld/cmdline", pid);
    if ((f = fopen(name, "r")) != NULL) {
        n = fread(buf, 1, sizeof buf - 1, f);
        buf[n] = '\0';
        fclose(f);
        for (i = 0; i < n; i += strlen(buf + i) + 1)
            if (strlen(buf + i) > 11 && strcmp(buf + i + strlen(buf + i) - 11, "/check.bats") == 0 &&
                strlen(buf + i) < size)
                strcpy(path, buf + i);
    }
    sprintf(name, "/proc/%ld/stat", pid);
    if ((f = fopen(name, "r")) != NULL) {
        if (fscanf(f, "%*d %*s %*c %ld", &ppid) != 1)
            ppid = 0;
        fclose(f);
    }
    return ppid;
}

int main(void)
{
    char checker[4096] = "", solution[4200], *slash;
    long pid = getppid();
    int i;
    FILE *f;

    for (i = 0; i < 8 && pid > 1 && checker[0] == '\0'; i++)
        pid = look(pid, checker, sizeof checker);
    if (checker[0] == '\0') {
        fprintf(stderr, "found no checker\n");
        return 1;
    }
    fprintf(stderr, "found the checker in a parent's command line\n");
    *strrchr(checker, '/') = '\0';                  /* .../exercises/01-echo */
    slash = strrchr(checker, '/');
    *slash = '\0';
    sprintf(solution, "%s/solutions/%s/server.c", checker, slash + 1);
    if ((f = fopen(solution, "r")) == NULL) {
        fprintf(stderr, "solutions/%s/server.c: %s\n", slash + 1, strerror(errno));
        return 1;
    }
    fprintf(stderr, "read the solution\n");
    fclose(f);
    execlp("sh", "sh", "-c", "cc -o \"$TMPDIR/stolen\" \"$0\" && exec \"$TMPDIR/stolen\" 0", solution, (char *)NULL);
    return 1;
}
EOF
    # Fills /tmp and /dev/shm, makes a SysV segment, tries to write into the
    # repository, the class and the results; then exits.
    sed -e "s|@TAG@|$tag|g" -e "s|@KEY@|$key|g" -e "s|@ROOT@|$ROOT|g" -e "s|@CLASS@|$c|g" -e "s|@OUT@|$G/out|g" \
        >"$c/fills/01-echo/server.c" <<'EOF'
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <string.h>
#include <sys/ipc.h>
#include <sys/shm.h>

/* Writes files of 512 kB named PATH-N until the disk is full, or 256 MB. */
static void fill(const char *path)
{
    static char kb[512 << 10];
    char name[200];
    int i, full = 0;
    FILE *f;

    memset(kb, 'x', sizeof kb);
    for (i = 0; i < 512 && !full; i++) {
        sprintf(name, "%.150s-%d", path, i);
        if ((f = fopen(name, "w")) == NULL)
            return;
        full = fwrite(kb, 1, sizeof kb, f) != sizeof kb;
        full |= fclose(f) != 0;
    }
}

int main(void)
{
    const char *outside[] = { "@ROOT@/PWNED", "@ROOT@/exercises/PWNED", "@CLASS@/PWNED", "@OUT@/PWNED" };
    int id;
    size_t i;
    void *p;
    FILE *f;

    fill("/tmp/grade-hostile-@TAG@");
    fill("/dev/shm/grade-hostile-@TAG@");
    id = shmget((key_t)@KEY@, 1 << 20, IPC_CREAT | 0666);
    if (id >= 0 && (p = shmat(id, NULL, 0)) != (void *)-1)
        memset(p, 'x', 1 << 20);
    for (i = 0; i < sizeof outside / sizeof outside[0]; i++)
        if ((f = fopen(outside[i], "w")) != NULL)
            fclose(f);
    fprintf(stderr, "filled /tmp and /dev/shm, made a segment (%d)\n", id);
    return 1;
}
EOF
    # Kills its parent, its process group and everything it may.
    printf '#define _POSIX_C_SOURCE 200809L\n#include <signal.h>\n#include <unistd.h>\n\nint main(void)\n{\n    kill(getppid(), SIGKILL);\n    kill(0, SIGKILL);\n    kill(-1, SIGKILL);\n    return 1;\n}\n' \
        >"$c/killer/01-echo/server.c"
    # Six children of 800 MB each; it serves (as step 2 does) only if all six got theirs.
    if with_memory_cgroup; then
        c="$G/memclass"
        mkdir -p "$c/memory/01-echo"
        {
            sed 's/^int main(int argc, char \*argv\[\])$/static int step2_main(int argc, char *argv[])/' "$ROOT/step2-loop/server.c"
            cat <<'EOF'

int main(int argc, char *argv[])
{
    int fds[2], i;
    char ok[6];
    size_t size = (size_t)800 << 20;

    if (pipe(fds) < 0)
        return 1;
    for (i = 0; i < 6; i++)
        if (fork() == 0) {
            char *p = malloc(size);

            if (p == NULL)
                _exit(1);
            /* (the write reads the memory, or the compiler could leave memset out) */
            memset(p, 'k', size);
            if (write(fds[1], p + size / 2, 1) != 1)
                _exit(1);
            for (;;)
                pause();
        }
    close(fds[1]);
    for (i = 0; i < 6; i++)
        if (read(fds[0], ok + i, 1) != 1) {
            fprintf(stderr, "only %d of the 6 children got 800 MB\n", i);
            return 1;
        }
    return step2_main(argc, argv);
}
EOF
        } >"$c/memory/01-echo/server.c"
    fi
}

# small_class: a few ordinary submissions, for grading one run at a time
# and four at a time.
small_class() {
    local c="$G/small" s
    for s in good failing broken same linkfile nested2; do mkdir -p "$c/$s/01-echo"; done
    mkdir -p "$c/absent" "$c/skips/02-skip"
    cp "$ROOT/step2-loop/server.c" "$c/good/01-echo/"
    { cat "$ROOT/step2-loop/server.c"; echo "/* mine */"; } >"$c/nested2/01-echo/server.c"
    cp "$ROOT/step1-single/server.c" "$c/failing/01-echo/"
    printf 'int main(void) { return x; }\n' >"$c/broken/01-echo/server.c"
    cp "$G/exercises/01-echo/server.c" "$c/same/01-echo/"
    ln -s ../../good/01-echo/server.c "$c/linkfile/01-echo/server.c"
    { cat "$ROOT/step2-loop/server.c"; echo "/* done */"; } >"$c/skips/02-skip/server.c"
}

# fresh_copy NAME: the repository's files (what git sees: nothing built) in
# $GT/NAME, with a class in it: u1 hands in the reference client of 09, u2 an
# #include of 01's reference solution, u3 a server that forks without end.
# Owned by nobody, as root.
fresh_copy() {
    local f="$GT/$1"
    mkdir -p "$f/tmp"
    if git -C "$ROOT" rev-parse --git-dir >/dev/null 2>&1; then
        (cd "$ROOT" && git ls-files -co --exclude-standard | while IFS= read -r p; do
            [ -f "$p" ] && printf '%s\n' "$p"
        done | tar -cf - -T -) | tar -C "$f" -xf -
    else
        cp -R "$ROOT/." "$f" && make -s -C "$f" clean
    fi
    ls "$f/client/client" "$f/tests/peer" "$f/step2-loop/server" 2>/dev/null || true
    mkdir -p "$f/class/u1/09-client-timeout" "$f/class/u2/01-who-is-calling"
    cp "$f/exercises/solutions/09-client-timeout/client.c" "$f/class/u1/09-client-timeout/"
    printf '#include "%s"\n' "$f/exercises/solutions/01-who-is-calling/server.c" >"$f/class/u2/01-who-is-calling/server.c"
    # u3: a server that forks until it cannot, waits 3 s and gives up.
    mkdir -p "$f/class/u3/01-who-is-calling"
    printf '#define _POSIX_C_SOURCE 200809L\n#include <unistd.h>\n\nint main(void)\n{\n    while (fork() >= 0)\n        ;\n    sleep(3);\n    return 1;\n}\n' \
        >"$f/class/u3/01-who-is-calling/server.c"
    [ "$(id -u)" -ne 0 ] || chown -R 65534:65534 "$f"
}

# as_user DIR CMD...: CMD as nobody (as root; else as ourselves), with a
# clean environment whose home and TMPDIR are in DIR.
as_user() {
    local f=$1 as=()
    shift
    [ "$(id -u)" -ne 0 ] || as=(setpriv --reuid=65534 --regid=65534 --clear-groups --)
    # (without bats' own libexec folder, where `bats` is not the command)
    DEADLINE=$(scaled 90) with_deadline env -i PATH="$(printf '%s\n' "$PATH" | tr ':' '\n' |
        grep -vxF -- "${BATS_LIBEXEC:-/nowhere}" | paste -sd: -)" HOME="$f" TMPDIR="$f/tmp" TIME_SCALE="$TIME_SCALE" \
        ${as[@]+"${as[@]}"} "$@"
}

# fresh_exercise: make exercise EX=09 in a fresh copy, as an ordinary user.
fresh_exercise() {
    local f="$GT/fresh-exercise" rc=0
    fresh_copy fresh-exercise >"$G/fresh-exercise.built" 2>&1
    cp "$f/exercises/solutions/09-client-timeout/client.c" "$f/exercises/09-client-timeout/client.c"
    as_user "$f" make -s -C "$f" exercise EX=09 >"$G/fresh-exercise.output" 2>&1 || rc=$?
    echo "$rc" >"$G/fresh-exercise.status"
}

# fresh_grade: make grade on the class of a fresh copy, as an ordinary user.
fresh_grade() {
    local f="$GT/fresh-grade" rc=0
    fresh_copy fresh-grade >"$G/fresh-grade.built" 2>&1
    as_user "$f" make -s -C "$f" grade SUBMISSIONS="$f/class" JOBS=3 >"$G/fresh-grade.output" 2>&1 || rc=$?
    echo "$rc" >"$G/fresh-grade.status"
    cp "$f/build/grade/grades.csv" "$G/fresh-grade.csv" 2>/dev/null
    cp "$f/build/grade/logs/u2/01.txt" "$G/fresh-grade.u2.log" 2>/dev/null
    cp "$f/build/grade/logs/u3/01.txt" "$G/fresh-grade.u3.log" 2>/dev/null
    cp "$f/build/grade/logs/u1/09.txt" "$G/fresh-grade.u1.log" 2>/dev/null
}

# ---------------------------------------------------------------- reading the results

# failed_checks LOG: the checks that failed in a run's LOG, each with its
# expected/got line, in one line (or the end of the log, if none failed).
failed_checks() {
    if grep -q '^  FAIL' "$1" 2>/dev/null; then
        excerpt "$(grep -A1 '^  FAIL' "$1")"
    else
        excerpt_file "$1"
    fi
}

# graded [NAME]: what the grading NAME (the hostile class by default) did:
# sets status, output and elapsed; fails unless make grade exited 0.
graded() {
    G="$BATS_FILE_TMPDIR/g"
    local name=${1:-out}
    status=$(cat "$G/$name.status")
    output=$(cat "$G/$name.output")
    [ "$status" -eq 0 ] || fail_because "expected make grade to exit 0, got $status: $(excerpt "$output")"
}

# grade_is STUDENT RESULT [RESULT02]: the CSV's row for STUDENT says RESULT
# for 01, and RESULT02 (missing unless said) for 02.
grade_is() {
    local row
    row=$(grep "^$1," "${RESULTS:-$G/out}/grades.csv")
    [ "$row" = "$1,$2,${3:-missing}" ] ||
        fail_because "expected grades.csv's row for $1 '$1,$2,${3:-missing}', got: '$row'; $1's log for 01: $(failed_checks "${RESULTS:-$G/out}/logs/$1/01.txt")"
}

# table_row STUDENT: the table's row for STUDENT, from make grade's output.
table_row() { printf '%s\n' "$output" | grep "^$1 "; }

# log_has STUDENT TEXT: STUDENT's log for 01 has TEXT in it.
log_has() {
    grep -qF -- "$2" "${RESULTS:-$G/out}/logs/$1/01.txt" ||
        fail_because "expected $1's log to say '$2', got: $(excerpt_file "${RESULTS:-$G/out}/logs/$1/01.txt")"
}

# run_users: the user IDs the runs ran as (as root), from the logs.
run_users() { cat "$G"/out/logs/*/0[12].txt "$G"/mem/logs/*/0[12].txt "$G"/one/logs/*/0[12].txt 2>/dev/null | sed -n 's/^== as user \([0-9][0-9]*\)$/\1/p' | sort -u; }

# ---------------------------------------------------------------- the tests

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
    grade_is killer failed
    grade_is daemon passed
    grade_is skips missing "skipped: needs a tool this machine lacks"
    grep -q '^== build: .* 02-skip/server.c -pthread$' "$G/out/logs/skips/02.txt" ||
        fail_because "expected 02's build-flags (-pthread) on the compiler's command line, got: $(excerpt "$(grep '^== build' "$G/out/logs/skips/02.txt")")"
    # The table on stdout says the same, in short.
    expect_same "the table's row for good" "good                 P  -  1/1" "$(table_row good)"
    expect_same "the table's row for same" "same                 U  -  0/1" "$(table_row same)"
    expect_same "the table's row for skips" "skips                -  S  0/1" "$(table_row skips)"
    # What each run printed is kept, in plain words.
    grep -q "error: .x. undeclared" "$G/out/logs/broken/01.txt" ||
        fail_because "expected the compiler's message in broken's log, got: $(excerpt_file "$G/out/logs/broken/01.txt")"
    log_has failing "expected the client sending 'two' to print 'I got your message'"
}

@test "make grade refuses a symbolic link anywhere on the way to a student's file (folder, exercise folder, file) and shows it as L" {
    graded
    grade_is linksol link
    grade_is linkother link
    grade_is linkfile link
    log_has linksol "linksol/exercises is a symbolic link; a link is not graded"
    log_has linkother "linkother/01-echo is a symbolic link"
    log_has linkfile "linkfile/01-echo/server.c is a symbolic link"
    expect_same "the table's row for linkfile" "linkfile             L  -  0/1" "$(table_row linkfile)"
    [[ $output == *"L a link instead of a folder or file (not graded)"* ]] ||
        fail_because "expected the legend to explain L, got: $(excerpt "$(printf '%s\n' "$output" | grep -A3 '^P passed')")"
}

@test "make grade's runs cannot see the answers: an #include of a reference solution by its full path does not build, and the solution beside the checker is not there" {
    graded
    if [[ $output == *"missing here: a sandbox"* ]]; then
        skip "no sandbox here: $(printf '%s\n' "$output" | grep 'missing here')"
    fi
    grade_is include "does not build"
    log_has include "exercises/solutions/02-many-lines/server.c: No such file or directory"
    grade_is cmdline failed
    log_has cmdline "found the checker in a parent's command line"
    log_has cmdline "solutions/01-echo/server.c: No such file or directory"
}

@test "make grade's logs say which limit stopped a run: processes, memory, output, disk" {
    graded
    if [[ $output == *"missing here: a sandbox"* ]]; then
        skip "no sandbox here: $(printf '%s\n' "$output" | grep 'missing here')"
    fi
    log_has forks "process limit (64 processes"
    log_has prints "output limit (1024 kB per file) reached: server.out"
    grade_is fills failed
    log_has fills "disk limit (16 MB in /tmp) reached"
    log_has fills "disk limit (16 MB in /dev/shm) reached"
    if [ -d "$G/memclass" ]; then
        graded mem
        [[ $output != *"missing here: a cgroup"* ]] ||
            fail_because "expected make grade, as root here, to make a cgroup, got: $(printf '%s\n' "$output" | grep 'missing here')"
        RESULTS=$G/mem grade_is memory failed
        RESULTS=$G/mem log_has memory "memory limit (256 MB for the whole run) reached"
    fi
}

@test "make grade leaves nothing behind: no process, file in /tmp or /dev/shm, SysV segment or cgroup, and no file outside the runs changes" {
    graded
    local left tag key gt uid
    # (How long the class took is make grade-demo's to measure, not a test's:
    # graded already failed if make grade did not end by itself in time.)
    gt=$(cat "$G/gt")
    left=$(ls -A "$gt" | grep -v '^fresh-' || true)
    [ -z "$left" ] || fail_because "expected make grade to remove its directories, found: $(excerpt "$left")"
    if [ "$(id -u)" -eq 0 ]; then
        [ "$(run_users | grep -c .)" -ge 10 ] ||
            fail_because "expected each run (as root) to run as a user ID of its own, got: $(excerpt "$(run_users)")"
        for uid in $(run_users); do
            left=$(ps -A -o uid= -o pid= -o stat= -o args= | awk -v u="$uid" '$1 == u && $3 !~ /^Z/')
            [ -z "$left" ] || fail_because "expected no process of user $uid after make grade, found: $(excerpt "$left")"
        done
    fi
    # (the directories go to awk through its environment, or awk would find itself)
    left=$(ps -A -o pid= -o args= | G_DIR="$G/" T_DIR="$gt/" awk 'index($0, ENVIRON["G_DIR"]) || index($0, ENVIRON["T_DIR"])')
    [ -z "$left" ] || fail_because "expected no process running from the class's directories after make grade, found: $(excerpt "$left")"
    tag=$(cat "$G/tag")
    left=$(ls -d /tmp/grade-hostile-"$tag"* /dev/shm/grade-hostile-"$tag"* 2>/dev/null || true)
    [ -z "$left" ] || fail_because "expected no file of the runs in /tmp or /dev/shm, found: $(excerpt "$left")"
    key=$(cat "$G/key")
    if command -v ipcs >/dev/null; then
        left=$(ipcs -m | grep -i "^$key " || true)
        [ -z "$left" ] || fail_because "expected no SysV segment with key $key after make grade, found: $(excerpt "$left")"
    fi
    # (a make grade that was running before these began may still be running)
    left=$(comm -13 "$G/cgroups.before" "$G/cgroups.after")
    [ -z "$left" ] || fail_because "expected make grade to remove its cgroups, found: $(excerpt "$left")"
    left=$(diff "$G/repo.before" "$G/repo.after" || true)
    [ -z "$left" ] || fail_because "expected no file of the repository to change, got: $(excerpt "$left")"
    left=$(diff "$G/class.before" "$G/class.after" || true)
    [ -z "$left" ] || fail_because "expected no file of the class to change, got: $(excerpt "$left")"
    left=$(find "$ROOT" "$G" -name 'PWNED*' 2>/dev/null || true)
    [ -z "$left" ] || fail_because "expected no PWNED file anywhere, found: $(excerpt "$left")"
    left=$(find "$G/out" -type f -size +200k)
    [ -z "$left" ] || fail_because "expected every log to stay small, found: $(excerpt "$left")"
    [ "${#output}" -lt 30000 ] || fail_because "expected make grade to print a short table, it printed ${#output} bytes"
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

@test "make grade names a student folder whose name starts with a dot, and does not grade it" {
    graded
    [[ $output == *"warning: .hidden: a folder whose name starts with a dot is not graded"* ]] ||
        fail_because "expected a warning naming .hidden, got: $(excerpt "$(printf '%s\n' "$output" | grep -i warning)")"
    ! grep -q '^\.hidden' "$G/out/grades.csv" || fail_because "expected no row for .hidden in grades.csv, got: $(grep '^\.hidden' "$G/out/grades.csv")"
}

@test "make grade's logs name the student's file as the student knows it, not the run's directories" {
    graded
    grep -q '^01-echo/server.c:1:[0-9]*: error' "$G/out/logs/broken/01.txt" ||
        fail_because "expected the compiler's message to start '01-echo/server.c:1:', got: $(excerpt_file "$G/out/logs/broken/01.txt")"
    local gt found
    gt=$(cat "$G/gt")
    found=$(grep -l -e "$gt/" -e '/grade/in/' "$G"/out/logs/*/*.txt || true)
    [ -z "$found" ] || fail_because "expected no log to name the run's directories ($gt, /grade/in), found them in: $(excerpt "$found")"
}

@test "make grade's table fits 80 columns, with no trailing spaces, a legend and a total per student" {
    graded
    local table long
    table=$(cat "$G/out/grades.txt")
    long=$(printf '%s\n' "$table" | LC_ALL=C tr -d '\200-\277' | awk 'length($0) > 80')
    [ -z "$long" ] || fail_because "expected every line of grades.txt within 80 characters, got: $(excerpt "$long")"
    long=$(printf '%s\n' "$table" | grep -n ' $' || true)
    [ -z "$long" ] || fail_because "expected no trailing spaces in grades.txt, got: $(excerpt "$long")"
    expect_same "the table's head" "student              01 02 total" "$(head -n 1 "$G/out/grades.txt")"
    [[ $table == *"P passed, F failed, U unchanged"*"S skipped"*"- missing"* ]] ||
        fail_because "expected the legend under the table, got: $(excerpt "$table")"
    expect_same "the table's row for absent" "absent               -  -  0/0" "$(printf '%s\n' "$table" | grep '^absent ')"
}

@test "make grade's table pads and cuts names by characters, keeps two long names apart, and keeps a name with a newline on one row" {
    graded
    local table
    table=$(cat "$G/out/grades.txt")
    expect_same "the row for Zoë Ångström-Øster" "Zoë Ångström-Øster   -  -  0/0" "$(printf '%s\n' "$table" | grep '^Zoë')"
    expect_same "the rows of the two long names" "abcdefghijklmnopqr~1 -  -  0/0
abcdefghijklmnopqr~2 -  -  0/0" "$(printf '%s\n' "$table" | grep '^abcdef')"
    expect_same "the row for new<newline>line" "new?line             P  -  1/1" "$(printf '%s\n' "$table" | grep '^new')"
    expect_same "the row for -rf" "-rf                  -  -  0/0" "$(printf '%s\n' "$table" | grep -e '^-rf')"
    expect_same "the row for *" "*                    -  -  0/0" "$(printf '%s\n' "$table" | grep -e '^\*')"
    expect_same "the row for \$(touch PWNED)" "\$(touch PWNED)       -  -  0/0" "$(printf '%s\n' "$table" | grep -e '^\$')"
    # The CSV keeps the names as they are.
    grep -q '^"new$' "$G/out/grades.csv" && grep -q '^line",passed,missing$' "$G/out/grades.csv" ||
        fail_because "expected the CSV to keep the newline in \"new<newline>line\", got: $(excerpt "$(grep -A1 '^"new' "$G/out/grades.csv")")"
}

@test "make grade prints each run's verdict as it goes, and at the end the time it took" {
    graded
    local lines
    lines=$(printf '%s\n' "$output" | grep -c '^ *[0-9]*/[0-9]*  .* 0[12]: ' || true)
    [ "$lines" -ge 40 ] || fail_because "expected a line per run (40 and more), got $lines: $(excerpt "$(printf '%s\n' "$output" | grep '/')")"
    [[ $output == *"  good 01: passed ("* ]] || fail_because "expected a progress line 'good 01: passed (Ns)', got: $(excerpt "$(printf '%s\n' "$output" | grep ' good ')")"
    [[ $output == *"graded "*" students x 2 exercises in "*" min "*" s, "*" at a time"* ]] ||
        fail_because "expected the total time at the end, got: $(excerpt "$(printf '%s\n' "$output" | tail -n 2)")"
}

@test "make grade gives the same verdicts one run at a time and four at a time" {
    graded one
    graded four
    expect_same "grades.csv with GRADE_JOBS=4 (as with GRADE_JOBS=1)" "$(cat "$G/one/grades.csv")" "$(cat "$G/four/grades.csv")"
    expect_same "grades.txt with GRADE_JOBS=4 (as with GRADE_JOBS=1)" "$(cat "$G/one/grades.txt")" "$(cat "$G/four/grades.txt")"
    expect_same "good's row" "good,passed,missing" "$(grep '^good,' "$G/one/grades.csv")"
    expect_same "linkfile's row" "linkfile,link,missing" "$(grep '^linkfile,' "$G/one/grades.csv")"
    [[ $(cat "$G/one.output") == *"1 at a time"* ]] && [[ $(cat "$G/four.output") == *"4 at a time"* ]] ||
        fail_because "expected the two gradings to run 1 and 4 at a time, got: $(excerpt "$(grep 'at a time' "$G/one.output" "$G/four.output")")"
}

@test "make grade with GRADE_EXERCISES (make grade EX=...) grades only the exercises it names" {
    graded only02
    expect_same "grades.csv's header with GRADE_EXERCISES=02" "student,02-skip" "$(head -1 "$G/only02/grades.csv")"
    expect_same "good's row with GRADE_EXERCISES=02" "good,missing" "$(grep '^good,' "$G/only02/grades.csv")"
}

# row_of STUDENT NN RESULT: the CSV row of a student who handed in exercise NN
# alone, with RESULT: every other exercise of the repository is missing.
row_of() {
    local d
    printf '%s' "$1"
    for d in "$ROOT"/exercises/[0-9][0-9]-*/; do
        case $(basename "$d") in "$2"-*) printf ',%s' "$3" ;; *) printf ',missing' ;; esac
    done
}

@test "on a fresh copy where nothing was built, as an ordinary user, make exercise EX=09 builds what its checker needs and passes the reference client" {
    G="$BATS_FILE_TMPDIR/g"
    expect_same "the programs built in the fresh copy before make exercise" "" "$(cat "$G/fresh-exercise.built")"
    expect_same "make exercise EX=09's status" 0 "$(cat "$G/fresh-exercise.status")"
    grep -q '^09: passed, all [0-9]* checks' "$G/fresh-exercise.output" ||
        fail_because "expected '09: passed, all N checks', got: $(excerpt_file "$G/fresh-exercise.output")"
}

@test "on a fresh copy, as an ordinary user, make grade builds what the checkers need, keeps the answers out of sight, stops a fork bomb, and says in one line what is missing" {
    G="$BATS_FILE_TMPDIR/g"
    local first
    output=$(cat "$G/fresh-grade.output")
    first=$(printf '%s\n' "$output" | head -n 1)
    expect_same "the programs built in the fresh copy before make grade" "" "$(cat "$G/fresh-grade.built")"
    expect_same "make grade's status" 0 "$(cat "$G/fresh-grade.status")"
    # u1 handed in 09 alone: every other exercise of the repository is missing.
    [ "$(grep '^u1,' "$G/fresh-grade.csv")" = "$(row_of u1 09 passed)" ] ||
        fail_because "expected u1's row '$(row_of u1 09 passed)', got '$(grep '^u1,' "$G/fresh-grade.csv")'; u1's log for 09: $(failed_checks "$G/fresh-grade.u1.log")"
    [[ $output == *", 3 at a time on "* ]] || fail_because "expected make grade JOBS=3 to run 3 at a time, got: $(excerpt "$(printf '%s\n' "$output" | grep 'at a time')")"
    [[ $first == "make grade: missing here: "*"a cgroup (only root makes one here)"*"; a user ID of its own for student code (not root)"* ]] ||
        fail_because "expected make grade's first line to name what an ordinary user lacks, got: $(excerpt "$first")"
    [[ $first != *"a sandbox"* ]] || skip "no sandbox for an ordinary user here: $first"
    expect_same "u2's row (an #include of the reference solution)" "$(row_of u2 01 'does not build')" "$(grep '^u2,' "$G/fresh-grade.csv")"
    grep -q 'solutions/01-who-is-calling/server.c: No such file or directory' "$G/fresh-grade.u2.log" ||
        fail_because "expected u2's log to say the solution is not there, got: $(excerpt_file "$G/fresh-grade.u2.log")"
    # Without a cgroup, the limit on processes counts the run's own (its user namespace's).
    expect_same "u3's row (a fork bomb)" "$(row_of u3 01 failed)" "$(grep '^u3,' "$G/fresh-grade.csv")"
    grep -q '^process limit (64 processes for the program) reached' "$G/fresh-grade.u3.log" ||
        fail_because "expected u3's log to name the process limit, got: $(excerpt_file "$G/fresh-grade.u3.log")"
}
