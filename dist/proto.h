/* dist/proto.h — the Erlang distribution protocol as pure functions on
 * byte buffers (internal).
 *
 * Nothing here touches a socket, the runtime or a clock: EPMD requests and
 * replies, the version-6 handshake (as a state machine fed one message at
 * a time), the length-prefixed framing and the control messages, so that
 * every piece can be unit-tested and fuzzed on bytes alone. The formats are
 * those of erts/doc/guides/erl_dist_protocol.md and erl_ext_dist.md; terms
 * are read and written with ei (erlang-dev), never ei's connect calls.
 *
 * Parsers return 1 (complete), 0 (need more bytes, where that can happen)
 * or a negative TR_E* code: TR_EBADFRAME for malformed input.
 */
#ifndef TR_DIST_PROTO_H
#define TR_DIST_PROTO_H

#include <ei.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* Capability flags (erl_dist_protocol.md, "Distribution Flags"). */
#define TR__DFLAG_PUBLISHED           UINT64_C(0x1)
#define TR__DFLAG_EXTENDED_REFERENCES UINT64_C(0x4)
#define TR__DFLAG_DIST_MONITOR        UINT64_C(0x8)
#define TR__DFLAG_FUN_TAGS            UINT64_C(0x10)
#define TR__DFLAG_DIST_MONITOR_NAME   UINT64_C(0x20)
#define TR__DFLAG_NEW_FUN_TAGS        UINT64_C(0x80)
#define TR__DFLAG_EXTENDED_PIDS_PORTS UINT64_C(0x100)
#define TR__DFLAG_EXPORT_PTR_TAG      UINT64_C(0x200)
#define TR__DFLAG_BIT_BINARIES        UINT64_C(0x400)
#define TR__DFLAG_NEW_FLOATS          UINT64_C(0x800)
#define TR__DFLAG_DIST_HDR_ATOM_CACHE UINT64_C(0x2000)
#define TR__DFLAG_SMALL_ATOM_TAGS     UINT64_C(0x4000)
#define TR__DFLAG_UTF8_ATOMS          UINT64_C(0x10000)
#define TR__DFLAG_MAP_TAG             UINT64_C(0x20000)
#define TR__DFLAG_BIG_CREATION        UINT64_C(0x40000)
#define TR__DFLAG_SEND_SENDER         UINT64_C(0x80000)
#define TR__DFLAG_EXIT_PAYLOAD        UINT64_C(0x400000)
#define TR__DFLAG_FRAGMENTS           UINT64_C(0x800000)
#define TR__DFLAG_HANDSHAKE_23        UINT64_C(0x1000000)
#define TR__DFLAG_UNLINK_ID           UINT64_C(0x2000000)
#define TR__DFLAG_V4_NC               (UINT64_C(1) << 34)
#define TR__DFLAG_MANDATORY_25_DIGEST (UINT64_C(1) << 36)

/* What an OTP 25 node refuses to connect without. */
#define TR__DFLAGS_REQUIRED                                                              \
    (TR__DFLAG_EXTENDED_REFERENCES | TR__DFLAG_FUN_TAGS | TR__DFLAG_NEW_FUN_TAGS |       \
     TR__DFLAG_EXTENDED_PIDS_PORTS | TR__DFLAG_EXPORT_PTR_TAG | TR__DFLAG_BIT_BINARIES | \
     TR__DFLAG_NEW_FLOATS | TR__DFLAG_UTF8_ATOMS | TR__DFLAG_MAP_TAG |                   \
     TR__DFLAG_BIG_CREATION | TR__DFLAG_HANDSHAKE_23)

/* What we advertise: the required set, monitors (by pid and by name),
 * SEND_SENDER (so that m->from is known), the new link protocol, full
 * 32-bit pid fields (V4_NC: a tr_pid's slot and generation fit whole) and
 * fragments (dist/frag.c). Not the atom cache (frames stay pass-through
 * 112 messages, fragments carry no cache refs), not EXIT_PAYLOAD, aliases
 * or remote spawn: not implemented. */
#define TR__DFLAGS_OURS                                                                  \
    (TR__DFLAGS_REQUIRED | TR__DFLAG_PUBLISHED | TR__DFLAG_DIST_MONITOR |                \
     TR__DFLAG_DIST_MONITOR_NAME | TR__DFLAG_SMALL_ATOM_TAGS | TR__DFLAG_SEND_SENDER |   \
     TR__DFLAG_UNLINK_ID | TR__DFLAG_V4_NC | TR__DFLAG_MANDATORY_25_DIGEST |             \
     TR__DFLAG_FRAGMENTS)

#define TR__NODE_NAME_MAX 255 /* an atom's characters (bytes here: ASCII names) */
#define TR__COOKIE_MAX 255    /* a cookie is an atom too; erl reads no more of its file */
#define TR__HS_MSG_MAX    (3 + 8 + 4 + 4 + 2 + TR__NODE_NAME_MAX) /* longest handshake message */

/* ---- EPMD ---- */

#define TR__EPMD_PORT 4369

/* ALIVE2_REQ for node `alive` (the part before '@') listening on port,
 * with its 2-byte length: bytes written, or 0 if it does not fit / the
 * name is empty or too long. */
size_t tr__epmd_alive2_req(uint8_t *out, size_t cap, uint16_t port, const char *alive);
/* ALIVE2_X_RESP (or the older ALIVE2_RESP): 1 with the creation, 0 need
 * more, TR_EEXIST (EPMD refused: the name is taken), TR_EBADFRAME. */
int tr__epmd_alive2_resp(const uint8_t *p, size_t n, uint32_t *creation);
/* PORT_PLEASE2_REQ for `alive`, with its length; 0 if it does not fit. */
size_t tr__epmd_port_req(uint8_t *out, size_t cap, const char *alive);
/* PORT2_RESP: 1 with the port (and the highest version, which must be 6),
 * 0 need more, TR_EHOSTUNREACH (no such node), TR_EBADFRAME. */
int tr__epmd_port_resp(const uint8_t *p, size_t n, uint16_t *port);

/* ---- framing ---- */

/* A frame at the start of p[0..n): `hdr` (2 during the handshake, 4
 * after) bytes of big-endian length, then that many. 1 with the body's
 * offset and length (length 0 with hdr 4: a tick), 0 need more,
 * TR_EMSGSIZE past max. */
int tr__dist_frame(const uint8_t *p, size_t n, unsigned hdr, size_t max, size_t *body_len);

/* ---- handshake ---- */

/* The digest: MD5 of the cookie followed by the challenge in decimal. */
void tr__dist_digest(uint32_t challenge, const char *cookie, uint8_t out[16]);

enum tr__hs_state {
    TR__HS_SEND_NAME,   /* initiator: to send 'N' */
    TR__HS_WAIT_STATUS, /* initiator */
    TR__HS_ALIVE_ASKED, /* initiator: status "alive"; the node answers (tr__hs_alive) */
    TR__HS_WAIT_CHAL,   /* initiator: awaits 'N' with the challenge */
    TR__HS_WAIT_ACK,    /* initiator: awaits 'a' */
    TR__HS_WAIT_NAME,   /* acceptor: awaits 'N' */
    TR__HS_DECIDE,      /* acceptor: name read; the node decides the status */
    TR__HS_WAIT_ALIVE,  /* acceptor: said "alive"; awaits the initiator's true or false */
    TR__HS_WAIT_REPLY,  /* acceptor: awaits 'r' */
    TR__HS_UP,
    TR__HS_FAILED,
};

/* Results of tr__hs_step besides the negative codes. */
#define TR__HS_CONTINUE 0 /* out holds what to send (maybe nothing) */
#define TR__HS_NAMED    1 /* acceptor: call tr__hs_accept with a status */
#define TR__HS_DONE     2 /* up: out holds the last message to send, if any */
/* The status was "alive" (the acceptor still has a connection up from a
 * node of our name): the initiator answers with tr__hs_alive; the
 * acceptor, told "true" (that connection is a dead one of ours), decides
 * again with tr__hs_accept, whose status then goes unsent. */
#define TR__HS_ALIVE    3

typedef struct tr__hs {
    enum tr__hs_state state;
    bool initiator;
    const char *self;   /* our full name, name@host */
    const char *cookie;
    uint64_t flags;     /* ours */
    uint32_t creation;  /* ours */
    uint32_t my_challenge;
    /* the peer, as learnt */
    char peer[TR__NODE_NAME_MAX + 1];
    uint64_t peer_flags;
    uint32_t peer_creation;
    char refusal[32]; /* the status that refused us, for the log */
    bool status_sent; /* acceptor: "alive" went out, and "true" came back */
} tr__hs;

/* Sets hs up. The challenge is the caller's random number (so that the
 * functions stay pure). The initiator's first message (send_name) goes to
 * out; for an acceptor out_len is 0. */
int tr__hs_init(tr__hs *hs, bool initiator, const char *self, const char *cookie,
                uint32_t creation, uint32_t challenge, uint8_t *out, size_t cap, size_t *out_len);
/* Feeds one handshake message (the body of a 2-byte frame). Returns a
 * TR__HS_* result with the reply in out, or a negative code:
 * TR_EBADFRAME (malformed, unexpected, missing required flags),
 * TR_ECONNABORTED (bad digest: wrong cookie; or refused by status). */
int tr__hs_step(tr__hs *hs, const uint8_t *msg, size_t len, uint8_t *out, size_t cap,
                size_t *out_len);
/* Acceptor, after TR__HS_NAMED: answers with status ("ok", "nok",
 * "alive", "not_allowed"); "ok" also sends the challenge. A refusal
 * leaves the state TR__HS_FAILED (send out, then close); "alive" awaits
 * the initiator's answer. After TR__HS_ALIVE: "ok" (or
 * "ok_simultaneous") sends the challenge alone, anything else fails with
 * nothing to send. */
int tr__hs_accept(tr__hs *hs, const char *status, uint8_t *out, size_t cap, size_t *out_len);
/* Initiator, after TR__HS_ALIVE: answers "true" (go on: we have no
 * connection to the peer, so the one it has is a dead one of an earlier
 * node of our name) or "false" (close: the state is TR__HS_FAILED once
 * out is sent). */
int tr__hs_alive(tr__hs *hs, bool go_on, uint8_t *out, size_t cap, size_t *out_len);

/* ---- control messages ---- */

/* The operations troupe sends and handles, numbered as in
 * erl_dist_protocol.md; any other is skipped (term.c, get_fields). */
enum {
    /* messages */
    TR__CTL_SEND = 2, TR__CTL_REG_SEND = 6, TR__CTL_SEND_SENDER = 22,
    /* links and exits (UNLINK_ID: OTP 23's unlink protocol) */
    TR__CTL_LINK = 1, TR__CTL_EXIT = 3, TR__CTL_EXIT2 = 8,
    TR__CTL_UNLINK_ID = 35, TR__CTL_UNLINK_ID_ACK = 36,
    /* monitors */
    TR__CTL_MONITOR_P = 19, TR__CTL_DEMONITOR_P = 20, TR__CTL_MONITOR_P_EXIT = 21,
};

/* Big-endian integers, as the protocol and the external term format
 * write them. */
static inline void tr__put16(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}

static inline void tr__put32(uint8_t *p, uint32_t v)
{
    tr__put16(p, v >> 16);
    tr__put16(p + 2, v);
}

static inline void tr__put64(uint8_t *p, uint64_t v)
{
    tr__put32(p, (uint32_t)(v >> 32));
    tr__put32(p + 4, (uint32_t)v);
}

static inline uint32_t tr__get16(const uint8_t *p)
{
    return (uint32_t)p[0] << 8 | p[1];
}

static inline uint32_t tr__get32(const uint8_t *p)
{
    return tr__get16(p) << 16 | tr__get16(p + 2);
}

static inline uint64_t tr__get64(const uint8_t *p)
{
    return (uint64_t)tr__get32(p) << 32 | tr__get32(p + 4);
}

/* A decoded control message: which fields mean something depends on op.
 * Pointers point into the frame decoded. */
typedef struct tr__ctl {
    long op;
    erlang_pid from;        /* LINK, EXIT, REG_SEND, MONITOR_P*, SEND_SENDER, UNLINK_ID* */
    erlang_pid to;          /* LINK, SEND, EXIT, SEND_SENDER, UNLINK_ID*; MONITOR_P by pid */
    bool to_name;           /* REG_SEND, MONITOR_P/DEMONITOR_P, MONITOR_P_EXIT by name */
    char name[MAXATOMLEN_UTF8]; /* UTF-8, as troupe's names are */
    erlang_ref ref;         /* MONITOR_P, DEMONITOR_P, MONITOR_P_EXIT */
    unsigned long long id;  /* UNLINK_ID, UNLINK_ID_ACK */
    const char *reason;     /* EXIT, EXIT2, MONITOR_P_EXIT: the term, without 131 */
    size_t reason_len;
    const char *msg;        /* SEND, REG_SEND, SEND_SENDER: the term, with 131 */
    size_t msg_len;
} tr__ctl;

/* Empties c for a control message: every number 0, every pointer NULL,
 * every string "" — and not the rest of its buffers: a tr__ctl is 4 KB of
 * them (atoms of up to 255 UTF-8 characters), and zeroing it all took 1,200
 * instructions of each message a connection sent or received. */
static inline void tr__ctl_clear(tr__ctl *c)
{
    c->op = 0;
    c->from.node[0] = c->to.node[0] = c->name[0] = c->ref.node[0] = '\0';
    c->from.num = c->from.serial = c->from.creation = 0;
    c->to.num = c->to.serial = c->to.creation = 0;
    c->to_name = false;
    c->ref.len = 0;
    c->ref.creation = 0;
    memset(c->ref.n, 0, sizeof c->ref.n);
    c->id = 0;
    c->reason = c->msg = NULL;
    c->reason_len = c->msg_len = 0;
}

/* Decodes a frame body (after the 4-byte length, not a tick): 112, then
 * the control tuple and, for the sends, the message. 0 or TR_EBADFRAME
 * (not pass-through, a bad term, trailing bytes, an op we do not know is
 * 0 with op set: the caller ignores it). */
int tr__ctl_decode(const char *p, size_t n, tr__ctl *c);

/* Encodes c (its op's fields) as a frame: the 4-byte length (patched by
 * tr__ctl_finish), 112, the control tuple; for the sends the caller then
 * appends the message term (with its 131) and calls tr__ctl_finish.
 * 0, TR_ENOMEM or TR_EINVAL (an op we do not send). */
int tr__ctl_encode(ei_x_buff *x, const tr__ctl *c);
/* Writes the frame's length into its first 4 bytes: 0, or TR_EMSGSIZE. */
int tr__ctl_finish(ei_x_buff *x);

/* ---- messages as terms ---- */

#define TR__VERSION_MAGIC 131 /* the external format's first byte */

/* Walks one term (no 131 before it) within p[0..n) without trusting any
 * length in it: 0 with its size; TR__TERM_CUT (positive) when the bytes
 * end before the term does; TR_EBADFRAME (an unknown or atom-cache tag, a
 * ref longer than ei holds, funs nested past TR__FUN_DEPTH_MAX). Nesting
 * of tuples, lists and maps is not bounded (erl sends a 10,000-deep list
 * as readily as a flat one): the walk keeps a count, not a stack. What
 * passes may be given to ei's decoders, which do not check bounds (and
 * recurse: troupe's own reading of a term never does). */
#define TR__TERM_CUT      1
#define TR__FUN_DEPTH_MAX 64
int tr__term_check(const char *p, size_t n, size_t *used);

/* Appends the term a troupe message travels as: the bytes themselves for
 * TR_DIST_TERM (a whole external term, 131 first: checked), else
 * {Type, <<Bytes>>}. 0, TR_EINVAL (a TR_DIST_TERM that is not one term)
 * or TR_ENOMEM. */
int tr__term_from_msg(ei_x_buff *x, uint32_t type, const void *data, size_t len);
/* The troupe message a term (131 first) arrives as: {Type, <<Bytes>>}
 * with 0 <= Type < TR_MSG_SYSTEM, or with a request/reply type whose
 * bytes pass tr__ask_wire_ok, gives that type and a pointer to the bytes
 * in p; any other term gives TR_DIST_TERM and p itself. */
void tr__term_to_msg(const char *p, size_t n, uint32_t *type, const char **data, size_t *len);

/* Whether len bytes from a peer may reach actors/ask.c as a message of
 * `type`: TR__ASK and TR_REPLY must end in a tr__ask_tail at the offset
 * ask.c reads it from (the user's length rounded up to 8, the tail last),
 * a ref that is not 0, and for an ask a user type; TR_ASK_FAILED must be
 * one tr_ask_failure with a known why. Any other type: false. Both sides
 * are troupe nodes of the same byte order and layout (the tail and the
 * failure travel as they lie in memory). */
bool tr__ask_wire_ok(uint32_t type, const void *data, size_t len);

/* Whether name (a registered name) is an atom: valid UTF-8 of at most
 * 255 characters. Names cross as atoms of their characters, each way:
 * troupe's UTF-8 bytes are the atom's text (term.c). */
bool tr__name_is_atom(const char *name);

/* Splits "name@host": 0, or TR_EINVAL (no '@', an empty part, too long). */
int tr__node_split(const char *node, char *alive, size_t alive_cap, char *host, size_t host_cap);

#endif
