/* troupe/actor.h — actors: spawn, send, stop.
 *
 * An actor is private state plus a behaviour. The runtime calls the
 * behaviour with one message at a time, never on two threads at once, so
 * the state needs no locks. Inside a behaviour, the tr_ctx gives access to
 * the runtime: who am I, send, spawn, stop.
 *
 * The functions taking a tr_ctx may only be called by the thread running
 * that behaviour, during the call. To act from outside any actor, use the
 * tr_runtime_* counterparts in troupe/runtime.h.
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

/* Spawns an actor running `fn` with a private copy of `state_size` bytes
 * of `state` (state may be NULL when state_size is 0; the copy is then
 * zero-sized). A few words of state live inside the actor's slot; more
 * cost one allocation at spawn. Stores its pid in *pid if pid is not NULL.
 * Errors: TR_EINVAL (fn NULL, state NULL with a size, not inside a
 * behaviour), TR_ENOMEM, TR_EAGAIN (actor table full). */
TR_API int tr_spawn(tr_ctx *cx, tr_behaviour fn, const void *state, size_t state_size,
                    tr_pid *pid);

/* Sends a copy of `len` bytes of `data` as a message of `type` to `to`.
 * Delivery is asynchronous and per-sender FIFO. A send to an actor that
 * has stopped (or stops before handling it) is not an error: the message
 * becomes a dead letter, counted in the statistics.
 * Errors: TR_EINVAL (type reserved, data NULL with len, not inside a
 * behaviour), TR_EMSGSIZE, TR_ENOPID (never a valid pid of this runtime),
 * TR_ENOMEM. */
TR_API int tr_send(tr_ctx *cx, tr_pid to, uint32_t type, const void *data, size_t len);

/* TR_SEND_VALUE(cx, to, type, value): tr_send of the bytes of `value`,
 * its size filled in: tr_send(cx, to, type, &(value), sizeof(value)).
 * value must be an lvalue (a variable, a member, an array element: an
 * rvalue such as 42 does not compile) and is evaluated once (sizeof does
 * not evaluate); a pointer sends the pointer, not what it points to.
 * Read it back with TR_PAYLOAD(m, T) (msg.h). Errors: as tr_send. */
#define TR_SEND_VALUE(cx, to, type, value) tr_send((cx), (to), (type), &(value), sizeof(value))

/* Sends a message from tr_msg_alloc() without copying it. The message
 * belongs to the runtime from this call on, whatever the result.
 * Errors: as tr_send(). */
TR_API int tr_msg_send(tr_ctx *cx, tr_pid to, tr_msg *m);

/* The pid of the actor whose behaviour is running. */
TR_API tr_pid tr_self(const tr_ctx *cx);

/* The runtime the running actor belongs to. */
TR_API tr_runtime *tr_ctx_runtime(const tr_ctx *cx);

/* Registers fn(arg) to run when the running actor ends, however it ends —
 * tr_stop, a failure, or tr_runtime_destroy while it is still alive: the
 * place to free what its state points to (pass the `state` the behaviour
 * was given as arg). Several may be registered; they run last-registered
 * first, before the state goes. Errors: TR_EINVAL (fn NULL, not inside a
 * behaviour), TR_ENOMEM. */
TR_API int tr_on_stop(tr_ctx *cx, void (*fn)(void *arg), void *arg);

/* Stops the running actor once the current message has been handled.
 * Messages still in its mailbox, and any sent to it later, become dead
 * letters; its slot is reused under a new generation, so its pid is never
 * delivered to another actor. */
TR_API void tr_stop(tr_ctx *cx);

#ifdef __cplusplus
}
#endif

#endif
