/* actors/ask.h — request/reply (internal; the contract is troupe/ask.h).
 *
 * An ask travels as TR__ASK: the user's payload, then (8-byte aligned) a
 * tr__ask_tail with the ref and the user's type and length. A reply
 * travels as TR_REPLY with the same tail, so that the public header
 * stays 32 bytes and plain sends carry nothing. The turn shows both to
 * the behaviour as sent (the user's type and length; tr_msg_ref finds the
 * tail of a reply again behind the payload) and puts the length back
 * before the message returns to its pool.
 */
#ifndef TR_ACTORS_ASK_H
#define TR_ACTORS_ASK_H

#include <stdbool.h>
#include <stdint.h>

#include "troupe/ask.h"

typedef struct tr__worker tr__worker;
typedef struct tr__actor tr__actor;
typedef struct tr__asks tr__asks;

/* Internal message types, beside TR_REPLY and TR_ASK_FAILED. */
/* Internal types, in the request/reply range after its public two
 * (troupe/msgtypes.h). */
#define TR__ASK         (TR_MSG_ASK_FIRST + 2) /* payload: the user's, then a tail */
#define TR__ASK_TIMEOUT (TR_MSG_ASK_FIRST + 3) /* an ask timed out: a tr_ask_failure */
#define TR__ASK_SWEEP   (TR_MSG_ASK_FIRST + 4) /* the asker's timer (ask.c) */
#define TR__ASK_LOST    (TR_MSG_ASK_FIRST + 5) /* a node connection went: a tr__ask_lost */
_Static_assert(TR__ASK > TR_ASK_FAILED && TR__ASK_LOST <= TR_MSG_ASK_LAST,
               "internal ask types outside their range");
_Static_assert(TR_REPLY == TR_MSG_ASK_FIRST && TR_ASK_FAILED == TR_REPLY + 1,
               "request/reply's types are not one run");

/* Whether a message of this type is request/reply's: TR_REPLY to
 * TR__ASK_LOST, the types tr__ask_arrived takes. */
static inline bool tr__ask_type(uint32_t type)
{
    return type - TR_REPLY <= TR__ASK_LOST - TR_REPLY;
}

/* TR__ASK_LOST's payload, from dist/ to an actor that asked across a
 * node connection: the connection to the peer whose pids have these node
 * bits and generation (its epoch) is gone, and no answer to an ask to one
 * of them can come any more. */
typedef struct tr__ask_lost {
    uint32_t node, epoch;
} tr__ask_lost;

/* Where a payload of len bytes is followed by its tail (8-byte aligned,
 * so the tail can be read in place; dist/term.c checks a peer's bytes
 * against the same rule). */
#define TR__ASK_TAIL_AT(len) (((size_t)(len) + 7) & ~(size_t)7)

typedef struct tr__ask_tail {
    uint64_t ref;
    uint32_t type; /* an ask: the user's type */
    uint32_t len;  /* the user's payload length */
} tr__ask_tail;

/* For one of the five types above arriving at actor a, in its turn on
 * w: TR__CONSUMED (an answer a no longer waits for: dropped; or a's
 * timeout sweep), TR__DELIVER (a failure; a timeout is rewritten into
 * TR_ASK_FAILED) or TR__TRAILED (an ask, or a reply a waits for: deliver
 * it between tr__ask_open and tr__ask_close). */
int tr__ask_arrived(tr__worker *w, tr__actor *a, tr_msg *m);

/* Around the behaviour's call for TR__TRAILED: open shows m as it was
 * sent and makes an ask answerable by tr_reply; close fails an ask left
 * unanswered (TR_ASK_GONE if the actor is stopping) and gives m back its
 * length `len` from before open. */
void tr__ask_open(tr_ctx *cx, tr_msg *m);
void tr__ask_close(tr_ctx *cx, tr_msg *m, uint32_t len);

/* An ask that became a dead letter: its asker gets TR_ASK_FAILED
 * (TR_ASK_GONE), and m is left as the user sent it, for the sink. */
void tr__ask_bounce(tr_runtime *rt, tr__worker *w, tr_msg *m);

/* The asker has ended, in its turn on w: its timeout sweep is cancelled
 * and its hold on the runtime given back. */
void tr__asks_cancel(tr__worker *w, tr__asks *t);
void tr__asks_free(tr__asks *t);

#endif
