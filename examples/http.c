/* http [port]: a hello-world HTTP/1.1 server on 127.0.0.1 (default 8082), an actor per connection. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <troupe.h>
/* Each connection's behaviour: one TR_HTTP_REQUEST per request, answered in order. */
static void serve(tr_ctx *cx, void *state, const tr_msg *m)
{
    (void)state;
    tr_http_request req;
    if (tr_http_request_view(m, &req) != 0)
        return; /* not a request: connection events and the like */
    if (strcmp(req.target, "/") != 0) {
        tr_http_respond(cx, 404, "Content-Type: text/plain\r\n", "not found\n", 10);
        return;
    }
    tr_http_respond(cx, 200, "Content-Type: text/plain\r\n", "hello, world\n", 13);
}
/* A listener with HTTP framing; tr_main runs it until SIGINT or SIGTERM. */
static int start(tr_ctx *cx, int argc, char **argv)
{
    tr_tcp_listen_opts o = {.host = "127.0.0.1", .port = argc > 1 ? (uint16_t)atoi(argv[1]) : 8082,
                            .handler = {.actor.behaviour = serve, .opts.framing = TR_FRAME_HTTP}};
    int err = tr_tcp_listen(cx, &o, NULL, &o.port);
    return err != 0 ? err : (printf("http: listening on 127.0.0.1:%u\n", o.port), 0);
}
int main(int argc, char **argv) { return tr_main(NULL, start, argc, argv); }
