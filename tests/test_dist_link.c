/* test_dist_link.c — Erlang processes linking to troupe actors: an actor
 * that ends with a reason sends EXIT with it to the linked Erlang process;
 * an Erlang process that dies with a reason reaches a trapping actor as
 * TR_EXIT; and when the Erlang node goes away, a linked trapping actor
 * gets TR_EXIT_NOCONNECTION, once. Unlinks cross both ways: an Erlang
 * process's unlink/1 of an actor (UNLINK_ID in, UNLINK_ID_ACK out) leaves
 * the actor's end unheard, and an actor's tr_unlink of an Erlang process
 * (UNLINK_ID out) leaves that process without the link. */
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

/* ---- unlink ---- */

enum { U_LINKS = 3, U_LINK_ME = 5, U_LINKED = 6, U_DIE = 7, U_UNLINKED = 8, U_UNLINK_ME = 9 };

static atomic_int u_exits, u_downs, u_down_reason, u_ends;

/* Sends {links, N} to m->from: the running actor's link count. */
static void send_links(tr_ctx *cx, const tr_msg *m)
{
    tr_actor_figures f;
    TT_CHECK(tr_actor_info(tr_ctx_runtime(cx), tr_self(cx), &f) == 0);
    ei_x_buff x;
    ei_x_new_with_version(&x);
    ei_x_encode_tuple_header(&x, 2);
    ei_x_encode_atom(&x, "links");
    ei_x_encode_ulong(&x, f.links);
    TT_CHECK(tr_send(cx, m->from, TR_DIST_TERM, x.buff, (size_t)x.index) == 0);
    ei_x_free(&x);
}

/* unlinkee: linked and unlinked by an Erlang process, then ends with 7.
 * unlinker: links to and monitors the Erlang process that asks it to,
 * unlinks when asked; that process's end must come as TR_DOWN alone. */
static void unlinks(tr_ctx *cx, void *state, const tr_msg *m)
{
    (void)state;
    tr_trap_exits(cx, true);
    uint64_t ref;
    switch (m->type) {
    case TR_DIST_TERM: /* {hello, Pid} */
        TT_CHECK(m->from != TR_PID_NONE);
        send_own_pid(cx, m);
        break;
    case U_LINKS:
        send_links(cx, m);
        break;
    case U_DIE:
        atomic_fetch_add(&u_ends, 1);
        tr_exit(cx, 7, "asked to");
        break;
    case U_LINK_ME:
        TT_CHECK(tr_link(cx, m->from) == 0);
        TT_CHECK(tr_monitor(cx, m->from, &ref) == 0);
        TT_CHECK(tr_send(cx, m->from, U_LINKED, NULL, 0) == 0);
        break;
    case U_UNLINK_ME:
        TT_CHECK(tr_unlink(cx, m->from) == 0);
        TT_CHECK(tr_send(cx, m->from, U_UNLINKED, NULL, 0) == 0);
        break;
    case TR_EXIT:
        atomic_fetch_add(&u_exits, 1);
        break;
    case TR_DOWN: {
        const tr_down_info *d = TR_PAYLOAD(m, tr_down_info);
        TT_CHECK(d != NULL);
        atomic_store(&u_down_reason, d != NULL ? d->reason : -1);
        atomic_fetch_add(&u_downs, 1);
        break;
    }
    default:
        TT_CHECK(!"unexpected message");
    }
}

/* IN: the link as the unlinkee counts it after link/1 and after unlink/1,
 * its end as the monitor saw it, then any 'EXIT' (it would have come
 * before the 'DOWN': the actor sends its links' signals first, and the
 * connection keeps the order). OUT: the Erlang process's links (their
 * nodes) after the unlinker's tr_link and after its tr_unlink, then its
 * own end. UP: the connection is still there (no protocol error). */
static const char unlink_script[] =
    "N = 'tt_l2@localhost', Self = self(), process_flag(trap_exit, true),"
    "{unlinkee, N} ! {hello, Self},"
    "T = receive {pid, X} -> X after 15000 -> none end,"
    "link(T), T ! {3, <<>>},"
    "L1 = receive {links, A} -> A after 15000 -> timeout end,"
    "unlink(T), T ! {3, <<>>},"
    "L2 = receive {links, B} -> B after 15000 -> timeout end,"
    "Ref = erlang:monitor(process, T), T ! {7, <<>>},"
    "D = receive {'DOWN', Ref, process, T, Why} -> Why after 15000 -> timeout end,"
    "E = receive {'EXIT', T, W} -> W after 0 -> none end,"
    "io:format(\"IN ~p ~p ~p ~p~n\", [L1, L2, D, E]),"
    "{Q, QRef} = spawn_monitor(fun() -> {unlinker, N} ! {5, <<>>},"
    "  receive {6, <<>>} -> ok after 15000 -> exit(timeout) end,"
    "  {links, QL1} = process_info(self(), links),"
    "  {unlinker, N} ! {9, <<>>},"
    "  receive {8, <<>>} -> ok after 15000 -> exit(timeout) end,"
    "  {links, QL2} = process_info(self(), links),"
    "  Self ! {q, [node(P) || P <- QL1], QL2}, exit(boom) end),"
    "QR = receive {q, M1, M2} -> {M1, M2} after 15000 -> timeout end,"
    "QD = receive {'DOWN', QRef, process, Q, QW} -> QW after 15000 -> timeout end,"
    "io:format(\"OUT ~p ~p~n\", [QR, QD]),"
    "io:format(\"UP ~p~n\", [lists:member(N, nodes())]), halt().";

/* Whether every line of the output starts with one of keys (NULL-ended):
 * erl printed nothing of its own (no error report). */
static bool only_lines(const char *out, const char *const *keys)
{
    for (const char *line = out; *line != '\0';) {
        bool known = false;
        for (size_t k = 0; keys[k] != NULL && !known; k++)
            known = strncmp(line, keys[k], strlen(keys[k])) == 0;
        if (!known)
            return false;
        const char *end = strchr(line, '\n');
        line = end != NULL ? end + 1 : line + strlen(line);
    }
    return true;
}

static void test_erlang_unlinks_and_is_unlinked(void)
{
    if (dt_skip())
        return;
    uint16_t epmd = dt_epmd_start();
    CU_ASSERT_FATAL(epmd != 0);
    tr_runtime *rt = dt_node("tt_l2", epmd, 0);
    tr_ctx *cx = tr_runtime_ctx(rt);
    tr_actor_spec ee = {.behaviour = unlinks, .name = "unlinkee"};
    tr_actor_spec er = {.behaviour = unlinks, .name = "unlinker"};
    tr_pid unlinker;
    TT_EQ(tr_spawn_spec(cx, &ee, NULL), 0);
    TT_EQ(tr_spawn_spec(cx, &er, &unlinker), 0);

    dt_erl erl;
    TT_EQ(dt_erl_start(&erl, epmd, "tt_lerl2@localhost", DT_COOKIE, unlink_script), 0);
    CU_ASSERT(dt_erl_wait(&erl, 60));
    CU_ASSERT(dt_erl_is(&erl, "IN", "1 0 7 none"));
    CU_ASSERT(dt_erl_is(&erl, "OUT", "{[tt_l2@localhost],[]} boom"));
    CU_ASSERT(dt_erl_is(&erl, "UP", "true"));
    static const char *const keys[] = {"IN ", "OUT ", "UP ", NULL};
    CU_ASSERT(only_lines(erl.buf, keys));
    /* The unlinker's monitor saw boom (a reason troupe has no number
     * for: 1); its link, gone, carried nothing, then or at the node's end. */
    CU_ASSERT(tt_wait_count(&u_downs, 1, 30));
    TT_EQ(atomic_load(&u_down_reason), 1);
    TT_EQ(atomic_load(&u_ends), 1);
    tr_actor_figures f;
    TT_EQ(tr_actor_info(rt, unlinker, &f), 0);
    TT_EQ(f.links, 0);
    TT_NO_ERRORS();
    dt_node_end(rt);
    dt_epmd_stop(epmd);
    TT_EQ(atomic_load(&u_exits), 0);
    TT_EQ(atomic_load(&u_downs), 1);
}

/* ---- big reasons and deep terms ---- */

enum { B_PID = 1, B_AFTER = 2, B_WATCH_ME = 3 };

static atomic_int b_exits, b_downs, b_deep;

/* Traps exits; gives its pid; echoes terms (deep ones); watches whoever
 * asks; counts the exit signals and downs, whose reasons (past 64 KiB,
 * in fragments) troupe has no number for: 1. */
static void bigs(tr_ctx *cx, void *state, const tr_msg *m)
{
    (void)state;
    tr_trap_exits(cx, true);
    uint64_t ref;
    switch (m->type) {
    case B_PID:
        send_own_pid(cx, m);
        break;
    case TR_DIST_TERM:
        TT_CHECK(tr_send(cx, m->from, TR_DIST_TERM, m->data, m->len) == 0);
        atomic_fetch_add(&b_deep, 1);
        break;
    case B_WATCH_ME:
        TT_CHECK(tr_monitor(cx, m->from, &ref) == 0);
        TT_CHECK(tr_send(cx, m->from, B_WATCH_ME, NULL, 0) == 0);
        break;
    case B_AFTER:
        TT_CHECK(tr_send(cx, m->from, B_AFTER, m->data, m->len) == 0);
        break;
    case TR_EXIT: {
        const tr_exit_info *e = TR_PAYLOAD(m, tr_exit_info);
        TT_CHECK(e != NULL && (e->reason == 1 || e->reason == TR_EXIT_NOCONNECTION));
        if (e != NULL && e->reason == 1)
            atomic_fetch_add(&b_exits, 1);
        break;
    }
    case TR_DOWN: {
        const tr_down_info *d = TR_PAYLOAD(m, tr_down_info);
        TT_CHECK(d != NULL && d->reason == 1);
        atomic_fetch_add(&b_downs, 1);
        break;
    }
    default:
        TT_CHECK(!"unexpected message");
    }
}

/* A 10,000-deep {I, Acc} goes to the actor and back (nesting past 256
 * closed the connection); a linked process exits with a 200,000-byte
 * reason (EXIT, its control message in fragments), exit/2 sends a
 * 300,000-byte one (EXIT2), a watched process ends with one
 * (MONITOR_P_EXIT): each arrives, and the connection stays up. */
static const char bigs_script[] =
    "N = 'tt_l3@localhost', Self = self(), monitor_node(N, true),"
    "{bigs, N} ! {1, <<>>},"
    "P = receive {pid, X} -> X after 15000 -> none end,"
    "Deep = lists:foldl(fun(I, A) -> {I, A} end, bottom, lists:seq(1, 10000)),"
    "{bigs, N} ! Deep,"
    "D = receive Deep -> ok after 15000 -> timeout end,"
    "{_, M} = spawn_monitor(fun() -> link(P), exit(binary:copy(<<\"a\">>, 200000)) end),"
    "receive {'DOWN', M, _, _, _} -> ok after 15000 -> timeout end,"
    "exit(P, {big, binary:copy(<<\"b\">>, 300000)}),"
    "{_, W} = spawn_monitor(fun() -> {bigs, N} ! {3, <<>>},"
    "  receive {3, <<>>} -> ok after 15000 -> timeout end,"
    "  exit({big, binary:copy(<<\"c\">>, 100000)}) end),"
    "receive {'DOWN', W, _, _, _} -> ok after 15000 -> timeout end,"
    "{bigs, N} ! {2, <<\"after\">>},"
    "A = receive {2, <<\"after\">>} -> ok after 15000 -> timeout end,"
    "ND = receive {nodedown, N} -> down after 0 -> up end,"
    "io:format(\"DEEP ~p~nAFTER ~p~nNODE ~p~n\", [D, A, ND]), halt().";

static void test_big_reasons_and_deep_terms_keep_the_connection(void)
{
    if (dt_skip())
        return;
    uint16_t epmd = dt_epmd_start();
    CU_ASSERT_FATAL(epmd != 0);
    tr_runtime *rt = dt_node("tt_l3", epmd, 0);
    tr_actor_spec b = {.behaviour = bigs, .name = "bigs"};
    TT_EQ(tr_spawn_spec(tr_runtime_ctx(rt), &b, NULL), 0);

    dt_erl erl;
    TT_EQ(dt_erl_start(&erl, epmd, "tt_lerl3@localhost", DT_COOKIE, bigs_script), 0);
    CU_ASSERT(dt_erl_wait(&erl, 60));
    CU_ASSERT(dt_erl_is(&erl, "DEEP", "ok"));
    CU_ASSERT(dt_erl_is(&erl, "AFTER", "ok"));
    CU_ASSERT(dt_erl_is(&erl, "NODE", "up"));
    /* The EXIT and the EXIT2 came before "after" on the one connection
     * (the node's end later, as noconnection, not counted). */
    TT_EQ(atomic_load(&b_downs), 1);
    TT_EQ(atomic_load(&b_deep), 1);
    TT_EQ(atomic_load(&b_exits), 2);
    TT_NO_ERRORS();
    dt_node_end(rt);
    dt_epmd_stop(epmd);
}

void register_dist_link_tests(void)
{
    CU_pSuite s = tt_suite("dist_link");
    tt_test(s, "erlang_links_carry_exits_both_ways", test_erlang_links_carry_exits_both_ways);
    tt_test(s, "erlang_unlinks_and_is_unlinked", test_erlang_unlinks_and_is_unlinked);
    tt_test(s, "big_reasons_and_deep_terms_keep_the_connection",
            test_big_reasons_and_deep_terms_keep_the_connection);
}
