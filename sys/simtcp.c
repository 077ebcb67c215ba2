/* sys/simtcp.c — simulated TCP: connections as two directions of
 * segments with seeded latency, bounded buffers, half-close and resets
 * (simnet.h has the model).
 *
 * Who decides what:
 *   - latency: each segment's delivery time is drawn when it is sent, and
 *     never earlier than the segment before it (one direction is a FIFO);
 *   - bounds: send takes at most `buffer` minus what the direction has in
 *     flight and unread at the receiver; a read that frees room wakes a
 *     writer that found none;
 *   - partitions: checked when a direction's head is due; a cut path holds
 *     the direction (nothing behind its head moves either) until it heals,
 *     or resets the connection at both ends if it stays cut for rto;
 *   - a socket closed with unread input, or with SO_LINGER 0, resets; one
 *     closed cleanly sends FIN and lingers (an orphan, no descriptor) until
 *     the peer is done; data that reaches an orphan is answered with RST,
 *     as Linux does.
 */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>

#include "../base/clock.h"
#include "simnet.h"

/* TR__FAULT_RESET strikes after 1..this many data deliveries on the
 * connection: a moment in its traffic, whether it lasts a millisecond or
 * an hour of virtual time (a turn's writes leave as one segment, so even
 * a long exchange may be few deliveries). */
#define FAULT_RESET_WITHIN 8
#define ALL_EVENTS UINT32_MAX

static size_t wthresh(void)
{
    return tr__sim.buffer / 4 > 0 ? tr__sim.buffer / 4 : 1;
}

/* The end `side` if it is a socket someone can still read (not an orphan). */
static tr__sock *live(tr__conn_sim *c, int side)
{
    tr__sock *s = c->end[side];
    return s != NULL && !s->orphan ? s : NULL;
}

/* What direction i may still take. */
static size_t room(tr__conn_sim *c, int i)
{
    tr__sock *r = live(c, 1 - i);
    size_t used = c->d[i].inflight + (r != NULL ? r->in_len : 0);
    return used < tr__sim.buffer ? tr__sim.buffer - used : 0;
}

/* ---- directions ---- */

static void segs_free(tr__dir *d)
{
    while (d->head != NULL) {
        tr__seg *g = d->head;
        d->head = g->next;
        free(g);
    }
}

static void dir_clear(tr__conn_sim *c, int i)
{
    tr__dir *d = &c->d[i];
    segs_free(d);
    d->tail = NULL;
    d->inflight = 0;
    d->last_due = 0;
    d->held = false;
    tr__simnet_cancel(&d->ev);
    tr__simnet_cancel(&d->rto);
}

/* Sends a segment of kind along direction i: `len` bytes gathered from iov. */
static int dir_push(tr__conn_sim *c, int i, uint8_t kind, const struct iovec *iov, size_t n,
                    size_t len, uint64_t now)
{
    tr__dir *d = &c->d[i];
    tr__seg *g = malloc(sizeof *g + len);
    if (g == NULL)
        return ENOMEM;
    g->next = NULL;
    g->kind = kind;
    g->len = len;
    tr__simnet_gather(g->data, iov, n, len);
    uint64_t due = now + tr__simnet_latency();
    g->due = due > d->last_due ? due : d->last_due;
    d->last_due = g->due;
    if (kind == SEG_DATA)
        d->inflight += len;
    if (d->tail != NULL)
        d->tail->next = g;
    else
        d->head = g;
    d->tail = g;
    if (d->head == g && !d->held)
        tr__simnet_schedule(&d->ev, EV_DIR, c, i, g->due);
    return 0;
}

static int dir_signal(tr__conn_sim *c, int i, uint8_t kind, uint64_t now)
{
    return dir_push(c, i, kind, NULL, 0, 0, now);
}

/* ---- connections ---- */

/* A connection's heap slots: each direction's delivery and rto. */
#define CONN_SLOTS 4

static tr__conn_sim *conn_new(void)
{
    tr__conn_sim *c = calloc(1, sizeof *c);
    if (c == NULL || tr__simnet_reserve(CONN_SLOTS) != 0) {
        free(c);
        return NULL;
    }
    c->id = ++tr__w.ids;
    c->next = tr__w.conns;
    if (c->next != NULL)
        c->next->prev = c;
    tr__w.conns = c;
    return c;
}

/* The end is done with the connection; a socket without a descriptor
 * (an orphan, one never accepted) goes with it. */
static void end_gone(tr__conn_sim *c, int side)
{
    tr__sock *s = c->end[side];
    c->end[side] = NULL;
    if (s == NULL)
        return;
    s->conn = NULL;
    if (s->fd < 0)
        tr__simnet_sock_free(s);
}

/* Frees the connection once nobody can read from it and nothing moves. */
static void conn_maybe_free(tr__conn_sim *c)
{
    for (int j = 0; j < 2; j++)
        if (live(c, j) != NULL || c->d[j].head != NULL)
            return;
    for (int j = 0; j < 2; j++) {
        end_gone(c, j);
        dir_clear(c, j);
    }
    if (c->prev != NULL)
        c->prev->next = c->next;
    else
        tr__w.conns = c->next;
    if (c->next != NULL)
        c->next->prev = c->prev;
    tr__simnet_reserve(-CONN_SLOTS);
    free(c);
}

void tr__tcp_free_all(void)
{
    while (tr__w.conns != NULL) {
        tr__conn_sim *c = tr__w.conns;
        tr__w.conns = c->next;
        /* Not dir_clear: the heap its events were in is freed already. */
        for (int j = 0; j < 2; j++)
            segs_free(&c->d[j]);
        free(c);
    }
}

/* tcp_resets counts connections reset, whatever reset them first. */
static void count_reset(tr__conn_sim *c)
{
    if (c->established && !c->reset)
        tr__sim_stats.tcp_resets++;
    c->reset = true;
}

static void mark_reset(tr__sock *s, int err)
{
    s->err = err;
    s->state = S_CLOSED;
    s->rd_eof = s->wr_shut = true;
    tr__simnet_wake(s, ALL_EVENTS);
}

/* End `side` resets the connection: what it had in flight is dropped, RST
 * follows, and it is done. */
static void abort_side(tr__conn_sim *c, int side, uint64_t now)
{
    dir_clear(c, side);
    count_reset(c);
    tr__simnet_trace(NET_RST, c->id, (uint64_t)side);
    if (dir_signal(c, side, SEG_RST, now) != 0) {
        tr__sock *peer = live(c, 1 - side); /* no memory for the RST: reset it here */
        if (peer != NULL)
            mark_reset(peer, ECONNRESET);
    }
    end_gone(c, side);
}

/* Both ends reset at once (a path cut past rto, the reset fault). */
static void reset_both(tr__conn_sim *c, uint64_t at)
{
    count_reset(c);
    tr__simnet_trace(NET_RESET, c->id, at);
    c->fault_after = 0;
    for (int j = 0; j < 2; j++)
        dir_clear(c, j);
    for (int j = 0; j < 2; j++) {
        tr__sock *s = c->end[j];
        if (s == NULL)
            continue;
        if (s->orphan)
            end_gone(c, j);
        else if (s->state == S_CONNECTING || s->state == S_OPEN)
            mark_reset(s, s->state == S_CONNECTING ? ETIMEDOUT : ECONNRESET);
    }
}

/* ---- arrivals ---- */

static tr__sock *find_listener(const tr__saddr *a)
{
    for (tr__sock *s = tr__w.socks; s != NULL; s = s->next)
        if (s->type == SOCK_STREAM && s->state == S_LISTEN && s->fd >= 0 &&
            tr__saddr_takes(&s->local, a))
            return s;
    return NULL;
}

static void refuse(tr__conn_sim *c, uint64_t at)
{
    tr__sim_stats.tcp_refused++;
    tr__simnet_trace(NET_REFUSED, c->id, at);
    if (dir_signal(c, 1, SEG_RST, at) != 0)
        mark_reset(c->end[0], ECONNREFUSED);
}

static void syn_arrives(tr__conn_sim *c, uint64_t at)
{
    if (live(c, 0) == NULL)
        return; /* the connecting socket was closed meanwhile */
    tr__sock *l = c->refuse ? NULL : find_listener(&c->addr[1]);
    tr__sock *s = l != NULL ? tr__simnet_sock_new(c->addr[1].family, SOCK_STREAM) : NULL;
    if (s == NULL) {
        refuse(c, at);
        return;
    }
    s->state = S_OPEN;
    s->bound = true;
    s->local = c->addr[1];
    s->peer = c->addr[0];
    s->conn = c;
    s->side = 1;
    c->end[1] = s;
    c->established = true;
    if (l->acc_tail != NULL)
        l->acc_tail->acc_next = s;
    else
        l->acc_head = s;
    l->acc_tail = s;
    tr__sim_stats.tcp_connects++;
    tr__simnet_trace(NET_SYN, c->id, at);
    if (tr__sim_fault(TR__FAULT_RESET))
        c->fault_after = 1 + (unsigned)tr__sim_below(FAULT_RESET_WITHIN);
    if (dir_signal(c, 1, SEG_SYNACK, at) != 0)
        reset_both(c, at);
    tr__simnet_wake(l, EPOLLIN | EPOLLRDNORM);
}

static bool take_data(tr__sock *to, const tr__seg *g)
{
    if (to->in_off + to->in_len + g->len > to->in_cap) {
        if (to->in_len > 0)
            memmove(to->in, to->in + to->in_off, to->in_len);
        to->in_off = 0;
        if (to->in_len + g->len > to->in_cap) {
            size_t cap = to->in_cap ? to->in_cap : 4096;
            while (cap < to->in_len + g->len)
                cap *= 2;
            unsigned char *in = realloc(to->in, cap);
            if (in == NULL)
                return false;
            to->in = in;
            to->in_cap = cap;
        }
    }
    memcpy(to->in + to->in_off + to->in_len, g->data, g->len);
    to->in_len += g->len;
    return true;
}

/* Segment g of direction i reaches end 1 - i. */
static void arrive(tr__conn_sim *c, int i, tr__seg *g, uint64_t at)
{
    int j = 1 - i;
    tr__sock *to = c->end[j];
    if (g->kind == SEG_SYN) {
        syn_arrives(c, at);
        return;
    }
    if (to == NULL) {
        /* Gone (closed while connecting, say): like a closed port, it
         * answers what it gets with a reset. */
        if (g->kind != SEG_RST && live(c, i) != NULL && live(c, i)->state == S_OPEN) {
            dir_clear(c, j);
            count_reset(c);
            if (dir_signal(c, j, SEG_RST, at) != 0)
                mark_reset(live(c, i), ECONNRESET);
        }
        return;
    }
    if (to->orphan) {
        if (g->kind == SEG_DATA || g->kind == SEG_SYNACK)
            abort_side(c, j, at); /* nobody will read it */
        else if (g->kind == SEG_RST)
            end_gone(c, j);
        return;
    }
    switch (g->kind) {
    case SEG_SYNACK:
        if (to->state == S_CONNECTING) {
            to->state = S_OPEN;
            tr__simnet_trace(NET_ESTABLISHED, c->id, at);
            tr__simnet_wake(to, ALL_EVENTS);
        }
        break;
    case SEG_DATA:
        tr__simnet_trace(NET_DATA, c->id << 1 | (uint64_t)i, g->len);
        if (!take_data(to, g)) {
            reset_both(c, at); /* no memory: as if the path had failed */
            break;
        }
        tr__simnet_wake(to, EPOLLIN | EPOLLRDNORM);
        break;
    case SEG_FIN:
        tr__simnet_trace(NET_FIN, c->id << 1 | (uint64_t)i, at);
        to->rd_eof = true;
        tr__simnet_wake(to, ALL_EVENTS);
        break;
    case SEG_RST:
        if (to->state == S_CLOSED)
            break; /* reset already: a second one changes nothing */
        tr__simnet_trace(NET_RST, c->id << 1 | (uint64_t)i, at);
        dir_clear(c, j);
        mark_reset(to, to->state == S_CONNECTING ? ECONNREFUSED : ECONNRESET);
        break;
    }
}

void tr__tcp_deliver(tr__conn_sim *c, int i, uint64_t at)
{
    tr__dir *d = &c->d[i];
    tr__seg *g = d->head;
    if (g == NULL)
        return;
    if (tr__simnet_cut(&c->addr[i], &c->addr[1 - i])) {
        d->held = true;
        tr__simnet_trace(NET_HOLD, c->id << 1 | (uint64_t)i, at);
        tr__simnet_schedule(&d->rto, EV_RTO, c, i, at + tr__sim.rto_ns);
        return;
    }
    d->head = g->next;
    if (d->head == NULL)
        d->tail = NULL;
    if (g->kind == SEG_DATA)
        d->inflight -= g->len;
    arrive(c, i, g, at);
    if (g->kind == SEG_DATA && c->fault_after != 0 && --c->fault_after == 0)
        reset_both(c, at);
    free(g);
    if (d->head != NULL && !d->held && d->ev.pos == 0)
        tr__simnet_schedule(&d->ev, EV_DIR, c, i, d->head->due > at ? d->head->due : at);
    conn_maybe_free(c);
}

void tr__tcp_rto(tr__conn_sim *c, int i, uint64_t at)
{
    if (c->d[i].held) {
        reset_both(c, at);
        conn_maybe_free(c);
    }
}

void tr__tcp_release_held(uint64_t now)
{
    for (tr__conn_sim *c = tr__w.conns; c != NULL; c = c->next)
        for (int i = 0; i < 2; i++) {
            tr__dir *d = &c->d[i];
            if (!d->held || tr__simnet_cut(&c->addr[i], &c->addr[1 - i]))
                continue;
            d->held = false;
            tr__simnet_cancel(&d->rto);
            tr__simnet_trace(NET_HEAL, c->id << 1 | (uint64_t)i, now);
            tr__simnet_schedule(&d->ev, EV_DIR, c, i, d->head->due > now ? d->head->due : now);
        }
}

/* ---- the calls ---- */

uint32_t tr__tcp_poll(tr__sock *s)
{
    uint32_t m = 0;
    switch (s->state) {
    case S_LISTEN:
        return s->acc_head != NULL ? EPOLLIN | EPOLLRDNORM : 0;
    case S_NEW:
        return EPOLLOUT | EPOLLHUP;
    case S_CONNECTING:
        return s->err != 0 ? EPOLLERR : 0;
    }
    bool closed = s->state == S_CLOSED;
    if (closed || (s->wr_shut && s->rd_eof))
        m |= EPOLLHUP;
    if (closed || s->rd_eof || s->rd_shut)
        m |= EPOLLIN | EPOLLRDNORM | EPOLLRDHUP;
    if (s->in_len > 0)
        m |= EPOLLIN | EPOLLRDNORM;
    if (closed || s->wr_shut || (s->conn != NULL && room(s->conn, s->side) >= wthresh()))
        m |= EPOLLOUT | EPOLLWRNORM;
    if (s->err != 0)
        m |= EPOLLERR;
    return m;
}

int tr__tcp_connect(tr__sock *s, const tr__saddr *to)
{
    int err = s->state == S_CONNECTING ? EALREADY
              : s->state == S_OPEN || s->state == S_CLOSED ? EISCONN
              : s->state == S_LISTEN ? EINVAL : 0;
    tr__saddr dst = *to;
    tr__saddr_route(&dst);
    if (err == 0 && !s->bound) {
        s->local = dst;
        err = tr__simnet_ephemeral(SOCK_STREAM, &s->local.port);
    } else if (err == 0 && tr__saddr_wild(&s->local)) {
        memcpy(s->local.ip, dst.ip, sizeof dst.ip); /* the route's address, as the kernel picks */
    }
    tr__conn_sim *c = err == 0 ? conn_new() : NULL;
    if (c == NULL) {
        errno = err != 0 ? err : ENOMEM;
        return -1;
    }
    s->bound = true;
    c->addr[0] = s->local;
    c->addr[1] = dst;
    c->end[0] = s;
    s->conn = c;
    s->side = 0;
    s->peer = dst;
    s->state = S_CONNECTING;
    c->refuse = tr__sim_fault(TR__FAULT_CONNECT);
    tr__simnet_trace(NET_CONNECT, c->id, (uint64_t)s->local.port << 16 | dst.port);
    if (dir_signal(c, 0, SEG_SYN, tr__now_ns()) != 0) {
        end_gone(c, 0);
        conn_maybe_free(c);
        s->state = S_NEW;
        errno = ENOMEM;
        return -1;
    }
    errno = EINPROGRESS;
    return -1;
}

int tr__tcp_accept(tr__sock *l, struct sockaddr *addr, socklen_t *len)
{
    if (l->state != S_LISTEN) {
        errno = EINVAL;
        return -1;
    }
    tr__sock *q = l->acc_head;
    if (q == NULL) {
        errno = EAGAIN;
        return -1;
    }
    if (tr__simnet_fd_alloc(q) < 0)
        return -1;
    l->acc_head = q->acc_next;
    if (l->acc_head == NULL)
        l->acc_tail = NULL;
    q->acc_next = NULL;
    tr__simnet_trace(NET_ACCEPT, q->conn != NULL ? q->conn->id : 0, (uint64_t)q->fd);
    tr__saddr_to(&q->peer, addr, len);
    return q->fd;
}

/* A read freed room: a writer that found none hears of it. */
static void room_grew(tr__sock *s)
{
    tr__conn_sim *c = s->conn;
    if (c == NULL)
        return;
    tr__sock *w = live(c, 1 - s->side);
    if (w != NULL && w->nospace && room(c, 1 - s->side) >= wthresh()) {
        w->nospace = false;
        tr__simnet_wake(w, EPOLLOUT | EPOLLWRNORM);
    }
}

ssize_t tr__tcp_recv(tr__sock *s, void *buf, size_t len, int flags)
{
    if (s->state == S_LISTEN || s->state == S_NEW) {
        errno = ENOTCONN;
        return -1;
    }
    if (s->in_len > 0 && len > 0) {
        size_t n = len < s->in_len ? len : s->in_len;
        memcpy(buf, s->in + s->in_off, n);
        if (!(flags & MSG_PEEK)) {
            s->in_off += n;
            s->in_len -= n;
            if (s->in_len == 0)
                s->in_off = 0;
            room_grew(s);
        }
        return (ssize_t)n;
    }
    if (s->err != 0) {
        errno = s->err;
        s->err = 0;
        return -1;
    }
    if (s->rd_eof || s->rd_shut || s->state == S_CLOSED || len == 0)
        return 0;
    errno = EAGAIN;
    return -1;
}

ssize_t tr__tcp_write(tr__sock *s, const struct iovec *iov, size_t n, int flags)
{
    (void)flags; /* never blocks, never raises SIGPIPE */
    if (s->err != 0) {
        errno = s->err;
        s->err = 0;
        return -1;
    }
    if (s->state == S_CONNECTING) {
        errno = EAGAIN;
        return -1;
    }
    if (s->state != S_OPEN || s->wr_shut || s->conn == NULL) {
        errno = EPIPE;
        return -1;
    }
    size_t total = 0;
    for (size_t k = 0; k < n; k++) {
        if (iov[k].iov_len > SSIZE_MAX - total) {
            errno = EINVAL;
            return -1;
        }
        total += iov[k].iov_len;
    }
    if (total == 0)
        return 0;
    size_t take = room(s->conn, s->side);
    if (take == 0) {
        s->nospace = true;
        errno = EAGAIN;
        return -1;
    }
    if (take < total)
        s->nospace = true; /* full: the next room that appears is reported */
    else
        take = total;
    if (take > 1 && tr__sim_fault(TR__FAULT_SHORT_WRITE))
        take = 1 + (size_t)tr__sim_below(take - 1);
    if (dir_push(s->conn, s->side, SEG_DATA, iov, n, take, tr__now_ns()) != 0) {
        errno = ENOMEM;
        return -1;
    }
    return (ssize_t)take;
}

int tr__tcp_shutdown(tr__sock *s, int how)
{
    if (how != SHUT_RD && how != SHUT_WR && how != SHUT_RDWR) {
        errno = EINVAL;
        return -1;
    }
    if (s->state != S_OPEN || s->conn == NULL) {
        errno = ENOTCONN;
        return -1;
    }
    if (how != SHUT_WR)
        s->rd_shut = true;
    if (how != SHUT_RD && !s->wr_shut) {
        if (dir_signal(s->conn, s->side, SEG_FIN, tr__now_ns()) != 0) {
            errno = ENOMEM;
            return -1;
        }
        s->wr_shut = true;
    }
    tr__simnet_wake(s, ALL_EVENTS);
    return 0;
}

/* The descriptor is gone (simnet.c released it and its registrations). */
void tr__tcp_close(tr__sock *s)
{
    uint64_t now = tr__now_ns();
    if (s->state == S_LISTEN) {
        /* Connections never accepted are reset, as the kernel does. */
        while (s->acc_head != NULL) {
            tr__sock *q = s->acc_head;
            s->acc_head = q->acc_next;
            q->acc_next = NULL;
            tr__conn_sim *c = q->conn;
            abort_side(c, q->side, now);
            conn_maybe_free(c);
        }
        s->acc_tail = NULL;
        tr__simnet_sock_free(s);
        return;
    }
    tr__conn_sim *c = s->conn;
    if (c == NULL) {
        tr__simnet_sock_free(s);
        return;
    }
    if (s->state != S_OPEN) {
        end_gone(c, s->side);
    } else if ((s->linger.l_onoff && s->linger.l_linger == 0) || s->in_len > 0) {
        abort_side(c, s->side, now);
    } else {
        if (!s->wr_shut && dir_signal(c, s->side, SEG_FIN, now) != 0) {
            abort_side(c, s->side, now);
            conn_maybe_free(c);
            return;
        }
        s->wr_shut = true;
        s->orphan = true;
        free(s->in);
        s->in = NULL;
        s->in_cap = s->in_off = s->in_len = 0;
    }
    conn_maybe_free(c);
}
