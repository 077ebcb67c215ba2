/* test_writev.c — a connection writes what a turn queued in one system
 * call as the turn ends (net/conn.c): lines other actors send it within
 * one turn leave in one writev, in order, and output queued before a
 * close is written before the FIN. The test binary is linked with
 * --wrap=send,--wrap=sendmsg (Makefile) so that the calls per descriptor
 * can be counted (tt_send_calls). */
#include "tests.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

enum { MSG_LINE = 80, MSG_FEED, MSG_CLOSE };

#define LINES 40 /* fewer than a batch: one turn handles them all */

struct shared {
    _Atomic tr_pid conn;
    atomic_int fd;
    atomic_bool closed;
};

/* The connection's behaviour: each LINE is queued for the peer. */
static void line_writer(tr_ctx *cx, void *state, const tr_msg *m)
{
    struct shared *sh = *(struct shared **)state;
    switch (m->type) {
    case TR_TCP_CONNECTED:
        atomic_store(&sh->fd, ((const tr_tcp_info *)m->data)->fd);
        atomic_store(&sh->conn, tr_self(cx));
        break;
    case MSG_LINE:
        TT_CHECK(tr_tcp_send(cx, m->data, m->len) == 0);
        break;
    case MSG_CLOSE:
        TT_CHECK(tr_tcp_close(cx) == 0);
        break;
    case TR_TCP_CLOSED:
        atomic_store(&sh->closed, true);
        break;
    default:
        break;
    }
}

/* Sends LINES lines (and a CLOSE if asked) to the connection in one
 * behaviour call: on one worker they all wait in its mailbox before its
 * turn. */
static void feeder(tr_ctx *cx, void *state, const tr_msg *m)
{
    struct shared *sh = *(struct shared **)state;
    tr_pid conn = atomic_load(&sh->conn);
    for (int i = 0; i < LINES; i++) {
        char line[32];
        int n = snprintf(line, sizeof line, "line %02d\n", i);
        TT_CHECK(tr_send(cx, conn, MSG_LINE, line, (size_t)n) == 0);
    }
    if (m->type == MSG_CLOSE)
        TT_CHECK(tr_send(cx, conn, MSG_CLOSE, NULL, 0) == 0);
}

static int connect_to(uint16_t port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct timeval tv = {.tv_sec = 30};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    CU_ASSERT_FATAL(fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof a) == 0);
    return fd;
}

/* Reads until `want` bytes or EOF; the bytes read. */
static size_t read_all(int fd, char *buf, size_t want)
{
    size_t got = 0;
    while (got < want) {
        ssize_t n = recv(fd, buf + got, want - got, 0);
        if (n <= 0)
            break;
        got += (size_t)n;
    }
    return got;
}

static void run(bool then_close)
{
    struct shared sh = { TR_PID_NONE, -1, false };
    struct shared *shp = &sh;
    tr_runtime *rt = tt_runtime(1, 0);
    tr_tcp_listen_opts o = {.host = "127.0.0.1",
                            .handler = {.actor = {.behaviour = line_writer, .state = &shp,
                                                  .state_size = sizeof shp}}};
    tr_pid listener, feed;
    uint16_t port = 0;
    TT_EQ(tr_tcp_listen(tr_runtime_ctx(rt), &o, &listener, &port), 0);
    TT_EQ(tr_spawn(tr_runtime_ctx(rt), feeder, &shp, sizeof shp, &feed), 0);
    TT_EQ(tr_runtime_start(rt), 0);
    int client = connect_to(port);
    for (int i = 0; i < 30000 && atomic_load(&sh.conn) == TR_PID_NONE; i++)
        tt_sleep_ms(1);
    CU_ASSERT_FATAL(atomic_load(&sh.conn) != TR_PID_NONE);
    int fd = atomic_load(&sh.fd);
    unsigned long before = tt_send_calls(fd);

    TT_EQ(tr_send(tr_runtime_ctx(rt), feed, then_close ? MSG_CLOSE : MSG_FEED, NULL, 0), 0);
    char want[LINES * 8 + 1], got[sizeof want + 16];
    for (unsigned i = 0; i < LINES; i++) {
        char line[32];
        snprintf(line, sizeof line, "line %02u\n", i % 100);
        memcpy(want + 8 * i, line, 8);
    }
    size_t n = read_all(client, got, then_close ? sizeof got : LINES * 8);
    TT_EQ(n, LINES * 8); /* with a close: then EOF, nothing more */
    CU_ASSERT(memcmp(got, want, LINES * 8) == 0);
    unsigned long calls = tt_send_calls(fd) - before;
    printf("[%d lines in %lu call(s)] ", LINES, calls);
    TT_EQ(calls, 1);

    if (then_close) {
        close(client); /* the server is draining to our EOF */
        for (int i = 0; i < 30000 && !atomic_load(&sh.closed); i++)
            tt_sleep_ms(1);
        CU_ASSERT(atomic_load(&sh.closed));
    } else {
        close(client);
    }
    tr_runtime_shutdown(rt);
    tt_join_within(rt, 60);
    TT_NO_ERRORS();
    tr_runtime_destroy(rt);
}

static void test_one_call_per_turn(void) { run(false); }
static void test_queued_output_before_close(void) { run(true); }

void register_writev_tests(void)
{
    CU_pSuite s = tt_suite("writev");
    tt_test(s, "lines_of_one_turn_in_one_call", test_one_call_per_turn);
    tt_test(s, "output_queued_before_close_leaves_first", test_queued_output_before_close);
}
