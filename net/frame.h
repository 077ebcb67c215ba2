/* net/frame.h — cutting a byte stream into frames (internal).
 *
 * Lines: bytes up to "\n" (a "\r" before it is dropped); a line longer
 * than max_line (its "\n" included) is an error, after which the framer
 * skips to the next "\n" and goes on. msgpack: msgpack-c's streaming
 * unpacker, one frame per complete object; malformed input, or an object
 * larger than max_frame, is an error the stream cannot recover from.
 * HTTP (net/http.h): one frame per complete request, parsed by
 * http-parser in the line buffer; max_line bounds the header block and
 * max_frame the body; any error is for good.
 *
 * Input is written straight into the framer's buffer (space, then
 * commit), and frames are taken one at a time, so a consumer can stop
 * between two frames and come back later.
 */
#ifndef TR_NET_FRAME_H
#define TR_NET_FRAME_H

#include <msgpack.h>
#include <stdbool.h>
#include <stddef.h>

#include "troupe/net.h"

typedef struct tr__framer {
    tr_framing mode;
    size_t max_line, max_frame;
    bool broken;          /* msgpack: unrecoverable error seen */
    bool skipping;        /* line: dropping the rest of an over-long line */
    /* lines */
    char *buf;
    size_t start, len, cap, scanned;
    /* HTTP: the parser and the request being read (net/http.h) */
    struct tr__http *http;
    /* msgpack */
    bool unpacker_ready;
    msgpack_unpacker unpacker;
    msgpack_unpacked result;
} tr__framer;

typedef struct tr__frame {
    const void *data;     /* lines: the line's bytes */
    size_t len;           /* HTTP: the size of the message payload (tr__http_encode) */
    msgpack_object object; /* msgpack: valid until the next call */
} tr__frame;

/* mode LINE, MSGPACK or HTTP (max_line: header bytes, max_frame: body
 * bytes); 0 for a limit means its default. 0 or TR_ENOMEM. */
int tr__framer_init(tr__framer *f, tr_framing mode, size_t max_line, size_t max_frame);
void tr__framer_fini(tr__framer *f);

/* Room for at least `want` bytes of input; NULL when out of memory. */
void *tr__framer_space(tr__framer *f, size_t want, size_t *room);

/* The first n bytes of the space were filled. */
void tr__framer_commit(tr__framer *f, size_t n);

/* 1 and *out: the next frame. 0: none until more input. Or an error:
 * TR_ELINETOOLONG (once per over-long line), TR_EBADFRAME (for good),
 * TR_ENOMEM; HTTP: TR_EBADFRAME or TR_EMSGSIZE, for good. */
int tr__framer_next(tr__framer *f, tr__frame *out);

/* Feeds a whole buffer: space + copy + commit. 0 or TR_ENOMEM. */
int tr__framer_feed(tr__framer *f, const void *data, size_t len);

#endif
