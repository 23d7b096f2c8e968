/*
 * tests/second-solutions/10-one-process-poll/server.c - a second,
 * independent solution of exercise 10 (one process, many clients: poll),
 * written from the exercise's README.md and starter alone, without reading
 * the reference solution or the checker first. It exists to show that the
 * checker accepts a correct solution that is not the reference.
 *
 * How it differs from the hints: only the listening socket is
 * non-blocking; the connections stay blocking, which is safe because each
 * is read exactly once per time poll() reports it (then read() has bytes,
 * an end of file or an error to return, and does not wait). The pollfd
 * array is not built afresh each time round: it lives as long as the
 * server, entry 0 for the listening socket and one entry per open
 * connection after it, and a closed connection's entry is filled at once
 * with the last one (the clients' buffers move with them, in an array
 * parallel to it). A free slot is then simply the end of the array. When
 * poll() reports the listening socket, the server accepts every client that
 * is waiting (until the 32 places are full or accept() says EAGAIN), not
 * just one.
 *
 * Build:  cc -std=c99 -pedantic -Wall -Wextra -Werror -O2 -o server server.c
 * Run:    ./server 0
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
#define MAX_CLIENTS 32

/*
 * One connection's state, kept between the times poll() reports it: the
 * part of its line that has come so far, and where it has got to. The
 * descriptor itself is in the pollfd array, at the same index.
 */
struct client {
    char buf[BUFSIZE];
    size_t len;         /* bytes of the line so far */
    int eof;            /* the client's end of file has come */
    int answered;       /* replied and shut down: only its end of file is awaited */
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
 * read_message: reads once from the client's socket into its own buffer, up
 * to BUFSIZE - 1 bytes in all. TCP delivers a stream of bytes, not messages:
 * one line may arrive in several pieces, here one piece per call. The line
 * is complete at a newline (anything after it is ignored), at the client's
 * end of file or when the buffer is full. Returns 1 when it is complete
 * (c->len may be 0: the client sent nothing at all), 0 when more is to come,
 * or -1 with errno set. Only one read(): poll() said it will not wait, and a
 * second one might.
 */
static int read_message(int sockfd, struct client *c)
{
    ssize_t n;
    char *newline;

    n = read(sockfd, c->buf + c->len, BUFSIZE - 1 - c->len);
    if (n < 0)
        return -1;
    if (n == 0) {
        c->eof = 1;
    } else {
        newline = memchr(c->buf + c->len, '\n', (size_t) n);
        c->len += (size_t) n;
        if (newline != NULL)
            c->len = (size_t) (newline - c->buf) + 1;
        else if (c->len < BUFSIZE - 1)
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

/*
 * hang_up: closes a connection without resetting it. Closing a socket that
 * still holds unread input makes the kernel send a reset (RST) instead of an
 * end of file. A reply still in our send buffer is then lost. A reply that
 * has reached the client stays readable on Linux (RFC 9293 lets a system
 * flush it), but the client's next write, shutdown or read fails, so our
 * client reports an error, after the reply or instead of it. So we first
 * send our end of file (shutdown), then read and discard what the client
 * still sends until it closes its side, and only then close. Here that
 * reading is not a loop: hang_up() only sends the end of file, and marks the
 * client answered; dostuff() reads and discards once each time poll()
 * reports the client, and closes at its end of file. Returns 0 when the
 * connection can be closed now (the shutdown failed, or the client's end of
 * file has come already), 1 when it stays open.
 */
static int hang_up(int sockfd, struct client *c)
{
    if (c->eof || shutdown(sockfd, SHUT_WR) < 0)
        return 0;
    c->answered = 1;
    return 1;
}

/*
 * dostuff: takes one client one step further, when poll() has reported its
 * socket (the name is the one the classic tutorial gave the function that
 * served a client). Until its line is complete, one piece of the line; then
 * it prints the line, replies and hangs up; after that, one read of what the
 * client still sends, until its end of file. What goes wrong here is this
 * one client's problem: it is reported on stderr, and the connection is
 * closed. Returns 1 to keep the connection, 0 to close it.
 */
static int dostuff(int sockfd, struct client *c)
{
    char discard[BUFSIZE];
    ssize_t n;
    int r;

    if (c->answered) {
        /* An error here (a reset after the reply) is no news: the client
         * has its reply, so it is not reported, as step 2 did not. */
        n = read(sockfd, discard, sizeof discard);
        return n > 0 || (n < 0 && errno == EINTR);
    }
    r = read_message(sockfd, c);
    if (r < 0 && errno == EINTR)
        return 1;
    if (r < 0) {
        perror("ERROR reading from socket");
        return 0;
    }
    if (r == 0)
        return 1;
    if (c->len > 0) {
        print_message(c->buf, c->len);
        if (write_all(sockfd, REPLY, strlen(REPLY)) < 0)
            perror("ERROR writing to socket");
    }
    return hang_up(sockfd, c);
}

/*
 * set_nonblocking: a non-blocking socket makes a call that would wait fail
 * with EAGAIN or EWOULDBLOCK instead. Failure is fatal: without it, one
 * client that resets between poll() and accept() could stop the server.
 */
static void set_nonblocking(int fd)
{
    int flags = fcntl(fd, F_GETFL);

    if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0)
        error("ERROR on fcntl");
}

/*
 * accept_clients: accepts the clients that wait in the listen queue, into
 * the end of the arrays, while there is room. Returns the new number of
 * entries. A client that gave up before we came (ECONNABORTED, say) is
 * reported and skipped; the others wait for the next round.
 */
static nfds_t accept_clients(int sockfd, struct pollfd *fds, struct client *clients, nfds_t nfds)
{
    int newsockfd;

    while (nfds < MAX_CLIENTS + 1) {
        /* NULL, NULL: we do not need to know who the client is. */
        newsockfd = accept(sockfd, NULL, NULL);
        if (newsockfd < 0 && errno == EINTR)
            continue;
        if (newsockfd < 0) {
            /* POSIX lets accept() say "nobody waits" with either name. */
            if (errno != EAGAIN && errno != EWOULDBLOCK)
                perror("ERROR on accept");
            break;
        }
        fds[nfds].fd = newsockfd;
        fds[nfds].events = POLLIN;
        fds[nfds].revents = 0;
        memset(&clients[nfds], 0, sizeof clients[nfds]);
        nfds++;
    }
    return nfds;
}

int main(int argc, char *argv[])
{
    /* Entry 0 is the listening socket; entries 1 to nfds - 1 are the open
     * connections, and clients[i] is the state of fds[i]'s client. */
    static struct pollfd fds[MAX_CLIENTS + 1];
    static struct client clients[MAX_CLIENTS + 1];
    nfds_t nfds = 1, i;
    int sockfd;

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
    announce_port(sockfd);

    set_nonblocking(sockfd);
    fds[0].fd = sockfd;
    fds[0].events = POLLIN;

    for (;;) {
        /* With every place taken, the listening socket sits out (poll()
         * skips a negative descriptor), and new clients wait in the listen
         * queue. Left in, it would make poll() return at once, again and
         * again. */
        fds[0].fd = nfds < MAX_CLIENTS + 1 ? sockfd : -1;
        if (poll(fds, nfds, -1) < 0) {
            if (errno == EINTR)
                continue;
            error("ERROR on poll");
        }
        i = 1;
        while (i < nfds) {
            if (fds[i].revents == 0 || dostuff(fds[i].fd, &clients[i])) {
                i++;
                continue;
            }
            /* Closed: the last entry takes its place, with its revents of
             * this round, so it is looked at next, at the same i. */
            close(fds[i].fd);
            nfds--;
            fds[i] = fds[nfds];
            clients[i] = clients[nfds];
        }
        if (fds[0].revents != 0)
            nfds = accept_clients(sockfd, fds, clients, nfds);
    }
}
