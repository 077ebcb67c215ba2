/* sched/runtime.c — the runtime's life: create, run, join, stop, destroy,
 * and the entry points for threads outside it. */
#include <errno.h>
#include <limits.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "../mailbox/msg.h"
#include "../sys/sys.h"
#include "sched.h"
#include "troupe/error.h"

#define DEFAULT_BATCH 64
#define MAX_BATCH 65536
#define DEFAULT_WATCHDOG_MS 100

/* The CPUs this process may run on (its affinity mask: taskset, cgroup
 * cpusets), at least 1. */
static unsigned cpus_available(void)
{
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) == 0 && CPU_COUNT(&set) > 0)
        return (unsigned)CPU_COUNT(&set);
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (unsigned)n : 1;
}

/* The number environment variable `name` holds, if it holds one: decimal
 * digits only, at most max. */
static bool env_number(const char *name, uint64_t max, uint64_t *out)
{
    const char *env = getenv(name);
    if (env == NULL || *env < '0' || *env > '9')
        return false;
    char *end;
    errno = 0;
    unsigned long long v = strtoull(env, &end, 10);
    if (*end != '\0' || errno != 0 || v > max)
        return false;
    *out = v;
    return true;
}

static unsigned default_threads(void)
{
    uint64_t n;
    if (env_number("TROUPE_THREADS", TR_MAX_THREADS, &n) && n >= 1)
        return (unsigned)n;
    unsigned cpus = cpus_available();
    return cpus > TR_MAX_THREADS ? TR_MAX_THREADS : cpus;
}

/* TROUPE_PIN: "1" binds each worker to one CPU; unset, empty or "0", not.
 * Anything else is said so, and not taken: tr_config_init cannot fail. */
static bool default_pin(void)
{
    const char *env = getenv("TROUPE_PIN");
    if (env == NULL || *env == '\0' || strcmp(env, "0") == 0)
        return false;
    if (strcmp(env, "1") == 0)
        return true;
    fprintf(stderr, "troupe: TROUPE_PIN=%s is not 0 or 1: workers not bound to CPUs\n", env);
    return false;
}

/* With c->pin, worker i's CPU: the (i mod n)-th of the n this process may
 * run on now, so that workers spread over all of them before two share
 * one; else -1 for every worker. */
static void assign_cpus(const tr_config *c, tr__worker *workers)
{
    cpu_set_t set;
    int n = 0;
    if (c->pin && sched_getaffinity(0, sizeof set, &set) == 0)
        n = CPU_COUNT(&set);
    for (unsigned i = 0; i < c->threads; i++) {
        workers[i].cpu = workers[i].bound = -1;
        int k = n > 0 ? (int)(i % (unsigned)n) : -1; /* the k-th CPU of the set */
        for (int cpu = 0; k >= 0 && cpu < CPU_SETSIZE; cpu++)
            if (CPU_ISSET(cpu, &set) && k-- == 0)
                workers[i].cpu = cpu;
    }
}

/* Starts worker w's thread, bound to w->cpu if it has one. A binding the
 * kernel refuses (the CPU taken out of the process's set since) leaves
 * the worker unbound, not unstarted: the binding is a placement hint. */
static int start_thread(tr__worker *w)
{
    if (w->cpu >= 0) {
        pthread_attr_t attr;
        cpu_set_t one;
        CPU_ZERO(&one);
        CPU_SET(w->cpu, &one);
        int err = pthread_attr_init(&attr);
        if (err == 0) {
            err = pthread_attr_setaffinity_np(&attr, sizeof one, &one);
            if (err == 0)
                err = pthread_create(&w->thread, &attr, tr__worker_main, w);
            pthread_attr_destroy(&attr);
        }
        if (err == 0) {
            ck_pr_store_int(&w->bound, w->cpu);
            return 0;
        }
    }
    ck_pr_store_int(&w->bound, -1);
    return pthread_create(&w->thread, NULL, tr__worker_main, w);
}

static unsigned default_watchdog_ms(void)
{
    uint64_t ms;
    return env_number("TROUPE_WATCHDOG_MS", UINT_MAX, &ms) ? (unsigned)ms : DEFAULT_WATCHDOG_MS;
}

/* TROUPE_SIM_SEED: a decimal seed, "0" for one picked by the runtime;
 * unset or empty, off. A value that is not a number is said so, and the
 * run is not simulated: tr_config_init cannot fail. */
static uint64_t default_sim_seed(void)
{
    const char *env = getenv("TROUPE_SIM_SEED");
    if (env == NULL || *env == '\0')
        return 0;
    uint64_t seed;
    if (!env_number("TROUPE_SIM_SEED", TR_SIM_ANY_SEED - 1, &seed)) {
        fprintf(stderr, "troupe: TROUPE_SIM_SEED=%s is not a seed (a decimal number below "
                        "2^64-1, 0 to pick one): not simulating\n", env);
        return 0;
    }
    return seed == 0 ? TR_SIM_ANY_SEED : seed;
}

void tr_config_init(tr_config *cfg)
{
    if (cfg == NULL)
        return;
    cfg->threads = default_threads();
    cfg->batch = DEFAULT_BATCH;
    cfg->watchdog_ms = default_watchdog_ms();
    const char *trace = getenv("TROUPE_TRACE");
    cfg->trace_path = trace != NULL && *trace != '\0' ? trace : NULL;
    cfg->sim_seed = default_sim_seed();
    cfg->sim_options = NULL; /* TROUPE_SIM, read by the simulation itself */
    cfg->pin = default_pin();
}

/* A runtime in simulation has one worker and no watchdog (there is no
 * monitor thread to run it; turns are timed by the simulator instead),
 * and the simulation begins before anything reads the clock: the wheel
 * and the coarse clock start at virtual time. */
static int sim_begin(tr_config *c)
{
    if (c->sim_seed == 0) /* the clock and the sockets are the simulation's */
        return tr__sim_on() ? TR_EBUSY : 0;
    c->threads = 1;
    c->watchdog_ms = 0;
    return tr__sim_enter(c->sim_seed, c->sim_options);
}

/* Undoes sim_begin (c as it left it): a simulated runtime is gone, and
 * the last one ends the simulation, and its network goes with it. */
static void sim_end(const tr_config *c)
{
    if (c->sim_seed != 0 && tr__sim_leave())
        tr__simnet_end();
}

/* Undoes a create that failed before it made its workers. */
static int create_failed(tr_runtime *rt, bool actors, int err)
{
    if (actors)
        tr__actors_fini(rt);
    sim_end(&rt->cfg);
    free(rt);
    return err;
}

int tr_runtime_create(const tr_config *cfg, tr_runtime **out)
{
    if (out == NULL)
        return TR_EINVAL;
    *out = NULL;
    tr_config c;
    tr_config_init(&c);
    if (cfg != NULL) {
        if (cfg->threads > TR_MAX_THREADS || cfg->batch > MAX_BATCH)
            return TR_EINVAL;
        if (cfg->threads != 0)
            c.threads = cfg->threads;
        if (cfg->batch != 0)
            c.batch = cfg->batch;
        c.watchdog_ms = cfg->watchdog_ms;
        c.trace_path = cfg->trace_path;
        c.sim_seed = cfg->sim_seed;
        c.sim_options = cfg->sim_options;
        c.pin = cfg->pin;
    }
    int err = sim_begin(&c);
    if (err != 0)
        return err;

    tr_runtime *rt = aligned_alloc(CK_MD_CACHELINE, sizeof *rt);
    if (rt == NULL) {
        sim_end(&c);
        return TR_ENOMEM;
    }
    memset(rt, 0, sizeof *rt);
    rt->cfg = c;
    rt->cpus = cpus_available();
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    rt->start_ns = (uint64_t)now.tv_sec * 1000000000u + (uint64_t)now.tv_nsec;
    tr__actors_coarse(&rt->actors, tr__now_ns());
    tr__injectq_init(&rt->inject);
    if (tr__actors_init(rt, c.batch) != 0)
        return create_failed(rt, false, TR_ENOMEM);
    if ((err = tr__reactor_create(rt, &rt->reactor)) != 0)
        return create_failed(rt, true, err);
    rt->workers = aligned_alloc(CK_MD_CACHELINE, c.threads * sizeof *rt->workers);
    if (rt->workers == NULL) {
        tr__reactor_destroy(rt->reactor);
        return create_failed(rt, true, TR_ENOMEM);
    }
    memset(rt->workers, 0, c.threads * sizeof *rt->workers);
    assign_cpus(&c, rt->workers);
    for (unsigned i = 0; i < c.threads; i++) {
        tr__worker *w = &rt->workers[i];
        w->turner.rt = rt;
        tr__slot_cache_init(&w->turner.slots, w->slot_spares);
        w->id = i;
        w->run = tr__actor_run; /* tr__trace_turn while tracing */
        /* The scheduler's jitter from a fixed seed (an odd number times
         * i + 1: never 0), what a simulated run needs and every figure was
         * measured with (fresh seeds measured 2-4% slower on threadring
         * and fanin, within the noise but on the same side); what tr_rand
         * draws in behaviours from a fresh one, so that programs, and the
         * runtimes of one program, do not all draw the same numbers (a
         * simulated run draws from its own stream: sched/sim.c). */
        w->rng = 0x9e3779b97f4a7c15ull * (i + 1);
        w->user_rng = tr__fresh_seed(w->rng);
        tr__cx_init_worker(&w->turner.cx, rt, w);
        w->watch_every = tr__bp_watch_every(c.batch);
        w->turner.watch_countdown = w->watch_every;
        w->share_at = TR__RUNQ_CAPACITY; /* short turns, until measured */
        if (!tr__runq_init(&w->runq)) {
            tr_runtime_destroy(rt);
            return TR_ENOMEM;
        }
    }
    if ((err = tr__watchdog_create(rt, c.watchdog_ms)) != 0 ||
        (c.trace_path != NULL && (err = tr__trace_create(rt, c.trace_path)) != 0) ||
        (c.sim_seed != 0 && (err = tr__sim_attach(rt)) != 0)) {
        tr_runtime_destroy(rt);
        return err;
    }
    rt->cfg.trace_path = NULL; /* the caller's string: the trace keeps a copy */
    rt->cfg.sim_options = NULL; /* the caller's too, and read already */
    *out = rt;
    if (rt->sim != NULL)
        tr__sim_created(rt);
    return 0;
}

void tr_runtime_destroy(tr_runtime *rt)
{
    if (rt == NULL)
        return;
    if (ck_pr_load_32(&rt->running)) {
        tr_runtime_shutdown(rt);
        tr_runtime_join(rt);
    }
    tr__metrics_fini(rt);
    /* Actors first: their resources (watches) go back to the reactor and
     * their holds to the scheduler. */
    tr__actors_fini(rt);
    tr__reactor_destroy(rt->reactor);
    tr__trace_destroy(rt);
    tr__watchdog_destroy(rt);
    for (unsigned i = 0; i < rt->cfg.threads; i++) {
        tr__runq_fini(&rt->workers[i].runq);
        tr__overflow_fini(&rt->workers[i].overflow);
    }
    free(rt->workers);
    tr__sim_detach(rt);
    sim_end(&rt->cfg); /* the last one prints the trace hash */
    free(rt);
}

int tr_runtime_start(tr_runtime *rt)
{
    if (rt == NULL)
        return TR_EINVAL;
    if (tr__worker_current() != NULL)
        return TR_EDEADLK;
    if (!ck_pr_cas_32(&rt->running, 0, 1))
        return TR_EBUSY;
    ck_pr_store_32(&rt->stop, 0);
    ck_pr_store_32(&rt->done, 0);
    if (rt->sim != NULL)
        return 0; /* join runs it, on the joining thread (sim.c) */
    /* Workers take no asynchronous signals: those are for the program's
     * own threads (and signals reach actors through the reactor). A worker
     * parked in a raw futex call could otherwise sit on one indefinitely
     * under a sanitizer that defers signals to the next intercepted call. */
    sigset_t block, old;
    sigfillset(&block);
    sigdelset(&block, SIGSEGV);
    sigdelset(&block, SIGBUS);
    sigdelset(&block, SIGFPE);
    sigdelset(&block, SIGILL);
    pthread_sigmask(SIG_BLOCK, &block, &old);
    int created = 1;
    for (unsigned i = 0; i < rt->cfg.threads && created; i++) {
        if (start_thread(&rt->workers[i]) != 0) {
            created = 0;
            ck_pr_store_32(&rt->stop, 1);
            tr__sched_wake_all(rt);
            while (i-- > 0)
                pthread_join(rt->workers[i].thread, NULL);
            ck_pr_store_32(&rt->running, 0);
        }
    }
    if (created && tr__monitor_start(rt) != 0) {
        created = 0;
        ck_pr_store_32(&rt->stop, 1);
        tr__sched_wake_all(rt);
        for (unsigned i = 0; i < rt->cfg.threads; i++)
            pthread_join(rt->workers[i].thread, NULL);
        ck_pr_store_32(&rt->running, 0);
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    return created ? 0 : TR_ENOMEM;
}

int tr_runtime_join(tr_runtime *rt)
{
    if (rt == NULL)
        return TR_EINVAL;
    if (tr__worker_current() != NULL)
        return TR_EDEADLK;
    if (!ck_pr_load_32(&rt->running))
        return TR_ENOTSTARTED;
    int stopped;
    if (rt->sim != NULL) {
        if ((stopped = tr__sim_join(rt)) < 0)
            return stopped; /* another thread runs it: nothing changed */
    } else {
        for (unsigned i = 0; i < rt->cfg.threads; i++)
            pthread_join(rt->workers[i].thread, NULL);
        tr__monitor_join(rt);
        stopped = ck_pr_load_32(&rt->stop) ? 1 : 0;
    }
    if (rt->trace != NULL)
        tr__trace_write(rt);
    ck_pr_store_32(&rt->running, 0);
    return stopped;
}

int tr_runtime_run(tr_runtime *rt)
{
    int err = tr_runtime_start(rt);
    return err != 0 ? err : tr_runtime_join(rt);
}

void tr_runtime_shutdown(tr_runtime *rt)
{
    if (rt == NULL)
        return;
    ck_pr_store_32(&rt->stop, 1);
    ck_pr_fence_memory();
    tr__sched_wake_all(rt);
}

int tr_runtime_hold(tr_runtime *rt)
{
    if (rt == NULL)
        return TR_EINVAL;
    ck_pr_inc_32(&rt->holds);
    tr__monitor_wake(rt);
    return 0;
}

int tr__runtime_release_n(tr_runtime *rt, uint32_t n)
{
    uint32_t h = ck_pr_load_32(&rt->holds);
    do {
        if (h < n)
            return TR_EINVAL;
    } while (!ck_pr_cas_32_value(&rt->holds, h, h - n, &h));
    /* The last hold: if every worker is parked, one must look again. */
    if (h == n)
        tr__sched_poke(rt);
    return 0;
}

int tr_runtime_release(tr_runtime *rt)
{
    if (rt == NULL)
        return TR_EINVAL;
    return tr__runtime_release_n(rt, 1);
}

tr_ctx *tr_runtime_ctx(tr_runtime *rt)
{
    return rt != NULL ? &rt->actors.outside_cx : NULL;
}

bool tr__sched_running(tr_runtime *rt)
{
    return ck_pr_load_32(&rt->running) && !tr__sched_over(rt);
}

void tr_runtime_stats(tr_runtime *rt, tr_stats *out)
{
    if (out == NULL)
        return;
    memset(out, 0, sizeof *out);
    if (rt == NULL)
        return;
    tr__counters sum = {0};
    uint64_t steals = 0, parks = 0;
    TR__COUNTERS_ADD(&sum, &rt->actors.outside);
    for (unsigned i = 0; i < rt->cfg.threads; i++) {
        tr__worker *w = &rt->workers[i];
        TR__COUNTERS_ADD(&sum, &w->turner.count);
        steals += ck_pr_load_64(&w->steals);
        parks += ck_pr_load_64(&w->parks);
    }
    out->messages_sent = sum.sent;
    out->messages_handled = sum.handled;
    out->dead_letters = sum.dead;
    out->actors_spawned = sum.spawned;
    out->actors_stopped = sum.stopped;
    out->actors_alive = sum.spawned >= sum.stopped ? sum.spawned - sum.stopped : 0;
    out->steals = steals;
    out->parks = parks;
    out->pool_mallocs = tr__msg_pool_mallocs();
    out->actor_slots = tr__table_size(&rt->actors.table);
}

unsigned tr_runtime_threads(const tr_runtime *rt)
{
    return rt != NULL ? rt->cfg.threads : 0;
}
