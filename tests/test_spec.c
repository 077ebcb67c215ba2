/* test_spec.c — actor specs (troupe/actor.h tr_actor_spec): init runs
 * before any message (and without one), is told its spawner, and its
 * failure reaches links and monitors; tr_spawn_monitor; spawn with a name
 * is atomic; specs of UDP and TCP actors. (on_stop: test_on_stop.c.)
 *
 * The actors are tests.h's counted actors: init and on_stop count their
 * calls per id, so a test checks each actor's counts — exactly one, or
 * none — after the runtime has finished, never a time. */
#include "tests.h"
#include "../actors/actor.h"

#include <stdlib.h>
#include <string.h>

enum { M_GO = 1 };

static void send0(tr_runtime *rt, tr_pid to, uint32_t type)
{
    TT_EQ(tr_send(tr_runtime_ctx(rt), to, type, NULL, 0), 0);
}

static void run_quiet(tr_runtime *rt)
{
    TT_EQ(tr_runtime_run(rt), 0);
}

/* ---- init ------------------------------------------------------------------------ */

#define N_INIT 2000
#define K_PINGS 8

/* Messages sent the moment spawn returns — through the pid, or through
 * the name for named actors — all find init's work done; init runs once
 * and is told who spawned the actor. */
static void init_before_messages(unsigned threads)
{
    tt_counts_reset();
    tr_runtime *rt = tt_runtime(threads, 0);
    TT_EQ(tr_runtime_hold(rt), 0); /* first: an empty runtime would finish at once */
    TT_EQ(tr_runtime_start(rt), 0);
    for (uint32_t i = 0; i < N_INIT; i++) {
        char name[32];
        snprintf(name, sizeof name, "init-%u", (unsigned)i);
        bool named = i % 2 == 0;
        tr_pid p = tt_counted_spawn(rt, i, i % 3 == 0 ? TT_F_BIG : 0, named ? name : NULL);
        tr_pid to = named ? tr_whereis(rt, name) : p;
        TT_EQ(to, p);
        for (int k = 0; k < K_PINGS; k++)
            send0(rt, to, TT_PING);
        send0(rt, to, TT_STOP);
    }
    TT_EQ(tr_runtime_release(rt), 0);
    TT_EQ(tt_join_within(rt, 120), 0);
    TT_EQ(atomic_load(&tt_counts.seen), (unsigned long)N_INIT * (K_PINGS + 1));
    tt_counted_ended(0, N_INIT, 1, TR_EXIT_NORMAL);
    unsigned wrong_spawner = 0;
    for (uint32_t i = 0; i < N_INIT; i++)
        wrong_spawner += atomic_load(&tt_counts.spawner[i]) != TR_PID_NONE;
    TT_EQ(wrong_spawner, 0);
    tr_runtime_destroy(rt);
    TT_EQ(atomic_load(&tt_counts.stops_total), N_INIT); /* destroy ran none again */
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
        struct tt_counted_big b;
        tr_actor_spec spec = tt_counted_spec(&b, i, i % 2 ? TT_F_BIG : 0, NULL);
        tr_pid p;
        TT_CHECK(tr_spawn_spec(cx, &spec, &p) == 0);
        atomic_store(&tt_counts.pid[i], p);
        for (int k = 0; k < K_PINGS; k++)
            TT_CHECK(tr_send(cx, p, TT_PING, NULL, 0) == 0);
        TT_CHECK(tr_send(cx, p, TT_STOP, NULL, 0) == 0);
    }
}

static void test_init_spawner(void)
{
    tt_counts_reset();
    tr_runtime *rt = tt_runtime(4, 0);
    uint32_t n = 1000;
    tr_pid parent;
    TT_EQ(tr_spawn(tr_runtime_ctx(rt), parent_spawner, &n, sizeof n, &parent), 0);
    send0(rt, parent, M_GO);
    run_quiet(rt);
    tt_counted_ended(1, n + 1, 1, TR_EXIT_NORMAL);
    unsigned wrong_spawner = 0;
    for (uint32_t i = 1; i <= n; i++)
        wrong_spawner += atomic_load(&tt_counts.spawner[i]) != parent;
    TT_EQ(wrong_spawner, 0);
    TT_EQ(atomic_load(&tt_counts.seen), (unsigned long)n * (K_PINGS + 1));
    tr_runtime_destroy(rt);
    TT_NO_ERRORS();
}

/* init runs even if no message ever comes. */
static void test_init_without_messages(void)
{
    tt_counts_reset();
    tr_runtime *rt = tt_runtime(2, 0);
    for (uint32_t i = 0; i < 500; i++)
        tt_counted_spawn(rt, i, 0, NULL);
    run_quiet(rt);
    unsigned missing = 0;
    for (uint32_t i = 0; i < 500; i++)
        missing += atomic_load(&tt_counts.inits[i]) != 1 || atomic_load(&tt_counts.stops[i]) != 0;
    TT_EQ(missing, 0);
    TT_EQ(atomic_load(&tt_counts.seen), 0);
    tr_runtime_destroy(rt);
    tt_counted_ended(0, 500, 1, TR_EXIT_SHUTDOWN);
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
 * once), each sent a ping and, unless its init fails, TT_EXIT. TR_DOWN must
 * carry the ref spawn gave, the child's reason, and come after its
 * on_stop. */
static void watcher_behaviour(tr_ctx *cx, void *state, const tr_msg *m)
{
    struct watcher *w = W;
    (void)state;
    switch (m->type) {
    case M_GO:
        for (uint32_t i = 1; i <= N_WATCHED; i++) {
            struct tt_counted_big b;
            uint32_t flags = w->flags | (i % 4 == 0 ? TT_F_BIG : 0);
            tr_actor_spec spec = tt_counted_spec(&b, i, flags, NULL);
            TT_CHECK(tr_spawn_monitor(cx, &spec, &w->pid[i], &w->ref[i]) == 0);
            atomic_store(&tt_counts.pid[i], w->pid[i]);
            TT_CHECK(tr_send(cx, w->pid[i], TT_PING, NULL, 0) == 0);
            TT_CHECK(tr_send(cx, w->pid[i], TT_EXIT, NULL, 0) == 0);
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
        TT_CHECK(d->reason == ((w->flags & TT_F_INIT_FAIL) ? TT_INIT_FAIL : TT_EXIT_REASON));
        if (w->flags & TT_F_INIT_FAIL)
            TT_CHECK(strcmp(d->text, "init failed") == 0);
        TT_CHECK(atomic_load(&tt_counts.stops[i]) == 1); /* on_stop came first */
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
    tt_counts_reset();
    struct watcher *w = calloc(1, sizeof *w);
    CU_ASSERT_FATAL(w != NULL);
    W = w;
    w->flags = flags;
    tr_runtime *rt = tt_runtime(4, 0);
    tr_pid wp;
    TT_EQ(tr_spawn(tr_runtime_ctx(rt), watcher_behaviour, NULL, 0, &wp), 0);
    send0(rt, wp, M_GO);
    run_quiet(rt);
    TT_EQ(w->downs, N_WATCHED - 1); /* the demonitored one was flushed */
    tt_counted_ended(1, N_WATCHED + 1, 1, (flags & TT_F_INIT_FAIL) ? TT_INIT_FAIL : TT_EXIT_REASON);
    /* A failed init: the behaviour never ran (the counted actor checks), and
     * nothing was handled but by the others. */
    TT_EQ(atomic_load(&tt_counts.seen), (flags & TT_F_INIT_FAIL) ? 0 : 2ul * N_WATCHED);
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
    spawn_monitor_run(TT_F_INIT_FAIL);
}

/* A linked parent that traps exits sees a failed init as TR_EXIT. */
static void trapper(tr_ctx *cx, void *state, const tr_msg *m)
{
    uint32_t *exits = state;
    if (m->type == M_GO) {
        tr_trap_exits(cx, true);
        for (uint32_t i = 1; i <= 100; i++) {
            struct tt_counted_big b;
            tr_actor_spec spec = tt_counted_spec(&b, i, TT_F_INIT_FAIL, NULL);
            tr_pid p;
            TT_CHECK(tr_spawn_link_spec(cx, &spec, &p) == 0);
            atomic_store(&tt_counts.pid[i], p);
        }
    } else if (m->type == TR_EXIT) {
        const tr_exit_info *e = (const tr_exit_info *)m->data;
        TT_CHECK(e->reason == TT_INIT_FAIL);
        if (++*exits == 100)
            tr_stop(cx);
    } else {
        TT_CHECK(!"trapper: unexpected message");
    }
}

static void test_init_failure_linked(void)
{
    tt_counts_reset();
    tr_runtime *rt = tt_runtime(2, 0);
    uint32_t exits = 0;
    tr_pid t;
    TT_EQ(tr_spawn(tr_runtime_ctx(rt), trapper, &exits, sizeof exits, &t), 0);
    send0(rt, t, M_GO);
    run_quiet(rt);
    tt_counted_ended(1, 101, 1, TT_INIT_FAIL);
    tr_stats s;
    tr_runtime_stats(rt, &s);
    TT_EQ(s.actors_alive, 0); /* the trapper stopped after the 100th TR_EXIT */
    tr_runtime_destroy(rt);
    TT_NO_ERRORS();
}

/* ---- names --------------------------------------------------------------------------- */

#define N_TAKEN 1000

/* In a turn: spawns with the taken name, in every form, all refused. */
static void name_trier(tr_ctx *cx, void *state, const tr_msg *m)
{
    (void)state;
    TT_CHECK(m->type == M_GO);
    for (uint32_t i = 0; i < N_TAKEN; i++) {
        struct tt_counted_big b;
        tr_actor_spec spec = tt_counted_spec(&b, 2, i % 2 ? TT_F_BIG : 0, "svc");
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
    tt_counts_reset();
    tr_runtime *rt = tt_runtime(2, 0);
    tr_pid first = tt_counted_spawn(rt, 0, 0, "svc");
    TT_EQ(tr_whereis(rt, "svc"), first); /* at once */
    tr_stats s0;
    tr_runtime_stats(rt, &s0);
    for (uint32_t i = 0; i < N_TAKEN; i++) {
        struct tt_counted_big b;
        tr_actor_spec spec = tt_counted_spec(&b, 1, i % 2 ? TT_F_BIG : 0, "svc");
        tr_pid p = 12345;
        TT_EQ(tr_spawn_spec(tr_runtime_ctx(rt), &spec, &p), TR_EEXIST);
        TT_EQ(p, 12345);
    }
    tr_stats s1;
    tr_runtime_stats(rt, &s1);
    TT_EQ(s1.actors_alive, s0.actors_alive);
    TT_EQ(s1.actors_spawned, s0.actors_spawned);
    CU_ASSERT(s1.actor_slots <= s0.actor_slots + 1); /* one slot, reused each time */
    TT_EQ(tr_whereis(rt, "svc"), first);

    tr_pid trier;
    TT_EQ(tr_spawn(tr_runtime_ctx(rt), name_trier, NULL, 0, &trier), 0);
    tr_runtime_stats(rt, &s0);
    send0(rt, trier, M_GO);
    send0(rt, first, TT_PING);
    run_quiet(rt);
    tr_runtime_stats(rt, &s1);
    TT_EQ(s1.actors_alive, 1); /* first only */
    /* One slot, reused each time: a worker takes a run of fresh ones. */
    CU_ASSERT(s1.actor_slots <= s0.actor_slots + TR__FRESH_RUN);
    TT_EQ(tr_whereis(rt, "svc"), first);
    TT_EQ(atomic_load(&tt_counts.inits[0]), 1);
    TT_EQ(atomic_load(&tt_counts.seen), 1);
    for (uint32_t id = 1; id <= 2; id++) { /* never started: neither callback */
        TT_EQ(atomic_load(&tt_counts.inits[id]), 0);
        TT_EQ(atomic_load(&tt_counts.stops[id]), 0);
    }

    /* Bad names and specs are refused before anything is made. */
    char longname[TR_NAME_MAX + 1];
    memset(longname, 'x', TR_NAME_MAX);
    longname[TR_NAME_MAX] = '\0';
    struct tt_counted_big b;
    tr_actor_spec spec = tt_counted_spec(&b, 3, 0, "");
    TT_EQ(tr_spawn_spec(tr_runtime_ctx(rt), &spec, NULL), TR_EINVAL);
    spec.name = longname;
    TT_EQ(tr_spawn_spec(tr_runtime_ctx(rt), &spec, NULL), TR_EINVAL);
    longname[TR_NAME_MAX - 1] = '\0'; /* the longest name that fits */
    tr_pid longest;
    TT_EQ(tr_spawn_spec(tr_runtime_ctx(rt), &spec, &longest), 0);
    TT_EQ(tr_whereis(rt, longname), longest);
    spec.name = NULL;
    spec.behaviour = NULL;
    TT_EQ(tr_spawn_spec(tr_runtime_ctx(rt), &spec, NULL), TR_EINVAL);
    TT_EQ(tr_spawn_spec(tr_runtime_ctx(rt), NULL, NULL), TR_EINVAL);
    TT_EQ(tr_spawn_spec(tr_runtime_ctx(NULL), &spec, NULL), TR_EINVAL);

    /* When the owner ends, the name is free for a new spawn. */
    send0(rt, first, TT_STOP);
    send0(rt, longest, TT_STOP);
    run_quiet(rt);
    TT_EQ(tr_whereis(rt, "svc"), TR_PID_NONE);
    tr_pid second = tt_counted_spawn(rt, 4, 0, "svc");
    TT_EQ(tr_whereis(rt, "svc"), second);
    CU_ASSERT(second != first);
    tr_runtime_destroy(rt);
    TT_EQ(atomic_load(&tt_counts.stops[0]), 1);
    TT_EQ(atomic_load(&tt_counts.stops[3]), 1);
    TT_EQ(atomic_load(&tt_counts.stops[4]), 1);
    TT_EQ(atomic_load(&tt_counts.stops_total), 3);
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
        struct tt_counted_big b;
        uint32_t id = 1000 + round * 2 + (uint32_t)t;
        tr_actor_spec spec = tt_counted_spec(&b, id, 0, name);
        pthread_barrier_wait(&r->barrier);
        tr_pid p = TR_PID_NONE;
        int err = tr_spawn_spec(tr_runtime_ctx(r->rt), &spec, &p);
        TT_CHECK(err == 0 || err == TR_EEXIST);
        if (err == 0) {
            atomic_store(&tt_counts.pid[id], p);
            atomic_fetch_add(&r->wins, 1);
        } else {
            atomic_fetch_add(&r->losses, 1);
        }
    }
    return NULL;
}

static void test_name_race(void)
{
    tt_counts_reset();
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
        bool zero_won = atomic_load(&tt_counts.pid[a0]) != TR_PID_NONE;
        uint32_t win = zero_won ? a0 : a1, lose = zero_won ? a1 : a0;
        bad += winner != atomic_load(&tt_counts.pid[win]);
        bad += atomic_load(&tt_counts.inits[win]) != 1 || atomic_load(&tt_counts.inits[lose]) != 0;
        bad += atomic_load(&tt_counts.stops[win]) != 0 || atomic_load(&tt_counts.stops[lose]) != 0;
    }
    TT_EQ(bad, 0);
    tr_stats s;
    tr_runtime_stats(r.rt, &s);
    TT_EQ(s.actors_alive, ROUNDS);
    tr_runtime_destroy(r.rt);
    TT_EQ(atomic_load(&tt_counts.stops_total), ROUNDS);
    pthread_barrier_destroy(&r.barrier);
    TT_NO_ERRORS();
}

/* ---- socket actors --------------------------------------------------------------------- */

struct sock_state {
    uint32_t magic; /* TT_MAGIC once init ran */
    uint32_t id;
    uint32_t connected;
};

static int sock_init(tr_ctx *cx, void *state, tr_pid spawner)
{
    struct sock_state *st = state;
    (void)spawner;
    TT_CHECK(st->magic == 0 && st->id < TT_MAX_ACTORS);
    TT_CHECK(tr_self(cx) != TR_PID_NONE);
    st->magic = TT_MAGIC;
    atomic_fetch_add(&tt_counts.inits[st->id], 1);
    return 0;
}

static void sock_on_stop(void *state, int reason)
{
    struct sock_state *st = state;
    TT_CHECK(st->magic == TT_MAGIC); /* the user's part of the state */
    atomic_fetch_add(&tt_counts.stops[st->id], 1);
    atomic_store(&tt_counts.reason[st->id], reason);
    atomic_fetch_add(&tt_counts.stops_total, 1);
}

static void udp_user(tr_ctx *cx, void *state, const tr_msg *m)
{
    struct sock_state *st = state;
    (void)cx;
    (void)m;
    TT_CHECK(st->magic == TT_MAGIC);
}

/* Server side: closes on the first line. Client side: sends a line on
 * TR_TCP_CONNECTED and waits for the close. */
static void tcp_user(tr_ctx *cx, void *state, const tr_msg *m)
{
    struct sock_state *st = state;
    TT_CHECK(st->magic == TT_MAGIC);
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
    tt_counts_reset();
    tr_runtime *rt = tt_runtime(2, 0);
    struct sock_state us = {.id = 10};
    tr_udp_opts uo = {.host = "127.0.0.1",
                      .actor = {.behaviour = udp_user, .state = &us, .state_size = sizeof us,
                                .init = sock_init, .on_stop = sock_on_stop, .name = "udp"}};
    tr_pid sock;
    TT_EQ(tr_udp_open(tr_runtime_ctx(rt), &uo, &sock, NULL), 0);
    TT_EQ(tr_whereis(rt, "udp"), sock);
    TT_EQ(tr_udp_open(tr_runtime_ctx(rt), &uo, NULL, NULL), TR_EEXIST); /* name taken */

    struct sock_state ss = {.id = 12}, cs = {.id = 11};
    tr_tcp_listen_opts lo = {.host = "127.0.0.1",
                             .handler = {.actor = {.behaviour = tcp_user, .state = &ss,
                                                   .state_size = sizeof ss, .init = sock_init,
                                                   .on_stop = sock_on_stop, .name = "x"},
                                         .opts = {.framing = TR_FRAME_LINE}}};
    tr_pid listener;
    uint16_t port;
    TT_EQ(tr_tcp_listen(tr_runtime_ctx(rt), &lo, &listener, &port), TR_EINVAL); /* a handler name */
    lo.handler.actor.name = NULL;
    TT_EQ(tr_tcp_listen(tr_runtime_ctx(rt), &lo, &listener, &port), 0);
    tr_tcp_connect_opts co = {.host = "127.0.0.1", .port = port,
                              .handler = {.actor = {.behaviour = tcp_user, .state = &cs,
                                                    .state_size = sizeof cs, .init = sock_init,
                                                    .on_stop = sock_on_stop, .name = "client"},
                                          .opts = {.framing = TR_FRAME_LINE}}};
    tr_pid client;
    TT_EQ(tr_tcp_connect(tr_runtime_ctx(rt), &co, &client), 0);
    TT_EQ(tr_whereis(rt, "client"), client);
    TT_EQ(tr_kill(tr_runtime_ctx(rt), sock, TR_EXIT_KILL), 0);
    /* The client's line makes the server close; the client sees the
     * close and ends too; then the listener goes. */
    TT_EQ(tr_runtime_hold(rt), 0); /* first: an empty runtime would finish at once */
    TT_EQ(tr_runtime_start(rt), 0);
    unsigned long spins = 0;
    while (atomic_load(&tt_counts.stops[11]) == 0 || atomic_load(&tt_counts.stops[12]) == 0)
        tt_relax(&spins);
    TT_EQ(tr_kill(tr_runtime_ctx(rt), listener, TR_EXIT_KILL), 0);
    TT_EQ(tr_runtime_release(rt), 0);
    TT_EQ(tt_join_within(rt, 60), 0);
    TT_EQ(atomic_load(&tt_counts.inits[10]), 1);
    TT_EQ(atomic_load(&tt_counts.stops[10]), 1);
    TT_EQ(atomic_load(&tt_counts.reason[10]), TR_EXIT_KILLED);
    for (uint32_t id = 11; id <= 12; id++) {
        TT_EQ(atomic_load(&tt_counts.inits[id]), 1);
        TT_EQ(atomic_load(&tt_counts.stops[id]), 1);
        TT_EQ(atomic_load(&tt_counts.reason[id]), TR_EXIT_NORMAL);
    }
    TT_EQ(tr_whereis(rt, "client"), TR_PID_NONE);
    tr_runtime_destroy(rt);
    TT_EQ(atomic_load(&tt_counts.stops_total), 3);
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
    tt_test(s, "a taken name starts nothing", test_name_taken);
    tt_test(s, "two spawns race for one name", test_name_race);
    tt_test(s, "specs of UDP and TCP actors", test_socket_specs);
}
