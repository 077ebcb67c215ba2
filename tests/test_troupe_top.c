/* test_troupe_top.c — tools/troupe-top against the chat example, as the
 * issue asks: chat started on a free port with --metrics on another, two
 * clients in two rooms talking, then `troupe-top --once` must exit 0 and
 * print one frame, without escapes, that shows the room actors by name
 * (and the directory), the workers' header and the table's columns. A
 * wrong address must make it exit non-zero with a message. */
#include <stdlib.h>
#include <string.h>

#include "chat_util.h"

/* Runs troupe-top with args; its stdout (malloc'd) and exit code. Bounded:
 * a second of window plus the fetches, far within a minute. */
static char *run_top(const char *const *args, int *code)
{
    return tt_run_program("tools/troupe-top", args, false, 60, code);
}

static void once_shows_the_chat_rooms_by_name(void)
{
    chat_server s;
    const char *const args[] = {"--metrics", "0", NULL};
    if (!tt_example_start_args("chat", args, &s))
        return;
    const char *at = strstr(s.line, "metrics on 127.0.0.1:");
    unsigned mport = 0;
    CU_ASSERT_FATAL(at != NULL && sscanf(at, "metrics on 127.0.0.1:%u", &mport) == 1);
    peer *a = user(&s, "ann"), *b = user(&s, "bob");
    peer *both[] = {a, b};
    join_all("#alpha", both, 2);
    join(a, "#beta");
    for (int i = 0; i < 20; i++) {
        put(a, "MSG #alpha hello %d", i);
        EXPECT(a, "MSG #alpha ann hello %d", i);
        EXPECT(b, "MSG #alpha ann hello %d", i);
    }

    char target[32];
    snprintf(target, sizeof target, "127.0.0.1:%u", mport);
    const char *const top_args[] = {"--once", "--top", "100", target, NULL};
    int code;
    char *frame = run_top(top_args, &code);
    TT_EQ(code, 0);
    if (strstr(frame, "room:#alpha") == NULL || strstr(frame, "room:#beta") == NULL)
        printf("\n    the frame:\n%s\n", frame);
    CU_ASSERT(strstr(frame, "room:#alpha") != NULL);
    CU_ASSERT(strstr(frame, "room:#beta") != NULL);
    CU_ASSERT(strstr(frame, "chat:directory") != NULL);
    CU_ASSERT(strstr(frame, "troupe-top 127.0.0.1:") == frame);
    CU_ASSERT(strstr(frame, "busy %") != NULL && strstr(frame, "run queue") != NULL);
    CU_ASSERT(strstr(frame, "MSGS/S") != NULL && strstr(frame, "MAILBOX") != NULL);
    CU_ASSERT(strchr(frame, '\033') == NULL); /* --once: no escapes */
    free(frame);

    /* Nobody listening: an error and a non-zero exit, not a hang. */
    const char *const bad_args[] = {"--once", "127.0.0.1:1", NULL};
    frame = run_top(bad_args, &code);
    CU_ASSERT(code != 0);
    free(frame);
    const char *const usage_args[] = {"--once", "no-port", NULL};
    frame = run_top(usage_args, &code);
    TT_EQ(code, 2);
    free(frame);
    chat_end(&s, both, 2);
}

void register_troupe_top_tests(void)
{
    CU_pSuite s = tt_suite("troupe_top");
    tt_test(s, "once_shows_the_chat_rooms_by_name", once_shows_the_chat_rooms_by_name);
}
