/* troupe-top — a live view of a troupe program that serves /metrics
 * (tr_metrics_serve), in the spirit of etop and htop.
 *
 *   troupe-top [--once] [--by handled|busy|mailbox] [--top N] HOST:PORT
 *
 * Every second it reads /metrics and /actors?window=1000 over plain TCP
 * and draws a header (workers' busy %, run-queue depths, actors alive,
 * messages/s, dead letters/s) and a table of the top actors over that
 * second. Keys: h, b, m sort by messages handled, busy time or mailbox
 * depth; q (or Ctrl-C) quits. --once prints one frame without escapes and
 * exits (0, or 1 if the server could not be read).
 *
 * A tool, not an actor program: blocking sockets, plain ANSI escapes (no
 * curses), and parsers for exactly what observe/ writes — the Prometheus
 * text lines it reads (name, labels, value) and the /actors JSON — that
 * still reject what is malformed rather than guess.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <netdb.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#define MAX_WORKERS 256
#define MAX_ACTORS 1000
#define WINDOW_MS 1000
#define TIMEOUT_MS (WINDOW_MS + 10000)

/* ---- the terminal ---- */

static struct termios saved_tty;
static bool raw_on;
static volatile sig_atomic_t quit;

static void tty_restore(void)
{
    if (raw_on) {
        tcsetattr(STDIN_FILENO, TCSAFLUSH, &saved_tty);
        static const char show[] = "\033[?25h\033[?1049l";
        if (write(STDOUT_FILENO, show, sizeof show - 1) < 0) {
            /* nothing more to do: the terminal is going away */
        }
        raw_on = false;
    }
}

static void on_signal(int sig)
{
    (void)sig;
    quit = 1; /* the main loop's poll is interrupted, restores and exits */
}

/* Keys without Enter, no echo; Ctrl-C still signals. */
static void tty_raw(void)
{
    if (!isatty(STDIN_FILENO) || tcgetattr(STDIN_FILENO, &saved_tty) != 0)
        return;
    struct termios t = saved_tty;
    t.c_lflag &= ~(tcflag_t)(ICANON | ECHO);
    t.c_cc[VMIN] = 0;
    t.c_cc[VTIME] = 0;
    if (tcsetattr(STDIN_FILENO, TCSAFLUSH, &t) != 0)
        return;
    raw_on = true;
    atexit(tty_restore);
    fputs("\033[?1049h\033[?25l", stdout); /* the alternate screen, no cursor */
}

/* ---- HTTP ---- */

static char sort_key = 'h'; /* h, b or m */

/* A key pressed while waiting: true if it asks to quit. */
static bool read_keys(void)
{
    char k[16];
    ssize_t n = read(STDIN_FILENO, k, sizeof k);
    for (ssize_t i = 0; i < n; i++) {
        if (k[i] == 'q' || k[i] == 'Q' || k[i] == 3)
            return true;
        if (k[i] == 'h' || k[i] == 'b' || k[i] == 'm')
            sort_key = k[i];
    }
    return false;
}

/* GET path from host:port: the body (malloc'd, NUL-terminated) of a 200,
 * or NULL with a message in err. Keys are read while it waits. */
static char *http_get(const char *host, const char *port, const char *path, char *err,
                      size_t errlen)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *res;
    int rc = getaddrinfo(host, port, &hints, &res);
    if (rc != 0) {
        snprintf(err, errlen, "%s: %s", host, gai_strerror(rc));
        return NULL;
    }
    int fd = socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || connect(fd, res->ai_addr, res->ai_addrlen) != 0) {
        snprintf(err, errlen, "connect to %s:%s: %s", host, port, strerror(errno));
        freeaddrinfo(res);
        if (fd >= 0)
            close(fd);
        return NULL;
    }
    freeaddrinfo(res);
    char req[512];
    int len = snprintf(req, sizeof req,
                       "GET %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n", path, host);
    if (send(fd, req, (size_t)len, MSG_NOSIGNAL) != len) {
        snprintf(err, errlen, "send: %s", strerror(errno));
        close(fd);
        return NULL;
    }
    size_t cap = 65536, got = 0;
    char *buf = malloc(cap);
    struct timespec start;
    clock_gettime(CLOCK_MONOTONIC, &start);
    for (;;) {
        struct pollfd p[2] = {{.fd = fd, .events = POLLIN}, {.fd = STDIN_FILENO, .events = POLLIN}};
        int r = poll(p, raw_on ? 2 : 1, 100);
        if (quit || (r > 0 && raw_on && (p[1].revents & POLLIN) && read_keys())) {
            quit = 1;
            snprintf(err, errlen, "quit");
            break;
        }
        struct timespec now;
        clock_gettime(CLOCK_MONOTONIC, &now);
        if ((now.tv_sec - start.tv_sec) * 1000 + (now.tv_nsec - start.tv_nsec) / 1000000 >
            TIMEOUT_MS) {
            snprintf(err, errlen, "GET %s: no answer", path);
            break;
        }
        if (r <= 0 || !(p[0].revents & (POLLIN | POLLHUP | POLLERR)))
            continue;
        if (buf == NULL || (got + 1 >= cap && (buf = realloc(buf, cap *= 2)) == NULL)) {
            snprintf(err, errlen, "out of memory");
            break;
        }
        ssize_t n = recv(fd, buf + got, cap - got - 1, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            snprintf(err, errlen, "recv: %s", strerror(errno));
            break;
        }
        if (n > 0) {
            got += (size_t)n;
            continue;
        }
        /* EOF: the whole answer is in. */
        close(fd);
        buf[got] = '\0';
        int status = 0;
        char *body = strstr(buf, "\r\n\r\n");
        if (sscanf(buf, "HTTP/1.%*d %d", &status) != 1 || body == NULL) {
            snprintf(err, errlen, "GET %s: not an HTTP answer", path);
            free(buf);
            return NULL;
        }
        if (status != 200) {
            snprintf(err, errlen, "GET %s: status %d", path, status);
            free(buf);
            return NULL;
        }
        body += 4;
        memmove(buf, body, got - (size_t)(body - buf) + 1);
        return buf;
    }
    close(fd);
    free(buf);
    return NULL;
}

/* ---- /metrics ---- */

typedef struct sample {
    double busy[MAX_WORKERS]; /* seconds */
    double runq[MAX_WORKERS];
    unsigned workers;
    double alive, handled, dead, inject;
    struct timespec at;
} sample;

/* One sample line, "name{k="v",...} value": the name, the worker label
 * (-1 if none) and the value. False if the line is malformed. */
static bool prom_line(char *line, char **name, long *worker, double *value)
{
    char *p = line;
    *name = p;
    while (*p == '_' || *p == ':' || (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
           (p > line && *p >= '0' && *p <= '9'))
        p++;
    if (p == line)
        return false;
    *worker = -1;
    char *end_name = p;
    if (*p == '{') {
        p++;
        while (*p != '}') {
            char *k = p;
            while (*p == '_' || (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
                   (p > k && *p >= '0' && *p <= '9'))
                p++;
            if (p == k || p[0] != '=' || p[1] != '"')
                return false;
            bool is_worker = p - k == 6 && memcmp(k, "worker", 6) == 0;
            p += 2;
            char *v = p;
            while (*p != '"') {
                if (*p == '\0')
                    return false;
                if (*p == '\\' && p[1] != '\0')
                    p++;
                p++;
            }
            if (is_worker)
                *worker = strtol(v, NULL, 10);
            p++;
            if (*p == ',')
                p++;
            else if (*p != '}')
                return false;
        }
        p++;
    }
    if (*p != ' ')
        return false;
    *end_name = '\0';
    char *end;
    *value = strtod(p + 1, &end);
    return end != p + 1 && (*end == '\0' || *end == ' ');
}

static bool parse_metrics(char *text, sample *s)
{
    memset(s, 0, sizeof *s);
    for (char *line = strtok(text, "\n"); line != NULL; line = strtok(NULL, "\n")) {
        if (line[0] == '#')
            continue;
        char *name;
        long w;
        double v;
        if (!prom_line(line, &name, &w, &v))
            return false;
        if (w >= 0 && w < MAX_WORKERS) {
            if (strcmp(name, "troupe_worker_busy_seconds_total") == 0)
                s->busy[w] = v;
            else if (strcmp(name, "troupe_worker_run_queue_depth") == 0)
                s->runq[w] = v;
            else
                continue;
            if ((unsigned)w + 1 > s->workers)
                s->workers = (unsigned)w + 1;
        } else if (strcmp(name, "troupe_actors_alive") == 0) {
            s->alive = v;
        } else if (strcmp(name, "troupe_messages_handled_total") == 0) {
            s->handled = v;
        } else if (strcmp(name, "troupe_dead_letters_total") == 0) {
            s->dead = v;
        } else if (strcmp(name, "troupe_injection_queue_depth") == 0) {
            s->inject = v;
        }
    }
    clock_gettime(CLOCK_MONOTONIC, &s->at);
    return true;
}

/* ---- /actors (JSON) ---- */

typedef struct actor {
    char pid[24], name[72], behaviour[72], state[16];
    double handled, busy_ns, mailbox;
} actor;

typedef struct json {
    const char *p;
    bool bad;
} json;

static void ws(json *j)
{
    while (*j->p == ' ' || *j->p == '\n' || *j->p == '\r' || *j->p == '\t')
        j->p++;
}

static bool eat(json *j, char c)
{
    ws(j);
    if (*j->p != c)
        return false;
    j->p++;
    return true;
}

/* A string into out (truncated to size; \uXXXX below 0x80 kept, others
 * as '?'); out may be NULL to skip it. What it holds goes to a terminal,
 * so a control character (an escape sequence in an actor's name, a
 * newline that would break a row) comes out as '?' too. */
static bool jstring(json *j, char *out, size_t size)
{
    size_t n = 0;
    if (!eat(j, '"'))
        return false;
    for (;;) {
        char c = *j->p++;
        if (c == '\0' || (unsigned char)c < 0x20)
            return false;
        if (c == '"')
            break;
        if (c == '\\') {
            char e = *j->p++;
            switch (e) {
            case '"': case '\\': case '/': c = e; break;
            case 'b': c = '\b'; break;
            case 'f': c = '\f'; break;
            case 'n': c = '\n'; break;
            case 'r': c = '\r'; break;
            case 't': c = '\t'; break;
            case 'u': {
                unsigned u = 0;
                for (int i = 0; i < 4; i++, j->p++) {
                    char x = *j->p;
                    int d = x >= '0' && x <= '9' ? x - '0' : x >= 'a' && x <= 'f' ? x - 'a' + 10
                          : x >= 'A' && x <= 'F' ? x - 'A' + 10 : -1;
                    if (d < 0)
                        return false;
                    u = u * 16 + (unsigned)d;
                }
                c = u < 0x80 ? (char)u : '?';
                break;
            }
            default: return false;
            }
        }
        if ((unsigned char)c < 0x20 || c == 0x7f)
            c = '?';
        if (out != NULL && n + 1 < size)
            out[n++] = c;
    }
    if (out != NULL)
        out[n] = '\0';
    return true;
}

static bool jnumber(json *j, double *v)
{
    ws(j);
    char *end;
    if (*j->p != '-' && (*j->p < '0' || *j->p > '9'))
        return false;
    *v = strtod(j->p, &end);
    if (end == j->p)
        return false;
    j->p = end;
    return true;
}

static bool jskip(json *j, int depth);

static bool jskip_container(json *j, char close, bool keys, int depth)
{
    if (eat(j, close))
        return true;
    do {
        if (keys && (!jstring(j, NULL, 0) || !eat(j, ':')))
            return false;
        if (!jskip(j, depth + 1))
            return false;
    } while (eat(j, ','));
    return eat(j, close);
}

/* Any value, skipped (nested at most 32 deep). */
static bool jskip(json *j, int depth)
{
    double d;
    ws(j);
    if (depth > 32)
        return false;
    switch (*j->p) {
    case '"': return jstring(j, NULL, 0);
    case '{': j->p++; return jskip_container(j, '}', true, depth);
    case '[': j->p++; return jskip_container(j, ']', false, depth);
    case 't': return strncmp(j->p, "true", 4) == 0 && (j->p += 4);
    case 'f': return strncmp(j->p, "false", 5) == 0 && (j->p += 5);
    case 'n': return strncmp(j->p, "null", 4) == 0 && (j->p += 4);
    default: return jnumber(j, &d);
    }
}

static bool jactor(json *j, actor *a)
{
    memset(a, 0, sizeof *a);
    if (!eat(j, '{'))
        return false;
    if (eat(j, '}'))
        return true;
    do {
        char key[32];
        if (!jstring(j, key, sizeof key) || !eat(j, ':'))
            return false;
        ws(j);
        bool ok;
        if (strcmp(key, "pid") == 0)
            ok = jstring(j, a->pid, sizeof a->pid);
        else if (strcmp(key, "name") == 0)
            ok = jstring(j, a->name, sizeof a->name);
        else if (strcmp(key, "behaviour") == 0)
            ok = jstring(j, a->behaviour, sizeof a->behaviour);
        else if (strcmp(key, "state") == 0)
            ok = jstring(j, a->state, sizeof a->state);
        else if (strcmp(key, "handled") == 0)
            ok = jnumber(j, &a->handled);
        else if (strcmp(key, "busy_ns") == 0)
            ok = jnumber(j, &a->busy_ns);
        else if (strcmp(key, "mailbox") == 0)
            ok = jnumber(j, &a->mailbox);
        else
            ok = jskip(j, 1);
        if (!ok)
            return false;
    } while (eat(j, ','));
    return eat(j, '}');
}

/* The actors of an /actors answer into a[] (at most MAX_ACTORS); their
 * count, or -1 if the text is not such an answer. */
static int parse_actors(const char *text, actor *a)
{
    json j = {.p = text};
    int n = 0;
    bool seen = false;
    if (!eat(&j, '{'))
        return -1;
    if (!eat(&j, '}')) {
        do {
            char key[32];
            if (!jstring(&j, key, sizeof key) || !eat(&j, ':'))
                return -1;
            if (strcmp(key, "actors") != 0) {
                if (!jskip(&j, 1))
                    return -1;
                continue;
            }
            seen = true;
            if (!eat(&j, '['))
                return -1;
            if (eat(&j, ']'))
                continue;
            do {
                actor tmp, *to = n < MAX_ACTORS ? &a[n] : &tmp;
                if (!jactor(&j, to))
                    return -1;
                n += n < MAX_ACTORS;
            } while (eat(&j, ','));
            if (!eat(&j, ']'))
                return -1;
        } while (eat(&j, ','));
        if (!eat(&j, '}'))
            return -1;
    }
    ws(&j);
    return seen && *j.p == '\0' ? n : -1;
}

/* ---- the frame ---- */

static double secs_between(const struct timespec *a, const struct timespec *b)
{
    return (double)(b->tv_sec - a->tv_sec) + (double)(b->tv_nsec - a->tv_nsec) / 1e9;
}

static const char *key_word(char k)
{
    return k == 'b' ? "busy" : k == 'm' ? "mailbox" : "handled";
}

static void draw(const char *target, const sample *before, const sample *now, const actor *a,
                 int n, unsigned rows, bool ansi)
{
    double dt = secs_between(&before->at, &now->at);
    if (dt <= 0)
        dt = 1e-9;
    if (ansi)
        fputs("\033[H\033[2J", stdout);
    const char *nl = ansi ? "\033[K\r\n" : "\n";
    printf("troupe-top %s  workers %u  actors %.0f  msgs/s %.0f  dead letters/s %.0f  "
           "injection queue %.0f%s",
           target, now->workers, now->alive, (now->handled - before->handled) / dt,
           (now->dead - before->dead) / dt, now->inject, nl);
    printf("busy %%  ");
    for (unsigned i = 0; i < now->workers; i++) {
        double b = (now->busy[i] - before->busy[i]) / dt * 100;
        printf(" %5.1f", b < 0 ? 0 : b > 100 ? 100 : b);
    }
    printf("%srun queue", nl);
    for (unsigned i = 0; i < now->workers; i++)
        printf(" %5.0f", now->runq[i]);
    printf("%s%s", nl, nl);
    printf("%-16s %-24s %-24s %10s %6s %8s %-8s%s", "PID", "NAME", "BEHAVIOUR", "MSGS/S", "BUSY%",
           "MAILBOX", "STATE", nl);
    double window = WINDOW_MS / 1000.0;
    for (int i = 0; i < n && (unsigned)i < rows; i++)
        printf("%-16s %-24.24s %-24.24s %10.0f %6.1f %8.0f %-8s%s", a[i].pid,
               a[i].name[0] != '\0' ? a[i].name : "-", a[i].behaviour, a[i].handled / window,
               a[i].busy_ns / (window * 1e9) * 100, a[i].mailbox, a[i].state, nl);
    if (ansi)
        printf("\r\nsorted by %s: h handled, b busy, m mailbox, q quit\033[J", key_word(sort_key));
    fflush(stdout);
}

/* Table rows that fit the terminal below the header. */
static unsigned term_rows(void)
{
    struct winsize w;
    unsigned rows = ioctl(STDOUT_FILENO, TIOCGWINSZ, &w) == 0 ? w.ws_row : 0;
    return rows > 12 ? (rows - 7 > MAX_ACTORS ? MAX_ACTORS : rows - 7) : 20;
}

static int usage(void)
{
    fprintf(stderr, "usage: troupe-top [--once] [--by handled|busy|mailbox] [--top N] HOST:PORT\n");
    return 2;
}

int main(int argc, char **argv)
{
    bool once = false;
    unsigned top = 0;
    const char *target = NULL;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--once") == 0) {
            once = true;
        } else if (strcmp(argv[i], "--by") == 0 && i + 1 < argc) {
            const char *k = argv[++i];
            if (strcmp(k, "handled") != 0 && strcmp(k, "busy") != 0 && strcmp(k, "mailbox") != 0)
                return usage();
            sort_key = k[0];
        } else if (strcmp(argv[i], "--top") == 0 && i + 1 < argc) {
            top = (unsigned)atoi(argv[++i]);
            if (top == 0 || top > MAX_ACTORS)
                return usage();
        } else if (argv[i][0] == '-' || target != NULL) {
            return usage();
        } else {
            target = argv[i];
        }
    }
    char host[256], port[8];
    const char *colon = target != NULL ? strrchr(target, ':') : NULL;
    if (colon == NULL || colon == target || (size_t)(colon - target) >= sizeof host ||
        strlen(colon + 1) == 0 || strlen(colon + 1) >= sizeof port)
        return usage();
    const char *h = target;
    size_t hl = (size_t)(colon - target);
    if (h[0] == '[' && hl >= 2 && h[hl - 1] == ']')
        h++, hl -= 2;
    memcpy(host, h, hl);
    host[hl] = '\0';
    strcpy(port, colon + 1);

    struct sigaction sa = {.sa_handler = on_signal};
    sigaction(SIGINT, &sa, NULL); /* no SA_RESTART: poll returns at once */
    sigaction(SIGTERM, &sa, NULL);
    if (!once)
        tty_raw();

    static actor actors[MAX_ACTORS];
    char err[256] = "";
    sample before, now;
    char *text = http_get(host, port, "/metrics", err, sizeof err);
    if (text == NULL || !parse_metrics(text, &before)) {
        tty_restore();
        fprintf(stderr, "troupe-top: %s\n", text == NULL ? err : "/metrics: malformed");
        free(text);
        return quit ? 0 : 1;
    }
    free(text);
    while (!quit) {
        unsigned rows = top != 0 ? top : once ? 20 : term_rows();
        char path[128];
        snprintf(path, sizeof path, "/actors?top=%u&by=%s&window=%d", rows, key_word(sort_key),
                 WINDOW_MS);
        int n = -1;
        text = http_get(host, port, path, err, sizeof err);
        if (text != NULL && (n = parse_actors(text, actors)) < 0)
            snprintf(err, sizeof err, "/actors: malformed");
        free(text);
        text = n >= 0 ? http_get(host, port, "/metrics", err, sizeof err) : NULL;
        if (text == NULL || !parse_metrics(text, &now)) {
            if (text != NULL)
                snprintf(err, sizeof err, "/metrics: malformed");
            free(text);
            if (quit)
                break;
            tty_restore();
            fprintf(stderr, "troupe-top: %s\n", err);
            return 1;
        }
        free(text);
        draw(target, &before, &now, actors, n, rows, !once);
        before = now;
        if (once)
            break;
    }
    tty_restore();
    return 0;
}
