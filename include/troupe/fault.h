/* troupe/fault.h — failure as messages: exit reasons, links, monitors,
 * named actors.
 *
 * The Erlang model. An actor ends with a reason: tr_stop() is "normal";
 * tr_exit() gives another reason (a failure) and a short text. A link
 * joins two actors' fates: when one ends abnormally, the other ends with
 * the same reason — unless it traps exits, in which case it receives a
 * TR_EXIT message instead. A monitor is one-way: the watcher receives one
 * TR_DOWN when the watched actor ends, whatever the reason.
 *
 * Only failures the runtime can see are covered: a segmentation fault or
 * abort() inside a behaviour still ends the whole process, as in any C
 * program.
 */
#ifndef TROUPE_FAULT_H
#define TROUPE_FAULT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "api.h"
#include "actor.h"
#include "error.h"
#include "msg.h"
#include "msgtypes.h" /* TR_EXIT, TR_DOWN, TR_DEAD_LETTER */
#include "pid.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Exit reasons. Users pick their own positive codes for failures. */
#define TR_EXIT_NORMAL    0   /* tr_stop, or tr_exit with 0: links ignore it */
#define TR_EXIT_KILL      (-1) /* tr_kill only: cannot be trapped; seen as KILLED */
#define TR_EXIT_KILLED    (-2) /* what links see of an actor killed with KILL */
#define TR_EXIT_NOPROC    (-3) /* link or monitor to an actor already gone */
#define TR_EXIT_SHUTDOWN  (-4) /* orderly shutdown (supervisors) */
#define TR_EXIT_RESTARTS  (-5) /* a supervisor past its restart intensity */
/* The node connection to a linked or monitored remote process went down. */
#define TR_EXIT_NOCONNECTION (-6)

/* X(reason, name): the reasons above, with their names. */
#define TR_EXIT_REASONS(X)                                                        \
    X(TR_EXIT_NORMAL, "normal") X(TR_EXIT_KILL, "kill") X(TR_EXIT_KILLED, "killed") \
    X(TR_EXIT_NOPROC, "noproc") X(TR_EXIT_SHUTDOWN, "shutdown")                    \
    X(TR_EXIT_RESTARTS, "restarts") X(TR_EXIT_NOCONNECTION, "noconnection")

/* The name of an exit reason, for logs: "normal", "kill", "killed",
 * "noproc", "shutdown", "restarts", "noconnection" for the TR_EXIT_*
 * reasons above, and
 * "user" for every other value (the program's own reasons). Static text,
 * never NULL; never fails. Any thread. */
TR_API const char *tr_exit_reason_name(int reason);

#define TR_EXIT_TEXT_MAX 48

/* TR_EXIT (payload: tr_exit_info) comes to an actor that traps exits,
 * TR_DOWN (payload: tr_down_info) to a monitor. */

typedef struct tr_exit_info {
    tr_pid pid;    /* who ended (or who sent the signal, for tr_kill) */
    int reason;
    char text[TR_EXIT_TEXT_MAX]; /* NUL-terminated, may be empty */
} tr_exit_info;

typedef struct tr_down_info {
    uint64_t ref;  /* from tr_monitor */
    tr_pid pid;
    int reason;
    char text[TR_EXIT_TEXT_MAX];
} tr_down_info;

/* Ends the running actor with `reason` (and an optional text, cut to
 * TR_EXIT_TEXT_MAX - 1 bytes) once the current message is handled. With
 * reason 0 this is tr_stop. This is how a behaviour raises a failure.
 * Never fails; inside a turn only (elsewhere, as tr_stop: ignored). */
TR_API void tr_exit(tr_ctx *cx, int reason, const char *text);

/* Traps exits (on) or not (off, the default) for the running actor.
 * Never fails (it needs no memory); outside a turn it does nothing
 * (debug builds stop there). Inside a turn only. */
TR_API void tr_trap_exits(tr_ctx *cx, bool on);

/* Links the running actor with `pid` (both ways). Linking to an actor that
 * has already ended gives an exit signal with TR_EXIT_NOPROC at once;
 * linking to one linked already does nothing.
 * Errors: TR_EINVAL (pid is self, not inside a behaviour), TR_ENOPID,
 * TR_ENOMEM. Inside a turn only. */
TR_API int tr_link(tr_ctx *cx, tr_pid pid);

/* Removes a link; no exit signal through it arrives after this returns.
 * Unlinking what is not linked does nothing. Errors: TR_EINVAL (not
 * inside a behaviour), or as tr_send for the notice to the other side
 * (TR_ENOPID, TR_ENOMEM). Inside a turn only. */
TR_API int tr_unlink(tr_ctx *cx, tr_pid pid);

/* tr_spawn_spec, linked: the child is linked to the running actor before
 * it can run, so it cannot end unseen (a failed init included).
 * Errors: as tr_spawn_spec, and TR_EINVAL for the outside context.
 * Inside a turn only. */
TR_API int tr_spawn_link_spec(tr_ctx *cx, const tr_actor_spec *spec, tr_pid *pid);

/* tr_spawn_link_spec with only behaviour and state. Errors: as
 * tr_spawn_link_spec. Inside a turn only. */
TR_API int tr_spawn_link(tr_ctx *cx, tr_behaviour fn, const void *state, size_t state_size,
                         tr_pid *pid);

/* tr_spawn_spec, monitored: the running actor monitors the child from
 * before it can run, so exactly one TR_DOWN with *ref comes when it ends
 * (a failed init included, with init's result as the reason). Stores the
 * pid and the monitor's reference if asked; tr_demonitor(cx, *ref) ends
 * the monitor. Errors: as tr_spawn_link_spec. Inside a turn only. */
TR_API int tr_spawn_monitor(tr_ctx *cx, const tr_actor_spec *spec, tr_pid *pid, uint64_t *ref);

/* Sends pid an exit signal with `reason`, as a linked actor's end would,
 * but without a link (Erlang's exit/2): an actor that traps exits gets a
 * TR_EXIT message; any other ends with that reason — except that
 * TR_EXIT_NORMAL is ignored, and TR_EXIT_KILL cannot be trapped (the actor
 * ends, and its links see TR_EXIT_KILLED). From the outside context the
 * signal comes from TR_PID_NONE. Errors: as tr_send (TR_EINVAL, TR_ENOPID,
 * TR_ENOMEM). Threads: a behaviour's context, or tr_runtime_ctx's from
 * any thread. */
TR_API int tr_kill(tr_ctx *cx, tr_pid pid, int reason);

/* Monitors pid: exactly one TR_DOWN with *ref will come when it ends
 * (reason TR_EXIT_NOPROC at once if it has already ended).
 * Errors: TR_EINVAL (not inside a behaviour), TR_ENOPID, TR_ENOMEM.
 * Inside a turn only. */
TR_API int tr_monitor(tr_ctx *cx, tr_pid pid, uint64_t *ref);

/* Ends a monitor. No TR_DOWN for it is delivered after this returns, even
 * one already in the mailbox (it is flushed). Errors: TR_EINVAL (no such
 * monitor of the running actor, or not inside a behaviour). Inside a turn
 * only. */
TR_API int tr_demonitor(tr_ctx *cx, uint64_t ref);

/* ---- dead letters ----
 * Messages that could not be delivered (their target had stopped) are
 * counted in tr_stats.dead_letters. To see them, name a sink: from then on
 * each dead letter also arrives at the sink as a TR_DEAD_LETTER message
 * whose payload is a tr_dead_letter followed by the first bytes of the
 * lost payload. A dead letter of the sink itself is only counted. */

#define TR_DEAD_LETTER_DATA 256 /* payload bytes kept */

typedef struct tr_dead_letter {
    tr_pid from, to;  /* the lost message's sender and addressee */
    uint32_t type;    /* its type */
    uint32_t len;     /* its full length; the first min(len, 256) bytes follow */
} tr_dead_letter;

/* Sets the dead-letter sink (TR_PID_NONE to stop). Any thread.
 * Errors: TR_EINVAL (rt NULL). */
TR_API int tr_runtime_dead_letters(tr_runtime *rt, tr_pid sink);

/* ---- named actors ----
 * Names are per runtime, at most TR_NAME_MAX - 1 bytes; an actor has at
 * most one, and its name is freed when it ends, before its links and
 * monitors hear of the end. The registry has no fixed limit: it grows with
 * the names (64-byte buckets, at most 3/4 used; the tables it outgrew are
 * kept until tr_runtime_destroy, together smaller than the one in use) and
 * never shrinks. A departed name's bucket is reused at once, so lookups
 * stay O(1) on average however many names came and went. */

#define TR_NAME_MAX 48

/* Registers pid (a live actor of this runtime) under name. Any thread;
 * takes the registry's writer lock, and makes one system call that
 * briefly interrupts every CPU running one of the process's threads (a
 * few microseconds each, so that actors end without a fence: names are
 * for services, not for every short-lived actor). Errors: TR_EINVAL (bad name, NULL
 * rt, TR_PID_NONE), TR_EEXIST (name taken, or the actor already has a
 * name), TR_ENOPID (pid not a live actor), TR_ENOMEM (the registry could
 * not grow). */
TR_API int tr_register(tr_runtime *rt, const char *name, tr_pid pid);

/* Removes a name. Any thread; takes the writer lock.
 * Errors: TR_EINVAL (bad name, NULL rt, or no such name). */
TR_API int tr_unregister(tr_runtime *rt, const char *name);

/* The pid registered under name, or TR_PID_NONE (also for a bad name or
 * rt NULL): no error code. Any thread; takes no lock and writes nothing
 * shared: a lookup racing with a change sees the name before or after it,
 * never a wrong pid. */
TR_API tr_pid tr_whereis(tr_runtime *rt, const char *name);

#ifdef __cplusplus
}
#endif

#endif
