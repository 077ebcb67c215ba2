/* test_on_stop.c — a spec's on_stop runs exactly once however the actor
 * ends: tr_stop, tr_exit, tr_kill, a linked exit, a supervisor's restart
 * and shutdown, tr_runtime_destroy while it is idle, before it ever ran,
 * with its messages queued behind blocked workers, and racing with kills
 * from another thread. Counted per actor (tests.h's counted actors), on
 * 2 and 4 workers. */
#include "tests.h"

#include <stdlib.h>
#include <string.h>

#define KILL_REASON 13

static void send0(tr_runtime *rt, tr_pid to, uint32_t type)
{
    TT_EQ(tr_send(tr_runtime_ctx(rt), to, type, NULL, 0), 0);
}

static void run_quiet(tr_runtime *rt)
{
    TT_EQ(tr_runtime_run(rt), 0);
}

/* ---- on_stop exactly once, each way an actor ends ----------------------------------- */

#define N_WAY 1000

enum way { W_STOP, W_EXIT, W_KILL, W_LINKED, W_DESTROY_IDLE, W_NEVER_RAN };

static void on_stop_way(enum way way, unsigned threads)
{
    tt_counts_reset();
    tr_runtime *rt = tt_runtime(threads, 0);
    uint32_t n = N_WAY;
    for (uint32_t i = 0; i < n; i++) {
        uint32_t flags = i % 5 == 0 ? TT_F_BIG : 0;
        if (i % 7 == 0)
            flags |= TT_F_NO_INIT;
        tr_pid p = tt_counted_spawn(rt, i, flags, NULL);
        switch (way) {
        case W_STOP:
            send0(rt, p, TT_PING);
            send0(rt, p, TT_STOP);
            break;
        case W_EXIT:
            send0(rt, p, TT_EXIT);
            break;
        case W_KILL:
            send0(rt, p, TT_PING);
            TT_EQ(tr_kill(tr_runtime_ctx(rt), p, i % 2 ? TR_EXIT_KILL : KILL_REASON), 0);
            break;
        case W_LINKED: { /* a follower N_WAY + i, then the leader fails */
            uint64_t follower = N_WAY + i;
            TT_EQ(tr_send(tr_runtime_ctx(rt), p, TT_LINK, &follower, sizeof follower), 0);
            send0(rt, p, TT_EXIT);
            break;
        }
        case W_DESTROY_IDLE:
            send0(rt, p, TT_PING);
            break;
        case W_NEVER_RAN:
            break;
        }
    }
    if (way != W_NEVER_RAN)
        run_quiet(rt);
    if (way >= W_DESTROY_IDLE) {
        TT_EQ(atomic_load(&tt_counts.stops_total), 0);
        tr_runtime_destroy(rt);
        rt = NULL;
    }
    unsigned wrong = 0;
    switch (way) {
    case W_STOP:
        tt_counted_ended(0, n, TT_ANY_INITS, TR_EXIT_NORMAL); /* inits checked below */
        break;
    case W_EXIT:
        tt_counted_ended(0, n, TT_ANY_INITS, TT_EXIT_REASON);
        break;
    case W_KILL:
        tt_counted_ended(0, n, TT_ANY_INITS, INT32_MIN);
        for (uint32_t i = 0; i < n; i++)
            wrong += atomic_load(&tt_counts.reason[i]) != (i % 2 ? TR_EXIT_KILLED : KILL_REASON);
        break;
    case W_LINKED:
        tt_counted_ended(0, 2 * n, TT_ANY_INITS, TT_EXIT_REASON); /* the followers by the link */
        break;
    case W_DESTROY_IDLE:
    case W_NEVER_RAN:
        tt_counted_ended(0, n, TT_ANY_INITS, TR_EXIT_SHUTDOWN);
        break;
    }
    TT_EQ(wrong, 0);
    /* init: once for each actor with one, except those that never ran. */
    unsigned bad_inits = 0;
    for (uint32_t i = 0; i < (way == W_LINKED ? 2 * n : n); i++) {
        bool has_init = (i % N_WAY) % 7 != 0;
        unsigned want = has_init && way != W_NEVER_RAN ? 1 : 0;
        bad_inits += atomic_load(&tt_counts.inits[i]) != want;
    }
    TT_EQ(bad_inits, 0);
    if (rt != NULL) {
        tr_stats s;
        tr_runtime_stats(rt, &s);
        TT_EQ(s.actors_alive, 0);
        tr_runtime_destroy(rt);
    }
    TT_EQ(atomic_load(&tt_counts.stops_total), way == W_LINKED ? 2 * n : n); /* none twice */
    TT_NO_ERRORS();
}

static void test_on_stop_stop(void)
{
    on_stop_way(W_STOP, 2);
    on_stop_way(W_STOP, 4);
}

static void test_on_stop_exit(void)
{
    on_stop_way(W_EXIT, 2);
    on_stop_way(W_EXIT, 4);
}

static void test_on_stop_kill(void)
{
    on_stop_way(W_KILL, 2);
    on_stop_way(W_KILL, 4);
}

static void test_on_stop_linked_exit(void)
{
    on_stop_way(W_LINKED, 2);
    on_stop_way(W_LINKED, 4);
}

static void test_on_stop_destroy_idle(void)
{
    on_stop_way(W_DESTROY_IDLE, 2);
    on_stop_way(W_DESTROY_IDLE, 4);
}

static void test_on_stop_never_ran(void)
{
    on_stop_way(W_NEVER_RAN, 2);
    on_stop_way(W_NEVER_RAN, 4);
}

/* Supervisor children: a named child that fails is restarted under its
 * name (init and on_stop once per incarnation), and shutting the tree
 * down runs every child's on_stop once, with TR_EXIT_SHUTDOWN. */
#define N_SUPS 20
#define N_KIDS 8

static void test_on_stop_supervisor(void)
{
    tt_counts_reset();
    tr_runtime *rt = tt_runtime(4, 0);
    tr_pid sups[N_SUPS];
    for (uint32_t s = 0; s < N_SUPS; s++) {
        struct tt_counted_big b[N_KIDS];
        tr_child_spec kids[N_KIDS];
        char names[N_KIDS][32];
        for (uint32_t k = 0; k < N_KIDS; k++) {
            uint32_t id = s * N_KIDS + k;
            snprintf(names[k], sizeof names[k], "kid-%u", (unsigned)id);
            uint32_t flags = k % 2 ? TT_F_BIG : 0;
            kids[k] = (tr_child_spec){.actor = tt_counted_spec(&b[k], id, flags, names[k]),
                                      .restart = TR_PERMANENT};
        }
        tr_supervisor_spec spec = {.strategy = TR_ONE_FOR_ONE, .max_restarts = 5,
                                   .period_ns = 60 * TR_SEC, .children = kids,
                                   .nchildren = N_KIDS};
        TT_EQ(tr_supervisor_start(tr_runtime_ctx(rt), &spec, &sups[s]), 0);
    }
    run_quiet(rt);
    unsigned bad = 0;
    for (uint32_t id = 0; id < N_SUPS * N_KIDS; id++)
        bad += atomic_load(&tt_counts.inits[id]) != 1 || atomic_load(&tt_counts.stops[id]) != 0;
    TT_EQ(bad, 0);

    /* Kid 0 of each tree fails; it comes back under its name. */
    tr_pid before[N_SUPS];
    for (uint32_t s = 0; s < N_SUPS; s++) {
        char name[32];
        snprintf(name, sizeof name, "kid-%u", (unsigned)(s * N_KIDS));
        before[s] = tr_whereis(rt, name);
        CU_ASSERT_FATAL(before[s] != TR_PID_NONE);
        send0(rt, before[s], TT_EXIT);
    }
    run_quiet(rt);
    for (uint32_t s = 0; s < N_SUPS; s++) {
        char name[32];
        snprintf(name, sizeof name, "kid-%u", (unsigned)(s * N_KIDS));
        tr_pid after = tr_whereis(rt, name);
        CU_ASSERT(after != TR_PID_NONE && after != before[s]);
        uint32_t id = s * N_KIDS;
        TT_EQ(atomic_load(&tt_counts.inits[id]), 2);
        TT_EQ(atomic_load(&tt_counts.stops[id]), 1);
        TT_EQ(atomic_load(&tt_counts.reason[id]), TT_EXIT_REASON);
        TT_EQ(atomic_load(&tt_counts.spawner[id]), sups[s]);
    }

    for (uint32_t s = 0; s < N_SUPS; s++)
        TT_EQ(tr_kill(tr_runtime_ctx(rt), sups[s], TR_EXIT_SHUTDOWN), 0);
    run_quiet(rt);
    bad = 0;
    for (uint32_t id = 0; id < N_SUPS * N_KIDS; id++) {
        unsigned incarnations = id % N_KIDS == 0 ? 2 : 1;
        bad += atomic_load(&tt_counts.inits[id]) != incarnations;
        bad += atomic_load(&tt_counts.stops[id]) != incarnations;
        bad += atomic_load(&tt_counts.reason[id]) != TR_EXIT_SHUTDOWN;
    }
    TT_EQ(bad, 0);
    TT_EQ(atomic_load(&tt_counts.stops_total), N_SUPS * (N_KIDS + 1));
    tr_stats st;
    tr_runtime_stats(rt, &st);
    TT_EQ(st.actors_alive, 0);
    tr_runtime_destroy(rt);
    TT_EQ(atomic_load(&tt_counts.stops_total), N_SUPS * (N_KIDS + 1));
    TT_NO_ERRORS();
}

/* Races: actors stop themselves while another thread kills them and the
 * runtime is destroyed while they still have messages queued. Whoever
 * ends each one — its own tr_stop, the kill, or the destroy — on_stop
 * runs exactly once. */
#define N_RACE 2000

struct race {
    tr_runtime *rt;
    atomic_bool go;
};

static void *killer_main(void *p)
{
    struct race *r = p;
    while (!atomic_load(&r->go))
        ;
    for (uint32_t i = N_RACE; i-- > 0;)
        TT_CHECK(tr_kill(tr_runtime_ctx(r->rt), atomic_load(&tt_counts.pid[i]), TR_EXIT_KILL) == 0);
    return NULL;
}

static void on_stop_race(unsigned threads)
{
    tt_counts_reset();
    struct race r = {.rt = tt_runtime(threads, 0)};
    TT_EQ(tr_runtime_hold(r.rt), 0);
    TT_EQ(tr_runtime_start(r.rt), 0);
    for (uint32_t i = 0; i < N_RACE; i++)
        tt_counted_spawn(r.rt, i, i % 3 == 0 ? TT_F_BIG : 0, NULL);
    pthread_t killer = tt_thread(killer_main, &r);
    atomic_store(&r.go, true);
    for (uint32_t i = 0; i < N_RACE; i++) {
        tr_pid p = atomic_load(&tt_counts.pid[i]);
        for (int k = 0; k < 20; k++)
            send0(r.rt, p, TT_PING);
        send0(r.rt, p, TT_STOP);
    }
    tt_join(killer);
    tr_runtime_destroy(r.rt); /* while running, with messages queued */
    unsigned bad = 0;
    for (uint32_t i = 0; i < N_RACE; i++) {
        int why = atomic_load(&tt_counts.reason[i]);
        bad += atomic_load(&tt_counts.stops[i]) != 1;
        bad += atomic_load(&tt_counts.inits[i]) > 1;
        bad += why != TR_EXIT_NORMAL && why != TR_EXIT_KILLED && why != TR_EXIT_SHUTDOWN;
    }
    TT_EQ(bad, 0);
    TT_EQ(atomic_load(&tt_counts.stops_total), N_RACE);
    TT_NO_ERRORS();
}

static void test_on_stop_races(void)
{
    on_stop_race(2);
    on_stop_race(4);
}

/* Destroy with actors queued that never got a worker: every worker is
 * held in a blocker's turn while they are spawned, sent to and killed,
 * and the run is stopped before the blockers let go, so the workers
 * leave without running them. Each one's on_stop runs once, in the
 * destroy, and init never. */
static struct {
    atomic_uint entered;
    atomic_bool release;
} B;

static void blocker(tr_ctx *cx, void *state, const tr_msg *m)
{
    (void)cx;
    (void)state;
    (void)m;
    atomic_fetch_add(&B.entered, 1);
    for (unsigned long spins = 0; !atomic_load(&B.release);)
        tt_relax(&spins);
}

static void destroy_queued(unsigned threads)
{
    tt_counts_reset();
    atomic_store(&B.entered, 0);
    atomic_store(&B.release, false);
    tr_runtime *rt = tt_runtime(threads, 0);
    for (unsigned t = 0; t < threads; t++) {
        tr_pid b;
        TT_EQ(tr_spawn(tr_runtime_ctx(rt), blocker, NULL, 0, &b), 0);
        send0(rt, b, TT_PING);
    }
    TT_EQ(tr_runtime_start(rt), 0);
    for (unsigned long spins = 0; atomic_load(&B.entered) < threads;)
        tt_relax(&spins);
    for (uint32_t i = 0; i < N_RACE; i++) {
        tr_pid p = tt_counted_spawn(rt, i, i % 3 == 0 ? TT_F_BIG : 0, NULL);
        send0(rt, p, TT_PING);
        send0(rt, p, TT_STOP);
        if (i % 2)
            TT_EQ(tr_kill(tr_runtime_ctx(rt), p, TR_EXIT_KILL), 0);
    }
    tr_runtime_shutdown(rt);
    atomic_store(&B.release, true);
    tr_runtime_destroy(rt);
    tt_counted_ended(0, N_RACE, 0, TR_EXIT_SHUTDOWN);
    TT_EQ(atomic_load(&tt_counts.seen), 0);
    TT_EQ(atomic_load(&tt_counts.stops_total), N_RACE);
    TT_NO_ERRORS();
}

static void test_on_stop_destroy_queued(void)
{
    destroy_queued(2);
    destroy_queued(4);
}

void register_on_stop_tests(void)
{
    CU_pSuite s = tt_suite("on_stop");
    tt_test(s, "on_stop once: tr_stop", test_on_stop_stop);
    tt_test(s, "on_stop once: tr_exit", test_on_stop_exit);
    tt_test(s, "on_stop once: tr_kill", test_on_stop_kill);
    tt_test(s, "on_stop once: linked exit", test_on_stop_linked_exit);
    tt_test(s, "on_stop once: supervisor restart and shutdown", test_on_stop_supervisor);
    tt_test(s, "on_stop once: destroy while idle", test_on_stop_destroy_idle);
    tt_test(s, "on_stop once: destroy before it ran", test_on_stop_never_ran);
    tt_test(s, "on_stop once: stop, kill and destroy racing", test_on_stop_races);
    tt_test(s, "on_stop once: destroy with actors queued", test_on_stop_destroy_queued);
}
