/* test_chat_rooms.c — the chat example, rooms: JOIN, PART and WHO, and what
 * the other members are told.
 *
 * The helpers, and how every chat test runs the server: chat_util.h. */
#include "chat_util.h"

static void test_join_ok(void)
{
    chat_server s;
    if (!chat_start(&s))
        return;
    peer *a = user(&s, "alice");
    put(a, "JOIN #lobby");
    EXPECT(a, "OK JOIN #lobby");
    put(a, "JOIN #lobby"); /* already in: still OK, nobody told again */
    EXPECT(a, "OK JOIN #lobby");
    put(a, "JOIN #A-z_09-12345678901234567890123"); /* 32 characters after '#' */
    EXPECT(a, "OK JOIN #A-z_09-12345678901234567890123");
    put(a, "WHO #lobby");
    EXPECT(a, "WHO #lobby alice");
    peer_close(a);
    chat_stop(&s);
}

static void test_join_bad_room(void)
{
    chat_server s;
    if (!chat_start(&s))
        return;
    peer *a = user(&s, "alice");
    const char *bad[] = {"JOIN", "JOIN lobby", "JOIN #", "JOIN ##", "JOIN #lob by",
                         "JOIN #lob!by", "JOIN #123456789012345678901234567890123"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        put(a, "%s", bad[i]);
        EXPECT(a, "ERR bad-room");
    }
    peer_close(a);
    chat_stop(&s);
}

static void test_joined_to_members(void)
{
    chat_server s;
    if (!chat_start(&s))
        return;
    peer *a = user(&s, "alice");
    peer *b = user(&s, "bob");
    peer *c = user(&s, "carol");
    join_all("#r", (peer *[]){a, b, c}, 3); /* JOINED to the members before */
    put(c, "WHO #r"); /* the joiner got no JOINED of its own */
    EXPECT(c, "WHO #r alice bob carol");
    chat_end(&s, (peer *[]){a, b, c}, 3);
}

static void test_part_ok(void)
{
    chat_server s;
    if (!chat_start(&s))
        return;
    peer *a = user(&s, "alice");
    join(a, "#r");
    put(a, "PART #r");
    EXPECT(a, "OK PART #r");
    put(a, "MSG #r anyone?");
    EXPECT(a, "ERR not-member");
    put(a, "WHO #r"); /* the empty room is gone */
    EXPECT(a, "ERR no-such-room");
    join(a, "#r"); /* and comes back */
    put(a, "WHO #r");
    EXPECT(a, "WHO #r alice");
    peer_close(a);
    chat_stop(&s);
}

static void test_part_not_member(void)
{
    chat_server s;
    if (!chat_start(&s))
        return;
    peer *a = user(&s, "alice");
    peer *b = user(&s, "bob");
    join(b, "#r");
    put(a, "PART #nowhere");
    EXPECT(a, "ERR not-member");
    put(a, "PART #r"); /* exists, but alice is not in it */
    EXPECT(a, "ERR not-member");
    put(a, "PART nonsense");
    EXPECT(a, "ERR not-member");
    put(b, "WHO #r");
    EXPECT(b, "WHO #r bob");
    chat_end(&s, (peer *[]){a, b}, 2);
}

static void test_parted_to_members(void)
{
    chat_server s;
    if (!chat_start(&s))
        return;
    peer *a = user(&s, "alice");
    peer *b = user(&s, "bob");
    peer *c = user(&s, "carol");
    join_all("#r", (peer *[]){a, b, c}, 3);
    put(a, "PART #r");
    EXPECT(a, "OK PART #r");
    EXPECT(b, "PARTED #r alice");
    EXPECT(c, "PARTED #r alice");
    put(b, "MSG #r after"); /* alice gets nothing more from #r */
    EXPECT(b, "MSG #r bob after");
    EXPECT(c, "MSG #r bob after");
    put(a, "WHO #r");
    EXPECT(a, "WHO #r bob carol");
    chat_end(&s, (peer *[]){a, b, c}, 3);
}

static void test_who_sorted(void)
{
    chat_server s;
    if (!chat_start(&s))
        return;
    const char *nicks[] = {"zed", "amy", "mike", "bob", "carl"};
    peer *p[6];
    for (int i = 0; i < 5; i++)
        p[i] = user(&s, nicks[i]);
    join_all("#r", p, 5);
    for (int i = 0; i < 5; i++) {
        put(p[i], "WHO #r");
        EXPECT(p[i], "WHO #r amy bob carl mike zed");
    }
    p[5] = user(&s, "outsider"); /* not a member: may ask too */
    put(p[5], "WHO #r");
    EXPECT(p[5], "WHO #r amy bob carl mike zed");
    chat_end(&s, p, 6);
}

static void test_who_no_such_room(void)
{
    chat_server s;
    if (!chat_start(&s))
        return;
    peer *a = user(&s, "alice");
    put(a, "WHO #nowhere");
    EXPECT(a, "ERR no-such-room");
    put(a, "WHO nonsense");
    EXPECT(a, "ERR no-such-room");
    peer_close(a);
    chat_stop(&s);
}

void register_chat_rooms_tests(void)
{
    CU_pSuite s = tt_suite("chat_rooms");
    tt_test(s, "join_twice_is_ok_and_tells_nobody", test_join_ok);
    tt_test(s, "join_bad_room", test_join_bad_room);
    tt_test(s, "join_tells_members", test_joined_to_members);
    tt_test(s, "part_leaves_and_empty_room_goes", test_part_ok);
    tt_test(s, "part_not_member", test_part_not_member);
    tt_test(s, "part_tells_members", test_parted_to_members);
    tt_test(s, "who_sorted", test_who_sorted);
    tt_test(s, "who_no_such_room", test_who_no_such_room);
}
