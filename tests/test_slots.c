/* test_slots.c — the actor table gives back the slots of actors and timers
 * that ended, whichever thread spawned or started them: a program whose
 * main thread (or any thread outside the runtime) keeps spawning and
 * arming timers must not grow the table, nor its memory. */
#include "tests.h"

#include <stdlib.h>

enum { MSG_STOP = 10, MSG_FIRED };

#define ROUNDS 2000000ul
#define MAX_ALIVE 1000 /* at most this many spawned and not yet ended */
/* The table may hold the peak plus the free slots cached per thread (about
 * 128 per worker and 128 for outside threads): well under 3 × the peak. */
#define SLOTS_LIMIT (3 * MAX_ALIVE)
#define RSS_GROWTH_LIMIT_KB (TT_RSS_FACTOR * 10 * 1024)

struct churn {
    atomic_long alive;     /* spawned (or started) and not yet ended */
    atomic_ulong ended;
};

/* Lives for one message. */
static void short_lived(tr_ctx *cx, void *state, const tr_msg *m)
{
    struct churn *c = *(struct churn **)state;
    TT_CHECK(m->type == MSG_STOP);
    atomic_fetch_add(&c->ended, 1);
    atomic_fetch_sub(&c->alive, 1);
    tr_stop(cx);
}

/* Counts timer deliveries. */
static void fired_counter(tr_ctx *cx, void *state, const tr_msg *m)
{
    (void)cx;
    struct churn *c = *(struct churn **)state;
    TT_CHECK(m->type == MSG_FIRED);
    atomic_fetch_add(&c->ended, 1);
    atomic_fetch_sub(&c->alive, 1);
}

/* Waits until fewer than MAX_ALIVE are in flight, then counts one more. */
static void admit(struct churn *c)
{
    unsigned long spins = 0;
    while (atomic_load(&c->alive) >= MAX_ALIVE)
        tt_relax(&spins);
    atomic_fetch_add(&c->alive, 1);
}

static void check_table(tr_runtime *rt, long rss_before_kb, const char *what)
{
    tr_stats st;
    tr_runtime_stats(rt, &st);
    long rss_after_kb = tt_rss_kb();
    printf("[%s: %lu rounds, table %" PRIu64 " slots, RSS %+ld KiB] ", what, ROUNDS,
           st.actor_slots, rss_after_kb - rss_before_kb);
    CU_ASSERT(st.actor_slots <= SLOTS_LIMIT);
    CU_ASSERT(rss_after_kb - rss_before_kb < RSS_GROWTH_LIMIT_KB);
}

/* 2,000,000 actors spawned from this (outside) thread, each stopping on
 * its first message. */
static void test_outside_spawns_reuse_slots(void)
{
    struct churn c = { 0 };
    struct churn *cp = &c;
    tr_runtime *rt = tt_runtime(2, 0);
    TT_EQ(tr_runtime_hold(rt), 0);
    TT_EQ(tr_runtime_start(rt), 0);
    long rss_before_kb = tt_rss_kb();
    unsigned long failures = 0;
    for (unsigned long i = 0; i < ROUNDS; i++) {
        admit(&c);
        tr_pid pid;
        if (tr_spawn(tr_runtime_ctx(rt), short_lived, &cp, sizeof cp, &pid) != 0 ||
            tr_send(tr_runtime_ctx(rt), pid, MSG_STOP, NULL, 0) != 0) {
            failures++;
            break;
        }
    }
    TT_EQ(failures, 0);
    TT_EQ(tr_runtime_release(rt), 0);
    TT_EQ(tt_join_within(rt, 600), 0);
    TT_NO_ERRORS();
    TT_EQ(atomic_load(&c.ended), ROUNDS);
    tr_stats st;
    tr_runtime_stats(rt, &st);
    TT_EQ(st.actors_spawned, ROUNDS);
    TT_EQ(st.actors_alive, 0);
    check_table(rt, rss_before_kb, "spawns");
    tr_runtime_destroy(rt);
}

/* 2,000,000 one-shot timers started from this thread, each due at once. */
static void test_outside_timers_reuse_slots(void)
{
    struct churn c = { 0 };
    struct churn *cp = &c;
    tr_runtime *rt = tt_runtime(2, 0);
    tr_pid counter;
    TT_EQ(tr_spawn(tr_runtime_ctx(rt), fired_counter, &cp, sizeof cp, &counter), 0);
    TT_EQ(tr_runtime_hold(rt), 0);
    TT_EQ(tr_runtime_start(rt), 0);
    long rss_before_kb = tt_rss_kb();
    tr_timer_spec spec = { .delay_ns = 0, .to = counter, .type = MSG_FIRED };
    unsigned long failures = 0;
    for (unsigned long i = 0; i < ROUNDS; i++) {
        admit(&c);
        if (tr_timer_start(tr_runtime_ctx(rt), &spec, NULL) != 0) {
            failures++;
            break;
        }
    }
    TT_EQ(failures, 0);
    TT_EQ(tr_runtime_release(rt), 0);
    TT_EQ(tt_join_within(rt, 600), 0);
    TT_NO_ERRORS();
    TT_EQ(atomic_load(&c.ended), ROUNDS);
    check_table(rt, rss_before_kb, "timers");
    tr_runtime_destroy(rt);
}

/* Slots freed by workers reach outside spawners: with every actor ended,
 * a second wave of the same size fits in the table the first one left,
 * but for the free slots the workers keep cached (at most 2 × 64 each),
 * and so does a third. */
static void test_waves_fit_in_same_table(void)
{
    struct churn c = { 0 };
    struct churn *cp = &c;
    tr_runtime *rt = tt_runtime(2, 0);
    enum { WAVE = 20000 };
    uint64_t size[3] = { 0 };
    for (int wave = 0; wave < 3; wave++) {
        for (int i = 0; i < WAVE; i++) {
            tr_pid pid;
            TT_EQ(tr_spawn(tr_runtime_ctx(rt), short_lived, &cp, sizeof cp, &pid), 0);
            TT_EQ(tr_send(tr_runtime_ctx(rt), pid, MSG_STOP, NULL, 0), 0);
            atomic_fetch_add(&c.alive, 1);
        }
        TT_EQ(tr_runtime_run(rt), 0);
        tr_stats st;
        tr_runtime_stats(rt, &st);
        TT_EQ(st.actors_alive, 0);
        size[wave] = st.actor_slots;
    }
    TT_EQ(size[0], WAVE);
    CU_ASSERT(size[1] <= size[0] + 2 * 2 * 64);
    CU_ASSERT(size[2] <= size[0] + 2 * 2 * 64);
    TT_NO_ERRORS();
    TT_EQ(atomic_load(&c.ended), 3ul * WAVE);
    tr_runtime_destroy(rt);
}

void register_slots_tests(void)
{
    CU_pSuite s = tt_suite("slots");
    tt_test(s, "outside_spawns_2M_reuse_slots", test_outside_spawns_reuse_slots);
    tt_test(s, "outside_timers_2M_reuse_slots", test_outside_timers_reuse_slots);
    tt_test(s, "waves_of_spawns_fit_in_the_same_table", test_waves_fit_in_same_table);
}
