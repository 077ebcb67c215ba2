/* observe/prom.c — the /metrics page: the Prometheus text exposition
 * format 0.0.4 (HELP and TYPE before each family's samples, label values
 * escaped, histogram buckets cumulative up to +Inf).
 *
 * Names follow Prometheus's conventions: a troupe_ prefix, base units in
 * the name (seconds, bytes), _total on counters only. Per-actor series are
 * written for named actors only: a name is stable across restarts and the
 * set of names is small, while pids would make a new series for every
 * actor ever spawned. The process_* families are the ones every client
 * library writes, read from /proc/self as they do.
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "observe.h"

/* Per-actor series cover at most this many actors (the busiest): each
 * scrape copies the figures of every actor it looks at. */
#define NAMED_CAP 65536

static void family(tr__obuf *b, const char *name, const char *type, const char *help)
{
    tr__obuf_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void sample_u64(tr__obuf *b, const char *name, uint64_t v)
{
    tr__obuf_printf(b, "%s %llu\n", name, (unsigned long long)v);
}

static void seconds(tr__obuf *b, const char *name, uint64_t ns)
{
    tr__obuf_printf(b, "%s %llu.%09llu\n", name, (unsigned long long)(ns / 1000000000u),
                    (unsigned long long)(ns % 1000000000u));
}

/* A family whose samples are uint64_t fields of a figures struct (at
 * byte `off`): the runtime's (tr_metrics) or a worker's. */
typedef struct field_family {
    const char *name, *type, *help;
    size_t off;
} field_family;

static uint64_t field_of(const void *figures, const field_family *f)
{
    return *(const uint64_t *)((const char *)figures + f->off);
}

/* ---- the runtime as a whole ---- */

static void runtime_families(tr__obuf *b, const tr_metrics *m)
{
    static const field_family plain[] = {
#define F(n, t, h, field) {n, t, h, offsetof(tr_metrics, field)}
        F("troupe_messages_sent_total", "counter", "Messages sent.",
          messages_sent),
        F("troupe_messages_handled_total", "counter", "Messages delivered to behaviours.",
          messages_handled),
        F("troupe_dead_letters_total", "counter",
          "Messages whose receiver had stopped or never existed.", dead_letters),
        F("troupe_actors_spawned_total", "counter", "Actors spawned.", actors_spawned),
        F("troupe_actors_stopped_total", "counter", "Actors stopped.", actors_stopped),
        F("troupe_actors_alive", "gauge", "Actors alive now.", actors_alive),
        F("troupe_injection_queue_depth", "gauge",
          "Actors waiting in the injection queue (an estimate).", inject_depth),
        F("troupe_fds_watched", "gauge", "Descriptors watched by the reactor.", fds_watched),
        F("troupe_timers_pending", "gauge", "Timers started and not yet fired or cancelled.",
          timers_pending),
#undef F
    };
    for (size_t i = 0; i < sizeof plain / sizeof plain[0]; i++) {
        family(b, plain[i].name, plain[i].type, plain[i].help);
        sample_u64(b, plain[i].name, field_of(m, &plain[i]));
    }
    family(b, "troupe_workers", "gauge", "Worker threads.");
    sample_u64(b, "troupe_workers", m->workers);
}

/* Timer lateness (fire time - due time) as a histogram in seconds. */
static void lateness(tr__obuf *b, const tr_metrics *m)
{
    static const unsigned bounds_us[TR_LATENESS_BUCKETS - 1] = TR_LATENESS_BOUNDS_US;
    const char *name = "troupe_timer_lateness_seconds";
    family(b, name, "histogram", "How late timers fired: fire time minus due time.");
    uint64_t cumulative = 0;
    for (unsigned i = 0; i < TR_LATENESS_BUCKETS; i++) {
        cumulative += m->lateness[i];
        if (i + 1 < TR_LATENESS_BUCKETS)
            tr__obuf_printf(b, "%s_bucket{le=\"%g\"} %llu\n", name, bounds_us[i] / 1e6,
                            (unsigned long long)cumulative);
        else
            tr__obuf_printf(b, "%s_bucket{le=\"+Inf\"} %llu\n", name,
                            (unsigned long long)cumulative);
    }
    seconds(b, "troupe_timer_lateness_seconds_sum", m->lateness_sum_ns);
    sample_u64(b, "troupe_timer_lateness_seconds_count", cumulative);
}

/* ---- per worker ---- */

static void per_worker(tr__obuf *b, const tr_worker_metrics *w, unsigned n)
{
    static const field_family fams[] = {
#define F(n, t, h, field) {n, t, h, offsetof(tr_worker_metrics, field)}
        F("troupe_worker_busy_seconds_total", "counter", "Time the worker spent in turns.",
          busy_ns),
        F("troupe_worker_turns_total", "counter", "Behaviour turns the worker ran.", turns),
        F("troupe_worker_steals_total", "counter",
          "Actors the worker took from other workers' queues.", steals),
        F("troupe_worker_parks_total", "counter", "Times the worker went to sleep.", parks),
        F("troupe_worker_polls_total", "counter", "Reactor polls the worker made.", polls),
        F("troupe_worker_io_events_total", "counter",
          "Readiness events the worker dispatched.", io_events),
#undef F
    };
    for (size_t f = 0; f < sizeof fams / sizeof fams[0]; f++) {
        family(b, fams[f].name, fams[f].type, fams[f].help);
        bool secs = f == 0;
        for (unsigned i = 0; i < n; i++) {
            uint64_t v = field_of(&w[i], &fams[f]);
            if (secs)
                tr__obuf_printf(b, "%s{worker=\"%u\"} %llu.%09llu\n", fams[f].name, i,
                                (unsigned long long)(v / 1000000000u),
                                (unsigned long long)(v % 1000000000u));
            else
                tr__obuf_printf(b, "%s{worker=\"%u\"} %llu\n", fams[f].name, i,
                                (unsigned long long)v);
        }
    }
    family(b, "troupe_worker_run_queue_depth", "gauge", "Actors in the worker's run queue.");
    for (unsigned i = 0; i < n; i++)
        tr__obuf_printf(b, "troupe_worker_run_queue_depth{worker=\"%u\"} %u\n", i,
                        w[i].runq_depth);
    family(b, "troupe_worker_cpu", "gauge",
           "The CPU the worker is bound to (tr_config.pin), -1 if none.");
    for (unsigned i = 0; i < n; i++)
        tr__obuf_printf(b, "troupe_worker_cpu{worker=\"%u\"} %d\n", i, (int)w[i].cpu);
}

/* ---- per named actor ---- */

int tr__observe_all(tr_runtime *rt, tr_top_key key, size_t cap, tr_actor_figures **out)
{
    tr_metrics m;
    *out = NULL;
    tr_runtime_metrics(rt, &m, NULL, 0);
    /* Room for what spawns while we look; asked again, larger, if it fills. */
    size_t n = (size_t)m.actors_alive + 64;
    for (;;) {
        if (n > cap)
            n = cap;
        tr_actor_figures *a = malloc(n * sizeof *a);
        if (a == NULL)
            return TR_ENOMEM;
        int got = tr_runtime_top(rt, key, (unsigned)n, 0, a);
        if (got < 0 || (size_t)got < n || n == cap) {
            if (got < 0)
                free(a), a = NULL;
            *out = a;
            return got;
        }
        free(a);
        n *= 2;
    }
}

static int by_name(const void *x, const void *y)
{
    return strcmp(((const tr_actor_figures *)x)->name, ((const tr_actor_figures *)y)->name);
}

/* Each actor's name is read with its figures, one actor after another: a
 * name that moves from one actor to another meanwhile is seen on both,
 * which would make one series twice (a page Prometheus refuses). Sorted
 * by name, each name stays on one actor: the one that holds it now, if
 * either does. */
static void one_of_each_name(tr_runtime *rt, tr_actor_figures *a, int n)
{
    if (n > 1)
        qsort(a, (size_t)n, sizeof *a, by_name);
    for (int i = 0; i < n;) {
        int end = i + 1;
        while (end < n && a[i].name[0] != '\0' && strcmp(a[end].name, a[i].name) == 0)
            end++;
        int keep = i;
        for (int k = i; end - i > 1 && k < end; k++)
            if (tr_whereis(rt, a[k].name) == a[k].pid)
                keep = k;
        for (int k = i; k < end; k++)
            if (k != keep)
                a[k].name[0] = '\0';
        i = end;
    }
}

static void named_actors(tr__obuf *b, tr_runtime *rt)
{
    tr_actor_figures *a = NULL;
    int n = tr__observe_all(rt, TR_TOP_BUSY, NAMED_CAP, &a);
    if (n < 0) {
        b->oom |= n == TR_ENOMEM;
        n = 0;
    }
    one_of_each_name(rt, a, n);
    static const char *const names[] = {"troupe_actor_mailbox_depth",
                                        "troupe_actor_busy_seconds_total",
                                        "troupe_actor_messages_handled_total"};
    static const char *const types[] = {"gauge", "counter", "counter"};
    static const char *const helps[] = {"Messages waiting in the named actor's mailbox.",
                                        "Time the named actor spent in its turns.",
                                        "Messages delivered to the named actor's behaviour."};
    for (int f = 0; f < 3; f++) {
        family(b, names[f], types[f], helps[f]);
        for (int i = 0; i < n; i++) {
            if (a[i].name[0] == '\0')
                continue;
            tr__obuf_printf(b, "%s{name=\"", names[f]);
            /* A '?' stands for any byte it replaced, so two names that
             * differ only there would make one series twice: those get
             * their pid too, which no other series of the family has. */
            if (tr__obuf_escaped(b, a[i].name, TR__ESC_PROM))
                tr__obuf_printf(b, "\",pid=\"%llx", (unsigned long long)a[i].pid);
            tr__obuf_put(b, "\"} ", 3);
            if (f == 1)
                tr__obuf_printf(b, "%llu.%09llu\n", (unsigned long long)(a[i].busy_ns / 1000000000u),
                                (unsigned long long)(a[i].busy_ns % 1000000000u));
            else
                tr__obuf_printf(b, "%llu\n", (unsigned long long)(f == 0 ? a[i].mailbox
                                                                        : a[i].handled));
        }
    }
    free(a);
}

/* ---- the process (/proc/self) ---- */

/* utime + stime in clock ticks, and the start time in ticks after boot,
 * from /proc/self/stat (fields 14, 15 and 22; the name in field 2 may hold
 * spaces and parentheses, so the fields are counted from its last ')'). */
static bool proc_stat(unsigned long long *cpu_ticks, unsigned long long *start_ticks)
{
    char buf[1024];
    FILE *f = fopen("/proc/self/stat", "r");
    if (f == NULL)
        return false;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    char *p = strrchr(buf, ')');
    if (p == NULL)
        return false;
    unsigned long long utime, stime, start;
    /* After ')': state (3), then fields 4..13, utime (14), stime (15),
     * 16..21, starttime (22). */
    if (sscanf(p + 1, " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu %*d %*d %*d %*d "
                      "%*d %*d %llu",
               &utime, &stime, &start) != 3)
        return false;
    *cpu_ticks = utime + stime;
    *start_ticks = start;
    return true;
}

/* The boot time, seconds since the epoch ("btime" of /proc/stat). */
static bool boot_time(unsigned long long *btime)
{
    char line[256];
    bool found = false;
    FILE *f = fopen("/proc/stat", "r");
    if (f == NULL)
        return false;
    while (!found && fgets(line, sizeof line, f) != NULL)
        found = sscanf(line, "btime %llu", btime) == 1;
    fclose(f);
    return found;
}

static long open_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    if (d == NULL)
        return -1;
    long n = 0;
    for (struct dirent *e; (e = readdir(d)) != NULL;)
        n += e->d_name[0] != '.';
    closedir(d);
    return n - 1; /* the directory's own descriptor */
}

static void process_families(tr__obuf *b)
{
    long tick = sysconf(_SC_CLK_TCK), page = sysconf(_SC_PAGESIZE);
    unsigned long long cpu, start, btime;
    if (proc_stat(&cpu, &start) && tick > 0) {
        family(b, "process_cpu_seconds_total", "counter",
               "Total user and system CPU time spent in seconds.");
        tr__obuf_printf(b, "process_cpu_seconds_total %.2f\n", (double)cpu / (double)tick);
        if (boot_time(&btime)) {
            family(b, "process_start_time_seconds", "gauge",
                   "Start time of the process since unix epoch in seconds.");
            tr__obuf_printf(b, "process_start_time_seconds %.2f\n",
                            (double)btime + (double)start / (double)tick);
        }
    }
    unsigned long long size, resident;
    FILE *f = fopen("/proc/self/statm", "r");
    if (f != NULL) {
        if (fscanf(f, "%llu %llu", &size, &resident) == 2 && page > 0) {
            family(b, "process_resident_memory_bytes", "gauge", "Resident memory size in bytes.");
            sample_u64(b, "process_resident_memory_bytes", resident * (unsigned long long)page);
            family(b, "process_virtual_memory_bytes", "gauge", "Virtual memory size in bytes.");
            sample_u64(b, "process_virtual_memory_bytes", size * (unsigned long long)page);
        }
        fclose(f);
    }
    long fds = open_fds();
    if (fds >= 0) {
        family(b, "process_open_fds", "gauge", "Number of open file descriptors.");
        sample_u64(b, "process_open_fds", (uint64_t)fds);
    }
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY) {
        family(b, "process_max_fds", "gauge", "Maximum number of open file descriptors.");
        sample_u64(b, "process_max_fds", (uint64_t)rl.rlim_cur);
    }
}

int tr__prom_write(tr_runtime *rt, tr__obuf *b)
{
    tr_metrics m;
    tr_worker_metrics few[64], *w = few;
    unsigned n = tr_runtime_metrics(rt, &m, few, 64);
    if (n > 64) {
        /* Workers may not change while the runtime exists: one more read. */
        w = calloc(n, sizeof *w);
        if (w == NULL)
            return TR_ENOMEM;
        n = tr_runtime_metrics(rt, &m, w, n);
    }
    runtime_families(b, &m);
    lateness(b, &m);
    per_worker(b, w, n);
    named_actors(b, rt);
    process_families(b);
    if (w != few)
        free(w);
    return b->oom ? TR_ENOMEM : 0;
}
