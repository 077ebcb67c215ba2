/* sys/simudp.c — simulated UDP: datagrams with seeded latency, loss,
 * duplication and reordering.
 *
 * Everything is decided when a datagram is sent: lost (the loss draw, or a
 * partition between the two addresses), duplicated (a second copy with its
 * own latency), or reordered (its delivery drawn before that of the one
 * its socket sent before to the same address, still in flight). Otherwise
 * a socket's datagrams land in the order sent. A datagram that finds no
 * socket bound to its address, or a receive queue holding `buffer` bytes,
 * is lost too. So the receiver sees exactly sent - lost + duplicated, and
 * the counters of tr_sim_stats say what was done.
 */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>

#include "../base/clock.h"
#include "simnet.h"

#define MAX_DATAGRAM 65507

uint32_t tr__udp_poll(tr__sock *s)
{
    uint32_t m = EPOLLOUT | EPOLLWRNORM;
    if (s->dq_head != NULL)
        m |= EPOLLIN | EPOLLRDNORM;
    if (s->err != 0)
        m |= EPOLLERR;
    return m;
}

static void lost(uint64_t id, size_t len)
{
    tr__sim_stats.udp_lost++;
    tr__simnet_trace(NET_UDP_LOST, id, len);
}

static tr__sock *bound_to(const tr__saddr *a)
{
    for (tr__sock *s = tr__w.socks; s != NULL; s = s->next)
        if (s->type == SOCK_DGRAM && s->fd >= 0 && s->bound && tr__saddr_takes(&s->local, a))
            return s;
    return NULL;
}

void tr__udp_deliver(tr__dgram *d)
{
    tr__simnet_reserve(-1); /* out of the heap for good */
    tr__sock *s = bound_to(&d->to);
    if (s == NULL || s->dq_bytes + d->len > tr__sim.buffer) {
        lost(d->to.port, d->len);
        free(d);
        return;
    }
    tr__simnet_trace(NET_UDP, s->id, d->len);
    d->next = NULL;
    if (s->dq_tail != NULL)
        s->dq_tail->next = d;
    else
        s->dq_head = d;
    s->dq_tail = d;
    s->dq_bytes += d->len;
    tr__simnet_wake(s, EPOLLIN | EPOLLRDNORM);
}

/* One copy on its way; `first` may overtake the socket's previous datagram. */
static void launch(tr__sock *s, const tr__saddr *from, const tr__saddr *to,
                   const struct iovec *iov, size_t n, size_t len, bool first)
{
    tr__dgram *d = calloc(1, sizeof *d + len);
    if (d == NULL || tr__simnet_reserve(1) != 0) {
        free(d);
        lost(s->id, len);
        return;
    }
    d->from = *from;
    d->to = *to;
    d->len = len;
    tr__simnet_gather(d->data, iov, n, len);
    uint64_t now = tr__now_ns(), lo = now + tr__sim.lat_min_ns, due;
    bool after_one = s->last_due > lo && memcmp(&s->last_to, to, sizeof *to) == 0;
    if (first && after_one && tr__sim_chance(tr__sim.reorder)) {
        due = lo + tr__sim_below(s->last_due - lo); /* lands before the last one */
        tr__sim_stats.udp_reordered++;
    } else {
        due = now + tr__simnet_latency();
        if (due < s->last_due)
            due = s->last_due;
        s->last_due = due;
        s->last_to = *to;
    }
    tr__simnet_schedule(&d->ev, EV_DGRAM, d, 0, due);
}

ssize_t tr__udp_send(tr__sock *s, const struct iovec *iov, size_t n, const tr__saddr *to)
{
    size_t len = 0;
    for (size_t k = 0; k < n; k++) {
        if (iov[k].iov_len > MAX_DATAGRAM - len) {
            errno = EMSGSIZE;
            return -1;
        }
        len += iov[k].iov_len;
    }
    if (!s->bound) {
        memset(s->local.ip, 0, sizeof s->local.ip);
        int err = tr__simnet_ephemeral(SOCK_DGRAM, &s->local.port);
        if (err != 0) {
            errno = err;
            return -1;
        }
        s->bound = true;
    }
    tr__saddr dst = *to, from = s->local;
    tr__saddr_route(&dst);
    if (tr__saddr_wild(&from))
        memcpy(from.ip, dst.ip, sizeof dst.ip); /* the route's address */
    tr__sim_stats.udp_sent++;
    tr__simnet_trace(NET_UDP, s->id, len);
    if (tr__simnet_cut(&from, &dst) || tr__sim_chance(tr__sim.loss)) {
        lost(s->id, len);
        return (ssize_t)len;
    }
    bool dup = tr__sim_chance(tr__sim.dup);
    if (dup)
        tr__sim_stats.udp_duplicated++;
    launch(s, &from, &dst, iov, n, len, true);
    if (dup)
        launch(s, &from, &dst, iov, n, len, false);
    return (ssize_t)len;
}

ssize_t tr__udp_recvfrom(tr__sock *s, void *buf, size_t len, int flags, struct sockaddr *from,
                         socklen_t *from_len)
{
    tr__dgram *d = s->dq_head;
    if (d == NULL) {
        errno = EAGAIN;
        return -1;
    }
    size_t n = len < d->len ? len : d->len; /* the rest is cut, as the kernel does */
    memcpy(buf, d->data, n);
    tr__saddr_to(&d->from, from, from_len);
    if (!(flags & MSG_PEEK)) {
        s->dq_head = d->next;
        if (s->dq_head == NULL)
            s->dq_tail = NULL;
        s->dq_bytes -= d->len;
        free(d);
    }
    return (ssize_t)n;
}

void tr__udp_close(tr__sock *s)
{
    while (s->dq_head != NULL) {
        tr__dgram *d = s->dq_head;
        s->dq_head = d->next;
        free(d);
    }
    s->dq_tail = NULL;
    s->dq_bytes = 0;
}
