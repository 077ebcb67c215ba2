/* fjthroughput — a driver sends n messages to each of `actors` workers,
 * round robin, message k carrying k; each worker sums its payloads and,
 * after its n-th, reports the sum to the driver. */
#include "bench.h"

enum { START = 1, CONTINUE, WORK, SUM };

typedef struct worker {
    uint64_t index;
    uint64_t n;
    uint64_t got;
    uint64_t sum;
} worker;

typedef struct report {
    uint64_t index;
    uint64_t sum;
} report;

typedef struct driver {
    const tr_pid *workers;  /* main's array, read-only while running */
    uint64_t actors;
    uint64_t total;         /* messages to send, actors * n */
    uint64_t k;             /* next message */
    uint64_t *sums;         /* main's: one per worker */
} driver;

static void work(tr_ctx *cx, void *state, const tr_msg *m)
{
    worker *w = state;
    w->sum += bench_u64(m);
    if (++w->got == w->n) {
        report r = { w->index, w->sum };
        BENCH_TRY(TR_SEND_VALUE(cx, m->from, SUM, r));
    }
}

static void drive(tr_ctx *cx, void *state, const tr_msg *m)
{
    driver *d = state;
    if (m->type == SUM) {
        const report *r = BENCH_PAYLOAD(m, report);
        d->sums[r->index] = r->sum;
        return;
    }
    uint64_t end = d->total - d->k < BENCH_CHUNK ? d->total : d->k + BENCH_CHUNK;
    for (; d->k < end; d->k++)
        BENCH_TRY(TR_SEND_VALUE(cx, d->workers[d->k % d->actors], WORK, d->k));
    if (d->k < d->total)
        BENCH_TRY(tr_send(cx, tr_self(cx), CONTINUE, NULL, 0));
}

int main(int argc, char **argv)
{
    bench_param params[] = { { "actors", 60, 1, 0 }, { "n", 200000, 1, 0 } };
    bench b;
    bench_init(&b, "fjthroughput", params, 2, argc, argv);
    uint64_t actors = params[0].value, n = params[1].value, total = actors * n;

    tr_pid *workers = calloc(actors, sizeof *workers);
    uint64_t *sums = calloc(actors, sizeof *sums);
    if (workers == NULL || sums == NULL)
        bench_die(b.name, "calloc", TR_ENOMEM);
    for (uint64_t i = 0; i < actors; i++) {
        worker w = { .index = i, .n = n };
        BENCH_TRY(tr_spawn(tr_runtime_ctx(b.rt), work, &w, sizeof w, &workers[i]));
    }
    driver d = { .workers = workers, .actors = actors, .total = total, .sums = sums };
    tr_pid drv;
    BENCH_TRY(tr_spawn(tr_runtime_ctx(b.rt), drive, &d, sizeof d, &drv));
    bench_start(&b);
    double t0 = bench_now();
    BENCH_TRY(tr_send(tr_runtime_ctx(b.rt), drv, START, NULL, 0));
    bench_join(&b);
    double secs = bench_now() - t0;

    /* Worker i got k = i + j*actors for j < n. */
    for (uint64_t i = 0; i < actors; i++) {
        uint64_t want = n * i + actors * (n * (n - 1) / 2);
        if (!bench_check(&b, sums[i] == want, "worker %" PRIu64 " summed %" PRIu64
                         ", want %" PRIu64, i, sums[i], want))
            break;
    }
    uint64_t continues = (total - 1) / BENCH_CHUNK;
    bench_check_stats(&b, 1 + continues + total + actors, actors + 1);
    free(workers);
    free(sums);
    return bench_finish(&b, secs, bench_rate(total, secs), "messages");
}
