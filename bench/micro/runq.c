/* runq.c — micro benchmark of the run queues (sched/runq.h).
 *
 *   owner          push + pop on the owner's thread, one actor at a time
 *   owner-batch    push 128, then pop them
 *   owner+thief    the owner pushes (and pops one whenever its ring is
 *                  full) while T thieves (--thieves, default 1) steal one
 *                  at a time
 *   steal-half     the owner pushes in bursts of 64 and pops one per
 *                  burst; each thief steals as the scheduler does (one
 *                  actor and half of what is left, into its own ring) and
 *                  runs its own ring
 *   injectq-1t     inject queue push + pop on one thread
 *   injectq-PpCc   P producers push, C other threads pop through the
 *                  try-lock (--producers, --poppers; default 2 and 2)
 *
 * An op is one actor pushed and taken out again (by the owner or a
 * thief). The ring holds pointers, so one actor can be queued many times;
 * the inject queue links actors through their runq field, so each
 * producer re-uses a window of its own (micro_credit).
 */
#include "micro.h"

#include "../../sched/runq.h"

#define MAX_THREADS 16
#define WINDOW 1024u /* inject queue: actors per producer */
#define FLUSH 64u    /* poppers publish credit every FLUSH actors */

static void runq_init_or_die(const micro *m, tr__runq *q)
{
    if (!tr__runq_init(q))
        micro_oom(m);
}

/* ---- the owner alone ----------------------------------------------------- */

static void case_owner(micro *m, const char *name, uint64_t ops, unsigned batch)
{
    tr__runq q;
    runq_init_or_die(m, &q);
    tr__actor a[128];
    uint64_t wrong = 0, done = 0;
    double t0 = bench_now();
    while (done < ops) {
        unsigned k = ops - done < batch ? (unsigned)(ops - done) : batch;
        for (unsigned i = 0; i < k; i++)
            if (!tr__runq_push(&q, &a[i]))
                wrong++;
        for (unsigned i = 0; i < k; i++)
            if (tr__runq_pop(&q) != &a[i])
                wrong++;
        done += k;
    }
    double secs = bench_now() - t0;
    micro_check(m, name, wrong == 0, "%" PRIu64 " pushes refused or pops out of order", wrong);
    micro_report(m, name, 1, ops, secs, NULL);
    tr__runq_fini(&q);
}

/* ---- the owner and thieves ----------------------------------------------- */

struct steal_shared {
    tr__runq owner;
    micro_gate gate;
    _Alignas(MICRO_LINE) atomic_bool done; /* the owner pushed everything */
    bool half;                             /* steal-half, else one at a time */
};

struct thief {
    _Alignas(MICRO_LINE) struct steal_shared *sh;
    tr__runq own; /* steal-half only */
    uint64_t taken;
    uint64_t steals; /* successful steal operations */
};

static void *thief_main(void *arg)
{
    struct thief *th = arg;
    struct steal_shared *sh = th->sh;
    unsigned spins = 0;
    micro_gate_wait(&sh->gate);
    for (;;) {
        tr__actor *a = sh->half ? tr__runq_pop(&th->own) : NULL;
        if (a != NULL) {
            th->taken++;
            continue;
        }
        bool done = atomic_load(&sh->done);
        if ((a = tr__runq_steal(&sh->owner)) != NULL) {
            th->taken++;
            th->steals++;
            for (unsigned more = sh->half ? tr__runq_size(&sh->owner) / 2 : 0; more > 0; more--) {
                tr__actor *b = tr__runq_steal(&sh->owner);
                if (b == NULL)
                    break;
                tr__runq_push(&th->own, b); /* own ring empty: cannot fail */
            }
            continue;
        }
        if (done && tr__runq_size(&sh->owner) == 0)
            return NULL;
        micro_relax(&spins);
    }
}

static void case_thieves(micro *m, const char *name, uint64_t ops, unsigned thieves, bool half)
{
    struct steal_shared *sh = micro_alloc(m, 1, sizeof *sh);
    struct thief *th = micro_alloc(m, thieves, sizeof *th);
    runq_init_or_die(m, &sh->owner);
    micro_gate_init(&sh->gate);
    atomic_init(&sh->done, false);
    sh->half = half;
    pthread_t t[MAX_THREADS];
    for (unsigned i = 0; i < thieves; i++) {
        th[i] = (struct thief){ .sh = sh };
        runq_init_or_die(m, &th[i].own);
        t[i] = micro_thread(m, thief_main, &th[i]);
    }

    tr__actor a;
    uint64_t popped = 0;
    double t0 = micro_gate_open(&sh->gate, thieves);
    if (!half) {
        for (uint64_t i = 0; i < ops; i++)
            while (!tr__runq_push(&sh->owner, &a))
                popped += tr__runq_pop(&sh->owner) != NULL;
    } else {
        for (uint64_t i = 0; i < ops;) {
            for (unsigned k = 0; k < 64 && i < ops; k++, i++)
                while (!tr__runq_push(&sh->owner, &a))
                    popped += tr__runq_pop(&sh->owner) != NULL;
            popped += tr__runq_pop(&sh->owner) != NULL;
        }
    }
    atomic_store(&sh->done, true);
    while (tr__runq_pop(&sh->owner) != NULL)
        popped++;
    for (unsigned i = 0; i < thieves; i++)
        micro_join(t[i]);
    double secs = bench_now() - t0;

    uint64_t taken = 0, steals = 0;
    for (unsigned i = 0; i < thieves; i++) {
        taken += th[i].taken;
        steals += th[i].steals;
        tr__runq_fini(&th[i].own);
    }
    micro_check(m, name, popped + taken == ops, "popped %" PRIu64 " + stolen %" PRIu64
                " != pushed %" PRIu64, popped, taken, ops);
    /* The thieves' share, and for steal-half the actors a steal took. */
    char extra[64];
    int len = snprintf(extra, sizeof extra, "stolen=%.1f%%", 100.0 * (double)taken / (double)ops);
    if (half)
        snprintf(extra + len, sizeof extra - (size_t)len, " per_steal=%.1f",
                 steals != 0 ? (double)taken / (double)steals : 0.0);
    micro_report(m, name, 1 + thieves, ops, secs, extra);
    tr__runq_fini(&sh->owner);
    free(th);
    free(sh);
}

/* ---- the inject queue ---------------------------------------------------- */

static void case_injectq_1t(micro *m, const char *name, uint64_t ops)
{
    tr__injectq iq;
    tr__injectq_init(&iq);
    tr__actor a;
    uint64_t wrong = 0;
    double t0 = bench_now();
    for (uint64_t i = 0; i < ops; i++) {
        tr__injectq_push(&iq, &a);
        if (tr__injectq_pop(&iq) != &a)
            wrong++;
    }
    double secs = bench_now() - t0;
    micro_check(m, name, wrong == 0, "%" PRIu64 " pops did not return the actor pushed", wrong);
    micro_report(m, name, 1, ops, secs, NULL);
}

/* ---- a worker's overflow -------------------------------------------------- */

/* A spill and its take-back, one thread: batches of 128 put and taken
 * back newest first, as a worker whose ring overflows does; per actor. */
static void case_overflow_1t(micro *m, const char *name, uint64_t ops)
{
    enum { SPILL = 128 };
    tr__overflow o = {0};
    tr__actor a[SPILL], *in[SPILL], *got[SPILL];
    for (unsigned i = 0; i < SPILL; i++)
        in[i] = &a[i];
    uint64_t wrong = 0, rounds = ops / SPILL;
    double t0 = bench_now();
    for (uint64_t r = 0; r < rounds; r++) {
        if (!tr__overflow_put(&o, in, SPILL) ||
            tr__overflow_take_back(&o, got, SPILL, 0, UINT32_MAX, true) != SPILL ||
            got[SPILL - 1] != &a[SPILL - 1])
            wrong++;
    }
    double secs = bench_now() - t0;
    tr__overflow_fini(&o);
    micro_check(m, name, wrong == 0, "%" PRIu64 " spills did not come back whole", wrong);
    micro_report(m, name, 1, rounds * SPILL, secs, NULL);
}

struct iq_shared {
    tr__injectq iq;
    micro_gate gate;
    tr__actor *actors; /* WINDOW per producer */
    unsigned producers;
    uint64_t per_producer;
    _Alignas(MICRO_LINE) atomic_uint pushing; /* producers not finished */
    micro_credit credit[MAX_THREADS];
};

struct iq_thread {
    _Alignas(MICRO_LINE) struct iq_shared *sh;
    unsigned id;
    uint64_t popped;                 /* poppers */
    uint64_t unflushed[MAX_THREADS]; /* poppers: per producer */
};

static void *iq_producer_main(void *arg)
{
    struct iq_thread *th = arg;
    struct iq_shared *sh = th->sh;
    tr__actor *mine = &sh->actors[(size_t)th->id * WINDOW];
    uint64_t known = 0;
    micro_gate_wait(&sh->gate);
    for (uint64_t s = 0; s < sh->per_producer; s++) {
        micro_credit_wait(&sh->credit[th->id], &known, s, WINDOW);
        tr__injectq_push(&sh->iq, &mine[s % WINDOW]);
    }
    atomic_fetch_sub(&sh->pushing, 1);
    return NULL;
}

static void iq_flush(struct iq_thread *th)
{
    for (unsigned p = 0; p < th->sh->producers; p++) {
        if (th->unflushed[p] != 0)
            micro_credit_add(&th->sh->credit[p], th->unflushed[p]);
        th->unflushed[p] = 0;
    }
}

/* Pops until every producer has finished and the queue is empty. An
 * actor belongs to the producer whose window holds it; the popper touches
 * only its address. */
static void *iq_popper_main(void *arg)
{
    struct iq_thread *th = arg;
    struct iq_shared *sh = th->sh;
    unsigned spins = 0;
    micro_gate_wait(&sh->gate);
    for (;;) {
        tr__actor *a = tr__injectq_pop(&sh->iq);
        if (a == NULL) {
            iq_flush(th);
            if (atomic_load(&sh->pushing) == 0 && tr__injectq_is_empty(&sh->iq))
                return NULL;
            micro_relax(&spins);
            continue;
        }
        th->popped++;
        size_t p = (size_t)(a - sh->actors) / WINDOW;
        if (++th->unflushed[p] == FLUSH) {
            micro_credit_add(&sh->credit[p], FLUSH);
            th->unflushed[p] = 0;
        }
    }
}

static void case_injectq_mt(micro *m, const char *name, uint64_t ops, unsigned producers,
                            unsigned poppers)
{
    struct iq_shared *sh = micro_alloc(m, 1, sizeof *sh);
    struct iq_thread *th = micro_alloc(m, producers + poppers, sizeof *th);
    tr__actor *actors = micro_alloc(m, (size_t)producers * WINDOW, sizeof *actors);
    tr__injectq_init(&sh->iq);
    micro_gate_init(&sh->gate);
    sh->actors = actors;
    sh->producers = producers;
    sh->per_producer = ops / producers;
    atomic_init(&sh->pushing, producers);
    for (unsigned i = 0; i < producers; i++)
        atomic_init(&sh->credit[i].done, 0);

    pthread_t t[2 * MAX_THREADS];
    for (unsigned i = 0; i < producers + poppers; i++) {
        th[i] = (struct iq_thread){ .sh = sh, .id = i };
        t[i] = micro_thread(m, i < producers ? iq_producer_main : iq_popper_main, &th[i]);
    }
    double t0 = micro_gate_open(&sh->gate, producers + poppers);
    for (unsigned i = 0; i < producers + poppers; i++)
        micro_join(t[i]);
    double secs = bench_now() - t0;

    const uint64_t total = sh->per_producer * producers;
    uint64_t popped = 0;
    for (unsigned i = producers; i < producers + poppers; i++)
        popped += th[i].popped;
    micro_check(m, name, popped == total && tr__injectq_pop(&sh->iq) == NULL,
                "popped %" PRIu64 " of %" PRIu64, popped, total);
    micro_report(m, name, producers + poppers, total, secs, NULL);
    free(actors);
    free(th);
    free(sh);
}

int main(int argc, char **argv)
{
    bench_param params[] = {
        { "thieves", 1, 1, MAX_THREADS - 1 },
        { "producers", 2, 1, MAX_THREADS },
        { "poppers", 2, 1, MAX_THREADS },
    };
    micro m;
    micro_init(&m, "runq", params, 3, argc, argv);
    const unsigned thieves = (unsigned)params[0].value;
    const unsigned producers = (unsigned)params[1].value, poppers = (unsigned)params[2].value;
    uint64_t ops;
    if (micro_case(&m, "owner", 20000000, &ops))
        case_owner(&m, "owner", ops, 1);
    if (micro_case(&m, "owner-batch", 20000000, &ops))
        case_owner(&m, "owner-batch", ops, 128);
    if (micro_case(&m, "owner+thief", 10000000, &ops))
        case_thieves(&m, "owner+thief", ops, thieves, false);
    if (micro_case(&m, "steal-half", 10000000, &ops))
        case_thieves(&m, "steal-half", ops, thieves, true);
    if (micro_case(&m, "injectq-1t", 20000000, &ops))
        case_injectq_1t(&m, "injectq-1t", ops);
    if (micro_case(&m, "overflow-1t", 20000000, &ops))
        case_overflow_1t(&m, "overflow-1t", ops);
    char name[32];
    snprintf(name, sizeof name, "injectq-%up%uc", producers, poppers);
    if (micro_case(&m, name, 3000000, &ops))
        case_injectq_mt(&m, name, ops, producers, poppers);
    return micro_exit(&m);
}
