/* test_metrics_dump.c — tr_runtime_dump lists a deliberately stuck actor
 * (running) and one whose messages wait behind it (runnable), and leaves
 * idle actors out, and writes every name, whatever its bytes, as one
 * field of its one line; tr_runtime_dump_on_signal writes the same from
 * the runtime when the signal comes. */
#include "tests.h"

#include <fcntl.h>
#include <poll.h>
#include <semaphore.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum { MSG_COUNT = 1, MSG_BLOCK };

/* A runtime of one worker, held in blocker's turn, with 3 messages
 * waiting for `waiting` and none for `idle`. */
struct stuck {
    tr_runtime *rt;
    struct tt_blocker b;
    tr_pid blocker, waiting, idle;
};

static void stuck_start(struct stuck *s)
{
    s->rt = tt_runtime(1, 0);
    tr_ctx *cx = tr_runtime_ctx(s->rt);
    tt_blocker_init(&s->b);
    struct tt_blocker *bp = &s->b;
    uint64_t zero = 0;
    tr_actor_spec spec = {.behaviour = tt_blocking, .state = &bp, .state_size = sizeof bp,
                          .name = "stuck-one"};
    TT_EQ(tr_spawn_spec(cx, &spec, &s->blocker), 0);
    TT_EQ(tr_spawn(cx, tt_counter, &zero, sizeof zero, &s->waiting), 0);
    TT_EQ(tr_spawn(cx, tt_counter, &zero, sizeof zero, &s->idle), 0);
    TT_EQ(tr_runtime_hold(s->rt), 0);
    TT_EQ(tr_runtime_start(s->rt), 0);
    TT_EQ(tr_send(cx, s->blocker, MSG_BLOCK, NULL, 0), 0);
    CU_ASSERT_FATAL(tt_wait_flag(&s->b.in_turn, 60));
    for (int i = 0; i < 3; i++)
        TT_EQ(tr_send(cx, s->waiting, MSG_COUNT, NULL, 0), 0);
}

static void stuck_end(struct stuck *s)
{
    sem_post(&s->b.go);
    TT_EQ(tr_runtime_release(s->rt), 0);
    TT_EQ(tt_join_within(s->rt, 120), 0);
    tt_blocker_fini(&s->b);
    tr_runtime_destroy(s->rt);
}

/* The dump's line for pid, or NULL. */
static const char *line_of(const char *dump, tr_pid pid)
{
    char key[64];
    snprintf(key, sizeof key, "actor %" PRIx64 " ", pid);
    return strstr(dump, key);
}

/* Whether the line at l (up to its newline) contains what. */
static bool line_has(const char *l, const char *what)
{
    if (l == NULL)
        return false;
    const char *end = strchr(l, '\n');
    const char *at = strstr(l, what);
    return at != NULL && (end == NULL || at < end);
}

static void check_dump(const char *dump, const struct stuck *s)
{
    const char *l = line_of(dump, s->blocker);
    CU_ASSERT(line_has(l, "state=running"));
    CU_ASSERT(line_has(l, "name=stuck-one"));
    l = line_of(dump, s->waiting);
    CU_ASSERT(line_has(l, "state=runnable"));
    CU_ASSERT(line_has(l, "mailbox=3"));
    CU_ASSERT(line_of(dump, s->idle) == NULL);
    CU_ASSERT(strstr(dump, "worker 0 ") != NULL);
}

static void test_dump_lists_the_stuck_and_the_waiting(void)
{
    struct stuck s;
    stuck_start(&s);
    char *buf = NULL;
    size_t size = 0;
    FILE *f = open_memstream(&buf, &size);
    CU_ASSERT_FATAL(f != NULL);
    TT_EQ(tr_runtime_dump(s.rt, f), 2);
    fclose(f);
    check_dump(buf, &s);
    free(buf);
    TT_EQ(tr_runtime_dump(s.rt, NULL), TR_EINVAL);
    stuck_end(&s);
}

/* Reads what comes down fd until `until` appears or 60 s pass. */
static char *read_until(int fd, const char *until)
{
    size_t cap = 1 << 16, len = 0;
    char *buf = calloc(1, cap);
    double deadline = tt_now() + 60;
    while (strstr(buf, until) == NULL && tt_now() < deadline && len < cap - 1) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (poll(&p, 1, 100) <= 0)
            continue;
        ssize_t n = read(fd, buf + len, cap - 1 - len);
        if (n > 0)
            len += (size_t)n;
    }
    return buf;
}

static void test_dump_on_signal_writes_from_the_runtime(void)
{
    struct stuck s;
    stuck_start(&s);
    TT_EQ(tr_runtime_dump_on_signal(s.rt, SIGKILL), TR_EINVAL);
    TT_EQ(tr_runtime_dump_on_signal(s.rt, 0), TR_EINVAL);
    TT_EQ(tr_runtime_dump_on_signal(s.rt, SIGUSR2), 0);

    /* stderr into a pipe for the length of the dump. */
    int fds[2];
    CU_ASSERT_FATAL(pipe(fds) == 0);
    fflush(stderr);
    int saved = dup(2);
    CU_ASSERT_FATAL(saved >= 0 && dup2(fds[1], 2) == 2);
    raise(SIGUSR2);
    char *dump = read_until(fds[0], "injection queue");
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    close(fds[0]);
    close(fds[1]);
    check_dump(dump, &s);
    free(dump);
    stuck_end(&s);
    signal(SIGUSR2, SIG_DFL);
}

/* Names are any bytes (tr_register): the dump writes each as one field of
 * its actor's one line, printable ASCII and UTF-8 as they are, any other
 * byte — a space or a backslash too — as \xHH. */
static const struct {
    const char *raw, *dumped;
} odd[] = {
    {"nl\nstate=idle", "nl\\x0astate=idle"}, /* would pass for a line and a field */
    {"sp ace", "sp\\x20ace"},
    {"tab\tcr\r", "tab\\x09cr\\x0d"},
    {"soh\x01" "del\x7f", "soh\\x01del\\x7f"},
    {"back\\slash", "back\\x5cslash"},
    {"caf\xc3\xa9-\xe6\x97\xa5\xe6\x9c\xac", "caf\xc3\xa9-\xe6\x97\xa5\xe6\x9c\xac"},
    {"ff\xff", "ff\\xff"},
    {"cut\xe6\x97", "cut\\xe6\\x97"},
    {"sur\xed\xa0\x80", "sur\\xed\\xa0\\x80"},
    {"long\xc0\xaf", "long\\xc0\\xaf"},
};
#define ODD_N (sizeof odd / sizeof odd[0])

static void test_dump_writes_odd_names_on_one_line_each(void)
{
    struct stuck s;
    stuck_start(&s);
    tr_ctx *cx = tr_runtime_ctx(s.rt);
    tr_pid pid[ODD_N];
    uint64_t zero = 0;
    /* The one worker is held: each has a message waiting, so each is
     * listed (runnable). */
    for (size_t i = 0; i < ODD_N; i++) {
        TT_EQ(tr_spawn(cx, tt_counter, &zero, sizeof zero, &pid[i]), 0);
        TT_EQ(tr_register(s.rt, odd[i].raw, pid[i]), 0);
        TT_EQ(tr_send(cx, pid[i], MSG_COUNT, NULL, 0), 0);
    }
    char *buf = NULL;
    size_t size = 0;
    FILE *f = open_memstream(&buf, &size);
    CU_ASSERT_FATAL(f != NULL);
    TT_EQ(tr_runtime_dump(s.rt, f), 2 + (int)ODD_N);
    fclose(f);
    check_dump(buf, &s);
    /* Lines: the heading, the actors, the worker, the injection queue;
     * nothing but text between the newlines. */
    size_t lines = 0, actors = 0;
    bool text = true;
    for (size_t i = 0; i < size; i++) {
        unsigned char c = (unsigned char)buf[i];
        lines += c == '\n';
        actors += strncmp(&buf[i], "actor ", 6) == 0 && (i == 0 || buf[i - 1] == '\n');
        text &= c == '\n' || (c >= 0x20 && c != 0x7f);
    }
    TT_EQ(lines, 1 + 2 + ODD_N + 1 + 1);
    TT_EQ(actors, 2 + ODD_N);
    CU_ASSERT(text);
    for (size_t i = 0; i < ODD_N; i++) {
        const char *l = line_of(buf, pid[i]);
        char want[128];
        snprintf(want, sizeof want, " name=%s behaviour=", odd[i].dumped);
        if (!line_has(l, want) || !line_has(l, "state=runnable mailbox=1 "))
            printf("\n    no line for %s with %s\n", odd[i].dumped, want);
        CU_ASSERT(line_has(l, want));
        CU_ASSERT(line_has(l, "state=runnable mailbox=1 "));
    }
    free(buf);
    stuck_end(&s);
}

void register_metrics_dump_tests(void)
{
    CU_pSuite s = tt_suite("metrics_dump");
    tt_test(s, "dump_lists_the_stuck_and_the_waiting", test_dump_lists_the_stuck_and_the_waiting);
    tt_test(s, "dump_on_signal_writes_from_the_runtime",
            test_dump_on_signal_writes_from_the_runtime);
    tt_test(s, "dump_writes_odd_names_on_one_line_each",
            test_dump_writes_odd_names_on_one_line_each);
}
