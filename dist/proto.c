/* dist/proto.c — EPMD, handshake, framing and control messages on bytes. */
#include "proto.h"

#include <nettle/md5.h>
#include <stdio.h>
#include <string.h>

#include "troupe/error.h"
#include "troupe/msgtypes.h"

/* ---- EPMD ---- */

size_t tr__epmd_alive2_req(uint8_t *out, size_t cap, uint16_t port, const char *alive)
{
    size_t nlen = alive != NULL ? strlen(alive) : 0;
    size_t body = 1 + 2 + 1 + 1 + 2 + 2 + 2 + nlen + 2;
    if (nlen == 0 || nlen > TR__NODE_NAME_MAX || cap < 2 + body)
        return 0;
    uint8_t *p = out;
    tr__put16(p, (uint32_t)body);
    p[2] = 120;
    tr__put16(p + 3, port);
    p[5] = 77; /* a normal (visible) node */
    p[6] = 0;  /* TCP/IPv4 */
    tr__put16(p + 7, 6);
    tr__put16(p + 9, 6); /* OTP 25 speaks only version 6 */
    tr__put16(p + 11, (uint32_t)nlen);
    memcpy(p + 13, alive, nlen);
    tr__put16(p + 13 + nlen, 0); /* no extra */
    return 2 + body;
}

int tr__epmd_alive2_resp(const uint8_t *p, size_t n, uint32_t *creation)
{
    if (n < 2)
        return 0;
    if (p[0] != 118 && p[0] != 121)
        return TR_EBADFRAME;
    if (p[1] != 0)
        return TR_EEXIST;
    if (p[0] == 118) {
        if (n < 6)
            return 0;
        *creation = tr__get32(p + 2);
    } else {
        if (n < 4)
            return 0;
        *creation = tr__get16(p + 2);
    }
    return 1;
}

size_t tr__epmd_port_req(uint8_t *out, size_t cap, const char *alive)
{
    size_t nlen = alive != NULL ? strlen(alive) : 0;
    if (nlen == 0 || nlen > TR__NODE_NAME_MAX || cap < 3 + nlen)
        return 0;
    tr__put16(out, (uint32_t)(1 + nlen));
    out[2] = 122;
    memcpy(out + 3, alive, nlen);
    return 3 + nlen;
}

int tr__epmd_port_resp(const uint8_t *p, size_t n, uint16_t *port)
{
    if (n < 2)
        return 0;
    if (p[0] != 119)
        return TR_EBADFRAME;
    if (p[1] != 0)
        return TR_EHOSTUNREACH;
    if (n < 12)
        return 0;
    uint32_t high = tr__get16(p + 6), low = tr__get16(p + 8), nlen = tr__get16(p + 10);
    if (n < 12 + nlen + 2)
        return 0;
    if (low > 6 || high < 6)
        return TR_EBADFRAME; /* no common version */
    *port = (uint16_t)tr__get16(p + 2);
    return 1;
}

/* ---- framing ---- */

int tr__dist_frame(const uint8_t *p, size_t n, unsigned hdr, size_t max, size_t *body_len)
{
    if (n < hdr)
        return 0;
    size_t len = hdr == 2 ? tr__get16(p) : tr__get32(p);
    if (len > max)
        return TR_EMSGSIZE;
    if (n - hdr < len)
        return 0;
    *body_len = len;
    return 1;
}

/* ---- handshake ---- */

void tr__dist_digest(uint32_t challenge, const char *cookie, uint8_t out[16])
{
    char num[16];
    int k = snprintf(num, sizeof num, "%u", (unsigned)challenge);
    struct md5_ctx md5;
    md5_init(&md5);
    md5_update(&md5, strlen(cookie), (const uint8_t *)cookie);
    md5_update(&md5, (size_t)k, (const uint8_t *)num);
    md5_digest(&md5, 16, out);
}

/* Appends a handshake message (tag + body) with its 2-byte length. */
static int hs_put(uint8_t *out, size_t cap, size_t *out_len, const uint8_t *msg, size_t len)
{
    if (cap < 2 + len)
        return TR_ENOBUFS;
    tr__put16(out, (uint32_t)len);
    memcpy(out + 2, msg, len);
    *out_len = 2 + len;
    return 0;
}

/* 'N', flags, [challenge,] creation, nlen, name: send_name and the challenge. */
static int put_name_msg(const tr__hs *hs, bool challenge, uint8_t *out, size_t cap, size_t *out_len)
{
    uint8_t m[TR__HS_MSG_MAX];
    size_t nlen = strlen(hs->self), at = 0;
    if (nlen > TR__NODE_NAME_MAX)
        return TR_EINVAL;
    m[at++] = 'N';
    tr__put64(m + at, hs->flags);
    at += 8;
    if (challenge) {
        tr__put32(m + at, hs->my_challenge);
        at += 4;
    }
    tr__put32(m + at, hs->creation);
    at += 4;
    tr__put16(m + at, (uint32_t)nlen);
    at += 2;
    memcpy(m + at, hs->self, nlen);
    return hs_put(out, cap, out_len, m, at + nlen);
}

/* Reads 'N' (with a challenge or not) into hs's peer fields. */
static int get_name_msg(tr__hs *hs, bool challenge, const uint8_t *p, size_t n, uint32_t *chal)
{
    size_t fixed = 1 + 8 + (challenge ? 4 : 0) + 4 + 2;
    if (n < fixed || p[0] != 'N')
        return TR_EBADFRAME;
    size_t at = 1;
    hs->peer_flags = tr__get64(p + at);
    at += 8;
    if (challenge) {
        *chal = tr__get32(p + at);
        at += 4;
    }
    hs->peer_creation = tr__get32(p + at);
    at += 4;
    size_t nlen = tr__get16(p + at);
    at += 2;
    /* Extra bytes after the name are allowed (and ignored). */
    if (nlen == 0 || nlen > TR__NODE_NAME_MAX || n - at < nlen)
        return TR_EBADFRAME;
    if ((hs->peer_flags & TR__DFLAGS_REQUIRED) != TR__DFLAGS_REQUIRED)
        return TR_EBADFRAME;
    memcpy(hs->peer, p + at, nlen);
    hs->peer[nlen] = '\0';
    if (memchr(hs->peer, '\0', nlen) != NULL || strchr(hs->peer, '@') == NULL)
        return TR_EBADFRAME;
    return 0;
}

int tr__hs_init(tr__hs *hs, bool initiator, const char *self, const char *cookie,
                uint32_t creation, uint32_t challenge, uint8_t *out, size_t cap, size_t *out_len)
{
    memset(hs, 0, sizeof *hs);
    hs->initiator = initiator;
    hs->self = self;
    hs->cookie = cookie;
    hs->flags = TR__DFLAGS_OURS;
    hs->creation = creation;
    hs->my_challenge = challenge;
    *out_len = 0;
    if (!initiator) {
        hs->state = TR__HS_WAIT_NAME;
        return 0;
    }
    hs->state = TR__HS_WAIT_STATUS;
    return put_name_msg(hs, false, out, cap, out_len);
}

static int fail(tr__hs *hs, int err)
{
    hs->state = TR__HS_FAILED;
    return err;
}

/* The end of a step: on to state `next` with `result`, or failed. */
static int step_to(tr__hs *hs, int err, int next, int result)
{
    if (err != 0)
        return fail(hs, err);
    hs->state = next;
    return result;
}

/* The peer's proof that it has the cookie: a message of want_len bytes
 * starting with tag, whose 16 bytes at `at` are the digest of our
 * challenge. 0, or the error that fails the handshake. */
static int check_proof(tr__hs *hs, const uint8_t *msg, size_t len, size_t want_len, uint8_t tag,
                       size_t at)
{
    uint8_t want[16];
    if (len != want_len || msg[0] != tag)
        return TR_EBADFRAME;
    tr__dist_digest(hs->my_challenge, hs->cookie, want);
    return memcmp(want, msg + at, 16) == 0 ? 0 : TR_ECONNABORTED;
}

/* Our proof, of their challenge: 'r', our own challenge and the digest
 * from the initiator; 'a' and the digest from the acceptor. */
static int put_proof(tr__hs *hs, uint32_t theirs, uint8_t *out, size_t cap, size_t *out_len)
{
    uint8_t m[1 + 4 + 16];
    size_t at = 1;
    m[0] = hs->initiator ? 'r' : 'a';
    if (hs->initiator) {
        tr__put32(m + 1, hs->my_challenge);
        at = 5;
    }
    tr__dist_digest(theirs, hs->cookie, m + at);
    return hs_put(out, cap, out_len, m, at + 16);
}

static int initiator_step(tr__hs *hs, const uint8_t *msg, size_t len, uint8_t *out, size_t cap,
                          size_t *out_len)
{
    switch (hs->state) {
    case TR__HS_WAIT_STATUS: {
        if (len < 1 || msg[0] != 's')
            return fail(hs, TR_EBADFRAME);
        size_t sl = len - 1 < sizeof hs->refusal - 1 ? len - 1 : sizeof hs->refusal - 1;
        memcpy(hs->refusal, msg + 1, sl);
        hs->refusal[sl] = '\0';
        if (strcmp(hs->refusal, "alive") == 0) {
            hs->state = TR__HS_ALIVE_ASKED;
            return TR__HS_ALIVE;
        }
        if (strcmp(hs->refusal, "ok") != 0 && strcmp(hs->refusal, "ok_simultaneous") != 0)
            return fail(hs, TR_ECONNABORTED);
        hs->refusal[0] = '\0';
        hs->state = TR__HS_WAIT_CHAL;
        return TR__HS_CONTINUE;
    }
    case TR__HS_WAIT_CHAL: {
        uint32_t chal = 0;
        int err = get_name_msg(hs, true, msg, len, &chal);
        if (err == 0)
            err = put_proof(hs, chal, out, cap, out_len);
        return step_to(hs, err, TR__HS_WAIT_ACK, TR__HS_CONTINUE);
    }
    case TR__HS_WAIT_ACK:
        return step_to(hs, check_proof(hs, msg, len, 17, 'a', 1), TR__HS_UP, TR__HS_DONE);
    default:
        return fail(hs, TR_EBADFRAME);
    }
}

int tr__hs_step(tr__hs *hs, const uint8_t *msg, size_t len, uint8_t *out, size_t cap,
                size_t *out_len)
{
    *out_len = 0;
    if (hs->initiator)
        return initiator_step(hs, msg, len, out, cap, out_len);
    switch (hs->state) {
    case TR__HS_WAIT_NAME:
        return step_to(hs, get_name_msg(hs, false, msg, len, NULL), TR__HS_DECIDE, TR__HS_NAMED);
    case TR__HS_WAIT_ALIVE:
        if (len == 5 && memcmp(msg, "strue", 5) == 0) {
            hs->state = TR__HS_DECIDE;
            hs->status_sent = true;
            return TR__HS_ALIVE;
        }
        return fail(hs, len == 6 && memcmp(msg, "sfalse", 6) == 0 ? TR_ECONNABORTED
                                                                  : TR_EBADFRAME);
    case TR__HS_WAIT_REPLY: {
        int err = check_proof(hs, msg, len, 21, 'r', 5);
        if (err == 0)
            err = put_proof(hs, tr__get32(msg + 1), out, cap, out_len);
        return step_to(hs, err, TR__HS_UP, TR__HS_DONE);
    }
    default:
        return fail(hs, TR_EBADFRAME);
    }
}

int tr__hs_accept(tr__hs *hs, const char *status, uint8_t *out, size_t cap, size_t *out_len)
{
    *out_len = 0;
    if (hs->initiator || hs->state != TR__HS_DECIDE)
        return TR_EINVAL;
    bool go_on = strcmp(status, "ok") == 0 || strcmp(status, "ok_simultaneous") == 0;
    int err = 0;
    if (!hs->status_sent) {
        uint8_t s[1 + 16];
        size_t sl = strlen(status);
        if (sl > 16)
            return TR_EINVAL;
        s[0] = 's';
        memcpy(s + 1, status, sl);
        if ((err = hs_put(out, cap, out_len, s, 1 + sl)) != 0)
            return fail(hs, err);
        if (strcmp(status, "alive") == 0) {
            hs->state = TR__HS_WAIT_ALIVE;
            return 0;
        }
    }
    if (!go_on) {
        hs->state = TR__HS_FAILED;
        return 0;
    }
    size_t more = 0;
    if ((err = put_name_msg(hs, true, out + *out_len, cap - *out_len, &more)) != 0)
        return fail(hs, err);
    *out_len += more;
    hs->state = TR__HS_WAIT_REPLY;
    return 0;
}

int tr__hs_alive(tr__hs *hs, bool go_on, uint8_t *out, size_t cap, size_t *out_len)
{
    *out_len = 0;
    if (!hs->initiator || hs->state != TR__HS_ALIVE_ASKED)
        return TR_EINVAL;
    const char *answer = go_on ? "strue" : "sfalse";
    int err = hs_put(out, cap, out_len, (const uint8_t *)answer, strlen(answer));
    if (err != 0)
        return fail(hs, err);
    hs->state = go_on ? TR__HS_WAIT_CHAL : TR__HS_FAILED;
    if (go_on)
        hs->refusal[0] = '\0';
    return 0;
}
