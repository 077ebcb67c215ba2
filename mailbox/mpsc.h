/* mailbox/mpsc.h — an intrusive multi-producer, single-consumer queue.
 *
 * Dmitry Vyukov's node-based MPSC queue, with an "empty" mark on the head
 * so that a mailbox can tell a producer whether it must schedule the owner.
 *
 * Contract:
 *   push        any thread, any time; wait-free (one exchange).
 *   pop         the consumer only (the thread running the owner).
 *   mark_empty  the consumer only; once it succeeds the consumer must not
 *               touch the queue (nor its owner) again until it is
 *               scheduled anew by a push that returned true.
 *   *_keep      pop, mark_empty and is_empty for an actor's mailbox, which
 *               keep the last node in the queue instead of pushing the
 *               stub behind it (below, "keeping the last node").
 *
 * `head` is the last node pushed; its low bit is the empty mark. `tail` is
 * the consumer's next node. The embedded stub keeps the queue non-empty in
 * structure, so that every popped node can be freed at once: when the
 * consumer reaches the last node it pushes the stub behind it. The stub
 * belongs with head, not tail: producers link to it when the queue was
 * empty, and the consumer reaches it only as it catches up with them,
 * when it takes the head's line anyway (to push the stub or mark the
 * queue empty).
 *
 * Between a producer's exchange and its link store the queue is briefly
 * inconsistent: pop returns NULL although a node is coming. mark_empty then
 * fails, so the owner stays scheduled and the node is not lost. The same
 * window can leave the stub as head with nodes still queued behind tail
 * (a producer's exchange lands between pop's "tail is head" check and its
 * re-push of the stub), which is why emptiness looks at tail as well.
 * tail is written only by the consumer but read by is_empty, hence ck_pr.
 *
 * Producers write `head`; the consumer writes `tail` on every pop. Kept on
 * one cache line they would pass it back and forth once per message, so
 * the operations take the two ends separately (the `_at` forms): an actor
 * places them a cache line apart inside its slot (actors/actor.h), and
 * tr__mpsc, the queue as one object, pads between them.
 */
#ifndef TR_MAILBOX_MPSC_H
#define TR_MAILBOX_MPSC_H

#include <ck_pr.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../base/debug.h"
#include "troupe/msg.h"

typedef struct tr__msg_link tr__node;

/* The consumer's end of a queue. */
typedef struct tr__mpsc_end {
    tr__node *tail;
#ifdef TR_DEBUG
    uint32_t consuming; /* 1 while a consumer operation runs (debug.h) */
#endif
} tr__mpsc_end;

/* Debug builds check "consumer only" as "one consumer operation at a
 * time": two threads popping one queue at once is the bug it prevents. */
#ifdef TR_DEBUG
#define TR__MPSC_CONSUMER_IN(e) TR_ASSERT(ck_pr_fas_32(&(e)->consuming, 1) == 0)
#define TR__MPSC_CONSUMER_OUT(e) ck_pr_store_32(&(e)->consuming, 0)
#else
#define TR__MPSC_CONSUMER_IN(e) ((void)0)
#define TR__MPSC_CONSUMER_OUT(e) ((void)0)
#endif

#define TR__MPSC_EMPTY ((uintptr_t)1)

static inline tr__node *tr__mpsc_untag(tr__node *n)
{
    return (tr__node *)((uintptr_t)n & ~TR__MPSC_EMPTY);
}

/* A new queue. Marked empty, its first push returns true; unmarked (for
 * queues that are never marked), it returns false. */
static inline void tr__mpsc_init_at(tr__node **head, tr__node *stub, tr__mpsc_end *e,
                                    bool marked)
{
    stub->next = NULL;
    e->tail = stub;
#ifdef TR_DEBUG
    e->consuming = 0;
#endif
    *head = (tr__node *)((uintptr_t)stub | (marked ? TR__MPSC_EMPTY : 0));
}

/* Appends n. Returns true if the queue had been marked empty: the caller
 * has made it non-empty and must schedule its consumer. */
static inline bool tr__mpsc_push_at(tr__node **head, tr__node *n)
{
    n->next = NULL;
    /* n->next = NULL must be visible before a later producer links to n. */
    ck_pr_fence_store_atomic();
    tr__node *prev = ck_pr_fas_ptr(head, n);
    bool was_empty = ((uintptr_t)prev & TR__MPSC_EMPTY) != 0;
    /* Release: the node's contents before the link that publishes it. */
    ck_pr_fence_store();
    ck_pr_store_ptr(&tr__mpsc_untag(prev)->next, n);
    return was_empty;
}

/* Appends the chain first -> ... -> last, linked by the caller, with one
 * exchange. For queues never marked empty (the injection queue): it does
 * not say whether the queue was marked. */
static inline void tr__mpsc_push_chain_at(tr__node **head, tr__node *first, tr__node *last)
{
    last->next = NULL;
    ck_pr_fence_store_atomic(); /* the chain's links before the exchange */
    tr__node *prev = ck_pr_fas_ptr(head, last);
    ck_pr_fence_store();
    ck_pr_store_ptr(&tr__mpsc_untag(prev)->next, first);
}

/* From tail, past the stub if it is in front: the first node to take and
 * the one linked after it (*next, NULL if none yet), or NULL if only the
 * stub is there. Consumer only. */
static inline tr__node *tr__mpsc_front(tr__node *stub, tr__mpsc_end *e, tr__node *tail,
                                       tr__node **next)
{
    *next = ck_pr_load_ptr(&tail->next);
    if (tail == stub) {
        if (*next == NULL)
            return NULL;
        ck_pr_fence_load();
        tail = *next;
        ck_pr_store_ptr(&e->tail, tail);
        *next = ck_pr_load_ptr(&tail->next);
    }
    return tail;
}

static inline tr__node *tr__mpsc_take(tr__node **head, tr__node *stub, tr__mpsc_end *e)
{
    tr__node *next, *tail = tr__mpsc_front(stub, e, ck_pr_load_ptr(&e->tail), &next);
    if (tail == NULL)
        return NULL;
    if (next == NULL) {
        /* tail is the last linked node. If it is also the head, put the
         * stub behind it so that tail can leave the queue; if not, a
         * producer is between its exchange and its link. */
        if (tail != tr__mpsc_untag(ck_pr_load_ptr(head)))
            return NULL;
        tr__mpsc_push_at(head, stub);
        next = ck_pr_load_ptr(&tail->next);
        if (next == NULL)
            return NULL;
    }
    ck_pr_fence_load();
    ck_pr_store_ptr(&e->tail, next);
    return tail;
}

/* Takes the oldest node, or NULL if none can be taken now. Consumer only. */
static inline tr__node *tr__mpsc_pop_at(tr__node **head, tr__node *stub, tr__mpsc_end *e)
{
    TR__MPSC_CONSUMER_IN(e);
    tr__node *n = tr__mpsc_take(head, stub, e);
    TR__MPSC_CONSUMER_OUT(e);
    return n;
}

/* Marks the queue empty if it is: true on success, after which the next
 * push returns true. False if a node is present or on its way. */
static inline bool tr__mpsc_mark_empty_at(tr__node **head, tr__node *stub, tr__mpsc_end *e)
{
    TR__MPSC_CONSUMER_IN(e);
    bool drained = ck_pr_load_ptr(&e->tail) == stub && ck_pr_load_ptr(&stub->next) == NULL;
    TR__MPSC_CONSUMER_OUT(e); /* before the mark: once it lands, another may consume */
    return drained &&
           ck_pr_cas_ptr(head, stub, (tr__node *)((uintptr_t)stub | TR__MPSC_EMPTY));
}

/* True if no node is queued. Any thread. A node pushed while this runs may
 * be missed: its producer is responsible for waking a consumer. Head is
 * read first: if it is the stub, anything queued later moves it, and
 * anything queued earlier is still behind tail. */
static inline bool tr__mpsc_is_empty_at(tr__node **head, tr__node *stub, tr__mpsc_end *e)
{
    if (tr__mpsc_untag(ck_pr_load_ptr(head)) != stub)
        return false;
    ck_pr_fence_load();
    return ck_pr_load_ptr(&e->tail) == stub;
}

/* ---- keeping the last node (mailboxes) ----
 *
 * Handing out the last node by pushing the stub behind it costs the
 * consumer an exchange on head, and marking the queue empty afterwards a
 * compare-and-swap on it: two locked instructions for a turn of one
 * message, the common turn of ping-pong and of most request/reply. The
 * `_keep` forms hand the last node out but leave it in the queue, tail
 * pointing at it tagged SPENT ("taken already"); marking empty then
 * swings head from that node straight to the marked stub, one CAS for the
 * whole turn end (the stub is put back in its place first).
 *
 * A kept node must not be freed while it is in the queue: a producer may
 * have taken it from head and be about to link to it. It leaves when a
 * later node is linked behind it (the next take passes it) or when the
 * queue is marked empty; either hands it back through *drop, for the
 * caller to free, and until then tr__mpsc_kept says the caller must not.
 * Only for queues whose nodes are freed once taken, never pushed again:
 * a kept node pushed anew would be in the queue twice.
 *
 * The stub stays at the queue's front when it is in it: only marking
 * empty puts it back, and then as the head, so no node is ever linked
 * behind a kept one but a producer's. is_empty_keep reads tail, so, unlike
 * is_empty, it is for the consumer only. */

#define TR__MPSC_SPENT ((uintptr_t)1)

static inline tr__node *tr__mpsc_take_keep(tr__node **head, tr__node *stub, tr__mpsc_end *e,
                                           tr__node **drop)
{
    tr__node *tail = ck_pr_load_ptr(&e->tail);
    if ((uintptr_t)tail & TR__MPSC_SPENT) {
        tr__node *kept = tr__mpsc_untag(tail);
        tail = ck_pr_load_ptr(&kept->next);
        if (tail == NULL)
            return NULL; /* still the last (or a producer is linking to it) */
        ck_pr_fence_load();
        *drop = kept;
        ck_pr_store_ptr(&e->tail, tail);
    }
    tr__node *next;
    if ((tail = tr__mpsc_front(stub, e, tail, &next)) == NULL)
        return NULL;
    if (next == NULL) {
        /* The last linked node. If it is also the head, hand it out and
         * keep it; if not, a producer is between its exchange and its
         * link, and it waits for that link. */
        if (tail != tr__mpsc_untag(ck_pr_load_ptr(head)))
            return NULL;
        ck_pr_store_ptr(&e->tail, (tr__node *)((uintptr_t)tail | TR__MPSC_SPENT));
        return tail;
    }
    ck_pr_fence_load();
    ck_pr_store_ptr(&e->tail, next);
    return tail;
}

/* Takes the oldest node not yet taken, or NULL; *drop is set (else left
 * alone) when a kept node left the queue. Consumer only. */
static inline tr__node *tr__mpsc_pop_keep(tr__node **head, tr__node *stub, tr__mpsc_end *e,
                                          tr__node **drop)
{
    TR__MPSC_CONSUMER_IN(e);
    tr__node *n = tr__mpsc_take_keep(head, stub, e, drop);
    TR__MPSC_CONSUMER_OUT(e);
    return n;
}

/* Whether n, taken from the queue, is kept in it (the caller must not
 * free it yet). Consumer only. */
static inline bool tr__mpsc_kept(tr__mpsc_end *e, const tr__node *n)
{
    return ck_pr_load_ptr(&e->tail) == (tr__node *)((uintptr_t)n | TR__MPSC_SPENT);
}

/* Marks the queue empty if every node has been taken: true on success,
 * with the kept node, if any, in *drop; after which the next push returns
 * true. Consumer only. */
static inline bool tr__mpsc_mark_empty_keep(tr__node **head, tr__node *stub, tr__mpsc_end *e,
                                            tr__node **drop)
{
    TR__MPSC_CONSUMER_IN(e);
    tr__node *tail = ck_pr_load_ptr(&e->tail);
    if (tail == stub) {
        bool drained = ck_pr_load_ptr(&stub->next) == NULL;
        TR__MPSC_CONSUMER_OUT(e);
        return drained &&
               ck_pr_cas_ptr(head, stub, (tr__node *)((uintptr_t)stub | TR__MPSC_EMPTY));
    }
    tr__node *kept = tr__mpsc_untag(tail);
    if (kept == tail || ck_pr_load_ptr(&kept->next) != NULL) {
        TR__MPSC_CONSUMER_OUT(e);
        return false; /* a node not yet taken */
    }
    /* The stub back in the kept node's place, then head from that node to
     * the marked stub: a producer that took the node from head makes the
     * swap fail, and will link behind it. (No producer writes stub->next
     * now: the one that did linked the node we passed the stub for.) */
    ck_pr_store_ptr(&stub->next, NULL);
    ck_pr_store_ptr(&e->tail, stub);
    TR__MPSC_CONSUMER_OUT(e); /* before the mark: once it lands, another may consume */
    if (ck_pr_cas_ptr(head, kept, (tr__node *)((uintptr_t)stub | TR__MPSC_EMPTY))) {
        *drop = kept;
        return true;
    }
    ck_pr_store_ptr(&e->tail, tail); /* still ours: the mark did not land */
    return false;
}

/* True if every node has been taken. Consumer only. */
static inline bool tr__mpsc_is_empty_keep(tr__node **head, tr__node *stub, tr__mpsc_end *e)
{
    tr__node *tail = ck_pr_load_ptr(&e->tail), *h = tr__mpsc_untag(ck_pr_load_ptr(head));
    if (tail == stub)
        return h == stub;
    return ((uintptr_t)tail & TR__MPSC_SPENT) && h == tr__mpsc_untag(tail);
}

/* The kept node, if any, taken out when the queue is thrown away (no
 * producer may push any more). Consumer only. */
static inline tr__node *tr__mpsc_kept_node(tr__mpsc_end *e)
{
    tr__node *tail = ck_pr_load_ptr(&e->tail);
    return ((uintptr_t)tail & TR__MPSC_SPENT) ? tr__mpsc_untag(tail) : NULL;
}

/* ---- the queue as one object ---- */

typedef struct tr__mpsc {
    tr__node *head; /* producers */
    tr__node stub;
    char apart_[CK_MD_CACHELINE - sizeof(tr__node *) - sizeof(tr__node)];
    tr__mpsc_end end; /* consumer */
} tr__mpsc;

/* A new queue is empty and marked so: its first push returns true. */
static inline void tr__mpsc_init(tr__mpsc *q)
{
    tr__mpsc_init_at(&q->head, &q->stub, &q->end, true);
}

/* A queue whose first push returns false: for queues that are never marked. */
static inline void tr__mpsc_init_unmarked(tr__mpsc *q)
{
    tr__mpsc_init_at(&q->head, &q->stub, &q->end, false);
}

static inline bool tr__mpsc_push(tr__mpsc *q, tr__node *n)
{
    return tr__mpsc_push_at(&q->head, n);
}

static inline tr__node *tr__mpsc_pop(tr__mpsc *q)
{
    return tr__mpsc_pop_at(&q->head, &q->stub, &q->end);
}

static inline bool tr__mpsc_is_empty(tr__mpsc *q)
{
    return tr__mpsc_is_empty_at(&q->head, &q->stub, &q->end);
}

static inline bool tr__mpsc_mark_empty(tr__mpsc *q)
{
    return tr__mpsc_mark_empty_at(&q->head, &q->stub, &q->end);
}

#endif
