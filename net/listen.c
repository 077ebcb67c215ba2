/* net/listen.c — the TCP listener actor.
 *
 * Accepts until EAGAIN at each readiness (at most ACCEPT_ROUNDS per turn,
 * then a message to itself), spawning one connection actor per socket.
 * When descriptors run out (EMFILE, ENFILE) or memory does, it stops
 * accepting and tries again after retry_ns on a timer: pending connections
 * wait in the kernel's backlog, and nothing spins meanwhile.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "../mailbox/msg.h"
#include "../reactor/reactor.h"
#include "../sched/sched.h"
#include "net.h"
#include "troupe/io.h"
#include "troupe/timer.h"

#define ACCEPT_ROUNDS 64
#define DEFAULT_RETRY_NS (100 * TR_MSEC)
#define LATER_NS (10 * TR_MSEC) /* tr__socket_later: work put off for want of memory */

typedef struct listener {
    tr__resource res;   /* first: closes the socket, frees the state copy */
    int fd;
    bool paused;
    uint64_t retry_ns;
    tr_tcp_handler handler; /* handler.actor.state: our own heap copy */
} listener;
TR__RESOURCE_FIRST(listener);

static void listener_release(tr_runtime *rt, tr__resource *r)
{
    (void)rt;
    listener *l = (listener *)r;
    tr__fd_close(&l->fd);
    free((void *)l->handler.actor.state);
    l->handler.actor.state = NULL;
}

int tr__spawn_socket(tr_runtime *rt, tr_ctx *cx, tr_behaviour fn, const void *state, size_t size,
                     const tr_actor_spec *user, size_t user_at, tr_pid *pid)
{
    tr_actor_spec spec = {.behaviour = fn, .state = state, .state_size = size,
                          .init = user->init, .on_stop = user->on_stop, .name = user->name};
    tr__spawn_opts o = {.resource_at = 0, .user_at = user_at};
    return tr__spawn_spec(rt, tr__cx_worker(cx), tr_self(cx), &spec, &o, pid);
}

int tr__socket_start(tr_runtime *rt, tr_ctx *cx, tr_pid pid, tr_pid *out)
{
    if (out != NULL)
        *out = pid;
    /* Owed (tr__send_system): a socket actor never started would hold
     * its descriptor for good. */
    return tr__send_system(rt, cx, pid, TR__NET_START);
}

bool tr__socket_later(tr_ctx *cx, uint32_t type)
{
    return tr__timer_system(cx, LATER_NS, type, NULL) == 0 ||
           tr__send_system(tr_ctx_runtime(cx), cx, tr_self(cx), type) == 0;
}

bool tr__socket_reading(tr_ctx *cx, int fd, const tr_msg *m, uint32_t again,
                        void (*read_some)(tr_ctx *cx, void *socket), void *socket)
{
    if (m->type == TR__NET_START) {
        int rc = tr_io_watch(cx, fd, TR_IO_READ);
        /* Out of memory, a listener (a node's among them) would end with
         * no one told, for a shortage that passes: it tries again. */
        if (rc == TR_ENOMEM && tr__socket_later(cx, TR__NET_START))
            return true;
        if (rc != 0) {
            tr_stop(cx); /* the resource closes fd */
            return true;
        }
    } else if (m->type == TR_IO_READABLE || m->type == TR_IO_ERROR || m->type == TR_IO_HUP ||
               m->type == TR_IO_WRITABLE) {
        /* Readiness of a descriptor the behaviour watches itself is the
         * behaviour's; the socket's own HUP and WRITABLE (never asked
         * for) are nobody's. (Once the socket is closed, fd < 0: what
         * comes then is taken as the socket's, as the actor is ending.) */
        const tr_io_event *e = TR_PAYLOAD(m, tr_io_event);
        if (fd >= 0 && e != NULL && e->fd != fd)
            return false;
        if (m->type == TR_IO_HUP || m->type == TR_IO_WRITABLE)
            return true;
    } else if (m->type != again) {
        return false;
    }
    if (fd >= 0)
        read_some(cx, socket);
    return true;
}

static void spawn_conn(tr_ctx *cx, listener *l, int fd, struct sockaddr_storage *peer,
                       socklen_t peer_len)
{
    size_t size = tr__conn_state_size(l->handler.actor.state_size);
    void *state = malloc(size);
    tr_pid pid;
    if (state == NULL) {
        tr__sys_close(fd);
        return;
    }
    tr__conn_prepare(state, &l->handler, fd, peer, peer_len, 0);
    int err = tr__spawn_socket(tr_ctx_runtime(cx), cx, tr__conn_behaviour, state, size,
                               &l->handler.actor, tr__conn_state_size(0), &pid);
    free(state);
    if (err != 0) {
        tr__sys_close(fd);
        return;
    }
    /* From here the connection's resource owns fd. */
    (void)tr__socket_start(tr_ctx_runtime(cx), cx, pid, NULL);
}

/* While paused (out of descriptors), readiness is ignored until the retry
 * timer's TR__NET_RETRY. */
static void accept_some(tr_ctx *cx, void *socket)
{
    listener *l = socket;
    if (l->paused)
        return;
    for (int i = 0; i < ACCEPT_ROUNDS; i++) {
        struct sockaddr_storage peer;
        socklen_t len = sizeof peer;
        int fd = tr__sys_accept4(l->fd, (struct sockaddr *)&peer, &len,
                                 SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd >= 0) {
            spawn_conn(cx, l, fd, &peer, len);
            continue;
        }
        switch (errno) {
        case EAGAIN:
#if EWOULDBLOCK != EAGAIN
        case EWOULDBLOCK:
#endif
            return;
        case EINTR:
        case ECONNABORTED:
        case EPROTO:
        case EPERM:
        /* accept(2), Linux: network errors already pending on the new
         * connection are passed on here, to be treated as EAGAIN. */
        case ENETDOWN:
        case ENOPROTOOPT:
        case EHOSTDOWN:
        case ENONET:
        case EHOSTUNREACH:
        case EOPNOTSUPP:
        case ENETUNREACH:
            continue; /* that connection is gone; the next may be fine */
        default:      /* EMFILE, ENFILE, ENOBUFS, ENOMEM, ...: wait and retry */
            l->paused = true;
            if (tr__timer_system(cx, l->retry_ns, TR__NET_RETRY, NULL) != 0)
                l->paused = false; /* no timer: fall back on readiness */
            return;
        }
    }
    tr__socket_again(cx, TR__NET_RETRY);
}

static void listener_behaviour(tr_ctx *cx, void *state, const tr_msg *m)
{
    listener *l = state;
    if (m->type == TR__NET_CLOSE) {
        tr_stop(cx);
        return;
    }
    if (m->type == TR__NET_RETRY)
        l->paused = false; /* the retry timer, or the note to accept on */
    tr__socket_reading(cx, l->fd, m, TR__NET_RETRY, accept_some, l);
}

int tr_tcp_listen(tr_ctx *caller, const tr_tcp_listen_opts *o, tr_pid *out, uint16_t *port)
{
    tr_runtime *rt = tr_ctx_runtime(caller);
    tr_ctx *cx; /* the caller in a turn, NULL from outside */
    if (tr__cx_acting(caller, &cx) != 0)
        return TR_EINVAL;
    /* A name would be every connection's: refused. */
    if (o == NULL || o->handler.actor.behaviour == NULL || o->handler.actor.name != NULL ||
        (o->handler.actor.state == NULL && o->handler.actor.state_size != 0) ||
        (unsigned)o->handler.opts.framing > TR_FRAME_HTTP)
        return TR_EINVAL;
    listener l = {.fd = -1, .retry_ns = o->retry_ns ? o->retry_ns : DEFAULT_RETRY_NS,
                  .handler = o->handler};
    l.res.release = listener_release;
    if (o->handler.actor.state_size != 0) {
        void *copy = malloc(o->handler.actor.state_size);
        if (copy == NULL)
            return TR_ENOMEM;
        memcpy(copy, o->handler.actor.state, o->handler.actor.state_size);
        l.handler.actor.state = copy;
    }
    uint16_t bound;
    int fd = tr__bind_socket(o->host, o->port, SOCK_STREAM, &bound);
    if (fd < 0 || tr__sys_listen(fd, o->backlog > 0 ? o->backlog : SOMAXCONN) != 0) {
        int err = fd < 0 ? fd : -errno;
        if (fd >= 0)
            tr__sys_close(fd);
        free((void *)l.handler.actor.state);
        return err;
    }
    l.fd = fd;
    tr_pid pid;
    tr_actor_spec me = {.behaviour = listener_behaviour, .state = &l, .state_size = sizeof l};
    tr__spawn_opts opts = {.resource_at = 0};
    int err = tr__spawn_spec(rt, tr__cx_worker(cx), tr_self(cx), &me, &opts, &pid);
    if (err != 0) {
        listener_release(rt, &l.res);
        return err;
    }
    if (port != NULL) /* only once there is a listener to own it */
        *port = bound;
    return tr__socket_start(rt, cx, pid, out);
}

int tr_tcp_listener_close(tr_ctx *cx, tr_pid listener)
{
    if (!tr__cx_in_turn(cx))
        return TR_EINVAL;
    /* Owed (tr__send_system): a close lost for want of memory would
     * leave the listener holding the runtime open. */
    return tr__send_system(tr_ctx_runtime(cx), cx, listener, TR__NET_CLOSE);
}

/* ---- outgoing connections ---- */

static int connect_to(tr_runtime *rt, tr_ctx *cx, const tr_tcp_connect_opts *o, tr_pid *out)
{
    /* A NULL host would resolve to loopback: refused, so that a forgotten
     * field is an error rather than a connection to this machine. */
    if (o == NULL || o->host == NULL || o->handler.actor.behaviour == NULL ||
        (o->handler.actor.state == NULL && o->handler.actor.state_size != 0) ||
        (unsigned)o->handler.opts.framing >= TR_FRAME_HTTP) /* HTTP serves only */
        return TR_EINVAL;
    struct sockaddr_storage peer;
    socklen_t len;
    int err = tr__resolve(o->host, o->port, false, SOCK_STREAM, &peer, &len);
    if (err != 0)
        return err;
    size_t size = tr__conn_state_size(o->handler.actor.state_size);
    void *state = malloc(size);
    if (state == NULL)
        return TR_ENOMEM;
    tr__conn_prepare(state, &o->handler, -1, &peer, len, o->timeout_ns);
    tr_pid pid;
    err = tr__spawn_socket(rt, cx, tr__conn_behaviour, state, size, &o->handler.actor,
                           tr__conn_state_size(0), &pid);
    free(state);
    if (err != 0)
        return err;
    return tr__socket_start(rt, cx, pid, out);
}

int tr_tcp_connect(tr_ctx *cx, const tr_tcp_connect_opts *o, tr_pid *conn)
{
    tr_ctx *acting;
    int err = tr__cx_acting(cx, &acting);
    return err != 0 ? err : connect_to(tr_ctx_runtime(cx), acting, o, conn);
}
