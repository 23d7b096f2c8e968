/*
 * bench/loadgen.c - a load generator that speaks the servers' protocol.
 *
 * Each connection is one conversation of the steps' protocol: connect, send
 * one line, read the reply to end of file, close (with -h it also half-closes
 * after the line, exactly as client/client does). CONC worker threads do
 * that in a loop until TOTAL connections are made (or for SECONDS), and at
 * the end one line of key=value pairs reports the rate, the latency of a
 * whole conversation (p50, p99, max) and every error, counted by kind.
 * Errors are never retried or hidden: a connection that failed is counted.
 *
 * Build and run:  make bench   (or: make bench/loadgen)
 *   bench/loadgen -n 5000 -c 8 127.0.0.1 5000        5000 connections, 8 at once
 *   bench/loadgen -d 5 -r 2000 -s 0.5 -q 1:3 127.0.0.1 5000   5 s of load, at
 *                     most 2000 connections a second, counted per 0.5 s, while
 *                     one silent client says nothing from 1 s to 4 s
 *   bench/loadgen -H 1000 -w /tmp/go 127.0.0.1 5000  open 1000 connections,
 *                     keep them silent until /tmp/go exists, then talk on each
 * Each message is "PREFIX K" with a number K unique within the run (-m PREFIX,
 * -k FIRST), so a server's log shows whether every message arrived once.
 * Read more:      bench/README.md
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
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#define REPLY "I got your message"
#define MAX_THREADS 1024

/* What can go wrong with one connection; each kind is counted on its own. */
enum outcome {
    OK,
    ERR_CONNECT,      /* refused, or any other failure to connect */
    ERR_ADDRNOTAVAIL, /* no local port left (ports stuck in TIME_WAIT) */
    ERR_RESET,        /* the server reset the connection */
    ERR_TIMEOUT,      /* no answer within the timeout (-T) */
    ERR_REPLY,        /* the connection ended without the exact reply */
    ERR_OTHER,        /* socket() failed, e.g. out of descriptors */
    NOUTCOMES
};

static const char *const outcome_name[NOUTCOMES] = {
    "ok", "err_connect", "err_addrnotavail", "err_reset", "err_timeout",
    "err_reply", "err_other"
};

/* The settings, written by main() before any thread starts, then only read. */
static struct sockaddr_in server;
static const char *prefix = "bench";
static unsigned long first_key;
static double timeout = 10.0;
static int half_close;
static struct timespec start;

/* What one worker did. Only that worker writes it, until it is joined. */
struct results {
    double *latency;        /* seconds, one per finished conversation */
    double *finished_at;    /* seconds since the start, same order */
    size_t count, capacity;
    unsigned long outcomes[NOUTCOMES];
    char first_error[128];  /* the first failure, for the report */
};

struct worker {
    pthread_t thread;
    unsigned long next_key; /* this worker uses keys next_key, +step, ... */
    unsigned long step;
    unsigned long todo;     /* connections to make; 0: until the deadline */
    double deadline;        /* seconds since the start; 0: no deadline */
    double interval;        /* -r: seconds between connections; 0: no pause */
    double offset;          /* -r: when this worker's first connection is due */
    struct results res;
};

/* die: reports a fatal error and ends the program. _exit(), not exit(): a
 * worker thread may call it, and exit() would run the exit handlers and
 * flush stdio while the other threads are still using them. */
static void die(const char *msg)
{
    perror(msg);
    _exit(1);
}

static void usage(void)
{
    fprintf(stderr,
            "usage: loadgen [-n TOTAL | -d SECONDS] [-c CONC] [-r RATE] [-s SLICE] [-q START:LENGTH]\n"
            "               [-m PREFIX] [-k FIRST] [-T TIMEOUT] [-h] HOST PORT\n"
            "       loadgen -H N -w PATH [-m PREFIX] [-k FIRST] [-T TIMEOUT] [-h] HOST PORT\n"
            "  -n TOTAL    connections to make (1000)     -d SECONDS  run this long instead\n"
            "  -c CONC     connections at once (8)        -r RATE     at most RATE a second\n"
            "  -s SLICE    count completions per SLICE s  -q AT:LEN   one silent client\n"
            "  -m PREFIX   messages are \"PREFIX K\"       -k FIRST    first K (0)\n"
            "  -T TIMEOUT  seconds any read may take (10) -h          half-close after the line\n"
            "  -H N        hold N connections silent until the file PATH (-w) exists\n");
    exit(2); /* NOLINT(concurrency-mt-unsafe): only main() calls it, before any thread starts */
}

/* seconds_since_start: the monotonic clock, which no clock change moves. */
static double seconds_since_start(void)
{
    struct timespec now;

    clock_gettime(CLOCK_MONOTONIC, &now);
    return (double) (now.tv_sec - start.tv_sec)
        + (double) (now.tv_nsec - start.tv_nsec) / 1e9;
}

static void sleep_until(double when)
{
    struct timespec ts;
    double left = when - seconds_since_start();

    while (left > 0) {
        ts.tv_sec = (time_t) left;
        ts.tv_nsec = (long) ((left - (double) ts.tv_sec) * 1e9);
        nanosleep(&ts, NULL);
        left = when - seconds_since_start();
    }
}

static double parse_number(const char *text, double min)
{
    char *end;
    double value;

    errno = 0;
    value = strtod(text, &end);
    if (end == text || *end != '\0' || errno != 0 || value < min) {
        fprintf(stderr, "loadgen: bad number '%s'\n", text);
        exit(2); /* NOLINT(concurrency-mt-unsafe): only main() calls it, before any thread starts */
    }
    return value;
}

/* Many connections need many descriptors: take all the hard limit allows. */
static void raise_fd_limit(void)
{
    struct rlimit rl;

    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
            perror("loadgen: setrlimit");
    }
}

static void note_error(struct results *res, enum outcome kind, const char *what, int err)
{
    char text[80];

    res->outcomes[kind]++;
    if (res->first_error[0] != '\0')
        return;
    /* strerror_r: strerror() may share one buffer between all threads. */
    if (strerror_r(err, text, sizeof text) != 0)
        snprintf(text, sizeof text, "error %d", err);
    snprintf(res->first_error, sizeof res->first_error, "%s: %s", what, text);
}

/* outcome_of: sorts a failed socket call's errno into the kinds we count. */
static enum outcome outcome_of(int err)
{
    if (err == EAGAIN || err == EWOULDBLOCK || err == EINPROGRESS || err == ETIMEDOUT)
        return ERR_TIMEOUT;
    if (err == ECONNRESET || err == EPIPE)
        return ERR_RESET;
    return ERR_OTHER;
}

/*
 * open_connection: a connected socket, or -1 with the failure noted. The
 * timeouts bound every later read and write (and connect), so a server that
 * never answers costs us TIMEOUT seconds, not forever.
 */
static int open_connection(struct results *res)
{
    struct timeval tv;
    int fd, err;

    fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) {
        note_error(res, ERR_OTHER, "socket", errno);
        return -1;
    }
    tv.tv_sec = (time_t) timeout;
    tv.tv_usec = (suseconds_t) ((timeout - (double) tv.tv_sec) * 1e6);
    if (setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv) < 0
        || setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv) < 0) {
        note_error(res, ERR_OTHER, "setsockopt", errno);
        close(fd);
        return -1;
    }
    if (connect(fd, (const struct sockaddr *) &server, sizeof server) < 0) {
        err = errno;
        if (err == EADDRNOTAVAIL)
            note_error(res, ERR_ADDRNOTAVAIL, "connect", err);
        else if (err == EINPROGRESS || err == ETIMEDOUT)
            note_error(res, ERR_TIMEOUT, "connect", err);
        else
            note_error(res, ERR_CONNECT, "connect", err);
        close(fd);
        return -1;
    }
    return fd;
}

/*
 * send_line: sends "PREFIX KEY\n" (and with -h half-closes, as client/client
 * does). Without -h the server sends its end of file first, so the
 * connection's TIME_WAIT stays on the server's side, not on ours: tens of
 * thousands of connections a minute would otherwise use up our local ports.
 */
static int send_line(struct results *res, int fd, unsigned long key)
{
    char line[256];
    size_t len, done = 0;
    ssize_t n;
    int written;

    written = snprintf(line, sizeof line, "%s %lu\n", prefix, key);
    if (written < 0 || (size_t) written >= sizeof line) {
        note_error(res, ERR_OTHER, "message too long", EINVAL);
        return -1;
    }
    len = (size_t) written;
    while (done < len) {
        n = write(fd, line + done, len - done);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            note_error(res, outcome_of(errno), "write", errno);
            return -1;
        }
        done += (size_t) n;
    }
    if (half_close && shutdown(fd, SHUT_WR) < 0) {
        note_error(res, outcome_of(errno), "shutdown", errno);
        return -1;
    }
    return 0;
}

/* read_reply: reads to end of file; the reply must be exactly REPLY. */
static int read_reply(struct results *res, int fd)
{
    char reply[64];
    size_t len = 0;
    ssize_t n;

    for (;;) {
        n = read(fd, reply + len, sizeof reply - 1 - len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            note_error(res, outcome_of(errno), "read", errno);
            return -1;
        }
        if (n == 0)
            break;
        len += (size_t) n;
        if (len == sizeof reply - 1) {
            note_error(res, ERR_REPLY, "reply", EMSGSIZE);
            return -1;
        }
    }
    reply[len] = '\0';
    if (strcmp(reply, REPLY) != 0) {
        note_error(res, ERR_REPLY, "reply", len == 0 ? ENODATA : EBADMSG);
        return -1;
    }
    return 0;
}

static void record(struct results *res, double latency, double finished_at)
{
    size_t cap;
    double *l, *f;

    if (res->count == res->capacity) {
        cap = res->capacity ? 2 * res->capacity : 1024;
        l = realloc(res->latency, cap * sizeof *l);
        if (l == NULL)
            die("loadgen: realloc");
        res->latency = l;
        f = realloc(res->finished_at, cap * sizeof *f);
        if (f == NULL)
            die("loadgen: realloc");
        res->finished_at = f;
        res->capacity = cap;
    }
    res->latency[res->count] = latency;
    res->finished_at[res->count] = finished_at;
    res->count++;
    res->outcomes[OK]++;
}

/* converse: one whole conversation; its latency is recorded if it succeeds. */
static void converse(struct results *res, unsigned long key)
{
    double began = seconds_since_start(), ended;
    int fd, failed;

    fd = open_connection(res);
    if (fd < 0)
        return;
    failed = send_line(res, fd, key) < 0 || read_reply(res, fd) < 0;
    close(fd);
    if (!failed) {
        ended = seconds_since_start();
        record(res, ended - began, ended);
    }
}

static void *work(void *arg)
{
    struct worker *w = arg;
    unsigned long done;

    for (done = 0; w->todo == 0 || done < w->todo; done++) {
        /* With -r, the worker's next connection is due at a fixed time; a
         * worker that was held up catches up as fast as it can. */
        if (w->interval > 0)
            sleep_until(w->offset + (double) done * w->interval);
        if (w->deadline > 0 && seconds_since_start() >= w->deadline)
            break;
        converse(&w->res, w->next_key);
        w->next_key += w->step;
    }
    return NULL;
}

/* The silent client: connects at START, says nothing for LENGTH seconds. */
struct silent {
    pthread_t thread;
    double at, length;
    struct results res;
    unsigned long key;
};

static void *stay_silent(void *arg)
{
    struct silent *s = arg;
    double began;
    int fd;

    sleep_until(s->at);
    began = seconds_since_start();
    fd = open_connection(&s->res);
    if (fd < 0)
        return NULL;
    sleep_until(s->at + s->length);
    if (send_line(&s->res, fd, s->key) == 0 && read_reply(&s->res, fd) == 0)
        record(&s->res, seconds_since_start() - began, seconds_since_start());
    close(fd);
    return NULL;
}

static int compare_doubles(const void *a, const void *b)
{
    double x = *(const double *) a, y = *(const double *) b;

    return (x > y) - (x < y);
}

/* percentile: nearest rank; sorted holds n > 0 values in ascending order. */
static double percentile(const double *sorted, size_t n, double p)
{
    size_t rank = (size_t) (p * (double) n + 0.999999);

    if (rank < 1)
        rank = 1;
    if (rank > n)
        rank = n;
    return sorted[rank - 1];
}

/* add_results: merges src into dst (dst's arrays grow; src is left alone). */
static void add_results(struct results *dst, const struct results *src)
{
    size_t i;
    int k;

    for (i = 0; i < src->count; i++) {
        record(dst, src->latency[i], src->finished_at[i]);
        dst->outcomes[OK]--;    /* record() counted it; the loop below does */
    }
    for (k = 0; k < NOUTCOMES; k++)
        dst->outcomes[k] += src->outcomes[k];
    if (dst->first_error[0] == '\0')
        memcpy(dst->first_error, src->first_error, sizeof dst->first_error);
}

static void free_results(struct results *res)
{
    free(res->latency);
    free(res->finished_at);
}

/* print_slices: how many conversations finished in each SLICE of the run. */
static void print_slices(const struct results *all, double slice, double until)
{
    /* Conversations still under way at the deadline finish after it; they
     * are counted in the totals but fall outside every slice. */
    size_t nslices = (size_t) (until / slice + 0.999), i, s;
    unsigned long *counts = calloc(nslices, sizeof *counts);

    if (counts == NULL)
        die("loadgen: calloc");
    for (i = 0; i < all->count; i++) {
        s = (size_t) (all->finished_at[i] / slice);
        if (s < nslices)
            counts[s]++;
    }
    for (s = 0; s < nslices; s++)
        printf("slice %.2f %.2f %lu\n", (double) s * slice, (double) (s + 1) * slice, counts[s]);
    free(counts);
}

/* report: one line of key=value pairs that scripts can read. */
static void report(struct results *all, double seconds)
{
    unsigned long failed = 0;
    int k;

    for (k = 1; k < NOUTCOMES; k++)
        failed += all->outcomes[k];
    qsort(all->latency, all->count, sizeof *all->latency, compare_doubles);
    printf("conns=%lu ok=%lu errors=%lu secs=%.3f rate=%.0f",
           all->outcomes[OK] + failed, all->outcomes[OK], failed, seconds,
           seconds > 0 ? (double) all->outcomes[OK] / seconds : 0.0);
    if (all->count > 0)
        printf(" p50_ms=%.3f p99_ms=%.3f max_ms=%.3f",
               1e3 * percentile(all->latency, all->count, 0.50),
               1e3 * percentile(all->latency, all->count, 0.99),
               1e3 * all->latency[all->count - 1]);
    else
        printf(" p50_ms=- p99_ms=- max_ms=-");
    for (k = 1; k < NOUTCOMES; k++)
        printf(" %s=%lu", outcome_name[k], all->outcomes[k]);
    printf("\n");
    if (all->first_error[0] != '\0')
        fprintf(stderr, "loadgen: first error: %s\n", all->first_error);
}

/* wait_for_file: until PATH exists, or at most HOLD_LIMIT seconds, so that a
 * script that dies before it releases us does not leave us here for ever. */
#define HOLD_LIMIT 120.0
static void wait_for_file(const char *path)
{
    struct stat st;
    struct timespec tick = { 0, 10L * 1000 * 1000 };
    double until = seconds_since_start() + HOLD_LIMIT;

    while (stat(path, &st) < 0) {
        if (seconds_since_start() > until) {
            fprintf(stderr, "loadgen: %s did not appear in %.0f s; going on\n", path, HOLD_LIMIT);
            return;
        }
        nanosleep(&tick, NULL);
    }
}

/*
 * hold: opens n connections and keeps them silent, so that n server
 * processes exist at once, until the file at path appears. Then each
 * connection sends its line, and every reply is read.
 */
static int hold(unsigned long n, const char *path)
{
    struct results res;
    int *fds = malloc(n * sizeof *fds);
    double *began = malloc(n * sizeof *began);
    double released;
    unsigned long i, opened = 0;
    int ok;

    if (fds == NULL || began == NULL)
        die("loadgen: malloc");
    memset(&res, 0, sizeof res);
    for (i = 0; i < n; i++) {
        fds[i] = open_connection(&res);
        if (fds[i] >= 0)
            opened++;
    }
    printf("holding %lu\n", opened);
    fflush(stdout);
    wait_for_file(path);
    released = seconds_since_start();
    for (i = 0; i < n; i++) {
        began[i] = seconds_since_start();
        if (fds[i] >= 0 && send_line(&res, fds[i], first_key + i) < 0) {
            close(fds[i]);
            fds[i] = -1;
        }
    }
    for (i = 0; i < n; i++) {
        if (fds[i] < 0)
            continue;
        if (read_reply(&res, fds[i]) == 0)
            record(&res, seconds_since_start() - began[i], seconds_since_start());
        close(fds[i]);
    }
    report(&res, seconds_since_start() - released);
    ok = res.outcomes[OK] == n;
    free_results(&res);
    free(fds);
    free(began);
    return ok ? 0 : 1;
}

/*
 * start_thread: pthread_create, tried again for up to a second while it fails
 * with EAGAIN: a machine busy with thousands of processes (the benchmark's
 * own, or a test's) can be briefly short of them.
 */
static void start_thread(pthread_t *thread, void *(*run)(void *), void *arg)
{
    struct timespec pause = { 0, 10L * 1000 * 1000 };
    int rc, tries = 0;

    while ((rc = pthread_create(thread, NULL, run, arg)) == EAGAIN && tries++ < 100)
        nanosleep(&pause, NULL);
    if (rc != 0) {
        errno = rc;
        die("loadgen: pthread_create");
    }
}

int main(int argc, char *argv[])
{
    static struct worker workers[MAX_THREADS];
    struct results all;
    struct silent quiet;
    unsigned long total = 1000, conc = 8, held = 0, i;
    double duration = 0, slice = 0, rate = 0, port, finished;
    const char *hold_path = NULL;
    char *colon;
    int opt, k, failed;

    memset(&quiet, 0, sizeof quiet);
    /* NOLINTNEXTLINE(concurrency-mt-unsafe): getopt runs before any thread starts */
    while ((opt = getopt(argc, argv, "n:c:d:s:q:m:k:T:H:w:hr:")) != -1) {
        switch (opt) {
        case 'n': total = (unsigned long) parse_number(optarg, 1); break;
        case 'c': conc = (unsigned long) parse_number(optarg, 1); break;
        case 'd': duration = parse_number(optarg, 0.001); break;
        case 's': slice = parse_number(optarg, 0.001); break;
        case 'q':
            colon = strchr(optarg, ':');
            if (colon == NULL)
                usage();
            *colon = '\0';
            quiet.at = parse_number(optarg, 0);
            quiet.length = parse_number(colon + 1, 0);
            break;
        case 'm': prefix = optarg; break;
        case 'k': first_key = (unsigned long) parse_number(optarg, 0); break;
        case 'T': timeout = parse_number(optarg, 0.001); break;
        case 'H': held = (unsigned long) parse_number(optarg, 1); break;
        case 'w': hold_path = optarg; break;
        case 'h': half_close = 1; break;
        case 'r': rate = parse_number(optarg, 0.001); break;
        default: usage();
        }
    }
    if (argc - optind != 2 || conc > MAX_THREADS || (held > 0) != (hold_path != NULL))
        usage();
    memset(&server, 0, sizeof server);
    server.sin_family = AF_INET;
    port = parse_number(argv[optind + 1], 1);
    if (port > 65535 || port != (double) (unsigned short) port)
        usage();
    server.sin_port = htons((unsigned short) port);
    if (inet_pton(AF_INET, argv[optind], &server.sin_addr) != 1) {
        fprintf(stderr, "loadgen: HOST must be an IPv4 address, such as 127.0.0.1\n");
        return 2;
    }
    /* A server that hangs up early must give us an error, not kill us. */
    signal(SIGPIPE, SIG_IGN);
    raise_fd_limit();
    clock_gettime(CLOCK_MONOTONIC, &start);

    if (held > 0)
        return hold(held, hold_path);

    if (duration == 0 && total < conc)
        conc = total;
    for (i = 0; i < conc; i++) {
        workers[i].next_key = first_key + i;
        workers[i].step = conc;
        workers[i].deadline = duration;
        /* Share TOTAL out: the first TOTAL % CONC workers make one more. */
        workers[i].todo = duration > 0 ? 0 : total / conc + (i < total % conc);
        /* -r RATE: CONC workers, each making RATE / CONC connections a
         * second, spread out so that they do not all start at once. */
        if (rate > 0) {
            workers[i].interval = (double) conc / rate;
            workers[i].offset = (double) i / rate;
        }
        start_thread(&workers[i].thread, work, &workers[i]);
    }
    if (quiet.length > 0) {
        /* Its key comes after every key the workers can use in this run. */
        quiet.key = first_key + 1000000000UL;
        start_thread(&quiet.thread, stay_silent, &quiet);
    }
    memset(&all, 0, sizeof all);
    for (i = 0; i < conc; i++) {
        pthread_join(workers[i].thread, NULL);
        add_results(&all, &workers[i].res);
        free_results(&workers[i].res);
    }
    finished = seconds_since_start();
    if (slice > 0)
        print_slices(&all, slice, duration > 0 ? duration : finished);
    report(&all, finished);
    failed = all.count == 0;
    for (k = 1; k < NOUTCOMES; k++)
        failed |= all.outcomes[k] != 0;
    if (quiet.length > 0) {
        pthread_join(quiet.thread, NULL);
        printf("silent ok=%lu secs=%.3f\n", quiet.res.outcomes[OK],
               quiet.res.count > 0 ? quiet.res.latency[0] : 0.0);
        failed |= quiet.res.outcomes[OK] != 1;
        if (quiet.res.first_error[0] != '\0')
            fprintf(stderr, "loadgen: silent client: %s\n", quiet.res.first_error);
        free_results(&quiet.res);
    }
    free_results(&all);
    return failed ? 1 : 0;
}
