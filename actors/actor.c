/* actors/actor.c — spawn, send, the behaviour turn, stop.
 *
 * The turn is actors/'s, not sched/'s, although a worker runs it: it is
 * where a context's fields are set and read (actors/context.h), and what
 * it needs of its worker — the slot magazine, the counters, the context,
 * the backpressure countdown — is the actors' part of the worker
 * (tr__turner, actors/actors.h). It calls up into sched/ where it did
 * before the layers were split, out of line as before: a push that made a
 * mailbox non-empty (tr__sched_ready), a turn's end (tr__sched_requeue,
 * tr__bp_turn_end), a backpressure look once a period. */
#include <stdlib.h>
#include <string.h>

#include "../base/debug.h"
#include "../base/fence.h"
#include "../base/sim.h"
#include "../mailbox/msg.h"
#include "actor.h"
#include "actors.h"
#include "ask.h"
#include "fault.h"
#include "troupe/error.h"

static tr__counters *counters(tr_runtime *rt, tr__worker *w)
{
    return w != NULL ? &tr__turner_of(w)->count : &tr__actors_of(rt)->outside;
}

/* Counters of outside threads are shared, so they need atomic adds. */
static void count(tr_runtime *rt, tr__worker *w, size_t field)
{
    uint64_t *c = (uint64_t *)((char *)counters(rt, w) + field);
    if (w != NULL)
        tr__count(c);
    else
        ck_pr_inc_64(c);
}
#define COUNT(rt, w, f) count((rt), (w), offsetof(tr__counters, f))

/* Readiness (TR_IO_*) that reaches a socket actor after it stopped is the
 * reactor's notice of an event the actor no longer wants, not a message
 * anyone sent: it is dropped without counting as a dead letter (every
 * closed connection would otherwise add one). */
static bool readiness(const tr_msg *m)
{
    return m->type >= TR_IO_READABLE && m->type <= TR_IO_ERROR;
}

/* A message m has become a dead letter: requests are answered (NOPROC),
 * and the sink, if any, gets a copy. m stays the caller's. */
static void dead_letter(tr_runtime *rt, tr__worker *w, tr_msg *m)
{
    tr__fault_bounce(rt, w, m);
    if (m->type >= TR__MSG_DIST_FIRST && m->type <= TR__MSG_DIST_LAST)
        tr__dist_out_refused(rt, w, m); /* left behind by a node connection that ended */
    tr_pid sink = ck_pr_load_64(&tr__actors_of(rt)->dead_sink);
    if (sink == TR_PID_NONE || m->to == sink || m->type == TR_DEAD_LETTER)
        return;
    uint32_t keep = m->len < TR_DEAD_LETTER_DATA ? m->len : TR_DEAD_LETTER_DATA;
    tr_msg *d = tr__msg_new(TR_DEAD_LETTER, (uint32_t)sizeof(tr_dead_letter) + keep);
    if (d == NULL)
        return;
    tr_dead_letter info = {.from = m->from, .to = m->to, .type = m->type, .len = m->len};
    memcpy(d->data, &info, sizeof info);
    memcpy(d->data + sizeof info, m->data, keep);
    tr__send(rt, w, TR_PID_NONE, sink, d);
}

void tr__dead_letter(tr_runtime *rt, tr__worker *w, tr_msg *m)
{
    if (readiness(m))
        return;
    COUNT(rt, w, dead);
    dead_letter(rt, w, m);
}

int tr_runtime_dead_letters(tr_runtime *rt, tr_pid sink)
{
    if (rt == NULL)
        return TR_EINVAL;
    ck_pr_store_64(&tr__actors_of(rt)->dead_sink, sink);
    return 0;
}

int tr__actors_init(tr_runtime *rt, unsigned batch)
{
    tr__actors *s = tr__actors_of(rt);
    s->batch = batch;
    s->asym_fence = tr__fence_asym_init();
    s->dead_sink = TR_PID_NONE;
    s->outside_cx = (tr_ctx){.rt = rt, .self = TR_PID_NONE};
    return tr__table_init(&s->table);
}

void tr__actors_fini(tr_runtime *rt)
{
    tr__table_fini(&tr__actors_of(rt)->table, rt);
    tr__registry_fini(rt);
}

static void init_first(tr_ctx *cx, void *state, const tr_msg *m);

/* A slot for a new actor running fn with a copy of state, its fields set
 * for the plain case (no resources, no record), not yet alive; NULL with
 * *err. heap: the state's room if it does not fit the slot, else NULL. */
static inline tr__actor *new_actor(tr_runtime *rt, tr__worker *w, tr_behaviour fn,
                                   const void *state, size_t state_size, void *heap, int *err)
{
    tr__actor *a = tr__table_alloc(&tr__actors_of(rt)->table,
                                   w != NULL ? &tr__turner_of(w)->slots : NULL, err);
    if (a == NULL)
        return NULL;
    /* A free slot may still be draining stale messages on another worker;
     * of these fields that reads only flags, as its turn ends (hence
     * tr__flags_store, actor.h), and the store of life in born()
     * publishes them to whoever gets the new pid. */
    ck_pr_store_ptr((void **)&a->fn, (void *)fn); /* read by tr_actor_info */
    ck_pr_store_32(&a->aux, 0); /* senders with an older pid may be reading it */
    tr__figures_reset(a);
    ck_pr_store_16(&a->named, 0);
    tr__flags_store(a, heap != NULL ? TR__HEAP_STATE : 0);
    if (heap != NULL)
        a->state.heap = heap;
    if (state_size != 0)
        memcpy(heap != NULL ? heap : a->state.bytes, state, state_size);
    return a;
}

/* Makes a alive: its pid is valid from here on. */
static inline tr_pid born(tr__actor *a)
{
    uint32_t gen = ck_pr_load_32(&a->life) >> 1;
    TR_ASSERT(!(ck_pr_load_32(&a->life) & 1) && gen != 0); /* a free slot, issued generation */
    ck_pr_fence_store();
    ck_pr_store_32(&a->life, gen << 1 | 1);
    return tr__pid_make(gen, a->index);
}

/* An actor that was never started (its name was taken): nobody has its
 * pid, nothing was queued for it, so its slot goes straight back. */
static void unborn(tr_runtime *rt, tr__worker *w, tr__actor *a)
{
    tr__fault_set(a, NULL);
    if (a->flags & TR__HELD)
        tr__side_of(a)->resources = NULL;
    if (a->flags & TR__HEAP_STATE)
        free(a->state.heap);
    tr__table_end(a, ck_pr_load_32(&a->life));
    tr__table_give(&tr__actors_of(rt)->table, w != NULL ? &tr__turner_of(w)->slots : NULL, a);
}

/* Room for a state too big for its slot. A worker's spawns take it from
 * the malloc arena of the worker's thread, among its own actors' states.
 * A spawn from outside the runtime (a program's main thread making its
 * top actors) takes a line more than it needs, so that the next such
 * state begins a line past its end: such states are made one after
 * another, and the workers that take their actors from the injection
 * queue run them apart, so neighbouring blocks would pass lines between
 * the cores on every turn that writes its state (bench/ask's askers:
 * actor.h, "Spawns from outside"). A line more costs 64 bytes a state;
 * aligned_alloc costs 192 bytes for a 64-byte state (glibc). */
static void *state_room(tr__worker *w, size_t size)
{
    return malloc(w != NULL ? size : size + CK_MD_CACHELINE);
}

/* The spec path for a spec with nothing but behaviour and state: what
 * most spawns are, kept as short as spawning was before specs. */
int tr__spawn(tr_runtime *rt, tr__worker *w, tr_behaviour fn, const void *state,
              size_t state_size, tr_pid *pid)
{
    if (fn == NULL || (state == NULL && state_size != 0) || state_size > UINT32_MAX)
        return TR_EINVAL;
    void *heap = NULL;
    if (state_size > TR__STATE_INLINE && (heap = state_room(w, state_size)) == NULL)
        return TR_ENOMEM;
    int err = 0;
    tr__actor *a = new_actor(rt, w, fn, state, state_size, heap, &err);
    if (a == NULL) {
        free(heap);
        return err;
    }
    tr_pid p = born(a);
    COUNT(rt, w, spawned);
    if (pid != NULL)
        *pid = p;
    return 0;
}

static bool name_ok(const char *name)
{
    size_t n = strnlen(name, TR_NAME_MAX);
    return n != 0 && n < TR_NAME_MAX;
}

/* The spec path for everything else: callbacks, a name, a resource, a
 * record made by the caller. */
static int spawn_full(tr_runtime *rt, tr__worker *w, tr_pid spawner, const tr_actor_spec *spec,
                      const tr__spawn_opts *o, tr_pid *pid)
{
    size_t state_size = spec->state_size;
    if (spec->behaviour == NULL || (spec->state == NULL && state_size != 0) ||
        state_size > UINT32_MAX || (spec->name != NULL && !name_ok(spec->name)))
        return TR_EINVAL;
    bool callbacks = spec->init != NULL || spec->on_stop != NULL;
    tr__fault *f = o != NULL ? o->fault : NULL, *made = NULL;
    tr_msg *start = NULL;
    void *heap = NULL;
    int err = TR_ENOMEM;
    if (callbacks && f == NULL && (f = made = calloc(1, sizeof *f)) == NULL)
        goto fail;
    /* Made now, so that nothing can fail once the actor is started. */
    if (spec->init != NULL && (start = tr__msg_new(TR__START, 0)) == NULL)
        goto fail;
    if (state_size > TR__STATE_INLINE && (heap = state_room(w, state_size)) == NULL)
        goto fail;
    tr__actor *a = new_actor(rt, w, spec->init != NULL ? init_first : spec->behaviour,
                             spec->state, state_size, heap, &err);
    if (a == NULL)
        goto fail;
    if (callbacks) {
        f->behaviour = spec->behaviour;
        f->init = spec->init;
        f->on_stop = spec->on_stop;
        f->spawner = spawner;
        f->user_at = o != NULL ? o->user_at : 0;
    }
    tr__fault_set(a, f);
    tr__fault_publish(a);
    if (o != NULL && o->resource_at >= 0) {
        void *copy = heap != NULL ? heap : a->state.bytes;
        tr__resource *r = (tr__resource *)((char *)copy + o->resource_at);
        r->next = NULL;
        tr__side_of(a)->resources = r;
        tr__flags_store(a, a->flags | TR__HELD);
    }
    tr_pid p = born(a);

    /* Named only now that it is alive, but before anything is queued for
     * it: until the name is published nobody has its pid, so on failure
     * it can vanish unseen. From the name on, senders may come first:
     * init_first still runs init before whatever the behaviour sees. */
    if (spec->name != NULL && (err = tr_register(rt, spec->name, p)) != 0) {
        unborn(rt, w, a);
        heap = NULL;
        goto fail;
    }
    COUNT(rt, w, spawned);
    if (start != NULL) /* cannot fail: the actor is alive and has not run */
        (void)tr__send(rt, w, spawner, p, start);
    if (pid != NULL)
        *pid = p;
    return 0;

fail:
    tr__fault_free(made);
    if (start != NULL)
        tr__msg_release(start);
    free(heap);
    return err;
}

int tr__spawn_spec(tr_runtime *rt, tr__worker *w, tr_pid spawner, const tr_actor_spec *spec,
                   const tr__spawn_opts *o, tr_pid *pid)
{
    if (spec == NULL)
        return TR_EINVAL;
    /* One load in production; the call only in simulation. */
    if (CK_CC_UNLIKELY(tr__sim_on()) && tr__sim_fault(TR__FAULT_SPAWN))
        return TR_ENOMEM;
    tr_pid p;
    int err = o == NULL && spec->init == NULL && spec->on_stop == NULL && spec->name == NULL
                  ? tr__spawn(rt, w, spec->behaviour, spec->state, spec->state_size, &p)
                  : spawn_full(rt, w, spawner, spec, o, &p);
    if (err == 0 && pid != NULL)
        *pid = p;
    /* Here, not in tr__spawn: timers are made by it too, and are traced
     * as they fire. */
    if (err == 0 && CK_CC_UNLIKELY(tr__actors_of(rt)->tracing))
        tr__trace_actor(rt, w, TR__TRACE_SPAWN, p, spec->behaviour);
    return err;
}

int tr__send(tr_runtime *rt, tr__worker *w, tr_pid from, tr_pid to, tr_msg *m)
{
    if (TR__PID_NODE(to) != 0) /* another node's process (dist/route.c) */
        return tr__dist_route(rt, w, from, to, m);
    tr__actor *a = tr__table_lookup(&tr__actors_of(rt)->table, to);
    if (a == NULL) {
        tr__msg_release(m);
        return TR_ENOPID;
    }
    m->from = from;
    m->to = to;
    /* Alive under this pid, and not a timer: one load for both. */
    if (!tr__actor_live_as(a, to)) {
        if (tr__pid_never_issued(ck_pr_load_32(&a->life), to)) {
            tr__msg_release(m);
            return TR_ENOPID; /* never issued */
        }
        /* Stopped, or a timer: timers take no messages, which is what
         * lets the reactor end them without running them. */
        tr__dead_letter(rt, w, m);
        tr__msg_release(m);
        return 0;
    }
    ck_pr_fence_load();

    COUNT(rt, w, sent);
    /* The depth's count (figures.c): a load and a store, not an atomic
     * add, beside the head the push's exchange is about to take, and before
     * the exchange, not after it (pingpong's time, 2 workers: 3% less). */
    ck_pr_store_32(&a->pushed, ck_pr_load_32(&a->pushed) + 1);
    if (tr__mailbox_push(a, &m->tr__link))
        tr__sched_ready(rt, w, a);
    else if (w != NULL)
        tr__bp_sent(w, a);
    return 0;
}

static void *state_of(tr__actor *a)
{
    return (a->flags & TR__HEAP_STATE) ? a->state.heap : a->state.bytes;
}

static inline void release(tr_runtime *rt, tr__actor *a, int reason)
{
    if (a->flags & TR__HELD) {
        tr__side *s = tr__side_of(a);
        while (s->resources != NULL) {
            tr__resource *r = s->resources;
            s->resources = r->next;
            r->release(rt, r);
        }
    }
    /* Exactly once: an actor ends once, in its own turn (actor_die) or,
     * still alive, in tr_runtime_destroy after the workers are gone; and
     * the pointer is cleared before the call all the same. */
    tr__fault *f = tr__fault_get(a);
    if (f != NULL && f->on_stop != NULL) {
        void (*on_stop)(void *, int) = f->on_stop;
        f->on_stop = NULL;
        on_stop((char *)state_of(a) + f->user_at, reason);
    }
}

void tr__actor_release(tr_runtime *rt, tr__actor *a, int reason)
{
    release(rt, a, reason);
}

/* Ends the actor in slot a with a reason. Its resources and on_stop go
 * first (so a socket is closed before its links hear of the end), then
 * links and monitors are told. The slot goes back to the table at once:
 * from here on it only drains stale messages (see actor.h). */
static void actor_die(tr__worker *w, tr__actor *a, uint32_t life, int reason, const char *text)
{
    tr__turner *t = tr__turner_of(w);
    tr_pid self = tr__pid_of(a, life);
    release(t->rt, a, reason);
    tr__count(&t->count.stopped);
    if (CK_CC_UNLIKELY(tr__actors_of(t->rt)->tracing))
        tr__trace_actor(t->rt, w, TR__TRACE_STOP, self, a->fn);
    tr__table_end(a, life);
    /* After the end is published: a registration racing with it either
     * sees the actor dead or is seen here (see registry.c). The name goes
     * before links and monitors hear of the end, so that they can take it
     * over (a restarted server re-registering itself). The registration
     * pays for the fence (base/fence.h): a full one here waited for the
     * stores still in flight from the turn — a fifth of skynet's time. */
    tr__fence_fast(tr__actors_of(t->rt)->asym_fence);
    if (ck_pr_load_16(&a->named))
        tr__registry_forget(t->rt, self);
    if (a->flags & TR__FAULTS)
        tr__fault_end(w, a, self, reason, text);
    if (a->flags & TR__HEAP_STATE)
        free(a->state.heap);
    tr__table_give(&tr__actors_of(t->rt)->table, &t->slots, a);
}

/* a's life now, and its pid for that life (TR_PID_NONE once it has
 * ended). The fence orders the load before the reads of a state that a
 * spawn on another thread wrote. */
static inline tr_pid load_self(tr__actor *a, uint32_t *life)
{
    *life = ck_pr_load_32(&a->life);
    ck_pr_fence_load();
    return tr__pid_of(a, *life);
}

/* The message at the mailbox's head as a turn begins (the last one then
 * waiting), or NULL if unknown: the turn is behind if it uses up its batch
 * before reaching it (sched/backpressure.c). With only the stub at the
 * head, whatever is queued before it is not worth a walk to find. */
static tr__node *turn_limit(tr__actor *a)
{
    tr__node *head = tr__mpsc_untag(ck_pr_load_ptr(&a->mailbox));
    return head != &a->mailbox_stub && !tr__mpsc_kept(&a->mailbox_end, head) ? head : NULL;
}

void tr__at_turn_end(tr_ctx *cx, void (*fn)(tr_ctx *cx, void *state))
{
    TR_ASSERT(cx != NULL && cx->actor != NULL);
    if (cx == NULL || cx->actor == NULL || cx->turn_end == fn || cx->turn_end2 == fn)
        return;
    if (cx->turn_end == NULL)
        cx->turn_end = fn;
    else {
        TR_ASSERT(cx->turn_end2 == NULL); /* two users: net/conn.c, ask.c */
        cx->turn_end2 = fn;
    }
}

/* The turn-end calls, for an actor still alive after its turn. */
static void turn_end(tr__worker *w, tr__actor *a)
{
    tr_ctx *cx = &tr__turner_of(w)->cx;
    void (*fn)(tr_ctx *, void *) = cx->turn_end;
    void (*fn2)(tr_ctx *, void *) = cx->turn_end2;
    cx->turn_end = cx->turn_end2 = NULL;
    uint32_t life = ck_pr_load_32(&a->life);
    if (!(life & 1))
        return;
    cx->actor = a;
    cx->self = tr__pid_of(a, life);
    cx->stopping = false;
    fn(cx, state_of(a));
    if (fn2 != NULL && !cx->stopping)
        fn2(cx, state_of(a));
    if (cx->stopping)
        actor_die(w, a, life, cx->exit_reason, cx->exit_text);
}

/* A spec's init, in the actor's context: from here on the behaviour is
 * the spec's own. A failure ends the actor before any message. */
static void run_init(tr_ctx *cx, tr__actor *a)
{
    tr__fault *f = tr__fault_get(a);
    ck_pr_store_ptr((void **)&a->fn, (void *)f->behaviour); /* read by the monitor */
    int r = f->init(cx, (char *)state_of(a) + f->user_at, f->spawner);
    if (r != 0 && !cx->stopping)
        tr_exit(cx, r, "init failed");
}

/* The behaviour of an actor whose init has not run yet: init, then the
 * message for the real behaviour. A stand-in rather than a flag, so that
 * ordinary actors pay nothing per message; and it covers a message that
 * overtakes TR__START (sent by whoever found a named actor's name). */
static void init_first(tr_ctx *cx, void *state, const tr_msg *m)
{
    run_init(cx, cx->actor);
    if (!cx->stopping)
        cx->actor->fn(cx, state, m);
}

/* TR__START, queued at spawn so that init runs even if no message comes. */
static int start(tr_ctx *cx, tr__actor *a)
{
    if (a->fn == init_first)
        run_init(cx, a);
    return cx->stopping ? TR__DIE : TR__CONSUMED;
}

/* After a behaviour: the actor ends if it stopped itself. True if so. */
static bool ended(tr__worker *w, tr__actor *a, uint32_t life)
{
    tr_ctx *cx = &tr__turner_of(w)->cx;
    if (!cx->stopping)
        return false;
    actor_die(w, a, life, cx->exit_reason, cx->exit_text);
    return true;
}

/* An ask or a reply to one (ask.c): the behaviour sees it as it was sent,
 * and an ask it leaves unanswered fails. Out of line, so that handle's
 * code for every other message stays as it was. */
static __attribute__((noinline)) bool trailed(tr__worker *w, tr__actor *a, tr_msg *m,
                                              uint32_t life)
{
    tr_ctx *cx = &tr__turner_of(w)->cx;
    uint32_t len = m->len;
    tr__ask_open(cx, m);
    a->fn(cx, state_of(a), m);
    tr__count(&tr__turner_of(w)->count.handled);
    tr__ask_close(cx, m, len);
    tr__mailbox_done(a, m);
    return ended(w, a, life);
}

/* Handles one message popped from a's mailbox: a dead letter if it was
 * sent to another incarnation than `self`, a's pid for `life` as the
 * turn last loaded it (tr__actor_run); the fault protocol's own messages;
 * the behaviour for the rest; m is done with here (tr__mailbox_done).
 * True if a ended here. */
static bool handle(tr__worker *w, tr__actor *a, tr_msg *m, uint32_t life, tr_pid self)
{
    tr_ctx *cx = &tr__turner_of(w)->cx;
    if (m->to != self) {
        tr__dead_letter(tr__turner_of(w)->rt, w, m);
        tr__mailbox_done(a, m);
        return false;
    }
    cx->actor = a;
    cx->self = self;
    cx->stopping = false;
    if (m->type >= TR_MSG_SYSTEM) {
        /* Exit signals, links, monitors and asks are handled here; some
         * reach the behaviour (TR_EXIT when trapping, TR_DOWN, answers).
         * Request/reply's types go straight to ask.c (bench/ask,
         * callgrind: through tr__fault_handle and its frame, 1,030
         * instructions an ask; straight, 916). */
        int verdict = tr__ask_type(m->type)
                          ? tr__ask_arrived(w, a, m)
                          : tr__fault_handle(w, a, self, m, &cx->exit_reason, cx->exit_text);
        if (verdict == TR__TRAILED)
            return trailed(w, a, m, life);
        if (verdict != TR__DELIVER) {
            if (verdict == TR__INIT)
                verdict = start(cx, a);
            tr__mailbox_done(a, m);
            if (verdict != TR__DIE)
                return false;
            actor_die(w, a, life, cx->exit_reason, cx->exit_text);
            return true;
        }
    }
    a->fn(cx, state_of(a), m);
    tr__count(&tr__turner_of(w)->count.handled);
    tr__mailbox_done(a, m);
    return ended(w, a, life);
}

/* Schedules a after its turn of n messages: behind — the batch ran out
 * before the messages that were waiting when the turn began (or, not
 * knowing which those were, with more waiting); a turn cut short by a
 * send to an overloaded actor, or by a send still being linked (mpsc.h),
 * leaves the verdict as it was — or waiting, or idle. */
static void after_turn(tr__worker *w, tr__actor *a, unsigned n, unsigned batch, tr__node *limit,
                       bool reached, tr__actor *blocked_by, uint64_t handled)
{
    uint64_t muted = ck_pr_load_64(&a->muted);
    bool behind;
    if (limit == NULL)
        behind = n == batch && !tr__mailbox_is_empty(a);
    else
        behind = !reached && (n == batch || (muted & TR__OVERLOADED));
    /* Whether it still lives matters only to an actor holding its
     * senders: looked at only then, off the common path. */
    if (CK_CC_UNLIKELY(behind |
                       ((muted | (uintptr_t)blocked_by | (ck_pr_load_16(&a->flags) & TR__HOLDING)) != 0))) {
        /* (flags read again: kept from above, it costs the common path.) */
        bool held = (ck_pr_load_16(&a->flags) & TR__HOLDING) && (ck_pr_load_32(&a->life) & 1);
        if (behind || blocked_by != NULL || muted != 0 || held) {
            tr__bp_turn_end(w, a, behind, held, blocked_by);
            return;
        }
    }
    if (!tr__actor_mark_idle(a, (uint32_t)handled))
        tr__sched_requeue(w, a);
    else
        tr__bp_went_idle(w, a);
}

void tr__actor_run(tr__worker *w, tr__actor *a)
{
    tr_ctx *cx = &tr__turner_of(w)->cx;
    unsigned batch = tr__actors_of(tr__turner_of(w)->rt)->batch;
    /* The clock first: rt is still in a register (ck_pr's loads and
     * stores are compiler barriers). */
    uint32_t stamp = ck_pr_load_32(&tr__actors_of(tr__turner_of(w)->rt)->coarse_run);
    tr__node *limit = turn_limit(a);
    bool reached = false;
    unsigned n;

    /* On the line the pops below write anyway (actor.h). */
    uint32_t turns;
    if (CK_CC_UNLIKELY(__builtin_add_overflow(ck_pr_load_32(&a->turns), 1u, &turns)))
        tr__figures_carry(a);
    ck_pr_store_32(&a->turns, turns);
    ck_pr_store_32(&a->last_run, stamp);

    /* a's life, loaded once a turn rather than once a message: while a
     * lives, only its own turns change it. A message for another pid loads
     * it again (the slot of an actor that has ended may be taken by a new
     * one at any time: it drains the old one's messages meanwhile), and so
     * does every message after a ends here, since none is ever queued for
     * TR_PID_NONE (generation 0 is never issued: tr__send refuses it). */
    uint32_t life;
    tr_pid self = load_self(a, &life);
    for (n = 0; n < batch; n++) {
        if (cx->blocked_by != NULL)
            break; /* sent to an overloaded actor: give way to it */
        tr__node *node = tr__mailbox_pop(a);
        if (node == NULL)
            break;
        reached |= node == limit;
        tr_msg *m = (tr_msg *)node;
        if (CK_CC_UNLIKELY(m->to != self))
            self = load_self(a, &life);
        if (handle(w, a, m, life, self))
            self = TR_PID_NONE;
    }
    if (cx->turn_end != NULL)
        turn_end(w, a);
    cx->actor = NULL;
    cx->self = TR_PID_NONE;
    tr__actor *blocked_by = cx->blocked_by;
    cx->blocked_by = NULL;
    uint64_t handled = ck_pr_load_64(&a->handled) + n;
    ck_pr_store_64(&a->handled, handled);
    after_turn(w, a, n, batch, limit, reached, blocked_by, handled);
}

int tr__send_system(tr_runtime *rt, tr_ctx *cx, tr_pid to, uint32_t type)
{
    if (cx != NULL && cx->actor != NULL)
        return tr__send_owed(rt, cx->worker, cx->self, to, type, NULL, 0);
    return tr__send_owed(rt, NULL, TR_PID_NONE, to, type, NULL, 0);
}

void *tr__actor_state_if(tr_ctx *cx, tr_behaviour fn)
{
    if (cx == NULL || cx->actor == NULL || cx->actor->fn != fn)
        return NULL;
    return state_of(cx->actor);
}

/* ---- the public API for behaviours ---- */

typedef struct on_stop {
    tr__resource res; /* first */
    void (*fn)(void *arg);
    void *arg;
} on_stop;
TR__RESOURCE_FIRST(on_stop);

static void on_stop_release(tr_runtime *rt, tr__resource *r)
{
    (void)rt;
    on_stop *o = (on_stop *)r;
    o->fn(o->arg);
    free(o);
}

int tr_on_stop(tr_ctx *cx, void (*fn)(void *arg), void *arg)
{
    if (cx == NULL || cx->actor == NULL || fn == NULL)
        return TR_EINVAL;
    on_stop *o = malloc(sizeof *o);
    if (o == NULL)
        return TR_ENOMEM;
    o->fn = fn;
    o->arg = arg;
    o->res.release = on_stop_release;
    tr__cx_hold(cx, &o->res);
    return 0;
}

int tr_spawn_spec(tr_ctx *cx, const tr_actor_spec *spec, tr_pid *pid)
{
    if (!tr__cx_in_turn(cx) && !tr__cx_outside(cx))
        return TR_EINVAL;
    return tr__spawn_spec(cx->rt, cx->worker, cx->self, spec, NULL, pid);
}

/* A spec of behaviour and state only: what tr__spawn_spec does with it,
 * without building one on the way (this is fjcreation's path). */
int tr_spawn(tr_ctx *cx, tr_behaviour fn, const void *state, size_t state_size, tr_pid *pid)
{
    if (tr__cx_in_turn(cx) && CK_CC_LIKELY(!tr__actors_of(cx->rt)->tracing))
        return tr__spawn(cx->rt, cx->worker, fn, state, state_size, pid);
    tr_actor_spec spec = {.behaviour = fn, .state = state, .state_size = state_size};
    return tr_spawn_spec(cx, &spec, pid);
}

/* A message of `type` holding a copy of data, or NULL with *err set. */
static inline tr_msg *copy_msg(uint32_t type, const void *data, size_t len, int *err)
{
    tr_msg *m = NULL;
    if (data == NULL && len != 0)
        *err = TR_EINVAL;
    else if (len > TR_MSG_MAX_LEN)
        *err = TR_EMSGSIZE;
    else if ((m = tr__msg_new(type, (uint32_t)len)) == NULL)
        *err = TR_ENOMEM;
    else if (len != 0)
        memcpy(m->data, data, len);
    return m;
}

int tr__send_copy(tr_runtime *rt, tr__worker *w, tr_pid from, tr_pid to, uint32_t type,
                  const void *data, size_t len)
{
    int err;
    tr_msg *m = copy_msg(type, data, len, &err);
    return m != NULL ? tr__send(rt, w, from, to, m) : err;
}

int tr__send_owed(tr_runtime *rt, tr__worker *w, tr_pid from, tr_pid to, uint32_t type,
                  const void *data, size_t len)
{
    tr_msg *m = tr__msg_new_owed(type, (uint32_t)len);
    if (m == NULL)
        return TR_ENOMEM;
    if (len != 0)
        memcpy(m->data, data, len);
    return tr__send(rt, w, from, to, m);
}

/* tr_send from the outside context: no sender, no worker; and a
 * TR_DIST_TERM for another node, from anywhere (actors.h, provided by
 * dist/). */
static __attribute__((noinline, cold)) int send_outside(tr_ctx *cx, tr_pid to, uint32_t type,
                                                       const void *data, size_t len)
{
    if (type == TR_DIST_TERM && TR__PID_NODE(to) != 0) /* a term to another node */
        return tr__dist_send_term(cx, to, data, len);
    if (!tr__cx_outside(cx) || type >= TR_MSG_SYSTEM)
        return TR_EINVAL;
    return tr__send_copy(cx->rt, NULL, TR_PID_NONE, to, type, data, len);
}

/* tr_send of anything but a small message from the thread's magazine. */
static __attribute__((noinline)) int send_copy(tr_ctx *cx, tr_pid to, uint32_t type,
                                               const void *data, size_t len)
{
    if (cx == NULL || cx->actor == NULL || type >= TR_MSG_SYSTEM)
        return send_outside(cx, to, type, data, len);
    /* The context is read after the copy is made, not kept across it: it
     * stays out of saved registers. */
    int err;
    tr_msg *m = copy_msg(type, data, len, &err);
    return m != NULL ? tr__send(cx->rt, cx->worker, cx->self, to, m) : err;
}

/* The common case makes no call but its last, to tr__send, and so needs
 * no saved registers: a small message taken from the magazine and filled
 * in place (callgrind, counting: 81 instructions a message in tr_send and
 * the allocation before, 35 now). */
int tr_send(tr_ctx *cx, tr_pid to, uint32_t type, const void *data, size_t len)
{
    tr_msg *m;
    if (cx == NULL || cx->actor == NULL || type >= TR_MSG_SYSTEM || len > TR__MSG_SMALL ||
        (data == NULL && len != 0) || (m = tr__msg_take_small(type, (uint32_t)len)) == NULL)
        return send_copy(cx, to, type, data, len);
    tr__msg_copy_small(m->data, data, len);
    return tr__send(cx->rt, cx->worker, cx->self, to, m);
}

int tr_msg_send(tr_ctx *cx, tr_pid to, tr_msg *m)
{
    if (m == NULL)
        return TR_EINVAL;
    if ((!tr__cx_in_turn(cx) && !tr__cx_outside(cx)) || m->type >= TR_MSG_SYSTEM) {
        tr__msg_release(m);
        return TR_EINVAL;
    }
    return tr__send(cx->rt, cx->worker, cx->self, to, m);
}

tr_pid tr_self(const tr_ctx *cx)
{
    return cx != NULL ? cx->self : TR_PID_NONE;
}

tr_runtime *tr_ctx_runtime(const tr_ctx *cx)
{
    return cx != NULL ? cx->rt : NULL;
}

void tr_stop(tr_ctx *cx)
{
    tr_exit(cx, TR_EXIT_NORMAL, NULL);
}

void tr_exit(tr_ctx *cx, int reason, const char *text)
{
    TR_MISUSE(cx == NULL || cx->actor == NULL, "tr_exit/tr_stop outside a behaviour");
    if (cx == NULL || cx->actor == NULL)
        return;
    cx->stopping = true;
    cx->exit_reason = reason == TR_EXIT_KILL ? TR_EXIT_KILLED : reason;
    cx->exit_text[0] = '\0';
    if (text != NULL) {
        strncpy(cx->exit_text, text, sizeof cx->exit_text - 1);
        cx->exit_text[sizeof cx->exit_text - 1] = '\0';
    }
}
