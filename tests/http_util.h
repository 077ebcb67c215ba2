/* http_util.h — what the HTTP suites share (tests/test_http_*.c): a
 * counting HTTP server behaviour for the in-process servers of
 * net_util.h, and a client that reads responses with a parser of its own
 * (not http-parser), so that what the server writes is checked by an
 * independent reading of RFC 9112.
 *
 * The echo behaviour answers every request with 200 and the body
 * "<method> <target> <body length>\n" followed by the request's body, so
 * that a client can tell which request a response answers and that the
 * body arrived whole; "/defer..." targets are answered in a later turn
 * (a message the connection sends itself), so that answers wait while
 * more requests are delivered. Server-side counts are atomics, read by
 * the test thread with WAIT_FOR (a safety net, not a timing assertion). */
#ifndef TROUPE_TESTS_HTTP_UTIL_H
#define TROUPE_TESTS_HTTP_UTIL_H

#include "net_util.h"

struct http_stats {
    atomic_long connected, closed, requests, errors, answered, answer_failed;
    atomic_int last_error, last_reason; /* of TR_TCP_ERROR, TR_TCP_CLOSED */
    atomic_long view_fails;            /* tr_http_request_view failures */
};

/* The echo behaviour described above. */
void http_echo(tr_ctx *cx, void *state, const tr_msg *m);
/* An HTTP handler running http_echo, counting into st (framing HTTP, other
 * options 0: defaults). */
tr_tcp_handler http_handler(struct http_stats *st);
/* A server (net_util.h's) running handler h. */
void http_server_start(struct server *s, tr_tcp_handler h);

/* The body http_echo answers a request with; its length in *len (malloc'd). */
char *http_echo_body(const char *method, const char *target, const void *body, size_t body_len,
                     size_t *len);

/* ---- the client ---------------------------------------------------------------- */

typedef struct hconn {
    int fd;
    bool head;             /* the next response answers HEAD: no body follows */
    size_t len;            /* bytes received, not yet taken */
    char buf[64 * 1024];
} hconn;

typedef struct hresp {
    int status;
    bool close;            /* "Connection: close" */
    bool keep_alive;       /* "Connection: keep-alive" */
    long content_length;   /* -1: none */
    char *body;            /* malloc'd, NUL-terminated; content_length bytes */
    size_t body_len;
} hresp;

void hconn_open(hconn *c, uint16_t port);
/* 1: a whole response in *r (free r->body); 0: EOF (or a reset) before
 * its first byte; -1: a timeout, or a malformed response (printed). */
int hconn_read(hconn *c, hresp *r);
/* The response must be `status` with exactly `body`. */
#define EXPECT_RESPONSE(c, status, body) expect_response((c), (status), (body), __FILE__, __LINE__)
void expect_response(hconn *c, int status, const char *body, const char *file, int line);
/* The server closes the connection with nothing more (EOF or reset). */
void expect_eof(hconn *c, const char *file, int line);
#define EXPECT_EOF(c) expect_eof((c), __FILE__, __LINE__)

#endif
