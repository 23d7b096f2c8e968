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
NEVER=3

# harness_setup: call first in setup(). Needs $BATS_TEST_TMPDIR.
harness_setup() {
    BG_PIDS=()
    T="$BATS_TEST_TMPDIR"
    HARNESS_GROUPS="$T/.process-groups"
    : >"$HARNESS_GROUPS"
}

# harness_teardown: call in teardown(). Kills every group we started.
harness_teardown() {
    stop_everything
}

# remember_group PGID: stop_everything will kill this process group.
remember_group() { echo "$1" >>"$HARNESS_GROUPS"; }

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

# stop_everything: SIGTERM to every group started so far, up to 2 s for them
# to go (TERM_GRACE_TENTHS=20), then SIGKILL, which nothing can ignore. Then
# reap our direct children.
stop_everything() {
    local groups=() g tries pid
    [ -f "${HARNESS_GROUPS:-}" ] || return 0
    while read -r g; do
        [ -n "$g" ] && groups+=("$g")
    done <"$HARNESS_GROUPS"
    # A test may have started its own group and put its leader in BG_PIDS.
    for pid in ${BG_PIDS[@]+"${BG_PIDS[@]}"}; do
        groups+=("$pid")
    done
    [ ${#groups[@]} -gt 0 ] || return 0
    for g in "${groups[@]}"; do
        kill -TERM -- "-$g" 2>/dev/null || true
    done
    tries=$((${TERM_GRACE_TENTHS:-20} * 5))
    while ! only_zombies_left "${groups[@]}" && [ "$tries" -gt 0 ]; do
        sleep 0.02
        tries=$((tries - 1))
    done
    for g in "${groups[@]}"; do
        kill -KILL -- "-$g" 2>/dev/null || true
        kill -KILL "$g" 2>/dev/null || true
    done
    for pid in ${BG_PIDS[@]+"${BG_PIDS[@]}"}; do
        wait "$pid" 2>/dev/null || true
    done
    return 0
}

# only_zombies_left PGID...: every process left in these groups has ended
# (a zombie waits only for its parent to collect it).
only_zombies_left() {
    local g
    for g in "$@"; do
        ps -A -o pgid= -o stat= | awk -v g="$g" '$1 == g && $2 !~ /^Z/ { found = 1 } END { exit found }' ||
            return 1
    done
    return 0
}

# ---------------------------------------------------------------- waiting

# wait_until CMD...: runs CMD every 20 ms until it succeeds; fails after $DEADLINE s.
# CMD runs anew each time, but a $(...) in its arguments is expanded only once,
# before the first try: put such a check in a function (see queue_is in helper.bash).
# A CMD that returns $NEVER (3) means "this can no longer happen" (say, the
# server died): wait_until gives up at once instead of waiting out the deadline.
wait_until() {
    local end=$((SECONDS + DEADLINE)) rc
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
        sleep 0.02
    done
}

# with_deadline CMD...: runs CMD (with our stdin) in a process group of its
# own and returns its status. If CMD is still running after $DEADLINE s, the
# whole group is killed (CMD and anything it started, such as the client at
# the end of a pipeline in a function) and with_deadline returns 124. What CMD
# leaves running in its group when it ends is killed too.
with_deadline() {
    local pid rc end=$((SECONDS + DEADLINE)) monitor=
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
        sleep 0.02
    done
    rc=0
    wait "$pid" || rc=$?
    kill -KILL -- "-$pid" 2>/dev/null || true
    return "$rc"
}

is_zombie() { [ "$(ps -o stat= -p "$1" 2>/dev/null | cut -c1)" = Z ]; }

# start_bg NAME CMD...: starts CMD in the background, in a process group of its
# own, with stdout in $T/NAME.out and stderr in $T/NAME.err. Sets BG_PID.
# With OUTPUT_LIMIT_KB set, CMD may write at most that much to any file
# (ulimit -f): a program that prints without end is stopped by SIGXFSZ
# instead of filling the disk.
start_bg() {
    local name=$1 monitor=
    shift
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
