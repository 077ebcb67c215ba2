/* actors/actor.h — the actor slot and the pid table (internal).
 *
 * Actors live in type-stable slots: chunks of slots are allocated as the
 * table grows and never freed before the runtime is destroyed. A slot's
 * `life` word holds its generation and an alive bit. A pid is live while
 * the slot's life equals (pid generation << 1 | 1); when the actor stops,
 * the generation moves on, so every pid of the old incarnation becomes a
 * dead letter, and the slot can be reused at once under the new one.
 *
 * Why no epoch-based reclamation is needed: senders only touch a slot's
 * life word and its mailbox, both valid forever. A message carries the pid
 * it was sent to, and the turn delivers it only if that pid is still the
 * slot's live pid — so a message that raced with a stop is dropped, never
 * handed to a later actor in the same slot. The mailbox itself persists
 * across incarnations, which keeps "scheduled" a property of the mailbox:
 * whoever runs the slot drains stale messages and then any for the new
 * actor, never two threads at once.
 */
#ifndef TR_ACTORS_ACTOR_H
#define TR_ACTORS_ACTOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../mailbox/depot.h"
#include "../mailbox/mpsc.h"
#include "pid.h"
#include "troupe/actor.h"

#define TR__CHUNK_BITS 12
#define TR__CHUNK_SLOTS (1u << TR__CHUNK_BITS)
#define TR__MAX_SLOTS (1u << TR__PID_INDEX_BITS)
#define TR__MAX_GEN ((1u << TR__PID_GEN_BITS) - 1)

#define TR__HEAP_STATE 1u
/* Its senders wait on it even when it has caught up (tr__cx_hold_senders):
 * set and cleared by the actor's own turns only. */
#define TR__HOLDING 2u

/* State up to this many bytes lives inside the actor's slot; larger state
 * costs one extra allocation at spawn. */
#define TR__STATE_INLINE 32

typedef struct tr_runtime tr_runtime;

/* Something an actor holds that must be given back when it stops (a
 * watched descriptor, a signal subscription). Listed in the actor and
 * touched only in its own turns. */
typedef struct tr__resource {
    struct tr__resource *next;
    void (*release)(tr_runtime *rt, struct tr__resource *r);
} tr__resource;

/* Checks, beside the definition of a T that holds a tr__resource `res`,
 * that res is T's first member: the actor's list holds the T by its
 * resource, release casts the resource back to the T, and spawning with
 * resource_at 0 points the list into the state at its start. */
#define TR__RESOURCE_FIRST(T)                                                             \
    _Static_assert(offsetof(T, res) == 0,                                                 \
                   #T ": its resource must come first (release casts it back to the " #T ")")

/* How an internal caller spawns (tr__spawn_spec, actors/actor.c). */
typedef struct tr__spawn_opts {
    ptrdiff_t resource_at;   /* a tr__resource embedded in the state at this
                              * byte, on the actor's list from the start (so
                              * it is released even if the actor never runs),
                              * or -1 */
    size_t user_at;          /* the spec's init and on_stop get the state
                              * from this byte on (a socket actor's user
                              * part) */
    struct tr__fault *fault; /* a record made by the caller (a link, a
                              * monitor), or NULL; on failure still the
                              * caller's */
} tr__spawn_opts;

/* An actor's figures (troupe/metrics.h), reset at each incarnation by
 * its spawner. turns, handled_at_birth and last_run_ns are the turn's;
 * busy_ns and longest_ns the monitor's (sched/monitor.c); links and
 * monitors the
 * owner's, published by actors/fault.c whenever its record changes. All
 * read from any thread with ck_pr: figures, not a snapshot. */
typedef struct tr__figures {
    uint64_t turns;
    uint64_t handled_at_birth; /* `handled` when this incarnation began */
    uint64_t busy_ns;
    uint64_t last_run_ns;      /* the coarse clock at its last turn's start */
    uint32_t longest_us;
    uint32_t waited;           /* TR__WAIT_UNITs it waited in a run queue
                                * before its last turn taken from one */
    uint32_t links, monitors;
} tr__figures;

/* Run-queue waits are kept in 32 bits of 2^10 ns (about a microsecond):
 * enough for 73 minutes, and a slot 8 bytes smaller than in ns. */
#define TR__WAIT_SHIFT 10

/* The aux word: a per-slot state tagged with the generation it belongs to,
 * so that a compare-and-swap on it by pid can never hit a later actor in
 * the same slot (timers use it for pending/firing/done). */
#define TR__AUX(gen, status) ((gen) << 2 | (status))

typedef struct tr__actor {
    /* Touched by senders: the mailbox's producer end, and what a send
     * checks. Written by the turn only when the actor starts or ends. */
    tr__node *mailbox;  /* head of the mailbox (mailbox/mpsc.h) */
    uint32_t life;      /* generation << 1 | alive */
    uint32_t index;     /* slot index, fixed */
    uint64_t muted;     /* senders waiting for this actor to catch up, and
                         * whether it is overloaded (sched.h, Backpressure) */
    uint32_t aux;       /* TR__AUX(gen, status); 0 for most actors */
    uint16_t named;     /* 1 while a name is registered (atomic: any thread) */
    uint16_t flags;
    uint32_t pushed;    /* messages pushed, an estimate, wrapping: senders
                         * add to it with a plain load and store on the
                         * line they already hold (actors/figures.c) */
    uint32_t queued;    /* the coarse clock >> TR__WAIT_SHIFT when it was
                         * last put in a run queue (sched/worker.c) */
    /* The turn's. */
    tr__node runq;      /* link in the injection queue or a mute list */
    tr_behaviour fn;
    tr__resource *resources;
    struct tr__fault *fault; /* links and monitors; NULL until the first */
    /* A cache line away from `mailbox`, so that popping does not take the
     * line senders push on. */
    tr__mpsc_end mailbox_end;
    uint64_t handled;   /* messages taken, over the slot's life; the owner
                         * writes it at the end of each turn, senders watch
                         * its low half (sched/backpressure.c) and
                         * pushed - handled is the mailbox's depth */
    tr__figures fig;    /* this incarnation's figures (figures.c) */
    union {
        unsigned char bytes[TR__STATE_INLINE];
        void *heap;     /* with TR__HEAP_STATE */
        struct {
            tr__node link;  /* in a batch of free slots */
            tr__node batch; /* a batch's first slot: link between batches in
                             * the table's stash (not runq: a free slot may
                             * still be queued, draining stale messages) */
        } free;
    } state;
} tr__actor;

_Static_assert(offsetof(tr__actor, mailbox_end) - offsetof(tr__actor, mailbox) >= 64,
               "a mailbox's two ends share a cache line");

/* tr__mailbox_push, tr__mailbox_pop, tr__mailbox_is_empty and
 * tr__mailbox_mark_empty: the actor's mailbox, its ends a cache line apart. */
TR__MPSC_BIND(tr__mailbox, tr__actor, mailbox, mailbox_end)

/* A new incarnation's figures start at zero (new_actor, actors/actor.c).
 * A worker may still be draining the slot's stale messages: its turn's
 * stores can land after these, and count a few of them for the new
 * actor — figures, not accounts. */
static inline void tr__figures_reset(tr__actor *a)
{
    ck_pr_store_64(&a->fig.turns, 0);
    ck_pr_store_64(&a->fig.handled_at_birth, ck_pr_load_64(&a->handled));
    ck_pr_store_64(&a->fig.busy_ns, 0);
    ck_pr_store_32(&a->fig.longest_us, 0);
    ck_pr_store_64(&a->fig.last_run_ns, 0);
    ck_pr_store_32(&a->fig.waited, 0);
    ck_pr_store_32(&a->fig.links, 0);
    ck_pr_store_32(&a->fig.monitors, 0);
}

/* Free slots are cached per worker (a magazine each, passed in by the
 * caller) and, for every other thread — the main thread, the reactor, a
 * foreign thread spawning or arming timers — in one shared magazine under
 * a spinlock: those callers are not on a hot path, and without a cache of
 * their own they could only ever take fresh slots, so a server whose main
 * thread spawns would grow its table without bound. */
typedef struct tr__table {
    tr__actor **chunks;   /* TR__MAX_SLOTS / TR__CHUNK_SLOTS entries */
    uint32_t next;        /* slots handed out from fresh chunks */
    tr__depot free;       /* full batches of free slots */
    uint32_t shared_lock;
    tr__magazine shared;  /* for callers without a magazine, under the lock */
    tr__node *stash;      /* full batches the depot refused (table.c) */
} tr__table;

int tr__table_init(tr__table *t);

/* Releases every live actor's resources (tr__actor_release, reason
 * TR_EXIT_SHUTDOWN), frees every chunk, heap state and queued message. No
 * other thread may use the table. */
void tr__table_fini(tr__table *t, tr_runtime *rt);

/* A free slot, from the magazine (NULL: the shared one) or a fresh chunk.
 * NULL with *err = TR_EAGAIN (table full) or TR_ENOMEM. */
tr__actor *tr__table_alloc(tr__table *t, tr__magazine *mag, int *err);

/* Ends incarnation `life` of slot a: its pid becomes a dead letter. */
void tr__table_end(tr__actor *a, uint32_t life);

/* Gives an ended slot back for reuse through mag, the calling worker's
 * (NULL: the shared magazine, for other threads). Only the worker that
 * runs the actor may do so — or, for a slot whose behaviour never runs (a
 * timer's), the worker polling the reactor when the timer's wheel entry
 * comes due; or the spawner of an actor that was never started (its name
 * was taken), which nobody else can name. */
void tr__table_give(tr__table *t, tr__magazine *mag, tr__actor *a);

/* The end of a live actor, before the end is published: its resources
 * are released (last added first), then its spec's on_stop runs, once
 * (actors/actor.c). */
void tr__actor_release(tr_runtime *rt, tr__actor *a, int reason);

/* Slots ever taken from fresh chunks: the table's size. Any thread. */
uint32_t tr__table_size(tr__table *t);

/* The slot a pid names, or NULL if no such slot was ever handed out. */
static inline tr__actor *tr__table_lookup(tr__table *t, tr_pid pid)
{
    uint32_t index = TR__PID_INDEX(pid);
    if (index >= ck_pr_load_32(&t->next))
        return NULL;
    tr__actor *chunk = ck_pr_load_ptr(&t->chunks[index >> TR__CHUNK_BITS]);
    if (chunk == NULL)
        return NULL;
    ck_pr_fence_load();
    return &chunk[index & (TR__CHUNK_SLOTS - 1)];
}

/* Whether pid, which names slot a, was never issued: generation 0, or
 * one the slot has not reached yet (life holds the next generation while
 * the slot is free). */
static inline bool tr__pid_never_issued(uint32_t life, tr_pid pid)
{
    uint32_t gen = TR__PID_GEN(pid);
    return gen == 0 || gen > life >> 1 || (gen == life >> 1 && !(life & 1));
}

static inline tr_pid tr__pid_make(uint32_t gen, uint32_t index)
{
    return ((tr_pid)gen << TR__PID_INDEX_BITS) | index;
}

/* Whether pid is slot a's live actor (of this node; timers are slots
 * too, and are not actors here). Any thread. */
static inline bool tr__actor_live(tr__actor *a, tr_pid pid)
{
    return TR__PID_NODE(pid) == 0 && ck_pr_load_32(&a->life) == (TR__PID_GEN(pid) << 1 | 1) &&
           ck_pr_load_32(&a->aux) == 0;
}

/* The live pid of a slot given its life word, or TR_PID_NONE. */
static inline tr_pid tr__pid_of(const tr__actor *a, uint32_t life)
{
    return (life & 1) ? tr__pid_make(life >> 1, a->index) : TR_PID_NONE;
}

#endif
