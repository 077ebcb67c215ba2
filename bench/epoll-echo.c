/* epoll-echo — the floor for the echo workloads: a plain TCP echo server,
 * one thread, level-triggered epoll, libc only (it does not use troupe).
 * run.sh drives it with loadgen right after examples/echo, so that
 * troupe's figures can be read as ratios to the least a server can cost.
 *
 *   epoll-echo [port]   listens on 127.0.0.1 (default 8080, 0: any free
 *                       port); prints "epoll-echo: listening on
 *                       127.0.0.1:<port>"; SIGTERM or SIGINT stops it
 *                       (exit 0, every connection closed and freed).
 *
 * Each readable connection gets one read per wakeup (fair under level
 * triggering), echoed at once. What the socket does not take waits in the
 * connection's own buffer, and the connection then waits for EPOLLOUT
 * instead of EPOLLIN: it reads nothing more until its backlog is written,
 * so a client that does not read cannot grow the server's memory. A
 * peer's FIN is answered by close() once everything before it is echoed.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <unistd.h>

#define CHUNK (64 * 1024)
#define MAX_EVENTS 256

typedef struct conn {
    int fd;
    char *pending;      /* echo not yet taken by the socket; NULL if none */
    size_t off, len;    /* that backlog: pending[off, off + len) */
} conn;

static int epfd;
static conn **conns;    /* by descriptor, to free them all on exit */
static size_t nconns;
static char chunk[CHUNK];

static int watch(int op, int fd, unsigned events, void *ptr)
{
    struct epoll_event ev = {.events = events, .data.ptr = ptr};
    return epoll_ctl(epfd, op, fd, &ev);
}

static void drop(conn *c)
{
    conns[c->fd] = NULL;
    close(c->fd);    /* also leaves the epoll set */
    free(c->pending);
    free(c);
}

/* Writes what the socket takes of buf[0, len): either fresh input from
 * the shared chunk or c's own backlog. What is left becomes (or stays) c's
 * backlog, and c then waits for EPOLLOUT. Returns -1 if the connection
 * failed and was freed. */
static int send_or_keep(conn *c, const char *buf, size_t len)
{
    ssize_t w = send(c->fd, buf, len, MSG_NOSIGNAL);
    if (w < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
        drop(c);
        return -1;
    }
    size_t done = w > 0 ? (size_t)w : 0;
    if (c->pending != NULL) {   /* buf is the backlog */
        c->off += done;
        c->len = len - done;
        return 0;
    }
    if (done == len)
        return 0;
    if ((c->pending = malloc(CHUNK)) == NULL) {
        drop(c);
        return -1;
    }
    memcpy(c->pending, buf + done, len - done);
    c->off = 0;
    c->len = len - done;
    if (watch(EPOLL_CTL_MOD, c->fd, EPOLLOUT, c) != 0) {
        drop(c);
        return -1;
    }
    return 0;
}

static void on_writable(conn *c);

static void on_readable(conn *c)
{
    if (c->pending != NULL) {
        on_writable(c); /* a hang-up or error while the backlog waits: the
                         * send says which, and drops the connection */
        return;
    }
    ssize_t r = recv(c->fd, chunk, sizeof chunk, 0);
    if (r > 0)
        send_or_keep(c, chunk, (size_t)r);
    else if (r == 0 || (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR))
        drop(c);    /* FIN with nothing left to echo: close() sends ours */
}

/* Once the backlog is written, c reads again (and so sees a FIN that
 * came after it). */
static void on_writable(conn *c)
{
    if (send_or_keep(c, c->pending + c->off, c->len) != 0 || c->len != 0)
        return;
    free(c->pending);   /* idle connections keep no buffer */
    c->pending = NULL;
    if (watch(EPOLL_CTL_MOD, c->fd, EPOLLIN, c) != 0)
        drop(c);
}

/* Takes one connection off the listen queue; 0 once it is empty (or
 * accept fails: a connection reset in the queue, EMFILE). */
static int accept_one(int lfd)
{
    int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0)
        return 0;
    if ((size_t)fd >= nconns) {
        size_t n = (size_t)fd * 2 + 64;
        conn **grown = realloc(conns, n * sizeof *grown);
        if (grown == NULL) {
            close(fd);
            return 1;
        }
        memset(grown + nconns, 0, (n - nconns) * sizeof *grown);
        conns = grown;
        nconns = n;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    conn *c = calloc(1, sizeof *c);
    if (c == NULL || (c->fd = fd, watch(EPOLL_CTL_ADD, fd, EPOLLIN, c)) != 0) {
        free(c);
        close(fd);
        return 1;
    }
    conns[fd] = c;
    return 1;
}

/* Whether the signalfd held SIGTERM or SIGINT. Reading it takes the
 * signal: left pending, it could still kill the process at exit, through
 * any thread that does not block it (LeakSanitizer starts one). */
static int stop_signal(int sfd)
{
    struct signalfd_siginfo si;
    return read(sfd, &si, sizeof si) == (ssize_t)sizeof si;
}

/* The listening socket on 127.0.0.1:port, or -1 (errno set). */
static int listen_on(unsigned port, unsigned *bound)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    socklen_t alen = sizeof a;
    int one = 1, fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0 ||
        bind(fd, (struct sockaddr *)&a, sizeof a) != 0 || listen(fd, SOMAXCONN) != 0 ||
        getsockname(fd, (struct sockaddr *)&a, &alen) != 0) {
        if (fd >= 0)
            close(fd);
        return -1;
    }
    *bound = ntohs(a.sin_port);
    return fd;
}

int main(int argc, char **argv)
{
    char *end = NULL;
    unsigned long port = argc > 1 ? strtoul(argv[1], &end, 10) : 8080;
    /* Anything but one port number is refused at once: device scripts run
     * every bench program with --threads T and must not wait on a server. */
    if (argc > 2 || (argc == 2 && (argv[1][0] < '0' || argv[1][0] > '9' || *end != '\0' ||
                                   port > 65535))) {
        fprintf(stderr, "usage: epoll-echo [port]\n");
        return 2;
    }
    /* echo-idle opens 10,000 connections. */
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    /* The signals arrive as a descriptor, so that stopping is one more
     * event and the loop never has to race a handler. */
    sigset_t stop;
    sigemptyset(&stop);
    sigaddset(&stop, SIGTERM);
    sigaddset(&stop, SIGINT);
    unsigned bound = 0;
    int lfd = -1, sfd = -1;
    if (sigprocmask(SIG_BLOCK, &stop, NULL) != 0 ||
        (sfd = signalfd(-1, &stop, SFD_CLOEXEC)) < 0 ||
        (epfd = epoll_create1(EPOLL_CLOEXEC)) < 0 ||
        (lfd = listen_on((unsigned)port, &bound)) < 0 ||
        watch(EPOLL_CTL_ADD, lfd, EPOLLIN, &lfd) != 0 ||
        watch(EPOLL_CTL_ADD, sfd, EPOLLIN, &sfd) != 0) {
        perror("epoll-echo");
        return 1;
    }
    printf("epoll-echo: listening on 127.0.0.1:%u\n", bound);
    fflush(stdout);

    struct epoll_event evs[MAX_EVENTS];
    for (int running = 1; running;) {
        int n = epoll_wait(epfd, evs, MAX_EVENTS, -1);
        if (n < 0 && errno != EINTR) {
            perror("epoll-echo: epoll_wait");
            return 1;
        }
        for (int i = 0; i < n; i++) {
            void *p = evs[i].data.ptr;
            unsigned e = evs[i].events;
            if (p == &sfd)
                running = !stop_signal(sfd);
            else if (p == &lfd)
                for (int k = 0; k < 64 && accept_one(lfd); k++)
                    ;   /* a batch per wakeup: echo-idle connects 10,000 */
            else if (e & EPOLLOUT)
                on_writable(p);
            else
                on_readable(p);     /* EPOLLIN, HUP, ERR: recv says which */
        }
    }
    for (size_t fd = 0; fd < nconns; fd++)
        if (conns[fd] != NULL)
            drop(conns[fd]);
    free(conns);
    close(lfd);
    close(sfd);
    close(epfd);
    return 0;
}
