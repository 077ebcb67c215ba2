/* test_metrics_serve.c — tr_metrics_serve over a real socket.
 *
 * A runtime with named actors (one "hot" that is sent a known number of
 * messages, one whose name needs escaping) serves /metrics and /actors on
 * a free port; the test thread fetches them with the HTTP client of
 * http_util.h and checks:
 *   - /metrics with a strict reader of the text format 0.0.4 (prom_util.h:
 *     every line a HELP, a TYPE or a sample; valid names; label values
 *     escaped; numeric values; a TYPE before each family's samples, each
 *     family's lines together, no series twice; histogram buckets
 *     cumulative with +Inf equal to _count and a _sum), and the figures it
 *     gives for the hot actor exact after the run has quiesced; when
 *     promtool is on PATH, `promtool check metrics` accepts it too (the
 *     test says it skipped that part when it is not);
 *   - /actors as JSON (prom_util.h's minimal validator of RFC 8259) with
 *     the hot actor first; a windowed query answered (by the two-sample
 *     timer, not a worker's sleep) with the window's own counts: none for
 *     a quiet window, some while messages flow;
 *   - every state /actors can name, made to last (running: a turn held;
 *     runnable: an actor in that worker's LIFO slot; muted: a sender
 *     waiting for the overloaded holder), also in tr_runtime_dump, and a
 *     window ranked by busy time and by mailbox depth;
 *   - names of any bytes (control characters, UTF-8, bytes that are not
 *     UTF-8) escaped so that /actors stays UTF-8 JSON and /metrics stays
 *     UTF-8 text the strict reader takes, with no series twice;
 *   - 404 for other paths, 405 for other methods, 400 for a bad query,
 *     TR_EINVAL for bad addresses;
 *   - and that the readers themselves (prom_util.h, and its UTF-8 check)
 *     refuse text that breaks any one rule of the format, so that their
 *     passing means something.
 */
#include <limits.h>
#include <math.h>
#include <sys/wait.h>

#include <troupe/metrics.h>
#include "../actors/actors.h"
#include "../observe/observe.h"
#include "http_util.h"
#include "prom_util.h"

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

/* /metrics fetched (the body in *body) and read by the strict reader,
 * which must take it (whether it did in *ok). */
static exposition *read_metrics(uint16_t port, char **body, bool *ok)
{
    *body = get_body(port, "/metrics");
    CU_ASSERT_FATAL(*body != NULL);
    exposition *e = malloc(sizeof *e);
    CU_ASSERT_FATAL(e != NULL);
    *ok = exposition_read(e, *body);
    if (!*ok)
        printf("\n    /metrics: %s\n", e->err);
    CU_ASSERT(*ok);
    return e;
}

/* ---- the tests ---- */

static void metrics_parse_strictly_with_exact_figures(void)
{
    fixture f;
    fixture_start(&f);
    char *body;
    bool ok;
    exposition *e = read_metrics(f.port, &body, &ok);
    /* Every family of the README's table is there, with its type. */
    static const char *const want[][2] = {
        {"troupe_messages_sent_total", "counter"}, {"troupe_messages_handled_total", "counter"},
        {"troupe_dead_letters_total", "counter"}, {"troupe_actors_alive", "gauge"},
        {"troupe_actors_spawned_total", "counter"}, {"troupe_actors_stopped_total", "counter"},
        {"troupe_worker_busy_seconds_total", "counter"}, {"troupe_worker_turns_total", "counter"},
        {"troupe_worker_parks_total", "counter"}, {"troupe_worker_steals_total", "counter"},
        {"troupe_worker_polls_total", "counter"}, {"troupe_worker_io_events_total", "counter"},
        {"troupe_worker_run_queue_depth", "gauge"}, {"troupe_worker_cpu", "gauge"},
        {"troupe_injection_queue_depth", "gauge"},
        {"troupe_fds_watched", "gauge"}, {"troupe_timers_pending", "gauge"},
        {"troupe_timer_lateness_seconds", "histogram"},
        {"troupe_actor_mailbox_depth", "gauge"}, {"troupe_actor_busy_seconds_total", "counter"},
        {"troupe_actor_messages_handled_total", "counter"},
        {"process_cpu_seconds_total", "counter"}, {"process_resident_memory_bytes", "gauge"},
        {"process_open_fds", "gauge"}, {"process_max_fds", "gauge"},
        {"process_start_time_seconds", "gauge"},
    };
    for (size_t i = 0; ok && i < sizeof want / sizeof want[0]; i++) {
        family *fam = prom_family_of(e, want[i][0]);
        if (fam == NULL || strcmp(fam->type, want[i][1]) != 0 || !fam->help)
            printf("\n    family %s (%s) missing or mistyped\n", want[i][0], want[i][1]);
        CU_ASSERT(fam != NULL && strcmp(fam->type, want[i][1]) == 0 && fam->help);
    }
    if (ok) {
        /* The run has quiesced: the hot actor's count is exact, and the
         * odd name comes back whole once its escapes are undone. */
        const series *h = prom_find(e, "troupe_actor_messages_handled_total", "name=\"hot\"");
        CU_ASSERT(h != NULL && h->value == HOT_N);
        const series *m = prom_find(e, "troupe_actor_mailbox_depth", "name=\"hot\"");
        CU_ASSERT(m != NULL && m->value == 0);
        CU_ASSERT(prom_find(e, "troupe_actor_mailbox_depth", "name=\"" ODD_NAME "\"") != NULL);
        const series *all = prom_find(e, "troupe_messages_handled_total", "");
        CU_ASSERT(all != NULL && all->value >= HOT_N);
        const series *w0 = prom_find(e, "troupe_worker_busy_seconds_total", "worker=\"0\"");
        const series *w1 = prom_find(e, "troupe_worker_busy_seconds_total", "worker=\"1\"");
        CU_ASSERT(w0 != NULL && w1 != NULL);
        const series *fds = prom_find(e, "process_open_fds", "");
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

/* ---- states, and rankings over a window ---- */

enum { MSG_NOP = 3, MSG_HOLD, MSG_POKE };
#define HOLD_BATCH 8
#define DEEP 100

struct holder {
    sem_t go;
    atomic_bool in_turn;
    tr_pid ready; /* the actor the holding turn makes runnable */
};

/* On MSG_HOLD: sends h->ready a message, which puts it in this worker's
 * LIFO slot — the worker's alone (sched/sched.h), so it stays runnable
 * while this turn lasts — then holds the worker until the test posts go.
 * Other messages: nothing. */
static void holding(tr_ctx *cx, void *state, const tr_msg *m)
{
    struct holder *h = *(struct holder **)state;
    if (m->type != MSG_HOLD)
        return;
    TT_CHECK(tr_send(cx, h->ready, MSG_NOP, NULL, 0) == 0);
    atomic_store(&h->in_turn, true);
    while (sem_wait(&h->go) != 0)
        ;
}

/* On MSG_POKE: a message to the pid in its state. */
static void poking(tr_ctx *cx, void *state, const tr_msg *m)
{
    if (m->type == MSG_POKE)
        TT_CHECK(tr_send(cx, *(const tr_pid *)state, MSG_NOP, NULL, 0) == 0);
}

/* Whether the /actors object named name holds what (after its name). */
static bool actor_has(const char *json, const char *name, const char *what)
{
    char needle[128];
    snprintf(needle, sizeof needle, "\"name\":\"%s\"", name);
    const char *at = strstr(json, needle);
    if (at == NULL)
        return false;
    const char *end = strchr(at, '}'), *w = strstr(at, what);
    return w != NULL && w < end;
}

/* Whether the first actor of /actors is the one named name. */
static bool first_is(const char *json, const char *name)
{
    char needle[128];
    snprintf(needle, sizeof needle, "\"actors\":[{\"pid\":\"%%*[0-9a-f]\",\"name\":\"%s\"%%n", name);
    int got = 0;
    const char *at = strstr(json, "\"actors\":[");
    return at != NULL && sscanf(at, needle, &got) == 0 && got > 0;
}

/* Whether the values of key, in the order /actors lists the actors, never
 * rise (and there are some). */
static bool never_rises(const char *json, const char *key)
{
    char needle[64];
    snprintf(needle, sizeof needle, "\"%s\":", key);
    unsigned long long last = ULLONG_MAX;
    size_t n = 0;
    for (const char *at = strstr(json, needle); at != NULL; at = strstr(at + 1, needle), n++) {
        unsigned long long v = strtoull(at + strlen(needle), NULL, 10);
        if (v > last)
            return false;
        last = v;
    }
    return n > 0;
}

/* Whether the dump's line for pid holds what. */
static bool dump_has(const char *dump, tr_pid pid, const char *what)
{
    char key[64];
    snprintf(key, sizeof key, "actor %" PRIx64 " ", pid);
    const char *l = strstr(dump, key);
    const char *end = l != NULL ? strchr(l, '\n') : NULL, *w = l != NULL ? strstr(l, what) : NULL;
    return w != NULL && (end == NULL || w < end);
}

/* Every state an actor can be in, made to last: "holder" holds a worker
 * in its turn (running) with DEEP + 2 messages in its mailbox, having
 * made "queued" runnable in that worker's LIFO slot; its first turn took
 * a batch short of its backlog, so it is overloaded, and "sender", which
 * sent it a message from the other worker, waits for it (muted). /actors
 * and the dump say so; a window ranks by the window's busy time (only the
 * holder is in a turn through it) and by the mailbox at its end. */
static void actors_show_every_state_and_rank_a_window(void)
{
    tr_config cfg;
    tr_config_init(&cfg);
    cfg.threads = 2;
    cfg.batch = HOLD_BATCH;
    cfg.watchdog_ms = 0; /* the holding turn is meant to be long */
    tr_runtime *rt = NULL;
    CU_ASSERT_FATAL(tr_runtime_create(&cfg, &rt) == 0);
    tr_ctx *cx = tr_runtime_ctx(rt);
    struct holder h = {.in_turn = false};
    CU_ASSERT_FATAL(sem_init(&h.go, 0, 0) == 0);
    struct holder *hp = &h;
    tr_pid holder, queued, sender;
    tr_actor_spec qs = {.behaviour = quiet, .name = "queued"};
    CU_ASSERT_FATAL(tr_spawn_spec(cx, &qs, &queued) == 0);
    h.ready = queued;
    tr_actor_spec hs = {.behaviour = holding, .state = &hp, .state_size = sizeof hp,
                        .name = "holder"};
    CU_ASSERT_FATAL(tr_spawn_spec(cx, &hs, &holder) == 0);
    tr_actor_spec ss = {.behaviour = poking, .state = &holder, .state_size = sizeof holder,
                        .name = "sender"};
    CU_ASSERT_FATAL(tr_spawn_spec(cx, &ss, &sender) == 0);
    uint16_t port = 0;
    CU_ASSERT_FATAL(tr_metrics_serve(cx, "127.0.0.1:0", &port, NULL) == 0);
    /* Sent before the start, so that the holder's first turn finds them
     * all: it takes HOLD_BATCH, short of the messages that were waiting,
     * and ends overloaded (sched/backpressure.c); its second holds. */
    for (int i = 0; i < HOLD_BATCH; i++)
        TT_EQ(tr_send(cx, holder, MSG_NOP, NULL, 0), 0);
    TT_EQ(tr_send(cx, holder, MSG_HOLD, NULL, 0), 0);
    for (int i = 0; i < DEEP; i++)
        TT_EQ(tr_send(cx, holder, MSG_NOP, NULL, 0), 0);
    CU_ASSERT_FATAL(tr_runtime_start(rt) == 0);
    CU_ASSERT_FATAL(tt_wait_flag(&h.in_turn, 60));
    /* The sender's message to the overloaded holder ends its turn, and it
     * waits on the holder's list until the holder catches up. */
    TT_EQ(tr_send(cx, sender, MSG_POKE, NULL, 0), 0);
    tr_actor_figures fig;
    WAIT_FOR(tr_actor_info(rt, sender, &fig) == 0 && fig.state == TR_ACTOR_MUTED);
    TT_EQ(fig.handled, 1);
    TT_EQ(fig.mailbox, 0);
    TT_EQ(tr_actor_info(rt, holder, &fig), 0);
    TT_EQ(fig.state, TR_ACTOR_RUNNING);
    TT_EQ(fig.handled, HOLD_BATCH);
    TT_EQ(fig.mailbox, DEEP + 2); /* the one its turn holds, DEEP, the sender's */
    TT_EQ(tr_actor_info(rt, queued, &fig), 0);
    TT_EQ(fig.state, TR_ACTOR_RUNNABLE);
    TT_EQ(fig.mailbox, 1);

    char *body = get_body(port, "/actors?top=1000");
    CU_ASSERT_FATAL(body != NULL);
    CU_ASSERT(json_valid(body));
    CU_ASSERT(actor_has(body, "holder", "\"state\":\"running\""));
    CU_ASSERT(actor_has(body, "queued", "\"state\":\"runnable\""));
    CU_ASSERT(actor_has(body, "sender", "\"state\":\"muted\""));
    free(body);

    /* By mailbox over a window: the holder's DEEP + 2 first, the depths
     * in order; the window's counts are the window's (none: the holder's
     * turn has not ended, the others had none). */
    body = get_body(port, "/actors?by=mailbox&window=50&top=1000");
    CU_ASSERT_FATAL(body != NULL);
    CU_ASSERT(json_valid(body));
    CU_ASSERT(strstr(body, "{\"by\":\"mailbox\",\"window_ms\":50,") == body);
    CU_ASSERT(first_is(body, "holder"));
    TT_EQ(actor_field(body, "holder", "mailbox"), DEEP + 2);
    TT_EQ(actor_field(body, "holder", "handled"), 0);
    TT_EQ(actor_field(body, "holder", "turns"), 0);
    TT_EQ(actor_field(body, "queued", "mailbox"), 1);
    CU_ASSERT(never_rises(body, "mailbox"));
    free(body);

    /* By busy time over a window: the holder, in its turn throughout, is
     * charged the monitor's ticks (sched/metrics.c); nobody else has a
     * turn but the server's short ones, so it comes first (asked again,
     * up to 20 windows, while the monitor is starved of the CPU for a
     * whole window and charges nobody). Those that had no turn were
     * charged nothing. */
    bool first = false;
    for (int i = 0; i < 20 && !first; i++) {
        body = get_body(port, "/actors?by=busy&window=200&top=1000");
        CU_ASSERT_FATAL(body != NULL);
        CU_ASSERT(json_valid(body));
        CU_ASSERT(strstr(body, "{\"by\":\"busy\",\"window_ms\":200,") == body);
        first = first_is(body, "holder") && actor_field(body, "holder", "busy_ns") > 0;
        CU_ASSERT(never_rises(body, "busy_ns"));
        TT_EQ(actor_field(body, "queued", "busy_ns"), 0);
        TT_EQ(actor_field(body, "sender", "busy_ns"), 0);
        TT_EQ(actor_field(body, "holder", "handled"), 0);
        if (!first)
            printf("\n    by busy, not the holder first: %s\n", body);
        free(body);
    }
    CU_ASSERT(first);

    char *dump = NULL;
    size_t size = 0;
    FILE *f = open_memstream(&dump, &size);
    CU_ASSERT_FATAL(f != NULL);
    CU_ASSERT(tr_runtime_dump(rt, f) >= 3); /* and a connection, if still in a turn */
    fclose(f);
    CU_ASSERT(dump_has(dump, holder, " state=running "));
    CU_ASSERT(dump_has(dump, queued, " state=runnable "));
    CU_ASSERT(dump_has(dump, sender, " state=muted "));
    free(dump);

    /* Let go, the holder catches up and lets the sender go. */
    sem_post(&h.go);
    WAIT_FOR(tr_actor_info(rt, holder, &fig) == 0 && fig.handled == HOLD_BATCH + DEEP + 2);
    WAIT_FOR(tr_actor_info(rt, sender, &fig) == 0 && fig.state == TR_ACTOR_IDLE);
    WAIT_FOR(tr_actor_info(rt, queued, &fig) == 0 && fig.handled == 1);
    TT_NO_ERRORS();
    tr_runtime_shutdown(rt);
    tt_join_within(rt, 60);
    tr_runtime_destroy(rt);
    sem_destroy(&h.go);
}

/* ---- names that need escaping ---- */

/* A name is any bytes, 1 to TR_NAME_MAX - 1 of them (the registry looks
 * at nothing else), so each format has to make text of what it is given.
 * Each name with what it must become: in a JSON string (RFC 8259: control
 * characters escaped; the library writes a byte that is not UTF-8 as '?',
 * so the document stays UTF-8) and in a Prometheus label value (0.0.4:
 * \\, \" and \n escaped; the library writes other control characters and
 * what is not UTF-8 as '?', and then adds the pid as a label, `replaced`,
 * since "dup\x01" and "dup\x02" would otherwise be one series twice). */
static const struct odd_name {
    const char *raw, *json, *prom;
    bool replaced;
} odd_names[] = {
    {"nl\nx", "nl\\nx", "nl\\nx", false},
    {"tab\tx", "tab\\u0009x", "tab?x", true},
    {"cr\rx", "cr\\u000dx", "cr?x", true},
    {"soh\x01" "x", "soh\\u0001x", "soh?x", true},
    {"del\x7f" "x", "del\x7f" "x", "del?x", true},
    {"q\"b\\\n", "q\\\"b\\\\\\n", "q\\\"b\\\\\\n", false},
    {"caf\xc3\xa9", "caf\xc3\xa9", "caf\xc3\xa9", false},                   /* é */
    {"\xe6\x97\xa5\xe6\x9c\xac", "\xe6\x97\xa5\xe6\x9c\xac",                  /* 日本 */
     "\xe6\x97\xa5\xe6\x9c\xac", false},
    {"\xf0\x9f\x99\x82", "\xf0\x9f\x99\x82", "\xf0\x9f\x99\x82", false},     /* U+1F642 */
    {"ff\xff" "x", "ff?x", "ff?x", true},                                    /* a lone 0xff */
    {"cut\xe6\x97", "cut??", "cut??", true},                                 /* truncated at the end */
    {"mid\xe6\x97" "x", "mid??x", "mid??x", true},                           /* and in the middle */
    {"cont\x80", "cont?", "cont?", true},                                    /* a stray continuation */
    {"long2\xc0\xaf", "long2??", "long2??", true},                           /* overlong '/' */
    {"long3\xe0\x80\xaf", "long3???", "long3???", true},
    {"long4\xf0\x80\x80\xaf", "long4????", "long4????", true},
    {"sur\xed\xa0\x80", "sur???", "sur???", true},                           /* U+D800 */
    {"past\xf4\x90\x80\x80", "past????", "past????", true},                  /* U+110000 */
    {"f5\xf5\x80\x80\x80", "f5????", "f5????", true},
    {"dup\x01", "dup\\u0001", "dup?", true},
    {"dup\x02", "dup\\u0002", "dup?", true},
    {"dup?", "dup?", "dup?", false},
    {"esc\x1b[2J", "esc\\u001b[2J", "esc?[2J", true},                          /* clears a terminal */
};
#define ODD_N (sizeof odd_names / sizeof odd_names[0])

/* Whether text holds line (a whole one: it begins a line). */
static bool has_line(const char *text, const char *line)
{
    size_t n = strlen(line);
    for (const char *at = strstr(text, line); at != NULL; at = strstr(at + 1, line))
        if ((at == text || at[-1] == '\n') && at[n - 1] == '\n')
            return true;
    return false;
}

static void odd_names_stay_valid_json_and_prometheus_text(void)
{
    fixture f;
    fixture_start(&f);
    tr_ctx *cx = tr_runtime_ctx(f.rt);
    tr_pid pid[ODD_N + 1];
    /* Half named by their spec, half by tr_register after the spawn. */
    for (size_t i = 0; i < ODD_N; i++) {
        tr_actor_spec spec = {.behaviour = quiet, .name = i % 2 ? odd_names[i].raw : NULL};
        TT_EQ(tr_spawn_spec(cx, &spec, &pid[i]), 0);
        if (i % 2 == 0)
            TT_EQ(tr_register(f.rt, odd_names[i].raw, pid[i]), 0);
        TT_EQ(tr_whereis(f.rt, odd_names[i].raw), pid[i]);
    }
    /* The longest name there can be, every byte a control character; one
     * byte more, or none, is refused. */
    char longest[TR_NAME_MAX + 1];
    memset(longest, '\x01', TR_NAME_MAX);
    longest[TR_NAME_MAX] = '\0';
    TT_EQ(tr_spawn(cx, quiet, NULL, 0, &pid[ODD_N]), 0);
    TT_EQ(tr_register(f.rt, longest, pid[ODD_N]), TR_EINVAL);
    tr_actor_spec too_long = {.behaviour = quiet, .name = longest};
    TT_EQ(tr_spawn_spec(cx, &too_long, NULL), TR_EINVAL);
    TT_EQ(tr_register(f.rt, "", pid[ODD_N]), TR_EINVAL);
    longest[TR_NAME_MAX - 1] = '\0';
    TT_EQ(tr_register(f.rt, longest, pid[ODD_N]), 0);

    /* tr_runtime_top hands the names back byte for byte. */
    tr_actor_figures *top = calloc(1000, sizeof *top);
    CU_ASSERT_FATAL(top != NULL);
    int n = tr_runtime_top(f.rt, TR_TOP_HANDLED, 1000, 0, top);
    for (size_t i = 0; i <= ODD_N; i++) {
        const char *want = i < ODD_N ? odd_names[i].raw : longest;
        int k = 0;
        while (k < n && top[k].pid != pid[i])
            k++;
        CU_ASSERT(k < n && strcmp(top[k].name, want) == 0);
    }
    free(top);

    /* /actors: valid JSON, UTF-8 throughout, each name as expected under
     * its own pid. */
    char *body = get_body(f.port, "/actors?top=1000");
    CU_ASSERT_FATAL(body != NULL);
    CU_ASSERT(json_valid(body));
    CU_ASSERT(utf8_valid(body, strlen(body)));
    char want[512];
    for (size_t i = 0; i <= ODD_N; i++) {
        int at = snprintf(want, sizeof want, "{\"pid\":\"%llx\",\"name\":\"",
                          (unsigned long long)pid[i]);
        if (i < ODD_N)
            at += snprintf(want + at, sizeof want - (size_t)at, "%s", odd_names[i].json);
        else
            for (size_t k = 0; k < TR_NAME_MAX - 1; k++)
                at += snprintf(want + at, sizeof want - (size_t)at, "\\u0001");
        snprintf(want + at, sizeof want - (size_t)at, "\",\"behaviour\":");
        if (strstr(body, want) == NULL)
            printf("\n    /actors lacks %s\n", want);
        CU_ASSERT(strstr(body, want) != NULL);
    }
    free(body);

    /* /metrics: the strict reader takes it (every line whole, escapes
     * right, no series twice), UTF-8 throughout, and each name's series
     * as expected. */
    bool ok;
    free(read_metrics(f.port, &body, &ok));
    CU_ASSERT(utf8_valid(body, strlen(body)));
    for (size_t i = 0; i <= ODD_N; i++) {
        int at = snprintf(want, sizeof want, "troupe_actor_mailbox_depth{name=\"");
        if (i < ODD_N)
            at += snprintf(want + at, sizeof want - (size_t)at, "%s", odd_names[i].prom);
        else
            for (size_t k = 0; k < TR_NAME_MAX - 1; k++)
                at += snprintf(want + at, sizeof want - (size_t)at, "?");
        if (i == ODD_N || odd_names[i].replaced)
            at += snprintf(want + at, sizeof want - (size_t)at, "\",pid=\"%llx",
                           (unsigned long long)pid[i]);
        snprintf(want + at, sizeof want - (size_t)at, "\"} 0\n");
        if (!has_line(body, want))
            printf("\n    /metrics lacks %s", want);
        CU_ASSERT(has_line(body, want));
    }
    free(body);

    /* troupe-top prints the names to a terminal: no control character
     * gets there (an escape sequence would clear the screen, a newline
     * break a row), but the newlines of its own rows. */
    char target[32];
    snprintf(target, sizeof target, "127.0.0.1:%u", (unsigned)f.port);
    const char *const top_args[] = {"--once", "--top", "1000", target, NULL};
    int code;
    char *frame = tt_run_program("tools/troupe-top", top_args, false, 60, &code);
    TT_EQ(code, 0);
    CU_ASSERT_FATAL(frame != NULL);
    for (const char *c = frame; *c != '\0'; c++)
        if (((unsigned char)*c < 0x20 && *c != '\n') || *c == 0x7f) {
            printf("\n    troupe-top wrote byte 0x%02x\n", (unsigned char)*c);
            CU_FAIL("a control character on the terminal");
            break;
        }
    CU_ASSERT(strstr(frame, "esc?[2J") != NULL && strstr(frame, "nl?x") != NULL);
    free(frame);
    fixture_stop(&f);
}

/* The reader of prom_util.h is strict: each of these breaks one rule. */
static void strict_reader_rejects_malformed_text(void)
{
    static const char *const bad[] = {
        "a 1",                                            /* no newline at the end */
        "# TYPE a counter\na 1\n\n",                     /* an empty line */
        "a 1\n",                                          /* no TYPE */
        "# TYPE a counter\n# TYPE a counter\na 1\n",      /* TYPE twice */
        "# TYPE a cnt\na 1\n",                            /* unknown type */
        "# TYPE 1a gauge\n1a 1\n",                        /* bad name */
        "# TYPE a gauge\na{x=\"q\"q\"} 1\n",              /* unescaped quote */
        "# TYPE a gauge\na{x=\"\\q\"} 1\n",              /* bad escape */
        "# TYPE a gauge\na{__x=\"1\"} 1\n",               /* reserved label */
        "# TYPE a gauge\na{x=\"1\",x=\"2\"} 1\n",        /* label twice */
        "# TYPE a gauge\na{x=\"1\"} 1\na{x=\"1\"} 2\n",  /* series twice */
        "# TYPE a gauge\na one\n",                        /* not a number */
        "# TYPE a counter\na -1\n",                       /* negative counter */
        "# TYPE a gauge\n# TYPE b gauge\nb 1\na 1\n",     /* a's lines apart */
        "# TYPE a gauge\na 1\n# TYPE b gauge\nb 1\n# HELP a x\n",
        "# a comment\n",                                   /* neither HELP nor TYPE */
        "# TYPE h histogram\nh_bucket{le=\"1\"} 2\nh_bucket{le=\"+Inf\"} 1\n"
        "h_sum 1\nh_count 1\n",                           /* not cumulative */
        "# TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_bucket{le=\"+Inf\"} 2\n"
        "h_sum 1\nh_count 3\n",                           /* +Inf is not _count */
        "# TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_sum 1\nh_count 1\n", /* no +Inf */
        "# TYPE h histogram\nh_bucket{le=\"+Inf\"} 1\nh_count 1\n",        /* no _sum */
        "# TYPE h histogram\nh_bucket 1\nh_sum 1\nh_count 1\n",             /* no le */
    };
    exposition *e = malloc(sizeof *e);
    CU_ASSERT_FATAL(e != NULL);
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        bool read = exposition_read(e, bad[i]);
        if (read)
            printf("\n    accepted: %s\n", bad[i]);
        CU_ASSERT(!read);
    }
    const char *good = "# HELP a A \\\\ help\\n.\n# TYPE a gauge\na{x=\"q\\\"\\n\\\\\"} 1.5e3 17\n"
                       "# TYPE h histogram\nh_bucket{le=\"0.5\"} 1\nh_bucket{le=\"+Inf\"} 2\n"
                       "h_sum 0.75\nh_count 2\n";
    bool read = exposition_read(e, good);
    if (!read)
        printf("\n    %s\n", e->err);
    CU_ASSERT(read);
    const series *a = prom_find(e, "a", "x=\"q\"\n\\\"");
    CU_ASSERT(a != NULL && a->value == 1500);
    free(e);
    CU_ASSERT(json_valid("{\"a\":[1,-2.5e3,\"x\\u00e9\",true,null,{}]}"));
    CU_ASSERT(!json_valid("{\"a\":01}"));
    CU_ASSERT(!json_valid("{\"a\":1,}"));
    CU_ASSERT(!json_valid("{\"a\":\"\\x\"}"));
    CU_ASSERT(!json_valid("{\"a\":1} x"));
    static const char *const utf8_good[] = {"", "a\x7f", "caf\xc3\xa9", "\xe6\x97\xa5",
                                            "\xef\xbf\xbf", "\xf0\x90\x80\x80",
                                            "\xf4\x8f\xbf\xbf"};
    static const char *const utf8_bad[] = {"\xff", "\x80", "\xc3", "\xe6\x97", "\xe6\x97x",
                                           "\xc0\xaf", "\xc1\xbf", "\xe0\x9f\xbf",
                                           "\xed\xa0\x80", "\xf0\x8f\xbf\xbf",
                                           "\xf4\x90\x80\x80", "\xf8\x88\x80\x80\x80"};
    for (size_t i = 0; i < sizeof utf8_good / sizeof utf8_good[0]; i++)
        CU_ASSERT(utf8_valid(utf8_good[i], strlen(utf8_good[i])));
    for (size_t i = 0; i < sizeof utf8_bad / sizeof utf8_bad[0]; i++)
        CU_ASSERT(!utf8_valid(utf8_bad[i], strlen(utf8_bad[i])));
}

/* Figures of 64 bits are written whole: an actor whose handled count,
 * turns and busy time are set near 2^64 (a server that ran for years; set
 * before the workers start) appears in /actors with each to the digit
 * and in /metrics with the same handled count; the JSON stays valid, the
 * text passes the strict reader. */
static void figures_of_64_bits_written_whole(void)
{
    tr_runtime *rt = tt_runtime(2, 0);
    tr_ctx *cx = tr_runtime_ctx(rt);
    tr_actor_spec q = {.behaviour = quiet, .name = "old"};
    tr_pid p;
    CU_ASSERT_FATAL(tr_spawn_spec(cx, &q, &p) == 0);
    tr__actor *a = tr__table_lookup(&tr__actors_of(rt)->table, p);
    CU_ASSERT_FATAL(a != NULL);
    ck_pr_store_64(&a->handled, UINT64_MAX - 1);
    ck_pr_store_32(&a->pushed, UINT32_MAX - 1); /* an empty mailbox */
    ck_pr_store_32(&a->turns, UINT32_MAX);
    uint32_t life = ck_pr_load_32(&a->life);
    tr__side *side = tr__side_own(a, life);
    ck_pr_store_32(&side->turns_hi, UINT32_MAX - 1);
    ck_pr_store_64(&side->busy_ns, UINT64_MAX - 2); /* the monitor's group, */
    ck_pr_store_32(&side->monitor_life, life);      /* tagged as sched/metrics.c does */
    uint16_t port;
    CU_ASSERT_FATAL(tr_metrics_serve(cx, "127.0.0.1:0", &port, NULL) == 0);
    CU_ASSERT_FATAL(tr_runtime_start(rt) == 0);

    char *body = get_body(port, "/actors?by=handled&top=3");
    CU_ASSERT_FATAL(body != NULL);
    CU_ASSERT(json_valid(body));
    const char *old = strstr(body, "{\"pid\"");
    CU_ASSERT_FATAL(old != NULL);
    const char *end = strchr(old, '}');
    CU_ASSERT_FATAL(end != NULL);
    CU_ASSERT(strstr(old, "\"name\":\"old\"") != NULL && strstr(old, "\"name\":\"old\"") < end);
    CU_ASSERT(strstr(old, "\"handled\":18446744073709551614,") != NULL);
    CU_ASSERT(strstr(old, "\"turns\":18446744069414584319,") != NULL);
    CU_ASSERT(strstr(old, "\"busy_ns\":18446744073709551613,") != NULL);
    CU_ASSERT(strstr(old, "\"mailbox\":0,") != NULL);
    free(body);
    bool ok;
    exposition *e = read_metrics(port, &body, &ok);
    CU_ASSERT(strstr(body, "\ntroupe_actor_messages_handled_total{name=\"old\"} "
                           "18446744073709551614\n") != NULL);
    CU_ASSERT(strstr(body, "\ntroupe_actor_busy_seconds_total{name=\"old\"} "
                           "18446744073.709551613\n") != NULL);
    free(e);
    free(body);
    tr_runtime_shutdown(rt);
    TT_EQ(tt_join_within(rt, 60), 1);
    TT_NO_ERRORS();
    tr_runtime_destroy(rt);
}

/* The buffer the pages are written into: a formatted piece longer than
 * the 256 bytes formatted on the stack is written whole, where it
 * belongs, as the buffer grows past its first 4 KiB; escaping writes a
 * label value and a JSON string as each format wants them; and once an
 * allocation fails the buffer stays failed and keeps what it had, so a
 * page is refused whole rather than served cut. */
static void page_buffer_grows_escapes_and_fails_whole(void)
{
    tr__obuf b = {0};
    char piece[5001];
    memset(piece, 'p', sizeof piece - 1);
    piece[sizeof piece - 1] = '\0';
    tr__obuf_printf(&b, "<%d>", 7);
    tr__obuf_printf(&b, "[%.300s]", piece);                 /* one over 256 */
    tr__obuf_printf(&b, "%s|%u", piece, 42u);              /* past 4 KiB */
    CU_ASSERT_FATAL(!b.oom && b.p != NULL);
    TT_EQ(b.len, 3 + 302 + 5000 + 3);
    TT_EQ(strlen(b.p), b.len);
    CU_ASSERT(memcmp(b.p, "<7>[", 4) == 0 && b.p[3 + 301] == ']');
    CU_ASSERT(strspn(b.p + 4, "p") == 300 && strspn(b.p + 305, "p") == 5000);
    CU_ASSERT(strcmp(b.p + 305 + 5000, "|42") == 0);
    tr__obuf_free(&b);

    /* a quote, a backslash, a newline, a tab, a DEL, two-byte UTF-8 and a
     * lone continuation byte */
    const char *odd = "a\"b\\c\nd\te\x7f" "f\xc3\xa9g\x80h";
    CU_ASSERT(tr__obuf_escaped(&b, odd, TR__ESC_PROM));
    CU_ASSERT_FATAL(b.p != NULL);
    CU_ASSERT(strcmp(b.p, "a\\\"b\\\\c\\nd?e?f\xc3\xa9g?h") == 0);
    tr__obuf_free(&b);
    CU_ASSERT(tr__obuf_escaped(&b, odd, TR__ESC_JSON));
    CU_ASSERT_FATAL(b.p != NULL);
    CU_ASSERT(strcmp(b.p, "a\\\"b\\\\c\\nd\\u0009e\x7f" "f\xc3\xa9g?h") == 0);
    tr__obuf_free(&b);
    CU_ASSERT(!tr__obuf_escaped(&b, "plain \xe2\x82\xac", TR__ESC_JSON));
    tr__obuf_free(&b);

    tr__obuf_put(&b, "kept", 4);
    tt_alloc_fail(1, ULONG_MAX);
    tr__obuf_printf(&b, "%s", piece); /* needs 8 KiB: the realloc fails */
    tt_alloc_fail(0, 0);
    CU_ASSERT(b.oom);
    tr__obuf_put(&b, "more", 4);      /* nothing more goes in, though it fits */
    tr__obuf_printf(&b, "%d", 1);
    TT_EQ(b.len, 4);
    CU_ASSERT(strcmp(b.p, "kept") == 0);
    tr__obuf_free(&b);
}

/* ---- what a client may not do to the server ---- */

struct mover {
    tr_runtime *rt;
    tr_pid a, b;
    atomic_bool moving;
};

static void *move_svc(void *arg)
{
    struct mover *m = arg;
    tr_runtime *rt = m->rt;
    tr_pid a = m->a, b = m->b;
    while (atomic_load(&m->moving)) {
        tr_unregister(rt, "svc");
        TT_CHECK(tr_register(rt, "svc", b) == 0);
        tr_unregister(rt, "svc");
        TT_CHECK(tr_register(rt, "svc", a) == 0);
    }
    return NULL;
}

/* A name that moves from one actor to another while pages are made: each
 * actor's name is read with its figures, one after another, so a page
 * could hold the name on both (the same series twice, which Prometheus
 * refuses: 90 pages of 3,000 did). 300 pages, each read strictly (no
 * series twice), "svc" in each at most once. */
static void a_name_moving_during_scrapes_is_one_series(void)
{
    fixture f;
    fixture_start(&f);
    struct mover m = {.rt = f.rt};
    TT_EQ(tr_spawn(tr_runtime_ctx(f.rt), quiet, NULL, 0, &m.a), 0);
    TT_EQ(tr_spawn(tr_runtime_ctx(f.rt), quiet, NULL, 0, &m.b), 0);
    TT_EQ(tr_register(f.rt, "svc", m.a), 0);
    atomic_store(&m.moving, true);
    pthread_t t = tt_thread(move_svc, &m);
    exposition *e = malloc(sizeof *e);
    CU_ASSERT_FATAL(e != NULL);
    int bad = 0, twice = 0;
    for (int i = 0; i < 300; i++) {
        char *page = get_body(f.port, "/metrics");
        CU_ASSERT_FATAL(page != NULL);
        if (!exposition_read(e, page) && bad++ == 0)
            printf("\n    page %d: %s\n", i, e->err);
        const char *key = "troupe_actor_messages_handled_total{name=\"svc\"}";
        const char *at = strstr(page, key);
        twice += at != NULL && strstr(at + 1, key) != NULL;
        free(page);
    }
    atomic_store(&m.moving, false);
    tt_join(t);
    free(e);
    TT_EQ(bad, 0);
    TT_EQ(twice, 0);
    TT_NO_ERRORS();
    fixture_stop(&f);
}

/* Each windowed /actors query holds a sample of every actor until its
 * window ends, its client gone or not (reading is paused meanwhile): 200
 * of them over 65,536 actors held 400 MiB for the window's 60 s. At most
 * TR__METRICS_WINDOWS_MAX run at once in the process; the next is
 * answered 503 with Retry-After, and once they end (here: the runtime
 * stops them) none is counted. */
static void windowed_queries_are_capped(void)
{
    fixture f;
    fixture_start(&f);
    TT_EQ(tr__metrics_windows_open(), 0);
    hconn *c = calloc(TR__METRICS_WINDOWS_MAX, sizeof *c);
    CU_ASSERT_FATAL(c != NULL);
    static const char req[] = "GET /actors?window=60000 HTTP/1.1\r\nHost: t\r\n\r\n";
    for (unsigned i = 0; i < TR__METRICS_WINDOWS_MAX; i++) {
        hconn_open(&c[i], f.port);
        CU_ASSERT(cli_write(c[i].fd, req, strlen(req)));
    }
    WAIT_FOR(tr__metrics_windows_open() == TR__METRICS_WINDOWS_MAX);
    hresp r;
    CU_ASSERT_FATAL(fetch(f.port, req, &r) == 1);
    TT_EQ(r.status, 503);
    free(r.body);
    /* Not windowed: answered at once. */
    char *body = get_body(f.port, "/actors?top=1");
    CU_ASSERT(body != NULL && json_valid(body));
    free(body);
    fixture_stop(&f);
    for (unsigned i = 0; i < TR__METRICS_WINDOWS_MAX; i++)
        close(c[i].fd);
    free(c);
    TT_EQ(tr__metrics_windows_open(), 0);
}

/* A client that asks for a page and does not read it held the page (up
 * to 32 MiB) as long as it stayed connected: its connection is reset
 * once its output has stayed above high water for tr__metrics_drain_ns
 * (shortened here to 200 ms; a client with a 4 KiB receive buffer, 40,000
 * named actors making a page of 7 MiB, past what the kernel's buffers
 * take). */
static void a_page_not_read_is_dropped(void)
{
    uint64_t drain = tr__metrics_drain_ns;
    tr__metrics_drain_ns = 200 * TR_MSEC;
    fixture f;
    fixture_start(&f);
    tr_ctx *cx = tr_runtime_ctx(f.rt);
    for (int i = 0; i < 40000; i++) {
        char name[32];
        snprintf(name, sizeof name, "page_filler_%d", i);
        tr_actor_spec s = {.behaviour = quiet, .name = name};
        TT_EQ(tr_spawn_spec(cx, &s, NULL), 0);
    }
    tr_stats st;
    tr_runtime_stats(f.rt, &st);
    uint64_t before = st.actors_alive;
    int fd = cli_connect_raw(f.port, 4096);
    CU_ASSERT_FATAL(fd >= 0);
    static const char req[] = "GET /metrics HTTP/1.1\r\nHost: t\r\n\r\n";
    CU_ASSERT(cli_write(fd, req, strlen(req)));
    /* The connection's actor comes, and goes once its page is dropped. */
    bool came = false, went = false;
    for (double until = tt_now() + 30; !went && tt_now() < until; tt_sleep_ms(5)) {
        tr_runtime_stats(f.rt, &st);
        came |= st.actors_alive > before;
        went = came && st.actors_alive == before;
    }
    CU_ASSERT(came && went);
    close(fd);
    TT_NO_ERRORS();
    fixture_stop(&f);
    tr__metrics_drain_ns = drain;
}

void register_metrics_serve_tests(void)
{
    CU_pSuite s = tt_suite("metrics_serve");
    tt_test(s, "strict_reader_rejects_malformed_text", strict_reader_rejects_malformed_text);
    tt_test(s, "metrics_parse_strictly_with_exact_figures",
            metrics_parse_strictly_with_exact_figures);
    tt_test(s, "actors_json_lists_the_hot_actor_first", actors_json_lists_the_hot_actor_first);
    tt_test(s, "actors_window_counts_only_the_window", actors_window_counts_only_the_window);
    tt_test(s, "wrong_paths_methods_and_queries_refused", wrong_paths_methods_and_queries_refused);
    tt_test(s, "actors_show_every_state_and_rank_a_window",
            actors_show_every_state_and_rank_a_window);
    tt_test(s, "figures_of_64_bits_written_whole", figures_of_64_bits_written_whole);
    tt_test(s, "odd_names_stay_valid_json_and_prometheus_text",
            odd_names_stay_valid_json_and_prometheus_text);
    tt_test(s, "page_buffer_grows_escapes_and_fails_whole",
            page_buffer_grows_escapes_and_fails_whole);
    tt_test(s, "a_name_moving_during_scrapes_is_one_series",
            a_name_moving_during_scrapes_is_one_series);
    tt_test(s, "windowed_queries_are_capped", windowed_queries_are_capped);
    tt_test(s, "a_page_not_read_is_dropped", a_page_not_read_is_dropped);
}
