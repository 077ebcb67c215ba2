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
 */
#include "bench.h"

#include <pthread.h>

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
    return bench_finish(&b, secs, bench_rate(n, secs), "operations");
}
