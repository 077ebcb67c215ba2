/* test_dist_fault.c — links and monitors from troupe actors to processes
 * of another node (two troupe nodes in this process, over loopback): a
 * remote end with a reason reaches the linked, trapping actor as TR_EXIT
 * and its monitor as TR_DOWN with that reason; when the other node goes
 * away, both fire once more with TR_EXIT_NOCONNECTION, and never again.
 * A link undone with tr_unlink is gone on both nodes (UNLINK_ID out, and
 * in on the other node): the other end's record drops it, and its end
 * with a reason reaches nobody, trapping or not. */
#include <stdlib.h>
#include <string.h>

#include "../actors/context.h"
#include "../actors/fault.h"
#include "../dist/dist.h"
#include "dist_util.h"

enum { GO = 1, HELLO, READY, DIE };

static atomic_int readies, nexits, ndowns, exit_reason[4], down_reason[4];
static atomic_int exit_from_ok, down_from_ok;

struct watch {
    tr_pid watched[2];
    int n;
};

static void watcher(tr_ctx *cx, void *state, const tr_msg *m)
{
    struct watch *w = state;
    tr_trap_exits(cx, true);
    if (m->type == HELLO) {
        uint64_t ref;
        TT_CHECK(m->from != TR_PID_NONE);
        TT_CHECK(tr_link(cx, m->from) == 0);
        TT_CHECK(tr_monitor(cx, m->from, &ref) == 0);
        if (w->n < 2)
            w->watched[w->n++] = m->from;
        TT_CHECK(tr_send(cx, m->from, READY, NULL, 0) == 0);
    } else if (m->type == TR_EXIT) {
        const tr_exit_info *e = TR_PAYLOAD(m, tr_exit_info);
        int k = atomic_fetch_add(&nexits, 1);
        if (e != NULL && k < 4) {
            atomic_store(&exit_reason[k], e->reason);
            if (e->pid == w->watched[k < 2 ? k : 1])
                atomic_fetch_add(&exit_from_ok, 1);
        }
    } else if (m->type == TR_DOWN) {
        const tr_down_info *d = TR_PAYLOAD(m, tr_down_info);
        int k = atomic_fetch_add(&ndowns, 1);
        if (d != NULL && k < 4) {
            atomic_store(&down_reason[k], d->reason);
            if (d->pid == w->watched[k < 2 ? k : 1])
                atomic_fetch_add(&down_from_ok, 1);
        }
    }
}

static void service(tr_ctx *cx, void *state, const tr_msg *m)
{
    (void)state;
    if (m->type == GO)
        TT_CHECK(tr_send_named(cx, "watcher", "tt_fa@localhost", HELLO, NULL, 0) == 0);
    else if (m->type == READY)
        atomic_fetch_add(&readies, 1);
    else if (m->type == DIE)
        tr_exit(cx, 5, "asked to");
}

static void test_remote_links_and_monitors_fire_with_reason_then_noconnection(void)
{
    if (dt_skip())
        return;
    uint16_t epmd = dt_epmd_start();
    CU_ASSERT_FATAL(epmd != 0);
    tr_runtime *a = dt_node("tt_fa", epmd, 0), *b = dt_node("tt_fb", epmd, 0);
    struct watch w0 = {.n = 0};
    tr_actor_spec ws = {.behaviour = watcher, .state = &w0, .state_size = sizeof w0,
                        .name = "watcher"};
    TT_EQ(tr_spawn_spec(tr_runtime_ctx(a), &ws, NULL), 0);
    tr_pid s1, s2;
    TT_EQ(tr_spawn(tr_runtime_ctx(b), service, NULL, 0, &s1), 0);
    TT_EQ(tr_spawn(tr_runtime_ctx(b), service, NULL, 0, &s2), 0);

    /* s1: linked and monitored from node a, then ends with reason 5. */
    TT_EQ(tr_send(tr_runtime_ctx(b), s1, GO, NULL, 0), 0);
    CU_ASSERT(tt_wait_count(&readies, 1, 30));
    TT_EQ(tr_send(tr_runtime_ctx(b), s1, DIE, NULL, 0), 0);
    CU_ASSERT(tt_wait_count(&nexits, 1, 30) && tt_wait_count(&ndowns, 1, 30));
    TT_EQ(atomic_load(&exit_reason[0]), 5);
    TT_EQ(atomic_load(&down_reason[0]), 5);

    /* s2: linked and monitored, then node b goes away. */
    TT_EQ(tr_send(tr_runtime_ctx(b), s2, GO, NULL, 0), 0);
    CU_ASSERT(tt_wait_count(&readies, 2, 30));
    dt_node_end(b);
    CU_ASSERT(tt_wait_count(&nexits, 2, 30) && tt_wait_count(&ndowns, 2, 30));
    TT_EQ(atomic_load(&exit_reason[1]), TR_EXIT_NOCONNECTION);
    TT_EQ(atomic_load(&down_reason[1]), TR_EXIT_NOCONNECTION);
    TT_EQ(atomic_load(&exit_from_ok), 2);
    TT_EQ(atomic_load(&down_from_ok), 2);
    tt_sleep_ms(100); /* a duplicate would have come by now; none may */
    TT_EQ(atomic_load(&nexits), 2);
    TT_EQ(atomic_load(&ndowns), 2);
    TT_NO_ERRORS();
    dt_node_end(a);
    dt_epmd_stop(epmd);
}

/* ---- unlink across nodes ---- */

enum { U_GO = 20, U_HELLO, U_READY, U_CHECK, U_LINKS, U_DIE };

#define NEARS 4

static atomic_int u_unlinked, u_downs, u_exits[NEARS], u_down_reason[NEARS], u_down_ok[NEARS];
static atomic_int u_links_linked[NEARS], u_links_unlinked[NEARS];

/* Links to `far` on `node`, sees the link there, unlinks, sees it gone
 * there; it also monitors far, whose TR_DOWN comes after any exit signal
 * far's end sends it (far sends its links' signals before its DOWNs, both
 * through the one connection, which keeps their order). */
struct near {
    char far[16], node[32];
    bool trap;
    int idx, phase;
    tr_pid far_pid;
    uint64_t ref;
};

static void near(tr_ctx *cx, void *state, const tr_msg *m)
{
    struct near *s = state;
    tr_trap_exits(cx, s->trap);
    uint32_t n = 0;
    switch (m->type) {
    case U_GO:
        TT_CHECK(tr_send_named(cx, s->far, s->node, U_HELLO, NULL, 0) == 0);
        break;
    case U_READY:
        s->far_pid = m->from;
        TT_CHECK(TR__PID_NODE(m->from) != 0);
        TT_CHECK(tr_link(cx, m->from) == 0);
        TT_CHECK(tr_monitor(cx, m->from, &s->ref) == 0);
        TT_CHECK(tr_send(cx, m->from, U_CHECK, NULL, 0) == 0);
        break;
    case U_LINKS:
        TT_CHECK(m->from == s->far_pid && m->len == sizeof n);
        if (m->len == sizeof n)
            memcpy(&n, m->data, sizeof n);
        if (s->phase++ == 0) { /* linked: now undo it */
            atomic_store(&u_links_linked[s->idx], (int)n);
            TT_CHECK(tr_unlink(cx, s->far_pid) == 0);
            TT_CHECK(tr_send(cx, s->far_pid, U_CHECK, NULL, 0) == 0);
        } else {
            atomic_store(&u_links_unlinked[s->idx], (int)n);
            atomic_fetch_add(&u_unlinked, 1);
        }
        break;
    case TR_EXIT:
        atomic_fetch_add(&u_exits[s->idx], 1);
        break;
    case TR_DOWN: {
        const tr_down_info *d = TR_PAYLOAD(m, tr_down_info);
        TT_CHECK(d != NULL);
        if (d != NULL) {
            atomic_store(&u_down_reason[s->idx], d->reason);
            if (d->pid == s->far_pid && d->ref == s->ref)
                atomic_fetch_add(&u_down_ok[s->idx], 1);
        }
        atomic_fetch_add(&u_downs, 1);
        break;
    }
    default:
        TT_CHECK(!"unexpected message");
    }
}

/* Answers U_HELLO with U_READY and U_CHECK with its own link count (its
 * record's, as tr_actor_info publishes it); ends with reason 5 on U_DIE. */
static void far(tr_ctx *cx, void *state, const tr_msg *m)
{
    (void)state;
    tr_actor_figures f;
    uint32_t links;
    switch (m->type) {
    case U_HELLO:
        TT_CHECK(tr_send(cx, m->from, U_READY, NULL, 0) == 0);
        break;
    case U_CHECK:
        TT_CHECK(tr_actor_info(tr_ctx_runtime(cx), tr_self(cx), &f) == 0);
        links = f.links;
        TT_CHECK(tr_send(cx, m->from, U_LINKS, &links, sizeof links) == 0);
        break;
    case U_DIE:
        tr_exit(cx, 5, "asked to");
        break;
    default:
        TT_CHECK(!"unexpected message");
    }
}

static void test_remote_unlink_ends_the_link_on_both_nodes(void)
{
    if (dt_skip())
        return;
    uint16_t epmd = dt_epmd_start();
    CU_ASSERT_FATAL(epmd != 0);
    tr_runtime *a = dt_node("tt_ua", epmd, 0), *b = dt_node("tt_ub", epmd, 0);
    /* near0 (trapping) and near1 on a link to far0 and far1 on b: our
     * UNLINK_ID goes out; near2 (trapping) and near3 on b link to far2
     * and far3 on a: theirs comes in. */
    tr_runtime *near_rt[NEARS] = {a, a, b, b}, *far_rt[NEARS] = {b, b, a, a};
    tr_pid nears[NEARS], fars[NEARS];
    for (int i = 0; i < NEARS; i++) {
        struct near s = {.trap = i % 2 == 0, .idx = i};
        snprintf(s.far, sizeof s.far, "far%d", i);
        snprintf(s.node, sizeof s.node, "%s@localhost", far_rt[i] == b ? "tt_ub" : "tt_ua");
        tr_actor_spec fs = {.behaviour = far, .name = s.far};
        TT_EQ(tr_spawn_spec(tr_runtime_ctx(far_rt[i]), &fs, &fars[i]), 0);
        TT_EQ(tr_spawn(tr_runtime_ctx(near_rt[i]), near, &s, sizeof s, &nears[i]), 0);
    }
    /* a's first, so that b finds the connection made (no simultaneous
     * connect: dist_race has those). */
    for (int i = 0; i < NEARS; i++) {
        TT_EQ(tr_send(tr_runtime_ctx(near_rt[i]), nears[i], U_GO, NULL, 0), 0);
        if (i == 1)
            CU_ASSERT(tt_wait_count(&u_unlinked, 2, 30));
    }
    CU_ASSERT(tt_wait_count(&u_unlinked, NEARS, 30));
    for (int i = 0; i < NEARS; i++) {
        TT_EQ(atomic_load(&u_links_linked[i]), 1);
        TT_EQ(atomic_load(&u_links_unlinked[i]), 0); /* the other node dropped it */
        TT_EQ(tr_send(tr_runtime_ctx(far_rt[i]), fars[i], U_DIE, NULL, 0), 0);
    }
    /* Each DOWN comes after the exit signal its far would have sent. */
    CU_ASSERT(tt_wait_count(&u_downs, NEARS, 30));
    tr_actor_figures f;
    for (int i = 0; i < NEARS; i++) {
        TT_EQ(atomic_load(&u_exits[i]), 0);
        TT_EQ(atomic_load(&u_down_reason[i]), 5);
        TT_EQ(atomic_load(&u_down_ok[i]), 1);
        TT_EQ(tr_actor_info(near_rt[i], nears[i], &f), 0); /* alive, trapping or not */
        TT_EQ(f.links, 0);
        TT_EQ(f.monitors, 0);
    }
    TT_NO_ERRORS();
    dt_node_end(b);
    dt_node_end(a);
    dt_epmd_stop(epmd);
    for (int i = 0; i < NEARS; i++)
        TT_EQ(atomic_load(&u_exits[i]), 0); /* nor noconnection at the end */
    TT_EQ(atomic_load(&u_downs), NEARS);
}

/* ---- an unlink and a new link crossing the other end's unlink ----
 * As fault/unlink_and_link_crossing_an_unlink_leave_both_ends_alike, with
 * the two ends on two nodes: the ids cross as UNLINK_ID and UNLINK_ID_ACK.
 * xb on node b links to xa on node a; xa sends xb X_CROSS and unlinks it
 * in one turn; xb, taking X_CROSS first, unlinks xa and links it again,
 * then takes xa's unlink. Both ends must end unlinked, and a later link
 * from xa must hold at both ends: xb's end reaches xa as TR_EXIT before
 * the monitor's TR_DOWN (one connection keeps their order). */
enum { X_GO = 40, X_HELLO, X_LINKED, X_CROSS, X_DONE, X_SYNC, X_SYNCED, X_DIE };
static atomic_int x_links_a, x_links_b, x_exit_reason;
static atomic_bool x_exit_first, x_done;

static uint32_t own_links(tr_ctx *cx)
{
    tr_actor_figures f;
    TT_CHECK(tr_actor_info(tr_ctx_runtime(cx), tr_self(cx), &f) == 0);
    return f.links;
}

static void xb(tr_ctx *cx, void *state, const tr_msg *m)
{
    (void)state;
    uint32_t n;
    switch (m->type) {
    case X_HELLO:
        TT_CHECK(tr_link(cx, m->from) == 0);
        TT_CHECK(tr_send(cx, m->from, X_LINKED, NULL, 0) == 0);
        break;
    case X_CROSS:
        TT_CHECK(tr_unlink(cx, m->from) == 0);
        TT_CHECK(tr_link(cx, m->from) == 0);
        TT_CHECK(tr_send(cx, m->from, X_DONE, NULL, 0) == 0);
        break;
    case X_SYNC: /* xa's unlink and ack are taken by now */
        n = own_links(cx);
        TT_CHECK(tr_send(cx, m->from, X_SYNCED, &n, sizeof n) == 0);
        break;
    case X_DIE:
        tr_exit(cx, 5, "asked to");
        break;
    default:
        TT_CHECK(!"xb: unexpected message");
    }
}

static void xa(tr_ctx *cx, void *state, const tr_msg *m)
{
    (void)state;
    uint32_t n = 0;
    uint64_t ref;
    switch (m->type) {
    case X_GO:
        TT_CHECK(tr_send_named(cx, "xb", "tt_xb@localhost", X_HELLO, NULL, 0) == 0);
        break;
    case X_LINKED: /* xb's link request is taken: it came first */
        TT_CHECK(own_links(cx) == 1);
        TT_CHECK(tr_send(cx, m->from, X_CROSS, NULL, 0) == 0);
        TT_CHECK(tr_unlink(cx, m->from) == 0);
        break;
    case X_DONE:
        TT_CHECK(tr_send(cx, m->from, X_SYNC, NULL, 0) == 0);
        break;
    case X_SYNCED: /* settled: each end has taken all the other sent */
        if (m->len == sizeof n)
            memcpy(&n, m->data, sizeof n);
        atomic_store(&x_links_b, (int)n);
        atomic_store(&x_links_a, (int)own_links(cx));
        tr_trap_exits(cx, true);
        TT_CHECK(tr_link(cx, m->from) == 0);
        TT_CHECK(tr_monitor(cx, m->from, &ref) == 0);
        TT_CHECK(tr_send(cx, m->from, X_DIE, NULL, 0) == 0);
        break;
    case TR_EXIT: {
        const tr_exit_info *e = TR_PAYLOAD(m, tr_exit_info);
        atomic_store(&x_exit_reason, e != NULL ? e->reason : -100);
        atomic_store(&x_exit_first, true);
        break;
    }
    case TR_DOWN:
        atomic_store(&x_done, true);
        break;
    default:
        TT_CHECK(!"xa: unexpected message");
    }
}

static void test_remote_unlink_and_link_crossing_an_unlink(void)
{
    if (dt_skip())
        return;
    uint16_t epmd = dt_epmd_start();
    CU_ASSERT_FATAL(epmd != 0);
    tr_runtime *a = dt_node("tt_xa", epmd, 0), *b = dt_node("tt_xb", epmd, 0);
    atomic_store(&x_links_a, -1);
    atomic_store(&x_links_b, -1);
    atomic_store(&x_exit_reason, -100);
    tr_actor_spec as = {.behaviour = xa, .name = "xa"}, bs = {.behaviour = xb, .name = "xb"};
    tr_pid pa;
    TT_EQ(tr_spawn_spec(tr_runtime_ctx(b), &bs, NULL), 0);
    TT_EQ(tr_spawn_spec(tr_runtime_ctx(a), &as, &pa), 0);
    TT_EQ(tr_send(tr_runtime_ctx(a), pa, X_GO, NULL, 0), 0);
    CU_ASSERT(tt_wait_flag(&x_done, 30));
    TT_EQ(atomic_load(&x_links_a), 0); /* gone at both ends */
    TT_EQ(atomic_load(&x_links_b), 0);
    TT_EQ(atomic_load(&x_exit_first), true); /* linked again at both ends */
    TT_EQ(atomic_load(&x_exit_reason), 5);
    TT_NO_ERRORS();
    dt_node_end(b);
    dt_node_end(a);
    dt_epmd_stop(epmd);
}

/* ---- crossing unlinks, then the connection goes ----
 * lr on node b, linked to la on node a, sends la L_X and unlinks it in
 * one turn; la, taking L_X once lr's unlink waits in its mailbox, unlinks
 * lr and stops its node in the same turn (the connection takes la's
 * UNLINK_ID, then the close: no ack can come). la's entry is then
 * unlinking, waiting for that ack: the connection's going must drop it
 * (noconnection; la also monitors lr, whose DOWN comes after that exit
 * signal). The table of links across once dropped the pair when lr's
 * UNLINK_ID came in, and la's entry waited for its ack for ever. */
enum { L_GO = 60, L_HELLO, L_LINKED, L_X };
static atomic_bool l_linked, l_done;
static atomic_int l_entries;

static void lr(tr_ctx *cx, void *state, const tr_msg *m)
{
    tr_pid *la_pid = state;
    if (m->type == L_HELLO) {
        *la_pid = m->from;
        TT_CHECK(tr_link(cx, m->from) == 0);
        TT_CHECK(tr_send(cx, m->from, L_LINKED, NULL, 0) == 0);
    } else if (m->type == L_X) { /* from the test */
        TT_CHECK(tr_send(cx, *la_pid, L_X, NULL, 0) == 0);
        TT_CHECK(tr_unlink(cx, *la_pid) == 0);
    }
}

static void la(tr_ctx *cx, void *state, const tr_msg *m)
{
    tr_pid *r = state;
    uint64_t ref;
    tr_actor_figures f;
    switch (m->type) {
    case L_GO:
        TT_CHECK(tr_send_named(cx, "lr", "tt_lb@localhost", L_HELLO, NULL, 0) == 0);
        break;
    case L_LINKED:
        *r = m->from;
        TT_CHECK(tr_monitor(cx, *r, &ref) == 0);
        atomic_store(&l_linked, true);
        break;
    case L_X: /* unlinks once lr's unlink request waits behind this */
        for (int k = 0; k < 30000; k++) {
            TT_CHECK(tr_actor_info(tr_ctx_runtime(cx), tr_self(cx), &f) == 0);
            if (f.mailbox >= 1)
                break;
            tt_sleep_ms(1);
        }
        TT_CHECK(f.mailbox >= 1);
        TT_CHECK(tr_unlink(cx, *r) == 0);
        TT_CHECK(tr_node_stop(cx) == 0);
        break;
    case TR_DOWN: { /* the connection has gone: its exit signals are taken */
        const tr__fault *fr = tr__fault_get(cx->actor);
        atomic_store(&l_entries, fr != NULL ? (int)fr->links.n : 0);
        atomic_store(&l_done, true);
        break;
    }
    default:
        TT_CHECK(!"la: unexpected message");
    }
}

static void test_crossing_unlinks_then_connection_lost(void)
{
    if (dt_skip())
        return;
    uint16_t epmd = dt_epmd_start();
    CU_ASSERT_FATAL(epmd != 0);
    tr_runtime *a = dt_node("tt_la", epmd, 0), *b = dt_node("tt_lb", epmd, 0);
    atomic_store(&l_entries, -1);
    tr_pid r = TR_PID_NONE, pa, pb;
    tr_actor_spec bs = {.behaviour = lr, .state = &r, .state_size = sizeof r, .name = "lr"};
    TT_EQ(tr_spawn_spec(tr_runtime_ctx(b), &bs, &pb), 0);
    TT_EQ(tr_spawn(tr_runtime_ctx(a), la, &r, sizeof r, &pa), 0);
    TT_EQ(tr_send(tr_runtime_ctx(a), pa, L_GO, NULL, 0), 0);
    CU_ASSERT_FATAL(tt_wait_flag(&l_linked, 30));
    TT_EQ(tr_send(tr_runtime_ctx(b), pb, L_X, NULL, 0), 0);
    CU_ASSERT(tt_wait_flag(&l_done, 30));
    TT_EQ(atomic_load(&l_entries), 0); /* nothing waits for an ack that cannot come */
    TT_NO_ERRORS();
    tr_runtime_shutdown(a);
    TT_EQ(tt_join_within(a, 30), 1);
    tr_runtime_destroy(a);
    dt_node_end(b);
    dt_epmd_stop(epmd);
}

/* ---- many links across one connection ----
 * MANY actors on node b link to one trapping hub on node a (past the few
 * a scan finds, so the connection's table of pairs is indexed:
 * actors/keyed.h); the hub unlinks every third; node b goes away: each
 * link still whole reaches the hub as TR_EXIT noconnection, once, and the
 * unlinked ones send nothing. */
#define MANY 600
enum { M_GO = 40, M_SPAWN, M_LINK, M_LINKED };

static _Atomic tr_pid m_pids[MANY];
static atomic_int m_linked, m_unlinked, m_exits[MANY], m_unexpected;

static void m_far(tr_ctx *cx, void *state, const tr_msg *m)
{
    const tr_pid *hub = state;
    if (m->type == M_LINK) {
        TT_CHECK(tr_link(cx, *hub) == 0);
        TT_CHECK(tr_send(cx, *hub, M_LINKED, NULL, 0) == 0);
    }
}

/* On b: spawns MANY m_far for the hub that asked. */
static void m_spawner(tr_ctx *cx, void *state, const tr_msg *m)
{
    (void)state;
    if (m->type != M_SPAWN)
        return;
    for (int i = 0; i < MANY; i++) {
        tr_pid p;
        TT_CHECK(tr_spawn(cx, m_far, &m->from, sizeof m->from, &p) == 0);
        TT_CHECK(tr_send(cx, p, M_LINK, NULL, 0) == 0);
    }
}

static int m_index(tr_pid p)
{
    for (int i = 0; i < MANY; i++)
        if (atomic_load(&m_pids[i]) == p)
            return i;
    return -1;
}

static void m_hub(tr_ctx *cx, void *state, const tr_msg *m)
{
    (void)state;
    if (m->type == M_GO) {
        tr_trap_exits(cx, true);
        TT_CHECK(tr_send_named(cx, "m_sp", "tt_mb@localhost", M_SPAWN, NULL, 0) == 0);
    } else if (m->type == M_LINKED) {
        int n = atomic_fetch_add(&m_linked, 1);
        atomic_store(&m_pids[n], m->from);
        if (n + 1 < MANY)
            return;
        for (int i = 0; i < MANY; i += 3)
            TT_CHECK(tr_unlink(cx, atomic_load(&m_pids[i])) == 0);
        atomic_store(&m_unlinked, 1);
    } else if (m->type == TR_EXIT) {
        const tr_exit_info *e = TR_PAYLOAD(m, tr_exit_info);
        int i = e != NULL && e->reason == TR_EXIT_NOCONNECTION ? m_index(e->pid) : -1;
        if (i >= 0)
            atomic_fetch_add(&m_exits[i], 1);
        else
            atomic_fetch_add(&m_unexpected, 1);
    }
}

static void test_many_links_across_one_connection(void)
{
    if (dt_skip())
        return;
    uint16_t epmd = dt_epmd_start();
    CU_ASSERT_FATAL(epmd != 0);
    tr_runtime *a = dt_node("tt_ma", epmd, 0), *b = dt_node("tt_mb", epmd, 0);
    tr_actor_spec ss = {.behaviour = m_spawner, .name = "m_sp"};
    tr_pid sp, hub;
    TT_EQ(tr_spawn_spec(tr_runtime_ctx(b), &ss, &sp), 0);
    TT_EQ(tr_spawn(tr_runtime_ctx(a), m_hub, NULL, 0, &hub), 0);
    TT_EQ(tr_send(tr_runtime_ctx(a), hub, M_GO, NULL, 0), 0);
    CU_ASSERT_FATAL(tt_wait_count(&m_unlinked, 1, 60));
    tr_actor_figures f;
    TT_EQ(tr_actor_info(a, hub, &f), 0);
    TT_EQ(f.links, MANY - (MANY + 2) / 3);
    dt_node_end(b); /* the connection goes */
    int wrong = 0;
    double until = tt_now() + 60;
    for (int i = 0; i < MANY; i++) {
        int want = i % 3 != 0;
        while (want && atomic_load(&m_exits[i]) == 0 && tt_now() < until)
            tt_sleep_ms(1);
    }
    TT_NO_ERRORS();
    dt_node_end(a); /* anything late has come by now */
    for (int i = 0; i < MANY; i++)
        wrong += atomic_load(&m_exits[i]) != (i % 3 != 0);
    TT_EQ(wrong, 0);
    TT_EQ(atomic_load(&m_unexpected), 0);
    dt_epmd_stop(epmd);
}

/* ---- many monitors across one connection, each way ----
 * MANY actors on node b each monitor a hub T on node a, and a watcher W on
 * a monitors each of them, so each connection's tables of monitors, ours
 * and the peer's, outgrow the scans (actors/keyed.h). W demonitors every
 * third, and every third from the second demonitors T: each end then
 * holds exactly the monitors left. The even ones end with reason 7, then
 * T ends with 9, then node b goes. Every monitor still held fires once
 * with its reason (7, 9, or noconnection for the odd ones W still
 * watches), and none other fires at all. */
enum { N_SPAWN = 60, N_HUB, N_START, N_HELLO, N_NEXT, N_DONE, N_END, N_DIE };

typedef struct n_far_state {
    int i;
    tr_pid w, t;
    uint64_t ref; /* its monitor of t */
} n_far_state;

static _Atomic tr_pid n_pids[MANY], n_bpids[MANY]; /* as a names them; as b does */
static atomic_int n_w_downs[MANY], n_t_downs[MANY], n_unexpected, n_t_dones, n_ended;

static void n_far(tr_ctx *cx, void *state, const tr_msg *m)
{
    n_far_state *s = state;
    if (m->type == N_START) {
        atomic_store(&n_bpids[s->i], tr_self(cx));
        TT_CHECK(tr_monitor(cx, s->t, &s->ref) == 0);
        TT_CHECK(tr_send(cx, s->w, N_HELLO, &s->i, sizeof s->i) == 0);
    } else if (m->type == N_NEXT) {
        if (s->i % 3 == 1)
            TT_CHECK(tr_demonitor(cx, s->ref) == 0);
        TT_CHECK(tr_send(cx, s->t, N_DONE, NULL, 0) == 0);
    } else if (m->type == N_END) {
        atomic_fetch_add(&n_ended, 1);
        tr_exit(cx, 7, "even");
    } else if (m->type == TR_DOWN) {
        const tr_down_info *d = TR_PAYLOAD(m, tr_down_info);
        if (d != NULL && d->pid == s->t && d->ref == s->ref && d->reason == 9)
            atomic_fetch_add(&n_t_downs[s->i], 1);
        else
            atomic_fetch_add(&n_unexpected, 1);
    }
}

/* On b: spawns MANY n_far once both the watcher and the hub have asked
 * (a pid crosses as a sender, not as bytes). */
static void n_spawner(tr_ctx *cx, void *state, const tr_msg *m)
{
    tr_pid *wt = state; /* the watcher's, the hub's */
    if (m->type != N_SPAWN && m->type != N_HUB)
        return;
    wt[m->type == N_HUB] = m->from;
    if (wt[0] == TR_PID_NONE || wt[1] == TR_PID_NONE)
        return;
    for (int i = 0; i < MANY; i++) {
        n_far_state s = {.i = i, .w = wt[0], .t = wt[1]};
        tr_pid p;
        TT_CHECK(tr_spawn(cx, n_far, &s, sizeof s, &p) == 0);
        TT_CHECK(tr_send(cx, p, N_START, NULL, 0) == 0);
    }
}

typedef struct n_watcher_state {
    int hellos;
    uint64_t refs[MANY];
} n_watcher_state;

static void n_watcher(tr_ctx *cx, void *state, const tr_msg *m)
{
    n_watcher_state *s = state;
    const int *i = TR_PAYLOAD(m, int);
    if (m->type == M_GO) {
        TT_CHECK(tr_send_named(cx, "n_sp", "tt_nb@localhost", N_SPAWN, NULL, 0) == 0);
    } else if (m->type == N_HELLO && i != NULL && *i >= 0 && *i < MANY) {
        atomic_store(&n_pids[*i], m->from);
        TT_CHECK(tr_monitor(cx, m->from, &s->refs[*i]) == 0);
        if (++s->hellos < MANY)
            return;
        /* Each demonitor crosses before the N_NEXT behind it. */
        for (int k = 0; k < MANY; k += 3)
            TT_CHECK(tr_demonitor(cx, s->refs[k]) == 0);
        for (int k = 0; k < MANY; k++)
            TT_CHECK(tr_send(cx, atomic_load(&n_pids[k]), N_NEXT, NULL, 0) == 0);
    } else if (m->type == TR_DOWN) {
        const tr_down_info *d = TR_PAYLOAD(m, tr_down_info);
        int k = -1;
        for (int j = 0; d != NULL && j < MANY && k < 0; j++)
            if (atomic_load(&n_pids[j]) == d->pid && s->refs[j] == d->ref)
                k = j;
        int want = k >= 0 ? (k % 2 == 0 ? 7 : TR_EXIT_NOCONNECTION) : 0;
        if (k >= 0 && d->reason == want)
            atomic_fetch_add(&n_w_downs[k], 1);
        else
            atomic_fetch_add(&n_unexpected, 1);
    }
}

static void n_hub(tr_ctx *cx, void *state, const tr_msg *m)
{
    (void)state;
    if (m->type == M_GO)
        TT_CHECK(tr_send_named(cx, "n_sp", "tt_nb@localhost", N_HUB, NULL, 0) == 0);
    else if (m->type == N_DONE)
        atomic_fetch_add(&n_t_dones, 1); /* behind its sender's demonitor, if any */
    else if (m->type == N_DIE)
        tr_exit(cx, 9, "all done");
}

/* Whether W's monitor of i fires, at the end; T's of i. */
static int n_w_fires(int i)
{
    return i % 3 != 0;
}

static int n_t_fires(int i)
{
    return i % 2 == 1 && i % 3 != 1;
}

static int n_count(int (*fires)(int))
{
    int n = 0;
    for (int i = 0; i < MANY; i++)
        n += fires(i);
    return n;
}

/* The monitors fired so far; *exact false if one fired that should not,
 * or more than once, or (at the end) one that should did not. */
static int n_fired(atomic_int *v, int (*fires)(int), bool *exact)
{
    int total = 0;
    for (int i = 0; i < MANY; i++) {
        int got = atomic_load(&v[i]);
        total += got;
        if (exact != NULL && got != fires(i))
            *exact = false;
    }
    return total;
}

static bool n_wait(atomic_int *v, int (*fires)(int), int want, double until)
{
    while (n_fired(v, fires, NULL) < want && tt_now() < until)
        tt_sleep_ms(1);
    return n_fired(v, fires, NULL) == want;
}

static void test_many_monitors_across_one_connection(void)
{
    if (dt_skip())
        return;
    uint16_t epmd = dt_epmd_start();
    CU_ASSERT_FATAL(epmd != 0);
    tr_runtime *a = dt_node("tt_na", epmd, 0), *b = dt_node("tt_nb", epmd, 0);
    tr_pid wt[2] = {TR_PID_NONE, TR_PID_NONE};
    tr_actor_spec ss = {.behaviour = n_spawner, .state = wt, .state_size = sizeof wt, .name = "n_sp"};
    tr_pid sp, t, w;
    TT_EQ(tr_spawn_spec(tr_runtime_ctx(b), &ss, &sp), 0);
    TT_EQ(tr_spawn(tr_runtime_ctx(a), n_hub, NULL, 0, &t), 0);
    n_watcher_state *ws = calloc(1, sizeof *ws);
    CU_ASSERT_FATAL(ws != NULL);
    TT_EQ(tr_spawn(tr_runtime_ctx(a), n_watcher, ws, sizeof *ws, &w), 0);
    free(ws);
    TT_EQ(tr_send(tr_runtime_ctx(a), t, M_GO, NULL, 0), 0);
    TT_EQ(tr_send(tr_runtime_ctx(a), w, M_GO, NULL, 0), 0);
    CU_ASSERT_FATAL(tt_wait_count(&n_t_dones, MANY, 60));

    /* The demonitors have reached both ends: T is watched by the ones that
     * did not demonitor it; each on b, by W unless W demonitored it, and
     * by itself's monitor of T unless it demonitored that. */
    tr_actor_figures f;
    int wrong = 0;
    TT_EQ(tr_actor_info(a, t, &f), 0);
    TT_EQ(f.monitors, (uint32_t)(MANY - (MANY + 1) / 3));
    for (int i = 0; i < MANY; i++)
        wrong += tr_actor_info(b, atomic_load(&n_bpids[i]), &f) != 0 ||
                 f.monitors != (uint32_t)((i % 3 != 0) + (i % 3 != 1));
    TT_EQ(wrong, 0);

    double until = tt_now() + 60;
    for (int i = 0; i < MANY; i += 2)
        TT_EQ(tr_send(tr_runtime_ctx(b), atomic_load(&n_bpids[i]), N_END, NULL, 0), 0);
    CU_ASSERT(tt_wait_count(&n_ended, MANY / 2, 60));
    int ended_watched = 0;
    for (int i = 0; i < MANY; i += 2)
        ended_watched += n_w_fires(i);
    CU_ASSERT(n_wait(n_w_downs, n_w_fires, ended_watched, until)); /* reason 7 */
    TT_EQ(tr_send(tr_runtime_ctx(a), t, N_DIE, NULL, 0), 0);
    CU_ASSERT(n_wait(n_t_downs, n_t_fires, n_count(n_t_fires), until)); /* reason 9 */
    dt_node_end(b); /* the connection goes: noconnection for the odd ones W watches */
    CU_ASSERT(n_wait(n_w_downs, n_w_fires, n_count(n_w_fires), until));
    TT_NO_ERRORS();
    dt_node_end(a); /* anything late has come by now */
    bool w_exact = true, t_exact = true;
    TT_EQ(n_fired(n_w_downs, n_w_fires, &w_exact), n_count(n_w_fires));
    TT_EQ(n_fired(n_t_downs, n_t_fires, &t_exact), n_count(n_t_fires));
    CU_ASSERT(w_exact);
    CU_ASSERT(t_exact);
    TT_EQ(atomic_load(&n_unexpected), 0);
    dt_epmd_stop(epmd);
}

void register_dist_fault_tests(void)
{
    CU_pSuite s = tt_suite("dist_fault");
    tt_test(s, "remote_links_and_monitors_fire_with_reason_then_noconnection",
            test_remote_links_and_monitors_fire_with_reason_then_noconnection);
    tt_test(s, "remote_unlink_ends_the_link_on_both_nodes",
            test_remote_unlink_ends_the_link_on_both_nodes);
    tt_test(s, "remote_unlink_and_link_crossing_an_unlink_leave_both_ends_alike",
            test_remote_unlink_and_link_crossing_an_unlink);
    tt_test(s, "crossing_unlinks_then_connection_lost_leave_no_entry",
            test_crossing_unlinks_then_connection_lost);
    tt_test(s, "many_links_across_one_connection_each_hear_noconnection_once",
            test_many_links_across_one_connection);
    tt_test(s, "many_monitors_across_one_connection_each_way_fire_once",
            test_many_monitors_across_one_connection);
}
