/* dist_util.h — helpers of the dist suites that run a real `erl`: a
 * private EPMD on a port of its own, erl processes with a script, nodes.
 * Every wait is bounded; a suite whose erl is missing prints why and
 * skips its tests (tests pass then, loudly). */
#ifndef TROUPE_TESTS_DIST_UTIL_H
#define TROUPE_TESTS_DIST_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "tests.h"

#define DT_COOKIE "tt_cookie_42"

/* True (after printing the reason) when `erl` or `epmd` is not installed:
 * the test returns at once. */
bool dt_skip(void);

/* Starts `epmd -daemon` on a free port of its own (the tests never touch
 * the machine's 4369); 0 when it did not answer within 10 s. */
uint16_t dt_epmd_start(void);
void dt_epmd_stop(uint16_t port);

typedef struct dt_erl {
    pid_t pid;
    int out;          /* its stdout and stderr */
    char buf[16384];  /* what it printed */
    size_t len;
    int status;
    bool quiet;       /* dt_erl_wait prints no output when it fails */
} dt_erl;

/* Runs argv (a NULL-ended list) with ERL_EPMD_PORT=epmd, its output on
 * e->out. 0, or -1. */
int dt_run(dt_erl *e, uint16_t epmd, const char *const *argv);
/* Reads its output until `text` appears in it (true) or `seconds` pass. */
bool dt_read_until(dt_erl *e, const char *text, double seconds);

/* Runs `erl -noshell -sname SNAME -setcookie COOKIE -eval SCRIPT` with
 * ERL_EPMD_PORT=epmd. 0, or -1. */
int dt_erl_start(dt_erl *e, uint16_t epmd, const char *sname, const char *cookie,
                 const char *script);
/* Collects the output until the process exits; kills it (SIGKILL) past `seconds`.
 * True when it exited by itself with status 0. */
bool dt_erl_wait(dt_erl *e, double seconds);
/* The text after "KEY " on a line of its output, up to the line's end,
 * into out; false when no line has it. */
bool dt_erl_value(const dt_erl *e, const char *key, char *out, size_t cap);
/* Whether that text (up to 255 bytes) is exactly `want`. */
bool dt_erl_is(const dt_erl *e, const char *key, const char *want);

/* A running runtime that is node NAME@localhost on epmd with DT_COOKIE
 * (and, for dt_node_busy, that busy limit; 0: the default). */
tr_runtime *dt_node(const char *name, uint16_t epmd, uint64_t tick_ns);
tr_runtime *dt_node_busy(const char *name, uint16_t epmd, uint64_t tick_ns, size_t busy_limit);
void dt_node_end(tr_runtime *rt);

/* A behaviour that sends every message back to its sender unchanged. */
void dt_echo(tr_ctx *cx, void *state, const tr_msg *m);

#endif
