/* test_frame.c — the framer (net/frame.c), tested directly: line framing
 * (chunk boundaries anywhere, CRLF, empty lines, max_line at and past the
 * limit with resynchronisation, endless garbage without a newline) and
 * msgpack framing (objects split at every byte, several per chunk,
 * malformed input, objects past max_frame, hostile declared sizes), then
 * random chunkings of random streams checked against a reference.
 * Every input byte is accounted for: each test compares the exact list of
 * frames and errors the framer produced with the list it must produce. */
#include "tests.h"

#include <malloc.h>
#include <stdlib.h>
#include <string.h>

#include "../net/frame.h"

/* ---- collecting what a line framer produces -------------------------------- */

/* Frames as a flat log: each line is "L<len>:<bytes>", each error "E<code>;".
 * Two runs produced the same frames iff their logs are equal. */
struct log {
    char *buf;
    size_t len, cap;
    size_t lines, errors;
};

static void log_put(struct log *l, const void *p, size_t n)
{
    if (l->len + n > l->cap) {
        size_t cap = l->cap ? l->cap : 4096;
        while (cap < l->len + n)
            cap *= 2;
        char *b = realloc(l->buf, cap);
        CU_ASSERT_FATAL(b != NULL);
        l->buf = b;
        l->cap = cap;
    }
    memcpy(l->buf + l->len, p, n);
    l->len += n;
}

static void log_line(struct log *l, const void *p, size_t n)
{
    char head[32];
    int h = snprintf(head, sizeof head, "L%zu:", n);
    log_put(l, head, (size_t)h);
    log_put(l, p, n);
    l->lines++;
}

static void log_error(struct log *l, int code)
{
    char head[32];
    int h = snprintf(head, sizeof head, "E%d;", code);
    log_put(l, head, (size_t)h);
    l->errors++;
}

static void log_free(struct log *l)
{
    free(l->buf);
    memset(l, 0, sizeof *l);
}

static bool log_same(const struct log *a, const struct log *b)
{
    return a->len == b->len && a->lines == b->lines && a->errors == b->errors &&
           (a->len == 0 || memcmp(a->buf, b->buf, a->len) == 0);
}

/* The reference: what a line framer must produce for `in` as a whole (the
 * rules of net/frame.h, written independently). A complete line longer than
 * max_line ("\n" included) is one error; so is a final unterminated part of
 * max_line bytes or more (it can only become an over-long line). */
static void ref_lines(const unsigned char *in, size_t n, size_t max_line, struct log *out)
{
    size_t pos = 0;
    while (pos < n) {
        const unsigned char *nl = memchr(in + pos, '\n', n - pos);
        if (nl == NULL) {
            if (n - pos >= max_line)
                log_error(out, TR_ELINETOOLONG);
            return;
        }
        size_t with_nl = (size_t)(nl - (in + pos)) + 1;
        if (with_nl > max_line) {
            log_error(out, TR_ELINETOOLONG);
        } else {
            size_t l = with_nl - 1;
            if (l > 0 && in[pos + l - 1] == '\r')
                l--;
            log_line(out, in + pos, l);
        }
        pos += with_nl;
    }
}

/* Takes every frame the framer has now. */
static void drain_lines(tr__framer *f, size_t max_line, struct log *out)
{
    for (;;) {
        tr__frame fr;
        int r = tr__framer_next(f, &fr);
        if (r == 0)
            return;
        if (r < 0) {
            CU_ASSERT(r == TR_ELINETOOLONG);
            log_error(out, r);
            continue;
        }
        CU_ASSERT(r == 1);
        CU_ASSERT(fr.len < max_line);
        CU_ASSERT(fr.len == 0 || memchr(fr.data, '\n', fr.len) == NULL);
        log_line(out, fr.data, fr.len);
    }
}

/* Feeds `in` in chunks of the given sizes (cycled), draining after each
 * chunk; via tr__framer_feed or, with `direct`, space + partial commit. */
static void run_lines(const unsigned char *in, size_t n, size_t max_line, const size_t *sizes,
                      size_t nsizes, bool direct, struct log *out)
{
    tr__framer f;
    CU_ASSERT_FATAL(tr__framer_init(&f, TR_FRAME_LINE, max_line, 0) == 0);
    if (max_line == 0)
        max_line = 4096; /* the default */
    size_t pos = 0, k = 0;
    while (pos < n) {
        size_t c = sizes[k++ % nsizes];
        if (c == 0)
            c = 1;
        if (c > n - pos)
            c = n - pos;
        if (direct) {
            size_t room = 0;
            unsigned char *p = tr__framer_space(&f, c, &room);
            CU_ASSERT_FATAL(p != NULL);
            CU_ASSERT_FATAL(room >= c);
            memcpy(p, in + pos, c);
            tr__framer_commit(&f, c);
        } else {
            CU_ASSERT_FATAL(tr__framer_feed(&f, in + pos, c) == 0);
        }
        pos += c;
        drain_lines(&f, max_line, out);
    }
    drain_lines(&f, max_line, out);
    tr__framer_fini(&f);
}

static void expect_same_lines(const unsigned char *in, size_t n, size_t max_line,
                              const size_t *sizes, size_t nsizes, bool direct)
{
    struct log want = {0}, got = {0};
    ref_lines(in, n, max_line, &want);
    run_lines(in, n, max_line, sizes, nsizes, direct, &got);
    bool same = log_same(&want, &got);
    if (!same)
        printf("\n    line frames differ (max_line %zu, first chunk %zu): want %zu lines "
               "%zu errors, got %zu lines %zu errors\n",
               max_line, sizes[0], want.lines, want.errors, got.lines, got.errors);
    CU_ASSERT(same);
    log_free(&want);
    log_free(&got);
}

/* ---- line framing ------------------------------------------------------ */

static const char LINES_TEXT[] =
    "hello\n"
    "world\r\n"
    "\n"
    "\r\n"
    "a\rb\n"            /* a lone CR inside a line stays */
    "two crs\r\r\n"     /* only the CR right before LF goes */
    "  spaces  \n"
    "\tx\0y\n"          /* a NUL byte is data */
    "last";             /* unterminated: not a frame (yet) */

/* The exact frames of LINES_TEXT, by hand (not by the reference). */
static void test_line_basic(void)
{
    const unsigned char *in = (const unsigned char *)LINES_TEXT;
    size_t n = sizeof LINES_TEXT - 1;
    struct log want = {0}, got = {0};
    log_line(&want, "hello", 5);
    log_line(&want, "world", 5);
    log_line(&want, "", 0);
    log_line(&want, "", 0);
    log_line(&want, "a\rb", 3);
    log_line(&want, "two crs\r", 8);
    log_line(&want, "  spaces  ", 10);
    log_line(&want, "\tx\0y", 4);
    size_t whole = n;
    run_lines(in, n, 0, &whole, 1, false, &got);
    CU_ASSERT(log_same(&want, &got));
    TT_EQ(got.lines, 8);
    TT_EQ(got.errors, 0);
    log_free(&got);

    /* "last" becomes a line once its newline comes. */
    tr__framer f;
    CU_ASSERT_FATAL(tr__framer_init(&f, TR_FRAME_LINE, 0, 0) == 0);
    CU_ASSERT(tr__framer_feed(&f, in, n) == 0);
    drain_lines(&f, 4096, &got);
    tr__frame fr;
    TT_EQ(tr__framer_next(&f, &fr), 0);
    CU_ASSERT(tr__framer_feed(&f, "\n", 1) == 0);
    TT_EQ(tr__framer_next(&f, &fr), 1);
    TT_EQ(fr.len, 4);
    CU_ASSERT(fr.len == 4 && memcmp(fr.data, "last", 4) == 0);
    TT_EQ(tr__framer_next(&f, &fr), 0);
    tr__framer_fini(&f);
    log_free(&want);
    log_free(&got);
}

/* Every chunk size from 1 to the whole text, and every single split point
 * (two chunks), through both input paths. */
static void test_line_every_split(void)
{
    const unsigned char *in = (const unsigned char *)LINES_TEXT;
    size_t n = sizeof LINES_TEXT - 1;
    for (size_t c = 1; c <= n; c++) {
        expect_same_lines(in, n, 4096, &c, 1, false);
        expect_same_lines(in, n, 4096, &c, 1, true);
    }
    for (size_t k = 1; k < n; k++) {
        size_t sizes[2] = {k, n - k};
        expect_same_lines(in, n, 4096, sizes, 2, false);
    }
}

/* max_line counts the "\n": a line of max_line - 1 bytes passes, one of
 * max_line bytes is an error, reported once however it is chunked, and the
 * next line is delivered normally. */
static void test_line_max(void)
{
    enum { MAX = 16 };
    unsigned char in[256];
    size_t n = 0;
    memset(in + n, 'a', MAX - 1); /* exactly at the limit: fine */
    n += MAX - 1;
    in[n++] = '\n';
    memset(in + n, 'b', MAX); /* one past: error */
    n += MAX;
    in[n++] = '\n';
    memcpy(in + n, "next\n", 5); /* resynchronised */
    n += 5;
    memset(in + n, 'c', 3 * MAX); /* far past */
    n += 3 * MAX;
    in[n++] = '\n';
    memset(in + n, 'd', MAX - 1);
    n += MAX - 1;
    in[n++] = '\n';
    memcpy(in + n, "\n", 1);
    n += 1;

    struct log want = {0};
    log_line(&want, in, MAX - 1);
    log_error(&want, TR_ELINETOOLONG);
    log_line(&want, "next", 4);
    log_error(&want, TR_ELINETOOLONG);
    {
        unsigned char d[MAX];
        memset(d, 'd', sizeof d);
        log_line(&want, d, MAX - 1);
    }
    log_line(&want, "", 0);

    for (size_t c = 1; c <= n; c++) {
        struct log got = {0};
        run_lines(in, n, MAX, &c, 1, c % 2 == 0, &got);
        if (!log_same(&want, &got))
            printf("\n    chunk %zu: %zu lines %zu errors\n", c, got.lines, got.errors);
        CU_ASSERT(log_same(&want, &got));
        log_free(&got);
    }
    /* The hand-made expectation and the reference agree. */
    struct log ref = {0};
    ref_lines(in, n, MAX, &ref);
    CU_ASSERT(log_same(&want, &ref));
    log_free(&ref);
    log_free(&want);
}

/* An over-long line whose newline never comes: one error, then nothing,
 * and the framer's buffer stays small however much garbage is fed (it is
 * fed the way a connection feeds it: 64 KiB reads into its space). Then a
 * newline ends the garbage and the stream goes on. */
static void test_line_endless_garbage(void)
{
    enum { MAX = 1000, CHUNK = 64 * 1024 };
    tr__framer f;
    CU_ASSERT_FATAL(tr__framer_init(&f, TR_FRAME_LINE, MAX, 0) == 0);
    unsigned char *junk = malloc(CHUNK);
    CU_ASSERT_FATAL(junk != NULL);
    uint64_t seed = 7;
    size_t errors = 0, frames = 0, max_cap = 0;
    for (int i = 0; i < 512; i++) { /* 32 MiB */
        for (size_t j = 0; j < CHUNK; j++) {
            junk[j] = (unsigned char)tt_rng_next(&seed);
            if (junk[j] == '\n')
                junk[j] = 'x';
        }
        size_t room = 0;
        unsigned char *p = tr__framer_space(&f, CHUNK, &room);
        CU_ASSERT_FATAL(p != NULL && room >= CHUNK);
        memcpy(p, junk, CHUNK);
        tr__framer_commit(&f, CHUNK);
        tr__frame fr;
        int r;
        while ((r = tr__framer_next(&f, &fr)) != 0) {
            if (r == TR_ELINETOOLONG)
                errors++;
            else
                frames++;
        }
        if (f.cap > max_cap)
            max_cap = f.cap;
    }
    TT_EQ(errors, 1);
    TT_EQ(frames, 0);
    /* Bounded: a few reads' worth, not the 32 MiB fed. */
    if (max_cap > 4 * (size_t)(MAX + CHUNK))
        printf("\n    line framer grew to %zu bytes on garbage\n", max_cap);
    CU_ASSERT(max_cap <= 4 * (size_t)(MAX + CHUNK));
    CU_ASSERT(tr__framer_feed(&f, "tail of garbage\nok\n", 19) == 0);
    tr__frame fr;
    TT_EQ(tr__framer_next(&f, &fr), 1);
    CU_ASSERT(fr.len == 2 && memcmp(fr.data, "ok", 2) == 0);
    TT_EQ(tr__framer_next(&f, &fr), 0);
    tr__framer_fini(&f);
    free(junk);
}

/* Random streams of lines (short, empty, CRLF, at and past the limit,
 * stray CRs) cut into random chunks, against the reference. */
static void test_line_random(void)
{
    uint64_t seed = 0x5eed;
    for (int round = 0; round < 300; round++) {
        size_t max_line = 1 + tt_rng_below(&seed, 64);
        size_t cap = 8192, n = 0;
        unsigned char *in = malloc(cap);
        CU_ASSERT_FATAL(in != NULL);
        while (n < cap - 200) {
            size_t len;
            switch (tt_rng_below(&seed, 5)) {
            case 0: len = 0; break;
            case 1: len = max_line > 1 ? max_line - 1 : 0; break; /* at the limit */
            case 2: len = max_line; break;                         /* one past */
            case 3: len = tt_rng_below(&seed, 3 * max_line + 2); break;
            default: len = tt_rng_below(&seed, max_line + 1); break;
            }
            if (n + len + 2 > cap)
                break;
            for (size_t i = 0; i < len; i++) {
                unsigned char b = (unsigned char)tt_rng_next(&seed);
                in[n++] = b == '\n' ? 'n' : (tt_rng_below(&seed, 16) == 0 ? '\r' : b);
            }
            if (tt_rng_below(&seed, 3) == 0)
                in[n++] = '\r';
            in[n++] = '\n';
        }
        if (tt_rng_below(&seed, 2)) /* an unterminated tail */
            for (size_t i = tt_rng_below(&seed, 2 * max_line + 2); i > 0 && n < cap; i--)
                in[n++] = 't';
        size_t sizes[16];
        for (int i = 0; i < 16; i++)
            sizes[i] = 1 + tt_rng_below(&seed, i % 4 == 0 ? 4096 : 40);
        expect_same_lines(in, n, max_line, sizes, 16, round % 2 == 0);
        free(in);
    }
}

/* ---- msgpack ------------------------------------------------------------ */

/* A packed stream and where each object starts and ends. */
struct stream {
    msgpack_sbuffer sb;
    size_t ends[512];
    size_t count;
};

static void stream_init(struct stream *s)
{
    msgpack_sbuffer_init(&s->sb);
    s->count = 0;
}

static void stream_mark(struct stream *s)
{
    CU_ASSERT_FATAL(s->count < sizeof s->ends / sizeof s->ends[0]);
    s->ends[s->count++] = s->sb.size;
}

static size_t stream_start(const struct stream *s, size_t i)
{
    return i == 0 ? 0 : s->ends[i - 1];
}

/* A random object, at most `depth` levels of containers deep. */
static void pack_random(msgpack_packer *pk, uint64_t *seed, int depth)
{
    char buf[300];
    switch (tt_rng_below(seed, depth > 0 ? 14 : 11)) {
    case 0: msgpack_pack_nil(pk); break;
    case 1: tt_rng_below(seed, 2) ? msgpack_pack_true(pk) : msgpack_pack_false(pk); break;
    case 2: msgpack_pack_uint64(pk, tt_rng_next(seed) >> tt_rng_below(seed, 64)); break;
    case 3:
        msgpack_pack_int64(pk, -(int64_t)(tt_rng_next(seed) >> (1 + tt_rng_below(seed, 63))));
        break;
    case 4: msgpack_pack_float(pk, (float)tt_rng_next(seed) / 7.0f); break;
    case 5: msgpack_pack_double(pk, (double)tt_rng_next(seed) / 3.0); break;
    case 6:
    case 7: {
        size_t len = tt_rng_below(seed, tt_rng_below(seed, 4) == 0 ? sizeof buf : 40);
        for (size_t i = 0; i < len; i++)
            buf[i] = (char)('a' + tt_rng_below(seed, 26));
        msgpack_pack_str(pk, len);
        msgpack_pack_str_body(pk, buf, len);
        break;
    }
    case 8: {
        size_t len = tt_rng_below(seed, sizeof buf);
        for (size_t i = 0; i < len; i++)
            buf[i] = (char)tt_rng_next(seed);
        msgpack_pack_bin(pk, len);
        msgpack_pack_bin_body(pk, buf, len);
        break;
    }
    case 9: {
        static const size_t sizes[] = {1, 2, 4, 8, 16, 0, 3, 200};
        size_t len = sizes[tt_rng_below(seed, 8)];
        for (size_t i = 0; i < len; i++)
            buf[i] = (char)tt_rng_next(seed);
        msgpack_pack_ext(pk, len, (int8_t)tt_rng_below(seed, 128));
        msgpack_pack_ext_body(pk, buf, len);
        break;
    }
    case 10: msgpack_pack_int32(pk, (int32_t)tt_rng_next(seed)); break;
    case 11:
    case 12: {
        size_t n = tt_rng_below(seed, tt_rng_below(seed, 8) == 0 ? 20 : 5);
        msgpack_pack_array(pk, n);
        for (size_t i = 0; i < n; i++)
            pack_random(pk, seed, depth - 1);
        break;
    }
    default: {
        size_t n = tt_rng_below(seed, 6);
        msgpack_pack_map(pk, n);
        for (size_t i = 0; i < 2 * n; i++)
            pack_random(pk, seed, depth - 1);
        break;
    }
    }
}

static void stream_random(struct stream *s, uint64_t *seed, size_t objects)
{
    msgpack_packer pk;
    msgpack_packer_init(&pk, &s->sb, msgpack_sbuffer_write);
    for (size_t i = 0; i < objects; i++) {
        pack_random(&pk, seed, 3);
        stream_mark(s);
    }
}

/* Object i of the stream, unpacked on its own: the reference. */
static bool object_matches(const struct stream *s, size_t i, msgpack_object got)
{
    size_t start = stream_start(s, i), end = s->ends[i], off = 0;
    msgpack_unpacked ref;
    msgpack_unpacked_init(&ref);
    bool ok = msgpack_unpack_next(&ref, s->sb.data + start, end - start, &off) ==
                  MSGPACK_UNPACK_SUCCESS &&
              off == end - start && msgpack_object_equal(ref.data, got);
    msgpack_unpacked_destroy(&ref);
    return ok;
}

/* Feeds bytes [from, to) of the stream in chunks of `chunk`, taking
 * frames after each; checks each against the next expected object.
 * Returns the number of objects taken; *err gets the first error. */
static size_t feed_objects(tr__framer *f, const struct stream *s, const unsigned char *bytes,
                           size_t from, size_t to, size_t chunk, size_t *next, int *err)
{
    size_t taken = 0;
    for (size_t pos = from; pos < to;) {
        size_t c = chunk < to - pos ? chunk : to - pos;
        CU_ASSERT_FATAL(tr__framer_feed(f, bytes + pos, c) == 0);
        pos += c;
        for (;;) {
            tr__frame fr;
            int r = tr__framer_next(f, &fr);
            if (r == 0)
                break;
            if (r < 0) {
                if (*err == 0)
                    *err = r;
                return taken;
            }
            bool ok = s != NULL && *next < s->count && object_matches(s, *next, fr.object);
            if (!ok)
                printf("\n    object %zu wrong (chunk %zu)\n", *next, chunk);
            CU_ASSERT(ok);
            /* Never early: the object ends within what was fed. */
            if (s != NULL && *next < s->count)
                CU_ASSERT(s->ends[*next] <= pos);
            (*next)++;
            taken++;
        }
    }
    return taken;
}

/* A handful of objects of every kind, split at every byte boundary (two
 * chunks), then fed one byte at a time, then all in one chunk. */
static void test_msgpack_every_split(void)
{
    struct stream s;
    stream_init(&s);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &s.sb, msgpack_sbuffer_write);
    msgpack_pack_nil(&pk);
    stream_mark(&s);
    msgpack_pack_uint64(&pk, UINT64_MAX);
    stream_mark(&s);
    msgpack_pack_int64(&pk, INT64_MIN);
    stream_mark(&s);
    msgpack_pack_double(&pk, 3.25);
    stream_mark(&s);
    msgpack_pack_str(&pk, 5);
    msgpack_pack_str_body(&pk, "hello", 5);
    stream_mark(&s);
    msgpack_pack_array(&pk, 0);
    stream_mark(&s);
    msgpack_pack_map(&pk, 2);
    msgpack_pack_str(&pk, 1);
    msgpack_pack_str_body(&pk, "k", 1);
    msgpack_pack_array(&pk, 3);
    msgpack_pack_int8(&pk, -1);
    msgpack_pack_true(&pk);
    msgpack_pack_bin(&pk, 3);
    msgpack_pack_bin_body(&pk, "\0\1\2", 3);
    msgpack_pack_uint16(&pk, 7);
    msgpack_pack_ext(&pk, 4, 9);
    msgpack_pack_ext_body(&pk, "abcd", 4);
    stream_mark(&s);
    char big[300];
    memset(big, 'z', sizeof big);
    msgpack_pack_str(&pk, sizeof big); /* str16 */
    msgpack_pack_str_body(&pk, big, sizeof big);
    stream_mark(&s);
    uint64_t seed = 99;
    stream_random(&s, &seed, 20);
    const unsigned char *bytes = (const unsigned char *)s.sb.data;
    size_t n = s.sb.size;

    for (size_t k = 0; k <= n; k++) {
        tr__framer f;
        CU_ASSERT_FATAL(tr__framer_init(&f, TR_FRAME_MSGPACK, 0, 0) == 0);
        size_t next = 0;
        int err = 0;
        feed_objects(&f, &s, bytes, 0, k, n + 1, &next, &err);
        feed_objects(&f, &s, bytes, k, n, n + 1, &next, &err);
        TT_EQ(err, 0);
        TT_EQ(next, s.count);
        tr__framer_fini(&f);
    }
    static const size_t chunks[] = {1, 2, 3, 7, 64, 100000};
    for (size_t i = 0; i < sizeof chunks / sizeof chunks[0]; i++) {
        tr__framer f;
        CU_ASSERT_FATAL(tr__framer_init(&f, TR_FRAME_MSGPACK, 0, 0) == 0);
        size_t next = 0;
        int err = 0;
        feed_objects(&f, &s, bytes, 0, n, chunks[i], &next, &err);
        TT_EQ(err, 0);
        TT_EQ(next, s.count);
        tr__framer_fini(&f);
    }
    msgpack_sbuffer_destroy(&s.sb);
}

/* Malformed input: the objects before it are delivered, then
 * TR_EBADFRAME, and the framer stays broken whatever comes next. */
static void test_msgpack_malformed(void)
{
    static const unsigned char bad_bytes[] = {0xc1}; /* never used in msgpack */
    for (int where = 0; where < 3; where++) {
        struct stream s;
        stream_init(&s);
        uint64_t seed = 1234 + (uint64_t)where;
        stream_random(&s, &seed, (size_t)where * 3); /* 0, 3 or 6 good objects first */
        size_t good = s.count;
        msgpack_sbuffer_write(&s.sb, (const char *)bad_bytes, sizeof bad_bytes);
        stream_random(&s, &seed, 3); /* good objects after: never delivered */
        const unsigned char *bytes = (const unsigned char *)s.sb.data;
        for (size_t chunk = 1; chunk <= s.sb.size; chunk += (chunk < 8 ? 1 : 37)) {
            tr__framer f;
            CU_ASSERT_FATAL(tr__framer_init(&f, TR_FRAME_MSGPACK, 0, 0) == 0);
            size_t next = 0;
            int err = 0;
            feed_objects(&f, &s, bytes, 0, s.sb.size, chunk, &next, &err);
            TT_EQ(err, TR_EBADFRAME);
            TT_EQ(next, good);
            tr__frame fr;
            for (int i = 0; i < 3; i++)
                TT_EQ(tr__framer_next(&f, &fr), TR_EBADFRAME);
            CU_ASSERT(tr__framer_feed(&f, "\x01\x02", 2) == 0);
            TT_EQ(tr__framer_next(&f, &fr), TR_EBADFRAME);
            tr__framer_fini(&f);
        }
        msgpack_sbuffer_destroy(&s.sb);
    }
}

/* An object of exactly max_frame bytes passes; one past does not, whether
 * it arrives a byte at a time or complete in one chunk; a small object
 * after a rejected one is never delivered (the stream is lost). */
static void test_msgpack_max_frame(void)
{
    enum { MAX = 200 };
    for (int over = 0; over <= 1; over++) {
        /* str8 header (2 bytes) + body: total MAX (+ 1). */
        size_t body = MAX - 2 + (size_t)over;
        struct stream s;
        stream_init(&s);
        msgpack_packer pk;
        msgpack_packer_init(&pk, &s.sb, msgpack_sbuffer_write);
        char buf[MAX];
        memset(buf, 'q', sizeof buf);
        msgpack_pack_str(&pk, body);
        msgpack_pack_str_body(&pk, buf, body);
        stream_mark(&s);
        TT_EQ(s.sb.size, MAX + over);
        msgpack_pack_int8(&pk, 5);
        stream_mark(&s);
        const unsigned char *bytes = (const unsigned char *)s.sb.data;
        static const size_t chunks[] = {1, 3, 64, MAX - 1, MAX, MAX + 1, 4096};
        for (size_t i = 0; i < sizeof chunks / sizeof chunks[0]; i++) {
            tr__framer f;
            CU_ASSERT_FATAL(tr__framer_init(&f, TR_FRAME_MSGPACK, 0, MAX) == 0);
            size_t next = 0;
            int err = 0;
            feed_objects(&f, &s, bytes, 0, s.sb.size, chunks[i], &next, &err);
            if (over) {
                if (err != TR_EBADFRAME)
                    printf("\n    an object of max_frame + 1 bytes in chunks of %zu: "
                           "error %d, %zu objects delivered\n", chunks[i], err, next);
                TT_EQ(err, TR_EBADFRAME);
                TT_EQ(next, 0);
                tr__frame fr;
                TT_EQ(tr__framer_next(&f, &fr), TR_EBADFRAME);
            } else {
                TT_EQ(err, 0);
                TT_EQ(next, 2);
            }
            tr__framer_fini(&f);
        }
        msgpack_sbuffer_destroy(&s.sb);
    }
}

/* Headers that declare more than max_frame could ever hold: a str32 or
 * bin32 of 4 GiB whose bytes then keep coming, an array32 / map32 of 2^28
 * elements (each element takes at least one byte, so the object cannot
 * fit). The framer must end with TR_EBADFRAME once more than max_frame
 * bytes are held, and its memory must stay in proportion to max_frame, not
 * to the declared size (a 5-byte header must not cost gigabytes). */
static size_t heap_in_use(void)
{
    struct mallinfo2 mi = mallinfo2();
    return mi.uordblks + mi.hblkhd;
}

static void test_msgpack_hostile_sizes(void)
{
    enum { MAX = 64 * 1024 };
    static const unsigned char headers[][5] = {
        {0xdb, 0xff, 0xff, 0xff, 0xff}, /* str32, 4 GiB */
        {0xc6, 0xff, 0xff, 0xff, 0xff}, /* bin32 */
        {0xdd, 0x0f, 0xff, 0xff, 0xff}, /* array32, 2^28 - 1 elements */
        {0xdf, 0x0f, 0xff, 0xff, 0xff}, /* map32 */
        {0xdd, 0x00, 0x3f, 0xff, 0xff}, /* array32, 4 Mi elements */
    };
    unsigned char *fill = malloc(MAX);
    CU_ASSERT_FATAL(fill != NULL);
    memset(fill, 0xc0, MAX); /* nil: one byte per element */
    for (size_t h = 0; h < sizeof headers / sizeof headers[0]; h++) {
        size_t before = heap_in_use();
        tr__framer f;
        CU_ASSERT_FATAL(tr__framer_init(&f, TR_FRAME_MSGPACK, 0, MAX) == 0);
        CU_ASSERT(tr__framer_feed(&f, headers[h], 5) == 0);
        tr__frame fr;
        int r = tr__framer_next(&f, &fr);
        size_t grown = heap_in_use() - before;
        CU_ASSERT(r == 0 || r == TR_EBADFRAME);
        /* Then the bytes keep coming: more than max_frame of them. */
        for (int i = 0; i < 3 && r == 0; i++) {
            CU_ASSERT(tr__framer_feed(&f, fill, MAX) == 0);
            r = tr__framer_next(&f, &fr);
            size_t g = heap_in_use() - before;
            if (g > grown)
                grown = g;
        }
        if (r != TR_EBADFRAME)
            printf("\n    header %02x %02x %02x %02x %02x: %d after %d bytes\n", headers[h][0],
                   headers[h][1], headers[h][2], headers[h][3], headers[h][4], r, 3 * MAX);
        TT_EQ(r, TR_EBADFRAME);
        /* The heap figure is glibc's: sanitizers bring their own allocator. */
        if (!TT_ASAN && !TT_TSAN) {
            if (grown > (size_t)64 << 20)
                printf("\n    header %02x %02x %02x %02x %02x (max_frame %d): the framer "
                       "allocated %zu MiB\n", headers[h][0], headers[h][1], headers[h][2],
                       headers[h][3], headers[h][4], MAX, grown >> 20);
            CU_ASSERT(grown <= (size_t)64 << 20);
        }
        tr__framer_fini(&f);
    }
    free(fill);
}

/* Nesting: msgpack-c follows at most 32 levels of containers. Up to that
 * the objects are delivered; past it the framer may refuse the stream, but
 * as TR_EBADFRAME (bad input from the peer), not as TR_ENOMEM, which would
 * tell the behaviour that the process is out of memory. */
static void test_msgpack_deep_nesting(void)
{
    for (int depth = 1; depth <= 40; depth++) {
        unsigned char in[64];
        int n = 0;
        for (int i = 0; i < depth; i++)
            in[n++] = 0x91; /* an array of one element */
        in[n++] = 0x07;
        in[n++] = 0x08; /* and a second object after it */
        tr__framer f;
        CU_ASSERT_FATAL(tr__framer_init(&f, TR_FRAME_MSGPACK, 0, 0) == 0);
        CU_ASSERT(tr__framer_feed(&f, in, (size_t)n) == 0);
        tr__frame fr;
        int r = tr__framer_next(&f, &fr);
        if (depth <= 32) {
            TT_EQ(r, 1);
            if (r == 1) {
                msgpack_object o = fr.object;
                int d = 0;
                while (o.type == MSGPACK_OBJECT_ARRAY && o.via.array.size == 1) {
                    o = o.via.array.ptr[0];
                    d++;
                }
                TT_EQ(d, depth);
                CU_ASSERT(o.type == MSGPACK_OBJECT_POSITIVE_INTEGER && o.via.u64 == 7);
            }
            TT_EQ(tr__framer_next(&f, &fr), 1);
            CU_ASSERT(fr.object.type == MSGPACK_OBJECT_POSITIVE_INTEGER && fr.object.via.u64 == 8);
        } else {
            CU_ASSERT(r == 1 || r == TR_EBADFRAME);
            if (r != 1 && r != TR_EBADFRAME)
                printf("\n    %d levels of nesting: %d (%s)\n", depth, r, tr_strerror(r));
        }
        tr__framer_fini(&f);
    }
}

/* Random object streams, random chunk sizes, through feed and through
 * space + commit of less than the room offered. */
static void test_msgpack_random(void)
{
    uint64_t seed = 0xfeed;
    for (int round = 0; round < 200; round++) {
        struct stream s;
        stream_init(&s);
        stream_random(&s, &seed, 1 + tt_rng_below(&seed, 60));
        const unsigned char *bytes = (const unsigned char *)s.sb.data;
        tr__framer f;
        CU_ASSERT_FATAL(tr__framer_init(&f, TR_FRAME_MSGPACK, 0, 0) == 0);
        size_t next = 0;
        int err = 0;
        for (size_t pos = 0; pos < s.sb.size;) {
            size_t c = 1 + tt_rng_below(&seed, tt_rng_below(&seed, 4) == 0 ? 5000 : 50);
            if (c > s.sb.size - pos)
                c = s.sb.size - pos;
            if (round % 2 == 0) {
                feed_objects(&f, &s, bytes, pos, pos + c, c, &next, &err);
            } else {
                size_t room = 0;
                unsigned char *p = tr__framer_space(&f, c, &room);
                CU_ASSERT_FATAL(p != NULL && room >= c);
                memcpy(p, bytes + pos, c);
                tr__framer_commit(&f, c);
                tr__frame fr;
                int r;
                while (err == 0 && (r = tr__framer_next(&f, &fr)) != 0) {
                    if (r < 0) {
                        err = r;
                        break;
                    }
                    CU_ASSERT(next < s.count && object_matches(&s, next, fr.object));
                    CU_ASSERT(next < s.count && s.ends[next] <= pos + c);
                    next++;
                }
            }
            pos += c;
        }
        TT_EQ(err, 0);
        TT_EQ(next, s.count);
        tr__framer_fini(&f);
        msgpack_sbuffer_destroy(&s.sb);
    }
}

void register_frame_tests(void)
{
    CU_pSuite s = tt_suite("frame");
    tt_test(s, "line_frames_of_a_known_text_by_hand", test_line_basic);
    tt_test(s, "line_every_split", test_line_every_split);
    tt_test(s, "line_max", test_line_max);
    tt_test(s, "line_endless_garbage", test_line_endless_garbage);
    tt_test(s, "line_random", test_line_random);
    tt_test(s, "msgpack_every_split", test_msgpack_every_split);
    tt_test(s, "msgpack_malformed", test_msgpack_malformed);
    tt_test(s, "msgpack_max_frame", test_msgpack_max_frame);
    tt_test(s, "msgpack_hostile_sizes", test_msgpack_hostile_sizes);
    tt_test(s, "msgpack_deep_nesting", test_msgpack_deep_nesting);
    tt_test(s, "msgpack_random", test_msgpack_random);
}
