/* test_http_parse.c — the HTTP framer (net/http.c) without sockets: a
 * stream of requests of every framing, fed in every chunk size from 1 to
 * 64 bytes and in random chunkings, gives exactly the expected requests
 * (method, target, version, keep-alive, every field, the body), read back
 * through tr_http_request_view; and the view refuses what is not a
 * request or does not hold together. */
#include "tests.h"

#include <stdlib.h>
#include <string.h>

#include "../net/frame.h"
#include "../net/http.h"

static const char stream[] =
    "\r\nGET /a?q=1 HTTP/1.1\r\nHost: t\r\nX-Trail:  v  \r\nX-Empty:\r\n\r\n"
    "POST /p HTTP/1.1\r\nhost: t\r\nContent-Length: 5\r\n\r\nhello"
    "PUT /c HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
    "3\r\nabc\r\n4;x=y\r\ndefg\r\n0\r\nX-T: 1\r\n\r\n"
    "HEAD /h HTTP/1.0\r\n\r\n"
    "GET /u HTTP/1.1\r\nHost: t\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n"
    "DELETE /last HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n";

/* method|target|version|keep|fields|body */
static const char *const expected[] = {
    "GET|/a?q=1|1.1|1|Host=t;X-Trail=v;X-Empty=;|",
    "POST|/p|1.1|1|host=t;Content-Length=5;|hello",
    "PUT|/c|1.1|1|Host=t;Transfer-Encoding=chunked;|abcdefg",
    "HEAD|/h|1.0|0||",
    "GET|/u|1.1|1|Host=t;Connection=Upgrade;Upgrade=websocket;|",
    "DELETE|/last|1.1|0|Host=t;Connection=close;|",
};
#define NREQ (sizeof expected / sizeof expected[0])

static tr_msg *message(uint32_t type, size_t len)
{
    size_t size = (sizeof(tr_msg) + len + 15) & ~(size_t)15;
    tr_msg *m = aligned_alloc(16, size);
    CU_ASSERT_FATAL(m != NULL);
    memset(m, 0, size);
    m->type = type;
    m->len = (uint32_t)len;
    return m;
}

/* The request of m in the form of `expected`. */
static void summary(const tr_msg *m, char *out, size_t cap)
{
    tr_http_request r;
    int err = tr_http_request_view(m, &r);
    TT_EQ(err, 0);
    if (err != 0) {
        snprintf(out, cap, "view error %d", err);
        return;
    }
    size_t n = (size_t)snprintf(out, cap, "%s|%s|%u.%u|%d|", r.method, r.target, r.version_major,
                                r.version_minor, r.keep_alive);
    for (size_t i = 0; i < r.header_count && n < cap; i++) {
        tr_http_header h;
        TT_EQ(tr_http_header_at(&r, i, &h), 0);
        n += (size_t)snprintf(out + n, cap - n, "%.*s=%.*s;", (int)h.name_len, h.name,
                              (int)h.value_len, h.value);
    }
    if (n < cap)
        snprintf(out + n, cap - n, "|%.*s", (int)r.body_len, r.body);
}

/* Feeds the stream in chunks of `sizes` (cycled; 0 ends the list) and
 * checks every request in order. */
static void run(const size_t *sizes, size_t nsizes)
{
    tr__framer f;
    CU_ASSERT_FATAL(tr__framer_init(&f, TR_FRAME_HTTP, 0, 0) == 0);
    size_t len = sizeof stream - 1, fed = 0, k = 0, got = 0;
    while (fed < len) {
        size_t c = sizes[k++ % nsizes];
        if (c > len - fed)
            c = len - fed;
        CU_ASSERT_FATAL(tr__framer_feed(&f, stream + fed, c) == 0);
        fed += c;
        for (;;) {
            tr__frame fr;
            int r = tr__framer_next(&f, &fr);
            TT_EQ(r >= 0, 1);
            if (r <= 0)
                break;
            tr_msg *m = message(TR_HTTP_REQUEST, fr.len);
            tr__http_encode(&f, m->data);
            char s[512];
            summary(m, s, sizeof s);
            if (got < NREQ && strcmp(s, expected[got]) != 0)
                printf("\n    request %zu: got \"%s\"\n    wanted \"%s\"\n", got, s, expected[got]);
            CU_ASSERT(got < NREQ && strcmp(s, expected[got]) == 0);
            got++;
            free(m);
            CU_ASSERT(tr__http_answered(&f) >= 0);
        }
    }
    TT_EQ(got, NREQ);
    tr__framer_fini(&f);
}

static void test_every_chunk_size(void)
{
    for (size_t c = 1; c <= 64; c++)
        run(&c, 1);
    size_t whole = sizeof stream;
    run(&whole, 1);
}

static void test_random_chunkings(void)
{
    uint64_t seed = 5;
    for (int round = 0; round < 200; round++) {
        size_t sizes[7];
        for (size_t i = 0; i < 7; i++)
            sizes[i] = 1 + tt_rng_below(&seed, 40);
        run(sizes, 7);
    }
}

/* Without answers the framer holds at 16 requests waiting. */
static void test_pipeline_bound(void)
{
    tr__framer f;
    CU_ASSERT_FATAL(tr__framer_init(&f, TR_FRAME_HTTP, 0, 0) == 0);
    const char *one = "GET / HTTP/1.1\r\nHost: t\r\n\r\n";
    for (int i = 0; i < 20; i++)
        CU_ASSERT_FATAL(tr__framer_feed(&f, one, strlen(one)) == 0);
    tr__frame fr;
    int delivered = 0;
    while (tr__framer_next(&f, &fr) == 1)
        delivered++;
    TT_EQ(delivered, TR__HTTP_PIPELINE);
    CU_ASSERT(tr__http_blocked(&f));
    for (int i = 0; i < TR__HTTP_PIPELINE; i++)
        TT_EQ(tr__http_answered(&f), TR__HTTP_KEEP);
    TT_EQ(tr__http_answered(&f), -1);
    while (tr__framer_next(&f, &fr) == 1)
        delivered++;
    TT_EQ(delivered, 20);
    tr__framer_fini(&f);
}

/* The header deadline of a connection ends with each header block, so
 * that a busy kept-alive connection is never timed out: the next wait
 * starts from the answer (net/http_respond.c). */
static void test_headers_end_the_deadline(void)
{
    tr__framer f;
    CU_ASSERT_FATAL(tr__framer_init(&f, TR_FRAME_HTTP, 0, 0) == 0);
    const char *head = "POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 2\r\n\r\n";
    for (int round = 0; round < 3; round++) {
        f.http->deadline_ns = 12345;
        CU_ASSERT_FATAL(tr__framer_feed(&f, head, strlen(head)) == 0);
        tr__frame fr;
        TT_EQ(tr__framer_next(&f, &fr), 0);
        TT_EQ(f.http->deadline_ns, 0); /* the body may take its time */
        f.http->deadline_ns = 12345;
        CU_ASSERT_FATAL(tr__framer_feed(&f, "ok", 2) == 0);
        TT_EQ(tr__framer_next(&f, &fr), 1);
        TT_EQ(f.http->deadline_ns, 0);
        TT_EQ(tr__http_answered(&f), TR__HTTP_KEEP);
    }
    tr__framer_fini(&f);
}

static void test_view_checks(void)
{
    tr__framer f;
    CU_ASSERT_FATAL(tr__framer_init(&f, TR_FRAME_HTTP, 0, 0) == 0);
    const char *req = "GET /x HTTP/1.1\r\nHost: h\r\nAccept: a\r\n\r\n";
    CU_ASSERT_FATAL(tr__framer_feed(&f, req, strlen(req)) == 0);
    tr__frame fr;
    CU_ASSERT_FATAL(tr__framer_next(&f, &fr) == 1);
    tr_msg *m = message(TR_HTTP_REQUEST, fr.len);
    tr__http_encode(&f, m->data);
    tr_http_request r;
    TT_EQ(tr_http_request_view(m, &r), 0);
    size_t vlen = 0;
    const char *v = tr_http_header_find(&r, "ACCEPT", &vlen);
    CU_ASSERT(v != NULL && vlen == 1 && strcmp(v, "a") == 0);
    CU_ASSERT(tr_http_header_find(&r, "Accept-Language", NULL) == NULL);
    tr_http_header h;
    TT_EQ(tr_http_header_at(&r, 2, &h), TR_EINVAL);
    TT_EQ(tr_http_request_view(NULL, &r), TR_EINVAL);
    TT_EQ(tr_http_request_view(m, NULL), TR_EINVAL);
    m->type = TR_TCP_LINE;
    TT_EQ(tr_http_request_view(m, &r), TR_EINVAL);
    m->type = TR_HTTP_REQUEST;
    uint32_t len = m->len;
    for (uint32_t cut = 0; cut < len; cut++) { /* every truncation is caught */
        m->len = cut;
        TT_EQ(tr_http_request_view(m, &r), TR_EBADFRAME);
    }
    m->len = len;
    m->data[len - 1] = 'x'; /* the body's NUL */
    TT_EQ(tr_http_request_view(m, &r), TR_EBADFRAME);
    free(m);
    tr__framer_fini(&f);
}

static void nothing(tr_ctx *cx, void *state, const tr_msg *m)
{
    (void)cx, (void)state, (void)m;
}

/* What the API refuses: an answer outside an HTTP connection, HTTP for
 * an outgoing connection, a framing that does not exist. */
static void test_api_refusals(void)
{
    tr_runtime *rt = tt_runtime(1, 0);
    tr_ctx *cx = tr_runtime_ctx(rt);
    TT_EQ(tr_http_respond(cx, 200, NULL, "x", 1), TR_ENOTCONN);
    tr_tcp_connect_opts co = {.host = "127.0.0.1", .port = 9,
                              .handler = {.actor.behaviour = nothing}};
    co.handler.opts.framing = TR_FRAME_HTTP;
    tr_pid pid;
    TT_EQ(tr_tcp_connect(cx, &co, &pid), TR_EINVAL);
    tr_tcp_listen_opts lo = {.host = "127.0.0.1", .handler = co.handler};
    lo.handler.opts.framing = (tr_framing)(TR_FRAME_HTTP + 1);
    TT_EQ(tr_tcp_listen(cx, &lo, NULL, NULL), TR_EINVAL);
    tr_runtime_destroy(rt);
}

void register_http_parse_tests(void)
{
    CU_pSuite s = tt_suite("http_parse");
    tt_test(s, "requests_of_every_framing_at_every_chunk_size", test_every_chunk_size);
    tt_test(s, "requests_in_random_chunkings", test_random_chunkings);
    tt_test(s, "16_unanswered_requests_hold_the_rest", test_pipeline_bound);
    tt_test(s, "header_blocks_end_the_header_deadline", test_headers_end_the_deadline);
    tt_test(s, "view_checks_type_bounds_and_nuls", test_view_checks);
    tt_test(s, "respond_outside_http_connect_http_and_unknown_framing_refused",
            test_api_refusals);
}
