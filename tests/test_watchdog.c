/* test_watchdog.c — the watchdog reports a behaviour turn that runs past
 * its threshold once, with the actor's pid, name and behaviour symbol, to
 * the hook or as a line on stderr; it reports none of a run of 10-ms
 * turns under a 100-ms threshold, none of a turn that is long on the
 * clock only because its thread waited for the CPU, and nothing at all
 * when off.
 *
 * Counts, not times: the sleeps are 3x the threshold and a tenth of it,
 * so a loaded machine changes no count. The behaviours are not static:
 * dladdr names only exported symbols (the runner is linked -rdynamic). */
#include "tests.h"

#include <fcntl.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

enum { NAP = 0x7301, STOP_NOW, BURN };

#define MAX_REPORTS 16

static struct {
    pthread_mutex_t lock;
    unsigned n;
    tr_long_turn turn[MAX_REPORTS];
    char name[MAX_REPORTS][64], behaviour[MAX_REPORTS][128];
} reports = {.lock = PTHREAD_MUTEX_INITIALIZER};

static void on_long_turn(const tr_long_turn *t, void *arg)
{
    TT_CHECK(arg == &reports);
    pthread_mutex_lock(&reports.lock);
    if (reports.n < MAX_REPORTS) {
        unsigned i = reports.n;
        reports.turn[i] = *t;
        snprintf(reports.name[i], sizeof reports.name[i], "%s", t->name);
        snprintf(reports.behaviour[i], sizeof reports.behaviour[i], "%s", t->behaviour);
    }
    reports.n++;
    pthread_mutex_unlock(&reports.lock);
}

static void reports_reset(void)
{
    pthread_mutex_lock(&reports.lock);
    reports.n = 0;
    pthread_mutex_unlock(&reports.lock);
}

static unsigned reports_count(void)
{
    pthread_mutex_lock(&reports.lock);
    unsigned n = reports.n;
    pthread_mutex_unlock(&reports.lock);
    return n;
}

static atomic_uint naps;

/* Sleeps the milliseconds its message says: the turn that blocks. */
void tt_watchdog_napper(tr_ctx *cx, void *state, const tr_msg *m)
{
    (void)state;
    if (m->type == STOP_NOW) {
        tr_stop(cx);
        return;
    }
    uint64_t ms = tt_u64(m);
    struct timespec ts = {.tv_sec = (time_t)(ms / 1000), .tv_nsec = (long)(ms % 1000) * 1000000};
    while (nanosleep(&ts, &ts) != 0)
        ;
    atomic_fetch_add(&naps, 1);
}

static tr_runtime *watched_runtime(unsigned watchdog_ms, bool hook)
{
    tr_config cfg;
    tr_config_init(&cfg);
    cfg.threads = 2;
    cfg.batch = 1; /* one message a turn: a turn naps once */
    cfg.watchdog_ms = watchdog_ms;
    cfg.trace_path = NULL;
    tr_runtime *rt = NULL;
    TT_EQ(tr_runtime_create(&cfg, &rt), 0);
    CU_ASSERT_FATAL(rt != NULL);
    if (hook)
        TT_EQ(tr_runtime_on_long_turn(rt, on_long_turn, &reports), 0);
    reports_reset();
    atomic_store(&naps, 0);
    return rt;
}

static void nap(tr_runtime *rt, tr_pid p, uint64_t ms)
{
    TT_EQ(tr_send(tr_runtime_ctx(rt), p, NAP, &ms, sizeof ms), 0);
}

static tr_pid spawn_napper(tr_runtime *rt, const char *name)
{
    tr_actor_spec spec = {.behaviour = tt_watchdog_napper, .name = name};
    tr_pid p = TR_PID_NONE;
    TT_EQ(tr_spawn_spec(tr_runtime_ctx(rt), &spec, &p), 0);
    return p;
}

static void a_300ms_turn_is_reported_once_with_pid_name_and_behaviour(void)
{
    tr_runtime *rt = watched_runtime(100, true);
    tr_pid p = spawn_napper(rt, "napper");
    nap(rt, p, 300);
    TT_EQ(tr_runtime_run(rt), 0);
    TT_EQ(atomic_load(&naps), 1);
    TT_EQ(reports_count(), 1);
    if (reports_count() == 1) {
        TT_EQ(reports.turn[0].pid, p);
        CU_ASSERT_STRING_EQUAL(reports.name[0], "napper");
        if (strstr(reports.behaviour[0], "tt_watchdog_napper") == NULL)
            printf("\n    behaviour reported as \"%s\"\n", reports.behaviour[0]);
        CU_ASSERT(strstr(reports.behaviour[0], "tt_watchdog_napper") != NULL);
        CU_ASSERT(reports.turn[0].worker < 2);
        /* At least the threshold: the watchdog never reports early. */
        CU_ASSERT(reports.turn[0].elapsed_ns >= 100 * 1000000ull);
    }
    tr_runtime_destroy(rt);
    TT_NO_ERRORS();
}

static void two_long_turns_are_two_reports(void)
{
    tr_runtime *rt = watched_runtime(100, true);
    tr_pid p = spawn_napper(rt, NULL);
    nap(rt, p, 300);
    nap(rt, p, 300);
    TT_EQ(tr_runtime_run(rt), 0);
    TT_EQ(atomic_load(&naps), 2);
    TT_EQ(reports_count(), 2);
    for (unsigned i = 0; i < 2 && i < reports_count(); i++) {
        TT_EQ(reports.turn[i].pid, p);
        CU_ASSERT_STRING_EQUAL(reports.name[i], "");
    }
    tr_runtime_destroy(rt);
    TT_NO_ERRORS();
}

static void turns_of_10ms_are_not_reported(void)
{
    tr_runtime *rt = watched_runtime(100, true);
    tr_pid a = spawn_napper(rt, NULL), b = spawn_napper(rt, NULL);
    for (int i = 0; i < 20; i++) {
        nap(rt, a, 10);
        nap(rt, b, 10);
    }
    TT_EQ(tr_runtime_run(rt), 0);
    TT_EQ(atomic_load(&naps), 40);
    TT_EQ(reports_count(), 0);
    tr_runtime_destroy(rt);
    TT_NO_ERRORS();
}

/* ---- a turn that waits for the CPU ---- */

static double thread_cpu_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    return (double)t.tv_sec * 1e3 + (double)t.tv_nsec / 1e6;
}

static atomic_bool spinning;
static _Atomic double burn_wall_ms;

/* Computes for 60 ms of its own thread's CPU time in one turn, and notes
 * how long that took on the clock. */
void tt_watchdog_burner(tr_ctx *cx, void *state, const tr_msg *m)
{
    (void)cx;
    (void)state;
    TT_CHECK(m->type == BURN);
    double wall = tt_now(), cpu = thread_cpu_ms();
    volatile uint64_t x = 1;
    while (thread_cpu_ms() - cpu < 60)
        for (int i = 0; i < 10000; i++)
            x = x * 6364136223846793005u + 1;
    atomic_store(&burn_wall_ms, (tt_now() - wall) * 1e3);
}

static void *spinner(void *arg)
{
    (void)arg;
    volatile uint64_t x = 1;
    while (atomic_load(&spinning))
        x = x * 6364136223846793005u + 1;
    return NULL;
}

static bool schedstat_readable(void)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/self/task/%d/schedstat", (int)gettid());
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd >= 0)
        close(fd);
    return fd >= 0;
}

/* One worker and two plain threads that compute all along, all on one
 * CPU: the worker's 60-ms turn takes about three times that on the clock,
 * past the 100-ms threshold, and is not reported — its thread ran or was
 * ready to run, and only the CPU was missing. (A turn that naps, above,
 * is blocked, not waiting for a CPU, and is reported.) */
static void a_turn_long_only_for_want_of_a_cpu_is_not_reported(void)
{
    if (!schedstat_readable()) {
        printf("\n    skipped: /proc/self/task/TID/schedstat cannot be read here\n");
        return;
    }
    cpu_set_t saved, one;
    TT_EQ(pthread_getaffinity_np(pthread_self(), sizeof saved, &saved), 0);
    int cpu = sched_getcpu();
    CPU_ZERO(&one);
    CPU_SET(cpu >= 0 ? cpu : 0, &one);
    if (pthread_setaffinity_np(pthread_self(), sizeof one, &one) != 0) {
        printf("\n    skipped: cannot keep the test on one CPU\n");
        return;
    }
    /* Made now, everything inherits the one CPU: spinners, worker, monitor. */
    atomic_store(&spinning, true);
    atomic_store(&burn_wall_ms, 0.0);
    pthread_t spinners[2];
    for (int i = 0; i < 2; i++)
        TT_EQ(pthread_create(&spinners[i], NULL, spinner, NULL), 0);
    tr_config cfg;
    tr_config_init(&cfg);
    cfg.threads = 1;
    cfg.watchdog_ms = 100;
    cfg.trace_path = NULL;
    tr_runtime *rt = NULL;
    TT_EQ(tr_runtime_create(&cfg, &rt), 0);
    CU_ASSERT_FATAL(rt != NULL);
    TT_EQ(tr_runtime_on_long_turn(rt, on_long_turn, &reports), 0);
    reports_reset();
    tr_actor_spec spec = {.behaviour = tt_watchdog_burner};
    tr_pid p = TR_PID_NONE;
    TT_EQ(tr_spawn_spec(tr_runtime_ctx(rt), &spec, &p), 0);
    TT_EQ(tr_send(tr_runtime_ctx(rt), p, BURN, NULL, 0), 0);
    TT_EQ(tr_runtime_run(rt), 0);
    atomic_store(&spinning, false);
    for (int i = 0; i < 2; i++)
        pthread_join(spinners[i], NULL);
    pthread_setaffinity_np(pthread_self(), sizeof saved, &saved);

    double wall = atomic_load(&burn_wall_ms);
    if (wall < 150)
        printf("\n    the turn took %.0f ms on the clock: the CPU was not shared as "
               "meant, nothing shown\n", wall);
    else
        TT_EQ(reports_count(), 0);
    tr_runtime_destroy(rt);
    TT_NO_ERRORS();
}

static void threshold_0_is_off(void)
{
    tr_runtime *rt = watched_runtime(0, true);
    tr_pid p = spawn_napper(rt, NULL);
    nap(rt, p, 300);
    TT_EQ(tr_runtime_run(rt), 0);
    TT_EQ(atomic_load(&naps), 1);
    TT_EQ(reports_count(), 0);
    tr_runtime_destroy(rt);
}

/* Without a hook: one line on stderr naming the actor and its behaviour. */
static void without_a_hook_one_line_goes_to_stderr(void)
{
    char path[] = "/tmp/troupe-watchdog-XXXXXX";
    int fd = mkstemp(path);
    CU_ASSERT_FATAL(fd >= 0);
    tr_runtime *rt = watched_runtime(100, false);
    tr_pid p = spawn_napper(rt, "stderr_napper");
    nap(rt, p, 300);
    fflush(stderr);
    int saved = dup(2);
    dup2(fd, 2);
    int rc = tr_runtime_run(rt);
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    TT_EQ(rc, 0);
    char text[4096] = {0};
    ssize_t n = pread(fd, text, sizeof text - 1, 0);
    close(fd);
    unlink(path);
    CU_ASSERT(n > 0);
    unsigned lines = 0;
    for (char *s = text; (s = strstr(s, "troupe: watchdog:")) != NULL; s++)
        lines++;
    TT_EQ(lines, 1);
    char pid[32];
    snprintf(pid, sizeof pid, "%" PRIx64, p);
    CU_ASSERT(strstr(text, pid) != NULL);
    CU_ASSERT(strstr(text, "\"stderr_napper\"") != NULL);
    CU_ASSERT(strstr(text, "tt_watchdog_napper") != NULL);
    if (lines != 1)
        printf("\n    stderr: %s\n", text);
    tr_runtime_destroy(rt);
}

static void the_hook_is_set_only_while_stopped(void)
{
    TT_EQ(tr_runtime_on_long_turn(NULL, on_long_turn, NULL), TR_EINVAL);
    tr_runtime *rt = watched_runtime(100, false);
    TT_EQ(tr_runtime_hold(rt), 0);
    TT_EQ(tr_runtime_start(rt), 0);
    TT_EQ(tr_runtime_on_long_turn(rt, on_long_turn, &reports), TR_EBUSY);
    TT_EQ(tr_runtime_release(rt), 0);
    TT_EQ(tt_join_within(rt, 60), 0);
    TT_EQ(tr_runtime_on_long_turn(rt, on_long_turn, &reports), 0);
    TT_EQ(tr_runtime_on_long_turn(rt, NULL, NULL), 0);
    tr_runtime_destroy(rt);
}

static void the_threshold_comes_from_TROUPE_WATCHDOG_MS(void)
{
    const char *saved = getenv("TROUPE_WATCHDOG_MS");
    char *copy = saved != NULL ? strdup(saved) : NULL;
    tr_config cfg;
    unsetenv("TROUPE_WATCHDOG_MS");
    tr_config_init(&cfg);
    TT_EQ(cfg.watchdog_ms, 100);
    setenv("TROUPE_WATCHDOG_MS", "250", 1);
    tr_config_init(&cfg);
    TT_EQ(cfg.watchdog_ms, 250);
    setenv("TROUPE_WATCHDOG_MS", "0", 1);
    tr_config_init(&cfg);
    TT_EQ(cfg.watchdog_ms, 0);
    const char *bad[] = {"", "abc", "-1", "12x", "99999999999999"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        setenv("TROUPE_WATCHDOG_MS", bad[i], 1);
        tr_config_init(&cfg);
        TT_EQ(cfg.watchdog_ms, 100);
    }
    if (copy != NULL)
        setenv("TROUPE_WATCHDOG_MS", copy, 1);
    else
        unsetenv("TROUPE_WATCHDOG_MS");
    free(copy);
}

void register_watchdog_tests(void)
{
    CU_pSuite s = tt_suite("watchdog");
    tt_test(s, "a_300ms_turn_is_reported_once_with_pid_name_and_behaviour",
            a_300ms_turn_is_reported_once_with_pid_name_and_behaviour);
    tt_test(s, "two_long_turns_are_two_reports", two_long_turns_are_two_reports);
    tt_test(s, "turns_of_10ms_are_not_reported", turns_of_10ms_are_not_reported);
    tt_test(s, "a_turn_long_only_for_want_of_a_cpu_is_not_reported",
            a_turn_long_only_for_want_of_a_cpu_is_not_reported);
    tt_test(s, "threshold_0_is_off", threshold_0_is_off);
    tt_test(s, "without_a_hook_one_line_goes_to_stderr", without_a_hook_one_line_goes_to_stderr);
    tt_test(s, "the_hook_is_set_only_while_stopped", the_hook_is_set_only_while_stopped);
    tt_test(s, "the_threshold_comes_from_TROUPE_WATCHDOG_MS",
            the_threshold_comes_from_TROUPE_WATCHDOG_MS);
}
