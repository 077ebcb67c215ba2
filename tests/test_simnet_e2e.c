/* test_simnet_e2e.c — actors over the simulated network, end to end
 * (suite "simnet_e2e"): an echo server and its clients over tr_tcp_listen
 * and tr_tcp_connect, and UDP actors with loss, duplication and
 * reordering, in a runtime created with a sim_seed.
 */
#include "tests.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <string.h>

#include "../base/clock.h"
#include "../base/sim.h"

enum { DONE = 70, GO };

#define ROUNDS 50
#define CLIENTS 4

/* A simulated runtime. The simulator's core (sched/sim.c) is part of
 * every build: a runtime that ignored sim_seed fails the test rather than
 * skipping it. */
static tr_runtime *sim_runtime(uint64_t seed, const char *opts)
{
    tr_config cfg;
    tr_config_init(&cfg);
    cfg.sim_seed = seed;
    cfg.sim_options = opts;
    tr_runtime *rt = NULL;
    CU_ASSERT_FATAL(tr_runtime_create(&cfg, &rt) == 0);
    CU_ASSERT_FATAL(tr__sim_on());
    return rt;
}

/* ---- TCP: echo ---- */

struct echo_totals {
    unsigned connected, echoed_lines, closed_clean, first_port;
    tr_pid listener;
};
static struct echo_totals tot;

static void echo_server(tr_ctx *cx, void *state, const tr_msg *m)
{
    (void)state;
    if (m->type == TR_TCP_LINE) {
        TT_CHECK(tr_tcp_send(cx, m->data, m->len) == 0);
        TT_CHECK(tr_tcp_send(cx, "\n", 1) == 0);
    }
}

struct client {
    unsigned got;
};

/* An echo listener on 127.0.0.1:port (lines up to max_line, 0 = 4096). */
static void listen_echo(tr_ctx *cx, uint16_t port, size_t max_line, tr_pid *listener)
{
    tr_tcp_listen_opts lo = {.host = "127.0.0.1", .port = port};
    lo.handler.actor.behaviour = echo_server;
    lo.handler.opts = (tr_tcp_opts){.framing = TR_FRAME_LINE, .max_line = max_line};
    CU_ASSERT_FATAL(tr_tcp_listen(cx, &lo, listener, NULL) == 0);
}

/* A line client of 127.0.0.1:port with behaviour fn (state: a struct
 * client); the connect's result. */
static int connect_line(tr_ctx *cx, uint16_t port, tr_behaviour fn, size_t max_line)
{
    static const struct client zero = {0};
    tr_tcp_connect_opts co = {.host = "127.0.0.1", .port = port};
    co.handler.actor = (tr_actor_spec){.behaviour = fn, .state = &zero, .state_size = sizeof zero};
    co.handler.opts = (tr_tcp_opts){.framing = TR_FRAME_LINE, .max_line = max_line};
    return tr_tcp_connect(cx, &co, NULL);
}


static void echo_client(tr_ctx *cx, void *state, const tr_msg *m)
{
    struct client *c = state;
    char line[32];
    if (m->type == TR_TCP_CONNECTED) {
        const tr_tcp_info *info = (const tr_tcp_info *)m->data;
        TT_CHECK(info->local_len == sizeof(struct sockaddr_in));
        unsigned port = ntohs(((const struct sockaddr_in *)&info->local)->sin_port);
        TT_CHECK(port >= 40000);
        if (tot.first_port == 0 || port < tot.first_port)
            tot.first_port = port;
        tot.connected++;
        for (int i = 0; i < ROUNDS; i++) {
            int n = snprintf(line, sizeof line, "line %d\n", i);
            TT_CHECK(tr_tcp_send(cx, line, (size_t)n) == 0);
        }
    } else if (m->type == TR_TCP_LINE) {
        snprintf(line, sizeof line, "line %u", c->got);
        TT_CHECK(m->len == strlen(line) && memcmp(m->data, line, m->len) == 0);
        tot.echoed_lines++;
        if (++c->got == ROUNDS)
            tr_tcp_close(cx);
    } else if (m->type == TR_TCP_CLOSED) {
        const tr_tcp_error *e = (const tr_tcp_error *)m->data;
        TT_CHECK(e->reason == 0);
        tot.closed_clean += e->reason == 0;
        if (tot.closed_clean == CLIENTS)
            tr_tcp_listener_close(cx, tot.listener);
    }
}

static void test_echo(void)
{
    tr_runtime *rt = sim_runtime(21, "latency=100:400,buffer=4096");
    memset(&tot, 0, sizeof tot);
    tr_ctx *cx = tr_runtime_ctx(rt);
    listen_echo(cx, 7300, 0, &tot.listener);
    for (int i = 0; i < CLIENTS; i++)
        CU_ASSERT_FATAL(connect_line(cx, 7300, echo_client, 0) == 0);
    tr_runtime_run(rt);
    tr_sim_stats st;
    tr_sim_stats_get(&st);
    tr_runtime_destroy(rt);
    TT_NO_ERRORS();
    CU_ASSERT(tot.connected == CLIENTS);
    CU_ASSERT(tot.echoed_lines == CLIENTS * ROUNDS);
    CU_ASSERT(tot.closed_clean == CLIENTS);
    CU_ASSERT(tot.first_port == 40000);
    CU_ASSERT(st.tcp_connects == CLIENTS && st.tcp_resets == 0);
}

/* ---- TCP: a line far bigger than the network's buffer ----
 * The writer finds no room after the first 512 bytes; the reader's reads
 * make room, a wake-up that is no event of the network's heap. The run
 * must go on at once, not stall until some timer (or forever). */

#define BIG_LINE 8192
static unsigned big_echoed;

static void big_client(tr_ctx *cx, void *state, const tr_msg *m)
{
    (void)state;
    static char line[BIG_LINE + 1];
    if (m->type == TR_TCP_CONNECTED) {
        memset(line, 'x', BIG_LINE);
        line[BIG_LINE] = '\n';
        TT_CHECK(tr_tcp_send(cx, line, sizeof line) == 0);
    } else if (m->type == TR_TCP_LINE) {
        TT_CHECK(m->len == BIG_LINE);
        big_echoed++;
        tr_tcp_close(cx);
    } else if (m->type == TR_TCP_CLOSED) {
        tr_tcp_listener_close(cx, tot.listener);
    }
}

static void test_big_line_small_buffer(void)
{
    for (uint64_t seed = 1; seed <= 20; seed++) {
        tr_runtime *rt = sim_runtime(seed, "buffer=512");
        big_echoed = 0;
        tr_ctx *cx = tr_runtime_ctx(rt);
        listen_echo(cx, 7310, 2 * BIG_LINE, &tot.listener);
        CU_ASSERT_FATAL(connect_line(cx, 7310, big_client, 2 * BIG_LINE) == 0);
        CU_ASSERT(tr_runtime_run(rt) == 0); /* quiescent: no liveness failure */
        tr_runtime_destroy(rt);
        CU_ASSERT(big_echoed == 1);
    }
    TT_NO_ERRORS();
}

/* ---- two runtimes: a peer whose runtime has stopped ----
 * A listens, and its run ends (its listener holds it: a liveness failure);
 * B then connects to A and writes. A's simulated epoll holds the
 * connection's wake-up, but A is not running, so nothing will take it:
 * B's run must end as a liveness failure, not spin on a wake-up that no
 * poll of a started runtime delivers. */

static void lonely_client(tr_ctx *cx, void *state, const tr_msg *m)
{
    (void)state;
    if (m->type == TR_TCP_CONNECTED)
        TT_CHECK(tr_tcp_send(cx, "hello\n", 6) == 0);
}

static void test_peer_runtime_stopped(void)
{
    tr_runtime *a = sim_runtime(5, NULL), *b = sim_runtime(5, NULL);
    listen_echo(tr_runtime_ctx(a), 7320, 0, NULL);
    CU_ASSERT(tr_runtime_run(a) == 1); /* held by its listener: gives up */
    CU_ASSERT_FATAL(connect_line(tr_runtime_ctx(b), 7320, lonely_client, 0) == 0);
    CU_ASSERT(tr_runtime_run(b) == 1); /* gives up too, and returns */
    tr_runtime_destroy(b);
    tr_runtime_destroy(a);
    TT_NO_ERRORS();
}

/* A connect to a port with no listener: TR_TCP_CLOSED with -ECONNREFUSED. */
static int refused_reason;

static void refused_client(tr_ctx *cx, void *state, const tr_msg *m)
{
    (void)cx, (void)state;
    if (m->type == TR_TCP_CLOSED)
        refused_reason = ((const tr_tcp_error *)m->data)->reason;
}

static void test_refused(void)
{
    tr_runtime *rt = sim_runtime(22, NULL);
    refused_reason = 1;
    tr_tcp_connect_opts co = {.host = "127.0.0.1", .port = 7301};
    co.handler.actor.behaviour = refused_client;
    CU_ASSERT_FATAL(tr_tcp_connect(tr_runtime_ctx(rt), &co, NULL) == 0);
    tr_runtime_run(rt);
    tr_runtime_destroy(rt);
    CU_ASSERT(refused_reason == -ECONNREFUSED);
}

/* ---- many seeds, with connects refused, writes cut short and resets ---- */

struct fault_totals {
    unsigned closed, bad_order, connects_failed;
    unsigned reasons[4]; /* clean, refused, reset, other */
    tr_pid listener;
};
static struct fault_totals ft;

static void fault_client(tr_ctx *cx, void *state, const tr_msg *m)
{
    struct client *c = state;
    char line[32];
    if (m->type == TR_TCP_CONNECTED) {
        for (int i = 0; i < ROUNDS; i++) {
            int n = snprintf(line, sizeof line, "line %d\n", i);
            TT_CHECK(tr_tcp_send(cx, line, (size_t)n) == 0);
        }
    } else if (m->type == TR_TCP_LINE) {
        snprintf(line, sizeof line, "line %u", c->got);
        ft.bad_order += m->len != strlen(line) || memcmp(m->data, line, m->len) != 0;
        if (++c->got == ROUNDS)
            tr_tcp_close(cx);
    } else if (m->type == TR_TCP_CLOSED) {
        int r = ((const tr_tcp_error *)m->data)->reason;
        ft.reasons[r == 0 ? 0 : r == -ECONNREFUSED ? 1 : r == -ECONNRESET ? 2 : 3]++;
        TT_CHECK(r != 0 || c->got == ROUNDS); /* a clean close only after every echo */
        if (++ft.closed + ft.connects_failed == CLIENTS)
            tr_tcp_listener_close(cx, ft.listener);
    }
}

/* Whatever the faults do, each client ends exactly once, the lines it gets
 * are the ones it sent, in order, and the run ends with nothing left. */
static void test_faults_many_seeds(void)
{
    unsigned totals[4] = {0};
    for (uint64_t seed = 1; seed <= 200; seed++) {
        tr_runtime *rt = sim_runtime(seed, "faults=connect+short_write+reset,fault_p=0.2,"
                                           "buffer=2000");
        memset(&ft, 0, sizeof ft);
        tr_ctx *cx = tr_runtime_ctx(rt);
        listen_echo(cx, 7600, 0, &ft.listener);
        for (int i = 0; i < CLIENTS; i++) {
            ft.connects_failed += connect_line(cx, 7600, fault_client, 0) != 0;
        }
        tr_runtime_run(rt);
        tr_runtime_destroy(rt);
        CU_ASSERT(ft.closed + ft.connects_failed == CLIENTS);
        CU_ASSERT(ft.bad_order == 0);
        for (int i = 0; i < 4; i++)
            totals[i] += ft.reasons[i];
    }
    TT_NO_ERRORS();
    printf("clean %u refused %u reset %u other %u ", totals[0], totals[1], totals[2], totals[3]);
    CU_ASSERT(totals[0] > 0 && totals[1] > 0 && totals[2] > 0);
}

/* ---- big writes, which go to the socket at once, under resets ----
 *
 * A line of BIGW bytes is echoed with one tr_tcp_send into an empty queue:
 * a write straight to the socket (net/conn.c, DIRECT_WRITE), which a reset
 * connection refuses there and then. The send says so (-ECONNRESET or
 * -EPIPE), the connection ends once with that reason, and the other
 * connections go on. */

#define BIGW 6000
#define BIGW_ROUNDS 8

struct bigw_totals {
    unsigned closed, connects_failed, bad_order;
    unsigned sends_failed, server_closed, server_closed_after_failure;
    tr_pid listener;
};
static struct bigw_totals bw;

struct bigw_server {
    int send_failed; /* the error a send gave, or 0 */
};

static void bigw_server(tr_ctx *cx, void *state, const tr_msg *m)
{
    struct bigw_server *sv = state;
    if (m->type == TR_TCP_LINE && sv->send_failed == 0) {
        int rc = tr_tcp_send(cx, m->data, m->len);
        if (rc == 0)
            rc = tr_tcp_send(cx, "\n", 1);
        TT_CHECK(rc == 0 || rc == -ECONNRESET || rc == -EPIPE);
        if (rc != 0) {
            sv->send_failed = rc;
            bw.sends_failed++;
        }
    } else if (m->type == TR_TCP_CLOSED) {
        bw.server_closed++;
        if (sv->send_failed != 0) {
            bw.server_closed_after_failure++;
            TT_CHECK(((const tr_tcp_error *)m->data)->reason == sv->send_failed);
        }
    }
}

static void bigw_client(tr_ctx *cx, void *state, const tr_msg *m)
{
    struct client *c = state;
    if (m->type == TR_TCP_CONNECTED) {
        static char line[BIGW + 1];
        for (int i = 0; i < BIGW_ROUNDS; i++) {
            memset(line, 'a' + i, BIGW);
            line[BIGW] = '\n';
            TT_CHECK(tr_tcp_send(cx, line, sizeof line) == 0);
        }
    } else if (m->type == TR_TCP_LINE) {
        const unsigned char *d = m->data;
        bw.bad_order += m->len != BIGW || d[0] != 'a' + c->got || d[BIGW - 1] != d[0];
        if (++c->got == BIGW_ROUNDS)
            tr_tcp_close(cx);
    } else if (m->type == TR_TCP_CLOSED) {
        int r = ((const tr_tcp_error *)m->data)->reason;
        TT_CHECK(r != 0 || c->got == BIGW_ROUNDS);
        if (++bw.closed + bw.connects_failed == CLIENTS)
            tr_tcp_listener_close(cx, bw.listener);
    }
}

static void test_big_writes_under_resets(void)
{
    unsigned sends_failed = 0;
    for (uint64_t seed = 1; seed <= 100; seed++) {
        tr_runtime *rt = sim_runtime(seed, "faults=reset+short_write,fault_p=0.1");
        memset(&bw, 0, sizeof bw);
        tr_ctx *cx = tr_runtime_ctx(rt);
        static const struct bigw_server zero = {0};
        tr_tcp_listen_opts lo = {.host = "127.0.0.1", .port = 7700};
        lo.handler.actor = (tr_actor_spec){.behaviour = bigw_server, .state = &zero,
                                           .state_size = sizeof zero};
        lo.handler.opts = (tr_tcp_opts){.framing = TR_FRAME_LINE, .max_line = 2 * BIGW};
        CU_ASSERT_FATAL(tr_tcp_listen(cx, &lo, &bw.listener, NULL) == 0);
        for (int i = 0; i < CLIENTS; i++)
            bw.connects_failed += connect_line(cx, 7700, bigw_client, 2 * BIGW) != 0;
        tr_runtime_run(rt);
        tr_runtime_destroy(rt);
        CU_ASSERT(bw.closed + bw.connects_failed == CLIENTS);
        CU_ASSERT(bw.bad_order == 0);
        CU_ASSERT(bw.server_closed_after_failure == bw.sends_failed);
        sends_failed += bw.sends_failed;
    }
    TT_NO_ERRORS();
    printf("[%u big writes refused by a reset connection] ", sends_failed);
    CU_ASSERT(sends_failed > 0); /* the seeds are fixed: so is this */
}

/* ---- partitions: a client cuts itself off from the server ---- */

struct cut_totals {
    int client_reason, server_reason;
    unsigned echoes;
    uint64_t cut_at, echo_at;
    bool heal; /* the cut heals by itself (1 s) rather than outlasting rto */
    char me[64];
    tr_pid listener;
};
static struct cut_totals cut;

/* echo_server, noting how its connection ended. */
static void cut_server(tr_ctx *cx, void *state, const tr_msg *m)
{
    if (m->type == TR_TCP_CLOSED)
        cut.server_reason = ((const tr_tcp_error *)m->data)->reason;
    else
        echo_server(cx, state, m);
}

static void cut_client(tr_ctx *cx, void *state, const tr_msg *m)
{
    (void)state;
    if (m->type == TR_TCP_CONNECTED) {
        /* The client names itself by the address it has: tr_tcp_info.local. */
        const tr_tcp_info *info = (const tr_tcp_info *)m->data;
        const struct sockaddr_in *in = (const struct sockaddr_in *)&info->local;
        char ip[INET_ADDRSTRLEN] = "?";
        TT_CHECK(info->local.ss_family == AF_INET);
        inet_ntop(AF_INET, &in->sin_addr, ip, sizeof ip);
        snprintf(cut.me, sizeof cut.me, "%s:%u", ip, ntohs(in->sin_port));
        TT_CHECK(tr_tcp_send(cx, "a\n", 2) == 0);
    } else if (m->type == TR_TCP_LINE && ++cut.echoes == 1) {
        TT_CHECK(tr_sim_partition("127.0.0.1:7500", cut.me, 0, cut.heal ? TR_SEC : 0) == 0);
        cut.cut_at = tr__now_ns();
        TT_CHECK(tr_tcp_send(cx, "b\n", 2) == 0);
    } else if (m->type == TR_TCP_LINE) {
        cut.echo_at = tr__now_ns();
        tr_tcp_close(cx);
    } else if (m->type == TR_TCP_CLOSED) {
        cut.client_reason = ((const tr_tcp_error *)m->data)->reason;
        tr_sim_heal();
        tr_tcp_listener_close(cx, cut.listener);
    }
}

static void run_cut(bool heal)
{
    tr_runtime *rt = sim_runtime(24, "rto=3");
    memset(&cut, 0, sizeof cut);
    cut.heal = heal;
    cut.client_reason = cut.server_reason = 1;
    tr_ctx *cx = tr_runtime_ctx(rt);
    tr_tcp_listen_opts lo = {.host = "127.0.0.1", .port = 7500};
    lo.handler.actor.behaviour = cut_server;
    lo.handler.opts.framing = TR_FRAME_LINE;
    CU_ASSERT_FATAL(tr_tcp_listen(cx, &lo, &cut.listener, NULL) == 0);
    tr_tcp_connect_opts co = {.host = "127.0.0.1", .port = 7500};
    co.handler.actor.behaviour = cut_client;
    co.handler.opts.framing = TR_FRAME_LINE;
    CU_ASSERT_FATAL(tr_tcp_connect(cx, &co, NULL) == 0);
    tr_runtime_run(rt);
    tr_sim_stats st;
    tr_sim_stats_get(&st);
    tr_runtime_destroy(rt);
    TT_NO_ERRORS();
    if (heal) {
        /* Held, not lost: the echo comes once the cut heals. */
        CU_ASSERT(cut.echoes == 2);
        CU_ASSERT(cut.echo_at >= cut.cut_at + TR_SEC);
        CU_ASSERT(cut.client_reason == 0 && cut.server_reason == 0);
        CU_ASSERT(st.tcp_resets == 0);
    } else {
        /* Cut past rto: both ends reset. */
        CU_ASSERT(cut.echoes == 1);
        CU_ASSERT(cut.client_reason == -ECONNRESET && cut.server_reason == -ECONNRESET);
        CU_ASSERT(st.tcp_resets == 1);
    }
}

static void test_partition_heals(void)
{
    run_cut(true);
}

static void test_partition_resets(void)
{
    run_cut(false);
}

/* ---- UDP: the seed's plan reaches the actors ---- */

#define DATAGRAMS 1000

static unsigned udp_received, udp_late;
static uint32_t udp_highest;

static void udp_receiver(tr_ctx *cx, void *state, const tr_msg *m)
{
    (void)state;
    if (m->type == TR_UDP_DATAGRAM) {
        const tr_udp_datagram *d = (const tr_udp_datagram *)m->data;
        uint32_t v;
        TT_CHECK(d->len == sizeof v);
        memcpy(&v, d->data, sizeof v);
        udp_received++;
        udp_late += v < udp_highest;
        udp_highest = v > udp_highest ? v : udp_highest;
    } else if (m->type == DONE) {
        tr_udp_close(cx);
    }
}

static void udp_sender(tr_ctx *cx, void *state, const tr_msg *m)
{
    (void)state;
    if (m->type != GO)
        return;
    struct sockaddr_in to = {.sin_family = AF_INET, .sin_port = htons(7400)};
    inet_pton(AF_INET, "127.0.0.1", &to.sin_addr);
    for (uint32_t i = 1; i <= DATAGRAMS; i++)
        TT_CHECK(tr_udp_send(cx, (struct sockaddr *)&to, sizeof to, &i, sizeof i) == 0);
    tr_udp_close(cx);
}

static void test_udp(void)
{
    tr_runtime *rt = sim_runtime(23, "loss=0.1,dup=0.1,reorder=0.2,latency=50:500");
    udp_received = udp_late = udp_highest = 0;
    tr_ctx *cx = tr_runtime_ctx(rt);
    tr_udp_opts ro = {.host = "127.0.0.1", .port = 7400, .actor.behaviour = udp_receiver};
    tr_udp_opts so = {.host = "127.0.0.1", .actor.behaviour = udp_sender};
    tr_pid receiver, sender;
    CU_ASSERT_FATAL(tr_udp_open(cx, &ro, &receiver, NULL) == 0);
    CU_ASSERT_FATAL(tr_udp_open(cx, &so, &sender, NULL) == 0);
    CU_ASSERT(tr_send(cx, sender, GO, NULL, 0) == 0);
    CU_ASSERT(tr_send_after(cx, 10 * TR_SEC, receiver, DONE, NULL, 0) == 0);
    tr_runtime_run(rt);
    tr_sim_stats st;
    tr_sim_stats_get(&st);
    tr_runtime_destroy(rt);
    TT_NO_ERRORS();
    CU_ASSERT(st.udp_sent == DATAGRAMS);
    CU_ASSERT(st.udp_lost > 0 && st.udp_duplicated > 0 && st.udp_reordered > 0);
    CU_ASSERT(udp_received == st.udp_sent - st.udp_lost + st.udp_duplicated);
    CU_ASSERT(udp_late > 0);
}

void register_simnet_e2e_tests(void)
{
    CU_pSuite s = tt_suite("simnet_e2e");
    tt_test(s, "echo_server_and_clients_over_the_simulated_network", test_echo);
    tt_test(s, "a_line_bigger_than_the_buffer_goes_through_without_a_stall",
            test_big_line_small_buffer);
    tt_test(s, "a_peer_whose_runtime_stopped_ends_the_run_without_a_spin",
            test_peer_runtime_stopped);
    tt_test(s, "connect_to_no_listener_closes_with_econnrefused", test_refused);
    tt_test(s, "echo_under_connect_short_write_reset_faults_200_seeds", test_faults_many_seeds);
    tt_test(s, "big_writes_to_a_reset_connection_fail_once_and_end_it",
            test_big_writes_under_resets);
    tt_test(s, "partition_shorter_than_rto_holds_the_data", test_partition_heals);
    tt_test(s, "partition_past_rto_resets_both_ends", test_partition_resets);
    tt_test(s, "udp_actors_see_the_seeds_loss_dup_and_reorder", test_udp);
}
