/* test_chat.c — end to end: the chat example (examples/chat.c) against the
 * protocol, over loopback.
 *
 * Each test starts the built example as a child process on a free port
 * (`chat 0`; the port is read from the line it prints), talks to it with
 * plain blocking sockets whose reads time out (a broken server fails a
 * test instead of hanging it), and ends it with SIGTERM: it must exit 0,
 * which under a sanitizer build also means no leak or error report. The
 * binary is $BUILD/examples/chat, else the one beside this runner
 * (<build>/tests/run -> <build>/examples/chat), else build/release.
 *
 * One test per row of the protocol's tables, plus framing (CRLF, case,
 * over-long lines), disconnects, per-sender order across three clients, a
 * client that never reads and the cap on rooms per client. No timing
 * assertions. */
#include "tests.h"

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
#define RSS_LIMIT_KB (64 * 1024)

/* ---- the server process ---------------------------------------------------- */

typedef struct server {
    pid_t pid;
    int out;        /* its stdout */
    uint16_t port;
} server;

static const char *chat_path(void)
{
    static char path[4096];
    const char *build = getenv("BUILD");
    if (build != NULL && *build != '\0') {
        snprintf(path, sizeof path, "%s/examples/chat", build);
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
        snprintf(path, sizeof path, "%s/examples/chat", exe);
        if (access(path, X_OK) == 0)
            return path;
    }
    return "build/release/examples/chat";
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

static bool server_start(server *s)
{
    const char *path = chat_path();
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
    /* "chat: listening on 127.0.0.1:<port>; ..." */
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
static void server_stop(server *s)
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

static long server_rss_kb(const server *s)
{
    return proc_status(s->pid, "VmRSS:");
}

/* ---- clients ------------------------------------------------------------- */

typedef struct peer {
    int fd;
    bool broken;      /* a read failed: later reads fail at once */
    size_t len;
    char buf[16384];  /* received, not yet returned as lines */
} peer;

/* Connects (with a small receive buffer if rcvbuf > 0) and expects HELLO.
 * Never NULL: a failed peer is marked broken so that the rest fails fast. */
static peer *peer_open_buf(const server *s, int rcvbuf)
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

static void peer_close(peer *p)
{
    if (p->fd >= 0)
        close(p->fd);
    free(p);
}

static void put_raw(peer *p, const char *data, size_t n)
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
static void put(peer *p, const char *fmt, ...)
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
static int fill(peer *p)
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
static bool get(peer *p, char *line, size_t cap)
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

#define EXPECT(p, ...) expect_line((p), __FILE__, __LINE__, __VA_ARGS__)
__attribute__((format(printf, 4, 5)))
static void expect_line(peer *p, const char *file, unsigned at, const char *fmt, ...)
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
#define EXPECT_CLOSED(p) expect_closed((p), __FILE__, __LINE__)
static void expect_closed(peer *p, const char *file, unsigned at)
{
    int r = p->broken ? -1 : p->len > 0 ? 1 : fill(p);
    if (r != 0)
        printf("\n    %s:%u: expected the connection closed, %s\n", file, at,
               r > 0 ? "got more bytes" : "timed out");
    CU_assertImplementation(r == 0, at, "connection closed", file, "", CU_FALSE);
}

static peer *peer_open(const server *s)
{
    peer *p = peer_open_buf(s, 0);
    EXPECT(p, "HELLO troupe-chat");
    return p;
}

/* A client that has taken `nick`. */
static peer *user(const server *s, const char *nick)
{
    peer *p = peer_open(s);
    put(p, "NICK %s", nick);
    EXPECT(p, "OK NICK %s", nick);
    return p;
}

static void join(peer *p, const char *room)
{
    put(p, "JOIN %s", room);
    EXPECT(p, "OK JOIN %s", room);
}

/* ---- the tests ------------------------------------------------------------- */

static void test_hello(void)
{
    server s;
    if (!server_start(&s))
        return;
    peer *a = peer_open(&s); /* expects HELLO troupe-chat */
    peer *b = peer_open(&s);
    peer_close(a);
    peer_close(b);
    server_stop(&s);
}

static void test_nick_ok(void)
{
    server s;
    if (!server_start(&s))
        return;
    peer *a = peer_open(&s);
    put(a, "NICK alice");
    EXPECT(a, "OK NICK alice");
    put(a, "NICK alice"); /* one's own nick again */
    EXPECT(a, "OK NICK alice");
    peer_close(a);
    server_stop(&s);
}

static void test_nick_taken(void)
{
    server s;
    if (!server_start(&s))
        return;
    peer *a = user(&s, "alice");
    peer *b = peer_open(&s);
    put(b, "NICK alice");
    EXPECT(b, "ERR nick-taken");
    put(b, "NICK bob"); /* still usable */
    EXPECT(b, "OK NICK bob");
    put(a, "NICK bob");
    EXPECT(a, "ERR nick-taken");
    peer_close(a);
    peer_close(b);
    server_stop(&s);
}

static void test_bad_nick(void)
{
    server s;
    if (!server_start(&s))
        return;
    peer *a = peer_open(&s);
    const char *bad[] = {"NICK", "NICK ", "NICK bad!nick", "NICK #alice", "NICK a b",
                         "NICK 123456789012345678901234567890123", "NICK caf\xc3\xa9"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        put(a, "%s", bad[i]);
        EXPECT(a, "ERR bad-nick");
    }
    put(a, "NICK A-z_09-12345678901234567890123"); /* 32 characters, all kinds */
    EXPECT(a, "OK NICK A-z_09-12345678901234567890123");
    peer_close(a);
    server_stop(&s);
}

static void test_nick_change(void)
{
    server s;
    if (!server_start(&s))
        return;
    peer *a = user(&s, "alice");
    peer *b = user(&s, "bob");
    join(a, "#r");
    join(b, "#r");
    EXPECT(a, "JOINED #r bob");
    put(a, "NICK alicia");
    EXPECT(a, "OK NICK alicia");
    peer *c = peer_open(&s); /* the old nick is free again */
    put(c, "NICK alice");
    EXPECT(c, "OK NICK alice");
    put(b, "WHO #r"); /* the room knows the new nick */
    EXPECT(b, "WHO #r alicia bob");
    put(a, "MSG #r hi");
    EXPECT(a, "MSG #r alicia hi");
    EXPECT(b, "MSG #r alicia hi");
    put(b, "PRIV alicia psst");
    EXPECT(b, "OK PRIV alicia");
    EXPECT(a, "PRIV bob psst");
    peer_close(a);
    peer_close(b);
    peer_close(c);
    server_stop(&s);
}

static void test_join_ok(void)
{
    server s;
    if (!server_start(&s))
        return;
    peer *a = user(&s, "alice");
    put(a, "JOIN #lobby");
    EXPECT(a, "OK JOIN #lobby");
    put(a, "JOIN #lobby"); /* already in: still OK, nobody told again */
    EXPECT(a, "OK JOIN #lobby");
    put(a, "JOIN #A-z_09-12345678901234567890123"); /* 32 characters after '#' */
    EXPECT(a, "OK JOIN #A-z_09-12345678901234567890123");
    put(a, "WHO #lobby");
    EXPECT(a, "WHO #lobby alice");
    peer_close(a);
    server_stop(&s);
}

static void test_join_bad_room(void)
{
    server s;
    if (!server_start(&s))
        return;
    peer *a = user(&s, "alice");
    const char *bad[] = {"JOIN", "JOIN lobby", "JOIN #", "JOIN ##", "JOIN #lob by",
                         "JOIN #lob!by", "JOIN #123456789012345678901234567890123"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        put(a, "%s", bad[i]);
        EXPECT(a, "ERR bad-room");
    }
    peer_close(a);
    server_stop(&s);
}

static void test_joined_to_members(void)
{
    server s;
    if (!server_start(&s))
        return;
    peer *a = user(&s, "alice");
    peer *b = user(&s, "bob");
    peer *c = user(&s, "carol");
    join(a, "#r");
    join(b, "#r");
    EXPECT(a, "JOINED #r bob");
    join(c, "#r");
    EXPECT(a, "JOINED #r carol");
    EXPECT(b, "JOINED #r carol");
    put(c, "WHO #r"); /* the joiner got no JOINED of its own */
    EXPECT(c, "WHO #r alice bob carol");
    peer_close(a);
    peer_close(b);
    peer_close(c);
    server_stop(&s);
}

static void test_part_ok(void)
{
    server s;
    if (!server_start(&s))
        return;
    peer *a = user(&s, "alice");
    join(a, "#r");
    put(a, "PART #r");
    EXPECT(a, "OK PART #r");
    put(a, "MSG #r anyone?");
    EXPECT(a, "ERR not-member");
    put(a, "WHO #r"); /* the empty room is gone */
    EXPECT(a, "ERR no-such-room");
    join(a, "#r"); /* and comes back */
    put(a, "WHO #r");
    EXPECT(a, "WHO #r alice");
    peer_close(a);
    server_stop(&s);
}

static void test_part_not_member(void)
{
    server s;
    if (!server_start(&s))
        return;
    peer *a = user(&s, "alice");
    peer *b = user(&s, "bob");
    join(b, "#r");
    put(a, "PART #nowhere");
    EXPECT(a, "ERR not-member");
    put(a, "PART #r"); /* exists, but alice is not in it */
    EXPECT(a, "ERR not-member");
    put(a, "PART nonsense");
    EXPECT(a, "ERR not-member");
    put(b, "WHO #r");
    EXPECT(b, "WHO #r bob");
    peer_close(a);
    peer_close(b);
    server_stop(&s);
}

static void test_parted_to_members(void)
{
    server s;
    if (!server_start(&s))
        return;
    peer *a = user(&s, "alice");
    peer *b = user(&s, "bob");
    peer *c = user(&s, "carol");
    join(a, "#r");
    join(b, "#r");
    EXPECT(a, "JOINED #r bob");
    join(c, "#r");
    EXPECT(a, "JOINED #r carol");
    EXPECT(b, "JOINED #r carol");
    put(a, "PART #r");
    EXPECT(a, "OK PART #r");
    EXPECT(b, "PARTED #r alice");
    EXPECT(c, "PARTED #r alice");
    put(b, "MSG #r after"); /* alice gets nothing more from #r */
    EXPECT(b, "MSG #r bob after");
    EXPECT(c, "MSG #r bob after");
    put(a, "WHO #r");
    EXPECT(a, "WHO #r bob carol");
    peer_close(a);
    peer_close(b);
    peer_close(c);
    server_stop(&s);
}

static void test_msg_delivery(void)
{
    server s;
    if (!server_start(&s))
        return;
    peer *a = user(&s, "alice");
    peer *b = user(&s, "bob");
    peer *c = user(&s, "carol");
    join(a, "#r");
    join(b, "#r");
    EXPECT(a, "JOINED #r bob");
    join(c, "#other");
    put(a, "MSG #r hello, world:  two spaces and UTF-8 \xc3\xa9");
    EXPECT(a, "MSG #r alice hello, world:  two spaces and UTF-8 \xc3\xa9");
    EXPECT(b, "MSG #r alice hello, world:  two spaces and UTF-8 \xc3\xa9");
    put(b, "MSG #r back");
    EXPECT(a, "MSG #r bob back");
    EXPECT(b, "MSG #r bob back");
    put(c, "WHO #other"); /* carol, in another room, got neither */
    EXPECT(c, "WHO #other carol");
    peer_close(a);
    peer_close(b);
    peer_close(c);
    server_stop(&s);
}

static void test_msg_not_member(void)
{
    server s;
    if (!server_start(&s))
        return;
    peer *a = user(&s, "alice");
    peer *b = user(&s, "bob");
    join(b, "#r");
    put(a, "MSG #r let me in");
    EXPECT(a, "ERR not-member");
    put(a, "MSG #nowhere hello");
    EXPECT(a, "ERR not-member");
    put(b, "WHO #r"); /* bob got nothing from alice */
    EXPECT(b, "WHO #r bob");
    peer_close(a);
    peer_close(b);
    server_stop(&s);
}

static void test_priv_ok(void)
{
    server s;
    if (!server_start(&s))
        return;
    peer *a = user(&s, "alice");
    peer *b = user(&s, "bob");
    put(a, "PRIV bob hi bob, how are you?");
    EXPECT(a, "OK PRIV bob");
    EXPECT(b, "PRIV alice hi bob, how are you?");
    put(b, "PRIV alice fine");
    EXPECT(b, "OK PRIV alice");
    EXPECT(a, "PRIV bob fine");
    peer_close(a);
    peer_close(b);
    server_stop(&s);
}

static void test_priv_no_such_nick(void)
{
    server s;
    if (!server_start(&s))
        return;
    peer *a = user(&s, "alice");
    put(a, "PRIV nobody hello");
    EXPECT(a, "ERR no-such-nick");
    put(a, "PRIV bad!nick hello");
    EXPECT(a, "ERR no-such-nick");
    peer *b = user(&s, "bob");
    peer_close(b); /* gone: its nick with it */
    put(a, "PRIV bob hello");
    char line[256];
    bool ok = get(a, line, sizeof line);
    for (int i = 0; ok && strcmp(line, "OK PRIV bob") == 0 && i < 200; i++) {
        tt_sleep_ms(20); /* bob's goodbye may still be on its way */
        put(a, "PRIV bob hello");
        ok = get(a, line, sizeof line);
    }
    CU_ASSERT(ok && strcmp(line, "ERR no-such-nick") == 0);
    peer_close(a);
    server_stop(&s);
}

static void test_who_sorted(void)
{
    server s;
    if (!server_start(&s))
        return;
    const char *nicks[] = {"zed", "amy", "mike", "bob", "carl"};
    peer *p[5];
    for (int i = 0; i < 5; i++) {
        p[i] = user(&s, nicks[i]);
        join(p[i], "#r");
    }
    for (int i = 0; i < 5; i++) {
        put(p[i], "WHO #r");
        char line[256];
        do /* skip the JOINED lines of later joiners */
            if (!get(p[i], line, sizeof line))
                break;
        while (strncmp(line, "JOINED ", 7) == 0);
        if (strcmp(line, "WHO #r amy bob carl mike zed") != 0)
            printf("\n    got \"%s\"\n", line);
        CU_ASSERT_STRING_EQUAL(line, "WHO #r amy bob carl mike zed");
    }
    peer *o = user(&s, "outsider"); /* not a member: may ask too */
    put(o, "WHO #r");
    EXPECT(o, "WHO #r amy bob carl mike zed");
    peer_close(o);
    for (int i = 0; i < 5; i++)
        peer_close(p[i]);
    server_stop(&s);
}

static void test_who_no_such_room(void)
{
    server s;
    if (!server_start(&s))
        return;
    peer *a = user(&s, "alice");
    put(a, "WHO #nowhere");
    EXPECT(a, "ERR no-such-room");
    put(a, "WHO nonsense");
    EXPECT(a, "ERR no-such-room");
    peer_close(a);
    server_stop(&s);
}

static void test_quit(void)
{
    server s;
    if (!server_start(&s))
        return;
    peer *a = user(&s, "alice");
    peer *b = user(&s, "bob");
    join(a, "#r");
    join(a, "#s");
    join(b, "#r");
    EXPECT(a, "JOINED #r bob");
    join(b, "#s");
    EXPECT(a, "JOINED #s bob");
    put(a, "QUIT");
    EXPECT(a, "OK QUIT");
    EXPECT_CLOSED(a);
    char l1[256] = "", l2[256] = ""; /* one PARTED per room, in either order */
    get(b, l1, sizeof l1);
    get(b, l2, sizeof l2);
    CU_ASSERT((strcmp(l1, "PARTED #r alice") == 0 && strcmp(l2, "PARTED #s alice") == 0) ||
              (strcmp(l1, "PARTED #s alice") == 0 && strcmp(l2, "PARTED #r alice") == 0));
    put(b, "WHO #r");
    EXPECT(b, "WHO #r bob");
    peer *c = peer_open(&s); /* QUIT before NICK */
    put(c, "quit");
    EXPECT(c, "OK QUIT");
    EXPECT_CLOSED(c);
    peer_close(a);
    peer_close(b);
    peer_close(c);
    server_stop(&s);
}

static void test_unknown_command(void)
{
    server s;
    if (!server_start(&s))
        return;
    peer *a = peer_open(&s);
    put(a, "HELLO"); /* before NICK: not a command at all */
    EXPECT(a, "ERR unknown-command");
    put(a, "NICK alice");
    EXPECT(a, "OK NICK alice");
    const char *bad[] = {"FOO bar", "", " NICK bob", "NICKNAME bob", "MSGS #r x", "/join #r"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        put(a, "%s", bad[i]);
        EXPECT(a, "ERR unknown-command");
    }
    peer_close(a);
    server_stop(&s);
}

static void test_no_nick(void)
{
    server s;
    if (!server_start(&s))
        return;
    peer *b = user(&s, "bob");
    join(b, "#r");
    peer *a = peer_open(&s);
    const char *early[] = {"JOIN #r", "PART #r", "MSG #r hi", "PRIV bob hi", "WHO #r"};
    for (size_t i = 0; i < sizeof early / sizeof *early; i++) {
        put(a, "%s", early[i]);
        EXPECT(a, "ERR no-nick");
    }
    put(a, "NICK bad!"); /* a refused NICK leaves none */
    EXPECT(a, "ERR bad-nick");
    put(a, "WHO #r");
    EXPECT(a, "ERR no-nick");
    put(a, "NICK alice");
    EXPECT(a, "OK NICK alice");
    put(a, "WHO #r");
    EXPECT(a, "WHO #r bob");
    put(b, "WHO #r");
    EXPECT(b, "WHO #r bob");
    peer_close(a);
    peer_close(b);
    server_stop(&s);
}

static void test_case_insensitive(void)
{
    server s;
    if (!server_start(&s))
        return;
    peer *b = user(&s, "bob");
    peer *a = peer_open(&s);
    put(a, "nick alice");
    EXPECT(a, "OK NICK alice");
    put(a, "jOiN #r");
    EXPECT(a, "OK JOIN #r");
    put(a, "Who #r");
    EXPECT(a, "WHO #r alice");
    put(a, "msg #r hi");
    EXPECT(a, "MSG #r alice hi");
    put(a, "PrIv bob hey");
    EXPECT(a, "OK PRIV bob");
    EXPECT(b, "PRIV alice hey");
    put(a, "part #r");
    EXPECT(a, "OK PART #r");
    put(a, "Quit");
    EXPECT(a, "OK QUIT");
    EXPECT_CLOSED(a);
    peer_close(a);
    peer_close(b);
    server_stop(&s);
}

static void test_crlf(void)
{
    server s;
    if (!server_start(&s))
        return;
    peer *a = peer_open(&s);
    peer *b = user(&s, "bob");
    put_raw(a, "NICK alice\r\n", 12);
    EXPECT(a, "OK NICK alice");
    put_raw(a, "JOIN #r\r\n", 9);
    EXPECT(a, "OK JOIN #r");
    join(b, "#r");
    EXPECT(a, "JOINED #r bob");
    put_raw(a, "MSG #r hi there\r\nWHO #r\r\n", 25); /* two lines in one write */
    EXPECT(a, "MSG #r alice hi there");
    EXPECT(b, "MSG #r alice hi there");
    EXPECT(a, "WHO #r alice bob");
    put_raw(a, "PRIV bob x\r\n", 12);
    EXPECT(a, "OK PRIV bob");
    EXPECT(b, "PRIV alice x");
    peer_close(a);
    peer_close(b);
    server_stop(&s);
}

static void test_disconnect(void)
{
    server s;
    if (!server_start(&s))
        return;
    peer *a = user(&s, "alice");
    peer *b = user(&s, "bob");
    join(a, "#r");
    join(b, "#r");
    EXPECT(a, "JOINED #r bob");
    peer_close(a); /* no QUIT */
    EXPECT(b, "PARTED #r alice");
    put(b, "WHO #r");
    EXPECT(b, "WHO #r bob");
    peer *c = peer_open(&s); /* the nick is free (the directory hears of it by now) */
    char line[256];
    bool ok = false;
    for (int i = 0; i < 200 && !ok; i++) {
        put(c, "NICK alice");
        ok = get(c, line, sizeof line) && strcmp(line, "OK NICK alice") == 0;
        if (!ok)
            tt_sleep_ms(20);
    }
    CU_ASSERT(ok);
    peer_close(b);
    peer_close(c);
    server_stop(&s);
}

/* Three clients send 200 MSGs each to one room, interleaved; every client
 * receives all 600, each sender's in the order sent. */
static void test_order_three_senders(void)
{
    enum { N = 3, COUNT = 200 };
    server s;
    if (!server_start(&s))
        return;
    peer *p[N];
    char nick[N][16];
    for (int i = 0; i < N; i++) {
        snprintf(nick[i], sizeof nick[i], "u%d", i);
        p[i] = user(&s, nick[i]);
        join(p[i], "#o");
        for (int j = 0; j < i; j++)
            EXPECT(p[j], "JOINED #o %s", nick[i]);
    }
    for (int k = 0; k < COUNT; k++)
        for (int i = 0; i < N; i++)
            put(p[i], "MSG #o %d", k);
    for (int i = 0; i < N; i++) {
        int next[N] = {0};
        unsigned bad = 0;
        char line[256];
        for (int got = 0; got < N * COUNT && get(p[i], line, sizeof line); got++) {
            int from = -1, k = -1;
            if (sscanf(line, "MSG #o u%d %d", &from, &k) != 2 || from < 0 || from >= N ||
                k != next[from]) {
                if (bad++ == 0)
                    printf("\n    u%d: unexpected \"%s\"\n", i, line);
                continue;
            }
            next[from]++;
        }
        TT_EQ(bad, 0);
        for (int j = 0; j < N; j++)
            TT_EQ(next[j], COUNT);
    }
    for (int i = 0; i < N; i++)
        peer_close(p[i]);
    server_stop(&s);
}

static void test_line_too_long(void)
{
    server s;
    if (!server_start(&s))
        return;
    peer *a = user(&s, "alice");
    peer *b = user(&s, "bob");
    join(a, "#r");
    join(b, "#r");
    EXPECT(a, "JOINED #r bob");
    /* The longest line: 4096 bytes with its "\n". */
    static char text[8192];
    memset(text, 'x', 4096 - strlen("MSG #r \n"));
    text[4096 - strlen("MSG #r \n")] = '\0';
    put(a, "MSG #r %s", text);
    EXPECT(a, "MSG #r alice %s", text);
    EXPECT(b, "MSG #r alice %s", text);
    /* One byte more. */
    memset(text, 'y', 4097 - strlen("\n"));
    text[4097 - strlen("\n")] = '\0';
    put(a, "%s", text);
    EXPECT(a, "ERR line-too-long");
    EXPECT_CLOSED(a);
    EXPECT(b, "PARTED #r alice");
    /* Much longer, from a fresh client; the server goes on. */
    peer *c = peer_open(&s);
    memset(text, 'z', sizeof text - 1);
    text[sizeof text - 1] = '\0';
    put_raw(c, text, sizeof text - 1);
    EXPECT(c, "ERR line-too-long");
    EXPECT_CLOSED(c);
    peer *d = user(&s, "alice"); /* alice's nick was freed */
    join(d, "#r");
    EXPECT(b, "JOINED #r alice");
    put(d, "WHO #r");
    EXPECT(d, "WHO #r alice bob");
    peer_close(a);
    peer_close(b);
    peer_close(c);
    peer_close(d);
    server_stop(&s);
}

/* A client that joins a room and never reads while another floods the room
 * with long lines: once its unsent output passes 1 MiB it is dropped; the
 * server's memory stays bounded; the others are served throughout. */
static void test_slow_client(void)
{
    enum { BATCH = 16, MAX_LINES = 6400 }; /* at most ~25 MiB of flood */
    server s;
    if (!server_start(&s))
        return;
    peer *slow = peer_open_buf(&s, 4096);
    EXPECT(slow, "HELLO troupe-chat");
    put(slow, "NICK slow");
    EXPECT(slow, "OK NICK slow");
    join(slow, "#flood");
    peer *f = user(&s, "flooder");
    join(f, "#flood");
    peer *w = user(&s, "watcher");
    join(w, "#flood");
    EXPECT(f, "JOINED #flood watcher");
    long rss_before = server_rss_kb(&s);

    static char text[4000];
    memset(text, 'f', sizeof text - 1);
    bool dropped = false, parted = false, in_order = true;
    int sent = 0;
    static char line[8192];
    while (sent < MAX_LINES && !dropped && in_order) {
        for (int i = 0; i < BATCH; i++)
            put(f, "MSG #flood %06d %s", sent + i, text);
        for (int i = 0; i < BATCH && in_order; i++) {
            peer *readers[2] = {f, w};
            for (int r = 0; r < 2 && in_order; r++) {
                int k = -1;
                while (get(readers[r], line, sizeof line) &&
                       strcmp(line, "PARTED #flood slow") == 0)
                    parted |= readers[r] == w;
                in_order = sscanf(line, "MSG #flood flooder %d", &k) == 1 && k == sent + i;
                if (!in_order)
                    printf("\n    line %d to %s: \"%.60s\"\n", sent + i,
                           r == 0 ? "the flooder" : "the watcher", line);
            }
        }
        sent += BATCH;
        struct pollfd pfd = {.fd = slow->fd, .events = POLLIN | POLLRDHUP};
        dropped = poll(&pfd, 1, 0) == 1 && (pfd.revents & (POLLERR | POLLHUP | POLLRDHUP));
    }
    long rss_after = server_rss_kb(&s);
    CU_ASSERT(in_order);
    if (!dropped)
        printf("\n    the slow client was not dropped after %d lines (%d KiB)\n", sent,
               sent * 4);
    CU_ASSERT(dropped);
    printf("[%d KiB flooded; server RSS %ld -> %ld KiB] ", sent * 4, rss_before, rss_after);
    /* Sanitizers add shadow memory and a quarantine of freed blocks: there
     * the bound is on the growth. */
    long limit = TT_ASAN || TT_TSAN ? rss_before + RSS_LIMIT_KB : RSS_LIMIT_KB;
    CU_ASSERT(rss_after > 0 && rss_after < limit);

    /* The slow client sees the end of its stream after what was buffered. */
    int r;
    slow->len = 0;
    while ((r = fill(slow)) > 0)
        slow->len = 0;
    CU_ASSERT(r == 0);

    /* The watcher is still served and sees the slow client gone. */
    bool gone = false;
    for (int i = 0; i < 200 && !gone; i++) {
        put(w, "WHO #flood");
        while (get(w, line, sizeof line) && strcmp(line, "PARTED #flood slow") == 0)
            parted = true;
        gone = strcmp(line, "WHO #flood flooder watcher") == 0;
        if (!gone)
            tt_sleep_ms(20);
    }
    CU_ASSERT(gone);
    CU_ASSERT(parted);
    put(f, "MSG #flood done");
    while (get(f, line, sizeof line) && strcmp(line, "PARTED #flood slow") == 0)
        ;
    CU_ASSERT_STRING_EQUAL(line, "MSG #flood flooder done");
    EXPECT(w, "MSG #flood flooder done");
    peer_close(slow);
    peer_close(f);
    peer_close(w);
    server_stop(&s);
}

/* The per-client cap on rooms (examples/chat-protocol.md, Limits): alice
 * joins new rooms up to it and is refused the next one, with nothing
 * changed; bob can still create rooms and join hers; after a PART alice can
 * join again. */
#define CHAT_MAX_ROOMS 64

static void test_room_cap(void)
{
    server s;
    if (!server_start(&s))
        return;
    peer *a = user(&s, "alice");
    peer *b = user(&s, "bob");
    for (int i = 0; i < CHAT_MAX_ROOMS; i++) {
        put(a, "JOIN #a%d", i);
        EXPECT(a, "OK JOIN #a%d", i);
    }
    put(a, "JOIN #one-too-many");
    EXPECT(a, "ERR too-many-rooms");
    put(a, "WHO #one-too-many"); /* not created */
    EXPECT(a, "ERR no-such-room");
    put(a, "JOIN #a0"); /* already in: still fine */
    EXPECT(a, "OK JOIN #a0");
    join(b, "#b-own"); /* others are not held back */
    join(b, "#a7");
    EXPECT(a, "JOINED #a7 bob");
    put(b, "WHO #a7");
    EXPECT(b, "WHO #a7 alice bob");
    put(a, "PART #a3");
    EXPECT(a, "OK PART #a3");
    join(a, "#b-own");
    EXPECT(b, "JOINED #b-own alice");
    put(a, "JOIN #a3");
    EXPECT(a, "ERR too-many-rooms");
    put(a, "MSG #a63 still here");
    EXPECT(a, "MSG #a63 alice still here");
    peer_close(a);
    peer_close(b);
    server_stop(&s);
}

/* Many clients, each at the cap, hold more rooms than the 12,288 names the
 * registry once held at most; a newcomer can still create a room. */
#define MANY_CLIENTS 200

static void test_many_rooms(void)
{
    server s;
    if (!server_start(&s))
        return;
    peer **p = calloc(MANY_CLIENTS, sizeof *p);
    CU_ASSERT_FATAL(p != NULL);
    char nick[32];
    for (int i = 0; i < MANY_CLIENTS; i++) {
        snprintf(nick, sizeof nick, "u%d", i);
        p[i] = user(&s, nick);
        for (int k = 0; k < CHAT_MAX_ROOMS; k++) /* all at once: answered in order */
            put(p[i], "JOIN #u%d-%d", i, k);
        for (int k = 0; k < CHAT_MAX_ROOMS; k++)
            EXPECT(p[i], "OK JOIN #u%d-%d", i, k);
    }
    peer *late = user(&s, "late");
    join(late, "#fresh");
    join(late, "#u0-0");
    EXPECT(p[0], "JOINED #u0-0 late");
    put(late, "WHO #u199-63");
    EXPECT(late, "WHO #u199-63 u199");
    peer_close(late);
    for (int i = 0; i < MANY_CLIENTS; i++)
        peer_close(p[i]);
    free(p);
    server_stop(&s);
}

void register_chat_tests(void)
{
    CU_pSuite s = tt_suite("chat");
    tt_test(s, "hello_on_connect", test_hello);
    tt_test(s, "nick_ok", test_nick_ok);
    tt_test(s, "nick_taken", test_nick_taken);
    tt_test(s, "nick_bad", test_bad_nick);
    tt_test(s, "nick_change", test_nick_change);
    tt_test(s, "join_ok", test_join_ok);
    tt_test(s, "join_bad_room", test_join_bad_room);
    tt_test(s, "join_tells_members", test_joined_to_members);
    tt_test(s, "part_ok", test_part_ok);
    tt_test(s, "part_not_member", test_part_not_member);
    tt_test(s, "part_tells_members", test_parted_to_members);
    tt_test(s, "msg_to_every_member", test_msg_delivery);
    tt_test(s, "msg_not_member", test_msg_not_member);
    tt_test(s, "priv_ok", test_priv_ok);
    tt_test(s, "priv_no_such_nick", test_priv_no_such_nick);
    tt_test(s, "who_sorted", test_who_sorted);
    tt_test(s, "who_no_such_room", test_who_no_such_room);
    tt_test(s, "quit", test_quit);
    tt_test(s, "unknown_command", test_unknown_command);
    tt_test(s, "no_nick", test_no_nick);
    tt_test(s, "verbs_case_insensitive", test_case_insensitive);
    tt_test(s, "crlf_lines", test_crlf);
    tt_test(s, "disconnect_without_quit", test_disconnect);
    tt_test(s, "order_three_senders", test_order_three_senders);
    tt_test(s, "line_too_long", test_line_too_long);
    tt_test(s, "slow_client_dropped", test_slow_client);
    tt_test(s, "rooms_per_client_capped", test_room_cap);
    tt_test(s, "rooms_past_12288", test_many_rooms);
}
