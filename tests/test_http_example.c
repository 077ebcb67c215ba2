/* test_http_example.c — examples/http as a user runs it: started on a free
 * port as a child process, fetched over a plain socket ("/" gets the
 * greeting, another path 404, both on one kept-alive connection, then a
 * HEAD and an HTTP/1.0 request), stopped with SIGTERM: it must exit 0
 * (under a sanitizer build: no leak or error report). The process
 * helpers are tests.h's (tt_example_start). */
#include "chat_util.h"
#include "http_util.h"

static void test_example(void)
{
    tt_example s;
    if (!tt_example_start("http", &s))
        return;
    hconn c;
    hconn_open(&c, s.port);
    const char *two = "GET / HTTP/1.1\r\nHost: x\r\n\r\nGET /nope HTTP/1.1\r\nHost: x\r\n\r\n";
    CU_ASSERT(cli_write(c.fd, two, strlen(two)));
    EXPECT_RESPONSE(&c, 200, "hello, world\n");
    EXPECT_RESPONSE(&c, 404, "not found\n");
    const char *head = "HEAD / HTTP/1.1\r\nHost: x\r\n\r\n";
    CU_ASSERT(cli_write(c.fd, head, strlen(head)));
    c.head = true;
    hresp r;
    CU_ASSERT_FATAL(hconn_read(&c, &r) == 1);
    TT_EQ(r.status, 200);
    TT_EQ(r.content_length, 13);
    free(r.body);
    c.head = false;
    const char *old = "GET / HTTP/1.0\r\n\r\n";
    CU_ASSERT(cli_write(c.fd, old, strlen(old)));
    EXPECT_RESPONSE(&c, 200, "hello, world\n");
    EXPECT_EOF(&c);
    close(c.fd);
    tt_example_stop(&s);
}

void register_http_example_tests(void)
{
    CU_pSuite s = tt_suite("http_example");
    tt_test(s, "hello_world_served_then_sigterm_exits_0", test_example);
}
