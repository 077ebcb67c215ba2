/* test_depot.c — the depot (mailbox/depot.h): Vyukov's bounded MPMC queue
 * of full batches behind the per-thread magazines. Its order and capacity,
 * a stress test with more threads than cores (so that some are
 * preempted half-way through a put or a get) that accounts for every
 * batch and every node: none lost, none duplicated, none torn; and the
 * magazine's own stack of spare chains in front of it. */
#include "tests.h"

#include "../mailbox/depot.h"

#include <stdlib.h>

/* A batch: TR__BATCH nodes linked through next, all tagged with the
 * batch's number. */
typedef struct tagged {
    tr__node link;
    uint32_t batch;
    uint32_t pos;
} tagged;

static tagged *make_batches(unsigned n)
{
    tagged *nodes = calloc((size_t)n * TR__BATCH, sizeof *nodes);
    CU_ASSERT_FATAL(nodes != NULL);
    for (unsigned b = 0; b < n; b++) {
        for (unsigned i = 0; i < TR__BATCH; i++) {
            tagged *t = &nodes[b * TR__BATCH + i];
            t->batch = b;
            t->pos = i;
            t->link.next = i + 1 < TR__BATCH ? &nodes[b * TR__BATCH + i + 1].link : NULL;
        }
    }
    return nodes;
}

/* The batch's number if the chain is whole (TR__BATCH nodes of one batch,
 * in order), else UINT32_MAX. */
static uint32_t check_batch(tr__node *chain)
{
    tagged *first = (tagged *)chain;
    unsigned i = 0;
    for (tr__node *n = chain; n != NULL; n = n->next, i++) {
        tagged *t = (tagged *)n;
        if (i >= TR__BATCH || t->batch != first->batch || t->pos != i)
            return UINT32_MAX;
    }
    return i == TR__BATCH ? first->batch : UINT32_MAX;
}

static void test_fifo_and_capacity(void)
{
    enum { CAP = 8 };
    tr__depot d;
    TT_EQ(tr__depot_init(&d, CAP), 0);
    tagged *nodes = make_batches(CAP + 1);
    CU_ASSERT(tr__depot_get(&d) == NULL);
    CU_ASSERT(!tr__depot_busy(&d));
    for (unsigned lap = 0; lap < 3; lap++) {
        for (unsigned b = 0; b < CAP; b++)
            CU_ASSERT(tr__depot_put(&d, &nodes[b * TR__BATCH].link));
        CU_ASSERT(!tr__depot_put(&d, &nodes[CAP * TR__BATCH].link)); /* full */
        CU_ASSERT(tr__depot_busy(&d));
        for (unsigned b = 0; b < CAP; b++) {
            tr__node *chain = tr__depot_get(&d);
            CU_ASSERT_FATAL(chain != NULL);
            TT_EQ(check_batch(chain), b); /* first in, first out */
        }
        CU_ASSERT(tr__depot_get(&d) == NULL);
        CU_ASSERT(!tr__depot_busy(&d));
    }
    free(nodes);
    tr__depot_fini(&d);
}

/* STRESS_THREADS threads (more than this machine's cores) pass
 * STRESS_BATCHES batches around through one depot: each takes a batch (or,
 * while it holds none, keeps trying), checks it is whole, holds it for a
 * moment and puts it back.
 * At the end every batch is in the depot or held, exactly once. */
#define STRESS_THREADS 8
#define STRESS_BATCHES 24u
#define STRESS_ROUNDS (TT_TSAN ? 20000u : 200000u)

struct stress {
    tr__depot d;
    atomic_ulong gets, puts, torn, full;
    tr__node *held[STRESS_THREADS];
};

struct stress_arg {
    struct stress *s;
    unsigned id;
};

static void *stress_main(void *arg)
{
    struct stress_arg *a = arg;
    struct stress *s = a->s;
    tr__node *mine = NULL;
    for (unsigned r = 0; r < STRESS_ROUNDS; r++) {
        if (mine == NULL) {
            if ((mine = tr__depot_get(&s->d)) == NULL)
                continue;
            atomic_fetch_add(&s->gets, 1);
            if (check_batch(mine) == UINT32_MAX)
                atomic_fetch_add(&s->torn, 1);
        } else if (tr__depot_put(&s->d, mine)) {
            atomic_fetch_add(&s->puts, 1);
            mine = NULL;
        } else {
            atomic_fetch_add(&s->full, 1); /* a get of that cell half done */
        }
    }
    s->held[a->id] = mine;
    return NULL;
}

static void test_stress_every_batch_once(void)
{
    struct stress *s = calloc(1, sizeof *s);
    CU_ASSERT_FATAL(s != NULL);
    /* Room for every batch: a put is refused only while the cell's
     * previous get is half done (its thread preempted), and is retried. */
    TT_EQ(tr__depot_init(&s->d, 32), 0);
    tagged *nodes = make_batches(STRESS_BATCHES);
    for (unsigned b = 0; b < STRESS_BATCHES; b++)
        CU_ASSERT(tr__depot_put(&s->d, &nodes[b * TR__BATCH].link));
    struct stress_arg args[STRESS_THREADS];
    pthread_t t[STRESS_THREADS];
    for (unsigned i = 0; i < STRESS_THREADS; i++) {
        args[i] = (struct stress_arg){ s, i };
        t[i] = tt_thread(stress_main, &args[i]);
    }
    for (unsigned i = 0; i < STRESS_THREADS; i++)
        tt_join(t[i]);

    unsigned seen[STRESS_BATCHES] = { 0 };
    unsigned whole = 0;
    tr__node *chain;
    while ((chain = tr__depot_get(&s->d)) != NULL) {
        uint32_t b = check_batch(chain);
        if (b < STRESS_BATCHES && seen[b]++ == 0)
            whole++;
    }
    for (unsigned i = 0; i < STRESS_THREADS; i++) {
        if (s->held[i] == NULL)
            continue;
        uint32_t b = check_batch(s->held[i]);
        if (b < STRESS_BATCHES && seen[b]++ == 0)
            whole++;
    }
    printf("[%lu gets, %lu puts, %lu refused] ", atomic_load(&s->gets), atomic_load(&s->puts),
           atomic_load(&s->full));
    TT_EQ(atomic_load(&s->torn), 0);
    TT_EQ(whole, STRESS_BATCHES);          /* none lost */
    for (unsigned b = 0; b < STRESS_BATCHES; b++)
        TT_EQ(seen[b], 1);                 /* none duplicated */
    unsigned held = 0;
    for (unsigned i = 0; i < STRESS_THREADS; i++)
        held += s->held[i] != NULL;
    TT_EQ(atomic_load(&s->gets) - atomic_load(&s->puts), held); /* every take given back */
    CU_ASSERT(atomic_load(&s->gets) > STRESS_BATCHES); /* they did pass them around */
    free(nodes);
    tr__depot_fini(&s->d);
    free(s);
}

/* A magazine keeps its newest full chains, up to tr__magazine_keep of
 * them, and gives the oldest to the depot: the thread that freed them
 * reuses them while its CPU still holds them. Every node given comes
 * back once, from the magazine newest first, then from the depot. */
static void test_magazine_keeps_newest_chains(void)
{
    enum { SIZE = 64, OUT = 3 };
    const uint32_t keep = tr__magazine_keep(SIZE);
    TT_EQ(keep, TR__MAG_SPARES); /* 64-byte nodes: as many as there is room for */
    TT_EQ(tr__magazine_keep(4096), 1);  /* 128 KiB of them would be half a chain */
    TT_EQ(tr__magazine_keep(512), 4);

    const unsigned n = (keep + OUT) * TR__BATCH + 1; /* the last one starts a chain */
    tagged *nodes = calloc(n, sizeof *nodes);
    unsigned char *seen = calloc(n, 1);
    CU_ASSERT_FATAL(nodes != NULL && seen != NULL);
    tr__depot d;
    TT_EQ(tr__depot_init(&d, 8), 0);
    tr__node *room[TR__MAG_SPARES];
    tr__magazine m;
    tr__magazine_init(&m, room);
    for (unsigned i = 0; i < n; i++) {
        nodes[i].pos = i;
        CU_ASSERT(tr__magazine_give(&m, &d, &nodes[i].link, SIZE) == NULL);
    }
    TT_EQ(m.spares, keep);
    TT_EQ(m.count, 1);

    /* Taken back: the last node, then the chains newest first, each
     * chain's nodes in the reverse of their giving. */
    unsigned want = n - 1, taken = 0;
    for (tr__node *x; (x = tr__magazine_take(&m, &d)) != NULL; taken++) {
        unsigned i = ((tagged *)x)->pos;
        CU_ASSERT_FATAL(i < n);
        CU_ASSERT(!seen[i]);
        seen[i] = 1;
        if (taken <= keep * TR__BATCH) { /* from the magazine */
            TT_EQ(i, want);
            want--;
        } else { /* from the depot: the OUT oldest chains, oldest first */
            unsigned chain = (taken - keep * TR__BATCH - 1) / TR__BATCH;
            TT_EQ(i / TR__BATCH, chain);
        }
    }
    TT_EQ(taken, n);
    for (unsigned i = 0; i < n; i++)
        CU_ASSERT(seen[i]);
    CU_ASSERT(tr__depot_get(&d) == NULL);

    /* Without room, every full chain goes to the depot at once. */
    tr__magazine_init(&m, NULL);
    for (unsigned i = 0; i < 2 * TR__BATCH + 1; i++)
        CU_ASSERT(tr__magazine_give(&m, &d, &nodes[i].link, SIZE) == NULL);
    TT_EQ(m.spares, 0);
    for (unsigned c = 0; c < 2; c++) {
        tr__node *chain = tr__depot_get(&d);
        CU_ASSERT_FATAL(chain != NULL);
        unsigned len = 0;
        for (tr__node *x = chain; x != NULL; x = x->next, len++)
            TT_EQ(((tagged *)x)->pos / TR__BATCH, c);
        TT_EQ(len, TR__BATCH);
    }
    CU_ASSERT(tr__depot_get(&d) == NULL);
    free(seen);
    free(nodes);
    tr__depot_fini(&d);
}

/* A depot as large as the actor table's (2^20 batches) costs no memory
 * until used: its cells are not written at creation. */
static void test_large_depot_is_lazy(void)
{
    long before = tt_rss_kb();
    tr__depot d;
    TT_EQ(tr__depot_init(&d, 1u << 20), 0);
    tagged *nodes = make_batches(1);
    for (int i = 0; i < 1000; i++) {
        CU_ASSERT(tr__depot_put(&d, &nodes[0].link));
        CU_ASSERT(tr__depot_get(&d) == &nodes[0].link);
    }
    long after = tt_rss_kb();
    printf("[RSS %+ld KiB for a 16 MiB depot] ", after - before);
    if (!TT_TSAN) /* its allocator clears what calloc hands out */
        CU_ASSERT(after - before < 1024);
    free(nodes);
    tr__depot_fini(&d);
}

void register_depot_tests(void)
{
    CU_pSuite s = tt_suite("depot");
    tt_test(s, "fifo_and_capacity", test_fifo_and_capacity);
    tt_test(s, "stress_8_threads_every_batch_once", test_stress_every_batch_once);
    tt_test(s, "large_depot_costs_nothing_until_used", test_large_depot_is_lazy);
    tt_test(s, "magazine_keeps_its_newest_chains", test_magazine_keeps_newest_chains);
}
