/* actors/actors.h — the actors' part of the runtime and of each worker,
 * spawn, send and the turn, and what actors/ asks of the layers above it
 * (internal).
 *
 * The modules form a stack, base < sys < mailbox < actors < sched <
 * reactor < net < dist, and a file includes only from its own module and those below
 * (support/check-includes.sh). Each layer owns its part of the runtime:
 * actors/ the pid table, the registry, the dead-letter sink, monitor refs
 * and the outside context (tr__actors); sched/ the workers, run queues and
 * parking (struct tr_runtime, sched/sched.h); reactor/ its tr__reactor.
 * A lower part is the FIRST member of the struct above it (tr__actors of
 * struct tr_runtime, tr__turner of struct tr__worker; sched.h asserts
 * both), so that actors/ reaches its part from a tr_runtime * or a
 * tr__worker * with a cast, at no cost and without knowing the rest.
 *
 * Upward calls — a send making an actor runnable, a turn's end handing it
 * back, the backpressure looks, timers — are declared here, under
 * "Provided by sched/" and "Provided by reactor/", and defined there:
 * plain calls, as before the split, so the per-message paths cost what
 * they did.
 */
#ifndef TR_ACTORS_ACTORS_H
#define TR_ACTORS_ACTORS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "actor.h"
#include "context.h"
#include "troupe/metrics.h"

/* Counters are written by their worker only (tr__count) and read by
 * tr_runtime_stats; the outside threads' are shared (atomic adds). */
typedef struct tr__counters {
    uint64_t sent, handled, dead, spawned, stopped;
} tr__counters;

/* Adds c's counters to sum's, `words` of them: for structs made of
 * uint64_t counters only (tr__counters, sched's per-worker metrics), each
 * written by one thread and read here word by word. TR__COUNTERS_ADD
 * takes the two structs. */
static inline void tr__counters_add(uint64_t *sum, const uint64_t *c, size_t words)
{
    for (size_t i = 0; i < words; i++)
        sum[i] += ck_pr_load_64(&c[i]);
}
_Static_assert(sizeof(tr__counters) == 5 * sizeof(uint64_t),
               "tr__counters holds uint64_t counters only (TR__COUNTERS_ADD)");
#define TR__COUNTERS_ADD(sum, c)                                                          \
    tr__counters_add((uint64_t *)(void *)(sum), (const uint64_t *)(const void *)(c),     \
                     sizeof *(c) / sizeof(uint64_t))

static inline void tr__count(uint64_t *c)
{
    ck_pr_store_64(c, ck_pr_load_64(c) + 1);
}

/* The actors' part of a runtime: the first member of struct tr_runtime. */
typedef struct tr__actors {
    tr__table table;
    unsigned batch;                /* tr_config.batch: messages per turn */
    bool tracing;                  /* spawns and stops go to the trace
                                    * (set at creation, sched/trace.c) */
    bool asym_fence;               /* an ending actor and a registration
                                    * fence asymmetrically (base/fence.h) */
    tr_pid dead_sink;              /* TR_PID_NONE, or the actor that sees dead letters */
    struct tr__registry *registry; /* named actors, made on first use */
    tr_ctx outside_cx;             /* tr_runtime_ctx: for threads outside the runtime */
    uint64_t coarse_ns CK_CC_CACHELINE; /* CLOCK_MONOTONIC, coarse: stored once a
                                         * tick by the monitor and as a worker
                                         * wakes (sched/metrics.c); read per
                                         * turn instead of the clock */
    uint32_t coarse_run;           /* the same >> TR__RUN_SHIFT: a turn's
                                    * last-run stamp (actor.h), stored
                                    * ready rather than shifted per turn */
    uint64_t next_ref CK_CC_CACHELINE; /* monitor references */
    tr__counters outside CK_CC_CACHELINE; /* from threads outside the runtime */
} tr__actors;

/* Stores the coarse clock (the monitor's tick, a worker waking). */
static inline void tr__actors_coarse(tr__actors *s, uint64_t now)
{
    ck_pr_store_64(&s->coarse_ns, now);
    ck_pr_store_32(&s->coarse_run, (uint32_t)(now >> TR__RUN_SHIFT));
}

/* The actors' part of a worker: the first member of struct tr__worker. */
typedef struct tr__turner {
    tr_runtime *rt;
    tr__slot_cache slots;     /* actor slots (actor.h, tr__table) */
    tr__counters count;
    unsigned watch_countdown; /* busy sends until the next backpressure
                               * look (sched/backpressure.c) */
    tr_ctx cx;
} tr__turner;

/* The parts, from the whole (the first-member rule, asserted in sched.h). */
static inline tr__actors *tr__actors_of(tr_runtime *rt)
{
    return (tr__actors *)(void *)rt;
}

static inline tr__turner *tr__turner_of(tr__worker *w)
{
    return (tr__turner *)(void *)w;
}

/* Makes the actors' part of rt (the table, the outside context): 0 or
 * TR_ENOMEM. Fini releases every live actor (TR_EXIT_SHUTDOWN), then the
 * table and the registry; no worker may be running. */
int tr__actors_init(tr_runtime *rt, unsigned batch);
void tr__actors_fini(tr_runtime *rt);

/* ---- spawn, send, the turn (actor.c) ---- */

/* Spawn and send for both sides: w is the calling worker, or NULL for a
 * thread outside the runtime. tr__send owns m. */
int tr__spawn(tr_runtime *rt, tr__worker *w, tr_behaviour fn, const void *state,
              size_t state_size, tr_pid *pid);
int tr__send(tr_runtime *rt, tr__worker *w, tr_pid from, tr_pid to, tr_msg *m);

/* tr__send of a fresh copy of len bytes of data, any type. */
int tr__send_copy(tr_runtime *rt, tr__worker *w, tr_pid from, tr_pid to, uint32_t type,
                  const void *data, size_t len);
/* The same for a message the runtime owes `to` (an exit signal, a DOWN,
 * an ask's failure): out of memory, it comes from the reserve
 * (tr__msg_new_owed, mailbox/msg.c). len at most 96. */
int tr__send_owed(tr_runtime *rt, tr__worker *w, tr_pid from, tr_pid to, uint32_t type,
                  const void *data, size_t len);

/* The one spawn path: every public spawn, supervisor children and socket
 * actors come here. spawner is what init is told (TR_PID_NONE from
 * outside); o may be NULL (no resource, callbacks get the whole state, no
 * record made by the caller). */
int tr__spawn_spec(tr_runtime *rt, tr__worker *w, tr_pid spawner, const tr_actor_spec *spec,
                   const tr__spawn_opts *o, tr_pid *pid);

/* Sends a payload-less message of any type, reserved ones included, from
 * the running actor (or from outside when cx is NULL). Every one is a
 * control message the runtime relies on (a socket's start, its note to
 * read on, a listener's or a node connection's close, a supervisor's
 * start), so it is owed: tr__send_owed. */
int tr__send_system(tr_runtime *rt, tr_ctx *cx, tr_pid to, uint32_t type);

/* Has fn(cx, state) called once as the running actor's turn ends, after
 * the last message of the turn, as if it were one more message: the
 * place for work that is cheaper once per turn than once per message (a
 * connection writes what its turn queued in one writev; an asker stamps
 * its asks' deadlines from one reading of the clock, ask.c). Two
 * functions at most a turn, called in the order given (a function given
 * twice counts once); either may stop the actor, and then the second is
 * not called. */
void tr__at_turn_end(tr_ctx *cx, void (*fn)(tr_ctx *cx, void *state));

/* The state of the running actor if its behaviour is `fn`, else NULL. */
void *tr__actor_state_if(tr_ctx *cx, tr_behaviour fn);

/* Runs one turn of an actor on worker w (called by sched/worker.c). */
void tr__actor_run(tr__worker *w, tr__actor *a);

/* ---- an actor's figures (figures.c) ---- */

/* Fills *out with the figures of pid, the actor in slot a, but for state
 * RUNNING (only sched/ knows what the workers run): false, out zeroed or
 * partly filled, if pid is not a live actor. Any thread. */
bool tr__figures_read(tr_runtime *rt, tr__actor *a, tr_pid pid, tr_actor_figures *out);

/* Messages waiting (an estimate: figures.c) and taken, of slot a's actor. */
uint64_t tr__figures_mailbox(tr__actor *a);
uint64_t tr__figures_handled(tr__actor *a);
/* The busy time of slot a's incarnation `life` (0 if not sampled yet). */
uint64_t tr__figures_busy(tr__actor *a, uint32_t life);

/* ---- provided by sched/ ---- */

/* The worker the calling thread is, or NULL (worker.c). */
tr__worker *tr__worker_current(void);

/* A hold on the runtime from w's spare ones, and holds given back to
 * them: no shared word moves but once a block (sched/sched.h). In a turn
 * on w only. */
void tr__sched_spare_take(tr__worker *w);
void tr__sched_spare_give(tr__worker *w, uint32_t n);

/* Whether rt is running and neither stopping nor done (runtime.c). */
bool tr__sched_running(tr_runtime *rt);

/* In simulation, runs the simulated runtimes on the calling thread (one
 * outside the runtime: tr_call) until *done or rt cannot go on (stopped,
 * quiescent, a liveness failure); returns *done (sim.c). */
bool tr__sched_drive(tr_runtime *rt, const bool *done);

/* Whether another thread is running the simulation now (sim.c): a call
 * or a join from this one would run it on two threads at once. */
bool tr__sim_driven_elsewhere(void);

/* Makes an actor runnable after a send turned its mailbox non-empty. w is
 * the sending worker, or NULL for an outside thread (worker.c). */
void tr__sched_ready(tr_runtime *rt, tr__worker *w, tr__actor *a);

/* Puts back an actor that still has (or may have) messages after its turn
 * (worker.c). */
void tr__sched_requeue(tr__worker *w, tr__actor *a);

/* Records a spawn or a stop in the trace (trace.c): called only while
 * tr__actors.tracing is set, from a worker w or from outside (w NULL). */
enum { TR__TRACE_SPAWN = 1, TR__TRACE_STOP = 2 };
void tr__trace_actor(tr_runtime *rt, tr__worker *w, unsigned kind, tr_pid pid, tr_behaviour fn);

/* Backpressure (backpressure.c; the design is in sched/sched.h). The
 * muted word's bits (tr__actor.muted): */
#define TR__OVERLOADED UINT64_C(1) /* behind: senders wait on it */
#define TR__WAITING UINT64_C(2)    /* waiting on another (or just let go) */

/* A look at a receiver's progress (out of line: once a period). */
void tr__bp_look(tr__worker *w, tr__actor *a);

/* Clears an idle actor's word and lets its waiters go (unless it has
 * started waiting itself since: then the word is its new turn's). Run
 * late, after the actor was scheduled again, it may clear an OVERLOADED
 * that the new turn set: harmless, the next turn end sets it again if the
 * actor is still behind, and its waiters are only let go early. */
void tr__bp_clear_idle(tr__worker *w, tr__actor *a);

/* Ends a's turn on w: a waits for blocked_by (NULL if it sent to no
 * overloaded actor), or is requeued as overloaded if behind, or stays
 * overloaded with its waiters if it holds its senders (held: TR__HOLDING,
 * alive), or lets its waiters go and is marked idle or requeued. (A turn
 * with none of these and a clear word only needs the last step: actor.c
 * does it inline.) */
void tr__bp_turn_end(tr__worker *w, tr__actor *a, bool behind, bool held, tr__actor *blocked_by);

/* After w queued a message for a whose mailbox was busy (the push did not
 * make it runnable): a sending turn is to wait if a is overloaded; and
 * every so many such sends, the receiver's progress is looked at. Inline
 * here, on the send path; the looks are sched/'s. */
static inline void tr__bp_sent(tr__worker *w, tr__actor *a)
{
    tr__turner *t = tr__turner_of(w);
    if (ck_pr_load_64(&a->muted) & TR__OVERLOADED) {
        tr__actor *running = tr__cx_actor(&t->cx);
        if (running != NULL && running != a)
            tr__cx_give_way(&t->cx, a);
    } else if (--t->watch_countdown == 0) {
        tr__bp_look(w, a);
    }
}

/* After a's mailbox was marked empty: a look may have marked it
 * overloaded meanwhile, and a sender may be waiting on it (Dekker with
 * the look: it marks, then looks at the mailbox). */
static inline void tr__bp_went_idle(tr__worker *w, tr__actor *a)
{
    ck_pr_fence_atomic_load();
    if (ck_pr_load_64(&a->muted) != 0)
        tr__bp_clear_idle(w, a);
}

/* ---- provided by reactor/ (timer.c) ---- */

/* A one-shot timer from the running actor to itself with a reserved type
 * (supervisor shutdowns, connect timeouts, accept retries). */
int tr__timer_system(tr_ctx *cx, uint64_t delay_ns, uint32_t type, uint64_t *timer);
/* The same with a payload. */
int tr__timer_self(tr_ctx *cx, uint64_t delay_ns, uint32_t type, const void *data, size_t len,
                   uint64_t *timer);
/* A one-shot timer to the running actor that does not hold the runtime
 * open: a run may end with it pending, and it fires in a later one (an
 * asker's timeouts, ask.c, which holds the runtime itself while it
 * waits). Cancelled like any timer. */
int tr__timer_weak(tr_ctx *cx, uint64_t delay_ns, uint32_t type, uint64_t *timer);

/* ---- provided by dist/ (route.c's part of node.c, signals.c) ----
 * The send path's one entry into the distribution (another node's pids). */

/* For a pid whose node bits are not 0 (tr__send): hands m (a message, or
 * a link or monitor request or signal) to that node's connection actor.
 * Owns m. 0 (handed over; or the pid's connection is gone: a dead
 * letter, and a link or monitor request is answered noproc, an ask
 * fails, as for a local actor that has ended), TR_ENOPID (this runtime is
 * not a node), TR_EMSGSIZE (past TR_DIST_MSG_MAX), TR_ENOMEM. */
int tr__dist_route(tr_runtime *rt, tr__worker *w, tr_pid from, tr_pid to, tr_msg *m);

/* For dist/: a message to another node's pid that cannot go is a dead
 * letter as a local one is (counted in dead_letters, copied to the sink,
 * a request answered noproc). m stays the caller's. Any thread. */
void tr__dead_letter(tr_runtime *rt, tr__worker *w, tr_msg *m);

/* A TR__DIST_OUT (dist/dist.h) that a node connection will not send: it
 * reached the connection as it ended, or was left in its mailbox when it
 * did (a dead letter). The link or monitor request it wraps is answered
 * noconnection, as the connection's end answers those it carried; m
 * stays the caller's; anything else is left alone. Any thread. */
void tr__dist_out_refused(tr_runtime *rt, tr__worker *w, const tr_msg *m);

/* tr_send of a TR_DIST_TERM to another node's pid: the bytes must be one
 * whole term (131 first), TR_EINVAL otherwise; then as tr__dist_route,
 * from the running actor (or from outside). */
int tr__dist_send_term(tr_ctx *cx, tr_pid to, const void *data, size_t len);

#endif
