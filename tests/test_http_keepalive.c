/* test_http_keepalive.c — how long an HTTP connection lives: HTTP/1.1
 * keeps it open for request after request, "Connection: close" and
 * HTTP/1.0 end it after the answer, HTTP/1.0 with keep-alive does not.
 * Every request is counted on both sides. (Helpers: http_util.h.) */
#include "http_util.h"

#include <stdarg.h>

static void request(hconn *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void request(hconn *c, const char *fmt, ...)
{
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    CU_ASSERT_FATAL(n > 0 && (size_t)n < sizeof buf);
    CU_ASSERT(cli_write(c->fd, buf, (size_t)n));
}

/* 100 requests, one after the other, on one connection: each answered
 * with its own target, the connection open after each. */
static void test_keep_alive(void)
{
    enum { N = 100 };
    struct http_stats st = {0};
    struct server srv;
    http_server_start(&srv, http_handler(&st));
    hconn c;
    hconn_open(&c, srv.port);
    for (int i = 0; i < N; i++) {
        request(&c, "GET /k%d HTTP/1.1\r\nHost: test\r\n\r\n", i);
        hresp r;
        CU_ASSERT_FATAL(hconn_read(&c, &r) == 1);
        char want[64];
        snprintf(want, sizeof want, "GET /k%d 0\n", i);
        TT_EQ(r.status, 200);
        CU_ASSERT(!r.close);
        CU_ASSERT(strcmp(r.body, want) == 0);
        free(r.body);
    }
    TT_EQ(atomic_load(&st.connected), 1);
    TT_EQ(atomic_load(&st.requests), N);
    TT_EQ(atomic_load(&st.answered), N);
    TT_EQ(atomic_load(&st.closed), 0);
    close(c.fd);
    WAIT_FOR(atomic_load(&st.closed) == 1);
    TT_EQ(atomic_load(&st.last_reason), 0);
    TT_EQ(atomic_load(&st.answer_failed) + atomic_load(&st.errors) + atomic_load(&st.view_fails), 0);
    TT_NO_ERRORS();
    server_stop(&srv);
}

/* "Connection: close": answered with "Connection: close", then the end. */
static void test_connection_close(void)
{
    struct http_stats st = {0};
    struct server srv;
    http_server_start(&srv, http_handler(&st));
    hconn c;
    hconn_open(&c, srv.port);
    request(&c, "GET /a HTTP/1.1\r\nHost: t\r\n\r\nGET /b HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
    EXPECT_RESPONSE(&c, 200, "GET /a 0\n");
    hresp r;
    CU_ASSERT_FATAL(hconn_read(&c, &r) == 1);
    CU_ASSERT(r.close);
    CU_ASSERT(strcmp(r.body, "GET /b 0\n") == 0);
    free(r.body);
    EXPECT_EOF(&c);
    close(c.fd);
    WAIT_FOR(atomic_load(&st.closed) == 1);
    TT_EQ(atomic_load(&st.requests), 2);
    TT_EQ(atomic_load(&st.last_reason), 0);
    TT_NO_ERRORS();
    server_stop(&srv);
}

/* HTTP/1.0: closed after the answer, even with a second request already
 * sent behind the first (it is never answered). */
static void test_http10_closes(void)
{
    struct http_stats st = {0};
    struct server srv;
    http_server_start(&srv, http_handler(&st));
    hconn c;
    hconn_open(&c, srv.port);
    request(&c, "POST /old HTTP/1.0\r\nContent-Length: 3\r\n\r\nabcGET /never HTTP/1.0\r\n\r\n");
    hresp r;
    CU_ASSERT_FATAL(hconn_read(&c, &r) == 1);
    TT_EQ(r.status, 200);
    CU_ASSERT(r.close);
    CU_ASSERT(strcmp(r.body, "POST /old 3\nabc") == 0);
    free(r.body);
    EXPECT_EOF(&c);
    close(c.fd);
    WAIT_FOR(atomic_load(&st.closed) == 1);
    TT_EQ(atomic_load(&st.requests), 1);
    TT_EQ(atomic_load(&st.answered), 1);
    TT_NO_ERRORS();
    server_stop(&srv);
}

/* HTTP/1.0 that asks for keep-alive is told so and kept. */
static void test_http10_keep_alive(void)
{
    struct http_stats st = {0};
    struct server srv;
    http_server_start(&srv, http_handler(&st));
    hconn c;
    hconn_open(&c, srv.port);
    for (int i = 0; i < 3; i++) {
        request(&c, "GET /ka%d HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", i);
        hresp r;
        CU_ASSERT_FATAL(hconn_read(&c, &r) == 1);
        CU_ASSERT(r.keep_alive && !r.close);
        free(r.body);
    }
    request(&c, "HEAD /last HTTP/1.0\r\n\r\n");
    hresp r;
    c.head = true;
    CU_ASSERT_FATAL(hconn_read(&c, &r) == 1);
    TT_EQ(r.status, 200);
    CU_ASSERT(r.close);
    /* HEAD: the length a GET would get, and no body (EOF comes next). */
    TT_EQ(r.content_length, (long)strlen("HEAD /last 0\n"));
    free(r.body);
    EXPECT_EOF(&c);
    close(c.fd);
    WAIT_FOR(atomic_load(&st.closed) == 1);
    TT_EQ(atomic_load(&st.requests), 4);
    TT_NO_ERRORS();
    server_stop(&srv);
}

void register_http_keepalive_tests(void)
{
    CU_pSuite s = tt_suite("http_keepalive");
    tt_test(s, "http11_serves_100_requests_on_one_connection", test_keep_alive);
    tt_test(s, "connection_close_answered_then_closed", test_connection_close);
    tt_test(s, "http10_closes_after_the_answer", test_http10_closes);
    tt_test(s, "http10_keep_alive_kept_until_a_plain_request", test_http10_keep_alive);
}
