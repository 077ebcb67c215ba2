/* actors/pid.h — the bits of a pid (internal).
 *
 * From the top:
 *
 *   16 bits node id (0 = this node; room for remote actors)
 *   22 bits generation of the slot (never 0 for an issued pid)
 *   26 bits slot index
 *
 * Kept out of include/: a program treats a pid as an opaque number (see
 * troupe/pid.h), so the split can change without breaking it. Tests that
 * forge pids (never issued, another node's) include this header.
 */
#ifndef TR_ACTORS_PID_H
#define TR_ACTORS_PID_H

#include <stdint.h>

#include "troupe/pid.h"

#define TR__PID_INDEX_BITS 26
#define TR__PID_GEN_BITS   22
#define TR__PID_NODE_BITS  16

#define TR__PID_INDEX(p) ((uint32_t)((p) & ((UINT64_C(1) << TR__PID_INDEX_BITS) - 1)))
#define TR__PID_GEN(p) \
    ((uint32_t)(((p) >> TR__PID_INDEX_BITS) & ((UINT64_C(1) << TR__PID_GEN_BITS) - 1)))
#define TR__PID_NODE(p) ((uint32_t)((p) >> (TR__PID_INDEX_BITS + TR__PID_GEN_BITS)))

_Static_assert(TR__PID_INDEX_BITS + TR__PID_GEN_BITS + TR__PID_NODE_BITS == 64,
               "a pid's fields fill its 64 bits");

#endif
