/* test_http_slowloris.c — the header timeout: a client that trickles its
 * request line and headers more slowly than header_timeout_ns allows is
 * closed (TR_TCP_CLOSED with TR_ETIMEDOUT), and so is a kept-alive
 * connection left idle after its answer. Only that they close is asserted
 * (200 ms timeouts, a 60 s safety net), never when. (Helpers: http_util.h.) */
#include "http_util.h"

#define TIMEOUT_NS (200 * TR_MSEC)

static void start(struct server *srv, struct http_stats *st)
{
    tr_tcp_handler h = http_handler(st);
    h.opts.header_timeout_ns = TIMEOUT_NS;
    http_server_start(srv, h);
}

/* Whether the server has ended the connection (EOF or reset) within ms. */
static bool ended_within(int fd, int ms)
{
    struct pollfd p = {.fd = fd, .events = POLLIN};
    if (poll(&p, 1, ms) <= 0)
        return false;
    char c;
    ssize_t r = recv(fd, &c, 1, MSG_DONTWAIT);
    TT_CHECK(r <= 0); /* nothing may be answered */
    return r == 0 || (r < 0 && errno == ECONNRESET);
}

/* One byte every 20 ms of a header block that never ends. */
static void test_trickled_headers_closed(void)
{
    struct http_stats st = {0};
    struct server srv;
    start(&srv, &st);
    hconn c;
    hconn_open(&c, srv.port);
    const char *line = "GET /slow HTTP/1.1\r\nHost: t\r\n";
    const char *more = "X-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n";
    size_t sent = 0;
    bool ended = false;
    double until = tt_now() + WAIT_S;
    while (!ended && tt_now() < until) {
        char b = sent < strlen(line) ? line[sent] : more[(sent - strlen(line)) % strlen(more)];
        if (send(c.fd, &b, 1, MSG_NOSIGNAL) != 1) {
            ended = true; /* the server is gone */
            break;
        }
        sent++;
        ended = ended_within(c.fd, 20);
    }
    CU_ASSERT(ended);
    close(c.fd);
    WAIT_FOR(atomic_load(&st.closed) == 1);
    TT_EQ(atomic_load(&st.last_reason), TR_ETIMEDOUT);
    TT_EQ(atomic_load(&st.requests), 0);
    TT_EQ(atomic_load(&st.errors), 0);
    TT_NO_ERRORS();
    server_stop(&srv);
}

/* A connection that never sends a byte. */
static void test_silent_connection_closed(void)
{
    struct http_stats st = {0};
    struct server srv;
    start(&srv, &st);
    hconn c;
    hconn_open(&c, srv.port);
    CU_ASSERT(ended_within(c.fd, (int)(WAIT_S * 1000)));
    close(c.fd);
    WAIT_FOR(atomic_load(&st.closed) == 1);
    TT_EQ(atomic_load(&st.last_reason), TR_ETIMEDOUT);
    TT_NO_ERRORS();
    server_stop(&srv);
}

/* Answered, then idle: the wait for the next request's headers times out. */
static void test_idle_keep_alive_closed(void)
{
    struct http_stats st = {0};
    struct server srv;
    start(&srv, &st);
    hconn c;
    hconn_open(&c, srv.port);
    const char *req = "GET /once HTTP/1.1\r\nHost: t\r\n\r\n";
    CU_ASSERT(cli_write(c.fd, req, strlen(req)));
    EXPECT_RESPONSE(&c, 200, "GET /once 0\n");
    EXPECT_EOF(&c); /* the socket's receive timeout is the safety net */
    close(c.fd);
    WAIT_FOR(atomic_load(&st.closed) == 1);
    TT_EQ(atomic_load(&st.last_reason), TR_ETIMEDOUT);
    TT_EQ(atomic_load(&st.requests), 1);
    TT_NO_ERRORS();
    server_stop(&srv);
}

void register_http_slowloris_tests(void)
{
    CU_pSuite s = tt_suite("http_slowloris");
    tt_test(s, "headers_trickled_past_the_timeout_closed", test_trickled_headers_closed);
    tt_test(s, "silent_connection_closed_after_the_timeout", test_silent_connection_closed);
    tt_test(s, "idle_kept_alive_connection_closed_after_the_timeout", test_idle_keep_alive_closed);
}
