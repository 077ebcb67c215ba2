/* reactor/io.c — watched descriptors.
 *
 * The descriptor table maps an fd to the pid that watches it and a
 * registration generation. epoll carries fd | generation << 32, so an
 * event that was already in flight when a watch ended (or was replaced
 * by another actor's watch of a reused fd number) is recognised and
 * dropped instead of reaching the wrong actor.
 *
 * A watch whose descriptor was closed without tr_io_unwatch is stale:
 * epoll dropped its registration with the close, but the entry still
 * names its owner. The next watch of that number (a new connection
 * takes the lowest free one, so it comes soon) finds the entry taken,
 * and EPOLL_CTL_ADD tells the two cases apart: EEXIST, the same file is
 * still registered (busy); success, the number names another file now,
 * and the stale watch gives way (counted out then; the new one keeps its
 * hold on the runtime). The entry points at its current watch, and a
 * watch is current by identity, not by generation (generations come
 * round, and a stale watch may live as long as its actor). Watching,
 * changing, releasing and taking over one fd hold its entry's spinlock,
 * so that a stale watch released on another worker cannot clear, or
 * EPOLL_CTL_DEL, the registration that replaced it. Readiness is
 * dispatched without it.
 *
 * A registration can outlive its watch: epoll keeps it while the file
 * is open under any number, so a file closed under this one but dup'd
 * elsewhere stays registered, unreachable by EPOLL_CTL_DEL. Its events
 * carry an old generation and reach nobody; if it comes back under its
 * number, it is refused (TR_EBUSY) until that file is closed: taking
 * such a registration over (EPOLL_CTL_MOD) would take the reactor's own
 * descriptors as readily, which epoll registers the same way.
 */
#include <ck_spinlock.h>
#include <errno.h>
#include <stdlib.h>
#include <sys/epoll.h>

#include "../mailbox/msg.h"
#include "../sched/sched.h"
#include "../sys/sys.h"
#include "reactor.h"
#include "troupe/error.h"
#include "troupe/io.h"

#define CHUNK_BITS 10
#define CHUNK_FDS (1u << CHUNK_BITS)
#define CHUNKS (1u << 14) /* descriptors below 2^24 */

struct tr__fd_entry {
    tr_pid owner;        /* TR_PID_NONE when not watched */
    uint32_t gen;        /* the current registration's (written under lock) */
    ck_spinlock_fas_t lock;
    struct watch *watch; /* the current watch: which one is, by identity
                          * (a generation may come round again) */
};

typedef struct watch {
    tr__resource res; /* first: the actor's resource list links these */
    int fd;
    uint32_t gen; /* its registration's: the entry's while it is current */
} watch;
TR__RESOURCE_FIRST(watch);

static tr__fd_entry *fd_entry(tr__reactor *r, int fd, int create)
{
    tr__fd_entry **fds = ck_pr_load_ptr(&r->fds);
    if (fds == NULL) {
        if (!create)
            return NULL;
        tr__fd_entry **table = calloc(CHUNKS, sizeof *table);
        if (table == NULL)
            return NULL;
        if (ck_pr_cas_ptr_value(&r->fds, NULL, table, &fds))
            fds = table;
        else
            free(table);
    }
    tr__fd_entry **cell = &fds[(unsigned)fd >> CHUNK_BITS];
    tr__fd_entry *chunk = ck_pr_load_ptr(cell);
    if (chunk == NULL) {
        if (!create || (chunk = calloc(CHUNK_FDS, sizeof *chunk)) == NULL)
            return NULL;
        if (!ck_pr_cas_ptr(cell, NULL, chunk)) {
            free(chunk);
            chunk = ck_pr_load_ptr(cell);
        }
    }
    return &chunk[(unsigned)fd & (CHUNK_FDS - 1)];
}

void tr__io_fini(tr__reactor *r)
{
    if (r->fds == NULL)
        return;
    for (unsigned i = 0; i < CHUNKS; i++)
        free(r->fds[i]);
    free(r->fds);
    r->fds = NULL;
}

static void send_event(tr__reactor *r, tr_pid owner, uint32_t type, int fd)
{
    tr_msg *m = tr__msg_new_owed(type, sizeof(tr_io_event)); /* edge-triggered: owed */
    if (m == NULL)
        return;
    ((tr_io_event *)m->data)->fd = fd;
    tr__send(r->rt, r->poller, TR_PID_NONE, owner, m);
}

void tr__io_dispatch(tr__reactor *r, uint64_t data, uint32_t events)
{
    int fd = (int)(uint32_t)data;
    uint32_t gen = (uint32_t)(data >> 32);
    tr__fd_entry *e = fd_entry(r, fd, 0);
    if (e == NULL || ck_pr_load_32(&e->gen) != gen)
        return;
    ck_pr_fence_load(); /* the owner of that generation, or a later one's */
    tr_pid owner = ck_pr_load_64(&e->owner);
    ck_pr_fence_load();
    if (owner == TR_PID_NONE || ck_pr_load_32(&e->gen) != gen)
        return;
    /* Data before the hang-up, so the owner reads what is left first. */
    if (events & EPOLLIN)
        send_event(r, owner, TR_IO_READABLE, fd);
    if (events & EPOLLOUT)
        send_event(r, owner, TR_IO_WRITABLE, fd);
    if (events & EPOLLERR)
        send_event(r, owner, TR_IO_ERROR, fd);
    if (events & (EPOLLHUP | EPOLLRDHUP))
        send_event(r, owner, TR_IO_HUP, fd);
}

static uint32_t epoll_events(unsigned events)
{
    return EPOLLET | EPOLLRDHUP | ((events & TR_IO_READ) ? EPOLLIN : 0) |
           ((events & TR_IO_WRITE) ? EPOLLOUT : 0);
}

/* The generation after g: 0 and UINT32_MAX are never used (the reactor's
 * own descriptors are tagged with the latter). */
static uint32_t gen_after(uint32_t g)
{
    do
        g++;
    while (g == 0 || g == UINT32_MAX);
    return g;
}

/* Under e's lock: a new generation for e, so that every event in flight
 * for the one before is stale. */
static uint32_t bump(tr__fd_entry *e)
{
    uint32_t gen = gen_after(ck_pr_load_32(&e->gen));
    ck_pr_store_32(&e->gen, gen);
    return gen;
}

static void watch_release(tr_runtime *rt, tr__resource *res)
{
    watch *wt = (watch *)res;
    tr__reactor *r = rt->reactor;
    tr__fd_entry *e = fd_entry(r, wt->fd, 0);
    bool current = false;
    if (e != NULL) {
        ck_spinlock_fas_lock(&e->lock);
        if ((current = ck_pr_load_ptr(&e->watch) == wt)) {
            bump(e); /* events already in flight are now stale */
            ck_pr_store_64(&e->owner, TR_PID_NONE);
            ck_pr_store_ptr(&e->watch, NULL);
            /* Fails harmlessly if the owner closed the descriptor first. */
            tr__sys_epoll_ctl(r->epfd, EPOLL_CTL_DEL, wt->fd, NULL);
        }
        ck_spinlock_fas_unlock(&e->lock);
    }
    free(wt);
    /* A watch that gave way was counted out by the one that took over. */
    if (current) {
        TR__METRIC_ADD(rt, fds_removed, 1);
        tr_runtime_release(rt);
    }
}

/* The running actor's watch of fd, and the link that points to it. */
static watch *find_watch(tr_ctx *cx, int fd, tr__resource ***link)
{
    for (tr__resource **p = tr__cx_held(cx); *p != NULL; p = &(*p)->next) {
        if ((*p)->release == watch_release && ((watch *)*p)->fd == fd) {
            *link = p;
            return (watch *)*p;
        }
    }
    return NULL;
}

static bool valid(const tr_ctx *cx, int fd, unsigned events)
{
    return tr__cx_in_turn(cx) && fd >= 0 && (unsigned)fd < CHUNKS * CHUNK_FDS &&
           (events & ~(TR_IO_READ | TR_IO_WRITE)) == 0;
}

static int epoll_set(tr__reactor *r, int op, int fd, unsigned events, uint32_t gen)
{
    struct epoll_event ev = {.events = epoll_events(events),
                             .data.u64 = (uint32_t)fd | (uint64_t)gen << 32};
    return tr__sys_epoll_ctl(r->epfd, op, fd, &ev) == 0 ? 0 : -errno;
}

/* Under e's lock, e watched (by a watch that may be left on a closed
 * descriptor): registers fd for self if the number names a file that
 * epoll does not hold under it, and returns the generation; 0 with *err
 * if epoll holds it (TR_EBUSY: that watch is live) or refuses it. */
static uint32_t take_over(tr__reactor *r, tr__fd_entry *e, int fd, unsigned events,
                          tr_pid self, int *err)
{
    /* Registered under a generation not yet the entry's, an event of
     * the new file that comes before the entry says so is dropped; the
     * EPOLL_CTL_MOD after it reports the file's readiness again. */
    uint32_t between = gen_after(ck_pr_load_32(&e->gen)), gen = gen_after(between);
    if ((*err = epoll_set(r, EPOLL_CTL_ADD, fd, events, gen)) != 0) {
        if (*err == -EEXIST)
            *err = TR_EBUSY;
        return 0;
    }
    /* In this order, the dispatcher (which reads the generation, the
     * owner and the generation again) sends the old file's events to
     * the old owner or to nobody, and the new file's to self. */
    ck_pr_store_32(&e->gen, between);
    ck_pr_fence_store();
    ck_pr_store_64(&e->owner, self);
    ck_pr_fence_store();
    ck_pr_store_32(&e->gen, gen);
    /* Cannot fail for a registration just made but for want of memory,
     * and the watch stands all the same: only that report is missed. */
    (void)epoll_set(r, EPOLL_CTL_MOD, fd, events, gen);
    return gen;
}

/* Under e's lock, e not watched: registers fd for self. A registration
 * already there is the reactor's own (its eventfd, timerfd, the signal
 * descriptor) or one that outlived its watch (see the top): busy, both,
 * since epoll does not tell whose a registration is. */
static uint32_t first_watch(tr__reactor *r, tr__fd_entry *e, int fd, unsigned events,
                            tr_pid self, int *err)
{
    ck_pr_store_64(&e->owner, self);
    uint32_t gen = bump(e);
    if ((*err = epoll_set(r, EPOLL_CTL_ADD, fd, events, gen)) == 0)
        return gen;
    ck_pr_store_64(&e->owner, TR_PID_NONE);
    if (*err == -EEXIST)
        *err = TR_EBUSY;
    return 0;
}

int tr_io_watch(tr_ctx *cx, int fd, unsigned events)
{
    if (!valid(cx, fd, events))
        return TR_EINVAL;
    tr_runtime *rt = tr_ctx_runtime(cx);
    tr__reactor *r = rt->reactor;
    tr__fd_entry *e = fd_entry(r, fd, 1);
    watch *wt = malloc(sizeof *wt);
    if (e == NULL || wt == NULL) {
        free(wt);
        return TR_ENOMEM;
    }
    tr__resource **link = NULL;
    watch *mine = find_watch(cx, fd, &link);
    int err;
    ck_spinlock_fas_lock(&e->lock);
    watch *cur = ck_pr_load_ptr(&e->watch);
    uint32_t gen = cur == NULL ? first_watch(r, e, fd, events, tr_self(cx), &err)
                               : take_over(r, e, fd, events, tr_self(cx), &err);
    /* This actor's own watch, left on a closed descriptor, is renewed in
     * place: a second record would be the one found, and unwatched. */
    bool renewed = err == 0 && cur != NULL && cur == mine;
    if (err == 0) {
        watch *now = renewed ? mine : wt;
        now->gen = gen;
        ck_pr_store_ptr(&e->watch, now);
    }
    ck_spinlock_fas_unlock(&e->lock);
    if (mine != NULL && mine != cur) {
        /* Its watch that gave way to another's: it watches nothing, and
         * was counted out when it gave way. */
        *link = mine->res.next;
        free(mine);
    }
    if (err != 0 || renewed) {
        free(wt);
        return err;
    }
    wt->fd = fd;
    wt->res.release = watch_release;
    tr__cx_hold(cx, &wt->res);
    TR__METRIC_ADD(rt, fds_added, 1);
    if (cur != NULL)
        TR__METRIC_ADD(rt, fds_removed, 1); /* the one replaced: its hold is kept */
    else
        tr_runtime_hold(rt);
    return 0;
}

int tr_io_modify(tr_ctx *cx, int fd, unsigned events)
{
    tr__resource **link;
    watch *wt;
    if (!valid(cx, fd, events) || (wt = find_watch(cx, fd, &link)) == NULL)
        return TR_EINVAL;
    tr__reactor *r = tr_ctx_runtime(cx)->reactor;
    tr__fd_entry *e = fd_entry(r, fd, 0);
    ck_spinlock_fas_lock(&e->lock);
    /* A watch that gave way watches nothing: the number is another's. */
    int err = ck_pr_load_ptr(&e->watch) == wt ? epoll_set(r, EPOLL_CTL_MOD, fd, events, wt->gen)
                                              : TR_EINVAL;
    ck_spinlock_fas_unlock(&e->lock);
    return err;
}

int tr_io_unwatch(tr_ctx *cx, int fd)
{
    tr__resource **link;
    if (!valid(cx, fd, 0))
        return TR_EINVAL;
    watch *wt = find_watch(cx, fd, &link);
    if (wt == NULL)
        return TR_EINVAL;
    *link = wt->res.next;
    watch_release(tr_ctx_runtime(cx), &wt->res);
    return 0;
}
