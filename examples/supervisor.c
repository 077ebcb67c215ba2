/* supervisor: a small tree that heals itself.
 *
 *   supervisor (one-for-one)
 *     alpha   a worker: counts the jobs it is given
 *     beta    the same; a "poison" job makes it crash
 *   monitor   watches the workers and the supervisor, logs every TR_DOWN,
 *             and paces the demo with timers
 *
 * beta crashes, the supervisor starts it again with fresh state, then the
 * monitor shuts the tree down: beta first, then alpha (reverse start
 * order). Lines come from several threads, so their order may vary a bit. */
#include <stdio.h>
#include <string.h>
#include <troupe.h>

enum { HELLO = 1, JOB, START, TICK };

#define STEP (200 * TR_MSEC)

/* ---- the workers ---- */

typedef struct worker {
    char name[8];
    tr_pid monitor;
    int jobs; /* starts at 0 in every incarnation */
} worker;

/* Runs on every (re)start, before the worker handles a message. */
static int worker_init(tr_ctx *cx, void *state, tr_pid supervisor)
{
    worker *w = state;
    (void)supervisor;
    tr_trap_exits(cx, true); /* to say goodbye when stopped */
    printf("[%s] started, jobs=%d\n", w->name, w->jobs);
    tr_send(cx, w->monitor, HELLO, w->name, sizeof w->name);
    return 0;
}

static void worker_behaviour(tr_ctx *cx, void *state, const tr_msg *m)
{
    worker *w = state;
    if (m->type == JOB && strcmp((const char *)m->data, "poison") == 0) {
        printf("[%s] got a poison job: crashing\n", w->name);
        tr_exit(cx, 42, "poisoned job");
    } else if (m->type == JOB) {
        printf("[%s] job '%s' done, jobs=%d\n", w->name, (const char *)m->data, ++w->jobs);
    } else if (m->type == TR_EXIT) { /* the supervisor stops us */
        const tr_exit_info *e = TR_PAYLOAD(m, tr_exit_info); /* the runtime's: never NULL */
        printf("[%s] stopping (%s), jobs=%d\n", w->name, tr_exit_reason_name(e->reason),
               w->jobs);
        tr_exit(cx, e->reason, NULL);
    }
}

/* ---- the monitor ---- */

typedef struct monitor {
    tr_pid sup, alpha, beta;
    int step;
} monitor;

static void job(tr_ctx *cx, tr_pid to, const char *what)
{
    tr_send(cx, to, JOB, what, strlen(what) + 1);
}

static void monitor_behaviour(tr_ctx *cx, void *state, const tr_msg *m)
{
    monitor *mo = state;
    switch (m->type) {
    case START: { /* payload: the supervisor's pid */
        const tr_pid *sup = TR_PAYLOAD(m, tr_pid); /* NULL if it is not one pid */
        if (sup == NULL)
            break;
        mo->sup = *sup;
        tr_monitor(cx, mo->sup, NULL);
        tr_send_after(cx, STEP, tr_self(cx), TICK, NULL, 0);
        break;
    }
    case HELLO: { /* a worker (re)started: watch it */
        const char *name = (const char *)m->data;
        *(strcmp(name, "alpha") == 0 ? &mo->alpha : &mo->beta) = m->from;
        tr_monitor(cx, m->from, NULL);
        printf("monitor: watching %s\n", name);
        break;
    }
    case TR_DOWN: {
        const tr_down_info *d = TR_PAYLOAD(m, tr_down_info);
        const char *who = d->pid == mo->sup     ? "supervisor"
                          : d->pid == mo->alpha ? "alpha"
                          : d->pid == mo->beta  ? "beta"
                                                : "?";
        printf("monitor: %s went down: %s (reason %d%s%s)\n", who,
               tr_exit_reason_name(d->reason), d->reason, d->text[0] ? ", " : "", d->text);
        if (d->pid == mo->sup) {
            printf("monitor: the tree is down\n");
            tr_stop(cx); /* nothing left to do: tr_runtime_run returns */
        }
        break;
    }
    case TICK:
        switch (mo->step++) {
        case 0:
            job(cx, mo->alpha, "a1");
            job(cx, mo->beta, "b1");
            job(cx, mo->beta, "b2");
            break;
        case 1:
            job(cx, mo->beta, "poison");
            break;
        case 2: /* beta is back, counting from 0 again */
            job(cx, mo->alpha, "a2");
            job(cx, mo->beta, "b3");
            break;
        default:
            printf("monitor: shutting the tree down\n");
            tr_kill(cx, mo->sup, TR_EXIT_SHUTDOWN);
            return;
        }
        tr_send_after(cx, STEP, tr_self(cx), TICK, NULL, 0);
        break;
    }
}

int main(void)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    tr_runtime *rt;
    tr_pid mon = TR_PID_NONE, sup = TR_PID_NONE;
    monitor mo = {0};
    int err = tr_runtime_create(NULL, &rt);
    if (err == 0)
        err = tr_spawn(tr_runtime_ctx(rt), monitor_behaviour, &mo, sizeof mo, &mon);

    worker alpha = {"alpha", mon, 0}, beta = {"beta", mon, 0};
    tr_child_spec children[] = {
        {.actor = {.behaviour = worker_behaviour, .state = &alpha, .state_size = sizeof alpha,
                   .init = worker_init},
         .restart = TR_PERMANENT, .shutdown_ns = 100 * TR_MSEC},
        {.actor = {.behaviour = worker_behaviour, .state = &beta, .state_size = sizeof beta,
                   .init = worker_init},
         .restart = TR_PERMANENT, .shutdown_ns = 100 * TR_MSEC},
    };
    tr_supervisor_spec spec = {
        .strategy = TR_ONE_FOR_ONE,
        .max_restarts = 3,
        .period_ns = 5 * TR_SEC,
        .children = children,
        .nchildren = 2,
    };
    if (err == 0)
        err = tr_supervisor_start(tr_runtime_ctx(rt), &spec, &sup);
    if (err == 0)
        err = TR_SEND_VALUE(tr_runtime_ctx(rt), mon, START, sup);
    if (err != 0) {
        fprintf(stderr, "supervisor: %s\n", tr_strerror(err));
        return 1;
    }
    tr_runtime_run(rt);
    tr_runtime_destroy(rt);
    return 0;
}
