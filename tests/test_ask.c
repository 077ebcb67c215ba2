/* test_ask.c — request/reply (troupe/ask.h).
 *
 * Exactly one answer per ask: 100,000 asks from 16 askers to 8 answerers
 * on 4 workers (some answerers leave asks unanswered, two end midway, some
 * asks have timeouts) are each resolved once, by the right kind of answer;
 * 20,000 asks whose refs wrap around the asker's table past asks kept
 * pending behind long queues each find their own ask again.
 * A reply that comes after the timeout is dropped; a target that stops
 * before answering, one that has ended, one killed with the ask queued and
 * one that returns without answering each give one TR_ASK_FAILED; a pid
 * that was never valid is an immediate TR_ENOPID. tr_call: TR_EDEADLK on a
 * worker, the reply from outside, its timeout, its errors, and a call
 * pending when the runtime is destroyed. No timing assertions: timeouts are
 * made certain by a target that is held in its turn until the asker has
 * seen the timeout.
 */
#include "tests.h"

#include "../actors/pid.h"

#include <stdlib.h>
#include <string.h>

/* A pid never issued by any runtime: the last slot index, generation 1. */
#define NEVER_ISSUED ((tr_pid)1 << TR__PID_INDEX_BITS | ((1u << TR__PID_INDEX_BITS) - 1))

enum { GO = 1, Q, PLAIN, ASKED, HOLD }; /* ASKED: what the probe asks with */

static tr_ask_failure failure_of(const tr_msg *m)
{
    tr_ask_failure f;
    memset(&f, 0, sizeof f);
    TT_CHECK(m->len == sizeof f);
    if (m->len == sizeof f)
        memcpy(&f, m->data, sizeof f);
    return f;
}

/* ======================================================================
 * targets
 * ====================================================================== */

/* Replies to an ask with its u64 payload + 1; checks that a plain message
 * cannot be replied to and that an ask cannot be answered twice. */
static void echo(tr_ctx *cx, void *state, const tr_msg *m)
{
    (void)state;
    if (m->type == PLAIN) {
        TT_CHECK(tr_reply(cx, m, NULL, 0) == TR_EINVAL);
        return;
    }
    uint64_t v = tt_u64(m) + 1;
    TT_CHECK(tr_reply(cx, m, &v, sizeof v) == 0);
    TT_CHECK(tr_reply(cx, m, &v, sizeof v) == TR_EINVAL); /* once only */
}

/* Stops without answering. */
static void stopper(tr_ctx *cx, void *state, const tr_msg *m)
{
    (void)state;
    (void)m;
    tr_stop(cx);
}

/* Returns without answering, and lives on. */
static void silent(tr_ctx *cx, void *state, const tr_msg *m)
{
    (void)cx;
    (void)state;
    (void)m;
}

/* HOLD holds its worker in that turn until released, while asks queue
 * up behind it; then each ask is answered (late). The asker and its
 * timer run on the other worker, which polls the reactor while it has
 * nothing else to do. (Not the ask's own turn: that would keep the
 * asker's worker busy with the target it just readied.) */
static atomic_int held, released, late_rc;

static void blocker(tr_ctx *cx, void *state, const tr_msg *m)
{
    (void)state;
    if (m->type == HOLD) {
        atomic_store(&held, 1);
        double until = tt_now() + 120;
        while (atomic_load(&released) == 0 && tt_now() < until)
            tt_sleep_ms(1);
        TT_CHECK(atomic_load(&released) != 0);
        return;
    }
    uint64_t v = tt_u64(m);
    atomic_store(&late_rc, tr_reply(cx, m, &v, sizeof v));
}

/* ======================================================================
 * a probe asker, driven from the test thread
 * ====================================================================== */

struct ask_cmd {
    tr_pid to;
    uint64_t timeout_ns;
    uint64_t value;
};

static pthread_mutex_t probe_mu = PTHREAD_MUTEX_INITIALIZER;
static struct {
    int rc;                  /* of the last tr_ask */
    uint64_t ref;            /* its ref */
    unsigned replies, failures, self_asked, others;
    uint64_t reply_ref, reply_value;
    tr_ask_failure fail;     /* the last failure */
} pr;
static atomic_int failure_seen;

static void probe(tr_ctx *cx, void *state, const tr_msg *m)
{
    (void)state;
    pthread_mutex_lock(&probe_mu);
    if (m->type == Q) {
        struct ask_cmd c;
        TT_CHECK(m->len == sizeof c);
        memcpy(&c, m->data, sizeof c);
        pr.ref = 0;
        pr.rc = tr_ask(cx, c.to, ASKED, &c.value, sizeof c.value, c.timeout_ns, &pr.ref);
    } else if (m->type == ASKED) { /* its own ask: left unanswered */
        pr.self_asked++;
    } else if (m->type == TR_REPLY) {
        pr.replies++;
        pr.reply_ref = tr_msg_ref(m);
        pr.reply_value = tt_u64(m);
    } else if (m->type == TR_ASK_FAILED) {
        pr.failures++;
        pr.fail = failure_of(m);
        TT_CHECK(tr_msg_ref(m) == pr.fail.ref);
        atomic_store(&failure_seen, 1);
    } else {
        pr.others++;
    }
    pthread_mutex_unlock(&probe_mu);
}

static void probe_reset(void)
{
    pthread_mutex_lock(&probe_mu);
    memset(&pr, 0, sizeof pr);
    pthread_mutex_unlock(&probe_mu);
    atomic_store(&failure_seen, 0);
    atomic_store(&held, 0);
    atomic_store(&released, 0);
    atomic_store(&late_rc, 1);
}

/* Has the probe ask `to` and runs to quiescence. */
static void probe_ask(tr_runtime *rt, tr_pid probe_pid, tr_pid to, uint64_t timeout_ns,
                      uint64_t value)
{
    struct ask_cmd c = {.to = to, .timeout_ns = timeout_ns, .value = value};
    TT_EQ(tr_send(tr_runtime_ctx(rt), probe_pid, Q, &c, sizeof c), 0);
    TT_EQ(tr_runtime_run(rt), 0);
}

static tr_pid spawn(tr_runtime *rt, tr_behaviour fn)
{
    tr_pid pid = TR_PID_NONE;
    CU_ASSERT_FATAL(tr_spawn(tr_runtime_ctx(rt), fn, NULL, 0, &pid) == 0);
    return pid;
}

/* Waits until *flag is set, for at most 120 s (a safety net, not a
 * timing assertion). True if it was set. */
static bool wait_for(atomic_int *flag)
{
    double until = tt_now() + 120;
    while (atomic_load(flag) == 0 && tt_now() < until)
        tt_sleep_ms(1);
    return atomic_load(flag) != 0;
}

/* ======================================================================
 * the tests
 * ====================================================================== */

static void test_reply_delivered(void)
{
    probe_reset();
    tr_runtime *rt = tt_runtime(2, 0);
    tr_pid p = spawn(rt, probe), e = spawn(rt, echo);
    probe_ask(rt, p, e, 0, 41);
    TT_EQ(pr.rc, 0);
    CU_ASSERT(pr.ref != 0);
    TT_EQ(pr.replies, 1);
    TT_EQ(pr.failures, 0);
    TT_EQ(pr.reply_ref, pr.ref);
    TT_EQ(pr.reply_value, 42);
    uint64_t first = pr.ref;
    probe_ask(rt, p, e, 3600 * TR_SEC, 1); /* its timer is cancelled, or run would not return */
    TT_EQ(pr.replies, 2);
    TT_EQ(pr.reply_value, 2);
    CU_ASSERT(pr.ref != first);
    probe_ask(rt, p, p, 0, 7); /* asking oneself: the probe does not answer */
    TT_EQ(pr.self_asked, 1);
    TT_EQ(pr.failures, 1);
    TT_EQ(pr.fail.why, TR_ASK_UNANSWERED);
    TT_EQ(pr.others, 0);
    TT_EQ(tr_send(tr_runtime_ctx(rt), e, PLAIN, NULL, 0), 0); /* echo checks tr_reply refuses it */
    TT_EQ(tr_runtime_run(rt), 0);
    TT_NO_ERRORS();
    tr_runtime_destroy(rt);
}

static void test_failures(void)
{
    probe_reset();
    tr_runtime *rt = tt_runtime(2, 0);
    tr_pid p = spawn(rt, probe), s = spawn(rt, stopper), q = spawn(rt, silent);

    probe_ask(rt, p, s, 0, 1); /* stops mid-ask, before answering */
    TT_EQ(pr.failures, 1);
    TT_EQ(pr.fail.why, TR_ASK_GONE);
    TT_EQ(pr.fail.ref, pr.ref);
    TT_EQ(pr.fail.to, s);

    probe_ask(rt, p, s, 3600 * TR_SEC, 2); /* has ended: not an error, a failure */
    TT_EQ(pr.rc, 0);
    TT_EQ(pr.failures, 2);
    TT_EQ(pr.fail.why, TR_ASK_GONE);
    TT_EQ(pr.fail.ref, pr.ref);

    probe_ask(rt, p, q, 0, 3); /* handled, not answered: lives on */
    TT_EQ(pr.failures, 3);
    TT_EQ(pr.fail.why, TR_ASK_UNANSWERED);
    probe_ask(rt, p, q, 0, 4);
    TT_EQ(pr.failures, 4);
    TT_EQ(pr.fail.why, TR_ASK_UNANSWERED);
    TT_EQ(pr.fail.to, q);

    /* Killed with the ask queued behind the kill: the ask is a dead letter. */
    tr_pid k = spawn(rt, silent);
    TT_EQ(tr_kill(tr_runtime_ctx(rt), k, TR_EXIT_KILL), 0);
    probe_ask(rt, p, k, 0, 5);
    TT_EQ(pr.failures, 5);
    TT_EQ(pr.fail.why, TR_ASK_GONE);
    TT_EQ(pr.fail.to, k);

    TT_EQ(pr.replies, 0);
    TT_EQ(pr.others, 0);
    TT_NO_ERRORS();
    tr_runtime_destroy(rt);
}

static void test_never_valid_pid(void)
{
    probe_reset();
    tr_runtime *rt = tt_runtime(2, 0);
    tr_pid p = spawn(rt, probe);
    /* An immediate error, and nothing follows: with a one-hour timeout the
     * run returns only if the timer was cancelled too. */
    probe_ask(rt, p, NEVER_ISSUED, 3600 * TR_SEC, 1);
    TT_EQ(pr.rc, TR_ENOPID);
    TT_EQ(pr.ref, 0);
    probe_ask(rt, p, TR_PID_NONE, 0, 2);
    TT_EQ(pr.rc, TR_ENOPID);
    TT_EQ(pr.replies + pr.failures + pr.others, 0);
    TT_NO_ERRORS();
    tr_runtime_destroy(rt);
}

static void test_timeout_then_late_reply(void)
{
    probe_reset();
    tr_runtime *rt = tt_runtime(2, 0);
    tr_pid p = spawn(rt, probe), b = spawn(rt, blocker);
    struct ask_cmd c = {.to = b, .timeout_ns = TR_MSEC, .value = 9};
    TT_EQ(tr_runtime_hold(rt), 0); /* or the run could end before the sends */
    TT_EQ(tr_runtime_start(rt), 0);
    TT_EQ(tr_send(tr_runtime_ctx(rt), b, HOLD, NULL, 0), 0);
    CU_ASSERT(wait_for(&held));
    /* The blocker holds one worker until the probe, on the other, has
     * seen the timeout; then it replies, too late. */
    TT_EQ(tr_send(tr_runtime_ctx(rt), p, Q, &c, sizeof c), 0);
    bool timed_out = wait_for(&failure_seen);
    atomic_store(&released, 1);
    CU_ASSERT(timed_out);
    TT_EQ(tr_runtime_release(rt), 0);
    TT_EQ(tt_join_within(rt, 120), 0);
    TT_EQ(atomic_load(&held), 1);
    TT_EQ(atomic_load(&late_rc), 0); /* sent, and dropped on arrival */
    TT_EQ(pr.rc, 0);
    TT_EQ(pr.failures, 1);
    TT_EQ(pr.fail.why, TR_ASK_TIMEOUT);
    TT_EQ(pr.fail.ref, pr.ref);
    TT_EQ(pr.fail.to, b);
    TT_EQ(pr.replies, 0);
    TT_EQ(pr.others, 0);
    TT_NO_ERRORS();
    tr_runtime_destroy(rt);
}

/* ======================================================================
 * 100,000 asks on 4 workers
 * ====================================================================== */

#define ASKERS 16
#define ANSWERERS 8
#define MORTAL 2          /* answerers 0 and 1 stop after MORTAL_AFTER asks */
#define MORTAL_AFTER 500
#define PER_ASKER 6250    /* 16 x 6250 = 100,000 */
#define WINDOW 32         /* asks each asker keeps outstanding */
#define MAP_SIZE 32768    /* a power of two, > 4 x PER_ASKER */

/* What an answerer does with ask v. */
static bool unanswered(uint64_t v)
{
    return v % 10 == 3;
}

static void answerer(tr_ctx *cx, void *state, const tr_msg *m)
{
    unsigned *st = state; /* asks handled, mortal */
    uint64_t v = tt_u64(m);
    if (st[1] != 0 && ++st[0] == MORTAL_AFTER) {
        tr_stop(cx); /* mid-ask: this one is not answered */
        return;
    }
    if (!unanswered(v)) {
        v *= 3;
        TT_CHECK(tr_reply(cx, m, &v, sizeof v) == 0);
    }
}

struct asker_book {
    tr_pid to[PER_ASKER];      /* whom ask k went to */
    uint64_t ref[PER_ASKER];   /* its ref */
    uint32_t map_k[MAP_SIZE];  /* ref -> k + 1, open addressing */
    uint64_t map_ref[MAP_SIZE];
    uint8_t answers[PER_ASKER];
    unsigned issued, answered;
    unsigned replies, timeouts, gone, unanswered;
};

struct asker_state {
    unsigned id;
    struct asker_book *book;
    const tr_pid *answerers;
};

static atomic_uint askers_done;

#define MAP_MASK (MAP_SIZE - 1)

static void book_put(struct asker_book *b, uint64_t ref, unsigned k)
{
    uint32_t i = (uint32_t)(ref * 0x9e3779b97f4a7c15ull >> 40) & MAP_MASK;
    while (b->map_k[i] != 0) {
        TT_CHECK(b->map_ref[i] != ref); /* refs are unique */
        i = (i + 1) & MAP_MASK;
    }
    b->map_k[i] = k + 1;
    b->map_ref[i] = ref;
}

/* The index of the ask with this ref, or -1. */
static int book_find(const struct asker_book *b, uint64_t ref)
{
    uint32_t i = (uint32_t)(ref * 0x9e3779b97f4a7c15ull >> 40) & MAP_MASK;
    for (; b->map_k[i] != 0; i = (i + 1) & MAP_MASK)
        if (b->map_ref[i] == ref)
            return (int)b->map_k[i] - 1;
    return -1;
}

static uint64_t value_of(unsigned asker, unsigned k)
{
    return (uint64_t)asker * PER_ASKER + k;
}

static void ask_next(tr_ctx *cx, struct asker_state *s)
{
    struct asker_book *b = s->book;
    unsigned k = b->issued++;
    uint64_t v = value_of(s->id, k);
    tr_pid to = s->answerers[(v * 7 + s->id) % ANSWERERS];
    uint64_t timeout = v % 5 == 0 ? TR_MSEC / 2 : 0; /* may or may not fire first */
    uint64_t ref = 0;
    int rc = tr_ask(cx, to, Q, &v, sizeof v, timeout, &ref);
    TT_CHECK(rc == 0);
    TT_CHECK(ref != 0);
    b->to[k] = to;
    b->ref[k] = ref;
    book_put(b, ref, k);
}

static void asker(tr_ctx *cx, void *state, const tr_msg *m)
{
    struct asker_state *s = state;
    struct asker_book *b = s->book;
    if (m->type == GO) {
        for (unsigned i = 0; i < WINDOW; i++)
            ask_next(cx, s);
        return;
    }
    int k = book_find(b, tr_msg_ref(m));
    TT_CHECK(k >= 0);
    if (k < 0)
        return;
    b->answers[k]++;
    b->answered++;
    uint64_t v = value_of(s->id, (unsigned)k);
    if (m->type == TR_REPLY) {
        b->replies++;
        TT_CHECK(tt_u64(m) == 3 * v);
        TT_CHECK(!unanswered(v));
    } else {
        TT_CHECK(m->type == TR_ASK_FAILED);
        tr_ask_failure f = failure_of(m);
        TT_CHECK(f.to == b->to[k]);
        if (f.why == TR_ASK_TIMEOUT) {
            b->timeouts++;
            TT_CHECK(v % 5 == 0);
        } else if (f.why == TR_ASK_GONE) {
            b->gone++;
            TT_CHECK(f.to == s->answerers[0] || f.to == s->answerers[1]);
        } else {
            b->unanswered++;
            TT_CHECK(f.why == TR_ASK_UNANSWERED && unanswered(v));
        }
    }
    if (b->issued < PER_ASKER)
        ask_next(cx, s);
    else if (b->answered == PER_ASKER)
        atomic_fetch_add(&askers_done, 1);
}

static void test_100k_asks_each_resolved_once(void)
{
    tr_runtime *rt = tt_runtime(4, 0);
    struct asker_book *books = calloc(ASKERS, sizeof *books);
    CU_ASSERT_FATAL(books != NULL);
    tr_pid answerers[ANSWERERS], askers[ASKERS];
    for (unsigned i = 0; i < ANSWERERS; i++) {
        unsigned st[2] = {0, i < MORTAL}; /* handled, mortal */
        CU_ASSERT_FATAL(tr_spawn(tr_runtime_ctx(rt), answerer, st, sizeof st, &answerers[i]) == 0);
    }
    atomic_store(&askers_done, 0);
    for (unsigned i = 0; i < ASKERS; i++) {
        struct asker_state st = {.id = i, .book = &books[i], .answerers = answerers};
        CU_ASSERT_FATAL(tr_spawn(tr_runtime_ctx(rt), asker, &st, sizeof st, &askers[i]) == 0);
        TT_EQ(tr_send(tr_runtime_ctx(rt), askers[i], GO, NULL, 0), 0);
    }
    TT_EQ(tr_runtime_start(rt), 0);
    TT_EQ(tt_join_within(rt, 300), 0);

    TT_EQ(atomic_load(&askers_done), ASKERS);
    unsigned long total = 0, once = 0, replies = 0, timeouts = 0, gone = 0, unans = 0;
    for (unsigned i = 0; i < ASKERS; i++) {
        struct asker_book *b = &books[i];
        for (unsigned k = 0; k < PER_ASKER; k++)
            once += b->answers[k] == 1;
        total += b->answered;
        replies += b->replies;
        timeouts += b->timeouts;
        gone += b->gone;
        unans += b->unanswered;
    }
    TT_EQ(total, ASKERS * PER_ASKER);
    TT_EQ(once, ASKERS * PER_ASKER); /* none lost, none twice */
    TT_EQ(replies + timeouts + gone + unans, ASKERS * PER_ASKER);
    CU_ASSERT(replies > 0);
    CU_ASSERT(gone > 0);  /* the mortal answerers' last ask, and those sent after */
    CU_ASSERT(unans > 0);
    TT_NO_ERRORS();
    tr_runtime_destroy(rt);
    free(books);
}

/* ======================================================================
 * tr_call
 * ====================================================================== */

static atomic_int call_rc;

static void calls_from_inside(tr_ctx *cx, void *state, const tr_msg *m)
{
    (void)state;
    (void)m;
    tr_msg *reply = (tr_msg *)1;
    uint64_t v = 1;
    atomic_store(&call_rc, tr_call(tr_ctx_runtime(cx), tr_self(cx), Q, &v, sizeof v, 0, &reply));
    TT_CHECK(reply == NULL);
}

static void test_call_on_worker_edeadlk(void)
{
    tr_runtime *rt = tt_runtime(2, 0);
    tr_pid p = spawn(rt, calls_from_inside);
    atomic_store(&call_rc, 0);
    TT_EQ(tr_send(tr_runtime_ctx(rt), p, GO, NULL, 0), 0);
    TT_EQ(tr_runtime_run(rt), 0);
    TT_EQ(atomic_load(&call_rc), TR_EDEADLK);
    TT_NO_ERRORS();
    tr_runtime_destroy(rt);
}

static void test_call_gets_reply(void)
{
    tr_runtime *rt = tt_runtime(2, 0);
    tr_pid e = spawn(rt, echo), s = spawn(rt, stopper), q = spawn(rt, silent);
    tr_msg *reply = (tr_msg *)1;
    uint64_t v = 5;
    TT_EQ(tr_call(rt, e, Q, &v, sizeof v, 0, &reply), TR_ENOTSTARTED); /* not running */
    CU_ASSERT(reply == NULL);
    TT_EQ(tr_runtime_hold(rt), 0); /* the run cannot end between calls */
    TT_EQ(tr_runtime_start(rt), 0);
    for (uint64_t i = 0; i < 1000; i++) {
        reply = NULL;
        int rc = tr_call(rt, e, Q, &i, sizeof i, i % 2 ? 3600 * TR_SEC : 0, &reply);
        if (rc != 0 || reply == NULL) {
            TT_EQ(rc, 0);
            break;
        }
        TT_EQ(reply->type, TR_REPLY);
        TT_EQ(reply->from, e);
        TT_EQ(tt_u64(reply), i + 1);
        CU_ASSERT(tr_msg_ref(reply) != 0);
        tr_msg_free(reply);
    }
    TT_EQ(tr_call(rt, s, Q, &v, sizeof v, 0, &reply), TR_ENOREPLY); /* stopped mid-ask */
    TT_EQ(tr_call(rt, s, Q, &v, sizeof v, 0, &reply), TR_ENOREPLY); /* gone */
    TT_EQ(tr_call(rt, q, Q, &v, sizeof v, 0, &reply), TR_ENOREPLY); /* unanswered */
    TT_EQ(tr_call(rt, NEVER_ISSUED, Q, &v, sizeof v, 0, &reply), TR_ENOPID);
    CU_ASSERT(reply == NULL);
    TT_EQ(tr_call(rt, e, TR_REPLY, &v, sizeof v, 0, &reply), TR_EINVAL);
    TT_EQ(tr_call(rt, e, Q, NULL, 8, 0, &reply), TR_EINVAL);
    TT_EQ(tr_call(rt, e, Q, &v, sizeof v, 0, NULL), TR_EINVAL);
    TT_EQ(tr_call(NULL, e, Q, &v, sizeof v, 0, &reply), TR_EINVAL);
    TT_EQ(tr_runtime_release(rt), 0);
    TT_EQ(tt_join_within(rt, 120), 0); /* every call's actor and timer is gone */
    tr_stats st;
    tr_runtime_stats(rt, &st);
    TT_EQ(st.actors_alive, 2); /* echo and silent */
    TT_NO_ERRORS();
    tr_runtime_destroy(rt);
}

static void test_call_timeout(void)
{
    probe_reset();
    tr_runtime *rt = tt_runtime(2, 0);
    tr_pid b = spawn(rt, blocker);
    TT_EQ(tr_runtime_hold(rt), 0);
    TT_EQ(tr_runtime_start(rt), 0);
    TT_EQ(tr_send(tr_runtime_ctx(rt), b, HOLD, NULL, 0), 0);
    CU_ASSERT(wait_for(&held));
    tr_msg *reply = (tr_msg *)1;
    uint64_t v = 3;
    TT_EQ(tr_call(rt, b, Q, &v, sizeof v, TR_MSEC, &reply), TR_ETIMEDOUT);
    CU_ASSERT(reply == NULL);
    atomic_store(&released, 1);
    TT_EQ(tr_runtime_release(rt), 0);
    TT_EQ(tt_join_within(rt, 120), 0);
    TT_EQ(atomic_load(&late_rc), 0); /* the late reply went to a caller that had ended */
    TT_NO_ERRORS();
    tr_runtime_destroy(rt);
}

/* A call still waiting when the runtime is stopped and destroyed returns
 * TR_ENOTSTARTED; its ask's table, timer and queued answer are freed
 * (AddressSanitizer checks the leaks). One worker: the blocker holds it,
 * and once released, the stop ends the run before the answer is handled. */
struct pending_call {
    tr_runtime *rt;
    tr_pid to;
    int rc;
    tr_msg *reply;
};

static void *call_main(void *arg)
{
    struct pending_call *c = arg;
    uint64_t v = 1;
    c->rc = tr_call(c->rt, c->to, Q, &v, sizeof v, 3600 * TR_SEC, &c->reply);
    return NULL;
}

static void unanswering_blocker(tr_ctx *cx, void *state, const tr_msg *m)
{
    (void)cx;
    (void)state;
    (void)m;
    atomic_store(&held, 1);
    double until = tt_now() + 120;
    while (atomic_load(&released) == 0 && tt_now() < until)
        tt_sleep_ms(1);
}

static void test_call_pending_at_destroy(void)
{
    probe_reset();
    tr_runtime *rt = tt_runtime(1, 0);
    tr_pid b = spawn(rt, unanswering_blocker);
    TT_EQ(tr_runtime_hold(rt), 0);
    TT_EQ(tr_runtime_start(rt), 0);
    struct pending_call c = {.rt = rt, .to = b, .rc = 1};
    pthread_t t = tt_thread(call_main, &c);
    CU_ASSERT(wait_for(&held));
    tr_runtime_shutdown(rt);
    atomic_store(&released, 1);
    TT_EQ(tr_runtime_join(rt), 1);
    tr_runtime_destroy(rt);
    tt_join(t);
    TT_EQ(c.rc, TR_ENOTSTARTED);
    CU_ASSERT(c.reply == NULL);
    TT_NO_ERRORS();
}

/* An asker that stops the runtime with its ask outstanding (the target
 * never runs: one worker): destroy frees the pending ask and its timer. */
static void asks_then_stops(tr_ctx *cx, void *state, const tr_msg *m)
{
    const tr_pid *to = state;
    (void)m;
    uint64_t v = 1;
    TT_CHECK(tr_ask(cx, *to, Q, &v, sizeof v, 3600 * TR_SEC, NULL) == 0);
    tr_runtime_shutdown(tr_ctx_runtime(cx));
}

static void test_ask_pending_at_destroy(void)
{
    tr_runtime *rt = tt_runtime(1, 0);
    tr_pid e = spawn(rt, echo), a;
    CU_ASSERT_FATAL(tr_spawn(tr_runtime_ctx(rt), asks_then_stops, &e, sizeof e, &a) == 0);
    TT_EQ(tr_send(tr_runtime_ctx(rt), a, GO, NULL, 0), 0);
    TT_EQ(tr_runtime_run(rt), 1);
    TT_NO_ERRORS();
    tr_runtime_destroy(rt);
}

static void test_bad_arguments(void)
{
    tr_runtime *rt = tt_runtime(1, 0);
    uint64_t v = 0;
    TT_EQ(tr_ask(NULL, 1, Q, &v, sizeof v, 0, NULL), TR_EINVAL);
    TT_EQ(tr_reply(NULL, NULL, NULL, 0), TR_EINVAL);
    TT_EQ(tr_msg_ref(NULL), 0);
    tr_msg *m = tr_msg_alloc(Q, 8);
    CU_ASSERT_FATAL(m != NULL);
    TT_EQ(tr_msg_ref(m), 0); /* not an answer */
    tr_msg_free(m);
    TT_EQ(strcmp(tr_strerror(TR_ETIMEDOUT), "timed out"), 0);
    CU_ASSERT(strstr(tr_strerror(TR_ENOREPLY), "no reply") != NULL);
    tr_runtime_destroy(rt);
}

/* ======================================================================
 * timeouts: one timer per asker, not one per ask
 * ====================================================================== */

#define PIPELINED 1000
#define TIMING_OUT_ASKS 60 /* fewer than the sends that make backpressure
                            * look at the blocker (backpressure.c) */

/* Asks `echo` PIPELINED times at once, each with an hour's timeout, and
 * counts the replies. */
struct pipeliner {
    tr_pid echo;
    unsigned replies, failures, wrong;
};

static void pipeliner(tr_ctx *cx, void *state, const tr_msg *m)
{
    struct pipeliner *p = *(struct pipeliner **)state;
    if (m->type == GO) {
        for (uint64_t v = 0; v < PIPELINED; v++)
            TT_CHECK(tr_ask(cx, p->echo, ASKED, &v, sizeof v, 3600 * TR_SEC, NULL) == 0);
    } else if (m->type == TR_REPLY) {
        p->replies++;
        p->wrong += tr_msg_ref(m) == 0 || tt_u64(m) != tr_msg_ref(m); /* ref v+1 <-> v+1 */
    } else if (m->type == TR_ASK_FAILED) {
        p->failures++;
    }
}

/* A thousand asks in flight share one timeout timer, which holds nothing
 * once they are answered: the run ends at once, not an hour later (the
 * join's safety net would fail it), and the asker, the echo and one timer
 * are all the actors made. With a timer per ask, 1,002. */
static void test_pipelined_asks_share_one_timer(void)
{
    struct pipeliner p = {0}, *pp = &p;
    tr_runtime *rt = tt_runtime(2, 0);
    p.echo = spawn(rt, echo);
    tr_pid a;
    TT_EQ(tr_spawn(tr_runtime_ctx(rt), pipeliner, &pp, sizeof pp, &a), 0);
    TT_EQ(tr_send(tr_runtime_ctx(rt), a, GO, NULL, 0), 0);
    TT_EQ(tr_runtime_start(rt), 0);
    TT_EQ(tt_join_within(rt, 120), 0);
    TT_EQ(p.replies, PIPELINED);
    TT_EQ(p.failures, 0);
    TT_EQ(p.wrong, 0);
    tr_stats st;
    tr_runtime_stats(rt, &st);
    TT_EQ(st.actors_spawned, 3);
    TT_EQ(st.dead_letters, 0);
    TT_NO_ERRORS();
    tr_runtime_destroy(rt);
}

/* Asks the held blocker TIMING_OUT_ASKS times, with timeouts of 1-20 ms
 * in a shuffled order (20, 13, 6, 19, 12, 5, ...: a later ask often has
 * the earlier deadline, and moves the timer), noting a lower bound of
 * each deadline; each must time out once, not before that bound. */
struct timer_outs {
    bool long_turn;     /* the second test: asks late in a long turn */
    tr_pid blocker;
    uint64_t ref[TIMING_OUT_ASKS], lo[TIMING_OUT_ASKS];
    unsigned seen[TIMING_OUT_ASKS];
    unsigned timeouts, early, unknown, replies, other_failures;
};
static atomic_int all_timed_out;

static void timer_outs(tr_ctx *cx, void *state, const tr_msg *m)
{
    struct timer_outs *t = *(struct timer_outs **)state;
    if (m->type == GO) {
        for (unsigned i = 0; i < TIMING_OUT_ASKS; i++) {
            uint64_t timeout = (20 - (i * 7) % 20) * TR_MSEC;
            if (t->long_turn) {
                /* The first ask arms the sweep; the others, 30 ms into
                 * the turn, wait for the turn's end for their deadlines
                 * (ask.c, stamp): from a reading at the turn's start,
                 * or the first ask's, they would come 30 ms early. */
                timeout = 20 * TR_MSEC;
                if (i == 1)
                    for (uint64_t until = tt_now_ns() + 30 * TR_MSEC; tt_now_ns() < until;)
                        ;
            }
            t->lo[i] = tt_now_ns() + timeout;
            uint64_t v = i;
            TT_CHECK(tr_ask(cx, t->blocker, ASKED, &v, sizeof v, timeout, &t->ref[i]) == 0);
        }
        return;
    }
    if (m->type == TR_REPLY) {
        t->replies++;
        return;
    }
    TT_CHECK(m->type == TR_ASK_FAILED);
    tr_ask_failure f = failure_of(m);
    if (f.why != TR_ASK_TIMEOUT || f.to != t->blocker) {
        t->other_failures++;
        return;
    }
    unsigned i = 0;
    while (i < TIMING_OUT_ASKS && t->ref[i] != f.ref)
        i++;
    if (i == TIMING_OUT_ASKS) {
        t->unknown++;
        return;
    }
    t->seen[i]++;
    t->early += tt_now_ns() < t->lo[i];
    if (++t->timeouts == TIMING_OUT_ASKS)
        atomic_store(&all_timed_out, 1);
}

static void timeouts_each_once_never_early(bool long_turn)
{
    atomic_store(&held, 0);
    atomic_store(&released, 0);
    atomic_store(&all_timed_out, 0);
    struct timer_outs *t = calloc(1, sizeof *t), **tp = &t;
    CU_ASSERT_PTR_NOT_NULL_FATAL(t);
    t->long_turn = long_turn;
    tr_runtime *rt = tt_runtime(2, 0);
    t->blocker = spawn(rt, blocker);
    tr_pid a;
    TT_EQ(tr_spawn(tr_runtime_ctx(rt), timer_outs, tp, sizeof *tp, &a), 0);
    TT_EQ(tr_runtime_hold(rt), 0);
    TT_EQ(tr_runtime_start(rt), 0);
    TT_EQ(tr_send(tr_runtime_ctx(rt), t->blocker, HOLD, NULL, 0), 0);
    CU_ASSERT(wait_for(&held));
    TT_EQ(tr_send(tr_runtime_ctx(rt), a, GO, NULL, 0), 0);
    bool timed_out = wait_for(&all_timed_out);
    atomic_store(&released, 1); /* then the blocker answers each, too late */
    CU_ASSERT(timed_out);
    TT_EQ(tr_runtime_release(rt), 0);
    TT_EQ(tt_join_within(rt, 120), 0);
    TT_EQ(t->timeouts, TIMING_OUT_ASKS);
    unsigned not_once = 0;
    for (unsigned i = 0; i < TIMING_OUT_ASKS; i++)
        not_once += t->seen[i] != 1;
    TT_EQ(not_once, 0);
    TT_EQ(t->early, 0);
    TT_EQ(t->unknown, 0);
    TT_EQ(t->replies, 0); /* the late replies are dropped */
    TT_EQ(t->other_failures, 0);
    TT_EQ(atomic_load(&late_rc), 0);
    tr_stats st;
    tr_runtime_stats(rt, &st);
    CU_ASSERT(st.actors_spawned < 2 + TIMING_OUT_ASKS); /* fewer timers than asks */
    printf("[%" PRIu64 " actors made] ", st.actors_spawned);
    TT_NO_ERRORS();
    tr_runtime_destroy(rt);
    free(t);
}

static void test_timeouts_each_once_never_early(void)
{
    timeouts_each_once_never_early(false);
}

/* The same, the asks made 30 ms into one turn, all with 20 ms timeouts. */
static void test_timeouts_late_in_a_long_turn(void)
{
    timeouts_each_once_never_early(true);
}

/* ======================================================================
 * the asker's table under collisions
 * ====================================================================== */

/* Every eighth ask goes to `slow`, behind up to SLOW_PAD plain messages,
 * so it stays pending while hundreds of later asks to `echo` come and go:
 * refs that wrap around the asker's table land on slots those old ones
 * hold, and are placed past them and moved back as entries leave. Every
 * answer must still find its ask: each is answered once, by its own ref,
 * with its own value + 1. */
#define TABLE_ASKS 20000
#define TABLE_WINDOW 12
#define SLOW_PAD 300

struct table_asker {
    tr_pid echo, slow;
    unsigned issued, answered, wrong, failed;
    uint64_t ref[TABLE_ASKS];
    uint8_t answers[TABLE_ASKS];
};

static void slow_echo(tr_ctx *cx, void *state, const tr_msg *m)
{
    (void)state;
    if (m->type != PLAIN)
        echo(cx, NULL, m);
}

static void table_ask_next(tr_ctx *cx, struct table_asker *t)
{
    unsigned k = t->issued++;
    uint64_t v = k;
    tr_pid to = t->echo;
    if (k % 8 == 5) {
        to = t->slow;
        for (unsigned i = 0; i < k % SLOW_PAD; i++)
            TT_CHECK(tr_send(cx, to, PLAIN, NULL, 0) == 0);
    }
    TT_CHECK(tr_ask(cx, to, Q, &v, sizeof v, 0, &t->ref[k]) == 0);
}

static void table_asker(tr_ctx *cx, void *state, const tr_msg *m)
{
    struct table_asker *t = *(struct table_asker **)state;
    if (m->type == GO) {
        while (t->issued < TABLE_WINDOW)
            table_ask_next(cx, t);
        return;
    }
    if (m->type != TR_REPLY) {
        t->failed++;
        return;
    }
    uint64_t k = tt_u64(m) - 1;
    if (k >= TABLE_ASKS || t->ref[k] != tr_msg_ref(m)) {
        t->wrong++;
        return;
    }
    t->answers[k]++;
    t->answered++;
    if (t->issued < TABLE_ASKS)
        table_ask_next(cx, t);
}

static void test_table_keeps_every_ref(void)
{
    tr_runtime *rt = tt_runtime(2, 0);
    struct table_asker *t = calloc(1, sizeof *t);
    CU_ASSERT_FATAL(t != NULL);
    t->echo = spawn(rt, echo);
    t->slow = spawn(rt, slow_echo);
    tr_pid asker;
    CU_ASSERT_FATAL(tr_spawn(tr_runtime_ctx(rt), table_asker, &t, sizeof t, &asker) == 0);
    TT_EQ(tr_send(tr_runtime_ctx(rt), asker, GO, NULL, 0), 0);
    TT_EQ(tr_runtime_run(rt), 0);

    TT_EQ(t->issued, TABLE_ASKS);
    TT_EQ(t->answered, TABLE_ASKS);
    TT_EQ(t->wrong, 0);
    TT_EQ(t->failed, 0);
    unsigned once = 0;
    for (unsigned k = 0; k < TABLE_ASKS; k++)
        once += t->answers[k] == 1;
    TT_EQ(once, TABLE_ASKS); /* none lost, none twice */
    TT_NO_ERRORS();
    tr_runtime_destroy(rt);
    free(t);
}

/* A target that tells the asker something before it answers (a notice,
 * an event to a new subscriber: it has the asker's pid in m->from): the
 * call's actor takes only its start message as the start, so each call
 * asks once, and gets its own answer. */
static atomic_int chatty_asks;

static void chatty(tr_ctx *cx, void *state, const tr_msg *m)
{
    (void)state;
    if (m->type != Q)
        return;
    atomic_fetch_add(&chatty_asks, 1);
    uint64_t v = tt_u64(m) + 1;
    for (int i = 0; i < 3; i++)
        TT_CHECK(tr_send(cx, m->from, PLAIN, &v, sizeof v) == 0);
    TT_CHECK(tr_reply(cx, m, &v, sizeof v) == 0);
}

static void test_call_asks_once_whatever_the_target_sends_first(void)
{
    tr_runtime *rt = tt_runtime(2, 0);
    tr_pid t = spawn(rt, chatty);
    atomic_store(&chatty_asks, 0);
    TT_EQ(tr_runtime_hold(rt), 0);
    TT_EQ(tr_runtime_start(rt), 0);
    for (uint64_t i = 0; i < 100; i++) {
        tr_msg *reply = NULL;
        TT_EQ(tr_call(rt, t, Q, &i, sizeof i, 0, &reply), 0);
        CU_ASSERT_FATAL(reply != NULL);
        TT_EQ(tt_u64(reply), i + 1);
        tr_msg_free(reply);
    }
    TT_EQ(tr_runtime_release(rt), 0);
    TT_EQ(tt_join_within(rt, 60), 0);
    TT_EQ(atomic_load(&chatty_asks), 100);
    TT_NO_ERRORS();
    tr_runtime_destroy(rt);
}

void register_ask_tests(void)
{
    CU_pSuite s = tt_suite("ask");
    tt_test(s, "reply_delivered_with_its_ref", test_reply_delivered);
    tt_test(s, "failures_gone_unanswered_killed", test_failures);
    tt_test(s, "never_valid_pid_is_enopid", test_never_valid_pid);
    tt_test(s, "timeout_then_late_reply_dropped", test_timeout_then_late_reply);
    tt_test(s, "pipelined_asks_share_one_timer", test_pipelined_asks_share_one_timer);
    tt_test(s, "60_timeouts_each_once_never_early", test_timeouts_each_once_never_early);
    tt_test(s, "timeouts_of_asks_late_in_a_long_turn_never_early",
            test_timeouts_late_in_a_long_turn);
    tt_test(s, "100k_asks_4_workers_each_resolved_once", test_100k_asks_each_resolved_once);
    tt_test(s, "table_keeps_every_ref_as_refs_wrap", test_table_keeps_every_ref);
    tt_test(s, "call_on_worker_edeadlk", test_call_on_worker_edeadlk);
    tt_test(s, "call_gets_reply_and_errors", test_call_gets_reply);
    tt_test(s, "call_timeout", test_call_timeout);
    tt_test(s, "call_asks_once_whatever_the_target_sends_first",
            test_call_asks_once_whatever_the_target_sends_first);
    tt_test(s, "call_pending_at_destroy", test_call_pending_at_destroy);
    tt_test(s, "ask_pending_at_destroy", test_ask_pending_at_destroy);
    tt_test(s, "bad_arguments", test_bad_arguments);
}
