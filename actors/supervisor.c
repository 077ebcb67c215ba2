/* actors/supervisor.c — the supervisor actor (see troupe/supervisor.h).
 *
 * A supervisor never blocks: stopping children is a sequence it walks one
 * child at a time, driven by the children's TR_EXIT messages and a timer
 * per child (SHUTDOWN, then KILL when the timer fires first). What comes
 * after the sequence — restarting a set of children, or ending the
 * supervisor itself — is decided when it is started.
 */
#include <stdlib.h>
#include <string.h>

#include "../base/clock.h"
#include "actors.h"
#include "fault.h"
#include "troupe/error.h"
#include "troupe/fault.h"
#include "troupe/msgtypes.h"
#include "troupe/supervisor.h"
#include "troupe/timer.h"

/* This module's part of the internal range (troupe/msgtypes.h). */
#define SUP_START (TR__MSG_SUP_FIRST + 0)
#define SUP_TIMEOUT (TR__MSG_SUP_FIRST + 1)
_Static_assert(SUP_TIMEOUT <= TR__MSG_SUP_LAST, "supervisor types past their range");
#define DEFAULT_RESTARTS 3
#define DEFAULT_PERIOD (5 * TR_SEC)
#define DEFAULT_SHUTDOWN (5 * TR_SEC)

typedef struct child {
    tr_child_spec spec; /* spec.actor.state and .name: the supervisor's own copies */
    tr_pid pid;         /* TR_PID_NONE while not running */
    bool gone;          /* a temporary child that ended: never again */
} child;

enum phase { RUNNING, RESTARTING, ENDING };

typedef struct sup {
    tr__resource res; /* first: frees what follows when the supervisor ends */
    tr_strategy strategy;
    unsigned max_restarts;
    uint64_t period_ns;
    size_t n;
    child *kids;
    uint64_t *stamps;   /* the last max_restarts + 1 restart times, a ring */
    unsigned nstamps, next_stamp;
    /* The stop sequence. */
    enum phase phase;
    size_t *order;      /* children to stop, in that order */
    size_t norder, at;
    tr_pid timer;
    size_t restart_from; /* RESTARTING: start children [restart_from, n) after */
    int end_reason;      /* ENDING: the reason to end with */
    tr_pid parent;       /* linked starter, if any: when it ends, so do we */
} sup;
TR__RESOURCE_FIRST(sup);

static void sup_release(tr_runtime *rt, tr__resource *r)
{
    (void)rt;
    sup *s = (sup *)r;
    for (size_t i = 0; s->kids != NULL && i < s->n; i++) {
        free((void *)s->kids[i].spec.actor.state);
        free((void *)s->kids[i].spec.actor.name);
    }
    free(s->kids);
    free(s->stamps);
    free(s->order);
    s->kids = NULL;
    s->stamps = NULL;
    s->order = NULL;
}

static int start_child(tr_ctx *cx, sup *s, size_t i)
{
    child *k = &s->kids[i];
    int err = tr_spawn_link_spec(cx, &k->spec.actor, &k->pid);
    if (err != 0)
        k->pid = TR_PID_NONE;
    return err;
}

static void stop_next(tr_ctx *cx, sup *s);

/* Stops the running children among [from, n) — all but `except` — in
 * reverse start order, then goes on as `then` says.
 *
 * A sequence cut short (ending during a restart) may be waiting for a
 * child it has signalled: that child stays first in the new sequence,
 * with its signal and its grace timer as they are, so it is neither
 * signalled twice nor given a second grace. */
static void stop_children(tr_ctx *cx, sup *s, size_t from, size_t except, enum phase then)
{
    size_t waiting = SIZE_MAX;
    if (s->phase != RUNNING && s->at < s->norder && s->kids[s->order[s->at]].pid != TR_PID_NONE)
        waiting = s->order[s->at];
    if (waiting == SIZE_MAX && s->timer != TR_PID_NONE) { /* its child has just ended */
        tr_timer_cancel(cx, s->timer);
        s->timer = TR_PID_NONE;
    }
    s->norder = 0;
    if (waiting != SIZE_MAX)
        s->order[s->norder++] = waiting;
    for (size_t i = s->n; i-- > from;)
        if (i != except && i != waiting && s->kids[i].pid != TR_PID_NONE)
            s->order[s->norder++] = i;
    s->at = 0;
    s->phase = then;
    if (waiting == SIZE_MAX)
        stop_next(cx, s);
}

static void end_with(tr_ctx *cx, sup *s, int reason)
{
    s->end_reason = reason;
    stop_children(cx, s, 0, SIZE_MAX, ENDING);
}

/* The sequence is over: restart the set, or end. */
static void sequence_done(tr_ctx *cx, sup *s)
{
    if (s->phase == ENDING) {
        tr_exit(cx, s->end_reason, s->end_reason == TR_EXIT_RESTARTS ? "restart intensity" : NULL);
        return;
    }
    s->phase = RUNNING;
    for (size_t i = s->restart_from; i < s->n; i++) {
        child *k = &s->kids[i];
        if (k->gone || k->pid != TR_PID_NONE)
            continue;
        if (k->spec.restart == TR_TEMPORARY) { /* stopped by us: not restarted */
            k->gone = true;
            continue;
        }
        if (start_child(cx, s, i) != 0) {
            end_with(cx, s, TR_EXIT_RESTARTS);
            return;
        }
    }
}

static void stop_next(tr_ctx *cx, sup *s)
{
    while (s->at < s->norder && s->kids[s->order[s->at]].pid == TR_PID_NONE)
        s->at++;
    if (s->at == s->norder) {
        sequence_done(cx, s);
        return;
    }
    child *k = &s->kids[s->order[s->at]];
    tr__kill_owed(cx, k->pid, TR_EXIT_SHUTDOWN); /* its exit is waited for */
    uint64_t grace = k->spec.shutdown_ns ? k->spec.shutdown_ns : DEFAULT_SHUTDOWN;
    if (tr__timer_system(cx, grace, SUP_TIMEOUT, &s->timer) != 0) {
        s->timer = TR_PID_NONE;
        tr__kill_owed(cx, k->pid, TR_EXIT_KILL); /* no timer: no grace */
    }
}

/* True if one more restart now stays within the intensity. */
static bool may_restart(sup *s)
{
    uint64_t now = tr__now_ns();
    s->stamps[s->next_stamp] = now;
    s->next_stamp = (s->next_stamp + 1) % (s->max_restarts + 1);
    if (s->nstamps < s->max_restarts + 1)
        s->nstamps++;
    unsigned recent = 0;
    for (unsigned i = 0; i < s->nstamps; i++)
        if (now - s->stamps[i] <= s->period_ns)
            recent++;
    return recent <= s->max_restarts;
}

static bool wants_restart(const child *k, int reason)
{
    switch (k->spec.restart) {
    case TR_PERMANENT:
        return true;
    case TR_TRANSIENT:
        return reason != TR_EXIT_NORMAL && reason != TR_EXIT_SHUTDOWN;
    default:
        return false;
    }
}

static void child_ended(tr_ctx *cx, sup *s, size_t i, int reason)
{
    child *k = &s->kids[i];
    if (!wants_restart(k, reason)) {
        if (k->spec.restart == TR_TEMPORARY)
            k->gone = true;
        return;
    }
    if (!may_restart(s)) {
        end_with(cx, s, TR_EXIT_RESTARTS);
        return;
    }
    switch (s->strategy) {
    case TR_ONE_FOR_ALL:
        s->restart_from = 0;
        stop_children(cx, s, 0, i, RESTARTING);
        break;
    case TR_REST_FOR_ONE:
        s->restart_from = i;
        stop_children(cx, s, i + 1, i, RESTARTING);
        break;
    default:
        if (start_child(cx, s, i) != 0)
            end_with(cx, s, TR_EXIT_RESTARTS);
        break;
    }
}

/* During a rest-for-one restart, child i (before the restart set) failed
 * too: the set grows to start at i, and the running children between join
 * the stop sequence. */
static void widen_restart(tr_ctx *cx, sup *s, size_t i, int reason)
{
    if (!wants_restart(&s->kids[i], reason) || i >= s->restart_from)
        return;
    if (!may_restart(s)) {
        end_with(cx, s, TR_EXIT_RESTARTS);
        return;
    }
    for (size_t j = s->restart_from; j-- > i + 1;)
        if (s->kids[j].pid != TR_PID_NONE)
            s->order[s->norder++] = j; /* not yet listed: all were before the set */
    s->restart_from = i;
}

static void child_or_parent_exit(tr_ctx *cx, sup *s, const tr_exit_info *e)
{
    size_t i = 0;
    /* TR_PID_NONE (a signal from outside the runtime) is no child's: it is
     * also what a stopped child's entry holds. */
    while (i < s->n && (e->pid == TR_PID_NONE || s->kids[i].pid != e->pid))
        i++;
    if (i == s->n) {
        /* Not a child: our parent ended, or someone told us to stop. */
        if (s->phase == ENDING)
            return;
        if (e->pid != TR_PID_NONE && e->pid == s->parent)
            end_with(cx, s, e->reason == TR_EXIT_NORMAL ? TR_EXIT_SHUTDOWN : e->reason);
        else if (e->reason != TR_EXIT_NORMAL)
            end_with(cx, s, e->reason == TR_EXIT_KILLED ? TR_EXIT_SHUTDOWN : e->reason);
        return;
    }
    s->kids[i].pid = TR_PID_NONE;
    if (s->phase != RUNNING) {
        /* Part of the sequence (or ended on its own meanwhile): go on. */
        if (s->phase == RESTARTING) {
            widen_restart(cx, s, i, e->reason);
            if (s->phase != RESTARTING)
                return;
        }
        if (s->at < s->norder && s->order[s->at] == i) {
            if (s->timer != TR_PID_NONE)
                tr_timer_cancel(cx, s->timer);
            s->timer = TR_PID_NONE;
            s->at++;
            stop_next(cx, s);
        }
        return;
    }
    child_ended(cx, s, i, e->reason);
}

static void sup_behaviour(tr_ctx *cx, void *state, const tr_msg *m)
{
    sup *s = state;
    switch (m->type) {
    case SUP_START:
        tr_trap_exits(cx, true);
        for (size_t i = 0; i < s->n; i++) {
            if (start_child(cx, s, i) != 0) {
                end_with(cx, s, TR_EXIT_RESTARTS);
                return;
            }
        }
        break;
    case TR_EXIT:
        child_or_parent_exit(cx, s, (const tr_exit_info *)m->data);
        break;
    case SUP_TIMEOUT:
        if (m->from == s->timer && s->phase != RUNNING && s->at < s->norder) {
            s->timer = TR_PID_NONE;
            tr__kill_owed(cx, s->kids[s->order[s->at]].pid, TR_EXIT_KILL);
        }
        break;
    default:
        break;
    }
}

/* The supervisor's own copy of a child spec: the state and the name. */
static int copy_child(tr_child_spec *to, const tr_child_spec *c)
{
    const tr_actor_spec *a = &c->actor;
    size_t name_len = a->name != NULL ? strnlen(a->name, TR_NAME_MAX) : 0;
    bool bad_name = a->name != NULL && (name_len == 0 || name_len == TR_NAME_MAX);
    if (a->behaviour == NULL || (a->state == NULL && a->state_size != 0) ||
        c->restart > TR_TEMPORARY || bad_name)
        return TR_EINVAL;
    *to = *c;
    to->actor.state = NULL;
    to->actor.name = NULL;
    if (a->state_size != 0) {
        void *copy = malloc(a->state_size);
        if (copy == NULL)
            return TR_ENOMEM;
        memcpy(copy, a->state, a->state_size);
        to->actor.state = copy;
    }
    if (a->name != NULL && (to->actor.name = strdup(a->name)) == NULL)
        return TR_ENOMEM;
    return 0;
}

static int sup_start(tr_runtime *rt, tr_ctx *cx, const tr_supervisor_spec *spec, tr_pid *out)
{
    if (spec == NULL || (spec->children == NULL && spec->nchildren != 0) ||
        spec->strategy > TR_REST_FOR_ONE || spec->max_restarts > TR_SUP_MAX_RESTARTS)
        return TR_EINVAL;
    sup s = {.strategy = spec->strategy, .n = spec->nchildren, .timer = TR_PID_NONE,
             .parent = cx != NULL ? cx->self : TR_PID_NONE,
             .max_restarts = spec->max_restarts ? spec->max_restarts : DEFAULT_RESTARTS,
             .period_ns = spec->period_ns ? spec->period_ns : DEFAULT_PERIOD};
    s.res.release = sup_release;
    s.kids = calloc(s.n ? s.n : 1, sizeof *s.kids);
    s.order = calloc(s.n ? s.n : 1, sizeof *s.order);
    s.stamps = calloc(s.max_restarts + 1, sizeof *s.stamps);
    int err = s.kids && s.order && s.stamps ? 0 : TR_ENOMEM;
    for (size_t i = 0; err == 0 && i < s.n; i++)
        err = copy_child(&s.kids[i].spec, &spec->children[i]);
    tr_pid pid = TR_PID_NONE;
    tr_actor_spec me = {.behaviour = sup_behaviour, .state = &s, .state_size = sizeof s};
    tr__spawn_opts opts = {.resource_at = 0};
    if (err == 0)
        err = cx != NULL ? tr__spawn_link_spec(cx, &me, &opts, &pid)
                         : tr__spawn_spec(rt, NULL, TR_PID_NONE, &me, &opts, &pid);
    if (err != 0) {
        sup_release(rt, &s.res);
        return err;
    }
    if (out != NULL)
        *out = pid;
    return tr__send_system(rt, cx, pid, SUP_START);
}

int tr_supervisor_start(tr_ctx *cx, const tr_supervisor_spec *spec, tr_pid *sup_pid)
{
    tr_ctx *acting;
    int err = tr__cx_acting(cx, &acting);
    return err != 0 ? err : sup_start(cx->rt, acting, spec, sup_pid);
}
