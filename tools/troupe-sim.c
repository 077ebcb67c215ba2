/* troupe-sim — runs a troupe program under simulation across many seeds
 * and reports the first one that fails, with the command that replays it.
 *
 *   troupe-sim --seeds A-B [-j N] [--pct] [--options STR] [--trace FILE]
 *              [--timeout SECONDS] PROGRAM [ARGS...]
 *
 * Each seed is one run of PROGRAM ARGS with TROUPE_SIM_SEED=seed (and
 * TROUPE_SIM=STR: --options, else the TROUPE_SIM inherited, with
 * sched=pct added by --pct), up to N at a time (default: the CPUs), each
 * in a process group of its own with its stdout and stderr in a temporary
 * file. A run fails if it exits non-zero, dies by a signal, is still
 * running after --timeout real seconds (default 60; 0: no limit), or
 * prints a sanitizer report or a liveness failure. At the first failure
 * no more seeds are started; the runs in flight finish, and the lowest
 * failing seed seen is reported with its output's last lines and the
 * command that reproduces it (then, with --trace, rerun once with
 * TROUPE_TRACE=FILE). Exit: 0 all passed, 1 a seed failed, 2 bad
 * arguments or a sweep that could not run.
 *
 * Not an actor program: one thread, fork and exec, and SIGCHLD taken with
 * sigtimedwait so that the deadlines of hung runs need no polling loop.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define TAIL_LINES 20
#define TAIL_WIDTH 300 /* a longer line is shown cut */
#define MAX_JOBS 1024

/* What a sanitizer or the simulator prints when a run went wrong even
 * if the program's exit status says otherwise. */
static const struct {
    const char *text, *reason;
} reports[] = {
    {"ERROR: AddressSanitizer", "AddressSanitizer report"},
    {"WARNING: ThreadSanitizer", "ThreadSanitizer report"},
    {"ERROR: LeakSanitizer", "LeakSanitizer report"},
    {"runtime error:", "UndefinedBehaviorSanitizer report (runtime error)"},
    {"liveness failure", "liveness failure"},
};

static const char hash_tag[] = "trace hash=";

typedef struct sweep {
    uint64_t first, last;
    unsigned jobs;
    double timeout;      /* seconds; 0: none */
    char *sim_options;   /* TROUPE_SIM for the runs; NULL: unset */
    const char *trace;   /* --trace FILE, or NULL */
    char **argv;         /* PROGRAM ARGS, NULL-terminated */
} sweep;

typedef struct run {
    pid_t pid; /* 0: the slot is free */
    uint64_t seed;
    int out;   /* its output, an unlinked temporary file */
    double deadline;
    bool hung;
} run;

/* What a finished run's exit and output say. */
typedef struct verdict {
    bool failed;
    char reason[192];
    bool hashed;   /* it printed at least one trace hash */
    uint64_t hash; /* all it printed, combined */
} verdict;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static uint64_t mix64(uint64_t z)
{
    z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
    return z ^ (z >> 31);
}

/* ---- arguments ---- */

static int usage(void)
{
    fprintf(stderr, "usage: troupe-sim --seeds A-B [-j N] [--pct] [--options STR] [--trace FILE] "
                    "[--timeout SECONDS] PROGRAM [ARGS...]\n");
    return 2;
}

/* A decimal number made of digits only (no sign, no spaces), in range. */
static bool decimal(const char *s, const char *end, uint64_t *out)
{
    if (s == end)
        return false;
    uint64_t v = 0;
    for (; s < end; s++) {
        if (*s < '0' || *s > '9' || v > (UINT64_MAX - (uint64_t)(*s - '0')) / 10)
            return false;
        v = v * 10 + (uint64_t)(*s - '0');
    }
    *out = v;
    return true;
}

/* "A-B" or "A"; seeds start at 1, as 0 asks the runtime to pick one and
 * would replay nothing. */
static bool parse_seeds(const char *s, sweep *sw)
{
    const char *dash = strchr(s, '-'), *end = s + strlen(s);
    if (!decimal(s, dash != NULL ? dash : end, &sw->first))
        return false;
    sw->last = sw->first;
    if (dash != NULL && !decimal(dash + 1, end, &sw->last))
        return false;
    /* The largest seed is TR_SIM_ANY_SEED: not a seed either. */
    return sw->first >= 1 && sw->last >= sw->first && sw->last < UINT64_MAX;
}

/* The value of option `name` at argv[*i]: "--name VALUE" or "--name=VALUE"
 * (and "-jN" for -j). NULL if argv[*i] is not that option; *bad if it is
 * but has no value. */
static const char *value_of(char **argv, int argc, int *i, const char *name, bool *bad)
{
    size_t n = strlen(name);
    const char *a = argv[*i];
    if (strncmp(a, name, n) != 0)
        return NULL;
    if (a[n] == '=' || (a[n] != '\0' && name[1] != '-'))
        return a + n + (a[n] == '=');
    if (a[n] != '\0')
        return NULL;
    if (*i + 1 >= argc) {
        *bad = true;
        return NULL;
    }
    return argv[++*i];
}

static unsigned cpus(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n < 1 ? 1 : n > MAX_JOBS ? MAX_JOBS : (unsigned)n;
}

/* The TROUPE_SIM the runs get: the options given (else the ones
 * inherited), with sched=pct last so that it wins. NULL: none. */
static char *sim_options(const char *given, bool pct)
{
    const char *base = given != NULL ? given : getenv("TROUPE_SIM");
    if (base == NULL)
        base = "";
    if (*base == '\0' && !pct)
        return NULL;
    size_t n = strlen(base) + sizeof ",sched=pct";
    char *s = malloc(n);
    if (s != NULL)
        snprintf(s, n, "%s%s%s", base, pct && *base != '\0' ? "," : "", pct ? "sched=pct" : "");
    return s;
}

/* 0, or the exit code for bad arguments. */
static int parse_args(int argc, char **argv, sweep *sw)
{
    bool seeds = false, pct = false, bad = false;
    const char *options = NULL, *v;
    *sw = (sweep){.jobs = cpus(), .timeout = 60};
    int i = 1;
    for (; i < argc && argv[i][0] == '-' && !bad; i++) {
        uint64_t n;
        char *stop;
        if (strcmp(argv[i], "--") == 0) {
            i++;
            break;
        } else if (strcmp(argv[i], "--pct") == 0) {
            pct = true;
        } else if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
            usage();
            exit(0);
        } else if ((v = value_of(argv, argc, &i, "--seeds", &bad)) != NULL) {
            if (!parse_seeds(v, sw)) {
                fprintf(stderr, "troupe-sim: --seeds %s: want A-B or A, decimal, 1 <= A <= B\n", v);
                return usage();
            }
            seeds = true;
        } else if ((v = value_of(argv, argc, &i, "-j", &bad)) != NULL ||
                   (v = value_of(argv, argc, &i, "--jobs", &bad)) != NULL) {
            if (!decimal(v, v + strlen(v), &n) || n < 1 || n > MAX_JOBS) {
                fprintf(stderr, "troupe-sim: -j %s: want 1 to %d\n", v, MAX_JOBS);
                return usage();
            }
            sw->jobs = (unsigned)n;
        } else if ((v = value_of(argv, argc, &i, "--options", &bad)) != NULL) {
            options = v;
        } else if ((v = value_of(argv, argc, &i, "--trace", &bad)) != NULL) {
            sw->trace = v;
        } else if ((v = value_of(argv, argc, &i, "--timeout", &bad)) != NULL) {
            errno = 0;
            sw->timeout = strtod(v, &stop);
            if (*v == '\0' || *stop != '\0' || errno != 0 || !(sw->timeout >= 0) ||
                sw->timeout > 1e9) {
                fprintf(stderr, "troupe-sim: --timeout %s: want seconds >= 0\n", v);
                return usage();
            }
        } else if (!bad) {
            fprintf(stderr, "troupe-sim: unknown option %s\n", argv[i]);
            return usage();
        }
    }
    if (bad || !seeds || i >= argc) {
        fprintf(stderr, "troupe-sim: %s\n", bad      ? "an option lacks its value"
                                            : !seeds ? "--seeds is required"
                                                     : "no PROGRAM to run");
        return usage();
    }
    sw->argv = argv + i;
    sw->sim_options = sim_options(options, pct);
    if ((options != NULL || pct) && sw->sim_options == NULL) {
        fprintf(stderr, "troupe-sim: out of memory\n");
        return 2;
    }
    return 0;
}

/* Whether PROGRAM can be run: a path to an executable file, or a name
 * found in PATH (as execvp and the shell look it up). */
static bool runnable(const char *prog)
{
    struct stat st;
    if (strchr(prog, '/') != NULL)
        return access(prog, X_OK) == 0 && stat(prog, &st) == 0 && S_ISREG(st.st_mode);
    const char *path = getenv("PATH");
    if (path == NULL || *prog == '\0')
        return false;
    char full[4096];
    while (*path != '\0') {
        size_t n = strcspn(path, ":");
        snprintf(full, sizeof full, "%.*s%s%s", (int)n, path, n != 0 ? "/" : "./", prog);
        if (access(full, X_OK) == 0 && stat(full, &st) == 0 && S_ISREG(st.st_mode))
            return true;
        path += n + (path[n] == ':');
    }
    return false;
}

/* ---- one run ---- */

static sigset_t waited; /* SIGCHLD and the signals that end the sweep */
static sigset_t saved_mask;

static void on_child(int sig)
{
    (void)sig; /* only so that SIGCHLD is not discarded: sigtimedwait takes it */
}

static int temp_file(void)
{
    const char *dir = getenv("TMPDIR");
    char path[4096];
    snprintf(path, sizeof path, "%s/troupe-sim-XXXXXX", dir != NULL && *dir != '\0' ? dir : "/tmp");
    int fd = mkostemp(path, O_CLOEXEC);
    if (fd >= 0)
        unlink(path); /* gone when the last descriptor is */
    return fd;
}

/* In the child: the environment of seed `seed`, then PROGRAM. */
static void child(const sweep *sw, uint64_t seed, int out, const char *trace)
{
    char s[24];
    snprintf(s, sizeof s, "%" PRIu64, seed);
    int null = open("/dev/null", O_RDONLY);
    if (setpgid(0, 0) != 0 || null < 0 || dup2(null, STDIN_FILENO) < 0 ||
        dup2(out, STDOUT_FILENO) < 0 || dup2(out, STDERR_FILENO) < 0 ||
        setenv("TROUPE_SIM_SEED", s, 1) != 0 ||
        (sw->sim_options != NULL ? setenv("TROUPE_SIM", sw->sim_options, 1)
                                 : unsetenv("TROUPE_SIM")) != 0 ||
        (trace != NULL ? setenv("TROUPE_TRACE", trace, 1) : unsetenv("TROUPE_TRACE")) != 0)
        _exit(127);
    signal(SIGCHLD, SIG_DFL);
    sigprocmask(SIG_SETMASK, &saved_mask, NULL);
    execvp(sw->argv[0], sw->argv);
    fprintf(stderr, "troupe-sim: cannot run %s: %s\n", sw->argv[0], strerror(errno));
    _exit(127);
}

/* Starts seed `seed` in slot r; false (with a message) if it cannot. */
static bool launch(const sweep *sw, run *r, uint64_t seed, const char *trace)
{
    int out = temp_file();
    if (out < 0) {
        fprintf(stderr, "troupe-sim: cannot create a temporary file: %s\n", strerror(errno));
        return false;
    }
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) {
        fprintf(stderr, "troupe-sim: fork: %s\n", strerror(errno));
        close(out);
        return false;
    }
    if (pid == 0)
        child(sw, seed, out, trace);
    /* Also here, so that a kill of the group cannot come before the
     * child's own setpgid. */
    setpgid(pid, pid);
    *r = (run){.pid = pid, .seed = seed, .out = out, .hung = false,
               .deadline = sw->timeout > 0 ? now_s() + sw->timeout : 0};
    return true;
}

/* A run's output file, read from its start through a descriptor of its
 * own, so that closing the stream leaves out open; NULL if it cannot be. */
static FILE *output_of(int out)
{
    int fd = dup(out);
    if (fd < 0)
        return NULL;
    FILE *f = lseek(fd, 0, SEEK_SET) == 0 ? fdopen(fd, "r") : NULL;
    if (f == NULL)
        close(fd);
    return f;
}

/* Reads a finished run's output for sanitizer reports, liveness failures
 * and trace hashes, and judges it with its wait status. */
static void judge(const sweep *sw, const run *r, int status, verdict *v)
{
    *v = (verdict){.failed = false};
    const char *report = NULL;
    FILE *f = output_of(r->out);
    char *line = NULL;
    size_t cap = 0;
    while (f != NULL && getline(&line, &cap, f) > 0) {
        for (size_t i = 0; report == NULL && i < sizeof reports / sizeof reports[0]; i++)
            if (strstr(line, reports[i].text) != NULL)
                report = reports[i].reason;
        const char *h = strstr(line, hash_tag);
        if (h != NULL) {
            v->hash = mix64(v->hash ^ strtoull(h + sizeof hash_tag - 1, NULL, 16));
            v->hashed = true;
        }
    }
    free(line);
    if (f != NULL)
        fclose(f);

    char how[96] = "";
    if (r->hung)
        snprintf(how, sizeof how, "hung: still running after %g s (--timeout), killed",
                 sw->timeout);
    else if (WIFSIGNALED(status))
        snprintf(how, sizeof how, "killed by signal %d (%s)", WTERMSIG(status),
                 strsignal(WTERMSIG(status)));
    else if (WEXITSTATUS(status) != 0)
        snprintf(how, sizeof how, "exit status %d", WEXITSTATUS(status));
    v->failed = report != NULL || how[0] != '\0';
    if (report != NULL && how[0] != '\0')
        snprintf(v->reason, sizeof v->reason, "%s (%s)", report, how);
    else
        snprintf(v->reason, sizeof v->reason, "%s", report != NULL ? report : how);
}

/* ---- the sweep ---- */

typedef struct tally {
    uint64_t done, unhashed;
    uint64_t *hashes;
    size_t nhashes, cap;
    bool failed;
    uint64_t seed;       /* the lowest failing seed so far */
    int out;             /* its output */
    char reason[192];
} tally;

static void count(tally *t, const run *r, const verdict *v)
{
    t->done++;
    if (!v->hashed) {
        t->unhashed++;
    } else {
        if (t->nhashes == t->cap) {
            size_t cap = t->cap * 2 + 64;
            uint64_t *h = realloc(t->hashes, cap * sizeof *h);
            if (h != NULL) {
                t->hashes = h;
                t->cap = cap;
            }
        }
        if (t->nhashes < t->cap) /* (else the count of distinct hashes falls short) */
            t->hashes[t->nhashes++] = v->hash;
    }
    if (v->failed && (!t->failed || r->seed < t->seed)) {
        if (t->failed)
            close(t->out);
        t->failed = true;
        t->seed = r->seed;
        t->out = r->out;
        snprintf(t->reason, sizeof t->reason, "%s", v->reason);
    } else {
        close(r->out);
    }
}

static void kill_all(run *runs, unsigned n)
{
    for (unsigned i = 0; i < n; i++)
        if (runs[i].pid != 0) {
            kill(-runs[i].pid, SIGKILL);
            waitpid(runs[i].pid, NULL, 0);
            close(runs[i].out);
            runs[i].pid = 0;
        }
}

/* Waits until a run ends or a deadline passes; reaps what ended and
 * kills (by group) what is past its deadline. Returns a signal that asks
 * to stop the sweep, or 0. */
static int wait_some(const sweep *sw, run *runs, unsigned n, tally *t)
{
    double soonest = 0, now = now_s();
    for (unsigned i = 0; i < n; i++)
        if (runs[i].pid != 0 && !runs[i].hung && runs[i].deadline != 0 &&
            (soonest == 0 || runs[i].deadline < soonest))
            soonest = runs[i].deadline;
    double wait = soonest == 0 ? 3600 : soonest > now ? soonest - now : 0;
    struct timespec ts = {.tv_sec = (time_t)wait, .tv_nsec = (long)((wait - (double)(time_t)wait) * 1e9)};
    int sig = sigtimedwait(&waited, NULL, &ts);
    if (sig == SIGINT || sig == SIGTERM || sig == SIGHUP)
        return sig;
    now = now_s();
    for (unsigned i = 0; i < n; i++) {
        run *r = &runs[i];
        int status;
        if (r->pid == 0)
            continue;
        if (waitpid(r->pid, &status, WNOHANG) == r->pid) {
            verdict v;
            judge(sw, r, status, &v);
            count(t, r, &v);
            r->pid = 0;
        } else if (!r->hung && r->deadline != 0 && now >= r->deadline) {
            /* The group: a program that forked (TROUPE_SIM_CHECK does)
             * leaves nothing behind. */
            kill(-r->pid, SIGKILL);
            r->hung = true;
        }
    }
    return 0;
}

/* Runs seeds first..last, at most sw->jobs at a time, until one fails.
 * Returns a signal that interrupted it, 0 when it ended, -1 when a run
 * could not be started. */
static int sweep_seeds(const sweep *sw, tally *t)
{
    run *runs = calloc(sw->jobs, sizeof *runs);
    if (runs == NULL)
        return -1;
    uint64_t next = sw->first;
    bool more = true;
    unsigned busy = 0;
    bool progress = isatty(STDERR_FILENO);
    int rc = 0;
    while (busy > 0 || (more && !t->failed)) {
        for (unsigned i = 0; i < sw->jobs && more && !t->failed && rc == 0; i++)
            if (runs[i].pid == 0) {
                if (!launch(sw, &runs[i], next, NULL))
                    rc = -1;
                else
                    more = next++ < sw->last;
            }
        int sig = rc != 0 ? 0 : wait_some(sw, runs, sw->jobs, t);
        if (sig != 0 || rc != 0) {
            kill_all(runs, sw->jobs);
            if (rc == 0)
                rc = sig;
            break;
        }
        busy = 0;
        for (unsigned i = 0; i < sw->jobs; i++)
            busy += runs[i].pid != 0;
        if (progress)
            fprintf(stderr, "\rtroupe-sim: %" PRIu64 " of %" PRIu64 " seeds run", t->done,
                    sw->last - sw->first + 1);
    }
    if (progress)
        fprintf(stderr, "\r\033[K");
    free(runs);
    return rc;
}

/* ---- the report ---- */

/* w in single quotes, each quote in it written '\''. */
static void print_single_quoted(const char *w)
{
    putchar('\'');
    for (; *w != '\0'; w++)
        if (*w == '\'')
            fputs("'\\''", stdout);
        else
            putchar(*w);
    putchar('\'');
}

/* A word as the shell reads it back unchanged. */
static void print_quoted(const char *w)
{
    if (*w != '\0' && strspn(w, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
                                "_./:=@%+,-") == strlen(w))
        fputs(w, stdout);
    else
        print_single_quoted(w);
}

static void print_command(const sweep *sw, uint64_t seed)
{
    fputs("    ", stdout);
    if (sw->sim_options != NULL) {
        fputs("TROUPE_SIM=", stdout);
        /* Always quoted: the form, and options may hold spaces. */
        print_single_quoted(sw->sim_options);
        putchar(' ');
    }
    printf("TROUPE_SIM_SEED=%" PRIu64, seed);
    for (char **a = sw->argv; *a != NULL; a++) {
        putchar(' ');
        print_quoted(*a);
    }
    putchar('\n');
}

/* The last TAIL_LINES lines of a run's output, indented. */
static void print_tail(int out)
{
    static char ring[TAIL_LINES][TAIL_WIDTH + 1];
    unsigned n = 0;
    FILE *f = output_of(out);
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    while (f != NULL && (len = getline(&line, &cap, f)) > 0) {
        if (line[len - 1] == '\n')
            line[--len] = '\0';
        snprintf(ring[n % TAIL_LINES], TAIL_WIDTH + 1, "%s", line);
        n++;
    }
    free(line);
    if (f != NULL)
        fclose(f);
    if (n == 0) {
        printf("troupe-sim: it printed nothing\n");
        return;
    }
    if (n > TAIL_LINES)
        printf("troupe-sim: the last %u of its %u lines of output:\n", TAIL_LINES, n);
    else
        printf("troupe-sim: its output (%u line%s):\n", n, n == 1 ? "" : "s");
    for (unsigned i = n > TAIL_LINES ? n - TAIL_LINES : 0; i < n; i++)
        printf("    | %s\n", ring[i % TAIL_LINES]);
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static size_t distinct(uint64_t *h, size_t n)
{
    if (n == 0)
        return 0; /* (h may be NULL: qsort must not see it) */
    qsort(h, n, sizeof *h, cmp_u64);
    size_t d = 0;
    for (size_t i = 0; i < n; i++)
        d += i == 0 || h[i] != h[i - 1];
    return d;
}

/* The failing seed once more, with TROUPE_TRACE: where the trace went,
 * and whether the failure came back. */
static void rerun_traced(const sweep *sw, const tally *t)
{
    printf("troupe-sim: running seed %" PRIu64 " again with TROUPE_TRACE=%s\n", t->seed, sw->trace);
    fflush(stdout);
    unlink(sw->trace); /* so that a file there afterwards is this run's */
    run r;
    tally again = {.out = -1};
    if (!launch(sw, &r, t->seed, sw->trace))
        return;
    int sig = 0;
    while (r.pid != 0 && sig == 0)
        sig = wait_some(sw, &r, 1, &again);
    if (r.pid != 0)
        kill_all(&r, 1);
    if (again.failed) {
        printf("troupe-sim: it failed again: %s\n", again.reason);
        close(again.out);
    } else if (sig == 0) {
        printf("troupe-sim: it PASSED this time: something outside the simulation decides "
               "(docs/simulation.md, \"What breaks determinism\")\n");
    }
    free(again.hashes);
    if (access(sw->trace, F_OK) == 0)
        printf("troupe-sim: its trace is in %s (Chrome trace JSON: open it in "
               "https://ui.perfetto.dev or chrome://tracing)\n",
               sw->trace);
    else
        printf("troupe-sim: no trace was written to %s\n", sw->trace);
}

int main(int argc, char **argv)
{
    sweep sw;
    int rc = parse_args(argc, argv, &sw);
    if (rc != 0)
        return rc;
    if (!runnable(sw.argv[0])) {
        fprintf(stderr, "troupe-sim: %s: not an executable file%s\n", sw.argv[0],
                strchr(sw.argv[0], '/') != NULL ? "" : " in PATH");
        free(sw.sim_options);
        return 2;
    }
    signal(SIGCHLD, on_child);
    sigemptyset(&waited);
    sigaddset(&waited, SIGCHLD);
    sigaddset(&waited, SIGINT);
    sigaddset(&waited, SIGTERM);
    sigaddset(&waited, SIGHUP);
    sigprocmask(SIG_BLOCK, &waited, &saved_mask);

    tally t = {.out = -1};
    rc = sweep_seeds(&sw, &t);
    if (rc != 0) {
        if (rc > 0)
            printf("troupe-sim: interrupted (%s) after %" PRIu64 " seeds\n", strsignal(rc), t.done);
        free(t.hashes);
        free(sw.sim_options);
        return rc > 0 ? 128 + rc : 2;
    }
    if (!t.failed) {
        size_t d = distinct(t.hashes, t.nhashes);
        printf("troupe-sim: %" PRIu64 " seed%s passed, %zu distinct trace hash%s\n", t.done,
               t.done == 1 ? "" : "s", d, d == 1 ? "" : "es");
        if (t.unhashed != 0)
            printf("troupe-sim: %" PRIu64 " run%s printed no \"trace hash=\" line: not "
                   "simulated?\n",
                   t.unhashed, t.unhashed == 1 ? "" : "s");
    } else {
        printf("troupe-sim: seed %" PRIu64 " failed: %s\n", t.seed, t.reason);
        print_tail(t.out);
        printf("troupe-sim: seeds to find it: %" PRIu64 " (seeds %" PRIu64 "-%" PRIu64
               "; %" PRIu64 " runs made)\n",
               t.seed - sw.first + 1, sw.first, t.seed, t.done);
        printf("troupe-sim: reproduce with:\n");
        print_command(&sw, t.seed);
        close(t.out);
        if (sw.trace != NULL)
            rerun_traced(&sw, &t);
    }
    free(t.hashes);
    free(sw.sim_options);
    return t.failed ? 1 : 0;
}
