/* troupe/actor.h — actors: spawn, send, stop.
 *
 * An actor is private state plus a behaviour. The runtime calls the
 * behaviour with one message at a time, never on two threads at once, so
 * the state needs no locks. Inside a behaviour, the tr_ctx gives access to
 * the runtime: who am I, send, spawn, stop.
 *
 * The functions taking a tr_ctx may only be called by the thread running
 * that behaviour, during the call — or, from any thread outside the
 * runtime, with the runtime's outside context (tr_runtime_ctx, runtime.h):
 * one context, so that no call exists twice. Calls that only mean
 * something inside a turn (tr_self, tr_stop, links, monitors, watches)
 * refuse the outside context as they refuse a worker's between turns.
 */
#ifndef TROUPE_ACTOR_H
#define TROUPE_ACTOR_H

#include <stddef.h>

#include "api.h"
#include "msg.h"
#include "pid.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct tr_ctx tr_ctx;
typedef struct tr_runtime tr_runtime;

/* A behaviour handles one message. `state` points at the actor's own copy
 * of the state it was spawned with; `m` is valid until the call returns. */
typedef void (*tr_behaviour)(tr_ctx *cx, void *state, const tr_msg *m);

/* An actor's description: what tr_spawn_spec starts, and what supervisor
 * children, TCP handlers and UDP sockets are made of. Only `behaviour` is
 * required; zero the rest (designated initialisers do) to leave them out.
 *
 * init runs in the actor's context (tr_self, tr_send, tr_spawn, tr_on_stop,
 * tr_stop, ... all work) in its first turn, before its behaviour sees any
 * message, even if none ever comes; `spawner` is the actor that spawned it
 * (TR_PID_NONE from outside the runtime). It runs at every start, a
 * supervisor's restarts included. A non-zero result ends the actor with
 * that value as its exit reason, as tr_exit(cx, result, "init failed")
 * would, before its behaviour sees a message (init may also call tr_stop
 * or tr_exit itself). Spawn has returned long before: the spawner learns
 * the reason as links and monitors do (tr_spawn_link_spec,
 * tr_spawn_monitor). An exit signal that arrives before init has run
 * (possible only for a named actor, found by its name at once) ends the
 * actor without it.
 *
 * on_stop runs exactly once for every actor whose spawn succeeded, however
 * it ends: tr_stop, tr_exit, a failed init, a linked exit, tr_kill, a
 * supervisor's shutdown, or tr_runtime_destroy while it is alive (reason
 * TR_EXIT_SHUTDOWN) — even if it never ran a turn, and so never ran init;
 * after a failed init too, so it must cope with what init left half-made.
 * It gets the actor's state and the exit reason, after the functions
 * registered with tr_on_stop and before the actor's name is freed and its
 * links and monitors hear of the end. It has no context and may run
 * inside tr_runtime_destroy, the runtime half torn down: it may free
 * memory and close what the state holds, and call no troupe function. */
typedef struct tr_actor_spec {
    tr_behaviour behaviour;  /* required */
    const void *state;       /* copied into the actor (NULL with size 0) */
    size_t state_size;
    int (*init)(tr_ctx *cx, void *state, tr_pid spawner); /* optional */
    void (*on_stop)(void *state, int reason);              /* optional */
    const char *name;        /* optional: registered at spawn (tr_spawn_spec) */
} tr_actor_spec;

/* Spawns the actor `spec` describes, with a private copy of its state, and
 * stores its pid in *pid if pid is not NULL. With a name, the actor is
 * registered under it before this returns (tr_whereis finds it at once),
 * atomically: if the name is taken, nothing is started — no slot is kept,
 * neither init nor on_stop runs — and the call fails with TR_EEXIST. Any
 * spawn that fails starts nothing and runs neither callback.
 * Errors: TR_EINVAL (spec or behaviour NULL, state NULL with a size, a name
 * empty or TR_NAME_MAX bytes or longer, a worker's context between turns), TR_ENOMEM,
 * TR_EAGAIN (actor table full), TR_EEXIST (name taken). Threads: a
 * behaviour's context, or tr_runtime_ctx's from any thread (then init gets
 * TR_PID_NONE as spawner). */
TR_API int tr_spawn_spec(tr_ctx *cx, const tr_actor_spec *spec, tr_pid *pid);

/* tr_spawn_spec with only behaviour and state: an actor without init,
 * on_stop or name. Errors: as tr_spawn_spec. Threads: as tr_spawn_spec. */
TR_API int tr_spawn(tr_ctx *cx, tr_behaviour fn, const void *state, size_t state_size,
                    tr_pid *pid);

/* Sends a copy of `len` bytes of `data` as a message of `type` to `to`.
 * Delivery is asynchronous and per-sender FIFO. A send to an actor that
 * has stopped (or stops before handling it) is not an error: the message
 * becomes a dead letter, counted in the statistics. From the outside
 * context (tr_runtime_ctx) the message has no sender (TR_PID_NONE).
 * Errors: TR_EINVAL (type reserved, data NULL with len, cx NULL or a
 * worker's context between turns), TR_EMSGSIZE, TR_ENOPID (never a valid
 * pid of this runtime), TR_ENOMEM. Threads: a behaviour's context, or
 * tr_runtime_ctx's from any thread. */
TR_API int tr_send(tr_ctx *cx, tr_pid to, uint32_t type, const void *data, size_t len);

/* tr_send for a thread outside the runtime that must not outpace the
 * receiver (a producer feeding an actor): first waits while `to` is
 * behind — overloaded, the signal that makes actors that send to it wait
 * (README, Backpressure), or not running at all while messages wait for
 * it — then sends as tr_send from tr_runtime_ctx(rt). The wait polls
 * (yielding the CPU for the first 100 us, then sleeping, up to 1 ms at a
 * time), so it costs the waiting thread, never the runtime. timeout_ns bounds the wait (0: no
 * bound); past it nothing is sent. A receiver that stops meanwhile makes
 * the message a dead letter, as tr_send. A pid of another node, or a
 * runtime in simulation (where nothing runs while a thread waits), does
 * not wait. Errors: those of tr_send, TR_EINVAL (rt NULL), TR_ETIMEDOUT,
 * TR_ENOTSTARTED (the runtime is not running, or is stopping, while the
 * receiver is behind: nothing is sent), TR_EDEADLK (on a worker thread:
 * a behaviour's sends already wait, at the end of its turn). Any thread
 * outside the runtime. */
TR_API int tr_send_wait(tr_runtime *rt, tr_pid to, uint32_t type, const void *data, size_t len,
                        uint64_t timeout_ns);

/* TR_SEND_VALUE(cx, to, type, value): tr_send of the bytes of `value`,
 * its size filled in: tr_send(cx, to, type, &(value), sizeof(value)).
 * value must be an lvalue (a variable, a member, an array element: an
 * rvalue such as 42 does not compile) and is evaluated once (sizeof does
 * not evaluate); a pointer sends the pointer, not what it points to.
 * Read it back with TR_PAYLOAD(m, T) (msg.h). Errors: as tr_send. */
#define TR_SEND_VALUE(cx, to, type, value) tr_send((cx), (to), (type), &(value), sizeof(value))

/* Sends a message from tr_msg_alloc() without copying it. The message
 * belongs to the runtime from this call on, whatever the result.
 * Errors: as tr_send() (TR_EINVAL also for m NULL). Threads: as tr_send. */
TR_API int tr_msg_send(tr_ctx *cx, tr_pid to, tr_msg *m);

/* The pid of the actor whose behaviour is running; TR_PID_NONE for the
 * outside context or cx NULL. Never fails. Any context: a behaviour's, or
 * tr_runtime_ctx's from any thread. */
TR_API tr_pid tr_self(const tr_ctx *cx);

/* The runtime a context belongs to (the running actor's); NULL for cx
 * NULL. Never fails. Any context: a behaviour's, or tr_runtime_ctx's from
 * any thread. */
TR_API tr_runtime *tr_ctx_runtime(const tr_ctx *cx);

/* Registers fn(arg) to run when the running actor ends, however it ends —
 * tr_stop, a failure, or tr_runtime_destroy while it is still alive: the
 * place to free what its state points to (pass the `state` the behaviour
 * was given as arg). Several may be registered; they run last-registered
 * first, before the state goes, and before the spec's on_stop. For cleanup
 * known at spawn, prefer tr_actor_spec.on_stop: it needs no turn.
 * Errors: TR_EINVAL (fn NULL, not inside a behaviour), TR_ENOMEM.
 * Inside a turn only. */
TR_API int tr_on_stop(tr_ctx *cx, void (*fn)(void *arg), void *arg);

/* Stops the running actor once the current message has been handled.
 * Messages still in its mailbox, and any sent to it later, become dead
 * letters; its slot is reused under a new generation, so its pid is never
 * delivered to another actor. Never fails; inside a turn only: elsewhere
 * (the outside context, a worker's between turns) it does nothing, and
 * debug builds (SAN=, DEBUG=1) abort there to show the bug. */
TR_API void tr_stop(tr_ctx *cx);

#ifdef __cplusplus
}
#endif

#endif
