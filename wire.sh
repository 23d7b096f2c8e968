#!/usr/bin/env bash
# wire.sh - the TCP segments of a lesson, one line each, as they cross the
# loopback interface between our programs.
#
# Each scene runs a server of this repository and a client against each other
# on a private loopback (a network namespace of its own: nothing else talks
# there), captures every segment with tcpdump, and prints each in one line:
# who sent it, its flags, its sequence and acknowledgement numbers counted
# from the start of each side's stream, how many bytes it carries, and which
# call made it leave, where the scene can say. Then it says who ended up in
# TIME-WAIT, and what the programs printed.
#
#   client-first   our client and step N: the client's FIN leaves first
#   server-first   step N and a client that waits for the server's FIN before
#                  it closes: the server's FIN leaves first
#   reset          a server that closes while the client's line is unread:
#                  the kernel sends a reset instead of a FIN (why hang_up exists)
#   refused        our client and a port where nobody listens
#
# Run it:  make wire                 every scene, against step 1
#          make wire SCENE=reset     one scene (./wire.sh reset does the same)
#          make wire STEP=4          the scenes that use a step use step 4
#          ./wire.sh --list          the scenes and what each shows
#
# The output is the same on every run: the numbers are relative, ports are
# named (client, server), and window sizes, options and times are left out.
# Two things make that so. Each scene waits for a condition (a socket state,
# a file) before its next move, never for a time. And the namespace's
# loopback route has delayed acknowledgements turned off (ip-route(8),
# "quickack"), so each side acknowledges a segment as soon as it arrives.
# Without that, Linux may hold an ACK back for up to 200 ms in the hope of
# sending it together with data or a FIN, and a run would show one segment
# fewer or more depending on timing.
#
# Capturing needs privileges. On Linux an ordinary user gets them inside a
# user and network namespace of their own (unshare(1) from util-linux), and
# root can use a network namespace directly; tcpdump and ip (iproute2) must
# be installed. Where none of that works (macOS, a kernel without user
# namespaces), wire.sh says why in one line and exits with status 77.
# The standard tool on a real interface is tcpdump itself: see tutorial.md,
# "Watching the segments".
#
# Written for bash 3.2 and later. Every process a scene starts runs in a
# process group of its own, and every group is killed when the scene ends;
# they all live in a PID namespace of wire.sh's own too, so that they end
# with it even when it is killed outright.

set -u
case $0 in */*) HERE=${0%/*} ;; *) HERE=. ;; esac
ROOT=$(cd "$HERE" && pwd) || exit 1
SCENES="client-first server-first reset refused"
STEP=${STEP:-1}
# Seconds any one condition may take (times TIME_SCALE, as in the tests).
DEADLINE=${DEADLINE:-$((10 * ${TIME_SCALE:-1}))}
SKIPPED=77
TCPDUMP=${TCPDUMP:-tcpdump}     # the capturing program (the tests point it elsewhere)

describe() {
    case $1 in
        client-first) echo "our client and step $STEP: the client's FIN leaves first" ;;
        server-first) echo "step $STEP and a client that reads the reply and the server's FIN before it closes" ;;
        reset) echo "a server that closes while the client's line is still unread" ;;
        refused) echo "our client, and a port where nobody listens" ;;
    esac
}

usage() {
    echo "usage: $0 [--list] [SCENE...]   (STEP=1..4 picks the step server; scenes: $SCENES)" >&2
    exit 2
}

# unable REASON: capturing is not possible here.
unable() {
    echo "wire: cannot capture here: $*" >&2
    exit "$SKIPPED"
}

step_dir() {
    case $STEP in
        1) echo step1-single ;; 2) echo step2-loop ;; 3) echo step3-fork ;; 4) echo step4-reap ;;
        *) echo "wire: STEP must be 1, 2, 3 or 4, not '$STEP'" >&2; exit 2 ;;
    esac
}

# ================================================================ outside the namespace

if [ "${1:-}" != --inside ]; then
    [ "${1:-}" = --list ] && { for s in $SCENES; do printf '%-13s %s\n' "$s" "$(describe "$s")"; done; exit 0; }
    for s in "$@"; do
        case " $SCENES " in *" $s "*) ;; *) echo "wire: no scene '$s'" >&2; usage ;; esac
    done
    dir=$(step_dir) || exit 2
    for prog in "$dir/server" client/client tests/peer; do
        [ -x "$ROOT/$prog" ] || { echo "wire: $prog is missing: run make first (or make wire)" >&2; exit 2; }
    done
    [ "$(uname -s)" = Linux ] ||
        unable "it needs Linux network namespaces (on macOS: sudo tcpdump -i lo0 -n 'tcp port PORT')"
    PATH=$PATH:/usr/sbin:/sbin
    command -v "$TCPDUMP" >/dev/null 2>&1 ||
        unable "tcpdump is not installed (Debian: apt-get install tcpdump)"
    command -v ip >/dev/null 2>&1 || unable "ip is not installed (Debian: apt-get install iproute2)"
    command -v ss >/dev/null 2>&1 || unable "ss is not installed (Debian: apt-get install iproute2)"
    command -v unshare >/dev/null 2>&1 || unable "unshare is not installed (Debian: apt-get install util-linux)"
    export PATH STEP DEADLINE TCPDUMP
    # A network namespace: a loopback of our own. A PID namespace too, with
    # a /proc of its own, so that whatever a scene leaves running ends with
    # us, even if we are killed (--kill-child). An ordinary user needs a user
    # namespace for that, in which we are uid 1, not 0, with the capabilities
    # kept: tcpdump, started by uid 0, would try to switch to a user of its
    # own, which a user namespace does not allow.
    ns=(--net --pid --fork --kill-child --mount-proc)
    userns=(unshare --user --map-user=1 --map-group=1 --keep-caps "${ns[@]}")
    if "${userns[@]}" true 2>/dev/null; then
        exec "${userns[@]}" "$0" --inside "$@"
    elif [ "$(id -u)" -eq 0 ] && unshare "${ns[@]}" true 2>/dev/null; then
        exec unshare "${ns[@]}" "$0" --inside "$@"
    fi
    unable "this kernel lets us make neither a user namespace nor (as root) a network namespace"
fi

# ================================================================ inside it

shift
[ $# -gt 0 ] || set -- $SCENES
STEPDIR=$(step_dir) || exit 2
CLIENT=$ROOT/client/client
PEER=$ROOT/tests/peer
MARKER_PORT=9                   # nobody listens here: see end_capture

WORK=$(mktemp -d "${TMPDIR:-/tmp}/wire.XXXXXX") || exit 1
GROUPS_STARTED=()
cleanup() {
    local g
    trap - EXIT INT TERM
    for g in ${GROUPS_STARTED[@]+"${GROUPS_STARTED[@]}"}; do
        kill -KILL -- "-$g" 2>/dev/null
    done
    wait 2>/dev/null
    [ -z "${WIRE_KEEP:-}" ] || cp -r "$WORK" "$WIRE_KEEP"
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'cleanup; exit 130' INT TERM

die() {
    local f
    echo "wire: $*" >&2
    for f in "$WORK"/*.out "$WORK"/*.err; do
        [ -s "$f" ] && { echo "wire: ${f##*/}:" >&2; sed 's/^/    /' "$f" | tail -n 5 >&2; }
    done
    exit 1
}

# start NAME CMD...: CMD in the background, in a process group of its own,
# output in $WORK/NAME.out and .err. Sets LAST.
start() {
    local name=$1
    shift
    # Emptied here, not by the redirections below, which run in the new
    # process, maybe after our next look at the files.
    : >"$WORK/$name.out"
    : >"$WORK/$name.err"
    set -m
    "$@" >>"$WORK/$name.out" 2>>"$WORK/$name.err" </dev/null &
    LAST=$!
    set +m
    GROUPS_STARTED+=("$LAST")
}

# wait_until CMD...: CMD every 10 ms until it succeeds, for $DEADLINE seconds.
wait_until() {
    local end=$((SECONDS + DEADLINE))
    until "$@"; do
        [ "$SECONDS" -lt "$end" ] || return 1
        sleep 0.01
    done
}

running() { kill -0 "$1" 2>/dev/null && ! ps -o stat= -p "$1" | grep -q '^Z'; }
stopped() { ps -o stat= -p "$1" | grep -q '^T'; }
ended() { ! running "$1"; }
said() { grep -q "$1" "$WORK/$2" 2>/dev/null; }

# state_is SIDE STATE: the socket of the scene's connection on SIDE (server:
# its local port is the server's; client: its remote port is) is in STATE.
state_is() {
    local filter="sport = :$PORT"
    [ "$1" = client ] && filter="dport = :$PORT"
    ss -Htan state "$2" "$filter" | grep -q .
}

# settled: no segment is on its way or owed: no connection is half-way through
# opening or closing, and none has data that the other side has not
# acknowledged (Send-Q; on a listening socket that column is the backlog).
settled() {
    ss -Htan | awk '$1 ~ /^(SYN-SENT|SYN-RECV|FIN-WAIT-1|CLOSING|LAST-ACK)$/ { busy = 1 }
                    $1 != "LISTEN" && $3 != 0 { busy = 1 } END { exit busy }'
}

start_server() {
    start server "$ROOT/$STEPDIR/server" 0
    SERVER=$LAST
    wait_until said '^Listening on port' server.out || die "$STEPDIR/server did not announce its port"
    PORT=$(sed -n 's/^Listening on port \([0-9]*\)$/\1/p' "$WORK/server.out")
}

# ---------------------------------------------------------------- capturing

begin_capture() {
    start tcpdump "$TCPDUMP" -i lo -n -S -t -l --immediate-mode tcp
    CAPTURE=$LAST
    wait_until said '^listening on' tcpdump.err || die "tcpdump did not start"
}

# end_capture: once the scene has settled, one last connection attempt to a
# port where nobody listens: its SYN and the reset it gets back are captured
# after everything the scene sent, so when the reset shows in tcpdump's
# output, the scene's segments are all there.
end_capture() {
    wait_until settled || die "the connections did not settle: $(ss -Htan | tr -s ' ' | head -n 3)"
    "$PEER" 127.0.0.1 "$MARKER_PORT" >/dev/null 2>&1
    wait_until said "^IP 127.0.0.1.$MARKER_PORT > " tcpdump.out || die "tcpdump did not see the last segment"
    kill -TERM "$CAPTURE" 2>/dev/null
    wait "$CAPTURE" 2>/dev/null
}

# segments: tcpdump's lines, up to the marker, one readable line each.
# tcpdump gives no sequence number for a segment without data: it is the
# sender's next one, which we keep count of (SYN and FIN take one each).
segments() {
    awk -v server="127.0.0.1.$PORT" -v marker="127.0.0.1.$MARKER_PORT:" \
        -v labels="$LABELS" '
        BEGIN { n = split(labels, l, "|"); for (i = 1; i <= n; i++) { split(l[i], kv, "="); label[kv[1]] = kv[2] } }
        $1 != "IP" { next }
        $4 == marker { exit }
        {
            side = ($2 == server) ? "server" : "client"
            other = (side == "server") ? "client" : "server"
            match($0, /Flags \[[^]]*\]/); f = substr($0, RSTART + 7, RLENGTH - 8)
            seq = ""; ack = ""; len = 0
            if (match($0, /seq [0-9]+/)) seq = substr($0, RSTART + 4, RLENGTH - 4) + 0
            if (match($0, /ack [0-9]+/)) ack = substr($0, RSTART + 4, RLENGTH - 4) + 0
            if (match($0, /length [0-9]+/)) len = substr($0, RSTART + 7, RLENGTH - 7) + 0
            syn = index(f, "S") > 0; fin = index(f, "F") > 0; rst = index(f, "R") > 0
            if (syn) isn[side] = seq
            if (side in isn) {
                seq = (seq == "") ? next_seq[side] : (seq - isn[side] + 4294967296) % 4294967296
                next_seq[side] = seq + len + syn + fin
            }
            if (ack != "" && (other in isn)) ack = (ack - isn[other] + 4294967296) % 4294967296
            flags = (syn ? " SYN" : "") (fin ? " FIN" : "") (rst ? " RST" : "") \
                    (index(f, "P") ? " PSH" : "") (index(f, ".") ? " ACK" : "")
            kind = syn ? (ack != "" ? "SYNACK" : "SYN") : rst ? "RST" : fin ? "FIN" \
                 : len > 0 ? "DATA" : (ack == 1 && !seen_data[other]) ? "HANDSHAKE" : "ACK"
            if (len > 0) seen_data[side] = 1
            why = (side ":" kind) in label ? label[side ":" kind] : label[kind]
            printf "%2d  %-6s > %-6s  %-8s  seq %-3s %-8s len %-3d %s\n", ++count, side, other,
                   substr(flags, 2), seq, ack == "" ? "" : "ack " ack, len, why
        }' "$WORK/tcpdump.out"
}

# time_wait: which side of the scene's connection the kernel keeps in
# TIME-WAIT (the side whose local port is the server's is the server).
time_wait() {
    ss -Htan state time-wait "( sport = :$PORT or dport = :$PORT )" | awk -v port="$PORT" '
        { local = $3; sub(/.*:/, "", local); who[local == port ? "server" : "client"] = 1 }
        END { w = ""; if ("client" in who) w = "the client"
              if ("server" in who) w = (w == "" ? "" : w " and ") "the server"
              print "in TIME-WAIT: " (w == "" ? "nobody" : w) }'
}

# printed NAME WHO: what a program wrote, each line marked with WHO.
printed() {
    awk -v who="$2" '{ print who " printed: " $0 }' "$WORK/$1.out" "$WORK/$1.err"
}

# ---------------------------------------------------------------- the scenes
# Each one sets PORT (the server's port) and LABELS (which call sent which
# kind of segment: SIDE:KIND=TEXT, separated by |; KIND is one of SYN SYNACK
# HANDSHAKE (the ACK that ends it) ACK DATA FIN RST).

KERNEL="SYNACK=(kernel, for the listening socket)|HANDSHAKE=(kernel), and connect() returns|ACK=(kernel)"

# The client's line and FIN must both arrive before the server reads: the
# server is stopped (SIGSTOP) until they have, so it cannot answer first.
scene_client_first() {
    LABELS="client:SYN=connect()|client:DATA=write()|client:FIN=shutdown(SHUT_WR)|server:DATA=write() in write_all()|server:FIN=shutdown() in hang_up()|$KERNEL"
    start_server
    kill -STOP "$SERVER"
    # kill returns before the server has stopped, and until it really has, it
    # could still accept() the client.
    wait_until stopped "$SERVER" || die "the server did not stop"
    printf 'hi\n' >"$WORK/line"
    start client sh -c 'exec "$1" 127.0.0.1 "$2" <"$3"' sh "$CLIENT" "$PORT" "$WORK/line"
    wait_until state_is server close-wait || die "the client's FIN did not arrive"
    wait_until state_is client fin-wait-2 || die "the client's FIN was not acknowledged"
    kill -CONT "$SERVER"
    wait_until ended "$LAST" || die "the client did not finish"
    printed client client
}

scene_server_first() {
    LABELS="client:SYN=connect()|client:DATA=write()|client:FIN=close()|server:DATA=write() in write_all()|server:FIN=shutdown() in hang_up()|$KERNEL"
    start_server
    start peer "$PEER" 127.0.0.1 "$PORT" send $'hi\n' read close
    wait_until ended "$LAST" || die "the client did not finish"
    sed -n 's/^I got/client printed: I got/p' "$WORK/peer.out"
}

# tests/peer as the server: it never reads; once the client's line and FIN
# are in, it sends the reply and closes.
scene_reset() {
    LABELS="client:SYN=connect()|client:DATA=write()|client:FIN=shutdown(SHUT_WR)|server:DATA=write()|server:RST=close(), with the line unread|$KERNEL"
    start server "$PEER" -l 127.0.0.1 waitfor "$WORK/go" send "I got your message" close
    SERVER=$LAST
    wait_until said '^Listening on port' server.out || die "the server did not announce its port"
    PORT=$(sed -n 's/^Listening on port \([0-9]*\)$/\1/p' "$WORK/server.out")
    printf 'hi\n' >"$WORK/line"
    start client sh -c 'exec "$1" 127.0.0.1 "$2" <"$3"' sh "$CLIENT" "$PORT" "$WORK/line"
    wait_until state_is server close-wait || die "the client's FIN did not arrive"
    wait_until state_is client fin-wait-2 || die "the client's FIN was not acknowledged"
    touch "$WORK/go"
    wait_until ended "$LAST" || die "the client did not finish"
    printed client client
}

scene_refused() {
    LABELS="client:SYN=connect()|server:RST=(kernel: nobody listens on this port)"
    PORT=7
    printf 'hi\n' >"$WORK/line"
    start client sh -c 'exec "$1" 127.0.0.1 "$2" <"$3"' sh "$CLIENT" "$PORT" "$WORK/line"
    wait_until ended "$LAST" || die "the client did not finish"
    printed client client
}

# ---------------------------------------------------------------- running them

ip link set lo up || die "cannot bring up the loopback interface"
for net in 127.0.0.1 127.0.0.0/8; do
    ip route change local "$net" dev lo table local proto kernel scope host src 127.0.0.1 quickack 1 ||
        die "cannot turn off delayed acknowledgements on the loopback route"
done

first=1
for scene in "$@"; do
    [ "$first" -eq 1 ] || echo
    first=0
    echo "== $scene: $(describe "$scene")"
    begin_capture
    "scene_${scene//-/_}" >"$WORK/notes"
    [ "$scene" = refused ] || [ -z "${SERVER:-}" ] || ! running "$SERVER" || {
        wait_until settled
        kill -TERM -- "-$SERVER" 2>/dev/null
        wait "$SERVER" 2>/dev/null
    }
    end_capture
    segments
    time_wait
    cat "$WORK/notes"
    SERVER=
done
