/*
 * bench/minfork.c - step 4's work for each connection, done with the fewest
 * means: the yardstick for step4-reap/server.
 *
 * For every connection it makes the same system calls as step 4, in the same
 * order: fork(); in the child, read() the line as read_message() does, one
 * write() to stdout of "Here is the message: " and the line, escaped as step 4
 * escapes it, write() the reply, shutdown(), read() until the client's end of
 * file, close(), _exit(); in the parent, close() and a SIGCHLD handler that
 * reaps. What it leaves out is stdio in the child: the printed line is built
 * in a local array, where step 4 calls fputs(), putchar() and printf(). So
 * step 4's rate as a share of this one's is what stdio costs a forking server
 * (the stdio buffer a child writes is a page that fork shares copy-on-write,
 * and the dynamic linker resolves each stdio function anew in every child),
 * not fork itself, which both pay.
 *
 * Build and run:  make bench/minfork && bench/minfork 5000   (0: any free port)
 * Read more:      bench/README.md
 */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "listener.h"

#define BUFSIZE 256
#define REPLY "I got your message"
#define PRINTED "Here is the message: "
/* The printed line at its longest: every byte escaped as \xHH, and a newline. */
#define LINESIZE (sizeof PRINTED - 1 + (size_t) 4 * (BUFSIZE - 1) + 1)

static void reap(int signo)
{
    int saved_errno = errno;

    (void) signo;
    while (waitpid(-1, NULL, WNOHANG) > 0)
        continue;
    errno = saved_errno;
}

/* read_line: step 4's read_message(): up to a newline, end of file or size - 1 bytes. */
static ssize_t read_line(int fd, char *buf, size_t size)
{
    size_t len = 0;
    ssize_t n;
    char *newline;

    while (len < size - 1) {
        n = read(fd, buf + len, size - 1 - len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -1;
        if (n == 0)
            break;
        newline = memchr(buf + len, '\n', (size_t) n);
        len += (size_t) n;
        if (newline != NULL) {
            len = (size_t) (newline - buf) + 1;
            break;
        }
    }
    return (ssize_t) len;
}

/* write_all: step 4's, for the socket and for stdout alike. */
static int write_all(int fd, const char *buf, size_t len)
{
    ssize_t n;

    while (len > 0) {
        n = write(fd, buf, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -1;
        buf += n;
        len -= (size_t) n;
    }
    return 0;
}

/*
 * format_line: the bytes step 4's print_message() prints for the same line:
 * its line ending dropped, a backslash as \\, other unprintable bytes as \xHH.
 * Returns their length; out must hold LINESIZE bytes.
 */
static size_t format_line(char *out, const char *buf, size_t len)
{
    static const char hex[] = "0123456789abcdef";
    size_t i, n = sizeof PRINTED - 1;
    unsigned char c;

    if (len > 0 && buf[len - 1] == '\n')
        len--;
    if (len > 0 && buf[len - 1] == '\r')
        len--;
    memcpy(out, PRINTED, n);
    for (i = 0; i < len; i++) {
        c = (unsigned char) buf[i];
        if (c == '\\') {
            out[n++] = '\\';
            out[n++] = '\\';
        } else if (c >= 0x20 && c < 0x7f) {
            out[n++] = (char) c;
        } else {
            out[n++] = '\\';
            out[n++] = 'x';
            out[n++] = hex[c >> 4];
            out[n++] = hex[c & 0xf];
        }
    }
    out[n++] = '\n';
    return n;
}

/*
 * serve: step 4's dostuff() and hang_up(). Where step 4 reports a failure on
 * stderr, this child stays silent: a bench run counts every failed connection
 * (the errors column), and the rates compared are those of runs without any.
 */
static void serve(int fd)
{
    char buf[BUFSIZE], line[LINESIZE];
    ssize_t n;

    n = read_line(fd, buf, sizeof buf);
    if (n > 0) {
        /* One write(), as step 4's line-buffered stdout makes one. */
        (void) write_all(STDOUT_FILENO, line, format_line(line, buf, (size_t) n));
        (void) write_all(fd, REPLY, sizeof REPLY - 1);
    }
    if (shutdown(fd, SHUT_WR) == 0) {
        do
            n = read(fd, buf, sizeof buf);
        while (n > 0 || (n < 0 && errno == EINTR));
    }
    close(fd);
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
        if (pid < 0) {
            close(fd);
            continue;
        }
        if (pid == 0) {
            close(lfd);
            serve(fd);
            _exit(0);
        }
        close(fd);
    }
}
