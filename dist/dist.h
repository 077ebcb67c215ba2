/* dist/dist.h — a distributed node: its peers, pid tables and connection
 * actors (internal).
 *
 * All of a process's nodes and their tables sit behind one mutex
 * (tr__dist_lock): routing a send, mapping a pid and a connection going
 * up or down are short and rare next to a frame's encoding, and one lock
 * makes the ordering arguments simple. A connection actor never keeps a
 * pointer to its node across turns: it looks the node up by runtime and
 * node id each time, so tr_node_stop can free the node at once while
 * connection actors are still ending.
 */
#ifndef TR_DIST_DIST_H
#define TR_DIST_DIST_H

#include <stdbool.h>
#include <stdint.h>

#include "../actors/ask.h"
#include "../actors/pid.h"
#include "proto.h"
#include "../actors/actors.h"
#include "troupe/dist.h"
#include "troupe/msgtypes.h"
#include "troupe/net.h"

/* Internal message types (this module's part of the internal range). */
#define TR__DIST_OUT   (TR__MSG_DIST_FIRST + 0) /* to a connection: send this (tr__dist_out + bytes) */
#define TR__DIST_CLOSE (TR__MSG_DIST_FIRST + 1) /* to a connection: give way and close */
#define TR__DIST_MORE  (TR__MSG_DIST_FIRST + 2) /* to itself: feed the socket (dist/frag.c) */
_Static_assert(TR__DIST_MORE <= TR__MSG_DIST_LAST, "dist types past their range");

/* The largest frame (and fragmented message put back together) a
 * connection takes: a message of TR_DIST_MSG_MAX bytes with room for its
 * control message and term around it. */
#define TR__DIST_FRAME_MAX ((size_t)TR_DIST_MSG_MAX + 65536)

/* For the tests (dist/frag.c): the largest output (bytes not yet written
 * to the socket) any node connection had queued since the last reset,
 * counted once past half its busy limit;
 * how many times connections began holding their senders. */
size_t tr__dist_out_peak(bool reset);
uint64_t tr__dist_holds(void);
/* For the tests: fragmented sequences sent, and received whole. */
void tr__dist_frag_counts(uint64_t *out, uint64_t *in);

/* What a connection is asked to send: a TR__DIST_OUT message's bytes are
 * this header, then the registered name's name_len bytes (REG_SEND only),
 * then the payload. 24 bytes, so that a small message's copy stays in the
 * smallest block (the name had a 256-byte field in every message before:
 * dist-stream's 16-byte messages took 512-byte blocks). */
typedef struct tr__dist_out {
    tr_pid from, to;
    uint32_t type;
    uint16_t op;        /* TR__CTL_SEND_SENDER or TR__CTL_REG_SEND */
    uint16_t name_len;  /* REG_SEND: the registered name's bytes, no NUL */
} tr__dist_out;

/* A TR__DIST_OUT of h, name (REG_SEND; NULL for none: h.name_len is set
 * from it) and len bytes of data; NULL when out of memory. */
tr_msg *tr__dist_out_new(tr__dist_out h, const char *name, const void *data, size_t len);

/* The parts of a TR__DIST_OUT: its header, its name (h->name_len bytes,
 * not NUL-terminated) and its payload. False if m is shorter than its
 * header says. */
bool tr__dist_out_read(const tr_msg *m, tr__dist_out *h, const char **name,
                       const unsigned char **data, size_t *len);

/* One of a peer's pids: an erlang_pid without its node name (1 KiB of
 * atom buffer each), which is the peer's. */
typedef struct tr__rpid {
    uint32_t num, serial, creation;
} tr__rpid;

/* A peer node: its connection and the pids of it we have handed out. */
typedef struct tr__peer {
    char name[TR__NODE_NAME_MAX + 1];
    uint32_t epoch;     /* the generation bits of its tr_pids; moves on at each down */
    tr_pid conn;        /* its connection actor, or TR_PID_NONE */
    bool up;            /* handshake done on conn */
    uint32_t creation;  /* the peer's, while up */
    tr__rpid *pids;     /* slot -> the Erlang pid, less its node (the peer's) */
    uint32_t npids, cap;
    uint32_t *hash;     /* open addressing: slot + 1, 0 empty; hash_cap a power of 2 */
    uint32_t hash_cap;
    /* What local actors sent while no connection of the peer was up
     * (TR__DIST_OUT messages, in the order routed): the first connection
     * to come up sends them before anything else. Kept here, not in a
     * connecting actor's mailbox, so that an attempt that loses or is
     * refused loses nothing. */
    tr_msg **queue;
    size_t nqueue, capqueue;
    /* The local actors that have asked one of its pids in this epoch (a
     * set: open addressing on the pid, TR_PID_NONE empty, askers_cap 0 or
     * a power of 2; those that have ended are dropped as it grows). An
     * answer can only come back over the peer's connection, so when the
     * peer goes down, or our node stops, each is told (TR__ASK_LOST) and
     * fails the asks it still waits for there (actors/ask.c): a set of
     * askers rather than of asks, since each asker's own table has its
     * asks, and answers then cost the connection nothing. */
    tr_pid *askers;
    uint32_t naskers, askers_cap;
} tr__peer;

typedef struct tr__dist_node tr__dist_node;
struct tr__dist_node {
    tr__dist_node *next;
    tr_runtime *rt;
    uint64_t id;        /* unique in the process: a connection's claim on its node */
    char name[TR__NODE_NAME_MAX + 1];
    char alive[TR__NODE_NAME_MAX + 1];
    char host[TR__NODE_NAME_MAX + 1];
    char cookie[TR__COOKIE_MAX + 1];
    uint32_t creation;
    uint16_t port, epmd_port;
    uint64_t tick_ns, setup_ns;
    size_t busy_limit;
    int epmd_fd;        /* kept open: EPMD forgets the name when it closes */
    bool sim_registered; /* holds its name in the simulated EPMD (dist/simepmd.c) */
    tr_pid listener;
    tr__peer **peers;   /* peers[i] has node bits i + 1 */
    uint32_t npeers, peers_cap;
    uint32_t *names;    /* the peers by name: i + 1, 0 empty (node.c) */
    uint32_t names_cap;
    struct tr__unproven *unproven; /* acceptors' claims on names not in peers */
    uint32_t nunproven, unproven_cap;
    unsigned conns_up;  /* connections whose handshake is done, not yet closed */
};

/* The request/reply types a connection carries as messages ({Type,
 * <<Bytes>>} with the ask tail inside the bytes), checked on arrival by
 * tr__ask_wire_ok. */
static inline bool tr__dist_ask_type(uint32_t type)
{
    return type == TR__ASK || type == TR_REPLY || type == TR_ASK_FAILED;
}

/* For the tests: node rt's connections whose handshake is done and that
 * have not closed; 0 when rt is not a node. */
unsigned tr__dist_conns_up(tr_runtime *rt);

void tr__dist_lock(void);
void tr__dist_unlock(void);

/* Under the lock: the node of rt (with that id, unless id is 0), or NULL. */
tr__dist_node *tr__dist_node_of(tr_runtime *rt, uint64_t id);
/* Under the lock: the peer of that name, added if new (NULL: no memory
 * or no room: 65,535 peers), and its index in *idx. A new peer takes the
 * claim an acceptor holds on its name (tr__dist_unproven_*). */
tr__peer *tr__dist_peer(tr__dist_node *n, const char *name, uint32_t *idx);
/* Under the lock: the peer of that name if it is in the table, or NULL. */
tr__peer *tr__dist_peer_find(tr__dist_node *n, const char *name, uint32_t *idx);

/* Under the lock: claims on names not in the peer table, held by
 * acceptors whose handshake is not done. Entries of the peer table are
 * never removed (their index is in every tr_pid of the peer), so the
 * name a connecting stranger gives, its cookie not yet proven, gets no
 * entry: it is noted here, and goes when the attempt does (_drop), or
 * moves into the table once the handshake is done or once one of our
 * own sends names the peer (tr__dist_peer). _find: where the claim on
 * `name` is noted (the acceptor's pid), or NULL; _add: 0 or TR_ENOMEM. */
tr_pid *tr__dist_unproven_find(tr__dist_node *n, const char *name);
int tr__dist_unproven_add(tr__dist_node *n, const char *name, tr_pid conn);
void tr__dist_unproven_drop(tr__dist_node *n, tr_pid conn);

/* Under the lock: the tr_pid for an Erlang pid (ours or a peer's); a pid
 * of ours from another creation, or one that cannot be ours, gives
 * TR_PID_NONE. */
tr_pid tr__dist_pid_in(tr__dist_node *n, const erlang_pid *e);
/* Under the lock: the Erlang pid for a tr_pid, with the index of its peer
 * (UINT32_MAX for ours). 0, or TR_ENOPID (a pid of a connection that has
 * gone down, or never handed out). */
int tr__dist_pid_out(tr__dist_node *n, tr_pid p, erlang_pid *e, uint32_t *peer);

/* Under the lock: the peer's connection is gone; its pids become dead
 * letters. */
void tr__dist_peer_down(tr__peer *p);

/* Under the lock: asker (a local actor) sends an ask to one of peer p's
 * pids. 0, or TR_ENOMEM (the ask is not sent). */
int tr__dist_asker_add(tr_runtime *rt, tr__peer *p, tr_pid asker);

/* Who must hear that their asks to a peer's pids of one epoch cannot be
 * answered: taken under the lock (before tr__dist_peer_down moves the
 * epoch on; p is peers[node - 1]), told after it (tr__dist_askers_tell
 * sends each TR__ASK_LOST and frees the set). */
typedef struct tr__dist_askers {
    tr_pid *askers;
    uint32_t cap;
    tr__ask_lost lost;
} tr__dist_askers;
tr__dist_askers tr__dist_askers_take(tr__peer *p, uint32_t node);
void tr__dist_askers_tell(tr_runtime *rt, tr__worker *w, tr__dist_askers *a);

/* Sends to a connection actor under the lock (so that what one sender
 * routes stays in order across a connection that gives way). Owns m. */
int tr__dist_hand(tr_runtime *rt, tr__worker *w, tr_pid from, tr_pid conn, tr_msg *m);
/* Under the lock: a TR__DIST_OUT message for peer p: to its connection
 * when up, else onto its queue. Owns m. 0 or TR_ENOMEM. */
int tr__dist_deliver(tr_runtime *rt, tr__worker *w, tr_pid from, tr__peer *p, tr_msg *m);
/* Under the lock: takes p's queue (the caller releases each message and
 * frees the array). */
tr_msg **tr__dist_take_queue(tr__peer *p, size_t *n);
/* Not under the lock: what a taken queue held, dropped as Erlang drops
 * what is sent to a node it cannot reach — each message a dead letter,
 * the sender's, so that an ask among them fails at once and a link or
 * monitor request is answered; frees the array. */
void tr__dist_drop_queue(tr_ctx *cx, tr_msg **queue, size_t n);

/* Frees a node taken off the list, with its peers; closes its EPMD socket. */
void tr__dist_node_free(tr__dist_node *n);

/* The node list (under the lock): a new node's id; adding; taking off. */
uint64_t tr__dist_next_id(void);
void tr__dist_add(tr__dist_node *n);
void tr__dist_remove(tr__dist_node *n);

/* EPMD (dist/epmd.c), blocking with bounded waits: registers n (starting
 * epmd if none answers) and keeps the socket in n->epmd_fd. 0 or a
 * negative code. Under simulation it registers with the simulated EPMD
 * (dist/simepmd.c) and never blocks. */
int tr__epmd_register(tr__dist_node *n, const char *listen_host);
/* The name is EPMD's again: the registration's socket closed (or the
 * simulated entry given up). Never fails. */
void tr__epmd_unregister(tr__dist_node *n);

/* The simulated EPMD (dist/simepmd.c), for the simulation thread:
 * TR_EEXIST when the name is held, TR_ENOMEM when the table is full;
 * TR_EHOSTUNREACH for a name not registered. */
int tr__simepmd_register(tr__dist_node *n, const char *listen_host);
int tr__simepmd_lookup(uint16_t epmd_port, const char *alive, uint16_t *port, char *addr);
void tr__simepmd_unregister(tr__dist_node *n);

/* Starts an outgoing connection from node node_id to peer, unless one is
 * under way (not under the lock): a lookup, which asks the peer host's
 * EPMD and then connects, blocking no one (dist/lookup.c). 0 or a
 * negative code (a lookup that fails later drops what waits for the
 * peer). */
int tr__dist_connect(tr_ctx *cx, uint64_t node_id, const char *peer);

/* Under the lock: spawns the lookup of peer for node n (dist/lookup.c),
 * its pid into *pid: the peer's claim until it hands it to the node
 * connection it starts. The errors of tr_tcp_connect. */
int tr__dist_lookup(tr_ctx *cx, const tr__dist_node *n, const char *peer, tr_pid *pid);

/* Connection actors (dist/conn.c): fills h for node n's connections, with
 * state (tr__dist_conn_state_size() bytes, copied by listen and connect)
 * as their initial state: accepted ones for peer NULL, else the one we
 * make to peer. */
size_t tr__dist_conn_state_size(void);
void tr__dist_conn_handler(const tr__dist_node *n, const char *peer, tr_tcp_handler *h,
                           void *state);

#endif
