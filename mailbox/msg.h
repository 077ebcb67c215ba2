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

/* Message blocks obtained from malloc so far, process-wide. */
uint64_t tr__msg_pool_mallocs(void);

#endif
