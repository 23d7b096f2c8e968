# exercises/lib/common.bash - what the exercise scripts share: finding the
# exercises, building a student's file, running a checker with a deadline and
# killing everything it started, and reading bats' TAP output.
# Sourced by exercise.sh (make exercises, make exercise), grade.sh (make grade)
# and prove.sh (the two-way proof in tests/exercises/exercises.bats).
# Written for bash 3.2 and later (macOS still ships 3.2).

LIB="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$LIB/../.." && pwd)"
# Where the exercise folders are. tests/exercises/grade.bats points it at fake ones.
EXERCISES_DIR="${EXERCISES_DIR:-$REPO/exercises}"

CC="${CC:-cc}"
CFLAGS="${CFLAGS:--O2 -g}"
WARN="${WARN:--std=c99 -pedantic -Wall -Wextra}"
# A warning fails the build (see exercises/README.md); EX_WERROR= turns that off.
EX_WERROR="${EX_WERROR--Werror}"

# ---------------------------------------------------------------- the exercises

# ex_dirs: every exercise folder (NN-name), one per line, in order.
ex_dirs() {
    local d
    for d in "$EXERCISES_DIR"/[0-9][0-9]-*/; do
        [ -d "$d" ] && printf '%s\n' "${d%/}"
    done
}

# ex_number ARG: "3", "03" or "03-silent-client-timeout" as two digits; fails
# for anything else.
ex_number() {
    local n=${1%%-*}
    case $n in '' | *[!0-9]*) return 1 ;; esac
    n=$((10#$n))
    [ "$n" -ge 1 ] && [ "$n" -le 99 ] || return 1
    printf '%02d\n' "$n"
}

# ex_find NN: the folder of exercise NN (two digits), or nothing.
ex_find() {
    local d
    for d in "$EXERCISES_DIR/$1"-*/; do
        [ -d "$d" ] && { printf '%s\n' "${d%/}"; return 0; }
    done
    return 1
}

# ex_starter DIR: the name of the file a student edits (server.c or client.c).
ex_starter() {
    local f
    for f in server.c client.c; do
        [ -f "$1/$f" ] && { echo "$f"; return 0; }
    done
    return 1
}

# ex_title DIR: the title from README.md's first line, "# 03. Title".
ex_title() {
    local line=
    [ -f "$1/README.md" ] && IFS= read -r line <"$1/README.md"
    line=$(printf '%s' "$line" | sed -e 's/^#*[[:space:]]*//' -e 's/^[0-9][0-9]*\.[[:space:]]*//')
    [ -n "$line" ] || line=$(basename "$1" | sed 's/^[0-9]*-//')
    printf '%s\n' "$line"
}

# ex_after DIR: the chapter it follows, in short, from the README's
# "After: ..." line: without markdown links, backticks or a part in
# parentheses; a chapter named in quotes is shown by that name.
ex_after() {
    [ -f "$1/README.md" ] || return 0
    sed -n 's/\*//g; s/^[[:space:]]*After:[[:space:]]*//p' "$1/README.md" | head -n 1 |
        sed -e 's/\[\([^]]*\)\]([^)]*)/\1/g' -e 's/`//g' -e 's/[[:space:]]*([^()]*)//g' \
            -e 's/^[^"]*"\([^"]*\)".*$/\1/' -e 's/[;,].*$//' -e 's/[[:space:]]*$//' -e 's/\.$//' | cut -c1-22
}

# ex_lesson_tests CHECK: the names of the checker's lesson tests, one per line:
# those with `# bats test_tags=lesson` (bats-core's own tag syntax, so
# `bats --filter-tags lesson` runs them) among the comment lines just above
# their @test line.
ex_lesson_tests() {
    awk '
        /^[[:space:]]*#[[:space:]]*bats[[:space:]]+test_tags=/ {
            tags = $0; sub(/^[^=]*=/, "", tags); gsub(/[[:space:]]/, "", tags)
            if (("," tags ",") ~ /,lesson,/) lesson = 1
            next
        }
        /^[[:space:]]*@test[[:space:]]/ {
            if (lesson) {
                name = $0
                sub(/^[[:space:]]*@test[[:space:]]+/, "", name)
                q = substr(name, 1, 1)
                name = substr(name, 2)
                sub(q "[[:space:]]*\\{[[:space:]]*$", "", name)
                print name
            }
            lesson = 0
            next
        }
        /^[[:space:]]*(#.*)?$/ { next }
        { lesson = 0 }
    ' "$1"
}

# ---------------------------------------------------------------- building

# ex_build_flags DIR: the extra words an exercise's program needs on the
# compiler's command line, such as -pthread for a threaded server, from the
# one-line file DIR/build-flags (nothing when there is none).
ex_build_flags() {
    [ -f "$1/build-flags" ] || return 0
    tr -s ' \t\n' ' ' <"$1/build-flags" | sed 's/^ //; s/ $//'
}

# ex_needs DIR: what the exercise's checker uses from the repository, one
# path a line, relative to the repository: every "$REPO/PATH" named in its
# check.bats, in exercises/lib/checker.bash (which every checker loads), and
# in any .bash or .sh file of the repository that these name in turn (such as
# tests/harness.bash). So a checker says what it needs by naming it:
# STEP2="$REPO/step2-loop/server" is enough for make exercise and make grade
# to build step 2's server first, and for make grade to show it to the run.
# Never anything under exercises/solutions/ or tests/*-solutions/.
ex_needs() {
    local files=("$1/check.bats" "$LIB/checker.bash") found=() i=0 p
    while [ "$i" -lt ${#files[@]} ]; do
        if [ -f "${files[$i]}" ]; then
            for p in $(grep -o '\$[{]*REPO[}]*/[A-Za-z0-9_./-]*' "${files[$i]}" | sed -e 's|^\$[{]*REPO[}]*/||' -e 's|/*$||'); do
                case /$p/ in
                    */../* | */./* | /exercises/solutions/* | /tests/*-solutions/*) continue ;;
                esac
                case " ${found[*]-} " in *" $p "*) continue ;; esac
                found+=("$p")
                case $p in *.bash | *.sh) files+=("$REPO/$p") ;; esac
            done
        fi
        i=$((i + 1))
    done
    [ ${#found[@]} -eq 0 ] || printf '%s\n' "${found[@]}"
}

# ex_build_needs DIR...: builds, with make, every program the checkers of these
# exercises need (a need whose PATH.c is in the repository); make's messages
# on stderr, and a non-zero status if the build failed.
ex_build_needs() {
    local d p targets=()
    for d in "$@"; do
        for p in $(ex_needs "$d"); do
            [ -f "$REPO/$p.c" ] && targets+=("$p")
        done
    done
    [ ${#targets[@]} -gt 0 ] || return 0
    "${MAKE:-make}" -s -C "$REPO" "${targets[@]}" >&2
}

# build_program SRC OUT LOG [CMD-PREFIX...]: compiles SRC into OUT with the
# warnings, the compiler's messages in LOG; the prefix (say, a deadline and an
# unprivileged user) goes in front of the compiler. EX_BUILD_FLAGS (set it
# from ex_build_flags) comes last, after the source, as libraries must.
build_program() {
    local src=$1 out=$2 log=$3
    shift 3
    # shellcheck disable=SC2086 # the flags are lists of words on purpose
    "$@" $CC $WARN $EX_WERROR $CFLAGS -o "$out" "$src" ${EX_BUILD_FLAGS:-} >"$log" 2>&1
}

# ---------------------------------------------------------------- running with a deadline

# bats inside bats (tests/exercises/exercises.bats) must not inherit the outer run's
# variables, or the inner one writes into the outer one's directories, nor
# the outer one's PATH, which starts with bats' own libexec directory (where
# `bats` is the inner script, not the command).
clean_bats_env() {
    local v
    if [ -n "${BATS_LIBEXEC:-}" ]; then
        PATH=$(printf '%s\n' "$PATH" | tr ':' '\n' | grep -vxF -- "$BATS_LIBEXEC" | paste -sd: -)
    fi
    for v in $(compgen -v | grep '^BATS_'); do
        unset "$v" 2>/dev/null || true
    done
}

# run_contained DEADLINE LOG CMD...: runs CMD in a session of its own (or, where
# setsid is missing, a process group of its own), stdout and stderr in LOG,
# which may grow to LOG_LIMIT_KB. After DEADLINE seconds it is stopped: SIGTERM,
# a second's grace, SIGKILL. Whatever it leaves behind in its session is killed
# in either case. Returns CMD's status, or 124 if it ran out of time.
#
# It waits for CMD with wait, and a watchdog (a subshell asleep until the
# deadline) stops CMD if it is still running then: a look every 0.1 s would
# start a ps and a sleep each time, which adds up when several runs, each
# with three of these inside the other, share two processors.
LOG_LIMIT_KB="${LOG_LIMIT_KB:-65536}"
run_contained() {
    local deadline=$1 log=$2 pid rc=0 watchdog
    shift 2
    set +m      # a job of its own group would make setsid(1) fork; see below
    if command -v setsid >/dev/null 2>&1; then
        # This background job is not a group leader, so setsid(1) makes it the
        # leader of a new session without forking: its PID is the session's ID.
        (ulimit -f "$LOG_LIMIT_KB" && exec setsid "$@") >"$log" 2>&1 </dev/null &
        pid=$!
        CONTAINED_KIND=sid
    else
        set -m
        (ulimit -f "$LOG_LIMIT_KB" && exec "$@") >"$log" 2>&1 </dev/null &
        pid=$!
        set +m
        CONTAINED_KIND=pgid
    fi
    CONTAINED_ID=$pid
    # The watchdog: asleep in wait (so that SIGTERM, from us, ends it and its
    # sleep at once), then TERM to everything of CMD's, a second's grace, KILL.
    # It exits 124 once the deadline has passed, 0 if stopped before.
    (
        fired=0
        trap 'kill "$nap" 2>/dev/null; exit $((fired ? 124 : 0))' TERM
        trap - INT
        sleep "$deadline" &
        nap=$!
        wait "$nap"
        fired=1
        kill_contained TERM
        sleep 1 &
        nap=$!
        wait "$nap"
        kill_contained KILL
        exit 124
    ) </dev/null >/dev/null 2>&1 &
    watchdog=$!
    # Ctrl-C reaches our process group, not the new session: pass it on.
    trap 'kill -TERM "$watchdog" 2>/dev/null; kill_contained KILL; exit 130' INT
    trap 'kill -TERM "$watchdog" 2>/dev/null; kill_contained KILL; exit 143' TERM
    # (2>/dev/null: bash's own line about a job that a signal ended)
    wait "$pid" 2>/dev/null || rc=$?
    kill -TERM "$watchdog" 2>/dev/null
    wait "$watchdog" 2>/dev/null
    [ $? -ne 124 ] || rc=124
    kill_contained KILL
    trap - INT TERM
    return "$rc"
}

# contained_pids: the live processes of the last run_contained's session (or group).
contained_pids() {
    ps -A -o "$CONTAINED_KIND=" -o pid= -o stat= |
        awk -v id="$CONTAINED_ID" '$1 == id && $3 !~ /^Z/ { print $2 }'
}

# kill_contained SIGNAL: sends SIGNAL to every process of that session, until
# none is left (SIGKILL) or once (anything else).
kill_contained() {
    local pids tries=0
    while :; do
        pids=$(contained_pids)
        [ -n "$pids" ] || return 0
        # shellcheck disable=SC2086
        kill -s "$1" $pids 2>/dev/null || true
        [ "$1" = KILL ] || return 0
        tries=$((tries + 1))
        [ "$tries" -lt 50 ] || return 1
        sleep 0.05
    done
}

# ---------------------------------------------------------------- reading bats' TAP output

# tap_names STATUS LOG: the names of the tests that ended with STATUS
# (ok, failed, skipped), one per line.
tap_names() {
    awk -v want="$1" '
        /^not ok [0-9]+ / { if (want == "failed") { sub(/^not ok [0-9]+ /, ""); print } next }
        /^ok [0-9]+ .* # skip/ { if (want == "skipped") { sub(/^ok [0-9]+ /, ""); sub(/ # skip.*$/, ""); print } next }
        /^ok [0-9]+ / { if (want == "ok") { sub(/^ok [0-9]+ /, ""); print } next }
    ' "$2"
}

# tap_count STATUS LOG: how many tests ended with STATUS.
tap_count() { tap_names "$1" "$2" | grep -c . | tr -d ' '; }

# tap_planned LOG: how many tests bats planned to run (its "1..N" line).
tap_planned() { sed -n 's/^1\.\.\([0-9][0-9]*\)$/\1/p' "$1" | head -n 1; }

# tap_for_students LOG: the run as a student should read it: one line per check
# (ok / FAIL / SKIP and its name) and, under a failure, what the checker said
# (expected this, got that), without bats' trace of file names and line
# numbers. When a check failed without a word, the line that failed is shown.
tap_for_students() {
    awk '
        function flush() {
            if (!infail) return
            if (said != "") printf "%s", said
            else if (failedline != "") printf "        (the check that failed: %s)\n", failedline
            infail = 0; said = ""; failedline = ""
        }
        /^1\.\.[0-9]+$/ { next }
        /^not ok [0-9]+ / { flush(); sub(/^not ok [0-9]+ /, ""); print "  FAIL  " $0; infail = 1; next }
        /^ok [0-9]+ .* # skip/ {
            flush(); sub(/^ok [0-9]+ /, ""); reason = $0; sub(/^.* # skip ?/, "", reason); sub(/ # skip.*$/, "")
            print "  SKIP  " $0 (reason != "" ? " (not checked here: " reason ")" : " (not checked here)")
            next
        }
        /^ok [0-9]+ / { flush(); sub(/^ok [0-9]+ /, ""); print "  ok    " $0; next }
        /^# \((in test file|from function|from setup|in setup)/ { next }
        /^#  (in test file|from function|in setup|from setup)/ { next }
        /^#   `.*'\'' failed/ { if (infail) { failedline = $0; sub(/^#   /, "", failedline) } next }
        /^# bats warning/ { next }
        /^#/ { if (infail) { line = $0; sub(/^# ?/, "", line); said = said "        " line "\n" } next }
        { if (infail) said = said "        " $0 "\n" }
        END { flush() }
    ' "$1"
}

# tap_incomplete LOG: when bats ran fewer tests than it planned (a checker
# that broke off, or bats itself failing), says so with what bats said.
tap_incomplete() {
    local planned ran
    planned=$(tap_planned "$1")
    ran=$(grep -Ec '^(not )?ok [0-9]+' "$1" | tr -d ' ')
    if [ -z "$planned" ]; then
        echo "(bats did not run the checker; it said:)"
    elif [ "$ran" -lt "$planned" ]; then
        echo "(bats ran $ran of the $planned checks; it said:)"
    else
        return 0
    fi
    grep -Ev '^(not )?ok [0-9]+|^# |^1\.\.' "$1" | head -n 10 | cut -c1-300
}
