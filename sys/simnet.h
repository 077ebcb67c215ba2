/* sys/simnet.h — the simulated network's pieces (internal to sys/).
 *
 * The world: a table of simulated sockets indexed by descriptor, a heap of
 * planned events in virtual time (deliveries, heals, resets), the epoll
 * interest lists, and the partitions. Everything is touched by the one
 * simulation thread only. Every entry point first carries out the events
 * due by the virtual clock (tr__simnet_advance), in (time, sequence) order,
 * so a socket's state never depends on which call happened to look first.
 *
 * A TCP connection is two directions; each is a FIFO of segments (SYN,
 * SYN-ACK, data, FIN, RST) with delivery times drawn from the latency
 * distribution and kept in order. A direction holds at most `buffer`
 * bytes in flight plus unread at the receiver: send takes what fits.
 */
#ifndef TR_SYS_SIMNET_H
#define TR_SYS_SIMNET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "sys.h"

/* An address as the network compares it. */
typedef struct tr__saddr {
    uint16_t family; /* AF_INET, AF_INET6 */
    uint16_t port;   /* host order */
    uint8_t ip[16];  /* IPv4 in the first 4 bytes */
} tr__saddr;

/* A planned event: a node of the world's heap, inside the object it is
 * about. */
typedef struct tr__simev {
    uint64_t due, seq;
    size_t pos;    /* 1 + its index in the heap; 0 when not scheduled */
    uint8_t kind;
    int arg;       /* a direction's index */
    void *obj;     /* what it is about */
} tr__simev;

enum { EV_DIR = 1, EV_RTO, EV_DGRAM, EV_HEAL };

enum { S_NEW, S_LISTEN, S_CONNECTING, S_OPEN, S_CLOSED };

typedef struct tr__conn_sim tr__conn_sim;
typedef struct tr__reg tr__reg;
typedef struct tr__dgram tr__dgram;

typedef struct tr__sock {
    int fd;            /* -1: no descriptor (waiting to be accepted, or closed) */
    int type;          /* SOCK_STREAM or SOCK_DGRAM */
    int family;
    int state;
    int err;           /* pending error (SO_ERROR), positive errno */
    uint64_t id;       /* creation order: names it in the trace hash */
    bool bound, explicit_bound, orphan;
    bool nodelay, reuse, keepalive, nospace;
    struct linger linger; /* as set; on with 0 s: close resets (the time is not waited) */
    bool rd_eof, rd_shut, wr_shut;
    tr__saddr local, peer;
    /* TCP */
    tr__conn_sim *conn;
    int side;
    struct tr__sock *acc_head, *acc_tail, *acc_next; /* listener's queue */
    unsigned char *in;  /* unread bytes: in[in_off .. in_off + in_len) */
    size_t in_cap, in_off, in_len;
    /* UDP */
    tr__dgram *dq_head, *dq_tail;
    size_t dq_bytes;
    uint64_t last_due;  /* the last datagram it sent in order: when it lands */
    tr__saddr last_to;  /* and where */
    tr__reg *regs;      /* epoll registrations */
    struct tr__sock *next, *prev; /* every socket of the world */
} tr__sock;

typedef struct tr__seg {
    struct tr__seg *next;
    uint64_t due;
    uint8_t kind;
    size_t len;
    unsigned char data[];
} tr__seg;

enum { SEG_SYN, SEG_SYNACK, SEG_DATA, SEG_FIN, SEG_RST };

typedef struct tr__dir {
    tr__seg *head, *tail;
    size_t inflight;     /* data bytes in the segments */
    uint64_t last_due;
    bool held;           /* its head waits for a partition to heal */
    tr__simev ev;        /* the head's delivery */
    tr__simev rto;       /* held this long: reset */
} tr__dir;

struct tr__conn_sim {
    tr__dir d[2];        /* d[i]: from end i to end 1 - i */
    tr__sock *end[2];    /* 0 the connecting side; NULL: gone (or not yet accepted) */
    tr__saddr addr[2];
    uint64_t id;
    bool refuse;         /* the connect fault fired: the SYN is refused */
    bool established;
    bool reset;          /* counted in tcp_resets already */
    unsigned fault_after; /* TR__FAULT_RESET: reset after so many more data
                           * deliveries (0: never) */
    tr__conn_sim *next, *prev;
};

struct tr__dgram {
    tr__simev ev;
    tr__dgram *next;
    tr__saddr from, to;
    size_t len;
    unsigned char data[];
};

/* The world (simnet.c). */
typedef struct tr__world {
    uint64_t epoch;
    tr__sock **fds;
    size_t nfds, lowest_free;
    tr__simev **heap;
    size_t heap_len, heap_cap, reserved;
    uint64_t seq, ids;
    uint16_t next_port;
    tr__sock *socks;
    tr__conn_sim *conns;
    struct tr__ep *eps;
    struct tr__part *parts;
} tr__world;

extern tr__world tr__w;

/* Codes of the network's events in the trace hash. */
enum { NET_CONNECT = 1, NET_SYN, NET_ESTABLISHED, NET_DATA, NET_FIN, NET_RST, NET_CLOSE,
       NET_REFUSED, NET_UDP, NET_UDP_LOST, NET_HOLD, NET_HEAL, NET_ACCEPT, NET_RESET };

void tr__simnet_trace(unsigned code, uint64_t id, uint64_t b);

/* simnet.c */
void tr__simnet_enter(void);           /* a new simulation: drop the old world; advance */
tr__sock *tr__simnet_sock(int fd);     /* NULL (errno EBADF or ENOTSOCK) */
int tr__simnet_fd_alloc(tr__sock *s);  /* -1, errno EMFILE */
tr__sock *tr__simnet_sock_new(int family, int type);
void tr__simnet_sock_free(tr__sock *s);
int tr__simnet_reserve(long slots); /* 0 or ENOMEM; negative: give back */
void tr__simnet_schedule(tr__simev *e, uint8_t kind, void *obj, int arg, uint64_t due);
void tr__simnet_cancel(tr__simev *e);
uint64_t tr__simnet_latency(void);
void tr__simnet_wake(tr__sock *s, uint32_t key);
void tr__simnet_unregister(tr__sock *s);
int tr__simnet_ephemeral(int type, uint16_t *port);
int tr__simnet_bind_check(const tr__sock *me, const tr__saddr *a);
int tr__saddr_from(const struct sockaddr *sa, socklen_t len, int family, tr__saddr *out);
void tr__saddr_to(const tr__saddr *a, struct sockaddr *sa, socklen_t *len);
bool tr__saddr_wild(const tr__saddr *a);
bool tr__saddr_same_host(const tr__saddr *a, const tr__saddr *b);
/* A socket bound at local takes what is sent to a: same family and port,
 * and local is a's address or the wildcard. */
bool tr__saddr_takes(const tr__saddr *local, const tr__saddr *a);
void tr__saddr_route(tr__saddr *a);    /* a wildcard destination means loopback */
/* Copies the first len bytes that iov[0..n) holds into dst (a segment's or
 * a datagram's payload). */
void tr__simnet_gather(unsigned char *dst, const struct iovec *iov, size_t n, size_t len);

/* simtcp.c */
uint32_t tr__tcp_poll(tr__sock *s);
void tr__tcp_deliver(tr__conn_sim *c, int i, uint64_t at);
void tr__tcp_rto(tr__conn_sim *c, int i, uint64_t at);
void tr__tcp_close(tr__sock *s);
void tr__tcp_release_held(uint64_t now);
void tr__tcp_free_all(void);
int tr__tcp_connect(tr__sock *s, const tr__saddr *to);
int tr__tcp_accept(tr__sock *l, struct sockaddr *addr, socklen_t *len);
ssize_t tr__tcp_recv(tr__sock *s, void *buf, size_t len, int flags);
ssize_t tr__tcp_write(tr__sock *s, const struct iovec *iov, size_t n, int flags);
int tr__tcp_shutdown(tr__sock *s, int how);

/* simudp.c */
uint32_t tr__udp_poll(tr__sock *s);
void tr__udp_deliver(tr__dgram *d);
ssize_t tr__udp_recvfrom(tr__sock *s, void *buf, size_t len, int flags, struct sockaddr *from,
                         socklen_t *from_len);
ssize_t tr__udp_send(tr__sock *s, const struct iovec *iov, size_t n, const tr__saddr *to);
void tr__udp_close(tr__sock *s);

/* simpart.c */
bool tr__simnet_cut(const tr__saddr *from, const tr__saddr *to);
void tr__simnet_heal_due(struct tr__part *p);
void tr__simnet_parts_free(void);

#endif
