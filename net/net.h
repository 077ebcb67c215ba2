/* net/net.h — socket actors (internal). */
#ifndef TR_NET_NET_H
#define TR_NET_NET_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>
#include <unistd.h>

#include "../actors/actor.h"
#include "../actors/actors.h"
#include "../sys/sys.h"
#include "frame.h"
#include "troupe/net.h"

/* Internal message types: this module's part of the internal range
 * (troupe/msgtypes.h). */
#define TR__NET_START   (TR__MSG_NET_FIRST + 0) /* begin: watch, connect */
#define TR__NET_MORE    (TR__MSG_NET_FIRST + 1) /* go on reading/delivering */
#define TR__NET_TIMEOUT (TR__MSG_NET_FIRST + 2) /* connect timer */
#define TR__NET_RETRY   (TR__MSG_NET_FIRST + 3) /* listener: accept again */
#define TR__NET_CLOSE   (TR__MSG_NET_FIRST + 4) /* listener: close */
_Static_assert(TR__NET_CLOSE <= TR__MSG_NET_LAST, "net types past their range");

/* Resolves host:port (numeric or a name) to its first address. 0,
 * TR_EHOSTUNREACH (does not resolve) or TR_ENOMEM. */
int tr__resolve(const char *host, uint16_t port, bool passive, int socktype,
                struct sockaddr_storage *addr, socklen_t *len);

/* tr__resolve, then a non-blocking, close-on-exec socket of the address's
 * family: the fd, or a negative code (addr and len hold the address). */
int tr__socket_for(const char *host, uint16_t port, bool passive, int socktype,
                   struct sockaddr_storage *addr, socklen_t *len);

/* A non-blocking, close-on-exec socket bound to host:port, with
 * SO_REUSEADDR if it is SOCK_STREAM (not for datagrams: see addr.c); the
 * bound port is stored. The fd, or a negative code (-EADDRINUSE: the port
 * is taken). */
int tr__bind_socket(const char *host, uint16_t port, int socktype, uint16_t *bound);

/* Spawns a socket actor: fn with a state that begins with its resource
 * (released however the actor ends) and holds the user's state from
 * user_at on, where the user spec's init and on_stop find it; the user
 * spec's name, if any, is the actor's. cx NULL from outside. */
int tr__spawn_socket(tr_runtime *rt, tr_ctx *cx, tr_behaviour fn, const void *state,
                     size_t size, const tr_actor_spec *user, size_t user_at, tr_pid *pid);

/* Hands a socket actor just spawned its start message, and its pid to
 * *out if asked: the last step of listen, connect and UDP open. */
int tr__socket_start(tr_runtime *rt, tr_ctx *cx, tr_pid pid, tr_pid *out);

/* The messages every reading socket actor (a listener, a UDP socket)
 * takes alike: its start (watch fd for reading, then read: data may be
 * waiting already), readiness, and its note to itself `again` to read on
 * (read_some(cx, socket) for each, if fd is still open). A socket that
 * cannot be watched stops its actor (its resource then closes fd). False
 * for any other message, which is the caller's. */
bool tr__socket_reading(tr_ctx *cx, int fd, const tr_msg *m, uint32_t again,
                        void (*read_some)(tr_ctx *cx, void *socket), void *socket);

/* Work put off for want of memory (a watch, a read with no buffer to
 * read into): `type` to the running socket actor itself a moment later
 * (10 ms), or, without memory for a timer, at its next turn (through the
 * reserve, mailbox/msg.c). False if neither could be had. */
bool tr__socket_later(tr_ctx *cx, uint32_t type);

/* A socket actor's note to itself to read on in its next turn (it stopped
 * after so many rounds, so that one busy socket cannot hold a worker):
 * 0, or the send's error. */
static inline int tr__socket_again(tr_ctx *cx, uint32_t type)
{
    return tr__send_system(tr_ctx_runtime(cx), cx, tr_self(cx), type);
}

/* The state a connection actor is spawned with: a tr__conn followed by the
 * user's state. fd is an accepted socket, or -1 with `connect_to` set. */
size_t tr__conn_state_size(size_t user_size);
void tr__conn_prepare(void *state, const tr_tcp_handler *h, int fd,
                      const struct sockaddr_storage *peer, socklen_t peer_len,
                      uint64_t connect_timeout_ns);
void tr__conn_behaviour(tr_ctx *cx, void *state, const tr_msg *m);
/* Writes what the running connection has queued now, not at its turn's
 * end: for output that must not wait behind a long turn (a node
 * connection's tick while a big message comes in). */
void tr__tcp_flush(tr_ctx *cx);

/* Closes *fd if it is open, and marks it closed. */
static inline void tr__fd_close(int *fd)
{
    if (*fd >= 0)
        tr__sys_close(*fd);
    *fd = -1;
}

#endif
