/* reactor/reactor.h — the epoll reactor (internal).
 *
 * One reactor per runtime, on its own thread, started and joined with
 * the workers. It sleeps in epoll_wait and wakes for:
 *   - readiness of watched descriptors (turned into TR_IO_* messages);
 *   - its timerfd, armed for the next due slot of the timing wheel;
 *   - its eventfd, written when a timer due sooner than the reactor's
 *     planned wake-up is started, and at shutdown;
 *   - the process-wide signal eventfd (see signal.c).
 *
 * Why a dedicated thread rather than a parked worker polling epoll: a
 * worker would have to choose between sleeping on its futex (missing I/O)
 * and sleeping in epoll (then every wake-up of that worker for new actor
 * work costs an eventfd write instead of a futex wake); and timer expiry
 * would wait behind long behaviour turns. The reactor thread sends into
 * the injection queue like any outside thread and is idle otherwise.
 */
#ifndef TR_REACTOR_REACTOR_H
#define TR_REACTOR_REACTOR_H

#include <pthread.h>
#include <stdint.h>

#include "../mailbox/depot.h"
#include "../mailbox/mpsc.h"
#include "wheel.h"

typedef struct tr_runtime tr_runtime;
typedef struct tr__fd_entry tr__fd_entry;

#define TR__TICK_SHIFT 19 /* one wheel tick = 2^19 ns */

typedef struct tr__reactor {
    tr_runtime *rt;
    int epfd, wakefd, timerfd;
    pthread_t thread;
    int started;
    uint32_t exit;

    tr__mpsc requests;      /* timers to file, from any thread */
    uint64_t sleep_until;   /* ns of the planned wake-up; 0 while awake */
    uint64_t armed;         /* the timerfd's deadline, UINT64_MAX if none */
    tr__wheel wheel;

    tr__fd_entry **fds;     /* chunked table indexed by descriptor */

    pthread_mutex_t sig_lock;
    struct tr__sig_sub *sig_subs;    /* subscriptions, under sig_lock */
    uint64_t sig_seen[65];           /* deliveries dispatched, per signal */
    uint64_t stop_signals;           /* tr_runtime_stop_on_signal, under sig_lock */
} tr__reactor;

/* Creates the reactor's descriptors and tables. 0 or a negative code. */
int tr__reactor_init(tr__reactor *r, tr_runtime *rt);

/* Frees everything; the thread must not be running. Pending timers are
 * dropped. */
void tr__reactor_fini(tr__reactor *r);

/* Starts / stops and joins the reactor thread. */
int tr__reactor_start(tr__reactor *r);
void tr__reactor_stop(tr__reactor *r);

/* Monotonic time in ns. */
uint64_t tr__now_ns(void);

/* Files a timer request (timer.c); wakes the reactor if it is due before
 * its planned wake-up. Any thread. */
void tr__reactor_submit(tr__reactor *r, tr__node *request, uint64_t due_ns);

/* A one-shot timer from the running actor to itself with a reserved type
 * (connect timeouts, accept retries). */
typedef struct tr_ctx tr_ctx;
int tr__timer_system(tr_ctx *cx, uint64_t delay_ns, uint32_t type, uint64_t *timer);

/* Called by the reactor thread (timer.c, io.c, signal.c). */
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
