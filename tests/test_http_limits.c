/* test_http_limits.c — request size limits: a body past max_body is
 * answered 413 and the connection closed (a declared length before a byte
 * of the body is read, a chunked body as it passes the limit), a body at
 * the limit is served whole, a header block past max_header (or more than
 * 100 fields) is answered 431 and closed. The behaviour hears of each
 * refusal (TR_TCP_ERROR with TR_EMSGSIZE) and never of the request.
 * (Helpers: http_util.h.) */
#include "http_util.h"

#define MAX_BODY ((size_t)512 << 10)

static void start(struct server *srv, struct http_stats *st)
{
    tr_tcp_handler h = http_handler(st);
    h.opts.max_body = MAX_BODY;
    h.opts.max_header = 1024;
    http_server_start(srv, h);
}

/* Sends what it can of buf (the server may close first). */
static void write_some(int fd, const char *buf, size_t n)
{
    while (n > 0) {
        ssize_t w = send(fd, buf, n, MSG_NOSIGNAL);
        if (w <= 0)
            return;
        buf += w;
        n -= (size_t)w;
    }
}

/* The refusal: status, Connection: close, then the end; counted once. */
static void expect_refusal(hconn *c, struct http_stats *st, int status)
{
    hresp r;
    int got = hconn_read(c, &r);
    TT_EQ(got, 1);
    TT_EQ(r.status, status);
    CU_ASSERT(r.close);
    free(r.body);
    EXPECT_EOF(c);
    close(c->fd);
    WAIT_FOR(atomic_load(&st->closed) == 1);
    TT_EQ(atomic_load(&st->errors), 1);
    TT_EQ(atomic_load(&st->last_error), TR_EMSGSIZE);
    TT_EQ(atomic_load(&st->last_reason), TR_EMSGSIZE);
    TT_EQ(atomic_load(&st->requests), 0);
}

static char *mib_body(size_t n)
{
    char *b = malloc(n);
    CU_ASSERT_FATAL(b != NULL);
    memset(b, 'x', n);
    return b;
}

/* 1 MiB declared, with a 512 KiB limit: refused on the header alone. */
static void test_body_declared_too_large(void)
{
    struct http_stats st = {0};
    struct server srv;
    start(&srv, &st);
    hconn c;
    hconn_open(&c, srv.port);
    size_t n = (size_t)1 << 20;
    char head[128];
    int hl = snprintf(head, sizeof head, "POST /big HTTP/1.1\r\nHost: t\r\nContent-Length: %zu\r\n\r\n", n);
    char *body = mib_body(n);
    write_some(c.fd, head, (size_t)hl);
    write_some(c.fd, body, n);
    expect_refusal(&c, &st, 413);
    free(body);
    TT_NO_ERRORS();
    server_stop(&srv);
}

/* 1 MiB in 64 KiB chunks: refused once the limit is passed. */
static void test_body_chunked_too_large(void)
{
    struct http_stats st = {0};
    struct server srv;
    start(&srv, &st);
    hconn c;
    hconn_open(&c, srv.port);
    const size_t chunk = 64 << 10, n = (size_t)1 << 20;
    char *buf = malloc(n + 4096);
    CU_ASSERT_FATAL(buf != NULL);
    size_t len = (size_t)sprintf(buf, "POST /big HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n");
    for (size_t sent = 0; sent < n; sent += chunk) {
        len += (size_t)sprintf(buf + len, "%zx\r\n", chunk);
        memset(buf + len, 'y', chunk);
        len += chunk;
        len += (size_t)sprintf(buf + len, "\r\n");
    }
    len += (size_t)sprintf(buf + len, "0\r\n\r\n");
    write_some(c.fd, buf, len);
    expect_refusal(&c, &st, 413);
    free(buf);
    TT_NO_ERRORS();
    server_stop(&srv);
}

/* Exactly max_body: served, the body back byte for byte. */
static void test_body_at_limit(void)
{
    struct http_stats st = {0};
    struct server srv;
    start(&srv, &st);
    hconn c;
    hconn_open(&c, srv.port);
    char *body = mib_body(MAX_BODY);
    for (size_t i = 0; i < MAX_BODY; i++)
        body[i] = (char)('a' + i % 26);
    char head[128];
    int hl = snprintf(head, sizeof head, "PUT /fits HTTP/1.1\r\nHost: t\r\nContent-Length: %zu\r\n\r\n",
                      MAX_BODY);
    CU_ASSERT(cli_write(c.fd, head, (size_t)hl));
    CU_ASSERT(cli_write(c.fd, body, MAX_BODY));
    size_t want_len;
    char *want = http_echo_body("PUT", "/fits", body, MAX_BODY, &want_len);
    hresp r;
    CU_ASSERT_FATAL(hconn_read(&c, &r) == 1);
    TT_EQ(r.status, 200);
    TT_EQ(r.body_len, want_len);
    CU_ASSERT(r.body_len == want_len && memcmp(r.body, want, want_len) == 0);
    free(r.body);
    free(want);
    free(body);
    close(c.fd);
    WAIT_FOR(atomic_load(&st.closed) == 1);
    TT_EQ(atomic_load(&st.requests), 1);
    TT_EQ(atomic_load(&st.errors), 0);
    TT_NO_ERRORS();
    server_stop(&srv);
}

/* A 2,000-byte field with a 1,024-byte limit: 431. */
static void test_header_too_large(void)
{
    struct http_stats st = {0};
    struct server srv;
    start(&srv, &st);
    hconn c;
    hconn_open(&c, srv.port);
    char buf[4096];
    size_t n = (size_t)sprintf(buf, "GET / HTTP/1.1\r\nHost: t\r\nX-Long: ");
    memset(buf + n, 'v', 2000);
    n += 2000;
    n += (size_t)sprintf(buf + n, "\r\n\r\n");
    write_some(c.fd, buf, n);
    expect_refusal(&c, &st, 431);
    TT_NO_ERRORS();
    server_stop(&srv);
}

/* 101 short fields, within the byte limit: 431 all the same. */
static void test_too_many_fields(void)
{
    struct http_stats st = {0};
    struct server srv;
    tr_tcp_handler h = http_handler(&st);
    http_server_start(&srv, h); /* default limits: 8 KiB of headers */
    hconn c;
    hconn_open(&c, srv.port);
    char buf[8192];
    size_t n = (size_t)sprintf(buf, "GET / HTTP/1.1\r\nHost: t\r\n");
    for (int i = 0; i < 100; i++)
        n += (size_t)sprintf(buf + n, "X-%d: v\r\n", i);
    n += (size_t)sprintf(buf + n, "\r\n");
    CU_ASSERT_FATAL(n < 8192);
    write_some(c.fd, buf, n);
    expect_refusal(&c, &st, 431);
    TT_NO_ERRORS();
    server_stop(&srv);
}

void register_http_limits_tests(void)
{
    CU_pSuite s = tt_suite("http_limits");
    tt_test(s, "declared_1mib_body_over_limit_answered_413_closed", test_body_declared_too_large);
    tt_test(s, "chunked_1mib_body_over_limit_answered_413_closed", test_body_chunked_too_large);
    tt_test(s, "body_exactly_at_limit_served_whole", test_body_at_limit);
    tt_test(s, "header_block_over_limit_answered_431_closed", test_header_too_large);
    tt_test(s, "101_fields_answered_431_closed", test_too_many_fields);
}
