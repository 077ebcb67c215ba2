/* test_chat_leaving.c — the chat example, leaving: QUIT, and a client that
 * just disconnects; its rooms and its nick are let go.
 *
 * The helpers, and how every chat test runs the server: chat_util.h. */
#include "chat_util.h"

#include <string.h>

static void test_quit(void)
{
    chat_server s;
    if (!chat_start(&s))
        return;
    peer *a = user(&s, "alice");
    peer *b = user(&s, "bob");
    join_all("#r", (peer *[]){a, b}, 2);
    join_all("#s", (peer *[]){a, b}, 2);
    put(a, "QUIT");
    EXPECT(a, "OK QUIT");
    EXPECT_CLOSED(a);
    char l1[256] = "", l2[256] = ""; /* one PARTED per room, in either order */
    get(b, l1, sizeof l1);
    get(b, l2, sizeof l2);
    CU_ASSERT((strcmp(l1, "PARTED #r alice") == 0 && strcmp(l2, "PARTED #s alice") == 0) ||
              (strcmp(l1, "PARTED #s alice") == 0 && strcmp(l2, "PARTED #r alice") == 0));
    put(b, "WHO #r");
    EXPECT(b, "WHO #r bob");
    peer *c = peer_open(&s); /* QUIT before NICK */
    put(c, "quit");
    EXPECT(c, "OK QUIT");
    EXPECT_CLOSED(c);
    chat_end(&s, (peer *[]){a, b, c}, 3);
}

static void test_disconnect(void)
{
    chat_server s;
    if (!chat_start(&s))
        return;
    peer *a = user(&s, "alice");
    peer *b = user(&s, "bob");
    join_all("#r", (peer *[]){a, b}, 2);
    peer_close(a); /* no QUIT */
    EXPECT(b, "PARTED #r alice");
    put(b, "WHO #r");
    EXPECT(b, "WHO #r bob");
    peer *c = peer_open(&s); /* the nick is free (the directory hears of it by now) */
    char line[256];
    bool ok = false;
    for (int i = 0; i < 200 && !ok; i++) {
        put(c, "NICK alice");
        ok = get(c, line, sizeof line) && strcmp(line, "OK NICK alice") == 0;
        if (!ok)
            tt_sleep_ms(20);
    }
    CU_ASSERT(ok);
    chat_end(&s, (peer *[]){b, c}, 2);
}

void register_chat_leaving_tests(void)
{
    CU_pSuite s = tt_suite("chat_leaving");
    tt_test(s, "quit_parts_every_room_and_closes", test_quit);
    tt_test(s, "disconnect_without_quit", test_disconnect);
}
