/* net/addr.c — resolving and binding. */
#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "../sched/sched.h"
#include "net.h"

int tr__resolve(const char *host, uint16_t port, bool passive, int socktype,
                struct sockaddr_storage *addr, socklen_t *len)
{
    char service[8];
    snprintf(service, sizeof service, "%u", (unsigned)port);
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = socktype,
                             .ai_flags = AI_NUMERICSERV | (passive ? AI_PASSIVE : 0)};
    if (host == NULL && passive)
        hints.ai_family = AF_INET; /* 0.0.0.0, not :: */
    struct addrinfo *res = NULL;
    int err = getaddrinfo(host, service, &hints, &res);
    if (err != 0 || res == NULL) {
        if (res != NULL)
            freeaddrinfo(res);
        return err == EAI_MEMORY ? TR_ENOMEM : TR_EHOSTUNREACH;
    }
    memcpy(addr, res->ai_addr, res->ai_addrlen);
    *len = res->ai_addrlen;
    freeaddrinfo(res);
    return 0;
}

int tr__socket_for(const char *host, uint16_t port, bool passive, int socktype,
                   struct sockaddr_storage *addr, socklen_t *len)
{
    int err = tr__resolve(host, port, passive, socktype, addr, len);
    if (err != 0)
        return err;
    int fd = tr__sys_socket(addr->ss_family, socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    return fd >= 0 ? fd : -errno;
}

int tr__bind_socket(const char *host, uint16_t port, int socktype, uint16_t *bound)
{
    struct sockaddr_storage ss;
    socklen_t len;
    int fd = tr__socket_for(host, port, true, socktype, &ss, &len);
    if (fd < 0)
        return fd;
    /* TCP: SO_REUSEADDR, so that a restarted server binds again while
     * connections of its last run are in TIME_WAIT; a socket that listens
     * there still makes bind fail with EADDRINUSE. Not for UDP: there it
     * lets two sockets that both set it bind the same port (Linux gives
     * each datagram to one of them), so a second tr_udp_open would
     * succeed and take the first one's datagrams instead of failing. */
    int err, one = 1;
    if (socktype == SOCK_STREAM)
        tr__sys_setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (tr__sys_bind(fd, (struct sockaddr *)&ss, len) != 0) {
        err = -errno;
        tr__sys_close(fd);
        return err;
    }
    if (bound != NULL) {
        len = sizeof ss;
        tr__sys_getsockname(fd, (struct sockaddr *)&ss, &len);
        *bound = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                                : ((struct sockaddr_in *)&ss)->sin_port);
    }
    return fd;
}
