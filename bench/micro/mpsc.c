/* mpsc.c — micro benchmark of the mailbox queue (mailbox/mpsc.h).
 *
 *   1t         push + pop on one thread, one node at a time: every pop
 *              takes the last node, so it also re-pushes the stub
 *   1t-batch   push 64 nodes, then pop them, on one thread
 *   turn       an actor's turn of one message on one thread: push, pop,
 *              mark empty; turn-keep the same with the mailbox's `_keep`
 *              forms (the last node kept until the mark)
 *   1p1c       one producer thread, one consumer thread
 *   Np1c       N producers, one consumer (N = 2 and 4, or --producers N)
 *   handshake  one message bounced between two threads, each the owner of
 *              a mailbox run by the empty-mark protocol: a push that
 *              reports "was empty" wakes the owner, who drains its mailbox
 *              (replying into the other) and marks it empty again. An op
 *              is one hop.
 *
 * Producers re-use a window of nodes (micro_credit); the consumer checks
 * that each producer's nodes arrive complete and in order.
 */
#include "micro.h"

#include "../../mailbox/mpsc.h"

#define WINDOW 1024u   /* nodes per producer */
#define FLUSH 64u      /* the consumer publishes credit every FLUSH nodes */
#define MAX_PRODUCERS 64

/* A cache line each, as the smallest message block is. */
struct node {
    _Alignas(MICRO_LINE) tr__node link; /* first: a tr__node * is a struct node * */
    uint32_t producer;
    uint64_t seq;
};

static struct node *node_of(tr__node *n)
{
    return (struct node *)(void *)n;
}

/* ---- one thread ---------------------------------------------------------- */

static void case_1t(micro *m, const char *name, uint64_t ops)
{
    tr__mpsc q;
    tr__mpsc_init(&q);
    struct node nd = { 0 };
    uint64_t wrong = 0;
    double t0 = bench_now();
    for (uint64_t i = 0; i < ops; i++) {
        tr__mpsc_push(&q, &nd.link);
        if (tr__mpsc_pop(&q) != &nd.link)
            wrong++;
    }
    double secs = bench_now() - t0;
    micro_check(m, name, wrong == 0, "%" PRIu64 " pops did not return the node pushed", wrong);
    micro_report(m, name, 1, ops, secs, NULL);
}

/* An actor's turn of one message on one thread: push, take, mark empty.
 * The plain forms re-push the stub to take the last node (three locked
 * instructions a turn); the mailbox's `_keep` forms keep it until the
 * mark (two). A fresh node each time from a small ring of them, as
 * message blocks come from a magazine: a kept node may not be pushed
 * again before it is handed back. */
static void case_turn(micro *m, const char *name, uint64_t ops, bool keep)
{
    enum { NODES = 64 };
    struct node *nd = micro_alloc(m, NODES, sizeof *nd);
    tr__mpsc q;
    tr__mpsc_init(&q);
    uint64_t wrong = 0;
    double t0 = bench_now();
    for (uint64_t i = 0; i < ops; i++) {
        tr__node *n = &nd[i % NODES].link, *left = NULL;
        if (!tr__mpsc_push(&q, n))
            wrong++; /* marked at the end of the last turn: must report it */
        if (keep) {
            if (tr__mpsc_pop_keep(&q.head, &q.stub, &q.end, &left) != n ||
                !tr__mpsc_mark_empty_keep(&q.head, &q.stub, &q.end, &left) || left != n)
                wrong++;
        } else if (tr__mpsc_pop(&q) != n || !tr__mpsc_mark_empty(&q)) {
            wrong++;
        }
    }
    double secs = bench_now() - t0;
    micro_check(m, name, wrong == 0, "%" PRIu64 " turns went wrong", wrong);
    micro_report(m, name, 1, ops, secs, NULL);
    free(nd);
}

static void case_1t_batch(micro *m, const char *name, uint64_t ops)
{
    enum { BATCH = 64 };
    tr__mpsc q;
    tr__mpsc_init(&q);
    struct node nd[BATCH];
    uint64_t wrong = 0, done = 0;
    double t0 = bench_now();
    while (done < ops) {
        unsigned k = ops - done < BATCH ? (unsigned)(ops - done) : BATCH;
        for (unsigned i = 0; i < k; i++)
            tr__mpsc_push(&q, &nd[i].link);
        for (unsigned i = 0; i < k; i++)
            if (tr__mpsc_pop(&q) != &nd[i].link)
                wrong++;
        done += k;
    }
    double secs = bench_now() - t0;
    micro_check(m, name, wrong == 0, "%" PRIu64 " pops out of order", wrong);
    micro_report(m, name, 1, ops, secs, NULL);
}

/* ---- producers and one consumer ------------------------------------------ */

struct pc_shared {
    tr__mpsc q;
    micro_gate gate;
    unsigned producers;
    uint64_t per_producer;
    struct node *nodes;          /* WINDOW per producer */
    micro_credit credit[MAX_PRODUCERS];
    /* the consumer's findings */
    uint64_t received, out_of_order;
};

struct pc_producer {
    struct pc_shared *sh;
    uint32_t id;
};

static void *pc_producer_main(void *arg)
{
    struct pc_producer *p = arg;
    struct pc_shared *sh = p->sh;
    struct node *mine = &sh->nodes[(size_t)p->id * WINDOW];
    uint64_t known = 0;
    micro_gate_wait(&sh->gate);
    for (uint64_t s = 0; s < sh->per_producer; s++) {
        micro_credit_wait(&sh->credit[p->id], &known, s, WINDOW);
        struct node *nd = &mine[s % WINDOW];
        nd->producer = p->id;
        nd->seq = s;
        tr__mpsc_push(&sh->q, &nd->link);
    }
    return NULL;
}

static void *pc_consumer_main(void *arg)
{
    struct pc_shared *sh = arg;
    const uint64_t total = sh->per_producer * sh->producers;
    uint64_t next[MAX_PRODUCERS] = { 0 }, unflushed[MAX_PRODUCERS] = { 0 };
    unsigned spins = 0;
    micro_gate_wait(&sh->gate);
    while (sh->received < total) {
        tr__node *n = tr__mpsc_pop(&sh->q);
        if (n == NULL) {
            /* Caught up: hand back everything, so that no producer waits. */
            for (unsigned i = 0; i < sh->producers; i++) {
                if (unflushed[i] != 0)
                    micro_credit_add(&sh->credit[i], unflushed[i]);
                unflushed[i] = 0;
            }
            micro_relax(&spins);
            continue;
        }
        struct node *nd = node_of(n);
        uint32_t p = nd->producer;
        sh->received++;
        if (p >= sh->producers) {
            sh->out_of_order++;
            continue;
        }
        if (nd->seq != next[p])
            sh->out_of_order++;
        next[p] = nd->seq + 1;
        if (++unflushed[p] == FLUSH) {
            micro_credit_add(&sh->credit[p], FLUSH);
            unflushed[p] = 0;
        }
    }
    return NULL;
}

static void case_np1c(micro *m, const char *name, unsigned producers, uint64_t ops)
{
    struct pc_shared *sh = micro_alloc(m, 1, sizeof *sh);
    struct node *nodes = micro_alloc(m, (size_t)producers * WINDOW, sizeof *nodes);
    tr__mpsc_init(&sh->q);
    micro_gate_init(&sh->gate);
    sh->producers = producers;
    sh->per_producer = ops / producers;
    sh->nodes = nodes;
    for (unsigned i = 0; i < producers; i++)
        atomic_init(&sh->credit[i].done, 0);

    struct pc_producer prod[MAX_PRODUCERS];
    pthread_t t[MAX_PRODUCERS + 1];
    for (uint32_t i = 0; i < producers; i++) {
        prod[i] = (struct pc_producer){ .sh = sh, .id = i };
        t[i] = micro_thread(m, pc_producer_main, &prod[i]);
    }
    t[producers] = micro_thread(m, pc_consumer_main, sh);
    double t0 = micro_gate_open(&sh->gate, producers + 1);
    micro_join(t[producers]); /* the consumer finishes last */
    double secs = bench_now() - t0;
    for (unsigned i = 0; i < producers; i++)
        micro_join(t[i]);

    const uint64_t total = sh->per_producer * producers;
    micro_check(m, name, sh->out_of_order == 0, "a node arrived out of order");
    micro_check(m, name, sh->received == total, "received %" PRIu64 " of %" PRIu64,
                sh->received, total);
    micro_report(m, name, producers + 1, total, secs, NULL);
    free(nodes);
    free(sh);
}

/* ---- the empty-mark handshake -------------------------------------------- */

struct hs_side {
    tr__mpsc box;
    _Alignas(MICRO_LINE) atomic_ulong wakes; /* pushes into box that reported "was empty" */
    struct hs_side *peer;
    struct node *token;      /* the message, sent first by side 0 */
    micro_gate *gate;
    atomic_bool *finished;
    uint64_t hops;           /* the hop that ends the case */
    /* findings */
    uint64_t received, double_wakes;
};

/* Sends nd to the peer's mailbox, waking the peer if it was marked empty. */
static void hs_send(struct hs_side *me, struct node *nd)
{
    if (tr__mpsc_push(&me->peer->box, &nd->link))
        atomic_fetch_add(&me->peer->wakes, 1);
}

static void *hs_main(void *arg)
{
    struct hs_side *me = arg;
    unsigned long seen = 0; /* wakes answered */
    unsigned spins = 0;
    micro_gate_wait(me->gate);
    if (me->token != NULL)
        hs_send(me, me->token);
    for (;;) {
        /* Unscheduled: wait for a push that reported "was empty". */
        unsigned long w;
        while ((w = atomic_load(&me->wakes)) == seen) {
            if (atomic_load(me->finished))
                return NULL;
            micro_relax(&spins);
        }
        if (w > seen + 1)
            me->double_wakes++;
        seen = w;
        /* Scheduled: drain, replying to each message, then mark empty. */
        for (;;) {
            tr__node *n;
            while ((n = tr__mpsc_pop(&me->box)) != NULL) {
                struct node *nd = node_of(n);
                me->received++;
                if (++nd->seq == me->hops)
                    atomic_store(me->finished, true);
                else
                    hs_send(me, nd);
            }
            if (tr__mpsc_mark_empty(&me->box))
                break;
            ck_pr_stall(); /* the peer is mid-push */
        }
    }
}

static void case_handshake(micro *m, const char *name, uint64_t ops)
{
    struct hs_side *side = micro_alloc(m, 2, sizeof *side);
    micro_gate gate;
    atomic_bool finished;
    struct node token = { 0 };
    micro_gate_init(&gate);
    atomic_init(&finished, false);
    for (int i = 0; i < 2; i++) {
        tr__mpsc_init(&side[i].box);
        atomic_init(&side[i].wakes, 0);
        side[i].peer = &side[1 - i];
        side[i].gate = &gate;
        side[i].finished = &finished;
        side[i].hops = ops;
        side[i].token = i == 0 ? &token : NULL;
    }
    pthread_t t[2];
    for (int i = 0; i < 2; i++)
        t[i] = micro_thread(m, hs_main, &side[i]);
    double t0 = micro_gate_open(&gate, 2);
    micro_join(t[0]);
    micro_join(t[1]);
    double secs = bench_now() - t0;

    uint64_t received = side[0].received + side[1].received;
    micro_check(m, name, received == ops, "%" PRIu64 " hops, want %" PRIu64, received, ops);
    micro_check(m, name, side[0].double_wakes + side[1].double_wakes == 0,
                "a mailbox was woken twice for one mark");
    micro_report(m, name, 2, ops, secs, NULL);
    free(side);
}

int main(int argc, char **argv)
{
    bench_param params[] = {
        { "producers", 0, 1, MAX_PRODUCERS }, /* 0: the cases 2p1c and 4p1c */
    };
    micro m;
    micro_init(&m, "mpsc", params, 1, argc, argv);
    uint64_t ops;
    if (micro_case(&m, "1t", 20000000, &ops))
        case_1t(&m, "1t", ops);
    if (micro_case(&m, "1t-batch", 20000000, &ops))
        case_1t_batch(&m, "1t-batch", ops);
    if (micro_case(&m, "turn", 20000000, &ops))
        case_turn(&m, "turn", ops, false);
    if (micro_case(&m, "turn-keep", 20000000, &ops))
        case_turn(&m, "turn-keep", ops, true);
    if (micro_case(&m, "1p1c", 10000000, &ops))
        case_np1c(&m, "1p1c", 1, ops);
    unsigned ns[2] = { 2, 4 }, count = 2;
    if (params[0].value != 0) {
        ns[0] = (unsigned)params[0].value;
        count = 1;
    }
    for (unsigned i = 0; i < count; i++) {
        char name[32];
        snprintf(name, sizeof name, "%up1c", ns[i]);
        if (micro_case(&m, name, 10000000, &ops))
            case_np1c(&m, name, ns[i], ops);
    }
    if (micro_case(&m, "handshake", 2000000, &ops))
        case_handshake(&m, "handshake", ops);
    return micro_exit(&m);
}
