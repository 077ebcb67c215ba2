/* Step 5: an echo server. A listener on a free port of 127.0.0.1 runs one
 * actor per connection that writes back every line; a client actor made
 * with tr_tcp_connect sends a line, checks the echo, and closes everything.
 * Exits 0 if the line came back as sent. */
#include <stdio.h>
#include <string.h>
#include <troupe.h>

#define LINE "hello, echo"

static void echo(tr_ctx *cx, void *state, const tr_msg *m)
{
    (void)state;
    if (m->type == TR_TCP_LINE) { /* one line, without its "\n" */
        tr_tcp_send(cx, m->data, m->len);
        tr_tcp_send(cx, "\n", 1);
    }
}

typedef struct client {
    tr_pid listener;
    int *ok; /* main's */
} client;

static void client_behaviour(tr_ctx *cx, void *state, const tr_msg *m)
{
    client *c = state;
    switch (m->type) {
    case TR_TCP_CONNECTED:
        tr_tcp_send(cx, LINE "\n", strlen(LINE "\n"));
        break;
    case TR_TCP_LINE:
        printf("client: got back \"%.*s\"\n", (int)m->len, (const char *)m->data);
        *c->ok = m->len == strlen(LINE) && memcmp(m->data, LINE, m->len) == 0;
        tr_tcp_listener_close(cx, c->listener); /* no more connections */
        tr_tcp_close(cx);                       /* the server's side then ends too */
        break;
    case TR_TCP_CLOSED:
        printf("client: closed (%s)\n", tr_strerror(TR_PAYLOAD(m, tr_tcp_error)->reason));
        break;
    }
}

int main(void)
{
    int ok = 0;
    tr_runtime *rt;
    tr_tcp_listen_opts server = {
        .host = "127.0.0.1", .port = 0, /* 0: any free port */
        .handler = {.actor = {.behaviour = echo}, .opts = {.framing = TR_FRAME_LINE}},
    };
    client c = {.ok = &ok};
    tr_tcp_connect_opts connect = {
        .host = "127.0.0.1",
        .handler = {.actor = {.behaviour = client_behaviour, .state = &c,
                              .state_size = sizeof c},
                    .opts = {.framing = TR_FRAME_LINE}},
    };
    int err = tr_runtime_create(NULL, &rt);
    if (err == 0)
        err = tr_tcp_listen(tr_runtime_ctx(rt), &server, &c.listener, &connect.port);
    if (err == 0) {
        printf("echo: listening on 127.0.0.1:%u\n", connect.port);
        err = tr_tcp_connect(tr_runtime_ctx(rt), &connect, NULL); /* copies c */
    }
    if (err != 0) {
        fprintf(stderr, "echo: %s\n", tr_strerror(err));
        return 1;
    }
    tr_runtime_run(rt); /* the listener holds the run open until it is closed */
    tr_runtime_destroy(rt);
    return ok ? 0 : 1;
}
