/* troupe/net.h — TCP and UDP sockets as actors.
 *
 * A listener is an actor that accepts connections; every connection is an
 * actor running the user's behaviour with its own copy of the user's
 * state. The runtime does the socket work inside that actor: it reads,
 * cuts the bytes into frames (raw chunks, lines, msgpack objects, or HTTP
 * requests: troupe/http.h) and calls the behaviour once per frame, in
 * order; it queues what the behaviour writes and drains it as the socket
 * allows. Other actors talk to a connection the usual way — by sending
 * its pid a message — and the connection's behaviour writes.
 *
 * A connection's behaviour receives, in this order:
 *   TR_TCP_CONNECTED   once, first (payload: tr_tcp_info)
 *   TR_TCP_DATA / TR_TCP_LINE / TR_TCP_MSGPACK / TR_HTTP_REQUEST  per frame
 *   TR_TCP_THROTTLED / TR_TCP_UNTHROTTLED        backpressure changes
 *   TR_TCP_ERROR       a framing error (payload: tr_tcp_error)
 *   TR_TCP_CLOSED      once, last (payload: tr_tcp_error: why)
 * interleaved with ordinary messages from other actors and with the
 * readiness of descriptors the behaviour watches itself (io.h). After
 * TR_TCP_CLOSED has been handled the actor stops. A behaviour that calls
 * tr_stop or tr_exit is handed no further frame (nor a UDP behaviour a
 * further datagram), though more were read in the same turn. An
 * unfinished frame (a line without its newline, part of an object) when
 * the peer closes is dropped. A graceful close sends FIN and waits (up to
 * 2 s) for the peer's own close, so that what was written is not lost to
 * a reset.
 *
 * Backpressure: when more than high_water bytes of output are queued, the
 * connection stops reading (TR_TCP_THROTTLED) until the queue drains below
 * low_water (TR_TCP_UNTHROTTLED); with opts.keep_reading it goes on
 * reading and only tells. Past max_output, tr_tcp_send refuses
 * with TR_ENOBUFS and queues nothing: memory stays bounded whatever the
 * peer does, and the behaviour decides (e.g. drop the client).
 *
 * tr_tcp_listen, tr_tcp_connect and tr_udp_open take a behaviour's context
 * or tr_runtime_ctx's; the calls that act on a connection or UDP socket
 * (tr_tcp_send, the close calls, tr_udp_send, ...) are for its own
 * behaviour, in its turn.
 */
#ifndef TROUPE_NET_H
#define TROUPE_NET_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "api.h"
#include "actor.h"
#include "error.h"
#include "msg.h"
#include "msgtypes.h" /* TR_TCP_*, TR_UDP_DATAGRAM */
#include "pid.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Error and close reasons (error.h), beside negative errno values from
 * the socket (-ECONNRESET, -ECONNREFUSED, ...):
 *   TR_ENOBUFS        tr_tcp_send: output queue past max_output
 *   TR_ELINETOOLONG   a line longer than max_line
 *   TR_EBADFRAME      malformed msgpack, or an object past max_frame; a
 *                     malformed HTTP request
 *   TR_EMSGSIZE       an HTTP request past max_header or max_body
 *   TR_ETIMEDOUT      connect timeout (or the kernel's)
 *   TR_ECONNABORTED   tr_tcp_abort
 *   TR_ENOTCONN       a connection's call made outside its behaviour,
 *                     before it connects or after it closes (likewise
 *                     for a UDP actor's calls) */

typedef enum tr_framing {
    TR_FRAME_RAW = 0,  /* TR_TCP_DATA with whatever bytes arrived */
    TR_FRAME_LINE,     /* TR_TCP_LINE per line */
    TR_FRAME_MSGPACK,  /* TR_TCP_MSGPACK per complete object */
    TR_FRAME_HTTP,     /* TR_HTTP_REQUEST per complete request (troupe/http.h) */
} tr_framing;

typedef struct tr_tcp_opts {
    tr_framing framing;
    size_t max_line;    /* LINE: longest line, "\n" included; 0 = 4096 */
    size_t max_frame;   /* MSGPACK: largest object in bytes (nesting at most
                           32 deep); 0 = 1 MiB */
    size_t high_water;  /* stop reading above this much queued output; 0 = 256 KiB */
    size_t low_water;   /* resume below this; 0 = high_water / 4 */
    size_t max_output;  /* tr_tcp_send refuses past this; 0 = 4 MiB */
    int no_nodelay;     /* 1 = leave Nagle's algorithm on (TCP_NODELAY is the default) */
    int keep_reading;   /* 1 = go on reading above high_water (the events still come):
                           for protocols where both ends may write much at once, which
                           would otherwise stop reading each other (node connections) */
    /* HTTP (troupe/http.h): */
    size_t max_header;  /* request line and headers, in bytes; 0 = 8 KiB */
    size_t max_body;    /* body bytes (after de-chunking); 0 = 1 MiB */
    uint64_t header_timeout_ns; /* a request's headers must come within; 0 = 10 s */
} tr_tcp_opts;

/* What a connection actor is spawned with. The actor's state (copied into
 * every connection) is what its behaviour, init and on_stop get; init runs
 * before TR_TCP_CONNECTED (the socket may not be connected yet: write in
 * TR_TCP_CONNECTED), on_stop once the connection's socket is closed. A
 * listener's handler takes no name (TR_EINVAL): every connection would
 * claim it; tr_tcp_connect's may have one. */
typedef struct tr_tcp_handler {
    tr_actor_spec actor;
    tr_tcp_opts opts;
} tr_tcp_handler;

typedef struct tr_tcp_info {
    struct sockaddr_storage peer;
    socklen_t peer_len;
    int fd; /* for getsockopt and the like; never close it yourself */
    /* This end's own address (getsockname as the connection opened): how
     * a client names itself, e.g. in a simulated partition (troupe/sim.h). */
    struct sockaddr_storage local;
    socklen_t local_len;
} tr_tcp_info;

typedef struct tr_tcp_error {
    int reason; /* 0: orderly close; else a negative code as above */
} tr_tcp_error;

typedef struct tr_udp_datagram {
    struct sockaddr_storage from;
    socklen_t from_len;
    uint32_t len;
    unsigned char data[]; /* len bytes */
} tr_udp_datagram;

/* ---- listening ---- */

typedef struct tr_tcp_listen_opts {
    const char *host;   /* numeric IPv4/IPv6 or a name such as "localhost"; NULL = 0.0.0.0 */
    uint16_t port;      /* 0 = any free port */
    int backlog;        /* 0 = SOMAXCONN */
    tr_tcp_handler handler;
    uint64_t retry_ns;  /* pause after EMFILE/ENFILE; 0 = 100 ms */
} tr_tcp_listen_opts;

/* Binds and listens (SO_REUSEADDR) at once, in the calling thread, so that
 * address errors are returned here; then a listener actor accepts until
 * EAGAIN at each readiness and spawns one connection actor per socket.
 * When descriptors run out it pauses and retries after retry_ns, without
 * spinning. Stores the listener's pid and the bound port if asked.
 * Errors: TR_EINVAL (o NULL, no behaviour, state NULL with a size, a
 * handler name, an unknown framing, a worker's context between turns),
 * TR_ENOMEM, TR_EAGAIN
 * (actor table full), TR_EHOSTUNREACH (the host does not resolve), -errno
 * from socket/bind/listen (e.g. -EADDRINUSE). Threads: a behaviour's
 * context, or tr_runtime_ctx's from any thread. */
TR_API int tr_tcp_listen(tr_ctx *cx, const tr_tcp_listen_opts *o, tr_pid *listener, uint16_t *port);

/* Stops a listener (from any actor): it closes its socket and ends.
 * Connections already accepted go on. Errors: TR_EINVAL (not inside a
 * behaviour: the outside context is refused), TR_ENOPID (never a valid
 * pid), TR_ENOMEM (only once the runtime's reserve for such messages is
 * spent too: README, Guarantees). Inside a turn only. */
TR_API int tr_tcp_listener_close(tr_ctx *cx, tr_pid listener);

/* ---- the descriptor limit ---- */

/* Raises this process's soft limit on open descriptors (RLIMIT_NOFILE,
 * often 1,024) to its hard limit, capped at fs.nr_open; never lowers it.
 * For servers, at start: each connection is a descriptor. Not for programs
 * that use select(), which cannot take descriptors past FD_SETSIZE.
 * Stores the limit now in force if asked. Errors: -errno from
 * getrlimit/setrlimit. Any thread; the limit is process-wide. */
TR_API int tr_fd_limit_raise(unsigned long *limit);

/* ---- connecting ---- */

typedef struct tr_tcp_connect_opts {
    const char *host;     /* resolved in the calling thread; required (NULL: TR_EINVAL) */
    uint16_t port;
    uint64_t timeout_ns;  /* 0 = 10 s; on expiry: TR_TCP_CLOSED with TR_ETIMEDOUT */
    tr_tcp_handler handler;
} tr_tcp_connect_opts;

/* Spawns a connection actor that connects to host:port. Its behaviour gets
 * TR_TCP_CONNECTED on success, or only TR_TCP_CLOSED with the reason
 * (-ECONNREFUSED, TR_ETIMEDOUT, and -errno from socket or connect: the
 * socket is made in the actor). Errors: TR_EINVAL (o NULL, no host, no
 * behaviour, state NULL with a size, a bad name, an unknown framing or
 * TR_FRAME_HTTP, a worker's context between turns), TR_ENOMEM, TR_EEXIST
 * (name taken), TR_EAGAIN (actor table full), TR_EHOSTUNREACH (no such
 * host). Threads: as tr_tcp_listen. */
TR_API int tr_tcp_connect(tr_ctx *cx, const tr_tcp_connect_opts *o, tr_pid *conn);

/* ---- inside a connection's behaviour ---- */

/* Bytes queued by tr_tcp_send and not yet written; 0 outside a
 * connection's behaviour. Never fails. In the connection's own turn only. */
TR_API size_t tr_tcp_queued(tr_ctx *cx);

/* Queues len bytes for the peer. What a turn queues is written in one
 * writev as the turn ends (a write of 4 KiB or more into an empty queue
 * goes at once); a write error then closes the connection (TR_TCP_CLOSED
 * carries it). Errors: TR_ENOTCONN (not a connection, not connected yet,
 * or closing or shut down), TR_EINVAL (data NULL with len), TR_ENOBUFS
 * (queue past max_output: nothing queued), TR_ENOMEM (nothing queued;
 * but if a direct write had already sent part of it, the connection
 * closes with TR_ENOMEM, as the stream would otherwise lose the middle
 * of what was sent), -errno from a direct write (the connection then
 * closes with it). In the connection's own turn only. */
TR_API int tr_tcp_send(tr_ctx *cx, const void *data, size_t len);

/* Pause stops delivering frames (and reading) until resume: for
 * protocols that must wait for an answer from another actor before
 * handling the next request. Frames already read stay buffered and
 * resume delivers them first. Neither fails; in the connection's own turn
 * only (elsewhere they do nothing, and debug builds stop there). */
TR_API void tr_tcp_pause(tr_ctx *cx);
TR_API void tr_tcp_resume(tr_ctx *cx);

/* Three ways to end a connection, each in the connection's own turn only,
 * each failing with TR_ENOTCONN on a socket that is not a connection or
 * is closed already:
 *   shutdown  half-close: no more writing (FIN once the queue drains),
 *             reading goes on;
 *   close     graceful: stop reading, write what is queued, then close;
 *             TR_TCP_CLOSED (reason 0) follows;
 *   abort     drop the queue and reset the connection now (RST);
 *             TR_TCP_CLOSED (reason TR_ECONNABORTED) follows. */
TR_API int tr_tcp_shutdown(tr_ctx *cx);
TR_API int tr_tcp_close(tr_ctx *cx);
TR_API int tr_tcp_abort(tr_ctx *cx);

/* ---- UDP ---- */

typedef struct tr_udp_opts {
    const char *host;   /* local address; NULL = 0.0.0.0 */
    uint16_t port;      /* 0 = any */
    tr_actor_spec actor; /* the socket actor: init runs before the first
                          * datagram, on_stop after the socket is closed;
                          * a name is registered as by tr_spawn_spec */
} tr_udp_opts;

/* Opens a UDP socket actor: each datagram arrives as TR_UDP_DATAGRAM, and
 * nothing else of the socket's (the readiness of descriptors the
 * behaviour watches itself arrives as io.h says). The port is its own (no
 * SO_REUSEADDR): one that another socket holds is -EADDRINUSE. Stores
 * its pid and bound port if asked. Errors: as tr_tcp_listen (a name is
 * allowed), TR_EEXIST (name taken: the socket is closed).
 * Threads: as tr_tcp_listen. */
TR_API int tr_udp_open(tr_ctx *cx, const tr_udp_opts *o, tr_pid *sock, uint16_t *port);
/* Inside a UDP actor's behaviour: sends one datagram. Errors: TR_ENOTCONN
 * (not a UDP actor, or closed), TR_EINVAL (to NULL, data NULL with len),
 * -errno from sendto (TR_EAGAIN when the socket buffer is full: UDP may
 * drop; TR_EMSGSIZE for a datagram too large). In the UDP actor's own
 * turn only. */
TR_API int tr_udp_send(tr_ctx *cx, const struct sockaddr *to, socklen_t to_len, const void *data,
                       size_t len);

/* Closes the running UDP actor's socket; the actor then stops.
 * Errors: TR_ENOTCONN (not a UDP actor, or already closed). In the UDP
 * actor's own turn only. */
TR_API int tr_udp_close(tr_ctx *cx);

#ifdef __cplusplus
}
#endif

#endif
