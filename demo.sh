#!/usr/bin/env bash
# demo.sh - a narrated tour of the four steps, unattended, in under a minute.
#
# For each step it starts the server on a free port (port 0), drives it with
# the real client, and says what is happening and what to notice:
#   step 1 exits after one client;
#   step 2 makes a second client wait while the first one stays silent;
#   step 3 serves both at once, and ps shows the zombies it leaves behind;
#   step 4 takes the same load and leaves none.
#
# Run it:   make demo      (or ./demo.sh once `make` has built everything)
# It pauses briefly between scenes for a human reader when stdout is a
# terminal, and not at all otherwise; DEMO_PAUSE=SECONDS overrides that.
# Colour only on a terminal. Every process it starts runs in a process group
# of its own, and every one of those groups is killed when the demo ends,
# also when it is interrupted with Ctrl-C.
# Read more: tutorial.md, and README.md for what to install.
#
# Written for bash 3.2 (macOS's /bin/bash) and later. One Ctrl-C must always
# stop it, so it never runs a command substitution $(...): bash 5.2 can lose a
# SIGINT that arrives while it waits for one (that child is not a job, and the
# INT trap never runs). Checks are pipelines whose exit status is the answer,
# and values come back through files and `read`.

set -u
case $0 in */*) cd "${0%/*}" || exit 1 ;; esac

CLIENT=./client/client
DEADLINE=${DEADLINE:-10}       # seconds any one condition may take
if [ -t 1 ]; then
    PAUSE=${DEMO_PAUSE:-1.5}
    BOLD=$'\e[1m' DIM=$'\e[2m' GREEN=$'\e[32m' YELLOW=$'\e[33m' PLAIN=$'\e[0m'
else
    PAUSE=${DEMO_PAUSE:-0}
    BOLD='' DIM='' GREEN='' YELLOW='' PLAIN=''
fi

WORK=                           # set once the demo's directory exists
GROUPS_STARTED=()

# ---------------------------------------------------------------- cleaning up

# cleanup: kills every process group the demo started and removes its files.
# A group is written down only after its fork, so a signal in between would
# hide it; `jobs -p` lists every background job bash knows, that one too.
cleanup() {
    local pgid
    trap '' INT TERM            # a second Ctrl-C must not cut the cleaning short
    trap - EXIT
    exec 7>&-
    [ -n "$WORK" ] && jobs -p >"$WORK/jobs"
    for pgid in ${GROUPS_STARTED[@]+"${GROUPS_STARTED[@]}"}; do
        kill -TERM -- "-$pgid" 2>/dev/null
    done
    if [ -n "$WORK" ]; then
        while read -r pgid; do
            kill -TERM -- "-$pgid" 2>/dev/null || kill -TERM "$pgid" 2>/dev/null
        done <"$WORK/jobs"
    fi
    # Waits for the jobs only (`wait` knows no other processes): a killed
    # server's forked children go a moment later, on their own.
    wait 2>/dev/null
    [ -z "$WORK" ] || rm -rf "$WORK"
}
interrupted() {
    echo
    say "Interrupted: stopping every process the demo started."
    cleanup
    exit 130
}
# Set before anything is started or made, so that nothing escapes them.
trap interrupted INT TERM
trap cleanup EXIT

# A directory of our own for what the programs print. mkdir fails rather than
# reuse a directory that exists; the name is set only once it is ours.
work="${TMPDIR:-/tmp}/tcp-demo.$$.$RANDOM"
mkdir -m 700 "$work" || exit 1
WORK=$work

# ---------------------------------------------------------------- telling

chapter() { printf '\n%s== %s ==%s\n' "$BOLD" "$*" "$PLAIN"; }
say()     { printf '%s\n' "$*"; }
notice()  { printf '%s>> %s%s\n' "$YELLOW" "$*" "$PLAIN"; }
# show CMD-TEXT: prints a command the way a reader would type it.
show()    { printf '%s$ %s%s\n' "$GREEN" "$*" "$PLAIN"; }
# indent FILE: prints what a program wrote, set off from the narration.
# (7>&-: see "Descriptor 7" below.)
indent()  { sed "s/[[:space:]]*\$//; s/^/${DIM}    | /; s/\$/${PLAIN}/" "$1"; } 7>&-
pause()   { [ "$PAUSE" = 0 ] || sleep "$PAUSE"; } 7>&-
# die MESSAGE: stops the tour, showing what the programs said so far.
die() {
    local f name
    printf 'demo: %s\n' "$*" >&2
    for f in "$WORK"/*.out; do
        name=${f##*/}
        [ -s "$f" ] && printf 'demo: %s said:\n' "${name%.out}" >&2 && sed 's/^/    /' "$f" >&2
    done
    exit 1
}

# ---------------------------------------------------------------- running things

# Descriptor 7 is the demo's end of the silent client's FIFO (see
# silent_client). No program it starts may inherit it: a client holding a
# writer on its own input would never see end of file, not even once the
# demo is gone. Hence the `7>&-` on every command, and every function that
# runs programs, that may run while it is open. (A redirection written after a
# function's body applies to each call of it.)

# wait_until CMD...: polls CMD every 20 ms; gives up after $DEADLINE seconds.
# A $(...) in CMD's arguments would be expanded once only: use a function.
wait_until() {
    local end=$((SECONDS + DEADLINE))
    until "$@" 7>&-; do
        [ "$SECONDS" -lt "$end" ] || return 1
        sleep 0.02 7>&-
    done
}

# start NAME CMD...: runs CMD in the background in a process group of its own,
# output in $WORK/NAME.out, input from /dev/null unless CMD redirects it.
start() {
    local name=$1
    shift
    set -m
    "$@" >"$WORK/$name.out" 2>&1 </dev/null 7>&- &
    LAST=$!
    set +m
    GROUPS_STARTED+=("$LAST")
}

# start_server STEP: starts STEP/server on port 0 and reads the port it got.
start_server() {
    : >"$WORK/server.out"
    start server "./$1/server" 0
    SERVER=$LAST
    wait_until grep -q '^Listening on port [0-9]' "$WORK/server.out" ||
        die "$1/server did not announce its port"
    read_port
}
# read_port: PORT from the server's first line, "Listening on port N".
read_port() {
    local listening on port
    read -r listening on port PORT <"$WORK/server.out"
    case $PORT in
        '' | *[!0-9]*) die "cannot read the port in the server's first line" ;;
    esac
}

stop_server() {
    kill -TERM -- "-$SERVER" 2>/dev/null
    wait "$SERVER" 2>/dev/null
}

# running PID: it has not ended (a zombie has ended: only its status is left).
running() { kill -0 "$1" 2>/dev/null && ! ps -o stat= -p "$1" | grep -q '^Z'; } 7>&-
finished() { ! running "$1"; }

# client NAME TEXT: the real client in the background, sending TEXT.
client() {
    printf '%s\n' "$2" >"$WORK/$1.in"
    start "$1" sh -c 'exec "$1" 127.0.0.1 "$2" <"$3"' sh "$CLIENT" "$PORT" "$WORK/$1.in"
}

# ask NAME TEXT: the client sends TEXT and gets its reply (in $WORK/NAME.out),
# or fails after $DEADLINE seconds: a broken server must not hang the tour.
ask() {
    client "$1" "$2"
    wait_until finished "$LAST"
}

# silent_client NAME: the real client, connected, but with nothing typed yet:
# its standard input is a FIFO that the demo holds open on descriptor 7 and
# writes the line into later (speak). The demo opens it for reading and
# writing, which Linux does without waiting for another process to open the
# other end (fifo(7); POSIX leaves it undefined). The client opens it for
# reading only, and has no descriptor 7 (start closes it): when the demo
# closes its end, or dies, the client reads end of file.
silent_client() {
    rm -f "$WORK/fifo"
    mkfifo "$WORK/fifo" || die "cannot make a FIFO in $WORK"
    exec 7<>"$WORK/fifo"
    start "$1" sh -c 'exec "$1" 127.0.0.1 "$2" <"$3"' sh "$CLIENT" "$PORT" "$WORK/fifo"
    SILENT=$LAST
    # Connected, and accept()ed by the server: nothing left in the queue.
    wait_until connected_clients_are 1 || die "the silent client did not connect"
    wait_until queued_is 0 || die "the server did not accept the silent client"
}
speak() {
    printf '%s\n' "$1" >&7
    exec 7>&-
}

# Linux has ss; macOS has only netstat, which prints the same facts differently.
have_ss() { command -v ss >/dev/null 2>&1; }

# connected_clients_are N: N clients are connected to our port.
connected_clients_are() {
    if have_ss; then
        ss -Htn state established "dport = :$PORT" | awk -v want="$1" 'END { exit (NR != want) }'
    else
        netstat -an -p tcp | awk -v end=".$PORT" -v want="$1" '$6 == "ESTABLISHED" &&
            substr($5, length($5) - length(end) + 1) == end { n++ } END { exit (n + 0 != want) }'
    fi
}
# queued_is N: N connections to our listening socket are complete, and
# nobody has accept()ed them yet (it fails when the socket is not found).
queued_is() {
    if have_ss; then
        ss -Hltn "sport = :$PORT" | awk -v want="$1" '{ q = $2; found = 1; exit }
            END { exit !(found && q == want) }'
    else
        netstat -Lan -p tcp | awk -v end=".$PORT" -v want="$1" '
            substr($2, length($2) - length(end) + 1) == end { split($1, q, "/"); found = 1; exit }
            END { exit !(found && q[1] == want) }'
    fi
}
# line_arrived: some connection to the server holds bytes it has not read yet
# (B's line, waiting in the kernel). Only ss tells; elsewhere we trust it.
line_arrived() {
    have_ss || return 0
    ss -Htn "sport = :$PORT" | awk '$2 > 0 { found = 1 } END { exit !found }'
}
# show_queue: shows the listening socket's queue the way a reader would ask.
show_queue() {
    if have_ss; then
        show "ss -ltn 'sport = :$PORT'"
        ss -ltn "sport = :$PORT" >"$WORK/ss.out"
        indent "$WORK/ss.out"
        say "On a listening socket, Recv-Q counts connections the kernel has completed"
        say "and queued that nobody has accept()ed yet: one. That is B."
    else
        show "netstat -Lan -p tcp | grep '\\.$PORT\$'"
        netstat -Lan -p tcp | grep "\\.$PORT\$" >"$WORK/ss.out"
        indent "$WORK/ss.out"
        say "The first number counts connections the kernel has completed and queued"
        say "that nobody has accept()ed yet: one. That is B."
    fi
} 7>&-

served_line() { grep -qxF "Here is the message: $1" "$WORK/server.out"; }

# children [STATE]: sets CHILDREN to the number of the server's child
# processes (only zombies with Z).
children() {
    ps -A -o ppid= -o stat= | awk -v p="$SERVER" -v s="${1:-}" \
        '$1 == p && substr($2, 1, length(s)) == s { n++ } END { print n + 0 }' >"$WORK/children"
    read -r CHILDREN <"$WORK/children"
}
children_are() { children "${2:-}" && [ "$CHILDREN" -eq "$1" ]; }
show_ps() {
    show "ps -o pid,ppid,stat,args --ppid $SERVER"
    # --ppid is Linux's; elsewhere pick the children out of every process.
    ps -o pid,ppid,stat,args --ppid "$SERVER" >"$WORK/ps.out" 2>/dev/null ||
        ps -A -o pid,ppid,stat,args | awk -v p="$SERVER" 'NR == 1 || $2 == p' >"$WORK/ps.out"
    indent "$WORK/ps.out"
}

# ---------------------------------------------------------------- the tour

for prog in step1-single/server step2-loop/server step3-fork/server step4-reap/server "$CLIENT"; do
    [ -x "$prog" ] || make -s step1 step2 step3 step4 client >/dev/null ||
        die "could not build the programs: run make"
done
START=$SECONDS

say "${BOLD}A TCP server in four steps: a guided tour${PLAIN}"
say "Each server listens on port 0, so the kernel picks a free port (yours will"
say "differ from the ones shown). The client sends one line and prints the reply."
pause

# -------- step 1
chapter "Step 1: one client, then the server exits"
start_server step1-single
show "./step1-single/server 0"
indent "$WORK/server.out"
show "echo 'hello, step 1' | ./client/client 127.0.0.1 $PORT"
ask c1 'hello, step 1' || die "the client got no reply from step 1"
indent "$WORK/c1.out"
wait_until finished "$SERVER" || die "step 1 did not exit after its client"
wait "$SERVER"
say "The server printed the message, replied, and exited with status $?:"
indent "$WORK/server.out"
# The same conversation as TCP segments, captured by ./wire.sh on a loopback
# of its own (make wire): the handshake and the two closes. Where nothing can
# be captured, one line says why.
show "./wire.sh client-first"
start wire ./wire.sh client-first
wait_until finished "$LAST" || die "./wire.sh client-first did not finish"
if wait "$LAST"; then
    grep -E '^ ?(1|2|3|6|7|10|11)  ' "$WORK/wire.out" >"$WORK/segments"
    indent "$WORK/segments"
    notice "Notice: three segments open the connection; a FIN and its ACK close each direction."
else
    sed -n '1s/^wire: /(segments not shown: /p' "$WORK/wire.out" | sed 's/$/)/'
fi
show "echo 'anyone there?' | ./client/client 127.0.0.1 $PORT"
ask c2 'anyone there?' || die "the second client of step 1 did not finish"
indent "$WORK/c2.out"
notice "Notice: a second client finds nobody listening. Step 2 loops around accept()."
pause

# -------- step 2
chapter "Step 2: a loop, but one client at a time"
start_server step2-loop
show "./step2-loop/server 0"
indent "$WORK/server.out"
say "Client A connects and then says nothing (it waits for a line on its input)."
silent_client A
say "Client B connects and sends its line at once."
client B "hello from B"
wait_until queued_is 1 || die "B did not reach the listen queue"
wait_until line_arrived || die "B's line did not arrive"
show_queue
say "The server sits in read(), waiting for A's line."
pause
running "$LAST" || die "B finished while A was silent"
notice "Notice: B has connected and sent its line, and has no reply. It waits for A."
say "Now A speaks."
speak "hello from A"
wait_until finished "$LAST" || die "B was never answered"
wait_until finished "$SILENT" || die "A was never answered"
say "A got:"; indent "$WORK/A.out"
say "B got:"; indent "$WORK/B.out"
say "The server served them in order, A first:"
indent "$WORK/server.out"
stop_server
notice "Notice: one silent client stalls everybody. Step 3 forks a child per client."
pause

# -------- step 3
chapter "Step 3: a child process per client"
start_server step3-fork
show "./step3-fork/server 0"
indent "$WORK/server.out"
say "The same scene: A connects and stays silent, B sends its line."
silent_client A
client B "hello from B"
wait_until finished "$LAST" || die "B was not served while A was silent"
say "B got, while A still says nothing:"
indent "$WORK/B.out"
running "$SILENT" || die "A finished too early"
notice "Notice: B was served at once; A's child waits for A, the parent did not."
speak "hello from A"
wait_until finished "$SILENT" || die "A was never answered"
say "Three more clients, one after another:"
for i in 1 2 3; do
    show "echo 'client $i' | ./client/client 127.0.0.1 $PORT"
    ask c "client $i" || die "client $i got no reply from step 3"
    indent "$WORK/c.out"
done
wait_until children_are 5 Z || { children Z; die "expected 5 zombies, ps shows $CHILDREN"; }
say "All five children have finished. Their parent is still running:"
show_ps
children Z
notice "Notice: zombies after 5 clients: $CHILDREN. Each <defunct> line is a finished child"
notice "whose exit status nobody has collected. Step 4 collects them."
stop_server
pause

# -------- step 4
chapter "Step 4: the same load, and every child is reaped"
start_server step4-reap
show "./step4-reap/server 0"
indent "$WORK/server.out"
silent_client A
client B "hello from B"
wait_until finished "$LAST" || die "B was not served while A was silent"
say "B was answered while A stays silent, as in step 3. Then A speaks, and"
say "three more clients come:"
speak "hello from A"
wait_until finished "$SILENT" || die "A was never answered"
for i in 1 2 3; do
    ask c "client $i" || die "client $i got no reply from step 4"
done
wait_until served_line "client 3" || die "client 3 was not served"
wait_until children_are 0 || { children; die "children still there: $CHILDREN"; }
indent "$WORK/server.out"
show_ps
children Z
notice "Notice: zombies after 5 clients: $CHILDREN. The SIGCHLD handler collected each child"
notice "with waitpid() as it ended."
stop_server

chapter "The end"
if [ $((SECONDS - START)) -ge 2 ]; then
    say "That was the whole story, in $((SECONDS - START)) seconds. Now read tutorial.md"
else
    say "That was the whole story. Now read tutorial.md"
fi
say "chapter by chapter, and run each step yourself in two terminals."
