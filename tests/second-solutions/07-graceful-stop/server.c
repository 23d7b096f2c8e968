/*
 * tests/second-solutions/07-graceful-stop/server.c - a second, independent
 * solution of exercise 07 (stop gracefully on SIGTERM), written from the
 * exercise's README.md and starter alone, without reading the reference
 * solution or the checker first. It exists to show that the checker accepts
 * a correct solution that is not the reference.
 *
 * How it differs from the obvious approach (a flag, and a handler that
 * closes the listening socket or calls _exit): the handlers decide nothing.
 * Each signal only writes one byte into a self-pipe, 'T' for SIGTERM and 'C'
 * for SIGCHLD; the main program waits with poll() on the listening socket
 * and the pipe, and does everything itself: it closes the listening socket
 * after the first 'T', waits for the children while it counts more 'T's,
 * and returns from main (status 0) when none is left or at the second 'T'.
 * The children are left to serve their clients.
 *
 * Build:  cc -std=c99 -pedantic -Wall -Wextra -Werror -O2 -o server server.c
 * Run:    ./server 5000      and then:  kill -TERM PID
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
#include <sys/wait.h>
#include <unistd.h>

#define BUFSIZE 256
#define REPLY "I got your message"

/* The self-pipe: the handlers write into wake_pipe[1], the main program
 * reads wake_pipe[0]. Set up once in main, before any handler is installed. */
static int wake_pipe[2] = { -1, -1 };

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
 * wake_main: writes one byte into the self-pipe. write() is
 * async-signal-safe. The write end is non-blocking: when the pipe is full,
 * the byte is dropped and the handler goes on, and the bytes already there
 * will wake the main program all the same. It is called by handlers only,
 * and they save errno around it.
 */
static void wake_main(char what)
{
    ssize_t n;

    do
        n = write(wake_pipe[1], &what, 1);
    while (n < 0 && errno == EINTR);
}

/*
 * note_sigterm: the SIGTERM handler. It only tells the main program; the
 * main program decides what a first and a second SIGTERM mean.
 */
static void note_sigterm(int signo)
{
    int saved_errno = errno;

    (void) signo;
    wake_main('T');
    errno = saved_errno;
}

/*
 * reap_children: the SIGCHLD handler. It collects every child that has
 * ended, not just one: while a signal is pending, more of the same kind are
 * not counted, so one SIGCHLD may stand for many finished children. WNOHANG
 * makes waitpid() return 0 instead of blocking once only live children are
 * left. The handler may interrupt the main program between a failing call
 * and its look at errno, and waitpid() sets errno, so we put it back.
 */
static void reap_children(int signo)
{
    int saved_errno = errno;

    (void) signo;
    while (waitpid(-1, NULL, WNOHANG) > 0)
        continue;
    /* While the server stops, the main program waits for this. */
    wake_main('C');
    errno = saved_errno;
}

/*
 * install_handler: makes HANDLER run whenever SIGNO arrives. SA_RESTART asks
 * the kernel to resume a system call that the handler interrupted instead of
 * failing it with EINTR (Linux never resumes poll(); it fails with EINTR, and
 * the loop goes round). sa_mask blocks the other signal while a handler runs,
 * so the two handlers never interrupt each other.
 */
static void install_handler(int signo, void (*handler)(int))
{
    struct sigaction sa;

    memset(&sa, 0, sizeof sa);
    sa.sa_handler = handler;
    sigemptyset(&sa.sa_mask);
    sigaddset(&sa.sa_mask, SIGCHLD);
    sigaddset(&sa.sa_mask, SIGTERM);
    sa.sa_flags = SA_RESTART;
    if (sigaction(signo, &sa, NULL) < 0)
        error("ERROR on sigaction");
}

/*
 * set_nonblocking: turns O_NONBLOCK on (ON is 1) or off (ON is 0) for fd.
 * Returns 0, or -1 with errno set.
 */
static int set_nonblocking(int fd, int on)
{
    int flags = fcntl(fd, F_GETFL);

    if (flags < 0)
        return -1;
    flags = on ? flags | O_NONBLOCK : flags & ~O_NONBLOCK;
    return fcntl(fd, F_SETFL, flags);
}

/*
 * open_wake_pipe: makes the self-pipe. Both ends are non-blocking: the
 * handler must never wait on a full pipe, and the main program empties the
 * pipe with read() until it would block.
 */
static void open_wake_pipe(void)
{
    if (pipe(wake_pipe) < 0)
        error("ERROR on pipe");
    if (set_nonblocking(wake_pipe[0], 1) < 0 || set_nonblocking(wake_pipe[1], 1) < 0)
        error("ERROR on fcntl");
}

/*
 * count_sigterms: empties the self-pipe and returns how many SIGTERMs it
 * held (the 'C' bytes only served to wake us up).
 */
static int count_sigterms(void)
{
    char bytes[64];
    ssize_t n, i;
    int terms = 0;

    for (;;) {
        n = read(wake_pipe[0], bytes, sizeof bytes);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return terms;  /* EAGAIN: empty for now */
        for (i = 0; i < n; i++)
            if (bytes[i] == 'T')
                terms++;
    }
}

/*
 * wait_for: sleeps until the self-pipe, or LISTENER when it is not -1, has
 * something to read. Returns poll()'s revents for LISTENER (0 when it was
 * not asked about or is not ready). EINTR only means a handler ran, and the
 * byte it wrote is waiting for us: the caller looks and comes back.
 */
static short wait_for(int listener)
{
    struct pollfd pfd[2];
    nfds_t count = listener >= 0 ? 2 : 1;

    pfd[0].fd = wake_pipe[0];
    pfd[0].events = POLLIN;
    pfd[0].revents = 0;
    pfd[1].fd = listener;
    pfd[1].events = POLLIN;
    pfd[1].revents = 0;
    if (poll(pfd, count, -1) < 0) {
        if (errno != EINTR)
            error("ERROR on poll");
        return 0;
    }
    return count == 2 ? pfd[1].revents : 0;
}

/*
 * wait_for_children: the end of a graceful stop. Waits until every child has
 * ended (waitpid() fails with ECHILD; the SIGCHLD handler may have collected
 * some or all of them first), or until one more SIGTERM arrives, whichever
 * comes first. The SIGCHLD handler writes 'C' after it has collected, so a
 * child that ends after our waitpid() looked still wakes poll().
 */
static void wait_for_children(void)
{
    pid_t pid;

    for (;;) {
        pid = waitpid(-1, NULL, WNOHANG);
        if (pid > 0 || (pid < 0 && errno == EINTR))
            continue;
        if (pid < 0) {
            if (errno != ECHILD)
                perror("ERROR on waitpid");
            return;
        }
        wait_for(-1);
        if (count_sigterms() > 0) {
            fputs("Second SIGTERM: exiting without waiting for the children\n", stderr);
            return;
        }
    }
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

int main(int argc, char *argv[])
{
    int sockfd, newsockfd;
    int terms;
    short revents;
    pid_t pid;

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
    /* Non-blocking: the loop waits in poll(), never in accept(), where a
     * SIGTERM could not reach it until the next client came. */
    if (set_nonblocking(sockfd, 1) < 0)
        error("ERROR on fcntl");
    /* Before the port is announced: whoever reads that line may send
     * SIGTERM at once. */
    open_wake_pipe();
    install_handler(SIGTERM, note_sigterm);
    install_handler(SIGCHLD, reap_children);
    announce_port(sockfd);

    for (;;) {
        revents = wait_for(sockfd);
        terms = count_sigterms();
        if (terms > 0)
            break;
        if (!(revents & POLLIN))
            continue;
        /* NULL, NULL: we do not need to know who the client is. */
        newsockfd = accept(sockfd, NULL, NULL);
        if (newsockfd < 0) {
            /* EAGAIN or EWOULDBLOCK: the client left before we took it;
             * nothing to say. Anything else (e.g. ECONNABORTED, where the
             * system reports such a client that way) is reported. Neither
             * stops the server. */
            if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
                perror("ERROR on accept");
            continue;
        }
        /* On BSD and macOS, the new socket inherits O_NONBLOCK from the
         * listening one (not on Linux); the child wants a plain one. */
        if (set_nonblocking(newsockfd, 0) < 0) {
            perror("ERROR on fcntl");
            close(newsockfd);
            continue;
        }
        pid = fork();
        if (pid < 0) {
            /* e.g. the limit on processes is reached. This client goes
             * unserved; the others need not. close(), not hang_up(): the
             * parent must never wait on one client. */
            perror("ERROR on fork");
            close(newsockfd);
            continue;
        }
        if (pid == 0) {
            /* The child: it serves this one client and exits. The
             * listening socket and the self-pipe are the parent's business,
             * so it lets go of its copies and of the handlers that write
             * into it: a SIGTERM sent to the child ends it, as it would
             * any program. */
            close(sockfd);
            close(wake_pipe[0]);
            close(wake_pipe[1]);
            signal(SIGTERM, SIG_DFL);
            signal(SIGCHLD, SIG_DFL);
            dostuff(newsockfd);
            /* _exit, not exit: exit() would flush the stdio buffers this
             * child copied from the parent, printing their contents a
             * second time. (Line buffering keeps them empty here; _exit
             * means we do not have to rely on that.) */
            _exit(0);
        }
        /* The parent: the child holds its own copy of the connection.
         * Ours must go, or the parent would keep a descriptor for every
         * client it ever had, until accept() fails for want of one. */
        close(newsockfd);
    }

    /* SIGTERM: from now on the kernel refuses new connections. */
    close(sockfd);
    if (terms > 1) {
        fputs("Two SIGTERMs: exiting without waiting for the children\n", stderr);
        return 0;
    }
    fputs("SIGTERM: no new clients; waiting for the children to finish\n", stderr);
    wait_for_children();
    return 0;
}
