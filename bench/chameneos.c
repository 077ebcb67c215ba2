/* chameneos — a mall pairs chameneos that ask for a meeting; each learns
 * the other's pid and colour, takes the complement colour and asks again.
 * After n meetings the mall tells everyone to stop; each reports how many
 * meetings it had. The mall starts them all, so that each one's START
 * comes before its STOP: started from main, a chameneos main had not
 * reached yet when the n-th meeting came (main descheduled on a busy
 * machine, or a small n) was stopped first and its START a dead letter. */
#include "bench.h"

enum { START = 1, REQUEST, MEET, STOP, REPORT };
enum { BLUE, RED, YELLOW };

typedef struct result {
    uint64_t reports;
    uint64_t meetings;  /* sum of the reports */
    uint64_t faults;    /* meetings with oneself */
} result;

typedef struct mall {
    const tr_pid *chameneos;    /* main's array, read-only while running */
    uint64_t actors;
    uint64_t n;
    uint64_t meetings;
    tr_pid waiting;
    uint64_t waiting_colour;
    result *result;     /* main's, summed into as reports arrive */
} mall;

typedef struct chameneo {
    tr_pid mall;
    uint64_t colour;
    uint64_t meetings;
    uint64_t faults;
} chameneo;

typedef struct meet {
    tr_pid other;
    uint64_t colour;
} meet;

typedef struct report {
    uint64_t meetings;
    uint64_t faults;
} report;

/* Savina's rule: the same colour stays, two different give the third. */
static uint64_t complement(uint64_t a, uint64_t b)
{
    return a == b ? a : 3 - a - b;
}

static void shop(tr_ctx *cx, void *state, const tr_msg *m)
{
    mall *ml = state;
    if (m->type == REPORT) {
        const report *r = BENCH_PAYLOAD(m, report);
        ml->result->reports++;
        ml->result->meetings += r->meetings;
        ml->result->faults += r->faults;
        return;
    }
    if (m->type == START) {
        for (uint64_t i = 0; i < ml->actors; i++)
            BENCH_TRY(tr_send(cx, ml->chameneos[i], START, NULL, 0));
        return;
    }
    /* Requests still in flight when the n-th meeting happens are dropped:
     * their senders are about to get STOP. */
    if (ml->meetings == ml->n)
        return;
    uint64_t colour = bench_u64(m);
    if (ml->waiting == TR_PID_NONE) {
        ml->waiting = m->from;
        ml->waiting_colour = colour;
        return;
    }
    meet to_waiting = { m->from, colour }, to_sender = { ml->waiting, ml->waiting_colour };
    BENCH_TRY(TR_SEND_VALUE(cx, ml->waiting, MEET, to_waiting));
    BENCH_TRY(TR_SEND_VALUE(cx, m->from, MEET, to_sender));
    ml->waiting = TR_PID_NONE;
    if (++ml->meetings == ml->n)
        for (uint64_t i = 0; i < ml->actors; i++)
            BENCH_TRY(tr_send(cx, ml->chameneos[i], STOP, NULL, 0));
}

static void live(tr_ctx *cx, void *state, const tr_msg *m)
{
    chameneo *c = state;
    switch (m->type) {
    case MEET: {
        const meet *mt = BENCH_PAYLOAD(m, meet);
        c->faults += mt->other == tr_self(cx);
        c->colour = complement(c->colour, mt->colour);
        c->meetings++;
        break;
    }
    case STOP: {
        report r = { c->meetings, c->faults };
        BENCH_TRY(TR_SEND_VALUE(cx, c->mall, REPORT, r));
        tr_stop(cx);
        return;
    }
    }
    BENCH_TRY(TR_SEND_VALUE(cx, c->mall, REQUEST, c->colour));
}

int main(int argc, char **argv)
{
    bench_param params[] = { { "actors", 100, 2, 0 }, { "n", 2000000, 1, 0 } };
    bench b;
    bench_init(&b, "chameneos", params, 2, argc, argv);
    uint64_t actors = params[0].value, n = params[1].value;
    result res = { 0, 0, 0 };

    tr_pid *all = calloc(actors, sizeof *all);
    if (all == NULL)
        bench_die(b.name, "calloc", TR_ENOMEM);
    mall ml = { .chameneos = all, .actors = actors, .n = n, .result = &res };
    tr_pid mall_pid;
    BENCH_TRY(tr_spawn(tr_runtime_ctx(b.rt), shop, &ml, sizeof ml, &mall_pid));
    for (uint64_t i = 0; i < actors; i++) {
        chameneo c = { .mall = mall_pid, .colour = i % 3 };
        BENCH_TRY(tr_spawn(tr_runtime_ctx(b.rt), live, &c, sizeof c, &all[i]));
    }
    bench_start(&b);
    double t0 = bench_now();
    BENCH_TRY(tr_send(tr_runtime_ctx(b.rt), mall_pid, START, NULL, 0));
    bench_join(&b);
    double secs = bench_now() - t0;

    bench_check(&b, res.reports == actors, "%" PRIu64 " reports, want %" PRIu64,
                res.reports, actors);
    bench_check(&b, res.meetings == 2 * n, "reports sum to %" PRIu64 ", want %" PRIu64,
                res.meetings, 2 * n);
    bench_check(&b, res.faults == 0, "%" PRIu64 " chameneos met themselves", res.faults);
    /* The mall's START; START, STOP and REPORT per chameneos; a REQUEST
     * per START and per MEET; two MEETs per meeting. */
    bench_check_stats(&b, 4 * actors + 4 * n + 1, 1);
    free(all);
    return bench_finish(&b, secs, bench_rate(n, secs), "meetings");
}
