/* dist/conn.c — a node connection: a troupe TCP connection actor (raw
 * framing) that runs the handshake, then carries control messages both
 * ways and ticks.
 *
 * Frames cut here, not by the TCP layer: 2-byte lengths during the
 * handshake and 4-byte ones after, switching in the middle of a read.
 * Nothing is encoded for the peer before the handshake is done: what
 * local actors send meanwhile waits in the peer's queue as messages
 * (dist/node.c, tr__dist_deliver), whichever attempt wins, and the
 * connection that comes up sends it first. What crosses once up
 * (messages, links, monitors): dist/signals.c.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "../actors/context.h"
#include "../base/clock.h"
#include "../net/net.h"
#include "../mailbox/msg.h"
#include "../sched/sched.h"
#include "conn.h"
#include "troupe/fault.h"
#include "troupe/timer.h"

/* The tick timer's message: a user type (timers send no reserved ones),
 * with a payload no one else sends. */
#define TICK_TYPE  (TR_MSG_SYSTEM - 1)
#define TICK_MAGIC UINT64_C(0x7469636b64697374)

#define HS_FRAME_MAX 65535 /* a handshake message may carry extra bytes */

typedef tr__dconn dconn;

size_t tr__dist_conn_state_size(void)
{
    return sizeof(dconn);
}

void tr__dconn_say(const dconn *c, const char *what, int err)
{
    fprintf(stderr, "troupe: dist %s <-> %s: %s%s%s\n", c->self, c->peer[0] ? c->peer : "?", what,
            err != 0 ? ": " : "", err != 0 ? tr_strerror(err) : "");
}

static void end(tr_ctx *cx, dconn *c, bool graceful);

/* A frame that never reaches the socket leaves a hole in the stream: a
 * link, an exit or a message missing between others, or a fragmented
 * message cut short (the peer would take its next fragment for a
 * malformed frame). Erlang orders signals between two processes on the
 * promise that a connection either carries them all or goes down, so on
 * an up connection a frame lost for want of memory ends it: its links
 * and monitors hear TR_EXIT_NOCONNECTION, its asks fail, and the next
 * send dials again. A frame refused for what it holds (a payload the
 * term encoder rejects) is reported and the connection goes on; other
 * errors come from a socket that is closing already. (Nothing is sent
 * before the handshake is done.) */
void tr__dconn_lost(tr_ctx *cx, dconn *c, const char *what, int err)
{
    tr__dconn_say(c, what, err);
    if (!c->closing && (err == TR_ENOMEM || err == TR_ENOBUFS))
        end(cx, c, false);
}

static void conn_on_stop(void *state, int reason)
{
    dconn *c = state;
    (void)reason;
    free(c->in);
    tr__dist_conn_free(c);
    tr__frag_free(c);
}

/* ---- sending ---- */

/* Encodes and sends a control message with an optional term. */
void tr__dconn_send_ctl(tr_ctx *cx, dconn *c, const tr__ctl *ctl, uint32_t type,
                        const void *data, size_t len, bool with_msg)
{
    if (!tr__frag_enc(c)) {
        tr__dconn_lost(cx, c, "message not sent", TR_ENOMEM);
        return;
    }
    ei_x_buff *x = &c->enc;
    int err = tr__ctl_encode(x, ctl);
    size_t ctl_end = (size_t)x->index;
    if (err == 0 && with_msg)
        err = tr__term_from_msg(x, type, data, len);
    if (err == 0)
        err = tr__ctl_finish(x);
    if (err == 0)
        err = tr__frag_out(cx, c, x, ctl_end);
    if (err != 0)
        tr__dconn_lost(cx, c, "message not sent", err);
}

/* A TR__DIST_OUT to the peer; or, once the connection is ending (a lost
 * frame may end it part way through the peer's queue), answered as the
 * end answers it (tr__dist_out_refused). */
static void send_or_refuse(tr_ctx *cx, dconn *c, const tr_msg *m)
{
    if (c->up && !c->closing)
        tr__dist_send_out(cx, c, m);
    else
        tr__dist_out_refused(tr_ctx_runtime(cx), tr__cx_worker(cx), m);
}

/* A tick: 4 bytes. */
static void send_tick(tr_ctx *cx, dconn *c)
{
    static const unsigned char zero[4];
    if (c->up && tr_tcp_send(cx, zero, sizeof zero) == 0)
        c->ticked_at = tr__now_ns();
}

/* ---- the handshake ---- */

/* Under the lock: this connection's node (in *node) and peer, if it is
 * in the table, whose index is put in *idx (when not NULL). */
static tr__peer *my_peer(tr_ctx *cx, dconn *c, tr__dist_node **node, uint32_t *idx)
{
    uint32_t i;
    tr__dist_node *n = tr__dist_node_of(tr_ctx_runtime(cx), c->node_id);
    if (node != NULL)
        *node = n;
    return n != NULL && c->peer[0] != '\0'
               ? tr__dist_peer_find(n, c->peer, idx != NULL ? idx : &i)
               : NULL;
}

/* The acceptor's answer to a peer's name: "ok"; "alive" when a
 * connection from that name is up (the initiator says whether it is a
 * dead one: take_over); or the tie-break of a simultaneous connect by
 * name (the greater name's own attempt wins: erl_dist_protocol.md,
 * "ok_simultaneous" and "nok"). The claim taken is the peer's when it is
 * in the table, else noted as unproven (dist.h): a name is not made a
 * peer before the cookie is proven. */
static const char *decide(tr_ctx *cx, dconn *c)
{
    const char *status = "ok";
    tr_runtime *rt = tr_ctx_runtime(cx);
    tr_pid self = tr_self(cx);
    uint32_t idx;
    tr__dist_lock();
    tr__dist_node *n = tr__dist_node_of(rt, c->node_id);
    tr__peer *p = n != NULL ? tr__dist_peer_find(n, c->hs.peer, &idx) : NULL;
    tr_pid *claim = p != NULL ? &p->conn : n != NULL ? tr__dist_unproven_find(n, c->hs.peer) : NULL;
    if (n == NULL || strcmp(c->hs.peer, c->self) == 0) {
        status = "not_allowed";
    } else if (claim == NULL) {
        if (tr__dist_unproven_add(n, c->hs.peer, self) != 0)
            status = "not_allowed";
    } else if (*claim == TR_PID_NONE) {
        *claim = self;
    } else if (p != NULL && p->up) {
        status = "alive";
    } else if (strcmp(c->hs.peer, c->self) > 0) {
        (void)tr__send_system(rt, cx, *claim, TR__DIST_CLOSE);
        *claim = self;
        status = "ok_simultaneous";
    } else {
        status = "nok";
    }
    tr__dist_unlock();
    return status;
}

/* Acceptor: the initiator answered "true" to "alive" — the connection we
 * have up from its name is a dead one of an earlier node of that name
 * (it crashed, and the end of its connection has not reached us yet).
 * The handshake goes on, and once it is done (the cookie proven: a
 * stranger cannot take a peer's place) this connection takes the peer's
 * claim from the old one (went_up). "ok", or "nok" when the claim went
 * to another attempt meanwhile. */
static const char *take_over(tr_ctx *cx, dconn *c)
{
    tr__dist_lock();
    tr__peer *p = my_peer(cx, c, NULL, NULL);
    if (p != NULL && !p->up && p->conn == TR_PID_NONE)
        p->conn = tr_self(cx); /* the old one went down meanwhile */
    c->taking_over = p != NULL && (p->up || p->conn == tr_self(cx));
    tr__dist_unlock();
    return c->taking_over ? "ok" : "nok";
}

/* Initiator, told "alive": whether to go on — whether this attempt still
 * holds the peer's claim (if a connection from the peer took it, ours is
 * the mistake). */
static bool still_ours(tr_ctx *cx, dconn *c)
{
    tr__dist_lock();
    tr__peer *p = my_peer(cx, c, NULL, NULL);
    bool ours = p != NULL && p->conn == tr_self(cx);
    tr__dist_unlock();
    return ours;
}

/* The handshake is done: this connection is the peer's. */
static int went_up(tr_ctx *cx, dconn *c)
{
    uint32_t idx;
    int err = 0;
    if (c->initiator && strcmp(c->hs.peer, c->peer) != 0)
        return TR_EBADFRAME; /* someone else answered at that port */
    strcpy(c->peer, c->hs.peer);
    tr__dist_lock();
    tr__dist_node *n = tr__dist_node_of(tr_ctx_runtime(cx), c->node_id);
    tr__peer *p = n != NULL ? tr__dist_peer(n, c->peer, &idx) : NULL;
    size_t nqueue = 0;
    tr_msg **queue = NULL;
    tr__dist_askers askers = {0};
    tr_pid old = TR_PID_NONE;
    if (c->taking_over && p != NULL && p->conn != tr_self(cx) &&
        (p->up || p->conn == TR_PID_NONE)) {
        /* take_over: the old connection is down from now (its pids dead
         * letters, its askers told) and closes; its links and monitors
         * hear noconnection as it ends. */
        if (p->up) {
            old = p->conn;
            askers = tr__dist_askers_take(p, idx + 1);
            tr__dist_peer_down(p);
        }
        p->conn = tr_self(cx);
    }
    if (p == NULL || p->conn != tr_self(cx)) {
        err = TR_ECONNABORTED;
    } else {
        p->up = true;
        p->creation = c->hs.peer_creation;
        n->conns_up++;
        queue = tr__dist_take_queue(p, &nqueue);
    }
    tr__dist_unlock();
    if (old != TR_PID_NONE)
        (void)tr__send_system(tr_ctx_runtime(cx), cx, old, TR__DIST_CLOSE);
    tr__dist_askers_tell(tr_ctx_runtime(cx), tr__cx_worker(cx), &askers);
    if (err != 0)
        return err;
    c->up = true;
    /* What was sent while no connection was up goes first, in order. */
    for (size_t i = 0; i < nqueue; i++) {
        send_or_refuse(cx, c, queue[i]);
        tr__msg_release(queue[i]);
    }
    free(queue);
    return 0;
}

static int handshake(tr_ctx *cx, dconn *c, const unsigned char *msg, size_t len)
{
    uint8_t reply[2 * (TR__HS_MSG_MAX + 2)];
    size_t rl = 0;
    int r = tr__hs_step(&c->hs, msg, len, reply, sizeof reply, &rl);
    if (r == TR__HS_ALIVE && c->initiator) {
        bool go_on = still_ours(cx, c);
        r = tr__hs_alive(&c->hs, go_on, reply, sizeof reply, &rl);
        if (r == 0 && !go_on) {
            (void)tr_tcp_send(cx, reply, rl);
            return 1; /* close gracefully, after the answer */
        }
    } else if (r == TR__HS_NAMED || r == TR__HS_ALIVE) {
        if (r == TR__HS_NAMED)
            strcpy(c->peer, c->hs.peer);
        const char *status = r == TR__HS_NAMED ? decide(cx, c) : take_over(cx, c);
        r = tr__hs_accept(&c->hs, status, reply, sizeof reply, &rl);
        if (r == 0 && c->hs.state == TR__HS_FAILED) {
            (void)tr_tcp_send(cx, reply, rl);
            tr__dconn_say(c, "refused the peer's connection (simultaneous or duplicate)", 0);
            return 1; /* close gracefully, after the status */
        }
    }
    if (r < 0)
        return r;
    if (rl != 0 && (r = tr_tcp_send(cx, reply, rl)) != 0)
        return r;
    return c->hs.state == TR__HS_UP ? went_up(cx, c) : 0;
}

/* A frame with a distribution header: dispatched once it is a whole
 * message. 0 or a negative code. */
static int header_frame(tr_ctx *cx, dconn *c, const unsigned char *p, size_t n)
{
    const char *frame;
    size_t len;
    int r = tr__frag_rx_take(&c->rx, TR__DIST_FRAME_MAX, p, n, &frame, &len);
    if (r == TR__FRAG_WHOLE)
        tr__dist_frag_took();
    return r > 0 ? tr__dist_dispatch(cx, c, frame, len) : r;
}

/* Cuts and handles whole frames from c->in: 0, 1 (close gracefully) or
 * a negative code (abort). */
static int frames(tr_ctx *cx, dconn *c)
{
    size_t at = 0;
    int r = 0;
    while (r == 0 && !c->closing) {
        unsigned hdr = c->up ? 4 : 2;
        size_t body;
        r = tr__dist_frame(c->in + at, c->in_len - at, hdr,
                           c->up ? TR__DIST_FRAME_MAX : HS_FRAME_MAX, &body);
        if (r <= 0)
            break;
        const unsigned char *p = c->in + at + hdr;
        at += hdr + body;
        if (!c->up)
            r = handshake(cx, c, p, body);
        else if (body == 0)
            r = 0; /* a tick */
        else if (p[0] == TR__VERSION_MAGIC) /* a distribution header */
            r = header_frame(cx, c, p, body);
        else
            r = tr__dist_dispatch(cx, c, (const char *)p, body);
    }
    memmove(c->in, c->in + at, c->in_len - at);
    c->in_len -= at;
    return r;
}

static int take(tr_ctx *cx, dconn *c, const void *data, size_t len)
{
    if (c->in_cap - c->in_len < len) {
        size_t cap = c->in_cap != 0 ? c->in_cap : 65536;
        while (cap - c->in_len < len)
            cap *= 2;
        unsigned char *grown = realloc(c->in, cap);
        if (grown == NULL)
            return TR_ENOMEM;
        c->in = grown;
        c->in_cap = cap;
    }
    memcpy(c->in + c->in_len, data, len);
    c->in_len += len;
    c->read_at = tr__now_ns();
    /* A connection kept busy reading (a big message coming in) may read
     * in one long turn, its output written only at the turn's end, and
     * its timer's ticks may come late: it ticks here too, at once. */
    if (c->up && c->read_at - c->ticked_at >= c->tick_ns / 4) {
        send_tick(cx, c);
        tr__tcp_flush(cx);
    }
    return frames(cx, c);
}

/* ---- the actor ---- */

static void start(tr_ctx *cx, dconn *c)
{
    /* The creation is EPMD's answer, which came after the listener's
     * handler was made: read it now. */
    tr__dist_lock();
    tr__dist_node *n = tr__dist_node_of(tr_ctx_runtime(cx), c->node_id);
    if (n != NULL)
        c->creation = n->creation;
    tr__dist_unlock();
    if (n == NULL) {
        end(cx, c, false);
        return;
    }
    c->started_at = c->read_at = c->ticked_at = tr__now_ns(); /* the handshake's time starts */
    uint32_t challenge = 0;
    if (tr__sim_on()) /* the seed's, so that a run replays */
        challenge = (uint32_t)tr__sim_rand();
    else if (getrandom(&challenge, sizeof challenge, 0) != sizeof challenge)
        challenge ^= (uint32_t)(uintptr_t)c ^ (uint32_t)tr_self(cx);
    uint8_t first[TR__HS_MSG_MAX + 2];
    size_t len = 0;
    tr__hs_init(&c->hs, c->initiator, c->self, c->cookie, c->creation, challenge, first,
                sizeof first, &len);
    int err = len != 0 ? tr_tcp_send(cx, first, len) : 0;
    uint64_t magic = TICK_MAGIC, period = c->tick_ns / 8; /* see tick() */
    if (period > c->setup_ns / 4)
        period = c->setup_ns / 4;
    tr_timer_spec t = {.delay_ns = period, .period_ns = period, .to = tr_self(cx),
                       .type = TICK_TYPE, .data = &magic, .len = sizeof magic};
    if (err == 0)
        err = tr_timer_start(cx, &t, &c->ticker);
    if (err != 0) {
        /* Without its first message or its ticker (out of memory) the
         * handshake would wait for ever, holding the peer's claim: give
         * up now, and the next send to the peer tries again. */
        tr__dconn_say(c, "cannot begin the handshake", err);
        end(cx, c, false);
    }
}

/* The timer comes every eighth of the tick time (or quarter of the setup
 * time, if less). A handshake not done within the setup time fails,
 * however the peer trickles its bytes: a stranger that names a peer holds
 * its claim no longer (found within 1.25 setup times). Once up, more
 * than the tick time without a byte from the peer: it is down, found
 * within 1.125 tick times.
 * (Erlang's window is 3/4 to 1: a connection busy with a big message under
 * a sanitizer, on a loaded machine, went that long without a byte, so the
 * whole tick time is allowed.) Judged by the clock, not by counting the
 * timer's messages: a timer that ran late delivers its periods in a
 * burst. While up we tick every quarter, as Erlang; a tick costs 4 bytes. */
static void tick(tr_ctx *cx, dconn *c)
{
    uint64_t now = tr__now_ns();
    if (!c->up ? now - c->started_at > c->setup_ns : now - c->read_at > c->tick_ns) {
        tr__dconn_say(c, c->up ? "peer silent past the tick time" : "handshake timed out", 0);
        end(cx, c, false);
        return;
    }
    if (now - c->ticked_at >= 3 * (c->tick_ns / 16)) /* every other period */
        send_tick(cx, c);
}

/* The connection is ending: if it was the peer's and up, the peer is
 * down, and whoever asked its pids hears that no answer will come; if it
 * was the peer's and never up, the claim goes at once (a peer retrying,
 * say with the right cookie, must not meet it). Once.
 *
 * What waits in the peer's queue when a connection that held the claim
 * ends without coming up: ours, told "nok", leaves it to the peer's own
 * attempt, which the peer has just said wins; one of the peer's that
 * failed (a handshake cut short, a stranger with the peer's name and not
 * its cookie) hands it to an attempt of our own, which delivers it or
 * fails in its turn; ours that failed (refused, timed out, the wrong
 * cookie) drops it, each message a dead letter, as Erlang drops what is
 * sent to a node it cannot reach. Kept, it would wait for whichever later
 * attempt got through, hours later perhaps, growing with every send. */
static void let_go(tr_ctx *cx, dconn *c)
{
    if (c->gone)
        return;
    c->gone = true;
    tr__dist_node *n;
    tr__dist_askers askers = {0};
    uint32_t idx;
    tr_msg **dropped = NULL;
    size_t ndropped = 0;
    tr__dist_lock();
    tr__peer *p = my_peer(cx, c, &n, &idx);
    if (n != NULL && !c->initiator)
        tr__dist_unproven_drop(n, tr_self(cx));
    if (n != NULL && c->up)
        n->conns_up--;
    if (p != NULL && p->conn == tr_self(cx)) {
        if (c->up) {
            askers = tr__dist_askers_take(p, idx + 1);
            tr__dist_peer_down(p);
        } else {
            p->conn = TR_PID_NONE; /* never up: its pids stay good */
            bool peer_brings_it = c->initiator && strcmp(c->hs.refusal, "nok") == 0;
            bool ours_takes_it = !c->initiator && p->nqueue != 0 &&
                                 tr__dist_lookup(cx, n, c->peer, &p->conn) == 0;
            if (p->nqueue != 0 && !peer_brings_it && !ours_takes_it) {
                p->conn = TR_PID_NONE; /* a lookup that failed may have written it */
                dropped = tr__dist_take_queue(p, &ndropped);
            }
        }
    }
    tr__dist_unlock();
    tr__dist_askers_tell(tr_ctx_runtime(cx), tr__cx_worker(cx), &askers);
    if (ndropped != 0)
        tr__dconn_say(c, "no connection; what was sent to the peer is dropped", 0);
    tr__dist_drop_queue(cx, dropped, ndropped);
}

static void closed(tr_ctx *cx, dconn *c)
{
    if (c->ticker != TR_PID_NONE)
        (void)tr_timer_cancel(cx, c->ticker);
    tr__dist_lost(cx, c); /* links and monitors across hear noconnection */
    let_go(cx, c);
}

/* Ends the connection: gracefully (the last status gets out) or not. */
static void end(tr_ctx *cx, dconn *c, bool graceful)
{
    c->closing = true;
    let_go(cx, c);
    (void)(graceful ? tr_tcp_close(cx) : tr_tcp_abort(cx));
}

static void handle(tr_ctx *cx, dconn *c, const tr_msg *m)
{
    int r = 0;
    switch (m->type) {
    case TR_TCP_CONNECTED:
        start(cx, c);
        return;
    case TR_TCP_DATA:
        if (!c->closing)
            r = take(cx, c, m->data, m->len);
        break;
    case TR__DIST_OUT:
        /* Routed here only while up (tr__dist_deliver); closing, it was
         * routed before the end was known. */
        send_or_refuse(cx, c, m);
        return;
    case TR__DIST_CLOSE:
        end(cx, c, false);
        return;
    case TR_TCP_CLOSED:
        closed(cx, c);
        return;
    case TR_TCP_THROTTLED:
        c->throttled = true;
        return;
    case TR_TCP_UNTHROTTLED:
        c->throttled = false;
        tr__frag_feed(cx, c);
        return;
    case TR__DIST_MORE:
        c->more_sent = false;
        tr__frag_feed(cx, c);
        return;
    case TICK_TYPE: {
        const uint64_t *magic = TR_PAYLOAD(m, uint64_t);
        if (magic != NULL && *magic == TICK_MAGIC && !c->closing)
            tick(cx, c);
        return;
    }
    default:
        return;
    }
    if (r == 1) {
        end(cx, c, true);
    } else if (r < 0) {
        tr__dconn_say(c, "closing the connection", r);
        end(cx, c, false);
    }
}

static void conn_behaviour(tr_ctx *cx, void *state, const tr_msg *m)
{
    dconn *c = state;
    handle(cx, c, m);
    if (m->type == TR_TCP_CLOSED)
        c->closing = true; /* the last message: senders held go */
    tr__frag_hold(cx, c);
}

void tr__dist_conn_handler(const tr__dist_node *n, const char *peer, tr_tcp_handler *h,
                           void *state)
{
    dconn *c = state;
    memset(c, 0, sizeof *c);
    c->node_id = n->id;
    c->initiator = peer != NULL;
    if (peer != NULL)
        strcpy(c->peer, peer);
    strcpy(c->self, n->name);
    strcpy(c->cookie, n->cookie);
    c->creation = n->creation;
    c->tick_ns = n->tick_ns;
    c->setup_ns = n->setup_ns;
    memset(h, 0, sizeof *h);
    h->actor.behaviour = conn_behaviour;
    h->actor.state = c;
    h->actor.state_size = sizeof *c;
    h->actor.on_stop = conn_on_stop;
    h->opts.framing = TR_FRAME_RAW;
    c->busy_limit = n->busy_limit;
    tr__frag_tcp_opts(n->busy_limit, &h->opts);
}
