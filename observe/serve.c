/* observe/serve.c — tr_metrics_serve: an HTTP listener whose connections
 * answer GET /metrics (prom.c) and GET /actors (actors.c).
 *
 * A windowed /actors query must not sleep on a worker (tr_runtime_top
 * refuses a window there), so the connection takes the first sample, starts
 * a troupe timer for the window and answers when it fires, in a later turn.
 * A helper thread calling tr_runtime_top would be shorter, but it could
 * outlive the runtime (tr_runtime_destroy does not wait for threads it
 * does not know), and it would hold a thread per query; the timer is an
 * actor the runtime already cleans up, and a connection that closes early
 * cancels it. While a window runs the connection stops reading
 * (tr_tcp_pause), since answers leave in the order of the requests.
 */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "observe.h"

/* The window's timer message: a user type, since timers send no reserved
 * ones; it counts only when it comes from the connection's own timer. */
#define WINDOW_DONE UINT32_C(0x7e5e0001)
/* A connection whose output stays above high water for
 * tr__metrics_drain_ns (a client that does not read its page) is reset,
 * and its queued page freed: 30 s (Prometheus gives up a scrape at 10). */
#define DRAIN_LATE UINT32_C(0x7e5e0002)
uint64_t tr__metrics_drain_ns = 30 * TR_SEC;

/* Largest answer: 65,536 named actors make about 12 MiB of /metrics. */
#define MAX_OUTPUT ((size_t)32 << 20)

/* Windowed /actors queries in progress at once, process-wide: each holds
 * a first sample (32 bytes an actor, up to 2 MiB) until its window ends,
 * even if its client has gone (reading is paused meanwhile). Past
 * TR__METRICS_WINDOWS_MAX, 503 with Retry-After. */
static _Atomic unsigned windows_open;

unsigned tr__metrics_windows_open(void)
{
    return atomic_load(&windows_open);
}

typedef struct serve_conn {
    tr_pid timer;          /* the window's timer, or TR_PID_NONE */
    tr__actors_query q;    /* the query waiting for it */
    tr__sample *before;    /* its first sample */
    size_t n_before;
    bool counted;          /* holds one of the TR__METRICS_WINDOWS_MAX */
    tr_pid drain;          /* the deadline while throttled, or TR_PID_NONE */
} serve_conn;

static const char *const TEXT = "Content-Type: text/plain; charset=utf-8\r\n";

static void conn_forget(serve_conn *c)
{
    free(c->before);
    c->before = NULL;
    c->n_before = 0;
    c->timer = TR_PID_NONE;
    if (c->counted)
        atomic_fetch_sub(&windows_open, 1);
    c->counted = false;
}

static void conn_on_stop(void *state, int reason)
{
    (void)reason;
    conn_forget(state);
}

/* A short answer. One that cannot be queued (the output full) would
 * leave the request unanswered, and a request waiting for its answer
 * stops the connection's timeouts: the connection is reset instead. */
static void respond_short(tr_ctx *cx, int status, const char *headers, const char *text)
{
    if (tr_http_respond(cx, status, headers, text, strlen(text)) != 0)
        tr_tcp_abort(cx);
}

static void respond_text(tr_ctx *cx, int status, const char *text)
{
    respond_short(cx, status, TEXT, text);
}

/* Sends the page in b, or 500 if it could not be made whole or queued. */
static void respond_page(tr_ctx *cx, int err, tr__obuf *b, const char *headers)
{
    if (err == 0)
        err = tr_http_respond(cx, 200, headers, b->p, b->len);
    if (err != 0) {
        char why[128];
        snprintf(why, sizeof why, "could not answer: %s\n", tr_strerror(err));
        respond_text(cx, 500, why);
    }
    tr__obuf_free(b);
}

static void serve_metrics(tr_ctx *cx)
{
    tr__obuf b = {0};
    int err = tr__prom_write(tr_ctx_runtime(cx), &b);
    respond_page(cx, err, &b, "Content-Type: text/plain; version=0.0.4; charset=utf-8\r\n");
}

static void serve_actors_now(tr_ctx *cx, serve_conn *c)
{
    tr__obuf b = {0};
    int err = tr__actors_write(tr_ctx_runtime(cx), &c->q, c->before, c->n_before, &b);
    respond_page(cx, err, &b, "Content-Type: application/json\r\n");
}

static void serve_actors(tr_ctx *cx, serve_conn *c, const char *query)
{
    const char *why;
    if (tr__actors_parse(query, &c->q, &why) != 0) {
        char text[160];
        snprintf(text, sizeof text, "bad query: %s\n", why);
        respond_text(cx, 400, text);
        return;
    }
    if (c->q.window_ms == 0) {
        serve_actors_now(cx, c);
        return;
    }
    if (atomic_fetch_add(&windows_open, 1) >= TR__METRICS_WINDOWS_MAX) {
        atomic_fetch_sub(&windows_open, 1);
        respond_short(cx, 503, "Retry-After: 1\r\nContent-Type: text/plain; charset=utf-8\r\n",
                      "too many windowed queries at once\n");
        return;
    }
    c->counted = true;
    int n = tr__actors_sample(tr_ctx_runtime(cx), &c->before);
    tr_timer_spec t = {.delay_ns = c->q.window_ms * TR_MSEC, .to = tr_self(cx),
                       .type = WINDOW_DONE};
    int err = n < 0 ? n : tr_timer_start(cx, &t, &c->timer);
    if (err != 0) {
        conn_forget(c);
        char text[128];
        snprintf(text, sizeof text, "could not start the window: %s\n", tr_strerror(err));
        respond_text(cx, 500, text);
        return;
    }
    c->n_before = (size_t)n;
    tr_tcp_pause(cx);
}

static void on_request(tr_ctx *cx, serve_conn *c, const tr_http_request *req)
{
    /* The target's path, without the query ("/actors?top=5"). */
    char path[64];
    const char *query = strchr(req->target, '?');
    size_t plen = query != NULL ? (size_t)(query - req->target) : req->target_len;
    if (plen >= sizeof path)
        plen = sizeof path - 1; /* long paths are unknown ones: 404 below */
    memcpy(path, req->target, plen);
    path[plen] = '\0';
    bool metrics = strcmp(path, "/metrics") == 0, actors = strcmp(path, "/actors") == 0;
    if (!metrics && !actors) {
        respond_text(cx, 404, "not found: try /metrics or /actors\n");
        return;
    }
    if (strcmp(req->method, "GET") != 0 && strcmp(req->method, "HEAD") != 0) {
        respond_short(cx, 405, "Allow: GET, HEAD\r\nContent-Type: text/plain\r\n",
                      "method not allowed\n");
        return;
    }
    if (metrics)
        serve_metrics(cx);
    else
        serve_actors(cx, c, query != NULL ? query + 1 : NULL);
}

static void serve_conn_actor(tr_ctx *cx, void *state, const tr_msg *m)
{
    serve_conn *c = state;
    tr_http_request req;
    if (tr_http_request_view(m, &req) == 0) {
        on_request(cx, c, &req);
    } else if (m->type == WINDOW_DONE && m->from == c->timer && c->timer != TR_PID_NONE) {
        serve_actors_now(cx, c);
        conn_forget(c);
        tr_tcp_resume(cx);
    } else if (m->type == TR_TCP_THROTTLED && c->drain == TR_PID_NONE) {
        tr_timer_spec t = {.delay_ns = tr__metrics_drain_ns, .to = tr_self(cx),
                           .type = DRAIN_LATE};
        if (tr_timer_start(cx, &t, &c->drain) != 0)
            tr_tcp_abort(cx); /* cannot bound it: do not hold the page */
    } else if (m->type == TR_TCP_UNTHROTTLED && c->drain != TR_PID_NONE) {
        tr_timer_cancel(cx, c->drain);
        c->drain = TR_PID_NONE;
    } else if (m->type == DRAIN_LATE && m->from == c->drain && c->drain != TR_PID_NONE) {
        c->drain = TR_PID_NONE;
        tr_tcp_abort(cx);
    } else if (m->type == TR_TCP_CLOSED) {
        if (c->timer != TR_PID_NONE)
            tr_timer_cancel(cx, c->timer);
        if (c->drain != TR_PID_NONE)
            tr_timer_cancel(cx, c->drain);
        c->drain = TR_PID_NONE;
        conn_forget(c);
    }
}

/* "HOST:PORT", "[V6]:PORT" or ":PORT" (every interface) into host and port. */
static int parse_addr(const char *addr, char *host, size_t size, uint16_t *port)
{
    const char *colon = addr != NULL ? strrchr(addr, ':') : NULL;
    if (colon == NULL)
        return TR_EINVAL;
    const char *h = addr, *hend = colon;
    if (*h == '[') {
        if (hend - h < 2 || hend[-1] != ']')
            return TR_EINVAL;
        h++, hend--;
    } else if (memchr(h, ':', (size_t)(hend - h)) != NULL) {
        return TR_EINVAL; /* a bare IPv6 address needs its brackets */
    }
    if ((size_t)(hend - h) >= size)
        return TR_EINVAL;
    memcpy(host, h, (size_t)(hend - h));
    host[hend - h] = '\0';
    const char *p = colon + 1;
    unsigned long v = 0;
    if (*p == '\0' || strlen(p) > 5)
        return TR_EINVAL;
    for (; *p != '\0'; p++) {
        if (*p < '0' || *p > '9')
            return TR_EINVAL;
        v = v * 10 + (unsigned long)(*p - '0');
    }
    if (v > 65535)
        return TR_EINVAL;
    *port = (uint16_t)v;
    return 0;
}

int tr_metrics_serve(tr_ctx *cx, const char *addr, uint16_t *port, tr_pid *server)
{
    char host[256];
    uint16_t p;
    if (cx == NULL || parse_addr(addr, host, sizeof host, &p) != 0)
        return TR_EINVAL;
    serve_conn proto = {.timer = TR_PID_NONE, .drain = TR_PID_NONE};
    tr_tcp_listen_opts o = {
        .host = host[0] != '\0' ? host : NULL,
        .port = p,
        .handler = {.actor = {.behaviour = serve_conn_actor, .state = &proto,
                              .state_size = sizeof proto, .on_stop = conn_on_stop},
                    .opts = {.framing = TR_FRAME_HTTP, .max_output = MAX_OUTPUT}},
    };
    return tr_tcp_listen(cx, &o, server, port);
}
