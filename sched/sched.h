/* sched/sched.h — the runtime, its workers and the scheduler (internal).
 *
 * Run queues (runq.h). Each worker owns a bounded ck_ring used SPMC: the
 * owner pushes and pops, other workers steal with ck_ring_trydequeue_spmc.
 * An actor made runnable by a behaviour goes into its worker's LIFO slot
 * first, so that a reply runs next while its data is still in cache (the
 * ping-pong pattern, which therefore stays on one worker however many
 * there are); the actor it displaces goes to the ring. Overflow and
 * submissions from outside go to a global injection queue: an intrusive
 * MPSC queue (mailbox/mpsc.h) whose consumer side is taken with a
 * try-lock, so a worker never waits for it.
 *
 * Sharing by cost (worker.c). Moving an actor to another core costs far
 * more than running a short behaviour: a wake-up, a steal, and then a
 * cache miss for every message it exchanges with the actors left behind.
 * So each worker keeps a running estimate of what a turn costs it, and
 * shares its ring — wakes another worker, lets a thief take half — only
 * once the ring holds about SHARE_NS (100 us) of turns. Floods of short
 * behaviours stay on the worker that made them (fjthroughput: 9 M
 * messages/s on 2 workers when every readied actor was stolen, 50 M
 * now), while heavy turns spread after a few. Readiness has its own
 * threshold (SHARE_POLLED, worker.c).
 *
 * Searching and parking. `idle` counts parked workers (low half) and
 * searching workers (high half). A worker out of work looks once at every
 * ring and the injection queue; if it finds nothing it searches for a few
 * rounds more — at most half the busy workers search at once, as searching
 * burns a core — and then parks: on its futex, or, if nobody is polling,
 * in the reactor's epoll_wait (reactor.h), so that readiness and timers
 * wake a worker directly. Whoever makes work worth sharing wakes one
 * parked worker, but only when no worker is already searching: the
 * searcher will find it. Both sides publish first and look second,
 * across a full fence, so a push and a park cannot miss each other.
 *
 * More workers than CPUs. Awake workers beyond the CPUs this process may
 * run on would only take turns on the same cores, so the extra ones stand
 * by: a worker out of work parks without searching while as many others
 * are awake and making progress (they finished MEASURE_TURNS turns in the
 * last STUCK_NS), and wake-ups skip them likewise. A worker stuck in a
 * long turn (or blocked in one) does not count, so the others step in.
 *
 * The monitor (monitor.c). Workers poll the reactor between turns by
 * count, not by clock; a thread of the runtime's own reads the clock once
 * a millisecond while workers are busy and something is watched, and asks
 * the workers for a poll when the reactor is late.
 *
 * Backpressure (backpressure.c). A receiver that falls behind is marked
 * overloaded, and an actor that sends to it ends its turn and waits on
 * the receiver's wait list, in no queue, until the receiver catches up.
 * A waiting actor's receiver is scheduled until it lets it go (it is
 * behind, so it has messages), so quiescence still sees the work.
 *
 * Quiescence. A mailbox that is not empty is always scheduled (in a queue,
 * in a LIFO slot, or running), and a worker whose ring or LIFO slot holds
 * an actor is not parked. So when every worker is parked, every queue is
 * empty and no hold is taken (watched descriptors, pending timers and
 * signal subscriptions each hold the runtime), no message is pending: the
 * last worker to park sees that and ends the run.
 */
#ifndef TR_SCHED_SCHED_H
#define TR_SCHED_SCHED_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "../actors/actor.h"
#include "../actors/context.h"
#include "../actors/fault.h"
#include "../reactor/reactor.h"
#include "runq.h"
#include "troupe/runtime.h"

/* Counters are written by their worker only and read by tr_runtime_stats. */
typedef struct tr__counters {
    uint64_t sent, handled, dead, spawned, stopped, steals, parks;
} tr__counters;

/* What a worker last saw of one receiver's progress (backpressure.c). */
typedef struct tr__watch {
    tr__actor *actor;
    uint32_t handled;   /* its count of messages taken, then */
} tr__watch;

#define TR__WATCHES 8 /* receivers remembered per worker (a power of two) */

struct tr__worker {
    tr__runq runq;
    tr_runtime *rt;
    tr__actor *lifo;
    unsigned lifo_streak;
    unsigned tick;
    uint32_t poll_asked;      /* set by the monitor: poll between the next
                               * two turns (monitor.c) */
    uint64_t rng;
    tr__magazine slots;
    tr__counters count;
    bool dispatching;         /* inside tr__reactor_dispatch (SHARE_POLLED) */
    uint32_t share_at;        /* ring size worth sharing (worker.c, SHARE_NS);
                               * read by thieves */
    uint64_t turn_ns;         /* running estimate of a turn's cost */
    uint64_t mark_ns;         /* when the turns being measured began */
    unsigned mark_turns;
    unsigned watch_every;     /* busy sends between two looks */
    unsigned watch_countdown; /* busy sends until the next look */
    tr__watch watch[TR__WATCHES];
    tr_ctx cx;
    unsigned id;
    pthread_t thread;
    uint32_t park CK_CC_CACHELINE; /* futex word: AWAKE, PARKED or NOTIFIED */
} CK_CC_CACHELINE;

struct tr_runtime {
    tr_config cfg;
    tr_ctx outside_cx;    /* tr_runtime_ctx: for threads outside the runtime */
    tr__worker *workers;
    tr__table table;

    tr__injectq inject CK_CC_CACHELINE;

    uint64_t idle CK_CC_CACHELINE;  /* parked | searching << 32 */
    uint32_t holds;
    uint32_t wake_cursor;
    uint32_t cpus;       /* CPUs this process may run on */
    uint32_t polling;    /* a worker is asleep in the reactor (worker.c, park) */
    uint32_t poll_timed; /* the worker asleep in the reactor will look again
                          * within STUCK_NS (worker.c, park_polling) */

    uint64_t next_ref;   /* monitor references */
    struct tr__registry *registry; /* named actors, made on first use */
    tr_pid dead_sink;    /* TR_PID_NONE, or the actor that sees dead letters */

    uint32_t running CK_CC_CACHELINE;
    uint32_t stop;
    uint32_t done;
    uint32_t monitor;    /* the monitor's futex word (monitor.c) */
    pthread_t monitor_thread;

    /* From threads outside the runtime. */
    tr__counters outside CK_CC_CACHELINE;

    tr__reactor reactor;
};

/* The runtime's idle word: parked workers in the low half, searching
 * ones in the high half. */
#define PARKED_ONE UINT64_C(1)
#define SEARCHING_ONE (UINT64_C(1) << 32)
#define N_PARKED(s) ((uint32_t)(s))
#define N_SEARCHING(s) ((uint32_t)((s) >> 32))

/* The worker the calling thread is, or NULL. */
tr__worker *tr__worker_current(void);

/* Makes an actor runnable after a send turned its mailbox non-empty. w is
 * the sending worker of this runtime, or NULL for an outside thread. */
void tr__sched_ready(tr_runtime *rt, tr__worker *w, tr__actor *a);


/* Puts back an actor that still has (or may have) messages after its turn. */
void tr__sched_requeue(tr__worker *w, tr__actor *a);

/* Backpressure (backpressure.c). The muted word's bits: */
#define TR__OVERLOADED UINT64_C(1) /* behind: senders wait on it */
#define TR__WAITING UINT64_C(2)    /* waiting on another (or just let go) */

/* The watch's period for a batch size. */
unsigned tr__bp_watch_every(unsigned batch);

/* A look at a receiver's progress (out of line: once a period). */
void tr__bp_look(tr__worker *w, tr__actor *a);

/* After w queued a message for a whose mailbox was busy (the push did not
 * make it runnable): a sending turn is to wait if a is overloaded; and
 * every so many such sends, the receiver's progress is looked at. */
static inline void tr__bp_sent(tr__worker *w, tr__actor *a)
{
    if (ck_pr_load_64(&a->muted) & TR__OVERLOADED) {
        tr__actor *running = tr__cx_actor(&w->cx);
        if (running != NULL && running != a)
            tr__cx_give_way(&w->cx, a);
    } else if (--w->watch_countdown == 0) {
        tr__bp_look(w, a);
    }
}

/* Clears an idle actor's word and lets its waiters go (unless it has
 * started waiting itself since: then the word is its new turn's). Run
 * late, after the actor was scheduled again, it may clear an OVERLOADED
 * that the new turn set: harmless, the next turn end sets it again if the
 * actor is still behind, and its waiters are only let go early. */
void tr__bp_clear_idle(tr__worker *w, tr__actor *a);

/* After a's mailbox was marked empty: a look may have marked it
 * overloaded meanwhile, and a sender may be waiting on it (Dekker with
 * the look: it marks, then looks at the mailbox). */
static inline void tr__bp_went_idle(tr__worker *w, tr__actor *a)
{
    ck_pr_fence_atomic_load();
    if (ck_pr_load_64(&a->muted) != 0)
        tr__bp_clear_idle(w, a);
}

/* Ends a's turn on w: a waits for blocked_by (NULL if it sent to no
 * overloaded actor), or is requeued as overloaded if behind, or lets its
 * waiters go and is marked idle or requeued. (A turn with none of these
 * and a clear word only needs the last step: actor.c does it inline.) */
void tr__bp_turn_end(tr__worker *w, tr__actor *a, bool behind, tr__actor *blocked_by);

/* Spawn and send for both sides: w is the calling worker, or NULL for a
 * thread outside the runtime (actors/actor.c). tr__send owns m. */
int tr__spawn(tr_runtime *rt, tr__worker *w, tr_behaviour fn, const void *state,
              size_t state_size, tr_pid *pid);
int tr__send(tr_runtime *rt, tr__worker *w, tr_pid from, tr_pid to, tr_msg *m);

/* tr__send of a fresh copy of len bytes of data, any type. */
int tr__send_copy(tr_runtime *rt, tr__worker *w, tr_pid from, tr_pid to, uint32_t type,
                  const void *data, size_t len);

/* The one spawn path: every public spawn, supervisor children and socket
 * actors come here. spawner is what init is told (TR_PID_NONE from
 * outside); o may be NULL (no resource, callbacks get the whole state, no
 * record made by the caller). */
int tr__spawn_spec(tr_runtime *rt, tr__worker *w, tr_pid spawner, const tr_actor_spec *spec,
                   const tr__spawn_opts *o, tr_pid *pid);

/* Sends a payload-less message of any type, reserved ones included, from
 * the running actor (or from outside when cx is NULL). */
int tr__send_system(tr_runtime *rt, tr_ctx *cx, tr_pid to, uint32_t type);

/* Has fn(cx, state) called once as the running actor's turn ends, after
 * the last message of the turn, as if it were one more message: the
 * place for work that is cheaper once per turn than once per message (a
 * connection writes what its turn queued in one writev). One function
 * per turn; it may stop the actor. */
void tr__at_turn_end(tr_ctx *cx, void (*fn)(tr_ctx *cx, void *state));

/* The state of the running actor if its behaviour is `fn`, else NULL. */
void *tr__actor_state_if(tr_ctx *cx, tr_behaviour fn);

/* Runs one turn of an actor on worker w (actors/actor.c). */
void tr__actor_run(tr__worker *w, tr__actor *a);

/* Worker thread entry (sched/worker.c). */
void *tr__worker_main(void *arg);

/* Wakes every parked worker (stop, end of run). Async-signal-safe. */
void tr__sched_wake_all(tr_runtime *rt);

/* The monitor (monitor.c): started after the workers, joined after them.
 * tr__monitor_wake: after a hold is taken or a worker wakes, so that the
 * monitor ticks again if it slept for want of work (any thread, cheap:
 * one load when it is ticking). tr__monitor_stop: at the end of a run;
 * async-signal-safe. */
int tr__monitor_start(tr_runtime *rt);
void tr__monitor_join(tr_runtime *rt);
void tr__monitor_wake(tr_runtime *rt);
void tr__monitor_stop(tr_runtime *rt);

/* Wakes one parked worker if all are parked (a hold was released). */
void tr__sched_poke(tr_runtime *rt);

/* A worker's pseudo-random number (xorshift64). */
static inline uint64_t tr__rand(tr__worker *w)
{
    uint64_t x = w->rng;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return w->rng = x;
}

static inline void tr__count(uint64_t *c)
{
    ck_pr_store_64(c, ck_pr_load_64(c) + 1);
}

#endif
