/* test_metrics_serve.c — tr_metrics_serve over a real socket.
 *
 * A runtime with named actors (one "hot" that is sent a known number of
 * messages, one whose name needs escaping) serves /metrics and /actors on
 * a free port; the test thread fetches them with the HTTP client of
 * http_util.h and checks:
 *   - /metrics with a strict reader of the text format 0.0.4 written here
 *     (every line a HELP, a TYPE or a sample; valid names; label values
 *     escaped; numeric values; a TYPE before each family's samples, each
 *     family's lines together, no series twice; histogram buckets
 *     cumulative with +Inf equal to _count and a _sum), and the figures it
 *     gives for the hot actor exact after the run has quiesced; when
 *     promtool is on PATH, `promtool check metrics` accepts it too (the
 *     test says it skipped that part when it is not);
 *   - /actors as JSON (a minimal validator of RFC 8259 written here) with
 *     the hot actor first; a windowed query answered (by the two-sample
 *     timer, not a worker's sleep) with the window's own counts: none for
 *     a quiet window, some while messages flow;
 *   - 404 for other paths, 405 for other methods, 400 for a bad query,
 *     TR_EINVAL for bad addresses.
 */
#include <math.h>
#include <sys/wait.h>

#include <troupe/metrics.h>
#include "http_util.h"

#define HOT_N 5000
#define ODD_NAME "odd \"name\" \\ here"

/* ---- the actors ---- */

static atomic_long hot_handled;

static void hot(tr_ctx *cx, void *state, const tr_msg *m)
{
    (void)cx, (void)state, (void)m;
    atomic_fetch_add(&hot_handled, 1);
}

static void quiet(tr_ctx *cx, void *state, const tr_msg *m)
{
    (void)cx, (void)state, (void)m;
}

typedef struct fixture {
    tr_runtime *rt;
    tr_pid hot, odd;
    uint16_t port;
} fixture;

static void fixture_start(fixture *f)
{
    atomic_store(&hot_handled, 0);
    f->rt = tt_runtime(2, 0);
    tr_ctx *cx = tr_runtime_ctx(f->rt);
    tr_actor_spec h = {.behaviour = hot, .name = "hot"};
    tr_actor_spec o = {.behaviour = quiet, .name = ODD_NAME};
    CU_ASSERT_FATAL(tr_spawn_spec(cx, &h, &f->hot) == 0);
    CU_ASSERT_FATAL(tr_spawn_spec(cx, &o, &f->odd) == 0);
    CU_ASSERT_FATAL(tr_metrics_serve(cx, "127.0.0.1:0", &f->port, NULL) == 0);
    CU_ASSERT_FATAL(f->port != 0);
    CU_ASSERT_FATAL(tr_runtime_start(f->rt) == 0);
    for (int i = 0; i < HOT_N; i++)
        CU_ASSERT(tr_send(cx, f->hot, 1, &i, sizeof i) == 0);
    WAIT_FOR(atomic_load(&hot_handled) == HOT_N);
}

static void fixture_stop(fixture *f)
{
    tr_runtime_shutdown(f->rt);
    tt_join_within(f->rt, 60);
    tr_runtime_destroy(f->rt);
}

/* One request on a new connection: the response (free r->body). */
static int fetch(uint16_t port, const char *request, hresp *r)
{
    hconn *c = malloc(sizeof *c);
    CU_ASSERT_FATAL(c != NULL);
    hconn_open(c, port);
    CU_ASSERT(cli_write(c->fd, request, strlen(request)));
    c->head = strncmp(request, "HEAD ", 5) == 0;
    int got = hconn_read(c, r);
    close(c->fd);
    free(c);
    return got;
}

static char *get_body(uint16_t port, const char *path)
{
    char req[256];
    snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: t\r\n\r\n", path);
    hresp r;
    if (fetch(port, req, &r) != 1) {
        CU_FAIL("no response");
        return NULL;
    }
    TT_EQ(r.status, 200);
    if (r.status != 200) {
        printf("\n    GET %s: %d %s\n", path, r.status, r.body);
        free(r.body);
        return NULL;
    }
    return r.body;
}

/* ---- a strict reader of the Prometheus text format 0.0.4 ---- */

#define MAX_SERIES 4096

typedef struct series {
    char name[128];
    char labels[512]; /* canonical: k="v" (unescaped v), comma-separated, as sent */
    char le[256];     /* the le label of a bucket, else "" */
    double value;
} series;

typedef struct family {
    char name[128];
    char type[16];
    bool help, done; /* done: its samples have ended (another family began) */
} family;

typedef struct exposition {
    series s[MAX_SERIES];
    size_t n;
    family f[512];
    size_t nf;
    char err[256];
} exposition;

static bool name_ok(const char *s, size_t n, bool metric)
{
    if (n == 0)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        bool ok = c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                  (metric && c == ':') || (i > 0 && c >= '0' && c <= '9');
        if (!ok)
            return false;
    }
    return true;
}

static bool value_ok(const char *s, double *v)
{
    if (strcmp(s, "+Inf") == 0 || strcmp(s, "-Inf") == 0 || strcmp(s, "NaN") == 0) {
        *v = strcmp(s, "NaN") == 0 ? NAN : s[0] == '+' ? INFINITY : -INFINITY;
        return true;
    }
    if (*s == '\0' || (*s != '-' && *s != '+' && *s != '.' && (*s < '0' || *s > '9')))
        return false;
    char *end;
    *v = strtod(s, &end);
    return *end == '\0';
}

static family *family_of(exposition *e, const char *name)
{
    for (size_t i = 0; i < e->nf; i++)
        if (strcmp(e->f[i].name, name) == 0)
            return &e->f[i];
    return NULL;
}

/* The family a sample belongs to: its own name, or for a histogram's
 * _bucket, _sum and _count the name without the suffix. */
static family *sample_family(exposition *e, const char *name, const char **suffix)
{
    static const char *const sfx[] = {"_bucket", "_sum", "_count"};
    *suffix = "";
    family *f = family_of(e, name);
    if (f != NULL && strcmp(f->type, "histogram") != 0)
        return f;
    for (int i = 0; i < 3; i++) {
        size_t n = strlen(name), k = strlen(sfx[i]);
        if (n > k && strcmp(name + n - k, sfx[i]) == 0) {
            char base[128];
            snprintf(base, sizeof base, "%.*s", (int)(n - k), name);
            family *h = family_of(e, base);
            if (h != NULL && strcmp(h->type, "histogram") == 0) {
                *suffix = sfx[i];
                return h;
            }
        }
    }
    return NULL;
}

#define BAD(...) (snprintf(e->err, sizeof e->err, __VA_ARGS__), false)

static bool comment_line(exposition *e, char *line, family **current)
{
    bool help = strncmp(line, "# HELP ", 7) == 0, type = strncmp(line, "# TYPE ", 7) == 0;
    if (!help && !type)
        return BAD("a comment that is neither HELP nor TYPE: %s", line);
    char *name = line + 7, *sp = strchr(name, ' ');
    if (sp == NULL || !name_ok(name, (size_t)(sp - name), true))
        return BAD("a bad metric name in: %s", line);
    *sp = '\0';
    family *f = family_of(e, name);
    if (f == NULL) {
        if (e->nf == sizeof e->f / sizeof e->f[0])
            return BAD("too many families");
        f = &e->f[e->nf++];
        snprintf(f->name, sizeof f->name, "%s", name);
    } else if (f->done || f != *current) {
        return BAD("family %s's lines are not together", name);
    }
    if (*current != NULL && *current != f)
        (*current)->done = true;
    *current = f;
    const char *rest = sp + 1;
    if (help) {
        if (f->help)
            return BAD("two HELP lines for %s", name);
        f->help = true;
        for (const char *p = rest; *p != '\0'; p++)
            if (*p == '\\' && p[1] != '\\' && p[1] != 'n')
                return BAD("a bad escape in the HELP of %s", name);
            else if (*p == '\\')
                p++;
        return true;
    }
    if (f->type[0] != '\0')
        return BAD("two TYPE lines for %s", name);
    static const char *const types[] = {"counter", "gauge", "histogram", "summary", "untyped"};
    for (int i = 0; i < 5; i++)
        if (strcmp(rest, types[i]) == 0) {
            snprintf(f->type, sizeof f->type, "%s", rest);
            return true;
        }
    return BAD("an unknown type for %s: %s", name, rest);
}

/* name{k="v",...} value [timestamp] */
static bool sample_line(exposition *e, char *line, family **current)
{
    if (e->n == MAX_SERIES)
        return BAD("too many series");
    series *s = &e->s[e->n];
    memset(s, 0, sizeof *s);
    char *p = line;
    while (*p != '\0' && *p != '{' && *p != ' ')
        p++;
    if (!name_ok(line, (size_t)(p - line), true) || (size_t)(p - line) >= sizeof s->name)
        return BAD("a bad metric name in: %s", line);
    memcpy(s->name, line, (size_t)(p - line));
    size_t ll = 0;
    char seen[16][64];
    int nseen = 0;
    if (*p == '{') {
        p++;
        while (*p != '}') {
            char *k = p;
            while (*p != '=' && *p != '\0')
                p++;
            if (*p != '=' || !name_ok(k, (size_t)(p - k), false) || p[1] != '"' ||
                (p - k >= 2 && k[0] == '_' && k[1] == '_') || p - k >= 64)
                return BAD("a bad label in: %s", line);
            char key[64];
            snprintf(key, sizeof key, "%.*s", (int)(p - k), k);
            for (int i = 0; i < nseen; i++)
                if (strcmp(seen[i], key) == 0)
                    return BAD("label %s twice in: %s", key, line);
            if (nseen == 16)
                return BAD("too many labels");
            snprintf(seen[nseen++], 64, "%s", key);
            p += 2;
            char val[256];
            size_t vl = 0;
            for (; *p != '"'; p++) {
                if (*p == '\0' || *p == '\n')
                    return BAD("an unterminated label value in: %s", line);
                char c = *p;
                if (c == '\\') {
                    p++;
                    if (*p == '\\' || *p == '"')
                        c = *p;
                    else if (*p == 'n')
                        c = '\n';
                    else
                        return BAD("a bad escape in a label value: %s", line);
                }
                if (vl + 1 < sizeof val)
                    val[vl++] = c;
            }
            val[vl] = '\0';
            p++;
            if (strcmp(key, "le") == 0)
                snprintf(s->le, sizeof s->le, "%s", val);
            ll += (size_t)snprintf(s->labels + ll, sizeof s->labels - ll, "%s%s=\"%s\"",
                                   ll > 0 ? "," : "", key, val);
            if (ll >= sizeof s->labels)
                return BAD("labels too long");
            if (*p == ',')
                p++;
            else if (*p != '}')
                return BAD("a bad label list in: %s", line);
        }
        p++;
    }
    if (*p != ' ')
        return BAD("no value in: %s", line);
    char *val = ++p, *ts = strchr(val, ' ');
    if (ts != NULL) {
        *ts++ = '\0';
        double t;
        if (!value_ok(ts, &t) || strchr(ts, '.') != NULL)
            return BAD("a bad timestamp in: %s", line);
    }
    if (!value_ok(val, &s->value))
        return BAD("a bad value in: %s", line);
    const char *suffix;
    family *f = sample_family(e, s->name, &suffix);
    if (f == NULL || f->type[0] == '\0')
        return BAD("no TYPE before sample %s", s->name);
    if (f != *current)
        return BAD("sample %s is away from its family's lines", s->name);
    if (strcmp(f->type, "counter") == 0 && s->value < 0)
        return BAD("a negative counter: %s", line);
    if (strcmp(suffix, "_bucket") == 0 && s->le[0] == '\0')
        return BAD("a bucket without le: %s", line);
    for (size_t i = 0; i < e->n; i++)
        if (strcmp(e->s[i].name, s->name) == 0 && strcmp(e->s[i].labels, s->labels) == 0)
            return BAD("series %s{%s} twice", s->name, s->labels);
    e->n++;
    return true;
}

static const series *find(const exposition *e, const char *name, const char *labels)
{
    for (size_t i = 0; i < e->n; i++)
        if (strcmp(e->s[i].name, name) == 0 && strcmp(e->s[i].labels, labels) == 0)
            return &e->s[i];
    return NULL;
}

/* Each histogram: buckets in increasing le, cumulative, ending at +Inf
 * equal to _count; a _sum. */
static bool histograms_ok(exposition *e)
{
    for (size_t i = 0; i < e->nf; i++) {
        family *f = &e->f[i];
        if (strcmp(f->type, "histogram") != 0)
            continue;
        char bucket[160], sum[160], count[160];
        snprintf(bucket, sizeof bucket, "%s_bucket", f->name);
        snprintf(sum, sizeof sum, "%s_sum", f->name);
        snprintf(count, sizeof count, "%s_count", f->name);
        double last_le = -INFINITY, last = 0;
        int buckets = 0;
        bool inf = false;
        for (size_t j = 0; j < e->n; j++) {
            if (strcmp(e->s[j].name, bucket) != 0)
                continue;
            double le;
            if (!value_ok(e->s[j].le, &le) || le <= last_le)
                return BAD("%s: le %s out of order", f->name, e->s[j].le);
            if (e->s[j].value < last)
                return BAD("%s: buckets not cumulative at le %s", f->name, e->s[j].le);
            last_le = le;
            last = e->s[j].value;
            inf = isinf(le) && le > 0;
            buckets++;
        }
        const series *c = find(e, count, ""), *s = find(e, sum, "");
        if (buckets == 0 || !inf)
            return BAD("%s: no +Inf bucket", f->name);
        if (c == NULL || s == NULL)
            return BAD("%s: no _count or _sum", f->name);
        if (c->value != last)
            return BAD("%s: +Inf bucket %g, _count %g", f->name, last, c->value);
    }
    return true;
}

/* Reads text into e; false with the reason in e->err. */
static bool exposition_read(exposition *e, const char *text)
{
    memset(e, 0, sizeof *e);
    size_t len = strlen(text);
    if (len == 0 || text[len - 1] != '\n')
        return BAD("the text does not end with a newline");
    char *copy = strdup(text), *save = NULL;
    family *current = NULL;
    bool ok = true;
    for (char *line = copy; ok && *line != '\0';) {
        char *nl = strchr(line, '\n');
        *nl = '\0';
        if (line[0] == '\0')
            ok = BAD("an empty line");
        else if (line[0] == '#')
            ok = comment_line(e, line, &current);
        else
            ok = sample_line(e, line, &current);
        line = nl + 1;
    }
    (void)save;
    free(copy);
    return ok && histograms_ok(e);
}

/* ---- a minimal JSON validator (RFC 8259) ---- */

static const char *json_value(const char *p, int depth);

static const char *json_ws(const char *p)
{
    while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')
        p++;
    return p;
}

static const char *json_string(const char *p)
{
    if (*p++ != '"')
        return NULL;
    for (; *p != '"'; p++) {
        if ((unsigned char)*p < 0x20)
            return NULL;
        if (*p == '\\') {
            p++;
            if (*p == 'u') {
                for (int i = 1; i <= 4; i++)
                    if (!((p[i] >= '0' && p[i] <= '9') || (p[i] >= 'a' && p[i] <= 'f') ||
                          (p[i] >= 'A' && p[i] <= 'F')))
                        return NULL;
                p += 4;
            } else if (strchr("\"\\/bfnrt", *p) == NULL || *p == '\0') {
                return NULL;
            }
        }
    }
    return p + 1;
}

static const char *json_number(const char *p)
{
    if (*p == '-')
        p++;
    if (*p == '0')
        p++;
    else if (*p >= '1' && *p <= '9')
        while (*p >= '0' && *p <= '9')
            p++;
    else
        return NULL;
    if (*p == '.') {
        if (*++p < '0' || *p > '9')
            return NULL;
        while (*p >= '0' && *p <= '9')
            p++;
    }
    if (*p == 'e' || *p == 'E') {
        if (*++p == '+' || *p == '-')
            p++;
        if (*p < '0' || *p > '9')
            return NULL;
        while (*p >= '0' && *p <= '9')
            p++;
    }
    return p;
}

static const char *json_container(const char *p, char close, bool object, int depth)
{
    p = json_ws(p + 1);
    if (*p == close)
        return p + 1;
    for (;;) {
        if (object) {
            if ((p = json_string(p)) == NULL)
                return NULL;
            p = json_ws(p);
            if (*p++ != ':')
                return NULL;
        }
        if ((p = json_value(p, depth + 1)) == NULL)
            return NULL;
        p = json_ws(p);
        if (*p == close)
            return p + 1;
        if (*p++ != ',')
            return NULL;
        p = json_ws(p);
    }
}

static const char *json_value(const char *p, int depth)
{
    p = json_ws(p);
    if (depth > 64)
        return NULL;
    switch (*p) {
    case '{': return json_container(p, '}', true, depth);
    case '[': return json_container(p, ']', false, depth);
    case '"': return json_string(p);
    case 't': return strncmp(p, "true", 4) == 0 ? p + 4 : NULL;
    case 'f': return strncmp(p, "false", 5) == 0 ? p + 5 : NULL;
    case 'n': return strncmp(p, "null", 4) == 0 ? p + 4 : NULL;
    default: return json_number(p);
    }
}

static bool json_valid(const char *text)
{
    const char *end = json_value(text, 0);
    return end != NULL && *json_ws(end) == '\0';
}

/* The number after "key": in the object that holds "name":"<name>"
 * (the objects of /actors hold no braces in their strings here); -1 if
 * there is none. */
static long long actor_field(const char *json, const char *name, const char *key)
{
    char needle[128];
    snprintf(needle, sizeof needle, "\"name\":\"%s\"", name);
    const char *at = strstr(json, needle);
    if (at == NULL)
        return -1;
    const char *end = strchr(at, '}');
    snprintf(needle, sizeof needle, "\"%s\":", key);
    const char *k = strstr(at, needle);
    if (k == NULL || k > end)
        return -1;
    return strtoll(k + strlen(needle), NULL, 10);
}

/* ---- the tests ---- */

static void metrics_parse_strictly_with_exact_figures(void)
{
    fixture f;
    fixture_start(&f);
    char *body = get_body(f.port, "/metrics");
    CU_ASSERT_FATAL(body != NULL);
    exposition *e = malloc(sizeof *e);
    CU_ASSERT_FATAL(e != NULL);
    bool ok = exposition_read(e, body);
    if (!ok)
        printf("\n    /metrics: %s\n", e->err);
    CU_ASSERT(ok);
    /* Every family of the README's table is there, with its type. */
    static const char *const want[][2] = {
        {"troupe_messages_sent_total", "counter"}, {"troupe_messages_handled_total", "counter"},
        {"troupe_dead_letters_total", "counter"}, {"troupe_actors_alive", "gauge"},
        {"troupe_actors_spawned_total", "counter"}, {"troupe_actors_stopped_total", "counter"},
        {"troupe_worker_busy_seconds_total", "counter"}, {"troupe_worker_turns_total", "counter"},
        {"troupe_worker_parks_total", "counter"}, {"troupe_worker_steals_total", "counter"},
        {"troupe_worker_polls_total", "counter"}, {"troupe_worker_io_events_total", "counter"},
        {"troupe_worker_run_queue_depth", "gauge"}, {"troupe_injection_queue_depth", "gauge"},
        {"troupe_fds_watched", "gauge"}, {"troupe_timers_pending", "gauge"},
        {"troupe_timer_lateness_seconds", "histogram"},
        {"troupe_actor_mailbox_depth", "gauge"}, {"troupe_actor_busy_seconds_total", "counter"},
        {"troupe_actor_messages_handled_total", "counter"},
        {"process_cpu_seconds_total", "counter"}, {"process_resident_memory_bytes", "gauge"},
        {"process_open_fds", "gauge"}, {"process_max_fds", "gauge"},
        {"process_start_time_seconds", "gauge"},
    };
    for (size_t i = 0; ok && i < sizeof want / sizeof want[0]; i++) {
        family *fam = family_of(e, want[i][0]);
        if (fam == NULL || strcmp(fam->type, want[i][1]) != 0 || !fam->help)
            printf("\n    family %s (%s) missing or mistyped\n", want[i][0], want[i][1]);
        CU_ASSERT(fam != NULL && strcmp(fam->type, want[i][1]) == 0 && fam->help);
    }
    if (ok) {
        /* The run has quiesced: the hot actor's count is exact, and the
         * odd name comes back whole once its escapes are undone. */
        const series *h = find(e, "troupe_actor_messages_handled_total", "name=\"hot\"");
        CU_ASSERT(h != NULL && h->value == HOT_N);
        const series *m = find(e, "troupe_actor_mailbox_depth", "name=\"hot\"");
        CU_ASSERT(m != NULL && m->value == 0);
        CU_ASSERT(find(e, "troupe_actor_mailbox_depth", "name=\"" ODD_NAME "\"") != NULL);
        const series *all = find(e, "troupe_messages_handled_total", "");
        CU_ASSERT(all != NULL && all->value >= HOT_N);
        const series *w0 = find(e, "troupe_worker_busy_seconds_total", "worker=\"0\"");
        const series *w1 = find(e, "troupe_worker_busy_seconds_total", "worker=\"1\"");
        CU_ASSERT(w0 != NULL && w1 != NULL);
        const series *fds = find(e, "process_open_fds", "");
        CU_ASSERT(fds != NULL && fds->value > 0);
        /* Only named actors have series: two here. */
        size_t named = 0;
        for (size_t i = 0; i < e->n; i++)
            named += strcmp(e->s[i].name, "troupe_actor_mailbox_depth") == 0;
        TT_EQ(named, 2);
    }
    free(e);

    /* promtool, when installed (CI installs Debian's prometheus). */
    if (system("command -v promtool >/dev/null 2>&1") != 0) {
        printf("[promtool not installed: that check SKIPPED] ");
    } else {
        char path[] = "/tmp/troupe-metrics-XXXXXX";
        int fd = mkstemp(path);
        CU_ASSERT_FATAL(fd >= 0);
        CU_ASSERT(write(fd, body, strlen(body)) == (ssize_t)strlen(body));
        close(fd);
        char cmd[128];
        snprintf(cmd, sizeof cmd, "promtool check metrics < %s", path);
        int rc = system(cmd);
        if (rc != 0)
            printf("\n    promtool check metrics failed (%d) on:\n%s\n", rc, body);
        CU_ASSERT(rc == 0);
        unlink(path);
    }
    free(body);
    fixture_stop(&f);
}

static void actors_json_lists_the_hot_actor_first(void)
{
    fixture f;
    fixture_start(&f);
    char *body = get_body(f.port, "/actors?top=5&by=handled");
    CU_ASSERT_FATAL(body != NULL);
    CU_ASSERT(json_valid(body));
    const char *first = strstr(body, "\"actors\":[{\"pid\":\"");
    CU_ASSERT(first != NULL && strstr(first, "\"name\":\"") ==
                                   strstr(first, "\"name\":\"hot\""));
    TT_EQ(actor_field(body, "hot", "handled"), HOT_N);
    TT_EQ(actor_field(body, "hot", "mailbox"), 0);
    free(body);

    /* by=mailbox and by=busy answer too, and the names come back escaped. */
    body = get_body(f.port, "/actors?by=mailbox&top=1000");
    CU_ASSERT(body != NULL && json_valid(body));
    CU_ASSERT(body != NULL && strstr(body, "\"name\":\"odd \\\"name\\\" \\\\ here\"") != NULL);
    free(body);
    body = get_body(f.port, "/actors?by=busy");
    CU_ASSERT(body != NULL && json_valid(body));
    free(body);
    fixture_stop(&f);
}

struct pump {
    tr_runtime *rt;
    tr_pid to;
    atomic_bool stop;
    long sent;
};

static void *pump_main(void *arg)
{
    struct pump *p = arg;
    while (!atomic_load(&p->stop)) {
        if (tr_send(tr_runtime_ctx(p->rt), p->to, 2, NULL, 0) == 0)
            p->sent++;
        if (p->sent % 64 == 0)
            tt_sleep_ms(1);
    }
    return NULL;
}

static void actors_window_counts_only_the_window(void)
{
    fixture f;
    fixture_start(&f);
    /* Nothing is sent during this window: the hot actor handled none in it,
     * though it handled HOT_N since it was spawned. */
    char *body = get_body(f.port, "/actors?top=10&by=handled&window=100");
    CU_ASSERT_FATAL(body != NULL);
    CU_ASSERT(json_valid(body));
    CU_ASSERT(strstr(body, "\"window_ms\":100") != NULL);
    TT_EQ(actor_field(body, "hot", "handled"), 0);
    free(body);

    /* While a thread keeps sending, a window sees some of it (tried up to
     * 10 times: a loaded machine may stall the hot actor for a window). */
    struct pump p = {.rt = f.rt, .to = f.hot};
    pthread_t t = tt_thread(pump_main, &p);
    long long seen = 0;
    for (int i = 0; i < 10 && seen <= 0; i++) {
        body = get_body(f.port, "/actors?top=1&by=handled&window=300");
        CU_ASSERT_FATAL(body != NULL);
        CU_ASSERT(json_valid(body));
        seen = actor_field(body, "hot", "handled");
        free(body);
    }
    atomic_store(&p.stop, true);
    tt_join(t);
    CU_ASSERT(seen > 0);
    WAIT_FOR(atomic_load(&hot_handled) == HOT_N + p.sent);

    /* A window pauses the connection: a request pipelined behind it is
     * answered after it, in order, on the same connection. */
    hconn *c = malloc(sizeof *c);
    CU_ASSERT_FATAL(c != NULL);
    hconn_open(c, f.port);
    const char *two = "GET /actors?window=50 HTTP/1.1\r\nHost: t\r\n\r\n"
                      "GET /nope HTTP/1.1\r\nHost: t\r\n\r\n";
    CU_ASSERT(cli_write(c->fd, two, strlen(two)));
    hresp r;
    CU_ASSERT_FATAL(hconn_read(c, &r) == 1);
    TT_EQ(r.status, 200);
    CU_ASSERT(json_valid(r.body) && strstr(r.body, "\"window_ms\":50") != NULL);
    free(r.body);
    CU_ASSERT_FATAL(hconn_read(c, &r) == 1);
    TT_EQ(r.status, 404);
    free(r.body);
    /* A connection closed while its window runs leaves nothing behind
     * (the sanitizer builds check for a leak at destroy). */
    const char *one = "GET /actors?window=60000 HTTP/1.1\r\nHost: t\r\n\r\n";
    CU_ASSERT(cli_write(c->fd, one, strlen(one)));
    close(c->fd);
    free(c);
    fixture_stop(&f);
}

static void wrong_paths_methods_and_queries_refused(void)
{
    fixture f;
    fixture_start(&f);
    static const struct {
        const char *req;
        int status;
    } cases[] = {
        {"GET / HTTP/1.1\r\nHost: t\r\n\r\n", 404},
        {"GET /metricsx HTTP/1.1\r\nHost: t\r\n\r\n", 404},
        {"POST /metrics HTTP/1.1\r\nHost: t\r\nContent-Length: 2\r\n\r\nhi", 405},
        {"DELETE /actors HTTP/1.1\r\nHost: t\r\n\r\n", 405},
        {"GET /actors?top=0 HTTP/1.1\r\nHost: t\r\n\r\n", 400},
        {"GET /actors?top=1001 HTTP/1.1\r\nHost: t\r\n\r\n", 400},
        {"GET /actors?by=size HTTP/1.1\r\nHost: t\r\n\r\n", 400},
        {"GET /actors?window=-1 HTTP/1.1\r\nHost: t\r\n\r\n", 400},
        {"GET /actors?window=60001 HTTP/1.1\r\nHost: t\r\n\r\n", 400},
        {"GET /actors?colour=red HTTP/1.1\r\nHost: t\r\n\r\n", 400},
        {"GET /actors?top=3&by=busy&window=0 HTTP/1.1\r\nHost: t\r\n\r\n", 200},
        {"HEAD /metrics HTTP/1.1\r\nHost: t\r\n\r\n", 200},
        {"GET /metrics?anything HTTP/1.1\r\nHost: t\r\n\r\n", 200},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        hresp r;
        CU_ASSERT_FATAL(fetch(f.port, cases[i].req, &r) == 1);
        if (r.status != cases[i].status)
            printf("\n    %.40s...: %d, not %d\n", cases[i].req, r.status, cases[i].status);
        TT_EQ(r.status, cases[i].status);
        free(r.body);
    }
    tr_ctx *cx = tr_runtime_ctx(f.rt);
    static const char *const bad[] = {"", "nope", "127.0.0.1", "127.0.0.1:", "127.0.0.1:99999",
                                      "127.0.0.1:9x", "::1:80", "[::1:80", "127.0.0.1:-1"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        TT_EQ(tr_metrics_serve(cx, bad[i], NULL, NULL), TR_EINVAL);
    TT_EQ(tr_metrics_serve(cx, NULL, NULL, NULL), TR_EINVAL);
    TT_EQ(tr_metrics_serve(NULL, "127.0.0.1:0", NULL, NULL), TR_EINVAL);
    fixture_stop(&f);
}

void register_metrics_serve_tests(void)
{
    CU_pSuite s = tt_suite("metrics_serve");
    tt_test(s, "metrics_parse_strictly_with_exact_figures",
            metrics_parse_strictly_with_exact_figures);
    tt_test(s, "actors_json_lists_the_hot_actor_first", actors_json_lists_the_hot_actor_first);
    tt_test(s, "actors_window_counts_only_the_window", actors_window_counts_only_the_window);
    tt_test(s, "wrong_paths_methods_and_queries_refused", wrong_paths_methods_and_queries_refused);
}
