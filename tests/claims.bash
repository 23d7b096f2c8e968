# tests/claims.bash - what tests/claims.bats needs beyond tests/helper.bash:
# the captures of ./wire.sh, run once for the whole file and in parallel; the
# experiments, one function claim_NAME per claim, which setup_file starts all
# at once; a private network namespace for those that change the kernel's
# settings; and the list of the claims marked in the text.

PROBE="$ROOT/tests/probe"
DESIGNS="$ROOT/tests/designs"
WIRE="$ROOT/wire.sh"
# The files whose claims are marked <!-- claim: NAME -->.
CLAIM_FILES=("$ROOT/tutorial.md" "$ROOT/exercises/TEACHING.md" "$ROOT"/exercises/[0-9][0-9]-*/README.md)

# ---------------------------------------------------------------- the captures

# The captures the tests read: "SCENE STEP" (wire.sh's scenes against step 1,
# and two of them against step 4, whose per-connection code is step 1's).
WIRE_RUNS=("client-first 1" "server-first 1" "reset 1" "refused 1" "client-first 4" "server-first 4")

# wire_start_all: starts every capture in the background, each in a process
# group of its own (teardown_file kills them), output in $BATS_FILE_TMPDIR.
wire_start_all() {
    local run scene step dir="$BATS_FILE_TMPDIR/wire"
    mkdir -p "$dir"
    : >"$dir/groups"
    for run in "${WIRE_RUNS[@]}"; do
        read -r scene step <<<"$run"
        # Descriptors 3 and 4 are bats' own: whatever holds them keeps bats
        # waiting, so no process of ours may inherit them.
        set -m
        (
            WIRE_KEEP="$dir/$scene.$step.work" STEP="$step" "$WIRE" "$scene" \
                >"$dir/$scene.$step.out" 2>"$dir/$scene.$step.err"
            echo $? >"$dir/$scene.$step.status"
        ) </dev/null >/dev/null 2>&1 3>&- 4>&- &
        echo $! >>"$dir/groups"
        set +m
    done
}

wire_stop_all() {
    local g
    [ -f "$BATS_FILE_TMPDIR/wire/groups" ] || return 0
    while read -r g; do
        kill -KILL -- "-$g" 2>/dev/null || true
    done <"$BATS_FILE_TMPDIR/wire/groups"
}

# wire_output SCENE [STEP]: waits for that capture and sets WIRE to its
# output; skips the test (with wire.sh's reason) where nothing can be
# captured, and fails when wire.sh failed.
wire_output() {
    local base="$BATS_FILE_TMPDIR/wire/$1.${2:-1}" status
    wait_until test -s "$base.status" ||
        fail_because "expected ./wire.sh $1 to finish, got: $(excerpt_file "$base.err")"
    status=$(cat "$base.status")
    [ "$status" -ne 77 ] || skip "$(sed 's/^wire: //' "$base.err")"
    [ "$status" -eq 0 ] ||
        fail_because "expected ./wire.sh $1 to exit 0, got status $status and: $(excerpt_file "$base.err")"
    WIRE=$(cat "$base.out")
    WIRE_WORK="$base.work"
}

# segments_of: the numbered segment lines of $WIRE, without the numbers and
# the call column: "SIDE > SIDE  FLAGS  seq N ack N len N".
segments_of() {
    printf '%s\n' "$WIRE" | awk '/^ *[0-9]+  / { $1 = ""; line = $0
        sub(/^ /, "", line); sub(/ +len [0-9]+ .*$/, "", line); print line }' | tr -s ' '
}

# flags_of: one line per segment: "SIDE FLAGS", e.g. "client FIN ACK".
flags_of() {
    printf '%s\n' "$WIRE" | awk '/^ *[0-9]+  / { flags = ""
        for (i = 5; $i != "seq"; i++) flags = flags " " $i
        print $2 flags }'
}

# expect_lines WHAT EXPECTED GOT: fails, showing both, unless the two
# (multi-line) texts are equal.
expect_lines() {
    [ "$2" = "$3" ] && return 0
    printf 'expected %s:\n%s\ngot:\n%s\n' "$1" "$2" "$3" >&2
    return 1
}

# ---------------------------------------------------------------- a private network

# in_netns FUNCTION [ARG...]: runs FUNCTION (of this file) inside network
# and PID namespaces of their own, with the loopback up: it may change the
# kernel's network settings there (they are the namespace's own), and
# whatever it leaves running ends with it. It has the helpers of helper.bash,
# and $T. Skips the test where no namespace can be made.
in_netns() {
    local how=() ns=(--net --pid --fork --kill-child --mount-proc)
    if [ "$(uname -s)" != Linux ] || ! command -v unshare >/dev/null; then
        skip "needs Linux network namespaces (unshare, util-linux)"
    fi
    if unshare --user --map-user=1 --map-group=1 --keep-caps "${ns[@]}" true 2>/dev/null; then
        how=(unshare --user --map-user=1 --map-group=1 --keep-caps "${ns[@]}")
    elif [ "$(id -u)" -eq 0 ] && unshare "${ns[@]}" true 2>/dev/null; then
        how=(unshare "${ns[@]}")
    else
        skip "this kernel lets us make no network namespace (neither a user namespace nor, as root, a network one)"
    fi
    with_deadline "${how[@]}" env PATH="$PATH:/usr/sbin:/sbin" ROOT="$ROOT" T="$T" bash -c '
        ip link set lo up || exit 1
        source "$ROOT/tests/helper.bash"
        source "$ROOT/tests/claims.bash"
        harness_setup_in "$T/netns"
        trap stop_everything EXIT
        "$@"' netns "$@"
}

# harness_setup_in DIR: harness_setup for a shell that runs outside bats.
harness_setup_in() {
    mkdir -p "$1"
    T=$1
    BG_PIDS=()
    HARNESS_GROUPS="$T/.process-groups"
    : >"$HARNESS_GROUPS"
}

# ---------------------------------------------------------------- marked claims

# marked_claims: "NAME FILE:LINE" for every <!-- claim: NAME --> in CLAIM_FILES.
marked_claims() {
    awk -v root="$ROOT/" '{ line = $0
           while (match(line, /<!-- claim: [a-z0-9-]+ -->/)) {
               name = substr(line, RSTART + 12, RLENGTH - 16)
               file = FILENAME; if (index(file, root) == 1) file = substr(file, length(root) + 1)
               print name, file ":" FNR
               line = substr(line, RSTART + RLENGTH)
           } }' "${CLAIM_FILES[@]}"
}

# claim_tests FILE: the NAME of every test in FILE named "claim NAME: ...".
claim_tests() {
    sed -n 's/^@test "claim \([a-z0-9-]*\): .*/\1/p' "$1"
}

# ---------------------------------------------------------------- experiments in a namespace
# Run by in_netns: each prints what it saw, one fact a line.

# netns_defaults: the settings a new network namespace starts with, which
# are the kernel's defaults, whatever this machine's own settings are.
netns_defaults() {
    echo "somaxconn $(cat /proc/sys/net/core/somaxconn)"
    echo "tcp_abort_on_overflow $(cat /proc/sys/net/ipv4/tcp_abort_on_overflow)"
    echo "ip_local_port_range $(tr '\t' ' ' </proc/sys/net/ipv4/ip_local_port_range)"
}

# netns_backlog_capped N: with net.core.somaxconn set to N, the backlog of a
# server that asks for SOMAXCONN.
netns_backlog_capped() {
    echo "$1" >/proc/sys/net/core/somaxconn
    start_server step1-single || return 1
    ss -Hltn "sport = :$PORT" | awk '{ print "backlog " $3 }'
}

# netns_queue_full: net.core.somaxconn 1, so step 2 listens with a backlog
# of 1. One client is accepted and silent; three more come one by one. What
# do the listen queue and the sockets of the last three show?
netns_queue_full() {
    echo 1 >/proc/sys/net/core/somaxconn
    start_server step2-loop || return 1
    start_peer silent waitfor "$T/never" || return 1
    wait_until queue_is 0 || return 1
    start_bg a client_says "one"
    wait_until queue_is 1 || return 1
    start_bg b client_says "two"
    wait_until queue_is 2 || return 1
    wait_until states_are close-wait 2 "sport = :$PORT" || return 1
    start_bg c client_says "three"
    wait_until states_are syn-sent 1 "dport = :$PORT" || return 1
    echo "listen queue $(queued_connections), backlog $(ss -Hltn "sport = :$PORT" | awk '{ print $3 }')"
    echo "server side: $(count_states close-wait "sport = :$PORT") in CLOSE-WAIT"
    echo "client side: $(count_states fin-wait-2 "dport = :$PORT") in FIN-WAIT-2, $(count_states syn-sent "dport = :$PORT") in SYN-SENT"
}

# is_stopped PID: the process is stopped (by SIGSTOP): ps shows state T.
is_stopped() { ps -o stat= -p "$1" | grep -q '^T'; }

# count_states STATE FILTER: how many TCP sockets matching FILTER are in STATE.
count_states() { ss -Htan state "$1" "$2" | wc -l | tr -d ' '; }
states_are() { [ "$(count_states "$1" "$3")" -eq "$2" ]; }

# ---------------------------------------------------------------- running the experiments
# Every claim that needs programs of its own is an experiment: a function
# claim_NAME below. setup_file starts them all at once, in the background,
# each in a directory and process groups of its own; the test named after
# the claim waits for its result. Most of their time is spent waiting for the
# other side, so together they take little longer than the slowest one.

# claims_start_all: starts every claim_* function of this file, each in a
# session of its own (setsid), with none of bats' descriptors: teardown_file
# kills every process of those sessions, whatever an experiment was doing
# when it was stopped.
claims_start_all() {
    local fn dir
    mkdir -p "$BATS_FILE_TMPDIR/claims"
    for fn in $(declare -F | awk '$3 ~ /^claim_/ { print $3 }'); do
        dir="$BATS_FILE_TMPDIR/claims/${fn#claim_}"
        mkdir -p "$dir"
        # Without setsid (macOS), a process group of its own: less sure, as a
        # process that the experiment starts in a group of its own and has
        # not written down yet escapes it.
        set -m
        $(command -v setsid) bash -c 'if [ "$(ps -o sid= -p $$)" -eq $$ ]; then echo "sid $$"; else echo "pgid $$"; fi >"$3/stop"
                      source "$1/tests/helper.bash"
                      source "$1/tests/claims.bash"
                      claim_run "$2" "$3"' claim "$ROOT" "$fn" "$dir" \
            </dev/null >/dev/null 2>&1 3>&- 4>&- &
        set +m
    done
}

# claim_run FUNCTION DIR: runs FUNCTION as a test would: the first failing
# command ends it; skip says why it cannot run here. DIR/status gets the
# result (0 passed, 77 skipped, else failed), DIR/out and DIR/err what it
# printed.
claim_run() (
    local fn=$1 dir=$2 rc=0
    harness_setup_in "$dir"
    NOBODY_DIR=
    skip() { printf '%s\n' "$*" >"$dir/skip"; exit 77; }
    finish() {
        rc=$?
        trap - EXIT
        stop_everything
        [ -z "${NOBODY_DIR:-}" ] || rm -rf "$NOBODY_DIR"
        echo "$rc" >"$dir/status"
        exit "$rc"
    }
    trap finish EXIT
    trap 'echo "failed: $BASH_COMMAND (tests/claims.bash, line $LINENO)" >&2' ERR
    set -eE
    "$fn" >"$dir/out" 2>"$dir/err"
)

# run CMD...: outside bats (an experiment runs in a shell of its own), what
# bats' run does: status, output, and lines (the non-empty ones).
declare -F run >/dev/null || run() {
    local line
    status=0
    output=$("$@" 2>&1) || status=$?
    lines=()
    while IFS= read -r line; do
        [ -n "$line" ] && lines+=("$line")
    done <<<"$output"
    return 0
}

# claims_stop_all: kills every process of the experiments' sessions
# (teardown_file).
claims_stop_all() {
    local kind id sids=" "
    for f in "$BATS_FILE_TMPDIR"/claims/*/stop; do
        [ -f "$f" ] || continue
        read -r kind id <"$f"
        case $kind in
            sid) sids="$sids$id " ;;
            pgid) kill -KILL -- "-$id" 2>/dev/null ;;
        esac
        # What the experiment wrote down itself (pgid mode has no better).
        [ -f "${f%/stop}/.process-groups" ] && while read -r id; do
            [ -n "$id" ] && kill -KILL -- "-$id" 2>/dev/null
        done <"${f%/stop}/.process-groups"
    done
    [ "$sids" != " " ] || return 0
    ps -A -o sid= -o pid= | awk -v sids="$sids" 'index(sids, " " $1 " ") { print $2 }' |
        xargs kill -KILL 2>/dev/null
    return 0
}

# claim_result NAME: waits for the experiment of claim NAME and passes, skips
# or fails as it did, showing what it printed.
claim_result() {
    local dir="$BATS_FILE_TMPDIR/claims/${1//-/_}" rc
    [ -n "$(declare -F "claim_${1//-/_}")" ] || fail_because "expected a function claim_${1//-/_} in tests/claims.bash, got none"
    DEADLINE=$(scaled 60) wait_until test -s "$dir/status" ||
        fail_because "expected the experiment of claim $1 to end, got: $(excerpt_file "$dir/err")"
    rc=$(cat "$dir/status")
    cat "$dir/out" "$dir/err"
    [ "$rc" -ne 77 ] || skip "$(cat "$dir/skip")"
    [ "$rc" -eq 0 ]
}
# ================================================================ sockets and ports

# new-socket-per-connection: accept() gives a new socket for the connection; the listening socket stays as it was
claim_new_socket_per_connection() {
    start_server step2-loop
    start_peer silent waitfor "$T/never"
    wait_until queue_is 0
    [ "$(ss -Htan state listening "sport = :$PORT" | wc -l)" -eq 1 ]
    [ "$(ss -Htan state established "sport = :$PORT" | wc -l)" -eq 1 ]
}

# server-port-shared: two connections to a server share its port; the kernel gave each client a port of its own
claim_server_port_shared() {
    start_server step3-fork
    start_peer one waitfor "$T/never"
    start_peer two waitfor "$T/never"
    wait_until children_are "$SERVER_PID" 2
    run ss -Htn state established "sport = :$PORT"
    [ "${#lines[@]}" -eq 2 ]
    [ "$(printf '%s\n' "${lines[@]}" | awk '{ sub(/.*:/, "", $4); print $4 }' | sort -u | wc -l)" -eq 2 ]
}

# ephemeral-port: on Linux a client's port comes from ip_local_port_range (32768 to 60999 by default)
claim_ephemeral_port() {
    [ -r /proc/sys/net/ipv4/ip_local_port_range ] || skip "Linux only (/proc/sys/net/ipv4/ip_local_port_range)"
    run in_netns netns_defaults
    [[ $output == *"ip_local_port_range 32768 60999"* ]] ||
        fail_because "expected the default range 32768 60999 in a new namespace, got: $(excerpt "$output")"
    local low high port
    read -r low high </proc/sys/net/ipv4/ip_local_port_range
    start_server step2-loop
    start_peer silent waitfor "$T/never"
    port=$(ss -Htn state established "dport = :$PORT" | awk '{ sub(/.*:/, "", $3); print $3; exit }')
    echo "range $low-$high, client port $port"
    [ "$port" -ge "$low" ] && [ "$port" -le "$high" ]
}

# port-zero: port 0 asks the kernel for any free port, and the server learns which with getsockname()
claim_port_zero() {
    start_server step1-single
    [ "$PORT" -gt 0 ]
    [ -n "$(ss -Hltn "sport = :$PORT")" ]
}

# bind-in-use: a second server on a port that one listens on gets 'Address already in use', SO_REUSEADDR or not
claim_bind_in_use() {
    check_port_in_use step1-single
}

# low-port-needs-root: on Linux, ports below 1024 need the administrator
claim_low_port_needs_root() {
    check_low_port_needs_privilege step1-single
}

# stream-no-boundaries: a write of 10 bytes and one of 20 can reach the reader as one read of 30
claim_stream_no_boundaries() {
    start_bg server "$PROBE" recv-once "$T/go"
    SERVER_PID=$BG_PID
    wait_until server_announced
    PORT=$(announced_port "$T/server.out")
    start_peer writer send 0123456789 send 01234567890123456789 waitfor "$T/never"
    wait_until sent_twice
    wait_until unread_is 30
    touch "$T/go"
    wait_until grep -qx 'read: 30' "$T/server.out" ||
        fail_because "expected 'read: 30', got: $(excerpt_file "$T/server.out")"
}

sent_twice() { [ "$(grep -c '^sent$' "$T/writer.out")" -eq 2 ]; }

# kernel-completes-handshake: the kernel completes the handshake while the server's program does nothing, and queues the connection for accept()
claim_kernel_completes_handshake() {
    start_server step1-single
    kill -STOP "$SERVER_PID"
    # kill returns before the server has stopped: until it really has, a
    # connection that arrives can still be accept()ed.
    wait_until is_stopped "$SERVER_PID"
    start_peer early send $'hi\n'
    wait_until queue_is 1 || fail_because "expected 1 connection in the listen queue, got $(queued_connections)"
    kill -CONT "$SERVER_PID"
}

# stopped-server-closes-first: a server stopped while a client is connected sends its FIN first
claim_stopped_server_closes_first() {
    start_server step2-loop
    start_peer silent waitfor "$T/never"
    wait_until queue_is 0
    kill -TERM "$SERVER_PID"
    wait_until exited "$SERVER_PID"
    wait_until states_are close-wait 1 "dport = :$PORT" ||
        fail_because "expected the client's side in CLOSE-WAIT, got: $(ss -Htan "dport = :$PORT")"
}

# ================================================================ TIME-WAIT and SO_REUSEADDR

# time-wait-60s: on Linux a connection stays in TIME-WAIT for 60 seconds at most
claim_time_wait_60s() {
    start_server step1-single
    peer send $'hi\n' read close >/dev/null
    wait_until in_time_wait "$PORT"
    local timer seconds
    timer=$(ss -Htano state time-wait "sport = :$PORT" | sed -n 's/.*timer:(timewait,\([^,]*\),.*/\1/p' | head -n 1)
    # ss writes the time left as 59sec, 1min, 999ms or 1min2sec.
    seconds=$(printf '%s\n' "$timer" | awk '{ t = $0; s = 0
        if (match(t, /[0-9]+min/)) s += 60 * substr(t, RSTART, RLENGTH - 3)
        if (match(t, /[0-9]+sec/)) s += substr(t, RSTART, RLENGTH - 3)
        if (match(t, /[0-9]+ms/)) s += substr(t, RSTART, RLENGTH - 2) / 1000
        print s }')
    echo "timer: $timer ($seconds s)"
    [ -n "$timer" ] || fail_because "expected a timewait timer, got: $(ss -Htano state time-wait "sport = :$PORT")"
    awk -v s="$seconds" 'BEGIN { exit !(s > 0 && s <= 60) }' ||
        fail_because "expected at most 60 seconds left in TIME-WAIT, got $timer"
}

# reuseaddr-both-sides: on Linux, a port with a connection in TIME-WAIT can be bound again only when the old and the new socket both set SO_REUSEADDR
# (in a network namespace of its own: there no other test's client can be
# given that port, nor fill the TIME-WAIT table, while the four binds are tried)
claim_reuseaddr_both_sides() {
    [ "$(uname -s)" = Linux ] || skip "this is Linux's rule; BSD and macOS look at the new socket only"
    run in_netns netns_reuseaddr
    echo "$output"
    [ "$status" -eq 0 ] || fail_because "expected the four binds to be tried, got: $(excerpt "$output")"
    expect_lines "the binds beside a TIME-WAIT" \
        "$(printf '%s\n' 'old reuse, new reuse: bind: bound' 'old reuse, new noreuse: bind: Address already in use' \
            'old noreuse, new reuse: bind: Address already in use' 'old noreuse, new noreuse: bind: Address already in use')" \
        "$output"
}

# netns_reuseaddr (in its namespace): for each of the four combinations, a
# connection left in TIME-WAIT by tests/probe with or without SO_REUSEADDR,
# and what a bind to its port with or without it gives.
netns_reuseaddr() {
    local old new
    for old in reuse noreuse; do
        for new in reuse noreuse; do
            rm -f "$T/old.out"
            start_bg old "$PROBE" serve "$old"
            wait_until grep -q '^Listening on port' "$T/old.out" || { echo "tests/probe serve did not start"; return 1; }
            PORT=$(announced_port "$T/old.out")
            peer read close >/dev/null
            wait_until exited "$BG_PID" || { echo "tests/probe serve did not end"; return 1; }
            wait_until in_time_wait "$PORT" || { echo "no TIME-WAIT on port $PORT: $(ss -Htan "sport = :$PORT")"; return 1; }
            echo "old $old, new $new: $("$PROBE" bind "$PORT" "$new" 2>&1)"
        done
    done
}

# ================================================================ the backlog

# backlog-in-send-q: ss shows the backlog in the Send-Q column of the listening line: the smaller of SOMAXCONN and net.core.somaxconn
claim_backlog_in_send_q() {
    local somaxconn limit
    somaxconn=$("$PROBE" somaxconn)
    limit=$(cat /proc/sys/net/core/somaxconn 2>/dev/null) || skip "Linux only (/proc/sys/net/core/somaxconn)"
    [ "$limit" -lt "$somaxconn" ] && somaxconn=$limit
    start_server step1-single
    expect_same "the backlog" "$somaxconn" "$(ss -Hltn "sport = :$PORT" | awk '{ print $3 }')"
}

# somaxconn-glibc: SOMAXCONN is 4096 in glibc 2.36
claim_somaxconn_glibc() {
    [ "$(getconf GNU_LIBC_VERSION 2>/dev/null)" = "glibc 2.36" ] ||
        skip "the C library here is not glibc 2.36: $(getconf GNU_LIBC_VERSION 2>&1)"
    expect_same "SOMAXCONN" 4096 "$("$PROBE" somaxconn)"
}

# somaxconn-default: a new network namespace starts with net.core.somaxconn 4096 (Linux 5.4 and later)
claim_somaxconn_default() {
    run in_netns netns_defaults
    echo "$output"
    [ "$status" -eq 0 ]
    [[ $output == *"somaxconn 4096"* ]]
}

# abort-on-overflow-off: by default (tcp_abort_on_overflow 0) Linux drops a SYN it has no room for instead of refusing it
claim_abort_on_overflow_off() {
    run in_netns netns_defaults
    echo "$output"
    [ "$status" -eq 0 ]
    [[ $output == *"tcp_abort_on_overflow 0"* ]]
}

# backlog-capped: Linux lowers a backlog above net.core.somaxconn to that number
claim_backlog_capped() {
    run in_netns netns_backlog_capped 7
    echo "$output"
    [ "$status" -eq 0 ]
    [ "$output" = "backlog 7" ]
}

# backlog-plus-one: with a backlog of 1, Linux queues two connections; the next client's SYN is dropped and it waits in SYN-SENT
claim_backlog_plus_one() {
    run in_netns netns_queue_full
    echo "$output"
    [ "$status" -eq 0 ]
    expect_lines "the queue and the sockets" \
        "$(printf '%s\n' 'listen queue 2, backlog 1' 'server side: 2 in CLOSE-WAIT' 'client side: 2 in FIN-WAIT-2, 1 in SYN-SENT')" \
        "$output"
}

# recv-q-listen-queue: on a listening socket, ss's Recv-Q counts the connections waiting for accept()
claim_recv_q_listen_queue() {
    start_server step2-loop
    start_peer silent waitfor "$T/never"
    wait_until queue_is 0
    start_peer second send $'second\n' shutdown waitfor "$T/never"
    wait_until queue_is 1 || fail_because "expected Recv-Q 1 on the LISTEN line, got $(queued_connections)"
}

# ss-counts-fin: ss counts a FIN that is not read yet as one byte of Recv-Q
claim_ss_counts_fin() {
    start_server step2-loop
    start_peer silent waitfor "$T/never"
    wait_until queue_is 0
    start_peer second send $'second\n' shutdown waitfor "$T/never"
    wait_until states_are close-wait 1 "sport = :$PORT"
    expect_same "the unread bytes of 'second', its newline and the FIN" 8 \
        "$(ss -Htn state close-wait "sport = :$PORT" | awk '{ print $1 }')"
}

# ================================================================ accept

# accept-hands-over-reset: Linux's accept() hands over a connection reset while it was queued; the first read fails with ECONNRESET
claim_accept_hands_over_reset() {
    [ "$(uname -s)" = Linux ] || skip "Linux's behaviour; BSD systems fail accept() with ECONNABORTED instead"
    start_server step2-loop
    start_peer silent waitfor "$T/speak" send $'first\n' shutdown read
    wait_until queue_is 0
    peer reset >/dev/null
    touch "$T/speak"
    wait_until grep -qx "ERROR reading from socket: Connection reset by peer" "$T/server.err" ||
        fail_because "expected 'ERROR reading from socket: Connection reset by peer', got: $(excerpt_file "$T/server.err")"
    ! grep -q "ERROR on accept" "$T/server.err"
}

# accept-emfile-at-once: with no descriptor left, accept() fails with EMFILE at once, even with no client waiting
claim_accept_emfile_at_once() {
    run with_deadline "$PROBE" accept-emfile
    echo "$output"
    [ "$status" -eq 0 ]
    [ "$output" = "$(printf '%s\n' 'queue: empty' 'accept: Too many open files')" ]
}

# spin-after-fourth-client: the misplaced brace with 8 descriptors: clients get 4 to 7, and right after the fourth, accept() fails over and over with nobody waiting
claim_spin_after_fourth_client() {
    command -v patch >/dev/null || skip "needs patch (Debian: apt-get install patch)"
    patch -s -o "$T/broken.c" "$ROOT/step3-fork/server.c" "$ROOT/step3-fork/misplaced-brace.patch"
    "${CC:-cc}" -std=c99 -o "$T/broken" "$T/broken.c"
    # Descriptors 0 to 2 and nothing else below 8; at most 64 MB of messages.
    start_bg server sh -c 'exec 3>&- 4>&- 5>&- 6>&- 7>&-; ulimit -n 8; ulimit -f 65536; exec "$0" 0' "$T/broken"
    SERVER_PID=$BG_PID
    wait_until server_announced
    PORT=$(announced_port "$T/server.out")
    local i
    for i in 1 2 3; do
        start_peer "c$i" waitfor "$T/never"
    done
    wait_until queue_is 0
    wait_until fds_are_exactly "0 1 2 3 4 5 6"
    [ ! -s "$T/server.err" ] || fail_because "expected no error with descriptor 7 free, got: $(excerpt_file "$T/server.err")"
    start_peer c4 waitfor "$T/never"
    # The fourth is accepted: nobody waits in the queue any more.
    wait_until queue_is 0
    wait_until errors_at_least 3 ||
        fail_because "expected 'ERROR on accept: Too many open files' again and again, got: $(excerpt_file "$T/server.err")"
}

# fds_are_exactly "N...": the server's open descriptors below 8 are these.
fds_are_exactly() {
    [ "$(ls "/proc/$SERVER_PID/fd" | sort -n | awk '$1 < 8' | tr '\n' ' ' | sed 's/ $//')" = "$1" ]
}
errors_at_least() { [ "$(grep -c '^ERROR on accept: Too many open files$' "$T/server.err")" -ge "$1" ]; }

# ================================================================ writes after the other side has gone

# calls_after "PEER ACTIONS" default|ignore CALL...: tests/peer, as the server,
# does PEER ACTIONS (reset, or shutdown then reset) as soon as a client
# connects; once the client's kernel has seen them all, tests/probe makes the
# CALLs on its side, with SIGPIPE at its default or ignored. Sets status
# (128 + 13 when SIGPIPE killed the probe) and output.
calls_after() {
    local actions=$1 disposition=$2 pid try
    shift 2
    for try in 1 2; do
        # start_bg empties these files only once the new process runs.
        rm -f "$T/peer_server.out" "$T/client.out"
        # shellcheck disable=SC2086 # the actions are words
        start_peer_server $actions
        PEER_SERVER_PID=$BG_PID
        start_bg client "$PROBE" calls 127.0.0.1 "$PORT" "$T/go" "$disposition" "$@"
        pid=$BG_PID
        # The client's socket is gone from ss once the reset has arrived.
        if wait_until client_connected "$pid" && wait_until reset_reached_us; then
            break
        fi
        # Another experiment connected to a port that it had used before,
        # which the kernel had just given to our peer server: the peer served
        # that connection and ended. Once more, on a new port.
        [ "$try" -eq 1 ] && exited "$PEER_SERVER_PID" || return 1
        echo "# the peer server on port $PORT ended without resetting our connection (another client came first): once more" >&2
        kill "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    touch "$T/go"
    wait_until exited "$pid"
    status=0
    wait "$pid" || status=$?
    output=$(grep -v '^connected$' "$T/client.out" || true)
    rm -f "$T/go"
}

# client_connected PID: tests/probe (PID) has connected; NEVER once it has
# ended without (refused).
client_connected() {
    grep -qx connected "$T/client.out" && return 0
    exited "$1" && ! grep -qx connected "$T/client.out" && return "$NEVER"
    return 1
}

# reset_reached_us: no live socket of ours to $PORT is left (only live states
# count: a TIME-WAIT left by an earlier connection to another server that had
# this port is not ours); NEVER once the peer server has ended and ours is
# still established (it served someone else).
reset_reached_us() {
    [ -z "$(ss -Htan state established state close-wait "dport = :$PORT")" ] && return 0
    if exited "$PEER_SERVER_PID" && [ -n "$(ss -Htan state established "dport = :$PORT")" ]; then
        return "$NEVER"
    fi
    return 1
}

# sigpipe-on-epipe: a write that fails with EPIPE raises SIGPIPE, which kills the process by default; ignored, the write returns EPIPE
claim_sigpipe_on_epipe() {
    calls_after "shutdown reset" default write
    expect_same "the status of a process killed by SIGPIPE" 141 "$status"
    expect_same "what it printed" "" "$output"
    calls_after "shutdown reset" ignore write
    expect_same "the write" "write: Broken pipe" "$output"
}

# reset-first-econnreset: after a reset with no FIN before it, the first write fails with ECONNRESET and no signal; the next one gets EPIPE and SIGPIPE
claim_reset_first_econnreset() {
    calls_after reset default write write
    expect_same "the first write" "write: Connection reset by peer" "$output"
    expect_same "the status once the second write raised SIGPIPE" 141 "$status"
}

# fin-then-reset-epipe: after a FIN and then a reset, the first write gets EPIPE and SIGPIPE, and read() returns 0
claim_fin_then_reset_epipe() {
    calls_after "shutdown reset" ignore write read
    expect_lines "the calls" "$(printf '%s\n' 'write: Broken pipe' 'read: 0')" "$output"
}

# shutdown-after-reset: shutdown() after a reset fails with ENOTCONN
claim_shutdown_after_reset() {
    calls_after reset ignore shutdown
    expect_same "the shutdown" "shutdown: Transport endpoint is not connected" "$output"
}

# ================================================================ descriptors and processes

# close-keeps-shared: closing one of two descriptors of a connection sends nothing; the connection lives on
claim_close_keeps_shared() {
    start_bg server "$PROBE" shared "$T/go" "$T/end"
    wait_until grep -q '^Listening on port' "$T/server.out"
    PORT=$(announced_port "$T/server.out")
    start_peer reader read
    wait_until grep -qx 'closed one of two descriptors' "$T/server.out"
    expect_same "the server's side of the connection" ESTAB \
        "$(ss -Htan "sport = :$PORT" | awk '$1 != "LISTEN" { print $1 }')"
}

# shutdown-acts-on-connection: shutdown() ends the connection's direction whoever else holds a descriptor for it
claim_shutdown_acts_on_connection() {
    start_bg server "$PROBE" shared "$T/go" "$T/end"
    local server=$BG_PID
    wait_until grep -q '^Listening on port' "$T/server.out"
    PORT=$(announced_port "$T/server.out")
    start_peer reader read
    touch "$T/go"
    # The reader saw end of file and finished, while the server still holds
    # two descriptors for the connection.
    wait_until exited "$BG_PID"
    grep -qx 'shutdown: 0' "$T/server.out"
    alive "$server"
    touch "$T/end"
}

# exit-flushes-copies: exit() in a forked child writes out the copy of the parent's stdio buffer; _exit() does not
claim_exit_flushes_copies() {
    "$PROBE" fork-exit exit >"$T/exit.out"
    "$PROBE" fork-exit _exit >"$T/_exit.out"
    expect_same "lines after exit()" 2 "$(grep -c . "$T/exit.out")"
    expect_same "lines after _exit()" 1 "$(grep -c . "$T/_exit.out")"
}

# stdout-fully-buffered: stdout into a file waits for a full buffer, one block of the file system (4096 bytes on most)
claim_stdout_fully_buffered() {
    local block
    "$PROBE" stdio >"$T/out" 2>"$T/err"
    block=$(stat -c %o "$T/out" 2>/dev/null || stat -f %k "$T/out")
    expect_same "what stdio held back" "held back: $block bytes" "$(cat "$T/err")"
}

# ================================================================ signals and children

# signals-not-queued: three children that end while SIGCHLD is pending make one SIGCHLD
claim_signals_not_queued() {
    run with_deadline "$PROBE" sigchld-merge
    expect_same "the count" "children ended: 3, the handler ran: 1 time(s)" "$output"
}

# waitpid-wnohang: waitpid(WNOHANG) returns 0 and leaves errno alone while children run, and fails with ECHILD when none is left
claim_waitpid_wnohang() {
    run with_deadline "$PROBE" waitpid-errno
    expect_lines "what waitpid did" "$(printf '%s\n' \
        'waitpid with a child running: 0, errno untouched' \
        'waitpid for that child once it ends: its PID' \
        'waitpid with no child left: -1, errno No child processes')" "$output"
}

# in_call PID NAME: PID sleeps in the kernel function NAME (Linux's wchan).
in_call() { [ "$(cat "/proc/$1/wchan" 2>/dev/null)" = "$2" ]; }

# accept_while_child_ends restart|norestart: tests/probe waits in accept()
# with a SIGCHLD handler; a child of it ends. With restart, a client then
# connects. Sets output.
accept_while_child_ends() {
    [ -r "/proc/self/wchan" ] || skip "needs /proc/PID/wchan (Linux) to see that the probe waits in accept()"
    start_bg probe "$PROBE" accept-eintr "$1" "$T/go"
    local pid=$BG_PID
    wait_until grep -qx 'waiting in accept' "$T/probe.out"
    PORT=$(announced_port "$T/probe.out")
    wait_until in_call "$pid" inet_csk_accept ||
        fail_because "expected the probe asleep in accept(), got wchan $(cat "/proc/$pid/wchan" 2>&1)"
    touch "$T/go"
    if [ "$1" = restart ]; then
        wait_until children_are "$pid" 1 Z
        peer close >/dev/null
    fi
    wait_until exited "$pid"
    output=$(sed 1,2d "$T/probe.out")
}

# accept-eintr: without SA_RESTART, a signal handler that runs while accept() waits makes it fail with EINTR
claim_accept_eintr() {
    accept_while_child_ends norestart
    expect_lines "accept" "$(printf '%s\n' 'accept: Interrupted system call' 'the handler ran: 1 time(s)')" "$output"
}

# sa-restart-accept: with SA_RESTART, accept() goes on waiting after the handler ran
claim_sa_restart_accept() {
    accept_while_child_ends restart
    expect_lines "accept" "$(printf '%s\n' 'accept: a connection' 'the handler ran: 1 time(s)')" "$output"
}

# nocldwait: tests/probe with SIGCHLD ignored: one child ends, one waits for
# $T/go, which is made once the probe waits in waitpid(-1). Sets lines.
nocldwait() {
    [ -r "/proc/self/wchan" ] || skip "needs /proc/PID/wchan (Linux) to see that the probe waits in waitpid()"
    start_bg probe "$PROBE" nocldwait "$T/go"
    local pid=$BG_PID
    wait_until grep -qx 'waiting in waitpid(-1)' "$T/probe.out"
    wait_until in_call "$pid" do_wait
    touch "$T/go"
    wait_until exited "$pid"
    lines=()
    while IFS= read -r line; do lines+=("$line"); done <"$T/probe.out"
}

# nocldwait-one-child: with SIGCHLD ignored, no zombie is kept: Linux's waitpid() for one child fails with ECHILD once it has ended, while another child runs
claim_nocldwait_one_child() {
    [ "$(uname -s)" = Linux ] || skip "POSIX lets waitpid() wait for every child here; this is Linux's behaviour"
    nocldwait
    expect_same "waitpid for the child that ended" \
        "waitpid(the child that ended): No child processes, the other child still running" "${lines[0]}"
}

# nocldwait-all-children: with SIGCHLD ignored, waitpid(-1) waits until every child has ended, then fails with ECHILD
claim_nocldwait_all_children() {
    nocldwait
    expect_same "waitpid(-1)" "waitpid(-1): No child processes, the other child gone" "${lines[2]}"
}

# nocldwait-flag: on Linux, SA_NOCLDWAIT keeps no zombie and still calls the handler
claim_nocldwait_flag() {
    run with_deadline "$PROBE" nocldwait-flag
    expect_lines "the handler and the child" "$(printf '%s\n' 'the handler ran' 'waitpid(the child): No child processes')" "$output"
}

# system-sigchld-ignored: with SIGCHLD ignored, system() loses the command's status and returns -1 with ECHILD
claim_system_sigchld_ignored() {
    run with_deadline "$PROBE" system
    expect_same "system" "system: -1, errno No child processes" "$output"
}

# sigchld-ignored-exec: on Linux, an ignored SIGCHLD stays ignored in a program started with exec
claim_sigchld_ignored_exec() {
    run with_deadline "$PROBE" exec-ignored
    expect_same "after exec" "after exec, SIGCHLD is ignored" "$output"
}

# ================================================================ other designs
# tests/designs builds the part of each design that a claim is about.

# tasks_of PID: the entries of /proc/PID/task, one per thread.
tasks_of() { ls "/proc/$1/task" | wc -l | tr -d ' '; }

# thread-is-task: each thread of a process is an entry of /proc/PID/task; ps shows one process, ps -L a line per thread
claim_thread_is_task() {
    [ -d /proc/self/task ] || skip "needs /proc/PID/task (Linux)"
    start_bg designs "$DESIGNS" threads 5
    local pid=$BG_PID
    wait_until grep -qx '5 threads started' "$T/designs.out"
    expect_same "entries in /proc/$pid/task" 6 "$(tasks_of "$pid")"
    expect_same "processes of the program that ps lists" 1 "$(ps -A -o args= | grep -c "^$DESIGNS threads 5\$")"
    expect_same "children of the program" 0 "$(count_children "$pid")"
    expect_same "lines ps -L prints for it" 6 "$(ps -L -o lwp= -p "$pid" | wc -l | tr -d ' ')"
}

# thread-crash-ends-process: a thread that takes SIGSEGV ends the whole process, every other thread with it
claim_thread_crash_ends_process() {
    local rc=0
    with_deadline "$DESIGNS" thread-crash >"$T/crash.out" 2>"$T/crash.err" || rc=$?
    expect_same "the exit status (128 + SIGSEGV)" "$((128 + $(kill -l SEGV)))" "$rc"
    expect_same "what the process printed" 'a thread takes SIGSEGV' "$(cat "$T/crash.out")"
}

# pool_children: the PIDs of the pool's children, from the lines "child PID".
pool_children() { sed -n 's/^child \([0-9][0-9]*\)$/\1/p' "$T/pool.out"; }

# all_in_call NAME PID...: every PID sleeps in a kernel function whose name
# starts with NAME (wchan; the compiler may add a suffix such as .constprop.0).
all_in_call() {
    local name=$1 pid
    shift
    for pid in "$@"; do
        case $(cat "/proc/$pid/wchan" 2>/dev/null) in "$name"*) ;; *) return 1 ;; esac
    done
}

# switches PID: how often PID has gone to sleep (voluntary context switches):
# a sleeper that is woken and sleeps again counts one more.
switches() { awk '$1 == "voluntary_ctxt_switches:" { print $2 }' "/proc/$1/status"; }

children_announced() { [ "$(grep -c '^child ' "$T/pool.out")" -eq "$1" ]; }

# start_pool accept|poll N: tests/designs' pool of N children, every one of
# them asleep in accept() (or poll()). Sets PORT and CHILDREN.
start_pool() {
    [ -r /proc/self/wchan ] || skip "needs /proc/PID/wchan (Linux) to see where each child sleeps"
    start_bg pool "$DESIGNS" "pool-$1" "$2"
    wait_until children_announced "$2"
    PORT=$(announced_port "$T/pool.out")
    CHILDREN=$(pool_children)
    # shellcheck disable=SC2086 # one PID a word
    case $1 in
        accept) wait_until all_in_call inet_csk_accept $CHILDREN ;;
        poll) wait_until all_in_call poll_schedule_timeout $CHILDREN ;;
    esac
}

accepted_once() { [ "$(grep -c ' accepted$' "$T/pool.out")" -eq 1 ]; }

# accept-wakes-one: a connection wakes one of the processes asleep in accept() on a shared listening socket; the others sleep on
claim_accept_wakes_one() {
    start_pool accept 4
    local pid before=() after=() winner
    for pid in $CHILDREN; do before+=("$pid $(switches "$pid")"); done
    peer close >/dev/null
    wait_until accepted_once
    winner=$(sed -n 's/^\([0-9][0-9]*\) accepted$/\1/p' "$T/pool.out")
    # The winner goes back to accept(); then every child sleeps again.
    # shellcheck disable=SC2086 # one PID a word
    wait_until all_in_call inet_csk_accept $CHILDREN
    for pid in $CHILDREN; do after+=("$pid $(switches "$pid")"); done
    # Only the winner has slept again; had the others been woken, each
    # would have gone back to sleep too, and counted one more.
    expect_same "the children that slept again (the one that accepted)" "$winner" \
        "$(paste -d' ' <(printf '%s\n' "${before[@]}") <(printf '%s\n' "${after[@]}" | cut -d' ' -f2) |
           awk '$2 != $3 { print $1 }' | tr '\n' ' ' | sed 's/ $//')"
    expect_same "connections accepted" 1 "$(grep -c ' accepted$' "$T/pool.out")"
}

woke_all() { [ "$(grep -c ' woke$' "$T/pool.out")" -eq "$1" ]; }

# poll-wakes-all: one connection wakes every process asleep in poll() on the listening socket
claim_poll_wakes_all() {
    start_pool poll 4
    # Once woken, each child says so and ends, without accepting: had one
    # of them slept on, its line would never come.
    start_peer one waitfor "$T/never"
    wait_until woke_all 4
    expect_same "children woken by one connection" 4 "$(grep -c ' woke$' "$T/pool.out")"
}

# ================================================================ the shell

# dash-printf-hex: POSIX printf knows octal escapes only; dash prints \\xc3 as it stands
claim_dash_printf_hex() {
    command -v dash >/dev/null || skip "dash is not installed"
    expect_same "dash's printf" '\xc3' "$(dash -c "printf '\\xc3'")"
    expect_same "its octal escape" 'c3a9' "$(dash -c "printf '\\303\\251'" | od -An -tx1 | tr -d ' \n')"
}


# unused_uid: a user ID that no account has and no process runs as.
unused_uid() {
    local uid
    for uid in $(seq 70001 70999); do
        getent passwd "$uid" >/dev/null 2>&1 && continue
        ps -A -o uid= | awk -v u="$uid" '$1 == u { f = 1 } END { exit f }' || continue
        echo "$uid"
        return 0
    done
    return 1
}

# zombie-counts-nproc: a zombie counts against the user's limit on processes until it is collected
claim_zombie_counts_nproc() {
    [ "$(id -u)" -eq 0 ] ||
        skip "needs root, to run the probe as a user ID with no other process (RLIMIT_NPROC counts all of a user's processes)"
    command -v setpriv >/dev/null || skip "needs setpriv (util-linux) to run the probe as another user"
    local uid dir out
    uid=$(unused_uid) || skip "found no unused user ID between 70001 and 70999"
    dir=$(mktemp -d "${TMPDIR:-/tmp}/claims.XXXXXX")
    chmod 755 "$dir"
    cp "$PROBE" "$dir/probe"
    out=$(with_deadline setpriv --reuid="$uid" --regid="$uid" --clear-groups -- "$dir/probe" zombie-nproc 2>&1) || true
    rm -rf "$dir"
    expect_lines "the two forks" "$(printf '%s\n' \
        'fork beside a zombie: Resource temporarily unavailable' \
        'fork once it is collected: a child')" "$out"
}
