/* net/http_respond.c — answering HTTP requests on a connection: responses,
 * refusals, and the header timeout (net/http.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "../reactor/reactor.h"
#include "http.h"
#include "net.h"
#include "troupe/http.h"
#include "troupe/timer.h"

/* A response head this long or shorter is built on the stack. */
#define SMALL_HEAD 512

/* The reason phrase of a status: http-parser's table, else none (RFC 9112
 * allows an empty one). */
static const char *reason(int status)
{
    const char *r = http_status_str((enum http_status)status);
    return r != NULL && r[0] != '<' ? r : "";
}

/* tchar of RFC 9110 5.6.2. */
static bool token_char(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           (c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

static bool reserved_name(const char *name, size_t len)
{
    static const char *const names[] = {"content-length", "connection", "transfer-encoding"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (strlen(names[i]) == len && strncasecmp(name, names[i], len) == 0)
            return true;
    return false;
}

/* Whether `headers` is a run of "Name: value\r\n" lines with none of the
 * connection's own fields; its length in *len. A value holds no CR, LF or
 * other control byte but HTAB, so that nothing can end a line early. */
static bool headers_ok(const char *headers, size_t *len)
{
    *len = 0;
    if (headers == NULL)
        return true;
    const unsigned char *p = (const unsigned char *)headers;
    while (*p != '\0') {
        const unsigned char *name = p;
        while (token_char(*p))
            p++;
        if (p == name || *p != ':' || reserved_name((const char *)name, (size_t)(p - name)))
            return false;
        for (p++; *p != '\r'; p++)
            if (*p == '\0' || *p == '\n' || (*p < 0x20 && *p != '\t') || *p == 0x7f)
                return false;
        if (p[1] != '\n')
            return false;
        p += 2;
    }
    *len = (size_t)(p - (const unsigned char *)headers);
    return true;
}

int tr_http_respond(tr_ctx *cx, int status, const char *headers, const void *body, size_t len)
{
    size_t room, headers_len;
    tr__framer *f = tr__conn_http(cx, &room);
    if (f == NULL)
        return TR_ENOTCONN;
    bool bodiless = status == 204 || status == 304;
    if (status < 200 || status > 599 || (body == NULL && len != 0) || (bodiless && len != 0) ||
        !headers_ok(headers, &headers_len) || f->http->outstanding == 0)
        return TR_EINVAL;
    int flags = (int)(f->http->fifo & 15);
    bool keep = (flags & TR__HTTP_KEEP) != 0;
    const char *connection = !keep ? "Connection: close\r\n"
                             : (flags & TR__HTTP_V10) ? "Connection: keep-alive\r\n" : "";
    char length[48] = "";
    if (status != 204)
        snprintf(length, sizeof length, "Content-Length: %zu\r\n", len);
    const char *why = reason(status);
    size_t head_len = 16 + strlen(why) + strlen(connection) + strlen(length) + headers_len + 2;
    char small[SMALL_HEAD];
    char *head = head_len + 1 <= sizeof small ? small : malloc(head_len + 1);
    int n = head == NULL ? 0
                         : snprintf(head, head_len + 1, "HTTP/1.1 %03d %s\r\n%s%s%s\r\n", status,
                                    why, connection, length, headers != NULL ? headers : "");
    if ((flags & TR__HTTP_HEAD) || bodiless)
        len = 0; /* the head tells the length a GET would get, and nothing follows */
    int err = head == NULL                    ? TR_ENOMEM
              : n < 0 || (size_t)n > head_len ? TR_EINVAL
              : (size_t)n + len > room        ? TR_ENOBUFS
                                              : tr_tcp_send(cx, head, (size_t)n);
    if (head != small)
        free(head);
    if (err == 0 && len > 0)
        err = tr_tcp_send(cx, body, len);
    /* Out of memory (for the head, or for a body that would have followed
     * a head already queued: the stream would be broken), the connection
     * ends: a request left unanswered holds every later response, and the
     * close that follows the peer's end waits for the answers. */
    if (err == TR_ENOMEM)
        (void)tr__conn_fail(cx, err);
    if (err != 0)
        return err;
    bool was_blocked = tr__http_blocked(f);
    tr__http_answered(f);
    if (!keep)
        tr_tcp_close(cx);
    tr__conn_http_answered(cx, was_blocked && !tr__http_blocked(f));
    return 0;
}

void tr__http_refuse(tr_ctx *cx, const tr__framer *f)
{
    int status = tr__http_status(f);
    char text[160];
    const char *why = reason(status);
    int n = snprintf(text, sizeof text,
                     "HTTP/1.1 %d %s\r\nConnection: close\r\nContent-Type: text/plain\r\n"
                     "Content-Length: %zu\r\n\r\n%s\n",
                     status, why, strlen(why) + 1, why);
    if (n > 0 && (size_t)n < sizeof text)
        tr_tcp_send(cx, text, (size_t)n);
}

/* Waiting for a request's header block: every request answered, and no
 * refusal pending. */
static bool waiting(const tr__http *h)
{
    return h->outstanding == 0 && !h->headers_done && h->status == 0;
}

static void start_timer(tr_ctx *cx, uint64_t delay_ns, uint64_t *timer)
{
    if (tr__timer_system(cx, delay_ns, TR__NET_TIMEOUT, timer) != 0)
        *timer = TR_PID_NONE; /* no timer: the deadline is not enforced (table full) */
}

void tr__http_watch(tr_ctx *cx, tr__framer *f, uint64_t *timer, bool active)
{
    tr__http *h = f->http;
    if (!active || !waiting(h)) {
        h->deadline_ns = 0;
        return;
    }
    if (h->deadline_ns != 0)
        return;
    /* A timer still pending from an earlier wait fires before this
     * deadline and is started again for the rest (tr__http_expired):
     * requests on a busy connection start no timer of their own. */
    h->deadline_ns = tr__now_ns() + h->timeout_ns;
    if (*timer == TR_PID_NONE)
        start_timer(cx, h->timeout_ns, timer);
}

bool tr__http_expired(tr_ctx *cx, tr__framer *f, uint64_t *timer)
{
    tr__http *h = f->http;
    if (h->deadline_ns == 0)
        return false;
    uint64_t now = tr__now_ns();
    if (now >= h->deadline_ns)
        return true;
    start_timer(cx, h->deadline_ns - now, timer);
    return false;
}
