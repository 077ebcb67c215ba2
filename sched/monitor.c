/* sched/monitor.c — the runtime's monitor: a thread that sees that the
 * reactor is late while every worker is busy, and asks for a poll.
 *
 * Workers poll the reactor between turns (every INJECT_EVERY turns, if
 * POLL_EVERY_NS have passed: worker.c) and sleep in it when idle. Counting
 * turns costs nothing on the hot path, but turns can be long: a starter of
 * 256 timers a message, with a batch of 64 messages, runs 6 ms a turn, and
 * 61 of those held every timer of the timers benchmark up to 360 ms (its
 * p99 lateness at 2 threads, all workers busy starting timers). Reading
 * the clock after every turn would bound it, but measured on pingpong,
 * one clock_gettime a turn cost 40% of the round trips and one rdtsc 35%.
 *
 * So the clock is read here instead, once every TICK_NS, on a thread of
 * its own (Go's sysmon does the same for its netpoller). When the reactor
 * has not been polled for LATE_NS, nobody sleeps in it, and something is
 * watched or pending, the monitor raises a bit in every worker's `asked`
 * word; each worker looks at that word of its own between two turns and
 * polls. A timer or a readiness event therefore waits at most about
 * LATE_NS + TICK_NS, plus the turn in progress on the first worker to end
 * one.
 *
 * The same tick samples what the workers run, for the metrics (busy time,
 * longest turns, the coarse clock: metrics.c), for the watchdog (turns
 * that run too long: watchdog.c) and for evening out the run queues
 * (worker.c), so it ticks while any worker is awake, and asks for polls
 * only while something is watched.
 *
 * Idle costs nothing: when every worker is parked (one of them asleep in
 * the reactor sees timers and I/O itself, and no turn runs), the monitor
 * stops ticking after a few ticks and sleeps on its futex until a worker
 * wakes (tr__monitor_wake).
 * It does not go back to sleep at the first idle tick, so that a server
 * whose workers park and wake thousands of times a second wakes it once,
 * not each time.
 */
#include <pthread.h>

#include "../base/futex.h"
#include "sched.h"

#define TICK_NS (1000 * 1000)
#define LATE_NS (1000 * 1000)
/* Ticks with nothing to do before the monitor sleeps untimed. */
#define IDLE_TICKS 4

enum { TICKING = 0, ASLEEP = 1 };

/* Whether ticking can help: some worker is awake, so there are turns to
 * sample and watch, and none may be asleep in the reactor. */
static bool needed(tr_runtime *rt)
{
    return N_PARKED(ck_pr_load_64(&rt->idle)) < rt->cfg.threads;
}

/* Asks for a poll if something is watched or pending (a hold is taken),
 * nobody is asleep in the reactor, and nobody has polled for LATE_NS. */
static void tick(tr_runtime *rt, uint64_t now)
{
    tr__watchdog_tick(rt, now);
    if (ck_pr_load_32(&rt->holds) == 0 || ck_pr_load_32(&rt->polling) ||
        (int64_t)(now - tr__reactor_polled_ns(rt->reactor)) < LATE_NS)
        return;
    for (unsigned i = 0; i < rt->cfg.threads; i++)
        ck_pr_or_32(&rt->workers[i].asked, TR__ASKED_POLL);
}

static void *monitor_main(void *arg)
{
    tr_runtime *rt = arg;
    unsigned idle_ticks = 0;
    while (!tr__sched_over(rt)) {
        uint64_t now = tr__now_ns();
        tr__metrics_tick(rt, now);
        if (needed(rt)) {
            idle_ticks = 0;
            tr__sched_even(rt, now);
            tick(rt, now);
        } else if (++idle_ticks >= IDLE_TICKS) {
            /* Publish, then look (the waker changes holds or idle, then
             * looks at the word): one of us sees the other. */
            ck_pr_store_32(&rt->monitor, ASLEEP);
            ck_pr_fence_memory();
            if (!needed(rt) && !tr__sched_over(rt))
                tr__futex_wait(&rt->monitor, ASLEEP, 0);
            ck_pr_store_32(&rt->monitor, TICKING);
            idle_ticks = 0;
            continue;
        }
        tr__futex_wait(&rt->monitor, TICKING, TICK_NS);
    }
    return NULL;
}

void tr__monitor_wake(tr_runtime *rt)
{
    ck_pr_fence_atomic_load();
    if (ck_pr_load_32(&rt->monitor) == ASLEEP && ck_pr_cas_32(&rt->monitor, ASLEEP, TICKING))
        tr__futex_wake(&rt->monitor);
}

void tr__monitor_stop(tr_runtime *rt)
{
    ck_pr_store_32(&rt->monitor, TICKING);
    tr__futex_wake(&rt->monitor);
}

int tr__monitor_start(tr_runtime *rt)
{
    ck_pr_store_32(&rt->monitor, TICKING);
    return pthread_create(&rt->monitor_thread, NULL, monitor_main, rt) == 0 ? 0 : TR_ENOMEM;
}

void tr__monitor_join(tr_runtime *rt)
{
    pthread_join(rt->monitor_thread, NULL);
}
