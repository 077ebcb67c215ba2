/* test_fault.c — exit reasons, links, exit signals and monitors
 * (troupe/fault.h).
 *
 * Links: a 10,000-actor chain fails as one; many trapping actors linked to
 * one failing actor get exactly one TR_EXIT each; linking to a dead pid
 * gives noproc; spawn-and-link cannot miss a child's immediate failure;
 * normal exits spare partners; unlink is final; KILL cannot be trapped.
 * Monitors: 100,000 monitors on actors exiting concurrently give exactly one
 * TR_DOWN each; demonitor before the exit gives none, and a TR_DOWN already
 * queued when demonitor is called is flushed; monitoring a dead pid gives
 * one noproc TR_DOWN; a watcher that ends takes its monitors with it.
 * Payloads: TR_EXIT and TR_DOWN carry exactly the documented structs.
 *
 * Small scenarios use "probes": general-purpose actors driven step by step
 * from the test thread (command, run to quiescence, look), which record
 * what they receive under a mutex. Large ones use dedicated actors with
 * atomic counters. */
#include "tests.h"
#include "../actors/pid.h"

#include <stdlib.h>
#include <string.h>

/* A pid never issued by any runtime: the last slot index, generation 1. */
#define NEVER_ISSUED ((tr_pid)1 << TR__PID_INDEX_BITS | ((1u << TR__PID_INDEX_BITS) - 1))

static bool text_is(const char *text, const char *want)
{
    return strncmp(text, want, TR_EXIT_TEXT_MAX) == 0;
}

/* Waits (test thread, or a behaviour) until *flag is non-zero, for at
 * most `secs`. True if it was set. */
static bool wait_flag(atomic_int *flag, double secs)
{
    double until = tt_now() + secs;
    unsigned long spins = 0;
    while (atomic_load(flag) == 0) {
        if (tt_now() > until)
            return false;
        tt_relax(&spins);
    }
    return true;
}

/* ======================================================================
 * probes
 * ====================================================================== */

enum {
    P_TRAP = 1,  /* tr_trap_exits(true) */
    P_LINK,      /* tr_link(cmd.pid) */
    P_UNLINK,    /* tr_unlink(cmd.pid) */
    P_MONITOR,   /* tr_monitor(cmd.pid) */
    P_DEMONITOR, /* tr_demonitor(cmd.ref) */
    P_KILL,      /* tr_kill(cmd.pid, cmd.reason) */
    P_EXIT,      /* tr_exit(cmd.reason, cmd.text) */
    P_PING,      /* counted */
};

#define PROBES 16

struct probe_rec {
    unsigned exits, downs, pings;
    tr_exit_info exit;  /* the last TR_EXIT */
    size_t exit_len;
    tr_down_info down;  /* the last TR_DOWN */
    size_t down_len;
    uint64_t ref;       /* from the last P_MONITOR */
    int rc;             /* of the last link/unlink/monitor/demonitor/kill */
};

static pthread_mutex_t probe_mu = PTHREAD_MUTEX_INITIALIZER;
static struct probe_rec probes[PROBES];

struct cmd {
    tr_pid pid;
    uint64_t ref;
    int reason;
    char text[TR_EXIT_TEXT_MAX * 2];
};

static void probe(tr_ctx *cx, void *state, const tr_msg *m)
{
    int id = *(const int *)state;
    struct cmd c;
    memset(&c, 0, sizeof c);
    if (m->type < TR_MSG_SYSTEM) {
        TT_CHECK(m->len == sizeof c);
        memcpy(&c, m->data, sizeof c);
    }
    uint64_t ref = 0;
    pthread_mutex_lock(&probe_mu);
    struct probe_rec *r = &probes[id];
    switch (m->type) {
    case P_TRAP:
        tr_trap_exits(cx, true);
        break;
    case P_LINK:
        r->rc = tr_link(cx, c.pid);
        break;
    case P_UNLINK:
        r->rc = tr_unlink(cx, c.pid);
        break;
    case P_MONITOR:
        r->rc = tr_monitor(cx, c.pid, &ref);
        r->ref = ref;
        break;
    case P_DEMONITOR:
        r->rc = tr_demonitor(cx, c.ref);
        break;
    case P_KILL:
        r->rc = tr_kill(cx, c.pid, c.reason);
        break;
    case P_EXIT:
        tr_exit(cx, c.reason, c.text);
        break;
    case P_PING:
        r->pings++;
        break;
    case TR_EXIT:
        r->exits++;
        r->exit_len = m->len;
        memcpy(&r->exit, m->data, sizeof r->exit);
        break;
    case TR_DOWN:
        r->downs++;
        r->down_len = m->len;
        memcpy(&r->down, m->data, sizeof r->down);
        break;
    default:
        tt_fail(__FILE__, __LINE__, "probe: unexpected message type");
        break;
    }
    pthread_mutex_unlock(&probe_mu);
}

static void probes_reset(void)
{
    pthread_mutex_lock(&probe_mu);
    memset(probes, 0, sizeof probes);
    pthread_mutex_unlock(&probe_mu);
}

static struct probe_rec probe_get(int id)
{
    pthread_mutex_lock(&probe_mu);
    struct probe_rec r = probes[id];
    pthread_mutex_unlock(&probe_mu);
    return r;
}

static tr_pid probe_spawn(tr_runtime *rt, int id)
{
    tr_pid p = TR_PID_NONE;
    TT_EQ(tr_spawn(tr_runtime_ctx(rt), probe, &id, sizeof id, &p), 0);
    return p;
}

static void cmd_full(tr_runtime *rt, tr_pid to, int type, tr_pid pid, int reason, uint64_t ref,
                     const char *text)
{
    struct cmd c;
    memset(&c, 0, sizeof c);
    c.pid = pid;
    c.reason = reason;
    c.ref = ref;
    if (text != NULL)
        strncpy(c.text, text, sizeof c.text - 1);
    TT_EQ(tr_send(tr_runtime_ctx(rt), to, (uint32_t)type, &c, sizeof c), 0);
}

static void cmd(tr_runtime *rt, tr_pid to, int type, tr_pid pid)
{
    cmd_full(rt, to, type, pid, 0, 0, NULL);
}

static void cmd_exit(tr_runtime *rt, tr_pid to, int reason, const char *text)
{
    cmd_full(rt, to, P_EXIT, TR_PID_NONE, reason, 0, text);
}

static void run_quiet(tr_runtime *rt)
{
    TT_EQ(tr_runtime_run(rt), 0);
}

static uint64_t alive(tr_runtime *rt)
{
    tr_stats s;
    tr_runtime_stats(rt, &s);
    return s.actors_alive;
}

/* ======================================================================
 * links
 * ====================================================================== */

enum { L_LINK = 100, L_FAIL, L_MONITOR_ALL };

#define CHAIN_N 10000u
#define CHAIN_REASON 42

struct chain {
    tr_pid pids[CHAIN_N];
    uint64_t refs[CHAIN_N];  /* the watcher's, in monitoring order (ascending) */
    atomic_uint downs[CHAIN_N];
    atomic_uint tail_exits;
    atomic_uint unexpected;
};

struct chain_state {
    struct chain *ch;
    uint32_t idx;
};

static void chain_member(tr_ctx *cx, void *state, const tr_msg *m)
{
    struct chain_state *st = state;
    tr_pid to;
    switch (m->type) {
    case L_LINK:
        memcpy(&to, m->data, sizeof to);
        TT_CHECK(tr_link(cx, to) == 0);
        break;
    case L_FAIL:
        tr_exit(cx, CHAIN_REASON, "boom");
        break;
    default: /* a non-trapping member never sees TR_EXIT */
        atomic_fetch_add(&st->ch->unexpected, 1);
        break;
    }
}

/* Traps exits, linked to the chain's last member. */
static void chain_tail(tr_ctx *cx, void *state, const tr_msg *m)
{
    struct chain *ch = *(struct chain **)state;
    if (m->type == L_LINK) {
        tr_pid to;
        memcpy(&to, m->data, sizeof to);
        tr_trap_exits(cx, true);
        TT_CHECK(tr_link(cx, to) == 0);
    } else if (m->type == TR_EXIT) {
        const tr_exit_info *e = (const tr_exit_info *)m->data;
        TT_CHECK(m->len >= sizeof *e);
        TT_CHECK(e->pid == ch->pids[CHAIN_N - 1]);
        TT_CHECK(e->reason == CHAIN_REASON);
        TT_CHECK(text_is(e->text, "boom"));
        atomic_fetch_add(&ch->tail_exits, 1);
    } else {
        atomic_fetch_add(&ch->unexpected, 1);
    }
}

static long ref_index(const uint64_t *refs, long n, uint64_t ref)
{
    long lo = 0, hi = n - 1;
    while (lo <= hi) {
        long mid = lo + (hi - lo) / 2;
        if (refs[mid] == ref)
            return mid;
        if (refs[mid] < ref)
            lo = mid + 1;
        else
            hi = mid - 1;
    }
    return -1;
}

static void chain_watcher(tr_ctx *cx, void *state, const tr_msg *m)
{
    struct chain *ch = *(struct chain **)state;
    if (m->type == L_MONITOR_ALL) {
        for (uint32_t i = 0; i < CHAIN_N; i++) {
            TT_CHECK(tr_monitor(cx, ch->pids[i], &ch->refs[i]) == 0);
            TT_CHECK(i == 0 || ch->refs[i] > ch->refs[i - 1]);
        }
    } else if (m->type == TR_DOWN) {
        const tr_down_info *d = (const tr_down_info *)m->data;
        TT_CHECK(m->len >= sizeof *d);
        long i = ref_index(ch->refs, CHAIN_N, d->ref);
        TT_CHECK(i >= 0);
        if (i < 0)
            return;
        TT_CHECK(d->pid == ch->pids[i]);
        TT_CHECK(d->reason == CHAIN_REASON);
        TT_CHECK(text_is(d->text, "boom"));
        atomic_fetch_add(&ch->downs[i], 1);
    } else {
        atomic_fetch_add(&ch->unexpected, 1);
    }
}

/* Actor i links to actor i-1; a watcher monitors all of them; a trapping
 * actor is linked to the last. Actor 0 fails: every member ends with its
 * reason and text, seen as one TR_DOWN each, and the tail gets one TR_EXIT. */
static void test_link_chain_10k(void)
{
    struct chain *ch = calloc(1, sizeof *ch);
    CU_ASSERT_FATAL(ch != NULL);
    tr_runtime *rt = tt_runtime(4, 0);
    for (uint32_t i = 0; i < CHAIN_N; i++) {
        struct chain_state st = { ch, i };
        TT_EQ(tr_spawn(tr_runtime_ctx(rt), chain_member, &st, sizeof st, &ch->pids[i]), 0);
    }
    tr_pid tail, watcher;
    TT_EQ(tr_spawn(tr_runtime_ctx(rt), chain_tail, &ch, sizeof ch, &tail), 0);
    TT_EQ(tr_spawn(tr_runtime_ctx(rt), chain_watcher, &ch, sizeof ch, &watcher), 0);
    for (uint32_t i = 1; i < CHAIN_N; i++)
        TT_EQ(tr_send(tr_runtime_ctx(rt), ch->pids[i], L_LINK, &ch->pids[i - 1], sizeof(tr_pid)), 0);
    TT_EQ(tr_send(tr_runtime_ctx(rt), tail, L_LINK, &ch->pids[CHAIN_N - 1], sizeof(tr_pid)), 0);
    TT_EQ(tr_send(tr_runtime_ctx(rt), watcher, L_MONITOR_ALL, NULL, 0), 0);
    run_quiet(rt);
    TT_EQ(alive(rt), CHAIN_N + 2);

    TT_EQ(tr_send(tr_runtime_ctx(rt), ch->pids[0], L_FAIL, NULL, 0), 0);
    run_quiet(rt);

    unsigned missing = 0, extra = 0;
    for (uint32_t i = 0; i < CHAIN_N; i++) {
        unsigned d = atomic_load(&ch->downs[i]);
        missing += d == 0;
        extra += d > 1;
    }
    TT_EQ(missing, 0);
    TT_EQ(extra, 0);
    TT_EQ(atomic_load(&ch->tail_exits), 1);
    TT_EQ(atomic_load(&ch->unexpected), 0);
    TT_EQ(alive(rt), 2); /* the tail (trapping) and the watcher */
    TT_NO_ERRORS();
    tr_runtime_destroy(rt);
    free(ch);
}

/* ---- many trapping actors linked to one failing actor -------------------- */

#define TRAPPERS 2000u

struct fan {
    tr_pid victim;
    atomic_uint exits[TRAPPERS];
};

struct trapper_state {
    struct fan *f;
    uint32_t idx;
};

static void fan_trapper(tr_ctx *cx, void *state, const tr_msg *m)
{
    struct trapper_state *st = state;
    if (m->type == L_LINK) {
        tr_trap_exits(cx, true);
        TT_CHECK(tr_link(cx, st->f->victim) == 0);
    } else if (m->type == TR_EXIT) {
        const tr_exit_info *e = (const tr_exit_info *)m->data;
        TT_CHECK(m->len >= sizeof *e);
        TT_CHECK(e->pid == st->f->victim);
        TT_CHECK(e->reason == 7);
        TT_CHECK(text_is(e->text, "kaput"));
        atomic_fetch_add(&st->f->exits[st->idx], 1);
    } else {
        TT_CHECK(!"fan_trapper: unexpected message");
    }
}

static void fan_victim(tr_ctx *cx, void *state, const tr_msg *m)
{
    (void)state;
    TT_CHECK(m->type == L_FAIL);
    tr_exit(cx, 7, "kaput");
}

static void test_trappers_get_one_exit_each(void)
{
    struct fan *f = calloc(1, sizeof *f);
    CU_ASSERT_FATAL(f != NULL);
    tr_runtime *rt = tt_runtime(4, 0);
    TT_EQ(tr_spawn(tr_runtime_ctx(rt), fan_victim, NULL, 0, &f->victim), 0);
    for (uint32_t i = 0; i < TRAPPERS; i++) {
        struct trapper_state st = { f, i };
        tr_pid p;
        TT_EQ(tr_spawn(tr_runtime_ctx(rt), fan_trapper, &st, sizeof st, &p), 0);
        TT_EQ(tr_send(tr_runtime_ctx(rt), p, L_LINK, NULL, 0), 0);
    }
    run_quiet(rt);
    TT_EQ(tr_send(tr_runtime_ctx(rt), f->victim, L_FAIL, NULL, 0), 0);
    run_quiet(rt);
    unsigned bad = 0;
    for (uint32_t i = 0; i < TRAPPERS; i++)
        bad += atomic_load(&f->exits[i]) != 1;
    TT_EQ(bad, 0);
    TT_EQ(alive(rt), TRAPPERS); /* trapping: all still alive */
    TT_NO_ERRORS();
    tr_runtime_destroy(rt);
    free(f);
}

/* ---- linking to a dead pid ------------------------------------------------ */

static void test_link_to_dead_pid(void)
{
    probes_reset();
    tr_runtime *rt = tt_runtime(2, 0);
    tr_pid dead = probe_spawn(rt, 0);
    tr_pid trapper = probe_spawn(rt, 1);
    tr_pid plain = probe_spawn(rt, 2);
    tr_pid watcher = probe_spawn(rt, 3);
    cmd_exit(rt, dead, TR_EXIT_NORMAL, NULL);
    cmd(rt, trapper, P_TRAP, TR_PID_NONE);
    cmd(rt, watcher, P_MONITOR, plain);
    run_quiet(rt);
    TT_EQ(probe_get(3).rc, 0);

    /* A trapping actor gets TR_EXIT with noproc from the dead pid. */
    cmd(rt, trapper, P_LINK, dead);
    run_quiet(rt);
    struct probe_rec t = probe_get(1);
    TT_EQ(t.rc, 0);
    TT_EQ(t.exits, 1);
    TT_EQ(t.exit.pid, dead);
    TT_EQ(t.exit.reason, TR_EXIT_NOPROC);

    /* A non-trapping actor ends with noproc. */
    cmd(rt, plain, P_LINK, dead);
    run_quiet(rt);
    TT_EQ(probe_get(2).rc, 0);
    struct probe_rec w = probe_get(3);
    TT_EQ(w.downs, 1);
    TT_EQ(w.down.pid, plain);
    TT_EQ(w.down.reason, TR_EXIT_NOPROC);

    /* Bad targets are errors, not signals. */
    cmd(rt, trapper, P_LINK, trapper);
    run_quiet(rt);
    TT_EQ(probe_get(1).rc, TR_EINVAL);
    cmd(rt, trapper, P_LINK, NEVER_ISSUED);
    run_quiet(rt);
    TT_EQ(probe_get(1).rc, TR_ENOPID);
    TT_EQ(probe_get(1).exits, 1);
    /* Outside any behaviour. */
    TT_EQ(tr_link(NULL, dead), TR_EINVAL);
    TT_EQ(tr_unlink(NULL, dead), TR_EINVAL);
    TT_EQ(tr_spawn_link(NULL, probe, NULL, 0, NULL), TR_EINVAL);
    TT_EQ(tr_kill(NULL, dead, 1), TR_EINVAL);
    TT_EQ(tr_kill(tr_runtime_ctx(NULL), dead, 1), TR_EINVAL);
    TT_EQ(alive(rt), 2); /* trapper, watcher */
    TT_NO_ERRORS();
    tr_runtime_destroy(rt);
}

/* ---- linking to an actor while it ends: exactly one signal ---------------- */

#define RACERS 1000u

struct race {
    atomic_uint exits[RACERS];
    atomic_uint noproc, failed;
};

struct racer_state {
    struct race *r;
    uint32_t idx;
    tr_pid victim;
};

/* Fails after passing L_FAIL to itself a few times (0..15, by index), so
 * that the link request lands at varying points of its end. */
static void race_victim(tr_ctx *cx, void *state, const tr_msg *m)
{
    uint32_t *hops = state;
    if (m->type != L_FAIL)
        return;
    if (*hops == 0)
        tr_exit(cx, 9, "racing");
    else
        TT_CHECK(tr_send(cx, tr_self(cx), L_FAIL, NULL, 0) == 0);
    --*hops;
}

/* Links to its victim while the test thread tells the victim to fail: the
 * victim may end before or after the link request reaches it. */
static void race_linker(tr_ctx *cx, void *state, const tr_msg *m)
{
    struct racer_state *st = state;
    if (m->type == L_LINK) {
        tr_trap_exits(cx, true);
        TT_CHECK(tr_link(cx, st->victim) == 0);
    } else if (m->type == TR_EXIT) {
        const tr_exit_info *e = (const tr_exit_info *)m->data;
        TT_CHECK(e->pid == st->victim);
        TT_CHECK(e->reason == 9 || e->reason == TR_EXIT_NOPROC);
        atomic_fetch_add(e->reason == 9 ? &st->r->failed : &st->r->noproc, 1);
        atomic_fetch_add(&st->r->exits[st->idx], 1);
    }
}

static void test_link_racing_with_exit(void)
{
    struct race *r = calloc(1, sizeof *r);
    CU_ASSERT_FATAL(r != NULL);
    tr_runtime *rt = tt_runtime(4, 0);
    tr_pid linkers[RACERS], victims[RACERS];
    for (uint32_t i = 0; i < RACERS; i++) {
        struct racer_state st = { r, i, TR_PID_NONE };
        uint32_t hops = i % 16;
        TT_EQ(tr_spawn(tr_runtime_ctx(rt), race_victim, &hops, sizeof hops, &st.victim), 0);
        victims[i] = st.victim;
        TT_EQ(tr_spawn(tr_runtime_ctx(rt), race_linker, &st, sizeof st, &linkers[i]), 0);
    }
    /* Both messages come from here, to two actors that run concurrently. */
    TT_EQ(tr_runtime_hold(rt), 0);
    TT_EQ(tr_runtime_start(rt), 0);
    for (uint32_t i = 0; i < RACERS; i++) {
        if (i % 2 == 0) {
            TT_EQ(tr_send(tr_runtime_ctx(rt), linkers[i], L_LINK, NULL, 0), 0);
            TT_EQ(tr_send(tr_runtime_ctx(rt), victims[i], L_FAIL, NULL, 0), 0);
        } else {
            TT_EQ(tr_send(tr_runtime_ctx(rt), victims[i], L_FAIL, NULL, 0), 0);
            TT_EQ(tr_send(tr_runtime_ctx(rt), linkers[i], L_LINK, NULL, 0), 0);
        }
    }
    TT_EQ(tr_runtime_release(rt), 0);
    TT_EQ(tr_runtime_join(rt), 0);
    unsigned bad = 0;
    for (uint32_t i = 0; i < RACERS; i++)
        bad += atomic_load(&r->exits[i]) != 1;
    TT_EQ(bad, 0);
    printf("[%u failed, %u noproc] ", atomic_load(&r->failed), atomic_load(&r->noproc));
    TT_NO_ERRORS();
    tr_runtime_destroy(rt);
    free(r);
}

/* ---- spawn-and-link: a child failing at once is always seen --------------- */

#define SL_ROUNDS 5u
#define SL_PER_ROUND 2000u
#define SL_TOTAL (SL_ROUNDS * SL_PER_ROUND)
#define SL_PLAIN 200u

struct spawnlink {
    tr_pid kids[SL_TOTAL];
    atomic_uint exits[SL_TOTAL];
    atomic_uint rounds_done;
    /* Non-trapping parents, each with one child failing at once. */
    tr_pid parents[SL_PLAIN];
    atomic_uint parent_downs[SL_PLAIN];
};

struct sl_kid_state {
    uint32_t idx;
};

static void sl_kid(tr_ctx *cx, void *state, const tr_msg *m)
{
    struct sl_kid_state *st = state;
    TT_CHECK(m->type == L_FAIL);
    tr_exit(cx, 1000 + (int)st->idx, "early"); /* on its very first message */
}

static void sl_parent(tr_ctx *cx, void *state, const tr_msg *m)
{
    struct spawnlink *sl = *(struct spawnlink **)state;
    if (m->type == L_LINK) { /* payload: the round */
        uint32_t round;
        memcpy(&round, m->data, sizeof round);
        tr_trap_exits(cx, true);
        for (uint32_t i = 0; i < SL_PER_ROUND; i++) {
            struct sl_kid_state k = { round * SL_PER_ROUND + i };
            tr_pid p;
            TT_CHECK(tr_spawn_link(cx, sl_kid, &k, sizeof k, &p) == 0);
            sl->kids[k.idx] = p;
            TT_CHECK(tr_send(cx, p, L_FAIL, NULL, 0) == 0);
        }
        atomic_fetch_add(&sl->rounds_done, 1);
    } else if (m->type == TR_EXIT) {
        const tr_exit_info *e = (const tr_exit_info *)m->data;
        long idx = (long)e->reason - 1000;
        TT_CHECK(idx >= 0 && idx < (long)SL_TOTAL);
        if (idx < 0 || idx >= (long)SL_TOTAL)
            return;
        TT_CHECK(e->pid == sl->kids[idx]);
        TT_CHECK(text_is(e->text, "early"));
        atomic_fetch_add(&sl->exits[idx], 1);
    }
}

/* Not trapping: the child's failure ends it too, with the same reason. */
static void sl_plain_parent(tr_ctx *cx, void *state, const tr_msg *m)
{
    uint32_t idx = *(uint32_t *)state;
    if (m->type == L_LINK) {
        struct sl_kid_state k = { idx };
        tr_pid p;
        TT_CHECK(tr_spawn_link(cx, sl_kid, &k, sizeof k, &p) == 0);
        TT_CHECK(tr_send(cx, p, L_FAIL, NULL, 0) == 0);
    } else {
        TT_CHECK(!"sl_plain_parent: should have ended with its child");
    }
}

static void sl_watcher(tr_ctx *cx, void *state, const tr_msg *m)
{
    struct spawnlink *sl = *(struct spawnlink **)state;
    if (m->type == L_MONITOR_ALL) {
        for (uint32_t i = 0; i < SL_PLAIN; i++)
            TT_CHECK(tr_monitor(cx, sl->parents[i], NULL) == 0);
    } else if (m->type == TR_DOWN) {
        const tr_down_info *d = (const tr_down_info *)m->data;
        for (uint32_t i = 0; i < SL_PLAIN; i++) {
            if (sl->parents[i] == d->pid) {
                TT_CHECK(d->reason == 1000 + (int)i);
                TT_CHECK(text_is(d->text, "early"));
                atomic_fetch_add(&sl->parent_downs[i], 1);
                return;
            }
        }
        TT_CHECK(!"sl_watcher: DOWN from an unknown pid");
    }
}

static void test_spawn_link_atomic(void)
{
    struct spawnlink *sl = calloc(1, sizeof *sl);
    CU_ASSERT_FATAL(sl != NULL);
    tr_runtime *rt = tt_runtime(4, 0);
    tr_pid parent;
    TT_EQ(tr_spawn(tr_runtime_ctx(rt), sl_parent, &sl, sizeof sl, &parent), 0);
    for (uint32_t round = 0; round < SL_ROUNDS; round++)
        TT_EQ(tr_send(tr_runtime_ctx(rt), parent, L_LINK, &round, sizeof round), 0);

    for (uint32_t i = 0; i < SL_PLAIN; i++)
        TT_EQ(tr_spawn(tr_runtime_ctx(rt), sl_plain_parent, &i, sizeof i, &sl->parents[i]), 0);
    tr_pid watcher;
    TT_EQ(tr_spawn(tr_runtime_ctx(rt), sl_watcher, &sl, sizeof sl, &watcher), 0);
    TT_EQ(tr_send(tr_runtime_ctx(rt), watcher, L_MONITOR_ALL, NULL, 0), 0);
    run_quiet(rt); /* monitors in place before the plain parents start */
    for (uint32_t i = 0; i < SL_PLAIN; i++)
        TT_EQ(tr_send(tr_runtime_ctx(rt), sl->parents[i], L_LINK, NULL, 0), 0);
    run_quiet(rt);

    TT_EQ(atomic_load(&sl->rounds_done), SL_ROUNDS);
    unsigned bad = 0;
    for (uint32_t i = 0; i < SL_TOTAL; i++)
        bad += atomic_load(&sl->exits[i]) != 1;
    TT_EQ(bad, 0);
    bad = 0;
    for (uint32_t i = 0; i < SL_PLAIN; i++)
        bad += atomic_load(&sl->parent_downs[i]) != 1;
    TT_EQ(bad, 0);
    TT_EQ(alive(rt), 2); /* the trapping parent and the watcher */
    TT_NO_ERRORS();
    tr_runtime_destroy(rt);
    free(sl);
}

/* ---- normal exits spare linked partners ------------------------------------ */

static void test_normal_exit_spares_links(void)
{
    probes_reset();
    tr_runtime *rt = tt_runtime(2, 0);
    tr_pid a = probe_spawn(rt, 0); /* not trapping */
    tr_pid b = probe_spawn(rt, 1); /* ends normally */
    tr_pid c = probe_spawn(rt, 2); /* trapping */
    tr_pid w = probe_spawn(rt, 3); /* watches a */
    tr_pid d = probe_spawn(rt, 4); /* ends with tr_exit(0, text): normal too */
    cmd(rt, c, P_TRAP, TR_PID_NONE);
    cmd(rt, w, P_MONITOR, a);
    cmd(rt, a, P_LINK, b);
    cmd(rt, c, P_LINK, b);
    cmd(rt, a, P_LINK, d);
    run_quiet(rt);

    cmd_exit(rt, b, TR_EXIT_NORMAL, NULL);
    cmd_exit(rt, d, TR_EXIT_NORMAL, "fine");
    run_quiet(rt);
    cmd(rt, a, P_PING, TR_PID_NONE);
    run_quiet(rt);
    TT_EQ(probe_get(0).pings, 1);      /* a lives on */
    TT_EQ(probe_get(0).exits, 0);
    TT_EQ(probe_get(3).downs, 0);
    struct probe_rec cr = probe_get(2); /* a trapping partner hears of it */
    TT_EQ(cr.exits, 1);
    TT_EQ(cr.exit.pid, b);
    TT_EQ(cr.exit.reason, TR_EXIT_NORMAL);

    /* tr_kill with the normal reason: ignored unless trapping. */
    TT_EQ(tr_kill(tr_runtime_ctx(rt), a, TR_EXIT_NORMAL), 0);
    TT_EQ(tr_kill(tr_runtime_ctx(rt), c, TR_EXIT_NORMAL), 0);
    run_quiet(rt);
    cmd(rt, a, P_PING, TR_PID_NONE);
    run_quiet(rt);
    TT_EQ(probe_get(0).pings, 2);
    cr = probe_get(2);
    TT_EQ(cr.exits, 2);
    TT_EQ(cr.exit.pid, TR_PID_NONE);
    TT_EQ(cr.exit.reason, TR_EXIT_NORMAL);
    TT_EQ(alive(rt), 3);
    TT_NO_ERRORS();
    tr_runtime_destroy(rt);
}

/* ---- unlink before the partner fails: no signal ---------------------------- */

#define UNLINK_PAIRS 1000u

struct unlinks {
    atomic_uint exits, downs, pongs;
};

struct unlinker_state {
    struct unlinks *u;
    tr_pid partner;
    uint32_t idx;
    bool trap;
};

enum { U_GO = 200, U_PING };

static void unlink_partner(tr_ctx *cx, void *state, const tr_msg *m)
{
    (void)state;
    if (m->type == L_FAIL)
        tr_exit(cx, 5, "after unlink");
}

static void unlinker(tr_ctx *cx, void *state, const tr_msg *m)
{
    struct unlinker_state *st = state;
    switch (m->type) {
    case L_LINK:
        if (st->trap)
            tr_trap_exits(cx, true);
        TT_CHECK(tr_link(cx, st->partner) == 0);
        break;
    case U_GO:
        if (st->idx % 2 == 0) { /* unlink, then make it fail */
            TT_CHECK(tr_unlink(cx, st->partner) == 0);
            TT_CHECK(tr_send(cx, st->partner, L_FAIL, NULL, 0) == 0);
        } else { /* make it fail, then unlink: it may already be ending */
            TT_CHECK(tr_send(cx, st->partner, L_FAIL, NULL, 0) == 0);
            TT_CHECK(tr_unlink(cx, st->partner) == 0);
        }
        TT_CHECK(tr_unlink(cx, st->partner) == 0); /* not linked: still 0 */
        break;
    case U_PING:
        atomic_fetch_add(&st->u->pongs, 1);
        break;
    case TR_EXIT:
        atomic_fetch_add(&st->u->exits, 1);
        break;
    default:
        TT_CHECK(!"unlinker: unexpected message");
        break;
    }
}

static void test_unlink_is_final(void)
{
    struct unlinks u = { 0 };
    tr_runtime *rt = tt_runtime(4, 0);
    tr_pid pids[UNLINK_PAIRS];
    for (uint32_t i = 0; i < UNLINK_PAIRS; i++) {
        struct unlinker_state st = { &u, TR_PID_NONE, i, i % 4 < 2 };
        TT_EQ(tr_spawn(tr_runtime_ctx(rt), unlink_partner, NULL, 0, &st.partner), 0);
        TT_EQ(tr_spawn(tr_runtime_ctx(rt), unlinker, &st, sizeof st, &pids[i]), 0);
        TT_EQ(tr_send(tr_runtime_ctx(rt), pids[i], L_LINK, NULL, 0), 0);
    }
    run_quiet(rt);
    TT_EQ(alive(rt), 2 * UNLINK_PAIRS);
    for (uint32_t i = 0; i < UNLINK_PAIRS; i++)
        TT_EQ(tr_send(tr_runtime_ctx(rt), pids[i], U_GO, NULL, 0), 0);
    run_quiet(rt);
    for (uint32_t i = 0; i < UNLINK_PAIRS; i++)
        TT_EQ(tr_send(tr_runtime_ctx(rt), pids[i], U_PING, NULL, 0), 0);
    run_quiet(rt);
    TT_EQ(atomic_load(&u.exits), 0);           /* no trapper heard anything */
    TT_EQ(atomic_load(&u.pongs), UNLINK_PAIRS); /* no non-trapper died */
    TT_EQ(alive(rt), UNLINK_PAIRS);
    TT_NO_ERRORS();
    tr_runtime_destroy(rt);
}

/* ---- KILL cannot be trapped; partners see KILLED --------------------------- */

static void test_kill_untrappable(void)
{
    probes_reset();
    tr_runtime *rt = tt_runtime(2, 0);
    tr_pid t = probe_spawn(rt, 0);  /* trapping, killed with KILL */
    tr_pid p = probe_spawn(rt, 1);  /* trapping, linked to t */
    tr_pid q = probe_spawn(rt, 2);  /* not trapping, linked to t */
    tr_pid r = probe_spawn(rt, 3);  /* trapping, linked to q */
    tr_pid w = probe_spawn(rt, 4);  /* monitors t */
    tr_pid w2 = probe_spawn(rt, 5); /* monitors q */
    tr_pid k = probe_spawn(rt, 6);  /* kills from a behaviour */
    tr_pid x = probe_spawn(rt, 7);  /* trapping, tr_kill'd with 5 */
    tr_pid y = probe_spawn(rt, 8);  /* not trapping, tr_kill'd with 5 */
    tr_pid w3 = probe_spawn(rt, 9); /* monitors y */
    tr_pid t2 = probe_spawn(rt, 10); /* trapping, KILLed by k */
    tr_pid w4 = probe_spawn(rt, 11); /* monitors t2 */
    tr_pid z = probe_spawn(rt, 12); /* calls tr_exit(KILL) itself */
    tr_pid w5 = probe_spawn(rt, 13); /* monitors z */
    cmd(rt, t, P_TRAP, TR_PID_NONE);
    cmd(rt, p, P_TRAP, TR_PID_NONE);
    cmd(rt, r, P_TRAP, TR_PID_NONE);
    cmd(rt, x, P_TRAP, TR_PID_NONE);
    cmd(rt, t2, P_TRAP, TR_PID_NONE);
    run_quiet(rt);
    cmd(rt, p, P_LINK, t);
    cmd(rt, q, P_LINK, t);
    cmd(rt, r, P_LINK, q);
    cmd(rt, w, P_MONITOR, t);
    cmd(rt, w2, P_MONITOR, q);
    cmd(rt, w3, P_MONITOR, y);
    cmd(rt, w4, P_MONITOR, t2);
    cmd(rt, w5, P_MONITOR, z);
    run_quiet(rt);

    TT_EQ(tr_kill(tr_runtime_ctx(rt), t, TR_EXIT_KILL), 0);
    cmd_full(rt, k, P_KILL, t2, TR_EXIT_KILL, 0, NULL);
    run_quiet(rt);
    TT_EQ(probe_get(6).rc, 0);
    TT_EQ(probe_get(0).exits, 0); /* t never saw it as a message */
    TT_EQ(probe_get(10).exits, 0);
    struct probe_rec pr = probe_get(1);
    TT_EQ(pr.exits, 1);
    TT_EQ(pr.exit.pid, t);
    TT_EQ(pr.exit.reason, TR_EXIT_KILLED);
    struct probe_rec wr = probe_get(4);
    TT_EQ(wr.downs, 1);
    TT_EQ(wr.down.reason, TR_EXIT_KILLED);
    wr = probe_get(5); /* q ended with KILLED (not KILL) ... */
    TT_EQ(wr.downs, 1);
    TT_EQ(wr.down.reason, TR_EXIT_KILLED);
    struct probe_rec rr = probe_get(3); /* ... which r could trap */
    TT_EQ(rr.exits, 1);
    TT_EQ(rr.exit.pid, q);
    TT_EQ(rr.exit.reason, TR_EXIT_KILLED);
    wr = probe_get(11);
    TT_EQ(wr.downs, 1);
    TT_EQ(wr.down.pid, t2);
    TT_EQ(wr.down.reason, TR_EXIT_KILLED);

    /* Other reasons through tr_kill: trapped, or the end. */
    cmd_full(rt, k, P_KILL, x, 5, 0, NULL);
    cmd_full(rt, k, P_KILL, y, 5, 0, NULL);
    cmd_exit(rt, z, TR_EXIT_KILL, "suicide");
    run_quiet(rt);
    struct probe_rec xr = probe_get(7);
    TT_EQ(xr.exits, 1);
    TT_EQ(xr.exit.pid, k);
    TT_EQ(xr.exit.reason, 5);
    wr = probe_get(9);
    TT_EQ(wr.downs, 1);
    TT_EQ(wr.down.pid, y);
    TT_EQ(wr.down.reason, 5);
    wr = probe_get(13); /* tr_exit(KILL) is seen as KILLED */
    TT_EQ(wr.downs, 1);
    TT_EQ(wr.down.reason, TR_EXIT_KILLED);
    TT_EQ(alive(rt), 9); /* p, r, w, w2, k, x, w3, w4, w5 */
    TT_NO_ERRORS();
    tr_runtime_destroy(rt);
}

/* ---- payloads: sizes and texts --------------------------------------------- */

static void test_exit_and_down_payloads(void)
{
    probes_reset();
    tr_runtime *rt = tt_runtime(2, 0);
    tr_pid a = probe_spawn(rt, 0);
    tr_pid t = probe_spawn(rt, 1); /* trapping, linked to a */
    tr_pid w = probe_spawn(rt, 2); /* monitors a */
    cmd(rt, t, P_TRAP, TR_PID_NONE);
    run_quiet(rt);
    cmd(rt, t, P_LINK, a);
    cmd(rt, w, P_MONITOR, a);
    run_quiet(rt);
    char longtext[TR_EXIT_TEXT_MAX * 2];
    memset(longtext, 'x', sizeof longtext - 1);
    longtext[sizeof longtext - 1] = '\0';
    cmd_exit(rt, a, 77, longtext);
    run_quiet(rt);
    struct probe_rec tr = probe_get(1), wr = probe_get(2);
    TT_EQ(tr.exits, 1);
    TT_EQ(wr.downs, 1);
    /* The text is cut to TR_EXIT_TEXT_MAX - 1 bytes and terminated. */
    TT_EQ(strnlen(tr.exit.text, TR_EXIT_TEXT_MAX), TR_EXIT_TEXT_MAX - 1);
    TT_EQ(strnlen(wr.down.text, TR_EXIT_TEXT_MAX), TR_EXIT_TEXT_MAX - 1);
    TT_EQ(tr.exit.reason, 77);
    TT_EQ(wr.down.reason, 77);
    TT_EQ(wr.down.ref, probe_get(2).ref);
    /* The documented payloads: a tr_exit_info, a tr_down_info. */
    TT_EQ(tr.exit_len, sizeof(tr_exit_info));
    TT_EQ(wr.down_len, sizeof(tr_down_info));
    TT_NO_ERRORS();
    tr_runtime_destroy(rt);
}

/* ======================================================================
 * monitors
 * ====================================================================== */

enum { MO_MONITOR = 300, MO_DIE };

#define MO_TARGETS 50000u
#define MO_PER_TARGET 2u
#define MO_WATCHERS 100u
#define MO_TOTAL (MO_TARGETS * MO_PER_TARGET)          /* 100,000 monitors */
#define MO_PER_WATCHER (MO_TOTAL / MO_WATCHERS)         /* 1,000 each */
#define MO_GROUPS (MO_WATCHERS / MO_PER_TARGET)         /* watchers w and w + GROUPS share targets */

struct monitors {
    tr_pid targets[MO_TARGETS];
    uint64_t refs[MO_WATCHERS][MO_PER_WATCHER];  /* ascending per watcher */
    atomic_uint downs[MO_WATCHERS][MO_PER_WATCHER];
    atomic_uint unexpected;
};

struct mo_watcher_state {
    struct monitors *mo;
    uint32_t w;
};

static uint32_t mo_target_of(uint32_t w, uint32_t k)
{
    return (w % MO_GROUPS) * MO_PER_WATCHER + k;
}

static int mo_reason(uint32_t t)
{
    return t % 4 == 0 ? TR_EXIT_NORMAL : 1000 + (int)(t % 97);
}

static void mo_target(tr_ctx *cx, void *state, const tr_msg *m)
{
    uint32_t t = *(uint32_t *)state;
    TT_CHECK(m->type == MO_DIE);
    if (mo_reason(t) == TR_EXIT_NORMAL)
        tr_stop(cx);
    else
        tr_exit(cx, mo_reason(t), "down");
}

static void mo_watcher(tr_ctx *cx, void *state, const tr_msg *m)
{
    struct mo_watcher_state *st = state;
    struct monitors *mo = st->mo;
    if (m->type == MO_MONITOR) {
        for (uint32_t k = 0; k < MO_PER_WATCHER; k++) {
            TT_CHECK(tr_monitor(cx, mo->targets[mo_target_of(st->w, k)], &mo->refs[st->w][k]) == 0);
            TT_CHECK(k == 0 || mo->refs[st->w][k] > mo->refs[st->w][k - 1]);
        }
    } else if (m->type == TR_DOWN) {
        const tr_down_info *d = (const tr_down_info *)m->data;
        long k = ref_index(mo->refs[st->w], MO_PER_WATCHER, d->ref);
        TT_CHECK(k >= 0);
        if (k < 0)
            return;
        uint32_t t = mo_target_of(st->w, (uint32_t)k);
        TT_CHECK(d->pid == mo->targets[t]);
        TT_CHECK(d->reason == mo_reason(t));
        TT_CHECK(text_is(d->text, mo_reason(t) == TR_EXIT_NORMAL ? "" : "down"));
        atomic_fetch_add(&mo->downs[st->w][k], 1);
    } else {
        atomic_fetch_add(&mo->unexpected, 1);
    }
}

/* 50,000 targets, each monitored by two of 100 watchers (100,000 monitors);
 * the targets all exit at once on 4 workers, some normally. */
static void test_monitors_100k(void)
{
    struct monitors *mo = calloc(1, sizeof *mo);
    CU_ASSERT_FATAL(mo != NULL);
    tr_runtime *rt = tt_runtime(4, 0);
    for (uint32_t t = 0; t < MO_TARGETS; t++)
        TT_EQ(tr_spawn(tr_runtime_ctx(rt), mo_target, &t, sizeof t, &mo->targets[t]), 0);
    for (uint32_t w = 0; w < MO_WATCHERS; w++) {
        struct mo_watcher_state st = { mo, w };
        tr_pid p;
        TT_EQ(tr_spawn(tr_runtime_ctx(rt), mo_watcher, &st, sizeof st, &p), 0);
        TT_EQ(tr_send(tr_runtime_ctx(rt), p, MO_MONITOR, NULL, 0), 0);
    }
    run_quiet(rt);
    for (uint32_t t = 0; t < MO_TARGETS; t++)
        TT_EQ(tr_send(tr_runtime_ctx(rt), mo->targets[t], MO_DIE, NULL, 0), 0);
    run_quiet(rt);
    unsigned missing = 0, extra = 0;
    for (uint32_t w = 0; w < MO_WATCHERS; w++) {
        for (uint32_t k = 0; k < MO_PER_WATCHER; k++) {
            unsigned d = atomic_load(&mo->downs[w][k]);
            missing += d == 0;
            extra += d > 1;
        }
    }
    TT_EQ(missing, 0);
    TT_EQ(extra, 0);
    TT_EQ(atomic_load(&mo->unexpected), 0);
    TT_EQ(alive(rt), MO_WATCHERS);
    TT_NO_ERRORS();
    tr_runtime_destroy(rt);
    free(mo);
}

/* ---- demonitor before the exit: no TR_DOWN ---------------------------------- */

#define DM_TARGETS 1000u

struct demon {
    tr_pid targets[DM_TARGETS];
    tr_pid control;         /* monitored and never demonitored */
    uint64_t control_ref;
    atomic_uint downs, control_downs;
};

enum { DM_SETUP = 400, DM_DIE };

static void dm_target(tr_ctx *cx, void *state, const tr_msg *m)
{
    (void)state;
    TT_CHECK(m->type == DM_DIE);
    tr_exit(cx, 3, "bye");
}

static void dm_watcher(tr_ctx *cx, void *state, const tr_msg *m)
{
    struct demon *dm = *(struct demon **)state;
    if (m->type == DM_SETUP) {
        for (uint32_t i = 0; i < DM_TARGETS; i++) {
            uint64_t ref;
            TT_CHECK(tr_monitor(cx, dm->targets[i], &ref) == 0);
            if (i % 2 == 1) /* tell it to end first: it may end meanwhile */
                TT_CHECK(tr_send(cx, dm->targets[i], DM_DIE, NULL, 0) == 0);
            TT_CHECK(tr_demonitor(cx, ref) == 0);
            TT_CHECK(tr_demonitor(cx, ref) == TR_EINVAL); /* already gone */
        }
        TT_CHECK(tr_monitor(cx, dm->control, &dm->control_ref) == 0);
        TT_CHECK(tr_demonitor(cx, dm->control_ref + 1000000) == TR_EINVAL);
    } else if (m->type == TR_DOWN) {
        const tr_down_info *d = (const tr_down_info *)m->data;
        if (d->ref == dm->control_ref && d->pid == dm->control)
            atomic_fetch_add(&dm->control_downs, 1);
        else
            atomic_fetch_add(&dm->downs, 1);
    }
}

static void test_demonitor_before_exit(void)
{
    struct demon *dm = calloc(1, sizeof *dm);
    CU_ASSERT_FATAL(dm != NULL);
    tr_runtime *rt = tt_runtime(4, 0);
    for (uint32_t i = 0; i < DM_TARGETS; i++)
        TT_EQ(tr_spawn(tr_runtime_ctx(rt), dm_target, NULL, 0, &dm->targets[i]), 0);
    TT_EQ(tr_spawn(tr_runtime_ctx(rt), dm_target, NULL, 0, &dm->control), 0);
    tr_pid w;
    TT_EQ(tr_spawn(tr_runtime_ctx(rt), dm_watcher, &dm, sizeof dm, &w), 0);
    TT_EQ(tr_send(tr_runtime_ctx(rt), w, DM_SETUP, NULL, 0), 0);
    run_quiet(rt);
    for (uint32_t i = 0; i < DM_TARGETS; i += 2)
        TT_EQ(tr_send(tr_runtime_ctx(rt), dm->targets[i], DM_DIE, NULL, 0), 0);
    TT_EQ(tr_send(tr_runtime_ctx(rt), dm->control, DM_DIE, NULL, 0), 0);
    run_quiet(rt);
    TT_EQ(atomic_load(&dm->downs), 0);
    TT_EQ(atomic_load(&dm->control_downs), 1);
    TT_EQ(alive(rt), 1);
    TT_EQ(tr_demonitor(NULL, 1), TR_EINVAL);
    TT_EQ(tr_monitor(NULL, w, NULL), TR_EINVAL);
    TT_NO_ERRORS();
    tr_runtime_destroy(rt);
    free(dm);
}

/* ---- demonitor with the TR_DOWN already queued: flushed ---------------------
 *
 * Per round, with the runtime running:
 *   1. the watcher W monitors a fresh target T, then a helper H does, and
 *      T answers a ping (so that T is not left in the LIFO slot of W's
 *      worker, where W's monitoring readied it: a turn that spins, as W's
 *      does next, holds up what waits in its worker's LIFO slot);
 *   2. W is sent WAIT and, in that turn, spins until H has received its
 *      TR_DOWN for T;
 *   3. the test thread tells T to end. T tells its watchers in the order
 *      they monitored it, so W's TR_DOWN is in W's mailbox (behind WAIT)
 *      before H's is sent, hence before W stops spinning;
 *   4. W demonitors, and sends itself CHECK, which queues behind the TR_DOWN.
 * The TR_DOWN must never reach W's behaviour. */

#define FL_ROUNDS 100u

enum { FL_MONITOR = 500, FL_WAIT, FL_CHECK, FL_DIE, FL_PING };

struct flush {
    tr_pid target;         /* this round's */
    uint64_t ref;          /* W's monitor of it */
    atomic_int w_monitored, h_monitored, t_pinged, w_waiting, h_down, checked;
    atomic_uint w_downs;   /* TR_DOWNs delivered to W: must stay 0 */
    atomic_uint h_downs;   /* and to H: one per round */
    atomic_uint timeouts;  /* W gave up waiting for H */
};

static void fl_target(tr_ctx *cx, void *state, const tr_msg *m)
{
    struct flush *fl = *(struct flush **)state;
    if (m->type == FL_PING)
        atomic_store(&fl->t_pinged, 1);
    else if (m->type == FL_DIE)
        tr_exit(cx, 11, "flushed");
}

static void fl_watcher(tr_ctx *cx, void *state, const tr_msg *m)
{
    struct flush *fl = *(struct flush **)state;
    switch (m->type) {
    case FL_MONITOR:
        TT_CHECK(tr_monitor(cx, fl->target, &fl->ref) == 0);
        atomic_store(&fl->w_monitored, 1);
        break;
    case FL_WAIT:
        atomic_store(&fl->w_waiting, 1);
        if (!wait_flag(&fl->h_down, 10.0))
            atomic_fetch_add(&fl->timeouts, 1);
        TT_CHECK(tr_demonitor(cx, fl->ref) == 0);
        TT_CHECK(tr_send(cx, tr_self(cx), FL_CHECK, NULL, 0) == 0);
        break;
    case FL_CHECK:
        atomic_store(&fl->checked, 1);
        break;
    case TR_DOWN:
        atomic_fetch_add(&fl->w_downs, 1);
        break;
    default:
        TT_CHECK(!"fl_watcher: unexpected message");
        break;
    }
}

static void fl_helper(tr_ctx *cx, void *state, const tr_msg *m)
{
    struct flush *fl = *(struct flush **)state;
    if (m->type == FL_MONITOR) {
        TT_CHECK(tr_monitor(cx, fl->target, NULL) == 0);
        atomic_store(&fl->h_monitored, 1);
    } else if (m->type == TR_DOWN) {
        const tr_down_info *d = (const tr_down_info *)m->data;
        TT_CHECK(d->pid == fl->target && d->reason == 11);
        atomic_fetch_add(&fl->h_downs, 1);
        atomic_store(&fl->h_down, 1);
    }
}

static void test_demonitor_flushes_queued_down(void)
{
    struct flush *fl = calloc(1, sizeof *fl);
    CU_ASSERT_FATAL(fl != NULL);
    tr_runtime *rt = tt_runtime(4, 0);
    tr_pid w, h;
    TT_EQ(tr_spawn(tr_runtime_ctx(rt), fl_watcher, &fl, sizeof fl, &w), 0);
    TT_EQ(tr_spawn(tr_runtime_ctx(rt), fl_helper, &fl, sizeof fl, &h), 0);
    TT_EQ(tr_runtime_hold(rt), 0);
    TT_EQ(tr_runtime_start(rt), 0);
    for (uint32_t r = 0; r < FL_ROUNDS; r++) {
        atomic_store(&fl->w_monitored, 0);
        atomic_store(&fl->h_monitored, 0);
        atomic_store(&fl->t_pinged, 0);
        atomic_store(&fl->w_waiting, 0);
        atomic_store(&fl->h_down, 0);
        atomic_store(&fl->checked, 0);
        TT_EQ(tr_spawn(tr_runtime_ctx(rt), fl_target, &fl, sizeof fl, &fl->target), 0);
        TT_EQ(tr_send(tr_runtime_ctx(rt), w, FL_MONITOR, NULL, 0), 0);
        CU_ASSERT_FATAL(wait_flag(&fl->w_monitored, 10.0));
        TT_EQ(tr_send(tr_runtime_ctx(rt), h, FL_MONITOR, NULL, 0), 0);
        CU_ASSERT_FATAL(wait_flag(&fl->h_monitored, 10.0));
        TT_EQ(tr_send(tr_runtime_ctx(rt), fl->target, FL_PING, NULL, 0), 0);
        CU_ASSERT_FATAL(wait_flag(&fl->t_pinged, 10.0));
        TT_EQ(tr_send(tr_runtime_ctx(rt), w, FL_WAIT, NULL, 0), 0);
        CU_ASSERT_FATAL(wait_flag(&fl->w_waiting, 10.0));
        TT_EQ(tr_send(tr_runtime_ctx(rt), fl->target, FL_DIE, NULL, 0), 0);
        CU_ASSERT_FATAL(wait_flag(&fl->checked, 20.0));
    }
    TT_EQ(tr_runtime_release(rt), 0);
    TT_EQ(tr_runtime_join(rt), 0);
    TT_EQ(atomic_load(&fl->timeouts), 0);
    TT_EQ(atomic_load(&fl->h_downs), FL_ROUNDS);
    TT_EQ(atomic_load(&fl->w_downs), 0);
    TT_NO_ERRORS();
    tr_runtime_destroy(rt);
    free(fl);
}

/* ---- monitoring a dead pid: one noproc TR_DOWN per monitor ------------------ */

static void test_monitor_dead_pid(void)
{
    probes_reset();
    tr_runtime *rt = tt_runtime(2, 0);
    tr_pid dead = probe_spawn(rt, 0);
    tr_pid w = probe_spawn(rt, 1);
    tr_pid live = probe_spawn(rt, 2);
    cmd_exit(rt, dead, 4, NULL);
    run_quiet(rt);

    cmd(rt, w, P_MONITOR, dead);
    run_quiet(rt);
    struct probe_rec r = probe_get(1);
    TT_EQ(r.rc, 0);
    TT_EQ(r.downs, 1);
    TT_EQ(r.down.ref, r.ref);
    TT_EQ(r.down.pid, dead);
    TT_EQ(r.down.reason, TR_EXIT_NOPROC);
    /* Demonitoring it now: the monitor is over. */
    cmd_full(rt, w, P_DEMONITOR, TR_PID_NONE, 0, r.ref, NULL);
    run_quiet(rt);
    TT_EQ(probe_get(1).rc, TR_EINVAL);

    /* A second monitor of the same dead pid: one more, with its own ref. */
    uint64_t first = r.ref;
    cmd(rt, w, P_MONITOR, dead);
    run_quiet(rt);
    r = probe_get(1);
    TT_EQ(r.downs, 2);
    CU_ASSERT(r.ref != first);
    TT_EQ(r.down.ref, r.ref);
    TT_EQ(r.down.reason, TR_EXIT_NOPROC);

    /* A pid never issued is an error, and leaves nothing behind. */
    cmd(rt, w, P_MONITOR, NEVER_ISSUED);
    run_quiet(rt);
    TT_EQ(probe_get(1).rc, TR_ENOPID);

    /* Two monitors of one live actor: two TR_DOWNs with its reason. */
    cmd(rt, w, P_MONITOR, live);
    cmd(rt, w, P_MONITOR, live);
    run_quiet(rt);
    cmd_exit(rt, live, 8, "two");
    run_quiet(rt);
    r = probe_get(1);
    TT_EQ(r.downs, 4);
    TT_EQ(r.down.pid, live);
    TT_EQ(r.down.reason, 8);
    TT_EQ(alive(rt), 1);
    TT_NO_ERRORS();
    tr_runtime_destroy(rt);
}

/* ---- a watcher that ends takes its monitors with it ---------------------------
 *
 * A long-lived actor monitored by many short-lived ones (a server and its
 * clients) must not keep a record of every watcher that ever came and went:
 * when a watcher ends, its monitors end too. Observed through the dead
 * letters: once the watchers are gone, the server's own end must not send
 * TR_DOWNs to them. */

#define SHORT_WATCHERS 10000u

enum { SW_WATCH = 600, SW_DIE };

static void sw_server(tr_ctx *cx, void *state, const tr_msg *m)
{
    (void)state;
    if (m->type == SW_DIE)
        tr_stop(cx);
}

static void sw_client(tr_ctx *cx, void *state, const tr_msg *m)
{
    tr_pid server = *(tr_pid *)state;
    if (m->type == SW_WATCH) {
        TT_CHECK(tr_monitor(cx, server, NULL) == 0);
        tr_stop(cx); /* done with the server */
    }
}

static void test_dead_watchers_monitors_dropped(void)
{
    tr_runtime *rt = tt_runtime(4, 0);
    tr_pid server;
    TT_EQ(tr_spawn(tr_runtime_ctx(rt), sw_server, NULL, 0, &server), 0);
    for (uint32_t i = 0; i < SHORT_WATCHERS; i++) {
        tr_pid c;
        TT_EQ(tr_spawn(tr_runtime_ctx(rt), sw_client, &server, sizeof server, &c), 0);
        TT_EQ(tr_send(tr_runtime_ctx(rt), c, SW_WATCH, NULL, 0), 0);
    }
    run_quiet(rt);
    TT_EQ(alive(rt), 1);
    tr_stats before, after;
    tr_runtime_stats(rt, &before);
    TT_EQ(tr_send(tr_runtime_ctx(rt), server, SW_DIE, NULL, 0), 0);
    run_quiet(rt);
    tr_runtime_stats(rt, &after);
    TT_EQ(after.dead_letters - before.dead_letters, 0);
    TT_NO_ERRORS();
    tr_runtime_destroy(rt);
}

/* ---- dead letters reach the sink ---------------------------------------- */

enum { DL_STOP = 1, DL_PAYLOAD = 2 };

typedef struct dl_sink {
    atomic_uint seen, right_type, right_to, right_bytes;
    tr_pid target;
} dl_sink;

static void dl_sink_behaviour(tr_ctx *cx, void *state, const tr_msg *m)
{
    (void)cx;
    dl_sink *s = *(dl_sink **)state;
    if (m->type != TR_DEAD_LETTER)
        return;
    tr_dead_letter d;
    TT_CHECK(m->len >= sizeof d);
    memcpy(&d, m->data, sizeof d);
    atomic_fetch_add(&s->seen, 1);
    if (d.type == DL_PAYLOAD)
        atomic_fetch_add(&s->right_type, 1);
    if (d.to == s->target)
        atomic_fetch_add(&s->right_to, 1);
    if (d.len == 300 && m->len == sizeof d + TR_DEAD_LETTER_DATA &&
        m->data[sizeof d] == 'x' && m->data[sizeof d + TR_DEAD_LETTER_DATA - 1] == 'x')
        atomic_fetch_add(&s->right_bytes, 1);
}

static void dl_target(tr_ctx *cx, void *state, const tr_msg *m)
{
    (void)state;
    if (m->type == DL_STOP)
        tr_stop(cx);
}

/* Every dead letter is counted, and with a sink each arrives there once,
 * with its header and the first 256 bytes of its payload. */
static void test_dead_letter_sink(void)
{
    tr_runtime *rt = tt_runtime(2, 0);
    dl_sink s = {0};
    dl_sink *sp = &s;
    tr_pid sink, target;
    CU_ASSERT_FATAL(tr_spawn(tr_runtime_ctx(rt), dl_sink_behaviour, &sp, sizeof sp, &sink) == 0);
    CU_ASSERT_FATAL(tr_spawn(tr_runtime_ctx(rt), dl_target, NULL, 0, &target) == 0);
    s.target = target;
    TT_EQ(tr_runtime_dead_letters(rt, sink), 0);
    TT_EQ(tr_send(tr_runtime_ctx(rt), target, DL_STOP, NULL, 0), 0);
    TT_EQ(tr_runtime_run(rt), 0);
    char payload[300];
    memset(payload, 'x', sizeof payload);
    enum { N = 1000 };
    for (int i = 0; i < N; i++)
        TT_EQ(tr_send(tr_runtime_ctx(rt), target, DL_PAYLOAD, payload, sizeof payload), 0);
    TT_EQ(tr_runtime_run(rt), 0);
    tr_stats st;
    tr_runtime_stats(rt, &st);
    TT_EQ(st.dead_letters, N);
    TT_EQ(atomic_load(&s.seen), N);
    TT_EQ(atomic_load(&s.right_type), N);
    TT_EQ(atomic_load(&s.right_to), N);
    TT_EQ(atomic_load(&s.right_bytes), N);
    TT_NO_ERRORS();
    /* Off again: counted only. */
    TT_EQ(tr_runtime_dead_letters(rt, TR_PID_NONE), 0);
    TT_EQ(tr_send(tr_runtime_ctx(rt), target, DL_PAYLOAD, payload, 10), 0);
    TT_EQ(tr_runtime_run(rt), 0);
    TT_EQ(atomic_load(&s.seen), N);
    tr_runtime_destroy(rt);
}

/* A link asked again, crossing the other end's unlink: B, linked to A,
 * asks A to unlink it and then links to A again in the same turn; A's
 * mailbox has the unlink's cause ahead of B's link request. The link must
 * end whole or gone at both ends. (B's request went out though B was
 * linked: A unlinked, then took the request and linked again, while B
 * took A's unlink — A linked to B, B not to A, and A never heard of B's
 * end.) */
enum { RL_GO = 0x7101, RL_UNLINK_ME, RL_LINKED, RL_PING };
static _Atomic tr_pid rl_a, rl_bpid;
static atomic_bool rl_pinged;

static void rl_b(tr_ctx *cx, void *state, const tr_msg *m)
{
    (void)state;
    if (m->type == RL_GO) {
        tr_pid a = atomic_load(&rl_a);
        TT_CHECK(tr_send(cx, a, RL_UNLINK_ME, NULL, 0) == 0);
        TT_CHECK(tr_link(cx, a) == 0); /* linked already */
        TT_CHECK(tr_send(cx, a, RL_LINKED, NULL, 0) == 0);
    } else if (m->type == RL_PING) {
        atomic_store(&rl_pinged, true); /* A's unlink is handled by now */
    }
}

static void rl_a_behaviour(tr_ctx *cx, void *state, const tr_msg *m)
{
    (void)state;
    if (m->type == RL_GO) { /* linked at the spawn, both ends at once */
        tr_pid b;
        TT_CHECK(tr_spawn_link(cx, rl_b, NULL, 0, &b) == 0);
        atomic_store(&rl_bpid, b);
        TT_CHECK(tr_send(cx, b, RL_GO, NULL, 0) == 0);
    } else if (m->type == RL_UNLINK_ME) {
        TT_CHECK(tr_unlink(cx, m->from) == 0);
    } else if (m->type == RL_LINKED) {
        TT_CHECK(tr_send(cx, m->from, RL_PING, NULL, 0) == 0);
    }
}

static void test_relink_crossing_an_unlink(void)
{
    tr_runtime *rt = tt_runtime(2, 0);
    tr_pid a;
    TT_EQ(tr_spawn(tr_runtime_ctx(rt), rl_a_behaviour, NULL, 0, &a), 0);
    atomic_store(&rl_a, a);
    atomic_store(&rl_bpid, TR_PID_NONE);
    atomic_store(&rl_pinged, false);
    TT_EQ(tr_runtime_hold(rt), 0);
    TT_EQ(tr_runtime_start(rt), 0);
    TT_EQ(tr_send(tr_runtime_ctx(rt), a, RL_GO, NULL, 0), 0);
    CU_ASSERT_FATAL(tt_wait_flag(&rl_pinged, 60));
    tr_actor_figures fa, fb;
    TT_EQ(tr_actor_info(rt, a, &fa), 0);
    TT_EQ(tr_actor_info(rt, atomic_load(&rl_bpid), &fb), 0);
    TT_EQ(fa.links, 0);
    TT_EQ(fb.links, 0);
    TT_EQ(tr_runtime_release(rt), 0);
    tr_runtime_shutdown(rt);
    TT_EQ(tt_join_within(rt, 60), 1);
    TT_NO_ERRORS();
    tr_runtime_destroy(rt);
}

/* An unlink and a new link crossing the other end's unlink: A, linked to
 * B, sends B UX_CROSS and unlinks it in one turn; B takes UX_CROSS first
 * and unlinks A and links it again in one turn, then takes A's unlink.
 * With ids (fault.h) both ends end up unlinked, and a later tr_link from
 * A links both ends again: B's end reaches A as TR_EXIT before the
 * monitor's TR_DOWN (B sends them in that order). Without them, B's new
 * link request found A unlinked and was taken, while A's unlink undid B's
 * new link: A linked to B and B not to A, A's tr_link a no-op and B's end
 * never heard. */
enum { UX_GO = 0x7111, UX_CROSS, UX_DONE, UX_SYNC, UX_SYNCED, UX_DIE };
static _Atomic tr_pid ux_a, ux_b;
static atomic_int ux_links_a, ux_links_b, ux_exit_reason;
static atomic_bool ux_exit_first, ux_done;

static void ux_b_behaviour(tr_ctx *cx, void *state, const tr_msg *m)
{
    (void)state;
    tr_pid a = atomic_load(&ux_a);
    if (m->type == UX_CROSS) {
        TT_CHECK(tr_unlink(cx, a) == 0);
        TT_CHECK(tr_link(cx, a) == 0);
        TT_CHECK(tr_send(cx, a, UX_DONE, NULL, 0) == 0);
    } else if (m->type == UX_SYNC) { /* A's unlink and B's acks are taken by now */
        TT_CHECK(tr_send(cx, a, UX_SYNCED, NULL, 0) == 0);
    } else if (m->type == UX_DIE) {
        tr_exit(cx, 5, "asked to");
    }
}

static void ux_a_behaviour(tr_ctx *cx, void *state, const tr_msg *m)
{
    (void)state;
    tr_pid b = atomic_load(&ux_b);
    if (m->type == UX_GO) {
        TT_CHECK(tr_spawn_link(cx, ux_b_behaviour, NULL, 0, &b) == 0);
        atomic_store(&ux_b, b);
        TT_CHECK(tr_send(cx, b, UX_CROSS, NULL, 0) == 0);
        TT_CHECK(tr_unlink(cx, b) == 0);
    } else if (m->type == UX_DONE) {
        TT_CHECK(tr_send(cx, b, UX_SYNC, NULL, 0) == 0);
    } else if (m->type == UX_SYNCED) { /* settled: each end has taken all the other sent */
        tr_actor_figures fa, fb;
        TT_CHECK(tr_actor_info(tr_ctx_runtime(cx), tr_self(cx), &fa) == 0);
        TT_CHECK(tr_actor_info(tr_ctx_runtime(cx), b, &fb) == 0);
        atomic_store(&ux_links_a, (int)fa.links);
        atomic_store(&ux_links_b, (int)fb.links);
        tr_trap_exits(cx, true);
        uint64_t ref;
        TT_CHECK(tr_link(cx, b) == 0);
        TT_CHECK(tr_monitor(cx, b, &ref) == 0);
        TT_CHECK(tr_send(cx, b, UX_DIE, NULL, 0) == 0);
    } else if (m->type == TR_EXIT) {
        const tr_exit_info *e = TR_PAYLOAD(m, tr_exit_info);
        TT_CHECK(e != NULL && e->pid == b);
        atomic_store(&ux_exit_reason, e != NULL ? e->reason : -100);
        atomic_store(&ux_exit_first, true);
    } else if (m->type == TR_DOWN) {
        atomic_store(&ux_done, true);
        tr_stop(cx);
    }
}

static void test_unlink_and_link_crossing_an_unlink(void)
{
    tr_runtime *rt = tt_runtime(2, 0);
    tr_pid a;
    TT_EQ(tr_spawn(tr_runtime_ctx(rt), ux_a_behaviour, NULL, 0, &a), 0);
    atomic_store(&ux_a, a);
    atomic_store(&ux_b, TR_PID_NONE);
    atomic_store(&ux_links_a, -1);
    atomic_store(&ux_links_b, -1);
    atomic_store(&ux_exit_reason, -100);
    atomic_store(&ux_exit_first, false);
    atomic_store(&ux_done, false);
    TT_EQ(tr_send(tr_runtime_ctx(rt), a, UX_GO, NULL, 0), 0);
    TT_EQ(tr_runtime_run(rt), 0);
    TT_EQ(atomic_load(&ux_done), true);
    TT_EQ(atomic_load(&ux_links_a), 0); /* gone at both ends */
    TT_EQ(atomic_load(&ux_links_b), 0);
    TT_EQ(atomic_load(&ux_exit_first), true); /* linked again at both ends */
    TT_EQ(atomic_load(&ux_exit_reason), 5);
    TT_NO_ERRORS();
    tr_runtime_destroy(rt);
}

/* ---- one actor with thousands of links and monitors ------------------------ */

/* P links to ML_N children and monitors ML_N targets (past the few a scan
 * finds, so its lists are indexed: actors/keyed.h), unlinks and
 * demonitors every third in a shuffled order, then kills them all in
 * another: a TR_EXIT comes from each child still linked and a TR_DOWN
 * with its own ref from each target still monitored, once each, and
 * nothing from the rest; P's counts follow each step and end at 0. */
#define ML_N 3000u
enum { ML_GO = 0x7211, ML_KILL };

struct ml_key {
    uint64_t key;
    uint32_t at;
};

struct many_links {
    tr_pid kids[ML_N], targets[ML_N];
    uint64_t refs[ML_N];
    struct ml_key kid_at[ML_N], ref_at[ML_N]; /* sorted, for the lookups */
    uint32_t order[ML_N];
    atomic_uint exits[ML_N], downs[ML_N];
    atomic_uint unexpected;
    unsigned links_set, monitors_set, links_cut, monitors_cut;
};

static int ml_key_cmp(const void *a, const void *b)
{
    uint64_t x = ((const struct ml_key *)a)->key, y = ((const struct ml_key *)b)->key;
    return (x > y) - (x < y);
}

static int ml_find(const struct ml_key *keys, uint64_t key)
{
    struct ml_key want = {key, 0};
    const struct ml_key *k = bsearch(&want, keys, ML_N, sizeof *keys, ml_key_cmp);
    return k != NULL ? (int)k->at : -1;
}

/* order: a permutation of 0..ML_N-1 from seed (a Fisher-Yates shuffle on
 * a fixed LCG: the same order every run). */
static void ml_shuffle(uint32_t *order, uint64_t seed)
{
    for (uint32_t i = 0; i < ML_N; i++)
        order[i] = i;
    for (uint32_t i = ML_N - 1; i > 0; i--) {
        seed = seed * 6364136223846793005u + 1442695040888963407u;
        uint32_t j = (uint32_t)((seed >> 33) % (i + 1));
        uint32_t t = order[i];
        order[i] = order[j];
        order[j] = t;
    }
}

static void ml_idle(tr_ctx *cx, void *state, const tr_msg *m)
{
    (void)cx, (void)state, (void)m;
}

static void ml_counts(tr_ctx *cx, unsigned *links, unsigned *monitors)
{
    tr_actor_figures f;
    TT_CHECK(tr_actor_info(tr_ctx_runtime(cx), tr_self(cx), &f) == 0);
    *links = (unsigned)f.links;
    *monitors = (unsigned)f.monitors;
}

static void ml_parent(tr_ctx *cx, void *state, const tr_msg *m)
{
    struct many_links *ml = *(struct many_links **)state;
    if (m->type == ML_GO) {
        tr_trap_exits(cx, true);
        for (uint32_t i = 0; i < ML_N; i++) {
            TT_CHECK(tr_spawn_link(cx, ml_idle, NULL, 0, &ml->kids[i]) == 0);
            TT_CHECK(tr_spawn(cx, ml_idle, NULL, 0, &ml->targets[i]) == 0);
            TT_CHECK(tr_monitor(cx, ml->targets[i], &ml->refs[i]) == 0);
            ml->kid_at[i] = (struct ml_key){ml->kids[i], i};
            ml->ref_at[i] = (struct ml_key){ml->refs[i], i};
        }
        qsort(ml->kid_at, ML_N, sizeof ml->kid_at[0], ml_key_cmp);
        qsort(ml->ref_at, ML_N, sizeof ml->ref_at[0], ml_key_cmp);
        ml_counts(cx, &ml->links_set, &ml->monitors_set);
        ml_shuffle(ml->order, 1);
        for (uint32_t k = 0; k < ML_N; k++) {
            uint32_t i = ml->order[k];
            if (i % 3 == 0) {
                TT_CHECK(tr_unlink(cx, ml->kids[i]) == 0);
                TT_CHECK(tr_demonitor(cx, ml->refs[i]) == 0);
            }
        }
        ml_counts(cx, &ml->links_cut, &ml->monitors_cut);
        TT_CHECK(tr_send(cx, tr_self(cx), ML_KILL, NULL, 0) == 0);
    } else if (m->type == ML_KILL) {
        ml_shuffle(ml->order, 2);
        for (uint32_t k = 0; k < ML_N; k++) {
            uint32_t i = ml->order[k];
            TT_CHECK(tr_kill(cx, ml->kids[i], 9) == 0);
            TT_CHECK(tr_kill(cx, ml->targets[i], 9) == 0);
        }
    } else if (m->type == TR_EXIT) {
        const tr_exit_info *e = TR_PAYLOAD(m, tr_exit_info);
        int i = e != NULL && e->reason == 9 ? ml_find(ml->kid_at, e->pid) : -1;
        if (i >= 0)
            atomic_fetch_add(&ml->exits[i], 1);
        else
            atomic_fetch_add(&ml->unexpected, 1);
    } else if (m->type == TR_DOWN) {
        const tr_down_info *d = TR_PAYLOAD(m, tr_down_info);
        int i = d != NULL && d->reason == 9 ? ml_find(ml->ref_at, d->ref) : -1;
        if (i >= 0 && ml->targets[i] == d->pid)
            atomic_fetch_add(&ml->downs[i], 1);
        else
            atomic_fetch_add(&ml->unexpected, 1);
    }
}

static void test_thousands_of_links_and_monitors(void)
{
    struct many_links *ml = calloc(1, sizeof *ml);
    CU_ASSERT_FATAL(ml != NULL);
    tr_runtime *rt = tt_runtime(2, 0);
    tr_pid p;
    TT_EQ(tr_spawn(tr_runtime_ctx(rt), ml_parent, &ml, sizeof ml, &p), 0);
    TT_EQ(tr_send(tr_runtime_ctx(rt), p, ML_GO, NULL, 0), 0);
    run_quiet(rt);
    unsigned cut = (ML_N + 2) / 3, wrong = 0;
    for (uint32_t i = 0; i < ML_N; i++) {
        unsigned want = i % 3 != 0;
        wrong += atomic_load(&ml->exits[i]) != want;
        wrong += atomic_load(&ml->downs[i]) != want;
    }
    TT_EQ(wrong, 0);
    TT_EQ(atomic_load(&ml->unexpected), 0);
    TT_EQ(ml->links_set, ML_N);
    TT_EQ(ml->monitors_set, ML_N);
    TT_EQ(ml->links_cut, ML_N - cut);
    TT_EQ(ml->monitors_cut, ML_N - cut);
    tr_actor_figures f;
    TT_EQ(tr_actor_info(rt, p, &f), 0);
    TT_EQ(f.links, 0);
    TT_EQ(f.monitors, 0);
    TT_EQ(alive(rt), 1);
    TT_NO_ERRORS();
    tr_runtime_destroy(rt);
    free(ml);
}

/* A trapping actor's count of links drops when a linked child's exit
 * arrives as TR_EXIT (the signal is rewritten as it is handled; the count
 * was looked at after, under the new type, and stayed at 1). */
enum { TC_GO = 0x7311 };

static void tc_child(tr_ctx *cx, void *state, const tr_msg *m)
{
    (void)state, (void)m;
    tr_exit(cx, 3, "done");
}

static void tc_parent(tr_ctx *cx, void *state, const tr_msg *m)
{
    atomic_int *exits = *(atomic_int **)state;
    if (m->type == TC_GO) {
        tr_trap_exits(cx, true);
        tr_pid c;
        TT_CHECK(tr_spawn_link(cx, tc_child, NULL, 0, &c) == 0);
        TT_CHECK(tr_send(cx, c, TC_GO, NULL, 0) == 0);
    } else if (m->type == TR_EXIT) {
        atomic_fetch_add(exits, 1);
    }
}

static void test_trapped_exit_counts_the_link_out(void)
{
    atomic_int exits = 0;
    atomic_int *at = &exits;
    tr_runtime *rt = tt_runtime(2, 0);
    tr_pid p;
    TT_EQ(tr_spawn(tr_runtime_ctx(rt), tc_parent, &at, sizeof at, &p), 0);
    TT_EQ(tr_send(tr_runtime_ctx(rt), p, TC_GO, NULL, 0), 0);
    run_quiet(rt);
    TT_EQ(atomic_load(&exits), 1);
    tr_actor_figures f;
    TT_EQ(tr_actor_info(rt, p, &f), 0);
    TT_EQ(f.links, 0);
    TT_NO_ERRORS();
    tr_runtime_destroy(rt);
}

void register_fault_tests(void)
{
    CU_pSuite s = tt_suite("fault");
    tt_test(s, "link_chain_10k_fails_as_one", test_link_chain_10k);
    tt_test(s, "trappers_get_one_exit_each", test_trappers_get_one_exit_each);
    tt_test(s, "link_to_dead_pid_noproc", test_link_to_dead_pid);
    tt_test(s, "relink_crossing_an_unlink_leaves_no_half_link", test_relink_crossing_an_unlink);
    tt_test(s, "unlink_and_link_crossing_an_unlink_leave_both_ends_alike",
            test_unlink_and_link_crossing_an_unlink);
    tt_test(s, "link_racing_with_exit_one_signal", test_link_racing_with_exit);
    tt_test(s, "spawn_link_atomic", test_spawn_link_atomic);
    tt_test(s, "normal_exit_spares_links", test_normal_exit_spares_links);
    tt_test(s, "unlink_is_final", test_unlink_is_final);
    tt_test(s, "kill_cannot_be_trapped", test_kill_untrappable);
    tt_test(s, "exit_and_down_payloads", test_exit_and_down_payloads);
    tt_test(s, "monitors_100k_concurrent_exits", test_monitors_100k);
    tt_test(s, "demonitor_before_exit", test_demonitor_before_exit);
    tt_test(s, "demonitor_flushes_queued_down", test_demonitor_flushes_queued_down);
    tt_test(s, "monitor_dead_pid_noproc", test_monitor_dead_pid);
    tt_test(s, "dead_watchers_monitors_dropped", test_dead_watchers_monitors_dropped);
    tt_test(s, "dead_letter_sink", test_dead_letter_sink);
    tt_test(s, "trapped_exit_counts_the_link_out", test_trapped_exit_counts_the_link_out);
    tt_test(s, "thousands_of_links_and_monitors_each_signal_once",
            test_thousands_of_links_and_monitors);
}
