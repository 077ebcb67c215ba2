/* dist_util.c — see dist_util.h. */
#include "dist_util.h"

#include "../support/epmd.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

bool dt_skip(void)
{
    if (system("command -v erl >/dev/null 2>&1 && command -v epmd >/dev/null 2>&1") == 0)
        return false;
    printf("\n    SKIPPED: erl/epmd not installed (make deps installs erlang-nox) ");
    return true;
}

uint16_t dt_epmd_start(void)
{
    uint16_t port = epmd_free_port();
    return epmd_start(port) ? port : 0;
}

void dt_epmd_stop(uint16_t port)
{
    if (!epmd_stop(port))
        printf("\n    (epmd on port %u did not stop)\n", (unsigned)port);
}

int dt_run(dt_erl *e, uint16_t epmd, const char *const *argv)
{
    memset(e, 0, sizeof *e);
    int p[2];
    if (pipe2(p, O_CLOEXEC) != 0)
        return -1;
    char env[32];
    snprintf(env, sizeof env, "ERL_EPMD_PORT=%u", (unsigned)epmd);
    const char *args[32] = {"env", env};
    size_t n = 2;
    for (size_t i = 0; argv[i] != NULL && n < 31; i++)
        args[n++] = argv[i];
    args[n] = NULL;
    e->pid = fork();
    if (e->pid == 0) { /* env(1) sets the variable: nothing but exec after fork */
        dup2(p[1], 1);
        dup2(p[1], 2);
        execvp("env", (char *const *)args);
        _exit(127);
    }
    close(p[1]);
    e->out = p[0];
    return e->pid > 0 ? 0 : -1;
}

int dt_erl_start(dt_erl *e, uint16_t epmd, const char *sname, const char *cookie,
                 const char *script)
{
    const char *argv[] = {"erl", "-noshell", "-sname", sname, "-setcookie", cookie,
                          "-eval", script, NULL};
    return dt_run(e, epmd, argv);
}

/* Reads what is there (waiting at most ms): false at its end. */
static bool read_some(dt_erl *e, int ms)
{
    struct pollfd pf = {.fd = e->out, .events = POLLIN};
    if (poll(&pf, 1, ms) <= 0)
        return true;
    char tmp[4096];
    ssize_t k = read(e->out, tmp, sizeof tmp);
    if (k < 0 && errno == EINTR)
        return true;
    if (k <= 0)
        return false;
    size_t room = sizeof e->buf - 1 - e->len;
    size_t take = (size_t)k < room ? (size_t)k : room;
    memcpy(e->buf + e->len, tmp, take);
    e->len += take;
    e->buf[e->len] = '\0';
    return true;
}

bool dt_read_until(dt_erl *e, const char *text, double seconds)
{
    for (double until = tt_now() + seconds; strstr(e->buf, text) == NULL && tt_now() < until;)
        if (!read_some(e, 100))
            break;
    return strstr(e->buf, text) != NULL;
}

bool dt_erl_wait(dt_erl *e, double seconds)
{
    double until = tt_now() + seconds;
    bool eof = false;
    while (!eof) {
        int left = (int)((until - tt_now()) * 1000);
        if (left <= 0) {
            if (!e->quiet)
                printf("\n    process still running after %.0f s: killed\n", seconds);
            kill(e->pid, SIGKILL);
            break;
        }
        eof = !read_some(e, left);
    }
    close(e->out);
    while (waitpid(e->pid, &e->status, 0) < 0 && errno == EINTR) {
    }
    bool ok = eof && WIFEXITED(e->status) && WEXITSTATUS(e->status) == 0;
    if (!ok && !e->quiet)
        printf("\n    its output:\n%s\n", e->buf);
    return ok;
}

bool dt_erl_value(const dt_erl *e, const char *key, char *out, size_t cap)
{
    size_t kl = strlen(key);
    for (const char *line = e->buf; line != NULL && *line != '\0';) {
        const char *end = strchr(line, '\n');
        size_t ll = end != NULL ? (size_t)(end - line) : strlen(line);
        if (ll > kl && strncmp(line, key, kl) == 0 && line[kl] == ' ') {
            size_t vl = ll - kl - 1 < cap - 1 ? ll - kl - 1 : cap - 1;
            memcpy(out, line + kl + 1, vl);
            out[vl] = '\0';
            return true;
        }
        line = end != NULL ? end + 1 : NULL;
    }
    return false;
}

bool dt_erl_is(const dt_erl *e, const char *key, const char *want)
{
    char v[256];
    return dt_erl_value(e, key, v, sizeof v) && strcmp(v, want) == 0;
}

tr_runtime *dt_node(const char *name, uint16_t epmd, uint64_t tick_ns)
{
    return dt_node_busy(name, epmd, tick_ns, 0);
}

tr_runtime *dt_node_busy(const char *name, uint16_t epmd, uint64_t tick_ns, size_t busy_limit)
{
    tr_runtime *rt = tt_runtime(2, 0);
    char full[128];
    snprintf(full, sizeof full, "%s@localhost", name);
    tr_node_opts o = {.name = full, .cookie = DT_COOKIE, .host = "127.0.0.1",
                      .epmd_port = epmd, .tick_ns = tick_ns, .busy_limit = busy_limit};
    int rc = tr_node_start(tr_runtime_ctx(rt), &o);
    TT_EQ(rc, 0);
    CU_ASSERT_FATAL(rc == 0);
    CU_ASSERT_FATAL(tr_runtime_start(rt) == 0);
    return rt;
}

void dt_node_end(tr_runtime *rt)
{
    TT_EQ(tr_node_stop(tr_runtime_ctx(rt)), 0);
    tr_runtime_shutdown(rt);
    int rc = tt_join_within(rt, 30);
    CU_ASSERT(rc == 0 || rc == 1);
    tr_runtime_destroy(rt);
}

void dt_echo(tr_ctx *cx, void *state, const tr_msg *m)
{
    (void)state;
    if (m->from != TR_PID_NONE)
        TT_CHECK(tr_send(cx, m->from, m->type, m->data, m->len) == 0);
}
