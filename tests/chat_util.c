/* chat_util.c — the helpers of chat_util.h: the chat example as a child
 * process (tt_example_start, tests/util.c), and line-oriented clients that
 * talk to it. */
#include "chat_util.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define IO_TIMEOUT_S 5       /* a read or write that must complete */

/* ---- the server process ---------------------------------------------------- */

bool chat_start(chat_server *s)
{
    return tt_example_start("chat", s);
}

void chat_stop(chat_server *s)
{
    tt_example_stop(s);
}

/* ---- clients ------------------------------------------------------------- */

/* Connects (with a small receive buffer if rcvbuf > 0); the caller expects
 * the greeting. Never NULL: a failed peer is marked broken so that the rest
 * fails fast. */
peer *peer_open_buf(const chat_server *s, int rcvbuf)
{
    peer *p = calloc(1, sizeof *p);
    CU_ASSERT_FATAL(p != NULL);
    p->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct timeval tv = {.tv_sec = IO_TIMEOUT_S};
    setsockopt(p->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(p->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    if (rcvbuf > 0)
        setsockopt(p->fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(s->port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (p->fd < 0 || connect(p->fd, (struct sockaddr *)&a, sizeof a) != 0) {
        printf("\n    connect to 127.0.0.1:%u: %s\n", s->port, strerror(errno));
        CU_FAIL("connect to the chat server");
        p->broken = true;
    }
    return p;
}

void peer_close(peer *p)
{
    if (p->fd >= 0)
        close(p->fd);
    free(p);
}

void put_raw(peer *p, const char *data, size_t n)
{
    while (n > 0 && !p->broken) {
        ssize_t w = send(p->fd, data, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            printf("\n    send: %s\n", w < 0 ? strerror(errno) : "nothing sent");
            CU_FAIL("send to the chat server");
            p->broken = true;
            return;
        }
        data += w;
        n -= (size_t)w;
    }
}

/* Sends one line (printf-style; "\n" added). */
__attribute__((format(printf, 2, 3)))
void put(peer *p, const char *fmt, ...)
{
    char line[8192];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line, sizeof line - 1, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof line - 1)
        n = (int)sizeof line - 2;
    line[n++] = '\n';
    put_raw(p, line, (size_t)n);
}

/* 1: bytes arrived; 0: end of stream or reset; -1: timeout or error. */
int fill(peer *p)
{
    if (p->len == sizeof p->buf)
        return -1;
    for (;;) {
        ssize_t r = recv(p->fd, p->buf + p->len, sizeof p->buf - p->len, 0);
        if (r > 0) {
            p->len += (size_t)r;
            return 1;
        }
        if (r < 0 && errno == EINTR)
            continue;
        return r == 0 || errno == ECONNRESET ? 0 : -1;
    }
}

/* The next line, without its "\n"; false (and a note) on timeout or end. */
bool get(peer *p, char *line, size_t cap)
{
    char *nl;
    while (!p->broken && (nl = memchr(p->buf, '\n', p->len)) == NULL) {
        int r = fill(p);
        if (r <= 0) {
            printf("\n    no line from the chat server: %s\n",
                   r == 0 ? "connection closed" : "timed out");
            p->broken = true;
        }
    }
    if (p->broken)
        return false;
    size_t n = (size_t)(nl - p->buf);
    size_t keep = n < cap ? n : cap - 1;
    memcpy(line, p->buf, keep);
    line[keep] = '\0';
    p->len -= n + 1;
    memmove(p->buf, nl + 1, p->len);
    return true;
}

__attribute__((format(printf, 4, 5)))
void expect_line(peer *p, const char *file, unsigned at, const char *fmt, ...)
{
    char want[8192], got[8192];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(want, sizeof want, fmt, ap);
    va_end(ap);
    bool ok = get(p, got, sizeof got);
    if (ok && strcmp(got, want) != 0)
        printf("\n    %s:%u: got \"%.200s\", expected \"%.200s\"\n", file, at, got, want);
    else if (!ok)
        printf("\n    %s:%u: expected \"%.200s\"\n", file, at, want);
    CU_assertImplementation(ok && strcmp(got, want) == 0, at, want, file, "", CU_FALSE);
}

/* The server closes the connection (FIN or RST) with no more lines first. */
void expect_closed(peer *p, const char *file, unsigned at)
{
    int r = p->broken ? -1 : p->len > 0 ? 1 : fill(p);
    if (r != 0)
        printf("\n    %s:%u: expected the connection closed, %s\n", file, at,
               r > 0 ? "got more bytes" : "timed out");
    CU_assertImplementation(r == 0, at, "connection closed", file, "", CU_FALSE);
}

peer *peer_open(const chat_server *s)
{
    peer *p = peer_open_buf(s, 0);
    EXPECT(p, "HELLO troupe-chat");
    return p;
}

/* A client that has taken `nick`. */
peer *user(const chat_server *s, const char *nick)
{
    peer *p = peer_open(s);
    put(p, "NICK %s", nick);
    EXPECT(p, "OK NICK %s", nick);
    snprintf(p->nick, sizeof p->nick, "%s", nick);
    return p;
}

void join(peer *p, const char *room)
{
    put(p, "JOIN %s", room);
    EXPECT(p, "OK JOIN %s", room);
}

void join_all(const char *room, peer *const p[], int n)
{
    for (int i = 0; i < n; i++) {
        join(p[i], room);
        for (int j = 0; j < i; j++)
            EXPECT(p[j], "JOINED %s %s", room, p[i]->nick);
    }
}

void chat_end(chat_server *s, peer *const p[], int n)
{
    for (int i = 0; i < n; i++)
        peer_close(p[i]);
    chat_stop(s);
}
