/* ask — request/reply (not one of the Savina benchmarks; reported beside
 * them): `askers` actors each keep `window` asks in flight to an echo
 * actor of their own, tr_ask with a 5 s timeout answered by tr_reply, n
 * asks in all. Every ask is answered once, with its own number plus one,
 * and none fails. Reports the actors the runtime made besides the askers
 * and echoes (`timers`: the asks' timeout timers). */
#include "bench.h"

#include <stdlib.h>

enum { START = 1, QUESTION };

#define TIMEOUT_NS (5 * TR_SEC)

typedef struct tally {
    uint64_t answered, failed, wrong;
} tally;

/* The asker counts in its own state and hands the count to main's array
 * once, when its last ask is settled: main's tallies share cache lines,
 * and askers on two workers counting there passed the lines between the
 * cores on every answer (the benchmark then measured the host's cost of
 * that: 10-21 M asks/s at 2 workers as it moved). */
typedef struct asker {
    tr_pid echo;
    uint64_t n, window, sent;
    tally count;
    tally *out; /* main's, one per asker */
} asker;

static void settled(asker *a)
{
    if (a->count.answered + a->count.failed == a->n)
        *a->out = a->count;
}

static void echo(tr_ctx *cx, void *state, const tr_msg *m)
{
    (void)state;
    uint64_t v = bench_u64(m) + 1;
    BENCH_TRY(tr_reply(cx, m, &v, sizeof v));
}

static void ask_next(tr_ctx *cx, asker *a)
{
    uint64_t v = a->sent++;
    BENCH_TRY(tr_ask(cx, a->echo, QUESTION, &v, sizeof v, TIMEOUT_NS, NULL));
}

static void ask(tr_ctx *cx, void *state, const tr_msg *m)
{
    asker *a = state;
    if (m->type == START) {
        while (a->sent < a->n && a->sent < a->window)
            ask_next(cx, a);
    } else if (m->type == TR_REPLY) {
        /* Refs count from 1 in ask order, the numbers from 0: ref = v + 1. */
        a->count.answered++;
        a->count.wrong += bench_u64(m) != tr_msg_ref(m);
        if (a->sent < a->n)
            ask_next(cx, a);
        settled(a);
    } else if (m->type == TR_ASK_FAILED) {
        a->count.failed++;
        settled(a);
    }
}

int main(int argc, char **argv)
{
    bench_param params[] = { { "askers", 4, 1, 0 }, { "window", 16, 1, 0 },
                             { "n", 4000000, 1, 0 } };
    bench b;
    bench_init(&b, "ask", params, 3, argc, argv);
    uint64_t askers = params[0].value, window = params[1].value, n = params[2].value;
    tally *tallies = calloc(askers, sizeof *tallies);
    tr_pid *pids = calloc(askers, sizeof *pids);
    if (tallies == NULL || pids == NULL)
        bench_die(b.name, "calloc", TR_ENOMEM);
    for (uint64_t i = 0; i < askers; i++) {
        asker a = { .n = n * (i + 1) / askers - n * i / askers, .window = window,
                    .out = &tallies[i] };
        BENCH_TRY(tr_spawn(tr_runtime_ctx(b.rt), echo, NULL, 0, &a.echo));
        BENCH_TRY(tr_spawn(tr_runtime_ctx(b.rt), ask, &a, sizeof a, &pids[i]));
    }
    bench_start(&b);
    double t0 = bench_now();
    for (uint64_t i = 0; i < askers; i++)
        BENCH_TRY(tr_send(tr_runtime_ctx(b.rt), pids[i], START, NULL, 0));
    bench_join(&b);
    double secs = bench_now() - t0;

    tally all = { 0, 0, 0 };
    for (uint64_t i = 0; i < askers; i++) {
        all.answered += tallies[i].answered;
        all.failed += tallies[i].failed;
        all.wrong += tallies[i].wrong;
    }
    bench_check(&b, all.answered == n, "%" PRIu64 " answered, want %" PRIu64, all.answered, n);
    bench_check(&b, all.failed == 0, "%" PRIu64 " asks failed", all.failed);
    bench_check(&b, all.wrong == 0, "%" PRIu64 " replies with the wrong number", all.wrong);
    /* Each asker's START and replies, each echo's asks. */
    bench_check_stats(&b, askers + 2 * n, UINT64_MAX);
    tr_stats st;
    tr_runtime_stats(b.rt, &st);
    snprintf(b.extra, sizeof b.extra, "timers=%" PRIu64, st.actors_spawned - 2 * askers);
    free(tallies);
    free(pids);
    return bench_finish(&b, secs, bench_rate(n, secs), "asks");
}
