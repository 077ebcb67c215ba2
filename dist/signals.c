/* dist/signals.c — what crosses an up connection: messages, and links,
 * monitors and exit signals translated both ways between troupe's own
 * fault protocol (actors/fault.h: link, unlink, monitor and demonitor
 * requests, exit signals, TR_DOWN, all of them messages) and Erlang's
 * control messages.
 *
 * A local actor's tr_link / tr_monitor / tr_kill to a remote pid send the
 * usual requests; the send path routes them here (tr__dist_route, actors/actors.h), and they
 * go out as LINK, MONITOR_P, EXIT2... A peer's LINK or MONITOR_P becomes
 * the same request sent to the local actor from the remote process's
 * tr_pid, so the local actor's own record keeps the link or watcher and
 * its end sends the exit signal or TR_DOWN back through here as EXIT or
 * MONITOR_P_EXIT. What fault.c already guarantees locally holds across:
 * one DOWN per monitor, none after tr_demonitor returns (a late one is
 * dropped on arrival). This file only remembers what crosses, so that the
 * local ends hear `noconnection` once when the connection goes.
 *
 * Asks, replies and their failures cross as plain messages (their bytes
 * carry actors/ask.c's tail); the only translation is a failure's `to`,
 * which names the target as the peer numbers it and is made ours here.
 */
#include <stdlib.h>
#include <string.h>

#include "../actors/context.h"
#include "../actors/fault.h"
#include "../sched/sched.h"
#include "conn.h"
#include "troupe/fault.h"

/* ---- the tables ---- */

/* The table keeps a pair while the local end may hold an entry for it
 * (actors/fault.h), so that the entry hears `noconnection` when the
 * connection goes (which an entry gone or unlinking ignores): it may keep
 * a pair longer than the local end does, never less. What the local end
 * sends arrives here in its order, so `unlinking` is its own state as of
 * its last request; what it takes from the peer, it takes in the order
 * handed, and the ack of an UNLINK_ID says where it is: a pair is dropped
 * when the end is known to hold no entry and to be handed nothing that
 * makes one —
 *   its exit signal through the link, going out or coming in;
 *   the peer's ack of the end's current unlink (a later tr_link of the
 *   end's comes here after, and notes the pair again);
 *   the end's ack of the peer's last UNLINK_ID while the end was active,
 *   no LINK handed to it since (an active end drops its entry as it takes
 *   the request; an unlinking one keeps it for the ack above). */
/* Found by the pair (actors/keyed.h: a node's supervisor may hold
 * thousands of links across one connection). */
static const tr__keyed_kind XLINKS = {sizeof(tr__xlink), offsetof(tr__xlink, local),
                                      2 * sizeof(tr_pid)};
_Static_assert(offsetof(tr__xlink, remote) == offsetof(tr__xlink, local) + sizeof(tr_pid),
               "a pair's key is its two pids side by side");

static tr__xlink *find_link(tr__dconn *c, tr_pid local, tr_pid remote)
{
    tr_pid key[2] = {local, remote};
    int i = tr__keyed_find(&c->links, &XLINKS, key);
    return i >= 0 ? tr__keyed_at(&c->links, &XLINKS, (uint32_t)i) : NULL;
}

/* The pair's entry, noted as active if new. NULL if there is no memory
 * to note it: then the link is not made, as nothing would tell its local
 * end when the connection goes. */
static tr__xlink *add_link(tr__dconn *c, tr_pid local, tr_pid remote)
{
    tr__xlink *l = find_link(c, local, remote);
    if (l != NULL)
        return l;
    if (!tr__keyed_room(&c->links, &XLINKS))
        return NULL;
    return tr__keyed_push(&c->links, &XLINKS, &(tr__xlink){.local = local, .remote = remote});
}

/* Drops the pair's entry l (from find_link or add_link, with no push or
 * drop since), if any. */
static void drop_link(tr__dconn *c, const tr__xlink *l)
{
    if (l != NULL)
        tr__keyed_drop(&c->links, &XLINKS, tr__keyed_pos(&c->links, &XLINKS, l));
}

/* Monitors across, each way. Ours are found by our ref (the local end's
 * DEMONITOR_REQ, the peer's MONITOR_P_EXIT). The peer's are found by the
 * ref made here for them (the local end's TR_DOWN) and by the peer's own
 * (its DEMONITOR_P), through EREFS: the first four words of the peer's
 * ref beside the ref made here. Four words are all of a ref of up to
 * four; two refs that differ only past them share a key, and a lookup
 * that finds the other one scans. */
static const tr__keyed_kind MONS = {sizeof(tr__xmon), offsetof(tr__xmon, ref), sizeof(uint64_t)};
static const tr__keyed_kind MONS_IN = {sizeof(tr__xmon_in), offsetof(tr__xmon_in, ref),
                                       sizeof(uint64_t)};

typedef struct eref_key {
    uint64_t words[2]; /* the key */
    uint64_t ref;      /* the monitor's in MONS_IN */
} eref_key;
static const tr__keyed_kind EREFS = {sizeof(eref_key), offsetof(eref_key, words),
                                     sizeof(((eref_key *)0)->words)};

static void eref_words(const erlang_ref *e, uint64_t words[2])
{
    uint32_t n[4] = {0, 0, 0, 0}; /* (the words past len are not the ref's) */
    for (int i = 0; i < e->len && i < 4; i++)
        n[i] = e->n[i];
    words[0] = n[0] | (uint64_t)n[1] << 32;
    words[1] = n[2] | (uint64_t)n[3] << 32;
}

static const eref_key *eref_at(const tr__dconn *c, int i)
{
    return tr__keyed_at(&c->erefs, &EREFS, (uint32_t)i);
}

static bool add_mon(tr__dconn *c, const tr__xmon *mo)
{
    if (!tr__keyed_room(&c->mons, &MONS))
        return false;
    tr__keyed_push(&c->mons, &MONS, mo);
    return true;
}

static tr__xmon *find_mon(tr__dconn *c, uint64_t ref)
{
    int i = tr__keyed_find(&c->mons, &MONS, &ref);
    return i >= 0 ? tr__keyed_at(&c->mons, &MONS, (uint32_t)i) : NULL;
}

static void drop_mon(tr__dconn *c, const tr__xmon *mo)
{
    tr__keyed_drop(&c->mons, &MONS, tr__keyed_pos(&c->mons, &MONS, mo));
}

/* A copy of mo in the peer's monitors, or NULL: no memory. */
static tr__xmon_in *add_mon_in(tr__dconn *c, const tr__xmon_in *mo)
{
    if (!tr__keyed_room(&c->mons_in, &MONS_IN) || !tr__keyed_room(&c->erefs, &EREFS))
        return NULL;
    eref_key k = {.ref = mo->ref};
    eref_words(&mo->eref, k.words);
    tr__keyed_push(&c->erefs, &EREFS, &k);
    return tr__keyed_push(&c->mons_in, &MONS_IN, mo);
}

static tr__xmon_in *find_mon_in(tr__dconn *c, uint64_t ref)
{
    int i = tr__keyed_find(&c->mons_in, &MONS_IN, &ref);
    return i >= 0 ? tr__keyed_at(&c->mons_in, &MONS_IN, (uint32_t)i) : NULL;
}

static bool is_mon_in(tr__xmon_in *mo, tr_pid remote, erlang_ref *eref)
{
    return mo->remote == remote && ei_cmp_refs(&mo->eref, eref) == 0;
}

/* The peer's monitor that its process `remote` holds under eref, or NULL. */
static tr__xmon_in *find_mon_in_eref(tr__dconn *c, tr_pid remote, erlang_ref *eref)
{
    uint64_t words[2];
    eref_words(eref, words);
    int i = tr__keyed_find(&c->erefs, &EREFS, words);
    if (i < 0)
        return NULL; /* each of the peer's monitors has its words there */
    tr__xmon_in *mo = find_mon_in(c, eref_at(c, i)->ref);
    if (mo != NULL && is_mon_in(mo, remote, eref))
        return mo;
    for (uint32_t j = 0; j < c->mons_in.n; j++) { /* another ref has those words */
        mo = tr__keyed_at(&c->mons_in, &MONS_IN, j);
        if (is_mon_in(mo, remote, eref))
            return mo;
    }
    return NULL;
}

static void drop_mon_in(tr__dconn *c, const tr__xmon_in *mo)
{
    uint64_t words[2];
    eref_words(&mo->eref, words);
    int i = tr__keyed_find(&c->erefs, &EREFS, words);
    if (i >= 0 && eref_at(c, i)->ref != mo->ref) /* another ref has those words */
        for (i = (int)c->erefs.n - 1; i >= 0 && eref_at(c, i)->ref != mo->ref; i--)
            continue;
    if (i >= 0)
        tr__keyed_drop(&c->erefs, &EREFS, (uint32_t)i);
    tr__keyed_drop(&c->mons_in, &MONS_IN, tr__keyed_pos(&c->mons_in, &MONS_IN, mo));
}

/* Our troupe reference as an Erlang ref of this node, and back (18 bits,
 * then 32, then 14: the first word of a ref has 18 significant bits). */
static void eref_of(const tr__dconn *c, uint64_t r, erlang_ref *e)
{
    memset(e, 0, sizeof *e);
    strcpy(e->node, c->self);
    e->len = 3;
    e->n[0] = (unsigned)(r & 0x3ffff);
    e->n[1] = (unsigned)(r >> 18);
    e->n[2] = (unsigned)(r >> 50);
    e->creation = c->creation;
}

static bool ref_of(const tr__dconn *c, const erlang_ref *e, uint64_t *r)
{
    if (strcmp(e->node, c->self) != 0 || e->len != 3)
        return false;
    *r = (uint64_t)e->n[0] | (uint64_t)e->n[1] << 18 | (uint64_t)e->n[2] << 50;
    return true;
}

/* ---- exit reasons ---- */

/* As Erlang sees it: the reasons troupe names as atoms (normal, killed,
 * noproc, noconnection, ...), the program's own as integers. */
static int reason_out(ei_x_buff *r, int reason)
{
    const char *name = tr_exit_reason_name(reason);
    return strcmp(name, "user") != 0 ? ei_x_encode_atom(r, name) : ei_x_encode_long(r, reason);
}

/* An Erlang reason (a checked term) as troupe's: the atoms troupe names,
 * positive integers that fit; any other term is 1 (a failure troupe has
 * no number for). */
static int reason_in(const char *p)
{
    char atom[MAXATOMLEN_UTF8];
    long v;
    int i = 0;
    if (ei_decode_atom(p, &i, atom) == 0) {
        static const int known[] = {TR_EXIT_NORMAL, TR_EXIT_KILL, TR_EXIT_KILLED, TR_EXIT_NOPROC,
                                    TR_EXIT_SHUTDOWN, TR_EXIT_NOCONNECTION};
        for (size_t k = 0; k < sizeof known / sizeof known[0]; k++)
            if (strcmp(atom, tr_exit_reason_name(known[k])) == 0)
                return known[k];
        return 1;
    }
    i = 0;
    if (ei_decode_long(p, &i, &v) == 0 && v > 0 && v <= INT32_MAX)
        return (int)v;
    return 1;
}

/* Sends ctl with `reason` as its Reason. */
static void send_with_reason(tr_ctx *cx, tr__dconn *c, tr__ctl *ctl, int reason)
{
    ei_x_buff r;
    if (ei_x_new(&r) != 0) {
        tr__dconn_lost(cx, c, "signal not sent", TR_ENOMEM);
        return;
    }
    if (reason_out(&r, reason) == 0) {
        ctl->reason = r.buff;
        ctl->reason_len = (size_t)r.index;
        tr__dconn_send_ctl(cx, c, ctl, 0, NULL, 0, false);
    } else {
        tr__dconn_lost(cx, c, "signal not sent", TR_ENOMEM);
    }
    ei_x_free(&r);
}

/* ---- to local actors ---- */

/* A signal for a local actor, on the peer's behalf or the connection's:
 * owed (actors.h), as an exit, a DOWN or an ask's failure has a promise
 * resting on it. */
static void hand(tr_ctx *cx, tr_pid from, tr_pid to, uint32_t type, const void *data, size_t len)
{
    (void)tr__send_owed(tr_ctx_runtime(cx), tr__cx_worker(cx), from, to, type, data, len);
}

static void exit_signal_from(tr_runtime *rt, tr__worker *w, tr_pid from, tr_pid to, int reason,
                             bool linked)
{
    tr__signal s;
    memset(&s, 0, sizeof s);
    s.info.pid = from;
    s.info.reason = reason;
    s.linked = linked;
    (void)tr__send_owed(rt, w, from, to, TR__EXIT_SIGNAL, &s, sizeof s);
}

static void exit_signal(tr_ctx *cx, tr_pid from, tr_pid to, int reason, bool linked)
{
    exit_signal_from(tr_ctx_runtime(cx), tr__cx_worker(cx), from, to, reason, linked);
}

static void down_from(tr_runtime *rt, tr__worker *w, tr_pid who, tr_pid to, uint64_t ref,
                      int reason)
{
    tr_down_info d;
    memset(&d, 0, sizeof d);
    d.ref = ref;
    d.pid = who;
    d.reason = reason;
    (void)tr__send_owed(rt, w, who, to, TR_DOWN, &d, sizeof d);
}

static void down(tr_ctx *cx, tr_pid who, tr_pid to, uint64_t ref, int reason)
{
    down_from(tr_ctx_runtime(cx), tr__cx_worker(cx), who, to, ref, reason);
}

/* ---- going out ---- */

/* A message's two pids as Erlang's, under one taking of the dist lock:
 * `from` (nobody, the outside context, goes as a stand-in pid of ours)
 * and, unless to_too is false (a REG_SEND), `to`. False if either has no
 * Erlang form (a pid of a connection gone: a dead letter). */
static bool pids_out(tr_ctx *cx, tr__dconn *c, tr_pid from, tr_pid to, bool to_too,
                     tr__ctl *ctl)
{
    uint32_t peer;
    tr__dist_lock();
    tr__dist_node *n = tr__dist_node_of(tr_ctx_runtime(cx), c->node_id);
    bool ok = n != NULL && (tr__dist_pid_out(n, from, &ctl->from, &peer) == 0 ||
                            tr__dist_pid_out(n, TR_PID_NONE, &ctl->from, &peer) == 0);
    if (ok && to_too)
        ok = tr__dist_pid_out(n, to, &ctl->to, &peer) == 0;
    tr__dist_unlock();
    return ok;
}

static uint64_t payload_u64(const unsigned char *data, size_t len)
{
    uint64_t v = 0;
    if (len >= sizeof v)
        memcpy(&v, data, sizeof v);
    return v;
}

/* A signal of troupe's fault protocol from local h->from to remote h->to. */
static void signal_out(tr_ctx *cx, tr__dconn *c, const tr__dist_out *h, tr__ctl *ctl,
                       const unsigned char *data, size_t len)
{
    switch (h->type) {
    case TR__LINK_REQ: {
        tr__xlink *l = add_link(c, h->from, h->to);
        if (l == NULL) {
            /* Out of memory: told at once, as if the connection went. */
            exit_signal(cx, h->to, h->from, TR_EXIT_NOCONNECTION, true);
            return;
        }
        l->unlinking = 0; /* sent over an unlink: active */
        ctl->op = TR__CTL_LINK;
        tr__dconn_send_ctl(cx, c, ctl, 0, NULL, 0, false);
        return;
    }
    case TR__UNLINK_REQ: { /* the local end's id goes as the UNLINK_ID's */
        tr__xlink *l = find_link(c, h->from, h->to);
        ctl->id = payload_u64(data, len);
        if (l != NULL)
            l->unlinking = ctl->id;
        ctl->op = TR__CTL_UNLINK_ID;
        tr__dconn_send_ctl(cx, c, ctl, 0, NULL, 0, false);
        return;
    }
    case TR__UNLINK_ACK: { /* the local end took the peer's UNLINK_ID */
        tr__xlink *l = find_link(c, h->from, h->to);
        ctl->id = payload_u64(data, len);
        if (l != NULL && l->unlinking == 0 && !l->linked_in && l->unlink_in == ctl->id)
            drop_link(c, l);
        ctl->op = TR__CTL_UNLINK_ID_ACK;
        tr__dconn_send_ctl(cx, c, ctl, 0, NULL, 0, false);
        return;
    }
    case TR__EXIT_SIGNAL: {
        tr__signal s;
        if (len < sizeof s)
            return;
        memcpy(&s, data, sizeof s);
        if (s.linked)
            drop_link(c, find_link(c, h->from, h->to));
        ctl->op = s.linked ? TR__CTL_EXIT : TR__CTL_EXIT2;
        send_with_reason(cx, c, ctl, s.info.reason);
        return;
    }
    case TR__MONITOR_REQ: {
        tr__xmon mo = {.ref = payload_u64(data, len), .local = h->from, .remote = h->to};
        if (!add_mon(c, &mo)) { /* out of memory: as above */
            down(cx, h->to, h->from, mo.ref, TR_EXIT_NOCONNECTION);
            return;
        }
        ctl->op = TR__CTL_MONITOR_P;
        eref_of(c, mo.ref, &ctl->ref);
        tr__dconn_send_ctl(cx, c, ctl, 0, NULL, 0, false);
        return;
    }
    case TR__DEMONITOR_REQ: {
        uint64_t r = payload_u64(data, len);
        tr__xmon *mo = find_mon(c, r);
        if (mo != NULL)
            drop_mon(c, mo);
        ctl->op = TR__CTL_DEMONITOR_P;
        eref_of(c, r, &ctl->ref);
        tr__dconn_send_ctl(cx, c, ctl, 0, NULL, 0, false);
        return;
    }
    case TR_DOWN: { /* a local actor the peer watched has ended */
        tr_down_info d;
        if (len < sizeof d)
            return;
        memcpy(&d, data, sizeof d);
        tr__xmon_in *mo = find_mon_in(c, d.ref);
        if (mo == NULL)
            return;
        ctl->op = TR__CTL_MONITOR_P_EXIT;
        ctl->ref = mo->eref;
        if (mo->by_name) {
            ctl->to_name = true;
            strcpy(ctl->name, mo->name);
        }
        drop_mon_in(c, mo);
        send_with_reason(cx, c, ctl, d.reason);
        return;
    }
    default:
        return; /* the rest: not carried (tr__dist_route bounced them) */
    }
}

static void send_out(tr_ctx *cx, tr__dconn *c, const tr__dist_out *h, const char *name,
                     const unsigned char *data, size_t len);

/* A request that cannot go to the peer (its connection is going or gone,
 * or the pid has no Erlang form any more) is answered as the connection's
 * end would answer it: a link with an exit, a monitor with a DOWN, both
 * noconnection; an ask's asker hears from the peer's down (node.c);
 * anything else is dropped, as a message to a node that is gone. */
static void refuse(tr_runtime *rt, tr__worker *w, const tr__dist_out *h,
                   const unsigned char *data, size_t len)
{
    if (h->type == TR__LINK_REQ)
        exit_signal_from(rt, w, h->to, h->from, TR_EXIT_NOCONNECTION, true);
    else if (h->type == TR__MONITOR_REQ)
        down_from(rt, w, h->to, h->from, payload_u64(data, len), TR_EXIT_NOCONNECTION);
}

void tr__dist_out_refused(tr_runtime *rt, tr__worker *w, const tr_msg *m)
{
    tr__dist_out h;
    const char *name;
    const unsigned char *data;
    size_t len;
    if (m->type == TR__DIST_OUT && tr__dist_out_read(m, &h, &name, &data, &len))
        refuse(rt, w, &h, data, len);
}

void tr__dist_send_out(tr_ctx *cx, tr__dconn *c, const tr_msg *m)
{
    tr__dist_out h;
    const char *name;
    const unsigned char *data;
    size_t len;
    if (!tr__dist_out_read(m, &h, &name, &data, &len))
        return;
    c->out_from = h.from; /* its frames keep their order (dist/frag.c) */
    send_out(cx, c, &h, name, data, len);
    c->out_from = TR_PID_NONE;
}

static void send_out(tr_ctx *cx, tr__dconn *c, const tr__dist_out *h, const char *name,
                     const unsigned char *data, size_t len)
{
    tr__ctl ctl;
    tr__ctl_clear(&ctl);
    if (!pids_out(cx, c, h->from, h->to, h->op != TR__CTL_REG_SEND, &ctl)) {
        refuse(tr_ctx_runtime(cx), tr__cx_worker(cx), h, data, len);
        return;
    }
    if (h->op == TR__CTL_REG_SEND) {
        ctl.op = TR__CTL_REG_SEND;
        ctl.to_name = true;
        memcpy(ctl.name, name, h->name_len); /* at most TR__NODE_NAME_MAX (api.c) */
        ctl.name[h->name_len] = '\0';
        tr__dconn_send_ctl(cx, c, &ctl, h->type, data, len, true);
        return;
    }
    if (h->type >= TR_MSG_SYSTEM && h->type != TR_DIST_TERM && !tr__dist_ask_type(h->type)) {
        signal_out(cx, c, h, &ctl, data, len);
        return;
    }
    /* Sent only while up (send_or_refuse): the peer's flags are known. A
     * peer without SEND_SENDER (a C node, an older release) gets SEND. */
    ctl.op = c->hs.peer_flags & TR__DFLAG_SEND_SENDER ? TR__CTL_SEND_SENDER : TR__CTL_SEND;
    tr__dconn_send_ctl(cx, c, &ctl, h->type, data, len, true);
}

/* ---- coming in ---- */

static bool ours(tr_pid p)
{
    return p != TR_PID_NONE && TR__PID_NODE(p) == 0;
}

_Static_assert(TR_NAME_MAX <= TR__NODE_NAME_MAX + 1, "a registered name fits a tr__xmon_in's");

/* MONITOR_P: the peer's process `rf` watches our actor `to` (or a name
 * that is nobody's: noproc at once). */
static void monitor_in(tr_ctx *cx, tr__dconn *c, const tr__ctl *ctl, tr_pid rf, tr_pid to)
{
    tr__xmon_in *mo = NULL;
    if (ours(to) && rf != TR_PID_NONE) {
        tr__xmon_in in = {.ref = ++c->next_ref, .local = to, .remote = rf,
                          .by_name = ctl->to_name, .eref = ctl->ref};
        /* A name that found `to` is a registered one: shorter than
         * TR_NAME_MAX bytes, far from the 255 in.name holds (a peer's name
         * may be up to 1020 bytes of UTF-8; a longer one is nobody's and
         * answered below). */
        strcpy(in.name, ctl->name);
        mo = add_mon_in(c, &in);
    }
    if (mo == NULL) {
        tr__ctl back;
        tr__ctl_clear(&back);
        back.op = TR__CTL_MONITOR_P_EXIT;
        back.from = ctl->to;
        back.to = ctl->from;
        back.ref = ctl->ref;
        back.to_name = ctl->to_name;
        strcpy(back.name, ctl->name);
        send_with_reason(cx, c, &back, TR_EXIT_NOPROC);
        return;
    }
    /* A target already gone answers with TR_DOWN noproc (fault.c). */
    hand(cx, rf, to, TR__MONITOR_REQ, &mo->ref, sizeof mo->ref);
}

static void demonitor_in(tr_ctx *cx, tr__dconn *c, const tr__ctl *ctl, tr_pid rf)
{
    erlang_ref r = ctl->ref;
    tr__xmon_in *mo = find_mon_in_eref(c, rf, &r);
    if (mo != NULL) {
        hand(cx, rf, mo->local, TR__DEMONITOR_REQ, &mo->ref, sizeof mo->ref);
        drop_mon_in(c, mo);
    }
}

/* MONITOR_P_EXIT: a remote process one of ours watched has ended. */
static void monitor_exit_in(tr_ctx *cx, tr__dconn *c, const tr__ctl *ctl)
{
    uint64_t r;
    tr__xmon *mo = ref_of(c, &ctl->ref, &r) ? find_mon(c, r) : NULL;
    if (mo == NULL)
        return;
    down(cx, mo->remote, mo->local, mo->ref, reason_in(ctl->reason));
    drop_mon(c, mo);
}

/* A peer's TR_ASK_FAILED (checked by tr__ask_wire_ok): its `to` is the
 * target as the peer numbers it; here the target is the sender. */
static void ask_failed_in(tr_ctx *cx, tr_pid from, tr_pid to, const char *data)
{
    tr_ask_failure f;
    memcpy(&f, data, sizeof f);
    f.to = from;
    hand(cx, from, to, TR_ASK_FAILED, &f, sizeof f);
}

static void deliver(tr_ctx *cx, const tr__ctl *ctl, tr_pid from, tr_pid to)
{
    /* Not one of ours: dropped (an ask waits for its timeout). A name
     * nobody holds here too, silently, as Erlang drops a send to a remote
     * name: an OTP peer writes to its own system processes' namesakes on
     * every node it reaches (two such messages as erl connects), and they
     * would make every connection a source of dead letters. */
    if (!ours(to))
        return;
    uint32_t type;
    const char *data;
    size_t len;
    tr__term_to_msg(ctl->msg, ctl->msg_len, &type, &data, &len);
    if (type == TR_ASK_FAILED)
        ask_failed_in(cx, from, to, data);
    else if (type != TR__ASK || from != TR_PID_NONE) /* an ask from nobody has no one to answer */
        (void)tr__send_copy(tr_ctx_runtime(cx), tr__cx_worker(cx), from, to, type, data, len);
}

int tr__dist_dispatch(tr_ctx *cx, tr__dconn *c, const char *p, size_t n)
{
    tr__ctl ctl;
    int err = tr__ctl_decode(p, n, &ctl);
    if (err != 0)
        return err;
    if (ctl.op <= 0)
        return 0; /* not one we handle: ignored */
    tr_runtime *rt = tr_ctx_runtime(cx);
    tr_pid rf = TR_PID_NONE, to = TR_PID_NONE;
    bool from_is_pid = ctl.op != TR__CTL_SEND && !(ctl.op == TR__CTL_MONITOR_P_EXIT && ctl.to_name);
    /* The sender is the peer's, the receiver ours: a pid of any other
     * node in those fields is nobody (and makes no entry in the peer
     * table, whose entries are never removed). */
    tr__dist_lock();
    tr__dist_node *node = tr__dist_node_of(rt, c->node_id);
    if (node != NULL) {
        if (from_is_pid && strcmp(ctl.from.node, c->peer) == 0)
            rf = tr__dist_pid_in(node, &ctl.from);
        if (!ctl.to_name && ctl.op != TR__CTL_REG_SEND && strcmp(ctl.to.node, node->name) == 0)
            to = tr__dist_pid_in(node, &ctl.to);
    }
    tr__dist_unlock();
    if (node == NULL)
        return TR_ENOTCONN;
    if (ctl.to_name && ctl.op != TR__CTL_MONITOR_P_EXIT)
        to = tr_whereis(rt, ctl.name);
    switch (ctl.op) {
    case TR__CTL_SEND:
    case TR__CTL_SEND_SENDER:
    case TR__CTL_REG_SEND:
        deliver(cx, &ctl, rf, to);
        break;
    case TR__CTL_LINK: {
        /* A dead `to` answers noproc (fault.c); a link this side cannot
         * note (out of memory) is refused as if the connection went. */
        bool linkable = ours(to) && rf != TR_PID_NONE;
        tr__xlink *l = linkable ? add_link(c, to, rf) : NULL;
        if (l != NULL) {
            l->linked_in = true;
            hand(cx, rf, to, TR__LINK_REQ, NULL, 0);
        } else {
            tr__ctl back = ctl;
            back.op = TR__CTL_EXIT;
            back.from = ctl.to;
            back.to = ctl.from;
            send_with_reason(cx, c, &back, linkable ? TR_EXIT_NOCONNECTION : TR_EXIT_NOPROC);
        }
        break;
    }
    case TR__CTL_EXIT:
    case TR__CTL_EXIT2:
        if (ours(to) && rf != TR_PID_NONE) {
            if (ctl.op == TR__CTL_EXIT)
                drop_link(c, find_link(c, to, rf));
            exit_signal(cx, rf, to, reason_in(ctl.reason), ctl.op == TR__CTL_EXIT);
        }
        break;
    case TR__CTL_UNLINK_ID: {
        /* The local end acknowledges it as it takes it (fault.c), or the
         * bounce does if it is gone; without one, it is done here. */
        uint64_t id = ctl.id;
        if (ours(to) && rf != TR_PID_NONE) {
            tr__xlink *l = find_link(c, to, rf);
            if (l != NULL) {
                l->unlink_in = id;
                l->linked_in = false;
            }
            if (tr__send_owed(rt, tr__cx_worker(cx), rf, to, TR__UNLINK_REQ, &id, sizeof id) == 0)
                break;
            drop_link(c, l); /* nobody there to hold an entry */
        }
        tr__ctl ack = ctl;
        ack.op = TR__CTL_UNLINK_ID_ACK;
        ack.from = ctl.to;
        ack.to = ctl.from;
        tr__dconn_send_ctl(cx, c, &ack, 0, NULL, 0, false);
        break;
    }
    case TR__CTL_UNLINK_ID_ACK:
        if (ours(to) && rf != TR_PID_NONE) {
            uint64_t id = ctl.id;
            tr__xlink *l = find_link(c, to, rf);
            if (l != NULL && l->unlinking != 0 && l->unlinking == id)
                drop_link(c, l);
            hand(cx, rf, to, TR__UNLINK_ACK, &id, sizeof id);
        }
        break;
    case TR__CTL_MONITOR_P:
        monitor_in(cx, c, &ctl, rf, to);
        break;
    case TR__CTL_DEMONITOR_P:
        demonitor_in(cx, c, &ctl, rf);
        break;
    case TR__CTL_MONITOR_P_EXIT:
        monitor_exit_in(cx, c, &ctl);
        break;
    default:
        break; /* the rest: ignored */
    }
    return 0;
}

void tr__dist_lost(tr_ctx *cx, tr__dconn *c)
{
    for (uint32_t i = 0; i < c->links.n; i++) {
        const tr__xlink *l = tr__keyed_at(&c->links, &XLINKS, i);
        exit_signal(cx, l->remote, l->local, TR_EXIT_NOCONNECTION, true);
    }
    for (uint32_t i = 0; i < c->mons.n; i++) {
        const tr__xmon *mo = tr__keyed_at(&c->mons, &MONS, i);
        down(cx, mo->remote, mo->local, mo->ref, TR_EXIT_NOCONNECTION);
    }
    for (uint32_t i = 0; i < c->mons_in.n; i++) {
        const tr__xmon_in *mo = tr__keyed_at(&c->mons_in, &MONS_IN, i);
        hand(cx, mo->remote, mo->local, TR__DEMONITOR_REQ, &mo->ref, sizeof mo->ref);
    }
    tr__dist_conn_free(c);
}

void tr__dist_conn_free(tr__dconn *c)
{
    tr__keyed_free(&c->links);
    tr__keyed_free(&c->mons);
    tr__keyed_free(&c->mons_in);
    tr__keyed_free(&c->erefs);
}
