/* loadgen — the load generator for the network workloads of
 * docs/bench.md: echo-rr, echo-stream, echo-idle and chat-fanout, against
 * a server on 127.0.0.1 in another process.
 *
 *   loadgen <workload> [--host 127.0.0.1] [--port N] [--conns N] [--secs S]
 *           [--size B] [--mbytes M] [--clients N] [--n N] [--server-pid PID]
 *           [--impl NAME] [--threads T] [--timeout S]
 *
 *   echo-rr      --conns 64 --size 64 --secs 10: every connection sends a
 *                size-byte payload, waits for its exact echo, repeats.
 *                rate = requests/s; p50_us and p99_us of the round trip.
 *   echo-stream  --conns 16 --mbytes 64: every connection streams mbytes
 *                MiB (a pattern of its own) and reads it all back, then
 *                half-closes and expects the server's FIN after the last
 *                byte. rate = MiB sent per second of wall time.
 *   echo-idle    --conns 10000 --secs 5 --server-pid PID: opens conns connections,
 *                paced so the listen backlog never fills, lets them sit,
 *                reads the server's VmRSS and its CPU time over secs
 *                (idle_cpu_pct, share of one core), then checks that every
 *                one still echoes. rate = (VmRSS after - before) / conns.
 *   chat-fanout  --clients 100 --n 1000 (examples/chat, docs/chat-protocol.md):
 *                the clients set nicks lg0.., join #bench, then each sends
 *                n lines "MSG #bench <client>:<seq>"; every client must get
 *                every line of every client, each sender's in order.
 *                Sending is paced so that no client's unread output at the
 *                server can pass 256 KiB (the server drops at 1 MiB).
 *                rate = deliveries (clients * clients * n) per second.
 *   probe        connects until the server accepts (--secs, default 10);
 *                prints nothing on stdout. For run.sh.
 *
 * --threads and --impl only label the result line (threads: the server's
 * worker threads, 0 = unknown). One thread, epoll, non-blocking sockets;
 * it does not use the troupe library. Prints one result line on stdout
 * (bench.h's format), progress on stderr; any verification failure,
 * connection error, stall (30 s without progress) or timeout (--timeout,
 * default: the expected duration plus 60 s) prints check=FAIL and exits 1.
 */
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define STALL_SECS 30.0
#define MAX_EVENTS 512
#define CONNECT_WINDOW 64  /* connects in progress at once */
#define ACCEPT_WINDOW 256  /* echo-idle: connected but not yet accepted */

static struct {
    const char *workload, *host, *impl;
    uint64_t port, conns, secs, size, mbytes, clients, n, server_pid, threads, timeout;
} o = { .host = "127.0.0.1", .impl = "troupe" };

static char params[256];       /* "conns=64 size=64" */
static char extra[128];        /* figures between the params and secs= */
static const char *unit = "";
static double t_measure;       /* start of the measured part, 0 before */
static double deadline, last_progress;
static int epfd = -1;
static void (*describe)(char *buf, size_t len); /* where a run stands, for a timeout */
static struct sockaddr_storage addr;
static socklen_t addr_len;

/* ---- basics ---- */

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void result(double secs, double rate, bool ok)
{
    printf("bench=%s impl=%s threads=%" PRIu64 " %s%s%s secs=%.3f rate=%.0f unit=%s check=%s\n",
           o.workload, o.impl, o.threads, params, extra[0] ? " " : "", extra, secs, rate,
           unit, ok ? "ok" : "FAIL");
    fflush(stdout);
}

/* Any failure: say why, print the FAIL line (not for probe) and exit 1. */
__attribute__((format(printf, 1, 2), noreturn))
static _Noreturn void die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "loadgen: %s: ", o.workload ? o.workload : "");
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    if (o.workload != NULL && strcmp(o.workload, "probe") != 0)
        result(t_measure > 0 ? now() - t_measure : 0, 0, false);
    exit(1);
}

static void where(char *buf, size_t len)
{
    buf[0] = '\0';
    if (describe != NULL) {
        memcpy(buf, ": ", 3);
        describe(buf + 2, len - 2);
    }
}

static void progress(void)
{
    last_progress = now();
}

static void note(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void note(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "loadgen: %s: ", o.workload);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

static void *xcalloc(size_t n, size_t size)
{
    void *p = calloc(n == 0 ? 1 : n, size == 0 ? 1 : size);
    if (p == NULL)
        die("out of memory (%zu x %zu bytes)", n, size);
    return p;
}

static void set_deadline(double secs)
{
    deadline = now() + (o.timeout != 0 ? (double)o.timeout : secs);
    progress();
}

/* epoll_wait that never waits past the deadline and fails on a timeout or
 * a stall. timeout_ms < 0: up to a second. */
static int wait_events(struct epoll_event *evs, int max, int timeout_ms)
{
    double t = now();
    char at[256];
    if (t > deadline) {
        where(at, sizeof at);
        die("timed out%s", at);
    }
    if (t - last_progress > STALL_SECS) {
        where(at, sizeof at);
        die("no progress for %.0f s%s", STALL_SECS, at);
    }
    double left_ms = (deadline - t) * 1000.0 + 1.0;
    if (timeout_ms < 0 || timeout_ms > 1000)
        timeout_ms = 1000;
    if (left_ms < timeout_ms)
        timeout_ms = (int)left_ms;
    int n = epoll_wait(epfd, evs, max, timeout_ms);
    if (n < 0) {
        if (errno == EINTR)
            return 0;
        die("epoll_wait: %s", strerror(errno));
    }
    return n;
}

static void ep_ctl(int op, int fd, uint32_t events, uint64_t data)
{
    struct epoll_event ev = {.events = events, .data.u64 = data};
    if (epoll_ctl(epfd, op, fd, &ev) != 0)
        die("epoll_ctl: %s", strerror(errno));
}

static void raise_nofile(size_t need)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        die("getrlimit: %s", strerror(errno));
    if (rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
            die("setrlimit: %s", strerror(errno));
    }
    if (rl.rlim_cur != RLIM_INFINITY && need + 16 > rl.rlim_cur)
        die("%zu connections need more descriptors than the hard limit (%llu)", need,
            (unsigned long long)rl.rlim_cur);
}

static void resolve(void)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *res;
    char port[16];
    snprintf(port, sizeof port, "%" PRIu64, o.port);
    int r = getaddrinfo(o.host, port, &hints, &res);
    if (r != 0)
        die("%s: %s", o.host, gai_strerror(r));
    memcpy(&addr, res->ai_addr, res->ai_addrlen);
    addr_len = res->ai_addrlen;
    freeaddrinfo(res);
}

/* Starts a non-blocking connect; the socket, or -errno. */
static int connect_start(void)
{
    int fd = socket(addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (connect(fd, (struct sockaddr *)&addr, addr_len) != 0 && errno != EINPROGRESS) {
        int err = errno;
        close(fd);
        return -err;
    }
    return fd;
}

/* Descriptors the server holds (its /proc/PID/fd), or -1. */
static long server_fds(void)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%" PRIu64 "/fd", o.server_pid);
    DIR *d = opendir(path);
    if (d == NULL)
        return -1;
    long n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        if (e->d_name[0] != '.')
            n++;
    closedir(d);
    return n;
}

/* The server's resident memory in bytes (VmRSS of /proc/PID/status). */
static uint64_t server_rss(void)
{
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%" PRIu64 "/status", o.server_pid);
    FILE *f = fopen(path, "r");
    if (f == NULL)
        die("%s: %s (is the server running?)", path, strerror(errno));
    unsigned long long kb = 0;
    bool found = false;
    while (fgets(line, sizeof line, f) != NULL)
        if (sscanf(line, "VmRSS: %llu kB", &kb) == 1) {
            found = true;
            break;
        }
    fclose(f);
    if (!found)
        die("%s has no VmRSS line", path);
    return (uint64_t)kb * 1024;
}

/* CPU time the server's threads have used, in ns (the first field of each
 * /proc/PID/task/TID/schedstat), or -1 if it cannot be read. */
static double server_cpu_ns(void)
{
    char path[96];
    snprintf(path, sizeof path, "/proc/%" PRIu64 "/task", o.server_pid);
    DIR *d = opendir(path);
    if (d == NULL)
        return -1;
    double sum = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        char stat[160];
        snprintf(stat, sizeof stat, "%s/%.32s/schedstat", path, e->d_name);
        FILE *f = fopen(stat, "r");
        unsigned long long ns = 0;
        if (f != NULL) {
            if (fscanf(f, "%llu", &ns) == 1)
                sum += (double)ns;
            fclose(f);
        }
    }
    closedir(d);
    return sum;
}

/* Opens count connections, at most CONNECT_WINDOW connecting at once; with
 * pace, also at most ACCEPT_WINDOW that the server has not accepted yet
 * (counted in its /proc/PID/fd against base_fds), so that the listen
 * backlog never overflows. The sockets come back out of the epoll set. */
static size_t conn_done, conn_count;
static long conn_accepted;

static void describe_connect(char *buf, size_t len)
{
    snprintf(buf, len, "%zu of %zu connected, %ld accepted by the server", conn_done, conn_count,
             conn_accepted);
}

static void connect_all(int *fds, size_t count, bool pace, long base_fds)
{
    struct epoll_event evs[MAX_EVENTS];
    size_t opened = 0, done = 0, inflight = 0;
    long accepted = 0;
    double next_note = now() + 5;
    if (pace && base_fds < 0) {
        note("cannot read /proc/%" PRIu64 "/fd: opening without pacing", o.server_pid);
        pace = false;
    }
    while (done < count) {
        bool held = false;
        while (opened < count && inflight < CONNECT_WINDOW) {
            if (pace && (long)opened - accepted >= ACCEPT_WINDOW) {
                long got = server_fds() - base_fds;
                if (got > accepted) {
                    accepted = got;
                    progress();
                }
                if ((long)opened - accepted >= ACCEPT_WINDOW) {
                    held = true;
                    break;
                }
            }
            int fd = connect_start();
            if (fd < 0)
                die("connection %zu: connect: %s", opened, strerror(-fd));
            fds[opened] = fd;
            ep_ctl(EPOLL_CTL_ADD, fd, EPOLLOUT, opened);
            opened++;
            inflight++;
        }
        int n = wait_events(evs, MAX_EVENTS, held ? 1 : -1);
        for (int k = 0; k < n; k++) {
            size_t i = (size_t)evs[k].data.u64;
            int err = 0;
            socklen_t len = sizeof err;
            if (getsockopt(fds[i], SOL_SOCKET, SO_ERROR, &err, &len) != 0)
                err = errno;
            if (err != 0)
                die("connection %zu: connect: %s", i, strerror(err));
            ep_ctl(EPOLL_CTL_DEL, fds[i], 0, 0);
            inflight--;
            done++;
            progress();
        }
        conn_done = done;
        conn_count = count;
        conn_accepted = pace ? accepted : -1;
        describe = describe_connect;
        if (count >= 1000 && now() > next_note) {
            note("%zu of %zu connected", done, count);
            next_note = now() + 5;
        }
    }
}

/* xorshift64*: the payloads' bytes. */
static uint64_t mix(uint64_t *s)
{
    uint64_t x = *s;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *s = x;
    return x * 0x2545F4914F6CDD1DULL;
}

/* ---- echo-rr ---- */

typedef struct rr_conn {
    int fd;
    bool busy, want_out;
    uint32_t seq;
    size_t woff, roff;
    uint64_t t0;
    unsigned char *buf;
} rr_conn;

#define HIST_MAX 1000000u /* µs: one bucket per µs up to 1 s */

static uint32_t *hist;
static uint64_t rr_done;
static size_t rr_active;
static double rr_end, rr_last;

static uint64_t percentile(double p)
{
    uint64_t want = (uint64_t)(p * (double)rr_done + 0.999999), seen = 0;
    if (want == 0)
        want = 1;
    for (uint32_t us = 0; us <= HIST_MAX; us++) {
        seen += hist[us];
        if (seen >= want)
            return us;
    }
    return HIST_MAX;
}

static void rr_write(rr_conn *c, size_t i)
{
    while (c->woff < o.size) {
        ssize_t w = send(c->fd, c->buf + c->woff, o.size - c->woff, MSG_NOSIGNAL);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            if (errno != EAGAIN && errno != EWOULDBLOCK)
                die("connection %zu: send: %s", i, strerror(errno));
            break;
        }
        c->woff += (size_t)w;
    }
    bool want = c->woff < o.size;
    if (want != c->want_out) {
        ep_ctl(EPOLL_CTL_MOD, c->fd, EPOLLIN | (want ? EPOLLOUT : 0), i);
        c->want_out = want;
    }
}

static void rr_start(rr_conn *c, size_t i)
{
    uint64_t s = ((uint64_t)i << 32 | c->seq) * 0x9E3779B97F4A7C15ULL | 1, x = 0;
    for (size_t k = 0; k < o.size; k++) {
        if (k % 8 == 0)
            x = mix(&s);
        c->buf[k] = (unsigned char)(x >> (8 * (k % 8)));
    }
    c->busy = true;
    c->woff = c->roff = 0;
    c->t0 = now_ns();
    rr_write(c, i);
}

static void rr_read(rr_conn *c, size_t i)
{
    static unsigned char in[65536];
    ssize_t r = recv(c->fd, in, sizeof in, 0);
    if (r < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
            return;
        die("connection %zu: recv: %s", i, strerror(errno));
    }
    if (r == 0)
        die("connection %zu: closed by the server (request %" PRIu32 ", %zu of %" PRIu64
            " bytes back)", i, c->seq, c->roff, o.size);
    if (!c->busy || c->roff + (size_t)r > o.size)
        die("connection %zu: request %" PRIu32 ": more bytes back than the %" PRIu64 " sent",
            i, c->seq, o.size);
    if (memcmp(in, c->buf + c->roff, (size_t)r) != 0) {
        size_t k = 0;
        while (in[k] == c->buf[c->roff + k])
            k++;
        die("connection %zu: request %" PRIu32 ": echo differs at byte %zu", i, c->seq,
            c->roff + k);
    }
    c->roff += (size_t)r;
    if (c->roff < o.size)
        return;
    uint64_t us = (now_ns() - c->t0) / 1000;
    hist[us < HIST_MAX ? us : HIST_MAX]++;
    rr_done++;
    progress();
    double t = last_progress;
    rr_last = t;
    c->seq++;
    if (t < rr_end) {
        rr_start(c, i);
    } else {
        c->busy = false;
        rr_active--;
    }
}

static void describe_rr(char *buf, size_t len)
{
    snprintf(buf, len, "%" PRIu64 " requests done, %zu connections waiting for an echo",
             rr_done, rr_active);
}

static void echo_rr(void)
{
    if (o.conns == 0)
        o.conns = 64;
    if (o.size == 0)
        o.size = 64;
    if (o.secs == 0)
        o.secs = 10;
    snprintf(params, sizeof params, "conns=%" PRIu64 " size=%" PRIu64, o.conns, o.size);
    unit = "requests";
    raise_nofile(o.conns);
    hist = xcalloc(HIST_MAX + 1, sizeof *hist);
    rr_conn *cs = xcalloc(o.conns, sizeof *cs);
    int *fds = xcalloc(o.conns, sizeof *fds);
    set_deadline((double)o.secs + 60);
    connect_all(fds, o.conns, false, -1);
    for (size_t i = 0; i < o.conns; i++) {
        cs[i].fd = fds[i];
        cs[i].buf = xcalloc(o.size, 1);
        ep_ctl(EPOLL_CTL_ADD, cs[i].fd, EPOLLIN, i);
    }
    note("%" PRIu64 " connections, %" PRIu64 "-byte requests for %" PRIu64 " s", o.conns,
         o.size, o.secs);

    describe = describe_rr;
    t_measure = now();
    rr_end = t_measure + (double)o.secs;
    rr_active = o.conns;
    for (size_t i = 0; i < o.conns; i++)
        rr_start(&cs[i], i);
    struct epoll_event evs[MAX_EVENTS];
    while (rr_active > 0) {
        int n = wait_events(evs, MAX_EVENTS, -1);
        for (int k = 0; k < n; k++) {
            size_t i = (size_t)evs[k].data.u64;
            if (evs[k].events & (EPOLLIN | EPOLLERR | EPOLLHUP))
                rr_read(&cs[i], i);
            if ((evs[k].events & EPOLLOUT) && cs[i].busy)
                rr_write(&cs[i], i);
        }
    }
    double secs = rr_last - t_measure;
    for (size_t i = 0; i < o.conns; i++) {
        close(cs[i].fd);
        free(cs[i].buf);
    }
    snprintf(extra, sizeof extra, "p50_us=%" PRIu64 " p99_us=%" PRIu64, percentile(0.50),
             percentile(0.99));
    note("%" PRIu64 " requests, all echoes verified", rr_done);
    result(secs, (double)rr_done / (secs > 1e-9 ? secs : 1e-9), true);
    free(fds);
    free(cs);
    free(hist);
}

/* ---- echo-stream ---- */

/* Connection c's byte k is pat[(start_c + k) % PAT_LEN]; the pattern is
 * stored twice so that any PAT_LEN bytes of it are contiguous. A prime
 * length keeps it out of step with every buffer size on the way. */
#define PAT_LEN 65521u
#define STREAM_READ (256 * 1024)

typedef struct st_conn {
    int fd;
    bool shut, eof;
    uint32_t start;
    uint64_t sent, recvd;
} st_conn;

static unsigned char pat[2 * PAT_LEN];
static uint64_t st_total;
static size_t st_open;

static void st_write(st_conn *c, size_t i)
{
    while (c->sent < st_total) {
        size_t off = (size_t)((c->start + c->sent) % PAT_LEN);
        uint64_t left = st_total - c->sent;
        size_t len = left < PAT_LEN ? (size_t)left : PAT_LEN;
        ssize_t w = send(c->fd, pat + off, len, MSG_NOSIGNAL);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                return;
            die("connection %zu: send after %" PRIu64 " bytes: %s", i, c->sent,
                strerror(errno));
        }
        c->sent += (uint64_t)w;
        progress();
    }
    if (!c->shut) {
        /* Everything is sent: the server should echo the rest, then close. */
        if (shutdown(c->fd, SHUT_WR) != 0)
            die("connection %zu: shutdown: %s", i, strerror(errno));
        c->shut = true;
    }
}

static void st_read(st_conn *c, size_t i)
{
    static unsigned char in[STREAM_READ];
    while (!c->eof) {
        ssize_t r = recv(c->fd, in, sizeof in, 0);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                return;
            die("connection %zu: recv after %" PRIu64 " of %" PRIu64 " bytes: %s", i,
                c->recvd, st_total, strerror(errno));
        }
        if (r == 0) {
            if (c->recvd != st_total)
                die("connection %zu: closed by the server after %" PRIu64 " of %" PRIu64
                    " bytes", i, c->recvd, st_total);
            c->eof = true;
            ep_ctl(EPOLL_CTL_DEL, c->fd, 0, 0);
            st_open--;
            progress();
            return;
        }
        if (c->recvd + (uint64_t)r > st_total)
            die("connection %zu: %" PRIu64 " bytes back, more than the %" PRIu64 " sent", i,
                c->recvd + (uint64_t)r, st_total);
        for (size_t k = 0; k < (size_t)r;) {
            size_t off = (size_t)((c->start + c->recvd) % PAT_LEN);
            size_t m = (size_t)r - k < PAT_LEN ? (size_t)r - k : PAT_LEN;
            if (memcmp(in + k, pat + off, m) != 0) {
                size_t j = 0;
                while (in[k + j] == pat[off + j])
                    j++;
                die("connection %zu: byte %" PRIu64 " of the stream differs from what was sent",
                    i, c->recvd + j);
            }
            k += m;
            c->recvd += m;
        }
        progress();
    }
}

static st_conn *st_conns;

static void describe_stream(char *buf, size_t len)
{
    uint64_t sent = 0, back = 0;
    for (size_t i = 0; i < o.conns; i++) {
        sent += st_conns[i].sent;
        back += st_conns[i].recvd;
    }
    snprintf(buf, len, "%zu of %" PRIu64 " connections unfinished; %.1f MiB sent, %.1f MiB back",
             st_open, o.conns, (double)sent / 1048576, (double)back / 1048576);
}

static void echo_stream(void)
{
    if (o.conns == 0)
        o.conns = 16;
    if (o.mbytes == 0)
        o.mbytes = 64;
    snprintf(params, sizeof params, "conns=%" PRIu64 " mbytes=%" PRIu64, o.conns, o.mbytes);
    unit = "MiB";
    st_total = o.mbytes << 20;
    raise_nofile(o.conns);
    uint64_t seed = 0x243F6A8885A308D3ULL;
    for (size_t k = 0; k < PAT_LEN; k++)
        pat[k] = pat[k + PAT_LEN] = (unsigned char)(mix(&seed) >> 56);
    st_conn *cs = xcalloc(o.conns, sizeof *cs);
    int *fds = xcalloc(o.conns, sizeof *fds);
    double total_mib = (double)o.conns * (double)o.mbytes;
    set_deadline(60 + total_mib / 5);
    connect_all(fds, o.conns, false, -1);
    note("%" PRIu64 " connections x %" PRIu64 " MiB", o.conns, o.mbytes);

    st_conns = cs;
    describe = describe_stream;
    t_measure = now();
    st_open = o.conns;
    for (size_t i = 0; i < o.conns; i++) {
        cs[i].fd = fds[i];
        cs[i].start = (uint32_t)((i * 40503u + 12345u) % PAT_LEN);
        /* Edge-triggered: each side is driven until EAGAIN. */
        ep_ctl(EPOLL_CTL_ADD, cs[i].fd, EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET, i);
    }
    struct epoll_event evs[MAX_EVENTS];
    while (st_open > 0) {
        int n = wait_events(evs, MAX_EVENTS, -1);
        for (int k = 0; k < n; k++) {
            size_t i = (size_t)evs[k].data.u64;
            if (cs[i].eof)
                continue;
            st_write(&cs[i], i);
            st_read(&cs[i], i);
        }
    }
    double secs = now() - t_measure;
    for (size_t i = 0; i < o.conns; i++)
        close(cs[i].fd);
    note("%.0f MiB each way, all verified", total_mib);
    result(secs, total_mib / (secs > 1e-9 ? secs : 1e-9), true);
    free(fds);
    free(cs);
}

/* ---- echo-idle ---- */

#define IDLE_MSG 16

static void idle_msg(char *m, size_t i)
{
    char tmp[IDLE_MSG + 1];
    snprintf(tmp, sizeof tmp, "idle %010zu\n", i % 10000000000u);
    memcpy(m, tmp, IDLE_MSG);
}

static size_t idle_left;

static void describe_idle(char *buf, size_t len)
{
    snprintf(buf, len, "%zu of %" PRIu64 " connections have not echoed", idle_left, o.conns);
}

static void echo_idle(void)
{
    if (o.conns == 0)
        o.conns = 10000;
    if (o.secs == 0)
        o.secs = 5;
    snprintf(params, sizeof params, "conns=%" PRIu64, o.conns);
    unit = "bytes/conn";
    if (o.server_pid == 0)
        die("needs --server-pid (the server's resident memory is the figure)");
    raise_nofile(o.conns);
    int *fds = xcalloc(o.conns, sizeof *fds);
    unsigned char *got = xcalloc(o.conns, 1);
    set_deadline(60 + (double)o.secs + (double)o.conns / 100);

    uint64_t before = server_rss();
    long base = server_fds();
    t_measure = now();
    connect_all(fds, o.conns, true, base);
    /* Connected is not accepted: wait for the server to hold them all. */
    if (base >= 0) {
        long have = 0, last = -1;
        while ((have = server_fds() - base) < (long)o.conns) {
            if (have != last) {
                last = have;
                conn_accepted = have;
                progress();
            }
            struct epoll_event ev;
            wait_events(&ev, 1, 10);
        }
    }
    /* Then let the connection set-up finish: until RSS stops moving. */
    uint64_t after = server_rss(), prev = 0;
    for (int k = 0; k < 30 && after != prev; k++) {
        struct epoll_event ev;
        wait_events(&ev, 1, 100);
        prev = after;
        after = server_rss();
    }
    note("server VmRSS %.1f MiB before, %.1f MiB with %" PRIu64 " idle connections",
         (double)before / 1048576, (double)after / 1048576, o.conns);

    /* An idle server uses no CPU: its share of one core over --secs. */
    double cpu0 = server_cpu_ns(), t0 = now();
    while (now() - t0 < (double)o.secs) {
        struct epoll_event ev;
        wait_events(&ev, 1, 100);
    }
    double cpu1 = server_cpu_ns(), idle_pct = 100 * (cpu1 - cpu0) / ((now() - t0) * 1e9);
    if (cpu0 >= 0 && cpu1 >= 0) {
        snprintf(extra, sizeof extra, "idle_cpu_pct=%.3f", idle_pct);
        note("server CPU with %" PRIu64 " idle connections: %.3f%% of one core over %" PRIu64
             " s", o.conns, idle_pct, o.secs);
    }

    /* Every one still echoes. */
    char m[IDLE_MSG];
    for (size_t i = 0; i < o.conns; i++) {
        idle_msg(m, i);
        ssize_t w = send(fds[i], m, IDLE_MSG, MSG_NOSIGNAL);
        if (w != IDLE_MSG)
            die("connection %zu: send: %s", i, w < 0 ? strerror(errno) : "short write");
        ep_ctl(EPOLL_CTL_ADD, fds[i], EPOLLIN, i);
    }
    idle_left = o.conns;
    describe = describe_idle;
    struct epoll_event evs[MAX_EVENTS];
    while (idle_left > 0) {
        int n = wait_events(evs, MAX_EVENTS, -1);
        for (int k = 0; k < n; k++) {
            size_t i = (size_t)evs[k].data.u64;
            char in[IDLE_MSG + 1];
            ssize_t r = recv(fds[i], in, sizeof in, 0);
            if (r < 0 && (errno == EAGAIN || errno == EINTR))
                continue;
            if (r < 0)
                die("connection %zu: recv: %s", i, strerror(errno));
            if (r == 0)
                die("connection %zu: closed by the server (%u of %d bytes back)", i, got[i],
                    IDLE_MSG);
            if (got[i] + (size_t)r > IDLE_MSG)
                die("connection %zu: more bytes back than sent", i);
            idle_msg(m, i);
            if (memcmp(in, m + got[i], (size_t)r) != 0)
                die("connection %zu: echo differs from what was sent", i);
            got[i] = (unsigned char)(got[i] + r);
            if (got[i] == IDLE_MSG) {
                ep_ctl(EPOLL_CTL_DEL, fds[i], 0, 0);
                idle_left--;
                progress();
            }
        }
    }
    double secs = now() - t_measure;
    for (size_t i = 0; i < o.conns; i++)
        close(fds[i]);
    note("all %" PRIu64 " connections echoed", o.conns);
    result(secs, ((double)after - (double)before) / (double)o.conns, true);
    free(got);
    free(fds);
}

/* ---- chat-fanout ---- */

#define ROOM "#bench"
#define IN_CAP (64 * 1024)
#define UNREAD_MAX (256 * 1024) /* bytes of MSG lines a client may have unread */

enum { C_HELLO, C_NICK, C_JOIN, C_JOINED };

typedef struct client {
    int fd;
    int state;
    bool want_out;
    char *in, *out;
    size_t inlen, outoff, outlen, outcap;
    uint64_t sent, own, got;
    uint64_t *next; /* per sender: the seq expected next */
} client;

static client *cl;
static uint64_t ch_joined, ch_finished, ch_total_sent;
static bool ch_running;
static double ch_last;

static void ch_flush(client *c, size_t i)
{
    while (c->outoff < c->outlen) {
        ssize_t w = send(c->fd, c->out + c->outoff, c->outlen - c->outoff, MSG_NOSIGNAL);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            if (errno != EAGAIN && errno != EWOULDBLOCK)
                die("client %zu: send: %s", i, strerror(errno));
            break;
        }
        c->outoff += (size_t)w;
    }
    if (c->outoff == c->outlen)
        c->outoff = c->outlen = 0;
    bool want = c->outlen > 0;
    if (want != c->want_out) {
        ep_ctl(EPOLL_CTL_MOD, c->fd, EPOLLIN | (want ? EPOLLOUT : 0), i);
        c->want_out = want;
    }
}

static void ch_append(client *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void ch_append(client *c, const char *fmt, ...)
{
    if (c->outoff > 0 && c->outcap - c->outlen < 128) {
        memmove(c->out, c->out + c->outoff, c->outlen - c->outoff);
        c->outlen -= c->outoff;
        c->outoff = 0;
    }
    if (c->outcap - c->outlen < 128) {
        c->outcap = c->outcap * 2 + 256;
        c->out = realloc(c->out, c->outcap);
        if (c->out == NULL)
            die("out of memory");
    }
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(c->out + c->outlen, c->outcap - c->outlen, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= c->outcap - c->outlen)
        die("line too long");
    c->outlen += (size_t)n;
}

/* Digits at *p up to the character stop; false if none or not followed by stop. */
static bool parse_num(const char **p, const char *end, char stop, uint64_t *v)
{
    const char *s = *p;
    uint64_t x = 0;
    if (s == end || *s < '0' || *s > '9')
        return false;
    while (s < end && *s >= '0' && *s <= '9')
        x = x * 10 + (uint64_t)(*s++ - '0');
    if (stop != '\0' ? (s == end || *s != stop) : s != end)
        return false;
    *v = x;
    *p = s + (stop != '\0');
    return true;
}

static bool starts(const char *line, size_t len, const char *prefix)
{
    size_t k = strlen(prefix);
    return len >= k && memcmp(line, prefix, k) == 0;
}

static void ch_line(client *c, size_t i, const char *line, size_t len)
{
    static const char msg[] = "MSG " ROOM " lg";
    if (len > 0 && line[len - 1] == '\r')
        len--;
    if (ch_running && starts(line, len, msg)) {
        const char *p = line + sizeof msg - 1, *end = line + len;
        uint64_t from, from2, seq;
        if (!parse_num(&p, end, ' ', &from) || !parse_num(&p, end, ':', &from2) ||
            !parse_num(&p, end, '\0', &seq) || from != from2 || from >= o.clients)
            die("client %zu: malformed line '%.*s'", i, (int)len, line);
        if (seq != c->next[from])
            die("client %zu: from client %" PRIu64 " got line %" PRIu64 ", want %" PRIu64
                " (lost, repeated or out of order)", i, from, seq, c->next[from]);
        c->next[from]++;
        if (from == i)
            c->own++;
        if (++c->got == o.clients * o.n) {
            ch_finished++;
            ch_last = now();
        }
        return;
    }
    if (starts(line, len, "JOINED " ROOM " ") && c->state >= C_JOIN)
        return; /* someone else joined */
    if (c->state == C_HELLO && starts(line, len, "HELLO")) {
        ch_append(c, "NICK lg%zu\n", i);
        c->state = C_NICK;
        return;
    }
    char want[64];
    if (c->state == C_NICK) {
        snprintf(want, sizeof want, "OK NICK lg%zu", i);
        if (len == strlen(want) && memcmp(line, want, len) == 0) {
            ch_append(c, "JOIN " ROOM "\n");
            c->state = C_JOIN;
            return;
        }
    }
    if (c->state == C_JOIN && len == strlen("OK JOIN " ROOM) &&
        memcmp(line, "OK JOIN " ROOM, len) == 0) {
        c->state = C_JOINED;
        ch_joined++;
        return;
    }
    die("client %zu: unexpected line '%.*s'%s", i, (int)(len < 200 ? len : 200), line,
        ch_running || c->state != C_JOINED ? "" : " (before any MSG was sent)");
}

static void ch_read(client *c, size_t i)
{
    ssize_t r = recv(c->fd, c->in + c->inlen, IN_CAP - c->inlen, 0);
    if (r < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
            return;
        die("client %zu: recv: %s", i, strerror(errno));
    }
    if (r == 0)
        die("client %zu: closed by the server (%" PRIu64 " of %" PRIu64 " lines received)", i,
            c->got, o.clients * o.n);
    progress();
    c->inlen += (size_t)r;
    char *p = c->in, *end = c->in + c->inlen, *nl;
    while ((nl = memchr(p, '\n', (size_t)(end - p))) != NULL) {
        ch_line(c, i, p, (size_t)(nl - p));
        p = nl + 1;
    }
    c->inlen = (size_t)(end - p);
    if (c->inlen == IN_CAP)
        die("client %zu: a line longer than %d bytes", i, IN_CAP);
    memmove(c->in, p, c->inlen);
}

static void describe_chat(char *buf, size_t len)
{
    if (!ch_running) {
        size_t at[C_JOINED + 1] = {0};
        for (size_t i = 0; i < o.clients; i++)
            at[cl[i].state]++;
        snprintf(buf, len, "setting up: %zu clients wait for HELLO, %zu for OK NICK, %zu for"
                 " OK JOIN, %zu joined", at[C_HELLO], at[C_NICK], at[C_JOIN], at[C_JOINED]);
        return;
    }
    size_t slow = 0;
    for (size_t i = 1; i < o.clients; i++)
        if (cl[i].got < cl[slow].got)
            slow = i;
    snprintf(buf, len, "%" PRIu64 " of %" PRIu64 " clients done; %" PRIu64 " lines sent; the"
             " slowest, client %zu, has %" PRIu64 " of %" PRIu64 " lines", ch_finished,
             o.clients, ch_total_sent, slow, cl[slow].got, o.clients * o.n);
}

static void chat_fanout(void)
{
    if (o.port == 0)
        o.port = 7000;
    if (o.clients == 0)
        o.clients = 100;
    if (o.n == 0)
        o.n = 1000;
    snprintf(params, sizeof params, "clients=%" PRIu64 " n=%" PRIu64, o.clients, o.n);
    unit = "deliveries";
    if (o.clients > 1000000)
        die("--clients must be at most 1000000");
    raise_nofile(o.clients);
    resolve();
    uint64_t deliveries = o.clients * o.clients * o.n;
    set_deadline(60 + (double)deliveries / 20000);

    /* Pacing: a client sends while fewer than `window` of its own lines
     * are unanswered, and while no client has more than `global` lines
     * unread (sent by anyone, not yet received by the slowest reader). */
    char longest[96];
    int linelen = snprintf(longest, sizeof longest, "MSG " ROOM " lg%" PRIu64 " %" PRIu64
                           ":%" PRIu64 "\n", o.clients, o.clients, o.n);
    uint64_t global = UNREAD_MAX / (uint64_t)linelen;
    uint64_t window = global / o.clients > 1 ? global / o.clients : 1;

    cl = xcalloc(o.clients, sizeof *cl);
    int *fds = xcalloc(o.clients, sizeof *fds);
    connect_all(fds, o.clients, false, -1);
    for (size_t i = 0; i < o.clients; i++) {
        client *c = &cl[i];
        c->fd = fds[i];
        c->in = xcalloc(IN_CAP, 1);
        c->outcap = (size_t)(window + 4) * 64;
        c->out = xcalloc(c->outcap, 1);
        c->next = xcalloc(o.clients, sizeof *c->next);
        ep_ctl(EPOLL_CTL_ADD, c->fd, EPOLLIN, i);
    }
    note("%" PRIu64 " clients connected; joining " ROOM, o.clients);
    describe = describe_chat;

    struct epoll_event evs[MAX_EVENTS];
    double settle_until = 0;
    size_t rot = 0;
    while (ch_finished < o.clients) {
        int n = wait_events(evs, MAX_EVENTS, ch_running ? -1 : 10);
        for (int k = 0; k < n; k++) {
            size_t i = (size_t)evs[k].data.u64;
            if (evs[k].events & (EPOLLIN | EPOLLERR | EPOLLHUP))
                ch_read(&cl[i], i);
            if (evs[k].events & EPOLLOUT)
                ch_flush(&cl[i], i);
        }
        if (!ch_running) {
            if (ch_joined < o.clients) {
                for (size_t i = 0; i < o.clients; i++)
                    if (cl[i].outlen > 0 && !cl[i].want_out)
                        ch_flush(&cl[i], i);
                continue;
            }
            /* All are members; a moment for the JOINED notices to pass. */
            if (settle_until == 0) {
                settle_until = now() + 0.2;
                note("all joined; %" PRIu64 " lines each (%" PRIu64 " deliveries), at most %"
                     PRIu64 " own lines in flight per client", o.n, deliveries, window);
            }
            if (now() < settle_until)
                continue;
            ch_running = true;
            t_measure = now();
            progress();
        }
        uint64_t slowest = UINT64_MAX;
        for (size_t i = 0; i < o.clients; i++)
            if (cl[i].got < slowest)
                slowest = cl[i].got;
        uint64_t unread = ch_total_sent - slowest;
        uint64_t room = unread < global ? global - unread : 0;
        for (size_t k = 0; k < o.clients && room > 0; k++) {
            size_t i = (rot + k) % o.clients;
            client *c = &cl[i];
            uint64_t inflight = c->sent - c->own;
            if (c->sent == o.n || inflight >= window)
                continue;
            uint64_t m = window - inflight;
            if (m > o.n - c->sent)
                m = o.n - c->sent;
            if (m > room)
                m = room;
            for (uint64_t j = 0; j < m; j++)
                ch_append(c, "MSG " ROOM " %zu:%" PRIu64 "\n", i, c->sent++);
            room -= m;
            ch_total_sent += m;
            if (!c->want_out)
                ch_flush(c, i);
        }
        rot = (rot + 1) % o.clients;
    }
    double secs = ch_last - t_measure;
    for (size_t i = 0; i < o.clients; i++) {
        for (size_t j = 0; j < o.clients; j++)
            if (cl[i].next[j] != o.n)
                die("client %zu: %" PRIu64 " lines from client %zu, want %" PRIu64, i,
                    cl[i].next[j], j, o.n);
        close(cl[i].fd);
        free(cl[i].in);
        free(cl[i].out);
        free(cl[i].next);
    }
    note("%" PRIu64 " deliveries, every line of every client, in order", deliveries);
    result(secs, (double)deliveries / (secs > 1e-9 ? secs : 1e-9), true);
    free(fds);
    free(cl);
}

/* ---- probe ---- */

static void probe(void)
{
    double give_up = now() + (double)(o.secs ? o.secs : 10);
    o.timeout = 0;
    for (;;) {
        set_deadline(2);
        int fd = connect_start();
        int err = fd < 0 ? -fd : 0;
        if (fd >= 0) {
            struct epoll_event ev;
            ep_ctl(EPOLL_CTL_ADD, fd, EPOLLOUT, 0);
            err = ETIMEDOUT;
            if (wait_events(&ev, 1, 1000) == 1) {
                socklen_t len = sizeof err;
                if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0)
                    err = errno;
            }
            close(fd);
        }
        describe = NULL;
        if (err == 0)
            exit(0);
        if (now() > give_up)
            die("%s:%" PRIu64 ": %s", o.host, o.port, strerror(err));
        struct timespec ts = {.tv_nsec = 50 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
}

/* ---- command line ---- */

static void usage(FILE *to)
{
    fprintf(to, "usage: loadgen echo-rr|echo-stream|echo-idle|chat-fanout|probe [--host H]"
                " [--port N] [--conns N] [--secs S] [--size B] [--mbytes M] [--clients N]"
                " [--n N] [--server-pid PID] [--impl NAME] [--threads T] [--timeout S]\n");
}

int main(int argc, char **argv)
{
    static const struct {
        const char *name;
        uint64_t *v;
        uint64_t max;
    } nums[] = {
        {"port", &o.port, 65535},       {"conns", &o.conns, 10000000},
        {"secs", &o.secs, 86400},       {"size", &o.size, 1u << 30},
        {"mbytes", &o.mbytes, 1u << 30}, {"clients", &o.clients, 1000000},
        {"n", &o.n, UINT32_MAX},        {"server-pid", &o.server_pid, INT32_MAX},
        {"threads", &o.threads, 65535}, {"timeout", &o.timeout, 86400 * 7},
    };
    if (argc > 1 && (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0)) {
        usage(stdout);
        return 0;
    }
    if (argc < 2 || argv[1][0] == '-') {
        usage(stderr);
        return 2;
    }
    o.workload = argv[1];
    for (int i = 2; i < argc; i += 2) {
        const char *flag = argv[i];
        if (strncmp(flag, "--", 2) != 0 || i + 1 >= argc) {
            fprintf(stderr, "loadgen: '%s' %s\n", flag,
                    strncmp(flag, "--", 2) != 0 ? "is not a flag" : "needs a value");
            usage(stderr);
            return 2;
        }
        const char *val = argv[i + 1];
        if (strcmp(flag + 2, "host") == 0) {
            o.host = val;
            continue;
        }
        if (strcmp(flag + 2, "impl") == 0) {
            o.impl = val;
            continue;
        }
        size_t k = 0;
        while (k < sizeof nums / sizeof nums[0] && strcmp(flag + 2, nums[k].name) != 0)
            k++;
        if (k == sizeof nums / sizeof nums[0]) {
            fprintf(stderr, "loadgen: unknown flag '%s'\n", flag);
            usage(stderr);
            return 2;
        }
        char *end;
        errno = 0;
        unsigned long long v = strtoull(val, &end, 10);
        if (*val < '0' || *val > '9' || *end != '\0' || errno != 0 || v > nums[k].max) {
            fprintf(stderr, "loadgen: %s: '%s' is not an integer from 0 to %" PRIu64 "\n", flag,
                    val, nums[k].max);
            return 2;
        }
        *nums[k].v = v;
    }

    signal(SIGPIPE, SIG_IGN);
    epfd = epoll_create1(EPOLL_CLOEXEC);
    if (epfd < 0)
        die("epoll_create1: %s", strerror(errno));
    bool chat = strcmp(o.workload, "chat-fanout") == 0;
    if (!chat) {
        if (o.port == 0)
            o.port = 8080;
        resolve();
    }
    if (strcmp(o.workload, "echo-rr") == 0)
        echo_rr();
    else if (strcmp(o.workload, "echo-stream") == 0)
        echo_stream();
    else if (strcmp(o.workload, "echo-idle") == 0)
        echo_idle();
    else if (chat)
        chat_fanout();
    else if (strcmp(o.workload, "probe") == 0)
        probe();
    else {
        fprintf(stderr, "loadgen: unknown workload '%s'\n", o.workload);
        usage(stderr);
        return 2;
    }
    close(epfd);
    return 0;
}
