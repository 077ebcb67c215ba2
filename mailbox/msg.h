/* mailbox/msg.h — message allocation (internal). */
#ifndef TR_MAILBOX_MSG_H
#define TR_MAILBOX_MSG_H

#include <stdint.h>

#include "troupe/msg.h"

/* Allocates a message for len payload bytes (len <= TR_MSG_MAX_LEN),
 * without checking the type. NULL when out of memory. Any thread. */
tr_msg *tr__msg_new(uint32_t type, uint32_t len);

/* Returns a message to the calling thread's pool. Any thread. */
void tr__msg_release(tr_msg *m);

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

#endif
