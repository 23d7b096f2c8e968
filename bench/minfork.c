/*
 * bench/minfork.c - the least a fork-per-connection server can do: the
 * yardstick for step4-reap/server.
 *
 * It speaks the same protocol as the steps and pays the same price, a fork()
 * and an _exit() per connection and a SIGCHLD handler that reaps, but does
 * nothing else: no stdio, no escaping, no error messages. If step4 reaches
 * nearly this server's rate in the same run, the teaching code adds no cost
 * that a forking server could avoid; what is left is the price of fork.
 *
 * Build and run:  make bench/minfork && bench/minfork 5000   (0: any free port)
 * Read more:      bench/README.md
 */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "listener.h"

#define REPLY "I got your message"
#define PRINTED "Here is the message: "

static void reap(int signo)
{
    int saved_errno = errno;

    (void) signo;
    while (waitpid(-1, NULL, WNOHANG) > 0)
        continue;
    errno = saved_errno;
}

/*
 * serve: the protocol and nothing more. The line is printed with a single
 * write(), as the steps' line-buffered stdout does, so that both do the same
 * system calls. Failures are this client's problem: the child just ends.
 */
static void serve(int fd)
{
    char buf[256 + sizeof PRINTED];
    size_t len = sizeof PRINTED - 1;
    ssize_t n;
    char *newline = NULL;

    memcpy(buf, PRINTED, len);
    while (newline == NULL && len < sizeof buf - 1) {
        n = read(fd, buf + len, sizeof buf - 1 - len);
        if (n <= 0)
            break;
        newline = memchr(buf + len, '\n', (size_t) n);
        len += (size_t) n;
    }
    if (len == sizeof PRINTED - 1)
        return;
    if (newline != NULL)
        len = (size_t) (newline - buf);
    buf[len++] = '\n';
    if (write(STDOUT_FILENO, buf, len) < 0 || write(fd, REPLY, sizeof REPLY - 1) < 0)
        return;
    /* Our end of file, then drain until the client's, so no reset eats the reply. */
    if (shutdown(fd, SHUT_WR) == 0)
        while (read(fd, buf, sizeof buf) > 0)
            continue;
}

int main(int argc, char *argv[])
{
    struct sigaction sa;
    int lfd, fd;
    pid_t pid;

    if (argc != 2) {
        fprintf(stderr, "usage: %s PORT\n", argv[0]);
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    lfd = open_listener(argv[1]);
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = reap;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;
    if (sigaction(SIGCHLD, &sa, NULL) < 0)
        die("sigaction");
    for (;;) {
        fd = accept(lfd, NULL, NULL);
        if (fd < 0)
            continue;
        pid = fork();
        if (pid == 0) {
            close(lfd);
            serve(fd);
            _exit(0);
        }
        close(fd);
    }
}
