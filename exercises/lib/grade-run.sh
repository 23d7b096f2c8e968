#!/usr/bin/env bash
# exercises/lib/grade-run.sh - one run of make grade: build one student's file
# and run the exercise's checker on it. grade.sh starts it inside the run's
# sandbox (bwrap), where it sees only what the run needs; where there is no
# sandbox, grade.sh starts it directly, with the same directories elsewhere.
#
# Its settings come from the environment (grade.sh sets them):
#   GR_STARTER      server.c or client.c
#   GR_EXDIR        the exercise's folder (its check.bats is the checker)
#   GR_IN           a folder with the student's file (read only to the program)
#   GR_OUT          where this script writes what the run printed:
#                     build.log build.rc checks.tap checks.rc limits
#   GR_WORK         the student's own folder: the program and its working directory
#   GR_TMP          TMPDIR for the checker and the program
#   GR_SHM          a private /dev/shm to look at afterwards (in the sandbox only)
#   GR_UID          as root: the user ID the build and the program run as
#   GR_CG_PROCS     files to write the program's PID into: the cgroups that
#                   limit the program's processes together (empty: none)
#   GR_NPROC GR_MEMORY_KB OUTPUT_LIMIT_KB GR_DISK_MB   the limits
#   GR_BUILD_DEADLINE GR_DEADLINE GR_BUILD_FLAGS   and, from common.bash,
#   CC WARN EX_WERROR CFLAGS BATS TIME_SCALE
# Written for bash 3.2 and later (macOS still ships 3.2).
set -u

source "$(dirname "$0")/common.bash"

starter=$GR_STARTER
prog="$GR_WORK/${starter%.c}"
bin="$GR_TMP/.grade"          # the wrapper: root's, so the program cannot change it
mkdir -p "$GR_WORK" "$GR_TMP" "$bin"
chmod 755 "$bin"
: >"$GR_OUT/limits"
AS_STUDENT=()
if [ -n "${GR_UID:-}" ]; then
    chown "$GR_UID:$GR_UID" "$GR_WORK"
    AS_STUDENT=(setpriv --reuid="$GR_UID" --regid="$GR_UID" --clear-groups --)
fi

# threads_now: the tasks (processes and threads) that count against the
# process limit of a program this user starts now. Inside the sandbox, as an
# ordinary user, that is the run's own (since Linux 5.14 the limit counts per
# user namespace); with no sandbox, all of the user's on the machine.
threads_now() {
    if [ -n "${GR_SHM:-}" ]; then
        cat /proc/[0-9]*/status 2>/dev/null | awk '/^Threads:/ { n += $2 } END { print n + 0 }'
    else
        # (ps -L, one line a thread, is Linux's; elsewhere, one line a process)
        { ps -A -L -o uid= 2>/dev/null || ps -A -o uid=; } | awk -v u="$(id -u)" '$1 == u { n++ } END { print n + 0 }'
    fi
}

# ---------------------------------------------------------------- build

# The compiler runs under the limit on memory per process and, as root, as
# the student's user ID, with at most GR_NPROC processes.
build_limits='ulimit -v "$0" 2>/dev/null; [ -z "$1" ] || ulimit -u "$1" || exit 126; shift; exec "$@"'
rc=0
# shellcheck disable=SC2086 # the flags are lists of words on purpose
(cd "$GR_WORK" && LOG_LIMIT_KB=1024 TMPDIR="$GR_WORK" run_contained "$GR_BUILD_DEADLINE" "$GR_OUT/build.log" \
    bash -c "$build_limits" "$GR_MEMORY_KB" "${GR_UID:+$GR_NPROC}" ${AS_STUDENT[@]+"${AS_STUDENT[@]}"} \
    $CC $WARN $EX_WERROR $CFLAGS -o "$prog" "$GR_IN/$starter" $GR_BUILD_FLAGS) || rc=$?
[ "$rc" -ne 0 ] || [ -x "$prog" ] || rc=1
echo "$rc" >"$GR_OUT/build.rc"
[ "$rc" -eq 0 ] || exit 0

# ---------------------------------------------------------------- the wrapper

# $bin/run-student is what the checker starts as $EX_PROG: it puts the
# program into the run's cgroups, sets the limits and execs the program, so
# that the checker's process is the student's program itself (same PID).
# The limit on processes: with a cgroup, the cgroup's (RLIMIT_NPROC, twice
# as high, only backs it up); as root without one, RLIMIT_NPROC for the
# program's own user ID; as an ordinary user, RLIMIT_NPROC above what this
# user runs already (noted in $bin/nproc for the census below).
{
    echo '#!/usr/bin/env bash'
    echo '# written by make grade (exercises/lib/grade-run.sh): the program, under the limits'
    for f in ${GR_CG_PROCS:-}; do
        printf 'echo $$ >%q || exit 126\n' "$f"
    done
    if [ -n "${GR_CG_PROCS:-}" ]; then
        printf 'nproc=%s\n' "$((GR_NPROC * 2))"
    elif [ -n "${GR_UID:-}" ]; then
        printf 'nproc=%s\n' "$GR_NPROC"
    else
        printf '%s\n' "$(declare -f threads_now)"
        printf 'GR_SHM=%q\n' "${GR_SHM:-}"
        printf 'nproc=$(($(threads_now) + %s))\n' "$GR_NPROC"
        printf 'echo "$nproc" >%q 2>/dev/null\n' "$bin/nproc"
    fi
    printf 'ulimit -f %s && ulimit -u "$nproc" || exit 126\n' "$OUTPUT_LIMIT_KB"
    printf 'ulimit -v %s 2>/dev/null\n' "$GR_MEMORY_KB"
    printf 'exec'
    [ ${#AS_STUDENT[@]} -eq 0 ] || printf ' %q' "${AS_STUDENT[@]}"
    printf ' %q "$@"\n' "$prog"
} >"$bin/run-student"
chmod 755 "$bin/run-student"

# ---------------------------------------------------------------- checks

# Without a cgroup to count forks that failed, a sampler notes the most
# processes the program had at once (the census below compares it with the
# limit).
sampler=
if [ -z "${GR_CG_PROCS:-}" ]; then
    (
        peak=0
        while :; do
            if [ -n "${GR_UID:-}" ]; then
                n=$(ps -A -L -o uid= | awk -v u="$GR_UID" '$1 == u { n++ } END { print n + 0 }')
            else
                n=$(threads_now)
            fi
            if [ "$n" -gt "$peak" ]; then peak=$n; echo "$peak" >"$bin/peak"; fi
            sleep 0.5
        done
    ) </dev/null >/dev/null 2>&1 &
    sampler=$!
fi

rc=0
(cd "$GR_WORK" && clean_bats_env && TMPDIR="$GR_TMP" run_contained "$GR_DEADLINE" "$GR_OUT/checks.tap" \
    env EX_PROG="$bin/run-student" EX_SRC="$GR_IN/$starter" TMPDIR="$GR_TMP" HOME="$GR_WORK" \
    "$BATS" --tap --no-tempdir-cleanup "$GR_EXDIR/check.bats") || rc=$?
echo "$rc" >"$GR_OUT/checks.rc"
[ -z "$sampler" ] || kill "$sampler" 2>/dev/null

# ---------------------------------------------------------------- which limit stopped it

# limit_reached TEXT: one line in the log.
limit_reached() { printf '%s\n' "$*" >>"$GR_OUT/limits"; }

# Output: a file that reached OUTPUT_LIMIT_KB was cut there (SIGXFSZ). bats
# kept its files (--no-tempdir-cleanup) for this look; they go with the run.
dirs=("$GR_TMP" "$GR_WORK")
[ -z "${GR_SHM:-}" ] || dirs+=("$GR_SHM")
cut_files=$(LOG_LIMIT_KB=64 run_contained 5 "$bin/census" \
    find "${dirs[@]}" -xdev -type f -size +$((OUTPUT_LIMIT_KB - 1))k && head -n 3 "$bin/census")
if [ -n "$cut_files" ]; then
    limit_reached "output limit (${OUTPUT_LIMIT_KB} kB per file) reached: $(printf '%s\n' "$cut_files" |
        sed 's|.*/||' | awk 'NR > 1 { printf ", " } { printf "%s", $0 }') cut there"
fi
# Disk: the sandbox's /tmp and /dev/shm are GR_DISK_MB each.
if [ -n "${GR_SHM:-}" ]; then
    for d in "$GR_TMP" "$GR_SHM"; do
        avail=$(df -Pk "$d" 2>/dev/null | awk 'NR == 2 { print $4 }')
        [ -z "$avail" ] || [ "$avail" -gt 64 ] ||
            limit_reached "disk limit (${GR_DISK_MB} MB in $d) reached: $d was full"
    done
fi
# Processes, without a cgroup: the sampler's peak against the limit.
if [ -z "${GR_CG_PROCS:-}" ] && [ -s "$bin/peak" ]; then
    peak=$(cat "$bin/peak")
    limit=$GR_NPROC
    [ ! -s "$bin/nproc" ] || limit=$(cat "$bin/nproc")
    [ "$peak" -lt $((limit - 1)) ] ||
        limit_reached "process limit ($GR_NPROC processes for the program) reached: the run had $peak processes and threads at once, as many as it may"
fi
exit 0
