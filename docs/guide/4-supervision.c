/* Step 4: supervision. A supervisor runs one worker; a POISON job makes it
 * fail, and the supervisor starts it again with fresh state. A driver
 * checks the fresh state, then shuts the tree down. Exits 0 if all went so. */
#include <stdio.h>
#include <troupe.h>

enum { HELLO = 1, JOB, POISON, COUNT };

typedef struct worker {
    tr_pid driver;
    int jobs; /* 0 again in every incarnation: the supervisor keeps a copy */
} worker;

static int worker_init(tr_ctx *cx, void *state, tr_pid supervisor)
{
    worker *w = state; /* say hello, with who supervises us */
    return TR_SEND_VALUE(cx, w->driver, HELLO, supervisor);
}

static void worker_behaviour(tr_ctx *cx, void *state, const tr_msg *m)
{
    worker *w = state;
    if (m->type == JOB)
        w->jobs++;
    else if (m->type == POISON)
        tr_exit(cx, 42, "poisoned"); /* a failure: reason 42, not TR_EXIT_NORMAL */
    else if (m->type == COUNT)
        tr_reply(cx, m, &w->jobs, sizeof w->jobs);
}

typedef struct driver {
    tr_pid sup;
    int hellos, fresh;
    int *ok; /* main's */
} driver;

static void driver_behaviour(tr_ctx *cx, void *state, const tr_msg *m)
{
    driver *d = state;
    const tr_pid *sup = TR_PAYLOAD(m, tr_pid);
    const int *jobs = TR_PAYLOAD(m, int);
    const tr_down_info *down = TR_PAYLOAD(m, tr_down_info);
    if (m->type == HELLO && sup != NULL && ++d->hellos == 1) { /* the first worker */
        printf("driver: worker started; two jobs, then poison\n");
        d->sup = *sup;
        tr_monitor(cx, d->sup, NULL); /* to see the tree end */
        tr_send(cx, m->from, JOB, NULL, 0);
        tr_send(cx, m->from, JOB, NULL, 0);
        tr_send(cx, m->from, POISON, NULL, 0);
    } else if (m->type == HELLO) { /* its successor: another pid */
        printf("driver: worker restarted (hello #%d)\n", d->hellos);
        tr_ask(cx, m->from, COUNT, NULL, 0, 10 * TR_SEC, NULL);
    } else if (m->type == TR_REPLY && jobs != NULL) {
        printf("driver: the new worker has done %d jobs; shutting down\n", *jobs);
        d->fresh = *jobs == 0;
        tr_kill(cx, d->sup, TR_EXIT_SHUTDOWN); /* stops the children, then itself */
    } else if (m->type == TR_DOWN && down != NULL) {
        printf("driver: supervisor down: %s\n", tr_exit_reason_name(down->reason));
        *d->ok = down->reason == TR_EXIT_SHUTDOWN && d->fresh && d->hellos == 2;
        tr_stop(cx);
    }
}

int main(void)
{
    int ok = 0;
    tr_runtime *rt;
    tr_pid drv = TR_PID_NONE;
    driver d = {.ok = &ok};
    if (tr_runtime_create(NULL, &rt) != 0)
        return 1;
    int err = tr_spawn(tr_runtime_ctx(rt), driver_behaviour, &d, sizeof d, &drv);
    worker w = {.driver = drv};
    tr_child_spec child = {
        .actor = {.behaviour = worker_behaviour, .state = &w, .state_size = sizeof w,
                  .init = worker_init},
        .restart = TR_PERMANENT, /* always restarted; TR_TRANSIENT: after failures only */
    };
    tr_supervisor_spec spec = {.strategy = TR_ONE_FOR_ONE, .max_restarts = 3,
                               .period_ns = 5 * TR_SEC, .children = &child, .nchildren = 1};
    if (err == 0)
        err = tr_supervisor_start(tr_runtime_ctx(rt), &spec, NULL);
    if (err != 0)
        fprintf(stderr, "supervision: %s\n", tr_strerror(err));
    tr_runtime_run(rt);
    tr_runtime_destroy(rt);
    return err == 0 && ok ? 0 : 1;
}
