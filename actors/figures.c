/* actors/figures.c — an actor's figures, read from its slot by any thread
 * (troupe/metrics.h; the queries over all actors are sched/metrics.c's).
 *
 * What each figure costs, and how close it is (instructions: callgrind,
 * --threads 1, pingpong per round trip, counting per message; before the
 * figures 738 and 251, with them 755 and 251):
 *   turns, last run   the turn's first stores (actor.c, tr__actor_run),
 *                     on the slot's line the turn's pops write anyway: a
 *                     32-bit count, whose wrap carries into the side
 *                     record (a branch never taken), and the coarse clock
 *                     — the monitor's last reading, at most a tick (1 ms)
 *                     old, never the clock — as a 32-bit stamp of 2^20 ns,
 *                     which its writers store ready (actors.h). Read back
 *                     against the clock now, it is right for any run in
 *                     the last 52 days.
 *   handled           `handled`, which the turn already stored at its end
 *                     for backpressure, in 64 bits and set to 0 at spawn:
 *                     free. It counts every message taken, runtime ones (a
 *                     spec's start, link requests) with the behaviour's.
 *   mailbox           pushed - handled. Senders count `pushed` with a load
 *                     and a store, not an atomic add, beside the head
 *                     the push's exchange is about to take: 3 instructions and
 *                     no bus lock (an atomic add would cost a locked
 *                     instruction per send). Before the exchange, not
 *                     after it: the same instructions after it cost
 *                     pingpong 3% of its time (farm-bench, 2 workers).
 *                     Senders racing on one mailbox can lose increments,
 *                     so the figure is then low: measured with 2, 4 and 8
 *                     outside threads sending 200,000 messages each to an
 *                     actor held in a turn (2 cores), 0-3.6%, 1.6-3.9% and
 *                     0.5-5.9% low. As the actor goes idle its turn sets
 *                     pushed = handled if pushed is behind — which only a
 *                     lost count makes it, since a message is counted
 *                     before it is pushed — so a loss lasts until the
 *                     mailbox next empties (tr__actor_mark_idle; test
 *                     metrics_figures/mailbox_count_starts_again...), or
 *                     a little past it when a send loads the count just
 *                     before that restart and stores it just after.
 *                     Exact with one sending thread at a time (but for a
 *                     send in progress, counted a moment before its
 *                     message is there); an empty, unscheduled mailbox
 *                     reads 0. A running actor's figure includes the
 *                     messages its turn has taken but not finished
 *                     (handled moves at the turn's end).
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
 *                     For an actor in a run queue now, the figure is how
 *                     long it has waited so far. Stamp and figure share
 *                     the slot's `wait` word (actor.h): in the side record,
 *                     the figure cost every actor taken from a queue a
 *                     second line and a reset of the record at its first
 *                     turn (fjcreation: +1.5% instructions).
 *   busy, longest     the monitor's samples (sched/metrics.c): ±1 tick.
 *   links, monitors   published by fault.c when the record changes.
 * Busy, longest, links and monitors (and the turns' high half) live in
 * the slot's side record (actor.h): written by the monitor, a change of
 * links or monitors, or a 2^32nd turn — never by an ordinary turn, a
 * send, a trip through a run queue, nor an idle actor.
 */
#include <stdio.h>
#include <string.h>

#include "../base/symbol.h"
#include "actors.h"
#include "fault.h"

uint64_t tr__figures_mailbox(tr__actor *a)
{
    if ((uintptr_t)ck_pr_load_ptr(&a->mailbox) & TR__MPSC_EMPTY)
        return 0;
    /* In 32 bits, wrapping: a mailbox holds fewer than 2^31 messages, and
     * a difference past that is a count that ran behind (clamped to 0). */
    uint32_t handled = (uint32_t)ck_pr_load_64(&a->handled);
    uint32_t depth = ck_pr_load_32(&a->pushed) - handled;
    return depth < UINT32_C(1) << 31 ? depth : 0;
}

uint64_t tr__figures_handled(tr__actor *a)
{
    return ck_pr_load_64(&a->handled);
}

void tr__figures_carry(tr__actor *a)
{
    uint32_t life = ck_pr_load_32(&a->life);
    if (life & 1) {
        tr__side *s = tr__side_own(a, life);
        ck_pr_store_32(&s->turns_hi, ck_pr_load_32(&s->turns_hi) + 1);
    }
}

/* a's side record if the group tagged by *tag (its own_life or its
 * monitor_life) is incarnation `life`'s, or zeros if it holds another's
 * (actor.h): the tag, then the figures it covers. */
static const tr__side *group(tr__actor *a, const uint32_t *tag, uint32_t life)
{
    static const tr__side none;
    if (ck_pr_load_32((uint32_t *)tag) != life)
        return &none;
    ck_pr_fence_load();
    return tr__side_of(a);
}

uint64_t tr__figures_busy(tr__actor *a, uint32_t life)
{
    const tr__side *m = group(a, &tr__side_of(a)->monitor_life, life);
    return ck_pr_load_64((uint64_t *)&m->busy_ns);
}

/* The coarse clock at a's last turn, from the 32-bit stamp: the stamp
 * of the clock now, less how far the last run's is behind it (so right
 * to a stamp unit for any run in the last 52 days). */
static uint64_t last_run_ns(tr_runtime *rt, tr__actor *a)
{
    uint64_t now = ck_pr_load_64(&tr__actors_of(rt)->coarse_ns) >> TR__RUN_SHIFT;
    uint32_t behind = (uint32_t)now - ck_pr_load_32(&a->last_run);
    return behind <= now ? (now - behind) << TR__RUN_SHIFT : 0;
}

bool tr__figures_read(tr_runtime *rt, tr__actor *a, tr_pid pid, tr_actor_figures *out)
{
    memset(out, 0, sizeof *out);
    if (!tr__actor_live(a, pid))
        return false;
    uint32_t life = ck_pr_load_32(&a->life);
    const tr__side *own = group(a, &tr__side_of(a)->own_life, life);
    out->pid = pid;
    if (ck_pr_load_16(&a->named))
        tr__registry_name_of(rt, pid, out->name, sizeof out->name);
    tr__symbol_name(ck_pr_load_ptr((void **)&a->fn), out->behaviour, sizeof out->behaviour);
    if (ck_pr_load_64(&a->muted) & TR__WAITING)
        out->state = TR_ACTOR_MUTED;
    else if (!((uintptr_t)ck_pr_load_ptr(&a->mailbox) & TR__MPSC_EMPTY))
        out->state = TR_ACTOR_RUNNABLE; /* scheduled; sched/ tells running apart */
    else
        out->state = TR_ACTOR_IDLE;
    out->turns = (uint64_t)ck_pr_load_32((uint32_t *)&own->turns_hi) << 32 |
                 ck_pr_load_32(&a->turns);
    out->handled = tr__figures_handled(a);
    const tr__side *m = group(a, &tr__side_of(a)->monitor_life, life);
    out->busy_ns = ck_pr_load_64((uint64_t *)&m->busy_ns);
    out->longest_turn_ns = (uint64_t)ck_pr_load_32((uint32_t *)&m->longest_us) * 1000;
    out->mailbox = tr__figures_mailbox(a);
    out->last_run_ns = out->turns != 0 ? last_run_ns(rt, a) : 0;
    /* In a run queue now: how long so far. */
    uint32_t units = (uint32_t)(ck_pr_load_64(&tr__actors_of(rt)->coarse_ns) >> TR__WAIT_SHIFT);
    uint32_t waited = tr__wait_taken(ck_pr_load_32(&a->wait), units) >> 1;
    out->oldest_wait_ns = (uint64_t)waited << TR__WAIT_SHIFT;
    out->links = ck_pr_load_32((uint32_t *)&own->links);
    out->monitors = ck_pr_load_32((uint32_t *)&own->monitors);
    /* Not alive any more: the figures may be the next incarnation's. */
    return tr__actor_live(a, pid);
}
