/* test_tcp_framing.c — line and msgpack framing over real sockets: what the
 * server echoes matches an independent reference of the framing rules.
 *
 * The helpers, and how every network test runs its server and clients:
 * net_util.h. */
#include "net_util.h"

/* Lines of every kind: short, empty, CRLF, at the limit, past it. */
static unsigned char *make_lines(uint64_t seed, size_t max_line, size_t size, size_t *len)
{
    unsigned char *in = malloc(size + 4 * max_line + 8);
    CU_ASSERT_FATAL(in != NULL);
    size_t n = 0;
    while (n < size) {
        size_t l;
        switch (tt_rng_below(&seed, 6)) {
        case 0: l = 0; break;
        case 1: l = max_line - 1; break; /* exactly at the limit with its "\n" */
        case 2: l = max_line; break;     /* one past */
        case 3: l = tt_rng_below(&seed, 3 * max_line); break;
        default: l = tt_rng_below(&seed, max_line); break;
        }
        for (size_t i = 0; i < l; i++) {
            unsigned char b = (unsigned char)(' ' + tt_rng_below(&seed, 95));
            in[n++] = b;
        }
        if (l > 0 && tt_rng_below(&seed, 4) == 0)
            in[n - 1] = '\r'; /* a CRLF line */
        in[n++] = '\n';
    }
    *len = n;
    return in;
}

static void test_line_echo(void)
{
    enum { MAX = 100 };
    struct server srv;
    srv.st = stats_new();
    tr_tcp_handler h = handler_for(echo_line, srv.st, STRICT);
    h.opts.framing = TR_FRAME_LINE;
    h.opts.max_line = MAX;
    server_start_opts(&srv, h, 0);
    for (int round = 0; round < 4; round++) {
        size_t n, want_len, errors;
        unsigned char *in =
            make_lines(77 + (uint64_t)round, MAX, (SCALED ? 1 : 4) * MIB, &n);
        unsigned char *want = ref_line_echo(in, n, MAX, &want_len, &errors);
        long errors0 = atomic_load(&srv.st->errors), closed0 = atomic_load(&srv.st->closed);
        struct duplex d = {.fd = cli_connect(srv.port), .in = in, .in_len = n,
                           .chunk_seed = round == 0 ? 0 : 5 + (uint64_t)round,
                           .shut_after = true, .want = want, .want_len = want_len};
        duplex_expect(&d, "line echo");
        TT_EQ(d.sent, n);
        WAIT_FOR(atomic_load(&srv.st->closed) == closed0 + 1);
        TT_EQ(atomic_load(&srv.st->errors) - errors0, errors);
        TT_EQ(atomic_load(&srv.st->last_reason), 0);
        CU_ASSERT(errors > 0);
        free(in);
        free(want);
    }
    TT_EQ(atomic_load(&srv.st->connected), 4);
    TT_NO_ERRORS();
    server_stop(&srv);
}

/* A limit above the default is honoured: lines of up to max_line bytes
 * (here 256 KiB, more than one read) come back whole; one byte more is
 * reported. */
static void test_line_long(void)
{
    const size_t max = 256 * 1024;
    struct server srv;
    srv.st = stats_new();
    tr_tcp_handler h = handler_for(echo_line, srv.st, STRICT);
    h.opts.framing = TR_FRAME_LINE;
    h.opts.max_line = max;
    server_start_opts(&srv, h, 0);
    size_t lens[] = {100 * 1024, max - 1, max, 10};
    size_t n = 0;
    for (size_t i = 0; i < 4; i++)
        n += lens[i] + 1;
    unsigned char *in = malloc(n);
    CU_ASSERT_FATAL(in != NULL);
    size_t pos = 0;
    for (size_t i = 0; i < 4; i++) {
        memset(in + pos, 'a' + (int)i, lens[i]);
        pos += lens[i];
        in[pos++] = '\n';
    }
    size_t want_len, errors;
    unsigned char *want = ref_line_echo(in, n, max, &want_len, &errors);
    TT_EQ(errors, 1);
    struct duplex d = {.fd = cli_connect(srv.port), .in = in, .in_len = n, .shut_after = true,
                       .want = want, .want_len = want_len};
    duplex_expect(&d, "long lines");
    WAIT_FOR(atomic_load(&srv.st->closed) == 1);
    TT_EQ(atomic_load(&srv.st->errors), 1);
    TT_EQ(atomic_load(&srv.st->frames), 3);
    free(in);
    free(want);
    TT_NO_ERRORS();
    server_stop(&srv);
}

static void test_msgpack_echo(void)
{
    struct server srv;
    server_start_msgpack(&srv, 64 * 1024);
    for (int round = 0; round < 4; round++) {
        msgpack_sbuffer sb;
        msgpack_sbuffer_init(&sb);
        msgpack_packer pk;
        msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
        uint64_t seed = 4242 + (uint64_t)round;
        size_t sent_objects = 0;
        while (sb.size < (SCALED ? 1 : 4) * MIB) {
            pack_random(&pk, &seed, 3);
            sent_objects++;
        }
        size_t want_len, objects;
        bool malformed;
        unsigned char *want = ref_msgpack_echo((unsigned char *)sb.data, sb.size, &want_len,
                                               &objects, &malformed);
        TT_EQ(objects, sent_objects);
        CU_ASSERT(!malformed);
        long frames0 = atomic_load(&srv.st->frames), closed0 = atomic_load(&srv.st->closed);
        struct duplex d = {.fd = cli_connect(srv.port), .in = (unsigned char *)sb.data,
                           .in_len = sb.size, .chunk_seed = round == 0 ? 0 : 9 + (uint64_t)round,
                           .shut_after = true, .want = want, .want_len = want_len};
        duplex_expect(&d, "msgpack echo");
        TT_EQ(d.sent, sb.size);
        WAIT_FOR(atomic_load(&srv.st->closed) == closed0 + 1);
        TT_EQ(atomic_load(&srv.st->frames) - frames0, sent_objects);
        TT_EQ(atomic_load(&srv.st->last_reason), 0);
        msgpack_sbuffer_destroy(&sb);
        free(want);
    }
    TT_EQ(atomic_load(&srv.st->errors), 0);
    TT_NO_ERRORS();
    server_stop(&srv);
}

/* A behaviour that ends itself (tr_stop) at its first line is handed no
 * other: the four lines of one write are framed in one turn, and the
 * three after the first were still delivered, after the stop. The
 * connection closes as the actor ends. */
static void stop_at_first_line(tr_ctx *cx, void *state, const tr_msg *m)
{
    struct cstate *cs = state;
    if (common_event(cx, cs, m) || m->type != TR_TCP_LINE)
        return;
    atomic_fetch_add(&cs->st->frames, 1);
    tr_stop(cx);
}

static void test_nothing_after_stop(void)
{
    struct server srv;
    srv.st = stats_new();
    tr_tcp_handler h = handler_for(stop_at_first_line, srv.st, 0);
    h.opts.framing = TR_FRAME_LINE;
    server_start_opts(&srv, h, 0);
    for (int round = 0; round < 20; round++) {
        int fd = cli_connect(srv.port);
        static const char lines[] = "one\ntwo\nthree\nfour\n";
        CU_ASSERT(cli_write(fd, lines, sizeof lines - 1));
        TT_EQ(cli_next(fd), 0); /* closed as the actor ended */
        close(fd);
        WAIT_FOR(atomic_load(&srv.st->frames) >= round + 1);
    }
    tt_sleep_ms(50); /* time for a late line, were one to come */
    TT_EQ(atomic_load(&srv.st->frames), 20);
    TT_NO_ERRORS();
    server_stop(&srv);
}

void register_tcp_framing_tests(void)
{
    CU_pSuite s = tt_suite("tcp_framing");
    tt_test(s, "lines_crlf_and_overlong_match_the_reference", test_line_echo);
    tt_test(s, "line_limit_above_default_honoured_to_the_byte", test_line_long);
    tt_test(s, "random_msgpack_objects_repacked_in_order", test_msgpack_echo);
    tt_test(s, "nothing_handed_on_after_the_behaviour_stops", test_nothing_after_stop);
}
