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

set -u
cd "$(dirname "$0")" || exit 1

CLIENT=./client/client
DEADLINE=${DEADLINE:-10}       # seconds any one condition may take
if [ -t 1 ]; then
    PAUSE=${DEMO_PAUSE:-1.5}
    BOLD=$'\e[1m' DIM=$'\e[2m' GREEN=$'\e[32m' YELLOW=$'\e[33m' PLAIN=$'\e[0m'
else
    PAUSE=${DEMO_PAUSE:-0}
    BOLD='' DIM='' GREEN='' YELLOW='' PLAIN=''
fi

WORK=$(mktemp -d "${TMPDIR:-/tmp}/tcp-demo.XXXXXX") || exit 1
GROUPS_STARTED=()

# ---------------------------------------------------------------- cleaning up

cleanup() {
    local pgid
    trap - INT TERM EXIT
    exec 7>&-
    for pgid in "${GROUPS_STARTED[@]}"; do
        kill -TERM -- "-$pgid" 2>/dev/null
    done
    for pgid in "${GROUPS_STARTED[@]}"; do
        wait "$pgid" 2>/dev/null
    done
    rm -rf "$WORK"
}
interrupted() {
    echo
    say "Interrupted: stopping every process the demo started."
    cleanup
    exit 130
}
trap interrupted INT TERM
trap cleanup EXIT

# ---------------------------------------------------------------- telling

chapter() { printf '\n%s== %s ==%s\n' "$BOLD" "$*" "$PLAIN"; }
say()     { printf '%s\n' "$*"; }
notice()  { printf '%s>> %s%s\n' "$YELLOW" "$*" "$PLAIN"; }
# show CMD-TEXT: prints a command the way a reader would type it.
show()    { printf '%s$ %s%s\n' "$GREEN" "$*" "$PLAIN"; }
# indent FILE: prints what a program wrote, set off from the narration.
indent()  { sed "s/[[:space:]]*\$//; s/^/${DIM}    | /; s/\$/${PLAIN}/" "$1"; }
pause()   { [ "$PAUSE" = 0 ] || sleep "$PAUSE"; }
# die MESSAGE: stops the tour, showing what the programs said so far.
die() {
    local f
    printf 'demo: %s\n' "$*" >&2
    for f in "$WORK"/*.out; do
        [ -s "$f" ] && printf 'demo: %s said:\n' "$(basename "$f" .out)" >&2 && sed 's/^/    /' "$f" >&2
    done
    exit 1
}

# ---------------------------------------------------------------- running things

# wait_until CMD...: polls CMD every 20 ms; gives up after $DEADLINE seconds.
# A $(...) in CMD's arguments would be expanded once only: use a function.
wait_until() {
    local end=$((SECONDS + DEADLINE))
    until "$@"; do
        [ "$SECONDS" -lt "$end" ] || return 1
        sleep 0.02
    done
}

# start NAME CMD...: runs CMD in the background in a process group of its own,
# output in $WORK/NAME.out, input from /dev/null unless CMD redirects it.
start() {
    local name=$1
    shift
    set -m
    "$@" >"$WORK/$name.out" 2>&1 </dev/null &
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
        die "$1/server did not announce its port: $(cat "$WORK/server.out")"
    PORT=$(sed -n 's/^Listening on port \([0-9][0-9]*\)$/\1/p' "$WORK/server.out")
}

stop_server() {
    kill -TERM -- "-$SERVER" 2>/dev/null
    wait "$SERVER" 2>/dev/null
}

running() { kill -0 "$1" 2>/dev/null && [ "$(ps -o stat= -p "$1" | cut -c1)" != Z ]; }
finished() { ! running "$1"; }

# client NAME TEXT: the real client in the background, sending TEXT.
client() {
    printf '%s\n' "$2" >"$WORK/$1.in"
    start "$1" sh -c 'exec "$1" 127.0.0.1 "$2" <"$3"' sh "$CLIENT" "$PORT" "$WORK/$1.in"
}

# silent_client NAME: the real client, connected, but with nothing typed yet:
# its standard input is a FIFO that the demo holds open on descriptor 7 and
# writes the line into later (speak).
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
    local n
    if have_ss; then
        n=$(ss -Htn state established "dport = :$PORT" | wc -l | tr -d ' ')
    else
        n=$(netstat -an -p tcp | awk -v end=".$PORT" '$6 == "ESTABLISHED" &&
            substr($5, length($5) - length(end) + 1) == end { n++ } END { print n + 0 }')
    fi
    [ "$n" -eq "$1" ]
}
# queued: connections the kernel completed that nobody has accept()ed yet.
queued() {
    if have_ss; then
        ss -Hltn "sport = :$PORT" | awk '{ print $2; exit }'
    else
        netstat -Lan -p tcp | awk -v end=".$PORT" \
            'substr($2, length($2) - length(end) + 1) == end { split($1, q, "/"); print q[1]; exit }'
    fi
}
queued_is() { [ "$(queued)" = "$1" ]; }
# line_arrived: some connection to the server holds bytes it has not read yet
# (B's line, waiting in the kernel). Only ss tells; elsewhere we trust it.
line_arrived() {
    have_ss || return 0
    [ -n "$(ss -Htn "sport = :$PORT" | awk '$2 > 0')" ]
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
}

served_line() { grep -qxF "Here is the message: $1" "$WORK/server.out"; }

# children [STATE]: the server's child processes (only zombies with Z).
children() {
    ps -A -o ppid= -o stat= | awk -v p="$SERVER" -v s="${1:-}" \
        '$1 == p && substr($2, 1, length(s)) == s { n++ } END { print n + 0 }'
}
children_are() { [ "$(children "${2:-}")" -eq "$1" ]; }
show_ps() {
    show "ps -o pid,ppid,stat,args --ppid $SERVER"
    # --ppid is Linux's; elsewhere pick the children out of every process.
    ps -o pid,ppid,stat,args --ppid "$SERVER" >"$WORK/ps.out" 2>/dev/null ||
        ps -A -o pid,ppid,stat,args | awk -v p="$SERVER" 'NR == 1 || $2 == p' >"$WORK/ps.out"
    indent "$WORK/ps.out"
}

# ---------------------------------------------------------------- the tour

for prog in step1-single/server step2-loop/server step3-fork/server step4-reap/server "$CLIENT"; do
    [ -x "$prog" ] || make -s all >/dev/null || die "could not build the programs: run make"
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
printf 'hello, step 1\n' | "$CLIENT" 127.0.0.1 "$PORT" >"$WORK/c1.out" 2>&1
indent "$WORK/c1.out"
wait_until finished "$SERVER" || die "step 1 did not exit after its client"
wait "$SERVER"
say "The server printed the message, replied, and exited with status $?:"
indent "$WORK/server.out"
show "echo 'anyone there?' | ./client/client 127.0.0.1 $PORT"
printf 'anyone there?\n' | "$CLIENT" 127.0.0.1 "$PORT" >"$WORK/c2.out" 2>&1
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
    printf 'client %s\n' "$i" | "$CLIENT" 127.0.0.1 "$PORT" >"$WORK/c.out" 2>&1
    indent "$WORK/c.out"
done
wait_until children_are 5 Z || die "expected 5 zombies, ps shows $(children Z)"
say "All five children have finished. Their parent is still running:"
show_ps
ZOMBIES=$(children Z)
notice "Notice: zombies after 5 clients: $ZOMBIES. Each <defunct> line is a finished child"
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
    printf 'client %s\n' "$i" | "$CLIENT" 127.0.0.1 "$PORT" >/dev/null 2>&1
done
wait_until served_line "client 3" || die "client 3 was not served"
wait_until children_are 0 || die "children still there: $(children)"
indent "$WORK/server.out"
show_ps
ZOMBIES=$(children Z)
notice "Notice: zombies after 5 clients: $ZOMBIES. The SIGCHLD handler collected each child"
notice "with waitpid() as it ended."
stop_server

chapter "The end"
if [ $((SECONDS - START)) -ge 2 ]; then
    say "That was the whole story, in $((SECONDS - START)) seconds. Now read tutorial.md"
else
    say "That was the whole story. Now read tutorial.md"
fi
say "chapter by chapter, and run each step yourself in two terminals."
