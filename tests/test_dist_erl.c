/* test_dist_erl.c — interop with a real `erl` (acceptance item 1): 1,000
 * assorted terms echoed unchanged by a troupe actor registered as echo; a
 * troupe actor answering an Erlang pid it received and a registered Erlang
 * process, and hearing back; erlang:monitor on {echo, Node} gets 'DOWN' when
 * the actor stops, and erlang:demonitor undoes one. Terms of the rarer shapes (a fun, an export, a tuple past
 * 255 elements, a big past 255 bytes, atoms past 255 bytes) arrive as
 * TR_DIST_TERM with Erlang's exact bytes, go back unchanged, and the
 * connection goes on after them. Registered names past ASCII cross as the
 * atoms of their UTF-8 characters, both ways. tr_send_named with a
 * TR_DIST_TERM reaches a registered Erlang process as that term, and to this
 * node's own name is delivered here. erlang:monitor on a name nobody holds
 * here gets 'DOWN' noproc. The Erlang side runs as an -eval script and
 * prints what it saw; every wait on both sides is bounded. */
#include <stdlib.h>
#include <string.h>

#include <ei.h>

#include "dist_util.h"

enum { STOP = 99, COUNT = 97, PONG_PID = 5, PONG_NAME = 6, THANKS = 8 };

static atomic_int echoed, stops, thanks, probes, watched = -1;

static void echo(tr_ctx *cx, void *state, const tr_msg *m)
{
    (void)state;
    if (m->type == STOP) {
        atomic_fetch_add(&stops, 1);
        tr_stop(cx);
        return;
    }
    if (m->type == COUNT) { /* how many watch it now (then answered as any other) */
        tr_actor_figures f;
        TT_CHECK(tr_actor_info(tr_ctx_runtime(cx), tr_self(cx), &f) == 0);
        atomic_store(&watched, (int)f.monitors);
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
    "Rs = [erlang:monitor(process, {echo, N}) || _ <- lists:seq(1, 20)],"
    "[erlang:demonitor(R) || R <- lists:sublist(Rs, 15)],"
    "{echo, N} ! {97, <<>>},"
    "C = receive {97, <<>>} -> ok after 15000 -> timeout end,"
    "Ref = erlang:monitor(process, {echo, N}),"
    "{echo, N} ! {99, <<>>},"
    "D = receive {'DOWN', Ref, process, {echo, N}, Why} -> Why after 15000 -> timeout end,"
    "Kept = length([R || R <- lists:nthtail(15, Rs),"
    "  receive {'DOWN', R, process, _, normal} -> true after 15000 -> false end]),"
    "io:format(\"COUNTED ~p~nDOWN ~p~nKEPT ~p~n\", [C, D, Kept]),"
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
    /* 20 monitors by erl, 15 of them undone by erlang:demonitor (each
     * DEMONITOR_P found by erl's own ref), before the count. */
    CU_ASSERT(dt_erl_is(&erl, "COUNTED", "ok"));
    TT_EQ(atomic_load(&watched), 5);
    CU_ASSERT(dt_erl_is(&erl, "KEPT", "5"));
    TT_EQ(atomic_load(&echoed), 1001);
    TT_EQ(atomic_load(&probes), 1);
    TT_EQ(atomic_load(&thanks), 2);
    TT_EQ(atomic_load(&stops), 1);
    TT_NO_ERRORS();
    dt_node_end(rt);
    dt_epmd_stop(epmd);
}

/* ---- terms of the rarer shapes ---- */

enum { S_WANT = 1, S_AFTER = 2, SHAPES = 6 };

/* What Erlang sends, in order (index 0, the fun, only Erlang can encode):
 * the external format built here, byte by byte, to compare with what
 * arrives as well as with what Erlang says it sent. */
static unsigned char s_want[SHAPES][1100];
static size_t s_want_len[SHAPES];
static atomic_int s_seen, s_as_erl, s_as_here, s_after;

static size_t put_be(unsigned char *p, uint32_t v, int k)
{
    for (int i = 0; i < k; i++)
        p[i] = (unsigned char)(v >> (8 * (k - 1 - i)));
    return (size_t)k;
}

static void build_shapes(void)
{
    unsigned char *p;
    size_t at;
    /* 1: fun lists:reverse/1 (EXPORT_EXT, its atoms in the small UTF-8 form). */
    static const unsigned char ex[] = {131, 113, 119, 5, 'l', 'i', 's', 't', 's',
                                       119, 7, 'r', 'e', 'v', 'e', 'r', 's', 'e', 97, 1};
    memcpy(s_want[1], ex, sizeof ex);
    s_want_len[1] = sizeof ex;
    /* 2: list_to_tuple(lists:seq(1, 300)) (LARGE_TUPLE_EXT). */
    p = s_want[2];
    at = 0;
    p[at++] = 131;
    p[at++] = 105;
    at += put_be(p + at, 300, 4);
    for (uint32_t i = 1; i <= 300; i++) {
        if (i < 256) {
            p[at++] = 97;
            p[at++] = (unsigned char)i;
        } else {
            p[at++] = 98;
            at += put_be(p + at, i, 4);
        }
    }
    s_want_len[2] = at;
    /* 3: 1 bsl 3000 (LARGE_BIG_EXT: 376 digit bytes, least significant first). */
    p = s_want[3];
    at = 0;
    p[at++] = 131;
    p[at++] = 111;
    at += put_be(p + at, 376, 4);
    p[at++] = 0; /* sign */
    memset(p + at, 0, 375);
    at += 375;
    p[at++] = 1;
    s_want_len[3] = at;
    /* 4: 255 times U+1F600, the longest atom there is (ATOM_UTF8_EXT, 1020 bytes). */
    p = s_want[4];
    at = 0;
    p[at++] = 131;
    p[at++] = 118;
    at += put_be(p + at, 1020, 2);
    for (int i = 0; i < 255; i++) {
        static const unsigned char smile[] = {0xf0, 0x9f, 0x98, 0x80};
        memcpy(p + at, smile, 4);
        at += 4;
    }
    s_want_len[4] = at;
    /* 5: 128 times U+00E9: 256 bytes, one past the small form. */
    p = s_want[5];
    at = 0;
    p[at++] = 131;
    p[at++] = 118;
    at += put_be(p + at, 256, 2);
    for (int i = 0; i < 128; i++) {
        p[at++] = 0xc3;
        p[at++] = 0xa9;
    }
    s_want_len[5] = at;
}

/* S_WANT: the bytes Erlang's term_to_binary gives the next term; then the
 * term itself, compared with them and with ours, and sent back. S_AFTER:
 * answered, the connection still carrying messages after the terms. */
struct shapes {
    unsigned char erl[1100];
    size_t erl_len;
};

static void shapes(tr_ctx *cx, void *state, const tr_msg *m)
{
    struct shapes *s = state;
    TT_CHECK(m->from != TR_PID_NONE);
    if (m->type == S_WANT) {
        TT_CHECK(m->len <= sizeof s->erl);
        s->erl_len = m->len <= sizeof s->erl ? m->len : 0;
        memcpy(s->erl, m->data, s->erl_len);
    } else if (m->type == TR_DIST_TERM) {
        int k = atomic_fetch_add(&s_seen, 1);
        if (m->len == s->erl_len && memcmp(m->data, s->erl, m->len) == 0)
            atomic_fetch_add(&s_as_erl, 1);
        if (k > 0 && k < SHAPES && m->len == s_want_len[k] &&
            memcmp(m->data, s_want[k], m->len) == 0)
            atomic_fetch_add(&s_as_here, 1);
        TT_CHECK(tr_send(cx, m->from, TR_DIST_TERM, m->data, m->len) == 0);
    } else if (m->type == S_AFTER) {
        atomic_fetch_add(&s_after, 1);
        TT_CHECK(tr_send(cx, m->from, S_AFTER, m->data, m->len) == 0);
    } else {
        TT_CHECK(!"unexpected message");
    }
}

/* SHAPES: for each term, whether what came back is it. FUN: the fun
 * that came back, called. AFTER: a plain message after them all. */
static const char shapes_script[] =
    "N = 'tt_n3@localhost',"
    "Terms = [fun() -> ok end, fun lists:reverse/1, list_to_tuple(lists:seq(1, 300)),"
    "  1 bsl 3000, list_to_atom(lists:duplicate(255, 16#1F600)),"
    "  list_to_atom(lists:duplicate(128, 16#E9))],"
    "Back = [begin {shapes, N} ! {1, term_to_binary(T, [{minor_version, 2}])}, {shapes, N} ! T,"
    "  receive R -> R after 15000 -> timeout end end || T <- Terms],"
    "io:format(\"SHAPES ~p~n\", [[B =:= T || {B, T} <- lists:zip(Back, Terms)]]),"
    "F = hd(Back), io:format(\"FUN ~p~n\", [catch F()]),"
    "{shapes, N} ! {2, <<\"after\">>},"
    "A = receive {2, <<\"after\">>} -> ok after 15000 -> timeout end,"
    "io:format(\"AFTER ~p~n\", [A]), halt().";

static void test_erl_terms_of_rare_shapes_arrive_whole_and_go_back(void)
{
    if (dt_skip())
        return;
    build_shapes();
    uint16_t epmd = dt_epmd_start();
    CU_ASSERT_FATAL(epmd != 0);
    tr_runtime *rt = dt_node("tt_n3", epmd, 0);
    static struct shapes st; /* zeros: no bytes from Erlang yet */
    tr_actor_spec sp = {.behaviour = shapes, .state = &st, .state_size = sizeof st,
                        .name = "shapes"};
    TT_EQ(tr_spawn_spec(tr_runtime_ctx(rt), &sp, NULL), 0);

    dt_erl erl;
    TT_EQ(dt_erl_start(&erl, epmd, "tt_erl3@localhost", DT_COOKIE, shapes_script), 0);
    CU_ASSERT(dt_erl_wait(&erl, 120));
    CU_ASSERT(dt_erl_is(&erl, "SHAPES", "[true,true,true,true,true,true]"));
    CU_ASSERT(dt_erl_is(&erl, "FUN", "ok"));
    CU_ASSERT(dt_erl_is(&erl, "AFTER", "ok"));
    TT_EQ(atomic_load(&s_seen), SHAPES);
    TT_EQ(atomic_load(&s_as_erl), SHAPES);
    TT_EQ(atomic_load(&s_as_here), SHAPES - 1);
    TT_EQ(atomic_load(&s_after), 1);
    TT_NO_ERRORS();
    dt_node_end(rt);
    dt_epmd_stop(epmd);
}

/* ---- names past ASCII ---- */

enum { N_ECHO = 2, N_STOP = 3, N_BACK = 4, N_SEND_BACK = 5 };

#define ETE "\xc3\xa9t\xc3\xa9"                  /* été */
#define ETE_NAME ETE "\xe5\x90\x8d"               /* été名 */
#define UNI_NAME "\xc3\xbcn\xc3\xaf\xe5\x90\x8d" /* ünï名, an Erlang process's */

static atomic_int n_echoed, n_stopped, n_sent_back;

static void named(tr_ctx *cx, void *state, const tr_msg *m)
{
    (void)state;
    TT_CHECK(m->from != TR_PID_NONE);
    if (m->type == N_ECHO) {
        TT_CHECK(tr_send(cx, m->from, m->type, m->data, m->len) == 0);
        atomic_fetch_add(&n_echoed, 1);
    } else if (m->type == N_STOP) {
        atomic_fetch_add(&n_stopped, 1);
        tr_stop(cx);
    } else if (m->type == N_SEND_BACK) {
        TT_CHECK(tr_send_named(cx, UNI_NAME, "tt_erl5@localhost", N_BACK, "utf8", 4) == 0);
        atomic_fetch_add(&n_sent_back, 1);
    } else {
        TT_CHECK(!"unexpected message");
    }
}

/* Atoms are characters; troupe's names are their UTF-8. LATIN1 and UTF8:
 * messages to actors named 'été' and 'été名' (REG_SEND), answered; DOWN:
 * a monitor of {'été名', N} (MONITOR_P by name, and its MONITOR_P_EXIT
 * naming it back); BACK: tr_send_named to an Erlang process registered
 * as 'ünï名'; NODE: the connection never went down meanwhile. */
static const char names_script[] =
    "N = 'tt_n5@localhost',"
    "A1 = list_to_atom([233, $t, 233]), A2 = list_to_atom([233, $t, 233, 16#540D]),"
    "register(list_to_atom([252, $n, 239, 16#540D]), self()),"
    "{A1, N} ! {2, <<\"latin1\">>},"
    "R1 = receive {2, <<\"latin1\">>} -> ok after 10000 -> timeout end,"
    "monitor_node(N, true),"
    "{A2, N} ! {2, <<\"utf8\">>},"
    "R2 = receive {2, <<\"utf8\">>} -> ok after 10000 -> timeout end,"
    "Ref = erlang:monitor(process, {A2, N}), {A2, N} ! {3, <<>>},"
    "D = receive {'DOWN', Ref, process, {A2, N}, W} -> W after 10000 -> timeout end,"
    "{A1, N} ! {5, <<>>},"
    "R3 = receive {4, <<\"utf8\">>} -> ok after 10000 -> timeout end,"
    "ND = receive {nodedown, N} -> down after 0 -> up end,"
    "io:format(\"LATIN1 ~p~nUTF8 ~p~nDOWN ~p~nBACK ~p~nNODE ~p~n\", [R1, R2, D, R3, ND]),"
    "halt().";

static void test_erl_reaches_names_past_ascii_both_ways(void)
{
    if (dt_skip())
        return;
    uint16_t epmd = dt_epmd_start();
    CU_ASSERT_FATAL(epmd != 0);
    tr_runtime *rt = dt_node("tt_n5", epmd, 0);
    tr_actor_spec a1 = {.behaviour = named, .name = ETE};
    tr_actor_spec a2 = {.behaviour = named, .name = ETE_NAME};
    TT_EQ(tr_spawn_spec(tr_runtime_ctx(rt), &a1, NULL), 0);
    TT_EQ(tr_spawn_spec(tr_runtime_ctx(rt), &a2, NULL), 0);

    dt_erl erl;
    TT_EQ(dt_erl_start(&erl, epmd, "tt_erl5@localhost", DT_COOKIE, names_script), 0);
    CU_ASSERT(dt_erl_wait(&erl, 90));
    CU_ASSERT(dt_erl_is(&erl, "LATIN1", "ok"));
    CU_ASSERT(dt_erl_is(&erl, "UTF8", "ok"));
    CU_ASSERT(dt_erl_is(&erl, "DOWN", "normal"));
    CU_ASSERT(dt_erl_is(&erl, "BACK", "ok"));
    CU_ASSERT(dt_erl_is(&erl, "NODE", "up"));
    TT_EQ(atomic_load(&n_echoed), 2);
    TT_EQ(atomic_load(&n_stopped), 1);
    TT_EQ(atomic_load(&n_sent_back), 1);
    TT_NO_ERRORS();
    dt_node_end(rt);
    dt_epmd_stop(epmd);
}

/* ---- tr_send_named with terms, there and here ---- */

enum { H_SEVEN = 7, H_EIGHT = 8, H_DONE = 9 };

static _Atomic tr_pid h_namer;
static atomic_int h_went, h_here, h_here_ok, h_dead, h_dead_ok;

/* {term, [1, 2, 3], <<"bytes">>, 'ünï', 3.5, -1234567890123} */
static void encode_term(ei_x_buff *x)
{
    ei_x_new_with_version(x);
    ei_x_encode_tuple_header(x, 6);
    ei_x_encode_atom(x, "term");
    ei_x_encode_list_header(x, 3);
    for (long i = 1; i <= 3; i++)
        ei_x_encode_long(x, i);
    ei_x_encode_empty_list(x);
    ei_x_encode_binary(x, "bytes", 5);
    ei_x_encode_atom_as(x, "\xc3\xbcn\xc3\xaf", ERLANG_UTF8, ERLANG_UTF8);
    ei_x_encode_double(x, 3.5);
    ei_x_encode_longlong(x, -1234567890123LL);
}

/* On {go, Pid} from Erlang: the term to erlbox there; refusals of what is
 * not one term or not a name; then, to this node's own name, the term,
 * {7, <<"seven">>} as a term, a plain message, and one to a name nobody
 * holds here; last, DONE to erlbox. */
static void namer(tr_ctx *cx, void *state, const tr_msg *m)
{
    (void)state;
    TT_CHECK(m->type == TR_DIST_TERM);
    const char *erl = "tt_erl4@localhost", *here = "tt_n4@localhost";
    ei_x_buff t, seven;
    encode_term(&t);
    ei_x_new_with_version(&seven);
    ei_x_encode_tuple_header(&seven, 2);
    ei_x_encode_long(&seven, H_SEVEN);
    ei_x_encode_binary(&seven, "seven", 5);
    size_t tl = (size_t)t.index;
    TT_CHECK(tr_send_named(cx, "erlbox", erl, TR_DIST_TERM, t.buff, tl) == 0);
    ei_x_encode_atom(&t, "more"); /* two terms: not one */
    TT_CHECK(tr_send_named(cx, "erlbox", erl, TR_DIST_TERM, t.buff, (size_t)t.index) == TR_EINVAL);
    TT_CHECK(tr_send_named(cx, "erlbox", erl, TR_DIST_TERM, t.buff + 1, tl - 1) == TR_EINVAL);
    TT_CHECK(tr_send_named(cx, "\xff\xfe", erl, 1, "x", 1) == TR_EINVAL); /* not UTF-8 */
    TT_CHECK(tr_send_named(cx, "here", here, TR_DIST_TERM, t.buff, tl) == 0);
    TT_CHECK(tr_send_named(cx, "here", here, TR_DIST_TERM, seven.buff, (size_t)seven.index) == 0);
    TT_CHECK(tr_send_named(cx, "here", here, H_EIGHT, "eight", 5) == 0);
    TT_CHECK(tr_send_named(cx, "nobody", here, H_EIGHT, "lost", 4) == 0);
    TT_CHECK(tr_send_named(cx, "erlbox", erl, H_DONE, "done", 4) == 0);
    ei_x_free(&t);
    ei_x_free(&seven);
    atomic_fetch_add(&h_went, 1);
}

/* "here": the three messages the namer sent it, in order, from it. */
static void here(tr_ctx *cx, void *state, const tr_msg *m)
{
    (void)cx;
    (void)state;
    int k = atomic_fetch_add(&h_here, 1);
    bool ok = m->from == atomic_load(&h_namer);
    if (k == 0) {
        ei_x_buff t;
        encode_term(&t);
        ok = ok && m->type == TR_DIST_TERM && m->len == (size_t)t.index &&
             memcmp(m->data, t.buff, m->len) == 0;
        ei_x_free(&t);
    } else if (k == 1) {
        ok = ok && m->type == H_SEVEN && m->len == 5 && memcmp(m->data, "seven", 5) == 0;
    } else {
        ok = ok && k == 2 && m->type == H_EIGHT && m->len == 5 && memcmp(m->data, "eight", 5) == 0;
    }
    if (ok)
        atomic_fetch_add(&h_here_ok, 1);
}

/* The dead-letter sink: the message to "nobody". */
static void dead(tr_ctx *cx, void *state, const tr_msg *m)
{
    (void)cx;
    (void)state;
    atomic_fetch_add(&h_dead, 1);
    const tr_dead_letter *d = TR_PAYLOAD_HEAD(m, tr_dead_letter);
    if (m->type == TR_DEAD_LETTER && d != NULL && d->type == H_EIGHT && d->len == 4 &&
        d->from == atomic_load(&h_namer) && m->len == sizeof *d + 4 &&
        memcmp(m->data + sizeof *d, "lost", 4) == 0)
        atomic_fetch_add(&h_dead_ok, 1);
}

/* TERM: what erlbox got is the term; DONE: then the plain message; REST:
 * nothing else came. */
static const char named_script[] =
    "N = 'tt_n4@localhost', register(erlbox, self()),"
    "{namer, N} ! {go, self()},"
    "T = receive {term, _, _, _, _, _} = X -> X after 10000 -> timeout end,"
    "io:format(\"TERM ~p~n\", [T =:= {term, [1, 2, 3], <<\"bytes\">>,"
    "  list_to_atom([252, $n, 239]), 3.5, -1234567890123}]),"
    "D = receive {9, B} -> B after 10000 -> timeout end,"
    "io:format(\"DONE ~p~n\", [D]),"
    "io:format(\"REST ~p~n\", [receive Any -> Any after 0 -> none end]), halt().";

static void test_send_named_carries_terms_to_erl_and_delivers_here(void)
{
    if (dt_skip())
        return;
    uint16_t epmd = dt_epmd_start();
    CU_ASSERT_FATAL(epmd != 0);
    tr_runtime *rt = dt_node("tt_n4", epmd, 0);
    tr_ctx *cx = tr_runtime_ctx(rt);
    tr_pid np, sink;
    tr_actor_spec ns = {.behaviour = namer, .name = "namer"}, hs = {.behaviour = here, .name = "here"};
    TT_EQ(tr_spawn_spec(cx, &ns, &np), 0);
    atomic_store(&h_namer, np);
    TT_EQ(tr_spawn_spec(cx, &hs, NULL), 0);
    TT_EQ(tr_spawn(cx, dead, NULL, 0, &sink), 0);
    TT_EQ(tr_runtime_dead_letters(rt, sink), 0);

    dt_erl erl;
    TT_EQ(dt_erl_start(&erl, epmd, "tt_erl4@localhost", DT_COOKIE, named_script), 0);
    CU_ASSERT(dt_erl_wait(&erl, 60));
    CU_ASSERT(dt_erl_is(&erl, "TERM", "true"));
    CU_ASSERT(dt_erl_is(&erl, "DONE", "<<\"done\">>"));
    CU_ASSERT(dt_erl_is(&erl, "REST", "none"));
    TT_EQ(atomic_load(&h_went), 1);
    CU_ASSERT(tt_wait_count(&h_here, 3, 30) && tt_wait_count(&h_dead, 1, 30));
    TT_EQ(atomic_load(&h_here_ok), 3);
    TT_EQ(atomic_load(&h_dead_ok), 1);
    TT_NO_ERRORS();
    TT_EQ(tr_runtime_dead_letters(rt, TR_PID_NONE), 0);
    dt_node_end(rt);
    dt_epmd_stop(epmd);
    TT_EQ(atomic_load(&h_here), 3);
    TT_EQ(atomic_load(&h_dead), 1);
}

/* ---- a monitor of a name nobody holds ---- */

/* NOPROC: erlang:monitor of {nobody, N} ends at once, noproc (answered by
 * the connection: no actor to ask). KEPT: one of {someone, N} does not,
 * after a round trip through someone. REST: nothing else came. */
static const char noproc_script[] =
    "N = 'tt_n6@localhost',"
    "{someone, N} ! {1, <<>>},"
    "R = erlang:monitor(process, {nobody, N}),"
    "M = receive {'DOWN', R, process, {nobody, N}, Why} -> Why after 10000 -> timeout end,"
    "io:format(\"NOPROC ~p~n\", [M]),"
    "R2 = erlang:monitor(process, {someone, N}), {someone, N} ! {2, <<>>},"
    "K = receive {2, <<>>} -> ok after 10000 -> timeout end,"
    "io:format(\"KEPT ~p ~p~n\", [K, receive {'DOWN', R2, _, _, _} -> down after 0 -> kept end]),"
    "io:format(\"REST ~p~n\", [receive Any -> Any after 0 -> none end]), halt().";

static atomic_int someone_got;

static void someone(tr_ctx *cx, void *state, const tr_msg *m)
{
    (void)state;
    TT_CHECK((m->type == 1 || m->type == 2) && m->len == 0);
    if (m->type == 2)
        TT_CHECK(tr_send(cx, m->from, 2, NULL, 0) == 0);
    atomic_fetch_add(&someone_got, 1);
}

static void test_erl_monitor_of_a_name_nobody_holds_is_down_noproc(void)
{
    if (dt_skip())
        return;
    uint16_t epmd = dt_epmd_start();
    CU_ASSERT_FATAL(epmd != 0);
    tr_runtime *rt = dt_node("tt_n6", epmd, 0);
    tr_actor_spec ss = {.behaviour = someone, .name = "someone"};
    TT_EQ(tr_spawn_spec(tr_runtime_ctx(rt), &ss, NULL), 0);
    dt_erl erl;
    TT_EQ(dt_erl_start(&erl, epmd, "tt_erl6@localhost", DT_COOKIE, noproc_script), 0);
    CU_ASSERT(dt_erl_wait(&erl, 60));
    CU_ASSERT(dt_erl_is(&erl, "NOPROC", "noproc"));
    CU_ASSERT(dt_erl_is(&erl, "KEPT", "ok kept"));
    CU_ASSERT(dt_erl_is(&erl, "REST", "none"));
    TT_EQ(atomic_load(&someone_got), 2);
    TT_NO_ERRORS();
    dt_node_end(rt);
    dt_epmd_stop(epmd);
}

void register_dist_erl_tests(void)
{
    CU_pSuite s = tt_suite("dist_erl");
    tt_test(s, "erl_echoes_terms_answers_and_sees_down", test_erl_echoes_terms_answers_and_sees_down);
    tt_test(s, "erl_terms_of_rare_shapes_arrive_whole_and_go_back",
            test_erl_terms_of_rare_shapes_arrive_whole_and_go_back);
    tt_test(s, "erl_reaches_names_past_ascii_both_ways",
            test_erl_reaches_names_past_ascii_both_ways);
    tt_test(s, "send_named_carries_terms_to_erl_and_delivers_here",
            test_send_named_carries_terms_to_erl_and_delivers_here);
    tt_test(s, "erl_monitor_of_a_name_nobody_holds_is_down_noproc",
            test_erl_monitor_of_a_name_nobody_holds_is_down_noproc);
}
