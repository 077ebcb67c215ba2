/* dist/conn.h — a node connection actor's state, shared by its two files
 * (internal): dist/conn.c (handshake, frames, ticks, the actor) and
 * dist/signals.c (what goes out and comes in once the connection is up). */
#ifndef TR_DIST_CONN_H
#define TR_DIST_CONN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "../actors/keyed.h"
#include "dist.h"
#include "frag_rx.h"

/* A link across the connection, made by either side: kept so that the
 * local end hears when the connection goes down. */
typedef struct tr__xlink {
    tr_pid local, remote; /* the key: first, together */
    uint64_t unlinking; /* 0: active; else the local end's unlink id */
    uint64_t unlink_in; /* the id of the peer's last UNLINK_ID handed to it */
    bool linked_in;     /* a LINK handed to it since that UNLINK_ID */
} tr__xlink; /* (signals.c, "the tables") */

/* A monitor across the connection that a local actor holds on a remote
 * process: ref is the troupe reference, sent as an Erlang ref of ours. */
typedef struct tr__xmon {
    uint64_t ref; /* the key */
    tr_pid local, remote;
} tr__xmon;

/* A monitor a remote process holds on a local actor: ref is a troupe
 * reference made here (the local actor's TR_DOWN names it), eref the
 * peer's own (its DEMONITOR_P names that), name the name it gave when it
 * named one. */
typedef struct tr__xmon_in {
    uint64_t ref; /* the key */
    tr_pid local, remote;
    bool by_name;
    erlang_ref eref;
    char name[TR__NODE_NAME_MAX + 1];
} tr__xmon_in;

typedef struct tr__dconn {
    uint64_t node_id;
    bool initiator, up, closing, gone;
    bool taking_over; /* acceptor: told "true" to "alive" (conn.c, take_over) */
    char peer[TR__NODE_NAME_MAX + 1]; /* initiator: given; acceptor: learnt */
    char self[TR__NODE_NAME_MAX + 1];
    char cookie[TR__COOKIE_MAX + 1];
    uint32_t creation;
    uint64_t tick_ns, setup_ns;
    uint64_t started_at; /* when the handshake began (tr__now_ns) */
    tr__hs hs;
    unsigned char *in; /* bytes read, not yet a whole frame */
    size_t in_len, in_cap;
    tr_pid ticker;
    uint64_t read_at;   /* when we last read from the peer (tr__now_ns) */
    uint64_t ticked_at; /* when we last sent a tick */
    tr__keyed links;    /* tr__xlink by (local, remote): signals.c's XLINKS */
    tr__keyed mons;     /* tr__xmon by ref: signals.c's MONS */
    tr__keyed mons_in;  /* tr__xmon_in by ref: MONS_IN */
    tr__keyed erefs;    /* the peer's refs of mons_in: EREFS */
    uint64_t next_ref;  /* for the peer's monitors */
    /* dist/frag.c: output waiting behind a big message, and fragments in. */
    tr_pid out_from;          /* the local sender of what is being encoded */
    size_t busy_limit;        /* output past which senders are held */
    struct tr__fout *oq, *oq_tail;
    size_t oq_bytes;          /* bytes in oq not yet handed to the socket */
    struct tr__fsender *qs;   /* the senders with frames in oq */
    size_t nqs, qs_cap;
    uint64_t next_seq;        /* our fragmented sequences' ids */
    bool throttled, more_sent, holding;
    unsigned char *scratch;   /* one fragment being framed */
    ei_x_buff enc;            /* the frame being encoded: its buffer is kept
                               * from one frame to the next (buff NULL: none) */
    tr__frag_rx rx;           /* the peer's distribution headers (frag_rx.h) */
} tr__dconn;

/* Encodes and sends a control message, with the troupe
 * message (type, data, len) as its term when with_msg. */
void tr__dconn_send_ctl(tr_ctx *cx, tr__dconn *c, const tr__ctl *ctl, uint32_t type,
                        const void *data, size_t len, bool with_msg);
/* Logs a line about this connection. */
void tr__dconn_say(const tr__dconn *c, const char *what, int err);
/* Output that could not be had or sent (err): logged, and for want of
 * memory or buffer (TR_ENOMEM, TR_ENOBUFS) an up connection ends, as the
 * peer would see a hole in the stream (conn.c). */
void tr__dconn_lost(tr_ctx *cx, tr__dconn *c, const char *what, int err);

/* dist/frag.c. An encoded frame from c->out_from (x, its control
 * message ending at ctl_end; its bytes consumed, and its buffer kept
 * for the next frame or taken: x->buff NULL): to the socket, or queued behind
 * that sender's others; in fragments when big and the peer takes them
 * (0 or a negative code). Feeding the socket from the queue as it
 * drains (on TR_TCP_UNTHROTTLED and TR__DIST_MORE). Holding the senders
 * or not, after each message. The frees (the reading side's too). The
 * TCP options of a node connection with that busy limit. For the tests'
 * count: a fragmented message read whole. */
int tr__frag_out(tr_ctx *cx, tr__dconn *c, ei_x_buff *x, size_t ctl_end);
/* c->enc, emptied and ready for a frame; false when out of memory. */
bool tr__frag_enc(tr__dconn *c);
void tr__frag_feed(tr_ctx *cx, tr__dconn *c);
void tr__frag_hold(tr_ctx *cx, tr__dconn *c);
void tr__frag_free(tr__dconn *c);
void tr__dist_frag_took(void);
void tr__frag_tcp_opts(size_t busy_limit, tr_tcp_opts *o);

/* dist/signals.c: TR__DIST_OUT (a local actor's message or signal for the
 * peer); one control message from the peer (0, or a negative code: close);
 * the connection is gone: the local ends of links and monitors hear
 * noconnection; the frees of on_stop. */
void tr__dist_send_out(tr_ctx *cx, tr__dconn *c, const tr_msg *m);

int tr__dist_dispatch(tr_ctx *cx, tr__dconn *c, const char *p, size_t n);
void tr__dist_lost(tr_ctx *cx, tr__dconn *c);
void tr__dist_conn_free(tr__dconn *c);

/* Room for one more in a connection's array of `size`-byte items (n in
 * use, *cap allocated): doubles it, from 8. False when out of memory. */
static inline bool tr__dist_grow(void **arr, size_t *cap, size_t n, size_t size)
{
    if (n < *cap)
        return true;
    size_t more = *cap != 0 ? 2 * *cap : 8;
    void *grown = realloc(*arr, more * size);
    if (grown == NULL)
        return false;
    *arr = grown;
    *cap = more;
    return true;
}

#endif
