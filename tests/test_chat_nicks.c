/* test_chat_nicks.c — the chat example, nicknames: the greeting, NICK
 * (taken, bad, changed), and what a client without a nick may not do.
 *
 * The helpers, and how every chat test runs the server: chat_util.h. */
#include "chat_util.h"

static void test_hello(void)
{
    chat_server s;
    if (!chat_start(&s))
        return;
    peer *a = peer_open(&s); /* expects HELLO troupe-chat */
    peer *b = peer_open(&s);
    chat_end(&s, (peer *[]){a, b}, 2);
}

static void test_nick_ok(void)
{
    chat_server s;
    if (!chat_start(&s))
        return;
    peer *a = peer_open(&s);
    put(a, "NICK alice");
    EXPECT(a, "OK NICK alice");
    put(a, "NICK alice"); /* one's own nick again */
    EXPECT(a, "OK NICK alice");
    peer_close(a);
    chat_stop(&s);
}

static void test_nick_taken(void)
{
    chat_server s;
    if (!chat_start(&s))
        return;
    peer *a = user(&s, "alice");
    peer *b = peer_open(&s);
    put(b, "NICK alice");
    EXPECT(b, "ERR nick-taken");
    put(b, "NICK bob"); /* still usable */
    EXPECT(b, "OK NICK bob");
    put(a, "NICK bob");
    EXPECT(a, "ERR nick-taken");
    chat_end(&s, (peer *[]){a, b}, 2);
}

static void test_bad_nick(void)
{
    chat_server s;
    if (!chat_start(&s))
        return;
    peer *a = peer_open(&s);
    const char *bad[] = {"NICK", "NICK ", "NICK bad!nick", "NICK #alice", "NICK a b",
                         "NICK 123456789012345678901234567890123", "NICK caf\xc3\xa9"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        put(a, "%s", bad[i]);
        EXPECT(a, "ERR bad-nick");
    }
    put(a, "NICK A-z_09-12345678901234567890123"); /* 32 characters, all kinds */
    EXPECT(a, "OK NICK A-z_09-12345678901234567890123");
    peer_close(a);
    chat_stop(&s);
}

static void test_nick_change(void)
{
    chat_server s;
    if (!chat_start(&s))
        return;
    peer *a = user(&s, "alice");
    peer *b = user(&s, "bob");
    join_all("#r", (peer *[]){a, b}, 2);
    put(a, "NICK alicia");
    EXPECT(a, "OK NICK alicia");
    peer *c = peer_open(&s); /* the old nick is free again */
    put(c, "NICK alice");
    EXPECT(c, "OK NICK alice");
    put(b, "WHO #r"); /* the room knows the new nick */
    EXPECT(b, "WHO #r alicia bob");
    put(a, "MSG #r hi");
    EXPECT(a, "MSG #r alicia hi");
    EXPECT(b, "MSG #r alicia hi");
    put(b, "PRIV alicia psst");
    EXPECT(b, "OK PRIV alicia");
    EXPECT(a, "PRIV bob psst");
    chat_end(&s, (peer *[]){a, b, c}, 3);
}

static void test_no_nick(void)
{
    chat_server s;
    if (!chat_start(&s))
        return;
    peer *b = user(&s, "bob");
    join(b, "#r");
    peer *a = peer_open(&s);
    const char *early[] = {"JOIN #r", "PART #r", "MSG #r hi", "PRIV bob hi", "WHO #r"};
    for (size_t i = 0; i < sizeof early / sizeof *early; i++) {
        put(a, "%s", early[i]);
        EXPECT(a, "ERR no-nick");
    }
    put(a, "NICK bad!"); /* a refused NICK leaves none */
    EXPECT(a, "ERR bad-nick");
    put(a, "WHO #r");
    EXPECT(a, "ERR no-nick");
    put(a, "NICK alice");
    EXPECT(a, "OK NICK alice");
    put(a, "WHO #r");
    EXPECT(a, "WHO #r bob");
    put(b, "WHO #r");
    EXPECT(b, "WHO #r bob");
    chat_end(&s, (peer *[]){a, b}, 2);
}

void register_chat_nicks_tests(void)
{
    CU_pSuite s = tt_suite("chat_nicks");
    tt_test(s, "hello_on_connect", test_hello);
    tt_test(s, "nick_taken_and_taken_again_by_its_owner", test_nick_ok);
    tt_test(s, "nick_taken", test_nick_taken);
    tt_test(s, "nick_bad", test_bad_nick);
    tt_test(s, "nick_change", test_nick_change);
    tt_test(s, "commands_before_nick_are_refused", test_no_nick);
}
