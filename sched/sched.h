/* sched/sched.h — the runtime, its workers and the scheduler (internal).
 *
 * Layers. sched/ sits above actors/ and below reactor/ (the order is in
 * actors/actors.h, checked by support/check-includes.sh). struct
 * tr_runtime and struct tr__worker are sched/'s, and each begins with the
 * actors' part (tr__actors: the pid table, names, dead letters, monitor
 * refs, the outside context; tr__turner: what a turn uses of its worker),
 * asserted below, so that actors/ reaches its part with a cast. The
 * reactor is reactor/'s part, held by pointer: sched/ knows it only as
 * the poller declared at the end of this file (provided by reactor/),
 * and what actors/ calls up here is declared in actors/actors.h
 * (provided by sched/). The turn itself (actors/actor.c) is actors/'s:
 * it reads the context's fields, and it calls up here only where it
 * called before — a push that made a mailbox non-empty, a turn's end.
 *
 * Run queues (runq.h). Each worker owns a bounded ck_ring used SPMC: the
 * owner pushes and pops, other workers steal with ck_ring_trydequeue_spmc.
 * An actor made runnable by a behaviour goes into its worker's LIFO slot
 * first, so that a reply runs next while its data is still in cache (the
 * ping-pong pattern, which therefore stays on one worker however many
 * there are); the actor it displaces goes to the ring. A full ring spills
 * its older half, in one batch, into the worker's overflow: the worker
 * takes its spills back newest first when its ring runs dry, thieves take
 * the oldest (so that a tree of spawns is split near its top: runq.h).
 * Submissions from outside go to a global injection queue: an intrusive
 * MPSC queue (mailbox/mpsc.h) whose consumer side is taken with a
 * try-lock, so a worker never waits for it (as does a spill when the
 * overflow's try-lock is taken). While a spill waits, the worker's
 * requeued actors wait too: the first in the worker's held slot, so that
 * a spawner stays on its worker, the others in the injection queue
 * (push_local, tr__sched_requeue).
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
 * Evening out (worker.c). Sharing by cost judges a moment, and an actor
 * readied by a behaviour is queued where that behaviour ran, so actors
 * that talk among themselves (pairs, groups) stay where the run's first
 * microseconds put them, however long they go on. The monitor samples
 * the rings once a millisecond: a worker that has had nothing queued at
 * three samples in a row (awake and not stuck in a long turn, or parked
 * with a CPU free) is asked to take half the ring of one that has had a
 * backlog at each of them, and does so between two turns. A move the taker does not keep busy with
 * doubles the wait for the next one (up to 64 samples).
 *
 * Searching and parking. `idle` counts parked workers (low half) and
 * searching workers (high half). A worker out of work looks once at every
 * ring, every overflow and the injection queue (from the last two it
 * takes a run of actors at once: look, in worker.c); if it finds nothing
 * it searches for a few rounds more — at most half the busy workers
 * search at once, as searching burns a core — and then parks: on its
 * futex, or, if nobody is polling, in the reactor's epoll_wait
 * (reactor.h), so that readiness and timers wake a worker directly.
 * Whoever makes work worth sharing wakes one parked worker, but only when
 * no worker is already searching: the searcher will find it. Both sides
 * publish first and look second, across a full fence, so a push and a
 * park cannot miss each other.
 *
 * More workers than CPUs. Awake workers beyond the CPUs this process may
 * run on would only take turns on the same cores, so the extra ones stand
 * by: a worker out of work parks without searching while as many others
 * take the CPUs — awake and making progress (they finished MEASURE_TURNS
 * turns in the last STUCK_NS), or woken and not yet running — and
 * wake-ups skip them likewise; a worker just woken that finds the CPUs
 * so taken leaves the injection queue to those others and stands by
 * again. A worker stuck in a long turn (or blocked in one) does not
 * count, so the others step in: while wake-ups skip them, one parked
 * worker looks again every STUCK_NS (worker.c, look_again_soon).
 *
 * Placement. By default the kernel places the workers. With
 * tr_config.pin (TROUPE_PIN=1) worker i is bound to the (i mod n)-th of
 * the n CPUs the process may run on (runtime.c), and a wake-up prefers a
 * worker bound to another CPU than the waker's: a kernel that packs woken
 * threads onto the waker's CPU (as this project's VM does) otherwise
 * makes two busy threads share one CPU for a balancing tick while
 * another sits idle. Off by default, for two pinned processes on one
 * machine would share the same first CPUs.
 *
 * The monitor (monitor.c). Workers poll the reactor between turns by
 * count, not by clock; a thread of the runtime's own reads the clock once
 * a millisecond while some worker is awake, asks the workers for a poll
 * when something is watched and the reactor is late, samples what they
 * run for the metrics (metrics.c) and reports turns that run too long
 * (watchdog.c).
 *
 * Backpressure (backpressure.c). A receiver that falls behind is marked
 * overloaded, and an actor that sends to it ends its turn and waits on
 * the receiver's wait list, in no queue, until the receiver catches up.
 * A waiting actor's receiver is scheduled until it lets it go (it is
 * behind, so it has messages), so quiescence still sees the work.
 *
 * Quiescence. A mailbox that is not empty is always scheduled (in a queue,
 * in a LIFO slot, or running), a worker whose ring or LIFO slot holds an
 * actor is not parked, and no worker parks while an overflow holds one.
 * So when every worker is parked, every queue is empty and no hold is
 * taken (watched descriptors, pending timers and
 * signal subscriptions each hold the runtime), no message is pending: the
 * last worker to park sees that and ends the run.
 */
#ifndef TR_SCHED_SCHED_H
#define TR_SCHED_SCHED_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../actors/actor.h"
#include "../actors/actors.h"
#include "../actors/context.h"
#include "../actors/fault.h"
#include "../base/clock.h"
#include "../base/symbol.h"
#include "runq.h"
#include "troupe/metrics.h"
#include "troupe/runtime.h"

/* What a worker last saw of one receiver's progress (backpressure.c). */
typedef struct tr__watch {
    tr__actor *actor;
    uint32_t handled;   /* its count of messages taken, then */
} tr__watch;

#define TR__WATCHES 8 /* receivers remembered per worker (a power of two) */

/* A worker's counters for troupe/metrics.h beyond the turner's: written by
 * the worker with tr__count (or, on the runtime's copy for threads outside
 * it, with atomic adds: tr__metric_add), summed on read (metrics.c).
 * Descriptors and timers are counted as pairs, added and removed, since
 * a watch may end on another thread than the one that made it. */
typedef struct tr__wmetrics {
    uint64_t busy_ns;         /* the monitor's (monitor.c) */
    uint64_t polls, io_events;
    uint64_t fds_added, fds_removed;
    uint64_t timers_added, timers_removed;
    uint64_t lateness[TR_LATENESS_BUCKETS];
    uint64_t lateness_sum_ns;
} tr__wmetrics;

_Static_assert(sizeof(tr__wmetrics) == (8 + TR_LATENESS_BUCKETS) * sizeof(uint64_t),
               "tr__wmetrics holds uint64_t counters only (TR__COUNTERS_ADD)");

struct tr__worker {
    tr__turner turner;        /* first: the actors' part (actors/actors.h) */
    /* The turn in progress, for the monitor (the watchdog, the busy time):
     * turn_seq is incremented, then current set, as a turn begins;
     * current stays set until the worker turns to other work (a poll, a
     * search, a park), when tr__between_turns clears it (worker.c,
     * tr__run_turn). turn_seq is also the worker's count of turns. Plain
     * stores: the clock is not read here (monitor.c says why). */
    uint64_t turn_seq;
    tr__actor *current;
    void (*run)(tr__worker *w, tr__actor *a); /* tr__actor_run, or
                                               * tr__trace_turn (trace.c),
                                               * or sim_turn (sim.c) */
    uint32_t holds_spare;     /* holds taken that nothing needs, given
                               * back when it runs out of work
                               * (tr__sched_spare_give) */
    tr__runq runq CK_CC_CACHELINE; /* thieves take its head: a line of its own */
    tr__actor *lifo;
    unsigned lifo_streak;
    unsigned spilled;         /* actors it spilled to the injection queue
                               * that may still wait there (worker.c) */
    tr__actor *held;          /* requeued while they wait (worker.c) */
    uint64_t held_seq;        /* turn_seq when it was held */
    tr__overflow overflow;    /* where the ring spills (runq.h) */
    uint64_t dry_seq;         /* turn_seq when the ring last ran dry */
    unsigned tick;            /* next_local calls since the injection queue was
                               * last looked at first (INJECT_EVERY, worker.c) */
    struct tr__trace_ring *trace; /* NULL unless tracing (trace.c) */
    uint32_t asked;           /* set by the monitor, for between the next
                               * two turns: TR__ASKED_POLL, a poll
                               * (monitor.c); TR__ASKED_TAKE, a take from
                               * take_from's ring (worker.c, evening out) */
    struct tr__worker *take_from;
    uint64_t rng;             /* the scheduler's jitter (tr__rand): a fixed
                               * seed per worker, as every figure measured */
    uint64_t user_rng;        /* tr_rand in its behaviours: a fresh seed */
    uint64_t steals, parks;   /* counters, like turner.count */
    bool dispatching;         /* inside tr__reactor_dispatch (SHARE_POLLED) */
    uint32_t share_at;        /* ring size worth sharing (worker.c, SHARE_NS);
                               * read by thieves */
    uint64_t turn_ns;         /* running estimate of a turn's cost */
    uint64_t mark_ns;         /* when the turns being measured began */
    uint64_t mark_seq;        /* turn_seq when they began */
    unsigned watch_every;     /* busy sends between two looks */
    tr__watch watch[TR__WATCHES];
    unsigned id;
    uint32_t tid;             /* its thread's kernel id, 0 until it runs
                               * (the watchdog reads the thread's waits);
                               * in the hole before thread */
    pthread_t thread;
    int cpu;                  /* tr_config.pin: the CPU it is to be bound
                               * to, else -1 (runtime.c) */
    int bound;                /* the CPU its thread is bound to, else -1 */
    tr__wmetrics metrics;
    /* The monitor's own, to tell a long turn from many short ones: the
     * turn it saw last tick and for how long it has seen it (metrics.c). */
    uint64_t seen_seq;
    tr__actor *seen;
    uint64_t seen_ns;
    /* The monitor's too: samples in a row that found its ring holding
     * actors, and empty (worker.c, evening out). */
    uint32_t full_ticks, empty_ticks;
    /* Room for turner.slots' spare chains (mailbox/depot.h), used once per
     * TR__BATCH spawns or ends at most: here, not in the turner, whose
     * hot fields it would push two lines further. */
    tr__node *slot_spares[TR__MAG_SPARES];
    uint32_t park CK_CC_CACHELINE; /* futex word: AWAKE, PARKED or NOTIFIED */
} CK_CC_CACHELINE;

/* The reactor (reactor/reactor.h): sched/ knows it only as the poller
 * below. */
typedef struct tr__reactor tr__reactor;

/* The monitor's record of its last move between run queues (worker.c,
 * evening out): who took, its park count then, and how many moves in a
 * row did not last (each doubles the samples a backlog must last before
 * the next move). */
typedef struct tr__even {
    tr__worker *taker;
    uint64_t parks;
    unsigned failed;
} tr__even;

struct tr_runtime {
    tr__actors actors;    /* first: the actors' part (actors/actors.h) */
    tr_config cfg;
    tr__worker *workers;

    tr__injectq inject CK_CC_CACHELINE;

    uint64_t idle CK_CC_CACHELINE;  /* parked | searching << 32 */
    uint32_t holds;
    uint32_t wake_cursor;
    uint32_t cpus;       /* CPUs this process may run on */
    uint32_t polling;    /* a worker is asleep in the reactor (worker.c, park) */
    uint32_t poll_timed; /* the worker asleep in the reactor will look again
                          * within STUCK_NS (worker.c, park_polling) */

    uint32_t running CK_CC_CACHELINE;
    uint32_t stop;
    uint32_t done;
    uint32_t monitor;    /* the monitor's futex word (monitor.c) */
    pthread_t monitor_thread;

    tr__reactor *reactor; /* reactor/'s part, made by tr__reactor_create */
    struct tr__watchdog *watchdog; /* the monitor's (watchdog.c) */
    struct tr__trace *trace;       /* NULL unless tracing (trace.c) */

    tr__wmetrics outside CK_CC_CACHELINE; /* counted off the workers (atomic adds) */
    uint64_t start_ns;    /* CLOCK_REALTIME at creation */
    uint32_t dump_asked;  /* set by the dump signal's handler (metrics.c) */
    uint64_t tick_ns;     /* the monitor's: its last tick */
    tr__even even;        /* the monitor's (worker.c, evening out) */
    struct tr__sim_rt *sim; /* NULL unless simulated (sim.c) */
};

/* The runtime's idle word: parked workers in the low half, searching
 * ones in the high half. */
#define PARKED_ONE UINT64_C(1)
#define SEARCHING_ONE (UINT64_C(1) << 32)
#define N_PARKED(s) ((uint32_t)(s))
#define N_SEARCHING(s) ((uint32_t)((s) >> 32))

/* actors/ reaches its parts with a cast (tr__actors_of, tr__turner_of). */
_Static_assert(offsetof(struct tr_runtime, actors) == 0,
               "tr__actors must be the first member of struct tr_runtime");
_Static_assert(offsetof(struct tr__worker, turner) == 0,
               "tr__turner must be the first member of struct tr__worker");

/* ---- metrics (metrics.c) ---- */

/* Adds v to one of the calling thread's tr__wmetrics counters (field: an
 * offsetof): the worker's own if the caller is a worker of rt, else the
 * runtime's shared copy, atomically. Not for per-message paths. */
void tr__metric_add(tr_runtime *rt, size_t field, uint64_t v);
#define TR__METRIC_ADD(rt, f, v) tr__metric_add((rt), offsetof(tr__wmetrics, f), (v))

/* Timers started and not yet fired or cancelled (tr_metrics'
 * timers_pending): a read of every worker's counters, for the reactor's
 * sweep of cancelled timers (reactor/timer.c), not for hot paths. */
uint64_t tr__timers_pending(tr_runtime *rt);

/* A timer fired `late_ns` after it was due, on worker w (the poller). */
void tr__metric_lateness(tr__worker *w, uint64_t late_ns);

/* The monitor's tick: the coarse clock, busy time and longest turns, and a
 * dump if the signal asked for one. now: the clock it just read. */
void tr__metrics_tick(tr_runtime *rt, uint64_t now);

/* Stores the clock in the coarse word (a worker waking after a park). */
void tr__metrics_coarse(tr_runtime *rt);

/* Forgets rt in the dump signal's table (tr_runtime_destroy). */
void tr__metrics_fini(tr_runtime *rt);

/* Whether the run is over: stopped, or ended quiescent. Any thread. */
static inline bool tr__sched_over(tr_runtime *rt)
{
    return ck_pr_load_32(&rt->stop) || ck_pr_load_32(&rt->done);
}

/* The worker leaves turns for other work: the monitor must not count
 * what follows as the last turn's (tr__run_turn). */
static inline void tr__between_turns(tr__worker *w)
{
    ck_pr_store_ptr(&w->current, NULL);
}

/* Timers started and cancelled in turns take and give back the runtime's
 * holds through their worker's spare ones: a start takes a spare hold,
 * topping the spares up by TR__HOLDS_BLOCK at once when there are none;
 * a cancel gives its hold to the spares; the spares are released when the
 * worker runs out of work, before it searches or parks, and at once past
 * TR__HOLDS_SPARE_MAX (spare_give). So the shared `holds` word — written
 * by every worker that starts timers, and on the line of the `idle` word
 * that searching workers write — moves once a block of starts and once a
 * batch of cancels rather than once a timer, and a turn pays nothing for
 * it (a test at each turn's end cost pingpong 6 instructions a round
 * trip: callgrind, 670 -> 676). The word never falls below the holds in
 * use (a spare is counted in it), so a timer that fires, and whose hold
 * the poller releases, before the turn that started it ends is safe; and
 * no worker parks with spares, so they cannot keep the run from
 * finishing. Spares keep the word above zero while their worker is busy,
 * which only lets the busy workers poll the reactor (poll_busy) as they
 * would for a pending timer. (reactor/timer.c; worker.c.) */
#define TR__HOLDS_BLOCK 64u
#define TR__HOLDS_SPARE_MAX 4096u
/* tr__sched_spare_take and tr__sched_spare_give: actors/actors.h (asks
 * take holds too). */
void tr__sched_settle(tr__worker *w);

/* One turn, published for the monitor (the watchdog, the metrics' busy
 * time): a count and the actor, two plain stores in the worker's own line
 * (the monitor reads them once a tick, so no clock is read here).
 * turn_seq goes before current, so that a monitor that reads current and
 * then turn_seq unchanged knows current is that turn's actor
 * (watchdog.c). current is left set when the turn ends, as the next turn
 * will overwrite it in a moment; it is cleared when the worker turns to
 * other work — a poll, a search, a park (between_turns) — so a sample
 * never lays that work at an actor's door. w->run is tr__actor_run, or
 * tr__trace_turn while tracing (sim_turn under simulation, sim.c): one
 * indirect call, no test a turn. Measured with callgrind on pingpong (two
 * turns a round trip), this form costs 8 instructions a round trip less
 * than clearing current after each turn and testing w->trace. Returns the
 * turn's number. The worker's loop (worker.c) and the simulator's step
 * (sim.c) both run turns so. */
static inline uint64_t tr__run_turn(tr__worker *w, tr__actor *a)
{
    uint64_t seq = w->turn_seq + 1;
    ck_pr_store_64(&w->turn_seq, seq);
    ck_pr_fence_store();
    ck_pr_store_ptr(&w->current, a);
    w->run(w, a);
    return seq;
}

/* What the monitor asks a worker for (its `asked` bits). */
#define TR__ASKED_POLL 1u
#define TR__ASKED_TAKE 2u

/* The monitor's sample of the run queues, once a tick while a worker is
 * awake (now: the tick's reading of the clock): asks a worker that has
 * had nothing queued to take from one that has had a backlog all along
 * (worker.c, evening out). */
void tr__sched_even(tr_runtime *rt, uint64_t now);

/* Wakes every parked worker (stop, end of run). Async-signal-safe. */
void tr__sched_wake_all(tr_runtime *rt);

/* The monitor (monitor.c): started after the workers, joined after them.
 * tr__monitor_wake: after a hold is taken or a worker wakes, so that the
 * monitor ticks again if it slept for want of work (any thread, cheap:
 * one load when it is ticking; async-signal-safe, for the dump signal). tr__monitor_stop: at the end of a run;
 * async-signal-safe. */
int tr__monitor_start(tr_runtime *rt);
void tr__monitor_join(tr_runtime *rt);
void tr__monitor_wake(tr_runtime *rt);
void tr__monitor_stop(tr_runtime *rt);

/* The watchdog (watchdog.c): made by tr_runtime_create from the config
 * (0 or TR_ENOMEM), freed by destroy; the monitor calls tick once a tick
 * while a worker is awake, with the time it read. */
typedef struct tr__watchdog tr__watchdog;
int tr__watchdog_create(tr_runtime *rt, unsigned threshold_ms);
void tr__watchdog_destroy(tr_runtime *rt);
void tr__watchdog_tick(tr_runtime *rt, uint64_t now_ns);

/* The trace (trace.c), made only when a path is configured: 0 or a
 * negative code (the file cannot be opened: -errno; TR_ENOMEM). Write
 * puts everything recorded so far into the file (at the end of each run:
 * tr_runtime_join); destroy frees it. */
int tr__trace_create(tr_runtime *rt, const char *path);
void tr__trace_write(tr_runtime *rt);
void tr__trace_destroy(tr_runtime *rt);

/* Runs one turn of a on w with the trace on: the clock read around it
 * (it is each worker's run while tracing: tr__trace_create sets it). */
void tr__trace_turn(tr__worker *w, tr__actor *a);

/* A timer fired on w (reactor/timer.c, when tracing). */
void tr__trace_timer(tr__worker *w, tr_pid timer, tr_pid target);

/* ---- the simulator (sim.c) ----
 * A runtime created with a seed runs on one thread: its start starts no
 * thread and its join runs the simulator's loop (sim.c has the design). */

/* Makes rt simulated (after tr__sim_enter, once its workers exist): its
 * worker's run becomes the simulator's turn and rt joins the process's
 * list of simulated runtimes. 0 or TR_ENOMEM. Detach undoes it (destroy). */
int tr__sim_attach(tr_runtime *rt);
void tr__sim_detach(tr_runtime *rt);

/* Calls the tr_sim_on_create hook, if one is set, for a new runtime. */
void tr__sim_created(tr_runtime *rt);

/* tr_runtime_join of a simulated runtime: runs every started simulated
 * runtime on the calling thread until rt is quiescent (0) or stopped, or
 * can never go on (1). */
int tr__sim_join(tr_runtime *rt);

/* A poll of w's reactor that does not sleep, between turns; none if
 * another thread holds the reactor (worker.c; the simulator's poll too). */
void tr__sched_poll(tr__worker *w);

/* Makes w the calling thread's worker (NULL: none); returns the one it
 * was (worker.c). The simulator steps each runtime through its worker. */
tr__worker *tr__worker_swap(tr__worker *w);

/* Actor a leaves a run queue to run: its wait there becomes its oldest
 * wait figure (actors/figures.c; worker.c stamps it as it queues it). */
static inline void tr__sched_taken(tr_runtime *rt, tr__actor *a)
{
    uint32_t units = (uint32_t)(ck_pr_load_64(&rt->actors.coarse_ns) >> TR__WAIT_SHIFT);
    ck_pr_store_32(&a->wait, tr__wait_taken(ck_pr_load_32(&a->wait), units));
}

/* Wakes one parked worker if all are parked (a hold was released). */
void tr__sched_poke(tr_runtime *rt);

/* Releases n of rt's holds (n >= 1): 0, or TR_EINVAL if fewer are taken
 * (none is then released). The last wakes a worker to see the end. */
int tr__runtime_release_n(tr_runtime *rt, uint32_t n);

/* The period of the backpressure watch for a batch size (backpressure.c). */
unsigned tr__bp_watch_every(unsigned batch);

/* Worker thread entry (worker.c). */
void *tr__worker_main(void *arg);

/* The next number of a xorshift64 stream (*state never 0). */
static inline uint64_t tr__xorshift64(uint64_t *state)
{
    uint64_t x = *state;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return *state = x;
}

/* A seed for a xorshift64 stream from getrandom (the clock and salt if it
 * fails), never 0 (sim.c). Outside simulation: a simulated run draws from
 * its own seeded stream. */
uint64_t tr__fresh_seed(uint64_t salt);

/* A worker's pseudo-random number. */
static inline uint64_t tr__rand(tr__worker *w)
{
    return tr__xorshift64(&w->rng);
}

/* ---- the poller: provided by reactor/ (reactor.c) ----
 * Like Tokio's Park: the workers poll "a poller" between turns and sleep
 * in it when idle (the protocol is in reactor/reactor.h); these are plain
 * calls, made on the park and poll paths only, never per message. */

/* Makes rt's reactor (descriptors and tables) in *out: 0 or a negative
 * code. Destroy frees it; no worker may be running, pending timers are
 * dropped. */
int tr__reactor_create(tr_runtime *rt, tr__reactor **out);
void tr__reactor_destroy(tr__reactor *r);

/* Takes the reactor's lock if it is free (one try); the holder may poll. */
bool tr__reactor_trylock(tr__reactor *r);
void tr__reactor_unlock(tr__reactor *r);

/* With the lock: files timer requests and waits for events — when
 * `sleep`, until the wheel's next tick (or at most at_most_ns, if not 0),
 * else not at all. Returns the number of events waiting to be dispatched.
 * Any thread may wake a sleeping poller with tr__reactor_wake. */
int tr__reactor_wait(tr__reactor *r, bool sleep, uint64_t at_most_ns);

/* With the lock, on worker w (awake, not counted as parked): fires the
 * timers due by now, dispatches signals and the n events of the wait, as
 * messages sent from w. */
void tr__reactor_dispatch(tr__reactor *r, tr__worker *w, int n);

/* Wakes a poller asleep in epoll_wait. Any thread; async-signal-safe. */
void tr__reactor_wake(tr__reactor *r);

/* Whether a busy worker should poll now: nobody has for a while. */
bool tr__reactor_due(tr__reactor *r, uint64_t now_ns);

/* When a poll last began (monitor.c: is the reactor late?). Any thread. */
uint64_t tr__reactor_polled_ns(tr__reactor *r);

/* With the lock: files timer requests and returns when the wheel's next
 * timer may be due (ns, at a tick's start), UINT64_MAX if none is
 * pending — or now, under simulation, when the reactor's simulated epoll
 * holds a wake-up not yet reported. The simulator's clock jumps there
 * (sim.c). */
uint64_t tr__reactor_next_ns(tr__reactor *r);

#endif
