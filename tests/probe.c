/*
 * tests/probe.c - small experiments on the kernel and the C library, for the
 * claims that tutorial.md makes about them (tests/claims.bats runs them).
 *
 * Each experiment does one thing the tutorial describes and prints what the
 * system answered, one line per call, so that a test can compare it with the
 * text. None of them depends on how long anything takes: where a probe must
 * wait for the other side, it waits for a file to exist, which the test
 * creates once the condition it needs holds.
 *
 * Usage: probe somaxconn                 print SOMAXCONN from <sys/socket.h>
 *        probe serve reuse|noreuse       listen on a free port (with or without
 *                                        SO_REUSEADDR), accept one client, close
 *                                        that connection at once, and exit
 *        probe bind PORT reuse|noreuse   bind PORT on every IPv4 address and
 *                                        listen; print "bound" or the error
 *        probe writes HOST PORT FILE default|ignore
 *                                        connect, wait until FILE exists, then
 *                                        write twice and read once, with SIGPIPE
 *                                        at its default action or ignored
 *        probe accept-emfile             accept() on a listening socket with an
 *                                        empty queue and no descriptor left
 *        probe waitpid-errno             what waitpid(-1, NULL, WNOHANG) returns,
 *                                        and does to errno, with a child running
 *                                        and with none left
 *        probe nocldwait FILE            with SIGCHLD ignored: waitpid() for one
 *                                        child that has ended while another one
 *                                        runs until FILE exists, then
 *                                        waitpid(-1) for all
 * Lines printed: "CALL: result" (a number, or the error's text).
 */
#define _POSIX_C_SOURCE 200809L

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static void fail(const char *what)
{
    perror(what);
    exit(1);
}

/* say: prints one line at once (a test reads it while we wait). */
static void say(const char *call, long result, int err)
{
    if (result < 0)
        printf("%s: %s\n", call, strerror(err));
    else
        printf("%s: %ld\n", call, result);
    fflush(stdout);
}

static void wait_for_file(const char *path)
{
    struct stat st;
    struct timespec tick = { 0, 10L * 1000 * 1000 };

    while (stat(path, &st) < 0)
        nanosleep(&tick, NULL);
}

/* listener: a TCP socket on every IPv4 address and PORT, listening. */
static int listener(unsigned short port, int reuse, int quiet)
{
    struct sockaddr_in addr;
    int fd, on = 1;

    fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        fail("socket");
    if (reuse && setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on) < 0)
        fail("setsockopt");
    memset(&addr, 0, sizeof addr);
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_ANY);
    addr.sin_port = htons(port);
    if (bind(fd, (struct sockaddr *) &addr, sizeof addr) < 0) {
        if (quiet)
            return -1;
        fail("bind");
    }
    if (listen(fd, SOMAXCONN) < 0)
        fail("listen");
    return fd;
}

static int serve(int reuse)
{
    struct sockaddr_in addr;
    socklen_t len = sizeof addr;
    int lfd, fd;

    lfd = listener(0, reuse, 0);
    if (getsockname(lfd, (struct sockaddr *) &addr, &len) < 0)
        fail("getsockname");
    printf("Listening on port %u\n", (unsigned) ntohs(addr.sin_port));
    fflush(stdout);
    fd = accept(lfd, NULL, NULL);
    if (fd < 0)
        fail("accept");
    /* Our FIN leaves first: this side will end in TIME-WAIT. */
    close(fd);
    close(lfd);
    return 0;
}

static int bind_port(const char *port, int reuse)
{
    if (listener((unsigned short) strtoul(port, NULL, 10), reuse, 1) < 0) {
        say("bind", -1, errno);
        return 1;
    }
    printf("bind: bound\n");
    return 0;
}

static int connect_to(const char *host, const char *port)
{
    struct addrinfo hints, *ai;
    int fd;

    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_INET;
    hints.ai_socktype = SOCK_STREAM;
    if (getaddrinfo(host, port, &hints, &ai) != 0) {
        fprintf(stderr, "probe: cannot resolve %s\n", host);
        exit(1);
    }
    fd = socket(ai->ai_family, ai->ai_socktype, ai->ai_protocol);
    if (fd < 0 || connect(fd, ai->ai_addr, ai->ai_addrlen) < 0)
        fail("connect");
    freeaddrinfo(ai);
    return fd;
}

/*
 * writes: two writes and a read on a connection the other side has reset (or
 * closed and then reset) by the time FILE exists. With SIGPIPE at its default,
 * a write that gets EPIPE kills us before it can print anything.
 */
static int writes(const char *host, const char *port, const char *path, int ignore)
{
    char buf[64];
    ssize_t n;
    int fd;

    signal(SIGPIPE, ignore ? SIG_IGN : SIG_DFL);
    fd = connect_to(host, port);
    printf("connected\n");
    fflush(stdout);
    wait_for_file(path);
    n = write(fd, "x", 1);
    say("write", (long) n, errno);
    n = write(fd, "y", 1);
    say("write", (long) n, errno);
    n = read(fd, buf, sizeof buf);
    say("read", (long) n, errno);
    return 0;
}

/* lowest_free_fd: the descriptor the next open() or accept() would get. */
static int lowest_free_fd(void)
{
    int fd = dup(0);

    if (fd < 0)
        fail("dup");
    close(fd);
    return fd;
}

static int accept_emfile(void)
{
    struct rlimit rl;
    int lfd, fd;

    lfd = listener(0, 0, 0);
    if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
        fail("getrlimit");
    /* Descriptors 0 to lowest_free_fd() - 1 are open: allow no more. */
    rl.rlim_cur = (rlim_t) lowest_free_fd();
    if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
        fail("setrlimit");
    printf("queue: empty\n");
    fflush(stdout);
    fd = accept(lfd, NULL, NULL);
    say("accept", fd, errno);
    return 0;
}

/* child_until_eof: a child that reads its end of a pipe until end of file. */
static pid_t child_until_eof(int fds[2])
{
    char c;
    pid_t pid;

    if (pipe(fds) < 0)
        fail("pipe");
    pid = fork();
    if (pid < 0)
        fail("fork");
    if (pid == 0) {
        close(fds[1]);
        while (read(fds[0], &c, 1) > 0)
            continue;
        _exit(0);
    }
    close(fds[0]);
    return pid;
}

static int waitpid_errno(void)
{
    int fds[2];
    pid_t pid, got;

    pid = child_until_eof(fds);
    errno = 0;
    got = waitpid(-1, NULL, WNOHANG);
    printf("waitpid with a child running: %ld, errno %s\n", (long) got,
           errno == 0 ? "untouched" : strerror(errno));
    close(fds[1]);                      /* the child reads end of file, exits */
    got = waitpid(pid, NULL, 0);
    printf("waitpid for that child once it ends: %s\n", got == pid ? "its PID" : strerror(errno));
    errno = 0;
    got = waitpid(-1, NULL, WNOHANG);
    printf("waitpid with no child left: %ld, errno %s\n", (long) got,
           errno == 0 ? "untouched" : strerror(errno));
    return 0;
}

static pid_t child_until_file(const char *path)
{
    pid_t pid = fork();

    if (pid < 0)
        fail("fork");
    if (pid == 0) {
        wait_for_file(path);
        _exit(0);
    }
    return pid;
}

static const char *still(pid_t pid)
{
    return kill(pid, 0) == 0 ? "still running" : "gone";
}

static int nocldwait(const char *path)
{
    int fds[2];
    pid_t quick, slow, got;
    int err;

    signal(SIGCHLD, SIG_IGN);
    slow = child_until_file(path);
    quick = child_until_eof(fds);
    close(fds[1]);                      /* the quick child exits at once */
    got = waitpid(quick, NULL, 0);
    err = errno;
    printf("waitpid(the child that ended): %s, the other child %s\n",
           got < 0 ? strerror(err) : "its PID", still(slow));
    printf("waiting in waitpid(-1)\n");
    fflush(stdout);
    got = waitpid(-1, NULL, 0);
    err = errno;
    printf("waitpid(-1): %s, the other child %s\n",
           got < 0 ? strerror(err) : "a PID", still(slow));
    return 0;
}

int main(int argc, char *argv[])
{
    const char *what = argc > 1 ? argv[1] : "";

    setvbuf(stdout, NULL, _IOLBF, 0);
    if (strcmp(what, "somaxconn") == 0 && argc == 2) {
        printf("%d\n", SOMAXCONN);
        return 0;
    }
    if (strcmp(what, "serve") == 0 && argc == 3)
        return serve(strcmp(argv[2], "reuse") == 0);
    if (strcmp(what, "bind") == 0 && argc == 4)
        return bind_port(argv[2], strcmp(argv[3], "reuse") == 0);
    if (strcmp(what, "writes") == 0 && argc == 6)
        return writes(argv[2], argv[3], argv[4], strcmp(argv[5], "ignore") == 0);
    if (strcmp(what, "accept-emfile") == 0 && argc == 2)
        return accept_emfile();
    if (strcmp(what, "waitpid-errno") == 0 && argc == 2)
        return waitpid_errno();
    if (strcmp(what, "nocldwait") == 0 && argc == 3)
        return nocldwait(argv[2]);
    fprintf(stderr, "usage: probe somaxconn | serve reuse|noreuse | bind PORT reuse|noreuse\n"
                    "       | writes HOST PORT FILE default|ignore | accept-emfile\n"
                    "       | waitpid-errno | nocldwait FILE\n");
    return 2;
}
