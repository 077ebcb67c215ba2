/* test_tcp_echo.c — TCP echo at volume: 16 concurrent streams of 64 MiB, and
 * 1,000 connections open at once, every byte checked.
 *
 * The helpers, and how every network test runs its server and clients:
 * net_util.h. */
#include "net_util.h"

#include <sys/epoll.h>
#include <sys/resource.h>

/* ---- echo: 16 connections x 64 MiB, concurrently --------------------------- */

struct streamer {
    uint16_t port;
    uint64_t seed, total;
    uint64_t sent, received;
    bool mismatch;
    int end;
};

/* One client: writes `total` bytes of its stream while reading the echo,
 * half-closes when done, and expects exactly the stream back, then EOF. */
static void *streamer_main(void *arg)
{
    struct streamer *s = arg;
    int fd = cli_connect_raw(s->port, 0);
    TT_CHECK(fd >= 0);
    if (fd < 0) {
        s->end = fd;
        return NULL;
    }
    set_nonblocking(fd);
    enum { BUF = 128 * 1024 };
    unsigned char *wbuf = malloc(BUF), *rbuf = malloc(BUF), *want = malloc(BUF);
    TT_CHECK(wbuf && rbuf && want);
    s->end = 1;
    bool writing = true;
    size_t wlen = 0, woff = 0; /* generated, not yet sent: wbuf[woff, wlen) */
    while (s->end == 1 && wbuf && rbuf && want) {
        struct pollfd p = {.fd = fd, .events = POLLIN | (writing ? POLLOUT : 0)};
        int r = poll(&p, 1, IO_TIMEOUT_S * 1000);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            s->end = -ETIMEDOUT;
            break;
        }
        if (writing && (p.revents & POLLOUT)) {
            if (woff == wlen) {
                uint64_t left = s->total - s->sent;
                wlen = left < BUF ? (size_t)left : BUF;
                gen_fill(s->seed, s->sent, wbuf, wlen);
                woff = 0;
            }
            ssize_t w = send(fd, wbuf + woff, wlen - woff, MSG_NOSIGNAL);
            if (w > 0) {
                woff += (size_t)w;
                s->sent += (uint64_t)w;
            } else if (w < 0 && errno != EAGAIN && errno != EINTR) {
                s->end = -errno;
                break;
            }
            if (s->sent == s->total) {
                writing = false;
                shutdown(fd, SHUT_WR);
            }
        }
        if (p.revents & (POLLIN | POLLERR | POLLHUP)) {
            ssize_t n = recv(fd, rbuf, BUF, 0);
            if (n > 0) {
                if (s->received + (uint64_t)n > s->total) {
                    s->mismatch = true;
                } else {
                    gen_fill(s->seed, s->received, want, (size_t)n);
                    if (memcmp(want, rbuf, (size_t)n) != 0)
                        s->mismatch = true;
                }
                s->received += (uint64_t)n;
            } else if (n == 0) {
                s->end = 0;
            } else if (errno != EAGAIN && errno != EINTR) {
                s->end = -errno;
            }
        }
    }
    free(wbuf);
    free(rbuf);
    free(want);
    close(fd);
    return NULL;
}

static void test_echo_16_streams(void)
{
    enum { CONNS = 16 };
    const uint64_t total = SCALED ? 8 * MIB : 64 * MIB;
    struct server srv;
    server_start(&srv, echo_raw, STRICT);
    struct streamer s[CONNS];
    pthread_t t[CONNS];
    for (int i = 0; i < CONNS; i++) {
        s[i] = (struct streamer){.port = srv.port, .seed = 1000 + (uint64_t)i, .total = total};
        t[i] = tt_thread(streamer_main, &s[i]);
    }
    for (int i = 0; i < CONNS; i++)
        tt_join(t[i]);
    for (int i = 0; i < CONNS; i++) {
        if (s[i].mismatch || s[i].end != 0 || s[i].sent != total || s[i].received != total)
            printf("\n    client %d: sent %" PRIu64 ", received %" PRIu64 ", mismatch %d, end %d\n",
                   i, s[i].sent, s[i].received, s[i].mismatch, s[i].end);
        TT_EQ(s[i].sent, total);
        TT_EQ(s[i].received, total);
        CU_ASSERT(!s[i].mismatch);
        TT_EQ(s[i].end, 0);
    }
    WAIT_FOR(atomic_load(&srv.st->closed) == CONNS);
    TT_EQ(atomic_load(&srv.st->connected), CONNS);
    TT_EQ(atomic_load(&srv.st->closed_ok), CONNS);
    TT_EQ(atomic_load(&srv.st->bytes), (long long)(CONNS * total));
    TT_EQ(atomic_load(&srv.st->send_failed), 0);
    TT_NO_ERRORS();
    server_stop(&srv);
}

/* ---- 1,000 concurrent connections x 100 messages, one epoll client ----------- */

struct mconn {
    int fd;
    uint32_t msg;       /* the message in flight */
    uint32_t size;      /* its size */
    uint32_t wrote, got;
    bool want_out;
    unsigned char buf[256];
};

static uint32_t mc_size(uint32_t c, uint32_t msg)
{
    return 1 + (c * 31 + msg * 17) % 256;
}

static void mc_send(int ep, struct mconn *mc, uint32_t c, bool *fail)
{
    unsigned char out[256];
    gen_fill(c + 1, (uint64_t)mc->msg * 256, out, mc->size);
    while (mc->wrote < mc->size) {
        ssize_t w = send(mc->fd, out + mc->wrote, mc->size - mc->wrote, MSG_NOSIGNAL);
        if (w > 0) {
            mc->wrote += (uint32_t)w;
            continue;
        }
        if (w < 0 && (errno == EAGAIN || errno == EINTR)) {
            if (!mc->want_out) {
                struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT, .data.u32 = c};
                epoll_ctl(ep, EPOLL_CTL_MOD, mc->fd, &ev);
                mc->want_out = true;
            }
            return;
        }
        *fail = true;
        return;
    }
    if (mc->want_out) {
        struct epoll_event ev = {.events = EPOLLIN, .data.u32 = c};
        epoll_ctl(ep, EPOLL_CTL_MOD, mc->fd, &ev);
        mc->want_out = false;
    }
}

static void test_echo_1000_connections(void)
{
    enum { CONNS = 1000, MSGS = 100 };
    tr_fd_limit_raise(NULL);
    struct rlimit rl;
    getrlimit(RLIMIT_NOFILE, &rl);
    if (rl.rlim_cur < 2 * CONNS + 200) {
        printf("\n    RLIMIT_NOFILE %lu is too low for %d connections: skipped\n",
               (unsigned long)rl.rlim_cur, CONNS);
        return;
    }
    struct server srv;
    server_start(&srv, echo_raw, STRICT);
    struct mconn *mc = calloc(CONNS, sizeof *mc);
    CU_ASSERT_FATAL(mc != NULL);
    int ep = epoll_create1(EPOLL_CLOEXEC);
    CU_ASSERT_FATAL(ep >= 0);
    long long expect_bytes = 0;
    for (uint32_t c = 0; c < CONNS; c++) {
        mc[c].fd = cli_connect(srv.port);
        set_nonblocking(mc[c].fd);
        struct epoll_event ev = {.events = EPOLLIN, .data.u32 = c};
        CU_ASSERT_FATAL(epoll_ctl(ep, EPOLL_CTL_ADD, mc[c].fd, &ev) == 0);
        for (uint32_t i = 0; i < MSGS; i++)
            expect_bytes += mc_size(c, i);
    }
    /* Every connection is open at once before the first message. */
    WAIT_FOR(atomic_load(&srv.st->connected) == CONNS);
    bool fail = false;
    for (uint32_t c = 0; c < CONNS; c++) {
        mc[c].size = mc_size(c, 0);
        mc_send(ep, &mc[c], c, &fail);
    }
    unsigned done = 0, bad = 0, stalls = 0;
    struct epoll_event evs[256];
    while (done < CONNS && !fail) {
        int n = epoll_wait(ep, evs, 256, IO_TIMEOUT_S * 1000);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            stalls++;
            break;
        }
        for (int k = 0; k < n; k++) {
            uint32_t c = evs[k].data.u32;
            struct mconn *m = &mc[c];
            if (evs[k].events & EPOLLOUT)
                mc_send(ep, m, c, &fail);
            if (!(evs[k].events & (EPOLLIN | EPOLLERR | EPOLLHUP)))
                continue;
            ssize_t r = recv(m->fd, m->buf + m->got, sizeof m->buf - m->got, 0);
            if (r < 0 && (errno == EAGAIN || errno == EINTR))
                continue;
            if (r <= 0 || m->got + (uint32_t)r > m->size) {
                fail = true; /* EOF, an error, or more than was sent */
                break;
            }
            m->got += (uint32_t)r;
            if (m->got < m->size)
                continue;
            if (!gen_check(c + 1, (uint64_t)m->msg * 256, m->buf, m->size))
                bad++;
            m->msg++;
            m->got = m->wrote = 0;
            if (m->msg == MSGS) {
                done++;
                continue;
            }
            m->size = mc_size(c, m->msg);
            mc_send(ep, m, c, &fail);
        }
    }
    if (done != CONNS)
        printf("\n    %u of %d connections finished (fail %d, stalls %u)\n", done, CONNS, fail,
               stalls);
    TT_EQ(done, CONNS);
    TT_EQ(bad, 0);
    CU_ASSERT(!fail);
    for (uint32_t c = 0; c < CONNS; c++)
        close(mc[c].fd);
    close(ep);
    WAIT_FOR(atomic_load(&srv.st->closed) == CONNS);
    TT_EQ(atomic_load(&srv.st->connected), CONNS);
    TT_EQ(atomic_load(&srv.st->closed_ok), CONNS);
    TT_EQ(atomic_load(&srv.st->bytes), expect_bytes);
    TT_NO_ERRORS();
    server_stop(&srv);
    free(mc);
}

void register_tcp_echo_tests(void)
{
    CU_pSuite s = tt_suite("tcp_echo");
    tt_test(s, "16_streams_of_64MiB_come_back_byte_for_byte", test_echo_16_streams);
    tt_test(s, "1000_connections_open_at_once_100_messages_each", test_echo_1000_connections);
}
