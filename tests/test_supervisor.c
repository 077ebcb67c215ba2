/* test_supervisor.c — supervisors (troupe/supervisor.h).
 *
 * Children ("kids") report to a collector actor: their init with their state,
 * their state on request, a crash about to happen, and any TR_EXIT they
 * get (kids that trap exits report the shutdown signal, then obey it —
 * or ignore it, to be killed after their shutdown_ns). The collector logs
 * the reports in the order it handles them, and can monitor every kid it
 * hears of. The test thread drives the tree step by step: send, run to
 * quiescence, read the log.
 *
 * Ordering that the log can show reliably: a kid reports before it ends,
 * and the supervisor stops the next kid only after the previous one ended,
 * so the STOPPED reports of one stop sequence are in stop order. (The
 * order in which restarted kids run their init is not their start order:
 * the supervisor spawns them all within one turn and they run
 * concurrently, so the tests check who restarted, not in which order.) */
#include "tests.h"

#include <limits.h>

#include <stdlib.h>
#include <string.h>

enum {
    K_BUMP = 1,  /* value += 100 */
    K_QUERY,     /* report EV_STATE */
    K_CRASH,     /* report EV_CRASHING, then tr_exit(KID_CRASH) */
    K_QUIT,      /* tr_stop */
    K_SHUTDOWN,  /* tr_exit(TR_EXIT_SHUTDOWN) on its own */
    C_REPORT,    /* kid -> collector: struct event */
    C_WATCH,     /* test -> collector: monitor struct watch */
    O_GO,        /* test -> observer: start the supervisor */
};

enum { EV_INIT = 1, EV_STATE, EV_CRASHING, EV_STOPPED, EV_DOWN, EV_EXIT };

#define KID_CRASH 99
#define SUP_ID 100      /* the collector's name for a watched supervisor */
#define WRAPPER_ID 10

/* Kid flags. */
#define KF_TRAP 1u      /* traps exits (and reports TR_EXIT) */
#define KF_IGNORE 2u    /* with KF_TRAP: ignores the shutdown signal */
#define KF_FAIL_AGAIN 4u /* its init fails (KID_INIT_FAIL) at every start after the first */

#define KID_INIT_FAIL 98

struct event {
    int kind, id, value, reason;
    tr_pid pid;   /* who reported (or, for EV_DOWN, who ended) */
    tr_pid from;  /* EV_INIT: init's spawner; EV_STOPPED/EV_EXIT: the signal's pid */
};

#define MAX_EVENTS 4096
#define MAX_IDS 128
#define MAX_KNOWN 1024

/* Starts of each kid id's init, for KF_FAIL_AGAIN (zeroed by tree_new). */
static atomic_uint kid_starts[MAX_IDS];

struct log {
    struct event ev[MAX_EVENTS];
    atomic_uint n;
    _Atomic tr_pid kid[MAX_IDS];   /* latest pid per id */
    /* Collector only. */
    bool monitor_kids;
    tr_pid known[MAX_KNOWN];
    int known_id[MAX_KNOWN];
    unsigned nknown;
    /* On EV_STOPPED from trigger_stopped, crash the kid trigger_crash (once). */
    int trigger_stopped, trigger_crash;
    /* On EV_INIT of auto_crash_id, crash it again, auto_crash_left times. */
    int auto_crash_id, auto_crash_left;
    /* On EV_STOPPED from trigger_stopped, also (once each, in this
     * order): kill trigger_kill with TR_EXIT_SHUTDOWN, register the
     * collector under trigger_name, tell kid trigger_quit to K_QUIT. */
    tr_pid trigger_kill;
    const char *trigger_name;
    int trigger_quit;
    /* On EV_DOWN of down_id, tell kid down_quit to K_QUIT (once). */
    int down_id, down_quit;
};

struct watch {
    tr_pid pid;
    int id;
};

/* ---- the collector ---------------------------------------------------------- */

static void log_add(struct log *lg, struct event e)
{
    unsigned n = atomic_load_explicit(&lg->n, memory_order_relaxed);
    TT_CHECK(n < MAX_EVENTS);
    if (n >= MAX_EVENTS)
        return;
    lg->ev[n] = e;
    atomic_store_explicit(&lg->n, n + 1, memory_order_release);
}

static void know(struct log *lg, tr_pid pid, int id)
{
    TT_CHECK(lg->nknown < MAX_KNOWN);
    if (lg->nknown < MAX_KNOWN) {
        lg->known[lg->nknown] = pid;
        lg->known_id[lg->nknown++] = id;
    }
}

static int id_of(const struct log *lg, tr_pid pid)
{
    for (unsigned i = 0; i < lg->nknown; i++)
        if (lg->known[i] == pid)
            return lg->known_id[i];
    return -1;
}

static void collector(tr_ctx *cx, void *state, const tr_msg *m)
{
    struct log *lg = *(struct log **)state;
    switch (m->type) {
    case C_REPORT: {
        struct event e;
        TT_CHECK(m->len == sizeof e);
        memcpy(&e, m->data, sizeof e);
        e.pid = m->from;
        log_add(lg, e);
        if (e.kind == EV_INIT) {
            TT_CHECK(e.id >= 0 && e.id < MAX_IDS);
            atomic_store(&lg->kid[e.id], e.pid);
            know(lg, e.pid, e.id);
            if (lg->monitor_kids)
                TT_CHECK(tr_monitor(cx, e.pid, NULL) == 0);
            if (e.id == lg->auto_crash_id && lg->auto_crash_left > 0) {
                lg->auto_crash_left--;
                TT_CHECK(tr_send(cx, e.pid, K_CRASH, NULL, 0) == 0);
            }
        }
        if (e.kind == EV_STOPPED && e.id == lg->trigger_stopped && lg->trigger_crash >= 0) {
            TT_CHECK(tr_send(cx, atomic_load(&lg->kid[lg->trigger_crash]), K_CRASH, NULL, 0) == 0);
            lg->trigger_crash = -1;
        }
        if (e.kind == EV_STOPPED && e.id == lg->trigger_stopped && lg->trigger_kill != TR_PID_NONE) {
            TT_CHECK(tr_kill(cx, lg->trigger_kill, TR_EXIT_SHUTDOWN) == 0);
            lg->trigger_kill = TR_PID_NONE;
        }
        if (e.kind == EV_STOPPED && e.id == lg->trigger_stopped && lg->trigger_name != NULL) {
            TT_CHECK(tr_register(tr_ctx_runtime(cx), lg->trigger_name, tr_self(cx)) == 0);
            lg->trigger_name = NULL;
        }
        if (e.kind == EV_STOPPED && e.id == lg->trigger_stopped && lg->trigger_quit >= 0) {
            TT_CHECK(tr_send(cx, atomic_load(&lg->kid[lg->trigger_quit]), K_QUIT, NULL, 0) == 0);
            lg->trigger_quit = -1;
        }
        break;
    }
    case C_WATCH: {
        struct watch w;
        memcpy(&w, m->data, sizeof w);
        know(lg, w.pid, w.id);
        TT_CHECK(tr_monitor(cx, w.pid, NULL) == 0);
        break;
    }
    case TR_DOWN: {
        const tr_down_info *d = (const tr_down_info *)m->data;
        struct event e = { EV_DOWN, id_of(lg, d->pid), 0, d->reason, d->pid, TR_PID_NONE };
        log_add(lg, e);
        if (e.id == lg->down_id && lg->down_quit >= 0) {
            TT_CHECK(tr_send(cx, atomic_load(&lg->kid[lg->down_quit]), K_QUIT, NULL, 0) == 0);
            lg->down_quit = -1;
        }
        break;
    }
    default:
        TT_CHECK(!"collector: unexpected message");
        break;
    }
}

/* ---- kids ------------------------------------------------------------------- */

struct kid_state {
    tr_pid collector;
    int32_t id;
    int32_t value;  /* mutated by K_BUMP; fresh after a restart */
    uint32_t flags;
};

static void report(tr_ctx *cx, tr_pid collector_pid, int kind, int id, int value, int reason,
                   tr_pid from)
{
    struct event e = { kind, id, value, reason, TR_PID_NONE, from };
    TT_CHECK(tr_send(cx, collector_pid, C_REPORT, &e, sizeof e) == 0);
}

/* EV_INIT's reason: 0, or KID_INIT_FAIL for an init that fails. */
static int kid_init(tr_ctx *cx, void *state, tr_pid spawner)
{
    struct kid_state *st = state;
    if (st->flags & KF_TRAP)
        tr_trap_exits(cx, true);
    unsigned starts = atomic_fetch_add(&kid_starts[st->id], 1) + 1;
    int fail = (st->flags & KF_FAIL_AGAIN) && starts > 1 ? KID_INIT_FAIL : 0;
    report(cx, st->collector, EV_INIT, st->id, st->value, fail, spawner);
    return fail;
}

static void kid(tr_ctx *cx, void *state, const tr_msg *m)
{
    struct kid_state *st = state;
    switch (m->type) {
    case K_BUMP:
        st->value += 100;
        break;
    case K_QUERY:
        report(cx, st->collector, EV_STATE, st->id, st->value, 0, TR_PID_NONE);
        break;
    case K_CRASH:
        report(cx, st->collector, EV_CRASHING, st->id, st->value, 0, TR_PID_NONE);
        tr_exit(cx, KID_CRASH, "crash");
        break;
    case K_QUIT:
        tr_stop(cx);
        break;
    case K_SHUTDOWN:
        tr_exit(cx, TR_EXIT_SHUTDOWN, NULL);
        break;
    case TR_EXIT: {
        const tr_exit_info *e = (const tr_exit_info *)m->data;
        report(cx, st->collector, EV_STOPPED, st->id, st->value, e->reason, e->pid);
        if (!(st->flags & KF_IGNORE))
            tr_exit(cx, e->reason, NULL);
        break;
    }
    default:
        TT_CHECK(!"kid: unexpected message");
        break;
    }
}

#define KID_SPEC(st) \
    { .behaviour = kid, .state = (st), .state_size = sizeof *(st), .init = kid_init }

static int initial_value(int id)
{
    return id * 10 + 1;
}

/* ---- helpers for the test thread --------------------------------------------- */

struct tree {
    tr_runtime *rt;
    struct log *lg;
    tr_pid coll;
    struct kid_state ks[MAX_IDS];
    tr_child_spec cs[MAX_IDS];
    tr_supervisor_spec spec;
};

static struct tree *tree_new(unsigned threads)
{
    struct tree *t = calloc(1, sizeof *t);
    CU_ASSERT_FATAL(t != NULL);
    t->lg = calloc(1, sizeof *t->lg);
    CU_ASSERT_FATAL(t->lg != NULL);
    t->lg->trigger_stopped = t->lg->trigger_crash = t->lg->auto_crash_id = -1;
    t->lg->trigger_quit = t->lg->down_id = t->lg->down_quit = -1;
    for (int i = 0; i < MAX_IDS; i++)
        atomic_store(&kid_starts[i], 0);
    t->rt = tt_runtime(threads, 0);
    TT_EQ(tr_spawn(tr_runtime_ctx(t->rt), collector, &t->lg, sizeof t->lg, &t->coll), 0);
    return t;
}

static void tree_free(struct tree *t)
{
    tr_runtime_destroy(t->rt);
    free(t->lg);
    free(t);
}

/* Kid specs 0..n-1 with the given restart type and flags. */
static void tree_kids(struct tree *t, size_t n, tr_restart restart, uint32_t flags)
{
    for (size_t i = 0; i < n; i++) {
        t->ks[i] = (struct kid_state){ t->coll, (int32_t)i, initial_value((int)i), flags };
        t->cs[i] = (tr_child_spec){ KID_SPEC(&t->ks[i]), restart, 0 };
    }
}

static void tree_spec(struct tree *t, tr_strategy strategy, size_t n, unsigned max_restarts,
                      uint64_t period_ns)
{
    t->spec = (tr_supervisor_spec){ strategy, max_restarts, period_ns, t->cs, n };
}

static void watch(struct tree *t, tr_pid pid, int id)
{
    struct watch w = { pid, id };
    TT_EQ(tr_send(tr_runtime_ctx(t->rt), t->coll, C_WATCH, &w, sizeof w), 0);
}

static tr_pid kid_pid(struct tree *t, int id)
{
    return atomic_load(&t->lg->kid[id]);
}

static void to_kid(struct tree *t, int id, int type)
{
    TT_EQ(tr_send(tr_runtime_ctx(t->rt), kid_pid(t, id), (uint32_t)type, NULL, 0), 0);
}

static void run_quiet(struct tree *t)
{
    TT_EQ(tr_runtime_run(t->rt), 0);
}

static unsigned mark(struct tree *t)
{
    return atomic_load_explicit(&t->lg->n, memory_order_acquire);
}

/* Events of a kind (and id, unless -1) from index `from` on. */
static unsigned count_ev(struct tree *t, unsigned from, int kind, int id)
{
    unsigned n = mark(t), c = 0;
    for (unsigned i = from; i < n; i++)
        c += t->lg->ev[i].kind == kind && (id < 0 || t->lg->ev[i].id == id);
    return c;
}

/* Index of the first such event from `from` on, or -1. */
static long find_ev(struct tree *t, unsigned from, int kind, int id)
{
    unsigned n = mark(t);
    for (unsigned i = from; i < n; i++)
        if (t->lg->ev[i].kind == kind && (id < 0 || t->lg->ev[i].id == id))
            return (long)i;
    return -1;
}

static const struct event *ev_at(struct tree *t, long i)
{
    static const struct event none = { 0 };
    return i >= 0 ? &t->lg->ev[i] : &none;
}

/* The ids of EV_STOPPED events from `from` on must be exactly want[0..n),
 * in that order, each with the shutdown reason from the supervisor. */
static void check_stopped(struct tree *t, unsigned from, tr_pid sup, const int *want, unsigned n)
{
    unsigned end = mark(t), k = 0;
    for (unsigned i = from; i < end; i++) {
        const struct event *e = &t->lg->ev[i];
        if (e->kind != EV_STOPPED)
            continue;
        if (k < n) {
            if (e->id != want[k])
                printf("\n    stop #%u: kid %d, expected kid %d", k, e->id, want[k]);
            TT_EQ(e->id, want[k]);
            TT_EQ(e->reason, TR_EXIT_SHUTDOWN);
            TT_EQ(e->from, sup);
        }
        k++;
    }
    TT_EQ(k, n);
}

/* Each kid in ids[] reported EV_INIT exactly once from `from` on, with its
 * initial state, from sup. */
static void check_fresh_inits(struct tree *t, unsigned from, tr_pid sup, const int *ids, unsigned n)
{
    for (unsigned k = 0; k < n; k++) {
        TT_EQ(count_ev(t, from, EV_INIT, ids[k]), 1);
        const struct event *e = ev_at(t, find_ev(t, from, EV_INIT, ids[k]));
        TT_EQ(e->value, initial_value(ids[k]));
        TT_EQ(e->from, sup);
    }
}

/* Asks kids 0..n-1 for their state; want[i] is the expected value. */
static void check_states(struct tree *t, unsigned n, const int *want)
{
    unsigned from = mark(t);
    for (unsigned i = 0; i < n; i++)
        to_kid(t, (int)i, K_QUERY);
    run_quiet(t);
    for (unsigned i = 0; i < n; i++) {
        TT_EQ(count_ev(t, from, EV_STATE, (int)i), 1);
        TT_EQ(ev_at(t, find_ev(t, from, EV_STATE, (int)i))->value, want[i]);
    }
}

static uint64_t alive(tr_runtime *rt)
{
    tr_stats s;
    tr_runtime_stats(rt, &s);
    return s.actors_alive;
}

/* Starts a runtime-level supervisor over kids 0..n-1, watched by the
 * collector; runs until they are all up, and bumps their state. */
static tr_pid start_and_bump(struct tree *t, size_t n)
{
    tr_pid sup = TR_PID_NONE;
    TT_EQ(tr_supervisor_start(tr_runtime_ctx(t->rt), &t->spec, &sup), 0);
    watch(t, sup, SUP_ID);
    run_quiet(t);
    int ids[MAX_IDS];
    for (size_t i = 0; i < n; i++)
        ids[i] = (int)i;
    check_fresh_inits(t, 0, sup, ids, (unsigned)n);
    for (size_t i = 0; i < n; i++)
        to_kid(t, (int)i, K_BUMP);
    run_quiet(t);
    return sup;
}

/* Shuts sup down from outside: kids stop in reverse start order (want),
 * then the supervisor ends with the shutdown reason. */
static void shutdown_tree(struct tree *t, tr_pid sup, const int *want, unsigned n)
{
    unsigned from = mark(t);
    TT_EQ(tr_kill(tr_runtime_ctx(t->rt), sup, TR_EXIT_SHUTDOWN), 0);
    run_quiet(t);
    check_stopped(t, from, sup, want, n);
    long down = find_ev(t, from, EV_DOWN, SUP_ID);
    CU_ASSERT(down >= 0);
    TT_EQ(ev_at(t, down)->reason, TR_EXIT_SHUTDOWN);
    if (n > 0)
        CU_ASSERT(down > find_ev(t, from, EV_STOPPED, want[n - 1]));
}

/* ---- strategies ------------------------------------------------------------- */

static void test_one_for_one(void)
{
    struct tree *t = tree_new(4);
    tree_kids(t, 4, TR_PERMANENT, KF_TRAP);
    tree_spec(t, TR_ONE_FOR_ONE, 4, 10, 10 * TR_SEC);
    tr_pid sup = start_and_bump(t, 4);
    tr_pid before[4];
    for (int i = 0; i < 4; i++)
        before[i] = kid_pid(t, i);

    unsigned from = mark(t);
    to_kid(t, 2, K_CRASH);
    run_quiet(t);
    TT_EQ(count_ev(t, from, EV_CRASHING, 2), 1);
    TT_EQ(ev_at(t, find_ev(t, from, EV_CRASHING, 2))->value, initial_value(2) + 100);
    int restarted[] = { 2 };
    check_fresh_inits(t, from, sup, restarted, 1);
    TT_EQ(count_ev(t, from, EV_INIT, -1), 1);    /* only kid 2 */
    TT_EQ(count_ev(t, from, EV_STOPPED, -1), 0); /* nobody else stopped */
    CU_ASSERT(kid_pid(t, 2) != before[2]);
    for (int i = 0; i < 4; i++)
        if (i != 2)
            TT_EQ(kid_pid(t, i), before[i]);
    int want[] = { initial_value(0) + 100, initial_value(1) + 100, initial_value(2),
                   initial_value(3) + 100 };
    check_states(t, 4, want);

    int order[] = { 3, 2, 1, 0 };
    shutdown_tree(t, sup, order, 4);
    TT_EQ(alive(t->rt), 1); /* the collector */
    TT_NO_ERRORS();
    tree_free(t);
}

static void test_one_for_all(void)
{
    struct tree *t = tree_new(4);
    tree_kids(t, 4, TR_PERMANENT, KF_TRAP);
    tree_spec(t, TR_ONE_FOR_ALL, 4, 10, 10 * TR_SEC);
    tr_pid sup = start_and_bump(t, 4);

    unsigned from = mark(t);
    to_kid(t, 1, K_CRASH);
    run_quiet(t);
    TT_EQ(count_ev(t, from, EV_CRASHING, 1), 1);
    int stopped[] = { 3, 2, 0 }; /* the others, in reverse start order */
    check_stopped(t, from, sup, stopped, 3);
    int all[] = { 0, 1, 2, 3 };
    check_fresh_inits(t, from, sup, all, 4);
    TT_EQ(count_ev(t, from, EV_INIT, -1), 4);
    /* Nobody restarted before all had stopped. */
    long last_stop = find_ev(t, from, EV_STOPPED, 0);
    for (int i = 0; i < 4; i++)
        CU_ASSERT(find_ev(t, from, EV_INIT, i) > last_stop);
    int want[] = { initial_value(0), initial_value(1), initial_value(2), initial_value(3) };
    check_states(t, 4, want);

    int order[] = { 3, 2, 1, 0 };
    shutdown_tree(t, sup, order, 4);
    TT_EQ(alive(t->rt), 1);
    TT_NO_ERRORS();
    tree_free(t);
}

static void test_rest_for_one(void)
{
    struct tree *t = tree_new(4);
    tree_kids(t, 5, TR_PERMANENT, KF_TRAP);
    tree_spec(t, TR_REST_FOR_ONE, 5, 10, 10 * TR_SEC);
    tr_pid sup = start_and_bump(t, 5);
    tr_pid before0 = kid_pid(t, 0), before1 = kid_pid(t, 1);

    unsigned from = mark(t);
    to_kid(t, 2, K_CRASH);
    run_quiet(t);
    TT_EQ(count_ev(t, from, EV_CRASHING, 2), 1);
    int stopped[] = { 4, 3 };
    check_stopped(t, from, sup, stopped, 2);
    int rest[] = { 2, 3, 4 };
    check_fresh_inits(t, from, sup, rest, 3);
    TT_EQ(count_ev(t, from, EV_INIT, -1), 3);
    long last_stop = find_ev(t, from, EV_STOPPED, 3);
    for (int i = 2; i < 5; i++)
        CU_ASSERT(find_ev(t, from, EV_INIT, i) > last_stop);
    TT_EQ(kid_pid(t, 0), before0);
    TT_EQ(kid_pid(t, 1), before1);
    int want[] = { initial_value(0) + 100, initial_value(1) + 100, initial_value(2),
                   initial_value(3), initial_value(4) };
    check_states(t, 5, want);

    int order[] = { 4, 3, 2, 1, 0 };
    shutdown_tree(t, sup, order, 5);
    TT_EQ(alive(t->rt), 1);
    TT_NO_ERRORS();
    tree_free(t);
}

/* ---- restart types ------------------------------------------------------------ */

static void test_restart_types(void)
{
    struct tree *t = tree_new(4);
    /* 0, 1 permanent; 2, 3, 4 transient; 5, 6 temporary. */
    tree_kids(t, 7, TR_PERMANENT, KF_TRAP);
    for (int i = 2; i <= 4; i++)
        t->cs[i].restart = TR_TRANSIENT;
    for (int i = 5; i <= 6; i++)
        t->cs[i].restart = TR_TEMPORARY;
    tree_spec(t, TR_ONE_FOR_ONE, 7, 10, 10 * TR_SEC);
    tr_pid sup = start_and_bump(t, 7);

    unsigned from = mark(t);
    to_kid(t, 0, K_QUIT);     /* permanent, normal exit: restarted */
    to_kid(t, 1, K_CRASH);    /* permanent, failure: restarted */
    to_kid(t, 2, K_QUIT);     /* transient, normal: not restarted */
    to_kid(t, 3, K_CRASH);    /* transient, failure: restarted */
    to_kid(t, 4, K_SHUTDOWN); /* transient, shutdown: not restarted */
    to_kid(t, 5, K_CRASH);    /* temporary: never */
    to_kid(t, 6, K_QUIT);
    run_quiet(t);
    int restarted[] = { 0, 1, 3 };
    check_fresh_inits(t, from, sup, restarted, 3);
    TT_EQ(count_ev(t, from, EV_INIT, -1), 3);
    TT_EQ(alive(t->rt), 1 + 1 + 3); /* collector, supervisor, kids 0, 1, 3 */
    int order[] = { 3, 1, 0 };
    shutdown_tree(t, sup, order, 3);
    TT_EQ(alive(t->rt), 1);
    tree_free(t);

    /* One-for-all stops a temporary sibling for good, and restarts a
     * transient one it stopped. */
    t = tree_new(4);
    tree_kids(t, 3, TR_PERMANENT, KF_TRAP);
    t->cs[1].restart = TR_TEMPORARY;
    t->cs[2].restart = TR_TRANSIENT;
    tree_spec(t, TR_ONE_FOR_ALL, 3, 10, 10 * TR_SEC);
    sup = start_and_bump(t, 3);
    from = mark(t);
    to_kid(t, 0, K_CRASH);
    run_quiet(t);
    int stopped[] = { 2, 1 };
    check_stopped(t, from, sup, stopped, 2);
    int back[] = { 0, 2 };
    check_fresh_inits(t, from, sup, back, 2);
    TT_EQ(count_ev(t, from, EV_INIT, 1), 0);
    /* And again: the temporary one stays gone. */
    from = mark(t);
    to_kid(t, 2, K_CRASH);
    run_quiet(t);
    int stopped2[] = { 0 };
    check_stopped(t, from, sup, stopped2, 1);
    check_fresh_inits(t, from, sup, back, 2);
    int order2[] = { 2, 0 };
    shutdown_tree(t, sup, order2, 2);
    TT_EQ(alive(t->rt), 1);
    TT_NO_ERRORS();
    tree_free(t);
}

/* ---- intensity ------------------------------------------------------------------ */

/* Traps exits, starts a supervisor on O_GO and reports the TR_EXIT it gets
 * from it as EV_EXIT. */
struct observer_state {
    tr_pid collector;
    const tr_supervisor_spec *spec;
    _Atomic tr_pid *sup;
};

static void observer(tr_ctx *cx, void *state, const tr_msg *m)
{
    struct observer_state *st = state;
    if (m->type == O_GO) {
        tr_trap_exits(cx, true);
        tr_pid sup = TR_PID_NONE;
        TT_CHECK(tr_supervisor_start(cx, st->spec, &sup) == 0);
        atomic_store(st->sup, sup);
    } else if (m->type == TR_EXIT) {
        const tr_exit_info *e = (const tr_exit_info *)m->data;
        if (e->reason == TR_EXIT_RESTARTS)
            TT_CHECK(strcmp(e->text, "restart intensity") == 0);
        report(cx, st->collector, EV_EXIT, -1, 0, e->reason, e->pid);
    } else {
        TT_CHECK(!"observer: unexpected message");
    }
}

static tr_pid start_observed(struct tree *t, _Atomic tr_pid *sup)
{
    struct observer_state os = { t->coll, &t->spec, sup };
    tr_pid obs;
    TT_EQ(tr_spawn(tr_runtime_ctx(t->rt), observer, &os, sizeof os, &obs), 0);
    TT_EQ(tr_send(tr_runtime_ctx(t->rt), obs, O_GO, NULL, 0), 0);
    run_quiet(t);
    CU_ASSERT(atomic_load(sup) != TR_PID_NONE);
    return obs;
}

static void test_intensity_escalates(void)
{
    struct tree *t = tree_new(4);
    tree_kids(t, 2, TR_PERMANENT, KF_TRAP);
    tree_spec(t, TR_ONE_FOR_ONE, 2, 2, 10 * TR_SEC); /* at most 2 restarts in 10 s */
    _Atomic tr_pid sup = TR_PID_NONE;
    start_observed(t, &sup);
    TT_EQ(count_ev(t, 0, EV_INIT, -1), 2);

    for (int crash = 1; crash <= 3; crash++) {
        unsigned from = mark(t);
        to_kid(t, 0, K_CRASH);
        run_quiet(t);
        TT_EQ(count_ev(t, from, EV_CRASHING, 0), 1);
        TT_EQ(count_ev(t, from, EV_INIT, 0), crash <= 2 ? 1 : 0);
        TT_EQ(count_ev(t, from, EV_EXIT, -1), crash <= 2 ? 0 : 1);
        if (crash == 3) {
            /* The supervisor gave up: it stopped kid 1, then ended with
             * RESTARTS, which its trapping parent received. */
            int stopped[] = { 1 };
            check_stopped(t, from, atomic_load(&sup), stopped, 1);
            const struct event *e = ev_at(t, find_ev(t, from, EV_EXIT, -1));
            TT_EQ(e->reason, TR_EXIT_RESTARTS);
            TT_EQ(e->from, atomic_load(&sup));
            CU_ASSERT(find_ev(t, from, EV_EXIT, -1) > find_ev(t, from, EV_STOPPED, 1));
        }
    }
    TT_EQ(alive(t->rt), 2); /* collector, observer */
    TT_NO_ERRORS();
    tree_free(t);
}

/* The largest intensity there may be: its ring of restart times is made,
 * and each crash is a restart. */
static void test_intensity_at_the_limit(void)
{
    struct tree *t = tree_new(4);
    tree_kids(t, 1, TR_PERMANENT, KF_TRAP);
    tree_spec(t, TR_ONE_FOR_ONE, 1, TR_SUP_MAX_RESTARTS, 10 * TR_SEC);
    _Atomic tr_pid sup = TR_PID_NONE;
    start_observed(t, &sup);
    for (int crash = 1; crash <= 20; crash++) {
        unsigned from = mark(t);
        to_kid(t, 0, K_CRASH);
        run_quiet(t);
        TT_EQ(count_ev(t, from, EV_INIT, 0), 1);
        TT_EQ(count_ev(t, from, EV_EXIT, -1), 0);
    }
    TT_EQ(alive(t->rt), 4); /* collector, observer, supervisor, kid */
    TT_NO_ERRORS();
    tree_free(t);
}

/* Restarts further apart than the period do not add up. */
static void test_intensity_window(void)
{
    struct tree *t = tree_new(4);
    tree_kids(t, 1, TR_PERMANENT, KF_TRAP);
    tree_spec(t, TR_ONE_FOR_ONE, 1, 1, 200 * TR_MSEC); /* 1 restart per 200 ms */
    _Atomic tr_pid sup = TR_PID_NONE;
    start_observed(t, &sup);
    for (int i = 0; i < 3; i++) {
        if (i > 0)
            tt_sleep_ms(250);
        to_kid(t, 0, K_CRASH);
        run_quiet(t);
    }
    TT_EQ(count_ev(t, 0, EV_INIT, 0), 4);
    TT_EQ(count_ev(t, 0, EV_EXIT, -1), 0);
    /* Two crashes in quick succession: the collector crashes the restarted
     * kid as soon as it reports its init. */
    tt_sleep_ms(250);
    t->lg->auto_crash_id = 0;
    t->lg->auto_crash_left = 1;
    unsigned from = mark(t);
    to_kid(t, 0, K_CRASH);
    run_quiet(t);
    TT_EQ(count_ev(t, from, EV_CRASHING, 0), 2);
    TT_EQ(count_ev(t, from, EV_EXIT, -1), 1);
    TT_EQ(ev_at(t, find_ev(t, from, EV_EXIT, -1))->reason, TR_EXIT_RESTARTS);
    TT_NO_ERRORS();
    tree_free(t);
}

/* ---- a supervisor under a supervisor ---------------------------------------------- */

struct wrapper_state {
    tr_pid collector;
    const tr_supervisor_spec *inner;
};

/* A child of the top supervisor that starts the inner one, linked to it:
 * when the inner supervisor gives up, the wrapper ends with its reason,
 * and when the wrapper is stopped, the inner supervisor stops its tree. */
static int wrapper_init(tr_ctx *cx, void *state, tr_pid spawner)
{
    struct wrapper_state *st = state;
    report(cx, st->collector, EV_INIT, WRAPPER_ID, 0, 0, spawner);
    TT_CHECK(tr_supervisor_start(cx, st->inner, NULL) == 0);
    return 0;
}

static void wrapper(tr_ctx *cx, void *state, const tr_msg *m)
{
    (void)cx;
    (void)state;
    (void)m;
    TT_CHECK(!"wrapper: unexpected message");
}

static void test_nested_escalation(void)
{
    struct tree *t = tree_new(4);
    t->lg->monitor_kids = true;
    tree_kids(t, 1, TR_PERMANENT, KF_TRAP);
    tree_spec(t, TR_ONE_FOR_ONE, 1, 1, 10 * TR_SEC); /* the inner: 1 restart */
    struct wrapper_state ws = { t->coll, &t->spec };
    tr_child_spec top_kids[] = { { { .behaviour = wrapper, .state = &ws, .state_size = sizeof ws,
                                     .init = wrapper_init },
                                   TR_PERMANENT, 0 } };
    tr_supervisor_spec top_spec = { TR_ONE_FOR_ONE, 5, 10 * TR_SEC, top_kids, 1 };
    tr_pid top;
    TT_EQ(tr_supervisor_start(tr_runtime_ctx(t->rt), &top_spec, &top), 0);
    watch(t, top, SUP_ID);
    run_quiet(t);
    TT_EQ(count_ev(t, 0, EV_INIT, WRAPPER_ID), 1);
    TT_EQ(count_ev(t, 0, EV_INIT, 0), 1);
    TT_EQ(ev_at(t, find_ev(t, 0, EV_INIT, WRAPPER_ID))->from, top);
    to_kid(t, 0, K_BUMP);
    run_quiet(t);

    unsigned from = mark(t);
    to_kid(t, 0, K_CRASH); /* the inner supervisor restarts it */
    run_quiet(t);
    TT_EQ(count_ev(t, from, EV_INIT, 0), 1);
    TT_EQ(count_ev(t, from, EV_INIT, WRAPPER_ID), 0);

    from = mark(t);
    to_kid(t, 0, K_CRASH); /* one too many: the inner one gives up */
    run_quiet(t);
    long wdown = find_ev(t, from, EV_DOWN, WRAPPER_ID);
    CU_ASSERT(wdown >= 0);
    TT_EQ(ev_at(t, wdown)->reason, TR_EXIT_RESTARTS);
    /* The top supervisor restarted the wrapper, which built a fresh tree. */
    TT_EQ(count_ev(t, from, EV_INIT, WRAPPER_ID), 1);
    TT_EQ(count_ev(t, from, EV_INIT, 0), 1);
    TT_EQ(ev_at(t, find_ev(t, from, EV_INIT, 0))->value, initial_value(0));
    CU_ASSERT(find_ev(t, from, EV_INIT, WRAPPER_ID) > wdown);

    /* Shutting the top down takes the whole tree down. */
    from = mark(t);
    TT_EQ(tr_kill(tr_runtime_ctx(t->rt), top, TR_EXIT_SHUTDOWN), 0);
    run_quiet(t);
    TT_EQ(count_ev(t, from, EV_STOPPED, 0), 1);
    TT_EQ(ev_at(t, find_ev(t, from, EV_STOPPED, 0))->reason, TR_EXIT_SHUTDOWN);
    TT_EQ(ev_at(t, find_ev(t, from, EV_DOWN, WRAPPER_ID))->reason, TR_EXIT_SHUTDOWN);
    TT_EQ(ev_at(t, find_ev(t, from, EV_DOWN, SUP_ID))->reason, TR_EXIT_SHUTDOWN);
    TT_EQ(alive(t->rt), 1);
    TT_NO_ERRORS();
    tree_free(t);
}

/* ---- shutdown order and timeouts ---------------------------------------------- */

static void test_shutdown_order_and_timeout(void)
{
    struct tree *t = tree_new(4);
    t->lg->monitor_kids = true;
    tree_kids(t, 4, TR_PERMANENT, KF_TRAP);
    t->ks[1].flags = KF_TRAP | KF_IGNORE;  /* ignores the signal ... */
    t->cs[1].shutdown_ns = 150 * TR_MSEC;  /* ... and is killed after 150 ms */
    t->ks[2].flags = 0;                    /* does not trap: ends at once */
    tree_spec(t, TR_ONE_FOR_ONE, 4, 10, 10 * TR_SEC);
    tr_pid sup = start_and_bump(t, 4);

    unsigned from = mark(t);
    double t0 = tt_now();
    TT_EQ(tr_kill(tr_runtime_ctx(t->rt), sup, TR_EXIT_SHUTDOWN), 0);
    run_quiet(t);
    double took = tt_now() - t0;
    printf("[shutdown took %.0f ms] ", took * 1e3);
    CU_ASSERT(took >= 0.150);
    CU_ASSERT(took < 3.0); /* not the 5 s default of the others */

    int stopped[] = { 3, 1, 0 }; /* kid 2 does not trap: no report */
    check_stopped(t, from, sup, stopped, 3);
    long down[4];
    for (int i = 0; i < 4; i++) {
        down[i] = find_ev(t, from, EV_DOWN, i);
        CU_ASSERT(down[i] >= 0);
    }
    CU_ASSERT(find_ev(t, from, EV_STOPPED, 3) < down[2]); /* 3 went before 2 */
    CU_ASSERT(down[2] < find_ev(t, from, EV_STOPPED, 0)); /* 2 went before 0 */
    TT_EQ(ev_at(t, down[0])->reason, TR_EXIT_SHUTDOWN);
    TT_EQ(ev_at(t, down[1])->reason, TR_EXIT_KILLED);
    TT_EQ(ev_at(t, down[2])->reason, TR_EXIT_SHUTDOWN);
    TT_EQ(ev_at(t, down[3])->reason, TR_EXIT_SHUTDOWN);
    long sdown = find_ev(t, from, EV_DOWN, SUP_ID);
    CU_ASSERT(sdown > find_ev(t, from, EV_STOPPED, 0));
    TT_EQ(ev_at(t, sdown)->reason, TR_EXIT_SHUTDOWN);
    TT_EQ(alive(t->rt), 1);
    TT_NO_ERRORS();
    tree_free(t);
}

/* ---- a kid failing while the supervisor is stopping others ----------------------
 *
 * Kid 2 crashes; while the supervisor waits for kid 4 (which ignores the
 * shutdown signal for 200 ms), kid 0 crashes too. Kid 0 is permanent: it
 * must come back, whatever the strategy. */

static void crash_during_restart(tr_strategy strategy)
{
    struct tree *t = tree_new(4);
    tree_kids(t, 5, TR_PERMANENT, KF_TRAP);
    t->ks[4].flags = KF_TRAP | KF_IGNORE;
    t->cs[4].shutdown_ns = 200 * TR_MSEC;
    tree_spec(t, strategy, 5, 10, 10 * TR_SEC);
    tr_pid sup = start_and_bump(t, 5);
    (void)sup;
    t->lg->trigger_stopped = 4;
    t->lg->trigger_crash = 0;
    unsigned from = mark(t);
    to_kid(t, 2, K_CRASH);
    run_quiet(t);
    TT_EQ(count_ev(t, from, EV_CRASHING, 2), 1);
    TT_EQ(count_ev(t, from, EV_CRASHING, 0), 1);
    TT_EQ(count_ev(t, from, EV_INIT, 2), 1);
    TT_EQ(count_ev(t, from, EV_INIT, 0), 1); /* kid 0 came back */
    /* Every kid answers. */
    from = mark(t);
    for (int i = 0; i < 5; i++)
        to_kid(t, i, K_QUERY);
    run_quiet(t);
    TT_EQ(count_ev(t, from, EV_STATE, -1), 5);
    TT_EQ(alive(t->rt), 1 + 1 + 5);
    TT_NO_ERRORS();
    tree_free(t);
}

static void test_crash_during_restart_one_for_all(void)
{
    crash_during_restart(TR_ONE_FOR_ALL);
}

static void test_crash_during_restart_rest_for_one(void)
{
    crash_during_restart(TR_REST_FOR_ONE);
}

/* ---- a restart or a stop cut short ---------------------------------------------
 *
 * A kid that ignores the shutdown signal (grace 60 s: never reached) holds
 * a stop sequence open while something else happens; the collector then
 * tells it to quit, only once what happened has reached the supervisor's
 * mailbox (an actor's exit goes to its links before its monitors hear of
 * it, so K_QUIT sent on the EV_DOWN comes after it). So each case below
 * runs the same way every time, with no timer firing. */

#define LONG_GRACE (60 * TR_SEC)

/* A tree of n permanent kids that trap exits, watched (EV_DOWN for each),
 * in which kid `holder` ignores the shutdown signal for `grace`. */
static struct tree *tree_with_holder(size_t n, int holder, uint64_t grace)
{
    struct tree *t = tree_new(4);
    t->lg->monitor_kids = true;
    tree_kids(t, n, TR_PERMANENT, KF_TRAP);
    t->ks[holder].flags = KF_TRAP | KF_IGNORE;
    t->cs[holder].shutdown_ns = grace;
    return t;
}

static long down_of(struct tree *t, unsigned from, int id, int reason)
{
    long i = find_ev(t, from, EV_DOWN, id);
    CU_ASSERT(i >= 0);
    TT_EQ(ev_at(t, i)->reason, reason);
    return i;
}

/* Rest-for-one, one restart a minute: kid 2 crashes (restart 1), and
 * while kid 4 holds the stop of 3 and 4 open, kid 0 — before the restart
 * set — crashes too: a second restart, past the intensity. The supervisor
 * gives up at once: nobody restarts, the running kids (4, 3, 1) stop in
 * reverse start order, and it ends with TR_EXIT_RESTARTS. */
static void test_widen_restart_past_intensity(void)
{
    struct tree *t = tree_with_holder(5, 4, LONG_GRACE);
    tree_spec(t, TR_REST_FOR_ONE, 5, 1, 60 * TR_SEC);
    _Atomic tr_pid sup = TR_PID_NONE;
    start_observed(t, &sup);
    TT_EQ(count_ev(t, 0, EV_INIT, -1), 5);
    t->lg->trigger_stopped = 4;
    t->lg->trigger_crash = 0;
    t->lg->down_id = 0;
    t->lg->down_quit = 4;
    unsigned from = mark(t);
    to_kid(t, 2, K_CRASH);
    run_quiet(t);
    TT_EQ(count_ev(t, from, EV_CRASHING, 2), 1);
    TT_EQ(count_ev(t, from, EV_CRASHING, 0), 1);
    TT_EQ(count_ev(t, from, EV_INIT, -1), 0); /* nobody restarted */
    down_of(t, from, 2, KID_CRASH);
    down_of(t, from, 0, KID_CRASH);
    long d4 = down_of(t, from, 4, TR_EXIT_NORMAL); /* its K_QUIT */
    long d3 = down_of(t, from, 3, TR_EXIT_SHUTDOWN);
    long d1 = down_of(t, from, 1, TR_EXIT_SHUTDOWN);
    CU_ASSERT(d4 < d3 && d3 < d1);
    TT_EQ(count_ev(t, from, EV_STOPPED, 4), 1); /* one signal, though the sequence changed */
    TT_EQ(count_ev(t, from, EV_STOPPED, 3), 1);
    TT_EQ(count_ev(t, from, EV_STOPPED, 1), 1);
    for (unsigned i = from; i < mark(t); i++) {
        if (t->lg->ev[i].kind == EV_STOPPED) {
            TT_EQ(t->lg->ev[i].reason, TR_EXIT_SHUTDOWN);
            TT_EQ(t->lg->ev[i].from, atomic_load(&sup));
        }
    }
    TT_EQ(count_ev(t, from, EV_EXIT, -1), 1);
    long exit = find_ev(t, from, EV_EXIT, -1);
    TT_EQ(ev_at(t, exit)->reason, TR_EXIT_RESTARTS);
    TT_EQ(ev_at(t, exit)->from, atomic_load(&sup));
    CU_ASSERT(exit > d1);
    TT_EQ(alive(t->rt), 2); /* collector, observer */
    TT_NO_ERRORS();
    tree_free(t);
}

/* One-for-all: kid 1 crashes; while kid 2 holds the stop open, the
 * supervisor is told to shut down. The restart is dropped: it stops what
 * still runs (kid 2, then kid 0) and ends with TR_EXIT_SHUTDOWN; nobody
 * starts again, kid 1 included. Kid 2, whose stop was under way, is not
 * signalled again. It either quits when told to, behind the shutdown, or
 * (`killed`) never quits, and is killed when its grace (150 ms) runs out:
 * one shutdown signal and one grace, then the kill (a second signal would
 * be ahead of the kill in its mailbox: both come from the supervisor). */
static void shutdown_during_restart(bool killed)
{
    struct tree *t = tree_with_holder(3, 2, killed ? 150 * TR_MSEC : LONG_GRACE);
    tree_spec(t, TR_ONE_FOR_ALL, 3, 10, 60 * TR_SEC);
    tr_pid sup = start_and_bump(t, 3);
    t->lg->trigger_stopped = 2;
    t->lg->trigger_kill = sup; /* then K_QUIT to kid 2, behind the kill */
    t->lg->trigger_quit = killed ? -1 : 2;
    unsigned from = mark(t);
    to_kid(t, 1, K_CRASH);
    run_quiet(t);
    TT_EQ(count_ev(t, from, EV_CRASHING, 1), 1);
    TT_EQ(count_ev(t, from, EV_INIT, -1), 0);
    down_of(t, from, 1, KID_CRASH);
    long d2 = down_of(t, from, 2, killed ? TR_EXIT_KILLED : TR_EXIT_NORMAL);
    long d0 = down_of(t, from, 0, TR_EXIT_SHUTDOWN);
    long ds = down_of(t, from, SUP_ID, TR_EXIT_SHUTDOWN);
    CU_ASSERT(d2 < d0 && d0 < ds);
    TT_EQ(count_ev(t, from, EV_STOPPED, 0), 1);
    TT_EQ(ev_at(t, find_ev(t, from, EV_STOPPED, 0))->from, sup);
    TT_EQ(count_ev(t, from, EV_STOPPED, 2), 1);
    TT_EQ(ev_at(t, find_ev(t, from, EV_STOPPED, 2))->reason, TR_EXIT_SHUTDOWN);
    TT_EQ(alive(t->rt), 1);
    TT_NO_ERRORS();
    tree_free(t);
}

static void test_shutdown_during_restart(void)
{
    shutdown_during_restart(false);
}

static void test_shutdown_during_restart_signals_once(void)
{
    shutdown_during_restart(true);
}

/* A parent that starts the supervisor in its init (linked to it), and is
 * otherwise a kid that does not trap exits. */
#define PARENT_ID 20

struct parent_state {
    struct kid_state ks; /* first: the kid behaviour takes its messages */
    const tr_supervisor_spec *spec;
    _Atomic tr_pid *sup;
};

static int parent_init(tr_ctx *cx, void *state, tr_pid spawner)
{
    struct parent_state *st = state;
    report(cx, st->ks.collector, EV_INIT, st->ks.id, 0, 0, spawner);
    tr_pid sup = TR_PID_NONE;
    TT_CHECK(tr_supervisor_start(cx, st->spec, &sup) == 0);
    atomic_store(st->sup, sup);
    return 0;
}

/* The supervisor is shutting down (kid 1 holds the stop open) when its
 * parent crashes. The parent's exit changes nothing: the sequence is not
 * started again (kid 1 gets one shutdown signal), and the supervisor ends
 * with TR_EXIT_SHUTDOWN, not the parent's reason. */
static void test_parent_exit_while_ending(void)
{
    struct tree *t = tree_with_holder(2, 1, LONG_GRACE);
    tree_spec(t, TR_ONE_FOR_ONE, 2, 10, 60 * TR_SEC);
    _Atomic tr_pid sup_at = TR_PID_NONE;
    struct parent_state ps = { { t->coll, PARENT_ID, 0, 0 }, &t->spec, &sup_at };
    tr_actor_spec pspec = { .behaviour = kid, .state = &ps, .state_size = sizeof ps,
                            .init = parent_init };
    tr_pid parent = TR_PID_NONE;
    TT_EQ(tr_spawn_spec(tr_runtime_ctx(t->rt), &pspec, &parent), 0);
    run_quiet(t);
    tr_pid sup = atomic_load(&sup_at);
    CU_ASSERT_FATAL(sup != TR_PID_NONE);
    watch(t, sup, SUP_ID);
    run_quiet(t);
    TT_EQ(count_ev(t, 0, EV_INIT, PARENT_ID), 1);
    TT_EQ(count_ev(t, 0, EV_INIT, -1), 3);
    t->lg->trigger_stopped = 1;
    t->lg->trigger_crash = PARENT_ID;
    t->lg->down_id = PARENT_ID;
    t->lg->down_quit = 1;
    unsigned from = mark(t);
    TT_EQ(tr_kill(tr_runtime_ctx(t->rt), sup, TR_EXIT_SHUTDOWN), 0);
    run_quiet(t);
    TT_EQ(count_ev(t, from, EV_CRASHING, PARENT_ID), 1);
    long dp = down_of(t, from, PARENT_ID, KID_CRASH);
    TT_EQ(count_ev(t, from, EV_STOPPED, 1), 1);
    TT_EQ(count_ev(t, from, EV_STOPPED, 0), 1);
    long d1 = down_of(t, from, 1, TR_EXIT_NORMAL); /* its K_QUIT */
    long d0 = down_of(t, from, 0, TR_EXIT_SHUTDOWN);
    long ds = down_of(t, from, SUP_ID, TR_EXIT_SHUTDOWN);
    CU_ASSERT(dp < d1 && d1 < d0 && d0 < ds);
    TT_EQ(count_ev(t, from, EV_INIT, -1), 0);
    TT_EQ(alive(t->rt), 1);
    TT_NO_ERRORS();
    tree_free(t);
}

/* A restart whose spawn fails ends the supervisor with TR_EXIT_RESTARTS
 * (supervisor.h: "the name held by another actor"). Kid 1 is named and
 * crashes; while kid 2 holds the stop open, the collector takes kid 1's
 * name (freed before the supervisor heard of the end). Kid 1 cannot come
 * back: the supervisor stops what it had started again and ends; the name
 * stays the collector's. */
static void restart_spawn_fails(tr_strategy strategy)
{
    struct tree *t = tree_with_holder(3, 2, LONG_GRACE);
    t->cs[1].actor.name = "sup-kid-1";
    tree_spec(t, strategy, 3, 10, 60 * TR_SEC);
    _Atomic tr_pid sup = TR_PID_NONE;
    start_observed(t, &sup);
    TT_EQ(count_ev(t, 0, EV_INIT, -1), 3);
    TT_EQ(tr_whereis(t->rt, "sup-kid-1"), kid_pid(t, 1));
    t->lg->trigger_stopped = 2;
    t->lg->trigger_name = "sup-kid-1"; /* then K_QUIT to kid 2 */
    t->lg->trigger_quit = 2;
    unsigned from = mark(t);
    to_kid(t, 1, K_CRASH);
    run_quiet(t);
    TT_EQ(tr_whereis(t->rt, "sup-kid-1"), t->coll);
    TT_EQ(count_ev(t, from, EV_INIT, 1), 0);
    TT_EQ(count_ev(t, from, EV_INIT, 2), 0);
    down_of(t, from, 1, KID_CRASH);
    down_of(t, from, 2, TR_EXIT_NORMAL);
    if (strategy == TR_ONE_FOR_ALL) {
        /* Kid 0 stopped, started again before kid 1 failed, stopped again. */
        TT_EQ(count_ev(t, from, EV_INIT, 0), 1);
        TT_EQ(count_ev(t, from, EV_STOPPED, 0), 2);
    } else {
        /* Kid 0 was not in the restart set: stopped once, as the end. */
        TT_EQ(count_ev(t, from, EV_INIT, 0), 0);
        TT_EQ(count_ev(t, from, EV_STOPPED, 0), 1);
    }
    long d0 = find_ev(t, from, EV_DOWN, 0);
    CU_ASSERT(d0 >= 0);
    TT_EQ(count_ev(t, from, EV_EXIT, -1), 1);
    long exit = find_ev(t, from, EV_EXIT, -1);
    TT_EQ(ev_at(t, exit)->reason, TR_EXIT_RESTARTS);
    TT_EQ(ev_at(t, exit)->from, atomic_load(&sup));
    TT_EQ(alive(t->rt), 2); /* collector, observer */
    TT_NO_ERRORS();
    tree_free(t);
}

static void test_restart_spawn_fails_one_for_all(void)
{
    restart_spawn_fails(TR_ONE_FOR_ALL);
}

static void test_restart_spawn_fails_rest_for_one(void)
{
    restart_spawn_fails(TR_REST_FOR_ONE);
}

/* An init that fails at a restart is a failure like any other (the spawn
 * itself succeeded): one-for-all restarts everyone again, until the
 * intensity (2) is passed, then stops the others and ends with
 * TR_EXIT_RESTARTS. */
static void test_init_fails_at_restart(void)
{
    struct tree *t = tree_new(4);
    t->lg->monitor_kids = true;
    tree_kids(t, 3, TR_PERMANENT, KF_TRAP);
    t->ks[1].flags = KF_TRAP | KF_FAIL_AGAIN;
    tree_spec(t, TR_ONE_FOR_ALL, 3, 2, 60 * TR_SEC);
    _Atomic tr_pid sup = TR_PID_NONE;
    start_observed(t, &sup);
    TT_EQ(count_ev(t, 0, EV_INIT, -1), 3);
    unsigned from = mark(t);
    to_kid(t, 1, K_CRASH);
    run_quiet(t);
    /* The crash, then two failed inits: restarts 1 and 2, then the end. */
    for (int id = 0; id < 3; id++)
        TT_EQ(count_ev(t, from, EV_INIT, id), 2);
    unsigned failed = 0, downs = 0;
    for (unsigned i = from; i < mark(t); i++) {
        const struct event *e = &t->lg->ev[i];
        if (e->kind == EV_INIT) {
            TT_EQ(e->reason, e->id == 1 ? KID_INIT_FAIL : 0);
            TT_EQ(e->from, atomic_load(&sup));
            failed += e->reason != 0;
        }
        if (e->kind == EV_DOWN && e->id == 1)
            downs++;
    }
    TT_EQ(failed, 2);
    TT_EQ(downs, 3); /* the crash and the two failed inits */
    TT_EQ(count_ev(t, from, EV_STOPPED, 0), 3);
    TT_EQ(count_ev(t, from, EV_STOPPED, 2), 3);
    TT_EQ(count_ev(t, from, EV_EXIT, -1), 1);
    TT_EQ(ev_at(t, find_ev(t, from, EV_EXIT, -1))->reason, TR_EXIT_RESTARTS);
    TT_EQ(alive(t->rt), 2);
    TT_NO_ERRORS();
    tree_free(t);
}

/* Messages of types a supervisor does not know (user types, any payload)
 * are dropped without effect: no kid stops or starts, a crash afterwards
 * restarts as before, and shutdown goes as ever. */
static void test_unknown_messages_ignored(void)
{
    struct tree *t = tree_new(4);
    tree_kids(t, 3, TR_PERMANENT, KF_TRAP);
    tree_spec(t, TR_ONE_FOR_ONE, 3, 10, 60 * TR_SEC);
    tr_pid sup = start_and_bump(t, 3);
    tr_pid before[3];
    for (int i = 0; i < 3; i++)
        before[i] = kid_pid(t, i);
    static unsigned char big[4096];
    const uint32_t types[] = { 0, 1, K_CRASH, 0x7001, TR_MSG_SYSTEM - 1 };
    const size_t lens[] = { 0, 1, sizeof(tr_exit_info), sizeof big };
    unsigned from = mark(t);
    uint64_t dead = tt_dead_letters(t->rt);
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++)
        for (size_t j = 0; j < sizeof lens / sizeof lens[0]; j++)
            TT_EQ(tr_send(tr_runtime_ctx(t->rt), sup, types[i], big, lens[j]), 0);
    run_quiet(t);
    TT_EQ(mark(t), from); /* nothing happened */
    TT_EQ(tt_dead_letters(t->rt), dead);
    TT_EQ(alive(t->rt), 1 + 1 + 3);
    for (int i = 0; i < 3; i++)
        TT_EQ(kid_pid(t, i), before[i]);

    to_kid(t, 1, K_CRASH);
    run_quiet(t);
    int restarted[] = { 1 };
    check_fresh_inits(t, from, sup, restarted, 1);
    TT_EQ(count_ev(t, from, EV_INIT, -1), 1);
    int want[] = { initial_value(0) + 100, initial_value(1), initial_value(2) + 100 };
    check_states(t, 3, want);
    int order[] = { 2, 1, 0 };
    shutdown_tree(t, sup, order, 3);
    TT_EQ(alive(t->rt), 1);
    TT_NO_ERRORS();
    tree_free(t);
}

/* ---- bad specs ------------------------------------------------------------------ */

static void test_bad_specs(void)
{
    tr_runtime *rt = tt_runtime(2, 0);
    struct kid_state ks = { TR_PID_NONE, 0, 0, 0 };
    tr_child_spec good = { KID_SPEC(&ks), TR_PERMANENT, 0 };
    tr_child_spec no_fn = { KID_SPEC(&ks), TR_PERMANENT, 0 };
    no_fn.actor.behaviour = NULL;
    tr_child_spec no_state = { KID_SPEC(&ks), TR_PERMANENT, 0 };
    no_state.actor.state = NULL;
    tr_child_spec bad_restart = { KID_SPEC(&ks), (tr_restart)7, 0 };
    tr_supervisor_spec spec = { TR_ONE_FOR_ONE, 0, 0, &good, 1 };
    tr_pid sup = TR_PID_NONE;
    TT_EQ(tr_supervisor_start(tr_runtime_ctx(NULL), &spec, &sup), TR_EINVAL);
    TT_EQ(tr_supervisor_start(tr_runtime_ctx(rt), NULL, &sup), TR_EINVAL);
    TT_EQ(tr_supervisor_start(NULL, &spec, &sup), TR_EINVAL);
    spec.strategy = (tr_strategy)9;
    TT_EQ(tr_supervisor_start(tr_runtime_ctx(rt), &spec, &sup), TR_EINVAL);
    spec.strategy = TR_ONE_FOR_ONE;
    spec.children = NULL;
    TT_EQ(tr_supervisor_start(tr_runtime_ctx(rt), &spec, &sup), TR_EINVAL);
    spec.children = &no_fn;
    TT_EQ(tr_supervisor_start(tr_runtime_ctx(rt), &spec, &sup), TR_EINVAL);
    spec.children = &no_state;
    TT_EQ(tr_supervisor_start(tr_runtime_ctx(rt), &spec, &sup), TR_EINVAL);
    spec.children = &bad_restart;
    TT_EQ(tr_supervisor_start(tr_runtime_ctx(rt), &spec, &sup), TR_EINVAL);
    /* "unlimited" as UINT_MAX: refused, not a ring of 0 stamps (UINT_MAX + 1
     * wrapped) written past and divided by at the first restart */
    spec.children = &good;
    spec.max_restarts = UINT_MAX;
    TT_EQ(tr_supervisor_start(tr_runtime_ctx(rt), &spec, &sup), TR_EINVAL);
    spec.max_restarts = TR_SUP_MAX_RESTARTS + 1;
    TT_EQ(tr_supervisor_start(tr_runtime_ctx(rt), &spec, &sup), TR_EINVAL);
    spec.max_restarts = 0;
    TT_EQ(alive(rt), 0);
    /* An empty supervisor is fine, and shuts down at once. */
    spec.children = NULL;
    spec.nchildren = 0;
    TT_EQ(tr_supervisor_start(tr_runtime_ctx(rt), &spec, &sup), 0);
    TT_EQ(tr_runtime_run(rt), 0);
    TT_EQ(alive(rt), 1);
    TT_EQ(tr_kill(tr_runtime_ctx(rt), sup, TR_EXIT_SHUTDOWN), 0);
    TT_EQ(tr_runtime_run(rt), 0);
    TT_EQ(alive(rt), 0);
    tr_runtime_destroy(rt);
}

void register_supervisor_tests(void)
{
    CU_pSuite s = tt_suite("supervisor");
    tt_test(s, "one_for_one_restarts_only_the_crashed_child", test_one_for_one);
    tt_test(s, "one_for_all_stops_all_then_restarts_all", test_one_for_all);
    tt_test(s, "rest_for_one_restarts_the_crashed_and_later_ones", test_rest_for_one);
    tt_test(s, "permanent_transient_temporary_restarted_as_specified", test_restart_types);
    tt_test(s, "intensity_escalates_to_parent", test_intensity_escalates);
    tt_test(s, "intensity_window_slides", test_intensity_window);
    tt_test(s, "intensity_at_the_limit", test_intensity_at_the_limit);
    tt_test(s, "nested_supervisor_escalation", test_nested_escalation);
    tt_test(s, "shutdown_order_and_timeout", test_shutdown_order_and_timeout);
    tt_test(s, "crash_during_restart_one_for_all", test_crash_during_restart_one_for_all);
    tt_test(s, "crash_during_restart_rest_for_one", test_crash_during_restart_rest_for_one);
    tt_test(s, "widen_restart_past_intensity_gives_up", test_widen_restart_past_intensity);
    tt_test(s, "shutdown_during_restart_drops_the_restart", test_shutdown_during_restart);
    tt_test(s, "shutdown_during_restart_signals_the_stopping_child_once",
            test_shutdown_during_restart_signals_once);
    tt_test(s, "parent_exit_while_ending_changes_nothing", test_parent_exit_while_ending);
    tt_test(s, "restart_spawn_fails_one_for_all_ends_with_restarts",
            test_restart_spawn_fails_one_for_all);
    tt_test(s, "restart_spawn_fails_rest_for_one_ends_with_restarts",
            test_restart_spawn_fails_rest_for_one);
    tt_test(s, "init_failing_at_restart_counts_toward_intensity", test_init_fails_at_restart);
    tt_test(s, "unknown_messages_are_ignored", test_unknown_messages_ignored);
    tt_test(s, "bad_specs_are_einval_empty_supervisor_is_fine", test_bad_specs);
}
