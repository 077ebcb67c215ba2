/* test_on_stop.c — a spec's on_stop runs exactly once however the actor
 * ends: tr_stop, tr_exit, tr_kill, a linked exit, a supervisor's restart
 * and shutdown, tr_runtime_destroy while it is idle, before it ever ran,
 * with its messages queued behind blocked workers, and racing with kills
 * from another thread. Counted per actor (tests.h's counted actors), on
 * 2 and 4 workers. And the functions registered with tr_on_stop: each
 * once, last registered first, before the spec's on_stop and before the
 * actor's monitors hear of its end; misuse refused. */
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

/* ---- tr_on_stop: functions registered in a turn ----------------------------------
 *
 * Each actor registers one function in its init and more in its turns
 * (R_REG: n of them; R_REG_STOP: n, then tr_stop in the same turn), each
 * with its own argument, a malloc'd record that points at the actor's
 * state and that the function frees. When the actor ends — tr_stop,
 * tr_exit, tr_kill from outside, or tr_runtime_destroy while it is alive
 * — every function runs exactly once, last registered first (actor.h),
 * while the state is still there (half the states are on the heap: ASan
 * sees a late read), then the spec's on_stop, then its monitor hears of
 * the end. One clock (a shared counter) orders the three. */
#define N_REG 200
#define MAX_REG 10 /* 1 in init, up to 3 + 3, 2 more with R_REG_STOP */
#define REG_MAGIC 0x0b57u
#define REG_EXIT_REASON 21
#define REG_KILL_REASON 22

enum { R_REG = 0x7101, R_REG_STOP, R_STOP, R_EXIT, R_MISUSE, R_WATCH };

struct reg_state {
    uint32_t id, nreg, magic, big;
    unsigned char pad[]; /* 200 bytes more when big: the state is on the heap */
};

struct reg_arg {
    struct reg_state *st;
    uint32_t id, k;
};

static struct {
    atomic_uint clock;
    atomic_uint calls[N_REG][MAX_REG], at[N_REG][MAX_REG];
    atomic_uint nreg[N_REG];
    atomic_uint spec_stops[N_REG], spec_at[N_REG];
    atomic_int spec_reason[N_REG];
    atomic_uint downs[N_REG], down_at[N_REG];
    atomic_int down_reason[N_REG];
    atomic_int misuse[4];
    _Atomic tr_pid pid[N_REG];
} R;

static void reg_ran(void *arg)
{
    struct reg_arg *a = arg;
    unsigned now = atomic_fetch_add(&R.clock, 1) + 1;
    TT_CHECK(a->id < N_REG && a->k < MAX_REG);
    TT_CHECK(a->st->id == a->id && a->st->magic == REG_MAGIC); /* the state is still there */
    if (a->id < N_REG && a->k < MAX_REG) {
        atomic_fetch_add(&R.calls[a->id][a->k], 1);
        atomic_store(&R.at[a->id][a->k], now);
    }
    free(a);
}

static void reg_some(tr_ctx *cx, struct reg_state *st, uint32_t n)
{
    for (uint32_t i = 0; i < n && st->nreg < MAX_REG; i++) {
        struct reg_arg *a = malloc(sizeof *a);
        TT_CHECK(a != NULL);
        if (a == NULL)
            return;
        *a = (struct reg_arg){st, st->id, st->nreg};
        int rc = tr_on_stop(cx, reg_ran, a);
        TT_CHECK(rc == 0);
        if (rc != 0) {
            free(a);
            return;
        }
        st->nreg++;
        atomic_store(&R.nreg[st->id], st->nreg);
    }
}

static int reg_init(tr_ctx *cx, void *state, tr_pid spawner)
{
    (void)spawner;
    struct reg_state *st = state;
    st->magic = REG_MAGIC;
    reg_some(cx, st, 1);
    return 0;
}

static void reg_spec_stop(void *state, int reason)
{
    struct reg_state *st = state;
    unsigned now = atomic_fetch_add(&R.clock, 1) + 1;
    TT_CHECK(st->id < N_REG);
    if (st->id < N_REG) {
        atomic_fetch_add(&R.spec_stops[st->id], 1);
        atomic_store(&R.spec_at[st->id], now);
        atomic_store(&R.spec_reason[st->id], reason);
    }
}

static void reg_actor(tr_ctx *cx, void *state, const tr_msg *m)
{
    struct reg_state *st = state;
    TT_CHECK(st->magic == REG_MAGIC);
    switch (m->type) {
    case R_REG:
        reg_some(cx, st, (uint32_t)tt_u64(m));
        break;
    case R_REG_STOP:
        reg_some(cx, st, (uint32_t)tt_u64(m));
        tr_stop(cx);
        break;
    case R_STOP:
        tr_stop(cx);
        break;
    case R_EXIT:
        tr_exit(cx, REG_EXIT_REASON, "test exit");
        break;
    case R_MISUSE: {
        /* Refused, registering nothing: no context, no function. */
        struct reg_arg *a = malloc(sizeof *a);
        TT_CHECK(a != NULL);
        atomic_store(&R.misuse[0], tr_on_stop(NULL, reg_ran, a));
        atomic_store(&R.misuse[1], tr_on_stop(cx, NULL, a));
        free(a);
        break;
    }
    default:
        TT_CHECK(!"reg_actor: unexpected message");
        break;
    }
}

/* Monitors the pids it is sent (R_WATCH: u64 id, pid) and records each
 * TR_DOWN on the clock. */
struct watcher {
    tr_pid pid[N_REG];
};

static void reg_watcher(tr_ctx *cx, void *state, const tr_msg *m)
{
    struct watcher *w = state;
    if (m->type == R_WATCH) {
        uint64_t v[2];
        TT_CHECK(m->len == sizeof v);
        memcpy(v, m->data, sizeof v);
        if (v[0] < N_REG) {
            w->pid[v[0]] = (tr_pid)v[1];
            TT_CHECK(tr_monitor(cx, (tr_pid)v[1], NULL) == 0);
        }
        return;
    }
    TT_CHECK(m->type == TR_DOWN);
    if (m->type != TR_DOWN)
        return;
    unsigned now = atomic_fetch_add(&R.clock, 1) + 1;
    const tr_down_info *d = (const tr_down_info *)m->data;
    for (uint32_t i = 0; i < N_REG; i++) {
        if (w->pid[i] == d->pid) {
            atomic_fetch_add(&R.downs[i], 1);
            atomic_store(&R.down_at[i], now);
            atomic_store(&R.down_reason[i], d->reason);
            return;
        }
    }
    TT_CHECK(!"reg_watcher: a DOWN for no actor it watched");
}

enum reg_way { RW_STOP, RW_REG_STOP, RW_EXIT, RW_KILL, RW_DESTROY };

static void send_u64(tr_runtime *rt, tr_pid to, uint32_t type, uint64_t v)
{
    TT_EQ(tr_send(tr_runtime_ctx(rt), to, type, &v, sizeof v), 0);
}

static void on_stop_registered(enum reg_way way)
{
    memset(&R, 0, sizeof R);
    tr_runtime *rt = tt_runtime(2, 0);
    struct watcher *w = calloc(1, sizeof *w);
    CU_ASSERT_FATAL(w != NULL);
    tr_pid watcher;
    TT_EQ(tr_spawn(tr_runtime_ctx(rt), reg_watcher, w, sizeof *w, &watcher), 0);
    free(w); /* copied */
    unsigned char buf[sizeof(struct reg_state) + 200];
    for (uint32_t i = 0; i < N_REG; i++) {
        struct reg_state *st = (struct reg_state *)buf;
        memset(buf, 0, sizeof buf);
        st->id = i;
        st->big = i % 2;
        tr_actor_spec spec = {.behaviour = reg_actor, .state = buf,
                              .state_size = st->big ? sizeof buf : sizeof *st,
                              .init = reg_init, .on_stop = reg_spec_stop};
        tr_pid p = TR_PID_NONE;
        TT_EQ(tr_spawn_spec(tr_runtime_ctx(rt), &spec, &p), 0);
        atomic_store(&R.pid[i], p);
        uint64_t watch[2] = {i, p};
        TT_EQ(tr_send(tr_runtime_ctx(rt), watcher, R_WATCH, watch, sizeof watch), 0);
        send_u64(rt, p, R_REG, i % 4);     /* 0 to 3 ... */
        send_u64(rt, p, R_REG, 1 + i % 3); /* ... then 1 to 3 more */
    }
    TT_EQ(tr_runtime_run(rt), 0);
    unsigned ran = 0;
    for (uint32_t i = 0; i < N_REG; i++)
        for (uint32_t k = 0; k < MAX_REG; k++)
            ran += atomic_load(&R.calls[i][k]);
    TT_EQ(ran, 0); /* all alive: nothing ran yet */

    int want = TR_EXIT_NORMAL;
    for (uint32_t i = 0; i < N_REG; i++) {
        tr_pid p = atomic_load(&R.pid[i]);
        switch (way) {
        case RW_STOP:
            send_u64(rt, p, R_STOP, 0);
            break;
        case RW_REG_STOP:
            send_u64(rt, p, R_REG_STOP, 2);
            break;
        case RW_EXIT:
            send_u64(rt, p, R_EXIT, 0);
            want = REG_EXIT_REASON;
            break;
        case RW_KILL:
            TT_EQ(tr_kill(tr_runtime_ctx(rt), p, REG_KILL_REASON), 0);
            want = REG_KILL_REASON;
            break;
        case RW_DESTROY:
            want = TR_EXIT_SHUTDOWN;
            break;
        }
    }
    if (way != RW_DESTROY)
        TT_EQ(tr_runtime_run(rt), 0);
    tr_runtime_destroy(rt);

    unsigned bad_calls = 0, bad_order = 0, bad_spec = 0, bad_down = 0, bad_n = 0;
    for (uint32_t i = 0; i < N_REG; i++) {
        uint32_t n = atomic_load(&R.nreg[i]);
        uint32_t want_n = 1 + i % 4 + 1 + i % 3 + (way == RW_REG_STOP ? 2 : 0);
        bad_n += n != want_n;
        unsigned spec_at = atomic_load(&R.spec_at[i]);
        for (uint32_t k = 0; k < n && k < MAX_REG; k++) {
            bad_calls += atomic_load(&R.calls[i][k]) != 1;
            /* Last registered first; all before the spec's on_stop. */
            if (k + 1 < n)
                bad_order += atomic_load(&R.at[i][k]) <= atomic_load(&R.at[i][k + 1]);
            bad_order += atomic_load(&R.at[i][k]) >= spec_at;
        }
        bad_spec += atomic_load(&R.spec_stops[i]) != 1 || atomic_load(&R.spec_reason[i]) != want;
        if (way == RW_DESTROY) /* the watcher went in the same destroy */
            bad_down += atomic_load(&R.downs[i]) != 0;
        else
            bad_down += atomic_load(&R.downs[i]) != 1 ||
                        atomic_load(&R.down_reason[i]) != want ||
                        atomic_load(&R.down_at[i]) <= spec_at;
    }
    TT_EQ(bad_n, 0);
    TT_EQ(bad_calls, 0);
    TT_EQ(bad_order, 0);
    TT_EQ(bad_spec, 0);
    TT_EQ(bad_down, 0);
    TT_NO_ERRORS();
}

static void test_on_stop_registered_stop(void)
{
    on_stop_registered(RW_STOP);
    on_stop_registered(RW_REG_STOP);
}

static void test_on_stop_registered_exit(void)
{
    on_stop_registered(RW_EXIT);
}

static void test_on_stop_registered_kill(void)
{
    on_stop_registered(RW_KILL);
}

static void test_on_stop_registered_destroy(void)
{
    on_stop_registered(RW_DESTROY);
}

/* tr_on_stop outside a behaviour's turn, with no context, or with no
 * function: TR_EINVAL, and nothing is registered (the actor that tried
 * ends with only its init's function run). */
static void test_on_stop_registered_misuse(void)
{
    memset(&R, 0, sizeof R);
    int dummy = 0;
    TT_EQ(tr_on_stop(NULL, reg_ran, &dummy), TR_EINVAL);
    tr_runtime *rt = tt_runtime(2, 0);
    TT_EQ(tr_on_stop(tr_runtime_ctx(rt), reg_ran, &dummy), TR_EINVAL); /* the outside */
    struct reg_state st = {.id = 0};
    tr_actor_spec spec = {.behaviour = reg_actor, .state = &st, .state_size = sizeof st,
                          .init = reg_init, .on_stop = reg_spec_stop};
    tr_pid p = TR_PID_NONE;
    TT_EQ(tr_spawn_spec(tr_runtime_ctx(rt), &spec, &p), 0);
    atomic_store(&R.misuse[0], 1);
    atomic_store(&R.misuse[1], 1);
    send_u64(rt, p, R_MISUSE, 0);
    send_u64(rt, p, R_STOP, 0);
    TT_EQ(tr_runtime_run(rt), 0);
    TT_EQ(atomic_load(&R.misuse[0]), TR_EINVAL);
    TT_EQ(atomic_load(&R.misuse[1]), TR_EINVAL);
    TT_EQ(atomic_load(&R.nreg[0]), 1);
    TT_EQ(atomic_load(&R.calls[0][0]), 1);
    TT_EQ(atomic_load(&R.spec_stops[0]), 1);
    TT_EQ(atomic_load(&R.clock), 2); /* init's function, the spec's on_stop: nothing else */
    tr_runtime_destroy(rt);
    TT_NO_ERRORS();
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
    tt_test(s, "tr_on_stop: each once, last first, at tr_stop", test_on_stop_registered_stop);
    tt_test(s, "tr_on_stop: each once, last first, at tr_exit", test_on_stop_registered_exit);
    tt_test(s, "tr_on_stop: each once, last first, at tr_kill", test_on_stop_registered_kill);
    tt_test(s, "tr_on_stop: each once, last first, at destroy", test_on_stop_registered_destroy);
    tt_test(s, "tr_on_stop: misuse is einval and registers nothing",
            test_on_stop_registered_misuse);
}
