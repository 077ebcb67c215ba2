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

#include "api.h"
#include "pid.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Types at or above TR_MSG_SYSTEM are reserved for the runtime (timer
 * expiry, socket readiness, exit signals, ...); user sends of them fail
 * with TR_EINVAL. */
#define TR_MSG_SYSTEM UINT32_C(0xffff0000)

/* The longest payload a message can carry. */
#define TR_MSG_MAX_LEN (UINT32_C(1) << 30)

/* The payload's alignment, spelled for each language: C11's _Alignas and
 * C++11's alignas give the same layout, which mailbox/msg.c and the C++
 * test (tests/cxx/hello.cc) both pin down with static asserts. In C++ the
 * flexible array member `data` is an extension that g++ and clang++ accept
 * (only -Wpedantic names it): no ISO C++ form keeps C's layout and access. */
#ifdef __cplusplus
#define TR__ALIGN16 alignas(16)
#else
#define TR__ALIGN16 _Alignas(16)
#endif

/* Internal: the mailbox's link (mailbox/mpsc.h). It is first so that a
 * message is its own queue node; its name and layout may change. */
struct tr__msg_link {
    struct tr__msg_link *next;
};

typedef struct tr_msg {
    struct tr__msg_link tr__link; /* internal: owned by the runtime */
    tr_pid from;        /* sender, or TR_PID_NONE from outside any actor */
    tr_pid to;          /* the pid it was sent to */
    uint32_t type;      /* user tag, below TR_MSG_SYSTEM */
    uint32_t len;       /* payload length in bytes */
    TR__ALIGN16 unsigned char data[]; /* payload, 16-byte aligned */
} tr_msg;

/* Allocates a message with room for `len` payload bytes, from the calling
 * thread's pool. Returns NULL if len > TR_MSG_MAX_LEN, if type is reserved,
 * or if memory is exhausted. The payload is uninitialised. Any thread. */
TR_API tr_msg *tr_msg_alloc(uint32_t type, size_t len);

/* Returns a message obtained from tr_msg_alloc() that was not sent.
 * NULL is ignored. Any thread. */
TR_API void tr_msg_free(tr_msg *m);

#ifdef __cplusplus
}
#endif

#endif
