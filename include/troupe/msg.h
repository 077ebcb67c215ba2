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

/* Types at or above TR_MSG_SYSTEM are reserved for the runtime (socket
 * readiness, exit signals, replies, ...: troupe/msgtypes.h lists them all,
 * by subsystem); user sends of them fail with TR_EINVAL. */
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
 * thread's pool. Returns NULL (there is no error code) if len >
 * TR_MSG_MAX_LEN, if type is reserved, or if memory is exhausted. The
 * payload is uninitialised. Any thread. */
TR_API tr_msg *tr_msg_alloc(uint32_t type, size_t len);

/* Returns a message obtained from tr_msg_alloc() that was not sent.
 * NULL is ignored. Never fails. Any thread. */
TR_API void tr_msg_free(tr_msg *m);

/* ---- typed payloads ----
 * TR_PAYLOAD(m, T): the payload of m as a `const T *`, or NULL unless the
 * payload is exactly one T (m->len == sizeof(T)); NULL for m NULL too. A
 * message of the right type but the wrong size is a sender's bug that a
 * cast would read past; this turns it into a NULL to test for.
 * TR_PAYLOAD_HEAD(m, T): the same for a T followed by more bytes
 * (tr_udp_datagram, tr_dead_letter): NULL unless m->len >= sizeof(T).
 * T may need at most 16-byte alignment (the payload's), checked at
 * compile time; m is evaluated once. Send with TR_SEND_VALUE (actor.h). */
#define TR_PAYLOAD(m, T) ((const T *)tr__payload((m), sizeof(T) + TR__PAYLOAD_ALIGN_OK(T), 1))
#define TR_PAYLOAD_HEAD(m, T) \
    ((const T *)tr__payload((m), sizeof(T) + TR__PAYLOAD_ALIGN_OK(T), 0))

/* Internal: 0, or a compile error (an array of size -1) for a T aligned
 * beyond the payload. */
#ifdef __cplusplus
#define TR__PAYLOAD_ALIGN_OK(T) (0 * sizeof(char[alignof(T) <= 16 ? 1 : -1]))
#else
#define TR__PAYLOAD_ALIGN_OK(T) (0 * sizeof(char[_Alignof(T) <= 16 ? 1 : -1]))
#endif

static inline const void *tr__payload(const tr_msg *m, size_t size, int exact)
{
    if (m == NULL || (exact ? m->len != size : m->len < size))
        return NULL;
    return m->data;
}

#ifdef __cplusplus
}
#endif

#endif
