/*
 * tests/probe.c - small experiments on the kernel and the C library, for the
 * claims that tutorial.md makes about them (tests/claims.bats runs them).
 *
 * Each experiment does one thing the tutorial describes and prints what the
 * system answered, one line per call, so that a test can compare it with the
 * text. None of them depends on how long anything takes: where a probe must
 * wait for the other side, it waits until a file exists, and the test creates
 * the file once the condition it needs holds.
 *
 * Usage: probe EXPERIMENT [ARG...], where EXPERIMENT is one of
 *   somaxconn                 print SOMAXCONN from <sys/socket.h>
 *   serve reuse|noreuse       listen on a free port (with or without
 *                             SO_REUSEADDR), accept one client, send our FIN
 *                             at once, wait for the client's, and exit
 *   bind PORT reuse|noreuse   bind PORT on every IPv4 address and listen
 *   calls HOST PORT FILE default|ignore CALL...
 *                             connect, wait until FILE exists, then make each
 *                             CALL (write, read or shutdown), with SIGPIPE at
 *                             its default action or ignored
 *   recv-once FILE            listen, accept one client, wait until FILE
 *                             exists, then read() once
 *   shared FILE1 FILE2        listen, accept one client, dup() the connection
 *                             and close() the copy; once FILE1 exists, dup()
 *                             it again and shutdown(SHUT_WR) one of the two;
 *                             exit once FILE2 exists
 *   accept-emfile             accept() with an empty queue and no descriptor
 *                             left
 *   accept-eintr restart|norestart FILE
 *                             wait in accept() while a child ends (once FILE
 *                             exists), with a SIGCHLD handler installed with
 *                             or without SA_RESTART
 *   waitpid-errno             what waitpid(-1, NULL, WNOHANG) returns, and
 *                             does to errno, with a child running and with
 *                             none left
 *   sigchld-merge             three children end while SIGCHLD is blocked:
 *                             how often does the handler run?
 *   nocldwait FILE            with SIGCHLD ignored: waitpid() for a child that
 *                             has ended while another runs until FILE exists,
 *                             then waitpid(-1)
 *   nocldwait-flag            SA_NOCLDWAIT with a handler: is it called, is
 *                             the child left as a zombie?
 *   system                    system("exit 3") with SIGCHLD ignored
 *   exec-ignored              exec a program with SIGCHLD ignored: what does
 *                             it find?
 *   zombie-nproc              with RLIMIT_NPROC 2: can we fork while a child is
 *                             a zombie, and once it is collected? (Run it as
 *                             a user with no other process.)
 *   stdio                     (stdout a regular file) how many bytes stdio
 *                             holds back before its first write
 *   fork-exit exit|_exit      (stdout a regular file) a line waits in stdio's
 *                             buffer, then a child ends with exit or _exit
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

static const char *self;                /* argv[0], for exec-ignored */
static volatile sig_atomic_t handled;   /* how often on_sigchld() ran */

static void fail(const char *what)
{
    perror(what);
    exit(1);
}

/* say: prints one line at once (a test may read it while we wait). */
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

static void on_sigchld(int signo)
{
    (void) signo;
    handled++;
}

/* catch_sigchld: on_sigchld() for SIGCHLD, with the given flags. */
static void catch_sigchld(int flags)
{
    struct sigaction sa;

    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_sigchld;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = flags;
    if (sigaction(SIGCHLD, &sa, NULL) < 0)
        fail("sigaction");
}

/* listener: a TCP socket on every IPv4 address and PORT, listening; -1 with
 * errno when bind() fails and QUIET is set. */
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

/* announced_listener: a listener on a free port that says which. */
static int announced_listener(int reuse)
{
    struct sockaddr_in addr;
    socklen_t len = sizeof addr;
    int fd = listener(0, reuse, 0);

    if (getsockname(fd, (struct sockaddr *) &addr, &len) < 0)
        fail("getsockname");
    printf("Listening on port %u\n", (unsigned) ntohs(addr.sin_port));
    fflush(stdout);
    return fd;
}

static int accept_one(int lfd)
{
    int fd = accept(lfd, NULL, NULL);

    if (fd < 0)
        fail("accept");
    return fd;
}

static int serve(int reuse)
{
    char c;
    int lfd = announced_listener(reuse);
    int fd = accept_one(lfd);

    /* Our FIN first; then wait for the client's, as hang_up() does, so that
     * the connection is in TIME-WAIT before we let go of it. */
    shutdown(fd, SHUT_WR);
    while (read(fd, &c, 1) > 0)
        continue;
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
 * calls: the calls a program makes on a connection that the other side has
 * closed or reset by the time FILE exists. With SIGPIPE at its default, a
 * write that gets EPIPE kills us before we can print anything.
 */
static int calls(char *argv[], int argc)
{
    char buf[64];
    long n;
    int fd, i;

    signal(SIGPIPE, strcmp(argv[5], "ignore") == 0 ? SIG_IGN : SIG_DFL);
    fd = connect_to(argv[2], argv[3]);
    printf("connected\n");
    fflush(stdout);
    wait_for_file(argv[4]);
    for (i = 6; i < argc; i++) {
        if (strcmp(argv[i], "write") == 0)
            n = (long) write(fd, "x", 1);
        else if (strcmp(argv[i], "read") == 0)
            n = (long) read(fd, buf, sizeof buf);
        else if (strcmp(argv[i], "shutdown") == 0)
            n = shutdown(fd, SHUT_WR);
        else {
            fprintf(stderr, "probe: unknown call '%s'\n", argv[i]);
            return 2;
        }
        say(argv[i], n, errno);
    }
    return 0;
}

static int recv_once(const char *path)
{
    char buf[4096];
    int fd = accept_one(announced_listener(0));

    wait_for_file(path);
    say("read", (long) read(fd, buf, sizeof buf), errno);
    return 0;
}

static int shared(const char *first, const char *second)
{
    int fd = accept_one(announced_listener(0));
    int copy = dup(fd);

    if (copy < 0)
        fail("dup");
    close(copy);
    printf("closed one of two descriptors\n");
    fflush(stdout);
    wait_for_file(first);
    copy = dup(fd);
    if (copy < 0)
        fail("dup");
    say("shutdown", shutdown(fd, SHUT_WR), errno);
    wait_for_file(second);              /* both descriptors still open */
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
    /* Descriptors 0 to lowest_free_fd() - 1 are in use: allow no more. */
    rl.rlim_cur = (rlim_t) lowest_free_fd();
    if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
        fail("setrlimit");
    printf("queue: empty\n");
    fflush(stdout);
    fd = accept(lfd, NULL, NULL);
    say("accept", fd, errno);
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

static int accept_eintr(int restart, const char *path)
{
    int lfd, fd;

    catch_sigchld(restart ? SA_RESTART : 0);
    lfd = announced_listener(0);
    child_until_file(path);
    printf("waiting in accept\n");
    fflush(stdout);
    fd = accept(lfd, NULL, NULL);
    if (fd < 0)
        say("accept", -1, errno);
    else
        printf("accept: a connection\n");
    printf("the handler ran: %d time(s)\n", (int) handled);
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

static void errno_after(const char *what, long got)
{
    int err = errno;

    printf("%s: %ld, errno %s\n", what, got, err == 0 ? "untouched" : strerror(err));
}

static int waitpid_errno(void)
{
    int fds[2];
    pid_t pid, got;

    pid = child_until_eof(fds);
    errno = 0;
    got = waitpid(-1, NULL, WNOHANG);
    errno_after("waitpid with a child running", (long) got);
    close(fds[1]);                      /* the child reads end of file, exits */
    got = waitpid(pid, NULL, 0);
    printf("waitpid for that child once it ends: %s\n", got == pid ? "its PID" : strerror(errno));
    errno = 0;
    got = waitpid(-1, NULL, WNOHANG);
    errno_after("waitpid with no child left", (long) got);
    return 0;
}

static int sigchld_merge(void)
{
    sigset_t block, old;
    siginfo_t info;
    pid_t pids[3];
    int i, ended = 0;

    catch_sigchld(SA_RESTART);
    sigemptyset(&block);
    sigaddset(&block, SIGCHLD);
    if (sigprocmask(SIG_BLOCK, &block, &old) < 0)
        fail("sigprocmask");
    for (i = 0; i < 3; i++) {
        pids[i] = fork();
        if (pids[i] < 0)
            fail("fork");
        if (pids[i] == 0)
            _exit(0);
    }
    /* Wait until all three have ended, without collecting them. */
    for (i = 0; i < 3; i++) {
        if (waitid(P_PID, (id_t) pids[i], &info, WEXITED | WNOWAIT) < 0)
            fail("waitid");
        ended++;
    }
    sigprocmask(SIG_SETMASK, &old, NULL);   /* the pending SIGCHLD arrives */
    printf("children ended: %d, the handler ran: %d time(s)\n", ended, (int) handled);
    return 0;
}

static const char *still(pid_t pid)
{
    return kill(pid, 0) == 0 ? "still running" : "gone";
}

static int nocldwait(const char *path)
{
    int fds[2], err;
    pid_t quick, slow, got;

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

static int nocldwait_flag(void)
{
    sigset_t block, old;
    int fds[2], err;
    pid_t pid, got;

    catch_sigchld(SA_NOCLDWAIT);
    sigemptyset(&block);
    sigaddset(&block, SIGCHLD);
    sigprocmask(SIG_BLOCK, &block, &old);
    pid = child_until_eof(fds);
    close(fds[1]);
    /* Asleep until a signal arrives: the child's SIGCHLD, if it is sent. */
    while (!handled)
        sigsuspend(&old);
    sigprocmask(SIG_SETMASK, &old, NULL);
    printf("the handler ran\n");
    got = waitpid(pid, NULL, 0);
    err = errno;
    printf("waitpid(the child): %s\n", got < 0 ? strerror(err) : "its PID: it was a zombie");
    return 0;
}

static int system_ignored(void)
{
    int status, err;

    signal(SIGCHLD, SIG_IGN);
    status = system("exit 3"); /* NOLINT(cert-env33-c): what it does is the point */
    err = errno;
    printf("system: %d, errno %s\n", status, status < 0 ? strerror(err) : "not set");
    return 0;
}

static int exec_ignored(void)
{
    signal(SIGCHLD, SIG_IGN);
    execl(self, self, "sigchld-disposition", (char *) NULL);
    fail(self);
    return 1;
}

static int sigchld_disposition(void)
{
    struct sigaction sa;

    if (sigaction(SIGCHLD, NULL, &sa) < 0)
        fail("sigaction");
    printf("after exec, SIGCHLD is %s\n", sa.sa_handler == SIG_IGN ? "ignored" : "at its default");
    return 0;
}

static int zombie_nproc(void)
{
    struct rlimit rl = { 2, 2 };        /* this process and one more */
    siginfo_t info;
    pid_t zombie, pid;

    if (setrlimit(RLIMIT_NPROC, &rl) < 0)
        fail("setrlimit");
    zombie = fork();
    if (zombie < 0)
        fail("fork");
    if (zombie == 0)
        _exit(0);
    /* Wait until it has ended, without collecting it: it is a zombie. */
    if (waitid(P_PID, (id_t) zombie, &info, WEXITED | WNOWAIT) < 0)
        fail("waitid");
    pid = fork();
    if (pid == 0)
        _exit(0);
    printf("fork beside a zombie: %s\n", pid < 0 ? strerror(errno) : "a child");
    if (pid > 0)
        waitpid(pid, NULL, 0);
    waitpid(zombie, NULL, 0);
    pid = fork();
    if (pid == 0)
        _exit(0);
    printf("fork once it is collected: %s\n", pid < 0 ? strerror(errno) : "a child");
    if (pid > 0)
        waitpid(pid, NULL, 0);
    return 0;
}

static int stdio_buffer(void)
{
    struct stat st;
    long written = 0;

    if (fstat(STDOUT_FILENO, &st) < 0 || !S_ISREG(st.st_mode)) {
        fprintf(stderr, "probe stdio: standard output must be a regular file\n");
        return 2;
    }
    while (st.st_size == 0 && written < 1000000) {
        fputs("x\n", stdout);
        written += 2;
        if (fstat(STDOUT_FILENO, &st) < 0)
            fail("fstat");
    }
    fprintf(stderr, "held back: %ld bytes\n", (long) st.st_size);
    return 0;
}

static int fork_exit(int use_exit)
{
    pid_t pid;

    printf("written once, before fork\n");  /* waits in the buffer */
    pid = fork();
    if (pid < 0)
        fail("fork");
    if (pid == 0) {
        if (use_exit)
            exit(0);
        _exit(0);
    }
    if (waitpid(pid, NULL, 0) < 0)
        fail("waitpid");
    return 0;
}

int main(int argc, char *argv[])
{
    const char *what = argc > 1 ? argv[1] : "";

    self = argv[0];
    if (strcmp(what, "somaxconn") == 0 && argc == 2) {
        printf("%d\n", SOMAXCONN);
        return 0;
    }
    if (strcmp(what, "serve") == 0 && argc == 3)
        return serve(strcmp(argv[2], "reuse") == 0);
    if (strcmp(what, "bind") == 0 && argc == 4)
        return bind_port(argv[2], strcmp(argv[3], "reuse") == 0);
    if (strcmp(what, "calls") == 0 && argc >= 7)
        return calls(argv, argc);
    if (strcmp(what, "recv-once") == 0 && argc == 3)
        return recv_once(argv[2]);
    if (strcmp(what, "shared") == 0 && argc == 4)
        return shared(argv[2], argv[3]);
    if (strcmp(what, "accept-emfile") == 0 && argc == 2)
        return accept_emfile();
    if (strcmp(what, "accept-eintr") == 0 && argc == 4)
        return accept_eintr(strcmp(argv[2], "restart") == 0, argv[3]);
    if (strcmp(what, "waitpid-errno") == 0 && argc == 2)
        return waitpid_errno();
    if (strcmp(what, "sigchld-merge") == 0 && argc == 2)
        return sigchld_merge();
    if (strcmp(what, "nocldwait") == 0 && argc == 3)
        return nocldwait(argv[2]);
    if (strcmp(what, "nocldwait-flag") == 0 && argc == 2)
        return nocldwait_flag();
    if (strcmp(what, "system") == 0 && argc == 2)
        return system_ignored();
    if (strcmp(what, "exec-ignored") == 0 && argc == 2)
        return exec_ignored();
    if (strcmp(what, "sigchld-disposition") == 0 && argc == 2)
        return sigchld_disposition();
    if (strcmp(what, "zombie-nproc") == 0 && argc == 2)
        return zombie_nproc();
    if (strcmp(what, "stdio") == 0 && argc == 2)
        return stdio_buffer();
    if (strcmp(what, "fork-exit") == 0 && argc == 3)
        return fork_exit(strcmp(argv[2], "exit") == 0);
    fprintf(stderr, "usage: probe EXPERIMENT [ARG...]: see the comment at the top of tests/probe.c\n");
    return 2;
}
