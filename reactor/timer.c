/* reactor/timer.c — timers: start, fire, cancel.
 *
 * A timer is an actor slot (so it has a pid) plus a request block filed
 * in a timing wheel: the starting worker's own, or for a timer started by
 * another thread the outside one, which the poller files (reactor.h,
 * tr__reactor_submit). The slot's aux word is the timer's state,
 * tagged with its generation: PENDING until the reactor claims it to fire
 * (FIRING) or a canceller claims it (DONE). Exactly one side wins the
 * compare-and-swap, which is what makes "cancelled" mean "will not be
 * delivered". A periodic timer returns to PENDING after each delivery; a
 * cancel that meets FIRING waits for that delivery to finish.
 *
 * A pending timer holds the runtime open, from the starting worker's
 * spare holds (sched.h), unless it is weak (tr__timer_weak: an asker's
 * timeout sweep, ask.c, whose asker holds the runtime itself while it
 * waits): a weak timer's slot has its own never-called behaviour, so
 * that fire and cancel know there is no hold to give back.
 *
 * A timer takes no messages (sends to its pid are dead letters), so its
 * behaviour never runs: whoever moves it to DONE ends its pid at once (the
 * poller after the last delivery, or the canceller), and the worker
 * polling the reactor recycles the slot when the wheel entry comes due —
 * for a cancelled timer, whoever sweeps its wheel (below) when it finds
 * it, as cancel is one CAS, never a search.
 *
 * A wheel per worker, against the one wheel filed by the poller from a
 * queue per worker (the design until this one), measured alternating on
 * 2 workers, 2 CPUs: bench/timers' start+cancel at 2 workers 146-225 ns a
 * timer against 168-239 (level in the host's fast minutes, 4-8% faster
 * in its slow ones, where a line takes 170-220 ns to cross: what it costs
 * is mostly the page faults of 350 bytes a timer, which two threads take
 * on one address space); the lateness of its second phase (a million
 * timers due over a second) p99 121-145 ms against 139-186 in slow
 * minutes; and a deadline moved 10 million times by cancel and start
 * (the sweep, below) 16.0 M moves a second on 1 and 2 workers against
 * 9.4 and 14.8 M, with 4,112 slots and a peak of 6 MB against 51,216 and
 * 21 MB at 1 worker.
 * It is built for many cores: there the one poller filed every worker's
 * starts (a line crossing each, and on one thread).
 */
#include <limits.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>

#include "../base/debug.h"
#include "../mailbox/msg.h"
#include "../sched/sched.h"
#include "reactor.h"
#include "troupe/error.h"
#include "troupe/timer.h"

enum { PENDING = 1, FIRING = 2, DONE = 3 };

typedef struct timer_req {
    tr__wheel_entry entry; /* first: the wheel hands back this pointer */
    uint64_t due_ns, period_ns;
    tr_pid timer, target;
    tr__actor *slot;
    tr_msg *payload;
    tr__wheel *wheel; /* the wheel it is filed in (a periodic one goes back there) */
} timer_req;
_Static_assert(offsetof(timer_req, entry) == 0,
               "the wheel hands back the entry, which is taken as its timer_req");

static tr_msg *block_of(timer_req *t)
{
    return (tr_msg *)((char *)t - offsetof(tr_msg, data));
}

static uint64_t ticks_ceil(uint64_t ns)
{
    return (ns >> TR__TICK_SHIFT) + ((ns & ((UINT64_C(1) << TR__TICK_SHIFT) - 1)) != 0);
}

/* Never called: a timer's mailbox receives nothing. */
static void timer_actor(tr_ctx *cx, void *state, const tr_msg *m)
{
    (void)cx;
    (void)state;
    (void)m;
}

/* The behaviour of a weak timer (tr__timer_weak), which holds nothing:
 * never called either; it marks the slot, for the canceller has only
 * the slot to go by. */
static void weak_timer_actor(tr_ctx *cx, void *state, const tr_msg *m)
{
    (void)cx;
    (void)state;
    (void)m;
}

static bool holds_runtime(const tr__actor *slot)
{
    return slot->fn != weak_timer_actor;
}

static void req_free(timer_req *t)
{
    if (t->payload != NULL)
        tr__msg_release(t->payload);
    tr__msg_release(block_of(t));
}

/* The timer is DONE: its pid ends now, counted on w (the calling
 * thread's worker, NULL for another thread). */
static void timer_end(tr_runtime *rt, tr__worker *w, tr__actor *slot)
{
    TR_ASSERT((ck_pr_load_32(&slot->aux) & 3) == DONE);
    tr__table_end(slot, ck_pr_load_32(&slot->life));
    if (w != NULL)
        tr__count(&w->turner.count.stopped);
    else
        ck_pr_inc_64(&rt->actors.outside.stopped);
    TR__METRIC_ADD(rt, timers_removed, 1);
}

/* A delivery: how late it is, for the histogram (troupe/metrics.h). */
static void lateness(tr__reactor *r, const timer_req *t)
{
    tr__metric_lateness(r->poller, r->now > t->due_ns ? r->now - t->due_ns : 0);
}

/* The reactor is done with a timer's entry: the slot goes back — once its
 * pid has ended. A canceller ends it just after its compare-and-swap to
 * DONE, and the expiry that lost to that swap comes here at once: given
 * back in between, the slot could be spawned into under the timer's own
 * generation and then ended by the canceller (found by the assertion in
 * tr__table_give, timer/cancel_races_expiry_4_threads). The canceller is a
 * few instructions away, as the FIRING wait in tr_timer_cancel is. */
static void timer_reap(tr_runtime *rt, tr__worker *w, timer_req *t)
{
    while (ck_pr_load_32(&t->slot->life) & 1)
        sched_yield();
    tr__table_give(&rt->actors.table, &w->turner.slots, t->slot);
    req_free(t);
}

/* The calling thread's worker if it is one of rt's (else NULL): its slot
 * cache and request queue serve the timer; *in_turn: whether it is
 * running a turn, whose timer starts and cancels then take and give back
 * holds through the worker's spare ones (sched.h, tr__sched_spare_take).
 * By the thread rather than the context passed, as a behaviour may cancel
 * with the outside context (asks do, actors/ask.c). */
static tr__worker *here(tr_runtime *rt, bool *in_turn)
{
    tr__worker *w = tr__worker_current();
    if (w == NULL || w->turner.rt != rt) {
        *in_turn = false;
        return NULL;
    }
    *in_turn = tr__cx_in_turn(&w->turner.cx);
    return w;
}

static int timer_start(tr_ctx *cx, const tr_timer_spec *spec, bool system, bool weak,
                       tr_pid *out)
{
    tr_runtime *rt = tr_ctx_runtime(cx);
    bool in_turn;
    tr__worker *w = here(rt, &in_turn);
    if (spec == NULL || (spec->type >= TR_MSG_SYSTEM && !system) ||
        (spec->data == NULL && spec->len != 0))
        return TR_EINVAL;
    if (spec->len > TR_MSG_MAX_LEN)
        return TR_EMSGSIZE;

    tr_msg *payload = tr__msg_new(spec->type, (uint32_t)spec->len);
    tr_msg *block = tr__msg_new(0, sizeof(timer_req));
    if (payload == NULL || block == NULL) {
        tr_msg_free(payload);
        tr_msg_free(block);
        return TR_ENOMEM;
    }
    if (spec->len != 0)
        memcpy(payload->data, spec->data, spec->len);

    tr_pid pid;
    int err = tr__spawn(rt, w, weak ? weak_timer_actor : timer_actor, NULL, 0, &pid);
    if (err != 0) {
        tr__msg_release(payload);
        tr__msg_release(block);
        return err;
    }
    timer_req *t = (timer_req *)block->data;
    t->slot = tr__table_lookup(&rt->actors.table, pid);
    t->timer = pid;
    t->target = spec->to;
    t->payload = payload;
    t->period_ns = spec->period_ns;
    uint64_t now = tr__now_ns();
    t->due_ns = spec->delay_ns > UINT64_MAX - now ? UINT64_MAX : now + spec->delay_ns;
    ck_pr_store_32(&t->slot->aux, TR__AUX(TR__PID_GEN(pid), PENDING));

    TR__METRIC_ADD(rt, timers_added, 1);
    if (out != NULL)
        *out = pid;
    if (!weak) { /* a pending timer holds the runtime open */
        if (in_turn)
            tr__sched_spare_take(w);
        else
            tr_runtime_hold(rt);
    }
    tr__reactor_submit(rt->reactor, w, &block->tr__link, t->due_ns);
    return 0;
}

uint64_t tr__timer_file(tr__timer_wheel *tw, tr__node *request)
{
    timer_req *t = (timer_req *)((tr_msg *)request)->data;
    t->entry.due = ticks_ceil(t->due_ns);
    t->wheel = &tw->wheel;
    tw->filed++;
    return tr__wheel_insert(&tw->wheel, &t->entry);
}

void tr__timer_drop(tr__wheel_entry *e)
{
    req_free((timer_req *)e);
}

/* A periodic timer's next expiry, on its original grid: ticks missed
 * while the reactor was late are skipped, not delivered in a burst. A
 * period that takes it past the clock's range (UINT64_MAX, say, for
 * "never again") makes it never: the sums must not wrap into the past,
 * where it would fire at every tick. */
static uint64_t next_due(uint64_t due, uint64_t period, uint64_t now)
{
    if (period > UINT64_MAX - due)
        return UINT64_MAX;
    due += period;
    if (due > now)
        return due;
    uint64_t skip = (now - due) / period + 1;
    return skip > (UINT64_MAX - due) / period ? UINT64_MAX : due + skip * period;
}

void tr__timer_fire(tr__wheel_entry *e, void *arg)
{
    tr__reactor *r = arg;
    timer_req *t = (timer_req *)e;
    uint32_t gen = TR__PID_GEN(t->timer);
    if (!ck_pr_cas_32(&t->slot->aux, TR__AUX(gen, PENDING), TR__AUX(gen, FIRING))) {
        timer_reap(r->rt, r->poller, t); /* cancelled and ended by the canceller */
        return;
    }
    /* FIRING: only this call moves the state on (cancel waits). */
    TR_ASSERT(ck_pr_load_32(&t->slot->aux) == TR__AUX(gen, FIRING));
    if (CK_CC_UNLIKELY(r->poller->trace != NULL))
        tr__trace_timer(r->poller, t->timer, t->target);
    lateness(r, t);
    if (t->period_ns == 0) {
        bool held = holds_runtime(t->slot);
        tr__send(r->rt, r->poller, t->timer, t->target, t->payload);
        t->payload = NULL;
        ck_pr_store_32(&t->slot->aux, TR__AUX(gen, DONE));
        timer_end(r->rt, r->poller, t->slot);
        /* The hold goes after the delivery is queued, so the runtime
         * cannot look finished in between. */
        if (held)
            tr_runtime_release(r->rt);
        timer_reap(r->rt, r->poller, t);
        return;
    }

    tr_msg *copy = tr__msg_new(t->payload->type, t->payload->len);
    if (copy != NULL) {
        memcpy(copy->data, t->payload->data, t->payload->len);
        tr__send(r->rt, r->poller, t->timer, t->target, copy);
    }
    ck_pr_store_32(&t->slot->aux, TR__AUX(gen, PENDING));
    t->due_ns = next_due(t->due_ns, t->period_ns, tr__now_ns());
    t->entry.due = ticks_ceil(t->due_ns);
    tr__wheel_insert(t->wheel, &t->entry);
}

/* ---- the sweep: cancelled timers out of the wheel before they are due ----
 * A cancel is one compare-and-swap, so a cancelled timer stays filed,
 * holding its slot and its blocks (about 350 bytes), until it comes due.
 * A program that moves a deadline by cancelling and starting again (an
 * idle timeout reset on every message) would then hold every timer it
 * started within the delay: a minute's timeout moved 100,000 times a
 * second is 6 million timers, 2 GB. So whoever files into a wheel sweeps
 * it, in passes over the whole wheel (tr__wheel_sweep): a worker every
 * TR__SWEEP_EVERY timers it files into its own, the poller at each poll
 * for the outside wheel.
 *   - When to pass: when the wheel holds at least SWEEP_MIN entries and
 *     twice the fewest it held since the last look (after a pass, at the
 *     next step), the sweeper reads the count of pending timers (every
 *     worker's counters: tr__timers_pending); a pass begins if they are
 *     no more than half of what all the wheels hold.
 *   - How fast: each step looks at SWEEP_STEP entries plus four for each
 *     request filed since the last, so a pass outruns the filing; what is
 *     filed meanwhile waits for the next pass, which follows at once
 *     while cancelled timers are half of the wheel or more.
 *   - What it costs: a read of the counters each time the wheel doubles
 *     (a program that cancels little pays nothing else); while passes
 *     run, at most SWEEP_STEP / TR__SWEEP_EVERY + 4 looks per request
 *     filed, at least half of them at cancelled entries, which are reaped
 *     as they would have been when due. A step is bounded by SWEEP_STEP
 *     plus four times the filing since the last, so a start, and a poll's
 *     expiries and readiness, wait for nothing unbounded.
 * The poller asleep in epoll_wait is woken every TR__SUBMIT_WAKE starts
 * the outside queue takes (reactor.h), so that the timers of other
 * threads are filed and swept too. An actor moving an hour-long deadline
 * (cancel, start) 10 million times, 100 a turn: the actor table grew to
 * 10 million slots (3.4 GB resident) before the sweep, 16,000-51,000
 * (10-21 MB) with the poller sweeping one wheel, and 4,112 (6 MB) on 1
 * or 2 workers with the owner sweeping its own as it files (the moves
 * run at 16 M a second: slots and blocks come back warm). The
 * pattern of bench/timers (a million hour-long timers started, then all
 * cancelled) makes no pass while they are pending, and its rate is level
 * (8 alternating runs at 2 workers: medians 4.39 -> 4.31 M, 4.1 -> 4.0 M
 * at small size, inside the runs' spread).
 * Rejected: reaping each cancelled timer at the next poll (the canceller
 * queues its block again): bench/timers 5.5 -> 3.5 M starts and cancels
 * a second at 2 workers, for the canceller writes the block's line and
 * the poller reads the slot's, a miss each, on every cancel. */
#define SWEEP_MIN 4096
#define SWEEP_STEP 256

static bool cancelled(tr__wheel_entry *e, void *arg)
{
    (void)arg;
    timer_req *t = (timer_req *)e;
    /* In the wheel a timer is PENDING or, cancelled, DONE: FIRING is
     * only ever seen inside tr__timer_fire, which is this thread's. */
    return ck_pr_load_32(&t->slot->aux) != TR__AUX(TR__PID_GEN(t->timer), PENDING);
}

struct reaper {
    tr_runtime *rt;
    tr__worker *w;
};

static void reap(tr__wheel_entry *e, void *arg)
{
    struct reaper *by = arg;
    timer_reap(by->rt, by->w, (timer_req *)e);
}

void tr__timer_sweep(tr__reactor *r, tr__worker *w, tr__timer_wheel *tw)
{
    tr__wheel *wh = &tw->wheel;
    uint64_t filed = tw->filed;
    tw->filed = 0;
    if (!tr__wheel_sweeping(wh)) {
        if (wh->count < tw->sweep_low)
            tw->sweep_low = wh->count;
        if (wh->count < SWEEP_MIN || wh->count < 2 * tw->sweep_low)
            return;
        tw->sweep_low = wh->count;
        if (2 * tr__timers_pending(r->rt) > tr__reactor_timers_filed(r))
            return; /* mostly pending: look again once the wheel has doubled */
        tr__wheel_sweep_begin(wh);
    }
    uint64_t step = SWEEP_STEP + 4 * filed;
    struct reaper by = {r->rt, w};
    if (tr__wheel_sweep(wh, step > UINT_MAX ? UINT_MAX : (unsigned)step, cancelled, reap, &by))
        tw->sweep_low = 0; /* look again at the next step */
}

/* ---- simulation: the timers of one poll in a seeded order ---- */

#define LATE_MAX_NS (10 * 1000 * 1000)

void tr__timer_gather(tr__wheel_entry *e, void *arg)
{
    tr__reactor *r = arg;
    if (r->due_n == r->due_cap) {
        size_t cap = r->due_cap != 0 ? 2 * r->due_cap : 64;
        tr__wheel_entry **due = realloc(r->due, cap * sizeof *due);
        if (due == NULL) {
            tr__timer_fire(e, r); /* out of memory: in the wheel's order */
            return;
        }
        r->due = due;
        r->due_cap = cap;
    }
    r->due[r->due_n++] = e;
}

/* One timer of the shuffled batch: fired, or put off by the fault site
 * (once a period, so that the delay stays within LATE_MAX_NS). A timer
 * put off is one whose wheel tick is no longer its due time's: filing and
 * firing set the tick from due_ns, and the delay moves it past this poll's
 * tick, which due_ns's had reached. */
static void fire_seeded(tr__reactor *r, timer_req *t)
{
    bool pending = ck_pr_load_32(&t->slot->aux) == TR__AUX(TR__PID_GEN(t->timer), PENDING);
    bool late = t->entry.due != ticks_ceil(t->due_ns);
    if (pending && !late && tr__sim_fault(TR__FAULT_TIMER_LATE)) {
        t->entry.due = ticks_ceil(r->now + 1 + tr__sim_below(LATE_MAX_NS));
        tr__wheel_insert(t->wheel, &t->entry);
        return;
    }
    if (pending)
        tr__sim_mix(TR__EV_TIMER, t->timer, t->target);
    tr__timer_fire(&t->entry, r);
}

void tr__timer_fire_gathered(tr__reactor *r)
{
    /* Fisher-Yates from the seeded stream: timers due in one poll are
     * tried in every order across seeds, not always in filing order. */
    for (size_t i = r->due_n; i > 1; i--) {
        size_t j = (size_t)tr__sim_below(i);
        tr__wheel_entry *e = r->due[i - 1];
        r->due[i - 1] = r->due[j];
        r->due[j] = e;
    }
    for (size_t i = 0; i < r->due_n; i++)
        fire_seeded(r, (timer_req *)r->due[i]);
    r->due_n = 0;
}

int tr_timer_start(tr_ctx *cx, const tr_timer_spec *spec, tr_pid *timer)
{
    if (!tr__cx_in_turn(cx) && !tr__cx_outside(cx))
        return TR_EINVAL;
    return timer_start(cx, spec, false, false, timer);
}

int tr__timer_system(tr_ctx *cx, uint64_t delay_ns, uint32_t type, tr_pid *timer)
{
    return tr__timer_self(cx, delay_ns, type, NULL, 0, timer);
}

int tr__timer_self(tr_ctx *cx, uint64_t delay_ns, uint32_t type, const void *data, size_t len,
                   tr_pid *timer)
{
    tr_timer_spec spec = {
        .delay_ns = delay_ns, .to = tr_self(cx), .type = type, .data = data, .len = len};
    return timer_start(cx, &spec, true, false, timer);
}

int tr__timer_weak(tr_ctx *cx, uint64_t delay_ns, uint32_t type, tr_pid *timer)
{
    tr_timer_spec spec = {.delay_ns = delay_ns, .to = tr_self(cx), .type = type};
    return timer_start(cx, &spec, true, true, timer);
}

int tr_send_after(tr_ctx *cx, uint64_t delay_ns, tr_pid to, uint32_t type, const void *data,
                  size_t len)
{
    tr_timer_spec spec = {.delay_ns = delay_ns, .to = to, .type = type, .data = data, .len = len};
    return tr_timer_start(cx, &spec, NULL);
}

int tr_timer_cancel(tr_ctx *cx, tr_pid timer)
{
    if (cx == NULL)
        return TR_EINVAL;
    tr_runtime *rt = tr_ctx_runtime(cx);
    tr__actor *slot =
        TR__PID_NODE(timer) == 0 ? tr__table_lookup(&rt->actors.table, timer) : NULL;
    if (slot == NULL || tr__pid_never_issued(ck_pr_load_32(&slot->life), timer))
        return TR_ENOPID;
    uint32_t gen = TR__PID_GEN(timer);
    for (;;) {
        uint32_t s = ck_pr_load_32(&slot->aux);
        if (s == TR__AUX(gen, PENDING)) {
            if (ck_pr_cas_32(&slot->aux, s, TR__AUX(gen, DONE))) {
                bool in_turn;
                tr__worker *h = here(rt, &in_turn);
                bool held = holds_runtime(slot);
                timer_end(rt, h, slot);
                if (held && in_turn)
                    tr__sched_spare_give(h, 1);
                else if (held)
                    tr_runtime_release(rt);
                return 1;
            }
        } else if (s == TR__AUX(gen, FIRING)) {
            sched_yield(); /* a delivery is under way: a few instructions */
        } else {
            return 0;
        }
    }
}
