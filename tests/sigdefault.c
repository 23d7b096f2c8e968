/*
 * tests/sigdefault.c - runs a command with SIGINT and SIGQUIT at their default
 * action, whatever the caller had set.
 *
 * A shell that starts a command in the background without job control makes
 * it ignore SIGINT and SIGQUIT, and a signal ignored when a shell starts can
 * never be trapped in that shell (POSIX, "trap"). A test suite started that
 * way (from a script with `&`, by nohup, by some CI runners) would hand the
 * demo a Ctrl-C it cannot see. tests/demo.bats starts the demo through this,
 * so that what it tests is what a person at a terminal gets.
 *
 * Usage: sigdefault COMMAND [ARG...]
 */
#define _POSIX_C_SOURCE 200809L

#include <signal.h>
#include <stdio.h>
#include <unistd.h>

int main(int argc, char *argv[])
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s COMMAND [ARG...]\n", argv[0]);
        return 2;
    }
    signal(SIGINT, SIG_DFL);
    signal(SIGQUIT, SIG_DFL);
    execvp(argv[1], argv + 1);
    perror(argv[1]);
    return 127;
}
