/* test_dist_order.c — no loss and order per pair across nodes (issue 13,
 * acceptance item 3): 4 senders on one troupe node each send numbered
 * messages to one actor on another troupe node (both in this process,
 * over loopback); every message must arrive once, and each sender's in
 * order. 1,000,000 per sender in a release build (a few seconds); under a
 * sanitizer 100,000; TROUPE_DIST_ORDER_N=<count> sets it.
 *
 * A sender keeps at most WINDOW messages unacknowledged, from before node
 * connections held their senders (item 6, test_dist_big.c): this test is
 * about order, not memory. Many thousands are still on the wire at any
 * time. */
#include <stdlib.h>
#include <string.h>

#include "../dist/dist.h"
#include "dist_util.h"

enum { HELLO = 1, GO, DATA, ACK };
enum { SENDERS = 4, ACK_EVERY = 1024, WINDOW = 32 * ACK_EVERY };

typedef struct item {
    uint32_t sender;
    uint32_t pad;
    uint64_t seq;
} item;

/* What the sink saw, read by the test thread at the end. */
static struct {
    atomic_uint_fast64_t in_order[SENDERS];
    atomic_uint_fast64_t bad;       /* unknown sender, a gap, a repeat or a reordering */
    atomic_uint_fast64_t acked[SENDERS];
    atomic_uint senders_done;
} seen;

static uint64_t per_sender;

static void sink(tr_ctx *cx, void *state, const tr_msg *m)
{
    (void)state;
    if (m->type == HELLO) {
        TT_CHECK(tr_send(cx, m->from, HELLO, NULL, 0) == 0);
        return;
    }
    const item *it = TR_PAYLOAD(m, item);
    if (it == NULL || it->sender >= SENDERS ||
        it->seq != atomic_load(&seen.in_order[it->sender])) {
        atomic_fetch_add(&seen.bad, 1);
        return;
    }
    uint64_t got = atomic_fetch_add(&seen.in_order[it->sender], 1) + 1;
    if (got % ACK_EVERY == 0 || got == per_sender)
        TT_CHECK(tr_send(cx, m->from, ACK, &got, sizeof got) == 0);
}

struct sender {
    uint32_t id;
    tr_pid sink;
    uint64_t next, acked;
};

static void fill(tr_ctx *cx, struct sender *s)
{
    for (; s->next < per_sender && s->next - s->acked < WINDOW; s->next++) {
        item it = {.sender = s->id, .seq = s->next};
        TT_CHECK(tr_send(cx, s->sink, DATA, &it, sizeof it) == 0);
    }
}

static void sender(tr_ctx *cx, void *state, const tr_msg *m)
{
    struct sender *s = state;
    if (m->type == GO) {
        const tr_pid *p = TR_PAYLOAD(m, tr_pid);
        TT_CHECK(p != NULL);
        if (p == NULL)
            return;
        s->sink = *p;
        fill(cx, s);
    } else if (m->type == ACK) {
        const uint64_t *got = TR_PAYLOAD(m, uint64_t);
        TT_CHECK(got != NULL && *got > s->acked && *got <= s->next);
        if (got == NULL)
            return;
        s->acked = *got;
        atomic_store(&seen.acked[s->id], s->acked);
        if (s->acked == per_sender)
            atomic_fetch_add(&seen.senders_done, 1);
        else
            fill(cx, s);
    }
}

/* Learns the sink's pid (a remote tr_pid) and hands it to every sender. */
static void coord(tr_ctx *cx, void *state, const tr_msg *m)
{
    const tr_pid *senders = state;
    if (m->type == GO)
        TT_CHECK(tr_send_named(cx, "sink", "tt_ob@localhost", HELLO, NULL, 0) == 0);
    else if (m->type == HELLO)
        for (int i = 0; i < SENDERS; i++)
            TT_CHECK(tr_send(cx, senders[i], GO, &m->from, sizeof m->from) == 0);
}

static uint64_t count_wanted(void)
{
    const char *env = getenv("TROUPE_DIST_ORDER_N");
    char *end;
    unsigned long long v = env != NULL ? strtoull(env, &end, 10) : 0;
    if (env != NULL && *end == '\0' && v > 0)
        return v;
    return TT_ASAN || TT_TSAN ? 100000 : 1000000;
}

static void test_four_senders_every_message_once_in_order(void)
{
    if (dt_skip())
        return;
    per_sender = count_wanted();
    memset(&seen, 0, sizeof seen);
    uint16_t epmd = dt_epmd_start();
    CU_ASSERT_FATAL(epmd != 0);
    tr_runtime *a = dt_node("tt_oa", epmd, 0), *b = dt_node("tt_ob", epmd, 0);
    tr_actor_spec ks = {.behaviour = sink, .name = "sink"};
    TT_EQ(tr_spawn_spec(tr_runtime_ctx(b), &ks, NULL), 0);
    tr_pid senders[SENDERS], co;
    for (uint32_t i = 0; i < SENDERS; i++) {
        struct sender s = {.id = i};
        TT_EQ(tr_spawn(tr_runtime_ctx(a), sender, &s, sizeof s, &senders[i]), 0);
    }
    TT_EQ(tr_spawn(tr_runtime_ctx(a), coord, senders, sizeof senders, &co), 0);
    TT_EQ(tr_send(tr_runtime_ctx(a), co, GO, NULL, 0), 0);

    /* Bounded, and extended while the count still moves. */
    uint64_t last = 0;
    for (double until = tt_now() + 60; atomic_load(&seen.senders_done) < SENDERS &&
                                       atomic_load(&seen.bad) == 0 && tt_now() < until;) {
        tt_sleep_ms(20);
        uint64_t now = 0;
        for (int i = 0; i < SENDERS; i++)
            now += atomic_load(&seen.in_order[i]);
        if (now != last)
            until = tt_now() + 60;
        last = now;
    }
    TT_EQ(atomic_load(&seen.bad), 0);
    TT_EQ(atomic_load(&seen.senders_done), SENDERS);
    for (int i = 0; i < SENDERS; i++) {
        TT_EQ(atomic_load(&seen.in_order[i]), per_sender);
        TT_EQ(atomic_load(&seen.acked[i]), per_sender);
    }
    /* Nothing sent here went astray on either side. */
    tr_stats sa, sb;
    tr_runtime_stats(a, &sa);
    tr_runtime_stats(b, &sb);
    TT_EQ(sa.dead_letters, 0);
    TT_EQ(sb.dead_letters, 0);
    TT_EQ(tr__dist_conns_up(a), 1);
    TT_NO_ERRORS();
    dt_node_end(a);
    dt_node_end(b);
    dt_epmd_stop(epmd);
}

void register_dist_order_tests(void)
{
    CU_pSuite s = tt_suite("dist_order");
    tt_test(s, "four_senders_every_message_once_in_order",
            test_four_senders_every_message_once_in_order);
}
