/*
 * exercises/solutions/10-one-process-poll/server.c - a reference solution to
 * exercise 10: step 2's server, which serves many clients at once in one
 * process with one thread, by waiting in poll() on all of them together.
 *
 * Each connection has a slot of its own: its socket and the part of its line
 * that has come so far. poll() says which sockets have something to read;
 * the server reads once from each of them, answers a line as soon as its
 * newline is there, and goes back to poll(). No call but poll() may wait, so
 * the listening socket and every connection are non-blocking. At most
 * MAX_CLIENTS connections are open at once; the next client waits in the
 * listen queue until one of them is closed.
 * diff -u against exercises/10-one-process-poll/server.c shows the lesson.
 *
 * Build and check:  cc -std=c99 -pedantic -Wall -Wextra -Werror -o server server.c
 *                   EX_PROG=$PWD/server bats ../../10-one-process-poll/check.bats
 * Run by hand:      ./server 0
 * Talk to it:       ./client/client localhost PORT     (in a second terminal)
 * PORT 0 lets the kernel pick a free port; the first line printed names it.
 * Read more:        tutorial.md, chapter "Other designs: poll, threads, a pool".
 */
#define _POSIX_C_SOURCE 200809L

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <unistd.h>

#define BUFSIZE 256
#define REPLY "I got your message"
/* How many clients may be connected at once (make bench builds it with
 * -DMAX_CLIENTS=HOLD+24, to measure it holding as many as the others). */
#ifndef MAX_CLIENTS
#define MAX_CLIENTS 32
#endif

/*
 * struct client: one slot of the server: a connection and the part of its
 * line that has come so far. Each client has a buffer of its own: poll() may
 * give us the first half of one client's line, then another client's, then
 * the end of the first one's, and the pieces must not mix.
 */
struct client {
    int fd;             /* the connection, or -1 while the slot is free */
    int answered;       /* its line is answered and our end of file sent */
    size_t len;         /* the bytes of its line in buf so far */
    char buf[BUFSIZE];
};

/* error: reports which call failed and why (from errno), then exits. */
static void error(const char *msg)
{
    perror(msg);
    exit(1);
}

/*
 * parse_port: turns the command-line text into a port number, or exits with
 * a message. atoi() would quietly turn "http", "80x" or "" into a number, so
 * strtol() is used and every character must be part of the number.
 */
static unsigned short parse_port(const char *text)
{
    char *end;
    long port;

    errno = 0;
    port = strtol(text, &end, 10);
    if (text[0] < '0' || text[0] > '9' || *end != '\0' || errno != 0
        || port > 65535) {
        fprintf(stderr, "ERROR, bad port '%s': expected a number from 0 to 65535\n", text);
        exit(2);
    }
    return (unsigned short) port;
}

/*
 * open_listener: creates a TCP socket bound to PORT on every IPv4 interface
 * and makes it listen. Failure here is fatal: without it there is no server.
 */
static int open_listener(unsigned short port)
{
    struct sockaddr_in serv_addr;
    int sockfd;
    int on = 1;

    sockfd = socket(AF_INET, SOCK_STREAM, 0);
    if (sockfd < 0)
        error("ERROR opening socket");
    /* Without this, bind fails for 60 s on Linux after a restart while old
     * connections on this port sit in TIME_WAIT. */
    if (setsockopt(sockfd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on) < 0)
        error("ERROR on setsockopt");
    memset(&serv_addr, 0, sizeof serv_addr);
    serv_addr.sin_family = AF_INET;
    serv_addr.sin_addr.s_addr = htonl(INADDR_ANY);
    serv_addr.sin_port = htons(port);
    if (bind(sockfd, (struct sockaddr *) &serv_addr, sizeof serv_addr) < 0)
        error("ERROR on binding");
    /* The backlog: how many connections the kernel may complete and hold
     * for us while we are busy elsewhere. Old examples say 5; a burst of
     * clients then waits for dropped handshakes to be retried, so we ask
     * for more. SOMAXCONN is a constant from the C library's header, not
     * the kernel's limit: 4096 in glibc 2.36, 128 on macOS. Linux quietly
     * lowers a larger backlog to net.core.somaxconn, the number in
     * /proc/sys/net/core/somaxconn. */
    if (listen(sockfd, SOMAXCONN) < 0)
        error("ERROR on listen");
    return sockfd;
}

/* announce_port: prints the port we really got (it differs when PORT was 0). */
static void announce_port(int sockfd)
{
    struct sockaddr_in addr;
    socklen_t len = sizeof addr;

    if (getsockname(sockfd, (struct sockaddr *) &addr, &len) < 0)
        error("ERROR on getsockname");
    printf("Listening on port %u\n", (unsigned) ntohs(addr.sin_port));
}

/*
 * set_nonblocking: from now on read(), write() and accept() on fd return at
 * once, failing with EAGAIN or EWOULDBLOCK, where they would have waited. In
 * a server with one thread, a call that waits for one client makes every
 * client wait: here only poll() may wait.
 */
static int set_nonblocking(int fd)
{
    int flags = fcntl(fd, F_GETFL);

    if (flags < 0)
        return -1;
    return fcntl(fd, F_SETFL, flags | O_NONBLOCK);
}

/*
 * read_message: reads, once, what client c has sent, into c's own buffer,
 * after what came before. TCP delivers a stream of bytes, not messages: one
 * line may arrive in several pieces, and each call adds the next piece.
 * Returns 1 when the line is complete (a newline, end of file or a full
 * buffer: c->len bytes, 0 when the client sent nothing at all), 0 when its
 * rest has not come yet, or -1 with errno set. Anything after the newline is
 * ignored. It never reads twice: a second read() would wait for a piece that
 * may not come for a long time, and every other client would wait with us.
 */
static int read_message(struct client *c)
{
    size_t size = sizeof c->buf;
    ssize_t n;
    char *newline;

    n = read(c->fd, c->buf + c->len, size - 1 - c->len);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
        return 0;
    if (n < 0)
        return -1;
    if (n > 0) {
        newline = memchr(c->buf + c->len, '\n', (size_t) n);
        c->len += (size_t) n;
        if (newline != NULL)
            c->len = (size_t) (newline - c->buf) + 1;
        else if (c->len < size - 1)
            return 0;
    }
    c->buf[c->len] = '\0';
    return 1;
}

/*
 * print_message: prints the line without its line ending. A client may send
 * any bytes, including terminal escape sequences, so everything that is not
 * a printable character is shown as \xHH instead of being sent to the
 * terminal as it is (a backslash itself is shown as \\).
 */
static void print_message(const char *buf, size_t len)
{
    size_t i;
    unsigned char c;

    if (len > 0 && buf[len - 1] == '\n')
        len--;
    if (len > 0 && buf[len - 1] == '\r')
        len--;
    fputs("Here is the message: ", stdout);
    for (i = 0; i < len; i++) {
        c = (unsigned char) buf[i];
        if (c == '\\')
            fputs("\\\\", stdout);
        else if (c >= 0x20 && c < 0x7f)
            putchar(c);
        else
            printf("\\x%02x", (unsigned) c);
    }
    putchar('\n');
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

/* close_client: closes c's connection and frees its slot for the next client. */
static void close_client(struct client *c)
{
    close(c->fd);
    c->fd = -1;
    c->answered = 0;
    c->len = 0;
}

/*
 * hang_up: closes a connection without resetting it. Closing a socket that
 * still holds unread input makes the kernel send a reset (RST) instead of an
 * end of file. A reply still in our send buffer is then lost. A reply that
 * has reached the client stays readable on Linux (RFC 9293 lets a system
 * flush it), but the client's next write, shutdown or read fails, so our
 * client reports an error, after the reply or instead of it. So we first
 * send our end of file (shutdown), then read and discard what the client
 * still sends until it closes its side, and only then close. Here that
 * reading is dostuff()'s, a piece each time poll() says there is one:
 * waiting for the client's end of file in this function would hold up
 * every other client for as long as this one keeps its side open.
 */
static void hang_up(struct client *c)
{
    if (shutdown(c->fd, SHUT_WR) == 0)
        c->answered = 1;
    else
        close_client(c);
}

/*
 * dostuff: takes client c one step further, each time poll() says its socket
 * has something for us (bytes, its end of file or an error). Until its line
 * is complete, the bytes go into its buffer; then the line is printed and
 * answered, and we hang up; after that, what the client still sends is
 * thrown away until its end of file, and the slot is freed. (The name is the
 * one the classic tutorial gave the function that serves a client.) What
 * goes wrong here is this one client's problem: it is reported on stderr,
 * the client is dropped, and the server carries on.
 */
static void dostuff(struct client *c)
{
    char discard[BUFSIZE];
    ssize_t n;
    int complete;

    if (c->answered) {
        n = read(c->fd, discard, sizeof discard);
        if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR))
            close_client(c);
        return;
    }
    complete = read_message(c);
    if (complete < 0) {
        perror("ERROR reading from socket");
        close_client(c);
        return;
    }
    if (complete == 0)
        return;
    if (c->len > 0) {
        print_message(c->buf, c->len);
        /* The socket is non-blocking, so a full send buffer would make
         * write() fail with EAGAIN instead of waiting. It cannot be full:
         * the reply is the first thing we send on this connection, and a
         * send buffer holds kilobytes (tcp(7), tcp_wmem). */
        if (write_all(c->fd, REPLY, strlen(REPLY)) < 0)
            perror("ERROR writing to socket");
    }
    hang_up(c);
}

/*
 * accept_client: takes the next client from the listen queue into the free
 * slot c. poll() said that one was waiting, but it may have gone since (a
 * reset); a blocking accept() would then wait for the next client to come,
 * with every connected client waiting too (accept(2), NOTES). The listening
 * socket is non-blocking, so accept() fails with EAGAIN or EWOULDBLOCK
 * instead, and we go back to poll().
 */
static void accept_client(int sockfd, struct client *c)
{
    int newsockfd;

    /* NULL, NULL: we do not need to know who the client is. */
    newsockfd = accept(sockfd, NULL, NULL);
    if (newsockfd < 0) {
        /* e.g. ECONNABORTED, where the system reports a client that gave
         * up while it waited: skip that client, do not stop serving. */
        if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
            perror("ERROR on accept");
        return;
    }
    /* On Linux the new socket does not inherit O_NONBLOCK from the
     * listening one, as it does on BSD (accept(2), NOTES): we ask again. */
    if (set_nonblocking(newsockfd) < 0) {
        perror("ERROR on fcntl");
        close(newsockfd);
        return;
    }
    c->fd = newsockfd;
}

int main(int argc, char *argv[])
{
    struct client clients[MAX_CLIENTS];
    /* One entry per slot, and the last one for the listening socket. */
    struct pollfd fds[MAX_CLIENTS + 1];
    struct client *free_slot;
    int sockfd, i;

    if (argc != 2) {
        fprintf(stderr, "usage: %s PORT   (0 lets the kernel choose a free port)\n", argv[0]);
        exit(2);
    }
    /* Write each line out as soon as it is complete, also into a file or a
     * pipe, where stdout would otherwise wait for a full buffer. */
    setvbuf(stdout, NULL, _IOLBF, 0);
    /* A write that fails with EPIPE (the client has gone) also raises
     * SIGPIPE, which kills the process. Ignored, we just report the error. */
    signal(SIGPIPE, SIG_IGN);

    sockfd = open_listener(parse_port(argv[1]));
    if (set_nonblocking(sockfd) < 0)
        error("ERROR on fcntl");
    announce_port(sockfd);

    for (i = 0; i < MAX_CLIENTS; i++) {
        clients[i].fd = -1;
        clients[i].answered = 0;
        clients[i].len = 0;
    }
    for (;;) {
        /* poll() skips an entry whose descriptor is negative: a free slot,
         * and the listening socket while no slot is free. The next client
         * then waits in the listen queue, where the kernel keeps it, until
         * a connection is closed. */
        free_slot = NULL;
        for (i = 0; i < MAX_CLIENTS; i++) {
            fds[i].fd = clients[i].fd;
            fds[i].events = POLLIN;
            if (clients[i].fd < 0 && free_slot == NULL)
                free_slot = &clients[i];
        }
        fds[MAX_CLIENTS].fd = free_slot != NULL ? sockfd : -1;
        fds[MAX_CLIENTS].events = POLLIN;
        /* The one place where the server waits: until some socket has
         * something for us, however long that takes (-1). */
        if (poll(fds, MAX_CLIENTS + 1, -1) < 0) {
            if (errno == EINTR)
                continue;
            error("ERROR on poll");
        }
        for (i = 0; i < MAX_CLIENTS; i++)
            if (fds[i].revents != 0)
                dostuff(&clients[i]);
        if (fds[MAX_CLIENTS].revents != 0)
            accept_client(sockfd, free_slot);
    }
}
