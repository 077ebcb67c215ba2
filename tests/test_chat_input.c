/* test_chat_input.c — the chat example, the shape of input: unknown
 * commands, verbs in any case, CRLF line ends, over-long lines.
 *
 * The helpers, and how every chat test runs the server: chat_util.h. */
#include "chat_util.h"

#include <string.h>

static void test_unknown_command(void)
{
    chat_server s;
    if (!chat_start(&s))
        return;
    peer *a = peer_open(&s);
    put(a, "HELLO"); /* before NICK: not a command at all */
    EXPECT(a, "ERR unknown-command");
    put(a, "NICK alice");
    EXPECT(a, "OK NICK alice");
    const char *bad[] = {"FOO bar", "", " NICK bob", "NICKNAME bob", "MSGS #r x", "/join #r"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        put(a, "%s", bad[i]);
        EXPECT(a, "ERR unknown-command");
    }
    peer_close(a);
    chat_stop(&s);
}

static void test_case_insensitive(void)
{
    chat_server s;
    if (!chat_start(&s))
        return;
    peer *b = user(&s, "bob");
    peer *a = peer_open(&s);
    put(a, "nick alice");
    EXPECT(a, "OK NICK alice");
    put(a, "jOiN #r");
    EXPECT(a, "OK JOIN #r");
    put(a, "Who #r");
    EXPECT(a, "WHO #r alice");
    put(a, "msg #r hi");
    EXPECT(a, "MSG #r alice hi");
    put(a, "PrIv bob hey");
    EXPECT(a, "OK PRIV bob");
    EXPECT(b, "PRIV alice hey");
    put(a, "part #r");
    EXPECT(a, "OK PART #r");
    put(a, "Quit");
    EXPECT(a, "OK QUIT");
    EXPECT_CLOSED(a);
    chat_end(&s, (peer *[]){a, b}, 2);
}

static void test_crlf(void)
{
    chat_server s;
    if (!chat_start(&s))
        return;
    peer *a = peer_open(&s);
    peer *b = user(&s, "bob");
    put_raw(a, "NICK alice\r\n", 12);
    EXPECT(a, "OK NICK alice");
    put_raw(a, "JOIN #r\r\n", 9);
    EXPECT(a, "OK JOIN #r");
    join(b, "#r");
    EXPECT(a, "JOINED #r bob");
    put_raw(a, "MSG #r hi there\r\nWHO #r\r\n", 25); /* two lines in one write */
    EXPECT(a, "MSG #r alice hi there");
    EXPECT(b, "MSG #r alice hi there");
    EXPECT(a, "WHO #r alice bob");
    put_raw(a, "PRIV bob x\r\n", 12);
    EXPECT(a, "OK PRIV bob");
    EXPECT(b, "PRIV alice x");
    chat_end(&s, (peer *[]){a, b}, 2);
}

static void test_line_too_long(void)
{
    chat_server s;
    if (!chat_start(&s))
        return;
    peer *a = user(&s, "alice");
    peer *b = user(&s, "bob");
    join_all("#r", (peer *[]){a, b}, 2);
    /* The longest line: 4096 bytes with its "\n". */
    static char text[8192];
    memset(text, 'x', 4096 - strlen("MSG #r \n"));
    text[4096 - strlen("MSG #r \n")] = '\0';
    put(a, "MSG #r %s", text);
    EXPECT(a, "MSG #r alice %s", text);
    EXPECT(b, "MSG #r alice %s", text);
    /* One byte more. */
    memset(text, 'y', 4097 - strlen("\n"));
    text[4097 - strlen("\n")] = '\0';
    put(a, "%s", text);
    EXPECT(a, "ERR line-too-long");
    EXPECT_CLOSED(a);
    EXPECT(b, "PARTED #r alice");
    /* Much longer, from a fresh client; the server goes on. */
    peer *c = peer_open(&s);
    memset(text, 'z', sizeof text - 1);
    text[sizeof text - 1] = '\0';
    put_raw(c, text, sizeof text - 1);
    EXPECT(c, "ERR line-too-long");
    EXPECT_CLOSED(c);
    peer *d = user(&s, "alice"); /* alice's nick was freed */
    join(d, "#r");
    EXPECT(b, "JOINED #r alice");
    put(d, "WHO #r");
    EXPECT(d, "WHO #r alice bob");
    chat_end(&s, (peer *[]){a, b, c, d}, 4);
}

void register_chat_input_tests(void)
{
    CU_pSuite s = tt_suite("chat_input");
    tt_test(s, "unknown_command", test_unknown_command);
    tt_test(s, "verbs_case_insensitive", test_case_insensitive);
    tt_test(s, "crlf_lines", test_crlf);
    tt_test(s, "line_too_long", test_line_too_long);
}
