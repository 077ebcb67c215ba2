/* micro.h — what the micro benchmarks of bench/micro/ share.
 *
 * Each program times one of the runtime's internal structures on its own,
 * in the manner of Concurrency Kit's regressions/: a few cases, each
 * printing one line such as
 *
 *   micro=mpsc case=1p1c threads=2 ops=10000000 secs=0.410 ns_per_op=41.0 mops=24.4
 *
 * An op is one element through the structure (put in and taken out);
 * ns_per_op is wall-clock time over ops, all threads together, and mops
 * its inverse in millions per second. Every case checks its own counts: a
 * failed check is explained on stderr and the program exits 1.
 *
 *   --ops N      elements per case (default: the case's own, well under a
 *                second on a 2-core machine)
 *   --case NAME  run only that case
 *
 * and the program's own flags (a bench_param table, as in ../bench.h).
 *
 * The main thread runs on the first CPU the process may use, and the
 * threads of a case on the next ones in turn (wrapping round). Left to
 * itself, the kernel sometimes puts a producer and its consumer on one
 * CPU, which turns a cross-core figure into a time-slicing one, and runs
 * stop being comparable.
 */
#ifndef MICRO_H
#define MICRO_H

#include <ck_pr.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>

#include "../bench.h"

/* What threads must not share by accident. */
#define MICRO_LINE 64

typedef struct micro {
    const char *name;
    const char *only;    /* --case, or NULL for every case */
    uint64_t ops;        /* --ops, or 0 for each case's default */
    bench_param *params; /* the program's own flags */
    size_t nparams;
    unsigned ran;        /* cases run */
    cpu_set_t cpus;      /* the CPUs the process may use */
    unsigned next;       /* the CPU, in that set, of the case's next thread */
    bool ok;
} micro;

/* Pins thread t to the k-th CPU (modulo their number) of m->cpus. */
static inline void micro_pin(const micro *m, pthread_t t, unsigned k)
{
    int n = CPU_COUNT(&m->cpus);
    if (n <= 1)
        return;
    k %= (unsigned)n;
    for (int cpu = 0; cpu < CPU_SETSIZE; cpu++) {
        if (CPU_ISSET(cpu, &m->cpus) && k-- == 0) {
            cpu_set_t one;
            CPU_ZERO(&one);
            CPU_SET(cpu, &one);
            pthread_setaffinity_np(t, sizeof one, &one);
            return;
        }
    }
}

static inline void micro_usage(const micro *m, FILE *to)
{
    fprintf(to, "usage: %s [--ops N] [--case NAME]", m->name);
    for (size_t i = 0; i < m->nparams; i++)
        fprintf(to, " [--%s N]", m->params[i].name);
    fputc('\n', to);
}

static inline void micro_bad_usage(const micro *m, const char *why, const char *arg)
{
    fprintf(stderr, "%s: %s '%s'\n", m->name, why, arg);
    micro_usage(m, stderr);
    exit(2);
}

/* Parses the flags; exits 2 on a bad command line. */
static inline void micro_init(micro *m, const char *name, bench_param *params, size_t nparams,
                              int argc, char **argv)
{
    *m = (micro){ .name = name, .params = params, .nparams = nparams, .ok = true };
    for (int i = 1; i < argc; i += 2) {
        const char *arg = argv[i];
        if (strcmp(arg, "-h") == 0 || strcmp(arg, "--help") == 0) {
            micro_usage(m, stdout);
            exit(0);
        }
        if (strncmp(arg, "--", 2) != 0)
            micro_bad_usage(m, "unexpected argument", arg);
        if (i + 1 >= argc)
            micro_bad_usage(m, "no value for", arg);
        const char *flag = arg + 2, *val = argv[i + 1];
        if (strcmp(flag, "case") == 0) {
            m->only = val;
            continue;
        }
        uint64_t v;
        if (!bench_parse_u64(val, &v))
            micro_bad_usage(m, "not a non-negative integer:", val);
        if (strcmp(flag, "ops") == 0) {
            if (v == 0)
                micro_bad_usage(m, "--ops must be at least 1, not", val);
            m->ops = v;
            continue;
        }
        size_t p = 0;
        while (p < nparams && strcmp(flag, params[p].name) != 0)
            p++;
        if (p == nparams)
            micro_bad_usage(m, "unknown flag", arg);
        if (v < params[p].min || (params[p].max != 0 && v > params[p].max))
            micro_bad_usage(m, "value out of range:", val);
        params[p].value = v;
    }
    if (sched_getaffinity(0, sizeof m->cpus, &m->cpus) != 0)
        CPU_ZERO(&m->cpus);
    micro_pin(m, pthread_self(), 0);
}

/* Whether to run case `name`; if so, *ops is its element count. */
static inline bool micro_case(micro *m, const char *name, uint64_t default_ops, uint64_t *ops)
{
    if (m->only != NULL && strcmp(m->only, name) != 0)
        return false;
    *ops = m->ops != 0 ? m->ops : default_ops;
    m->ran++;
    m->next = 1;
    return true;
}

/* The result line; `extra` (or NULL) adds key=value figures at the end. */
static inline void micro_report(const micro *m, const char *name, unsigned threads,
                                uint64_t ops, double secs, const char *extra)
{
    double ns = secs * 1e9 / (double)ops;
    printf("micro=%s case=%s threads=%u ops=%" PRIu64 " secs=%.3f ns_per_op=%.1f mops=%.1f%s%s\n",
           m->name, name, threads, ops, secs, ns, 1e3 / ns, extra != NULL ? " " : "",
           extra != NULL ? extra : "");
    fflush(stdout);
}

/* Records a check of case `name`; a failed one is explained on stderr. */
static inline bool micro_check(micro *m, const char *name, bool cond, const char *fmt, ...)
{
    if (!cond) {
        va_list ap;
        va_start(ap, fmt);
        fprintf(stderr, "%s: %s: check failed: ", m->name, name);
        vfprintf(stderr, fmt, ap);
        fputc('\n', stderr);
        va_end(ap);
        m->ok = false;
    }
    return cond;
}

/* main's exit status: 0, 1 if a check failed, 2 if --case named none. */
static inline int micro_exit(const micro *m)
{
    if (m->only != NULL && m->ran == 0) {
        fprintf(stderr, "%s: no case named '%s'\n", m->name, m->only);
        return 2;
    }
    return m->ok ? 0 : 1;
}

/* ---- memory, threads ----------------------------------------------------- */

static inline void micro_oom(const micro *m)
{
    fprintf(stderr, "%s: out of memory\n", m->name);
    exit(1);
}

/* Zeroed memory for n objects of `size` bytes, aligned to a cache line
 * (size a multiple of MICRO_LINE, as for types with a MICRO_LINE member);
 * exits if there is none. */
static inline void *micro_alloc(const micro *m, size_t n, size_t size)
{
    size_t bytes = (n * size + MICRO_LINE - 1) / MICRO_LINE * MICRO_LINE;
    void *p = aligned_alloc(MICRO_LINE, bytes != 0 ? bytes : MICRO_LINE);
    if (p == NULL)
        micro_oom(m);
    return memset(p, 0, bytes);
}


/* Starts a thread of the current case, on the next CPU. */
static inline pthread_t micro_thread(micro *m, void *(*fn)(void *), void *arg)
{
    pthread_t t;
    int err = pthread_create(&t, NULL, fn, arg);
    if (err != 0) {
        fprintf(stderr, "pthread_create: %s\n", strerror(err));
        exit(1);
    }
    micro_pin(m, t, m->next++);
    return t;
}

static inline void micro_join(pthread_t t)
{
    int err = pthread_join(t, NULL);
    if (err != 0) {
        fprintf(stderr, "pthread_join: %s\n", strerror(err));
        exit(1);
    }
}

/* Spin politely: a pause, and every 128 calls the CPU to another thread
 * (a 2-core machine runs more threads than cores in some cases). */
static inline void micro_relax(unsigned *spins)
{
    if (++*spins % 128 == 0)
        sched_yield();
    else
        ck_pr_stall();
}

/* Lines the threads of a case up, so that the clock starts when all of
 * them are running. */
typedef struct micro_gate {
    atomic_uint ready;
    atomic_bool go;
} micro_gate;

static inline void micro_gate_init(micro_gate *g)
{
    atomic_init(&g->ready, 0);
    atomic_init(&g->go, false);
}

/* Each thread of the case, before its timed work. */
static inline void micro_gate_wait(micro_gate *g)
{
    unsigned spins = 0;
    atomic_fetch_add(&g->ready, 1);
    while (!atomic_load(&g->go))
        micro_relax(&spins);
}

/* The main thread: waits for `threads` threads, then starts them and the
 * clock. Returns the start time. */
static inline double micro_gate_open(micro_gate *g, unsigned threads)
{
    unsigned spins = 0;
    while (atomic_load(&g->ready) < threads)
        micro_relax(&spins);
    double t0 = bench_now();
    atomic_store(&g->go, true);
    return t0;
}

/* ---- flow control for recycled elements ----------------------------------- */

/* A producer that re-uses a window of W elements may put element number s
 * in once its consumers have finished with s - W: they add what they have
 * finished with to `done` (in batches), the producer reads it only when it
 * reaches the end of what it knows to be free. One per producer, on a
 * cache line of its own. */
typedef struct micro_credit {
    _Alignas(MICRO_LINE) atomic_uint_fast64_t done;
} micro_credit;

/* The producer: waits until element number s may be put in; *known caches
 * the last value of done it read. */
static inline void micro_credit_wait(micro_credit *c, uint64_t *known, uint64_t s, uint64_t window)
{
    unsigned spins = 0;
    while (s - *known >= window) {
        *known = atomic_load_explicit(&c->done, memory_order_acquire);
        if (s - *known >= window)
            micro_relax(&spins);
    }
}

/* A consumer: it has finished with n more of the producer's elements. */
static inline void micro_credit_add(micro_credit *c, uint64_t n)
{
    atomic_fetch_add_explicit(&c->done, n, memory_order_release);
}

#endif
