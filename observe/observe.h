/* observe/observe.h — the /metrics and /actors server (tr_metrics_serve)
 * and what it writes: the Prometheus text format (prom.c), the /actors
 * JSON (actors.c), and the growing text buffer both write into (buf.c).
 *
 * observe/ sits above every other module: it uses the runtime only through
 * the public API (troupe/metrics.h for the figures, troupe/http.h for the
 * server), so that it reads what any user's tool would read.
 */
#ifndef TR_OBSERVE_H
#define TR_OBSERVE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <troupe.h>
#include <troupe/metrics.h>

/* A text buffer that grows; after a failed allocation it stays failed
 * (oom) and keeps what it had, so writers check once at the end. */
typedef struct tr__obuf {
    char *p;
    size_t len, cap;
    bool oom;
} tr__obuf;

__attribute__((format(printf, 2, 3)))
void tr__obuf_printf(tr__obuf *b, const char *fmt, ...);
void tr__obuf_put(tr__obuf *b, const char *s, size_t n);
void tr__obuf_free(tr__obuf *b);
/* s (NUL-terminated) escaped as a Prometheus label value (TR__ESC_PROM:
 * backslash, quote and newline) or inside a JSON string (TR__ESC_JSON),
 * without the quotes. Bytes that are not valid UTF-8, and other control
 * characters in a label, become '?': both formats want UTF-8 text.
 * Whether any byte became '?' (then s is not the only text written so). */
enum { TR__ESC_PROM, TR__ESC_JSON };
bool tr__obuf_escaped(tr__obuf *b, const char *s, int mode);

/* The whole /metrics page. 0, or TR_ENOMEM. Any thread. */
int tr__prom_write(tr_runtime *rt, tr__obuf *b);

/* serve.c: windowed /actors queries in progress in the process (each
 * holds a sample of every actor until its window ends), and the most at
 * once; how long a connection's output may stay above high water (30 s;
 * the tests shorten it). */
#define TR__METRICS_WINDOWS_MAX 8u
unsigned tr__metrics_windows_open(void);
extern uint64_t tr__metrics_drain_ns;

/* Every live actor's figures (as tr_runtime_top with no window ranks them
 * by key), at most `cap`: a malloc'd array in *out, the count returned, or
 * TR_ENOMEM / the error of tr_runtime_top. */
int tr__observe_all(tr_runtime *rt, tr_top_key key, size_t cap, tr_actor_figures **out);

/* ---- /actors --------------------------------------------------------- */

/* A parsed /actors query. */
typedef struct tr__actors_query {
    unsigned top;        /* 1 .. 1000; default 10 */
    tr_top_key by;       /* default TR_TOP_HANDLED */
    unsigned window_ms;  /* 0 .. 60000; default 0 */
} tr__actors_query;

/* Parses the query string after '?' (NULL or "" for the defaults). 0, or
 * TR_EINVAL with a reason in *why (a static string). */
int tr__actors_parse(const char *query, tr__actors_query *q, const char **why);

/* The first sample of a windowed query: the counters the window takes the
 * difference of, for every live actor, sorted by pid. */
typedef struct tr__sample {
    tr_pid pid;
    uint64_t handled, busy_ns, turns;
} tr__sample;

/* Takes the first sample (a malloc'd array in *out, sorted by pid). The
 * count, or a negative code. */
int tr__actors_sample(tr_runtime *rt, tr__sample **out);

/* Writes the /actors JSON: with no first sample (before NULL), the top
 * `q->top` by totals since spawn; with one, by the differences since it
 * (actors spawned since count from zero; those gone are left out). 0, or
 * a negative code. */
int tr__actors_write(tr_runtime *rt, const tr__actors_query *q, const tr__sample *before,
                     size_t n_before, tr__obuf *b);

#endif
