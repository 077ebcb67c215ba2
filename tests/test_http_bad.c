/* test_http_bad.c — malformed requests: answered 400 (505 for another
 * major version) with "Connection: close", then the connection closes;
 * the behaviour hears TR_TCP_ERROR (TR_EBADFRAME) and closed with the same
 * reason, never a request. A good request before the bad one in the same
 * write is answered first, in the same turn or a later one. (Helpers: http_util.h.) */
#include "http_util.h"

static void refused(const char *input, size_t len, int status, const char *good)
{
    struct http_stats st = {0};
    struct server srv;
    http_server_start(&srv, http_handler(&st));
    hconn c;
    hconn_open(&c, srv.port);
    CU_ASSERT(cli_write(c.fd, input, len));
    if (good != NULL) { /* a good request's target: echoed first */
        char want[64];
        snprintf(want, sizeof want, "GET %s 0\n", good);
        EXPECT_RESPONSE(&c, 200, want);
    }
    hresp r;
    int got = hconn_read(&c, &r);
    TT_EQ(got, 1);
    TT_EQ(r.status, status);
    CU_ASSERT(r.close);
    free(r.body);
    EXPECT_EOF(&c);
    close(c.fd);
    WAIT_FOR(atomic_load(&st.closed) == 1);
    TT_EQ(atomic_load(&st.requests), good != NULL ? 1 : 0);
    TT_EQ(atomic_load(&st.answer_failed), 0);
    TT_EQ(atomic_load(&st.errors), 1);
    TT_EQ(atomic_load(&st.last_error), TR_EBADFRAME);
    TT_EQ(atomic_load(&st.last_reason), TR_EBADFRAME);
    TT_EQ(atomic_load(&st.view_fails), 0);
    TT_NO_ERRORS();
    server_stop(&srv);
}

#define REFUSED(text, status, good) refused((text), sizeof(text) - 1, (status), (good))

static void test_garbage(void)
{
    REFUSED("\x16\x03\x01\x02\x00garbage that is not HTTP\r\n\r\n", 400, NULL);
}

static void test_binary_noise(void)
{
    char noise[4096];
    uint64_t seed = 99;
    for (size_t i = 0; i < sizeof noise; i++)
        noise[i] = (char)tt_rng_below(&seed, 256);
    noise[0] = '\x01'; /* not a method's first letter */
    refused(noise, sizeof noise, 400, NULL);
}

static void test_good_then_garbage(void)
{
    REFUSED("GET /ok HTTP/1.1\r\nHost: t\r\n\r\nGARBAGE\x01\r\n\r\n", 400, "/ok");
}

/* The same, with the good request answered in a later turn: the 400
 * waits for that answer, which must not find the connection closing. */
static void test_deferred_good_then_garbage(void)
{
    REFUSED("GET /defer HTTP/1.1\r\nHost: t\r\n\r\nGARBAGE\x01\r\n\r\n", 400, "/defer");
}

static void test_no_host(void)
{
    REFUSED("GET / HTTP/1.1\r\nAccept: */*\r\n\r\n", 400, NULL);
}

static void test_two_hosts(void)
{
    REFUSED("GET / HTTP/1.1\r\nHost: a\r\nhost: b\r\n\r\n", 400, NULL);
}

static void test_folded_header(void)
{
    REFUSED("GET / HTTP/1.1\r\nHost: t\r\nX-Folded: a\r\n  b\r\n\r\n", 400, NULL);
}

static void test_length_and_chunked(void)
{
    /* Both framings at once: the smuggling vector RFC 9112 6.1 forbids. */
    REFUSED("POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n"
            "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400, NULL);
}

static void test_bad_version(void)
{
    REFUSED("GET / HTTP/2.0\r\nHost: t\r\n\r\n", 505, NULL);
}

void register_http_bad_input_tests(void)
{
    CU_pSuite s = tt_suite("http_bad_input");
    tt_test(s, "garbage_answered_400_and_closed", test_garbage);
    tt_test(s, "random_bytes_answered_400_and_closed", test_binary_noise);
    tt_test(s, "good_request_answered_before_the_400", test_good_then_garbage);
    tt_test(s, "deferred_answer_goes_before_the_400", test_deferred_good_then_garbage);
    tt_test(s, "http11_without_host_answered_400", test_no_host);
    tt_test(s, "two_hosts_answered_400", test_two_hosts);
    tt_test(s, "folded_header_answered_400", test_folded_header);
    tt_test(s, "content_length_with_chunked_answered_400", test_length_and_chunked);
    tt_test(s, "http2_request_line_answered_505", test_bad_version);
}
