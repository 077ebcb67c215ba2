/* Step 2: request/reply. A squarer answers SQUARE asks with tr_reply; an
 * actor asks it with tr_ask, main asks it with tr_call. Exits 0 if every
 * answer is the expected one. */
#include <stdio.h>
#include <troupe.h>

enum { SQUARE = 1, IGNORED };

static void squarer(tr_ctx *cx, void *state, const tr_msg *m)
{
    const long *n = TR_PAYLOAD(m, long);
    (void)state;
    if (m->type == SQUARE && n != NULL) {
        long sq = *n * *n;
        tr_reply(cx, m, &sq, sizeof sq); /* exactly one answer per ask */
    } /* returning without tr_reply fails the ask: TR_ASK_UNANSWERED */
}

typedef struct asker {
    tr_pid squarer;
    int *answers; /* main's: how many answers were right */
} asker;

/* Runs in the asker's first turn, before any message. */
static int asker_init(tr_ctx *cx, void *state, tr_pid spawner)
{
    asker *a = state;
    long seven = 7;
    (void)spawner;
    int err = tr_ask(cx, a->squarer, SQUARE, &seven, sizeof seven, 10 * TR_SEC, NULL);
    if (err == 0)
        err = tr_ask(cx, a->squarer, IGNORED, NULL, 0, 10 * TR_SEC, NULL);
    return err; /* non-zero: the actor ends with it as its exit reason */
}

static void asker_behaviour(tr_ctx *cx, void *state, const tr_msg *m)
{
    asker *a = state;
    const long *sq = TR_PAYLOAD(m, long);
    const tr_ask_failure *f = TR_PAYLOAD(m, tr_ask_failure);
    if (m->type == TR_REPLY && sq != NULL) {
        printf("asker: 7 squared is %ld\n", *sq);
        *a->answers += *sq == 49;
    } else if (m->type == TR_ASK_FAILED && f != NULL) {
        printf("asker: ask %llu failed: %s\n", (unsigned long long)f->ref,
               f->why == TR_ASK_UNANSWERED ? "unanswered" : "timeout or gone");
        *a->answers += f->why == TR_ASK_UNANSWERED;
    }
    (void)cx;
}

int main(void)
{
    int answers = 0;
    tr_runtime *rt;
    tr_pid sq = TR_PID_NONE;
    tr_msg *reply = NULL;
    long twelve = 12;
    if (tr_runtime_create(NULL, &rt) != 0)
        return 1;
    int err = tr_spawn(tr_runtime_ctx(rt), squarer, NULL, 0, &sq);
    asker a = {.squarer = sq, .answers = &answers};
    tr_actor_spec spec = {.behaviour = asker_behaviour, .state = &a, .state_size = sizeof a,
                          .init = asker_init};
    if (err == 0)
        err = tr_spawn_spec(tr_runtime_ctx(rt), &spec, NULL);
    tr_runtime_hold(rt); /* no run may end before the call below is made */
    if (err == 0)
        err = tr_runtime_start(rt); /* workers in the background; main goes on */
    if (err == 0)
        err = tr_call(rt, sq, SQUARE, &twelve, sizeof twelve, 10 * TR_SEC, &reply);
    const long *r = TR_PAYLOAD(reply, long);
    if (r != NULL)
        printf("main: 12 squared is %ld\n", *r);
    int called = r != NULL && *r == 144; /* main's own: the asker writes answers */
    tr_msg_free(reply); /* the reply is main's to free */
    tr_runtime_release(rt);
    tr_runtime_join(rt); /* the run ends once nothing is left to do */
    tr_runtime_destroy(rt);
    if (err != 0)
        fprintf(stderr, "request-reply: %s\n", tr_strerror(err));
    return called && answers == 2 ? 0 : 1; /* answers: read once the run is over */
}
