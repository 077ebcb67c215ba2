/* actors/context.h — the context of a call, and what other modules may
 * ask of it (internal).
 *
 * One context for every call (troupe/runtime.h, tr_runtime_ctx): a
 * worker's, inside the turn of the actor it runs, or the runtime's outside
 * context, for any other thread. A worker's context between turns is
 * neither: the calls refuse it (TR_EINVAL).
 *
 * The rule: no file outside actors/ reads a context's fields. sched/,
 * reactor/ and net/ ask through the functions below — whether a call is
 * made in a turn, which worker makes it, the running actor's resources —
 * so that what a context holds can change here alone. `make test` checks
 * the rule with a grep (support/check-layers.sh).
 */
#ifndef TR_ACTORS_CONTEXT_H
#define TR_ACTORS_CONTEXT_H

#include <stdbool.h>
#include <stddef.h>

#include "actor.h"
#include "troupe/fault.h"

typedef struct tr__worker tr__worker;

struct tr_ctx {
    tr_runtime *rt;
    tr__worker *worker; /* NULL: the runtime's outside context (tr_runtime_ctx) */
    tr__actor *actor;
    tr_pid self;
    bool stopping;
    void (*turn_end)(tr_ctx *cx, void *state);  /* tr__at_turn_end, and a */
    void (*turn_end2)(tr_ctx *cx, void *state); /* second one if need be */
    struct tr__actor *blocked_by; /* an overloaded actor sent to in this turn */
    tr_msg *asked;    /* the ask being handled, until answered (actors/ask.c) */
    int exit_reason;  /* with stopping: why */
    char exit_text[TR_EXIT_TEXT_MAX];
};

/* Whether cx is inside a turn; whether it is the outside context. */
static inline bool tr__cx_in_turn(const tr_ctx *cx)
{
    return cx != NULL && cx->actor != NULL;
}

/* Whether the running actor has been told to end this turn (tr_stop,
 * tr_exit): a socket actor hands its behaviour nothing more then. */
static inline bool tr__cx_stopping(const tr_ctx *cx)
{
    return cx->stopping;
}

static inline bool tr__cx_outside(const tr_ctx *cx)
{
    return cx != NULL && cx->worker == NULL;
}

/* For a call that works both in a turn and from outside: the context its
 * internal function takes (cx in a turn, NULL from outside) in *acting,
 * or TR_EINVAL for a context that is neither (NULL, or a worker's between
 * turns). */
static inline int tr__cx_acting(tr_ctx *cx, tr_ctx **acting)
{
    *acting = tr__cx_in_turn(cx) ? cx : NULL;
    return tr__cx_in_turn(cx) || tr__cx_outside(cx) ? 0 : TR_EINVAL;
}

/* The worker making a call: NULL from outside (or for cx NULL). */
static inline tr__worker *tr__cx_worker(const tr_ctx *cx)
{
    return cx != NULL ? cx->worker : NULL;
}

/* The actor whose turn cx is in, or NULL. */
static inline tr__actor *tr__cx_actor(const tr_ctx *cx)
{
    return cx != NULL ? cx->actor : NULL;
}

/* The running turn is to give way to `a`, an overloaded actor it sent to
 * (sched/backpressure.c). */
static inline void tr__cx_give_way(tr_ctx *cx, tr__actor *a)
{
    cx->blocked_by = a;
}

/* Whether the running actor holds its senders: while on, it stays
 * overloaded at the end of its turns even when its mailbox is empty, so
 * that actors sending to it wait (sched/backpressure.c), until a turn of
 * its own turns it off. For an actor whose backlog is not its mailbox (a
 * node connection's output waiting for the socket: dist/frag.c); it must
 * only turn it on when a message of its own is sure to come (an event it
 * waits for), or its waiters wait for ever. In a turn only. */
static inline void tr__cx_hold_senders(tr_ctx *cx, bool on)
{
    tr__actor *a = cx->actor;
    tr__flags_store(a, on ? a->flags | TR__HOLDING : a->flags & ~TR__HOLDING);
}

/* Makes cx a worker's context (sched/runtime.c). */
static inline void tr__cx_init_worker(tr_ctx *cx, tr_runtime *rt, tr__worker *w)
{
    cx->rt = rt;
    cx->worker = w;
}

/* Puts r on the running actor's list of what it holds (released however
 * it ends). In a turn only. */
static inline void tr__cx_hold(tr_ctx *cx, tr__resource *r)
{
    tr__side *s = tr__side_of(cx->actor);
    r->next = s->resources;
    s->resources = r;
    tr__flags_store(cx->actor, cx->actor->flags | TR__HELD);
}

/* The running actor's list of what it holds, to search or unlink from. In
 * a turn only. */
static inline tr__resource **tr__cx_held(tr_ctx *cx)
{
    return &tr__side_of(cx->actor)->resources;
}

#endif
