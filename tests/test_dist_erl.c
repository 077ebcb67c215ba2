/* test_dist_erl.c — interop with a real `erl` (acceptance item 1): 1,000
 * assorted terms echoed unchanged by a troupe actor registered as echo; a
 * troupe actor answering an Erlang pid it received and a registered
 * Erlang process, and hearing back; erlang:monitor on {echo, Node} gets
 * 'DOWN' when the actor stops. The Erlang side runs as an -eval script and
 * prints what it saw; every wait on both sides is bounded. */
#include <stdlib.h>
#include <string.h>

#include "dist_util.h"

enum { STOP = 99, PONG_PID = 5, PONG_NAME = 6, THANKS = 8 };

static atomic_int echoed, stops, thanks, probes;

static void echo(tr_ctx *cx, void *state, const tr_msg *m)
{
    (void)state;
    if (m->type == STOP) {
        atomic_fetch_add(&stops, 1);
        tr_stop(cx);
        return;
    }
    TT_CHECK(m->from != TR_PID_NONE);
    TT_CHECK(tr_send(cx, m->from, m->type, m->data, m->len) == 0);
    atomic_fetch_add(&echoed, 1);
}

static void probe(tr_ctx *cx, void *state, const tr_msg *m)
{
    (void)state;
    if (m->type == THANKS) {
        atomic_fetch_add(&thanks, 1);
        return;
    }
    /* {hello, Pid} from the erl node's process: answer it, and its
     * registered name. */
    TT_CHECK(m->type == TR_DIST_TERM);
    TT_CHECK(m->from != TR_PID_NONE);
    TT_CHECK(tr_send(cx, m->from, PONG_PID, "pong-pid", 8) == 0);
    TT_CHECK(tr_send_named(cx, "erlbox", "tt_erl1@localhost", PONG_NAME, "pong-name", 9) == 0);
    atomic_fetch_add(&probes, 1);
}

static const char script[] =
    "N = 'tt_n1@localhost', Self = self(), register(erlbox, Self),"
    "Gen = fun(I) -> case I rem 12 of"
    "  0 -> list_to_atom(\"atom_\" ++ integer_to_list(I));"
    "  1 -> (1 bsl (I rem 300)) * (1 - 2 * (I rem 2)) + I;"
    "  2 -> I / 7 + 0.5;"
    "  3 -> list_to_binary(lists:duplicate(I rem 97, I rem 256));"
    "  4 -> {I, [a, \"str\", <<I:32>>], {nested, {deeper, -I}}};"
    "  5 -> #{I => [I, I + 1], k => {v, I}, <<\"b\">> => 1.5};"
    "  6 -> Self;"
    "  7 -> make_ref();"
    "  8 -> lists:seq(1, I rem 50);"
    "  9 -> [I | tail];"
    "  10 -> {{}, [], <<>>, <<1:3>>, list_to_atom([252, 110, 239])};"
    "  11 -> spawn(fun() -> ok end) end end,"
    "Echo = fun(T) -> {echo, N} ! {Self, T},"
    "  receive {Self, R} -> R =:= T after 15000 -> false end end,"
    "Good = length([ok || I <- lists:seq(1, 1000), Echo(Gen(I))]),"
    "io:format(\"ECHO ~p~n\", [Good]),"
    "{probe, N} ! {hello, Self},"
    "P1 = receive {5, <<\"pong-pid\">>} -> {probe, N} ! {8, <<>>}, ok after 15000 -> timeout end,"
    "P2 = receive {6, <<\"pong-name\">>} -> {probe, N} ! {8, <<>>}, ok after 15000 -> timeout end,"
    "io:format(\"PID ~p~nNAME ~p~n\", [P1, P2]),"
    "Ref = erlang:monitor(process, {echo, N}),"
    "{echo, N} ! {99, <<>>},"
    "D = receive {'DOWN', Ref, process, {echo, N}, Why} -> Why after 15000 -> timeout end,"
    "io:format(\"DOWN ~p~n\", [D]),"
    "halt().";

static void test_erl_echoes_terms_answers_and_sees_down(void)
{
    if (dt_skip())
        return;
    uint16_t epmd = dt_epmd_start();
    CU_ASSERT_FATAL(epmd != 0);
    tr_runtime *rt = dt_node("tt_n1", epmd, 0);
    tr_ctx *cx = tr_runtime_ctx(rt);
    tr_actor_spec e = {.behaviour = echo, .name = "echo"}, p = {.behaviour = probe, .name = "probe"};
    TT_EQ(tr_spawn_spec(cx, &e, NULL), 0);
    TT_EQ(tr_spawn_spec(cx, &p, NULL), 0);

    dt_erl erl;
    TT_EQ(dt_erl_start(&erl, epmd, "tt_erl1@localhost", DT_COOKIE, script), 0);
    CU_ASSERT(dt_erl_wait(&erl, 120));
    CU_ASSERT(dt_erl_is(&erl, "ECHO", "1000"));
    CU_ASSERT(dt_erl_is(&erl, "PID", "ok"));
    CU_ASSERT(dt_erl_is(&erl, "NAME", "ok"));
    CU_ASSERT(dt_erl_is(&erl, "DOWN", "normal"));
    TT_EQ(atomic_load(&echoed), 1000);
    TT_EQ(atomic_load(&probes), 1);
    TT_EQ(atomic_load(&thanks), 2);
    TT_EQ(atomic_load(&stops), 1);
    TT_NO_ERRORS();
    dt_node_end(rt);
    dt_epmd_stop(epmd);
}

void register_dist_erl_tests(void)
{
    CU_pSuite s = CU_add_suite("dist_erl", NULL, NULL);
    tt_test(s, "erl_echoes_terms_answers_and_sees_down", test_erl_echoes_terms_answers_and_sees_down);
}
