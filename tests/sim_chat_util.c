/* sim_chat_util.c — scripts, the scripted client actors and the director
 * of sim_chat_util.h. Running them (seeds, forks, the real network) is in
 * sim_chat_run.c. */
#include "sim_chat_util.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

enum sc_op { SC_SEND, SC_EXPECT, SC_CLOSED, SC_MARK, SC_WAIT, SC_CLOSE, SC_PARTITION };

struct sc_step {
    enum sc_op op;
    int lane;        /* SC_EXPECT: 0 alone, else its lane in a group */
    int who;         /* SC_WAIT: the client waited for */
    size_t idx;      /* SC_WAIT: the index of its mark step */
    uint64_t ns;     /* SC_PARTITION: heal after */
    char *text;      /* SC_SEND: bytes; SC_EXPECT: the line; SC_MARK: its name */
    size_t len;
};

/* ---- building scripts -------------------------------------------------- */

sc_client *sc_client_add(sc_scenario *s, const char *name)
{
    if (s->n >= SC_MAX_CLIENTS) {
        s->oom = true;
        return &s->c[SC_MAX_CLIENTS - 1];
    }
    sc_client *c = &s->c[s->n];
    *c = (sc_client){.index = s->n++};
    snprintf(c->name, sizeof c->name, "%s", name);
    sc_expect(c, "HELLO troupe-chat");
    return c;
}

/* Appends a step; text (len bytes, NUL added) is copied. A step that
 * cannot be recorded marks the script broken, which fails the run. */
static void add(sc_client *c, sc_step st, const char *text, size_t len)
{
    if (c->n == c->cap) {
        size_t cap = c->cap ? c->cap * 2 : 16;
        sc_step *more = realloc(c->steps, cap * sizeof *more);
        if (more == NULL) {
            c->broken = true;
            return;
        }
        c->steps = more;
        c->cap = cap;
    }
    st.text = NULL;
    if (text != NULL && (st.text = malloc(len + 1)) != NULL) {
        memcpy(st.text, text, len);
        st.text[len] = '\0';
    }
    st.len = len;
    if (text == NULL || st.text != NULL)
        c->steps[c->n++] = st;
    else
        c->broken = true;
}

static void add_fmt(sc_client *c, sc_step st, bool newline, const char *fmt, va_list ap)
{
    char line[8192];
    int n = vsnprintf(line, sizeof line - 1, fmt, ap);
    if (n < 0 || (size_t)n >= sizeof line - 1)
        n = (int)sizeof line - 2;
    if (newline)
        line[n++] = '\n';
    add(c, st, line, (size_t)n);
}

void sc_send(sc_client *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    add_fmt(c, (sc_step){.op = SC_SEND}, true, fmt, ap);
    va_end(ap);
}

void sc_raw(sc_client *c, const void *data, size_t len)
{
    add(c, (sc_step){.op = SC_SEND}, data, len);
}

void sc_expect(sc_client *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    add_fmt(c, (sc_step){.op = SC_EXPECT}, false, fmt, ap);
    va_end(ap);
}

void sc_expect_in(sc_client *c, int lane, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    add_fmt(c, (sc_step){.op = SC_EXPECT, .lane = lane > 0 ? lane : 1}, false, fmt, ap);
    va_end(ap);
}

void sc_closed(sc_client *c)
{
    add(c, (sc_step){.op = SC_CLOSED}, NULL, 0);
}

void sc_mark(sc_client *c, const char *mark)
{
    add(c, (sc_step){.op = SC_MARK}, mark, strlen(mark));
}

void sc_wait(sc_client *c, const sc_client *other, const char *mark)
{
    size_t idx = SIZE_MAX;
    for (size_t i = 0; i < other->n; i++)
        if (other->steps[i].op == SC_MARK && strcmp(other->steps[i].text, mark) == 0)
            idx = i;
    /* An unknown mark waits forever: the run stalls and says so. */
    add(c, (sc_step){.op = SC_WAIT, .who = other->index, .idx = idx}, mark, strlen(mark));
}

void sc_close(sc_client *c)
{
    add(c, (sc_step){.op = SC_CLOSE}, NULL, 0);
}

void sc_partition(sc_client *c, uint64_t heal_after_ns)
{
    add(c, (sc_step){.op = SC_PARTITION, .ns = heal_after_ns}, NULL, 0);
}

void sc_nick(sc_client *c, const char *nick)
{
    sc_send(c, "NICK %s", nick);
    sc_expect(c, "OK NICK %s", nick);
}

void sc_join(sc_client *c, const char *room)
{
    sc_send(c, "JOIN %s", room);
    sc_expect(c, "OK JOIN %s", room);
}

void sc_scenario_free(sc_scenario *s)
{
    for (int i = 0; i < s->n; i++) {
        for (size_t k = 0; k < s->c[i].n; k++)
            free(s->c[i].steps[k].text);
        free(s->c[i].steps);
    }
    free(s);
}

/* A step, in words, for failures. */
static void describe(const sc_scenario *s, const sc_step *st, char *out, size_t cap)
{
    switch (st->op) {
    case SC_SEND:
        snprintf(out, cap, "send \"%.*s\"", (int)(st->len > 60 ? 60 : st->len), st->text);
        break;
    case SC_EXPECT: snprintf(out, cap, "expect \"%.100s\"", st->text); break;
    case SC_CLOSED: snprintf(out, cap, "expect the connection closed"); break;
    case SC_MARK: snprintf(out, cap, "mark %s", st->text); break;
    case SC_WAIT:
        snprintf(out, cap, "wait for %s's mark %s", s->c[st->who].name, st->text);
        break;
    case SC_CLOSE: snprintf(out, cap, "close"); break;
    case SC_PARTITION: snprintf(out, cap, "partition from the server"); break;
    }
}

/* ---- the client actor ---------------------------------------------------- */

enum { SC_PASSED = 0x5c01, SC_PROGRESS, SC_DONE, SC_PROBE, SC_PROBED, SC_DEADLINE };

typedef struct sc_note {
    int who;
    size_t reached;   /* SC_PASSED, SC_PROGRESS: steps passed; SC_DONE: failed */
    bool open;        /* SC_DONE: the connection is still up (it gets SC_PROBE) */
} sc_note;

/* Once every script has ended, each client still connected sends this and
 * must get its answer as the very next line: whatever the server sent it
 * before (answers in order, deliveries caused before every script ended)
 * has arrived by then and been checked. Unknown in every state. */
#define PROBE "SC-END-OF-SCRIPT"
#define PROBE_ANSWER "ERR unknown-command"

typedef struct sc_conn {
    sc_scenario *s;
    int i;
    tr_pid director;
    bool connected, closed, closing, done, failed;
    bool probing;                   /* PROBE sent, its answer not yet come */
    size_t at;
    size_t reached[SC_MAX_CLIENTS]; /* each client's steps passed, as relayed */
    char **q;                       /* lines received, not yet matched */
    size_t qhead, qn, qcap;
    bool *used;                     /* steps of an expect group already matched */
    char local[64];                 /* "127.0.0.1:PORT" of this end */
} sc_conn;

static const sc_client *script(const sc_conn *k)
{
    return &k->s->c[k->i];
}

static void report_done(tr_ctx *cx, sc_conn *k)
{
    sc_note n = {.who = k->i, .reached = k->failed, .open = !k->closed && !k->closing};
    tr_send(cx, k->director, SC_DONE, &n, sizeof n);
}

/* Records the client's first failure (at its current step) and ends its
 * script. */
__attribute__((format(printf, 3, 4))) static void fail(tr_ctx *cx, sc_conn *k, const char *fmt,
                                                       ...)
{
    if (k->failed)
        return;
    char what[sizeof k->s->failure[0]];
    int n = snprintf(what, sizeof what, "client %s, step %zu: ", script(k)->name, k->at);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what + n, sizeof what - (size_t)n, fmt, ap);
    va_end(ap);
    memcpy(k->s->failure[k->i], what, sizeof what);
    k->failed = k->done = true;
    report_done(cx, k);
}

static void push_line(tr_ctx *cx, sc_conn *k, const char *data, size_t len)
{
    if (k->qhead + k->qn == k->qcap) {
        if (k->qhead > 0) {
            memmove(k->q, k->q + k->qhead, k->qn * sizeof *k->q);
            k->qhead = 0;
        } else {
            size_t cap = k->qcap ? k->qcap * 2 : 16;
            char **more = realloc(k->q, cap * sizeof *more);
            if (more == NULL) {
                fail(cx, k, "out of memory");
                return;
            }
            k->q = more;
            k->qcap = cap;
        }
    }
    char *line = malloc(len + 1);
    if (line == NULL) {
        fail(cx, k, "out of memory");
        return;
    }
    memcpy(line, data, len);
    line[len] = '\0';
    k->q[k->qhead + k->qn++] = line;
}

static char *pop_line(sc_conn *k)
{
    char *line = k->q[k->qhead++];
    if (--k->qn == 0)
        k->qhead = 0;
    return line;
}

/* Matches one received line against the expect step at k->at (or its
 * group: the first unmatched step of each lane). */
static void match_line(tr_ctx *cx, sc_conn *k)
{
    const sc_client *c = script(k);
    char *line = pop_line(k);
    const sc_step *st = &c->steps[k->at];
    if (st->lane == 0) {
        if (strcmp(line, st->text) != 0)
            fail(cx, k, "expected \"%.100s\", got \"%.100s\"", st->text, line);
        else
            k->at++;
        free(line);
        return;
    }
    if (k->used == NULL && (k->used = calloc(c->n, sizeof *k->used)) == NULL) {
        fail(cx, k, "out of memory");
        free(line);
        return;
    }
    unsigned seen = 0; /* lanes looked at, as a bit set (lanes 1..31) */
    size_t hit = SIZE_MAX;
    for (size_t j = k->at; j < c->n && c->steps[j].op == SC_EXPECT && c->steps[j].lane > 0; j++) {
        unsigned bit = 1u << (c->steps[j].lane & 31);
        if (k->used[j] || (seen & bit))
            continue;
        seen |= bit;
        if (strcmp(line, c->steps[j].text) == 0) {
            hit = j;
            break;
        }
    }
    if (hit == SIZE_MAX)
        fail(cx, k, "got \"%.100s\", the next of no lane (first: \"%.100s\")", line, st->text);
    else
        k->used[hit] = true;
    while (k->at < c->n && k->used[k->at])
        k->at++;
    free(line);
}

/* This end's address, for a partition: "HOST:PORT" as the sockets see it. */
static void local_address(sc_conn *k, const tr_tcp_info *info)
{
    const struct sockaddr_in *a = (const struct sockaddr_in *)&info->local;
    char host[INET_ADDRSTRLEN];
    if (info->local_len >= sizeof *a && a->sin_family == AF_INET &&
        inet_ntop(AF_INET, &a->sin_addr, host, sizeof host) != NULL)
        snprintf(k->local, sizeof k->local, "%s:%u", host, ntohs(a->sin_port));
}

static void partition(tr_ctx *cx, sc_conn *k, const sc_step *st)
{
    char server[32];
    snprintf(server, sizeof server, "127.0.0.1:%u", k->s->port);
    int err = k->local[0] != '\0' ? tr_sim_partition(k->local, server, 0, st->ns) : TR_EINVAL;
    if (err != 0)
        fail(cx, k, "tr_sim_partition(\"%s\", \"%s\"): %s", k->local, server, tr_strerror(err));
    else
        k->at++;
}

/* Runs the script as far as it can go now. */
static void advance(tr_ctx *cx, sc_conn *k)
{
    const sc_client *c = script(k);
    while (!k->done && k->connected) {
        if (k->at == c->n) {
            k->done = true;
            report_done(cx, k);
            break;
        }
        const sc_step *st = &c->steps[k->at];
        int err;
        switch (st->op) {
        case SC_SEND:
            if ((err = tr_tcp_send(cx, st->text, st->len)) != 0)
                fail(cx, k, "send: %s", tr_strerror(err));
            else
                k->at++;
            break;
        case SC_EXPECT:
            if (k->qn > 0)
                match_line(cx, k);
            else if (k->closed)
                fail(cx, k, "connection closed, expected \"%.100s\"", st->text);
            else
                return;
            break;
        case SC_CLOSED:
            if (k->qn > 0)
                fail(cx, k, "expected the connection closed, got \"%.100s\"", k->q[k->qhead]);
            else if (!k->closed)
                return;
            else
                k->at++;
            break;
        case SC_MARK: {
            sc_note n = {.who = k->i, .reached = ++k->at};
            k->reached[k->i] = k->at; /* a script may wait for its own mark */
            tr_send(cx, k->director, SC_PASSED, &n, sizeof n);
            break;
        }
        case SC_WAIT:
            if (st->idx == SIZE_MAX || k->reached[st->who] <= st->idx)
                return;
            k->at++;
            break;
        case SC_CLOSE:
            k->closing = true;
            if ((err = tr_tcp_close(cx)) != 0)
                fail(cx, k, "close: %s", tr_strerror(err));
            else
                k->at++;
            break;
        case SC_PARTITION:
            partition(cx, k, st);
            break;
        }
        atomic_store(&k->s->at[k->i], k->at);
    }
    while (k->done && !k->failed && k->qn > 0) {
        char *line = pop_line(k);
        if (k->probing && strcmp(line, PROBE_ANSWER) == 0) {
            k->probing = false;
            sc_note n = {.who = k->i};
            tr_send(cx, k->director, SC_PROBED, &n, sizeof n);
        } else {
            fail(cx, k, "a line no step expects: \"%.100s\"", line);
        }
        free(line);
    }
}

static void client_actor(tr_ctx *cx, void *state, const tr_msg *m)
{
    sc_conn *k = state;
    switch (m->type) {
    case TR_TCP_CONNECTED:
        k->connected = true;
        local_address(k, (const tr_tcp_info *)m->data);
        break;
    case TR_TCP_LINE:
        if (!k->failed)
            push_line(cx, k, (const char *)m->data, m->len);
        break;
    case TR_TCP_CLOSED: {
        int why = ((const tr_tcp_error *)m->data)->reason;
        bool stopping = atomic_load(&k->s->stopping);
        k->closed = true;
        if (!k->connected && !stopping)
            fail(cx, k, "connect: %s", tr_strerror(why));
        else if (k->done && !k->closing && !stopping)
            fail(cx, k, "closed after the script (%s)", why ? tr_strerror(why) : "orderly");
        advance(cx, k);
        if (!k->done && !stopping) /* the actor ends now: nothing more can come */
            fail(cx, k, "connection closed (%s)", why ? tr_strerror(why) : "orderly");
        return;
    }
    case SC_PROBE:
        if (k->done && !k->failed && !k->closed && !k->closing) {
            int err = tr_tcp_send(cx, PROBE "\n", strlen(PROBE) + 1);
            k->probing = err == 0;
            if (err != 0)
                fail(cx, k, "sending the end probe: %s", tr_strerror(err));
        }
        break;
    case SC_PROGRESS: {
        const sc_note *n = TR_PAYLOAD(m, sc_note);
        if (n != NULL && n->who >= 0 && n->who < SC_MAX_CLIENTS && n->reached > k->reached[n->who])
            k->reached[n->who] = n->reached;
        break;
    }
    }
    advance(cx, k);
}

static void client_free(void *state, int reason)
{
    sc_conn *k = state;
    (void)reason;
    while (k->qn > 0)
        free(pop_line(k));
    free(k->q);
    free(k->used);
}

/* ---- the director ---------------------------------------------------------- */

typedef struct sc_director {
    sc_scenario *s;
    tr_pid clients[SC_MAX_CLIENTS];
    bool done[SC_MAX_CLIENTS];
    bool open[SC_MAX_CLIENTS];   /* done, and still connected: probed */
    bool probed[SC_MAX_CLIENTS]; /* its probe was answered */
    int ndone;
    int probes;       /* probes sent and not yet answered */
    bool over;
} sc_director;

/* Ends the run: chat's main gets its runtime back from tr_runtime_run. */
static void end_run(tr_ctx *cx, sc_director *d)
{
    if (d->over)
        return;
    d->over = true;
    atomic_store(&d->s->stopping, true);
    tr_runtime_shutdown(tr_ctx_runtime(cx));
    /* It lives on, ignoring the rest, until chat's main destroys the
     * runtime: a late SC_DONE is no dead letter. */
}

static void stalled(sc_director *d)
{
    sc_scenario *s = d->s;
    size_t used = 0;
    for (int i = 0; i < s->n && used < sizeof s->stall - 1; i++) {
        size_t at = atomic_load(&s->at[i]);
        char step[160] = "the end probe, unanswered";
        if (d->open[i] && !d->probed[i] && d->ndone == s->n) /* probing */
            at = s->c[i].n;
        else if (d->done[i] || at >= s->c[i].n)
            continue;
        else
            describe(s, &s->c[i].steps[at], step, sizeof step);
        int w = snprintf(s->stall + used, sizeof s->stall - used, "%sclient %s stalled at step %zu (%s)",
                         used ? "; " : "", s->c[i].name, at, step);
        used += w > 0 ? (size_t)w : 0;
    }
    if (used == 0)
        snprintf(s->stall, sizeof s->stall, "the deadline passed");
}

static int director_init(tr_ctx *cx, void *state, tr_pid spawner)
{
    sc_director *d = state;
    sc_scenario *s = d->s;
    (void)spawner;
    for (int i = 0; i < s->n; i++) {
        sc_conn proto = {.s = s, .i = i, .director = tr_self(cx)};
        tr_tcp_connect_opts o = {
            .host = "127.0.0.1",
            .port = s->port,
            .handler = {.actor = {.behaviour = client_actor, .state = &proto,
                                  .state_size = sizeof proto, .on_stop = client_free},
                        .opts = {.framing = TR_FRAME_LINE, .max_line = 16384}},
        };
        int err = tr_tcp_connect(cx, &o, &d->clients[i]);
        if (err != 0) {
            snprintf(s->stall, sizeof s->stall, "tr_tcp_connect for %s: %s", s->c[i].name,
                     tr_strerror(err));
            end_run(cx, d);
            return 0;
        }
    }
    if (tr_send_after(cx, s->deadline_ns, tr_self(cx), SC_DEADLINE, NULL, 0) != 0)
        end_run(cx, d);
    if (s->n == 0)
        end_run(cx, d);
    return 0;
}

static void director_actor(tr_ctx *cx, void *state, const tr_msg *m)
{
    sc_director *d = state;
    const sc_note *n = TR_PAYLOAD(m, sc_note);
    if (d->over)
        return;
    if (m->type == SC_PASSED && n != NULL) {
        for (int i = 0; i < d->s->n; i++)
            if (i != n->who)
                tr_send(cx, d->clients[i], SC_PROGRESS, n, sizeof *n);
    } else if (m->type == SC_DONE && n != NULL && n->who >= 0 && n->who < d->s->n) {
        if (n->reached) { /* a failure: the run is over */
            end_run(cx, d);
        } else if (!d->done[n->who]) {
            d->done[n->who] = true;
            d->open[n->who] = n->open;
            d->probes += n->open;
            if (++d->ndone == d->s->n && d->probes == 0)
                end_run(cx, d);
            else if (d->ndone == d->s->n) /* every script ended: probe */
                for (int i = 0; i < d->s->n; i++)
                    if (d->open[i])
                        tr_send(cx, d->clients[i], SC_PROBE, NULL, 0);
        }
    } else if (m->type == SC_PROBED && n != NULL && n->who >= 0 && n->who < d->s->n) {
        d->probed[n->who] = true;
        if (--d->probes == 0)
            end_run(cx, d);
    } else if (m->type == SC_DEADLINE) {
        stalled(d);
        end_run(cx, d);
    }
}

int sc_director_spawn(tr_runtime *rt, sc_scenario *s)
{
    sc_director d = {.s = s};
    tr_actor_spec spec = {.behaviour = director_actor, .init = director_init, .state = &d,
                          .state_size = sizeof d};
    return tr_spawn_spec(tr_runtime_ctx(rt), &spec, NULL);
}

bool sc_verdict(const sc_scenario *s, char *why, size_t cap)
{
    bool broken = s->oom;
    for (int i = 0; i < s->n; i++)
        broken |= s->c[i].broken;
    if (broken) {
        snprintf(why, cap, "the scenario could not be built");
        return false;
    }
    for (int i = 0; i < s->n; i++)
        if (s->failure[i][0] != '\0') {
            snprintf(why, cap, "%s", s->failure[i]);
            return false;
        }
    if (s->stall[0] != '\0') {
        snprintf(why, cap, "%s", s->stall);
        return false;
    }
    return true;
}
