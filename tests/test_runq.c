/* test_runq.c — the run queues (sched/runq.h), tested directly.
 *
 * tr__runq is a worker's bounded ring: its owner pushes and pops, other
 * workers steal from the same end. tr__overflow is where a full ring
 * spills: its owner puts batches and takes the newest back, other workers
 * take the oldest, all through a try-lock. tr__injectq is an intrusive
 * MPSC queue whose consumer side any thread takes through a try-lock.
 *
 * Elements are tr__actor structs from one calloc'd array, named by their
 * index. Before each push the pusher writes a stamp into the element's
 * inline state bytes: the round, who pushed it, and that pusher's running
 * push count. Whoever takes an element checks its stamp, so the stress
 * tests account for every element:
 *   exactly once  each element is pushed once per round, and a per-element
 *                 counter must equal the round when it is consumed and
 *                 one more at the end of the round;
 *   order         each taker sees each pusher's elements in increasing
 *                 push order (a ring is FIFO and thieves take from the
 *                 owner's end; the inject queue is FIFO per producer and
 *                 its pops are serialised by the try-lock; an overflow's
 *                 thieves take from its oldest end, and each of its
 *                 owner's takes is a run in push order).
 * Threads work in rounds between two barriers, and the test thread checks
 * every element between rounds: a lost element fails its round rather than
 * leaving the test waiting for it, and a few thousand elements carry
 * millions of pushes.
 */
#include "tests.h"

#include "../actors/actor.h"
#include "../sched/runq.h"

#include <stdlib.h>
#include <string.h>

/* ---- elements, their stamps, and the takers' checks ---------------------- */

struct stamp {
    uint32_t round;
    uint32_t from; /* the pusher: a ring (runq) or a producer (injectq) */
    uint64_t pos;  /* that pusher's push count, from 1 */
};
_Static_assert(sizeof(struct stamp) <= TR__STATE_INLINE, "a stamp fits in an actor's state");

static void stamp_set(tr__actor *a, struct stamp s)
{
    memcpy(a->state.bytes, &s, sizeof s);
}

static struct stamp stamp_of(const tr__actor *a)
{
    struct stamp s;
    memcpy(&s, a->state.bytes, sizeof s);
    return s;
}

struct elems {
    tr__actor *el;
    uint32_t n;
    atomic_uint *consumed; /* per element, any thread */
};

static void elems_init(struct elems *e, uint32_t n)
{
    e->n = n;
    e->el = calloc(n, sizeof *e->el);
    e->consumed = malloc(n * sizeof *e->consumed);
    CU_ASSERT_FATAL(e->el != NULL && e->consumed != NULL);
    for (uint32_t i = 0; i < n; i++)
        atomic_init(&e->consumed[i], 0);
}

static void elems_fini(struct elems *e)
{
    free(e->el);
    free(e->consumed);
}

/* Any thread, once per element taken out for good: it must be one of ours,
 * consumed for the first time in its stamp's round. */
static void elems_consume(struct elems *e, const tr__actor *a)
{
    uintptr_t off = (uintptr_t)a - (uintptr_t)e->el;
    TT_CHECK(off % sizeof *a == 0 && off / sizeof *a < e->n);
    if (off % sizeof *a != 0 || off / sizeof *a >= e->n)
        return;
    unsigned prev = atomic_fetch_add(&e->consumed[off / sizeof *a], 1);
    TT_CHECK(prev == stamp_of(a).round);
}

/* Test thread, between rounds: how many elements were not consumed exactly
 * `rounds` times. */
static uint32_t elems_mismatched(const struct elems *e, unsigned rounds)
{
    uint32_t bad = 0;
    for (uint32_t i = 0; i < e->n; i++)
        if (atomic_load(&e->consumed[i]) != rounds)
            bad++;
    return bad;
}

/* A taker remembers the last push count it took from each pusher. */
#define MAX_PUSHERS 8
#define ANY_PUSHER UINT32_MAX

struct taker {
    uint64_t last[MAX_PUSHERS];
};

/* t has just taken a out of a queue filled by `from` (or ANY_PUSHER): a's
 * stamp must name that pusher and come after what t took from it before. */
static void taker_note(struct taker *t, const tr__actor *a, uint32_t from)
{
    struct stamp s = stamp_of(a);
    TT_CHECK(from == ANY_PUSHER || s.from == from);
    TT_CHECK(s.from < MAX_PUSHERS);
    if (s.from >= MAX_PUSHERS)
        return;
    TT_CHECK(s.pos > t->last[s.from]);
    t->last[s.from] = s.pos;
}

/* ---- rounds ------------------------------------------------------------- */

/* The test thread sets `round` (or `stop`) and meets the others at `start`;
 * they work, and meet it again at `end`, after which it checks. Between
 * the two, everyone also waits for everyone to be running: woken from the
 * barrier one by one, a thread could otherwise find the round over. */
struct rounds {
    pthread_barrier_t start, end;
    unsigned threads;
    unsigned round;
    bool stop;
    atomic_uint running; /* threads past `start`, over all rounds */
};

/* threads: every thread taking part, the test thread included. */
static void rounds_init(struct rounds *r, unsigned threads)
{
    CU_ASSERT_FATAL(pthread_barrier_init(&r->start, NULL, threads) == 0);
    CU_ASSERT_FATAL(pthread_barrier_init(&r->end, NULL, threads) == 0);
    r->threads = threads;
    r->round = 0;
    r->stop = false;
    atomic_init(&r->running, 0);
}

static void rounds_fini(struct rounds *r)
{
    pthread_barrier_destroy(&r->start);
    pthread_barrier_destroy(&r->end);
}

/* Waits at `start` for the next round (the test thread through rounds_start);
 * false when there is none. */
static bool rounds_next(struct rounds *r)
{
    pthread_barrier_wait(&r->start);
    if (r->stop)
        return false;
    unsigned long spins = 0;
    atomic_fetch_add(&r->running, 1);
    while (atomic_load(&r->running) < r->threads * (r->round + 1))
        tt_relax(&spins);
    return true;
}

/* Test thread: starts round n, or (stop) lets the others leave. */
static void rounds_start(struct rounds *r, unsigned n, bool stop)
{
    r->round = n;
    r->stop = stop;
    rounds_next(r);
}

/* Everyone: this thread's part of the round is done. */
static void rounds_end(struct rounds *r)
{
    pthread_barrier_wait(&r->end);
}

/* ---- single-threaded behaviour ------------------------------------------ */

/* The ring is FIFO for pop and steal alike, holds exactly TR__RUNQ_CAPACITY actors
 * (the TR__RUNQ_SIZE-th push fails and changes nothing), and keeps both
 * properties at every occupancy as its indices wrap many times. */
static void test_runq_fifo_capacity(void)
{
    struct elems e;
    elems_init(&e, TR__RUNQ_SIZE);
    tr__runq q;
    CU_ASSERT_FATAL(tr__runq_init(&q));

    CU_ASSERT_PTR_NULL(tr__runq_pop(&q));
    CU_ASSERT_PTR_NULL(tr__runq_steal(&q));
    TT_EQ(tr__runq_size(&q), 0);

    unsigned accepted = 0, refused = 0;
    for (unsigned i = 0; i < TR__RUNQ_SIZE; i++) {
        if (tr__runq_push(&q, &e.el[i]))
            accepted++;
        else
            refused++;
    }
    TT_EQ(accepted, TR__RUNQ_CAPACITY);
    TT_EQ(refused, 1);
    TT_EQ(tr__runq_size(&q), TR__RUNQ_CAPACITY);
    CU_ASSERT_FALSE(tr__runq_push(&q, &e.el[TR__RUNQ_CAPACITY]));

    /* One out makes room for exactly one. */
    CU_ASSERT_PTR_EQUAL(tr__runq_pop(&q), &e.el[0]);
    CU_ASSERT_TRUE(tr__runq_push(&q, &e.el[TR__RUNQ_CAPACITY]));
    CU_ASSERT_FALSE(tr__runq_push(&q, &e.el[0]));
    TT_EQ(tr__runq_size(&q), TR__RUNQ_CAPACITY);

    /* Pop and steal take from the same end, oldest first. */
    unsigned wrong = 0;
    for (unsigned i = 1; i <= TR__RUNQ_CAPACITY; i++) {
        tr__actor *a = i % 2 ? tr__runq_pop(&q) : tr__runq_steal(&q);
        if (a != &e.el[i])
            wrong++;
    }
    TT_EQ(wrong, 0);
    CU_ASSERT_PTR_NULL(tr__runq_pop(&q));
    CU_ASSERT_PTR_NULL(tr__runq_steal(&q));
    TT_EQ(tr__runq_size(&q), 0);

    /* At each occupancy k, take one and push one many times round the
     * ring: the order and the size hold across the wrap. */
    static const unsigned occupancy[] = { 1, 2, 3, 17, 128, TR__RUNQ_CAPACITY - 1, TR__RUNQ_CAPACITY };
    uint64_t in = 0, out = 0;
    unsigned bad_size = 0, refused_push = 0;
    wrong = 0;
    for (size_t o = 0; o < sizeof occupancy / sizeof occupancy[0]; o++) {
        unsigned k = occupancy[o];
        while (in - out < k)
            if (!tr__runq_push(&q, &e.el[in++ % TR__RUNQ_SIZE]))
                refused_push++;
        for (unsigned step = 0; step < 5 * TR__RUNQ_SIZE; step++) {
            tr__actor *a = step % 3 ? tr__runq_pop(&q) : tr__runq_steal(&q);
            if (a != &e.el[out++ % TR__RUNQ_SIZE])
                wrong++;
            if (!tr__runq_push(&q, &e.el[in++ % TR__RUNQ_SIZE]))
                refused_push++;
            if (tr__runq_size(&q) != k)
                bad_size++;
        }
        while (out < in)
            if (tr__runq_pop(&q) != &e.el[out++ % TR__RUNQ_SIZE])
                wrong++;
    }
    TT_EQ(wrong, 0);
    TT_EQ(bad_size, 0);
    TT_EQ(refused_push, 0);
    CU_ASSERT_PTR_NULL(tr__runq_pop(&q));

    tr__runq_fini(&q);
    elems_fini(&e);
}

/* The inject queue is FIFO, reports emptiness, and its pop gives nothing
 * (and takes nothing) while another thread holds the consumer side. */
static void test_injectq_fifo_trylock(void)
{
    enum { N = 1000 };
    struct elems e;
    elems_init(&e, N);
    tr__injectq iq;
    tr__injectq_init(&iq);

    CU_ASSERT_TRUE(tr__injectq_is_empty(&iq));
    CU_ASSERT_PTR_NULL(tr__injectq_pop(&iq));
    for (unsigned i = 0; i < N; i++)
        tr__injectq_push(&iq, &e.el[i]);
    CU_ASSERT_FALSE(tr__injectq_is_empty(&iq));

    /* As a pop in progress on another thread would: hold the lock. */
    ck_pr_store_32(&iq.lock, 1);
    CU_ASSERT_PTR_NULL(tr__injectq_pop(&iq));
    ck_pr_store_32(&iq.lock, 0);

    unsigned wrong = 0;
    for (unsigned i = 0; i < N; i++)
        if (tr__injectq_pop(&iq) != &e.el[i])
            wrong++;
    TT_EQ(wrong, 0);
    CU_ASSERT_TRUE(tr__injectq_is_empty(&iq));
    CU_ASSERT_PTR_NULL(tr__injectq_pop(&iq));
    TT_EQ(iq.lock, 0);

    /* Interleaved, re-pushing elements once popped: still FIFO, and empty
     * exactly when everything pushed was popped. */
    uint32_t in = 0, out = 0;
    unsigned bad_empty = 0;
    for (unsigned round = 0; round < 2000; round++) {
        for (unsigned k = 0; k < 1 + round % 4; k++) /* at most 4 queued */
            tr__injectq_push(&iq, &e.el[in++ % N]);
        for (unsigned k = 0; k < 1 + round % 5 && out < in; k++)
            if (tr__injectq_pop(&iq) != &e.el[out++ % N])
                wrong++;
        if (tr__injectq_is_empty(&iq) != (in == out))
            bad_empty++;
    }
    while (out < in)
        if (tr__injectq_pop(&iq) != &e.el[out++ % N])
            wrong++;
    TT_EQ(wrong, 0);
    TT_EQ(bad_empty, 0);
    CU_ASSERT_TRUE(tr__injectq_is_empty(&iq));
    CU_ASSERT_PTR_NULL(tr__injectq_pop(&iq));
    elems_fini(&e);
}

/* ---- one owner, 1-3 thieves ---------------------------------------------- */

#define RQ_MAX_THIEVES 3
#define RQ_ELEMS 4096u /* pushed once each per round */

struct rq_shared {
    struct elems e;
    struct rounds rounds;
    tr__runq ring[1 + RQ_MAX_THIEVES]; /* [0] the owner's, [i] thief i's */
    unsigned rings;
    atomic_uint owner_rounds;        /* rounds the owner has pushed and emptied ring 0 */
    atomic_ullong stolen_from_owner; /* counted after each successful steal */
    atomic_ullong moved;             /* re-pushed by thieves (a figure) */
};

struct rq_thief {
    struct rq_shared *sh;
    uint32_t id; /* its ring */
    uint64_t rng;
    uint64_t pos; /* pushes into its own ring */
    struct taker t;
};

static void rq_took(struct rq_thief *th, tr__actor *a, uint32_t victim)
{
    taker_note(&th->t, a, victim);
    if (victim == 0)
        atomic_fetch_add(&th->sh->stolen_from_owner, 1);
}

/* The scheduler's steal: one actor from a random victim, plus half of what
 * the victim has left, re-pushed into our own ring. */
static tr__actor *rq_steal_half(struct rq_thief *th)
{
    struct rq_shared *sh = th->sh;
    tr__runq *own = &sh->ring[th->id];
    unsigned start = (unsigned)(tt_rng_next(&th->rng) % sh->rings);
    for (unsigned i = 0; i < sh->rings; i++) {
        uint32_t v = (start + i) % sh->rings;
        tr__actor *a;
        if (v == th->id || (a = tr__runq_steal(&sh->ring[v])) == NULL)
            continue;
        rq_took(th, a, v);
        unsigned moved = 0;
        for (unsigned more = tr__runq_size(&sh->ring[v]) / 2; more > 0; more--) {
            tr__actor *b = tr__runq_steal(&sh->ring[v]);
            if (b == NULL)
                break;
            rq_took(th, b, v);
            struct stamp s = stamp_of(b);
            s.from = th->id;
            s.pos = ++th->pos;
            stamp_set(b, s);
            /* We steal only with our ring empty (only we fill it), and
             * at most half a ring: this push cannot fail. */
            bool pushed = tr__runq_push(own, b);
            TT_CHECK(pushed);
            if (!pushed)
                elems_consume(&sh->e, b);
            moved++;
        }
        atomic_fetch_add(&sh->moved, moved);
        return a;
    }
    return NULL;
}

/* A thief runs its own ring first and steals when it is empty, like a
 * worker. Its round ends once the owner's has and its own ring is empty:
 * every ring is emptied by its owner, so nothing can be stranded. */
static void *rq_thief_main(void *arg)
{
    struct rq_thief *th = arg;
    struct rq_shared *sh = th->sh;
    tr__runq *own = &sh->ring[th->id];
    unsigned long spins = 0;
    while (rounds_next(&sh->rounds)) {
        unsigned round = sh->rounds.round;
        for (;;) {
            tr__actor *a = tr__runq_pop(own);
            if (a != NULL) {
                taker_note(&th->t, a, th->id);
                elems_consume(&sh->e, a);
                continue;
            }
            bool owner_done = atomic_load(&sh->owner_rounds) > round;
            if ((a = rq_steal_half(th)) != NULL) {
                elems_consume(&sh->e, a);
                continue;
            }
            if (owner_done)
                break;
            tt_relax(&spins);
        }
        rounds_end(&sh->rounds);
    }
    return NULL;
}

struct rq_owner {
    uint64_t rng, pos, popped, refused;
    struct taker t;
};

static void rq_owner_pop(struct rq_shared *sh, struct rq_owner *o, tr__actor *a)
{
    taker_note(&o->t, a, 0);
    elems_consume(&sh->e, a);
    o->popped++;
}

/* The owner's round: every element pushed once, in random bursts, with a
 * random part of each burst popped back; then ring 0 emptied. */
static void rq_owner_round(struct rq_shared *sh, struct rq_owner *o, unsigned round)
{
    tr__runq *own = &sh->ring[0];
    uint32_t i = 0;
    while (i < RQ_ELEMS) {
        unsigned burst = 1 + (unsigned)(tt_rng_next(&o->rng) % 64);
        for (unsigned k = 0; k < burst && i < RQ_ELEMS; k++) {
            tr__actor *a = &sh->e.el[i];
            stamp_set(a, (struct stamp){ .round = round, .from = 0, .pos = o->pos + 1 });
            uint64_t stolen = atomic_load(&sh->stolen_from_owner);
            if (!tr__runq_push(own, a)) {
                /* A full ring holds TR__RUNQ_CAPACITY of our pushes that no one
                 * had taken; the steals counted so far had happened. */
                TT_CHECK(o->pos - o->popped - stolen >= TR__RUNQ_CAPACITY);
                o->refused++;
                break;
            }
            o->pos++;
            i++;
        }
        for (uint64_t k = tt_rng_next(&o->rng) % (burst + 1); k > 0; k--) {
            tr__actor *a = tr__runq_pop(own);
            if (a == NULL)
                break;
            rq_owner_pop(sh, o, a);
        }
    }
    tr__actor *a;
    while ((a = tr__runq_pop(own)) != NULL)
        rq_owner_pop(sh, o, a);
    atomic_store(&sh->owner_rounds, round + 1);
}

/* The owner is the test thread. */
static void rq_run(unsigned thieves, unsigned rounds)
{
    struct rq_shared *sh = calloc(1, sizeof *sh);
    CU_ASSERT_FATAL(sh != NULL);
    elems_init(&sh->e, RQ_ELEMS);
    rounds_init(&sh->rounds, 1 + thieves);
    sh->rings = 1 + thieves;
    for (unsigned i = 0; i < sh->rings; i++)
        CU_ASSERT_FATAL(tr__runq_init(&sh->ring[i]));

    struct rq_thief th[RQ_MAX_THIEVES];
    pthread_t tid[RQ_MAX_THIEVES];
    for (uint32_t i = 0; i < thieves; i++) {
        th[i] = (struct rq_thief){ .sh = sh, .id = 1 + i, .rng = 0x9e3779b97f4a7c15u * (i + 1) };
        tid[i] = tt_thread(rq_thief_main, &th[i]);
    }

    struct rq_owner o = { .rng = 88172645463325252u };
    unsigned round = 0;
    uint32_t mismatched = 0;
    while (round < rounds && mismatched == 0) {
        rounds_start(&sh->rounds, round, false);
        rq_owner_round(sh, &o, round);
        rounds_end(&sh->rounds);
        mismatched = elems_mismatched(&sh->e, ++round);
    }
    rounds_start(&sh->rounds, round, true);
    for (unsigned i = 0; i < thieves; i++)
        tt_join(tid[i]);

    TT_NO_ERRORS();
    TT_EQ(mismatched, 0);
    TT_EQ(round, rounds);
    const uint64_t stolen = atomic_load(&sh->stolen_from_owner);
    TT_EQ(o.pos, (uint64_t)round * RQ_ELEMS);
    TT_EQ(o.popped + stolen, o.pos);
    for (unsigned i = 0; i < sh->rings; i++) {
        TT_EQ(tr__runq_size(&sh->ring[i]), 0);
        CU_ASSERT_PTR_NULL(tr__runq_pop(&sh->ring[i]));
        tr__runq_fini(&sh->ring[i]);
    }
    printf("[%u thieves: stole %llu, moved %llu, owner found its ring full %" PRIu64 "x] ",
           thieves, (unsigned long long)stolen, (unsigned long long)atomic_load(&sh->moved),
           o.refused);
    rounds_fini(&sh->rounds);
    elems_fini(&sh->e);
    free(sh);
}

/* The owner keeps pushing and popping while 1, 2, then 3 thieves steal
 * half-rings and run them from their own rings (where they are stolen in
 * turn): every element is consumed exactly once, every taker sees every
 * ring in FIFO order, and the owner's push fails only on a full ring. */
static void test_runq_owner_vs_thieves(void)
{
    const unsigned rounds = TT_TSAN ? 40 : TT_ASAN ? 250 : 750; /* 3M pushes each */
    for (unsigned thieves = 1; thieves <= RQ_MAX_THIEVES; thieves++)
        rq_run(thieves, rounds);
}

/* ---- overflow: ends, lock, growth, staleness ----------------------------- */

/* Takes and checks: got[0 .. n-1] must be el[from .. from + n - 1]. */
static unsigned run_wrong(tr__actor **got, unsigned n, const struct elems *e, uint32_t from)
{
    unsigned wrong = 0;
    for (unsigned i = 0; i < n; i++)
        if (got[i] != &e->el[from + i])
            wrong++;
    return wrong;
}

/* The owner takes back the newest run and a thief the oldest, each in the
 * order put; a taken lock refuses put and takes alike and changes
 * nothing; the array grows while its contents wrap round it, in order;
 * and an oldest element stamped as queued long ago is what the owner takes
 * back first, and all it takes when it asks for stale ones only. */
static void test_overflow_ends_lock_growth(void)
{
    struct elems e;
    elems_init(&e, 4096);
    tr__overflow o = {0};
    tr__actor *in[256], *got[256];
    for (unsigned i = 0; i < 256; i++)
        in[i] = &e.el[i];

    TT_EQ(tr__overflow_take(&o, got, 8), 0);
    TT_EQ(tr__overflow_take_back(&o, got, 8, 0, 1, true), 0);
    CU_ASSERT_TRUE_FATAL(tr__overflow_put(&o, in, 100));      /* el 0..99 */
    CU_ASSERT_TRUE_FATAL(tr__overflow_put(&o, in + 100, 28)); /* el 100..127 */
    TT_EQ(tr__overflow_size(&o), 128);

    /* Ends. */
    TT_EQ(tr__overflow_take_back(&o, got, 10, 0, UINT32_MAX, true), 10);
    TT_EQ(run_wrong(got, 10, &e, 118), 0);
    TT_EQ(tr__overflow_take(&o, got, 5), 5);
    TT_EQ(run_wrong(got, 5, &e, 0), 0);
    TT_EQ(tr__overflow_size(&o), 113);

    /* A taken lock: nothing moves. */
    o.lock = 1;
    CU_ASSERT_FALSE(tr__overflow_put(&o, in + 200, 3));
    TT_EQ(tr__overflow_take(&o, got, 5), 0);
    TT_EQ(tr__overflow_take_back(&o, got, 5, 0, UINT32_MAX, true), 0);
    TT_EQ(tr__overflow_size(&o), 113);
    o.lock = 0;

    /* Wrap and grow: the head moves on while puts go round the array, and
     * a put beyond its capacity keeps the order. el[5 .. 117] are held,
     * and the puts go on from el[118] (taken back above). */
    uint32_t next = 118, oldest = 5, wrong = 0;
    for (unsigned step = 0; step < 40; step++) {
        unsigned n = 1 + step * 7 % 97;
        tr__actor *batch[97];
        for (unsigned k = 0; k < n; k++)
            batch[k] = &e.el[(next + k) % e.n];
        if (next + n > e.n)
            break;
        CU_ASSERT_TRUE_FATAL(tr__overflow_put(&o, batch, n));
        next += n;
        unsigned t = tr__overflow_take(&o, got, 1 + step % 40);
        wrong += run_wrong(got, t, &e, oldest);
        oldest += t;
    }
    TT_EQ(tr__overflow_size(&o), next - oldest);
    CU_ASSERT_TRUE(o.cap >= next - oldest && (o.cap & (o.cap - 1)) == 0);
    unsigned t = tr__overflow_take_back(&o, got, 3, 0, UINT32_MAX, true);
    TT_EQ(t, 3);
    wrong += run_wrong(got, t, &e, next - 3);
    while ((t = tr__overflow_take(&o, got, 64)) != 0) {
        wrong += run_wrong(got, t, &e, oldest);
        oldest += t;
    }
    TT_EQ(wrong, 0);
    TT_EQ(oldest, next - 3);
    TT_EQ(tr__overflow_size(&o), 0);

    /* Staleness, in the wait stamp's units: the oldest, queued at 1000,
     * is stale at 1000 + 50 with `stale` 50 and not at 1000 + 49 (nor
     * with the stamp taken, low bit 0). */
    CU_ASSERT_TRUE_FATAL(tr__overflow_put(&o, in, 20));
    e.el[0].wait = TR__WAIT_QUEUED(1000u);
    TT_EQ(tr__overflow_take_back(&o, got, 4, 1049, 50, true), 4);
    TT_EQ(run_wrong(got, 4, &e, 16), 0);
    TT_EQ(tr__overflow_take_back(&o, got, 4, 1050, 50, true), 4);
    TT_EQ(run_wrong(got, 4, &e, 0), 0);
    e.el[4].wait = 1000u << 1;
    TT_EQ(tr__overflow_take_back(&o, got, 4, 5000, 50, true), 4);
    TT_EQ(run_wrong(got, 4, &e, 12), 0);
    /* Stale only (the owner's look every INJECT_EVERY turns): nothing
     * unless the oldest is stale, and then the oldest. */
    e.el[4].wait = TR__WAIT_QUEUED(1000u);
    TT_EQ(tr__overflow_take_back(&o, got, 1, 1049, 50, false), 0);
    TT_EQ(tr__overflow_size(&o), 8);
    TT_EQ(tr__overflow_take_back(&o, got, 1, 1050, 50, false), 1);
    TT_EQ(run_wrong(got, 1, &e, 4), 0);
    TT_EQ(tr__overflow_size(&o), 7);

    tr__overflow_fini(&o);
    TT_EQ(tr__overflow_size(&o), 0);
    elems_fini(&e);
}

/* ---- overflow: an owner and thieves ------------------------------------- */

#define OV_THIEVES 3
#define OV_ELEMS 8192u /* put once each per round */

struct ov_shared {
    struct elems e;
    struct rounds rounds;
    tr__overflow o;
    atomic_uint owner_rounds; /* rounds the owner has finished putting */
    atomic_ullong stolen;
};

struct ov_thief {
    struct ov_shared *sh;
    uint64_t rng;
    struct taker t;
};

/* A thief takes runs of 1-33 from the oldest end, as a searching worker
 * does, until the owner's round is over and nothing is left. */
static void *ov_thief_main(void *arg)
{
    struct ov_thief *th = arg;
    struct ov_shared *sh = th->sh;
    unsigned long spins = 0;
    while (rounds_next(&sh->rounds)) {
        unsigned round = sh->rounds.round;
        for (;;) {
            bool owner_done = atomic_load(&sh->owner_rounds) > round;
            tr__actor *got[33];
            unsigned n = tr__overflow_take(&sh->o, got, 1 + (unsigned)(tt_rng_next(&th->rng) % 33));
            for (unsigned i = 0; i < n; i++) {
                taker_note(&th->t, got[i], 0);
                elems_consume(&sh->e, got[i]);
            }
            atomic_fetch_add(&sh->stolen, n);
            if (n != 0)
                continue;
            if (owner_done && tr__overflow_size(&sh->o) == 0)
                break;
            tt_relax(&spins);
        }
        rounds_end(&sh->rounds);
    }
    return NULL;
}

struct ov_owner {
    uint64_t rng, pos, took_back, refused;
};

/* The owner's take: a run in push order, each newer than the last. */
static void ov_owner_took(struct ov_shared *sh, struct ov_owner *o, tr__actor **got, unsigned n)
{
    for (unsigned i = 0; i < n; i++) {
        TT_CHECK(i == 0 || stamp_of(got[i]).pos > stamp_of(got[i - 1]).pos);
        elems_consume(&sh->e, got[i]);
    }
    o->took_back += n;
}

/* Puts every element once, in batches of 1-128 as spills are; now and
 * then takes the newest back; a put refused (a thief holds the lock) is
 * consumed at once, as a spill then goes elsewhere. Then drains. */
static void ov_owner_round(struct ov_shared *sh, struct ov_owner *o, unsigned round)
{
    tr__actor *got[128];
    uint32_t i = 0;
    while (i < OV_ELEMS) {
        unsigned n = 1 + (unsigned)(tt_rng_next(&o->rng) % 128);
        if (n > OV_ELEMS - i)
            n = OV_ELEMS - i;
        tr__actor *batch[128];
        for (unsigned k = 0; k < n; k++) {
            batch[k] = &sh->e.el[i + k];
            stamp_set(batch[k], (struct stamp){ .round = round, .from = 0, .pos = ++o->pos });
        }
        if (!tr__overflow_put(&sh->o, batch, n)) {
            o->refused += n;
            for (unsigned k = 0; k < n; k++)
                elems_consume(&sh->e, batch[k]);
        }
        i += n;
        if (tt_rng_next(&o->rng) % 4 == 0) {
            unsigned n = tr__overflow_take_back(&sh->o, got, 128, 0, UINT32_MAX, true);
            ov_owner_took(sh, o, got, n);
        }
    }
    atomic_store(&sh->owner_rounds, round + 1);
    unsigned long spins = 0;
    while (tr__overflow_size(&sh->o) != 0) {
        unsigned n = tr__overflow_take_back(&sh->o, got, 128, 0, UINT32_MAX, true);
        ov_owner_took(sh, o, got, n);
        if (n == 0)
            tt_relax(&spins);
    }
}

/* Every element is taken exactly once, by the owner or a thief; each
 * thief sees the owner's elements in push order; each of the owner's
 * takes is a run in push order; nothing is left. */
static void test_overflow_owner_vs_thieves(void)
{
    const unsigned rounds = TT_TSAN ? 30 : TT_ASAN ? 150 : 400; /* 3M puts */
    struct ov_shared *sh = calloc(1, sizeof *sh);
    CU_ASSERT_FATAL(sh != NULL);
    elems_init(&sh->e, OV_ELEMS);
    rounds_init(&sh->rounds, 1 + OV_THIEVES);
    struct ov_thief th[OV_THIEVES];
    pthread_t tid[OV_THIEVES];
    for (unsigned i = 0; i < OV_THIEVES; i++) {
        th[i] = (struct ov_thief){ .sh = sh, .rng = 0x9e3779b97f4a7c15u * (i + 3) };
        tid[i] = tt_thread(ov_thief_main, &th[i]);
    }
    struct ov_owner o = { .rng = 0x2545f4914f6cdd1du };
    unsigned round = 0;
    uint32_t mismatched = 0;
    while (round < rounds && mismatched == 0) {
        rounds_start(&sh->rounds, round, false);
        ov_owner_round(sh, &o, round);
        rounds_end(&sh->rounds);
        mismatched = elems_mismatched(&sh->e, ++round);
    }
    rounds_start(&sh->rounds, round, true);
    for (unsigned i = 0; i < OV_THIEVES; i++)
        tt_join(tid[i]);

    TT_NO_ERRORS();
    TT_EQ(mismatched, 0);
    TT_EQ(round, rounds);
    TT_EQ(tr__overflow_size(&sh->o), 0);
    const uint64_t stolen = atomic_load(&sh->stolen);
    TT_EQ(o.took_back + stolen + o.refused, (uint64_t)round * OV_ELEMS);
    printf("[owner took back %" PRIu64 ", thieves took %llu, puts refused %" PRIu64 "] ",
           o.took_back, (unsigned long long)stolen, o.refused);
    tr__overflow_fini(&sh->o);
    rounds_fini(&sh->rounds);
    elems_fini(&sh->e);
    free(sh);
}

/* ---- inject queue: producers and poppers ---------------------------------- */

#define IQ_PRODUCERS 3
#define IQ_POPPERS 2
#define IQ_THREADS (IQ_PRODUCERS + IQ_POPPERS)
#define IQ_ELEMS_EACH 2048u /* per producer, pushed once each per round */

struct iq_shared {
    struct elems e;
    struct rounds rounds;
    tr__injectq iq;
    atomic_uint pushed; /* producer-rounds completed */
};

struct iq_thread {
    struct iq_shared *sh;
    uint32_t id;
    uint64_t rng, pos;
    uint64_t took;
    struct taker t;
};

static bool iq_pop_one(struct iq_thread *th)
{
    tr__actor *a = tr__injectq_pop(&th->sh->iq);
    if (a == NULL)
        return false;
    taker_note(&th->t, a, ANY_PUSHER);
    elems_consume(&th->sh->e, a);
    th->took++;
    return true;
}

/* Takes a run of up to 1-33 elements at once, as a searching worker does
 * (tr__injectq_pop_many). */
static bool iq_pop_some(struct iq_thread *th)
{
    tr__actor *got[33];
    unsigned n = tr__injectq_pop_many(&th->sh->iq, got, 1 + (unsigned)(tt_rng_next(&th->rng) % 33));
    for (unsigned i = 0; i < n; i++) {
        taker_note(&th->t, got[i], ANY_PUSHER);
        elems_consume(&th->sh->e, got[i]);
        th->took++;
    }
    return n != 0;
}

/* A producer pushes its elements and, like a worker, pops now and then. */
static void *iq_producer_main(void *arg)
{
    struct iq_thread *th = arg;
    struct iq_shared *sh = th->sh;
    tr__actor *mine = &sh->e.el[th->id * IQ_ELEMS_EACH];
    while (rounds_next(&sh->rounds)) {
        for (uint32_t i = 0; i < IQ_ELEMS_EACH;) {
            /* One at a time, or now and then a run of up to 16 with one
             * exchange (a worker's spill). */
            uint32_t run = tt_rng_next(&th->rng) % 4 == 0 ? 1 + (uint32_t)(tt_rng_next(&th->rng) % 16) : 1;
            if (run > IQ_ELEMS_EACH - i)
                run = IQ_ELEMS_EACH - i;
            tr__actor *batch[16];
            for (uint32_t k = 0; k < run; k++) {
                stamp_set(&mine[i + k], (struct stamp){ .round = sh->rounds.round, .from = th->id,
                                                        .pos = ++th->pos });
                batch[k] = &mine[i + k];
            }
            if (run == 1)
                tr__injectq_push(&sh->iq, batch[0]);
            else
                tr__injectq_push_all(&sh->iq, batch, run);
            i += run;
            if (tt_rng_next(&th->rng) % 8 == 0)
                iq_pop_one(th);
        }
        atomic_fetch_add(&sh->pushed, 1);
        rounds_end(&sh->rounds);
    }
    return NULL;
}

/* A popper's round ends when every producer's has and the queue is empty. */
static void *iq_popper_main(void *arg)
{
    struct iq_thread *th = arg;
    struct iq_shared *sh = th->sh;
    unsigned long spins = 0;
    while (rounds_next(&sh->rounds)) {
        const unsigned all_pushed = IQ_PRODUCERS * (sh->rounds.round + 1);
        for (;;) {
            if (th->id == IQ_THREADS - 1 ? iq_pop_some(th) : iq_pop_one(th))
                continue;
            if (atomic_load(&sh->pushed) == all_pushed && tr__injectq_is_empty(&sh->iq))
                break;
            tt_relax(&spins);
        }
        rounds_end(&sh->rounds);
    }
    return NULL;
}

/* Three producers push, one at a time and in runs of up to 16 with one
 * exchange, while two poppers (and the producers themselves) pop through
 * the try-lock, one of the poppers runs of several at once:
 * every element is popped exactly once, and each thread sees each
 * producer's elements in the order pushed. */
static void test_injectq_producers_poppers(void)
{
    const unsigned rounds = TT_TSAN ? 32 : TT_ASAN ? 200 : 500; /* 3M pushes */
    struct iq_shared *sh = calloc(1, sizeof *sh);
    CU_ASSERT_FATAL(sh != NULL);
    elems_init(&sh->e, IQ_PRODUCERS * IQ_ELEMS_EACH);
    rounds_init(&sh->rounds, IQ_THREADS + 1);
    tr__injectq_init(&sh->iq);

    struct iq_thread th[IQ_THREADS];
    pthread_t tid[IQ_THREADS];
    for (uint32_t i = 0; i < IQ_THREADS; i++) {
        th[i] = (struct iq_thread){ .sh = sh, .id = i, .rng = 0x2545f4914f6cdd1du + i };
        tid[i] = tt_thread(i < IQ_PRODUCERS ? iq_producer_main : iq_popper_main, &th[i]);
    }
    unsigned round = 0;
    uint32_t mismatched = 0;
    while (round < rounds && mismatched == 0) {
        rounds_start(&sh->rounds, round, false);
        rounds_end(&sh->rounds);
        mismatched = elems_mismatched(&sh->e, ++round);
    }
    rounds_start(&sh->rounds, round, true);
    for (uint32_t i = 0; i < IQ_THREADS; i++)
        tt_join(tid[i]);

    /* Nothing left behind. */
    unsigned left = 0;
    while (tr__injectq_pop(&sh->iq) != NULL)
        left++;
    TT_EQ(left, 0);
    CU_ASSERT_TRUE(tr__injectq_is_empty(&sh->iq));

    uint64_t took = 0, by_producers = 0;
    for (uint32_t i = 0; i < IQ_THREADS; i++) {
        took += th[i].took;
        if (i < IQ_PRODUCERS)
            by_producers += th[i].took;
    }
    TT_NO_ERRORS();
    TT_EQ(mismatched, 0);
    TT_EQ(round, rounds);
    TT_EQ(took, (uint64_t)round * IQ_PRODUCERS * IQ_ELEMS_EACH);
    printf("[producers popped %" PRIu64 " of %" PRIu64 "] ", by_producers, took);
    rounds_fini(&sh->rounds);
    elems_fini(&sh->e);
    free(sh);
}

void register_runq_tests(void)
{
    CU_pSuite s = tt_suite("runq");
    tt_test(s, "runq_fifo_capacity", test_runq_fifo_capacity);
    tt_test(s, "injectq_fifo_trylock", test_injectq_fifo_trylock);
    tt_test(s, "runq_owner_vs_1_2_3_thieves", test_runq_owner_vs_thieves);
    tt_test(s, "injectq_3_producers_2_poppers", test_injectq_producers_poppers);
    tt_test(s, "overflow_ends_lock_growth", test_overflow_ends_lock_growth);
    tt_test(s, "overflow_owner_vs_3_thieves", test_overflow_owner_vs_thieves);
}
