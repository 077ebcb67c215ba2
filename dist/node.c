/* dist/node.c — a runtime as a distributed node: start and stop, EPMD,
 * the peers' pid tables and the send path's route to a connection. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../actors/ask.h"
#include "../actors/fault.h"
#include "../mailbox/msg.h"
#include "../sched/sched.h"
#include "dist.h"

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static tr__dist_node *nodes;
static uint64_t last_id;

void tr__dist_lock(void)
{
    pthread_mutex_lock(&lock);
}

void tr__dist_unlock(void)
{
    pthread_mutex_unlock(&lock);
}

tr__dist_node *tr__dist_node_of(tr_runtime *rt, uint64_t id)
{
    for (tr__dist_node *n = nodes; n != NULL; n = n->next)
        if (n->rt == rt && (id == 0 || n->id == id))
            return n;
    return NULL;
}

/* ---- peers and their pids ---- */

/* The peers (by name) and each peer's pids are found through insert-only
 * indexes: open addressing, a slot holding a position + 1 (0 empty), a
 * power of two of slots at most half full. Neither is ever removed from
 * (a position is in every tr_pid that names it). A peer is looked up by
 * name for every control message that comes in (its sender's node), under
 * the lock: past a few peers, through the index (callgrind, a lookup among
 * 1,000 peers: 15,600 instructions fewer than the scan it replaced). */
typedef uint32_t (*hash_at_fn)(const void *owner, uint32_t pos);

static void index_note(uint32_t *slots, uint32_t cap, uint32_t hash, uint32_t pos)
{
    uint32_t at = hash & (cap - 1);
    while (slots[at] != 0)
        at = (at + 1) & (cap - 1);
    slots[at] = pos + 1;
}

/* Room in the index for position n (positions below n noted in it),
 * grown and refilled if need be: 0 or TR_ENOMEM. */
static int index_room(uint32_t **slots, uint32_t *cap, uint32_t n, hash_at_fn hash_at,
                      const void *owner)
{
    if (2 * (n + 1) <= *cap)
        return 0;
    uint32_t grown_cap = *cap != 0 ? 2 * *cap : 32;
    uint32_t *grown = calloc(grown_cap, sizeof *grown);
    if (grown == NULL)
        return TR_ENOMEM;
    for (uint32_t i = 0; i < n; i++)
        index_note(grown, grown_cap, hash_at(owner, i), i);
    free(*slots);
    *slots = grown;
    *cap = grown_cap;
    return 0;
}

static uint32_t name_hash(const char *name)
{
    uint32_t h = 2166136261u; /* FNV-1a */
    for (const unsigned char *c = (const unsigned char *)name; *c != '\0'; c++)
        h = (h ^ *c) * 16777619u;
    return h ^ h >> 15;
}

static uint32_t peer_name_hash(const void *node, uint32_t i)
{
    return name_hash(((const tr__dist_node *)node)->peers[i]->name);
}

/* A scan finds one of a few peers sooner than the name's hash does. */
#define PEERS_SCANNED 16

tr__peer *tr__dist_peer_find(tr__dist_node *n, const char *name, uint32_t *idx)
{
    if (n->npeers <= PEERS_SCANNED) {
        for (uint32_t i = 0; i < n->npeers; i++)
            if (strcmp(n->peers[i]->name, name) == 0) {
                *idx = i;
                return n->peers[i];
            }
        return NULL;
    }
    for (uint32_t at = name_hash(name) & (n->names_cap - 1); n->names[at] != 0;
         at = (at + 1) & (n->names_cap - 1)) {
        tr__peer *p = n->peers[n->names[at] - 1];
        if (strcmp(p->name, name) == 0) {
            *idx = n->names[at] - 1;
            return p;
        }
    }
    return NULL;
}

tr__peer *tr__dist_peer(tr__dist_node *n, const char *name, uint32_t *idx)
{
    tr__peer *p = tr__dist_peer_find(n, name, idx);
    if (p != NULL)
        return p;
    if (strlen(name) > TR__NODE_NAME_MAX || n->npeers >= (1u << TR__PID_NODE_BITS) - 1)
        return NULL;
    if (n->npeers == n->peers_cap) {
        uint32_t cap = n->peers_cap != 0 ? 2 * n->peers_cap : 8;
        tr__peer **grown = realloc(n->peers, cap * sizeof *grown);
        if (grown == NULL)
            return NULL;
        n->peers = grown;
        n->peers_cap = cap;
    }
    if (index_room(&n->names, &n->names_cap, n->npeers, peer_name_hash, n) != 0)
        return NULL;
    if ((p = calloc(1, sizeof *p)) == NULL)
        return NULL;
    strcpy(p->name, name);
    p->epoch = 1;
    tr_pid *claim = tr__dist_unproven_find(n, name);
    if (claim != NULL) {
        p->conn = *claim;
        tr__dist_unproven_drop(n, *claim);
    }
    *idx = n->npeers;
    n->peers[n->npeers++] = p;
    index_note(n->names, n->names_cap, name_hash(name), *idx);
    return p;
}

/* ---- acceptors' claims on names not yet peers ---- */

struct tr__unproven {
    char name[TR__NODE_NAME_MAX + 1];
    tr_pid conn;
};

tr_pid *tr__dist_unproven_find(tr__dist_node *n, const char *name)
{
    for (uint32_t i = 0; i < n->nunproven; i++)
        if (strcmp(n->unproven[i].name, name) == 0)
            return &n->unproven[i].conn;
    return NULL;
}

int tr__dist_unproven_add(tr__dist_node *n, const char *name, tr_pid conn)
{
    if (strlen(name) > TR__NODE_NAME_MAX)
        return TR_EINVAL;
    if (n->nunproven == n->unproven_cap) {
        uint32_t cap = n->unproven_cap != 0 ? 2 * n->unproven_cap : 4;
        struct tr__unproven *grown = realloc(n->unproven, cap * sizeof *grown);
        if (grown == NULL)
            return TR_ENOMEM;
        n->unproven = grown;
        n->unproven_cap = cap;
    }
    struct tr__unproven *u = &n->unproven[n->nunproven++];
    strcpy(u->name, name);
    u->conn = conn;
    return 0;
}

void tr__dist_unproven_drop(tr__dist_node *n, tr_pid conn)
{
    for (uint32_t i = 0; i < n->nunproven; i++)
        if (n->unproven[i].conn == conn) {
            n->unproven[i] = n->unproven[--n->nunproven];
            return;
        }
}

static uint32_t pid_hash(const tr__rpid *e)
{
    uint64_t h = (uint64_t)e->num * UINT64_C(0x9E3779B97F4A7C15) ^ e->serial * UINT64_C(31) ^
                 (uint64_t)e->creation << 17;
    return (uint32_t)(h ^ h >> 29);
}

static bool same_pid(const tr__rpid *a, const tr__rpid *b)
{
    return a->num == b->num && a->serial == b->serial && a->creation == b->creation;
}

static uint32_t peer_pid_hash(const void *peer, uint32_t i)
{
    return pid_hash(&((const tr__peer *)peer)->pids[i]);
}

/* The slot of e in p's table, added if new; UINT32_MAX when full or out
 * of memory (the pid is then a dead letter). */
static uint32_t peer_slot(tr__peer *p, const tr__rpid *e)
{
    if (p->hash_cap != 0) {
        for (uint32_t at = pid_hash(e) & (p->hash_cap - 1); p->hash[at] != 0;
             at = (at + 1) & (p->hash_cap - 1))
            if (same_pid(&p->pids[p->hash[at] - 1], e))
                return p->hash[at] - 1;
    }
    if (p->npids >= (UINT32_C(1) << TR__PID_INDEX_BITS) - 1)
        return UINT32_MAX;
    if (p->npids == p->cap) {
        uint32_t cap = p->cap != 0 ? 2 * p->cap : 16;
        tr__rpid *grown = realloc(p->pids, cap * sizeof *grown);
        if (grown == NULL)
            return UINT32_MAX;
        p->pids = grown;
        p->cap = cap;
    }
    if (index_room(&p->hash, &p->hash_cap, p->npids, peer_pid_hash, p) != 0)
        return UINT32_MAX;
    uint32_t s = p->npids++;
    p->pids[s] = *e;
    index_note(p->hash, p->hash_cap, pid_hash(e), s);
    return s;
}

static tr_pid make_pid(uint32_t node, uint32_t gen, uint32_t index)
{
    return (tr_pid)node << (TR__PID_INDEX_BITS + TR__PID_GEN_BITS) |
           (tr_pid)gen << TR__PID_INDEX_BITS | index;
}

tr_pid tr__dist_pid_in(tr__dist_node *n, const erlang_pid *e)
{
    if (strcmp(e->node, n->name) == 0) {
        if (e->creation != n->creation || e->num >= (UINT32_C(1) << TR__PID_INDEX_BITS) ||
            e->serial >= (UINT32_C(1) << TR__PID_GEN_BITS))
            return TR_PID_NONE;
        return make_pid(0, e->serial, e->num);
    }
    uint32_t idx;
    tr__peer *p = tr__dist_peer(n, e->node, &idx);
    if (p == NULL)
        return TR_PID_NONE;
    tr__rpid r = {.num = e->num, .serial = e->serial, .creation = e->creation};
    uint32_t s = peer_slot(p, &r);
    return s == UINT32_MAX ? TR_PID_NONE : make_pid(idx + 1, p->epoch, s);
}

int tr__dist_pid_out(tr__dist_node *n, tr_pid p, erlang_pid *e, uint32_t *peer)
{
    uint32_t node = TR__PID_NODE(p);
    if (node == 0) {
        strcpy(e->node, n->name);
        e->num = TR__PID_INDEX(p);
        e->serial = TR__PID_GEN(p);
        e->creation = n->creation;
        *peer = UINT32_MAX;
        return 0;
    }
    if (node > n->npeers)
        return TR_ENOPID;
    tr__peer *pe = n->peers[node - 1];
    if (TR__PID_GEN(p) != pe->epoch || TR__PID_INDEX(p) >= pe->npids)
        return TR_ENOPID;
    const tr__rpid *r = &pe->pids[TR__PID_INDEX(p)];
    strcpy(e->node, pe->name);
    e->num = r->num;
    e->serial = r->serial;
    e->creation = r->creation;
    *peer = node - 1;
    return 0;
}

void tr__dist_peer_down(tr__peer *p)
{
    p->conn = TR_PID_NONE;
    p->up = false;
    p->creation = 0;
    /* 22 bits, never 0: the tr_pids handed out so far now miss. */
    p->epoch = (p->epoch + 1) & ((UINT32_C(1) << TR__PID_GEN_BITS) - 1);
    if (p->epoch == 0)
        p->epoch = 1;
    p->npids = 0;
    if (p->hash != NULL)
        memset(p->hash, 0, p->hash_cap * sizeof *p->hash);
}

/* ---- who asked a peer's pids ---- */

/* The set's slot for pid: where it is, or the empty one it would take. */
static uint32_t asker_slot(const tr_pid *set, uint32_t cap, tr_pid pid)
{
    uint32_t i = (uint32_t)(pid ^ pid >> 32) * 2654435761u & (cap - 1);
    while (set[i] != TR_PID_NONE && set[i] != pid)
        i = (i + 1) & (cap - 1);
    return i;
}

static bool local_alive(tr_runtime *rt, tr_pid pid)
{
    tr__actor *a = tr__table_lookup(&tr__actors_of(rt)->table, pid);
    return a != NULL && tr__actor_live(a, pid);
}

/* The set again, without the askers that have ended, in room for twice
 * those left (at least 16): an actor that asks once and ends leaves its
 * entry only until the set next fills. */
static int askers_rebuild(tr_runtime *rt, tr__peer *p)
{
    uint32_t live = 0;
    for (uint32_t i = 0; i < p->askers_cap; i++)
        live += p->askers[i] != TR_PID_NONE && local_alive(rt, p->askers[i]);
    uint32_t cap = 16;
    while (cap < 2 * (live + 1))
        cap *= 2;
    tr_pid *set = calloc(cap, sizeof *set);
    if (set == NULL)
        return TR_ENOMEM;
    for (uint32_t i = 0; i < p->askers_cap; i++)
        if (p->askers[i] != TR_PID_NONE && local_alive(rt, p->askers[i]))
            set[asker_slot(set, cap, p->askers[i])] = p->askers[i];
    free(p->askers);
    p->askers = set;
    p->askers_cap = cap;
    p->naskers = live;
    return 0;
}

int tr__dist_asker_add(tr_runtime *rt, tr__peer *p, tr_pid asker)
{
    if (p->askers_cap != 0 && p->askers[asker_slot(p->askers, p->askers_cap, asker)] == asker)
        return 0;
    if ((p->naskers + 1) * 4 > p->askers_cap * 3) { /* at most 3/4 full */
        int err = askers_rebuild(rt, p);
        if (err != 0)
            return err;
    }
    p->askers[asker_slot(p->askers, p->askers_cap, asker)] = asker;
    p->naskers++;
    return 0;
}

tr__dist_askers tr__dist_askers_take(tr__peer *p, uint32_t node)
{
    tr__dist_askers a = {.askers = p->askers, .cap = p->askers_cap,
                         .lost = {.node = node, .epoch = p->epoch}};
    p->askers = NULL;
    p->naskers = p->askers_cap = 0;
    return a;
}

/* (Not to an asker that has ended since it asked: the notice is no
 * message anyone sent, and would be counted as a dead letter.) */
void tr__dist_askers_tell(tr_runtime *rt, tr__worker *w, tr__dist_askers *a)
{
    for (uint32_t i = 0; i < a->cap; i++)
        if (a->askers[i] != TR_PID_NONE && local_alive(rt, a->askers[i]))
            (void)tr__send_owed(rt, w, TR_PID_NONE, a->askers[i], TR__ASK_LOST, &a->lost,
                                sizeof a->lost);
    free(a->askers);
    a->askers = NULL;
    a->cap = 0;
}

void tr__dist_node_free(tr__dist_node *n)
{
    for (uint32_t i = 0; i < n->npeers; i++) {
        for (size_t k = 0; k < n->peers[i]->nqueue; k++)
            tr__msg_release(n->peers[i]->queue[k]);
        free(n->peers[i]->queue);
        free(n->peers[i]->pids);
        free(n->peers[i]->hash);
        free(n->peers[i]->askers);
        free(n->peers[i]);
    }
    free(n->peers);
    free(n->names);
    free(n->unproven);
    tr__epmd_unregister(n);
    free(n);
}

/* ---- routing ---- */

int tr__dist_hand(tr_runtime *rt, tr__worker *w, tr_pid from, tr_pid conn, tr_msg *m)
{
    int err = tr__send(rt, w, from, conn, m);
    if (err != 0 || w == NULL)
        return err;
    /* A connection holding its senders (dist/frag.c) may be idle, and a
     * send that wakes one is not checked by the send path: the sender
     * waits for it all the same. */
    tr__actor *a = tr__table_lookup(&tr__actors_of(rt)->table, conn);
    tr_ctx *cx = &tr__turner_of(w)->cx;
    if (a != NULL && (ck_pr_load_64(&a->muted) & TR__OVERLOADED) && tr__cx_actor(cx) != NULL &&
        tr__cx_actor(cx) != a)
        tr__cx_give_way(cx, a);
    return 0;
}

int tr__dist_deliver(tr_runtime *rt, tr__worker *w, tr_pid from, tr__peer *p, tr_msg *m)
{
    if (p->up)
        return tr__dist_hand(rt, w, from, p->conn, m);
    if (p->nqueue == p->capqueue) {
        size_t cap = p->capqueue != 0 ? 2 * p->capqueue : 64;
        tr_msg **grown = realloc(p->queue, cap * sizeof *grown);
        if (grown == NULL) {
            tr__msg_release(m);
            return TR_ENOMEM;
        }
        p->queue = grown;
        p->capqueue = cap;
    }
    m->from = from;
    p->queue[p->nqueue++] = m;
    return 0;
}

tr_msg **tr__dist_take_queue(tr__peer *p, size_t *n)
{
    tr_msg **q = p->queue;
    *n = p->nqueue;
    p->queue = NULL;
    p->nqueue = p->capqueue = 0;
    return q;
}

tr_msg *tr__dist_out_new(tr__dist_out h, const char *name, const void *data, size_t len)
{
    h.name_len = name != NULL ? (uint16_t)strlen(name) : 0;
    tr_msg *m = tr__msg_new(TR__DIST_OUT, (uint32_t)(sizeof h + h.name_len + len));
    if (m != NULL) {
        memcpy(m->data, &h, sizeof h);
        if (h.name_len != 0)
            memcpy(m->data + sizeof h, name, h.name_len);
        if (len != 0)
            memcpy(m->data + sizeof h + h.name_len, data, len);
    }
    return m;
}

bool tr__dist_out_read(const tr_msg *m, tr__dist_out *h, const char **name,
                       const unsigned char **data, size_t *len)
{
    if (m->len < sizeof *h)
        return false;
    memcpy(h, m->data, sizeof *h);
    if (m->len - sizeof *h < h->name_len)
        return false;
    *name = (const char *)m->data + sizeof *h;
    *data = m->data + sizeof *h + h->name_len;
    *len = m->len - sizeof *h - h->name_len;
    return true;
}

/* A message the peer's queue held (a TR__DIST_OUT), as its sender sent
 * it, becomes a dead letter: a link or monitor request is answered
 * noproc, an ask fails (fault.c, ask.c). Owed (mailbox/msg.c): out of
 * memory, a monitor whose request was dropped would wait for ever. */
static void drop_out(tr_ctx *cx, tr_msg *out)
{
    tr__dist_out h;
    const char *name;
    const unsigned char *data;
    size_t len;
    if (tr__dist_out_read(out, &h, &name, &data, &len)) {
        tr_msg *m = tr__msg_new_owed(h.type, (uint32_t)len);
        if (m != NULL) {
            memcpy(m->data, data, len);
            m->from = h.from;
            m->to = h.to;
            tr__dead_letter(tr_ctx_runtime(cx), tr__cx_worker(cx), m);
            tr__msg_release(m);
        }
    }
    tr__msg_release(out);
}

void tr__dist_drop_queue(tr_ctx *cx, tr_msg **queue, size_t n)
{
    for (size_t i = 0; i < n; i++)
        drop_out(cx, queue[i]);
    free(queue);
}

/* What a node connection carries: messages, terms, the requests and
 * signals of links and monitors (dist/signals.c), and asks with their
 * answers (as messages: their whole bytes, tail and all, are m->len). */
static bool carried(uint32_t type)
{
    return type < TR_MSG_SYSTEM || type == TR_DIST_TERM || type == TR__LINK_REQ ||
           type == TR__UNLINK_REQ || type == TR__UNLINK_ACK || type == TR__EXIT_SIGNAL || type == TR__MONITOR_REQ ||
           type == TR__DEMONITOR_REQ || type == TR_DOWN || tr__dist_ask_type(type);
}

/* A message that cannot go: a link or monitor request is answered noproc,
 * an ask fails at once, anything else is dropped (a dead letter). */
static int bounce(tr_runtime *rt, tr__worker *w, tr_pid from, tr_pid to, tr_msg *m)
{
    m->from = from;
    m->to = to;
    tr__dead_letter(rt, w, m);
    tr__msg_release(m);
    return 0;
}

int tr__dist_route(tr_runtime *rt, tr__worker *w, tr_pid from, tr_pid to, tr_msg *m)
{
    if (m->len > TR_DIST_MSG_MAX) {
        tr__msg_release(m);
        return TR_EMSGSIZE;
    }
    if (!carried(m->type))
        return bounce(rt, w, from, to, m);
    /* Made before taking the lock: a big message's copy would hold every
     * node connection of the process up. */
    tr__dist_out h = {.from = from, .to = to, .type = m->type, .op = TR__CTL_SEND_SENDER};
    tr_msg *out = tr__dist_out_new(h, NULL, m->data, m->len);
    if (out == NULL) {
        tr__msg_release(m);
        return TR_ENOMEM;
    }
    tr__dist_lock();
    tr__dist_node *n = tr__dist_node_of(rt, 0);
    uint32_t node = TR__PID_NODE(to);
    tr__peer *p = n != NULL && node <= n->npeers ? n->peers[node - 1] : NULL;
    /* Not a node; a pid of a connection gone down, or of a peer we have
     * no connection to. */
    if (n == NULL || p == NULL || p->conn == TR_PID_NONE || TR__PID_GEN(to) != p->epoch ||
        TR__PID_INDEX(to) >= p->npids) {
        tr__dist_unlock();
        tr__msg_release(out);
        if (n != NULL)
            return bounce(rt, w, from, to, m);
        tr__msg_release(m);
        return TR_ENOPID;
    }
    int err = m->type == TR__ASK ? tr__dist_asker_add(rt, p, from) : 0;
    if (err == 0)
        err = tr__dist_deliver(rt, w, from, p, out);
    else
        tr__msg_release(out);
    tr__dist_unlock();
    tr__msg_release(m);
    return err == TR_ENOPID ? 0 : err;
}

uint64_t tr__dist_next_id(void)
{
    return ++last_id;
}

void tr__dist_add(tr__dist_node *n)
{
    n->next = nodes;
    nodes = n;
}

void tr__dist_remove(tr__dist_node *n)
{
    for (tr__dist_node **at = &nodes; *at != NULL; at = &(*at)->next)
        if (*at == n) {
            *at = n->next;
            return;
        }
}

unsigned tr__dist_conns_up(tr_runtime *rt)
{
    tr__dist_lock();
    tr__dist_node *n = tr__dist_node_of(rt, 0);
    unsigned up = n != NULL ? n->conns_up : 0;
    tr__dist_unlock();
    return up;
}
