#!/usr/bin/env bats
# Exercise 05, log every child's end: for each child, the parent prints
# "child PID exited with status S" or "child PID killed by signal N", with the
# child's real PID, soon after the child ends (also when no other client
# comes), and no signal handler uses stdio, malloc, exit or strerror (read
# from the source).

load ../lib/checker

# The source file, for the one rule that cannot be seen from outside: by
# default the server.c beside the program under test.
EX_SRC="${EX_SRC:-$(dirname "${EX_PROG:-.}")/server.c}"

# child_pids PID: the process IDs of PID's children, one per line.
child_pids() { ps -A -o pid= -o ppid= | awk -v p="$1" '$2 == p { print $1 }'; }

# logged LINE: the server's stdout holds LINE as a whole line.
logged() { grep -qxF -- "$1" "$T/server.out"; }

# times_logged LINE: how many lines of the server's stdout are exactly LINE.
times_logged() { grep -cxF -- "$1" "$T/server.out" || true; }

# child_lines: the "child ..." lines the server printed, in short.
child_lines() {
    local lines
    lines=$(grep '^child' "$T/server.out" | tail -n 5)
    if [ -n "$lines" ]; then
        excerpt "$lines"
    else
        printf 'no line starting with "child"; its stdout ended with: %s' "$(excerpt_file "$T/server.out")"
    fi
}

# hold_clients N: N clients connected and silent, each served by a child.
# Client I says its line when the file $T/speak exists. Sets KIDS to the
# children's PIDs, read from ps while the clients are connected.
hold_clients() {
    local i
    for ((i = 1; i <= $1; i++)); do
        start_peer "c$i" waitfor "$T/speak" send $'line '"$i"$'\n' shutdown read || return 1
    done
    wait_until children_are "$SERVER_PID" "$1" || {
        fail_because "expected $1 children serving $1 connected clients, got $(count_children "$SERVER_PID")"
        return 1
    }
    KIDS=$(child_pids "$SERVER_PID")
}

# clients_answered N: clients 1..N got their reply.
clients_answered() {
    local i
    for ((i = 1; i <= $1; i++)); do
        wait_until grep -qx "I got your message" "$T/c$i.out" 2>/dev/null || {
            fail_because "expected client $i to get 'I got your message', got: $(excerpt_file "$T/c$i.out")"
            server_said
            return 1
        }
    done
}

# logged_soon LINE PID: the server has printed LINE about its child PID. It
# can no longer come in time ($NEVER) once the child has ended and every
# process of the server is asleep without having printed it: a correct server
# prints the line as soon as it has collected the child, before it goes back
# to waiting for clients. (A child's end wakes its parent with SIGCHLD, so a
# parent asleep after it has handled that signal.)
logged_soon() {
    logged "$1" && return 0
    due || return 1
    exited "$2" && family_asleep "$SERVER_PID" && ! logged "$1" && return "$NEVER"
    return 1
}

# expect_logged_once LINE PID WHAT: LINE appears, soon, exactly once.
expect_logged_once() {
    wait_until logged_soon "$1" "$2" 2>/dev/null || {
        fail_because "expected '$1' ($3) on the server's stdout, got: $(child_lines)"
        return 1
    }
    [ "$(times_logged "$1")" -eq 1 ] ||
        fail_because "expected '$1' once, got it $(times_logged "$1") times"
}

# no_child_left: the server has no child, not even a zombie. A zombie beside
# a parent asleep stays a zombie ($NEVER): its SIGCHLD has come and gone.
no_child_left() {
    children_are "$SERVER_PID" 0 && return 0
    due || return 1
    [ "$(count_children "$SERVER_PID" Z)" -gt 0 ] && family_asleep "$SERVER_PID" &&
        [ "$(count_children "$SERVER_PID" Z)" -gt 0 ] && return "$NEVER"
    return 1
}

# Signals of one kind do not queue: children that end while SIGCHLD is
# pending give one SIGCHLD for all. To make that happen every time, the test
# stops the parent (SIGSTOP) while its three children serve their clients and
# end, and lets it go on (SIGCONT) once all three are zombies: one SIGCHLD,
# three children to collect and three lines to print.
# bats test_tags=lesson
@test "each child that ends normally is logged as 'child PID exited with status 0', with its PID, also when three end at once" {
    start_ex_server
    hold_clients 3
    kill -STOP "$SERVER_PID"
    touch "$T/speak"
    clients_answered 3
    wait_until children_are "$SERVER_PID" 3 Z 2>/dev/null || {
        kill -CONT "$SERVER_PID"
        fail_because "expected the three children to end once their clients were served, got" \
            "$(count_children "$SERVER_PID" Z) zombies of $(count_children "$SERVER_PID") children"
        return 1
    }
    kill -CONT "$SERVER_PID"
    # One more client. A server that prints only when accept() returns has
    # printed by now; the next test is the one that demands the lines sooner.
    served "one more"
    local pid
    for pid in $KIDS; do
        expect_logged_once "child $pid exited with status 0" "$pid" "child $pid served a client and exited"
    done
    wait_until no_child_left 2>/dev/null ||
        fail_because "expected no child left once the clients are gone, not even a zombie," \
            "got $(count_children "$SERVER_PID") ($(count_children "$SERVER_PID" Z) of them zombies)"
}

# The parent waits in accept(). The line must come without another client
# to wake it up: before the server goes back to sleep after the child's end.
# bats test_tags=lesson
@test "a child's end is logged at once, without waiting for the next client" {
    start_ex_server
    hold_clients 1
    touch "$T/speak"
    clients_answered 1
    local line="child $KIDS exited with status 0"
    wait_until logged_soon "$line" "$KIDS" 2>/dev/null && return 0
    local got
    got=$(child_lines)
    if served "a second client" 2>/dev/null && wait_until logged_soon "$line" "$KIDS" 2>/dev/null; then
        got="$got; it came only after another client connected (the parent waits in accept(): see hint 3)"
    fi
    fail_because "expected '$line' as soon as the child had ended, with no other client connecting;" \
        "the server collected the child and went back to sleep without it, got: $got"
}

# bats test_tags=lesson
@test "a child killed by a signal is logged as 'child PID killed by signal N'" {
    start_ex_server
    hold_clients 2
    local first second
    first=$(echo "$KIDS" | sed -n 1p)
    second=$(echo "$KIDS" | sed -n 2p)
    kill -KILL "$first"
    kill -TERM "$second"
    served "after two children were killed"
    expect_logged_once "child $first killed by signal 9" "$first" "we killed child $first with SIGKILL"
    expect_logged_once "child $second killed by signal 15" "$second" "we killed child $second with SIGTERM"
    server_is_alive
}

# ------------------------------------------------------------ read from the source

# handler_calls FILE: for every function that FILE installs as a signal
# handler (sa_handler = F, sa_sigaction = F, signal(SIG, F)), and every
# function of FILE that such a handler calls, directly or not, prints
# "F calls G" for each call G that is not safe in a handler. Comments and
# string literals are ignored.
handler_calls() {
    awk '
    { src = src $0 "\n" }
    END {
        code = strip(src)
        unsafe = " printf fprintf dprintf vprintf vfprintf snprintf sprintf vsnprintf vsprintf puts fputs putchar putc fputc perror strerror fflush fwrite malloc calloc realloc free exit "
        keywords = " if while for switch return sizeof "
        n = 0
        rest = code
        while (match(rest, /(sa_handler|sa_sigaction)[ \t\n]*=[ \t\n]*&?[A-Za-z_][A-Za-z0-9_]*/)) {
            h = substr(rest, RSTART, RLENGTH); sub(/.*[=&][ \t\n]*/, "", h)
            queue[++n] = h; via[h] = h
            rest = substr(rest, RSTART + RLENGTH)
        }
        rest = code
        while (match(rest, /(^|[^A-Za-z0-9_])signal[ \t\n]*[(][^,()]*,[ \t\n]*&?[A-Za-z_][A-Za-z0-9_]*/)) {
            h = substr(rest, RSTART, RLENGTH); sub(/.*,[ \t\n]*&?/, "", h)
            if (h != "SIG_IGN" && h != "SIG_DFL" && !(h in via)) { queue[++n] = h; via[h] = h }
            rest = substr(rest, RSTART + RLENGTH)
        }
        for (i = 1; i <= n; i++) {
            f = queue[i]
            if (f in seen) continue
            seen[f] = 1
            b = body(code, f)
            while (match(b, /[A-Za-z_][A-Za-z0-9_]*[ \t\n]*[(]/)) {
                g = substr(b, RSTART, RLENGTH); sub(/[ \t\n]*[(]$/, "", g)
                b = substr(b, RSTART + RLENGTH)
                if (index(keywords, " " g " ")) continue
                if (index(unsafe, " " g " ") && !((via[f] " calls " g) in said)) {
                    said[via[f] " calls " g] = 1
                    print via[f] " calls " g
                }
                else if (!(g in seen) && body(code, g) != "") { queue[++n] = g; via[g] = via[f] " -> " g }
            }
        }
    }
    # strip(s): s with comments and string and character literals blanked out.
    function strip(s,   out, i, c, d, len) {
        out = ""; len = length(s)
        for (i = 1; i <= len; i++) {
            c = substr(s, i, 1); d = substr(s, i + 1, 1)
            if (c == "/" && d == "*") {
                i += 2
                while (i <= len && !(substr(s, i, 1) == "*" && substr(s, i + 1, 1) == "/")) i++
                i++; out = out " "
            } else if (c == "/" && d == "/") {
                while (i <= len && substr(s, i, 1) != "\n") i++
                out = out "\n"
            } else if (c == "\"" || c == "\047") {
                i++
                while (i <= len && substr(s, i, 1) != c) { if (substr(s, i, 1) == "\\") i++; i++ }
                out = out c c
            } else out = out c
        }
        return out
    }
    # body(code, f): the text between the braces of the definition of f.
    function body(code, f,   start, depth, i, c) {
        if (!match(code, "(^|[^A-Za-z0-9_])" f "[ \t\n]*[(][^;{}()]*[)][ \t\n]*[{]")) return ""
        start = RSTART + RLENGTH; depth = 1
        for (i = start; i <= length(code) && depth > 0; i++) {
            c = substr(code, i, 1)
            if (c == "{") depth++
            else if (c == "}") depth--
        }
        return substr(code, start, i - start - 1)
    }
    ' "$1"
}

# bats test_tags=lesson
@test "(read from the source) no signal handler calls printf, fprintf, puts, perror, malloc or the like" {
    [ -f "$EX_SRC" ] || {
        fail_because "expected the source of the program under test at $EX_SRC, found nothing (set EX_SRC)"
        return 1
    }
    local found
    found=$(handler_calls "$EX_SRC")
    [ -z "$found" ] || fail_because "expected no stdio, malloc, exit or strerror in a signal handler" \
        "(they are not async-signal-safe), got: $(excerpt "$found")"
}
