/* sched/watchdog.c — reports behaviour turns that run too long.
 *
 * One behaviour that blocks (a sleep, a synchronous read, a long loop)
 * holds its worker and everything queued behind it — Tokio's "one
 * blocking task halts an executor" (tokio #4730). The watchdog makes such
 * turns visible: a turn that runs longer than tr_config.watchdog_ms is
 * reported once, to the hook of tr_runtime_on_long_turn or as a line on
 * stderr.
 *
 * Workers never read the clock for it: one clock read a turn costs
 * pingpong 35-40% of its rate (monitor.c). As a turn begins, a worker
 * stores a turn number and the actor it runs in its own struct
 * (tr__run_turn in sched.h). The monitor, which reads the clock once a
 * tick anyway, notes the tick at which it first saw each worker's current
 * turn number; when that turn is still running a threshold later, it is
 * reported.
 * Publishing costs four instructions a turn (an increment and two
 * stores; current is cleared only when the worker turns to other work):
 * about 8 of pingpong's 757 instructions a round trip then (two turns), and
 * nothing measurable on counting (64 messages a turn).
 *
 * Time the worker's thread spent waiting for a CPU does not count: a turn
 * is reported when it has run on a CPU or been blocked for the threshold,
 * not because other threads had the CPUs (more workers than cores, a
 * loaded machine: at 16 workers on 2 cores the timers benchmark's 6-ms
 * turns took over 100 ms on the clock, and `make bench` printed 24
 * reports for them). The kernel keeps each thread's wait
 * (/proc/self/task/TID/schedstat, its second figure) and adds a wait to it
 * as the wait ends; so the verdict is taken at a look at which the
 * thread is blocked (its state in /proc/self/task/TID/stat) or has run
 * since the last look, when no wait is left uncounted. Those files are
 * read only for a turn seen at two ticks (once) and past the threshold
 * (each tick until the verdict), never for short turns; where they cannot
 * be read, the clock alone decides, as it did before. A turn blocked on a
 * lock whose holder is preempted is blocked, and is reported: at 64
 * workers on 2 cores some timers turns are, on the allocator's and the
 * kernel's locks (state S or D for 100 ms and more, 0-4 ms on a CPU).
 *
 * The bound. A turn is first seen at the first tick after it begins, and
 * reported at the first tick at which it has run or been blocked for the
 * threshold since: between threshold and threshold + about 2 ticks (2
 * ms) after it began, plus the time its thread waited for a CPU (and a
 * few ms more for a look that settles it: the kernel brings a running
 * thread's CPU time up to date at its own tick), later only if the
 * monitor's thread is kept off a CPU. elapsed_ns is the time on the clock
 * from the first sighting (waits included), so at most a tick short of
 * the turn's. A turn shorter than the threshold is never reported: it
 * cannot be running at two ticks a threshold apart.
 *
 * What is reported is read from the running actor's slot on the monitor's
 * thread: slots are never freed while the runtime lives, so that is safe
 * even if the turn ends meanwhile (then the pid may read as TR_PID_NONE).
 */
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../actors/fault.h"
#include "sched.h"
#include "troupe/error.h"

/* What the kernel says of a worker's thread (thread_of). */
typedef struct thread_view {
    uint64_t waited;  /* ns it has waited for a CPU while runnable, in all;
                       * the kernel adds a wait when the wait ends */
    uint64_t on_cpu;  /* ns it has run */
    char state;       /* 'R' running or runnable, 'S' or 'D' blocked, ... */
} thread_view;

/* The monitor's view of one worker. */
typedef struct seen {
    uint64_t seq;     /* the turn number last seen */
    uint64_t since;   /* when it was first seen */
    bool reported;
    bool viewed;      /* the two below hold the thread as the turn was
                       * seen again */
    bool blind;       /* the thread could not be read for this turn */
    uint64_t waited;  /* its wait then: waits from here on do not count */
    uint64_t on_cpu;  /* at the last look, to tell whether it ran since */
    int schedstat, stat; /* the thread's /proc files, or -1 */
    uint32_t tid;     /* the thread they are for (a run after a join has
                       * new threads) */
} seen;

struct tr__watchdog {
    uint64_t threshold_ns; /* 0: off */
    tr_long_turn_fn fn;    /* NULL: a line on stderr */
    void *arg;
    seen workers[];
};

int tr__watchdog_create(tr_runtime *rt, unsigned threshold_ms)
{
    tr__watchdog *wd = calloc(1, sizeof *wd + rt->cfg.threads * sizeof(seen));
    if (wd == NULL)
        return TR_ENOMEM;
    wd->threshold_ns = (uint64_t)threshold_ms * 1000000u;
    for (unsigned i = 0; i < rt->cfg.threads; i++)
        wd->workers[i].schedstat = wd->workers[i].stat = -1;
    rt->watchdog = wd;
    return 0;
}

static void close_files(seen *s)
{
    if (s->schedstat >= 0)
        close(s->schedstat);
    if (s->stat >= 0)
        close(s->stat);
    s->schedstat = s->stat = -1;
}

void tr__watchdog_destroy(tr_runtime *rt)
{
    tr__watchdog *wd = rt->watchdog;
    if (wd == NULL)
        return;
    for (unsigned i = 0; i < rt->cfg.threads; i++)
        close_files(&wd->workers[i]);
    free(wd);
    rt->watchdog = NULL;
}

static int open_task_file(uint32_t tid, const char *name)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/self/task/%" PRIu32 "/%s", tid, name);
    return open(path, O_RDONLY | O_CLOEXEC);
}

/* Reads fd from its start into text (NUL-terminated); its length, or 0. */
static size_t read_text(int fd, char *text, size_t size)
{
    ssize_t n = fd >= 0 ? pread(fd, text, size - 1, 0) : -1;
    if (n <= 0)
        return 0;
    text[n] = '\0';
    return (size_t)n;
}

/* What the kernel says of w's thread now: false if it cannot be read (no
 * /proc, the thread gone or not started). */
static bool thread_of(seen *s, tr__worker *w, thread_view *out)
{
    uint32_t tid = ck_pr_load_32(&w->tid);
    if (tid == 0)
        return false;
    if (tid != s->tid) {
        close_files(s);
        s->schedstat = open_task_file(tid, "schedstat");
        s->stat = open_task_file(tid, "stat");
        s->tid = tid;
    }
    /* schedstat: "on_cpu waited timeslices"; stat: "tid (comm) state ...",
     * where comm may hold spaces and parentheses: the state follows the
     * last ')'. */
    char text[512];
    unsigned long long on_cpu, waited;
    if (read_text(s->schedstat, text, sizeof text) == 0 ||
        sscanf(text, "%llu %llu", &on_cpu, &waited) != 2)
        return false;
    char *paren = read_text(s->stat, text, sizeof text) != 0 ? strrchr(text, ')') : NULL;
    if (paren == NULL || paren[1] != ' ' || paren[2] == '\0')
        return false;
    *out = (thread_view){.waited = waited, .on_cpu = on_cpu, .state = paren[2]};
    return true;
}

/* Whether the turn on s's worker, seen for `elapsed` on the clock, has
 * run or blocked for the threshold: the clock less what its thread waited
 * for a CPU since s->waited. The kernel adds a wait as it ends, so a thread
 * ready but waiting now has a wait not yet counted: the verdict waits for
 * a look at which the thread is blocked, or has run since the last. */
static bool long_enough(tr__watchdog *wd, seen *s, tr__worker *w, uint64_t elapsed)
{
    thread_view now;
    if (s->blind || !thread_of(s, w, &now))
        return elapsed >= wd->threshold_ns; /* the clock alone */
    bool ran = now.on_cpu != s->on_cpu;
    s->on_cpu = now.on_cpu;
    if (now.state == 'R' && !ran)
        return false;
    uint64_t waited = now.waited > s->waited ? now.waited - s->waited : 0;
    return elapsed > waited && elapsed - waited >= wd->threshold_ns;
}

static void report(tr_runtime *rt, unsigned worker, tr__actor *a, uint64_t elapsed_ns)
{
    tr__watchdog *wd = rt->watchdog;
    char name[TR_NAME_MAX], behaviour[128];
    tr_pid pid = tr__pid_of(a, ck_pr_load_32(&a->life));
    if (pid == TR_PID_NONE || !ck_pr_load_16(&a->named) ||
        !tr__registry_name_of(rt, pid, name, sizeof name))
        name[0] = '\0';
    tr__symbol_name(ck_pr_load_ptr(&a->fn), behaviour, sizeof behaviour);
    tr_long_turn turn = {.pid = pid, .name = name, .behaviour = behaviour, .worker = worker,
                         .elapsed_ns = elapsed_ns};
    if (wd->fn != NULL) {
        wd->fn(&turn, wd->arg);
        return;
    }
    fprintf(stderr,
            "troupe: watchdog: actor %" PRIx64 "%s%s%s (%s) on worker %u has run one turn for "
            "%" PRIu64 " ms (threshold %" PRIu64 " ms)\n",
            pid, name[0] ? " \"" : "", name, name[0] ? "\"" : "", behaviour, worker,
            elapsed_ns / 1000000, wd->threshold_ns / 1000000);
}

void tr__watchdog_tick(tr_runtime *rt, uint64_t now_ns)
{
    tr__watchdog *wd = rt->watchdog;
    if (wd->threshold_ns == 0)
        return;
    for (unsigned i = 0; i < rt->cfg.threads; i++) {
        tr__worker *w = &rt->workers[i];
        /* current, then turn_seq (stored in the other order): an actor
         * read here with turn_seq then still the one noted at an earlier
         * tick is that turn's, and the turn was still running. */
        tr__actor *a = ck_pr_load_ptr(&w->current);
        ck_pr_fence_load();
        uint64_t seq = ck_pr_load_64(&w->turn_seq);
        seen *s = &wd->workers[i];
        if (seq != s->seq) {
            s->seq = seq;
            s->since = now_ns;
            s->reported = s->viewed = s->blind = false;
        } else if (a != NULL && !s->reported) {
            /* Seen twice: a turn of a tick or more. Its thread's waits
             * count from here (a tick's before, at most, counts as run). */
            if (!s->viewed) {
                s->viewed = true;
                thread_view then = {0}; /* zeros if blind (then unused) */
                s->blind = !thread_of(s, w, &then);
                s->waited = then.waited;
                s->on_cpu = then.on_cpu;
                continue;
            }
            uint64_t elapsed = now_ns - s->since;
            if (elapsed >= wd->threshold_ns && long_enough(wd, s, w, elapsed)) {
                s->reported = true;
                report(rt, i, a, elapsed);
            }
        }
    }
}

int tr_runtime_on_long_turn(tr_runtime *rt, tr_long_turn_fn fn, void *arg)
{
    if (rt == NULL)
        return TR_EINVAL;
    /* Not while running: the monitor reads the pair without a lock. */
    if (ck_pr_load_32(&rt->running))
        return TR_EBUSY;
    rt->watchdog->fn = fn;
    rt->watchdog->arg = arg;
    return 0;
}
