/* troupe/sim.h — deterministic simulation: the same program, run from a
 * seed on one thread with virtual time and a simulated network, so that a
 * failure found once can be replayed exactly (docs/simulation.md).
 *
 * A runtime created with tr_config.sim_seed != 0 (tr_config_init takes it
 * from TROUPE_SIM_SEED; a seed of TR_SIM_ANY_SEED — "0" in the variable —
 * picks one and prints it) runs in simulation: tr_runtime_run and
 * tr_runtime_join run every behaviour on the calling thread, the next actor
 * drawn by a seeded generator; time is virtual and jumps to the next timer
 * or network event when nothing is runnable; TCP and UDP actors talk over
 * an in-memory network. Everything else — actors, mailboxes, backpressure,
 * the timer wheel, links, supervisors — is the production code.
 *
 * The simulation is process-wide: it begins when the first simulated
 * runtime is created (printing a line "troupe: simulation seed=N ..." with
 * its options on stderr) and ends when the last one is destroyed (printing
 * "trace hash=HEX": a hash of every turn, send, delivery, timer firing and
 * network event, the same for the same seed, options and program). Options
 * come from tr_config.sim_options, else TROUPE_SIM: a comma-separated list
 * of key=value (docs/simulation.md has the table):
 *   sched=uniform|pct   depth=3      turn=NS (virtual time a turn takes, at most)
 *   limit=SECONDS (virtual; past it the run ends as a liveness failure)
 *   latency=MIN_US:MEAN_US  buffer=BYTES  loss=P  dup=P  reorder=P  (P: 0..1)
 *   faults=none|all|SITE+SITE...  fault_p=P
 * TROUPE_SIM_CHECK=1 runs the rest of the program twice with the same seed
 * (in two child processes) and fails if the trace hashes differ.
 *
 * tr_now and tr_rand are for behaviours that need a clock or randomness:
 * real in production, the simulation's under it. The libc calls that break
 * determinism (time, clock_gettime, rand, getpid, sleeping, blocking I/O)
 * are listed in the guide.
 */
#ifndef TROUPE_SIM_H
#define TROUPE_SIM_H

#include <stdint.h>

#include "actor.h"
#include "api.h"

#ifdef __cplusplus
extern "C" {
#endif

/* tr_config.sim_seed: run in simulation with a seed picked (and printed)
 * by the runtime. */
#define TR_SIM_ANY_SEED UINT64_MAX

/* Monotonic time in ns: CLOCK_MONOTONIC in production, the virtual clock
 * in simulation. Never fails; cx may be NULL. Any thread. */
TR_API uint64_t tr_now(tr_ctx *cx);

/* A pseudo-random 64-bit number: from the calling worker's generator in
 * production (a thread-local one outside the runtime), each seeded from
 * getrandom, so that no two runs, runtimes or threads draw the same
 * stream; from the simulation's seeded stream under it. Not for secrets.
 * Never fails; cx may be NULL. Any thread. */
TR_API uint64_t tr_rand(tr_ctx *cx);

/* The seed of the simulation in progress (or of the last one, after it
 * ended), 0 if none ran in this process. Any thread. */
TR_API uint64_t tr_sim_seed(void);

/* The trace hash of the simulation in progress, or of the last one. Any
 * thread. */
TR_API uint64_t tr_sim_hash(void);

/* Calls fn(rt, arg) for every runtime created in simulation, just before
 * tr_runtime_create returns it (fn NULL: no more): a test that runs a
 * program's unchanged main can spawn its simulated clients into the
 * program's runtime. Not for production use. Main thread. */
TR_API void tr_sim_on_create(void (*fn)(tr_runtime *rt, void *arg), void *arg);

/* Cuts the simulated network between two groups of endpoints, each a
 * space-separated list of "HOST" or "HOST:PORT" (numeric, as the sockets
 * see them): nothing sent from a to b (and, unless one_way, from b to a)
 * arrives until it heals, heal_after_ns of virtual time later (0: until
 * tr_sim_heal). Data in flight is held, not lost; a TCP connection cut for
 * longer than the network's retransmission limit is reset at both ends.
 * Errors: TR_EINVAL (not in simulation, a bad endpoint), TR_ENOMEM. Any
 * thread of the simulation. */
TR_API int tr_sim_partition(const char *a, const char *b, int one_way, uint64_t heal_after_ns);

/* Heals every partition now. Never fails. */
TR_API void tr_sim_heal(void);

/* What the simulated network and the fault sites did, for tests that
 * check the seed's plan was carried out. */
typedef struct tr_sim_stats {
    uint64_t turns;            /* behaviour turns run */
    uint64_t udp_sent;         /* datagrams handed to the network */
    uint64_t udp_lost;         /* dropped by it (loss, partition) */
    uint64_t udp_duplicated;   /* delivered twice */
    uint64_t udp_reordered;    /* delivered ahead of one sent before them */
    uint64_t tcp_connects, tcp_refused, tcp_resets;
    uint64_t faults;           /* fault sites that fired */
    uint64_t virtual_ns;       /* virtual time elapsed */
} tr_sim_stats;

/* Fills *out for the simulation in progress or the last one (zeros if
 * none). Never fails (out NULL is ignored). */
TR_API void tr_sim_stats_get(tr_sim_stats *out);

#ifdef __cplusplus
}
#endif

#endif
