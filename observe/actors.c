/* observe/actors.c — GET /actors?top=N&by=handled|busy|mailbox&window=MS:
 * the top actors as JSON, for tools (troupe-top).
 *
 * A window is two samples with a timer between them (serve.c) rather than
 * tr_runtime_top's own window, which sleeps and so may not run on a
 * worker: the first sample keeps only the counters it will subtract (32
 * bytes an actor), and ranking the differences is done here.
 *
 * The answer:
 *   {"by":"handled","window_ms":1000,"actors":[{"pid":"1c00002a",
 *    "name":"room:#a","behaviour":"room_actor","state":"idle",
 *    "handled":12,"busy_ns":3400,"turns":5,"mailbox":0,
 *    "longest_turn_ns":900,"oldest_wait_ns":100,"last_run_ns":123,
 *    "links":0,"monitors":2}, ...]}
 * With a window, handled, busy_ns and turns count the window only.
 */
#include <stdlib.h>
#include <string.h>

#include "observe.h"

/* Each sample looks at this many actors at most (the top ones by key). */
#define SAMPLE_CAP 65536
#define TOP_MAX 1000
#define WINDOW_MAX_MS 60000

/* The decimal v[0 .. len-1] as an unsigned within [lo, hi], or false. */
static bool number(const char *v, size_t len, unsigned lo, unsigned hi, unsigned *out)
{
    unsigned long x = 0;
    if (len == 0 || len > 9)
        return false;
    for (size_t i = 0; i < len; i++) {
        if (v[i] < '0' || v[i] > '9')
            return false;
        x = x * 10 + (unsigned long)(v[i] - '0');
    }
    if (x < lo || x > hi)
        return false;
    *out = (unsigned)x;
    return true;
}

static bool is(const char *s, size_t len, const char *word)
{
    return len == strlen(word) && memcmp(s, word, len) == 0;
}

int tr__actors_parse(const char *query, tr__actors_query *q, const char **why)
{
    *q = (tr__actors_query){.top = 10, .by = TR_TOP_HANDLED, .window_ms = 0};
    *why = NULL;
    for (const char *p = query; p != NULL && *p != '\0';) {
        const char *end = strchr(p, '&');
        size_t len = end != NULL ? (size_t)(end - p) : strlen(p);
        const char *eq = memchr(p, '=', len);
        size_t klen = eq != NULL ? (size_t)(eq - p) : len;
        const char *v = eq != NULL ? eq + 1 : p + len;
        size_t vlen = (size_t)(p + len - v);
        if (is(p, klen, "top")) {
            if (!number(v, vlen, 1, TOP_MAX, &q->top))
                *why = "top must be a number from 1 to 1000";
        } else if (is(p, klen, "window")) {
            if (!number(v, vlen, 0, WINDOW_MAX_MS, &q->window_ms))
                *why = "window must be milliseconds from 0 to 60000";
        } else if (is(p, klen, "by")) {
            if (is(v, vlen, "handled"))
                q->by = TR_TOP_HANDLED;
            else if (is(v, vlen, "busy"))
                q->by = TR_TOP_BUSY;
            else if (is(v, vlen, "mailbox"))
                q->by = TR_TOP_MAILBOX;
            else
                *why = "by must be handled, busy or mailbox";
        } else if (len != 0) {
            *why = "unknown parameter (top, by and window are known)";
        }
        if (*why != NULL)
            return TR_EINVAL;
        p = end != NULL ? end + 1 : NULL;
    }
    return 0;
}

static int by_pid(const void *a, const void *b)
{
    tr_pid x = ((const tr__sample *)a)->pid, y = ((const tr__sample *)b)->pid;
    return (x > y) - (x < y);
}

int tr__actors_sample(tr_runtime *rt, tr__sample **out)
{
    tr_actor_figures *a;
    int n = tr__observe_all(rt, TR_TOP_HANDLED, SAMPLE_CAP, &a);
    if (n < 0)
        return n;
    tr__sample *s = malloc(((size_t)n + 1) * sizeof *s);
    if (s == NULL) {
        free(a);
        return TR_ENOMEM;
    }
    for (int i = 0; i < n; i++)
        s[i] = (tr__sample){a[i].pid, a[i].handled, a[i].busy_ns, a[i].turns};
    free(a);
    qsort(s, (size_t)n, sizeof *s, by_pid);
    *out = s;
    return n;
}

/* Turns the counters of a[] into their differences from the first sample
 * (actors gone since are not in a[]; those spawned since count from 0). */
static void subtract(tr_actor_figures *a, size_t n, const tr__sample *before, size_t n_before)
{
    for (size_t i = 0; i < n; i++) {
        tr__sample key = {.pid = a[i].pid};
        const tr__sample *s = bsearch(&key, before, n_before, sizeof *before, by_pid);
        if (s != NULL) {
            a[i].handled -= s->handled <= a[i].handled ? s->handled : a[i].handled;
            a[i].busy_ns -= s->busy_ns <= a[i].busy_ns ? s->busy_ns : a[i].busy_ns;
            a[i].turns -= s->turns <= a[i].turns ? s->turns : a[i].turns;
        }
    }
}

static int cmp_handled(const void *a, const void *b)
{
    const tr_actor_figures *x = a, *y = b;
    if (x->handled != y->handled)
        return x->handled < y->handled ? 1 : -1;
    return (x->pid > y->pid) - (x->pid < y->pid);
}

static int cmp_busy(const void *a, const void *b)
{
    const tr_actor_figures *x = a, *y = b;
    if (x->busy_ns != y->busy_ns)
        return x->busy_ns < y->busy_ns ? 1 : -1;
    return (x->pid > y->pid) - (x->pid < y->pid);
}

static int cmp_mailbox(const void *a, const void *b)
{
    const tr_actor_figures *x = a, *y = b;
    if (x->mailbox != y->mailbox)
        return x->mailbox < y->mailbox ? 1 : -1;
    return (x->pid > y->pid) - (x->pid < y->pid);
}

static const char *state_name(tr_actor_state s)
{
    switch (s) {
    case TR_ACTOR_IDLE: return "idle";
    case TR_ACTOR_RUNNABLE: return "runnable";
    case TR_ACTOR_RUNNING: return "running";
    case TR_ACTOR_MUTED: return "muted";
    }
    return "unknown";
}

static const char *key_name(tr_top_key k)
{
    return k == TR_TOP_HANDLED ? "handled" : k == TR_TOP_BUSY ? "busy" : "mailbox";
}

static void actor_json(tr__obuf *b, const tr_actor_figures *f)
{
    tr__obuf_printf(b, "{\"pid\":\"%llx\",\"name\":\"", (unsigned long long)f->pid);
    tr__obuf_escaped(b, f->name, TR__ESC_JSON);
    tr__obuf_put(b, "\",\"behaviour\":\"", 15);
    tr__obuf_escaped(b, f->behaviour, TR__ESC_JSON);
    tr__obuf_printf(b,
                    "\",\"state\":\"%s\",\"handled\":%llu,\"busy_ns\":%llu,\"turns\":%llu,"
                    "\"mailbox\":%llu,\"longest_turn_ns\":%llu,\"oldest_wait_ns\":%llu,"
                    "\"last_run_ns\":%llu,\"links\":%u,\"monitors\":%u}",
                    state_name(f->state), (unsigned long long)f->handled,
                    (unsigned long long)f->busy_ns, (unsigned long long)f->turns,
                    (unsigned long long)f->mailbox, (unsigned long long)f->longest_turn_ns,
                    (unsigned long long)f->oldest_wait_ns, (unsigned long long)f->last_run_ns,
                    (unsigned)f->links, (unsigned)f->monitors);
}

int tr__actors_write(tr_runtime *rt, const tr__actors_query *q, const tr__sample *before,
                     size_t n_before, tr__obuf *b)
{
    tr_actor_figures *a = NULL;
    int n;
    if (before == NULL) {
        a = malloc(q->top * sizeof *a);
        if (a == NULL)
            return TR_ENOMEM;
        n = tr_runtime_top(rt, q->by, q->top, 0, a);
    } else {
        n = tr__observe_all(rt, q->by, SAMPLE_CAP, &a);
        if (n > 0) {
            subtract(a, (size_t)n, before, n_before);
            qsort(a, (size_t)n, sizeof *a,
                  q->by == TR_TOP_HANDLED ? cmp_handled : q->by == TR_TOP_BUSY ? cmp_busy
                                                                               : cmp_mailbox);
        }
    }
    if (n < 0) {
        free(a);
        return n;
    }
    tr__obuf_printf(b, "{\"by\":\"%s\",\"window_ms\":%u,\"actors\":[", key_name(q->by),
                    q->window_ms);
    for (int i = 0; i < n && (unsigned)i < q->top; i++) {
        if (i > 0)
            tr__obuf_put(b, ",", 1);
        actor_json(b, &a[i]);
    }
    tr__obuf_put(b, "]}\n", 3);
    free(a);
    return b->oom ? TR_ENOMEM : 0;
}
