/* sys/simnet.c — the simulated network's world: the descriptor table, the
 * heap of planned events, latency, addresses and ports (simnet.h). */
#include "simnet.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#include "../base/clock.h"
#include "../base/debug.h"

tr__world tr__w;

#define FIRST_EPHEMERAL 40000

void tr__simnet_trace(unsigned code, uint64_t id, uint64_t b)
{
    tr__sim_mix(TR__EV_NET, (uint64_t)code << 48 ^ id, b);
}

/* ---- the heap of planned events, ordered by (due, seq) ---- */

static bool before(const tr__simev *a, const tr__simev *b)
{
    return a->due < b->due || (a->due == b->due && a->seq < b->seq);
}

static void heap_set(size_t i, tr__simev *e)
{
    tr__w.heap[i] = e;
    e->pos = i + 1;
}

static void heap_up(size_t i)
{
    tr__simev *e = tr__w.heap[i];
    while (i > 0 && before(e, tr__w.heap[(i - 1) / 2])) {
        heap_set(i, tr__w.heap[(i - 1) / 2]);
        i = (i - 1) / 2;
    }
    heap_set(i, e);
}

static void heap_down(size_t i)
{
    tr__simev *e = tr__w.heap[i];
    size_t n = tr__w.heap_len;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= n)
            break;
        if (c + 1 < n && before(tr__w.heap[c + 1], tr__w.heap[c]))
            c++;
        if (!before(tr__w.heap[c], e))
            break;
        heap_set(i, tr__w.heap[c]);
        i = c;
    }
    heap_set(i, e);
}

void tr__simnet_cancel(tr__simev *e)
{
    if (e->pos == 0)
        return;
    size_t i = e->pos - 1;
    e->pos = 0;
    tr__simev *last = tr__w.heap[--tr__w.heap_len];
    if (i == tr__w.heap_len)
        return;
    heap_set(i, last);
    heap_up(i);
    heap_down(last->pos - 1);
}

/* Every object that can be planned takes its heap slots when it is made
 * (where running out of memory is an error to return), so scheduling
 * never allocates. */
int tr__simnet_reserve(long slots)
{
    if (slots < 0) {
        tr__w.reserved -= (size_t)-slots;
        return 0;
    }
    size_t need = tr__w.reserved + (size_t)slots;
    if (need > tr__w.heap_cap) {
        size_t cap = tr__w.heap_cap ? tr__w.heap_cap : 64;
        while (cap < need)
            cap *= 2;
        tr__simev **h = realloc(tr__w.heap, cap * sizeof *h);
        if (h == NULL)
            return ENOMEM;
        tr__w.heap = h;
        tr__w.heap_cap = cap;
    }
    tr__w.reserved = need;
    return 0;
}

void tr__simnet_schedule(tr__simev *e, uint8_t kind, void *obj, int arg, uint64_t due)
{
    tr__simnet_cancel(e);
    TR_ASSERT(tr__w.heap_len < tr__w.heap_cap);
    e->due = due;
    e->seq = tr__w.seq++;
    e->kind = kind;
    e->obj = obj;
    e->arg = arg;
    tr__w.heap[tr__w.heap_len++] = e;
    heap_up(tr__w.heap_len - 1);
}

/* Carries out every event due by now, each at its own time. */
static void advance(uint64_t now)
{
    while (tr__w.heap_len > 0 && tr__w.heap[0]->due <= now) {
        tr__simev *e = tr__w.heap[0];
        tr__simnet_cancel(e);
        switch (e->kind) {
        case EV_DIR:
            tr__tcp_deliver(e->obj, e->arg, e->due);
            break;
        case EV_RTO:
            tr__tcp_rto(e->obj, e->arg, e->due);
            break;
        case EV_DGRAM:
            tr__udp_deliver(e->obj);
            break;
        case EV_HEAL:
            tr__simnet_heal_due(e->obj);
            break;
        }
    }
}

/* ---- the world's life: one per simulation ---- */

static void world_free(void)
{
    for (size_t i = 0; i < tr__w.heap_len; i++)
        if (tr__w.heap[i]->kind == EV_DGRAM)
            free(tr__w.heap[i]->obj);
    free(tr__w.heap);
    tr__tcp_free_all();
    while (tr__w.socks != NULL)
        tr__simnet_sock_free(tr__w.socks);
    tr__simnet_parts_free();
    free(tr__w.fds);
    memset(&tr__w, 0, sizeof tr__w);
}

void tr__simnet_end(void)
{
    world_free();
}

void tr__simnet_enter(void)
{
    if (tr__w.epoch != tr__sim_epoch) {
        world_free();
        tr__w.epoch = tr__sim_epoch;
        tr__w.next_port = FIRST_EPHEMERAL;
    }
    advance(tr__now_ns());
}

uint64_t tr__simnet_next_ns(void)
{
    if (!tr__sim_on())
        return UINT64_MAX;
    tr__simnet_enter();
    return tr__w.heap_len > 0 ? tr__w.heap[0]->due : UINT64_MAX;
}

/* ---- descriptors: the lowest free number first, as the kernel does ---- */

tr__sock *tr__simnet_sock(int fd)
{
    size_t i = (size_t)fd - TR__SIM_FD_FIRST;
    if (fd < TR__SIM_FD_FIRST || i >= tr__w.nfds || tr__w.fds[i] == NULL) {
        errno = EBADF;
        return NULL;
    }
    return tr__w.fds[i];
}

int tr__simnet_fd_alloc(tr__sock *s)
{
    size_t i = tr__w.lowest_free;
    while (i < tr__w.nfds && tr__w.fds[i] != NULL)
        i++;
    if (i == tr__w.nfds) {
        size_t limit = (size_t)TR__SIM_FD_LAST - TR__SIM_FD_FIRST + 1;
        size_t n = tr__w.nfds ? tr__w.nfds * 2 : 64;
        n = n < limit ? n : limit;
        tr__sock **t = i < n ? realloc(tr__w.fds, n * sizeof *t) : NULL;
        if (t == NULL) {
            errno = i < n ? ENOMEM : EMFILE;
            return -1;
        }
        memset(t + tr__w.nfds, 0, (n - tr__w.nfds) * sizeof *t);
        tr__w.fds = t;
        tr__w.nfds = n;
    }
    tr__w.fds[i] = s;
    tr__w.lowest_free = i + 1;
    s->fd = (int)i + TR__SIM_FD_FIRST;
    return s->fd;
}

static void fd_release(tr__sock *s)
{
    if (s->fd < 0)
        return;
    size_t i = (size_t)s->fd - TR__SIM_FD_FIRST;
    tr__w.fds[i] = NULL;
    if (i < tr__w.lowest_free)
        tr__w.lowest_free = i;
    s->fd = -1;
}

tr__sock *tr__simnet_sock_new(int family, int type)
{
    tr__sock *s = calloc(1, sizeof *s);
    if (s == NULL) {
        errno = ENOMEM;
        return NULL;
    }
    s->fd = -1;
    s->family = family;
    s->type = type;
    s->id = ++tr__w.ids;
    s->local.family = s->peer.family = (uint16_t)family;
    s->next = tr__w.socks;
    if (s->next != NULL)
        s->next->prev = s;
    tr__w.socks = s;
    return s;
}

/* Forgets the socket entirely: its descriptor, registrations and queues. */
void tr__simnet_sock_free(tr__sock *s)
{
    fd_release(s);
    tr__simnet_unregister(s);
    if (s->type == SOCK_DGRAM)
        tr__udp_close(s);
    free(s->in);
    if (s->prev != NULL)
        s->prev->next = s->next;
    else
        tr__w.socks = s->next;
    if (s->next != NULL)
        s->next->prev = s->prev;
    free(s);
}

int tr__simnet_close(int fd)
{
    if (fd < TR__SIM_FD_FIRST)
        return close(fd);
    tr__simnet_enter();
    tr__sock *s = tr__simnet_sock(fd);
    if (s == NULL)
        return -1;
    tr__simnet_trace(NET_CLOSE, s->id, 0);
    fd_release(s);
    tr__simnet_unregister(s);
    if (s->type == SOCK_STREAM)
        tr__tcp_close(s); /* frees s, or keeps it for what is in flight */
    else
        tr__simnet_sock_free(s);
    return 0;
}

/* ---- latency: a minimum plus an exponential tail of the option's mean ---- */

/* ln x for x in (0, 1], without libm: x = m 2^e, ln m = 2 atanh((m-1)/(m+1)). */
static double ln01(double x)
{
    uint64_t b;
    memcpy(&b, &x, sizeof b);
    int e = (int)((b >> 52) & 0x7ff) - 1023;
    b = (b & ~(UINT64_C(0x7ff) << 52)) | (UINT64_C(1023) << 52);
    double m;
    memcpy(&m, &b, sizeof m);
    double z = (m - 1) / (m + 1), z2 = z * z, t = z, sum = 0;
    for (int k = 1; k < 40; k += 2) {
        sum += t / k;
        t *= z2;
    }
    return 2 * sum + e * 0.69314718055994530942;
}

uint64_t tr__simnet_latency(void)
{
    uint64_t min = tr__sim.lat_min_ns;
    uint64_t tail = tr__sim.lat_mean_ns > min ? tr__sim.lat_mean_ns - min : 0;
    if (tail == 0)
        return min;
    double u = (double)((tr__sim_rand() >> 11) + 1) * 0x1.0p-53; /* (0, 1] */
    double x = -ln01(u) * (double)tail;
    double cap = 40.0 * (double)tail; /* past e^-40: never drawn anyway */
    return min + (uint64_t)(x < cap ? x : cap);
}

void tr__simnet_gather(unsigned char *dst, const struct iovec *iov, size_t n, size_t len)
{
    for (size_t k = 0, at = 0; k < n && at < len; k++) {
        size_t part = iov[k].iov_len < len - at ? iov[k].iov_len : len - at;
        if (part > 0)
            memcpy(dst + at, iov[k].iov_base, part);
        at += part;
    }
}

/* ---- addresses and ports ---- */

int tr__saddr_from(const struct sockaddr *sa, socklen_t len, int family, tr__saddr *out)
{
    memset(out, 0, sizeof *out);
    if (sa == NULL || len < (socklen_t)sizeof(sa_family_t))
        return EINVAL;
    if (sa->sa_family != family)
        return EAFNOSUPPORT;
    out->family = (uint16_t)family;
    if (family == AF_INET) {
        if (len < (socklen_t)sizeof(struct sockaddr_in))
            return EINVAL;
        const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
        memcpy(out->ip, &in->sin_addr, 4);
        out->port = ntohs(in->sin_port);
    } else {
        if (len < (socklen_t)sizeof(struct sockaddr_in6))
            return EINVAL;
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
        memcpy(out->ip, &in6->sin6_addr, 16);
        out->port = ntohs(in6->sin6_port);
    }
    return 0;
}

void tr__saddr_to(const tr__saddr *a, struct sockaddr *sa, socklen_t *len)
{
    if (sa == NULL || len == NULL)
        return;
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof ss);
    socklen_t full;
    if (a->family == AF_INET6) {
        struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;
        in6->sin6_family = AF_INET6;
        in6->sin6_port = htons(a->port);
        memcpy(&in6->sin6_addr, a->ip, 16);
        full = sizeof *in6;
    } else {
        struct sockaddr_in *in = (struct sockaddr_in *)&ss;
        in->sin_family = AF_INET;
        in->sin_port = htons(a->port);
        memcpy(&in->sin_addr, a->ip, 4);
        full = sizeof *in;
    }
    memcpy(sa, &ss, *len < full ? *len : full);
    *len = full;
}

bool tr__saddr_wild(const tr__saddr *a)
{
    static const uint8_t zero[16];
    return memcmp(a->ip, zero, sizeof zero) == 0;
}

bool tr__saddr_same_host(const tr__saddr *a, const tr__saddr *b)
{
    return a->family == b->family && memcmp(a->ip, b->ip, sizeof a->ip) == 0;
}

bool tr__saddr_takes(const tr__saddr *local, const tr__saddr *a)
{
    return local->family == a->family && local->port == a->port &&
           (tr__saddr_wild(local) || tr__saddr_same_host(local, a));
}

void tr__saddr_route(tr__saddr *a)
{
    if (!tr__saddr_wild(a))
        return;
    if (a->family == AF_INET) {
        a->ip[0] = 127;
        a->ip[3] = 1;
    } else {
        a->ip[15] = 1;
    }
}

static bool port_used(int type, uint16_t port)
{
    for (tr__sock *s = tr__w.socks; s != NULL; s = s->next)
        if (s->type == type && s->bound && s->local.port == port)
            return true;
    return false;
}

int tr__simnet_ephemeral(int type, uint16_t *port)
{
    for (unsigned tries = 0; tries <= 65535 - FIRST_EPHEMERAL; tries++) {
        uint16_t p = tr__w.next_port;
        tr__w.next_port = p == 65535 ? FIRST_EPHEMERAL : (uint16_t)(p + 1);
        if (!port_used(type, p)) {
            *port = p;
            return 0;
        }
    }
    return EADDRNOTAVAIL;
}

/* An explicit bind takes a port no other bound socket of its kind holds on
 * the same address (or on the wildcard, either way round). */
int tr__simnet_bind_check(const tr__sock *me, const tr__saddr *a)
{
    for (tr__sock *s = tr__w.socks; s != NULL; s = s->next)
        if (s != me && s->type == me->type && s->explicit_bound && s->fd >= 0 &&
            (tr__saddr_takes(&s->local, a) || tr__saddr_takes(a, &s->local)))
            return EADDRINUSE;
    return 0;
}
