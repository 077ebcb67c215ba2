/* troupe/error.h — error codes: the one table.
 *
 * Every call that can fail returns 0 on success or a negative code, in the
 * manner of libuv: each TR_E* is the negated errno value that names the
 * same condition, so they compare with errno constants, and socket errors
 * passed through as -errno (-ECONNRESET, -EADDRINUSE, ...) share the space.
 *
 * TR_ERRORS below is the only list of the library's own codes: it makes
 * the constants here and tr_strerror's texts (actors/error.c), and the
 * `errors` test suite walks it. A code is listed when the library itself
 * chooses it; a text must be true for every function that returns the
 * code, so where one code covers several conditions the text names them
 * all rather than the first caller's. To add a code: one X line.
 */
#ifndef TROUPE_ERROR_H
#define TROUPE_ERROR_H

#include <errno.h>

#include "api.h"

#ifdef __cplusplus
extern "C" {
#endif

/* X(name, errno, text). Who returns what:
 *   EINVAL   a NULL or out-of-range argument, a reserved message type, a
 *            context call outside its behaviour, or something the caller
 *            does not have: a watch, a subscription, a monitor, a name
 *   ENOPID   no such actor: a pid never issued by this runtime (send,
 *            link, monitor, timer cancel), or not alive (tr_register)
 *   EAGAIN   a resource that frees up later: the actor table is full
 *            (every spawn, timers included), or tr_udp_send's socket buffer
 *   EBUSY    already in use: tr_runtime_run/start on a running runtime,
 *            tr_io_watch of a watched descriptor, tr_signal_watch of a
 *            signal the actor already has. One code, not three: in each
 *            case the thing asked for is taken and the call did nothing,
 *            and callers already compare with TR_EBUSY
 *   EDEADLK  a blocking call (run, join, a blocking request) on a worker
 *   ENOBUFS  tr_tcp_send past max_output (nothing queued), or the kernel
 *            out of buffers for a datagram: either way, output is full
 *   ENOTCONN a TCP call outside a connection's behaviour, before it is
 *            connected or once it closes; a UDP call outside a UDP
 *            actor's behaviour, or after tr_udp_close
 *   EEXIST   tr_register: the name is taken, or the actor already has one
 *   ETIMEDOUT  a connect that did not finish in time (and the kernel's
 *            own socket timeout); a request whose answer did not come
 *   ENOREPLY tr_call: the target ended or returned without answering
 *   EHOSTUNREACH  a host name that does not resolve (getaddrinfo fails)
 *   ECONNABORTED  the close reason of tr_tcp_abort
 *   ELINETOOLONG, EBADFRAME  framing errors, in TR_TCP_ERROR/CLOSED */
#define TR_ERRORS(X)                                                                  \
    X(TR_EINVAL, EINVAL, "invalid argument")                                          \
    X(TR_ENOMEM, ENOMEM, "out of memory")                                             \
    X(TR_ENOPID, ESRCH, "no such actor")                                              \
    X(TR_EMSGSIZE, EMSGSIZE, "message too long")                                      \
    X(TR_EAGAIN, EAGAIN, "resource temporarily unavailable (actor table or socket "   \
                         "buffer full)")                                              \
    X(TR_EBUSY, EBUSY, "already in use (runtime running, descriptor watched or "      \
                       "signal subscribed)")                                          \
    X(TR_EDEADLK, EDEADLK, "blocking call on a worker thread would deadlock")         \
    X(TR_ENOTSTARTED, ECHILD, "runtime not started")                                  \
    X(TR_ENOBUFS, ENOBUFS, "output buffer full")                                      \
    X(TR_ELINETOOLONG, EOVERFLOW, "line too long")                                    \
    X(TR_EBADFRAME, EBADMSG, "malformed frame")                                       \
    X(TR_ENOTCONN, ENOTCONN, "not a socket actor, or its socket is not connected")   \
    X(TR_EEXIST, EEXIST, "name taken, or the actor already has one")                  \
    X(TR_ETIMEDOUT, ETIMEDOUT, "timed out")                                           \
    X(TR_ENOREPLY, ENOMSG, "no reply: the target ended or returned without answering") \
    X(TR_EHOSTUNREACH, EHOSTUNREACH, "host unknown or unreachable")                   \
    X(TR_ECONNABORTED, ECONNABORTED, "connection aborted")

/* The constants: an enum, so that the compiler sees the list whole (and
 * tr_strerror's switch rejects a value listed twice). */
enum {
    TR_OK = 0,
#define TR__ERROR_ENUM(name, errnum, text) name = -(errnum),
    TR_ERRORS(TR__ERROR_ENUM)
#undef TR__ERROR_ENUM
};

/* A short, static, human-readable text for an error code: the table's for
 * the codes above, the C library's for other -errno values that calls pass
 * through (strerrordesc_np: static and not localised), "success" for 0,
 * "unknown error" for anything else. Never NULL; never fails. Any thread. */
TR_API const char *tr_strerror(int err);

#ifdef __cplusplus
}
#endif

#endif
