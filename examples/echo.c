/* echo: a TCP echo server; every connection is an actor.
 *   echo [port]     listens on 127.0.0.1 (default 8080); Ctrl-C stops it */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <troupe.h>

static void echo(tr_ctx *cx, void *state, const tr_msg *m)
{
    (void)state;
    if (m->type == TR_TCP_DATA)
        tr_tcp_send(cx, m->data, m->len); /* write back whatever arrived */
}

int main(int argc, char **argv)
{
    tr_tcp_listen_opts opts = {
        .host = "127.0.0.1",
        .port = argc > 1 ? (uint16_t)atoi(argv[1]) : 8080,
        .handler = {.actor = {.behaviour = echo}},
    };
    tr_runtime *rt;
    tr_fd_limit_raise(NULL); /* past 1,024 descriptors: one per client */
    int err = tr_runtime_create(NULL, &rt);
    if (err == 0)
        err = tr_tcp_listen(tr_runtime_ctx(rt), &opts, NULL, &opts.port);
    if (err == 0)
        err = tr_runtime_stop_on_signal(rt, SIGINT);
    if (err == 0)
        err = tr_runtime_stop_on_signal(rt, SIGTERM);
    if (err != 0) {
        fprintf(stderr, "echo: %s\n", tr_strerror(err));
        return 1;
    }
    printf("echo: listening on 127.0.0.1:%u\n", opts.port);
    fflush(stdout);
    tr_runtime_run(rt);
    tr_runtime_destroy(rt);
    return 0;
}
