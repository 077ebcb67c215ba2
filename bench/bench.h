/* bench.h — what every benchmark program shares: flags, clock, memory,
 * checks and the result line (docs/bench.md describes them, and every
 * benchmark).
 *
 * A benchmark declares its sizes as a table of bench_param, calls
 * bench_init (which parses argv and creates the runtime), does its work,
 * checks it with bench_check, and ends with `return bench_finish(...)`.
 */
#ifndef BENCH_H
#define BENCH_H

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <troupe.h>

/* Messages a sender sends per message it handles before it sends itself a
 * CONTINUE, so that the receivers get the worker. The runtime handles an
 * actor's own CONTINUE in the same turn, up to its batch (64), so one turn
 * of a sender emits 64 * BENCH_CHUNK messages; 32 keeps that burst within
 * what fjthroughput's 60 workers drain in a turn each, so mailboxes stay
 * short. (Measured on 2 cores: 256-512 made fjthroughput and fjcreation up
 * to 5x slower, with mailboxes of hundreds of MB.) */
#ifndef BENCH_CHUNK
#define BENCH_CHUNK 32
#endif

typedef struct bench_param {
    const char *name;   /* flag without "--" */
    uint64_t value;     /* the default, replaced by the flag's value */
    uint64_t min;       /* smallest value that makes sense */
    uint64_t max;       /* largest, or 0 for no limit */
} bench_param;

typedef struct bench {
    const char *name;
    const char *impl;   /* what is measured: "troupe" (bench_init's) */
    bench_param *params;
    size_t nparams;
    unsigned threads;   /* as asked; 0 = the runtime's default */
    tr_runtime *rt;
    bool ok;            /* false once any check has failed */
    char extra[256];    /* further key=value figures for the result line */
} bench;

/* The defaults are shown only for --help: after a bad flag, earlier flags
 * have already replaced them. */
static inline void bench_usage(const bench *b, FILE *to, bool defaults)
{
    fprintf(to, "usage: %s", b->name);
    for (size_t i = 0; i < b->nparams; i++)
        fprintf(to, " [--%s N]", b->params[i].name);
    fprintf(to, " [--threads T]\n");
    if (!defaults)
        return;
    fprintf(to, "defaults:");
    for (size_t i = 0; i < b->nparams; i++)
        fprintf(to, " --%s %" PRIu64, b->params[i].name, b->params[i].value);
    fprintf(to, " --threads 0 (online CPUs)\n");
}

static inline _Noreturn void bench_die(const char *name, const char *what, int err)
{
    fprintf(stderr, "%s: %s: %s\n", name, what, tr_strerror(err));
    exit(1);
}

/* Calls made inside behaviours have nowhere to return an error to, and a
 * benchmark that lost a message would measure nothing: stop at once. */
#define BENCH_TRY(call)                                                     \
    do {                                                                    \
        int bench_err_ = (call);                                            \
        if (bench_err_ < 0)                                                 \
            bench_die(__FILE__, #call, bench_err_);                         \
    } while (0)

static inline bool bench_parse_u64(const char *s, uint64_t *out)
{
    char *end;
    if (*s < '0' || *s > '9')
        return false;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno != 0 || *end != '\0')
        return false;
    *out = v;
    return true;
}

static inline _Noreturn void bench_bad_usage(const bench *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "%s: ", b->name);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    bench_usage(b, stderr, false);
    exit(2);
}

/* Parses `--name value` flags into params and --threads, then creates the
 * runtime. Exits 2 on a bad command line. */
static inline void bench_init(bench *b, const char *name, bench_param *params,
                              size_t nparams, int argc, char **argv)
{
    *b = (bench){ .name = name, .impl = "troupe", .params = params, .nparams = nparams,
                  .ok = true };
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
            bench_usage(b, stdout, true);
            exit(0);
        }
    }
    for (int i = 1; i < argc; i += 2) {
        const char *arg = argv[i], *flag = arg + 2;
        size_t p = 0;
        if (strncmp(arg, "--", 2) != 0)
            bench_bad_usage(b, "unexpected argument '%s'", arg);
        while (p < nparams && strcmp(flag, params[p].name) != 0)
            p++;
        bool threads = strcmp(flag, "threads") == 0;
        if (p == nparams && !threads)
            bench_bad_usage(b, "unknown flag '%s'", arg);
        uint64_t v;
        if (i + 1 >= argc)
            bench_bad_usage(b, "%s needs a value", arg);
        if (!bench_parse_u64(argv[i + 1], &v))
            bench_bad_usage(b, "%s: '%s' is not a non-negative integer", arg, argv[i + 1]);
        if (threads) {
            if (v > TR_MAX_THREADS)
                bench_bad_usage(b, "--threads must be at most %d", TR_MAX_THREADS);
            b->threads = (unsigned)v;
            continue;
        }
        if (v < params[p].min)
            bench_bad_usage(b, "%s must be at least %" PRIu64, arg, params[p].min);
        if (params[p].max != 0 && v > params[p].max)
            bench_bad_usage(b, "%s must be at most %" PRIu64, arg, params[p].max);
        params[p].value = v;
    }

    tr_config cfg;
    tr_config_init(&cfg);
    if (b->threads != 0)
        cfg.threads = b->threads;
    int err = tr_runtime_create(&cfg, &b->rt);
    if (err < 0)
        bench_die(name, "tr_runtime_create", err);
}

/* Seconds on a clock that never jumps. */
static inline double bench_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* Resident memory of this process in bytes (second field of statm). */
static inline uint64_t bench_rss(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    unsigned long long size = 0, resident = 0;
    if (f == NULL || fscanf(f, "%llu %llu", &size, &resident) != 2) {
        perror("/proc/self/statm");
        exit(1);
    }
    fclose(f);
    return (uint64_t)resident * (uint64_t)sysconf(_SC_PAGESIZE);
}

/* Records a check; a failed one is explained on stderr and turns the
 * result line's check=ok into check=FAIL. */
static inline bool bench_check(bench *b, bool cond, const char *fmt, ...)
{
    if (!cond) {
        va_list ap;
        va_start(ap, fmt);
        fprintf(stderr, "%s: check failed: ", b->name);
        vfprintf(stderr, fmt, ap);
        fputc('\n', stderr);
        va_end(ap);
        b->ok = false;
    }
    return cond;
}

/* The counters every benchmark can vouch for once the runtime is quiescent:
 * nothing lost, nothing dropped, and the expected number of actors left
 * (UINT64_MAX to skip that one). */
static inline void bench_check_stats(bench *b, uint64_t handled, uint64_t alive)
{
    tr_stats s;
    tr_runtime_stats(b->rt, &s);
    bench_check(b, s.dead_letters == 0, "dead_letters = %" PRIu64 ", want 0",
                s.dead_letters);
    bench_check(b, s.messages_handled == handled,
                "messages_handled = %" PRIu64 ", want %" PRIu64,
                s.messages_handled, handled);
    bench_check(b, s.messages_sent == s.messages_handled + s.dead_letters,
                "messages_sent = %" PRIu64 ", but handled + dead = %" PRIu64,
                s.messages_sent, s.messages_handled + s.dead_letters);
    bench_check(b, s.actors_alive == s.actors_spawned - s.actors_stopped,
                "actors_alive = %" PRIu64 ", but spawned - stopped = %" PRIu64,
                s.actors_alive, s.actors_spawned - s.actors_stopped);
    if (getenv("BENCH_STATS") != NULL) {
        fprintf(stderr, "%s: steals %" PRIu64 ", parks %" PRIu64 ", pool mallocs %" PRIu64 "\n",
                b->name, s.steals, s.parks, s.pool_mallocs);
        /* Who ran what: turns and steals per worker. */
        tr_worker_metrics w[64];
        unsigned n = tr_runtime_metrics(b->rt, &(tr_metrics){0}, w, 64);
        for (unsigned i = 0; i < n && i < 64; i++)
            fprintf(stderr, "%s: worker %u turns %" PRIu64 " steals %" PRIu64 " parks %" PRIu64
                    "\n", b->name, i, w[i].turns, w[i].steals, w[i].parks);
    }
    if (alive != UINT64_MAX)
        bench_check(b, s.actors_alive == alive,
                    "actors_alive = %" PRIu64 ", want %" PRIu64,
                    s.actors_alive, alive);
}

/* Prints the result line, tears the runtime down and gives main's exit
 * status: 0, or 1 when a check failed. */
static inline int bench_finish(bench *b, double secs, double rate, const char *unit)
{
    printf("bench=%s impl=%s threads=%u", b->name, b->impl, tr_runtime_threads(b->rt));
    for (size_t i = 0; i < b->nparams; i++)
        printf(" %s=%" PRIu64, b->params[i].name, b->params[i].value);
    if (b->extra[0] != '\0')
        printf(" %s", b->extra);
    printf(" secs=%.3f rate=%.0f unit=%s check=%s\n", secs, rate, unit,
           b->ok ? "ok" : "FAIL");
    fflush(stdout);
    tr_runtime_destroy(b->rt);
    b->rt = NULL;
    return b->ok ? 0 : 1;
}

/* Work per second, safe against a clock too coarse for a tiny run. */
static inline double bench_rate(uint64_t work, double secs)
{
    return (double)work / (secs > 1e-9 ? secs : 1e-9);
}

/* Checks what tr_runtime_run or tr_runtime_join (`call`) returned. */
static inline void bench_ran(bench *b, const char *call, int r)
{
    if (r < 0)
        bench_die(b->name, call, r);
    if (r != 0)
        bench_check(b, false, "%s returned %d (stopped), want 0", call, r);
}

/* Runs the runtime to quiescence, thread start included. */
static inline void bench_run(bench *b)
{
    bench_ran(b, "tr_runtime_run", tr_runtime_run(b->rt));
}

/* Starts the workers before the measured part, held from quiescence, and
 * returns once each has parked for want of work: what the benchmark then
 * times is its work on a runtime already up, as in a program that has run
 * a while, not the making of threads. (Making them inside the measured
 * part put 2-4 ms of this VM's thread start and vCPU wake-up into runs of
 * 6-40 ms at small sizes: up to 1.5x between runs of the same size.) The
 * work starts with the first send after bench_start; bench_join ends it. */
static inline void bench_start(bench *b)
{
    int r = tr_runtime_hold(b->rt);
    if (r < 0)
        bench_die(b->name, "tr_runtime_hold", r);
    if ((r = tr_runtime_start(b->rt)) < 0)
        bench_die(b->name, "tr_runtime_start", r);
    tr_worker_metrics w[TR_MAX_THREADS];
    for (int waited_ms = 0;; waited_ms++) {
        unsigned n = tr_runtime_metrics(b->rt, NULL, w, TR_MAX_THREADS), parked = 0;
        while (parked < n && w[parked].parks != 0)
            parked++;
        if (n != 0 && parked == n)
            return;
        if (waited_ms == 1000) {
            fprintf(stderr, "%s: %u of %u workers parked after 1 s; timing anyway\n",
                    b->name, parked, n);
            return;
        }
        usleep(1000);
    }
}

/* Lets the runtime started by bench_start go quiescent, and waits for it:
 * the end of the measured part. */
static inline void bench_join(bench *b)
{
    int r = tr_runtime_release(b->rt);
    if (r < 0)
        bench_die(b->name, "tr_runtime_release", r);
    bench_ran(b, "tr_runtime_join", tr_runtime_join(b->rt));
}

/* p, the payload of m as TR_PAYLOAD gives it, when it had the size
 * wanted; a message of the wrong size stops the benchmark. */
static inline const void *bench_payload(const tr_msg *m, const void *p, size_t want)
{
    if (p == NULL) {
        fprintf(stderr, "bench: message of type %" PRIu32 " has %" PRIu32
                " bytes, want %zu\n", m->type, m->len, want);
        exit(1);
    }
    return p;
}

/* The payload of m as a `const T *`: exactly one T, or the benchmark
 * stops. m is evaluated twice: pass a name. */
#define BENCH_PAYLOAD(m, T) ((const T *)bench_payload((m), TR_PAYLOAD(m, T), sizeof(T)))

/* The 64-bit payload of a message that carries one. */
static inline uint64_t bench_u64(const tr_msg *m)
{
    return *BENCH_PAYLOAD(m, uint64_t);
}

#endif
