/*
 * bench/nullserver.c - a server that does the least possible work per
 * connection, to measure how fast bench/loadgen itself can go.
 *
 * It speaks the servers' protocol but never forks and prints nothing: one
 * process, one loop, a handful of system calls per connection. Whatever rate
 * loadgen reaches against it is loadgen's ceiling on this machine; a server
 * measured well below that ceiling is measured, not the load generator.
 * It uses poll() so that one slow client cannot hold up the others: the
 * ceiling should be the load generator's, not this server's.
 *
 * Build and run:  make bench/nullserver && bench/nullserver 5000  (0: any free port)
 * Read more:      bench/README.md
 */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <unistd.h>

#include "listener.h"

#define REPLY "I got your message"
#define MAXCONN 4096

/* One entry per connection being served; entry 0 is the listening socket. */
static struct pollfd fds[MAXCONN + 1];
static int replied[MAXCONN + 1];
static nfds_t nfds = 1;

/* drop: closes entry i and moves the last entry into its place. */
static void drop(nfds_t i)
{
    close(fds[i].fd);
    nfds--;
    fds[i] = fds[nfds];
    replied[i] = replied[nfds];
}

/*
 * on_readable: the first data is the line (a line of the protocol fits in
 * one segment; the rest of it, if any, is drained like everything after it),
 * so we answer at once and send our end of file; then we read until the
 * client's end of file, and close.
 */
static void on_readable(nfds_t i)
{
    char buf[4096];
    ssize_t n;

    n = read(fds[i].fd, buf, sizeof buf);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
        return;
    if (n > 0 && !replied[i]) {
        replied[i] = 1;
        if (write(fds[i].fd, REPLY, sizeof REPLY - 1) < 0 || shutdown(fds[i].fd, SHUT_WR) < 0) {
            drop(i);
            return;
        }
    }
    if (n <= 0)
        drop(i);
}

int main(int argc, char *argv[])
{
    struct rlimit rl;
    nfds_t i;
    int fd;

    if (argc != 2) {
        fprintf(stderr, "usage: %s PORT\n", argv[0]);
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
            perror("setrlimit");
    }
    fds[0].fd = open_listener(argv[1]);
    fds[0].events = POLLIN;
    if (fcntl(fds[0].fd, F_SETFL, O_NONBLOCK) < 0)
        die("fcntl");
    for (;;) {
        if (poll(fds, nfds, -1) < 0) {
            if (errno == EINTR)
                continue;
            die("poll");
        }
        /* Backwards, so that drop() only moves entries we have looked at. */
        for (i = nfds - 1; i > 0; i--)
            if (fds[i].revents != 0)
                on_readable(i);
        /* Take every connection that is waiting (the listener does not
         * block), not one per poll(). */
        while ((fds[0].revents & POLLIN) && nfds <= MAXCONN) {
            fd = accept(fds[0].fd, NULL, NULL);
            if (fd < 0)
                break;
            if (fcntl(fd, F_SETFL, O_NONBLOCK) < 0) {
                close(fd);
                continue;
            }
            fds[nfds].fd = fd;
            fds[nfds].events = POLLIN;
            fds[nfds].revents = 0;
            replied[nfds] = 0;
            nfds++;
        }
    }
}
