/* test_dist_bad_input.c — hostile bytes on node connections (acceptance
 * item 8): garbage instead of a handshake, and after a correct handshake
 * a distribution header with nothing after it, a frame with a cut term,
 * one announcing more than the maximum, a stray fragment and a fragment
 * count announcing more than the maximum; each closes only its own
 * connection, and the node then still serves a well-behaved peer. And a
 * hand-made peer that announces less than erl does (no SEND_SENDER, no
 * FRAGMENTS). */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "../dist/dist.h"
#include "dist_util.h"

static atomic_int replies;

/* On 1: n messages to the actor "echo" on node `node`; counts the
 * answers in *count. */
typedef struct sender_spec {
    const char *node;
    int n;
    atomic_int *count;
} sender_spec;

static void sender(tr_ctx *cx, void *state, const tr_msg *m)
{
    const sender_spec *sp = state;
    if (m->type == 1)
        for (int i = 0; i < sp->n; i++)
            TT_CHECK(tr_send_named(cx, "echo", sp->node, 9, "x", 1) == 0);
    else if (m->type == 9)
        atomic_fetch_add(sp->count, 1);
}

static tr_pid spawn_sender(tr_runtime *rt, const char *node, int n, atomic_int *count)
{
    sender_spec sp = {.node = node, .n = n, .count = count};
    tr_pid pid = TR_PID_NONE;
    TT_EQ(tr_spawn(tr_runtime_ctx(rt), sender, &sp, sizeof sp, &pid), 0);
    return pid;
}

/* Node `name` with an actor "echo" (dt_echo), that handshake setup time
 * (0: the default); its distribution port. */
static tr_runtime *echo_node_setup(const char *name, uint16_t epmd, uint64_t setup_ns,
                                   uint16_t *port)
{
    tr_runtime *rt = tt_runtime(2, 0);
    char full[128];
    snprintf(full, sizeof full, "%s@localhost", name);
    tr_node_opts o = {.name = full, .cookie = DT_COOKIE, .host = "127.0.0.1",
                      .epmd_port = epmd, .setup_ns = setup_ns};
    CU_ASSERT_FATAL(tr_node_start(tr_runtime_ctx(rt), &o) == 0);
    CU_ASSERT_FATAL(tr_runtime_start(rt) == 0);
    tr_actor_spec e = {.behaviour = dt_echo, .name = "echo"};
    TT_EQ(tr_spawn_spec(tr_runtime_ctx(rt), &e, NULL), 0);
    tr__dist_lock();
    tr__dist_node *n = tr__dist_node_of(rt, 0);
    *port = n != NULL ? n->port : 0;
    tr__dist_unlock();
    CU_ASSERT_FATAL(*port != 0);
    return rt;
}

static tr_runtime *echo_node(const char *name, uint16_t epmd, uint16_t *port)
{
    return echo_node_setup(name, epmd, 0, port);
}

static int dial(uint16_t port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    struct timeval tv = {.tv_sec = 10};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    CU_ASSERT_FATAL(connect(fd, (struct sockaddr *)&a, sizeof a) == 0);
    return fd;
}

/* Reads one 2-byte-length frame (the handshake's); its length, or -1. */
static int read_frame(int fd, uint8_t *buf, size_t cap)
{
    uint8_t h[2];
    if (recv(fd, h, 2, MSG_WAITALL) != 2)
        return -1;
    size_t len = (size_t)h[0] << 8 | h[1];
    if (len > cap || recv(fd, buf, len, MSG_WAITALL) != (ssize_t)len)
        return -1;
    return (int)len;
}

/* A correct handshake as node `name` (the initiator), announcing our
 * flags less `drop`: true when up. */
static bool handshake_without(int fd, const char *name, uint64_t drop)
{
    tr__hs hs;
    uint8_t out[512], in[512];
    size_t ol;
    tr__hs_init(&hs, true, name, DT_COOKIE, 1, 4242, out, sizeof out, &ol);
    /* The send_name frame: 2-byte length, 'N', the flags (8 bytes, big
     * endian). */
    uint64_t flags = hs.flags & ~drop;
    for (int i = 0; i < 8; i++)
        out[3 + i] = (uint8_t)(flags >> (56 - 8 * i));
    if (send(fd, out, ol, 0) != (ssize_t)ol)
        return false;
    while (hs.state != TR__HS_UP && hs.state != TR__HS_FAILED) {
        int n = read_frame(fd, in, sizeof in);
        if (n < 0 || tr__hs_step(&hs, in, (size_t)n, out, sizeof out, &ol) < 0)
            return false;
        if (ol != 0 && send(fd, out, ol, 0) != (ssize_t)ol)
            return false;
    }
    return hs.state == TR__HS_UP;
}

static bool handshake(int fd, const char *name)
{
    return handshake_without(fd, name, 0);
}

/* The node closes the connection: a read ends (0 or an error other than
 * the 10 s timeout), after any ticks. */
static bool closed_by_node(int fd)
{
    uint8_t b[256];
    for (;;) {
        ssize_t k = recv(fd, b, sizeof b, 0);
        if (k == 0 || (k < 0 && errno != EAGAIN && errno != EWOULDBLOCK))
            return true;
        if (k < 0)
            return false;
    }
}

static void send_frame(int fd, const void *body, uint32_t len, uint32_t announced)
{
    uint8_t h[4] = {(uint8_t)(announced >> 24), (uint8_t)(announced >> 16),
                    (uint8_t)(announced >> 8), (uint8_t)announced};
    CU_ASSERT(send(fd, h, 4, MSG_NOSIGNAL) == 4);
    if (len != 0)
        CU_ASSERT(send(fd, body, len, MSG_NOSIGNAL) == (ssize_t)len);
}

static void test_garbage_closes_only_its_connection(void)
{
    if (dt_skip())
        return;
    uint16_t epmd = dt_epmd_start();
    CU_ASSERT_FATAL(epmd != 0);
    uint16_t port;
    tr_runtime *a = echo_node("tt_ba", epmd, &port);

    /* Garbage for a handshake. */
    int fd = dial(port);
    uint8_t junk[1000];
    uint64_t rng = 7;
    for (size_t i = 0; i < sizeof junk; i++)
        junk[i] = (uint8_t)tt_rng_next(&rng);
    junk[0] = 0, junk[1] = 30; /* a frame of 30 bytes that is no name */
    CU_ASSERT(send(fd, junk, sizeof junk, MSG_NOSIGNAL) > 0);
    CU_ASSERT(closed_by_node(fd));
    close(fd);

    /* After a good handshake: an empty header; a cut term; too long. */
    static const uint8_t not_112[] = {131, 68, 0};
    static const uint8_t cut[] = {112, 131, 104, 3, 97, 22, 88};
    /* Fragments (dist/frag.c): one of a sequence never begun; a first one
     * whose count announces far more than the maximum. */
    static const uint8_t stray[] = {131, 70, 0, 0, 0, 0, 0, 0, 0, 9, 0, 0, 0, 0, 0, 0, 0, 1, 97};
    static const uint8_t huge[] = {131, 69, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0,
                                   104, 1, 97, 2, 109, 0, 0, 0, 4, 97, 98};
    const struct { const void *body; uint32_t len, announced; } bad[] = {
        {not_112, sizeof not_112, sizeof not_112},
        {cut, sizeof cut, sizeof cut},
        {NULL, 0, 0x7fffffff},
        {stray, sizeof stray, sizeof stray},
        {huge, sizeof huge, sizeof huge},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        fd = dial(port);
        CU_ASSERT(handshake(fd, "tt_evil@localhost"));
        send_frame(fd, NULL, 0, 0); /* a tick: fine */
        send_frame(fd, bad[i].body, bad[i].len, bad[i].announced);
        CU_ASSERT(closed_by_node(fd));
        close(fd);
    }

    /* A well-behaved peer is still served. */
    tr_runtime *b = dt_node("tt_bb", epmd, 0);
    tr_pid s = spawn_sender(b, "tt_ba@localhost", 10, &replies);
    TT_EQ(tr_send(tr_runtime_ctx(b), s, 1, NULL, 0), 0);
    (void)tt_wait_count(&replies, 10, 30);
    TT_EQ(atomic_load(&replies), 10);
    TT_NO_ERRORS();
    dt_node_end(b);
    dt_node_end(a);
    dt_epmd_stop(epmd);
}

/* Reads one 4-byte-length frame that is not a tick into a fresh buffer
 * (the caller frees it): its length, or -1. */
static long read_data_frame(int fd, char **body)
{
    for (;;) {
        uint8_t h[4];
        if (recv(fd, h, 4, MSG_WAITALL) != 4)
            return -1;
        size_t len = (size_t)h[0] << 24 | (size_t)h[1] << 16 | (size_t)h[2] << 8 | h[3];
        if (len == 0)
            continue;
        if (len > 1 << 20 || (*body = malloc(len)) == NULL)
            return -1;
        if (recv(fd, *body, len, MSG_WAITALL) != (ssize_t)len) {
            free(*body);
            return -1;
        }
        return (long)len;
    }
}

/* The node's next message to the hand-made node (a pass-through frame):
 * its control message into *d, and whether its message is `type` with
 * exactly those bytes. */
static bool next_message_is(int fd, tr__ctl *d, uint32_t type, const char *bytes)
{
    char *body = NULL;
    long len = read_data_frame(fd, &body);
    if (len <= 0 || tr__ctl_decode(body, (size_t)len, d) != 0 || d->msg == NULL) {
        free(body);
        return false;
    }
    uint32_t t = 0;
    const char *data = NULL;
    size_t n = 0;
    tr__term_to_msg(d->msg, d->msg_len, &t, &data, &n);
    bool is = t == type && n == strlen(bytes) && memcmp(data, bytes, n) == 0;
    free(body);
    d->msg = NULL; /* it pointed into the frame */
    return is;
}

/* A frame from the hand-made node `from` (pid <num.0.1>): a REG_SEND to
 * `to` of message `type` with `len` bytes, appended to x. */
static void put_reg_send(ei_x_buff *x, const char *from, unsigned num, const char *to,
                         uint32_t type, const void *data, size_t len)
{
    tr__ctl c;
    memset(&c, 0, sizeof c);
    c.op = TR__CTL_REG_SEND;
    strcpy(c.from.node, from);
    c.from.num = num;
    c.from.creation = 1;
    c.to_name = true;
    strcpy(c.name, to);
    ei_x_buff f;
    ei_x_new(&f);
    TT_EQ(tr__ctl_encode(&f, &c), 0);
    TT_EQ(tr__term_from_msg(&f, type, data, len), 0);
    TT_EQ(tr__ctl_finish(&f), 0);
    ei_x_append_buf(x, f.buff, f.index);
    ei_x_free(&f);
}

/* A peer that leaves out the optional DFLAG_SEND_SENDER and
 * DFLAG_FRAGMENTS (a C node, an older release) is sent what it can read:
 * pass-through frames (112, no distribution header) and messages as SEND
 * {2, '', To}, not SEND_SENDER. Its REG_SEND to "echo" comes back that
 * way, whole. */
static void test_peer_without_send_sender_gets_plain_sends(void)
{
    if (dt_skip())
        return;
    uint16_t epmd = dt_epmd_start();
    CU_ASSERT_FATAL(epmd != 0);
    uint16_t port;
    tr_runtime *a = echo_node("tt_bs", epmd, &port);

    int fd = dial(port);
    CU_ASSERT_FATAL(handshake_without(fd, "tt_plain@localhost",
                                        TR__DFLAG_SEND_SENDER | TR__DFLAG_FRAGMENTS));
    ei_x_buff x;
    ei_x_new(&x);
    put_reg_send(&x, "tt_plain@localhost", 5, "echo", 9, "plain", 5);
    CU_ASSERT(send(fd, x.buff, (size_t)x.index, MSG_NOSIGNAL) == x.index);
    ei_x_free(&x);

    tr__ctl d;
    CU_ASSERT(next_message_is(fd, &d, 9, "plain"));
    TT_EQ(d.op, TR__CTL_SEND);
    CU_ASSERT(strcmp(d.to.node, "tt_plain@localhost") == 0 && d.to.num == 5 &&
              d.to.serial == 0 && d.to.creation == 1);
    close(fd);
    TT_NO_ERRORS();
    dt_node_end(a);
    dt_epmd_stop(epmd);
}


/* What the watcher heard: exits and downs, by reason. */
struct watched {
    atomic_int asked, links_failed, marks;
    atomic_int exits[2], downs[2], other; /* [0] noconnection, [1] noproc */
};

static void count_reason(atomic_int *by_reason, atomic_int *other, int reason)
{
    if (reason == TR_EXIT_NOCONNECTION || reason == TR_EXIT_NOPROC)
        atomic_fetch_add(&by_reason[reason == TR_EXIT_NOPROC], 1);
    else
        atomic_fetch_add(other, 1);
}

/* "watcher": traps exits; links to and monitors whoever sends it type 1,
 * and counts what comes back, and the marks (type 3) it is sent. */
static void watcher(tr_ctx *cx, void *state, const tr_msg *m)
{
    struct watched *w = *(struct watched **)state;
    if (m->type == 1) {
        tr_trap_exits(cx, true);
        atomic_fetch_add(&w->asked, 1);
        uint64_t ref;
        if (tr_link(cx, m->from) != 0)
            atomic_fetch_add(&w->links_failed, 1);
        TT_CHECK(tr_monitor(cx, m->from, &ref) == 0);
    } else if (m->type == 3) {
        atomic_fetch_add(&w->marks, 1);
    } else if (m->type == TR_EXIT) {
        count_reason(w->exits, &w->other, ((const tr_exit_info *)m->data)->reason);
    } else if (m->type == TR_DOWN) {
        count_reason(w->downs, &w->other, ((const tr_down_info *)m->data)->reason);
    }
}

static int total(atomic_int *by_reason)
{
    return atomic_load(&by_reason[0]) + atomic_load(&by_reason[1]);
}

/* A link and a monitor asked of a node whose connection is ending: the
 * hand-made node sends "watcher" a message and then a malformed frame, so
 * that the watcher asks around the time the connection is closed: before
 * (the requests go out, and the end answers them), while it is ending
 * (routed to the connection while it was up, they reach it after its end:
 * it answers them as the end would) — noconnection either way — or after,
 * when the sender's pid is a dead letter (dist.h): noproc. Which of them a
 * round meets depends on the machine; whichever, each round's link gets
 * one exit and its monitor one DOWN: none lost, none twice. */
static void test_link_and_monitor_of_a_closing_connection(void)
{
    if (dt_skip())
        return;
    enum { ROUNDS = 30 };
    uint16_t epmd = dt_epmd_start();
    CU_ASSERT_FATAL(epmd != 0);
    uint16_t port;
    tr_runtime *a = echo_node("tt_bw", epmd, &port);
    struct watched *w = calloc(1, sizeof *w);
    CU_ASSERT_FATAL(w != NULL);
    tr_actor_spec ws = {.behaviour = watcher, .state = &w, .state_size = sizeof w,
                        .name = "watcher"};
    tr_pid wpid;
    TT_EQ(tr_spawn_spec(tr_runtime_ctx(a), &ws, &wpid), 0);
    tr_stats base;
    tr_runtime_stats(a, &base);
    static const uint8_t cut[] = {0, 0, 0, 7, 112, 131, 104, 3, 97, 22, 88};
    for (int r = 1; r <= ROUNDS; r++) {
        int fd = dial(port);
        CU_ASSERT_FATAL(handshake(fd, "tt_going@localhost"));
        ei_x_buff x;
        ei_x_new(&x);
        /* Three shapes, by round: the message and the cut frame in one
         * write (the connection ends in the turn that delivers it: the
         * watcher asks after); the same behind 2,500 and before 200
         * other frames (the watcher often asks while the connection is
         * ending); the cut frame 100 us after the message (before). */
        int shape = r % 3;
        for (int i = 0; i < (shape == 1 ? 2500 : 0); i++)
            put_reg_send(&x, "tt_going@localhost", (unsigned)r, "watcher", 2, NULL, 0);
        put_reg_send(&x, "tt_going@localhost", (unsigned)r, "watcher", 1, NULL, 0);
        for (int i = 0; i < (shape == 1 ? 200 : 0); i++)
            put_reg_send(&x, "tt_going@localhost", (unsigned)r, "watcher", 2, NULL, 0);
        if (shape != 2)
            ei_x_append_buf(&x, (const char *)cut, sizeof cut);
        CU_ASSERT(send(fd, x.buff, (size_t)x.index, MSG_NOSIGNAL) == x.index);
        ei_x_free(&x);
        if (shape == 2) {
            usleep(100);
            CU_ASSERT(send(fd, cut, sizeof cut, MSG_NOSIGNAL) == sizeof cut);
        }
        CU_ASSERT(closed_by_node(fd));
        close(fd);
        for (double until = tt_now() + 30;
             (total(w->exits) < r || total(w->downs) < r) && tt_now() < until;)
            tt_sleep_ms(1);
        TT_EQ(total(w->exits), r);
        TT_EQ(total(w->downs), r);
    }
    /* Anything owed twice is in the watcher's mailbox once the last
     * connection has ended: a mark sent then comes after it. */
    tr_stats now;
    for (double until = tt_now() + 30;
         tr_runtime_stats(a, &now), now.actors_alive > base.actors_alive && tt_now() < until;)
        tt_sleep_ms(1);
    TT_EQ(now.actors_alive, base.actors_alive);
    TT_EQ(tr_send(tr_runtime_ctx(a), wpid, 3, NULL, 0), 0);
    for (double until = tt_now() + 30; atomic_load(&w->marks) == 0 && tt_now() < until;)
        tt_sleep_ms(1);
    TT_EQ(atomic_load(&w->marks), 1);
    printf("[exits: %d noconnection, %d noproc; downs: %d, %d] ", atomic_load(&w->exits[0]),
           atomic_load(&w->exits[1]), atomic_load(&w->downs[0]), atomic_load(&w->downs[1]));
    TT_EQ(atomic_load(&w->asked), ROUNDS);
    TT_EQ(atomic_load(&w->links_failed), 0);
    TT_EQ(total(w->exits), ROUNDS);
    TT_EQ(total(w->downs), ROUNDS);
    TT_EQ(atomic_load(&w->other), 0);
    TT_NO_ERRORS();
    dt_node_end(a);
    dt_epmd_stop(epmd);
    free(w);
}

/* Sends our name as `name` (the wrong cookie: it will not get further)
 * and reads the status: true when "sok". */
static bool named_as(int fd, const char *name)
{
    uint8_t out[512], in[512];
    size_t ol;
    tr__hs hs;
    tr__hs_init(&hs, true, name, "not the cookie", 1, 1, out, sizeof out, &ol);
    if (send(fd, out, ol, MSG_NOSIGNAL) != (ssize_t)ol)
        return false;
    int n = read_frame(fd, in, sizeof in);
    return n == 3 && memcmp(in, "sok", 3) == 0;
}

/* A stranger (no cookie) names itself tt_sr, a real node, and is told
 * "ok": its connection holds tt_sr's claim, so a message node tt_sa sends
 * tt_sr meanwhile waits in the peer's queue. The stranger goes before
 * proving the cookie: an attempt of tt_sa's own takes the queue to the
 * real tt_sr, whose echo answers. (Before, the claim went and the queue
 * stayed until some later send started an attempt.) */
static atomic_int sr_replies;

static void test_stranger_gone_hands_the_queue_on(void)
{
    if (dt_skip())
        return;
    uint16_t epmd = dt_epmd_start();
    CU_ASSERT_FATAL(epmd != 0);
    uint16_t real_port, port;
    tr_runtime *real = echo_node("tt_sr", epmd, &real_port);
    tr_runtime *a = echo_node("tt_sa", epmd, &port);
    atomic_store(&sr_replies, 0);
    tr_pid s = spawn_sender(a, "tt_sr@localhost", 1, &sr_replies);
    int fd = dial(port);
    CU_ASSERT_FATAL(named_as(fd, "tt_sr@localhost"));

    TT_EQ(tr_send(tr_runtime_ctx(a), s, 1, NULL, 0), 0);
    size_t queued = 0;
    for (double until = tt_now() + 30; queued == 0 && tt_now() < until; tt_sleep_ms(2)) {
        uint32_t idx;
        tr__dist_lock();
        tr__peer *p = tr__dist_peer_find(tr__dist_node_of(a, 0), "tt_sr@localhost", &idx);
        queued = p != NULL ? p->nqueue : 0;
        tr__dist_unlock();
    }
    TT_EQ(queued, 1); /* behind the stranger's claim */
    close(fd);
    CU_ASSERT(tt_wait_count(&sr_replies, 1, 30));
    TT_NO_ERRORS();
    dt_node_end(a);
    dt_node_end(real);
    dt_epmd_stop(epmd);
}

/* Under the lock: node rt's peers and the unproven claims. */
static void node_tables(tr_runtime *rt, uint32_t *peers, uint32_t *unproven)
{
    tr__dist_lock();
    tr__dist_node *n = tr__dist_node_of(rt, 0);
    *peers = n != NULL ? n->npeers : UINT32_MAX;
    *unproven = n != NULL ? n->nunproven : UINT32_MAX;
    tr__dist_unlock();
}

/* A stranger's name is not made a peer before its cookie is proven: 300
 * strangers, each with a name of its own, leave the peer table empty
 * (its entries are never removed: 65,535 such names filled it, and every
 * new peer was then refused). One that names a real node and then
 * trickles its bytes, a byte each 20 ms, holds that name no longer than
 * the setup time (300 ms here; it held it while it kept sending, and for
 * the whole tick time when silent); the real node then connects. */
static void test_strangers_get_no_peer_entry_and_no_time(void)
{
    if (dt_skip())
        return;
    uint16_t epmd = dt_epmd_start();
    CU_ASSERT_FATAL(epmd != 0);
    uint16_t port;
    tr_runtime *a = echo_node_setup("tt_sb", epmd, 300 * TR_MSEC, &port);
    uint32_t peers, unproven;
    for (int i = 0; i < 300; i++) {
        char name[64];
        snprintf(name, sizeof name, "tt_x%d@localhost", i);
        int fd = dial(port);
        CU_ASSERT(named_as(fd, name));
        close(fd);
    }
    node_tables(a, &peers, &unproven);
    for (double until = tt_now() + 30; unproven != 0 && tt_now() < until; tt_sleep_ms(2))
        node_tables(a, &peers, &unproven);
    TT_EQ(unproven, 0);
    TT_EQ(peers, 0);

    int fd = dial(port);
    CU_ASSERT_FATAL(named_as(fd, "tt_sa@localhost"));
    static const uint8_t announce[2] = {0xff, 0xff}; /* a frame that never ends */
    bool closed = send(fd, announce, 2, MSG_NOSIGNAL) != 2;
    for (double until = tt_now() + 30; !closed && tt_now() < until;) {
        tt_sleep_ms(20);
        uint8_t b;
        ssize_t k = recv(fd, &b, 1, MSG_DONTWAIT);
        closed = k == 0 || (k < 0 && errno != EAGAIN && errno != EWOULDBLOCK) ||
                 send(fd, "r", 1, MSG_NOSIGNAL) != 1;
    }
    CU_ASSERT(closed);
    close(fd);
    node_tables(a, &peers, &unproven);
    TT_EQ(peers, 0);

    tr_runtime *real = dt_node("tt_sa", epmd, 0);
    atomic_store(&replies, 0);
    tr_pid s = spawn_sender(real, "tt_sb@localhost", 1, &replies);
    TT_EQ(tr_send(tr_runtime_ctx(real), s, 1, NULL, 0), 0);
    CU_ASSERT(tt_wait_count(&replies, 1, 30));
    node_tables(a, &peers, &unproven);
    TT_EQ(peers, 1);
    TT_NO_ERRORS();
    dt_node_end(real);
    dt_node_end(a);
    dt_epmd_stop(epmd);
}

/* A peer's control messages name senders of its own node: 100 REG_SENDs
 * from pids of other nodes reach echo from nobody (not answered) and
 * make no peer entries (they made one each); then one from its own pid
 * is answered, and the table holds that peer alone. */
static void test_senders_of_other_nodes_are_nobody(void)
{
    if (dt_skip())
        return;
    uint16_t epmd = dt_epmd_start();
    CU_ASSERT_FATAL(epmd != 0);
    uint16_t port;
    tr_runtime *a = echo_node("tt_bt", epmd, &port);
    int fd = dial(port);
    CU_ASSERT_FATAL(handshake_without(fd, "tt_third@localhost", TR__DFLAG_FRAGMENTS));
    ei_x_buff x;
    ei_x_new(&x);
    for (int i = 0; i < 100; i++) {
        char other[64];
        snprintf(other, sizeof other, "tt_other%d@localhost", i);
        put_reg_send(&x, other, 5, "echo", 9, "other", 5);
    }
    put_reg_send(&x, "tt_third@localhost", 5, "echo", 9, "own", 3);
    CU_ASSERT(send(fd, x.buff, (size_t)x.index, MSG_NOSIGNAL) == x.index);
    ei_x_free(&x);
    tr__ctl d;
    CU_ASSERT(next_message_is(fd, &d, 9, "own"));
    uint32_t peers, unproven;
    node_tables(a, &peers, &unproven);
    TT_EQ(peers, 1);
    close(fd);
    TT_NO_ERRORS();
    dt_node_end(a);
    dt_epmd_stop(epmd);
}

/* ---- a peer's monitors whose refs share their first four words ----
 * The node finds a peer's monitor by the first four words of its ref
 * (dist/signals.c); refs of five words that differ only in the fifth are
 * still three monitors. The hand-made peer watches "echo" under three
 * such refs and demonitors the second: echo keeps two watchers, and when
 * it ends, the peer hears of the first and the third, once each. */
static void put_monitor(ei_x_buff *x, const char *self, long op, unsigned fifth)
{
    tr__ctl c;
    memset(&c, 0, sizeof c);
    c.op = op;
    strcpy(c.from.node, self);
    c.from.num = 5;
    c.from.creation = 1;
    c.to_name = true;
    strcpy(c.name, "echo");
    strcpy(c.ref.node, self);
    c.ref.len = 5;
    c.ref.n[0] = 1;
    c.ref.n[1] = 2;
    c.ref.n[2] = 3;
    c.ref.n[3] = 4;
    c.ref.n[4] = fifth;
    c.ref.creation = 1;
    ei_x_buff f;
    ei_x_new(&f);
    TT_EQ(tr__ctl_encode(&f, &c), 0);
    TT_EQ(tr__ctl_finish(&f), 0);
    ei_x_append_buf(x, f.buff, f.index);
    ei_x_free(&f);
}

/* The fifth word of the ref of the next frame, a MONITOR_P_EXIT of
 * "echo" with one of put_monitor's refs; 0 if it is anything else. */
static unsigned next_monitor_exit(int fd)
{
    char *body = NULL;
    long len = read_data_frame(fd, &body);
    tr__ctl d;
    unsigned fifth = 0;
    if (len > 0 && tr__ctl_decode(body, (size_t)len, &d) == 0 && d.op == TR__CTL_MONITOR_P_EXIT &&
        d.to_name && strcmp(d.name, "echo") == 0 && d.ref.len == 5 && d.ref.n[0] == 1 &&
        d.ref.n[1] == 2 && d.ref.n[2] == 3 && d.ref.n[3] == 4)
        fifth = d.ref.n[4];
    free(body);
    return fifth;
}

static void test_peer_refs_sharing_four_words(void)
{
    if (dt_skip())
        return;
    uint16_t epmd = dt_epmd_start();
    CU_ASSERT_FATAL(epmd != 0);
    uint16_t port;
    tr_runtime *a = echo_node("tt_bm", epmd, &port);
    tr_actor_spec e2 = {.behaviour = dt_echo, .name = "echo2"};
    TT_EQ(tr_spawn_spec(tr_runtime_ctx(a), &e2, NULL), 0);
    const char *self = "tt_mp@localhost";
    int fd = dial(port);
    CU_ASSERT_FATAL(handshake_without(fd, self, TR__DFLAG_FRAGMENTS));
    ei_x_buff x;
    ei_x_new(&x);
    put_monitor(&x, self, TR__CTL_MONITOR_P, 100);
    put_monitor(&x, self, TR__CTL_MONITOR_P, 200);
    put_monitor(&x, self, TR__CTL_MONITOR_P, 300);
    put_monitor(&x, self, TR__CTL_DEMONITOR_P, 200);
    put_reg_send(&x, self, 5, "echo", 9, "sync", 4);
    CU_ASSERT(send(fd, x.buff, (size_t)x.index, MSG_NOSIGNAL) == x.index);
    ei_x_free(&x);
    tr__ctl d;
    CU_ASSERT(next_message_is(fd, &d, 9, "sync")); /* behind the requests */
    tr_pid echo = tr_whereis(a, "echo");
    tr_actor_figures f;
    TT_EQ(tr_actor_info(a, echo, &f), 0);
    TT_EQ(f.monitors, 2);

    TT_EQ(tr_kill(tr_runtime_ctx(a), echo, 7), 0);
    unsigned first = next_monitor_exit(fd), second = next_monitor_exit(fd);
    CU_ASSERT((first == 100 && second == 300) || (first == 300 && second == 100));
    /* And no third: the next frame is echo2's answer. */
    ei_x_new(&x);
    put_reg_send(&x, self, 5, "echo2", 9, "after", 5);
    CU_ASSERT(send(fd, x.buff, (size_t)x.index, MSG_NOSIGNAL) == x.index);
    ei_x_free(&x);
    CU_ASSERT(next_message_is(fd, &d, 9, "after"));
    close(fd);
    TT_NO_ERRORS();
    dt_node_end(a);
    dt_epmd_stop(epmd);
}

void register_dist_bad_input_tests(void)
{
    CU_pSuite s = tt_suite("dist_bad_input");
    tt_test(s, "garbage_closes_only_its_connection", test_garbage_closes_only_its_connection);
    tt_test(s, "stranger_gone_hands_the_queue_on", test_stranger_gone_hands_the_queue_on);
    tt_test(s, "strangers_get_no_peer_entry_and_no_time",
            test_strangers_get_no_peer_entry_and_no_time);
    tt_test(s, "senders_of_other_nodes_are_nobody", test_senders_of_other_nodes_are_nobody);
    tt_test(s, "peer_without_send_sender_gets_plain_sends",
            test_peer_without_send_sender_gets_plain_sends);
    tt_test(s, "link_and_monitor_of_a_closing_connection_answered_once",
            test_link_and_monitor_of_a_closing_connection);
    tt_test(s, "peer_refs_sharing_four_words_are_three_monitors",
            test_peer_refs_sharing_four_words);
}
