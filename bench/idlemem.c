/* idlemem — spawn n actors with 16 bytes of state each, waiting for a
 * message; resident memory afterwards minus before, per actor; then STOP
 * them all. */
#include "bench.h"

enum { STOP = 1 };

typedef struct idler {
    uint64_t index;
    uint64_t spare;
} idler;

static void idle(tr_ctx *cx, void *state, const tr_msg *m)
{
    (void)state;
    if (m->type == STOP)
        tr_stop(cx);
}

int main(int argc, char **argv)
{
    bench_param params[] = { { "n", 1000000, 1, 0 } };
    bench b;
    bench_init(&b, "idlemem", params, 1, argc, argv);
    uint64_t n = params[0].value;

    /* The pid array is the benchmark's own memory, not the actors': make
     * it resident before the first reading. */
    tr_pid *all = malloc(n * sizeof *all);
    if (all == NULL)
        bench_die(b.name, "malloc", TR_ENOMEM);
    memset(all, 0xff, n * sizeof *all);

    /* The measured part: creating all n and having them all exit. */
    uint64_t before = bench_rss();
    double t0 = bench_now();
    for (uint64_t i = 0; i < n; i++) {
        idler st = { .index = i };
        BENCH_TRY(tr_spawn(tr_runtime_ctx(b.rt), idle, &st, sizeof st, &all[i]));
    }
    uint64_t after = bench_rss();
    for (uint64_t i = 0; i < n; i++)
        BENCH_TRY(tr_send(tr_runtime_ctx(b.rt), all[i], STOP, NULL, 0));
    bench_run(&b);
    double secs = bench_now() - t0;

    double per_actor = after > before ? (double)(after - before) / (double)n : 0.0;
    tr_stats s;
    tr_runtime_stats(b.rt, &s);
    bench_check(&b, s.actors_spawned == n, "actors_spawned = %" PRIu64 ", want %" PRIu64,
                s.actors_spawned, n);
    bench_check_stats(&b, n, 0);
    free(all);
    return bench_finish(&b, secs, per_actor, "bytes/actor");
}
