/* test_trace.c — TROUPE_TRACE / tr_config.trace_path: the file written at
 * the end of a run is valid JSON (a strict checker, json_check.c) in the
 * Chrome trace-event form, with exactly one turn event per turn — counted
 * another way: with batch 1 every turn hands its behaviour one message,
 * and the behaviours count their calls — and a spawn and a stop event for
 * every actor, and one event per timer firing; a full ring keeps the
 * newest events and says how many it dropped.
 *
 * The ring run passes one token at a time, so no two sends race for one
 * mailbox and no turn finds its message still being linked (a turn of no
 * message, which the trace would rightly show). */
#include "tests.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum { START = 0x7401, TOKEN, HALT };

#define RING 3
#define HOPS 100

/* What the test's sink gathers from the file. */
typedef struct summary {
    /* the event being read */
    char ph[4], name[64], actor[32], target[32];
    long handled, tid;
    /* totals */
    unsigned turns, spawns, stops, timers, bad_turns;
    unsigned turns_of[RING], spawns_of[RING], stops_of[RING];
    long max_tid;
    long dropped, ring_events;
    char pids[RING][32]; /* the actors' pids as the file writes them */
    char timer_target[32];
} summary;

static void copy_span(char *dst, size_t size, const char *s, size_t n)
{
    n = n < size - 1 ? n : size - 1;
    memcpy(dst, s, n);
    dst[n] = '\0';
}

static bool key_is(const char *k, size_t n, const char *want)
{
    return strlen(want) == n && memcmp(k, want, n) == 0;
}

static void on_member(void *arg, unsigned depth, const char *k, size_t kn, const char *v,
                      size_t vn)
{
    summary *s = arg;
    if (depth == 2 && key_is(k, kn, "ph"))
        copy_span(s->ph, sizeof s->ph, v, vn);
    else if (depth == 2 && key_is(k, kn, "name"))
        copy_span(s->name, sizeof s->name, v, vn);
    else if (depth == 2 && key_is(k, kn, "tid"))
        s->tid = strtol(v, NULL, 10);
    else if (depth == 2 && key_is(k, kn, "dropped_events"))
        s->dropped = strtol(v, NULL, 10);
    else if (depth == 2 && key_is(k, kn, "ring_events_per_worker"))
        s->ring_events = strtol(v, NULL, 10);
    else if (depth == 3 && key_is(k, kn, "actor"))
        copy_span(s->actor, sizeof s->actor, v, vn);
    else if (depth == 3 && key_is(k, kn, "target"))
        copy_span(s->target, sizeof s->target, v, vn);
    else if (depth == 3 && key_is(k, kn, "handled"))
        s->handled = strtol(v, NULL, 10);
}

static int which(const summary *s)
{
    for (int i = 0; i < RING; i++)
        if (strcmp(s->actor, s->pids[i]) == 0)
            return i;
    return -1;
}

static void on_end(void *arg, unsigned depth)
{
    summary *s = arg;
    if (depth != 2)
        return;
    int i = which(s);
    if (strcmp(s->ph, "X") == 0) {
        s->turns++;
        s->bad_turns += s->handled != 1;
        if (i >= 0)
            s->turns_of[i]++;
    } else if (strcmp(s->ph, "i") == 0 && strcmp(s->name, "spawn") == 0) {
        s->spawns++;
        if (i >= 0)
            s->spawns_of[i]++;
    } else if (strcmp(s->ph, "i") == 0 && strcmp(s->name, "stop") == 0) {
        s->stops++;
        if (i >= 0)
            s->stops_of[i]++;
    } else if (strcmp(s->ph, "i") == 0 && strcmp(s->name, "timer") == 0) {
        s->timers++;
        copy_span(s->timer_target, sizeof s->timer_target, s->target, strlen(s->target));
    }
    if (s->ph[0] != '\0' && s->tid > s->max_tid)
        s->max_tid = s->tid;
    s->ph[0] = s->name[0] = s->actor[0] = s->target[0] = '\0';
    s->handled = -1;
    s->tid = -1;
}

/* Reads and checks the file; false (with a failed assertion) if it is
 * not valid JSON. */
static bool read_trace(const char *path, summary *s)
{
    FILE *f = fopen(path, "r");
    CU_ASSERT_FATAL(f != NULL);
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    rewind(f);
    char *text = malloc((size_t)size + 1);
    CU_ASSERT_FATAL(text != NULL);
    size_t got = fread(text, 1, (size_t)size, f);
    fclose(f);
    TT_EQ(got, size);
    tt_json_sink sink = {.member = on_member, .end_object = on_end, .arg = s};
    size_t at = 0;
    s->handled = s->tid = s->max_tid = s->dropped = s->ring_events = -1;
    bool ok = tt_json_check(text, got, &sink, &at);
    if (!ok)
        printf("\n    %s: not valid JSON at byte %zu: \"%.40s\"\n", path, at, text + at);
    CU_ASSERT(ok);
    CU_ASSERT(strncmp(text, "{\"traceEvents\":[", 16) == 0);
    free(text);
    return ok;
}

static tr_runtime *traced_runtime(const char *path, unsigned threads)
{
    tr_config cfg;
    tr_config_init(&cfg);
    cfg.threads = threads;
    cfg.batch = 1;
    cfg.trace_path = path;
    tr_runtime *rt = NULL;
    TT_EQ(tr_runtime_create(&cfg, &rt), 0);
    CU_ASSERT_FATAL(rt != NULL);
    return rt;
}

/* ---- a token ring -------------------------------------------------------- */

static tr_pid ring_pid[RING];
static atomic_uint calls[RING];

/* state: its place in the ring. START (from a timer) sends the token;
 * the last hop halts everyone. */
void tt_trace_ring_actor(tr_ctx *cx, void *state, const tr_msg *m)
{
    unsigned me = *(const unsigned *)state;
    atomic_fetch_add(&calls[me], 1);
    if (m->type == HALT) {
        tr_stop(cx);
        return;
    }
    uint64_t hops = m->type == START ? HOPS : tt_u64(m);
    if (hops == 0) {
        for (int i = 0; i < RING; i++)
            TT_CHECK(tr_send(cx, ring_pid[i], HALT, NULL, 0) == 0);
        return;
    }
    hops--;
    TT_CHECK(tr_send(cx, ring_pid[(me + 1) % RING], TOKEN, &hops, sizeof hops) == 0);
}

static void a_token_ring_traces_every_turn_spawn_stop_and_timer(void)
{
    char path[] = "/tmp/troupe-trace-XXXXXX.json";
    int fd = mkstemps(path, 5);
    CU_ASSERT_FATAL(fd >= 0);
    close(fd);
    tr_runtime *rt = traced_runtime(path, 2);
    summary s = {0};
    for (unsigned i = 0; i < RING; i++) {
        atomic_store(&calls[i], 0);
        TT_EQ(tr_spawn(tr_runtime_ctx(rt), tt_trace_ring_actor, &i, sizeof i, &ring_pid[i]), 0);
        snprintf(s.pids[i], sizeof s.pids[i], "%" PRIx64, ring_pid[i]);
    }
    TT_EQ(tr_send_after(tr_runtime_ctx(rt), 1000000, ring_pid[0], START, NULL, 0), 0);
    TT_EQ(tr_runtime_run(rt), 0);

    unsigned total = 0;
    for (int i = 0; i < RING; i++)
        total += atomic_load(&calls[i]);
    TT_EQ(total, 1 + HOPS + RING); /* START, the hops, the halts */
    if (read_trace(path, &s)) {
        TT_EQ(s.turns, total);
        TT_EQ(s.bad_turns, 0);
        for (int i = 0; i < RING; i++) {
            TT_EQ(s.turns_of[i], atomic_load(&calls[i]));
            TT_EQ(s.spawns_of[i], 1);
            TT_EQ(s.stops_of[i], 1);
        }
        TT_EQ(s.spawns, RING);
        TT_EQ(s.stops, RING);
        TT_EQ(s.timers, 1);
        CU_ASSERT_STRING_EQUAL(s.timer_target, s.pids[0]);
        TT_EQ(s.dropped, 0);
        CU_ASSERT(s.max_tid >= 0 && s.max_tid <= 2); /* 2 workers and the outside */
    }
    tr_runtime_destroy(rt);
    unlink(path);
    TT_NO_ERRORS();
}

/* ---- a full ring ------------------------------------------------------- */

static atomic_uint sink_calls;

void tt_trace_sink_actor(tr_ctx *cx, void *state, const tr_msg *m)
{
    (void)state;
    atomic_fetch_add(&sink_calls, 1);
    if (m->type == HALT)
        tr_stop(cx);
}

#define FLOOD 40000 /* more than a ring holds (the file says how many) */

static void a_full_ring_keeps_the_newest_and_counts_the_dropped(void)
{
    char path[] = "/tmp/troupe-trace-XXXXXX.json";
    int fd = mkstemps(path, 5);
    CU_ASSERT_FATAL(fd >= 0);
    close(fd);
    tr_runtime *rt = traced_runtime(path, 1);
    tr_pid p;
    atomic_store(&sink_calls, 0);
    TT_EQ(tr_spawn(tr_runtime_ctx(rt), tt_trace_sink_actor, NULL, 0, &p), 0);
    for (unsigned i = 0; i < FLOOD; i++)
        TT_EQ(tr_send(tr_runtime_ctx(rt), p, TOKEN, NULL, 0), 0);
    TT_EQ(tr_send(tr_runtime_ctx(rt), p, HALT, NULL, 0), 0);
    TT_EQ(tr_runtime_run(rt), 0);
    TT_EQ(atomic_load(&sink_calls), FLOOD + 1);

    summary s = {0};
    snprintf(s.pids[0], sizeof s.pids[0], "%" PRIx64, p);
    if (read_trace(path, &s)) {
        /* The worker recorded FLOOD + 1 turns and a stop; it kept the
         * last ring_events of them, the stop among them. The spawn, from
         * outside, is in a ring of its own. */
        CU_ASSERT_FATAL(s.ring_events > 0 && s.ring_events < FLOOD);
        TT_EQ(s.dropped, FLOOD + 2 - s.ring_events);
        TT_EQ(s.turns, s.ring_events - 1);
        TT_EQ(s.stops, 1);
        TT_EQ(s.spawns, 1);
        TT_EQ(s.bad_turns, 0);
    }
    tr_runtime_destroy(rt);
    unlink(path);
}

/* ---- configuration -------------------------------------------------------- */

static void a_path_that_cannot_be_written_fails_create(void)
{
    tr_config cfg;
    tr_config_init(&cfg);
    cfg.threads = 1;
    cfg.trace_path = "/nonexistent-troupe-dir/trace.json";
    tr_runtime *rt = NULL;
    int rc = tr_runtime_create(&cfg, &rt);
    CU_ASSERT(rc < 0);
    CU_ASSERT(rt == NULL);
}

static void the_path_comes_from_TROUPE_TRACE(void)
{
    const char *saved = getenv("TROUPE_TRACE");
    char *copy = saved != NULL ? strdup(saved) : NULL;
    tr_config cfg;
    unsetenv("TROUPE_TRACE");
    tr_config_init(&cfg);
    CU_ASSERT(cfg.trace_path == NULL);
    setenv("TROUPE_TRACE", "", 1);
    tr_config_init(&cfg);
    CU_ASSERT(cfg.trace_path == NULL);
    setenv("TROUPE_TRACE", "/tmp/t.json", 1);
    tr_config_init(&cfg);
    CU_ASSERT(cfg.trace_path != NULL && strcmp(cfg.trace_path, "/tmp/t.json") == 0);
    if (copy != NULL)
        setenv("TROUPE_TRACE", copy, 1);
    else
        unsetenv("TROUPE_TRACE");
    free(copy);
}

/* The checker itself must refuse what is not JSON, or the test above
 * proves nothing. */
static void the_checker_is_strict(void)
{
    const char *good[] = {"{}", "[]", "0", "-1.5e+3", "\"a\\u00e9\\n\"", " {\"a\":[1,true,null]} ",
                          "{\"a\":{\"b\":[]},\"c\":\"\"}"};
    const char *bad[] = {"", "{", "{,}", "[1,]", "{\"a\":1,}", "01", "1.", ".5", "+1",
                         "\"\\x\"", "\"a", "{\"a\" 1}", "tru", "[1] [2]", "{\"a\":1}}",
                         "\"\\u12g4\"", "\"tab\there\"", "{'a':1}", "[-]"};
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++)
        CU_ASSERT(tt_json_check(good[i], strlen(good[i]), NULL, NULL));
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        bool ok = tt_json_check(bad[i], strlen(bad[i]), NULL, NULL);
        if (ok)
            printf("\n    accepted: %s\n", bad[i]);
        CU_ASSERT(!ok);
    }
    char deep[200];
    memset(deep, '[', sizeof deep);
    CU_ASSERT(!tt_json_check(deep, sizeof deep, NULL, NULL));
}

void register_trace_tests(void)
{
    CU_pSuite s = tt_suite("trace");
    tt_test(s, "the_checker_is_strict", the_checker_is_strict);
    tt_test(s, "a_token_ring_traces_every_turn_spawn_stop_and_timer",
            a_token_ring_traces_every_turn_spawn_stop_and_timer);
    tt_test(s, "a_full_ring_keeps_the_newest_and_counts_the_dropped",
            a_full_ring_keeps_the_newest_and_counts_the_dropped);
    tt_test(s, "a_path_that_cannot_be_written_fails_create",
            a_path_that_cannot_be_written_fails_create);
    tt_test(s, "the_path_comes_from_TROUPE_TRACE", the_path_comes_from_TROUPE_TRACE);
}
