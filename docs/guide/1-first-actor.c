/* Step 1: a first actor. A counter adds up the numbers it is sent and,
 * asked for its total, reports it and stops. Exits 0 if the total is right. */
#include <stdio.h>
#include <troupe.h>

enum { ADD = 1, TOTAL }; /* message types: any number below TR_MSG_SYSTEM */

typedef struct counter {
    long sum;    /* the actor's own copy, made at spawn */
    long *out;   /* where to report: main's variable */
} counter;

static void counter_behaviour(tr_ctx *cx, void *state, const tr_msg *m)
{
    counter *c = state;
    if (m->type == ADD) {
        const int *n = TR_PAYLOAD(m, int); /* NULL unless the payload is one int */
        if (n != NULL)
            c->sum += *n;
    } else if (m->type == TOTAL) {
        printf("counter: total %ld\n", c->sum);
        *c->out = c->sum;
        tr_stop(cx); /* ends this actor once this message is handled */
    }
}

int main(void)
{
    long total = -1;
    counter init = {.sum = 0, .out = &total};
    tr_runtime *rt;
    tr_pid pid;

    int err = tr_runtime_create(NULL, &rt);
    if (err != 0) {
        fprintf(stderr, "first-actor: %s\n", tr_strerror(err));
        return 1;
    }
    tr_ctx *cx = tr_runtime_ctx(rt); /* main is outside the runtime: this is its context */
    err = tr_spawn(cx, counter_behaviour, &init, sizeof init, &pid);
    for (int i = 1; i <= 4 && err == 0; i++)
        err = TR_SEND_VALUE(cx, pid, ADD, i); /* tr_send(cx, pid, ADD, &i, sizeof i) */
    if (err == 0)
        err = tr_send(cx, pid, TOTAL, NULL, 0);
    if (err != 0)
        fprintf(stderr, "first-actor: %s\n", tr_strerror(err));

    tr_runtime_run(rt); /* runs the workers until nothing is left to do */
    tr_runtime_destroy(rt);
    return err == 0 && total == 10 ? 0 : 1;
}
