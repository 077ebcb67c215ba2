/* test_sim_chat.c — the chat example's protocol tests (docs/chat-protocol.md)
 * as scripts, run against examples/chat.c's unchanged main under the
 * simulator, seed after seed (sim_chat_util.h); each mirrors a test of the
 * chat_* suites. A client is named for its nick.
 *
 * Seeds: SIM_CHAT_SEEDS=A-B (or N; default 1-20) in SIM_CHAT_JOBS forked
 * children (default 1); `make sim-check` runs 1-1000 in 2. The network's
 * options come from TROUPE_SIM as usual (TROUPE_SIM=sched=pct, say). The
 * test real_network runs every scenario but the partition once over real
 * sockets: the scripts hold in production too. */
#include "sim_chat_util.h"

#include <stdlib.h>
#include <string.h>

#define MARK_JOINED "joined"

/* Each of the n clients joins room after the one before it, and each
 * earlier one reads the JOINED of every later one (chat_util's join_all). */
static void join_all(const char *room, sc_client *const c[], int n)
{
    char mark[64];
    snprintf(mark, sizeof mark, MARK_JOINED " %s", room);
    for (int i = 0; i < n; i++) {
        if (i > 0)
            sc_wait(c[i], c[i - 1], mark);
        sc_join(c[i], room);
        for (int j = 0; j < i; j++)
            sc_expect(c[j], "JOINED %s %s", room, c[i]->name);
        sc_mark(c[i], mark);
    }
}

/* A client that has taken its nick. */
static sc_client *user(sc_scenario *s, const char *nick)
{
    sc_client *c = sc_client_add(s, nick);
    sc_nick(c, nick);
    return c;
}

/* Sends each of the n lines in turn, each refused with `err`. */
static void refused(sc_client *c, const char *const lines[], size_t n, const char *err)
{
    for (size_t i = 0; i < n; i++) {
        sc_send(c, "%s", lines[i]);
        sc_expect(c, "%s", err);
    }
}
#define REFUSED(c, lines, err) refused((c), (lines), sizeof(lines) / sizeof *(lines), (err))

/* ---- nicks ---------------------------------------------------------------- */

static void hello(sc_scenario *s)
{
    sc_client_add(s, "a");
    sc_client_add(s, "b");
}

static void nick_ok(sc_scenario *s)
{
    sc_client *a = user(s, "alice");
    sc_nick(a, "alice"); /* one's own nick again */
}

static void nick_taken(sc_scenario *s)
{
    sc_client *a = user(s, "alice");
    sc_mark(a, "named");
    sc_client *b = sc_client_add(s, "bob");
    sc_wait(b, a, "named");
    sc_send(b, "NICK alice");
    sc_expect(b, "ERR nick-taken");
    sc_nick(b, "bob"); /* still usable */
    sc_mark(b, "named");
    sc_wait(a, b, "named");
    sc_send(a, "NICK bob");
    sc_expect(a, "ERR nick-taken");
}

static void nick_bad(sc_scenario *s)
{
    sc_client *a = sc_client_add(s, "a");
    const char *bad[] = {"NICK", "NICK ", "NICK bad!nick", "NICK #alice", "NICK a b",
                         "NICK 123456789012345678901234567890123", "NICK caf\xc3\xa9"};
    REFUSED(a, bad, "ERR bad-nick");
    sc_nick(a, "A-z_09-12345678901234567890123"); /* 32 characters, all kinds */
}

static void nick_change(sc_scenario *s)
{
    sc_client *a = user(s, "alice"), *b = user(s, "bob");
    join_all("#r", (sc_client *[]){a, b}, 2);
    sc_nick(a, "alicia");
    sc_mark(a, "renamed");
    sc_client *c = sc_client_add(s, "carol");
    sc_wait(c, a, "renamed");
    sc_nick(c, "alice"); /* the old nick is free again */
    sc_wait(b, a, "renamed");
    sc_send(b, "WHO #r"); /* the room knows the new nick */
    sc_expect(b, "WHO #r alicia bob");
    sc_mark(b, "who");
    sc_wait(a, b, "who");
    sc_send(a, "MSG #r hi");
    sc_expect(a, "MSG #r alicia hi");
    sc_expect(b, "MSG #r alicia hi");
    sc_send(b, "PRIV alicia psst");
    sc_expect(b, "OK PRIV alicia");
    sc_expect(a, "PRIV bob psst");
}

static void no_nick(sc_scenario *s)
{
    sc_client *b = user(s, "bob");
    sc_join(b, "#r");
    sc_mark(b, "in");
    sc_client *a = sc_client_add(s, "alice");
    const char *early[] = {"JOIN #r", "PART #r", "MSG #r hi", "PRIV bob hi", "WHO #r"};
    REFUSED(a, early, "ERR no-nick");
    sc_send(a, "NICK bad!"); /* a refused NICK leaves none */
    sc_expect(a, "ERR bad-nick");
    sc_nick(a, "alice");
    sc_wait(a, b, "in");
    sc_send(a, "WHO #r");
    sc_expect(a, "WHO #r bob");
}

/* ---- rooms -------------------------------------------------------------- */

static void join_twice(sc_scenario *s)
{
    sc_client *a = user(s, "alice");
    sc_join(a, "#lobby");
    sc_join(a, "#lobby"); /* already in: still OK, nobody told again */
    sc_join(a, "#A-z_09-12345678901234567890123");
    sc_send(a, "WHO #lobby");
    sc_expect(a, "WHO #lobby alice");
}

static void join_bad_room(sc_scenario *s)
{
    sc_client *a = user(s, "alice");
    const char *bad[] = {"JOIN", "JOIN lobby", "JOIN #", "JOIN ##", "JOIN #lob by",
                         "JOIN #lob!by", "JOIN #123456789012345678901234567890123"};
    REFUSED(a, bad, "ERR bad-room");
}

static void join_tells_members_who_sorted(sc_scenario *s)
{
    sc_client *p[4] = {user(s, "zed"), user(s, "amy"), user(s, "mike"), user(s, "bob")};
    join_all("#r", p, 4);
    for (int i = 0; i < 4; i++) {
        sc_wait(p[i], p[3], MARK_JOINED " #r");
        sc_send(p[i], "WHO #r"); /* the joiner got no JOINED of its own */
        sc_expect(p[i], "WHO #r amy bob mike zed");
    }
    sc_client *o = user(s, "outsider"); /* not a member: may ask too */
    sc_wait(o, p[3], MARK_JOINED " #r");
    sc_send(o, "WHO #r");
    sc_expect(o, "WHO #r amy bob mike zed");
}

static void part_and_empty_room_goes(sc_scenario *s)
{
    sc_client *a = user(s, "alice");
    sc_join(a, "#r");
    sc_send(a, "PART #r");
    sc_expect(a, "OK PART #r");
    sc_send(a, "MSG #r anyone?");
    sc_expect(a, "ERR not-member");
    sc_send(a, "WHO #r"); /* the empty room is gone */
    sc_expect(a, "ERR no-such-room");
    sc_join(a, "#r"); /* and comes back */
    sc_send(a, "WHO #r");
    sc_expect(a, "WHO #r alice");
    sc_send(a, "PART #nowhere");
    sc_expect(a, "ERR not-member");
    sc_send(a, "WHO nonsense");
    sc_expect(a, "ERR no-such-room");
}

static void part_tells_members(sc_scenario *s)
{
    sc_client *a = user(s, "alice"), *b = user(s, "bob"), *c = user(s, "carol");
    join_all("#r", (sc_client *[]){a, b, c}, 3);
    sc_send(a, "PART #r");
    sc_expect(a, "OK PART #r");
    sc_mark(a, "parted");
    sc_expect(b, "PARTED #r alice");
    sc_expect(c, "PARTED #r alice");
    sc_send(b, "MSG #r after"); /* alice gets nothing more from #r */
    sc_expect(b, "MSG #r bob after");
    sc_expect(c, "MSG #r bob after");
    sc_send(a, "WHO #r");
    sc_expect(a, "WHO #r bob carol");
}

/* ---- messages ------------------------------------------------------------- */

static void msg_to_every_member(sc_scenario *s)
{
    sc_client *a = user(s, "alice"), *b = user(s, "bob"), *c = user(s, "carol");
    join_all("#r", (sc_client *[]){a, b}, 2);
    sc_join(c, "#other");
    sc_send(a, "MSG #r hello, world:  two spaces and UTF-8 \xc3\xa9");
    sc_expect(a, "MSG #r alice hello, world:  two spaces and UTF-8 \xc3\xa9");
    sc_expect(b, "MSG #r alice hello, world:  two spaces and UTF-8 \xc3\xa9");
    sc_send(b, "MSG #r back");
    sc_expect(a, "MSG #r bob back");
    sc_expect(b, "MSG #r bob back");
    sc_mark(a, "heard");
    sc_send(a, "MSG #other let me in"); /* not a member there */
    sc_expect(a, "ERR not-member");
    sc_wait(c, a, "heard");
    sc_send(c, "WHO #other"); /* carol, in another room, got neither */
    sc_expect(c, "WHO #other carol");
}

static void priv_both_ways(sc_scenario *s)
{
    sc_client *a = user(s, "alice");
    sc_mark(a, "named");
    sc_client *b = user(s, "bob");
    sc_mark(b, "named");
    sc_wait(a, b, "named");
    sc_send(a, "PRIV bob hi bob, how are you?");
    sc_expect(a, "OK PRIV bob");
    sc_expect(b, "PRIV alice hi bob, how are you?");
    sc_send(b, "PRIV alice fine");
    sc_expect(b, "OK PRIV alice");
    sc_expect(a, "PRIV bob fine");
    sc_send(a, "PRIV nobody hello");
    sc_expect(a, "ERR no-such-nick");
    sc_send(a, "PRIV bad!nick hello");
    sc_expect(a, "ERR no-such-nick");
}

/* Three clients send ORDER_COUNT MSGs each to one room, all at once; every
 * client receives all of them, each sender's in the order sent. */
#define ORDER_COUNT 20

static void order_three_senders(sc_scenario *s)
{
    sc_client *p[3] = {user(s, "u0"), user(s, "u1"), user(s, "u2")};
    join_all("#o", p, 3);
    for (int i = 0; i < 3; i++) {
        sc_wait(p[i], p[2], MARK_JOINED " #o");
        for (int k = 0; k < ORDER_COUNT; k++)
            sc_send(p[i], "MSG #o %d", k);
    }
    for (int i = 0; i < 3; i++)
        for (int from = 0; from < 3; from++)
            for (int k = 0; k < ORDER_COUNT; k++)
                sc_expect_in(p[i], from + 1, "MSG #o u%d %d", from, k);
}

/* ---- input ---------------------------------------------------------------- */

static void unknown_command(sc_scenario *s)
{
    sc_client *a = sc_client_add(s, "alice");
    sc_send(a, "HELLO"); /* before NICK: not a command at all */
    sc_expect(a, "ERR unknown-command");
    sc_nick(a, "alice");
    const char *bad[] = {"FOO bar", "", " NICK bob", "NICKNAME bob", "MSGS #r x", "/join #r"};
    REFUSED(a, bad, "ERR unknown-command");
}

static void verbs_case_insensitive(sc_scenario *s)
{
    sc_client *b = user(s, "bob");
    sc_mark(b, "named");
    sc_client *a = sc_client_add(s, "alice");
    sc_send(a, "nick alice");
    sc_expect(a, "OK NICK alice");
    sc_send(a, "jOiN #r");
    sc_expect(a, "OK JOIN #r");
    sc_send(a, "Who #r");
    sc_expect(a, "WHO #r alice");
    sc_send(a, "msg #r hi");
    sc_expect(a, "MSG #r alice hi");
    sc_wait(a, b, "named");
    sc_send(a, "PrIv bob hey");
    sc_expect(a, "OK PRIV bob");
    sc_expect(b, "PRIV alice hey");
    sc_send(a, "part #r");
    sc_expect(a, "OK PART #r");
    sc_send(a, "Quit");
    sc_expect(a, "OK QUIT");
    sc_closed(a);
}

static void crlf_lines(sc_scenario *s)
{
    sc_client *a = sc_client_add(s, "alice"), *b = user(s, "bob");
    sc_raw(a, "NICK alice\r\n", 12);
    sc_expect(a, "OK NICK alice");
    sc_raw(a, "JOIN #r\r\n", 9);
    sc_expect(a, "OK JOIN #r");
    sc_mark(a, "in");
    sc_wait(b, a, "in");
    sc_join(b, "#r");
    sc_expect(a, "JOINED #r bob");
    sc_raw(a, "MSG #r hi there\r\nWHO #r\r\n", 25); /* two lines in one write */
    sc_expect(a, "MSG #r alice hi there");
    sc_expect(b, "MSG #r alice hi there");
    sc_expect(a, "WHO #r alice bob");
    sc_raw(a, "PRIV bob x\r\n", 12);
    sc_expect(a, "OK PRIV bob");
    sc_expect(b, "PRIV alice x");
}

static void line_too_long(sc_scenario *s)
{
    sc_client *a = user(s, "alice"), *b = user(s, "bob");
    join_all("#r", (sc_client *[]){a, b}, 2);
    static char text[8192];
    size_t longest = 4096 - strlen("MSG #r \n"); /* the longest line: 4096 bytes with "\n" */
    memset(text, 'x', longest);
    text[longest] = '\0';
    sc_send(a, "MSG #r %s", text);
    sc_expect(a, "MSG #r alice %s", text);
    sc_expect(b, "MSG #r alice %s", text);
    memset(text, 'y', 4096); /* one byte more */
    text[4096] = '\0';
    sc_send(a, "%s", text);
    sc_expect(a, "ERR line-too-long");
    sc_closed(a);
    sc_expect(b, "PARTED #r alice");
    sc_mark(b, "alice gone");
    sc_client *c = sc_client_add(s, "c"); /* much longer, from a fresh client */
    memset(text, 'z', sizeof text - 1);
    sc_raw(c, text, sizeof text - 1);
    sc_expect(c, "ERR line-too-long");
    sc_closed(c);
    sc_client *d = sc_client_add(s, "alice"); /* alice's nick was freed */
    sc_wait(d, b, "alice gone");
    sc_nick(d, "alice");
    sc_join(d, "#r");
    sc_mark(d, "in");
    sc_expect(b, "JOINED #r alice");
    sc_send(d, "WHO #r");
    sc_expect(d, "WHO #r alice bob");
}

/* ---- leaving ---------------------------------------------------------------- */

static void quit_parts_every_room(sc_scenario *s)
{
    sc_client *a = user(s, "alice"), *b = user(s, "bob");
    join_all("#r", (sc_client *[]){a, b}, 2);
    join_all("#s", (sc_client *[]){a, b}, 2);
    sc_send(a, "QUIT");
    sc_expect(a, "OK QUIT");
    sc_closed(a);
    sc_expect_in(b, 1, "PARTED #r alice"); /* one per room, in either order */
    sc_expect_in(b, 2, "PARTED #s alice");
    sc_send(b, "WHO #r");
    sc_expect(b, "WHO #r bob");
    sc_client *c = sc_client_add(s, "c"); /* QUIT before NICK */
    sc_send(c, "quit");
    sc_expect(c, "OK QUIT");
    sc_closed(c);
}

static void disconnect_without_quit(sc_scenario *s)
{
    sc_client *a = user(s, "alice"), *b = user(s, "bob"), *c = user(s, "carol");
    join_all("#r", (sc_client *[]){a, b, c}, 3);
    sc_close(a); /* no QUIT: a disconnect mid-room */
    sc_expect(b, "PARTED #r alice");
    sc_expect(c, "PARTED #r alice");
    sc_send(b, "WHO #r");
    sc_expect(b, "WHO #r bob carol");
    sc_send(b, "MSG #r still here");
    sc_expect(b, "MSG #r bob still here");
    sc_expect(c, "MSG #r bob still here");
}

/* ---- limits ----------------------------------------------------------------- */

#define CHAT_MAX_ROOMS 64

static void rooms_per_client_capped(sc_scenario *s)
{
    sc_client *a = user(s, "alice"), *b = user(s, "bob");
    for (int i = 0; i < CHAT_MAX_ROOMS; i++)
        sc_send(a, "JOIN #a%d", i); /* all at once: answered in order */
    for (int i = 0; i < CHAT_MAX_ROOMS; i++)
        sc_expect(a, "OK JOIN #a%d", i);
    sc_send(a, "JOIN #one-too-many");
    sc_expect(a, "ERR too-many-rooms");
    sc_send(a, "WHO #one-too-many"); /* not created */
    sc_expect(a, "ERR no-such-room");
    sc_join(a, "#a0"); /* already in: still fine */
    sc_mark(a, "full");
    sc_wait(b, a, "full");
    sc_join(b, "#b-own"); /* others are not held back */
    sc_join(b, "#a7");
    sc_expect(a, "JOINED #a7 bob");
    sc_send(b, "WHO #a7");
    sc_expect(b, "WHO #a7 alice bob");
    sc_mark(b, "in");
    sc_wait(a, b, "in");
    sc_send(a, "PART #a3");
    sc_expect(a, "OK PART #a3");
    sc_join(a, "#b-own");
    sc_expect(b, "JOINED #b-own alice");
    sc_send(a, "JOIN #a3");
    sc_expect(a, "ERR too-many-rooms");
    sc_send(a, "MSG #a63 still here");
    sc_expect(a, "MSG #a63 alice still here");
}

/* ---- the network ------------------------------------------------------------- */

#define PARTITION_NS (UINT64_C(120) * 1000000000) /* past the network's rto (60 s) */

/* Carol's connection is cut off from the server for longer than the
 * network's retransmission limit: both ends are reset, so the server drops
 * her as on a disconnect (docs/chat-protocol.md: she leaves her rooms) and
 * goes on serving alice and bob. */
static void partitioned_client_dropped(sc_scenario *s)
{
    sc_client *a = user(s, "alice"), *b = user(s, "bob"), *c = user(s, "carol");
    join_all("#r", (sc_client *[]){a, b, c}, 3);
    sc_partition(c, PARTITION_NS);
    sc_send(c, "MSG #r anyone?"); /* held by the partition, then lost to the reset */
    sc_closed(c);
    sc_expect(a, "PARTED #r carol");
    sc_expect(b, "PARTED #r carol");
    sc_send(a, "MSG #r after the cut");
    sc_expect(a, "MSG #r alice after the cut");
    sc_expect(b, "MSG #r alice after the cut");
    sc_send(b, "WHO #r");
    sc_expect(b, "WHO #r alice bob");
}

/* The server dropped carol for the partition: the network reset her
 * connection, after the retransmission limit of virtual time. */
static bool after_partition(char *why, size_t cap)
{
    tr_sim_stats st;
    tr_sim_stats_get(&st);
    if (st.tcp_resets >= 1 && st.virtual_ns >= UINT64_C(60) * 1000000000)
        return true;
    snprintf(why, cap, "no reset from the partition: %" PRIu64 " resets, %.1f s virtual",
             st.tcp_resets, st.virtual_ns / 1e9);
    return false;
}

/* ---- the tests ---------------------------------------------------------------- */

static const sc_def scenarios[] = {
    {"hello_on_connect", hello, false, NULL},
    {"nick_ok", nick_ok, false, NULL},
    {"nick_taken", nick_taken, false, NULL},
    {"nick_bad", nick_bad, false, NULL},
    {"nick_change", nick_change, false, NULL},
    {"commands_before_nick_are_refused", no_nick, false, NULL},
    {"join_twice_is_ok", join_twice, false, NULL},
    {"join_bad_room", join_bad_room, false, NULL},
    {"join_tells_members_who_sorted", join_tells_members_who_sorted, false, NULL},
    {"part_and_empty_room_goes", part_and_empty_room_goes, false, NULL},
    {"part_tells_members", part_tells_members, false, NULL},
    {"msg_to_every_member", msg_to_every_member, false, NULL},
    {"priv_both_ways", priv_both_ways, false, NULL},
    {"order_three_senders", order_three_senders, false, NULL},
    {"unknown_command", unknown_command, false, NULL},
    {"verbs_case_insensitive", verbs_case_insensitive, false, NULL},
    {"crlf_lines", crlf_lines, false, NULL},
    {"line_too_long", line_too_long, false, NULL},
    {"quit_parts_every_room", quit_parts_every_room, false, NULL},
    {"disconnect_without_quit", disconnect_without_quit, false, NULL},
    {"rooms_per_client_capped", rooms_per_client_capped, false, NULL},
    {"partitioned_client_dropped", partitioned_client_dropped, true, after_partition},
};
#define SCENARIOS (sizeof scenarios / sizeof *scenarios)

/* SIM_CHAT_SEEDS: "A-B" or "N"; default 1-20. */
static void seed_range(uint64_t *first, uint64_t *last)
{
    const char *e = getenv("SIM_CHAT_SEEDS");
    char *end;
    *first = 1;
    *last = 20;
    if (e == NULL || *e == '\0')
        return;
    uint64_t a = strtoull(e, &end, 10), b = a;
    if (*end == '-')
        b = strtoull(end + 1, &end, 10);
    if (*end == '\0' && a > 0 && b >= a) {
        *first = a;
        *last = b;
    }
}

static const sc_def *current(void)
{
    const char *name = CU_get_current_test()->pName;
    for (size_t i = 0; i < SCENARIOS; i++)
        if (strcmp(scenarios[i].name, name) == 0)
            return &scenarios[i];
    return NULL;
}

/* One scenario over the seeds (or, without the simulator, once over the
 * real network). */
static void test_scenario(void)
{
    const sc_def *def = current();
    CU_ASSERT_FATAL(def != NULL);
    uint64_t first, last;
    seed_range(&first, &last);
    uint64_t runs = last - first + 1;
    const char *j = getenv("SIM_CHAT_JOBS");
    int jobs = j != NULL ? atoi(j) : 1;
    double t0 = tt_now();
    int failed = sc_run_seeds(def, first, last, jobs, NULL);
    double wall = tt_now() - t0;
    if (failed == 0)
        printf("[%" PRIu64 " seeds, %.2f s, %.0f runs/s] ", runs, wall,
               wall > 0 ? runs / wall : 0.0);
    CU_ASSERT(failed == 0);
}

/* Every scenario once over real sockets: the scripts hold in production. */
static void test_real_network(void)
{
    int failed = 0;
    for (size_t i = 0; i < SCENARIOS; i++)
        if (!scenarios[i].sim_only)
            failed += sc_run_real(&scenarios[i]) != 0;
    CU_ASSERT(failed == 0);
}

/* The engine itself: a script that expects the wrong line and one that
 * leaves a line unaccounted for each fail their run (and print why). */
static void wrong_line(sc_scenario *s)
{
    sc_client *a = sc_client_add(s, "alice");
    sc_send(a, "NICK alice");
    sc_expect(a, "OK NICK bob");
}

static void extra_line(sc_scenario *s)
{
    sc_client *a = sc_client_add(s, "alice");
    sc_send(a, "NICK alice"); /* its answer is expected by no step */
}

static void test_engine_catches_wrong_scripts(void)
{
    static const sc_def bad[] = {{"wrong_line", wrong_line, false, NULL},
                                 {"extra_line", extra_line, false, NULL}};
    printf("(four failures expected below) ");
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        CU_ASSERT(sc_run_seeds(&bad[i], 1, 1, 1, NULL) == 1);
        CU_ASSERT(sc_run_real(&bad[i]) == 1);
    }
}

/* Determinism through the whole program: each seed gives the same trace
 * hash on a second run (also split differently between two processes),
 * and different seeds give different traces. */
#define HASH_SEEDS 40

static int by_value(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

static void test_same_seed_same_trace(void)
{
    static const sc_def def = {"order_three_senders", order_three_senders, false, NULL};
    uint64_t once[HASH_SEEDS], again[HASH_SEEDS];
    CU_ASSERT_FATAL(sc_run_seeds(&def, 1, HASH_SEEDS, 1, once) == 0);
    CU_ASSERT_FATAL(sc_run_seeds(&def, 1, HASH_SEEDS, 2, again) == 0);
    int same = 0, distinct = 1;
    for (int i = 0; i < HASH_SEEDS; i++)
        same += once[i] == again[i] && once[i] != 0;
    TT_EQ(same, HASH_SEEDS);
    qsort(once, HASH_SEEDS, sizeof *once, by_value);
    for (int i = 1; i < HASH_SEEDS; i++)
        distinct += once[i] != once[i - 1];
    printf("[%d distinct traces of %d seeds] ", distinct, HASH_SEEDS);
    CU_ASSERT(distinct >= HASH_SEEDS * 9 / 10);
}

void register_sim_chat_tests(void)
{
    CU_pSuite s = tt_suite("sim_chat");
    for (size_t i = 0; i < SCENARIOS; i++)
        tt_test(s, scenarios[i].name, test_scenario);
    tt_test(s, "real_network", test_real_network);
    tt_test(s, "same_seed_same_trace", test_same_seed_same_trace);
    tt_test(s, "engine_catches_wrong_scripts", test_engine_catches_wrong_scripts);
}
