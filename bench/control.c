/* control — the machine's own run-to-run spread, with no troupe code in
 * the measured part: `threads` plain threads share n operations, each an
 * allocation churn step (free a block of 64-256 bytes from a live set of
 * 4,096 a thread, allocate another, write its lines) and a few
 * arithmetic steps; the same work every run.
 *
 * It is timed as the actor benchmarks are (bench_start): the threads are
 * made before the clock starts and wait, asleep on a barrier, to be let
 * go together. Under BENCH_REPS its spread (max / min) is the spread a
 * run of that length gets from the machine alone (a shared VM's other
 * tenants, page faults, the vCPUs' speed): a benchmark's spread near it
 * says nothing about troupe. Its rate at many threads against its rate at
 * few is what oversubscription costs threads that never yield.
 *
 * After the timed part it measures one more thing, off the clock: what
 * it costs to move a cache line between two CPUs (handoff_ns: two
 * threads pinned to the first two CPUs this process may use pass a line
 * back and forth HANDOFFS times, or for HANDOFF_SECS if that is less).
 * On a shared VM that cost moves with where the host puts the vCPUs —
 * seen at 41-61 ns in some minutes and 143-224 ns in others on the same
 * machine — and a benchmark whose workers talk to each other moves with
 * it: skynet at small size (its children answering parents on the other
 * worker) ran at 9.4-13.9 M actors/s beside the first figures and at
 * 5.9-8.7 M beside the second. A spread that goes with handoff_ns is the
 * machine's. With fewer than two CPUs it prints handoff_ns=0.
 */
#include "bench.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>

enum { LIVE = 4096 };

typedef struct worker {
    pthread_t thread;
    pthread_barrier_t *go;
    uint64_t ops;      /* this thread's share */
    uint64_t seed;
    uint64_t wrong;    /* blocks that did not hold what was written */
    uint64_t done;
} worker;

static void *churn(void *arg)
{
    worker *w = arg;
    uint64_t *live[LIVE] = { 0 };
    uint64_t s = w->seed;
    pthread_barrier_wait(w->go);
    for (uint64_t i = 0; i < w->ops; i++) {
        s = s * 6364136223846793005u + 1442695040888963407u;
        unsigned k = (unsigned)(s >> 33) % LIVE;
        if (live[k] != NULL) {
            w->wrong += live[k][0] != k;
            free(live[k]);
        }
        size_t size = 64 + 64 * ((s >> 20) & 3);
        uint64_t *p = malloc(size);
        if (p == NULL)
            bench_die("control", "malloc", TR_ENOMEM);
        for (size_t at = 0; at < size / sizeof *p; at += 8)
            p[at] = k;
        live[k] = p;
        w->done++;
    }
    for (unsigned k = 0; k < LIVE; k++)
        free(live[k]);
    return NULL;
}

/* ---- the hand-off between two CPUs (off the clock) ---- */

enum { HANDOFFS = 100000 };
#define HANDOFF_SECS 0.25 /* at most: a CPU shared with a busy process slows it */

typedef struct handoff {
    _Alignas(64) atomic_uint turn; /* 0: the main thread's move, 1: the other's */
    _Alignas(64) atomic_bool stop; /* the main thread is done */
    cpu_set_t cpu;                 /* the other thread's CPU */
} handoff;

static void pin(pthread_t t, const cpu_set_t *cpu)
{
    pthread_setaffinity_np(t, sizeof *cpu, cpu); /* unpinned, the figure is rougher */
}

static void *hand_back(void *arg)
{
    handoff *h = arg;
    pin(pthread_self(), &h->cpu);
    for (;;) {
        while (atomic_load_explicit(&h->turn, memory_order_acquire) != 1)
            if (atomic_load_explicit(&h->stop, memory_order_relaxed))
                return NULL;
        atomic_store_explicit(&h->turn, 0, memory_order_release);
    }
}

/* Nanoseconds a hand-off of one line between the first two CPUs of the
 * process's mask, or 0 with fewer than two. */
static double handoff_ns(void)
{
    cpu_set_t mask, mine;
    int cpus[2], found = 0;
    if (sched_getaffinity(0, sizeof mask, &mask) != 0)
        return 0;
    for (int c = 0; c < CPU_SETSIZE && found < 2; c++)
        if (CPU_ISSET(c, &mask))
            cpus[found++] = c;
    if (found < 2)
        return 0;
    static handoff h;
    atomic_store(&h.turn, 0);
    atomic_store(&h.stop, false);
    CPU_ZERO(&h.cpu);
    CPU_SET(cpus[1], &h.cpu);
    CPU_ZERO(&mine);
    CPU_SET(cpus[0], &mine);
    pthread_t other;
    if (pthread_create(&other, NULL, hand_back, &h) != 0)
        return 0;
    pin(pthread_self(), &mine);
    double t0 = bench_now(), secs = 0;
    unsigned done = 0;
    while (done < HANDOFFS && ((done & 1023) != 0 || (secs = bench_now() - t0) < HANDOFF_SECS)) {
        while (atomic_load_explicit(&h.turn, memory_order_acquire) != 0)
            ;
        atomic_store_explicit(&h.turn, 1, memory_order_release);
        done++;
    }
    while (atomic_load_explicit(&h.turn, memory_order_acquire) != 0)
        ;
    secs = bench_now() - t0;
    atomic_store(&h.stop, true);
    pthread_join(other, NULL);
    sched_setaffinity(0, sizeof mask, &mask);
    return done > 0 ? secs * 1e9 / (2.0 * done) : 0;
}

int main(int argc, char **argv)
{
    bench_param params[] = { { "n", 10000000, 1, 0 } };
    bench b;
    bench_init(&b, "control", params, 1, argc, argv);
    b.impl = "none"; /* the runtime is made (bench_init) but never started */
    uint64_t n = params[0].value;
    unsigned threads = tr_runtime_threads(b.rt);

    worker *ws = calloc(threads, sizeof *ws);
    pthread_barrier_t go;
    if (ws == NULL || pthread_barrier_init(&go, NULL, threads + 1) != 0)
        bench_die(b.name, "setting up", TR_ENOMEM);
    for (unsigned i = 0; i < threads; i++) {
        ws[i] = (worker){ .go = &go, .ops = n * (i + 1) / threads - n * i / threads,
                          .seed = i + 1 };
        if (pthread_create(&ws[i].thread, NULL, churn, &ws[i]) != 0)
            bench_die(b.name, "pthread_create", TR_ENOMEM);
    }
    usleep(20 * 1000); /* every thread asleep on the barrier, as parked workers are */
    double t0 = bench_now();
    pthread_barrier_wait(&go);
    uint64_t done = 0, wrong = 0;
    for (unsigned i = 0; i < threads; i++) {
        pthread_join(ws[i].thread, NULL);
        done += ws[i].done;
        wrong += ws[i].wrong;
    }
    double secs = bench_now() - t0;

    bench_check(&b, done == n, "%" PRIu64 " operations done, want %" PRIu64, done, n);
    bench_check(&b, wrong == 0, "%" PRIu64 " blocks did not hold what was written", wrong);
    pthread_barrier_destroy(&go);
    free(ws);
    snprintf(b.extra, sizeof b.extra, "handoff_ns=%.0f", handoff_ns());
    return bench_finish(&b, secs, bench_rate(n, secs), "operations");
}
