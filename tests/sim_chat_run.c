/* sim_chat_run.c — running the scripted chat scenarios of sim_chat_util.h:
 * under simulation, one seed after another in forked children; and once
 * over the real network. */
#include "sim_chat_util.h"

#include "../support/epmd.h" /* a free port; whether a port accepts */

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define RUN_BOUND_S 120            /* wall-clock bound of one run in a child */
#define SIM_DEADLINE_NS (UINT64_C(600) * 1000000000) /* virtual: past the network's rto */
#define REAL_DEADLINE_NS (UINT64_C(30) * 1000000000)
#define MAX_JOBS 16

/* ---- one run under simulation ---------------------------------------------- */

static void on_create(tr_runtime *rt, void *arg)
{
    sc_scenario *s = arg;
    int err = sc_director_spawn(rt, s);
    if (err != 0) {
        snprintf(s->stall, sizeof s->stall, "spawning the director: %s", tr_strerror(err));
        tr_runtime_shutdown(rt);
    }
}

/* Runs chat's main with the seed in TROUPE_SIM_SEED (it calls
 * tr_runtime_create(NULL), which reads it) and the director in its runtime. */
static bool sim_once(const sc_def *def, uint64_t seed, char *why, size_t cap)
{
    sc_scenario *s = calloc(1, sizeof *s);
    if (s == NULL) {
        snprintf(why, cap, "out of memory");
        return false;
    }
    s->port = SC_PORT;
    s->deadline_ns = SIM_DEADLINE_NS;
    def->build(s);
    char seed_text[24], port[8];
    snprintf(seed_text, sizeof seed_text, "%" PRIu64, seed);
    snprintf(port, sizeof port, "%u", SC_PORT);
    char *argv[] = {"chat", port, NULL};
    setenv("TROUPE_SIM_SEED", seed_text, 1);
    tr_sim_on_create(on_create, s);
    int rc = tr_chat_example_main(2, argv);
    tr_sim_on_create(NULL, NULL);
    unsetenv("TROUPE_SIM_SEED");
    bool ok = sc_verdict(s, why, cap);
    if (ok && rc != 0) {
        snprintf(why, cap, "chat's main returned %d", rc);
        ok = false;
    }
    if (ok && def->after != NULL)
        ok = def->after(why, cap);
    sc_scenario_free(s);
    return ok;
}

/* ---- one run over the real network ----------------------------------------- */

typedef struct chat_thread {
    char port[8];
    int rc;
} chat_thread;

static void *run_chat(void *arg)
{
    chat_thread *t = arg;
    char *argv[] = {"chat", t->port, NULL};
    t->rc = tr_chat_example_main(2, argv);
    return NULL;
}

/* chat's main on a thread of its own (real runtime), the clients in a
 * runtime of their own; SIGTERM, which chat stops on, ends it. */
static bool real_once(const sc_def *def, char *why, size_t cap)
{
    sc_scenario *s = calloc(1, sizeof *s);
    chat_thread t = {.rc = -1};
    pthread_t th;
    tr_runtime *rt = NULL;
    if (s == NULL || (s->port = epmd_free_port()) == 0) {
        snprintf(why, cap, "no memory or no free port");
        free(s);
        return false;
    }
    s->deadline_ns = REAL_DEADLINE_NS;
    def->build(s);
    snprintf(t.port, sizeof t.port, "%u", s->port);
    if (pthread_create(&th, NULL, run_chat, &t) != 0) {
        snprintf(why, cap, "pthread_create failed");
        sc_scenario_free(s);
        return false;
    }
    bool ok = epmd_await(s->port, 10); /* chat accepts within 10 s */
    int err = ok ? tr_runtime_create(NULL, &rt) : 0;
    if (ok && err == 0 && (err = sc_director_spawn(rt, s)) == 0)
        tr_runtime_run(rt);
    if (rt != NULL)
        tr_runtime_destroy(rt);
    kill(getpid(), SIGTERM); /* chat's runtime stops on it; the rest ignore it */
    pthread_join(th, NULL);
    if (!ok)
        snprintf(why, cap, "chat did not listen on port %s", t.port);
    else if (err != 0)
        snprintf(why, cap, "the clients' runtime: %s", tr_strerror(err));
    else if ((ok = sc_verdict(s, why, cap)) && t.rc != 0)
        snprintf(why, cap, "chat's main returned %d", t.rc);
    ok = ok && err == 0 && t.rc == 0;
    sc_scenario_free(s);
    return ok;
}

/* ---- children -------------------------------------------------------------- */

/* The child's end: stdout to /dev/null (chat's "listening" line), stderr
 * to err_fd (the simulation's lines; sanitizer reports), and the report
 * descriptor returned. */
static int child_setup(int err_fd)
{
    signal(SIGALRM, SIG_DFL); /* the runner's watchdog is the parent's */
    int report = dup(STDOUT_FILENO);
    int null = open("/dev/null", O_WRONLY | O_CLOEXEC);
    if (report < 0 || null < 0)
        exit(3);
    dup2(null, STDOUT_FILENO);
    dup2(err_fd, STDERR_FILENO);
    close(null);
    return report;
}

/* Starts over the scratch file that holds one run's stderr. */
static void rewind_err(void)
{
    if (ftruncate(STDERR_FILENO, 0) == 0)
        lseek(STDERR_FILENO, 0, SEEK_SET);
}

static void report_failure(int report, const sc_def *def, uint64_t seed, bool sim, const char *why)
{
    char self[512];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    self[n > 0 ? n : 0] = '\0';
    if (sim)
        dprintf(report,
                "\n    sim_chat %s, seed %" PRIu64 ": %s\n"
                "    reproduce: SIM_CHAT_SEEDS=%" PRIu64 " %s sim_chat %s\n",
                def->name, seed, why, seed, self, def->name);
    else
        dprintf(report, "\n    sim_chat %s, real network: %s\n", def->name, why);
}

/* A child's work: seeds first, first + step, ... up to last (sim), or the
 * one real run; exits 0 if every run passed, 1 at the first failure. */
static void child(const sc_def *def, bool sim, uint64_t first, uint64_t last, uint64_t step,
                  int err_fd, uint64_t *hashes)
{
    int report = child_setup(err_fd);
    char why[1024];
    for (uint64_t seed = first; seed <= last; seed += step) {
        rewind_err();
        if (sim)
            fprintf(stderr, "sim_chat %s: seed %" PRIu64 "\n", def->name, seed);
        alarm(RUN_BOUND_S);
        bool ok = sim ? sim_once(def, seed, why, sizeof why) : real_once(def, why, sizeof why);
        alarm(0);
        if (sim && hashes != NULL)
            hashes[seed - first] = tr_sim_hash();
        if (!ok) {
            report_failure(report, def, seed, sim, why);
            exit(1);
        }
        if (!sim || last - seed < step)
            break;
    }
    exit(0);
}

/* Prints the end of a failed child's stderr (its last run). */
static void show_err(int fd)
{
    struct stat st;
    char buf[4096];
    if (fstat(fd, &st) != 0)
        return;
    off_t from = st.st_size > (off_t)sizeof buf - 1 ? st.st_size - (off_t)sizeof buf + 1 : 0;
    ssize_t n = pread(fd, buf, sizeof buf - 1, from);
    if (n > 0) {
        buf[n] = '\0';
        printf("    --- its stderr ---\n%s    ---\n", buf);
    }
}

static int scratch_fd(void)
{
    char path[] = "/tmp/troupe-sim-chat-XXXXXX";
    int fd = mkstemp(path);
    if (fd >= 0)
        unlink(path);
    return fd;
}

/* Forks `jobs` children over the seeds (or one for the real run); waits
 * for them, stopping the others at the first failure. */
static int fork_runs(const sc_def *def, bool sim, uint64_t first, uint64_t last, int jobs,
                     uint64_t *hashes)
{
    pid_t kids[MAX_JOBS];
    int errs[MAX_JOBS], started = 0, failed = 0;
    bool stopped = false; /* the rest were killed after a failure */
    if (jobs > MAX_JOBS)
        jobs = MAX_JOBS;
    if (sim && (uint64_t)jobs > last - first + 1)
        jobs = (int)(last - first + 1);
    fflush(NULL);
    for (int j = 0; j < jobs; j++) {
        if ((errs[j] = scratch_fd()) < 0 || (kids[j] = fork()) < 0) {
            printf("\n    fork or scratch file: %s\n", strerror(errno));
            if (errs[j] >= 0)
                close(errs[j]);
            failed++;
            break;
        }
        if (kids[j] == 0)
            child(def, sim, first + (uint64_t)j, last, (uint64_t)jobs, errs[j],
                  hashes != NULL ? hashes + j : NULL);
        started++;
    }
    for (int left = started; left > 0; left--) {
        int status;
        pid_t pid = waitpid(-1, &status, 0);
        int j = 0;
        while (j < started && kids[j] != pid)
            j++;
        if (pid < 0 || j == started)
            break;
        kids[j] = 0;
        if ((WIFEXITED(status) && WEXITSTATUS(status) == 0) ||
            (stopped && WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL))
            continue;
        if (WIFSIGNALED(status))
            printf("\n    sim_chat %s: a child ended by signal %d (%s)\n", def->name,
                   WTERMSIG(status), WTERMSIG(status) == SIGALRM ? "the run's bound" : "a crash");
        else if (WEXITSTATUS(status) != 1)
            printf("\n    sim_chat %s: a child exited %d\n", def->name, WEXITSTATUS(status));
        show_err(errs[j]);
        if (failed++ == 0) { /* the first failing seed is enough */
            stopped = true;
            for (int o = 0; o < started; o++)
                if (kids[o] > 0)
                    kill(kids[o], SIGKILL); /* chat may catch SIGTERM */
        }
    }
    for (int j = 0; j < started; j++)
        close(errs[j]);
    return failed;
}

int sc_run_seeds(const sc_def *def, uint64_t first, uint64_t last, int jobs, uint64_t *hashes)
{
    size_t n = (size_t)(last - first + 1), bytes = n * sizeof *hashes;
    uint64_t *shared = NULL; /* the children write each seed's hash here */
    if (hashes != NULL) {
        shared = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
        if (shared == MAP_FAILED)
            return 1;
    }
    int failed = fork_runs(def, true, first, last, jobs < 1 ? 1 : jobs, shared);
    if (shared != NULL) {
        memcpy(hashes, shared, bytes);
        munmap(shared, bytes);
    }
    return failed;
}

int sc_run_real(const sc_def *def)
{
    return fork_runs(def, false, 0, 0, 1, NULL);
}
