/* reactor/reactor.h — the epoll reactor, polled by the workers (internal).
 *
 * There is no reactor thread. Whichever worker holds the reactor's lock
 * polls it: it files timer requests, fires due timers from the wheel,
 * dispatches signals, and turns readiness into TR_IO_* messages — sent
 * from that worker, so that a connection actor made runnable by its
 * readiness lands in the poller's own LIFO slot and runs next, on the
 * thread that learnt of it, with no other thread and no wake-up involved.
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

/* A queue of timer requests, in lines of its own (an array of them). */
typedef struct tr__request_queue {
    tr__mpsc q;
    uint32_t pushed;  /* requests pushed (atomically on the last queue,
                       * which every other thread shares) */
} CK_CC_CACHELINE tr__request_queue;

/* A poller asleep in epoll_wait wakes for a request due before it would
 * wake anyway; and for every TR__SUBMIT_WAKE requests a queue takes,
 * whatever their due times, so that requests are filed, and cancelled
 * timers swept (timer.c), while the timers started are all due later. */
#define TR__SUBMIT_WAKE 4096u

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
    tr__wheel wheel;
    uint64_t sweep_low;     /* the fewest entries the wheel held since
                             * the sweep last looked (timer.c,
                             * tr__timer_sweep); 0: look at the next poll */
    uint64_t filed;         /* requests filed since the sweep's last step */
    struct epoll_event *events;
    tr__wheel_entry **due;  /* simulation: the timers of one poll, shuffled */
    size_t due_n, due_cap;

    tr__request_queue *requests; /* timers to file: one queue per worker
                                  * (its own thread's starts), then one for
                                  * every other thread (submit) */
    unsigned queues;

    tr__fd_entry **fds;     /* chunked table indexed by descriptor */

    pthread_mutex_t sig_lock;
    struct tr__sig_sub *sig_subs;    /* subscriptions, under sig_lock */
    uint64_t sig_seen[65];           /* deliveries dispatched, per signal */
    uint64_t stop_signals;           /* tr_runtime_stop_on_signal, under sig_lock */
} tr__reactor;

/* Creation, locking, waiting, dispatching and waking are declared in
 * sched/sched.h, which the workers that poll include: "the poller". */

/* Queues a timer request for filing (timer.c), on w's queue (w: the
 * calling thread's worker, NULL for another thread); wakes the reactor if
 * it is due before its planned wake-up. Any thread.
 *
 * One queue per worker: every start pushes, and two workers pushing on
 * one queue pass its head's line back and forth. bench/timers (a million
 * timers started and cancelled by two actors on 2 workers, 2 cores):
 * 5.1 M timers/s while a line crosses between the CPUs in 40-60 ns, 2.8 M
 * while it takes 180-200 ns (bench/control's hand-off), before this and
 * the two changes beside it (the fence in submit, and the cancels giving
 * their holds back together: sched.h, the spare holds); 6.3 M and 4.6 M
 * after. Also measured: a turn's starts queued together as it ends, one
 * exchange for all (as fast), rejected because a timer so held is
 * invisible to the poller until the turn ends: a timer due later, started
 * meanwhile by another thread, could fire first (test
 * timer/one_shots_100k_once_in_order saw 36 of 100,000 out of due order,
 * by up to 6.8 ms, on a loaded machine). And filing only the polling
 * worker's own queue between turns: no faster. */
void tr__reactor_submit(tr__reactor *r, tr__worker *w, tr__node *request, uint64_t due_ns);

/* tr__timer_system and tr__timer_self are declared in actors/actors.h
 * (asks and supervisors use them). */

/* Called by the polling worker, with the reactor's lock (timer.c, io.c, signal.c). */
void tr__timer_fire(tr__wheel_entry *e, void *reactor);
void tr__timer_drop(tr__wheel_entry *e);
void tr__timer_file(tr__reactor *r, tr__node *request);
/* After each advance: a step of the sweep that takes cancelled timers
 * out of the wheel, begun when they may outnumber the pending ones. */
void tr__timer_sweep(tr__reactor *r);
/* The wheel advanced to tick `to` in simulation: the timers due fire in
 * an order drawn from the seed, some late (TR__FAULT_TIMER_LATE). */
void tr__timer_advance_seeded(tr__reactor *r, uint64_t to);
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
