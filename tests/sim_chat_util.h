/* sim_chat_util.h — the chat example's protocol tests as scripted client
 * actors, run against examples/chat.c's own, unchanged main (compiled a
 * second time as tr_chat_example_main) under the deterministic simulator,
 * one run per seed; and, seedless, over the real network.
 *
 * A scenario is a function that builds one script per client. A script is
 * a list of steps: send a line, expect an exact line (or lines from
 * several "lanes" in any interleaving, each lane in order), expect the
 * connection closed, pass a named mark, wait until another client has
 * passed one of its marks (a barrier), close, cut one's own connection off
 * from the server (a partition, simulation only). Every client first
 * expects the greeting. Every line a client receives is accounted for: a
 * line that no step expects fails the run, also one that comes after the
 * script has ended: once every script has ended, each client still
 * connected sends an end probe (an unknown command) whose answer must be
 * its very next line.
 *
 * Under simulation, a tr_sim_on_create hook spawns a director into chat's
 * runtime; it connects the clients (TR_FRAME_LINE), relays marks between
 * them, probes, and shuts the runtime down once every probe is answered,
 * at the first failure, or when a virtual-time deadline passes (a client
 * "stalled at step N"). chat's main then shuts its directory down and
 * returns. Over the real network the director runs in a runtime of its
 * own and chat's main on a thread, stopped by the SIGTERM it listens for.
 *
 * Each seed runs in a forked child (several seeds per child, in order),
 * so that a crash or sanitizer report is caught and names its seed; the
 * children's stdout goes to /dev/null and their stderr (the simulation's
 * seed and hash lines) to a scratch file, shown only when a run fails.
 */
#ifndef TROUPE_TESTS_SIM_CHAT_UTIL_H
#define TROUPE_TESTS_SIM_CHAT_UTIL_H

#include "tests.h"

/* examples/chat.c's main (Makefile: -Dmain=tr_chat_example_main). */
int tr_chat_example_main(int argc, char **argv);

#define SC_MAX_CLIENTS 8
#define SC_PORT 7000 /* chat's port under simulation (its default) */

typedef struct sc_step sc_step;

/* One client's script (sc_client_add makes it; the steps below add to it). */
typedef struct sc_client {
    char name[16];
    int index;
    sc_step *steps;
    size_t n, cap;
    bool broken;     /* a step could not be recorded (memory): the run fails */
} sc_client;

/* A scenario being built or run. */
typedef struct sc_scenario {
    sc_client c[SC_MAX_CLIENTS];
    int n;
    bool oom;              /* more clients than SC_MAX_CLIENTS: the run fails */
    uint16_t port;         /* the server's port */
    uint64_t deadline_ns;  /* after the clients start: stalled */
    /* the outcome, written by the client actors (each its own slot) */
    char failure[SC_MAX_CLIENTS][320];
    _Atomic size_t at[SC_MAX_CLIENTS]; /* the step each client is at */
    char stall[640];       /* written by the director: who stalled where */
    atomic_bool stopping;  /* the director has ended the run */
} sc_scenario;

typedef void (*sc_build_fn)(sc_scenario *s);

/* ---- building scripts ---- */

/* A new client (at most SC_MAX_CLIENTS): its script begins by expecting
 * the greeting. */
sc_client *sc_client_add(sc_scenario *s, const char *name);
/* Sends the printf-style line ("\n" added). */
__attribute__((format(printf, 2, 3))) void sc_send(sc_client *c, const char *fmt, ...);
/* Sends len bytes as they are (CRLF, several lines, an over-long one). */
void sc_raw(sc_client *c, const void *data, size_t len);
/* The next line is exactly this. */
__attribute__((format(printf, 2, 3))) void sc_expect(sc_client *c, const char *fmt, ...);
/* Consecutive sc_expect_in steps form a group: each line received must be
 * the next one of some lane (1, 2, ...), so any interleaving of the lanes
 * passes and each lane's order is checked. */
__attribute__((format(printf, 3, 4))) void sc_expect_in(sc_client *c, int lane, const char *fmt,
                                                        ...);
/* The server closes the connection, with no line before. */
void sc_closed(sc_client *c);
/* Passes the named mark; sc_wait in other scripts waits for it. */
void sc_mark(sc_client *c, const char *mark);
/* Waits until `other` has passed its mark `mark` (added already). */
void sc_wait(sc_client *c, const sc_client *other, const char *mark);
/* Closes the connection (gracefully): the script's last step. */
void sc_close(sc_client *c);
/* Partitions this connection from the server for heal_after_ns of virtual
 * time (tr_sim_partition); simulation only. */
void sc_partition(sc_client *c, uint64_t heal_after_ns);

/* Shorthands: NICK accepted; JOIN accepted. */
void sc_nick(sc_client *c, const char *nick);
void sc_join(sc_client *c, const char *room);

/* ---- running ---- */

typedef struct sc_def {
    const char *name;     /* the CUnit test's name */
    sc_build_fn build;
    bool sim_only;        /* needs the simulated network (partitions) */
    /* NULL, or checks made after a passing run under simulation (in its
     * process: tr_sim_stats_get); false and why if they fail */
    bool (*after)(char *why, size_t cap);
} sc_def;

/* Runs `def` under simulation for seeds first..last in `jobs` forked
 * children; stops at the first failing seed, printing what failed and the
 * command that reproduces it. Returns the number of children that failed
 * (each stops at its first failing seed). hashes: NULL, or last - first + 1
 * entries that get each seed's trace hash (0 for a seed that did not run). */
int sc_run_seeds(const sc_def *def, uint64_t first, uint64_t last, int jobs, uint64_t *hashes);

/* Runs `def` once over the real network (chat on a free port, the clients
 * in a runtime of their own), in a forked child. Returns 0 if it passed. */
int sc_run_real(const sc_def *def);

/* Shared by sim_chat_util.c and sim_chat_run.c: frees a built scenario;
 * spawns the director into rt (its clients connect to s->port); true if
 * the run passed, else why. */
void sc_scenario_free(sc_scenario *s);
int sc_director_spawn(tr_runtime *rt, sc_scenario *s);
bool sc_verdict(const sc_scenario *s, char *why, size_t cap);

#endif
