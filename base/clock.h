/* base/clock.h — monotonic time (internal). */
#ifndef TR_BASE_CLOCK_H
#define TR_BASE_CLOCK_H

#include <stdint.h>
#include <time.h>

#include "sim.h"

/* CLOCK_MONOTONIC in ns, whatever the simulation says (the simulator
 * times its turns in real time with it). Any thread. */
static inline uint64_t tr__real_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Monotonic time in ns, or the virtual clock while a simulation is in
 * progress (base/sim.h): one load and a branch that production always
 * predicts. Any thread. */
static inline uint64_t tr__now_ns(void)
{
    uint64_t sim = ck_pr_load_64(&tr__sim_clock);
    if (__builtin_expect(sim != 0, 0))
        return sim;
    return tr__real_ns();
}

#endif
