/* test_dist_restart.c — a peer node restarts (issue 13, acceptance item
 * 5). Node b runs, is stopped, and comes back under the same name, so
 * EPMD hands it a new creation; its first actor takes the same slot and
 * generation as before, so a pid of the old incarnation that leaked
 * through would reach it. From node a: a pid of b's earlier incarnation
 * is a dead letter (tr_send returns 0, a's dead_letters grows by one,
 * nothing arrives), before and after the reconnection; the next named
 * send re-establishes the connection, and the new pids work. */
#include <stdlib.h>
#include <string.h>

#include "../dist/dist.h"
#include "dist_util.h"

enum { GO = 1, HELLO, SEND, DATA };

/* Per incarnation of b: messages its service got. */
static atomic_int got[2];
/* Node a's client: the service pid each HELLO answer came from, and the
 * result of its last tr_send. */
static atomic_uint_fast64_t svc_pid[2];
static atomic_int hellos, sends, last_rc;

static void service(tr_ctx *cx, void *state, const tr_msg *m)
{
    atomic_int *count = *(atomic_int **)state;
    if (m->type == HELLO)
        TT_CHECK(tr_send(cx, m->from, HELLO, NULL, 0) == 0);
    else if (m->type == DATA)
        atomic_fetch_add(count, 1);
}

static void client(tr_ctx *cx, void *state, const tr_msg *m)
{
    (void)state;
    if (m->type == GO) {
        TT_CHECK(tr_send_named(cx, "svc", "tt_rb@localhost", HELLO, NULL, 0) == 0);
    } else if (m->type == HELLO) {
        int k = atomic_load(&hellos);
        if (k < 2)
            atomic_store(&svc_pid[k], m->from);
        atomic_fetch_add(&hellos, 1);
    } else if (m->type == SEND) {
        const tr_pid *to = TR_PAYLOAD(m, tr_pid);
        TT_CHECK(to != NULL);
        if (to != NULL)
            atomic_store(&last_rc, tr_send(cx, *to, DATA, NULL, 0));
        atomic_fetch_add(&sends, 1);
    }
}

static bool wait_dead(tr_runtime *rt, uint64_t want)
{
    for (double until = tt_now() + 30; tt_dead_letters(rt) < want && tt_now() < until;)
        tt_sleep_ms(2);
    return tt_dead_letters(rt) == want;
}

/* The client sends DATA to `to`; returns what tr_send returned. */
static int send_via(tr_runtime *a, tr_pid c, tr_pid to)
{
    int before = atomic_load(&sends);
    atomic_store(&last_rc, -9999);
    TT_EQ(tr_send(tr_runtime_ctx(a), c, SEND, &to, sizeof to), 0);
    CU_ASSERT(tt_wait_count(&sends, before + 1, 30));
    return atomic_load(&last_rc);
}

static tr_runtime *start_b(uint16_t epmd, int incarnation)
{
    tr_runtime *b = dt_node("tt_rb", epmd, 0);
    atomic_int *count = &got[incarnation];
    tr_actor_spec s = {.behaviour = service, .state = &count, .state_size = sizeof count,
                       .name = "svc"};
    TT_EQ(tr_spawn_spec(tr_runtime_ctx(b), &s, NULL), 0);
    return b;
}

static uint32_t peer_creation(tr_runtime *a)
{
    uint32_t c = 0, idx;
    tr__dist_lock();
    tr__dist_node *n = tr__dist_node_of(a, 0);
    tr__peer *p = n != NULL ? tr__dist_peer(n, "tt_rb@localhost", &idx) : NULL;
    if (p != NULL && p->up)
        c = p->creation;
    tr__dist_unlock();
    return c;
}

static void test_old_incarnation_pids_are_dead_letters_new_ones_work(void)
{
    if (dt_skip())
        return;
    uint16_t epmd = dt_epmd_start();
    CU_ASSERT_FATAL(epmd != 0);
    tr_runtime *a = dt_node("tt_ra", epmd, 0);
    tr_pid c;
    TT_EQ(tr_spawn(tr_runtime_ctx(a), client, NULL, 0, &c), 0);

    /* First incarnation: connect, learn the service's pid, use it. */
    tr_runtime *b = start_b(epmd, 0);
    TT_EQ(tr_send(tr_runtime_ctx(a), c, GO, NULL, 0), 0);
    CU_ASSERT_FATAL(tt_wait_count(&hellos, 1, 30));
    tr_pid old = (tr_pid)atomic_load(&svc_pid[0]);
    uint32_t creation1 = peer_creation(a);
    CU_ASSERT(creation1 != 0);
    TT_EQ(send_via(a, c, old), 0);
    CU_ASSERT(tt_wait_count(&got[0], 1, 30));
    TT_EQ(tt_dead_letters(a), 0);

    /* b goes away; a sees the connection go down. */
    dt_node_end(b);
    for (double until = tt_now() + 30; tr__dist_conns_up(a) != 0 && tt_now() < until;)
        tt_sleep_ms(2);
    TT_EQ(tr__dist_conns_up(a), 0);

    /* b comes back under the same name; an old pid while no connection is up. */
    /* The going down may leave dead letters of its own (what was in
     * flight to b's connection actor): count from here. */
    uint64_t base = tt_dead_letters(a);
    b = start_b(epmd, 1);
    TT_EQ(send_via(a, c, old), 0);
    CU_ASSERT(wait_dead(a, base + 1));
    TT_EQ(tr__dist_conns_up(a), 0); /* a dead letter opens no connection */

    /* The next named send connects again, to the new incarnation. */
    TT_EQ(tr_send(tr_runtime_ctx(a), c, GO, NULL, 0), 0);
    CU_ASSERT_FATAL(tt_wait_count(&hellos, 2, 30));
    tr_pid fresh = (tr_pid)atomic_load(&svc_pid[1]);
    CU_ASSERT(fresh != old);
    uint32_t creation2 = peer_creation(a);
    CU_ASSERT(creation2 != 0 && creation2 != creation1);
    TT_EQ(tr__dist_conns_up(a), 1);

    /* Old pid with the new connection up: still dead. Then the new pid:
     * it arrives after the old send would have (same pair, in order), so
     * a count of exactly 1 says the old one never reached the new service. */
    TT_EQ(send_via(a, c, old), 0);
    CU_ASSERT(wait_dead(a, base + 2));
    TT_EQ(send_via(a, c, fresh), 0);
    CU_ASSERT(tt_wait_count(&got[1], 1, 30));
    TT_EQ(atomic_load(&got[1]), 1);
    TT_EQ(atomic_load(&got[0]), 1);
    TT_EQ(tt_dead_letters(a), base + 2);
    TT_EQ(tt_dead_letters(b), 0);
    TT_NO_ERRORS();
    dt_node_end(b);
    dt_node_end(a);
    dt_epmd_stop(epmd);
}

void register_dist_restart_tests(void)
{
    CU_pSuite s = tt_suite("dist_restart");
    tt_test(s, "old_incarnation_pids_are_dead_letters_new_ones_work",
            test_old_incarnation_pids_are_dead_letters_new_ones_work);
}
