/* dist-echo NAME COOKIE: node NAME@localhost of an Erlang cluster with an
 * actor registered as `echo` that sends every message back to its sender
 * unchanged. From erl -sname x -setcookie COOKIE:
 *     {echo, 'NAME@localhost'} ! {self(), hello}, flush().
 * Runs until SIGINT or SIGTERM. */
#include <signal.h>
#include <stdio.h>
#include <troupe.h>

static void echo(tr_ctx *cx, void *state, const tr_msg *m)
{
    (void)state;
    if (m->from != TR_PID_NONE) /* a term goes back as the same term */
        tr_send(cx, m->from, m->type, m->data, m->len);
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: dist-echo NAME COOKIE\n");
        return 2;
    }
    char name[256];
    snprintf(name, sizeof name, "%s@localhost", argv[1]);
    tr_runtime *rt;
    int err = tr_runtime_create(NULL, &rt);
    if (err != 0) {
        fprintf(stderr, "dist-echo: %s\n", tr_strerror(err));
        return 1;
    }
    tr_ctx *cx = tr_runtime_ctx(rt);
    tr_node_opts o = {.name = name, .cookie = argv[2]};
    tr_actor_spec spec = {.behaviour = echo, .name = "echo"};
    if ((err = tr_runtime_stop_on_signal(rt, SIGINT)) == 0 &&
        (err = tr_runtime_stop_on_signal(rt, SIGTERM)) == 0 &&
        (err = tr_node_start(cx, &o)) == 0) {
        if ((err = tr_spawn_spec(cx, &spec, NULL)) == 0) {
            printf("dist-echo: %s ready\n", name);
            fflush(stdout);
            err = tr_runtime_run(rt);
            err = err == 1 ? 0 : err; /* 1: stopped by the signal */
        }
        tr_node_stop(cx); /* unregisters from EPMD */
    }
    if (err != 0)
        fprintf(stderr, "dist-echo: %s\n", tr_strerror(err));
    tr_runtime_destroy(rt);
    return err != 0;
}
