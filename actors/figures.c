/* actors/figures.c — an actor's figures, read from its slot by any thread
 * (troupe/metrics.h; the queries over all actors are sched/metrics.c's).
 *
 * What each figure costs, and how close it is:
 *   turns, last run   the turn's first two stores (actor.c, tr__actor_run):
 *                     a count, and the coarse clock — the monitor's last
 *                     reading, at most a tick (1 ms) old, never the clock.
 *   handled           `handled`, which the turn already stored at its end
 *                     for backpressure, widened to 64 bits: free. It
 *                     counts every message taken, runtime ones (a spec's
 *                     start, link requests) with the behaviour's.
 *   mailbox           pushed - handled. Senders count `pushed` with a load
 *                     and a store, not an atomic add, right after the
 *                     push's exchange, which has just taken that cache
 *                     line for them: about 2 instructions and no bus lock.
 *                     Two senders racing on one mailbox can lose an
 *                     increment, which leaves the figure low by one for
 *                     the rest of the slot's life: exact with one sending
 *                     thread at a time, else a close estimate (clamped at
 *                     0). An empty, unscheduled mailbox reads 0 exactly.
 *                     A running actor's figure includes the messages its
 *                     turn has taken but not finished (handled moves at the
 *                     turn's end).
 *   oldest wait       how long the actor waited in a run queue (a ring or
 *                     the injection queue) before its last turn taken from
 *                     one, to a tick: the scheduler stamps it with the
 *                     coarse clock as it queues it and measures as it
 *                     takes it (sched/worker.c) — the oldest message has
 *                     waited at least that long (a requeued actor's, also
 *                     its previous turn). Turns run from a worker's LIFO
 *                     slot, right after the send that readied the actor,
 *                     waited less than a turn and leave the figure as it
 *                     was: that keeps it off ping-pong's path entirely.
 *                     A per-message stamp would need a field in every
 *                     message and a clock load per send: not worth it.
 *                     For an actor runnable now, queued in a ring, the
 *                     figure is how long it has waited so far.
 *   busy, longest     the monitor's samples (sched/metrics.c): ±1 tick.
 *   links, monitors   published by fault.c when the record changes.
 */
#include <dlfcn.h>
#include <stdio.h>
#include <string.h>

#include "actors.h"
#include "fault.h"

/* The symbol of fn (dladdr: exported symbols only — a program linked with
 * -rdynamic shows its own), else its address in hex. */
static void symbol(tr_behaviour fn, char *out, size_t size)
{
    Dl_info info;
    if (dladdr((void *)fn, &info) != 0 && info.dli_sname != NULL)
        snprintf(out, size, "%s", info.dli_sname);
    else
        snprintf(out, size, "%p", (void *)fn);
}

uint64_t tr__figures_mailbox(tr__actor *a)
{
    if ((uintptr_t)ck_pr_load_ptr(&a->mailbox) & TR__MPSC_EMPTY)
        return 0;
    uint64_t handled = ck_pr_load_64(&a->handled);
    uint64_t pushed = ck_pr_load_64(&a->pushed);
    return pushed > handled ? pushed - handled : 0;
}

uint64_t tr__figures_handled(tr__actor *a)
{
    uint64_t handled = ck_pr_load_64(&a->handled);
    uint64_t birth = ck_pr_load_64(&a->fig.handled_at_birth);
    return handled > birth ? handled - birth : 0;
}

bool tr__figures_live(tr__actor *a, tr_pid pid)
{
    return TR__PID_NODE(pid) == 0 && ck_pr_load_32(&a->life) == (TR__PID_GEN(pid) << 1 | 1) &&
           ck_pr_load_32(&a->aux) == 0; /* timers are slots too */
}

bool tr__figures_read(tr_runtime *rt, tr__actor *a, tr_pid pid, tr_actor_figures *out)
{
    memset(out, 0, sizeof *out);
    if (!tr__figures_live(a, pid))
        return false;
    out->pid = pid;
    if (ck_pr_load_16(&a->named))
        tr__registry_name_of(rt, pid, out->name, sizeof out->name);
    symbol((tr_behaviour)ck_pr_load_ptr((void **)&a->fn), out->behaviour, sizeof out->behaviour);
    out->turns = ck_pr_load_64(&a->fig.turns);
    out->handled = tr__figures_handled(a);
    out->busy_ns = ck_pr_load_64(&a->fig.busy_ns);
    out->longest_turn_ns = ck_pr_load_64(&a->fig.longest_ns);
    out->mailbox = tr__figures_mailbox(a);
    out->last_run_ns = ck_pr_load_64(&a->fig.last_run_ns);
    out->oldest_wait_ns = ck_pr_load_64(&a->fig.waited_ns);
    uint64_t queued = ck_pr_load_64(&a->queued_ns), now;
    if (out->mailbox != 0 && queued > out->last_run_ns &&
        (now = ck_pr_load_64(&tr__actors_of(rt)->coarse_ns)) > queued &&
        now - queued > out->oldest_wait_ns)
        out->oldest_wait_ns = now - queued; /* waiting now, and longer */
    out->links = ck_pr_load_32(&a->fig.links);
    out->monitors = ck_pr_load_32(&a->fig.monitors);
    if (ck_pr_load_64(&a->muted) & TR__WAITING)
        out->state = TR_ACTOR_MUTED;
    else if (!((uintptr_t)ck_pr_load_ptr(&a->mailbox) & TR__MPSC_EMPTY))
        out->state = TR_ACTOR_RUNNABLE; /* scheduled; sched/ tells running apart */
    else
        out->state = TR_ACTOR_IDLE;
    /* Not alive any more: the figures may be the next incarnation's. */
    return tr__figures_live(a, pid);
}
