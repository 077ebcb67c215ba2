/* net/conn.c — the TCP connection actor.
 *
 * The actor's state is a tr__conn followed by the user's state. Its
 * behaviour handles readiness and internal messages itself and passes
 * frames, connection events and every other message to the user's
 * behaviour. Frames are handed over directly (a per-thread scratch
 * message, not the mailbox), so a connection reads, frames and handles in
 * one turn, in order.
 *
 * Reading stops while the behaviour has paused, while output is above the
 * high-water mark (backpressure), and once closing; the kernel's socket
 * buffer then fills and TCP flow control slows the peer. Each turn reads
 * at most READ_ROUNDS times before letting other actors run; the rest is
 * picked up by a message to itself, since edge-triggered readiness will
 * not be reported again for bytes already there.
 *
 * A read that fills less than the buffer has emptied the socket (epoll(7)
 * says as much for stream sockets): TCP's recv stops short only when its
 * queue, backlog included, runs out, and every segment that lands after
 * that wakes the epoll entry again. So reading stops there, without the
 * read that would only say EAGAIN: one system call a request fewer for a
 * request/response peer (bench echo-rr: three a request become two).
 * Not once the peer's FIN or an error has been reported (TR_IO_HUP,
 * TR_IO_ERROR; HUP_SEEN): that report may have been taken while reading
 * was paused, and no later one will come, so from then on reading goes
 * on to EOF or EAGAIN. The one case that stops short with bytes still
 * queued is TCP urgent data, at its mark; the rest then waits for the
 * peer's next segment (or the idle timeout), which costs only that
 * connection.
 *
 * The user's behaviour is never called from inside itself: what it asks
 * for (close, abort, a write that fails) is noted in the flags and done
 * by settle() once it returns.
 *
 * Writing. tr_tcp_send only queues (outq.h); what a turn queued —
 * replies to the frames it read, and lines other actors sent it within
 * the turn — leaves in one writev when the turn ends (tr__at_turn_end),
 * so a chat member handed twenty lines in one turn makes one system call,
 * not twenty.
 */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "../actors/context.h"
#include "../base/debug.h"
#include "../mailbox/msg.h"
#include "../reactor/reactor.h"
#include "../sched/sched.h"
#include "http.h"
#include "net.h"
#include "outq.h"
#include "troupe/io.h"
#include "troupe/timer.h"

#define READ_ROUNDS 16
/* A write this large into an empty queue goes at once: worth its own
 * system call, and not worth a copy. */
#define DIRECT_WRITE 4032

#define DEFAULT_HIGH_WATER ((size_t)256 << 10)
#define DEFAULT_MAX_OUTPUT ((size_t)4 << 20)
#define DEFAULT_TIMEOUT_NS (10 * TR_SEC)

enum {
    CONNECTING = 1u << 0,  /* connect() in progress */
    CONNECTED = 1u << 1,   /* TR_TCP_CONNECTED delivered */
    THROTTLED = 1u << 2,   /* output above high water: not reading (but with keep_reading) */
    TOLD_THROTTLED = 1u << 3,
    PAUSED = 1u << 4,      /* by tr_tcp_pause */
    EOF_SEEN = 1u << 5,    /* the peer will send nothing more */
    CLOSING = 1u << 6,     /* close once the queue is written */
    ABORTING = 1u << 7,    /* close now, with a reset */
    SHUT_WANTED = 1u << 8, /* FIN once the queue is written */
    SHUT_DONE = 1u << 9,
    CLOSED = 1u << 10,     /* TR_TCP_CLOSED delivered: the actor is ending */
    MORE_SENT = 1u << 11,  /* a TR__NET_MORE is on its way */
    WATCH_WRITE = 1u << 12, /* writability is watched (only while output waits) */
    DRAINING = 1u << 13,   /* FIN sent on a graceful close: reading to the peer's EOF */
    FLUSH_DUE = 1u << 14,  /* the queue is written when the turn ends */
    RESUMED = 1u << 15,    /* THROTTLED was cleared: reading must restart */
    HUP_SEEN = 1u << 16,   /* a hang-up or error was reported: read to the end */
};

/* How long a graceful close waits for the peer's EOF after sending FIN. */
#define DRAIN_NS (2 * TR_SEC)

/* The options, with defaults filled in, in 32-bit fields: an idle
 * connection should cost a few hundred bytes (see bench echo-idle). */
typedef struct limits {
    uint32_t max_line, max_frame, high_water, low_water, max_output;
    uint32_t header_timeout_ms; /* HTTP (max_line and max_frame: header and body bytes) */
    uint8_t framing, nodelay, keep_reading;
} limits;

typedef union peer_addr {
    struct sockaddr sa;
    struct sockaddr_in in;
    struct sockaddr_in6 in6;
} peer_addr;

typedef struct tr__conn {
    tr__resource res;  /* first: released when the actor stops */
    int fd;
    unsigned flags;
    int reason;        /* the close reason to report */
    socklen_t peer_len;
    limits opts;
    tr_behaviour user;
    peer_addr peer;
    uint64_t timeout_ns;
    tr_pid timer;
    tr__framer *framer; /* lines and msgpack only, from the first byte */
    tr__outq out;
} tr__conn;
TR__RESOURCE_FIRST(tr__conn);

#define USER_OFFSET ((sizeof(tr__conn) + 15) & ~(size_t)15)

static size_t clamp(size_t v, size_t max)
{
    return v < max ? v : max;
}

static void *user_state(tr__conn *c)
{
    return (char *)c + USER_OFFSET;
}

size_t tr__conn_state_size(size_t user_size)
{
    return USER_OFFSET + user_size;
}


/* The actor stopped, however it stopped: give everything back. The watch
 * (registered later, so released earlier) is already gone. */
static void conn_release(tr_runtime *rt, tr__resource *r)
{
    (void)rt;
    tr__conn *c = (tr__conn *)r;
    tr__fd_close(&c->fd);
    tr__outq_clear(&c->out);
    if (c->framer != NULL) {
        tr__framer_fini(c->framer);
        free(c->framer);
        c->framer = NULL;
    }
}

void tr__conn_prepare(void *state, const tr_tcp_handler *h, int fd,
                      const struct sockaddr_storage *peer, socklen_t peer_len,
                      uint64_t timeout_ns)
{
    tr__conn *c = state;
    const tr_tcp_opts *o = &h->opts;
    memset(c, 0, sizeof *c);
    c->res.release = conn_release;
    c->fd = fd;
    c->user = h->actor.behaviour;
    c->opts.framing = (uint8_t)o->framing;
    c->opts.nodelay = !o->no_nodelay;
    c->opts.keep_reading = o->keep_reading != 0;
    c->opts.max_line = (uint32_t)(o->max_line == 0 ? 4096 : clamp(o->max_line, UINT32_MAX / 2));
    c->opts.max_frame = (uint32_t)clamp(o->max_frame, UINT32_MAX);
    c->opts.high_water = (uint32_t)clamp(o->high_water ? o->high_water : DEFAULT_HIGH_WATER,
                                         UINT32_MAX / 2);
    c->opts.low_water = (uint32_t)(o->low_water == 0 || o->low_water > c->opts.high_water
                                       ? c->opts.high_water / 4 : o->low_water);
    c->opts.max_output = (uint32_t)clamp(o->max_output ? o->max_output : DEFAULT_MAX_OUTPUT,
                                         UINT32_MAX);
    if (o->framing == TR_FRAME_HTTP) {
        c->opts.max_line = (uint32_t)clamp(o->max_header, UINT32_MAX);
        c->opts.max_frame = (uint32_t)clamp(o->max_body, UINT32_MAX);
        uint64_t ms = (o->header_timeout_ns + TR_MSEC - 1) / TR_MSEC;
        c->opts.header_timeout_ms = (uint32_t)(ms == 0 ? 10000 : clamp(ms, UINT32_MAX));
    }
    if (peer != NULL && peer_len <= sizeof c->peer) {
        memcpy(&c->peer, peer, peer_len);
        c->peer_len = peer_len;
    }
    c->timeout_ns = timeout_ns != 0 ? timeout_ns : DEFAULT_TIMEOUT_NS;
    if (h->actor.state_size != 0)
        memcpy(user_state(c), h->actor.state, h->actor.state_size);
}

/* ---- calling the user ---- */

static void tell(tr_ctx *cx, tr__conn *c, tr_msg *m)
{
    m->to = tr_self(cx);
    c->user(cx, user_state(c), m);
}

/* An event is small, and the behaviour's for the call alone: it is made
 * on the stack, so that it needs no memory — one lost for want of it
 * would leave the behaviour waiting for good (a node connection never
 * told it is connected, a user never told of the close). */
static void tell_event(tr_ctx *cx, tr__conn *c, uint32_t type, int reason)
{
    union {
        tr_msg m;
        unsigned char room[sizeof(tr_msg) + sizeof(tr_tcp_info)];
    } ev;
    _Static_assert(sizeof(tr_tcp_info) >= sizeof(tr_tcp_error), "the room is for the largest");
    tr_msg *m = &ev.m;
    m->type = type;
    m->from = m->to = TR_PID_NONE;
    m->len = 0;
    if (type == TR_TCP_CONNECTED) {
        tr_tcp_info *info = (tr_tcp_info *)m->data;
        memset(&info->peer, 0, sizeof info->peer);
        memcpy(&info->peer, &c->peer, c->peer_len);
        info->peer_len = c->peer_len;
        info->fd = c->fd;
        memset(&info->local, 0, sizeof info->local);
        info->local_len = sizeof info->local;
        if (tr__sys_getsockname(c->fd, (struct sockaddr *)&info->local, &info->local_len) != 0)
            info->local_len = 0;
        m->len = sizeof *info;
    } else if (type == TR_TCP_ERROR || type == TR_TCP_CLOSED) {
        ((tr_tcp_error *)m->data)->reason = reason;
        m->len = sizeof(tr_tcp_error);
    }
    tell(cx, c, m);
}

/* Ends the connection now and tells the behaviour, for the last time. */
static void close_now(tr_ctx *cx, tr__conn *c, int reason)
{
    if (c->flags & CLOSED)
        return;
    c->flags |= CLOSED;
    if (c->fd >= 0) {
        tr_io_unwatch(cx, c->fd); /* before close: the number may be reused */
        if (c->flags & ABORTING) {
            struct linger lg = {.l_onoff = 1, .l_linger = 0};
            tr__sys_setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
        }
        tr__sys_close(c->fd);
        c->fd = -1;
    }
    tr__outq_clear(&c->out);
    if (c->timer != TR_PID_NONE)
        tr_timer_cancel(cx, c->timer);
    tell_event(cx, c, TR_TCP_CLOSED, reason);
    tr_stop(cx);
}

/* Close after the queue is written (at once if it is empty). */
static void close_soon(tr__conn *c, int reason)
{
    if (!(c->flags & CLOSING)) {
        c->flags |= CLOSING;
        c->reason = reason;
    }
}

/* A socket error: close now, reporting it. */
static void fail(tr__conn *c, int err)
{
    c->flags |= CLOSING | ABORTING;
    c->reason = err;
}

/* ---- writing ---- */

static void flush(tr__conn *c);

/* Queues output. A turn that queues more than high_water writes at once
 * rather than at its end; throttled means the socket would not take it. */
static int append(tr__conn *c, const unsigned char *data, size_t len)
{
    int err = tr__outq_append(&c->out, data, len);
    if (err == 0 && c->out.queued > c->opts.high_water && (c->flags & CONNECTED)) {
        flush(c);
        /* Throttled again in the turn that resumed it: reading stays
         * stopped, and the resume is void (never both: settle). */
        if (c->out.queued > c->opts.high_water)
            c->flags = (c->flags & ~RESUMED) | THROTTLED;
    }
    return err;
}

/* Writes as much of the queue as the socket takes. */
static void flush(tr__conn *c)
{
    if (c->flags & CLOSED)
        return;
    int err = tr__outq_write(&c->out, c->fd);
    if (err != 0)
        fail(c, err);
    if ((c->flags & THROTTLED) && c->out.queued <= c->opts.low_water)
        c->flags = (c->flags & ~THROTTLED) | RESUMED;
}

/* ---- reading ---- */

static void send_more(tr_ctx *cx, tr__conn *c)
{
    if (!(c->flags & MORE_SENT) &&
        tr__socket_again(cx, TR__NET_MORE) == 0)
        c->flags |= MORE_SENT;
}

static bool reading_stopped(const tr__conn *c)
{
    unsigned stops = PAUSED | CLOSING | ABORTING | CLOSED | (c->opts.keep_reading ? 0 : THROTTLED);
    return (c->flags & stops) != 0;
}

/* Hands buffered frames to the behaviour until none is left (true) or it
 * must stop (false): reading stopped, or the behaviour ended itself
 * (tr_stop, tr_exit), after which it is handed nothing more. */
static bool deliver(tr_ctx *cx, tr__conn *c)
{
    bool http = c->opts.framing == TR_FRAME_HTTP;
    while (c->framer != NULL && !reading_stopped(c) && !tr__cx_stopping(cx)) {
        if (http && tr__http_blocked(c->framer))
            return false; /* until answers come (tr__conn_http_answered) */
        tr__frame f;
        int r = tr__framer_next(c->framer, &f);
        if (r == 0)
            break;
        if (r < 0) {
            /* A bad request behind one still unanswered: the refusal waits
             * for that answer (the framer keeps the failure), which would
             * otherwise find the connection closing. */
            if (http && tr__http_blocked(c->framer))
                return false;
            tell_event(cx, c, TR_TCP_ERROR, r);
            if (http)
                tr__http_refuse(cx, c->framer);
            if (http || r != TR_ELINETOOLONG)
                close_soon(c, r); /* the stream cannot be resynchronised */
            continue;
        }
        tr_msg *m;
        if (c->opts.framing != TR_FRAME_MSGPACK) {
            if ((m = tr__scratch_msg_room(http ? TR_HTTP_REQUEST : TR_TCP_LINE, f.len)) == NULL) {
                fail(c, TR_ENOMEM);
                break;
            }
            if (http)
                tr__http_encode(c->framer, m->data);
            else
                memcpy(m->data, f.data, f.len);
            m->len = (uint32_t)f.len;
        } else {
            if ((m = tr__scratch_msg(TR_TCP_MSGPACK)) == NULL)
                break;
            memcpy(m->data, &f.object, sizeof f.object);
            m->len = sizeof f.object;
        }
        tell(cx, c, m);
    }
    return !reading_stopped(c) && !tr__cx_stopping(cx);
}

/* Reads (one call) into the per-thread scratch: >0 bytes, 0 at EOF, -1
 * when nothing more now. Raw chunks go to the behaviour as they are;
 * framed input goes to the framer, which keeps only an unfinished tail. */
static ssize_t read_once(tr_ctx *cx, tr__conn *c)
{
    tr_msg *m = tr__scratch_msg(TR_TCP_DATA);
    if (m == NULL) {
        fail(c, TR_ENOMEM);
        return -1;
    }
    ssize_t n;
    do
        n = tr__sys_recv(c->fd, m->data, TR__SCRATCH, MSG_DONTWAIT);
    while (n < 0 && errno == EINTR);
    if (n < 0) {
        if (errno != EAGAIN && errno != EWOULDBLOCK)
            fail(c, -errno);
        return -1;
    }
    if (n == 0)
        return 0;
    if (c->framer == NULL) {
        m->len = (uint32_t)n;
        tell(cx, c, m);
    } else if (tr__framer_feed(c->framer, m->data, (size_t)n) != 0) {
        fail(c, TR_ENOMEM);
        return -1;
    }
    return n;
}

static void pump(tr_ctx *cx, tr__conn *c)
{
    if (!(c->flags & CONNECTED))
        return;
    bool emptied = false;
    for (int round = 0; round < READ_ROUNDS; round++) {
        if (!deliver(cx, c))
            return;
        if (c->flags & EOF_SEEN) {
            /* Every frame is delivered and the peer is done: close after
             * what is queued (HTTP: once every request is answered). */
            if (c->opts.framing != TR_FRAME_HTTP || c->framer->http->outstanding == 0)
                close_soon(c, 0);
            return;
        }
        if (emptied)
            return; /* what comes next brings its own readiness */
        ssize_t n = read_once(cx, c);
        if (n == 0)
            c->flags |= EOF_SEEN;
        else if (n < 0)
            return;
        else
            emptied = (size_t)n < TR__SCRATCH && !(c->flags & HUP_SEEN);
    }
    send_more(cx, c);
}

/* ---- connection set-up ---- */

static void connected(tr_ctx *cx, tr__conn *c)
{
    c->flags = (c->flags & ~CONNECTING) | CONNECTED;
    if (c->opts.nodelay) {
        int one = 1;
        tr__sys_setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    }
    if (c->opts.framing != TR_FRAME_RAW) {
        c->framer = malloc(sizeof *c->framer);
        if (c->framer == NULL || tr__framer_init(c->framer, (tr_framing)c->opts.framing,
                                                 c->opts.max_line, c->opts.max_frame) != 0) {
            free(c->framer);
            c->framer = NULL;
            close_now(cx, c, TR_ENOMEM);
            return;
        }
        if (c->framer->http != NULL)
            c->framer->http->timeout_ns = c->opts.header_timeout_ms * TR_MSEC;
    }
    tell_event(cx, c, TR_TCP_CONNECTED, 0);
    pump(cx, c);
}

static void start(tr_ctx *cx, tr__conn *c)
{
    bool outgoing = c->fd < 0;
    if (outgoing) {
        c->fd = tr__sys_socket(c->peer.sa.sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
                               0);
        if (c->fd < 0) {
            close_now(cx, c, -errno);
            return;
        }
        if (tr__sys_connect(c->fd, &c->peer.sa, c->peer_len) != 0) {
            if (errno != EINPROGRESS) {
                close_now(cx, c, -errno);
                return;
            }
            c->flags |= CONNECTING;
        }
    }
    /* Writability is watched only while connecting or while output is
     * queued: edge-triggered, TCP reports it after nearly every ACK. */
    bool want_write = (c->flags & CONNECTING) != 0;
    int err = tr_io_watch(cx, c->fd, TR_IO_READ | (want_write ? TR_IO_WRITE : 0));
    if (err != 0) {
        close_now(cx, c, err);
        return;
    }
    if (want_write)
        c->flags |= WATCH_WRITE;
    if (c->flags & CONNECTING) {
        if (tr__timer_system(cx, c->timeout_ns, TR__NET_TIMEOUT, &c->timer) != 0)
            c->timer = TR_PID_NONE;
        return;
    }
    connected(cx, c);
}

static void finish_connect(tr_ctx *cx, tr__conn *c)
{
    int err = 0;
    socklen_t len = sizeof err;
    if (tr__sys_getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0)
        err = errno;
    if (err == EINPROGRESS || err == EALREADY)
        return;
    if (c->timer != TR_PID_NONE) {
        tr_timer_cancel(cx, c->timer);
        c->timer = TR_PID_NONE;
    }
    if (err != 0) {
        close_now(cx, c, -err);
        return;
    }
    /* The peer address as the kernel has it, in case the caller gave a name. */
    c->peer_len = sizeof c->peer;
    tr__sys_getpeername(c->fd, &c->peer.sa, &c->peer_len);
    connected(cx, c);
}

/* ---- graceful close ----
 * close() with unread input makes the kernel reset the connection and drop
 * what is still in the send buffer, so a graceful close sends FIN, then
 * reads and discards until the peer's EOF (or DRAIN_NS) before closing. */

static void drain_input(tr_ctx *cx, tr__conn *c)
{
    for (int round = 0; round < READ_ROUNDS; round++) {
        tr_msg *m = tr__scratch_msg(TR_TCP_DATA);
        if (m == NULL)
            break;
        ssize_t n = tr__sys_recv(c->fd, m->data, TR__SCRATCH, MSG_DONTWAIT);
        if (n > 0)
            continue;
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return;
        close_now(cx, c, c->reason); /* EOF, or an error: either way done */
        return;
    }
    send_more(cx, c);
}

static void begin_drain(tr_ctx *cx, tr__conn *c)
{
    if (c->flags & (EOF_SEEN | CONNECTING) || !(c->flags & CONNECTED)) {
        close_now(cx, c, c->reason); /* nothing more can come */
        return;
    }
    if (c->flags & DRAINING)
        return;
    c->flags |= DRAINING;
    if (!(c->flags & SHUT_DONE)) {
        tr__sys_shutdown(c->fd, SHUT_WR);
        c->flags |= SHUT_DONE;
    }
    if (c->timer != TR_PID_NONE)
        tr_timer_cancel(cx, c->timer); /* an HTTP header timer */
    if (tr__timer_system(cx, DRAIN_NS, TR__NET_TIMEOUT, &c->timer) != 0) {
        /* No timer, no bound on waiting for a peer that never closes:
         * close now rather than perhaps never (out of memory). */
        c->timer = TR_PID_NONE;
        close_now(cx, c, c->reason);
        return;
    }
    drain_input(cx, c);
}

/* ---- after every message, and as the turn ends ---- */

static void turn_ends(tr_ctx *cx, void *state);

/* Output waits for the turn's end (turn_over false: a message was just
 * handled), and so does whatever waits for the output to leave. */
#ifdef TR_DEBUG
/* The combinations the flags never take. */
static bool flags_sane(unsigned f)
{
    return !((f & CONNECTING) && (f & CONNECTED)) && !((f & THROTTLED) && (f & RESUMED)) &&
           (!(f & ABORTING) || (f & CLOSING)) &&
           (!(f & DRAINING) || ((f & SHUT_DONE) && (f & CONNECTED)));
}
#endif

static void settle(tr_ctx *cx, tr__conn *c, bool turn_over)
{
    TR_ASSERT(flags_sane(c->flags));
    for (int guard = 0; guard < 8 && !(c->flags & CLOSED); guard++) {
        if (c->flags & ABORTING) {
            tr__outq_clear(&c->out);
            close_now(cx, c, c->reason);
            return;
        }
        if (c->flags & DRAINING)
            return;
        if (c->out.head != NULL && (c->flags & CONNECTED)) {
            if (!turn_over) {
                if (!(c->flags & FLUSH_DUE)) {
                    c->flags |= FLUSH_DUE;
                    tr__at_turn_end(cx, turn_ends);
                }
                return;
            }
            flush(c);
        }
        if (c->flags & RESUMED) {
            /* Even if the behaviour never heard of the throttling (set and
             * cleared in one turn), reading stopped and must restart:
             * edge-triggered readiness will not come again for bytes
             * already there. */
            c->flags &= ~RESUMED;
            send_more(cx, c);
        }
        if (c->out.head == NULL && (c->flags & CLOSING)) {
            begin_drain(cx, c);
            return;
        }
        if (c->out.head == NULL && (c->flags & SHUT_WANTED) && !(c->flags & SHUT_DONE)) {
            tr__sys_shutdown(c->fd, SHUT_WR);
            c->flags |= SHUT_DONE;
        }
        bool want_write = c->out.head != NULL || (c->flags & CONNECTING);
        if (want_write != ((c->flags & WATCH_WRITE) != 0) &&
            tr_io_modify(cx, c->fd, TR_IO_READ | (want_write ? TR_IO_WRITE : 0)) == 0)
            c->flags ^= WATCH_WRITE;
        bool throttled = (c->flags & THROTTLED) != 0;
        bool told = (c->flags & TOLD_THROTTLED) != 0;
        if (throttled == told)
            return;
        c->flags ^= TOLD_THROTTLED;
        tell_event(cx, c, throttled ? TR_TCP_THROTTLED : TR_TCP_UNTHROTTLED, 0);
        if (!throttled)
            send_more(cx, c); /* reading resumes: bytes may be waiting */
    }
}

/* The turn's output leaves, then whatever waited for it (a close, a FIN,
 * the write watch, throttling) is settled. */
static void turn_ends(tr_ctx *cx, void *state)
{
    tr__conn *c = state;
    c->flags &= ~FLUSH_DUE;
    settle(cx, c, true);
}

void tr__conn_behaviour(tr_ctx *cx, void *state, const tr_msg *m)
{
    tr__conn *c = state;
    if (c->flags & CLOSED)
        return;
    switch (m->type) {
    case TR__NET_START:
        start(cx, c);
        break;
    case TR_IO_READABLE:
    case TR_IO_HUP:
    case TR_IO_WRITABLE:
    case TR_IO_ERROR:
        if (((const tr_io_event *)m->data)->fd != c->fd) {
            /* Readiness of a descriptor the behaviour watches itself. */
            c->user(cx, user_state(c), m);
            break;
        }
        if (m->type == TR_IO_HUP || m->type == TR_IO_ERROR)
            c->flags |= HUP_SEEN;
        if (c->flags & DRAINING) {
            if (m->type != TR_IO_WRITABLE)
                drain_input(cx, c);
        } else if (c->flags & CONNECTING)
            finish_connect(cx, c);
        else if (m->type == TR_IO_WRITABLE)
            ; /* settle below has the queue written as the turn ends */
        else
            pump(cx, c); /* errors and hang-ups surface as read results */
        break;
    case TR__NET_MORE:
        c->flags &= ~MORE_SENT;
        if (c->flags & DRAINING)
            drain_input(cx, c);
        else
            pump(cx, c);
        break;
    case TR__NET_TIMEOUT:
        if (m->from != c->timer)
            break; /* a timer cancelled too late */
        c->timer = TR_PID_NONE;
        if (c->flags & CONNECTING)
            close_now(cx, c, TR_ETIMEDOUT);
        else if (c->flags & DRAINING)
            close_now(cx, c, c->reason);
        else if (c->framer != NULL && c->framer->http != NULL &&
                 tr__http_expired(cx, c->framer, &c->timer))
            close_soon(c, TR_ETIMEDOUT); /* a request's headers came too slowly */
        break;
    default:
        c->user(cx, user_state(c), m);
        break;
    }
    if (c->framer != NULL && c->framer->http != NULL && !(c->flags & CLOSED))
        tr__http_watch(cx, c->framer, &c->timer, !reading_stopped(c));
    settle(cx, c, false);
}

/* ---- the API for a connection's behaviour ---- */

static tr__conn *current(tr_ctx *cx)
{
    return tr__actor_state_if(cx, tr__conn_behaviour);
}

int tr_tcp_send(tr_ctx *cx, const void *data, size_t len)
{
    tr__conn *c = current(cx);
    if (c == NULL || !(c->flags & CONNECTED) ||
        (c->flags & (CLOSING | ABORTING | CLOSED | SHUT_WANTED)))
        return TR_ENOTCONN;
    if (data == NULL && len != 0)
        return TR_EINVAL;
    if (len > c->opts.max_output - c->out.queued)
        return TR_ENOBUFS;
    const unsigned char *p = data;
    if (c->out.head == NULL && len >= DIRECT_WRITE) {
        ssize_t w;
        do
            w = tr__sys_send(c->fd, p, len, MSG_NOSIGNAL | MSG_DONTWAIT);
        while (w < 0 && errno == EINTR);
        if (w < 0) {
            if (errno != EAGAIN && errno != EWOULDBLOCK) {
                int err = -errno;
                fail(c, err);
                return err;
            }
            w = 0;
        }
        p += w;
        len -= (size_t)w;
    }
    int err = len == 0 ? 0 : append(c, p, len);
    /* Part went out: the rest must follow it or the stream is broken (a
     * peer reading frames would take what comes next as this one's tail),
     * so a rest that cannot be queued ends the connection. */
    if (err != 0 && p != data)
        fail(c, err);
    return err;
}

size_t tr_tcp_queued(tr_ctx *cx)
{
    tr__conn *c = current(cx);
    return c != NULL ? c->out.queued : 0;
}

void tr__tcp_flush(tr_ctx *cx)
{
    tr__conn *c = current(cx);
    /* What is left, and a throttling this changes, settle at the turn's end. */
    if (c != NULL && (c->flags & CONNECTED) && !(c->flags & (ABORTING | CLOSED)) &&
        c->out.head != NULL)
        flush(c);
}

void tr_tcp_pause(tr_ctx *cx)
{
    tr__conn *c = current(cx);
    TR_MISUSE(c == NULL, "tr_tcp_pause outside a connection's behaviour");
    if (c != NULL)
        c->flags |= PAUSED;
}

void tr_tcp_resume(tr_ctx *cx)
{
    tr__conn *c = current(cx);
    TR_MISUSE(c == NULL, "tr_tcp_resume outside a connection's behaviour");
    if (c != NULL && (c->flags & PAUSED)) {
        c->flags &= ~PAUSED;
        send_more(cx, c);
    }
}

int tr_tcp_shutdown(tr_ctx *cx)
{
    tr__conn *c = current(cx);
    if (c == NULL || (c->flags & CLOSED))
        return TR_ENOTCONN;
    c->flags |= SHUT_WANTED;
    return 0;
}

int tr_tcp_close(tr_ctx *cx)
{
    tr__conn *c = current(cx);
    if (c == NULL || (c->flags & CLOSED))
        return TR_ENOTCONN;
    close_soon(c, 0);
    return 0;
}

tr__framer *tr__conn_http(tr_ctx *cx, size_t *room)
{
    tr__conn *c = current(cx);
    if (c == NULL || c->framer == NULL || c->framer->http == NULL || !(c->flags & CONNECTED) ||
        (c->flags & (CLOSING | ABORTING | CLOSED | SHUT_WANTED)))
        return NULL;
    *room = c->opts.max_output - c->out.queued;
    return c->framer;
}

void tr__conn_http_answered(tr_ctx *cx, bool unblocked)
{
    tr__conn *c = current(cx);
    if (c != NULL && (unblocked || (c->flags & EOF_SEEN)))
        send_more(cx, c);
}

int tr__conn_fail(tr_ctx *cx, int err)
{
    tr__conn *c = current(cx);
    if (c == NULL || (c->flags & CLOSED))
        return TR_ENOTCONN;
    fail(c, err);
    return 0;
}

int tr_tcp_abort(tr_ctx *cx)
{
    return tr__conn_fail(cx, TR_ECONNABORTED);
}
