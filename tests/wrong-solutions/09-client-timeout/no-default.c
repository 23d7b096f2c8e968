/*
 * tests/wrong-solutions/09-client-timeout/no-default.c
 *
 * A plausible wrong answer to exercise 09: the reference solution with one
 * bug put in on purpose, for the proof that the checker rejects it in the
 * lesson test the bug is about (exercises/lib/prove.sh wrong-all).
 *
 * The bug: without REPLY_TIMEOUT the client sets no time limit at all (a
 * timeout of 0 means none), where the README says the limit is then 10
 * seconds: a silent server holds it for ever.
 * Caught by: without REPLY_TIMEOUT, gives up after 10 seconds
 */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <netdb.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/types.h>
#include <unistd.h>

#define BUFSIZE 256
#define DEFAULT_REPLY_TIMEOUT 10    /* seconds, when REPLY_TIMEOUT is unset */

/* error: reports which call failed and why (from errno), then exits. */
static void error(const char *msg)
{
    perror(msg);
    exit(1);
}

/*
 * check_port: the port must be a decimal number from 1 to 65535.
 * getaddrinfo() would also accept a service name such as "http"; we are
 * stricter so that a typo is reported instead of quietly reinterpreted.
 */
static void check_port(const char *text)
{
    char *end;
    long port;

    errno = 0;
    port = strtol(text, &end, 10);
    if (text[0] < '0' || text[0] > '9' || *end != '\0' || errno != 0
        || port < 1 || port > 65535) {
        fprintf(stderr, "ERROR, bad port '%s': expected a number from 1 to 65535\n", text);
        exit(2);
    }
}

/*
 * reply_timeout: how many seconds the server may stay silent, from the
 * environment variable REPLY_TIMEOUT, or exits with a message. Checked like
 * the port: every character must be part of the number, so an empty value
 * is refused too.
 */
static long reply_timeout(void)
{
    const char *text = getenv("REPLY_TIMEOUT");
    char *end;
    long seconds;

    if (text == NULL)
        return 0;           /* no limit */
    errno = 0;
    seconds = strtol(text, &end, 10);
    if (text[0] < '0' || text[0] > '9' || *end != '\0' || errno != 0
        || seconds < 1 || seconds > 86400) {
        fprintf(stderr, "ERROR, bad REPLY_TIMEOUT '%s': expected whole seconds from 1 to 86400\n", text);
        exit(2);
    }
    return seconds;
}

/*
 * connect_to: looks HOST up and connects to the first of its addresses that
 * answers. A name such as localhost may stand for both ::1 and 127.0.0.1, in
 * either order, and the server may listen on only one of them, so each
 * address is tried in turn.
 */
static int connect_to(const char *host, const char *port)
{
    struct addrinfo hints, *addrs, *ai;
    int sockfd = -1;
    int rc, saved_errno = 0;

    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICSERV;
    rc = getaddrinfo(host, port, &hints, &addrs);
    if (rc != 0) {
        fprintf(stderr, "ERROR, no such host '%s': %s\n", host, gai_strerror(rc));
        exit(1);
    }
    for (ai = addrs; ai != NULL; ai = ai->ai_next) {
        sockfd = socket(ai->ai_family, ai->ai_socktype, ai->ai_protocol);
        if (sockfd < 0) {
            saved_errno = errno;
            continue;
        }
        if (connect(sockfd, ai->ai_addr, ai->ai_addrlen) == 0)
            break;
        saved_errno = errno;
        close(sockfd);
        sockfd = -1;
    }
    freeaddrinfo(addrs);
    if (sockfd < 0) {
        errno = saved_errno;
        error("ERROR connecting");
    }
    return sockfd;
}

/* write_all: write() may send less than asked for; keep going until done. */
static int write_all(int sockfd, const char *buf, size_t len)
{
    ssize_t n;

    while (len > 0) {
        n = write(sockfd, buf, len);
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
 * print_reply: copies everything the server sends to stdout until it closes
 * the connection. Our servers reply without a newline and a line-based server
 * such as nc ends its reply with one, so a newline is added only where the
 * reply lacks it. A server that sends nothing for timeout seconds ends the
 * client with an error. Returns the number of bytes received.
 */
static size_t print_reply(int sockfd, long timeout)
{
    char buffer[BUFSIZE];
    size_t total = 0;
    ssize_t n;
    char last = '\n';

    for (;;) {
        n = read(sockfd, buffer, sizeof buffer);
        if (n < 0 && errno == EINTR)
            continue;
        /* What SO_RCVTIMEO makes read() say when the time is up. */
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            fprintf(stderr, "ERROR, no reply within %ld seconds\n", timeout);
            exit(1);
        }
        if (n < 0)
            error("ERROR reading from socket");
        if (n == 0)
            break;
        /* fwrite() fills stdio's buffer, which stdio writes out when it is
         * full. A failure there sets the error flag, and later writes may
         * succeed: stop at the first failure, or part of the reply is lost
         * without a word. */
        fwrite(buffer, 1, (size_t) n, stdout);
        if (ferror(stdout))
            error("ERROR writing to standard output");
        last = buffer[n - 1];
        total += (size_t) n;
    }
    if (last != '\n')
        putchar('\n');
    return total;
}

int main(int argc, char *argv[])
{
    int sockfd;
    long timeout;
    struct timeval limit;
    char *line = NULL;
    size_t linecap = 0;
    ssize_t len;

    if (argc != 3) {
        fprintf(stderr, "usage: %s HOST PORT   (then type one line)\n", argv[0]);
        exit(2);
    }
    check_port(argv[2]);
    timeout = reply_timeout();
    /* A server that hangs up early must give us an error, not kill us. */
    signal(SIGPIPE, SIG_IGN);

    sockfd = connect_to(argv[1], argv[2]);
    /* From now on every read() on the socket gives up after timeout seconds
     * without data, failing with EAGAIN or EWOULDBLOCK. */
    limit.tv_sec = timeout;
    limit.tv_usec = 0;
    if (setsockopt(sockfd, SOL_SOCKET, SO_RCVTIMEO, &limit, sizeof limit) < 0)
        error("ERROR on setsockopt");

    if (isatty(STDIN_FILENO)) {
        printf("Please enter the message: ");
        fflush(stdout);
    }
    len = getline(&line, &linecap, stdin);
    if (len < 0 && ferror(stdin))
        error("ERROR reading standard input");
    if (len < 0) {
        fprintf(stderr, "ERROR, no message: standard input ended before a line was read\n");
        exit(1);
    }
    if (write_all(sockfd, line, (size_t) len) < 0)
        error("ERROR writing to socket");
    free(line);
    /* Half-close: tells the server we have nothing more to say (it sees end
     * of file), while we can still read its reply. ENOTCONN means the server
     * has already closed or reset the connection; a reply it sent before may
     * still wait for us, and read() tells us what really happened. */
    if (shutdown(sockfd, SHUT_WR) < 0 && errno != ENOTCONN)
        error("ERROR on shutdown");

    if (print_reply(sockfd, timeout) == 0) {
        fprintf(stderr, "ERROR, the server closed the connection without replying\n");
        exit(1);
    }
    /* The reply is no use if it never reached the terminal or file. A
     * failed write leaves stdio's error flag set even when a later flush
     * succeeds, so both are checked. */
    if (fflush(stdout) == EOF || ferror(stdout))
        error("ERROR writing to standard output");
    close(sockfd);
    return 0;
}
