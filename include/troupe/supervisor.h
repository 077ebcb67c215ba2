/* troupe/supervisor.h — supervisors: actors that restart what failed.
 *
 * A supervisor starts a list of children in order, each linked to it, and
 * traps their exits. When a child ends, its restart type decides whether
 * it comes back (permanent: always; transient: only after a failure, i.e.
 * a reason other than TR_EXIT_NORMAL or TR_EXIT_SHUTDOWN; temporary:
 * never), and the strategy decides which others restart with it:
 *   one-for-one   only that child;
 *   one-for-all   all children: the others are stopped (in reverse start
 *                 order) and all start again in order;
 *   rest-for-one  that child and those started after it.
 * Every (re)started child gets a fresh copy of its initial state, and its
 * spec's init runs again before it handles a message (its spawner is the
 * supervisor); a named child takes its name again (the old incarnation's
 * name is freed before the supervisor hears of its end). An init that
 * fails is a failure like any other. A spawn that fails (the name held by
 * another actor, no memory) ends the supervisor with TR_EXIT_RESTARTS, as
 * below. More than max_restarts restarts within period_ns and the
 * supervisor gives up: it stops its children and ends with
 * TR_EXIT_RESTARTS, which its own supervisor (if any) sees — failures
 * escalate up the tree.
 *
 * Stopping a child: an exit signal TR_EXIT_SHUTDOWN, then, if it has not
 * ended after its shutdown_ns, TR_EXIT_KILL. A supervisor that receives
 * TR_EXIT_SHUTDOWN (tr_kill, or its parent ending) stops its children in
 * reverse start order that way, then ends with TR_EXIT_SHUTDOWN. When it
 * ends in the middle of a restart, the child the restart was stopping is
 * signalled once and has one grace: it is waited for first, then the rest
 * in reverse start order.
 */
#ifndef TROUPE_SUPERVISOR_H
#define TROUPE_SUPERVISOR_H

#include <stddef.h>
#include <stdint.h>

#include "api.h"
#include "actor.h"
#include "pid.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum tr_restart { TR_PERMANENT = 0, TR_TRANSIENT, TR_TEMPORARY } tr_restart;
typedef enum tr_strategy { TR_ONE_FOR_ONE = 0, TR_ONE_FOR_ALL, TR_REST_FOR_ONE } tr_strategy;

typedef struct tr_child_spec {
    tr_actor_spec actor;   /* copied by the supervisor (state and name too);
                            * each start gets a fresh copy of the state */
    tr_restart restart;
    uint64_t shutdown_ns;  /* grace before KILL when stopping it; 0 = 5 s */
} tr_child_spec;

/* The most max_restarts may be: a supervisor keeps the time of each of its
 * last max_restarts + 1 restarts. More is no limit in practice. */
#define TR_SUP_MAX_RESTARTS 65536u

typedef struct tr_supervisor_spec {
    tr_strategy strategy;
    unsigned max_restarts; /* 0 = 3; at most TR_SUP_MAX_RESTARTS */
    uint64_t period_ns;    /* 0 = 5 s */
    const tr_child_spec *children;
    size_t nchildren;
} tr_supervisor_spec;

/* Starts a supervisor: from a behaviour, linked to the running actor (so
 * a supervisor can be a child of another); from tr_runtime_ctx, unlinked.
 * Errors: TR_EINVAL (spec NULL, children NULL with a count, a bad
 * strategy, max_restarts past TR_SUP_MAX_RESTARTS; a child spec without
 * behaviour, with state NULL and a size, a bad name or restart type; a
 * worker's context between turns), TR_ENOMEM,
 * TR_EAGAIN (actor table full). Threads: a behaviour's context, or
 * tr_runtime_ctx's from any thread. */
TR_API int tr_supervisor_start(tr_ctx *cx, const tr_supervisor_spec *spec, tr_pid *sup);

#ifdef __cplusplus
}
#endif

#endif
