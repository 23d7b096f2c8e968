#!/usr/bin/env bash
# bench/bench.sh - how fast is a forking server? Numbers for the three lessons.
#
#  1. fork costs:           connection rates of step2 (no fork), step3 and step4
#                           (a fork per connection), at 1, 8 and 64 clients at once,
#                           beside bench/minfork, which does step4's work without stdio,
#                           and beside the other designs, the reference solutions of
#                           exercises 10-12: one process with poll, a thread per client,
#                           a pool of processes forked at start (the CPU time of each
#                           server's whole tree, threads and children included);
#  2. iteration blocks:     one silent client stalls step2 and not step3 or step4;
#  3. zombies pile up:      1000 connections held open against step3 and step4:
#                           memory per child, then the zombies step3 leaves behind;
#  4. what a client costs:  1000 silent clients held against every design: how many
#                           it serves at once, its processes, threads and memory (PSS);
#  5. and 20,000 connections through step4: nothing grows.
# The load generator's own ceiling is measured first, against bench/nullserver.
#
# Run:        make bench          (builds what it needs; about three minutes on a
#             quiet 2-core machine); QUICK=1 make bench: a smoke run in a fraction of that
# Writes:     build/bench/results.md (the same tables). bench/results.md, in git, is
#             the reference run that the tutorial quotes; make bench leaves it alone.
# Settings:   ROUNDS=5 CONNS=4000 HOLD=1000 ENDURANCE=20000 RESULTS=build/bench/results.md
#             POOL_SIZE=4 (the pool's processes) SOLUTIONS=exercises/solutions (where
#             10-one-process-poll/server.c, 11-... and 12-... are); QUICK=1 makes
#             the defaults ROUNDS=1 CONNS=500 HOLD=200 ENDURANCE=2000
# Read more:  bench/README.md
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.bash

RESULTS=${RESULTS:-build/bench/results.md}
QUICK=${QUICK:-0}           # 1: a smoke run, too short for numbers worth comparing
if [ "$QUICK" = 1 ]; then
    ROUNDS=${ROUNDS:-1} CONNS=${CONNS:-500} HOLD=${HOLD:-200} ENDURANCE=${ENDURANCE:-2000}
fi
ROUNDS=${ROUNDS:-5}         # each rate is the median of this many runs
CONNS=${CONNS:-4000}        # connections per run
HOLD=${HOLD:-1000}          # connections held open at once
ENDURANCE=${ENDURANCE:-20000}
POOL_SIZE=${POOL_SIZE:-4}   # processes in the pre-forked pool
SOLUTIONS=${SOLUTIONS:-exercises/solutions}
LEVELS=(1 8 64)             # clients at once
TARGET_RATIO=90             # step4 should reach this % of minfork's rate
SILENT_RATE=${SILENT_RATE:-2000}   # connections a second offered in the silent-client runs
began=$SECONDS

for prog in step2-loop/server step3-fork/server step4-reap/server \
            bench/loadgen bench/minfork bench/nullserver; do
    [ -x "$prog" ] || fail "$prog is missing: run 'make bench', not bench/bench.sh directly"
done

md="$WORK/results.md"
# say TEXT: a line of the report, to the terminal and to the results file.
say() { printf '%s\n' "$*" | tee -a "$md"; }
# row CELLS...: a Markdown table row whose columns line up in a terminal too:
# the first column is W0 characters wide, the others 14.
W0=14
row() {
    local line cell
    line=$(printf '| %-*s |' "$W0" "$1")
    shift
    for cell in "$@"; do line+=$(printf ' %-14s |' "$cell"); done
    say "$line"
}
# rule N: the Markdown line under a header row of N columns.
rule() {
    local line i
    line="|$(printf '%*s' $((W0 + 2)) '' | tr ' ' -)|"
    for ((i = 1; i < $1; i++)); do line+="----------------|"; done
    say "$line"
}
progress() { echo "  ... [$((SECONDS - began)) s] $*" >&2; }
# paragraph TEXT: TEXT said in lines of at most 88 characters.
paragraph() { printf '%s\n' "$1" | fold -s -w 88 | sed 's/ *$//' | while IFS= read -r line; do say "$line"; done; }
# times A B: A / B with one decimal ("-" unless both are positive numbers).
times() { awk -v a="$1" -v b="$2" 'BEGIN { if (a + 0 > 0 && b + 0 > 0) printf "%.1f", a / b; else print "-" }'; }
mkdir -p "$(dirname "$RESULTS")"
progress "results go to $RESULTS"

# make passes CC, CFLAGS and WARN (see the Makefile); run by hand, these are make's defaults.
CC=${CC:-cc} CFLAGS=${CFLAGS--O2 -g} WARN=${WARN:--std=c99 -pedantic -Wall -Wextra}

# The other designs: the reference solutions of exercises 10, 11 and 12, built
# here as make would build them (only the thread server needs -pthread). A
# design whose source is missing is left out, and the results say so.
declare -A SOURCE=(
    [poll]=10-one-process-poll/server.c [threads]=11-thread-per-client/server.c
    [pool]=12-pre-forked-pool/server.c
)
designs=() left_out=()
mkdir -p "$WORK/bin"
for d in poll threads pool; do
    src="$SOLUTIONS/${SOURCE[$d]}"
    if [ ! -f "$src" ]; then
        echo "  $d is left out of this run: its source, $src, is missing" >&2
        left_out+=("$d ($src is missing)")
        continue
    fi
    lib=""
    [ "$d" = threads ] && lib=-pthread
    # Exercise 10 serves at most 32 clients at once; the bench lets it hold
    # HOLD of them, as the other designs do, so that its memory is compared
    # on the same number of clients.
    [ "$d" = poll ] && lib="-DMAX_CLIENTS=$((HOLD + 24))"
    # shellcheck disable=SC2086 # flags, split on purpose
    $CC $WARN $CFLAGS -o "$WORK/bin/$d" "$src" $lib || fail "$src does not build"
    designs+=("$d")
done

verdict() { if [ "$1" -eq 1 ]; then echo "reached"; else echo "NOT reached"; fi; }

# The servers, and the command that starts each (a command line, split into
# words on purpose where it is used: hence ${NAME[$s]} without quotes). LD_BIND_NOW=1 makes the dynamic
# linker resolve every library function when the program starts, in the parent,
# instead of at its first call, which in a forking server is in every child.
declare -A NAME=(
    [nullserver]=bench/nullserver [minfork]=bench/minfork
    [step2]=step2-loop/server [step3]=step3-fork/server [step4]=step4-reap/server
    [step4+now]="env LD_BIND_NOW=1 step4-reap/server"
    [minfork+now]="env LD_BIND_NOW=1 bench/minfork"
    [poll]="$WORK/bin/poll" [threads]="$WORK/bin/threads"
    [pool]="env POOL_SIZE=$POOL_SIZE $WORK/bin/pool"
)
# The children a server keeps while idle: the pool's, made at start.
declare -A KIDS=([pool]=$POOL_SIZE)

# start NAME: starts server NAME and waits until it is idle and complete (the
# pool's children all made). Sets SPID, SPORT and IDLE_THREADS.
start() {
    # shellcheck disable=SC2086 # a command line, split on purpose
    start_server "$1" ${NAME[$1]}
    wait_until 30 live_children_are "$SPID" "${KIDS[$1]:-0}" ||
        echo "  warning: $1 has $(count_children "$SPID") children, not ${KIDS[$1]:-0}" >&2
    IDLE_THREADS=$(threads_of "$SPID")
}

# median_run FILES...: the report whose rate is the median of FILES.
median_run() {
    local f
    for f in "$@"; do echo "$(field rate "$f") $f"; done |
        sort -n | awk '{ run[NR] = $2 } END { print run[int((NR + 1) / 2)] }'
}
# sum_field NAME FILES...: NAME added up over several reports.
sum_field() {
    local name=$1 f total=0
    shift
    for f in "$@"; do total=$((total + $(field "$name" "$f"))); done
    echo "$total"
}

# settle PID [KIDS [THREADS]]: waits until the server is idle again: KIDS
# children still running (0: step3's stay as zombies, step4's disappear; the
# pool's stay), and THREADS threads in the server (1; a thread per client ends
# with its client); then prints how many zombies are left.
settle() {
    wait_until 30 idle "$1" "${2:-0}" "${3:-1}" ||
        echo "  warning: $1 is not idle: $(count_children "$1") children, $(threads_of "$1") threads" >&2
    count_children "$1" Z
}
idle() { live_children_are "$1" "$2" && [ "$(threads_of "$1")" -eq "$3" ]; }

# ---------------------------------------------------------------- the machine
# The machine: CPU model, cores, and whether it is a virtual machine (lscpu,
# from util-linux, knows; without it /proc/cpuinfo gives the model alone).
cpu=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo 2>/dev/null || true)
cores=$(lscpu 2>/dev/null | awk -F: '
    { gsub(/^ +/, "", $2) }
    $1 == "Core(s) per socket" { c = $2 } $1 == "Socket(s)" { s = $2 }
    $1 == "Thread(s) per core" { t = $2 } $1 == "Hypervisor vendor" { h = $2 }
    END { if (c && s) printf "%d cores, %d thread%s each", c * s, t, (t == 1 ? "" : "s")
          if (h) printf ", a %s virtual machine", h }')
# A server that holds HOLD clients at once needs a descriptor for each (the
# poll and thread servers in one process): raise the soft limit for everything
# started from here, up to the hard limit, which only root may raise.
nofile=$(ulimit -n) nofile_note=""
if [ "$nofile" != unlimited ] && [ "$nofile" -lt $((HOLD + 64)) ]; then
    old=$nofile
    ulimit -n $((HOLD + 64)) 2>/dev/null || ulimit -n "$(ulimit -Hn)" || true
    nofile=$(ulimit -n)
    nofile_note=", raised by bench.sh from $old"
    [ "$nofile" = unlimited ] || [ "$nofile" -ge $((HOLD + 64)) ] ||
        nofile_note+=": the hard limit, too few for $HOLD clients in one process"
fi
compiler=$($CC --version 2>/dev/null | head -n 1 || true)
# The command that reproduces this run: make bench, with whatever was not the default.
command=""
defaults="ROUNDS=5 CONNS=4000 HOLD=1000 ENDURANCE=20000 POOL_SIZE=4 SOLUTIONS=exercises/solutions"
if [ "$QUICK" = 1 ]; then
    command="QUICK=1 "
    defaults="ROUNDS=1 CONNS=500 HOLD=200 ENDURANCE=2000 POOL_SIZE=4 SOLUTIONS=exercises/solutions"
fi
for setting in "ROUNDS=$ROUNDS" "CONNS=$CONNS" "HOLD=$HOLD" "ENDURANCE=$ENDURANCE" \
               "POOL_SIZE=$POOL_SIZE" "SOLUTIONS=$SOLUTIONS"; do
    case " $defaults " in
        *" $setting "*) ;;
        *) command+="$setting " ;;
    esac
done
if [ "$CC" = cc ] && [ "$CFLAGS" = "-O2 -g" ]; then
    command+="make bench"
else
    command+="make CC='$CC' CFLAGS='$CFLAGS' bench"
fi
say "# How fast is a forking server?"
say ""
say "Measured by \`make bench\` (bench/bench.sh), which wrote this file; the exact command"
say "and the machine are listed below. Load comes from bench/loadgen over 127.0.0.1; each"
say "connection sends one line and reads the reply to end of file. The copy in"
say "bench/results.md is the reference run kept in git, which the tutorial quotes;"
say "\`make bench\` writes your run to build/bench/results.md and leaves the reference alone."
say "Compare rows of one run, not numbers from two machines."
say ""
say "- machine: ${cpu:-$(uname -m)}; $(nproc) CPUs${cores:+ ($cores)}"
say "- system: $(uname -sr)"
say "- compiler: ${compiler:-$CC}, with CFLAGS=$CFLAGS"
say "- date: $(date -u '+%Y-%m-%d %H:%M UTC')"
say "- command: \`$command\` (ROUNDS=$ROUNDS CONNS=$CONNS HOLD=$HOLD ENDURANCE=$ENDURANCE POOL_SIZE=$POOL_SIZE)"
say "- load average when the run began: $(cut -d' ' -f1-3 /proc/loadavg) (anything else running slows the numbers)"
say "- open files: the servers ran with a limit of $nofile descriptors (ulimit -n)$nofile_note"
say "- designs: poll, threads and pool are the reference solutions of exercises 10, 11 and 12"
say "  ($SOLUTIONS/10-one-process-poll, 11-thread-per-client, 12-pre-forked-pool); pool ran"
say "  with POOL_SIZE=$POOL_SIZE, $POOL_SIZE processes forked when it starts; poll was built"
say "  with -DMAX_CLIENTS=$((HOLD + 24)) (the exercise's limit is 32 clients at once)"
for d in ${left_out[@]+"${left_out[@]}"}; do
    say "- left out of this run: $d"
done
if [ "$QUICK" = 1 ]; then
    say "- QUICK=1: a smoke run, with too few connections for numbers worth comparing"
fi
say ""

# ---------------------------------------------------------------- 1. rates
progress "connection rates: $ROUNDS rounds of $CONNS connections per server and level"
servers=(nullserver step2 step3 step4 minfork step4+now minfork+now ${designs[@]+"${designs[@]}"})
for ((round = 1; round <= ROUNDS; round++)); do
    for c in "${LEVELS[@]}"; do
        # Rotate the order each round, so no server always runs first or last.
        for ((i = 0; i < ${#servers[@]}; i++)); do
            s=${servers[$(((i + round) % ${#servers[@]}))]}
            start "$s"
            out="$WORK/rate.$s.$c.$round"
            # The whole tree's time: the pool's children, the threads.
            # (step3's zombies are not counted: see below.)
            tree=cpu_faults_tree
            [ "$s" = step3 ] && tree=cpu_faults
            read -r cpu0 faults0 < <($tree "$SPID")
            loadgen "$out" -n "$CONNS" -c "$c" -m "$s"
            echo "zombies=$(settle "$SPID" "${KIDS[$s]:-0}" "$IDLE_THREADS")" >>"$out"
            read -r cpu1 faults1 < <($tree "$SPID")
            echo "cpu=$((cpu1 - cpu0)) faults=$((faults1 - faults0))" >>"$out"
            stop_server
        done
    done
done

say "## 1. Connection rate: what a fork costs"
say ""
say "Connections per second, median of $ROUNDS runs of $CONNS connections, each run against a"
say "freshly started server; latency is one whole conversation (connect to end of reply) in"
say "that median run. bench/nullserver forks nothing and prints nothing: its rate is the load"
say "generator's ceiling, so every server below it is measured, not the load generator."
say "CPU us/conn and faults/conn: the server's CPU time (its whole process tree: parent,"
say "threads and children, user and system) and minor page faults per connection, over"
say "all runs; a fork's cost is mostly the page faults that copy-on-write causes afterwards."
say "step3 never collects its children, so their share is not counted (-)."
say "poll, threads and pool are the other designs (exercises 10-12): one process that"
say "serves every connection from one poll() loop, a thread per connection, and a pool of"
say "$POOL_SIZE processes forked at start, each taking connections from the shared listening socket."
say ""
W0=11
row server "at once" "conn/s" "p50 ms" "p99 ms" "max ms" errors "CPU us/conn" "faults/conn" "zombies left"
rule 10
declare -A RATE CPU FAULTS P99
for s in "${servers[@]}"; do
    for c in "${LEVELS[@]}"; do
        runs=()
        for ((round = 1; round <= ROUNDS; round++)); do runs+=("$WORK/rate.$s.$c.$round"); done
        m=$(median_run "${runs[@]}")
        RATE[$s.$c]=$(field rate "$m")
        P99[$s.$c]=$(field p99_ms "$m")
        # The server's CPU time and page faults, parent and children, over all
        # runs (clock ticks are coarse); step3 never reaps, so it has none.
        per_conn=$(cat "${runs[@]}" | awk -v hz="$(getconf CLK_TCK)" -v s="$s" '
            /^conns=/ { split($2, kv, "="); ok += kv[2] }
            /^cpu=/   { split($1, a, "="); split($2, b, "="); cpu += a[2]; faults += b[2] }
            END { if (s == "step3" || ok == 0) print "- -"; else printf "%.0f %.1f\n", cpu * 1e6 / hz / ok, faults / ok }')
        read -r "CPU[$s.$c]" "FAULTS[$s.$c]" <<<"$per_conn"
        row "$s" "$c" "${RATE[$s.$c]}" "$(field p50_ms "$m")" "$(field p99_ms "$m")" \
            "$(field max_ms "$m")" "$(sum_field errors "${runs[@]}")" "${CPU[$s.$c]}" "${FAULTS[$s.$c]}" \
            "$(sed -n 's/^zombies=//p' "$m")"
    done
done
say ""
c=8
say "Fork costs: at $c clients at once step2 serves ${RATE[step2.$c]} connections a second and"
say "step4 ${RATE[step4.$c]}. step2 spends ${CPU[step2.$c]} µs of CPU on a connection, step4"
say "${CPU[step4.$c]} µs: a new process for each client, and its end, cost about"
say "$(( ${CPU[step4.$c]} - ${CPU[step2.$c]} )) µs, with ${FAULTS[step4.$c]} page faults where step2 has ${FAULTS[step2.$c]}."
say "Zombies pile up: step3 is as fast as step4, but leaves a zombie for every"
say "connection (last column) until it exits."
headroom=$(awk -v a="${RATE[nullserver.$c]}" -v b="${RATE[minfork+now.$c]}" 'BEGIN { printf "%.1f", (b > 0 ? a / b : 0) }')
say "The load generator is not what limits these numbers: against bench/nullserver it makes"
say "${RATE[nullserver.$c]} connections a second at $c at once, ${headroom} times the fastest forking server."
say ""
if [ ${#designs[@]} -gt 0 ]; then
    text="The other designs, at $c clients at once:"
    for d in "${designs[@]}"; do
        text+=" $d serves ${RATE[$d.$c]} connections a second with ${CPU[$d.$c]} µs of CPU each,"
    done
    text+=" where step4 serves ${RATE[step4.$c]} with ${CPU[step4.$c]} µs and step2 ${RATE[step2.$c]} with ${CPU[step2.$c]} µs."
    if [ -n "${CPU[threads.$c]:-}" ]; then
        thread_cost=$(( ${CPU[threads.$c]} - ${CPU[step2.$c]} ))
        text+=" Beyond step2's work, a thread per connection costs $thread_cost µs of CPU and a process"
        text+=" $(( ${CPU[step4.$c]} - ${CPU[step2.$c]} )) µs"
        if [ "$thread_cost" -gt 0 ]; then
            text+=", $(times $(( ${CPU[step4.$c]} - ${CPU[step2.$c]} )) "$thread_cost") times as much."
        else
            text+="; the thread's cost is lost in this run's noise."
        fi
    fi
    [ -n "${CPU[pool.$c]:-}" ] &&
        text+=" The pool forks nothing per connection: its $POOL_SIZE processes spend ${CPU[pool.$c]} µs on each."
    [ -n "${RATE[poll.$c]:-}" ] &&
        text+=" poll's rate is $(awk -v a="${RATE[poll.$c]}" -v b="${RATE[nullserver.$c]}" 'BEGIN { printf "%.0f", (b > 0 ? 100 * a / b : 0) }')% of nullserver's, the load generator's ceiling (also one process with poll, but printing nothing): near 100%, loadgen limits poll too."
    c=64
    text+=" With $c clients at once, 99% of conversations ended within (p99)"
    for d in step2 step4 "${designs[@]}"; do text+=" ${P99[$d.$c]} ms ($d),"; done
    text="${text%,}."
    paragraph "$text"
    say ""
    c=8
fi

say "### step4 against the same work without stdio"
say ""
say "bench/minfork does for each connection what step4 does, with the same system calls in"
say "the same order: fork, read the line, print \"Here is the message: ...\" (escaped the same"
say "way, in one write), reply, shut down its side, read to the client's end of file, close,"
say "exit, and a SIGCHLD handler that reaps. The one difference: it builds the printed line"
say "in an array of its own, where step4's child uses stdio (fputs, putchar). So the ratio"
say "below is what stdio costs a forking server; 100% would mean it costs nothing."
say "step4 and minfork ran one after the other in every round; each ratio is the median of"
say "the $ROUNDS rounds' ratios, so that a round slowed down by something else on the machine"
say "slows both, and the next column shows how far the rounds' ratios spread. The last"
say "columns repeat the comparison with both programs run with LD_BIND_NOW=1 (see below)."
say ""
# ratios A B C: A's rate / B's rate in %, at C clients at once, one line per round.
ratios() {
    local round
    for ((round = 1; round <= ROUNDS; round++)); do
        awk -v a="$(field rate "$WORK/rate.$1.$3.$round")" -v b="$(field rate "$WORK/rate.$2.$3.$round")" \
            'BEGIN { printf "%.0f\n", (b > 0 ? 100 * a / b : 0) }'
    done | sort -n
}
# median_ratio A B C: the median of those; ratio_spread A B C: "lowest-highest%".
median_ratio() { ratios "$@" | awk '{ r[NR] = $1 } END { print r[int((NR + 1) / 2)] }'; }
ratio_spread() { ratios "$@" | awk 'NR == 1 { lo = $1 } { hi = $1 } END { printf "%s-%s%%", lo, hi }'; }
W0=8
row "at once" "step4 conn/s" "minfork conn/s" "step4/minfork" "rounds' ratios" \
    "bind-now step4" "bind-now minfork" "bind-now ratio"
rule 8
ratio_ok=1 ratio_low="" ratio_noise=0
declare -A PCT PCTNOW SPREAD
for c in "${LEVELS[@]}"; do
    PCT[$c]=$(median_ratio step4 minfork "$c")
    SPREAD[$c]=$(ratio_spread step4 minfork "$c")
    PCTNOW[$c]=$(median_ratio step4+now minfork+now "$c")
    if [ "${PCT[$c]}" -lt "$TARGET_RATIO" ]; then
        ratio_ok=0
        ratio_low+="${ratio_low:+, }$c"
        # Some round reached the target: the median is within this run's noise.
        if [ "$(ratios step4 minfork "$c" | tail -n 1)" -ge "$TARGET_RATIO" ]; then ratio_noise=1; fi
    fi
    row "$c" "${RATE[step4.$c]}" "${RATE[minfork.$c]}" "${PCT[$c]}%" "${SPREAD[$c]}" \
        "${RATE[step4+now.$c]}" "${RATE[minfork+now.$c]}" "${PCTNOW[$c]}%"
done
say ""
say "Where stdio's cost comes from. After fork, parent and child share their memory"
say "copy-on-write, and Linux does not even copy the page-table entries of a mapping the"
say "parent has never written to, such as the C library's code (mm/memory.c,"
say "vma_needs_copy()): the child takes a page fault for each such page it touches. step4's"
say "child runs more library code than minfork's, and writes to pages the parent wrote to"
say "before (stdout's buffer and its FILE), each of which is copied at the first write: step4"
say "has ${FAULTS[step4.8]} page faults per connection to minfork's ${FAULTS[minfork.8]}. And by default the dynamic linker looks"
say "a library function up at its first call; when that call is in a child (fputs, putchar"
say "in step4), every child looks it up again. LD_BIND_NOW=1 looks them all up once, when"
say "the program starts: then step4 has ${FAULTS[step4+now.8]} faults per connection and minfork"
say "${FAULTS[minfork+now.8]}, and step4's CPU per connection goes from ${CPU[step4.8]} to ${CPU[step4+now.8]} µs. Linking with"
say "-Wl,-z,now does the same."
say ""

# ---------------------------------------------------------------- 2. one silent client
progress "one silent client against step2, step3, step4"
for s in step2 step3 step4; do
    # shellcheck disable=SC2086 # a command line, split on purpose
    start_server "$s" ${NAME[$s]}
    loadgen "$WORK/silent.$s" -d 5 -c 8 -r "$SILENT_RATE" -s 0.5 -q 1:3 -m silent
    stop_server
done
say "## 2. One silent client: iteration blocks"
say ""
say "Eight clients load each server for 5 s with $SILENT_RATE connections a second, well within what"
say "each can serve. From 1 s to 4 s one more client is connected and sends nothing."
say "(The load is limited because step3 keeps a zombie per connection: at full speed it"
say "would run this machine out of process IDs within the 5 s.) Connections completed in"
say "each half second:"
say ""
W0=12
row "seconds" step2 step3 step4 ""
rule 5
while read -r from to; do
    note=""
    awk -v f="$from" 'BEGIN { exit !(f >= 1 && f < 4) }' && note="silent client connected"
    cells=()
    for s in step2 step3 step4; do
        cells+=("$(awk -v f="$from" '$1 == "slice" && $2 == f { print $4 }' "$WORK/silent.$s")")
    done
    row "$from-$to s" "${cells[@]}" "$note"
done < <(awk '$1 == "slice" { print $2, $3 }' "$WORK/silent.step2")
say ""
W0=30
row "" step2 step3 step4
rule 4
during() { awk '$1 == "slice" && $2 >= 1.5 && $3 <= 4 { n += $4; t += $3 - $2 } END { printf "%.0f", (t > 0 ? n / t : 0) }' "$1"; }
before() { awk '$1 == "slice" && $3 <= 1 { n += $4; t += $3 - $2 } END { printf "%.0f", (t > 0 ? n / t : 0) }' "$1"; }
row "conn/s before (0-1 s)" "$(before "$WORK/silent.step2")" "$(before "$WORK/silent.step3")" "$(before "$WORK/silent.step4")"
row "conn/s while silent (1.5-4 s)" "$(during "$WORK/silent.step2")" "$(during "$WORK/silent.step3")" "$(during "$WORK/silent.step4")"
row "slowest conversation, ms" "$(field max_ms "$WORK/silent.step2")" "$(field max_ms "$WORK/silent.step3")" "$(field max_ms "$WORK/silent.step4")"
row "errors" "$(field errors "$WORK/silent.step2")" "$(field errors "$WORK/silent.step3")" "$(field errors "$WORK/silent.step4")"
say ""
say "step2 serves nobody while it waits for the silent client: every other client waits"
say "behind it for up to 3 s. step3 and step4 give the silent client a process of its own."
say ""

# ---------------------------------------------------------------- 3. memory, zombies
progress "memory per connection: $HOLD connections held open against step4 and step3"
declare -A MEM
for s in step4 step3; do
    # shellcheck disable=SC2086 # a command line, split on purpose
    start_server "$s" ${NAME[$s]}
    start_holding "$WORK/hold.$s" "$HOLD"
    wait_until 60 live_children_are "$SPID" "$HOLD" || echo "  warning: $s has $(count_children "$SPID") children, not $HOLD" >&2
    kids=$(child_pids "$SPID")
    MEM[$s.procs]=$((1 + $(echo "$kids" | wc -w)))
    MEM[$s.rss]=$(rss_kb "$SPID")
    MEM[$s.pss]=$(pss_kb "$SPID")
    MEM[$s.fds]=$(fd_count "$SPID")
    read -r "MEM[$s.crss]" "MEM[$s.cpss]" "MEM[$s.cpss_all]" < <(
        for k in $kids; do echo "/proc/$k/smaps_rollup"; done |
            xargs awk '/^Rss:/ { r += $2 } /^Pss:/ { p += $2; n++ }
                       END { if (n) printf "%.0f %.0f %.1f\n", r / n, p / n, p / 1024; else print "n/a n/a n/a" }')
    release_held "$WORK/hold.$s"
    MEM[$s.served]=$(field ok "$WORK/hold.$s")
    MEM[$s.errors]=$(field errors "$WORK/hold.$s")
    MEM[$s.zombies]=$(settle "$SPID")
    MEM[$s.zrss]=$(for k in $(child_pids "$SPID" | head -n 1); do awk '/^VmRSS:/ { print $2 } END { if (!NR) print 0 }' "/proc/$k/status"; done)
    stop_server
done
say "## 3. Memory per connection, and the zombies"
say ""
say "$HOLD clients connect at once and stay silent, so the server has $HOLD children at the"
say "same time; then all of them send their line. RSS counts every page a process can"
say "touch; PSS divides each page shared with other processes by their number, so the"
say "children's PSS adds up to the memory they really cost (after fork nearly every page is"
say "shared with the parent until someone writes to it)."
say ""
W0=32
row "" step3 step4
rule 3
row "connections held at once" "$HOLD" "$HOLD"
row "processes (parent + children)" "${MEM[step3.procs]}" "${MEM[step4.procs]}"
row "parent RSS / PSS, kB" "${MEM[step3.rss]} / ${MEM[step3.pss]}" "${MEM[step4.rss]} / ${MEM[step4.pss]}"
row "parent descriptors" "${MEM[step3.fds]}" "${MEM[step4.fds]}"
row "per child RSS / PSS, kB (mean)" "${MEM[step3.crss]} / ${MEM[step3.cpss]}" "${MEM[step4.crss]} / ${MEM[step4.cpss]}"
row "all children's PSS, MB" "${MEM[step3.cpss_all]}" "${MEM[step4.cpss_all]}"
row "clients served (errors)" "${MEM[step3.served]} (${MEM[step3.errors]})" "${MEM[step4.served]} (${MEM[step4.errors]})"
row "zombies afterwards" "${MEM[step3.zombies]}" "${MEM[step4.zombies]}"
say ""
say "A zombie holds no memory (RSS ${MEM[step3.zrss]:-0} kB) but keeps its process ID and its entry in"
say "the process table until its parent exits: this machine has $(cat /proc/sys/kernel/pid_max)"
say "process IDs, so step3 stops being able to fork after that many connections."
say ""

# ---------------------------------------------------------------- 4. every design holding clients
progress "$HOLD silent clients held against each design"
held_servers=(step2 step4 minfork ${designs[@]+"${designs[@]}"})
declare -A HELD
# holding_all PID N: the server has taken all the N connections it will: each
# is held by the server or waits in its listen queue, and every thread of the
# server sleeps (a server that sleeps while connections wait in its queue
# takes no more of them; one that still accepts is running). Seen twice in a
# row, because the kernel queues a connection a moment before it wakes the
# thread asleep in accept().
holding_all() { holding_now "$@" && sleep 0.05 && holding_now "$@"; }
holding_now() { tree_asleep "$1" && [ $(($(sockets_held "$1") + $(queued "$SPORT"))) -eq "$2" ]; }
for s in "${held_servers[@]}"; do
    start "$s"
    read -r _ _ "HELD[$s.idle]" < <(tree_memory "$SPID")
    start_holding "$WORK/held.$s" "$HOLD"
    # Well within the 120 s for which loadgen -H waits to be released.
    wait_until 90 holding_all "$SPID" "$HOLD" ||
        echo "  warning: $s holds $(sockets_held "$SPID") connections and $(queued "$SPORT") wait in its queue, and it is still busy" >&2
    HELD[$s.serving]=$(sockets_held "$SPID")
    HELD[$s.queued]=$(queued "$SPORT")
    read -r "HELD[$s.procs]" "HELD[$s.threads]" "HELD[$s.pss]" < <(tree_memory "$SPID")
    release_held "$WORK/held.$s"
    HELD[$s.answered]=$(field ok "$WORK/held.$s")
    HELD[$s.errors]=$(field errors "$WORK/held.$s")
    stop_server
done
say "## 4. $HOLD silent clients: what each design holds"
say ""
paragraph "$HOLD clients connect at once and send nothing, against a freshly started server. \
When the server holds all it will (every one of them, or as many as it serves at once: one \
for step2, one per process for pool, as many as a design sets as its limit; the rest wait \
in the listen queue, which the kernel keeps for the server), the table gives how many it \
serves, how many wait in the listen queue (ss), its processes and threads, the PSS of its \
whole process tree, idle and holding the clients (from /proc/PID/smaps_rollup of every \
process; PSS divides each page among the processes sharing it, so the tree's sum is what \
it really costs), and what it grew by for each client it serves. The socket buffers are \
the kernel's memory, not mapped into the server, so PSS does not count them (proc(5), \
/proc/pid/smaps). Then all the clients send their line and read the reply (last column)."
say ""
W0=11
row server "clients being served" "in the listen queue" processes threads "PSS kB idle" "PSS kB holding" "kB per client served" "answered (errors)"
rule 9
for s in "${held_servers[@]}"; do
    # What each client served costs: the memory the tree grew by, per client it took.
    HELD[$s.per]=$(awk -v a="${HELD[$s.pss]}" -v b="${HELD[$s.idle]}" -v n="${HELD[$s.serving]}" \
        'BEGIN { if (n > 0) printf "%.1f", (a - b) / n; else print "-" }')
    row "$s" "${HELD[$s.serving]} of $HOLD" "${HELD[$s.queued]}" "${HELD[$s.procs]}" "${HELD[$s.threads]}" \
        "${HELD[$s.idle]}" "${HELD[$s.pss]}" "${HELD[$s.per]}" "${HELD[$s.answered]} (${HELD[$s.errors]})"
done
say ""
# mb KB: kilobytes as megabytes, one decimal.
mb() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }
text="Holding $HOLD silent clients:"
for s in "${held_servers[@]}"; do
    text+=" $s serves ${HELD[$s.serving]}"
    [ "${HELD[$s.queued]}" -eq 0 ] || text+=" (${HELD[$s.queued]} wait in the listen queue)"
    text+=" with ${HELD[$s.procs]} process$([ "${HELD[$s.procs]}" -eq 1 ] || echo es)"
    [ "${HELD[$s.threads]}" -eq "${HELD[$s.procs]}" ] || text+=" of ${HELD[$s.threads]} threads"
    text+=" in $(mb "${HELD[$s.pss]}") MB of PSS"
    [ "${HELD[$s.per]}" = - ] || text+=", ${HELD[$s.per]} kB per client served"
    text+=";"
done
text="${text%;}."
if [ -n "${HELD[threads.per]:-}" ]; then
    text+=" A client served by a process of its own (step4) costs $(times "${HELD[step4.per]}" "${HELD[threads.per]}") times the memory of one served by a thread of its own (threads)."
fi
text+=" A server that serves fewer clients than are connected leaves the others in the queue, and a silent client keeps its place for as long as it stays."
answered=0
for s in "${held_servers[@]}"; do [ "${HELD[$s.answered]}" = "$HOLD" ] && answered=$((answered + 1)); done
text+=" When they all spoke, $answered of the ${#held_servers[@]} servers answered every one of them."
paragraph "$text"
say ""

# ---------------------------------------------------------------- 5. endurance
progress "$ENDURANCE connections through step4"
start step4
loadgen "$WORK/warmup" -n 1000 -c 8 -m warmup
settle "$SPID" >/dev/null
fds0=$(fd_count "$SPID") rss0=$(rss_kb "$SPID") pss0=$(pss_kb "$SPID")
loadgen "$WORK/endurance" -n "$ENDURANCE" -c 8 -m endurance
zombies=$(settle "$SPID")
wait_until 30 children_are "$SPID" 0 || true
fds1=$(fd_count "$SPID") rss1=$(rss_kb "$SPID") pss1=$(pss_kb "$SPID")
children1=$(count_children "$SPID")
served=$(field ok "$WORK/endurance")
stop_server
say "## 5. $ENDURANCE connections through step4"
say ""
W0=24
row "" before after
rule 3
row "clients served (errors)" "" "$served ($(field errors "$WORK/endurance"))"
row "parent descriptors" "$fds0" "$fds1"
row "parent RSS, kB" "$rss0" "$rss1"
row "parent PSS, kB" "$pss0" "$pss1"
row "children left / zombies" "0 / 0" "$children1 / $zombies"
say ""

# ---------------------------------------------------------------- targets
flat=0
[ "$fds1" = "$fds0" ] && [ "$rss1" = "$rss0" ] && [ "$zombies" -eq 0 ] && [ "$children1" -eq 0 ] &&
    [ "$served" -eq "$ENDURANCE" ] && flat=1
all_served=0
[ "${MEM[step4.procs]}" -eq $((HOLD + 1)) ] && [ "${MEM[step4.served]}" -eq "$HOLD" ] && all_served=1
say "## Targets"
say ""
W0=58
row target measured result
rule 3
# The first row measures a cost, it does not check that something works, so
# its result says what the number means rather than "NOT reached".
if [ "$ratio_ok" -eq 1 ]; then
    ratio_result="reached"
elif [ "$ratio_noise" -eq 1 ]; then
    ratio_result="not shown (at $ratio_low at once): its rounds fall on both sides of $TARGET_RATIO%, too noisy to tell; nothing is broken"
else
    ratio_result="no (at $ratio_low at once): stdio costs step4 over $((100 - TARGET_RATIO))% of its rate here; nothing is broken"
fi
row "step4 >= $TARGET_RATIO% of minfork's rate (same work, no stdio)" \
    "$(for c in "${LEVELS[@]}"; do printf '%s%% at %s' "${PCT[$c]}" "$c"; [ "$c" = "${LEVELS[${#LEVELS[@]} - 1]}" ] || printf '; '; done)" \
    "$ratio_result"
row "loadgen's ceiling at least twice any forking server's rate" \
    "nullserver ${RATE[nullserver.8]}/s, ${headroom}x" "$(verdict "$(awk -v h="$headroom" 'BEGIN { print (h >= 2) }')")"
row "$HOLD simultaneous clients all served by step4" \
    "${MEM[step4.procs]} processes, ${MEM[step4.served]} served" "$(verdict "$all_served")"
row "$HOLD silent clients, then their lines: every design answers all" \
    "$answered of ${#held_servers[@]} servers" "$(verdict "$([ "$answered" -eq "${#held_servers[@]}" ] && echo 1 || echo 0)")"
row "$ENDURANCE connections: fds, memory flat, no zombies" \
    "fds $fds0->$fds1, RSS $rss0->$rss1 kB, zombies $zombies" "$(verdict "$flat")"
say ""
say "The first row is a measurement, not a check: minfork does step4's work without stdio,"
say "so step4's share of minfork's rate says how much of a forking server's time stdio"
say "takes. The bench aims for at least $TARGET_RATIO%, so that the teaching code costs little beyond"
say "the fork itself. A lower share says stdio costs more than that on this machine (or that"
say "something else was running: see the rounds' ratios above), not that step4 is broken;"
say "section 1 counts every connection that failed (errors). The other rows are checks:"
say "NOT reached there means something went wrong, with step4, loadgen or the machine."
say ""
say "The whole run took $((SECONDS - began)) s."

cp "$md" "$RESULTS"
echo "Written to $RESULTS. (bench/results.md, in git, is the reference run; it is unchanged.)" >&2
