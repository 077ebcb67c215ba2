/* support/epmd.h — a private EPMD for the programs that need one: the
 * distribution tests (tests/dist_util.c) and the two-node benchmarks
 * (bench/dist_bench.h). Each starts `epmd -daemon` on a free port (never
 * the machine's 4369, which real nodes may use), waits until it answers,
 * and kills it at the end. Not part of the library. */
#ifndef TROUPE_SUPPORT_EPMD_H
#define TROUPE_SUPPORT_EPMD_H

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/* A TCP port nobody listens on right now (the kernel's pick), or 0. */
static inline uint16_t epmd_free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    uint16_t port = 0;
    if (fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof a) == 0 &&
        getsockname(fd, (struct sockaddr *)&a, &len) == 0)
        port = ntohs(a.sin_port);
    if (fd >= 0)
        close(fd);
    return port;
}

static inline bool epmd_answers(uint16_t port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    bool ok = fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof a) == 0;
    if (fd >= 0)
        close(fd);
    return ok;
}

/* Whether an epmd answers on port within secs seconds. */
static inline bool epmd_await(uint16_t port, unsigned secs)
{
    struct timespec pause = {0, 10 * 1000 * 1000};
    for (unsigned i = 0; i < secs * 100; i++, nanosleep(&pause, NULL))
        if (epmd_answers(port))
            return true;
    return false;
}

/* Starts `epmd -daemon` on port and waits (10 s at most) until it answers. */
static inline bool epmd_start(uint16_t port)
{
    char cmd[128];
    /* -relaxed_command_check: so that -kill works with names registered. */
    snprintf(cmd, sizeof cmd, "epmd -daemon -relaxed_command_check -port %u", (unsigned)port);
    return port != 0 && system(cmd) == 0 && epmd_await(port, 10);
}

static inline bool epmd_stop(uint16_t port)
{
    char cmd[128];
    snprintf(cmd, sizeof cmd, "epmd -port %u -kill >/dev/null 2>&1", (unsigned)port);
    return port == 0 || system(cmd) == 0;
}

#endif
