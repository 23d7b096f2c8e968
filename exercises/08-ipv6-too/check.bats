#!/usr/bin/env bats
# Exercise 08, IPv6 too: one AF_INET6 listening socket with IPV6_V6ONLY
# turned off answers clients on ::1 and on 127.0.0.1. The kernel is the
# witness: ss lists exactly one listening socket, IPv6, v6only:0; and in a
# private network namespace whose default is IPv6-only (bindv6only=1), the
# server still answers on both addresses, which it does only if it turns
# the option off itself. Without an IPv6 loopback address every check is
# skipped, never passed. One rule is read from the source, since no client
# can see it: announce_port's getsockname() gets an IPv6-sized address.

load ../lib/checker

# require_ipv6_loopback: skips the test, with the reason, unless a socket can
# listen on ::1 here (tests/peer tries, and says why not). The probe runs in
# a subshell whose stderr is thrown away, or bash would report its kill there.
require_ipv6_loopback() {
    (
        start_bg v6probe "$PEER" -l ::1
        PROBE_PID=$BG_PID
        wait_until probe_done
        kill -KILL -- "-$PROBE_PID"
        wait "$PROBE_PID"
    ) 2>/dev/null || true
    grep -q '^Listening on port' "$T/v6probe.out" 2>/dev/null ||
        skip "this machine has no IPv6 loopback address (::1): $(excerpt_file "$T/v6probe.err")"
}
probe_done() { grep -q '^Listening on port' "$T/v6probe.out" 2>/dev/null || ! alive "$PROBE_PID"; }

# answered_on HOST TEXT: the client connecting to HOST sends TEXT and gets
# "I got your message", and the server prints "Here is the message: TEXT".
# A correct server answers in milliseconds; a server that does not listen on
# HOST's family refuses the client at once.
answered_on() {
    run with_deadline client_to "$1" "$2"
    if [ "$status" -ne 0 ] || [ "$output" != "I got your message" ]; then
        fail_because "expected the client connecting to $1 to print 'I got your message' and exit 0," \
            "got exit status $status and: $(excerpt "$output")"
        return 1
    fi
    wait_until grep -qxF "Here is the message: $2" "$T/server.out" 2>/dev/null ||
        fail_because "expected 'Here is the message: $2' on the server's stdout, got: $(excerpt_file "$T/server.out")"
}
client_to() { printf '%s\n' "$2" | "$CLIENT" "$1" "$PORT"; }

# bats test_tags=lesson
@test "a client on ::1 (IPv6) is answered" {
    require_ipv6_loopback
    start_ex_server
    answered_on ::1 "hello over IPv6"
}

@test "a client on 127.0.0.1 (IPv4) is answered too" {
    require_ipv6_loopback
    start_ex_server
    answered_on 127.0.0.1 "hello over IPv4"
}

# bats test_tags=lesson
@test "(kernel, ss) one listening socket on the port: IPv6, any address, v6only:0" {
    require_ipv6_loopback
    command -v ss >/dev/null || skip "needs ss (iproute2, Linux) to ask the kernel which sockets listen"
    start_ex_server
    local all v6 v4 want
    all=$(ss -Hltne "sport = :$PORT")
    v6=$(ss -Hltn -6 "sport = :$PORT" | grep -c . || true)
    v4=$(ss -Hltn -4 "sport = :$PORT" | grep -c . || true)
    want="expected exactly one listening socket on port $PORT, an IPv6 one for any address that takes IPv4 too"
    want="$want (ss: '*:$PORT' ... 'v6only:0'), the kernel lists"
    # Columns: state, queue, backlog, local address, peer address, details.
    [ "$(printf '%s\n' "$all" | grep -c .)" -eq 1 ] && [ "$v6" -eq 1 ] && [ "$v4" -eq 0 ] ||
        fail_because "$want: $(excerpt "$(printf '%s\n' "$all" | awk '{ print $4 }')")"
    case $(printf '%s\n' "$all" | awk '{ print $4 }') in
        # Older versions of ss wrote the IPv6 any-address as ":::PORT".
        "*:$PORT" | "[::]:$PORT" | ":::$PORT") ;;
        *) fail_because "$want: $(excerpt "$(printf '%s\n' "$all" | awk '{ print $4 }')")" ;;
    esac
    case $all in
        *v6only:1*) fail_because "$want: an IPv6-only socket ($(excerpt "$(printf '%s\n' "$all" | awk '{ print $4 }')"), v6only:1)" ;;
    esac
}

# In a network namespace of its own, the loopback interface is brought up and
# the default for IPV6_V6ONLY set to 1. A server that relies on the default
# then refuses 127.0.0.1. Root makes the namespace with `unshare -n`; anybody
# else with `unshare -rn`, where a user namespace maps them to root in it, so
# that they may configure its network. (Not so for root: make grade's $EX_PROG
# switches to a user ID of its own, which such a user namespace cannot map.)
# NS_SCRIPT runs inside; it exits 3 when the namespace cannot be set up (a
# skip, not a failure).
NS_SCRIPT='
prog=$1 client=$2 dir=$3 most=$4
ip link set lo up 2>&1 || exit 3
echo 1 >/proc/sys/net/ipv6/bindv6only || exit 3
"$prog" 0 >"$dir/ns-server.out" 2>"$dir/ns-server.err" </dev/null &
port= tries=0
while [ -z "$port" ] && [ "$tries" -lt "$most" ] && kill -0 $! 2>/dev/null; do
    nap 0.02
    tries=$((tries + 1))
    port=$(sed -n "s/^Listening on port \([0-9][0-9]*\)\$/\1/p" "$dir/ns-server.out")
done
if [ -z "$port" ]; then
    echo "the server did not print Listening on port N; its stderr: $(tail -n 2 "$dir/ns-server.err")"
    exit 1
fi
rc=0
for host in 127.0.0.1 ::1; do
    out=$(printf "inside\n" | "$client" "$host" "$port" 2>&1)
    [ "$out" = "I got your message" ] || { echo "on $host the client printed: $out"; rc=1; }
done
kill $!
exit $rc
'

# bats test_tags=lesson
@test "(kernel, unshare) where IPv6 sockets are IPv6-only by default (bindv6only=1), both 127.0.0.1 and ::1 are answered" {
    require_ipv6_loopback
    command -v unshare >/dev/null || skip "needs unshare (util-linux, Linux) to make a private network namespace"
    command -v ip >/dev/null || skip "needs ip (iproute2, Linux) to bring up the loopback of a private network namespace"
    local how=-rn
    [ "$(id -u)" -ne 0 ] || how=-n
    run with_deadline unshare "$how" true
    [ "$status" -eq 0 ] || skip "cannot make a private network namespace here (unshare $how): $(excerpt "$output")"
    # At most DEADLINE for the server to print its port (tries of 20 ms).
    run with_deadline unshare "$how" bash -c "$NS_SCRIPT" ns-check "$EX_PROG" "$CLIENT" "$T" $((DEADLINE * 50))
    case $status in
        0) ;;
        3) skip "cannot set up a private network namespace here (unshare $how, bindv6only=1): $(excerpt "$output")" ;;
        *) [ "$status" -ne 1 ] && output="unshare $how failed with status $status: $output"
           fail_because "expected clients on 127.0.0.1 and ::1 to get 'I got your message' with net.ipv6.bindv6only=1" \
               "(does the server turn IPV6_V6ONLY off itself?), got: $(excerpt "$output")" ;;
    esac
}

# ------------------------------------------------------------ read from the source

# (EX_SRC and code_of, which reads it without comments and strings, come
# from exercises/lib/checker.bash.)

# getsockname_callers FILE: for every function of FILE that calls
# getsockname(), one line: its name, then "ok" if the address it hands over
# has room for an IPv6 address as far as the source can tell, "bad" if not.
# Room for IPv6 is a name for it: struct sockaddr_in6 or struct
# sockaddr_storage, or any name that stands for one of those or holds one,
# however it is spelled: a typedef (typedef struct sockaddr_storage
# any_address;), a struct or union tag whose members include one, a macro,
# or a variable declared outside the functions (static struct sockaddr_in6
# addr;), and names made from those in turn. A function is "ok" if it names
# one of them, or if a function that calls it does (then the address may
# come from there). A loose check, on purpose: no correct program may fail it.
getsockname_callers() {
    code_of "$1" | awk '
    # Preprocessor lines: a #define whose body names room for IPv6 makes its
    # name one more such name; the lines are left out of the code.
    /^[ \t]*#/ {
        if (match($0, /^[ \t]*#[ \t]*define[ \t]+[A-Za-z_][A-Za-z0-9_]*/)) {
            name = substr($0, RSTART, RLENGTH); sub(/.*[ \t]/, "", name)
            ndef++; defname[ndef] = name; defbody[ndef] = substr($0, RSTART + RLENGTH)
        }
        src = src "\n"
        next
    }
    { src = src $0 "\n" }
    function word(t, w) { return match(t, "(^|[^A-Za-z0-9_])" w "([^A-Za-z0-9_]|$)") }
    function names_room(t,   w) { for (w in room) if (word(t, w)) return 1; return 0 }
    function add(w) { if (!(w in room) && !(w in keyword)) { room[w] = 1; changed = 1 } }
    # unbraced(t): t without what is inside braces (struct bodies, initializers).
    function unbraced(t,   out, i, c, d) {
        out = ""; d = 0
        for (i = 1; i <= length(t); i++) {
            c = substr(t, i, 1)
            if (c == "{") d++
            else if (c == "}") { d--; out = out " "; continue }
            if (d == 0) out = out c
        }
        return out
    }
    # declare(t): the names a declaration outside the functions makes: its
    # struct or union tag, its typedef name, its variables.
    function declare(t,   u, id) {
        if (match(t, /(struct|union)[ \t\n]+[A-Za-z_][A-Za-z0-9_]*[ \t\n]*[{]/)) {
            id = substr(t, RSTART, RLENGTH); sub(/[ \t\n]*[{]$/, "", id); sub(/.*[ \t\n]/, "", id); add(id)
        }
        u = unbraced(t)
        if (index(u, "(")) return          # a prototype, or a function pointer: no room there
        while (match(u, /[A-Za-z_][A-Za-z0-9_]*[ \t\n]*(\[[^]]*\][ \t\n]*)*[;,=]/)) {
            id = substr(u, RSTART, RLENGTH); sub(/[^A-Za-z0-9_].*$/, "", id); add(id)
            u = substr(u, RSTART + RLENGTH)
        }
    }
    END {
        split("struct union enum typedef static extern const volatile register auto signed unsigned " \
              "char short int long float double void _Bool inline restrict sizeof", kw, " ")
        for (k in kw) keyword[kw[k]] = 1
        room["sockaddr_in6"] = 1; room["sockaddr_storage"] = 1
        # The code, cut into declarations and function definitions at the top level.
        len = length(src); depth = 0; text = ""; prev = ""; n = 0
        for (i = 1; i <= len; i++) {
            c = substr(src, i, 1)
            text = text c
            if (c == "{") { if (depth == 0) opener = prev; depth++ }
            else if (c == "}" && depth > 0 && --depth == 0 && opener == ")") { seg[++n] = text; fun[n] = 1; text = "" }
            else if (c == ";" && depth == 0) { seg[n + 1] = text; fun[++n] = 0; text = "" }
            if (c !~ /[ \t\n]/) prev = c
        }
        for (changed = 1; changed; ) {
            changed = 0
            for (d = 1; d <= ndef; d++) if (names_room(defbody[d])) add(defname[d])
            for (i = 1; i <= n; i++) if (!fun[i] && names_room(seg[i])) declare(seg[i])
        }
        # The functions, each with its name, and whether it names room itself.
        for (i = 1; i <= n; i++) {
            if (!fun[i]) continue
            head = seg[i]; sub(/[(].*$/, "", head); sub(/[ \t\n]+$/, "", head); sub(/^.*[^A-Za-z0-9_]/, "", head)
            nf++; fname[nf] = head; ftext[nf] = seg[i]; fine[nf] = names_room(seg[i])
        }
        # A function whose caller names room is fine too, and so on up.
        for (changed = 1; changed; ) {
            changed = 0
            for (f = 1; f <= nf; f++) {
                if (fine[f]) continue
                for (g = 1; g <= nf; g++)
                    if (fine[g] && g != f && match(ftext[g], "(^|[^A-Za-z0-9_])" fname[f] "[ \t\n]*[(]")) { fine[f] = 1; changed = 1; break }
            }
        }
        for (f = 1; f <= nf; f++)
            if (match(ftext[f], /(^|[^A-Za-z0-9_])getsockname[ \t\n]*[(]/)) print fname[f], (fine[f] ? "ok" : "bad")
    }'
}

# The port printed must be read from an address structure of the socket's own
# family. getsockname() on an IPv6 socket returns a struct sockaddr_in6 (28
# bytes on Linux); given the 16 bytes of a struct sockaddr_in, it fills them
# and cuts the rest off, and sin_port happens to lie where sin6_port does, on
# Linux and on the BSDs and macOS alike. So the wrong structure prints the
# right port and no client can tell. POSIX does not promise that the two
# fields share their place, so the source is read instead: the function that
# calls getsockname() (or a function that calls it) must name struct
# sockaddr_in6 or struct sockaddr_storage, or a name that stands for one
# (see getsockname_callers).
# bats test_tags=lesson
@test "(read from the source) the function that calls getsockname() uses struct sockaddr_in6 or struct sockaddr_storage" {
    [ -f "$EX_SRC" ] || {
        fail_because "expected the source of the program under test at $EX_SRC, found nothing (set EX_SRC)"
        return 1
    }
    local found bad
    found=$(getsockname_callers "$EX_SRC")
    bad=$(printf '%s\n' "$found" | awk '$2 == "bad" { printf "%s%s()", sep, $1; sep = ", " }')
    [ -n "$found" ] || fail_because "expected a call of getsockname() (it tells announce_port the port it got), found none in $EX_SRC"
    [ -z "$bad" ] || fail_because "expected $bad, which calls getsockname(), to give it a struct sockaddr_in6 or a" \
        "struct sockaddr_storage (an IPv6 address does not fit in a struct sockaddr_in: Hint 2); neither it nor a" \
        "function that calls it names one, nor a typedef, union, macro or variable made from one"
}
