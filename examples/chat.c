/* chat: a line-based chat server.
 *   chat [port] [--metrics PORT]   listens on 127.0.0.1 (default 7000; join with nc
 *     127.0.0.1 <port>; Ctrl-C or SIGTERM stops it), and with --metrics serves /metrics
 *     and /actors on 127.0.0.1:PORT (for Prometheus or `troupe-top 127.0.0.1:PORT`)
 *
 * The protocol, one line each way:
 *   NICK <nick>  JOIN <#room>  PART <#room>  MSG <#room> <text>  PRIV <nick> <text>
 *   WHO <#room>  QUIT; answers OK ... or ERR ...; deliveries MSG, PRIV,
 *   JOINED and PARTED. Verbs are case-insensitive. The whole protocol, its
 *   errors and limits: docs/chat-protocol.md.
 *
 * Limits: a client may be in MAX_ROOMS rooms at once (ERR too-many-rooms
 * past that), so that no one client can take the rooms (actors and names
 * every client shares) for itself. A request the server cannot carry out
 * is answered with what ran out (failure()): ERR out-of-memory only then.
 *
 * The actors:
 *   client     one per connection, running on the connection actor: parses
 *              lines, keeps its nick and its rooms, and is the only one to
 *              write to its socket. Others send it LINE (write this).
 *   directory  one, registered as "chat:directory": the nick table.
 *   room       one per room, registered under the name "room:#name" while
 *              it lives: its members; sends MSG lines to every member (the
 *              sender too) in the order it received them, JOINED and PARTED
 *              to the others; answers WHO. It ends when its last member
 *              leaves, and its name goes with it.
 *
 * Requests are asks (troupe/ask.h): exactly one answer comes, a TR_REPLY
 * with the line to write or a TR_ASK_FAILED. Until it comes the client
 * reads no further line (tr_tcp_pause), so answers come in the order asked.
 *   NICK, PRIV   client -> directory (and PRIV's LINE to its target)
 *   JOIN, WHO    client -> room, found with tr_whereis. No such room: WHO
 *                answers ERR no-such-room itself; JOIN creates the room and
 *                registers it, or, if another JOIN registered one first
 *                (TR_EEXIST), drops its own and asks that one. A room whose
 *                last member has just left may end before it sees the ask:
 *                then it fails (TR_ASK_GONE) and the client looks again.
 *   PART         client -> room
 *   MSG          client -> room -> LINE to every member, in the order sent
 *                (messages from one actor to another keep their order)
 *
 * Monitors: a room monitors each member from its JOIN to its PART; when a
 * client ends, however it ends (QUIT, disconnect, dropped as too slow),
 * every room it is in gets TR_DOWN, removes it and sends PARTED to the
 * others, so the client itself sends nothing on leaving (tr_demonitor on
 * PART: nobody is PARTED twice). The directory monitors every client with
 * a nick, and frees the nick on its TR_DOWN.
 *
 * Slow clients: one whose unsent output would pass 1 MiB is dropped with
 * tr_tcp_abort (ERR too-slow could not get past its full queue) and leaves
 * as if it had disconnected; nobody else waits for it.
 *
 * Stopping: SIGINT or SIGTERM stops the runtime. Rooms and the directory
 * free their lists in their spec's on_stop, which tr_runtime_destroy runs
 * too; a client frees its room list when its connection closes, so main
 * then sends SHUTDOWN to the directory and runs again: it drops every
 * client with a nick and stops the runtime once all of them have ended.
 */
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <troupe.h>

#define NAME_LEN 32                  /* a nick, or a room after its '#' */
#define MAX_ROOMS 64                 /* rooms one client may be in at once */
typedef char name[NAME_LEN + 2];     /* a nick or "#room", NUL-terminated */

enum { /* message types; every payload is a NUL-terminated string */
    NICK = 1, PRIV,                  /* client -> directory: the nick; "<nick> <text>" */
    JOIN, WHO, PART, SAY, RENAME,    /* client -> room: the nick (JOIN, RENAME); a line */
    LINE,                            /* -> client: a line to write, "\n" included */
    SHUTDOWN,                        /* main -> directory -> clients */
};

/* The answer to a request that failed with err: says what ran out. */
static const char *failure(int err)
{
    switch (err) {
    case TR_ENOMEM: return "ERR out-of-memory\n";
    case TR_EAGAIN: return "ERR server-full\n"; /* no actor slot left for a room */
    default: return "ERR server-error\n";
    }
}

/* Sends the printf-style text, NUL included, as a message of `type`. */
__attribute__((format(printf, 4, 5)))
static int post(tr_ctx *cx, tr_pid to, uint32_t type, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int len = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    tr_msg *m = tr_msg_alloc(type, (size_t)len + 1);
    if (m == NULL)
        return TR_ENOMEM;
    va_start(ap, fmt);
    vsnprintf((char *)m->data, (size_t)len + 1, fmt, ap);
    va_end(ap);
    return tr_msg_send(cx, to, m);
}

/* Answers the ask being handled with the printf-style line, a short one
 * (WHO answers its own). */
__attribute__((format(printf, 3, 4)))
static void answer(tr_ctx *cx, const tr_msg *ask, const char *fmt, ...)
{
    char line[64];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    tr_reply(cx, ask, line, strlen(line) + 1);
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

/* ---- rosters: a room's members, the directory's users, a client's rooms --- */

typedef struct entry {
    tr_pid pid;
    uint64_t ref;     /* a room's monitor on its member */
    name name;        /* the member's or user's nick, or the room's name */
} entry;

/* A room's and the directory's state begin with a roster, so that one
 * on_stop (roster_free) serves both. */
typedef struct roster {
    size_t n;
    entry *e;
} roster;

static entry *find_pid(roster *r, tr_pid pid)
{
    for (size_t i = 0; i < r->n; i++)
        if (r->e[i].pid == pid)
            return &r->e[i];
    return NULL;
}

static entry *find_name(roster *r, const char *s)
{
    for (size_t i = 0; i < r->n; i++)
        if (strcmp(r->e[i].name, s) == 0)
            return &r->e[i];
    return NULL;
}

/* Room for one more entry (made before asking, so that the answer cannot
 * fail for memory); false when there is none. */
static bool make_room(roster *r)
{
    entry *more = realloc(r->e, (r->n + 1) * sizeof *more);
    if (more != NULL)
        r->e = more;
    return more != NULL;
}

/* Adds an entry in the room make_room made. */
static void add(roster *r, tr_pid pid, uint64_t ref, const char *s)
{
    r->e[r->n] = (entry){.pid = pid, .ref = ref};
    set_name(r->e[r->n++].name, s);
}

/* Removes *e: the last entry takes its place. */
static void drop(roster *r, entry *e)
{
    *e = r->e[--r->n];
}

/* The on_stop of rooms and the directory: however one ends. */
static void roster_free(void *state, int reason)
{
    (void)reason;
    free(((roster *)state)->e);
}

/* ---- room ---------------------------------------------------------------- */

typedef struct room {
    roster m;         /* its members (first: roster_free) */
    name name;
} room;
_Static_assert(offsetof(room, m) == 0, "roster_free takes a room as its roster");

static int by_name(const void *a, const void *b)
{
    return strcmp(((const entry *)a)->name, ((const entry *)b)->name);
}

/* Removes a member, if pid is one, telling the others. */
static void room_remove(tr_ctx *cx, room *r, tr_pid pid)
{
    entry *e = find_pid(&r->m, pid);
    if (e == NULL)
        return;
    entry gone = *e;
    drop(&r->m, e);
    for (size_t j = 0; j < r->m.n; j++)
        post(cx, r->m.e[j].pid, LINE, "PARTED %s %s\n", r->name, gone.name);
}

static void room_actor(tr_ctx *cx, void *state, const tr_msg *m)
{
    room *r = state;
    const char *text = (const char *)m->data;
    switch (m->type) {
    case JOIN: {
        uint64_t ref = 0;
        int err = make_room(&r->m) ? 0 : TR_ENOMEM;
        /* A client that has already ended gives TR_DOWN at once. */
        if (err != 0 || (err = tr_monitor(cx, m->from, &ref)) != 0) {
            answer(cx, m, "%s", failure(err));
            break;
        }
        for (size_t i = 0; i < r->m.n; i++)
            post(cx, r->m.e[i].pid, LINE, "JOINED %s %s\n", r->name, text);
        add(&r->m, m->from, ref, text);
        answer(cx, m, "OK JOIN %s\n", r->name);
        return;
    }
    case PART: {
        entry *e = find_pid(&r->m, m->from);
        if (e != NULL)
            tr_demonitor(cx, e->ref); /* no TR_DOWN for it after this */
        room_remove(cx, r, m->from);
        answer(cx, m, "OK PART %s\n", r->name);
        break;
    }
    case TR_DOWN: /* a member ended without PART */
        room_remove(cx, r, ((const tr_down_info *)m->data)->pid);
        break;
    case SAY: /* the whole MSG line: pass it on as it is */
        for (size_t i = 0; i < r->m.n; i++)
            tr_send(cx, r->m.e[i].pid, LINE, m->data, m->len);
        return;
    case RENAME: {
        entry *e = find_pid(&r->m, m->from);
        if (e != NULL)
            set_name(e->name, text);
        return;
    }
    case WHO: {
        char *line = NULL;
        size_t len;
        FILE *f = r->m.n > 0 ? open_memstream(&line, &len) : NULL;
        if (f != NULL) {
            qsort(r->m.e, r->m.n, sizeof *r->m.e, by_name);
            fprintf(f, "WHO %s", r->name);
            for (size_t i = 0; i < r->m.n; i++)
                fprintf(f, " %s", r->m.e[i].name);
            fputc('\n', f);
            fclose(f);
        }
        /* No member yet: the JOIN that created it has not reached it. */
        const char *out = line ? line : r->m.n ? "ERR out-of-memory\n" : "ERR no-such-room\n";
        tr_reply(cx, m, out, strlen(out) + 1);
        free(line);
        return;
    }
    }
    if (r->m.n == 0) /* after a JOIN that failed, a PART or a TR_DOWN: the last one left */
        tr_stop(cx);
}

/* The room named room_name (TR_PID_NONE if none), created and registered
 * if `create` and there is none. Spawning under a name is atomic: of two
 * clients creating a room at once, one finds the name taken (nothing was
 * started) and takes the other's. */
static int room_get(tr_ctx *cx, const char *room_name, bool create, tr_pid *pid)
{
    tr_runtime *rt = tr_ctx_runtime(cx);
    char key[TR_NAME_MAX]; /* "room:#name": at most 38 bytes */
    room r = {0};
    int err;
    snprintf(key, sizeof key, "room:%s", room_name);
    set_name(r.name, room_name);
    tr_actor_spec spec = {.behaviour = room_actor, .state = &r, .state_size = sizeof r,
                          .on_stop = roster_free, .name = key};
    while ((*pid = tr_whereis(rt, key)) == TR_PID_NONE && create)
        if ((err = tr_spawn_spec(cx, &spec, pid)) != TR_EEXIST)
            return err;
    return 0;
}

/* ---- directory ------------------------------------------------------------- */

typedef struct directory {
    roster users;     /* every client with a nick (first: roster_free) */
    bool closing;     /* after SHUTDOWN: stop the runtime once no user is left */
} directory;
_Static_assert(offsetof(directory, users) == 0, "roster_free takes it as its roster");

static void user_set(tr_ctx *cx, directory *d, const tr_msg *m, const char *nick)
{
    entry *u = find_name(&d->users, nick);
    if (u != NULL && u->pid != m->from) {
        answer(cx, m, "ERR nick-taken\n");
        return;
    }
    if ((u = find_pid(&d->users, m->from)) != NULL) {
        set_name(u->name, nick);
    } else { /* a new user: watch it to free its nick */
        if (!make_room(&d->users) || tr_monitor(cx, m->from, NULL) != 0) {
            answer(cx, m, "ERR out-of-memory\n");
            return;
        }
        add(&d->users, m->from, 0, nick);
    }
    answer(cx, m, "OK NICK %s\n", nick);
}

/* PRIV "<nick> <text>": the line goes to nick, from the asker's nick. */
static void user_priv(tr_ctx *cx, directory *d, const tr_msg *m, const char *text)
{
    const char *space = strchr(text, ' ');
    name to;
    snprintf(to, sizeof to, "%.*s", (int)(space != NULL ? space - text : (int)strlen(text)), text);
    entry *u = find_name(&d->users, to), *from = find_pid(&d->users, m->from);
    if (u != NULL && from != NULL) {
        post(cx, u->pid, LINE, "PRIV %s %s\n", from->name, space != NULL ? space + 1 : "");
        answer(cx, m, "OK PRIV %s\n", to);
    } else {
        answer(cx, m, "ERR no-such-nick\n");
    }
}

static void directory_actor(tr_ctx *cx, void *state, const tr_msg *m)
{
    directory *d = state;
    if (m->type == TR_DOWN) { /* a user ended: its nick is free */
        entry *u = find_pid(&d->users, ((const tr_down_info *)m->data)->pid);
        if (u != NULL)
            drop(&d->users, u);
    } else if (d->closing) {
        /* answer no more requests (they fail): only count the last users out */
    } else if (m->type == NICK) {
        user_set(cx, d, m, (const char *)m->data);
    } else if (m->type == PRIV) {
        user_priv(cx, d, m, (const char *)m->data);
    } else if (m->type == SHUTDOWN) {
        d->closing = true;
        for (size_t i = 0; i < d->users.n; i++)
            tr_send(cx, d->users.e[i].pid, SHUTDOWN, NULL, 0);
    }
    if (d->closing && d->users.n == 0)
        tr_runtime_shutdown(tr_ctx_runtime(cx));
}

/* ---- client (one per connection) ------------------------------------------ */

typedef struct client {
    tr_pid dir;
    name nick;        /* "" until a NICK is accepted */
    uint32_t pending; /* the request awaiting its answer (input paused), or 0 */
    name arg;         /* its nick or room */
    roster rooms;     /* the rooms it is in (with room for one more JOIN) */
} client;

/* Writes to the socket; a client too slow to read its output is dropped. */
static void write_line(tr_ctx *cx, const char *line)
{
    if (tr_tcp_send(cx, line, strlen(line)) == TR_ENOBUFS)
        tr_tcp_abort(cx); /* TR_TCP_CLOSED follows: leave as on a disconnect */
}

/* Writes the answer to the pending request and reads on. */
static void done(tr_ctx *cx, client *c, const char *line)
{
    c->pending = 0;
    write_line(cx, line);
    tr_tcp_resume(cx);
}

/* Asks `to` the pending request; if it cannot be asked, that is the answer. */
static void ask(tr_ctx *cx, client *c, tr_pid to, const char *text)
{
    int err = tr_ask(cx, to, c->pending, text, strlen(text) + 1, 0, NULL);
    if (err != 0)
        done(cx, c, failure(err));
}

/* Asks the room c->arg the pending JOIN (creating the room if there is
 * none) or WHO (answered here if there is none). */
static void ask_room(tr_ctx *cx, client *c)
{
    tr_pid room = TR_PID_NONE;
    int err = room_get(cx, c->arg, c->pending == JOIN, &room);
    if (err != 0 || room == TR_PID_NONE)
        done(cx, c, err != 0 ? failure(err) : "ERR no-such-room\n");
    else
        ask(cx, c, room, c->nick);
}

/* Starts request `type` about arg, a nick or a room (no further line is
 * read until done()): asks `to` with text, or for JOIN and WHO the room. */
static void request(tr_ctx *cx, client *c, uint32_t type, const char *arg, tr_pid to,
                    const char *text)
{
    c->pending = type;
    set_name(c->arg, arg);
    tr_tcp_pause(cx);
    if (type == JOIN || type == WHO)
        ask_room(cx, c);
    else
        ask(cx, c, to, text);
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
    entry *in = NULL; /* the room of a PART or MSG */
    if (v == V_COUNT) {
        write_line(cx, "ERR unknown-command\n");
    } else if (v != V_QUIT && v != V_NICK && c->nick[0] == '\0') {
        write_line(cx, "ERR no-nick\n");
    } else if (v == V_QUIT) { /* the rooms see us end, and send PARTED */
        write_line(cx, "OK QUIT\n");
        tr_tcp_close(cx);
    } else if (v == V_NICK && !valid_nick(rest)) {
        write_line(cx, "ERR bad-nick\n");
    } else if (v == V_NICK) {
        request(cx, c, NICK, rest, c->dir, rest);
    } else if (v == V_JOIN && !valid_room(rest)) {
        write_line(cx, "ERR bad-room\n");
    } else if (v == V_JOIN && find_name(&c->rooms, rest) != NULL) { /* already in */
        char ok[sizeof(name) + 16];
        snprintf(ok, sizeof ok, "OK JOIN %s\n", rest);
        write_line(cx, ok);
    } else if (v == V_JOIN && c->rooms.n >= MAX_ROOMS) {
        write_line(cx, "ERR too-many-rooms\n");
    } else if (v == V_JOIN && !make_room(&c->rooms)) {
        write_line(cx, "ERR out-of-memory\n");
    } else if (v == V_JOIN) {
        request(cx, c, JOIN, rest, TR_PID_NONE, NULL);
    } else if ((v == V_PART && (in = find_name(&c->rooms, rest)) == NULL) ||
               (v == V_MSG && (in = find_name(&c->rooms, word(&rest))) == NULL)) {
        write_line(cx, "ERR not-member\n");
    } else if (v == V_PART) {
        entry gone = *in;
        drop(&c->rooms, in);
        request(cx, c, PART, gone.name, gone.pid, "");
    } else if (v == V_MSG) {
        post(cx, in->pid, SAY, "MSG %s %s %s\n", in->name, c->nick, rest);
    } else if (v == V_PRIV) { /* "<nick> <text>": the directory finds nick */
        request(cx, c, PRIV, "", c->dir, rest);
    } else if (!valid_room(rest)) { /* V_WHO */
        write_line(cx, "ERR no-such-room\n");
    } else {
        request(cx, c, WHO, rest, TR_PID_NONE, NULL);
    }
}

/* The answer to the pending request: the line to write. */
static void on_reply(tr_ctx *cx, client *c, const tr_msg *m)
{
    const char *line = (const char *)m->data;
    bool ok = strncmp(line, "OK ", 3) == 0;
    if (ok && c->pending == NICK) {
        set_name(c->nick, c->arg);
        for (size_t i = 0; i < c->rooms.n; i++)
            tr_send(cx, c->rooms.e[i].pid, RENAME, c->nick, strlen(c->nick) + 1);
    } else if (ok && c->pending == JOIN) {
        add(&c->rooms, m->from, 0, c->arg); /* its place was made before asking */
    }
    done(cx, c, line);
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
    case TR_TCP_CLOSED: /* QUIT, disconnect, drop or shutdown: the last message */
        free(c->rooms.e);
        c->rooms = (roster){0};
        break;
    case LINE:
        write_line(cx, (const char *)m->data);
        break;
    case TR_REPLY:
        on_reply(cx, c, m);
        break;
    case TR_ASK_FAILED: /* gone: the room ended first (its last member had just left) */
        if (((const tr_ask_failure *)m->data)->why == TR_ASK_GONE &&
            (c->pending == JOIN || c->pending == WHO))
            ask_room(cx, c); /* again: most likely there is no such room now */
        else
            done(cx, c, failure(0));
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
        .port = 7000,
        .handler = {.actor = {.behaviour = client_actor, .state = &proto,
                              .state_size = sizeof proto},
                    .opts = {.framing = TR_FRAME_LINE, .max_line = 4096,
                             .max_output = (size_t)1 << 20}},
    };
    tr_actor_spec dir_spec = {.behaviour = directory_actor, .state = &dir,
                              .state_size = sizeof dir, .on_stop = roster_free,
                              .name = "chat:directory"};
    char metrics[32] = ""; /* its address, if asked for */
    uint16_t metrics_port = 0;
    for (int i = 1; i < argc; i++) /* [port] [--metrics PORT] */
        if (strcmp(argv[i], "--metrics") == 0 && i + 1 < argc)
            snprintf(metrics, sizeof metrics, "127.0.0.1:%s", argv[++i]);
        else
            opts.port = (uint16_t)atoi(argv[i]);
    tr_runtime *rt;
    tr_fd_limit_raise(NULL); /* past 1,024 descriptors: one per client */
    int err = tr_runtime_create(NULL, &rt);
    if (err == 0)
        err = tr_spawn_spec(tr_runtime_ctx(rt), &dir_spec, &proto.dir);
    if (err == 0) /* signals before the listener: their actors get the first turns */
        err = tr_runtime_stop_on_signal(rt, SIGINT);
    if (err == 0)
        err = tr_runtime_stop_on_signal(rt, SIGTERM);
    if (err == 0)
        err = tr_tcp_listen(tr_runtime_ctx(rt), &opts, NULL, &opts.port);
    if (err == 0 && metrics[0] != '\0')
        err = tr_metrics_serve(tr_runtime_ctx(rt), metrics, &metrics_port, NULL);
    if (err != 0) {
        fprintf(stderr, "chat: %s\n", tr_strerror(err));
        return 1;
    }
    printf("chat: listening on 127.0.0.1:%u; join with: nc 127.0.0.1 %u", opts.port, opts.port);
    if (metrics[0] != '\0')
        printf("; metrics on 127.0.0.1:%u (troupe-top 127.0.0.1:%u)", metrics_port, metrics_port);
    printf("\n");
    fflush(stdout);
    tr_runtime_run(rt); /* until SIGINT or SIGTERM */
    if (tr_send(tr_runtime_ctx(rt), proto.dir, SHUTDOWN, NULL, 0) == 0)
        tr_runtime_run(rt); /* until the directory has seen every client with a nick end */
    tr_runtime_destroy(rt); /* the rest is freed by the actors' cleanups */
    return 0;
}
