/* troupe/metrics.h — what a running system is doing: per-worker counters,
 * per-actor figures, top-N queries, dumps and the /metrics endpoint.
 *
 * Everything here is always on. Workers write their own counters without
 * atomics and a reader sums them, so a figure read while the runtime runs
 * is a recent value, not a snapshot taken at one instant; after the run
 * has quiesced (tr_runtime_run returned, or every actor is idle) the
 * counts are exact. Times are nanoseconds unless a name says otherwise.
 */
#ifndef TROUPE_METRICS_H
#define TROUPE_METRICS_H

#include <stdint.h>
#include <stdio.h>

#include "actor.h"
#include "api.h"
#include "pid.h"

#ifdef __cplusplus
extern "C" {
#endif

/* One worker's counters, since the runtime was created. */
typedef struct tr_worker_metrics {
    uint64_t busy_ns;        /* time spent in behaviour turns (sampled: see
                              * sched/metrics.c for how and how close) */
    uint64_t turns;          /* behaviour turns run */
    uint64_t handled;        /* messages delivered to behaviours */
    uint64_t steals;         /* actors taken from other workers' queues */
    uint64_t parks;          /* times the worker went to sleep */
    uint64_t polls;          /* reactor polls made by this worker */
    uint64_t io_events;      /* readiness events it dispatched */
    uint32_t runq_depth;     /* actors in its run queue now */
    int32_t cpu;             /* the CPU its thread is bound to
                              * (tr_config.pin); -1 when it is not: pin
                              * off, not started yet, or refused */
} tr_worker_metrics;

/* Buckets of the timer-lateness histogram (fire time - due time): upper
 * bounds TR_LATENESS_BOUNDS_US microseconds, the last bucket unbounded. */
#define TR_LATENESS_BUCKETS 12
#define TR_LATENESS_BOUNDS_US                                                             \
    { 10, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 50000, 250000 }

/* The runtime as a whole: the sums of the workers' counters and what
 * belongs to no worker. */
typedef struct tr_metrics {
    uint64_t start_ns;          /* CLOCK_REALTIME when the runtime was made */
    uint64_t messages_sent;
    uint64_t messages_handled;
    uint64_t dead_letters;
    uint64_t actors_spawned;
    uint64_t actors_stopped;
    uint64_t actors_alive;
    uint64_t busy_ns;           /* all workers' busy time */
    uint64_t turns;
    uint64_t steals;
    uint64_t parks;
    uint64_t polls;
    uint64_t io_events;
    uint64_t fds_watched;       /* descriptors watched now */
    uint64_t timers_pending;    /* timers started and not yet fired or cancelled */
    uint64_t inject_depth;      /* actors in the injection queue now (estimate) */
    uint64_t runq_depth;        /* actors in all run queues now */
    uint64_t lateness[TR_LATENESS_BUCKETS]; /* timers fired, per bucket */
    uint64_t lateness_sum_ns;   /* total lateness of the timers fired */
    unsigned workers;
} tr_metrics;

/* Fills *out and, if per_worker is not NULL, per_worker[0 .. n-1] with the
 * first n workers' counters (n may be less or more than the worker count;
 * entries past it are zeroed). Returns the number of workers. Any thread,
 * while the runtime exists. */
TR_API unsigned tr_runtime_metrics(tr_runtime *rt, tr_metrics *out,
                                   tr_worker_metrics *per_worker, unsigned n);

typedef enum tr_actor_state {
    TR_ACTOR_IDLE = 0,   /* empty mailbox, not scheduled */
    TR_ACTOR_RUNNABLE,   /* in a run queue, messages waiting */
    TR_ACTOR_RUNNING,    /* in a turn now */
    TR_ACTOR_MUTED,      /* waiting for an overloaded receiver (backpressure) */
} tr_actor_state;

#define TR_INFO_NAME_MAX 64

/* One actor's figures, since it was spawned. */
typedef struct tr_actor_figures {
    tr_pid pid;
    char name[TR_INFO_NAME_MAX];      /* registered name, or "" */
    char behaviour[TR_INFO_NAME_MAX]; /* the behaviour's symbol (dladdr), or
                                       * its address in hex */
    tr_actor_state state;
    uint64_t turns;
    uint64_t handled;          /* messages taken by its turns (the runtime's
                                * own among them: a spec's start, link and
                                * monitor requests) */
    uint64_t busy_ns;          /* time in its turns (sampled, ±1 ms a turn) */
    uint64_t longest_turn_ns;  /* its longest turn (sampled, ±1 ms) */
    uint64_t mailbox;          /* messages waiting (see tr_actor_info) */
    uint64_t oldest_wait_ns;   /* how long it waited in a run queue before its
                                * last turn taken from one (to 1 ms; the
                                * oldest message waited at least that), or
                                * has waited so far if queued now */
    uint64_t last_run_ns;      /* CLOCK_MONOTONIC at its last turn (to
                                * about 1 ms), or 0 */
    uint32_t links;
    uint32_t monitors;         /* monitors on it and by it */
} tr_actor_figures;

/* Fills *out for the actor pid: 0, or TR_ENOPID if pid is not a live
 * actor of rt (a timer, a stopped actor, a remote pid). mailbox is 0 for an
 * idle actor, exact while one thread at a time sends to it, and a close
 * estimate under racing senders; a running actor's counts the messages its
 * turn holds. Any thread. */
TR_API int tr_actor_info(tr_runtime *rt, tr_pid pid, tr_actor_figures *out);

typedef enum tr_top_key {
    TR_TOP_HANDLED = 0, /* messages handled in the window */
    TR_TOP_BUSY,        /* busy time in the window */
    TR_TOP_MAILBOX,     /* mailbox depth at the end of the window */
} tr_top_key;

/* The top n live actors by key over a window of window_ms milliseconds
 * (0: since each actor was spawned, no waiting): with a window, samples
 * every actor, sleeps window_ms, samples again and ranks the differences
 * (recon's proc_window); the ranked figure (handled or busy_ns) in out is
 * then the window's, the others since spawn. Fills out[0 .. n-1] best
 * first and returns how many were filled, or a negative code (TR_EINVAL:
 * bad key, n 0, out NULL;
 * TR_EDEADLK: a window asked for on a worker thread, where sleeping would
 * stall it). Any thread outside the runtime; window 0 from anywhere. */
TR_API int tr_runtime_top(tr_runtime *rt, tr_top_key key, unsigned n, unsigned window_ms,
                          tr_actor_figures *out);

/* Writes to f one line per actor that is running, runnable, muted or has
 * messages waiting (pid, name, behaviour, state, mailbox, links,
 * monitors; in the name, bytes other than printable ASCII and valid UTF-8,
 * and spaces and backslashes, as \xHH), then the workers' run-queue
 * depths. Returns the number of actors listed, or a negative code
 * (TR_EINVAL: f NULL). Any thread. */
TR_API int tr_runtime_dump(tr_runtime *rt, FILE *f);

/* From now on, signal signo makes the runtime write a dump to stderr —
 * from a runtime thread (its monitor), not from the handler, while the
 * runtime runs (a signal before the run is dumped once it starts). It
 * replaces the signal's handler for the process. 0 or a negative code
 * (TR_EINVAL: a signal that cannot be caught; TR_ENOMEM: 16 runtimes
 * already have one). Any thread, before or during the run. */
TR_API int tr_runtime_dump_on_signal(tr_runtime *rt, int signo);

/* Starts an HTTP actor on addr ("HOST:PORT"; port 0 picks one, written to
 * *port if port is not NULL) serving GET /metrics in the Prometheus text
 * format 0.0.4 and GET /actors?top=N&by=handled|busy|mailbox&window=MS as
 * JSON. A windowed /actors query holds a sample of every actor for its
 * window: at most 8 run at once in the process, and the next is answered
 * 503 with Retry-After. A client that leaves its answer unread (its
 * output above the high-water mark) for 30 s is reset, and the answer
 * dropped. Its pid goes to *server if not NULL; tr_kill stops it. 0 or a
 * negative code (TR_EINVAL: bad address; a socket error). From a context
 * (a behaviour's, or tr_runtime_ctx's outside the runtime). */
TR_API int tr_metrics_serve(tr_ctx *cx, const char *addr, uint16_t *port, tr_pid *server);

#ifdef __cplusplus
}
#endif

#endif
