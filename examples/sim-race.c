/* sim-race: a lost update that plain runs almost never show and the
 * simulator finds (docs/simulation.md).
 *
 *   sim-race       exits 0 if the counter ends at 2, 1 if an update was lost
 *   troupe-sim --seeds 1-10000 build/release/examples/sim-race
 *
 * A counter actor answers GET with its value and takes SET. Two
 * incrementers, A and B, each read it and write back value + 1: a
 * read-modify-write with no coordination, wrong whenever B's GET is
 * served between A's GET and A's SET.
 *
 * The bug's setting: A, once started, first tells B to start — through a
 * pipeline of STAGES relays — and only then does its own update, trusting
 * that the pipeline is slower. In production it is: the runtime runs the
 * actor a turn made ready next, on the same worker (its LIFO slot), so
 * A's exchange with the counter finishes before the first relay runs,
 * whatever the number of threads. Under simulation the next actor is
 * drawn by the seed, and now and then the whole pipeline and B's GET run
 * between A's two steps.
 */
#include <stdio.h>
#include <stdlib.h>
#include <troupe.h>

enum { GO = 1, GET, VALUE, SET };

/* Relays between A and B: each one halves the chance that a uniformly
 * drawn schedule lets the pipeline overtake A's two steps. */
#define STAGES 12

typedef struct counter {
    long value;
    long *result; /* main's copy of the value, read after the run */
} counter;

typedef struct incrementer {
    tr_pid counter;
    tr_pid starts; /* whom to start first (A: the pipeline; B: none) */
} incrementer;

static void counter_b(tr_ctx *cx, void *state, const tr_msg *m)
{
    counter *c = state;
    const long *v = TR_PAYLOAD(m, long);
    if (m->type == GET)
        TR_SEND_VALUE(cx, m->from, VALUE, c->value);
    else if (m->type == SET && v != NULL)
        *c->result = c->value = *v;
}

static void incrementer_b(tr_ctx *cx, void *state, const tr_msg *m)
{
    incrementer *in = state;
    const long *v = TR_PAYLOAD(m, long);
    if (m->type == GO) {
        if (in->starts != TR_PID_NONE)
            tr_send(cx, in->starts, GO, NULL, 0); /* the bug: B may start now */
        tr_send(cx, in->counter, GET, NULL, 0);
    } else if (m->type == VALUE && v != NULL) {
        long next = *v + 1; /* meanwhile, the value may have changed */
        TR_SEND_VALUE(cx, in->counter, SET, next);
    }
}

static void relay_b(tr_ctx *cx, void *state, const tr_msg *m)
{
    tr_send(cx, *(tr_pid *)state, m->type, NULL, 0);
}

static tr_pid spawn(tr_runtime *rt, tr_behaviour fn, const void *state, size_t size)
{
    tr_pid pid;
    int err = tr_spawn(tr_runtime_ctx(rt), fn, state, size, &pid);
    if (err != 0) {
        fprintf(stderr, "sim-race: spawn: %s\n", tr_strerror(err));
        exit(2);
    }
    return pid;
}

int main(void)
{
    long result = 0;
    tr_runtime *rt;
    int err = tr_runtime_create(NULL, &rt);
    if (err != 0) {
        fprintf(stderr, "sim-race: %s\n", tr_strerror(err));
        return 2;
    }
    counter c = {.value = 0, .result = &result};
    tr_pid count = spawn(rt, counter_b, &c, sizeof c);
    incrementer b = {.counter = count, .starts = TR_PID_NONE};
    tr_pid next = spawn(rt, incrementer_b, &b, sizeof b);
    for (int i = 0; i < STAGES; i++) /* built backwards, from B */
        next = spawn(rt, relay_b, &next, sizeof next);
    incrementer a = {.counter = count, .starts = next};
    tr_pid a_pid = spawn(rt, incrementer_b, &a, sizeof a);

    tr_send(tr_runtime_ctx(rt), a_pid, GO, NULL, 0);
    tr_runtime_run(rt);
    tr_runtime_destroy(rt);
    if (result != 2) {
        fprintf(stderr, "sim-race: lost update: the counter ended at %ld, not 2\n", result);
        return 1;
    }
    printf("sim-race: the counter ended at 2\n");
    return 0;
}
