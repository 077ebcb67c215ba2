/* http_fuzz.c — libFuzzer target for the HTTP framing (net/http.c).
 *
 * The input drives everything: a 5-byte header picks max_header,
 * max_body and three chunk sizes (cycled); the rest is the byte stream a
 * connection would read. It is framed twice — fed whole, and fed chunk by
 * chunk — taking frames after every feed as a connection does, and
 * answering requests 16 at a time (so that the pipeline bound is hit).
 * Every request is encoded into an exactly sized message and read back
 * with tr_http_request_view, which must accept it, and checked: a method,
 * a target, HTTP/1.x, at most 100 fields with non-empty names, no CR or
 * LF in any name or value, every string NUL-terminated, the body within
 * max_body. Both runs must give the same requests (compared by a hash of
 * each payload) and end the same way (an error, for good, at the same
 * request, or none): the byte limits are applied at the same byte however
 * the stream is cut. Only the status of a request that is both malformed
 * and too large may differ (400 one way, 413 or 431 the other: http-parser
 * reports a piece of a field or body when a read ends inside it). The
 * chunked run's buffer stays within what the limits allow. Any
 * disagreement aborts. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../net/frame.h"
#include "../net/http.h"
#include "troupe/http.h"

#define CHECK(c)                                                                         \
    do {                                                                                 \
        if (!(c)) {                                                                      \
            fprintf(stderr, "http_fuzz: %s:%d: check failed: %s\n", __FILE__, __LINE__, \
                    #c);                                                                 \
            abort();                                                                     \
        }                                                                                \
    } while (0)

#define HEADER 5
#define MAX_LOG 4096

struct outcome {
    uint64_t hash[MAX_LOG];
    size_t frames;
    int error; /* 0, or the framer's error */
    int status;
};

static uint64_t fnv(const unsigned char *p, size_t n)
{
    uint64_t h = 1469598103934665603u;
    for (size_t i = 0; i < n; i++)
        h = (h ^ p[i]) * 1099511628211u;
    return h;
}

static void check_string(const char *s, size_t len, int allow_crlf)
{
    CHECK(s[len] == '\0');
    if (!allow_crlf)
        CHECK(memchr(s, '\r', len) == NULL && memchr(s, '\n', len) == NULL);
}

static void check_request(const tr__framer *f, const tr__frame *fr, struct outcome *o)
{
    tr_msg *m = malloc(sizeof(tr_msg) + fr->len);
    CHECK(m != NULL);
    memset(m, 0, sizeof(tr_msg));
    m->type = TR_HTTP_REQUEST;
    m->len = (uint32_t)fr->len;
    tr__http_encode(f, m->data);
    tr_http_request r;
    CHECK(tr_http_request_view(m, &r) == 0);
    CHECK(r.method_len > 0 && strlen(r.method) == r.method_len);
    CHECK(r.target_len > 0);
    check_string(r.target, r.target_len, 0);
    CHECK(r.version_major == 1);
    CHECK(r.keep_alive == 0 || r.keep_alive == 1);
    CHECK(r.header_count <= TR__HTTP_MAX_FIELDS);
    for (size_t i = 0; i < r.header_count; i++) {
        tr_http_header h;
        CHECK(tr_http_header_at(&r, i, &h) == 0);
        CHECK(h.name_len > 0);
        check_string(h.name, h.name_len, 0);
        check_string(h.value, h.value_len, 0);
        CHECK(h.value_len == 0 || (h.value[h.value_len - 1] != ' ' && h.value[h.value_len - 1] != '\t'));
    }
    check_string(r.body, r.body_len, 1);
    CHECK(r.body_len <= f->max_frame);
    if (o->frames < MAX_LOG)
        o->hash[o->frames] = fnv(m->data, m->len);
    o->frames++;
    free(m);
}

/* Takes every frame now available; false once an error has come. */
static int drain(tr__framer *f, struct outcome *o)
{
    for (;;) {
        tr__frame fr;
        int r = tr__framer_next(f, &fr);
        if (r == 1) {
            check_request(f, &fr, o);
            continue;
        }
        if (r == 0 && tr__http_blocked(f)) {
            while (tr__http_answered(f) >= 0)
                ;
            continue;
        }
        if (r < 0) {
            CHECK(r == TR_EBADFRAME || r == TR_EMSGSIZE);
            int status = tr__http_status(f);
            CHECK(status == 400 || status == 413 || status == 431 || status == 505);
            CHECK((r == TR_EMSGSIZE) == (status == 413 || status == 431));
            CHECK(tr__framer_next(f, &fr) == r); /* for good */
            o->error = r;
            o->status = status;
            return 0;
        }
        return 1;
    }
}

static void run(const uint8_t *hdr, const uint8_t *data, size_t size, int chunked,
                struct outcome *o)
{
    size_t max_header = hdr[0] == 0 ? 0 : 16 + (size_t)hdr[0] * 37;
    size_t max_body = hdr[1] == 0 ? 0 : (size_t)hdr[1] * 13;
    tr__framer f;
    CHECK(tr__framer_init(&f, TR_FRAME_HTTP, max_header, max_body) == 0);
    memset(o, 0, sizeof *o);
    size_t fed = 0, k = 0;
    while (fed < size) {
        size_t c = chunked ? 1 + (size_t)hdr[2 + k++ % 3] : size;
        if (c > size - fed)
            c = size - fed;
        CHECK(tr__framer_feed(&f, data + fed, c) == 0);
        fed += c;
        if (!drain(&f, o))
            break;
        if (chunked) /* what a connection keeps between reads */
            CHECK(f.cap <= 2 * (f.max_line + 2 * f.max_frame + (64 << 10) + 256) + 16384);
    }
    tr__framer_fini(&f);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < HEADER)
        return 0;
    static struct outcome whole, cut;
    run(data, data + HEADER, size - HEADER, 0, &whole);
    run(data, data + HEADER, size - HEADER, 1, &cut);
    if (whole.frames != cut.frames || (whole.error != 0) != (cut.error != 0) ||
        (whole.status != cut.status && whole.status != 400 && cut.status != 400))
        fprintf(stderr, "http_fuzz: whole: %zu requests, error %d (%d); cut: %zu, error %d (%d)\n",
                whole.frames, whole.error, whole.status, cut.frames, cut.error, cut.status);
    CHECK(whole.frames == cut.frames);
    for (size_t i = 0; i < whole.frames && i < MAX_LOG; i++)
        CHECK(whole.hash[i] == cut.hash[i]);
    CHECK((whole.error != 0) == (cut.error != 0));
    /* A request both malformed and too large may be named for either,
     * as http-parser reports a piece of a field or body when a read ends
     * in it: 400 one way, 413 or 431 the other. Otherwise the same. */
    CHECK(whole.status == cut.status || whole.status == 400 || cut.status == 400);
    return 0;
}
