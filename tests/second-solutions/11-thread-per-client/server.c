/*
 * tests/second-solutions/11-thread-per-client/server.c - a second,
 * independent solution of exercise 11 (a thread per client), written from
 * the exercise's README.md and starter alone, without reading the reference
 * solution or the checker first. It exists to show that the checker accepts
 * a correct solution that is not the reference.
 *
 * How it differs from the hints: the descriptor travels in the pointer
 * argument itself, cast through intptr_t, so there is nothing to malloc()
 * and free(); each thread detaches itself as it starts, with
 * pthread_detach(pthread_self()), instead of being created detached; and
 * print_message() builds the whole line in a buffer of its own and hands it
 * to stdio in one call, which locks stdout for that call, instead of taking
 * the lock with flockfile() around many calls.
 *
 * Build:  cc -std=c99 -pedantic -Wall -Wextra -Werror -O2 -o server server.c -pthread
 * Run:    ./server 0
 */
#define _POSIX_C_SOURCE 200809L

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <unistd.h>

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
 * terminal as it is (a backslash itself is shown as \\). Threads share
 * stdout, and stdio locks it for one call at a time: the line is built here
 * first, then written with a single fputs(), so no other thread's output
 * can come into the middle of it.
 */
static void print_message(const char *buf, size_t len)
{
    static const char hex[] = "0123456789abcdef";
    /* The prefix, 4 bytes at most for each byte of the line, the newline
     * and the '\0'. */
    char line[sizeof "Here is the message: " + 4 * BUFSIZE + 1];
    size_t i, out;
    unsigned char c;

    if (len > 0 && buf[len - 1] == '\n')
        len--;
    if (len > 0 && buf[len - 1] == '\r')
        len--;
    strcpy(line, "Here is the message: ");
    out = strlen(line);
    for (i = 0; i < len && i < BUFSIZE; i++) {
        c = (unsigned char) buf[i];
        if (c == '\\') {
            line[out++] = '\\';
            line[out++] = '\\';
        } else if (c >= 0x20 && c < 0x7f) {
            line[out++] = (char) c;
        } else {
            line[out++] = '\\';
            line[out++] = 'x';
            line[out++] = hex[c >> 4];
            line[out++] = hex[c & 0x0f];
        }
    }
    line[out++] = '\n';
    line[out] = '\0';
    fputs(line, stdout);
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

/*
 * serve_client: the thread that serves one client. ARG is not a pointer to
 * anything: it is the descriptor itself, cast to a pointer by main(), so
 * it cannot change under the thread when main() accepts the next client.
 * The thread detaches itself first: nobody will join it, and a detached
 * thread gives its stack back as it ends.
 */
static void *serve_client(void *arg)
{
    int sockfd = (int) (intptr_t) arg;

    pthread_detach(pthread_self());
    dostuff(sockfd);
    return NULL;
}

int main(int argc, char *argv[])
{
    int sockfd, newsockfd;
    pthread_t tid;
    int err;

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

    for (;;) {
        /* NULL, NULL: we do not need to know who the client is. */
        newsockfd = accept(sockfd, NULL, NULL);
        /* Not every system restarts accept() after a signal handler ran,
         * SA_RESTART or not. EINTR means only that: try again. */
        if (newsockfd < 0 && errno == EINTR)
            continue;
        if (newsockfd < 0) {
            /* e.g. ECONNABORTED, where the system reports a client that gave
             * up while it waited: skip that client, do not stop serving. */
            perror("ERROR on accept");
            continue;
        }
        /* The descriptor goes by value, in the pointer: converting an int
         * to intptr_t and then to a pointer, and back, gives the int again
         * on every POSIX system (the C standard leaves the conversion to
         * the implementation). */
        err = pthread_create(&tid, NULL, serve_client, (void *) (intptr_t) newsockfd);
        if (err != 0) {
            /* pthread_create() returns its error instead of setting errno;
             * errno is this thread's own, so perror() may report it. This
             * client goes unserved; the others need not. The connection is
             * ours to close: no thread has it. */
            errno = err;
            perror("ERROR on pthread_create");
            close(newsockfd);
        }
        /* No close(newsockfd) here: the thread shares our descriptors, and
         * closing it would close it under the thread that serves it. */
    }
}
