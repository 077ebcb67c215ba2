/* troupe/msg.h — messages.
 *
 * A message is a fixed header and an inline payload. tr_send() copies the
 * payload into a fresh message; for large or built-in-place payloads,
 * tr_msg_alloc() hands out a message to fill, and tr_msg_send() sends it
 * without a copy. Messages come from per-thread pools, so in steady state
 * neither path calls malloc.
 *
 * A behaviour receives a `const tr_msg *` that is valid only until it
 * returns: copy out what must outlive the turn.
 */
#ifndef TROUPE_MSG_H
#define TROUPE_MSG_H

#include <stddef.h>
#include <stdint.h>

#include "pid.h"

/* Types at or above TR_MSG_SYSTEM are reserved for the runtime (socket
 * readiness, exit signals, replies, ...: troupe/msgtypes.h lists them all,
 * by subsystem); user sends of them fail with TR_EINVAL. */
#define TR_MSG_SYSTEM UINT32_C(0xffff0000)

/* The longest payload a message can carry. */
#define TR_MSG_MAX_LEN (UINT32_C(1) << 30)

/* Internal link; the mailbox chains messages through it. */
typedef struct tr_msg_link {
    struct tr_msg_link *next;
} tr_msg_link;

typedef struct tr_msg {
    tr_msg_link link_;  /* owned by the runtime: do not touch */
    tr_pid from;        /* sender, or TR_PID_NONE from outside any actor */
    tr_pid to;          /* the pid it was sent to */
    uint32_t type;      /* user tag, below TR_MSG_SYSTEM */
    uint32_t len;       /* payload length in bytes */
    _Alignas(16) unsigned char data[]; /* payload, 16-byte aligned */
} tr_msg;

/* Allocates a message with room for `len` payload bytes, from the calling
 * thread's pool. Returns NULL if len > TR_MSG_MAX_LEN, if type is reserved,
 * or if memory is exhausted. The payload is uninitialised. Any thread. */
tr_msg *tr_msg_alloc(uint32_t type, size_t len);

/* Returns a message obtained from tr_msg_alloc() that was not sent.
 * NULL is ignored. Any thread. */
void tr_msg_free(tr_msg *m);

#endif
