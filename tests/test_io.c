/* test_io.c — descriptors and signals as messages (troupe/io.h): pipe
 * readiness arrives as TR_IO_READABLE / TR_IO_WRITABLE / TR_IO_HUP with a
 * tr_io_event payload; edge-triggered watches lose no event over 100,000
 * records when the owner reads until EAGAIN; unwatch stops the messages and
 * releases the runtime, a watch holds it open and is dropped when its actor
 * stops; the documented errors; tr_io_modify; and signals (SIGUSR1,
 * SIGUSR2) as TR_SIGNAL messages, with the previous disposition restored,
 * and the signal descriptor closed with the last runtime.
 *
 * No timing assertions: waits for something that must happen are bounded
 * only by generous safety nets that turn a hang into a failure, and the
 * checks that something does *not* happen can only fail if it does. */
#include "tests.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

enum { MSG_START = 60, MSG_STOP, MSG_MARK, MSG_UNWATCH, MSG_MODIFY, MSG_TRY, MSG_DONE,
       MSG_REWATCH };

#define JOIN_LIMIT_S 120.0 /* safety net: a join that must return */
#define WAIT_LIMIT_S 60.0  /* safety net: a flag that must be set */


static void make_pipe(int fds[2], bool blocking_write_end)
{
    int rc = pipe2(fds, O_NONBLOCK | O_CLOEXEC);
    CU_ASSERT_FATAL(rc == 0);
    if (blocking_write_end)
        CU_ASSERT_FATAL(fcntl(fds[1], F_SETFL, 0) == 0);
}

static ssize_t read_retry(int fd, void *buf, size_t n)
{
    ssize_t r;
    do
        r = read(fd, buf, n);
    while (r < 0 && errno == EINTR);
    return r;
}

static void write_all(int fd, const void *data, size_t n)
{
    const unsigned char *p = data;
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0 && errno == EAGAIN) {
            struct pollfd pfd = { .fd = fd, .events = POLLOUT };
            poll(&pfd, 1, 100);
            continue;
        }
        TT_CHECK(w > 0);
        if (w <= 0)
            return;
        p += w;
        n -= (size_t)w;
    }
}

/* Spawns fn with a copy of the pointer p as its state, sends it
 * MSG_START and starts rt: how most tests here begin. */
static tr_pid started(tr_runtime *rt, tr_behaviour fn, void *p)
{
    tr_pid pid = TR_PID_NONE;
    TT_EQ(tr_spawn(tr_runtime_ctx(rt), fn, &p, sizeof p, &pid), 0);
    TT_EQ(tr_send(tr_runtime_ctx(rt), pid, MSG_START, NULL, 0), 0);
    TT_EQ(tr_runtime_start(rt), 0);
    return pid;
}

/* Checks a readiness message's envelope and returns its descriptor. */
static int event_fd(tr_ctx *cx, const tr_msg *m)
{
    TT_CHECK(m->len == sizeof(tr_io_event));
    TT_CHECK(m->from == TR_PID_NONE);
    TT_CHECK(m->to == tr_self(cx));
    tr_io_event ev = { -1 };
    if (m->len == sizeof ev)
        memcpy(&ev, m->data, sizeof ev);
    return ev.fd;
}

/* ---- a pipe reader: READABLE until HUP -------------------------------------- */

struct reader {
    int rfd;
    unsigned char *buf; /* what was read, in order (the actor's) */
    size_t got, cap;
    size_t expect;      /* bytes the writer sends in all */
    bool eof;
    atomic_bool watching, done;
    atomic_ulong readable, hup, strays;
    /* Records mode: 8-byte records {seq, ~seq}, checked as they come. */
    bool records;
    unsigned char part[8];
    size_t part_len;
    uint32_t next_seq;
    atomic_ulong bad_records;
};

static void reader_take(struct reader *rd, const unsigned char *p, size_t n)
{
    if (!rd->records) {
        TT_CHECK(rd->got + n <= rd->cap);
        if (rd->got + n <= rd->cap)
            memcpy(rd->buf + rd->got, p, n);
        rd->got += n;
        return;
    }
    rd->got += n;
    while (n > 0) {
        size_t take = sizeof rd->part - rd->part_len;
        if (take > n)
            take = n;
        memcpy(rd->part + rd->part_len, p, take);
        rd->part_len += take;
        p += take;
        n -= take;
        if (rd->part_len == sizeof rd->part) {
            uint32_t seq, check;
            memcpy(&seq, rd->part, 4);
            memcpy(&check, rd->part + 4, 4);
            if (seq != rd->next_seq || check != ~seq)
                atomic_fetch_add(&rd->bad_records, 1);
            TT_CHECK(seq == rd->next_seq && check == ~seq);
            rd->next_seq = seq + 1;
            rd->part_len = 0;
        }
    }
}

/* Reads until EAGAIN (or end of file), as an edge-triggered watch needs. */
static void reader_drain(struct reader *rd)
{
    unsigned char chunk[4096];
    for (;;) {
        ssize_t r = read_retry(rd->rfd, chunk, sizeof chunk);
        if (r > 0) {
            reader_take(rd, chunk, (size_t)r);
            continue;
        }
        if (r == 0)
            rd->eof = true;
        else
            TT_CHECK(errno == EAGAIN);
        return;
    }
}

static void reader_actor(tr_ctx *cx, void *state, const tr_msg *m)
{
    struct reader *rd = *(struct reader **)state;
    if (m->type == MSG_START) {
        TT_CHECK(tr_io_watch(cx, rd->rfd, TR_IO_READ) == 0);
        atomic_store(&rd->watching, true);
        return;
    }
    if (atomic_load(&rd->done)) { /* already queued when we unwatched */
        atomic_fetch_add(&rd->strays, 1);
        return;
    }
    if (m->type == TR_IO_READABLE) {
        TT_CHECK(event_fd(cx, m) == rd->rfd);
        atomic_fetch_add(&rd->readable, 1);
        reader_drain(rd);
    } else if (m->type == TR_IO_HUP) {
        TT_CHECK(event_fd(cx, m) == rd->rfd);
        atomic_fetch_add(&rd->hup, 1);
        /* Every byte was read before the hang-up arrived: the writer's
         * data came first, as READABLE, and we read until EAGAIN. */
        TT_CHECK(rd->got == rd->expect);
        unsigned char c;
        TT_CHECK(read_retry(rd->rfd, &c, 1) == 0); /* end of file, nothing left */
        TT_CHECK(tr_io_unwatch(cx, rd->rfd) == 0);
        atomic_store(&rd->done, true);
    } else {
        TT_CHECK(m->type == TR_IO_READABLE || m->type == TR_IO_HUP);
    }
}

struct writer {
    int wfd;
    struct reader *rd;
    atomic_bool *abort;
    /* Text mode: `count` lines; records mode: `count` 8-byte records. */
    bool records;
    uint32_t count;
    bool closed;
};

static void *writer_main(void *arg)
{
    struct writer *w = arg;
    bool ok = tt_wait_flag(&w->rd->watching, WAIT_LIMIT_S);
    TT_CHECK(ok);
    uint64_t rng = 0x3141;
    if (ok && !w->records) {
        for (uint32_t k = 0; k < w->count && !atomic_load(w->abort); k++) {
            char line[32];
            int len = snprintf(line, sizeof line, "line %u\n", k);
            write_all(w->wfd, line, (size_t)len);
            if (k % 10 == 9)
                tt_sleep_ms(1); /* several separate edges */
        }
    } else if (ok) {
        uint32_t k = 0;
        while (k < w->count && !atomic_load(w->abort)) {
            uint64_t r = tt_rng_next(&rng);
            uint32_t burst = 1 + (uint32_t)(r >> 58); /* 1..64 records */
            for (uint32_t j = 0; j < burst && k < w->count; j++, k++) {
                uint32_t rec[2] = { k, ~k };
                write_all(w->wfd, rec, sizeof rec); /* one write per record */
            }
            if ((r >> 40) % 8 == 0)
                sched_yield();
            if ((r >> 44) % 64 == 0) {
                struct timespec ts = { 0, 50000 };
                nanosleep(&ts, NULL);
            }
        }
    }
    close(w->wfd);
    w->closed = true;
    return NULL;
}

static void run_reader(bool records, uint32_t count)
{
    int fds[2];
    make_pipe(fds, false); /* the writer polls when the pipe is full */
    struct reader *rd = calloc(1, sizeof *rd);
    CU_ASSERT_FATAL(rd != NULL);
    rd->rfd = fds[0];
    rd->records = records;
    if (records) {
        rd->expect = (size_t)count * 8;
    } else {
        for (uint32_t k = 0; k < count; k++) {
            char line[32];
            rd->expect += (size_t)snprintf(line, sizeof line, "line %u\n", k);
        }
        rd->cap = rd->expect;
        rd->buf = malloc(rd->cap);
        CU_ASSERT_FATAL(rd->buf != NULL);
    }
    tr_runtime *rt = tt_runtime(2, 0);
    started(rt, reader_actor, rd);
    atomic_bool abort_flag = false;
    struct writer w = { .wfd = fds[1], .rd = rd, .abort = &abort_flag, .records = records,
                        .count = count };
    pthread_t t = tt_thread(writer_main, &w);
    /* Returns once the actor unwatched after the hang-up. */
    TT_EQ(tt_join_within(rt, JOIN_LIMIT_S), 0);
    atomic_store(&abort_flag, true);
    tt_join(t);
    TT_NO_ERRORS();
    CU_ASSERT(atomic_load(&rd->done));
    TT_EQ(rd->got, rd->expect);
    CU_ASSERT(atomic_load(&rd->readable) >= 1);
    TT_EQ(atomic_load(&rd->hup), 1);
    if (records) {
        TT_EQ(rd->next_seq, count);
        TT_EQ(rd->part_len, 0);
        TT_EQ(atomic_load(&rd->bad_records), 0);
        printf("[%lu READABLE for %u records] ", atomic_load(&rd->readable), count);
    } else {
        size_t off = 0;
        bool same = true;
        for (uint32_t k = 0; k < count && same; k++) {
            char line[32];
            int len = snprintf(line, sizeof line, "line %u\n", k);
            same = off + (size_t)len <= rd->got && memcmp(rd->buf + off, line, (size_t)len) == 0;
            off += (size_t)len;
        }
        CU_ASSERT(same);
    }
    tr_runtime_destroy(rt);
    close(fds[0]);
    free(rd->buf);
    free(rd);
}

static void test_readable_then_hup(void)
{
    run_reader(false, 100);
}

static void test_edge_triggered_100k(void)
{
    run_reader(true, 100000);
}

/* ---- unwatch stops the messages and releases the runtime -------------------- */

struct unwatcher {
    int rfd;
    atomic_bool watching, unwatched, marked, rewatched_done;
    atomic_ulong readable, after_unwatch, rewatch_readable;
    char got[16];
    size_t n;
    bool rewatching;
};

static void unwatcher_actor(tr_ctx *cx, void *state, const tr_msg *m)
{
    struct unwatcher *u = *(struct unwatcher **)state;
    switch (m->type) {
    case MSG_START:
        TT_CHECK(tr_io_watch(cx, u->rfd, TR_IO_READ) == 0);
        atomic_store(&u->watching, true);
        return;
    case MSG_MARK:
        atomic_store(&u->marked, true);
        return;
    case MSG_REWATCH:
        /* A descriptor that already holds data: the new watch reports it. */
        u->rewatching = true;
        TT_CHECK(tr_io_watch(cx, u->rfd, TR_IO_READ) == 0);
        return;
    case TR_IO_READABLE:
        TT_CHECK(event_fd(cx, m) == u->rfd);
        if (u->rewatching) {
            atomic_fetch_add(&u->rewatch_readable, 1);
            char buf[16];
            ssize_t r = read_retry(u->rfd, buf, sizeof buf);
            TT_CHECK(r == 6 && memcmp(buf, "second", 6) == 0);
            TT_CHECK(read_retry(u->rfd, buf, sizeof buf) < 0 && errno == EAGAIN);
            TT_CHECK(tr_io_unwatch(cx, u->rfd) == 0);
            u->rewatching = false;
            atomic_store(&u->rewatched_done, true);
            return;
        }
        if (atomic_load(&u->unwatched)) {
            atomic_fetch_add(&u->after_unwatch, 1);
            return;
        }
        atomic_fetch_add(&u->readable, 1);
        for (;;) {
            ssize_t r = read_retry(u->rfd, u->got + u->n, sizeof u->got - u->n);
            if (r <= 0)
                break;
            u->n += (size_t)r;
        }
        if (u->n >= 5) {
            TT_CHECK(u->n == 5 && memcmp(u->got, "first", 5) == 0);
            TT_CHECK(tr_io_unwatch(cx, u->rfd) == 0);
            atomic_store(&u->unwatched, true);
        }
        return;
    default:
        TT_CHECK(m->type == TR_IO_READABLE);
    }
}

static void test_unwatch(void)
{
    int fds[2];
    make_pipe(fds, false);
    struct unwatcher u = { .rfd = fds[0] };
    struct unwatcher *up = &u;
    tr_runtime *rt = tt_runtime(2, 0);
    tr_pid p;
    TT_EQ(tr_spawn(tr_runtime_ctx(rt), unwatcher_actor, &up, sizeof up, &p), 0);
    TT_EQ(tr_send(tr_runtime_ctx(rt), p, MSG_START, NULL, 0), 0);
    TT_EQ(tr_runtime_hold(rt), 0); /* to look for messages after the unwatch */
    TT_EQ(tr_runtime_start(rt), 0);
    CU_ASSERT_FATAL(tt_wait_flag(&u.watching, WAIT_LIMIT_S));
    write_all(fds[1], "first", 5); /* one write: one edge */
    CU_ASSERT(tt_wait_flag(&u.unwatched, WAIT_LIMIT_S));

    /* New data after the unwatch: no message may come of it. The only
     * edge before it (the one write above) was already handled. */
    write_all(fds[1], "second", 6);
    tt_sleep_ms(100);
    TT_EQ(tr_send(tr_runtime_ctx(rt), p, MSG_MARK, NULL, 0), 0);
    CU_ASSERT(tt_wait_flag(&u.marked, WAIT_LIMIT_S));
    TT_EQ(atomic_load(&u.after_unwatch), 0);
    TT_EQ(atomic_load(&u.readable), 1);

    /* The unwatched descriptor holds nothing open: releasing our hold ends
     * the run. */
    TT_EQ(tr_runtime_release(rt), 0);
    TT_EQ(tt_join_within(rt, JOIN_LIMIT_S), 0);
    TT_NO_ERRORS();

    /* The descriptor stayed open, with "second" in it; watching it again
     * reports the data already there, and the run ends at the unwatch. */
    TT_EQ(tr_send(tr_runtime_ctx(rt), p, MSG_REWATCH, NULL, 0), 0);
    TT_EQ(tr_runtime_start(rt), 0);
    TT_EQ(tt_join_within(rt, JOIN_LIMIT_S), 0);
    TT_NO_ERRORS();
    CU_ASSERT(atomic_load(&u.rewatched_done));
    TT_EQ(atomic_load(&u.rewatch_readable), 1);
    TT_EQ(atomic_load(&u.after_unwatch), 0);
    tr_runtime_destroy(rt);
    close(fds[0]);
    close(fds[1]);
}

/* ---- a watch holds the runtime open; it is dropped when its actor stops ------- */

struct holder {
    int fd;
    atomic_bool watching;
    atomic_ulong events;
};

static void holder_actor(tr_ctx *cx, void *state, const tr_msg *m)
{
    struct holder *h = *(struct holder **)state;
    switch (m->type) {
    case MSG_START:
        TT_CHECK(tr_io_watch(cx, h->fd, TR_IO_READ) == 0);
        atomic_store(&h->watching, true);
        break;
    case MSG_UNWATCH:
        TT_CHECK(tr_io_unwatch(cx, h->fd) == 0);
        break;
    case MSG_STOP:
        tr_stop(cx); /* with the watch still in place */
        break;
    default:
        atomic_fetch_add(&h->events, 1);
    }
}


static void test_watch_holds_runtime(void)
{
    int fds[2];
    make_pipe(fds, false);
    struct holder h = { .fd = fds[0] };
    tr_runtime *rt = tt_runtime(2, 0);
    tr_pid p = started(rt, holder_actor, &h);
    struct tt_joiner j = { .rt = rt };
    pthread_t t = tt_thread(tt_joiner_main, &j);
    CU_ASSERT(tt_wait_flag(&h.watching, WAIT_LIMIT_S));
    tt_sleep_ms(200);
    /* Nothing to do, but a descriptor is watched: join cannot return. */
    CU_ASSERT_FALSE(atomic_load(&j.returned));
    TT_EQ(tr_send(tr_runtime_ctx(rt), p, MSG_UNWATCH, NULL, 0), 0);
    tt_join(t);
    TT_EQ(j.rc, 0);
    TT_EQ(atomic_load(&h.events), 0);
    TT_NO_ERRORS();
    tr_runtime_destroy(rt);
    close(fds[0]);
    close(fds[1]);
}

static void test_watch_dropped_on_stop(void)
{
    int fds[2];
    make_pipe(fds, false);
    struct holder h = { .fd = fds[0] };
    struct holder *hp = &h;
    tr_runtime *rt = tt_runtime(2, 0);
    tr_pid a;
    TT_EQ(tr_spawn(tr_runtime_ctx(rt), holder_actor, &hp, sizeof hp, &a), 0);
    TT_EQ(tr_send(tr_runtime_ctx(rt), a, MSG_START, NULL, 0), 0);
    TT_EQ(tr_send(tr_runtime_ctx(rt), a, MSG_STOP, NULL, 0), 0);
    /* The stop gives the watch back: the run ends. */
    TT_EQ(tr_runtime_start(rt), 0);
    TT_EQ(tt_join_within(rt, JOIN_LIMIT_S), 0);
    tr_stats s;
    tr_runtime_stats(rt, &s);
    TT_EQ(s.actors_stopped, 1);

    /* The descriptor is free again: another actor can watch it, and the
     * data written now reaches that one only. */
    struct reader *rd = calloc(1, sizeof *rd);
    CU_ASSERT_FATAL(rd != NULL);
    rd->rfd = fds[0];
    rd->expect = 3;
    rd->cap = 3;
    rd->buf = malloc(3);
    started(rt, reader_actor, rd);
    CU_ASSERT(tt_wait_flag(&rd->watching, WAIT_LIMIT_S));
    write_all(fds[1], "abc", 3);
    close(fds[1]);
    TT_EQ(tt_join_within(rt, JOIN_LIMIT_S), 0);
    TT_NO_ERRORS();
    CU_ASSERT(atomic_load(&rd->done));
    TT_EQ(rd->got, 3);
    CU_ASSERT(rd->got == 3 && memcmp(rd->buf, "abc", 3) == 0);
    TT_EQ(atomic_load(&h.events), 0);

    /* And a watch still in place at destroy is given back there. */
    int fds2[2];
    make_pipe(fds2, false);
    struct holder h2 = { .fd = fds2[0] };
    started(rt, holder_actor, &h2);
    CU_ASSERT(tt_wait_flag(&h2.watching, WAIT_LIMIT_S));
    tr_runtime_destroy(rt); /* running, with a watch: stops, frees (ASan/LSan) */
    TT_NO_ERRORS();
    close(fds[0]);
    close(fds2[0]);
    close(fds2[1]);
    free(rd->buf);
    free(rd);
}

/* ---- errors ------------------------------------------------------------------ */

struct errs {
    int rfd, wfd, file_fd, closed_fd;
    tr_pid other;
    atomic_bool done;
};

/* The first actor watches rfd, then asks the other to try the same. */
static void errs_actor(tr_ctx *cx, void *state, const tr_msg *m)
{
    struct errs *e = *(struct errs **)state;
    if (m->type == MSG_START) {
        TT_CHECK(tr_io_watch(cx, e->rfd, TR_IO_READ) == 0);
        TT_CHECK(tr_io_watch(cx, e->rfd, TR_IO_READ) == TR_EBUSY);
        TT_CHECK(tr_io_watch(cx, e->rfd, TR_IO_WRITE) == TR_EBUSY);
        TT_CHECK(tr_io_watch(cx, -1, TR_IO_READ) == TR_EINVAL);
        TT_CHECK(tr_io_watch(cx, 1 << 24, TR_IO_READ) == TR_EINVAL);
        TT_CHECK(tr_io_watch(cx, e->wfd, 4u) == TR_EINVAL);
        TT_CHECK(tr_io_watch(cx, e->wfd, TR_IO_READ | 8u) == TR_EINVAL);
        /* epoll refuses regular files; the failed watch leaves no trace,
         * so a second try fails the same way rather than as busy. */
        TT_CHECK(tr_io_watch(cx, e->file_fd, TR_IO_READ) == -EPERM);
        TT_CHECK(tr_io_watch(cx, e->file_fd, TR_IO_READ) == -EPERM);
        TT_CHECK(tr_io_watch(cx, e->closed_fd, TR_IO_READ) == -EBADF);
        TT_CHECK(tr_io_modify(cx, e->wfd, TR_IO_WRITE) == TR_EINVAL); /* not watched */
        TT_CHECK(tr_io_modify(cx, e->rfd, 4u) == TR_EINVAL);
        TT_CHECK(tr_io_modify(cx, e->rfd, TR_IO_READ) == 0);
        TT_CHECK(tr_io_unwatch(cx, e->wfd) == TR_EINVAL); /* not watched */
        TT_CHECK(tr_io_unwatch(cx, -5) == TR_EINVAL);
        TT_CHECK(tr_send(cx, e->other, MSG_TRY, NULL, 0) == 0);
    } else if (m->type == MSG_TRY) {
        /* Another actor: the descriptor is watched already, and not by us. */
        TT_CHECK(tr_io_watch(cx, e->rfd, TR_IO_READ) == TR_EBUSY);
        TT_CHECK(tr_io_unwatch(cx, e->rfd) == TR_EINVAL);
        TT_CHECK(tr_io_modify(cx, e->rfd, TR_IO_READ) == TR_EINVAL);
        TT_CHECK(tr_send(cx, m->from, MSG_DONE, NULL, 0) == 0);
    } else if (m->type == MSG_DONE) {
        TT_CHECK(tr_io_unwatch(cx, e->rfd) == 0);
        TT_CHECK(tr_io_unwatch(cx, e->rfd) == TR_EINVAL);
        atomic_store(&e->done, true);
    } else {
        TT_CHECK(m->type == MSG_START || m->type == MSG_TRY || m->type == MSG_DONE);
    }
}

static void test_watch_errors(void)
{
    int fds[2];
    make_pipe(fds, false);
    char path[] = "/tmp/troupe-io-test-XXXXXX";
    int file_fd = mkstemp(path);
    CU_ASSERT_FATAL(file_fd >= 0);
    unlink(path);
    /* A descriptor number that is not open (far above the lowest free
     * ones, which the runtime's own descriptors will take). */
    int closed_fd = fcntl(fds[0], F_DUPFD_CLOEXEC, 1000);
    CU_ASSERT_FATAL(closed_fd >= 1000);
    close(closed_fd);
    struct errs e = { .rfd = fds[0], .wfd = fds[1], .file_fd = file_fd, .closed_fd = closed_fd };
    struct errs *ep = &e;
    tr_runtime *rt = tt_runtime(2, 0);
    tr_pid a;
    TT_EQ(tr_spawn(tr_runtime_ctx(rt), errs_actor, &ep, sizeof ep, &a), 0);
    TT_EQ(tr_spawn(tr_runtime_ctx(rt), errs_actor, &ep, sizeof ep, &e.other), 0);
    TT_EQ(tr_io_watch(NULL, fds[0], TR_IO_READ), TR_EINVAL);
    TT_EQ(tr_io_modify(NULL, fds[0], TR_IO_READ), TR_EINVAL);
    TT_EQ(tr_io_unwatch(NULL, fds[0]), TR_EINVAL);
    TT_EQ(tr_send(tr_runtime_ctx(rt), a, MSG_START, NULL, 0), 0);
    /* No hold leaks from the failed calls: the run ends by itself. */
    TT_EQ(tr_runtime_start(rt), 0);
    TT_EQ(tt_join_within(rt, JOIN_LIMIT_S), 0);
    TT_NO_ERRORS();
    CU_ASSERT(atomic_load(&e.done));
    tr_runtime_destroy(rt);
    close(file_fd);
    close(fds[0]);
    close(fds[1]);
}

/* ---- a watch left on a closed descriptor gives way ---------------------------- */

/* An actor that closes a watched descriptor without tr_io_unwatch leaves
 * a stale watch. Its number was refused (TR_EBUSY) to every later watch
 * while the stale one lasted: a server's next accept takes the lowest
 * free number, so one such slip failed every new connection. Now the
 * next file of that number is watched, its readiness reaches its new
 * watcher, and the stale watch's unwatch (or its actor's end) takes
 * nothing from it. A watch of a file still watched stays busy. */
struct giveway {
    int fd;                       /* the number both watch */
    atomic_bool closed, unwatched, watched;
    atomic_int watch_rc, busy_rc;
    atomic_int got;               /* bytes the new watcher read from fd */
    atomic_int stale_events;      /* anything the stale watcher hears */
};

static void giveway_stale(tr_ctx *cx, void *state, const tr_msg *m)
{
    struct giveway *g = *(struct giveway **)state;
    if (m->type == MSG_START) {
        TT_CHECK(tr_io_watch(cx, g->fd, TR_IO_READ) == 0);
        close(g->fd); /* the slip: no tr_io_unwatch first */
        atomic_store(&g->closed, true);
    } else if (m->type == MSG_UNWATCH) {
        /* Its watch watches nothing now: changing it is refused; ending
         * it is allowed, and must leave the new watch alone. */
        TT_CHECK(tr_io_modify(cx, g->fd, TR_IO_READ | TR_IO_WRITE) == TR_EINVAL);
        TT_CHECK(tr_io_unwatch(cx, g->fd) == 0);
        TT_CHECK(tr_io_unwatch(cx, g->fd) == TR_EINVAL);
        atomic_store(&g->unwatched, true);
    } else {
        atomic_fetch_add(&g->stale_events, 1);
    }
}

static void giveway_new(tr_ctx *cx, void *state, const tr_msg *m)
{
    struct giveway *g = *(struct giveway **)state;
    if (m->type == MSG_START) {
        atomic_store(&g->watch_rc, tr_io_watch(cx, g->fd, TR_IO_READ));
        /* Now watched and open: busy, for this actor as for others. */
        atomic_store(&g->busy_rc, tr_io_watch(cx, g->fd, TR_IO_READ));
        atomic_store(&g->watched, true);
    } else if (m->type == TR_IO_READABLE && event_fd(cx, m) == g->fd) {
        /* (A take-over may report the same readiness twice: the second
         * finds nothing, as edge-triggered readers must expect.) */
        char buf[16];
        ssize_t r;
        while ((r = read_retry(g->fd, buf, sizeof buf)) > 0)
            atomic_fetch_add(&g->got, (int)r);
    } else {
        TT_CHECK(!"a message it does not expect");
    }
}

static void test_stale_watch_gives_way(void)
{
    int old[2], fresh[2];
    make_pipe(old, false);
    make_pipe(fresh, false);
    struct giveway g = { .fd = old[0] };
    struct giveway *gp = &g;
    tr_runtime *rt = tt_runtime(2, 0);
    tr_pid stale, next;
    TT_EQ(tr_spawn(tr_runtime_ctx(rt), giveway_stale, &gp, sizeof gp, &stale), 0);
    TT_EQ(tr_spawn(tr_runtime_ctx(rt), giveway_new, &gp, sizeof gp, &next), 0);
    TT_EQ(tr_send(tr_runtime_ctx(rt), stale, MSG_START, NULL, 0), 0);
    TT_EQ(tr_runtime_start(rt), 0);
    CU_ASSERT_FATAL(tt_wait_flag(&g.closed, WAIT_LIMIT_S));
    /* The number now names another pipe's read end (as an accept would
     * reuse it), with a byte already waiting. */
    CU_ASSERT_FATAL(dup3(fresh[0], g.fd, O_CLOEXEC) == g.fd);
    close(fresh[0]);
    write_all(fresh[1], "a", 1);
    TT_EQ(tr_send(tr_runtime_ctx(rt), next, MSG_START, NULL, 0), 0);
    CU_ASSERT_FATAL(tt_wait_flag(&g.watched, WAIT_LIMIT_S));
    TT_EQ(atomic_load(&g.watch_rc), 0);
    TT_EQ(atomic_load(&g.busy_rc), TR_EBUSY);
    CU_ASSERT(tt_wait_count(&g.got, 1, WAIT_LIMIT_S));
    /* The stale watch ends; the new one still hears the next edge. */
    TT_EQ(tr_send(tr_runtime_ctx(rt), stale, MSG_UNWATCH, NULL, 0), 0);
    CU_ASSERT_FATAL(tt_wait_flag(&g.unwatched, WAIT_LIMIT_S));
    write_all(fresh[1], "b", 1);
    CU_ASSERT(tt_wait_count(&g.got, 2, WAIT_LIMIT_S));
    TT_EQ(atomic_load(&g.stale_events), 0);
    tr_runtime_shutdown(rt);
    TT_EQ(tt_join_within(rt, JOIN_LIMIT_S), 1); /* stopped */
    TT_EQ(atomic_load(&g.got), 2);
    TT_NO_ERRORS();
    tr_runtime_destroy(rt);
    close(g.fd);
    close(fresh[1]);
    close(old[1]);
}

/* The same slip by one actor, which then watches the number's next file
 * itself: its left watch is renewed, not doubled (a second record was the
 * one tr_io_unwatch found, ending the live watch and keeping the dead
 * one). A file whose registration outlived its watch (open under another
 * number when this one was closed) is refused when it comes back under
 * it, as the runtime's own descriptors are (epoll cannot tell them
 * apart). Every watch is counted once in fds_watched, and the run ends by
 * itself once none is left: no hold kept or lost on the way. */
struct renew {
    int fd, spare[2], kept;  /* kept: a dup of the first file, open throughout */
    atomic_int got, step;
};

static long watched_now(tr_ctx *cx)
{
    tr_metrics mt;
    tr_runtime_metrics(tr_ctx_runtime(cx), &mt, NULL, 0);
    return (long)mt.fds_watched;
}

static void renew_actor(tr_ctx *cx, void *state, const tr_msg *m)
{
    struct renew *n = *(struct renew **)state;
    if (m->type == MSG_START) {
        int first = n->fd;
        TT_CHECK(tr_io_watch(cx, first, TR_IO_READ) == 0);
        n->kept = fcntl(first, F_DUPFD_CLOEXEC, 100); /* the file stays open */
        TT_CHECK(n->kept >= 100);
        close(first); /* the slip */
        TT_CHECK(dup3(n->spare[0], first, O_CLOEXEC) == first);
        TT_CHECK(tr_io_watch(cx, first, TR_IO_READ) == 0); /* renewed */
        TT_CHECK(tr_io_watch(cx, first, TR_IO_READ) == TR_EBUSY);
        TT_CHECK(watched_now(cx) == 1);
        TT_CHECK(write(n->spare[1], "r", 1) == 1);
    } else if (m->type == TR_IO_READABLE && event_fd(cx, m) == n->fd) {
        char buf[8];
        ssize_t r;
        while ((r = read_retry(n->fd, buf, sizeof buf)) > 0)
            atomic_fetch_add(&n->got, (int)r);
        if (atomic_load(&n->got) == 1 && atomic_load(&n->step) == 0) {
            atomic_store(&n->step, 1);
            /* One record: the unwatch ends the live watch, the next has
             * nothing to end. */
            TT_CHECK(tr_io_unwatch(cx, n->fd) == 0);
            TT_CHECK(tr_io_unwatch(cx, n->fd) == TR_EINVAL);
            TT_CHECK(watched_now(cx) == 0);
            /* The first file back under its number: its registration
             * outlived the close. */
            TT_CHECK(dup3(n->kept, n->fd, O_CLOEXEC) == n->fd);
            TT_CHECK(tr_io_watch(cx, n->fd, TR_IO_READ) == TR_EBUSY);
            TT_CHECK(watched_now(cx) == 0);
            atomic_store(&n->step, 2);
        }
    } else {
        TT_CHECK(!"a message it does not expect");
    }
}

static void test_left_watch_renewed(void)
{
    int first[2];
    make_pipe(first, false);
    struct renew n = { .fd = first[0] };
    make_pipe(n.spare, false);
    tr_runtime *rt = tt_runtime(2, 0);
    started(rt, renew_actor, &n);
    /* Ends by itself when the last watch goes: holds balanced. */
    TT_EQ(tt_join_within(rt, JOIN_LIMIT_S), 0);
    TT_EQ(atomic_load(&n.step), 2);
    TT_EQ(atomic_load(&n.got), 1);
    TT_NO_ERRORS();
    tr_runtime_destroy(rt);
    close(n.fd);
    close(n.kept);
    close(first[1]);
    close(n.spare[0]);
    close(n.spare[1]);
}

/* The runtime's own descriptors (its eventfd, timerfd, epoll set, the
 * signal descriptor: those that came with it) are refused to a behaviour
 * that tries them all, and the runtime goes on: a timer still fires, the
 * run still ends by itself. (Taking over a registration that outlived
 * its watch, with EPOLL_CTL_MOD, took the runtime's own as readily.) */
enum { OWN_MAX = 16 };
struct own_fds {
    int fds[OWN_MAX], n;
    atomic_int taken, fired;
};

/* The descriptors of the process that are eventfds, timerfds or epoll
 * sets, into fds (at most max); their count. */
static int anon_fds(int *fds, int max)
{
    int n = 0;
    DIR *d = opendir("/proc/self/fd");
    CU_ASSERT_FATAL(d != NULL);
    struct dirent *de;
    while ((de = readdir(d)) != NULL && n < max) {
        char path[300], target[64];
        snprintf(path, sizeof path, "/proc/self/fd/%s", de->d_name);
        ssize_t len = readlink(path, target, sizeof target - 1);
        if (len <= 0)
            continue;
        target[len] = '\0';
        if (strstr(target, "[eventfd]") != NULL || strstr(target, "[timerfd]") != NULL ||
            strstr(target, "[eventpoll]") != NULL)
            fds[n++] = atoi(de->d_name);
    }
    closedir(d);
    return n;
}

static void own_fds_actor(tr_ctx *cx, void *state, const tr_msg *m)
{
    struct own_fds *o = *(struct own_fds **)state;
    if (m->type == MSG_START) {
        for (int i = 0; i < o->n; i++)
            if (tr_io_watch(cx, o->fds[i], TR_IO_READ) == 0)
                atomic_fetch_add(&o->taken, 1);
        TT_CHECK(tr_send_after(cx, 1000000, tr_self(cx), MSG_MARK, NULL, 0) == 0);
    } else if (m->type == MSG_MARK) {
        atomic_store(&o->fired, 1);
    }
}

static void test_own_fds_refused(void)
{
    int before[OWN_MAX], after[OWN_MAX];
    int nb = anon_fds(before, OWN_MAX);
    tr_runtime *rt = tt_runtime(2, 0);
    int na = anon_fds(after, OWN_MAX);
    struct own_fds o = {.n = 0};
    for (int i = 0; i < na; i++) {
        bool old = false;
        for (int j = 0; j < nb; j++)
            old = old || before[j] == after[i];
        if (!old)
            o.fds[o.n++] = after[i];
    }
    CU_ASSERT(o.n >= 3); /* eventfd, timerfd, epoll set at least */
    started(rt, own_fds_actor, &o);
    CU_ASSERT(tt_wait_count(&o.fired, 1, WAIT_LIMIT_S));
    TT_EQ(atomic_load(&o.taken), 0);
    TT_EQ(tt_join_within(rt, JOIN_LIMIT_S), 0);
    TT_NO_ERRORS();
    tr_runtime_destroy(rt);
}

/* ---- TR_IO_WRITABLE, and tr_io_modify ---------------------------------------- */

struct filler {
    int wfd;
    int phase;          /* 0: fill on WRITABLE; 1: wait for room again; 2: done */
    size_t filled;
    atomic_bool full, done;
    atomic_ulong writable, spurious;
};

static void filler_actor(tr_ctx *cx, void *state, const tr_msg *m)
{
    struct filler *f = *(struct filler **)state;
    if (m->type == MSG_START) {
        TT_CHECK(tr_io_watch(cx, f->wfd, TR_IO_WRITE) == 0);
        return;
    }
    TT_CHECK(m->type == TR_IO_WRITABLE);
    if (m->type != TR_IO_WRITABLE || f->phase == 2)
        return;
    TT_CHECK(event_fd(cx, m) == f->wfd);
    atomic_fetch_add(&f->writable, 1);
    char block[4096];
    memset(block, 'w', sizeof block);
    if (f->phase == 0) {
        /* Fill the pipe until EAGAIN: no more room, so the next WRITABLE
         * can only come from the reader making room. */
        for (;;) {
            ssize_t w = write(f->wfd, block, sizeof block);
            if (w > 0) {
                f->filled += (size_t)w;
                continue;
            }
            TT_CHECK(w < 0 && errno == EAGAIN);
            break;
        }
        f->phase = 1;
        atomic_store(&f->full, true);
        return;
    }
    /* Phase 1: room again? (an edge-triggered watch may report spuriously) */
    ssize_t w = write(f->wfd, block, 1);
    if (w < 0 && errno == EAGAIN) {
        atomic_fetch_add(&f->spurious, 1);
        return;
    }
    TT_CHECK(w == 1);
    TT_CHECK(tr_io_unwatch(cx, f->wfd) == 0);
    f->phase = 2;
    atomic_store(&f->done, true);
}

static void test_writable(void)
{
    int fds[2];
    make_pipe(fds, false);
    struct filler f = { .wfd = fds[1] };
    tr_runtime *rt = tt_runtime(2, 0);
    started(rt, filler_actor, &f);
    CU_ASSERT(tt_wait_flag(&f.full, WAIT_LIMIT_S));
    /* Drain the pipe: that makes room, which must be reported. */
    size_t drained = 0;
    char buf[8192];
    for (;;) {
        ssize_t r = read_retry(fds[0], buf, sizeof buf);
        if (r <= 0)
            break;
        drained += (size_t)r;
    }
    TT_EQ(tt_join_within(rt, JOIN_LIMIT_S), 0);
    TT_NO_ERRORS();
    CU_ASSERT(atomic_load(&f.done));
    /* Plus the byte written on the second WRITABLE (perhaps read above). */
    for (;;) {
        ssize_t r = read_retry(fds[0], buf, sizeof buf);
        if (r <= 0)
            break;
        drained += (size_t)r;
    }
    CU_ASSERT(f.filled > 0);
    TT_EQ(drained, f.filled + 1);
    CU_ASSERT(atomic_load(&f.writable) >= 2);
    tr_runtime_destroy(rt);
    close(fds[0]);
    close(fds[1]);
}

struct modifier {
    int rfd;
    bool modified;
    atomic_bool watching, done;
    atomic_ulong readable_before, readable_after;
};

static void modifier_actor(tr_ctx *cx, void *state, const tr_msg *m)
{
    struct modifier *md = *(struct modifier **)state;
    switch (m->type) {
    case MSG_START:
        /* A read end watched for writing only: data must not be reported. */
        TT_CHECK(tr_io_watch(cx, md->rfd, TR_IO_WRITE) == 0);
        atomic_store(&md->watching, true);
        break;
    case MSG_MODIFY:
        TT_CHECK(tr_io_modify(cx, md->rfd, TR_IO_READ) == 0);
        md->modified = true;
        break;
    case TR_IO_READABLE: {
        TT_CHECK(event_fd(cx, m) == md->rfd);
        if (!md->modified) {
            atomic_fetch_add(&md->readable_before, 1);
            break;
        }
        atomic_fetch_add(&md->readable_after, 1);
        char buf[16];
        TT_CHECK(read_retry(md->rfd, buf, sizeof buf) == 4 && memcmp(buf, "data", 4) == 0);
        TT_CHECK(tr_io_unwatch(cx, md->rfd) == 0);
        atomic_store(&md->done, true);
        break;
    }
    default:
        TT_CHECK(m->type == MSG_START);
    }
}

static void test_modify(void)
{
    int fds[2];
    make_pipe(fds, false);
    struct modifier md = { .rfd = fds[0] };
    tr_runtime *rt = tt_runtime(2, 0);
    tr_pid p = started(rt, modifier_actor, &md);
    CU_ASSERT(tt_wait_flag(&md.watching, WAIT_LIMIT_S));
    write_all(fds[1], "data", 4);
    tt_sleep_ms(50); /* room for a wrong READABLE to show up */
    /* The data is already there when the interest changes to READ: the
     * modification reports it. */
    TT_EQ(tr_send(tr_runtime_ctx(rt), p, MSG_MODIFY, NULL, 0), 0);
    TT_EQ(tt_join_within(rt, JOIN_LIMIT_S), 0);
    TT_NO_ERRORS();
    CU_ASSERT(atomic_load(&md.done));
    TT_EQ(atomic_load(&md.readable_before), 0);
    TT_EQ(atomic_load(&md.readable_after), 1);
    tr_runtime_destroy(rt);
    close(fds[0]);
    close(fds[1]);
}

/* ---- signals -------------------------------------------------------------------- */

struct sig_sub {
    int signo;
    bool stop_instead; /* end the subscription by stopping, not unwatching */
    atomic_bool subscribed, done;
    atomic_ulong received;
};

static void sig_actor(tr_ctx *cx, void *state, const tr_msg *m)
{
    struct sig_sub *s = *(struct sig_sub **)state;
    if (m->type == MSG_START) {
        TT_CHECK(tr_signal_watch(cx, s->signo) == 0);
        TT_CHECK(tr_signal_watch(cx, s->signo) == TR_EBUSY);
        TT_CHECK(tr_signal_watch(cx, SIGKILL) == TR_EINVAL);
        TT_CHECK(tr_signal_watch(cx, SIGSTOP) == TR_EINVAL);
        TT_CHECK(tr_signal_watch(cx, SIGSEGV) == TR_EINVAL);
        TT_CHECK(tr_signal_watch(cx, 0) == TR_EINVAL);
        TT_CHECK(tr_signal_watch(cx, 65) == TR_EINVAL);
        TT_CHECK(tr_signal_watch(cx, -1) == TR_EINVAL);
        TT_CHECK(tr_signal_unwatch(cx, SIGWINCH) == TR_EINVAL); /* not subscribed */
        atomic_store(&s->subscribed, true);
        return;
    }
    TT_CHECK(m->type == TR_SIGNAL);
    if (m->type != TR_SIGNAL)
        return;
    TT_CHECK(m->len == sizeof(tr_signal_event));
    TT_CHECK(m->from == TR_PID_NONE);
    tr_signal_event ev = { 0 };
    memcpy(&ev, m->data, sizeof ev);
    TT_CHECK(ev.signo == s->signo);
    atomic_fetch_add(&s->received, 1);
    if (atomic_load(&s->done))
        return;
    if (s->stop_instead) {
        tr_stop(cx);
    } else {
        TT_CHECK(tr_signal_unwatch(cx, s->signo) == 0);
        TT_CHECK(tr_signal_unwatch(cx, s->signo) == TR_EINVAL);
    }
    atomic_store(&s->done, true);
}

static bool handler_is(int signo, void (*h)(int))
{
    struct sigaction sa;
    CU_ASSERT_FATAL(sigaction(signo, NULL, &sa) == 0);
    return !(sa.sa_flags & SA_SIGINFO) && sa.sa_handler == h;
}

static void test_signal_usr1(void)
{
    struct sigaction before;
    CU_ASSERT_FATAL(sigaction(SIGUSR1, NULL, &before) == 0);
    CU_ASSERT(handler_is(SIGUSR1, SIG_DFL));

    struct sig_sub s = { .signo = SIGUSR1 };
    tr_runtime *rt = tt_runtime(2, 0);
    started(rt, sig_actor, &s);
    bool subscribed = tt_wait_flag(&s.subscribed, WAIT_LIMIT_S);
    CU_ASSERT(subscribed);
    /* Only with the runtime's handler in place: the default action of
     * SIGUSR1 would end the test runner. */
    bool installed = !handler_is(SIGUSR1, SIG_DFL) && !handler_is(SIGUSR1, SIG_IGN);
    CU_ASSERT(installed);
    if (subscribed && installed)
        TT_EQ(kill(getpid(), SIGUSR1), 0);
    else
        tr_runtime_shutdown(rt);
    TT_EQ(tt_join_within(rt, JOIN_LIMIT_S), 0);
    TT_NO_ERRORS();
    CU_ASSERT(atomic_load(&s.done));
    TT_EQ(atomic_load(&s.received), 1);
    /* The last subscription ended: the previous disposition is back. */
    CU_ASSERT(handler_is(SIGUSR1, SIG_DFL));
    tr_runtime_destroy(rt);
    CU_ASSERT(handler_is(SIGUSR1, SIG_DFL));
    sigaction(SIGUSR1, &before, NULL);
}

/* SIGUSR2 ignored (so that a lost subscription cannot kill the runner),
 * the action before it into *before if not NULL. */
static void ignore_usr2(struct sigaction *before)
{
    struct sigaction ign;
    memset(&ign, 0, sizeof ign);
    ign.sa_handler = SIG_IGN;
    sigemptyset(&ign.sa_mask);
    CU_ASSERT_FATAL(sigaction(SIGUSR2, &ign, before) == 0);
}

/* Two subscribers to SIGUSR2 (set to SIG_IGN beforehand, so a lost
 * subscription cannot kill the runner): both get the one delivery; one
 * unwatches, the other stops, and SIG_IGN is restored after the last. */
static void test_signal_two_subscribers(void)
{
    struct sigaction before;
    ignore_usr2(&before);

    struct sig_sub s1 = { .signo = SIGUSR2 }, s2 = { .signo = SIGUSR2, .stop_instead = true };
    struct sig_sub *sp1 = &s1, *sp2 = &s2;
    tr_runtime *rt = tt_runtime(2, 0);
    tr_pid p1, p2;
    TT_EQ(tr_spawn(tr_runtime_ctx(rt), sig_actor, &sp1, sizeof sp1, &p1), 0);
    TT_EQ(tr_spawn(tr_runtime_ctx(rt), sig_actor, &sp2, sizeof sp2, &p2), 0);
    TT_EQ(tr_send(tr_runtime_ctx(rt), p1, MSG_START, NULL, 0), 0);
    TT_EQ(tr_send(tr_runtime_ctx(rt), p2, MSG_START, NULL, 0), 0);
    TT_EQ(tr_runtime_start(rt), 0);
    CU_ASSERT(tt_wait_flag(&s1.subscribed, WAIT_LIMIT_S));
    CU_ASSERT(tt_wait_flag(&s2.subscribed, WAIT_LIMIT_S));
    CU_ASSERT(!handler_is(SIGUSR2, SIG_IGN) && !handler_is(SIGUSR2, SIG_DFL));
    TT_EQ(kill(getpid(), SIGUSR2), 0);
    TT_EQ(tt_join_within(rt, JOIN_LIMIT_S), 0);
    TT_NO_ERRORS();
    CU_ASSERT(atomic_load(&s1.done) && atomic_load(&s2.done));
    TT_EQ(atomic_load(&s1.received), 1);
    TT_EQ(atomic_load(&s2.received), 1);
    tr_stats st;
    tr_runtime_stats(rt, &st);
    TT_EQ(st.actors_stopped, 1);
    CU_ASSERT(handler_is(SIGUSR2, SIG_IGN));
    tr_runtime_destroy(rt);
    CU_ASSERT(sigaction(SIGUSR2, &before, NULL) == 0);
    CU_ASSERT(handler_is(SIGUSR2, SIG_DFL));
}

/* An actor of rt subscribes to SIGUSR1, gets one delivery and
 * unsubscribes; rt is then quiescent. */
static void usr1_round_trip(tr_runtime *rt)
{
    struct sig_sub s = { .signo = SIGUSR1 };
    started(rt, sig_actor, &s);
    bool subscribed = tt_wait_flag(&s.subscribed, WAIT_LIMIT_S);
    CU_ASSERT(subscribed);
    if (subscribed && !handler_is(SIGUSR1, SIG_DFL))
        TT_EQ(kill(getpid(), SIGUSR1), 0);
    else
        tr_runtime_shutdown(rt);
    TT_EQ(tt_join_within(rt, JOIN_LIMIT_S), 0);
    TT_NO_ERRORS();
    TT_EQ(atomic_load(&s.received), 1);
}

/* The signal eventfd is shared by the runtimes alive and closed with the
 * last: with none alive, the process holds no descriptor of troupe's, and
 * a later runtime's signals still arrive (through a fresh eventfd). */
static void test_signal_fd_closed_with_last_runtime(void)
{
    CU_ASSERT_FATAL(handler_is(SIGUSR1, SIG_DFL));
    int none = tt_fds_open();
    tr_runtime *first = tt_runtime(2, 0);
    int one = tt_fds_open();
    tr_runtime *second = tt_runtime(2, 0);
    int two = tt_fds_open();
    /* The first opens its own descriptors and the shared one; the second
     * only its own. */
    TT_EQ(one - none, two - one + 1);
    tr_runtime_destroy(second);
    TT_EQ(tt_fds_open(), one);

    usr1_round_trip(first);
    tr_runtime_destroy(first);
    TT_EQ(tt_fds_open(), none);
    CU_ASSERT(handler_is(SIGUSR1, SIG_DFL));

    tr_runtime *later = tt_runtime(2, 0);
    TT_EQ(tt_fds_open(), one);
    usr1_round_trip(later);
    tr_runtime_destroy(later);
    TT_EQ(tt_fds_open(), none);
    CU_ASSERT(handler_is(SIGUSR1, SIG_DFL));
}

/* Signals keep arriving while runtimes come and go, so that handlers run
 * while the last runtime restores the old action and closes the eventfd.
 * After each close a socket pair takes the lowest free numbers (the
 * eventfd's among them): a handler that wrote to a number it loaded
 * before the close would leave bytes there. SIGUSR2 is ignored around the
 * subscriptions, so a late delivery is harmless. */
struct storm {
    atomic_bool stop;
    atomic_ulong sent;
};

static void *storm_main(void *arg)
{
    struct storm *st = arg;
    while (!atomic_load(&st->stop)) {
        TT_CHECK(raise(SIGUSR2) == 0); /* handled here, beside the closing thread */
        atomic_fetch_add(&st->sent, 1);
    }
    return NULL;
}

static void test_signal_storm_across_lifetimes(void)
{
    enum { ROUNDS = TT_TSAN ? 100 : 300 }; /* ThreadSanitizer: each round ~20x slower */
    struct sigaction before;
    ignore_usr2(&before);
    int none = tt_fds_open();

    struct storm st = { .stop = false };
    pthread_t t = tt_thread(storm_main, &st);
    int stray = 0;
    for (int i = 0; i < ROUNDS; i++) {
        tr_runtime *rt = tt_runtime(1, 0);
        TT_EQ(tr_runtime_stop_on_signal(rt, SIGUSR2), 0);
        tr_runtime_destroy(rt);
        int sv[2];
        CU_ASSERT_FATAL(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0);
        /* A handler in flight now finishes before the storm counts on. */
        unsigned long mark = atomic_load(&st.sent);
        while (atomic_load(&st.sent) < mark + 2)
            sched_yield();
        char b[8];
        for (int k = 0; k < 2; k++)
            stray += recv(sv[k], b, sizeof b, MSG_DONTWAIT) > 0;
        close(sv[0]);
        close(sv[1]);
    }
    atomic_store(&st.stop, true);
    tt_join(t);
    TT_NO_ERRORS();
    TT_EQ(stray, 0);
    CU_ASSERT(atomic_load(&st.sent) > 0);
    CU_ASSERT(handler_is(SIGUSR2, SIG_IGN));
    TT_EQ(tt_fds_open(), none);
    CU_ASSERT(sigaction(SIGUSR2, &before, NULL) == 0);
}

/* Two threads ask for the same stop signal at once ("any thread"; "twice
 * is harmless"): the handler is installed once and the runtime held
 * once, so that destroying it puts back the action there was before.
 * (Both saw the signal as new and installed it: the process's count
 * went up by two, the destroy took one off, and the signal was caught
 * and swallowed for good.) */
struct twice {
    tr_runtime *rt;
    pthread_barrier_t *go;
    int rc;
};

static void *stop_on_usr2(void *arg)
{
    struct twice *t = arg;
    pthread_barrier_wait(t->go);
    t->rc = tr_runtime_stop_on_signal(t->rt, SIGUSR2);
    return NULL;
}

static void test_stop_signal_asked_twice_at_once(void)
{
    enum { ROUNDS = TT_TSAN ? 50 : 300 };
    struct sigaction before;
    ignore_usr2(&before);
    pthread_barrier_t go;
    CU_ASSERT_FATAL(pthread_barrier_init(&go, NULL, 2) == 0);
    int restored = 0;
    for (int i = 0; i < ROUNDS; i++) {
        tr_runtime *rt = tt_runtime(1, 0);
        struct twice a = {rt, &go, -1}, b = {rt, &go, -1};
        pthread_t ta = tt_thread(stop_on_usr2, &a), tb = tt_thread(stop_on_usr2, &b);
        tt_join(ta);
        tt_join(tb);
        TT_EQ(a.rc, 0);
        TT_EQ(b.rc, 0);
        tr_runtime_destroy(rt);
        restored += handler_is(SIGUSR2, SIG_IGN);
        ignore_usr2(NULL); /* for the next round */
    }
    TT_EQ(restored, ROUNDS);
    pthread_barrier_destroy(&go);
    CU_ASSERT(sigaction(SIGUSR2, &before, NULL) == 0);
}

void register_io_tests(void)
{
    CU_pSuite s = tt_suite("io");
    tt_test(s, "pipe_readable_then_hup", test_readable_then_hup);
    tt_test(s, "edge_triggered_100k_records", test_edge_triggered_100k);
    tt_test(s, "unwatch_stops_messages_and_releases", test_unwatch);
    tt_test(s, "watch_holds_runtime_open", test_watch_holds_runtime);
    tt_test(s, "watch_dropped_when_actor_stops", test_watch_dropped_on_stop);
    tt_test(s, "watch_errors", test_watch_errors);
    tt_test(s, "a_watch_left_on_a_closed_fd_gives_way_to_its_next_file",
            test_stale_watch_gives_way);
    tt_test(s, "a_left_watch_renewed_by_its_actor_a_lingering_registration_refused",
            test_left_watch_renewed);
    tt_test(s, "the_runtimes_own_descriptors_are_refused", test_own_fds_refused);
    tt_test(s, "writable_on_pipe_write_end", test_writable);
    tt_test(s, "modify_interest", test_modify);
    tt_test(s, "signal_usr1_subscribe_receive_restore", test_signal_usr1);
    tt_test(s, "signal_two_subscribers_ignored_restored", test_signal_two_subscribers);
    tt_test(s, "signal_fd_closed_with_last_runtime", test_signal_fd_closed_with_last_runtime);
    tt_test(s, "signal_storm_across_lifetimes", test_signal_storm_across_lifetimes);
    tt_test(s, "stop_signal_asked_twice_at_once", test_stop_signal_asked_twice_at_once);
}
