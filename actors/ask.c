/* actors/ask.c — request/reply: tr_ask, tr_reply, tr_call.
 *
 * The asker's side is a table of the refs it waits for, each with its
 * deadline: whichever answer arrives first finds its ref and takes it
 * out, and any later one finds nothing and is dropped. The target's side
 * keeps nothing: an ask is answered in the turn that handles it or failed
 * as that turn ends, and an ask that never reaches a behaviour is a dead
 * letter, answered as one (ask.h).
 *
 * Timeouts. One timer per asker, not one per ask: the sweep, armed for the
 * earliest deadline. When it fires, every ask past its deadline gets its
 * TR__ASK_TIMEOUT (sent to itself, so that a reply already queued still
 * wins), and the sweep is armed again for the earliest left. An answer
 * touches no timer: a timer per ask cost a start and a cancel (two locked
 * instructions, a slot and two blocks) on every ask, and the cancelled
 * timer's memory stayed in the wheel until it would have been due — about
 * 350 bytes for 5 s for an ask answered in a millisecond with a 5 s
 * timeout. The sweep holds nothing (tr__timer_weak); the asker holds the
 * runtime open itself, from its worker's spare holds, while it waits for
 * an ask with a deadline, so that busy workers keep polling for it and a
 * run cannot end before it is answered or timed out; a sweep left armed
 * when none is waiting fires into an empty table. A sweep reads the whole
 * table, and sweeps come at most one a wheel tick (0.5 ms) an asker.
 * bench/ask (4 askers, 16 asks in flight each, 2 workers): 3.3 M asks/s
 * with a timer per ask, 10-19 M with the sweep; an asker that asked
 * 300,000 times one at a time kept 104 MB resident, 2.7 MB now. The
 * deadlines of a turn's asks come from one reading of the clock (below,
 * "deadlines").
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "../base/clock.h"
#include "../base/sim.h"
#include "../mailbox/msg.h"
#include "actors.h"
#include "ask.h"
#include "fault.h"
#include "troupe/error.h"
#include "troupe/runtime.h"
#include "troupe/timer.h"

#define TAIL_AT(len) TR__ASK_TAIL_AT(len)

static tr__ask_tail tail_at(const tr_msg *m, size_t at)
{
    tr__ask_tail t;
    memcpy(&t, m->data + at, sizeof t);
    return t;
}

/* In transit the tail is the payload's last bytes. */
static tr__ask_tail tail_of(const tr_msg *m)
{
    return tail_at(m, m->len - sizeof(tr__ask_tail));
}

/* A message of `type` with a copy of the user's payload and a tail. */
static tr_msg *trailed_new(uint32_t type, const void *data, size_t len, uint64_t ref,
                           uint32_t user_type)
{
    size_t at = TAIL_AT(len);
    tr_msg *m = tr__msg_new(type, (uint32_t)(at + sizeof(tr__ask_tail)));
    if (m == NULL)
        return NULL;
    if (len <= TR__MSG_SMALL)
        tr__msg_copy_small(m->data, data, len); /* no call: most asks are small */
    else
        memcpy(m->data, data, len);
    /* The padding too, as a remote ask or reply carries it to another
     * node: eight zero bytes from the payload's end cover it (at - len <
     * 8) without a call, and the tail written next covers what they
     * spill into. */
    memset(m->data + len, 0, 8);
    tr__ask_tail t = {.ref = ref, .type = user_type, .len = (uint32_t)len};
    memcpy(m->data + at, &t, sizeof t);
    return m;
}

static tr_ask_failure failure(uint64_t ref, tr_pid to, int why)
{
    tr_ask_failure f;
    memset(&f, 0, sizeof f);
    f.ref = ref;
    f.to = to;
    f.why = why;
    return f;
}

/* Tells `asker` that its ask `ref` to `target` failed. */
static void fail(tr_runtime *rt, tr__worker *w, tr_pid target, tr_pid asker, uint64_t ref,
                 int why)
{
    tr_ask_failure f = failure(ref, target, why);
    (void)tr__send_owed(rt, w, target, asker, TR_ASK_FAILED, &f, sizeof f);
}

/* ---- the asker's table: open addressing, linear probing, Robin Hood ----
 * Refs are handed out in order, so the identity is a good hash: the asks
 * pending at once fill neighbouring slots and rarely collide. A ref that
 * finds its home taken goes on past the entries nearer their homes than
 * it is to its own, displacing them ("Robin Hood"), so that along a run
 * of full slots the distances from home grow by at most one a slot. That
 * lets a deletion stop at the first entry in its home (plain linear
 * probing must shift up to the next empty slot: with every pending ask
 * in its home slot, that was the whole window, 272 instructions an
 * erase in bench/ask's window of 16 (callgrind) against about 20 now),
 * and a search stop where it would have displaced. */

typedef struct pending {
    uint64_t ref;       /* 0: empty */
    tr_pid to;          /* whom it asked */
    uint64_t deadline;  /* ns, tr__now_ns's clock; NO_DEADLINE or
                         * TIMING_OUT */
} pending;

#define NO_DEADLINE 0 /* an ask without a timeout */
#define TIMING_OUT 1  /* its TR__ASK_TIMEOUT is on its way */
/* An ask of this turn whose deadline waits for the turn's end (stamp):
 * the flag and its timeout, at most MAX_TIMEOUT_NS (146 years), so that
 * no stamped deadline ever has the flag. */
#define UNSTAMPED (UINT64_C(1) << 63)
#define MAX_TIMEOUT_NS (UINT64_C(1) << 62)

struct tr__asks {
    uint64_t last;      /* the last ref handed out */
    uint32_t n;         /* refs pending */
    uint32_t mask;      /* slots - 1 */
    pending *slots;
    uint32_t timed;     /* refs pending with a deadline or a timeout on its
                         * way: the asker holds the runtime while not 0 */
    tr_pid sweep;       /* the timer, TR_PID_NONE if none is armed */
    uint64_t sweep_at;  /* the deadline it is armed for */
    uint64_t stamp_from; /* the first ref of this turn left UNSTAMPED, 0 if none */
    uint64_t seen_ns;   /* the asker's last reading of the clock */
    bool nudging;       /* a TR__ASK_SWEEP from itself is on its way (arm_or_nudge) */
};

/* How far the entry in the full slot i sits from its home slot. */
static inline uint32_t away(const tr__asks *t, uint32_t i)
{
    return (i - (uint32_t)t->slots[i].ref) & t->mask;
}

static int find(const tr__asks *t, uint64_t ref)
{
    uint32_t i = (uint32_t)ref & t->mask;
    for (uint32_t d = 0; t->slots[i].ref != 0 && away(t, i) >= d; i = (i + 1) & t->mask, d++)
        if (t->slots[i].ref == ref)
            return (int)i;
    return -1;
}

static void put(tr__asks *t, pending p)
{
    uint32_t i = (uint32_t)p.ref & t->mask;
    for (uint32_t d = 0; t->slots[i].ref != 0; i = (i + 1) & t->mask, d++) {
        uint32_t e = away(t, i);
        if (e < d) { /* nearer its home than p is: p takes the slot */
            pending out = t->slots[i];
            t->slots[i] = p;
            p = out;
            d = e;
        }
    }
    t->slots[i] = p;
    t->n++;
}

/* Empties slot i, moving back by one the entries after it that are not
 * in their homes (all of them probed past i, by the order above). */
static void erase(tr__asks *t, uint32_t i)
{
    for (uint32_t j = (i + 1) & t->mask; t->slots[j].ref != 0 && away(t, j) != 0;
         i = j, j = (j + 1) & t->mask)
        t->slots[i] = t->slots[j];
    t->slots[i].ref = 0;
    t->n--;
}

/* Room for one more ref, at most 3/4 full. False: no memory. */
static bool reserve(tr__asks *t)
{
    uint32_t cap = t->slots != NULL ? t->mask + 1 : 0;
    if ((t->n + 1) * 4 <= cap * 3)
        return true;
    if (cap > UINT32_MAX / 4)
        return false;
    uint32_t ncap = cap != 0 ? cap * 2 : 8;
    pending *old = t->slots;
    if ((t->slots = calloc(ncap, sizeof *t->slots)) == NULL) {
        t->slots = old;
        return false;
    }
    t->mask = ncap - 1;
    t->n = 0;
    for (uint32_t i = 0; i < cap; i++)
        if (old[i].ref != 0)
            put(t, old[i]);
    free(old);
    return true;
}

/* The running actor's table, made on first use. */
static tr__asks *table(tr_ctx *cx)
{
    tr__fault *f = tr__fault_of(cx->actor);
    if (f != NULL && f->asks == NULL)
        f->asks = calloc(1, sizeof *f->asks);
    return f != NULL ? f->asks : NULL;
}

/* One ask with a deadline fewer: the last gives the asker's hold back. */
static void untimed(tr__worker *w, tr__asks *t)
{
    if (--t->timed == 0)
        tr__sched_spare_give(w, 1);
}

/* Arms the sweep for `deadline` unless it is armed for that or sooner. */
static int arm(tr_ctx *cx, tr__asks *t, uint64_t deadline, uint64_t now)
{
    if (t->sweep != TR_PID_NONE && t->sweep_at <= deadline)
        return 0;
    tr_pid sweep;
    int err = tr__timer_weak(cx, deadline > now ? deadline - now : 0, TR__ASK_SWEEP, &sweep);
    if (err != 0)
        return err;
    if (t->sweep != TR_PID_NONE)
        tr_timer_cancel(cx, t->sweep);
    t->sweep = sweep;
    t->sweep_at = deadline;
    return 0;
}

/* arm, and when no timer can be had (out of memory), a sweep the asker
 * sends itself instead, owed (the reserve, mailbox/msg.c): it looks at
 * the deadlines again at its next turn, and so on until memory is back
 * and the timer is armed. It spins while memory is out; but an ask
 * whose tr_ask said 0 is never left without its timeout. */
static void arm_or_nudge(tr_ctx *cx, tr__asks *t, uint64_t deadline, uint64_t now)
{
    if (arm(cx, t, deadline, now) == 0 || t->nudging)
        return;
    t->nudging = tr__send_owed(cx->rt, cx->worker, cx->self, cx->self, TR__ASK_SWEEP, NULL,
                               0) == 0;
}

void tr__asks_cancel(tr__worker *w, tr__asks *t)
{
    if (t->sweep != TR_PID_NONE)
        tr_timer_cancel(tr_runtime_ctx(tr__turner_of(w)->rt), t->sweep);
    t->sweep = TR_PID_NONE;
    if (t->timed != 0)
        tr__sched_spare_give(w, 1);
    t->timed = 0;
}

/* Fails the pending ask p for `why`: a TR__ASK_TIMEOUT carrying it, sent
 * to itself, so that an answer already queued still wins (the first to
 * arrive takes the ref: tr__ask_arrived). The ask counts in timed until
 * then, like one with a deadline. False if there was no memory for the
 * message: p is left as it was. */
static bool fail_soon(tr__worker *w, tr__asks *t, pending *p, int why)
{
    tr_ctx *cx = &tr__turner_of(w)->cx;
    tr_ask_failure f = failure(p->ref, p->to, why);
    if (tr__send_owed(cx->rt, w, cx->self, cx->self, TR__ASK_TIMEOUT, &f, sizeof f) != 0)
        return false;
    if (p->deadline == NO_DEADLINE && t->timed++ == 0)
        tr__sched_spare_take(w);
    p->deadline = TIMING_OUT;
    return true;
}

/* The sweep fired: a timeout for every ask past its deadline, and the
 * sweep again for the earliest of the others. */
static void sweep(tr__worker *w, tr__asks *t)
{
    tr_ctx *cx = &tr__turner_of(w)->cx;
    t->sweep = TR_PID_NONE;
    uint64_t now = tr__now_ns(), next = 0;
    for (uint32_t i = 0; t->slots != NULL && i <= t->mask; i++) {
        pending *p = &t->slots[i];
        /* An ask of this very turn is stamped, and the sweep armed for
         * it if need be, when the turn ends. */
        if (p->ref == 0 || p->deadline <= TIMING_OUT || (p->deadline & UNSTAMPED))
            continue;
        if (p->deadline <= now) {
            if (fail_soon(w, t, p, TR_ASK_TIMEOUT))
                continue;
            /* No memory for it now: tried again at the next sweep. */
        }
        if (next == 0 || p->deadline < next)
            next = p->deadline;
    }
    if (next != 0)
        arm_or_nudge(cx, t, next, now);
}

/* A node connection went (TR__ASK_LOST): every ask still waiting for a
 * pid of it fails as a timeout would, with TR_ASK_NOCONNECTION. One on
 * its way to failing already is left to that; with no memory for the
 * failure, an ask keeps its timeout, if it has one. */
static void lost(tr__worker *w, tr__asks *t, const tr__ask_lost *l)
{
    for (uint32_t i = 0; t->slots != NULL && i <= t->mask; i++) {
        pending *p = &t->slots[i];
        if (p->ref != 0 && p->deadline != TIMING_OUT && TR__PID_NODE(p->to) == l->node &&
            TR__PID_GEN(p->to) == l->epoch)
            (void)fail_soon(w, t, p, TR_ASK_NOCONNECTION);
    }
}

void tr__asks_free(tr__asks *t)
{
    if (t != NULL)
        free(t->slots);
    free(t);
}

/* ---- the turn's side ---- */

int tr__ask_arrived(tr__worker *w, tr__actor *a, tr_msg *m)
{
    if (m->type == TR__ASK)
        return TR__TRAILED;
    tr__fault *f = tr__fault_get(a);
    tr__asks *t = f != NULL ? f->asks : NULL;
    if (m->type == TR__ASK_SWEEP) {
        if (t != NULL && m->from == m->to && t->nudging) {
            t->nudging = false; /* its own, for want of a timer */
            if (t->sweep != TR_PID_NONE) /* one armed for later: sweep arms anew */
                tr_timer_cancel(&tr__turner_of(w)->cx, t->sweep);
            sweep(w, t);
        } else if (t != NULL && m->from == t->sweep) {
            sweep(w, t);
        }
        return TR__CONSUMED; /* else a sweep cancelled too late: stale */
    }
    if (m->type == TR__ASK_LOST) {
        tr__ask_lost l;
        if (t != NULL && m->len == sizeof l) {
            memcpy(&l, m->data, sizeof l);
            lost(w, t, &l);
        }
        return TR__CONSUMED;
    }
    uint64_t ref = 0;
    if (m->type == TR_REPLY)
        ref = tail_of(m).ref;
    else if (m->len >= sizeof(tr_ask_failure))
        memcpy(&ref, m->data + offsetof(tr_ask_failure, ref), sizeof ref);
    int i = t != NULL && t->slots != NULL && ref != 0 ? find(t, ref) : -1;
    if (i < 0)
        return TR__CONSUMED; /* answered already, or timed out: flushed */
    /* A deadline, or a timeout on its way (which will find the ref gone). */
    bool timed = t->slots[i].deadline != NO_DEADLINE;
    erase(t, (uint32_t)i);
    if (timed)
        untimed(w, t);
    if (m->type == TR__ASK_TIMEOUT) { /* the payload was made for this */
        m->type = TR_ASK_FAILED;
        memcpy(&m->from, m->data + offsetof(tr_ask_failure, to), sizeof m->from);
        return TR__DELIVER;
    }
    return m->type == TR_REPLY ? TR__TRAILED : TR__DELIVER;
}

void tr__ask_open(tr_ctx *cx, tr_msg *m)
{
    tr__ask_tail t = tail_of(m);
    if (m->type == TR__ASK) {
        m->type = t.type;
        cx->asked = m;
    }
    m->len = t.len;
}

void tr__ask_close(tr_ctx *cx, tr_msg *m, uint32_t len)
{
    if (cx->asked == m) { /* never answered, and now it cannot be */
        cx->asked = NULL;
        fail(cx->rt, cx->worker, cx->self, m->from, tail_at(m, TAIL_AT(m->len)).ref,
             cx->stopping ? TR_ASK_GONE : TR_ASK_UNANSWERED);
    }
    m->len = len;
}

void tr__ask_bounce(tr_runtime *rt, tr__worker *w, tr_msg *m)
{
    tr__ask_tail t = tail_of(m);
    fail(rt, w, m->to, m->from, t.ref, TR_ASK_GONE);
    /* A block returned with a shorter length only joins smaller blocks'
     * pool, which is safe (it is big enough for all of them). */
    m->type = t.type;
    m->len = t.len;
}

/* ---- deadlines: one reading of the clock a turn ----
 * A deadline is the clock read at the ask plus its timeout. Read once an
 * ask, the clock was a quarter of bench/ask's time (perf: clock_gettime
 * 21-26% of the samples at 1 and 2 workers); read at the turn's start it
 * would make a deadline early by whatever the turn had run. So an ask
 * whose deadline cannot come before the sweep's (armed, for a deadline
 * no later than the last reading plus this timeout) is put in the table
 * UNSTAMPED, with its timeout, and stamp() gives every such ask of the
 * turn its deadline from one reading as the turn ends (tr__at_turn_end):
 * never early, late by at most the rest of the turn. Any other ask — the
 * first, or one with a shorter timeout than the sweep allows for — reads
 * the clock itself and arms the sweep, so that a timer that cannot be had
 * is still the caller's error. bench/ask, 6 alternating runs each:
 * 1 worker 13.7 -> 17.2 M asks/s, 2 workers 23.8 -> 29.5 M, 16 workers
 * 22.3 -> 28.9 M. */

static void stamp(tr_ctx *cx, void *state)
{
    (void)state;
    tr__asks *t = table(cx);
    if (t == NULL || t->stamp_from == 0)
        return;
    uint64_t now = tr__now_ns(), first = UINT64_MAX;
    t->seen_ns = now;
    for (uint64_t r = t->stamp_from; r <= t->last; r++) {
        int i = find(t, r);
        if (i < 0 || !(t->slots[i].deadline & UNSTAMPED))
            continue; /* answered in the turn, or stamped */
        uint64_t deadline = now + (t->slots[i].deadline & ~UNSTAMPED);
        t->slots[i].deadline = deadline;
        if (deadline < first)
            first = deadline;
    }
    t->stamp_from = 0;
    /* The sweep is armed no later than these (or fired in the turn and
     * was not armed again for them): if it is not, it is armed now, or
     * nudged (out of memory). */
    if (first != UINT64_MAX)
        arm_or_nudge(cx, t, first, now);
}

/* Whether this ask's deadline may wait for the turn's end. */
static bool stamp_later(const tr__asks *t, uint64_t timeout_ns)
{
    return t->sweep != TR_PID_NONE && t->sweep_at <= t->seen_ns + timeout_ns;
}

/* ---- the API ---- */

int tr_ask(tr_ctx *cx, tr_pid to, uint32_t type, const void *data, size_t len,
           uint64_t timeout_ns, uint64_t *ref)
{
    if (cx == NULL || cx->actor == NULL || type >= TR_MSG_SYSTEM || (data == NULL && len != 0))
        return TR_EINVAL;
    if (len > TR_MSG_MAX_LEN)
        return TR_EMSGSIZE;
    tr__asks *t = table(cx);
    if (t == NULL || !reserve(t))
        return TR_ENOMEM;
    uint64_t r = t->last + 1;
    tr_msg *m = trailed_new(TR__ASK, data, len, r, type);
    if (m == NULL)
        return TR_ENOMEM;
    uint64_t deadline = NO_DEADLINE;
    if (timeout_ns > MAX_TIMEOUT_NS)
        timeout_ns = MAX_TIMEOUT_NS;
    if (timeout_ns != 0) {
        if (stamp_later(t, timeout_ns)) {
            deadline = UNSTAMPED | timeout_ns;
            if (t->stamp_from == 0) {
                t->stamp_from = r;
                tr__at_turn_end(cx, stamp);
            }
        } else {
            uint64_t now = tr__now_ns();
            t->seen_ns = now;
            deadline = now + timeout_ns;
            int err = arm(cx, t, deadline, now);
            if (err != 0) {
                tr__msg_release(m);
                return err;
            }
        }
        if (t->timed++ == 0)
            tr__sched_spare_take(cx->worker);
    }
    t->last = r;
    put(t, (pending){r, to, deadline}); /* before the send: a dead target answers at once */
    int err = tr__send(cx->rt, cx->worker, cx->self, to, m);
    if (err != 0) { /* never a valid pid: nothing will come */
        erase(t, (uint32_t)find(t, r));
        if (deadline != NO_DEADLINE)
            untimed(cx->worker, t);
        return err;
    }
    if (ref != NULL)
        *ref = r;
    return 0;
}

int tr_reply(tr_ctx *cx, const tr_msg *m, const void *data, size_t len)
{
    if (cx == NULL || cx->actor == NULL || m == NULL || cx->asked != m ||
        (data == NULL && len != 0))
        return TR_EINVAL;
    if (len > TR_MSG_MAX_LEN)
        return TR_EMSGSIZE;
    tr_msg *r = trailed_new(TR_REPLY, data, len, tail_at(m, TAIL_AT(m->len)).ref, 0);
    if (r == NULL)
        return TR_ENOMEM;
    cx->asked = NULL;
    return tr__send(cx->rt, cx->worker, cx->self, m->from, r);
}

uint64_t tr_msg_ref(const tr_msg *m)
{
    uint64_t ref = 0;
    if (m != NULL && m->type == TR_REPLY)
        ref = tail_at(m, TAIL_AT(m->len)).ref;
    else if (m != NULL && m->type == TR_ASK_FAILED && m->len >= sizeof(tr_ask_failure))
        memcpy(&ref, m->data + offsetof(tr_ask_failure, ref), sizeof ref);
    return ref;
}

/* ---- tr_call: an actor asks for the blocked thread ----
 * The thread waits on a condition variable in its own frame; the actor
 * signals it under the mutex, so the thread cannot return (and the frame
 * go) before the actor is done with it.
 * In simulation nothing runs while a thread waits: the caller runs the
 * simulation itself until the answer (tr__sched_drive). The call is then
 * on the heap, since the run may stop before the answer: the caller
 * returns and leaves it to the actor, which frees it (abandoned). */

typedef struct call {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    bool done;
    bool abandoned;
    int err;
    tr_msg *reply;
    tr_pid to;
    uint32_t type;
    const void *data;
    size_t len;
    uint64_t timeout_ns;
} call;

typedef struct caller {
    tr__resource res; /* first: the runtime destroyed before the answer */
    call *c;          /* NULL once answered */
    bool asked;       /* the start message came: other messages are not it */
} caller;

TR__RESOURCE_FIRST(caller);

/* c's lock and condition, for a call already filled in: 0 or TR_ENOMEM. */
static int call_init(call *c)
{
    if (pthread_mutex_init(&c->lock, NULL) != 0)
        return TR_ENOMEM;
    if (pthread_cond_init(&c->cond, NULL) != 0) {
        pthread_mutex_destroy(&c->lock);
        return TR_ENOMEM;
    }
    return 0;
}

static void call_fini(call *c)
{
    pthread_cond_destroy(&c->cond);
    pthread_mutex_destroy(&c->lock);
}

static void call_free(call *c)
{
    call_fini(c);
    free(c);
}

static void call_done(call *c, int err, tr_msg *reply)
{
    pthread_mutex_lock(&c->lock);
    if (c->abandoned) { /* simulation only: the caller has returned */
        pthread_mutex_unlock(&c->lock);
        tr_msg_free(reply);
        call_free(c);
        return;
    }
    c->err = err;
    c->reply = reply;
    c->done = true;
    pthread_cond_signal(&c->cond);
    pthread_mutex_unlock(&c->lock);
}

static void caller_release(tr_runtime *rt, tr__resource *r)
{
    (void)rt;
    caller *s = (caller *)r;
    if (s->c != NULL)
        call_done(s->c, TR_ENOTSTARTED, NULL);
}

/* The reply's own block cannot be kept past the turn: a copy, tail and
 * all, so that tr_msg_ref works on it too. */
static tr_msg *reply_copy(const tr_msg *m)
{
    size_t full = TAIL_AT(m->len) + sizeof(tr__ask_tail);
    tr_msg *copy = tr__msg_new(TR_REPLY, (uint32_t)full);
    if (copy != NULL) {
        memcpy(copy->data, m->data, full);
        copy->from = m->from;
        copy->to = m->to;
        copy->len = m->len;
    }
    return copy;
}

static void caller_actor(tr_ctx *cx, void *state, const tr_msg *m)
{
    caller *s = state;
    call *c = s->c;
    tr_msg *reply = NULL;
    int err;
    if (c == NULL)
        return;
    if (c->abandoned) {
        s->c = NULL;
        tr_stop(cx);
        call_done(c, 0, NULL);
        return;
    }
    if (m->type == TR_REPLY) {
        err = (reply = reply_copy(m)) != NULL ? 0 : TR_ENOMEM;
    } else if (m->type == TR_ASK_FAILED) {
        tr_ask_failure f;
        memcpy(&f, m->data, sizeof f);
        err = f.why == TR_ASK_TIMEOUT        ? TR_ETIMEDOUT
              : f.why == TR_ASK_NOCONNECTION ? TR_ECONNABORTED
                                             : TR_ENOREPLY;
    } else if (s->asked) {
        return; /* the target, say, told the asker something before it answered */
    } else if ((err = tr_ask(cx, c->to, c->type, c->data, c->len, c->timeout_ns, NULL)) == 0) {
        s->asked = true; /* the start message: asked, once */
        return;
    }
    s->c = NULL;
    tr_stop(cx);
    call_done(c, err, reply);
}

/* Spawns the actor that asks for c and sends it its first message. */
static int call_start(tr_runtime *rt, call *c)
{
    /* The start message first: once the actor exists, it must run (or
     * be destroyed with the runtime, which its release answers), so
     * nothing may fail after the spawn. */
    tr_msg *start = tr__msg_new(0, 0);
    caller s = {.res = {.release = caller_release}, .c = c};
    tr_pid pid;
    tr_actor_spec spec = {.behaviour = caller_actor, .state = &s, .state_size = sizeof s};
    tr__spawn_opts opts = {.resource_at = offsetof(caller, res), .user_at = 0, .fault = NULL};
    int err = start != NULL ? tr__spawn_spec(rt, NULL, TR_PID_NONE, &spec, &opts, &pid)
                            : TR_ENOMEM;
    if (err == 0)
        tr__send(rt, NULL, TR_PID_NONE, pid, start); /* a pid just made: cannot fail */
    else if (start != NULL)
        tr__msg_release(start);
    return err;
}

static int call_simulated(tr_runtime *rt, tr_pid to, uint32_t type, const void *data,
                          size_t len, uint64_t timeout_ns, tr_msg **reply)
{
    call *c = calloc(1, sizeof *c);
    if (c == NULL)
        return TR_ENOMEM;
    *c = (call){.to = to, .type = type, .data = data, .len = len, .timeout_ns = timeout_ns};
    if (call_init(c) != 0) {
        free(c);
        return TR_ENOMEM;
    }
    int err = call_start(rt, c);
    if (err == 0 && !tr__sched_drive(rt, &c->done)) {
        /* The run ended first: the actor, at its next message or end,
         * frees the call and stops (the data, the caller's, is never
         * read again). */
        c->abandoned = true;
        return TR_ENOTSTARTED;
    }
    if (err == 0) {
        err = c->err;
        *reply = c->reply;
    }
    call_free(c);
    return err;
}

int tr_call(tr_runtime *rt, tr_pid to, uint32_t type, const void *data, size_t len,
            uint64_t timeout_ns, tr_msg **reply)
{
    if (reply != NULL)
        *reply = NULL;
    if (rt == NULL || reply == NULL || type >= TR_MSG_SYSTEM || (data == NULL && len != 0))
        return TR_EINVAL;
    if (tr__worker_current() != NULL)
        return TR_EDEADLK;
    if (len > TR_MSG_MAX_LEN)
        return TR_EMSGSIZE;
    if (!tr__sched_running(rt))
        return TR_ENOTSTARTED;
    if (CK_CC_UNLIKELY(tr__sim_on()))
        return tr__sim_driven_elsewhere()
                   ? TR_EBUSY
                   : call_simulated(rt, to, type, data, len, timeout_ns, reply);

    call c = {.to = to, .type = type, .data = data, .len = len, .timeout_ns = timeout_ns};
    if (call_init(&c) != 0)
        return TR_ENOMEM;
    int err = call_start(rt, &c);
    if (err == 0) {
        pthread_mutex_lock(&c.lock);
        while (!c.done)
            pthread_cond_wait(&c.cond, &c.lock);
        pthread_mutex_unlock(&c.lock);
        err = c.err;
        *reply = c.reply;
    }
    call_fini(&c);
    return err;
}
