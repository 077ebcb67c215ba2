/* sched/backpressure.c — senders wait for a receiver that falls behind.
 *
 * Mailboxes are unbounded, so without a brake a fast sender buries a slow
 * receiver in messages until memory runs out. The brake: a receiver that
 * falls behind is *overloaded*, and an actor that sends to an overloaded
 * actor ends its turn after that message and *waits* — it is parked on
 * the receiver's wait list, in no run queue — until the receiver catches
 * up and lets it go. Threads outside the runtime wait only if they ask
 * to, with tr_send_wait (at the end of this file).
 *
 * Who is behind. Two signals, one from each side of the mailbox:
 *   - The receiver, at the end of a turn, knows whether it got through the
 *     messages that were waiting when the turn began (the mailbox's head
 *     at that moment, actor.c): a turn that uses up its batch short of
 *     that message means at least a batch was waiting. Messages sent
 *     during the turn — an actor's messages to itself, above all — do not
 *     count: an actor that keeps itself going with a message to itself is
 *     busy, not behind, and must be free to wait for its own receivers.
 *   - A sender notices a receiver that does not run at all: one stalled
 *     behind a producer preempted half-way through a push (mpsc.h), or
 *     queued on a worker whose thread is preempted. Each worker keeps a
 *     small table of the actors it has been sending to (struct tr__watch);
 *     every `watch_every` sends to a busy mailbox it reads the receiver's
 *     `handled` count, and if nothing was taken since its last look, it
 *     marks the receiver overloaded itself. This costs a few instructions
 *     per send, and one read of the receiver's line per watch_every.
 *
 * The word. Each actor's `muted` word holds its wait list (a stack linked
 * through the actors' `runq` nodes) and two bits: OVERLOADED (others may
 * wait on it) and WAITING (it is waiting, or has been let go and not yet
 * finished a turn). They are never both set. Three kinds of writer:
 *   - the owner, at the end of its own turn: sets or clears either bit,
 *     takes the list (fetch-and-store) to let everyone go;
 *   - a waiter pushes itself with a compare-and-swap that requires
 *     OVERLOADED and not WAITING;
 *   - a sender's watch sets OVERLOADED with a compare-and-swap that
 *     requires neither bit.
 * So while WAITING is set nobody but the owner writes the word.
 *
 * Why waits cannot form a cycle. An actor sets WAITING on its own word
 * before it pushes itself on a receiver's list, and keeps it until its
 * next turn ends, which is after it has been let go. A push needs the
 * receiver's WAITING clear. Take the last push of a would-be cycle, A onto
 * B: B is in the cycle, so B is on someone's list, so B set WAITING before
 * that push and still has it — and A's push would have failed. Waits can
 * chain (an overloaded actor may wait and keep its own waiters), but every
 * chain ends at an actor that is not waiting; it is overloaded, so it has
 * messages, so it is in a run queue or running: every chain drains. (Or
 * it holds its senders, tr__cx_hold_senders: overloaded with its mailbox
 * empty, which it may only be while an event of its own is sure to come
 * and run it: a node connection waiting for its socket to drain.)
 *
 * Letting go. An actor whose turn ends caught up (the messages waiting at
 * its start all handled) clears its word in one exchange and requeues
 * every waiter on its own worker. A waiting actor's mailbox is still open:
 * it keeps receiving (from actors not waiting on it, and from outside),
 * and nobody can wait on it meanwhile, so the bound below is for actors
 * that are not themselves waiting.
 *
 * The bound (README, Guarantees). S actors send to one receiver, each at
 * most u messages per message it handles; batch b, W workers, watch
 * period k. While the receiver runs turns, a turn that starts more than
 * a batch behind flags it at its end, and during one turn each worker
 * can send at most about 2k before two of its looks see no progress; so
 * when the flag goes up the receiver is at most b + 2·k·W behind, and
 * each sender then finishes the message it is handling (S·u). A
 * receiver that is let go with its backlog under a batch can take one
 * more round of those bursts before its next turn ends: b + 2·k·W +
 * 2·S·u in all. The backpressure test suite checks it at 1, 2 and 4
 * workers, batch 1 and 64, for bursts and for self-loops, one sender and
 * eight (measured: at most about half the bound).
 */
#include <sched.h>
#include <time.h>

#include "../base/sim.h"
#include "sched.h"

#define BITS (TR__OVERLOADED | TR__WAITING)

/* Sends to one receiver between two looks at its progress: at least a
 * batch (a receiver taking a batch per turn looks stalled only if it has
 * not finished a turn in two batches' worth of our sends), and not so few
 * that a receiver in the middle of an ordinary turn looks stalled. The
 * floor is thin air checked by the flood tests. */
#define WATCH_MIN 16

static tr__node *list_of(uint64_t word)
{
    return (tr__node *)(uintptr_t)(word & ~BITS);
}

unsigned tr__bp_watch_every(unsigned batch)
{
    return batch > WATCH_MIN ? batch : WATCH_MIN;
}

/* Requeues every actor on a wait list taken from a word. */
static void let_go(tr__worker *w, uint64_t word)
{
    tr__node *n = list_of(word);
    while (n != NULL) {
        tr__node *next = n->next;
        tr__sched_requeue(w, tr__actor_of_runq(n));
        n = next;
    }
}

/* Replaces the word's bits, keeping its list; the owner only. */
static void set_bits(tr__actor *a, uint64_t bits)
{
    TR_ASSERT(bits != BITS); /* an overloaded actor is never waiting */
    uint64_t old = ck_pr_load_64(&a->muted);
    while ((old & BITS) != bits &&
           !ck_pr_cas_64_value(&a->muted, old, (old & ~BITS) | bits, &old))
        ;
}

/* Pushes a onto target's wait list if target is overloaded and not
 * waiting; false otherwise. */
static bool push_waiter(tr__actor *a, tr__actor *target)
{
    /* The argument against cycles: a sets WAITING on its own word first. */
    TR_ASSERT((ck_pr_load_64(&a->muted) & BITS) == TR__WAITING);
    uint64_t old = ck_pr_load_64(&target->muted);
    while ((old & BITS) == TR__OVERLOADED) {
        a->runq.next = list_of(old);
        uint64_t new = (uint64_t)(uintptr_t)&a->runq | TR__OVERLOADED;
        if (ck_pr_cas_64_value(&target->muted, old, new, &old))
            return true;
    }
    return false;
}

/* Clears an idle actor's word and lets its waiters go, unless it has
 * started waiting itself since (then the word is its own turn's). */
void tr__bp_clear_idle(tr__worker *w, tr__actor *a)
{
    uint64_t old = ck_pr_load_64(&a->muted);
    while (old != 0 && !(old & TR__WAITING)) {
        if (ck_pr_cas_64_value(&a->muted, old, 0, &old)) {
            let_go(w, old);
            return;
        }
    }
}

static bool idle(tr__actor *a)
{
    return ((uintptr_t)ck_pr_load_ptr(&a->mailbox) & TR__MPSC_EMPTY) != 0;
}

/* Marks a overloaded unless it is waiting; true if it is (now) overloaded.
 * A look may come just after a caught up and went idle: then nothing
 * would ever let its waiters go. So, Dekker with tr__bp_went_idle: mark,
 * then look at a's mailbox; a marks its mailbox, then looks at the word
 * (tr__bp_went_idle). */
static bool flag(tr__worker *w, tr__actor *a)
{
    uint64_t old = ck_pr_load_64(&a->muted);
    while (!(old & BITS)) {
        if (ck_pr_cas_64_value(&a->muted, old, old | TR__OVERLOADED, &old)) {
            ck_pr_fence_atomic_load();
            if (!idle(a))
                return true;
            tr__bp_clear_idle(w, a);
            return false;
        }
    }
    return (old & TR__OVERLOADED) != 0;
}


/* The next look comes after watch_every busy sends, give or take an
 * eighth, so that a sender alternating between receivers in step with the
 * period cannot keep one of them out of sight. */
static unsigned next_look(tr__worker *w)
{
    return w->watch_every - (unsigned)(tr__rand(w) % (w->watch_every / 8 + 1));
}

void tr__bp_look(tr__worker *w, tr__actor *a)
{
    if (a == tr__cx_actor(&w->turner.cx)) {
        w->turner.watch_countdown = 1; /* its own mailbox: look at the next one */
        return;
    }
    w->turner.watch_countdown = next_look(w);
    tr__watch *e = &w->watch[a->index & (TR__WATCHES - 1)];
    uint32_t handled = (uint32_t)ck_pr_load_64(&a->handled);
    bool stalled = e->actor == a && e->handled == handled;
    e->actor = a;
    e->handled = handled;
    if (stalled && flag(w, a) && tr__cx_in_turn(&w->turner.cx))
        tr__cx_give_way(&w->turner.cx, a);
}

/* a waits for target; false (a not waiting) if target has caught up or is
 * waiting itself. A caught-up actor lets its own waiters go first; one
 * still behind keeps them: they stay parked behind it. */
static bool wait_for(tr__worker *w, tr__actor *a, tr__actor *target, bool behind)
{
    if (behind)
        set_bits(a, TR__WAITING);
    else
        let_go(w, ck_pr_fas_64(&a->muted, TR__WAITING));
    if (push_waiter(a, target))
        return true; /* a may already be running elsewhere: hands off */
    set_bits(a, behind ? TR__OVERLOADED : 0);
    return false;
}

void tr__bp_turn_end(tr__worker *w, tr__actor *a, bool behind, bool held, tr__actor *blocked_by)
{
    if (blocked_by != NULL && (ck_pr_load_32(&a->life) & 1) &&
        wait_for(w, a, blocked_by, behind || held))
        return; /* (an actor that has stopped need not wait) */
    if (behind) {
        set_bits(a, TR__OVERLOADED);
        tr__sched_requeue(w, a);
        return;
    }
    if (held) {
        /* Overloaded with an empty mailbox: not tr__bp_went_idle, which
         * would let the waiters go. The event it holds for runs it again. */
        set_bits(a, TR__OVERLOADED);
        if (!tr__actor_mark_idle(a, (uint32_t)ck_pr_load_64(&a->handled)))
            tr__sched_requeue(w, a);
        return;
    }
    if (ck_pr_load_64(&a->muted) != 0)
        let_go(w, ck_pr_fas_64(&a->muted, 0));
    if (!tr__actor_mark_idle(a, (uint32_t)ck_pr_load_64(&a->handled)))
        tr__sched_requeue(w, a);
    else
        tr__bp_went_idle(w, a);
}

/* ---- threads outside the runtime: tr_send_wait ----
 *
 * An outside thread cannot wait on a wait list: nothing would run it
 * again. It polls the receiver instead — the waiting thread pays for
 * the wait, and a turn's end pays nothing more than it does today (a
 * futex for outside waiters would put a load and a branch on every
 * let-go). It waits while the receiver is OVERLOADED (the signal that
 * makes actors wait), and also while, to this thread's eye, it is
 * stalled: a thread's watch (one receiver, the last it sent to) looks at
 * the receiver's handled count (moved at each turn's end) every batch of
 * sends, and a count that has not moved with the mailbox still busy
 * means a receiver that has not finished a turn since the look before
 * (its worker preempted, or busy with a long turn); it waits until the
 * count moves. So between two turn ends a thread sends at most two
 * batches, and a turn that begins more than a batch behind flags the
 * receiver at its end: about four batches in all (README). While the
 * flag stays up, a thread goes on once the receiver has taken a batch
 * since its wait began, with credit for as many sends as it took: the
 * backlog does not grow, and the receiver does not drain and park
 * between the thread's bursts (backpressure outside_sender_waits, its
 * floods of 200,000 items timed, 6 runs of each build alternating,
 * medians at 1, 2 and 4 workers and batch 64, then 2 workers batch 1:
 * waiting for the flag to clear 0.093, 0.125, 0.107, 0.28 s; with the
 * credit 0.089, 0.085, 0.074, 0.164 s; tr_send, unbounded, about 0.05). */

/* A thread's watch. One left from a runtime destroyed since, whose
 * address and pid a new one happens to reuse, only brings the first look
 * forward. */
static _Thread_local struct {
    tr_runtime *rt;
    tr_pid to;
    uint64_t handled; /* the receiver's, at the last look */
    unsigned sends;   /* since the last look */
    uint64_t credit;  /* sends the receiver has made room for while overloaded */
} outside_watch;

/* One poll's pause, by how long the thread has waited: a receiver's
 * turn is usually well under 100 us (what the scheduler keeps to one
 * worker), so for that long the thread only yields; after, it sleeps a
 * quarter of what it has waited, from 25 us to 1 ms. */
#define YIELD_NS (100 * 1000)
static void pause_poll(uint64_t waited_ns)
{
    if (waited_ns < YIELD_NS) {
        sched_yield();
        return;
    }
    uint64_t ns = waited_ns / 4 < 1000 * 1000 ? waited_ns / 4 : 1000 * 1000;
    nanosleep(&(struct timespec){.tv_nsec = (long)ns}, NULL);
}

/* Waits until `to` (an actor of rt) has room: 0, TR_ETIMEDOUT or
 * TR_ENOTSTARTED. */
static int wait_for_room(tr_runtime *rt, tr_pid to, uint64_t timeout_ns)
{
    tr__actor *a = tr__table_lookup(&tr__actors_of(rt)->table, to);
    if (a == NULL || !tr__actor_live_as(a, to))
        return 0; /* tr_send says what it is */
    unsigned batch = tr__actors_of(rt)->batch;
    bool stalled = false;
    if (outside_watch.rt != rt || outside_watch.to != to) {
        outside_watch.rt = rt;
        outside_watch.to = to;
        outside_watch.handled = ck_pr_load_64(&a->handled);
        outside_watch.sends = 0;
        outside_watch.credit = 0;
    } else if (++outside_watch.sends >= batch) {
        uint64_t handled = ck_pr_load_64(&a->handled);
        stalled = handled == outside_watch.handled && !tr__mailbox_is_empty(a);
        outside_watch.handled = handled;
        outside_watch.sends = 0;
    }
    if (!stalled && outside_watch.credit != 0) {
        /* Credit is for one spell of the flag: none left once it is down. */
        if (ck_pr_load_64(&a->muted) & TR__OVERLOADED)
            outside_watch.credit--;
        else
            outside_watch.credit = 0;
        return 0;
    }
    uint64_t start = 0, from = ck_pr_load_64(&a->handled);
    for (;;) {
        if (!tr__actor_live_as(a, to))
            return 0; /* stopped: the message is a dead letter */
        uint64_t handled = ck_pr_load_64(&a->handled);
        if (stalled && handled != outside_watch.handled)
            stalled = false;
        if (!stalled && !(ck_pr_load_64(&a->muted) & TR__OVERLOADED))
            return 0;
        if (!stalled && handled - from >= batch) {
            /* Still behind, but it has taken a batch since the wait
             * began: send as many as it took (the backlog does not grow),
             * keeping it busy rather than letting it drain and park
             * before the thread fills it again. */
            outside_watch.credit = handled - from - 1;
            return 0;
        }
        if (!ck_pr_load_32(&rt->running) || ck_pr_load_32(&rt->stop))
            return TR_ENOTSTARTED;
        uint64_t now = tr__now_ns();
        if (start == 0)
            start = now;
        else if (timeout_ns != 0 && now - start >= timeout_ns)
            return TR_ETIMEDOUT;
        pause_poll(now - start);
    }
}

int tr_send_wait(tr_runtime *rt, tr_pid to, uint32_t type, const void *data, size_t len,
                 uint64_t timeout_ns)
{
    if (rt == NULL)
        return TR_EINVAL;
    if (tr__worker_current() != NULL)
        return TR_EDEADLK;
    if (TR__PID_NODE(to) == 0 && !tr__sim_on()) {
        int err = wait_for_room(rt, to, timeout_ns);
        if (err != 0)
            return err;
    }
    return tr_send(tr_runtime_ctx(rt), to, type, data, len);
}
