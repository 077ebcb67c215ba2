/* troupe/error.h — error codes.
 *
 * Every call that can fail returns 0 on success or one of these negative
 * codes, in the manner of libuv: most are the negated errno value that
 * names the same condition, so they can be compared with errno constants.
 */
#ifndef TROUPE_ERROR_H
#define TROUPE_ERROR_H

#include <errno.h>

#define TR_OK         0
#define TR_EINVAL     (-EINVAL)     /* an argument is null, out of range or reserved */
#define TR_ENOMEM     (-ENOMEM)     /* memory could not be allocated */
#define TR_ENOPID     (-ESRCH)      /* the pid was never issued by this runtime */
#define TR_EMSGSIZE   (-EMSGSIZE)   /* payload longer than TR_MSG_MAX_LEN */
#define TR_EAGAIN     (-EAGAIN)     /* the actor table is full */
#define TR_EBUSY      (-EBUSY)      /* the runtime is already running */
#define TR_EDEADLK    (-EDEADLK)    /* a blocking call made from inside a behaviour */
#define TR_ENOTSTARTED (-ECHILD)    /* join on a runtime that was not started */
#define TR_ETIMEDOUT  (-ETIMEDOUT)  /* no answer within the timeout (tr_call) */
#define TR_ENOREPLY   (-ENOMSG)     /* the target ended or returned without answering (tr_call) */

/* A short, static, human-readable name for an error code ("invalid
 * argument", ...). Unknown codes give "unknown error". Any thread. */
const char *tr_strerror(int err);

#endif
