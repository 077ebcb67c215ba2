/* echo [port]: a TCP echo server on 127.0.0.1 (default 8080), an actor per connection. */
#include <stdio.h>
#include <stdlib.h>
#include <troupe.h>
/* Each connection's behaviour: write back whatever arrived. */
static void echo(tr_ctx *cx, void *state, const tr_msg *m)
{
    (void)state;
    if (m->type == TR_TCP_DATA)
        tr_tcp_send(cx, m->data, m->len);
}
/* What the program is made of: a listener; tr_main runs it until SIGINT or SIGTERM. */
static int start(tr_ctx *cx, int argc, char **argv)
{
    tr_tcp_listen_opts o = {.host = "127.0.0.1", .port = argc > 1 ? (uint16_t)atoi(argv[1]) : 8080,
                            .handler.actor.behaviour = echo};
    int err = tr_tcp_listen(cx, &o, NULL, &o.port);
    return err != 0 ? err : (printf("echo: listening on 127.0.0.1:%u\n", o.port), 0);
}
int main(int argc, char **argv) { return tr_main(NULL, start, argc, argv); }
