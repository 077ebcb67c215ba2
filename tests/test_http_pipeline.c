/* test_http_pipeline.c — pipelined requests: N requests in one write get
 * N answers, in order, whether the behaviour answers each at once or in a
 * later turn (when up to 16 requests wait for answers and the connection
 * stops reading until they come). Bodies of every framing (none,
 * Content-Length, chunked) are mixed in. (Helpers: http_util.h.) */
#include "http_util.h"

/* Appends request i to buf: GET, POST with a body, or a chunked POST. */
static size_t put_request(char *buf, const char *prefix, int i, char *want, size_t *want_len)
{
    char target[64], body[64];
    snprintf(target, sizeof target, "/%s%d", prefix, i);
    int blen = snprintf(body, sizeof body, "body-%d", i);
    size_t n;
    const char *method = "GET";
    switch (i % 3) {
    case 0:
        n = (size_t)sprintf(buf, "GET %s HTTP/1.1\r\nHost: t\r\n\r\n", target);
        blen = 0;
        break;
    case 1:
        method = "POST";
        n = (size_t)sprintf(buf, "POST %s HTTP/1.1\r\nHost: t\r\nContent-Length: %d\r\n\r\n%s",
                            target, blen, body);
        break;
    default: /* the body in two chunks, with a chunk extension and a trailer */
        method = "PUT";
        n = (size_t)sprintf(buf,
                            "PUT %s HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
                            "5;ext=1\r\n%.5s\r\n%x\r\n%s\r\n0\r\nX-Trailer: t\r\n\r\n",
                            target, body, blen - 5, body + 5);
        break;
    }
    size_t len;
    char *w = http_echo_body(method, target, body, (size_t)blen, &len);
    memcpy(want, w, len + 1);
    *want_len = len;
    free(w);
    return n;
}

static void pipeline(const char *prefix, int count)
{
    struct http_stats st = {0};
    struct server srv;
    http_server_start(&srv, http_handler(&st));
    hconn c;
    hconn_open(&c, srv.port);
    char *all = malloc((size_t)count * 256);
    char (*want)[128] = malloc((size_t)count * sizeof *want);
    CU_ASSERT_FATAL(all != NULL && want != NULL);
    size_t n = 0, want_len;
    for (int i = 0; i < count; i++)
        n += put_request(all + n, prefix, i, want[i], &want_len);
    CU_ASSERT(cli_write(c.fd, all, n)); /* all of them in one write */
    for (int i = 0; i < count; i++)
        EXPECT_RESPONSE(&c, 200, want[i]);
    TT_EQ(atomic_load(&st.requests), count);
    TT_EQ(atomic_load(&st.answered), count);
    close(c.fd);
    WAIT_FOR(atomic_load(&st.closed) == 1);
    TT_EQ(atomic_load(&st.connected), 1);
    TT_EQ(atomic_load(&st.answer_failed) + atomic_load(&st.errors) + atomic_load(&st.view_fails), 0);
    TT_NO_ERRORS();
    free(all);
    free(want);
    server_stop(&srv);
}

/* Answered in the turn that delivers each. */
static void test_pipelined_at_once(void)
{
    pipeline("now", 200);
}

/* Answered later: more than 16 wait at times, so reading stops and resumes. */
static void test_pipelined_deferred(void)
{
    pipeline("defer", 200);
}

void register_http_pipeline_tests(void)
{
    CU_pSuite s = tt_suite("http_pipeline");
    tt_test(s, "200_requests_in_one_write_answered_in_order", test_pipelined_at_once);
    tt_test(s, "deferred_answers_leave_in_request_order", test_pipelined_deferred);
}
