/* dist-stream — K senders on this node stream n numbered messages each to
 * one receiver (`sink`) on another node in another process (this program,
 * forked): one-way messages per second over one node connection. The sink
 * checks every message against the next sequence number of its sender and
 * acknowledges each ACK_EVERY-th; a sender keeps at most WINDOW messages
 * unacknowledged, since a node connection does not yet push back on its
 * senders (issue 13, item 6) and an unbounded stream would only measure
 * how fast the output queue grows. */
#include "dist_bench.h"

enum { START = 1, HELLO, GO, DATA, ACK };
enum { MAX_SENDERS = 64, ACK_EVERY = 1024, WINDOW = 16 * ACK_EVERY };

typedef struct item {
    uint32_t sender;
    uint32_t pad;
    uint64_t seq;
} item;

typedef struct ack {
    uint64_t count;  /* messages of this sender received in order */
    uint64_t bad;    /* messages of any sender out of sequence so far */
} ack;

typedef struct shared {
    uint64_t n;
    tr_pid senders[MAX_SENDERS];
    unsigned k;
    atomic_uint finished;
    atomic_uint_fast64_t bad;
    double t0, t1;
} shared;

typedef struct sender {
    shared *sh;
    uint32_t id;
    tr_pid sink;
    uint64_t next, acked;
} sender;

/* Main's actor: learns the sink's pid, then starts every sender. */
static void coord(tr_ctx *cx, void *state, const tr_msg *m)
{
    shared *sh = *(shared **)state;
    char peer[96];
    if (m->type == START) {
        memcpy(peer, m->data, m->len < sizeof peer ? m->len : sizeof peer);
        peer[sizeof peer - 1] = '\0';
        BENCH_TRY(tr_send_named(cx, "sink", peer, HELLO, NULL, 0));
    } else if (m->type == HELLO) {
        sh->t0 = bench_now();
        for (unsigned i = 0; i < sh->k; i++)
            BENCH_TRY(tr_send(cx, sh->senders[i], GO, &m->from, sizeof m->from));
    }
}

static void fill(tr_ctx *cx, sender *s)
{
    for (; s->next < s->sh->n && s->next - s->acked < WINDOW; s->next++) {
        item it = { .sender = s->id, .seq = s->next };
        BENCH_TRY(tr_send(cx, s->sink, DATA, &it, sizeof it));
    }
}

static void send_stream(tr_ctx *cx, void *state, const tr_msg *m)
{
    sender *s = state;
    if (m->type == GO) {
        s->sink = *BENCH_PAYLOAD(m, tr_pid);
        fill(cx, s);
    } else if (m->type == ACK) {
        const ack *a = BENCH_PAYLOAD(m, ack);
        s->acked = a->count;
        if (a->bad > atomic_load(&s->sh->bad))
            atomic_store(&s->sh->bad, a->bad);
        if (s->acked == s->sh->n) {
            if (atomic_fetch_add(&s->sh->finished, 1) + 1 == s->sh->k)
                s->sh->t1 = bench_now();
        } else {
            fill(cx, s);
        }
    }
}

typedef struct sink {
    uint64_t n, bad;
    uint32_t k;
    uint64_t expect[MAX_SENDERS];
} sink;

/* Every message must be the next of its sender: one lost, duplicated or
 * reordered is counted bad, and its sender never sees its count reach n. */
static void sink_fn(tr_ctx *cx, void *state, const tr_msg *m)
{
    sink *s = state;
    if (m->type == HELLO) {
        BENCH_TRY(tr_send(cx, m->from, HELLO, NULL, 0));
        return;
    }
    const item *it = BENCH_PAYLOAD(m, item);
    if (it->sender >= s->k || it->seq != s->expect[it->sender]) {
        s->bad++;
        return;
    }
    uint64_t got = ++s->expect[it->sender];
    if (got % ACK_EVERY == 0 || got == s->n) {
        ack a = { .count = got, .bad = s->bad };
        BENCH_TRY(tr_send(cx, m->from, ACK, &a, sizeof a));
    }
}

int main(int argc, char **argv)
{
    bench_param params[] = { { "senders", 4, 1, MAX_SENDERS }, { "n", 250000, 1, 0 } };
    const char *name = "dist-stream";
    uint16_t epmd = epmd_free_port();
    char me[64], peer[96];
    snprintf(me, sizeof me, "bds_a%ld", (long)getpid());
    snprintf(peer, sizeof peer, "bds_b%ld", (long)getpid());
    bench b;
    db_child c;
    if (db_fork(&c)) {
        bench_init(&b, name, params, 2, argc, argv);
        db_epmd_await(name, epmd);
        db_node(&b, peer, epmd);
        sink st = { .k = (uint32_t)params[0].value, .n = params[1].value };
        tr_actor_spec ss = { .behaviour = sink_fn, .state = &st, .state_size = sizeof st,
                             .name = "sink" };
        BENCH_TRY(tr_spawn_spec(tr_runtime_ctx(b.rt), &ss, NULL));
        db_child_serve(&b);
    }
    bench_init(&b, name, params, 2, argc, argv);
    db_epmd_start(name, epmd);
    shared sh = { .k = (unsigned)params[0].value, .n = params[1].value };
    db_peer_up(&b, &c, me, epmd);
    tr_ctx *cx = tr_runtime_ctx(b.rt);
    for (unsigned i = 0; i < sh.k; i++) {
        sender s = { .sh = &sh, .id = i };
        BENCH_TRY(tr_spawn(cx, send_stream, &s, sizeof s, &sh.senders[i]));
    }
    shared *shp = &sh;
    tr_pid co;
    BENCH_TRY(tr_spawn(cx, coord, &shp, sizeof shp, &co));
    BENCH_TRY(tr_runtime_start(b.rt));
    strcat(peer, "@localhost");
    BENCH_TRY(tr_send(cx, co, START, peer, strlen(peer) + 1));
    for (double until = bench_now() + 600; atomic_load(&sh.finished) < sh.k && bench_now() < until;)
        db_sleep_ms(1);
    bool finished = atomic_load(&sh.finished) == sh.k;
    db_node_end(&b);
    bool peer_ok = db_stop(&c);
    db_epmd_stop(epmd);

    uint64_t total = (uint64_t)sh.k * sh.n;
    double secs = finished ? sh.t1 - sh.t0 : 0;
    bench_check(&b, finished, "%u of %u senders had all %" PRIu64 " messages acknowledged",
                atomic_load(&sh.finished), sh.k, sh.n);
    bench_check(&b, atomic_load(&sh.bad) == 0, "%" PRIu64 " messages out of sequence",
                (uint64_t)atomic_load(&sh.bad));
    bench_check(&b, peer_ok, "the peer node did not exit cleanly");
    tr_stats s;
    tr_runtime_stats(b.rt, &s);
    bench_check(&b, s.dead_letters == 0, "dead_letters = %" PRIu64 ", want 0", s.dead_letters);
    return bench_finish(&b, secs, bench_rate(finished ? total : 0, secs), "messages");
}
