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
 *     (a hold is taken): so when every worker is busy, timers and
 *     readiness wait at most the longer of POLL_EVERY_NS and 61 turns,
 *     plus the turn in progress.
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
#include "wheel.h"

typedef struct tr_runtime tr_runtime;
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
    uint64_t armed;         /* the timerfd's deadline, UINT64_MAX if none */
    tr__wheel wheel;
    struct epoll_event *events;

    tr__mpsc requests;      /* timers to file, from any thread */

    tr__fd_entry **fds;     /* chunked table indexed by descriptor */

    pthread_mutex_t sig_lock;
    struct tr__sig_sub *sig_subs;    /* subscriptions, under sig_lock */
    uint64_t sig_seen[65];           /* deliveries dispatched, per signal */
    uint64_t stop_signals;           /* tr_runtime_stop_on_signal, under sig_lock */
} tr__reactor;

/* Creates the reactor's descriptors and tables. 0 or a negative code. */
int tr__reactor_init(tr__reactor *r, tr_runtime *rt);

/* Frees everything; no worker may be running. Pending timers are
 * dropped. */
void tr__reactor_fini(tr__reactor *r);

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

/* Monotonic time in ns. */
uint64_t tr__now_ns(void);

/* When a poll last began (sched/monitor.c: is the reactor late?). */
static inline uint64_t tr__reactor_polled_ns(tr__reactor *r)
{
    return ck_pr_load_64(&r->polled_ns);
}

/* Files a timer request (timer.c); wakes the reactor if it is due before
 * its planned wake-up. Any thread. */
void tr__reactor_submit(tr__reactor *r, tr__node *request, uint64_t due_ns);

/* A one-shot timer from the running actor to itself with a reserved type
 * (connect timeouts, accept retries). */
typedef struct tr_ctx tr_ctx;
int tr__timer_system(tr_ctx *cx, uint64_t delay_ns, uint32_t type, uint64_t *timer);
/* The same with a payload (an ask's timeout: actors/ask.c). */
int tr__timer_self(tr_ctx *cx, uint64_t delay_ns, uint32_t type, const void *data, size_t len,
                   uint64_t *timer);

/* Called by the polling worker, with the reactor's lock (timer.c, io.c, signal.c). */
void tr__timer_fire(tr__wheel_entry *e, void *reactor);
void tr__timer_drop(tr__wheel_entry *e);
void tr__timer_file(tr__reactor *r, tr__node *request);
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
