/* sched/runq.h — the two run queues a worker takes actors from (internal).
 *
 * tr__runq: one per worker, a bounded ck_ring used single-producer,
 * multi-consumer. Its owner pushes and pops; other workers steal from it.
 * Owner and thieves take from the same end, so a steal takes the oldest
 * actor, and a thief that loses a race simply tries elsewhere.
 *
 * tr__overflow: one per worker, where its full ring spills: the owner
 * takes its spills back newest first, other workers take the oldest. A
 * growable array under a try-lock (below).
 *
 * tr__injectq: one per runtime, for submissions from outside threads (and
 * a spill the overflow could not take). An intrusive MPSC queue
 * (mailbox/mpsc.h) through the actor's runq link; its single-consumer side
 * is taken with a try-lock, so a worker never waits for it: whoever loses
 * the lock looks elsewhere.
 *
 * An actor is in at most one queue at a time (the mailbox's empty mark
 * decides who schedules it), so the intrusive link is never shared.
 */
#ifndef TR_SCHED_RUNQ_H
#define TR_SCHED_RUNQ_H

#include <ck_pr.h>
#include <ck_ring.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdlib.h>

#include "../actors/actor.h"
#include "../mailbox/mpsc.h"

/* Size of a worker's ring (a power of two). ck_ring keeps one slot free
 * to tell full from empty, so it holds TR__RUNQ_CAPACITY actors. */
#define TR__RUNQ_SIZE 256
#define TR__RUNQ_CAPACITY (TR__RUNQ_SIZE - 1)

typedef struct tr__runq {
    ck_ring_t ring;
    ck_ring_buffer_t *buf;
} tr__runq;

static inline bool tr__runq_init(tr__runq *q)
{
    q->buf = calloc(TR__RUNQ_SIZE, sizeof *q->buf);
    if (q->buf == NULL)
        return false;
    ck_ring_init(&q->ring, TR__RUNQ_SIZE);
    return true;
}

static inline void tr__runq_fini(tr__runq *q)
{
    free(q->buf);
    q->buf = NULL;
}

/* Owner only. False when the ring is full (a has not been queued). */
static inline bool tr__runq_push(tr__runq *q, tr__actor *a)
{
    return ck_ring_enqueue_spmc(&q->ring, q->buf, a);
}

/* Owner only: the oldest actor, or NULL. */
static inline tr__actor *tr__runq_pop(tr__runq *q)
{
    tr__actor *a;
    return ck_ring_dequeue_spmc(&q->ring, q->buf, &a) ? a : NULL;
}

/* Any other thread: the oldest actor, or NULL if the ring is empty or a
 * race was lost (one attempt; callers move on rather than spin). */
static inline tr__actor *tr__runq_steal(tr__runq *q)
{
    tr__actor *a;
    return ck_ring_trydequeue_spmc(&q->ring, q->buf, &a) ? a : NULL;
}

/* Any thread; a snapshot that may be stale by the time it is used. */
static inline unsigned tr__runq_size(tr__runq *q)
{
    return ck_ring_size(&q->ring);
}

/* ---- a worker's overflow ----
 * A ring fills when its worker makes actors faster than it runs them, as
 * a tree of spawns does (bench/skynet). Of what it spills, the newest is
 * the bottom of the tree — small subtrees, whose data is warm — and the
 * oldest the top, whole subtrees: the owner takes the newest back and a
 * thief the oldest (the discipline of a work-stealing deque), so that an
 * answer crosses between cores about once per subtree taken rather than
 * once per leaf. Spilled to the injection queue, oldest first for every
 * taker, skynet at 2 workers had 100,000 of its 1.1 million actors
 * answer across the cores, and ran at half its rate whenever a cache line
 * took 180-200 ns to cross; with the overflow about 200 answer across.
 *
 * A circular array, grown by doubling, under a try-lock: it is touched
 * once per spill (TR__RUNQ_SIZE / 2 actors), so the lock costs nothing
 * that counts, and nobody waits for it: an owner that finds it taken or
 * cannot grow the array spills to the injection queue instead, and a
 * thief that finds it taken looks elsewhere. `size` and `head` are
 * written under the lock and read without it (a snapshot). The array is
 * kept at its largest until the runtime is destroyed: 8 bytes for each
 * actor that was ever waiting in it at once. */
typedef struct tr__overflow {
    uint32_t lock;
    uint32_t size;       /* actors held */
    uint32_t head;       /* the oldest's index in a */
    uint32_t cap;        /* 0, or a power of two */
    tr__actor **a;
} tr__overflow;

static inline bool tr__overflow_trylock(tr__overflow *o)
{
    if (ck_pr_load_32(&o->lock) != 0 || !ck_pr_cas_32(&o->lock, 0, 1))
        return false;
    ck_pr_fence_acquire();
    return true;
}

static inline void tr__overflow_unlock(tr__overflow *o)
{
    ck_pr_fence_release();
    ck_pr_store_32(&o->lock, 0);
}

/* Any thread; a snapshot. */
static inline uint32_t tr__overflow_size(tr__overflow *o)
{
    return ck_pr_load_32(&o->size);
}

/* Under the lock: room for `need` actors, in order from index 0. */
static inline bool tr__overflow_grow(tr__overflow *o, uint32_t need)
{
    uint32_t cap = o->cap != 0 ? o->cap : 64;
    while (cap < need)
        cap *= 2;
    tr__actor **a = malloc(cap * sizeof *a);
    if (a == NULL)
        return false;
    for (uint32_t i = 0; i < o->size; i++)
        a[i] = o->a[(o->head + i) & (o->cap - 1)];
    free(o->a);
    o->a = a;
    o->cap = cap;
    ck_pr_store_32(&o->head, 0);
    return true;
}

/* Owner only: a[0 .. n-1] after what it holds, in order. False if the
 * lock was taken or the array could not grow: nothing was added. */
static inline bool tr__overflow_put(tr__overflow *o, tr__actor **a, unsigned n)
{
    if (!tr__overflow_trylock(o))
        return false;
    bool room = o->size + n <= o->cap || tr__overflow_grow(o, o->size + n);
    if (room) {
        for (unsigned i = 0; i < n; i++)
            o->a[(o->head + o->size + i) & (o->cap - 1)] = a[i];
        ck_pr_store_32(&o->size, o->size + n);
    }
    tr__overflow_unlock(o);
    return room;
}

/* Under the lock: the n oldest (newest = false) or n newest into out[],
 * in the order they were put. */
static inline void tr__overflow_move(tr__overflow *o, tr__actor **out, uint32_t n, bool newest)
{
    uint32_t from = newest ? o->head + o->size - n : o->head;
    for (uint32_t i = 0; i < n; i++)
        out[i] = o->a[(from + i) & (o->cap - 1)];
    if (!newest)
        ck_pr_store_32(&o->head, (o->head + n) & (o->cap - 1));
    ck_pr_store_32(&o->size, o->size - n);
}

/* Any thread: up to max of the oldest actors, in order; how many (0 if
 * none, or the lock was taken). */
static inline unsigned tr__overflow_take(tr__overflow *o, tr__actor **out, unsigned max)
{
    if (tr__overflow_size(o) == 0 || !tr__overflow_trylock(o))
        return 0;
    uint32_t n = o->size < max ? o->size : max;
    tr__overflow_move(o, out, n, false);
    tr__overflow_unlock(o);
    return n;
}

/* Owner only: up to max of the oldest actors, in order, if the oldest has
 * waited since before `stale` (in the units of the actor's wait stamp,
 * actor.h); else, with `newest`, up to max of the newest, in order; how
 * many (0 if none of those, or the lock was taken). Newest first, but not
 * for ever: spills cannot keep one waiting behind newer ones. */
static inline unsigned tr__overflow_take_back(tr__overflow *o, tr__actor **out, unsigned max,
                                              uint32_t now, uint32_t stale, bool newest)
{
    if (tr__overflow_size(o) == 0 || !tr__overflow_trylock(o))
        return 0;
    uint32_t n = o->size < max ? o->size : max;
    uint32_t stamp = ck_pr_load_32(&o->a[o->head]->wait);
    bool old = (stamp & 1) && ((now - (stamp >> 1)) & TR__WAIT_MASK) >= stale;
    if (old || newest)
        tr__overflow_move(o, out, n, !old);
    else
        n = 0;
    tr__overflow_unlock(o);
    return n;
}

static inline void tr__overflow_fini(tr__overflow *o)
{
    free(o->a);
    *o = (tr__overflow){0};
}

/* ---- the injection queue ---- */

typedef struct tr__injectq {
    tr__mpsc q;
    uint32_t lock;
    uint64_t pushed; /* an estimate, counted as an actor's `pushed` is
                      * (actors/figures.c): plain load and store */
    uint64_t popped; /* under the lock */
} tr__injectq;

static inline tr__actor *tr__actor_of_runq(tr__node *n)
{
    return (tr__actor *)((char *)n - offsetof(tr__actor, runq));
}

static inline void tr__injectq_init(tr__injectq *iq)
{
    tr__mpsc_init_unmarked(&iq->q);
    iq->lock = 0;
    iq->pushed = iq->popped = 0;
}

/* Any thread, wait-free: a[0 .. n-1] (n >= 1) at once, in order, with
 * one exchange on the queue's head (a worker's spill: worker.c). */
static inline void tr__injectq_push_all(tr__injectq *iq, tr__actor **a, unsigned n)
{
    for (unsigned i = 0; i + 1 < n; i++)
        a[i]->runq.next = &a[i + 1]->runq;
    tr__mpsc_push_chain_at(&iq->q.head, &a[0]->runq, &a[n - 1]->runq);
    ck_pr_store_64(&iq->pushed, ck_pr_load_64(&iq->pushed) + n);
}

static inline void tr__injectq_push(tr__injectq *iq, tr__actor *a)
{
    tr__injectq_push_all(iq, &a, 1);
}

/* Any thread: up to max actors, oldest first, under one taking of the
 * consumer side's try-lock; how many (0 when tr__injectq_pop would give
 * NULL, below). */
static inline unsigned tr__injectq_pop_many(tr__injectq *iq, tr__actor **out, unsigned max)
{
    if (tr__mpsc_is_empty(&iq->q) || !ck_pr_cas_32(&iq->lock, 0, 1))
        return 0;
    ck_pr_fence_acquire();
    unsigned n = 0;
    tr__node *node;
    while (n < max && (node = tr__mpsc_pop(&iq->q)) != NULL)
        out[n++] = tr__actor_of_runq(node);
    ck_pr_store_64(&iq->popped, iq->popped + n);
    ck_pr_fence_release();
    ck_pr_store_32(&iq->lock, 0);
    return n;
}

/* Actors queued: an estimate (sched/metrics.c). Any thread. */
static inline uint64_t tr__injectq_depth(tr__injectq *iq)
{
    uint64_t popped = ck_pr_load_64(&iq->popped), pushed = ck_pr_load_64(&iq->pushed);
    return tr__mpsc_is_empty(&iq->q) || pushed < popped ? 0 : pushed - popped;
}

/* Any thread: true if nothing is queued (a push in flight may be missed;
 * its pusher wakes a worker afterwards). */
static inline bool tr__injectq_is_empty(tr__injectq *iq)
{
    return tr__mpsc_is_empty(&iq->q);
}

/* Any thread: the oldest actor, or NULL if the queue is empty, a push is
 * half done, or another thread holds the consumer side. */
static inline tr__actor *tr__injectq_pop(tr__injectq *iq)
{
    tr__actor *a;
    return tr__injectq_pop_many(iq, &a, 1) != 0 ? a : NULL;
}

#endif
