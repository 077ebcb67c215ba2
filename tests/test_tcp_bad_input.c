/* test_tcp_bad_input.c — bad input from peers: random bytes, half frames at
 * the end of input and malformed msgpack get the documented answer, and the
 * server goes on.
 *
 * The helpers, and how every network test runs its server and clients:
 * net_util.h. */
#include "net_util.h"

/* Random bytes to a line server: every line it can make out comes back,
 * every over-long one is reported, byte for byte as the reference says;
 * the connection survives all of it. */
static void test_bad_random_lines(void)
{
    enum { MAX = 64 };
    struct server srv;
    srv.st = stats_new();
    tr_tcp_handler h = handler_for(echo_line, srv.st, STRICT);
    h.opts.framing = TR_FRAME_LINE;
    h.opts.max_line = MAX;
    server_start_opts(&srv, h, 0);
    size_t n = 512 * 1024;
    unsigned char *in = malloc(n);
    CU_ASSERT_FATAL(in != NULL);
    uint64_t seed = 0xbad;
    for (size_t i = 0; i < n; i++) {
        in[i] = (unsigned char)tt_rng_next(&seed);
        if (tt_rng_below(&seed, 50) == 0)
            in[i] = '\n';
    }
    in[n - 1] = '\n';
    size_t want_len, errors;
    unsigned char *want = ref_line_echo(in, n, MAX, &want_len, &errors);
    struct duplex d = {.fd = cli_connect(srv.port), .in = in, .in_len = n, .chunk_seed = 3,
                       .shut_after = true, .want = want, .want_len = want_len};
    duplex_expect(&d, "random bytes to a line server");
    WAIT_FOR(atomic_load(&srv.st->closed) == 1);
    TT_EQ(atomic_load(&srv.st->errors), errors);
    TT_EQ(atomic_load(&srv.st->last_reason), 0);
    /* A fresh client is served. */
    int fd = cli_connect(srv.port);
    CU_ASSERT(cli_write(fd, "fine\n", 5));
    char buf[8];
    int end;
    CU_ASSERT(cli_read(fd, buf, 5, &end) == 5 && memcmp(buf, "fine\n", 5) == 0);
    close(fd);
    free(in);
    free(want);
    TT_NO_ERRORS();
    server_stop(&srv);
}

/* Half a line, then the end of input: nothing is echoed, the connection
 * closes in order (the partial line is not a frame). Same for half a
 * msgpack object. */
static void test_bad_half_frames(void)
{
    for (int kind = 0; kind < 2; kind++) {
        struct server srv;
        srv.st = stats_new();
        tr_tcp_handler h = handler_for(kind == 0 ? echo_line : echo_msgpack, srv.st, STRICT);
        h.opts.framing = kind == 0 ? TR_FRAME_LINE : TR_FRAME_MSGPACK;
        server_start_opts(&srv, h, 0);
        /* A whole frame, then half of one. */
        static const unsigned char line_in[] = "whole\nhalf a li";
        static const unsigned char mp_in[] = {0x01, 0x92, 0x01, 0xa5, 'a', 'b'};
        const unsigned char *in = kind == 0 ? line_in : mp_in;
        size_t n = kind == 0 ? sizeof line_in - 1 : sizeof mp_in;
        const char *want = kind == 0 ? "whole\n" : "\x01";
        size_t want_len = kind == 0 ? 6 : 1;
        for (int how = 0; how < 2; how++) {
            int fd = cli_connect(srv.port);
            long closed0 = atomic_load(&srv.st->closed);
            CU_ASSERT(cli_write(fd, in, n));
            char buf[16];
            int end;
            CU_ASSERT(cli_read(fd, buf, want_len, &end) == want_len &&
                      memcmp(buf, want, want_len) == 0);
            if (how == 0) {
                shutdown(fd, SHUT_WR); /* end of input: the server closes too */
                TT_EQ(cli_next(fd), 0);
            }
            close(fd);
            server_saw_close(&srv, closed0 + 1);
        }
        TT_EQ(atomic_load(&srv.st->frames), 2);
        TT_EQ(atomic_load(&srv.st->errors), 0);
        TT_NO_ERRORS();
        server_stop(&srv);
    }
}

/* Malformed msgpack: the objects before it come back, then TR_TCP_ERROR
 * (TR_EBADFRAME), then TR_TCP_CLOSED, and the connection is closed. */
static void test_bad_msgpack(void)
{
    struct server srv;
    server_start_msgpack(&srv, 0);
    for (int trailing = 0; trailing < 2; trailing++) {
        msgpack_sbuffer sb;
        msgpack_sbuffer_init(&sb);
        msgpack_packer pk;
        msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
        uint64_t seed = 99;
        for (int i = 0; i < 10; i++)
            pack_random(&pk, &seed, 2);
        msgpack_sbuffer_write(&sb, "\xc1", 1);
        if (trailing)
            for (int i = 0; i < 10; i++)
                pack_random(&pk, &seed, 2);
        size_t want_len, objects;
        bool malformed;
        unsigned char *want = ref_msgpack_echo((unsigned char *)sb.data, sb.size, &want_len,
                                               &objects, &malformed);
        CU_ASSERT(malformed);
        TT_EQ(objects, 10);
        long closed0 = atomic_load(&srv.st->closed), errors0 = atomic_load(&srv.st->errors);
        struct duplex d = {.fd = cli_connect(srv.port), .in = (unsigned char *)sb.data,
                           .in_len = sb.size, .want = want, .want_len = want_len};
        duplex_main(&d);
        close(d.fd);
        CU_ASSERT(!d.mismatch);
        if (!trailing) {
            /* Nothing left unread by the server: an orderly FIN after the
             * echo of every good object. */
            duplex_report(&d, "malformed msgpack");
            TT_EQ(d.received, want_len);
            TT_EQ(d.end, 0);
        } else {
            /* Bytes after the bad one are never read: the close may be a reset. */
            CU_ASSERT(d.end == 0 || d.end == -ECONNRESET);
            CU_ASSERT(d.received <= want_len);
        }
        WAIT_FOR(atomic_load(&srv.st->closed) == closed0 + 1);
        TT_EQ(atomic_load(&srv.st->errors) - errors0, 1);
        TT_EQ(atomic_load(&srv.st->last_error), TR_EBADFRAME);
        TT_EQ(atomic_load(&srv.st->last_reason), TR_EBADFRAME);
        msgpack_sbuffer_destroy(&sb);
        free(want);
    }
    /* Five bytes announcing an array of 2^28 elements: they cannot fit in
     * max_frame (1 MiB), so the stream is refused at once, without the
     * server reserving memory for them. */
    {
        long closed0 = atomic_load(&srv.st->closed), errors0 = atomic_load(&srv.st->errors);
        int fd = cli_connect(srv.port);
        CU_ASSERT(cli_write(fd, "\x01\xdd\x0f\xff\xff\xff", 6));
        char c = 0;
        int end;
        CU_ASSERT(cli_read(fd, &c, 1, &end) == 1 && c == 0x01);
        int next = cli_next(fd);
        CU_ASSERT(next == 0 || next == -ECONNRESET); /* closed, not a timeout */
        close(fd);
        WAIT_FOR(atomic_load(&srv.st->closed) == closed0 + 1);
        TT_EQ(atomic_load(&srv.st->errors) - errors0, 1);
        TT_EQ(atomic_load(&srv.st->last_error), TR_EBADFRAME);
        TT_EQ(atomic_load(&srv.st->last_reason), TR_EBADFRAME);
    }
    /* Random bytes (several seeds): whatever they are, the connection ends
     * with TR_TCP_CLOSED and the server goes on. */
    for (uint64_t s = 1; s <= 8; s++) {
        unsigned char junk[4096];
        gen_fill(s * 7919, 0, junk, sizeof junk);
        long closed0 = atomic_load(&srv.st->closed);
        int fd = cli_connect(srv.port);
        cli_write(fd, junk, sizeof junk);
        shutdown(fd, SHUT_WR);
        char buf[65536];
        int end;
        while (cli_read(fd, buf, sizeof buf, &end) == sizeof buf)
            ;
        CU_ASSERT(end == 0 || end == -ECONNRESET); /* not a timeout */
        close(fd);
        WAIT_FOR(atomic_load(&srv.st->closed) == closed0 + 1);
    }
    int fd = cli_connect(srv.port);
    CU_ASSERT(cli_write(fd, "\x2a", 1));
    char c = 0;
    int end;
    CU_ASSERT(cli_read(fd, &c, 1, &end) == 1 && c == 0x2a);
    close(fd);
    TT_NO_ERRORS();
    server_stop(&srv);
}

void register_tcp_bad_input_tests(void)
{
    CU_pSuite s = tt_suite("tcp_bad_input");
    tt_test(s, "random_bytes_to_a_line_server_match_the_reference", test_bad_random_lines);
    tt_test(s, "half_frame_at_eof_closes_without_echo", test_bad_half_frames);
    tt_test(s, "malformed_msgpack_errors_then_closes", test_bad_msgpack);
}
