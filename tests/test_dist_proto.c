/* test_dist_proto.c — the distribution protocol on bytes alone (dist/proto.h):
 * EPMD requests and replies, framing, the digest, both sides of the
 * handshake against each other, control messages and messages as terms,
 * and that cut or corrupted frames are refused without reading past them
 * (run under SAN=address, a read past the end fails the suite). */
#include <malloc.h>
#include <stdlib.h>
#include <string.h>

#include "../dist/dist.h"
#include "../dist/proto.h"
#include "tests.h"

static void test_epmd_alive2_request_and_replies(void)
{
    uint8_t b[64];
    size_t n = tr__epmd_alive2_req(b, sizeof b, 0x1234, "echo");
    static const uint8_t want[] = {0, 17, 120, 0x12, 0x34, 77, 0, 0, 6, 0, 6, 0, 4,
                                   'e', 'c', 'h', 'o', 0, 0};
    TT_EQ(n, sizeof want);
    CU_ASSERT(memcmp(b, want, sizeof want) == 0);
    TT_EQ(tr__epmd_alive2_req(b, 10, 1, "echo"), 0); /* does not fit */
    TT_EQ(tr__epmd_alive2_req(b, sizeof b, 1, ""), 0);

    uint32_t creation = 0;
    static const uint8_t x_resp[] = {118, 0, 0x64, 0x8a, 0x1b, 0x02};
    for (size_t k = 0; k < sizeof x_resp; k++)
        TT_EQ(tr__epmd_alive2_resp(x_resp, k, &creation), 0); /* need more */
    TT_EQ(tr__epmd_alive2_resp(x_resp, sizeof x_resp, &creation), 1);
    TT_EQ(creation, 0x648a1b02u);
    static const uint8_t old_resp[] = {121, 0, 0, 3};
    TT_EQ(tr__epmd_alive2_resp(old_resp, sizeof old_resp, &creation), 1);
    TT_EQ(creation, 3);
    static const uint8_t taken[] = {118, 1, 0, 0, 0, 0};
    TT_EQ(tr__epmd_alive2_resp(taken, sizeof taken, &creation), TR_EEXIST);
    static const uint8_t junk[] = {'H', 'T'};
    TT_EQ(tr__epmd_alive2_resp(junk, sizeof junk, &creation), TR_EBADFRAME);
}

static void test_epmd_port_request_and_replies(void)
{
    uint8_t b[16];
    TT_EQ(tr__epmd_port_req(b, sizeof b, "ab"), 5);
    static const uint8_t want[] = {0, 3, 122, 'a', 'b'};
    CU_ASSERT(memcmp(b, want, sizeof want) == 0);

    uint16_t port = 0;
    static const uint8_t ok[] = {119, 0, 0x9c, 0x40, 77, 0, 0, 6, 0, 6, 0, 2, 'a', 'b', 0, 0};
    for (size_t k = 0; k < sizeof ok; k++)
        TT_EQ(tr__epmd_port_resp(ok, k, &port), 0);
    TT_EQ(tr__epmd_port_resp(ok, sizeof ok, &port), 1);
    TT_EQ(port, 40000);
    static const uint8_t none[] = {119, 1};
    TT_EQ(tr__epmd_port_resp(none, sizeof none, &port), TR_EHOSTUNREACH);
    static const uint8_t v5[] = {119, 0, 0x9c, 0x40, 77, 0, 0, 5, 0, 5, 0, 2, 'a', 'b', 0, 0};
    TT_EQ(tr__epmd_port_resp(v5, sizeof v5, &port), TR_EBADFRAME);
}

static void test_frames_two_and_four_byte_ticks_and_limits(void)
{
    size_t body = 99;
    static const uint8_t two[] = {0, 3, 'a', 'b', 'c', 'x'};
    TT_EQ(tr__dist_frame(two, 1, 2, 100, &body), 0);
    TT_EQ(tr__dist_frame(two, 4, 2, 100, &body), 0);
    TT_EQ(tr__dist_frame(two, sizeof two, 2, 100, &body), 1);
    TT_EQ(body, 3);
    static const uint8_t tick[] = {0, 0, 0, 0};
    TT_EQ(tr__dist_frame(tick, 3, 4, 100, &body), 0);
    TT_EQ(tr__dist_frame(tick, 4, 4, 100, &body), 1);
    TT_EQ(body, 0);
    static const uint8_t big[] = {0x7f, 0xff, 0xff, 0xff};
    TT_EQ(tr__dist_frame(big, 4, 4, 1 << 20, &body), TR_EMSGSIZE);
}

static void test_digest_is_md5_of_cookie_and_decimal_challenge(void)
{
    static const uint8_t want[16] = {0x4d, 0x97, 0x57, 0xcd, 0x7a, 0xe7, 0x73, 0xaa,
                                     0xf1, 0xa0, 0x8d, 0x00, 0xff, 0x98, 0x13, 0x18};
    uint8_t d[16];
    tr__dist_digest(0xdeadbeef, "secretcookie", d); /* "secretcookie3735928559" */
    CU_ASSERT(memcmp(d, want, 16) == 0);
}

/* Runs a handshake between two in-memory sides; returns the acceptor's
 * last result (or the first failure) and leaves both states. */
static int run_handshake(tr__hs *a, tr__hs *b, const char *cookie_a, const char *cookie_b)
{
    uint8_t msg[512], reply[512];
    size_t len, rl;
    TT_EQ(tr__hs_init(a, true, "a@localhost", cookie_a, 11, 1111, msg, sizeof msg, &len), 0);
    TT_EQ(tr__hs_init(b, false, "b@localhost", cookie_b, 22, 2222, reply, sizeof reply, &rl), 0);
    TT_EQ(rl, 0);
    /* A -> B: name. */
    size_t body;
    TT_EQ(tr__dist_frame(msg, len, 2, 65535, &body), 1);
    int r = tr__hs_step(b, msg + 2, body, reply, sizeof reply, &rl);
    TT_EQ(r, TR__HS_NAMED);
    CU_ASSERT(strcmp(b->peer, "a@localhost") == 0);
    TT_EQ(b->peer_creation, 11);
    TT_EQ(tr__hs_accept(b, "ok", reply, sizeof reply, &rl), 0);
    /* B -> A: status, then the challenge, in one buffer. */
    size_t at = 0;
    while (at < rl) {
        TT_EQ(tr__dist_frame(reply + at, rl - at, 2, 65535, &body), 1);
        r = tr__hs_step(a, reply + at + 2, body, msg, sizeof msg, &len);
        if (r < 0)
            return r;
        at += 2 + body;
    }
    CU_ASSERT(strcmp(a->peer, "b@localhost") == 0);
    TT_EQ(a->peer_creation, 22);
    /* A -> B: challenge reply; B -> A: ack. */
    TT_EQ(tr__dist_frame(msg, len, 2, 65535, &body), 1);
    r = tr__hs_step(b, msg + 2, body, reply, sizeof reply, &rl);
    if (r < 0)
        return r;
    TT_EQ(r, TR__HS_DONE);
    TT_EQ(tr__dist_frame(reply, rl, 2, 65535, &body), 1);
    return tr__hs_step(a, reply + 2, body, msg, sizeof msg, &len);
}

static void test_handshake_both_sides_agree_and_wrong_cookie_fails(void)
{
    tr__hs a, b;
    TT_EQ(run_handshake(&a, &b, "c00kie", "c00kie"), TR__HS_DONE);
    TT_EQ(a.state, TR__HS_UP);
    TT_EQ(b.state, TR__HS_UP);
    CU_ASSERT((a.peer_flags & TR__DFLAGS_REQUIRED) == TR__DFLAGS_REQUIRED);
    CU_ASSERT((a.peer_flags & TR__DFLAG_DIST_HDR_ATOM_CACHE) == 0);

    /* The acceptor checks first: a wrong cookie fails at the reply. */
    TT_EQ(run_handshake(&a, &b, "c00kie", "other"), TR_ECONNABORTED);
    TT_EQ(b.state, TR__HS_FAILED);
}

/* Hands hs the one handshake frame in buf (which must hold exactly one). */
static int step_one(tr__hs *hs, const uint8_t *buf, size_t len, uint8_t *out, size_t *out_len)
{
    size_t body;
    TT_EQ(tr__dist_frame(buf, len, 2, 65535, &body), 1);
    TT_EQ(2 + body, len);
    return tr__hs_step(hs, buf + 2, body, out, 512, out_len);
}

/* Up to the acceptor's "alive" and the initiator's answer to it. */
static void alive_asked(tr__hs *a, tr__hs *b, bool go_on, uint8_t *answer, size_t *al)
{
    uint8_t msg[512], reply[512];
    size_t len, rl;
    TT_EQ(tr__hs_init(a, true, "a@localhost", "c00kie", 11, 1111, msg, sizeof msg, &len), 0);
    TT_EQ(tr__hs_init(b, false, "b@localhost", "c00kie", 22, 2222, reply, sizeof reply, &rl), 0);
    TT_EQ(step_one(b, msg, len, reply, &rl), TR__HS_NAMED);
    TT_EQ(tr__hs_accept(b, "alive", reply, sizeof reply, &rl), 0);
    TT_EQ(rl, 2 + 6);
    CU_ASSERT(memcmp(reply + 2, "salive", 6) == 0);
    TT_EQ(b->state, TR__HS_WAIT_ALIVE);
    TT_EQ(step_one(a, reply, rl, msg, &len), TR__HS_ALIVE);
    TT_EQ(len, 0);
    TT_EQ(tr__hs_alive(a, go_on, answer, 512, al), 0);
    TT_EQ(*al, go_on ? 2 + 5u : 2 + 6u);
    CU_ASSERT(memcmp(answer + 2, go_on ? "strue" : "sfalse", *al - 2) == 0);
    TT_EQ(a->state, go_on ? TR__HS_WAIT_CHAL : TR__HS_FAILED);
}

/* Erlang's "alive" (erl_dist_protocol.md, status alive): the acceptor
 * still has a connection up from the initiator's name; "true" goes on,
 * the challenge then coming with no second status, to both ends up;
 * "false" fails both; and after "true" an acceptor that will not go on
 * fails with nothing to send. */
static void test_handshake_alive_true_goes_on_false_ends(void)
{
    tr__hs a, b;
    uint8_t answer[512], msg[512], reply[512];
    size_t al, len, rl;
    alive_asked(&a, &b, true, answer, &al);
    TT_EQ(step_one(&b, answer, al, reply, &rl), TR__HS_ALIVE);
    TT_EQ(rl, 0);
    TT_EQ(tr__hs_accept(&b, "ok", reply, sizeof reply, &rl), 0);
    CU_ASSERT(rl > 2 && reply[2] == 'N'); /* the challenge, no status before it */
    TT_EQ(step_one(&a, reply, rl, msg, &len), TR__HS_CONTINUE);
    TT_EQ(step_one(&b, msg, len, reply, &rl), TR__HS_DONE);
    TT_EQ(step_one(&a, reply, rl, msg, &len), TR__HS_DONE);
    TT_EQ(a.state, TR__HS_UP);
    TT_EQ(b.state, TR__HS_UP);
    TT_EQ(b.peer_creation, 11);

    alive_asked(&a, &b, false, answer, &al);
    TT_EQ(step_one(&b, answer, al, reply, &rl), TR_ECONNABORTED);
    TT_EQ(b.state, TR__HS_FAILED);

    alive_asked(&a, &b, true, answer, &al);
    TT_EQ(step_one(&b, answer, al, reply, &rl), TR__HS_ALIVE);
    TT_EQ(tr__hs_accept(&b, "nok", reply, sizeof reply, &rl), 0);
    TT_EQ(rl, 0);
    TT_EQ(b.state, TR__HS_FAILED);

    /* Anything but true or false after "alive" is malformed; so is an
     * answer from an initiator that was not asked. */
    alive_asked(&a, &b, true, answer, &al);
    static const uint8_t maybe[] = {0, 6, 's', 'm', 'a', 'y', 'b', 'e'};
    TT_EQ(step_one(&b, maybe, sizeof maybe, reply, &rl), TR_EBADFRAME);
    TT_EQ(tr__hs_init(&a, true, "a@localhost", "c00kie", 11, 1111, msg, sizeof msg, &len), 0);
    TT_EQ(tr__hs_alive(&a, true, answer, sizeof answer, &al), TR_EINVAL);
}

static void test_handshake_refuses_malformed_messages(void)
{
    tr__hs b;
    uint8_t out[512];
    size_t ol;
    /* Every prefix of a good name, and a name missing a required flag. */
    tr__hs a;
    uint8_t name[512];
    size_t nl;
    TT_EQ(tr__hs_init(&a, true, "a@h", "k", 1, 1, name, sizeof name, &nl), 0);
    for (size_t k = 0; k < nl - 2; k++) {
        tr__hs_init(&b, false, "b@h", "k", 2, 2, out, sizeof out, &ol);
        TT_EQ(tr__hs_step(&b, name + 2, k, out, sizeof out, &ol), TR_EBADFRAME);
    }
    name[2 + 8] &= (uint8_t)~0x04; /* drop EXTENDED_REFERENCES (the flags' last byte) */
    tr__hs_init(&b, false, "b@h", "k", 2, 2, out, sizeof out, &ol);
    TT_EQ(tr__hs_step(&b, name + 2, nl - 2, out, sizeof out, &ol), TR_EBADFRAME);
    /* A name without '@', and a reply before any name. */
    uint8_t bad[] = {'N', 0, 0, 0, 0, 0x01, 0xff, 0xff, 0xff, 0, 0, 0, 1, 0, 2, 'n', 'o'};
    tr__hs_init(&b, false, "b@h", "k", 2, 2, out, sizeof out, &ol);
    TT_EQ(tr__hs_step(&b, bad, sizeof bad, out, sizeof out, &ol), TR_EBADFRAME);
    uint8_t r[21] = {'r'};
    tr__hs_init(&b, false, "b@h", "k", 2, 2, out, sizeof out, &ol);
    TT_EQ(tr__hs_step(&b, r, sizeof r, out, sizeof out, &ol), TR_EBADFRAME);
    /* A refusal by status ends the initiator's attempt. */
    TT_EQ(tr__hs_init(&a, true, "a@h", "k", 1, 1, name, sizeof name, &nl), 0);
    uint8_t nok[] = {'s', 'n', 'o', 'k'};
    TT_EQ(tr__hs_step(&a, nok, sizeof nok, out, sizeof out, &ol), TR_ECONNABORTED);
    CU_ASSERT(strcmp(a.refusal, "nok") == 0);
}

static erlang_pid pid_of(const char *node, unsigned num, unsigned serial, unsigned creation)
{
    erlang_pid p;
    memset(&p, 0, sizeof p);
    strcpy(p.node, node);
    p.num = num;
    p.serial = serial;
    p.creation = creation;
    return p;
}

static bool same_pid(const erlang_pid *a, const erlang_pid *b)
{
    return strcmp(a->node, b->node) == 0 && a->num == b->num && a->serial == b->serial &&
           a->creation == b->creation;
}

/* Every prefix of a good frame and many one-byte corruptions decode to
 * an error or to something, never past the bytes given (ASan watches:
 * each try decodes from its own exact-size heap copy). */
static void corrupt_every_way(const char *frame, size_t n)
{
    tr__ctl c;
    for (size_t k = 0; k < n; k++) {
        char *cut = malloc(k + 1);
        memcpy(cut, frame, k);
        CU_ASSERT(tr__ctl_decode(cut, k, &c) != 0 || k == n);
        free(cut);
    }
    char *copy = malloc(n);
    for (size_t i = 0; i < n; i++)
        for (int v = 0; v < 256; v += 17) {
            memcpy(copy, frame, n);
            copy[i] = (char)v;
            (void)tr__ctl_decode(copy, n, &c);
        }
    free(copy);
}

/* A control message's pids are encoded with their node atoms kept from
 * one message to the next (dist/term.c): the bytes are ei's own, for ASCII
 * and UTF-8 names, names of the longest length kept and longer (a name of
 * 132 UTF-8 characters in 262 bytes, encoded by ei each time), creations of 0 to 32 bits, numbers past 15 bits, and
 * more names than are kept, taken in turn so that each evicts another. */
static void test_pids_are_encoded_as_ei_encodes_them(void)
{
    char longest[256], too_long[300];
    memset(longest, 'l', 253);
    strcpy(longest + 253, "@h"); /* 255 bytes: the longest name kept */
    for (int k = 0; k < 130; k++) /* 262 bytes, 132 characters: an atom */
        memcpy(too_long + 2 * k, "\xc3\xa9", 2);
    strcpy(too_long + 260, "@h");
    const char *names[] = {"a@h", "b@localhost", "n\xc3\xa9@h", "n\xe2\x82\xac@h",
                           "c@h", "d@h", longest, too_long};
    static const unsigned creations[] = {0, 1, 3, 4, 0x12345678, 0xffffffffu};
    size_t nn = sizeof names / sizeof names[0];
    for (unsigned round = 0; round < 3; round++)
        for (size_t i = 0; i < nn; i++) {
            unsigned cr = creations[(i + round) % 6];
            tr__ctl c;
            tr__ctl_clear(&c);
            c.op = TR__CTL_LINK;
            c.from = pid_of(names[i], 70000000 + (unsigned)i, 4000000, cr);
            c.to = pid_of(names[(i + 1 + round) % nn], (unsigned)i, round, creations[i % 6]);
            ei_x_buff got, want;
            ei_x_new(&got);
            ei_x_new(&want);
            static const char head[5] = {0, 0, 0, 0, 112};
            TT_EQ(tr__ctl_encode(&got, &c), 0);
            TT_EQ(ei_x_append_buf(&want, head, sizeof head), 0);
            TT_EQ(ei_x_encode_version(&want), 0);
            TT_EQ(ei_x_encode_tuple_header(&want, 3), 0);
            TT_EQ(ei_x_encode_long(&want, TR__CTL_LINK), 0);
            TT_EQ(ei_x_encode_pid(&want, &c.from), 0);
            TT_EQ(ei_x_encode_pid(&want, &c.to), 0);
            TT_EQ(got.index, want.index);
            CU_ASSERT(memcmp(got.buff, want.buff, (size_t)want.index) == 0);
            tr__ctl d;
            TT_EQ(tr__ctl_decode(got.buff + 4, (size_t)got.index - 4, &d), 0);
            CU_ASSERT(same_pid(&d.from, &c.from) && same_pid(&d.to, &c.to));
            ei_x_free(&got);
            ei_x_free(&want);
        }
}

/* Pids come in as OTP and ei write them (NEW_PID_EXT, a UTF-8 atom of
 * one length byte), read without ei (dist/term.c), and in every other form
 * a peer may use: Latin-1 atoms short and long, a UTF-8 atom with two
 * length bytes, the old PID_EXT. Each reads as ei_decode_pid reads it. */
static void test_pids_in_every_form_decode_as_ei_decodes_them(void)
{
    static const unsigned char forms[][24] = {
        {'X', 'w', 3, 'a', '@', 'h', 0, 0, 0, 7, 0, 0, 0, 9, 0x12, 0x34, 0x56, 0x78},
        {'X', 's', 3, 0xe9, '@', 'h', 0, 0, 1, 0, 0, 0, 0, 2, 0, 0, 0, 3},
        {'X', 'd', 0, 3, 'b', '@', 'h', 0, 0, 0, 4, 0, 0, 0, 5, 0, 0, 0, 6},
        {'X', 'v', 0, 4, 0xc3, 0xa9, '@', 'h', 0x7f, 0xff, 0xff, 0xff, 0, 0, 0, 1, 0, 0, 0, 0},
        {'g', 'w', 3, 'c', '@', 'h', 0, 0, 0, 8, 0, 0, 0, 1, 2},
    };
    static const size_t sizes[] = {18, 18, 19, 20, 15};
    for (size_t f = 0; f < 5; f++)
        for (size_t g = 0; g < 5; g++) {
            char frame[64] = {112, (char)131, 0x68, 3, 0x61, TR__CTL_LINK};
            size_t n = 6;
            memcpy(frame + n, forms[f], sizes[f]);
            n += sizes[f];
            memcpy(frame + n, forms[g], sizes[g]);
            n += sizes[g];
            erlang_pid want_from, want_to;
            int at = 0;
            TT_EQ(ei_decode_pid((const char *)forms[f], &at, &want_from), 0);
            TT_EQ((size_t)at, sizes[f]);
            at = 0;
            TT_EQ(ei_decode_pid((const char *)forms[g], &at, &want_to), 0);
            tr__ctl d;
            TT_EQ(tr__ctl_decode(frame, n, &d), 0);
            TT_EQ(d.op, TR__CTL_LINK);
            CU_ASSERT(same_pid(&d.from, &want_from) && same_pid(&d.to, &want_to));
            TT_EQ(tr__ctl_decode(frame, n - 1, &d), TR_EBADFRAME); /* cut short */
        }
}

static void test_control_messages_round_trip_and_survive_corruption(void)
{
    ei_x_buff x;
    tr__ctl c, d;
    memset(&c, 0, sizeof c);
    c.op = TR__CTL_SEND_SENDER;
    c.from = pid_of("a@h", 1, 2, 3);
    c.to = pid_of("b@h", 70000000, 4000000, 0x12345678);
    ei_x_new(&x);
    TT_EQ(tr__ctl_encode(&x, &c), 0);
    TT_EQ(tr__term_from_msg(&x, 42, "hello", 5), 0);
    TT_EQ(tr__ctl_finish(&x), 0);
    size_t body;
    TT_EQ(tr__dist_frame((uint8_t *)x.buff, (size_t)x.index, 4, 1 << 20, &body), 1);
    TT_EQ(body + 4, (size_t)x.index);
    TT_EQ(tr__ctl_decode(x.buff + 4, body, &d), 0);
    TT_EQ(d.op, TR__CTL_SEND_SENDER);
    CU_ASSERT(same_pid(&d.from, &c.from) && same_pid(&d.to, &c.to));
    uint32_t type;
    const char *data;
    size_t len;
    tr__term_to_msg(d.msg, d.msg_len, &type, &data, &len);
    TT_EQ(type, 42);
    TT_EQ(len, 5);
    CU_ASSERT(memcmp(data, "hello", 5) == 0);
    corrupt_every_way(x.buff + 4, body);
    char *longer = malloc(body + 1); /* a byte after the message */
    memcpy(longer, x.buff + 4, body);
    longer[body] = 0;
    TT_EQ(tr__ctl_decode(longer, body + 1, &d), TR_EBADFRAME);
    free(longer);
    ei_x_free(&x);

    /* MONITOR_P by name, then MONITOR_P_EXIT with a reason. */
    memset(&c, 0, sizeof c);
    c.op = TR__CTL_MONITOR_P;
    c.from = pid_of("erl@h", 5, 0, 9);
    c.to_name = true;
    strcpy(c.name, "echo");
    strcpy(c.ref.node, "erl@h");
    c.ref.len = 3;
    c.ref.n[0] = 1, c.ref.n[1] = 2, c.ref.n[2] = 3;
    c.ref.creation = 9;
    ei_x_new(&x);
    TT_EQ(tr__ctl_encode(&x, &c), 0);
    TT_EQ(tr__ctl_finish(&x), 0);
    TT_EQ(tr__ctl_decode(x.buff + 4, (size_t)x.index - 4, &d), 0);
    TT_EQ(d.op, TR__CTL_MONITOR_P);
    CU_ASSERT(d.to_name && strcmp(d.name, "echo") == 0);
    CU_ASSERT(ei_cmp_refs(&d.ref, &c.ref) == 0);
    corrupt_every_way(x.buff + 4, (size_t)x.index - 4);
    ei_x_free(&x);

    ei_x_buff r;
    ei_x_new(&r);
    ei_x_encode_atom(&r, "noproc");
    c.op = TR__CTL_MONITOR_P_EXIT;
    c.to = c.from;
    c.reason = r.buff;
    c.reason_len = (size_t)r.index;
    ei_x_new(&x);
    TT_EQ(tr__ctl_encode(&x, &c), 0);
    TT_EQ(tr__ctl_finish(&x), 0);
    TT_EQ(tr__ctl_decode(x.buff + 4, (size_t)x.index - 4, &d), 0);
    TT_EQ(d.op, TR__CTL_MONITOR_P_EXIT);
    TT_EQ(d.reason_len, (size_t)r.index);
    CU_ASSERT(memcmp(d.reason, r.buff, d.reason_len) == 0);
    ei_x_free(&x);
    ei_x_free(&r);

    /* UNLINK_ID's 64-bit id. */
    memset(&c, 0, sizeof c);
    c.op = TR__CTL_UNLINK_ID;
    c.id = UINT64_C(0xfedcba9876543210);
    c.from = pid_of("a@h", 1, 0, 1);
    c.to = pid_of("b@h", 2, 0, 1);
    ei_x_new(&x);
    TT_EQ(tr__ctl_encode(&x, &c), 0);
    TT_EQ(tr__ctl_finish(&x), 0);
    TT_EQ(tr__ctl_decode(x.buff + 4, (size_t)x.index - 4, &d), 0);
    CU_ASSERT(d.id == c.id);
    ei_x_free(&x);

    /* Not pass-through; an op we do not handle (ignored by the caller). */
    static const char atom_cache[] = {131, 68, 0};
    TT_EQ(tr__ctl_decode(atom_cache, sizeof atom_cache, &d), TR_EBADFRAME);
    static const char node_link[] = {112, (char)131, 104, 1, 97, 5};
    TT_EQ(tr__ctl_decode(node_link, sizeof node_link, &d), 0);
    TT_EQ(d.op, -5);
}

static void test_messages_map_to_tuples_or_dist_terms(void)
{
    ei_x_buff x;
    uint32_t type;
    const char *data;
    size_t len;

    /* {7, <<>>}: an empty payload. */
    ei_x_new(&x);
    TT_EQ(tr__term_from_msg(&x, 7, NULL, 0), 0);
    tr__term_to_msg(x.buff, (size_t)x.index, &type, &data, &len);
    TT_EQ(type, 7);
    TT_EQ(len, 0);
    ei_x_free(&x);

    /* Any other term is TR_DIST_TERM, the bytes as they came; they go back
     * unchanged. */
    ei_x_new_with_version(&x);
    ei_x_encode_tuple_header(&x, 2);
    ei_x_encode_atom(&x, "hello");
    ei_x_encode_double(&x, 2.5);
    tr__term_to_msg(x.buff, (size_t)x.index, &type, &data, &len);
    TT_EQ(type, TR_DIST_TERM);
    CU_ASSERT(data == x.buff && len == (size_t)x.index);
    ei_x_buff y;
    ei_x_new(&y);
    TT_EQ(tr__term_from_msg(&y, TR_DIST_TERM, data, len), 0);
    TT_EQ(y.index, x.index);
    CU_ASSERT(memcmp(y.buff, x.buff, len) == 0);
    ei_x_free(&y);
    ei_x_free(&x);

    /* A type in the reserved range is not taken from a peer. */
    ei_x_new_with_version(&x);
    ei_x_encode_tuple_header(&x, 2);
    ei_x_encode_ulong(&x, TR_MSG_SYSTEM + 5);
    ei_x_encode_binary(&x, "zz", 2);
    tr__term_to_msg(x.buff, (size_t)x.index, &type, &data, &len);
    TT_EQ(type, TR_DIST_TERM);
    ei_x_free(&x);

    /* A TR_DIST_TERM that is not one whole term is refused. */
    ei_x_new(&y);
    static const char two_terms[] = {(char)131, 97, 1, 97, 2};
    TT_EQ(tr__term_from_msg(&y, TR_DIST_TERM, two_terms, sizeof two_terms), TR_EINVAL);
    TT_EQ(tr__term_from_msg(&y, TR_DIST_TERM, two_terms, 2), TR_EINVAL);
    ei_x_free(&y);
}

/* A REG_SEND's name is the atom of its UTF-8 characters, both ways: the
 * frame holds the very bytes (not each byte taken for a Latin-1
 * character), one past Latin-1 decodes, and so does the longest atom
 * (255 four-byte characters) into tr__ctl's name. */
static void test_registered_names_cross_as_utf8_atoms(void)
{
    static const char name[] = "\xe5\x90\x8d\xe5\x89\x8d"; /* 名前 */
    char longest[255 * 4 + 1] = "";
    for (int i = 0; i < 255; i++)
        strcat(longest, "\xf0\x9f\x98\x80");
    const char *names[] = {name, "\xc3\xa9t\xc3\xa9", "echo", longest};
    for (size_t k = 0; k < sizeof names / sizeof names[0]; k++) {
        tr__ctl c, d;
        memset(&c, 0, sizeof c);
        c.op = TR__CTL_REG_SEND;
        c.from = pid_of("erl@h", 5, 0, 9);
        c.to_name = true;
        strcpy(c.name, names[k]);
        ei_x_buff x;
        ei_x_new(&x);
        TT_EQ(tr__ctl_encode(&x, &c), 0);
        TT_EQ(tr__term_from_msg(&x, 1, "m", 1), 0);
        TT_EQ(tr__ctl_finish(&x), 0);
        CU_ASSERT(memmem(x.buff, (size_t)x.index, names[k], strlen(names[k])) != NULL);
        TT_EQ(tr__ctl_decode(x.buff + 4, (size_t)x.index - 4, &d), 0);
        CU_ASSERT(d.to_name && strcmp(d.name, names[k]) == 0);
        ei_x_free(&x);
    }
    CU_ASSERT(tr__name_is_atom(name) && tr__name_is_atom(longest));
    CU_ASSERT(!tr__name_is_atom("\xff\xfe") && !tr__name_is_atom("\xc3"));
    char too_long[257];
    memset(too_long, 'a', 256);
    too_long[256] = '\0';
    CU_ASSERT(!tr__name_is_atom(too_long)); /* 256 characters */
}

/* Nesting is not bounded (erl sends deep terms: a 300-deep {I, Acc} took
 * the connection down when 256 was the limit), the walk does not recurse
 * (a million deep), funs nest up to TR__FUN_DEPTH_MAX, and a term cut
 * short says so (a fragment may end inside one). */
static void test_term_check_walks_deep_terms_and_tells_cut_ones(void)
{
    size_t used;
    enum { DEEP = 1000000 };
    char *deep = malloc(2 * DEEP + 1);
    CU_ASSERT_FATAL(deep != NULL);
    for (int i = 0; i < DEEP; i++)
        deep[2 * i] = 104, deep[2 * i + 1] = 1; /* {{{...}}} */
    deep[2 * DEEP] = 106;
    TT_EQ(tr__term_check(deep, 2 * DEEP + 1, &used), 0);
    TT_EQ(used, 2 * DEEP + 1);
    TT_EQ(tr__term_check(deep, 2 * DEEP, &used), TR__TERM_CUT);
    deep[2 * DEEP] = 82; /* an atom cache ref at the bottom */
    TT_EQ(tr__term_check(deep, 2 * DEEP + 1, &used), TR_EBADFRAME);
    free(deep);
    /* [[[...]]] 300 deep, each list one element and a nil tail. */
    char list[5 * 300 + 301];
    for (int i = 0; i < 300; i++) /* tag, count 1 */
        memcpy(list + 5 * i, (const char[]){108, 0, 0, 0, 1}, 5);
    memset(list + 5 * 300, 106, 301); /* the innermost [] and 300 tails */
    TT_EQ(tr__term_check(list, 5 * 300 + 301, &used), 0);
    TT_EQ(used, 5 * 300 + 301);
    static const char long_list[] = {108, 0x7f, 0, 0, 0, 97, 1};
    TT_EQ(tr__term_check(long_list, sizeof long_list, &used), TR__TERM_CUT);
    static const char big_bin[] = {109, 0x7f, 0, 0, 0, 1};
    TT_EQ(tr__term_check(big_bin, sizeof big_bin, &used), TR__TERM_CUT);
    static const char huge_map[] = {116, 0xff, 0xff, 0xff, 0xff, 97, 1};
    TT_EQ(tr__term_check(huge_map, sizeof huge_map, &used), TR__TERM_CUT);
    /* Funs inside funs' free variables: up to the limit, not past it. A
     * fun: tag, Size, Arity, Uniq, Index, NumFree 1, Module 'm',
     * OldIndex 0, OldUniq 0, Pid, then its one free variable. */
    static const char pid[] = {88, 119, 1, 'n', 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0};
    for (int depth = TR__FUN_DEPTH_MAX; depth <= TR__FUN_DEPTH_MAX + 1; depth++) {
        enum { HEAD = 1 + 29 + 3 + 2 + 2 + sizeof pid };
        char *f = malloc((size_t)depth * HEAD + 1);
        CU_ASSERT_FATAL(f != NULL);
        for (int k = 0; k < depth; k++) {
            char *h = f + (size_t)k * HEAD;
            uint32_t size = (uint32_t)(depth - k) * HEAD; /* from Size to the end */
            memset(h, 0, HEAD);
            h[0] = 112;
            h[1] = (char)(size >> 24), h[2] = (char)(size >> 16);
            h[3] = (char)(size >> 8), h[4] = (char)size;
            h[29] = 1; /* NumFree */
            memcpy(h + 30, (const char[]){119, 1, 'm', 97, 0, 97, 0}, 7);
            memcpy(h + 37, pid, sizeof pid);
        }
        f[(size_t)depth * HEAD] = 106; /* the innermost free variable */
        TT_EQ(tr__term_check(f, (size_t)depth * HEAD + 1, &used),
              depth <= TR__FUN_DEPTH_MAX ? 0 : TR_EBADFRAME);
        free(f);
    }
}

/* A peer's pids as tr_pids and back: each distinct one its own, the same
 * one the same, every field kept; after the peer goes down the old
 * tr_pids miss. 200,000 of them cost a few MiB (a whole erlang_pid each,
 * 1 KiB of node name, was 200 MiB): measured where malloc says (not
 * under a sanitizer's allocator). */
static void test_peer_pids_map_both_ways_and_cost_little(void)
{
    tr__dist_node *n = calloc(1, sizeof *n);
    CU_ASSERT_FATAL(n != NULL);
    n->epmd_fd = -1;
    strcpy(n->name, "self@h");
    n->creation = 7;
    enum { PIDS = 200000 };
    tr_pid *got = malloc(PIDS * sizeof *got);
    CU_ASSERT_FATAL(got != NULL);
    erlang_pid e = {.creation = 0x12345678};
    strcpy(e.node, "peer@h");
    struct mallinfo2 m = mallinfo2();
    size_t before = m.uordblks + m.hblkhd; /* (large blocks are mapped) */
    for (uint32_t i = 0; i < PIDS; i++) {
        e.num = i >> 1;
        e.serial = i & 1;
        got[i] = tr__dist_pid_in(n, &e);
        CU_ASSERT_FATAL(got[i] != TR_PID_NONE);
    }
    m = mallinfo2();
    size_t grown = m.uordblks + m.hblkhd - before;
    CU_ASSERT(grown < (size_t)16 << 20);
    for (uint32_t i = 0; i < PIDS; i += 997) {
        e.num = i >> 1;
        e.serial = i & 1;
        TT_EQ(tr__dist_pid_in(n, &e), got[i]);
        erlang_pid back;
        uint32_t peer = 0;
        TT_EQ(tr__dist_pid_out(n, got[i], &back, &peer), 0);
        CU_ASSERT(strcmp(back.node, "peer@h") == 0 && back.num == i >> 1 &&
                  back.serial == (i & 1) && back.creation == 0x12345678);
        TT_EQ(peer, 0);
        CU_ASSERT(i == 0 || got[i] != got[i - 1]);
    }
    tr__dist_peer_down(n->peers[0]);
    erlang_pid back;
    uint32_t peer;
    TT_EQ(tr__dist_pid_out(n, got[5], &back, &peer), TR_ENOPID);
    free(got);
    tr__dist_node_free(n);
}

/* Peers are found by name (every control message names its sender's
 * node): 5,000 of them, each its own index in the order added, found
 * again by name and through a pid of theirs; names never added are not
 * found, and looking one up adds nothing. */
static void test_peers_found_by_name_among_thousands(void)
{
    tr__dist_node *n = calloc(1, sizeof *n);
    CU_ASSERT_FATAL(n != NULL);
    n->epmd_fd = -1;
    strcpy(n->name, "self@h");
    enum { PEERS = 5000 };
    char name[64];
    uint32_t idx, wrong = 0;
    for (uint32_t i = 0; i < PEERS; i++) {
        snprintf(name, sizeof name, "p%u@host%u", i, i % 7);
        tr__peer *p = tr__dist_peer(n, name, &idx);
        wrong += p == NULL || idx != i || strcmp(p->name, name) != 0;
    }
    TT_EQ(wrong, 0);
    TT_EQ(n->npeers, PEERS);
    for (uint32_t i = 0; i < PEERS; i++) {
        snprintf(name, sizeof name, "p%u@host%u", i, i % 7);
        wrong += tr__dist_peer_find(n, name, &idx) != n->peers[i] || idx != i;
        wrong += tr__dist_peer(n, name, &idx) != n->peers[i] || idx != i;
        erlang_pid e = {.num = 3, .serial = 0, .creation = 9};
        strcpy(e.node, name);
        wrong += TR__PID_NODE(tr__dist_pid_in(n, &e)) != i + 1;
        snprintf(name, sizeof name, "p%u@host%u", i, i % 7 + 1);
        wrong += tr__dist_peer_find(n, name, &idx) != NULL;
    }
    TT_EQ(wrong, 0);
    TT_EQ(n->npeers, PEERS);
    tr__dist_node_free(n);
}

static void test_node_names_split_at_the_at(void)
{
    char a[16], h[16];
    TT_EQ(tr__node_split("echo@localhost", a, sizeof a, h, sizeof h), 0);
    CU_ASSERT(strcmp(a, "echo") == 0 && strcmp(h, "localhost") == 0);
    TT_EQ(tr__node_split("echo", a, sizeof a, h, sizeof h), TR_EINVAL);
    TT_EQ(tr__node_split("@h", a, sizeof a, h, sizeof h), TR_EINVAL);
    TT_EQ(tr__node_split("e@", a, sizeof a, h, sizeof h), TR_EINVAL);
    TT_EQ(tr__node_split("a@b@c", a, sizeof a, h, sizeof h), TR_EINVAL);
    TT_EQ(tr__node_split("averyveryverylongname@h", a, sizeof a, h, sizeof h), TR_EINVAL);
}

void register_dist_proto_tests(void)
{
    CU_pSuite s = tt_suite("dist_proto");
    tt_test(s, "epmd_alive2_request_and_replies", test_epmd_alive2_request_and_replies);
    tt_test(s, "epmd_port_request_and_replies", test_epmd_port_request_and_replies);
    tt_test(s, "frames_two_and_four_byte_ticks_and_limits",
            test_frames_two_and_four_byte_ticks_and_limits);
    tt_test(s, "digest_is_md5_of_cookie_and_decimal_challenge",
            test_digest_is_md5_of_cookie_and_decimal_challenge);
    tt_test(s, "handshake_both_sides_agree_and_wrong_cookie_fails",
            test_handshake_both_sides_agree_and_wrong_cookie_fails);
    tt_test(s, "handshake_refuses_malformed_messages", test_handshake_refuses_malformed_messages);
    tt_test(s, "handshake_alive_true_goes_on_false_ends",
            test_handshake_alive_true_goes_on_false_ends);
    tt_test(s, "pids_are_encoded_as_ei_encodes_them", test_pids_are_encoded_as_ei_encodes_them);
    tt_test(s, "pids_in_every_form_decode_as_ei_decodes_them",
            test_pids_in_every_form_decode_as_ei_decodes_them);
    tt_test(s, "control_messages_round_trip_and_survive_corruption",
            test_control_messages_round_trip_and_survive_corruption);
    tt_test(s, "messages_map_to_tuples_or_dist_terms", test_messages_map_to_tuples_or_dist_terms);
    tt_test(s, "registered_names_cross_as_utf8_atoms", test_registered_names_cross_as_utf8_atoms);
    tt_test(s, "term_check_walks_deep_terms_and_tells_cut_ones",
            test_term_check_walks_deep_terms_and_tells_cut_ones);
    tt_test(s, "peer_pids_map_both_ways_and_cost_little",
            test_peer_pids_map_both_ways_and_cost_little);
    tt_test(s, "peers_found_by_name_among_thousands", test_peers_found_by_name_among_thousands);
    tt_test(s, "node_names_split_at_the_at", test_node_names_split_at_the_at);
}
