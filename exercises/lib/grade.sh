#!/usr/bin/env bash
# exercises/lib/grade.sh - what `make grade SUBMISSIONS=DIR` runs.
#
# DIR holds one folder per student, each with any of the exercise folders,
# directly or in a folder exercises/ (as in the repository):
#   DIR/alice/03-silent-client-timeout/server.c
#   DIR/bob/exercises/09-client-timeout/client.c
# For every student and every exercise it takes only the student's server.c
# (or client.c), builds it and runs the repository's checker on it (never
# anything else from the submission), GRADE_JOBS runs at a time. The result
# is one of passed, failed, unchanged (the starter, byte for byte), does not
# build, timed out, skipped: REASON (no check failed, one could not run
# here), link (a symbolic link on the way to the file; not graded) or
# missing. It prints a line per run as it goes, then a table that fits 80
# columns (one letter per result) and the time it took, and writes the
# results in full as CSV; what each run printed is kept beside it, with the
# student's own file names:
#   $GRADE_OUT/grades.txt             the table (GRADE_OUT defaults to build/grade)
#   $GRADE_OUT/grades.csv             the results in full
#   $GRADE_OUT/logs/STUDENT/NN.txt    the compiler's messages, the checks, the limits reached
#
# Every submission is treated as hostile. On Linux each run (the build and the
# checks) happens in a sandbox of its own made by bwrap (bubblewrap): its own
# network (loopback only), process, IPC and mount namespaces, in which the
# run sees the system's programs and libraries, the student's file, the
# checker and what the checker names from the repository (ex_needs), and
# nothing else: not the rest of the repository (the answers), not the class,
# not the results. Its /tmp and /dev/shm are its own (GRADE_DISK_MB each),
# and everything in it ends with the run. As root the build and the program
# run as a user ID of their own, and a cgroup limits the memory
# (GRADE_MEMORY_MB), the processes (GRADE_NPROC) and the processor time
# (GRADE_CPU_PERCENT) of the program's processes together; each run has deadlines (GRADE_BUILD_DEADLINE,
# GRADE_DEADLINE), each file the program writes is capped (OUTPUT_LIMIT_KB),
# and each process's memory (GRADE_MEMORY_KB). What is missing on this machine
# (no bwrap, no user namespaces, no cgroup, not root) is said in one line at
# the top, and the grading goes on without it. See exercises/TEACHING.md.
# Written for bash 3.2 and later (macOS still ships 3.2).
set -u

source "$(dirname "$0")/common.bash"

GRADE_NPROC="${GRADE_NPROC:-64}"                  # processes and threads of the program, together
GRADE_MEMORY_MB="${GRADE_MEMORY_MB:-256}"         # memory of the program's processes together (cgroup)
GRADE_MEMORY_KB="${GRADE_MEMORY_KB:-1048576}"     # address space of each process
GRADE_CPU_PERCENT="${GRADE_CPU_PERCENT:-50}"      # of one processor, for the program's processes together (cgroup)
GRADE_DISK_MB="${GRADE_DISK_MB:-64}"              # the run's /tmp, and its /dev/shm
GRADE_SOURCE_KB="${GRADE_SOURCE_KB:-512}"         # a larger "source" is not built
export OUTPUT_LIMIT_KB="${OUTPUT_LIMIT_KB:-4096}"
GRADE_OUT="${GRADE_OUT:-$REPO/build/grade}"
# Where each run's directory goes; as root, the student's user must be able
# to enter it when there is no sandbox (a bats test's own directory is not a
# place for it).
GRADE_TMPDIR="${GRADE_TMPDIR:-${TMPDIR:-/tmp}}"
GRADE_SANDBOX="${GRADE_SANDBOX:-auto}"            # none: grade without the sandbox and the cgroup
BATS="${BATS:-bats}"

say() { printf '%s\n' "$*" >&2; }
die() { say "make grade: $*"; exit 2; }

SUBMISSIONS=${1:-}
[ -n "$SUBMISSIONS" ] || die "say where the submissions are: make grade SUBMISSIONS=DIR (one folder per student in DIR)"
[ -d "$SUBMISSIONS" ] || die "'$SUBMISSIONS' is not a directory"
SUBMISSIONS=$(cd "$SUBMISSIONS" && pwd)
command -v "$BATS" >/dev/null 2>&1 || die "needs bats-core (Debian: apt-get install bats; macOS: brew install bats-core)"
START=$SECONDS
clean_bats_env      # (when a test runs make grade: the runs' bats must be the real one)

# cpus: how many processors this machine has.
cpus() {
    local n
    n=$(getconf _NPROCESSORS_ONLN 2>/dev/null || sysctl -n hw.ncpu 2>/dev/null)
    case $n in '' | *[!0-9]* | 0) n=1 ;; esac
    echo "$n"
}
CPUS=$(cpus)
# GRADE_JOBS runs at a time (JOBS= on make's command line sets it too). Much
# of a run is waiting for a deadline or a reply, not computing: three times
# the number of processors keeps them busy (a class of 30 x 9 on 2 processors:
# 7 min 36 s with 4 at a time, 5 min 13 s with 6; exercises/TEACHING.md).
GRADE_JOBS="${GRADE_JOBS:-$((3 * CPUS))}"
case $GRADE_JOBS in '' | *[!0-9]* | 0) die "GRADE_JOBS must be a whole number from 1 up, not '$GRADE_JOBS'" ;; esac

# The checkers' short deadlines are multiplied by TIME_SCALE (tests/harness.bash).
# make grade measures its own (1 plus the load per processor, as the harness
# does, or the TIME_SCALE it was given) and multiplies it by the number of
# runs it starts per processor (rounded up): with 6 at a time on 2
# processors, a checker's 3 s are 3 * 3 = 9 s on a quiet machine.
case ${TIME_SCALE:-} in
    '' | *[!0-9]* | 0) BASE_SCALE=$(unset TIME_SCALE; source "$REPO/tests/harness.bash" && echo "$TIME_SCALE") ;;
    *) BASE_SCALE=$TIME_SCALE ;;
esac
JOB_FACTOR=$(((GRADE_JOBS + CPUS - 1) / CPUS))
export TIME_SCALE=$((BASE_SCALE * JOB_FACTOR))
# The deadline of a whole run is there for a program that hangs, not to
# time a correct one: on a busy machine (by the load when make grade
# starts) it is longer.
GRADE_DEADLINE="${GRADE_DEADLINE:-$((60 * BASE_SCALE))}"
GRADE_BUILD_DEADLINE="${GRADE_BUILD_DEADLINE:-$((30 * BASE_SCALE))}"

# ---------------------------------------------------------------- what protects the runs here

MISSING=()      # what is missing on this machine, said in one line at the top

ROOT_MODE=
if [ "$(id -u)" -eq 0 ]; then
    command -v setpriv >/dev/null 2>&1 ||
        die "running as root, and setpriv (util-linux) is missing to run student code as another user; install util-linux or run make grade as an ordinary user"
    ROOT_MODE=1
fi

# The sandbox: bwrap, with the system's programs and libraries read-only and
# nothing else of this machine's files. BWRAP holds what every run shares.
SANDBOX=
BWRAP=()
bwrap_base() {
    local d real prefix
    BWRAP=(bwrap --unshare-net --unshare-pid --unshare-ipc --unshare-uts --hostname grade --die-with-parent)
    # As an ordinary user bwrap needs a user namespace (in which the user is
    # itself); as root it needs none, and the program switches to a user ID
    # of its own inside.
    [ -n "$ROOT_MODE" ] || BWRAP+=(--unshare-user)
    for d in /usr /bin /sbin /lib /lib32 /lib64 /libx32 /etc; do
        if [ -L "$d" ]; then
            BWRAP+=(--symlink "$(readlink "$d")" "$d")
        elif [ -d "$d" ]; then
            BWRAP+=(--ro-bind "$d" "$d")
        fi
    done
    # bats or the compiler installed elsewhere (say, in a home folder): the
    # folder it was installed into.
    for d in "$BATS" ${CC%% *}; do
        real=$(command -v "$d" 2>/dev/null) || continue
        real=$(readlink -f "$real" 2>/dev/null || echo "$real")
        case $real in /usr/* | /bin/* | /sbin/* | /lib*/* | /etc/*) continue ;; esac
        prefix=$(dirname "$(dirname "$real")")
        BWRAP+=(--ro-bind "$prefix" "$prefix")
    done
    BWRAP+=(--proc /proc --dev /dev
        --perms 1777 --size $((GRADE_DISK_MB * 1048576)) --tmpfs /tmp
        --perms 1777 --size $((GRADE_DISK_MB * 1048576)) --tmpfs /dev/shm)
    # The repository, the class and the results, should they lie in a folder
    # shown above (say, /usr/src/lab): out of sight.
    for d in "$REPO" "$SUBMISSIONS" "$GRADE_OUT" "$GRADE_TMPDIR"; do
        case $d in /usr/* | /etc/*) BWRAP+=(--tmpfs "$d") ;; esac
    done
}
if [ "$GRADE_SANDBOX" = none ]; then
    MISSING+=("a sandbox (GRADE_SANDBOX=none)")
elif [ "$(uname -s)" != Linux ]; then
    MISSING+=("a sandbox (there is no bwrap on $(uname -s))")
elif ! command -v bwrap >/dev/null 2>&1; then
    MISSING+=("a sandbox (bwrap is not installed; Debian and Ubuntu: apt-get install bubblewrap)")
else
    bwrap_base
    if why=$("${BWRAP[@]}" -- true 2>&1); then
        SANDBOX=bwrap
    else
        MISSING+=("a sandbox (bwrap cannot make one here: $(printf '%s\n' "$why" | head -n 1 | cut -c1-100))")
    fi
fi
[ -n "$SANDBOX" ] ||
    MISSING[${#MISSING[@]} - 1]="${MISSING[${#MISSING[@]} - 1]}: student code can read the repository (the answers too) and the class, reach the network, and leave files in /tmp and /dev/shm"

# ---------------------------------------------------------------- cgroups

# As root, a cgroup per run limits the memory, the processes and the
# processor time of the student's program (all its processes together), and
# says afterwards which limit it reached. Each run gets run-N/ with checker/
# (bwrap, the build, the checker) and student/ (the program) below it; cgroup
# v1 has the tree once per controller, v2 once. They go into a folder
# make-grade.PID of our own. (The limit on processor time keeps a program that
# spins from slowing the other runs; it is not reported, since it stops nothing.)
CG=             # v1, v2 or nothing
CG_BASES=()     # v1: the memory, the pids and (where there is one) the cpu folder; v2: the one folder
cg_init() {
    local own mem pids cpu why=
    if [ -z "$ROOT_MODE" ]; then
        MISSING+=("a cgroup (only root makes one here): memory is limited per process (GRADE_MEMORY_KB), not for the whole run")
        return
    fi
    [ "$GRADE_SANDBOX" != none ] || { MISSING+=("a cgroup (GRADE_SANDBOX=none)"); return; }
    if [ -f /sys/fs/cgroup/memory/memory.limit_in_bytes ] && [ -f /sys/fs/cgroup/pids/cgroup.procs ]; then
        # v1: below the cgroups make grade runs in, so that their limits hold too.
        own=$(awk -F: '$2 == "memory" { print $3 }' /proc/self/cgroup)
        mem="/sys/fs/cgroup/memory${own%/}/make-grade.$$"
        own=$(awk -F: '$2 == "pids" { print $3 }' /proc/self/cgroup)
        pids="/sys/fs/cgroup/pids${own%/}/make-grade.$$"
        if mkdir "$mem" 2>/dev/null && mkdir "$pids" 2>/dev/null; then
            CG=v1
            CG_BASES=("$mem" "$pids")
            if [ -f /sys/fs/cgroup/cpu/cpu.cfs_quota_us ]; then
                own=$(awk -F: '$2 ~ /(^|,)cpu(,|$)/ { print $3 }' /proc/self/cgroup)
                cpu="/sys/fs/cgroup/cpu${own%/}/make-grade.$$"
                ! mkdir "$cpu" 2>/dev/null || CG_BASES+=("$cpu")
            fi
            return
        fi
        rmdir "$mem" "$pids" 2>/dev/null
        why="cannot make one in /sys/fs/cgroup/memory and /pids"
    elif [ -f /sys/fs/cgroup/cgroup.controllers ]; then
        # v2: a folder of processes cannot give controllers to folders below
        # it, so ours goes below the top one, which may.
        own=/sys/fs/cgroup/make-grade.$$
        case " $(cat /sys/fs/cgroup/cgroup.controllers) " in
            *" memory "*" pids "* | *" pids "*" memory "*)
                if echo "+memory +pids" >/sys/fs/cgroup/cgroup.subtree_control 2>/dev/null && mkdir "$own" 2>/dev/null; then
                    if echo "+memory +pids" >"$own/cgroup.subtree_control" 2>/dev/null; then
                        CG=v2
                        CG_BASES=("$own")
                        # (the processor time too, where the cpu controller is there)
                        echo "+cpu" >/sys/fs/cgroup/cgroup.subtree_control 2>/dev/null &&
                            echo "+cpu" >"$own/cgroup.subtree_control" 2>/dev/null
                        return
                    fi
                    rmdir "$own" 2>/dev/null
                fi
                why="cannot make one with memory and pids in /sys/fs/cgroup" ;;
            *) why="cgroup v2 without the memory and pids controllers" ;;
        esac
    else
        why="no cgroup v1 or v2 here"
    fi
    MISSING+=("a cgroup ($why): memory is limited per process (GRADE_MEMORY_KB), not for the whole run")
}

# cg_write FILE VALUE: writes VALUE into a cgroup's FILE, if the file is there.
cg_write() { [ ! -e "$1" ] || echo "$2" >"$1" 2>/dev/null; }

# cg_make_run N: the cgroups of run N; sets CG_CHECKER and CG_STUDENT (the
# cgroup.procs files to put the checker's and the program's processes in).
cg_make_run() {
    local b d
    CG_CHECKER=() CG_STUDENT=()
    [ -n "$CG" ] || return 0
    for b in "${CG_BASES[@]}"; do
        d="$b/run-$1"
        mkdir "$d" || return 1
        # (v2: the controllers of ours, for the two below; "memory pids" is written "+memory +pids")
        [ "$CG" = v1 ] || sed 's/[a-z][a-z]*/+&/g' "$b/cgroup.subtree_control" >"$d/cgroup.subtree_control" || return 1
        mkdir "$d/checker" "$d/student" || return 1
        # The program: GRADE_MEMORY_MB, GRADE_NPROC; the run as a whole,
        # compiler and checker included: 512 MB and 256 processes more.
        cg_write "$d/memory.limit_in_bytes" "$(((GRADE_MEMORY_MB + 512) * 1048576))"
        cg_write "$d/memory.memsw.limit_in_bytes" "$(((GRADE_MEMORY_MB + 512) * 1048576))"
        cg_write "$d/memory.max" "$(((GRADE_MEMORY_MB + 512) * 1048576))"
        cg_write "$d/memory.swap.max" 0
        cg_write "$d/pids.max" "$((GRADE_NPROC + 256))"
        cg_write "$d/student/memory.limit_in_bytes" "$((GRADE_MEMORY_MB * 1048576))"
        cg_write "$d/student/memory.memsw.limit_in_bytes" "$((GRADE_MEMORY_MB * 1048576))"
        cg_write "$d/student/memory.max" "$((GRADE_MEMORY_MB * 1048576))"
        cg_write "$d/student/memory.swap.max" 0
        cg_write "$d/student/pids.max" "$GRADE_NPROC"
        cg_write "$d/student/cpu.cfs_period_us" 100000
        cg_write "$d/student/cpu.cfs_quota_us" "$((GRADE_CPU_PERCENT * 1000))"
        cg_write "$d/student/cpu.max" "$((GRADE_CPU_PERCENT * 1000)) 100000"
        CG_CHECKER+=("$d/checker/cgroup.procs")
        CG_STUDENT+=("$d/student/cgroup.procs")
    done
}

# cg_count DIR FILE KEY: the number after KEY in a cgroup's FILE (0 if none).
cg_count() { awk -v k="$3" '$1 == k { n = $2 } END { print n + 0 }' "$1/$2" 2>/dev/null || echo 0; }

# cg_limits_reached N: one line for each limit of run N's cgroups that stopped something.
cg_limits_reached() {
    local b d kills forks
    [ -n "$CG" ] || return 0
    for b in "${CG_BASES[@]}"; do
        d="$b/run-$1"
        if [ -f "$d/student/memory.oom_control" ] || [ -f "$d/student/memory.events" ]; then
            kills=$(( $(cg_count "$d/student" memory.oom_control oom_kill) + $(cg_count "$d/student" memory.events oom_kill) ))
            [ "$kills" -eq 0 ] ||
                echo "memory limit ($GRADE_MEMORY_MB MB for the whole run) reached: the kernel killed $kills of the program's processes"
            kills=$(( $(cg_count "$d" memory.oom_control oom_kill) + $(cg_count "$d/checker" memory.events oom_kill) ))
            [ "$kills" -eq 0 ] ||
                echo "memory limit ($((GRADE_MEMORY_MB + 512)) MB for the build and the checker) reached: the kernel killed $kills processes"
        fi
        if [ -f "$d/student/pids.events" ]; then
            forks=$(cg_count "$d/student" pids.events max)
            case $forks in
                0) ;;
                1) echo "process limit ($GRADE_NPROC processes for the whole run) reached: a fork failed" ;;
                *) echo "process limit ($GRADE_NPROC processes for the whole run) reached: $forks forks failed" ;;
            esac
        fi
    done
}

# cg_remove_run N: removes run N's cgroups (once their processes are gone).
cg_remove_run() {
    local b d tries
    [ -n "$CG" ] || return 0
    for b in "${CG_BASES[@]}"; do
        d="$b/run-$1"
        [ -d "$d" ] || continue
        tries=0
        while ! rmdir "$d/student" "$d/checker" "$d" 2>/dev/null && [ -d "$d" ] && [ "$tries" -lt 50 ]; do
            tries=$((tries + 1))
            sleep 0.1
        done
    done
}

cg_remove_all() {
    local b
    [ -n "$CG" ] || return 0
    for b in "${CG_BASES[@]}"; do
        rmdir "$b"/run-*/student "$b"/run-*/checker "$b"/run-* "$b" 2>/dev/null
    done
    return 0
}

# ---------------------------------------------------------------- user IDs

# uids_in_use FIRST COUNT: whether a process runs as, or the password database
# knows, a user ID from FIRST to FIRST+COUNT-1.
uids_in_use() {
    { ps -A -o uid=; getent passwd 2>/dev/null | cut -d: -f3; } |
        awk -v lo="$1" -v hi="$(($1 + $2))" '$1 >= lo && $1 < hi { f = 1 } END { exit !f }'
}

# As root, run N runs as user ID UID_BASE+N: a number of its own that no
# process uses and the password database does not know, so that "kill every
# process of this user" cannot hit anybody else's and one run's leftovers do
# not count against the next one's limit on processes. GRADE_UID sets the
# first of them.
UID_BASE=
pick_uid_base() {
    local tries=0
    if [ -n "${GRADE_UID:-}" ]; then
        UID_BASE=$GRADE_UID
        return 0
    fi
    while :; do
        UID_BASE=$((200000 + (RANDOM * 32768 + RANDOM) % 800000000))
        uids_in_use "$UID_BASE" "$1" || return 0
        tries=$((tries + 1))
        [ "$tries" -lt 20 ] || die "found no $1 free user IDs to run student code as (set GRADE_UID to the first of them)"
    done
}

# kill_uid UID: as root, every process of that user ID is killed (kill -1 from
# that user reaches exactly that user's processes, in one sweep that a fork
# cannot outrun), until none is left. In the sandbox nothing is left by then;
# without it, this is what ends a program that left its session.
kill_uid() {
    local tries=0
    [ -n "$ROOT_MODE" ] || return 0
    while ps -A -o uid= -o stat= | awk -v u="$1" '$1 == u && $2 !~ /^Z/ { f = 1 } END { exit !f }'; do
        # (bash's kill: procps' kill(1) takes -1 for an option)
        setpriv --reuid="$1" --regid="$1" --clear-groups -- bash -c 'kill -KILL -1' 2>/dev/null || true
        tries=$((tries + 1))
        [ "$tries" -lt 100 ] || { say "make grade: processes of user $1 are still there"; return 1; }
        sleep 0.05
    done
}

# kill_run_processes DIR: kills every process whose command line starts with
# DIR/ (the student's program, and its copies that fork made), until none is
# left. Without the sandbox, as an ordinary user, this is what finds a child
# that left its session with setsid().
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

# link_on_the_way STUDENT_DIR FILE: the first symbolic link from the student's
# folder down to FILE (the folder itself, exercises/, the exercise's folder,
# the file), as a path below the class folder; fails if there is none.
link_on_the_way() {
    local path=$1 rest=${2#"$1"/} part
    [ ! -L "$path" ] || { printf '%s\n' "$(basename "$path")"; return 0; }
    while [ -n "$rest" ]; do
        part=${rest%%/*}
        [ "$part" = "$rest" ] && rest= || rest=${rest#*/}
        path="$path/$part"
        [ ! -L "$path" ] || { printf '%s\n' "${path#"$SUBMISSIONS"/}"; return 0; }
    done
    return 1
}

# deeper_submission STUDENT_DIR: a student's server.c or client.c in an
# exercise folder (NN-...) deeper than find_submission looks, if there is one.
deeper_submission() {
    find "$1" -mindepth 3 -maxdepth 8 \( -name server.c -o -name client.c \) 2>/dev/null |
        grep '/[0-9][0-9][^/]*/[^/]*$' | head -n 1
}

# student_paths RUN IN WORK TMP STARTER REL: a filter that writes the run's
# paths (the compiler's "/grade/in/server.c:139:25") as the student knows the
# file: REL, such as 02-many-lines/server.c.
student_paths() {
    local prog=${5%.c} prog_rel=${6%.c} dir_rel
    dir_rel=$(dirname "$6")
    F1="$2/$5" T1=$6 F2="$4/.grade/run-student" T2=$prog_rel F3="$3/$prog" T3=$prog_rel \
        F4="$3" T4=$dir_rel F5="$4" T5='$TMPDIR' F6="$1" T6='(the run directory)' awk '
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
            for (k = 1; k <= 6; k++) line = swap(line, ENVIRON["F" k], ENVIRON["T" k])
            print line
        }'
}

# ancestors PATH...: the folders above these paths, each once, the outer first;
# not /, /tmp, nor the system's folders (which the sandbox has already).
ancestors() {
    local p
    for p in "$@"; do
        p=$(dirname "$p")
        while [ "$p" != / ] && [ "$p" != . ]; do
            echo "$p"
            p=$(dirname "$p")
        done
    done | awk '!seen[$0]++' | awk -F/ '{ print NF "\t" $0 }' | sort -n | cut -f2- |
        grep -vxE '/tmp|/usr(/.*)?|/etc(/.*)?|/bin|/sbin|/lib[0-9a-z]*'
}

# grade_one STUDENT_DIR EXDIR LOG N: prints one of passed, failed, missing,
# link, unchanged, "does not build", "timed out", "skipped: REASON" (no check
# failed, but at least one could not run here); what happened goes to LOG.
# N numbers the run (its user ID and cgroups).
grade_one() {
    local student_dir=$1 exdir=$2 log=$3 n=$4 starter src rel link size run uid= rc
    local in work tmp shm= env=() cmd=() f i procs planned ok failed skipped reason limits
    starter=$(ex_starter "$exdir")
    if ! src=$(find_submission "$student_dir" "$exdir" "$starter"); then
        echo "no $(basename "$exdir")/$starter in $student_dir" >"$log"
        echo missing
        return
    fi
    rel=${src#"$student_dir"/}
    if link=$(link_on_the_way "$student_dir" "$src"); then
        echo "$link is a symbolic link; a link is not graded (hand in the file itself)" >"$log"
        echo link
        return
    fi
    if [ ! -f "$src" ]; then
        echo "$rel is not a regular file; not graded" >"$log"
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

    # $run/in holds a copy of the file, $run/out what the run writes for us.
    run=$(mktemp -d "$GRADE_TMPDIR/grade.XXXXXX") || { echo "cannot make a temporary directory" >"$log"; echo failed; return; }
    echo "$run" >"$STATE/$n.run"
    chmod 755 "$run"
    mkdir "$run/in" "$run/out"
    chmod 755 "$run/in"
    chmod 700 "$run/out"
    cp "$src" "$run/in/$starter"
    chmod 644 "$run/in/$starter"
    [ -z "$ROOT_MODE" ] || uid=$((UID_BASE + n))
    if ! cg_make_run "$n"; then
        cg_remove_run "$n"
        rm -rf "$run"
        echo "cannot make the run's cgroups under ${CG_BASES[0]}" >"$log"
        echo failed
        return
    fi
    if [ -n "$SANDBOX" ]; then
        in=/grade/in work=/tmp/student tmp=/tmp shm=/dev/shm
    else
        in=$run/in work=$run/student tmp=$run/tmp
    fi
    env=(GR_STARTER="$starter" GR_EXDIR="$exdir" GR_IN="$in" GR_OUT="$run/out" GR_WORK="$work" GR_TMP="$tmp"
        GR_SHM="$shm" GR_UID="$uid" GR_NPROC="$GRADE_NPROC" GR_MEMORY_KB="$GRADE_MEMORY_KB"
        GR_DISK_MB="$GRADE_DISK_MB" OUTPUT_LIMIT_KB="$OUTPUT_LIMIT_KB" GR_BUILD_DEADLINE="$GRADE_BUILD_DEADLINE"
        GR_DEADLINE="$GRADE_DEADLINE" GR_BUILD_FLAGS="$(ex_build_flags "$exdir")" CC="$CC" WARN="$WARN"
        EX_WERROR="$EX_WERROR" CFLAGS="$CFLAGS" BATS="$BATS" TIME_SCALE="$TIME_SCALE" PATH="$PATH")
    [ -z "${LANG:-}" ] || env+=(LANG="$LANG")
    [ -z "${LC_ALL:-}" ] || env+=(LC_ALL="$LC_ALL")
    # The checker's processes go into the run's checker cgroup first.
    [ ${#CG_CHECKER[@]} -eq 0 ] ||
        cmd=(sh -c 'n=$1; shift; while [ "$n" -gt 0 ]; do echo $$ >"$1" || exit 125; shift; n=$((n - 1)); done; exec "$@"' \
            sh "${#CG_CHECKER[@]}" "${CG_CHECKER[@]}")
    if [ -n "$SANDBOX" ]; then
        cmd+=("${BWRAP[@]}")
        # The folders on the way to what the run is shown, made first, as
        # anyone may enter them (bwrap would make them for root alone): what
        # it is not shown is then simply not there, for the program too ("No
        # such file or directory"). Then the checker's files, the exercise,
        # the student's file (in /grade/in) and where the run writes (/grade/out).
        while IFS= read -r f; do
            [ -z "$f" ] || cmd+=(--perms 0755 --dir "$f")
        done <<EOF
$(ancestors "$LIB" "$exdir" ${NEEDS[@]+"${NEEDS[@]/#/$REPO/}"})
EOF
        for f in ${NEEDS[@]+"${NEEDS[@]}"}; do
            [ ! -e "$REPO/$f" ] || cmd+=(--ro-bind "$REPO/$f" "$REPO/$f")
        done
        cmd+=(--ro-bind "$LIB" "$LIB" --ro-bind "$exdir" "$exdir" --perms 0755 --dir /grade
            --ro-bind "$run/in" /grade/in --bind "$run/out" /grade/out)
        procs=
        i=0
        for f in ${CG_STUDENT[@]+"${CG_STUDENT[@]}"}; do
            cmd+=(--bind "$f" "/grade/cgroup/$i.procs")
            procs="$procs${procs:+ }/grade/cgroup/$i.procs"
            i=$((i + 1))
        done
        env+=(GR_OUT=/grade/out GR_CG_PROCS="$procs")
        # (bwrap's own root, where it made the folders above, read-only too)
        cmd+=(--remount-ro / --chdir /tmp --clearenv)
        for f in "${env[@]}"; do
            cmd+=(--setenv "${f%%=*}" "${f#*=}")
        done
        cmd+=(-- bash "$LIB/grade-run.sh")
    else
        mkdir "$run/student" "$run/tmp"
        [ -z "$ROOT_MODE" ] || chmod 1777 "$run/tmp"
        [ ${#CG_STUDENT[@]} -eq 0 ] || env+=(GR_CG_PROCS="${CG_STUDENT[*]}")
        cmd+=(env "${env[@]}" bash "$LIB/grade-run.sh")
    fi
    rc=0
    run_contained $((GRADE_BUILD_DEADLINE + GRADE_DEADLINE + 30)) "$run/run.log" "${cmd[@]}" || rc=$?
    [ -z "$uid" ] || kill_uid "$uid"
    [ -n "$SANDBOX" ] || kill_run_processes "$run"
    limits=$( { cg_limits_reached "$n"; cat "$run/out/limits" 2>/dev/null; } | head -n 5)
    cg_remove_run "$n"

    {
        [ -z "$uid" ] || echo "== as user $uid"
        echo "== build: $CC $WARN $EX_WERROR $CFLAGS $rel $(ex_build_flags "$exdir")"
        head -c 65536 "$run/out/build.log" 2>/dev/null | student_paths "$run" "$in" "$work" "$tmp" "$starter" "$rel"
    } >"$log"
    # result WORDS: prints the result, with the limits reached in the log, and cleans up.
    result() {
        [ -z "$limits" ] || printf '%s\n' "$limits" >>"$log"
        rm -rf "$run"
        echo "$*"
    }
    if [ ! -f "$run/out/build.rc" ]; then
        if [ "$rc" -eq 124 ]; then
            echo "(the run did not end within $((GRADE_BUILD_DEADLINE + GRADE_DEADLINE + 30))s and was stopped)" >>"$log"
            result "timed out"
        else
            echo "(the run broke off before the build; it said:)" >>"$log"
            head -n 5 "$run/run.log" | cut -c1-300 >>"$log"
            result failed
        fi
        return
    fi
    if [ "$(cat "$run/out/build.rc")" != 0 ]; then
        [ "$(cat "$run/out/build.rc")" != 124 ] || echo "(the build did not end within ${GRADE_BUILD_DEADLINE}s and was stopped)" >>"$log"
        result "does not build"
        return
    fi
    f="$run/out/checks.tap"
    # (bats says where it kept its files, which the run has removed since)
    [ ! -f "$f" ] || { sed 's/BATS_RUN_TMPDIR: .*$//' "$f" | grep -v '^$' >"$f.tap"; f="$f.tap"; }
    planned=$(tap_planned "$f" 2>/dev/null)
    ok=$(tap_count ok "$f" 2>/dev/null)
    failed=$(tap_count failed "$f" 2>/dev/null)
    skipped=$(tap_count skipped "$f" 2>/dev/null)
    reason=$(sed -n 's/^ok [0-9][0-9]* .* # skip *//p' "$f" 2>/dev/null | head -n 1 | tr -d '\r' | cut -c1-100)
    {
        echo "== checks: exercises/$(basename "$exdir")/check.bats"
        tap_for_students "$f" | head -c 65536
        tap_incomplete "$f"
    } 2>/dev/null | student_paths "$run" "$in" "$work" "$tmp" "$starter" "$rel" >>"$log"
    rc=$(cat "$run/out/checks.rc" 2>/dev/null || echo 124)
    if [ "$rc" -eq 124 ]; then
        echo "(the checks did not end within ${GRADE_DEADLINE}s and were stopped)" >>"$log"
        result "timed out"
    elif [ "$rc" -eq 0 ] && [ -n "$planned" ] && [ "$ok" -eq "$planned" ] && [ "$failed" -eq 0 ] && [ "$skipped" -eq 0 ]; then
        result passed
    elif [ "$rc" -eq 0 ] && [ -n "$planned" ] && [ $((ok + skipped)) -eq "$planned" ] && [ "$failed" -eq 0 ]; then
        # Neither passed nor failed: every check that ran passed, and at
        # least one could not run on this machine.
        result "skipped: ${reason:-a check could not run here}"
    else
        result failed
    fi
}

# ---------------------------------------------------------------- names in the table

# shown NAME: NAME on one line: every control character (a newline, a tab) as '?'.
shown() { printf '%s' "$1" | LC_ALL=C tr '\000-\037\177' '?'; }

# chars TEXT: how many characters TEXT has in UTF-8 (the bytes that do not
# continue a character), whatever the locale.
chars() { printf '%s' "$1" | LC_ALL=C tr -d '\200-\277' | wc -c | tr -d ' '; }

# first_chars N TEXT: the first N characters of TEXT (UTF-8).
UTF8_CHAR=$(printf '[^\200-\277][\200-\277]*')
first_chars() {
    printf '%s\n' "$2" | LC_ALL=C sed -e "s/^\\(\\($UTF8_CHAR\\)\\{$1\\}\\).*\$/\\1/"
}

# padded WIDTH TEXT: TEXT and spaces up to WIDTH characters.
padded() {
    local n
    n=$(chars "$2")
    printf '%s%*s' "$2" $(($1 > n ? $1 - n : 0)) ''
}

# ---------------------------------------------------------------- the class

csv_field() {
    case $1 in
        *[\",]* | *$'\n'*) printf '"%s"' "$(printf '%s' "$1" | sed 's/"/""/g')" ;;
        *) printf '%s' "$1" ;;
    esac
}

# code RESULT: the table's one-letter code for a result.
code() {
    case $1 in
        passed) echo P ;;
        failed) echo F ;;
        unchanged) echo U ;;
        "does not build") echo B ;;
        "timed out") echo T ;;
        missing) echo - ;;
        link) echo L ;;
        skipped*) echo S ;;
        *) echo '?' ;;
    esac
}

# GRADE_EXERCISES (e.g. "01 03 09"): grade only those exercises (all by default).
GRADE_EXERCISES="${GRADE_EXERCISES:-}"
EXDIRS=()
while IFS= read -r d; do
    if [ -n "$d" ] && [ -n "$GRADE_EXERCISES" ]; then
        case " $GRADE_EXERCISES " in *" $(basename "$d" | cut -c1-2) "*) ;; *) continue ;; esac
    fi
    [ -n "$d" ] && ex_starter "$d" >/dev/null && [ -f "$d/check.bats" ] && EXDIRS+=("$d")
done <<EOF
$(ex_dirs)
EOF
[ ${#EXDIRS[@]} -gt 0 ] || die "no exercise with a starter and a checker in $EXERCISES_DIR${GRADE_EXERCISES:+ among GRADE_EXERCISES=$GRADE_EXERCISES}"
N_EX=${#EXDIRS[@]}

STUDENTS=()
WARNINGS=
for d in "$SUBMISSIONS"/*/; do
    [ -d "$d" ] && STUDENTS+=("${d%/}")
done
# A folder whose name starts with a dot is not a student's ("*" leaves it
# out), but it may well be one: say so.
for d in "$SUBMISSIONS"/.*/; do
    case $(basename "$d") in . | ..) continue ;; esac
    [ -d "$d" ] || continue
    warning="warning: $(shown "$(basename "$d")"): a folder whose name starts with a dot is not graded; if it is a student's, rename it (without the dot) and grade again"
    WARNINGS="$WARNINGS$warning
"
done
[ ${#STUDENTS[@]} -gt 0 ] || die "no student folders in $SUBMISSIONS"
N_RUNS=$((${#STUDENTS[@]} * N_EX))

# What the checkers need from the repository: built now, and shown to every run.
NEEDS=()
while IFS= read -r f; do
    [ -z "$f" ] || NEEDS+=("$f")
done <<EOF
$(for ex in "${EXDIRS[@]}"; do ex_needs "$ex"; done | sort -u)
EOF
ex_build_needs "${EXDIRS[@]}" || die "could not build what the checkers need (make's messages above)"

mkdir -p "$GRADE_OUT/logs"
[ -z "$ROOT_MODE" ] || pick_uid_base "$N_RUNS"
cg_init
if [ -n "$ROOT_MODE" ]; then
    if [ -z "$SANDBOX" ]; then
        probe=$(mktemp -d "$GRADE_TMPDIR/grade.XXXXXX") || die "cannot make a directory in $GRADE_TMPDIR (set GRADE_TMPDIR)"
        chmod 755 "$probe"
        reachable=1
        setpriv --reuid="$UID_BASE" --regid="$UID_BASE" --clear-groups -- test -x "$probe" || reachable=
        rmdir "$probe"
        [ -n "$reachable" ] || { cg_remove_all; die "student code runs as another user, who cannot enter $GRADE_TMPDIR; set GRADE_TMPDIR to a directory anyone may enter (such as /tmp)"; }
    fi
else
    MISSING+=("a user ID of its own for student code (not root): it runs as you, and could disturb its checker")
fi
CSV="$GRADE_OUT/grades.csv"
TABLE="$GRADE_OUT/grades.txt"
STATE=$(mktemp -d "${TMPDIR:-/tmp}/grade-state.XXXXXX") || die "cannot make a temporary directory"

# Ctrl-C or a kill: every run is stopped (its run_contained ends its
# sandbox), then the cgroups and our files go.
RUNNING=" "
PIDS=" "
stop_runs() {
    local t pid tries=0
    for pid in $PIDS; do kill -TERM "$pid" 2>/dev/null; done
    while [ "$tries" -lt 30 ]; do
        local alive=
        for pid in $PIDS; do kill -0 "$pid" 2>/dev/null && alive=1; done
        [ -n "$alive" ] || break
        sleep 0.1
        tries=$((tries + 1))
    done
    for pid in $PIDS; do kill -KILL "$pid" 2>/dev/null; done
    wait 2>/dev/null
    cg_remove_all
    for t in $RUNNING; do
        [ ! -f "$STATE/$t.run" ] || rm -rf "$(cat "$STATE/$t.run")"
    done
    rm -rf "$STATE"
}
trap 'stop_runs; exit 130' INT
trap 'stop_runs; exit 143' TERM
trap 'stop_runs; exit 129' HUP
trap 'stop_runs; exit 141' PIPE     # (make grade | head: the runs stop with it)

if [ ${#MISSING[@]} -gt 0 ]; then
    say "make grade: missing here: $(printf '%s\n' "${MISSING[@]}" | awk 'NR > 1 { printf "; " } { printf "%s", $0 }')"
fi
say "grading ${#STUDENTS[@]} students x $N_EX exercises from $SUBMISSIONS, $GRADE_JOBS at a time on $CPUS processors (the checkers' deadlines x$TIME_SCALE)"
if [ -n "$SANDBOX" ]; then
    say "(each run in a sandbox of its own (bwrap)$([ -z "$ROOT_MODE" ] || echo ", as a user ID of its own"), ${GRADE_DEADLINE}s per checker, $GRADE_NPROC processes$([ -z "$CG" ] || echo " and $GRADE_MEMORY_MB MB") for the program)"
elif [ -n "$ROOT_MODE" ]; then
    say "(student code runs as a user ID of its own, at most $GRADE_NPROC processes, ${GRADE_DEADLINE}s per checker)"
fi

# ---------------------------------------------------------------- the runs, GRADE_JOBS at a time

# Run T is student T / N_EX and exercise T % N_EX. Each writes its result to
# $STATE/T (through a file of its own, so that a half-written one is never read).
start_run() {
    local t=$1 student_dir ex student nn
    student_dir=${STUDENTS[$((t / N_EX))]}
    ex=${EXDIRS[$((t % N_EX))]}
    student=$(basename "$student_dir")
    nn=$(basename "$ex" | cut -c1-2)
    mkdir -p "$GRADE_OUT/logs/$student"
    echo "$SECONDS" >"$STATE/$t.start"
    (
        trap - INT TERM HUP PIPE
        grade_one "$student_dir" "$ex" "$GRADE_OUT/logs/$student/$nn.txt" "$t" >"$STATE/$t.new" 2>"$STATE/$t.err"
        mv "$STATE/$t.new" "$STATE/$t"
    ) </dev/null &
    RUNNING="$RUNNING$t "
    N_RUNNING=$((N_RUNNING + 1))
    PIDS="$PIDS$! "
    eval "PID_$t=$!"
}

# Older logs of these students go first.
for student_dir in "${STUDENTS[@]}"; do
    rm -f "$GRADE_OUT/logs/$(basename "$student_dir")/"[0-9][0-9].txt
done

next=0 finished=0 N_RUNNING=0
while [ "$finished" -lt "$N_RUNS" ]; do
    while [ "$next" -lt "$N_RUNS" ] && [ "$N_RUNNING" -lt "$GRADE_JOBS" ]; do
        start_run "$next"
        next=$((next + 1))
    done
    progressed=
    for t in $RUNNING; do
        eval "pid=\$PID_$t"
        if [ ! -f "$STATE/$t" ]; then
            kill -0 "$pid" 2>/dev/null && continue
            # The run ended without a result (it was killed).
            echo failed >"$STATE/$t"
        fi
        wait "$pid" 2>/dev/null
        RUNNING=${RUNNING/ $t / }
        N_RUNNING=$((N_RUNNING - 1))
        PIDS=${PIDS/ $pid / }
        finished=$((finished + 1))
        progressed=1
        result=$(head -n 1 "$STATE/$t")
        student_dir=${STUDENTS[$((t / N_EX))]}
        say "$(printf '%4d/%d' "$finished" "$N_RUNS")  $(shown "$(basename "$student_dir")") $(basename "${EXDIRS[$((t % N_EX))]}" | cut -c1-2): $result ($((SECONDS - $(cat "$STATE/$t.start")))s)"
    done
    [ -n "$progressed" ] || sleep 0.1
done
trap - INT TERM HUP PIPE
cg_remove_all

# ---------------------------------------------------------------- the table and the CSV

{
    printf 'student'
    for ex in "${EXDIRS[@]}"; do printf ',%s' "$(basename "$ex")"; done
    printf '\n'
} >"$CSV"

# The table fits 80 columns: the student's name (20 characters: a longer one
# is cut and ends in '~'; two that would then look the same end in ~1, ~2,
# ...), a letter per exercise, and how many passed of those handed in. The
# CSV has the names and the results in full.
NAMES=()
for student_dir in "${STUDENTS[@]}"; do
    name=$(shown "$(basename "$student_dir")")
    [ "$(chars "$name")" -le 20 ] || name="$(first_chars 19 "$name")~"
    NAMES+=("$name")
done
i=0
while [ "$i" -lt ${#NAMES[@]} ]; do
    same=0
    j=0
    while [ "$j" -lt ${#NAMES[@]} ]; do
        [ "$j" -eq "$i" ] || [ "${NAMES[$j]}" != "${NAMES[$i]}" ] || same=1
        j=$((j + 1))
    done
    if [ "$same" -eq 1 ]; then
        # Every name shown so: numbered in the order of the table.
        look=${NAMES[$i]}
        k=1 j=0
        while [ "$j" -lt ${#NAMES[@]} ]; do
            if [ "${NAMES[$j]}" = "$look" ]; then
                full=$(shown "$(basename "${STUDENTS[$j]}")")
                NAMES[$j]="$(first_chars $((20 - 1 - ${#k})) "$full")~$k"
                k=$((k + 1))
            fi
            j=$((j + 1))
        done
    fi
    i=$((i + 1))
done

{
    printf '%-20s' student
    for ex in "${EXDIRS[@]}"; do printf ' %-2s' "$(basename "$ex" | cut -c1-2)"; done
    printf ' total\n'
} >"$TABLE"

s=0
for student_dir in "${STUDENTS[@]}"; do
    student=$(basename "$student_dir")
    row_csv=$(csv_field "$student")
    row_table=$(padded 20 "${NAMES[$s]}")
    n_passed=0 n_submitted=0
    e=0
    while [ "$e" -lt "$N_EX" ]; do
        result=$(head -n 1 "$STATE/$((s * N_EX + e))")
        row_csv="$row_csv,$(csv_field "$result")"
        row_table="$row_table $(printf '%-2s' "$(code "$result")")"
        [ "$result" = missing ] || n_submitted=$((n_submitted + 1))
        [ "$result" != passed ] || n_passed=$((n_passed + 1))
        e=$((e + 1))
    done
    if [ "$n_submitted" -eq 0 ] && deeper=$(deeper_submission "$student_dir") && [ -n "$deeper" ]; then
        warning="warning: $(shown "$student"): no exercise folder in $(shown "$student_dir")/ (nor in $(shown "$student_dir")/exercises/), but there is $(shown "${deeper#"$student_dir"/}") deeper down; move the NN-name folders up to $(shown "$student_dir")/ and grade again"
        WARNINGS="$WARNINGS$warning
"
    fi
    printf '%s\n' "$row_csv" >>"$CSV"
    printf '%s %s/%s\n' "$row_table" "$n_passed" "$n_submitted" | sed 's/ *$//' >>"$TABLE"
    s=$((s + 1))
done
rm -rf "$STATE"
{
    echo
    echo "P passed, F failed, U unchanged (the starter as handed out), B does not build,"
    echo "T timed out, S skipped (a check could not run here), - missing,"
    echo "L a link instead of a folder or file (not graded)."
    echo "total: passed / handed in. The CSV has the results in full, with the reasons."
} >>"$TABLE"

[ -z "$WARNINGS" ] || printf '%s' "$WARNINGS" | sed 's/^/make grade: /' >&2
cat "$TABLE"
echo
[ -z "$WARNINGS" ] || printf '%s\n' "$WARNINGS"
echo "CSV: $CSV; what each run printed: $GRADE_OUT/logs/STUDENT/NN.txt"
elapsed=$((SECONDS - START))
echo "graded ${#STUDENTS[@]} students x $N_EX exercises in $((elapsed / 60)) min $((elapsed % 60)) s, $GRADE_JOBS at a time"
