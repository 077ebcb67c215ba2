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
    for (unsigned i = 0; r->requests != NULL && i < r->queues; i++) {
        tr__node *n;
        while ((n = tr__mpsc_pop(&r->requests[i].q)) != NULL)
            tr__timer_file(r, n);
    }
    free(r->requests);
    tr__wheel_drain(&r->wheel, drop_timer, r);
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
    r->queues = rt->cfg.threads + 1;
    r->requests = aligned_alloc(CK_MD_CACHELINE, r->queues * sizeof *r->requests);
    for (unsigned i = 0; r->requests != NULL && i < r->queues; i++) {
        tr__mpsc_init_unmarked(&r->requests[i].q);
        r->requests[i].pushed = 0;
    }
    r->events = malloc(TR__POLL_EVENTS * sizeof *r->events);
    tr__wheel_init(&r->wheel, tr__now_ns() >> TR__TICK_SHIFT);
    pthread_mutex_init(&r->sig_lock, NULL);

    int sigfd = tr__signal_open();
    tr__signal_baseline(r);
    r->epfd = epoll_create1(EPOLL_CLOEXEC);
    r->wakefd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    r->timerfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    if (r->requests == NULL || r->events == NULL || r->epfd < 0 || r->wakefd < 0 ||
        r->timerfd < 0 || sigfd < 0 ||
        add_own(r->epfd, r->wakefd, WAKE_TAG, EPOLLIN) != 0 ||
        add_own(r->epfd, r->timerfd, TIMER_TAG, EPOLLIN) != 0 ||
        /* Edge-triggered and never read: every write to the shared signal
         * eventfd is an edge for every runtime's epoll (see signal.c). */
        add_own(r->epfd, sigfd, SIGNAL_TAG, EPOLLIN | EPOLLET) != 0) {
        int err = errno == ENOMEM ? TR_ENOMEM : -errno;
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

void tr__reactor_submit(tr__reactor *r, tr__worker *w, tr__node *request, uint64_t due_ns)
{
    tr__request_queue *q = &r->requests[w != NULL ? w->id : r->queues - 1];
    tr__mpsc_push(&q->q, request);
    uint32_t pushed = w != NULL ? ++q->pushed : ck_pr_faa_32(&q->pushed, 1) + 1;
    /* Dekker with a poller going to sleep: it publishes sleep_until, then
     * looks at the queue's head (mpsc.h, is_empty); we move the head with
     * the push's exchange, then look at sleep_until. An atomic before a
     * load needs no fence of its own on x86 (a locked instruction is one)
     * and a full one elsewhere, which ck_pr_fence_atomic_load gives: an
     * mfence here was half of a timer start's cost with two workers
     * starting (perf annotate of bench/timers). */
    ck_pr_fence_atomic_load();
    uint64_t sleep_until = ck_pr_load_64(&r->sleep_until);
    if (due_ns < sleep_until || (sleep_until != 0 && pushed % TR__SUBMIT_WAKE == 0))
        tr__reactor_wake(r);
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

/* Files every timer request queued on q before this call (a snapshot of
 * the queue's head), waiting out a producer caught between its exchange
 * and its link. Requests queued later wait for the next round: a flood of
 * starts cannot hold up expiries, and a timer due by now is never left
 * behind one due later. */
static void file_queue(tr__reactor *r, tr__mpsc *q)
{
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
        tr__timer_file(r, n); /* n stays valid: it fires in a later round */
        if (n == last)
            return;
    }
}

static void file_requests(tr__reactor *r)
{
    for (unsigned i = 0; i < r->queues; i++)
        file_queue(r, &r->requests[i].q);
}

static bool no_requests(tr__reactor *r)
{
    for (unsigned i = 0; i < r->queues; i++)
        if (!tr__mpsc_is_empty(&r->requests[i].q))
            return false;
    return true;
}

/* The wheel's next tick in ns, UINT64_MAX if nothing is pending. */
static uint64_t next_tick_ns(tr__reactor *r)
{
    uint64_t next = tr__wheel_next(&r->wheel);
    return next > (UINT64_MAX >> TR__TICK_SHIFT) ? UINT64_MAX : next << TR__TICK_SHIFT;
}

uint64_t tr__reactor_next_ns(tr__reactor *r)
{
    file_requests(r);
    if (tr__simnet_ready_on(r->epfd))
        return tr__now_ns();
    return next_tick_ns(r);
}

int tr__reactor_wait(tr__reactor *r, bool sleep, uint64_t at_most_ns)
{
    uint64_t now = tr__now_ns();
    ck_pr_store_64(&r->polled_ns, now);
    file_requests(r);
    int timeout = 0;
    if (sleep) {
        uint64_t wake_ns = next_tick_ns(r);
        ck_pr_store_64(&r->sleep_until, wake_ns);
        ck_pr_fence_memory();
        /* A timer started meanwhile, or one already due: do not sleep. */
        if (no_requests(r) && wake_ns > now) {
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
    file_requests(r);
    if (CK_CC_UNLIKELY(tr__sim_on()))
        tr__timer_advance_seeded(r, now >> TR__TICK_SHIFT);
    else
        tr__wheel_advance(&r->wheel, now >> TR__TICK_SHIFT, tr__timer_fire, r);
    tr__timer_sweep(r);
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
