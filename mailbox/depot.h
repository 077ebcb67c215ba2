/* mailbox/depot.h — a shared store of full batches, and the per-thread
 * magazines in front of it.
 *
 * Free objects (message blocks, actor slots) are cached per thread in a
 * magazine: a current chain and a stack of spare full chains of TR__BATCH
 * nodes. Frees and allocations touch only the magazine; a full chain moves
 * to or from the depot once per TR__BATCH operations, and only once the
 * stack holds as many as it keeps (tr__magazine_keep). A thread that frees
 * what another allocated (the usual producer/consumer pattern) hands its
 * surplus back through the depot, so neither side calls malloc in steady
 * state. Whole-chain exchange through a bounded queue avoids the ABA
 * problem of a lock-free free-list.
 *
 * Why a stack of spares and not one: a thread whose frees and allocations
 * run ahead of each other by more than two chains — a tree of spawns
 * dying and being born again, a burst of sends answered later — sent its
 * surplus to the depot and took back, a moment later, its oldest chain:
 * another thread's as often as not, whose every node then had to cross
 * from that thread's CPU. skynet (1 M actors) sent 16,500 chains through
 * the depot a run, at 1 worker as at 2; keeping 2, 8,400; 4, 1,800; 8,
 * 200; 16, 100. At 2 workers on 2 cores (runs alternating with the code
 * before, medians): 22.4 -> 29.3 M actors/s while a cache line crosses
 * between the CPUs in 33-46 ns (8 runs), 11.3 -> 20.5 M while it takes
 * 160-200 ns (8 runs, 8 kept); at 16 workers 22.4 -> 26.9 M (5 runs); at
 * 1 worker level (14.8 -> 14.6 M, 6 runs), with half the first-level
 * cache misses on bench/fanin (cachegrind). The oldest spare is the one
 * given up: the newest are the warmest.
 *
 * The depot is Vyukov's bounded MPMC queue: each cell carries a sequence
 * number that says whose turn it is (a producer's, for lap n, or a
 * consumer's), and a thread claims a position with one compare-and-swap.
 * Nobody ever waits for another thread: a cell whose producer (or
 * consumer) has claimed it but not yet finished makes a get report empty
 * (a put, full), and the caller falls back on malloc (or free). (Concurrency
 * Kit's MPMC ring makes each producer wait for the ones before it to
 * publish; with more workers than cores a producer preempted there held
 * every other one up for a time slice: 90% of fjthroughput's time at 16
 * threads on 2 cores.)
 *
 * Cells hold their sequence number less their own index, so that a depot
 * fresh from calloc is ready without a write to every cell: the table's
 * depot has room for every actor slot there could be (2^20 batches), and
 * its pages stay untouched until used.
 *
 * Contract: a depot may be used by any thread; a magazine only by the
 * thread that owns it.
 */
#ifndef TR_MAILBOX_DEPOT_H
#define TR_MAILBOX_DEPOT_H

#include <ck_cc.h>
#include <ck_pr.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>

#include "mpsc.h"

#define TR__BATCH 64

typedef struct tr__depot_cell {
    uint64_t turn;    /* sequence number - index of the cell */
    tr__node *chain;
} tr__depot_cell;

typedef struct tr__depot {
    tr__depot_cell *cells;
    uint64_t mask;
    uint64_t put_at CK_CC_CACHELINE; /* next position to fill */
    uint64_t get_at CK_CC_CACHELINE; /* next position to empty */
} tr__depot;

/* capacity: the number of batches it can hold; a power of two. */
static inline int tr__depot_init(tr__depot *d, unsigned capacity)
{
    d->cells = calloc(capacity, sizeof *d->cells);
    if (d->cells == NULL)
        return -1;
    d->mask = capacity - 1;
    d->put_at = 0;
    d->get_at = 0;
    return 0;
}

static inline void tr__depot_fini(tr__depot *d)
{
    free(d->cells);
    d->cells = NULL;
}

/* Claims position *at (for a put, want_ahead 0; for a get, 1) if its
 * cell's turn has come; NULL if the depot is full (empty) or the cell's
 * previous owner has not finished. */
static inline tr__depot_cell *tr__depot_claim(tr__depot *d, uint64_t *counter, uint64_t want_ahead,
                                             uint64_t *at)
{
    uint64_t pos = ck_pr_load_64(counter);
    for (;;) {
        tr__depot_cell *c = &d->cells[pos & d->mask];
        uint64_t seq = ck_pr_load_64(&c->turn) + (pos & d->mask);
        ck_pr_fence_load();
        int64_t ahead = (int64_t)(seq - pos - want_ahead);
        if (ahead < 0)
            return NULL;
        if (ahead == 0 && ck_pr_cas_64_value(counter, pos, pos + 1, &pos)) {
            *at = pos;
            return c;
        }
        if (ahead > 0)
            pos = ck_pr_load_64(counter);
    }
}

/* Publishes claimed cell c (at position at) for its next owner, whose
 * sequence number is next_seq. */
static inline void tr__depot_release(tr__depot *d, tr__depot_cell *c, uint64_t at,
                                     uint64_t next_seq)
{
    ck_pr_fence_store();
    ck_pr_store_64(&c->turn, next_seq - (at & d->mask));
}

/* Stores a chain of exactly TR__BATCH nodes; false if the depot is full. */
static inline bool tr__depot_put(tr__depot *d, tr__node *chain)
{
    uint64_t at;
    tr__depot_cell *c = tr__depot_claim(d, &d->put_at, 0, &at);
    if (c == NULL)
        return false;
    ck_pr_store_ptr(&c->chain, chain);
    tr__depot_release(d, c, at, at + 1);
    return true;
}

/* Takes a chain of TR__BATCH nodes, or NULL. */
static inline tr__node *tr__depot_get(tr__depot *d)
{
    uint64_t at;
    tr__depot_cell *c = tr__depot_claim(d, &d->get_at, 1, &at);
    if (c == NULL)
        return NULL;
    tr__node *chain = ck_pr_load_ptr(&c->chain);
    tr__depot_release(d, c, at, at + d->mask + 1);
    return chain;
}

/* Spare chains a magazine can hold, and the most memory that a thread
 * keeps in one magazine's spares: 16 chains of 64-byte blocks or of
 * slots, 1 of 4 KiB blocks (two chains of those, with the current one,
 * as before the stack). */
#define TR__MAG_SPARES 16
#define TR__MAG_KEEP_BYTES (128 * 1024)

typedef struct tr__magazine {
    tr__node *cur;    /* up to TR__BATCH nodes */
    uint32_t count;   /* nodes in cur */
    uint32_t spares;  /* full chains in spare[], the oldest first */
    tr__node **spare; /* room for TR__MAG_SPARES chains of exactly
                       * TR__BATCH nodes, or NULL: none kept. Room apart
                       * from the magazine, so that a thread's message
                       * pools stay small enough for initial-exec TLS
                       * (mailbox/msg.h) */
} tr__magazine;

/* An empty magazine that keeps spare chains in room (TR__MAG_SPARES
 * entries; NULL: it keeps none, and every full chain goes to the
 * depot). */
static inline void tr__magazine_init(tr__magazine *m, tr__node **room)
{
    *m = (tr__magazine){ .spare = room };
}

/* How many spare chains a magazine of node_size-byte nodes keeps before
 * it gives the oldest to the depot: what TR__MAG_KEEP_BYTES holds, at
 * least 1 and at most TR__MAG_SPARES. */
static inline uint32_t tr__magazine_keep(size_t node_size)
{
    size_t keep = TR__MAG_KEEP_BYTES / (node_size * TR__BATCH);
    return keep < 1 ? 1 : keep > TR__MAG_SPARES ? TR__MAG_SPARES : (uint32_t)keep;
}

/* Takes one node from the current chain, or NULL if it is empty: no
 * refill (the inline half of a take). */
static inline tr__node *tr__magazine_pop(tr__magazine *m)
{
    tr__node *n = m->cur;
    if (n != NULL) {
        m->cur = n->next;
        m->count--;
    }
    return n;
}

/* Puts n on the current chain, which has room (count < TR__BATCH). */
static inline void tr__magazine_push(tr__magazine *m, tr__node *n)
{
    n->next = m->cur;
    m->cur = n;
    m->count++;
}

/* Takes one node, refilling from the newest spare chain, else from the
 * depot; NULL if all are empty. */
static inline tr__node *tr__magazine_take(tr__magazine *m, tr__depot *d)
{
    if (m->cur == NULL) {
        if (m->spares != 0) {
            m->cur = m->spare[--m->spares];
        } else if ((m->cur = tr__depot_get(d)) == NULL) {
            return NULL;
        }
        m->count = TR__BATCH;
    }
    return tr__magazine_pop(m);
}

/* Whether a put has been claimed that no get has taken: the depot holds a
 * batch, or a thread is (perhaps preempted) half-way through storing one. */
static inline bool tr__depot_busy(tr__depot *d)
{
    return ck_pr_load_64(&d->put_at) != ck_pr_load_64(&d->get_at);
}

/* Takes one node of a full chain the caller holds (the magazine's current
 * chain is empty: tr__magazine_take has just returned NULL). */
static inline tr__node *tr__magazine_take_from(tr__magazine *m, tr__node *chain)
{
    m->cur = chain->next;
    m->count = TR__BATCH - 1;
    return chain;
}

/* Gives one node (of node_size bytes: tr__magazine_keep) back. Returns a
 * full chain that fitted nowhere (the depot is full, or its next cell is
 * still being emptied), which the caller must dispose of, or NULL. */
static inline tr__node *tr__magazine_give(tr__magazine *m, tr__depot *d, tr__node *n,
                                          size_t node_size)
{
    tr__node *overflow = NULL;
    if (m->count == TR__BATCH) {
        /* The chain that leaves: the full current one if there is no
         * room for spares, else the oldest spare once they fill it. */
        tr__node *out = m->cur;
        if (m->spare != NULL) {
            out = NULL;
            if (m->spares == tr__magazine_keep(node_size)) {
                out = m->spare[0];
                m->spares--;
                for (uint32_t i = 0; i < m->spares; i++)
                    m->spare[i] = m->spare[i + 1];
            }
            m->spare[m->spares++] = m->cur;
        }
        if (out != NULL && !tr__depot_put(d, out))
            overflow = out;
        m->cur = NULL;
        m->count = 0;
    }
    tr__magazine_push(m, n);
    return overflow;
}

#endif
