/* fanin — `senders` actors each send n messages to one receiver as fast
 * as they can; the receiver counts. */
#include "bench.h"

enum { START = 1, CONTINUE, ITEM, DONE };

typedef struct result {
    uint64_t count;     /* ITEMs received */
    uint64_t done;      /* senders that said DONE */
} result;

typedef struct receiver {
    uint64_t count;
    uint64_t done;
    uint64_t senders;
    result *result;     /* main's, written after the last DONE */
} receiver;

typedef struct sender {
    tr_pid receiver;
    uint64_t n;
    uint64_t sent;
} sender;

static void receive(tr_ctx *cx, void *state, const tr_msg *m)
{
    (void)cx;
    receiver *r = state;
    if (m->type == ITEM) {
        r->count++;
    } else if (m->type == DONE && ++r->done == r->senders) {
        r->result->count = r->count;
        r->result->done = r->done;
    }
}

static void send_items(tr_ctx *cx, void *state, const tr_msg *m)
{
    (void)m;
    sender *s = state;
    uint64_t end = s->n - s->sent < BENCH_CHUNK ? s->n : s->sent + BENCH_CHUNK;
    for (; s->sent < end; s->sent++)
        BENCH_TRY(tr_send(cx, s->receiver, ITEM, NULL, 0));
    /* Per-sender FIFO puts DONE behind this sender's every ITEM. */
    if (s->sent < s->n)
        BENCH_TRY(tr_send(cx, tr_self(cx), CONTINUE, NULL, 0));
    else
        BENCH_TRY(tr_send(cx, s->receiver, DONE, NULL, 0));
}

int main(int argc, char **argv)
{
    bench_param params[] = { { "senders", 8, 1, 0 }, { "n", 2000000, 1, 0 } };
    bench b;
    bench_init(&b, "fanin", params, 2, argc, argv);
    uint64_t senders = params[0].value, n = params[1].value;
    result res = { 0, 0 };

    tr_pid recv;
    receiver r = { .senders = senders, .result = &res };
    BENCH_TRY(tr_spawn(tr_runtime_ctx(b.rt), receive, &r, sizeof r, &recv));
    tr_pid *all = calloc(senders, sizeof *all);
    if (all == NULL)
        bench_die(b.name, "calloc", TR_ENOMEM);
    for (uint64_t i = 0; i < senders; i++) {
        sender s = { .receiver = recv, .n = n };
        BENCH_TRY(tr_spawn(tr_runtime_ctx(b.rt), send_items, &s, sizeof s, &all[i]));
    }
    bench_start(&b);
    double t0 = bench_now();
    for (uint64_t i = 0; i < senders; i++)
        BENCH_TRY(tr_send(tr_runtime_ctx(b.rt), all[i], START, NULL, 0));
    bench_join(&b);
    double secs = bench_now() - t0;

    bench_check(&b, res.done == senders, "%" PRIu64 " DONEs, want %" PRIu64, res.done, senders);
    bench_check(&b, res.count == senders * n, "count %" PRIu64 ", want %" PRIu64,
                res.count, senders * n);
    uint64_t turns = senders * (1 + (n - 1) / BENCH_CHUNK);
    bench_check_stats(&b, turns + senders * n + senders, senders + 1);
    free(all);
    return bench_finish(&b, secs, bench_rate(senders * n, secs), "messages");
}
