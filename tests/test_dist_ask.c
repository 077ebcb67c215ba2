/* test_dist_ask.c — tr_ask and tr_reply between two troupe nodes (issue
 * 13): a thousand asks to an actor of the other node each answered once,
 * with the right reply and ref; an ask to an actor that has stopped there
 * fails once (its dead-letter bounce, carried back); an ask handled
 * without an answer fails at the end of the remote turn; a timeout passes
 * while the remote turn still runs, and the late failure is flushed; asks
 * in flight when the connection goes (the peer stops being a node, or
 * this node does) fail then, once each, with TR_ASK_NOCONNECTION, those
 * without a timeout too, and one answered before is not failed again; and
 * a peer's request/reply bytes that do not hold together never reach
 * actors/ask.c (they arrive as TR_DIST_TERM). */
#include <stdlib.h>
#include <string.h>

#include "../actors/ask.h"
#include "../dist/dist.h"
#include "dist_util.h"

enum { HELLO = 1, Q, SILENT, BLOCK, NEXT, PING, STOP, CONNECT, ASK_MANY, ASK_ONE, SEND_STOP };

#define MANY 1000
#define LONG_NS (UINT64_C(60) * 1000000000) /* a timeout that must never pass */

/* ---- node b: the service ---- */

static atomic_bool released;
static atomic_int blocked;

/* HELLO: answered, so that node a learns the pid. Q: asked, answered
 * 3i+1. SILENT: asked, not answered. BLOCK: asked, the turn waits for the
 * test, not answered. NEXT: PING to the asker of the BLOCK. STOP: stops. */
static void service(tr_ctx *cx, void *state, const tr_msg *m)
{
    tr_pid *blocked_asker = state;
    switch (m->type) {
    case HELLO:
        TT_CHECK(tr_send(cx, m->from, HELLO, NULL, 0) == 0);
        break;
    case Q: {
        const uint32_t *v = TR_PAYLOAD(m, uint32_t);
        TT_CHECK(v != NULL);
        uint32_t r = v != NULL ? 3 * *v + 1 : 0;
        TT_CHECK(tr_reply(cx, m, &r, sizeof r) == 0);
        break;
    }
    case BLOCK:
        *blocked_asker = m->from;
        atomic_store(&blocked, 1);
        for (double until = tt_now() + 30; !atomic_load(&released) && tt_now() < until;)
            tt_sleep_ms(1);
        break;
    case NEXT:
        TT_CHECK(tr_send(cx, *blocked_asker, PING, NULL, 0) == 0);
        break;
    case STOP:
        tr_stop(cx);
        break;
    default:
        break; /* SILENT */
    }
}

/* ---- node a: the client ---- */

typedef struct cmd {
    tr_pid to;
    uint32_t type;
    uint64_t timeout_ns;
    char name[16];
} cmd;

static atomic_int hellos, replies, bad, failures, pings, ask_rc;
static atomic_int why[5];
static atomic_uint_fast64_t hello_from, fail_to, fail_from;
static uint64_t refs[MANY];
static tr_pid many_to;
static int seen[MANY];

/* A reply: to one of the MANY asks (refs[0] set), or to a single one
 * (asked with 0: answered 1). */
static void answer(const tr_msg *m)
{
    uint64_t ref = tr_msg_ref(m);
    const uint32_t *v = TR_PAYLOAD(m, uint32_t);
    uint64_t i = ref - refs[0];
    if (refs[0] == 0 && ref != 0 && v != NULL && *v == 1)
        ; /* a single ask's */
    else if (i < MANY && refs[i] == ref && v != NULL && *v == 3 * i + 1 && m->from == many_to)
        seen[i]++;
    else
        atomic_fetch_add(&bad, 1);
    atomic_fetch_add(&replies, 1);
}

static void client(tr_ctx *cx, void *state, const tr_msg *m)
{
    (void)state;
    const cmd *c = m->len == sizeof(cmd) ? (const cmd *)m->data : NULL;
    switch (m->type) {
    case CONNECT:
        TT_CHECK(tr_send_named(cx, c->name, "tt_kb@localhost", HELLO, NULL, 0) == 0);
        break;
    case HELLO:
        atomic_store(&hello_from, m->from);
        atomic_fetch_add(&hellos, 1);
        break;
    case ASK_MANY:
        many_to = c->to;
        for (uint32_t i = 0; i < MANY; i++)
            TT_CHECK(tr_ask(cx, c->to, Q, &i, sizeof i, LONG_NS, &refs[i]) == 0);
        break;
    case ASK_ONE: {
        uint32_t v = 0;
        atomic_store(&ask_rc, tr_ask(cx, c->to, c->type, &v, sizeof v, c->timeout_ns, NULL));
        break;
    }
    case SEND_STOP:
        TT_CHECK(tr_send(cx, c->to, STOP, NULL, 0) == 0);
        break;
    case TR_REPLY:
        answer(m);
        break;
    case TR_ASK_FAILED: {
        const tr_ask_failure *f = TR_PAYLOAD(m, tr_ask_failure);
        TT_CHECK(f != NULL);
        if (f != NULL && f->why >= 0 && f->why < 5)
            atomic_fetch_add(&why[f->why], 1);
        if (f != NULL)
            atomic_store(&fail_to, f->to);
        atomic_store(&fail_from, m->from);
        atomic_fetch_add(&failures, 1);
        break;
    }
    case PING:
        atomic_fetch_add(&pings, 1);
        break;
    default:
        break;
    }
}

/* ---- the two nodes ---- */

typedef struct two {
    uint16_t epmd;
    tr_runtime *a, *b;
    tr_pid client, svc_local; /* the client on a; the service as b sees it */
} two;

static void reset(void)
{
    atomic_store(&released, false);
    atomic_store(&blocked, 0);
    atomic_store(&hellos, 0);
    atomic_store(&replies, 0);
    atomic_store(&bad, 0);
    atomic_store(&failures, 0);
    atomic_store(&pings, 0);
    atomic_store(&ask_rc, -9999);
    for (int k = 0; k < 5; k++)
        atomic_store(&why[k], 0);
    memset(refs, 0, sizeof refs);
    memset(seen, 0, sizeof seen);
}

static bool two_start(two *t)
{
    reset();
    memset(t, 0, sizeof *t);
    if ((t->epmd = dt_epmd_start()) == 0)
        return false;
    t->a = dt_node("tt_ka", t->epmd, 0);
    t->b = dt_node("tt_kb", t->epmd, 0);
    tr_pid none = TR_PID_NONE;
    tr_actor_spec s = {.behaviour = service, .state = &none, .state_size = sizeof none,
                       .name = "svc"};
    tr_actor_spec v = {.behaviour = service, .state = &none, .state_size = sizeof none,
                       .name = "vic"};
    TT_EQ(tr_spawn_spec(tr_runtime_ctx(t->b), &s, &t->svc_local), 0);
    TT_EQ(tr_spawn_spec(tr_runtime_ctx(t->b), &v, NULL), 0);
    TT_EQ(tr_spawn(tr_runtime_ctx(t->a), client, NULL, 0, &t->client), 0);
    return true;
}

static void two_end(two *t)
{
    atomic_store(&released, true);
    dt_node_end(t->b);
    dt_node_end(t->a);
    dt_epmd_stop(t->epmd);
}

static void command(two *t, uint32_t type, const cmd *c)
{
    TT_EQ(tr_send(tr_runtime_ctx(t->a), t->client, type, c, sizeof *c), 0);
}

/* The pid, on node a, of b's actor registered as `name`. */
static tr_pid remote(two *t, const char *name)
{
    cmd c = {0};
    strcpy(c.name, name);
    int before = atomic_load(&hellos);
    command(t, CONNECT, &c);
    CU_ASSERT_FATAL(tt_wait_count(&hellos, before + 1, 60));
    tr_pid p = (tr_pid)atomic_load(&hello_from);
    CU_ASSERT(TR__PID_NODE(p) != 0);
    return p;
}

static void ask_one(two *t, tr_pid to, uint32_t type, uint64_t timeout_ns)
{
    cmd c = {.to = to, .type = type, .timeout_ns = timeout_ns};
    atomic_store(&ask_rc, -9999);
    command(t, ASK_ONE, &c);
}

/* ---- the tests ---- */

static void test_thousand_remote_asks_each_answered_once(void)
{
    two t;
    if (dt_skip())
        return;
    CU_ASSERT_FATAL(two_start(&t));
    tr_pid svc = remote(&t, "svc");
    cmd c = {.to = svc};
    command(&t, ASK_MANY, &c);
    CU_ASSERT(tt_wait_count(&replies, MANY, 60));
    TT_EQ(atomic_load(&replies), MANY);
    TT_EQ(atomic_load(&bad), 0);
    TT_EQ(atomic_load(&failures), 0);
    int once = 0;
    for (int i = 0; i < MANY; i++)
        once += seen[i] == 1;
    TT_EQ(once, MANY);
    two_end(&t);
    TT_NO_ERRORS();
}

static void test_ask_to_stopped_remote_actor_fails_once(void)
{
    two t;
    if (dt_skip())
        return;
    CU_ASSERT_FATAL(two_start(&t));
    tr_pid vic = remote(&t, "vic");
    cmd c = {.to = vic};
    /* Same sender, same target: STOP is handled before the ask arrives. */
    command(&t, SEND_STOP, &c);
    ask_one(&t, vic, Q, LONG_NS);
    CU_ASSERT(tt_wait_count(&failures, 1, 60));
    TT_EQ(atomic_load(&ask_rc), 0);
    TT_EQ(atomic_load(&why[TR_ASK_GONE]), 1);
    /* The failure names the actor asked, as this node numbers it. */
    CU_ASSERT(atomic_load(&fail_to) == vic);
    CU_ASSERT(atomic_load(&fail_from) == vic);
    /* Again, the actor long gone: one more failure, one per ask. */
    ask_one(&t, vic, Q, LONG_NS);
    CU_ASSERT(tt_wait_count(&failures, 2, 60));
    TT_EQ(atomic_load(&why[TR_ASK_GONE]), 2);
    /* A reply from the live service comes after anything b sent before
     * it on the way back; no third failure may be among them. */
    ask_one(&t, remote(&t, "svc"), Q, LONG_NS);
    CU_ASSERT(tt_wait_count(&replies, 1, 60));
    TT_EQ(atomic_load(&failures), 2);
    TT_EQ(atomic_load(&replies), 1);
    TT_EQ(atomic_load(&bad), 0);
    two_end(&t);
    TT_NO_ERRORS();
}

static void test_unanswered_remote_ask_fails_at_end_of_turn(void)
{
    two t;
    if (dt_skip())
        return;
    CU_ASSERT_FATAL(two_start(&t));
    tr_pid svc = remote(&t, "svc");
    ask_one(&t, svc, SILENT, LONG_NS);
    CU_ASSERT(tt_wait_count(&failures, 1, 60));
    TT_EQ(atomic_load(&ask_rc), 0);
    TT_EQ(atomic_load(&why[TR_ASK_UNANSWERED]), 1);
    CU_ASSERT(atomic_load(&fail_from) == svc);
    /* The service goes on answering. */
    ask_one(&t, svc, Q, LONG_NS);
    CU_ASSERT(tt_wait_count(&replies, 1, 60));
    TT_EQ(atomic_load(&failures), 1);
    TT_EQ(atomic_load(&bad), 0);
    two_end(&t);
    TT_NO_ERRORS();
}

static void test_timeout_passes_while_remote_turn_runs(void)
{
    two t;
    if (dt_skip())
        return;
    CU_ASSERT_FATAL(two_start(&t));
    tr_pid svc = remote(&t, "svc");
    /* The remote turn waits for the test, which waits for the timeout:
     * the timeout comes first whatever the machine's load. */
    ask_one(&t, svc, BLOCK, 10 * 1000000);
    CU_ASSERT(tt_wait_count(&blocked, 1, 60));
    CU_ASSERT(tt_wait_count(&failures, 1, 60));
    TT_EQ(atomic_load(&why[TR_ASK_TIMEOUT]), 1);
    CU_ASSERT(atomic_load(&fail_from) == svc);
    /* The turn ends: its TR_ASK_UNANSWERED goes back, and a PING after it
     * on the same pair. When the PING is in, the late failure was there
     * before it and has been flushed. */
    atomic_store(&released, true);
    TT_EQ(tr_send(tr_runtime_ctx(t.b), t.svc_local, NEXT, NULL, 0), 0);
    CU_ASSERT(tt_wait_count(&pings, 1, 60));
    TT_EQ(atomic_load(&failures), 1);
    TT_EQ(atomic_load(&why[TR_ASK_UNANSWERED]), 0);
    two_end(&t);
    TT_NO_ERRORS();
}

/* Ends a node whose distribution the test has stopped already. */
static void node_end_stopped(tr_runtime *rt)
{
    tr_runtime_shutdown(rt);
    int rc = tt_join_within(rt, 30);
    CU_ASSERT(rc == 0 || rc == 1);
    tr_runtime_destroy(rt);
}

/* Node a asks b's service: once answered, then BLOCK without a timeout
 * (the turn waits for the test) and Q with one behind it. `which` node
 * stops being a node with those two in flight: each fails then, once,
 * with TR_ASK_NOCONNECTION, from the service's pid; the answered one
 * gets nothing more, and what b's turn does once let go (BLOCK's
 * unanswered failure, Q's reply) cannot come back. */
static void asks_in_flight_when_node_stops(bool peer)
{
    two t;
    if (dt_skip())
        return;
    CU_ASSERT_FATAL(two_start(&t));
    tr_pid svc = remote(&t, "svc");
    ask_one(&t, svc, Q, 0);
    CU_ASSERT(tt_wait_count(&replies, 1, 60));
    ask_one(&t, svc, BLOCK, 0);
    CU_ASSERT(tt_wait_count(&blocked, 1, 60));
    TT_EQ(atomic_load(&ask_rc), 0);
    ask_one(&t, svc, Q, LONG_NS);
    /* The queued ask has left a (its rc is in) before the node stops;
     * whether it reached b first does not matter: no answer can come. */
    for (double until = tt_now() + 30; atomic_load(&ask_rc) == -9999 && tt_now() < until;)
        tt_sleep_ms(1);
    TT_EQ(atomic_load(&ask_rc), 0);
    TT_EQ(tr_node_stop(tr_runtime_ctx(peer ? t.b : t.a)), 0);
    CU_ASSERT(tt_wait_count(&failures, 2, 60));
    atomic_store(&released, true);
    tt_sleep_ms(100); /* a third answer would have come; none may */
    TT_EQ(atomic_load(&failures), 2);
    TT_EQ(atomic_load(&why[TR_ASK_NOCONNECTION]), 2);
    TT_EQ(atomic_load(&replies), 1);
    TT_EQ(atomic_load(&bad), 0);
    CU_ASSERT(atomic_load(&fail_from) == svc);
    CU_ASSERT(atomic_load(&fail_to) == svc);
    if (peer) {
        node_end_stopped(t.b);
        dt_node_end(t.a);
    } else {
        dt_node_end(t.b);
        node_end_stopped(t.a);
    }
    dt_epmd_stop(t.epmd);
    TT_NO_ERRORS();
}

static void test_asks_in_flight_fail_when_peer_goes(void)
{
    asks_in_flight_when_node_stops(true);
}

static void test_asks_in_flight_fail_when_own_node_stops(void)
{
    asks_in_flight_when_node_stops(false);
}

/* An asker that ends at once: its init fails. */
static int fail_init(tr_ctx *cx, void *state, tr_pid spawner)
{
    (void)cx, (void)state, (void)spawner;
    return -1;
}

/* A peer's set of askers (dist/node.c), on its own: each live asker is
 * in it once however often it asks; askers that have ended leave it as
 * it grows, so that it is bounded by those alive, not by all that ever
 * asked; taking it hands over every live one exactly once, with the node
 * and epoch, and leaves it empty; telling reaches each live one, and no
 * ended one (it would be a dead letter). */
static void test_askers_of_a_peer_are_kept_while_they_live(void)
{
    enum { LIVE = 100, ENDED = 3000 };
    tr_runtime *rt = tt_runtime(1, 0);
    static tr_pid live[LIVE], ended[ENDED];
    tr_pid none = TR_PID_NONE;
    for (int i = 0; i < LIVE; i++)
        TT_EQ(tr_spawn(tr_runtime_ctx(rt), service, &none, sizeof none, &live[i]), 0);
    tr_actor_spec gone = {.behaviour = service, .state = &none, .state_size = sizeof none,
                          .init = fail_init};
    for (int k = 0; k < ENDED; k++)
        TT_EQ(tr_spawn_spec(tr_runtime_ctx(rt), &gone, &ended[k]), 0);
    /* One run: the inits fail, and the run ends once nothing is left to do. */
    TT_EQ(tr_runtime_start(rt), 0);
    TT_EQ(tt_join_within(rt, 60), 0);
    tr_stats s;
    tr_runtime_stats(rt, &s);
    TT_EQ(s.actors_alive, LIVE);

    tr__peer p;
    memset(&p, 0, sizeof p);
    p.epoch = 3;
    for (int round = 0; round < 3; round++)
        for (int i = 0; i < LIVE; i++)
            TT_EQ(tr__dist_asker_add(rt, &p, live[i]), 0);
    TT_EQ(p.naskers, LIVE);
    uint32_t cap = p.askers_cap;
    for (int k = 0; k < ENDED; k++)
        TT_EQ(tr__dist_asker_add(rt, &p, ended[k]), 0);
    CU_ASSERT(p.askers_cap <= 4 * cap);
    tr__dist_askers a = tr__dist_askers_take(&p, 7);
    CU_ASSERT(p.askers == NULL && p.naskers == 0 && p.askers_cap == 0);
    TT_EQ(a.lost.node, 7);
    TT_EQ(a.lost.epoch, 3);
    int found = 0, left = 0;
    for (uint32_t k = 0; k < a.cap; k++) {
        for (int i = 0; i < LIVE; i++)
            found += a.askers[k] == live[i];
        left += a.askers[k] != TR_PID_NONE;
    }
    TT_EQ(found, LIVE);
    CU_ASSERT(left > LIVE); /* ended ones added since the set last grew */

    /* Told: each live asker gets a TR__ASK_LOST (queued: no run now); the
     * ended ones are passed over, not dead letters. */
    tr_stats before;
    tr_runtime_stats(rt, &before);
    tr__dist_askers_tell(rt, NULL, &a);
    CU_ASSERT(a.askers == NULL);
    tr_runtime_stats(rt, &s);
    TT_EQ(s.messages_sent - before.messages_sent, LIVE);
    TT_EQ(s.dead_letters - before.dead_letters, 0);
    tr_runtime_destroy(rt);
    TT_NO_ERRORS();
}

/* ---- a peer's bytes ---- */

static size_t trailed(unsigned char *b, const void *data, uint32_t len, uint64_t ref,
                      uint32_t type)
{
    size_t at = TR__ASK_TAIL_AT(len);
    memset(b, 0, at);
    memcpy(b, data, len);
    tr__ask_tail t = {.ref = ref, .type = type, .len = len};
    memcpy(b + at, &t, sizeof t);
    return at + sizeof t;
}

static void test_peer_ask_bytes_are_checked(void)
{
    unsigned char b[128];
    /* Sound: an ask with 5 bytes (tail at 8), an empty reply, one of 8. */
    size_t n = trailed(b, "hello", 5, 9, 42);
    TT_EQ(n, 24);
    CU_ASSERT(tr__ask_wire_ok(TR__ASK, b, n));
    CU_ASSERT(!tr__ask_wire_ok(TR_REPLY, b, n)); /* a reply has no user type */
    CU_ASSERT(!tr__ask_wire_ok(TR_MSG_SYSTEM - 1, b, n)); /* not a request/reply type */
    CU_ASSERT(!tr__ask_wire_ok(TR__ASK_TIMEOUT, b, n)); /* the asker's own timer: never from a peer */
    CU_ASSERT(tr__ask_wire_ok(TR_REPLY, b, trailed(b, "", 0, 9, 0)));
    CU_ASSERT(tr__ask_wire_ok(TR_REPLY, b, trailed(b, "12345678", 8, 9, 0)));

    /* Too short for a tail at all. */
    for (size_t k = 0; k < sizeof(tr__ask_tail); k++)
        CU_ASSERT(!tr__ask_wire_ok(TR__ASK, b, k));
    /* The tail's length where the tail is not: longer than the bytes,
     * shorter (the tail would be looked for too early), past the limit. */
    n = trailed(b, "hello", 5, 9, 42);
    tr__ask_tail t;
    uint32_t lens[] = {6, 9, 16, 4, 0, UINT32_MAX, TR_MSG_MAX_LEN + 1};
    for (size_t k = 0; k < sizeof lens / sizeof lens[0]; k++) {
        memcpy(&t, b + 8, sizeof t);
        uint32_t keep = t.len;
        t.len = lens[k];
        memcpy(b + 8, &t, sizeof t);
        /* 6 and 7 round to 8 too: the tail is where ask.c looks; only
         * lengths that move it are refused. */
        CU_ASSERT(tr__ask_wire_ok(TR__ASK, b, n) == (TR__ASK_TAIL_AT(lens[k]) == 8));
        t.len = keep;
        memcpy(b + 8, &t, sizeof t);
    }
    /* Not aligned: a byte more or less in front of the tail. */
    unsigned char c[64];
    memcpy(c, b, 8);
    c[8] = 0;
    memcpy(c + 9, b + 8, sizeof t);
    CU_ASSERT(!tr__ask_wire_ok(TR__ASK, c, 9 + sizeof t));
    CU_ASSERT(!tr__ask_wire_ok(TR__ASK, b + 1, n - 1));
    /* A ref of 0 is no ask's; a system type is no user's. */
    CU_ASSERT(!tr__ask_wire_ok(TR__ASK, b, trailed(b, "x", 1, 0, 42)));
    CU_ASSERT(!tr__ask_wire_ok(TR__ASK, b, trailed(b, "x", 1, 9, TR_MSG_SYSTEM)));
    CU_ASSERT(!tr__ask_wire_ok(TR__ASK, b, trailed(b, "x", 1, 9, TR_REPLY)));

    /* A failure: exactly one tr_ask_failure, a ref, a known why. */
    tr_ask_failure f = {.ref = 9, .to = 1, .why = TR_ASK_GONE};
    CU_ASSERT(tr__ask_wire_ok(TR_ASK_FAILED, &f, sizeof f));
    CU_ASSERT(!tr__ask_wire_ok(TR_ASK_FAILED, &f, sizeof f - 1));
    memcpy(b, &f, sizeof f);
    CU_ASSERT(!tr__ask_wire_ok(TR_ASK_FAILED, b, sizeof f + 1));
    f.why = 0;
    CU_ASSERT(!tr__ask_wire_ok(TR_ASK_FAILED, &f, sizeof f));
    f.why = TR_ASK_UNANSWERED + 1;
    CU_ASSERT(!tr__ask_wire_ok(TR_ASK_FAILED, &f, sizeof f));
    f.why = TR_ASK_TIMEOUT;
    f.ref = 0;
    CU_ASSERT(!tr__ask_wire_ok(TR_ASK_FAILED, &f, sizeof f));
}

/* The same on whole terms, as they come off a connection. */
static void term_as(uint32_t type, const void *data, size_t len, uint32_t *got, size_t *got_len)
{
    ei_x_buff x;
    ei_x_new(&x);
    TT_EQ(tr__term_from_msg(&x, type, data, len), 0);
    const char *d;
    tr__term_to_msg(x.buff, (size_t)x.index, got, &d, got_len);
    if (*got != TR_DIST_TERM)
        CU_ASSERT(*got_len == len && memcmp(d, data, len) == 0);
    ei_x_free(&x);
}

static void test_peer_ask_terms_arrive_only_when_sound(void)
{
    unsigned char b[64];
    uint32_t type;
    size_t len;
    size_t n = trailed(b, "hello", 5, 9, 42);
    term_as(TR__ASK, b, n, &type, &len);
    TT_EQ(type, TR__ASK);
    term_as(TR_REPLY, b, trailed(b, "hi", 2, 9, 0), &type, &len);
    TT_EQ(type, TR_REPLY);
    tr_ask_failure f = {.ref = 9, .to = 1, .why = TR_ASK_GONE};
    term_as(TR_ASK_FAILED, &f, sizeof f, &type, &len);
    TT_EQ(type, TR_ASK_FAILED);

    /* Forged: a reply whose tail claims 40 bytes in 24, an ask cut short,
     * the asker's timer, another runtime type: each the term it is. */
    n = trailed(b, "hello", 5, 9, 0);
    tr__ask_tail t;
    memcpy(&t, b + 8, sizeof t);
    t.len = 40;
    memcpy(b + 8, &t, sizeof t);
    term_as(TR_REPLY, b, n, &type, &len);
    TT_EQ(type, TR_DIST_TERM);
    term_as(TR__ASK, b, 10, &type, &len);
    TT_EQ(type, TR_DIST_TERM);
    term_as(TR__ASK_TIMEOUT, &f, sizeof f, &type, &len);
    TT_EQ(type, TR_DIST_TERM);
    term_as(TR_MSG_SYSTEM, "", 0, &type, &len);
    TT_EQ(type, TR_DIST_TERM);
    TT_NO_ERRORS();
}

/* ---- from Erlang, on the wire ---- */

static atomic_int sink_terms, sink_asks, sink_other;

/* Counts what arrives; answers an ask of type 42 carrying "hello". */
static void sink(tr_ctx *cx, void *state, const tr_msg *m)
{
    (void)state;
    if (m->type == TR_DIST_TERM) {
        atomic_fetch_add(&sink_terms, 1);
    } else if (m->type == 42 && m->len == 5 && memcmp(m->data, "hello", 5) == 0) {
        TT_CHECK(tr_msg_ref(m) == 0); /* an ask is no reply */
        TT_CHECK(tr_reply(cx, m, "world", 5) == 0);
        atomic_fetch_add(&sink_asks, 1);
    } else {
        atomic_fetch_add(&sink_other, 1);
    }
}

/* An Erlang process that knows the layout forges two broken asks and
 * replies and sends one sound ask: the broken ones arrive as the terms
 * they are, the sound one is answered with a TR_REPLY it can read. */
static void test_erlang_forged_asks_arrive_as_terms(void)
{
    if (dt_skip())
        return;
    atomic_store(&sink_terms, 0);
    atomic_store(&sink_asks, 0);
    atomic_store(&sink_other, 0);
    uint16_t epmd = dt_epmd_start();
    CU_ASSERT_FATAL(epmd != 0);
    tr_runtime *rt = dt_node("tt_kc", epmd, 0);
    tr_actor_spec s = {.behaviour = sink, .name = "sink"};
    TT_EQ(tr_spawn_spec(tr_runtime_ctx(rt), &s, NULL), 0);
    char script[2048];
    snprintf(script, sizeof script,
             "N = 'tt_kc@localhost', A = %u, R = %u,"
             "{sink, N} ! {R, <<1,2,3>>},"
             "{sink, N} ! {A, <<\"hello\",0,0,0, 7:64/little, 42:32/little, 99:32/little>>},"
             "{sink, N} ! {A, <<\"hello\",0,0, 7:64/little, 42:32/little, 5:32/little>>},"
             "{sink, N} ! {A, <<\"hello\",0,0,0, 7:64/little, 42:32/little, 5:32/little>>},"
             "Got = receive {R, <<\"world\",_:3/binary, 7:64/little, 0:32, 5:32/little>>} -> ok;"
             " Other -> Other after 15000 -> timeout end,"
             "io:format(\"REPLY ~p~n\", [Got]), halt().",
             (unsigned)TR__ASK, (unsigned)TR_REPLY);
    dt_erl erl;
    TT_EQ(dt_erl_start(&erl, epmd, "tt_kerl@localhost", DT_COOKIE, script), 0);
    CU_ASSERT(dt_erl_wait(&erl, 60));
    CU_ASSERT(dt_erl_is(&erl, "REPLY", "ok"));
    /* Same pair, in order: the forged ones were handled before the ask. */
    TT_EQ(atomic_load(&sink_terms), 3);
    TT_EQ(atomic_load(&sink_asks), 1);
    TT_EQ(atomic_load(&sink_other), 0);
    TT_NO_ERRORS();
    dt_node_end(rt);
    dt_epmd_stop(epmd);
}

void register_dist_ask_tests(void)
{
    CU_pSuite s = tt_suite("dist_ask");
    tt_test(s, "peer_ask_bytes_are_checked", test_peer_ask_bytes_are_checked);
    tt_test(s, "peer_ask_terms_arrive_only_when_sound", test_peer_ask_terms_arrive_only_when_sound);
    tt_test(s, "thousand_remote_asks_each_answered_once", test_thousand_remote_asks_each_answered_once);
    tt_test(s, "ask_to_stopped_remote_actor_fails_once", test_ask_to_stopped_remote_actor_fails_once);
    tt_test(s, "unanswered_remote_ask_fails_at_end_of_turn",
            test_unanswered_remote_ask_fails_at_end_of_turn);
    tt_test(s, "timeout_passes_while_remote_turn_runs", test_timeout_passes_while_remote_turn_runs);
    tt_test(s, "askers_of_a_peer_are_kept_while_they_live",
            test_askers_of_a_peer_are_kept_while_they_live);
    tt_test(s, "asks_in_flight_fail_when_peer_goes", test_asks_in_flight_fail_when_peer_goes);
    tt_test(s, "asks_in_flight_fail_when_own_node_stops",
            test_asks_in_flight_fail_when_own_node_stops);
    tt_test(s, "erlang_forged_asks_arrive_as_terms", test_erlang_forged_asks_arrive_as_terms);
}
