/* reactor/signal.c — signals as messages.
 *
 * Why not signalfd: it only sees a signal that is blocked in every thread
 * of the process, and a library cannot block signals in threads it did
 * not create. Instead, a subscribed signal gets a handler (installed while
 * any actor of any runtime subscribes) that counts the delivery and writes
 * to one process-wide eventfd — both async-signal-safe. Every runtime's
 * reactor watches that eventfd edge-triggered and never reads it, so each
 * write wakes every reactor; each compares the counts with what it has
 * dispatched and sends one TR_SIGNAL per new delivery to its subscribers.
 * The handler touches no per-runtime memory, so a runtime can be destroyed
 * while a signal arrives.
 *
 * The eventfd is open only while a runtime exists: each reactor takes a
 * reference when it is created and gives it back when destroyed, and the
 * last one closes it. A handler may still be running then (dispatched
 * before the last subscriber restored the old action): had it loaded the
 * descriptor's number, the number could be closed and reused by a socket
 * before its write, which would then put 8 bytes into that socket. So the
 * handler counts itself in flight before it loads the number, and the
 * closer withdraws the number, then waits until no handler is in flight
 * before closing: with sequentially consistent operations on both sides
 * (Dekker), either the closer sees the handler and waits, or the handler
 * sees -1 and writes nothing.
 */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "../mailbox/msg.h"
#include "../sched/sched.h"
#include "reactor.h"
#include "troupe/error.h"
#include "troupe/io.h"

#define MAX_SIGNO 64
#define BURST 64 /* most messages per signal per wake-up, if signals pile up */

struct tr__sig_sub {
    tr__resource res; /* first: in the actor's resource list */
    struct tr__sig_sub *next; /* in the reactor's list */
    int signo;
    tr_pid pid;
};
TR__RESOURCE_FIRST(struct tr__sig_sub);

static int sig_fd = -1;            /* -1 while no runtime exists */
static unsigned sig_in_flight;     /* handlers between counting and writing */
static uint64_t sig_count[MAX_SIGNO + 1];
static pthread_mutex_t sig_lock = PTHREAD_MUTEX_INITIALIZER;
static unsigned sig_refs;          /* reactors, under sig_lock */
static unsigned sig_users[MAX_SIGNO + 1];
static struct sigaction sig_saved[MAX_SIGNO + 1];

/* Takes a reference for a reactor being created, opening the eventfd for
 * the first; tr__signal_fini gives it back, also when this fails. */
int tr__signal_open(void)
{
    pthread_mutex_lock(&sig_lock);
    sig_refs++;
    if (sig_fd < 0)
        ck_pr_store_int(&sig_fd, eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC));
    int fd = sig_fd;
    pthread_mutex_unlock(&sig_lock);
    return fd;
}

static void unref(void)
{
    pthread_mutex_lock(&sig_lock);
    if (--sig_refs == 0 && sig_fd >= 0) {
        int fd = sig_fd;
        ck_pr_store_int(&sig_fd, -1);
        ck_pr_fence_memory();
        while (ck_pr_load_uint(&sig_in_flight) != 0)
            sched_yield();
        close(fd);
    }
    pthread_mutex_unlock(&sig_lock);
}

void tr__signal_baseline(tr__reactor *r)
{
    for (int signo = 1; signo <= MAX_SIGNO; signo++)
        r->sig_seen[signo] = ck_pr_load_64(&sig_count[signo]);
}

static void on_signal(int signo)
{
    int saved = errno;
    ck_pr_inc_64(&sig_count[signo]);
    ck_pr_inc_uint(&sig_in_flight);
    ck_pr_fence_memory();
    int fd = ck_pr_load_int(&sig_fd);
    if (fd >= 0) {
        uint64_t one = 1;
        ssize_t n = write(fd, &one, sizeof one);
        (void)n;
    }
    ck_pr_dec_uint(&sig_in_flight);
    errno = saved;
}

static bool catchable(int signo)
{
    switch (signo) {
    case SIGKILL: case SIGSTOP: case SIGSEGV: case SIGBUS: case SIGFPE: case SIGILL:
        return false;
    default:
        return signo >= 1 && signo <= MAX_SIGNO && signo < NSIG;
    }
}

/* Installs the handler for the first subscriber in the process, restores
 * the previous action after the last. */
static int users_add(int signo, int delta)
{
    int err = 0;
    pthread_mutex_lock(&sig_lock);
    if (delta > 0 && sig_users[signo]++ == 0) {
        struct sigaction sa = {.sa_handler = on_signal, .sa_flags = SA_RESTART};
        sigemptyset(&sa.sa_mask);
        if (sigaction(signo, &sa, &sig_saved[signo]) != 0) {
            sig_users[signo]--;
            err = TR_EINVAL;
        }
    } else if (delta < 0 && --sig_users[signo] == 0) {
        sigaction(signo, &sig_saved[signo], NULL);
    }
    pthread_mutex_unlock(&sig_lock);
    return err;
}

void tr__signal_dispatch(tr__reactor *r)
{
    for (int signo = 1; signo <= MAX_SIGNO; signo++) {
        uint64_t count = ck_pr_load_64(&sig_count[signo]);
        uint64_t fresh = count - r->sig_seen[signo];
        if (fresh == 0)
            continue;
        r->sig_seen[signo] = count;
        if (fresh > BURST)
            fresh = BURST;
        pthread_mutex_lock(&r->sig_lock);
        if (r->stop_signals & (UINT64_C(1) << (signo - 1)))
            tr_runtime_shutdown(r->rt);
        for (struct tr__sig_sub *s = r->sig_subs; s != NULL; s = s->next) {
            if (s->signo != signo)
                continue;
            for (uint64_t i = 0; i < fresh; i++) {
                tr_msg *m = tr__msg_new_owed(TR_SIGNAL, sizeof(tr_signal_event));
                if (m == NULL)
                    break;
                ((tr_signal_event *)m->data)->signo = signo;
                tr__send(r->rt, r->poller, TR_PID_NONE, s->pid, m);
            }
        }
        pthread_mutex_unlock(&r->sig_lock);
    }
}

static void sub_release(tr_runtime *rt, tr__resource *res)
{
    struct tr__sig_sub *sub = (struct tr__sig_sub *)res;
    tr__reactor *r = rt->reactor;
    pthread_mutex_lock(&r->sig_lock);
    for (struct tr__sig_sub **p = &r->sig_subs; *p != NULL; p = &(*p)->next) {
        if (*p == sub) {
            *p = sub->next;
            break;
        }
    }
    pthread_mutex_unlock(&r->sig_lock);
    users_add(sub->signo, -1);
    free(sub);
    tr_runtime_release(rt);
}

static struct tr__sig_sub *find_sub(tr_ctx *cx, int signo, tr__resource ***link)
{
    for (tr__resource **p = tr__cx_held(cx); *p != NULL; p = &(*p)->next) {
        if ((*p)->release == sub_release && ((struct tr__sig_sub *)*p)->signo == signo) {
            *link = p;
            return (struct tr__sig_sub *)*p;
        }
    }
    return NULL;
}

int tr_signal_watch(tr_ctx *cx, int signo)
{
    tr__resource **link;
    if (!tr__cx_in_turn(cx) || !catchable(signo))
        return TR_EINVAL;
    if (find_sub(cx, signo, &link) != NULL)
        return TR_EBUSY;
    struct tr__sig_sub *sub = malloc(sizeof *sub);
    if (sub == NULL)
        return TR_ENOMEM;
    int err = users_add(signo, +1);
    if (err != 0) {
        free(sub);
        return err;
    }
    tr_runtime *rt = tr_ctx_runtime(cx);
    tr__reactor *r = rt->reactor;
    sub->signo = signo;
    sub->pid = tr_self(cx);
    sub->res.release = sub_release;
    tr__cx_hold(cx, &sub->res);
    pthread_mutex_lock(&r->sig_lock);
    sub->next = r->sig_subs;
    r->sig_subs = sub;
    pthread_mutex_unlock(&r->sig_lock);
    tr_runtime_hold(rt);
    return 0;
}

int tr_runtime_stop_on_signal(tr_runtime *rt, int signo)
{
    if (rt == NULL || !catchable(signo))
        return TR_EINVAL;
    tr__reactor *r = rt->reactor;
    uint64_t bit = UINT64_C(1) << (signo - 1);
    /* The look and the install in one hold of the runtime's lock (the
     * process's is taken inside it, never the other way): two threads
     * asking at once install once, and the runtime is held once, as
     * tr__signal_fini gives back. Installed before this returns: a
     * signal from now on stops the run. */
    pthread_mutex_lock(&r->sig_lock);
    int err = 0;
    bool installed = !(r->stop_signals & bit) && (err = users_add(signo, +1)) == 0;
    if (installed)
        r->stop_signals |= bit;
    pthread_mutex_unlock(&r->sig_lock);
    if (installed)
        tr_runtime_hold(rt);
    return err;
}

void tr__signal_fini(tr__reactor *r)
{
    for (int signo = 1; signo <= MAX_SIGNO; signo++)
        if (r->stop_signals & (UINT64_C(1) << (signo - 1)))
            users_add(signo, -1);
    r->stop_signals = 0;
    unref();
}

int tr_signal_unwatch(tr_ctx *cx, int signo)
{
    tr__resource **link;
    if (!tr__cx_in_turn(cx))
        return TR_EINVAL;
    struct tr__sig_sub *sub = find_sub(cx, signo, &link);
    if (sub == NULL)
        return TR_EINVAL;
    *link = sub->res.next;
    sub_release(tr_ctx_runtime(cx), &sub->res);
    return 0;
}
