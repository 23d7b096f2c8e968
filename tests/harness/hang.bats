#!/usr/bin/env bats
# tests/harness/hang.bats - NOT part of make test on its own: tests/harness.bats
# runs it with BIN pointing at a tree whose servers are tests/stuck, which
# accepts clients and never answers (mute), or forks children that never exit
# (forker), and ignores SIGTERM. Every test here must FAIL, within its
# deadline, and leave nothing running. They use the same helpers as the real
# tests, in the ways the real tests use them.

load ../helper

@test "a client of a server that never answers (ask, through a pipe)" {
    start_server step2-loop
    served "hello"
}

@test "a client in the background while the first one is never answered" {
    start_server step2-loop
    start_bg second with_deadline client_says "second"
    served "first"
}

@test "misbehaving clients against a server that never answers" {
    start_server step2-loop
    check_survives_misbehaving_clients step2-loop
}

@test "a burst of clients whose children never exit" {
    start_server step4-reap
    local i pids=()
    for i in 1 2 3 4 5; do
        with_deadline client_says "burst $i" >"$T/burst-$i.out" 2>&1 &
        pids+=("$!")
    done
    for i in 1 2 3 4 5; do
        wait "${pids[i - 1]}"
    done
}

@test "waiting for zombies that never come" {
    start_server step3-fork
    start_peer silent waitfor "$T/never" send $'x\n' read
    served "second"
}
