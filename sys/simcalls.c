/* sys/simcalls.c — the socket calls of sys/sys.h under simulation: each
 * checks its arguments as the kernel would, then hands the socket to TCP
 * (simtcp.c) or UDP (simudp.c). Descriptors below TR__SIM_FD_FIRST are
 * real and go to the kernel. Simulated sockets never block: they behave as
 * if opened with SOCK_NONBLOCK, which is how net/ opens every socket.
 */
#include <errno.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <string.h>
#include <sys/uio.h>

#include "simnet.h"

/* The simulated socket behind fd, with the network brought up to now. */
static tr__sock *get(int fd)
{
    tr__simnet_enter();
    return tr__simnet_sock(fd);
}

static int fail(int err)
{
    errno = err;
    return -1;
}

int tr__simnet_socket(int domain, int type, int protocol)
{
    if (domain != AF_INET && domain != AF_INET6)
        return socket(domain, type, protocol);
    tr__simnet_enter();
    int base = type & ~(SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (base != SOCK_STREAM && base != SOCK_DGRAM)
        return fail(ESOCKTNOSUPPORT);
    if (protocol != 0 && protocol != (base == SOCK_STREAM ? IPPROTO_TCP : IPPROTO_UDP))
        return fail(EPROTONOSUPPORT);
    tr__sock *s = tr__simnet_sock_new(domain, base);
    if (s == NULL)
        return -1;
    if (tr__simnet_fd_alloc(s) < 0) {
        int err = errno;
        tr__simnet_sock_free(s);
        return fail(err);
    }
    return s->fd;
}

int tr__simnet_bind(int fd, const struct sockaddr *addr, socklen_t len)
{
    if (fd < TR__SIM_FD_FIRST)
        return bind(fd, addr, len);
    tr__sock *s = get(fd);
    if (s == NULL)
        return -1;
    if (s->bound)
        return fail(EINVAL);
    tr__saddr a;
    int err = tr__saddr_from(addr, len, s->family, &a);
    if (err == 0)
        err = a.port == 0 ? tr__simnet_ephemeral(s->type, &a.port) : tr__simnet_bind_check(s, &a);
    if (err != 0)
        return fail(err);
    s->local = a;
    s->bound = s->explicit_bound = true;
    return 0;
}

int tr__simnet_listen(int fd, int backlog)
{
    (void)backlog; /* the accept queue is not bounded */
    if (fd < TR__SIM_FD_FIRST)
        return listen(fd, backlog);
    tr__sock *s = get(fd);
    if (s == NULL)
        return -1;
    if (s->type != SOCK_STREAM)
        return fail(EOPNOTSUPP);
    if (s->state != S_NEW && s->state != S_LISTEN)
        return fail(EINVAL);
    if (!s->bound) {
        int err = tr__simnet_ephemeral(SOCK_STREAM, &s->local.port);
        if (err != 0)
            return fail(err);
        s->bound = s->explicit_bound = true;
    }
    s->state = S_LISTEN;
    return 0;
}

int tr__simnet_accept4(int fd, struct sockaddr *addr, socklen_t *len, int flags)
{
    if (fd < TR__SIM_FD_FIRST)
        return accept4(fd, addr, len, flags);
    tr__sock *s = get(fd);
    if (s == NULL)
        return -1;
    if (flags & ~(SOCK_NONBLOCK | SOCK_CLOEXEC))
        return fail(EINVAL);
    if (s->type != SOCK_STREAM)
        return fail(EOPNOTSUPP);
    return tr__tcp_accept(s, addr, len);
}

int tr__simnet_connect(int fd, const struct sockaddr *addr, socklen_t len)
{
    if (fd < TR__SIM_FD_FIRST)
        return connect(fd, addr, len);
    tr__sock *s = get(fd);
    if (s == NULL)
        return -1;
    tr__saddr to;
    int err = tr__saddr_from(addr, len, s->family, &to);
    if (err != 0)
        return fail(err);
    if (s->type == SOCK_STREAM)
        return tr__tcp_connect(s, &to);
    /* UDP: only the default destination. */
    tr__saddr_route(&to);
    s->peer = to;
    s->state = S_OPEN;
    return 0;
}

static int int_opt(const void *val, socklen_t len, int *out)
{
    if (val == NULL)
        return EFAULT;
    if (len < (socklen_t)sizeof(int))
        return EINVAL;
    memcpy(out, val, sizeof *out);
    return 0;
}

int tr__simnet_setsockopt(int fd, int level, int name, const void *val, socklen_t len)
{
    if (fd < TR__SIM_FD_FIRST)
        return setsockopt(fd, level, name, val, len);
    tr__sock *s = get(fd);
    if (s == NULL)
        return -1;
    int v = 0, err;
    if (level == SOL_SOCKET && name == SO_LINGER) {
        struct linger lg;
        if (val == NULL)
            return fail(EFAULT);
        if (len < (socklen_t)sizeof lg)
            return fail(EINVAL);
        memcpy(&lg, val, sizeof lg);
        /* As Linux: turned off, the time set before stays. */
        s->linger.l_onoff = lg.l_onoff != 0;
        if (lg.l_onoff)
            s->linger.l_linger = lg.l_linger;
        return 0;
    }
    if (level == SOL_SOCKET && (name == SO_SNDTIMEO || name == SO_RCVTIMEO))
        return val == NULL ? fail(EFAULT) : 0; /* nothing here ever blocks */
    bool known = (level == SOL_SOCKET && (name == SO_REUSEADDR || name == SO_REUSEPORT ||
                                          name == SO_KEEPALIVE || name == SO_SNDBUF ||
                                          name == SO_RCVBUF)) ||
                 (level == IPPROTO_TCP && s->type == SOCK_STREAM &&
                  (name == TCP_NODELAY || name == TCP_KEEPIDLE || name == TCP_KEEPINTVL ||
                   name == TCP_KEEPCNT || name == TCP_QUICKACK)) ||
                 (level == IPPROTO_IPV6 && s->family == AF_INET6 && name == IPV6_V6ONLY);
    if (!known)
        return fail(ENOPROTOOPT);
    if ((err = int_opt(val, len, &v)) != 0)
        return fail(err);
    if (level == SOL_SOCKET && name == SO_REUSEADDR)
        s->reuse = v != 0;
    else if (level == SOL_SOCKET && name == SO_KEEPALIVE)
        s->keepalive = v != 0;
    else if (level == IPPROTO_TCP && name == TCP_NODELAY)
        s->nodelay = v != 0;
    return 0;
}

/* Copies what fits of the option's value, as Linux does (a length short
 * of the value is no error: the caller gets its first bytes). */
static int put_opt(void *val, socklen_t *len, const void *v, size_t size)
{
    if ((int)*len < 0)
        return fail(EINVAL);
    if (*len > size)
        *len = (socklen_t)size;
    memcpy(val, v, *len);
    return 0;
}

int tr__simnet_getsockopt(int fd, int level, int name, void *val, socklen_t *len)
{
    if (fd < TR__SIM_FD_FIRST)
        return getsockopt(fd, level, name, val, len);
    tr__sock *s = get(fd);
    if (s == NULL)
        return -1;
    if (val == NULL || len == NULL)
        return fail(EFAULT);
    if (level == SOL_SOCKET && name == SO_LINGER)
        return put_opt(val, len, &s->linger, sizeof s->linger);
    int v;
    if (level == SOL_SOCKET && name == SO_ERROR) {
        v = s->err;
        s->err = 0;
    } else if (level == SOL_SOCKET && name == SO_TYPE) {
        v = s->type;
    } else if (level == SOL_SOCKET && name == SO_DOMAIN) {
        v = s->family;
    } else if (level == SOL_SOCKET && name == SO_REUSEADDR) {
        v = s->reuse;
    } else if (level == SOL_SOCKET && name == SO_ACCEPTCONN) {
        v = s->state == S_LISTEN;
    } else if (level == SOL_SOCKET && (name == SO_SNDBUF || name == SO_RCVBUF)) {
        v = tr__sim.buffer < INT32_MAX ? (int)tr__sim.buffer : INT32_MAX;
    } else if (level == SOL_SOCKET && name == SO_KEEPALIVE) {
        v = s->keepalive;
    } else if (level == IPPROTO_TCP && s->type == SOCK_STREAM && name == TCP_NODELAY) {
        v = s->nodelay;
    } else {
        return fail(ENOPROTOOPT);
    }
    return put_opt(val, len, &v, sizeof v);
}

int tr__simnet_getsockname(int fd, struct sockaddr *addr, socklen_t *len)
{
    if (fd < TR__SIM_FD_FIRST)
        return getsockname(fd, addr, len);
    tr__sock *s = get(fd);
    if (s == NULL)
        return -1;
    if (addr == NULL || len == NULL)
        return fail(EFAULT);
    tr__saddr_to(&s->local, addr, len); /* unbound: the wildcard, port 0 */
    return 0;
}

int tr__simnet_getpeername(int fd, struct sockaddr *addr, socklen_t *len)
{
    if (fd < TR__SIM_FD_FIRST)
        return getpeername(fd, addr, len);
    tr__sock *s = get(fd);
    if (s == NULL)
        return -1;
    if (addr == NULL || len == NULL)
        return fail(EFAULT);
    if (s->state != S_OPEN)
        return fail(ENOTCONN);
    tr__saddr_to(&s->peer, addr, len);
    return 0;
}

ssize_t tr__simnet_recvfrom(int fd, void *buf, size_t len, int flags, struct sockaddr *from,
                            socklen_t *from_len)
{
    if (fd < TR__SIM_FD_FIRST)
        return recvfrom(fd, buf, len, flags, from, from_len);
    tr__sock *s = get(fd);
    if (s == NULL)
        return -1;
    if (buf == NULL && len != 0)
        return fail(EFAULT);
    if (s->type == SOCK_STREAM)
        return tr__tcp_recv(s, buf, len, flags);
    return tr__udp_recvfrom(s, buf, len, flags, from, from_len);
}

ssize_t tr__simnet_recv(int fd, void *buf, size_t len, int flags)
{
    if (fd < TR__SIM_FD_FIRST)
        return recv(fd, buf, len, flags);
    return tr__simnet_recvfrom(fd, buf, len, flags, NULL, NULL);
}

/* Gathers iov to `to` (UDP; NULL: the connected destination) or along the
 * connection (TCP). */
static ssize_t write_iov(tr__sock *s, const struct iovec *iov, size_t n, int flags,
                         const struct sockaddr *to, socklen_t to_len)
{
    for (size_t k = 0; k < n; k++)
        if (iov[k].iov_base == NULL && iov[k].iov_len != 0)
            return fail(EFAULT);
    if (s->type == SOCK_STREAM)
        return tr__tcp_write(s, iov, n, flags);
    tr__saddr dst;
    if (to == NULL) {
        if (s->state != S_OPEN)
            return fail(EDESTADDRREQ);
        dst = s->peer;
    } else {
        int err = tr__saddr_from(to, to_len, s->family, &dst);
        if (err != 0)
            return fail(err);
    }
    return tr__udp_send(s, iov, n, &dst);
}

ssize_t tr__simnet_sendto(int fd, const void *buf, size_t len, int flags,
                          const struct sockaddr *to, socklen_t to_len)
{
    if (fd < TR__SIM_FD_FIRST)
        return sendto(fd, buf, len, flags, to, to_len);
    tr__sock *s = get(fd);
    if (s == NULL)
        return -1;
    struct iovec iov = {.iov_base = (void *)buf, .iov_len = len};
    return write_iov(s, &iov, 1, flags, s->type == SOCK_STREAM ? NULL : to, to_len);
}

ssize_t tr__simnet_send(int fd, const void *buf, size_t len, int flags)
{
    if (fd < TR__SIM_FD_FIRST)
        return send(fd, buf, len, flags);
    return tr__simnet_sendto(fd, buf, len, flags, NULL, 0);
}

ssize_t tr__simnet_sendmsg(int fd, const struct msghdr *msg, int flags)
{
    if (fd < TR__SIM_FD_FIRST)
        return sendmsg(fd, msg, flags);
    tr__sock *s = get(fd);
    if (s == NULL)
        return -1;
    if (msg == NULL || (msg->msg_iov == NULL && msg->msg_iovlen != 0))
        return fail(EFAULT);
    if (msg->msg_iovlen > IOV_MAX)
        return fail(EMSGSIZE);
    const struct sockaddr *to = s->type == SOCK_STREAM ? NULL : msg->msg_name;
    return write_iov(s, msg->msg_iov, msg->msg_iovlen, flags, to, msg->msg_namelen);
}

int tr__simnet_shutdown(int fd, int how)
{
    if (fd < TR__SIM_FD_FIRST)
        return shutdown(fd, how);
    tr__sock *s = get(fd);
    if (s == NULL)
        return -1;
    if (s->type != SOCK_STREAM)
        return fail(ENOTCONN);
    return tr__tcp_shutdown(s, how);
}
