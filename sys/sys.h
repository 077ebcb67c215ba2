/* sys/sys.h — the socket and epoll calls of net/ and reactor/, answered by
 * the kernel in production and by the simulated network (sys/simnet.c)
 * while a simulation is in progress (internal).
 *
 * Each wrapper has the real call's contract (-1 and errno on failure), so
 * the code above reads exactly as it did with the real calls. Production
 * pays one load and a branch it always predicts. Under simulation,
 * descriptors from TR__SIM_FD_FIRST up are simulated sockets; calls on any
 * other descriptor (a pipe, the reactor's own eventfd) still go to the
 * kernel, and a socket of a family other than IPv4/IPv6 is a real one.
 */
#ifndef TR_SYS_SYS_H
#define TR_SYS_SYS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <unistd.h>

#include "../base/sim.h"

/* Simulated descriptors: above anything the kernel hands out by default,
 * below the reactor's table limit (2^24). */
#define TR__SIM_FD_FIRST (1 << 22)
#define TR__SIM_FD_LAST ((1 << 24) - 1)

int tr__simnet_socket(int domain, int type, int protocol);
int tr__simnet_bind(int fd, const struct sockaddr *addr, socklen_t len);
int tr__simnet_listen(int fd, int backlog);
int tr__simnet_accept4(int fd, struct sockaddr *addr, socklen_t *len, int flags);
int tr__simnet_connect(int fd, const struct sockaddr *addr, socklen_t len);
int tr__simnet_getsockopt(int fd, int level, int name, void *val, socklen_t *len);
int tr__simnet_setsockopt(int fd, int level, int name, const void *val, socklen_t len);
int tr__simnet_getsockname(int fd, struct sockaddr *addr, socklen_t *len);
int tr__simnet_getpeername(int fd, struct sockaddr *addr, socklen_t *len);
ssize_t tr__simnet_recv(int fd, void *buf, size_t len, int flags);
ssize_t tr__simnet_send(int fd, const void *buf, size_t len, int flags);
ssize_t tr__simnet_sendmsg(int fd, const struct msghdr *msg, int flags);
int tr__simnet_shutdown(int fd, int how);
int tr__simnet_close(int fd);
ssize_t tr__simnet_recvfrom(int fd, void *buf, size_t len, int flags, struct sockaddr *from,
                            socklen_t *from_len);
ssize_t tr__simnet_sendto(int fd, const void *buf, size_t len, int flags,
                          const struct sockaddr *to, socklen_t to_len);
int tr__simnet_epoll_ctl(int epfd, int op, int fd, struct epoll_event *ev);
/* Never blocks: the readiness due by the virtual clock, whatever timeout. */
int tr__simnet_epoll_wait(int epfd, struct epoll_event *events, int max, int timeout);

/* The virtual time of the next delivery, heal or reset the network has
 * planned (events due by now are carried out first), UINT64_MAX if none:
 * the simulator jumps there when nothing is runnable. Simulation thread. */
uint64_t tr__simnet_next_ns(void);

/* Frees the simulated network (sockets left open, data in flight,
 * partitions) as its simulation ends (sched/runtime.c). */
void tr__simnet_end(void);

/* Whether the simulated epoll epfd holds a wake-up not yet reported (a
 * reader made room for a writer): no event of the network's heap, but
 * due now. False outside simulation. Simulation thread. */
bool tr__simnet_ready_on(int epfd);

#define TR__SYS_CALL(call, args) \
    if (__builtin_expect(tr__sim_on(), 0)) \
        return tr__simnet_##call args; \
    return call args

static inline int tr__sys_socket(int domain, int type, int protocol)
{
    TR__SYS_CALL(socket, (domain, type, protocol));
}

static inline int tr__sys_bind(int fd, const struct sockaddr *addr, socklen_t len)
{
    TR__SYS_CALL(bind, (fd, addr, len));
}

static inline int tr__sys_listen(int fd, int backlog)
{
    TR__SYS_CALL(listen, (fd, backlog));
}

static inline int tr__sys_accept4(int fd, struct sockaddr *addr, socklen_t *len, int flags)
{
    TR__SYS_CALL(accept4, (fd, addr, len, flags));
}

static inline int tr__sys_connect(int fd, const struct sockaddr *addr, socklen_t len)
{
    TR__SYS_CALL(connect, (fd, addr, len));
}

static inline int tr__sys_getsockopt(int fd, int level, int name, void *val, socklen_t *len)
{
    TR__SYS_CALL(getsockopt, (fd, level, name, val, len));
}

static inline int tr__sys_setsockopt(int fd, int level, int name, const void *val, socklen_t len)
{
    TR__SYS_CALL(setsockopt, (fd, level, name, val, len));
}

static inline int tr__sys_getsockname(int fd, struct sockaddr *addr, socklen_t *len)
{
    TR__SYS_CALL(getsockname, (fd, addr, len));
}

static inline int tr__sys_getpeername(int fd, struct sockaddr *addr, socklen_t *len)
{
    TR__SYS_CALL(getpeername, (fd, addr, len));
}

static inline ssize_t tr__sys_recv(int fd, void *buf, size_t len, int flags)
{
    TR__SYS_CALL(recv, (fd, buf, len, flags));
}

static inline ssize_t tr__sys_send(int fd, const void *buf, size_t len, int flags)
{
    TR__SYS_CALL(send, (fd, buf, len, flags));
}

static inline ssize_t tr__sys_sendmsg(int fd, const struct msghdr *msg, int flags)
{
    TR__SYS_CALL(sendmsg, (fd, msg, flags));
}

static inline int tr__sys_shutdown(int fd, int how)
{
    TR__SYS_CALL(shutdown, (fd, how));
}

static inline int tr__sys_close(int fd)
{
    TR__SYS_CALL(close, (fd));
}

static inline ssize_t tr__sys_recvfrom(int fd, void *buf, size_t len, int flags,
                                       struct sockaddr *from, socklen_t *from_len)
{
    TR__SYS_CALL(recvfrom, (fd, buf, len, flags, from, from_len));
}

static inline ssize_t tr__sys_sendto(int fd, const void *buf, size_t len, int flags,
                                     const struct sockaddr *to, socklen_t to_len)
{
    TR__SYS_CALL(sendto, (fd, buf, len, flags, to, to_len));
}

static inline int tr__sys_epoll_ctl(int epfd, int op, int fd, struct epoll_event *ev)
{
    TR__SYS_CALL(epoll_ctl, (epfd, op, fd, ev));
}

static inline int tr__sys_epoll_wait(int epfd, struct epoll_event *events, int max, int timeout)
{
    TR__SYS_CALL(epoll_wait, (epfd, events, max, timeout));
}

#undef TR__SYS_CALL

#endif
