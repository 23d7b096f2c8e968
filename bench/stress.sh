#!/usr/bin/env bash
# bench/stress.sh - step4 through tens of thousands of connections, with assertions.
#
# One step4 server takes, in turn: a warm-up; CONNS connections, 16 at a time;
# BURSTS bursts of BURST clients connected all at once (held silent until every
# one has its own child process, then all talk together); and HALF connections
# that half-close as client/client does. Every connection sends a message no
# other sends. Then it checks that
#   - every client got its reply, and nothing failed;
#   - no child is left over, and no zombie;
#   - the parent's descriptors and memory are where they were after the warm-up
#     (checked after every phase);
#   - the server logged every message exactly once, and nothing on stderr.
# It prints each check and exits 1 if any fails. Not part of `make test`.
#
# Run:        make stress             (about 20 s on 2 cores)
# Settings:   CONNS=30000 BURSTS=10 BURST=500 HALF=3000 SERVER=step4-reap/server
# Read more:  bench/README.md
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.bash

CONNS=${CONNS:-30000}
BURSTS=${BURSTS:-10}
BURST=${BURST:-500}
HALF=${HALF:-3000}
SERVER=${SERVER:-step4-reap/server}   # SERVER=step3-fork/server shows the checks failing
WARMUP=1000
began=$SECONDS
failures=0

for prog in "$SERVER" bench/loadgen; do
    [ -x "$prog" ] || fail "$prog is missing: run 'make stress', not bench/stress.sh directly"
done

# check DESCRIPTION CMD...: runs CMD; prints ok or FAILED with the description.
check() {
    local what=$1
    shift
    if "$@"; then
        echo "ok      $what"
    else
        echo "FAILED  $what"
        failures=$((failures + 1))
    fi
}
equals() { [ "$1" = "$2" ]; }

# served_all REPORT N: the load generator's report says N served, no errors.
served_all() { [ "$(field ok "$1")" = "$2" ] && [ "$(field errors "$1")" = 0 ]; }

# settled: no child of the server is running or waiting to be reaped.
settled() { wait_until 30 children_are "$SPID" 0; }

# flat PHASE: descriptors and memory are what they were after the warm-up.
flat() {
    local fds rss
    fds=$(fd_count "$SPID")
    rss=$(rss_kb "$SPID")
    echo "        after $1: $(count_children "$SPID") children, $(count_children "$SPID" Z) zombies," \
         "$fds descriptors, RSS $rss kB (after warm-up: $fds0, $rss0 kB)"
    check "parent's descriptors unchanged after $1" equals "$fds" "$fds0"
    check "parent's memory (RSS) unchanged after $1" equals "$rss" "$rss0"
}

start_server step4 "$SERVER"
echo "$SERVER (pid $SPID) on port $SPORT"

loadgen "$WORK/warmup" -n "$WARMUP" -c 8 -m warmup
check "warm-up: $WARMUP clients served" served_all "$WORK/warmup" "$WARMUP"
settled || true
fds0=$(fd_count "$SPID")
rss0=$(rss_kb "$SPID")

echo "$CONNS connections, 16 at a time"
loadgen "$WORK/main" -n "$CONNS" -c 16 -m stress
echo "        $(cat "$WORK/main")"
check "$CONNS clients served, no errors" served_all "$WORK/main" "$CONNS"
check "no child left over, no zombie" settled
flat "$CONNS connections"

echo "$BURSTS bursts of $BURST clients at once"
burst_ok=1 peak_ok=1
for ((b = 0; b < BURSTS; b++)); do
    HOLD_PREFIX=burst HOLD_FIRST=$((b * BURST)) start_holding "$WORK/burst.$b" "$BURST"
    # All BURST connections are open; wait until each has its own child.
    wait_until 30 live_children_are "$SPID" "$BURST" || peak_ok=0
    release_held "$WORK/burst.$b"
    served_all "$WORK/burst.$b" "$BURST" || { burst_ok=0; cat "$WORK/burst.$b" "$WORK/burst.$b.err"; }
    settled || true
done
check "every burst had $BURST children at once" equals "$peak_ok" 1
check "every burst: $BURST clients served, no errors" equals "$burst_ok" 1
check "no child left over, no zombie" settled
flat "the bursts"

echo "$HALF connections that half-close as client/client does, 8 at a time"
loadgen "$WORK/half" -n "$HALF" -c 8 -m halfclose -h
check "$HALF clients served, no errors" served_all "$WORK/half" "$HALF"
check "no child left over, no zombie" settled
flat "the half-closing clients"

# Every message that was sent, once each, sorted; and what the server logged.
{
    seq -f 'warmup %.0f' 0 $((WARMUP - 1))
    seq -f 'stress %.0f' 0 $((CONNS - 1))
    seq -f 'burst %.0f' 0 $((BURSTS * BURST - 1))
    seq -f 'halfclose %.0f' 0 $((HALF - 1))
} | sort >"$WORK/expected"
sed -n 's/^Here is the message: //p' "$WORK/step4.out" | sort >"$WORK/logged"
total=$(wc -l <"$WORK/expected")
missing=$(comm -23 "$WORK/expected" "$WORK/logged" | wc -l)
extra=$(comm -13 "$WORK/expected" "$WORK/logged" | wc -l)
twice=$(uniq -d "$WORK/logged" | wc -l)
echo "        $total messages sent; $(wc -l <"$WORK/logged") logged: $missing missing, $twice twice or more, $extra unexpected"
check "every one of $total messages logged exactly once" equals "$missing $twice $extra" "0 0 0"
check "exactly one 'Listening' line in the log" equals "$(grep -c '^Listening on port' "$WORK/step4.out")" 1
check "nothing on the server's stderr" equals "$(wc -c <"$WORK/step4.err" | tr -d ' ')" 0
[ -s "$WORK/step4.err" ] && head -n 5 "$WORK/step4.err"
check "the server is still running" kill -0 "$SPID"
stop_server

echo "$total connections in $((SECONDS - began)) s: $failures checks failed"
[ "$failures" -eq 0 ]
