/* reactor/reactor.h — the epoll reactor, polled by the workers (internal).
 *
 * There is no reactor thread. Whichever worker holds the reactor's lock
 * polls it: it fires the timers due in every worker's wheel (each worker
 * files its own timers: tr__reactor_submit), files those that other
 * threads start, dispatches signals, and turns readiness into TR_IO_*
 * messages — sent from that worker, so that a connection actor made
 * runnable by its readiness lands in the poller's own LIFO slot and runs
 * next, on the thread that learnt of it, with no other thread and no
 * wake-up involved.
 *
 * Who polls (sched/worker.c):
 *   - a worker about to sleep takes the lock if it is free and sleeps in
 *     epoll_wait instead of on its futex (the timerfd is armed for the
 *     wheel's next tick; the eventfd wakes it for new work, a sooner
 *     timer, or the end of the run); the others sleep on their futexes;
 *   - a busy worker polls without blocking every 61 turns (INJECT_EVERY)
 *     if nobody has for POLL_EVERY_NS and something is watched or pending
 *     (a hold is taken), and between its next two turns when the
 *     runtime's monitor (sched/monitor.c) sees the reactor 1 ms late: so
 *     when every worker is busy, timers and readiness wait about 2 ms at
 *     most, plus the turn in progress (counting turns alone let 61 long
 *     turns hold timers for 360 ms).
 *
 * Layering. reactor/ sits above sched/ (actors/actors.h has the order):
 * the reactor is its own allocation, rt->reactor, and the workers know
 * it only as "the poller" whose calls sched/sched.h declares and
 * reactor.c defines (create, trylock, wait, dispatch, wake, due), on the
 * park and poll paths only. Timers for actors/ (asks, supervisors) are
 * likewise declared in actors/actors.h and defined in timer.c.
 *
 * Why not a reactor thread (the design until this one): every readiness
 * event was read on that thread, pushed into the injection queue and
 * handed to a worker with a futex wake — two threads and a wake-up per
 * request where a plain epoll loop uses one thread and none. Measured on
 * echo-rr (64 connections, 2 workers on 2 cores shared with the load
 * generator, bench/run.sh): 175k requests/s and a p99 of 702 us with the
 * reactor thread, 264k and 375 us now, against 282k and 419 us for the
 * plain single-thread epoll loop in the same run. Why not
 * per-worker epoll sets with descriptors owned by workers (the
 * thread-per-core model): a connection actor is stolen like any other, so
 * its readiness would keep arriving at a worker that no longer runs it,
 * and re-homing a descriptor costs two epoll_ctl calls; with one set, the
 * worker that happens to poll runs the actor, and stealing balances.
 */
#ifndef TR_REACTOR_REACTOR_H
#define TR_REACTOR_REACTOR_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/epoll.h>

#include "../mailbox/depot.h"
#include "../mailbox/mpsc.h"
#include "../sched/sched.h"
#include "wheel.h"

typedef struct tr_runtime tr_runtime;

/* Timer requests from threads that are not the runtime's workers, for
 * the poller to file (in a line of its own). */
typedef struct tr__request_queue {
    tr__mpsc q;
    uint32_t pushed; /* requests pushed (atomically: every such thread shares it) */
} CK_CC_CACHELINE tr__request_queue;

/* A poller asleep in epoll_wait wakes for a timer due before it would
 * wake anyway; and for every TR__SUBMIT_WAKE requests the outside queue
 * takes, whatever their due times, so that they are filed, and cancelled
 * timers swept (timer.c), while the timers started are all due later. */
#define TR__SUBMIT_WAKE 4096u

/* A timing wheel of its own for each worker, and one for the timers
 * started by other threads (the last). The owner files its timers into
 * its wheel itself, under the wheel's lock, as it starts them; the poller
 * takes the lock of every wheel with a timer due and fires them, in due
 * order across the wheels (reactor.c, fire_due). Nobody else touches a
 * wheel, so its lock's line stays with the owner except while the
 * poller fires from it. */
typedef struct tr__timer_wheel {
    /* Read by every poll, without the lock; written when it moves, in a
     * line of its own, so that the owner's filing does not take it from
     * the pollers (a poll reads one such line per worker). */
    uint64_t next;      /* the earliest tick at which something filed may
                         * be due (UINT64_MAX: none) */
    uint32_t lock CK_CC_CACHELINE; /* 0, or the holder's worker id + 1 */
    uint64_t count;     /* entries filed, cancelled ones too; read without the lock */
    uint64_t sweep_low; /* the fewest entries it held since the sweep last
                         * looked (timer.c, tr__timer_sweep); 0: look at
                         * the next filing */
    uint64_t filed;     /* requests filed since the sweep's last step */
    tr__wheel wheel;
} CK_CC_CACHELINE tr__timer_wheel;

typedef struct tr__fd_entry tr__fd_entry;

#define TR__TICK_SHIFT 19 /* one wheel tick = 2^19 ns */

#define TR__POLL_EVENTS 256

typedef struct tr__worker tr__worker;

typedef struct tr__reactor {
    tr_runtime *rt;
    int epfd, wakefd, timerfd;

    uint32_t lock CK_CC_CACHELINE; /* held by the polling worker */
    uint64_t sleep_until;   /* ns a poller asleep in epoll_wait wakes at;
                             * 0 while none is asleep */
    uint64_t polled_ns;     /* when a poll last began */

    /* The lock holder's: */
    tr__worker *poller;
    uint64_t now;           /* the clock as the dispatch began (timer lateness) */
    uint64_t armed;         /* the timerfd's deadline, UINT64_MAX if none */
    struct epoll_event *events;
    tr__wheel_entry **due;  /* simulation: the timers of one poll, shuffled */
    size_t due_n, due_cap;

    tr__timer_wheel *wheels; /* one per worker, then the outside one */
    unsigned n_wheels;
    tr__timer_wheel **held;  /* the poller's: the wheels it holds (fire_due) */
    tr__request_queue outside; /* timers started by other threads */

    tr__fd_entry **fds;     /* chunked table indexed by descriptor */

    pthread_mutex_t sig_lock;
    struct tr__sig_sub *sig_subs;    /* subscriptions, under sig_lock */
    uint64_t sig_seen[65];           /* deliveries dispatched, per signal */
    uint64_t stop_signals;           /* tr_runtime_stop_on_signal, under sig_lock */
} tr__reactor;

/* Creation, locking, waiting, dispatching and waking are declared in
 * sched/sched.h, which the workers that poll include: "the poller". */

/* Files a timer request (timer.c): on a worker (w, the calling thread's,
 * NULL for another thread) into w's own wheel at once, under its lock;
 * from another thread into the outside queue, which the poller files.
 * Wakes the poller asleep in epoll_wait if the timer is due before it
 * would wake. Any thread.
 *
 * Why a wheel per worker. With one wheel for the runtime, filed by the
 * poller from a queue per worker, the poller read every other worker's
 * request blocks (a line crossing each), and a worker that polled filed
 * every worker's starts: at 2 workers bench/timers' two starters ran on
 * the poller's time, and its rate followed the host's cost of a line
 * crossing. bench/timers at 2 workers (a million timers started and
 * cancelled by two actors): 6.5-7.0 M timers/s while a line crosses the
 * two CPUs in 40-60 ns, 4.5-4.8 M while it takes 170-220 ns (hand-off of
 * bench/control), 3.5-5.5 M at 100,000 timers; with a wheel per worker:
 * see the figures in timer.c's top comment. Rejected on the way to the
 * queue per worker: one queue for all (its head's line passed between
 * the starters); a turn's starts queued together as it ends (a timer so
 * held is invisible to the poller until the turn ends, so one due later
 * and started meanwhile by another thread could fire first: test
 * timer/one_shots_100k_once_in_order saw 36 of 100,000 out of due order,
 * by up to 6.8 ms, on a loaded machine). */
void tr__reactor_submit(tr__reactor *r, tr__worker *w, tr__node *request, uint64_t due_ns);

/* The entries filed in all the wheels, cancelled ones included (the
 * sweep's measure, timer.c). Any thread; a moment's figures. */
uint64_t tr__reactor_timers_filed(tr__reactor *r);

/* tr__timer_system and tr__timer_self are declared in actors/actors.h
 * (asks and supervisors use them). */

/* Filing (timer.c), by tw's owner w or the poller w, holding tw's
 * lock: request goes into tw's wheel; returns the tick it is filed for
 * (tr__wheel_insert). */
uint64_t tr__timer_file(tr__timer_wheel *tw, tr__node *request);
/* Every TR__SWEEP_EVERY filings into a worker's wheel, and at each poll
 * for the outside wheel: a step of the sweep that takes cancelled timers
 * out of tw's wheel, begun when they may outnumber the pending ones; w
 * (the filer or the poller, holding tw's lock) takes back their slots. */
#define TR__SWEEP_EVERY 64
void tr__timer_sweep(tr__reactor *r, tr__worker *w, tr__timer_wheel *tw);

/* Called by the polling worker, with the reactor's lock and the lock of
 * the wheel an entry is in (reactor.c, io.c, signal.c). */
void tr__timer_fire(tr__wheel_entry *e, void *reactor);
void tr__timer_drop(tr__wheel_entry *e);
/* Simulation: the timers due in a poll are gathered from the wheels
 * (tr__timer_gather as the advance's callback), then fired in an order
 * drawn from the seed, some late (TR__FAULT_TIMER_LATE). */
void tr__timer_gather(tr__wheel_entry *e, void *reactor);
void tr__timer_fire_gathered(tr__reactor *r);
void tr__io_dispatch(tr__reactor *r, uint64_t data, uint32_t events);
void tr__io_fini(tr__reactor *r);
void tr__signal_dispatch(tr__reactor *r);
/* The process-wide signal eventfd, with a reference for this reactor
 * (-1 if it cannot be opened); tr__signal_fini gives the reference back
 * (the last one closes it), also after a failed open. */
int tr__signal_open(void);
void tr__signal_baseline(tr__reactor *r);
void tr__signal_fini(tr__reactor *r);

#endif
