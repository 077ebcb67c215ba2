/* net/udp.c — the UDP socket actor. Each datagram is handed to the
 * behaviour as TR_UDP_DATAGRAM (at most READ_ROUNDS per turn). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "../actors/context.h"
#include "../mailbox/msg.h"
#include "../sched/sched.h"
#include "net.h"
#include "troupe/io.h"

#define READ_ROUNDS 64

typedef struct udp {
    tr__resource res; /* first: closes the socket */
    int fd;
    tr_behaviour user;
} udp;
TR__RESOURCE_FIRST(udp);

#define USER_OFFSET ((sizeof(udp) + 15) & ~(size_t)15)

static void udp_release(tr_runtime *rt, tr__resource *r)
{
    (void)rt;
    udp *u = (udp *)r;
    tr__fd_close(&u->fd);
}

static void receive_some(tr_ctx *cx, void *socket)
{
    udp *u = socket;
    for (int i = 0; i < READ_ROUNDS; i++) {
        tr_msg *m = tr__scratch_msg(TR_UDP_DATAGRAM);
        if (m == NULL) {
            /* No buffer to read into yet (the thread's first): the
             * datagrams wait in the socket, and no new readiness may come
             * for them (edge-triggered), so the socket reads again later. */
            if (!tr__socket_later(cx, TR__NET_MORE))
                fprintf(stderr, "troupe: a UDP socket cannot read for want of memory; "
                                "it reads again when a datagram comes\n");
            return;
        }
        tr_udp_datagram *d = (tr_udp_datagram *)m->data;
        d->from_len = sizeof d->from;
        ssize_t n = tr__sys_recvfrom(u->fd, d->data, TR__SCRATCH - sizeof *d, MSG_DONTWAIT,
                             (struct sockaddr *)&d->from, &d->from_len);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return; /* EAGAIN, or an error report (ICMP) that the next read clears */
        }
        d->len = (uint32_t)n;
        m->len = (uint32_t)(sizeof *d + (size_t)n);
        m->to = tr_self(cx);
        u->user(cx, (char *)u + USER_OFFSET, m);
        if (u->fd < 0 || tr__cx_stopping(cx))
            return; /* closed, or the behaviour ended itself: no more */
    }
    tr__socket_again(cx, TR__NET_MORE);
}

static void udp_behaviour(tr_ctx *cx, void *state, const tr_msg *m)
{
    udp *u = state;
    if (!tr__socket_reading(cx, u->fd, m, TR__NET_MORE, receive_some, u))
        u->user(cx, (char *)u + USER_OFFSET, m);
}

int tr_udp_open(tr_ctx *caller, const tr_udp_opts *o, tr_pid *out, uint16_t *port)
{
    tr_runtime *rt = tr_ctx_runtime(caller);
    tr_ctx *cx; /* the caller in a turn, NULL from outside */
    if (tr__cx_acting(caller, &cx) != 0)
        return TR_EINVAL;
    if (o == NULL || o->actor.behaviour == NULL ||
        (o->actor.state == NULL && o->actor.state_size != 0))
        return TR_EINVAL;
    size_t size = USER_OFFSET + o->actor.state_size;
    udp *u = calloc(1, size);
    if (u == NULL)
        return TR_ENOMEM;
    uint16_t bound;
    int fd = tr__bind_socket(o->host, o->port, SOCK_DGRAM, &bound);
    if (fd < 0) {
        free(u);
        return fd;
    }
    u->res.release = udp_release;
    u->fd = fd;
    u->user = o->actor.behaviour;
    if (o->actor.state_size != 0)
        memcpy((char *)u + USER_OFFSET, o->actor.state, o->actor.state_size);
    tr_pid pid;
    int err = tr__spawn_socket(rt, cx, udp_behaviour, u, size, &o->actor, USER_OFFSET, &pid);
    free(u);
    if (err != 0) {
        tr__sys_close(fd);
        return err;
    }
    if (port != NULL) /* only once there is a socket actor to own it */
        *port = bound;
    return tr__socket_start(rt, cx, pid, out);
}

int tr_udp_send(tr_ctx *cx, const struct sockaddr *to, socklen_t to_len, const void *data,
                size_t len)
{
    udp *u = tr__actor_state_if(cx, udp_behaviour);
    if (u == NULL || u->fd < 0)
        return TR_ENOTCONN;
    if (to == NULL || (data == NULL && len != 0))
        return TR_EINVAL;
    ssize_t n;
    do
        n = tr__sys_sendto(u->fd, data, len, MSG_DONTWAIT | MSG_NOSIGNAL, to, to_len);
    while (n < 0 && errno == EINTR);
    return n < 0 ? -errno : 0;
}

int tr_udp_close(tr_ctx *cx)
{
    udp *u = tr__actor_state_if(cx, udp_behaviour);
    if (u == NULL || u->fd < 0)
        return TR_ENOTCONN;
    tr_io_unwatch(cx, u->fd);
    tr__sys_close(u->fd);
    u->fd = -1;
    tr_stop(cx);
    return 0;
}
