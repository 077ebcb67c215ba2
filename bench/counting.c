/* counting — a producer sends n INCREMENTs to a counter, then RETRIEVE;
 * the counter answers with its total. */
#include "bench.h"

enum { START = 1, CONTINUE, INCREMENT, RETRIEVE, TOTAL };

typedef struct producer {
    tr_pid counter;
    uint64_t n;
    uint64_t sent;
    uint64_t *total;    /* main's: the counter's answer */
} producer;

static void count(tr_ctx *cx, void *state, const tr_msg *m)
{
    uint64_t *total = state;
    if (m->type == INCREMENT)
        ++*total;
    else if (m->type == RETRIEVE)
        BENCH_TRY(tr_send(cx, m->from, TOTAL, total, sizeof *total));
}

static void produce(tr_ctx *cx, void *state, const tr_msg *m)
{
    producer *p = state;
    if (m->type == TOTAL) {
        *p->total = bench_u64(m);
        return;
    }
    uint64_t end = p->n - p->sent < BENCH_CHUNK ? p->n : p->sent + BENCH_CHUNK;
    for (; p->sent < end; p->sent++)
        BENCH_TRY(tr_send(cx, p->counter, INCREMENT, NULL, 0));
    /* Per-sender FIFO puts RETRIEVE behind every INCREMENT. */
    if (p->sent < p->n)
        BENCH_TRY(tr_send(cx, tr_self(cx), CONTINUE, NULL, 0));
    else
        BENCH_TRY(tr_send(cx, p->counter, RETRIEVE, NULL, 0));
}

int main(int argc, char **argv)
{
    bench_param params[] = { { "n", 10000000, 1, 0 } };
    bench b;
    bench_init(&b, "counting", params, 1, argc, argv);
    uint64_t n = params[0].value, total = 0, zero = 0;

    tr_pid counter, prod;
    BENCH_TRY(tr_spawn(tr_runtime_ctx(b.rt), count, &zero, sizeof zero, &counter));
    producer st = { .counter = counter, .n = n, .total = &total };
    BENCH_TRY(tr_spawn(tr_runtime_ctx(b.rt), produce, &st, sizeof st, &prod));
    bench_start(&b);
    double t0 = bench_now();
    BENCH_TRY(tr_send(tr_runtime_ctx(b.rt), prod, START, NULL, 0));
    bench_join(&b);
    double secs = bench_now() - t0;

    bench_check(&b, total == n, "total %" PRIu64 ", want %" PRIu64, total, n);
    uint64_t continues = (n - 1) / BENCH_CHUNK;
    bench_check_stats(&b, n + 1 + continues + 2, 2);
    return bench_finish(&b, secs, bench_rate(n, secs), "messages");
}
