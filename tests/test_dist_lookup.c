/* test_dist_lookup.c — finding a peer through EPMD is an actor's work
 * (dist/lookup.c): the behaviour that sends to a node not yet connected
 * goes on at once, whatever EPMD does.
 *
 * - A node EPMD does not know: each send returns 0, and every message
 *   sent to it becomes a dead letter, its type, payload and sender intact,
 *   in the order sent; a later send looks again (the claim was let go).
 * - EPMD frozen (SIGSTOP: the kernel still accepts the connection, nobody
 *   answers): on a runtime of one worker, the sender's turn ends and the
 *   worker goes on running other actors while the lookup waits; the
 *   lookup gives up after its bound, dropping both messages queued behind
 *   it (one lookup, not two); once EPMD runs again, a named send to a
 *   real node arrives. (Before, the send blocked the only worker for the
 *   exchange and returned TR_ETIMEDOUT.)
 * - An EPMD that answers a lookup with garbage (a stand-in that takes
 *   the node's registration, then answers port requests with junk): the
 *   lookup fails as a malformed frame, the messages are dead letters, and
 *   the node's own actors go on.
 * - No EPMD on the node's port: tr_node_start starts one there, as erl
 *   does, and a second node finds the first through it. */
#include <arpa/inet.h>
#include <dirent.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "../dist/dist.h"
#include "../support/epmd.h"
#include "dist_util.h"

enum { GO = 1, DATA, SPIN, HELLO };

enum { SPINS = 1000 };

/* What the dead-letter sink saw, in order. */
static atomic_int dead_n;
static atomic_uint_fast32_t dead_type[8], dead_value[8];
static atomic_uint_fast64_t dead_from[8];

static atomic_int sent_rc, spins, hellos;

static void sink(tr_ctx *cx, void *state, const tr_msg *m)
{
    (void)cx, (void)state;
    const tr_dead_letter *d = TR_PAYLOAD_HEAD(m, tr_dead_letter);
    TT_CHECK(m->type == TR_DEAD_LETTER && d != NULL);
    if (m->type != TR_DEAD_LETTER || d == NULL)
        return;
    int k = atomic_fetch_add(&dead_n, 1);
    uint32_t v = UINT32_MAX;
    if (d->len == sizeof v)
        memcpy(&v, m->data + sizeof *d, sizeof v);
    if (k < 8) {
        atomic_store(&dead_type[k], d->type);
        atomic_store(&dead_value[k], v);
        atomic_store(&dead_from[k], d->from);
    }
}

/* GO (payload: the node's name, then how many): sends DATA 0.., to
 * "svc" there, keeping the first failing result; then spins SPINS turns
 * by messages to itself. */
static void client(tr_ctx *cx, void *state, const tr_msg *m)
{
    (void)state;
    if (m->type == GO) {
        const char *node = (const char *)m->data;
        uint32_t count = (uint32_t)(m->data[m->len - 1] - '0');
        int rc = 0;
        for (uint32_t i = 0; i < count && rc == 0; i++)
            rc = tr_send_named(cx, "svc", node, DATA, &i, sizeof i);
        atomic_store(&sent_rc, rc);
        TT_CHECK(tr_send(cx, tr_self(cx), SPIN, NULL, 0) == 0);
    } else if (m->type == SPIN && atomic_fetch_add(&spins, 1) + 1 < SPINS) {
        TT_CHECK(tr_send(cx, tr_self(cx), SPIN, NULL, 0) == 0);
    } else if (m->type == HELLO) {
        atomic_fetch_add(&hellos, 1);
    }
}

static void service(tr_ctx *cx, void *state, const tr_msg *m)
{
    (void)state;
    if (m->type == DATA)
        TT_CHECK(tr_send(cx, m->from, HELLO, NULL, 0) == 0);
}

static void reset(void)
{
    atomic_store(&dead_n, 0);
    atomic_store(&sent_rc, -9999);
    atomic_store(&spins, 0);
    atomic_store(&hellos, 0);
}

/* Sends GO to the client: `count` (1-9) messages for svc at node. */
static void go(tr_runtime *rt, tr_pid c, const char *node, int count)
{
    char buf[128];
    int len = snprintf(buf, sizeof buf, "%s%c%c", node, '\0', '0' + count);
    TT_EQ(tr_send(tr_runtime_ctx(rt), c, GO, buf, (size_t)len), 0);
}

/* Checks `count` of the sink's letters from index `at`: DATA 0, 1, ...
 * from the client. */
static void check_letters(int at, int count, tr_pid c)
{
    for (int i = 0; i < count && at + i < 8; i++) {
        TT_EQ(atomic_load(&dead_type[at + i]), DATA);
        TT_EQ(atomic_load(&dead_value[at + i]), (uint32_t)i);
        TT_EQ(atomic_load(&dead_from[at + i]), c);
    }
}

static tr_pid spawn_sink_and_client(tr_runtime *rt, tr_pid *c)
{
    tr_pid s;
    TT_EQ(tr_spawn(tr_runtime_ctx(rt), sink, NULL, 0, &s), 0);
    TT_EQ(tr_runtime_dead_letters(rt, s), 0);
    TT_EQ(tr_spawn(tr_runtime_ctx(rt), client, NULL, 0, c), 0);
    return s;
}

/* A running node NAME of one worker on that EPMD, with the sink and the
 * client (its pid into *c). */
static tr_runtime *one_worker_node(const char *name, uint16_t epmd, tr_pid *c)
{
    tr_runtime *rt = tt_runtime(1, 0);
    tr_node_opts o = {.name = name, .cookie = DT_COOKIE, .host = "127.0.0.1", .epmd_port = epmd};
    TT_EQ(tr_node_start(tr_runtime_ctx(rt), &o), 0);
    TT_EQ(tr_runtime_start(rt), 0);
    spawn_sink_and_client(rt, c);
    return rt;
}

static void test_unknown_node_drops_what_was_sent(void)
{
    if (dt_skip())
        return;
    reset();
    uint16_t epmd = dt_epmd_start();
    CU_ASSERT_FATAL(epmd != 0);
    tr_runtime *a = dt_node("tt_la", epmd, 0);
    tr_pid c;
    spawn_sink_and_client(a, &c);

    go(a, c, "nobody@localhost", 3);
    CU_ASSERT(tt_wait_count(&dead_n, 3, 30));
    TT_EQ(atomic_load(&sent_rc), 0);
    check_letters(0, 3, c);

    /* The lookup let its claim go: the next send looks again. */
    go(a, c, "nobody@localhost", 1);
    CU_ASSERT(tt_wait_count(&dead_n, 4, 30));
    TT_EQ(atomic_load(&sent_rc), 0);
    check_letters(3, 1, c);
    TT_EQ(atomic_load(&dead_n), 4);
    TT_EQ(tt_dead_letters(a), 4);
    TT_EQ(tr__dist_conns_up(a), 0);
    TT_NO_ERRORS();
    dt_node_end(a);
    dt_epmd_stop(epmd);
}

/* The pid of the epmd serving `port` (its command line names the port),
 * or 0. */
static pid_t epmd_pid(uint16_t port)
{
    char want[16];
    snprintf(want, sizeof want, "%u", (unsigned)port);
    DIR *d = opendir("/proc");
    pid_t found = 0;
    for (struct dirent *e; d != NULL && found == 0 && (e = readdir(d)) != NULL;) {
        char path[300], cmd[512];
        snprintf(path, sizeof path, "/proc/%s/cmdline", e->d_name);
        FILE *f = fopen(path, "r");
        if (f == NULL)
            continue;
        size_t n = fread(cmd, 1, sizeof cmd - 1, f);
        fclose(f);
        /* NUL-separated arguments: "epmd" ... "-port" "<port>" */
        bool epmd = false, port_next = false;
        for (size_t i = 0; i < n; i += strlen(cmd + i) + 1) {
            cmd[n] = '\0';
            const char *arg = cmd + i, *base = strrchr(arg, '/');
            if (i == 0)
                epmd = strcmp(base != NULL ? base + 1 : arg, "epmd") == 0;
            else if (epmd && port_next && strcmp(arg, want) == 0)
                found = (pid_t)atoi(e->d_name);
            port_next = strcmp(arg, "-port") == 0;
        }
    }
    if (d != NULL)
        closedir(d);
    return found;
}

static void test_node_starts_an_epmd_when_none_answers(void)
{
    if (dt_skip())
        return;
    reset();
    uint16_t port = epmd_free_port();
    CU_ASSERT_FATAL(port != 0 && !epmd_answers(port));
    tr_runtime *b = dt_node("tt_lb", port, 0); /* starts `epmd -daemon -port P` */
    CU_ASSERT(epmd_answers(port));
    CU_ASSERT(epmd_pid(port) > 0);
    tr_actor_spec svc = {.behaviour = service, .name = "svc"};
    TT_EQ(tr_spawn_spec(tr_runtime_ctx(b), &svc, NULL), 0);

    /* Node a finds b through that EPMD. */
    tr_runtime *a = dt_node("tt_la", port, 0);
    tr_pid c;
    spawn_sink_and_client(a, &c);
    go(a, c, "tt_lb@localhost", 1);
    CU_ASSERT(tt_wait_count(&hellos, 1, 30));
    TT_EQ(atomic_load(&sent_rc), 0);
    TT_EQ(atomic_load(&dead_n), 0);
    TT_NO_ERRORS();
    dt_node_end(a);
    dt_node_end(b);
    CU_ASSERT(epmd_stop(port)); /* it was there to stop */
}

static void test_frozen_epmd_blocks_no_worker(void)
{
    if (dt_skip())
        return;
    reset();
    uint16_t epmd = dt_epmd_start();
    CU_ASSERT_FATAL(epmd != 0);
    pid_t frozen = epmd_pid(epmd);
    CU_ASSERT_FATAL(frozen > 0);
    tr_runtime *b = dt_node("tt_lb", epmd, 0);
    tr_actor_spec svc = {.behaviour = service, .name = "svc"};
    TT_EQ(tr_spawn_spec(tr_runtime_ctx(b), &svc, NULL), 0);

    /* Node a, of one worker. */
    tr_pid c;
    tr_runtime *a = one_worker_node("tt_la@localhost", epmd, &c);

    CU_ASSERT_FATAL(kill(frozen, SIGSTOP) == 0);
    go(a, c, "ghost@localhost", 2);
    /* The one worker ran the client's turn to its end and then SPINS more
     * of its turns while the lookup waited on the frozen EPMD. */
    bool spun = tt_wait_count(&spins, SPINS, 30);
    int rc = atomic_load(&sent_rc);
    /* The lookup gives up: one lookup, both messages dropped. */
    bool dropped = tt_wait_count(&dead_n, 2, 30);
    TT_EQ(kill(frozen, SIGCONT), 0);
    CU_ASSERT(spun);
    TT_EQ(rc, 0);
    CU_ASSERT(dropped);
    check_letters(0, 2, c);

    /* EPMD answers again: a named send reaches node b's service. */
    go(a, c, "tt_lb@localhost", 1);
    CU_ASSERT(tt_wait_count(&hellos, 1, 30));
    TT_EQ(atomic_load(&sent_rc), 0);
    TT_EQ(atomic_load(&dead_n), 2);
    TT_EQ(tt_dead_letters(a), 2);
    TT_EQ(tt_dead_letters(b), 0);
    TT_NO_ERRORS();
    dt_node_end(a);
    dt_node_end(b);
    dt_epmd_stop(epmd);
}

/* ---- an EPMD that answers garbage ---- */

/* A stand-in EPMD on a port of its own: it takes a node's registration
 * (ALIVE2, answered ok, the connection kept) and answers every port
 * request with bytes that are no answer. */
struct junk_epmd {
    int listener;
    uint16_t port;
    atomic_bool stop;
    int kept[4];
    unsigned nkept, asked;
};

static void *junk_epmd_main(void *arg)
{
    struct junk_epmd *j = arg;
    while (!atomic_load(&j->stop)) {
        struct pollfd pf = {.fd = j->listener, .events = POLLIN};
        if (poll(&pf, 1, 20) != 1)
            continue;
        int fd = accept(j->listener, NULL, NULL);
        if (fd < 0)
            continue;
        uint8_t req[512];
        ssize_t n = recv(fd, req, sizeof req, 0);
        if (n >= 3 && req[2] == 120 && j->nkept < 4) { /* ALIVE2_REQ */
            static const uint8_t ok[] = {121, 0, 0, 7};
            TT_CHECK(send(fd, ok, sizeof ok, MSG_NOSIGNAL) == (ssize_t)sizeof ok);
            j->kept[j->nkept++] = fd;
            continue;
        }
        if (n >= 3 && req[2] == 122) { /* PORT_PLEASE2_REQ */
            uint8_t junk[64];
            uint64_t rng = 99 + j->asked++;
            for (size_t i = 0; i < sizeof junk; i++)
                junk[i] = (uint8_t)tt_rng_next(&rng);
            junk[0] = 'Z'; /* no answer starts so */
            (void)send(fd, junk, sizeof junk, MSG_NOSIGNAL);
        }
        close(fd);
    }
    return NULL;
}

/* A node whose EPMD answers lookups with garbage: the lookup fails with
 * TR_EBADFRAME, both messages sent to the peer are dead letters, and
 * the node and its other actors go on (a local exchange after). */
static void test_garbage_from_epmd_drops_only_that_peer(void)
{
    if (dt_skip())
        return;
    reset();
    struct junk_epmd j = {.listener = -1};
    j.listener = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t sl = sizeof sa;
    CU_ASSERT_FATAL(j.listener >= 0 && bind(j.listener, (struct sockaddr *)&sa, sizeof sa) == 0 &&
                    listen(j.listener, 16) == 0 &&
                    getsockname(j.listener, (struct sockaddr *)&sa, &sl) == 0);
    j.port = ntohs(sa.sin_port);
    pthread_t t = tt_thread(junk_epmd_main, &j);

    tr_pid c;
    tr_runtime *a = one_worker_node("tt_lg@localhost", j.port, &c);
    go(a, c, "other@localhost", 2);
    CU_ASSERT(tt_wait_count(&dead_n, 2, 30));
    TT_EQ(atomic_load(&sent_rc), 0);
    check_letters(0, 2, c);
    CU_ASSERT(tt_wait_count(&spins, SPINS, 30)); /* the client's own turns ran on */
    TT_EQ(tt_dead_letters(a), 2);
    TT_EQ(tr__dist_conns_up(a), 0);
    TT_NO_ERRORS();
    dt_node_end(a);
    atomic_store(&j.stop, true);
    tt_join(t);
    CU_ASSERT(j.asked >= 1);
    for (unsigned i = 0; i < j.nkept; i++)
        close(j.kept[i]);
    close(j.listener);
}

void register_dist_lookup_tests(void)
{
    CU_pSuite s = tt_suite("dist_lookup");
    tt_test(s, "unknown_node_drops_what_was_sent", test_unknown_node_drops_what_was_sent);
    tt_test(s, "frozen_epmd_blocks_no_worker", test_frozen_epmd_blocks_no_worker);
    tt_test(s, "node_starts_an_epmd_when_none_answers", test_node_starts_an_epmd_when_none_answers);
    tt_test(s, "garbage_from_epmd_drops_only_that_peer",
            test_garbage_from_epmd_drops_only_that_peer);
}
