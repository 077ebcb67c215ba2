/* test_sim_dist.c — remote actors under simulation (suite "sim_dist"):
 * two troupe nodes in one simulated process, each its own runtime and
 * node name, registered with the simulated EPMD (dist/simepmd.c) and
 * connected over the simulated network, stepped together.
 *
 * The test thread drives the simulation itself (tr__sched_drive, as
 * tr_call does) until a flag an actor sets, so it can act between phases:
 * stop a node, start it again, cut the network. Every wait is bounded by
 * the simulation's virtual time limit (limit=600), never by real time.
 * Every message carries a sequence number; the service and the driver
 * count each one, and each must be seen exactly once.
 */
#include "tests.h"

#include <string.h>

#include "../base/sim.h"
#include "../dist/dist.h"

enum { GO = 1, PING, GO_PID };

#define NA "sa@localhost"
#define NB "sb@localhost"
#define NC "sc@localhost"
#define ADDR_A "127.0.0.1"
#define ADDR_B "127.0.0.2"
#define ADDR_C "127.0.0.3"
#define MAXSEQ 256
#define OPTS "sched=uniform,limit=600,rto=3"

/* What the actors saw: the whole test runs on this thread. */
static struct {
    unsigned svc_got[MAXSEQ];   /* at B, per sequence number */
    unsigned replies[MAXSEQ];   /* at A */
    unsigned want;              /* replies that end a phase */
    unsigned answered;          /* replies so far */
    bool phase_done;
    tr_pid svc;                 /* B's service, as A numbers it */
    tr_pid driver;              /* A's driver, as B numbers it */
    bool down_a, down_b;        /* a monitor across the nodes fired */
    int down_reason_a, down_reason_b;
} seen;

/* What the service and the driver share. A PING's sequence number, or
 * NULL (a failed check) if it has none below MAXSEQ. */
static const uint32_t *ping_seq(const tr_msg *m)
{
    const uint32_t *seq = TR_PAYLOAD(m, uint32_t);
    TT_CHECK(seq != NULL && *seq < MAXSEQ);
    return seq != NULL && *seq < MAXSEQ ? seq : NULL;
}

/* Monitors the other end the first time `from` is seen as it (*peer). */
static void monitor_peer(tr_ctx *cx, tr_pid *peer, tr_pid from)
{
    if (*peer != from) {
        *peer = from;
        uint64_t ref;
        TT_CHECK(tr_monitor(cx, from, &ref) == 0);
    }
}

/* A TR_DOWN of that monitor: it fired, and why. */
static void note_down(const tr_msg *m, bool *down, int *reason)
{
    const tr_down_info *d = TR_PAYLOAD(m, tr_down_info);
    TT_CHECK(d != NULL);
    *down = true;
    *reason = d != NULL ? d->reason : 0;
}

/* B: answers every PING to its sender; monitors the first sender, so
 * that B sees the connection go down as well. */
static void service(tr_ctx *cx, void *state, const tr_msg *m)
{
    (void)state;
    if (m->type == PING) {
        const uint32_t *seq = ping_seq(m);
        if (seq == NULL)
            return;
        seen.svc_got[*seq]++;
        monitor_peer(cx, &seen.driver, m->from);
        TT_CHECK(tr_send(cx, m->from, PING, seq, sizeof *seq) == 0);
    } else if (m->type == TR_DOWN) {
        note_down(m, &seen.down_b, &seen.down_reason_b);
    }
}

/* A phase's sends: `count` PINGs from `first`, by name or by pid. */
typedef struct go {
    uint32_t first, count;
} go;

static void driver(tr_ctx *cx, void *state, const tr_msg *m)
{
    (void)state;
    const go *g = TR_PAYLOAD(m, go);
    if (m->type == GO && g != NULL) {
        for (uint32_t s = g->first; s < g->first + g->count; s++)
            TT_CHECK(tr_send_named(cx, "svc", NB, PING, &s, sizeof s) == 0);
    } else if (m->type == GO_PID && g != NULL) {
        for (uint32_t s = g->first; s < g->first + g->count; s++)
            TT_CHECK(tr_send(cx, seen.svc, PING, &s, sizeof s) == 0);
    } else if (m->type == PING) {
        const uint32_t *seq = ping_seq(m);
        if (seq == NULL)
            return;
        seen.replies[*seq]++;
        monitor_peer(cx, &seen.svc, m->from);
        if (++seen.answered == seen.want)
            seen.phase_done = true;
    } else if (m->type == TR_DOWN) {
        note_down(m, &seen.down_a, &seen.down_reason_a);
    }
}

static tr_runtime *sim_node(uint64_t seed, const char *name, const char *addr)
{
    tr_config cfg;
    tr_config_init(&cfg);
    cfg.sim_seed = seed;
    cfg.sim_options = OPTS;
    tr_runtime *rt = NULL;
    CU_ASSERT_FATAL(tr_runtime_create(&cfg, &rt) == 0);
    CU_ASSERT_FATAL(tr__sim_on());
    tr_node_opts o = {.name = name, .cookie = "sim_cookie", .host = addr,
                      .tick_ns = 8 * TR_SEC};
    int rc = tr_node_start(tr_runtime_ctx(rt), &o);
    TT_EQ(rc, 0);
    CU_ASSERT_FATAL(rc == 0);
    return rt;
}

static tr_runtime *start_b(uint64_t seed)
{
    tr_runtime *b = sim_node(seed, NB, ADDR_B);
    tr_actor_spec s = {.behaviour = service, .name = "svc"};
    TT_EQ(tr_spawn_spec(tr_runtime_ctx(b), &s, NULL), 0);
    TT_EQ(tr_runtime_start(b), 0);
    seen.driver = TR_PID_NONE;
    return b;
}

/* The usual pair: node A with its driver, node B with its service, both
 * started, nothing seen yet. */
static tr_runtime *start_pair(uint64_t seed, tr_pid *drv, tr_runtime **b)
{
    memset(&seen, 0, sizeof seen);
    tr_runtime *a = sim_node(seed, NA, ADDR_A);
    TT_EQ(tr_spawn(tr_runtime_ctx(a), driver, NULL, 0, drv), 0);
    TT_EQ(tr_runtime_start(a), 0);
    *b = start_b(seed);
    return a;
}

static void end_node(tr_runtime *rt)
{
    TT_EQ(tr_node_stop(tr_runtime_ctx(rt)), 0);
    tr_runtime_shutdown(rt);
    TT_EQ(tr_runtime_join(rt), 1);
    tr_runtime_destroy(rt);
}

/* Runs the simulation until *flag; false (and a note) if it ended first. */
static bool drive(tr_runtime *rt, const bool *flag, const char *what)
{
    bool ok = tr__sched_drive(rt, flag);
    if (!ok)
        printf("\n    the simulation ended before: %s\n", what);
    return ok;
}

/* Sends count PINGs from first (by name, or to the pid learnt) and runs
 * until every one is answered. */
static bool exchange(tr_runtime *a, tr_pid drv, uint32_t first, uint32_t count, bool by_pid)
{
    seen.want = seen.answered + count;
    seen.phase_done = false;
    go g = {first, count};
    TT_EQ(tr_send(tr_runtime_ctx(a), drv, by_pid ? GO_PID : GO, &g, sizeof g), 0);
    return drive(a, &seen.phase_done, "the replies");
}

/* Each of [0, n) seen exactly once at both ends, none past n. */
static bool counted_once(uint32_t n)
{
    for (uint32_t s = 0; s < MAXSEQ; s++) {
        unsigned want = s < n ? 1 : 0;
        if (seen.svc_got[s] != want || seen.replies[s] != want) {
            printf("\n    seq %u: service got %u, driver %u (want %u)\n", s, seen.svc_got[s],
                   seen.replies[s], want);
            return false;
        }
    }
    return true;
}

static uint32_t creation_of(tr_runtime *rt, tr_pid remote)
{
    erlang_pid e;
    uint32_t peer, c = 0;
    tr__dist_lock();
    tr__dist_node *n = tr__dist_node_of(rt, 0);
    if (n != NULL && tr__dist_pid_out(n, remote, &e, &peer) == 0)
        c = e.creation;
    tr__dist_unlock();
    return c;
}

/* ---- (a) a remote send and its reply ---- */

/* One run: 20 PINGs by name, 20 to the pid learnt; the trace hash. */
static uint64_t ping_run(uint64_t seed, bool *ok)
{
    tr_pid drv;
    tr_runtime *b, *a = start_pair(seed, &drv, &b);
    *ok = exchange(a, drv, 0, 20, false) && exchange(a, drv, 20, 20, true) && counted_once(40);
    *ok = *ok && tr__dist_conns_up(a) == 1 && tr__dist_conns_up(b) == 1;
    end_node(b);
    end_node(a);
    return tr_sim_hash();
}

static void remote_send_and_reply(void)
{
    bool ok1, ok2;
    uint64_t h1 = ping_run(4242, &ok1), h2 = ping_run(4242, &ok2);
    CU_ASSERT(ok1 && ok2);
    TT_EQ(h1, h2);
    printf("\n    seed 4242: hash %016" PRIx64 " twice", h1);
    TT_NO_ERRORS();
}

static void many_seeds(void)
{
    enum { SEEDS = 50 };
    uint64_t hashes[SEEDS];
    unsigned passed = 0, distinct = 0;
    for (uint64_t s = 1; s <= SEEDS; s++) {
        bool ok;
        hashes[s - 1] = ping_run(s, &ok);
        if (ok)
            passed++;
        else
            printf("\n    seed %" PRIu64 " failed", s);
        bool fresh = true;
        for (uint64_t k = 0; k + 1 < s; k++)
            fresh &= hashes[k] != hashes[s - 1];
        distinct += fresh;
    }
    tr_sim_stats st;
    tr_sim_stats_get(&st);
    printf("\n    %u of %d seeds passed, %u distinct hashes (last run: %" PRIu64
           " turns, %.3f s virtual)",
           passed, SEEDS, distinct, st.turns, (double)st.virtual_ns / 1e9);
    TT_EQ(passed, SEEDS);
    CU_ASSERT(distinct > SEEDS / 2);
    TT_NO_ERRORS();
}

/* ---- (b) a node crashes and comes back with a new creation ---- */

static void crash_and_restart_one(uint64_t seed)
{
    tr_pid drv;
    tr_runtime *b, *a = start_pair(seed, &drv, &b);
    CU_ASSERT_FATAL(exchange(a, drv, 0, 10, false));
    tr_pid old_svc = seen.svc;
    uint32_t old_creation = creation_of(a, old_svc);
    CU_ASSERT(old_creation != 0);

    /* B goes, with no goodbye to its actors; A's monitor of its service fires. */
    end_node(b);
    CU_ASSERT_FATAL(drive(a, &seen.down_a, "node-down at A"));
    TT_EQ(seen.down_reason_a, TR_EXIT_NOCONNECTION);
    TT_EQ(tr__dist_conns_up(a), 0);

    /* B again, under the same name: EPMD hands it the next creation. */
    memset(seen.svc_got, 0, sizeof seen.svc_got);
    memset(seen.replies, 0, sizeof seen.replies);
    seen.answered = 0;
    b = start_b(seed);
    CU_ASSERT_FATAL(exchange(a, drv, 0, 10, false));
    CU_ASSERT(counted_once(10));
    CU_ASSERT(seen.svc != TR_PID_NONE && seen.svc != old_svc);
    uint32_t new_creation = creation_of(a, seen.svc);
    CU_ASSERT(new_creation != 0 && new_creation != old_creation);
    TT_EQ(creation_of(a, old_svc), 0); /* the old incarnation's pid is gone */
    TT_EQ(tr__dist_conns_up(a), 1);
    end_node(b);
    end_node(a);
}

static void crash_and_restart(void)
{
    for (uint64_t s = 100; s < 110; s++)
        crash_and_restart_one(s);
    TT_NO_ERRORS();
}

/* ---- three nodes: a link across nodes, and one node's crash seen by both others ---- */

/* What C's linker saw. */
static struct {
    bool linked;      /* its link to B's service is in place at both ends */
    bool exited;
    int exit_reason;
    unsigned replies;
} at_c;

enum { LINK_SEQ = 100 };

/* On C: traps exits, asks B's service once, links to it, asks again: the
 * second answer comes after the link (LINK went first on the same
 * connection), so then both ends hold it. */
static void linker(tr_ctx *cx, void *state, const tr_msg *m)
{
    (void)state;
    uint32_t seq = LINK_SEQ;
    if (m->type == GO) {
        tr_trap_exits(cx, true);
        TT_CHECK(tr_send_named(cx, "svc", NB, PING, &seq, sizeof seq) == 0);
    } else if (m->type == PING) {
        at_c.replies++;
        if (at_c.replies == 1) {
            TT_CHECK(tr_link(cx, m->from) == 0);
            seq = LINK_SEQ + 1;
            TT_CHECK(tr_send(cx, m->from, PING, &seq, sizeof seq) == 0);
        } else {
            at_c.linked = true;
        }
    } else if (m->type == TR_EXIT) {
        const tr_exit_info *e = TR_PAYLOAD(m, tr_exit_info);
        TT_CHECK(e != NULL && !at_c.exited);
        at_c.exited = true;
        at_c.exit_reason = e != NULL ? e->reason : 0;
    }
}

static void three_nodes_one_crash(void)
{
    memset(&seen, 0, sizeof seen);
    memset(&at_c, 0, sizeof at_c);
    tr_runtime *a = sim_node(300, NA, ADDR_A);
    tr_runtime *c = sim_node(300, NC, ADDR_C);
    tr_pid drv, lk;
    TT_EQ(tr_spawn(tr_runtime_ctx(a), driver, NULL, 0, &drv), 0);
    TT_EQ(tr_spawn(tr_runtime_ctx(c), linker, NULL, 0, &lk), 0);
    TT_EQ(tr_runtime_start(a), 0);
    TT_EQ(tr_runtime_start(c), 0);
    tr_runtime *b = start_b(300);
    TT_EQ(tr_send(tr_runtime_ctx(c), lk, GO, NULL, 0), 0);
    CU_ASSERT_FATAL(exchange(a, drv, 0, 10, false));
    CU_ASSERT_FATAL(drive(a, &at_c.linked, "the link from C"));
    TT_EQ(tr__dist_conns_up(b), 2);
    /* B's crash: A's monitor and C's link fire, each once. */
    end_node(b);
    CU_ASSERT_FATAL(drive(a, &seen.down_a, "node-down at A"));
    CU_ASSERT_FATAL(drive(a, &at_c.exited, "the link's exit at C"));
    TT_EQ(seen.down_reason_a, TR_EXIT_NOCONNECTION);
    TT_EQ(at_c.exit_reason, TR_EXIT_NOCONNECTION);
    TT_EQ(tr__dist_conns_up(a), 0);
    TT_EQ(tr__dist_conns_up(c), 0);
    for (uint32_t s = 0; s < MAXSEQ; s++) {
        unsigned want = s < 10 || s == LINK_SEQ || s == LINK_SEQ + 1 ? 1 : 0;
        TT_EQ(seen.svc_got[s], want);
        TT_EQ(seen.replies[s], s < 10 ? 1 : 0);
    }
    TT_EQ(at_c.replies, 2);
    end_node(c);
    end_node(a);
    TT_NO_ERRORS();
}

/* ---- both nodes dial each other at once ---- */

static unsigned echo_got[MAXSEQ], back_got[MAXSEQ];
static unsigned back_total;
static bool back_done;

/* On A, named "echo": answers every PING. */
static void echo(tr_ctx *cx, void *state, const tr_msg *m)
{
    (void)state;
    const uint32_t *seq = TR_PAYLOAD(m, uint32_t);
    if (m->type == PING && seq != NULL && *seq < MAXSEQ) {
        echo_got[*seq]++;
        TT_CHECK(tr_send(cx, m->from, PING, seq, sizeof *seq) == 0);
    }
}

/* On B: PINGs A's echo by name, 20 of them, and counts the answers. */
static void pinger(tr_ctx *cx, void *state, const tr_msg *m)
{
    (void)state;
    const uint32_t *seq = TR_PAYLOAD(m, uint32_t);
    if (m->type == GO) {
        for (uint32_t s = 0; s < 20; s++)
            TT_CHECK(tr_send_named(cx, "echo", NA, PING, &s, sizeof s) == 0);
    } else if (m->type == PING && seq != NULL && *seq < MAXSEQ) {
        back_got[*seq]++;
        back_done = ++back_total == 20;
    }
}

/* The greater name's attempt wins (Erlang's rule); what the losing
 * attempt held goes out on the winner: nothing lost either way. */
static bool simultaneous_one(uint64_t seed)
{
    memset(&seen, 0, sizeof seen);
    memset(echo_got, 0, sizeof echo_got);
    memset(back_got, 0, sizeof back_got);
    back_total = 0;
    back_done = false;
    tr_runtime *a = sim_node(seed, NA, ADDR_A);
    tr_actor_spec es = {.behaviour = echo, .name = "echo"};
    TT_EQ(tr_spawn_spec(tr_runtime_ctx(a), &es, NULL), 0);
    tr_pid drv, pg;
    TT_EQ(tr_spawn(tr_runtime_ctx(a), driver, NULL, 0, &drv), 0);
    tr_runtime *b = sim_node(seed, NB, ADDR_B);
    tr_actor_spec s = {.behaviour = service, .name = "svc"};
    TT_EQ(tr_spawn_spec(tr_runtime_ctx(b), &s, NULL), 0);
    TT_EQ(tr_spawn(tr_runtime_ctx(b), pinger, NULL, 0, &pg), 0);
    /* Both GOs wait until the runtimes start: the two dials race. */
    go g = {0, 20};
    seen.want = 20;
    TT_EQ(tr_send(tr_runtime_ctx(a), drv, GO, &g, sizeof g), 0);
    TT_EQ(tr_send(tr_runtime_ctx(b), pg, GO, NULL, 0), 0);
    TT_EQ(tr_runtime_start(a), 0);
    TT_EQ(tr_runtime_start(b), 0);
    bool ok = drive(a, &seen.phase_done, "A's replies") && drive(a, &back_done, "B's replies");
    ok = ok && counted_once(20);
    for (uint32_t k = 0; k < MAXSEQ; k++)
        ok = ok && echo_got[k] == (k < 20) && back_got[k] == (k < 20);
    ok = ok && tr__dist_conns_up(a) == 1 && tr__dist_conns_up(b) == 1;
    end_node(b);
    end_node(a);
    return ok;
}

static void simultaneous_connect(void)
{
    unsigned passed = 0;
    for (uint64_t s = 400; s < 450; s++)
        if (simultaneous_one(s))
            passed++;
        else
            printf("\n    seed %" PRIu64 " failed", s);
    TT_EQ(passed, 50);
    TT_NO_ERRORS();
}

/* ---- (c) a partition between the nodes, then healing ---- */

static void partition_one(uint64_t seed)
{
    tr_pid drv;
    tr_runtime *b, *a = start_pair(seed, &drv, &b);
    CU_ASSERT_FATAL(exchange(a, drv, 0, 30, false));

    /* Every path between the two listeners and anything else of their
     * hosts: both directions of the connection, whichever end dialled. */
    tr__dist_lock();
    uint16_t pa = tr__dist_node_of(a, 0)->port, pb = tr__dist_node_of(b, 0)->port;
    tr__dist_unlock();
    char ga[64], gb[64];
    snprintf(ga, sizeof ga, ADDR_A ":%u " ADDR_B ":%u", (unsigned)pa, (unsigned)pb);
    snprintf(gb, sizeof gb, ADDR_A " " ADDR_B);
    uint64_t cut_at = tr_now(NULL);
    TT_EQ(tr_sim_partition(ga, gb, 0, 0), 0);
    CU_ASSERT_FATAL(drive(a, &seen.down_a, "node-down at A"));
    CU_ASSERT_FATAL(drive(a, &seen.down_b, "node-down at B"));
    TT_EQ(seen.down_reason_a, TR_EXIT_NOCONNECTION);
    TT_EQ(seen.down_reason_b, TR_EXIT_NOCONNECTION);
    uint64_t down_after = tr_now(NULL) - cut_at;

    /* Healed: the next named send dials again and gets through. */
    tr_sim_heal();
    CU_ASSERT_FATAL(exchange(a, drv, 30, 30, false));
    CU_ASSERT(counted_once(60));
    TT_EQ(tr__dist_conns_up(a), 1);
    TT_EQ(tr__dist_conns_up(b), 1);
    if (seed == 200)
        printf("\n    seed 200: both sides down %.3f s (virtual) after the cut", down_after / 1e9);
    end_node(b);
    end_node(a);
}

static void partition_and_heal(void)
{
    for (uint64_t s = 200; s < 210; s++)
        partition_one(s);
    TT_NO_ERRORS();
}

/* ---- (d) a name the simulated EPMD does not know ---- */

/* What node A's dead-letter sink saw: the sequence numbers, in order. */
static struct {
    unsigned n;
    uint32_t seq[8];
    bool three;
} dead;

static void dead_sink(tr_ctx *cx, void *state, const tr_msg *m)
{
    (void)cx, (void)state;
    const tr_dead_letter *d = TR_PAYLOAD_HEAD(m, tr_dead_letter);
    TT_CHECK(m->type == TR_DEAD_LETTER && d != NULL && d->type == PING &&
             d->len == sizeof(uint32_t));
    if (d == NULL || d->len != sizeof(uint32_t) || dead.n >= 8)
        return;
    memcpy(&dead.seq[dead.n++], m->data + sizeof *d, sizeof(uint32_t));
    dead.three = dead.n == 3;
}

/* Node B is not up yet: the lookup fails in its first turn and the three
 * PINGs sent by name become dead letters, in order (tr_send_named
 * returned 0 for each: the driver checks); once B is up, the next send
 * by name looks again and connects. */
static void unknown_name(void)
{
    memset(&seen, 0, sizeof seen);
    memset(&dead, 0, sizeof dead);
    tr_runtime *a = sim_node(77, NA, ADDR_A);
    tr_pid drv, sink;
    TT_EQ(tr_spawn(tr_runtime_ctx(a), driver, NULL, 0, &drv), 0);
    TT_EQ(tr_spawn(tr_runtime_ctx(a), dead_sink, NULL, 0, &sink), 0);
    TT_EQ(tr_runtime_dead_letters(a, sink), 0);
    TT_EQ(tr_runtime_start(a), 0);
    go g = {0, 3};
    TT_EQ(tr_send(tr_runtime_ctx(a), drv, GO, &g, sizeof g), 0);
    CU_ASSERT_FATAL(drive(a, &dead.three, "three dead letters"));
    for (uint32_t i = 0; i < 3; i++)
        TT_EQ(dead.seq[i], i);

    tr_runtime *b = start_b(77);
    CU_ASSERT_FATAL(exchange(a, drv, 3, 2, false));
    TT_EQ(seen.svc_got[3] + seen.svc_got[4], 2);
    TT_EQ(seen.replies[3] + seen.replies[4], 2);
    TT_EQ(dead.n, 3);
    tr_stats st;
    tr_runtime_stats(a, &st);
    TT_EQ(st.dead_letters, 3);
    end_node(b);
    end_node(a);
    TT_NO_ERRORS();
}

/* ---- (e) a node back before its old connection is seen down ---- */

/* B crashes behind a one-way cut, so its connection's close never
 * reaches A; a new B of the same name dials A (its pinger sends to A's
 * echo by name) before A's ticks have found the old connection dead. (A
 * dialled B's listener, and the simulated sockets name A's end by B's
 * host: the cut is from B's listener to both hosts.) A answers "alive", the new B "true" (it has no
 * connection to A), and A drops the old connection there and then: its
 * driver's monitor of the old service fires (noconnection), and every
 * PING of the new B comes back once. (Before, A refused the new B with
 * "nok" until its ticks found the old connection dead, and what B had
 * sent waited for a later send to dial again: the run ended at its
 * virtual time limit.) The virtual time from the GO to the last answer
 * is printed for one seed; the tick time is 8 s. */
static bool restart_unseen_one(uint64_t seed)
{
    tr_pid drv, pg;
    tr_runtime *b, *a = start_pair(seed, &drv, &b);
    memset(echo_got, 0, sizeof echo_got);
    memset(back_got, 0, sizeof back_got);
    back_total = 0;
    back_done = false;
    tr_actor_spec es = {.behaviour = echo, .name = "echo"};
    TT_EQ(tr_spawn_spec(tr_runtime_ctx(a), &es, NULL), 0);
    bool ok = exchange(a, drv, 0, 10, false) && counted_once(10);

    /* Nothing from B's end of the old connection (B's listener: A
     * dialled it) reaches A, its FIN included; A's packets still go. */
    tr__dist_lock();
    uint16_t pb = tr__dist_node_of(b, 0)->port;
    tr__dist_unlock();
    char from_b[32];
    snprintf(from_b, sizeof from_b, ADDR_B ":%u", (unsigned)pb);
    TT_EQ(tr_sim_partition(from_b, ADDR_A " " ADDR_B, 1, 0), 0);
    end_node(b);
    ok = ok && !seen.down_a;
    b = sim_node(seed, NB, ADDR_B);
    TT_EQ(tr_spawn(tr_runtime_ctx(b), pinger, NULL, 0, &pg), 0);
    TT_EQ(tr_send(tr_runtime_ctx(b), pg, GO, NULL, 0), 0);
    uint64_t go_at = tr_now(NULL);
    TT_EQ(tr_runtime_start(b), 0);
    ok = ok && drive(a, &back_done, "the new B's replies");
    if (seed == 500)
        printf("\n    seed 500: the new B's 20 answers %.3f s (virtual) after its GO",
               (tr_now(NULL) - go_at) / 1e9);
    ok = ok && seen.down_a && seen.down_reason_a == TR_EXIT_NOCONNECTION;
    for (uint32_t k = 0; k < MAXSEQ; k++)
        ok = ok && echo_got[k] == (k < 20) && back_got[k] == (k < 20);
    ok = ok && tr__dist_conns_up(a) == 1 && tr__dist_conns_up(b) == 1;
    tr_sim_heal();
    end_node(b);
    end_node(a);
    return ok;
}

static void restart_unseen(void)
{
    unsigned passed = 0;
    for (uint64_t s = 500; s < 510; s++)
        if (restart_unseen_one(s))
            passed++;
        else
            printf("\n    seed %" PRIu64 " failed", s);
    TT_EQ(passed, 10);
    TT_NO_ERRORS();
}

void register_sim_dist_tests(void)
{
    CU_pSuite s = tt_suite("sim_dist");
    tt_test(s, "remote_send_and_reply", remote_send_and_reply);
    tt_test(s, "many_seeds", many_seeds);
    tt_test(s, "crash_and_restart", crash_and_restart);
    tt_test(s, "partition_and_heal", partition_and_heal);
    tt_test(s, "three_nodes_one_crash", three_nodes_one_crash);
    tt_test(s, "simultaneous_connect", simultaneous_connect);
    tt_test(s, "unknown_name", unknown_name);
    tt_test(s, "restart_unseen", restart_unseen);
}
