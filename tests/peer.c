/*
 * tests/peer.c - a client that misbehaves on request, for the tests.
 *
 * The real client always behaves: it sends one line and waits for the reply.
 * To show that a server survives clients that do not, the tests need one that
 * can go silent, leave without a word or reset the connection. This is it.
 *
 * Usage: peer HOST PORT ACTION...      connect to a server, then act
 *        peer -l HOST ACTION...       be a server: listen on HOST, any free
 *                                     port, accept one client, then act
 * where each ACTION is one of
 *   send TEXT      write TEXT as it is (put a newline in it to end a line)
 *   waitfor PATH   do nothing until the file PATH exists (stay silent)
 *   read           read until the server closes; print what it sent
 *   shutdown       half-close: tell the server we have nothing more to say
 *   close          close normally (the server sees end of file)
 *   reset          close with a reset (RST) instead of an orderly close
 *   ports          print "ports LOCAL REMOTE": the connection's two port
 *                  numbers, which name it among others on the same port
 *   elapsed        print "elapsed MS": the milliseconds since just before the
 *                  connection was made (a monotonic clock, read by the peer
 *                  itself, so that a busy machine can make the number larger
 *                  than the server's time, never smaller)
 * It prints "Listening on port N" when it listens, "connected" as soon as the
 * connection is made and "sent" after each send, and exits 1 with a message
 * when a call fails.
 */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static void fail(const char *what)
{
    perror(what);
    exit(1);
}

static int connect_to(const char *host, const char *port)
{
    struct addrinfo hints, *addrs, *ai;
    int fd = -1;

    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    if (getaddrinfo(host, port, &hints, &addrs) != 0) {
        fprintf(stderr, "peer: cannot resolve %s\n", host);
        exit(1);
    }
    for (ai = addrs; ai != NULL && fd < 0; ai = ai->ai_next) {
        fd = socket(ai->ai_family, ai->ai_socktype, ai->ai_protocol);
        if (fd >= 0 && connect(fd, ai->ai_addr, ai->ai_addrlen) < 0) {
            close(fd);
            fd = -1;
        }
    }
    freeaddrinfo(addrs);
    if (fd < 0)
        fail("peer: connect");
    return fd;
}

static int accept_one(const char *host)
{
    struct addrinfo hints, *ai;
    struct sockaddr_storage addr;
    socklen_t len = sizeof addr;
    char port[16];
    int lfd, fd;

    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE;
    if (getaddrinfo(host, "0", &hints, &ai) != 0) {
        fprintf(stderr, "peer: cannot resolve %s\n", host);
        exit(1);
    }
    lfd = socket(ai->ai_family, ai->ai_socktype, ai->ai_protocol);
    if (lfd < 0 || bind(lfd, ai->ai_addr, ai->ai_addrlen) < 0 || listen(lfd, 5) < 0)
        fail("peer: listen");
    freeaddrinfo(ai);
    if (getsockname(lfd, (struct sockaddr *) &addr, &len) < 0
        || getnameinfo((struct sockaddr *) &addr, len, NULL, 0, port, sizeof port,
                       NI_NUMERICSERV) != 0)
        fail("peer: getsockname");
    printf("Listening on port %s\n", port);
    fflush(stdout);
    fd = accept(lfd, NULL, NULL);
    if (fd < 0)
        fail("peer: accept");
    close(lfd);
    return fd;
}

/* port_of: the port number in a socket address of either family. */
static unsigned port_of(const struct sockaddr_storage *addr)
{
    if (addr->ss_family == AF_INET6)
        return ntohs(((const struct sockaddr_in6 *) addr)->sin6_port);
    return ntohs(((const struct sockaddr_in *) addr)->sin_port);
}

static void print_ports(int fd)
{
    struct sockaddr_storage local, remote;
    socklen_t len = sizeof local;

    if (getsockname(fd, (struct sockaddr *) &local, &len) < 0)
        fail("peer: getsockname");
    len = sizeof remote;
    if (getpeername(fd, (struct sockaddr *) &remote, &len) < 0)
        fail("peer: getpeername");
    printf("ports %u %u\n", port_of(&local), port_of(&remote));
    fflush(stdout);
}

/* ms_since: the milliseconds from *start to now, on the monotonic clock. */
static long ms_since(const struct timespec *start)
{
    struct timespec now;

    if (clock_gettime(CLOCK_MONOTONIC, &now) < 0)
        fail("peer: clock_gettime");
    return (long) (now.tv_sec - start->tv_sec) * 1000
           + (now.tv_nsec - start->tv_nsec) / (1000L * 1000);
}

static void wait_for_file(const char *path)
{
    struct stat st;
    struct timespec tick = { 0, 10L * 1000 * 1000 };

    while (stat(path, &st) < 0)
        nanosleep(&tick, NULL);
}

static void read_to_end(int fd)
{
    char buf[4096];
    ssize_t n;

    while ((n = read(fd, buf, sizeof buf)) > 0)
        fwrite(buf, 1, (size_t) n, stdout);
    if (n < 0)
        fail("peer: read");
    putchar('\n');
    fflush(stdout);
}

int main(int argc, char *argv[])
{
    struct linger reset_on_close = { 1, 0 };
    struct timespec start;
    int fd, i = 3;
    size_t len;
    ssize_t n;

    if (argc < 3) {
        fprintf(stderr, "usage: peer HOST PORT ACTION...\n");
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    /* Before the connection exists, so that the server's clock for it starts later. */
    if (clock_gettime(CLOCK_MONOTONIC, &start) < 0)
        fail("peer: clock_gettime");
    if (strcmp(argv[1], "-l") == 0)
        fd = accept_one(argv[2]);
    else
        fd = connect_to(argv[1], argv[2]);
    printf("connected\n");
    fflush(stdout);

    for (; i < argc; i++) {
        if (strcmp(argv[i], "send") == 0 && i + 1 < argc) {
            len = strlen(argv[++i]);
            n = write(fd, argv[i], len);
            if (n < 0 || (size_t) n != len)
                fail("peer: write");
            printf("sent\n");
            fflush(stdout);
        } else if (strcmp(argv[i], "waitfor") == 0 && i + 1 < argc) {
            wait_for_file(argv[++i]);
        } else if (strcmp(argv[i], "read") == 0) {
            read_to_end(fd);
        } else if (strcmp(argv[i], "shutdown") == 0) {
            if (shutdown(fd, SHUT_WR) < 0)
                fail("peer: shutdown");
        } else if (strcmp(argv[i], "ports") == 0) {
            print_ports(fd);
        } else if (strcmp(argv[i], "elapsed") == 0) {
            printf("elapsed %ld\n", ms_since(&start));
            fflush(stdout);
        } else if (strcmp(argv[i], "close") == 0) {
            close(fd);
        } else if (strcmp(argv[i], "reset") == 0) {
            /* A zero linger time makes close() drop the connection with RST. */
            if (setsockopt(fd, SOL_SOCKET, SO_LINGER, &reset_on_close,
                           sizeof reset_on_close) < 0)
                fail("peer: setsockopt SO_LINGER");
            close(fd);
        } else {
            fprintf(stderr, "peer: unknown action '%s'\n", argv[i]);
            return 2;
        }
    }
    return 0;
}
