/* test_metrics_top.c — tr_runtime_top ranks the known hot actors of a
 * workload: by messages handled (since spawn, and over a window), and by
 * mailbox depth while the only worker is held in a turn; a window asked
 * for on a worker is refused. */
#include "tests.h"

#include <semaphore.h>
#include <string.h>

enum { MSG_COUNT = 1, MSG_BLOCK, MSG_TOP };

#define COLD 50
#define BASE 4

static void send_n(tr_ctx *cx, tr_pid to, unsigned n)
{
    for (unsigned i = 0; i < n; i++)
        TT_EQ(tr_send(cx, to, MSG_COUNT, NULL, 0), 0);
}

static void test_top_by_handled_names_the_hot_actors_in_order(void)
{
    tr_runtime *rt = tt_runtime(2, 0);
    tr_ctx *cx = tr_runtime_ctx(rt);
    uint64_t zero = 0;
    tr_pid hot[3], cold[COLD];
    static const unsigned times[3] = {10, 5, 2};
    for (unsigned i = 0; i < COLD; i++)
        TT_EQ(tr_spawn(cx, tt_counter, &zero, sizeof zero, &cold[i]), 0);
    for (unsigned i = 0; i < 3; i++) /* spawned last: no help from slot order */
        TT_EQ(tr_spawn(cx, tt_counter, &zero, sizeof zero, &hot[2 - i]), 0);
    for (unsigned i = 0; i < COLD; i++)
        send_n(cx, cold[i], BASE);
    for (unsigned i = 0; i < 3; i++)
        send_n(cx, hot[i], BASE * times[i]);
    TT_EQ(tr_runtime_run(rt), 0);

    tr_actor_figures top[5];
    TT_EQ(tr_runtime_top(rt, TR_TOP_HANDLED, 3, 0, top), 3);
    for (unsigned i = 0; i < 3; i++) {
        TT_EQ(top[i].pid, hot[i]);
        TT_EQ(top[i].handled, BASE * times[i]);
    }
    TT_EQ(tr_runtime_top(rt, TR_TOP_HANDLED, 5, 0, top), 5);
    TT_EQ(top[3].handled, BASE);
    TT_EQ(top[4].handled, BASE);

    /* More asked for than there are actors: every one, once. */
    tr_actor_figures all[COLD + 10];
    TT_EQ(tr_runtime_top(rt, TR_TOP_HANDLED, COLD + 10, 0, all), COLD + 3);
    for (unsigned i = 1; i < COLD + 3; i++)
        CU_ASSERT(all[i - 1].handled >= all[i].handled);

    TT_EQ(tr_runtime_top(rt, TR_TOP_HANDLED, 0, 0, top), TR_EINVAL);
    TT_EQ(tr_runtime_top(rt, (tr_top_key)7, 3, 0, top), TR_EINVAL);
    TT_EQ(tr_runtime_top(rt, TR_TOP_HANDLED, 3, 0, NULL), TR_EINVAL);
    tr_runtime_destroy(rt);
}

static void test_top_by_mailbox_while_the_worker_is_held(void)
{
    tr_runtime *rt = tt_runtime(1, 0);
    tr_ctx *cx = tr_runtime_ctx(rt);
    struct tt_blocker b;
    tt_blocker_init(&b);
    struct tt_blocker *bp = &b;
    tr_pid blocker, deep[3], shallow[COLD];
    uint64_t zero = 0;
    TT_EQ(tr_spawn(cx, tt_blocking, &bp, sizeof bp, &blocker), 0);
    for (unsigned i = 0; i < COLD; i++)
        TT_EQ(tr_spawn(cx, tt_counter, &zero, sizeof zero, &shallow[i]), 0);
    for (unsigned i = 0; i < 3; i++)
        TT_EQ(tr_spawn(cx, tt_counter, &zero, sizeof zero, &deep[i]), 0);
    TT_EQ(tr_runtime_hold(rt), 0);
    TT_EQ(tr_runtime_start(rt), 0);
    TT_EQ(tr_send(cx, blocker, MSG_BLOCK, NULL, 0), 0);
    CU_ASSERT_FATAL(tt_wait_flag(&b.in_turn, 60));

    /* The one worker is held: whatever is sent now waits. */
    for (unsigned i = 0; i < COLD; i++)
        send_n(cx, shallow[i], 1);
    send_n(cx, deep[0], 30);
    send_n(cx, deep[1], 20);
    send_n(cx, deep[2], 10);

    tr_actor_figures top[4];
    TT_EQ(tr_runtime_top(rt, TR_TOP_MAILBOX, 4, 0, top), 4);
    for (unsigned i = 0; i < 3; i++) {
        TT_EQ(top[i].pid, deep[i]);
        TT_EQ(top[i].mailbox, 30 - 10 * i);
        TT_EQ(top[i].state, TR_ACTOR_RUNNABLE);
        TT_EQ(top[i].handled, 0);
    }
    TT_EQ(top[3].mailbox, 1);
    /* The same over a window (from outside the runtime: allowed). */
    TT_EQ(tr_runtime_top(rt, TR_TOP_MAILBOX, 3, 5, top), 3);
    for (unsigned i = 0; i < 3; i++)
        TT_EQ(top[i].pid, deep[i]);

    tr_actor_figures f;
    TT_EQ(tr_actor_info(rt, blocker, &f), 0);
    TT_EQ(f.state, TR_ACTOR_RUNNING);
    /* Queued, its wait grows with the coarse clock (a tick at a time). */
    for (double until = tt_now() + 60; tt_now() < until; tt_sleep_ms(1)) {
        TT_EQ(tr_actor_info(rt, deep[0], &f), 0);
        if (f.oldest_wait_ns > 0)
            break;
    }
    CU_ASSERT(f.oldest_wait_ns > 0);
    uint64_t waited = f.oldest_wait_ns;

    sem_post(&b.go);
    TT_EQ(tr_runtime_release(rt), 0);
    TT_EQ(tt_join_within(rt, 120), 0);
    for (unsigned i = 0; i < 3; i++) {
        TT_EQ(tr_actor_info(rt, deep[i], &f), 0);
        TT_EQ(f.handled, 30 - 10 * i);
        TT_EQ(f.mailbox, 0);
        TT_EQ(f.turns, 1); /* all in one turn (batch 64) */
    }
    /* Its one turn came from the queue, after at least that wait. */
    TT_EQ(tr_actor_info(rt, deep[0], &f), 0);
    CU_ASSERT(f.oldest_wait_ns >= waited);
    tt_blocker_fini(&b);
    tr_runtime_destroy(rt);
}

/* Keeps sending to one actor until told to stop. */
struct pump {
    tr_runtime *rt;
    tr_pid to;
    atomic_bool stop;
};

static void *pump_main(void *arg)
{
    struct pump *p = arg;
    while (!atomic_load(&p->stop)) {
        TT_CHECK(tr_send(tr_runtime_ctx(p->rt), p->to, MSG_COUNT, NULL, 0) == 0);
        tt_sleep_ms(1);
    }
    return NULL;
}

static void test_top_over_a_window_ranks_what_happened_in_it(void)
{
    tr_runtime *rt = tt_runtime(2, 0);
    tr_ctx *cx = tr_runtime_ctx(rt);
    uint64_t zero = 0;
    tr_pid old, busy;
    TT_EQ(tr_spawn(cx, tt_counter, &zero, sizeof zero, &old), 0);
    TT_EQ(tr_spawn(cx, tt_counter, &zero, sizeof zero, &busy), 0);
    send_n(cx, old, 1000);
    TT_EQ(tr_runtime_hold(rt), 0);
    TT_EQ(tr_runtime_start(rt), 0);
    tr_actor_figures f;
    for (double until = tt_now() + 60; tt_now() < until; tt_sleep_ms(1)) {
        TT_EQ(tr_actor_info(rt, old, &f), 0);
        if (f.handled == 1000)
            break; /* all before the windows */
    }
    TT_EQ(f.handled, 1000);

    struct pump p = {.rt = rt, .to = busy};
    atomic_init(&p.stop, false);
    pthread_t t = tt_thread(pump_main, &p);
    /* old handled 1000 before any window, busy handles a few during each:
     * once a window has seen one of them, busy must lead it. */
    tr_actor_figures top[2];
    int n = 0;
    for (int tries = 0; tries < 100; tries++) {
        n = tr_runtime_top(rt, TR_TOP_HANDLED, 2, 20, top);
        if (n == 2 && top[0].handled > 0)
            break;
    }
    TT_EQ(n, 2);
    TT_EQ(top[0].pid, busy);
    CU_ASSERT(top[0].handled > 0);
    TT_EQ(top[1].pid, old);
    TT_EQ(top[1].handled, 0); /* nothing in the window */
    /* Window 0: since spawn, old leads. */
    TT_EQ(tr_runtime_top(rt, TR_TOP_HANDLED, 1, 0, top), 1);
    TT_EQ(top[0].pid, old);

    atomic_store(&p.stop, true);
    tt_join(t);
    TT_EQ(tr_runtime_release(rt), 0);
    TT_EQ(tt_join_within(rt, 120), 0);
    TT_NO_ERRORS();
    tr_runtime_destroy(rt);
}

/* Asks for a top with a window (refused) and without (fine), in a turn. */
static void asker(tr_ctx *cx, void *state, const tr_msg *m)
{
    (void)state;
    (void)m;
    tr_actor_figures top[1];
    tr_runtime *rt = tr_ctx_runtime(cx);
    TT_CHECK(tr_runtime_top(rt, TR_TOP_BUSY, 1, 10, top) == TR_EDEADLK);
    TT_CHECK(tr_runtime_top(rt, TR_TOP_BUSY, 1, 0, top) == 1);
}

static void test_top_with_a_window_on_a_worker_is_edeadlk(void)
{
    tr_runtime *rt = tt_runtime(1, 0);
    tr_pid p;
    TT_EQ(tr_spawn(tr_runtime_ctx(rt), asker, NULL, 0, &p), 0);
    TT_EQ(tr_send(tr_runtime_ctx(rt), p, MSG_TOP, NULL, 0), 0);
    TT_EQ(tr_runtime_run(rt), 0);
    TT_NO_ERRORS();
    tr_actor_figures f;
    TT_EQ(tr_actor_info(rt, p, &f), 0);
    TT_EQ(f.handled, 1);
    tr_runtime_destroy(rt);
}

void register_metrics_top_tests(void)
{
    CU_pSuite s = tt_suite("metrics_top");
    tt_test(s, "top_by_handled_names_the_hot_actors_in_order",
            test_top_by_handled_names_the_hot_actors_in_order);
    tt_test(s, "top_by_mailbox_while_the_worker_is_held",
            test_top_by_mailbox_while_the_worker_is_held);
    tt_test(s, "top_over_a_window_ranks_what_happened_in_it",
            test_top_over_a_window_ranks_what_happened_in_it);
    tt_test(s, "top_with_a_window_on_a_worker_is_edeadlk",
            test_top_with_a_window_on_a_worker_is_edeadlk);
}
