/* net/http.c — HTTP/1.1 requests out of a byte stream, and back out of
 * their messages (net/http.h explains the buffer and the layout). */
#include "http.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "troupe/http.h"

#define DEFAULT_MAX_HEADER ((size_t)8 << 10)
#define DEFAULT_MAX_BODY ((size_t)1 << 20)
/* Below http-parser's own bound on a header block (HTTP_MAX_HEADER_SIZE,
 * 80 KiB), which counts a little differently. */
#define MAX_HEADER_LIMIT ((size_t)64 << 10)
/* So that a whole request stays far below TR_MSG_MAX_LEN and every offset
 * fits 32 bits. */
#define MAX_BODY_LIMIT ((size_t)1 << 28)
/* Raw bytes a request may take beyond its header block and body: chunk
 * sizes, chunk extensions (which http-parser skips without a bound) and
 * trailers. */
#define FRAMING_SLACK(body) ((body) + ((size_t)64 << 10))
/* An emptied buffer larger than this is given back (as the line framer does). */
#define KEEP_BUFFER 16384
#define WIRE_MAGIC 0x48545031u /* "HTP1" */

/* The head of a TR_HTTP_REQUEST payload; offsets are from the payload's start. */
typedef struct wire {
    uint32_t magic;
    uint32_t method_off, method_len;
    uint32_t target_off, target_len;
    uint32_t body_off, body_len;
    uint32_t table_off, count;
    uint8_t major, minor, keep_alive, pad;
} wire;

/* Stops the parser with a refusal (a callback's non-zero result). */
static int refuse(tr__http *h, int status)
{
    if (h->status == 0)
        h->status = status;
    return -1;
}

static tr__framer *framer_of(http_parser *p)
{
    return p->data;
}

static uint32_t offset_of(const tr__framer *f, const char *at)
{
    return (uint32_t)(at - (f->buf + f->start));
}

static int on_begin(http_parser *p)
{
    tr__http *h = framer_of(p)->http;
    h->target = h->body = (tr__http_span){0, 0};
    h->nfields = 0;
    h->last = 0;
    h->headers_done = h->complete = false;
    return 0;
}

static int on_url(http_parser *p, const char *at, size_t len)
{
    tr__framer *f = framer_of(p);
    tr__http *h = f->http;
    uint32_t off = offset_of(f, at);
    if (h->target.len == 0)
        h->target.off = off;
    else if (off != h->target.off + h->target.len)
        return refuse(h, 400);
    h->target.len += (uint32_t)len;
    return 0;
}

/* Fields are kept as (name, value) pairs of spans. A piece that continues
 * the last span of its kind (a read ended inside it) must follow it
 * directly; a value split by obsolete line folding does not, and is
 * refused (RFC 9112 allows that), so that every value is one run of the
 * request's bytes. A name after a name starts a new pair: the value in
 * between was empty. Trailer fields after a chunked body are ignored. */
static int on_field_piece(http_parser *p, const char *at, size_t len, uint8_t kind)
{
    tr__framer *f = framer_of(p);
    tr__http *h = f->http;
    if (h->headers_done)
        return 0;
    uint32_t off = offset_of(f, at);
    tr__http_span *last = h->nfields > 0 ? &h->fields[h->nfields - (kind == 1 ? 2 : 1)] : NULL;
    if (h->last == kind && off == last->off + last->len) {
        last->len += (uint32_t)len;
        return 0;
    }
    if (kind == 2) {
        if (h->last != 1)
            return refuse(h, 400);
        *last = (tr__http_span){off, (uint32_t)len};
        h->last = 2;
        return 0;
    }
    if (h->nfields / 2 >= TR__HTTP_MAX_FIELDS)
        return refuse(h, 431);
    if (h->nfields + 2 > h->cap) {
        uint32_t cap = h->cap ? 2 * h->cap : 16;
        tr__http_span *grown = realloc(h->fields, cap * sizeof *grown);
        if (grown == NULL)
            return refuse(h, 431); /* no room for more fields, whatever the cause */
        h->fields = grown;
        h->cap = cap;
    }
    h->fields[h->nfields++] = (tr__http_span){off, (uint32_t)len};
    h->fields[h->nfields++] = (tr__http_span){0, 0};
    h->last = 1;
    return 0;
}

static int on_name(http_parser *p, const char *at, size_t len)
{
    return on_field_piece(p, at, len, 1);
}

static int on_value(http_parser *p, const char *at, size_t len)
{
    return on_field_piece(p, at, len, 2);
}

static uint32_t field_count(const tr__http *h)
{
    return h->nfields / 2;
}

static int on_headers_complete(http_parser *p)
{
    tr__framer *f = framer_of(p);
    tr__http *h = f->http;
    h->headers_done = true;
    h->deadline_ns = 0; /* the header block came in time */
    if (p->http_major != 1)
        return refuse(h, 505);
    if ((p->flags & F_CONTENTLENGTH) && !(p->flags & F_CHUNKED) &&
        p->content_length > h->max_body)
        return refuse(h, 413); /* before a byte of it is read */
    if (p->http_minor >= 1) {
        /* RFC 9112 3.2: exactly one Host, or 400. */
        const char *base = f->buf + f->start;
        unsigned hosts = 0;
        for (uint32_t i = 0; i < h->nfields; i += 2)
            hosts += h->fields[i].len == 4 && strncasecmp(base + h->fields[i].off, "host", 4) == 0;
        if (hosts != 1)
            return refuse(h, 400);
    }
    return 0;
}

static int on_body(http_parser *p, const char *at, size_t len)
{
    tr__framer *f = framer_of(p);
    tr__http *h = f->http;
    if (len > h->max_body - h->body.len)
        return refuse(h, 413);
    uint32_t off = offset_of(f, at);
    if (h->body.len == 0)
        h->body.off = off;
    else if (off != h->body.off + h->body.len) /* the next chunk: close the gap */
        memmove(f->buf + f->start + h->body.off + h->body.len, at, len);
    h->body.len += (uint32_t)len;
    return 0;
}

static int on_complete(http_parser *p)
{
    tr__http *h = framer_of(p)->http;
    h->complete = true;
    h->flags = (uint8_t)((http_should_keep_alive(p) ? TR__HTTP_KEEP : 0) |
                         (p->method == HTTP_HEAD ? TR__HTTP_HEAD : 0) |
                         (p->http_minor == 0 ? TR__HTTP_V10 : 0));
    h->method = (uint8_t)p->method;
    h->major = (uint8_t)p->http_major;
    h->minor = (uint8_t)p->http_minor;
    http_parser_pause(p, 1); /* one request at a time */
    return 0;
}

static const http_parser_settings settings = {
    .on_message_begin = on_begin,
    .on_url = on_url,
    .on_header_field = on_name,
    .on_header_value = on_value,
    .on_headers_complete = on_headers_complete,
    .on_body = on_body,
    .on_message_complete = on_complete,
};

int tr__http_init(tr__framer *f, size_t max_header, size_t max_body)
{
    tr__http *h = calloc(1, sizeof *h);
    if (h == NULL)
        return TR_ENOMEM;
    h->max_header = max_header == 0 ? DEFAULT_MAX_HEADER
                    : max_header < MAX_HEADER_LIMIT ? max_header : MAX_HEADER_LIMIT;
    h->max_body = max_body == 0 ? DEFAULT_MAX_BODY
                  : max_body < MAX_BODY_LIMIT ? max_body : MAX_BODY_LIMIT;
    f->max_line = h->max_header;
    f->max_frame = h->max_body;
    http_parser_init(&h->parser, HTTP_REQUEST);
    h->parser.data = f;
    f->http = h;
    return 0;
}

void tr__http_fini(tr__framer *f)
{
    if (f->http != NULL) {
        free(f->http->fields);
        free(f->http);
        f->http = NULL;
    }
}

static int fail(tr__http *h, int status)
{
    if (h->status == 0)
        h->status = status;
    return h->status == 413 || h->status == 431 ? TR_EMSGSIZE : TR_EBADFRAME;
}

/* Drops the request last returned from the buffer. */
static void consume(tr__framer *f)
{
    f->http->ready = false;
    f->http->headers_done = false;
    f->start = f->scanned;
    if (f->start == f->len) {
        f->start = f->len = f->scanned = 0;
        if (f->cap > KEEP_BUFFER) {
            free(f->buf);
            f->buf = NULL;
            f->cap = 0;
        }
    }
}

int tr__http_next(tr__framer *f, tr__frame *out)
{
    tr__http *h = f->http;
    if (h->ready)
        consume(f);
    if (h->status != 0)
        return fail(h, h->status);
    if (h->outstanding >= TR__HTTP_PIPELINE)
        return 0;
    while (f->scanned < f->len) {
        /* The parser never sees more of a request than its limits allow,
         * so that it is refused at the same byte however it was cut. */
        size_t cap = h->headers_done ? h->max_header + h->max_body + FRAMING_SLACK(h->max_body)
                                     : h->max_header;
        size_t used = f->scanned - f->start;
        if (used >= cap)
            return fail(h, h->headers_done ? 413 : 431);
        size_t avail = f->len - f->scanned;
        size_t n = http_parser_execute(&h->parser, &settings, f->buf + f->scanned,
                                       avail < cap - used ? avail : cap - used);
        f->scanned += n;
        enum http_errno e = HTTP_PARSER_ERRNO(&h->parser);
        if (h->complete && h->status == 0) {
            if (h->parser.upgrade) /* not taken: the connection goes on in HTTP/1.1 */
                http_parser_init(&h->parser, HTTP_REQUEST);
            else if (e == HPE_PAUSED)
                http_parser_pause(&h->parser, 0);
            h->complete = false;
            h->ready = true;
            h->deadline_ns = 0; /* in time: the next wait starts afresh (tr__http_watch) */
            h->fifo |= (uint64_t)h->flags << (4 * h->outstanding);
            h->outstanding++;
            out->data = NULL;
            out->len = sizeof(wire) + 16 * (size_t)field_count(h) +
                       strlen(http_method_str((enum http_method)h->method)) + 1 +
                       h->target.len + 1 + h->body.len + 1;
            for (uint32_t i = 0; i < h->nfields; i++)
                out->len += h->fields[i].len + 1;
            return 1;
        }
        if (e != HPE_OK)
            return fail(h, e == HPE_HEADER_OVERFLOW ? 431 : 400);
        if (n == 0)
            break; /* no progress without an error: wait for more */
    }
    if (f->start == f->len)
        consume(f);
    return 0;
}

static uint32_t put(unsigned char *dst, uint32_t *at, const void *src, size_t len)
{
    uint32_t off = *at;
    if (len > 0)
        memcpy(dst + off, src, len);
    dst[off + len] = '\0';
    *at += (uint32_t)len + 1;
    return off;
}

void tr__http_encode(const tr__framer *f, void *payload)
{
    const tr__http *h = f->http;
    const char *base = f->buf + f->start;
    unsigned char *dst = payload;
    const char *method = http_method_str((enum http_method)h->method);
    uint32_t count = field_count(h);
    wire w = {.magic = WIRE_MAGIC, .count = count, .table_off = sizeof(wire),
              .major = h->major, .minor = h->minor,
              .keep_alive = (h->flags & TR__HTTP_KEEP) != 0};
    uint32_t at = sizeof(wire) + 16 * count;
    w.method_len = (uint32_t)strlen(method);
    w.method_off = put(dst, &at, method, w.method_len);
    w.target_len = h->target.len;
    w.target_off = put(dst, &at, base + h->target.off, h->target.len);
    for (uint32_t i = 0; i < count; i++) {
        tr__http_span name = h->fields[2 * i], value = h->fields[2 * i + 1];
        while (value.len > 0 && (base[value.off + value.len - 1] == ' ' ||
                                 base[value.off + value.len - 1] == '\t'))
            value.len--;
        uint32_t row[4];
        row[1] = name.len;
        row[0] = put(dst, &at, base + name.off, name.len);
        row[3] = value.len;
        row[2] = put(dst, &at, base + value.off, value.len);
        memcpy(dst + sizeof(wire) + 16 * i, row, sizeof row);
    }
    w.body_len = h->body.len;
    w.body_off = put(dst, &at, base + h->body.off, h->body.len);
    memcpy(dst, &w, sizeof w);
}

bool tr__http_blocked(const tr__framer *f)
{
    const tr__http *h = f->http;
    return h->outstanding >= TR__HTTP_PIPELINE || (h->status != 0 && h->outstanding > 0);
}

int tr__http_status(const tr__framer *f)
{
    return f->http->status;
}

int tr__http_answered(tr__framer *f)
{
    tr__http *h = f->http;
    if (h->outstanding == 0)
        return -1;
    int flags = (int)(h->fifo & 15);
    h->fifo >>= 4;
    h->outstanding--;
    return flags;
}

/* ---- reading a request's message (troupe/http.h) ---- */

/* A string of the payload: within it, with its NUL. */
static bool string_ok(const tr_msg *m, uint32_t off, uint32_t len)
{
    return off < m->len && len < m->len - off && m->data[off + len] == '\0';
}

int tr_http_request_view(const tr_msg *m, tr_http_request *req)
{
    if (m == NULL || req == NULL || m->type != TR_HTTP_REQUEST)
        return TR_EINVAL;
    wire w;
    if (m->len < sizeof w)
        return TR_EBADFRAME;
    memcpy(&w, m->data, sizeof w);
    if (w.magic != WIRE_MAGIC || w.table_off != sizeof w ||
        w.count > (m->len - sizeof w) / 16 || !string_ok(m, w.method_off, w.method_len) ||
        !string_ok(m, w.target_off, w.target_len) || !string_ok(m, w.body_off, w.body_len))
        return TR_EBADFRAME;
    for (uint32_t i = 0; i < w.count; i++) {
        uint32_t row[4];
        memcpy(row, m->data + w.table_off + 16 * (size_t)i, sizeof row);
        if (!string_ok(m, row[0], row[1]) || !string_ok(m, row[2], row[3]))
            return TR_EBADFRAME;
    }
    const char *base = (const char *)m->data;
    *req = (tr_http_request){
        .method = base + w.method_off, .method_len = w.method_len,
        .target = base + w.target_off, .target_len = w.target_len,
        .version_major = w.major, .version_minor = w.minor, .keep_alive = w.keep_alive,
        .header_count = w.count,
        .body = base + w.body_off, .body_len = w.body_len,
        .tr__table = m->data + w.table_off,
    };
    return 0;
}

int tr_http_header_at(const tr_http_request *req, size_t i, tr_http_header *out)
{
    if (req == NULL || out == NULL || i >= req->header_count || req->tr__table == NULL)
        return TR_EINVAL;
    /* The table's offsets are from the payload's start, which lies just
     * before it (checked by tr_http_request_view). */
    const char *base = (const char *)req->tr__table - sizeof(wire);
    uint32_t row[4];
    memcpy(row, req->tr__table + 16 * i, sizeof row);
    *out = (tr_http_header){.name = base + row[0], .name_len = row[1],
                            .value = base + row[2], .value_len = row[3]};
    return 0;
}

const char *tr_http_header_find(const tr_http_request *req, const char *name, size_t *len)
{
    if (req == NULL || name == NULL)
        return NULL;
    size_t n = strlen(name);
    tr_http_header hd;
    for (size_t i = 0; i < req->header_count; i++) {
        if (tr_http_header_at(req, i, &hd) == 0 && hd.name_len == n &&
            strncasecmp(hd.name, name, n) == 0) {
            if (len != NULL)
                *len = hd.value_len;
            return hd.value;
        }
    }
    return NULL;
}
