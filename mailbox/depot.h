/* mailbox/depot.h — a shared store of full batches, and the per-thread
 * magazines in front of it.
 *
 * Free objects (message blocks, actor slots) are cached per thread in a
 * magazine: a current chain and one spare full chain of TR__BATCH nodes.
 * Frees and allocations touch only the magazine; a full chain moves to or
 * from the depot, a bounded ck_ring used MPMC, once per TR__BATCH
 * operations. A thread that frees what another allocated (the usual
 * producer/consumer pattern) hands its surplus back through the depot, so
 * neither side calls malloc in steady state. Whole-chain exchange through a
 * ring avoids the ABA problem of a lock-free free-list.
 *
 * Contract: a depot may be used by any thread; a magazine only by the
 * thread that owns it.
 */
#ifndef TR_MAILBOX_DEPOT_H
#define TR_MAILBOX_DEPOT_H

#include <ck_ring.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>

#include "mpsc.h"

#define TR__BATCH 64

typedef struct tr__depot {
    ck_ring_t ring;
    ck_ring_buffer_t *buf;
} tr__depot;

/* capacity: the number of batches it can hold; a power of two. */
static inline int tr__depot_init(tr__depot *d, unsigned capacity)
{
    d->buf = calloc(capacity, sizeof *d->buf);
    if (d->buf == NULL)
        return -1;
    ck_ring_init(&d->ring, capacity);
    return 0;
}

static inline void tr__depot_fini(tr__depot *d)
{
    free(d->buf);
    d->buf = NULL;
}

/* Stores a chain of exactly TR__BATCH nodes; false if the depot is full. */
static inline bool tr__depot_put(tr__depot *d, tr__node *chain)
{
    return ck_ring_enqueue_mpmc(&d->ring, d->buf, chain);
}

/* Takes a chain of TR__BATCH nodes, or NULL. */
static inline tr__node *tr__depot_get(tr__depot *d)
{
    tr__node *chain;
    return ck_ring_dequeue_mpmc(&d->ring, d->buf, &chain) ? chain : NULL;
}

typedef struct tr__magazine {
    tr__node *cur;    /* up to TR__BATCH nodes */
    uint32_t count;   /* nodes in cur */
    tr__node *spare;  /* NULL or exactly TR__BATCH nodes */
} tr__magazine;

/* Takes one node, refilling from the depot; NULL if both are empty. */
static inline tr__node *tr__magazine_take(tr__magazine *m, tr__depot *d)
{
    if (m->cur == NULL) {
        if (m->spare != NULL) {
            m->cur = m->spare;
            m->spare = NULL;
        } else if ((m->cur = tr__depot_get(d)) == NULL) {
            return NULL;
        }
        m->count = TR__BATCH;
    }
    tr__node *n = m->cur;
    m->cur = n->next;
    m->count--;
    return n;
}

/* Gives one node back. Returns a full chain that fitted nowhere (the depot
 * is full), which the caller must dispose of, or NULL. */
static inline tr__node *tr__magazine_give(tr__magazine *m, tr__depot *d, tr__node *n)
{
    tr__node *overflow = NULL;
    if (m->count == TR__BATCH) {
        if (m->spare != NULL && !tr__depot_put(d, m->spare))
            overflow = m->spare;
        m->spare = m->cur;
        m->cur = NULL;
        m->count = 0;
    }
    n->next = m->cur;
    m->cur = n;
    m->count++;
    return overflow;
}

#endif
