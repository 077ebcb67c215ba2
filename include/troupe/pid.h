/* troupe/pid.h — process identifiers.
 *
 * A tr_pid names an actor. It is a plain 64-bit value, not a pointer: it can
 * be copied, stored and put in messages, and a send to a pid whose actor has
 * stopped is safe (the message becomes a dead letter). Layout, from the top:
 *
 *   16 bits node id (0 = this node; room for remote actors)
 *   22 bits generation of the slot (never 0 for an issued pid)
 *   26 bits slot index
 *
 * TR_PID_NONE (0) is never issued.
 */
#ifndef TROUPE_PID_H
#define TROUPE_PID_H

#include <stdint.h>

typedef uint64_t tr_pid;

#define TR_PID_NONE ((tr_pid)0)

#define TR_PID_INDEX_BITS 26
#define TR_PID_GEN_BITS   22
#define TR_PID_NODE_BITS  16

#define TR_PID_INDEX(p) ((uint32_t)((p) & ((UINT64_C(1) << TR_PID_INDEX_BITS) - 1)))
#define TR_PID_GEN(p) \
    ((uint32_t)(((p) >> TR_PID_INDEX_BITS) & ((UINT64_C(1) << TR_PID_GEN_BITS) - 1)))
#define TR_PID_NODE(p) ((uint32_t)((p) >> (TR_PID_INDEX_BITS + TR_PID_GEN_BITS)))

#endif
