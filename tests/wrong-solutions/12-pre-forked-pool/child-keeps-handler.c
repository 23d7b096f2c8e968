/*
 * tests/wrong-solutions/12-pre-forked-pool/child-keeps-handler.c
 *
 * A plausible wrong answer to exercise 12: the reference solution with one
 * bug put in on purpose, for the proof that the checker rejects it in the
 * lesson test the bug is about (exercises/lib/prove.sh wrong-all).
 *
 * The bug: the child keeps the parent's SIGTERM handler (it restores the
 * signal mask, but not SIGTERM's action). SIGTERM then only sets the child's
 * own copy of the flag, which nothing in the child reads: accept() fails with
 * EINTR and is called again, the child lives on, and the parent, which waits
 * for its children, waits for ever.
 * Caught by: SIGTERM to the parent
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
#include <sys/wait.h>
#include <unistd.h>

#define BUFSIZE 256
#define REPLY "I got your message"

#define DEFAULT_POOL_SIZE 4
#define MAX_POOL_SIZE 1000

/*
 * The pool: the PID of each child, 0 for a place that is empty. The SIGCHLD
 * handler empties places, the main loop fills them. The main loop keeps
 * SIGCHLD blocked except while it sleeps in sigsuspend(), so the handler
 * runs only there, never half-way through the main loop's look at the
 * array (POSIX allows a handler run that way, when a pending signal is
 * delivered by the call that unblocks it, to touch such data: XSH 2.4.3).
 */
static pid_t pool[MAX_POOL_SIZE];

/* Set by SIGTERM: the parent ends its children, then itself. */
static volatile sig_atomic_t stopping;

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
 * read_pool_size: the number of children, from the environment variable
 * POOL_SIZE, or DEFAULT_POOL_SIZE without it. Checked like the port: digits
 * only, and a number that makes sense.
 */
static long read_pool_size(void)
{
    const char *text = getenv("POOL_SIZE");
    char *end;
    long size;

    if (text == NULL)
        return DEFAULT_POOL_SIZE;
    errno = 0;
    size = strtol(text, &end, 10);
    if (text[0] < '0' || text[0] > '9' || *end != '\0' || errno != 0
        || size < 1 || size > MAX_POOL_SIZE) {
        fprintf(stderr, "ERROR, bad POOL_SIZE '%s': expected a number from 1 to %d\n", text, MAX_POOL_SIZE);
        exit(2);
    }
    return size;
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

/* forget_child: empties the place of the child PID in the pool. */
static void forget_child(pid_t pid)
{
    int i;

    for (i = 0; i < MAX_POOL_SIZE; i++)
        if (pool[i] == pid)
            pool[i] = 0;
}

/*
 * reap_children: the SIGCHLD handler. It collects every child that has
 * ended, not just one: while a signal is pending, more of the same kind are
 * not counted, so one SIGCHLD may stand for many finished children. WNOHANG
 * makes waitpid() return 0 instead of blocking once only live children are
 * left. The handler may interrupt the main program between a failing call
 * and its look at errno, and waitpid() sets errno, so we put it back.
 * Each child collected leaves an empty place in the pool, which the main
 * loop fills with a new child as soon as the handler returns.
 */
static void reap_children(int signo)
{
    int saved_errno = errno;
    pid_t pid;

    (void) signo;
    while ((pid = waitpid(-1, NULL, WNOHANG)) > 0)
        forget_child(pid);
    errno = saved_errno;
}

/*
 * install_reaper: makes reap_children() run whenever a child ends.
 * SA_RESTART asks the kernel to resume a system call that the handler
 * interrupted, such as the parent's accept(), instead of failing it with
 * EINTR.
 */
static void install_reaper(void)
{
    struct sigaction sa;

    memset(&sa, 0, sizeof sa);
    sa.sa_handler = reap_children;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;
    if (sigaction(SIGCHLD, &sa, NULL) < 0)
        error("ERROR on sigaction");
}

/* note_stop: the SIGTERM handler. The main loop does the work. */
static void note_stop(int signo)
{
    (void) signo;
    stopping = 1;
}

/* install_stopper: makes note_stop() run when SIGTERM comes. */
static void install_stopper(void)
{
    struct sigaction sa;

    memset(&sa, 0, sizeof sa);
    sa.sa_handler = note_stop;
    sigemptyset(&sa.sa_mask);
    if (sigaction(SIGTERM, &sa, NULL) < 0)
        error("ERROR on sigaction");
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
 * serve_clients: what each child of the pool does, until it is killed:
 * accept a client, serve it, accept the next. All the children wait in
 * accept() on the same listening socket, and the kernel gives each new
 * connection to one of them. The child keeps the listening socket (step 4's
 * child closed it): it is the one thing the child is for.
 */
static void serve_clients(int sockfd, const sigset_t *mask)
{
    int newsockfd;

    /* A child starts with a copy of the parent's handlers and signal mask.
     * Its own children it has none, and SIGTERM should simply end it: the
     * default action. Then it unblocks what the parent had blocked. */
    signal(SIGCHLD, SIG_DFL);
    sigprocmask(SIG_SETMASK, mask, NULL);
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
        dostuff(newsockfd);
    }
}

/* pool_is_empty: no child of the pool is alive. */
static int pool_is_empty(long size)
{
    long i;

    for (i = 0; i < size; i++)
        if (pool[i] != 0)
            return 0;
    return 1;
}

/*
 * fill_pool: forks a child for every empty place in the pool. Called with
 * SIGCHLD and SIGTERM blocked; MASK is the mask to give the children.
 */
static void fill_pool(int sockfd, long size, const sigset_t *mask)
{
    long i;
    pid_t pid;

    for (i = 0; i < size; i++) {
        if (pool[i] != 0)
            continue;
        pid = fork();
        if (pid < 0) {
            /* e.g. the limit on processes is reached. The next child that
             * ends wakes us to try again; with none left, nothing would. */
            perror("ERROR on fork");
            if (pool_is_empty(size))
                exit(1);
            return;
        }
        if (pid == 0) {
            serve_clients(sockfd, mask);
            _exit(0);
        }
        pool[i] = pid;
    }
}

/*
 * stop_pool: ends every child and waits until each has ended. A child
 * serving a client ends at once too, and that client gets no reply.
 * SIGCHLD is blocked, so the handler does not run: waitpid() here collects
 * the children, and fails with ECHILD once none is left.
 */
static void stop_pool(long size)
{
    long i;
    pid_t pid;

    for (i = 0; i < size; i++)
        if (pool[i] != 0)
            kill(pool[i], SIGTERM);
    for (;;) {
        pid = waitpid(-1, NULL, 0);
        if (pid < 0 && errno == EINTR)
            continue;
        if (pid < 0)
            break;
    }
}

int main(int argc, char *argv[])
{
    int sockfd;
    long pool_size;
    sigset_t blocked, old;

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

    pool_size = read_pool_size();
    sockfd = open_listener(parse_port(argv[1]));
    announce_port(sockfd);
    /* From here on, SIGCHLD and SIGTERM are delivered only inside
     * sigsuspend(): the pool array and the flag never change under the
     * main loop's feet, and a signal that comes between the look and the
     * sleep stays pending and ends the sleep at once. */
    sigemptyset(&blocked);
    sigaddset(&blocked, SIGCHLD);
    sigaddset(&blocked, SIGTERM);
    sigprocmask(SIG_BLOCK, &blocked, &old);
    install_reaper();
    install_stopper();

    while (!stopping) {
        fill_pool(sockfd, pool_size, &old);
        /* Asleep until a child ends or SIGTERM comes: no polling. */
        sigsuspend(&old);
    }
    stop_pool(pool_size);
    return 0;
}
