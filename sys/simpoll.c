/* sys/simpoll.c — epoll over simulated sockets.
 *
 * Linux's edge-triggered epoll, as the reactor relies on it: a socket's
 * state change (data arrives, room appears after a writer found none, the
 * peer's FIN or reset, a connect completes, a connection waits to be
 * accepted) is a wake-up with a key; a registration whose events meet the
 * key joins its epoll's ready list once. epoll_wait then reports, for each
 * registration on the list, the socket's readiness at that moment (its
 * level, as tcp_poll computes it), and an edge-triggered one leaves the
 * list. EPOLL_CTL_ADD and MOD put a registration on the list when the
 * socket is ready already. The epoll descriptor itself is the reactor's
 * real one: only its number is used here.
 */
#include <errno.h>
#include <stdlib.h>

#include "simnet.h"

struct tr__reg {
    struct tr__ep *ep;
    tr__sock *s;
    uint32_t events;
    uint64_t data;
    bool queued;
    tr__reg *rnext;      /* the ready list */
    tr__reg *snext;      /* the socket's registrations */
    tr__reg *enext;      /* the epoll's registrations */
};

typedef struct tr__ep {
    int epfd;
    tr__reg *regs;
    tr__reg *rhead, *rtail;
    struct tr__ep *next;
} tr__ep;

static uint32_t level(tr__sock *s)
{
    return s->type == SOCK_STREAM ? tr__tcp_poll(s) : tr__udp_poll(s);
}

static void enqueue(tr__reg *r)
{
    if (r->queued)
        return;
    r->queued = true;
    r->rnext = NULL;
    if (r->ep->rtail != NULL)
        r->ep->rtail->rnext = r;
    else
        r->ep->rhead = r;
    r->ep->rtail = r;
}

static void dequeue(tr__reg *r)
{
    if (!r->queued)
        return;
    tr__reg **p = &r->ep->rhead, *prev = NULL;
    while (*p != r) {
        prev = *p;
        p = &(*p)->rnext;
    }
    *p = r->rnext;
    if (r->ep->rtail == r)
        r->ep->rtail = prev;
    r->queued = false;
}

void tr__simnet_wake(tr__sock *s, uint32_t key)
{
    for (tr__reg *r = s->regs; r != NULL; r = r->snext)
        if (key & (r->events | EPOLLERR | EPOLLHUP))
            enqueue(r);
}

static tr__ep *find_ep(int epfd, bool create)
{
    tr__ep **p = &tr__w.eps;
    for (; *p != NULL; p = &(*p)->next)
        if ((*p)->epfd == epfd)
            return *p;
    if (!create)
        return NULL;
    tr__ep *ep = calloc(1, sizeof *ep);
    if (ep != NULL) {
        ep->epfd = epfd;
        *p = ep;
    }
    return ep;
}

/* An epoll with nothing simulated in it is forgotten. */
static void forget_if_empty(tr__ep *ep)
{
    if (ep->regs != NULL)
        return;
    tr__ep **q;
    for (q = &tr__w.eps; *q != ep; q = &(*q)->next)
        ;
    *q = ep->next;
    free(ep);
}

static void reg_free(tr__reg *r)
{
    dequeue(r);
    tr__reg **p;
    for (p = &r->s->regs; *p != r; p = &(*p)->snext)
        ;
    *p = r->snext;
    for (p = &r->ep->regs; *p != r; p = &(*p)->enext)
        ;
    *p = r->enext;
    tr__ep *ep = r->ep;
    free(r);
    forget_if_empty(ep);
}

void tr__simnet_unregister(tr__sock *s)
{
    while (s->regs != NULL)
        reg_free(s->regs);
}

int tr__simnet_epoll_ctl(int epfd, int op, int fd, struct epoll_event *ev)
{
    if (fd < TR__SIM_FD_FIRST)
        return epoll_ctl(epfd, op, fd, ev);
    tr__simnet_enter();
    tr__sock *s = tr__simnet_sock(fd);
    if (s == NULL)
        return -1;
    tr__reg *r = s->regs;
    while (r != NULL && r->ep->epfd != epfd)
        r = r->snext;
    if (op == EPOLL_CTL_DEL) {
        if (r == NULL) {
            errno = ENOENT;
            return -1;
        }
        reg_free(r);
        return 0;
    }
    if ((op != EPOLL_CTL_ADD && op != EPOLL_CTL_MOD) || ev == NULL) {
        errno = EINVAL;
        return -1;
    }
    if (op == EPOLL_CTL_ADD ? r != NULL : r == NULL) {
        errno = r != NULL ? EEXIST : ENOENT;
        return -1;
    }
    if (r == NULL) {
        tr__ep *ep = find_ep(epfd, true);
        if (ep == NULL || (r = calloc(1, sizeof *r)) == NULL) {
            if (ep != NULL)
                forget_if_empty(ep);
            errno = ENOMEM;
            return -1;
        }
        r->ep = ep;
        r->s = s;
        r->snext = s->regs;
        s->regs = r;
        r->enext = ep->regs;
        ep->regs = r;
    }
    r->events = ev->events;
    r->data = ev->data.u64;
    if (level(s) & (r->events | EPOLLERR | EPOLLHUP))
        enqueue(r);
    return 0;
}

bool tr__simnet_ready_on(int epfd)
{
    if (!tr__sim_on())
        return false;
    tr__simnet_enter();
    tr__ep *ep = find_ep(epfd, false);
    return ep != NULL && ep->rhead != NULL;
}

int tr__simnet_epoll_wait(int epfd, struct epoll_event *events, int max, int timeout)
{
    (void)timeout;
    if (max <= 0) {
        errno = EINVAL;
        return -1;
    }
    tr__simnet_enter();
    tr__ep *ep = find_ep(epfd, false);
    if (ep == NULL)
        return 0;
    size_t waiting = 0;
    for (tr__reg *r = ep->rhead; r != NULL; r = r->rnext)
        waiting++;
    int n = 0;
    /* Each registration once: a level-triggered one goes back to the tail. */
    while (n < max && waiting-- > 0) {
        tr__reg *r = ep->rhead;
        dequeue(r);
        uint32_t now = level(r->s) & (r->events | EPOLLERR | EPOLLHUP);
        if (now == 0)
            continue;
        events[n].events = now;
        events[n].data.u64 = r->data;
        n++;
        if (!(r->events & EPOLLET))
            enqueue(r);
    }
    return n;
}
