/* sched/watchdog.c — reports behaviour turns that run too long.
 *
 * One behaviour that blocks (a sleep, a synchronous read, a long loop)
 * holds its worker and everything queued behind it — Tokio's "one
 * blocking task halts an executor" (tokio #4730). The watchdog makes such
 * turns visible: a turn that runs longer than tr_config.watchdog_ms is
 * reported once, to the hook of tr_runtime_on_long_turn or as a line on
 * stderr.
 *
 * Workers never read the clock for it: one clock read a turn costs
 * pingpong 35-40% of its rate (monitor.c). As a turn begins, a worker
 * stores a turn number and the actor it runs in its own struct
 * (tr__run_turn in sched.h). The monitor, which reads the clock once a
 * tick anyway, notes the tick at which it first saw each worker's current
 * turn number; when that turn is still running a threshold later, it is
 * reported.
 * Publishing costs four instructions a turn (an increment and two
 * stores; current is cleared only when the worker turns to other work):
 * about 8 of pingpong's 757 instructions a round trip then (two turns), and
 * nothing measurable on counting (64 messages a turn).
 *
 * The bound. A turn is first seen at the first tick after it begins, and
 * reported at the first tick at least a threshold after that: between
 * threshold and threshold + about 2 ticks (2 ms) after it began, later
 * only if the monitor's thread is kept off a CPU. elapsed_ns counts from
 * the first sighting, so it is at most a tick short. A shorter turn is
 * never reported: it cannot be running at two ticks a threshold apart.
 *
 * What is reported is read from the running actor's slot on the monitor's
 * thread: slots are never freed while the runtime lives, so that is safe
 * even if the turn ends meanwhile (then the pid may read as TR_PID_NONE).
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

#include "../actors/fault.h"
#include "sched.h"
#include "troupe/error.h"

/* The monitor's view of one worker. */
typedef struct seen {
    uint64_t seq;     /* the turn number last seen */
    uint64_t since;   /* when it was first seen */
    bool reported;
} seen;

struct tr__watchdog {
    uint64_t threshold_ns; /* 0: off */
    tr_long_turn_fn fn;    /* NULL: a line on stderr */
    void *arg;
    seen workers[];
};

int tr__watchdog_create(tr_runtime *rt, unsigned threshold_ms)
{
    tr__watchdog *wd = calloc(1, sizeof *wd + rt->cfg.threads * sizeof(seen));
    if (wd == NULL)
        return TR_ENOMEM;
    wd->threshold_ns = (uint64_t)threshold_ms * 1000000u;
    rt->watchdog = wd;
    return 0;
}

void tr__watchdog_destroy(tr_runtime *rt)
{
    free(rt->watchdog);
    rt->watchdog = NULL;
}

static void report(tr_runtime *rt, unsigned worker, tr__actor *a, uint64_t elapsed_ns)
{
    tr__watchdog *wd = rt->watchdog;
    char name[TR_NAME_MAX], behaviour[128];
    tr_pid pid = tr__pid_of(a, ck_pr_load_32(&a->life));
    if (pid == TR_PID_NONE || !ck_pr_load_16(&a->named) ||
        !tr__registry_name_of(rt, pid, name, sizeof name))
        name[0] = '\0';
    tr__symbol_name(ck_pr_load_ptr(&a->fn), behaviour, sizeof behaviour);
    tr_long_turn turn = {.pid = pid, .name = name, .behaviour = behaviour, .worker = worker,
                         .elapsed_ns = elapsed_ns};
    if (wd->fn != NULL) {
        wd->fn(&turn, wd->arg);
        return;
    }
    fprintf(stderr,
            "troupe: watchdog: actor %" PRIx64 "%s%s%s (%s) on worker %u has run one turn for "
            "%" PRIu64 " ms (threshold %" PRIu64 " ms)\n",
            pid, name[0] ? " \"" : "", name, name[0] ? "\"" : "", behaviour, worker,
            elapsed_ns / 1000000, wd->threshold_ns / 1000000);
}

void tr__watchdog_tick(tr_runtime *rt, uint64_t now_ns)
{
    tr__watchdog *wd = rt->watchdog;
    if (wd->threshold_ns == 0)
        return;
    for (unsigned i = 0; i < rt->cfg.threads; i++) {
        tr__worker *w = &rt->workers[i];
        /* current, then turn_seq (stored in the other order): an actor
         * read here with turn_seq then still the one noted at an earlier
         * tick is that turn's, and the turn was still running. */
        tr__actor *a = ck_pr_load_ptr(&w->current);
        ck_pr_fence_load();
        uint64_t seq = ck_pr_load_64(&w->turn_seq);
        seen *s = &wd->workers[i];
        if (seq != s->seq) {
            s->seq = seq;
            s->since = now_ns;
            s->reported = false;
        } else if (a != NULL && !s->reported && now_ns - s->since >= wd->threshold_ns) {
            s->reported = true;
            report(rt, i, a, now_ns - s->since);
        }
    }
}

int tr_runtime_on_long_turn(tr_runtime *rt, tr_long_turn_fn fn, void *arg)
{
    if (rt == NULL)
        return TR_EINVAL;
    /* Not while running: the monitor reads the pair without a lock. */
    if (ck_pr_load_32(&rt->running))
        return TR_EBUSY;
    rt->watchdog->fn = fn;
    rt->watchdog->arg = arg;
    return 0;
}
