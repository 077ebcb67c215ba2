/* test_quiescence.c — when tr_runtime_run / tr_runtime_join return:
 * not while messages are in flight, at once with nothing to do, never while
 * a hold is taken, promptly after tr_runtime_shutdown; and run can be called
 * again after it returned. */
#include "tests.h"

#include <stdlib.h>
#include <string.h>

enum { MSG_COUNT = 20, MSG_TREE = 21, MSG_PING = 22, MSG_REC = 23 };

/* ---- a counter forwarded 100,000 times through a chain of actors ---------- */

#define CHAIN_ACTORS 100u
#define CHAIN_END 100000u

struct chain {
    tr_pid pids[CHAIN_ACTORS];
    _Atomic uint64_t counter; /* the last value forwarded */
    _Atomic uint64_t final;   /* set by whoever handles CHAIN_END */
};

struct chain_state {
    struct chain *ch;
    uint32_t idx;
};

static void chain_actor(tr_ctx *cx, void *state, const tr_msg *m)
{
    struct chain_state *st = state;
    struct chain *ch = st->ch;
    uint64_t c = 0;
    TT_CHECK(m->type == MSG_COUNT && m->len == sizeof c);
    memcpy(&c, m->data, sizeof c);
    TT_CHECK(c == atomic_load(&ch->counter) + 1);
    atomic_store(&ch->counter, c);
    if (c < CHAIN_END) {
        c++;
        TT_CHECK(tr_send(cx, ch->pids[(st->idx + 1) % CHAIN_ACTORS], MSG_COUNT, &c, sizeof c) == 0);
    } else {
        atomic_store(&ch->final, c);
    }
}

static void test_chain_in_flight(void)
{
    struct chain *ch = calloc(1, sizeof *ch);
    CU_ASSERT_FATAL(ch != NULL);
    tr_runtime *rt = tt_runtime(4, 0);
    for (uint32_t i = 0; i < CHAIN_ACTORS; i++) {
        struct chain_state st = { ch, i };
        TT_EQ(tr_spawn(tr_runtime_ctx(rt), chain_actor, &st, sizeof st, &ch->pids[i]), 0);
    }
    /* Several rounds on the same runtime: run must not return early in any
     * of them, and can be called again after it returned. */
    for (int round = 0; round < 3; round++) {
        atomic_store(&ch->counter, 0);
        atomic_store(&ch->final, 0);
        uint64_t one = 1;
        TT_EQ(tr_send(tr_runtime_ctx(rt), ch->pids[0], MSG_COUNT, &one, sizeof one), 0);
        TT_EQ(tr_runtime_run(rt), 0);
        TT_EQ(atomic_load(&ch->counter), CHAIN_END);
        TT_EQ(atomic_load(&ch->final), CHAIN_END);
    }
    TT_NO_ERRORS();
    tr_stats s;
    tr_runtime_stats(rt, &s);
    TT_EQ(s.messages_handled, 3 * CHAIN_END);
    TT_EQ(s.messages_sent, 3 * CHAIN_END);
    tr_runtime_destroy(rt);
    free(ch);
}

/* ---- a binary tree of messages: many in flight at once --------------------- */

#define TREE_ACTORS 16u
#define TREE_DEPTH 15u /* 2^16 - 1 messages per run */

struct tree {
    tr_pid pids[TREE_ACTORS];
    atomic_ulong handled;
};

struct tree_state {
    struct tree *tr;
    uint32_t idx;
};

static void tree_actor(tr_ctx *cx, void *state, const tr_msg *m)
{
    struct tree_state *st = state;
    uint32_t depth = 0;
    TT_CHECK(m->type == MSG_TREE && m->len == sizeof depth);
    memcpy(&depth, m->data, sizeof depth);
    atomic_fetch_add_explicit(&st->tr->handled, 1, memory_order_relaxed);
    if (depth < TREE_DEPTH) {
        depth++;
        for (uint32_t k = 1; k <= 2; k++)
            TT_CHECK(tr_send(cx, st->tr->pids[(st->idx * 2 + k) % TREE_ACTORS], MSG_TREE,
                             &depth, sizeof depth) == 0);
    }
}

static void test_tree_in_flight(void)
{
    struct tree tr = { 0 };
    tr_runtime *rt = tt_runtime(4, 0);
    for (uint32_t i = 0; i < TREE_ACTORS; i++) {
        struct tree_state st = { &tr, i };
        TT_EQ(tr_spawn(tr_runtime_ctx(rt), tree_actor, &st, sizeof st, &tr.pids[i]), 0);
    }
    const unsigned long per_run = (1ul << (TREE_DEPTH + 1)) - 1;
    for (unsigned long round = 1; round <= 3; round++) {
        uint32_t zero = 0;
        TT_EQ(tr_send(tr_runtime_ctx(rt), tr.pids[0], MSG_TREE, &zero, sizeof zero), 0);
        TT_EQ(tr_runtime_run(rt), 0);
        TT_EQ(atomic_load(&tr.handled), round * per_run);
    }
    TT_NO_ERRORS();
    tr_runtime_destroy(rt);
}

/* ---- nothing to do --------------------------------------------------------- */

static void never_called(tr_ctx *cx, void *state, const tr_msg *m)
{
    (void)cx;
    (void)m;
    atomic_fetch_add(*(atomic_ulong **)state, 1);
}

static void test_no_work_returns_at_once(void)
{
    tr_runtime *rt = tt_runtime(2, 0);
    TT_EQ(tr_runtime_run(rt), 0);
    TT_EQ(tr_runtime_run(rt), 0);
    TT_EQ(tr_runtime_start(rt), 0);
    TT_EQ(tr_runtime_join(rt), 0);

    /* Actors without messages are no work either. */
    atomic_ulong calls = 0;
    atomic_ulong *cp = &calls;
    for (int i = 0; i < 10; i++)
        TT_EQ(tr_spawn(tr_runtime_ctx(rt), never_called, &cp, sizeof cp, NULL), 0);
    TT_EQ(tr_runtime_run(rt), 0);
    TT_EQ(atomic_load(&calls), 0);
    tr_stats s;
    tr_runtime_stats(rt, &s);
    TT_EQ(s.messages_handled, 0);
    TT_EQ(s.actors_alive, 10);
    tr_runtime_destroy(rt);

    /* A runtime destroyed without ever running. */
    rt = tt_runtime(2, 0);
    TT_EQ(tr_spawn(tr_runtime_ctx(rt), never_called, &cp, sizeof cp, NULL), 0);
    tr_runtime_destroy(rt);
}

/* ---- a hold keeps a started runtime running with nothing to do ------------- */

struct recorder {
    atomic_ulong handled;
    _Atomic uint64_t last_value;
};

static void record_actor(tr_ctx *cx, void *state, const tr_msg *m)
{
    (void)cx;
    struct recorder *r = *(struct recorder **)state;
    uint64_t v = 0;
    TT_CHECK(m->type == MSG_REC && m->len == sizeof v);
    memcpy(&v, m->data, sizeof v);
    atomic_store(&r->last_value, v);
    atomic_fetch_add(&r->handled, 1);
}


static void test_hold_keeps_running(void)
{
    struct recorder rec = { 0 };
    struct recorder *rp = &rec;
    tr_runtime *rt = tt_runtime(2, 0);
    tr_pid p;
    TT_EQ(tr_spawn(tr_runtime_ctx(rt), record_actor, &rp, sizeof rp, &p), 0);
    TT_EQ(tr_runtime_hold(rt), 0);
    TT_EQ(tr_runtime_start(rt), 0);

    struct tt_joiner j = { .rt = rt };
    pthread_t t = tt_thread(tt_joiner_main, &j);
    tt_sleep_ms(200);
    /* With a hold taken, join cannot have returned, however long we wait. */
    CU_ASSERT_FALSE(atomic_load(&j.returned));

    /* And it still handles what is sent while it idles under the hold. */
    uint64_t v = 7;
    TT_EQ(tr_send(tr_runtime_ctx(rt), p, MSG_REC, &v, sizeof v), 0);
    unsigned long spins = 0;
    while (atomic_load(&rec.handled) == 0 && !atomic_load(&j.returned))
        tt_relax(&spins);
    TT_EQ(atomic_load(&rec.handled), 1);
    TT_EQ(atomic_load(&rec.last_value), 7);
    CU_ASSERT_FALSE(atomic_load(&j.returned));

    /* Releasing the hold lets it finish. */
    TT_EQ(tr_runtime_release(rt), 0);
    tt_join(t);
    TT_EQ(j.rc, 0);
    TT_NO_ERRORS();
    tr_runtime_destroy(rt);
}

/* Holds taken before start, nested, from several threads. */
static void test_nested_holds(void)
{
    struct recorder rec = { 0 };
    struct recorder *rp = &rec;
    tr_runtime *rt = tt_runtime(2, 0);
    tr_pid p;
    TT_EQ(tr_spawn(tr_runtime_ctx(rt), record_actor, &rp, sizeof rp, &p), 0);
    TT_EQ(tr_runtime_hold(rt), 0);
    TT_EQ(tr_runtime_hold(rt), 0);
    TT_EQ(tr_runtime_start(rt), 0);
    struct tt_joiner j = { .rt = rt };
    pthread_t t = tt_thread(tt_joiner_main, &j);

    TT_EQ(tr_runtime_release(rt), 0); /* one hold still taken */
    tt_sleep_ms(50);
    CU_ASSERT_FALSE(atomic_load(&j.returned));
    uint64_t v = 9;
    TT_EQ(tr_send(tr_runtime_ctx(rt), p, MSG_REC, &v, sizeof v), 0);
    TT_EQ(tr_runtime_release(rt), 0);
    tt_join(t);
    TT_EQ(j.rc, 0);
    TT_EQ(atomic_load(&rec.handled), 1);
    TT_EQ(tr_runtime_release(rt), TR_EINVAL); /* none left */
    TT_NO_ERRORS();
    tr_runtime_destroy(rt);
}

/* ---- tr_runtime_shutdown ------------------------------------------------------ */

struct stopper {
    tr_runtime *rt;
    unsigned delay_ms;
    atomic_ulong *wait_for; /* stop once this counter passes wait_min */
    unsigned long wait_min;
};

static void *stopper_main(void *arg)
{
    struct stopper *s = arg;
    if (s->wait_for != NULL) {
        while (atomic_load(s->wait_for) < s->wait_min)
            tt_sleep_ms(1);
    }
    tt_sleep_ms(s->delay_ms);
    tr_runtime_shutdown(s->rt);
    return NULL;
}

static void test_stop_while_held(void)
{
    tr_runtime *rt = tt_runtime(2, 0);
    TT_EQ(tr_runtime_hold(rt), 0);
    TT_EQ(tr_runtime_start(rt), 0);
    struct stopper st = { .rt = rt, .delay_ms = 50 };
    pthread_t t = tt_thread(stopper_main, &st);
    TT_EQ(tr_runtime_join(rt), 1);
    tt_join(t);
    TT_EQ(tr_runtime_release(rt), 0);
    tr_runtime_destroy(rt);
}

struct pingpong {
    tr_pid a, b;
    atomic_ulong exchanges;
    unsigned long limit;      /* 0 = forever */
    unsigned long stop_at;    /* call tr_runtime_shutdown from the behaviour at this count; 0 = never */
    _Atomic uint64_t last;    /* highest count handled */
};

static void pingpong_actor(tr_ctx *cx, void *state, const tr_msg *m)
{
    struct pingpong *pp = *(struct pingpong **)state;
    uint64_t n = 0;
    TT_CHECK(m->type == MSG_PING && m->len == sizeof n);
    memcpy(&n, m->data, sizeof n);
    TT_CHECK(n == atomic_load(&pp->last) + 1);
    atomic_store(&pp->last, n);
    atomic_fetch_add(&pp->exchanges, 1);
    if (pp->stop_at != 0 && n == pp->stop_at)
        tr_runtime_shutdown(tr_ctx_runtime(cx));
    if (pp->limit != 0 && n >= pp->limit)
        return;
    n++;
    tr_pid peer = tr_self(cx) == pp->a ? pp->b : pp->a;
    TT_CHECK(tr_send(cx, peer, MSG_PING, &n, sizeof n) == 0);
}

static void pingpong_spawn(tr_runtime *rt, struct pingpong *pp)
{
    TT_EQ(tr_spawn(tr_runtime_ctx(rt), pingpong_actor, &pp, sizeof pp, &pp->a), 0);
    TT_EQ(tr_spawn(tr_runtime_ctx(rt), pingpong_actor, &pp, sizeof pp, &pp->b), 0);
    uint64_t one = 1;
    TT_EQ(tr_send(tr_runtime_ctx(rt), pp->a, MSG_PING, &one, sizeof one), 0);
}

static void test_stop_endless_pingpong(void)
{
    struct pingpong *pp = calloc(1, sizeof *pp);
    CU_ASSERT_FATAL(pp != NULL);
    tr_runtime *rt = tt_runtime(2, 0);
    pingpong_spawn(rt, pp);
    TT_EQ(tr_runtime_start(rt), 0);
    struct stopper st = { .rt = rt, .delay_ms = 10, .wait_for = &pp->exchanges,
                          .wait_min = 10000 };
    pthread_t t = tt_thread(stopper_main, &st);
    TT_EQ(tr_runtime_join(rt), 1);
    tt_join(t);
    TT_NO_ERRORS();
    CU_ASSERT(atomic_load(&pp->exchanges) >= 10000);

    /* Exact once join returned: every turn finished, and the one message
     * in flight is still queued. */
    tr_stats s;
    tr_runtime_stats(rt, &s);
    TT_EQ(s.messages_handled, atomic_load(&pp->exchanges));
    TT_EQ(s.messages_sent, s.messages_handled + 1);
    TT_EQ(s.dead_letters, 0);
    /* And it stays stopped: nothing ran after join returned. */
    uint64_t after = atomic_load(&pp->exchanges);
    tt_sleep_ms(20);
    TT_EQ(atomic_load(&pp->exchanges), after);
    tr_runtime_destroy(rt); /* frees the queued message */
    free(pp);
}

/* A behaviour stops the runtime; run returns 1; run again resumes with the
 * queued message and finishes the exchange. */
static void test_stop_from_behaviour_then_resume(void)
{
    struct pingpong *pp = calloc(1, sizeof *pp);
    CU_ASSERT_FATAL(pp != NULL);
    pp->limit = 20000;
    pp->stop_at = 1000;
    tr_runtime *rt = tt_runtime(2, 0);
    pingpong_spawn(rt, pp);
    TT_EQ(tr_runtime_run(rt), 1);
    uint64_t at_stop = atomic_load(&pp->last);
    CU_ASSERT(at_stop >= 1000 && at_stop < 20000);
    tr_stats s;
    tr_runtime_stats(rt, &s);
    TT_EQ(s.messages_sent, s.messages_handled + 1);

    TT_EQ(tr_runtime_run(rt), 0);
    TT_NO_ERRORS();
    TT_EQ(atomic_load(&pp->last), 20000);
    TT_EQ(atomic_load(&pp->exchanges), 20000);
    tr_runtime_stats(rt, &s);
    TT_EQ(s.messages_handled, 20000);
    TT_EQ(s.messages_sent, 20000);
    tr_runtime_destroy(rt);
    free(pp);
}

/* ---- run again after it returned ------------------------------------------ */

static void test_run_again(void)
{
    struct recorder rec = { 0 };
    struct recorder *rp = &rec;
    tr_runtime *rt = tt_runtime(2, 0);
    tr_pid p;
    TT_EQ(tr_spawn(tr_runtime_ctx(rt), record_actor, &rp, sizeof rp, &p), 0);
    uint64_t v = 1;
    TT_EQ(tr_send(tr_runtime_ctx(rt), p, MSG_REC, &v, sizeof v), 0);
    TT_EQ(tr_runtime_run(rt), 0);
    TT_EQ(atomic_load(&rec.handled), 1);

    for (v = 2; v <= 3; v++)
        TT_EQ(tr_send(tr_runtime_ctx(rt), p, MSG_REC, &v, sizeof v), 0);
    TT_EQ(tr_runtime_run(rt), 0);
    TT_EQ(atomic_load(&rec.handled), 3);
    TT_EQ(atomic_load(&rec.last_value), 3);

    /* start/join in between, then run again. */
    v = 4;
    TT_EQ(tr_send(tr_runtime_ctx(rt), p, MSG_REC, &v, sizeof v), 0);
    TT_EQ(tr_runtime_start(rt), 0);
    TT_EQ(tr_runtime_join(rt), 0);
    TT_EQ(atomic_load(&rec.handled), 4);
    v = 5;
    TT_EQ(tr_send(tr_runtime_ctx(rt), p, MSG_REC, &v, sizeof v), 0);
    TT_EQ(tr_runtime_run(rt), 0);
    TT_EQ(atomic_load(&rec.handled), 5);
    TT_EQ(atomic_load(&rec.last_value), 5);

    /* Many short runs in a row. */
    for (v = 6; v < 206; v++) {
        TT_EQ(tr_send(tr_runtime_ctx(rt), p, MSG_REC, &v, sizeof v), 0);
        TT_EQ(tr_runtime_run(rt), 0);
    }
    TT_EQ(atomic_load(&rec.handled), 205);
    TT_NO_ERRORS();
    tr_runtime_destroy(rt);
}

/* ---- destroy while started and held --------------------------------------- */

static void test_destroy_while_running(void)
{
    struct pingpong *pp = calloc(1, sizeof *pp);
    CU_ASSERT_FATAL(pp != NULL);
    tr_runtime *rt = tt_runtime(2, 0);
    pingpong_spawn(rt, pp); /* endless */
    TT_EQ(tr_runtime_hold(rt), 0);
    TT_EQ(tr_runtime_start(rt), 0);
    unsigned long spins = 0;
    while (atomic_load(&pp->exchanges) < 1000)
        tt_relax(&spins);
    tr_runtime_destroy(rt); /* stops, joins the workers, frees everything */
    TT_NO_ERRORS();
    free(pp);
}

void register_quiescence_tests(void)
{
    CU_pSuite s = tt_suite("quiescence");
    tt_test(s, "no_work_returns_at_once", test_no_work_returns_at_once);
    tt_test(s, "chain_100k_not_returned_in_flight", test_chain_in_flight);
    tt_test(s, "message_tree_not_returned_in_flight", test_tree_in_flight);
    tt_test(s, "hold_keeps_started_runtime_running", test_hold_keeps_running);
    tt_test(s, "nested_holds", test_nested_holds);
    tt_test(s, "stop_while_held", test_stop_while_held);
    tt_test(s, "stop_endless_pingpong", test_stop_endless_pingpong);
    tt_test(s, "stop_from_behaviour_then_resume", test_stop_from_behaviour_then_resume);
    tt_test(s, "run_again_after_return", test_run_again);
    tt_test(s, "destroy_while_running", test_destroy_while_running);
}
