/* dist-pingpong — two nodes in two processes, one actor each: `ping` here
 * sends PING to `pong` on the other node, which sends it back; n round
 * trips over the node connection. The other node is this program forked
 * (--erl 0) or `erl` with an echo process (--erl 1: troupe <-> Erlang).
 * Reports the round-trip latency's p50 and p99 besides the rate. */
#include "dist_bench.h"

enum { START = 1, HELLO, PING };

typedef struct pinger {
    char peer[96];       /* the other node's name */
    tr_pid pong;         /* learnt from HELLO's answer */
    uint64_t n, got;
    double sent, t0;     /* when the last PING left; when the first did */
    double *lat;         /* n round trips, seconds */
    double *secs;        /* main's: t0 to the last PONG */
    uint64_t *bad;       /* main's: answers with the wrong sequence number */
    atomic_int *done;
} pinger;

static void send_ping(tr_ctx *cx, pinger *p)
{
    p->sent = bench_now();
    BENCH_TRY(tr_send(cx, p->pong, PING, &p->got, sizeof p->got));
}

static void ping(tr_ctx *cx, void *state, const tr_msg *m)
{
    pinger *p = state;
    if (m->type == START) {
        /* The first exchange sets the connection up (the EPMD lookup, the
         * handshake): outside the measured part. */
        BENCH_TRY(tr_send_named(cx, "pong", p->peer, HELLO, NULL, 0));
    } else if (m->type == HELLO) {
        p->pong = m->from;
        p->t0 = bench_now();
        send_ping(cx, p);
    } else if (m->type == PING) {
        double now = bench_now();
        if (m->len != sizeof(uint64_t) || memcmp(m->data, &p->got, sizeof p->got) != 0)
            (*p->bad)++;
        p->lat[p->got++] = now - p->sent;
        if (p->got < p->n) {
            send_ping(cx, p);
        } else {
            *p->secs = now - p->t0;
            atomic_store(p->done, 1);
        }
    }
}

/* Sends everything back to its sender unchanged. */
static void pong(tr_ctx *cx, void *state, const tr_msg *m)
{
    (void)state;
    if (m->from != TR_PID_NONE)
        BENCH_TRY(tr_send(cx, m->from, m->type, m->data, m->len));
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
    bench_param params[] = { { "n", 100000, 1, 0 }, { "erl", 0, 0, 1 } };
    bool erl = db_flag(argc, argv, "--erl");
    const char *name = erl ? "dist-pingpong-erl" : "dist-pingpong";
    uint16_t epmd = epmd_free_port();
    char me[64], peer[64];
    snprintf(me, sizeof me, "bpp_a%ld", (long)getpid());
    snprintf(peer, sizeof peer, "bpp_b%ld", (long)getpid());
    bench b;
    db_child c;
    if (!erl && db_fork(&c)) {
        bench_init(&b, name, params, 2, argc, argv);
        db_epmd_await(name, epmd);
        db_node(&b, peer, epmd);
        tr_actor_spec ps = { .behaviour = pong, .name = "pong" };
        BENCH_TRY(tr_spawn_spec(tr_runtime_ctx(b.rt), &ps, NULL));
        db_child_serve(&b);
    }
    bench_init(&b, name, params, 2, argc, argv);
    db_epmd_start(name, epmd);
    if (erl) {
        /* The echo loop compiled, not run by erl_eval: that is what an
         * Erlang program runs. */
        char full[96], script[768];
        snprintf(full, sizeof full, "%s@localhost", peer);
        snprintf(script, sizeof script,
                 "F = fun(S) -> {ok, T, _} = erl_scan:string(S),"
                 " {ok, Fm} = erl_parse:parse_form(T), Fm end,"
                 "{ok, M, Bin} = compile:forms([F(\"-module(bpp_pong).\"),"
                 " F(\"-export([loop/1]).\"),"
                 " F(\"loop(To) -> receive {T, B} -> To ! {T, B}, loop(To) end.\")]),"
                 "{module, M} = code:load_binary(M, \"bpp_pong.erl\", Bin),"
                 "register(pong, spawn(M, loop, [{ping, '%s@localhost'}])),"
                 "io:format(\"ready~n\").", me);
        char *args[] = { "erl", "-noshell", "-sname", full, "-setcookie", DB_COOKIE,
                         "-eval", script, NULL };
        db_spawn(&c, epmd, args);
    }
    uint64_t n = params[0].value, bad = 0;
    double secs = 0;
    atomic_int done = 0;
    db_peer_up(&b, &c, me, epmd);
    pinger st = { .n = n, .lat = calloc(n, sizeof(double)), .secs = &secs, .bad = &bad,
                  .done = &done };
    if (st.lat == NULL)
        bench_die(name, "calloc", TR_ENOMEM);
    snprintf(st.peer, sizeof st.peer, "%s@localhost", peer);
    tr_actor_spec spec = { .behaviour = ping, .state = &st, .state_size = sizeof st,
                           .name = "ping" };
    tr_pid p;
    BENCH_TRY(tr_spawn_spec(tr_runtime_ctx(b.rt), &spec, &p));
    BENCH_TRY(tr_runtime_start(b.rt));
    BENCH_TRY(tr_send(tr_runtime_ctx(b.rt), p, START, NULL, 0));
    for (double until = bench_now() + 600; atomic_load(&done) == 0 && bench_now() < until;)
        db_sleep_ms(1);
    bool finished = atomic_load(&done) != 0;
    db_node_end(&b);
    bool peer_ok = db_stop(&c);
    db_epmd_stop(epmd);

    bench_check(&b, finished, "the round trips did not end within 600 s");
    bench_check(&b, bad == 0, "%" PRIu64 " answers out of sequence", bad);
    bench_check(&b, peer_ok, "the peer node did not exit cleanly");
    tr_stats s;
    tr_runtime_stats(b.rt, &s);
    bench_check(&b, s.dead_letters == 0, "dead_letters = %" PRIu64 ", want 0", s.dead_letters);
    if (finished) {
        qsort(st.lat, n, sizeof(double), cmp_double);
        snprintf(b.extra, sizeof b.extra, "p50_us=%.1f p99_us=%.1f",
                 st.lat[(n - 1) / 2] * 1e6, st.lat[(n - 1) * 99 / 100] * 1e6);
    }
    free(st.lat);
    return bench_finish(&b, secs, bench_rate(finished ? n : 0, secs), "round_trips");
}
