/* net/http.h — HTTP/1.1 request framing (internal; the API is troupe/http.h).
 *
 * The framer's line buffer holds the raw bytes of the request being read
 * (from f->start) and whatever was pipelined after it; http-parser runs
 * over them from f->scanned, and its callbacks note where the target, the
 * header names and values and the body lie, as offsets from the request's
 * first byte, so that the buffer may move or grow between reads. A chunked
 * body is compacted in place as it is parsed: each chunk's data moves down
 * over the chunk headers already read. The parser pauses itself at the end
 * of each request, so a request is delivered before the next is parsed.
 *
 * tr__http_encode lays a finished request out as the payload of a
 * TR_HTTP_REQUEST message (tr_http_request_view reads it back):
 *
 *   wire header | header table (4 x uint32 per field) | strings
 *
 * where the strings are the method, the target, each name and value and
 * the body, each followed by a NUL.
 *
 * The parser half (http.c) uses no runtime, so the fuzz target runs it
 * alone; the connection half (http_respond.c) answers, refuses and times
 * out, for net/conn.c.
 */
#ifndef TR_NET_HTTP_H
#define TR_NET_HTTP_H

#include <http_parser.h>
#include <stdbool.h>
#include <stdint.h>

#include "frame.h"

#define TR__HTTP_MAX_FIELDS 100
/* Requests delivered and not yet answered, at most: 4 bits each in fifo. */
#define TR__HTTP_PIPELINE 16

/* What the answer to a request must know of it. */
enum { TR__HTTP_KEEP = 1, TR__HTTP_HEAD = 2, TR__HTTP_V10 = 4 };

typedef struct tr__http_span {
    uint32_t off, len; /* from the request's first byte */
} tr__http_span;

typedef struct tr__http {
    http_parser parser;
    size_t max_header, max_body;
    uint64_t timeout_ns;  /* the header timeout (the connection's) */
    uint64_t deadline_ns; /* when the awaited header block is late; 0: none awaited */
    /* the request being read */
    tr__http_span target, body;
    tr__http_span *fields; /* name, value, name, value, ... */
    uint32_t nfields, cap;  /* spans used, allocated */
    bool headers_done, complete;
    bool ready;             /* returned by next: consumed at the next call */
    uint8_t last;           /* the last span written: 1 a name, 2 a value */
    uint8_t flags;          /* TR__HTTP_* of the complete request */
    uint8_t method, major, minor; /* of the complete request (the parser may be reset) */
    int status;             /* the refusal once failed (400, 413, 431, 505), else 0 */
    /* answers */
    uint64_t fifo;          /* TR__HTTP_* of each request awaiting its answer, oldest lowest */
    unsigned outstanding;
} tr__http;

/* For net/frame.c: tr__framer_init, _fini and _next in HTTP mode. 0 for a
 * limit is its default (8 KiB of headers, 1 MiB of body). */
int tr__http_init(tr__framer *f, size_t max_header, size_t max_body);
void tr__http_fini(tr__framer *f);
int tr__http_next(tr__framer *f, tr__frame *out);

/* The payload of the request tr__framer_next just returned: out->len bytes. */
void tr__http_encode(const tr__framer *f, void *dst);

/* Whether delivery must wait for answers: the pipeline is full, or a
 * refusal waits for the answers before it. */
bool tr__http_blocked(const tr__framer *f);

/* The HTTP status of a refusal: 400, 413, 431 or 505; 0 if none. */
int tr__http_status(const tr__framer *f);

/* Takes the oldest awaited answer's TR__HTTP_* flags; -1 when none. */
int tr__http_answered(tr__framer *f);

/* ---- net/http_respond.c, for net/conn.c ---- */

typedef struct tr_ctx tr_ctx;

/* Queues the refusal's answer (and Connection: close) on the running
 * connection. */
void tr__http_refuse(tr_ctx *cx, const tr__framer *f);

/* After each message: starts the header deadline when the connection
 * begins to wait for a request (active: it reads and answers), clears it
 * otherwise, and keeps a timer (*timer) running while one is set. */
void tr__http_watch(tr_ctx *cx, tr__framer *f, uint64_t *timer, bool active);

/* The timer fired (*timer is now none): true when the deadline has
 * passed; otherwise the timer is started again if a deadline is set. */
bool tr__http_expired(tr_ctx *cx, tr__framer *f, uint64_t *timer);

/* For http_respond.c (net/conn.c): the running connection's HTTP framer
 * and the bytes tr_tcp_send would take now; NULL when the running actor
 * is not an HTTP connection, or is not connected or closing. */
tr__framer *tr__conn_http(tr_ctx *cx, size_t *room);
/* Ends the running connection with err as its reason, as tr_tcp_abort
 * does with TR_ECONNABORTED (net/conn.c): 0, or TR_ENOTCONN. */
int tr__conn_fail(tr_ctx *cx, int err);

/* An answer went out: delivery may go on (unblocked), or a connection
 * that has seen its peer's EOF may close. */
void tr__conn_http_answered(tr_ctx *cx, bool unblocked);

#endif
