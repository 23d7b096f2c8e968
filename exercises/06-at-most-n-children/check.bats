#!/usr/bin/env bats
# Exercise 06, at most N children: with N children running (N from
# MAX_CHILDREN, 10 by default), the next client waits in the listen queue with
# no child forked for it, and is served as soon as one of the N ends; the
# parent sleeps meanwhile instead of busy-waiting; a bad MAX_CHILDREN is refused.

load ../lib/checker

# A correct server reacts within milliseconds; the checks wait with the
# generous DEADLINE and give up at once when the server can no longer do
# what they wait for (see checker.bash): above all, when the parent is
# asleep with a client in the listen queue and room for it.

# room_unused N: the parent is asleep while a client waits in the listen
# queue and fewer than N children run: with a limit of N, it should have
# accepted that client. Only for a moment when every client has connected
# (no new ones arrive): the queue and the count are read before and after
# the look at the parent, and must not have changed.
room_unused() {
    local queued kids
    queued=$(queued_connections)
    kids=$(live_children "$SERVER_PID")
    [ "${queued:-0}" -ge 1 ] && [ "$kids" -lt "$1" ] && asleep "$SERVER_PID" &&
        [ "$(queued_connections)" = "$queued" ] && [ "$(live_children "$SERVER_PID")" = "$kids" ]
}

# holding N: the server runs N children ($NEVER when it runs more, or leaves
# room unused).
holding() {
    local kids
    kids=$(live_children "$SERVER_PID")
    [ "$kids" -eq "$1" ] && return 0
    [ "$kids" -gt "$1" ] && return "$NEVER"
    due || return 1
    room_unused "$1" && return "$NEVER"
    return 1
}

# hold_clients N: N clients connected and silent, each served by a child.
# Client I says its line once the file $T/speak-I exists.
hold_clients() {
    local i
    for ((i = 1; i <= $1; i++)); do
        start_peer "c$i" waitfor "$T/speak-$i" send $'line '"$i"$'\n' shutdown read || return 1
    done
    wait_until holding "$1" 2>/dev/null || {
        fail_because "expected $1 children serving $1 silent clients, got $(live_children "$SERVER_PID")" \
            "(and $(queued_connections) client(s) in the listen queue)"
        return 1
    }
}

# waits_at_limit N: with N children running, one more client waits in the
# listen queue. It can no longer ($NEVER) once the server has forked more than
# N children, or accepted that client without a child for it and gone to sleep.
waits_at_limit() {
    local kids
    kids=$(live_children "$SERVER_PID")
    [ "$kids" -gt "$1" ] && return "$NEVER"
    [ "$kids" -eq "$1" ] && queue_is 1 && return 0
    due || return 1
    queue_is 0 && asleep "$SERVER_PID" && [ "$(live_children "$SERVER_PID")" -eq "$1" ] && queue_is 0 &&
        return "$NEVER"
    return 1
}

# at_limit N: N silent clients hold N children; one more client connects and
# must wait in the listen queue, with no child forked for it. It is silent
# too, until $T/speak-w exists; then its line is "waiting". Its output goes
# to $T/waiting.out.
at_limit() {
    hold_clients "$1" || return 1
    start_peer waiting waitfor "$T/speak-w" send $'waiting\n' shutdown read || return 1
    wait_until waits_at_limit "$1" 2>/dev/null || {
        fail_because "expected client $(($1 + 1)) to wait in the listen queue while $1 children run," \
            "got $(queued_connections) connection(s) waiting and $(live_children "$SERVER_PID") children"
        return 1
    }
}

# stays_waiting N SECONDS: for at least SECONDS, the waiting client stays in
# the listen queue and the server keeps exactly N children. (To see that
# something does not happen, we have to watch for a while: this is that
# while, not a wait for a condition.)
stays_waiting() {
    local looks=$(($2 * 4)) kids
    while [ "$looks" -gt 0 ]; do
        looks=$((looks - 1))
        kids=$(count_children "$SERVER_PID")
        if [ "$kids" -ne "$1" ] || ! queue_is 1; then
            fail_because "expected client $(($1 + 1)) to keep waiting in the listen queue with $1 children" \
                "running, got $(queued_connections) connection(s) waiting and $kids children"
            return 1
        fi
        nap 0.25
    done
}

# cpu_ticks PID: the CPU time PID has used (user + system), in 1/100 s.
cpu_ticks() {
    local hz
    if [ -r "/proc/$1/stat" ]; then
        hz=$(getconf CLK_TCK)
        # The fields after the command name, which is in parentheses and may
        # hold spaces: utime and stime are fields 14 and 15 of the line.
        sed 's/^.*) //' "/proc/$1/stat" | awk -v hz="$hz" '{ print int(($12 + $13) * 100 / hz) }'
    else
        # macOS: [[dd-]hh:]mm:ss.cc
        ps -o time= -p "$1" | awk -F'[-:]' '{ t = 0; for (i = 1; i <= NF; i++) t = t * 60 + $i; print int(t * 100) }'
    fi
}

# wakeups PID: how often PID has been switched out (Linux only; empty elsewhere).
wakeups() {
    [ -r "/proc/$1/status" ] || return 0
    awk '/^(voluntary|nonvoluntary)_ctxt_switches:/ { n += $2 } END { print n + 0 }' "/proc/$1/status"
}

# all_connected N: the clients burst-1 .. burst-N have all connected.
all_connected() {
    local i
    for ((i = 1; i <= $1; i++)); do
        grep -qx connected "$T/burst-$i.out" 2>/dev/null || return 1
    done
}

# all_answered N: the clients burst-1 .. burst-N all got their reply.
all_answered() {
    local i
    for ((i = 1; i <= $1; i++)); do
        grep -qx "I got your message" "$T/burst-$i.out" 2>/dev/null || return 1
    done
}

# served_peer NAME N: the peer NAME got "I got your message" from a server
# whose limit is N ($NEVER once the peer has ended without it, or the server
# leaves room unused).
served_peer() { wait_until got_reply "$1" "$2" 2>/dev/null; }
got_reply() {
    grep -qx "I got your message" "$T/$1.out" 2>/dev/null && return 0
    grep -q '^ERROR' "$T/$1.err" 2>/dev/null && return "$NEVER"
    due || return 1
    room_unused "$2" && return "$NEVER"
    return 1
}

# bats test_tags=lesson
@test "with MAX_CHILDREN=2, a third client waits in the listen queue and no child is forked for it" {
    MAX_CHILDREN=2 start_ex_server
    at_limit 2
    stays_waiting 2 1
}

# bats test_tags=lesson
@test "the waiting client is served as soon as one of the two children ends" {
    MAX_CHILDREN=2 start_ex_server
    at_limit 2
    touch "$T/speak-w"
    touch "$T/speak-1"
    served_peer c1 2 || {
        fail_because "expected silent client 1 to get its reply once it spoke, got: $(excerpt_file "$T/c1.out")"
        return 1
    }
    served_peer waiting 2 || {
        fail_because "expected the waiting client to be served as soon as a child had ended, got no reply" \
            "(it printed $(excerpt_file "$T/waiting.out")), and $(queued_connections) connection(s) still queued" \
            "while the server sleeps with $(live_children "$SERVER_PID") child(ren)"
        server_said
        return 1
    }
    local kids
    kids=$(count_children "$SERVER_PID")
    [ "$kids" -le 2 ] || fail_because "expected at most 2 children (client 2's and the new one's), got $kids"
    touch "$T/speak-2"
    served_peer c2 2 || fail_because "expected client 2 to get its reply, got: $(excerpt_file "$T/c2.out")"
}

# What we measure: the parent's CPU time and (on Linux) how often it was
# switched out, over 2 s at the limit. Measured on a 2-core Linux machine
# shared with other test runs: a parent asleep in sigsuspend() used 0.00 s
# and was switched out 0 times (nothing happens that could wake it); one
# spinning in a loop used 0.77 s; one polling with a 1 ms nanosleep used
# 0.04 s but was woken about 1750 times; with a 100 ms nanosleep, 20 times.
# The bounds, 0.10 s of CPU and 10 wake-ups, leave a sleeping parent a wide
# margin and catch spinning and polling more often than 5 times a second.
# bats test_tags=lesson
@test "the parent does not busy-wait while it waits at the limit" {
    MAX_CHILDREN=2 start_ex_server
    at_limit 2
    local cpu0 cpu1 woke0 woke1
    cpu0=$(cpu_ticks "$SERVER_PID")
    woke0=$(wakeups "$SERVER_PID")
    stays_waiting 2 2
    cpu1=$(cpu_ticks "$SERVER_PID")
    woke1=$(wakeups "$SERVER_PID")
    [ $((cpu1 - cpu0)) -le 10 ] ||
        fail_because "expected the waiting parent to use at most 0.10 s of CPU in 2 s (it should sleep)," \
            "got $(printf '%d.%02d' $(((cpu1 - cpu0) / 100)) $(((cpu1 - cpu0) % 100))) s: it is busy-waiting"
    if [ -n "$woke0" ]; then
        [ $((woke1 - woke0)) -le 10 ] ||
            fail_because "expected the waiting parent to be woken at most 10 times in 2 s (it should sleep" \
                "until a child ends), got $((woke1 - woke0)) times: it is polling"
    fi
}

# bats test_tags=lesson
@test "without MAX_CHILDREN, the limit is 10 children" {
    unset MAX_CHILDREN
    start_ex_server
    at_limit 10
    stays_waiting 10 1
}

# The clients are tests/peer, one process each, so that the checker stays
# light under make grade's limit on processes.
# bats test_tags=lesson
@test "with MAX_CHILDREN=3, 12 clients at once are all served, never more than 3 children at a time" {
    MAX_CHILDREN=3 start_ex_server
    local i most=0 kids end stuck=
    for ((i = 1; i <= 12; i++)); do
        start_bg "burst-$i" "$PEER" 127.0.0.1 "$PORT" send "burst $i"$'\n' shutdown read
    done
    end=$((SECONDS + DEADLINE))
    while ! all_answered 12 && [ "$SECONDS" -lt "$end" ]; do
        kids=$(count_children "$SERVER_PID")
        [ "$kids" -le "$most" ] || most=$kids
        if due && all_connected 12 && room_unused 3; then
            stuck=1
            break
        fi
        nap 0.01
    done
    for ((i = 1; i <= 12; i++)); do
        grep -qx "I got your message" "$T/burst-$i.out" || {
            fail_because "expected client $i of 12 to get 'I got your message'$([ -n "$stuck" ] &&
                echo ", but the server sleeps with $(queued_connections) client(s) queued and room for them" ||
                echo " within ${DEADLINE}s")," \
                "got: $(excerpt_file "$T/burst-$i.out") $(excerpt_file "$T/burst-$i.err")"
            return 1
        }
    done
    [ "$most" -le 3 ] || fail_because "expected at most 3 children at a time, saw $most"
    wait_until children_are "$SERVER_PID" 0 2>/dev/null ||
        fail_because "expected no child left once the clients are gone, not even a zombie," \
            "got $(count_children "$SERVER_PID")"
}

# bats test_tags=lesson
@test "a MAX_CHILDREN that is not 1 to 1000 in decimal digits (an empty one too) is refused with exit status 2" {
    local bad
    for bad in 0 abc 5x -3 ' 5' +5 '' 1001; do
        try_env MAX_CHILDREN "$bad"
        if [ "$status" -eq 124 ]; then
            fail_because "expected the server to refuse MAX_CHILDREN='$bad' and exit, but it went on to listen;" \
                "it printed: $(excerpt "$output")"
            return 1
        fi
        if [ "$status" -ne 2 ] || [[ $output == *Listening* ]]; then
            fail_because "expected the server to refuse MAX_CHILDREN='$bad' and exit with status 2," \
                "before listening, got status $status and: $(excerpt "$output")"
            return 1
        fi
    done
}

# Signals of one kind do not queue: children that end while a SIGCHLD is
# pending give one SIGCHLD for all of them. A parent that counts one ended
# child per SIGCHLD then thinks children still run that have gone, and
# admits fewer than N from then on (or none, for ever). To make that happen
# every time, the test stops the parent (SIGSTOP) while its three children
# serve their clients and end, and lets it go on (SIGCONT) once all three
# are zombies: one SIGCHLD for three children.
# bats test_tags=lesson
@test "three children that end at once (one SIGCHLD for all) are all counted: the server then admits exactly 3 again" {
    MAX_CHILDREN=3 start_ex_server
    hold_clients 3
    kill -STOP "$SERVER_PID"
    touch "$T/speak-1" "$T/speak-2" "$T/speak-3"
    wait_until children_are "$SERVER_PID" 3 Z 2>/dev/null || {
        kill -CONT "$SERVER_PID"
        fail_because "expected the three children to end once their clients spoke, got" \
            "$(count_children "$SERVER_PID" Z) zombies of $(count_children "$SERVER_PID") children"
        return 1
    }
    kill -CONT "$SERVER_PID"
    local i
    for i in 1 2 3; do
        wait_until grep -qx "I got your message" "$T/c$i.out" 2>/dev/null ||
            fail_because "expected client $i to get its reply, got: $(excerpt_file "$T/c$i.out")" || return 1
    done
    for i in 4 5 6; do
        start_peer "c$i" waitfor "$T/speak-$i" send $'line '"$i"$'\n' shutdown read || return 1
    done
    wait_until holding 3 2>/dev/null || {
        fail_because "expected the server to admit 3 new clients once the 3 children that ended together were" \
            "collected, got $(live_children "$SERVER_PID") children and $(queued_connections) client(s) in the listen queue" \
            "while it sleeps (does it count one child per SIGCHLD?)"
        return 1
    }
    start_peer waiting waitfor "$T/speak-w" send $'waiting\n' shutdown read || return 1
    wait_until waits_at_limit 3 2>/dev/null || {
        fail_because "expected a fourth client to wait in the listen queue while 3 children run, got" \
            "$(queued_connections) connection(s) waiting and $(live_children "$SERVER_PID") children"
        return 1
    }
    stays_waiting 3 1
}

# ------------------------------------------------------------ read from the source

# (EX_SRC and code_of, which reads it without comments and strings, come
# from exercises/lib/checker.bash.)

# A parent that waits with pause() can miss the last child's end for good,
# if it comes between the look at the count and pause() (hint 2): no test
# can make that moment happen on purpose, so we read the source. Sleeping in
# a loop is polling; fast polling is caught above, slow polling (sleep(1))
# only here. This check does not prove that the parent waits in
# sigsuspend() (the tests above see that it sleeps and wakes in time); it
# only forbids the calls that would wait wrongly. It looks at the whole file,
# not only at the code that waits for room: finding that code in a student's
# source (a function of its own, or a loop inlined in main) is guesswork,
# and this server needs none of these calls anywhere. The README says so,
# a sleep() elsewhere (say, a back-off after accept() fails) included.
# bats test_tags=lesson
@test "(read from the source) no pause(), sleep(), usleep() or nanosleep() anywhere in the file" {
    [ -f "$EX_SRC" ] || {
        fail_because "expected the source of the program under test at $EX_SRC, found nothing (set EX_SRC)"
        return 1
    }
    local found
    found=$(code_of "$EX_SRC" | grep -nE '(^|[^A-Za-z0-9_])(pause|sleep|usleep|nanosleep|clock_nanosleep)[[:space:]]*[(]' || true)
    [ -z "$found" ] || fail_because "expected no pause(), sleep(), usleep(), nanosleep() or clock_nanosleep()" \
        "anywhere in the file (to wait for a child, use sigsuspend(): hints 2 and 3), got, at line: $(excerpt "$found")"
}
