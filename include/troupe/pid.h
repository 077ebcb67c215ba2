/* troupe/pid.h — process identifiers.
 *
 * A tr_pid names an actor. It is a plain 64-bit value, not a pointer: it can
 * be copied, stored, compared and put in messages, and a send to a pid whose
 * actor has stopped is safe (the message becomes a dead letter). A pid is
 * never reused for another actor. TR_PID_NONE (0) is never issued.
 *
 * Its bits are the runtime's business (slot, generation, node: see
 * actors/pid.h) and may change, for instance when pids name remote actors;
 * no public macro takes a pid apart. To print or log one, print the number
 * (printf("%" PRIx64, pid)): it identifies the actor as well as any
 * decomposition would, and needs no function of ours.
 */
#ifndef TROUPE_PID_H
#define TROUPE_PID_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef uint64_t tr_pid;

#define TR_PID_NONE ((tr_pid)0)

#ifdef __cplusplus
}
#endif

#endif
