/* dist/api.c — tr_node_start, tr_node_stop, tr_send_named. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../actors/context.h"
#include "../mailbox/msg.h"
#include "../sched/sched.h"
#include "dist.h"
#include "troupe/fault.h"
#include "troupe/runtime.h"
#include "troupe/timer.h"

/* $HOME/.erlang.cookie, read as erl reads it: a regular file that only
 * its owner may read or write, of at most 255 bytes, holding the cookie
 * (printable ASCII, spaces included) and nothing after it but newlines,
 * carriage returns and spaces. Anything else is refused with a line on
 * stderr that says why, rather than taken in part: a cookie cut short or
 * a file others can read would fail later, at every handshake, or leak. */
static int read_cookie(char out[TR__COOKIE_MAX + 1])
{
    const char *home = getenv("HOME");
    char path[4096];
    if (home == NULL || home[0] == '\0') {
        fprintf(stderr, "troupe: dist: no cookie given and no $HOME to find .erlang.cookie in\n");
        return TR_EINVAL;
    }
    if (snprintf(path, sizeof path, "%s/.erlang.cookie", home) >= (int)sizeof path)
        return TR_EINVAL;
    const char *why = NULL;
    char text[TR__COOKIE_MAX + 1];
    ssize_t len = -1;
    struct stat st;
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0 || fstat(fd, &st) != 0)
        why = strerror(errno);
    else if (!S_ISREG(st.st_mode))
        why = "not a regular file";
    else if ((st.st_mode & 077) != 0)
        why = "others may read or write it (chmod 400)";
    else if ((len = read(fd, text, sizeof text)) < 0)
        why = strerror(errno);
    else if ((size_t)len > TR__COOKIE_MAX)
        why = "longer than 255 bytes";
    if (fd >= 0)
        close(fd);
    size_t n = 0;
    if (why == NULL) {
        while (n < (size_t)len && text[n] >= ' ' && text[n] <= '~')
            n++;
        for (size_t i = n; i < (size_t)len && why == NULL; i++)
            if (text[i] != '\n' && text[i] != '\r' && text[i] != ' ')
                why = "bad characters in the cookie";
        if (why == NULL && n == 0)
            why = "no cookie in it";
    }
    if (why != NULL) {
        fprintf(stderr, "troupe: dist: cookie file %s: %s\n", path, why);
        return TR_EINVAL;
    }
    memcpy(out, text, n);
    out[n] = '\0';
    return 0;
}

static uint16_t epmd_port(uint16_t given)
{
    if (given != 0)
        return given;
    const char *env = getenv("ERL_EPMD_PORT");
    char *end;
    unsigned long v = env != NULL ? strtoul(env, &end, 10) : 0;
    return env != NULL && *end == '\0' && v > 0 && v < 65536 ? (uint16_t)v : TR__EPMD_PORT;
}

static int node_setup(tr__dist_node *n, const tr_node_opts *o)
{
    if (o->name == NULL || strlen(o->name) > TR__NODE_NAME_MAX ||
        tr__node_split(o->name, n->alive, sizeof n->alive, n->host, sizeof n->host) != 0)
        return TR_EINVAL;
    strcpy(n->name, o->name);
    if (o->cookie != NULL) {
        if (o->cookie[0] == '\0' || strlen(o->cookie) >= sizeof n->cookie)
            return TR_EINVAL;
        strcpy(n->cookie, o->cookie);
    } else if (read_cookie(n->cookie) != 0) {
        return TR_EINVAL;
    }
    n->tick_ns = o->tick_ns != 0 ? o->tick_ns : 60 * TR_SEC;
    n->setup_ns = o->setup_ns != 0 ? o->setup_ns : 7 * TR_SEC;
    n->busy_limit = o->busy_limit != 0 ? o->busy_limit : TR_DIST_BUSY_LIMIT;
    if (n->busy_limit < TR_DIST_BUSY_MIN || n->busy_limit > TR_DIST_MSG_MAX)
        return TR_EINVAL;
    n->epmd_port = epmd_port(o->epmd_port);
    return 0;
}

int tr_node_start(tr_ctx *cx, const tr_node_opts *o)
{
    tr_ctx *acting;
    if (o == NULL || tr__cx_acting(cx, &acting) != 0)
        return TR_EINVAL;
    tr_runtime *rt = tr_ctx_runtime(cx);
    tr__dist_node *n = calloc(1, sizeof *n);
    void *state = malloc(tr__dist_conn_state_size());
    if (n != NULL)
        n->epmd_fd = -1;
    int err = n == NULL || state == NULL ? TR_ENOMEM : 0;
    if (err == 0) {
        n->rt = rt;
        err = node_setup(n, o);
    }
    if (err == 0) {
        tr__dist_lock();
        err = tr__dist_node_of(rt, 0) != NULL ? TR_EBUSY : 0;
        n->id = tr__dist_next_id();
        tr__dist_unlock();
    }
    if (err == 0) {
        tr_tcp_listen_opts lo = {.host = o->host, .port = o->port};
        tr__dist_conn_handler(n, NULL, &lo.handler, state);
        err = tr_tcp_listen(cx, &lo, &n->listener, &n->port);
    }
    free(state);
    if (err == 0 && (err = tr__epmd_register(n, o->host)) != 0)
        (void)tr_tcp_listener_close(cx, n->listener);
    if (err == 0) {
        tr__dist_lock();
        if (tr__dist_node_of(rt, 0) != NULL) /* another start won the race */
            err = TR_EBUSY;
        else
            tr__dist_add(n);
        tr__dist_unlock();
        if (err != 0)
            (void)tr_tcp_listener_close(cx, n->listener);
    }
    if (err != 0 && n != NULL)
        tr__dist_node_free(n);
    return err;
}

int tr_node_stop(tr_ctx *cx)
{
    tr_ctx *acting;
    if (tr__cx_acting(cx, &acting) != 0)
        return TR_EINVAL;
    tr_runtime *rt = tr_ctx_runtime(cx);
    tr__dist_lock();
    tr__dist_node *n = tr__dist_node_of(rt, 0);
    if (n != NULL) {
        tr__dist_remove(n);
        for (uint32_t i = 0; i < n->npeers; i++)
            if (n->peers[i]->conn != TR_PID_NONE)
                (void)tr__send_system(rt, acting, n->peers[i]->conn, TR__DIST_CLOSE);
    }
    tr__dist_unlock();
    if (n == NULL)
        return TR_ENOTCONN;
    /* Off the list, n is this caller's alone: no answer to an ask of
     * any peer's pid can come back now. */
    for (uint32_t i = 0; i < n->npeers; i++) {
        tr__dist_askers askers = tr__dist_askers_take(n->peers[i], i + 1);
        tr__dist_askers_tell(rt, tr__cx_worker(acting), &askers);
    }
    (void)tr_tcp_listener_close(cx, n->listener);
    tr__dist_node_free(n); /* closes the EPMD socket: the name is free again */
    return 0;
}

const char *tr_node_name(tr_runtime *rt)
{
    tr__dist_lock();
    tr__dist_node *n = tr__dist_node_of(rt, 0);
    tr__dist_unlock();
    return n != NULL ? n->name : NULL;
}

int tr__dist_connect(tr_ctx *cx, uint64_t node_id, const char *peer)
{
    int err = 0;
    uint32_t idx;
    tr__dist_lock();
    tr__dist_node *n = tr__dist_node_of(tr_ctx_runtime(cx), node_id);
    tr__peer *p = n != NULL ? tr__dist_peer(n, peer, &idx) : NULL;
    if (n == NULL)
        err = TR_ENOTCONN;
    else if (p == NULL)
        err = TR_ENOMEM;
    else if (p->conn == TR_PID_NONE && (err = tr__dist_lookup(cx, n, peer, &p->conn)) != 0)
        p->conn = TR_PID_NONE;
    tr__dist_unlock();
    return err;
}

/* tr_send_named to this node's own name: {Name, node()} ! Msg, delivered
 * here as another node's REG_SEND would be (a term {Type, <<Bytes>>} of a
 * user type arrives as that type and those bytes, any other as
 * TR_DIST_TERM), from the caller. A name nobody holds makes it a dead
 * letter (counted, and the sink's), as a message to an actor that has
 * ended. */
static int send_here(tr_runtime *rt, tr__worker *w, tr_pid self, const char *name, uint32_t type,
                     const void *data, size_t len)
{
    if (type == TR_DIST_TERM) { /* checked whole by the caller */
        uint32_t t;
        const char *d;
        size_t l;
        tr__term_to_msg(data, len, &t, &d, &l);
        if (t < TR_MSG_SYSTEM) {
            type = t;
            data = d;
            len = l;
        }
    }
    tr_pid to = tr_whereis(rt, name);
    if (to != TR_PID_NONE)
        return tr__send_copy(rt, w, self, to, type, data, len);
    tr_msg *m = tr__msg_new(type, (uint32_t)len);
    if (m == NULL)
        return TR_ENOMEM;
    if (len != 0)
        memcpy(m->data, data, len);
    m->from = self;
    m->to = TR_PID_NONE;
    tr__dead_letter(rt, w, m);
    tr__msg_release(m);
    return 0;
}

int tr_send_named(tr_ctx *cx, const char *name, const char *node, uint32_t type, const void *data,
                  size_t len)
{
    tr_ctx *acting;
    char alive[TR__NODE_NAME_MAX + 1], host[TR__NODE_NAME_MAX + 1];
    size_t used;
    if (tr__cx_acting(cx, &acting) != 0 || name == NULL || name[0] == '\0' ||
        strlen(name) > TR__NODE_NAME_MAX || !tr__name_is_atom(name) || (data == NULL && len != 0) ||
        tr__node_split(node, alive, sizeof alive, host, sizeof host) != 0 ||
        (type >= TR_MSG_SYSTEM && type != TR_DIST_TERM))
        return TR_EINVAL;
    if (len > TR_DIST_MSG_MAX)
        return TR_EMSGSIZE;
    if (type == TR_DIST_TERM &&
        (len < 2 || ((const unsigned char *)data)[0] != TR__VERSION_MAGIC ||
         tr__term_check((const char *)data + 1, len - 1, &used) != 0 || used != len - 1))
        return TR_EINVAL;
    tr_runtime *rt = tr_ctx_runtime(cx);
    tr_pid self = acting != NULL ? tr_self(acting) : TR_PID_NONE;
    tr__worker *w = tr__cx_worker(acting);
    tr__dist_lock();
    tr__dist_node *n = tr__dist_node_of(rt, 0);
    uint64_t id = n != NULL ? n->id : 0;
    bool local = n != NULL && strcmp(node, n->name) == 0;
    uint32_t idx;
    tr__peer *p = n != NULL && !local ? tr__dist_peer(n, node, &idx) : NULL;
    bool connected = p != NULL && p->conn != TR_PID_NONE;
    tr__dist_unlock();
    if (n == NULL)
        return TR_ENOTCONN;
    if (local)
        return send_here(rt, w, self, name, type, data, len);
    if (p == NULL)
        return TR_ENOMEM;
    int err = connected ? 0 : tr__dist_connect(cx, id, node);
    if (err != 0)
        return err;
    tr__dist_out h = {.from = self, .type = type, .op = TR__CTL_REG_SEND};
    tr_msg *m = tr__dist_out_new(h, name, data, len);
    if (m == NULL)
        return TR_ENOMEM;
    /* Queued for the peer until a connection is up; if the attempt that
     * was under way has just failed (lost a simultaneous connect, say),
     * another one starts. */
    bool again = false;
    tr__dist_lock();
    if ((n = tr__dist_node_of(rt, id)) != NULL && (p = tr__dist_peer(n, node, &idx)) != NULL) {
        err = tr__dist_deliver(rt, w, self, p, m);
        again = p->conn == TR_PID_NONE;
        m = NULL;
    }
    tr__dist_unlock();
    if (m != NULL) {
        tr__msg_release(m);
        return TR_ENOTCONN;
    }
    if (err == 0 && again)
        err = tr__dist_connect(cx, id, node);
    return err == TR_ENOPID ? 0 : err;
}

int tr__dist_send_term(tr_ctx *cx, tr_pid to, const void *data, size_t len)
{
    tr_ctx *acting;
    size_t used;
    if (len > TR_DIST_MSG_MAX)
        return TR_EMSGSIZE;
    if (tr__cx_acting(cx, &acting) != 0 || data == NULL || len < 2 ||
        ((const unsigned char *)data)[0] != TR__VERSION_MAGIC ||
        tr__term_check((const char *)data + 1, len - 1, &used) != 0 || used != len - 1)
        return TR_EINVAL;
    tr_msg *m = tr__msg_new(TR_DIST_TERM, (uint32_t)len);
    if (m == NULL)
        return TR_ENOMEM;
    memcpy(m->data, data, len);
    tr_pid self = acting != NULL ? tr_self(acting) : TR_PID_NONE;
    return tr__dist_route(tr_ctx_runtime(cx), tr__cx_worker(acting), self, to, m);
}
