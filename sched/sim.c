/* sched/sim.c — the simulator: every simulated runtime of the process run
 * on one thread, the next actor drawn from a seeded generator, time
 * virtual (base/sim.h has the process-wide state; troupe/sim.h says what
 * a simulation is).
 *
 * Where it hooks in. A simulated runtime has one worker and starts no
 * thread (runtime.c); tr_runtime_join runs the loop below on the joining
 * thread, which acts as the worker of whichever runtime it steps
 * (tr__worker_swap). The turn, the send path, the run queues, the reactor
 * and the timer wheel are the production code: a send readies an actor
 * into the worker's LIFO slot, ring or injection queue as usual, and
 * after every turn or poll the loop moves what was readied — LIFO slot,
 * ring, injection queue, in that order — into one array of runnable
 * actors (struct runnable), from which the next one is drawn. Only the
 * choices are the simulator's: which actor runs (uniform, or PCT
 * priorities), how many messages its turn may take (1..batch), how much
 * virtual time the turn takes (1..turn_ns), when the reactor is polled
 * (when the clock reaches the next timer or network event) and where the
 * clock jumps when nothing is runnable. Nothing depends on an address:
 * the array's order is that of readying, priorities are kept by slot
 * index and generation.
 *
 * Production pays nothing a message: the worker's run pointer (w->run,
 * as for the trace) is this file's turn only in a simulated runtime;
 * spawns and stops reach the trace hash through the trace's hook (the
 * runtime's `tracing` flag); timers are shuffled only when tr__sim_on
 * (reactor/timer.c).
 *
 * tr_call from a thread outside runs the same loop (tr__sched_drive) until
 * its answer has come: nothing else would run the actors it waits for.
 *
 * The end. The loop returns when the joined runtime is stopped (1), or
 * has nothing runnable and holds nothing (0: quiescent). With nothing
 * runnable anywhere and no timer or network event to come, a runtime
 * that still holds something can never go on: a liveness failure, as is
 * passing the virtual time limit; both are reported on stderr with the
 * seed, and join returns 1.
 */
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "../base/sim.h"
#include "../sys/sys.h"
#include "sched.h"
#include "troupe/error.h"

/* PCT's change points are drawn over the first PCT_TURNS turns: an
 * estimate of a run's length (the real one is known only at its end;
 * PCT's guarantee weakens, but holds, when the estimate is off). */
#define PCT_TURNS 10000
/* A turn that takes this much real time has blocked the simulation. */
#define BLOCKING_NS (50 * 1000 * 1000)

typedef struct runnable {
    tr_runtime *rt;
    tr__actor *a;
    uint64_t prio; /* PCT: higher runs first */
} runnable;

/* What the simulator keeps of one actor slot of a runtime. */
typedef struct slot_info {
    uint32_t gen;          /* the incarnation prio belongs to (0: none yet) */
    uint32_t reported_gen; /* the incarnation reported as blocking */
    uint64_t prio;
} slot_info;

struct tr__sim_rt {
    tr_runtime *next;   /* the process's simulated runtimes, by creation */
    uint64_t ordinal;   /* its place in that order: mixed with its pids */
    uint64_t runnable;  /* its actors in the array */
    slot_info *slots;
    uint32_t nslots;
};

static struct {
    tr_runtime *first;
    uint64_t created;
    runnable *q;          /* the runnable array (a max-heap under PCT) */
    size_t n, cap;
    uint64_t start_ns;    /* the virtual clock as the simulation began */
    uint64_t change[64];  /* PCT change points: turn numbers, ascending */
    unsigned changes, next_change;
    void (*hook)(tr_runtime *rt, void *arg);
    void *hook_arg;
} sim;

/* ---- per-slot records ---- */

static slot_info *info_of(tr_runtime *rt, const tr__actor *a)
{
    struct tr__sim_rt *s = rt->sim;
    if (a->index >= s->nslots) {
        uint32_t n = s->nslots != 0 ? s->nslots : 64;
        while (n <= a->index)
            n *= 2;
        slot_info *more = realloc(s->slots, n * sizeof *more);
        if (more == NULL)
            return NULL;
        memset(more + s->nslots, 0, (n - s->nslots) * sizeof *more);
        s->slots = more;
        s->nslots = n;
    }
    return &s->slots[a->index];
}

/* PCT: an actor's priority, drawn the first time its incarnation becomes
 * runnable, above every priority a change point gives (1..depth-1). */
static bool priority(tr_runtime *rt, tr__actor *a, uint64_t *prio)
{
    slot_info *i = info_of(rt, a);
    if (i == NULL)
        return false;
    uint32_t gen = ck_pr_load_32(&a->life) >> 1;
    if (i->gen != gen) {
        i->gen = gen;
        i->prio = tr__sim.depth + tr__sim_below(UINT64_C(1) << 62);
    }
    *prio = i->prio;
    return true;
}

/* ---- the runnable array ---- */

static bool above(size_t i, size_t j)
{
    return sim.q[i].prio > sim.q[j].prio;
}

static void swap(size_t i, size_t j)
{
    runnable e = sim.q[i];
    sim.q[i] = sim.q[j];
    sim.q[j] = e;
}

static void sift_up(size_t i)
{
    while (i > 0 && above(i, (i - 1) / 2)) {
        swap(i, (i - 1) / 2);
        i = (i - 1) / 2;
    }
}

static void sift_down(size_t i)
{
    for (;;) {
        size_t top = i, l = 2 * i + 1, r = l + 1;
        if (l < sim.n && above(l, top))
            top = l;
        if (r < sim.n && above(r, top))
            top = r;
        if (top == i)
            return;
        swap(i, top);
        i = top;
    }
}

static bool add(tr_runtime *rt, tr__actor *a)
{
    if (sim.n == sim.cap) {
        size_t cap = sim.cap != 0 ? 2 * sim.cap : 256;
        runnable *q = realloc(sim.q, cap * sizeof *q);
        if (q == NULL)
            return false;
        sim.q = q;
        sim.cap = cap;
    }
    uint64_t prio = 0;
    if (tr__sim.sched == TR__SIM_PCT && !priority(rt, a, &prio))
        return false;
    sim.q[sim.n++] = (runnable){.rt = rt, .a = a, .prio = prio};
    if (tr__sim.sched == TR__SIM_PCT)
        sift_up(sim.n - 1);
    rt->sim->runnable++;
    /* Readied stands for the sends and deliveries that readied it. */
    tr__sim_mix(TR__EV_SEND, tr__pid_of(a, ck_pr_load_32(&a->life)), rt->sim->ordinal);
    return true;
}

static runnable pick(void)
{
    runnable e;
    if (tr__sim.sched == TR__SIM_PCT) {
        e = sim.q[0];
        sim.q[0] = sim.q[--sim.n];
        sift_down(0);
    } else {
        size_t i = (size_t)tr__sim_below(sim.n);
        e = sim.q[i];
        sim.q[i] = sim.q[--sim.n];
    }
    e.rt->sim->runnable--;
    return e;
}

/* Moves what rt's worker and injection queue hold into the array, in a
 * fixed order. False if the array could not grow (what is left stays in
 * the injection queue). */
static bool gather(tr_runtime *rt)
{
    tr__worker *w = &rt->workers[0];
    tr__actor *a = w->lifo;
    w->lifo = NULL;
    if (w->held != NULL) { /* never: the simulator's ring never fills */
        tr__injectq_push(&rt->inject, w->held);
        w->held = NULL;
    }
    for (;;) {
        if (a == NULL && (a = tr__runq_pop(&w->runq)) == NULL &&
            tr__overflow_take(&w->overflow, &a, 1) == 0 && /* (never, likewise) */
            (a = tr__injectq_pop(&rt->inject)) == NULL)
            return true;
        if (!add(rt, a)) {
            tr__injectq_push(&rt->inject, a);
            return false;
        }
        a = NULL;
    }
}

static bool started(tr_runtime *rt)
{
    return ck_pr_load_32(&rt->running) && !tr__sched_over(rt);
}

/* Takes rt's actors out of the draw, the others keeping their order; with
 * requeue, into rt's injection queue: a runtime stopped with actors
 * runnable keeps them for its next run, as its queues would. */
static void set_aside(tr_runtime *rt, bool requeue)
{
    size_t kept = 0;
    for (size_t i = 0; i < sim.n; i++) {
        if (sim.q[i].rt != rt)
            sim.q[kept++] = sim.q[i];
        else if (requeue)
            tr__injectq_push(&rt->inject, sim.q[i].a);
    }
    sim.n = kept;
    rt->sim->runnable = 0;
    if (tr__sim.sched == TR__SIM_PCT)
        for (size_t i = sim.n / 2; i-- > 0;)
            sift_down(i);
}

static bool gather_all(void)
{
    bool ok = true;
    for (tr_runtime *rt = sim.first; rt != NULL; rt = rt->sim->next) {
        if (started(rt))
            ok &= gather(rt);
        else if (rt->sim->runnable != 0)
            set_aside(rt, true);
    }
    return ok;
}

/* ---- turns and polls ---- */

/* Once per actor: virtual time stood still while real time went on. */
static void report_blocking(tr_runtime *rt, tr__actor *a, tr_pid pid, uint64_t ns)
{
    slot_info *i = info_of(rt, a);
    if (i != NULL) {
        if (i->reported_gen == TR__PID_GEN(pid))
            return;
        i->reported_gen = (uint32_t)TR__PID_GEN(pid);
    }
    char name[128];
    tr__symbol_name((const void *)a->fn, name, sizeof name);
    fprintf(stderr,
            "troupe: simulation: behaviour %s of pid %" PRIx64 " ran %" PRIu64
            " ms of real time: a blocking call (sleep, blocking I/O) inside a behaviour stops "
            "virtual time; see docs/simulation.md\n",
            name, pid, ns / 1000000);
}

/* The worker's run in a simulated runtime (as tr__trace_turn is while
 * tracing): the turn, hashed and counted, timed in real time. */
static void sim_turn(tr__worker *w, tr__actor *a)
{
    tr_runtime *rt = w->turner.rt;
    tr_pid pid = tr__pid_of(a, ck_pr_load_32(&a->life));
    uint64_t handled = w->turner.count.handled;
    uint64_t begin = tr__real_ns();
    if (rt->trace != NULL)
        tr__trace_turn(w, a);
    else
        tr__actor_run(w, a);
    tr__sched_settle(w); /* the draw sees every hold as it is */
    uint64_t took = tr__real_ns() - begin;
    tr__sim_stats.turns++;
    tr__sim_mix(TR__EV_TURN, pid, w->turner.count.handled - handled);
    if (took > BLOCKING_NS)
        report_blocking(rt, a, pid, took);
}

/* PCT: at a change point the actor that just ran drops below all others. */
static void change_point(tr_runtime *rt, tr__actor *a)
{
    while (sim.next_change < sim.changes && sim.change[sim.next_change] <= tr__sim_stats.turns) {
        slot_info *i = info_of(rt, a);
        if (i != NULL)
            i->prio = tr__sim.depth - 1 - sim.next_change;
        sim.next_change++;
    }
}

static void step(runnable e)
{
    tr_runtime *rt = e.rt;
    tr__worker *w = &rt->workers[0];
    tr__sim_advance(tr__sim_clock + 1 + tr__sim_below(tr__sim.turn_ns));
    tr__actors_coarse(&rt->actors, tr__sim_clock);
    tr__sched_taken(rt, e.a); /* out of the runnable array: its wait ends */
    rt->actors.batch = 1 + (unsigned)tr__sim_below(rt->cfg.batch);
    tr__worker_swap(w);
    tr__run_turn(w, e.a);
    tr__between_turns(w);
    if (tr__sim.sched == TR__SIM_PCT)
        change_point(rt, e.a);
    gather(rt);
}

static void poll_rt(tr_runtime *rt)
{
    tr__worker *w = &rt->workers[0];
    tr__actors_coarse(&rt->actors, tr__sim_clock);
    tr__worker_swap(w);
    tr__sched_poll(w); /* (one thread: the reactor's lock is always free) */
    gather(rt);
}

static void poll_all(void)
{
    for (tr_runtime *rt = sim.first; rt != NULL; rt = rt->sim->next)
        if (started(rt))
            poll_rt(rt);
}

/* The next timer of any started runtime, or network event. */
static uint64_t next_event(void)
{
    uint64_t next = tr__simnet_next_ns();
    for (tr_runtime *rt = sim.first; rt != NULL; rt = rt->sim->next) {
        if (!started(rt) || !tr__reactor_trylock(rt->reactor))
            continue;
        uint64_t t = tr__reactor_next_ns(rt->reactor);
        tr__reactor_unlock(rt->reactor);
        if (t < next)
            next = t;
    }
    return next;
}

/* The run cannot go on: said with the seed, and rt stops. */
static int give_up(tr_runtime *rt, const char *why)
{
    fprintf(stderr, "troupe: simulation: liveness failure at t=%.3fs (seed %" PRIu64 "): ",
            (double)(tr__sim_clock - sim.start_ns) / 1e9, tr__sim.seed);
    if (why != NULL)
        fprintf(stderr, "%s\n", why);
    else
        fprintf(stderr,
                "nothing can happen and the run holds %" PRIu32
                " (descriptors, timers or signals)\n",
                ck_pr_load_32(&rt->holds));
    ck_pr_store_32(&rt->stop, 1);
    return 1;
}

static bool past_limit(void)
{
    return tr__sim_clock - sim.start_ns > tr__sim.limit_ns;
}

/* Runs until rt is stopped or quiescent, or, with until, until *until. */
static int run(tr_runtime *rt, const bool *until)
{
    uint64_t dry = 0; /* the clock + 1 after a poll that readied nothing */
    for (;;) {
        if (ck_pr_load_32(&rt->stop))
            return 1;
        if (until != NULL && *until)
            return 0;
        bool gathered = gather_all();
        if (rt->sim->runnable == 0 && ck_pr_load_32(&rt->holds) == 0) {
            if (until == NULL) /* (a call's run leaves the end to join) */
                ck_pr_store_32(&rt->done, 1);
            return 0;
        }
        if (!gathered && sim.n == 0)
            return give_up(rt, "out of memory for the runnable actors");
        uint64_t next = next_event();
        if (next <= tr__sim_clock) {
            /* Something is due now; a second poll at the same instant that
             * still finds nothing would spin for ever. */
            if (sim.n == 0 && dry == tr__sim_clock + 1)
                return give_up(rt, "an event is due that no poll delivers (a fault of the "
                                   "simulator: please report it with the seed)");
            poll_all();
            if (sim.n == 0)
                dry = tr__sim_clock + 1;
            continue;
        }
        if (sim.n == 0) {
            if (next == UINT64_MAX)
                return give_up(rt, NULL);
            /* A jump past the limit stops just past it: the report says
             * when the limit was passed, not where the wheel looked next. */
            if (next - sim.start_ns > tr__sim.limit_ns)
                next = sim.start_ns + tr__sim.limit_ns + 1;
            tr__sim_advance(next);
            tr__sim_mix(TR__EV_TIME, next - sim.start_ns, 0);
        }
        if (past_limit())
            return give_up(rt, "time limit reached");
        if (sim.n == 0)
            poll_all();
        else
            step(pick());
    }
}

/* The thread running the simulation, while one does: a second thread
 * that joined or called meanwhile would run it on two threads at once. */
static pthread_t driver;
static uint32_t driving;

bool tr__sim_driven_elsewhere(void)
{
    return ck_pr_load_32(&driving) && !pthread_equal(driver, pthread_self());
}

/* Runs the loop on the calling thread (the one driving, or none yet). */
static int drive(tr_runtime *rt, const bool *until)
{
    bool outer = !ck_pr_load_32(&driving);
    if (outer) {
        driver = pthread_self();
        ck_pr_store_32(&driving, 1);
    }
    tr__worker *was = tr__worker_swap(NULL);
    int stopped = run(rt, until);
    tr__worker_swap(was);
    if (outer)
        ck_pr_store_32(&driving, 0);
    return stopped;
}

int tr__sim_join(tr_runtime *rt)
{
    if (tr__sim_driven_elsewhere())
        return TR_EBUSY;
    return drive(rt, NULL);
}

bool tr__sched_drive(tr_runtime *rt, const bool *done)
{
    if (rt->sim != NULL)
        drive(rt, done);
    return *done;
}

/* ---- simulated runtimes ---- */

/* A new simulation: its start and, under PCT, its change points. */
static void begin(void)
{
    sim.start_ns = tr__sim_clock;
    sim.created = 0;
    sim.changes = sim.next_change = 0;
    if (tr__sim.sched != TR__SIM_PCT)
        return;
    unsigned d = tr__sim.depth - 1 < 64 ? tr__sim.depth - 1 : 64;
    for (unsigned i = 0; i < d; i++) {
        uint64_t at = 1 + tr__sim_below(PCT_TURNS);
        unsigned j = i;
        for (; j > 0 && sim.change[j - 1] > at; j--)
            sim.change[j] = sim.change[j - 1];
        sim.change[j] = at;
    }
    sim.changes = d;
}

int tr__sim_attach(tr_runtime *rt)
{
    struct tr__sim_rt *s = calloc(1, sizeof *s);
    if (s == NULL)
        return TR_ENOMEM;
    if (sim.first == NULL)
        begin();
    s->ordinal = ++sim.created;
    rt->sim = s;
    tr_runtime **link = &sim.first;
    while (*link != NULL)
        link = &(*link)->sim->next;
    *link = rt;
    rt->workers[0].run = sim_turn;
    tr__actors_of(rt)->tracing = true; /* spawns and stops: trace.c's hook */
    return 0;
}

void tr__sim_detach(tr_runtime *rt)
{
    struct tr__sim_rt *s = rt->sim;
    if (s == NULL)
        return;
    tr_runtime **link = &sim.first;
    while (*link != rt)
        link = &(*link)->sim->next;
    *link = s->next;
    set_aside(rt, false); /* its actors are gone */
    if (sim.first == NULL) {
        free(sim.q);
        sim.q = NULL;
        sim.n = sim.cap = 0;
    }
    free(s->slots);
    free(s);
    rt->sim = NULL;
}

void tr__sim_created(tr_runtime *rt)
{
    if (sim.hook != NULL)
        sim.hook(rt, sim.hook_arg);
}

void tr_sim_on_create(void (*fn)(tr_runtime *rt, void *arg), void *arg)
{
    sim.hook = fn;
    sim.hook_arg = fn != NULL ? arg : NULL;
}

/* ---- clock and randomness for behaviours ---- */

uint64_t tr_now(tr_ctx *cx)
{
    (void)cx;
    return tr__now_ns();
}

uint64_t tr_rand(tr_ctx *cx)
{
    (void)cx;
    if (tr__sim_on())
        return tr__sim_rand();
    tr__worker *w = tr__worker_current();
    if (w != NULL)
        return tr__xorshift64(&w->user_rng);
    /* Outside the workers: a generator per thread, seeded once. */
    static _Thread_local uint64_t state;
    if (state == 0)
        state = tr__fresh_seed((uint64_t)(uintptr_t)&state);
    return tr__xorshift64(&state);
}

uint64_t tr__fresh_seed(uint64_t salt)
{
    uint64_t seed;
    if (getrandom(&seed, sizeof seed, 0) != (ssize_t)sizeof seed)
        seed = tr__real_ns() ^ salt;
    return seed != 0 ? seed : 1; /* xorshift never leaves 0 */
}
