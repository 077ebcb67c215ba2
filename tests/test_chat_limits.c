/* test_chat_limits.c — the chat example, limits: a client that never reads
 * is dropped with the server's memory bounded, the cap on rooms per client,
 * and more rooms than the registry once held.
 *
 * The helpers, and how every chat test runs the server: chat_util.h. */
#include "chat_util.h"

#include <poll.h>
#include <stdlib.h>
#include <string.h>

#define RSS_LIMIT_KB (64 * 1024) /* the server's resident memory while flooded */

/* A client that joins a room and never reads while another floods the room
 * with long lines: once its unsent output passes 1 MiB it is dropped; the
 * server's memory stays bounded; the others are served throughout. */
static void test_slow_client(void)
{
    enum { BATCH = 16, MAX_LINES = 6400 }; /* at most ~25 MiB of flood */
    chat_server s;
    if (!chat_start(&s))
        return;
    peer *slow = peer_open_buf(&s, 4096);
    EXPECT(slow, "HELLO troupe-chat");
    put(slow, "NICK slow");
    EXPECT(slow, "OK NICK slow");
    join(slow, "#flood");
    peer *f = user(&s, "flooder");
    join(f, "#flood");
    peer *w = user(&s, "watcher");
    join(w, "#flood");
    EXPECT(f, "JOINED #flood watcher");
    long rss_before = tt_example_rss_kb(&s);

    static char text[4000];
    memset(text, 'f', sizeof text - 1);
    bool dropped = false, parted = false, in_order = true;
    int sent = 0;
    static char line[8192];
    while (sent < MAX_LINES && !dropped && in_order) {
        for (int i = 0; i < BATCH; i++)
            put(f, "MSG #flood %06d %s", sent + i, text);
        for (int i = 0; i < BATCH && in_order; i++) {
            peer *readers[2] = {f, w};
            for (int r = 0; r < 2 && in_order; r++) {
                int k = -1;
                while (get(readers[r], line, sizeof line) &&
                       strcmp(line, "PARTED #flood slow") == 0)
                    parted |= readers[r] == w;
                in_order = sscanf(line, "MSG #flood flooder %d", &k) == 1 && k == sent + i;
                if (!in_order)
                    printf("\n    line %d to %s: \"%.60s\"\n", sent + i,
                           r == 0 ? "the flooder" : "the watcher", line);
            }
        }
        sent += BATCH;
        struct pollfd pfd = {.fd = slow->fd, .events = POLLIN | POLLRDHUP};
        dropped = poll(&pfd, 1, 0) == 1 && (pfd.revents & (POLLERR | POLLHUP | POLLRDHUP));
    }
    long rss_after = tt_example_rss_kb(&s);
    CU_ASSERT(in_order);
    if (!dropped)
        printf("\n    the slow client was not dropped after %d lines (%d KiB)\n", sent,
               sent * 4);
    CU_ASSERT(dropped);
    printf("[%d KiB flooded; server RSS %ld -> %ld KiB] ", sent * 4, rss_before, rss_after);
    /* Sanitizers add shadow memory and a quarantine of freed blocks: there
     * the bound is on the growth. */
    long limit = TT_ASAN || TT_TSAN ? rss_before + RSS_LIMIT_KB : RSS_LIMIT_KB;
    CU_ASSERT(rss_after > 0 && rss_after < limit);

    /* The slow client sees the end of its stream after what was buffered. */
    int r;
    slow->len = 0;
    while ((r = fill(slow)) > 0)
        slow->len = 0;
    CU_ASSERT(r == 0);

    /* The watcher is still served and sees the slow client gone. */
    bool gone = false;
    for (int i = 0; i < 200 && !gone; i++) {
        put(w, "WHO #flood");
        while (get(w, line, sizeof line) && strcmp(line, "PARTED #flood slow") == 0)
            parted = true;
        gone = strcmp(line, "WHO #flood flooder watcher") == 0;
        if (!gone)
            tt_sleep_ms(20);
    }
    CU_ASSERT(gone);
    CU_ASSERT(parted);
    put(f, "MSG #flood done");
    while (get(f, line, sizeof line) && strcmp(line, "PARTED #flood slow") == 0)
        ;
    CU_ASSERT_STRING_EQUAL(line, "MSG #flood flooder done");
    EXPECT(w, "MSG #flood flooder done");
    chat_end(&s, (peer *[]){slow, f, w}, 3);
}

/* The per-client cap on rooms (docs/chat-protocol.md, Limits): alice
 * joins new rooms up to it and is refused the next one, with nothing
 * changed; bob can still create rooms and join hers; after a PART alice can
 * join again. */
#define CHAT_MAX_ROOMS 64

static void test_room_cap(void)
{
    chat_server s;
    if (!chat_start(&s))
        return;
    peer *a = user(&s, "alice");
    peer *b = user(&s, "bob");
    for (int i = 0; i < CHAT_MAX_ROOMS; i++) {
        put(a, "JOIN #a%d", i);
        EXPECT(a, "OK JOIN #a%d", i);
    }
    put(a, "JOIN #one-too-many");
    EXPECT(a, "ERR too-many-rooms");
    put(a, "WHO #one-too-many"); /* not created */
    EXPECT(a, "ERR no-such-room");
    put(a, "JOIN #a0"); /* already in: still fine */
    EXPECT(a, "OK JOIN #a0");
    join(b, "#b-own"); /* others are not held back */
    join(b, "#a7");
    EXPECT(a, "JOINED #a7 bob");
    put(b, "WHO #a7");
    EXPECT(b, "WHO #a7 alice bob");
    put(a, "PART #a3");
    EXPECT(a, "OK PART #a3");
    join(a, "#b-own");
    EXPECT(b, "JOINED #b-own alice");
    put(a, "JOIN #a3");
    EXPECT(a, "ERR too-many-rooms");
    put(a, "MSG #a63 still here");
    EXPECT(a, "MSG #a63 alice still here");
    chat_end(&s, (peer *[]){a, b}, 2);
}

/* Many clients, each at the cap, hold more rooms than the 12,288 names the
 * registry once held at most; a newcomer can still create a room. */
#define MANY_CLIENTS 200

static void test_many_rooms(void)
{
    chat_server s;
    if (!chat_start(&s))
        return;
    peer **p = calloc(MANY_CLIENTS, sizeof *p);
    CU_ASSERT_FATAL(p != NULL);
    char nick[32];
    for (int i = 0; i < MANY_CLIENTS; i++) {
        snprintf(nick, sizeof nick, "u%d", i);
        p[i] = user(&s, nick);
        for (int k = 0; k < CHAT_MAX_ROOMS; k++) /* all at once: answered in order */
            put(p[i], "JOIN #u%d-%d", i, k);
        for (int k = 0; k < CHAT_MAX_ROOMS; k++)
            EXPECT(p[i], "OK JOIN #u%d-%d", i, k);
    }
    peer *late = user(&s, "late");
    join(late, "#fresh");
    join(late, "#u0-0");
    EXPECT(p[0], "JOINED #u0-0 late");
    put(late, "WHO #u199-63");
    EXPECT(late, "WHO #u199-63 u199");
    peer_close(late);
    for (int i = 0; i < MANY_CLIENTS; i++)
        peer_close(p[i]);
    free(p);
    chat_stop(&s);
}

void register_chat_limits_tests(void)
{
    CU_pSuite s = tt_suite("chat_limits");
    tt_test(s, "slow_client_dropped", test_slow_client);
    tt_test(s, "rooms_per_client_capped", test_room_cap);
    tt_test(s, "rooms_past_12288", test_many_rooms);
}
