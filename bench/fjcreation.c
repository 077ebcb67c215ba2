/* fjcreation — n times: spawn an actor and send it i; it answers i+1 to
 * the driver and stops. The driver spawns on without waiting. */
#include "bench.h"

enum { START = 1, CONTINUE, FORK, JOIN };

typedef struct result {
    uint64_t answers;
    uint64_t sum;
} result;

typedef struct driver {
    uint64_t n;
    uint64_t spawned;
    uint64_t answers;
    uint64_t sum;
    result *result;     /* main's, written when the last answer is in */
} driver;

static void child(tr_ctx *cx, void *state, const tr_msg *m)
{
    (void)state;
    uint64_t v = bench_u64(m) + 1;
    BENCH_TRY(tr_send(cx, m->from, JOIN, &v, sizeof v));
    tr_stop(cx);
}

static void drive(tr_ctx *cx, void *state, const tr_msg *m)
{
    driver *d = state;
    if (m->type == JOIN) {
        d->sum += bench_u64(m);
        if (++d->answers == d->n)
            *d->result = (result){ d->answers, d->sum };
        return;
    }
    uint64_t end = d->n - d->spawned < BENCH_CHUNK ? d->n : d->spawned + BENCH_CHUNK;
    for (; d->spawned < end; d->spawned++) {
        tr_pid c;
        BENCH_TRY(tr_spawn(cx, child, NULL, 0, &c));
        BENCH_TRY(tr_send(cx, c, FORK, &d->spawned, sizeof d->spawned));
    }
    if (d->spawned < d->n)
        BENCH_TRY(tr_send(cx, tr_self(cx), CONTINUE, NULL, 0));
}

int main(int argc, char **argv)
{
    bench_param params[] = { { "n", 1000000, 1, 0 } };
    bench b;
    bench_init(&b, "fjcreation", params, 1, argc, argv);
    uint64_t n = params[0].value;
    result res = { 0, 0 };

    driver d = { .n = n, .result = &res };
    tr_pid drv;
    BENCH_TRY(tr_spawn(tr_runtime_ctx(b.rt), drive, &d, sizeof d, &drv));
    bench_start(&b);
    double t0 = bench_now();
    BENCH_TRY(tr_send(tr_runtime_ctx(b.rt), drv, START, NULL, 0));
    bench_join(&b);
    double secs = bench_now() - t0;

    bench_check(&b, res.answers == n, "%" PRIu64 " answers, want %" PRIu64, res.answers, n);
    bench_check(&b, res.sum == n * (n + 1) / 2, "answers sum to %" PRIu64
                ", want %" PRIu64, res.sum, n * (n + 1) / 2);
    tr_stats s;
    tr_runtime_stats(b.rt, &s);
    bench_check(&b, s.actors_spawned == n + 1, "actors_spawned = %" PRIu64
                ", want %" PRIu64, s.actors_spawned, n + 1);
    bench_check_stats(&b, 1 + (n - 1) / BENCH_CHUNK + 2 * n, 1);
    return bench_finish(&b, secs, bench_rate(n, secs), "actors");
}
