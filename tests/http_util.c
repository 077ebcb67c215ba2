/* http_util.c — the helpers of http_util.h. */
#include "http_util.h"

#include <strings.h>

enum { DEFER = 0x6001 }; /* an answer the connection sends itself */

struct hstate {
    struct http_stats *st;
};

char *http_echo_body(const char *method, const char *target, const void *body, size_t body_len,
                     size_t *len)
{
    char head[512];
    int n = snprintf(head, sizeof head, "%s %s %zu\n", method, target, body_len);
    TT_CHECK(n > 0 && (size_t)n < sizeof head);
    char *out = malloc((size_t)n + body_len + 1);
    TT_CHECK(out != NULL);
    if (out == NULL)
        return NULL;
    memcpy(out, head, (size_t)n);
    if (body_len > 0)
        memcpy(out + n, body, body_len);
    out[(size_t)n + body_len] = '\0';
    *len = (size_t)n + body_len;
    return out;
}

static void answer(tr_ctx *cx, struct http_stats *st, const void *body, size_t len)
{
    int err = tr_http_respond(cx, 200, "Content-Type: text/plain\r\nX-Test: 1\r\n", body, len);
    if (err == 0)
        atomic_fetch_add(&st->answered, 1);
    else
        atomic_fetch_add(&st->answer_failed, 1);
}

void http_echo(tr_ctx *cx, void *state, const tr_msg *m)
{
    struct hstate *hs = state;
    struct http_stats *st = hs->st;
    switch (m->type) {
    case TR_TCP_CONNECTED:
        atomic_fetch_add(&st->connected, 1);
        return;
    case TR_TCP_ERROR:
        atomic_store(&st->last_error, ((const tr_tcp_error *)m->data)->reason);
        atomic_fetch_add(&st->errors, 1);
        return;
    case TR_TCP_CLOSED:
        atomic_store(&st->last_reason, ((const tr_tcp_error *)m->data)->reason);
        atomic_fetch_add(&st->closed, 1);
        return;
    case DEFER:
        answer(cx, st, m->data, m->len);
        return;
    default:
        break;
    }
    tr_http_request req;
    if (tr_http_request_view(m, &req) != 0) {
        atomic_fetch_add(&st->view_fails, 1);
        return;
    }
    atomic_fetch_add(&st->requests, 1);
    TT_CHECK(strlen(req.method) == req.method_len && strlen(req.target) == req.target_len);
    TT_CHECK(req.body[req.body_len] == '\0');
    size_t len;
    char *body = http_echo_body(req.method, req.target, req.body, req.body_len, &len);
    if (body == NULL)
        return;
    if (strncmp(req.target, "/defer", 6) == 0)
        TT_CHECK(tr_send(cx, tr_self(cx), DEFER, body, len) == 0);
    else
        answer(cx, st, body, len);
    free(body);
}

tr_tcp_handler http_handler(struct http_stats *st)
{
    static _Thread_local struct hstate proto; /* copied by the listen call */
    proto.st = st;
    tr_tcp_handler h = {.actor = {.behaviour = http_echo, .state = &proto,
                                  .state_size = sizeof proto}};
    h.opts.framing = TR_FRAME_HTTP;
    return h;
}

void http_server_start(struct server *s, tr_tcp_handler h)
{
    s->st = NULL; /* the HTTP counters are the test's */
    server_start_opts(s, h, 0);
}

/* ---- the client ---------------------------------------------------------------- */

void hconn_open(hconn *c, uint16_t port)
{
    c->fd = cli_connect(port);
    c->len = 0;
    c->head = false;
}

/* Reads more into the buffer: 1, 0 at EOF or reset, -1 on a timeout. */
static int fill_more(hconn *c)
{
    if (c->len == sizeof c->buf)
        return -1;
    for (;;) {
        ssize_t r = recv(c->fd, c->buf + c->len, sizeof c->buf - c->len, 0);
        if (r < 0 && errno == EINTR)
            continue;
        if (r > 0) {
            c->len += (size_t)r;
            return 1;
        }
        if (r == 0 || errno == ECONNRESET)
            return 0;
        return -1;
    }
}

static void take(hconn *c, size_t n)
{
    memmove(c->buf, c->buf + n, c->len - n);
    c->len -= n;
}

/* The value of header `name` in the head [p, end), or NULL. */
static const char *field(const char *head, const char *name)
{
    size_t n = strlen(name);
    for (const char *line = strstr(head, "\r\n"); line != NULL; line = strstr(line + 2, "\r\n")) {
        const char *at = line + 2;
        if (strncasecmp(at, name, n) == 0 && at[n] == ':') {
            at += n + 1;
            while (*at == ' ')
                at++;
            return at;
        }
    }
    return NULL;
}

int hconn_read(hconn *c, hresp *r)
{
    memset(r, 0, sizeof *r);
    char *end;
    while ((end = memmem(c->buf, c->len, "\r\n\r\n", 4)) == NULL) {
        int got = fill_more(c);
        if (got == 0 && c->len == 0)
            return 0;
        if (got <= 0) {
            printf("\n    response: %s after %zu bytes\n", got == 0 ? "EOF" : "timeout", c->len);
            return -1;
        }
    }
    size_t head_len = (size_t)(end - c->buf) + 4;
    char head[sizeof c->buf + 1];
    memcpy(head, c->buf, head_len - 2); /* up to the last field's CRLF */
    head[head_len - 2] = '\0';
    take(c, head_len);
    if (sscanf(head, "HTTP/1.1 %3d ", &r->status) != 1 || r->status < 100) {
        printf("\n    bad status line: %.40s\n", head);
        return -1;
    }
    const char *v = field(head, "Connection");
    r->close = v != NULL && strncasecmp(v, "close", 5) == 0;
    r->keep_alive = v != NULL && strncasecmp(v, "keep-alive", 10) == 0;
    v = field(head, "Content-Length");
    r->content_length = v != NULL ? strtol(v, NULL, 10) : -1;
    size_t want = r->content_length > 0 && !c->head ? (size_t)r->content_length : 0;
    r->body = malloc(want + 1);
    CU_ASSERT_FATAL(r->body != NULL);
    while (r->body_len < want) {
        if (c->len == 0) {
            int got = fill_more(c);
            if (got <= 0) {
                printf("\n    body: %zu of %zu bytes\n", r->body_len, want);
                return -1;
            }
        }
        size_t n = c->len < want - r->body_len ? c->len : want - r->body_len;
        memcpy(r->body + r->body_len, c->buf, n);
        r->body_len += n;
        take(c, n);
    }
    r->body[r->body_len] = '\0';
    return 1;
}

void expect_response(hconn *c, int status, const char *body, const char *file, int line)
{
    hresp r;
    int got = hconn_read(c, &r);
    if (got != 1 || r.status != status || r.body_len != strlen(body) ||
        memcmp(r.body, body, r.body_len) != 0)
        printf("\n    %s:%d: wanted %d \"%.60s\", got %d: %d \"%.60s\"\n", file, line, status,
               body, got, r.status, r.body != NULL ? r.body : "");
    CU_ASSERT(got == 1 && r.status == status);
    CU_ASSERT(r.body_len == strlen(body) && memcmp(r.body, body, r.body_len) == 0);
    free(r.body);
}

void expect_eof(hconn *c, const char *file, int line)
{
    int got = c->len == 0 ? fill_more(c) : 1;
    if (got != 0)
        printf("\n    %s:%d: wanted the end of the connection, got %s\n", file, line,
               got > 0 ? "more bytes" : "a timeout");
    CU_ASSERT(got == 0);
}
