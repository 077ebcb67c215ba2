/* dist_bench.h — what the two-node benchmarks (dist-pingpong, dist-stream)
 * share: a private EPMD on a free port, the second node as a child process
 * (this program forked, or `erl`), and waiting for its "ready" line.
 *
 * The child is forked before either side creates a runtime, so that no
 * worker thread is copied into it; both then parse the same argv with
 * bench_init, and the parent starts epmd only once its argv is good. */
#ifndef TROUPE_BENCH_DIST_BENCH_H
#define TROUPE_BENCH_DIST_BENCH_H

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../support/epmd.h"
#include "bench.h"

#define DB_COOKIE "troupe_bench_cookie"

/* Starts epmd on `port` (a free one, epmd_free_port) and waits until it
 * answers; exits on failure. Called after bench_init, so that a bad
 * command line leaves none behind. */
static inline void db_epmd_start(const char *prog, uint16_t port)
{
    if (epmd_start(port))
        return;
    fprintf(stderr, "%s: epmd did not start (is erlang-nox installed?)\n", prog);
    exit(1);
}

/* The forked child's wait for the parent's epmd (tr_node_start would
 * start one of its own otherwise, racing the parent's). */
static inline void db_epmd_await(const char *prog, uint16_t port)
{
    if (epmd_await(port, 20))
        return;
    fprintf(stderr, "%s: no epmd on port %u\n", prog, (unsigned)port);
    exit(1);
}

static inline void db_epmd_stop(uint16_t port)
{
    if (!epmd_stop(port))
        fprintf(stderr, "dist bench: epmd on port %u did not stop\n", (unsigned)port);
}

static inline void db_sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* The child: its pid and the read end of its stdout. */
typedef struct db_child {
    pid_t pid;
    int out;
} db_child;

/* Forks; in the child, stdout becomes a pipe to the parent. Returns true
 * in the child. */
static inline bool db_fork(db_child *c)
{
    int p[2];
    if (pipe(p) != 0) {
        perror("pipe");
        exit(1);
    }
    fflush(NULL);
    c->pid = fork();
    if (c->pid < 0) {
        perror("fork");
        exit(1);
    }
    if (c->pid == 0) {
        /* A parent killed by run.sh's hang limit takes its peer along. */
        prctl(PR_SET_PDEATHSIG, SIGTERM);
        dup2(p[1], 1);
        close(p[0]);
        close(p[1]);
        return true;
    }
    close(p[1]);
    c->out = p[0];
    return false;
}

/* Runs argv (erl) as the child with ERL_EPMD_PORT=epmd, its stdout on c->out. */
static inline void db_spawn(db_child *c, uint16_t epmd, char *const *argv)
{
    /* Set here, not in the child: this process may have threads by now,
     * and the child does nothing but exec. */
    char port[16];
    snprintf(port, sizeof port, "%u", (unsigned)epmd);
    setenv("ERL_EPMD_PORT", port, 1);
    if (db_fork(c)) {
        execvp(argv[0], argv);
        perror(argv[0]);
        _exit(127);
    }
}

/* Waits (at most `seconds`) until the child prints a line with "ready". */
static inline bool db_wait_ready(db_child *c, double seconds)
{
    char buf[4096];
    size_t len = 0;
    for (double until = bench_now() + seconds; bench_now() < until;) {
        struct pollfd pf = { .fd = c->out, .events = POLLIN };
        if (poll(&pf, 1, 100) <= 0)
            continue;
        ssize_t k = read(c->out, buf + len, sizeof buf - 1 - len);
        if (k <= 0)
            return false;
        len += (size_t)k;
        buf[len] = '\0';
        if (strstr(buf, "ready") != NULL)
            return true;
        if (len == sizeof buf - 1)
            len = 0;
    }
    return false;
}

/* SIGTERM, SIGKILL after 10 s; true when it exited by itself with 0. */
static inline bool db_stop(db_child *c)
{
    int status = 0;
    kill(c->pid, SIGTERM);
    for (int i = 0; i < 1000; i++) {
        if (waitpid(c->pid, &status, WNOHANG) == c->pid) {
            close(c->out);
            return (WIFEXITED(status) && WEXITSTATUS(status) == 0) ||
                   (WIFSIGNALED(status) && WTERMSIG(status) == SIGTERM);
        }
        db_sleep_ms(10);
    }
    kill(c->pid, SIGKILL);
    waitpid(c->pid, &status, 0);
    close(c->out);
    fprintf(stderr, "dist bench: the peer did not stop within 10 s of SIGTERM: killed\n");
    return false;
}

/* Makes b's runtime node `name`@localhost on the private EPMD. */
static inline void db_node(bench *b, const char *name, uint16_t epmd)
{
    char full[128];
    snprintf(full, sizeof full, "%s@localhost", name);
    tr_node_opts o = { .name = full, .cookie = DB_COOKIE, .host = "127.0.0.1",
                       .epmd_port = epmd };
    int err = tr_node_start(tr_runtime_ctx(b->rt), &o);
    if (err != 0)
        bench_die(b->name, "tr_node_start", err);
}

/* The parent's side once the child is on its way: waits (at most 60 s)
 * for its "ready", else stops it and the EPMD and exits 1; then makes b's
 * runtime node `me`. */
static inline void db_peer_up(bench *b, db_child *c, const char *me, uint16_t epmd)
{
    if (!db_wait_ready(c, 60)) {
        fprintf(stderr, "%s: the peer node did not come up\n", b->name);
        db_stop(c);
        db_epmd_stop(epmd);
        exit(1);
    }
    db_node(b, me, epmd);
}

/* The troupe child's life after its actors are spawned: "ready" to the
 * parent, run until SIGTERM, leave EPMD, exit. Never returns. */
static inline void db_child_serve(bench *b)
{
    BENCH_TRY(tr_runtime_stop_on_signal(b->rt, SIGTERM));
    printf("ready\n");
    fflush(stdout);
    int r = tr_runtime_run(b->rt);
    tr_node_stop(tr_runtime_ctx(b->rt));
    tr_runtime_destroy(b->rt);
    exit(r == 1 ? 0 : 1);
}

/* Stops the node of a started runtime and waits for its workers. */
static inline void db_node_end(bench *b)
{
    tr_node_stop(tr_runtime_ctx(b->rt));
    tr_runtime_shutdown(b->rt);
    tr_runtime_join(b->rt);
}

/* Whether argv has `--flag 1` (read before bench_init, which picks the
 * benchmark's name). */
static inline bool db_flag(int argc, char **argv, const char *flag)
{
    for (int i = 1; i + 1 < argc; i += 2)
        if (strcmp(argv[i], flag) == 0 && strcmp(argv[i + 1], "0") != 0)
            return true;
    return false;
}

#endif
