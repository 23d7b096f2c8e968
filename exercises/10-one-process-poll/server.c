/*
 * exercises/10-one-process-poll/server.c - the starter of exercise 10: step
 * 2's server, which serves one client at a time, as it is.
 *
 * The task (README.md in this folder): serve many clients at once in this
 * one process, with one thread, no fork(): wait in poll() on the listening
 * socket and on every connection together, and give each connection a buffer
 * of its own for the part of its line that has come so far. The places to
 * change are marked TODO(exercise).
 *
 * Build and check:  make exercise EX=10
 * Run by hand:      ./exercises/10-one-process-poll/server 0
 * Talk to it:       ./client/client localhost PORT     (in a second terminal)
 * PORT 0 lets the kernel pick a free port; the first line printed names it.
 * Read more:        tutorial.md, chapter "Other designs: poll, threads, a pool".
 */
#define _POSIX_C_SOURCE 200809L

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <unistd.h>

/* TODO(exercise): at most 32 clients connected at once (MAX_CLIENTS, say),
 * and a struct for one client: its socket and its own buffer. */
#define BUFSIZE 256
#define REPLY "I got your message"

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
 * read_message: reads one line, up to size - 1 bytes, into buf. TCP delivers
 * a stream of bytes, not messages: one line may arrive in several pieces, so
 * we keep reading until a newline, end of file or a full buffer. Anything
 * after the newline is ignored. Returns the number of bytes kept (0 when the
 * client sent nothing at all), or -1 with errno set.
 *
 * TODO(exercise): this loop calls read() until the newline has come. With
 * many clients, a read() that waits for one client's next piece makes all
 * of them wait. Read once, from a client that poll() says has something for
 * us, into that client's own buffer, and say whether its line is complete.
 */
static ssize_t read_message(int sockfd, char *buf, size_t size)
{
    size_t len = 0;
    ssize_t n;
    char *newline;

    while (len < size - 1) {
        n = read(sockfd, buf + len, size - 1 - len);
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
    buf[len] = '\0';
    return (ssize_t) len;
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
 * still sends until it closes its side, and only then close.
 *
 * TODO(exercise): this loop waits for the client's end of file, and a
 * client that never closes would hold up all the others. Send the end of
 * file here; read and discard the rest later, as poll() reports it.
 */
static void hang_up(int sockfd)
{
    char discard[BUFSIZE];
    ssize_t n;

    if (shutdown(sockfd, SHUT_WR) == 0) {
        do
            n = read(sockfd, discard, sizeof discard);
        while (n > 0 || (n < 0 && errno == EINTR));
    }
    close(sockfd);
}

/*
 * dostuff: serves one client on its connected socket: reads its message,
 * prints it, replies and hangs up. (The name is the one the classic tutorial
 * gave it.) What goes wrong here is this one client's problem, so it is
 * reported on stderr and the function returns; the server carries on.
 *
 * TODO(exercise): serve the client a step at a time, each time poll() says
 * its socket has something for us: a piece of its line, its end of file or
 * an error.
 */
static void dostuff(int sockfd)
{
    char buffer[BUFSIZE];
    ssize_t n;

    n = read_message(sockfd, buffer, sizeof buffer);
    if (n < 0)
        perror("ERROR reading from socket");
    if (n > 0) {
        print_message(buffer, (size_t) n);
        if (write_all(sockfd, REPLY, strlen(REPLY)) < 0)
            perror("ERROR writing to socket");
    }
    hang_up(sockfd);
}

int main(int argc, char *argv[])
{
    int sockfd, newsockfd;

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

    /* TODO(exercise): make the listening socket non-blocking (fcntl,
     * O_NONBLOCK), then, instead of this loop, wait in poll() on the
     * listening socket and on every connection together (#include
     * <poll.h>, <fcntl.h>). Accept only while fewer than 32 clients are
     * connected; serve each connection that has something to read. */
    for (;;) {
        /* NULL, NULL: we do not need to know who the client is. */
        newsockfd = accept(sockfd, NULL, NULL);
        if (newsockfd < 0) {
            /* e.g. ECONNABORTED, where the system reports a client that gave
             * up while it waited: skip that client, do not stop serving. */
            perror("ERROR on accept");
            continue;
        }
        dostuff(newsockfd);
    }
}
