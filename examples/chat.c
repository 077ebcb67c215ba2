/* chat: a line-based chat server.
 *   chat [port]     listens on 127.0.0.1 (default 7000); join with nc 127.0.0.1 <port>;
 *                   Ctrl-C (or SIGTERM) stops it
 *
 * The protocol, one line each way:
 *   NICK <nick>  JOIN <#room>  PART <#room>  MSG <#room> <text>  PRIV <nick> <text>
 *   WHO <#room>  QUIT; answers OK ... or ERR ...; deliveries MSG, PRIV,
 *   JOINED and PARTED. Verbs are case-insensitive.
 *
 * The actors:
 *   client     one per connection, running on the connection actor: parses
 *              lines, keeps its nick and its rooms, and is the only one to
 *              write to its socket. Others send it LINE (write this) or
 *              REPLY (write this: it answers your request).
 *   directory  one: the nick table and the room-name -> room map.
 *   room       one per room, created on the first JOIN: its members; sends
 *              MSG lines to every member (the sender too) in the order it
 *              received them, JOINED and PARTED to the others; answers WHO.
 *
 * The message flow:
 *   NICK, PRIV   client -> directory -> REPLY (and PRIV's LINE to its target)
 *   JOIN, WHO    client -> directory -> room -> REPLY  (ERR no-such-room: directory)
 *   PART         client -> room -> REPLY
 *   MSG          client -> room -> LINE to every member
 * After a request the client reads no further line until the REPLY
 * (tr_tcp_pause / tr_tcp_resume), so answers come in the order asked.
 * Messages from one actor to another arrive in the order sent, so a
 * sender's MSG lines reach every member in order.
 *
 * Leaving: on QUIT or disconnect a client sends LEAVE to its rooms and BYE
 * to the directory (which frees the nick). A room that becomes empty sends
 * ROOM_EMPTY with the number of JOINs it has seen; the directory closes it
 * only if it has forwarded no JOIN since, so no JOIN goes to a closed room.
 *
 * Slow clients: a client whose unsent output would pass 1 MiB is dropped
 * (tr_tcp_abort: ERR too-slow could not get past its full queue anyway) and
 * leaves as if it had disconnected; nobody else waits for it.
 *
 * Stopping: SIGINT or SIGTERM stops the runtime. tr_runtime_destroy frees
 * every actor's state but not what the state points to, so main first
 * sends SHUTDOWN to the directory and runs again: the rooms and the clients
 * with a nick free their lists and check out, then the directory stops the
 * runtime for good.
 */
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <troupe.h>

#define NAME_LEN 32                  /* a nick, or a room after its '#' */
typedef char name[NAME_LEN + 2];     /* a nick or "#room", NUL-terminated */

enum { /* message types */
    NICK = 1, JOIN, WHO, PRIV, BYE,  /* client -> directory (JOIN, WHO go on to a room) */
    PART, LEAVE, SAY, RENAME,        /* client -> room */
    ROOM_EMPTY, ROOM_DONE, CLOSE,    /* room <-> directory */
    LINE, REPLY,                     /* -> client */
    SHUTDOWN,                        /* main -> directory -> rooms and clients */
};

/* Every message between the actors below. */
typedef struct chat_msg {
    tr_pid pid;   /* the client a room request is for; REPLY to JOIN: the room */
    uint32_t n;   /* REPLY: 1 for OK; ROOM_EMPTY: the JOINs the room has seen */
    name nick;    /* NICK, JOIN, RENAME: the client's nick; PRIV: the target */
    name room;    /* JOIN, WHO, ROOM_EMPTY; BYE: a JOIN still unanswered */
    char text[];  /* LINE, REPLY, SAY, PRIV: a whole line, "\n" included */
} chat_msg;

static const chat_msg NONE, OK = {.n = 1};

/* Sends *h followed by the printf-style text. */
__attribute__((format(printf, 5, 6)))
static int post(tr_ctx *cx, tr_pid to, uint32_t type, const chat_msg *h, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int len = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    tr_msg *m = tr_msg_alloc(type, sizeof *h + (size_t)len + 1);
    if (m == NULL)
        return TR_ENOMEM;
    memcpy(m->data, h, sizeof *h);
    va_start(ap, fmt);
    vsnprintf(((chat_msg *)m->data)->text, (size_t)len + 1, fmt, ap);
    va_end(ap);
    return tr_msg_send(cx, to, m);
}

static void set_name(name dst, const char *src)
{
    size_t n = strnlen(src, sizeof(name) - 1);
    memcpy(dst, src, n);
    dst[n] = '\0';
}

/* 1 to 32 of [A-Za-z0-9_-]. */
static bool valid_nick(const char *s)
{
    size_t n = strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-");
    return n >= 1 && n <= NAME_LEN && s[n] == '\0';
}

static bool valid_room(const char *s)
{
    return s[0] == '#' && valid_nick(s + 1);
}

/* ---- room ---------------------------------------------------------------- */

typedef struct member {
    tr_pid pid;
    name nick;
} member;

typedef struct room {
    tr_pid dir;
    name name;
    uint32_t joins;   /* JOINs seen, for the directory's closing check */
    size_t n;
    member *members;  /* freed whenever n drops to 0 */
} room;

static int by_nick(const void *a, const void *b)
{
    return strcmp(((const member *)a)->nick, ((const member *)b)->nick);
}

/* Removes a member, telling the others; false if pid is not one. */
static bool room_remove(tr_ctx *cx, room *r, tr_pid pid)
{
    size_t i = 0;
    while (i < r->n && r->members[i].pid != pid)
        i++;
    if (i == r->n)
        return false;
    member gone = r->members[i];
    r->members[i] = r->members[--r->n];
    for (size_t j = 0; j < r->n; j++)
        post(cx, r->members[j].pid, LINE, &NONE, "PARTED %s %s\n", r->name, gone.nick);
    return true;
}

static void room_actor(tr_ctx *cx, void *state, const tr_msg *m)
{
    room *r = state;
    const chat_msg *q = (const chat_msg *)m->data;
    switch (m->type) {
    case JOIN: {
        r->joins++;
        member *more = realloc(r->members, (r->n + 1) * sizeof *more);
        if (more == NULL) {
            post(cx, q->pid, REPLY, &NONE, "ERR out-of-memory\n");
            break;
        }
        r->members = more;
        for (size_t i = 0; i < r->n; i++)
            post(cx, r->members[i].pid, LINE, &NONE, "JOINED %s %s\n", r->name, q->nick);
        r->members[r->n].pid = q->pid;
        set_name(r->members[r->n++].nick, q->nick);
        post(cx, q->pid, REPLY, &(chat_msg){.n = 1, .pid = tr_self(cx)}, "OK JOIN %s\n",
             r->name);
        break;
    }
    case PART:
        room_remove(cx, r, q->pid);
        post(cx, q->pid, REPLY, &OK, "OK PART %s\n", r->name);
        break;
    case LEAVE:
        room_remove(cx, r, q->pid);
        break;
    case SAY: /* q->text is the whole MSG line: pass it on as it is */
        for (size_t i = 0; i < r->n; i++)
            tr_send(cx, r->members[i].pid, LINE, m->data, m->len);
        return;
    case RENAME:
        for (size_t i = 0; i < r->n; i++)
            if (r->members[i].pid == q->pid)
                set_name(r->members[i].nick, q->nick);
        return;
    case WHO: {
        char *line = NULL;
        size_t len;
        FILE *f = open_memstream(&line, &len);
        if (f != NULL) {
            qsort(r->members, r->n, sizeof *r->members, by_nick);
            fprintf(f, "WHO %s", r->name);
            for (size_t i = 0; i < r->n; i++)
                fprintf(f, " %s", r->members[i].nick);
            fputc('\n', f);
            fclose(f);
        }
        post(cx, q->pid, REPLY, &OK, "%s", line != NULL ? line : "ERR out-of-memory\n");
        free(line);
        return;
    }
    case CLOSE: /* empty, and no JOIN on its way: the directory forgot us */
        tr_stop(cx);
        return;
    case SHUTDOWN:
        free(r->members);
        r->members = NULL;
        tr_send(cx, r->dir, ROOM_DONE, NULL, 0);
        tr_stop(cx);
        return;
    }
    if (r->n == 0) { /* after JOIN, PART or LEAVE: maybe the last one left */
        free(r->members);
        r->members = NULL;
        chat_msg h = {.n = r->joins};
        set_name(h.room, r->name);
        tr_send(cx, r->dir, ROOM_EMPTY, &h, sizeof h);
    }
}

/* ---- directory ------------------------------------------------------------- */

typedef struct user {
    tr_pid pid;
    name nick;
} user;

typedef struct room_ref {
    tr_pid pid;
    name name;
    uint32_t joins;   /* JOINs forwarded to it */
} room_ref;

typedef struct directory {
    size_t nusers, nrooms;
    user *users;
    room_ref *rooms;
    bool closing;     /* after SHUTDOWN: */
    size_t left;      /* rooms and users that have not yet freed their memory */
} directory;

static user *user_by_nick(directory *d, const char *nick)
{
    for (size_t i = 0; i < d->nusers; i++)
        if (strcmp(d->users[i].nick, nick) == 0)
            return &d->users[i];
    return NULL;
}

static user *user_by_pid(directory *d, tr_pid pid)
{
    for (size_t i = 0; i < d->nusers; i++)
        if (d->users[i].pid == pid)
            return &d->users[i];
    return NULL;
}

static room_ref *room_by_name(directory *d, const char *name)
{
    for (size_t i = 0; i < d->nrooms; i++)
        if (strcmp(d->rooms[i].name, name) == 0)
            return &d->rooms[i];
    return NULL;
}

static room_ref *room_create(tr_ctx *cx, directory *d, const char *name)
{
    room_ref *more = realloc(d->rooms, (d->nrooms + 1) * sizeof *more);
    if (more == NULL)
        return NULL;
    d->rooms = more;
    room r = {.dir = tr_self(cx)};
    room_ref *ref = &d->rooms[d->nrooms];
    set_name(r.name, name);
    set_name(ref->name, name);
    ref->joins = 0;
    if (tr_spawn(cx, room_actor, &r, sizeof r, &ref->pid) != 0)
        return NULL;
    d->nrooms++;
    return ref;
}

static void user_set(tr_ctx *cx, directory *d, tr_pid pid, const char *nick)
{
    user *u = user_by_nick(d, nick);
    if (u != NULL && u->pid != pid) {
        post(cx, pid, REPLY, &NONE, "ERR nick-taken\n");
        return;
    }
    if ((u = user_by_pid(d, pid)) == NULL) {
        user *more = realloc(d->users, (d->nusers + 1) * sizeof *more);
        if (more == NULL) {
            post(cx, pid, REPLY, &NONE, "ERR out-of-memory\n");
            return;
        }
        d->users = more;
        u = &d->users[d->nusers++];
        u->pid = pid;
    }
    set_name(u->nick, nick);
    post(cx, pid, REPLY, &OK, "OK NICK %s\n", nick);
}

static bool user_remove(directory *d, tr_pid pid)
{
    user *u = user_by_pid(d, pid);
    if (u != NULL)
        *u = d->users[--d->nusers];
    return u != NULL;
}

/* SHUTDOWN: every room and every user with a nick (the only clients that
 * can hold rooms) frees its memory and answers ROOM_DONE or BYE. */
static void shut_down(tr_ctx *cx, directory *d)
{
    d->closing = true;
    for (size_t i = 0; i < d->nrooms; i++)
        tr_send(cx, d->rooms[i].pid, SHUTDOWN, NULL, 0);
    for (size_t i = 0; i < d->nusers; i++)
        tr_send(cx, d->users[i].pid, SHUTDOWN, NULL, 0);
    d->left = d->nrooms + d->nusers;
    free(d->rooms);
    d->rooms = NULL;
    d->nrooms = 0;
}

static void directory_actor(tr_ctx *cx, void *state, const tr_msg *m)
{
    directory *d = state;
    const chat_msg *q = (const chat_msg *)m->data;
    if (d->closing) { /* answer no more requests: count the last ones out */
        if (m->type == ROOM_DONE || (m->type == BYE && user_remove(d, m->from)))
            d->left--;
    } else if (m->type == NICK) {
        user_set(cx, d, m->from, q->nick);
    } else if (m->type == JOIN) {
        room_ref *r = room_by_name(d, q->room);
        if (r == NULL && (r = room_create(cx, d, q->room)) == NULL) {
            post(cx, m->from, REPLY, &NONE, "ERR out-of-memory\n");
            return;
        }
        chat_msg h = *q;
        h.pid = m->from;
        r->joins++;
        tr_send(cx, r->pid, JOIN, &h, sizeof h);
    } else if (m->type == WHO) {
        room_ref *r = room_by_name(d, q->room);
        if (r != NULL)
            tr_send(cx, r->pid, WHO, &(chat_msg){.pid = m->from}, sizeof(chat_msg));
        else
            post(cx, m->from, REPLY, &NONE, "ERR no-such-room\n");
    } else if (m->type == PRIV) {
        user *u = user_by_nick(d, q->nick);
        if (u != NULL) {
            post(cx, u->pid, LINE, &NONE, "%s", q->text);
            post(cx, m->from, REPLY, &OK, "OK PRIV %s\n", q->nick);
        } else {
            post(cx, m->from, REPLY, &NONE, "ERR no-such-nick\n");
        }
    } else if (m->type == BYE) {
        user_remove(d, m->from);
        room_ref *r = q->room[0] != '\0' ? room_by_name(d, q->room) : NULL;
        if (r != NULL) /* the JOIN it did not see answered: leave that room too */
            tr_send(cx, r->pid, LEAVE, &(chat_msg){.pid = m->from}, sizeof(chat_msg));
    } else if (m->type == ROOM_EMPTY) {
        room_ref *r = room_by_name(d, q->room);
        if (r != NULL && r->pid == m->from && r->joins == q->n) {
            tr_send(cx, r->pid, CLOSE, NULL, 0);
            *r = d->rooms[--d->nrooms];
        }
    } else if (m->type == SHUTDOWN) {
        shut_down(cx, d);
    }
    if (d->closing && d->left == 0) {
        free(d->users);
        d->users = NULL;
        d->nusers = 0;
        tr_runtime_stop(tr_ctx_runtime(cx));
    }
}

/* ---- client (one per connection) ------------------------------------------ */

typedef struct joined {
    tr_pid pid;
    name name;
} joined;

typedef struct client {
    tr_pid dir;
    name nick;        /* "" until a NICK is accepted */
    uint32_t pending; /* the request awaiting its REPLY (input paused), or 0 */
    name arg;         /* its nick or room */
    size_t n;
    joined *rooms;    /* the rooms it is in (with room for one more JOIN) */
} client;

/* Writes to the socket; a client too slow to read its output is dropped. */
static void write_line(tr_ctx *cx, const char *line)
{
    if (tr_tcp_send(cx, line, strlen(line)) == TR_ENOBUFS)
        tr_tcp_abort(cx); /* TR_TCP_CLOSED follows: leave as on a disconnect */
}

static int room_index(const client *c, const char *room)
{
    for (size_t i = 0; i < c->n; i++)
        if (strcmp(c->rooms[i].name, room) == 0)
            return (int)i;
    return -1;
}

/* A request was sent (err == 0): read no further line until its REPLY. */
static void await(tr_ctx *cx, client *c, int err, uint32_t type, const char *arg)
{
    if (err != 0) {
        write_line(cx, "ERR out-of-memory\n");
        return;
    }
    c->pending = type;
    set_name(c->arg, arg);
    tr_tcp_pause(cx);
}

static void leave_all(tr_ctx *cx, client *c)
{
    chat_msg h = {.pid = tr_self(cx)};
    for (size_t i = 0; i < c->n; i++)
        tr_send(cx, c->rooms[i].pid, LEAVE, &h, sizeof h);
    free(c->rooms);
    c->rooms = NULL;
    c->n = 0;
}

/* Cuts the first word off *s and returns it; *s is left at the rest. */
static char *word(char **s)
{
    char *w = *s, *space = strchr(w, ' ');
    *s = space != NULL ? space + 1 : w + strlen(w);
    if (space != NULL)
        *space = '\0';
    return w;
}

static const char *const verbs[] = {"QUIT", "NICK", "JOIN", "PART", "MSG", "PRIV", "WHO"};
enum { V_QUIT, V_NICK, V_JOIN, V_PART, V_MSG, V_PRIV, V_WHO, V_COUNT };

static void on_line(tr_ctx *cx, client *c, const char *data, size_t len)
{
    char buf[4096], *rest = buf; /* a line is shorter than max_line */
    if (len >= sizeof buf)
        len = sizeof buf - 1;
    memcpy(buf, data, len);
    buf[len] = '\0';
    const char *verb = word(&rest);
    int v = 0;
    while (v < V_COUNT && strcasecmp(verb, verbs[v]) != 0)
        v++;
    chat_msg h = {.pid = tr_self(cx)};
    int i;
    if (v == V_COUNT) {
        write_line(cx, "ERR unknown-command\n");
    } else if (v != V_QUIT && v != V_NICK && c->nick[0] == '\0') {
        write_line(cx, "ERR no-nick\n");
    } else if (v == V_QUIT) {
        leave_all(cx, c);
        write_line(cx, "OK QUIT\n");
        tr_tcp_close(cx);
    } else if (v == V_NICK) {
        if (!valid_nick(rest)) {
            write_line(cx, "ERR bad-nick\n");
            return;
        }
        set_name(h.nick, rest);
        await(cx, c, tr_send(cx, c->dir, NICK, &h, sizeof h), NICK, rest);
    } else if (v == V_JOIN) {
        joined *more;
        if (!valid_room(rest)) {
            write_line(cx, "ERR bad-room\n");
        } else if (room_index(c, rest) >= 0) { /* already in */
            char ok[sizeof(name) + 16];
            snprintf(ok, sizeof ok, "OK JOIN %s\n", rest);
            write_line(cx, ok);
        } else if ((more = realloc(c->rooms, (c->n + 1) * sizeof *more)) == NULL) {
            write_line(cx, "ERR out-of-memory\n");
        } else {
            c->rooms = more;
            set_name(h.nick, c->nick);
            set_name(h.room, rest);
            await(cx, c, tr_send(cx, c->dir, JOIN, &h, sizeof h), JOIN, rest);
        }
    } else if (v == V_PART) {
        if ((i = room_index(c, rest)) < 0) {
            write_line(cx, "ERR not-member\n");
            return;
        }
        tr_pid room = c->rooms[i].pid;
        c->rooms[i] = c->rooms[--c->n];
        await(cx, c, tr_send(cx, room, PART, &h, sizeof h), PART, rest);
    } else if (v == V_MSG) {
        const char *room = word(&rest);
        if ((i = room_index(c, room)) < 0)
            write_line(cx, "ERR not-member\n");
        else
            post(cx, c->rooms[i].pid, SAY, &h, "MSG %s %s %s\n", room, c->nick, rest);
    } else if (v == V_PRIV) {
        const char *to = word(&rest);
        set_name(h.nick, to);
        await(cx, c, post(cx, c->dir, PRIV, &h, "PRIV %s %s\n", c->nick, rest), PRIV, to);
    } else { /* V_WHO */
        set_name(h.room, rest);
        await(cx, c, tr_send(cx, c->dir, WHO, &h, sizeof h), WHO, rest);
    }
}

/* The answer to the pending request. */
static void on_reply(tr_ctx *cx, client *c, const chat_msg *r)
{
    if (r->n == 1 && c->pending == NICK) {
        set_name(c->nick, c->arg);
        chat_msg h = {.pid = tr_self(cx)};
        set_name(h.nick, c->nick);
        for (size_t i = 0; i < c->n; i++)
            tr_send(cx, c->rooms[i].pid, RENAME, &h, sizeof h);
    } else if (r->n == 1 && c->pending == JOIN) {
        c->rooms[c->n].pid = r->pid; /* its place was made before asking */
        set_name(c->rooms[c->n++].name, c->arg);
    }
    write_line(cx, r->text);
    c->pending = 0;
    tr_tcp_resume(cx);
}

static void client_actor(tr_ctx *cx, void *state, const tr_msg *m)
{
    client *c = state;
    switch (m->type) {
    case TR_TCP_CONNECTED:
        write_line(cx, "HELLO troupe-chat\n");
        break;
    case TR_TCP_LINE:
        on_line(cx, c, (const char *)m->data, m->len);
        break;
    case TR_TCP_ERROR:
        if (((const tr_tcp_error *)m->data)->reason == TR_ELINETOOLONG) {
            write_line(cx, "ERR line-too-long\n");
            tr_tcp_close(cx);
        }
        break;
    case TR_TCP_CLOSED: { /* QUIT, disconnect, drop or shutdown: the last message */
        chat_msg h = {0};
        if (c->pending == JOIN)
            set_name(h.room, c->arg);
        leave_all(cx, c);
        tr_send(cx, c->dir, BYE, &h, sizeof h);
        break;
    }
    case LINE:
        write_line(cx, ((const chat_msg *)m->data)->text);
        break;
    case REPLY:
        on_reply(cx, c, (const chat_msg *)m->data);
        break;
    case SHUTDOWN:
        tr_tcp_abort(cx);
        break;
    }
}

int main(int argc, char **argv)
{
    client proto = {0}; /* every connection starts with a copy */
    directory dir = {0};
    tr_tcp_listen_opts opts = {
        .host = "127.0.0.1",
        .port = argc > 1 ? (uint16_t)atoi(argv[1]) : 7000,
        .handler = {.behaviour = client_actor, .state = &proto, .state_size = sizeof proto,
                    .opts = {.framing = TR_FRAME_LINE, .max_line = 4096,
                             .max_output = (size_t)1 << 20}},
    };
    tr_runtime *rt;
    int err = tr_runtime_create(NULL, &rt);
    if (err == 0)
        err = tr_runtime_spawn(rt, directory_actor, &dir, sizeof dir, &proto.dir);
    if (err == 0) /* signals before the listener: their actors get the first turns */
        err = tr_runtime_stop_on_signal(rt, SIGINT);
    if (err == 0)
        err = tr_runtime_stop_on_signal(rt, SIGTERM);
    if (err == 0)
        err = tr_runtime_tcp_listen(rt, &opts, NULL, &opts.port);
    if (err != 0) {
        fprintf(stderr, "chat: %s\n", tr_strerror(err));
        return 1;
    }
    printf("chat: listening on 127.0.0.1:%u; join with: nc 127.0.0.1 %u\n", opts.port,
           opts.port);
    fflush(stdout);
    tr_runtime_run(rt); /* until SIGINT or SIGTERM */
    if (tr_runtime_send(rt, proto.dir, SHUTDOWN, NULL, 0) == 0)
        tr_runtime_run(rt); /* until the directory has seen everything freed */
    tr_runtime_destroy(rt);
    return 0;
}
