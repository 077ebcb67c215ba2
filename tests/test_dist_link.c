/* test_dist_link.c — Erlang processes linking to troupe actors: an actor
 * that ends with a reason sends EXIT with it to the linked Erlang process;
 * an Erlang process that dies with a reason reaches a trapping actor as
 * TR_EXIT; and when the Erlang node goes away, a linked trapping actor
 * gets TR_EXIT_NOCONNECTION, once. */
#include <stdlib.h>
#include <string.h>

#include "../dist/dist.h"
#include "dist_util.h"

enum { DIE = 7 };

static atomic_int exits, exit_reasons[4];

/* Sends {pid, Self} to m->from: Erlang learns our pid. */
static void send_own_pid(tr_ctx *cx, const tr_msg *m)
{
    erlang_pid me;
    uint32_t peer;
    tr__dist_lock();
    tr__dist_node *n = tr__dist_node_of(tr_ctx_runtime(cx), 0);
    int err = n != NULL ? tr__dist_pid_out(n, tr_self(cx), &me, &peer) : TR_ENOPID;
    tr__dist_unlock();
    TT_CHECK(err == 0);
    ei_x_buff x;
    ei_x_new_with_version(&x);
    ei_x_encode_tuple_header(&x, 2);
    ei_x_encode_atom(&x, "pid");
    ei_x_encode_pid(&x, &me);
    TT_CHECK(tr_send(cx, m->from, TR_DIST_TERM, x.buff, (size_t)x.index) == 0);
    ei_x_free(&x);
}

static void dier(tr_ctx *cx, void *state, const tr_msg *m)
{
    (void)state;
    if (m->type == DIE)
        tr_exit(cx, 7, "asked to");
    else if (m->type == TR_DIST_TERM && m->from != TR_PID_NONE)
        send_own_pid(cx, m);
}

static void trapper(tr_ctx *cx, void *state, const tr_msg *m)
{
    (void)state;
    tr_trap_exits(cx, true);
    if (m->type == TR_EXIT) {
        const tr_exit_info *e = TR_PAYLOAD(m, tr_exit_info);
        int k = atomic_fetch_add(&exits, 1);
        if (e != NULL && k < 4)
            atomic_store(&exit_reasons[k], e->reason);
    } else if (m->type == TR_DIST_TERM && m->from != TR_PID_NONE) {
        send_own_pid(cx, m);
    }
}

static const char script[] =
    "N = 'tt_l1@localhost', Self = self(), process_flag(trap_exit, true),"
    "{dier, N} ! {hello, Self},"
    "P = receive {pid, X} -> X after 15000 -> none end,"
    "link(P), {dier, N} ! {7, <<>>},"
    "R1 = receive {'EXIT', P, Why} -> Why after 15000 -> timeout end,"
    "io:format(\"EXIT1 ~p~n\", [R1]),"
    "{trapper, N} ! {hello, Self},"
    "Q = receive {pid, Y} -> Y after 15000 -> none end,"
    "{_, M} = spawn_monitor(fun() -> link(Q), exit(boom) end),"
    "receive {'DOWN', M, _, _, _} -> ok after 15000 -> timeout end,"
    "link(Q),"
    "{trapper, N} ! {hello, Self},"
    "receive {pid, _} -> ok after 15000 -> timeout end,"
    "io:format(\"LINKED ~p~n\", [Q]), halt().";

static void test_erlang_links_carry_exits_both_ways(void)
{
    if (dt_skip())
        return;
    uint16_t epmd = dt_epmd_start();
    CU_ASSERT_FATAL(epmd != 0);
    tr_runtime *rt = dt_node("tt_l1", epmd, 0);
    tr_ctx *cx = tr_runtime_ctx(rt);
    tr_actor_spec d = {.behaviour = dier, .name = "dier"};
    tr_actor_spec t = {.behaviour = trapper, .name = "trapper"};
    TT_EQ(tr_spawn_spec(cx, &d, NULL), 0);
    TT_EQ(tr_spawn_spec(cx, &t, NULL), 0);

    dt_erl erl;
    TT_EQ(dt_erl_start(&erl, epmd, "tt_lerl@localhost", DT_COOKIE, script), 0);
    CU_ASSERT(dt_erl_wait(&erl, 60));
    CU_ASSERT(dt_erl_is(&erl, "EXIT1", "7"));
    /* boom (a reason troupe has no number for: 1), then the node's end. */
    for (double until = tt_now() + 30; atomic_load(&exits) < 2 && tt_now() < until;)
        tt_sleep_ms(5);
    tt_sleep_ms(50); /* a duplicate would come now; none may */
    TT_EQ(atomic_load(&exits), 2);
    TT_EQ(atomic_load(&exit_reasons[0]), 1);
    TT_EQ(atomic_load(&exit_reasons[1]), TR_EXIT_NOCONNECTION);
    TT_NO_ERRORS();
    dt_node_end(rt);
    dt_epmd_stop(epmd);
}

void register_dist_link_tests(void)
{
    CU_pSuite s = CU_add_suite("dist_link", NULL, NULL);
    tt_test(s, "erlang_links_carry_exits_both_ways", test_erlang_links_carry_exits_both_ways);
}
