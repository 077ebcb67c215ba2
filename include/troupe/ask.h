/* troupe/ask.h — request/reply: ask an actor, get exactly one answer.
 *
 * tr_ask sends a message that expects an answer. Exactly one of these
 * comes back to the asker for each ask, never both, never neither:
 *
 *   TR_REPLY       the target called tr_reply; the payload is the reply's
 *                  bytes (m->data, m->len), tr_msg_ref(m) gives the ref;
 *   TR_ASK_FAILED  payload tr_ask_failure (m->from is the target): the
 *                  ref and why — the timeout passed, the target ended (or
 *                  had ended) before answering, it handled the ask
 *                  without answering, or it is on another node whose
 *                  connection went down first.
 *
 * An ask is answered in the turn that handles it: a behaviour that
 * returns without calling tr_reply fails the ask at once
 * (TR_ASK_UNANSWERED; TR_ASK_GONE if it is stopping), so an asker never
 * waits for an answer that cannot come. An ask that never reaches a
 * behaviour — its target had ended, or ends with the ask still in its
 * mailbox — is a dead letter, answered with TR_ASK_FAILED (TR_ASK_GONE)
 * the way a monitor of a dead actor is answered with TR_DOWN. So the
 * target's end is seen without a monitor, and an ask costs no message
 * beyond itself and its answer.
 *
 * Late answers are flushed, as tr_demonitor flushes TR_DOWN: the asker
 * keeps the refs it still waits for (a hash table in its fault record,
 * O(1) per ask, freed when it ends). An answer whose ref it no longer
 * holds — a reply that lost the race with the timeout, a timeout that
 * lost the race with the reply — is dropped when it arrives, before the
 * behaviour sees it. Timeouts cost no timer each: an asker has one timer,
 * armed for its earliest deadline, and an answer touches none; while an
 * ask with a timeout waits, the asker holds the runtime open, as a
 * pending timer does. A timeout is never reported before its deadline
 * (the call plus timeout_ns); the deadlines of a turn's asks are read
 * off the clock once, as the turn ends, so one may be reported later by
 * as much of the turn as was left after the call. Timeouts above 2^62 ns
 * (146 years) are taken as 2^62.
 *
 * A remote pid of another troupe node is asked the same way
 * (troupe/dist.h). An ask in flight when that node's connection goes
 * down, or when this node stops, fails then with TR_ASK_NOCONNECTION,
 * timeout or none: its answer could only have come back over that
 * connection. (An Erlang process never answers an ask: ask it with a
 * timeout.)
 */
#ifndef TROUPE_ASK_H
#define TROUPE_ASK_H

#include <stddef.h>
#include <stdint.h>

#include "api.h"
#include "actor.h"
#include "msg.h"
#include "msgtypes.h"
#include "pid.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Message types. */
/* TR_REPLY (payload: the reply's bytes) and TR_ASK_FAILED (payload:
 * tr_ask_failure) are in troupe/msgtypes.h with every reserved type. */

/* Why an ask failed. */
#define TR_ASK_TIMEOUT    1 /* no answer within the timeout */
#define TR_ASK_GONE       2 /* the target ended, or had ended, before answering */
#define TR_ASK_UNANSWERED 3 /* the target handled it and returned without tr_reply */
#define TR_ASK_NOCONNECTION 4 /* the target's node connection went down, or this
                               * node stopped, before the answer came */

typedef struct tr_ask_failure {
    uint64_t ref;  /* from tr_ask */
    tr_pid to;     /* the actor asked */
    int why;       /* TR_ASK_TIMEOUT, TR_ASK_GONE, TR_ASK_UNANSWERED or
                    * TR_ASK_NOCONNECTION */
} tr_ask_failure;

/* Sends `to` a message of `type` with a copy of `len` bytes of `data`, as
 * an ask; stores its ref (unique among the running actor's asks) in *ref
 * if ref is not NULL. timeout_ns 0 means no timeout. The target sees an
 * ordinary message of `type` (m->from is the asker) and answers with
 * tr_reply. Errors (then nothing comes back): TR_EINVAL (not inside a
 * behaviour, type reserved, data NULL with len), TR_EMSGSIZE, TR_ENOPID
 * (`to` was never a valid pid: no TR_ASK_FAILED follows), TR_ENOMEM,
 * TR_EAGAIN (no actor slot for the asker's timeout timer, when this ask's
 * deadline is its earliest). A target that has
 * already ended is no error: TR_ASK_FAILED (TR_ASK_GONE) follows.
 * Inside a behaviour only. */
TR_API int tr_ask(tr_ctx *cx, tr_pid to, uint32_t type, const void *data, size_t len,
                  uint64_t timeout_ns, uint64_t *ref);

/* Answers the ask m — the message the running behaviour was handed —
 * with a copy of `len` bytes of `data`, sent to the asker as TR_REPLY.
 * At most once per ask. Errors: TR_EINVAL (not inside a behaviour, m not
 * an ask being handled — a plain message, or an ask already answered —
 * or data NULL with len), TR_EMSGSIZE, TR_ENOMEM (the ask stays
 * unanswered). An asker that has ended is no error (a dead letter).
 * Inside a behaviour only. */
TR_API int tr_reply(tr_ctx *cx, const tr_msg *m, const void *data, size_t len);

/* The ref a TR_REPLY or TR_ASK_FAILED message answers; 0 for any other
 * message or NULL (refs are never 0). Never fails. Any thread. */
TR_API uint64_t tr_msg_ref(const tr_msg *m);

/* tr_ask for a thread outside the runtime: blocks (sleeping, no polling)
 * until the answer. On success returns 0 and stores the TR_REPLY in
 * *reply: a message of the caller's, m->data and m->len the reply's
 * bytes, to be freed with tr_msg_free. The runtime must be running; the
 * answer comes from a run, so a run that is stopped while the call waits
 * leaves it waiting for the next run (hold the runtime, tr_runtime_hold,
 * to keep a run from ending just as a call starts). Errors (*reply is
 * then NULL if reply is not): TR_EINVAL (rt or reply NULL, type reserved,
 * data NULL with len), TR_EDEADLK (called on a worker thread, i.e. from
 * a behaviour), TR_ENOTSTARTED (the runtime is not running, or was
 * destroyed during the call; in simulation, where the caller runs the
 * simulation itself until the answer, also a run that ends first),
 * TR_EBUSY (in simulation, another thread is running it),
 * TR_ETIMEDOUT, TR_ENOREPLY (the target
 * ended, or returned, without answering), TR_ECONNABORTED (the target's
 * node connection went down first), and those of tr_ask. Any thread
 * outside the runtime. The request comes from an actor made for the call
 * (m->from): what the target sends it besides the answer is dropped. */
TR_API int tr_call(tr_runtime *rt, tr_pid to, uint32_t type, const void *data, size_t len,
                   uint64_t timeout_ns, tr_msg **reply);

#ifdef __cplusplus
}
#endif

#endif
