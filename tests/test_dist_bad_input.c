/* test_dist_bad_input.c — hostile bytes on node connections (acceptance
 * item 8): garbage instead of a handshake, and after a correct handshake
 * a distribution header with nothing after it, a frame with a cut term,
 * one announcing more than the maximum, a stray fragment and a fragment
 * count announcing more than the maximum; each closes only its own
 * connection, and the node then still serves a well-behaved peer. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "../dist/dist.h"
#include "dist_util.h"

static atomic_int replies;

/* On 1: ten messages to echo on node tt_ba; counts the answers. */
static void sink(tr_ctx *cx, void *state, const tr_msg *m)
{
    (void)state;
    if (m->type == 1)
        for (int i = 0; i < 10; i++)
            TT_CHECK(tr_send_named(cx, "echo", "tt_ba@localhost", 9, "x", 1) == 0);
    else if (m->type == 9)
        atomic_fetch_add(&replies, 1);
}

static int dial(uint16_t port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    struct timeval tv = {.tv_sec = 10};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    CU_ASSERT_FATAL(connect(fd, (struct sockaddr *)&a, sizeof a) == 0);
    return fd;
}

/* Reads one 2-byte-length frame (the handshake's); its length, or -1. */
static int read_frame(int fd, uint8_t *buf, size_t cap)
{
    uint8_t h[2];
    if (recv(fd, h, 2, MSG_WAITALL) != 2)
        return -1;
    size_t len = (size_t)h[0] << 8 | h[1];
    if (len > cap || recv(fd, buf, len, MSG_WAITALL) != (ssize_t)len)
        return -1;
    return (int)len;
}

/* A correct handshake as node `name` (the initiator): true when up. */
static bool handshake(int fd, const char *name)
{
    tr__hs hs;
    uint8_t out[512], in[512];
    size_t ol;
    tr__hs_init(&hs, true, name, DT_COOKIE, 1, 4242, out, sizeof out, &ol);
    if (send(fd, out, ol, 0) != (ssize_t)ol)
        return false;
    while (hs.state != TR__HS_UP && hs.state != TR__HS_FAILED) {
        int n = read_frame(fd, in, sizeof in);
        if (n < 0 || tr__hs_step(&hs, in, (size_t)n, out, sizeof out, &ol) < 0)
            return false;
        if (ol != 0 && send(fd, out, ol, 0) != (ssize_t)ol)
            return false;
    }
    return hs.state == TR__HS_UP;
}

/* The node closes the connection: a read ends (0 or an error other than
 * the 10 s timeout), after any ticks. */
static bool closed_by_node(int fd)
{
    uint8_t b[256];
    for (;;) {
        ssize_t k = recv(fd, b, sizeof b, 0);
        if (k == 0 || (k < 0 && errno != EAGAIN && errno != EWOULDBLOCK))
            return true;
        if (k < 0)
            return false;
    }
}

static void send_frame(int fd, const void *body, uint32_t len, uint32_t announced)
{
    uint8_t h[4] = {(uint8_t)(announced >> 24), (uint8_t)(announced >> 16),
                    (uint8_t)(announced >> 8), (uint8_t)announced};
    CU_ASSERT(send(fd, h, 4, MSG_NOSIGNAL) == 4);
    if (len != 0)
        CU_ASSERT(send(fd, body, len, MSG_NOSIGNAL) == (ssize_t)len);
}

static void test_garbage_closes_only_its_connection(void)
{
    if (dt_skip())
        return;
    uint16_t epmd = dt_epmd_start();
    CU_ASSERT_FATAL(epmd != 0);
    tr_runtime *a = dt_node("tt_ba", epmd, 0);
    tr_actor_spec e = {.behaviour = dt_echo, .name = "echo"};
    TT_EQ(tr_spawn_spec(tr_runtime_ctx(a), &e, NULL), 0);
    tr__dist_lock();
    tr__dist_node *n = tr__dist_node_of(a, 0);
    uint16_t port = n != NULL ? n->port : 0;
    tr__dist_unlock();
    CU_ASSERT_FATAL(port != 0);

    /* Garbage for a handshake. */
    int fd = dial(port);
    uint8_t junk[1000];
    uint64_t rng = 7;
    for (size_t i = 0; i < sizeof junk; i++)
        junk[i] = (uint8_t)tt_rng_next(&rng);
    junk[0] = 0, junk[1] = 30; /* a frame of 30 bytes that is no name */
    CU_ASSERT(send(fd, junk, sizeof junk, MSG_NOSIGNAL) > 0);
    CU_ASSERT(closed_by_node(fd));
    close(fd);

    /* After a good handshake: an empty header; a cut term; too long. */
    static const uint8_t not_112[] = {131, 68, 0};
    static const uint8_t cut[] = {112, 131, 104, 3, 97, 22, 88};
    /* Fragments (dist/frag.c): one of a sequence never begun; a first one
     * whose count announces far more than the maximum. */
    static const uint8_t stray[] = {131, 70, 0, 0, 0, 0, 0, 0, 0, 9, 0, 0, 0, 0, 0, 0, 0, 1, 97};
    static const uint8_t huge[] = {131, 69, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0,
                                   104, 1, 97, 2, 109, 0, 0, 0, 4, 97, 98};
    const struct { const void *body; uint32_t len, announced; } bad[] = {
        {not_112, sizeof not_112, sizeof not_112},
        {cut, sizeof cut, sizeof cut},
        {NULL, 0, 0x7fffffff},
        {stray, sizeof stray, sizeof stray},
        {huge, sizeof huge, sizeof huge},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        fd = dial(port);
        CU_ASSERT(handshake(fd, "tt_evil@localhost"));
        send_frame(fd, NULL, 0, 0); /* a tick: fine */
        send_frame(fd, bad[i].body, bad[i].len, bad[i].announced);
        CU_ASSERT(closed_by_node(fd));
        close(fd);
    }

    /* A well-behaved peer is still served. */
    tr_runtime *b = dt_node("tt_bb", epmd, 0);
    tr_pid s;
    TT_EQ(tr_spawn(tr_runtime_ctx(b), sink, NULL, 0, &s), 0);
    TT_EQ(tr_send(tr_runtime_ctx(b), s, 1, NULL, 0), 0);
    for (double until = tt_now() + 30; atomic_load(&replies) < 10 && tt_now() < until;)
        tt_sleep_ms(2);
    TT_EQ(atomic_load(&replies), 10);
    TT_NO_ERRORS();
    dt_node_end(b);
    dt_node_end(a);
    dt_epmd_stop(epmd);
}

void register_dist_bad_input_tests(void)
{
    CU_pSuite s = tt_suite("dist_bad_input");
    tt_test(s, "garbage_closes_only_its_connection", test_garbage_closes_only_its_connection);
}
