/* util.c — helpers shared by the test suites (see tests.h). */
#include "tests.h"

#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* ---- watchdog and per-test timing ---------------------------------------- */

static double test_started;

static unsigned watchdog_seconds(void)
{
    const char *s = getenv("TROUPE_TEST_TIMEOUT");
    if (s == NULL || *s == '\0')
        return 600;
    return (unsigned)strtoul(s, NULL, 10);
}

static void write_str(const char *s)
{
    ssize_t r = write(STDERR_FILENO, s, strlen(s));
    (void)r;
}

static void on_alarm(int sig)
{
    (void)sig;
    CU_pTest t = CU_get_current_test();
    CU_pSuite s = CU_get_current_suite();
    write_str("\n\n*** watchdog: test ");
    write_str(s != NULL && s->pName != NULL ? s->pName : "?");
    write_str(":");
    write_str(t != NULL && t->pName != NULL ? t->pName : "?");
    write_str(" did not finish within TROUPE_TEST_TIMEOUT seconds (hang?)\n");
    _exit(124);
}

static void test_setup(void)
{
    tt_reset_errors();
    unsigned secs = watchdog_seconds();
    if (secs > 0) {
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = on_alarm;
        sigemptyset(&sa.sa_mask);
        sigaction(SIGALRM, &sa, NULL);
        alarm(secs);
    }
    test_started = tt_now();
}

static void test_teardown(void)
{
    alarm(0);
    printf("(%.2f s) ", tt_now() - test_started);
    fflush(stdout);
}

CU_pSuite tt_suite(const char *name)
{
    return CU_add_suite_with_setup_and_teardown(name, NULL, NULL, test_setup,
                                                test_teardown);
}

void tt_test(CU_pSuite suite, const char *name, CU_TestFunc fn)
{
    if (suite != NULL)
        CU_add_test(suite, name, fn);
}

/* ---- failures recorded off the test thread -------------------------------- */

static atomic_ulong errors;
static atomic_flag first_taken = ATOMIC_FLAG_INIT;
static const char *first_file;
static int first_line;
static const char *first_what;
static atomic_bool first_ready;

void tt_fail(const char *file, int line, const char *what)
{
    if (!atomic_flag_test_and_set(&first_taken)) {
        first_file = file;
        first_line = line;
        first_what = what;
        atomic_store(&first_ready, true);
    }
    atomic_fetch_add(&errors, 1);
}

unsigned long tt_errors(void)
{
    return atomic_load(&errors);
}

void tt_reset_errors(void)
{
    atomic_store(&errors, 0);
    atomic_store(&first_ready, false);
    atomic_flag_clear(&first_taken);
}

void tt_assert_no_errors(const char *file, unsigned line)
{
    unsigned long n = tt_errors();
    if (n != 0) {
        if (atomic_load(&first_ready))
            printf("\n    %lu failed check(s) off the test thread; first: %s:%d: %s\n",
                   n, first_file, first_line, first_what);
        else
            printf("\n    %lu failed check(s) off the test thread\n", n);
    }
    CU_assertImplementation(n == 0, line, "no failed TT_CHECK (see output)", file,
                            "", CU_FALSE);
}

void tt_assert_eq(long long got, long long want, const char *got_s,
                  const char *want_s, const char *file, unsigned line)
{
    if (got != want)
        printf("\n    %s:%u: %s is %lld, expected %s = %lld\n", file, line, got_s,
               got, want_s, want);
    CU_assertImplementation(got == want, line, got_s, file, "", CU_FALSE);
}

/* ---- helpers -------------------------------------------------------------- */

tr_runtime *tt_runtime(unsigned threads, unsigned batch)
{
    tr_config cfg;
    tr_config_init(&cfg);
    cfg.threads = threads;
    cfg.batch = batch;
    tr_runtime *rt = NULL;
    int rc = tr_runtime_create(&cfg, &rt);
    if (rc != 0)
        printf("\n    tr_runtime_create(threads=%u, batch=%u): %d (%s)\n", threads,
               batch, rc, tr_strerror(rc));
    CU_ASSERT_FATAL(rc == 0 && rt != NULL);
    return rt;
}

void tt_sleep_ms(unsigned ms)
{
    struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L };
    while (nanosleep(&ts, &ts) != 0)
        ;
}

double tt_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

pthread_t tt_thread(void *(*fn)(void *), void *arg)
{
    pthread_t t;
    int rc = pthread_create(&t, NULL, fn, arg);
    CU_ASSERT_FATAL(rc == 0);
    return t;
}

void tt_join(pthread_t t)
{
    int rc = pthread_join(t, NULL);
    CU_ASSERT(rc == 0);
}

void tt_relax(unsigned long *spins)
{
    if (++*spins % 64 == 0)
        sched_yield();
}

uint64_t tt_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * UINT64_C(1000000000) + (uint64_t)ts.tv_nsec;
}

double tt_cpu_seconds(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec * 1e-6 +
           (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec * 1e-6;
}

/* ---- the shared PRNG (splitmix64) ------------------------------------------ */

uint64_t tt_mix64(uint64_t z)
{
    z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
    return z ^ (z >> 31);
}

uint64_t tt_rng_next(uint64_t *state)
{
    return tt_mix64(*state += UINT64_C(0x9e3779b97f4a7c15));
}

uint64_t tt_rng_below(uint64_t *state, uint64_t n)
{
    return n == 0 ? 0 : tt_rng_next(state) % n;
}

/* ---- a join that cannot hang the runner ------------------------------------ */

struct join_guard {
    tr_runtime *rt;
    double seconds;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    bool joined;
    bool fired;
};

static void *join_guard_main(void *arg)
{
    struct join_guard *g = arg;
    struct timespec until;
    clock_gettime(CLOCK_MONOTONIC, &until);
    double whole = (double)(long)g->seconds;
    until.tv_sec += (time_t)whole;
    until.tv_nsec += (long)((g->seconds - whole) * 1e9);
    if (until.tv_nsec >= 1000000000L) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&g->lock);
    while (!g->joined) {
        if (pthread_cond_timedwait(&g->cond, &g->lock, &until) != 0 && !g->joined) {
            g->fired = true;
            break;
        }
    }
    pthread_mutex_unlock(&g->lock);
    if (g->fired) {
        printf("\n    the runtime did not finish within %.0f s: stopping it\n", g->seconds);
        /* Who held it: a few of the actors still alive. */
        tr_actor_figures f[8];
        int n = tr_runtime_top(g->rt, TR_TOP_HANDLED, 8, 0, f);
        for (int i = 0; i < n; i++)
            printf("    alive: %" PRIx64 " %s, %" PRIu64 " handled in %" PRIu64
                   " turns, %" PRIu64 " waiting\n",
                   f[i].pid, f[i].behaviour, f[i].handled, f[i].turns, f[i].mailbox);
        tr_runtime_shutdown(g->rt);
    }
    return NULL;
}

int tt_join_within(tr_runtime *rt, double seconds)
{
    struct join_guard g = { .rt = rt, .seconds = seconds };
    pthread_mutex_init(&g.lock, NULL);
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&g.cond, &attr);
    pthread_condattr_destroy(&attr);
    pthread_t t = tt_thread(join_guard_main, &g);
    int rc = tr_runtime_join(rt);
    pthread_mutex_lock(&g.lock);
    g.joined = true;
    pthread_cond_signal(&g.cond);
    pthread_mutex_unlock(&g.lock);
    tt_join(t);
    pthread_mutex_destroy(&g.lock);
    pthread_cond_destroy(&g.cond);
    return rc;
}

bool tt_wait_flag(atomic_bool *flag, double seconds)
{
    double until = tt_now() + seconds;
    while (!atomic_load(flag)) {
        if (tt_now() > until)
            return false;
        tt_sleep_ms(1);
    }
    return true;
}

void *tt_joiner_main(void *arg)
{
    struct tt_joiner *j = arg;
    j->rc = tr_runtime_join(j->rt);
    atomic_store(&j->returned, true);
    return NULL;
}

long tt_rss_kb(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    long pages = 0, rss = 0;
    if (f != NULL) {
        if (fscanf(f, "%ld %ld", &pages, &rss) != 2)
            rss = 0;
        fclose(f);
    }
    return rss * (sysconf(_SC_PAGESIZE) / 1024);
}

/* Entries of a /proc folder (none of "." and ".."), or -1. */
static int proc_entries(const char *path)
{
    DIR *d = opendir(path);
    if (d == NULL)
        return -1;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        n += e->d_name[0] != '.';
    closedir(d);
    return n;
}

int tt_fds_open(void)
{
    int n = proc_entries("/proc/self/fd");
    CU_ASSERT_FATAL(n > 0);
    return n - 1; /* the listing's own */
}

/* ---- counting the library's send calls (linked with --wrap) ------------- */

#include <sys/socket.h>

#define SEND_FDS 4096
static atomic_ulong send_calls[SEND_FDS];

ssize_t __real_send(int fd, const void *buf, size_t len, int flags);
ssize_t __real_sendmsg(int fd, const struct msghdr *msg, int flags);
ssize_t __wrap_send(int fd, const void *buf, size_t len, int flags);
ssize_t __wrap_sendmsg(int fd, const struct msghdr *msg, int flags);

ssize_t __wrap_send(int fd, const void *buf, size_t len, int flags)
{
    if (fd >= 0 && fd < SEND_FDS)
        atomic_fetch_add(&send_calls[fd], 1);
    return __real_send(fd, buf, len, flags);
}

ssize_t __wrap_sendmsg(int fd, const struct msghdr *msg, int flags)
{
    if (fd >= 0 && fd < SEND_FDS)
        atomic_fetch_add(&send_calls[fd], 1);
    return __real_sendmsg(fd, msg, flags);
}

unsigned long tt_send_calls(int fd)
{
    return fd >= 0 && fd < SEND_FDS ? atomic_load(&send_calls[fd]) : 0;
}

/* ---- accept4 failing once (linked with --wrap=accept4) ------------------- */

static atomic_int accept_fail;

int __real_accept4(int fd, struct sockaddr *addr, socklen_t *len, int flags);
int __wrap_accept4(int fd, struct sockaddr *addr, socklen_t *len, int flags);

int __wrap_accept4(int fd, struct sockaddr *addr, socklen_t *len, int flags)
{
    int err = atomic_exchange(&accept_fail, 0);
    if (err != 0) {
        errno = err;
        return -1;
    }
    return __real_accept4(fd, addr, len, flags);
}

int tt_accept_fail_once(int err)
{
    return atomic_exchange(&accept_fail, err);
}

/* ---- threads that cannot be made (linked with --wrap=pthread_create) ---- */

int __real_pthread_create(pthread_t *t, const pthread_attr_t *attr, void *(*fn)(void *),
                          void *arg);
int __wrap_pthread_create(pthread_t *t, const pthread_attr_t *attr, void *(*fn)(void *),
                          void *arg);

/* The calls counted since tt_thread_fail, and the one (1-based) that
 * fails; 0: off. */
static atomic_ulong thread_seen, thread_fail_at;

int __wrap_pthread_create(pthread_t *t, const pthread_attr_t *attr, void *(*fn)(void *),
                          void *arg)
{
    unsigned long at = atomic_load(&thread_fail_at);
    if (at != 0 && atomic_fetch_add(&thread_seen, 1) + 1 == at)
        return EAGAIN; /* as the real one when a limit on threads is reached */
    return __real_pthread_create(t, attr, fn, arg);
}

void tt_thread_fail(unsigned long nth)
{
    atomic_store(&thread_fail_at, 0);
    atomic_store(&thread_seen, 0);
    atomic_store(&thread_fail_at, nth);
}

int tt_threads_running(void)
{
    return proc_entries("/proc/self/task");
}

/* ---- allocation failures (linked with --wrap for each allocator below) ---- */

void *__real_malloc(size_t size);
void *__real_calloc(size_t n, size_t size);
void *__real_realloc(void *p, size_t size);
void *__real_aligned_alloc(size_t align, size_t size);
char *__real_strdup(const char *s);
void *__wrap_malloc(size_t size);
void *__wrap_calloc(size_t n, size_t size);
void *__wrap_realloc(void *p, size_t size);
void *__wrap_aligned_alloc(size_t align, size_t size);
char *__wrap_strdup(const char *s);

/* The allocations counted since tt_alloc_fail, and the window of them
 * (1-based, inclusive) that fail; alloc_first 0: off, nothing counted. */
static atomic_ulong alloc_seen, alloc_first, alloc_last, alloc_failed;

/* As the real ones fail: NULL, with errno ENOMEM. */
static bool alloc_fails(void)
{
    unsigned long first = atomic_load_explicit(&alloc_first, memory_order_relaxed);
    if (first == 0)
        return false;
    unsigned long k = atomic_fetch_add(&alloc_seen, 1) + 1;
    if (k < first || k > atomic_load(&alloc_last))
        return false;
    atomic_fetch_add(&alloc_failed, 1);
    errno = ENOMEM;
    return true;
}

void *__wrap_malloc(size_t size)
{
    return alloc_fails() ? NULL : __real_malloc(size);
}

void *__wrap_calloc(size_t n, size_t size)
{
    return alloc_fails() ? NULL : __real_calloc(n, size);
}

/* Whether the call is from libei's x_fix_buff, which stores realloc's NULL
 * over the buffer it grows (erl_interface's own slip): failing it would
 * lose that buffer, a leak that is not troupe's, so its reallocs are let
 * through. (The binary is linked with -rdynamic: dladdr names it.) */
static bool from_ei_growth(const void *caller)
{
    Dl_info info;
    return dladdr(caller, &info) != 0 && info.dli_sname != NULL &&
           strcmp(info.dli_sname, "x_fix_buff") == 0;
}

void *__wrap_realloc(void *p, size_t size)
{
    if (p != NULL && atomic_load_explicit(&alloc_first, memory_order_relaxed) != 0 &&
        from_ei_growth(__builtin_return_address(0)))
        return __real_realloc(p, size);
    return alloc_fails() ? NULL : __real_realloc(p, size);
}

void *__wrap_aligned_alloc(size_t align, size_t size)
{
    return alloc_fails() ? NULL : __real_aligned_alloc(align, size);
}

char *__wrap_strdup(const char *s)
{
    return alloc_fails() ? NULL : __real_strdup(s);
}

void tt_alloc_fail(unsigned long first, unsigned long count)
{
    atomic_store(&alloc_first, 0);
    if (first == 0)
        return; /* the counts stay for tt_alloc_seen and tt_alloc_failed */
    atomic_store(&alloc_seen, 0);
    atomic_store(&alloc_failed, 0);
    atomic_store(&alloc_last, count == 0 ? 0 : first + count - 1);
    atomic_store(&alloc_first, first);
}

unsigned long tt_alloc_seen(void)
{
    return atomic_load(&alloc_seen);
}

unsigned long tt_alloc_failed(void)
{
    return atomic_load(&alloc_failed);
}

uint64_t tt_u64(const tr_msg *m)
{
    uint64_t v = 0;
    TT_CHECK(m->len == sizeof v);
    if (m->len == sizeof v)
        memcpy(&v, m->data, sizeof v);
    return v;
}

/* ---- counted actors ---------------------------------------------------------- */

struct tt_counts tt_counts;

void tt_counts_reset(void)
{
    memset(&tt_counts, 0, sizeof tt_counts);
}

static int counted_init(tr_ctx *cx, void *state, tr_pid spawner)
{
    struct tt_counted *st = state;
    TT_CHECK(st->id < TT_MAX_ACTORS);
    TT_CHECK(st->magic == 0);
    tr_pid known = atomic_load(&tt_counts.pid[st->id]); /* NONE: spawn has not returned yet */
    TT_CHECK(known == TR_PID_NONE || known == tr_self(cx));
    st->magic = TT_MAGIC;
    atomic_fetch_add(&tt_counts.inits[st->id], 1);
    atomic_store(&tt_counts.spawner[st->id], spawner);
    return (st->flags & TT_F_INIT_FAIL) ? TT_INIT_FAIL : 0;
}

static void counted_on_stop(void *state, int reason)
{
    struct tt_counted *st = state;
    TT_CHECK(st->id < TT_MAX_ACTORS);
    atomic_fetch_add(&tt_counts.stops[st->id], 1);
    atomic_store(&tt_counts.reason[st->id], reason);
    atomic_fetch_add(&tt_counts.stops_total, 1);
}

static void counted(tr_ctx *cx, void *state, const tr_msg *m)
{
    struct tt_counted *st = state;
    TT_CHECK(st->magic == TT_MAGIC);
    TT_CHECK(!(st->flags & TT_F_INIT_FAIL));
    atomic_fetch_add(&tt_counts.seen, 1);
    switch (m->type) {
    case TT_PING:
        break;
    case TT_STOP:
        tr_stop(cx);
        break;
    case TT_EXIT:
        tr_exit(cx, TT_EXIT_REASON, "test exit");
        break;
    case TT_LINK: {
        struct tt_counted_big b;
        tr_actor_spec spec = tt_counted_spec(&b, (uint32_t)tt_u64(m), st->flags, NULL);
        TT_CHECK(tr_spawn_link_spec(cx, &spec, NULL) == 0);
        break;
    }
    default:
        TT_CHECK(!"counted actor: unexpected message");
        break;
    }
}

tr_actor_spec tt_counted_spec(struct tt_counted_big *b, uint32_t id, uint32_t flags,
                              const char *name)
{
    memset(b, 0, sizeof *b);
    b->s.id = id;
    b->s.flags = flags;
    if (flags & TT_F_NO_INIT)
        b->s.magic = TT_MAGIC;
    return (tr_actor_spec){.behaviour = counted,
                           .state = b,
                           .state_size = (flags & TT_F_BIG) ? sizeof *b : sizeof b->s,
                           .init = (flags & TT_F_NO_INIT) ? NULL : counted_init,
                           .on_stop = counted_on_stop,
                           .name = name};
}

tr_pid tt_counted_spawn(tr_runtime *rt, uint32_t id, uint32_t flags, const char *name)
{
    struct tt_counted_big b;
    tr_actor_spec spec = tt_counted_spec(&b, id, flags, name);
    tr_pid pid = TR_PID_NONE;
    TT_EQ(tr_spawn_spec(tr_runtime_ctx(rt), &spec, &pid), 0);
    atomic_store(&tt_counts.pid[id], pid);
    return pid;
}

void tt_counted_ended(uint32_t from, uint32_t to, unsigned inits, int reason)
{
    unsigned bad_inits = 0, bad_stops = 0, bad_reasons = 0;
    for (uint32_t i = from; i < to; i++) {
        bad_inits += inits != TT_ANY_INITS && atomic_load(&tt_counts.inits[i]) != inits;
        bad_stops += atomic_load(&tt_counts.stops[i]) != 1;
        bad_reasons += reason != INT32_MIN && atomic_load(&tt_counts.reason[i]) != reason;
    }
    TT_EQ(bad_inits, 0);
    TT_EQ(bad_stops, 0);
    TT_EQ(bad_reasons, 0);
}

/* ---- an example program as a child process -------------------------------- */

#define START_TIMEOUT_MS 30000
#define STOP_TIMEOUT_S 30.0

const char *tt_build_path(const char *rel)
{
    static char path[4096];
    const char *build = getenv("BUILD");
    if (build != NULL && *build != '\0') {
        snprintf(path, sizeof path, "%s/%s", build, rel);
        return path;
    }
    char exe[4000];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n > 0) {
        exe[n] = '\0';
        for (int up = 0; up < 2; up++) { /* <build>/tests/run -> <build> */
            char *slash = strrchr(exe, '/');
            if (slash != NULL)
                *slash = '\0';
        }
        snprintf(path, sizeof path, "%s/%s", exe, rel);
        if (access(path, X_OK) == 0)
            return path;
    }
    snprintf(path, sizeof path, "build/release/%s", rel);
    return path;
}

char *tt_run_program(const char *rel, const char *const *args, bool with_stderr, double wait_s,
                     int *code)
{
    char exe[4096];
    snprintf(exe, sizeof exe, "%s", tt_build_path(rel));
    int fds[2];
    CU_ASSERT_FATAL(pipe2(fds, O_CLOEXEC) == 0);
    pid_t pid = fork();
    CU_ASSERT_FATAL(pid >= 0);
    if (pid == 0) {
        const char *argv[16] = {exe};
        for (int i = 0; i < 14 && args[i] != NULL; i++)
            argv[i + 1] = args[i];
        dup2(fds[1], STDOUT_FILENO);
        if (with_stderr)
            dup2(fds[1], STDERR_FILENO);
        int null = open("/dev/null", O_RDONLY);
        dup2(null, STDIN_FILENO);
        execv(exe, (char *const *)argv);
        _exit(127);
    }
    close(fds[1]);
    size_t cap = 1 << 16, len = 0;
    char *out = malloc(cap);
    CU_ASSERT_FATAL(out != NULL);
    double until = tt_now() + wait_s;
    while (tt_now() < until && len + 1 < cap) {
        struct pollfd p = {.fd = fds[0], .events = POLLIN};
        if (poll(&p, 1, 1000) < 0 && errno != EINTR)
            break;
        if (!(p.revents & (POLLIN | POLLHUP)))
            continue;
        ssize_t r = read(fds[0], out + len, cap - len - 1);
        if (r <= 0)
            break;
        len += (size_t)r;
    }
    out[len] = '\0';
    close(fds[0]);
    int status = 0;
    pid_t w;
    while ((w = waitpid(pid, &status, WNOHANG)) == 0 && tt_now() < until)
        tt_sleep_ms(5);
    if (w == 0) {
        printf("\n    %s did not end; its output:\n%s\n", rel, out);
        kill(pid, SIGKILL);
        waitpid(pid, &status, 0);
        *code = -1;
        return out;
    }
    *code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    return out;
}

static const char *example_path(const char *name)
{
    char rel[256];
    snprintf(rel, sizeof rel, "examples/%s", name);
    return tt_build_path(rel);
}

/* A number from /proc/<pid>/status ("VmRSS:" in kB, "SigCgt:" in hex), or -1. */
static long proc_status(pid_t pid, const char *field)
{
    char path[64], line[256];
    long value = -1;
    snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return -1;
    size_t n = strlen(field);
    while (value < 0 && fgets(line, sizeof line, f) != NULL)
        if (strncmp(line, field, n) == 0)
            value = strtol(line + n, NULL, strcmp(field, "SigCgt:") == 0 ? 16 : 10);
    fclose(f);
    return value;
}

/* Whether the process has a handler for SIGTERM. */
static bool catches_sigterm(pid_t pid)
{
    long caught = proc_status(pid, "SigCgt:");
    return caught > 0 && (caught & (1L << (SIGTERM - 1))) != 0;
}

bool tt_example_start(const char *name, tt_example *s)
{
    return tt_example_start_args(name, NULL, s);
}

bool tt_example_start_args(const char *name, const char *const *args, tt_example *s)
{
    char path[4096];
    snprintf(path, sizeof path, "%s", example_path(name));
    const char *argv[16] = {path, "0"};
    for (int i = 0; args != NULL && args[i] != NULL && i + 3 < 16; i++)
        argv[i + 2] = args[i];
    int fds[2];
    memset(s, 0, sizeof *s);
    CU_ASSERT_FATAL(pipe2(fds, O_CLOEXEC) == 0);
    pid_t parent = getpid();
    s->pid = fork();
    if (s->pid == 0) {
        /* The child: default signals, killed if the runner dies, stdout to the pipe. */
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent)
            _exit(127);
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        signal(SIGTERM, SIG_DFL);
        signal(SIGINT, SIG_DFL);
        signal(SIGPIPE, SIG_DFL);
        dup2(fds[1], STDOUT_FILENO);
        execv(path, (char *const *)argv);
        _exit(127);
    }
    close(fds[1]);
    s->out = fds[0];
    if (s->pid < 0) {
        printf("\n    fork: %s\n", strerror(errno));
        close(s->out);
        CU_FAIL("could not start the example");
        return false;
    }
    /* "<name>: listening on 127.0.0.1:<port>..." */
    char line[256];
    size_t len = 0;
    while (len < sizeof line - 1 && memchr(line, '\n', len) == NULL) {
        struct pollfd p = {.fd = s->out, .events = POLLIN};
        if (poll(&p, 1, START_TIMEOUT_MS) <= 0)
            break;
        ssize_t r = read(s->out, line + len, sizeof line - 1 - len);
        if (r <= 0)
            break;
        len += (size_t)r;
    }
    line[len] = '\0';
    snprintf(s->line, sizeof s->line, "%s", line);
    const char *at = strstr(line, "127.0.0.1:");
    unsigned port = 0;
    if (at == NULL || sscanf(at, "127.0.0.1:%u", &port) != 1 || port == 0 || port > 65535) {
        printf("\n    %s did not report its port (printed \"%s\")\n", path, line);
        kill(s->pid, SIGKILL);
        waitpid(s->pid, NULL, 0);
        close(s->out);
        CU_FAIL("could not start the example");
        return false;
    }
    s->port = (uint16_t)port;
    /* tr_runtime_stop_on_signal installs its handler in the stopper actor's
     * first turn, which may come a little after the socket's: wait for it,
     * or an early SIGTERM would kill the server by default action. */
    for (double until = tt_now() + START_TIMEOUT_MS / 1000.0; !catches_sigterm(s->pid);) {
        if (tt_now() > until) {
            printf("\n    %s does not catch SIGTERM\n", path);
            CU_FAIL("the example catches SIGTERM");
            break;
        }
        tt_sleep_ms(1);
    }
    return true;
}

/* SIGTERM, then the exit status must be 0 (clean shutdown, no sanitizer report).
 *
 * Under TSan, a SIGTERM that the kernel hands to a worker parked in its raw
 * futex syscall stays in TSan's deferred-signal queue until that thread
 * calls an intercepted function, which a parked worker never does: the
 * library's handler does not run and the server would wait forever (the
 * runtime's own threads leave signals unblocked). There, and only there,
 * SIGTERM is sent again every 2 s so that another thread takes it. */
void tt_example_stop(tt_example *s)
{
    int status = 0, sent = 1;
    pid_t r = 0;
    kill(s->pid, SIGTERM);
    double start = tt_now(), again = start + 2.0;
    while ((r = waitpid(s->pid, &status, WNOHANG)) == 0 && tt_now() < start + STOP_TIMEOUT_S) {
        if (TT_TSAN && tt_now() > again) {
            kill(s->pid, SIGTERM);
            sent++;
            again += 2.0;
        }
        tt_sleep_ms(5);
    }
    if (sent > 1)
        printf("[SIGTERM sent %d times] ", sent);
    if (r == 0) {
        printf("\n    the example did not stop within %.0f s of SIGTERM\n", STOP_TIMEOUT_S);
        kill(s->pid, SIGKILL);
        waitpid(s->pid, &status, 0);
        CU_FAIL("the example stops on SIGTERM");
    } else {
        int code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
        TT_EQ(code, 0);
    }
    close(s->out);
}


long tt_example_rss_kb(const tt_example *s)
{
    return proc_status(s->pid, "VmRSS:");
}

void tt_blocker_init(struct tt_blocker *b)
{
    sem_init(&b->go, 0, 0);
    atomic_init(&b->in_turn, false);
}

void tt_blocker_fini(struct tt_blocker *b)
{
    sem_destroy(&b->go);
}

void tt_blocking(tr_ctx *cx, void *state, const tr_msg *m)
{
    struct tt_blocker *b = *(struct tt_blocker **)state;
    (void)cx;
    (void)m;
    atomic_store(&b->in_turn, true);
    while (sem_wait(&b->go) != 0)
        ;
}

uint64_t tt_dead_letters(tr_runtime *rt)
{
    tr_stats s;
    tr_runtime_stats(rt, &s);
    return s.dead_letters;
}

bool tt_wait_count(atomic_int *v, int want, double seconds)
{
    for (double until = tt_now() + seconds; atomic_load(v) < want && tt_now() < until;)
        tt_sleep_ms(2);
    return atomic_load(v) >= want;
}

void tt_counter(tr_ctx *cx, void *state, const tr_msg *m)
{
    (void)cx;
    (void)m;
    ++*(uint64_t *)state;
}
