/* sched/metrics.c — what a running system is doing (troupe/metrics.h):
 * the workers' counters summed, busy time sampled, the queries over all
 * actors (top, dump) and the dump on a signal.
 *
 * Busy time is sampled, not measured. Reading the clock at every turn
 * cost pingpong 35-40% of its round trips (monitor.c), so a worker only
 * publishes, as a turn begins, the actor it runs and a turn number
 * (`current`, `turn_seq`: two plain stores), and clears `current` as the
 * turn ends. The monitor, which reads the clock once a tick (TICK_NS,
 * 1 ms) while any worker is awake, gives each tick's elapsed time to every
 * worker it finds in a turn and to that turn's actor: a sampling profile,
 * right on average over many ticks, and for any one turn within ±1 tick
 * (a turn shorter than a tick is counted a whole tick or not at all). A
 * turn seen at k consecutive ticks with the same turn number ran between
 * k-1 and k+1 ticks; its longest_turn_ns is the (k-1) ticks seen, so it
 * is also ±1 tick, and 0 for a turn seen once. The same tick stores the
 * clock in the coarse word that turns read for last_run_ns and the oldest
 * wait (actors/figures.c), as does a worker waking from a park.
 *
 * Counters are the worker's own (tr__count, or tr__metric_add off the hot
 * paths) and a shared copy for threads outside the runtime, summed here:
 * a read while the runtime runs is recent, not an instant's snapshot.
 *
 * The dump on a signal (tr_runtime_dump_on_signal) is written by the
 * monitor thread: the handler only sets the runtime's dump_asked word and
 * wakes the monitor (a CAS and a futex wake, both async-signal-safe).
 * Why the monitor rather than an actor subscribed with tr_signal_watch: a
 * subscription holds the runtime, so a program that asked for dumps would
 * never see its run end; and an actor could not report a worker stuck in
 * a turn if that worker were its own, where the monitor needs no worker.
 * The dump is therefore written while the runtime runs (the monitor exists
 * between tr_runtime_start and the end of the run). The handler stays
 * installed after the runtime is destroyed (it then finds no runtime and
 * does nothing); a signal whose handler is running while another thread
 * destroys its runtime may still touch it: destroy a runtime after its
 * signals can no longer come, as with any handler's data.
 */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../base/futex.h"
#include "../base/utf8.h"
#include "sched.h"
#include "troupe/error.h"

#define TICK_NS (1000 * 1000)
/* A tick longer than this (the monitor slept) counts as one tick. */
#define LONG_TICK_NS (4 * TICK_NS)

static const uint64_t lateness_bounds_us[TR_LATENESS_BUCKETS - 1] = TR_LATENESS_BOUNDS_US;

static void add64(uint64_t *c, uint64_t v)
{
    ck_pr_store_64(c, ck_pr_load_64(c) + v);
}

void tr__metric_add(tr_runtime *rt, size_t field, uint64_t v)
{
    tr__worker *w = tr__worker_current();
    if (w != NULL && w->turner.rt == rt)
        add64((uint64_t *)((char *)&w->metrics + field), v);
    else
        ck_pr_add_64((uint64_t *)((char *)&rt->outside + field), v);
}

void tr__metric_lateness(tr__worker *w, uint64_t late_ns)
{
    unsigned b = 0;
    while (b < TR_LATENESS_BUCKETS - 1 && late_ns > lateness_bounds_us[b] * 1000)
        b++;
    tr__count(&w->metrics.lateness[b]);
    add64(&w->metrics.lateness_sum_ns, late_ns);
}

void tr__metrics_coarse(tr_runtime *rt)
{
    tr__actors_coarse(&rt->actors, tr__now_ns());
}

/* The monitor's group of a's side record for incarnation `life`, started
 * again from zero if it held an earlier one's (actors/actor.h). The
 * monitor is its only writer. */
static tr__side *side(tr__actor *a, uint32_t life)
{
    tr__side *s = tr__side_of(a);
    if (ck_pr_load_32(&s->monitor_life) != life) {
        ck_pr_store_64(&s->busy_ns, 0);
        ck_pr_store_32(&s->longest_us, 0);
        ck_pr_fence_store();
        ck_pr_store_32(&s->monitor_life, life);
    }
    return s;
}

static void sample(tr_runtime *rt, uint64_t elapsed)
{
    for (unsigned i = 0; i < rt->cfg.threads; i++) {
        tr__worker *w = &rt->workers[i];
        tr__actor *a = ck_pr_load_ptr(&w->current);
        uint64_t seq = ck_pr_load_64(&w->turn_seq);
        if (a == NULL) {
            w->seen = NULL;
            continue;
        }
        add64(&w->metrics.busy_ns, elapsed);
        /* A free slot draining stale messages is nobody's busy time. Nor
         * is a slot whose actor ended after `current` was read, and
         * whose next actor a later turn spawned: charged only while the
         * turn that was seen is still the worker's. (A next actor spawned
         * by another worker while this turn still drains the old one's
         * messages — the slot passed on through the depot — may be
         * charged that tick: a sample's error, as above.) */
        uint32_t life = ck_pr_load_32(&a->life);
        ck_pr_fence_load();
        bool same_turn = ck_pr_load_64(&w->turn_seq) == seq;
        tr__side *s = (life & 1) && same_turn ? side(a, life) : NULL;
        if (s != NULL)
            add64(&s->busy_ns, elapsed);
        if (a == w->seen && seq == w->seen_seq) {
            w->seen_ns += elapsed;
            uint64_t us = w->seen_ns / 1000;
            if (s != NULL && us > ck_pr_load_32(&s->longest_us))
                ck_pr_store_32(&s->longest_us, us > UINT32_MAX ? UINT32_MAX : (uint32_t)us);
        } else {
            w->seen = a;
            w->seen_seq = seq;
            w->seen_ns = 0;
        }
    }
}

void tr__metrics_tick(tr_runtime *rt, uint64_t now)
{
    tr__actors_coarse(&rt->actors, now);
    uint64_t elapsed = now - rt->tick_ns;
    rt->tick_ns = now;
    sample(rt, elapsed > LONG_TICK_NS ? TICK_NS : elapsed);
    if (ck_pr_load_32(&rt->dump_asked) && ck_pr_cas_32(&rt->dump_asked, 1, 0)) {
        tr_runtime_dump(rt, stderr);
        fflush(stderr);
    }
}

/* ---- the runtime's counters ---- */

static uint64_t pair(uint64_t added, uint64_t removed)
{
    return added > removed ? added - removed : 0;
}

/* Every worker's counters and the outside copy, summed. */
static tr__wmetrics counters_sum(tr_runtime *rt)
{
    tr__wmetrics sum = {0};
    TR__COUNTERS_ADD(&sum, &rt->outside);
    for (unsigned i = 0; i < rt->cfg.threads; i++)
        TR__COUNTERS_ADD(&sum, &rt->workers[i].metrics);
    return sum;
}

uint64_t tr__timers_pending(tr_runtime *rt)
{
    tr__wmetrics sum = counters_sum(rt);
    return pair(sum.timers_added, sum.timers_removed);
}

unsigned tr_runtime_metrics(tr_runtime *rt, tr_metrics *out, tr_worker_metrics *per_worker,
                            unsigned n)
{
    if (per_worker != NULL && n != 0)
        memset(per_worker, 0, n * sizeof *per_worker);
    if (out != NULL)
        memset(out, 0, sizeof *out);
    if (rt == NULL)
        return 0;
    tr_stats st;
    tr_runtime_stats(rt, &st);
    tr__wmetrics sum = counters_sum(rt);
    uint64_t turns = 0, runq = 0;
    for (unsigned i = 0; i < rt->cfg.threads; i++) {
        tr__worker *w = &rt->workers[i];
        uint64_t t = ck_pr_load_64(&w->turn_seq);
        uint32_t depth = tr__runq_size(&w->runq) + tr__overflow_size(&w->overflow);
        turns += t;
        runq += depth;
        if (per_worker != NULL && i < n) {
            tr_worker_metrics *p = &per_worker[i];
            p->busy_ns = ck_pr_load_64(&w->metrics.busy_ns);
            p->turns = t;
            p->handled = ck_pr_load_64(&w->turner.count.handled);
            p->steals = ck_pr_load_64(&w->steals);
            p->parks = ck_pr_load_64(&w->parks);
            p->polls = ck_pr_load_64(&w->metrics.polls);
            p->io_events = ck_pr_load_64(&w->metrics.io_events);
            p->runq_depth = depth;
            p->cpu = ck_pr_load_int(&w->bound);
        }
    }
    if (out != NULL) {
        out->start_ns = rt->start_ns;
        out->messages_sent = st.messages_sent;
        out->messages_handled = st.messages_handled;
        out->dead_letters = st.dead_letters;
        out->actors_spawned = st.actors_spawned;
        out->actors_stopped = st.actors_stopped;
        out->actors_alive = st.actors_alive;
        out->busy_ns = sum.busy_ns;
        out->turns = turns;
        out->steals = st.steals;
        out->parks = st.parks;
        out->polls = sum.polls;
        out->io_events = sum.io_events;
        out->fds_watched = pair(sum.fds_added, sum.fds_removed);
        out->timers_pending = pair(sum.timers_added, sum.timers_removed);
        out->inject_depth = tr__injectq_depth(&rt->inject);
        out->runq_depth = runq;
        memcpy(out->lateness, sum.lateness, sizeof out->lateness);
        out->lateness_sum_ns = sum.lateness_sum_ns;
        out->workers = rt->cfg.threads;
    }
    return rt->cfg.threads;
}

/* ---- one actor ---- */

static bool running(tr_runtime *rt, tr__actor *a)
{
    for (unsigned i = 0; i < rt->cfg.threads; i++)
        if (ck_pr_load_ptr(&rt->workers[i].current) == a)
            return true;
    return false;
}

/* The figures of the actor pid in slot a (false if it is not live). */
static bool figures(tr_runtime *rt, tr__actor *a, tr_pid pid, tr_actor_figures *out)
{
    if (!tr__figures_read(rt, a, pid, out))
        return false;
    if (running(rt, a))
        out->state = TR_ACTOR_RUNNING;
    return true;
}

int tr_actor_info(tr_runtime *rt, tr_pid pid, tr_actor_figures *out)
{
    if (rt == NULL || out == NULL)
        return TR_EINVAL;
    tr__actor *a = TR__PID_NODE(pid) == 0 ? tr__table_lookup(&rt->actors.table, pid) : NULL;
    if (a == NULL || !figures(rt, a, pid, out)) {
        memset(out, 0, sizeof *out);
        return TR_ENOPID;
    }
    return 0;
}

/* ---- every actor ---- */

/* The live pid in slot index i, and its slot, or TR_PID_NONE. */
static tr_pid live_at(tr_runtime *rt, uint32_t i, tr__actor **slot)
{
    tr__actor *a = tr__table_lookup(&rt->actors.table, (tr_pid)i);
    if (a == NULL)
        return TR_PID_NONE;
    tr_pid pid = tr__pid_of(a, ck_pr_load_32(&a->life));
    if (pid == TR_PID_NONE || !tr__actor_live(a, pid))
        return TR_PID_NONE;
    *slot = a;
    return pid;
}

static uint64_t key_of(tr__actor *a, tr_pid pid, tr_top_key key)
{
    switch (key) {
    case TR_TOP_HANDLED:
        return tr__figures_handled(a);
    case TR_TOP_BUSY:
        return tr__figures_busy(a, TR__PID_GEN(pid) << 1 | 1);
    default:
        return tr__figures_mailbox(a);
    }
}

typedef struct ranked {
    tr_pid pid;
    tr__actor *slot;
    uint64_t value;
} ranked;

/* Keeps best[0 .. *have-1] the n highest values seen, best first (an
 * insertion: n is a screenful, not the actor count). Ties keep the first. */
static void rank(ranked *best, unsigned n, unsigned *have, ranked r)
{
    unsigned at = *have;
    while (at > 0 && best[at - 1].value < r.value)
        at--;
    if (at >= n)
        return;
    unsigned last = *have < n ? *have : n - 1;
    memmove(&best[at + 1], &best[at], (last - at) * sizeof *best);
    best[at] = r;
    if (*have < n)
        ++*have;
}

static void sleep_ms(unsigned ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

int tr_runtime_top(tr_runtime *rt, tr_top_key key, unsigned n, unsigned window_ms,
                   tr_actor_figures *out)
{
    if (rt == NULL || out == NULL || n == 0 || (unsigned)key > TR_TOP_MAILBOX)
        return TR_EINVAL;
    if (window_ms != 0 && tr__worker_current() != NULL)
        return TR_EDEADLK;
    uint32_t slots = tr__table_size(&rt->actors.table);
    ranked *best = malloc(n * sizeof *best);
    /* With a window, the values at its start, by slot (with the pid, so a
     * slot that changed hands in the window starts from 0); the mailbox is
     * ranked by its depth at the end, and needs none. */
    bool windowed = window_ms != 0 && key != TR_TOP_MAILBOX;
    ranked *before = windowed ? calloc(slots + 1, sizeof *before) : NULL;
    if (best == NULL || (windowed && before == NULL)) {
        free(best);
        free(before);
        return TR_ENOMEM;
    }
    if (windowed) {
        for (uint32_t i = 0; i < slots; i++) {
            tr__actor *a;
            if ((before[i].pid = live_at(rt, i, &a)) != TR_PID_NONE) {
                before[i].value = key_of(a, before[i].pid, key);
                before[i].slot = a;
            }
        }
    }
    if (window_ms != 0)
        sleep_ms(window_ms);
    unsigned have = 0;
    uint32_t now_slots = tr__table_size(&rt->actors.table);
    for (uint32_t i = 0; i < now_slots; i++) {
        tr__actor *a;
        tr_pid pid = live_at(rt, i, &a);
        if (pid == TR_PID_NONE)
            continue;
        uint64_t v = key_of(a, pid, key);
        if (before != NULL && i < slots && before[i].pid == pid)
            v = v > before[i].value ? v - before[i].value : 0;
        rank(best, n, &have, (ranked){pid, a, v});
    }
    int filled = 0;
    for (unsigned k = 0; k < have; k++) {
        tr_actor_figures *f = &out[filled];
        if (!figures(rt, best[k].slot, best[k].pid, f))
            continue; /* ended since */
        if (before != NULL && key == TR_TOP_HANDLED) /* the window's figure */
            f->handled = best[k].value;
        else if (before != NULL && key == TR_TOP_BUSY)
            f->busy_ns = best[k].value;
        filled++;
    }
    free(best);
    free(before);
    return filled;
}

static const char *state_name(tr_actor_state s)
{
    static const char *const names[] = {"idle", "runnable", "running", "muted"};
    return (unsigned)s < sizeof names / sizeof *names ? names[s] : "?";
}

/* A name as one field of a dump line: printable ASCII and valid UTF-8 as
 * they are, and every other byte — a space, a control character, a
 * backslash, a byte that is not UTF-8 — as \xHH, so that a name (any
 * bytes: tr_register) can neither break its line nor pass for another
 * field. */
static void dump_name(FILE *f, const char *name)
{
    const unsigned char *s = (const unsigned char *)name;
    while (*s != '\0') {
        size_t n = *s >= 0x80 ? tr__utf8_len(s) : 0;
        if (n != 0) {
            fwrite(s, 1, n, f);
            s += n;
        } else if (*s > ' ' && *s < 0x7f && *s != '\\') {
            fputc(*s++, f);
        } else {
            fprintf(f, "\\x%02x", *s++);
        }
    }
}

int tr_runtime_dump(tr_runtime *rt, FILE *f)
{
    if (rt == NULL || f == NULL)
        return TR_EINVAL;
    tr_stats st;
    tr_runtime_stats(rt, &st);
    fprintf(f, "troupe dump: %" PRIu64 " actors alive, %u workers\n", st.actors_alive,
            rt->cfg.threads);
    int listed = 0;
    uint32_t slots = tr__table_size(&rt->actors.table);
    for (uint32_t i = 0; i < slots; i++) {
        tr__actor *a;
        tr_actor_figures fig;
        tr_pid pid = live_at(rt, i, &a);
        if (pid == TR_PID_NONE || !figures(rt, a, pid, &fig))
            continue;
        if (fig.state == TR_ACTOR_IDLE && fig.mailbox == 0)
            continue;
        fprintf(f, "actor %" PRIx64 " name=", pid);
        dump_name(f, fig.name[0] != '\0' ? fig.name : "-");
        fprintf(f,
                " behaviour=%s state=%s mailbox=%" PRIu64 " links=%u monitors=%u turns=%" PRIu64
                " handled=%" PRIu64 "\n",
                fig.behaviour, state_name(fig.state), fig.mailbox, fig.links, fig.monitors,
                fig.turns, fig.handled);
        listed++;
    }
    for (unsigned i = 0; i < rt->cfg.threads; i++) {
        tr__worker *w = &rt->workers[i];
        tr__actor *a = ck_pr_load_ptr(&w->current);
        tr_pid running_pid = a != NULL ? tr__pid_of(a, ck_pr_load_32(&a->life)) : TR_PID_NONE;
        fprintf(f, "worker %u runq=%u overflow=%u turns=%" PRIu64 " running=%" PRIx64 " cpu=%d\n",
                i, tr__runq_size(&w->runq), tr__overflow_size(&w->overflow),
                ck_pr_load_64(&w->turn_seq), running_pid, ck_pr_load_int(&w->bound));
    }
    fprintf(f, "injection queue: %" PRIu64 "\n", tr__injectq_depth(&rt->inject));
    return listed;
}

/* ---- the dump on a signal ---- */

#define DUMPERS 16

/* Runtimes that asked for a dump on a signal: the handler's only data. */
static struct dumper {
    tr_runtime *rt;
    int signo;
} dumpers[DUMPERS];
static pthread_mutex_t dumpers_lock = PTHREAD_MUTEX_INITIALIZER;

static void on_dump_signal(int signo)
{
    int saved = errno;
    for (unsigned i = 0; i < DUMPERS; i++) {
        tr_runtime *rt = ck_pr_load_ptr(&dumpers[i].rt);
        if (rt != NULL && ck_pr_load_int(&dumpers[i].signo) == signo) {
            ck_pr_store_32(&rt->dump_asked, 1);
            tr__monitor_wake(rt);
        }
    }
    errno = saved;
}

int tr_runtime_dump_on_signal(tr_runtime *rt, int signo)
{
    if (rt == NULL || signo <= 0 || signo >= NSIG || signo == SIGKILL || signo == SIGSTOP)
        return TR_EINVAL;
    pthread_mutex_lock(&dumpers_lock);
    int err = TR_ENOMEM;
    unsigned free_at = DUMPERS;
    for (unsigned i = 0; i < DUMPERS; i++) {
        if (dumpers[i].rt == rt && dumpers[i].signo == signo) {
            free_at = i;
            break;
        }
        if (dumpers[i].rt == NULL && free_at == DUMPERS)
            free_at = i;
    }
    if (free_at < DUMPERS) {
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = on_dump_signal;
        sa.sa_flags = SA_RESTART;
        sigemptyset(&sa.sa_mask);
        ck_pr_store_int(&dumpers[free_at].signo, signo);
        ck_pr_store_ptr(&dumpers[free_at].rt, rt);
        err = sigaction(signo, &sa, NULL) == 0 ? 0 : TR_EINVAL;
        if (err != 0)
            ck_pr_store_ptr(&dumpers[free_at].rt, NULL);
    }
    pthread_mutex_unlock(&dumpers_lock);
    return err;
}

void tr__metrics_fini(tr_runtime *rt)
{
    pthread_mutex_lock(&dumpers_lock);
    for (unsigned i = 0; i < DUMPERS; i++)
        if (ck_pr_load_ptr(&dumpers[i].rt) == rt)
            ck_pr_store_ptr(&dumpers[i].rt, NULL);
    pthread_mutex_unlock(&dumpers_lock);
}
