/* test_names.c — named actors: tr_register, tr_unregister, tr_whereis.
 *
 * Eight threads register, look up and unregister names at once (their own
 * names, and a few contended ones); names are released when their actor
 * ends — before its links and monitors hear of the end, so that a
 * restarted actor can take its name again at once, and a registration
 * racing with the end leaves no name behind; a million distinct
 * names over time neither fill the registry nor slow its lookups; 100,000
 * names at once fit; lookups stay right while the table grows and while
 * removals move entries; bad names are refused. Costs are counted in
 * buckets read (actors/registry.h), never timed. */
#include "tests.h"

#include <stdlib.h>
#include <string.h>

#include "../actors/pid.h"
#include "../actors/registry.h"

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
    uint64_t seed = (uint64_t)a->t;
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
        uint64_t r = tt_rng_next(&seed);
        int ot = (int)((r >> 16) % NT_THREADS), ok = (int)((r >> 8) % NT_ACTORS);
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
            TT_EQ(tr_spawn(tr_runtime_ctx(nm->rt), idle_actor, NULL, 0, &nm->pids[t][k]), 0);
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
    TT_EQ(tr_spawn(tr_runtime_ctx(rt), idle_actor, NULL, 0, &a), 0);
    TT_EQ(tr_spawn(tr_runtime_ctx(rt), idle_actor, NULL, 0, &b), 0);
    TT_EQ(tr_register(rt, "service", a), 0);
    TT_EQ(tr_whereis(rt, "service"), a);
    TT_EQ(tr_register(rt, "service", b), TR_EEXIST);
    TT_EQ(tr_send(tr_runtime_ctx(rt), a, N_STOP, NULL, 0), 0);
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
        TT_EQ(tr_spawn(tr_runtime_ctx(rt), idle_actor, NULL, 0, &pids[i]), 0);
        snprintf(name, sizeof name, "worker-%d", i);
        TT_EQ(tr_register(rt, name, pids[i]), 0);
    }
    for (int i = 0; i < REL_ACTORS; i++)
        TT_EQ(tr_send(tr_runtime_ctx(rt), pids[i], i % 2 ? N_STOP : N_FAIL, NULL, 0), 0);
    TT_EQ(tr_runtime_run(rt), 0);
    for (int i = 0; i < REL_ACTORS; i++) {
        snprintf(name, sizeof name, "worker-%d", i);
        TT_EQ(tr_whereis(rt, name), TR_PID_NONE);
    }
    /* ... and the names can be taken again. */
    for (int i = 0; i < REL_ACTORS; i++) {
        TT_EQ(tr_spawn(tr_runtime_ctx(rt), idle_actor, NULL, 0, &pids[i]), 0);
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
        TT_EQ(tr_spawn(tr_runtime_ctx(rt), idle_actor, NULL, 0, &named[i]), 0);
        snprintf(name, sizeof name, "heir-%d", i);
        TT_EQ(tr_register(rt, name, named[i]), 0);
        struct heir_state st = { &h, named[i], i };
        tr_pid p;
        TT_EQ(tr_spawn(tr_runtime_ctx(rt), heir, &st, sizeof st, &p), 0);
        TT_EQ(tr_send(tr_runtime_ctx(rt), p, N_LINK, NULL, 0), 0);
        TT_EQ(tr_spawn(tr_runtime_ctx(rt), heir, &st, sizeof st, &p), 0);
        TT_EQ(tr_send(tr_runtime_ctx(rt), p, N_MONITOR, NULL, 0), 0);
    }
    TT_EQ(tr_runtime_run(rt), 0);
    for (int i = 0; i < HEIRS; i++)
        TT_EQ(tr_send(tr_runtime_ctx(rt), named[i], N_FAIL, NULL, 0), 0);
    TT_EQ(tr_runtime_run(rt), 0);
    TT_EQ(atomic_load(&h.heard), 2 * HEIRS);
    TT_EQ(atomic_load(&h.name_still_taken), 0);
    TT_EQ(atomic_load(&h.register_failed), 0);
    TT_NO_ERRORS();
    free(named);
    tr_runtime_destroy(rt);
}

/* ---- a registration racing with the actor's end ------------------------------------
 *
 * The registrant marks the actor named and then checks it is alive; the
 * ending actor publishes its end and then checks the mark. One of them
 * must see the other (actors/registry.c, base/fence.h): if neither did,
 * the name would stay bound to a dead pid and nobody could take it again.
 * Each round lets an actor end on a worker while this thread registers
 * it, after a pause of a varying length so that the two meet at every
 * point; once the runtime is quiet, the name must be free. */

#define RACE_ROUNDS 3000

static void test_register_racing_with_the_end(void)
{
    tr_runtime *rt = tt_runtime(2, 0);
    unsigned taken = 0, too_late = 0, other = 0, stale = 0, retaken = 0;
    uint64_t seed = 7;
    for (int i = 0; i < RACE_ROUNDS; i++) {
        tr_pid victim, heir;
        TT_EQ(tr_spawn(tr_runtime_ctx(rt), idle_actor, NULL, 0, &victim), 0);
        TT_EQ(tr_spawn(tr_runtime_ctx(rt), idle_actor, NULL, 0, &heir), 0);
        TT_EQ(tr_runtime_hold(rt), 0); /* not quiet before the stop is sent */
        TT_EQ(tr_runtime_start(rt), 0);
        TT_EQ(tr_send(tr_runtime_ctx(rt), victim, N_STOP, NULL, 0), 0);
        for (volatile unsigned spin = (unsigned)(tt_rng_next(&seed) % 2048); spin > 0; spin--)
            ;
        int rc = tr_register(rt, "racer", victim);
        taken += rc == 0;
        too_late += rc == TR_ENOPID;
        other += rc != 0 && rc != TR_ENOPID;
        TT_EQ(tr_runtime_release(rt), 0);
        TT_EQ(tr_runtime_join(rt), 0);
        stale += tr_whereis(rt, "racer") != TR_PID_NONE;
        /* The name is free for the next holder. */
        retaken += tr_register(rt, "racer", heir) == 0;
        TT_EQ(tr_unregister(rt, "racer"), 0);
        TT_EQ(tr_send(tr_runtime_ctx(rt), heir, N_STOP, NULL, 0), 0);
        TT_EQ(tr_runtime_run(rt), 0);
    }
    printf("[registered before the end %u, after it %u] ", taken, too_late);
    TT_EQ(taken + too_late, RACE_ROUNDS);
    TT_EQ(other, 0);
    TT_EQ(stale, 0);
    TT_EQ(retaken, RACE_ROUNDS);
    tr__registry_stats st;
    tr__registry_stats_get(rt, &st);
    TT_EQ(st.live, 0);
    tr_runtime_destroy(rt);
}

/* ---- many distinct names over time ------------------------------------------------
 *
 * 1,000 names are live at any moment, but 1,000,000 different ones come and
 * go (register a new one, unregister the oldest). The registry must neither
 * fill up with the ones that left nor slow down: the buckets a lookup of a
 * missing name reads (a count, not a time) stay what they were at the start,
 * and so do the table's size and the writers' reads per operation. Every
 * 10,000 steps all live names are looked up and the departed one must be
 * gone (deletion moves entries: none may be lost). */

#define CHURN_LIVE 1000
#define CHURN_NAMES 1000000
#define CHURN_PROBES 1000  /* missing names whose lookup cost is summed */

static uint64_t missing_cost(tr_runtime *rt)
{
    char name[TR_NAME_MAX];
    uint64_t probes = 0;
    for (int i = 0; i < CHURN_PROBES; i++) {
        snprintf(name, sizeof name, "absent-%d", i);
        probes += tr__registry_lookup_cost(rt, name);
    }
    return probes;
}

static void test_churn_distinct_names(void)
{
    tr_runtime *rt = tt_runtime(2, 0);
    tr_pid *pids = calloc(CHURN_LIVE, sizeof *pids);
    CU_ASSERT_FATAL(pids != NULL);
    for (int i = 0; i < CHURN_LIVE; i++)
        TT_EQ(tr_spawn(tr_runtime_ctx(rt), idle_actor, NULL, 0, &pids[i]), 0);
    char name[TR_NAME_MAX];
    unsigned failures = 0, lost = 0;
    uint64_t cost_start = 0;
    tr__registry_stats start = {0}, end;
    for (int i = 0; i < CHURN_NAMES; i++) {
        if (i == CHURN_LIVE) {
            cost_start = missing_cost(rt);
            tr__registry_stats_get(rt, &start);
        }
        if (i >= CHURN_LIVE) {
            snprintf(name, sizeof name, "session-%d", i - CHURN_LIVE);
            failures += tr_unregister(rt, name) != 0;
            failures += tr_whereis(rt, name) != TR_PID_NONE;
        }
        snprintf(name, sizeof name, "session-%d", i);
        tr_pid pid = pids[i % CHURN_LIVE];
        int rc = tr_register(rt, name, pid);
        if (rc != 0 && failures++ == 0)
            printf("\n    registration #%d failed (%s)", i, tr_strerror(rc));
        failures += tr_whereis(rt, name) != pid;
        for (int k = i - CHURN_LIVE + 1; i % 10000 == 0 && k <= i; k++) {
            snprintf(name, sizeof name, "session-%d", k);
            lost += k >= 0 && tr_whereis(rt, name) != pids[k % CHURN_LIVE];
        }
    }
    uint64_t cost_end = missing_cost(rt);
    tr__registry_stats_get(rt, &end);
    printf("[missing-name lookup: %.2f -> %.2f buckets; %u buckets; writers read %.2f per op] ",
           (double)cost_start / CHURN_PROBES, (double)cost_end / CHURN_PROBES, end.buckets,
           (double)(end.probes - start.probes) / (2.0 * (CHURN_NAMES - CHURN_LIVE)));
    TT_EQ(failures, 0);
    TT_EQ(lost, 0);
    TT_EQ(end.live, CHURN_LIVE);
    CU_ASSERT(cost_start >= CHURN_PROBES); /* at least one bucket each */
    CU_ASSERT(cost_end <= 2 * cost_start);
    TT_EQ(end.buckets, start.buckets); /* churn made no table */
    TT_EQ(end.retired, start.retired);
    /* Register + unregister read a handful of buckets each, not the table. */
    CU_ASSERT(end.probes - start.probes <= 2ull * (CHURN_NAMES - CHURN_LIVE) * 8);
    free(pids);
    tr_runtime_destroy(rt);
}

/* ---- 100,000 names at once ---------------------------------------------------------
 *
 * The registry grows to hold them (no fixed limit), every one is found,
 * then half are unregistered and the other half's actors end: an ending
 * actor's name goes in a few bucket reads, not a scan of the table. The
 * names are then free for new actors. */

#define MANY 100000

static void many_name(char *buf, size_t len, int i)
{
    snprintf(buf, len, "many/%d", i);
}

static void test_100k_live_names(void)
{
    tr_runtime *rt = tt_runtime(2, 0);
    tr_pid *pids = calloc(MANY, sizeof *pids);
    CU_ASSERT_FATAL(pids != NULL);
    char name[TR_NAME_MAX];
    unsigned failures = 0;
    for (int i = 0; i < MANY; i++) {
        TT_EQ(tr_spawn(tr_runtime_ctx(rt), idle_actor, NULL, 0, &pids[i]), 0);
        many_name(name, sizeof name, i);
        failures += tr_register(rt, name, pids[i]) != 0;
    }
    uint64_t found_cost = 0;
    for (int i = 0; i < MANY; i++) {
        many_name(name, sizeof name, i);
        failures += tr_whereis(rt, name) != pids[i];
        found_cost += tr__registry_lookup_cost(rt, name);
    }
    TT_EQ(failures, 0);
    tr__registry_stats s;
    tr__registry_stats_get(rt, &s);
    TT_EQ(s.live, MANY);
    CU_ASSERT(s.buckets >= MANY * 4 / 3 && s.buckets <= MANY * 8 / 3 + 1);
    CU_ASSERT(s.retired < s.buckets); /* what the old tables keep */
    CU_ASSERT(found_cost <= 4ull * MANY);

    /* Half by name, half by their actors' end. */
    for (int i = 0; i < MANY; i += 2) {
        many_name(name, sizeof name, i);
        failures += tr_unregister(rt, name) != 0;
    }
    tr__registry_stats before_ends, after_ends;
    tr__registry_stats_get(rt, &before_ends);
    for (int i = 1; i < MANY; i += 2)
        TT_EQ(tr_send(tr_runtime_ctx(rt), pids[i], N_STOP, NULL, 0), 0);
    TT_EQ(tr_runtime_run(rt), 0);
    tr__registry_stats_get(rt, &after_ends);
    printf("[%u buckets (+%" PRIu64 " retired); an end reads %.2f buckets] ", s.buckets,
           s.retired, (double)(after_ends.probes - before_ends.probes) / (MANY / 2));
    CU_ASSERT(after_ends.probes - before_ends.probes <= (uint64_t)MANY / 2 * 8);
    TT_EQ(after_ends.live, 0);
    for (int i = 0; i < MANY; i++) {
        many_name(name, sizeof name, i);
        failures += tr_whereis(rt, name) != TR_PID_NONE;
    }
    /* The unregistered actors may take names again; the ended ones' names
     * are free for new actors. */
    for (int i = 0; i < MANY; i++) {
        if (i % 2 == 1)
            TT_EQ(tr_spawn(tr_runtime_ctx(rt), idle_actor, NULL, 0, &pids[i]), 0);
        many_name(name, sizeof name, i);
        failures += tr_register(rt, name, pids[i]) != 0;
        failures += tr_whereis(rt, name) != pids[i];
    }
    TT_EQ(failures, 0);
    tr__registry_stats_get(rt, &s);
    TT_EQ(s.live, MANY);
    free(pids);
    tr_runtime_destroy(rt);
}

/* ---- growth while others look up --------------------------------------------------
 *
 * Reader threads look names up while the test thread registers enough to
 * double the table many times, and unregisters every other one it added
 * (which moves entries). A reader must never get a wrong pid, never miss a
 * name that stayed registered all along, and never see a name that was not
 * registered; old tables must still be readable (ASan would see otherwise). */

#define GR_READERS 3
#define GR_STABLE 200
#define GR_NAMES 40000

struct growth {
    tr_runtime *rt;
    tr_pid stable[GR_STABLE], *added;
    atomic_int registered;   /* added names 0..registered-1 have been registered */
    atomic_bool done;
    atomic_uint started, wrong, missed, lookups[GR_READERS];
};

struct gr_arg {
    struct growth *g;
    int id;
};

static void *gr_reader(void *p)
{
    struct gr_arg *arg = p;
    struct growth *g = arg->g;
    char name[TR_NAME_MAX];
    uint64_t seed = (uint64_t)arg->id;
    unsigned n = 0;
    atomic_fetch_add(&g->started, 1);
    while (!atomic_load(&g->done)) {
        int k = (int)(tt_rng_next(&seed) >> 33);
        snprintf(name, sizeof name, "stable-%d", k % GR_STABLE);
        tr_pid got = tr_whereis(g->rt, name);
        g->missed += got == TR_PID_NONE;
        g->wrong += got != TR_PID_NONE && got != g->stable[k % GR_STABLE];

        int upto = atomic_load(&g->registered);
        if (upto > 0) {
            int i = k % upto; /* registered; odd ones may be gone again */
            snprintf(name, sizeof name, "added-%d", i);
            got = tr_whereis(g->rt, name);
            g->missed += got == TR_PID_NONE && i % 2 == 0;
            g->wrong += got != TR_PID_NONE && got != g->added[i];
        }
        snprintf(name, sizeof name, "added-%d", GR_NAMES + k % 1000); /* never */
        g->wrong += tr_whereis(g->rt, name) != TR_PID_NONE;
        n += 3;
    }
    atomic_store(&g->lookups[arg->id], n);
    return NULL;
}

static void test_growth_under_readers(void)
{
    struct growth *g = calloc(1, sizeof *g);
    CU_ASSERT_FATAL(g != NULL);
    g->added = calloc(GR_NAMES, sizeof *g->added);
    CU_ASSERT_FATAL(g->added != NULL);
    g->rt = tt_runtime(2, 0);
    char name[TR_NAME_MAX];
    for (int i = 0; i < GR_STABLE; i++) {
        TT_EQ(tr_spawn(tr_runtime_ctx(g->rt), idle_actor, NULL, 0, &g->stable[i]), 0);
        snprintf(name, sizeof name, "stable-%d", i);
        TT_EQ(tr_register(g->rt, name, g->stable[i]), 0);
    }
    for (int i = 0; i < GR_NAMES; i++)
        TT_EQ(tr_spawn(tr_runtime_ctx(g->rt), idle_actor, NULL, 0, &g->added[i]), 0);
    tr__registry_stats before, after;
    tr__registry_stats_get(g->rt, &before);

    struct gr_arg args[GR_READERS];
    pthread_t th[GR_READERS];
    for (int r = 0; r < GR_READERS; r++) {
        args[r] = (struct gr_arg){g, r};
        th[r] = tt_thread(gr_reader, &args[r]);
    }
    while (atomic_load(&g->started) < GR_READERS)
        tt_sleep_ms(1);
    unsigned failures = 0;
    for (int i = 0; i < GR_NAMES; i++) {
        snprintf(name, sizeof name, "added-%d", i);
        failures += tr_register(g->rt, name, g->added[i]) != 0;
        atomic_store(&g->registered, i + 1);
        if (i % 2 == 0 && i >= 2) { /* the odd one before it goes */
            snprintf(name, sizeof name, "added-%d", i - 1);
            failures += tr_unregister(g->rt, name) != 0;
        }
    }
    atomic_store(&g->done, true);
    for (int r = 0; r < GR_READERS; r++)
        tt_join(th[r]);
    tr__registry_stats_get(g->rt, &after);
    unsigned lookups = 0;
    for (int r = 0; r < GR_READERS; r++) {
        CU_ASSERT(atomic_load(&g->lookups[r]) > 0);
        lookups += atomic_load(&g->lookups[r]);
    }
    printf("[%u lookups; %u -> %u buckets] ", lookups, before.buckets, after.buckets);
    TT_EQ(failures, 0);
    TT_EQ(atomic_load(&g->wrong), 0);
    TT_EQ(atomic_load(&g->missed), 0);
    CU_ASSERT(after.buckets >= 64 * before.buckets); /* it grew while they read */
    TT_EQ(after.live, GR_STABLE + GR_NAMES / 2 + 1);
    tr_runtime_destroy(g->rt);
    free(g->added);
    free(g);
}

/* ---- deletion moves entries under readers ----------------------------------------
 *
 * Every name made to hash alike (tr__registry_collide), so that 300 names
 * form one run that wraps around the table's end. The test thread
 * unregisters and re-registers them in turn: each removal moves every later
 * entry of the run back one bucket, under two readers that scan the run.
 * Apart from the one name the writer has out at the moment, a reader must
 * find every name, with its pid, every time; the counts of lookups and
 * moves show that they did overlap. */

#define SH_NAMES 300
#define SH_ROUNDS (TT_TSAN ? 30 : 300) /* every access is an atomic one: slow under TSan */

struct shifting {
    tr_runtime *rt;
    tr_pid pids[SH_NAMES];
    atomic_int step;         /* the writer has name step % SH_NAMES out, or had */
    atomic_bool done;
    atomic_uint started, wrong, missed, lookups;
};

static void *sh_reader(void *p)
{
    struct shifting *sh = p;
    char name[TR_NAME_MAX];
    unsigned n = 0;
    uint64_t seed = 12345;
    atomic_fetch_add(&sh->started, 1);
    while (!atomic_load(&sh->done)) {
        int i = (int)tt_rng_below(&seed, SH_NAMES);
        snprintf(name, sizeof name, "run-%d", i);
        int before = atomic_load(&sh->step);
        tr_pid got = tr_whereis(sh->rt, name);
        int after = atomic_load(&sh->step);
        n++;
        if (got != TR_PID_NONE && got != sh->pids[i])
            atomic_fetch_add(&sh->wrong, 1);
        /* Out meanwhile: one of steps before..after named it. */
        bool out = after - before >= SH_NAMES ||
                   (i - before % SH_NAMES + SH_NAMES) % SH_NAMES <= after - before;
        if (got == TR_PID_NONE && !out)
            atomic_fetch_add(&sh->missed, 1);
    }
    atomic_fetch_add(&sh->lookups, n);
    return NULL;
}

static void test_shifts_under_readers(void)
{
    struct shifting *sh = calloc(1, sizeof *sh);
    CU_ASSERT_FATAL(sh != NULL);
    sh->rt = tt_runtime(2, 0);
    TT_EQ(tr__registry_collide(sh->rt), 0);
    char name[TR_NAME_MAX];
    for (int i = 0; i < SH_NAMES; i++) {
        TT_EQ(tr_spawn(tr_runtime_ctx(sh->rt), idle_actor, NULL, 0, &sh->pids[i]), 0);
        snprintf(name, sizeof name, "run-%d", i);
        TT_EQ(tr_register(sh->rt, name, sh->pids[i]), 0);
    }
    TT_EQ(tr__registry_collide(sh->rt), TR_EINVAL); /* too late now */
    pthread_t th[2];
    for (int r = 0; r < 2; r++)
        th[r] = tt_thread(sh_reader, sh);
    while (atomic_load(&sh->started) < 2)
        tt_sleep_ms(1);
    unsigned failures = 0;
    for (int step = 0; step < SH_ROUNDS * SH_NAMES; step++) {
        atomic_store(&sh->step, step);
        snprintf(name, sizeof name, "run-%d", step % SH_NAMES);
        failures += tr_unregister(sh->rt, name) != 0;
        failures += tr_register(sh->rt, name, sh->pids[step % SH_NAMES]) != 0;
    }
    atomic_store(&sh->done, true);
    for (int r = 0; r < 2; r++)
        tt_join(th[r]);
    tr__registry_stats st;
    tr__registry_stats_get(sh->rt, &st);
    printf("[%u lookups during %d removals] ", atomic_load(&sh->lookups), SH_ROUNDS * SH_NAMES);
    TT_EQ(failures, 0);
    TT_EQ(st.live, SH_NAMES);
    CU_ASSERT(atomic_load(&sh->lookups) > 0);
    TT_EQ(atomic_load(&sh->wrong), 0);
    TT_EQ(atomic_load(&sh->missed), 0);
    for (int i = 0; i < SH_NAMES; i++) {
        snprintf(name, sizeof name, "run-%d", i);
        TT_EQ(tr_whereis(sh->rt, name), sh->pids[i]);
    }
    tr_runtime_destroy(sh->rt);
    free(sh);
}

/* ---- bad names and bad pids ---------------------------------------------------------- */

static void test_bad_names(void)
{
    tr_runtime *rt = tt_runtime(2, 0);
    tr_pid a, dead;
    TT_EQ(tr_spawn(tr_runtime_ctx(rt), idle_actor, NULL, 0, &a), 0);
    TT_EQ(tr_spawn(tr_runtime_ctx(rt), idle_actor, NULL, 0, &dead), 0);
    TT_EQ(tr_send(tr_runtime_ctx(rt), dead, N_STOP, NULL, 0), 0);
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
    TT_EQ(tr_register(rt, "x", (tr_pid)1 << TR__PID_INDEX_BITS | 12345678), TR_ENOPID);
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
    TT_EQ(tr_timer_start(tr_runtime_ctx(rt), &ts, &timer), 0);
    TT_EQ(tr_register(rt, "timer", timer), TR_ENOPID);
    TT_EQ(tr_timer_cancel(tr_runtime_ctx(rt), timer), 1);
    tr_runtime_destroy(rt);
}

void register_names_tests(void)
{
    CU_pSuite s = tt_suite("names");
    tt_test(s, "register_whereis_unregister_from_8_threads", test_concurrent_8_threads);
    tt_test(s, "released_on_exit", test_released_on_exit);
    tt_test(s, "released_before_links_hear", test_released_before_links_hear);
    tt_test(s, "register_racing_with_the_end", test_register_racing_with_the_end);
    tt_test(s, "churn_1m_distinct_names", test_churn_distinct_names);
    tt_test(s, "100k_live_names", test_100k_live_names);
    tt_test(s, "growth_under_readers", test_growth_under_readers);
    tt_test(s, "shifts_under_readers", test_shifts_under_readers);
    tt_test(s, "bad_names_and_pids_are_refused", test_bad_names);
}
