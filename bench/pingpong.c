/* pingpong — P sends PING to Q, Q answers PONG, P sends the next PING on
 * each PONG; n round trips. */
#include "bench.h"

enum { START = 1, PING, PONG };

typedef struct pinger {
    tr_pid ponger;
    uint64_t left;      /* PINGs still to send */
    uint64_t got;       /* PONGs received */
    uint64_t *result;   /* main's: PONGs received, written at the end */
} pinger;

static void pong(tr_ctx *cx, void *state, const tr_msg *m)
{
    (void)state;
    if (m->type == PING)
        BENCH_TRY(tr_send(cx, m->from, PONG, NULL, 0));
}

static void ping(tr_ctx *cx, void *state, const tr_msg *m)
{
    pinger *p = state;
    if (m->type == PONG)
        p->got++;
    if (p->left == 0) {
        *p->result = p->got;
        return;
    }
    p->left--;
    BENCH_TRY(tr_send(cx, p->ponger, PING, NULL, 0));
}

int main(int argc, char **argv)
{
    bench_param params[] = { { "n", 1000000, 1, 0 } };
    bench b;
    bench_init(&b, "pingpong", params, 1, argc, argv);
    uint64_t n = params[0].value, pongs = 0;

    tr_pid q, p;
    BENCH_TRY(tr_spawn(tr_runtime_ctx(b.rt), pong, NULL, 0, &q));
    pinger st = { .ponger = q, .left = n, .result = &pongs };
    BENCH_TRY(tr_spawn(tr_runtime_ctx(b.rt), ping, &st, sizeof st, &p));
    bench_start(&b);
    double t0 = bench_now();
    BENCH_TRY(tr_send(tr_runtime_ctx(b.rt), p, START, NULL, 0));
    bench_join(&b);
    double secs = bench_now() - t0;

    bench_check(&b, pongs == n, "%" PRIu64 " round trips, want %" PRIu64, pongs, n);
    bench_check_stats(&b, 2 * n + 1, 2);
    return bench_finish(&b, secs, bench_rate(n, secs), "roundtrips");
}
