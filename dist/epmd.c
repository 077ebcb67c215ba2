/* dist/epmd.c — registering with EPMD as the node starts: blocking, every
 * wait bounded, once, in tr_node_start (as tr_tcp_listen binds in the
 * caller). The registration's socket stays open for the node's life (EPMD
 * forgets a name when its connection closes). Looking a peer up is an
 * actor's work, and blocks no one: dist/lookup.c.
 *
 * Under simulation (tr__sim_on) no EPMD is asked: a real one would be
 * outside the simulated world, and the exchange would block the one thread
 * that runs every node. A table in the process stands in for it
 * (dist/simepmd.c). */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../base/clock.h"
#include "../net/net.h"
#include "dist.h"

static int64_t now_ms(void)
{
    return (int64_t)(tr__now_ns() / 1000000);
}

/* A connected socket to host:port, waiting at most ms; -errno on failure. */
static int dial(const char *host, uint16_t port, int ms)
{
    struct sockaddr_storage addr;
    socklen_t len;
    int err, fd = tr__socket_for(host, port, false, SOCK_STREAM, &addr, &len);
    if (fd < 0)
        return fd;
    if (connect(fd, (struct sockaddr *)&addr, len) != 0 && errno != EINPROGRESS) {
        err = -errno;
        close(fd);
        return err;
    }
    struct pollfd pf = {.fd = fd, .events = POLLOUT};
    int so = 0;
    socklen_t sl = sizeof so;
    if (poll(&pf, 1, ms) != 1) {
        close(fd);
        return TR_ETIMEDOUT;
    }
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &so, &sl) != 0 || so != 0) {
        close(fd);
        return so != 0 ? -so : TR_ECONNABORTED;
    }
    return fd;
}

/* Writes all of buf, then reads into in until parse says complete (1) or
 * fails, or the deadline passes. */
static int exchange(int fd, const uint8_t *buf, size_t len, uint8_t *in, size_t cap, int ms,
                    int (*parse)(const uint8_t *, size_t, void *), void *arg)
{
    int64_t end = now_ms() + ms;
    size_t done = 0, got = 0;
    while (done < len) {
        ssize_t k = send(fd, buf + done, len - done, MSG_NOSIGNAL);
        if (k < 0 && errno != EAGAIN && errno != EINTR)
            return -errno;
        if (k > 0)
            done += (size_t)k;
        else if (poll(&(struct pollfd){.fd = fd, .events = POLLOUT}, 1, 10) < 0 && errno != EINTR)
            return -errno;
        if (now_ms() > end)
            return TR_ETIMEDOUT;
    }
    for (;;) {
        int left = (int)(end - now_ms());
        if (left <= 0)
            return TR_ETIMEDOUT;
        struct pollfd pf = {.fd = fd, .events = POLLIN};
        if (poll(&pf, 1, left) <= 0)
            continue;
        ssize_t k = recv(fd, in + got, cap - got, 0);
        if (k < 0 && (errno == EAGAIN || errno == EINTR))
            continue;
        if (k <= 0)
            return TR_ECONNABORTED; /* closed before a whole answer */
        got += (size_t)k;
        int r = parse(in, got, arg);
        if (r != 0)
            return r;
        if (got == cap)
            return TR_EBADFRAME;
    }
}

static int parse_alive(const uint8_t *p, size_t n, void *arg)
{
    return tr__epmd_alive2_resp(p, n, arg);
}

/* Starts `epmd -daemon -port P`, as erl does when none answers. */
static void start_epmd(uint16_t port)
{
    char num[8];
    snprintf(num, sizeof num, "%u", (unsigned)port);
    pid_t pid = fork();
    if (pid == 0) {
        execlp("epmd", "epmd", "-daemon", "-port", num, (char *)NULL);
        _exit(127);
    }
    if (pid > 0)
        while (waitpid(pid, NULL, 0) < 0 && errno == EINTR) {
        }
}

int tr__epmd_register(tr__dist_node *n, const char *listen_host)
{
    if (tr__sim_on())
        return tr__simepmd_register(n, listen_host);
    int fd = dial("127.0.0.1", n->epmd_port, 1000);
    if (fd == -ECONNREFUSED) {
        start_epmd(n->epmd_port);
        /* It forks into the background: wait (bounded) for it to listen. */
        for (int64_t end = now_ms() + 5000; fd == -ECONNREFUSED && now_ms() < end;) {
            nanosleep(&(struct timespec){.tv_nsec = 20 * 1000000}, NULL);
            fd = dial("127.0.0.1", n->epmd_port, 1000);
        }
    }
    if (fd < 0)
        return fd;
    uint8_t req[32 + TR__NODE_NAME_MAX], in[64];
    size_t len = tr__epmd_alive2_req(req, sizeof req, n->port, n->alive);
    int r = exchange(fd, req, len, in, sizeof in, 3000, parse_alive, &n->creation);
    if (r != 1) {
        close(fd);
        return r < 0 ? r : TR_EBADFRAME;
    }
    n->epmd_fd = fd;
    return 0;
}

void tr__epmd_unregister(tr__dist_node *n)
{
    if (n->epmd_fd >= 0)
        close(n->epmd_fd);
    n->epmd_fd = -1;
    if (n->sim_registered)
        tr__simepmd_unregister(n);
}
