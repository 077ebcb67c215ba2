/* msgpool.c — micro benchmark of the message pools (mailbox/msg.c).
 *
 *   1t            tr__msg_new + tr__msg_release on one thread, one at a time
 *   1t-burst      256 allocated, then released: chains move between the
 *                 magazine's current chain and its spares every TR__BATCH
 *                 (a burst longer than the spares hold reaches the depot)
 *   cross         allocated on one thread, sent through an MPSC queue and
 *                 released on another, as messages are: the releasing
 *                 thread's surplus goes back through the depot
 *   cross-malloc  the same with malloc and free, for comparison
 *
 * An op is one message allocated and released. The cross cases keep at
 * most WINDOW messages in flight (micro_credit). The pool cases report
 * how many blocks the pools took from malloc during the run (mallocs=).
 */
#include "micro.h"

#include "../../mailbox/mpsc.h"
#include "../../mailbox/msg.h"

#define LEN 16        /* payload bytes: the smallest class */
#define WINDOW 1024u  /* messages in flight in the cross cases */
#define FLUSH 64u     /* the releasing thread returns credit every FLUSH */

static void case_1t(micro *m, const char *name, uint64_t ops, unsigned burst)
{
    tr_msg *held[256];
    uint64_t done = 0;
    uint64_t mallocs = tr__msg_pool_mallocs();
    double t0 = bench_now();
    while (done < ops) {
        unsigned k = ops - done < burst ? (unsigned)(ops - done) : burst;
        for (unsigned i = 0; i < k; i++)
            if ((held[i] = tr__msg_new(1, LEN)) == NULL)
                micro_oom(m);
        for (unsigned i = 0; i < k; i++)
            tr__msg_release(held[i]);
        done += k;
    }
    double secs = bench_now() - t0;
    char extra[64];
    snprintf(extra, sizeof extra, "mallocs=%" PRIu64, tr__msg_pool_mallocs() - mallocs);
    micro_report(m, name, 1, ops, secs, extra);
}

/* ---- across threads -------------------------------------------------------- */

struct cross {
    const micro *m;
    tr__mpsc q;
    micro_gate gate;
    bool use_pool; /* else malloc and free */
    uint64_t ops;
    micro_credit credit;
    uint64_t received, bad; /* the releasing thread's */
};

static tr_msg *cross_alloc(const struct cross *c, uint64_t seq)
{
    tr_msg *msg = c->use_pool ? tr__msg_new(1, LEN) : malloc(sizeof(tr_msg) + LEN);
    if (msg != NULL) {
        msg->len = LEN;
        memcpy(msg->data, &seq, sizeof seq);
    }
    return msg;
}

static void *cross_sender_main(void *arg)
{
    struct cross *c = arg;
    uint64_t known = 0;
    micro_gate_wait(&c->gate);
    for (uint64_t s = 0; s < c->ops; s++) {
        micro_credit_wait(&c->credit, &known, s, WINDOW);
        tr_msg *msg = cross_alloc(c, s);
        if (msg == NULL)
            micro_oom(c->m);
        tr__mpsc_push(&c->q, &msg->tr__link);
    }
    return NULL;
}

/* Takes the messages in order, checks each, and releases it. */
static void *cross_receiver_main(void *arg)
{
    struct cross *c = arg;
    unsigned spins = 0, unflushed = 0;
    micro_gate_wait(&c->gate);
    while (c->received < c->ops) {
        tr__node *n = tr__mpsc_pop(&c->q);
        if (n == NULL) {
            micro_credit_add(&c->credit, unflushed);
            unflushed = 0;
            micro_relax(&spins);
            continue;
        }
        tr_msg *msg = (tr_msg *)(void *)n;
        uint64_t seq;
        memcpy(&seq, msg->data, sizeof seq);
        c->bad += seq != c->received;
        c->received++;
        if (c->use_pool)
            tr__msg_release(msg);
        else
            free(msg);
        if (++unflushed == FLUSH) {
            micro_credit_add(&c->credit, FLUSH);
            unflushed = 0;
        }
    }
    return NULL;
}

static void case_cross(micro *m, const char *name, uint64_t ops, bool use_pool)
{
    struct cross *c = micro_alloc(m, 1, sizeof *c);
    c->m = m;
    tr__mpsc_init(&c->q);
    micro_gate_init(&c->gate);
    atomic_init(&c->credit.done, 0);
    c->use_pool = use_pool;
    c->ops = ops;
    uint64_t mallocs = tr__msg_pool_mallocs();
    pthread_t t[2];
    t[0] = micro_thread(m, cross_sender_main, c);
    t[1] = micro_thread(m, cross_receiver_main, c);
    double t0 = micro_gate_open(&c->gate, 2);
    micro_join(t[0]);
    micro_join(t[1]);
    double secs = bench_now() - t0;

    micro_check(m, name, c->received == ops && c->bad == 0,
                "received %" PRIu64 " of %" PRIu64 ", %" PRIu64 " out of order", c->received,
                ops, c->bad);
    char extra[64];
    snprintf(extra, sizeof extra, "mallocs=%" PRIu64, tr__msg_pool_mallocs() - mallocs);
    micro_report(m, name, 2, ops, secs, use_pool ? extra : NULL);
    free(c);
}

int main(int argc, char **argv)
{
    micro m;
    micro_init(&m, "msgpool", NULL, 0, argc, argv);
    uint64_t ops;
    if (micro_case(&m, "1t", 20000000, &ops))
        case_1t(&m, "1t", ops, 1);
    if (micro_case(&m, "1t-burst", 20000000, &ops))
        case_1t(&m, "1t-burst", ops, 256);
    if (micro_case(&m, "cross", 10000000, &ops))
        case_cross(&m, "cross", ops, true);
    if (micro_case(&m, "cross-malloc", 10000000, &ops))
        case_cross(&m, "cross-malloc", ops, false);
    return micro_exit(&m);
}
