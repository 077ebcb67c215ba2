/* mailbox/msg.h — message allocation (internal). */
#ifndef TR_MAILBOX_MSG_H
#define TR_MAILBOX_MSG_H

#include <stdint.h>
#include <string.h>

#include "depot.h"
#include "troupe/msg.h"

/* Size classes: 64 to 4096-byte blocks, header included. */
#define TR__MSG_CLASSES 7
/* The payload that fits the smallest class: every message of the actor
 * benchmarks, and most of any program's. */
#define TR__MSG_SMALL (64 - sizeof(tr_msg))

/* A thread's pools: a magazine per class (see depot.h), and its scratch
 * message. It lives in msg.c; it is declared here so that the common case
 * of taking and giving back a small message inlines into the send and the
 * turn (callgrind, counting, --threads 1: 73 instructions a message in
 * the two calls, 25 inline). */
typedef struct tr__msg_cache {
    tr__magazine mag[TR__MSG_CLASSES];
    int registered;
    int flushed;      /* the thread is exiting: no pools again (msg.c) */
    tr_msg *scratch;
    size_t scratch_room;
} tr__msg_cache;

/* Initial-exec: a load at a fixed offset from the thread pointer, with no
 * call to find the library's TLS block, and nothing to spill around one.
 * A program linked with libtroupe.so gets it in its static TLS; a dlopen
 * of the library works while glibc's reserve for such libraries has room
 * (the cache is 192 bytes). Not where UBSan is on (TR__UBSAN: the
 * Makefile's SAN=address): its null check of the cache's address reads
 * the flags of the `add` that computes it, the linker relaxes that add
 * into an `lea` for an executable, and the check then fires on a valid
 * address (GCC 12, binutils 2.40). */
#ifdef TR__UBSAN
#define TR__TLS_MODEL
#else
#define TR__TLS_MODEL __attribute__((tls_model("initial-exec")))
#endif
extern _Thread_local tr__msg_cache tr__msg_tls TR__TLS_MODEL;

tr_msg *tr__msg_new_slow(uint32_t type, uint32_t len);
void tr__msg_release_slow(tr_msg *m);

/* A fresh message's header. */
static inline tr_msg *tr__msg_init(tr_msg *m, uint32_t type, uint32_t len)
{
    m->type = type;
    m->len = len;
    m->from = TR_PID_NONE;
    m->to = TR_PID_NONE;
    return m;
}

/* A message for len <= TR__MSG_SMALL payload bytes from the calling
 * thread's magazine, or NULL if it has none at hand (then tr__msg_new
 * knows what to do). Makes no call. A magazine has nodes only once its
 * thread is registered. */
static inline tr_msg *tr__msg_take_small(uint32_t type, uint32_t len)
{
    tr__node *n = tr__magazine_pop(&tr__msg_tls.mag[0]);
    return n != NULL ? tr__msg_init((tr_msg *)n, type, len) : NULL;
}

/* Copies len <= TR__MSG_SMALL bytes without calling memcpy: two copies of
 * a fixed size that overlap in the middle, each within [s, s + len). */
static inline void tr__msg_copy_small(unsigned char *d, const unsigned char *s, size_t len)
{
    if (len == 0)
        return;
    if (len >= 16) {
        memcpy(d, s, 16);
        memcpy(d + len - 16, s + len - 16, 16);
    } else if (len >= 8) {
        memcpy(d, s, 8);
        memcpy(d + len - 8, s + len - 8, 8);
    } else if (len >= 4) {
        memcpy(d, s, 4);
        memcpy(d + len - 4, s + len - 4, 4);
    } else {
        d[0] = s[0];
        d[len / 2] = s[len / 2];
        d[len - 1] = s[len - 1];
    }
}

/* Allocates a message for len payload bytes (len <= TR_MSG_MAX_LEN),
 * without checking the type. NULL when out of memory. Any thread. */
static inline tr_msg *tr__msg_new(uint32_t type, uint32_t len)
{
    tr_msg *m = len <= TR__MSG_SMALL ? tr__msg_take_small(type, len) : NULL;
    return m != NULL ? m : tr__msg_new_slow(type, len);
}

/* Returns a message to the calling thread's pool. Any thread. Inline: a
 * small message into a registered magazine with room. */
static inline void tr__msg_release(tr_msg *m)
{
    tr__msg_cache *c = &tr__msg_tls;
    tr__magazine *mag = &c->mag[0];
    if (m->len > TR__MSG_SMALL || mag->count == TR__BATCH || !c->registered) {
        tr__msg_release_slow(m);
        return;
    }
    tr__magazine_push(mag, &m->tr__link);
}

/* A per-thread message with room for at least TR__SCRATCH payload bytes
 * (or `room`, for tr__scratch_msg_room), to hand straight to a behaviour
 * without queueing it; valid until the next call on this thread. Its len
 * is set by the caller. NULL when out of memory. TR__SCRATCH holds the
 * largest UDP datagram with its header, and is what a connection reads in
 * one call: 256 KiB rather than 64 made echo-stream 1.2x a plain epoll
 * loop reading 64 KiB instead of 0.9x (fewer, fuller reads and sends on a
 * loopback stream; 16 x 64 MiB, 2 cores). */
#define TR__SCRATCH (256 * 1024 + 512)
tr_msg *tr__scratch_msg(uint32_t type);
tr_msg *tr__scratch_msg_room(uint32_t type, size_t room);

/* Message blocks obtained from malloc so far, process-wide. */
uint64_t tr__msg_pool_mallocs(void);

/* A message the runtime owes an actor (msg.c, "the reserve"): as
 * tr__msg_new, but when memory has run out, from a small reserve kept for
 * these (payloads up to 96 bytes). NULL only once that is spent too (the
 * first such loss is said on stderr). Any thread. */
tr_msg *tr__msg_new_owed(uint32_t type, uint32_t len);

#endif
