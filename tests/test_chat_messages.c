/* test_chat_messages.c — the chat example, MSG to a room and PRIV to a nick:
 * who gets them, who does not, and in what order.
 *
 * The helpers, and how every chat test runs the server: chat_util.h. */
#include "chat_util.h"

#include <string.h>

static void test_msg_delivery(void)
{
    chat_server s;
    if (!chat_start(&s))
        return;
    peer *a = user(&s, "alice");
    peer *b = user(&s, "bob");
    peer *c = user(&s, "carol");
    join_all("#r", (peer *[]){a, b}, 2);
    join(c, "#other");
    put(a, "MSG #r hello, world:  two spaces and UTF-8 \xc3\xa9");
    EXPECT(a, "MSG #r alice hello, world:  two spaces and UTF-8 \xc3\xa9");
    EXPECT(b, "MSG #r alice hello, world:  two spaces and UTF-8 \xc3\xa9");
    put(b, "MSG #r back");
    EXPECT(a, "MSG #r bob back");
    EXPECT(b, "MSG #r bob back");
    put(c, "WHO #other"); /* carol, in another room, got neither */
    EXPECT(c, "WHO #other carol");
    chat_end(&s, (peer *[]){a, b, c}, 3);
}

static void test_msg_not_member(void)
{
    chat_server s;
    if (!chat_start(&s))
        return;
    peer *a = user(&s, "alice");
    peer *b = user(&s, "bob");
    join(b, "#r");
    put(a, "MSG #r let me in");
    EXPECT(a, "ERR not-member");
    put(a, "MSG #nowhere hello");
    EXPECT(a, "ERR not-member");
    put(b, "WHO #r"); /* bob got nothing from alice */
    EXPECT(b, "WHO #r bob");
    chat_end(&s, (peer *[]){a, b}, 2);
}

static void test_priv_ok(void)
{
    chat_server s;
    if (!chat_start(&s))
        return;
    peer *a = user(&s, "alice");
    peer *b = user(&s, "bob");
    put(a, "PRIV bob hi bob, how are you?");
    EXPECT(a, "OK PRIV bob");
    EXPECT(b, "PRIV alice hi bob, how are you?");
    put(b, "PRIV alice fine");
    EXPECT(b, "OK PRIV alice");
    EXPECT(a, "PRIV bob fine");
    chat_end(&s, (peer *[]){a, b}, 2);
}

static void test_priv_no_such_nick(void)
{
    chat_server s;
    if (!chat_start(&s))
        return;
    peer *a = user(&s, "alice");
    put(a, "PRIV nobody hello");
    EXPECT(a, "ERR no-such-nick");
    put(a, "PRIV bad!nick hello");
    EXPECT(a, "ERR no-such-nick");
    peer *b = user(&s, "bob");
    peer_close(b); /* gone: its nick with it */
    put(a, "PRIV bob hello");
    char line[256];
    bool ok = get(a, line, sizeof line);
    for (int i = 0; ok && strcmp(line, "OK PRIV bob") == 0 && i < 200; i++) {
        tt_sleep_ms(20); /* bob's goodbye may still be on its way */
        put(a, "PRIV bob hello");
        ok = get(a, line, sizeof line);
    }
    CU_ASSERT(ok && strcmp(line, "ERR no-such-nick") == 0);
    peer_close(a);
    chat_stop(&s);
}

/* Three clients send 200 MSGs each to one room, interleaved; every client
 * receives all 600, each sender's in the order sent. */
static void test_order_three_senders(void)
{
    enum { N = 3, COUNT = 200 };
    chat_server s;
    if (!chat_start(&s))
        return;
    peer *p[N];
    for (int i = 0; i < N; i++) {
        char nick[16];
        snprintf(nick, sizeof nick, "u%d", i);
        p[i] = user(&s, nick);
    }
    join_all("#o", p, N);
    for (int k = 0; k < COUNT; k++)
        for (int i = 0; i < N; i++)
            put(p[i], "MSG #o %d", k);
    for (int i = 0; i < N; i++) {
        int next[N] = {0};
        unsigned bad = 0;
        char line[256];
        for (int got = 0; got < N * COUNT && get(p[i], line, sizeof line); got++) {
            int from = -1, k = -1;
            if (sscanf(line, "MSG #o u%d %d", &from, &k) != 2 || from < 0 || from >= N ||
                k != next[from]) {
                if (bad++ == 0)
                    printf("\n    u%d: unexpected \"%s\"\n", i, line);
                continue;
            }
            next[from]++;
        }
        TT_EQ(bad, 0);
        for (int j = 0; j < N; j++)
            TT_EQ(next[j], COUNT);
    }
    chat_end(&s, p, N);
}

void register_chat_messages_tests(void)
{
    CU_pSuite s = tt_suite("chat_messages");
    tt_test(s, "msg_to_every_member", test_msg_delivery);
    tt_test(s, "msg_not_member", test_msg_not_member);
    tt_test(s, "priv_reaches_its_target_both_ways", test_priv_ok);
    tt_test(s, "priv_no_such_nick", test_priv_no_such_nick);
    tt_test(s, "order_three_senders", test_order_three_senders);
}
