/* dist/lookup.c — finding a peer before connecting to it: an actor, a
 * troupe TCP connection to the peer host's EPMD, asks for the peer's port
 * (PORT_PLEASE2), starts the node connection there (dist/conn.c) and
 * ends. No thread waits for EPMD: the behaviour that sent to the peer has
 * long gone on, and a slow, frozen or absent EPMD costs the lookup's own
 * time only (LOOKUP_NS for the answer, as long for the connect).
 *
 * The lookup holds the peer's claim (p->conn) from its start, as an
 * outgoing connection does, so that what is sent meanwhile waits in the
 * peer's queue (dist/node.c) and a second send does not start a second
 * lookup. It hands the claim to the node connection it starts; an
 * incoming connection may take it before that (a simultaneous connect:
 * conn.c, decide), and tr_node_stop ends it, both with TR__DIST_CLOSE.
 * When the lookup fails (no such node, no EPMD, no answer in time) the
 * claim goes and so does the queue: each message in it becomes a dead
 * letter, as Erlang drops what is sent to a node it cannot reach, and an
 * ask among them fails at once.
 *
 * Under simulation there is no EPMD to ask: the table that stands in for
 * it (dist/simepmd.c) answers at once, in the lookup's first turn (its
 * init), and the rest goes as above. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../actors/context.h"
#include "../base/sim.h"
#include "../mailbox/msg.h"
#include "../sched/sched.h"
#include "dist.h"
#include "troupe/timer.h"

/* How long EPMD has to answer once connected, and the connect's bound. */
#define LOOKUP_NS (1 * TR_SEC)

/* The timer's message: a user type (timers send no reserved ones) with a
 * payload no one else sends. */
#define EXPIRY_TYPE  (TR_MSG_SYSTEM - 1)
#define EXPIRY_MAGIC UINT64_C(0x6c6f6f6b75707473)

typedef struct lookup {
    uint64_t node_id;
    uint16_t epmd_port;
    char peer[TR__NODE_NAME_MAX + 1];
    char alive[TR__NODE_NAME_MAX + 1];
    char host[TR__NODE_NAME_MAX + 1];
    char addr[TR__NODE_NAME_MAX + 1]; /* to connect to: host, or simepmd's */
    uint8_t in[600]; /* EPMD's answer: 14 bytes and a name of 255 at most */
    size_t got;
    tr_pid timer;
    bool done;       /* the claim handed on, given up or taken */
    bool unknown;    /* EPMD answered that it has no such name */
} lookup;

/* Under the lock: the peer, if its claim is still ours. */
static tr__peer *claimed(tr_ctx *cx, const lookup *l)
{
    uint32_t idx;
    tr__dist_node *n = tr__dist_node_of(tr_ctx_runtime(cx), l->node_id);
    tr__peer *p = n != NULL ? tr__dist_peer(n, l->peer, &idx) : NULL;
    return p != NULL && p->conn == tr_self(cx) ? p : NULL;
}

/* The lookup failed: the claim goes, and what waited for the peer is
 * dropped — unless the claim had gone already, to a connection that will
 * send it. */
static void fail(tr_ctx *cx, lookup *l, int err)
{
    if (l->done)
        return;
    l->done = true;
    tr_msg **queue = NULL;
    size_t n = 0;
    tr__dist_lock();
    tr__peer *p = claimed(cx, l);
    if (p != NULL) {
        p->conn = TR_PID_NONE;
        queue = tr__dist_take_queue(p, &n);
    }
    tr__dist_unlock();
    if (p == NULL)
        return;
    fprintf(stderr, "troupe: dist: no connection to %s: EPMD at %s: %s%s\n", l->peer, l->host,
            l->unknown ? "no such name" : tr_strerror(err),
            n != 0 ? "; what was sent to it is dropped" : "");
    tr__dist_drop_queue(cx, queue, n);
}

/* EPMD named the port: the node connection starts there and takes the
 * claim. */
static void found(tr_ctx *cx, lookup *l, uint16_t port)
{
    void *state = malloc(tr__dist_conn_state_size());
    if (state == NULL) {
        fail(cx, l, TR_ENOMEM);
        return;
    }
    int err = 0;
    tr__dist_lock();
    tr__peer *p = claimed(cx, l);
    if (p != NULL) {
        tr__dist_node *n = tr__dist_node_of(tr_ctx_runtime(cx), l->node_id);
        tr_tcp_connect_opts co = {.host = l->addr, .port = port, .timeout_ns = 5 * TR_SEC};
        tr__dist_conn_handler(n, l->peer, &co.handler, state);
        tr_pid conn;
        if ((err = tr_tcp_connect(cx, &co, &conn)) == 0) {
            p->conn = conn;
            l->done = true;
        }
    } else {
        l->done = true; /* taken meanwhile: nothing is ours to do */
    }
    tr__dist_unlock();
    free(state);
    if (err != 0)
        fail(cx, l, err);
}

static void asked(tr_ctx *cx, lookup *l)
{
    uint8_t req[8 + TR__NODE_NAME_MAX];
    size_t len = tr__epmd_port_req(req, sizeof req, l->alive);
    int err = len != 0 ? tr_tcp_send(cx, req, len) : TR_EINVAL;
    uint64_t magic = EXPIRY_MAGIC;
    tr_timer_spec t = {.delay_ns = LOOKUP_NS, .to = tr_self(cx), .type = EXPIRY_TYPE,
                       .data = &magic, .len = sizeof magic};
    if (err == 0)
        err = tr_timer_start(cx, &t, &l->timer);
    if (err != 0) {
        fail(cx, l, err);
        (void)tr_tcp_abort(cx);
    }
}

static void answered(tr_ctx *cx, lookup *l, const void *data, size_t len)
{
    if (l->done)
        return;
    int r = TR_EBADFRAME; /* more than any answer */
    if (len <= sizeof l->in - l->got) {
        memcpy(l->in + l->got, data, len);
        l->got += len;
        uint16_t port = 0;
        if ((r = tr__epmd_port_resp(l->in, l->got, &port)) == 0)
            return; /* more to come */
        l->unknown = r == TR_EHOSTUNREACH; /* EPMD's answer: not registered */
        if (r == 1) {
            found(cx, l, port);
            (void)tr_tcp_close(cx);
            return;
        }
    }
    fail(cx, l, r);
    (void)tr_tcp_abort(cx);
}

static void lookup_behaviour(tr_ctx *cx, void *state, const tr_msg *m)
{
    lookup *l = state;
    switch (m->type) {
    case TR_TCP_CONNECTED:
        asked(cx, l);
        return;
    case TR_TCP_DATA:
        answered(cx, l, m->data, m->len);
        return;
    case EXPIRY_TYPE: {
        const uint64_t *magic = TR_PAYLOAD(m, uint64_t);
        if (magic != NULL && *magic == EXPIRY_MAGIC) {
            l->timer = TR_PID_NONE;
            fail(cx, l, TR_ETIMEDOUT);
            (void)tr_tcp_abort(cx);
        }
        return;
    }
    case TR__DIST_CLOSE: /* the claim was taken, or the node stops */
        l->done = true;
        (void)tr_tcp_abort(cx);
        return;
    case TR_TCP_CLOSED: {
        const tr_tcp_error *e = TR_PAYLOAD(m, tr_tcp_error);
        int why = e != NULL && e->reason != 0 ? e->reason : TR_ECONNABORTED;
        fail(cx, l, why == -ECONNREFUSED ? TR_EHOSTUNREACH : why);
        if (l->timer != TR_PID_NONE)
            (void)tr_timer_cancel(cx, l->timer);
        return;
    }
    default:
        return;
    }
}

/* The simulated lookup, whole, as the actor starts. */
static int look_simulated(tr_ctx *cx, void *state, tr_pid spawner)
{
    (void)spawner;
    lookup *l = state;
    uint16_t port = 0;
    int err = tr__simepmd_lookup(l->epmd_port, l->alive, &port, l->addr);
    l->unknown = err == TR_EHOSTUNREACH;
    if (err == 0)
        found(cx, l, port);
    else
        fail(cx, l, err);
    tr_stop(cx);
    return 0;
}

int tr__dist_lookup(tr_ctx *cx, const tr__dist_node *n, const char *peer, tr_pid *pid)
{
    lookup l = {.node_id = n->id, .epmd_port = n->epmd_port, .timer = TR_PID_NONE};
    if (tr__node_split(peer, l.alive, sizeof l.alive, l.host, sizeof l.host) != 0)
        return TR_EINVAL;
    strcpy(l.peer, peer);
    strcpy(l.addr, l.host);
    if (tr__sim_on()) {
        tr_actor_spec spec = {.behaviour = lookup_behaviour, .init = look_simulated,
                              .state = &l, .state_size = sizeof l};
        return tr_spawn_spec(cx, &spec, pid);
    }
    tr_tcp_connect_opts co = {.host = l.host, .port = n->epmd_port, .timeout_ns = LOOKUP_NS};
    co.handler.actor.behaviour = lookup_behaviour;
    co.handler.actor.state = &l;
    co.handler.actor.state_size = sizeof l;
    co.handler.opts.framing = TR_FRAME_RAW;
    return tr_tcp_connect(cx, &co, pid);
}
