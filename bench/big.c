/* big — every actor sends PING to a random other actor, waits for the
 * PONG, and sends the next, n times; every PING is answered at once. */
#include "bench.h"

enum { START = 1, PING, PONG };

typedef struct peer {
    uint64_t index;
    uint64_t rng;       /* xorshift64 state, fixed per actor */
    uint64_t pongs;
    const tr_pid *all;  /* main's array, read-only while running */
    uint64_t actors;
    uint64_t n;
    uint64_t *done;     /* main's: PONGs of each actor, written at its n-th */
} peer;

static uint64_t xorshift64(uint64_t *s)
{
    uint64_t x = *s;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return *s = x;
}

/* A uniformly random actor other than a itself (up to modulo bias of
 * actors / 2^64). */
static tr_pid other(peer *a)
{
    uint64_t i = xorshift64(&a->rng) % (a->actors - 1);
    return a->all[i >= a->index ? i + 1 : i];
}

static void play(tr_ctx *cx, void *state, const tr_msg *m)
{
    peer *a = state;
    if (m->type == PING) {
        BENCH_TRY(tr_send(cx, m->from, PONG, NULL, 0));
        return;
    }
    if (m->type == PONG && ++a->pongs == a->n) {
        a->done[a->index] = a->pongs;
        return;
    }
    BENCH_TRY(tr_send(cx, other(a), PING, NULL, 0));
}

int main(int argc, char **argv)
{
    bench_param params[] = { { "actors", 120, 2, 0 }, { "n", 50000, 1, 0 } };
    bench b;
    bench_init(&b, "big", params, 2, argc, argv);
    uint64_t actors = params[0].value, n = params[1].value;

    tr_pid *all = calloc(actors, sizeof *all);
    uint64_t *done = calloc(actors, sizeof *done);
    if (all == NULL || done == NULL)
        bench_die(b.name, "calloc", TR_ENOMEM);
    for (uint64_t i = 0; i < actors; i++) {
        /* Any nonzero seed will do; mix the index so neighbours differ. */
        peer a = { .index = i, .rng = (i + 1) * UINT64_C(0x9e3779b97f4a7c15),
                   .all = all, .actors = actors, .n = n, .done = done };
        BENCH_TRY(tr_spawn(tr_runtime_ctx(b.rt), play, &a, sizeof a, &all[i]));
    }
    bench_start(&b);
    double t0 = bench_now();
    for (uint64_t i = 0; i < actors; i++)
        BENCH_TRY(tr_send(tr_runtime_ctx(b.rt), all[i], START, NULL, 0));
    bench_join(&b);
    double secs = bench_now() - t0;

    for (uint64_t i = 0; i < actors; i++)
        if (!bench_check(&b, done[i] == n, "actor %" PRIu64 " had %" PRIu64
                         " PONGs, want %" PRIu64, i, done[i], n))
            break;
    bench_check_stats(&b, actors + 2 * actors * n, actors);
    free(all);
    free(done);
    return bench_finish(&b, secs, bench_rate(2 * actors * n, secs), "messages");
}
