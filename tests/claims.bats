#!/usr/bin/env bats
# tests/claims.bats - what tutorial.md, and the answers in exercises/TEACHING.md,
# say about TCP, the kernel and the C library, reproduced on this machine.
#
# A sentence that a test here reproduces is marked in the text with
# <!-- claim: NAME -->, and the test is named "claim NAME: ..." (the last
# test checks the pairs). A claim that no test can reproduce is cited where
# it is made instead (man page and section, RFC and section, kernel source
# file and function). Where Linux and other systems differ, these tests
# cover Linux; the text says what the others do.
#
# The segments themselves come from ./wire.sh, which captures them with
# tcpdump on a private loopback; its runs start once, in parallel, in
# setup_file. Where nothing can be captured (no tcpdump, no namespaces), the
# tests that need a capture are skipped with wire.sh's reason.

load helper
load claims

setup_file() {
    harness_setup_file
    wire_start_all
    claims_start_all
}

teardown_file() {
    wire_stop_all
    claims_stop_all
}

# ================================================================ the segments

@test "claim handshake: opening takes three segments: SYN, SYN-ACK, ACK, and then connect() returns" {
    local scene
    for scene in client-first server-first; do
        wire_output "$scene"
        expect_lines "the first three segments of $scene" \
            "$(printf '%s\n' 'client > server SYN seq 0' 'server > client SYN ACK seq 0 ack 1' 'client > server ACK seq 1 ack 1')" \
            "$(segments_of | head -n 3)"
        printf '%s\n' "$WIRE" | grep -q '^ 3  client > server .*connect() returns$'
    done
}

@test "claim close-server-first: when the server closes first: its FIN, the ACK, the client's FIN, the ACK" {
    wire_output server-first
    expect_lines "the last four segments" \
        "$(printf '%s\n' 'server FIN ACK' 'client ACK' 'client FIN ACK' 'server ACK')" \
        "$(flags_of | tail -n 4)"
}

@test "claim close-client-first: when the client closes first, the ACK of its FIN comes at once, and the server's FIN and its ACK come after the reply" {
    wire_output client-first
    expect_lines "the segments after the client's line" \
        "$(printf '%s\n' 'client FIN ACK' 'server ACK' 'server PSH ACK' 'client ACK' 'server FIN ACK' 'client ACK')" \
        "$(flags_of | tail -n 6)"
}

@test "claim half-close: after one side's FIN, data still flows the other way" {
    wire_output client-first
    # The client's FIN is segment 6; the server's reply, 18 bytes, follows.
    flags_of | sed -n 6p | grep -qx 'client FIN ACK'
    printf '%s\n' "$WIRE" | grep -q '^ 8  server > client  PSH ACK .* len 18 '
}

@test "claim first-fin-time-wait: the side whose FIN left first is the one left in TIME-WAIT" {
    wire_output client-first
    [ "$(flags_of | grep FIN | head -n 1 | cut -d' ' -f1)" = client ]
    printf '%s\n' "$WIRE" | grep -qx 'in TIME-WAIT: the client'
    wire_output server-first
    [ "$(flags_of | grep FIN | head -n 1 | cut -d' ' -f1)" = server ]
    printf '%s\n' "$WIRE" | grep -qx 'in TIME-WAIT: the server'
}

@test "claim reset-on-unread-close: closing a socket whose input is unread sends a reset, not a FIN, and leaves no side in TIME-WAIT" {
    wire_output reset
    [ "$(flags_of | tail -n 1)" = "server RST ACK" ]
    ! flags_of | grep -q '^server FIN'
    printf '%s\n' "$WIRE" | grep -qx 'in TIME-WAIT: nobody'
}

@test "claim reply-readable-after-reset: on Linux a reply that arrived before the reset is still read; the next read fails with ECONNRESET" {
    wire_output reset
    expect_lines "what the client printed" \
        "$(printf '%s\n' 'client printed: I got your message' 'client printed: ERROR reading from socket: Connection reset by peer')" \
        "$(printf '%s\n' "$WIRE" | grep '^client printed')"
}

@test "claim refused: a SYN to a port where nobody listens gets a reset, and connect() fails with ECONNREFUSED" {
    wire_output refused
    expect_lines "the segments" "$(printf '%s\n' 'client SYN' 'server RST ACK')" "$(flags_of)"
    printf '%s\n' "$WIRE" | grep -qx 'client printed: ERROR connecting: Connection refused'
}

@test "claim same-segments-every-step: every step's server sends the same segments (the code that serves a connection is the same)" {
    local scene one four
    for scene in client-first server-first; do
        wire_output "$scene" 1
        one=$(printf '%s\n' "$WIRE" | sed 1d)
        wire_output "$scene" 4
        four=$(printf '%s\n' "$WIRE" | sed 1d)
        expect_lines "step 4's $scene to be step 1's" "$one" "$four"
    done
}

# The convention for tutorial.md: a ```text block whose first line is
# "$ make wire [STEP=N] SCENE=NAME" holds lines of that command's real output,
# in order, with a line "..." for lines left out.
@test "what tutorial.md shows of make wire is what wire.sh prints" {
    local dir="$T/blocks" block cmd scene step checked=0
    mkdir -p "$dir"
    awk -v dir="$dir" '/^```text$/ { getline first; if (first ~ /^\$ make wire /) { n++; out = dir "/" n; print first > out; inside = 1 }; next }
                       /^```$/ && inside { inside = 0; close(out); next }
                       inside { print > out }' "$ROOT/tutorial.md"
    for block in "$dir"/*; do
        [ -e "$block" ] || break
        cmd=$(head -n 1 "$block")
        scene=$(sed -n '1s/.* SCENE=\([a-z-]*\).*/\1/p' "$block")
        step=$(sed -n '1s/.* STEP=\([1-4]\).*/\1/p' "$block")
        [ -n "$scene" ] || fail_because "expected '$cmd' to name a SCENE"
        wire_output "$scene" "${step:-1}"
        printf '%s\n' "$WIRE" >"$T/real"
        awk -v real="$T/real" -v cmd="$cmd" '
            BEGIN { while ((getline line < real) > 0) r[++nr] = line }
            NR == 1 { next }
            /^\.\.\.$/ { piece++; next }
            { p[piece, ++np[piece]] = $0 }
            END { from = 1
                  for (k = 0; k <= piece; k++) {
                      hit = 0
                      for (i = from; i + np[k] - 1 <= nr && !hit; i++) {
                          ok = 1
                          for (j = 1; j <= np[k] && ok; j++) if (r[i + j - 1] != p[k, j]) ok = 0
                          if (ok) { hit = 1; from = i + np[k] }
                      }
                      if (!hit) { print "tutorial.md shows lines that " cmd " does not print (in this order):" > "/dev/stderr"
                                  for (j = 1; j <= np[k]; j++) print "    " p[k, j] > "/dev/stderr"
                                  exit 1 } } }' "$block"
        checked=$((checked + 1))
    done
    [ "$checked" -ge 3 ] || fail_because "expected at least 3 blocks of make wire output in tutorial.md, got $checked"
}

# The tcpdump lines tutorial.md explains were printed by tcpdump: each has
# the shape of a line tcpdump prints here (digits aside, and the time).
@test "claim tcpdump-line: the tcpdump lines tutorial.md explains have the form tcpdump prints" {
    local shapes lines line checked=0
    wire_output client-first
    shapes=$(sed 's/[0-9][0-9]*/N/g' "$WIRE_WORK/tcpdump.out")
    lines=$(awk '/^```text$/ { getline first; inside = (first ~ /^\$ sudo tcpdump /); next }
                 /^```$/ { inside = 0; next }
                 inside' "$ROOT/tutorial.md")
    [ -n "$lines" ] || fail_because "expected a block of tcpdump output in tutorial.md, after a line '\$ sudo tcpdump ...'"
    while IFS= read -r line; do
        line=$(printf '%s\n' "$line" | sed 's/^[0-9:.]* //; s/[0-9][0-9]*/N/g')
        grep -qxF -- "$line" <<<"$shapes" ||
            fail_because "expected a line of this form in tcpdump's output, got none: $line"
        checked=$((checked + 1))
    done <<<"$lines"
    [ "$checked" -ge 1 ]
}

# ================================================================ sockets and ports

@test "claim new-socket-per-connection: accept() gives a new socket for the connection; the listening socket stays as it was" {
    claim_result new-socket-per-connection
}

@test "claim server-port-shared: two connections to a server share its port; the kernel gave each client a port of its own" {
    claim_result server-port-shared
}

@test "claim ephemeral-port: on Linux a client's port comes from ip_local_port_range (32768 to 60999 by default)" {
    claim_result ephemeral-port
}

@test "claim port-zero: port 0 asks the kernel for any free port, and the server learns which with getsockname()" {
    claim_result port-zero
}

@test "claim bind-in-use: a second server on a port that one listens on gets 'Address already in use', SO_REUSEADDR or not" {
    claim_result bind-in-use
}

@test "claim low-port-needs-root: on Linux, ports below 1024 need the administrator" {
    claim_result low-port-needs-root
}

@test "claim stream-no-boundaries: a write of 10 bytes and one of 20 can reach the reader as one read of 30" {
    claim_result stream-no-boundaries
}

@test "claim kernel-completes-handshake: the kernel completes the handshake while the server's program does nothing, and queues the connection for accept()" {
    claim_result kernel-completes-handshake
}

@test "claim stopped-server-closes-first: a server stopped while a client is connected sends its FIN first" {
    claim_result stopped-server-closes-first
}

# ================================================================ TIME-WAIT and SO_REUSEADDR

@test "claim time-wait-60s: on Linux a connection stays in TIME-WAIT for 60 seconds at most" {
    claim_result time-wait-60s
}

@test "claim reuseaddr-both-sides: on Linux, a port with a connection in TIME-WAIT can be bound again only when the old and the new socket both set SO_REUSEADDR" {
    claim_result reuseaddr-both-sides
}

# ================================================================ the backlog

@test "claim backlog-in-send-q: ss shows the backlog in the Send-Q column of the listening line: the smaller of SOMAXCONN and net.core.somaxconn" {
    claim_result backlog-in-send-q
}

@test "claim somaxconn-glibc: SOMAXCONN is 4096 in glibc 2.36" {
    claim_result somaxconn-glibc
}

@test "claim somaxconn-default: a new network namespace starts with net.core.somaxconn 4096 (Linux 5.4 and later)" {
    claim_result somaxconn-default
}

@test "claim abort-on-overflow-off: by default (tcp_abort_on_overflow 0) Linux drops a SYN it has no room for instead of refusing it" {
    claim_result abort-on-overflow-off
}

@test "claim backlog-capped: Linux lowers a backlog above net.core.somaxconn to that number" {
    claim_result backlog-capped
}

@test "claim backlog-plus-one: with a backlog of 1, Linux queues two connections; the next client's SYN is dropped and it waits in SYN-SENT" {
    claim_result backlog-plus-one
}

@test "claim recv-q-listen-queue: on a listening socket, ss's Recv-Q counts the connections waiting for accept()" {
    claim_result recv-q-listen-queue
}

@test "claim ss-counts-fin: ss counts a FIN that is not read yet as one byte of Recv-Q" {
    claim_result ss-counts-fin
}

# ================================================================ accept

@test "claim accept-hands-over-reset: Linux's accept() hands over a connection reset while it was queued; the first read fails with ECONNRESET" {
    claim_result accept-hands-over-reset
}

@test "claim accept-emfile-at-once: with no descriptor left, accept() fails with EMFILE at once, even with no client waiting" {
    claim_result accept-emfile-at-once
}

@test "claim spin-after-fourth-client: the misplaced brace with 8 descriptors: clients get 4 to 7, and right after the fourth, accept() fails over and over with nobody waiting" {
    claim_result spin-after-fourth-client
}

# ================================================================ writes after the other side has gone

@test "claim sigpipe-on-epipe: a write that fails with EPIPE raises SIGPIPE, which kills the process by default; ignored, the write returns EPIPE" {
    claim_result sigpipe-on-epipe
}

@test "claim reset-first-econnreset: after a reset with no FIN before it, the first write fails with ECONNRESET and no signal; the next one gets EPIPE and SIGPIPE" {
    claim_result reset-first-econnreset
}

@test "claim fin-then-reset-epipe: after a FIN and then a reset, the first write gets EPIPE and SIGPIPE, and read() returns 0" {
    claim_result fin-then-reset-epipe
}

@test "claim shutdown-after-reset: shutdown() after a reset fails with ENOTCONN" {
    claim_result shutdown-after-reset
}

# ================================================================ descriptors and processes

@test "claim close-keeps-shared: closing one of two descriptors of a connection sends nothing; the connection lives on" {
    claim_result close-keeps-shared
}

@test "claim shutdown-acts-on-connection: shutdown() ends the connection's direction whoever else holds a descriptor for it" {
    claim_result shutdown-acts-on-connection
}

@test "claim exit-flushes-copies: exit() in a forked child writes out the copy of the parent's stdio buffer; _exit() does not" {
    claim_result exit-flushes-copies
}

@test "claim stdout-fully-buffered: stdout into a file waits for a full buffer, one block of the file system (4096 bytes on most)" {
    claim_result stdout-fully-buffered
}

# ================================================================ signals and children

@test "claim zombie-counts-nproc: a zombie counts against the user's limit on processes until it is collected" {
    claim_result zombie-counts-nproc
}

@test "claim signals-not-queued: three children that end while SIGCHLD is pending make one SIGCHLD" {
    claim_result signals-not-queued
}

@test "claim waitpid-wnohang: waitpid(WNOHANG) returns 0 and leaves errno alone while children run, and fails with ECHILD when none is left" {
    claim_result waitpid-wnohang
}

@test "claim accept-eintr: without SA_RESTART, a signal handler that runs while accept() waits makes it fail with EINTR" {
    claim_result accept-eintr
}

@test "claim sa-restart-accept: with SA_RESTART, accept() goes on waiting after the handler ran" {
    claim_result sa-restart-accept
}

@test "claim nocldwait-one-child: with SIGCHLD ignored, no zombie is kept: Linux's waitpid() for one child fails with ECHILD once it has ended, while another child runs" {
    claim_result nocldwait-one-child
}

@test "claim nocldwait-all-children: with SIGCHLD ignored, waitpid(-1) waits until every child has ended, then fails with ECHILD" {
    claim_result nocldwait-all-children
}

@test "claim nocldwait-flag: on Linux, SA_NOCLDWAIT keeps no zombie and still calls the handler" {
    claim_result nocldwait-flag
}

@test "claim system-sigchld-ignored: with SIGCHLD ignored, system() loses the command's status and returns -1 with ECHILD" {
    claim_result system-sigchld-ignored
}

@test "claim sigchld-ignored-exec: on Linux, an ignored SIGCHLD stays ignored in a program started with exec" {
    claim_result sigchld-ignored-exec
}

# ================================================================ other designs

@test "claim thread-is-task: each thread of a process is an entry of /proc/PID/task; ps shows one process, ps -L a line per thread" {
    claim_result thread-is-task
}

@test "claim thread-crash-ends-process: a thread that takes SIGSEGV ends the whole process, every other thread with it" {
    claim_result thread-crash-ends-process
}

@test "claim accept-wakes-one: a connection wakes one of the processes asleep in accept() on a shared listening socket; the others sleep on" {
    claim_result accept-wakes-one
}

@test "claim poll-wakes-all: one connection wakes every process asleep in poll() on the listening socket" {
    claim_result poll-wakes-all
}

# ================================================================ the shell

@test "claim dash-printf-hex: POSIX printf knows octal escapes only; dash prints \\xc3 as it stands" {
    claim_result dash-printf-hex
}

# ================================================================ the markers

@test "every claim marked in the text has its test here, and every claim test here has its mark in the text" {
    local problems
    problems=$({ marked_claims | sed 's/^/M /'; claim_tests "$BATS_TEST_FILENAME" | sed 's/^/T /'; } | awk '
        $1 == "M" { if (!($2 in marked)) marked[$2] = $3; next }
        $1 == "T" { tested[$2]++ }
        END {
            for (n in marked) if (!(n in tested))
                print "  " marked[n] " marks \047" n "\047, and tests/claims.bats has no test \047claim " n ": ...\047"
            for (n in tested) {
                if (!(n in marked)) print "  tests/claims.bats tests \047claim " n "\047, and no text marks it <!-- claim: " n " -->"
                if (tested[n] > 1) print "  tests/claims.bats has " tested[n] " tests named \047claim " n "\047"
            }
        }' | sort)
    [ -z "$problems" ] || fail_because "expected every marked claim paired with its test, got:
$problems"
}
