#!/usr/bin/env bash
# tests/mutants.sh (make mutants) - can the tests see each bug they are meant
# to catch, and do they say so soon? For each mutant below it makes one
# small, realistic change to one source file, and
#  1. in a scratch tree with the built programs (BIN=...), runs the test that
#     should catch it: a mutant that passes its test is a hole in the suite;
#  2. in a scratch copy of the whole repository, runs make test, as a student
#     who broke the program on purpose would: it must fail, and end within
#     BOUND seconds (90; on a busy machine too), or the mutant is SLOW.
# Either failure fails the script. At the end, one line per mutant with the
# time its make test took, and the machine's load.
#
#   tests/mutants.sh                  every mutant
#   MUTANTS="3 13" tests/mutants.sh   only those (numbers as the list counts them)
#   MUTANT_MAKE_TEST=0 ...            only the named tests (step 1), no make test
#
# Each line of MUTANTS is: file | sed expression | bats file | test-name filter
# (one mutant a line; blank lines and lines starting with # are skipped).
# Written for bash 3.2.
set -u
cd "$(dirname "$0")/.." || exit 1
ROOT=$(pwd)
ONLY=${MUTANTS:-}
BOUND=${BOUND:-90}

MUTANTS="
step3-fork/server.c | s/^            close(sockfd);\$/            (void) 0;  \/* the child keeps the listener *\// | tests/step3-fork.bats | listening socket
step4-reap/server.c | s/^            close(sockfd);\$/            (void) 0;  \/* the child keeps the listener *\// | tests/step4-reap.bats | listening socket
step4-reap/server.c | s/waitpid(-1, NULL, WNOHANG) > 0/waitpid(-1, NULL, 0) > 0/ | tests/step4-reap.bats | goes on accepting
step4-reap/server.c | s/waitpid(-1, NULL, WNOHANG) > 0/waitpid(-1, NULL, WNOHANG) >= 0/ | tests/step4-reap.bats | goes on accepting
step2-loop/server.c | s/perror(\"ERROR on accept\");/error(\"ERROR on accept\");/ | tests/step2-loop.bats | EMFILE
step2-loop/server.c | /buf\\[len - 1\\] == '.r'/{N;d;} | tests/framing.bats | step2 prints a CRLF
step4-reap/server.c | /buf\\[len - 1\\] == '.r'/{N;d;} | tests/framing.bats | step4 prints a CRLF
client/client.c | s/^        putchar('.n');\$/        (void) 0;/ | tests/client.bats | ends our servers' reply
step3-fork/server.c | s/^        close(newsockfd);\$/        (void) 0;/ | tests/step3-fork.bats | descriptor per connection
step4-reap/server.c | /while (waitpid/{s/while/if/;n;s/continue;/(void) 0;/;} | tests/step4-reap.bats | one SIGCHLD stood
step2-loop/server.c | s/signal(SIGPIPE, SIG_IGN);/(void) 0;/ | tests/step2-loop.bats | SIGPIPE
step1-single/server.c | s/setsockopt(sockfd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on) < 0/0/ | tests/step1-single.bats | restarted
step2-loop/server.c | s/^    setvbuf(stdout, NULL, _IOLBF, 0);\$/    (void) 0;/ | tests/step2-loop.bats | exactly once when stdout is a pipe
step4-reap/server.c | s/waitpid(-1, NULL, WNOHANG) > 0/waitpid(-1, NULL, WNOHANG) != 0/ | tests/step4-reap.bats | one at a time
step4-reap/server.c | s/^            _exit(0);\$/            (void) 0;/ | tests/step4-reap.bats | zombies after bursts
client/client.c | s/signal(SIGPIPE, SIG_IGN);/(void) 0;/ | tests/client.bats | not killed by SIGPIPE
client/client.c | s/char last = '.n';/char last = 0;/ | tests/client.bats | without replying
step2-loop/server.c | s/len = (size_t) (newline - buf) + 1;/len = (size_t) (newline - buf);/ | tests/framing.bats | step2 replies to an empty line
step3-fork/server.c | /^        do\$/{N;N;d;} | tests/step3-fork.bats | longer than its buffer
step4-reap/server.c | s/listen(sockfd, SOMAXCONN)/listen(sockfd, 1)/ | tests/step4-reap.bats | holds a burst
"

WORK=$(mktemp -d "${TMPDIR:-/tmp}/mutants.XXXXXX") || exit 1
trap 'rm -rf "$WORK"' EXIT
CC=${CC:-cc}
caught=0 missed=0 broken=0 slow=0 n=0 ran=0
SUMMARY=

# selected N: mutant N is to run (all of them unless MUTANTS lists numbers).
selected() {
    [ -z "$ONLY" ] && return 0
    case " $(echo $ONLY) " in *" $1 "*) return 0 ;; esac
    return 1
}

# copy_repository DIR: the repository as it is (built programs included,
# .git and build/ left out), for a make test of its own.
copy_repository() {
    mkdir -p "$1"
    tar -cf - --exclude=./.git --exclude=./build . | (cd "$1" && tar -xf -)
}

# timed_make_test DIR: make test in DIR, in a session of its own when setsid
# exists (so that everything it started can be killed), stopped after BOUND
# seconds. Sets MT_STATUS (124: still running at BOUND), MT_SECONDS and
# MT_FIRST (the first failing test and its first line of explanation).
timed_make_test() {
    local dir=$1 start pid sid= p
    start=$SECONDS
    if command -v setsid >/dev/null; then
        setsid -w bash -c 'cd "$0" || exit 2; echo $$ >.mutant-sid; exec make -s test BATS_FLAGS=--tap' "$dir" \
            >"$dir/.make-test.out" 2>&1 </dev/null &
    else
        (cd "$dir" && exec make -s test BATS_FLAGS=--tap) >"$dir/.make-test.out" 2>&1 </dev/null &
    fi
    pid=$!
    while kill -0 "$pid" 2>/dev/null && [ $((SECONDS - start)) -lt "$BOUND" ]; do
        sleep 0.2
    done
    MT_SECONDS=$((SECONDS - start))
    if kill -0 "$pid" 2>/dev/null; then
        MT_STATUS=124
    else
        MT_STATUS=0
        wait "$pid" || MT_STATUS=$?
    fi
    # Whatever the run left behind: its session, or at least its make.
    [ -s "$dir/.mutant-sid" ] && sid=$(cat "$dir/.mutant-sid")
    if [ -n "$sid" ]; then
        for p in $(ps -A -o pid= -o sid= | awk -v s="$sid" '$2 == s { print $1 }'); do
            kill -KILL "$p" 2>/dev/null
        done
    fi
    kill -KILL "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
    # (the first test that failed of itself: in the other lane, the tests
    # that the first failure stopped say "not run: ...")
    MT_FIRST=$(awk '/^not ok / { sub(/^not ok [0-9]+ /, ""); name = $0; getline; while ($0 ~ /^# \(|^#   `|^#  from/) getline;
                                sub(/^# /, ""); line = "\047" name "\047: " $0
                                if ($0 !~ /^not run: /) { print line; found = 1; exit }
                                if (first == "") first = line }
                   END { if (!found && first != "") print first }' "$dir/.make-test.out" | cut -c1-200)
}

while IFS='|' read -r file expr bats filter; do
    file=$(echo "$file" | xargs) bats=$(echo "$bats" | xargs) filter=$(echo "$filter" | sed 's/^ *//; s/ *$//')
    expr=$(echo "$expr" | sed 's/^ *//; s/ *$//')
    case $file in '' | '#'*) continue ;; esac
    n=$((n + 1))
    selected "$n" || continue
    ran=$((ran + 1))
    tree="$WORK/$n"
    mkdir -p "$tree"
    for prog in step1-single/server step2-loop/server step3-fork/server step4-reap/server client/client; do
        mkdir -p "$tree/$(dirname "$prog")"
        cp "$prog" "$tree/$prog"
    done
    sed "$expr" "$file" >"$tree/${file%.c}.mutant.c"
    if cmp -s "$file" "$tree/${file%.c}.mutant.c"; then
        echo "BROKEN  #$n: '$expr' changes nothing in $file"
        broken=$((broken + 1))
        continue
    fi
    if ! "$CC" -std=c99 -O2 -o "$tree/${file%.c}" "$tree/${file%.c}.mutant.c" 2>"$tree/cc.err"; then
        echo "BROKEN  #$n: the mutant of $file does not build: $(head -n 1 "$tree/cc.err")"
        broken=$((broken + 1))
        continue
    fi
    BIN="$tree" bats --tap "$bats" -f "$filter" >"$tree/bats.out" 2>&1
    status=$?
    if ! grep -q '^\(not \)\{0,1\}ok ' "$tree/bats.out"; then
        echo "BROKEN  #$n: no test in $bats matches '$filter'"
        broken=$((broken + 1))
        continue
    elif grep -q '^ok .* # skip' "$tree/bats.out"; then
        echo "BROKEN  #$n: '$filter' in $bats was skipped here: $(grep -m1 '# skip' "$tree/bats.out")"
        broken=$((broken + 1))
        continue
    elif [ "$status" -eq 0 ]; then
        echo "MISSED  #$n: $file: $expr -- '$filter' in $bats still passes"
        missed=$((missed + 1))
        continue
    fi
    echo "caught  #$n: $file: $expr -- by '$filter' in $bats"
    caught=$((caught + 1))
    [ "${MUTANT_MAKE_TEST:-1}" != 0 ] || continue
    # 2. make test on the whole repository with this mutant in it.
    copy_repository "$tree/repo"
    cp "$tree/${file%.c}.mutant.c" "$tree/repo/$file"
    if ! make -s -C "$tree/repo" all >"$tree/make.out" 2>&1; then
        echo "BROKEN  #$n: make does not build the repository with the mutant: $(head -n 1 "$tree/make.out")"
        broken=$((broken + 1))
        continue
    fi
    timed_make_test "$tree/repo"
    load=$(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || uptime | sed 's/.*load averages*: *//')
    if [ "$MT_STATUS" -eq 124 ]; then
        verdict=SLOW why="make test still running after ${BOUND} s, stopped; first failure by then: ${MT_FIRST:-none}"
        slow=$((slow + 1))
    elif [ "$MT_STATUS" -eq 0 ]; then
        verdict=MISSED why="make test passed"
        missed=$((missed + 1))
    else
        verdict=failed why="first failure: ${MT_FIRST:-(none reported: $(tail -n 1 "$tree/repo/.make-test.out"))}"
    fi
    echo "        make test: $verdict after ${MT_SECONDS} s (load $load); $why"
    SUMMARY="$SUMMARY$(printf '#%-3s %-7s %4s s  load %-16s %s: %s' "$n" "$verdict" "$MT_SECONDS" "$load" "$file" "$expr")
"
    rm -rf "$tree/repo"
done <<<"$MUTANTS"

if [ -n "$SUMMARY" ]; then
    echo
    echo "make test on each mutant (bound: ${BOUND} s):"
    printf '%s' "$SUMMARY"
fi
echo "$caught of $ran mutants caught by their test, $missed missed, $broken broken, $slow slow (make test over ${BOUND} s)"
[ "$missed" -eq 0 ] && [ "$broken" -eq 0 ] && [ "$slow" -eq 0 ]
