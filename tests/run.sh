#!/usr/bin/env bash
# tests/run.sh - what `make test` runs: the bats files in two lanes side by
# side, each lane stopping at its first failure.
#
#   tests/run.sh FIRST... -- REST...
#
# The first lane runs FIRST in order (the tour, the steps, the client: they
# show a broken program soonest) and prints as it goes; the second runs REST
# (the tutorial's claims and quotes, the harness, the copies) beside it and
# prints when the first lane is done. Most of a test is waiting for a server
# or a deadline, not computing, so two lanes take little more than the
# longer one. The first failing test, in either lane, stops the run: every
# later test fails at once, naming it, and the files after it are not run.
# BATS and BATS_FLAGS come from make. Exits non-zero if either lane failed.
set -u

BATS="${BATS:-bats}"
read -r -a FLAGS <<<"${BATS_FLAGS:-}"
first=()
while [ $# -gt 0 ] && [ "$1" != -- ]; do first+=("$1"); shift; done
[ $# -eq 0 ] || shift
rest=("$@")

out=$(mktemp -d "${TMPDIR:-/tmp}/make-test.XXXXXX") || exit 2
lane_pid=
stop() {
    [ -z "$lane_pid" ] || kill -TERM -- "-$lane_pid" 2>/dev/null
    rm -rf "$out"
}
trap 'stop; exit 130' INT
trap 'stop; exit 143' TERM
trap 'rm -rf "$out"' EXIT

# The first failure in either lane stops both: tests/harness.bash writes it
# to this file, and every later test fails at once, naming it.
export MAKE_TEST_FIRST_FAILURE="$out/first-failure"

# lane FILE...: bats on each file in turn, until one fails (here or in the other lane).
lane() {
    local f
    while [ $# -gt 0 ]; do
        f=$1
        shift
        if [ -s "$MAKE_TEST_FIRST_FAILURE" ]; then
            echo "make test stopped at its first failure, $(cat "$MAKE_TEST_FIRST_FAILURE"); not run: $f${1:+ $*}." >&2
            return 1
        fi
        STOP_AT_FIRST_FAILURE=1 "$BATS" ${FLAGS[@]+"${FLAGS[@]}"} "$f" || {
            echo "make test stopped at its first failure, in $f${1:+; not run: $*}." >&2
            echo "KEEP_GOING=1 make test runs every test." >&2
            return 1
        }
    done
}

# The second lane writes to a file; on a terminal, in the same format as the first.
rest_flags=()
[ -n "${BATS_FLAGS:-}" ] || [ ! -t 1 ] || rest_flags=(--pretty)
status=0
if [ ${#rest[@]} -gt 0 ]; then
    set -m      # (a process group of its own, which Ctrl-C stops whole)
    (FLAGS=(${FLAGS[@]+"${FLAGS[@]}"} ${rest_flags[@]+"${rest_flags[@]}"}); lane "${rest[@]}") \
        >"$out/rest.out" 2>&1 </dev/null &
    lane_pid=$!
    set +m
fi
lane ${first[@]+"${first[@]}"} || status=1
if [ -n "$lane_pid" ]; then
    wait "$lane_pid" || status=1
    lane_pid=
    cat "$out/rest.out"
fi
exit "$status"
