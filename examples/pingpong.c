/* pingpong: two actors bounce a ball; prints round trips per second.
 *   pingpong [round-trips]   (default 10,000,000) */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <troupe.h>

enum { BALL = 1 };

typedef struct player {
    tr_pid partner;     /* set by the first ball for the ponger */
    long remaining;     /* round trips left, counted by the pinger */
    long *rounds;       /* where the pinger reports, owned by main */
} player;

static void pinger(tr_ctx *cx, void *state, const tr_msg *m)
{
    player *p = state;
    (void)m;
    if (p->remaining-- > 0) {
        tr_send(cx, p->partner, BALL, NULL, 0);
        ++*p->rounds;
    } else {
        tr_stop(cx);
    }
}

static void ponger(tr_ctx *cx, void *state, const tr_msg *m)
{
    (void)state;
    tr_send(cx, m->from, BALL, NULL, 0); /* hit it back */
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
    long n = argc > 1 ? atol(argv[1]) : 10000000;
    long rounds = 0;
    tr_runtime *rt;
    int err = tr_runtime_create(NULL, &rt);
    if (err != 0) {
        fprintf(stderr, "pingpong: %s\n", tr_strerror(err));
        return 1;
    }

    tr_pid q, p;
    tr_spawn(tr_runtime_ctx(rt), ponger, NULL, 0, &q);
    player ping = {.partner = q, .remaining = n, .rounds = &rounds};
    tr_spawn(tr_runtime_ctx(rt), pinger, &ping, sizeof ping, &p);
    tr_send(tr_runtime_ctx(rt), p, BALL, NULL, 0); /* serve */

    printf("pingpong: %ld round trips on %u threads...\n", n, tr_runtime_threads(rt));
    double t0 = now();
    tr_runtime_run(rt);
    double secs = now() - t0;

    printf("%ld round trips in %.3f s: %.0f round trips/s\n", rounds, secs, rounds / secs);
    tr_runtime_destroy(rt);
    return rounds == n ? 0 : 1;
}
