/* test_dist_fault.c — links and monitors from troupe actors to processes
 * of another node (two troupe nodes in this process, over loopback): a
 * remote end with a reason reaches the linked, trapping actor as TR_EXIT
 * and its monitor as TR_DOWN with that reason; when the other node goes
 * away, both fire once more with TR_EXIT_NOCONNECTION, and never again. */
#include <stdlib.h>
#include <string.h>

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

void register_dist_fault_tests(void)
{
    CU_pSuite s = CU_add_suite("dist_fault", NULL, NULL);
    tt_test(s, "remote_links_and_monitors_fire_with_reason_then_noconnection",
            test_remote_links_and_monitors_fire_with_reason_then_noconnection);
}
