/* timers — the reactor's timing wheel under load (not one of the Savina
 * benchmarks; reported beside them).
 *
 * Phase 1: `starters` actors start n timers between them (each due in an
 * hour, so none fires), then cancel every one. Reports start+cancel cost
 * per timer, and resident memory per pending timer measured when all n
 * are pending.
 * Phase 2: the starters start n timers with delays spread evenly over
 * `spread_ms`, each carrying its due time to a collector, which records
 * how late it fired. Reports lateness p50/p99/max in microseconds. Checks
 * that every timer fired exactly once and none early.
 */
#include "bench.h"

#include <stdlib.h>

enum { START = 1, CONTINUE, CANCEL, STARTED, FIRED };

typedef struct shared {
    uint64_t n, spread_ns;
    tr_pid *timers;          /* phase 1: every timer's pid */
    uint64_t *late_ns;       /* phase 2: per timer, UINT64_MAX until fired */
    uint64_t fired, early, twice;
    double t_started;        /* when the last starter reported */
    uint64_t rss_before, rss_pending;
    tr_pid collector;
    unsigned starters, reported;
    tr_pid *starter_pids;
} shared;

typedef struct starter {
    shared *sh;
    uint64_t first, end, next; /* this starter's share [first, end) */
    int phase;
} starter;

static uint64_t now_ns(void)
{
    return (uint64_t)(bench_now() * 1e9);
}

static void coordinate(tr_ctx *cx, void *state, const tr_msg *m)
{
    shared *sh = *(shared **)state;
    if (m->type != STARTED || ++sh->reported < sh->starters)
        return;
    sh->t_started = bench_now();
    sh->rss_pending = bench_rss();
    for (unsigned i = 0; i < sh->starters; i++)
        BENCH_TRY(tr_send(cx, sh->starter_pids[i], CANCEL, NULL, 0));
}

static void start_timers(tr_ctx *cx, void *state, const tr_msg *m)
{
    starter *s = state;
    shared *sh = s->sh;
    if (m->type == CANCEL) {
        for (uint64_t i = s->first; i < s->end; i++)
            if (tr_timer_cancel(cx, sh->timers[i]) != 1)
                sh->twice++; /* a timer that was not pending: a failure */
        return;
    }
    uint64_t stop = s->end - s->next < 256 ? s->end : s->next + 256;
    for (; s->next < stop; s->next++) {
        uint64_t i = s->next;
        tr_timer_spec spec = {.type = FIRED, .len = 2 * sizeof(uint64_t)};
        uint64_t payload[2];
        if (s->phase == 1) {
            spec.delay_ns = 3600 * TR_SEC;
            spec.to = tr_self(cx);
            payload[0] = i;
            payload[1] = 0;
            spec.data = payload;
            BENCH_TRY(tr_timer_start(cx, &spec, &sh->timers[i]));
        } else {
            spec.delay_ns = sh->spread_ns * i / sh->n;
            spec.to = sh->collector;
            payload[0] = i;
            payload[1] = now_ns() + spec.delay_ns;
            spec.data = payload;
            BENCH_TRY(tr_timer_start(cx, &spec, NULL));
        }
    }
    if (s->next < s->end)
        BENCH_TRY(tr_send(cx, tr_self(cx), CONTINUE, NULL, 0));
    else if (s->phase == 1)
        BENCH_TRY(tr_send(cx, sh->collector, STARTED, NULL, 0));
}

static void collect(tr_ctx *cx, void *state, const tr_msg *m)
{
    (void)cx;
    shared *sh = *(shared **)state;
    typedef uint64_t stamp[2]; /* the timer's index, when it is due */
    const uint64_t *p = *BENCH_PAYLOAD(m, stamp);
    uint64_t now = now_ns();
    if (sh->late_ns[p[0]] != UINT64_MAX)
        sh->twice++;
    if (now < p[1])
        sh->early++;
    sh->late_ns[p[0]] = now > p[1] ? now - p[1] : 0;
    sh->fired++;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static void spawn_starters(bench *b, shared *sh, int phase)
{
    for (unsigned k = 0; k < sh->starters; k++) {
        starter s = {.sh = sh, .first = sh->n * k / sh->starters,
                     .end = sh->n * (k + 1) / sh->starters, .phase = phase};
        s.next = s.first;
        BENCH_TRY(tr_spawn(tr_runtime_ctx(b->rt), start_timers, &s, sizeof s, &sh->starter_pids[k]));
    }
    for (unsigned k = 0; k < sh->starters; k++)
        BENCH_TRY(tr_send(tr_runtime_ctx(b->rt), sh->starter_pids[k], START, NULL, 0));
}

int main(int argc, char **argv)
{
    bench_param params[] = { { "n", 1000000, 1, 0 }, { "spread_ms", 1000, 1, 0 } };
    bench b;
    bench_init(&b, "timers", params, 2, argc, argv);
    shared sh = {.n = params[0].value, .spread_ns = params[1].value * TR_MSEC};
    sh.starters = tr_runtime_threads(b.rt);
    sh.starter_pids = calloc(sh.starters, sizeof(tr_pid));
    sh.timers = calloc(sh.n, sizeof(tr_pid));
    sh.late_ns = malloc(sh.n * sizeof(uint64_t));
    if (sh.starter_pids == NULL || sh.timers == NULL || sh.late_ns == NULL)
        bench_die(b.name, "malloc", TR_ENOMEM);
    memset(sh.late_ns, 0xff, sh.n * sizeof(uint64_t));
    shared *shp = &sh;

    /* Phase 1: start and cancel. */
    BENCH_TRY(tr_spawn(tr_runtime_ctx(b.rt), coordinate, &shp, sizeof shp, &sh.collector));
    sh.rss_before = bench_rss();
    bench_start(&b);
    double t0 = bench_now();
    spawn_starters(&b, &sh, 1);
    bench_join(&b);
    double t1 = bench_now();
    double start_cancel_ns = (t1 - t0) * 1e9 / (double)sh.n;
    bench_check(&b, sh.twice == 0, "%" PRIu64 " cancels found their timer not pending", sh.twice);

    /* Phase 2: lateness. */
    sh.twice = 0;
    BENCH_TRY(tr_spawn(tr_runtime_ctx(b.rt), collect, &shp, sizeof shp, &sh.collector));
    spawn_starters(&b, &sh, 2);
    bench_run(&b);
    bench_check(&b, sh.fired == sh.n, "%" PRIu64 " timers fired, want %" PRIu64, sh.fired, sh.n);
    bench_check(&b, sh.twice == 0, "%" PRIu64 " timers fired twice", sh.twice);
    bench_check(&b, sh.early == 0, "%" PRIu64 " timers fired early", sh.early);
    qsort(sh.late_ns, sh.n, sizeof(uint64_t), cmp_u64);
    uint64_t p50 = sh.late_ns[sh.n / 2], p99 = sh.late_ns[sh.n * 99 / 100];
    uint64_t max = sh.late_ns[sh.n - 1];
    tr_stats st;
    tr_runtime_stats(b.rt, &st);
    bench_check(&b, st.dead_letters == 0, "dead_letters = %" PRIu64, st.dead_letters);
    bench_check(&b, st.actors_alive == sh.starters * 2 + 2,
                "actors_alive = %" PRIu64 ", want only starters and collectors", st.actors_alive);

    double bytes = sh.rss_pending > sh.rss_before
                       ? (double)(sh.rss_pending - sh.rss_before) / (double)sh.n : 0;
    snprintf(b.extra, sizeof b.extra,
             "start_cancel_ns=%.0f late_p50_us=%.0f late_p99_us=%.0f late_max_us=%.0f "
             "bytes_per_timer=%.0f",
             start_cancel_ns, p50 / 1e3, p99 / 1e3, max / 1e3, bytes);
    free(sh.starter_pids);
    free(sh.timers);
    free(sh.late_ns);
    return bench_finish(&b, t1 - t0, bench_rate(sh.n, t1 - t0), "timers");
}
