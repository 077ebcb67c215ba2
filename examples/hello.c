/* hello: the smallest complete troupe program. One actor greets whoever
 * writes to it; the runtime returns once nothing is left to do. */
#include <stdio.h>
#include <troupe.h>

enum { GREET = 1 };

static void greeter(tr_ctx *cx, void *state, const tr_msg *m)
{
    int *greeted = state;
    if (m->type == GREET)
        printf("hello, %.*s! (greeting #%d)\n", (int)m->len, (const char *)m->data, ++*greeted);
    (void)cx;
}

int main(void)
{
    tr_runtime *rt;
    tr_pid greeter_pid;
    int greeted = 0;

    tr_runtime_create(NULL, &rt);
    tr_spawn(tr_runtime_ctx(rt), greeter, &greeted, sizeof greeted, &greeter_pid);
    tr_send(tr_runtime_ctx(rt), greeter_pid, GREET, "world", 5);
    tr_send(tr_runtime_ctx(rt), greeter_pid, GREET, "troupe", 6);
    tr_runtime_run(rt);
    tr_runtime_destroy(rt);
    return 0;
}
