/*
 * tests/wrong-solutions/11-thread-per-client/main-closes.c
 *
 * A plausible wrong answer to exercise 11: the reference solution with one
 * bug put in on purpose, for the proof that the checker rejects it in the
 * lesson test the bug is about (exercises/lib/prove.sh wrong-all).
 *
 * The bug: the main thread closes the connection after pthread_create(), as
 * step 4's parent closed its copy. There is no copy: the thread's descriptor
 * is closed under it (or, once accept() reuses the number, is another
 * client's), and its client gets no reply.
 * Caught by: 20 clients at once
 */
#define _POSIX_C_SOURCE 200809L

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
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
    /* Every thread writes to the one stdout. Each stdio call locks it on
     * its own, so two threads could mix their characters within a line;
     * holding the lock for the whole line keeps each line whole. */
    flockfile(stdout);
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
    funlockfile(stdout);
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
 * serve_client: where each thread starts. ARG points to the descriptor of
 * its connection, in memory of its own: the main thread's newsockfd is
 * overwritten by the next accept(), perhaps before this thread has run.
 */
static void *serve_client(void *arg)
{
    int sockfd = *(int *) arg;

    free(arg);
    dostuff(sockfd);
    return NULL;
}

int main(int argc, char *argv[])
{
    int sockfd, newsockfd;
    int *arg;
    int err;
    pthread_t tid;
    pthread_attr_t attr;

    if (argc != 2) {
        fprintf(stderr, "usage: %s PORT   (0 lets the kernel choose a free port)\n", argv[0]);
        exit(2);
    }
    /* Write each line out as soon as it is complete, also into a file or a
     * pipe, where stdout would otherwise wait for a full buffer. */
    setvbuf(stdout, NULL, _IOLBF, 0);
    /* A write that fails with EPIPE (the client has gone) also raises
     * SIGPIPE, which kills the process. Ignored, we just report the error.
     * The disposition belongs to the process: this one call covers every
     * thread, and without it one client that leaves early would end them
     * all. */
    signal(SIGPIPE, SIG_IGN);

    sockfd = open_listener(parse_port(argv[1]));
    announce_port(sockfd);
    /* Detached threads: nobody waits for them, and each one's stack is
     * given back as soon as it ends. A thread that is neither detached nor
     * joined keeps its stack for good, as a zombie keeps its exit status. */
    if (pthread_attr_init(&attr) != 0
        || pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED) != 0) {
        fprintf(stderr, "ERROR on pthread_attr_init\n");
        exit(1);
    }

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
        arg = malloc(sizeof *arg);
        if (arg == NULL) {
            perror("ERROR on malloc");
            close(newsockfd);
            continue;
        }
        *arg = newsockfd;
        err = pthread_create(&tid, &attr, serve_client, arg);
        if (err != 0) {
            /* e.g. the limit on processes (threads count too) is reached.
             * pthread_create() returns its error instead of setting errno;
             * errno is our thread's own, so we may set it for perror(). */
            errno = err;
            perror("ERROR on pthread_create");
            free(arg);
            close(newsockfd);
            continue;
        }
        /* As step 4's parent: the thread serves the client, so our
         * descriptor must go. */
        close(newsockfd);
    }
}
