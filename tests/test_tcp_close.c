/* test_tcp_close.c — closing a connection, from either side: half-close,
 * shutdown, graceful close, abort, and the reason TR_TCP_CLOSED gives.
 *
 * The helpers, and how every network test runs its server and clients:
 * net_util.h. */
#include "net_util.h"

#include <fcntl.h>

/* Half-close from the client: it sends, shuts down its side, and still
 * gets every byte back, then EOF. */
static void test_half_close(void)
{
    struct server srv;
    server_start(&srv, echo_raw, STRICT);
    const size_t n = (SCALED ? 1 : 8) * MIB;
    unsigned char *in = malloc(n);
    CU_ASSERT_FATAL(in != NULL);
    gen_fill(55, 0, in, n);
    for (int round = 0; round < 3; round++) {
        long closed0 = atomic_load(&srv.st->closed);
        struct duplex d = {.fd = cli_connect(srv.port), .in = in, .in_len = round == 2 ? 1 : n,
                           .chunk_seed = (uint64_t)round, .shut_after = true, .want = in,
                           .want_len = round == 2 ? 1 : n};
        duplex_expect(&d, "half-close");
        server_saw_close(&srv, closed0 + 1);
    }
    free(in);
    TT_NO_ERRORS();
    server_stop(&srv);
}

/* tr_tcp_shutdown from the server: the client sees the greeting, then EOF,
 * and can still send: the server keeps reading. */
static atomic_long shut_bytes;

static void shut_beh(tr_ctx *cx, void *state, const tr_msg *m)
{
    struct cstate *cs = state;
    if (common_event(cx, cs, m)) {
        if (m->type == TR_TCP_CONNECTED) {
            TT_CHECK(tr_tcp_send(cx, "hello", 5) == 0);
            TT_CHECK(tr_tcp_shutdown(cx) == 0);
            TT_CHECK(tr_tcp_send(cx, "more", 4) == TR_ENOTCONN);
        }
        return;
    }
    if (m->type == TR_TCP_DATA)
        atomic_fetch_add(&shut_bytes, (long)m->len);
}

static void test_server_shutdown(void)
{
    atomic_store(&shut_bytes, 0);
    struct server srv;
    server_start(&srv, shut_beh, 0);
    int fd = cli_connect(srv.port);
    char buf[8];
    int end;
    TT_EQ(cli_read(fd, buf, 5, &end), 5);
    CU_ASSERT(memcmp(buf, "hello", 5) == 0);
    TT_EQ(cli_next(fd), 0); /* FIN */
    CU_ASSERT(cli_write(fd, "after the FIN", 13));
    WAIT_FOR(atomic_load(&shut_bytes) == 13);
    TT_EQ(atomic_load(&srv.st->closed), 0);
    close(fd);
    server_saw_close(&srv, 1);
    TT_NO_ERRORS();
    server_stop(&srv);
}

/* Graceful close: after "bye N" the server sends N bytes, calls
 * tr_tcp_close; the client gets all N, then EOF; TR_TCP_CLOSED reason 0. */
static void graceful_server(struct server *srv)
{
    srv->st = stats_new();
    tr_tcp_handler h = handler_for(echo_line, srv->st, STRICT);
    h.opts.framing = TR_FRAME_LINE;
    h.opts.max_output = 64 * MIB;
    server_start_opts(srv, h, 0);
}

static void test_graceful_close(void)
{
    struct server srv;
    graceful_server(&srv);
    const size_t n = 8 * MIB; /* far more than the socket buffers hold */
    unsigned char *buf = malloc(n);
    CU_ASSERT_FATAL(buf != NULL);
    int fd = cli_connect(srv.port);
    char line[32];
    snprintf(line, sizeof line, "hi\nbye %zu\n", n);
    CU_ASSERT(cli_write(fd, line, strlen(line)));
    int end;
    TT_EQ(cli_read(fd, buf, 3, &end), 3);
    CU_ASSERT(memcmp(buf, "hi\n", 3) == 0);
    size_t got = cli_read(fd, buf, n, &end);
    TT_EQ(got, n);
    CU_ASSERT(gen_check(n, 0, buf, got));
    TT_EQ(cli_next(fd), 0); /* then EOF, not a reset */
    close(fd);
    server_saw_close(&srv, 1);
    free(buf);
    TT_NO_ERRORS();
    server_stop(&srv);
}

/* The same while the client keeps sending after "bye": the server no
 * longer reads, but what it queued before closing must still arrive,
 * followed by an orderly EOF — not a reset that throws the tail away. */
static void test_graceful_close_peer_sending(void)
{
    struct server srv;
    graceful_server(&srv);
    const size_t n = 8 * MIB;
    unsigned char *buf = malloc(n);
    CU_ASSERT_FATAL(buf != NULL);
    int fd = cli_connect_raw(srv.port, 4096); /* the tail waits in the server's kernel */
    CU_ASSERT_FATAL(fd >= 0);
    char line[32];
    snprintf(line, sizeof line, "bye %zu\n", n);
    CU_ASSERT(cli_write(fd, line, strlen(line)));
    int end;
    TT_EQ(cli_read(fd, buf, 1, &end), 1); /* the server is closing now */
    CU_ASSERT(cli_write(fd, "one more request\n", 17));
    tt_sleep_ms(200); /* let the server finish writing meanwhile (not a timing check) */
    size_t got = 1 + cli_read(fd, buf + 1, n - 1, &end);
    if (got != n || end != 0)
        printf("\n    received %zu of %zu bytes, then %s\n", got, n,
               end != 0 ? strerror(-end) : "EOF");
    TT_EQ(got, n);
    TT_EQ(end, 0);
    CU_ASSERT(gen_check(n, 0, buf, got));
    if (got == n)
        TT_EQ(cli_next(fd), 0);
    close(fd);
    server_saw_close(&srv, 1);
    free(buf);
    TT_NO_ERRORS();
    server_stop(&srv);
}

/* Abortive close: "abort N" makes the server send N bytes (far more than
 * the socket takes) and reset: the queued bytes never arrive, and the
 * client sees ECONNRESET (or EOF). */
static void test_abort(void)
{
    struct server srv;
    graceful_server(&srv);
    const size_t n = 32 * MIB;
    unsigned char *buf = malloc(n);
    CU_ASSERT_FATAL(buf != NULL);
    int fd = cli_connect_raw(srv.port, 4096); /* a small window */
    CU_ASSERT_FATAL(fd >= 0);
    char line[32];
    snprintf(line, sizeof line, "abort %zu\n", n);
    CU_ASSERT(cli_write(fd, line, strlen(line)));
    WAIT_FOR(atomic_load(&srv.st->closed) == 1);
    TT_EQ(atomic_load(&srv.st->last_reason), -ECONNABORTED);
    long queued = atomic_load(&srv.st->abort_queued);
    TT_EQ(atomic_load(&srv.st->abort_sent), n);
    CU_ASSERT(queued > 0);
    int end;
    size_t got = cli_read(fd, buf, n, &end);
    CU_ASSERT(end == -ECONNRESET || end == 0);
    CU_ASSERT(got + (size_t)queued <= n); /* the queue was dropped */
    CU_ASSERT(gen_check(n, 0, buf, got));  /* what did arrive is intact */
    close(fd);
    free(buf);
    TT_NO_ERRORS();
    server_stop(&srv);
}

/* TR_TCP_CLOSED says why: 0 for an orderly close by the peer, a negative
 * code when the peer resets. */
static void test_close_reasons(void)
{
    struct server srv;
    server_start(&srv, echo_raw, 0);
    int fd = cli_connect(srv.port);
    CU_ASSERT(cli_echo(fd, 1, 10));
    close(fd);
    server_saw_close(&srv, 1);

    fd = cli_connect(srv.port);
    CU_ASSERT(cli_echo(fd, 2, 10));
    set_reset_on_close(fd);
    close(fd);
    WAIT_FOR(atomic_load(&srv.st->closed) == 2);
    int r = atomic_load(&srv.st->last_reason);
    if (r != -ECONNRESET)
        printf("\n    reason after a reset: %d (%s)\n", r, strerror(-r));
    CU_ASSERT(r < 0);
    CU_ASSERT(r == -ECONNRESET || r == -EPIPE);
    TT_NO_ERRORS();
    server_stop(&srv);
}

/* Readiness that reaches a connection actor after it stopped (the peer's
 * FIN or reset seen once more as the actor ends) is the reactor's notice,
 * not a message anyone sent: closing connections, cleanly or by reset,
 * leaves the dead-letter count where it was. */
static uint64_t dead_now(tr_runtime *rt, uint64_t *alive)
{
    tr_stats s;
    tr_runtime_stats(rt, &s);
    *alive = s.actors_alive;
    return s.dead_letters;
}

static void test_closing_leaves_no_dead_letters(void)
{
    struct server srv;
    server_start(&srv, echo_raw, 0);
    uint64_t alive0, alive;
    uint64_t dead0 = dead_now(srv.rt, &alive0);
    const long conns = 40;
    for (long i = 0; i < conns; i++) {
        int fd = cli_connect(srv.port);
        CU_ASSERT(cli_echo(fd, (uint64_t)i, 10));
        if (i % 2)
            set_reset_on_close(fd);
        close(fd);
    }
    WAIT_FOR(atomic_load(&srv.st->closed) == conns);
    WAIT_FOR((dead_now(srv.rt, &alive), alive == alive0));
    /* One more round trip: whatever readiness was still queued for the
     * closed ones has been handled by the time this one is echoed. */
    int fd = cli_connect(srv.port);
    CU_ASSERT(cli_echo(fd, 99, 10));
    close(fd);
    WAIT_FOR(atomic_load(&srv.st->closed) == conns + 1);
    WAIT_FOR((dead_now(srv.rt, &alive), alive == alive0));
    CU_ASSERT_EQUAL(dead_now(srv.rt, &alive), dead0);
    TT_NO_ERRORS();
    server_stop(&srv);
}

/* The peer's last bytes and its FIN arrive while the server has paused
 * reading. The hang-up is reported then, and never again; after resume,
 * a read that comes back short must not be taken for "the socket is
 * empty, wait for the next report" (net/conn.c, HUP_SEEN): the server
 * gets every byte, then EOF, and closes. */
enum { RESUME_READING = 7 };
static _Atomic tr_pid paused_conn;
static atomic_long paused_bytes;

static void pause_beh(tr_ctx *cx, void *state, const tr_msg *m)
{
    struct cstate *cs = state;
    if (common_event(cx, cs, m)) {
        if (m->type == TR_TCP_CONNECTED) {
            tr_tcp_pause(cx);
            atomic_store(&paused_conn, tr_self(cx));
        }
        return;
    }
    if (m->type == TR_TCP_DATA)
        atomic_fetch_add(&paused_bytes, (long)m->len);
    else if (m->type == RESUME_READING)
        tr_tcp_resume(cx);
}

static uint64_t io_events(tr_runtime *rt)
{
    tr_metrics mt;
    tr_runtime_metrics(rt, &mt, NULL, 0);
    return mt.io_events;
}

static void test_hangup_while_paused(void)
{
    atomic_store(&paused_conn, TR_PID_NONE);
    atomic_store(&paused_bytes, 0);
    struct server srv;
    server_start(&srv, pause_beh, 0);
    int fd = cli_connect(srv.port);
    WAIT_FOR(atomic_load(&paused_conn) != TR_PID_NONE);
    uint64_t events = io_events(srv.rt);
    CU_ASSERT(cli_write(fd, "the last words", 14));
    CU_ASSERT(shutdown(fd, SHUT_WR) == 0);
    /* The readiness is taken while paused. A FIN that came in an event of
     * its own has almost surely come too after the pause below; if not,
     * it is reported after resume and the test shows nothing, but it
     * cannot fail for that. */
    WAIT_FOR(io_events(srv.rt) > events);
    tt_sleep_ms(50);
    TT_EQ(tr_send(tr_runtime_ctx(srv.rt), atomic_load(&paused_conn), RESUME_READING, NULL, 0),
          0);
    server_saw_close(&srv, 1);
    TT_EQ(atomic_load(&paused_bytes), 14);
    close(fd);
    TT_NO_ERRORS();
    server_stop(&srv);
}

/* A connection's behaviour may watch descriptors of its own (net.h): their
 * readiness is the behaviour's, told by the event's fd. The connection
 * dropped every event not of its socket. Here the behaviour relays a
 * pipe to its client: the pipe's bytes come back on the socket, the
 * pipe's hang-up reaches the behaviour (not the connection, which goes
 * on echoing), and the client's close ends it. */
static int relay_pipe[2];
static atomic_int relay_watched, relay_hup;

static void relay_beh(tr_ctx *cx, void *state, const tr_msg *m)
{
    struct cstate *cs = state;
    const tr_io_event *e = TR_PAYLOAD(m, tr_io_event);
    if (m->type == TR_TCP_CONNECTED) {
        TT_CHECK(tr_io_watch(cx, relay_pipe[0], TR_IO_READ) == 0);
        atomic_store(&relay_watched, 1);
    } else if (m->type == TR_IO_READABLE && e != NULL && e->fd == relay_pipe[0]) {
        char buf[64];
        ssize_t r;
        while ((r = read(relay_pipe[0], buf, sizeof buf)) > 0)
            send_counted(cx, cs, buf, (size_t)r);
        return;
    } else if (m->type == TR_IO_HUP && e != NULL && e->fd == relay_pipe[0]) {
        TT_CHECK(tr_io_unwatch(cx, relay_pipe[0]) == 0);
        atomic_fetch_add(&relay_hup, 1);
        return;
    }
    echo_raw(cx, state, m);
}

static void test_behaviour_watches_its_own(void)
{
    CU_ASSERT_FATAL(pipe2(relay_pipe, O_NONBLOCK | O_CLOEXEC) == 0);
    atomic_store(&relay_watched, 0);
    atomic_store(&relay_hup, 0);
    struct server srv;
    server_start(&srv, relay_beh, STRICT);
    int fd = cli_connect(srv.port);
    CU_ASSERT(tt_wait_count(&relay_watched, 1, WAIT_S));
    CU_ASSERT(write(relay_pipe[1], "from the pipe", 13) == 13);
    char got[32] = {0};
    int end = 0;
    TT_EQ(cli_read(fd, got, 13, &end), 13);
    CU_ASSERT(memcmp(got, "from the pipe", 13) == 0);
    close(relay_pipe[1]);
    CU_ASSERT(tt_wait_count(&relay_hup, 1, WAIT_S));
    CU_ASSERT(cli_echo(fd, 7, 100)); /* the connection goes on */
    close(fd);
    server_saw_close(&srv, 1);
    TT_EQ(atomic_load(&srv.st->connected), 1);
    TT_NO_ERRORS();
    server_stop(&srv);
    close(relay_pipe[0]);
}

void register_tcp_close_tests(void)
{
    CU_pSuite s = tt_suite("tcp_close");
    tt_test(s, "client_half_close_still_gets_every_byte", test_half_close);
    tt_test(s, "server_shutdown_sends_fin_keeps_reading", test_server_shutdown);
    tt_test(s, "close_delivers_queued_output_then_fin", test_graceful_close);
    tt_test(s, "close_delivers_queued_output_while_peer_sends", test_graceful_close_peer_sending);
    tt_test(s, "abort_drops_queued_output_and_resets", test_abort);
    tt_test(s, "closed_reason_0_on_fin_negative_on_reset", test_close_reasons);
    tt_test(s, "closing_leaves_no_dead_letters", test_closing_leaves_no_dead_letters);
    tt_test(s, "hangup_while_paused_read_to_eof_after_resume", test_hangup_while_paused);
    tt_test(s, "behaviour_watches_descriptors_of_its_own", test_behaviour_watches_its_own);
}
