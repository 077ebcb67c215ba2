/* test_backpressure.c — senders wait for a receiver that falls behind
 * (sched/backpressure.c). Floods stay within the bound README states, at
 * 1, 2 and 4 workers and at batch 1 and the default, whatever the shape of
 * the sender's loop; every item arrives once and in order per sender;
 * waits nest without deadlock, mutual floods finish, and a receiver that
 * stops lets its waiting senders go. A thread outside the runtime that
 * sends with tr_send_wait stays within a few batches of its receiver,
 * and a wait that times out sends nothing. */
#include "tests.h"

#include <stdlib.h>
#include <string.h>

enum { BP_GO = 10, BP_ITEM };


/* ---- floods: S senders, u items per message they handle, one receiver ---- */

/* Items per flood: 10 million (a tenth under the sanitizers, which run
 * every test many times slower; the bound does not depend on the count). */
#define FLOOD_ITEMS (TT_TSAN || TT_ASAN ? 1000000u : 10000000u)
#define FLOOD_MAX_SENDERS 8u
/* Without backpressure a flood of 64-byte messages would take hundreds of
 * MiB; with it, the pools hold a few thousand blocks. */
#define FLOOD_RSS_LIMIT_KB (TT_RSS_FACTOR * 10 * 1024)

struct flood {
    unsigned senders, burst;
    uint64_t per_sender;
    tr_pid receiver;
    _Atomic uint64_t sent;                /* counted just before each send */
    /* The receiver's: */
    uint64_t got, max_behind;
    uint64_t next[FLOOD_MAX_SENDERS];     /* next sequence number per sender */
};

struct flood_sender {
    struct flood *f;
    uint32_t id;
    uint64_t done;
};

static void flood_receiver(tr_ctx *cx, void *state, const tr_msg *m)
{
    (void)cx;
    struct flood *f = *(struct flood **)state;
    uint64_t v = tt_u64(m);
    uint32_t id = (uint32_t)(v >> 40);
    TT_CHECK(m->type == BP_ITEM && id < f->senders);
    if (id < f->senders) {
        TT_CHECK((v & ((UINT64_C(1) << 40) - 1)) == f->next[id]); /* once, in order */
        f->next[id]++;
    }
    f->got++;
    uint64_t behind = atomic_load_explicit(&f->sent, memory_order_relaxed) - f->got;
    if (behind > f->max_behind)
        f->max_behind = behind;
}

/* Sends `burst` items per GO, then a GO to itself to go on: with a burst
 * of 1 this is the usual actor loop "one step, then a message to myself". */
static void flood_sender(tr_ctx *cx, void *state, const tr_msg *m)
{
    TT_CHECK(m->type == BP_GO);
    struct flood_sender *s = state;
    struct flood *f = s->f;
    for (unsigned i = 0; i < f->burst && s->done < f->per_sender; i++, s->done++) {
        uint64_t v = (uint64_t)s->id << 40 | s->done;
        atomic_fetch_add_explicit(&f->sent, 1, memory_order_relaxed);
        TT_CHECK(tr_send(cx, f->receiver, BP_ITEM, &v, sizeof v) == 0);
    }
    if (s->done < f->per_sender)
        TT_CHECK(tr_send(cx, tr_self(cx), BP_GO, NULL, 0) == 0);
}

/* README's bound: b + 2·k·W + 2·S·u, with batch b, watch period
 * k = max(b, 16), W workers, S senders and u items per message. */
static uint64_t flood_bound(unsigned batch, unsigned workers, unsigned senders, unsigned burst)
{
    uint64_t k = batch > 16 ? batch : 16;
    return batch + 2 * k * workers + 2ull * senders * burst;
}

static void flood_once(unsigned workers, unsigned batch, unsigned senders, unsigned burst)
{
    struct flood *f = calloc(1, sizeof *f);
    CU_ASSERT_FATAL(f != NULL);
    f->senders = senders;
    f->burst = burst;
    f->per_sender = FLOOD_ITEMS / senders;
    tr_runtime *rt = tt_runtime(workers, batch);
    TT_EQ(tr_spawn(tr_runtime_ctx(rt), flood_receiver, &f, sizeof f, &f->receiver), 0);
    for (uint32_t i = 0; i < senders; i++) {
        struct flood_sender st = { f, i, 0 };
        tr_pid pid;
        TT_EQ(tr_spawn(tr_runtime_ctx(rt), flood_sender, &st, sizeof st, &pid), 0);
        TT_EQ(tr_send(tr_runtime_ctx(rt), pid, BP_GO, NULL, 0), 0);
    }
    long rss_before = tt_rss_kb();
    TT_EQ(tr_runtime_start(rt), 0);
    TT_EQ(tt_join_within(rt, 600), 0);
    long rss_growth = tt_rss_kb() - rss_before;
    TT_NO_ERRORS();
    TT_EQ(f->got, f->per_sender * senders);
    for (unsigned i = 0; i < senders; i++)
        TT_EQ(f->next[i], f->per_sender);
    unsigned b = batch != 0 ? batch : 64;
    uint64_t bound = flood_bound(b, workers, senders, burst);
    printf("[w%u b%u: %" PRIu64 " behind (bound %" PRIu64 "), RSS %+ld KiB] ", workers, b,
           f->max_behind, bound, rss_growth);
    CU_ASSERT(f->max_behind <= bound);
    CU_ASSERT(rss_growth < FLOOD_RSS_LIMIT_KB);
    tr_stats st;
    tr_runtime_stats(rt, &st);
    TT_EQ(st.dead_letters, 0);
    TT_EQ(st.messages_handled, st.messages_sent);
    tr_runtime_destroy(rt);
    free(f);
}

/* One shape at 1, 2 and 4 workers, batch 1 and the default. */
static void flood_shape(unsigned senders, unsigned burst)
{
    static const unsigned workers[] = { 1, 2, 4 };
    static const unsigned batches[] = { 1, 0 };
    for (size_t i = 0; i < 3; i++)
        for (size_t j = 0; j < 2; j++)
            flood_once(workers[i], batches[j], senders, burst);
}

static void test_flood_bursts(void) { flood_shape(1, 100); }
static void test_flood_self_loop(void) { flood_shape(1, 1); }
static void test_flood_eight_bursts(void) { flood_shape(8, 100); }
static void test_flood_eight_self_loops(void) { flood_shape(8, 1); }

/* ---- actors flooding each other: waits must not form a cycle --------------- */

/* RING_N actors in a ring, each flooding the next with RING_EACH items in
 * bursts while being flooded by the one before: every one of them is both
 * behind and sending to an actor that is behind. */
#define RING_N 4u
#define RING_EACH (TT_TSAN ? 50000u : 500000u)

struct ring_flood {
    tr_pid pids[RING_N];
    _Atomic uint64_t received;
};

struct ring_member {
    struct ring_flood *r;
    uint32_t idx;
    uint64_t sent, expect; /* items sent to the next; next item expected */
};

static void ring_member_fn(tr_ctx *cx, void *state, const tr_msg *m)
{
    struct ring_member *me = state;
    struct ring_flood *r = me->r;
    if (m->type == BP_ITEM) {
        TT_CHECK(tt_u64(m) == me->expect);
        me->expect++;
        atomic_fetch_add_explicit(&r->received, 1, memory_order_relaxed);
        return;
    }
    tr_pid next = r->pids[(me->idx + 1) % RING_N];
    for (unsigned i = 0; i < 64 && me->sent < RING_EACH; i++, me->sent++)
        TT_CHECK(tr_send(cx, next, BP_ITEM, &me->sent, sizeof me->sent) == 0);
    if (me->sent < RING_EACH)
        TT_CHECK(tr_send(cx, tr_self(cx), BP_GO, NULL, 0) == 0);
}

static void ring_flood_run(unsigned workers)
{
    struct ring_flood *r = calloc(1, sizeof *r);
    CU_ASSERT_FATAL(r != NULL);
    tr_runtime *rt = tt_runtime(workers, 0);
    for (uint32_t i = 0; i < RING_N; i++) {
        struct ring_member st = { r, i, 0, 0 };
        TT_EQ(tr_spawn(tr_runtime_ctx(rt), ring_member_fn, &st, sizeof st, &r->pids[i]), 0);
    }
    for (uint32_t i = 0; i < RING_N; i++)
        TT_EQ(tr_send(tr_runtime_ctx(rt), r->pids[i], BP_GO, NULL, 0), 0);
    TT_EQ(tr_runtime_start(rt), 0);
    TT_EQ(tt_join_within(rt, 300), 0); /* a cycle of waits would hang here */
    TT_NO_ERRORS();
    TT_EQ(atomic_load(&r->received), (uint64_t)RING_N * RING_EACH);
    tr_runtime_destroy(rt);
    free(r);
}

static void test_ring_flood_1(void) { ring_flood_run(1); }
static void test_ring_flood_2(void) { ring_flood_run(2); }
static void test_ring_flood_4(void) { ring_flood_run(4); }

/* ---- a sender's look never strands it on an idle receiver ------------------ */

/* One driver sends round robin to 60 receivers, 32 messages per message
 * it handles (fjthroughput's shape): its looks at their progress now and
 * then come just as one of them has caught up and gone idle. A driver
 * left waiting on an idle receiver would end the run early, with
 * messages unhandled (before the fix: 2 of 4 runs of one round). */
#define RR_RECEIVERS 60u
#define RR_EACH (TT_TSAN ? 2000u : TT_ASAN ? 50000u : 200000u)

struct round_robin {
    tr_pid receivers[RR_RECEIVERS];
    uint64_t sent;
    _Atomic uint64_t received;
};

static void rr_receiver(tr_ctx *cx, void *state, const tr_msg *m)
{
    (void)cx;
    (void)m;
    struct round_robin *rr = *(struct round_robin **)state;
    atomic_fetch_add_explicit(&rr->received, 1, memory_order_relaxed);
}

static void rr_driver(tr_ctx *cx, void *state, const tr_msg *m)
{
    (void)m;
    struct round_robin *rr = *(struct round_robin **)state;
    uint64_t total = (uint64_t)RR_RECEIVERS * RR_EACH;
    for (unsigned i = 0; i < 32 && rr->sent < total; i++, rr->sent++)
        TT_CHECK(tr_send(cx, rr->receivers[rr->sent % RR_RECEIVERS], BP_ITEM, NULL, 0) == 0);
    if (rr->sent < total)
        TT_CHECK(tr_send(cx, tr_self(cx), BP_GO, NULL, 0) == 0);
}

static void test_round_robin(void)
{
    for (int round = 0; round < 3; round++) {
        struct round_robin *rr = calloc(1, sizeof *rr);
        CU_ASSERT_FATAL(rr != NULL);
        tr_runtime *rt = tt_runtime(2, 0);
        for (unsigned i = 0; i < RR_RECEIVERS; i++)
            TT_EQ(tr_spawn(tr_runtime_ctx(rt), rr_receiver, &rr, sizeof rr, &rr->receivers[i]), 0);
        tr_pid driver;
        TT_EQ(tr_spawn(tr_runtime_ctx(rt), rr_driver, &rr, sizeof rr, &driver), 0);
        TT_EQ(tr_send(tr_runtime_ctx(rt), driver, BP_GO, NULL, 0), 0);
        TT_EQ(tr_runtime_run(rt), 0);
        TT_NO_ERRORS();
        TT_EQ(atomic_load(&rr->received), (uint64_t)RR_RECEIVERS * RR_EACH);
        tr_stats st;
        tr_runtime_stats(rt, &st);
        TT_EQ(st.messages_handled, st.messages_sent);
        tr_runtime_destroy(rt);
        free(rr);
    }
}

/* ---- waits that nest, and a receiver that stops ---------------------------- */

/* Many senders, relays that are themselves flooded and flooding, one
 * sink: waits nest (a relay waits on the sink while senders wait on it).
 * Every item arrives exactly once and each sender's items in order. */
#define BP_SENDERS 16u
#define BP_RELAYS 4u
#define BP_EACH 100000u

struct bp_fan {
    tr_pid sink, relays[BP_RELAYS];
    uint64_t next[BP_SENDERS]; /* the sink's: next seq expected per sender */
    _Atomic uint64_t received;
};

/* Sends BP_EACH items (id << 32 | seq) to one target, 64 per GO. */
struct bp_sender {
    tr_pid to;
    uint32_t id;
    uint32_t sent;
};

static void bp_sink(tr_ctx *cx, void *state, const tr_msg *m)
{
    (void)cx;
    struct bp_fan *fan = *(struct bp_fan **)state;
    uint64_t v = tt_u64(m);
    uint32_t id = (uint32_t)(v >> 32), seq = (uint32_t)v;
    TT_CHECK(m->type == BP_ITEM && id < BP_SENDERS);
    if (id < BP_SENDERS) {
        TT_CHECK(seq == fan->next[id]);
        fan->next[id] = seq + 1u;
    }
    atomic_fetch_add_explicit(&fan->received, 1, memory_order_relaxed);
}

static void bp_relay(tr_ctx *cx, void *state, const tr_msg *m)
{
    struct bp_fan *fan = *(struct bp_fan **)state;
    uint64_t v = tt_u64(m);
    TT_CHECK(tr_send(cx, fan->sink, BP_ITEM, &v, sizeof v) == 0);
}

static void bp_sender_fn(tr_ctx *cx, void *state, const tr_msg *m)
{
    (void)m;
    struct bp_sender *s = state;
    for (unsigned i = 0; i < 64 && s->sent < BP_EACH; i++, s->sent++) {
        uint64_t v = (uint64_t)s->id << 32 | s->sent;
        TT_CHECK(tr_send(cx, s->to, BP_ITEM, &v, sizeof v) == 0);
    }
    if (s->sent < BP_EACH)
        TT_CHECK(tr_send(cx, tr_self(cx), BP_GO, NULL, 0) == 0);
}

static void bp_start_senders(tr_runtime *rt, unsigned n, const tr_pid *targets, unsigned ntargets)
{
    for (uint32_t i = 0; i < n; i++) {
        struct bp_sender st = { targets[i % ntargets], i, 0 };
        tr_pid pid;
        TT_EQ(tr_spawn(tr_runtime_ctx(rt), bp_sender_fn, &st, sizeof st, &pid), 0);
        TT_EQ(tr_send(tr_runtime_ctx(rt), pid, BP_GO, NULL, 0), 0);
    }
}

static void bp_fan_run(unsigned threads)
{
    struct bp_fan *fan = calloc(1, sizeof *fan);
    CU_ASSERT_FATAL(fan != NULL);
    tr_runtime *rt = tt_runtime(threads, 0);
    TT_EQ(tr_spawn(tr_runtime_ctx(rt), bp_sink, &fan, sizeof fan, &fan->sink), 0);
    for (unsigned i = 0; i < BP_RELAYS; i++)
        TT_EQ(tr_spawn(tr_runtime_ctx(rt), bp_relay, &fan, sizeof fan, &fan->relays[i]), 0);
    /* A sender always goes through the same relay, so its order holds. */
    bp_start_senders(rt, BP_SENDERS, fan->relays, BP_RELAYS);
    TT_EQ(tr_runtime_run(rt), 0); /* quiescence: nobody left waiting */
    TT_NO_ERRORS();
    TT_EQ(atomic_load(&fan->received), (uint64_t)BP_SENDERS * BP_EACH);
    for (unsigned i = 0; i < BP_SENDERS; i++)
        TT_EQ(fan->next[i], BP_EACH);
    tr_stats st;
    tr_runtime_stats(rt, &st);
    TT_EQ(st.dead_letters, 0);
    TT_EQ(st.messages_handled, st.messages_sent);
    tr_runtime_destroy(rt);
    free(fan);
}

static void test_bp_fan_threads_1(void) { bp_fan_run(1); }
static void test_bp_fan_threads_2(void) { bp_fan_run(2); }
static void test_bp_fan_threads_4(void) { bp_fan_run(4); }

/* A flooded receiver stops part-way while senders wait on it: they are let
 * go, what they send after is a dead letter, and the run still ends. */
static void doomed_receiver(tr_ctx *cx, void *state, const tr_msg *m)
{
    (void)m;
    _Atomic uint64_t *handled = *(_Atomic uint64_t **)state;
    if (atomic_fetch_add(handled, 1) + 1 == 50000)
        tr_stop(cx);
}

static void test_overloaded_receiver_stops(void)
{
    _Atomic uint64_t handled = 0;
    _Atomic uint64_t *hp = &handled;
    tr_runtime *rt = tt_runtime(2, 0);
    tr_pid target;
    TT_EQ(tr_spawn(tr_runtime_ctx(rt), doomed_receiver, &hp, sizeof hp, &target), 0);
    bp_start_senders(rt, 8, &target, 1);
    TT_EQ(tr_runtime_run(rt), 0);
    TT_NO_ERRORS();
    TT_EQ(atomic_load(&handled), 50000);
    tr_stats st;
    tr_runtime_stats(rt, &st);
    /* Items: 8 * BP_EACH; of them 50,000 handled, the rest dead letters. */
    TT_EQ(st.dead_letters, 8ull * BP_EACH - 50000);
    TT_EQ(st.actors_alive, 8);
    tr_runtime_destroy(rt);
}


/* ---- threads outside the runtime: tr_send_wait ---- */

#define OUTSIDE_ITEMS (TT_TSAN || TT_ASAN ? 20000u : 200000u)

/* The receiver: about a microsecond of work per item, each item once and
 * in order; got is read by the sending thread. */
struct outside {
    _Atomic uint64_t got;
    uint64_t next;
    volatile uint64_t work; /* the work per item, kept from the optimiser */
    atomic_bool release; /* blocker: the BP_GO turn spins until set */
};

static void outside_receiver(tr_ctx *cx, void *state, const tr_msg *m)
{
    (void)cx;
    struct outside *o = *(struct outside **)state;
    if (m->type == BP_GO) {
        while (!atomic_load(&o->release))
            tt_sleep_ms(1);
        return;
    }
    TT_CHECK(m->type == BP_ITEM && tt_u64(m) == o->next);
    o->next++;
    for (unsigned i = 0; i < 300; i++)
        o->work = o->work * 31 + i;
    atomic_fetch_add_explicit(&o->got, 1, memory_order_relaxed);
}

/* One thread sends OUTSIDE_ITEMS with tr_send_wait, never more than the
 * returned bound ahead of the receiver (the most it was seen behind just
 * before a send); with tr_send the same flood runs hundreds of
 * thousands ahead. */
static uint64_t outside_flood(unsigned threads, unsigned batch)
{
    struct outside o = {0};
    struct outside *op = &o;
    tr_runtime *rt = tt_runtime(threads, batch);
    tr_pid r;
    TT_EQ(tr_spawn(tr_runtime_ctx(rt), outside_receiver, &op, sizeof op, &r), 0);
    TT_EQ(tr_runtime_hold(rt), 0);
    TT_EQ(tr_runtime_start(rt), 0);
    uint64_t max_behind = 0;
    for (uint64_t i = 0; i < OUTSIDE_ITEMS; i++) {
        uint64_t behind = i - atomic_load_explicit(&o.got, memory_order_relaxed);
        if (behind > max_behind)
            max_behind = behind;
        int rc = tr_send_wait(rt, r, BP_ITEM, &i, sizeof i, 0);
        TT_EQ(rc, 0);
        if (rc != 0)
            break;
    }
    TT_EQ(tr_runtime_release(rt), 0);
    TT_EQ(tt_join_within(rt, 60), 0);
    TT_NO_ERRORS();
    TT_EQ(atomic_load(&o.got), OUTSIDE_ITEMS);
    TT_EQ(o.next, OUTSIDE_ITEMS);
    tr_runtime_destroy(rt);
    return max_behind;
}

static void test_outside_sender_waits(void)
{
    const unsigned shapes[][2] = {{1, 0}, {2, 0}, {2, 1}, {4, 0}};
    for (size_t k = 0; k < sizeof shapes / sizeof shapes[0]; k++) {
        unsigned threads = shapes[k][0], batch = shapes[k][1] ? shapes[k][1] : 64;
        uint64_t behind = outside_flood(threads, shapes[k][1]);
        /* Between two turn ends a thread sends at most two looks' periods
         * (a batch each) before a look finds the receiver stalled, and a
         * turn that starts more than a batch behind flags it: measured at
         * most 4.0 batches; held to 5. */
        uint64_t bound = 5 * (uint64_t)batch + 8;
        printf("[w%u b%u: %" PRIu64 " behind (bound %" PRIu64 ")] ", threads, batch, behind,
               bound);
        CU_ASSERT(behind <= bound);
    }
}

/* A receiver stuck in a long turn: a few sends go, then one waits out its
 * timeout and sends nothing; once it is let go, exactly the sends that
 * returned 0 arrive. From a behaviour the call is refused. */
static void refuser(tr_ctx *cx, void *state, const tr_msg *m)
{
    (void)state, (void)m;
    uint64_t v = 0;
    TT_CHECK(tr_send_wait(tr_ctx_runtime(cx), tr_self(cx), BP_ITEM, &v, sizeof v, 0) ==
             TR_EDEADLK);
}

static void test_outside_wait_times_out(void)
{
    struct outside o = {0};
    struct outside *op = &o;
    tr_config cfg;
    tr_config_init(&cfg);
    cfg.threads = 2;
    cfg.watchdog_ms = 0; /* the blocker's long turn is the point */
    tr_runtime *rt = NULL;
    CU_ASSERT_FATAL(tr_runtime_create(&cfg, &rt) == 0);
    tr_pid r, f;
    TT_EQ(tr_spawn(tr_runtime_ctx(rt), outside_receiver, &op, sizeof op, &r), 0);
    TT_EQ(tr_spawn(tr_runtime_ctx(rt), refuser, NULL, 0, &f), 0);
    /* Not running, receiver idle: nothing to wait for. */
    uint64_t v = 0;
    TT_EQ(tr_send_wait(rt, r, BP_GO, NULL, 0, 0), 0);
    TT_EQ(tr_send(tr_runtime_ctx(rt), f, BP_GO, NULL, 0), 0);
    TT_EQ(tr_runtime_hold(rt), 0);
    TT_EQ(tr_runtime_start(rt), 0);
    int rc = 0;
    for (v = 0; v < 1000 && (rc = tr_send_wait(rt, r, BP_ITEM, &v, sizeof v, 20 * TR_MSEC)) == 0;)
        v++;
    TT_EQ(rc, TR_ETIMEDOUT);
    if (v < 1 || v > 2 * 64)
        printf("\n    %" PRIu64 " sends before the wait", v);
    CU_ASSERT(v >= 1 && v <= 2 * 64); /* up to two looks' periods, then the wait */
    atomic_store(&o.release, true);
    TT_EQ(tr_runtime_release(rt), 0);
    TT_EQ(tt_join_within(rt, 60), 0);
    TT_NO_ERRORS();
    TT_EQ(atomic_load(&o.got), v);
    TT_EQ(o.next, v);
    TT_EQ(tr_send_wait(NULL, r, BP_ITEM, &v, sizeof v, 0), TR_EINVAL);
    tr_runtime_destroy(rt);
}

void register_backpressure_tests(void)
{
    CU_pSuite s = tt_suite("backpressure");
    tt_test(s, "flood_of_bursts_is_bounded", test_flood_bursts);
    tt_test(s, "flood_of_a_self_loop_is_bounded", test_flood_self_loop);
    tt_test(s, "eight_floods_of_bursts_are_bounded", test_flood_eight_bursts);
    tt_test(s, "eight_floods_of_self_loops_are_bounded", test_flood_eight_self_loops);
    tt_test(s, "round_robin_to_60_never_strands_the_sender", test_round_robin);
    tt_test(s, "ring_of_mutual_floods_finishes_threads_1", test_ring_flood_1);
    tt_test(s, "ring_of_mutual_floods_finishes_threads_2", test_ring_flood_2);
    tt_test(s, "ring_of_mutual_floods_finishes_threads_4", test_ring_flood_4);
    tt_test(s, "nested_waits_threads_1", test_bp_fan_threads_1);
    tt_test(s, "nested_waits_threads_2", test_bp_fan_threads_2);
    tt_test(s, "nested_waits_threads_4", test_bp_fan_threads_4);
    tt_test(s, "receiver_stops_while_senders_wait", test_overloaded_receiver_stops);
    tt_test(s, "outside_sender_waits", test_outside_sender_waits);
    tt_test(s, "outside_wait_times_out", test_outside_wait_times_out);
}
