/* base/futex.h — sleeping on a word (internal; Linux futexes, private to
 * the process). */
#ifndef TR_BASE_FUTEX_H
#define TR_BASE_FUTEX_H

#include <linux/futex.h>
#include <stdint.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

/* Sleeps while *word == val, for at most timeout_ns (0: no limit). It may
 * also return early (a signal, a spurious wake): callers look again. */
static inline void tr__futex_wait(uint32_t *word, uint32_t val, uint64_t timeout_ns)
{
    struct timespec ts = {.tv_sec = (time_t)(timeout_ns / 1000000000u),
                          .tv_nsec = (long)(timeout_ns % 1000000000u)};
    syscall(SYS_futex, word, FUTEX_WAIT_PRIVATE, val, timeout_ns != 0 ? &ts : NULL, NULL, 0);
}

/* Wakes one thread asleep on word. */
static inline void tr__futex_wake(uint32_t *word)
{
    syscall(SYS_futex, word, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
}

#endif
