/* test_spec.c — actor specs (troupe/actor.h tr_actor_spec): init before
 * any message, on_stop exactly once however an actor ends, spawn with a
 * name that is atomic, tr_spawn_monitor, and specs in supervisors and
 * socket actors.
 *
 * Every actor here carries an id in its state; init and on_stop count
 * their calls per id with atomics, so a test checks each actor's count —
 * exactly one, or none — after the runtime has finished, never a time. */
#include "tests.h"

#include <stdlib.h>
#include <string.h>

enum { M_PING = 1, M_STOP, M_EXIT, M_LINK, M_GO };

#define MAGIC 0x5eedu
#define EXIT_REASON 5
#define KILL_REASON 13
#define INIT_FAIL 7
#define MAXA 8192

/* Actor flags. */
#define F_BIG 1u       /* state past TR_STATE_INLINE: on the heap */
#define F_INIT_FAIL 2u /* init returns INIT_FAIL */
#define F_NO_INIT 4u   /* spec without init (the state starts with MAGIC) */

struct sa {
    uint32_t id;
    uint32_t magic; /* MAGIC once init has run */
    uint32_t flags;
    uint32_t spare;
};

struct big {
    struct sa s; /* first: callbacks see a struct sa either way */
    unsigned char pad[200];
};

static struct {
    atomic_uint inits[MAXA], stops[MAXA];
    atomic_int reason[MAXA];
    _Atomic tr_pid spawner[MAXA], pid[MAXA];
    atomic_ulong seen, stops_total;
} g;

static void reset(void)
{
    memset(&g, 0, sizeof g);
}

static int sa_init(tr_ctx *cx, void *state, tr_pid spawner)
{
    struct sa *st = state;
    TT_CHECK(st->id < MAXA);
    TT_CHECK(st->magic == 0);
    tr_pid known = atomic_load(&g.pid[st->id]); /* NONE: spawn has not returned yet */
    TT_CHECK(known == TR_PID_NONE || known == tr_self(cx));
    st->magic = MAGIC;
    atomic_fetch_add(&g.inits[st->id], 1);
    atomic_store(&g.spawner[st->id], spawner);
    return (st->flags & F_INIT_FAIL) ? INIT_FAIL : 0;
}

static void sa_on_stop(void *state, int reason)
{
    struct sa *st = state;
    TT_CHECK(st->id < MAXA);
    atomic_fetch_add(&g.stops[st->id], 1);
    atomic_store(&g.reason[st->id], reason);
    atomic_fetch_add(&g.stops_total, 1);
}

static tr_actor_spec make_spec(struct big *b, uint32_t id, uint32_t flags, const char *name);

static void sa_behaviour(tr_ctx *cx, void *state, const tr_msg *m)
{
    struct sa *st = state;
    TT_CHECK(st->magic == MAGIC);
    TT_CHECK(!(st->flags & F_INIT_FAIL));
    atomic_fetch_add(&g.seen, 1);
    switch (m->type) {
    case M_PING:
        break;
    case M_STOP:
        tr_stop(cx);
        break;
    case M_EXIT:
        tr_exit(cx, EXIT_REASON, "test exit");
        break;
    case M_LINK: { /* spawn a follower linked to us, id in the payload */
        struct big b;
        tr_actor_spec spec = make_spec(&b, (uint32_t)tt_u64(m), st->flags, NULL);
        TT_CHECK(tr_spawn_link_spec(cx, &spec, NULL) == 0);
        break;
    }
    default:
        TT_CHECK(!"sa: unexpected message");
        break;
    }
}

static tr_actor_spec make_spec(struct big *b, uint32_t id, uint32_t flags, const char *name)
{
    memset(b, 0, sizeof *b);
    b->s.id = id;
    b->s.flags = flags;
    if (flags & F_NO_INIT)
        b->s.magic = MAGIC;
    return (tr_actor_spec){.behaviour = sa_behaviour,
                           .state = b,
                           .state_size = (flags & F_BIG) ? sizeof *b : sizeof b->s,
                           .init = (flags & F_NO_INIT) ? NULL : sa_init,
                           .on_stop = sa_on_stop,
                           .name = name};
}

static tr_pid spawn_out(tr_runtime *rt, uint32_t id, uint32_t flags, const char *name)
{
    struct big b;
    tr_actor_spec spec = make_spec(&b, id, flags, name);
    tr_pid pid = TR_PID_NONE;
    TT_EQ(tr_runtime_spawn_spec(rt, &spec, &pid), 0);
    atomic_store(&g.pid[id], pid);
    return pid;
}

static void send0(tr_runtime *rt, tr_pid to, uint32_t type)
{
    TT_EQ(tr_runtime_send(rt, to, type, NULL, 0), 0);
}

static void run_quiet(tr_runtime *rt)
{
    TT_EQ(tr_runtime_run(rt), 0);
}

#define ANY_INITS UINT32_MAX

/* Each of ids [from, to) had init `inits` times (or any number: ANY_INITS)
 * and on_stop once, with reason `reason` (any reason: INT32_MIN). */
static void check_ended(uint32_t from, uint32_t to, unsigned inits, int reason)
{
    unsigned bad_inits = 0, bad_stops = 0, bad_reasons = 0;
    for (uint32_t i = from; i < to; i++) {
        bad_inits += inits != ANY_INITS && atomic_load(&g.inits[i]) != inits;
        bad_stops += atomic_load(&g.stops[i]) != 1;
        bad_reasons += reason != INT32_MIN && atomic_load(&g.reason[i]) != reason;
    }
    TT_EQ(bad_inits, 0);
    TT_EQ(bad_stops, 0);
    TT_EQ(bad_reasons, 0);
}

/* ---- init ------------------------------------------------------------------------ */

#define N_INIT 2000
#define K_PINGS 8

/* Messages sent the moment spawn returns — through the pid, or through
 * the name for named actors — all find init's work done; init runs once
 * and is told who spawned the actor. */
static void init_before_messages(unsigned threads)
{
    reset();
    tr_runtime *rt = tt_runtime(threads, 0);
    TT_EQ(tr_runtime_hold(rt), 0); /* first: an empty runtime would finish at once */
    TT_EQ(tr_runtime_start(rt), 0);
    for (uint32_t i = 0; i < N_INIT; i++) {
        char name[32];
        snprintf(name, sizeof name, "init-%u", (unsigned)i);
        bool named = i % 2 == 0;
        tr_pid p = spawn_out(rt, i, i % 3 == 0 ? F_BIG : 0, named ? name : NULL);
        tr_pid to = named ? tr_whereis(rt, name) : p;
        TT_EQ(to, p);
        for (int k = 0; k < K_PINGS; k++)
            send0(rt, to, M_PING);
        send0(rt, to, M_STOP);
    }
    TT_EQ(tr_runtime_release(rt), 0);
    TT_EQ(tt_join_within(rt, 120), 0);
    TT_EQ(atomic_load(&g.seen), (unsigned long)N_INIT * (K_PINGS + 1));
    check_ended(0, N_INIT, 1, TR_EXIT_NORMAL);
    unsigned wrong_spawner = 0;
    for (uint32_t i = 0; i < N_INIT; i++)
        wrong_spawner += atomic_load(&g.spawner[i]) != TR_PID_NONE;
    TT_EQ(wrong_spawner, 0);
    tr_runtime_destroy(rt);
    TT_EQ(atomic_load(&g.stops_total), N_INIT); /* destroy ran none again */
    TT_NO_ERRORS();
}

static void test_init_before_messages(void)
{
    init_before_messages(2);
    init_before_messages(4);
}

/* A parent spawns children from its turn and sends to them at once: init
 * runs first, and its spawner is the parent. */
static void parent_spawner(tr_ctx *cx, void *state, const tr_msg *m)
{
    uint32_t n = *(uint32_t *)state;
    TT_CHECK(m->type == M_GO);
    for (uint32_t i = 1; i <= n; i++) {
        struct big b;
        tr_actor_spec spec = make_spec(&b, i, i % 2 ? F_BIG : 0, NULL);
        tr_pid p;
        TT_CHECK(tr_spawn_spec(cx, &spec, &p) == 0);
        atomic_store(&g.pid[i], p);
        for (int k = 0; k < K_PINGS; k++)
            TT_CHECK(tr_send(cx, p, M_PING, NULL, 0) == 0);
        TT_CHECK(tr_send(cx, p, M_STOP, NULL, 0) == 0);
    }
}

static void test_init_spawner(void)
{
    reset();
    tr_runtime *rt = tt_runtime(4, 0);
    uint32_t n = 1000;
    tr_pid parent;
    TT_EQ(tr_runtime_spawn(rt, parent_spawner, &n, sizeof n, &parent), 0);
    send0(rt, parent, M_GO);
    run_quiet(rt);
    check_ended(1, n + 1, 1, TR_EXIT_NORMAL);
    unsigned wrong_spawner = 0;
    for (uint32_t i = 1; i <= n; i++)
        wrong_spawner += atomic_load(&g.spawner[i]) != parent;
    TT_EQ(wrong_spawner, 0);
    TT_EQ(atomic_load(&g.seen), (unsigned long)n * (K_PINGS + 1));
    tr_runtime_destroy(rt);
    TT_NO_ERRORS();
}

/* init runs even if no message ever comes. */
static void test_init_without_messages(void)
{
    reset();
    tr_runtime *rt = tt_runtime(2, 0);
    for (uint32_t i = 0; i < 500; i++)
        spawn_out(rt, i, 0, NULL);
    run_quiet(rt);
    unsigned missing = 0;
    for (uint32_t i = 0; i < 500; i++)
        missing += atomic_load(&g.inits[i]) != 1 || atomic_load(&g.stops[i]) != 0;
    TT_EQ(missing, 0);
    TT_EQ(atomic_load(&g.seen), 0);
    tr_runtime_destroy(rt);
    check_ended(0, 500, 1, TR_EXIT_SHUTDOWN);
    TT_NO_ERRORS();
}

/* ---- init that fails, tr_spawn_monitor --------------------------------------------- */

#define N_WATCHED 300

struct watcher {
    uint64_t ref[N_WATCHED + 1];
    tr_pid pid[N_WATCHED + 1];
    uint32_t flags;
    uint32_t downs, exits, dropped;
    uint64_t flushed_ref;
};

static struct watcher *W;

static uint32_t watched_id(struct watcher *w, tr_pid pid)
{
    for (uint32_t i = 1; i <= N_WATCHED; i++)
        if (w->pid[i] == pid)
            return i;
    return 0;
}

/* On M_GO: children 1..N_WATCHED by tr_spawn_monitor (one demonitored at
 * once), each sent a ping and, unless its init fails, M_EXIT. TR_DOWN must
 * carry the ref spawn gave, the child's reason, and come after its
 * on_stop. */
static void watcher_behaviour(tr_ctx *cx, void *state, const tr_msg *m)
{
    struct watcher *w = W;
    (void)state;
    switch (m->type) {
    case M_GO:
        for (uint32_t i = 1; i <= N_WATCHED; i++) {
            struct big b;
            tr_actor_spec spec = make_spec(&b, i, w->flags | (i % 4 == 0 ? F_BIG : 0), NULL);
            TT_CHECK(tr_spawn_monitor(cx, &spec, &w->pid[i], &w->ref[i]) == 0);
            atomic_store(&g.pid[i], w->pid[i]);
            TT_CHECK(tr_send(cx, w->pid[i], M_PING, NULL, 0) == 0);
            TT_CHECK(tr_send(cx, w->pid[i], M_EXIT, NULL, 0) == 0);
        }
        for (uint32_t i = 1; i < N_WATCHED; i++)
            TT_CHECK(w->ref[i] != w->ref[i + 1]);
        TT_CHECK(tr_demonitor(cx, w->ref[N_WATCHED]) == 0);
        w->flushed_ref = w->ref[N_WATCHED];
        break;
    case TR_DOWN: {
        const tr_down_info *d = (const tr_down_info *)m->data;
        uint32_t i = watched_id(w, d->pid);
        TT_CHECK(i != 0);
        TT_CHECK(d->ref == w->ref[i]);
        TT_CHECK(d->ref != w->flushed_ref);
        TT_CHECK(d->reason == ((w->flags & F_INIT_FAIL) ? INIT_FAIL : EXIT_REASON));
        if (w->flags & F_INIT_FAIL)
            TT_CHECK(strcmp(d->text, "init failed") == 0);
        TT_CHECK(atomic_load(&g.stops[i]) == 1); /* on_stop came first */
        w->downs++;
        break;
    }
    default:
        TT_CHECK(!"watcher: unexpected message");
        break;
    }
}

static void spawn_monitor_run(uint32_t flags)
{
    reset();
    struct watcher *w = calloc(1, sizeof *w);
    CU_ASSERT_FATAL(w != NULL);
    W = w;
    w->flags = flags;
    tr_runtime *rt = tt_runtime(4, 0);
    tr_pid wp;
    TT_EQ(tr_runtime_spawn(rt, watcher_behaviour, NULL, 0, &wp), 0);
    send0(rt, wp, M_GO);
    run_quiet(rt);
    TT_EQ(w->downs, N_WATCHED - 1); /* the demonitored one was flushed */
    check_ended(1, N_WATCHED + 1, 1, (flags & F_INIT_FAIL) ? INIT_FAIL : EXIT_REASON);
    /* A failed init: the behaviour never ran (sa_behaviour checks), and
     * nothing was handled but by the others. */
    TT_EQ(atomic_load(&g.seen), (flags & F_INIT_FAIL) ? 0 : 2ul * N_WATCHED);
    tr_runtime_destroy(rt);
    free(w);
    TT_NO_ERRORS();
}

static void test_spawn_monitor(void)
{
    spawn_monitor_run(0);
}

static void test_init_failure_reported(void)
{
    spawn_monitor_run(F_INIT_FAIL);
}

/* A linked parent that traps exits sees a failed init as TR_EXIT. */
static void trapper(tr_ctx *cx, void *state, const tr_msg *m)
{
    uint32_t *exits = state;
    if (m->type == M_GO) {
        tr_trap_exits(cx, true);
        for (uint32_t i = 1; i <= 100; i++) {
            struct big b;
            tr_actor_spec spec = make_spec(&b, i, F_INIT_FAIL, NULL);
            tr_pid p;
            TT_CHECK(tr_spawn_link_spec(cx, &spec, &p) == 0);
            atomic_store(&g.pid[i], p);
        }
    } else if (m->type == TR_EXIT) {
        const tr_exit_info *e = (const tr_exit_info *)m->data;
        TT_CHECK(e->reason == INIT_FAIL);
        if (++*exits == 100)
            tr_stop(cx);
    } else {
        TT_CHECK(!"trapper: unexpected message");
    }
}

static void test_init_failure_linked(void)
{
    reset();
    tr_runtime *rt = tt_runtime(2, 0);
    uint32_t exits = 0;
    tr_pid t;
    TT_EQ(tr_runtime_spawn(rt, trapper, &exits, sizeof exits, &t), 0);
    send0(rt, t, M_GO);
    run_quiet(rt);
    check_ended(1, 101, 1, INIT_FAIL);
    tr_stats s;
    tr_runtime_stats(rt, &s);
    TT_EQ(s.actors_alive, 0); /* the trapper stopped after the 100th TR_EXIT */
    tr_runtime_destroy(rt);
    TT_NO_ERRORS();
}

/* ---- on_stop exactly once, each way an actor ends ----------------------------------- */

#define N_WAY 1000

enum way { W_STOP, W_EXIT, W_KILL, W_LINKED, W_DESTROY_IDLE, W_NEVER_RAN };

static void on_stop_way(enum way way, unsigned threads)
{
    reset();
    tr_runtime *rt = tt_runtime(threads, 0);
    uint32_t n = N_WAY;
    for (uint32_t i = 0; i < n; i++) {
        uint32_t flags = i % 5 == 0 ? F_BIG : 0;
        if (i % 7 == 0)
            flags |= F_NO_INIT;
        tr_pid p = spawn_out(rt, i, flags, NULL);
        switch (way) {
        case W_STOP:
            send0(rt, p, M_PING);
            send0(rt, p, M_STOP);
            break;
        case W_EXIT:
            send0(rt, p, M_EXIT);
            break;
        case W_KILL:
            send0(rt, p, M_PING);
            TT_EQ(tr_runtime_kill(rt, p, i % 2 ? TR_EXIT_KILL : KILL_REASON), 0);
            break;
        case W_LINKED: { /* a follower N_WAY + i, then the leader fails */
            uint64_t follower = N_WAY + i;
            TT_EQ(tr_runtime_send(rt, p, M_LINK, &follower, sizeof follower), 0);
            send0(rt, p, M_EXIT);
            break;
        }
        case W_DESTROY_IDLE:
            send0(rt, p, M_PING);
            break;
        case W_NEVER_RAN:
            break;
        }
    }
    if (way != W_NEVER_RAN)
        run_quiet(rt);
    if (way >= W_DESTROY_IDLE) {
        TT_EQ(atomic_load(&g.stops_total), 0);
        tr_runtime_destroy(rt);
        rt = NULL;
    }
    unsigned wrong = 0;
    switch (way) {
    case W_STOP:
        check_ended(0, n, ANY_INITS, TR_EXIT_NORMAL); /* inits checked below */
        break;
    case W_EXIT:
        check_ended(0, n, ANY_INITS, EXIT_REASON);
        break;
    case W_KILL:
        check_ended(0, n, ANY_INITS, INT32_MIN);
        for (uint32_t i = 0; i < n; i++)
            wrong += atomic_load(&g.reason[i]) != (i % 2 ? TR_EXIT_KILLED : KILL_REASON);
        break;
    case W_LINKED:
        check_ended(0, 2 * n, ANY_INITS, EXIT_REASON); /* the followers by the link */
        break;
    case W_DESTROY_IDLE:
    case W_NEVER_RAN:
        check_ended(0, n, ANY_INITS, TR_EXIT_SHUTDOWN);
        break;
    }
    TT_EQ(wrong, 0);
    /* init: once for each actor with one, except those that never ran. */
    unsigned bad_inits = 0;
    for (uint32_t i = 0; i < (way == W_LINKED ? 2 * n : n); i++) {
        bool has_init = (i % N_WAY) % 7 != 0;
        unsigned want = has_init && way != W_NEVER_RAN ? 1 : 0;
        bad_inits += atomic_load(&g.inits[i]) != want;
    }
    TT_EQ(bad_inits, 0);
    if (rt != NULL) {
        tr_stats s;
        tr_runtime_stats(rt, &s);
        TT_EQ(s.actors_alive, 0);
        tr_runtime_destroy(rt);
    }
    TT_EQ(atomic_load(&g.stops_total), way == W_LINKED ? 2 * n : n); /* none twice */
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
    reset();
    tr_runtime *rt = tt_runtime(4, 0);
    tr_pid sups[N_SUPS];
    for (uint32_t s = 0; s < N_SUPS; s++) {
        struct big b[N_KIDS];
        tr_child_spec kids[N_KIDS];
        char names[N_KIDS][32];
        for (uint32_t k = 0; k < N_KIDS; k++) {
            uint32_t id = s * N_KIDS + k;
            snprintf(names[k], sizeof names[k], "kid-%u", (unsigned)id);
            kids[k] = (tr_child_spec){.actor = make_spec(&b[k], id, k % 2 ? F_BIG : 0, names[k]),
                                      .restart = TR_PERMANENT};
        }
        tr_supervisor_spec spec = {.strategy = TR_ONE_FOR_ONE, .max_restarts = 5,
                                   .period_ns = 60 * TR_SEC, .children = kids,
                                   .nchildren = N_KIDS};
        TT_EQ(tr_runtime_supervisor_start(rt, &spec, &sups[s]), 0);
    }
    run_quiet(rt);
    unsigned bad = 0;
    for (uint32_t id = 0; id < N_SUPS * N_KIDS; id++)
        bad += atomic_load(&g.inits[id]) != 1 || atomic_load(&g.stops[id]) != 0;
    TT_EQ(bad, 0);

    /* Kid 0 of each tree fails; it comes back under its name. */
    tr_pid before[N_SUPS];
    for (uint32_t s = 0; s < N_SUPS; s++) {
        char name[32];
        snprintf(name, sizeof name, "kid-%u", (unsigned)(s * N_KIDS));
        before[s] = tr_whereis(rt, name);
        CU_ASSERT_FATAL(before[s] != TR_PID_NONE);
        send0(rt, before[s], M_EXIT);
    }
    run_quiet(rt);
    for (uint32_t s = 0; s < N_SUPS; s++) {
        char name[32];
        snprintf(name, sizeof name, "kid-%u", (unsigned)(s * N_KIDS));
        tr_pid after = tr_whereis(rt, name);
        CU_ASSERT(after != TR_PID_NONE && after != before[s]);
        uint32_t id = s * N_KIDS;
        TT_EQ(atomic_load(&g.inits[id]), 2);
        TT_EQ(atomic_load(&g.stops[id]), 1);
        TT_EQ(atomic_load(&g.reason[id]), EXIT_REASON);
        TT_EQ(atomic_load(&g.spawner[id]), sups[s]);
    }

    for (uint32_t s = 0; s < N_SUPS; s++)
        TT_EQ(tr_runtime_kill(rt, sups[s], TR_EXIT_SHUTDOWN), 0);
    run_quiet(rt);
    bad = 0;
    for (uint32_t id = 0; id < N_SUPS * N_KIDS; id++) {
        unsigned incarnations = id % N_KIDS == 0 ? 2 : 1;
        bad += atomic_load(&g.inits[id]) != incarnations;
        bad += atomic_load(&g.stops[id]) != incarnations;
        bad += atomic_load(&g.reason[id]) != TR_EXIT_SHUTDOWN;
    }
    TT_EQ(bad, 0);
    TT_EQ(atomic_load(&g.stops_total), N_SUPS * (N_KIDS + 1));
    tr_stats st;
    tr_runtime_stats(rt, &st);
    TT_EQ(st.actors_alive, 0);
    tr_runtime_destroy(rt);
    TT_EQ(atomic_load(&g.stops_total), N_SUPS * (N_KIDS + 1));
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
        TT_CHECK(tr_runtime_kill(r->rt, atomic_load(&g.pid[i]), TR_EXIT_KILL) == 0);
    return NULL;
}

static void on_stop_race(unsigned threads)
{
    reset();
    struct race r = {.rt = tt_runtime(threads, 0)};
    TT_EQ(tr_runtime_hold(r.rt), 0);
    TT_EQ(tr_runtime_start(r.rt), 0);
    for (uint32_t i = 0; i < N_RACE; i++)
        spawn_out(r.rt, i, i % 3 == 0 ? F_BIG : 0, NULL);
    pthread_t killer = tt_thread(killer_main, &r);
    atomic_store(&r.go, true);
    for (uint32_t i = 0; i < N_RACE; i++) {
        tr_pid p = atomic_load(&g.pid[i]);
        for (int k = 0; k < 20; k++)
            send0(r.rt, p, M_PING);
        send0(r.rt, p, M_STOP);
    }
    tt_join(killer);
    tr_runtime_destroy(r.rt); /* while running, with messages queued */
    unsigned bad = 0;
    for (uint32_t i = 0; i < N_RACE; i++) {
        int why = atomic_load(&g.reason[i]);
        bad += atomic_load(&g.stops[i]) != 1;
        bad += atomic_load(&g.inits[i]) > 1;
        bad += why != TR_EXIT_NORMAL && why != TR_EXIT_KILLED && why != TR_EXIT_SHUTDOWN;
    }
    TT_EQ(bad, 0);
    TT_EQ(atomic_load(&g.stops_total), N_RACE);
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
    reset();
    atomic_store(&B.entered, 0);
    atomic_store(&B.release, false);
    tr_runtime *rt = tt_runtime(threads, 0);
    for (unsigned t = 0; t < threads; t++) {
        tr_pid b;
        TT_EQ(tr_runtime_spawn(rt, blocker, NULL, 0, &b), 0);
        send0(rt, b, M_PING);
    }
    TT_EQ(tr_runtime_start(rt), 0);
    for (unsigned long spins = 0; atomic_load(&B.entered) < threads;)
        tt_relax(&spins);
    for (uint32_t i = 0; i < N_RACE; i++) {
        tr_pid p = spawn_out(rt, i, i % 3 == 0 ? F_BIG : 0, NULL);
        send0(rt, p, M_PING);
        send0(rt, p, M_STOP);
        if (i % 2)
            TT_EQ(tr_runtime_kill(rt, p, TR_EXIT_KILL), 0);
    }
    tr_runtime_stop(rt);
    atomic_store(&B.release, true);
    tr_runtime_destroy(rt);
    check_ended(0, N_RACE, 0, TR_EXIT_SHUTDOWN);
    TT_EQ(atomic_load(&g.seen), 0);
    TT_EQ(atomic_load(&g.stops_total), N_RACE);
    TT_NO_ERRORS();
}

static void test_on_stop_destroy_queued(void)
{
    destroy_queued(2);
    destroy_queued(4);
}

/* ---- names --------------------------------------------------------------------------- */

#define N_TAKEN 1000

/* In a turn: spawns with the taken name, in every form, all refused. */
static void name_trier(tr_ctx *cx, void *state, const tr_msg *m)
{
    (void)state;
    TT_CHECK(m->type == M_GO);
    for (uint32_t i = 0; i < N_TAKEN; i++) {
        struct big b;
        tr_actor_spec spec = make_spec(&b, 2, i % 2 ? F_BIG : 0, "svc");
        tr_pid p = 12345;
        uint64_t ref = 678;
        int err = i % 3 == 0   ? tr_spawn_spec(cx, &spec, &p)
                  : i % 3 == 1 ? tr_spawn_link_spec(cx, &spec, &p)
                               : tr_spawn_monitor(cx, &spec, &p, &ref);
        TT_CHECK(err == TR_EEXIST);
        TT_CHECK(p == 12345 && ref == 678);
    }
    tr_stop(cx); /* with no link or monitor left behind to hear of it */
}

static void test_name_taken(void)
{
    reset();
    tr_runtime *rt = tt_runtime(2, 0);
    tr_pid first = spawn_out(rt, 0, 0, "svc");
    TT_EQ(tr_whereis(rt, "svc"), first); /* at once */
    tr_stats s0;
    tr_runtime_stats(rt, &s0);
    for (uint32_t i = 0; i < N_TAKEN; i++) {
        struct big b;
        tr_actor_spec spec = make_spec(&b, 1, i % 2 ? F_BIG : 0, "svc");
        tr_pid p = 12345;
        TT_EQ(tr_runtime_spawn_spec(rt, &spec, &p), TR_EEXIST);
        TT_EQ(p, 12345);
    }
    tr_stats s1;
    tr_runtime_stats(rt, &s1);
    TT_EQ(s1.actors_alive, s0.actors_alive);
    TT_EQ(s1.actors_spawned, s0.actors_spawned);
    CU_ASSERT(s1.actor_slots <= s0.actor_slots + 1); /* one slot, reused each time */
    TT_EQ(tr_whereis(rt, "svc"), first);

    tr_pid trier;
    TT_EQ(tr_runtime_spawn(rt, name_trier, NULL, 0, &trier), 0);
    tr_runtime_stats(rt, &s0);
    send0(rt, trier, M_GO);
    send0(rt, first, M_PING);
    run_quiet(rt);
    tr_runtime_stats(rt, &s1);
    TT_EQ(s1.actors_alive, 1); /* first only */
    CU_ASSERT(s1.actor_slots <= s0.actor_slots + 1);
    TT_EQ(tr_whereis(rt, "svc"), first);
    TT_EQ(atomic_load(&g.inits[0]), 1);
    TT_EQ(atomic_load(&g.seen), 1);
    for (uint32_t id = 1; id <= 2; id++) { /* never started: neither callback */
        TT_EQ(atomic_load(&g.inits[id]), 0);
        TT_EQ(atomic_load(&g.stops[id]), 0);
    }

    /* Bad names and specs are refused before anything is made. */
    char longname[TR_NAME_MAX + 1];
    memset(longname, 'x', TR_NAME_MAX);
    longname[TR_NAME_MAX] = '\0';
    struct big b;
    tr_actor_spec spec = make_spec(&b, 3, 0, "");
    TT_EQ(tr_runtime_spawn_spec(rt, &spec, NULL), TR_EINVAL);
    spec.name = longname;
    TT_EQ(tr_runtime_spawn_spec(rt, &spec, NULL), TR_EINVAL);
    longname[TR_NAME_MAX - 1] = '\0'; /* the longest name that fits */
    tr_pid longest;
    TT_EQ(tr_runtime_spawn_spec(rt, &spec, &longest), 0);
    TT_EQ(tr_whereis(rt, longname), longest);
    spec.name = NULL;
    spec.behaviour = NULL;
    TT_EQ(tr_runtime_spawn_spec(rt, &spec, NULL), TR_EINVAL);
    TT_EQ(tr_runtime_spawn_spec(rt, NULL, NULL), TR_EINVAL);
    TT_EQ(tr_runtime_spawn_spec(NULL, &spec, NULL), TR_EINVAL);

    /* When the owner ends, the name is free for a new spawn. */
    send0(rt, first, M_STOP);
    send0(rt, longest, M_STOP);
    run_quiet(rt);
    TT_EQ(tr_whereis(rt, "svc"), TR_PID_NONE);
    tr_pid second = spawn_out(rt, 4, 0, "svc");
    TT_EQ(tr_whereis(rt, "svc"), second);
    CU_ASSERT(second != first);
    tr_runtime_destroy(rt);
    TT_EQ(atomic_load(&g.stops[0]), 1);
    TT_EQ(atomic_load(&g.stops[3]), 1);
    TT_EQ(atomic_load(&g.stops[4]), 1);
    TT_EQ(atomic_load(&g.stops_total), 3);
    TT_NO_ERRORS();
}

/* Two threads race for one name, many times: exactly one wins each
 * round, and the loser's actor never runs. */
struct name_race {
    tr_runtime *rt;
    pthread_barrier_t barrier;
    atomic_uint wins, losses;
    atomic_int t;
};

#define ROUNDS 300

static void *name_racer(void *p)
{
    struct name_race *r = p;
    int t = atomic_fetch_add(&r->t, 1);
    for (uint32_t round = 0; round < ROUNDS; round++) {
        char name[32];
        snprintf(name, sizeof name, "race-%u", (unsigned)round);
        struct big b;
        uint32_t id = 1000 + round * 2 + (uint32_t)t;
        tr_actor_spec spec = make_spec(&b, id, 0, name);
        pthread_barrier_wait(&r->barrier);
        tr_pid p = TR_PID_NONE;
        int err = tr_runtime_spawn_spec(r->rt, &spec, &p);
        TT_CHECK(err == 0 || err == TR_EEXIST);
        if (err == 0) {
            atomic_store(&g.pid[id], p);
            atomic_fetch_add(&r->wins, 1);
        } else {
            atomic_fetch_add(&r->losses, 1);
        }
    }
    return NULL;
}

static void test_name_race(void)
{
    reset();
    struct name_race r = {.rt = tt_runtime(2, 0)};
    pthread_barrier_init(&r.barrier, NULL, 2);
    TT_EQ(tr_runtime_hold(r.rt), 0);
    TT_EQ(tr_runtime_start(r.rt), 0);
    pthread_t a = tt_thread(name_racer, &r), b = tt_thread(name_racer, &r);
    tt_join(a);
    tt_join(b);
    TT_EQ(tr_runtime_release(r.rt), 0);
    TT_EQ(tt_join_within(r.rt, 120), 0);
    TT_EQ(atomic_load(&r.wins), ROUNDS);
    TT_EQ(atomic_load(&r.losses), ROUNDS);
    unsigned bad = 0;
    for (uint32_t round = 0; round < ROUNDS; round++) {
        char name[32];
        snprintf(name, sizeof name, "race-%u", (unsigned)round);
        uint32_t a0 = 1000 + round * 2, a1 = a0 + 1;
        tr_pid winner = tr_whereis(r.rt, name);
        bool zero_won = atomic_load(&g.pid[a0]) != TR_PID_NONE;
        uint32_t win = zero_won ? a0 : a1, lose = zero_won ? a1 : a0;
        bad += winner != atomic_load(&g.pid[win]);
        bad += atomic_load(&g.inits[win]) != 1 || atomic_load(&g.inits[lose]) != 0;
        bad += atomic_load(&g.stops[win]) != 0 || atomic_load(&g.stops[lose]) != 0;
    }
    TT_EQ(bad, 0);
    tr_stats s;
    tr_runtime_stats(r.rt, &s);
    TT_EQ(s.actors_alive, ROUNDS);
    tr_runtime_destroy(r.rt);
    TT_EQ(atomic_load(&g.stops_total), ROUNDS);
    pthread_barrier_destroy(&r.barrier);
    TT_NO_ERRORS();
}

/* ---- socket actors --------------------------------------------------------------------- */

struct sock_state {
    uint32_t magic; /* MAGIC once init ran */
    uint32_t id;
    uint32_t connected;
};

static int sock_init(tr_ctx *cx, void *state, tr_pid spawner)
{
    struct sock_state *st = state;
    (void)spawner;
    TT_CHECK(st->magic == 0 && st->id < MAXA);
    TT_CHECK(tr_self(cx) != TR_PID_NONE);
    st->magic = MAGIC;
    atomic_fetch_add(&g.inits[st->id], 1);
    return 0;
}

static void sock_on_stop(void *state, int reason)
{
    struct sock_state *st = state;
    TT_CHECK(st->magic == MAGIC); /* the user's part of the state */
    atomic_fetch_add(&g.stops[st->id], 1);
    atomic_store(&g.reason[st->id], reason);
    atomic_fetch_add(&g.stops_total, 1);
}

static void udp_user(tr_ctx *cx, void *state, const tr_msg *m)
{
    struct sock_state *st = state;
    (void)cx;
    (void)m;
    TT_CHECK(st->magic == MAGIC);
}

/* Server side: closes on the first line. Client side: sends a line on
 * TR_TCP_CONNECTED and waits for the close. */
static void tcp_user(tr_ctx *cx, void *state, const tr_msg *m)
{
    struct sock_state *st = state;
    TT_CHECK(st->magic == MAGIC);
    if (m->type == TR_TCP_CONNECTED) {
        st->connected = 1;
        if (st->id == 11)
            TT_CHECK(tr_tcp_send(cx, "bye\n", 4) == 0);
    } else if (m->type == TR_TCP_LINE) {
        TT_CHECK(tr_tcp_close(cx) == 0);
    } else if (m->type == TR_TCP_CLOSED) {
        TT_CHECK(st->connected == 1);
    }
}

static void test_socket_specs(void)
{
    reset();
    tr_runtime *rt = tt_runtime(2, 0);
    struct sock_state us = {.id = 10};
    tr_udp_opts uo = {.host = "127.0.0.1",
                      .actor = {.behaviour = udp_user, .state = &us, .state_size = sizeof us,
                                .init = sock_init, .on_stop = sock_on_stop, .name = "udp"}};
    tr_pid sock;
    TT_EQ(tr_runtime_udp_open(rt, &uo, &sock, NULL), 0);
    TT_EQ(tr_whereis(rt, "udp"), sock);
    TT_EQ(tr_runtime_udp_open(rt, &uo, NULL, NULL), TR_EEXIST); /* name taken */

    struct sock_state ss = {.id = 12}, cs = {.id = 11};
    tr_tcp_listen_opts lo = {.host = "127.0.0.1",
                             .handler = {.actor = {.behaviour = tcp_user, .state = &ss,
                                                   .state_size = sizeof ss, .init = sock_init,
                                                   .on_stop = sock_on_stop, .name = "x"},
                                         .opts = {.framing = TR_FRAME_LINE}}};
    tr_pid listener;
    uint16_t port;
    TT_EQ(tr_runtime_tcp_listen(rt, &lo, &listener, &port), TR_EINVAL); /* a handler name */
    lo.handler.actor.name = NULL;
    TT_EQ(tr_runtime_tcp_listen(rt, &lo, &listener, &port), 0);
    tr_tcp_connect_opts co = {.host = "127.0.0.1", .port = port,
                              .handler = {.actor = {.behaviour = tcp_user, .state = &cs,
                                                    .state_size = sizeof cs, .init = sock_init,
                                                    .on_stop = sock_on_stop, .name = "client"},
                                          .opts = {.framing = TR_FRAME_LINE}}};
    tr_pid client;
    TT_EQ(tr_runtime_tcp_connect(rt, &co, &client), 0);
    TT_EQ(tr_whereis(rt, "client"), client);
    TT_EQ(tr_runtime_kill(rt, sock, TR_EXIT_KILL), 0);
    /* The client's line makes the server close; the client sees the
     * close and ends too; then the listener goes. */
    TT_EQ(tr_runtime_hold(rt), 0); /* first: an empty runtime would finish at once */
    TT_EQ(tr_runtime_start(rt), 0);
    for (unsigned long spins = 0; atomic_load(&g.stops[11]) == 0 || atomic_load(&g.stops[12]) == 0;)
        tt_relax(&spins);
    TT_EQ(tr_runtime_kill(rt, listener, TR_EXIT_KILL), 0);
    TT_EQ(tr_runtime_release(rt), 0);
    TT_EQ(tt_join_within(rt, 60), 0);
    TT_EQ(atomic_load(&g.inits[10]), 1);
    TT_EQ(atomic_load(&g.stops[10]), 1);
    TT_EQ(atomic_load(&g.reason[10]), TR_EXIT_KILLED);
    for (uint32_t id = 11; id <= 12; id++) {
        TT_EQ(atomic_load(&g.inits[id]), 1);
        TT_EQ(atomic_load(&g.stops[id]), 1);
        TT_EQ(atomic_load(&g.reason[id]), TR_EXIT_NORMAL);
    }
    TT_EQ(tr_whereis(rt, "client"), TR_PID_NONE);
    tr_runtime_destroy(rt);
    TT_EQ(atomic_load(&g.stops_total), 3);
    TT_NO_ERRORS();
}

void register_spec_tests(void)
{
    CU_pSuite s = tt_suite("spec");
    tt_test(s, "init runs before any message", test_init_before_messages);
    tt_test(s, "init is told its spawner", test_init_spawner);
    tt_test(s, "init runs without messages", test_init_without_messages);
    tt_test(s, "a failed init reaches the monitor", test_init_failure_reported);
    tt_test(s, "a failed init reaches the link", test_init_failure_linked);
    tt_test(s, "spawn_monitor delivers TR_DOWN with its ref", test_spawn_monitor);
    tt_test(s, "on_stop once: tr_stop", test_on_stop_stop);
    tt_test(s, "on_stop once: tr_exit", test_on_stop_exit);
    tt_test(s, "on_stop once: tr_kill", test_on_stop_kill);
    tt_test(s, "on_stop once: linked exit", test_on_stop_linked_exit);
    tt_test(s, "on_stop once: supervisor restart and shutdown", test_on_stop_supervisor);
    tt_test(s, "on_stop once: destroy while idle", test_on_stop_destroy_idle);
    tt_test(s, "on_stop once: destroy before it ran", test_on_stop_never_ran);
    tt_test(s, "on_stop once: stop, kill and destroy racing", test_on_stop_races);
    tt_test(s, "on_stop once: destroy with actors queued", test_on_stop_destroy_queued);
    tt_test(s, "a taken name starts nothing", test_name_taken);
    tt_test(s, "two spawns race for one name", test_name_race);
    tt_test(s, "specs of UDP and TCP actors", test_socket_specs);
}
