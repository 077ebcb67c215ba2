/* net_util.h — what the TCP and UDP suites share (tests/test_tcp_*.c,
 * tests/test_udp.c): a server in this process, plain-socket clients, echo
 * behaviours that count everything, and reference answers to check the
 * echo against.
 *
 * Every test runs its server in-process: a runtime, a listener on
 * 127.0.0.1 port 0, tr_runtime_start; clients are plain sockets driven
 * from the test thread or helper threads (with receive timeouts, so a
 * broken server fails a test instead of hanging it); then
 * tr_runtime_shutdown + join + destroy. Every byte is accounted for: clients
 * check what comes back byte for byte against what they sent (or against
 * an independent reference of the framing rules), and the behaviours count
 * connections, events and bytes on the server side.
 *
 * Under ThreadSanitizer (5-20x slower) the byte counts of the streaming
 * tests are scaled down (16 x 8 MiB instead of 16 x 64 MiB; 64 MiB instead
 * of 256 MiB through the backpressure test; 1 MiB instead of 4-8 MiB for
 * the framing and half-close streams); the connection counts (16, 1,000,
 * 2,000) stay the same. AddressSanitizer runs the full sizes.
 *
 * The helpers keep the short names they had while they were static in one
 * file (server_start, cli_connect, echo_raw, ...), so that the tests read
 * as before; only files that include this header see them.
 */
#ifndef TROUPE_TESTS_NET_UTIL_H
#define TROUPE_TESTS_NET_UTIL_H

#include "tests.h"

#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <msgpack.h>

#define HOST "127.0.0.1"
#define IO_TIMEOUT_S 30 /* a client waiting this long for the server: failure */
#define WAIT_S 60.0     /* waiting for server-side counters: a safety net */

#define SANITIZED (TT_ASAN || TT_TSAN) /* resident memory is not glibc's to judge */
#define SCALED TT_TSAN                 /* byte counts scaled down (see above) */
#define MIB ((uint64_t)1 << 20)

/* ---- deterministic data ---------------------------------------------------- */

/* Byte `off` of stream `seed`: any range can be generated on its own. */
void gen_fill(uint64_t seed, uint64_t off, unsigned char *buf, size_t len);
/* Does buf hold bytes [off, off + len) of stream seed? */
bool gen_check(uint64_t seed, uint64_t off, const unsigned char *buf, size_t len);

/* ---- waiting ----------------------------------------------------------------- */

/* Waits (a safety net, not a timing assertion) until cond holds, then
 * asserts it. */
#define WAIT_FOR(cond)                                                                      \
    do {                                                                                    \
        double until_ = tt_now() + WAIT_S;                                                  \
        bool held_;                                                                         \
        while (!(held_ = (cond)) && tt_now() < until_)                                      \
            tt_sleep_ms(1);                                                                 \
        if (!held_)                                                                         \
            printf("\n    %s:%d: gave up waiting for %s\n", __FILE__, __LINE__, #cond);     \
        CU_ASSERT(held_);                                                                   \
    } while (0)

/* ---- server side: behaviours and their counters ------------------------------ */

struct stats {
    atomic_long connected, closed;   /* TR_TCP_CONNECTED / TR_TCP_CLOSED seen */
    atomic_long closed_ok, closed_neg;
    atomic_int last_reason;          /* of the last TR_TCP_CLOSED */
    atomic_long frames, bytes;       /* data frames and their payload bytes */
    atomic_long errors;              /* TR_TCP_ERROR */
    atomic_int last_error;
    atomic_long throttled, unthrottled;
    atomic_long send_failed, enobufs;
    atomic_size_t max_queued;        /* largest tr_tcp_queued after a send */
    atomic_int slow_port;            /* peer port of the client watched below */
    atomic_long slow_throttled, slow_unthrottled;
    atomic_long abort_queued;        /* abort test: queued when tr_tcp_abort ran */
    atomic_long abort_sent;
};

enum { STRICT = 1 }; /* every tr_tcp_send must succeed */

struct cstate {
    struct stats *st;
    int flags;
    bool connected, closed, throttled, slow;
    unsigned errors;
};

/* tr_tcp_send, counting failures (and checking none under STRICT) and the
 * largest queue seen. */
int send_counted(tr_ctx *cx, struct cstate *cs, const void *p, size_t n);
uint16_t sa_port(const struct sockaddr_storage *ss);
/* Connection events every behaviour handles the same way; true if m was one. */
bool common_event(tr_ctx *cx, struct cstate *cs, const tr_msg *m);
/* Raw echo: writes back whatever arrives. */
void echo_raw(tr_ctx *cx, void *state, const tr_msg *m);
/* Line echo: each line back with "\n"; each framing error as "!\n". A line
 * "bye N" gets N bytes of stream N back and then a graceful close;
 * "abort N" sends N bytes and resets the connection. */
void echo_line(tr_ctx *cx, void *state, const tr_msg *m);
/* msgpack echo: each object packed again and written back. */
void echo_msgpack(tr_ctx *cx, void *state, const tr_msg *m);

/* ---- server set-up ------------------------------------------------------------ */

struct server {
    tr_runtime *rt;
    uint16_t port;
    tr_pid listener;
    struct stats *st;
};

struct stats *stats_new(void);
/* A handler running fn with a fresh struct cstate counting into st. */
tr_tcp_handler handler_for(tr_behaviour fn, struct stats *st, int flags);
/* A 4-worker runtime listening on HOST, started; s->st must be set. */
void server_start_opts(struct server *s, tr_tcp_handler h, int backlog);
/* The same with new counters and default options. */
void server_start(struct server *s, tr_behaviour fn, int flags);
/* The msgpack echo (STRICT) with new counters, objects up to max_frame
 * bytes (0: the default). */
void server_start_msgpack(struct server *s, size_t max_frame);
/* Waits until the server has seen `closed` connections close in all (a
 * safety net, not a timing check), the last one orderly (reason 0). */
void server_saw_close(struct server *s, long closed);
/* Stops, joins and destroys the runtime; frees the counters. */
void server_stop(struct server *s);

/* ---- client side -------------------------------------------------------------- */

void set_timeouts(int fd, int seconds);
void set_nonblocking(int fd);
struct sockaddr_in loopback(uint16_t port);
/* A blocking client socket connected to 127.0.0.1:port, or -errno. */
int cli_connect_raw(uint16_t port, int rcvbuf);
/* The same, asserting (fatally) that it connected. */
int cli_connect(uint16_t port);
uint16_t local_port(int fd);
/* close() then sends a reset instead of a FIN. */
void set_reset_on_close(int fd);
bool cli_write(int fd, const void *p, size_t n);
/* Reads until n bytes, EOF or an error; the count read. *end gets 0 (all
 * read, or EOF), or -errno (-EAGAIN: timed out). */
size_t cli_read(int fd, void *p, size_t n, int *end);
/* What comes next on fd: 0 = EOF, 1 = data, -errno. */
int cli_next(int fd);
/* A round trip through an echo server: len bytes of stream seed. */
bool cli_echo(int fd, uint64_t seed, size_t len);
long rss_bytes(void);
/* A bind (listen, UDP open) on `port`, which holder number `holder`
 * holds, on host (NULL: 0.0.0.0) returned rc, pid and bound: it must
 * have failed with -EADDRINUSE, spawning nothing and binding nothing. */
void expect_port_in_use(int rc, tr_pid pid, uint16_t bound, uint16_t port, size_t holder,
                        const char *host);

/* ---- a duplex client: sends a buffer while reading, checks every byte --------- */

struct duplex {
    int fd;
    /* what to send, and in what pieces */
    const unsigned char *in;
    size_t in_len;
    uint64_t chunk_seed;   /* 0: 64 KiB writes; else random sizes */
    bool shut_after;       /* shutdown(SHUT_WR) when everything is sent */
    /* what must come back */
    const unsigned char *want;
    size_t want_len;
    /* results */
    size_t sent, received;
    bool mismatch;         /* a byte differed, or more came than expected */
    size_t mismatch_at;
    int end;               /* 0: EOF; -errno: error (-ETIMEDOUT: no progress) */
    int send_err;
};

/* Runs the exchange to its end (a thread's main, or called directly). */
void *duplex_main(void *arg);
/* Prints what went wrong, if anything did. */
void duplex_report(const struct duplex *d, const char *what);
/* The framed exchange most tests make: runs d, reports, checks that all of
 * want came back byte for byte and then EOF, and closes d->fd. */
void duplex_expect(struct duplex *d, const char *what);

/* ---- reference answers ------------------------------------------------------ */

/* What the line echo server must answer to `in` (complete input, ending
 * the connection): the reference rules, with "!\n" per over-long line. */
unsigned char *ref_line_echo(const unsigned char *in, size_t n, size_t max_line,
                             size_t *out_len, size_t *errors);
/* A random object of at most `depth` levels of nesting, canonically packed. */
void pack_random(msgpack_packer *pk, uint64_t *seed, int depth);
/* What a re-packing echo must answer to `in`: each complete object (until
 * the first malformed byte or the end) unpacked and packed again. */
unsigned char *ref_msgpack_echo(const unsigned char *in, size_t n, size_t *out_len,
                                size_t *objects, bool *malformed);

#endif
