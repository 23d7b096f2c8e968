# bench/lib.bash - shared by bench/bench.sh and bench/stress.sh.
#
# Starting and stopping servers, running the load generator, and reading what
# the kernel knows about a process (memory, descriptors, children) from /proc
# and ps. Every server runs in a process group of its own, and the trap set
# here kills every group on the way out, so no forked child outlives a run.

WORK=$(mktemp -d "${TMPDIR:-/tmp}/bench.XXXXXX")
SERVER_PIDS=()
LOADGEN=bench/loadgen

cleanup() {
    local pid
    for pid in "${SERVER_PIDS[@]}"; do
        kill -TERM -- "-$pid" 2>/dev/null || true
    done
    for pid in "${SERVER_PIDS[@]}"; do
        wait "$pid" 2>/dev/null || true
    done
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

fail() { echo "$0: $*" >&2; exit 1; }

# wait_until SECONDS CMD...: runs CMD every 20 ms until it succeeds; fails after SECONDS.
wait_until() {
    local end=$((SECONDS + $1))
    shift
    until "$@"; do
        [ "$SECONDS" -lt "$end" ] || return 1
        sleep 0.02
    done
}

# start_server NAME PROGRAM [ARGS...]: starts PROGRAM ARGS... 0 (port 0), stdout
# appended to $WORK/NAME.out (O_APPEND: the children's lines cannot overwrite
# each other), stderr to $WORK/NAME.err. Sets SPID and SPORT.
start_server() {
    local name=$1 prog=$2
    shift
    : >"$WORK/$name.out"
    : >"$WORK/$name.err"
    set -m
    "$@" 0 >>"$WORK/$name.out" 2>>"$WORK/$name.err" </dev/null &
    SPID=$!
    set +m
    SERVER_PIDS+=("$SPID")
    wait_until 10 grep -q '^Listening on port' "$WORK/$name.out" ||
        fail "$prog did not announce its port: $(cat "$WORK/$name.err")"
    SPORT=$(sed -n 's/^Listening on port \([0-9][0-9]*\)$/\1/p' "$WORK/$name.out")
}

# stop_server: kills the last server started, with its whole process group.
# Its zombies (step3's) pass to process 1, which reaps them in its own time;
# until it has, they hold process IDs, and thousands of them could leave this
# machine without any to give. So wait until few zombies are left anywhere.
stop_server() {
    kill -TERM -- "-$SPID" 2>/dev/null || true
    wait "$SPID" 2>/dev/null || true
    wait_until 30 few_zombies || echo "  warning: $(zombies_anywhere) zombies are still waiting for process 1" >&2
}
zombies_anywhere() { ps -A -o stat= | grep -c '^Z' || true; }
few_zombies() { [ "$(zombies_anywhere)" -lt 2000 ]; }

# tree_pids PID: PID and every process descended from it (its children,
# theirs, ...), zombies included, PID first.
tree_pids() {
    ps -A -o pid= -o ppid= | awk -v root="$1" '
        { parent[NR] = $2; pid[NR] = $1 }
        END { inside[root] = 1; print root
              do { more = 0
                   for (i = 1; i <= NR; i++)
                       if (!(pid[i] in inside) && (parent[i] in inside)) { inside[pid[i]] = 1; print pid[i]; more = 1 }
              } while (more) }'
}

# cpu_faults_tree PID: the same for PID's whole tree: every process in it
# (each one's /proc/PID/stat counts all its threads, also those that have
# ended) with the children each has reaped. A pre-forked pool's children
# live as long as the server, so their parent never collects their time.
# The parent is read first: a child reaped in between is missed, never
# counted twice.
cpu_faults_tree() {
    local pid files=()
    for pid in $(tree_pids "$1"); do files+=("/proc/$pid/stat"); done
    { cat "${files[@]}" 2>/dev/null || true; } |
        sed 's/^.*) //' | awk '{ cpu += $12 + $13 + $14 + $15; faults += $8 + $9 }
                               END { print cpu + 0, faults + 0 }'
}

# tree_memory PID: "PROCESSES THREADS PSS_KB" of the live processes in PID's
# tree (zombies have no memory and no threads left).
tree_memory() {
    local pid files=()
    for pid in $(tree_pids "$1"); do
        [ -r "/proc/$pid/smaps_rollup" ] && files+=("/proc/$pid/status" "/proc/$pid/smaps_rollup")
    done
    awk '/^State:/ { live = ($2 != "Z"); procs += live }
         /^Threads:/ && live { threads += $2 }
         /^Pss:/ && live { pss += $2 }
         END { print procs + 0, threads + 0, pss + 0 }' "${files[@]}"
}

# sockets_held PID: the connections PID's tree holds open: the distinct
# sockets among the descriptors of all its processes, less one, the
# listening socket (a forked child's copy of a descriptor is the same socket).
sockets_held() {
    local pid dirs=()
    for pid in $(tree_pids "$1"); do dirs+=("/proc/$pid/fd"); done
    find "${dirs[@]}" -lname 'socket:*' -printf '%l\n' 2>/dev/null | sort -u | awk 'END { print (NR > 0 ? NR - 1 : 0) }'
}

# tree_asleep PID: every thread of every process in PID's tree is asleep
# (state S, waiting for something) or a zombie: none is running or ready to.
tree_asleep() {
    local pid files=()
    for pid in $(tree_pids "$1"); do files+=("/proc/$pid/task/"*/stat); done
    { cat "${files[@]}" 2>/dev/null || true; } | sed 's/^.*) //' | awk '$1 != "S" && $1 != "Z" { busy++ } END { exit busy > 0 }'
}

# queued PORT: the connections the kernel has completed on the listening
# socket at PORT and nobody has accepted yet (the listen queue, from ss).
queued() { ss -Hltn "sport = :$1" | awk '{ print $2; exit }'; }

# threads_of PID: how many threads the process PID runs.
threads_of() { awk '/^Threads:/ { print $2 }' "/proc/$1/status"; }

# cpu_faults PID: the CPU time (in clock ticks) and minor page faults of PID
# and of all the children it has reaped, from /proc/PID/stat. Children that
# are still zombies are not included: step3's are never counted.
cpu_faults() {
    # The second field, the command name, is in parentheses: drop it first.
    sed 's/^.*) //' "/proc/$1/stat" | awk '{ print $12 + $13 + $14 + $15, $8 + $9 }'
}

# loadgen OUTFILE ARGS...: runs the load generator against the last server
# started; its report goes to OUTFILE, and its errors to OUTFILE.err. A run
# with errors is not fatal here: the errors are counted in the report.
loadgen() {
    local out=$1
    shift
    "$LOADGEN" "$@" 127.0.0.1 "$SPORT" >"$out" 2>"$out.err" </dev/null || true
    grep -q '^conns=' "$out" || fail "loadgen $* gave no report: $(cat "$out.err")"
}

# field NAME FILE: the value of NAME=... in the report line of FILE.
field() {
    awk -v k="$1=" '/^conns=/ { for (i = 1; i <= NF; i++) if (index($i, k) == 1) v = substr($i, length(k) + 1) }
                    END { print v }' "$2"
}

# start_holding OUTFILE N: the load generator opens N connections to the last
# server started and keeps them silent until release_held; waits until all
# are open. Sets HPID.
start_holding() {
    rm -f "$WORK/go"
    set -m
    "$LOADGEN" -H "$2" -w "$WORK/go" -m "${HOLD_PREFIX:-held}" -k "${HOLD_FIRST:-0}" \
        127.0.0.1 "$SPORT" >"$1" 2>"$1.err" </dev/null &
    HPID=$!
    set +m
    SERVER_PIDS+=("$HPID")
    wait_until 60 holding "$1" || fail "loadgen -H $2 did not open its connections: $(cat "$1.err")"
}

# release_held OUTFILE: lets the held connections talk, waits for the report.
release_held() {
    touch "$WORK/go"
    wait "$HPID" || true
    grep -q '^conns=' "$1" || fail "loadgen -H gave no report: $(cat "$1.err")"
}

# ---------------------------------------------------------------- /proc and ps

# rss_kb PID: resident memory; pss_kb PID: proportional share, where pages
# shared with other processes (after fork, nearly all) count as a fraction.
rss_kb() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"; }
pss_kb() { awk '/^Pss:/ { print $2 }' "/proc/$1/smaps_rollup" 2>/dev/null || echo "n/a"; }
fd_count() { ls "/proc/$1/fd" | wc -l | tr -d ' '; }

# child_pids PID: the processes whose parent is PID.
child_pids() { ps -A -o pid= -o ppid= | awk -v p="$1" '$2 == p { print $1 }'; }

# count_children PID [STATE]: as in tests/helper.bash; STATE Z counts zombies.
count_children() {
    ps -A -o ppid= -o stat= | awk -v p="$1" -v s="${2:-}" \
        '$1 == p && substr($2, 1, length(s)) == s { n++ } END { print n + 0 }'
}
children_are() { [ "$(count_children "$1" "${3:-}")" -eq "$2" ]; }
# live_children_are PID N: N children of PID are running (zombies not counted).
live_children_are() {
    [ "$(ps -A -o ppid= -o stat= | awk -v p="$1" '$1 == p && $2 !~ /^Z/ { n++ } END { print n + 0 }')" -eq "$2" ]
}
# holding FILE: loadgen -H has said that all its connections are open. (-s: the
# file may not exist yet, in the moment before the background shell creates it.)
holding() { grep -qs '^holding' "$1"; }
