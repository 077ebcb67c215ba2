/* test_sim.c — the simulator's core (troupe/sim.h, sched/sim.c): seeded
 * scheduling, virtual time, the trace hash, faults, ends.
 *
 * Each test makes simulated runtimes with explicit options (TROUPE_SIM in
 * the environment is not read when tr_config.sim_options is set) and
 * destroys them, which ends the simulation: the virtual clock is then off
 * again for the rest of the runner. Everything runs on the test thread,
 * so plain counters are enough. Wall times are printed, never asserted. */
#include "tests.h"
#include "../base/sim.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static tr_runtime *sim_runtime(uint64_t seed, const char *options, unsigned batch)
{
    tr_config cfg;
    tr_config_init(&cfg);
    cfg.sim_seed = seed;
    cfg.sim_options = options;
    cfg.batch = batch;
    tr_runtime *rt = NULL;
    int err = tr_runtime_create(&cfg, &rt);
    CU_ASSERT_FATAL(err == 0 && rt != NULL);
    return rt;
}

/* ---- stderr into a buffer ---- */

static int saved_stderr = -1;
static FILE *captured;

static void capture_begin(void)
{
    fflush(stderr);
    captured = tmpfile();
    CU_ASSERT_FATAL(captured != NULL);
    saved_stderr = dup(2);
    dup2(fileno(captured), 2);
}

/* What was written to stderr since capture_begin (a static buffer),
 * shown in the runner's output too if echo. */
static const char *capture_end(bool echo)
{
    static char buf[16384];
    fflush(stderr);
    dup2(saved_stderr, 2);
    close(saved_stderr);
    rewind(captured);
    size_t n = fread(buf, 1, sizeof buf - 1, captured);
    buf[n] = '\0';
    fclose(captured);
    if (echo)
        fputs(buf, stderr);
    return buf;
}

static unsigned occurrences(const char *text, const char *what)
{
    unsigned n = 0;
    for (const char *p = text; (p = strstr(p, what)) != NULL; p += strlen(what))
        n++;
    return n;
}

/* Adds h to seen, the n distinct values so far, unless it is one of them;
 * the new count. */
static unsigned add_distinct(uint64_t *seen, unsigned n, uint64_t h)
{
    for (unsigned i = 0; i < n; i++)
        if (seen[i] == h)
            return n;
    seen[n] = h;
    return n + 1;
}

/* ---- a workload: hops between peers, through sends, timers and spawns ---- */

enum { W_START = 1, W_HOP };
#define PEERS 40
#define HOPS 20

static tr_pid peers[PEERS];
static unsigned long hops_seen, leaves_spawned;

struct leaf {
    tr_pid next;
    uint32_t hops;
};

/* Carries one hop on, then ends. */
void sim_leaf(tr_ctx *cx, void *state, const tr_msg *m)
{
    (void)m;
    struct leaf *l = state;
    TT_CHECK(tr_send(cx, l->next, W_HOP, &l->hops, sizeof l->hops) == 0);
    tr_stop(cx);
}

/* A hop arrives: counted; passed on, while hops remain, to a peer chosen
 * by tr_rand — directly, after a timer, or through a short-lived actor. */
void sim_peer(tr_ctx *cx, void *state, const tr_msg *m)
{
    (void)state;
    const uint32_t *h = TR_PAYLOAD(m, uint32_t);
    TT_CHECK(m->type == W_HOP && h != NULL);
    if (h == NULL)
        return;
    hops_seen++;
    if (*h == 0)
        return;
    uint64_t r = tr_rand(cx);
    uint32_t left = *h - 1;
    tr_pid next = peers[r % PEERS];
    switch ((r >> 16) % 3) {
    case 0:
        TT_CHECK(tr_send(cx, next, W_HOP, &left, sizeof left) == 0);
        break;
    case 1:
        TT_CHECK(tr_send_after(cx, 1 + (r >> 24) % (50 * TR_MSEC), next, W_HOP, &left,
                               sizeof left) == 0);
        break;
    default: {
        struct leaf l = {.next = next, .hops = left};
        tr_pid leaf;
        TT_CHECK(tr_spawn(cx, sim_leaf, &l, sizeof l, &leaf) == 0);
        TT_CHECK(tr_send(cx, leaf, W_START, NULL, 0) == 0);
        leaves_spawned++;
    }
    }
}

/* Spawns the peers, then starts one hop chain at each. */
void sim_root(tr_ctx *cx, void *state, const tr_msg *m)
{
    (void)state;
    (void)m;
    for (unsigned i = 0; i < PEERS; i++)
        TT_CHECK(tr_spawn(cx, sim_peer, NULL, 0, &peers[i]) == 0);
    uint32_t h = HOPS;
    for (unsigned i = 0; i < PEERS; i++)
        TT_CHECK(tr_send(cx, peers[i], W_HOP, &h, sizeof h) == 0);
}

/* One run of the workload; its trace hash. Every hop is accounted for. */
static uint64_t workload(uint64_t seed, const char *options)
{
    hops_seen = leaves_spawned = 0;
    tr_runtime *rt = sim_runtime(seed, options, 0);
    tr_pid root;
    CU_ASSERT_FATAL(tr_spawn(tr_runtime_ctx(rt), sim_root, NULL, 0, &root) == 0);
    CU_ASSERT_FATAL(tr_send(tr_runtime_ctx(rt), root, W_START, NULL, 0) == 0);
    TT_EQ(tr_runtime_run(rt), 0);
    TT_EQ(hops_seen, PEERS * (HOPS + 1));
    tr_sim_stats st;
    tr_sim_stats_get(&st);
    CU_ASSERT(st.turns >= PEERS * (HOPS + 1));
    tr_runtime_destroy(rt);
    TT_EQ(tr_sim_seed(), seed);
    TT_NO_ERRORS();
    return tr_sim_hash();
}

static void same_seed_gives_the_same_trace(const char *options)
{
    uint64_t a = workload(12345, options);
    unsigned long leaves = leaves_spawned;
    uint64_t b = workload(12345, options);
    TT_EQ(b, a);
    TT_EQ(leaves_spawned, leaves);
    CU_ASSERT(leaves > 0); /* the spawns were part of it */
    CU_ASSERT(workload(12346, options) != a);
}

static void same_seed_same_hash_uniform(void)
{
    same_seed_gives_the_same_trace("sched=uniform");
}

static void same_seed_same_hash_pct(void)
{
    same_seed_gives_the_same_trace("sched=pct,depth=3");
}

static void hundred_seeds_many_hashes(const char *options)
{
    uint64_t hashes[100];
    unsigned distinct = 0;
    double t0 = tt_now();
    for (unsigned s = 0; s < 100; s++) {
        capture_begin(); /* 200 lines of seeds and hashes, not worth showing */
        uint64_t h = workload(1000 + s, options);
        CU_ASSERT(occurrences(capture_end(false), "trace hash=") == 1);
        distinct = add_distinct(hashes, distinct, h);
    }
    printf("\n    %s: 100 seeds, %u distinct trace hashes, %.3f s of wall time\n", options,
           distinct, tt_now() - t0);
    CU_ASSERT(distinct > 50);
}

static void hundred_seeds_uniform(void)
{
    hundred_seeds_many_hashes("sched=uniform");
}

static void hundred_seeds_pct(void)
{
    hundred_seeds_many_hashes("sched=pct,depth=4");
}

/* ---- a supervisor over virtual hours ---- */

enum { K_CRASH = 1 };
#define TEN_MIN (10 * 60 * TR_SEC)
#define HOUR (60 * 60 * TR_SEC)

static unsigned kid_inits;
static int sup_reason;
static uint64_t sup_ended_ns;

static int kid_init(tr_ctx *cx, void *state, tr_pid spawner)
{
    (void)state;
    (void)spawner;
    kid_inits++;
    return tr_send_after(cx, TEN_MIN, tr_self(cx), K_CRASH, NULL, 0);
}

void sim_kid(tr_ctx *cx, void *state, const tr_msg *m)
{
    (void)state;
    if (m->type == K_CRASH)
        tr_exit(cx, 99, "crash on a timer");
}

/* Starts the supervisor linked to itself, and hears how it ended. */
void sim_sup_root(tr_ctx *cx, void *state, const tr_msg *m)
{
    (void)state;
    if (m->type == TR_EXIT) {
        const tr_exit_info *e = TR_PAYLOAD(m, tr_exit_info);
        TT_CHECK(e != NULL);
        sup_reason = e != NULL ? e->reason : 0;
        sup_ended_ns = tr_now(cx);
        tr_stop(cx);
        return;
    }
    tr_trap_exits(cx, true);
    tr_child_spec kid = {.actor = {.behaviour = sim_kid, .init = kid_init},
                         .restart = TR_PERMANENT};
    /* Five restarts an hour: the sixth crash, an hour in, is one too many. */
    tr_supervisor_spec spec = {.strategy = TR_ONE_FOR_ONE, .max_restarts = 5, .period_ns = HOUR,
                               .children = &kid, .nchildren = 1};
    tr_pid sup;
    TT_CHECK(tr_supervisor_start(cx, &spec, &sup) == 0);
}

static void supervisor_runs_virtual_hours(void)
{
    kid_inits = 0;
    sup_reason = 0;
    double t0 = tt_now();
    tr_runtime *rt = sim_runtime(77, "sched=uniform", 0);
    uint64_t start = tr_now(NULL);
    tr_pid root;
    CU_ASSERT_FATAL(tr_spawn(tr_runtime_ctx(rt), sim_sup_root, NULL, 0, &root) == 0);
    CU_ASSERT_FATAL(tr_send(tr_runtime_ctx(rt), root, 1, NULL, 0) == 0);
    TT_EQ(tr_runtime_run(rt), 0);
    tr_sim_stats st;
    tr_sim_stats_get(&st);
    tr_runtime_destroy(rt);
    printf("\n    supervisor: %u starts, gave up after %.1f virtual minutes, %.3f s of wall "
           "time\n", kid_inits, (double)(sup_ended_ns - start) / 60e9, tt_now() - t0);
    TT_EQ(kid_inits, 6); /* the first start and five restarts */
    TT_EQ(sup_reason, TR_EXIT_RESTARTS);
    CU_ASSERT(sup_ended_ns - start > HOUR);
    CU_ASSERT(st.virtual_ns > HOUR);
    TT_NO_ERRORS();
}

/* ---- 100,000 timers over a simulated day ---- */

#define TIMERS 100000
#define DAY (24 * HOUR)

struct due {
    uint32_t id;
    uint64_t at;
};

static uint8_t fired[TIMERS];
static uint32_t due_ids; /* the test's timers: ids 0 .. due_ids - 1 */
static unsigned long early;
static uint64_t late_max_ns, late_count; /* for late_timers_fault_stays_within_bound */

/* Each timer's arrival: counted, and how early (never) or late it came. */
void sim_timer_target(tr_ctx *cx, void *state, const tr_msg *m)
{
    (void)state;
    const struct due *d = TR_PAYLOAD(m, struct due);
    TT_CHECK(d != NULL && d->id < due_ids);
    if (d == NULL || d->id >= due_ids)
        return;
    fired[d->id]++;
    uint64_t now = tr_now(cx);
    if (now < d->at) {
        early++;
        return;
    }
    if (now - d->at > late_max_ns)
        late_max_ns = now - d->at;
    late_count += now - d->at > 2 * TR_MSEC;
}

static void timers_over_a_day_fire_once_each(void)
{
    memset(fired, 0, sizeof fired);
    due_ids = TIMERS;
    early = late_max_ns = late_count = 0;
    double t0 = tt_now();
    tr_runtime *rt = sim_runtime(2024, "sched=uniform", 0);
    tr_ctx *cx = tr_runtime_ctx(rt);
    tr_pid target;
    CU_ASSERT_FATAL(tr_spawn(cx, sim_timer_target, NULL, 0, &target) == 0);
    uint64_t rng = 99;
    for (uint32_t i = 0; i < TIMERS; i++) {
        uint64_t delay = tt_rng_below(&rng, DAY);
        struct due d = {.id = i, .at = tr_now(cx) + delay};
        if (tr_send_after(cx, delay, target, 1, &d, sizeof d) != 0)
            CU_FAIL_FATAL("tr_send_after");
    }
    TT_EQ(tr_runtime_run(rt), 0);
    tr_sim_stats st;
    tr_sim_stats_get(&st);
    tr_stats rs;
    tr_runtime_stats(rt, &rs);
    tr_runtime_destroy(rt);
    unsigned long once = 0;
    for (uint32_t i = 0; i < TIMERS; i++)
        once += fired[i] == 1;
    printf("\n    timers: %lu of %d fired once, over %.2f virtual hours, %.3f s of wall time\n",
           once, TIMERS, (double)st.virtual_ns / 3600e9, tt_now() - t0);
    TT_EQ(once, TIMERS);
    TT_EQ(early, 0);
    TT_EQ(rs.messages_handled, TIMERS);
    CU_ASSERT(st.virtual_ns <= DAY + TR_SEC);
    TT_NO_ERRORS();
}

/* ---- timers due together, and late ones ---- */

#define TOGETHER 16

static uint32_t order[TOGETHER];
static unsigned ordered;

void sim_order_target(tr_ctx *cx, void *state, const tr_msg *m)
{
    (void)cx;
    (void)state;
    const uint32_t *id = TR_PAYLOAD(m, uint32_t);
    TT_CHECK(id != NULL && ordered < TOGETHER);
    if (id != NULL && ordered < TOGETHER)
        order[ordered++] = *id;
}

/* The order in which TOGETHER timers due at one instant reached their
 * target, as a number (each id's place mixed in). */
static uint64_t together_order(uint64_t seed)
{
    ordered = 0;
    capture_begin(); /* 21 runs' seeds and hashes, not worth showing */
    tr_runtime *rt = sim_runtime(seed, "sched=uniform", 0);
    tr_ctx *cx = tr_runtime_ctx(rt);
    tr_pid target;
    CU_ASSERT_FATAL(tr_spawn(cx, sim_order_target, NULL, 0, &target) == 0);
    for (uint32_t i = 0; i < TOGETHER; i++)
        TT_EQ(tr_send_after(cx, 100 * TR_MSEC, target, 1, &i, sizeof i), 0);
    TT_EQ(tr_runtime_run(rt), 0);
    tr_runtime_destroy(rt);
    capture_end(false);
    TT_EQ(ordered, TOGETHER);
    uint64_t h = 0;
    for (unsigned i = 0; i < ordered; i++)
        h = tt_mix64(h ^ order[i]);
    return h;
}

static void timers_due_together_fire_in_seeded_order(void)
{
    uint64_t first = together_order(300);
    TT_EQ(together_order(300), first);
    uint64_t seen[20];
    unsigned distinct = 0;
    for (unsigned s = 0; s < 20; s++)
        distinct = add_distinct(seen, distinct, together_order(400 + s));
    CU_ASSERT(distinct > 10);
    TT_NO_ERRORS();
}

#define LATE_TIMERS 200

static void late_timers_fault_stays_within_bound(void)
{
    memset(fired, 0, sizeof fired);
    due_ids = LATE_TIMERS;
    early = late_max_ns = late_count = 0;
    /* Seed 1's draw switches the timer_late site on. */
    tr_runtime *rt = sim_runtime(1, "faults=timer_late,fault_p=1", 0);
    tr_ctx *cx = tr_runtime_ctx(rt);
    tr_pid target;
    CU_ASSERT_FATAL(tr_spawn(cx, sim_timer_target, NULL, 0, &target) == 0);
    uint64_t rng = 5;
    for (uint32_t i = 0; i < LATE_TIMERS; i++) {
        uint64_t delay = tt_rng_below(&rng, TR_SEC);
        struct due d = {.id = i, .at = tr_now(cx) + delay};
        TT_EQ(tr_send_after(cx, delay, target, 1, &d, sizeof d), 0);
    }
    TT_EQ(tr_runtime_run(rt), 0);
    tr_sim_stats st;
    tr_sim_stats_get(&st);
    tr_runtime_destroy(rt);
    unsigned once = 0;
    for (uint32_t i = 0; i < LATE_TIMERS; i++)
        once += fired[i] == 1;
    TT_EQ(once, LATE_TIMERS);
    TT_EQ(early, 0);
    TT_EQ(st.faults, LATE_TIMERS); /* each put off once, at fault_p=1 */
    CU_ASSERT(late_count > LATE_TIMERS / 2); /* most by more than 2 ms of 10 */
    /* 10 ms, a wheel tick of rounding and the turns that delivered them. */
    CU_ASSERT(late_max_ns <= 10 * TR_MSEC + 2 * TR_MSEC);
    TT_NO_ERRORS();
}

/* ---- several simulated runtimes in one process ---- */

static void started_runtimes_are_stepped_together(void)
{
    tr_runtime *a = sim_runtime(8, "sched=uniform", 0);
    tr_runtime *b = sim_runtime(8, NULL, 0); /* joins the simulation of a */
    tr_runtime *c = sim_runtime(8, NULL, 0);
    uint64_t zero = 0;
    tr_pid pa, pb, pc;
    CU_ASSERT_FATAL(tr_spawn(tr_runtime_ctx(a), tt_counter, &zero, sizeof zero, &pa) == 0);
    CU_ASSERT_FATAL(tr_spawn(tr_runtime_ctx(b), tt_counter, &zero, sizeof zero, &pb) == 0);
    CU_ASSERT_FATAL(tr_spawn(tr_runtime_ctx(c), tt_counter, &zero, sizeof zero, &pc) == 0);
    /* a waits a virtual second for its timer; b has work meanwhile; c is
     * not started, so its message waits. */
    TT_EQ(tr_send_after(tr_runtime_ctx(a), TR_SEC, pa, 1, NULL, 0), 0);
    for (int i = 0; i < 100; i++)
        TT_EQ(tr_send(tr_runtime_ctx(b), pb, 1, NULL, 0), 0);
    TT_EQ(tr_send(tr_runtime_ctx(c), pc, 1, NULL, 0), 0);
    TT_EQ(tr_runtime_start(a), 0);
    TT_EQ(tr_runtime_start(b), 0);
    TT_EQ(tr_runtime_join(a), 0);
    tr_stats sa, sb, sc;
    tr_runtime_stats(a, &sa);
    tr_runtime_stats(b, &sb);
    tr_runtime_stats(c, &sc);
    TT_EQ(sa.messages_handled, 1);
    TT_EQ(sb.messages_handled, 100);
    TT_EQ(sc.messages_handled, 0);
    TT_EQ(tr_runtime_join(b), 0);
    TT_EQ(tr_runtime_run(c), 0);
    tr_runtime_stats(c, &sc);
    TT_EQ(sc.messages_handled, 1);
    tr_runtime_destroy(c);
    tr_runtime_destroy(b);
    CU_ASSERT(tr_now(NULL) != 0); /* still simulated: a is alive */
    tr_runtime_destroy(a);
}

/* Stops its own runtime. */
void sim_stopper(tr_ctx *cx, void *state, const tr_msg *m)
{
    (void)state;
    (void)m;
    tr_runtime_shutdown(tr_ctx_runtime(cx));
}

static void stopped_runtime_waits_for_its_next_run(void)
{
    tr_runtime *a = sim_runtime(9, "sched=uniform", 0);
    tr_runtime *b = sim_runtime(9, NULL, 1);
    uint64_t zero = 0;
    tr_pid pa, counter, stopper;
    CU_ASSERT_FATAL(tr_spawn(tr_runtime_ctx(a), tt_counter, &zero, sizeof zero, &pa) == 0);
    CU_ASSERT_FATAL(tr_spawn(tr_runtime_ctx(b), tt_counter, &zero, sizeof zero, &counter) == 0);
    CU_ASSERT_FATAL(tr_spawn(tr_runtime_ctx(b), sim_stopper, NULL, 0, &stopper) == 0);
    for (int i = 0; i < 50; i++)
        TT_EQ(tr_send(tr_runtime_ctx(b), counter, 1, NULL, 0), 0);
    TT_EQ(tr_send(tr_runtime_ctx(b), stopper, 1, NULL, 0), 0);
    TT_EQ(tr_runtime_run(b), 1);
    tr_stats sb;
    tr_runtime_stats(b, &sb);
    uint64_t before = sb.messages_handled;
    printf("\n    %" PRIu64 " of 51 messages handled before the stop\n", before);
    /* a's run steps only started runtimes: b's actors wait. */
    TT_EQ(tr_send_after(tr_runtime_ctx(a), TR_SEC, pa, 1, NULL, 0), 0);
    TT_EQ(tr_runtime_run(a), 0);
    tr_runtime_stats(b, &sb);
    TT_EQ(sb.messages_handled, before);
    TT_EQ(tr_runtime_run(b), 0);
    tr_runtime_stats(b, &sb);
    TT_EQ(sb.messages_handled, 51);
    tr_runtime_destroy(b);
    tr_runtime_destroy(a);
}

/* tr_sim_on_create: a hook that spawns into every simulated runtime. */
static unsigned hooked;

static void on_create(tr_runtime *rt, void *arg)
{
    hooked++;
    tr_pid pid;
    TT_CHECK(tr_spawn(tr_runtime_ctx(rt), tt_counter, arg, sizeof(uint64_t), &pid) == 0);
    TT_CHECK(tr_send(tr_runtime_ctx(rt), pid, 1, NULL, 0) == 0);
}

static void create_hook_sees_simulated_runtimes(void)
{
    hooked = 0;
    uint64_t zero = 0;
    tr_sim_on_create(on_create, &zero);
    tr_runtime *plain = sim_runtime(0, NULL, 0); /* seed 0: not simulated */
    tr_runtime *rt = sim_runtime(10, "sched=uniform", 0);
    tr_sim_on_create(NULL, NULL);
    TT_EQ(hooked, 1); /* not for the runtime outside the simulation */
    TT_EQ(tr_runtime_run(rt), 0);
    tr_stats st;
    tr_runtime_stats(rt, &st);
    TT_EQ(st.messages_handled, 1);
    tr_runtime_destroy(rt);
    tr_runtime_destroy(plain);
    TT_NO_ERRORS();
}

static uint64_t seed_from_env(const char *value)
{
    setenv("TROUPE_SIM_SEED", value, 1);
    tr_config cfg;
    tr_config_init(&cfg);
    unsetenv("TROUPE_SIM_SEED");
    CU_ASSERT(cfg.sim_options == NULL);
    return cfg.sim_seed;
}

static void config_reads_the_seed(void)
{
    const char *was = getenv("TROUPE_SIM_SEED");
    char saved[64] = "";
    if (was != NULL)
        snprintf(saved, sizeof saved, "%s", was);
    TT_EQ(seed_from_env("42"), 42);
    CU_ASSERT(seed_from_env("0") == TR_SIM_ANY_SEED);
    TT_EQ(seed_from_env(""), 0);
    capture_begin();
    uint64_t bad = seed_from_env("12x");
    uint64_t negative = seed_from_env("-3");
    const char *err = capture_end(true);
    TT_EQ(bad, 0);
    TT_EQ(negative, 0);
    TT_EQ(occurrences(err, "is not a seed"), 2);
    tr_config cfg;
    tr_config_init(&cfg);
    TT_EQ(cfg.sim_seed, 0); /* unset */
    if (was != NULL)
        setenv("TROUPE_SIM_SEED", saved, 1);
}

/* ---- tr_call from the test thread: it runs the simulation itself ---- */

void sim_doubler(tr_ctx *cx, void *state, const tr_msg *m)
{
    (void)state;
    const uint64_t *v = TR_PAYLOAD(m, uint64_t);
    TT_CHECK(v != NULL);
    uint64_t twice = v != NULL ? 2 * *v : 0;
    TT_CHECK(tr_reply(cx, m, &twice, sizeof twice) == 0);
}

static void call_runs_the_simulation(void)
{
    tr_runtime *rt = sim_runtime(12, "sched=uniform", 0);
    tr_pid doubler, stopper;
    CU_ASSERT_FATAL(tr_spawn(tr_runtime_ctx(rt), sim_doubler, NULL, 0, &doubler) == 0);
    CU_ASSERT_FATAL(tr_spawn(tr_runtime_ctx(rt), sim_stopper, NULL, 0, &stopper) == 0);
    tr_msg *reply = NULL;
    uint64_t v = 21;
    /* Not started: nothing would run it. */
    TT_EQ(tr_call(rt, doubler, 1, &v, sizeof v, TR_SEC, &reply), TR_ENOTSTARTED);
    TT_EQ(tr_runtime_start(rt), 0);
    TT_EQ(tr_call(rt, doubler, 1, &v, sizeof v, TR_SEC, &reply), 0);
    CU_ASSERT_FATAL(reply != NULL);
    TT_EQ(tt_u64(reply), 42);
    tr_msg_free(reply);
    /* A run that stops before the answer: the call returns, and its actor
     * cleans up at the next run. */
    TT_EQ(tr_call(rt, stopper, 1, &v, sizeof v, TR_SEC, &reply), TR_ENOTSTARTED);
    CU_ASSERT(reply == NULL);
    TT_EQ(tr_runtime_join(rt), 1);
    TT_EQ(tr_runtime_run(rt), 0);
    /* ... or as the runtime is destroyed. */
    TT_EQ(tr_runtime_start(rt), 0);
    TT_EQ(tr_call(rt, stopper, 1, &v, sizeof v, TR_SEC, &reply), TR_ENOTSTARTED);
    TT_EQ(tr_runtime_join(rt), 1);
    tr_runtime_destroy(rt);
    TT_NO_ERRORS();
}

/* ---- faults, blocking, ends ---- */

static void spawn_fault_gives_enomem(void)
{
    /* Seed 1's draw switches the spawn site on, seed 2's off (each run's
     * options line says which). */
    tr_runtime *rt = sim_runtime(1, "faults=spawn,fault_p=1", 0);
    tr_pid pid;
    TT_EQ(tr_spawn(tr_runtime_ctx(rt), tt_counter, NULL, 0, &pid), TR_ENOMEM);
    uint64_t zero = 0;
    TT_EQ(tr_spawn(tr_runtime_ctx(rt), tt_counter, &zero, sizeof zero, &pid), TR_ENOMEM);
    tr_sim_stats st;
    tr_sim_stats_get(&st);
    TT_EQ(st.faults, 2);
    TT_EQ(tr_runtime_run(rt), 0);
    tr_runtime_destroy(rt);

    rt = sim_runtime(2, "faults=spawn,fault_p=1", 0);
    TT_EQ(tr_spawn(tr_runtime_ctx(rt), tt_counter, &zero, sizeof zero, &pid), 0);
    TT_EQ(tr_runtime_run(rt), 0);
    tr_runtime_destroy(rt);
}

/* Sleeps 100 ms of real time in each message. */
void sim_sleeper(tr_ctx *cx, void *state, const tr_msg *m)
{
    (void)cx;
    (void)state;
    (void)m;
    struct timespec ts = {0, 100 * 1000 * 1000};
    while (nanosleep(&ts, &ts) != 0)
        ;
}

static void blocking_behaviour_is_reported_once(void)
{
    tr_runtime *rt = sim_runtime(5, "sched=uniform", 1); /* one message a turn */
    tr_pid pid;
    CU_ASSERT_FATAL(tr_spawn(tr_runtime_ctx(rt), sim_sleeper, NULL, 0, &pid) == 0);
    TT_EQ(tr_send(tr_runtime_ctx(rt), pid, 1, NULL, 0), 0);
    TT_EQ(tr_send(tr_runtime_ctx(rt), pid, 1, NULL, 0), 0);
    capture_begin();
    int rc = tr_runtime_run(rt);
    const char *err = capture_end(true);
    tr_runtime_destroy(rt);
    TT_EQ(rc, 0);
    TT_EQ(occurrences(err, "troupe: simulation: behaviour sim_sleeper of pid"), 1);
    CU_ASSERT(strstr(err, "ms of real time: a blocking call") != NULL);
}

static void held_run_is_a_liveness_failure(void)
{
    tr_runtime *rt = sim_runtime(6, "sched=uniform", 0);
    TT_EQ(tr_runtime_hold(rt), 0);
    capture_begin();
    int rc = tr_runtime_run(rt);
    const char *err = capture_end(true);
    TT_EQ(rc, 1);
    CU_ASSERT(strstr(err, "troupe: simulation: liveness failure at t=") != NULL);
    CU_ASSERT(strstr(err, "(seed 6): nothing can happen and the run holds 1") != NULL);
    TT_EQ(tr_runtime_release(rt), 0);
    tr_runtime_destroy(rt);
}

static void time_limit_is_a_liveness_failure(void)
{
    tr_runtime *rt = sim_runtime(7, "sched=uniform,limit=2.05", 0);
    tr_pid target, timer;
    CU_ASSERT_FATAL(tr_spawn(tr_runtime_ctx(rt), tt_counter, &(uint64_t){0}, sizeof(uint64_t),
                             &target) == 0);
    tr_timer_spec spec = {.delay_ns = 100 * TR_MSEC, .period_ns = 100 * TR_MSEC, .to = target,
                          .type = 1};
    TT_EQ(tr_timer_start(tr_runtime_ctx(rt), &spec, &timer), 0);
    capture_begin();
    int rc = tr_runtime_run(rt);
    const char *err = capture_end(true);
    TT_EQ(rc, 1);
    /* The jump towards the 21st tick, at 2.1 s, stops just past the limit. */
    CU_ASSERT(strstr(err, "liveness failure at t=2.050s") != NULL);
    CU_ASSERT(strstr(err, "(seed 7): time limit reached") != NULL);
    tr_stats st;
    tr_runtime_stats(rt, &st);
    TT_EQ(st.messages_handled, 20); /* ticks at 0.1 .. 2.0 s */
    tr_runtime_destroy(rt);
}

/* TROUPE_SIM_CHECK=1: examples/hello runs twice with one seed, same hashes. */
static void check_mode_on_hello(void)
{
    setenv("TROUPE_SIM_SEED", "42", 1);
    setenv("TROUPE_SIM_CHECK", "1", 1);
    unsetenv("TROUPE_SIM");
    const char *const no_args[] = {NULL};
    int code;
    /* With stderr, where the hashes and the verdict go; hello's stdout has
     * neither. */
    char *out = tt_run_program("examples/hello", no_args, true, 60, &code);
    unsetenv("TROUPE_SIM_CHECK");
    unsetenv("TROUPE_SIM_SEED");
    TT_EQ(code, 0);
    CU_ASSERT(strstr(out, "seed=42: both runs gave the same trace hashes") != NULL);
    TT_EQ(occurrences(out, "trace hash="), 2);
    free(out);
}

/* ---- misuse: bad options, mixing, a second thread ---- */

static void bad_options_are_refused(void)
{
    static const char *const bad[] = {"limit=inf", "limit=1e11", "turn=1e30", "latency=5:1",
                                      "loss=2", "sched=fifo", "faults=disk", "buffer=-1",
                                      "depth=0", "nokey"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        tr_config cfg;
        tr_config_init(&cfg);
        cfg.sim_seed = 3;
        cfg.sim_options = bad[i];
        tr_runtime *rt = NULL;
        capture_begin();
        int err = tr_runtime_create(&cfg, &rt);
        const char *said = capture_end(false);
        CU_ASSERT(err == TR_EINVAL && rt == NULL);
        CU_ASSERT(strstr(said, "bad option") != NULL);
        CU_ASSERT(!tr__sim_on()); /* no simulation left begun */
        tr_runtime_destroy(rt);
    }
}

static void production_runtime_refused_during_a_simulation(void)
{
    tr_runtime *sim = sim_runtime(4, NULL, 0);
    tr_config cfg;
    tr_config_init(&cfg);
    cfg.sim_seed = 0;
    tr_runtime *rt = NULL;
    CU_ASSERT(tr_runtime_create(&cfg, &rt) == TR_EBUSY && rt == NULL);
    tr_runtime_destroy(sim);
    CU_ASSERT(!tr__sim_on());
    CU_ASSERT(tr_runtime_create(&cfg, &rt) == 0); /* the simulation is over */
    tr_runtime_destroy(rt);
}

/* A behaviour starts a thread that tries to join and to call while this
 * thread runs the simulation: both are refused, nothing runs twice. */
static tr_runtime *second_rt;
static int second_join, second_call;

static void *second_thread(void *arg)
{
    (void)arg;
    tr_msg *reply;
    second_join = tr_runtime_join(second_rt);
    second_call = tr_call(second_rt, TR_PID_NONE, 1, NULL, 0, TR_SEC, &reply);
    return NULL;
}

static void starts_second_thread(tr_ctx *cx, void *state, const tr_msg *m)
{
    (void)cx;
    (void)state;
    (void)m;
    pthread_t t;
    TT_CHECK(pthread_create(&t, NULL, second_thread, NULL) == 0);
    pthread_join(t, NULL);
}

static void second_thread_is_refused(void)
{
    second_rt = sim_runtime(6, NULL, 0);
    tr_pid pid;
    CU_ASSERT_FATAL(tr_spawn(tr_runtime_ctx(second_rt), starts_second_thread, NULL, 0, &pid) == 0);
    CU_ASSERT(tr_send(tr_runtime_ctx(second_rt), pid, 1, NULL, 0) == 0);
    CU_ASSERT(tr_runtime_run(second_rt) == 0);
    tr_runtime_destroy(second_rt);
    TT_NO_ERRORS();
    CU_ASSERT(second_join == TR_EBUSY);
    CU_ASSERT(second_call == TR_EBUSY);
}

/* ---- figures under simulation ----
 * Actors readied from outside go through the injection queue, stamped as
 * they enter it; the simulator takes them out of its array to run them,
 * which must end the wait: an hour of virtual time later their oldest
 * wait is the few microseconds they queued, not the hour. */

static void idle_actor(tr_ctx *cx, void *state, const tr_msg *m)
{
    (void)cx;
    (void)state;
    (void)m;
}

static void wait_figure_ends_when_the_simulator_runs_an_actor(void)
{
    tr_runtime *rt = sim_runtime(8, NULL, 0);
    tr_ctx *cx = tr_runtime_ctx(rt);
    tr_pid pids[10], later;
    for (int i = 0; i < 10; i++) {
        CU_ASSERT_FATAL(tr_spawn(cx, idle_actor, NULL, 0, &pids[i]) == 0);
        CU_ASSERT(tr_send(cx, pids[i], 1, NULL, 0) == 0);
    }
    CU_ASSERT_FATAL(tr_spawn(cx, idle_actor, NULL, 0, &later) == 0);
    CU_ASSERT(tr_send_after(cx, 3600 * TR_SEC, later, 1, NULL, 0) == 0);
    CU_ASSERT(tr_runtime_run(rt) == 0);
    tr_sim_stats st;
    tr_sim_stats_get(&st);
    CU_ASSERT(st.virtual_ns >= 3600 * TR_SEC);
    for (int i = 0; i < 10; i++) {
        tr_actor_figures f;
        CU_ASSERT_FATAL(tr_actor_info(rt, pids[i], &f) == 0);
        CU_ASSERT(f.handled == 1 && f.turns == 1);
        CU_ASSERT(f.oldest_wait_ns < TR_SEC);
    }
    tr_runtime_destroy(rt);
}

void register_sim_tests(void)
{
    CU_pSuite s = tt_suite("sim");
    tt_test(s, "config_reads_the_seed", config_reads_the_seed);
    tt_test(s, "same_seed_same_hash_uniform", same_seed_same_hash_uniform);
    tt_test(s, "same_seed_same_hash_pct", same_seed_same_hash_pct);
    tt_test(s, "hundred_seeds_uniform", hundred_seeds_uniform);
    tt_test(s, "hundred_seeds_pct", hundred_seeds_pct);
    tt_test(s, "supervisor_runs_virtual_hours", supervisor_runs_virtual_hours);
    tt_test(s, "timers_over_a_day_fire_once_each", timers_over_a_day_fire_once_each);
    tt_test(s, "timers_due_together_fire_in_seeded_order",
            timers_due_together_fire_in_seeded_order);
    tt_test(s, "late_timers_fault_stays_within_bound", late_timers_fault_stays_within_bound);
    tt_test(s, "started_runtimes_are_stepped_together", started_runtimes_are_stepped_together);
    tt_test(s, "stopped_runtime_waits_for_its_next_run", stopped_runtime_waits_for_its_next_run);
    tt_test(s, "create_hook_sees_simulated_runtimes", create_hook_sees_simulated_runtimes);
    tt_test(s, "call_runs_the_simulation", call_runs_the_simulation);
    tt_test(s, "spawn_fault_gives_enomem", spawn_fault_gives_enomem);
    tt_test(s, "blocking_behaviour_is_reported_once", blocking_behaviour_is_reported_once);
    tt_test(s, "held_run_is_a_liveness_failure", held_run_is_a_liveness_failure);
    tt_test(s, "time_limit_is_a_liveness_failure", time_limit_is_a_liveness_failure);
    tt_test(s, "check_mode_on_hello", check_mode_on_hello);
    tt_test(s, "bad_options_are_refused", bad_options_are_refused);
    tt_test(s, "production_runtime_refused_during_a_simulation",
            production_runtime_refused_during_a_simulation);
    tt_test(s, "second_thread_is_refused", second_thread_is_refused);
    tt_test(s, "wait_figure_ends_when_the_simulator_runs_an_actor",
            wait_figure_ends_when_the_simulator_runs_an_actor);
}
