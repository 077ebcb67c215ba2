/* test_mailbox.c — the MPSC mailbox (mailbox/mpsc.h), tested directly.
 *
 * Items embed a tr__node as their first member and carry the producer's
 * id and a per-producer sequence number, so the consumer can check that
 * nothing is lost, nothing is duplicated and each producer's order is kept.
 * Each test runs the plain forms and the `_keep` forms an actor's mailbox
 * uses (the last node stays in the queue until it leaves), which must
 * also hand every node back to be freed exactly once, in order, and never
 * while a producer may still link to it.
 */
#include "tests.h"

#include "../mailbox/mpsc.h"

#include <sched.h>
#include <stdlib.h>

struct item {
    tr__node link; /* must be first */
    uint32_t producer;
    uint32_t seq;
};

static struct item *item_of(tr__node *n)
{
    return (struct item *)(void *)n;
}

static tr__node *node_of(struct item *it)
{
    return &it->link;
}

/* ---- single-threaded behaviour ------------------------------------------ */

static void test_fifo_single_producer(void)
{
    enum { N = 10000 };
    struct item *items = calloc(N, sizeof *items);
    CU_ASSERT_FATAL(items != NULL);
    tr__mpsc q;
    tr__mpsc_init(&q);

    CU_ASSERT_PTR_NULL(tr__mpsc_pop(&q));
    unsigned was_empty = 0;
    for (uint32_t i = 0; i < N; i++) {
        items[i].producer = 0;
        items[i].seq = i;
        if (tr__mpsc_push(&q, node_of(&items[i])))
            was_empty++;
    }
    TT_EQ(was_empty, 1);

    /* One thread: no producer can be mid-push, so pop never needs a retry. */
    uint32_t popped = 0, out_of_order = 0;
    tr__node *n;
    while ((n = tr__mpsc_pop(&q)) != NULL) {
        struct item *it = item_of(n);
        if (it != &items[popped] || it->seq != popped)
            out_of_order++;
        popped++;
        if (popped > N)
            break; /* a cycle in the list; don't loop forever */
    }
    TT_EQ(popped, N);
    TT_EQ(out_of_order, 0);
    CU_ASSERT_PTR_NULL(tr__mpsc_pop(&q));

    /* Interleaved pushes and pops keep FIFO order too, and the same nodes
     * can be pushed again once popped. */
    uint32_t next_in = 0, next_out = 0;
    out_of_order = 0;
    for (int round = 0; round < 1000; round++) {
        for (int k = 0; k < 3; k++) {
            struct item *it = &items[next_in % N];
            it->seq = next_in++;
            tr__mpsc_push(&q, node_of(it));
        }
        for (int k = 0; k < 2; k++) {
            n = tr__mpsc_pop(&q);
            if (n == NULL || item_of(n)->seq != next_out)
                out_of_order++;
            next_out++;
        }
    }
    while ((n = tr__mpsc_pop(&q)) != NULL) {
        if (item_of(n)->seq != next_out)
            out_of_order++;
        next_out++;
        if (next_out > next_in)
            break;
    }
    TT_EQ(next_out, next_in);
    TT_EQ(out_of_order, 0);
    free(items);
}

static void test_empty_marking(void)
{
    struct item it[6];
    for (uint32_t i = 0; i < 6; i++)
        it[i] = (struct item){ .producer = 0, .seq = i };
    tr__mpsc q;
    tr__mpsc_init(&q);
    CU_ASSERT_TRUE(tr__mpsc_is_empty(&q));

    /* A new queue starts marked empty: the first push reports it. */
    CU_ASSERT_TRUE(tr__mpsc_push(&q, node_of(&it[0])));
    CU_ASSERT_FALSE(tr__mpsc_is_empty(&q));
    CU_ASSERT_FALSE(tr__mpsc_push(&q, node_of(&it[1])));
    /* mark_empty fails while something is queued, and leaves it unmarked. */
    CU_ASSERT_FALSE(tr__mpsc_mark_empty(&q));
    CU_ASSERT_FALSE(tr__mpsc_push(&q, node_of(&it[2])));

    CU_ASSERT_PTR_EQUAL(tr__mpsc_pop(&q), node_of(&it[0]));
    CU_ASSERT_FALSE(tr__mpsc_mark_empty(&q));
    CU_ASSERT_PTR_EQUAL(tr__mpsc_pop(&q), node_of(&it[1]));
    CU_ASSERT_FALSE(tr__mpsc_is_empty(&q));
    CU_ASSERT_PTR_EQUAL(tr__mpsc_pop(&q), node_of(&it[2]));
    CU_ASSERT_PTR_NULL(tr__mpsc_pop(&q));
    CU_ASSERT_TRUE(tr__mpsc_is_empty(&q));

    /* Drained but not marked: the consumer still owns it, so a push does
     * not report "was empty". */
    CU_ASSERT_FALSE(tr__mpsc_push(&q, node_of(&it[3])));
    CU_ASSERT_PTR_EQUAL(tr__mpsc_pop(&q), node_of(&it[3]));
    CU_ASSERT_PTR_NULL(tr__mpsc_pop(&q));

    /* Marked: the next push reports "was empty", the one after does not. */
    CU_ASSERT_TRUE(tr__mpsc_mark_empty(&q));
    CU_ASSERT_TRUE(tr__mpsc_push(&q, node_of(&it[4])));
    CU_ASSERT_FALSE(tr__mpsc_push(&q, node_of(&it[5])));
    CU_ASSERT_FALSE(tr__mpsc_mark_empty(&q));
    CU_ASSERT_PTR_EQUAL(tr__mpsc_pop(&q), node_of(&it[4]));
    CU_ASSERT_PTR_EQUAL(tr__mpsc_pop(&q), node_of(&it[5]));
    CU_ASSERT_PTR_NULL(tr__mpsc_pop(&q));

    /* And again, re-using a node that has been through the queue. */
    CU_ASSERT_TRUE(tr__mpsc_mark_empty(&q));
    CU_ASSERT_PTR_NULL(tr__mpsc_pop(&q));
    CU_ASSERT_TRUE(tr__mpsc_push(&q, node_of(&it[0])));
    CU_ASSERT_PTR_EQUAL(tr__mpsc_pop(&q), node_of(&it[0]));
    CU_ASSERT_PTR_NULL(tr__mpsc_pop(&q));
    CU_ASSERT_TRUE(tr__mpsc_mark_empty(&q));
}

/* The `_keep` forms, one step at a time: the last node is handed out but
 * stays (kept) until the next one is linked behind it or the queue is
 * marked empty, and comes back then, once. A producer caught between its
 * exchange and its link (done here by hand) makes the mark fail. */
static void test_keep_last_node(void)
{
    struct item it[5];
    for (uint32_t i = 0; i < 5; i++)
        it[i] = (struct item){ .producer = 0, .seq = i };
    tr__mpsc q;
    tr__mpsc_init(&q);
    tr__node *left = NULL;
#define POP() tr__mpsc_pop_keep(&q.head, &q.stub, &q.end, &left)
#define MARK() tr__mpsc_mark_empty_keep(&q.head, &q.stub, &q.end, &left)
#define EMPTY() tr__mpsc_is_empty_keep(&q.head, &q.stub, &q.end)
    CU_ASSERT_TRUE(EMPTY());
    CU_ASSERT_PTR_NULL(POP());

    CU_ASSERT_TRUE(tr__mpsc_push(&q, node_of(&it[0])));
    CU_ASSERT_FALSE(EMPTY());
    CU_ASSERT_PTR_EQUAL(POP(), node_of(&it[0]));
    CU_ASSERT_TRUE(tr__mpsc_kept(&q.end, node_of(&it[0])));
    CU_ASSERT_TRUE(EMPTY());
    CU_ASSERT_PTR_NULL(POP());
    CU_ASSERT_PTR_NULL(left);

    /* A node behind the kept one: the kept one leaves as it is passed. */
    CU_ASSERT_FALSE(tr__mpsc_push(&q, node_of(&it[1])));
    CU_ASSERT_FALSE(EMPTY());
    CU_ASSERT_FALSE(MARK());
    CU_ASSERT_PTR_NULL(left);
    CU_ASSERT_PTR_EQUAL(POP(), node_of(&it[1]));
    CU_ASSERT_PTR_EQUAL(left, node_of(&it[0]));
    CU_ASSERT_FALSE(tr__mpsc_kept(&q.end, node_of(&it[0])));
    CU_ASSERT_TRUE(tr__mpsc_kept(&q.end, node_of(&it[1])));
    left = NULL;

    /* Marked empty: the kept node comes back with the mark, and the next
     * push reports "was empty". */
    CU_ASSERT_TRUE(MARK());
    CU_ASSERT_PTR_EQUAL(left, node_of(&it[1]));
    left = NULL;
    CU_ASSERT_TRUE(EMPTY());
    CU_ASSERT_TRUE(tr__mpsc_push(&q, node_of(&it[2])));
    CU_ASSERT_FALSE(tr__mpsc_push(&q, node_of(&it[3])));
    CU_ASSERT_PTR_EQUAL(POP(), node_of(&it[2]));
    CU_ASSERT_FALSE(tr__mpsc_kept(&q.end, node_of(&it[2]))); /* not the last */
    CU_ASSERT_PTR_EQUAL(POP(), node_of(&it[3]));
    CU_ASSERT_PTR_NULL(left);

    /* A producer between its exchange and its link: the mark fails and
     * the node stays kept; once linked, the next pop passes it. */
    it[4].link.next = NULL;
    tr__node *prev = ck_pr_fas_ptr(&q.head, node_of(&it[4]));
    CU_ASSERT_PTR_EQUAL(prev, node_of(&it[3]));
    CU_ASSERT_FALSE(EMPTY());
    CU_ASSERT_PTR_NULL(POP());
    CU_ASSERT_FALSE(MARK());
    CU_ASSERT_PTR_NULL(left);
    CU_ASSERT_TRUE(tr__mpsc_kept(&q.end, node_of(&it[3])));
    ck_pr_store_ptr(&prev->next, node_of(&it[4]));
    CU_ASSERT_PTR_EQUAL(POP(), node_of(&it[4]));
    CU_ASSERT_PTR_EQUAL(left, node_of(&it[3]));
    left = NULL;

    /* Thrown away with a node kept: it is still there to free. */
    CU_ASSERT_PTR_EQUAL(tr__mpsc_kept_node(&q.end), node_of(&it[4]));
    CU_ASSERT_TRUE(MARK());
    CU_ASSERT_PTR_EQUAL(left, node_of(&it[4]));
    CU_ASSERT_PTR_NULL(tr__mpsc_kept_node(&q.end));
#undef POP
#undef MARK
#undef EMPTY
}

/* ---- many producers, one consumer ---------------------------------------- */

#define MP_PRODUCERS 8
#define MP_PER_PRODUCER 1000000u

struct mp_shared {
    tr__mpsc q;
    struct item *items[MP_PRODUCERS];
    uint32_t per_producer;
    /* the recycling variant: */
    uint32_t window;                       /* 0, or nodes per producer */
    atomic_uint done[MP_PRODUCERS];        /* next seq the consumer expects */
    atomic_uint waiting_for[MP_PRODUCERS]; /* seq a producer waits to push;
                                            * UINT32_MAX once it finished */
    atomic_uint stalled;    /* producers waiting for the consumer, or finished */
    atomic_bool abandoned;  /* the consumer found items lost (see below) */
    atomic_bool go;
    atomic_bool producers_done; /* set after every producer was joined */
    atomic_uint was_empty;      /* pushes that reported "was empty" */
    /* the keeping variant (the mailbox's forms): */
    bool keep;
    uint32_t freed[MP_PRODUCERS]; /* nodes handed back, per producer */
    uint64_t frees;
    uint64_t freed_out_of_order;  /* handed back out of order, or twice */
    /* the handshake variant: */
    bool handshake;
    atomic_ulong wakes; /* pushes that returned true (consumer scheduled) */
    /* consumer results */
    uint64_t received;
    uint64_t out_of_order;
    uint64_t bad_producer;
    uint64_t extra_after_end;
    uint64_t marks;         /* queue marked empty (1 for the new queue) */
    uint64_t double_wakes;  /* scheduled while already scheduled */
    uint64_t lost_wakeups;  /* items left while unscheduled and nobody woke us */
    uint32_t expected[MP_PRODUCERS];
};

struct mp_producer {
    struct mp_shared *sh;
    uint32_t id;
};

/* Recycling: waits until the node of seq s is free again, that is until
 * seq s - window has been taken. False if the consumer gave up. */
static bool mp_window_wait(struct mp_shared *sh, uint32_t id, uint32_t s)
{
    if (s < atomic_load(&sh->done[id]) + sh->window)
        return true;
    unsigned long spins = 0;
    atomic_store(&sh->waiting_for[id], s);
    atomic_fetch_add(&sh->stalled, 1);
    while (s >= atomic_load(&sh->done[id]) + sh->window && !atomic_load(&sh->abandoned))
        tt_relax(&spins);
    atomic_fetch_sub(&sh->stalled, 1);
    return !atomic_load(&sh->abandoned);
}

static void *mp_producer_main(void *arg)
{
    struct mp_producer *p = arg;
    struct mp_shared *sh = p->sh;
    unsigned long spins = 0;
    while (!atomic_load(&sh->go))
        tt_relax(&spins);
    for (uint32_t s = 0; s < sh->per_producer; s++) {
        struct item *it = &sh->items[p->id][s];
        if (sh->window != 0) {
            if (!mp_window_wait(sh, p->id, s))
                break;
            it = &sh->items[p->id][s % sh->window];
        }
        it->producer = p->id;
        it->seq = s;
        if (tr__mpsc_push(&sh->q, node_of(it))) {
            atomic_fetch_add(&sh->was_empty, 1);
            if (sh->handshake)
                atomic_fetch_add(&sh->wakes, 1);
        }
        /* In the handshake variant, push in short bursts so that the
         * consumer often catches up, marks the queue empty and has to be
         * rescheduled by a push. */
        if (sh->handshake && (s + p->id) % 8 == 7)
            sched_yield();
    }
    if (sh->window != 0) {
        atomic_store(&sh->waiting_for[p->id], UINT32_MAX);
        atomic_fetch_add(&sh->stalled, 1);
    }
    return NULL;
}

/* A node the consumer may free: its producer may use it again. */
static void mp_free(struct mp_shared *sh, tr__node *n)
{
    struct item *it = item_of(n);
    if (it->producer >= MP_PRODUCERS)
        return; /* counted by mp_take */
    sh->frees++;
    if (it->seq != sh->freed[it->producer])
        sh->freed_out_of_order++;
    sh->freed[it->producer] = it->seq + 1;
    if (sh->window != 0)
        atomic_store(&sh->done[it->producer], sh->freed[it->producer]);
}

static void mp_take(struct mp_shared *sh, tr__node *n)
{
    struct item *it = item_of(n);
    sh->received++;
    if (it->producer >= MP_PRODUCERS) {
        sh->bad_producer++;
        return;
    }
    if (it->seq != sh->expected[it->producer]) {
        sh->out_of_order++;
        sh->expected[it->producer] = it->seq + 1; /* resynchronise */
    } else {
        sh->expected[it->producer]++;
    }
    if (!sh->keep || !tr__mpsc_kept(&sh->q.end, n))
        mp_free(sh, n);
}

/* The consumer's pop and mark: the plain forms, or the mailbox's, which
 * hand a kept node back as it leaves. */
static tr__node *mp_pop(struct mp_shared *sh)
{
    if (!sh->keep)
        return tr__mpsc_pop(&sh->q);
    tr__node *left = NULL;
    tr__node *n = tr__mpsc_pop_keep(&sh->q.head, &sh->q.stub, &sh->q.end, &left);
    if (left != NULL)
        mp_free(sh, left);
    return n;
}

static bool mp_mark_empty(struct mp_shared *sh)
{
    if (!sh->keep)
        return tr__mpsc_mark_empty(&sh->q);
    tr__node *left = NULL;
    bool marked = tr__mpsc_mark_empty_keep(&sh->q.head, &sh->q.stub, &sh->q.end, &left);
    if (left != NULL)
        mp_free(sh, left);
    return marked;
}

/* Recycling, consumer: true if every producer has finished or waits for
 * an item not taken yet. Then no push is in flight and none can start
 * before we take something, so a pop that finds nothing proves items lost
 * (instead of everyone waiting forever). */
static bool mp_window_stuck(struct mp_shared *sh)
{
    if (atomic_load(&sh->stalled) != MP_PRODUCERS)
        return false;
    for (int i = 0; i < MP_PRODUCERS; i++) {
        uint32_t s = atomic_load(&sh->waiting_for[i]);
        if (s != UINT32_MAX && s < sh->freed[i] + sh->window)
            return false; /* leaving its wait */
    }
    return true;
}

/* Plain consumer: pops until every item arrived (retrying on NULL). If an
 * item was lost it stops once the producers are done and the queue is
 * really empty, instead of waiting forever. */
static void *mp_consumer_main(void *arg)
{
    struct mp_shared *sh = arg;
    const uint64_t total = (uint64_t)MP_PRODUCERS * sh->per_producer;
    unsigned long spins = 0;
    sh->marks = 1; /* a new queue is marked empty */
    atomic_store(&sh->go, true);
    while (sh->received < total) {
        tr__node *n = mp_pop(sh);
        if (n != NULL) {
            mp_take(sh, n);
            continue;
        }
        /* Keeping, a node comes back only when another is linked behind
         * it or the queue is marked: recycling producers may wait for it. */
        if (sh->keep && sh->window != 0 && mp_mark_empty(sh))
            sh->marks++;
        if (atomic_load(&sh->producers_done)) {
            /* Every push has completed: NULL now means empty. */
            n = mp_pop(sh);
            if (n == NULL)
                break;
            mp_take(sh, n);
            continue;
        }
        if (sh->window != 0 && mp_window_stuck(sh)) {
            if ((n = mp_pop(sh)) == NULL) {
                atomic_store(&sh->abandoned, true);
                break;
            }
            mp_take(sh, n);
            continue;
        }
        tt_relax(&spins);
    }
    /* Nothing beyond the expected total may come out. */
    while (!atomic_load(&sh->producers_done)) {
        if (sh->window != 0 && mp_window_stuck(sh))
            atomic_store(&sh->abandoned, true); /* they wait for what was lost */
        tt_relax(&spins);
    }
    while (mp_pop(sh) != NULL && sh->extra_after_end <= total)
        sh->extra_after_end++;
    tr__node *kept = tr__mpsc_kept_node(&sh->q.end); /* the queue is thrown away */
    if (kept != NULL)
        mp_free(sh, kept);
    return NULL;
}

/* Handshake consumer: behaves like an actor's owner. It only drains while
 * "scheduled"; when the queue is empty it marks it and unschedules, and
 * waits for a push that reports "was empty" to schedule it again. */
static void *mp_handshake_consumer_main(void *arg)
{
    struct mp_shared *sh = arg;
    const uint64_t total = (uint64_t)MP_PRODUCERS * sh->per_producer;
    unsigned long spins = 0;
    sh->marks = 1; /* a new queue is marked empty */
    atomic_store(&sh->go, true);
    for (;;) {
        /* Unscheduled: wait for the push that reported "was empty". */
        unsigned long w;
        while ((w = atomic_load(&sh->wakes)) < sh->marks) {
            if (atomic_load(&sh->producers_done)) {
                w = atomic_load(&sh->wakes);
                if (w < sh->marks)
                    goto finished;
            }
            tt_relax(&spins);
        }
        if (w > sh->marks)
            sh->double_wakes++;
        /* Scheduled: drain, then try to mark empty. */
        for (;;) {
            tr__node *n = mp_pop(sh);
            if (n != NULL) {
                mp_take(sh, n);
                continue;
            }
            if (mp_mark_empty(sh)) {
                sh->marks++;
                break;
            }
            tt_relax(&spins); /* a producer is mid-push */
        }
    }
finished:
    /* Producers are done, we are unscheduled and nobody woke us: the queue
     * must be empty and every item received. */
    if (sh->received < total) {
        tr__node *n;
        while ((n = mp_pop(sh)) != NULL) {
            sh->lost_wakeups++;
            mp_take(sh, n);
        }
    }
    return NULL;
}

static void mp_run(bool keep, bool handshake, uint32_t per_producer, uint32_t window)
{
    struct mp_shared *sh = calloc(1, sizeof *sh);
    CU_ASSERT_FATAL(sh != NULL);
    tr__mpsc_init(&sh->q);
    sh->keep = keep;
    sh->per_producer = per_producer;
    sh->handshake = handshake;
    sh->window = window;
    for (int i = 0; i < MP_PRODUCERS; i++) {
        sh->items[i] = calloc(window != 0 ? window : per_producer, sizeof(struct item));
        CU_ASSERT_FATAL(sh->items[i] != NULL);
    }
    struct mp_producer prod[MP_PRODUCERS];
    pthread_t pt[MP_PRODUCERS];
    pthread_t ct = tt_thread(handshake ? mp_handshake_consumer_main : mp_consumer_main, sh);
    for (uint32_t i = 0; i < MP_PRODUCERS; i++) {
        prod[i] = (struct mp_producer){ .sh = sh, .id = i };
        pt[i] = tt_thread(mp_producer_main, &prod[i]);
    }
    for (int i = 0; i < MP_PRODUCERS; i++)
        tt_join(pt[i]);
    atomic_store(&sh->producers_done, true);
    tt_join(ct);

    const uint64_t total = (uint64_t)MP_PRODUCERS * per_producer;
    TT_EQ(sh->received, total);
    TT_EQ(sh->out_of_order, 0);
    TT_EQ(sh->bad_producer, 0);
    for (int i = 0; i < MP_PRODUCERS; i++)
        TT_EQ(sh->expected[i], per_producer);
    /* Every node handed back to be freed, once and in order. */
    TT_EQ(sh->frees, total);
    TT_EQ(sh->freed_out_of_order, 0);
    if (!handshake) {
        TT_EQ(sh->extra_after_end, 0);
        /* Each mark answered by one report, but perhaps the last (never
         * marked again after the first push, unless keeping recycled
         * nodes: exactly one report). */
        unsigned reports = atomic_load(&sh->was_empty);
        CU_ASSERT(reports <= sh->marks && reports + 1 >= sh->marks);
        if (!keep || window == 0)
            TT_EQ(reports, 1);
    } else {
        TT_EQ(sh->double_wakes, 0);
        TT_EQ(sh->lost_wakeups, 0);
        /* Every "was empty" push answers exactly one mark; the last mark
         * is still pending. */
        TT_EQ(atomic_load(&sh->wakes), sh->marks - 1);
        printf("[%" PRIu64 " reschedules] ", sh->marks - 1);
    }
    for (int i = 0; i < MP_PRODUCERS; i++)
        free(sh->items[i]);
    free(sh);
}

static void test_mpsc_8_producers(void)
{
    mp_run(false, false, MP_PER_PRODUCER, 0);
}

static void test_mpsc_handshake(void)
{
    mp_run(false, true, TT_TSAN ? 25000u : 100000u, 0);
}

static void test_keep_8_producers(void)
{
    mp_run(true, false, TT_TSAN ? 250000u : MP_PER_PRODUCER, 0);
}

static void test_keep_handshake(void)
{
    mp_run(true, true, TT_TSAN ? 25000u : 100000u, 0);
}

/* Each producer owns 4 nodes and pushes one again as soon as the consumer
 * has taken it, as message blocks come back from the pools. The queue is
 * nearly empty all the time, so pop keeps meeting the last node and
 * re-pushing the stub while producers exchange the head: the window that
 * mpsc.h describes. Nothing may be lost, duplicated or reordered. */
static void test_mpsc_recycled_nodes(void)
{
    mp_run(false, false, TT_TSAN ? 40000u : TT_ASAN ? 50000u : 100000u, 4);
}

/* The same with the mailbox's forms: a producer reuses a node only once
 * it has been handed back, so one handed back while a producer could
 * still link to it shows up as a lost, repeated or reordered item. */
static void test_keep_recycled_nodes(void)
{
    mp_run(true, false, TT_TSAN ? 40000u : TT_ASAN ? 50000u : 100000u, 4);
}

void register_mailbox_tests(void)
{
    CU_pSuite s = tt_suite("mailbox");
    tt_test(s, "fifo_single_producer", test_fifo_single_producer);
    tt_test(s, "push_reports_was_empty_only_after_mark_empty", test_empty_marking);
    tt_test(s, "mpsc_8_producers_x_1M", test_mpsc_8_producers);
    tt_test(s, "mpsc_mark_empty_handshake", test_mpsc_handshake);
    tt_test(s, "mpsc_recycled_nodes", test_mpsc_recycled_nodes);
    tt_test(s, "keep_last_node", test_keep_last_node);
    tt_test(s, "keep_8_producers_x_1M", test_keep_8_producers);
    tt_test(s, "keep_mark_empty_handshake", test_keep_handshake);
    tt_test(s, "keep_recycled_nodes", test_keep_recycled_nodes);
}
