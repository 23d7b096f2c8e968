/*
 * tests/designs.c - the other server designs of tutorial.md's chapter "Other
 * designs: poll, threads, a pool", cut down to what its claims are about,
 * for tests/claims.bats.
 *
 * Each experiment builds the part of a design that a claim describes and
 * prints what happened, one line per event. None depends on how long
 * anything takes: every process or thread that must wait sleeps in a call
 * (read, accept, poll) until the test does something, and the test reads
 * the sleepers from /proc.
 *
 * Usage: designs EXPERIMENT [ARG...], where EXPERIMENT is one of
 *   threads N          start N threads that sleep in read() on a pipe nobody
 *                      writes to, print "N threads started", and sleep too
 *   thread-crash       one thread sleeps in read(); a second one takes
 *                      SIGSEGV, at its default action: who is left?
 *   pool-accept N      listen on a free port, fork N children that each
 *                      loop on accept() on the shared listening socket and
 *                      print "PID accepted" for each connection, then close
 *                      it and accept again
 *   pool-poll N        the same, but each child sleeps in poll() on the
 *                      listening socket and, once woken, prints "PID woke"
 *                      and exits without accepting
 * The pools print "Listening on port N", then one line "child PID" per
 * child; their parent waits for its children and exits when they have.
 *
 * Build: make tests/designs (it needs -pthread, which the Makefile adds).
 */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

static int never[2];    /* a pipe nobody writes to: read() on it sleeps */

static void fail(const char *what)
{
    perror(what);
    exit(1);
}

/* sleep_in_read: sleeps until the process ends; nobody writes to the pipe. */
static void *sleep_in_read(void *unused)
{
    char c;

    (void) unused;
    while (read(never[0], &c, 1) < 0 && errno == EINTR)
        ;
    return NULL;
}

/* crash: takes SIGSEGV, as a thread that followed a bad pointer would. */
static void *crash(void *unused)
{
    (void) unused;
    printf("a thread takes SIGSEGV\n");
    fflush(stdout);
    raise(SIGSEGV);     /* sent to this thread only; its action is the process's */
    printf("the crashed thread goes on\n");
    return NULL;
}

static void start_thread(void *(*fn)(void *))
{
    pthread_t t;
    int rc = pthread_create(&t, NULL, fn, NULL);

    if (rc != 0) {
        errno = rc;
        fail("pthread_create");
    }
    pthread_detach(t);
}

static int threads(int n)
{
    int i;

    for (i = 0; i < n; i++)
        start_thread(sleep_in_read);
    printf("%d threads started\n", n);
    fflush(stdout);
    sleep_in_read(NULL);
    return 0;
}

static int thread_crash(void)
{
    start_thread(sleep_in_read);
    start_thread(crash);
    sleep_in_read(NULL);
    printf("the main thread goes on\n");
    return 0;
}

/* listener: a listening socket on a free port of 127.0.0.1, announced. */
static int listener(void)
{
    struct sockaddr_in addr;
    socklen_t len = sizeof addr;
    int fd = socket(AF_INET, SOCK_STREAM, 0);

    if (fd < 0)
        fail("socket");
    memset(&addr, 0, sizeof addr);
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = 0;
    if (bind(fd, (struct sockaddr *) &addr, sizeof addr) < 0)
        fail("bind");
    if (listen(fd, SOMAXCONN) < 0)
        fail("listen");
    if (getsockname(fd, (struct sockaddr *) &addr, &len) < 0)
        fail("getsockname");
    printf("Listening on port %d\n", ntohs(addr.sin_port));
    fflush(stdout);
    return fd;
}

/* accept_forever: a pool child's life: accept, say so, close, again. */
static void accept_forever(int lfd)
{
    for (;;) {
        int fd = accept(lfd, NULL, NULL);

        if (fd < 0) {
            if (errno == EINTR)
                continue;
            perror("accept");
            _exit(1);
        }
        printf("%ld accepted\n", (long) getpid());
        fflush(stdout);
        close(fd);
    }
}

/* wake_once: a child of the poll pool: sleep in poll() until the listening
 * socket is readable (a connection waits), say so, and end. */
static void wake_once(int lfd)
{
    struct pollfd p;

    p.fd = lfd;
    p.events = POLLIN;
    while (poll(&p, 1, -1) < 0)
        if (errno != EINTR) {
            perror("poll");
            _exit(1);
        }
    printf("%ld woke\n", (long) getpid());
    fflush(stdout);
    _exit(0);
}

static int pool(int n, void (*child)(int))
{
    int lfd = listener(), i;

    for (i = 0; i < n; i++) {
        pid_t pid = fork();

        if (pid < 0)
            fail("fork");
        if (pid == 0)
            child(lfd);
        printf("child %ld\n", (long) pid);
        fflush(stdout);     /* or the next child inherits the line unwritten */
    }
    while (wait(NULL) > 0 || errno == EINTR)
        ;
    return 0;
}

static int count(const char *arg)
{
    char *end;
    long n = strtol(arg, &end, 10);

    if (*arg == '\0' || *end != '\0' || n < 1 || n > 1000) {
        fprintf(stderr, "designs: not a count from 1 to 1000: %s\n", arg);
        exit(2);
    }
    return (int) n;
}

int main(int argc, char *argv[])
{
    const char *what = argc > 1 ? argv[1] : "";

    if (pipe(never) < 0)
        fail("pipe");
    if (strcmp(what, "threads") == 0 && argc == 3)
        return threads(count(argv[2]));
    if (strcmp(what, "thread-crash") == 0 && argc == 2)
        return thread_crash();
    if (strcmp(what, "pool-accept") == 0 && argc == 3)
        return pool(count(argv[2]), accept_forever);
    if (strcmp(what, "pool-poll") == 0 && argc == 3)
        return pool(count(argv[2]), wake_once);
    fprintf(stderr, "usage: designs threads N | thread-crash | pool-accept N | pool-poll N\n");
    return 2;
}
