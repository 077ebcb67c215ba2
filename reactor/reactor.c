/* reactor/reactor.c — polling: epoll, the wake-up channel, the wheel.
 * Who polls and why is in reactor.h. */
#include "reactor.h"

#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include "../sched/sched.h"
#include "../sys/sys.h"
#include "troupe/error.h"

/* epoll data of the reactor's own descriptors; a watched descriptor's
 * data is fd | generation << 32 with a generation of at least 1. */
#define WAKE_TAG UINT64_C(0xffffffff00000001)
#define TIMER_TAG UINT64_C(0xffffffff00000002)
#define SIGNAL_TAG UINT64_C(0xffffffff00000003)

/* A busy worker polls when nobody has for this long (and something is
 * watched or pending): the most that readiness and expiry wait while
 * every worker is busy, beyond the turn each is in. A poll costs about a
 * microsecond; this keeps it under 2% of a core. */
#define POLL_EVERY_NS (50 * 1000)

static int add_own(int epfd, int fd, uint64_t tag, uint32_t events)
{
    struct epoll_event ev = {.events = events, .data.u64 = tag};
    return epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev);
}

static void drop_timer(tr__wheel_entry *e, void *arg)
{
    (void)arg;
    tr__timer_drop(e);
}

/* Also undoes a create that failed half way: every descriptor starts at
 * -1 and every table empty. */
void tr__reactor_destroy(tr__reactor *r)
{
    if (r == NULL)
        return;
    if (r->wheels != NULL) {
        tr__node *n;
        while ((n = tr__mpsc_pop(&r->outside.q)) != NULL)
            tr__timer_file(&r->wheels[r->n_wheels - 1], n);
        for (unsigned i = 0; i < r->n_wheels; i++)
            tr__wheel_drain(&r->wheels[i].wheel, drop_timer, r);
    }
    free(r->wheels);
    free(r->held);
    tr__io_fini(r);
    tr__signal_fini(r);
    if (r->epfd >= 0)
        close(r->epfd);
    if (r->wakefd >= 0)
        close(r->wakefd);
    if (r->timerfd >= 0)
        close(r->timerfd);
    free(r->events);
    free(r->due);
    pthread_mutex_destroy(&r->sig_lock);
    free(r);
}

int tr__reactor_create(tr_runtime *rt, tr__reactor **out)
{
    tr__reactor *r = aligned_alloc(CK_MD_CACHELINE, sizeof *r);
    if (r == NULL)
        return TR_ENOMEM;
    memset(r, 0, sizeof *r);
    r->rt = rt;
    r->epfd = r->wakefd = r->timerfd = -1;
    r->armed = UINT64_MAX;
    r->n_wheels = rt->cfg.threads + 1;
    r->wheels = aligned_alloc(CK_MD_CACHELINE, r->n_wheels * sizeof *r->wheels);
    for (unsigned i = 0; r->wheels != NULL && i < r->n_wheels; i++) {
        tr__timer_wheel *tw = &r->wheels[i];
        memset(tw, 0, sizeof *tw);
        tw->next = UINT64_MAX;
        tr__wheel_init(&tw->wheel, tr__now_ns() >> TR__TICK_SHIFT);
    }
    r->held = malloc(r->n_wheels * sizeof *r->held);
    tr__mpsc_init_unmarked(&r->outside.q);
    r->events = malloc(TR__POLL_EVENTS * sizeof *r->events);
    pthread_mutex_init(&r->sig_lock, NULL);

    int sigfd = tr__signal_open();
    tr__signal_baseline(r);
    int err = 0;
    if (r->wheels == NULL || r->held == NULL || r->events == NULL)
        err = TR_ENOMEM;
    else if ((r->epfd = epoll_create1(EPOLL_CLOEXEC)) < 0 ||
             (r->wakefd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) < 0 ||
             (r->timerfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC)) < 0 ||
             sigfd < 0 || add_own(r->epfd, r->wakefd, WAKE_TAG, EPOLLIN) != 0 ||
             add_own(r->epfd, r->timerfd, TIMER_TAG, EPOLLIN) != 0 ||
             /* Edge-triggered and never read: every write to the shared
              * signal eventfd is an edge for every runtime's epoll (see
              * signal.c). */
             add_own(r->epfd, sigfd, SIGNAL_TAG, EPOLLIN | EPOLLET) != 0)
        err = errno == ENOMEM || errno == 0 ? TR_ENOMEM : -errno; /* the failed call's */
    if (err != 0) {
        tr__reactor_destroy(r);
        return err;
    }
    *out = r;
    return 0;
}

void tr__reactor_wake(tr__reactor *r)
{
    uint64_t one = 1;
    ssize_t n = write(r->wakefd, &one, sizeof one);
    (void)n; /* EAGAIN means the counter is already non-zero: awake anyway */
}

/* The ns at which tick `tick` begins; UINT64_MAX for none (or past the clock's range). */
static uint64_t tick_ns(uint64_t tick)
{
    return tick > (UINT64_MAX >> TR__TICK_SHIFT) ? UINT64_MAX : tick << TR__TICK_SHIFT;
}

static void wheel_lock(tr__timer_wheel *tw, uint32_t holder)
{
    while (ck_pr_load_32(&tw->lock) != 0 || !ck_pr_cas_32(&tw->lock, 0, holder))
        ck_pr_stall();
    ck_pr_fence_acquire();
}

static void wheel_unlock(tr__timer_wheel *tw)
{
    ck_pr_fence_release();
    ck_pr_store_32(&tw->lock, 0);
}

/* With the lock: what the poller reads without it. */
static void wheel_publish(tr__timer_wheel *tw)
{
    ck_pr_store_64(&tw->next, tr__wheel_next(&tw->wheel));
    ck_pr_store_64(&tw->count, tw->wheel.count);
}

/* A wake-up for the poller asleep in epoll_wait if it sleeps past
 * `due_ns`. Dekker with it: it publishes sleep_until, then reads every
 * wheel's next tick and the outside queue's head; the caller has
 * published its timer (a wheel's next tick, or the queue's head) with an
 * atomic, then reads sleep_until. An atomic before a load needs no fence
 * of its own on x86 (a locked instruction is one) and a full one
 * elsewhere, which ck_pr_fence_atomic_load gives: an mfence here was half
 * of a timer start's cost with two workers starting (perf annotate of
 * bench/timers). */
static void wake_if_sooner(tr__reactor *r, uint64_t due_ns, bool every)
{
    ck_pr_fence_atomic_load();
    uint64_t sleep_until = ck_pr_load_64(&r->sleep_until);
    if (due_ns < sleep_until || (sleep_until != 0 && every))
        tr__reactor_wake(r);
}

void tr__reactor_submit(tr__reactor *r, tr__worker *w, tr__node *request, uint64_t due_ns)
{
    if (w == NULL) {
        tr__mpsc_push(&r->outside.q, request);
        uint32_t pushed = ck_pr_faa_32(&r->outside.pushed, 1) + 1;
        wake_if_sooner(r, due_ns, pushed % TR__SUBMIT_WAKE == 0);
        return;
    }
    tr__timer_wheel *tw = &r->wheels[w->id];
    uint32_t me = w->id + 1;
    /* Held by this thread already: the poller, firing from its own wheel,
     * ran something that starts a timer. It publishes as it lets go. */
    bool nested = ck_pr_load_32(&tw->lock) == me;
    if (!nested)
        wheel_lock(tw, me);
    uint64_t tick = tr__timer_file(tw, request);
    if (tw->filed >= TR__SWEEP_EVERY && !nested) /* (not in the middle of an advance) */
        tr__timer_sweep(r, w, tw);
    ck_pr_store_64(&tw->count, tw->wheel.count);
    bool sooner = tick < ck_pr_load_64(&tw->next);
    if (sooner)
        ck_pr_store_64(&tw->next, tick);
    if (nested)
        return;
    if (!sooner) {
        /* The poller, if asleep, wakes by the tick published before. */
        wheel_unlock(tw);
        return;
    }
    ck_pr_fas_32(&tw->lock, 0); /* the unlock, and the atomic of the Dekker */
    wake_if_sooner(r, tick_ns(tick), false);
}

uint64_t tr__reactor_timers_filed(tr__reactor *r)
{
    uint64_t sum = 0;
    for (unsigned i = 0; i < r->n_wheels; i++)
        sum += ck_pr_load_64(&r->wheels[i].count);
    return sum;
}

bool tr__reactor_trylock(tr__reactor *r)
{
    if (ck_pr_load_32(&r->lock) != 0 || !ck_pr_cas_32(&r->lock, 0, 1))
        return false;
    ck_pr_fence_acquire();
    return true;
}

void tr__reactor_unlock(tr__reactor *r)
{
    ck_pr_fence_release();
    ck_pr_store_32(&r->lock, 0);
}

uint64_t tr__reactor_polled_ns(tr__reactor *r)
{
    return ck_pr_load_64(&r->polled_ns);
}

bool tr__reactor_due(tr__reactor *r, uint64_t now_ns)
{
    return now_ns - ck_pr_load_64(&r->polled_ns) >= POLL_EVERY_NS &&
           ck_pr_load_32(&r->lock) == 0;
}

static void arm(tr__reactor *r, uint64_t deadline_ns)
{
    if (deadline_ns == r->armed)
        return;
    struct itimerspec its = {{0, 0}, {0, 0}};
    if (deadline_ns != UINT64_MAX) {
        its.it_value.tv_sec = (time_t)(deadline_ns / 1000000000u);
        its.it_value.tv_nsec = (long)(deadline_ns % 1000000000u);
        if (its.it_value.tv_sec == 0 && its.it_value.tv_nsec == 0)
            its.it_value.tv_nsec = 1; /* zero would disarm */
    }
    if (timerfd_settime(r->timerfd, TFD_TIMER_ABSTIME, &its, NULL) == 0)
        r->armed = deadline_ns;
}

static void drain(int fd)
{
    uint64_t v;
    while (read(fd, &v, sizeof v) == (ssize_t)sizeof v)
        ;
}

/* Files every timer request queued by other threads before this call
 * (a snapshot of the queue's head) into the outside wheel, whose lock
 * the caller holds, waiting out a producer caught between its exchange
 * and its link. Requests queued later wait for the next round: a flood of
 * starts cannot hold up expiries, and a timer due by now is never left
 * behind one due later. */
static void file_outside(tr__reactor *r)
{
    tr__mpsc *q = &r->outside.q;
    tr__timer_wheel *tw = &r->wheels[r->n_wheels - 1];
    /* With the stub last, whatever is queued (rarely anything: see
     * mpsc.h) is ahead of it, and the queue is done when empty. */
    tr__node *last = tr__mpsc_untag(ck_pr_load_ptr(&q->head));
    for (;;) {
        if (last == &q->stub && tr__mpsc_is_empty(q))
            return;
        tr__node *n = tr__mpsc_pop(q);
        if (n == NULL) {
            sched_yield();
            continue;
        }
        tr__timer_file(tw, n); /* n stays valid: it fires in a later round */
        if (n == last)
            return;
    }
}

/* The earliest tick published by any wheel, in ns; UINT64_MAX if none. */
static uint64_t next_tick_ns(tr__reactor *r)
{
    uint64_t next = UINT64_MAX;
    for (unsigned i = 0; i < r->n_wheels; i++) {
        uint64_t t = ck_pr_load_64(&r->wheels[i].next);
        if (t < next)
            next = t;
    }
    return tick_ns(next);
}

/* The poller, w, with the reactor's lock: files the outside queue and
 * fires every timer due by tick `to`, taking the lock of each wheel that
 * may hold one (the outside wheel's also to file the queue or go on with
 * a sweep: only pollers touch that one). Across the wheels in due order:
 * the wheel whose next tick is the soonest advances to it, then again, so
 * that a timer never fires after one due more than a tick later for being
 * filed by another worker (the order test_timer.c checks per target). A
 * wheel's owner that starts a timer meanwhile waits for its lock. */
static void fire_due(tr__reactor *r, tr__worker *w, uint64_t to)
{
    tr__timer_wheel **held = r->held;
    tr__timer_wheel *outside = &r->wheels[r->n_wheels - 1];
    uint32_t me = w->id + 1;
    unsigned n = 0;
    for (unsigned i = 0; i + 1 < r->n_wheels; i++) {
        tr__timer_wheel *tw = &r->wheels[i];
        if (ck_pr_load_64(&tw->next) <= to) {
            wheel_lock(tw, me);
            held[n++] = tw;
        }
    }
    bool outside_held = !tr__mpsc_is_empty(&r->outside.q) || outside->next <= to ||
                        tr__wheel_sweeping(&outside->wheel);
    if (outside_held) {
        wheel_lock(outside, me);
        held[n++] = outside;
        file_outside(r);
    }
    if (CK_CC_UNLIKELY(tr__sim_on())) {
        /* One batch of all the wheels' due timers, fired in an order
         * drawn from the seed. */
        r->due_n = 0;
        for (unsigned k = 0; k < n; k++)
            tr__wheel_advance(&held[k]->wheel, to, tr__timer_gather, r);
        tr__timer_fire_gathered(r);
    } else if (n == 1) {
        tr__wheel_advance(&held[0]->wheel, to, tr__timer_fire, r);
    } else if (n > 1) {
        for (;;) {
            tr__timer_wheel *soonest = NULL;
            uint64_t best = UINT64_MAX;
            for (unsigned k = 0; k < n; k++) {
                uint64_t t = tr__wheel_next(&held[k]->wheel);
                if (t < best) {
                    best = t;
                    soonest = held[k];
                }
            }
            if (best > to)
                break;
            tr__wheel_advance(&soonest->wheel, best, tr__timer_fire, r);
        }
        for (unsigned k = 0; k < n; k++) /* nothing left to fire: the ticks move on */
            tr__wheel_advance(&held[k]->wheel, to, tr__timer_fire, r);
    }
    if (outside_held)
        tr__timer_sweep(r, w, outside);
    for (unsigned k = 0; k < n; k++) {
        wheel_publish(held[k]);
        wheel_unlock(held[k]);
    }
}

uint64_t tr__reactor_next_ns(tr__reactor *r)
{
    tr__timer_wheel *outside = &r->wheels[r->n_wheels - 1];
    wheel_lock(outside, UINT32_MAX); /* (no worker's id) */
    file_outside(r);
    wheel_publish(outside);
    wheel_unlock(outside);
    if (tr__simnet_ready_on(r->epfd))
        return tr__now_ns();
    return next_tick_ns(r);
}

int tr__reactor_wait(tr__reactor *r, bool sleep, uint64_t at_most_ns)
{
    uint64_t now = tr__now_ns();
    ck_pr_store_64(&r->polled_ns, now);
    int timeout = 0;
    if (sleep) {
        uint64_t wake_ns = next_tick_ns(r);
        ck_pr_store_64(&r->sleep_until, wake_ns);
        ck_pr_fence_memory();
        /* A timer started meanwhile, or one already due: do not sleep. */
        if (tr__mpsc_is_empty(&r->outside.q) && next_tick_ns(r) >= wake_ns && wake_ns > now) {
            arm(r, wake_ns);
            timeout = at_most_ns == 0 ? -1 : (int)((at_most_ns + 999999) / 1000000);
        }
    }
    int n = tr__sys_epoll_wait(r->epfd, r->events, TR__POLL_EVENTS, timeout);
    if (sleep)
        ck_pr_store_64(&r->sleep_until, 0);
    return n > 0 ? n : 0;
}

void tr__reactor_dispatch(tr__reactor *r, tr__worker *w, int n)
{
    r->poller = w;
    w->dispatching = true;
    /* The clock after the wait: every timer due by `now` was filed. */
    uint64_t now = tr__now_ns();
    r->now = now;
    fire_due(r, w, now >> TR__TICK_SHIFT);
    tr__signal_dispatch(r);
    for (int i = 0; i < n; i++) {
        uint64_t data = r->events[i].data.u64;
        if (data == WAKE_TAG)
            drain(r->wakefd);
        else if (data == TIMER_TAG) {
            drain(r->timerfd);
            r->armed = UINT64_MAX;
        } else if (data != SIGNAL_TAG) {
            tr__count(&w->metrics.io_events); /* before its messages run */
            tr__io_dispatch(r, data, r->events[i].events);
        }
    }
    tr__count(&w->metrics.polls);
    r->poller = NULL;
    w->dispatching = false;
}
