/* sched/sched.h — the runtime, its workers and the scheduler (internal).
 *
 * Run queues (runq.h). Each worker owns a bounded ck_ring used SPMC: the owner
 * pushes and pops, idle workers steal with ck_ring_trydequeue_spmc. An
 * actor made runnable by a behaviour goes into its worker's LIFO slot
 * first, so that a reply runs next while its data is still in cache (the
 * ping-pong pattern); the actor it displaces goes to the ring. Overflow and
 * submissions from outside go to a global injection queue: an intrusive
 * MPSC queue (mailbox/mpsc.h) whose consumer side is taken with a
 * try-lock, so a worker never waits for it.
 *
 * Parking. `idle` counts parked workers (low half) and searching workers
 * (high half). A worker that runs out of work searches (steals) for a
 * while, then parks on its own futex word. Whoever makes work stealable
 * wakes one parked worker, but only when no worker is already searching:
 * the searcher will find it. Both sides publish first and look second,
 * across a full fence, so a push and a park cannot miss each other.
 *
 * Backpressure. An actor that ends a turn with its batch used up and
 * messages left is overloaded: the low bit of its `muted` word is set. An
 * actor that sends to an overloaded actor (from a behaviour) ends its turn
 * after that message and, instead of being requeued, pushes itself onto
 * the receiver's mute list (the rest of the word: a stack linked through
 * `runq`, pushed with a compare-and-swap that also checks the bit). The
 * receiver, at the end of its first turn that does not use up its batch
 * (and did not stop short at a send still being linked), clears the word
 * in one exchange and requeues every actor it held. So a
 * flood cannot outrun its receiver by more than a turn's worth of sends,
 * and its messages come from warm pool blocks instead of fresh memory.
 * Overloaded actors are never muted, so waits cannot form a cycle; a muted
 * actor is in no queue, but its receiver is scheduled until it lets it go,
 * so quiescence still sees the work. Outside threads are never muted.
 *
 * Quiescence. A mailbox that is not empty is always scheduled (in a queue,
 * in a LIFO slot, or running). So when every worker is parked, every queue
 * is empty and no hold is taken, no message is pending: the last worker to
 * park sees that and ends the run.
 */
#ifndef TR_SCHED_SCHED_H
#define TR_SCHED_SCHED_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "../actors/actor.h"
#include "../actors/fault.h"
#include "../reactor/reactor.h"
#include "runq.h"
#include "troupe/runtime.h"

typedef struct tr__worker tr__worker;

struct tr_ctx {
    tr__worker *worker;
    tr__actor *actor;
    tr_pid self;
    bool stopping;
    struct tr__actor *blocked_by; /* an overloaded actor sent to in this turn */
    int exit_reason;  /* with stopping: why */
    char exit_text[TR_EXIT_TEXT_MAX];
};

/* Counters are written by their worker only and read by tr_runtime_stats. */
typedef struct tr__counters {
    uint64_t sent, handled, dead, spawned, stopped, steals, parks;
} tr__counters;

struct tr__worker {
    tr__runq runq;
    tr_runtime *rt;
    tr__actor *lifo;
    unsigned lifo_streak;
    unsigned tick;
    uint64_t rng;
    tr__magazine slots;
    tr__counters count;
    tr_ctx cx;
    unsigned id;
    pthread_t thread;
    uint32_t park CK_CC_CACHELINE; /* futex word: AWAKE, PARKED or NOTIFIED */
} CK_CC_CACHELINE;

struct tr_runtime {
    tr_config cfg;
    tr__worker *workers;
    tr__table table;

    tr__injectq inject CK_CC_CACHELINE;

    uint64_t idle CK_CC_CACHELINE;  /* parked | searching << 32 */
    uint32_t holds;
    uint32_t wake_cursor;

    uint64_t next_ref;   /* monitor references */
    struct tr__registry *registry; /* named actors, made on first use */
    uint32_t registry_lock;
    tr_pid dead_sink;    /* TR_PID_NONE, or the actor that sees dead letters */

    uint32_t running CK_CC_CACHELINE;
    uint32_t stop;
    uint32_t done;

    /* From threads outside the runtime. */
    tr__counters outside CK_CC_CACHELINE;

    tr__reactor reactor;
};

/* The worker the calling thread is, or NULL. */
tr__worker *tr__worker_current(void);

/* Makes an actor runnable after a send turned its mailbox non-empty. w is
 * the sending worker of this runtime, or NULL for an outside thread. */
void tr__sched_ready(tr_runtime *rt, tr__worker *w, tr__actor *a);

/* Brackets a batch of sends from an outside thread: one wake-up at the
 * end instead of one per message. */
void tr__sched_batch_begin(void);
void tr__sched_batch_end(tr_runtime *rt);

/* Puts back an actor that still has (or may have) messages after its turn. */
void tr__sched_requeue(tr__worker *w, tr__actor *a);

/* Backpressure (see above), at the end of a turn of a on w. */
#define TR__OVERLOADED UINT64_C(1)
static inline bool tr__sched_overloaded(tr__actor *a)
{
    return (ck_pr_load_64(&a->muted) & TR__OVERLOADED) != 0;
}
void tr__sched_overload(tr__actor *a);
/* Lets go of the actors a holds, clearing its overload. */
void tr__sched_unmute(tr__worker *w, tr__actor *a);
/* Puts a on target's mute list; false (a not taken) if target is no
 * longer overloaded. */
bool tr__sched_mute(tr__actor *a, tr__actor *target);

/* Spawn and send for both sides: w is the calling worker, or NULL for a
 * thread outside the runtime (actors/actor.c). tr__send owns m. */
int tr__spawn(tr_runtime *rt, tr__worker *w, tr_behaviour fn, const void *state,
              size_t state_size, tr_pid *pid);
int tr__send(tr_runtime *rt, tr__worker *w, tr_pid from, tr_pid to, tr_msg *m);

/* tr__send of a fresh copy of len bytes of data, any type. */
int tr__send_copy(tr_runtime *rt, tr__worker *w, tr_pid from, tr_pid to, uint32_t type,
                  const void *data, size_t len);

/* tr__spawn for a state that embeds a tr__resource at byte resource_at
 * (or -1): it is on the new actor's list from the start, so it is released
 * even if the actor is destroyed before it ever runs. */
int tr__spawn_with(tr_runtime *rt, tr__worker *w, tr_behaviour fn, const void *state,
                   size_t state_size, ptrdiff_t resource_at, tr__fault *fault, tr_pid *pid);

/* Sends a payload-less message of any type, reserved ones included, from
 * the running actor (or from outside when cx is NULL). */
int tr__send_system(tr_runtime *rt, tr_ctx *cx, tr_pid to, uint32_t type);

/* The state of the running actor if its behaviour is `fn`, else NULL. */
void *tr__actor_state_if(tr_ctx *cx, tr_behaviour fn);

/* Runs one turn of an actor on worker w (actors/actor.c). */
void tr__actor_run(tr__worker *w, tr__actor *a);

/* Worker thread entry (sched/worker.c). */
void *tr__worker_main(void *arg);

/* Wakes every parked worker (stop, end of run). Async-signal-safe. */
void tr__sched_wake_all(tr_runtime *rt);

/* Wakes one parked worker if all are parked (a hold was released). */
void tr__sched_poke(tr_runtime *rt);

static inline void tr__count(uint64_t *c)
{
    ck_pr_store_64(c, ck_pr_load_64(c) + 1);
}

#endif
