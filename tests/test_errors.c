/* test_errors.c — the tables: error codes and their texts (TR_ERRORS),
 * reserved message types and their ranges (TR_MSG_TYPES, TR_MSG_RANGES),
 * exit reason names, and the typed payload helpers (TR_PAYLOAD,
 * TR_SEND_VALUE). */
#include "tests.h"

#include <limits.h>
#include <string.h>

/* ---- error codes -------------------------------------------------------- */

typedef struct code {
    int value;
    const char *name, *text;
} code;

static const code codes[] = {
#define ROW(name, errnum, text) {name, #name, text},
    TR_ERRORS(ROW)
#undef ROW
};
#define NCODES (sizeof codes / sizeof codes[0])

static void test_error_table(void)
{
    CU_ASSERT(NCODES >= 16);
    for (size_t i = 0; i < NCODES; i++) {
        const code *c = &codes[i];
        const char *s = tr_strerror(c->value);
        CU_ASSERT(c->value < 0);
        CU_ASSERT_PTR_NOT_NULL_FATAL(s);
        if (strcmp(s, c->text) != 0 || s[0] == '\0')
            printf("\n    tr_strerror(%s) = \"%s\"\n", c->name, s);
        CU_ASSERT_STRING_EQUAL(s, c->text); /* the text comes from the table */
        CU_ASSERT(s[0] != '\0');
        CU_ASSERT(strcmp(s, "unknown error") != 0);
        CU_ASSERT(strcmp(s, tr_strerror(TR_OK)) != 0);
        for (size_t j = 0; j < i; j++) {
            if (codes[j].value == c->value || strcmp(codes[j].text, s) == 0)
                printf("\n    %s and %s share a value or a text\n", codes[j].name, c->name);
            CU_ASSERT(codes[j].value != c->value);
            CU_ASSERT(strcmp(codes[j].text, s) != 0);
        }
    }
}

/* Every code that the headers name is in the table (a code defined apart
 * from it would not compile here as a table row, but could be missed). */
static void test_error_names(void)
{
    const int named[] = {TR_EINVAL,      TR_ENOMEM,    TR_ENOPID,       TR_EMSGSIZE,
                         TR_EAGAIN,      TR_EBUSY,     TR_EDEADLK,      TR_ENOTSTARTED,
                         TR_ENOBUFS,     TR_ELINETOOLONG, TR_EBADFRAME, TR_ENOTCONN,
                         TR_EEXIST,      TR_ETIMEDOUT, TR_EHOSTUNREACH, TR_ECONNABORTED};
    for (size_t i = 0; i < sizeof named / sizeof named[0]; i++) {
        bool found = false;
        for (size_t j = 0; j < NCODES; j++)
            found |= codes[j].value == named[i];
        if (!found)
            printf("\n    code %d is not in TR_ERRORS\n", named[i]);
        CU_ASSERT(found);
    }
    /* The values stay those of errno (callers compare with both). */
    TT_EQ(TR_EINVAL, -EINVAL);
    TT_EQ(TR_ENOPID, -ESRCH);
    TT_EQ(TR_EBUSY, -EBUSY);
    TT_EQ(TR_ENOTSTARTED, -ECHILD);
    TT_EQ(TR_ELINETOOLONG, -EOVERFLOW);
    TT_EQ(TR_EBADFRAME, -EBADMSG);
    TT_EQ(TR_ETIMEDOUT, -ETIMEDOUT);
    TT_EQ(TR_OK, 0);
}

static bool mentions(int err, const char *word)
{
    const char *s = tr_strerror(err);
    if (strstr(s, word) != NULL)
        return true;
    printf("\n    tr_strerror(%d) = \"%s\" does not mention \"%s\"\n", err, s, word);
    return false;
}

/* The codes that several calls share name every case, not one caller's. */
static void test_error_shared_texts(void)
{
    CU_ASSERT(mentions(TR_EBUSY, "running"));    /* tr_runtime_run/start */
    CU_ASSERT(mentions(TR_EBUSY, "watched"));    /* tr_io_watch */
    CU_ASSERT(mentions(TR_EBUSY, "subscribed")); /* tr_signal_watch */
    CU_ASSERT(mentions(TR_EAGAIN, "actor table")); /* every spawn */
    CU_ASSERT(mentions(TR_EAGAIN, "socket"));      /* tr_udp_send */
    CU_ASSERT(mentions(TR_EEXIST, "name"));
    CU_ASSERT(mentions(TR_ENOPID, "actor"));
}

static void test_error_unknown(void)
{
    const int unknown[] = {1, 7, 123456, INT_MAX, -4096, -123456, INT_MIN};
    for (size_t i = 0; i < sizeof unknown / sizeof unknown[0]; i++) {
        const char *s = tr_strerror(unknown[i]);
        CU_ASSERT_PTR_NOT_NULL_FATAL(s);
        CU_ASSERT_STRING_EQUAL(s, "unknown error");
    }
    CU_ASSERT_STRING_EQUAL(tr_strerror(0), "success");
    /* Socket errors that calls pass through as -errno get the C library's
     * text, not "unknown error". */
    const int passed[] = {-ECONNRESET, -ECONNREFUSED, -EADDRINUSE, -EPIPE};
    for (size_t i = 0; i < sizeof passed / sizeof passed[0]; i++) {
        const char *s = tr_strerror(passed[i]);
        CU_ASSERT_PTR_NOT_NULL_FATAL(s);
        CU_ASSERT(s[0] != '\0' && strcmp(s, "unknown error") != 0);
        for (size_t j = 0; j < NCODES; j++)
            CU_ASSERT(strcmp(s, codes[j].text) != 0);
    }
}

/* Codes as real calls return them: the value the header documents. */
static void noop(tr_ctx *cx, void *state, const tr_msg *m)
{
    (void)cx;
    (void)state;
    (void)m;
}

static void test_error_from_calls(void)
{
    tr_runtime *rt = tt_runtime(1, 0);
    tr_pid p;
    TT_EQ(tr_spawn(tr_runtime_ctx(rt), NULL, NULL, 0, &p), TR_EINVAL);
    TT_EQ(tr_spawn(tr_runtime_ctx(rt), noop, NULL, 0, &p), 0);
    TT_EQ(tr_send(tr_runtime_ctx(rt), p, TR_MSG_SYSTEM, NULL, 0), TR_EINVAL);
    TT_EQ(tr_send(tr_runtime_ctx(rt), TR_PID_NONE, 1, NULL, 0), TR_ENOPID);
    TT_EQ(tr_runtime_join(rt), TR_ENOTSTARTED);
    TT_EQ(tr_register(rt, "errors", p), 0);
    TT_EQ(tr_register(rt, "errors", p), TR_EEXIST);
    TT_EQ(tr_unregister(rt, "errors"), 0);
    TT_EQ(tr_timer_cancel(tr_runtime_ctx(rt), TR_PID_NONE), TR_ENOPID);
    tr_tcp_connect_opts co = {.host = "no-such-host.invalid", .port = 1,
                              .handler = {.actor = {.behaviour = noop}}};
    TT_EQ(tr_tcp_connect(tr_runtime_ctx(rt), &co, NULL), TR_EHOSTUNREACH);
    TT_EQ(tr_runtime_run(rt), 0);
    tr_runtime_destroy(rt);
}

/* ---- reserved message types --------------------------------------------- */

typedef struct range {
    const char *name;
    uint32_t first, last;
} range;

static const range ranges[] = {
#define ROW(r, first, last) {#r, TR_MSG_SYSTEM + (first), TR_MSG_SYSTEM + (last)},
    TR_MSG_RANGES(ROW)
#undef ROW
};
#define NRANGES (sizeof ranges / sizeof ranges[0])

typedef struct mtype {
    uint32_t value;
    const char *name;
    uint32_t first, last; /* its range */
} mtype;

static const mtype types[] = {
#define ROW(t, r) {t, #t, TR_MSG_##r##_FIRST, TR_MSG_##r##_LAST},
    TR_MSG_TYPES(ROW)
#undef ROW
};
#define NTYPES (sizeof types / sizeof types[0])

/* A type listed twice would be a duplicate case label: this does not
 * compile then. */
static const char *type_name(uint32_t t)
{
    switch (t) {
#define CASE(type, r) \
    case type:        \
        return #type;
        TR_MSG_TYPES(CASE)
#undef CASE
    }
    return NULL;
}

static void test_msgtype_ranges(void)
{
    CU_ASSERT(NRANGES >= 6);
    for (size_t i = 0; i < NRANGES; i++) {
        CU_ASSERT(ranges[i].first > TR_MSG_SYSTEM);
        CU_ASSERT(ranges[i].first <= ranges[i].last);
        if (i > 0) {
            if (ranges[i - 1].last >= ranges[i].first)
                printf("\n    ranges %s and %s overlap\n", ranges[i - 1].name, ranges[i].name);
            CU_ASSERT(ranges[i - 1].last < ranges[i].first);
        }
    }
    /* Request/reply's two types, as the other side of it expects them. */
    TT_EQ(TR_REPLY, TR_MSG_SYSTEM + 0x60);
    TT_EQ(TR_ASK_FAILED, TR_MSG_SYSTEM + 0x61);
    /* The internal parts lie in the internal range, apart. */
    const uint32_t parts[][2] = {{TR__MSG_FAULT_FIRST, TR__MSG_FAULT_LAST},
                                 {TR__MSG_SUP_FIRST, TR__MSG_SUP_LAST},
                                 {TR__MSG_NET_FIRST, TR__MSG_NET_LAST}};
    for (size_t i = 0; i < 3; i++) {
        CU_ASSERT(parts[i][0] >= TR_MSG_INTERNAL_FIRST && parts[i][1] <= TR_MSG_INTERNAL_LAST);
        CU_ASSERT(parts[i][0] <= parts[i][1]);
        CU_ASSERT(i == 0 || parts[i - 1][1] < parts[i][0]);
    }
}

static void test_msgtype_table(void)
{
    CU_ASSERT(NTYPES == 21); /* every public type of msgtypes.h (TR_INIT went with specs; TR_HTTP_REQUEST and TR_DIST_TERM came) */
    for (size_t i = 0; i < NTYPES; i++) {
        const mtype *t = &types[i];
        CU_ASSERT(t->value > TR_MSG_SYSTEM);
        if (t->value < t->first || t->value > t->last)
            printf("\n    %s (%#" PRIx32 ") outside its range\n", t->name, t->value);
        CU_ASSERT(t->value >= t->first && t->value <= t->last);
        CU_ASSERT(t->value < TR_MSG_INTERNAL_FIRST); /* public: never internal */
        const char *n = type_name(t->value);
        CU_ASSERT(n != NULL && strcmp(n, t->name) == 0);
        for (size_t j = 0; j < i; j++)
            CU_ASSERT(types[j].value != t->value);
        /* In exactly one range. */
        unsigned in = 0;
        for (size_t r = 0; r < NRANGES; r++)
            in += t->value >= ranges[r].first && t->value <= ranges[r].last;
        TT_EQ(in, 1);
    }
}

/* Users cannot send any reserved type: each listed one, and each range's
 * bounds, is refused with TR_EINVAL and nothing is delivered. */
static atomic_uint delivered;

static void count_actor(tr_ctx *cx, void *state, const tr_msg *m)
{
    (void)cx;
    (void)state;
    (void)m;
    atomic_fetch_add(&delivered, 1);
}

static void test_msgtype_reserved(void)
{
    tr_runtime *rt = tt_runtime(1, 0);
    tr_pid p;
    atomic_store(&delivered, 0);
    TT_EQ(tr_spawn(tr_runtime_ctx(rt), count_actor, NULL, 0, &p), 0);
    int x = 0;
    for (size_t i = 0; i < NTYPES; i++) {
        TT_EQ(tr_send(tr_runtime_ctx(rt), p, types[i].value, &x, sizeof x), TR_EINVAL);
        CU_ASSERT_PTR_NULL(tr_msg_alloc(types[i].value, 4));
    }
    for (size_t i = 0; i < NRANGES; i++) {
        TT_EQ(tr_send(tr_runtime_ctx(rt), p, ranges[i].first, NULL, 0), TR_EINVAL);
        TT_EQ(tr_send(tr_runtime_ctx(rt), p, ranges[i].last, NULL, 0), TR_EINVAL);
    }
    TT_EQ(tr_send(tr_runtime_ctx(rt), p, TR_MSG_SYSTEM - 1, NULL, 0), 0);
    TT_EQ(tr_runtime_run(rt), 0);
    TT_EQ(atomic_load(&delivered), 1);
    tr_runtime_destroy(rt);
}

/* ---- exit reasons --------------------------------------------------------- */

static void test_exit_reason_name(void)
{
    CU_ASSERT_STRING_EQUAL(tr_exit_reason_name(TR_EXIT_NORMAL), "normal");
    CU_ASSERT_STRING_EQUAL(tr_exit_reason_name(TR_EXIT_KILL), "kill");
    CU_ASSERT_STRING_EQUAL(tr_exit_reason_name(TR_EXIT_KILLED), "killed");
    CU_ASSERT_STRING_EQUAL(tr_exit_reason_name(TR_EXIT_NOPROC), "noproc");
    CU_ASSERT_STRING_EQUAL(tr_exit_reason_name(TR_EXIT_SHUTDOWN), "shutdown");
    CU_ASSERT_STRING_EQUAL(tr_exit_reason_name(TR_EXIT_RESTARTS), "restarts");
    CU_ASSERT_STRING_EQUAL(tr_exit_reason_name(TR_EXIT_NOCONNECTION), "noconnection");
    const int user[] = {1, 42, INT_MAX, -7, -1000, INT_MIN};
    for (size_t i = 0; i < sizeof user / sizeof user[0]; i++)
        CU_ASSERT_STRING_EQUAL(tr_exit_reason_name(user[i]), "user");
    /* The names are distinct, and none is "user". */
    const char *names[] = {
#define NAME(reason, text) text,
        TR_EXIT_REASONS(NAME)
#undef NAME
    };
    const size_t n = sizeof names / sizeof names[0];
    TT_EQ(n, 7);
    for (size_t i = 0; i < n; i++) {
        CU_ASSERT(strcmp(names[i], "user") != 0);
        for (size_t j = 0; j < i; j++)
            CU_ASSERT(strcmp(names[i], names[j]) != 0);
    }
}

/* What a monitor sees of actors that end each way, named. */
enum { DIE = 1, GO };

typedef struct watcher {
    tr_pid targets[3];
    int reasons[3]; /* what each should end with */
    int downs;
    atomic_int *seen;   /* downs whose reason had the right name */
    atomic_int *total;
} watcher;

static void dying_actor(tr_ctx *cx, void *state, const tr_msg *m)
{
    (void)state;
    const int *reason = TR_PAYLOAD(m, int);
    TT_CHECK(m->type == DIE && reason != NULL);
    if (reason != NULL)
        tr_exit(cx, *reason, "test");
}

static void watcher_actor(tr_ctx *cx, void *state, const tr_msg *m)
{
    watcher *w = state;
    if (m->type == GO) {
        for (int i = 0; i < 3; i++) {
            TT_CHECK(tr_monitor(cx, w->targets[i], NULL) == 0);
            if (w->reasons[i] == TR_EXIT_KILL)
                TT_CHECK(tr_kill(cx, w->targets[i], TR_EXIT_KILL) == 0);
            else
                TT_CHECK(TR_SEND_VALUE(cx, w->targets[i], DIE, w->reasons[i]) == 0);
        }
        return;
    }
    const tr_down_info *d = TR_PAYLOAD(m, tr_down_info);
    TT_CHECK(m->type == TR_DOWN && d != NULL);
    if (d == NULL)
        return;
    atomic_fetch_add(w->total, 1);
    for (int i = 0; i < 3; i++) {
        if (d->pid != w->targets[i])
            continue;
        const char *want = w->reasons[i] == TR_EXIT_KILL ? "killed"
                           : w->reasons[i] == 0          ? "normal"
                                                         : "user";
        TT_CHECK(strcmp(tr_exit_reason_name(d->reason), want) == 0);
        atomic_fetch_add(w->seen, 1);
    }
    if (++w->downs == 3)
        tr_stop(cx);
}

static void test_exit_reason_seen(void)
{
    tt_reset_errors();
    tr_runtime *rt = tt_runtime(2, 0);
    atomic_int seen = 0, total = 0;
    watcher w = {.reasons = {0, 17, TR_EXIT_KILL}, .seen = &seen, .total = &total};
    for (int i = 0; i < 3; i++)
        TT_EQ(tr_spawn(tr_runtime_ctx(rt), dying_actor, NULL, 0, &w.targets[i]), 0);
    tr_pid wp;
    TT_EQ(tr_spawn(tr_runtime_ctx(rt), watcher_actor, &w, sizeof w, &wp), 0);
    TT_EQ(tr_send(tr_runtime_ctx(rt), wp, GO, NULL, 0), 0);
    TT_EQ(tr_runtime_run(rt), 0);
    TT_EQ(atomic_load(&seen), 3);
    TT_EQ(atomic_load(&total), 3);
    TT_NO_ERRORS();
    tr_runtime_destroy(rt);
}

/* ---- typed payloads ------------------------------------------------------- */

typedef struct point {
    int32_t x, y;
    uint64_t tag;
} point;

static int evaluations;

static const tr_msg *once(const tr_msg *m)
{
    evaluations++;
    return m;
}

static void test_payload_view(void)
{
    tr_msg *exact = tr_msg_alloc(1, sizeof(point));
    tr_msg *shorter = tr_msg_alloc(1, sizeof(point) - 1);
    tr_msg *longer = tr_msg_alloc(1, sizeof(point) + 1);
    tr_msg *empty = tr_msg_alloc(1, 0);
    CU_ASSERT_FATAL(exact && shorter && longer && empty);
    point pt = {3, -4, 99};
    memcpy(exact->data, &pt, sizeof pt);

    const point *v = TR_PAYLOAD(exact, point);
    CU_ASSERT_PTR_EQUAL(v, exact->data);
    CU_ASSERT(v != NULL && v->x == 3 && v->y == -4 && v->tag == 99);
    CU_ASSERT_PTR_NULL(TR_PAYLOAD(shorter, point));
    CU_ASSERT_PTR_NULL(TR_PAYLOAD(longer, point));
    CU_ASSERT_PTR_NULL(TR_PAYLOAD(empty, point));
    CU_ASSERT_PTR_NULL(TR_PAYLOAD((const tr_msg *)NULL, point));

    /* A header followed by more: at least its size. */
    CU_ASSERT_PTR_EQUAL(TR_PAYLOAD_HEAD(exact, point), exact->data);
    CU_ASSERT_PTR_EQUAL(TR_PAYLOAD_HEAD(longer, point), longer->data);
    CU_ASSERT_PTR_NULL(TR_PAYLOAD_HEAD(shorter, point));
    CU_ASSERT_PTR_NULL(TR_PAYLOAD_HEAD((const tr_msg *)NULL, point));

    /* The message expression is evaluated once. */
    evaluations = 0;
    CU_ASSERT_PTR_NOT_NULL(TR_PAYLOAD(once(exact), point));
    CU_ASSERT_PTR_NULL(TR_PAYLOAD_HEAD(once(shorter), point));
    TT_EQ(evaluations, 2);

    tr_msg_free(exact);
    tr_msg_free(shorter);
    tr_msg_free(longer);
    tr_msg_free(empty);
}

/* TR_SEND_VALUE, inside and outside: the receiver gets exactly the
 * value with its size; an index with a side effect is evaluated once. */
enum { POINT = 1, POINTS, STOP };

typedef struct relay {
    tr_pid sink;
    point pts[4];
} relay;

typedef struct sink {
    atomic_int *got;      /* messages whose payload was right */
    atomic_int *handled;  /* all messages */
} sink;

static void sink_actor(tr_ctx *cx, void *state, const tr_msg *m)
{
    sink *s = state;
    (void)cx;
    atomic_fetch_add(s->handled, 1);
    const point *p = TR_PAYLOAD(m, point);
    TT_CHECK(m->type == POINT && p != NULL);
    if (p != NULL && p->x == -p->y && p->tag == (uint64_t)p->x * 10)
        atomic_fetch_add(s->got, 1);
}

static void relay_actor(tr_ctx *cx, void *state, const tr_msg *m)
{
    relay *r = state;
    if (m->type == POINT) { /* pass the value on */
        const point *p = TR_PAYLOAD(m, point);
        TT_CHECK(p != NULL);
        if (p != NULL) {
            point copy = *p;
            TT_CHECK(TR_SEND_VALUE(cx, r->sink, POINT, copy) == 0);
        }
    } else if (m->type == POINTS) { /* send each of an array, by index */
        int i = 0;
        while (i < 4)
            TT_CHECK(TR_SEND_VALUE(cx, r->sink, POINT, r->pts[i++]) == 0);
        TT_CHECK(i == 4);
    }
}

static void test_send_value(void)
{
    tt_reset_errors();
    tr_runtime *rt = tt_runtime(2, 0);
    atomic_int got = 0, handled = 0;
    sink s = {&got, &handled};
    relay r;
    for (int i = 0; i < 4; i++)
        r.pts[i] = (point){i + 1, -(i + 1), (uint64_t)(i + 1) * 10};
    TT_EQ(tr_spawn(tr_runtime_ctx(rt), sink_actor, &s, sizeof s, &r.sink), 0);
    tr_pid rp;
    TT_EQ(tr_spawn(tr_runtime_ctx(rt), relay_actor, &r, sizeof r, &rp), 0);

    point pts[3] = {{5, -5, 50}, {6, -6, 60}, {7, -7, 70}};
    int k = 0;
    TT_EQ(TR_SEND_VALUE(tr_runtime_ctx(rt), rp, POINT, pts[k++]), 0);
    TT_EQ(k, 1);
    TT_EQ(TR_SEND_VALUE(tr_runtime_ctx(rt), rp, POINT, pts[1]), 0);
    TT_EQ(TR_SEND_VALUE(tr_runtime_ctx(rt), r.sink, POINT, pts[2]), 0);
    TT_EQ(tr_send(tr_runtime_ctx(rt), rp, POINTS, NULL, 0), 0);
    TT_EQ(tr_runtime_run(rt), 0);
    TT_EQ(atomic_load(&handled), 7); /* 2 relayed, 1 direct, 4 from the array */
    TT_EQ(atomic_load(&got), 7);
    TT_NO_ERRORS();
    tr_runtime_destroy(rt);
}

void register_errors_tests(void)
{
    CU_pSuite s = tt_suite("errors");
    tt_test(s, "error_table_codes_and_texts_distinct", test_error_table);
    tt_test(s, "error_every_named_code_in_table", test_error_names);
    tt_test(s, "error_shared_codes_name_every_case", test_error_shared_texts);
    tt_test(s, "error_unknown_and_passed_through", test_error_unknown);
    tt_test(s, "error_codes_from_real_calls", test_error_from_calls);
    tt_test(s, "msgtype_ranges_ordered_and_apart", test_msgtype_ranges);
    tt_test(s, "msgtype_each_in_its_range_and_distinct", test_msgtype_table);
    tt_test(s, "msgtype_reserved_refused_to_users", test_msgtype_reserved);
    tt_test(s, "exit_reason_names", test_exit_reason_name);
    tt_test(s, "exit_reason_named_as_monitors_see_it", test_exit_reason_seen);
    tt_test(s, "payload_view_exact_size", test_payload_view);
    tt_test(s, "send_value_size_and_single_evaluation", test_send_value);
}
