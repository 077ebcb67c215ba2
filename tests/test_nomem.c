/* test_nomem.c — running out of memory.
 *
 * The test binary wraps the allocators (tt_alloc_fail). Each scenario runs
 * once to count its allocations, then once for each k with allocation k
 * failing, then once for each k with a burst of BURST failing from k on.
 * Every call that can fail must say so (TR_ENOMEM, or an error its header
 * documents) and the runtime go on: the run ends (no hang: nothing the
 * runtime sends itself is lost), every message owed arrives once (an EXIT
 * for each link and a DOWN for each monitor of an actor that ended, an
 * answer to each ask sent: the reserve, mailbox/msg.c), nothing leaks
 * (the SAN=address build), and afterwards the same runtime does the
 * scenario's work again whole and plays a ping-pong to its end with
 * every message accounted for.
 * NOMEM_ONLY=k (and NOMEM_COUNT=c, else 1) runs one window only, after
 * the count, to find where a failure starts (a breakpoint in tests/util.c
 * at the failing allocation gives its stack). NOMEM_FULL=1 sweeps the
 * dist scenario whole.
 * Scenarios: actors (spawns with specs and inits, links, monitors, a
 * name, an ask with a timeout, a timer, exits, a large message); a
 * supervisor (a child that crashes and is started again, then the tree
 * ended: it must end whole, however its restarts and kills fared); TCP (a
 * listener, a client connecting to it, an echo, closes); HTTP (the same
 * with a request and its response); the metrics server (its two pages,
 * one over a window, on one connection); UDP (two sockets, a datagram and
 * its echo, which must come whenever both opened); two nodes (a service
 * found by name through EPMD, a connection made, a link and a monitor
 * across, a message big enough to go in fragments, asks across: every ask
 * sent is answered once, the big message arrives whole or not at all, and
 * when the service's node ends each link and monitor made is told once;
 * and afterwards the nodes find each other again). And one test on its
 * own: a send cut short by a lack of memory closes its connection.
 */
#include "tests.h"

#include "dist_util.h"

#include <arpa/inet.h>
#include <limits.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

enum { GO = 1, STOP, QUIT, TICK, Q, PING, PONG };

/* A burst: this many allocations in a row fail. */
#define BURST 32

static bool ok_or_nomem(int rc)
{
    return rc == 0 || rc == TR_ENOMEM;
}

/* Calls that must not be given up — closing a listener, which would
 * otherwise hold the runtime open for ever, and telling a client to
 * close — are tried again until they get through: a burst ends. */
static int close_listener(tr_ctx *cx, tr_pid listener)
{
    int rc;
    while ((rc = tr_tcp_listener_close(cx, listener)) == TR_ENOMEM)
        ;
    return rc;
}

static int send_surely(tr_ctx *cx, tr_pid to, uint32_t type)
{
    int rc;
    while ((rc = tr_send(cx, to, type, NULL, 0)) == TR_ENOMEM)
        ;
    return rc;
}

/* The window armed, for a report of a run that did not end. */
static unsigned long armed_first, armed_count;

static void arm(unsigned long first, unsigned long count)
{
    armed_first = first;
    armed_count = count;
    tt_alloc_fail(first, count);
}

static void joined(tr_runtime *rt)
{
    int rc = tt_join_within(rt, 60);
    TT_EQ(rc, 0);
    if (rc != 0)
        printf("    (allocations %lu to %lu failing)\n", armed_first,
               armed_first + armed_count - 1);
}

/* Arms the window and makes a runtime of two workers inside it: NULL
 * (and the window off) if that failed, as it may. */
static tr_runtime *storm_runtime(unsigned long first, unsigned long count)
{
    arm(first, count);
    tr_config cfg;
    tr_config_init(&cfg);
    cfg.threads = 2;
    tr_runtime *rt = NULL;
    int rc = tr_runtime_create(&cfg, &rt);
    TT_CHECK(ok_or_nomem(rc));
    if (rc != 0)
        tt_alloc_fail(0, 0);
    return rt;
}

/* Spawns a scenario's root with its state, sends it GO, and runs rt
 * until it is quiet (each step may fail for want of memory). */
static void run_root(tr_runtime *rt, tr_behaviour fn, const void *state, size_t size)
{
    tr_pid r;
    int rc = tr_spawn(tr_runtime_ctx(rt), fn, state, size, &r);
    TT_CHECK(ok_or_nomem(rc));
    if (rc == 0)
        TT_CHECK(ok_or_nomem(tr_send(tr_runtime_ctx(rt), r, GO, NULL, 0)));
    rc = tr_runtime_start(rt);
    TT_CHECK(ok_or_nomem(rc));
    if (rc == 0)
        joined(rt);
}

/* ---- after the storm: a ping-pong on the same runtime ---------------- */

#define ROUNDS 1000

struct pinger {
    tr_pid ponger;
    unsigned left, got;
    unsigned *result;
};

static void ponger(tr_ctx *cx, void *state, const tr_msg *m)
{
    (void)state;
    if (m->type == PING)
        TT_CHECK(tr_send(cx, m->from, PONG, NULL, 0) == 0);
}

static void pinger(tr_ctx *cx, void *state, const tr_msg *m)
{
    struct pinger *p = state;
    if (m->type == PONG)
        p->got++;
    if (p->left == 0) {
        *p->result = p->got;
        return;
    }
    p->left--;
    TT_CHECK(tr_send(cx, p->ponger, PING, NULL, 0) == 0);
}

/* Every round trip comes back: the runtime is whole again. */
static void still_works(tr_runtime *rt)
{
    unsigned got = 0;
    tr_pid q, p;
    TT_EQ(tr_spawn(tr_runtime_ctx(rt), ponger, NULL, 0, &q), 0);
    struct pinger st = {.ponger = q, .left = ROUNDS, .result = &got};
    TT_EQ(tr_spawn(tr_runtime_ctx(rt), pinger, &st, sizeof st, &p), 0);
    TT_EQ(tr_send(tr_runtime_ctx(rt), p, GO, NULL, 0), 0);
    TT_EQ(tr_runtime_start(rt), 0);
    TT_EQ(tt_join_within(rt, 60), 0);
    TT_EQ(got, ROUNDS);
}

/* ---- the scenarios ----------------------------------------------------- */

/* A child of the root: answers asks, ends on STOP with a reason. */
static void child(tr_ctx *cx, void *state, const tr_msg *m)
{
    (void)state;
    if (m->type == Q)
        TT_CHECK(ok_or_nomem(tr_reply(cx, m, m->data, m->len)));
    else if (m->type == STOP)
        tr_exit(cx, 7, "asked to");
    else if (m->type == QUIT)
        tr_stop(cx);
}

static int child_init(tr_ctx *cx, void *state, tr_pid spawner)
{
    (void)state;
    (void)spawner;
    return ok_or_nomem(tr_send(cx, tr_self(cx), GO, NULL, 0)) ? 0 : -1;
}

/* What the root was promised, and what came. Written by the root's
 * turns only, read by the test once the run is over. */
struct outcome {
    tr_pid kids[4];
    bool linked[4], monitored[4]; /* the calls that promise an EXIT, a DOWN */
    uint64_t ref[4];              /* the monitors' */
    unsigned exits[4], downs[4];
    bool asked;       /* tr_ask said 0: exactly one answer is owed */
    unsigned answers; /* TR_REPLY or TR_ASK_FAILED */
    bool answered;    /* the reply came, with its value */
    bool ticked;      /* the timer fired */
};

static int kid_of(const struct outcome *o, tr_pid pid)
{
    for (int i = 0; i < 4; i++)
        if (o->kids[i] == pid && pid != TR_PID_NONE)
            return i;
    return -1;
}

/* Links, monitors, a name, an ask with a timeout, a timer, a spec with an
 * init, exits and stops: most of what allocates in actors/. The root
 * traps exits and lives on, so that every EXIT and DOWN it is owed can be
 * counted; the run ends when nothing is left to do. */
static void root(tr_ctx *cx, void *state, const tr_msg *m)
{
    struct outcome *o = *(struct outcome **)state;
    tr_runtime *rt = tr_ctx_runtime(cx);
    switch (m->type) {
    case GO: {
        tr_trap_exits(cx, true);
        for (unsigned i = 0; i < 3; i++) {
            int rc = tr_spawn_link(cx, child, NULL, 0, &o->kids[i]);
            TT_CHECK(ok_or_nomem(rc));
            o->linked[i] = rc == 0;
        }
        tr_actor_spec spec = {.behaviour = child, .init = child_init};
        int rc = tr_spawn_monitor(cx, &spec, &o->kids[3], &o->ref[3]);
        TT_CHECK(ok_or_nomem(rc));
        o->monitored[3] = rc == 0;
        if (o->linked[1]) {
            rc = tr_monitor(cx, o->kids[1], &o->ref[1]);
            TT_CHECK(ok_or_nomem(rc));
            o->monitored[1] = rc == 0;
        }
        if (o->linked[2]) { /* the run before may have left its kid holding it */
            rc = tr_register(rt, "nomem-kid", o->kids[2]);
            TT_CHECK(ok_or_nomem(rc) || rc == TR_EEXIST);
        }
        uint64_t v = 42;
        if (o->linked[0]) {
            rc = tr_ask(cx, o->kids[0], Q, &v, sizeof v, 5 * TR_SEC, NULL);
            TT_CHECK(ok_or_nomem(rc));
            o->asked = rc == 0;
        }
        TT_CHECK(ok_or_nomem(tr_send_after(cx, TR_MSEC, tr_self(cx), TICK, NULL, 0)));
        for (unsigned i = 1; i < 4; i++)
            if (o->kids[i] != TR_PID_NONE)
                TT_CHECK(ok_or_nomem(tr_send(cx, o->kids[i], STOP, NULL, 0)));
        /* A large message too: its own block, not the pools'. */
        static const char big[5000];
        TT_CHECK(ok_or_nomem(tr_send(cx, tr_self(cx), PING, big, sizeof big)));
        break;
    }
    case TR_REPLY:
    case TR_ASK_FAILED:
        o->answers++;
        if (m->type == TR_REPLY)
            o->answered = tt_u64(m) == 42;
        TT_CHECK(ok_or_nomem(tr_send(cx, o->kids[0], QUIT, NULL, 0)));
        break;
    case TR_EXIT: {
        tr_exit_info e;
        TT_CHECK(m->len == sizeof e);
        memcpy(&e, m->data, sizeof e);
        int i = kid_of(o, e.pid);
        TT_CHECK(i >= 0);
        if (i >= 0)
            o->exits[i]++;
        break;
    }
    case TR_DOWN: {
        tr_down_info d;
        TT_CHECK(m->len == sizeof d);
        memcpy(&d, m->data, sizeof d);
        int i = kid_of(o, d.pid);
        TT_CHECK(i >= 0 && o->ref[i] == d.ref);
        if (i >= 0)
            o->downs[i]++;
        break;
    }
    case TICK:
        o->ticked = true;
        break;
    default:
        break;
    }
}

/* One run of the actors' scenario on rt; then what was owed must have
 * come: an EXIT for each link and a DOWN for each monitor of a kid that
 * has ended (and never two), one answer to the ask. */
static void actors_run(tr_runtime *rt, struct outcome *o)
{
    memset(o, 0, sizeof *o);
    for (int i = 0; i < 4; i++)
        o->kids[i] = TR_PID_NONE;
    run_root(rt, root, &o, sizeof o);
    for (int i = 0; i < 4; i++) {
        tr_actor_figures f;
        bool ended = o->kids[i] != TR_PID_NONE && tr_actor_info(rt, o->kids[i], &f) == TR_ENOPID;
        TT_CHECK(o->exits[i] <= 1 && o->downs[i] <= 1);
        TT_CHECK(!(o->linked[i] && ended) || o->exits[i] == 1);
        TT_CHECK(!(o->monitored[i] && ended) || o->downs[i] == 1);
    }
    TT_CHECK(o->answers == (o->asked ? 1u : 0u));
}

/* One pass of the actors' scenario, with allocations failing as armed:
 * true if the runtime could be made (and so was run and checked). */
static bool actors_pass(unsigned long first, unsigned long count)
{
    tr_runtime *rt = storm_runtime(first, count);
    if (rt == NULL)
        return false;
    struct outcome o;
    actors_run(rt, &o);
    tt_alloc_fail(0, 0);
    actors_run(rt, &o); /* whole, once memory is back */
    TT_EQ(o.answered, true);
    TT_EQ(o.ticked, true);
    for (int i = 0; i < 4; i++)
        TT_EQ(o.exits[i] + o.downs[i], i == 1 ? 2 : 1);
    still_works(rt);
    tr_runtime_destroy(rt);
    return true;
}

/* ---- a supervisor: a restart, then the tree stopped -------------------- */

#define SUP_KIDS 16 /* the most child starts one run records */

static atomic_bool crash_pending;      /* the crasher's first start crashes */
static _Atomic tr_pid sup_kids[SUP_KIDS]; /* every child started, in order */
static atomic_uint sup_started;

static int kid_init(tr_ctx *cx, void *state, tr_pid spawner)
{
    (void)state;
    (void)spawner;
    unsigned i = atomic_fetch_add(&sup_started, 1);
    if (i < SUP_KIDS)
        atomic_store(&sup_kids[i], tr_self(cx));
    return 0;
}

static int crasher_init(tr_ctx *cx, void *state, tr_pid spawner)
{
    kid_init(cx, state, spawner);
    TT_CHECK(ok_or_nomem(tr_send(cx, tr_self(cx), GO, NULL, 0)));
    return 0;
}

static void crasher(tr_ctx *cx, void *state, const tr_msg *m)
{
    (void)state;
    (void)m;
    if (atomic_exchange(&crash_pending, false))
        tr_exit(cx, 9, "crash");
}

static void steady(tr_ctx *cx, void *state, const tr_msg *m)
{
    (void)cx;
    (void)state;
    (void)m;
}

struct sup_outcome {
    tr_pid sup;
    bool started, monitored, killed;
    uint64_t ref;
    unsigned exits, downs;
};

/* The supervisor told to end; the burst of failures ends, so it goes. */
static void kill_sup(tr_ctx *cx, struct sup_outcome *o)
{
    int rc;
    while ((rc = tr_kill(cx, o->sup, TR_EXIT_SHUTDOWN)) == TR_ENOMEM)
        ;
    TT_CHECK(rc == 0);
    o->killed = true;
}

/* Starts a supervisor of two children (it is linked to the root, which
 * traps exits, and monitored); the crasher crashes once and is started
 * again; after a moment (or at once, without a timer) the root ends the
 * supervisor: the tree ends, and the root hears of it twice, by the link
 * and by the monitor. */
static void sup_root(tr_ctx *cx, void *state, const tr_msg *m)
{
    struct sup_outcome *o = *(struct sup_outcome **)state;
    switch (m->type) {
    case GO: {
        tr_trap_exits(cx, true);
        tr_child_spec kids[2] = {
            {.actor = {.behaviour = crasher, .init = crasher_init}, .restart = TR_PERMANENT},
            {.actor = {.behaviour = steady, .init = kid_init}, .restart = TR_PERMANENT}};
        tr_supervisor_spec spec = {.strategy = TR_ONE_FOR_ONE, .max_restarts = 5,
                                   .children = kids, .nchildren = 2};
        int rc = tr_supervisor_start(cx, &spec, &o->sup);
        TT_CHECK(ok_or_nomem(rc));
        if (rc != 0)
            return;
        o->started = true;
        rc = tr_monitor(cx, o->sup, &o->ref);
        TT_CHECK(ok_or_nomem(rc));
        o->monitored = rc == 0;
        rc = tr_send_after(cx, 2 * TR_MSEC, tr_self(cx), TICK, NULL, 0);
        TT_CHECK(ok_or_nomem(rc));
        if (rc != 0)
            kill_sup(cx, o);
        break;
    }
    case TICK:
        if (o->started && !o->killed)
            kill_sup(cx, o);
        break;
    case TR_EXIT:
        o->exits++;
        break;
    case TR_DOWN:
        o->downs++;
        break;
    default:
        break;
    }
}

static bool dead(tr_runtime *rt, tr_pid pid)
{
    tr_actor_figures f;
    return tr_actor_info(rt, pid, &f) == TR_ENOPID;
}

/* One run of the supervisor's scenario on rt: a supervisor that started
 * was ended, with all its children, and the root heard of it once by the
 * link and once by the monitor. */
static void sup_run(tr_runtime *rt, struct sup_outcome *o)
{
    memset(o, 0, sizeof *o);
    o->sup = TR_PID_NONE;
    atomic_store(&crash_pending, true);
    atomic_store(&sup_started, 0);
    run_root(rt, sup_root, &o, sizeof o);
    if (!o->started)
        return;
    TT_CHECK(o->killed);
    TT_CHECK(dead(rt, o->sup));
    TT_CHECK(o->exits == 1);
    TT_CHECK(o->downs == (o->monitored ? 1u : 0u));
    unsigned n = atomic_load(&sup_started);
    for (unsigned i = 0; i < n && i < SUP_KIDS; i++)
        TT_CHECK(dead(rt, atomic_load(&sup_kids[i])));
}

static bool sup_pass(unsigned long first, unsigned long count)
{
    tr_runtime *rt = storm_runtime(first, count);
    if (rt == NULL)
        return false;
    struct sup_outcome o;
    sup_run(rt, &o);
    tt_alloc_fail(0, 0);
    sup_run(rt, &o); /* whole, once memory is back */
    TT_EQ(o.started && o.killed && o.monitored, true);
    TT_EQ(o.exits + o.downs, 2);
    TT_EQ(atomic_load(&sup_started), 3); /* the crasher twice, the steady one */
    still_works(rt);
    tr_runtime_destroy(rt);
    return true;
}

/* ---- the network: a listener, a client, a server --------------------- */

/* What the server does, what the client asks, and how the answer ends.
 * The server is a listener with that behaviour and framing, or, with
 * `serve` set, what serve starts (the metrics server). */
struct service {
    tr_framing framing;
    tr_behaviour server;
    const char *request, *answer_end;
    int (*serve)(tr_ctx *cx, tr_pid *listener, uint16_t *port);
};
static const struct service *service; /* the sweep's */

struct net_root {
    tr_pid listener, client, guard;
    uint64_t guard_ns; /* how long the client is given */
    bool *echoed;      /* the test's: set when the client got its bytes back */
};

struct client {
    tr_pid root;
    bool *echoed;
    size_t got;
    char tail[16]; /* the last bytes that came */
};

/* Either end that cannot send closes, so that the other hears of it. */
static void send_or_close(tr_ctx *cx, const void *data, size_t len)
{
    int rc = tr_tcp_send(cx, data, len);
    TT_CHECK(ok_or_nomem(rc));
    if (rc != 0)
        TT_CHECK(tr_tcp_close(cx) == 0);
}

static void echo_conn(tr_ctx *cx, void *state, const tr_msg *m)
{
    (void)state;
    if (m->type == TR_TCP_DATA)
        send_or_close(cx, m->data, m->len);
}

static void http_conn(tr_ctx *cx, void *state, const tr_msg *m)
{
    (void)state;
    if (m->type == TR_HTTP_REQUEST) {
        int rc = tr_http_respond(cx, 200, NULL, "ok", 2);
        TT_CHECK(ok_or_nomem(rc));
        if (rc != 0)
            TT_CHECK(tr_tcp_close(cx) == 0);
    }
}

static const struct service echo_service = {
    TR_FRAME_RAW, echo_conn, "0123456789abcdef", "0123456789abcdef", NULL};
static const struct service http_service = {
    TR_FRAME_HTTP, http_conn, "GET / HTTP/1.1\r\nHost: t\r\n\r\n", "\r\n\r\nok", NULL};

static int serve_metrics(tr_ctx *cx, tr_pid *listener, uint16_t *port)
{
    return tr_metrics_serve(cx, "127.0.0.1:0", port, listener);
}

/* The metrics server (observe/): the Prometheus page, then the actors
 * over a window (its timer), on one connection; the JSON's end ends it. */
static const struct service metrics_service = {
    TR_FRAME_RAW, NULL,
    "GET /metrics HTTP/1.1\r\nHost: t\r\n\r\n"
    "GET /actors?top=3&by=handled&window=2 HTTP/1.1\r\nHost: t\r\n\r\n",
    "]}\n", serve_metrics};

static void client(tr_ctx *cx, void *state, const tr_msg *m)
{
    struct client *c = state;
    if (m->type == TR_TCP_CONNECTED) {
        send_or_close(cx, service->request, strlen(service->request));
    } else if (m->type == QUIT) {
        (void)tr_tcp_close(cx); /* TR_ENOTCONN if it closed meanwhile */
    } else if (m->type == TR_TCP_DATA) {
        /* Keep the last sizeof tail bytes of all that came. */
        for (uint32_t i = 0; i < m->len; i++)
            c->tail[(c->got + i) % sizeof c->tail] = (char)m->data[i];
        c->got += m->len;
        size_t n = strlen(service->answer_end);
        bool ends = c->got >= n;
        for (size_t i = 0; ends && i < n; i++)
            ends = c->tail[(c->got - n + i) % sizeof c->tail] == service->answer_end[i];
        if (ends) {
            *c->echoed = true;
            TT_CHECK(tr_tcp_close(cx) == 0);
        }
    } else if (m->type == TR_TCP_CLOSED) {
        TT_CHECK(ok_or_nomem(tr_send(cx, c->root, STOP, NULL, 0)));
    }
}

/* Listens, connects to itself, and ends the listener when the client is
 * done (STOP) or, should that never come, after a moment (TICK): the
 * run ends either way. */
static void net_root(tr_ctx *cx, void *state, const tr_msg *m)
{
    struct net_root *r = state;
    if (m->type == GO) {
        uint16_t port = 0;
        tr_tcp_listen_opts lo = {.host = "127.0.0.1",
                                 .handler = {.actor.behaviour = service->server,
                                             .opts.framing = service->framing}};
        int rc = service->serve != NULL ? service->serve(cx, &r->listener, &port)
                                        : tr_tcp_listen(cx, &lo, &r->listener, &port);
        TT_CHECK(ok_or_nomem(rc));
        if (rc != 0) {
            tr_stop(cx);
            return;
        }
        struct client c = {.root = tr_self(cx), .echoed = r->echoed};
        tr_tcp_connect_opts co = {.host = "127.0.0.1", .port = port,
                                  .handler.actor = {.behaviour = client, .state = &c,
                                                    .state_size = sizeof c}};
        rc = tr_tcp_connect(cx, &co, &r->client);
        TT_CHECK(ok_or_nomem(rc));
        tr_timer_spec guard = {.delay_ns = r->guard_ns, .to = tr_self(cx), .type = TICK};
        if (rc != 0 || !ok_or_nomem(tr_timer_start(cx, &guard, &r->guard)) ||
            r->guard == TR_PID_NONE) {
            TT_CHECK(close_listener(cx, r->listener) == 0);
            tr_stop(cx);
        }
        return;
    }
    if (m->type == STOP || m->type == TICK) {
        TT_CHECK(close_listener(cx, r->listener) == 0);
        if (m->type == TICK && r->client != TR_PID_NONE) /* it may be waiting still */
            TT_CHECK(send_surely(cx, r->client, QUIT) == 0);
        if (m->type == STOP) /* a pending timer would hold the run open */
            TT_CHECK(tr_timer_cancel(cx, r->guard) >= 0);
        tr_stop(cx);
    }
}

/* One run of the network scenario on rt, the client given guard_ns:
 * whether the bytes came back. */
static bool net_run(tr_runtime *rt, uint64_t guard_ns)
{
    bool echoed = false;
    struct net_root st = {.listener = TR_PID_NONE, .client = TR_PID_NONE,
                          .guard = TR_PID_NONE, .guard_ns = guard_ns, .echoed = &echoed};
    run_root(rt, net_root, &st, sizeof st);
    return echoed;
}

static bool net_pass(unsigned long first, unsigned long count)
{
    tr_runtime *rt = storm_runtime(first, count);
    if (rt == NULL)
        return false;
    (void)net_run(rt, 20 * TR_MSEC); /* a client stuck for want of memory is let go soon */
    tt_alloc_fail(0, 0);
    /* The reactor and the sockets' paths are whole: the bytes come back
     * (the guard is only a safety net here, and cancelled). */
    TT_EQ(net_run(rt, 60 * TR_SEC), true);
    still_works(rt);
    tr_runtime_destroy(rt);
    return true;
}

/* ---- UDP: two sockets, a datagram and its echo ------------------------ */

struct udp_root {
    tr_pid server, client, guard;
    uint64_t guard_ns;
    bool *echoed;
    bool *set_up; /* the test's: both sockets open, the client told, the guard set */
};

struct udp_client {
    uint16_t port; /* the server's */
    tr_pid root;
    bool *echoed;
};

/* Both sockets end on QUIT (a UDP socket's close is its own call). */
static void udp_quit(tr_ctx *cx, const tr_msg *m)
{
    if (m->type == QUIT)
        TT_CHECK(tr_udp_close(cx) == 0);
}

static void udp_echo(tr_ctx *cx, void *state, const tr_msg *m)
{
    (void)state;
    if (m->type == TR_UDP_DATAGRAM) {
        const tr_udp_datagram *d = (const tr_udp_datagram *)m->data;
        int rc = tr_udp_send(cx, (const struct sockaddr *)&d->from, d->from_len, d->data, d->len);
        TT_CHECK(rc == 0 || rc == TR_EAGAIN); /* UDP may drop */
    }
    udp_quit(cx, m);
}

static void udp_client(tr_ctx *cx, void *state, const tr_msg *m)
{
    struct udp_client *c = state;
    if (m->type == GO) {
        struct sockaddr_in to = {.sin_family = AF_INET, .sin_port = htons(c->port),
                                 .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        int rc = tr_udp_send(cx, (const struct sockaddr *)&to, sizeof to, "ping", 4);
        TT_CHECK(rc == 0 || rc == TR_EAGAIN);
    } else if (m->type == TR_UDP_DATAGRAM) {
        const tr_udp_datagram *d = (const tr_udp_datagram *)m->data;
        TT_CHECK(d->len == 4 && memcmp(d->data, "ping", 4) == 0);
        *c->echoed = true;
        TT_CHECK(send_surely(cx, c->root, STOP) == 0);
    }
    udp_quit(cx, m);
}

/* Opens both sockets, has the client send, and closes both when the echo
 * has come (STOP) or after a moment (TICK): the run ends either way. */
static void udp_root(tr_ctx *cx, void *state, const tr_msg *m)
{
    struct udp_root *r = state;
    uint32_t type = m->type;
    if (type == GO) {
        uint16_t port = 0;
        tr_udp_opts so = {.host = "127.0.0.1", .actor.behaviour = udp_echo};
        int rc = tr_udp_open(cx, &so, &r->server, &port);
        TT_CHECK(ok_or_nomem(rc));
        struct udp_client c = {.port = port, .root = tr_self(cx), .echoed = r->echoed};
        tr_udp_opts co = {.host = "127.0.0.1",
                          .actor = {.behaviour = udp_client, .state = &c, .state_size = sizeof c}};
        if (rc == 0 && ok_or_nomem(rc = tr_udp_open(cx, &co, &r->client, NULL)) && rc == 0)
            rc = tr_send(cx, r->client, GO, NULL, 0);
        TT_CHECK(ok_or_nomem(rc));
        tr_timer_spec guard = {.delay_ns = r->guard_ns, .to = tr_self(cx), .type = TICK};
        if (rc == 0 && ok_or_nomem(tr_timer_start(cx, &guard, &r->guard)) &&
            r->guard != TR_PID_NONE) {
            *r->set_up = true;
            return;
        }
        type = STOP; /* no way on: end now */
    }
    if (type == STOP || type == TICK) {
        if (r->server != TR_PID_NONE)
            TT_CHECK(send_surely(cx, r->server, QUIT) == 0);
        if (r->client != TR_PID_NONE)
            TT_CHECK(send_surely(cx, r->client, QUIT) == 0);
        if (type == STOP && r->guard != TR_PID_NONE) /* a pending timer holds the run */
            TT_CHECK(tr_timer_cancel(cx, r->guard) >= 0);
        tr_stop(cx);
    }
}

/* One run: whether the datagram came back; *set_up as udp_root's. */
static bool udp_run(tr_runtime *rt, bool *set_up)
{
    bool echoed = false;
    *set_up = false;
    struct udp_root st = {.server = TR_PID_NONE, .client = TR_PID_NONE, .guard = TR_PID_NONE,
                          .guard_ns = 60 * TR_SEC, .echoed = &echoed, .set_up = set_up};
    run_root(rt, udp_root, &st, sizeof st);
    return echoed;
}

/* Once both sockets are open, nothing on the datagram's way needs memory
 * that is not tried again (a watch, a buffer to read into: net/listen.c,
 * net/udp.c), so the echo comes in the storm too. (The guard, 60 s, is
 * only a safety net.) */
static bool udp_pass(unsigned long first, unsigned long count)
{
    tr_runtime *rt = storm_runtime(first, count);
    if (rt == NULL)
        return false;
    bool set_up;
    bool echoed = udp_run(rt, &set_up);
    tt_alloc_fail(0, 0);
    if (set_up && !echoed)
        printf("    (allocations %lu to %lu failing: no echo)\n", first, first + count - 1);
    TT_CHECK(echoed || !set_up);
    /* Whole again. */
    TT_EQ(udp_run(rt, &set_up), true);
    still_works(rt);
    tr_runtime_destroy(rt);
    return true;
}

/* ---- two nodes: a name looked up, a connection made, asks across ------ */

enum { HELLO = 20, HELLO_BACK, BIG };
#define DIST_ASKS 8
/* Past a fragment (dist/frag.c: 64 KiB): sent in pieces. */
#define BIG_LEN (100 * 1000)
#define DIST_TRIES 3 /* in the storm */
/* Two nodes are slow to make (an EPMD exchange each): the suite takes
 * every DIST_STRIDE-th allocation (NOMEM_FULL=1: all, some minutes). */
#define DIST_STRIDE 7

static uint16_t epmd_port;   /* the suite's private EPMD */
static unsigned node_serial; /* node names are new each pass */

struct driver {
    char node[64];     /* the service's node */
    tr_pid svc;        /* once it has answered HELLO */
    unsigned max_tries; /* HELLOs before it gives up */
    unsigned tries, asked, answers, replies;
    bool over;         /* done: what comes later is not counted */
    atomic_bool *done; /* the test's */
    /* A link and a monitor to the service, made or not; what came of
     * them (read by the test once the service's node has ended). */
    atomic_uint linked, monitored, exits, downs;
};

static unsigned char big_bytes(size_t i)
{
    return (unsigned char)(i * 7 + i / 251);
}

/* B's service, registered as "svc": answers HELLO, and asks. */
static void svc(tr_ctx *cx, void *state, const tr_msg *m)
{
    (void)state;
    if (m->type == HELLO) {
        /* A sender the node could not record (out of memory) comes as
         * TR_PID_NONE, which no one can answer. */
        int rc = tr_send(cx, m->from, HELLO_BACK, NULL, 0);
        TT_CHECK(ok_or_nomem(rc) || (m->from == TR_PID_NONE && rc == TR_ENOPID));
    }
    else if (m->type == Q)
        TT_CHECK(ok_or_nomem(tr_reply(cx, m, m->data, m->len)));
    else if (m->type == BIG) { /* whole, or not at all */
        const unsigned char *b = m->data;
        size_t bad = m->len == BIG_LEN ? 0 : 1;
        for (size_t i = 0; bad == 0 && i < m->len; i++)
            bad += b[i] != big_bytes(i);
        TT_CHECK(bad == 0);
    }
}

/* The service traps exits: a driver's link to it hears of a connection
 * that went (noconnection), and that must not end the service the next
 * exchange looks for (a link's exit ending a process that does not trap
 * is the rule working, not the test's subject). */
static int svc_init(tr_ctx *cx, void *state, tr_pid spawner)
{
    (void)state;
    (void)spawner;
    tr_trap_exits(cx, true);
    return 0;
}

/* The link, the monitor and the big message, once the service is known. */
static void across(tr_ctx *cx, struct driver *d)
{
    tr_trap_exits(cx, true);
    int rc = tr_link(cx, d->svc);
    TT_CHECK(ok_or_nomem(rc));
    atomic_store(&d->linked, rc == 0);
    rc = tr_monitor(cx, d->svc, NULL);
    TT_CHECK(ok_or_nomem(rc));
    atomic_store(&d->monitored, rc == 0);
    unsigned char *b = malloc(BIG_LEN);
    if (b != NULL) {
        for (size_t i = 0; i < BIG_LEN; i++)
            b[i] = big_bytes(i);
        TT_CHECK(ok_or_nomem(tr_send(cx, d->svc, BIG, b, BIG_LEN)));
        free(b);
    }
}

static void driver_end(struct driver *d)
{
    d->over = true;
    atomic_store(d->done, true);
}

static void hello(tr_ctx *cx, struct driver *d)
{
    int rc = tr_send_named(cx, "svc", d->node, HELLO, NULL, 0);
    TT_CHECK(ok_or_nomem(rc));
    rc = tr_send_after(cx, 100 * TR_MSEC, tr_self(cx), TICK, NULL, 0);
    TT_CHECK(ok_or_nomem(rc));
    if (rc != 0)
        driver_end(d); /* no way to try again: give up */
}

/* A's driver: says HELLO to the service by name (again every 100 ms,
 * max_tries times in all, should nothing come), then asks it
 * DIST_ASKS times; done when every ask is answered, or after the last
 * try. */
static void driver(tr_ctx *cx, void *state, const tr_msg *m)
{
    struct driver *d = *(struct driver **)state;
    if (d->over && m->type != TR_EXIT && m->type != TR_DOWN)
        return; /* (a HELLO_BACK after the driver gave up: the test has read its counts) */
    switch (m->type) {
    case GO:
        d->tries = 1;
        hello(cx, d);
        break;
    case TICK:
        if (d->svc != TR_PID_NONE)
            break;
        if (d->tries++ < d->max_tries)
            hello(cx, d);
        else
            driver_end(d);
        break;
    case HELLO_BACK:
        /* (From TR_PID_NONE when this node could not record the sender:
         * nothing to ask; the next HELLO may do better.) */
        if (d->svc != TR_PID_NONE || m->from == TR_PID_NONE)
            break;
        d->svc = m->from;
        across(cx, d);
        for (uint64_t v = 0; v < DIST_ASKS; v++) {
            int rc = tr_ask(cx, d->svc, Q, &v, sizeof v, 2 * TR_SEC, NULL);
            TT_CHECK(ok_or_nomem(rc));
            d->asked += rc == 0;
        }
        if (d->asked == 0)
            driver_end(d);
        break;
    case TR_REPLY:
    case TR_ASK_FAILED:
        d->answers++;
        d->replies += m->type == TR_REPLY;
        if (d->answers == d->asked)
            driver_end(d);
        break;
    case TR_EXIT:
        if (m->from == d->svc)
            atomic_fetch_add(&d->exits, 1);
        break;
    case TR_DOWN:
        if (m->from == d->svc)
            atomic_fetch_add(&d->downs, 1);
        break;
    default:
        break;
    }
}

/* A running runtime that is a node with a name new to this process, or
 * NULL (as it may be, out of memory). */
static tr_runtime *node(const char *base, char *full, size_t cap)
{
    tr_config cfg;
    tr_config_init(&cfg);
    cfg.threads = 2;
    tr_runtime *rt = NULL;
    int rc = tr_runtime_create(&cfg, &rt);
    TT_CHECK(ok_or_nomem(rc));
    if (rc != 0)
        return NULL;
    snprintf(full, cap, "%s%u@localhost", base, node_serial++);
    tr_node_opts o = {.name = full, .cookie = "nomem", .host = "127.0.0.1",
                      .epmd_port = epmd_port};
    rc = tr_node_start(tr_runtime_ctx(rt), &o);
    TT_CHECK(ok_or_nomem(rc));
    if (rc == 0 && (rc = tr_runtime_start(rt)) != 0)
        TT_CHECK(ok_or_nomem(rc));
    if (rc != 0) {
        if (tr_node_name(rt) != NULL)
            TT_CHECK(tr_node_stop(tr_runtime_ctx(rt)) == 0);
        tr_runtime_destroy(rt);
        return NULL;
    }
    return rt;
}

static void node_end(tr_runtime *rt)
{
    TT_EQ(tr_node_stop(tr_runtime_ctx(rt)), 0);
    tr_runtime_shutdown(rt);
    int rc = tt_join_within(rt, 30);
    TT_CHECK(rc == 0 || rc == 1);
    tr_runtime_destroy(rt);
}

/* One exchange from a to the service on node b_name, driven by *d (which
 * lives as long as the nodes: a driver that never finished may still be
 * told something): every ask sent is answered once. The replies. */
static unsigned exchange(tr_runtime *a, const char *b_name, unsigned max_tries, struct driver *d,
                         atomic_bool *done)
{
    atomic_store(done, false);
    *d = (struct driver){.svc = TR_PID_NONE, .max_tries = max_tries, .done = done};
    snprintf(d->node, sizeof d->node, "%s", b_name);
    tr_pid p;
    int rc = tr_spawn(tr_runtime_ctx(a), driver, &d, sizeof d, &p);
    TT_CHECK(ok_or_nomem(rc));
    if (rc == 0)
        rc = tr_send(tr_runtime_ctx(a), p, GO, NULL, 0);
    TT_CHECK(ok_or_nomem(rc));
    if (rc == 0 && !tt_wait_flag(done, 60)) { /* a safety net, not a timing */
        TT_CHECK(!"the driver never finished");
        printf("    (allocations %lu to %lu failing)\n", armed_first, armed_first + armed_count - 1);
    }
    TT_CHECK(d->answers == d->asked);
    if (d->answers != d->asked)
        printf("    (allocations %lu to %lu failing: asked %u, answers %u, replies %u)\n",
               armed_first, armed_first + armed_count - 1, d->asked, d->answers, d->replies);
    return d->replies;
}

/* Once the service's node has ended: an EXIT for the link if one was
 * made, a DOWN for the monitor if one was — exactly one each, whether the
 * signal crossed, the connection went, or it could not be carried. */
static void told_once(struct driver *d)
{
    double until = tt_now() + 60; /* a safety net, not a timing */
    while ((atomic_load(&d->exits) < atomic_load(&d->linked) ||
            atomic_load(&d->downs) < atomic_load(&d->monitored)) &&
           tt_now() < until)
        tt_sleep_ms(1);
    TT_EQ(atomic_load(&d->exits), atomic_load(&d->linked));
    TT_EQ(atomic_load(&d->downs), atomic_load(&d->monitored));
    if (atomic_load(&d->exits) != atomic_load(&d->linked) ||
        atomic_load(&d->downs) != atomic_load(&d->monitored))
        printf("    (allocations %lu to %lu failing: exits %u/%u, downs %u/%u)\n", armed_first,
               armed_first + armed_count - 1, atomic_load(&d->exits), atomic_load(&d->linked),
               atomic_load(&d->downs), atomic_load(&d->monitored));
}

static bool dist_pass(unsigned long first, unsigned long count)
{
    static struct driver storm, calm; /* past the end of the nodes */
    static atomic_bool storm_done, calm_done;
    arm(first, count);
    char a_name[64], b_name[64];
    tr_runtime *b = node("nomemb", b_name, sizeof b_name);
    tr_runtime *a = b != NULL ? node("nomema", a_name, sizeof a_name) : NULL;
    if (b != NULL) {
        tr_actor_spec spec = {.behaviour = svc, .init = svc_init, .name = "svc"};
        int rc = tr_spawn_spec(tr_runtime_ctx(b), &spec, NULL);
        TT_CHECK(ok_or_nomem(rc));
        if (a != NULL && rc == 0)
            (void)exchange(a, b_name, DIST_TRIES, &storm, &storm_done);
    }
    tt_alloc_fail(0, 0);
    if (a == NULL || b == NULL || tr_whereis(b, "svc") == TR_PID_NONE) {
        if (a != NULL)
            node_end(a);
        if (b != NULL)
            node_end(b);
        return false;
    }
    /* Whole again: the name is found and every ask replied to. */
    /* (Tries enough for a minute: a safety net, not a timing.) */
    unsigned replies = exchange(a, b_name, 600, &calm, &calm_done);
    TT_EQ(replies, DIST_ASKS);
    if (replies != DIST_ASKS)
        printf("    (after allocations %lu to %lu failed; tries %u, asked %u, answers %u)\n",
               first, first + count - 1, calm.tries, calm.asked, calm.answers);
    /* The service's node ends: every link and monitor made is told once. */
    node_end(b);
    told_once(&storm);
    told_once(&calm);
    node_end(a);
    return true;
}

/* Sweeps a scenario: each allocation failing alone, then each beginning
 * a burst; every stride-th of them only, unless NOMEM_FULL is set. */
static void sweep_every(bool (*pass)(unsigned long first, unsigned long count), const char *what,
                        unsigned long stride)
{
    if (getenv("NOMEM_FULL") != NULL)
        stride = 1;
    const char *only = getenv("NOMEM_ONLY"), *count = getenv("NOMEM_COUNT");
    if (only != NULL) { /* one window, after the count: to find a failure's site */
        (void)pass(ULONG_MAX, 0);
        unsigned long k = strtoul(only, NULL, 10), c = count != NULL ? strtoul(count, NULL, 10) : 1;
        printf("[%s: %lu allocations; %lu to %lu failing] ", what, tt_alloc_seen(), k, k + c - 1);
        (void)pass(k, c);
        TT_NO_ERRORS();
        return;
    }
    TT_EQ(pass(ULONG_MAX, 0), true); /* counting only */
    unsigned long n = tt_alloc_seen();
    CU_ASSERT(n > 0);
    unsigned long ran = 0;
    for (unsigned long k = 1; k <= n + 2; k += stride)
        ran += pass(k, 1);
    for (unsigned long k = 1; k <= n + 2; k += stride)
        ran += pass(k, BURST);
    printf("[%s: %lu allocations, %lu runs made a runtime] ", what, n, ran);
    TT_NO_ERRORS();
}

static void sweep(bool (*pass)(unsigned long first, unsigned long count), const char *what)
{
    sweep_every(pass, what, 1);
}

static void test_actors(void)
{
    sweep(actors_pass, "actors");
}

static void test_supervisor(void)
{
    sweep(sup_pass, "supervisor");
}

static void test_dist(void)
{
    if (dt_skip())
        return;
    epmd_port = dt_epmd_start();
    CU_ASSERT_FATAL(epmd_port != 0);
    sweep_every(dist_pass, "dist", DIST_STRIDE);
    dt_epmd_stop(epmd_port);
}

static void test_tcp(void)
{
    service = &echo_service;
    sweep(net_pass, "tcp");
}

static void test_http(void)
{
    service = &http_service;
    sweep(net_pass, "http");
}

/* ---- a send cut short -------------------------------------------------- */

/* A tr_tcp_send of which the socket took a part at once (a direct write
 * into an empty queue) and whose rest cannot be queued for want of
 * memory: the stream would lose its middle if the connection went on (a
 * later send's bytes would follow the part that went), so it closes with
 * TR_ENOMEM. The peer never reads, so that the socket takes only part. */
#define CUT_LEN ((size_t)64 << 20)

struct cut {
    int send_rc, after_rc, reason;
    bool closed;
};

static void cut_conn(tr_ctx *cx, void *state, const tr_msg *m)
{
    struct cut *c = *(struct cut **)state;
    if (m->type == TR_TCP_CONNECTED) {
        char *big = malloc(CUT_LEN);
        CU_ASSERT_FATAL(big != NULL);
        memset(big, 'a', CUT_LEN);
        tt_alloc_fail(1, 1000); /* every allocation, for the length of one call */
        c->send_rc = tr_tcp_send(cx, big, CUT_LEN);
        tt_alloc_fail(0, 0);
        c->after_rc = tr_tcp_send(cx, "tail", 4);
        free(big);
        if (c->after_rc != TR_ENOTCONN) /* still open: the run must end all the same */
            TT_CHECK(tr_tcp_abort(cx) == 0);
    } else if (m->type == TR_TCP_CLOSED) {
        TT_CHECK(m->len == sizeof(tr_tcp_error));
        c->reason = ((const tr_tcp_error *)m->data)->reason;
        c->closed = true;
    }
}

static void test_metrics(void)
{
    service = &metrics_service;
    sweep(net_pass, "metrics");
}

static void test_udp(void)
{
    sweep(udp_pass, "udp");
}

static void test_send_cut_short(void)
{
    int lfd = socket(AF_INET, SOCK_STREAM, 0);
    CU_ASSERT_FATAL(lfd >= 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t alen = sizeof a;
    TT_EQ(bind(lfd, (struct sockaddr *)&a, sizeof a), 0);
    TT_EQ(listen(lfd, 4), 0);
    TT_EQ(getsockname(lfd, (struct sockaddr *)&a, &alen), 0);

    tr_runtime *rt = tt_runtime(1, 0);
    struct cut c = {.send_rc = 1, .after_rc = 1};
    struct cut *cp = &c;
    tr_tcp_connect_opts co = {.host = "127.0.0.1", .port = ntohs(a.sin_port),
                              .handler = {.actor = {.behaviour = cut_conn, .state = &cp,
                                                    .state_size = sizeof cp},
                                          .opts.max_output = 2 * CUT_LEN}};
    TT_EQ(tr_tcp_connect(tr_runtime_ctx(rt), &co, NULL), 0);
    TT_EQ(tr_runtime_run(rt), 0);
    TT_EQ(c.send_rc, TR_ENOMEM);
    TT_EQ(c.after_rc, TR_ENOTCONN); /* closing: nothing more joins the stream */
    TT_EQ(c.closed, true);
    TT_EQ(c.reason, TR_ENOMEM);
    TT_NO_ERRORS();
    tr_runtime_destroy(rt);
    close(lfd);
}

void register_nomem_tests(void)
{
    CU_pSuite s = tt_suite("nomem");
    tt_test(s, "actors_every_allocation_failing", test_actors);
    tt_test(s, "supervisor_every_allocation_failing", test_supervisor);
    tt_test(s, "tcp_every_allocation_failing", test_tcp);
    tt_test(s, "http_every_allocation_failing", test_http);
    tt_test(s, "udp_every_allocation_failing", test_udp);
    tt_test(s, "metrics_server_every_allocation_failing", test_metrics);
    tt_test(s, "send_cut_short_closes_its_connection", test_send_cut_short);
    tt_test(s, "dist_every_allocation_failing", test_dist);
}
