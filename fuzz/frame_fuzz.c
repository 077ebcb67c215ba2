/* frame_fuzz.c — libFuzzer target for the framer (net/frame.c).
 *
 * The input drives everything: a 7-byte header picks max_line, max_frame,
 * four chunk sizes (cycled) and the input path (tr__framer_feed, or space
 * + commit); the rest is the byte stream. It is fed to a line framer and
 * to a msgpack framer chunk by chunk, taking frames until none is left
 * after every chunk, and every result is checked against an independent
 * oracle that knows the rules of net/frame.h:
 *
 *   lines:   each frame is the next line of the stream, without "\n" and
 *            one "\r" before it, shorter than max_line, with no "\n"; one
 *            TR_ELINETOOLONG per line longer than max_line (its "\n"
 *            counted), reported as soon as the framer can know it, and the
 *            line after it is delivered normally; the buffer stays small.
 *   msgpack: each frame is the next object of the stream (its extent found
 *            by a small scanner here, its value compared bit for bit with
 *            msgpack-c's reading of exactly those bytes), and no larger
 *            than max_frame; TR_EBADFRAME exactly when the next object is
 *            malformed (0xc1), complete but past max_frame, or incomplete
 *            with more than max_frame bytes held (or, allowed early, with
 *            headers announcing more than max_frame); then for good.
 *            (Nesting near msgpack-c's own limit of 32 may be refused.)
 *
 * Any disagreement aborts (a crash for libFuzzer). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../net/frame.h"

#define CHECK(c)                                                                      \
    do {                                                                              \
        if (!(c)) {                                                                   \
            fprintf(stderr, "frame_fuzz: %s:%d: check failed: %s\n", __FILE__, __LINE__, \
                    #c);                                                              \
            abort();                                                                  \
        }                                                                             \
    } while (0)

#define HEADER 7
#define DEPTH_LIMIT 30 /* msgpack-c refuses nesting near its stack of 32 */

struct plan {
    size_t max_line, max_frame;
    size_t chunks[4];
    int direct; /* space + commit instead of feed */
};

static void feed(tr__framer *f, const struct plan *p, const uint8_t *data, size_t n)
{
    if (!p->direct) {
        CHECK(tr__framer_feed(f, data, n) == 0);
        return;
    }
    size_t room = 0;
    void *space = tr__framer_space(f, n, &room);
    CHECK(space != NULL && room >= n);
    memcpy(space, data, n);
    tr__framer_commit(f, n);
}

/* ---- lines ----------------------------------------------------------------- */

struct line_oracle {
    const uint8_t *data;
    size_t pos;           /* start of the next line */
    int partial_reported; /* its TR_ELINETOOLONG already came */
};

/* Checks one result of tr__framer_next against the oracle, given that
 * `fed` bytes have been fed. Returns r. */
static int check_line(struct line_oracle *o, size_t fed, size_t max_line, int r,
                      const tr__frame *fr)
{
    for (;;) {
        const uint8_t *nl = memchr(o->data + o->pos, '\n', fed - o->pos);
        if (nl == NULL) {
            /* No complete line: an error once it cannot fit any more. */
            if (fed - o->pos >= max_line && !o->partial_reported) {
                CHECK(r == TR_ELINETOOLONG);
                o->partial_reported = 1;
            } else {
                CHECK(r == 0);
            }
            return r;
        }
        size_t with_nl = (size_t)(nl - (o->data + o->pos)) + 1;
        if (o->partial_reported) {
            /* The end of a line already reported: skipped silently. */
            o->pos += with_nl;
            o->partial_reported = 0;
            continue;
        }
        if (with_nl > max_line) {
            CHECK(r == TR_ELINETOOLONG);
        } else {
            CHECK(r == 1);
            size_t len = with_nl - 1;
            if (len > 0 && o->data[o->pos + len - 1] == '\r')
                len--;
            CHECK(fr->len == len);
            CHECK(fr->len < max_line);
            CHECK(len == 0 || memcmp(fr->data, o->data + o->pos, len) == 0);
            CHECK(len == 0 || memchr(fr->data, '\n', len) == NULL);
        }
        o->pos += with_nl;
        return r;
    }
}

static void run_lines(const struct plan *p, const uint8_t *data, size_t size)
{
    tr__framer f;
    CHECK(tr__framer_init(&f, TR_FRAME_LINE, p->max_line, 0) == 0);
    struct line_oracle o = {.data = data};
    size_t fed = 0, k = 0;
    while (fed < size) {
        size_t c = p->chunks[k++ % 4];
        if (c > size - fed)
            c = size - fed;
        feed(&f, p, data + fed, c);
        fed += c;
        for (;;) {
            tr__frame fr;
            memset(&fr, 0, sizeof fr);
            int r = tr__framer_next(&f, &fr);
            CHECK(r == 0 || r == 1 || r == TR_ELINETOOLONG);
            check_line(&o, fed, p->max_line, r, &fr);
            if (r == 0)
                break;
        }
        /* Memory in proportion to the limit and a read, not the stream. */
        CHECK(f.cap <= 4 * (p->max_line + 8192 + c));
    }
    tr__framer_fini(&f);
}

/* ---- msgpack ------------------------------------------------------------------ */

enum scan { SCAN_COMPLETE, SCAN_INCOMPLETE, SCAN_BAD };

static uint64_t be(const uint8_t *p, int n)
{
    uint64_t v = 0;
    for (int i = 0; i < n; i++)
        v = v << 8 | p[i];
    return v;
}

/* Elements announced and not read yet, at every open level. */
static uint64_t pending(const uint64_t *left, int depth)
{
    uint64_t sum = 0;
    for (int i = 0; i <= depth; i++)
        sum += left[i];
    return sum;
}

/* The extent of the object at d[0, n): complete (its size in *size),
 * incomplete (*min: the fewest bytes it can still take in all, since every
 * element announced takes at least one), or malformed; *deep when nested
 * near msgpack-c's limit. */
static enum scan scan_object(const uint8_t *d, size_t n, size_t *size, uint64_t *min, int *deep)
{
    uint64_t left[64]; /* objects still to read, per open container level */
    int depth = 0;
    size_t pos = 0;
    left[0] = 1;
    *deep = 0;
    for (;;) {
        while (depth > 0 && left[depth] == 0)
            depth--;
        if (depth == 0 && left[0] == 0) {
            *size = pos;
            return SCAN_COMPLETE;
        }
        if (pos >= n) {
            *min = pos + pending(left, depth);
            return SCAN_INCOMPLETE;
        }
        uint8_t h = d[pos++];
        left[depth]--;
        uint64_t skip = 0, items = 0;
        int lenbytes = 0, container = 0;
        if (h <= 0x7f || h >= 0xe0 || h == 0xc0 || h == 0xc2 || h == 0xc3) {
            skip = 0;
        } else if (h >= 0x80 && h <= 0x8f) {
            items = 2u * (h & 0x0f), container = 1;
        } else if (h >= 0x90 && h <= 0x9f) {
            items = h & 0x0f, container = 1;
        } else if (h >= 0xa0 && h <= 0xbf) {
            skip = h & 0x1f;
        } else {
            switch (h) {
            case 0xc1: return SCAN_BAD;
            case 0xc4: case 0xd9: lenbytes = 1; break;            /* bin8, str8 */
            case 0xc5: case 0xda: lenbytes = 2; break;            /* bin16, str16 */
            case 0xc6: case 0xdb: lenbytes = 4; break;            /* bin32, str32 */
            case 0xc7: lenbytes = 1; skip = 1; break;             /* ext8 (+ type) */
            case 0xc8: lenbytes = 2; skip = 1; break;
            case 0xc9: lenbytes = 4; skip = 1; break;
            case 0xca: skip = 4; break;
            case 0xcb: skip = 8; break;
            case 0xcc: case 0xd0: skip = 1; break;
            case 0xcd: case 0xd1: skip = 2; break;
            case 0xce: case 0xd2: skip = 4; break;
            case 0xcf: case 0xd3: skip = 8; break;
            case 0xd4: skip = 2; break;                           /* fixext 1 (+ type) */
            case 0xd5: skip = 3; break;
            case 0xd6: skip = 5; break;
            case 0xd7: skip = 9; break;
            case 0xd8: skip = 17; break;
            case 0xdc: lenbytes = 2; container = 1; break;        /* array16 */
            case 0xdd: lenbytes = 4; container = 1; break;        /* array32 */
            case 0xde: lenbytes = 2; container = 2; break;        /* map16 */
            case 0xdf: lenbytes = 4; container = 2; break;        /* map32 */
            default: CHECK(0);
            }
        }
        if (lenbytes > 0) {
            if (n - pos < (size_t)lenbytes) {
                *min = pos + (uint64_t)lenbytes + skip + pending(left, depth);
                return SCAN_INCOMPLETE;
            }
            uint64_t len = be(d + pos, lenbytes);
            pos += (size_t)lenbytes;
            if (h == 0xc9 && len == 0xffffffff)
                return SCAN_BAD; /* msgpack-c: type byte + 2^32 - 1 overflows its counter */
            if (container)
                items = container == 2 ? 2 * len : len;
            else
                skip += len;
        }
        if (skip > 0) {
            if (n - pos < skip) {
                *min = pos + skip + pending(left, depth);
                return SCAN_INCOMPLETE;
            }
            pos += (size_t)skip;
        }
        if (container && items > 0) {
            if (depth + 1 >= DEPTH_LIMIT)
                *deep = 1;
            if (depth + 1 >= 63) {
                *min = pos + pending(left, depth) + items;
                return SCAN_INCOMPLETE; /* beyond what we follow: *deep says so */
            }
            left[++depth] = items;
        }
    }
}

struct mp_oracle {
    const uint8_t *data;
    size_t pos;  /* start of the next object */
    int broken;  /* an error was returned: every later call must fail */
};

static void check_object(struct mp_oracle *o, size_t fed, size_t max_frame, int r,
                         const tr__frame *fr)
{
    if (o->broken) {
        CHECK(r == TR_EBADFRAME);
        return;
    }
    size_t size = 0;
    uint64_t min = 0;
    int deep = 0;
    enum scan s = scan_object(o->data + o->pos, fed - o->pos, &size, &min, &deep);
    if (deep && r < 0) { /* msgpack-c's own nesting limit: allowed to refuse */
        CHECK(r == TR_EBADFRAME || r == TR_ENOMEM);
        o->broken = 1;
        return;
    }
    switch (s) {
    case SCAN_BAD:
        CHECK(r == TR_EBADFRAME);
        o->broken = 1;
        return;
    case SCAN_INCOMPLETE:
        if (fed - o->pos > max_frame) {
            CHECK(r == TR_EBADFRAME); /* more held than an object may take */
            o->broken = 1;
        } else if (min > max_frame) {
            CHECK(r == 0 || r == TR_EBADFRAME); /* can only end past max_frame */
            o->broken = r != 0;
        } else {
            CHECK(r == 0);
        }
        return;
    case SCAN_COMPLETE:
        if (size > max_frame) {
            /* Delivered, it would be an object past max_frame. */
            CHECK(r == TR_EBADFRAME);
            o->broken = 1;
            return;
        }
        CHECK(r == 1);
        {
            /* Its value is msgpack-c's reading of exactly these bytes. */
            msgpack_unpacked ref;
            msgpack_unpacked_init(&ref);
            size_t off = 0;
            CHECK(msgpack_unpack_next(&ref, (const char *)o->data + o->pos, size, &off) ==
                  MSGPACK_UNPACK_SUCCESS);
            CHECK(off == size);
            /* Compared packed again, bit for bit (NaN != NaN as a value). */
            msgpack_sbuffer a, b;
            msgpack_sbuffer_init(&a);
            msgpack_sbuffer_init(&b);
            msgpack_packer pa, pb;
            msgpack_packer_init(&pa, &a, msgpack_sbuffer_write);
            msgpack_packer_init(&pb, &b, msgpack_sbuffer_write);
            CHECK(msgpack_pack_object(&pa, ref.data) == 0);
            CHECK(msgpack_pack_object(&pb, fr->object) == 0);
            CHECK(a.size == b.size && (a.size == 0 || memcmp(a.data, b.data, a.size) == 0));
            msgpack_sbuffer_destroy(&a);
            msgpack_sbuffer_destroy(&b);
            msgpack_unpacked_destroy(&ref);
        }
        o->pos += size;
        return;
    }
}

static void run_msgpack(const struct plan *p, const uint8_t *data, size_t size)
{
    tr__framer f;
    CHECK(tr__framer_init(&f, TR_FRAME_MSGPACK, 0, p->max_frame) == 0);
    size_t max_frame = p->max_frame != 0 ? p->max_frame : (size_t)1 << 20;
    struct mp_oracle o = {.data = data};
    size_t fed = 0, k = 0;
    while (fed < size) {
        size_t c = p->chunks[k++ % 4];
        if (c > size - fed)
            c = size - fed;
        feed(&f, p, data + fed, c);
        fed += c;
        for (;;) {
            tr__frame fr;
            memset(&fr, 0, sizeof fr);
            int r = tr__framer_next(&f, &fr);
            CHECK(r == 0 || r == 1 || r == TR_EBADFRAME || r == TR_ENOMEM);
            check_object(&o, fed, max_frame, r, &fr);
            if (r != 1)
                break;
        }
    }
    /* Broken for good, whatever comes after. */
    if (o.broken) {
        tr__frame fr;
        CHECK(tr__framer_feed(&f, "\x01", 1) == 0);
        CHECK(tr__framer_next(&f, &fr) == TR_EBADFRAME);
    }
    tr__framer_fini(&f);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < HEADER)
        return 0;
    struct plan p;
    p.max_line = 1 + (size_t)data[0];                       /* 1 .. 256 */
    p.max_frame = data[1] == 0 ? 0 : 1 + (size_t)data[1] * 8; /* default, or 9 .. 2041 */
    for (int i = 0; i < 4; i++)
        p.chunks[i] = data[2 + i] == 255 ? 4096 : 1 + (size_t)data[2 + i];
    p.direct = data[6] & 1;
    run_lines(&p, data + HEADER, size - HEADER);
    run_msgpack(&p, data + HEADER, size - HEADER);
    return 0;
}
