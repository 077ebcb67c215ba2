/* chat_util.c — the helpers of chat_util.h: the chat example as a child
 * process, and line-oriented clients that talk to it. */
#include "chat_util.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#define IO_TIMEOUT_S 5       /* a read or write that must complete */
#define START_TIMEOUT_MS 30000
#define STOP_TIMEOUT_S 30.0

/* ---- the server process ---------------------------------------------------- */

static const char *example_path(const char *name)
{
    static char path[4096];
    const char *build = getenv("BUILD");
    if (build != NULL && *build != '\0') {
        snprintf(path, sizeof path, "%s/examples/%s", build, name);
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
        snprintf(path, sizeof path, "%s/examples/%s", exe, name);
        if (access(path, X_OK) == 0)
            return path;
    }
    snprintf(path, sizeof path, "build/release/examples/%s", name);
    return path;
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

bool chat_start(chat_server *s)
{
    return example_start(s, "chat");
}

bool example_start(chat_server *s, const char *name)
{
    const char *path = example_path(name);
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
        execl(path, path, "0", (char *)NULL);
        _exit(127);
    }
    close(fds[1]);
    s->out = fds[0];
    if (s->pid < 0) {
        printf("\n    fork: %s\n", strerror(errno));
        close(s->out);
        CU_FAIL("could not start the chat server");
        return false;
    }
    /* "chat: listening on 127.0.0.1:<port>; ..." (and the like) */
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
    const char *at = strstr(line, "127.0.0.1:");
    unsigned port = 0;
    if (at == NULL || sscanf(at, "127.0.0.1:%u", &port) != 1 || port == 0 || port > 65535) {
        printf("\n    %s did not report its port (printed \"%s\")\n", path, line);
        kill(s->pid, SIGKILL);
        waitpid(s->pid, NULL, 0);
        close(s->out);
        CU_FAIL("could not start the chat server");
        return false;
    }
    s->port = (uint16_t)port;
    /* tr_runtime_stop_on_signal installs its handler in the stopper actor's
     * first turn, which may come a little after the listener's: wait for
     * it, or an early SIGTERM would kill the server by default action. */
    for (double until = tt_now() + START_TIMEOUT_MS / 1000.0; !catches_sigterm(s->pid);) {
        if (tt_now() > until) {
            printf("\n    the chat server does not catch SIGTERM\n");
            CU_FAIL("chat server catches SIGTERM");
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
void chat_stop(chat_server *s)
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
        printf("\n    the chat server did not stop within %.0f s of SIGTERM\n", STOP_TIMEOUT_S);
        kill(s->pid, SIGKILL);
        waitpid(s->pid, &status, 0);
        CU_FAIL("chat server stops on SIGTERM");
    } else {
        int code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
        TT_EQ(code, 0);
    }
    close(s->out);
}

long chat_rss_kb(const chat_server *s)
{
    return proc_status(s->pid, "VmRSS:");
}

/* ---- clients ------------------------------------------------------------- */

/* Connects (with a small receive buffer if rcvbuf > 0); the caller expects
 * the greeting. Never NULL: a failed peer is marked broken so that the rest
 * fails fast. */
peer *peer_open_buf(const chat_server *s, int rcvbuf)
{
    peer *p = calloc(1, sizeof *p);
    CU_ASSERT_FATAL(p != NULL);
    p->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct timeval tv = {.tv_sec = IO_TIMEOUT_S};
    setsockopt(p->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(p->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    if (rcvbuf > 0)
        setsockopt(p->fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(s->port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (p->fd < 0 || connect(p->fd, (struct sockaddr *)&a, sizeof a) != 0) {
        printf("\n    connect to 127.0.0.1:%u: %s\n", s->port, strerror(errno));
        CU_FAIL("connect to the chat server");
        p->broken = true;
    }
    return p;
}

void peer_close(peer *p)
{
    if (p->fd >= 0)
        close(p->fd);
    free(p);
}

void put_raw(peer *p, const char *data, size_t n)
{
    while (n > 0 && !p->broken) {
        ssize_t w = send(p->fd, data, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            printf("\n    send: %s\n", w < 0 ? strerror(errno) : "nothing sent");
            CU_FAIL("send to the chat server");
            p->broken = true;
            return;
        }
        data += w;
        n -= (size_t)w;
    }
}

/* Sends one line (printf-style; "\n" added). */
__attribute__((format(printf, 2, 3)))
void put(peer *p, const char *fmt, ...)
{
    char line[8192];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line, sizeof line - 1, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof line - 1)
        n = (int)sizeof line - 2;
    line[n++] = '\n';
    put_raw(p, line, (size_t)n);
}

/* 1: bytes arrived; 0: end of stream or reset; -1: timeout or error. */
int fill(peer *p)
{
    if (p->len == sizeof p->buf)
        return -1;
    for (;;) {
        ssize_t r = recv(p->fd, p->buf + p->len, sizeof p->buf - p->len, 0);
        if (r > 0) {
            p->len += (size_t)r;
            return 1;
        }
        if (r < 0 && errno == EINTR)
            continue;
        return r == 0 || errno == ECONNRESET ? 0 : -1;
    }
}

/* The next line, without its "\n"; false (and a note) on timeout or end. */
bool get(peer *p, char *line, size_t cap)
{
    char *nl;
    while (!p->broken && (nl = memchr(p->buf, '\n', p->len)) == NULL) {
        int r = fill(p);
        if (r <= 0) {
            printf("\n    no line from the chat server: %s\n",
                   r == 0 ? "connection closed" : "timed out");
            p->broken = true;
        }
    }
    if (p->broken)
        return false;
    size_t n = (size_t)(nl - p->buf);
    size_t keep = n < cap ? n : cap - 1;
    memcpy(line, p->buf, keep);
    line[keep] = '\0';
    p->len -= n + 1;
    memmove(p->buf, nl + 1, p->len);
    return true;
}

__attribute__((format(printf, 4, 5)))
void expect_line(peer *p, const char *file, unsigned at, const char *fmt, ...)
{
    char want[8192], got[8192];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(want, sizeof want, fmt, ap);
    va_end(ap);
    bool ok = get(p, got, sizeof got);
    if (ok && strcmp(got, want) != 0)
        printf("\n    %s:%u: got \"%.200s\", expected \"%.200s\"\n", file, at, got, want);
    else if (!ok)
        printf("\n    %s:%u: expected \"%.200s\"\n", file, at, want);
    CU_assertImplementation(ok && strcmp(got, want) == 0, at, want, file, "", CU_FALSE);
}

/* The server closes the connection (FIN or RST) with no more lines first. */
void expect_closed(peer *p, const char *file, unsigned at)
{
    int r = p->broken ? -1 : p->len > 0 ? 1 : fill(p);
    if (r != 0)
        printf("\n    %s:%u: expected the connection closed, %s\n", file, at,
               r > 0 ? "got more bytes" : "timed out");
    CU_assertImplementation(r == 0, at, "connection closed", file, "", CU_FALSE);
}

peer *peer_open(const chat_server *s)
{
    peer *p = peer_open_buf(s, 0);
    EXPECT(p, "HELLO troupe-chat");
    return p;
}

/* A client that has taken `nick`. */
peer *user(const chat_server *s, const char *nick)
{
    peer *p = peer_open(s);
    put(p, "NICK %s", nick);
    EXPECT(p, "OK NICK %s", nick);
    return p;
}

void join(peer *p, const char *room)
{
    put(p, "JOIN %s", room);
    EXPECT(p, "OK JOIN %s", room);
}
