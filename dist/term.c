/* dist/term.c — control messages and messages as external-format terms.
 *
 * ei's decoders take no buffer length: they trust the bytes. Everything
 * that arrives from a peer is therefore walked first by term_check, which
 * knows every tag's size and stays within the bytes it was given, and
 * only then handed to ei. */
#include <string.h>

#include "../actors/ask.h"
#include "proto.h"
#include "troupe/error.h"
#include "troupe/msgtypes.h"

#define ATOM_BYTES_MAX (255 * 4)

static int walk(const unsigned char *p, size_t n, size_t *at, uint64_t left, int funs);

/* need(k): k more bytes are there, else the term is cut short. */
#define NEED(k)                                                                        \
    do {                                                                               \
        if ((size_t)(k) > n - *at)                                                     \
            return TR__TERM_CUT;                                                       \
    } while (0)

static int check_atom(const unsigned char *p, size_t n, size_t *at)
{
    NEED(1);
    unsigned tag = p[(*at)++];
    size_t len;
    if (tag == ERL_ATOM_EXT || tag == ERL_ATOM_UTF8_EXT) {
        NEED(2);
        len = tr__get16(p + *at);
        *at += 2;
    } else if (tag == ERL_SMALL_ATOM_EXT || tag == ERL_SMALL_ATOM_UTF8_EXT) {
        NEED(1);
        len = p[(*at)++];
    } else {
        return TR_EBADFRAME;
    }
    if (len > ATOM_BYTES_MAX)
        return TR_EBADFRAME;
    NEED(len);
    *at += len;
    return 0;
}

/* A fun: its terms are walked within the Size it gives, which they must
 * fill exactly; funs inside its free variables nest the walk. */
static int check_fun(const unsigned char *p, size_t n, size_t *at, int funs)
{
    if (funs >= TR__FUN_DEPTH_MAX)
        return TR_EBADFRAME;
    NEED(4 + 1 + 16 + 4 + 4);
    size_t start = *at;
    uint32_t size = tr__get32(p + *at);
    uint32_t nfree = tr__get32(p + *at + 25);
    if (size < 29)
        return TR_EBADFRAME;
    NEED(size);
    *at += 29;
    /* Module, OldIndex, OldUniq, Pid, then the free variables. */
    int err = check_atom(p, start + size, at);
    if (err == 0)
        err = walk(p, start + size, at, 3 + (uint64_t)nfree, funs + 1);
    if (err == TR__TERM_CUT)
        return TR_EBADFRAME; /* past its own Size */
    return err != 0 ? err : *at == start + size ? 0 : TR_EBADFRAME;
}

/* Reads `left` terms from *at: each term's head, its children added to
 * the count. Every term takes a byte at least, so a count past the bytes
 * left is a term cut short (and the count never wraps). */
static int walk(const unsigned char *p, size_t n, size_t *at, uint64_t left, int funs)
{
    int err = 0;
    size_t len;
    for (; left > 0 && err == 0; left--) {
        NEED(left);
        unsigned tag = p[*at];
        switch (tag) {
        case ERL_ATOM_EXT: case ERL_ATOM_UTF8_EXT: case ERL_SMALL_ATOM_EXT: case ERL_SMALL_ATOM_UTF8_EXT:
            err = check_atom(p, n, at);
            continue;
        }
        (*at)++;
        switch (tag) {
        case ERL_SMALL_INTEGER_EXT: NEED(1); *at += 1; break;
        case ERL_INTEGER_EXT: NEED(4); *at += 4; break;
        case NEW_FLOAT_EXT: NEED(8); *at += 8; break;
        case ERL_FLOAT_EXT: NEED(31); *at += 31; break;
        case ERL_NIL_EXT: break;
        case ERL_STRING_EXT: NEED(2); len = tr__get16(p + *at); *at += 2; NEED(len); *at += len; break;
        case ERL_BINARY_EXT: NEED(4); len = tr__get32(p + *at); *at += 4; NEED(len); *at += len; break;
        case ERL_BIT_BINARY_EXT:
            NEED(5);
            len = tr__get32(p + *at);
            if (p[*at + 4] > 8 || p[*at + 4] == 0 || len == 0)
                return TR_EBADFRAME;
            *at += 5;
            NEED(len);
            *at += len;
            break;
        case ERL_SMALL_BIG_EXT: NEED(2); len = p[*at]; *at += 2; NEED(len); *at += len; break;
        case ERL_LARGE_BIG_EXT:
            NEED(5);
            len = tr__get32(p + *at);
            /* ei decodes a big into a long long or a bignum; past 8 bytes
             * it refuses, which the caller sees as an invalid term anyway. */
            *at += 5;
            NEED(len);
            *at += len;
            break;
        case ERL_SMALL_TUPLE_EXT: NEED(1); left += p[(*at)++]; break;
        case ERL_LARGE_TUPLE_EXT: NEED(4); left += tr__get32(p + *at); *at += 4; break;
        case ERL_MAP_EXT: NEED(4); left += 2 * (uint64_t)tr__get32(p + *at); *at += 4; break;
        case ERL_LIST_EXT: /* elements, then the tail */
            NEED(4);
            left += (uint64_t)tr__get32(p + *at) + 1;
            *at += 4;
            break;
        case ERL_PID_EXT: case ERL_NEW_PID_EXT:
            if ((err = check_atom(p, n, at)) != 0)
                break;
            NEED(tag == ERL_PID_EXT ? 9 : 12);
            *at += tag == ERL_PID_EXT ? 9 : 12;
            break;
        case ERL_PORT_EXT: case ERL_NEW_PORT_EXT: case ERL_V4_PORT_EXT:
            if ((err = check_atom(p, n, at)) != 0)
                break;
            len = tag == ERL_PORT_EXT ? 5 : tag == ERL_NEW_PORT_EXT ? 8 : 12;
            NEED(len);
            *at += len;
            break;
        case ERL_NEW_REFERENCE_EXT: case ERL_NEWER_REFERENCE_EXT: {
            NEED(2);
            size_t words = tr__get16(p + *at);
            *at += 2;
            if ((err = check_atom(p, n, at)) != 0)
                break;
            if (words == 0 || words > 5)
                return TR_EBADFRAME; /* what erlang_ref holds */
            len = (tag == ERL_NEW_REFERENCE_EXT ? 1 : 4) + 4 * words;
            NEED(len);
            *at += len;
            break;
        }
        case ERL_NEW_FUN_EXT: err = check_fun(p, n, at, funs); break;
        case ERL_EXPORT_EXT:
            if ((err = check_atom(p, n, at)) != 0 || (err = check_atom(p, n, at)) != 0)
                break;
            NEED(2);
            if (p[*at] != ERL_SMALL_INTEGER_EXT)
                return TR_EBADFRAME;
            *at += 2;
            break;
        default:
            /* The atom cache (not negotiated), removed and unknown tags. */
            return TR_EBADFRAME;
        }
    }
    return err;
}

int tr__term_check(const char *p, size_t n, size_t *used)
{
    size_t at = 0;
    int err = walk((const unsigned char *)p, n, &at, 1, 0);
    if (err == 0)
        *used = at;
    return err;
}
#undef NEED

/* ---- control messages ---- */

/* A registered name: the atom's characters in UTF-8, as troupe's names
 * are (ei_decode_atom would give Latin-1, and fail on any character past
 * it: a name such as '名前' would close the connection). */
static int get_name(const char *p, int *i, tr__ctl *c)
{
    return ei_decode_atom_as(p, i, c->name, (int)sizeof c->name, ERLANG_UTF8, NULL, NULL) == 0
               ? 0
               : TR_EBADFRAME;
}

static int put_name(ei_x_buff *x, const char *name)
{
    return ei_x_encode_atom_as(x, name, ERLANG_UTF8, ERLANG_UTF8);
}

bool tr__name_is_atom(const char *name)
{
    int k = 0;
    return name != NULL && ei_encode_atom_as(NULL, &k, name, ERLANG_UTF8, ERLANG_UTF8) == 0;
}

/* A pid, as ei_decode_pid reads it (0, or -1 if the term is not one), in
 * the bytes term_check has walked. The NEW_PID_EXT of a node atom in
 * UTF-8, as OTP and ei write pids, is read here, its node's name copied:
 * ei_decode_atom_as was a third of the instructions of a message
 * received. Any other form goes to ei. */
static int get_pid(const char *p, int *i, erlang_pid *pid)
{
    const unsigned char *s = (const unsigned char *)p + *i;
    if (s[0] != ERL_NEW_PID_EXT || (s[1] != ERL_SMALL_ATOM_UTF8_EXT && s[1] != ERL_ATOM_UTF8_EXT))
        return ei_decode_pid(p, i, pid);
    bool small = s[1] == ERL_SMALL_ATOM_UTF8_EXT;
    size_t len = small ? s[2] : tr__get16(s + 2);
    const unsigned char *name = s + (small ? 3 : 4), *tail = name + len;
    if (len >= sizeof pid->node)
        return -1;
    memcpy(pid->node, name, len);
    pid->node[len] = '\0';
    pid->num = tr__get32(tail);
    pid->serial = tr__get32(tail + 4);
    pid->creation = tr__get32(tail + 8);
    *i += (int)(tail + 12 - s);
    return 0;
}

/* Reads a pid, or an atom (a registered name) when the term is one. */
static int get_proc(const char *p, int *i, erlang_pid *pid, tr__ctl *c)
{
    int type, size;
    if (ei_get_type(p, i, &type, &size) != 0)
        return TR_EBADFRAME;
    if (type == ERL_ATOM_EXT) {
        c->to_name = true;
        return get_name(p, i, c);
    }
    return get_pid(p, i, pid) == 0 ? 0 : TR_EBADFRAME;
}

/* Past the next term, which ends by `end` (checked: ei_skip_term would
 * recurse as deep as the term nests). */
static int skip(const char *p, int *i, size_t end)
{
    size_t used;
    if ((size_t)*i > end || tr__term_check(p + *i, end - (size_t)*i, &used) != 0)
        return TR_EBADFRAME;
    *i += (int)used;
    return 0;
}

/* An exit reason: the next term, kept as its bytes. */
static int get_reason(const char *p, int *i, size_t end, tr__ctl *c)
{
    int at = *i;
    if (skip(p, i, end))
        return TR_EBADFRAME;
    c->reason = p + at;
    c->reason_len = (size_t)(*i - at);
    return 0;
}

/* The fields after the op, by op, the control message ending at `end`:
 * 0, TR_EBADFRAME, or 1 for an op we do not handle (skipped). */
static int get_fields(const char *p, int *i, size_t end, int arity, tr__ctl *c)
{
    switch (c->op) {
    case TR__CTL_LINK:
    case TR__CTL_SEND_SENDER:
        if (arity != 3 || get_pid(p, i, &c->from) || get_pid(p, i, &c->to))
            return TR_EBADFRAME;
        return 0;
    case TR__CTL_SEND:
        if (arity != 3 || skip(p, i, end) || get_pid(p, i, &c->to))
            return TR_EBADFRAME;
        return 0;
    case TR__CTL_REG_SEND:
        c->to_name = true;
        if (arity != 4 || get_pid(p, i, &c->from) || skip(p, i, end) ||
            get_name(p, i, c))
            return TR_EBADFRAME;
        return 0;
    case TR__CTL_EXIT:
    case TR__CTL_EXIT2:
        if (arity != 4 || get_pid(p, i, &c->from) || get_pid(p, i, &c->to))
            return TR_EBADFRAME;
        return get_reason(p, i, end, c);
    case TR__CTL_MONITOR_P:
    case TR__CTL_DEMONITOR_P:
        if (arity != 4 || get_pid(p, i, &c->from) || get_proc(p, i, &c->to, c) ||
            ei_decode_ref(p, i, &c->ref))
            return TR_EBADFRAME;
        return 0;
    case TR__CTL_MONITOR_P_EXIT:
        if (arity != 5 || get_proc(p, i, &c->from, c) || get_pid(p, i, &c->to) ||
            ei_decode_ref(p, i, &c->ref))
            return TR_EBADFRAME;
        return get_reason(p, i, end, c);
    case TR__CTL_UNLINK_ID:
    case TR__CTL_UNLINK_ID_ACK:
        if (arity != 4 || ei_decode_ulonglong(p, i, &c->id) || get_pid(p, i, &c->from) ||
            get_pid(p, i, &c->to))
            return TR_EBADFRAME;
        return 0;
    default:
        return 1;
    }
}

static bool has_message(long op)
{
    return op == TR__CTL_SEND || op == TR__CTL_REG_SEND || op == TR__CTL_SEND_SENDER;
}

int tr__ctl_decode(const char *p, size_t n, tr__ctl *c)
{
    tr__ctl_clear(c);
    size_t used;
    if (n < 3 || (unsigned char)p[0] != 112 || (unsigned char)p[1] != TR__VERSION_MAGIC ||
        n > INT32_MAX || tr__term_check(p + 2, n - 2, &used) != 0)
        return TR_EBADFRAME;
    int i = 2, arity;
    size_t end = 2 + used;
    if (ei_decode_tuple_header(p, &i, &arity) || arity < 1 || ei_decode_long(p, &i, &c->op))
        return TR_EBADFRAME;
    int err = get_fields(p, &i, end, arity, c);
    if (err < 0)
        return err;
    if (err == 0 && (size_t)i != end)
        return TR_EBADFRAME;
    if (err == 1) {
        c->op = -c->op; /* not ours: the caller ignores it */
        return 0;
    }
    if (!has_message(c->op))
        return end == n ? 0 : TR_EBADFRAME;
    size_t mused;
    if (end >= n || (unsigned char)p[end] != TR__VERSION_MAGIC ||
        tr__term_check(p + end + 1, n - end - 1, &mused) != 0 || end + 1 + mused != n)
        return TR_EBADFRAME;
    c->msg = p + end;
    c->msg_len = n - end;
    return 0;
}

/* A node's name as an atom, encoded once and kept. A connection's pids
 * name two nodes, ours and its peer's, so the last few names this thread
 * has encoded are kept and found again by strcmp: ei encodes a pid's node
 * atom afresh each time, checking and converting it byte by byte, which
 * was a third of the instructions of a message that dist-stream sends
 * (1,600 of 4,530). */
enum { NODE_ATOMS = 4, NODE_ATOM_NAME_MAX = 255 };
typedef struct node_atom {
    char name[NODE_ATOM_NAME_MAX + 1];
    unsigned char bytes[NODE_ATOM_NAME_MAX + 8]; /* as ei encodes it */
    unsigned len;                                /* 0: empty */
} node_atom;
static _Thread_local node_atom node_atoms[NODE_ATOMS];
static _Thread_local unsigned node_atoms_next;

/* node's encoded atom, encoded now if need be; NULL for a name too long to
 * keep (ei encodes it each time then). */
static const node_atom *node_atom_of(const char *node)
{
    for (unsigned i = 0; i < NODE_ATOMS; i++)
        if (node_atoms[i].len != 0 && strcmp(node_atoms[i].name, node) == 0)
            return &node_atoms[i];
    size_t n = strlen(node);
    int k = 0;
    if (n > NODE_ATOM_NAME_MAX ||
        ei_encode_atom_len_as(NULL, &k, node, (int)n, ERLANG_UTF8, ERLANG_LATIN1 | ERLANG_UTF8) ||
        (size_t)k > sizeof node_atoms[0].bytes)
        return NULL;
    node_atom *a = &node_atoms[node_atoms_next++ % NODE_ATOMS];
    k = 0;
    ei_encode_atom_len_as((char *)a->bytes, &k, node, (int)n, ERLANG_UTF8,
                          ERLANG_LATIN1 | ERLANG_UTF8);
    memcpy(a->name, node, n + 1);
    a->len = (unsigned)k;
    return a;
}

/* The bytes ei_x_encode_pid writes (erl_interface 5.3; dist_proto's
 * pids_are_encoded_as_ei_encodes_them compares them): NEW_PID_EXT, the
 * node's atom, then number, serial and creation in 32 bits each. */
static int put_pid(ei_x_buff *x, const erlang_pid *p)
{
    const node_atom *a = node_atom_of(p->node);
    if (a == NULL)
        return ei_x_encode_pid(x, p);
    unsigned char buf[1 + sizeof a->bytes + 12], *at = buf;
    *at++ = ERL_NEW_PID_EXT;
    memcpy(at, a->bytes, a->len);
    at += a->len;
    tr__put32(at, p->num);
    tr__put32(at + 4, p->serial);
    tr__put32(at + 8, p->creation);
    return ei_x_append_buf(x, (const char *)buf, (int)(at + 12 - buf));
}

static int proc(ei_x_buff *x, const erlang_pid *pid, const tr__ctl *c)
{
    return c->to_name ? put_name(x, c->name) : put_pid(x, pid);
}

static int put_fields(ei_x_buff *x, const tr__ctl *c)
{
    switch (c->op) {
    case TR__CTL_LINK:
    case TR__CTL_SEND_SENDER:
        return ei_x_encode_tuple_header(x, 3) || ei_x_encode_long(x, c->op) ||
               put_pid(x, &c->from) || put_pid(x, &c->to);
    case TR__CTL_SEND:
        return ei_x_encode_tuple_header(x, 3) || ei_x_encode_long(x, c->op) ||
               ei_x_encode_atom(x, "") || put_pid(x, &c->to);
    case TR__CTL_REG_SEND:
        return ei_x_encode_tuple_header(x, 4) || ei_x_encode_long(x, c->op) ||
               put_pid(x, &c->from) || ei_x_encode_atom(x, "") ||
               put_name(x, c->name);
    case TR__CTL_EXIT:
    case TR__CTL_EXIT2:
        return ei_x_encode_tuple_header(x, 4) || ei_x_encode_long(x, c->op) ||
               put_pid(x, &c->from) || put_pid(x, &c->to) ||
               ei_x_append_buf(x, c->reason, (int)c->reason_len);
    case TR__CTL_MONITOR_P:
    case TR__CTL_DEMONITOR_P:
        return ei_x_encode_tuple_header(x, 4) || ei_x_encode_long(x, c->op) ||
               put_pid(x, &c->from) || proc(x, &c->to, c) ||
               ei_x_encode_ref(x, &c->ref);
    case TR__CTL_MONITOR_P_EXIT:
        return ei_x_encode_tuple_header(x, 5) || ei_x_encode_long(x, c->op) ||
               proc(x, &c->from, c) || put_pid(x, &c->to) ||
               ei_x_encode_ref(x, &c->ref) ||
               ei_x_append_buf(x, c->reason, (int)c->reason_len);
    case TR__CTL_UNLINK_ID:
    case TR__CTL_UNLINK_ID_ACK:
        return ei_x_encode_tuple_header(x, 4) || ei_x_encode_long(x, c->op) ||
               ei_x_encode_ulonglong(x, c->id) || put_pid(x, &c->from) ||
               put_pid(x, &c->to);
    default:
        return -2;
    }
}

int tr__ctl_encode(ei_x_buff *x, const tr__ctl *c)
{
    static const char head[5] = {0, 0, 0, 0, 112};
    if (ei_x_append_buf(x, head, sizeof head) || ei_x_encode_version(x))
        return TR_ENOMEM;
    int err = put_fields(x, c);
    return err == 0 ? 0 : err == -2 ? TR_EINVAL : TR_ENOMEM;
}

int tr__ctl_finish(ei_x_buff *x)
{
    if (x->index < 4 || (uint64_t)x->index - 4 > UINT32_MAX)
        return TR_EMSGSIZE;
    uint32_t len = (uint32_t)x->index - 4;
    tr__put32((uint8_t *)x->buff, len);
    return 0;
}

/* ---- messages ---- */

int tr__term_from_msg(ei_x_buff *x, uint32_t type, const void *data, size_t len)
{
    if (type == TR_DIST_TERM) {
        size_t used;
        if (len < 2 || len > INT32_MAX || ((const unsigned char *)data)[0] != TR__VERSION_MAGIC ||
            tr__term_check((const char *)data + 1, len - 1, &used) != 0 || used != len - 1)
            return TR_EINVAL;
        return ei_x_append_buf(x, data, (int)len) == 0 ? 0 : TR_ENOMEM;
    }
    if (len > INT32_MAX)
        return TR_EMSGSIZE;
    if (ei_x_encode_version(x) || ei_x_encode_tuple_header(x, 2) ||
        ei_x_encode_ulong(x, type) || ei_x_encode_binary(x, len != 0 ? data : "", (int)len))
        return TR_ENOMEM;
    return 0;
}

bool tr__ask_wire_ok(uint32_t type, const void *data, size_t len)
{
    const char *p = data;
    if (type == TR_ASK_FAILED) {
        tr_ask_failure f;
        if (len != sizeof f)
            return false;
        memcpy(&f, p, sizeof f);
        /* (TR_ASK_NOCONNECTION is a node's own verdict on its own
         * connections: a peer has no cause to send it.) */
        return f.ref != 0 && f.why >= TR_ASK_TIMEOUT && f.why <= TR_ASK_UNANSWERED;
    }
    if ((type != TR__ASK && type != TR_REPLY) || len < sizeof(tr__ask_tail))
        return false;
    tr__ask_tail t;
    size_t at = len - sizeof t;
    memcpy(&t, p + at, sizeof t);
    /* The user's length decides where ask.c looks for the tail once the
     * behaviour has the message: it must be where the tail is. */
    if (t.ref == 0 || t.len > TR_MSG_MAX_LEN || TR__ASK_TAIL_AT(t.len) != at)
        return false;
    return type == TR_REPLY ? t.type == 0 : t.type < TR_MSG_SYSTEM;
}

void tr__term_to_msg(const char *p, size_t n, uint32_t *type, const char **data, size_t *len)
{
    /* p was checked whole by tr__ctl_decode: ei may read it. */
    int i = 1, arity, t, size;
    unsigned long ty;
    if (ei_decode_tuple_header(p, &i, &arity) == 0 && arity == 2 &&
        ei_decode_ulong(p, &i, &ty) == 0 && ty <= UINT32_MAX &&
        ei_get_type(p, &i, &t, &size) == 0 && t == ERL_BINARY_EXT &&
        (size_t)i + 5 + (size_t)size == n) {
        const char *bytes = p + i + 5; /* the tag and the 4-byte length */
        /* A system type only when it is a request/reply whose bytes are
         * sound: a malformed one arrives as the term it is. */
        if (ty < TR_MSG_SYSTEM || tr__ask_wire_ok((uint32_t)ty, bytes, (size_t)size)) {
            *type = (uint32_t)ty;
            *data = bytes;
            *len = (size_t)size;
            return;
        }
    }
    *type = TR_DIST_TERM;
    *data = p;
    *len = n;
}

int tr__node_split(const char *node, char *alive, size_t alive_cap, char *host, size_t host_cap)
{
    const char *at = node != NULL ? strchr(node, '@') : NULL;
    if (at == NULL || at == node || at[1] == '\0' || strchr(at + 1, '@') != NULL)
        return TR_EINVAL;
    size_t a = (size_t)(at - node), h = strlen(at + 1);
    if (a >= alive_cap || h >= host_cap || a + 1 + h > TR__NODE_NAME_MAX)
        return TR_EINVAL;
    memcpy(alive, node, a);
    alive[a] = '\0';
    memcpy(host, at + 1, h + 1);
    return 0;
}
