/* test_udp.c — UDP actors (tr_udp_open): datagrams echoed to their sender,
 * the largest IPv4 datagram, tr_udp_close, a port already taken; and
 * examples/udp-echo run as a program.
 *
 * The helpers, and how every network test runs its server and clients:
 * net_util.h. */
#include <fcntl.h>

#include "net_util.h"

struct ustats {
    atomic_long datagrams, bytes, bad_from, send_failed;
    atomic_long max_len;
    struct sockaddr_in clients[2];
};

struct ustate {
    struct ustats *st;
};

static void udp_echo(tr_ctx *cx, void *state, const tr_msg *m)
{
    struct ustate *us = state;
    struct ustats *st = us->st;
    if (m->type != TR_UDP_DATAGRAM)
        return;
    const tr_udp_datagram *d = (const tr_udp_datagram *)m->data;
    TT_CHECK(m->len == sizeof *d + d->len);
    const struct sockaddr_in *from = (const struct sockaddr_in *)&d->from;
    bool known = false;
    for (int i = 0; i < 2; i++)
        known |= d->from.ss_family == AF_INET && d->from_len == sizeof(struct sockaddr_in) &&
                 from->sin_port == st->clients[i].sin_port &&
                 from->sin_addr.s_addr == st->clients[i].sin_addr.s_addr;
    if (!known)
        atomic_fetch_add(&st->bad_from, 1);
    atomic_fetch_add(&st->datagrams, 1);
    atomic_fetch_add(&st->bytes, (long)d->len);
    long cur = atomic_load(&st->max_len);
    while ((long)d->len > cur && !atomic_compare_exchange_weak(&st->max_len, &cur, (long)d->len))
        ;
    if (d->len == 5 && memcmp(d->data, "CLOSE", 5) == 0) {
        TT_CHECK(tr_udp_close(cx) == 0);
        TT_CHECK(tr_udp_send(cx, (const struct sockaddr *)&d->from, d->from_len, "x", 1) ==
                 TR_ENOTCONN);
        return;
    }
    if (tr_udp_send(cx, (const struct sockaddr *)&d->from, d->from_len, d->data, d->len) != 0)
        atomic_fetch_add(&st->send_failed, 1);
}

static int udp_client(struct sockaddr_in *self)
{
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    CU_ASSERT_FATAL(fd >= 0);
    set_timeouts(fd, 5);
    struct sockaddr_in a = loopback(0);
    CU_ASSERT_FATAL(bind(fd, (struct sockaddr *)&a, sizeof a) == 0);
    socklen_t len = sizeof *self;
    getsockname(fd, (struct sockaddr *)self, &len);
    return fd;
}

static bool udp_roundtrip(int fd, uint16_t port, uint64_t seed, size_t len)
{
    static unsigned char out[65536], in[65536];
    gen_fill(seed, 0, out, len);
    struct sockaddr_in to = loopback(port);
    if (sendto(fd, out, len, 0, (struct sockaddr *)&to, sizeof to) != (ssize_t)len)
        return false;
    struct sockaddr_in from;
    socklen_t flen = sizeof from;
    ssize_t r = recvfrom(fd, in, sizeof in, 0, (struct sockaddr *)&from, &flen);
    if (r != (ssize_t)len || from.sin_port != to.sin_port) {
        printf("\n    datagram of %zu bytes: %zd came back\n", len, r);
        return false;
    }
    return memcmp(in, out, len) == 0;
}

static void test_udp(void)
{
    struct ustats *st = calloc(1, sizeof *st);
    CU_ASSERT_FATAL(st != NULL);
    int c0 = udp_client(&st->clients[0]), c1 = udp_client(&st->clients[1]);
    tr_runtime *rt = tt_runtime(4, 0);
    struct ustate us = {.st = st};
    tr_udp_opts o = {.host = HOST, .port = 0,
                     .actor = {.behaviour = udp_echo, .state = &us, .state_size = sizeof us}};
    tr_pid pid = TR_PID_NONE;
    uint16_t port = 0;
    TT_EQ(tr_udp_open(tr_runtime_ctx(rt), &o, &pid, &port), 0);
    CU_ASSERT_FATAL(port != 0);
    CU_ASSERT(pid != TR_PID_NONE);
    CU_ASSERT_FATAL(tr_runtime_start(rt) == 0);
    long bytes = 0;
    int failed = 0;
    /* One datagram in flight at a time: loopback does not drop those. */
    for (int i = 0; i < 2000; i++) {
        size_t len = (size_t)(i * 37) % 1500; /* includes empty datagrams */
        if (!udp_roundtrip(i % 2 ? c1 : c0, port, (uint64_t)i, len))
            failed++;
        bytes += (long)len;
    }
    TT_EQ(failed, 0);
    TT_EQ(atomic_load(&st->datagrams), 2000);
    TT_EQ(atomic_load(&st->bytes), bytes);
    TT_EQ(atomic_load(&st->bad_from), 0);
    TT_EQ(atomic_load(&st->send_failed), 0);
    /* tr_udp_close: the actor ends, the runtime has nothing left to do. */
    struct sockaddr_in to = loopback(port);
    CU_ASSERT(sendto(c0, "CLOSE", 5, 0, (struct sockaddr *)&to, sizeof to) == 5);
    TT_EQ(tt_join_within(rt, WAIT_S), 0);
    TT_EQ(atomic_load(&st->datagrams), 2001);
    tr_runtime_destroy(rt);
    close(c0);
    close(c1);
    free(st);
    TT_NO_ERRORS();
}

/* The largest datagram UDP over IPv4 carries (65,507 bytes) arrives whole,
 * and goes back whole. */
static void test_udp_large(void)
{
    struct ustats *st = calloc(1, sizeof *st);
    CU_ASSERT_FATAL(st != NULL);
    int c0 = udp_client(&st->clients[0]);
    st->clients[1] = st->clients[0];
    int sz = 1 << 20;
    setsockopt(c0, SOL_SOCKET, SO_RCVBUF, &sz, sizeof sz);
    tr_runtime *rt = tt_runtime(2, 0);
    struct ustate us = {.st = st};
    tr_udp_opts o = {.host = HOST,
                     .actor = {.behaviour = udp_echo, .state = &us, .state_size = sizeof us}};
    uint16_t port = 0;
    TT_EQ(tr_udp_open(tr_runtime_ctx(rt), &o, NULL, &port), 0);
    CU_ASSERT_FATAL(tr_runtime_start(rt) == 0);
    static const size_t sizes[] = {8192, 32768, 65000, 65507};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        bool ok = udp_roundtrip(c0, port, 7 + i, sizes[i]);
        if (!ok)
            printf("\n    datagram of %zu bytes: largest seen by the actor %ld\n", sizes[i],
                   atomic_load(&st->max_len));
        CU_ASSERT(ok);
    }
    TT_EQ(atomic_load(&st->max_len), 65507);
    tr_runtime_shutdown(rt);
    tt_join_within(rt, WAIT_S);
    tr_runtime_destroy(rt);
    close(c0);
    free(st);
    TT_NO_ERRORS();
}

/* tr_udp_open on a port another socket holds fails at once with
 * -EADDRINUSE (net.h: as tr_tcp_listen), whoever holds it: a plain
 * socket, or a UDP actor of the same runtime — which must keep its
 * datagrams, not share its port with a second socket that would take
 * them — on the holder's address or on 0.0.0.0. A failure spawns nothing,
 * registers no name, closes its socket (the descriptor count is back
 * where it was) and frees what it made (ASan); the first actor echoes on,
 * and an open on a free port afterwards works, under the same name. */
static void test_udp_port_in_use(void)
{
    struct ustats *st = calloc(1, sizeof *st);
    CU_ASSERT_FATAL(st != NULL);
    int c0 = udp_client(&st->clients[0]), c1 = udp_client(&st->clients[1]);
    tr_runtime *rt = tt_runtime(2, 0);
    struct ustate us = {.st = st};
    tr_udp_opts o = {.host = HOST, .port = 0,
                     .actor = {.behaviour = udp_echo, .state = &us, .state_size = sizeof us}};
    uint16_t port = 0;
    TT_EQ(tr_udp_open(tr_runtime_ctx(rt), &o, NULL, &port), 0);
    CU_ASSERT_FATAL(port != 0);
    CU_ASSERT_FATAL(tr_runtime_start(rt) == 0);
    int hfd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = loopback(0);
    CU_ASSERT_FATAL(bind(hfd, (struct sockaddr *)&a, sizeof a) == 0);
    const uint16_t held[] = {port, local_port(hfd)};
    const char *const hosts[] = {HOST, NULL};

    int fds = tt_fds_open();
    tr_stats before;
    tr_runtime_stats(rt, &before);
    for (size_t i = 0; i < 2; i++) {
        for (size_t h = 0; h < 2; h++) {
            tr_udp_opts dup = o;
            dup.host = hosts[h];
            dup.port = held[i];
            dup.actor.name = "udp-dup";
            tr_pid pid = TR_PID_NONE;
            uint16_t bound = 0;
            int rc = tr_udp_open(tr_runtime_ctx(rt), &dup, &pid, &bound);
            expect_port_in_use(rc, pid, bound, held[i], i, hosts[h]);
        }
    }
    TT_EQ(tt_fds_open(), fds);
    tr_stats after;
    tr_runtime_stats(rt, &after);
    TT_EQ(after.actors_spawned, before.actors_spawned);
    TT_EQ(tr_whereis(rt, "udp-dup"), TR_PID_NONE);

    /* The first actor still has its port, and its datagrams. */
    for (int i = 0; i < 20; i++)
        CU_ASSERT(udp_roundtrip(i % 2 ? c1 : c0, port, (uint64_t)i, 100));
    TT_EQ(atomic_load(&st->datagrams), 20);
    /* An open on a free port works, under the name no failure kept. */
    tr_udp_opts free_port = o;
    free_port.actor.name = "udp-dup";
    tr_pid second = TR_PID_NONE;
    uint16_t port2 = 0;
    TT_EQ(tr_udp_open(tr_runtime_ctx(rt), &free_port, &second, &port2), 0);
    CU_ASSERT_FATAL(port2 != 0 && port2 != port);
    TT_EQ(tr_whereis(rt, "udp-dup"), second);
    /* A free port but a taken name: TR_EEXIST, and neither output is
     * written (the port it had bound is closed again). */
    tr_pid third = TR_PID_NONE;
    uint16_t port3 = 7;
    fds = tt_fds_open();
    TT_EQ(tr_udp_open(tr_runtime_ctx(rt), &free_port, &third, &port3), TR_EEXIST);
    TT_EQ(third, TR_PID_NONE);
    TT_EQ(port3, 7);
    TT_EQ(tt_fds_open(), fds);
    CU_ASSERT(udp_roundtrip(c0, port2, 99, 1000));
    TT_EQ(atomic_load(&st->datagrams), 21);
    TT_EQ(atomic_load(&st->bad_from), 0);
    TT_EQ(atomic_load(&st->send_failed), 0);

    tr_runtime_shutdown(rt);
    TT_EQ(tt_join_within(rt, WAIT_S), 1);
    tr_runtime_destroy(rt);
    close(hfd);
    close(c0);
    close(c1);
    free(st);
    TT_NO_ERRORS();
}

/* examples/udp-echo, the program: on a port of the system's choice it
 * sends each datagram back to its sender byte for byte (empty and largest
 * included), and SIGTERM ends it with status 0. */
static void test_udp_echo_example(void)
{
    tt_example e;
    if (!tt_example_start("udp-echo", &e))
        return;
    struct sockaddr_in self;
    int fd = udp_client(&self);
    int sz = 1 << 20;
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &sz, sizeof sz);
    static const size_t sizes[] = {1, 5, 0, 100, 1472, 9000, 65507};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++)
        CU_ASSERT(udp_roundtrip(fd, e.port, 40 + i, sizes[i]));
    close(fd);
    tt_example_stop(&e);
}

/* A UDP behaviour that ends itself (tr_stop) at its first datagram is
 * handed no other, though five wait in the socket and one turn reads
 * them all. */
static atomic_long stop_seen;

static void udp_stop_at_first(tr_ctx *cx, void *state, const tr_msg *m)
{
    (void)state;
    if (m->type != TR_UDP_DATAGRAM)
        return;
    atomic_fetch_add(&stop_seen, 1);
    tr_stop(cx);
}

static void test_udp_nothing_after_stop(void)
{
    struct sockaddr_in self;
    int c = udp_client(&self);
    tr_runtime *rt = tt_runtime(2, 0);
    tr_udp_opts o = {.host = HOST, .actor = {.behaviour = udp_stop_at_first}};
    uint16_t port = 0;
    atomic_store(&stop_seen, 0);
    TT_EQ(tr_udp_open(tr_runtime_ctx(rt), &o, NULL, &port), 0);
    struct sockaddr_in to = loopback(port);
    for (int i = 0; i < 5; i++) /* waiting before the first read */
        CU_ASSERT(sendto(c, "d", 1, 0, (struct sockaddr *)&to, sizeof to) == 1);
    CU_ASSERT_FATAL(tr_runtime_start(rt) == 0);
    TT_EQ(tt_join_within(rt, WAIT_S), 0); /* the socket actor ended: nothing left */
    TT_EQ(atomic_load(&stop_seen), 1);
    tr_runtime_destroy(rt);
    close(c);
    TT_NO_ERRORS();
}

/* A UDP behaviour may watch descriptors of its own (io.h): their
 * readiness is its, told by the event's fd. The socket took every
 * TR_IO_READABLE as its own (a pipe's readiness swallowed, the socket
 * read instead) and passed on every TR_IO_HUP, its own too. Here: the
 * first datagram makes it watch a pipe; a byte written comes as
 * TR_IO_READABLE of the pipe, its closed end as TR_IO_HUP of the pipe,
 * and nothing else arrives. */
static int upipe[2];
static atomic_int u_watched, u_readable, u_hup, u_other;

static void udp_watcher(tr_ctx *cx, void *state, const tr_msg *m)
{
    (void)state;
    const tr_io_event *e = TR_PAYLOAD(m, tr_io_event);
    if (m->type == TR_UDP_DATAGRAM) {
        if (atomic_load(&u_watched) == 0)
            TT_CHECK(tr_io_watch(cx, upipe[0], TR_IO_READ) == 0);
        atomic_store(&u_watched, 1);
    } else if (m->type == TR_IO_READABLE && e != NULL && e->fd == upipe[0]) {
        char b[16];
        while (read(upipe[0], b, sizeof b) > 0)
            ;
        atomic_fetch_add(&u_readable, 1);
    } else if (m->type == TR_IO_HUP && e != NULL && e->fd == upipe[0]) {
        TT_CHECK(tr_io_unwatch(cx, upipe[0]) == 0);
        atomic_fetch_add(&u_hup, 1);
    } else {
        atomic_fetch_add(&u_other, 1);
    }
}

static void test_udp_behaviour_watches_its_own(void)
{
    CU_ASSERT_FATAL(pipe2(upipe, O_NONBLOCK | O_CLOEXEC) == 0);
    atomic_store(&u_watched, 0), atomic_store(&u_readable, 0);
    atomic_store(&u_hup, 0), atomic_store(&u_other, 0);
    struct sockaddr_in self;
    int c = udp_client(&self);
    tr_runtime *rt = tt_runtime(2, 0);
    tr_udp_opts o = {.host = HOST, .actor = {.behaviour = udp_watcher}};
    uint16_t port = 0;
    TT_EQ(tr_udp_open(tr_runtime_ctx(rt), &o, NULL, &port), 0);
    CU_ASSERT_FATAL(tr_runtime_start(rt) == 0);
    struct sockaddr_in to = loopback(port);
    CU_ASSERT(sendto(c, "d", 1, 0, (struct sockaddr *)&to, sizeof to) == 1);
    CU_ASSERT(tt_wait_count(&u_watched, 1, WAIT_S));
    CU_ASSERT(write(upipe[1], "x", 1) == 1);
    CU_ASSERT(tt_wait_count(&u_readable, 1, WAIT_S));
    close(upipe[1]);
    CU_ASSERT(tt_wait_count(&u_hup, 1, WAIT_S));
    TT_EQ(atomic_load(&u_other), 0);
    tr_runtime_shutdown(rt);
    TT_EQ(tt_join_within(rt, WAIT_S), 1); /* stopped */
    tr_runtime_destroy(rt);
    close(upipe[0]);
    close(c);
    TT_NO_ERRORS();
}

void register_udp_tests(void)
{
    CU_pSuite s = tt_suite("udp");
    tt_test(s, "2000_datagrams_echoed_to_their_sender_then_close", test_udp);
    tt_test(s, "largest_ipv4_datagram_arrives_whole", test_udp_large);
    tt_test(s, "nothing_handed_on_after_the_behaviour_stops", test_udp_nothing_after_stop);
    tt_test(s, "open_on_a_port_in_use_is_eaddrinuse_first_socket_keeps_it",
            test_udp_port_in_use);
    tt_test(s, "udp_echo_example_echoes_and_stops_on_sigterm", test_udp_echo_example);
    tt_test(s, "behaviour_watches_descriptors_of_its_own", test_udp_behaviour_watches_its_own);
}
