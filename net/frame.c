/* net/frame.c — line and msgpack framing. */
#include "frame.h"

#include <stdlib.h>
#include <string.h>

#define DEFAULT_MAX_LINE 4096
#define DEFAULT_MAX_FRAME ((size_t)1 << 20)
#define MIN_READ 4096
/* A line buffer larger than this is given back once it is empty, so an
 * idle connection does not keep the peak of its traffic. */
#define KEEP_BUFFER 8192
/* msgpack-c's default first buffer is 64 KiB: too much per connection. */
#define UNPACKER_FIRST 4096

int tr__framer_init(tr__framer *f, tr_framing mode, size_t max_line, size_t max_frame)
{
    memset(f, 0, sizeof *f);
    f->mode = mode;
    f->max_line = max_line != 0 ? max_line : DEFAULT_MAX_LINE;
    f->max_frame = max_frame != 0 ? max_frame : DEFAULT_MAX_FRAME;
    if (mode == TR_FRAME_MSGPACK) {
        if (!msgpack_unpacker_init(&f->unpacker, UNPACKER_FIRST))
            return TR_ENOMEM;
        msgpack_unpacked_init(&f->result);
        f->unpacker_ready = true;
    }
    return 0;
}

void tr__framer_fini(tr__framer *f)
{
    free(f->buf);
    f->buf = NULL;
    if (f->unpacker_ready) {
        msgpack_unpacked_destroy(&f->result);
        msgpack_unpacker_destroy(&f->unpacker);
        f->unpacker_ready = false;
    }
}

void *tr__framer_space(tr__framer *f, size_t want, size_t *room)
{
    if (want < MIN_READ)
        want = MIN_READ;
    if (f->mode == TR_FRAME_MSGPACK) {
        if (!msgpack_unpacker_reserve_buffer(&f->unpacker, want))
            return NULL;
        *room = msgpack_unpacker_buffer_capacity(&f->unpacker);
        return msgpack_unpacker_buffer(&f->unpacker);
    }
    /* Lines: slide consumed bytes out before growing. */
    if (f->start > 0 && f->cap - f->len < want) {
        memmove(f->buf, f->buf + f->start, f->len - f->start);
        f->len -= f->start;
        f->scanned -= f->start;
        f->start = 0;
    }
    if (f->cap - f->len < want) {
        size_t cap = f->cap ? f->cap : 2 * MIN_READ;
        while (cap - f->len < want)
            cap *= 2;
        char *buf = realloc(f->buf, cap);
        if (buf == NULL)
            return NULL;
        f->buf = buf;
        f->cap = cap;
    }
    *room = f->cap - f->len;
    return f->buf + f->len;
}

void tr__framer_commit(tr__framer *f, size_t n)
{
    if (f->mode == TR_FRAME_MSGPACK)
        msgpack_unpacker_buffer_consumed(&f->unpacker, n);
    else
        f->len += n;
}

int tr__framer_feed(tr__framer *f, const void *data, size_t len)
{
    while (len > 0) {
        size_t room;
        void *p = tr__framer_space(f, len, &room);
        if (p == NULL)
            return TR_ENOMEM;
        size_t n = len < room ? len : room;
        memcpy(p, data, n);
        tr__framer_commit(f, n);
        data = (const char *)data + n;
        len -= n;
    }
    return 0;
}

static int next_line(tr__framer *f, tr__frame *out)
{
    for (;;) {
        char *from = f->buf + f->scanned;
        char *nl = f->scanned < f->len ? memchr(from, '\n', f->len - f->scanned) : NULL;
        if (nl == NULL) {
            if (f->start == f->len && f->cap > KEEP_BUFFER) {
                free(f->buf); /* all consumed: drop the peak */
                f->buf = NULL;
                f->cap = 0;
                f->start = f->len = 0;
            }
            f->scanned = f->len;
            if (f->skipping) { /* nothing of an over-long line is kept */
                f->start = f->scanned = f->len = 0;
                return 0;
            }
            if (f->len - f->start >= f->max_line) {
                f->skipping = true;
                f->start = f->scanned = f->len = 0;
                return TR_ELINETOOLONG;
            }
            return 0;
        }
        size_t end = (size_t)(nl - f->buf);
        size_t line_start = f->start;
        f->start = f->scanned = end + 1;
        if (f->skipping) {
            f->skipping = false; /* the tail of the over-long line ends here */
            continue;
        }
        if (end + 1 - line_start > f->max_line)
            return TR_ELINETOOLONG;
        if (end > line_start && f->buf[end - 1] == '\r')
            end--;
        out->data = f->buf + line_start;
        out->len = end - line_start;
        return 1;
    }
}

static int next_object(tr__framer *f, tr__frame *out)
{
    if (f->broken)
        return TR_EBADFRAME;
    switch (msgpack_unpacker_next(&f->unpacker, &f->result)) {
    case MSGPACK_UNPACK_SUCCESS:
        out->object = f->result.data;
        out->data = NULL;
        out->len = 0;
        return 1;
    case MSGPACK_UNPACK_CONTINUE:
        /* Bytes held for an object not yet complete. */
        if (msgpack_unpacker_message_size(&f->unpacker) > f->max_frame) {
            f->broken = true;
            return TR_EBADFRAME;
        }
        return 0;
    case MSGPACK_UNPACK_NOMEM_ERROR:
        f->broken = true;
        return TR_ENOMEM;
    default:
        f->broken = true;
        return TR_EBADFRAME;
    }
}

int tr__framer_next(tr__framer *f, tr__frame *out)
{
    return f->mode == TR_FRAME_MSGPACK ? next_object(f, out) : next_line(f, out);
}
