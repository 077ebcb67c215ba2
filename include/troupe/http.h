/* troupe/http.h — HTTP/1.1 servers: one message per request, tr_http_respond.
 *
 * A listener whose handler has opts.framing = TR_FRAME_HTTP makes every
 * connection an HTTP/1.1 server connection. The bytes are parsed by
 * Debian's http-parser (the parser Node.js used until v12), and the
 * connection's behaviour receives, between TR_TCP_CONNECTED and
 * TR_TCP_CLOSED, one TR_HTTP_REQUEST per complete request, in order:
 * method, target, headers and body (a chunked body arrives de-chunked).
 * Read it with tr_http_request_view; answer it with tr_http_respond.
 *
 * Keep-alive follows the request: HTTP/1.1 stays open unless the request
 * says "Connection: close"; HTTP/1.0 closes unless it says
 * "Connection: keep-alive". Pipelined requests are delivered in order, and
 * each tr_http_respond answers the oldest request not yet answered, so
 * responses leave in the order the requests came; at most 16 requests wait
 * for an answer before the connection stops reading.
 *
 * The connection answers by itself, then closes (TR_TCP_ERROR first, then
 * TR_TCP_CLOSED with the same reason), when a request is
 *   malformed, or HTTP/1.1 without exactly one Host   400 Bad Request   TR_EBADFRAME
 *   of a major version other than 1                  505               TR_EBADFRAME
 *   headers past opts.max_header (or 100 fields)     431               TR_EMSGSIZE
 *   a body past opts.max_body                        413 Content Too Large  TR_EMSGSIZE
 * (a declared Content-Length past the limit is refused before the body is
 * read). Such an answer waits for the answers to the requests before it.
 *
 * Slow clients: a connection that has not sent a complete request line
 * and headers within opts.header_timeout_ns (default 10 s) of waiting for
 * them — from the connection's start, or from the answer to its previous
 * request — is closed (TR_TCP_CLOSED with TR_ETIMEDOUT). The same bound is
 * thus the idle time of a kept-alive connection. It does not run while a
 * request waits for its answer, nor while the behaviour has paused.
 *
 * Not supported: protocol upgrades (an Upgrade header is ignored, and the
 * connection goes on in HTTP/1.1), CONNECT tunnels, "Expect: 100-continue"
 * (no interim 100 is sent: clients send the body after a short wait), and
 * client connections (tr_tcp_connect refuses TR_FRAME_HTTP).
 */
#ifndef TROUPE_HTTP_H
#define TROUPE_HTTP_H

#include <stddef.h>

#include "api.h"
#include "msg.h"
#include "net.h"

#ifdef __cplusplus
extern "C" {
#endif

/* A request, as a view into its message: valid while the message is
 * (until the behaviour returns). Every string is followed by a NUL byte
 * not counted in its length, so it may be used as a C string (a body may
 * hold NULs of its own). */
typedef struct tr_http_request {
    const char *method;   /* "GET", "POST", ... */
    size_t method_len;
    const char *target;   /* as sent: "/path?query" (not decoded) */
    size_t target_len;
    unsigned version_major, version_minor; /* 1.0 or 1.1 */
    int keep_alive;       /* 1: the connection stays open after the answer */
    size_t header_count;
    const char *body;     /* the body, "" when none */
    size_t body_len;
    const unsigned char *tr__table; /* internal: for the header calls below */
} tr_http_request;

typedef struct tr_http_header {
    const char *name;     /* as sent (case kept) */
    size_t name_len;
    const char *value;    /* without leading or trailing blanks */
    size_t value_len;
} tr_http_header;

/* Reads a TR_HTTP_REQUEST message into *req, checking that its layout
 * holds together (every offset and length within the payload). Errors:
 * TR_EINVAL (NULL, or not a TR_HTTP_REQUEST), TR_EBADFRAME (a payload that
 * does not hold together). Any thread. */
TR_API int tr_http_request_view(const tr_msg *m, tr_http_request *req);

/* The i-th header field of a request, in the order sent. Errors:
 * TR_EINVAL (NULL, or i >= header_count). Any thread. */
TR_API int tr_http_header_at(const tr_http_request *req, size_t i, tr_http_header *out);

/* The value of the first field named `name` (compared without case), its
 * length in *len if len is not NULL; NULL when there is none. Any thread. */
TR_API const char *tr_http_header_find(const tr_http_request *req, const char *name,
                                       size_t *len);

/* Inside an HTTP connection's behaviour: answers the oldest request not
 * yet answered with an HTTP/1.1 response: the status line, Content-Length
 * (none for 204), "Connection: close" when the connection then closes (or
 * "keep-alive" to an HTTP/1.0 client that asked for it), the caller's
 * header lines, and the body (none for HEAD, 204 and 304). `headers` is
 * NULL or lines each ending in "\r\n" ("Content-Type: text/plain\r\n");
 * the connection sets Content-Length, Connection and Transfer-Encoding
 * itself. A connection not kept alive closes once the response is written.
 * Errors (nothing is written): TR_ENOTCONN (not an HTTP connection, or
 * closing), TR_EINVAL (no request waiting, status outside 200-599, a body
 * with 204 or 304, data NULL with len, a malformed or reserved header
 * line), TR_ENOBUFS (the output queue cannot take it: see max_output),
 * TR_ENOMEM (the connection then closes with it: a request left
 * unanswered would hold every later response, and the close after the
 * peer's end, for ever). A behaviour that gives up on a request some
 * other way must close the connection itself, for the same reason. */
TR_API int tr_http_respond(tr_ctx *cx, int status, const char *headers, const void *body,
                           size_t len);

#ifdef __cplusplus
}
#endif

#endif
