/* troupe/runtime.h — the runtime: workers, running, stopping, statistics.
 *
 * A runtime owns a table of actors and a pool of worker threads that run
 * them on a work-stealing scheduler. The usual life:
 *
 *     tr_runtime *rt;
 *     tr_runtime_create(NULL, &rt);
 *     tr_spawn(tr_runtime_ctx(rt), fn, &state, sizeof state, &pid);
 *     tr_send(tr_runtime_ctx(rt), pid, TYPE, data, len);
 *     tr_runtime_run(rt);       // returns when no work is left
 *     tr_runtime_destroy(rt);
 *
 * "No work left" (quiescence) means: no actor has a message waiting or is
 * running, and no hold is taken. A thread outside the runtime that wants to
 * send while it runs takes a hold first (tr_runtime_hold), so the runtime
 * cannot finish between two of its sends — like a libuv handle's ref.
 */
#ifndef TROUPE_RUNTIME_H
#define TROUPE_RUNTIME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "api.h"
#include "actor.h"
#include "msg.h"
#include "pid.h"

#ifdef __cplusplus
extern "C" {
#endif

#define TR_MAX_THREADS 256

typedef struct tr_config {
    unsigned threads;   /* worker threads; 0 = TROUPE_THREADS or the CPUs available */
    unsigned batch;     /* most messages one actor handles per turn; 0 = 64 */
    unsigned watchdog_ms; /* report a behaviour turn longer than this
                           * (tr_runtime_on_long_turn); 0 = off */
    const char *trace_path; /* record turns, spawns, stops and timers and
                             * write them there as Chrome trace-event JSON
                             * at the end of each run; NULL = off */
    uint64_t sim_seed;  /* nonzero: run in simulation (troupe/sim.h) with
                         * this seed, TR_SIM_ANY_SEED to pick one; 0 = off */
    const char *sim_options; /* the simulation's options; NULL = TROUPE_SIM */
    bool pin;           /* bind worker i to one CPU, the (i mod n)-th of the
                         * n the process may run on (its affinity mask when
                         * the runtime is made); false = let the kernel
                         * place them */
} tr_config;

typedef struct tr_stats {
    uint64_t messages_sent;     /* queued to a live actor by a send call */
    uint64_t messages_handled;  /* delivered to a behaviour */
    uint64_t dead_letters;      /* dropped: sent to, or queued for, an actor
                                   that has stopped (or to a timer); not
                                   the reactor's readiness for a socket
                                   actor that has stopped */
    uint64_t actors_spawned;
    uint64_t actors_stopped;
    uint64_t actors_alive;      /* spawned - stopped */
    uint64_t steals;            /* actors taken from another worker's queue */
    uint64_t parks;             /* times a worker went to sleep */
    uint64_t pool_mallocs;      /* message blocks taken from malloc, process-wide */
    uint64_t actor_slots;       /* size of the actor table (actors and timers
                                   share it): the most alive at once, plus
                                   free slots cached for reuse (up to 128
                                   per worker and 128 for all other
                                   threads), plus up to 15 fresh ones a
                                   worker has taken and not used yet */
} tr_stats;

/* Fills *cfg with the defaults: threads from the TROUPE_THREADS environment
 * variable if set to 1..TR_MAX_THREADS, else the number of CPUs this
 * process may run on (its affinity mask); batch 64; watchdog_ms from
 * TROUPE_WATCHDOG_MS if set to a number (0 = off), else 100; trace_path
 * from TROUPE_TRACE if set and not empty, else NULL; sim_seed from
 * TROUPE_SIM_SEED (a decimal seed, "0" for TR_SIM_ANY_SEED; unset, empty
 * or not a number — said on stderr — 0: no simulation); sim_options NULL;
 * pin from TROUPE_PIN ("1" on; unset, empty or "0" off; anything else is
 * said on stderr, and off). Never fails (cfg NULL is ignored). Any thread. */
TR_API void tr_config_init(tr_config *cfg);

/* Creates a runtime (cfg NULL = defaults; a cfg's watchdog_ms and
 * trace_path are taken as they are, so start from tr_config_init). No
 * thread starts until tr_runtime_run or tr_runtime_start. Errors:
 * TR_EINVAL (rt NULL, threads or batch out of range), TR_ENOMEM, -errno
 * from epoll_create1, eventfd or timerfd_create (-EMFILE: out of
 * descriptors) or from creating the trace file; TR_EBUSY for a runtime
 * not simulated while a simulation is in progress (its clock and sockets
 * are the process's: the two cannot be mixed). Any thread. */
TR_API int tr_runtime_create(const tr_config *cfg, tr_runtime **rt);

/* Stops (if running) and joins the workers, then frees every actor,
 * queued message and the runtime itself. Never fails (rt NULL is
 * ignored). From a thread outside the runtime, never from a behaviour:
 * a worker would wait for itself. */
TR_API void tr_runtime_destroy(tr_runtime *rt);

/* Starts the workers and blocks until the runtime is quiescent or
 * tr_runtime_shutdown is called. Returns 0 when quiescent, 1 when stopped.
 * May be called again later to resume. In simulation (troupe/sim.h) no
 * thread starts: the caller runs every behaviour, and a run that can never
 * go on (a liveness failure, reported on stderr) returns 1.
 * Errors: TR_EINVAL (rt NULL), TR_EBUSY (already running), TR_EDEADLK
 * (called from a worker), TR_ENOMEM (threads could not be started). Any
 * thread outside the runtime. */
TR_API int tr_runtime_run(tr_runtime *rt);

/* Starts the workers in the background and returns at once; the caller
 * may send, then tr_runtime_join. In simulation it only marks the runtime
 * started: its behaviours run inside a join (of it or of another simulated
 * runtime). Errors: as tr_runtime_run. Any thread outside the runtime. */
TR_API int tr_runtime_start(tr_runtime *rt);

/* Waits for a started runtime to become quiescent or be stopped.
 * Returns 0 (quiescent) or 1 (stopped).
 * Errors: TR_EINVAL (rt NULL), TR_ENOTSTARTED, TR_EDEADLK (called from
 * a worker), TR_EBUSY (in simulation, another thread is running it). Any
 * thread outside the runtime. */
TR_API int tr_runtime_join(tr_runtime *rt);

/* Asks the workers to stop after their current turns; run/join return 1.
 * Messages still queued stay queued. Never fails (rt NULL is ignored).
 * Any thread, including a behaviour, and async-signal-safe. (Named apart
 * from tr_stop, which ends only the running actor.) */
TR_API void tr_runtime_shutdown(tr_runtime *rt);

/* Holds the runtime open: it will not finish while a hold is taken, even
 * with nothing to do. Each hold is given back with tr_runtime_release.
 * Any thread. Errors: TR_EINVAL (rt NULL). */
TR_API int tr_runtime_hold(tr_runtime *rt);

/* Gives back a hold. Errors: TR_EINVAL (rt NULL, or no hold taken). Any
 * thread. */
TR_API int tr_runtime_release(tr_runtime *rt);

/* A program's main in one call: creates a runtime (cfg NULL: defaults),
 * raises the descriptor limit (tr_fd_limit_raise, best effort), makes
 * SIGINT and SIGTERM shut it down, calls start(cx, argc, argv) with the
 * outside context to spawn what the program is made of, runs until the
 * runtime is quiescent or shut down, and destroys it. A failure (start's
 * own result included) is printed to stderr as "<program>: <text of the
 * code>". Returns 0, or 1 after a failure: what main returns, as in
 * `int main(int argc, char **argv) { return tr_main(NULL, start, argc, argv); }`.
 * No error code: failures (TR_EINVAL for start NULL, those of
 * tr_runtime_create, tr_runtime_stop_on_signal and start) are printed.
 * From main's thread, not from a behaviour. */
TR_API int tr_main(const tr_config *cfg, int (*start)(tr_ctx *cx, int argc, char **argv), int argc,
                   char **argv);

/* The runtime's outside context: what a thread outside the runtime (the
 * main thread, a foreign thread, a signal-free callback) passes to the
 * calls that take a tr_ctx, as a behaviour passes its own. One context
 * for every call, so that no call exists twice: tr_spawn, tr_send,
 * tr_kill, tr_timer_start, tr_tcp_listen, ... work from outside with it,
 * the messages sent having no sender (TR_PID_NONE). Calls that only mean
 * something inside a turn (tr_self, tr_stop, tr_link, tr_monitor,
 * tr_io_watch, tr_tcp_send, ...) refuse it as they refuse a worker's
 * context between turns: TR_EINVAL, or nothing for calls that return
 * void. It is valid as long as the runtime; it carries nothing
 * per-thread, so any number of threads may use it at once. NULL for rt
 * NULL; never fails. Any thread. */
TR_API tr_ctx *tr_runtime_ctx(tr_runtime *rt);

/* A snapshot of the counters. Never fails (rt NULL gives zeros, out NULL
 * is ignored). Any thread; the figures are exact once the runtime has
 * returned from run/join, approximate while it runs. */
TR_API void tr_runtime_stats(tr_runtime *rt, tr_stats *out);

/* A behaviour turn that ran longer than tr_config.watchdog_ms, as the
 * watchdog saw it: on a CPU or blocked, not counting the time its thread
 * waited for a CPU that other threads had. The strings live until the
 * hook returns. */
typedef struct tr_long_turn {
    tr_pid pid;            /* the actor (TR_PID_NONE if it ended meanwhile) */
    const char *name;      /* its registered name, or "" */
    const char *behaviour; /* the behaviour's symbol (dladdr), or its address
                            * in hex when the symbol is not exported */
    unsigned worker;       /* index of the worker running it */
    uint64_t elapsed_ns;   /* how long it had run when seen, on the clock:
                            * the threshold or a little more, plus any
                            * wait for a CPU (sched/watchdog.c) */
} tr_long_turn;

typedef void (*tr_long_turn_fn)(const tr_long_turn *turn, void *arg);

/* Has fn(turn, arg) called once for every turn that runs past the
 * watchdog's threshold, instead of the default line on stderr (fn NULL:
 * back to that line). fn runs on the runtime's monitor thread, which also
 * wakes the reactor for busy workers: it must return quickly and not
 * block, nor call into rt. Errors: TR_EINVAL (rt NULL), TR_EBUSY (the
 * runtime is running: set it before run/start). Any thread. */
TR_API int tr_runtime_on_long_turn(tr_runtime *rt, tr_long_turn_fn fn, void *arg);

/* The number of worker threads; 0 for rt NULL. Never fails. Any thread. */
TR_API unsigned tr_runtime_threads(const tr_runtime *rt);

#ifdef __cplusplus
}
#endif

#endif
