/* net_util.c — the helpers of net_util.h: deterministic streams, the
 * counting echo behaviours, the in-process server, plain-socket clients
 * and the reference answers of the framing rules. */
#include "net_util.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <sys/time.h>

/* ---- deterministic data ------------------------------------------------------ */

/* Byte `off` of stream `seed`: any range can be generated on its own. */
void gen_fill(uint64_t seed, uint64_t off, unsigned char *buf, size_t len)
{
    seed = tt_mix64(seed * UINT64_C(0x2545f4914f6cdd1d) + 1);
    while (len > 0) {
        uint64_t w = tt_mix64(seed ^ (off >> 3) * UINT64_C(0x9e3779b97f4a7c15));
        unsigned skip = (unsigned)(off & 7);
        if (skip == 0 && len >= 8) {
            memcpy(buf, &w, 8);
            buf += 8;
            off += 8;
            len -= 8;
            continue;
        }
        size_t take = 8 - skip;
        if (take > len)
            take = len;
        for (size_t i = 0; i < take; i++)
            buf[i] = (unsigned char)(w >> (8 * (skip + i)));
        buf += take;
        off += take;
        len -= take;
    }
}

/* Does buf hold bytes [off, off + len) of stream seed? */
bool gen_check(uint64_t seed, uint64_t off, const unsigned char *buf, size_t len)
{
    unsigned char want[4096];
    while (len > 0) {
        size_t n = len < sizeof want ? len : sizeof want;
        gen_fill(seed, off, want, n);
        if (memcmp(want, buf, n) != 0)
            return false;
        buf += n;
        off += n;
        len -= n;
    }
    return true;
}

/* ---- server side: behaviours and their counters --------------------------------- */

static void note_queued(struct stats *st, size_t q)
{
    size_t cur = atomic_load(&st->max_queued);
    while (q > cur && !atomic_compare_exchange_weak(&st->max_queued, &cur, q))
        ;
}

int send_counted(tr_ctx *cx, struct cstate *cs, const void *p, size_t n)
{
    int rc = tr_tcp_send(cx, p, n);
    if (rc != 0) {
        atomic_fetch_add(&cs->st->send_failed, 1);
        if (rc == TR_ENOBUFS)
            atomic_fetch_add(&cs->st->enobufs, 1);
    }
    if (cs->flags & STRICT)
        TT_CHECK(rc == 0);
    note_queued(cs->st, tr_tcp_queued(cx));
    return rc;
}

uint16_t sa_port(const struct sockaddr_storage *ss)
{
    return ss->ss_family == AF_INET ? ntohs(((const struct sockaddr_in *)ss)->sin_port) : 0;
}

/* Connection events every behaviour handles the same way; true if m was one. */
bool common_event(tr_ctx *cx, struct cstate *cs, const tr_msg *m)
{
    struct stats *st = cs->st;
    switch (m->type) {
    case TR_TCP_CONNECTED: {
        TT_CHECK(!cs->connected && !cs->closed);
        TT_CHECK(m->len == sizeof(tr_tcp_info));
        const tr_tcp_info *info = (const tr_tcp_info *)m->data;
        TT_CHECK(info->fd >= 0);
        TT_CHECK(info->peer.ss_family == AF_INET);
        TT_CHECK(info->peer_len == sizeof(struct sockaddr_in));
        TT_CHECK(tr_tcp_queued(cx) == 0);
        cs->connected = true;
        int sp = atomic_load(&st->slow_port);
        cs->slow = sp != 0 && sa_port(&info->peer) == (uint16_t)sp;
        atomic_fetch_add(&st->connected, 1);
        return true;
    }
    case TR_TCP_THROTTLED:
        TT_CHECK(cs->connected && !cs->closed && !cs->throttled);
        cs->throttled = true;
        atomic_fetch_add(&st->throttled, 1);
        if (cs->slow)
            atomic_fetch_add(&st->slow_throttled, 1);
        return true;
    case TR_TCP_UNTHROTTLED:
        TT_CHECK(cs->connected && !cs->closed && cs->throttled);
        cs->throttled = false;
        atomic_fetch_add(&st->unthrottled, 1);
        if (cs->slow)
            atomic_fetch_add(&st->slow_unthrottled, 1);
        return true;
    case TR_TCP_ERROR:
        TT_CHECK(cs->connected && !cs->closed);
        TT_CHECK(m->len == sizeof(tr_tcp_error));
        TT_CHECK(((const tr_tcp_error *)m->data)->reason < 0);
        atomic_store(&st->last_error, ((const tr_tcp_error *)m->data)->reason);
        atomic_fetch_add(&st->errors, 1);
        cs->errors++;
        return true;
    case TR_TCP_CLOSED: {
        TT_CHECK(!cs->closed);
        TT_CHECK(m->len == sizeof(tr_tcp_error));
        int reason = ((const tr_tcp_error *)m->data)->reason;
        TT_CHECK(reason <= 0);
        cs->closed = true;
        /* No call acts on a closed connection. */
        TT_CHECK(tr_tcp_send(cx, "x", 1) == TR_ENOTCONN);
        atomic_store(&st->last_reason, reason);
        atomic_fetch_add(reason == 0 ? &st->closed_ok : &st->closed_neg, 1);
        atomic_fetch_add(&st->closed, 1); /* last: waiters read the rest after it */
        return true;
    }
    default:
        return false;
    }
}

/* Raw echo: writes back whatever arrives. */
void echo_raw(tr_ctx *cx, void *state, const tr_msg *m)
{
    struct cstate *cs = state;
    if (common_event(cx, cs, m))
        return;
    if (m->type == TR_TCP_DATA) {
        TT_CHECK(cs->connected && !cs->closed);
        TT_CHECK(m->len > 0);
        atomic_fetch_add(&cs->st->frames, 1);
        atomic_fetch_add(&cs->st->bytes, (long)m->len);
        send_counted(cx, cs, m->data, m->len);
    }
}

/* Line echo: each line back with "\n"; each framing error as "!\n", so
 * that the client can account for every byte it sent. A line "bye N" gets
 * N bytes of stream N back and then a graceful close; "abort N" sends N
 * bytes and resets the connection. */
void echo_line(tr_ctx *cx, void *state, const tr_msg *m)
{
    struct cstate *cs = state;
    if (m->type == TR_TCP_ERROR) {
        TT_CHECK(((const tr_tcp_error *)m->data)->reason == TR_ELINETOOLONG);
        common_event(cx, cs, m);
        send_counted(cx, cs, "!\n", 2);
        return;
    }
    if (common_event(cx, cs, m))
        return;
    if (m->type != TR_TCP_LINE)
        return;
    TT_CHECK(cs->connected && !cs->closed);
    TT_CHECK(memchr(m->data, '\n', m->len) == NULL);
    atomic_fetch_add(&cs->st->frames, 1);
    atomic_fetch_add(&cs->st->bytes, (long)m->len);
    char text[40], word[16];
    unsigned long n = 0;
    if (m->len < sizeof text) {
        memcpy(text, m->data, m->len);
        text[m->len] = '\0';
    }
    if (m->len < sizeof text && sscanf(text, "%15s %lu", word, &n) == 2 &&
        (strcmp(word, "bye") == 0 || strcmp(word, "abort") == 0)) {
        unsigned char *buf = malloc(64 * 1024);
        TT_CHECK(buf != NULL);
        for (unsigned long off = 0; buf != NULL && off < n; off += 64 * 1024) {
            size_t c = n - off < 64 * 1024 ? n - off : 64 * 1024;
            gen_fill(n, off, buf, c);
            TT_CHECK(tr_tcp_send(cx, buf, c) == 0);
        }
        free(buf);
        if (strcmp(word, "bye") == 0) {
            TT_CHECK(tr_tcp_close(cx) == 0);
        } else {
            atomic_store(&cs->st->abort_queued, (long)tr_tcp_queued(cx));
            atomic_store(&cs->st->abort_sent, (long)n);
            TT_CHECK(tr_tcp_abort(cx) == 0);
        }
        TT_CHECK(tr_tcp_send(cx, "late", 4) == TR_ENOTCONN);
        return;
    }
    send_counted(cx, cs, m->data, m->len);
    send_counted(cx, cs, "\n", 1);
}

/* msgpack echo: each object packed again and written back. */
void echo_msgpack(tr_ctx *cx, void *state, const tr_msg *m)
{
    struct cstate *cs = state;
    if (m->type == TR_TCP_ERROR)
        TT_CHECK(((const tr_tcp_error *)m->data)->reason == TR_EBADFRAME);
    if (common_event(cx, cs, m))
        return;
    if (m->type != TR_TCP_MSGPACK)
        return;
    TT_CHECK(cs->connected && !cs->closed && cs->errors == 0);
    TT_CHECK(m->len == sizeof(msgpack_object));
    msgpack_object obj;
    memcpy(&obj, m->data, sizeof obj);
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    TT_CHECK(msgpack_pack_object(&pk, obj) == 0);
    atomic_fetch_add(&cs->st->frames, 1);
    atomic_fetch_add(&cs->st->bytes, (long)sb.size);
    send_counted(cx, cs, sb.data, sb.size);
    msgpack_sbuffer_destroy(&sb);
}

/* ---- server set-up ------------------------------------------------------------ */

struct stats *stats_new(void)
{
    struct stats *st = calloc(1, sizeof *st);
    CU_ASSERT_FATAL(st != NULL);
    return st;
}

tr_tcp_handler handler_for(tr_behaviour fn, struct stats *st, int flags)
{
    static _Thread_local struct cstate proto; /* copied by the listen call */
    memset(&proto, 0, sizeof proto);
    proto.st = st;
    proto.flags = flags;
    tr_tcp_handler h = {.actor = {.behaviour = fn, .state = &proto, .state_size = sizeof proto}};
    return h;
}

void server_start_opts(struct server *s, tr_tcp_handler h, int backlog)
{
    s->rt = tt_runtime(4, 0);
    tr_tcp_listen_opts o = {.host = HOST, .port = 0, .backlog = backlog, .handler = h};
    int rc = tr_tcp_listen(tr_runtime_ctx(s->rt), &o, &s->listener, &s->port);
    TT_EQ(rc, 0);
    CU_ASSERT_FATAL(rc == 0);
    CU_ASSERT_FATAL(s->port != 0);
    CU_ASSERT(s->listener != TR_PID_NONE);
    CU_ASSERT_FATAL(tr_runtime_start(s->rt) == 0);
}

void server_start(struct server *s, tr_behaviour fn, int flags)
{
    s->st = stats_new();
    server_start_opts(s, handler_for(fn, s->st, flags), 0);
}

void server_start_msgpack(struct server *s, size_t max_frame)
{
    s->st = stats_new();
    tr_tcp_handler h = handler_for(echo_msgpack, s->st, STRICT);
    h.opts.framing = TR_FRAME_MSGPACK;
    h.opts.max_frame = max_frame;
    server_start_opts(s, h, 0);
}

void server_saw_close(struct server *s, long closed)
{
    WAIT_FOR(atomic_load(&s->st->closed) == closed);
    TT_EQ(atomic_load(&s->st->last_reason), 0);
}

void server_stop(struct server *s)
{
    tr_runtime_shutdown(s->rt);
    int rc = tt_join_within(s->rt, WAIT_S);
    CU_ASSERT(rc == 0 || rc == 1);
    tr_runtime_destroy(s->rt);
    s->rt = NULL;
    free(s->st);
    s->st = NULL;
}

/* ---- client side ---------------------------------------------------------------- */

void set_timeouts(int fd, int seconds)
{
    struct timeval tv = {.tv_sec = seconds};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
}

void set_nonblocking(int fd)
{
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
}

struct sockaddr_in loopback(uint16_t port)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    return a;
}

/* A blocking client socket connected to 127.0.0.1:port, or -errno. */
int cli_connect_raw(uint16_t port, int rcvbuf)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    set_timeouts(fd, IO_TIMEOUT_S);
    if (rcvbuf > 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
    struct sockaddr_in a = loopback(port);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
        int err = -errno;
        close(fd);
        return err;
    }
    return fd;
}

int cli_connect(uint16_t port)
{
    int fd = cli_connect_raw(port, 0);
    if (fd < 0)
        printf("\n    connect to port %u: %s\n", port, strerror(-fd));
    CU_ASSERT_FATAL(fd >= 0);
    return fd;
}

uint16_t local_port(int fd)
{
    struct sockaddr_in a;
    socklen_t len = sizeof a;
    getsockname(fd, (struct sockaddr *)&a, &len);
    return ntohs(a.sin_port);
}

void set_reset_on_close(int fd)
{
    struct linger lg = {.l_onoff = 1, .l_linger = 0};
    setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
}

bool cli_write(int fd, const void *p, size_t n)
{
    const char *c = p;
    while (n > 0) {
        ssize_t w = send(fd, c, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return false;
        c += w;
        n -= (size_t)w;
    }
    return true;
}

/* Reads until n bytes, EOF or an error; the count read. *end gets 0 (all
 * read, or EOF), or -errno (-EAGAIN: timed out). */
size_t cli_read(int fd, void *p, size_t n, int *end)
{
    size_t got = 0;
    *end = 0;
    while (got < n) {
        ssize_t r = recv(fd, (char *)p + got, n - got, 0);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            *end = -errno;
            break;
        }
        if (r == 0)
            break;
        got += (size_t)r;
    }
    return got;
}

/* What comes next on fd: 0 = EOF, 1 = data, -errno. */
int cli_next(int fd)
{
    char c;
    for (;;) {
        ssize_t r = recv(fd, &c, 1, 0);
        if (r < 0 && errno == EINTR)
            continue;
        return r < 0 ? -errno : (int)r;
    }
}

/* A round trip through an echo server: len bytes of stream seed. */
bool cli_echo(int fd, uint64_t seed, size_t len)
{
    unsigned char out[4096], in[4096];
    if (len > sizeof out)
        len = sizeof out;
    gen_fill(seed, 0, out, len);
    if (!cli_write(fd, out, len))
        return false;
    int end;
    return cli_read(fd, in, len, &end) == len && memcmp(in, out, len) == 0;
}

long rss_bytes(void)
{
    return tt_rss_kb() * 1024;
}

void expect_port_in_use(int rc, tr_pid pid, uint16_t bound, uint16_t port, size_t holder,
                        const char *host)
{
    if (rc != -EADDRINUSE)
        printf("\n    port %u (holder %zu) on %s: %d (%s)", (unsigned)port, holder,
               host != NULL ? host : "0.0.0.0", rc, tr_strerror(rc));
    TT_EQ(rc, -EADDRINUSE);
    TT_EQ(pid, TR_PID_NONE);
    TT_EQ(bound, 0);
}

/* ---- a duplex client: sends a buffer while reading, checks every byte --------- */

void *duplex_main(void *arg)
{
    struct duplex *d = arg;
    int fd = d->fd;
    set_nonblocking(fd);
    size_t cap = 256 * 1024;
    unsigned char *rbuf = malloc(cap);
    TT_CHECK(rbuf != NULL);
    if (rbuf == NULL) {
        d->end = -ENOMEM;
        return NULL;
    }
    uint64_t cs = d->chunk_seed;
    bool writing = d->in_len > 0 || d->shut_after;
    if (d->in_len == 0 && d->shut_after) {
        shutdown(fd, SHUT_WR);
        writing = false;
    }
    d->end = 1;
    while (d->end == 1) {
        struct pollfd p = {.fd = fd, .events = POLLIN | (writing ? POLLOUT : 0)};
        int r = poll(&p, 1, IO_TIMEOUT_S * 1000);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            d->end = -ETIMEDOUT;
            break;
        }
        if (writing && (p.revents & (POLLOUT | POLLERR | POLLHUP))) {
            size_t c = d->in_len - d->sent;
            size_t lim =
                cs != 0 ? 1 + tt_rng_below(&cs, tt_rng_below(&cs, 8) == 0 ? cap : 300) : cap;
            if (c > lim)
                c = lim;
            const unsigned char *src = d->in + d->sent;
            ssize_t w = send(fd, src, c, MSG_NOSIGNAL);
            if (w > 0) {
                d->sent += (size_t)w;
            } else if (w < 0 && errno != EAGAIN && errno != EINTR) {
                d->send_err = -errno;
                writing = false; /* the server is gone: read what it said */
            }
            if (d->sent == d->in_len && writing) {
                writing = false;
                if (d->shut_after)
                    shutdown(fd, SHUT_WR);
            }
        }
        if (p.revents & (POLLIN | POLLERR | POLLHUP)) {
            ssize_t n = recv(fd, rbuf, cap, 0);
            if (n > 0) {
                size_t k = (size_t)n;
                if (!d->mismatch) {
                    bool ok = d->received + k <= d->want_len &&
                              memcmp(rbuf, d->want + d->received, k) == 0;
                    if (!ok) {
                        d->mismatch = true;
                        size_t i = 0;
                        while (i < k && d->received + i < d->want_len &&
                               rbuf[i] == d->want[d->received + i])
                            i++;
                        d->mismatch_at = d->received + i;
                    }
                }
                d->received += k;
            } else if (n == 0) {
                d->end = 0;
            } else if (errno != EAGAIN && errno != EINTR) {
                d->end = -errno;
            }
        }
    }
    free(rbuf);
    return NULL;
}

void duplex_report(const struct duplex *d, const char *what)
{
    if (d->mismatch || d->received != d->want_len || d->end != 0 || d->sent != d->in_len)
        printf("\n    %s: sent %zu of %zu, received %zu of %zu, mismatch %d at %zu, end %d "
               "(%s), send error %d\n",
               what, d->sent, d->in_len, d->received, d->want_len, d->mismatch,
               d->mismatch_at, d->end, d->end < 0 ? strerror(-d->end) : "eof", d->send_err);
}

void duplex_expect(struct duplex *d, const char *what)
{
    duplex_main(d);
    duplex_report(d, what);
    TT_EQ(d->received, d->want_len);
    CU_ASSERT(!d->mismatch);
    TT_EQ(d->end, 0);
    close(d->fd);
}

/* ---- reference answers ------------------------------------------------------ */

/* What the line echo server must answer to `in` (complete input, ending
 * the connection): the reference rules, with "!\n" per over-long line. */
unsigned char *ref_line_echo(const unsigned char *in, size_t n, size_t max_line,
                             size_t *out_len, size_t *errors)
{
    unsigned char *out = malloc(n + n / 2 + 16);
    CU_ASSERT_FATAL(out != NULL);
    size_t o = 0, pos = 0;
    *errors = 0;
    while (pos < n) {
        const unsigned char *nl = memchr(in + pos, '\n', n - pos);
        if (nl == NULL) {
            if (n - pos >= max_line) {
                memcpy(out + o, "!\n", 2);
                o += 2;
                (*errors)++;
            }
            break; /* an unterminated tail is dropped at EOF */
        }
        size_t with_nl = (size_t)(nl - (in + pos)) + 1;
        if (with_nl > max_line) {
            memcpy(out + o, "!\n", 2);
            o += 2;
            (*errors)++;
        } else {
            size_t l = with_nl - 1;
            if (l > 0 && in[pos + l - 1] == '\r')
                l--;
            memcpy(out + o, in + pos, l);
            o += l;
            out[o++] = '\n';
        }
        pos += with_nl;
    }
    *out_len = o;
    return out;
}

/* A random object of at most `depth` levels of nesting, canonically packed. */
void pack_random(msgpack_packer *pk, uint64_t *seed, int depth)
{
    char buf[600];
    switch (tt_rng_below(seed, depth > 0 ? 12 : 9)) {
    case 0: msgpack_pack_nil(pk); break;
    case 1: tt_rng_below(seed, 2) ? msgpack_pack_true(pk) : msgpack_pack_false(pk); break;
    case 2: msgpack_pack_uint64(pk, tt_rng_next(seed) >> tt_rng_below(seed, 64)); break;
    case 3:
        msgpack_pack_int64(pk, -(int64_t)(tt_rng_next(seed) >> (1 + tt_rng_below(seed, 63))));
        break;
    case 4: msgpack_pack_double(pk, (double)tt_rng_next(seed) / 3.0); break;
    case 5:
    case 6: {
        size_t len = tt_rng_below(seed, tt_rng_below(seed, 4) == 0 ? sizeof buf : 30);
        for (size_t i = 0; i < len; i++)
            buf[i] = (char)('a' + tt_rng_below(seed, 26));
        msgpack_pack_str(pk, len);
        msgpack_pack_str_body(pk, buf, len);
        break;
    }
    case 7: {
        size_t len = tt_rng_below(seed, sizeof buf);
        for (size_t i = 0; i < len; i++)
            buf[i] = (char)tt_rng_next(seed);
        msgpack_pack_bin(pk, len);
        msgpack_pack_bin_body(pk, buf, len);
        break;
    }
    case 8: {
        size_t len = 1 + tt_rng_below(seed, 20);
        for (size_t i = 0; i < len; i++)
            buf[i] = (char)tt_rng_next(seed);
        msgpack_pack_ext(pk, len, (int8_t)tt_rng_below(seed, 100));
        msgpack_pack_ext_body(pk, buf, len);
        break;
    }
    case 9:
    case 10: {
        size_t n = tt_rng_below(seed, 8);
        msgpack_pack_array(pk, n);
        for (size_t i = 0; i < n; i++)
            pack_random(pk, seed, depth - 1);
        break;
    }
    default: {
        size_t n = tt_rng_below(seed, 5);
        msgpack_pack_map(pk, n);
        for (size_t i = 0; i < 2 * n; i++)
            pack_random(pk, seed, depth - 1);
        break;
    }
    }
}

/* What a re-packing echo must answer to `in`: each complete object (until
 * the first malformed byte or the end) unpacked and packed again. */
unsigned char *ref_msgpack_echo(const unsigned char *in, size_t n, size_t *out_len,
                                size_t *objects, bool *malformed)
{
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_unpacked u;
    msgpack_unpacked_init(&u);
    size_t off = 0;
    *objects = 0;
    *malformed = false;
    for (;;) {
        msgpack_unpack_return r = msgpack_unpack_next(&u, (const char *)in, n, &off);
        if (r == MSGPACK_UNPACK_SUCCESS) {
            msgpack_pack_object(&pk, u.data);
            (*objects)++;
            continue;
        }
        *malformed = r == MSGPACK_UNPACK_PARSE_ERROR;
        break;
    }
    msgpack_unpacked_destroy(&u);
    *out_len = sb.size;
    if (sb.data == NULL)
        return calloc(1, 1);
    return (unsigned char *)msgpack_sbuffer_release(&sb);
}
