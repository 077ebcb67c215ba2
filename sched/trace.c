/* sched/trace.c — a run's turns, spawns, stops and timer firings, written
 * as Chrome trace-event JSON for a trace viewer (Perfetto, chrome://tracing).
 *
 * On with TROUPE_TRACE=path or tr_config.trace_path. Each worker records
 * into a ring of its own, with no lock and no atomic (spawns made by
 * threads outside the runtime go to one more ring, under a mutex: they
 * are not a hot path). A ring holds RING_EVENTS events; when it is full
 * the oldest are overwritten, and the file's "otherData" says how many
 * were lost ("dropped_events"), so a long run keeps its last events, not
 * its first.
 *
 * Cost. Off: nothing a turn (the worker calls w->run, which is
 * tr__trace_turn only while tracing: tr__run_turn), one predictable
 * branch a spawn and a stop, one a timer firing. On: two clock reads a
 * turn and a 40-byte store.
 *
 * The file is written when a run ends (tr_runtime_join, and so
 * tr_runtime_run and a destroy that stops a running runtime), after the
 * workers have been joined, so the rings are still; a runtime run again
 * rewrites it with everything recorded so far. The events: one "X"
 * (complete) event a turn, named by the behaviour's symbol, with the
 * actor and the messages its behaviour handled in it; "i" (instant)
 * events for spawns, stops and timer firings. pid is the process, tid
 * the worker (the last tid: threads outside the runtime); times are in
 * microseconds since the runtime was created.
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sched.h"
#include "troupe/error.h"
#include "troupe/version.h"

#define RING_EVENTS (1u << 15) /* a power of two: 1.25 MiB a worker */

enum { EV_TURN = 0, EV_SPAWN = TR__TRACE_SPAWN, EV_STOP = TR__TRACE_STOP, EV_TIMER = 3 };

typedef struct event {
    uint64_t ts;     /* ns since the trace began */
    uint64_t arg;    /* a turn's length in ns; a timer's target */
    tr_pid pid;      /* the actor (the timer, for a firing) */
    const void *fn;  /* the behaviour, for turns, spawns and stops */
    uint32_t kind;
    uint32_t handled; /* messages a turn handed to the behaviour */
} event;

struct tr__trace_ring {
    uint64_t next; /* events ever recorded */
    event ev[RING_EVENTS];
};

typedef struct tr__trace {
    char *path;
    uint64_t t0;
    pthread_mutex_t lock; /* the outside ring's */
    unsigned rings;       /* the workers' and the outside one, last */
    struct tr__trace_ring *ring[];
} tr__trace;

int tr__trace_create(tr_runtime *rt, const char *path)
{
    /* Opened now, so that a path that cannot be written is an error of
     * tr_runtime_create and not a surprise at the end of the run. */
    FILE *f = fopen(path, "w");
    if (f == NULL)
        return errno != 0 ? -errno : TR_EINVAL;
    fclose(f);
    unsigned rings = rt->cfg.threads + 1;
    tr__trace *t = calloc(1, sizeof *t + rings * sizeof t->ring[0]);
    if (t == NULL)
        return TR_ENOMEM;
    rt->trace = t;
    t->rings = rings;
    t->t0 = tr__now_ns();
    if ((t->path = strdup(path)) == NULL || pthread_mutex_init(&t->lock, NULL) != 0) {
        free(t->path);
        free(t);
        rt->trace = NULL;
        return TR_ENOMEM;
    }
    for (unsigned i = 0; i < rings; i++) {
        /* calloc: untouched pages of a large ring cost no memory. */
        if ((t->ring[i] = calloc(1, sizeof *t->ring[i])) == NULL) {
            tr__trace_destroy(rt);
            return TR_ENOMEM;
        }
        if (i < rt->cfg.threads) {
            rt->workers[i].trace = t->ring[i];
            rt->workers[i].run = tr__trace_turn;
        }
    }
    tr__actors_of(rt)->tracing = true;
    return 0;
}

void tr__trace_destroy(tr_runtime *rt)
{
    tr__trace *t = rt->trace;
    if (t == NULL)
        return;
    tr__actors_of(rt)->tracing = false;
    for (unsigned i = 0; i < t->rings; i++) {
        if (i < rt->cfg.threads) {
            rt->workers[i].trace = NULL;
            rt->workers[i].run = tr__actor_run;
        }
        free(t->ring[i]);
    }
    pthread_mutex_destroy(&t->lock);
    free(t->path);
    free(t);
    rt->trace = NULL;
}

static event *next_event(struct tr__trace_ring *r)
{
    return &r->ev[r->next++ & (RING_EVENTS - 1)];
}

void tr__trace_turn(tr__worker *w, tr__actor *a)
{
    tr__trace *t = w->turner.rt->trace;
    /* Read before the turn: after it the actor may be running elsewhere. */
    tr_pid pid = tr__pid_of(a, ck_pr_load_32(&a->life));
    const void *fn = (const void *)a->fn;
    uint64_t handled = w->turner.count.handled;
    uint64_t begin = tr__now_ns();
    tr__actor_run(w, a);
    uint64_t end = tr__now_ns();
    *next_event(w->trace) = (event){.ts = begin - t->t0, .arg = end - begin, .pid = pid,
                                    .fn = fn, .kind = EV_TURN,
                                    .handled = (uint32_t)(w->turner.count.handled - handled)};
}

void tr__trace_actor(tr_runtime *rt, tr__worker *w, unsigned kind, tr_pid pid, tr_behaviour fn)
{
    /* A simulated runtime sets `tracing` for this hook alone, to take
     * spawns and stops into the trace hash; it may have no file. */
    if (rt->sim != NULL)
        tr__sim_mix(kind == TR__TRACE_SPAWN ? TR__EV_SPAWN : TR__EV_STOP, pid, 0);
    tr__trace *t = rt->trace;
    if (t == NULL)
        return;
    event e = {.ts = tr__now_ns() - t->t0, .pid = pid, .fn = (const void *)fn, .kind = kind};
    if (w != NULL) {
        *next_event(w->trace) = e;
        return;
    }
    pthread_mutex_lock(&t->lock);
    *next_event(t->ring[t->rings - 1]) = e;
    pthread_mutex_unlock(&t->lock);
}

void tr__trace_timer(tr__worker *w, tr_pid timer, tr_pid target)
{
    tr__trace *t = w->turner.rt->trace;
    *next_event(w->trace) =
        (event){.ts = tr__now_ns() - t->t0, .arg = target, .pid = timer, .kind = EV_TIMER};
}

/* ---- writing ---- */

/* Behaviour names by address: dladdr walks a symbol table, and a ring
 * holds few distinct behaviours many times over. */
#define NAMES 256
typedef struct names {
    const void *fn[NAMES];
    char name[NAMES][128];
} names;

static const char *name_of(names *n, const void *fn)
{
    unsigned i = (unsigned)(((uintptr_t)fn >> 4) * 0x9e3779b1u >> 24) % NAMES;
    if (n->fn[i] != fn || n->name[i][0] == '\0') {
        n->fn[i] = fn;
        tr__symbol_name(fn, n->name[i], sizeof n->name[i]);
    }
    return n->name[i];
}

/* A JSON string (symbols are C identifiers, but a viewer must never be
 * handed a broken file). */
static void put_string(FILE *f, const char *s)
{
    putc('"', f);
    for (; *s != '\0'; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            fprintf(f, "\\%c", c);
        else if (c < 0x20)
            fprintf(f, "\\u%04x", c);
        else
            putc(c, f);
    }
    putc('"', f);
}

/* ns as microseconds with three decimals. */
static void put_us(FILE *f, const char *key, uint64_t ns)
{
    fprintf(f, ",\"%s\":%" PRIu64 ".%03u", key, ns / 1000, (unsigned)(ns % 1000));
}

static void put_event(FILE *f, names *n, const event *e, long pid, unsigned tid)
{
    static const char *const kinds[] = {"turn", "spawn", "stop", "timer"};
    fprintf(f, ",\n{\"pid\":%ld,\"tid\":%u", pid, tid);
    put_us(f, "ts", e->ts);
    if (e->kind == EV_TURN) {
        fputs(",\"ph\":\"X\",\"cat\":\"turn\",\"name\":", f);
        put_string(f, name_of(n, e->fn));
        put_us(f, "dur", e->arg);
        fprintf(f, ",\"args\":{\"actor\":\"%" PRIx64 "\",\"handled\":%" PRIu32 "}}", e->pid,
                e->handled);
        return;
    }
    fprintf(f, ",\"ph\":\"i\",\"s\":\"t\",\"cat\":\"%s\",\"name\":\"%s\"",
            e->kind == EV_TIMER ? "timer" : "actor", kinds[e->kind]);
    if (e->kind == EV_TIMER) {
        fprintf(f, ",\"args\":{\"timer\":\"%" PRIx64 "\",\"target\":\"%" PRIx64 "\"}}", e->pid,
                e->arg);
        return;
    }
    fprintf(f, ",\"args\":{\"actor\":\"%" PRIx64 "\",\"behaviour\":", e->pid);
    put_string(f, name_of(n, e->fn));
    fputs("}}", f);
}

static void put_ring(FILE *f, names *n, struct tr__trace_ring *r, long pid, unsigned tid,
                     uint64_t *dropped)
{
    uint64_t first = r->next > RING_EVENTS ? r->next - RING_EVENTS : 0;
    *dropped += first;
    for (uint64_t i = first; i < r->next; i++)
        put_event(f, n, &r->ev[i & (RING_EVENTS - 1)], pid, tid);
}

static void put_thread_name(FILE *f, long pid, unsigned tid, const char *name)
{
    fprintf(f, ",\n{\"ph\":\"M\",\"name\":\"thread_name\",\"pid\":%ld,\"tid\":%u,"
               "\"args\":{\"name\":\"%s\"}}",
            pid, tid, name);
}

void tr__trace_write(tr_runtime *rt)
{
    tr__trace *t = rt->trace;
    names *n = calloc(1, sizeof *n);
    FILE *f = n != NULL ? fopen(t->path, "w") : NULL;
    if (f == NULL) {
        fprintf(stderr, "troupe: trace: %s: %s\n", t->path,
                strerror(n == NULL ? ENOMEM : errno));
        free(n);
        return;
    }
    long pid = (long)getpid();
    unsigned outside = t->rings - 1;
    uint64_t dropped = 0;
    fprintf(f, "{\"traceEvents\":[\n{\"ph\":\"M\",\"name\":\"process_name\",\"pid\":%ld,"
               "\"args\":{\"name\":\"troupe\"}}",
            pid);
    for (unsigned i = 0; i < outside; i++) {
        char name[32];
        snprintf(name, sizeof name, "worker %u", i);
        put_thread_name(f, pid, i, name);
    }
    put_thread_name(f, pid, outside, "outside threads");
    for (unsigned i = 0; i < outside; i++)
        put_ring(f, n, t->ring[i], pid, i, &dropped);
    pthread_mutex_lock(&t->lock);
    put_ring(f, n, t->ring[outside], pid, outside, &dropped);
    pthread_mutex_unlock(&t->lock);
    fprintf(f, "\n],\n\"displayTimeUnit\":\"ns\",\n\"otherData\":{\"producer\":\"troupe %s\","
               "\"ring_events_per_worker\":%u,\"dropped_events\":%" PRIu64 "}}\n",
            TROUPE_VERSION, RING_EVENTS, dropped);
    if (ferror(f) | fclose(f))
        fprintf(stderr, "troupe: trace: %s: write failed\n", t->path);
    free(n);
}
