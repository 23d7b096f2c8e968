/*
 * tests/second-solutions/12-pre-forked-pool/server.c - a second, independent
 * solution of exercise 12 (a pre-forked pool), written from the exercise's
 * README.md and starter alone, without reading the reference solution or
 * the checker first. It exists to show that the checker accepts a correct
 * solution that is not the reference.
 *
 * How it differs from the hints: the SIGCHLD handler collects nobody. It
 * only sets a flag, so that sigsuspend() returns; the parent itself then
 * collects every child that has ended, with waitpid() and WNOHANG in a loop
 * that runs once per wake-up (not a polling loop: it runs only after a
 * signal came), and empties their places. On SIGTERM the parent waits for
 * each child of the array by its PID, instead of waitpid(-1) until ECHILD.
 * A fork() that fails leaves its place empty and sets an alarm, so that the
 * parent tries again a second later instead of running short until the next
 * child ends. POOL_SIZE is read digit by digit rather than with strtol().
 *
 * Build:  cc -std=c99 -pedantic -Wall -Wextra -Werror -O2 -o server server.c
 * Run:    POOL_SIZE=2 ./server 0
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
 * The parent's signals. Each handler only notes that its signal came: the
 * parent does the work itself, in its main loop, after sigsuspend() has
 * returned. sig_atomic_t and volatile: a flag a handler sets and the main
 * program reads must be both.
 */
static volatile sig_atomic_t child_ended;
static volatile sig_atomic_t stop_requested;

/*
 * on_signal: the one handler of SIGCHLD, SIGTERM and SIGALRM. SIGALRM needs
 * no flag: that sigsuspend() returned is enough, the main loop then forks
 * the children that are missing.
 */
static void on_signal(int signo)
{
    if (signo == SIGCHLD)
        child_ended = 1;
    if (signo == SIGTERM)
        stop_requested = 1;
}

/*
 * install_handlers: makes on_signal() run for SIGCHLD, SIGTERM and SIGALRM.
 * A handler is needed even though it does next to nothing: a signal whose
 * action is the default "ignore" (SIGCHLD's) does not end sigsuspend(), and
 * the default action of SIGTERM and SIGALRM would end the parent. No
 * SA_RESTART: the parent blocks in no system call but sigsuspend(), which
 * returns after a handler whatever the flags.
 */
static void install_handlers(void)
{
    struct sigaction sa;

    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = 0;
    if (sigaction(SIGCHLD, &sa, NULL) < 0 || sigaction(SIGTERM, &sa, NULL) < 0
        || sigaction(SIGALRM, &sa, NULL) < 0)
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
 * pool_size: N from the environment variable POOL_SIZE, 4 when it is not
 * set. Only decimal digits, 1 to 1000; anything else (a sign, a space, an
 * empty value, a letter) is refused with a message and exit status 2, as a
 * bad port is. The value is built digit by digit and checked at each step,
 * so a long string of digits cannot overflow.
 */
static int pool_size(void)
{
    const char *text = getenv("POOL_SIZE");
    const char *p;
    int n = 0;

    if (text == NULL)
        return 4;
    for (p = text; *p >= '0' && *p <= '9' && n <= 1000; p++)
        n = n * 10 + (*p - '0');
    if (p == text || *p != '\0' || n < 1 || n > 1000) {
        fprintf(stderr, "ERROR, bad POOL_SIZE '%s': expected a number from 1 to 1000\n", text);
        exit(2);
    }
    return n;
}

/*
 * serve_forever: what a child of the pool does for as long as it lives:
 * accept a client on the listening socket it shares with its brothers,
 * serve it, accept the next. It never returns. OLD_MASK is the signal mask
 * the parent had before it blocked SIGCHLD and SIGTERM.
 */
static void serve_forever(int sockfd, const sigset_t *old_mask)
{
    int newsockfd;

    /* The child got a copy of the parent's handlers and mask. With them,
     * SIGTERM would only set a flag nobody reads, and stay blocked. Back to
     * the default, SIGTERM ends the child. SIGPIPE stays ignored. */
    signal(SIGTERM, SIG_DFL);
    signal(SIGCHLD, SIG_DFL);
    signal(SIGALRM, SIG_DFL);
    if (sigprocmask(SIG_SETMASK, old_mask, NULL) < 0) {
        perror("ERROR on sigprocmask");
        _exit(1);
    }
    for (;;) {
        /* NULL, NULL: we do not need to know who the client is. */
        newsockfd = accept(sockfd, NULL, NULL);
        /* EINTR means only that a signal came: try again. */
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

/*
 * fill_pool: forks a child for every empty place (0) of PIDS. When fork()
 * fails (the limit on processes, say), the place stays empty and an alarm
 * in one second wakes the parent to try again.
 */
static void fill_pool(pid_t *pids, int n, int sockfd, const sigset_t *old_mask)
{
    int i;
    pid_t pid;

    for (i = 0; i < n; i++) {
        if (pids[i] != 0)
            continue;
        pid = fork();
        if (pid < 0) {
            perror("ERROR on fork");
            alarm(1);
            return;
        }
        if (pid == 0) {
            serve_forever(sockfd, old_mask);
            _exit(0);
        }
        pids[i] = pid;
    }
}

/*
 * collect_children: collects every child that has ended (one SIGCHLD may
 * stand for several), without blocking, and empties its place in PIDS.
 */
static void collect_children(pid_t *pids, int n)
{
    pid_t pid;
    int i;

    while ((pid = waitpid(-1, NULL, WNOHANG)) > 0) {
        for (i = 0; i < n; i++)
            if (pids[i] == pid)
                pids[i] = 0;
    }
}

/*
 * stop_pool: SIGTERM to every child of PIDS, then waits for each one by its
 * PID, so that none is left when the parent exits.
 */
static void stop_pool(pid_t *pids, int n)
{
    int i;

    for (i = 0; i < n; i++)
        if (pids[i] != 0)
            kill(pids[i], SIGTERM);
    for (i = 0; i < n; i++) {
        if (pids[i] == 0)
            continue;
        while (waitpid(pids[i], NULL, 0) < 0 && errno == EINTR)
            continue;
        pids[i] = 0;
    }
}

int main(int argc, char *argv[])
{
    int sockfd, n;
    pid_t *pids;
    sigset_t blocked, old_mask;

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

    n = pool_size();
    sockfd = open_listener(parse_port(argv[1]));
    announce_port(sockfd);
    pids = calloc((size_t) n, sizeof *pids);
    if (pids == NULL)
        error("ERROR on calloc");

    /* From here on, the handlers run only inside sigsuspend(): a child that
     * ends or a SIGTERM that comes while the parent forks stays pending, and
     * the next sigsuspend() returns at once. Nothing can be missed. */
    sigemptyset(&blocked);
    sigaddset(&blocked, SIGCHLD);
    sigaddset(&blocked, SIGTERM);
    sigaddset(&blocked, SIGALRM);
    if (sigprocmask(SIG_BLOCK, &blocked, &old_mask) < 0)
        error("ERROR on sigprocmask");
    install_handlers();

    while (!stop_requested) {
        if (child_ended) {
            child_ended = 0;
            collect_children(pids, n);
        }
        fill_pool(pids, n, sockfd, &old_mask);
        sigsuspend(&old_mask);
    }
    /* A child that ended just before the SIGTERM and was not collected yet
     * still has its PID in its place: stop_pool() collects it by that PID. */
    stop_pool(pids, n);
    free(pids);
    return 0;
}
