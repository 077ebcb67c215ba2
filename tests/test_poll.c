/* test_poll.c — the reactor polled by the workers (reactor/reactor.h):
 * readiness of many descriptors while the workers take turns at polling,
 * every record delivered once and in order; readiness and timers reaching
 * a runtime whose only worker never runs dry (the poll between turns);
 * and a worker asleep in epoll_wait woken for work from outside.
 *
 * No timing assertions: a hang is turned into a failure by generous
 * safety nets (tt_join_within). */
#include "tests.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum { MSG_WATCH = 70, MSG_SPIN, MSG_WAKE, MSG_PING };

static void make_pipe(int fds[2])
{
    CU_ASSERT_FATAL(pipe2(fds, O_NONBLOCK | O_CLOEXEC) == 0);
}

/* ---- many pipes, workers taking turns at polling -------------------------- */

#define PIPES 64u
#define RECORDS (TT_TSAN ? 20000u : 200000u) /* in all, 8 bytes each */

struct pipes {
    int rd[PIPES], wr[PIPES];
    uint32_t next[PIPES];      /* the watcher's: next record expected */
    atomic_ulong records, hups;
};

struct watcher {
    struct pipes *p;
    uint32_t i;
};

/* Reads until EAGAIN (edge-triggered), checking each record's order. */
static void pipe_watcher(tr_ctx *cx, void *state, const tr_msg *m)
{
    struct watcher *w = state;
    struct pipes *p = w->p;
    if (m->type == MSG_WATCH) {
        TT_CHECK(tr_io_watch(cx, p->rd[w->i], TR_IO_READ) == 0);
        return;
    }
    uint32_t rec[2 * 64];
    ssize_t n;
    while ((n = read(p->rd[w->i], rec, sizeof rec)) > 0) {
        TT_CHECK(n % 8 == 0);
        for (ssize_t k = 0; k < n / 8; k++) {
            TT_CHECK(rec[2 * k] == w->i && rec[2 * k + 1] == p->next[w->i]);
            p->next[w->i] = rec[2 * k + 1] + 1;
            atomic_fetch_add(&p->records, 1);
        }
    }
    if (n == 0) { /* the writer is done with this pipe */
        atomic_fetch_add(&p->hups, 1);
        tr_io_unwatch(cx, p->rd[w->i]);
        tr_stop(cx);
    }
}

static void test_many_pipes(void)
{
    struct pipes *p = calloc(1, sizeof *p);
    CU_ASSERT_FATAL(p != NULL);
    tr_runtime *rt = tt_runtime(4, 0); /* more workers than cores here */
    for (uint32_t i = 0; i < PIPES; i++) {
        int fds[2];
        make_pipe(fds);
        p->rd[i] = fds[0];
        p->wr[i] = fds[1];
        struct watcher st = { p, i };
        tr_pid pid;
        TT_EQ(tr_spawn(tr_runtime_ctx(rt), pipe_watcher, &st, sizeof st, &pid), 0);
        TT_EQ(tr_send(tr_runtime_ctx(rt), pid, MSG_WATCH, NULL, 0), 0);
    }
    TT_EQ(tr_runtime_start(rt), 0);
    /* Bursts to pipes picked at random: each write readies one watcher,
     * whichever worker is polling. */
    uint32_t sent[PIPES] = { 0 };
    uint64_t rng = 88172645463325252ull;
    for (uint32_t r = 0; r < RECORDS;) {
        uint64_t x = tt_rng_next(&rng);
        uint32_t i = (uint32_t)(x % PIPES), burst = 1 + (uint32_t)(x >> 40) % 16;
        uint32_t rec[2 * 16];
        for (uint32_t k = 0; k < burst; k++) {
            rec[2 * k] = i;
            rec[2 * k + 1] = sent[i] + k;
        }
        ssize_t n = write(p->wr[i], rec, 8 * burst);
        if (n < 0 && errno == EAGAIN) {
            tt_sleep_ms(1); /* the pipe is full: its watcher is behind */
            continue;
        }
        TT_CHECK(n == (ssize_t)(8 * burst)); /* under PIPE_BUF: whole */
        sent[i] += burst;
        r += burst;
    }
    uint64_t total = 0;
    for (uint32_t i = 0; i < PIPES; i++) {
        total += sent[i];
        close(p->wr[i]);
    }
    TT_EQ(tt_join_within(rt, 300), 0); /* every watcher saw its EOF */
    TT_NO_ERRORS();
    TT_EQ(atomic_load(&p->records), total);
    TT_EQ(atomic_load(&p->hups), PIPES);
    for (uint32_t i = 0; i < PIPES; i++) {
        TT_EQ(p->next[i], sent[i]);
        close(p->rd[i]);
    }
    tr_runtime_destroy(rt);
    free(p);
}

/* ---- a worker that never runs dry still polls ------------------------------ */

struct busy {
    int rd, wr;
    atomic_bool stop;
    atomic_ulong spins;
    atomic_int woken_by; /* MSG_WAKE for readiness, MSG_PING for a timer */
};

/* Keeps the only worker busy, one message to itself at a time, until told
 * to stop: the worker never parks, so only the poll between turns can
 * see readiness or a due timer. */
static void spinner(tr_ctx *cx, void *state, const tr_msg *m)
{
    struct busy *b = *(struct busy **)state;
    if (m->type == MSG_PING) {
        atomic_store(&b->woken_by, MSG_PING);
        atomic_store(&b->stop, true);
    }
    atomic_fetch_add(&b->spins, 1);
    if (!atomic_load(&b->stop))
        TT_CHECK(tr_send(cx, tr_self(cx), MSG_SPIN, NULL, 0) == 0);
}

static void reader(tr_ctx *cx, void *state, const tr_msg *m)
{
    struct busy *b = *(struct busy **)state;
    if (m->type == MSG_WATCH) {
        TT_CHECK(tr_io_watch(cx, b->rd, TR_IO_READ) == 0);
        return;
    }
    char c;
    if (read(b->rd, &c, 1) == 1) {
        atomic_store(&b->woken_by, MSG_WAKE);
        atomic_store(&b->stop, true);
        tr_io_unwatch(cx, b->rd);
        tr_stop(cx);
    }
}

static void busy_run(bool by_timer)
{
    struct busy b = { 0 };
    struct busy *bp = &b;
    int fds[2];
    make_pipe(fds);
    b.rd = fds[0];
    b.wr = fds[1];
    tr_runtime *rt = tt_runtime(1, 0);
    tr_pid spin, rd;
    TT_EQ(tr_spawn(tr_runtime_ctx(rt), spinner, &bp, sizeof bp, &spin), 0);
    TT_EQ(tr_spawn(tr_runtime_ctx(rt), reader, &bp, sizeof bp, &rd), 0);
    if (by_timer) {
        tr_timer_spec spec = { .delay_ns = 2 * TR_MSEC, .to = spin, .type = MSG_PING };
        TT_EQ(tr_timer_start(tr_runtime_ctx(rt), &spec, NULL), 0);
    } else {
        TT_EQ(tr_send(tr_runtime_ctx(rt), rd, MSG_WATCH, NULL, 0), 0);
    }
    TT_EQ(tr_send(tr_runtime_ctx(rt), spin, MSG_SPIN, NULL, 0), 0);
    TT_EQ(tr_runtime_start(rt), 0);
    if (!by_timer) {
        while (atomic_load(&b.spins) < 1000)
            tt_sleep_ms(1); /* the worker is busy with the spinner now */
        TT_EQ(write(b.wr, "x", 1), 1);
    }
    int rc = tt_join_within(rt, 60);
    TT_EQ(rc, 0); /* 1: stopped by the safety net, nothing was seen */
    TT_EQ(atomic_load(&b.woken_by), by_timer ? MSG_PING : MSG_WAKE);
    printf("[%lu turns of the spinner first] ", atomic_load(&b.spins));
    TT_NO_ERRORS();
    tr_runtime_destroy(rt);
    close(b.rd);
    close(b.wr);
}

static void test_readiness_reaches_busy_worker(void) { busy_run(false); }
static void test_timer_reaches_busy_worker(void) { busy_run(true); }

/* ---- the worker asleep in epoll_wait is woken for work ---------------------- */

struct pinged {
    atomic_ulong handled;
};

static void ping_counter(tr_ctx *cx, void *state, const tr_msg *m)
{
    (void)cx;
    struct pinged *p = *(struct pinged **)state;
    TT_CHECK(m->type == MSG_PING);
    atomic_fetch_add(&p->handled, 1);
}

static void idle_watcher(tr_ctx *cx, void *state, const tr_msg *m)
{
    int fd = *(int *)state;
    if (m->type == MSG_WATCH)
        TT_CHECK(tr_io_watch(cx, fd, TR_IO_READ) == 0);
    else if (m->type == MSG_SPIN) {
        tr_io_unwatch(cx, fd);
        tr_stop(cx);
    }
}

/* One worker and a watch: the worker sleeps in epoll_wait, not on its
 * futex, whenever it runs dry; each message from outside must wake it. */
static void test_sleeping_poller_woken(void)
{
    enum { PINGS = TT_TSAN ? 2000 : 20000 };
    struct pinged p = { 0 };
    struct pinged *pp = &p;
    int fds[2];
    make_pipe(fds);
    tr_runtime *rt = tt_runtime(1, 0);
    tr_pid counter, watcher;
    TT_EQ(tr_spawn(tr_runtime_ctx(rt), ping_counter, &pp, sizeof pp, &counter), 0);
    TT_EQ(tr_spawn(tr_runtime_ctx(rt), idle_watcher, &fds[0], sizeof fds[0], &watcher), 0);
    TT_EQ(tr_send(tr_runtime_ctx(rt), watcher, MSG_WATCH, NULL, 0), 0);
    TT_EQ(tr_runtime_start(rt), 0);
    unsigned long lost = 0;
    for (int i = 0; i < PINGS && lost == 0; i++) {
        TT_EQ(tr_send(tr_runtime_ctx(rt), counter, MSG_PING, NULL, 0), 0);
        unsigned long spins = 0;
        double deadline = tt_now() + 30;
        while (atomic_load(&p.handled) < (unsigned long)i + 1 && tt_now() < deadline)
            tt_relax(&spins); /* wait for it to be handled: the worker sleeps again */
        if (atomic_load(&p.handled) < (unsigned long)i + 1)
            lost++;
    }
    TT_EQ(lost, 0);
    TT_EQ(tr_send(tr_runtime_ctx(rt), watcher, MSG_SPIN, NULL, 0), 0);
    TT_EQ(tt_join_within(rt, 60), 0);
    TT_NO_ERRORS();
    TT_EQ(atomic_load(&p.handled), PINGS);
    tr_runtime_destroy(rt);
    close(fds[0]);
    close(fds[1]);
}

void register_poll_tests(void)
{
    CU_pSuite s = tt_suite("poll");
    tt_test(s, "many_pipes_every_record_once_workers_taking_turns", test_many_pipes);
    tt_test(s, "readiness_reaches_a_worker_that_never_runs_dry",
            test_readiness_reaches_busy_worker);
    tt_test(s, "timer_reaches_a_worker_that_never_runs_dry", test_timer_reaches_busy_worker);
    tt_test(s, "worker_asleep_in_epoll_woken_for_each_message", test_sleeping_poller_woken);
}
