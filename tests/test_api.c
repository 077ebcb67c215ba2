/* test_api.c — the public API used wrongly (documented error codes,
 * tr_strerror), used exactly (state copies, zero-copy messages, calls from
 * inside behaviours, tr_rand outside simulation), and the message pools'
 * steady state. */
#include "tests.h"
#include "../actors/pid.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

enum { MSG_A = 40, MSG_B = 41, MSG_PP = 42, MSG_BIG = 43 };

static void noop_actor(tr_ctx *cx, void *state, const tr_msg *m)
{
    (void)cx;
    (void)state;
    (void)m;
}

/* ---- tr_strerror ---------------------------------------------------------- */

static void test_strerror(void)
{
    const int codes[] = { TR_EINVAL, TR_ENOMEM, TR_ENOPID, TR_EMSGSIZE, TR_EAGAIN,
                          TR_EBUSY, TR_EDEADLK, TR_ENOTSTARTED,
#ifdef TR_ENOTACTOR
                          TR_ENOTACTOR,
#endif
    };
    const size_t n = sizeof codes / sizeof codes[0];
    const char *unknown = tr_strerror(-123456);
    CU_ASSERT_PTR_NOT_NULL_FATAL(unknown);
    CU_ASSERT_STRING_EQUAL(unknown, "unknown error");
    CU_ASSERT_STRING_EQUAL(tr_strerror(123456), "unknown error");
    CU_ASSERT_STRING_EQUAL(tr_strerror(INT_MIN), "unknown error");
    const char *ok = tr_strerror(TR_OK);
    CU_ASSERT(ok != NULL && ok[0] != '\0');
    for (size_t i = 0; i < n; i++) {
        const char *s = tr_strerror(codes[i]);
        CU_ASSERT_PTR_NOT_NULL(s);
        if (s == NULL)
            continue;
        if (s[0] == '\0' || strcmp(s, unknown) == 0)
            printf("\n    tr_strerror(%d) = \"%s\"\n", codes[i], s);
        CU_ASSERT(s[0] != '\0');
        CU_ASSERT(strcmp(s, "unknown error") != 0);
        for (size_t j = 0; j < i; j++) {
            const char *t = tr_strerror(codes[j]);
            if (t != NULL && strcmp(s, t) == 0)
                printf("\n    tr_strerror(%d) and tr_strerror(%d) are both \"%s\"\n",
                       codes[i], codes[j], s);
            CU_ASSERT(t == NULL || strcmp(s, t) != 0);
        }
    }
}

/* ---- configuration ---------------------------------------------------------- */

/* A copy of environment variable name's value (NULL if unset), for
 * env_restore to put back after a test has changed it. */
static char *env_save(const char *name)
{
    const char *v = getenv(name);
    return v != NULL ? strdup(v) : NULL;
}

static void env_restore(const char *name, char *saved)
{
    if (saved != NULL)
        setenv(name, saved, 1);
    else
        unsetenv(name);
    free(saved);
}

static void test_config(void)
{
    char *saved = env_save("TROUPE_THREADS");
    unsetenv("TROUPE_THREADS");
    tr_config cfg;
    memset(&cfg, 0xff, sizeof cfg);
    tr_config_init(&cfg);
    unsigned fallback = cfg.threads;
    CU_ASSERT(fallback >= 1 && fallback <= TR_MAX_THREADS);
    TT_EQ(cfg.batch, 64);

    setenv("TROUPE_THREADS", "3", 1);
    tr_config_init(&cfg);
    TT_EQ(cfg.threads, 3);
    const char *bad[] = { "0", "257", "-1", "abc", "" };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        setenv("TROUPE_THREADS", bad[i], 1);
        tr_config_init(&cfg);
        if (cfg.threads != fallback)
            printf("\n    TROUPE_THREADS=\"%s\" gave threads=%u\n", bad[i], cfg.threads);
        TT_EQ(cfg.threads, fallback);
    }
    env_restore("TROUPE_THREADS", saved);

    /* TROUPE_PIN: "1" on; unset, empty, "0" or anything else off. */
    saved = env_save("TROUPE_PIN");
    unsetenv("TROUPE_PIN");
    tr_config_init(&cfg);
    TT_EQ(cfg.pin, false);
    setenv("TROUPE_PIN", "1", 1);
    tr_config_init(&cfg);
    TT_EQ(cfg.pin, true);
    const char *off[] = { "0", "", "yes", "2", "1x" };
    for (size_t i = 0; i < sizeof off / sizeof off[0]; i++) {
        setenv("TROUPE_PIN", off[i], 1);
        tr_config_init(&cfg);
        if (cfg.pin)
            printf("\n    TROUPE_PIN=\"%s\" gave pin\n", off[i]);
        TT_EQ(cfg.pin, false);
    }
    env_restore("TROUPE_PIN", saved);

    /* Creating with defaults. */
    tr_runtime *rt = NULL;
    TT_EQ(tr_runtime_create(NULL, &rt), 0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(rt);
    tr_config_init(&cfg);
    TT_EQ(tr_runtime_threads(rt), cfg.threads);
    tr_runtime_destroy(rt);

    /* Out of range. */
    tr_config_init(&cfg);
    cfg.threads = TR_MAX_THREADS + 1;
    rt = NULL;
    TT_EQ(tr_runtime_create(&cfg, &rt), TR_EINVAL);
    cfg.threads = UINT_MAX;
    TT_EQ(tr_runtime_create(&cfg, &rt), TR_EINVAL);
    TT_EQ(tr_runtime_create(NULL, NULL), TR_EINVAL);

    /* The largest thread count is accepted (no thread starts yet). */
    cfg.threads = TR_MAX_THREADS;
    rt = NULL;
    TT_EQ(tr_runtime_create(&cfg, &rt), 0);
    if (rt != NULL) {
        TT_EQ(tr_runtime_threads(rt), TR_MAX_THREADS);
        tr_runtime_destroy(rt);
    }
    cfg.threads = 3;
    rt = NULL;
    TT_EQ(tr_runtime_create(&cfg, &rt), 0);
    if (rt != NULL) {
        TT_EQ(tr_runtime_threads(rt), 3);
        tr_runtime_destroy(rt);
    }
}

/* ---- NULL and invalid arguments ---------------------------------------------- */

static void test_null_arguments(void)
{
    int x = 0;
    TT_EQ(tr_runtime_run(NULL), TR_EINVAL);
    TT_EQ(tr_runtime_start(NULL), TR_EINVAL);
    TT_EQ(tr_runtime_join(NULL), TR_EINVAL);
    TT_EQ(tr_runtime_hold(NULL), TR_EINVAL);
    TT_EQ(tr_runtime_release(NULL), TR_EINVAL);
    TT_EQ(tr_spawn(tr_runtime_ctx(NULL), noop_actor, NULL, 0, NULL), TR_EINVAL);
    TT_EQ(tr_send(tr_runtime_ctx(NULL), (tr_pid)1 << TR__PID_INDEX_BITS, MSG_A, &x, sizeof x), TR_EINVAL);
    tr_msg *m = tr_msg_alloc(MSG_A, 4);
    CU_ASSERT_PTR_NOT_NULL_FATAL(m);
    /* The message belongs to the runtime whatever the result: no leak. */
    TT_EQ(tr_msg_send(tr_runtime_ctx(NULL), (tr_pid)1 << TR__PID_INDEX_BITS, m), TR_EINVAL);

    tr_runtime *rt = tt_runtime(1, 0);
    tr_pid p = TR_PID_NONE;
    TT_EQ(tr_spawn(tr_runtime_ctx(rt), NULL, NULL, 0, &p), TR_EINVAL);
    TT_EQ(tr_spawn(tr_runtime_ctx(rt), noop_actor, NULL, 8, &p), TR_EINVAL);
    TT_EQ(tr_spawn(tr_runtime_ctx(rt), noop_actor, NULL, 0, &p), 0);
    CU_ASSERT(p != TR_PID_NONE);
    TT_EQ(tr_send(tr_runtime_ctx(rt), p, MSG_A, NULL, 4), TR_EINVAL);
    TT_EQ(tr_send(tr_runtime_ctx(rt), p, MSG_A, NULL, 0), 0);
    TT_EQ(tr_msg_send(tr_runtime_ctx(rt), p, NULL), TR_EINVAL);
    TT_EQ(tr_runtime_run(rt), 0);
    tr_stats s;
    tr_runtime_stats(rt, &s);
    TT_EQ(s.actors_spawned, 1);
    TT_EQ(s.messages_sent, 1);
    TT_EQ(s.messages_handled, 1);
    tr_runtime_destroy(rt);
}

/* ---- pids that were never valid, reserved types, sizes ----------------------- */

static tr_pid make_pid(uint32_t node, uint32_t gen, uint32_t index)
{
    return ((tr_pid)node << (TR__PID_INDEX_BITS + TR__PID_GEN_BITS)) |
           ((tr_pid)gen << TR__PID_INDEX_BITS) | (tr_pid)index;
}

struct typed {
    atomic_ulong handled;
    _Atomic uint32_t last_type;
};

static void typed_actor(tr_ctx *cx, void *state, const tr_msg *m)
{
    (void)cx;
    struct typed *t = *(struct typed **)state;
    atomic_store(&t->last_type, m->type);
    atomic_fetch_add(&t->handled, 1);
}

static void test_bad_pids_types_sizes(void)
{
    struct typed ty = { 0 };
    struct typed *tp = &ty;
    tr_runtime *rt = tt_runtime(1, 0);
    tr_pid p;
    TT_EQ(tr_spawn(tr_runtime_ctx(rt), typed_actor, &tp, sizeof tp, &p), 0);
    CU_ASSERT(TR__PID_NODE(p) == 0 && TR__PID_GEN(p) != 0);
    int x = 1;
    static const unsigned char one_byte[1];

    /* Never valid pids. */
    const tr_pid never[] = {
        TR_PID_NONE,
        make_pid(0, 1, (1u << TR__PID_INDEX_BITS) - 1),  /* huge index */
        make_pid(0, 1, 1u << 25),
        make_pid(1, TR__PID_GEN(p), TR__PID_INDEX(p)),    /* another node */
        make_pid(0xffff, TR__PID_GEN(p), TR__PID_INDEX(p)),
        make_pid(0, 0, TR__PID_INDEX(p)),                /* generation 0 */
    };
    for (size_t i = 0; i < sizeof never / sizeof never[0]; i++) {
        int rc = tr_send(tr_runtime_ctx(rt), never[i], MSG_A, &x, sizeof x);
        if (rc != TR_ENOPID)
            printf("\n    send to pid %#" PRIx64 ": %d (%s)\n", never[i], rc, tr_strerror(rc));
        CU_ASSERT(rc == TR_ENOPID);
        tr_msg *m = tr_msg_alloc(MSG_A, 4);
        CU_ASSERT_PTR_NOT_NULL_FATAL(m);
        TT_EQ(tr_msg_send(tr_runtime_ctx(rt), never[i], m), TR_ENOPID); /* consumed */
    }

    /* Reserved types. */
    TT_EQ(tr_send(tr_runtime_ctx(rt), p, TR_MSG_SYSTEM, &x, sizeof x), TR_EINVAL);
    TT_EQ(tr_send(tr_runtime_ctx(rt), p, TR_MSG_SYSTEM + 1, &x, sizeof x), TR_EINVAL);
    TT_EQ(tr_send(tr_runtime_ctx(rt), p, UINT32_MAX, NULL, 0), TR_EINVAL);
    CU_ASSERT_PTR_NULL(tr_msg_alloc(TR_MSG_SYSTEM, 8));
    CU_ASSERT_PTR_NULL(tr_msg_alloc(UINT32_MAX, 0));
    /* A message whose type was changed to a reserved one after allocation. */
    tr_msg *m = tr_msg_alloc(MSG_A, 4);
    CU_ASSERT_PTR_NOT_NULL_FATAL(m);
    m->type = TR_MSG_SYSTEM;
    TT_EQ(tr_msg_send(tr_runtime_ctx(rt), p, m), TR_EINVAL); /* consumed */

    /* Too long. The size check comes before any copy, so a tiny buffer is
     * never read. */
    TT_EQ(tr_send(tr_runtime_ctx(rt), p, MSG_A, one_byte, (size_t)TR_MSG_MAX_LEN + 1), TR_EMSGSIZE);
    TT_EQ(tr_send(tr_runtime_ctx(rt), p, MSG_A, one_byte, SIZE_MAX), TR_EMSGSIZE);
    CU_ASSERT_PTR_NULL(tr_msg_alloc(MSG_A, (size_t)TR_MSG_MAX_LEN + 1));
    CU_ASSERT_PTR_NULL(tr_msg_alloc(MSG_A, SIZE_MAX));

    /* None of the failed sends counted or delivered anything. */
    TT_EQ(tr_runtime_run(rt), 0);
    TT_EQ(atomic_load(&ty.handled), 0);
    tr_stats s;
    tr_runtime_stats(rt, &s);
    TT_EQ(s.messages_sent, 0);
    TT_EQ(s.dead_letters, 0);

    /* The highest user type is fine. */
    TT_EQ(tr_send(tr_runtime_ctx(rt), p, TR_MSG_SYSTEM - 1, &x, sizeof x), 0);
    TT_EQ(tr_runtime_run(rt), 0);
    TT_EQ(atomic_load(&ty.handled), 1);
    TT_EQ(atomic_load(&ty.last_type), TR_MSG_SYSTEM - 1);
    tr_runtime_destroy(rt);
}

/* ---- tr_msg_alloc / tr_msg_free / tr_msg_send ------------------------------- */

struct big_check {
    atomic_ulong handled;
    atomic_ulong bad;
    tr_pid next; /* forward with tr_msg_send, or TR_PID_NONE */
};

static void big_actor(tr_ctx *cx, void *state, const tr_msg *m)
{
    struct big_check *b = *(struct big_check **)state;
    TT_CHECK(m->type == MSG_BIG);
    TT_CHECK(((uintptr_t)m->data & 15u) == 0);
    bool ok = m->len == 4096;
    for (uint32_t i = 0; ok && i < m->len; i++)
        ok = m->data[i] == (unsigned char)(i * 7u + 3u);
    if (!ok)
        atomic_fetch_add(&b->bad, 1);
    if (b->next != TR_PID_NONE) {
        tr_msg *fw = tr_msg_alloc(MSG_BIG, m->len);
        TT_CHECK(fw != NULL);
        if (fw != NULL) {
            TT_CHECK(fw->len == m->len && fw->type == MSG_BIG);
            memcpy(fw->data, m->data, m->len);
            TT_CHECK(tr_msg_send(cx, b->next, fw) == 0);
        }
    }
    atomic_fetch_add(&b->handled, 1);
}

/* ---- payload copies of every small length ------------------------------- */

/* tr_send copies a payload of up to 32 bytes (the smallest class), taken
 * from the thread's magazine, without memcpy: two overlapping fixed-size
 * copies; longer ones take the general path. Every length from 0 to past
 * that class arrives byte for byte, and none is read beyond its end: each
 * is sent from the last bytes before a page that may not be read. One
 * worker, and one length a turn after a few turns of warming up, so that
 * the magazine always has a message at hand (what the sender sent itself
 * comes back to it) and every length up to 32 takes the inline path. */
#define COPY_LENGTHS 100
#define COPY_WARMUP 8

struct copies {
    unsigned char *guard;   /* the first byte of the unreadable page */
    tr_pid receiver;
    uint32_t turns;
    uint32_t received;
};

static unsigned char copy_byte(size_t len, size_t i)
{
    return (unsigned char)(len * 31 + i * 7 + 1);
}

static void copy_receiver(tr_ctx *cx, void *state, const tr_msg *m)
{
    (void)cx;
    struct copies *c = *(struct copies **)state;
    uint32_t want = c->received++;
    TT_CHECK(m->type == MSG_A && m->len == want);
    for (uint32_t i = 0; i < m->len && i < want; i++)
        TT_CHECK(m->data[i] == copy_byte(want, i));
}

static void copy_sender(tr_ctx *cx, void *state, const tr_msg *m)
{
    (void)m;
    struct copies *c = *(struct copies **)state;
    uint32_t turn = c->turns++;
    if (turn >= COPY_WARMUP) {
        size_t len = turn - COPY_WARMUP;
        unsigned char *src = c->guard - len;
        for (size_t i = 0; i < len; i++)
            src[i] = copy_byte(len, i);
        TT_CHECK(tr_send(cx, c->receiver, MSG_A, src, len) == 0);
        if (len == COPY_LENGTHS)
            return;
    }
    TT_CHECK(tr_send(cx, tr_self(cx), MSG_B, NULL, 0) == 0);
}

static void test_small_payload_copies(void)
{
    long page = sysconf(_SC_PAGESIZE);
    unsigned char *map = mmap(NULL, (size_t)page * 2, PROT_READ | PROT_WRITE,
                              MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    CU_ASSERT_FATAL(map != MAP_FAILED);
    TT_EQ(mprotect(map + page, (size_t)page, PROT_NONE), 0);
    struct copies c = { .guard = map + page };
    struct copies *cp = &c;
    tr_runtime *rt = tt_runtime(1, 0);
    tr_pid sender;
    TT_EQ(tr_spawn(tr_runtime_ctx(rt), copy_receiver, &cp, sizeof cp, &c.receiver), 0);
    TT_EQ(tr_spawn(tr_runtime_ctx(rt), copy_sender, &cp, sizeof cp, &sender), 0);
    TT_EQ(tr_send(tr_runtime_ctx(rt), sender, MSG_B, NULL, 0), 0);
    TT_EQ(tr_runtime_run(rt), 0);
    TT_NO_ERRORS();
    TT_EQ(c.received, COPY_LENGTHS + 1);
    tr_runtime_destroy(rt);
    munmap(map, (size_t)page * 2);
}

static void test_msg_alloc_send(void)
{
    tr_msg_free(NULL); /* ignored */

    tr_msg *m = tr_msg_alloc(MSG_A, 0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(m);
    TT_EQ(m->len, 0);
    TT_EQ(m->type, MSG_A);
    tr_msg_free(m);

    m = tr_msg_alloc(MSG_B, 100);
    CU_ASSERT_PTR_NOT_NULL_FATAL(m);
    TT_EQ(m->len, 100);
    TT_EQ(m->type, MSG_B);
    CU_ASSERT(((uintptr_t)m->data & 15u) == 0);
    memset(m->data, 0xab, 100); /* the whole payload is writable */
    tr_msg_free(m);

    struct big_check first = { 0 }, second = { 0 };
    struct big_check *fp = &first, *sp = &second;
    tr_runtime *rt = tt_runtime(2, 0);
    tr_pid p1, p2;
    TT_EQ(tr_spawn(tr_runtime_ctx(rt), big_actor, &sp, sizeof sp, &p2), 0);
    first.next = p2;
    TT_EQ(tr_spawn(tr_runtime_ctx(rt), big_actor, &fp, sizeof fp, &p1), 0);
    for (int k = 0; k < 100; k++) {
        m = tr_msg_alloc(MSG_BIG, 4096);
        CU_ASSERT_PTR_NOT_NULL_FATAL(m);
        for (uint32_t i = 0; i < 4096; i++)
            m->data[i] = (unsigned char)(i * 7u + 3u);
        TT_EQ(tr_msg_send(tr_runtime_ctx(rt), p1, m), 0);
    }
    TT_EQ(tr_runtime_run(rt), 0);
    TT_NO_ERRORS();
    TT_EQ(atomic_load(&first.handled), 100);
    TT_EQ(atomic_load(&second.handled), 100);
    TT_EQ(atomic_load(&first.bad), 0);
    TT_EQ(atomic_load(&second.bad), 0);
    tr_runtime_destroy(rt);
}

/* ---- lifecycle misuse ------------------------------------------------------ */

static void test_lifecycle_errors(void)
{
    tr_runtime *rt = tt_runtime(2, 0);
    TT_EQ(tr_runtime_join(rt), TR_ENOTSTARTED);
    TT_EQ(tr_runtime_release(rt), TR_EINVAL);
    TT_EQ(tr_runtime_hold(rt), 0);
    TT_EQ(tr_runtime_release(rt), 0);
    TT_EQ(tr_runtime_release(rt), TR_EINVAL);

    /* Already running. */
    TT_EQ(tr_runtime_hold(rt), 0);
    TT_EQ(tr_runtime_start(rt), 0);
    TT_EQ(tr_runtime_run(rt), TR_EBUSY);
    TT_EQ(tr_runtime_start(rt), TR_EBUSY);
    TT_EQ(tr_runtime_release(rt), 0);
    TT_EQ(tr_runtime_join(rt), 0);
    TT_EQ(tr_runtime_release(rt), TR_EINVAL);
    tr_runtime_destroy(rt);
}

/* ---- threads that cannot be made -------------------------------------------- */

static void count_into(tr_ctx *cx, void *state, const tr_msg *m)
{
    (void)cx;
    (void)m;
    atomic_fetch_add(*(atomic_ulong **)state, 1);
}

/* tr_runtime_start when pthread_create fails (a limit on threads), for
 * the first of four workers, the third, or the monitor thread after them:
 * TR_ENOMEM, and none of the threads it made is left; the runtime is as
 * it was, and starts when threads can be had again. A message sent before
 * the failed start and one after are each handled once (the first perhaps
 * by a worker of the failed start, before it was stopped). */
static void test_start_without_threads(void)
{
    static const unsigned long fail_at[] = {1, 3, 5}; /* calls 1-4: workers; 5: the monitor */
    for (size_t k = 0; k < sizeof fail_at / sizeof fail_at[0]; k++) {
        int threads = tt_threads_running();
        CU_ASSERT_FATAL(threads > 0);
        tr_runtime *rt = tt_runtime(4, 0);
        atomic_ulong handled = 0;
        atomic_ulong *hp = &handled;
        tr_pid p;
        TT_EQ(tr_spawn(tr_runtime_ctx(rt), count_into, &hp, sizeof hp, &p), 0);
        TT_EQ(tr_send(tr_runtime_ctx(rt), p, MSG_A, NULL, 0), 0);
        tt_thread_fail(fail_at[k]);
        TT_EQ(tr_runtime_start(rt), TR_ENOMEM);
        tt_thread_fail(0);
        TT_EQ(tt_threads_running(), threads);
        CU_ASSERT(atomic_load(&handled) <= 1);
        TT_EQ(tr_runtime_join(rt), TR_ENOTSTARTED);

        TT_EQ(tr_send(tr_runtime_ctx(rt), p, MSG_A, NULL, 0), 0);
        TT_EQ(tr_runtime_start(rt), 0);
        TT_EQ(tt_join_within(rt, 60), 0);
        TT_EQ(atomic_load(&handled), 2);
        TT_NO_ERRORS();
        tr_runtime_destroy(rt);
        TT_EQ(tt_threads_running(), threads);
    }
}

/* ---- calls made from inside a behaviour ------------------------------------- */

struct inside {
    tr_runtime *rt;
    tr_pid self;
    tr_pid child;
    int run_rc, join_rc, start_rc;
    int send_reserved_rc, send_none_rc, send_size_rc, send_null_rc;
    int spawn_null_rc, spawn_ok_rc, child_send_rc;
    bool self_ok, rt_ok, from_ok, to_ok;
    atomic_ulong child_handled;
    atomic_ulong child_from_ok;
    atomic_ulong handled;
};

static void inside_child(tr_ctx *cx, void *state, const tr_msg *m)
{
    (void)cx;
    struct inside *in = *(struct inside **)state;
    if (m->from == in->self && m->type == MSG_B)
        atomic_fetch_add(&in->child_from_ok, 1);
    atomic_fetch_add(&in->child_handled, 1);
}

static void inside_actor(tr_ctx *cx, void *state, const tr_msg *m)
{
    struct inside *in = *(struct inside **)state;
    static const unsigned char one_byte[1];
    int x = 0;
    tr_runtime *rt = tr_ctx_runtime(cx);
    in->rt_ok = rt == in->rt;
    in->self_ok = tr_self(cx) == in->self;
    in->from_ok = m->from == TR_PID_NONE;
    in->to_ok = m->to == in->self;
    in->run_rc = tr_runtime_run(rt);
    in->join_rc = tr_runtime_join(rt);
    in->start_rc = tr_runtime_start(rt);
    in->send_reserved_rc = tr_send(cx, in->self, TR_MSG_SYSTEM, &x, sizeof x);
    in->send_none_rc = tr_send(cx, TR_PID_NONE, MSG_A, &x, sizeof x);
    in->send_size_rc = tr_send(cx, in->self, MSG_A, one_byte, (size_t)TR_MSG_MAX_LEN + 1);
    in->send_null_rc = tr_send(cx, in->self, MSG_A, NULL, 4);
    in->spawn_null_rc = tr_spawn(cx, NULL, NULL, 0, NULL);
    in->spawn_ok_rc = tr_spawn(cx, inside_child, &in, sizeof in, &in->child);
    in->child_send_rc = in->spawn_ok_rc == 0 ? tr_send(cx, in->child, MSG_B, NULL, 0) : -1;
    atomic_fetch_add(&in->handled, 1);
}

static void test_calls_from_behaviour(void)
{
    struct inside in = { 0 };
    struct inside *ip = &in;
    tr_runtime *rt = tt_runtime(2, 0);
    in.rt = rt;
    TT_EQ(tr_spawn(tr_runtime_ctx(rt), inside_actor, &ip, sizeof ip, &in.self), 0);
    TT_EQ(tr_send(tr_runtime_ctx(rt), in.self, MSG_A, NULL, 0), 0);
    TT_EQ(tr_runtime_run(rt), 0);

    TT_EQ(atomic_load(&in.handled), 1);
    CU_ASSERT_TRUE(in.rt_ok);
    CU_ASSERT_TRUE(in.self_ok);
    CU_ASSERT_TRUE(in.from_ok);
    CU_ASSERT_TRUE(in.to_ok);
    TT_EQ(in.run_rc, TR_EDEADLK);
    TT_EQ(in.join_rc, TR_EDEADLK);
    if (in.start_rc != TR_EDEADLK && in.start_rc != TR_EBUSY)
        printf("\n    tr_runtime_start from a behaviour: %d (%s)\n", in.start_rc,
               tr_strerror(in.start_rc));
    CU_ASSERT(in.start_rc == TR_EDEADLK || in.start_rc == TR_EBUSY);
    TT_EQ(in.send_reserved_rc, TR_EINVAL);
    TT_EQ(in.send_none_rc, TR_ENOPID);
    TT_EQ(in.send_size_rc, TR_EMSGSIZE);
    TT_EQ(in.send_null_rc, TR_EINVAL);
    TT_EQ(in.spawn_null_rc, TR_EINVAL);
    TT_EQ(in.spawn_ok_rc, 0);
    TT_EQ(in.child_send_rc, 0);
    TT_EQ(atomic_load(&in.child_handled), 1);
    TT_EQ(atomic_load(&in.child_from_ok), 1);
    tr_stats s;
    tr_runtime_stats(rt, &s);
    TT_EQ(s.messages_handled, 2);
    TT_EQ(s.actors_spawned, 2);
    tr_runtime_destroy(rt);
}

/* ---- tr_rand outside simulation ------------------------------------------------
 *
 * In production tr_rand draws from the calling worker's generator inside a
 * behaviour, and from a generator of the calling thread's own elsewhere
 * (sim.h). Either way the values vary: none repeats among a few thousand
 * (xorshift64 does not repeat within its period) and every bit takes both
 * values. Two plain threads drawing at once share no state (TSan), and do
 * not draw the same stream; nor do the workers of two runtimes. */
#define RAND_N 4096
#define RAND_ACTORS 8

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* Repeats among v[0..n) (sorted in place), and whether every bit varied. */
static unsigned rand_repeats(uint64_t *v, size_t n, bool *bits_vary)
{
    uint64_t any = 0, all = ~(uint64_t)0;
    for (size_t i = 0; i < n; i++) {
        any |= v[i];
        all &= v[i];
    }
    *bits_vary = any == ~(uint64_t)0 && all == 0;
    qsort(v, n, sizeof *v, cmp_u64);
    unsigned rep = 0;
    for (size_t i = 1; i < n; i++)
        rep += v[i] == v[i - 1];
    return rep;
}

struct rand_thread {
    tr_runtime *rt;
    sem_t *go;
    uint64_t v[RAND_N];
};

static void *rand_thread_main(void *arg)
{
    struct rand_thread *t = arg;
    sem_wait(t->go);
    for (size_t i = 0; i < RAND_N; i++)
        t->v[i] = tr_rand(i % 2 ? NULL : tr_runtime_ctx(t->rt));
    return NULL;
}

struct rand_out {
    uint64_t v[RAND_ACTORS][RAND_N / RAND_ACTORS];
    atomic_uint turns;
};

static void rand_actor(tr_ctx *cx, void *state, const tr_msg *m)
{
    struct rand_out *out = *(struct rand_out **)state;
    uint64_t k = tt_u64(m);
    TT_CHECK(k < RAND_ACTORS);
    if (k >= RAND_ACTORS)
        return;
    for (size_t i = 0; i < RAND_N / RAND_ACTORS; i++)
        out->v[k][i] = tr_rand(i % 2 ? NULL : cx); /* cx may be NULL */
    atomic_fetch_add(&out->turns, 1);
}

static void test_rand_outside_simulation(void)
{
    /* On the test thread, before any runtime and with one. */
    static uint64_t mine[RAND_N];
    tr_runtime *rt = tt_runtime(2, 0);
    for (size_t i = 0; i < RAND_N; i++)
        mine[i] = tr_rand(i % 2 ? NULL : tr_runtime_ctx(rt));
    bool vary = false;
    TT_EQ(rand_repeats(mine, RAND_N, &vary), 0);
    CU_ASSERT(vary);

    /* Two threads at once. */
    sem_t go;
    CU_ASSERT_FATAL(sem_init(&go, 0, 0) == 0);
    struct rand_thread *th = calloc(2, sizeof *th);
    CU_ASSERT_FATAL(th != NULL);
    pthread_t tid[2];
    for (int i = 0; i < 2; i++) {
        th[i].rt = rt;
        th[i].go = &go;
        tid[i] = tt_thread(rand_thread_main, &th[i]);
    }
    sem_post(&go);
    sem_post(&go);
    for (int i = 0; i < 2; i++)
        tt_join(tid[i]);
    CU_ASSERT(th[0].v[0] != th[1].v[0]); /* seeded apart */
    uint64_t *both = malloc(2 * RAND_N * sizeof *both);
    CU_ASSERT_FATAL(both != NULL);
    memcpy(both, th[0].v, sizeof th[0].v);
    memcpy(both + RAND_N, th[1].v, sizeof th[1].v);
    TT_EQ(rand_repeats(both, 2 * RAND_N, &vary), 0);
    CU_ASSERT(vary);

    /* Inside behaviours, on the workers' generators. */
    struct rand_out *out = calloc(1, sizeof *out);
    CU_ASSERT_FATAL(out != NULL);
    for (uint64_t k = 0; k < RAND_ACTORS; k++) {
        tr_pid p;
        TT_EQ(tr_spawn(tr_runtime_ctx(rt), rand_actor, &out, sizeof out, &p), 0);
        TT_EQ(tr_send(tr_runtime_ctx(rt), p, MSG_A, &k, sizeof k), 0);
    }
    TT_EQ(tr_runtime_run(rt), 0);
    TT_EQ(atomic_load(&out->turns), RAND_ACTORS);
    TT_EQ(rand_repeats(&out->v[0][0], RAND_N, &vary), 0);
    CU_ASSERT(vary);
    tr_runtime_destroy(rt);

    /* A runtime's workers do not draw what another runtime's drew: two
     * one-worker runtimes, one after the other, give different values (a
     * fixed seed per worker would give every program the same ones). */
    uint64_t first[2][RAND_N / RAND_ACTORS];
    for (int r = 0; r < 2; r++) {
        memset(out, 0, sizeof *out);
        rt = tt_runtime(1, 0);
        tr_pid p;
        uint64_t k = 0;
        TT_EQ(tr_spawn(tr_runtime_ctx(rt), rand_actor, &out, sizeof out, &p), 0);
        TT_EQ(tr_send(tr_runtime_ctx(rt), p, MSG_A, &k, sizeof k), 0);
        TT_EQ(tr_runtime_run(rt), 0);
        TT_EQ(atomic_load(&out->turns), 1);
        memcpy(first[r], out->v[0], sizeof first[r]);
        tr_runtime_destroy(rt);
    }
    memcpy(both, first, sizeof first);
    TT_EQ(rand_repeats(both, 2 * (RAND_N / RAND_ACTORS), &vary), 0);
    CU_ASSERT(vary);
    free(out);
    free(both);
    free(th);
    sem_destroy(&go);
    TT_NO_ERRORS();
}

/* ---- actor state is a private copy ----------------------------------------- */

struct small_state {
    uint32_t magic;
    uint32_t count;
    struct seen_counts *out;
};

struct big_state {
    unsigned char pattern[200]; /* > TR__STATE_INLINE: allocated at spawn */
    uint32_t count;
    struct seen_counts *out;
};

struct seen_counts {
    atomic_uint small_counts[4];
    atomic_uint big_counts[4];
    atomic_ulong bad;
};

static void small_state_actor(tr_ctx *cx, void *state, const tr_msg *m)
{
    (void)cx;
    (void)m;
    struct small_state *st = state;
    if (st->magic != 0x5a5a1234u)
        atomic_fetch_add(&st->out->bad, 1);
    st->count++; /* persists across messages */
    if (st->count < 4)
        atomic_store(&st->out->small_counts[st->count], st->count);
}

static void big_state_actor(tr_ctx *cx, void *state, const tr_msg *m)
{
    (void)cx;
    (void)m;
    struct big_state *st = state;
    for (int i = 0; i < 200; i++)
        if (st->pattern[i] != (unsigned char)(i ^ 0x3c)) {
            atomic_fetch_add(&st->out->bad, 1);
            break;
        }
    st->count++;
    if (st->count < 4)
        atomic_store(&st->out->big_counts[st->count], st->count);
}

static void test_state_copy(void)
{
    struct seen_counts out;
    memset(&out, 0, sizeof out);
    tr_runtime *rt = tt_runtime(2, 0);

    struct small_state ss = { 0x5a5a1234u, 0, &out };
    struct big_state *bs = calloc(1, sizeof *bs);
    CU_ASSERT_FATAL(bs != NULL);
    for (int i = 0; i < 200; i++)
        bs->pattern[i] = (unsigned char)(i ^ 0x3c);
    bs->out = &out;
    tr_pid ps, pb;
    TT_EQ(tr_spawn(tr_runtime_ctx(rt), small_state_actor, &ss, sizeof ss, &ps), 0);
    TT_EQ(tr_spawn(tr_runtime_ctx(rt), big_state_actor, bs, sizeof *bs, &pb), 0);
    /* The originals can change or go away: the actors have copies. */
    ss.magic = 0;
    memset(bs, 0, sizeof *bs);
    free(bs);

    for (int i = 0; i < 3; i++) {
        TT_EQ(tr_send(tr_runtime_ctx(rt), ps, MSG_A, NULL, 0), 0);
        TT_EQ(tr_send(tr_runtime_ctx(rt), pb, MSG_A, NULL, 0), 0);
    }
    TT_EQ(tr_runtime_run(rt), 0);
    TT_EQ(atomic_load(&out.bad), 0);
    for (unsigned i = 1; i < 4; i++) {
        TT_EQ(atomic_load(&out.small_counts[i]), i);
        TT_EQ(atomic_load(&out.big_counts[i]), i);
    }
    tr_runtime_destroy(rt);
}

/* ---- message pools: no malloc per send in steady state ----------------------- */

#define POOL_WARMUP_TRIPS 10000u
#define POOL_TRIPS 1000000u

struct pool_pp {
    tr_pid a, b;
    uint64_t last_message; /* messages numbered 1..last_message this run */
    _Atomic uint64_t reached;
};

static void pool_actor(tr_ctx *cx, void *state, const tr_msg *m)
{
    struct pool_pp *pp = *(struct pool_pp **)state;
    uint64_t n = 0;
    TT_CHECK(m->type == MSG_PP && m->len == sizeof n);
    memcpy(&n, m->data, sizeof n);
    atomic_store_explicit(&pp->reached, n, memory_order_relaxed);
    if (n < pp->last_message) {
        n++;
        TT_CHECK(tr_send(cx, tr_self(cx) == pp->a ? pp->b : pp->a, MSG_PP, &n, sizeof n) == 0);
    }
}

static void pool_round(tr_runtime *rt, struct pool_pp *pp, uint64_t trips)
{
    pp->last_message = 2 * trips;
    uint64_t one = 1;
    TT_EQ(tr_send(tr_runtime_ctx(rt), pp->a, MSG_PP, &one, sizeof one), 0);
    TT_EQ(tr_runtime_run(rt), 0);
    TT_EQ(atomic_load(&pp->reached), 2 * trips);
}

static void test_pool_steady_state(void)
{
    struct pool_pp pp = { 0 };
    struct pool_pp *ppp = &pp;
    tr_runtime *rt = tt_runtime(2, 0);
    TT_EQ(tr_spawn(tr_runtime_ctx(rt), pool_actor, &ppp, sizeof ppp, &pp.a), 0);
    TT_EQ(tr_spawn(tr_runtime_ctx(rt), pool_actor, &ppp, sizeof ppp, &pp.b), 0);

    pool_round(rt, &pp, POOL_WARMUP_TRIPS);
    tr_stats before, after;
    tr_runtime_stats(rt, &before);
    pool_round(rt, &pp, POOL_TRIPS);
    tr_runtime_stats(rt, &after);
    TT_NO_ERRORS();

    uint64_t sent = after.messages_sent - before.messages_sent;
    uint64_t mallocs = after.pool_mallocs - before.pool_mallocs;
    TT_EQ(sent, 2 * POOL_TRIPS);
    TT_EQ(after.messages_handled - before.messages_handled, 2 * POOL_TRIPS);
    printf("[%" PRIu64 " pool mallocs for %" PRIu64 " messages] ", mallocs, sent);
    CU_ASSERT(mallocs * 100 < sent);
    tr_runtime_destroy(rt);
}

void register_api_tests(void)
{
    CU_pSuite s = tt_suite("api");
    tt_test(s, "strerror_names_every_code_distinctly", test_strerror);
    tt_test(s, "config_takes_troupe_threads_and_pin_ignores_bad_values", test_config);
    tt_test(s, "null_arguments", test_null_arguments);
    tt_test(s, "bad_pids_types_sizes", test_bad_pids_types_sizes);
    tt_test(s, "lifecycle_errors", test_lifecycle_errors);
    tt_test(s, "start_without_threads_fails_and_leaves_none", test_start_without_threads);
    tt_test(s, "calls_from_behaviour", test_calls_from_behaviour);
    tt_test(s, "rand_outside_simulation_varies_on_workers_and_threads",
            test_rand_outside_simulation);
    tt_test(s, "spawn_copies_the_state_small_and_large", test_state_copy);
    tt_test(s, "msg_alloc_and_zero_copy_send", test_msg_alloc_send);
    tt_test(s, "payloads_of_0_to_100_bytes_arrive_byte_for_byte", test_small_payload_copies);
    tt_test(s, "pool_steady_state_1M_round_trips", test_pool_steady_state);
}
