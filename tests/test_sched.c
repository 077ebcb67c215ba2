/* test_sched.c — the scheduler under load: a token ring, many external
 * senders into one actor, a million short-lived actors, batching,
 * different worker counts. Every message is accounted for. (Backpressure
 * has its own suite, test_backpressure.c.) */
#include "tests.h"
#include "../actors/pid.h"

#include <sched.h>

#include <stdlib.h>
#include <string.h>

enum { MSG_TOKEN = 1, MSG_DATA = 2, MSG_GO = 3 };


/* ---- a ring of 1,000 actors passing one token 1,000,000 hops ------------- */

#define RING_ACTORS 1000u
#define RING_HOPS 1000000u

struct ring {
    tr_pid pids[RING_ACTORS];
    uint64_t seen[RING_ACTORS]; /* written only by actor i */
    uint64_t last[RING_ACTORS]; /* last hop actor i saw */
    _Atomic uint64_t final_hop;
};

struct ring_state {
    struct ring *r;
    uint32_t idx;
};

/* Hop k (1-based) is delivered to actor (k - 1) % RING_ACTORS. */
static void ring_actor(tr_ctx *cx, void *state, const tr_msg *m)
{
    struct ring_state *st = state;
    struct ring *r = st->r;
    uint32_t i = st->idx;
    TT_CHECK(m->type == MSG_TOKEN);
    uint64_t hop = tt_u64(m);
    TT_CHECK(tr_self(cx) == r->pids[i]);
    TT_CHECK(m->to == r->pids[i]);
    TT_CHECK((hop - 1) % RING_ACTORS == i);
    TT_CHECK(r->last[i] == 0 ? hop == i + 1u : hop == r->last[i] + RING_ACTORS);
    TT_CHECK(hop == 1 ? m->from == TR_PID_NONE
                      : m->from == r->pids[(i + RING_ACTORS - 1) % RING_ACTORS]);
    r->last[i] = hop;
    r->seen[i]++;
    if (hop < RING_HOPS) {
        uint64_t next = hop + 1;
        int rc = tr_send(cx, r->pids[(i + 1) % RING_ACTORS], MSG_TOKEN, &next, sizeof next);
        TT_CHECK(rc == 0);
    } else {
        atomic_store(&r->final_hop, hop);
    }
}

static void test_ring(void)
{
    struct ring *r = calloc(1, sizeof *r);
    CU_ASSERT_FATAL(r != NULL);
    tr_runtime *rt = tt_runtime(2, 0);
    for (uint32_t i = 0; i < RING_ACTORS; i++) {
        struct ring_state st = { r, i };
        int rc = tr_spawn(tr_runtime_ctx(rt), ring_actor, &st, sizeof st, &r->pids[i]);
        TT_EQ(rc, 0);
        if (rc != 0)
            goto out;
    }
    uint64_t first = 1;
    TT_EQ(tr_send(tr_runtime_ctx(rt), r->pids[0], MSG_TOKEN, &first, sizeof first), 0);
    TT_EQ(tr_runtime_run(rt), 0);

    TT_NO_ERRORS();
    TT_EQ(atomic_load(&r->final_hop), RING_HOPS);
    uint64_t sum = 0, wrong = 0;
    for (uint32_t i = 0; i < RING_ACTORS; i++) {
        sum += r->seen[i];
        if (r->seen[i] != RING_HOPS / RING_ACTORS)
            wrong++;
    }
    TT_EQ(sum, RING_HOPS);
    TT_EQ(wrong, 0);

    tr_stats s;
    tr_runtime_stats(rt, &s);
    TT_EQ(s.messages_sent, RING_HOPS);
    TT_EQ(s.messages_handled, RING_HOPS);
    TT_EQ(s.dead_letters, 0);
    TT_EQ(s.actors_spawned, RING_ACTORS);
    TT_EQ(s.actors_alive, RING_ACTORS);
    printf("[steals %" PRIu64 ", parks %" PRIu64 "] ", s.steals, s.parks);
out:
    tr_runtime_destroy(rt);
    free(r);
}

/* ---- 8 external threads x 1,000,000 messages into one actor --------------- */

#define FAN_SENDERS 8u
#define FAN_PER_SENDER 1000000u
/* Senders stay at most this many messages ahead of the actor, so the
 * mailbox (and memory use, under sanitizers too) stays bounded. */
#define FAN_WINDOW 65536u

struct fan_payload {
    uint32_t sender;
    uint32_t seq;
};

struct fan {
    tr_runtime *rt;
    tr_pid sink;
    uint64_t total;                      /* written by the actor only */
    uint32_t expected[FAN_SENDERS];      /* written by the actor only */
    struct {
        _Atomic uint32_t handled;        /* actor -> sender, flow control */
        char pad[60];
    } progress[FAN_SENDERS];
    atomic_ulong send_failures;
};

struct fan_state {
    struct fan *f;
};

static void fan_sink(tr_ctx *cx, void *state, const tr_msg *m)
{
    (void)cx;
    struct fan *f = ((struct fan_state *)state)->f;
    TT_CHECK(m->type == MSG_DATA);
    TT_CHECK(m->from == TR_PID_NONE);
    TT_CHECK(m->len == sizeof(struct fan_payload));
    if (m->len != sizeof(struct fan_payload))
        return;
    struct fan_payload p;
    memcpy(&p, m->data, sizeof p);
    TT_CHECK(p.sender < FAN_SENDERS);
    if (p.sender >= FAN_SENDERS)
        return;
    TT_CHECK(p.seq == f->expected[p.sender]);
    f->expected[p.sender] = p.seq + 1;
    f->total++;
    atomic_store_explicit(&f->progress[p.sender].handled, p.seq + 1, memory_order_release);
}

struct fan_sender {
    struct fan *f;
    uint32_t id;
};

static void *fan_sender_main(void *arg)
{
    struct fan_sender *s = arg;
    struct fan *f = s->f;
    TT_CHECK(tr_runtime_hold(f->rt) == 0);
    unsigned long spins = 0;
    for (uint32_t seq = 0; seq < FAN_PER_SENDER; seq++) {
        while (seq - atomic_load_explicit(&f->progress[s->id].handled, memory_order_acquire) >=
               FAN_WINDOW)
            tt_relax(&spins);
        struct fan_payload p = { s->id, seq };
        int rc = tr_send(tr_runtime_ctx(f->rt), f->sink, MSG_DATA, &p, sizeof p);
        if (rc != 0) {
            atomic_fetch_add(&f->send_failures, 1);
            TT_CHECK(rc == 0);
            break;
        }
    }
    TT_CHECK(tr_runtime_release(f->rt) == 0);
    return NULL;
}

static void test_external_senders(void)
{
    struct fan *f = calloc(1, sizeof *f);
    CU_ASSERT_FATAL(f != NULL);
    f->rt = tt_runtime(2, 0);
    struct fan_state st = { f };
    TT_EQ(tr_spawn(tr_runtime_ctx(f->rt), fan_sink, &st, sizeof st, &f->sink), 0);

    /* Our own hold keeps the runtime from finishing before the senders
     * have taken theirs. */
    TT_EQ(tr_runtime_hold(f->rt), 0);
    TT_EQ(tr_runtime_start(f->rt), 0);
    struct fan_sender senders[FAN_SENDERS];
    pthread_t t[FAN_SENDERS];
    for (uint32_t i = 0; i < FAN_SENDERS; i++) {
        senders[i] = (struct fan_sender){ f, i };
        t[i] = tt_thread(fan_sender_main, &senders[i]);
    }
    for (uint32_t i = 0; i < FAN_SENDERS; i++)
        tt_join(t[i]);
    TT_EQ(tr_runtime_release(f->rt), 0);
    TT_EQ(tr_runtime_join(f->rt), 0);

    TT_NO_ERRORS();
    TT_EQ(atomic_load(&f->send_failures), 0);
    TT_EQ(f->total, (uint64_t)FAN_SENDERS * FAN_PER_SENDER);
    for (uint32_t i = 0; i < FAN_SENDERS; i++)
        TT_EQ(f->expected[i], FAN_PER_SENDER);
    tr_stats s;
    tr_runtime_stats(f->rt, &s);
    TT_EQ(s.messages_sent, (uint64_t)FAN_SENDERS * FAN_PER_SENDER);
    TT_EQ(s.messages_handled, (uint64_t)FAN_SENDERS * FAN_PER_SENDER);
    TT_EQ(s.dead_letters, 0);
    tr_runtime_destroy(f->rt);
    free(f);
}

/* How many of hits[0 .. n-1] are not exactly 1: each actor's count of
 * the times it ran or was reached. */
static uint32_t not_once(const _Atomic uint8_t *hits, uint32_t n)
{
    uint32_t bad = 0;
    for (uint32_t i = 0; i < n; i++)
        if (atomic_load(&hits[i]) != 1)
            bad++;
    return bad;
}

/* The end of a run that stopped every actor it made: none is left
 * alive, and nothing went to a dead letter. */
static void none_alive_no_dead_letter(tr_runtime *rt)
{
    tr_stats s;
    tr_runtime_stats(rt, &s);
    TT_EQ(s.actors_alive, 0);
    TT_EQ(s.dead_letters, 0);
}

/* Runs rt until it is quiescent, starting it again after each shutdown
 * (at most max_runs runs): with stop_every, more than one run (the
 * actors shut it down), else exactly one. */
static void run_across_shutdowns(tr_runtime *rt, uint32_t stop_every, unsigned max_runs)
{
    unsigned runs = 1;
    int r;
    while ((r = tr_runtime_run(rt)) == 1 && runs < max_runs)
        runs++;
    TT_EQ(r, 0);
    if (stop_every != 0) {
        printf("[%u runs] ", runs);
        CU_ASSERT(runs > 1);
    } else {
        TT_EQ(runs, 1);
    }
}

/* ---- 1,000,000 actors, one message each, each stops itself ---------------- */

#define MANY_ACTORS 1000000u

struct many {
    tr_pid *pids;
    _Atomic uint8_t *hits;
    atomic_ulong handled;
};

struct many_state {
    struct many *mn;
    uint32_t idx;
};

static void many_actor(tr_ctx *cx, void *state, const tr_msg *m)
{
    struct many_state *st = state;
    struct many *mn = st->mn;
    TT_CHECK(m->type == MSG_DATA);
    TT_CHECK(tt_u64(m) == st->idx);
    TT_CHECK(tr_self(cx) == mn->pids[st->idx]);
    atomic_fetch_add_explicit(&mn->hits[st->idx], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&mn->handled, 1, memory_order_relaxed);
    tr_stop(cx);
}

static void test_million_actors(void)
{
    struct many mn = { 0 };
    mn.pids = calloc(MANY_ACTORS, sizeof *mn.pids);
    mn.hits = calloc(MANY_ACTORS, sizeof *mn.hits);
    CU_ASSERT_FATAL(mn.pids != NULL && mn.hits != NULL);
    tr_runtime *rt = tt_runtime(2, 0);

    uint32_t spawned = 0;
    for (; spawned < MANY_ACTORS; spawned++) {
        struct many_state st = { &mn, spawned };
        int rc = tr_spawn(tr_runtime_ctx(rt), many_actor, &st, sizeof st, &mn.pids[spawned]);
        if (rc != 0) {
            printf("\n    spawn #%u: %d (%s)\n", spawned, rc, tr_strerror(rc));
            break;
        }
    }
    TT_EQ(spawned, MANY_ACTORS);
    uint32_t send_failures = 0;
    for (uint32_t i = 0; i < spawned; i++) {
        uint64_t v = i;
        if (tr_send(tr_runtime_ctx(rt), mn.pids[i], MSG_DATA, &v, sizeof v) != 0)
            send_failures++;
    }
    TT_EQ(send_failures, 0);
    TT_EQ(tr_runtime_run(rt), 0);

    TT_NO_ERRORS();
    TT_EQ(atomic_load(&mn.handled), spawned);
    TT_EQ(not_once(mn.hits, spawned), 0);

    tr_stats s;
    tr_runtime_stats(rt, &s);
    TT_EQ(s.actors_spawned, MANY_ACTORS);
    TT_EQ(s.actors_stopped, MANY_ACTORS);
    TT_EQ(s.actors_alive, 0);
    TT_EQ(s.messages_sent, MANY_ACTORS);
    TT_EQ(s.messages_handled, MANY_ACTORS);
    TT_EQ(s.dead_letters, 0);
    tr_runtime_destroy(rt);
    free(mn.pids);
    free((void *)mn.hits);
}

/* ---- spawning from inside a behaviour, slots recycled while it goes ------- *
 * Each spawner turn makes 1,000 children runnable at once: they overflow the
 * worker's ring, in batches, into the injection queue while the other
 * worker drains it, the pattern that once lost an actor (mpsc is_empty
 * ignoring tail). */

#define SPAWN_BATCHES 300u
#define SPAWN_PER_BATCH 1000u
#define SPAWN_CHILDREN (SPAWN_BATCHES * SPAWN_PER_BATCH)

struct spawner {
    tr_pid pids[SPAWN_CHILDREN]; /* written by the spawner before the child's message */
    _Atomic uint8_t hits[SPAWN_CHILDREN];
    atomic_ulong handled;
    uint32_t batches; /* written by the spawner only */
    uint32_t stop_every; /* 0, or: every stop_every-th child shuts the run down */
};

struct child_state {
    struct spawner *sp;
    uint32_t idx;
};

static void spawn_child(tr_ctx *cx, void *state, const tr_msg *m)
{
    struct child_state *st = state;
    TT_CHECK(m->type == MSG_DATA);
    TT_CHECK(tt_u64(m) == st->idx);
    TT_CHECK(tr_self(cx) == st->sp->pids[st->idx]);
    atomic_fetch_add(&st->sp->hits[st->idx], 1);
    atomic_fetch_add(&st->sp->handled, 1);
    if (st->sp->stop_every != 0 && st->idx % st->sp->stop_every == st->sp->stop_every - 1)
        tr_runtime_shutdown(tr_ctx_runtime(cx));
    tr_stop(cx);
}

static void spawner_actor(tr_ctx *cx, void *state, const tr_msg *m)
{
    struct spawner *sp = *(struct spawner **)state;
    TT_CHECK(m->type == MSG_GO);
    uint32_t b = sp->batches++;
    for (uint32_t k = 0; k < SPAWN_PER_BATCH; k++) {
        uint32_t idx = b * SPAWN_PER_BATCH + k;
        struct child_state cs = { sp, idx };
        tr_pid pid;
        int rc = tr_spawn(cx, spawn_child, &cs, sizeof cs, &pid);
        TT_CHECK(rc == 0);
        if (rc != 0)
            continue;
        sp->pids[idx] = pid;
        uint64_t v = idx;
        TT_CHECK(tr_send(cx, pid, MSG_DATA, &v, sizeof v) == 0);
    }
    if (sp->batches < SPAWN_BATCHES)
        TT_CHECK(tr_send(cx, tr_self(cx), MSG_GO, NULL, 0) == 0);
    else
        tr_stop(cx);
}

static int cmp_pid(const void *a, const void *b)
{
    tr_pid x = *(const tr_pid *)a, y = *(const tr_pid *)b;
    return (x > y) - (x < y);
}

/* stop_every: 0, or shut the run down at every stop_every-th child and
 * run again until quiescent. */
static void spawn_from_behaviour(unsigned threads, uint32_t stop_every)
{
    struct spawner *sp = calloc(1, sizeof *sp);
    CU_ASSERT_FATAL(sp != NULL);
    sp->stop_every = stop_every;
    tr_runtime *rt = tt_runtime(threads, 0);
    tr_pid spid;
    TT_EQ(tr_spawn(tr_runtime_ctx(rt), spawner_actor, &sp, sizeof sp, &spid), 0);
    TT_EQ(tr_send(tr_runtime_ctx(rt), spid, MSG_GO, NULL, 0), 0);
    run_across_shutdowns(rt, stop_every, SPAWN_CHILDREN);

    TT_NO_ERRORS();
    TT_EQ(sp->batches, SPAWN_BATCHES);
    TT_EQ(atomic_load(&sp->handled), SPAWN_CHILDREN);
    TT_EQ(not_once(sp->hits, SPAWN_CHILDREN), 0);

    /* Slots were recycled while spawning went on; pids must still be unique
     * (and never the spawner's). */
    tr_pid *sorted = malloc((SPAWN_CHILDREN + 1) * sizeof *sorted);
    CU_ASSERT_FATAL(sorted != NULL);
    memcpy(sorted, sp->pids, SPAWN_CHILDREN * sizeof *sorted);
    sorted[SPAWN_CHILDREN] = spid;
    qsort(sorted, SPAWN_CHILDREN + 1, sizeof *sorted, cmp_pid);
    uint32_t dups = 0, none = 0;
    for (uint32_t i = 0; i <= SPAWN_CHILDREN; i++) {
        if (sorted[i] == TR_PID_NONE || TR__PID_GEN(sorted[i]) == 0 || TR__PID_NODE(sorted[i]) != 0)
            none++;
        if (i > 0 && sorted[i] == sorted[i - 1])
            dups++;
    }
    TT_EQ(dups, 0);
    TT_EQ(none, 0);
    free(sorted);

    tr_stats s;
    tr_runtime_stats(rt, &s);
    TT_EQ(s.actors_spawned, SPAWN_CHILDREN + 1);
    TT_EQ(s.actors_stopped, SPAWN_CHILDREN + 1);
    TT_EQ(s.actors_alive, 0);
    TT_EQ(s.messages_handled, SPAWN_CHILDREN + SPAWN_BATCHES);
    TT_EQ(s.dead_letters, 0);
    tr_runtime_destroy(rt);
    free(sp);
}

/* ---- a tree of spawns: spills taken back and stolen ---------------------- */

/* Every node of a 10-ary tree over TREE_LEAVES leaves spawns its children
 * in one turn and answers its parent with the sum of their answers; each
 * leaf answers with its index. The rings overflow many times over, so the
 * workers' overflows (sched/runq.h) carry most of the tree: taken back
 * newest first by their owners, stolen oldest first by the others. */
#define TREE_LEAVES 200000u

struct tree {
    _Atomic uint8_t hits[TREE_LEAVES];
    atomic_ulong nodes;
    atomic_ullong total;
    uint32_t stop_every; /* 0, or: every stop_every-th leaf shuts the run down */
};

struct tree_node {
    struct tree *t;
    uint32_t first, size, pending;
    uint64_t sum;
    tr_pid parent; /* TR_PID_NONE for the root */
};

enum { TREE_START = MSG_DATA + 100, TREE_SUM };

static void tree_answer(tr_ctx *cx, struct tree_node *n, uint64_t v)
{
    if (n->parent != TR_PID_NONE)
        TT_CHECK(tr_send(cx, n->parent, TREE_SUM, &v, sizeof v) == 0);
    else
        atomic_store(&n->t->total, v);
    tr_stop(cx);
}

static void tree_actor(tr_ctx *cx, void *state, const tr_msg *m)
{
    struct tree_node *n = state;
    struct tree *t = n->t;
    if (m->type == TREE_SUM) {
        n->sum += tt_u64(m);
        if (--n->pending == 0)
            tree_answer(cx, n, n->sum);
        return;
    }
    TT_CHECK(m->type == TREE_START);
    atomic_fetch_add(&t->nodes, 1);
    if (n->size == 1) {
        atomic_fetch_add(&t->hits[n->first], 1);
        if (t->stop_every != 0 && n->first % t->stop_every == t->stop_every - 1)
            tr_runtime_shutdown(tr_ctx_runtime(cx));
        tree_answer(cx, n, n->first);
        return;
    }
    uint32_t c = n->size < 10 ? n->size : 10;
    n->pending = c;
    for (uint32_t j = 0; j < c; j++) {
        uint32_t lo = (uint32_t)((uint64_t)j * n->size / c);
        uint32_t hi = (uint32_t)((uint64_t)(j + 1) * n->size / c);
        struct tree_node child = { .t = t, .first = n->first + lo, .size = hi - lo,
                                   .parent = tr_self(cx) };
        tr_pid pid;
        TT_CHECK(tr_spawn(cx, tree_actor, &child, sizeof child, &pid) == 0);
        TT_CHECK(tr_send(cx, pid, TREE_START, NULL, 0) == 0);
    }
}

static uint64_t tree_count(uint32_t size)
{
    if (size == 1)
        return 1;
    uint32_t c = size < 10 ? size : 10;
    uint64_t k = 1;
    for (uint32_t j = 0; j < c; j++)
        k += tree_count((uint32_t)((uint64_t)(j + 1) * size / c) -
                        (uint32_t)((uint64_t)j * size / c));
    return k;
}

/* Every leaf answers once and the sum is exact; every node ran once; the
 * run ends with no actor alive and no dead letter. With stop_every, the
 * run is shut down and resumed in the middle of the tree, spills waiting
 * in the overflows each time. */
static void tree_run(unsigned threads, uint32_t stop_every)
{
    struct tree *t = calloc(1, sizeof *t);
    CU_ASSERT_FATAL(t != NULL);
    t->stop_every = stop_every;
    tr_runtime *rt = tt_runtime(threads, 0);
    struct tree_node root = { .t = t, .first = 0, .size = TREE_LEAVES, .parent = TR_PID_NONE };
    tr_pid pid;
    TT_EQ(tr_spawn(tr_runtime_ctx(rt), tree_actor, &root, sizeof root, &pid), 0);
    TT_EQ(tr_send(tr_runtime_ctx(rt), pid, TREE_START, NULL, 0), 0);
    run_across_shutdowns(rt, stop_every, TREE_LEAVES);
    TT_NO_ERRORS();
    TT_EQ(not_once(t->hits, TREE_LEAVES), 0);
    TT_EQ(atomic_load(&t->total), (uint64_t)TREE_LEAVES * (TREE_LEAVES - 1) / 2);
    uint64_t nodes = tree_count(TREE_LEAVES);
    TT_EQ(atomic_load(&t->nodes), nodes);
    tr_stats s;
    tr_runtime_stats(rt, &s);
    TT_EQ(s.actors_spawned, nodes);
    TT_EQ(s.actors_alive, 0);
    TT_EQ(s.messages_handled, 2 * nodes - 1);
    TT_EQ(s.dead_letters, 0);
    tr_runtime_destroy(rt);
    free(t);
}

static void test_tree_4_workers(void)
{
    tree_run(4, 0);
}

static void test_tree_across_20_shutdowns(void)
{
    tree_run(2, TREE_LEAVES / 20);
}

/* ---- a spill behind newer ones: taken back once stale ---------------------- */

/* One worker; a spawner makes FLOOD_EACH children for each message it
 * handles and sends itself the next, so a turn of it (a batch of 8
 * messages: 1,024 children, a multiple of the spill) leaves the ring full
 * and spills the rest, and its held slot lets it go after TR__RUNQ_SIZE
 * turns, just as the ring comes to run dry: the ring never does, and
 * spills pile up in the overflow, newer on top of older. Taken back
 * newest first, the first spill would wait until the spawner stops; one
 * that has waited SPILL_STALE_NS (10 ms by the coarse clock) is taken
 * first, one actor every INJECT_EVERY turns (fails without: child 0 runs
 * after all 800,000 children). The spawner stops once child 0 has run,
 * or after FLOOD_MS of wall time (ten times the rule's 10-11 ms; a
 * sanitizer slows the spawning, not the clock), or FLOOD_MAX children;
 * child 0 must run while it still spawns. */
#define FLOOD_EACH 128u
#define FLOOD_MS 100
#define FLOOD_MAX 2000000u

struct flood {
    _Atomic uint8_t hits[FLOOD_MAX];
    uint32_t spawned;
    bool done;       /* the spawner has stopped */
    bool zero_ran, zero_early;
    double until;    /* tt_now() at which the spawner stops */
    uint64_t ran;
};

struct flood_child {
    struct flood *f;
    uint32_t idx;
};

static void flood_child(tr_ctx *cx, void *state, const tr_msg *m)
{
    (void)m;
    struct flood_child *c = state;
    atomic_fetch_add(&c->f->hits[c->idx], 1);
    c->f->ran++; /* one worker: no race */
    if (c->idx == 0) {
        c->f->zero_ran = true;
        c->f->zero_early = !c->f->done;
    }
    tr_stop(cx);
}

static void flood_spawner(tr_ctx *cx, void *state, const tr_msg *m)
{
    (void)m;
    struct flood *f = *(struct flood **)state;
    if (f->until == 0)
        f->until = tt_now() + FLOOD_MS / 1000.0;
    if (f->zero_ran || f->spawned + FLOOD_EACH > FLOOD_MAX || tt_now() > f->until) {
        f->done = true;
        tr_stop(cx);
        return;
    }
    for (uint32_t k = 0; k < FLOOD_EACH; k++) {
        struct flood_child c = { f, f->spawned++ };
        tr_pid pid;
        TT_CHECK(tr_spawn(cx, flood_child, &c, sizeof c, &pid) == 0);
        TT_CHECK(tr_send(cx, pid, MSG_DATA, NULL, 0) == 0);
    }
    TT_CHECK(tr_send(cx, tr_self(cx), MSG_GO, NULL, 0) == 0);
}

static void test_stale_spill_taken_back(void)
{
    struct flood *f = calloc(1, sizeof *f);
    CU_ASSERT_FATAL(f != NULL);
    tr_runtime *rt = tt_runtime(1, 8);
    tr_pid pid;
    TT_EQ(tr_spawn(tr_runtime_ctx(rt), flood_spawner, &f, sizeof f, &pid), 0);
    TT_EQ(tr_send(tr_runtime_ctx(rt), pid, MSG_GO, NULL, 0), 0);
    TT_EQ(tr_runtime_run(rt), 0);
    TT_NO_ERRORS();
    printf("[child 0 ran after %u children were spawned] ", f->spawned);
    CU_ASSERT_TRUE(f->zero_ran);
    CU_ASSERT_TRUE(f->zero_early);
    TT_EQ(not_once(f->hits, f->spawned), 0);
    TT_EQ(f->ran, f->spawned);
    none_alive_no_dead_letter(rt);
    tr_runtime_destroy(rt);
    free(f);
}

/* A spawner that requeues itself while its worker's spilled children wait
 * in the injection queue waits in the worker's held slot (worker.c,
 * tr__sched_requeue); shut down and resumed 30 times in the middle of
 * that, on 2 workers: nothing may be lost in the slot or in the queues. */
static void test_spawner_held_across_shutdowns(void)
{
    spawn_from_behaviour(2, SPAWN_CHILDREN / 30);
}

static void test_spawn_from_behaviour(void)
{
    spawn_from_behaviour(2, 0);
}

/* The same with one worker (the overflow waits in the worker's own batch
 * and the injection queue for it alone) and with four on two cores. */
static void test_spawn_from_behaviour_1_and_4(void)
{
    spawn_from_behaviour(1, 0);
    spawn_from_behaviour(4, 0);
}

/* ---- more messages than the batch size ------------------------------------ */

#define BURST_OUTSIDE 10000u
#define BURST_INSIDE 1000u

struct burst {
    tr_pid sink, burster;
    uint32_t next_outside; /* sink only */
    uint32_t next_inside;  /* sink only */
    uint64_t handled;      /* sink only */
};

static void burst_sink(tr_ctx *cx, void *state, const tr_msg *m)
{
    (void)cx;
    struct burst *b = *(struct burst **)state;
    TT_CHECK(m->type == MSG_DATA);
    uint64_t seq = tt_u64(m);
    if (m->from == TR_PID_NONE) {
        TT_CHECK(seq == b->next_outside);
        b->next_outside = (uint32_t)seq + 1;
    } else {
        TT_CHECK(m->from == b->burster);
        TT_CHECK(seq == b->next_inside);
        b->next_inside = (uint32_t)seq + 1;
    }
    b->handled++;
}

/* On its one message, sends BURST_INSIDE messages to the sink in one turn. */
static void burst_sender(tr_ctx *cx, void *state, const tr_msg *m)
{
    struct burst *b = *(struct burst **)state;
    TT_CHECK(m->type == MSG_GO);
    for (uint64_t i = 0; i < BURST_INSIDE; i++)
        TT_CHECK(tr_send(cx, b->sink, MSG_DATA, &i, sizeof i) == 0);
}

static void burst_run(unsigned threads, unsigned batch)
{
    struct burst b = { 0 };
    struct burst *bp = &b;
    tr_runtime *rt = tt_runtime(threads, batch);
    TT_EQ(tr_spawn(tr_runtime_ctx(rt), burst_sink, &bp, sizeof bp, &b.sink), 0);
    TT_EQ(tr_spawn(tr_runtime_ctx(rt), burst_sender, &bp, sizeof bp, &b.burster), 0);
    for (uint64_t i = 0; i < BURST_OUTSIDE; i++)
        TT_EQ(tr_send(tr_runtime_ctx(rt), b.sink, MSG_DATA, &i, sizeof i), 0);
    TT_EQ(tr_send(tr_runtime_ctx(rt), b.burster, MSG_GO, NULL, 0), 0);
    TT_EQ(tr_runtime_run(rt), 0);
    TT_NO_ERRORS();
    TT_EQ(b.handled, BURST_OUTSIDE + BURST_INSIDE);
    TT_EQ(b.next_outside, BURST_OUTSIDE);
    TT_EQ(b.next_inside, BURST_INSIDE);
    tr_stats s;
    tr_runtime_stats(rt, &s);
    TT_EQ(s.messages_handled, BURST_OUTSIDE + BURST_INSIDE + 1);
    TT_EQ(s.dead_letters, 0);
    tr_runtime_destroy(rt);
}

static void test_more_than_batch(void)
{
    burst_run(1, 1);
    burst_run(2, 1);
    burst_run(2, 4);
    burst_run(2, 0); /* default batch, 64 */
}

/* ---- threads = 1, 2 (and 4) ----------------------------------------------- */

/* Ten independent rings of ten actors, one token each: tokens never meet,
 * so several workers have work at once (and steal it from each other). */
#define TR_RINGS 10u
#define TR_RING_SIZE 10u
#define TR_ACTORS (TR_RINGS * TR_RING_SIZE)
#define TR_TOKENS TR_RINGS
#define TR_HOPS 10000u /* per token: each actor of its ring sees 1,000 */

struct tokens {
    tr_pid pids[TR_ACTORS];
    uint64_t seen[TR_ACTORS]; /* actor i only */
    uint64_t last[TR_ACTORS]; /* actor i only */
    _Atomic uint64_t finished[TR_TOKENS];
};

struct tok_payload {
    uint32_t token;
    uint32_t hop; /* 1-based */
};

struct tok_state {
    struct tokens *tk;
    uint32_t idx;
};

/* Token t travels ring t; its hop h is at position (h - 1) % TR_RING_SIZE. */
static void token_actor(tr_ctx *cx, void *state, const tr_msg *m)
{
    struct tok_state *st = state;
    struct tokens *tk = st->tk;
    uint32_t ring = st->idx / TR_RING_SIZE, pos = st->idx % TR_RING_SIZE;
    TT_CHECK(m->type == MSG_TOKEN && m->len == sizeof(struct tok_payload));
    struct tok_payload p;
    memcpy(&p, m->data, sizeof p);
    TT_CHECK(p.token == ring);
    TT_CHECK((p.hop - 1) % TR_RING_SIZE == pos);
    uint64_t *last = &tk->last[st->idx];
    TT_CHECK(*last == 0 ? p.hop == pos + 1 : p.hop == *last + TR_RING_SIZE);
    *last = p.hop;
    tk->seen[st->idx]++;
    if (p.hop < TR_HOPS) {
        p.hop++;
        tr_pid next = tk->pids[ring * TR_RING_SIZE + (pos + 1) % TR_RING_SIZE];
        TT_CHECK(tr_send(cx, next, MSG_TOKEN, &p, sizeof p) == 0);
    } else if (p.token < TR_TOKENS) {
        atomic_fetch_add(&tk->finished[p.token], 1);
    }
}

static void tokens_run(unsigned threads)
{
    struct tokens *tk = calloc(1, sizeof *tk);
    CU_ASSERT_FATAL(tk != NULL);
    tr_runtime *rt = tt_runtime(threads, 0);
    TT_EQ(tr_runtime_threads(rt), threads);
    for (uint32_t i = 0; i < TR_ACTORS; i++) {
        struct tok_state st = { tk, i };
        TT_EQ(tr_spawn(tr_runtime_ctx(rt), token_actor, &st, sizeof st, &tk->pids[i]), 0);
    }
    for (uint32_t t = 0; t < TR_TOKENS; t++) {
        struct tok_payload p = { t, 1 };
        TT_EQ(tr_send(tr_runtime_ctx(rt), tk->pids[t * TR_RING_SIZE], MSG_TOKEN, &p, sizeof p), 0);
    }
    TT_EQ(tr_runtime_run(rt), 0);
    TT_NO_ERRORS();
    for (uint32_t t = 0; t < TR_TOKENS; t++)
        TT_EQ(atomic_load(&tk->finished[t]), 1);
    uint32_t wrong = 0;
    for (uint32_t i = 0; i < TR_ACTORS; i++)
        if (tk->seen[i] != TR_HOPS / TR_RING_SIZE)
            wrong++;
    TT_EQ(wrong, 0);
    tr_stats s;
    tr_runtime_stats(rt, &s);
    TT_EQ(s.messages_handled, (uint64_t)TR_TOKENS * TR_HOPS);
    TT_EQ(s.messages_sent, (uint64_t)TR_TOKENS * TR_HOPS);
    TT_EQ(s.dead_letters, 0);
    printf("[steals %" PRIu64 ", parks %" PRIu64 "] ", s.steals, s.parks);
    tr_runtime_destroy(rt);
    free(tk);
}

static void test_threads_1(void) { tokens_run(1); }
static void test_threads_2(void) { tokens_run(2); }
static void test_threads_4(void) { tokens_run(4); }

/* ---- more workers than CPUs: a stuck worker's CPU is handed on ---------- */

/* As many actors as there are CPUs block (sleep, polling a flag) in their
 * behaviours, on a runtime with two workers more than CPUs. The workers
 * beyond the CPUs stand by while the others make progress; these are
 * stuck, so one must step in and run the actor that releases them. A
 * blocker that waits out its safety net (10 s) means nobody did. */
struct blocking {
    atomic_bool released;
    atomic_uint blocked, timed_out;
};

static void blocker(tr_ctx *cx, void *state, const tr_msg *m)
{
    (void)cx;
    (void)m;
    struct blocking *b = *(struct blocking **)state;
    atomic_fetch_add(&b->blocked, 1);
    double give_up = tt_now() + 10;
    while (!atomic_load(&b->released) && tt_now() < give_up)
        tt_sleep_ms(1);
    if (!atomic_load(&b->released))
        atomic_fetch_add(&b->timed_out, 1);
}

static void releaser(tr_ctx *cx, void *state, const tr_msg *m)
{
    (void)cx;
    (void)m;
    struct blocking *b = *(struct blocking **)state;
    atomic_store(&b->released, true);
}

/* The CPUs this process may run on (1 if they cannot be read). */
static unsigned cpus_here(void)
{
    cpu_set_t set;
    return sched_getaffinity(0, sizeof set, &set) == 0 ? (unsigned)CPU_COUNT(&set) : 1;
}

static void test_stuck_workers_handed_on(void)
{
    unsigned cpus = cpus_here();
    if (cpus + 2 > TR_MAX_THREADS)
        return;
    struct blocking b = { 0 };
    struct blocking *bp = &b;
    tr_runtime *rt = tt_runtime(cpus + 2, 0);
    tr_pid rel;
    TT_EQ(tr_spawn(tr_runtime_ctx(rt), releaser, &bp, sizeof bp, &rel), 0);
    TT_EQ(tr_runtime_hold(rt), 0);
    TT_EQ(tr_runtime_start(rt), 0);
    for (unsigned i = 0; i < cpus; i++) {
        tr_pid p;
        TT_EQ(tr_spawn(tr_runtime_ctx(rt), blocker, &bp, sizeof bp, &p), 0);
        TT_EQ(tr_send(tr_runtime_ctx(rt), p, MSG_GO, NULL, 0), 0);
    }
    for (int i = 0; i < 10000 && atomic_load(&b.blocked) < cpus; i++)
        tt_sleep_ms(1);
    TT_EQ(atomic_load(&b.blocked), cpus);
    TT_EQ(tr_send(tr_runtime_ctx(rt), rel, MSG_GO, NULL, 0), 0);
    TT_EQ(tr_runtime_release(rt), 0);
    TT_EQ(tt_join_within(rt, 60), 0);
    TT_EQ(atomic_load(&b.timed_out), 0);
    tr_runtime_destroy(rt);
}

/* One blocker per worker, sent from outside in a burst, on a runtime with
 * two workers more than CPUs: the first ones wake as many workers as
 * there are CPUs, the others come while those count as taking them, so
 * nobody is woken for them but the worker asleep in the reactor, which
 * stands by until the blocked ones count as stuck, then takes one. The
 * last must not wait for a worker parked on its futex with no timeout
 * (it went to sleep while another polled): the poller that goes to work,
 * and every worker woken since that goes to work with blockers still
 * queued, hands the looking on. Every blocker must block before the test
 * releases them. */
static void test_burst_of_blockers_each_gets_a_worker(void)
{
    unsigned cpus = cpus_here(), threads = cpus + 2;
    if (threads > TR_MAX_THREADS)
        return;
    struct blocking b = { 0 };
    struct blocking *bp = &b;
    tr_runtime *rt = tt_runtime(threads, 0);
    tr_pid p[TR_MAX_THREADS];
    for (unsigned i = 0; i < threads; i++)
        TT_EQ(tr_spawn(tr_runtime_ctx(rt), blocker, &bp, sizeof bp, &p[i]), 0);
    TT_EQ(tr_runtime_hold(rt), 0);
    TT_EQ(tr_runtime_start(rt), 0);
    tt_sleep_ms(20); /* every worker parked: one in the reactor */
    for (unsigned i = 0; i < threads; i++)
        TT_EQ(tr_send(tr_runtime_ctx(rt), p[i], MSG_GO, NULL, 0), 0);
    for (int i = 0; i < 10000 && atomic_load(&b.blocked) < threads; i++)
        tt_sleep_ms(1);
    TT_EQ(atomic_load(&b.blocked), threads);
    atomic_store(&b.released, true); /* from here: no worker is free */
    TT_EQ(tr_runtime_release(rt), 0);
    TT_EQ(tt_join_within(rt, 60), 0);
    TT_EQ(atomic_load(&b.timed_out), 0);
    tr_stats s;
    tr_runtime_stats(rt, &s);
    TT_EQ(s.messages_handled, (uint64_t)threads);
    tr_runtime_destroy(rt);
}

/* ---- pairs begun by one turn spread over the workers ---------------------- *
 * One turn spawns four pairs and starts them: each readied on that turn's
 * worker, and none ever worth sharing by cost (the turns are short, the
 * rings shallow), so all four ran on one worker while the other parked —
 * unless the monitor evens the rings out (worker.c). Each pair keeps
 * PAIR_WINDOW pings in flight, the pong to ping k carrying k; the pairs go
 * on until two workers have run PAIR_SPREAD turns, or PAIR_CAP pings a
 * pair (then the test fails: the cap is a count, but a pair alone on a
 * worker reaches it in a time, 4,000,000 in 0.28 s in one CI run while
 * other programs loaded the host and the monitor's ticks came late; at
 * 32,000,000 it is seconds). Every ping is answered once, in order. With
 * 2 workers, and with 4 on 2 CPUs or more (the ones beyond the CPUs stand
 * by, and a parked worker is a taker only while a CPU is free for it). */

#define PAIRS 4u
#define PAIR_WINDOW 8u
#define PAIR_SPREAD 200000u
#define PAIR_CAP 32000000u

enum { MSG_PING = 4, MSG_PONG = 5 };

struct pairs {
    tr_runtime *rt;
    unsigned threads;
    _Atomic bool spread; /* two workers ran PAIR_SPREAD turns */
    _Atomic bool capped;
    uint64_t sent[PAIRS], answered[PAIRS], pinged[PAIRS]; /* each written by one actor */
    _Atomic uint64_t wrong; /* pings or pongs out of order */
    _Atomic bool blocking;  /* the blocker's turn has begun (pairs_case) */
};

struct pair_end {
    struct pairs *p;
    unsigned i;
    tr_pid other;
};

static bool pairs_spread(struct pairs *p)
{
    tr_worker_metrics w[4];
    TT_EQ(tr_runtime_metrics(p->rt, NULL, w, p->threads), p->threads);
    unsigned busy = 0;
    for (unsigned i = 0; i < p->threads; i++)
        busy += w[i].turns >= PAIR_SPREAD;
    return busy >= 2;
}

static void pair_ping(tr_ctx *cx, struct pair_end *e)
{
    uint64_t k = e->p->sent[e->i]++;
    TT_EQ(tr_send(cx, e->other, MSG_PING, &k, sizeof k), 0);
}

static void pair_asker(tr_ctx *cx, void *state, const tr_msg *m)
{
    struct pair_end *e = state;
    struct pairs *p = e->p;
    if (m->type == MSG_GO) {
        for (unsigned k = 0; k < PAIR_WINDOW; k++)
            pair_ping(cx, e);
        return;
    }
    TT_CHECK(m->type == MSG_PONG);
    uint64_t k = p->answered[e->i]++;
    if (tt_u64(m) != k)
        atomic_fetch_add(&p->wrong, 1);
    if ((k & 1023) == 0 && !atomic_load(&p->spread) && pairs_spread(p))
        atomic_store(&p->spread, true);
    if (p->sent[e->i] >= PAIR_CAP)
        atomic_store(&p->capped, true);
    if (!atomic_load(&p->spread) && !atomic_load(&p->capped)) {
        pair_ping(cx, e);
    } else if (p->answered[e->i] == p->sent[e->i]) {
        TT_EQ(tr_send(cx, e->other, MSG_DATA, NULL, 0), 0); /* the end */
        tr_stop(cx);
    }
}

static void pair_echo(tr_ctx *cx, void *state, const tr_msg *m)
{
    struct pair_end *e = state;
    if (m->type == MSG_DATA) {
        tr_stop(cx);
        return;
    }
    TT_CHECK(m->type == MSG_PING);
    uint64_t k = tt_u64(m);
    if (k != e->p->pinged[e->i]++)
        atomic_fetch_add(&e->p->wrong, 1);
    TT_EQ(tr_send(cx, m->from, MSG_PONG, &k, sizeof k), 0);
}

static void pair_starter(tr_ctx *cx, void *state, const tr_msg *m)
{
    (void)m;
    struct pairs *p = *(struct pairs **)state;
    for (unsigned i = 0; i < PAIRS; i++) {
        struct pair_end echo = { p, i, TR_PID_NONE }, asker = { p, i, TR_PID_NONE };
        TT_EQ(tr_spawn(cx, pair_echo, &echo, sizeof echo, &asker.other), 0);
        tr_pid a;
        TT_EQ(tr_spawn(cx, pair_asker, &asker, sizeof asker, &a), 0);
        TT_EQ(tr_send(cx, a, MSG_GO, NULL, 0), 0);
    }
    tr_stop(cx);
}

/* One long turn: until the pairs have spread or given up. */
static void pair_blocker(tr_ctx *cx, void *state, const tr_msg *m)
{
    (void)m;
    struct pairs *p = *(struct pairs **)state;
    atomic_store(&p->blocking, true);
    while (!atomic_load(&p->spread) && !atomic_load(&p->capped))
        tt_sleep_ms(1);
    tr_stop(cx);
}

/* With `blocked`, a worker is first stuck in a long turn, awake with an
 * empty ring: the pairs must spread to a parked worker, not wait for the
 * stuck one to take them when its turn ends (it ends only once they have
 * spread). */
static void pairs_case(unsigned threads, bool blocked)
{
    struct pairs *p = calloc(1, sizeof *p);
    CU_ASSERT_PTR_NOT_NULL_FATAL(p);
    p->threads = threads;
    tr_config cfg;
    tr_config_init(&cfg);
    cfg.threads = threads;
    cfg.watchdog_ms = 0; /* the blocker's turn is long on purpose */
    tr_runtime *rt = NULL;
    TT_EQ(tr_runtime_create(&cfg, &rt), 0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(rt);
    p->rt = rt;
    tr_ctx *cx = tr_runtime_ctx(rt);
    TT_EQ(tr_runtime_hold(rt), 0);
    TT_EQ(tr_runtime_start(rt), 0);
    if (blocked) {
        tr_pid blocker;
        TT_EQ(tr_spawn(cx, pair_blocker, &p, sizeof p, &blocker), 0);
        TT_EQ(tr_send(cx, blocker, MSG_GO, NULL, 0), 0);
        for (int i = 0; i < 10000 && !atomic_load(&p->blocking); i++)
            tt_sleep_ms(1);
        CU_ASSERT_FATAL(atomic_load(&p->blocking));
    }
    tr_pid starter;
    TT_EQ(tr_spawn(cx, pair_starter, &p, sizeof p, &starter), 0);
    TT_EQ(tr_send(cx, starter, MSG_GO, NULL, 0), 0);
    TT_EQ(tr_runtime_release(rt), 0);
    TT_EQ(tt_join_within(rt, 120), 0);
    TT_NO_ERRORS();
    CU_ASSERT(atomic_load(&p->spread));
    CU_ASSERT(!atomic_load(&p->capped));
    TT_EQ(atomic_load(&p->wrong), 0);
    for (unsigned i = 0; i < PAIRS; i++) {
        TT_EQ(p->answered[i], p->sent[i]);
        TT_EQ(p->pinged[i], p->sent[i]);
        CU_ASSERT(p->sent[i] >= PAIR_WINDOW);
    }
    none_alive_no_dead_letter(rt);
    tr_runtime_destroy(rt);
    free(p);
}

static void test_pairs_spread(void)
{
    if (cpus_here() < 2)
        return; /* one CPU: a second worker would only take turns on it */
    pairs_case(2, false);
    pairs_case(4, false);
}

static void test_pairs_spread_past_stuck(void)
{
    if (cpus_here() < 2)
        return;
    pairs_case(4, true);
}

/* ---- tr_config.pin: worker i bound to the (i mod n)-th CPU ----------------- */

#define PIN_ACTORS 256u

struct pin_seen {
    cpu_set_t process;             /* the CPUs this process may run on */
    _Atomic unsigned handled;      /* turns run */
    _Atomic unsigned bound;        /* ... on a thread bound to one CPU */
    _Atomic unsigned elsewhere;    /* ... of those, running on another CPU */
    _Atomic unsigned unbound;      /* ... on a thread free on every CPU */
    _Atomic uint64_t cpus;         /* bit c: a turn ran bound to CPU c < 64 */
};

/* Says how the thread running it is bound, then stops. */
static void pin_report(tr_ctx *cx, void *state, const tr_msg *m)
{
    (void)m;
    struct pin_seen *p = *(struct pin_seen **)state;
    cpu_set_t mine;
    if (sched_getaffinity(0, sizeof mine, &mine) == 0) {
        if (CPU_COUNT(&mine) == 1) {
            int c = 0;
            while (!CPU_ISSET(c, &mine))
                c++;
            atomic_fetch_add(&p->bound, 1);
            if (sched_getcpu() != c)
                atomic_fetch_add(&p->elsewhere, 1);
            if (c < 64)
                atomic_fetch_or(&p->cpus, (uint64_t)1 << c);
        } else if (CPU_EQUAL(&mine, &p->process)) {
            atomic_fetch_add(&p->unbound, 1);
        }
    }
    atomic_fetch_add(&p->handled, 1);
    tr_stop(cx);
}

/* The k-th CPU of set, counting from 0. */
static int kth_cpu(const cpu_set_t *set, int k)
{
    for (int c = 0; c < CPU_SETSIZE; c++)
        if (CPU_ISSET(c, set) && k-- == 0)
            return c;
    return -1;
}

/* One more worker than CPUs, so that the first CPU takes two; two runs,
 * so that the binding holds for threads made again. Every turn's thread
 * is bound to exactly one CPU of the process's and runs on it, and each
 * worker's metrics name the CPU its index gives. Without pin, every
 * turn's thread may run on every CPU and no worker names one. */
static void pin_case(bool pin)
{
    struct pin_seen *p = calloc(1, sizeof *p);
    CU_ASSERT_PTR_NOT_NULL_FATAL(p);
    CU_ASSERT_FATAL(sched_getaffinity(0, sizeof p->process, &p->process) == 0);
    int n = CPU_COUNT(&p->process);
    tr_config cfg;
    tr_config_init(&cfg);
    cfg.threads = (unsigned)n + 1 > TR_MAX_THREADS ? TR_MAX_THREADS : (unsigned)n + 1;
    cfg.pin = pin;
    tr_runtime *rt;
    TT_EQ(tr_runtime_create(&cfg, &rt), 0);
    tr_ctx *cx = tr_runtime_ctx(rt);
    for (unsigned round = 0; round < 2; round++) {
        for (unsigned i = 0; i < PIN_ACTORS; i++) {
            tr_pid a;
            TT_EQ(tr_spawn(cx, pin_report, &p, sizeof p, &a), 0);
            TT_EQ(tr_send(cx, a, MSG_GO, NULL, 0), 0);
        }
        TT_EQ(tr_runtime_run(rt), 0);
        tr_worker_metrics w[TR_MAX_THREADS];
        TT_EQ(tr_runtime_metrics(rt, NULL, w, TR_MAX_THREADS), cfg.threads);
        uint64_t named = 0;
        for (unsigned i = 0; i < cfg.threads; i++) {
            int want = pin ? kth_cpu(&p->process, (int)(i % (unsigned)n)) : -1;
            if (w[i].cpu != want)
                printf("\n    worker %u: cpu %d, want %d\n", i, (int)w[i].cpu, want);
            TT_EQ(w[i].cpu, want);
            if (want >= 0 && want < 64)
                named |= (uint64_t)1 << want;
        }
        unsigned turns = PIN_ACTORS * (round + 1);
        TT_EQ(atomic_load(&p->handled), turns);
        TT_EQ(atomic_load(&p->bound), pin ? turns : 0);
        TT_EQ(atomic_load(&p->unbound), pin ? 0 : turns);
        TT_EQ(atomic_load(&p->elsewhere), 0);
        TT_EQ(atomic_load(&p->cpus) & ~named, 0); /* only the workers' CPUs */
    }
    none_alive_no_dead_letter(rt);
    tr_runtime_destroy(rt);
    free(p);
}

static void test_pin(void)
{
    pin_case(true);
    pin_case(false);
}

void register_sched_tests(void)
{
    CU_pSuite s = tt_suite("sched");
    tt_test(s, "token_rings_every_hop_in_order_threads_1", test_threads_1);
    tt_test(s, "token_rings_every_hop_in_order_threads_2", test_threads_2);
    tt_test(s, "token_rings_every_hop_in_order_threads_4", test_threads_4);
    tt_test(s, "more_messages_than_batch", test_more_than_batch);
    tt_test(s, "ring_1000_actors_1M_hops", test_ring);
    tt_test(s, "external_senders_8_x_1M", test_external_senders);
    tt_test(s, "million_actors_one_message_each", test_million_actors);
    tt_test(s, "spawn_from_behaviour_slot_reuse", test_spawn_from_behaviour);
    tt_test(s, "spawner_held_across_30_shutdowns_2_workers", test_spawner_held_across_shutdowns);
    tt_test(s, "spawn_from_behaviour_1_and_4_workers", test_spawn_from_behaviour_1_and_4);
    tt_test(s, "tree_of_200k_leaves_4_workers", test_tree_4_workers);
    tt_test(s, "tree_of_200k_leaves_across_20_shutdowns_2_workers", test_tree_across_20_shutdowns);
    tt_test(s, "stale_spill_taken_back_before_newer_1_worker", test_stale_spill_taken_back);
    tt_test(s, "stuck_workers_hand_their_cpu_on", test_stuck_workers_handed_on);
    tt_test(s, "burst_of_blockers_from_outside_each_gets_a_worker",
            test_burst_of_blockers_each_gets_a_worker);
    tt_test(s, "pin_binds_worker_i_to_the_i_mod_n_th_cpu", test_pin);
    tt_test(s, "pairs_begun_by_one_turn_spread_over_2_of_2_and_of_4_workers", test_pairs_spread);
    tt_test(s, "pairs_spread_to_a_parked_worker_past_a_stuck_one", test_pairs_spread_past_stuck);
}
