/* test_names.c — named actors: tr_register, tr_unregister, tr_whereis.
 *
 * Eight threads register, look up and unregister names at once (their own
 * names, and a few contended ones); names are released when their actor
 * ends — before its links and monitors hear of the end, so that a
 * restarted actor can take its name again at once; many distinct names
 * over time do not fill the registry; bad names are refused. */
#include "tests.h"

#include <stdlib.h>
#include <string.h>

enum { N_STOP = 1, N_FAIL, N_LINK, N_MONITOR };

static void idle_actor(tr_ctx *cx, void *state, const tr_msg *m)
{
    (void)state;
    if (m->type == N_STOP)
        tr_stop(cx);
    else if (m->type == N_FAIL)
        tr_exit(cx, 3, "named");
}

/* ---- 8 threads at once ---------------------------------------------------------- */

#define NT_THREADS 8
#define NT_ACTORS 64     /* per thread */
#define NT_ROUNDS 5000
#define NT_CONTENDED 4   /* names every thread tries to take */

struct names {
    tr_runtime *rt;
    tr_pid pids[NT_THREADS][NT_ACTORS];
    atomic_uint wrong;       /* whereis gave a pid it should not have */
    atomic_uint contended_wins[NT_CONTENDED];
    atomic_uint eexist;
};

struct nt_arg {
    struct names *nm;
    int t;
};

static void own_name(char *buf, size_t len, int t, int k)
{
    snprintf(buf, len, "thread-%d/actor-%d", t, k);
}

static void *nt_main(void *p)
{
    struct nt_arg *a = p;
    struct names *nm = a->nm;
    tr_runtime *rt = nm->rt;
    char name[TR_NAME_MAX], other[TR_NAME_MAX], cname[TR_NAME_MAX];
    unsigned seed = (unsigned)a->t * 7919u + 1;
    for (int round = 0; round < NT_ROUNDS; round++) {
        int k = round % NT_ACTORS;
        tr_pid mine = nm->pids[a->t][k];
        own_name(name, sizeof name, a->t, k);

        TT_CHECK(tr_whereis(rt, name) == TR_PID_NONE);
        TT_CHECK(tr_register(rt, name, mine) == 0);
        TT_CHECK(tr_whereis(rt, name) == mine);
        /* The name is taken; the actor has a name. */
        TT_CHECK(tr_register(rt, name, nm->pids[a->t][(k + 1) % NT_ACTORS]) == TR_EEXIST);
        own_name(other, sizeof other, a->t, k + NT_ACTORS);
        TT_CHECK(tr_register(rt, other, mine) == TR_EEXIST);
        TT_CHECK(tr_whereis(rt, other) == TR_PID_NONE);

        /* Another thread's name: absent, or its right pid. */
        seed = seed * 1103515245u + 12345u;
        int ot = (int)((seed >> 16) % NT_THREADS), ok = (int)((seed >> 8) % NT_ACTORS);
        own_name(other, sizeof other, ot, ok);
        tr_pid got = tr_whereis(rt, other);
        if (got != TR_PID_NONE && got != nm->pids[ot][ok])
            atomic_fetch_add(&nm->wrong, 1);

        /* A contended name: at most one holder at a time. */
        int c = round % NT_CONTENDED;
        snprintf(cname, sizeof cname, "contended-%d", c);
        tr_pid holder = tr_whereis(rt, cname);
        if (holder != TR_PID_NONE) {
            bool known = false;
            for (int t = 0; t < NT_THREADS && !known; t++)
                for (int j = 0; j < NT_ACTORS && !known; j++)
                    known = nm->pids[t][j] == holder;
            if (!known)
                atomic_fetch_add(&nm->wrong, 1);
        }
        /* Our own actor k already has a name: use k + 1 for this one. */
        tr_pid cand = nm->pids[a->t][(k + NT_ACTORS / 2) % NT_ACTORS];
        int rc = tr_register(rt, cname, cand);
        TT_CHECK(rc == 0 || rc == TR_EEXIST);
        if (rc == 0) {
            atomic_fetch_add(&nm->contended_wins[c], 1);
            for (int i = 0; i < 16; i++) /* hold it a little */
                TT_CHECK(tr_whereis(rt, cname) == cand);
            TT_CHECK(tr_unregister(rt, cname) == 0);
        } else {
            atomic_fetch_add(&nm->eexist, 1);
        }

        TT_CHECK(tr_unregister(rt, name) == 0);
        TT_CHECK(tr_whereis(rt, name) == TR_PID_NONE);
        TT_CHECK(tr_unregister(rt, name) == TR_EINVAL);
    }
    return NULL;
}

static void test_concurrent_8_threads(void)
{
    struct names *nm = calloc(1, sizeof *nm);
    CU_ASSERT_FATAL(nm != NULL);
    nm->rt = tt_runtime(2, 0);
    for (int t = 0; t < NT_THREADS; t++)
        for (int k = 0; k < NT_ACTORS; k++)
            TT_EQ(tr_runtime_spawn(nm->rt, idle_actor, NULL, 0, &nm->pids[t][k]), 0);
    /* The runtime runs meanwhile (nothing to do but be held open). */
    TT_EQ(tr_runtime_hold(nm->rt), 0);
    TT_EQ(tr_runtime_start(nm->rt), 0);
    struct nt_arg args[NT_THREADS];
    pthread_t th[NT_THREADS];
    for (int t = 0; t < NT_THREADS; t++) {
        args[t] = (struct nt_arg){ nm, t };
        th[t] = tt_thread(nt_main, &args[t]);
    }
    for (int t = 0; t < NT_THREADS; t++)
        tt_join(th[t]);
    TT_EQ(tr_runtime_release(nm->rt), 0);
    TT_EQ(tr_runtime_join(nm->rt), 0);
    TT_EQ(atomic_load(&nm->wrong), 0);
    unsigned wins = 0;
    for (int c = 0; c < NT_CONTENDED; c++) {
        CU_ASSERT(atomic_load(&nm->contended_wins[c]) > 0);
        wins += atomic_load(&nm->contended_wins[c]);
    }
    printf("[contended: %u won, %u EEXIST] ", wins, atomic_load(&nm->eexist));
    TT_EQ(wins + atomic_load(&nm->eexist), NT_THREADS * NT_ROUNDS);
    /* Everything was unregistered. */
    char name[TR_NAME_MAX];
    for (int t = 0; t < NT_THREADS; t++) {
        for (int k = 0; k < NT_ACTORS; k++) {
            own_name(name, sizeof name, t, k);
            TT_EQ(tr_whereis(nm->rt, name), TR_PID_NONE);
        }
    }
    TT_NO_ERRORS();
    tr_runtime_destroy(nm->rt);
    free(nm);
}

/* ---- names are released when their actor ends ------------------------------------ */

#define REL_ACTORS 1000

static void test_released_on_exit(void)
{
    tr_runtime *rt = tt_runtime(4, 0);
    tr_pid a, b;
    TT_EQ(tr_runtime_spawn(rt, idle_actor, NULL, 0, &a), 0);
    TT_EQ(tr_runtime_spawn(rt, idle_actor, NULL, 0, &b), 0);
    TT_EQ(tr_register(rt, "service", a), 0);
    TT_EQ(tr_whereis(rt, "service"), a);
    TT_EQ(tr_register(rt, "service", b), TR_EEXIST);
    TT_EQ(tr_runtime_send(rt, a, N_STOP, NULL, 0), 0);
    TT_EQ(tr_runtime_run(rt), 0);
    TT_EQ(tr_whereis(rt, "service"), TR_PID_NONE);
    TT_EQ(tr_register(rt, "service", a), TR_ENOPID); /* a dead pid */
    TT_EQ(tr_register(rt, "service", b), 0);
    TT_EQ(tr_whereis(rt, "service"), b);
    TT_EQ(tr_unregister(rt, "service"), TR_OK);
    /* b may take another name now. */
    TT_EQ(tr_register(rt, "service-2", b), 0);

    /* Many named actors ending at once, some failing. */
    tr_pid *pids = calloc(REL_ACTORS, sizeof *pids);
    CU_ASSERT_FATAL(pids != NULL);
    char name[TR_NAME_MAX];
    for (int i = 0; i < REL_ACTORS; i++) {
        TT_EQ(tr_runtime_spawn(rt, idle_actor, NULL, 0, &pids[i]), 0);
        snprintf(name, sizeof name, "worker-%d", i);
        TT_EQ(tr_register(rt, name, pids[i]), 0);
    }
    for (int i = 0; i < REL_ACTORS; i++)
        TT_EQ(tr_runtime_send(rt, pids[i], i % 2 ? N_STOP : N_FAIL, NULL, 0), 0);
    TT_EQ(tr_runtime_run(rt), 0);
    for (int i = 0; i < REL_ACTORS; i++) {
        snprintf(name, sizeof name, "worker-%d", i);
        TT_EQ(tr_whereis(rt, name), TR_PID_NONE);
    }
    /* ... and the names can be taken again. */
    for (int i = 0; i < REL_ACTORS; i++) {
        TT_EQ(tr_runtime_spawn(rt, idle_actor, NULL, 0, &pids[i]), 0);
        snprintf(name, sizeof name, "worker-%d", i);
        TT_EQ(tr_register(rt, name, pids[i]), 0);
        TT_EQ(tr_whereis(rt, name), pids[i]);
    }
    free(pids);
    tr_runtime_destroy(rt);
}

/* ---- the name is free by the time links and monitors hear of the end ------------
 *
 * The Erlang pattern: a supervisor (or any trapping or monitoring actor)
 * restarts a registered actor as soon as it hears it ended, and the new one
 * registers the same name. That needs the name to be released before the
 * TR_EXIT / TR_DOWN goes out. */

#define HEIRS 2000

struct heirs {
    atomic_uint name_still_taken, register_failed, heard;
};

struct heir_state {
    struct heirs *h;
    tr_pid named;
    int idx;
};

/* Two heirs per named actor: one linked (trapping), which takes the name
 * over when it hears of the end, and one monitoring, which only looks.
 * (With two to tell, the first is often run by another worker while the
 * ending actor is still finishing its end.) */
static void heir(tr_ctx *cx, void *state, const tr_msg *m)
{
    struct heir_state *st = state;
    char name[TR_NAME_MAX];
    snprintf(name, sizeof name, "heir-%d", st->idx);
    tr_runtime *rt = tr_ctx_runtime(cx);
    switch (m->type) {
    case N_LINK:
        tr_trap_exits(cx, true);
        TT_CHECK(tr_link(cx, st->named) == 0);
        break;
    case N_MONITOR:
        TT_CHECK(tr_monitor(cx, st->named, NULL) == 0);
        break;
    case TR_EXIT:
    case TR_DOWN:
        atomic_fetch_add(&st->h->heard, 1);
        if (tr_whereis(rt, name) == st->named)
            atomic_fetch_add(&st->h->name_still_taken, 1);
        if (m->type == TR_EXIT && tr_register(rt, name, tr_self(cx)) != 0)
            atomic_fetch_add(&st->h->register_failed, 1);
        break;
    default:
        break;
    }
}

static void test_released_before_links_hear(void)
{
    struct heirs h = { 0 };
    tr_runtime *rt = tt_runtime(4, 0);
    tr_pid *named = calloc(HEIRS, sizeof *named);
    CU_ASSERT_FATAL(named != NULL);
    char name[TR_NAME_MAX];
    for (int i = 0; i < HEIRS; i++) {
        TT_EQ(tr_runtime_spawn(rt, idle_actor, NULL, 0, &named[i]), 0);
        snprintf(name, sizeof name, "heir-%d", i);
        TT_EQ(tr_register(rt, name, named[i]), 0);
        struct heir_state st = { &h, named[i], i };
        tr_pid p;
        TT_EQ(tr_runtime_spawn(rt, heir, &st, sizeof st, &p), 0);
        TT_EQ(tr_runtime_send(rt, p, N_LINK, NULL, 0), 0);
        TT_EQ(tr_runtime_spawn(rt, heir, &st, sizeof st, &p), 0);
        TT_EQ(tr_runtime_send(rt, p, N_MONITOR, NULL, 0), 0);
    }
    TT_EQ(tr_runtime_run(rt), 0);
    for (int i = 0; i < HEIRS; i++)
        TT_EQ(tr_runtime_send(rt, named[i], N_FAIL, NULL, 0), 0);
    TT_EQ(tr_runtime_run(rt), 0);
    TT_EQ(atomic_load(&h.heard), 2 * HEIRS);
    TT_EQ(atomic_load(&h.name_still_taken), 0);
    TT_EQ(atomic_load(&h.register_failed), 0);
    TT_NO_ERRORS();
    free(named);
    tr_runtime_destroy(rt);
}

/* ---- many distinct names over time ------------------------------------------------
 *
 * 1,000 names are live at any moment, but 100,000 different ones come and
 * go (register a new one, unregister the oldest): the registry must not
 * fill up with the ones that left. */

#define CHURN_LIVE 1000
#define CHURN_NAMES 100000

static void test_churn_distinct_names(void)
{
    tr_runtime *rt = tt_runtime(2, 0);
    tr_pid *pids = calloc(CHURN_LIVE, sizeof *pids);
    CU_ASSERT_FATAL(pids != NULL);
    for (int i = 0; i < CHURN_LIVE; i++)
        TT_EQ(tr_runtime_spawn(rt, idle_actor, NULL, 0, &pids[i]), 0);
    char name[TR_NAME_MAX];
    int first_failure = -1, failures = 0, first_rc = 0;
    for (int i = 0; i < CHURN_NAMES; i++) {
        if (i >= CHURN_LIVE) {
            snprintf(name, sizeof name, "session-%d", i - CHURN_LIVE);
            if (tr_unregister(rt, name) != 0 && first_failure < 0)
                failures++; /* only counts while registration works */
        }
        snprintf(name, sizeof name, "session-%d", i);
        int rc = tr_register(rt, name, pids[i % CHURN_LIVE]);
        if (rc != 0) {
            if (first_failure < 0) {
                first_failure = i;
                first_rc = rc;
            }
            failures++;
            continue;
        }
        if (tr_whereis(rt, name) != pids[i % CHURN_LIVE])
            failures++;
    }
    if (first_failure >= 0)
        printf("\n    registration #%d failed (%s) with %d names live",
               first_failure, tr_strerror(first_rc), CHURN_LIVE - 1);
    TT_EQ(failures, 0);
    free(pids);
    tr_runtime_destroy(rt);
}

/* ---- bad names and bad pids ---------------------------------------------------------- */

static void test_bad_names(void)
{
    tr_runtime *rt = tt_runtime(2, 0);
    tr_pid a, dead;
    TT_EQ(tr_runtime_spawn(rt, idle_actor, NULL, 0, &a), 0);
    TT_EQ(tr_runtime_spawn(rt, idle_actor, NULL, 0, &dead), 0);
    TT_EQ(tr_runtime_send(rt, dead, N_STOP, NULL, 0), 0);
    TT_EQ(tr_runtime_run(rt), 0);

    /* Before any name was registered. */
    TT_EQ(tr_whereis(rt, "nobody"), TR_PID_NONE);
    TT_EQ(tr_unregister(rt, "nobody"), TR_EINVAL);

    char longest[TR_NAME_MAX], too_long[TR_NAME_MAX + 1], way_too_long[200];
    memset(longest, 'a', sizeof longest - 1);
    longest[sizeof longest - 1] = '\0';   /* TR_NAME_MAX - 1 bytes: fine */
    memset(too_long, 'b', sizeof too_long - 1);
    too_long[sizeof too_long - 1] = '\0'; /* TR_NAME_MAX bytes: too long */
    memset(way_too_long, 'c', sizeof way_too_long - 1);
    way_too_long[sizeof way_too_long - 1] = '\0';

    TT_EQ(tr_register(rt, "", a), TR_EINVAL);
    TT_EQ(tr_register(rt, NULL, a), TR_EINVAL);
    TT_EQ(tr_register(rt, too_long, a), TR_EINVAL);
    TT_EQ(tr_register(rt, way_too_long, a), TR_EINVAL);
    TT_EQ(tr_register(NULL, "x", a), TR_EINVAL);
    TT_EQ(tr_register(rt, "x", TR_PID_NONE), TR_EINVAL);
    TT_EQ(tr_register(rt, "x", dead), TR_ENOPID);
    TT_EQ(tr_register(rt, "x", (tr_pid)1 << TR_PID_INDEX_BITS | 12345678), TR_ENOPID);
    TT_EQ(tr_whereis(rt, "x"), TR_PID_NONE);
    TT_EQ(tr_whereis(rt, ""), TR_PID_NONE);
    TT_EQ(tr_whereis(rt, NULL), TR_PID_NONE);
    TT_EQ(tr_whereis(rt, too_long), TR_PID_NONE);
    TT_EQ(tr_whereis(NULL, "x"), TR_PID_NONE);
    TT_EQ(tr_unregister(rt, ""), TR_EINVAL);
    TT_EQ(tr_unregister(rt, too_long), TR_EINVAL);
    TT_EQ(tr_unregister(NULL, "x"), TR_EINVAL);

    TT_EQ(tr_register(rt, longest, a), 0);
    TT_EQ(tr_whereis(rt, longest), a);
    /* A name that only shares the longest one's prefix is another name. */
    TT_EQ(tr_whereis(rt, too_long), TR_PID_NONE);
    longest[10] = '\0';
    TT_EQ(tr_whereis(rt, longest), TR_PID_NONE);
    longest[10] = 'a';
    TT_EQ(tr_unregister(rt, longest), 0);
    TT_EQ(tr_unregister(rt, longest), TR_EINVAL);

    /* A timer's pid is not an actor that can be named. */
    tr_pid timer;
    tr_timer_spec ts = { .delay_ns = 10 * TR_SEC, .to = a, .type = 1 };
    TT_EQ(tr_runtime_timer_start(rt, &ts, &timer), 0);
    TT_EQ(tr_register(rt, "timer", timer), TR_ENOPID);
    TT_EQ(tr_timer_cancel(rt, timer), 1);
    tr_runtime_destroy(rt);
}

void register_names_tests(void)
{
    CU_pSuite s = tt_suite("names");
    tt_test(s, "concurrent_8_threads", test_concurrent_8_threads);
    tt_test(s, "released_on_exit", test_released_on_exit);
    tt_test(s, "released_before_links_hear", test_released_before_links_hear);
    tt_test(s, "churn_100k_distinct_names", test_churn_distinct_names);
    tt_test(s, "bad_names", test_bad_names);
}
