/* troupe/timer.h — timers: messages sent later, once or periodically.
 *
 * A timer is an actor: starting one gives its pid, by which it can be
 * cancelled from any thread. When it fires, its target receives the
 * timer's message (type and payload as given), with `from` set to the
 * timer's pid. Timers run on the reactor's hierarchical timing wheel:
 * start and cancel are O(1); resolution is 2^19 ns (about 0.5 ms).
 *
 * Guarantees:
 *   - a timer never fires before its delay has passed (monotonic clock);
 *   - tr_timer_cancel returning 1 means no message of that timer will be
 *     delivered after the call (for a periodic timer: no further one);
 *   - a timer whose target has stopped fires into a dead letter;
 *   - a pending timer keeps tr_runtime_run from returning (it holds the
 *     runtime open), but never delays tr_runtime_shutdown.
 *
 * Memory: a cancelled timer's slot and blocks go back when the reactor
 * next sweeps its wheel (within a few polls while cancelled timers are
 * half of those filed), not when it would have been due; moving a
 * deadline by cancel and start is therefore fine at any rate.
 */
#ifndef TROUPE_TIMER_H
#define TROUPE_TIMER_H

#include <stddef.h>
#include <stdint.h>

#include "api.h"
#include "actor.h"
#include "pid.h"

#ifdef __cplusplus
extern "C" {
#endif

#define TR_MSEC UINT64_C(1000000)
#define TR_SEC UINT64_C(1000000000)

typedef struct tr_timer_spec {
    uint64_t delay_ns;   /* first expiry, from now */
    uint64_t period_ns;  /* then every period; 0 = one-shot */
    tr_pid to;           /* the target */
    uint32_t type;       /* the message to send: user type ... */
    const void *data;    /* ... and payload, copied at start */
    size_t len;
} tr_timer_spec;

/* Starts a timer; stores its pid in *timer if timer is not NULL.
 * Errors: TR_EINVAL (spec NULL, reserved type, data NULL with len, cx NULL
 * or a worker's context between turns), TR_EMSGSIZE, TR_ENOMEM, TR_EAGAIN
 * (actor table full). Threads: a behaviour's context, or
 * tr_runtime_ctx's from any thread. */
TR_API int tr_timer_start(tr_ctx *cx, const tr_timer_spec *spec, tr_pid *timer);

/* One-shot: sends the message to `to` after delay_ns. Errors: as
 * tr_timer_start. Threads: as tr_timer_start. */
TR_API int tr_send_after(tr_ctx *cx, uint64_t delay_ns, tr_pid to, uint32_t type,
                         const void *data, size_t len);

/* Cancels a pending timer. Returns 1 if it was pending and is now
 * cancelled (nothing more will be delivered), 0 if it was not pending (it
 * has fired, was cancelled before, or the pid is not a timer's).
 * Errors: TR_EINVAL (cx NULL), TR_ENOPID (never a valid pid). Any context
 * of the runtime: a behaviour's, between turns, or tr_runtime_ctx's.
 * It may wait for an expiry that is being delivered at that instant. */
TR_API int tr_timer_cancel(tr_ctx *cx, tr_pid timer);

#ifdef __cplusplus
}
#endif

#endif
