/* chat_util.h — what the chat suites share (tests/test_chat_*.c): end to
 * end tests of the chat example (examples/chat.c) against its protocol
 * (docs/chat-protocol.md), over loopback.
 *
 * Each test starts the built example as a child process on a free port
 * (`chat 0`; the port is read from the line it prints), talks to it with
 * plain blocking sockets whose reads time out (a broken server fails a
 * test instead of hanging it), and ends it with SIGTERM: it must exit 0,
 * which under a sanitizer build also means no leak or error report. The
 * binary is $BUILD/examples/chat, else the one beside this runner
 * (<build>/tests/run -> <build>/examples/chat), else build/release.
 *
 * One test per row of the protocol's tables, plus framing (CRLF, case,
 * over-long lines), disconnects, per-sender order across three clients, a
 * client that never reads and the cap on rooms per client. No timing
 * assertions.
 */
#ifndef TROUPE_TESTS_CHAT_UTIL_H
#define TROUPE_TESTS_CHAT_UTIL_H

#include "tests.h"

/* ---- the server process ---------------------------------------------------- */

typedef tt_example chat_server;

/* tt_example_start and tt_example_stop (tests.h) for examples/chat. */
bool chat_start(chat_server *s);
void chat_stop(chat_server *s);

/* ---- clients ------------------------------------------------------------- */

typedef struct peer {
    int fd;
    bool broken;      /* a read failed: later reads fail at once */
    char nick[40];    /* as user() set it; "" for peer_open's */
    size_t len;
    char buf[16384];  /* received, not yet returned as lines */
} peer;

/* Connects (with a small receive buffer if rcvbuf > 0); the caller expects
 * the greeting. Never NULL: a failed peer is marked broken so that the rest
 * fails fast. */
peer *peer_open_buf(const chat_server *s, int rcvbuf);
/* Connects and expects the greeting. */
peer *peer_open(const chat_server *s);
/* A client that has taken `nick`. */
peer *user(const chat_server *s, const char *nick);
void peer_close(peer *p);

void put_raw(peer *p, const char *data, size_t n);
/* Sends one line (printf-style; "\n" added). */
__attribute__((format(printf, 2, 3)))
void put(peer *p, const char *fmt, ...);
/* 1: bytes arrived; 0: end of stream or reset; -1: timeout or error. */
int fill(peer *p);
/* The next line, without its "\n"; false (and a note) on timeout or end. */
bool get(peer *p, char *line, size_t cap);
/* JOIN, expecting OK. */
void join(peer *p, const char *room);
/* Each of the n clients (made by user()) joins room in turn, and each
 * earlier one reads the JOINED of every later one: a room of n members
 * with nothing left to read. */
void join_all(const char *room, peer *const p[], int n);
/* Closes the n clients, then stops the server (chat_stop). */
void chat_end(chat_server *s, peer *const p[], int n);

/* The next line is exactly the printf-style text. */
#define EXPECT(p, ...) expect_line((p), __FILE__, __LINE__, __VA_ARGS__)
__attribute__((format(printf, 4, 5)))
void expect_line(peer *p, const char *file, unsigned at, const char *fmt, ...);
/* The server closes the connection (FIN or RST) with no more lines first. */
#define EXPECT_CLOSED(p) expect_closed((p), __FILE__, __LINE__)
void expect_closed(peer *p, const char *file, unsigned at);

#endif
