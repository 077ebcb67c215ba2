/* base/fence.h — an asymmetric full fence (internal).
 *
 * Some of troupe's protocols are Dekker's: each side stores its own word,
 * then loads the other's, and at least one of them must see the other.
 * That needs a full fence on both sides (x86 lets a load pass an earlier
 * store), and a full fence waits for every store still in flight: on a
 * path that has just written fresh memory it is far dearer than its few
 * cycles. Where one side is hot and the other rare, membarrier(2) lets
 * the rare side pay for both: its system call runs a full fence on every
 * CPU now running one of the process's threads (and a thread that is not
 * running passed one when it was switched out), so the hot side needs
 * only to keep the compiler from reordering.
 *
 * Why it holds: take the moment the barrier runs on the hot thread's CPU.
 * If the hot side's store came before it, the barrier made it visible
 * and the rare side, loading after the call returns, sees it. If the hot
 * side's load came after it, the rare side's store (before the call,
 * which fences the caller too) is visible to that load. Either way one
 * side sees the other, as with two fences.
 *
 * Both sides must agree on which scheme is in force, so it is chosen once
 * (tr__fence_asym_init, when a runtime is made) and passed to both. The
 * kernel must have MEMBARRIER_CMD_PRIVATE_EXPEDITED (Linux 4.14) and let
 * the process use it; where it does not (an older kernel, a seccomp
 * filter, valgrind), both sides fence as before. */
#ifndef TR_BASE_FENCE_H
#define TR_BASE_FENCE_H

#include <ck_pr.h>
#include <linux/membarrier.h>
#include <stdbool.h>
#include <sys/syscall.h>
#include <unistd.h>

/* Registers the process for expedited membarriers: true if the
 * asymmetric scheme may be used. Any thread; idempotent. */
static inline bool tr__fence_asym_init(void)
{
    return syscall(SYS_membarrier, MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED, 0, 0) == 0;
}

/* The hot side's fence. */
static inline void tr__fence_fast(bool asym)
{
    if (asym)
        ck_pr_barrier();
    else
        ck_pr_fence_memory();
}

/* The rare side's fence: a system call that reaches every CPU running
 * one of the process's threads. After a successful registration it
 * cannot fail (membarrier(2)). */
static inline void tr__fence_slow(bool asym)
{
    if (asym)
        syscall(SYS_membarrier, MEMBARRIER_CMD_PRIVATE_EXPEDITED, 0, 0);
    else
        ck_pr_fence_memory();
}

#endif
