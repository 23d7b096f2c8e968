#!/usr/bin/env bash
# tests/mutants.sh (make mutants) - can the tests see each bug they are meant
# to catch? For each mutant below it copies the built programs to a scratch
# tree, makes one small, realistic change to one source file, builds it there,
# and runs the test that should catch it against that tree (BIN=...). A mutant
# that passes its test is a hole in the suite, and this script fails.
#
# Each line of MUTANTS is: file | sed expression | bats file | test-name filter.
# Written for bash 3.2.
set -u
cd "$(dirname "$0")/.." || exit 1

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
step4-reap/server.c | /while (waitpid/{s/while/if/;n;s/continue;/(void) 0;/;} | tests/step4-reap.bats | zombies after bursts
step2-loop/server.c | s/signal(SIGPIPE, SIG_IGN);/(void) 0;/ | tests/step2-loop.bats | SIGPIPE
step1-single/server.c | s/setsockopt(sockfd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on) < 0/0/ | tests/step1-single.bats | restarted
client/client.c | s/signal(SIGPIPE, SIG_IGN);/(void) 0;/ | tests/client.bats | not killed by SIGPIPE
client/client.c | s/char last = '.n';/char last = 0;/ | tests/client.bats | without replying
step2-loop/server.c | s/len = (size_t) (newline - buf) + 1;/len = (size_t) (newline - buf);/ | tests/framing.bats | step2 replies to an empty line
step3-fork/server.c | /^        do\$/{N;N;d;} | tests/step3-fork.bats | longer than its buffer
step4-reap/server.c | s/listen(sockfd, SOMAXCONN)/listen(sockfd, 1)/ | tests/step4-reap.bats | holds a burst
"

WORK=$(mktemp -d "${TMPDIR:-/tmp}/mutants.XXXXXX") || exit 1
trap 'rm -rf "$WORK"' EXIT
CC=${CC:-cc}
caught=0 missed=0 broken=0 n=0
while IFS='|' read -r file expr bats filter; do
    file=$(echo "$file" | xargs) bats=$(echo "$bats" | xargs) filter=$(echo "$filter" | sed 's/^ *//; s/ *$//')
    expr=$(echo "$expr" | sed 's/^ *//; s/ *$//')
    [ -n "$file" ] || continue
    n=$((n + 1))
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
    elif grep -q '^ok .* # skip' "$tree/bats.out"; then
        echo "BROKEN  #$n: '$filter' in $bats was skipped here: $(grep -m1 '# skip' "$tree/bats.out")"
        broken=$((broken + 1))
    elif [ "$status" -eq 0 ]; then
        echo "MISSED  #$n: $file: $expr -- '$filter' in $bats still passes"
        missed=$((missed + 1))
    else
        echo "caught  #$n: $file: $expr -- by '$filter' in $bats"
        caught=$((caught + 1))
    fi
done <<<"$MUTANTS"
echo "$caught of $n mutants caught, $missed missed, $broken broken"
[ "$missed" -eq 0 ] && [ "$broken" -eq 0 ]
