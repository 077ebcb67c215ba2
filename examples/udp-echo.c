/* udp-echo: a UDP echo server; the socket is an actor.
 *   udp-echo [port]     listens on 127.0.0.1 (default 8081); Ctrl-C stops it */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <troupe.h>

static void echo(tr_ctx *cx, void *state, const tr_msg *m)
{
    (void)state;
    if (m->type == TR_UDP_DATAGRAM) { /* send every datagram back to its sender */
        const tr_udp_datagram *d = TR_PAYLOAD_HEAD(m, tr_udp_datagram);
        tr_udp_send(cx, (const struct sockaddr *)&d->from, d->from_len, d->data, d->len);
    }
}

int main(int argc, char **argv)
{
    tr_udp_opts opts = {
        .host = "127.0.0.1",
        .port = argc > 1 ? (uint16_t)atoi(argv[1]) : 8081,
        .actor = {.behaviour = echo},
    };
    tr_runtime *rt;
    int err = tr_runtime_create(NULL, &rt);
    if (err == 0)
        err = tr_udp_open(tr_runtime_ctx(rt), &opts, NULL, &opts.port);
    if (err == 0)
        err = tr_runtime_stop_on_signal(rt, SIGINT);
    if (err == 0)
        err = tr_runtime_stop_on_signal(rt, SIGTERM);
    if (err != 0) {
        fprintf(stderr, "udp-echo: %s\n", tr_strerror(err));
        return 1;
    }
    printf("udp-echo: listening on 127.0.0.1:%u\n", opts.port);
    fflush(stdout);
    tr_runtime_run(rt);
    tr_runtime_destroy(rt);
    return 0;
}
