/* troupe/io.h — descriptors and signals as messages.
 *
 * An actor can watch a file descriptor it owns (a pipe, an eventfd, a
 * device, a socket): the reactor turns readiness into messages in its
 * mailbox. Watches are edge-triggered: after TR_IO_READABLE, read until
 * the call fails with EAGAIN, or no further READABLE will come for data
 * that is already there; likewise for writes. The descriptor should be
 * non-blocking. A watch is dropped when its actor stops; the descriptor
 * itself stays open (closing it is the owner's job).
 *
 * Every message below carries a tr_io_event (or, for TR_SIGNAL, a
 * tr_signal_event) as its payload.
 */
#ifndef TROUPE_IO_H
#define TROUPE_IO_H

#include <stdint.h>

#include "api.h"
#include "actor.h"
#include "msg.h"
#include "msgtypes.h" /* TR_IO_READABLE, TR_IO_WRITABLE, TR_IO_HUP, TR_IO_ERROR, TR_SIGNAL */

#ifdef __cplusplus
extern "C" {
#endif

/* Interest flags for tr_io_watch. */
#define TR_IO_READ  1u
#define TR_IO_WRITE 2u

typedef struct tr_io_event {
    int fd;
} tr_io_event;

typedef struct tr_signal_event {
    int signo;
} tr_signal_event;

/* Watches fd for the interests in `events` (TR_IO_READ, TR_IO_WRITE) on
 * behalf of the running actor. A watched descriptor holds the runtime
 * open. Errors: TR_EINVAL (bad fd or events, not inside a behaviour: the
 * outside context is refused), TR_EBUSY (this file already watched under
 * that number in this runtime, or one of the runtime's own descriptors),
 * TR_ENOMEM, or a negative errno from epoll (e.g. -EPERM for a regular
 * file). Inside a turn only. */
TR_API int tr_io_watch(tr_ctx *cx, int fd, unsigned events);

/* Changes the interests of a descriptor the running actor watches.
 * Errors: TR_EINVAL (not watched by this actor, bad events, not inside a
 * behaviour), -errno from epoll_ctl. Inside a turn only. */
TR_API int tr_io_modify(tr_ctx *cx, int fd, unsigned events);

/* Stops watching fd. Readiness messages already queued may still arrive.
 * Unwatch before you close fd. A watch left on a closed descriptor
 * watches nothing, yet holds the runtime open, until tr_io_unwatch, the
 * actor's end, or the next watch of its number (for whatever file has it
 * then, the runtime's own sockets included): by the same actor, that
 * renews it; by another, the left watch gives way (it may still be
 * unwatched; tr_io_modify: TR_EINVAL).
 * Errors: TR_EINVAL (not watched by this actor, not inside a behaviour).
 * Inside a turn only. */
TR_API int tr_io_unwatch(tr_ctx *cx, int fd);

/* Subscribes the running actor to signal signo (SIGINT, SIGTERM, SIGHUP,
 * SIGUSR1, ...): each delivery to the process becomes a TR_SIGNAL
 * message. While any actor of any runtime subscribes, the signal's default
 * action is replaced; it is restored when the last one unsubscribes. A
 * subscription holds the runtime open and ends when the actor stops.
 * Deliveries reach the runtimes through one descriptor (an eventfd) that
 * is open while any runtime exists and closed with the last one.
 * Errors: TR_EINVAL (signo not catchable: SIGKILL, SIGSTOP, SIGSEGV, ...;
 * or not inside a behaviour), TR_EBUSY (already subscribed), TR_ENOMEM.
 * Inside a turn only. */
TR_API int tr_signal_watch(tr_ctx *cx, int signo);

/* Ends a subscription. Errors: TR_EINVAL (not subscribed, or not inside
 * a behaviour). Inside a turn only. */
TR_API int tr_signal_unwatch(tr_ctx *cx, int signo);

/* Makes signo stop the runtime (tr_runtime_shutdown): the usual way for a
 * server to end cleanly on SIGINT or SIGTERM. The handler is in place when
 * this returns; it stays until the runtime is destroyed, and, like any
 * subscription, holds the runtime open. Calling it twice for a signal is
 * harmless. Errors: TR_EINVAL (rt NULL, signo not catchable). Any thread
 * outside the runtime's behaviours. */
TR_API int tr_runtime_stop_on_signal(tr_runtime *rt, int signo);

#ifdef __cplusplus
}
#endif

#endif
