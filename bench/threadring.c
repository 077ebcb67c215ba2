/* threadring — `actors` actors in a ring pass a token holding a hop
 * counter, starting at n; each decrements it and forwards it; the one
 * that sees 0 reports. */
#include "bench.h"

enum { TOKEN = 1 };

typedef struct result {
    uint64_t done;      /* how many actors saw 0 */
    uint64_t who;       /* the index of the last one that did */
} result;

typedef struct member {
    uint64_t index;
    const tr_pid *ring; /* main's array, read-only while running */
    uint64_t actors;
    result *result;
} member;

static void pass(tr_ctx *cx, void *state, const tr_msg *m)
{
    member *a = state;
    uint64_t hops = bench_u64(m);
    if (hops == 0) {
        a->result->done++;
        a->result->who = a->index;
        return;
    }
    hops--;
    BENCH_TRY(tr_send(cx, a->ring[(a->index + 1) % a->actors], TOKEN, &hops, sizeof hops));
}

int main(int argc, char **argv)
{
    bench_param params[] = { { "actors", 100, 1, 0 }, { "n", 10000000, 1, 0 } };
    bench b;
    bench_init(&b, "threadring", params, 2, argc, argv);
    uint64_t actors = params[0].value, n = params[1].value;
    result res = { 0, 0 };

    tr_pid *ring = calloc(actors, sizeof *ring);
    if (ring == NULL)
        bench_die(b.name, "calloc", TR_ENOMEM);
    for (uint64_t i = 0; i < actors; i++) {
        member a = { .index = i, .ring = ring, .actors = actors, .result = &res };
        BENCH_TRY(tr_spawn(tr_runtime_ctx(b.rt), pass, &a, sizeof a, &ring[i]));
    }
    bench_start(&b);
    double t0 = bench_now();
    BENCH_TRY(tr_send(tr_runtime_ctx(b.rt), ring[0], TOKEN, &n, sizeof n));
    bench_join(&b);
    double secs = bench_now() - t0;

    bench_check(&b, res.done == 1, "%" PRIu64 " actors saw 0, want 1", res.done);
    bench_check(&b, res.who == n % actors, "actor %" PRIu64 " saw 0, want %" PRIu64,
                res.who, n % actors);
    bench_check_stats(&b, n + 1, actors);
    free(ring);
    return bench_finish(&b, secs, bench_rate(n, secs), "hops");
}
