/* base/sim.h — the simulation's process-wide state (internal): options,
 * the virtual clock, the seeded generator, fault sites and the trace hash
 * (include/troupe/sim.h says what a simulation is; docs/simulation.md how
 * it is built).
 *
 * Production pays for the simulation only where a layer asks "are we
 * simulated?": tr__now_ns reads one word (base/clock.h), the socket calls
 * (sys/sys.h) and spawn test tr__sim_on before the real call. The
 * per-message paths never ask: the simulator replaces the workers' loop
 * (sched/sim.c), not the turn.
 *
 * Everything here is used by one thread at a time: the simulation runs
 * every behaviour on the thread that called tr_runtime_run or join.
 */
#ifndef TR_BASE_SIM_H
#define TR_BASE_SIM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <ck_pr.h>

#include "troupe/sim.h"

/* Fault sites (FoundationDB's BUGGIFY): each one asked for is switched on
 * or off for the whole run by the seed, and an enabled site fires with
 * probability fault_p each time it is reached. */
enum tr__fault_site {
    TR__FAULT_SPAWN,       /* tr_spawn fails with TR_ENOMEM */
    TR__FAULT_CONNECT,     /* a TCP connect is refused */
    TR__FAULT_SHORT_WRITE, /* a write or send takes only part of its bytes */
    TR__FAULT_TIMER_LATE,  /* a timer fires late, by up to 10 ms */
    TR__FAULT_RESET,       /* a TCP connection is reset at a random moment */
    TR__FAULT_SITES
};

typedef enum tr__sched_mode { TR__SIM_UNIFORM, TR__SIM_PCT } tr__sched_mode;

/* The options (TROUPE_SIM or tr_config.sim_options), after parsing. */
typedef struct tr__sim_opts {
    uint64_t seed;
    tr__sched_mode sched;
    unsigned depth;          /* PCT: priority change points + 1 */
    uint64_t turn_ns;        /* a turn takes 1..turn_ns of virtual time */
    uint64_t limit_ns;       /* virtual time limit of a run */
    uint64_t lat_min_ns, lat_mean_ns; /* network latency */
    size_t buffer;           /* bytes a TCP direction holds in flight */
    double loss, dup, reorder; /* UDP, probabilities */
    uint64_t rto_ns;         /* a TCP path cut this long is reset */
    uint32_t faults_asked;   /* sites named in the options (a mask) */
    uint32_t faults;         /* those the seed switched on */
    double fault_p;
} tr__sim_opts;

/* The kinds of event the trace hash takes in. */
enum tr__sim_event {
    TR__EV_TURN = 1, TR__EV_SEND, TR__EV_SPAWN, TR__EV_STOP, TR__EV_TIMER,
    TR__EV_NET, TR__EV_FAULT, TR__EV_TIME
};

/* Nonzero while a simulation is in progress: the virtual clock in ns
 * (it starts at one second, so it is never 0). base/clock.h reads it. */
extern uint64_t tr__sim_clock;

/* Whether a simulation is in progress. */
static inline bool tr__sim_on(void)
{
    return ck_pr_load_64(&tr__sim_clock) != 0;
}

/* Simulations begun in this process: state kept beside a simulation (the
 * simulated network, sys/) is dropped when it sees a new one. */
extern uint64_t tr__sim_epoch;

/* The options of the simulation in progress (valid while tr__sim_on). */
extern tr__sim_opts tr__sim;

/* Begins the simulation if none is in progress (a runtime in simulation
 * is being created: seed as tr_config.sim_seed, options NULL = TROUPE_SIM),
 * or joins the one in progress. Prints the options line when it begins.
 * 0, or TR_EINVAL (options that do not parse: the message says which). */
int tr__sim_enter(uint64_t seed, const char *options);

/* A runtime in simulation is gone; the last one ends the simulation and
 * prints the trace hash (true: it ended; the layers above free what they
 * kept for it). */
bool tr__sim_leave(void);

/* The simulation's seeded stream (splitmix64, base/sim.c; never from addresses). */
uint64_t tr__sim_rand(void);

/* Uniform in [0, n) (n > 0). */
uint64_t tr__sim_below(uint64_t n);

/* True with probability p. */
bool tr__sim_chance(double p);

/* Whether fault site `site` fires now (its site switched on and the draw
 * says so); counts and hashes it when it does. False outside simulation. */
bool tr__sim_fault(enum tr__fault_site site);

/* Mixes an event into the trace hash. */
void tr__sim_mix(enum tr__sim_event kind, uint64_t a, uint64_t b);

/* Moves the virtual clock forward to `ns` (never back). */
void tr__sim_advance(uint64_t ns);

/* The counters behind tr_sim_stats_get, written by the simulator. */
extern tr_sim_stats tr__sim_stats;

#endif
