/* test_slots.c — the actor table gives back the slots of actors and timers
 * that ended, whichever thread spawned or started them: a program whose
 * main thread (or any thread outside the runtime) keeps spawning and
 * arming timers must not grow the table, nor its memory. */
#include "tests.h"
#include "../actors/actor.h"

#include <stdlib.h>
#include <string.h>

enum { MSG_STOP = 10, MSG_FIRED };

#define ROUNDS 2000000ul
#define MAX_ALIVE 1000 /* at most this many spawned and not yet ended */
/* Free slots a worker may keep to itself: a current chain and its spare
 * ones (mailbox/depot.h); outside threads keep a current chain. */
#define WORKER_KEEPS ((TR__MAG_SPARES + 1) * TR__BATCH)
/* The table may hold the peak plus the free slots cached — the test's
 * two workers', the outside threads' chain and their run of fresh slots
 * — and a few chains on their way through the depot. (A worker preempted
 * half-way through a put makes the depot look empty, mailbox/depot.h: a
 * thread outside the runtime waits for the put to land rather than grow
 * the table, actors/table.c, take_free. Before it did, slowed by -O0
 * coverage code, the table here passed this bound.) */
#define SLOTS_LIMIT (MAX_ALIVE + 2 * WORKER_KEEPS + TR__BATCH + TR__FRESH_RUN + 4 * TR__BATCH)
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
 * but for the free slots the workers keep cached (WORKER_KEEPS each),
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
    CU_ASSERT(size[1] <= size[0] + 2 * WORKER_KEEPS);
    CU_ASSERT(size[2] <= size[0] + 2 * WORKER_KEEPS);
    TT_NO_ERRORS();
    TT_EQ(atomic_load(&c.ended), 3ul * WAVE);
    tr_runtime_destroy(rt);
}

/* Workers take fresh slots in runs (actors/actor.h, tr__slot_cache). An
 * actor and this thread take turns at spawning, one child each, KIDS
 * times: taken one at a time from the table's end, the two would leave
 * every one of the actor's children one slot apart; a worker's run keeps
 * them consecutive but where a run ends (once per TR__FRESH_RUN). Every
 * child has a slot of its own, and the table grows by the children and
 * at most one run's unused tail. One worker: with two, the actor could
 * move between them, and each move starts another run. */
enum { KIDS = 1000 };

struct alternate {
    tr_pid inside[KIDS], outside[KIDS];
    unsigned n;
    sem_t spawned; /* the actor spawned its next child */
};

static void kid(tr_ctx *cx, void *state, const tr_msg *m)
{
    (void)state;
    TT_CHECK(m->type == MSG_STOP);
    tr_stop(cx);
}

static void inside_spawner(tr_ctx *cx, void *state, const tr_msg *m)
{
    struct alternate *alt = *(struct alternate **)state;
    TT_CHECK(m->type == MSG_FIRED && alt->n < KIDS);
    TT_CHECK(tr_spawn(cx, kid, NULL, 0, &alt->inside[alt->n]) == 0);
    if (++alt->n == KIDS)
        tr_stop(cx);
    sem_post(&alt->spawned);
}

static int by_index(const void *x, const void *y)
{
    uint32_t a = TR__PID_INDEX(*(const tr_pid *)x), b = TR__PID_INDEX(*(const tr_pid *)y);
    return a < b ? -1 : a > b;
}

static void test_workers_take_fresh_slots_in_runs(void)
{
    static struct alternate alt;
    struct alternate *ap = &alt;
    alt.n = 0;
    CU_ASSERT_FATAL(sem_init(&alt.spawned, 0, 0) == 0);
    tr_runtime *rt = tt_runtime(1, 0);
    tr_pid spawner;
    TT_EQ(tr_spawn(tr_runtime_ctx(rt), inside_spawner, &ap, sizeof ap, &spawner), 0);
    TT_EQ(tr_runtime_hold(rt), 0);
    TT_EQ(tr_runtime_start(rt), 0);
    tr_stats st;
    tr_runtime_stats(rt, &st);
    uint64_t before = st.actor_slots;
    for (unsigned i = 0; i < KIDS; i++) {
        TT_EQ(tr_send(tr_runtime_ctx(rt), spawner, MSG_FIRED, NULL, 0), 0);
        while (sem_wait(&alt.spawned) != 0)
            ;
        TT_EQ(tr_spawn(tr_runtime_ctx(rt), kid, NULL, 0, &alt.outside[i]), 0);
    }
    tr_runtime_stats(rt, &st);
    CU_ASSERT(st.actor_slots <= before + 2 * KIDS + TR__FRESH_RUN - 1);

    unsigned breaks = 0;
    for (unsigned i = 1; i < KIDS; i++)
        breaks += TR__PID_INDEX(alt.inside[i]) != TR__PID_INDEX(alt.inside[i - 1]) + 1;
    printf("[%u breaks in %u children] ", breaks, KIDS);
    CU_ASSERT(breaks <= KIDS / TR__FRESH_RUN + 2); /* (+1: a chunk's end) */
    static tr_pid all[2 * KIDS];
    memcpy(all, alt.inside, sizeof alt.inside);
    memcpy(all + KIDS, alt.outside, sizeof alt.outside);
    qsort(all, 2 * KIDS, sizeof *all, by_index);
    unsigned shared = 0;
    for (unsigned i = 1; i < 2 * KIDS; i++)
        shared += TR__PID_INDEX(all[i]) == TR__PID_INDEX(all[i - 1]);
    TT_EQ(shared, 0);
    for (unsigned i = 0; i < 2 * KIDS; i++)
        TT_EQ(tr_send(tr_runtime_ctx(rt), all[i], MSG_STOP, NULL, 0), 0);
    TT_EQ(tr_runtime_release(rt), 0);
    TT_EQ(tt_join_within(rt, 60), 0);
    tr_runtime_stats(rt, &st);
    TT_EQ(st.actors_alive, 0);
    TT_EQ(st.actors_spawned, 1 + 2 * KIDS);
    TT_NO_ERRORS();
    sem_destroy(&alt.spawned);
    tr_runtime_destroy(rt);
}

/* Spawns from outside the runtime are kept apart (actors/actor.h, "Spawns
 * from outside"): no two spawned one after the other have neighbouring
 * slots, and their heap states share no cache line, across several of
 * the shared runs of fresh slots; and every slot of those runs is
 * handed out. Each actor reports where its state is and stops. */
enum { APART = 3 * TR__FRESH_RUN + 5 };

struct apart {
    uintptr_t *where; /* the test's: where each actor's state is */
    unsigned i;
    unsigned char pad[40]; /* over the inline room: a heap state */
};

_Static_assert(sizeof(struct apart) > TR__STATE_INLINE, "a heap state");

static void report_where(tr_ctx *cx, void *state, const tr_msg *m)
{
    struct apart *a = state;
    TT_CHECK(m->type == MSG_STOP);
    a->where[a->i] = (uintptr_t)state;
    tr_stop(cx);
}

static bool lines_meet(uintptr_t a, uintptr_t b, size_t len)
{
    uintptr_t a_first = a / 64, a_last = (a + len - 1) / 64;
    uintptr_t b_first = b / 64, b_last = (b + len - 1) / 64;
    return a_first <= b_last && b_first <= a_last;
}

static void test_outside_spawns_kept_apart(void)
{
    static uintptr_t where[APART];
    static tr_pid pids[APART];
    memset(where, 0, sizeof where);
    tr_runtime *rt = tt_runtime(2, 0);
    tr_stats st;
    tr_runtime_stats(rt, &st);
    uint64_t before = st.actor_slots;
    for (unsigned i = 0; i < APART; i++) {
        struct apart a = { .where = where, .i = i };
        TT_EQ(tr_spawn(tr_runtime_ctx(rt), report_where, &a, sizeof a, &pids[i]), 0);
    }
    tr_runtime_stats(rt, &st);
    CU_ASSERT(st.actor_slots - before < APART + TR__FRESH_RUN);
    unsigned neighbours = 0;
    for (unsigned i = 1; i < APART; i++) {
        uint32_t x = TR__PID_INDEX(pids[i - 1]), y = TR__PID_INDEX(pids[i]);
        neighbours += x + 1 == y || y + 1 == x;
    }
    TT_EQ(neighbours, 0);
    /* Every slot of the runs they took is handed out: sorted, the first
     * APART - APART % TR__FRESH_RUN indices leave no gap. */
    tr_pid sorted[APART];
    memcpy(sorted, pids, sizeof sorted);
    qsort(sorted, APART, sizeof *sorted, by_index);
    unsigned gaps = 0;
    for (unsigned i = 1; i < APART - APART % TR__FRESH_RUN; i++)
        gaps += TR__PID_INDEX(sorted[i]) != TR__PID_INDEX(sorted[i - 1]) + 1;
    TT_EQ(gaps, 0);
    for (unsigned i = 0; i < APART; i++)
        TT_EQ(tr_send(tr_runtime_ctx(rt), pids[i], MSG_STOP, NULL, 0), 0);
    TT_EQ(tr_runtime_run(rt), 0);
    unsigned met = 0;
    for (unsigned i = 0; i < APART; i++)
        TT_CHECK(where[i] != 0);
    for (unsigned i = 1; i < APART; i++)
        met += lines_meet(where[i - 1], where[i], sizeof(struct apart));
    TT_EQ(met, 0);
    tr_runtime_stats(rt, &st);
    TT_EQ(st.messages_handled, APART);
    TT_EQ(st.actors_alive, 0);
    TT_NO_ERRORS();
    tr_runtime_destroy(rt);
}

void register_slots_tests(void)
{
    CU_pSuite s = tt_suite("slots");
    tt_test(s, "outside_spawns_2M_reuse_slots", test_outside_spawns_reuse_slots);
    tt_test(s, "outside_timers_2M_reuse_slots", test_outside_timers_reuse_slots);
    tt_test(s, "waves_of_spawns_fit_in_the_same_table", test_waves_fit_in_same_table);
    tt_test(s, "workers_take_fresh_slots_in_runs", test_workers_take_fresh_slots_in_runs);
    tt_test(s, "outside_spawns_one_after_another_kept_apart", test_outside_spawns_kept_apart);
}
