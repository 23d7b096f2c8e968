# tests/harness.bash - the part of the test helpers that knows nothing about
# our servers: running things with deadlines, starting them in the background,
# killing everything afterwards, and saying what went wrong in plain words.
# tests/helper.bash builds on it, and so do the exercise checkers
# (exercises/lib/checker.bash) and make grade, which run student code that
# may hang, fork forever or print megabytes.
#
# The promise: whatever the program under test does, a test that uses these
# functions ends within its deadlines and leaves no process behind.
#  - Every command we start runs in a process group of its own (set -m), so
#    that one kill reaches it and every child it forked.
#  - Every such group is written down in $HARNESS_GROUPS (a file, because a
#    command started inside bats' `run` lives in a subshell whose variables
#    the test never sees), and stop_everything kills them all: first SIGTERM,
#    then, for whatever is still there after a moment, SIGKILL.
#  - Nothing waits without a deadline: wait_until and with_deadline give up
#    after $DEADLINE seconds.
#  - A process group is killed only while it is still ours: the kernel reuses
#    process IDs, and a group that ended long ago may by now have the number
#    of someone else's.
#  - With STOP_AT_FIRST_FAILURE set (make test sets it), the first test that
#    fails stops the run: every later test fails at once, saying which test
#    failed first, instead of waiting out deadlines of its own.
# Written for bash 3.2 and later (macOS still ships 3.2).

# TIME_SCALE: a whole number that every deadline is multiplied by, so that a
# busy machine never fails a correct program. Unset, it is 1 plus the load
# average per CPU (1 on a quiet machine, 5 with two CPU hogs and a test run on
# two cores). make grade raises it when it runs several checkers at once. It
# is exported, so that the suites a test starts use the same scale.
default_time_scale() {
    local load cpus
    load=$(cut -d' ' -f1 /proc/loadavg 2>/dev/null) ||
        load=$(sysctl -n vm.loadavg 2>/dev/null | tr -d '{}' | awk '{ print $1 }')
    cpus=$(getconf _NPROCESSORS_ONLN 2>/dev/null || echo 1)
    awk -v l="${load:-0}" -v c="${cpus:-1}" 'BEGIN { if (c < 1) c = 1; print 1 + int(l / c) }'
}
case ${TIME_SCALE:-} in
    '' | *[!0-9]* | 0) TIME_SCALE=$(default_time_scale) ;;
esac
export TIME_SCALE

# scaled SECONDS: SECONDS times TIME_SCALE, for a deadline that a quiet
# machine meets easily: DEADLINE=$(scaled 3) wait_until ...
scaled() { echo $(($1 * TIME_SCALE)); }

# How long any one condition may take before the test fails. Generous, because
# a loaded machine is slow; a passing test never waits this long.
DEADLINE="${DEADLINE:-$(scaled 10)}"
# QUICK: the deadline for a condition that a working program meets in
# milliseconds (a server announcing its port, a free server answering one
# line): DEADLINE=$QUICK wait_until ... A broken program fails such a test
# in seconds, not in minutes, and a busy machine still gets its scale.
QUICK="${QUICK:-$(scaled 2)}"
NEVER=3

# harness_setup: call first in setup(). Needs $BATS_TEST_TMPDIR.
harness_setup() {
    BG_PIDS=()
    T="$BATS_TEST_TMPDIR"
    HARNESS_GROUPS="$T/.process-groups"
    : >"$HARNESS_GROUPS"
    nap_setup
    not_after_a_failure
}

# harness_teardown: call in teardown(). Kills every group we started, and
# notes the test as the run's first failure if it failed.
harness_teardown() {
    stop_everything
    note_first_failure
}

# harness_setup_file: with the run stopped, the whole file fails at once, as
# one line. It is every file's setup_file unless the file has its own, which
# then calls it first.
harness_setup_file() { not_after_a_failure; }
setup_file() { harness_setup_file; }

# remember_group PGID: stop_everything will kill this process group.
remember_group() { echo "$1" >>"$HARNESS_GROUPS"; }

# ---------------------------------------------------------------- the first failure stops the run
# A student who breaks a step on purpose should see the suite fail within a
# minute, its first failure saying what is wrong; a hung server would
# otherwise make every later test wait out its deadlines, one after another.
# So with STOP_AT_FIRST_FAILURE set (make test sets it; KEEP_GOING=1 make test
# does not), the first test that fails is written down for the whole run (in
# bats' $BATS_RUN_TMPDIR), and every test after it fails at once saying so.
# make test runs two lanes of files side by side (tests/run.sh), which share
# one such file, MAKE_TEST_FIRST_FAILURE: the first failure in either stops
# both. (A suite that a test runs inside itself, failing on purpose, is
# started without it: harness-stop.bats.)

first_failure_file() {
    if [ -n "${MAKE_TEST_FIRST_FAILURE:-}" ]; then
        echo "$MAKE_TEST_FIRST_FAILURE"
    else
        echo "${BATS_RUN_TMPDIR:-/nonexistent}/first-failure"
    fi
}

# note_first_failure: in teardown, if this test failed and none had before.
# bats sets BATS_TEST_COMPLETED once the test's body has run to its end (a
# skip counts as an end).
note_first_failure() {
    local file
    [ -n "${STOP_AT_FIRST_FAILURE:-}" ] && [ -n "${BATS_RUN_TMPDIR:-}" ] || return 0
    [ -z "${BATS_TEST_COMPLETED:-}" ] || return 0
    file=$(first_failure_file)
    [ ! -e "$file" ] || return 0
    printf "test %s in %s ('%s')\n" "${BATS_SUITE_TEST_NUMBER:-?}" \
        "${BATS_TEST_FILENAME#"${PWD}/"}" "${BATS_TEST_DESCRIPTION:-?}" >"$file"
}

# not_after_a_failure: fails, with one line that names the first failure,
# once a test of this run has failed.
not_after_a_failure() {
    local file
    [ -n "${STOP_AT_FIRST_FAILURE:-}" ] || return 0
    file=$(first_failure_file)
    [ -s "$file" ] || return 0
    fail_because "not run: the run stopped at its first failure, $(cat "$file"); fix that one first" \
        "(KEEP_GOING=1 make test runs every test, and bats tests/FILE.bats one file)"
}

# group_alive PGID: some process of the group still exists (zombies included,
# so kill -0 sees them; they are gone once their parent, or init, reaps them).
group_alive() { kill -0 -- "-$1" 2>/dev/null; }

# groups_gone PGID...: none of the groups has a process left.
groups_gone() {
    local g
    for g in "$@"; do
        group_alive "$g" && return 1
    done
    return 0
}

# stop_everything: SIGTERM to every group started so far that is still ours,
# up to 2 s for them to go (TERM_GRACE_TENTHS=20; a time, not a number of
# looks, which take longer on a busy machine), then SIGKILL, which nothing
# can ignore. Then reap our direct children.
stop_everything() {
    local groups=() g tries end pid ours
    [ -f "${HARNESS_GROUPS:-}" ] || return 0
    # (nothing started: nothing to stop, and no ps)
    [ -s "$HARNESS_GROUPS" ] || [ ${#BG_PIDS[@]} -gt 0 ] || return 0
    ours=$(our_groups)
    while read -r g; do
        [ -n "$g" ] && still_ours "$g" "$ours" && groups+=("$g")
    done <"$HARNESS_GROUPS"
    # A test may have started its own group and put its leader in BG_PIDS.
    for pid in ${BG_PIDS[@]+"${BG_PIDS[@]}"}; do
        still_ours "$pid" "$ours" && groups+=("$pid")
    done
    [ ${#groups[@]} -gt 0 ] || {
        reap_background
        return 0
    }
    for g in "${groups[@]}"; do
        kill -TERM -- "-$g" 2>/dev/null || true
    done
    tries=$((${TERM_GRACE_TENTHS:-20} * 5))
    end=$((SECONDS + (${TERM_GRACE_TENTHS:-20} + 9) / 10))
    while ! only_zombies_left "${groups[@]}" && [ "$tries" -gt 0 ] && [ "$SECONDS" -le "$end" ]; do
        nap 0.02
        tries=$((tries - 1))
    done
    for g in "${groups[@]}"; do
        kill -KILL -- "-$g" 2>/dev/null || true
        kill -KILL "$g" 2>/dev/null || true
    done
    reap_background
    return 0
}
reap_background() {
    local pid
    for pid in ${BG_PIDS[@]+"${BG_PIDS[@]}"}; do
        wait "$pid" 2>/dev/null || true
    done
}

# our_session: sets OUR_SID to the ID of our session: on Linux read from
# /proc with the shell's own read (teardown asks for it in every test), else
# from ps; empty where neither can say.
our_session() {
    local line
    OUR_SID=
    if read -r line 2>/dev/null <"/proc/$$/stat"; then
        # (after the command name in parentheses: state, ppid, pgrp, session)
        line=${line##*) }
        set -- $line
        OUR_SID=$4
    else
        OUR_SID=$(ps -o sid= -p $$ 2>/dev/null | tr -d ' ')
    fi
}

# our_groups: "PGID PID" of every process in our session, one a line; empty
# where ps cannot say (then every recorded group counts as ours).
# Everything a test starts stays in the session it runs in: start_bg and
# with_deadline make process groups, never sessions.
our_groups() {
    our_session
    [ -n "$OUR_SID" ] || return 0
    ps -A -o pgid= -o pid= -o sid= | awk -v s="$OUR_SID" '$3 == s { print $1, $2 }'
}

# still_ours PGID OUR-GROUPS: the group (or the process PGID itself) still has
# a process in our session. Linux reuses process IDs, after pid_max of them
# (32768 by default, under a minute when many tests fork at once): a group
# whose processes have all ended may by now have the number of a group that
# another run started, and our kill must not reach that one. While any of our
# processes is still in the group, the kernel keeps its number for it.
# (bash's own pattern matching: teardown asks this for every group it knows.)
still_ours() {
    [ -n "$2" ] || return 0
    local nl=$'\n'
    [[ "$nl$2$nl" == *"$nl$1 "* ]] || [[ "$nl$2$nl" == *" $1$nl"* ]]
}

# only_zombies_left PGID...: every process left in these groups has ended
# (a zombie waits only for its parent to collect it).
# One ps for all of them: under load, starting ps takes a good part of a
# second.
only_zombies_left() {
    ps -A -o pgid= -o stat= | awk -v groups=" $* " \
        'index(groups, " " $1 " ") && $2 !~ /^Z/ { found = 1 } END { exit found }'
}

# ---------------------------------------------------------------- waiting

# POLL_TRIES: a wait looks every 20 ms this many times (its first second),
# then every 100 ms. A correct program meets what a test waits for in
# milliseconds; a wait that lasts longer is a broken program or a busy
# machine, and each look starts processes (sleep, grep, ps), which on a busy
# machine are what keeps it busy: several checkers that wait out their
# deadlines side by side would otherwise fill both processors with looks.
POLL_TRIES=5

# poll_pause N: the pause after the Nth look (0.02 s, then 0.1 s).
poll_pause() { if [ "$1" -lt "$POLL_TRIES" ]; then nap 0.02; else nap 0.1; fi; }

# nap SECONDS: a pause of a fraction of a second. Where bash can (4.0 and
# later: read's timeout in fractions), it waits in read on a FIFO of the
# test's that nobody writes to, opened for reading and writing (so that it
# never reaches end of file) only for that read; that starts no process,
# where sleep starts one each time: the polling loops would start
# thousands. Elsewhere (macOS's bash 3.2) it is sleep.
nap() {
    if [ -n "${NAP_FIFO:-}" ]; then
        read -r -t "$1" _ <>"$NAP_FIFO" || true
    else
        sleep "$1"
    fi
}
# nap_setup: the FIFO, in $T (harness_setup calls it).
nap_setup() {
    NAP_FIFO=
    [ "${BASH_VERSINFO[0]:-3}" -ge 4 ] || return 0
    mkfifo "$T/.nap" 2>/dev/null && NAP_FIFO="$T/.nap"
    return 0
}

# wait_until CMD...: runs CMD every 20 ms (every 100 ms after its first second)
# until it succeeds; fails after $DEADLINE s.
# CMD runs anew each time, but a $(...) in its arguments is expanded only once,
# before the first try: put such a check in a function (see queue_is in helper.bash).
# A CMD that returns $NEVER (3) means "this can no longer happen" (say, the
# server died): wait_until gives up at once instead of waiting out the deadline.
wait_until() {
    local end=$((SECONDS + DEADLINE)) rc looks=0
    while :; do
        rc=0
        "$@" || rc=$?
        [ "$rc" -ne 0 ] || return 0
        if [ "$rc" -eq "$NEVER" ]; then
            echo "gave up waiting for: $* (it can no longer happen)" >&2
            return "$rc"
        fi
        if [ "$SECONDS" -ge "$end" ]; then
            echo "gave up after ${DEADLINE}s waiting for: $*" >&2
            return 1
        fi
        looks=$((looks + 1))
        poll_pause "$looks"
    done
}

# with_deadline CMD...: runs CMD (with our stdin) in a process group of its
# own and returns its status. If CMD is still running after $DEADLINE s, the
# whole group is killed (CMD and anything it started, such as the client at
# the end of a pipeline in a function) and with_deadline returns 124. What CMD
# leaves running in its group when it ends is killed too.
with_deadline() {
    local pid rc end=$((SECONDS + DEADLINE)) monitor= looks=0
    case $- in *m*) monitor=1 ;; esac
    set -m
    "$@" 0<&0 3>&- &
    pid=$!
    [ -n "$monitor" ] || set +m
    remember_group "$pid"
    while kill -0 "$pid" 2>/dev/null && ! is_zombie "$pid"; do
        if [ "$SECONDS" -ge "$end" ]; then
            kill -KILL -- "-$pid" 2>/dev/null || true
            wait "$pid" 2>/dev/null || true
            echo "still running after ${DEADLINE}s, killed: $*" >&2
            return 124
        fi
        looks=$((looks + 1))
        poll_pause "$looks"
    done
    rc=0
    wait "$pid" || rc=$?
    kill -KILL -- "-$pid" 2>/dev/null || true
    return "$rc"
}

# is_zombie PID: the process has ended and waits for its parent to collect it.
# On Linux it reads /proc with the shell's own read: polling loops call it
# every 20 ms, and under load each ps they started would take most of a
# second.
is_zombie() {
    local stat
    if [ -d /proc/self ]; then
        read -r stat 2>/dev/null <"/proc/$1/stat" || return 1
        stat=${stat##*) }
        [ "${stat%% *}" = Z ]
    else
        [ "$(ps -o stat= -p "$1" 2>/dev/null | cut -c1)" = Z ]
    fi
}

# start_bg NAME CMD...: starts CMD in the background, in a process group of its
# own, with stdout in $T/NAME.out and stderr in $T/NAME.err. Sets BG_PID.
# With OUTPUT_LIMIT_KB set, CMD may write at most that much to any file
# (ulimit -f): a program that prints without end is stopped by SIGXFSZ
# instead of filling the disk.
start_bg() {
    local name=$1 monitor=
    shift
    # Emptied here, before the fork: the background process empties them too,
    # but only once it runs, and a test that starts a second server under
    # the name of the first could meanwhile read the first one's lines
    # ("Listening on port N") and talk to a server that is not there yet.
    : >"$T/$name.out"
    : >"$T/$name.err"
    case $- in *m*) monitor=1 ;; esac
    set -m
    if [ -n "${OUTPUT_LIMIT_KB:-}" ] && declare -F "$1" >/dev/null; then
        # A shell function cannot be exec'ed: the subshell runs it itself.
        (ulimit -f "$OUTPUT_LIMIT_KB" && "$@") >"$T/$name.out" 2>"$T/$name.err" </dev/null 3>&- &
    elif [ -n "${OUTPUT_LIMIT_KB:-}" ]; then
        # exec: the program itself is BG_PID, so its children are BG_PID's.
        (ulimit -f "$OUTPUT_LIMIT_KB" && exec "$@") >"$T/$name.out" 2>"$T/$name.err" </dev/null 3>&- &
    else
        "$@" >"$T/$name.out" 2>"$T/$name.err" </dev/null 3>&- &
    fi
    BG_PID=$!
    [ -n "$monitor" ] || set +m
    BG_PIDS+=("$BG_PID")
    remember_group "$BG_PID"
}

# ---------------------------------------------------------------- processes

alive() { kill -0 "$1" 2>/dev/null && ! is_zombie "$1"; }
# exited PID: it no longer runs (a zombie that nobody has waited for yet counts).
exited() { ! alive "$1"; }

# count_children PID [STATE]: processes whose parent is PID (only those whose
# state starts with STATE, e.g. Z for zombies, when STATE is given).
count_children() {
    ps -A -o ppid= -o stat= | awk -v p="$1" -v s="${2:-}" \
        '$1 == p && substr($2, 1, length(s)) == s { n++ } END { print n + 0 }'
}
children_are() { [ "$(count_children "$1" "${3:-}")" -eq "$2" ]; }

# count_fds PID: descriptors the process has open.
count_fds() {
    if [ -d "/proc/$1/fd" ]; then
        ls "/proc/$1/fd" | wc -l | tr -d ' '
    else
        lsof -p "$1" 2>/dev/null | awk 'NR > 1 && $4 ~ /^[0-9]/ { n++ } END { print n + 0 }'
    fi
}

# announced_port FILE: the N of the first "Listening on port N" line in FILE.
announced_port() {
    sed -n 's/^Listening on port \([0-9][0-9]*\)$/\1/p' "$1" | head -n 1
}

# queued_connections: connections the kernel has completed on port $PORT that
# the server has not accept()ed yet (the listen queue; ss on Linux, netstat
# on macOS).
queued_connections() {
    if command -v ss >/dev/null; then
        ss -Hltn "sport = :$PORT" | awk '{ print $2; exit }'
    else
        netstat -Lan -p tcp | awk -v end=".$PORT" \
            'substr($2, length($2) - length(end) + 1) == end { split($1, q, "/"); print q[1]; exit }'
    fi
}
queue_is() { [ "$(queued_connections)" = "$1" ]; }

# ---------------------------------------------------------------- saying what went wrong
# bats shows what a failing test printed. These print one or two lines a
# student can read: what was expected, and what happened instead.

# excerpt TEXT: TEXT cut to its first 3 lines of at most 160 characters,
# with a note of how much more there was; "nothing" when TEXT is empty.
excerpt() {
    local text=$1 lines
    if [ -z "$text" ]; then
        printf 'nothing'
        return
    fi
    lines=$(printf '%s\n' "$text" | wc -l | tr -d ' ')
    printf "'%s'" "$(printf '%s\n' "$text" | head -n 3 | cut -c1-160 | LC_ALL=C tr -c '[:print:]\n' '?' |
        awk 'NR > 1 { printf " | " } { printf "%s", $0 }')"
    [ "$lines" -le 3 ] || printf ' (and %s more lines)' "$((lines - 3))"
}

# excerpt_file FILE: the same for a file's end (its last lines, which say
# most about how a program ended); reads at most its last 64 kB.
excerpt_file() {
    if [ ! -s "$1" ]; then
        printf 'nothing'
        return
    fi
    excerpt "$(tail -c 65536 "$1" | tail -n 3)"
}

# fail_because MESSAGE...: prints MESSAGE as one line on stderr and fails.
# Under bats' set -e, nothing after it runs: print anything else first.
fail_because() {
    printf '%s\n' "$*" >&2
    return 1
}

# expect_same WHAT EXPECTED GOT: fails with "expected WHAT 'EXPECTED', got: 'GOT'"
# unless the two are equal.
expect_same() {
    [ "$2" = "$3" ] && return 0
    fail_because "expected $1 '$2', got: $(excerpt "$3")"
}
