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
#include "../mailbox/msg.h"
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
/* It has held resources (its side record's list): set when one is added,
 * so that an actor that never held any does not touch its side record as
 * it ends. Owner only, like the rest of flags. */
#define TR__HELD 4u
/* It has a fault record (links, monitors, asks, a spec's callbacks:
 * actors/fault.h) in its side record: set when one is made, so that the
 * common actor, which never has one, does not touch its side record as
 * it ends either. Owner only. */
#define TR__FAULTS 8u
/* It traps exits (tr_trap_exits): a flag rather than a field of the
 * fault record, so that turning it on never needs memory. Owner only. */
#define TR__TRAPS 16u

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

/* Run-queue waits are kept in 31 bits of 2^10 ns (about a microsecond):
 * enough for 36 minutes. The slot's `wait` word is, while the actor is in
 * a run queue, the coarse clock in those units as it was put there (low
 * bit 1), and once it has been taken from one, how long it waited (low
 * bit 0): one word for the stamp and the figure, kept in the slot so
 * that taking an actor from a queue touches nothing else (sched/worker.c,
 * actors/figures.c). */
#define TR__WAIT_SHIFT 10
#define TR__WAIT_MASK 0x7fffffffu
#define TR__WAIT_QUEUED(units) ((units) << 1 | 1u)

/* The wait word once the actor is taken from its queue, at `units`. */
static inline uint32_t tr__wait_taken(uint32_t word, uint32_t units)
{
    return (word & 1) ? ((units - (word >> 1)) & TR__WAIT_MASK) << 1 : word;
}
/* Last runs are kept in 32 bits of 2^20 ns (about a millisecond, the
 * coarse clock's tick): a stamp that repeats every 52 days (figures.c). */
#define TR__RUN_SHIFT 20

/* The aux word: a per-slot state tagged with the generation it belongs to,
 * so that a compare-and-swap on it by pid can never hit a later actor in
 * the same slot (timers use it for pending/firing/done). */
#define TR__AUX(gen, status) ((gen) << 2 | (status))

/* An actor's side record: what it holds, and its cold figures, in an
 * array beside its chunk of slots (table.c) rather than in the slot, so
 * that the slot keeps to 120 bytes and an idle actor never touches (nor
 * makes resident) this part. Nothing resets it at spawn: each group
 * of figures carries the `life` of the incarnation it belongs to, and its
 * writer starts it again from zero when the tag is not the actor's life
 * (tr__side_own, and the monitor's in sched/metrics.c); readers take a
 * group whose tag is another life as zeros. Two groups, so that each has
 * one writer at a time: the monitor thread's, and the one the actor's
 * own turns write (or its spawner, before it is born). */
typedef struct tr__side {
    tr__resource *resources; /* with TR__HELD; NULL whenever the slot is free */
    struct tr__fault *fault; /* with TR__FAULTS (tr__fault_get) */
    /* The owner's group. */
    uint32_t own_life;
    uint32_t links, monitors; /* published by actors/fault.c */
    uint32_t turns_hi;       /* turns >> 32 (the slot counts the low half) */
    /* The monitor's group (sched/metrics.c). */
    uint32_t monitor_life;
    uint32_t longest_us;
    uint64_t busy_ns;
} tr__side;

_Static_assert(sizeof(tr__side) == 48, "a side record is 48 bytes");

/* A slot is 120 bytes, in two parts of 64 and 56 that are 64 bytes apart
 * at their starts, so that the mailbox's two ends never share a cache
 * line. Slots are not line-aligned (chunks are: a slot starts 0, 56, 48,
 * ... 8 bytes into a line): 128-byte slots of two whole lines were
 * weighed and cost 8 bytes per idle actor (bench/idlemem 121 -> 130) for
 * no time that could be measured once each worker takes its fresh slots
 * in runs (tr__slot_cache), so that neighbours, which share lines, are
 * mostly one worker's. What every send touches comes first in the slot
 * and the turn's writes start 64 bytes after the head, so they share a
 * line only where a slot starts late in one: the depth count in 2 slots
 * of 8, life and aux in 1. Putting the turn count and stamp in the
 * senders' part instead cost counting 3% (the turn wrote the line its
 * sender pushes on, in every slot).
 * Spawns from outside the runtime are kept apart: actors spawned one
 * after another there (a program's top actors) would take neighbouring
 * slots and, with states over the inline room, neighbouring malloc
 * blocks, and the workers that take them from the injection queue run
 * them apart. So such a spawn takes every other fresh slot of a run
 * (table.c, take_fresh_apart: no slot is left unused) and a heap state
 * a line of room more than it needs (actor.c, state_room). bench/ask's
 * four pairs, two and two, while a line took 170-220 ns to cross between
 * the CPUs: 17-24 M asks/s with neighbours, 23-26 M with the slots apart
 * alone, 18-30 M with the states apart alone (on lines of their own),
 * 21-35 M with both (8 alternating runs: median 18.1 -> 32.8 M). A
 * worker's spawns, from its own thread's arena and fresh slot runs, have
 * neighbours of its own anyway.
 *
 * The senders' part: the mailbox's head, what a send checks and counts,
 * and the stub (which the consumer comes back to only as it catches up,
 * mailbox/mpsc.h). The turn writes here only as the actor starts and
 * ends, and the worker that takes it from a run queue the wait it had
 * there. */
typedef struct tr__actor {
    tr__node *mailbox;  /* head of the mailbox (mailbox/mpsc.h) */
    union {
        struct {
            uint32_t life; /* generation << 1 | alive */
            uint32_t aux;  /* TR__AUX(gen, status); 0 for most actors */
        };
        uint64_t life_aux; /* both, for a send's one check (tr__live_plain) */
    };
    uint32_t pushed;    /* messages pushed, an estimate, wrapping: senders
                         * add to it with a plain load and store, beside
                         * the head their exchange takes (actors/figures.c) */
    uint32_t wait;      /* put in a run queue when, or waited there how
                         * long (TR__WAIT_SHIFT) */
    uint64_t muted;     /* senders waiting for this actor to catch up, and
                         * whether it is overloaded (sched.h, Backpressure) */
    uint32_t index;     /* slot index, fixed */
    uint16_t named;     /* 1 while a name is registered (atomic: any thread) */
    uint16_t flags;
    tr__node runq;      /* link in the injection queue or a mute list */
    tr_behaviour fn;
    tr__node mailbox_stub;
    /* The turn's part: the consumer's end, so that popping does not take
     * the line senders push on, the figures a turn writes, and the
     * state. */
    tr__mpsc_end mailbox_end;
    uint64_t handled;   /* messages taken by this incarnation; the owner
                         * writes it at the end of each turn, senders watch
                         * its low half (sched/backpressure.c) and
                         * pushed - handled is the mailbox's depth */
    uint32_t turns;     /* this incarnation's turns, low half */
    uint32_t last_run;  /* the coarse clock >> TR__RUN_SHIFT at its last
                         * turn's start */
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

_Static_assert(offsetof(tr__actor, mailbox_end) - offsetof(tr__actor, mailbox) == 64,
               "a mailbox's two ends are a cache line apart");
#ifndef TR_DEBUG /* (whose mailbox end has a consumer flag more) */
_Static_assert(sizeof(tr__actor) == 120, "a slot is 120 bytes (bench/idlemem)");
#endif

/* The life_aux word of a live actor of generation gen with no aux state:
 * what a send to it expects (actors/actor.c). Built through the same
 * layout as the slot's, so that it holds for either byte order. */
typedef union tr__life_aux {
    struct {
        uint32_t life, aux;
    };
    uint64_t word;
} tr__life_aux;

static inline uint64_t tr__live_plain(uint32_t gen)
{
    return ((tr__life_aux){{gen << 1 | 1, 0}}).word;
}

/* Whether a is alive as the plain actor `pid` names (not stopped, not
 * another incarnation in its slot, not a timer): one load. */
static inline bool tr__actor_live_as(tr__actor *a, tr_pid pid)
{
    return ck_pr_load_64(&a->life_aux) == tr__live_plain(TR__PID_GEN(pid));
}

/* ---- the mailbox ----
 * The actor's queue (mailbox/mpsc.h), its two ends a cache line apart.
 * Its owner uses the `_keep` forms: the last message a turn takes stays in
 * the queue until a later one arrives or the turn end marks the mailbox
 * empty, so that a turn of one message costs the owner one locked
 * instruction instead of two. A message the owner has taken is therefore
 * freed with tr__mailbox_done, which leaves a kept one to the mailbox;
 * the mailbox frees it as it leaves. */

/* Any thread: true if the mailbox was marked empty (schedule a). */
static inline bool tr__mailbox_push(tr__actor *a, tr__node *n)
{
    return tr__mpsc_push_at(&a->mailbox, n);
}

/* The owner: the next message, or NULL. */
static inline tr__node *tr__mailbox_pop(tr__actor *a)
{
    tr__node *left = NULL;
    tr__node *n = tr__mpsc_pop_keep(&a->mailbox, &a->mailbox_stub, &a->mailbox_end, &left);
    if (left != NULL)
        tr__msg_release((tr_msg *)left);
    return n;
}

/* The owner, done with a message it took: freed unless the mailbox keeps it. */
static inline void tr__mailbox_done(tr__actor *a, tr_msg *m)
{
    if (!tr__mpsc_kept(&a->mailbox_end, &m->tr__link))
        tr__msg_release(m);
}

/* The owner: whether every message has been taken. */
static inline bool tr__mailbox_is_empty(tr__actor *a)
{
    return tr__mpsc_is_empty_keep(&a->mailbox, &a->mailbox_stub, &a->mailbox_end);
}

/* The owner: marks the mailbox empty if every message has been taken
 * (mailbox/mpsc.h); after a true, a's owner must not touch it again. */
static inline bool tr__mailbox_mark_empty(tr__actor *a)
{
    tr__node *left = NULL;
    bool marked = tr__mpsc_mark_empty_keep(&a->mailbox, &a->mailbox_stub, &a->mailbox_end, &left);
    if (left != NULL)
        tr__msg_release((tr_msg *)left);
    return marked;
}

/* Frees every message left in a's mailbox: no sender is left (the
 * runtime is being destroyed). */
static inline void tr__mailbox_fini(tr__actor *a)
{
    tr__node *n;
    while ((n = tr__mailbox_pop(a)) != NULL)
        tr__mailbox_done(a, (tr_msg *)n);
    if ((n = tr__mpsc_kept_node(&a->mailbox_end)) != NULL)
        tr__msg_release((tr_msg *)n);
}

/* A chunk: TR__CHUNK_SLOTS slots, 64-byte aligned, then their side
 * records (table.c). */
#define TR__CHUNK_BYTES (TR__CHUNK_SLOTS * (sizeof(tr__actor) + sizeof(tr__side)))

/* Slot a's side record, found from the slot alone: its chunk's slots end
 * TR__CHUNK_SLOTS - i slots after it, and the records follow. */
static inline tr__side *tr__side_of(tr__actor *a)
{
    uint32_t i = a->index & (TR__CHUNK_SLOTS - 1);
    return (tr__side *)((char *)(a + (TR__CHUNK_SLOTS - i)) + (size_t)i * sizeof(tr__side));
}

/* Writes a's flags. Only the actor's own turns write them (and its
 * spawner, before it is born), but a worker still draining the slot's
 * previous life reads them at that turn's end (actor.c, after_turn) while
 * a spawn on another thread fills the slot in: so every write is an
 * atomic store, and reads off the owner's turns atomic loads. */
static inline void tr__flags_store(tr__actor *a, unsigned flags)
{
    ck_pr_store_16(&a->flags, (uint16_t)flags);
}

/* a's fault record (links, monitors, asks, a spec's callbacks), or NULL. */
static inline struct tr__fault *tr__fault_get(tr__actor *a)
{
    return (a->flags & TR__FAULTS) ? tr__side_of(a)->fault : NULL;
}

/* Gives a the fault record f, or none (f NULL). Owner only. */
static inline void tr__fault_set(tr__actor *a, struct tr__fault *f)
{
    if (f != NULL) {
        tr__side_of(a)->fault = f;
        tr__flags_store(a, a->flags | TR__FAULTS);
    } else {
        tr__flags_store(a, a->flags & ~TR__FAULTS);
    }
}

/* The owner's group of a's side record, for incarnation `life`, started
 * again from zero if it held an earlier one's. */
static inline tr__side *tr__side_own(tr__actor *a, uint32_t life)
{
    tr__side *s = tr__side_of(a);
    if (CK_CC_UNLIKELY(ck_pr_load_32(&s->own_life) != life)) {
        ck_pr_store_32(&s->links, 0);
        ck_pr_store_32(&s->monitors, 0);
        ck_pr_store_32(&s->turns_hi, 0);
        ck_pr_fence_store();
        ck_pr_store_32(&s->own_life, life);
    }
    return s;
}

/* A new incarnation's figures in the slot start at zero (new_actor,
 * actors/actor.c); those in the side record by their tags. Resetting
 * `handled` (and the count it is the depth against) rather than keeping
 * its value at birth keeps the slot within 120 bytes. A worker may still
 * be draining the slot's stale messages (a slot is reused at once): its
 * turn counts them for the new actor — figures, not accounts — and one
 * whose load of turns or handled comes just before these stores and its
 * store just after leaves the old count in place, a window of two
 * instructions in a reuse that is itself rare (the old birth count closed
 * it for handled, not for turns). */
static inline void tr__figures_reset(tr__actor *a)
{
    ck_pr_store_32(&a->turns, 0);
    ck_pr_store_32(&a->last_run, 0);
    ck_pr_store_64(&a->handled, 0);
    ck_pr_store_32(&a->pushed, 0);
    ck_pr_store_32(&a->wait, 0);
}

/* tr__mailbox_mark_empty for the running actor's turn end, `handled` its
 * count as the turn left it. First, the
 * depth's count starts again from `handled` if racing senders lost some
 * of it (it is behind): senders count before they push, so a count that
 * nobody lost is never behind, and one sender's is left exact. */
static inline bool tr__actor_mark_idle(tr__actor *a, uint32_t handled)
{
    if (CK_CC_UNLIKELY((int32_t)(ck_pr_load_32(&a->pushed) - handled) < 0))
        ck_pr_store_32(&a->pushed, handled);
    return tr__mailbox_mark_empty(a);
}

/* The turn's count wrapped: its high half goes on in the side record. */
void tr__figures_carry(tr__actor *a);

/* A worker's own supply of slots (passed in by the caller): a magazine
 * of freed ones, and a run of fresh ones taken from the table's end
 * TR__FRESH_RUN at a time. Slots are 120 bytes, so neighbours share cache
 * lines: a run keeps them the same worker's (skynet, 2 workers: 7% less
 * time than one fresh slot at a time), and a burst of spawns takes the
 * table's shared `next` once a run instead of once an actor. Every other
 * thread — the main thread, a foreign thread spawning or arming timers —
 * shares one magazine and one run of fresh slots, handed out apart (see
 * "Spawns from outside" above), under a spinlock: those callers are not
 * on a hot path, and without a cache of freed slots they could only ever
 * take fresh ones, so a server whose main thread spawns would grow its
 * table without bound. */
#define TR__FRESH_RUN 16
typedef struct tr__slot_cache {
    tr__magazine free;
    uint32_t fresh, fresh_end; /* fresh slots [fresh, fresh_end) are ours */
} tr__slot_cache;

/* An empty cache whose magazine keeps its spare chains in room
 * (TR__MAG_SPARES entries, as long as the cache lives). */
void tr__slot_cache_init(tr__slot_cache *c, tr__node **room);

typedef struct tr__table {
    tr__actor **chunks;   /* TR__MAX_SLOTS / TR__CHUNK_SLOTS entries */
    uint32_t next;        /* slots handed out from fresh chunks */
    tr__depot free;       /* full batches of free slots */
    uint32_t shared_lock;
    tr__magazine shared;  /* for callers without a magazine, under the lock */
    uint32_t apart_base, apart_len, apart_k; /* their run of fresh slots,
                                              * under the lock (table.c) */
    tr__node *stash;      /* full batches the depot refused (table.c) */
} tr__table;

int tr__table_init(tr__table *t);

/* Releases every live actor's resources (tr__actor_release, reason
 * TR_EXIT_SHUTDOWN), frees every chunk, heap state and queued message. No
 * other thread may use the table. */
void tr__table_fini(tr__table *t, tr_runtime *rt);

/* A free slot, from the worker's cache (NULL: the shared magazine) or a
 * fresh chunk. NULL with *err = TR_EAGAIN (table full) or TR_ENOMEM. */
tr__actor *tr__table_alloc(tr__table *t, tr__slot_cache *c, int *err);

/* Ends incarnation `life` of slot a: its pid becomes a dead letter. */
void tr__table_end(tr__actor *a, uint32_t life);

/* Gives an ended slot back for reuse through c, the calling worker's
 * cache (NULL: the shared magazine, for other threads). Only the worker that
 * runs the actor may do so — or, for a slot whose behaviour never runs (a
 * timer's), the worker polling the reactor when the timer's wheel entry
 * comes due; or the spawner of an actor that was never started (its name
 * was taken), which nobody else can name. */
void tr__table_give(tr__table *t, tr__slot_cache *c, tr__actor *a);

/* The end of a live actor, before the end is published: its resources
 * are released (last added first), then its spec's on_stop runs, once
 * (actors/actor.c). */
void tr__actor_release(tr_runtime *rt, tr__actor *a, int reason);

/* Slots ever taken from fresh chunks, by a spawn or into a worker's run:
 * the table's size. Any thread. */
uint32_t tr__table_size(tr__table *t);

/* The slot a pid names, or NULL if no such slot was ever taken (one in a
 * worker's run that no spawn used yet reads as never issued). */
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
