/* test_metrics_workers.c — the runtime's I/O and timer counters: timers
 * pending while they are, one lateness sample per delivery; descriptors
 * watched while they are, readiness events and polls counted. */
#include "tests.h"

#include <string.h>
#include <unistd.h>

enum { MSG_TICK = 1, MSG_WATCH };

#define TIMERS 5

static void ticked(tr_ctx *cx, void *state, const tr_msg *m)
{
    (void)cx;
    if (m->type == MSG_TICK)
        ++*(uint64_t *)state;
}

static uint64_t lateness_total(const tr_metrics *m)
{
    uint64_t n = 0;
    for (unsigned b = 0; b < TR_LATENESS_BUCKETS; b++)
        n += m->lateness[b];
    return n;
}

static void test_timers_pending_and_one_lateness_sample_each(void)
{
    tr_runtime *rt = tt_runtime(2, 0);
    tr_ctx *cx = tr_runtime_ctx(rt);
    tr_pid p, cancelled;
    TT_EQ(tr_spawn(cx, ticked, &(uint64_t){0}, sizeof(uint64_t), &p), 0);
    for (unsigned i = 0; i < TIMERS; i++)
        TT_EQ(tr_send_after(cx, (i + 1) * 1000 * 1000, p, MSG_TICK, NULL, 0), 0);
    tr_timer_spec spec = {.delay_ns = 60ull * 1000 * 1000 * 1000, .to = p, .type = MSG_TICK};
    TT_EQ(tr_timer_start(cx, &spec, &cancelled), 0);
    tr_metrics m;
    tr_runtime_metrics(rt, &m, NULL, 0);
    TT_EQ(m.timers_pending, TIMERS + 1);
    TT_EQ(tr_timer_cancel(cx, cancelled), 1);
    tr_runtime_metrics(rt, &m, NULL, 0);
    TT_EQ(m.timers_pending, TIMERS);

    TT_EQ(tr_runtime_run(rt), 0);
    tr_runtime_metrics(rt, &m, NULL, 0);
    TT_EQ(m.timers_pending, 0);
    TT_EQ(lateness_total(&m), TIMERS); /* the cancelled one never fired */
    tr_actor_figures f;
    TT_EQ(tr_actor_info(rt, p, &f), 0);
    TT_EQ(f.handled, TIMERS);
    CU_ASSERT(m.polls > 0);
    tr_runtime_destroy(rt);
}

/* Watches the read end of a pipe (its fd in the state) and, once it has
 * seen it readable, checks the count of watched descriptors and ends. */
struct watcher {
    int fd;
    int readable;
};

static void watching(tr_ctx *cx, void *state, const tr_msg *m)
{
    struct watcher *w = state;
    tr_metrics mt;
    if (m->type == MSG_WATCH) {
        TT_CHECK(tr_io_watch(cx, w->fd, TR_IO_READ) == 0);
        tr_runtime_metrics(tr_ctx_runtime(cx), &mt, NULL, 0);
        TT_CHECK(mt.fds_watched == 1);
    } else if (m->type == TR_IO_READABLE) {
        w->readable++;
        TT_CHECK(tr_io_unwatch(cx, w->fd) == 0);
        tr_runtime_metrics(tr_ctx_runtime(cx), &mt, NULL, 0);
        TT_CHECK(mt.fds_watched == 0);
        TT_CHECK(mt.io_events >= 1);
        tr_stop(cx);
    }
}

static void test_fds_watched_and_io_events(void)
{
    int fds[2];
    CU_ASSERT_FATAL(pipe(fds) == 0);
    TT_EQ(write(fds[1], "x", 1), 1); /* readable from the start */
    tr_runtime *rt = tt_runtime(2, 0);
    tr_ctx *cx = tr_runtime_ctx(rt);
    struct watcher w = {.fd = fds[0]};
    tr_pid p;
    TT_EQ(tr_spawn(cx, watching, &w, sizeof w, &p), 0);
    TT_EQ(tr_send(cx, p, MSG_WATCH, NULL, 0), 0);
    TT_EQ(tr_runtime_start(rt), 0);
    TT_EQ(tt_join_within(rt, 120), 0);
    TT_NO_ERRORS();
    tr_metrics m;
    tr_worker_metrics per[2];
    TT_EQ(tr_runtime_metrics(rt, &m, per, 2), 2);
    TT_EQ(m.fds_watched, 0);
    CU_ASSERT(m.io_events >= 1);
    TT_EQ(per[0].io_events + per[1].io_events, m.io_events);
    TT_EQ(per[0].polls + per[1].polls, m.polls);
    TT_EQ(tr_actor_info(rt, p, &(tr_actor_figures){0}), TR_ENOPID);
    close(fds[0]);
    close(fds[1]);
    tr_runtime_destroy(rt);
}

void register_metrics_workers_tests(void)
{
    CU_pSuite s = tt_suite("metrics_workers");
    tt_test(s, "timers_pending_and_one_lateness_sample_each",
            test_timers_pending_and_one_lateness_sample_each);
    tt_test(s, "fds_watched_and_io_events", test_fds_watched_and_io_events);
}
