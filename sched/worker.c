/* sched/worker.c — worker threads: find work, run it, park when idle.
 * The design is described at the top of sched.h. */
#include <sched.h>
#include <stddef.h>
#include <unistd.h>

#include "../base/futex.h"
#include "../mailbox/msg.h"
#include "sched.h"

/* A worker's park word. POLLING is parked too, but asleep in the
 * reactor's epoll_wait rather than on the futex: it is woken through the
 * reactor's eventfd (reactor.h). */
enum { AWAKE = 0, PARKED = 1, NOTIFIED = 2, POLLING = 3 };

/* Consecutive LIFO-slot turns before the slot's actor must queue like
 * everyone else: two actors messaging each other must not starve the ring. */
#define LIFO_MAX 32
/* Every this many turns the injection queue is checked first, so that
 * outside submissions are not starved by a busy local ring. */
#define INJECT_EVERY 61
/* Look rounds (every victim once) before a searching worker parks:
 * measured on 2 cores at 16 threads, 64 burnt the busy workers' time
 * (fanin 0.48 of its 2-thread rate, chameneos 0.48); 8 gave 0.62 and
 * 0.50; 1 made chameneos park and wake so often that it fell to 0.25. */
#define SEARCH_ROUNDS 8


static _Thread_local tr__worker *tls_worker;

tr__worker *tr__worker_current(void)
{
    return tls_worker;
}

tr__worker *tr__worker_swap(tr__worker *w)
{
    tr__worker *was = tls_worker;
    tls_worker = w;
    return was;
}

/* ---- waking ---- */

/* Wakes v if it is parked. It stays counted as parked until it runs and
 * leaves the count itself (unpark): a waker preempted between its CAS and
 * a decrement of its own would let v run, park again and be counted
 * twice, and the last worker to park could then see "all parked" while
 * the waker still held an actor it had popped. */
static bool wake_worker(tr_runtime *rt, tr__worker *v)
{
    uint32_t state = ck_pr_load_32(&v->park);
    if ((state != PARKED && state != POLLING) || !ck_pr_cas_32(&v->park, state, NOTIFIED))
        return false;
    if (state == PARKED)
        tr__futex_wake(&v->park);
    else
        tr__reactor_wake(rt->reactor);
    return true;
}

/* Wakes one parked worker, one on its futex if there is one: the poller
 * asleep in the reactor is woken by I/O and timers anyway, and waking it
 * costs an eventfd write and read where a futex costs one call. With
 * workers bound to CPUs (tr_config.pin), one bound to the waker's own CPU
 * comes last: woken there, it would take that CPU from the waker, which
 * then waits for the kernel's next balancing tick (milliseconds) with
 * another CPU idle — measured on bench/timers, whose main thread's second
 * START came 1-9 ms late in the slow runs. */
static void wake_one(tr_runtime *rt)
{
    unsigned n = rt->cfg.threads;
    unsigned start = ck_pr_faa_32(&rt->wake_cursor, 1);
    int here = rt->cfg.pin ? sched_getcpu() : -1;
    tr__worker *polling = NULL, *beside = NULL;
    for (unsigned i = 0; i < n; i++) {
        tr__worker *v = &rt->workers[(start + i) % n];
        uint32_t state = ck_pr_load_32(&v->park);
        if (state == POLLING)
            polling = v;
        else if (state == PARKED && here >= 0 && ck_pr_load_int(&v->bound) == here)
            beside = v;
        else if (state == PARKED && wake_worker(rt, v))
            return;
    }
    if (beside != NULL && wake_worker(rt, beside))
        return;
    if (polling != NULL)
        wake_worker(rt, polling);
}

void tr__sched_wake_all(tr_runtime *rt)
{
    for (unsigned i = 0; i < rt->cfg.threads; i++) {
        tr__worker *v = &rt->workers[i];
        if (!wake_worker(rt, v))
            tr__futex_wake(&v->park);
    }
    tr__reactor_wake(rt->reactor);
    tr__monitor_stop(rt);
}

/* ---- more workers than CPUs ----
 * Waking more workers than there are CPUs only makes them take turns on
 * the same cores (at 16 threads on 2 cores that cost skynet 40% of its
 * rate), so the rest stand by — unless some of the awake ones are stuck
 * in long turns (or blocked in one): a worker that has not finished
 * MEASURE_TURNS turns in STUCK_NS does not count. Since wake-ups that
 * skip the standing-by workers are not repeated, the one asleep in the
 * reactor looks again every STUCK_NS while the CPUs are taken. */
#define STUCK_NS (1000 * 1000)

/* Workers other than self that take a CPU (at most rt->cpus are
 * counted): awake ones making progress, and ones woken and not yet
 * running — about to take a CPU, though still counted as parked (they
 * leave that count themselves: wake_worker). Without the woken ones,
 * sends in a row from outside each woke a worker before the first of
 * them ran: bench/ask's four STARTs at 16 workers on 2 CPUs woke three
 * or four, whose pairs then shared the two CPUs by the kernel's time
 * slices. */
static uint32_t moving_besides(tr_runtime *rt, tr__worker *self)
{
    uint64_t now = tr__now_ns();
    uint32_t moving = 0;
    for (unsigned i = 0; i < rt->cfg.threads && moving < rt->cpus; i++) {
        tr__worker *v = &rt->workers[i];
        uint32_t state = ck_pr_load_32(&v->park);
        if (v != self && (state == NOTIFIED || (state == AWAKE &&
                                                now - ck_pr_load_64(&v->mark_ns) < STUCK_NS)))
            moving++;
    }
    return moving;
}

/* Whether as many workers are awake, or take a CPU (moving_besides), as
 * there are CPUs (and there are more workers). */
static bool cpus_taken(tr_runtime *rt)
{
    return rt->cfg.threads > rt->cpus &&
           (rt->cfg.threads - N_PARKED(ck_pr_load_64(&rt->idle)) >= rt->cpus ||
            moving_besides(rt, NULL) >= rt->cpus);
}

/* Whether the workers that take a CPU leave one for one more. */
static bool cpu_free(tr_runtime *rt)
{
    return rt->cfg.threads <= rt->cpus || moving_besides(rt, NULL) < rt->cpus;
}

/* A worker out of work, or just woken, stands by (parks without
 * searching, even with work in sight) while other workers take the
 * CPUs. */
static bool stand_by(tr__worker *w)
{
    tr_runtime *rt = w->turner.rt;
    return rt->cfg.threads > rt->cpus && moving_besides(rt, w) >= rt->cpus;
}

/* Makes sure that a parked worker looks again within STUCK_NS: work was
 * queued while the CPUs were taken, so notify woke nobody for it, and
 * the workers that have them may be stuck in long turns. If one is
 * asleep in the reactor with no timeout (it chose so when nothing was
 * queued and CPUs were free), it is woken; if none is asleep there, one
 * parked on its futex is, since it may have gone to sleep with no
 * timeout while another polled (park). The woken worker stands by again
 * while the CPUs stay taken (injected), as the poller, which sleeps
 * with STUCK_NS then, so this happens once per such sleep. Without it,
 * work queued while every awake worker had just begun a long turn
 * waited for the turns' end (sched/stuck_workers_hand_their_cpu_on,
 * under TSan on a loaded machine: 2 runs in 8 waited out the blockers'
 * 10 s). A worker that goes to work out of a park while the injection
 * queue still holds some hands the looking on the same way
 * (woke_to_work). */
static void look_again_soon(tr_runtime *rt)
{
    bool polling = ck_pr_load_32(&rt->polling);
    if (polling && ck_pr_load_32(&rt->poll_timed))
        return;
    for (unsigned i = 0; i < rt->cfg.threads; i++) {
        tr__worker *v = &rt->workers[i];
        if (ck_pr_load_32(&v->park) == (polling ? POLLING : PARKED) && wake_worker(rt, v))
            return;
    }
}

/* Work is queued that nobody may be looking for: wakes a worker if a CPU
 * is free for it, else makes sure that one looks again within STUCK_NS. */
static void wake_for_work(tr_runtime *rt)
{
    if (cpu_free(rt))
        wake_one(rt);
    else
        look_again_soon(rt);
}

/* Called after making work stealable. The fence orders that work before
 * the look at `idle` (see the parking protocol in sched.h). */
static void notify(tr_runtime *rt)
{
    ck_pr_fence_memory();
    uint64_t s = ck_pr_load_64(&rt->idle);
    if (N_PARKED(s) == 0 || N_SEARCHING(s) != 0)
        return;
    wake_for_work(rt);
}

void tr__sched_poke(tr_runtime *rt)
{
    ck_pr_fence_memory();
    if (N_PARKED(ck_pr_load_64(&rt->idle)) == rt->cfg.threads)
        wake_one(rt);
}

void tr__sched_spare_take(tr__worker *w)
{
    if (w->holds_spare == 0) {
        tr_runtime *rt = w->turner.rt;
        ck_pr_add_32(&rt->holds, TR__HOLDS_BLOCK);
        tr__monitor_wake(rt);
        w->holds_spare = TR__HOLDS_BLOCK;
    }
    w->holds_spare--;
}

void tr__sched_spare_give(tr__worker *w, uint32_t n)
{
    w->holds_spare += n;
    if (w->holds_spare >= TR__HOLDS_SPARE_MAX)
        tr__sched_settle(w);
}

void tr__sched_settle(tr__worker *w)
{
    uint32_t spare = w->holds_spare;
    if (spare == 0)
        return;
    w->holds_spare = 0;
    int r = tr__runtime_release_n(w->turner.rt, spare);
    TR_ASSERT(r == 0); /* each spare is counted in the word */
    (void)r;
}

/* ---- run queues ---- */

/* Actors made runnable by one poll that w keeps to itself before waking
 * another worker to share them. Each wake-up costs the woken worker a
 * steal, a search and a sleep; for the handful of connections one poll
 * usually readies, the poller runs them sooner than a helper could start
 * (echo-rr, 64 connections, 2 workers on 2 cores shared with the load
 * generator: sharing at 2 gave 210k requests/s and a p99 of 730 us,
 * 42,000 context switches a second; at 64, 264k and 350 us, 300 a
 * second). A poll that readies more is a backlog worth a second core. */
#define SHARE_POLLED 64

/* The ring is full: its older half goes to w's overflow (runq.h), or to
 * the injection queue if the overflow's lock is taken or its array cannot
 * grow (there, linked here and added with one exchange on the queue's
 * head, w counts it as spilled: spill_left). The older half: for a tree
 * of spawns (skynet) it is the top of the tree, whole subtrees for
 * whoever takes it, and it leaves the newer actors, whose data is warm,
 * to w. On 2 cores, skynet at 2 workers: 14-15 -> 20-22 M actors/s while a
 * cache line crosses between the CPUs in 40-60 ns, 7 -> 10-11 M while it
 * takes 180-200 ns; at 16 workers 7.1 -> 9.8 M in the slow minutes; at 1
 * worker level or +9%. (Until then the actor that found the ring full
 * went to the queue alone: the children of w's parents went to the other
 * worker one by one, each answer crossing back.) */
static void spill(tr__worker *w)
{
    tr__actor *half[TR__RUNQ_SIZE / 2];
    unsigned n = 0;
    while (n < TR__RUNQ_SIZE / 2 && (half[n] = tr__runq_pop(&w->runq)) != NULL)
        n++;
    if (n != 0 && !tr__overflow_put(&w->overflow, half, n)) {
        tr__injectq_push_all(&w->turner.rt->inject, half, n);
        w->spilled += n;
    }
}

/* Pushes onto w's ring (spilling half of it when it is full), waking a
 * worker when the ring has just come to hold enough to share: share_at
 * (or SHARE_POLLED while dispatching readiness), and every 32nd push
 * beyond as a backstop; not on every push, since notifying reads the
 * `idle` word that searching workers keep writing.
 * Wake-ups only add parallelism here: w never parks while its ring holds
 * work, so a worker left parked costs speed, never a message. And a
 * worker parks only after seeing no ring worth taking from (work_visible),
 * so a ring that grows again passes through its threshold and wakes it. */
static void push_local(tr__worker *w, tr__actor *a)
{
    tr_runtime *rt = w->turner.rt;
    if (!tr__runq_push(&w->runq, a)) {
        /* Overflow: anyone may take the spilled half, but only worth a
         * wake-up if a full ring is worth sharing. */
        spill(w);
        bool room = tr__runq_push(&w->runq, a);
        TR_ASSERT(room); /* the spill made some; thieves only take */
        (void)room;
        if (w->share_at <= TR__RUNQ_CAPACITY)
            notify(rt);
    } else {
        unsigned size = tr__runq_size(&w->runq), at = w->dispatching ? SHARE_POLLED : w->share_at;
        if (size == at || (size > at && size % 32 == 0))
            notify(rt);
    }
}

/* An actor's wait in a run queue (its oldest_wait_ns, actors/figures.c):
 * stamped with the coarse clock as it goes into a ring or the injection
 * queue, measured as it comes out. The LIFO slot is left out — what runs
 * from it waited less than a turn — and so costs ping-pong nothing. */
static inline void queued(tr_runtime *rt, tr__actor *a)
{
    uint32_t units = (uint32_t)(ck_pr_load_64(&rt->actors.coarse_ns) >> TR__WAIT_SHIFT);
    ck_pr_store_32(&a->wait, TR__WAIT_QUEUED(units));
}

static inline tr__actor *dequeued(tr_runtime *rt, tr__actor *a)
{
    if (a != NULL)
        tr__sched_taken(rt, a);
    return a;
}

void tr__sched_ready(tr_runtime *rt, tr__worker *w, tr__actor *a)
{
    if (w == NULL || w->turner.rt != rt) {
        queued(rt, a);
        tr__injectq_push(&rt->inject, a);
        notify(rt);
        return;
    }
    tr__actor *displaced = w->lifo;
    w->lifo = a;
    if (displaced != NULL) {
        queued(rt, displaced);
        push_local(w, displaced);
    }
}

/* What w spilled that may still wait: its overflow, and what went to the
 * injection queue instead, that count lowered to the queue's depth as the
 * queue drains (by w or others). */
static unsigned spill_left(tr__worker *w)
{
    if (w->spilled != 0) {
        uint64_t depth = tr__injectq_depth(&w->turner.rt->inject);
        if (depth < w->spilled)
            w->spilled = (unsigned)depth;
    }
    return tr__overflow_size(&w->overflow) + w->spilled;
}

/* While what w spilled waits, an actor that goes on after its turn waits
 * too: else a spawner that requeues itself (fjcreation's driver) runs
 * again ahead of the children it spilled, and they pile up (700,000 of
 * them, 3x slower, when it did). The first such actor waits in w's held
 * slot (next_local lets it go), the others in the injection queue, which
 * w looks at after its overflow. The slot keeps the spawner on w: queued
 * behind the spill in the injection queue (where spills went), it went
 * to whichever worker took it from there, and a driver that moves to the
 * worker running its children's answers and back makes every message
 * cross between the cores.
 * fjcreation at 100,000 actors, 2 workers, 60 runs alternating with the
 * code before: the driver had moved 47-64 times in the runs at 10 M
 * actors/s (against 17-18 M) and moves no more; slowest run 10.3 -> 13.1
 * M, max / min 1.72 -> 1.35, median level (16.9 M). The slow runs left
 * are those in which the other worker took children from the ring.
 * Like the LIFO slot, the held one is w's alone: a long turn on w holds
 * it up, as it does the turns queued behind that one in the ring until
 * the worker counts as stuck (take_at). */
void tr__sched_requeue(tr__worker *w, tr__actor *a)
{
    queued(w->turner.rt, a);
    if (spill_left(w) == 0) {
        push_local(w, a);
    } else if (w->held == NULL) {
        w->held = a;
        w->held_seq = w->turn_seq;
    } else {
        tr__injectq_push(&w->turner.rt->inject, a);
    }
}

/* The ring size at which v's actors may be taken: its share_at, or any
 * size while v is stuck in a long turn (it has not finished MEASURE_TURNS
 * turns in STUCK_NS), so that what waits behind a behaviour that runs
 * long — or blocks — goes to a worker that is free. */
static unsigned take_at(tr__worker *v, uint64_t now)
{
    if (now - ck_pr_load_64(&v->mark_ns) >= STUCK_NS)
        return 1;
    return ck_pr_load_32(&v->share_at);
}

/* Whether a ring holds work another worker should take (take_at), or an
 * overflow or the injection queue holds any; with `any`, whether any ring
 * holds anything at all. */
static bool work_visible(tr_runtime *rt, bool any)
{
    if (!tr__injectq_is_empty(&rt->inject))
        return true;
    uint64_t now = any ? 0 : tr__now_ns();
    for (unsigned i = 0; i < rt->cfg.threads; i++) {
        tr__worker *v = &rt->workers[i];
        unsigned size = tr__runq_size(&v->runq);
        if ((size != 0 && (any || size >= take_at(v, now))) ||
            tr__overflow_size(&v->overflow) != 0)
            return true;
    }
    return false;
}

/* A poll between turns (reactor.h): only if something is watched or
 * pending (a hold is taken) and nobody has polled for a while. (Waking a
 * worker parked on its futex to take over the polling was measured and
 * dropped: on echo-rr, 2 workers, it woke one 15,000 times a second for
 * nothing and cost 10% of the throughput.) */
static void poll_busy(tr__worker *w)
{
    tr_runtime *rt = w->turner.rt;
    if (ck_pr_load_32(&rt->holds) != 0 && tr__reactor_due(rt->reactor, tr__now_ns()))
        tr__sched_poll(w);
}

void tr__sched_poll(tr__worker *w)
{
    tr__reactor *r = w->turner.rt->reactor;
    if (!tr__reactor_trylock(r))
        return;
    tr__reactor_dispatch(r, w, tr__reactor_wait(r, false, 0));
    tr__reactor_unlock(r);
}

/* Newest first, but not for ever. A spill that has waited SPILL_STALE_NS
 * (by the coarse clock, which moves once a millisecond while workers
 * run) is taken back before newer ones when w's ring runs dry; and while
 * the ring does not run dry for DRY_TURNS turns (a spawner that makes
 * more actors a turn than w runs before letting it go again, let_go,
 * keeps it full), one such actor every INJECT_EVERY turns (next_local).
 * A tree of spawns is the case for newest first, and its ring runs dry
 * often: skynet at 1 worker 11.8 M actors/s with spills stale at 1 ms,
 * 16.0 M at 10 ms, 17.1 M never stale; and 8.9 M with stale ones (1 ms)
 * also taken every INJECT_EVERY turns whatever the ring did. */
#define SPILL_STALE_NS (10 * 1000 * 1000)
#define DRY_TURNS (4 * TR__RUNQ_SIZE)

/* A run of n actors taken at once (n may be 0): the first to run now, the
 * others into w's ring, which the caller found empty (thieves only take,
 * so it has room for a run of up to half a ring). */
static tr__actor *run_first(tr__worker *w, tr__actor **got, unsigned n)
{
    for (unsigned i = 1; i < n; i++) {
        bool room = tr__runq_push(&w->runq, got[i]);
        TR_ASSERT(room);
        (void)room;
    }
    return n != 0 ? got[0] : NULL;
}

/* Takes back up to max of w's spills (max 1, or w's ring is empty): the
 * oldest if stale, else (newest) the newest. */
static tr__actor *take_back(tr__worker *w, unsigned max, bool newest)
{
    tr__actor *got[TR__RUNQ_SIZE / 2];
    uint32_t now = (uint32_t)(ck_pr_load_64(&w->turner.rt->actors.coarse_ns) >> TR__WAIT_SHIFT);
    unsigned n = tr__overflow_take_back(&w->overflow, got, max, now,
                                        SPILL_STALE_NS >> TR__WAIT_SHIFT, newest);
    return run_first(w, got, n);
}

/* One stale spill, if w's ring has not run dry for DRY_TURNS turns. */
static tr__actor *stale_spill(tr__worker *w)
{
    return w->turn_seq - w->dry_seq >= DRY_TURNS ? take_back(w, 1, false) : NULL;
}

/* The held actor (tr__sched_requeue) goes into w's ring once the spill
 * it waits behind has been taken, or after as many of w's turns as a ring
 * holds, so that a queue kept full by others cannot hold it back for
 * ever; and it runs at once when w has nothing else (next_local). */
static void let_go(tr__worker *w)
{
    if (spill_left(w) == 0 || w->turn_seq - w->held_seq >= TR__RUNQ_SIZE) {
        tr__actor *a = w->held;
        w->held = NULL;
        push_local(w, a);
    }
}

static void take_asked(tr__worker *w);

/* One actor from the injection queue — unless w has just been woken
 * (woke) and stands by: with more workers than CPUs, the one asleep in
 * the reactor, woken to look again (look_again_soon) or by its timeout,
 * took bench/ask's third START at 16 workers on 2 CPUs, and three workers
 * then shared the two CPUs while the evening out moved pairs among them
 * 50-90 times a run (12-13 M asks/s against 25-31 M with two). A worker
 * that has been running takes from it as before: it has a CPU. */
static tr__actor *injected(tr__worker *w, bool woke)
{
    if (woke && !tr__injectq_is_empty(&w->turner.rt->inject) && stand_by(w))
        return NULL;
    return tr__injectq_pop(&w->turner.rt->inject);
}

/* The next actor of w's own, or from the injection queue; woke: w has
 * just come out of a park (injected). Forced inline: besides the turns'
 * loop (woke false, which the compiler folds away), only park_for_work
 * calls it, and as a call of its own on every turn it cost pingpong 35
 * instructions a round trip (callgrind). */
static CK_CC_FORCE_INLINE tr__actor *next_local(tr__worker *w, bool woke)
{
    /* A count, not `tick % INJECT_EVERY`: a division by 61 is a multiply
     * and shifts, on every activation. */
    bool inject = ++w->tick == INJECT_EVERY;
    if (inject)
        w->tick = 0;
    /* First, so that an actor readied by the poll is seen below. */
    uint32_t asked = ck_pr_load_32(&w->asked);
    if (inject || asked != 0) {
        if (asked != 0)
            asked = ck_pr_fas_32(&w->asked, 0);
        tr__between_turns(w);
        poll_busy(w);
        if (asked & TR__ASKED_TAKE)
            take_asked(w);
    }
    tr__actor *a = w->lifo;
    if (a != NULL) {
        w->lifo = NULL;
        if (w->lifo_streak++ < LIFO_MAX)
            return a;
        queued(w->turner.rt, a);
        push_local(w, a);
    }
    w->lifo_streak = 0;
    if (CK_CC_UNLIKELY(w->held != NULL))
        let_go(w);
    if (inject && ((a = injected(w, woke)) != NULL || (a = stale_spill(w)) != NULL))
        return dequeued(w->turner.rt, a);
    if ((a = tr__runq_pop(&w->runq)) != NULL)
        return dequeued(w->turner.rt, a);
    /* The ring ran dry: room for a spill. */
    w->dry_seq = w->turn_seq;
    if ((a = take_back(w, TR__RUNQ_SIZE / 2, true)) != NULL)
        return dequeued(w->turner.rt, a);
    /* (No wake-up for what is left in the injection queue: each push from
     * outside has made one, and a ring's overflow is not worth one unless
     * a full ring is worth sharing: push_local.) */
    if ((a = injected(w, woke)) == NULL && w->held != NULL) {
        a = w->held;
        w->held = NULL;
    }
    return dequeued(w->turner.rt, a);
}

/* Takes one actor from v's ring, and half of what it has left into w's
 * own ring, so that a burst of work spreads in few steals. Returns the
 * one (NULL if the ring was empty), still counted as waiting. */
static tr__actor *take_from(tr__worker *w, tr__worker *v)
{
    tr__actor *a = tr__runq_steal(&v->runq);
    if (a == NULL)
        return NULL;
    tr__count(&w->steals);
    for (unsigned more = tr__runq_size(&v->runq) / 2; more > 0; more--) {
        tr__actor *b = tr__runq_steal(&v->runq);
        if (b == NULL)
            break;
        tr__count(&w->steals);
        push_local(w, b); /* still waiting: its stamp stands */
    }
    return a;
}

/* Takes from a random victim whose ring is worth taking from (take_at). */
static tr__actor *steal(tr__worker *w)
{
    tr_runtime *rt = w->turner.rt;
    unsigned n = rt->cfg.threads;
    unsigned start = (unsigned)(tr__rand(w) % n);
    uint64_t now = tr__now_ns();
    for (unsigned i = 0; i < n; i++) {
        tr__worker *v = &rt->workers[(start + i) % n];
        tr__actor *a;
        if (v != w && tr__runq_size(&v->runq) >= take_at(v, now) &&
            (a = take_from(w, v)) != NULL)
            return dequeued(rt, a);
    }
    return NULL;
}

/* ---- evening out ----
 * Sharing by cost (sched.h) never moves an actor out of a ring shorter
 * than share_at, and an actor made ready by a behaviour is queued where
 * that behaviour ran, so groups of actors that talk among themselves
 * stay where the first microseconds of a run put them: bench/ask's four
 * asker-and-echo pairs, all begun by one turn, ran all four on one worker
 * (17-18 M asks/s) while the other parked, or three and one, in about
 * half the runs; two and two run at 29-32 M. A thief could not tell a
 * backlog that lasts from a burst, and a worker running one pair through
 * its LIFO slot never runs out of work to go looking.
 * So the monitor (monitor.c), once a tick (a millisecond), samples every
 * ring: a worker whose ring held actors at EVEN_TICKS samples in a row,
 * while another was parked (with a CPU free for it) or awake, not stuck,
 * with an empty ring at each of them, is a victim for that other, which
 * the monitor names in its take_from and asks (TR__ASKED_TAKE, woken if
 * parked): between two turns it takes half of the victim's ring into its
 * own (take_asked). An actor moved so takes the actors it talks to with
 * it as it readies them. A move that does not last — the taker runs out
 * of work and parks before the next one: fanin's senders, moved away
 * from their receiver, soon wait on its backpressure, and are let go on
 * the receiver's worker — doubles the samples the next one waits for, up
 * to EVEN_TICKS_MAX; one that lasts brings them back to EVEN_TICKS. So a
 * flood pays for a move every 64 ms at most (without the backoff, a move
 * every 3 ms cost fanin 2-3% at 2 workers). At most one move a tick,
 * from a sample the workers never write for: nothing on the turns'
 * path. */
#define EVEN_TICKS 3
#define EVEN_TICKS_MAX 64

/* The samples a backlog must last before the next move. */
static unsigned even_wait(const tr__even *e)
{
    unsigned wait = EVEN_TICKS << e->failed;
    return wait < EVEN_TICKS_MAX ? wait : EVEN_TICKS_MAX;
}

/* The monitor's part: one sample of every ring, at `now`. */
void tr__sched_even(tr_runtime *rt, uint64_t now)
{
    unsigned n = rt->cfg.threads;
    if (n < 2)
        return;
    tr__even *e = &rt->even;
    if (e->taker != NULL && ck_pr_load_64(&e->taker->parks) != e->parks) {
        if (even_wait(e) < EVEN_TICKS_MAX)
            e->failed++;
        e->taker = NULL;
    }
    unsigned wait = even_wait(e);
    tr__worker *victim = NULL, *taker = NULL;
    unsigned most = 0;
    bool may_wake = cpu_free(rt);
    for (unsigned i = 0; i < n; i++) {
        tr__worker *v = &rt->workers[i];
        uint32_t state = ck_pr_load_32(&v->park);
        bool parked = state == PARKED || state == POLLING;
        unsigned size = parked ? 0 : tr__runq_size(&v->runq);
        v->full_ticks = size != 0 ? v->full_ticks + 1 : 0;
        v->empty_ticks = size == 0 ? v->empty_ticks + 1 : 0;
        if (v->full_ticks >= wait && size > most) {
            victim = v;
            most = size;
        }
        /* An awake one rather than a parked one: a wake-up costs more
         * than a look between two turns. But not one stuck in a long
         * turn (as moving_besides counts them): it would look only when
         * that turn ends, and a parked one can take meanwhile. */
        bool stuck = now - ck_pr_load_64(&v->mark_ns) >= STUCK_NS;
        if (v->empty_ticks >= EVEN_TICKS && !parked && !stuck)
            taker = v;
        else if (v->empty_ticks >= EVEN_TICKS && parked && may_wake && taker == NULL)
            taker = v;
    }
    if (victim == NULL || taker == NULL)
        return;
    victim->full_ticks = 0;
    taker->empty_ticks = 0;
    if (e->taker != NULL)
        e->failed = 0; /* the last move lasted */
    e->taker = taker;
    e->parks = ck_pr_load_64(&taker->parks);
    ck_pr_store_ptr(&taker->take_from, victim);
    ck_pr_or_32(&taker->asked, TR__ASKED_TAKE);
    wake_worker(rt, taker); /* if parked */
}

/* The worker's part, between two turns: half of the ring the monitor
 * named. */
static void take_asked(tr__worker *w)
{
    tr__worker *v = ck_pr_load_ptr(&w->take_from);
    tr__actor *a;
    if (v != NULL && v != w && (a = take_from(w, v)) != NULL)
        push_local(w, a);
}

/* Joins the searching workers if they are fewer than half the busy ones
 * (and one may always search): each searcher burns a core while it looks,
 * and with more workers than cores it burns the busy workers' time. */
static bool start_search(tr_runtime *rt)
{
    uint64_t s = ck_pr_load_64(&rt->idle);
    for (;;) {
        uint32_t searching = N_SEARCHING(s);
        uint32_t busy = rt->cfg.threads - N_PARKED(s) - searching;
        if (2 * searching >= (busy > 2 ? busy : 2))
            return false;
        if (ck_pr_cas_64_value(&rt->idle, s, s + SEARCHING_ONE, &s))
            return true;
    }
}

#define TAKE_INJECTED 32

/* One look round (every victim's ring, every victim's overflow, then the
 * injection queue). */
static tr__actor *look(tr__worker *w)
{
    tr__actor *a = steal(w);
    if (a != NULL)
        return a;
    /* A searching worker takes a run of actors at once, into its ring:
     * one taking of a lock, and actors spilled together (often siblings,
     * which answer the same parent) go on together. On 2 cores with the
     * cross-core trip at 180-200 ns, skynet at 2 workers: 5.6 -> 7.1 M
     * actors/s (when spills went to the injection queue). */
    tr_runtime *rt = w->turner.rt;
    tr__actor *got[1 + TAKE_INJECTED];
    unsigned n = 0, start = (unsigned)(tr__rand(w) % rt->cfg.threads);
    for (unsigned i = 0; i < rt->cfg.threads && n == 0; i++) {
        tr__worker *v = &rt->workers[(start + i) % rt->cfg.threads];
        if (v != w)
            n = tr__overflow_take(&v->overflow, got, 1 + TAKE_INJECTED);
    }
    if (n == 0)
        n = tr__injectq_pop_many(&rt->inject, got, 1 + TAKE_INJECTED);
    return dequeued(rt, run_first(w, got, n)); /* a searcher's ring is empty */
}

static tr__actor *search(tr__worker *w)
{
    tr_runtime *rt = w->turner.rt;
    tr__actor *a = look(w);
    if (a != NULL || !start_search(rt))
        return a;
    for (unsigned i = 1; i < SEARCH_ROUNDS && a == NULL; i++) {
        if ((a = look(w)) == NULL) {
            if (ck_pr_load_32(&rt->stop))
                break;
            ck_pr_stall();
        }
    }
    uint64_t s = ck_pr_faa_64(&rt->idle, -SEARCHING_ONE) - SEARCHING_ONE;
    /* The last searcher to find work hands the search on, since pushers
     * did not wake anyone while it was searching: as notify would have.
     * (Waking only while a CPU was free could leave an actor pushed from
     * outside during the search to parked workers asleep with no timeout,
     * when the searcher had stolen another and went into a long turn:
     * found by reading the code, not seen in a run.) */
    if (a != NULL && N_SEARCHING(s) == 0 && N_PARKED(s) != 0 && work_visible(rt, false))
        wake_for_work(rt);
    return a;
}

/* Leaves the parked state (PARKED, POLLING or NOTIFIED) and the count of
 * parked workers: only the worker itself leaves it (see wake_worker). */
static void unpark(tr__worker *w)
{
    ck_pr_fas_32(&w->park, AWAKE);
    tr_runtime *rt = w->turner.rt;
    ck_pr_sub_64(&rt->idle, PARKED_ONE);
    /* The coarse clock may be as old as the park: the turns to come read
     * it (metrics.c). The monitor ticks while any worker is awake: it
     * samples their turns and watches them (watchdog.c). */
    tr__metrics_coarse(rt);
    tr__monitor_wake(rt);
}

/* Parked, and holding the reactor's lock: sleeps in epoll_wait instead
 * of on the futex, then dispatches what woke it as an awake worker. */
static bool park_polling(tr__worker *w, bool standby)
{
    tr_runtime *rt = w->turner.rt;
    tr__reactor *r = rt->reactor;
    int n = 0;
    if (ck_pr_cas_32(&w->park, PARKED, POLLING)) {
        /* As on the futex: publish the state, then look for work (the
         * waker publishes work, then looks at the state). poll_timed is
         * published with the state: a waker that sees it clear and the
         * CPUs taken wakes us (look_again_soon). */
        ck_pr_store_32(&rt->poll_timed, 0);
        ck_pr_fence_memory();
        if (!tr__sched_over(rt) && (standby || !work_visible(rt, false))) {
            /* While work is queued (below its worker's share_at, nobody
             * is woken for it) or the CPUs are taken (wake-ups may skip
             * us), look again every STUCK_NS, in case the workers that
             * have it get stuck in long turns. */
            uint64_t at_most = cpus_taken(rt) || work_visible(rt, true) ? STUCK_NS : 0;
            ck_pr_store_32(&rt->poll_timed, at_most != 0);
            tr__count(&w->parks);
            ck_pr_store_32(&rt->polling, 1);
            n = tr__reactor_wait(r, true, at_most);
            ck_pr_store_32(&rt->polling, 0);
        }
    }
    unpark(w);
    tr__reactor_dispatch(r, w, n);
    tr__reactor_unlock(r);
    return !tr__sched_over(rt);
}

/* Parks until there may be work (standing by: until woken). False when
 * the run is over (quiescent or stopped). */
static bool park(tr__worker *w, bool standby)
{
    tr_runtime *rt = w->turner.rt;
    uint64_t s = ck_pr_faa_64(&rt->idle, PARKED_ONE) + PARKED_ONE;
    ck_pr_store_32(&w->park, PARKED);
    ck_pr_fence_memory();

    for (;;) {
        if (tr__sched_over(rt)) {
            unpark(w);
            return false;
        }
        if (!standby && work_visible(rt, false)) {
            unpark(w);
            return true;
        }
        if (N_PARKED(s) == rt->cfg.threads && ck_pr_load_32(&rt->holds) == 0 &&
            !work_visible(rt, true)) {
            ck_pr_store_32(&rt->done, 1);
            unpark(w);
            tr__sched_wake_all(rt);
            return false;
        }
        if (tr__reactor_trylock(rt->reactor))
            return park_polling(w, standby);
        tr__count(&w->parks);
        /* The reactor is taken: by a worker asleep in it, which sees I/O
         * and timers; or by a busy worker polling between two turns, which
         * may go on to a long one — then look again after STUCK_NS, not at
         * that turn's end. (Waking a parked worker after every busy poll
         * instead cost echo-rr its p99: 0.9x the floor's -> 1.8x.) A
         * worker standing by with work in sight leaves the looking to the
         * one asleep in the reactor only if that one looks again within
         * STUCK_NS: else it wakes it, to sleep again timed (park_polling:
         * the CPUs are taken). (A hole found by reading, not seen in a
         * run.) */
        bool polled = ck_pr_load_32(&rt->polling);
        if (standby && polled && work_visible(rt, true))
            look_again_soon(rt); /* nothing to do if the poller is timed */
        tr__futex_wait(&w->park, PARKED, polled ? 0 : STUCK_NS);
        if (ck_pr_load_32(&w->park) == NOTIFIED) {
            unpark(w);
            return !tr__sched_over(rt);
        }
        s = ck_pr_load_64(&rt->idle);
    }
}

/* How much queued work a worker keeps to itself before it wakes another
 * worker (or lets a thief take it): SHARE_NS of turns, by its running
 * estimate of a turn's cost. Handing an actor to another core costs a
 * wake-up, a steal and then the cache misses of every message it
 * exchanges with the actors it left behind — far more than running a
 * short behaviour: on 2 cores, with every readied actor shared at once,
 * fjthroughput ran at 9 M messages/s on 2 workers against 54 M on 1, and
 * fanin at 20 M against 62 M. Work worth more than SHARE_NS is spread
 * as before: a backlog of 10-us turns after about 10 of them. */
#define SHARE_NS (100 * 1000)
#define MEASURE_TURNS 64

_Static_assert((MEASURE_TURNS & (MEASURE_TURNS - 1)) == 0, "a power of two: a mask of turn_seq");

/* Called when turn_seq reaches a multiple of MEASURE_TURNS; measures once
 * at least that many turns have run since the mark (a park moves it), so
 * that each sample averages MEASURE_TURNS to twice as many. Counting by
 * turn_seq, which the metrics keep anyway, rather than by a counter of
 * its own paid for part of their cost on ping-pong (sched/metrics.c). */
static void measure(tr__worker *w)
{
    uint64_t turns = w->turn_seq - w->mark_seq;
    if (turns < MEASURE_TURNS)
        return;
    uint64_t now = tr__now_ns();
    uint64_t turn_ns = (now - w->mark_ns) / turns;
    w->turn_ns = (3 * w->turn_ns + turn_ns) / 4;
    uint64_t at = SHARE_NS / (w->turn_ns + 1);
    ck_pr_store_32(&w->share_at, at < 2 ? 2 : at > UINT16_MAX ? UINT16_MAX : (uint32_t)at);
    ck_pr_store_64(&w->mark_ns, now);
    w->mark_seq = w->turn_seq;
}

/* w, out of a park, is about to run its first turn since. With more
 * workers than CPUs, work left in the injection queue may have nobody
 * looking for it: workers parked on their futexes while another slept in
 * the reactor sleep with no timeout (park), counting on that one to look
 * again, and it, or any worker woken since, has just taken an actor for
 * itself. So each such worker hands the looking on (look_again_soon),
 * until the queue is empty or a woken worker stands by — and sleeps
 * timed, in the reactor, or on its futex while nobody polls. Else what is
 * left waits for the turns of the workers that have the CPUs, which may
 * be stuck: sched/burst_of_blockers_from_outside_each_gets_a_worker (a
 * blocker per worker, 2 workers more than CPUs) waited out its blockers'
 * 10 s in 4 runs of 5 with no hand-on; with the poller's alone, in 2 of
 * 300 beside two processes that spin and sleep (the worker the poller woke
 * took the third blocker, and the fourth was left to one asleep with no
 * timeout); with every woken worker's, in none of 1,000. */
static void woke_to_work(tr__worker *w)
{
    tr_runtime *rt = w->turner.rt;
    if (rt->cfg.threads > rt->cpus && !tr__injectq_is_empty(&rt->inject))
        look_again_soon(rt);
}

/* w's own queues ran dry: what the others have, unless w stands by
 * (*standby). */
static tr__actor *elsewhere(tr__worker *w, bool *standby)
{
    tr__between_turns(w);
    tr__sched_settle(w); /* before anyone may see w parked */
    *standby = stand_by(w);
    return *standby ? NULL : search(w);
}

/* Parks until there is an actor for w to run; NULL when the run is over.
 * The first look after each park is a woken worker's (next_local's
 * woke), and the worker hands the looking on as it goes to work
 * (woke_to_work): here, so that the turns' path pays for neither. */
static tr__actor *park_for_work(tr__worker *w, bool standby)
{
    tr__actor *a = NULL;
    while (a == NULL) {
        if (!park(w, standby))
            return NULL;
        ck_pr_store_64(&w->mark_ns, tr__now_ns()); /* idle time is not the turns' */
        w->mark_seq = w->turn_seq;
        if ((a = next_local(w, true)) == NULL)
            a = elsewhere(w, &standby);
    }
    woke_to_work(w);
    return a;
}

void *tr__worker_main(void *arg)
{
    tr__worker *w = arg;
    tr_runtime *rt = w->turner.rt;
    tls_worker = w;
    ck_pr_store_32(&w->tid, (uint32_t)gettid());

    ck_pr_store_64(&w->mark_ns, tr__now_ns());
    while (!ck_pr_load_32(&rt->stop)) {
        bool standby = false;
        tr__actor *a = next_local(w, false);
        if (a == NULL && (a = elsewhere(w, &standby)) == NULL &&
            (a = park_for_work(w, standby)) == NULL)
            break;
        if ((tr__run_turn(w, a) & (MEASURE_TURNS - 1)) == 0)
            measure(w);
    }
    tr__between_turns(w);
    tr__sched_settle(w);
    /* An actor left in the LIFO or held slot by a stop must stay findable
     * (what the overflow holds stays there: work_visible sees it, and the
     * next run takes it). */
    tr__actor **slots[] = { &w->lifo, &w->held };
    for (unsigned i = 0; i < 2; i++) {
        if (*slots[i] != NULL)
            tr__injectq_push(&rt->inject, *slots[i]);
        *slots[i] = NULL;
    }
    tls_worker = NULL;
    return NULL;
}
