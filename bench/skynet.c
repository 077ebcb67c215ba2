/* skynet — a root actor spawns 10 children, each of those 10 more, down to
 * n leaves; leaf k answers k to its parent, each parent answers the sum of
 * its children to its own parent and stops. */
#include "bench.h"

enum { START = 1, SUM };

/* An actor of the tree, answerable for the leaves [first, first + size). */
typedef struct node {
    uint64_t first;
    uint64_t sum;
    uint32_t size;
    uint32_t pending;   /* children yet to answer */
    tr_pid parent;
} node;

/* Child j of a node of `size` leaves; sizes differ by at most one, so any
 * n works and a power of ten gives the classic tree. */
static uint64_t child_first(uint64_t size, uint64_t children, uint64_t j)
{
    return j * size / children;
}

static uint64_t children_of(uint64_t size)
{
    return size < 10 ? size : 10;
}

static void skynet(tr_ctx *cx, void *state, const tr_msg *m)
{
    node *a = state;
    if (m->type == START) {
        if (a->size == 1) {
            BENCH_TRY(tr_send(cx, a->parent, SUM, &a->first, sizeof a->first));
            tr_stop(cx);
            return;
        }
        uint64_t c = children_of(a->size);
        a->pending = (uint32_t)c;
        for (uint64_t j = 0; j < c; j++) {
            uint64_t lo = child_first(a->size, c, j), hi = child_first(a->size, c, j + 1);
            node child = { .first = a->first + lo, .size = (uint32_t)(hi - lo),
                           .parent = tr_self(cx) };
            tr_pid pid;
            BENCH_TRY(tr_spawn(cx, skynet, &child, sizeof child, &pid));
            BENCH_TRY(tr_send(cx, pid, START, NULL, 0));
        }
        return;
    }
    a->sum += bench_u64(m);
    if (--a->pending == 0) {
        BENCH_TRY(tr_send(cx, a->parent, SUM, &a->sum, sizeof a->sum));
        tr_stop(cx);
    }
}

/* The root's parent: hands the total to main. */
typedef struct sink_state {
    uint64_t *total;
} sink_state;

static void sink(tr_ctx *cx, void *state, const tr_msg *m)
{
    sink_state *k = state;
    *k->total = bench_u64(m);
    tr_stop(cx);
}

static uint64_t tree_size(uint64_t size)
{
    uint64_t c = children_of(size), actors = 1;
    if (size > 1)
        for (uint64_t j = 0; j < c; j++)
            actors += tree_size(child_first(size, c, j + 1) - child_first(size, c, j));
    return actors;
}

int main(int argc, char **argv)
{
    bench_param params[] = { { "n", 1000000, 1, UINT32_MAX } };
    bench b;
    bench_init(&b, "skynet", params, 1, argc, argv);
    uint64_t n = params[0].value, total = 0;
    uint64_t actors = tree_size(n);

    tr_pid sink_pid, root;
    sink_state k = { &total };
    BENCH_TRY(tr_spawn(tr_runtime_ctx(b.rt), sink, &k, sizeof k, &sink_pid));

    bench_start(&b);
    double t0 = bench_now();
    node top = { .first = 0, .size = (uint32_t)n, .parent = sink_pid };
    BENCH_TRY(tr_spawn(tr_runtime_ctx(b.rt), skynet, &top, sizeof top, &root));
    BENCH_TRY(tr_send(tr_runtime_ctx(b.rt), root, START, NULL, 0));
    bench_join(&b);
    double secs = bench_now() - t0;

    bench_check(&b, total == n * (n - 1) / 2, "root sum %" PRIu64 ", want %" PRIu64,
                total, n * (n - 1) / 2);
    tr_stats s;
    tr_runtime_stats(b.rt, &s);
    bench_check(&b, s.actors_spawned == actors + 1, "actors_spawned = %" PRIu64
                ", want %" PRIu64, s.actors_spawned, actors + 1);
    /* Every actor gets START and sends one SUM up. */
    bench_check_stats(&b, 2 * actors, 0);
    return bench_finish(&b, secs, bench_rate(actors, secs), "actors");
}
