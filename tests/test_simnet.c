/* test_simnet.c — the simulated network at the sys/ level (suite
 * "simnet"): a simulated world entered directly (tr__sim_enter), sockets
 * made and used through the tr__sys_* calls net/ uses, the virtual clock
 * moved to each planned event (tr__simnet_next_ns, tr__sim_advance), and
 * readiness read with tr__sys_epoll_wait as the reactor reads it. Nothing
 * here needs the simulator's scheduler; everything is counted, and time
 * is virtual, so the latency bounds checked are exact.
 */
#include "tests.h"

#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "../base/clock.h"
#include "../sys/sys.h"

#define US 1000u
#define SEC UINT64_C(1000000000)
#define EV_ALL (EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET)

/* One simulated world per test: its epoll, and the events seen per socket
 * (edge-triggered events are reported once, so they are remembered). */
static int ep = -1;
static uint32_t seen[64];

static void world(uint64_t seed, const char *opts)
{
    CU_ASSERT_FATAL(tr__sim_enter(seed, opts) == 0);
    memset(seen, 0, sizeof seen);
    ep = epoll_create1(EPOLL_CLOEXEC);
    CU_ASSERT_FATAL(ep >= 0);
}

/* Ends the world: nothing may be left planned once every socket is closed
 * (bounded, as wait_for is, so that a plan that never ends fails the test
 * instead of hanging it). */
static void world_end(void)
{
    for (int steps = 0; steps < 100000 && tr__simnet_next_ns() != UINT64_MAX; steps++)
        tr__sim_advance(tr__simnet_next_ns());
    CU_ASSERT(tr__simnet_next_ns() == UINT64_MAX);
    close(ep);
    ep = -1;
    tr__sim_leave();
}

/* A new simulated socket fd, watched by the world's epoll; fd. */
static int watch(int fd)
{
    CU_ASSERT_FATAL(fd >= TR__SIM_FD_FIRST && fd - TR__SIM_FD_FIRST < 64);
    seen[fd - TR__SIM_FD_FIRST] = 0; /* the number may be reused */
    struct epoll_event ev = {.events = EV_ALL, .data.u64 = (uint64_t)fd};
    CU_ASSERT_FATAL(tr__sys_epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) == 0);
    return fd;
}

static int sim_socket(int type)
{
    return watch(tr__sys_socket(AF_INET, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
}

static struct sockaddr_in addr_of(const char *ip, uint16_t port)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
    inet_pton(AF_INET, ip, &a.sin_addr);
    return a;
}

static uint16_t port_of(int fd, bool peer)
{
    struct sockaddr_in a;
    socklen_t len = sizeof a;
    int r = peer ? tr__sys_getpeername(fd, (struct sockaddr *)&a, &len)
                 : tr__sys_getsockname(fd, (struct sockaddr *)&a, &len);
    return r == 0 ? ntohs(a.sin_port) : 0;
}

static void poll_once(void)
{
    struct epoll_event evs[16];
    int n = tr__sys_epoll_wait(ep, evs, 16, -1);
    for (int i = 0; i < n; i++)
        seen[evs[i].data.u64 - TR__SIM_FD_FIRST] |= evs[i].events;
}

/* Moves virtual time event by event until fd has seen one of `mask`
 * (returned and forgotten), or nothing is left planned (0). */
static uint32_t wait_for(int fd, uint32_t mask)
{
    for (int steps = 0; steps < 100000; steps++) {
        poll_once();
        uint32_t got = seen[fd - TR__SIM_FD_FIRST] & mask;
        if (got != 0) {
            seen[fd - TR__SIM_FD_FIRST] &= ~mask;
            return got;
        }
        uint64_t next = tr__simnet_next_ns();
        if (next == UINT64_MAX)
            return 0;
        tr__sim_advance(next);
    }
    return 0;
}

/* Lets virtual time run for `ns`, carrying out what falls due. */
static void run_for(uint64_t ns)
{
    uint64_t until = tr__now_ns() + ns;
    for (uint64_t next; (next = tr__simnet_next_ns()) <= until;) {
        tr__sim_advance(next);
        poll_once();
    }
    tr__sim_advance(until);
    poll_once();
}

static int sim_listener(uint16_t port)
{
    int l = sim_socket(SOCK_STREAM);
    struct sockaddr_in a = addr_of("127.0.0.1", port);
    CU_ASSERT_FATAL(tr__sys_bind(l, (struct sockaddr *)&a, sizeof a) == 0);
    CU_ASSERT_FATAL(tr__sys_listen(l, 16) == 0);
    return l;
}

/* A client connected to the listener on port, and the server's end. */
static void sim_pair(int l, uint16_t port, int *client, int *server)
{
    int c = sim_socket(SOCK_STREAM);
    struct sockaddr_in a = addr_of("127.0.0.1", port);
    errno = 0;
    CU_ASSERT_FATAL(tr__sys_connect(c, (struct sockaddr *)&a, sizeof a) == -1 &&
                    errno == EINPROGRESS);
    CU_ASSERT_FATAL(wait_for(l, EPOLLIN) != 0);
    int s = watch(tr__sys_accept4(l, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC));
    CU_ASSERT_FATAL(wait_for(c, EPOLLOUT) != 0);
    int err = -1;
    socklen_t len = sizeof err;
    CU_ASSERT(tr__sys_getsockopt(c, SOL_SOCKET, SO_ERROR, &err, &len) == 0 && err == 0);
    *client = c;
    *server = s;
}

/* Reads everything fd has now. */
static size_t drain(int fd, char *buf, size_t cap)
{
    size_t got = 0;
    ssize_t n;
    while (got < cap && (n = tr__sys_recv(fd, buf + got, cap - got, MSG_DONTWAIT)) > 0)
        got += (size_t)n;
    return got;
}

static void test_echo_latency(void)
{
    world(1, "latency=100:300");
    int l = sim_listener(7000);
    int c = sim_socket(SOCK_STREAM);
    struct sockaddr_in a = addr_of("127.0.0.1", 7000);
    uint64_t t0 = tr__now_ns();
    CU_ASSERT(tr__sys_connect(c, (struct sockaddr *)&a, sizeof a) == -1 && errno == EINPROGRESS);
    CU_ASSERT(tr__sys_send(c, "x", 1, MSG_NOSIGNAL) == -1 && errno == EAGAIN);
    CU_ASSERT_FATAL(wait_for(l, EPOLLIN) != 0);
    CU_ASSERT(tr__now_ns() >= t0 + 100 * US);
    struct sockaddr_in peer;
    socklen_t plen = sizeof peer;
    int s = tr__sys_accept4(l, (struct sockaddr *)&peer, &plen, SOCK_NONBLOCK);
    CU_ASSERT_FATAL(s >= TR__SIM_FD_FIRST);
    CU_ASSERT(ntohs(peer.sin_port) == 40000); /* the first ephemeral port */
    CU_ASSERT(tr__sys_accept4(l, NULL, NULL, 0) == -1 && errno == EAGAIN);
    struct epoll_event ev = {.events = EV_ALL, .data.u64 = (uint64_t)s};
    CU_ASSERT(tr__sys_epoll_ctl(ep, EPOLL_CTL_ADD, s, &ev) == 0);
    CU_ASSERT(tr__sys_epoll_ctl(ep, EPOLL_CTL_ADD, s, &ev) == -1 && errno == EEXIST);
    CU_ASSERT(wait_for(c, EPOLLOUT) != 0);
    CU_ASSERT(tr__now_ns() >= t0 + 200 * US); /* SYN and SYN-ACK */
    CU_ASSERT(port_of(c, true) == 7000);
    CU_ASSERT(port_of(c, false) == 40000);
    CU_ASSERT(port_of(s, false) == 7000);

    char buf[64];
    for (int round = 0; round < 20; round++) {
        uint64_t t1 = tr__now_ns();
        CU_ASSERT(tr__sys_send(c, "hello", 5, MSG_NOSIGNAL) == 5);
        CU_ASSERT(tr__sys_recv(s, buf, sizeof buf, 0) == -1 && errno == EAGAIN);
        CU_ASSERT_FATAL(wait_for(s, EPOLLIN) != 0);
        CU_ASSERT(tr__now_ns() >= t1 + 100 * US);
        CU_ASSERT(drain(s, buf, sizeof buf) == 5 && memcmp(buf, "hello", 5) == 0);
        CU_ASSERT(tr__sys_send(s, buf, 5, MSG_NOSIGNAL) == 5);
        CU_ASSERT_FATAL(wait_for(c, EPOLLIN) != 0);
        CU_ASSERT(tr__now_ns() >= t1 + 200 * US);
        CU_ASSERT(drain(c, buf, sizeof buf) == 5);
    }
    tr_sim_stats st;
    tr_sim_stats_get(&st);
    CU_ASSERT(st.tcp_connects == 1 && st.tcp_refused == 0 && st.tcp_resets == 0);
    CU_ASSERT(tr__sys_close(c) == 0);
    CU_ASSERT(wait_for(s, EPOLLRDHUP) != 0);
    CU_ASSERT(tr__sys_recv(s, buf, sizeof buf, 0) == 0);
    CU_ASSERT(tr__sys_close(s) == 0);
    CU_ASSERT(tr__sys_close(l) == 0);
    CU_ASSERT(tr__sys_close(l) == -1 && errno == EBADF);
    world_end();
}

static void test_refused(void)
{
    world(2, "latency=50:50");
    int c = sim_socket(SOCK_STREAM);
    struct sockaddr_in a = addr_of("127.0.0.1", 7001);
    uint64_t t0 = tr__now_ns();
    CU_ASSERT(tr__sys_connect(c, (struct sockaddr *)&a, sizeof a) == -1 && errno == EINPROGRESS);
    CU_ASSERT(tr__sys_connect(c, (struct sockaddr *)&a, sizeof a) == -1 && errno == EALREADY);
    CU_ASSERT(wait_for(c, EPOLLERR) != 0);
    CU_ASSERT(tr__now_ns() == t0 + 100 * US); /* there and back, 50 us each */
    int err = 0;
    socklen_t len = sizeof err;
    CU_ASSERT(tr__sys_getsockopt(c, SOL_SOCKET, SO_ERROR, &err, &len) == 0);
    CU_ASSERT(err == ECONNREFUSED);
    tr_sim_stats st;
    tr_sim_stats_get(&st);
    CU_ASSERT(st.tcp_refused == 1 && st.tcp_connects == 0);
    CU_ASSERT(tr__sys_close(c) == 0);
    world_end();
}

static void test_bounded_buffer(void)
{
    world(3, "buffer=1000,latency=10:20");
    int l = sim_listener(7002), c, s;
    sim_pair(l, 7002, &c, &s);
    char big[1500], buf[1500];
    memset(big, 'b', sizeof big);
    CU_ASSERT(tr__sys_send(c, big, 600, MSG_NOSIGNAL) == 600);
    CU_ASSERT(tr__sys_send(c, big, 600, MSG_NOSIGNAL) == 400); /* what is left of 1000 */
    CU_ASSERT(tr__sys_send(c, big, 600, MSG_NOSIGNAL) == -1 && errno == EAGAIN);
    seen[c - TR__SIM_FD_FIRST] = 0;
    run_for(SEC); /* everything arrives; the reader does not read */
    CU_ASSERT(tr__sys_send(c, big, 1, MSG_NOSIGNAL) == -1 && errno == EAGAIN);
    CU_ASSERT((seen[c - TR__SIM_FD_FIRST] & EPOLLOUT) == 0);
    CU_ASSERT(tr__sys_recv(s, buf, 100, 0) == 100); /* 100 free: below a quarter */
    poll_once();
    CU_ASSERT((seen[c - TR__SIM_FD_FIRST] & EPOLLOUT) == 0);
    CU_ASSERT(tr__sys_recv(s, buf, 500, 0) == 500); /* now 600 free */
    CU_ASSERT(wait_for(c, EPOLLOUT) != 0);
    CU_ASSERT(tr__sys_send(c, big, sizeof big, MSG_NOSIGNAL) == 600);
    run_for(SEC);
    CU_ASSERT(drain(s, buf, sizeof buf) == 1000);
    CU_ASSERT(tr__sys_close(c) == 0);
    CU_ASSERT(tr__sys_close(s) == 0);
    CU_ASSERT(tr__sys_close(l) == 0);
    world_end();
}

/* A v6 listener on [::1]:port, a client connected to it and the
 * server's end. */
static void v6_pair(uint16_t port, int *listener, int *client, int *server)
{
    int l = watch(tr__sys_socket(AF_INET6, SOCK_STREAM | SOCK_NONBLOCK, 0));
    struct sockaddr_in6 a6 = {.sin6_family = AF_INET6, .sin6_port = htons(port)};
    inet_pton(AF_INET6, "::1", &a6.sin6_addr);
    CU_ASSERT_FATAL(tr__sys_bind(l, (struct sockaddr *)&a6, sizeof a6) == 0);
    CU_ASSERT_FATAL(tr__sys_listen(l, 4) == 0);
    int c = watch(tr__sys_socket(AF_INET6, SOCK_STREAM | SOCK_NONBLOCK, 0));
    CU_ASSERT(tr__sys_connect(c, (struct sockaddr *)&a6, sizeof a6) == -1 && errno == EINPROGRESS);
    CU_ASSERT_FATAL(wait_for(l, EPOLLIN) != 0);
    struct sockaddr_in6 peer;
    socklen_t plen = sizeof peer;
    int s = watch(tr__sys_accept4(l, (struct sockaddr *)&peer, &plen, SOCK_NONBLOCK | SOCK_CLOEXEC));
    CU_ASSERT(plen == sizeof peer && peer.sin6_family == AF_INET6 &&
              memcmp(&peer.sin6_addr, &a6.sin6_addr, 16) == 0);
    CU_ASSERT_FATAL(wait_for(c, EPOLLOUT) != 0);
    *listener = l;
    *client = c;
    *server = s;
}

/* Many writes with a wide latency spread: the bytes still arrive in order,
 * and a v6 listener works alike. */
static void test_stream_order_v6(void)
{
    world(9, "latency=1:5000,buffer=100000");
    int l, c, s;
    v6_pair(7010, &l, &c, &s);
    unsigned char out[4000], in[4000];
    for (size_t i = 0; i < sizeof out; i++)
        out[i] = (unsigned char)(i * 7);
    for (size_t at = 0; at < sizeof out; at += 10) {
        CU_ASSERT(tr__sys_send(c, out + at, 10, 0) == 10);
        run_for(500); /* half a microsecond between writes: latencies overlap */
    }
    run_for(SEC);
    CU_ASSERT(drain(s, (char *)in, sizeof in) == sizeof in);
    CU_ASSERT(memcmp(in, out, sizeof in) == 0);
    CU_ASSERT(tr__sys_close(c) == 0 && tr__sys_close(s) == 0 && tr__sys_close(l) == 0);
    world_end();
}

/* Partitions name v6 endpoints as "::1" (every port) and "[::1]:PORT":
 * a one-way cut from the client's endpoint holds its words and lets the
 * server's through until it heals; a cut of 127.0.0.1 leaves ::1 alone;
 * a cut of the host ::1 holds both ways. Malformed v6 specs are refused. */
static void test_partition_v6(void)
{
    world(10, NULL);
    int l, c, s;
    v6_pair(7011, &l, &c, &s);
    char ce[64], buf[64];
    snprintf(ce, sizeof ce, "[::1]:%u", port_of(c, false));
    CU_ASSERT(tr_sim_partition(ce, "[::1]:7011", 1, 0) == 0);
    CU_ASSERT(tr__sys_send(c, "up", 2, MSG_NOSIGNAL) == 2);
    CU_ASSERT(tr__sys_send(s, "down", 4, MSG_NOSIGNAL) == 4);
    CU_ASSERT(wait_for(c, EPOLLIN) != 0 && drain(c, buf, sizeof buf) == 4);
    run_for(SEC);
    CU_ASSERT(drain(s, buf, sizeof buf) == 0);
    tr_sim_heal();
    CU_ASSERT(wait_for(s, EPOLLIN) != 0 && drain(s, buf, sizeof buf) == 2);

    CU_ASSERT(tr_sim_partition("127.0.0.1", "127.0.0.1", 0, 0) == 0);
    CU_ASSERT(tr__sys_send(c, "v6", 2, MSG_NOSIGNAL) == 2);
    CU_ASSERT(wait_for(s, EPOLLIN) != 0 && drain(s, buf, sizeof buf) == 2);
    tr_sim_heal();

    CU_ASSERT(tr_sim_partition("::1", "::1", 0, SEC) == 0);
    CU_ASSERT(tr__sys_send(c, "a", 1, MSG_NOSIGNAL) == 1);
    CU_ASSERT(tr__sys_send(s, "b", 1, MSG_NOSIGNAL) == 1);
    run_for(SEC / 2);
    CU_ASSERT(drain(s, buf, sizeof buf) == 0 && drain(c, buf, sizeof buf) == 0);
    CU_ASSERT(wait_for(s, EPOLLIN) != 0 && drain(s, buf, sizeof buf) == 1);
    CU_ASSERT(wait_for(c, EPOLLIN) != 0 && drain(c, buf, sizeof buf) == 1);

    const char *bad[] = {"[::1", "[::1]x", "[::1]:", "[::1]:0", "[::1]:65536", "::g", "[]:80"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        TT_EQ(tr_sim_partition(bad[i], "::1", 0, 0), TR_EINVAL);
    CU_ASSERT(tr__sys_close(c) == 0 && tr__sys_close(s) == 0 && tr__sys_close(l) == 0);
    world_end();
}

static void test_half_close(void)
{
    world(4, NULL);
    int l = sim_listener(7003), c, s;
    sim_pair(l, 7003, &c, &s);
    char buf[64];
    CU_ASSERT(tr__sys_send(c, "abc", 3, MSG_NOSIGNAL) == 3);
    CU_ASSERT(tr__sys_shutdown(c, SHUT_WR) == 0);
    CU_ASSERT(tr__sys_send(c, "d", 1, MSG_NOSIGNAL) == -1 && errno == EPIPE);
    CU_ASSERT(wait_for(s, EPOLLRDHUP) != 0);
    CU_ASSERT(tr__sys_recv(s, buf, sizeof buf, 0) == 3 && memcmp(buf, "abc", 3) == 0);
    CU_ASSERT(tr__sys_recv(s, buf, sizeof buf, 0) == 0); /* EOF after the data */
    CU_ASSERT(tr__sys_send(s, "xyz", 3, MSG_NOSIGNAL) == 3); /* the other way still works */
    CU_ASSERT(wait_for(c, EPOLLIN) != 0);
    CU_ASSERT(tr__sys_recv(c, buf, sizeof buf, 0) == 3 && memcmp(buf, "xyz", 3) == 0);
    CU_ASSERT(tr__sys_close(s) == 0);
    CU_ASSERT(wait_for(c, EPOLLHUP) != 0);
    CU_ASSERT(tr__sys_recv(c, buf, sizeof buf, 0) == 0);
    CU_ASSERT(tr__sys_close(c) == 0);
    CU_ASSERT(tr__sys_close(l) == 0);
    tr_sim_stats st;
    tr_sim_stats_get(&st);
    CU_ASSERT(st.tcp_resets == 0);
    world_end();
}

static void test_reset(void)
{
    world(5, NULL);
    int l = sim_listener(7004), c, s;
    sim_pair(l, 7004, &c, &s);
    char buf[64];
    CU_ASSERT(tr__sys_send(c, "unread", 6, MSG_NOSIGNAL) == 6);
    CU_ASSERT(wait_for(s, EPOLLIN) != 0);
    CU_ASSERT(tr__sys_close(s) == 0); /* with input unread: a reset */
    CU_ASSERT(wait_for(c, EPOLLERR) != 0);
    CU_ASSERT(tr__sys_recv(c, buf, sizeof buf, 0) == -1 && errno == ECONNRESET);
    CU_ASSERT(tr__sys_send(c, "x", 1, MSG_NOSIGNAL) == -1 && errno == EPIPE);
    CU_ASSERT(tr__sys_close(c) == 0);

    /* SO_LINGER 0 resets too, with nothing unread. */
    sim_pair(l, 7004, &c, &s);
    struct linger lg = {.l_onoff = 1, .l_linger = 0};
    CU_ASSERT(tr__sys_setsockopt(c, SOL_SOCKET, SO_LINGER, &lg, sizeof lg) == 0);
    CU_ASSERT(tr__sys_close(c) == 0);
    CU_ASSERT(wait_for(s, EPOLLERR) != 0);
    int err = 0;
    socklen_t len = sizeof err;
    CU_ASSERT(tr__sys_getsockopt(s, SOL_SOCKET, SO_ERROR, &err, &len) == 0 && err == ECONNRESET);
    CU_ASSERT(tr__sys_recv(s, buf, sizeof buf, 0) == 0);
    CU_ASSERT(tr__sys_close(s) == 0);

    /* A client gone before the SYN-ACK: the server's end hears a reset. */
    c = sim_socket(SOCK_STREAM);
    struct sockaddr_in a = addr_of("127.0.0.1", 7004);
    CU_ASSERT(tr__sys_connect(c, (struct sockaddr *)&a, sizeof a) == -1 && errno == EINPROGRESS);
    CU_ASSERT_FATAL(wait_for(l, EPOLLIN) != 0);
    CU_ASSERT(tr__sys_close(c) == 0);
    s = watch(tr__sys_accept4(l, NULL, NULL, 0));
    CU_ASSERT(wait_for(s, EPOLLERR) != 0);
    CU_ASSERT(tr__sys_recv(s, buf, sizeof buf, 0) == -1 && errno == ECONNRESET);
    CU_ASSERT(tr__sys_close(s) == 0);
    CU_ASSERT(tr__sys_close(l) == 0);
    tr_sim_stats st;
    tr_sim_stats_get(&st);
    CU_ASSERT(st.tcp_resets == 3 && st.tcp_connects == 3);
    world_end();
}

/* Sends n numbered datagrams from a to b and reads them all: what arrived,
 * how many twice, and how many arrived after one numbered higher. */
struct udp_seen {
    unsigned received, twice, late;
};

static struct udp_seen udp_run(unsigned n, tr_sim_stats *st)
{
    int a = sim_socket(SOCK_DGRAM), b = sim_socket(SOCK_DGRAM);
    struct sockaddr_in ba = addr_of("127.0.0.1", 9000), aa = addr_of("127.0.0.1", 0);
    CU_ASSERT_FATAL(tr__sys_bind(b, (struct sockaddr *)&ba, sizeof ba) == 0);
    CU_ASSERT_FATAL(tr__sys_bind(a, (struct sockaddr *)&aa, sizeof aa) == 0);
    static unsigned char count[4096];
    memset(count, 0, sizeof count);
    struct udp_seen r = {0};
    uint32_t highest = 0;
    for (uint32_t i = 1; i <= n; i++) {
        CU_ASSERT(tr__sys_sendto(a, &i, sizeof i, MSG_NOSIGNAL, (struct sockaddr *)&ba,
                                 sizeof ba) == (ssize_t)sizeof i);
        if (i % 8 == 0)
            run_for(100 * US); /* some still in flight, some landed */
    }
    run_for(SEC);
    uint32_t v;
    struct sockaddr_in from;
    socklen_t flen = sizeof from;
    while (tr__sys_recvfrom(b, &v, sizeof v, 0, (struct sockaddr *)&from, &flen) == sizeof v) {
        CU_ASSERT(v >= 1 && v <= n && ntohs(from.sin_port) == port_of(a, false));
        if (v >= sizeof count)
            continue; /* (asserted above) */
        r.received++;
        r.twice += count[v]++ == 1;
        r.late += v < highest;
        highest = v > highest ? v : highest;
    }
    CU_ASSERT(tr__sys_close(a) == 0 && tr__sys_close(b) == 0);
    tr_sim_stats_get(st);
    return r;
}

static void test_udp_plan(void)
{
    tr_sim_stats st;
    world(6, "loss=0.1,dup=0.1,reorder=0.2,latency=20:200");
    struct udp_seen r = udp_run(4000, &st);
    CU_ASSERT(st.udp_sent == 4000);
    CU_ASSERT(st.udp_lost > 0 && st.udp_duplicated > 0 && st.udp_reordered > 0);
    CU_ASSERT(r.received == st.udp_sent - st.udp_lost + st.udp_duplicated);
    CU_ASSERT(r.twice <= st.udp_duplicated);
    CU_ASSERT(r.late > 0);
    world_end();

    /* Nothing asked: none lost, none twice, all in order. */
    world(6, "latency=20:200");
    r = udp_run(4000, &st);
    CU_ASSERT(r.received == 4000 && r.twice == 0 && r.late == 0);
    CU_ASSERT(st.udp_lost == 0 && st.udp_duplicated == 0 && st.udp_reordered == 0);
    world_end();
}

static char *endpoint(int fd, char *buf, size_t cap)
{
    snprintf(buf, cap, "127.0.0.1:%u", port_of(fd, false));
    return buf;
}

static void test_partition(void)
{
    world(7, "rto=5");
    int l = sim_listener(7005), c, s;
    sim_pair(l, 7005, &c, &s);
    char ce[32], buf[64];
    /* Symmetric: nothing either way until it heals; then all of it. */
    CU_ASSERT(tr_sim_partition("127.0.0.1:7005", endpoint(c, ce, sizeof ce), 0, 0) == 0);
    CU_ASSERT(tr__sys_send(c, "ping", 4, MSG_NOSIGNAL) == 4);
    CU_ASSERT(tr__sys_send(s, "pong", 4, MSG_NOSIGNAL) == 4);
    run_for(2 * SEC);
    CU_ASSERT(drain(s, buf, sizeof buf) == 0 && drain(c, buf, sizeof buf) == 0);
    tr_sim_heal();
    CU_ASSERT(wait_for(s, EPOLLIN) != 0 && drain(s, buf, sizeof buf) == 4);
    CU_ASSERT(wait_for(c, EPOLLIN) != 0 && drain(c, buf, sizeof buf) == 4);

    /* One way: the client's words are held, the server's arrive. */
    CU_ASSERT(tr_sim_partition(endpoint(c, ce, sizeof ce), "127.0.0.1", 1, 3 * SEC) == 0);
    uint64_t t0 = tr__now_ns();
    CU_ASSERT(tr__sys_send(c, "up", 2, MSG_NOSIGNAL) == 2);
    CU_ASSERT(tr__sys_send(s, "down", 4, MSG_NOSIGNAL) == 4);
    CU_ASSERT(wait_for(c, EPOLLIN) != 0 && drain(c, buf, sizeof buf) == 4);
    CU_ASSERT(drain(s, buf, sizeof buf) == 0);
    CU_ASSERT(wait_for(s, EPOLLIN) != 0); /* healed by itself after 3 s */
    CU_ASSERT(tr__now_ns() >= t0 + 3 * SEC);
    CU_ASSERT(drain(s, buf, sizeof buf) == 2);

    /* Cut past rto (5 s): both ends reset. */
    CU_ASSERT(tr_sim_partition("127.0.0.1:7005", endpoint(c, ce, sizeof ce), 0, 0) == 0);
    CU_ASSERT(tr__sys_send(c, "lost", 4, MSG_NOSIGNAL) == 4);
    t0 = tr__now_ns();
    CU_ASSERT(wait_for(c, EPOLLERR) != 0);
    CU_ASSERT(tr__now_ns() >= t0 + 5 * SEC);
    CU_ASSERT(wait_for(s, EPOLLERR) != 0);
    CU_ASSERT(tr__sys_recv(c, buf, sizeof buf, 0) == -1 && errno == ECONNRESET);
    CU_ASSERT(tr__sys_recv(s, buf, sizeof buf, 0) == -1 && errno == ECONNRESET);
    tr_sim_stats st;
    tr_sim_stats_get(&st);
    CU_ASSERT(st.tcp_resets == 1);

    /* UDP across a partition is lost, and counted. */
    CU_ASSERT(tr_sim_partition("127.0.0.1:9100", "127.0.0.1", 0, 0) == 0);
    int u = sim_socket(SOCK_DGRAM);
    struct sockaddr_in to = addr_of("127.0.0.1", 9100);
    CU_ASSERT(tr__sys_sendto(u, "x", 1, 0, (struct sockaddr *)&to, sizeof to) == 1);
    tr_sim_stats_get(&st);
    CU_ASSERT(st.udp_sent == 1 && st.udp_lost == 1);
    tr_sim_heal();
    CU_ASSERT(tr_sim_partition("127.0.0.1:x", "127.0.0.1", 0, 0) == TR_EINVAL);
    CU_ASSERT(tr_sim_partition("", "127.0.0.1", 0, 0) == TR_EINVAL);
    CU_ASSERT(tr_sim_partition("localhost", "127.0.0.1", 0, 0) == TR_EINVAL);
    CU_ASSERT(tr__sys_close(u) == 0 && tr__sys_close(c) == 0 && tr__sys_close(s) == 0);
    CU_ASSERT(tr__sys_close(l) == 0);
    world_end();
    CU_ASSERT(tr_sim_partition("127.0.0.1", "127.0.0.2", 0, 0) == TR_EINVAL); /* not simulating */
}

/* A connect whose allocations fail (the connection, a heap slot, the
 * SYN): -1 with ENOMEM, nothing planned, nothing left to leak, and the
 * same socket connects once memory is back; the bytes then flow. Every
 * allocation the connect makes is failed in turn. */
static void test_connect_without_memory(void)
{
    world(12, NULL);
    int l = sim_listener(7012);
    tt_alloc_fail(ULONG_MAX, 0); /* count what one connect allocates */
    int probe = sim_socket(SOCK_STREAM);
    struct sockaddr_in a = addr_of("127.0.0.1", 7012);
    CU_ASSERT(tr__sys_connect(probe, (struct sockaddr *)&a, sizeof a) == -1 && errno == EINPROGRESS);
    unsigned long allocs = tt_alloc_seen();
    tt_alloc_fail(0, 0);
    CU_ASSERT_FATAL(allocs >= 2 && allocs < 50);
    CU_ASSERT(tr__sys_close(probe) == 0);
    run_for(SEC);
    unsigned long refused = 0;
    for (unsigned long k = 1; k <= allocs; k++) {
        int c = sim_socket(SOCK_STREAM);
        tt_alloc_fail(k, 1);
        errno = 0;
        int rc = tr__sys_connect(c, (struct sockaddr *)&a, sizeof a);
        int err = errno;
        bool failed = tt_alloc_failed() == 1;
        tt_alloc_fail(0, 0);
        CU_ASSERT(rc == -1);
        if (failed && err == ENOMEM) {
            refused++;
            CU_ASSERT(tr__simnet_next_ns() == UINT64_MAX); /* no SYN on its way */
            CU_ASSERT(tr__sys_connect(c, (struct sockaddr *)&a, sizeof a) == -1 &&
                      errno == EINPROGRESS);
        } else {
            TT_EQ(err, EINPROGRESS); /* that allocation was not the connect's to need */
        }
        CU_ASSERT_FATAL(wait_for(l, EPOLLIN) != 0);
        int s = watch(tr__sys_accept4(l, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC));
        CU_ASSERT_FATAL(wait_for(c, EPOLLOUT) != 0);
        char buf[8];
        CU_ASSERT(tr__sys_send(c, "k", 1, MSG_NOSIGNAL) == 1);
        CU_ASSERT(wait_for(s, EPOLLIN) != 0 && drain(s, buf, sizeof buf) == 1);
        CU_ASSERT(tr__sys_close(c) == 0 && tr__sys_close(s) == 0);
        run_for(SEC);
    }
    CU_ASSERT(refused >= 2);
    printf("[%lu allocations, %lu of them refused the connect] ", allocs, refused);
    CU_ASSERT(tr__sys_close(l) == 0);
    world_end();
}

/* A little of everything; returns the trace hash. */
static uint64_t scenario(uint64_t seed)
{
    world(seed, "loss=0.1,dup=0.1,reorder=0.1");
    int l = sim_listener(7006), c, s;
    sim_pair(l, 7006, &c, &s);
    char buf[256];
    for (int i = 0; i < 50; i++) {
        CU_ASSERT(tr__sys_send(c, buf, sizeof buf, MSG_NOSIGNAL) == (ssize_t)sizeof buf);
        CU_ASSERT(wait_for(s, EPOLLIN) != 0);
        drain(s, buf, sizeof buf);
    }
    tr_sim_stats st;
    udp_run(200, &st);
    CU_ASSERT(tr__sys_close(c) == 0 && tr__sys_close(s) == 0 && tr__sys_close(l) == 0);
    uint64_t h = tr_sim_hash();
    world_end();
    return h;
}

static void test_determinism(void)
{
    uint64_t a = scenario(11), b = scenario(11), c = scenario(12);
    CU_ASSERT(a == b);
    CU_ASSERT(a != c);
}

/* A seed that switches the asked fault site on (the seed decides). */
static void world_with_fault(const char *site, uint32_t bit)
{
    char opts[96];
    snprintf(opts, sizeof opts, "faults=%s,fault_p=1", site);
    for (uint64_t seed = 100; seed < 200; seed++) {
        world(seed, opts);
        if (tr__sim.faults & bit)
            return;
        world_end();
    }
    CU_FAIL_FATAL("no seed switched the fault on");
}

static void test_faults(void)
{
    /* Every connect refused, although a listener is there. */
    world_with_fault("connect", 1u << TR__FAULT_CONNECT);
    int l = sim_listener(7007);
    int c = sim_socket(SOCK_STREAM);
    struct sockaddr_in a = addr_of("127.0.0.1", 7007);
    CU_ASSERT(tr__sys_connect(c, (struct sockaddr *)&a, sizeof a) == -1 && errno == EINPROGRESS);
    CU_ASSERT(wait_for(c, EPOLLERR) != 0);
    int err = 0;
    socklen_t len = sizeof err;
    CU_ASSERT(tr__sys_getsockopt(c, SOL_SOCKET, SO_ERROR, &err, &len) == 0 && err == ECONNREFUSED);
    CU_ASSERT(tr__sys_close(c) == 0 && tr__sys_close(l) == 0);
    world_end();

    /* Writes cut short. */
    world_with_fault("short_write", 1u << TR__FAULT_SHORT_WRITE);
    l = sim_listener(7008);
    int s;
    sim_pair(l, 7008, &c, &s);
    char buf[1000] = {0};
    ssize_t n = tr__sys_send(c, buf, sizeof buf, MSG_NOSIGNAL);
    CU_ASSERT(n >= 1 && n < (ssize_t)sizeof buf);
    run_for(SEC);
    CU_ASSERT(drain(s, buf, sizeof buf) == (size_t)n);
    CU_ASSERT(tr__sys_close(c) == 0 && tr__sys_close(s) == 0 && tr__sys_close(l) == 0);
    world_end();

    /* A connection reset within its first 8 data deliveries. */
    world_with_fault("reset", 1u << TR__FAULT_RESET);
    l = sim_listener(7009);
    sim_pair(l, 7009, &c, &s);
    int sent = 0;
    err = 0;
    for (; sent < 20; sent++) {
        if (tr__sys_send(c, "x", 1, MSG_NOSIGNAL) != 1) {
            err = errno;
            break;
        }
        run_for(SEC);
    }
    CU_ASSERT(sent >= 1 && sent <= 8 && err == ECONNRESET);
    CU_ASSERT(wait_for(c, EPOLLERR) != 0);
    CU_ASSERT(wait_for(s, EPOLLERR) != 0);
    tr_sim_stats st;
    tr_sim_stats_get(&st);
    CU_ASSERT(st.tcp_resets == 1 && st.faults >= 1);
    CU_ASSERT(tr__sys_close(c) == 0 && tr__sys_close(s) == 0 && tr__sys_close(l) == 0);
    world_end();
}

static void test_descriptors(void)
{
    world(8, NULL);
    int a = sim_socket(SOCK_STREAM), b = sim_socket(SOCK_DGRAM);
    CU_ASSERT(a == TR__SIM_FD_FIRST && b == TR__SIM_FD_FIRST + 1);
    CU_ASSERT(tr__sys_close(a) == 0);
    int c = sim_socket(SOCK_STREAM);
    CU_ASSERT(c == a); /* the lowest free number again */
    struct sockaddr_in x = addr_of("10.1.2.3", 5000);
    CU_ASSERT(tr__sys_bind(c, (struct sockaddr *)&x, sizeof x) == 0);
    int d = sim_socket(SOCK_STREAM);
    CU_ASSERT(tr__sys_bind(d, (struct sockaddr *)&x, sizeof x) == -1 && errno == EADDRINUSE);
    struct sockaddr_in6 six = {.sin6_family = AF_INET6};
    CU_ASSERT(tr__sys_bind(d, (struct sockaddr *)&six, sizeof six) == -1 && errno == EAFNOSUPPORT);
    CU_ASSERT(tr__sys_bind(d, (struct sockaddr *)&x, 4) == -1 && errno == EINVAL);
    int one = 1;
    CU_ASSERT(tr__sys_setsockopt(d, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) == 0);
    CU_ASSERT(tr__sys_setsockopt(d, SOL_SOCKET, SO_REUSEADDR, &one, 2) == -1 && errno == EINVAL);
    CU_ASSERT(tr__sys_setsockopt(d, SOL_SOCKET, 9999, &one, sizeof one) == -1 &&
              errno == ENOPROTOOPT);
    CU_ASSERT(tr__sys_recv(d, &one, 1, 0) == -1 && errno == ENOTCONN);
    CU_ASSERT(tr__sys_recv(TR__SIM_FD_FIRST + 40, &one, 1, 0) == -1 && errno == EBADF);
    CU_ASSERT(tr__sys_socket(AF_INET, SOCK_RAW, 0) == -1);
    CU_ASSERT(tr__sys_close(b) == 0 && tr__sys_close(c) == 0 && tr__sys_close(d) == 0);
    world_end();
}

/* An option call's outcome: return, errno, the value read (an int or
 * the first two ints of a struct) and the length written back. */
typedef struct {
    int rc, err;
    int v[2];
    socklen_t len;
} opt_result;

/* getsockopt (into v, from -1s), or setsockopt of {v0, v1}. */
static opt_result opt_call(int fd, bool set, int level, int name, int v0, int v1, socklen_t len)
{
    opt_result r = {.v = {set ? v0 : -1, set ? v1 : -1}, .len = len};
    errno = 0;
    r.rc = set ? tr__sys_setsockopt(fd, level, name, r.v, len)
               : tr__sys_getsockopt(fd, level, name, r.v, &r.len);
    r.err = r.rc != 0 ? errno : 0;
    return r;
}

static bool same_result(const char *what, opt_result linux, opt_result sim)
{
    if (linux.rc == sim.rc && linux.err == sim.err && linux.v[0] == sim.v[0] &&
        linux.v[1] == sim.v[1] && linux.len == sim.len)
        return true;
    printf("\n  %s: linux rc %d errno %d value %d,%d len %u; sim rc %d errno %d value %d,%d "
           "len %u",
           what, linux.rc, linux.err, linux.v[0], linux.v[1], (unsigned)linux.len, sim.rc, sim.err,
           sim.v[0], sim.v[1], (unsigned)sim.len);
    return false;
}

/* The socket options the simulator answers, answered as Linux answers
 * them: the same calls, in the same order, on a real TCP socket and on a
 * simulated one give the same return, errno, value and length —
 * lengths short of the option included (Linux copies what fits). */
static void test_socket_options_as_linux(void)
{
    world(9, NULL);
    int fds[2] = {socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0),
                  sim_socket(SOCK_STREAM)};
    CU_ASSERT_FATAL(fds[0] >= 0 && fds[0] < TR__SIM_FD_FIRST);
    const int I = (int)sizeof(int), L = (int)sizeof(struct linger);
    const struct {
        const char *what;
        bool set, listen_first;
        int level, name, v0, v1, len;
    } steps[] = {
        {"type", false, false, SOL_SOCKET, SO_TYPE, 0, 0, I},
        {"type, 2 bytes", false, false, SOL_SOCKET, SO_TYPE, 0, 0, 2},
        {"type, 0 bytes", false, false, SOL_SOCKET, SO_TYPE, 0, 0, 0},
        {"domain", false, false, SOL_SOCKET, SO_DOMAIN, 0, 0, I},
        {"error", false, false, SOL_SOCKET, SO_ERROR, 0, 0, I},
        {"acceptconn", false, false, SOL_SOCKET, SO_ACCEPTCONN, 0, 0, I},
        {"reuseaddr 0", false, false, SOL_SOCKET, SO_REUSEADDR, 0, 0, I},
        {"set reuseaddr", true, false, SOL_SOCKET, SO_REUSEADDR, 1, 0, I},
        {"set reuseaddr, 2 bytes", true, false, SOL_SOCKET, SO_REUSEADDR, 1, 0, 2},
        {"reuseaddr 1", false, false, SOL_SOCKET, SO_REUSEADDR, 0, 0, I},
        {"nodelay 0", false, false, IPPROTO_TCP, TCP_NODELAY, 0, 0, I},
        {"set nodelay", true, false, IPPROTO_TCP, TCP_NODELAY, 7, 0, I},
        {"nodelay 1", false, false, IPPROTO_TCP, TCP_NODELAY, 0, 0, I},
        {"keepalive 0", false, false, SOL_SOCKET, SO_KEEPALIVE, 0, 0, I},
        {"set keepalive", true, false, SOL_SOCKET, SO_KEEPALIVE, 1, 0, I},
        {"keepalive 1", false, false, SOL_SOCKET, SO_KEEPALIVE, 0, 0, I},
        {"linger off", false, false, SOL_SOCKET, SO_LINGER, 0, 0, L},
        {"set linger 5 s", true, false, SOL_SOCKET, SO_LINGER, 1, 5, L},
        {"linger 5 s", false, false, SOL_SOCKET, SO_LINGER, 0, 0, L},
        {"linger, 4 bytes", false, false, SOL_SOCKET, SO_LINGER, 0, 0, I},
        {"set linger 0", true, false, SOL_SOCKET, SO_LINGER, 1, 0, L},
        {"linger 0", false, false, SOL_SOCKET, SO_LINGER, 0, 0, L},
        {"set linger off, 9 s", true, false, SOL_SOCKET, SO_LINGER, 0, 9, L},
        {"linger off, 0 s", false, false, SOL_SOCKET, SO_LINGER, 0, 0, L},
        {"set linger 3 s", true, false, SOL_SOCKET, SO_LINGER, 1, 3, L},
        {"set linger off, 9 s again", true, false, SOL_SOCKET, SO_LINGER, 0, 9, L},
        {"linger off, 3 s", false, false, SOL_SOCKET, SO_LINGER, 0, 0, L},
        {"set linger, 4 bytes", true, false, SOL_SOCKET, SO_LINGER, 1, 0, I},
        {"set an unknown option", true, false, SOL_SOCKET, 9999, 1, 0, I},
        {"an unknown option", false, false, SOL_SOCKET, 9999, 0, 0, I},
        {"acceptconn listening", false, true, SOL_SOCKET, SO_ACCEPTCONN, 0, 0, I},
    };
    bool listening = false;
    for (size_t i = 0; i < sizeof steps / sizeof steps[0]; i++) {
        if (steps[i].listen_first && !listening) {
            struct sockaddr_in real = addr_of("127.0.0.1", 0), sim = addr_of("127.0.0.1", 4100);
            CU_ASSERT_FATAL(bind(fds[0], (struct sockaddr *)&real, sizeof real) == 0);
            CU_ASSERT_FATAL(tr__sys_bind(fds[1], (struct sockaddr *)&sim, sizeof sim) == 0);
            CU_ASSERT_FATAL(listen(fds[0], 4) == 0 && tr__sys_listen(fds[1], 4) == 0);
            listening = true;
        }
        opt_result r[2];
        for (int k = 0; k < 2; k++)
            r[k] = opt_call(fds[k], steps[i].set, steps[i].level, steps[i].name, steps[i].v0,
                            steps[i].v1, (socklen_t)steps[i].len);
        CU_ASSERT(same_result(steps[i].what, r[0], r[1]));
    }
    /* No value, or no length: EFAULT. */
    socklen_t len = sizeof(int);
    for (int k = 0; k < 2; k++) {
        errno = 0;
        CU_ASSERT(tr__sys_getsockopt(fds[k], SOL_SOCKET, SO_TYPE, NULL, &len) == -1 &&
                  errno == EFAULT);
        int v;
        errno = 0;
        CU_ASSERT(tr__sys_getsockopt(fds[k], SOL_SOCKET, SO_TYPE, &v, NULL) == -1 &&
                  errno == EFAULT);
    }
    close(fds[0]);
    CU_ASSERT(tr__sys_close(fds[1]) == 0);
    world_end();
}

void register_simnet_tests(void)
{
    CU_pSuite s = tt_suite("simnet");
    tt_test(s, "connect_accept_echo_no_sooner_than_the_latency", test_echo_latency);
    tt_test(s, "connect_without_listener_refused_after_a_round_trip", test_refused);
    tt_test(s, "bounded_buffer_partial_then_eagain_then_writable", test_bounded_buffer);
    tt_test(s, "stream_bytes_in_order_despite_latency_spread_v6", test_stream_order_v6);
    tt_test(s, "half_close_gives_eof_after_the_data", test_half_close);
    tt_test(s, "close_with_unread_input_or_linger0_resets_the_peer", test_reset);
    tt_test(s, "udp_loss_dup_reorder_match_the_stats_and_the_receiver", test_udp_plan);
    tt_test(s, "partitions_hold_heal_and_reset_past_rto", test_partition);
    tt_test(s, "partitions_of_v6_endpoints", test_partition_v6);
    tt_test(s, "connect_without_memory_fails_cleanly", test_connect_without_memory);
    tt_test(s, "same_seed_same_trace_hash", test_determinism);
    tt_test(s, "faults_refuse_cut_short_and_reset", test_faults);
    tt_test(s, "descriptors_lowest_first_and_bad_arguments", test_descriptors);
    tt_test(s, "socket_options_answered_as_linux_answers", test_socket_options_as_linux);
}
