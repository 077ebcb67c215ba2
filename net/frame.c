/* net/frame.c — line and msgpack framing; HTTP shares the line buffer. */
#include "frame.h"
#include "http.h"

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
    if (mode == TR_FRAME_HTTP)
        return tr__http_init(f, max_line, max_frame);
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
    tr__http_fini(f);
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

static uint64_t be(const unsigned char *p, unsigned n)
{
    uint64_t v = 0;
    while (n-- > 0)
        v = v << 8 | *p++;
    return v;
}

/* Containers nested deeper than this are refused, as msgpack-c's parser
 * would (its stack holds 32 levels). */
#define MAX_DEPTH 32

/* Walks one msgpack object at p[0..n) without allocating: 1 and its length
 * when it is complete within max bytes, 0 when more bytes are needed, -1
 * when it is malformed, nested too deep, or cannot fit in max. This guards
 * msgpack-c, which allocates an array's or map's elements as soon as it
 * reads the header: five bytes claiming 2^28 elements must not cost
 * gigabytes. Every element takes at least one byte, so the elements still
 * pending are bounded by the room left. */
static int scan_object(const unsigned char *p, size_t n, size_t max, size_t *len)
{
    uint64_t left[MAX_DEPTH + 1]; /* elements still to read, per open level */
    int depth = 0;
    uint64_t pending = 1;         /* the sum of left[] */
    size_t pos = 0;
    left[0] = 1;
    while (depth >= 0) {
        if (left[depth] == 0) {
            depth--;
            continue;
        }
        if (pending > max - pos)
            return -1;
        if (pos >= n)
            return 0;
        unsigned b = p[pos];
        unsigned head = 1;     /* header bytes, the type byte included */
        unsigned size_len = 0; /* bytes of a length or count after the type byte */
        uint64_t body = 0;     /* payload bytes */
        uint64_t items = 0;    /* elements it opens */
        int items_per = 0;     /* 1 for arrays, 2 for maps */
        if (b <= 0x7f || b >= 0xe0 || b == 0xc0 || b == 0xc2 || b == 0xc3) {
        } else if (b <= 0x8f) {
            items = 2 * (uint64_t)(b & 0x0f);
        } else if (b <= 0x9f) {
            items = b & 0x0f;
        } else if (b <= 0xbf) {
            body = b & 0x1f;
        } else {
            switch (b) {
            case 0xc4: case 0xd9: size_len = 1; break;          /* bin8, str8 */
            case 0xc5: case 0xda: size_len = 2; break;          /* bin16, str16 */
            case 0xc6: case 0xdb: size_len = 4; break;          /* bin32, str32 */
            case 0xc7: size_len = 1; head = 2; break;           /* ext8: + type */
            case 0xc8: size_len = 2; head = 2; break;
            case 0xc9: size_len = 4; head = 2; break;
            case 0xca: body = 4; break;
            case 0xcb: body = 8; break;
            case 0xcc: case 0xd0: body = 1; break;
            case 0xcd: case 0xd1: body = 2; break;
            case 0xce: case 0xd2: body = 4; break;
            case 0xcf: case 0xd3: body = 8; break;
            case 0xd4: body = 2; break;                          /* fixext: type + data */
            case 0xd5: body = 3; break;
            case 0xd6: body = 5; break;
            case 0xd7: body = 9; break;
            case 0xd8: body = 17; break;
            case 0xdc: size_len = 2; items_per = 1; break;       /* array16 */
            case 0xdd: size_len = 4; items_per = 1; break;       /* array32 */
            case 0xde: size_len = 2; items_per = 2; break;       /* map16 */
            case 0xdf: size_len = 4; items_per = 2; break;       /* map32 */
            default: return -1;                                  /* 0xc1: never used */
            }
        }
        /* This item's header, and a byte for each other element pending,
         * must fit before its length is even known. */
        if ((uint64_t)head + size_len + (pending - 1) > max - pos)
            return -1;
        if (size_len != 0) {
            if (n - pos < 1 + size_len)
                return 0;
            uint64_t v = be(p + pos + 1, size_len);
            if (items_per != 0)
                items = v * (uint64_t)items_per;
            else
                body = v;
        }
        uint64_t whole = head + size_len + body;
        if (whole + (pending - 1) > max - pos)
            return -1;
        pos += (size_t)whole;
        if (pos > n)
            return 0;
        left[depth]--;
        pending--;
        if (items != 0) {
            if (depth == MAX_DEPTH)
                return -1;
            left[++depth] = items;
            pending += items;
        }
    }
    *len = pos;
    return 1;
}

static int next_object(tr__framer *f, tr__frame *out)
{
    if (f->broken)
        return TR_EBADFRAME;
    msgpack_unpacker *u = &f->unpacker;
    size_t len;
    int r = scan_object((const unsigned char *)u->buffer + u->off, u->used - u->off,
                        f->max_frame, &len);
    if (r == 0)
        return 0;
    if (r < 0) {
        f->broken = true;
        return TR_EBADFRAME;
    }
    switch (msgpack_unpacker_next(u, &f->result)) {
    case MSGPACK_UNPACK_SUCCESS:
        out->object = f->result.data;
        out->data = NULL;
        out->len = len;
        return 1;
    case MSGPACK_UNPACK_NOMEM_ERROR:
        f->broken = true;
        return TR_ENOMEM;
    default: /* the scan found a whole object: anything else is malformed */
        f->broken = true;
        return TR_EBADFRAME;
    }
}

int tr__framer_next(tr__framer *f, tr__frame *out)
{
    if (f->mode == TR_FRAME_HTTP)
        return tr__http_next(f, out);
    return f->mode == TR_FRAME_MSGPACK ? next_object(f, out) : next_line(f, out);
}
