/* Step 3: timers. A ticker starts a periodic timer in its init, counts
 * five ticks, cancels it, and stops on a one-shot message sent later.
 * Exits 0 if the cancel took effect and the run then ended by itself. */
#include <stdio.h>
#include <troupe.h>

enum { TICK = 1, GOODBYE };

typedef struct ticker {
    tr_pid timer;   /* the periodic timer: a timer is an actor with a pid */
    int ticks;
    int cancelled;  /* what tr_timer_cancel returned */
    int *ok;        /* main's */
} ticker;

static int ticker_init(tr_ctx *cx, void *state, tr_pid spawner)
{
    ticker *t = state;
    tr_timer_spec every = {.delay_ns = 20 * TR_MSEC, .period_ns = 20 * TR_MSEC,
                           .to = tr_self(cx), .type = TICK};
    (void)spawner;
    return tr_timer_start(cx, &every, &t->timer);
}

static void ticker_behaviour(tr_ctx *cx, void *state, const tr_msg *m)
{
    ticker *t = state;
    if (m->type == TICK) {
        printf("ticker: tick %d\n", ++t->ticks);
        if (t->ticks == 5) {
            t->cancelled = tr_timer_cancel(cx, t->timer); /* 1: no TICK sent after this */
            printf("ticker: cancel returned %d\n", t->cancelled);
            tr_send_after(cx, 100 * TR_MSEC, tr_self(cx), GOODBYE, NULL, 0);
        }
    } else if (m->type == GOODBYE) {
        printf("ticker: goodbye after %d ticks\n", t->ticks);
        *t->ok = t->cancelled == 1;
        tr_stop(cx);
    }
}

int main(void)
{
    int ok = 0;
    ticker t = {.ok = &ok};
    tr_actor_spec spec = {.behaviour = ticker_behaviour, .state = &t, .state_size = sizeof t,
                          .init = ticker_init};
    tr_runtime *rt;
    int err = tr_runtime_create(NULL, &rt);
    if (err == 0)
        err = tr_spawn_spec(tr_runtime_ctx(rt), &spec, NULL);
    if (err != 0) {
        fprintf(stderr, "timers: %s\n", tr_strerror(err));
        return 1;
    }
    tr_runtime_run(rt); /* a pending timer keeps the run going: a live one, for ever */
    tr_runtime_destroy(rt);
    return ok ? 0 : 1;
}
