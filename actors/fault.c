/* actors/fault.c — exit reasons, links, monitors.
 *
 * Links are kept on both sides, each side in its own fault record: the
 * actor that links adds the other at once and sends it TR__LINK_REQ; the
 * other adds the first when that arrives. An exit signal through a link is
 * obeyed only if the link is active in the receiver's record, which is
 * what makes unlink final; unlinks carry ids so that one crossing a new
 * link leaves the link whole or gone at both ends (fault.h). A monitor is
 * kept by the watched actor (who to tell) and by the watcher (which
 * references it holds): a TR_DOWN whose reference the watcher no longer
 * holds is dropped, which is what makes demonitor flush. The lists are
 * found by key (keyed.h: a scan for a few entries, an index past them),
 * and the count of active links is kept as they change, so that a link,
 * an unlink, a monitor or a signal costs the same however many an actor
 * holds. Asks (ask.c) keep their pending refs in the record too, and go
 * through the same turn and dead-letter hooks.
 */
#include <stdlib.h>
#include <string.h>

#include "../mailbox/msg.h"
#include "actors.h"
#include "actor.h"
#include "ask.h"
#include "fault.h"
#include "troupe/error.h"

/* ---- the record's lists (actors/keyed.h) ---- */

static const tr__keyed_kind LINKS = {sizeof(tr__link), offsetof(tr__link, pid), sizeof(tr_pid)};
static const tr__keyed_kind WATCHERS = {sizeof(tr__watcher), 0, sizeof(tr__watcher)};
static const tr__keyed_kind REFS = {sizeof(tr__watcher), offsetof(tr__watcher, ref),
                                    sizeof(uint64_t)};
_Static_assert(sizeof(tr__watcher) == sizeof(tr_pid) + sizeof(uint64_t),
               "a watcher's key is all of it: no padding to compare");

static tr__link *link_at(const tr__fault *f, int i)
{
    return tr__keyed_at(&f->links, &LINKS, (uint32_t)i);
}

/* Entry i of the watchers or of the monitors held (both tr__watcher). */
static tr__watcher *watcher_at(const tr__keyed *l, int i)
{
    return tr__keyed_at(l, &WATCHERS, (uint32_t)i);
}

static int find_link(const tr__fault *f, tr_pid p)
{
    return f != NULL ? tr__keyed_find(&f->links, &LINKS, &p) : -1;
}

static int find_watcher(const tr__fault *f, tr__watcher v)
{
    return f != NULL ? tr__keyed_find(&f->watchers, &WATCHERS, &v) : -1;
}

static int find_ref(const tr__fault *f, uint64_t r)
{
    return f != NULL ? tr__keyed_find(&f->refs, &REFS, &r) : -1;
}

tr__fault *tr__fault_of(tr__actor *a)
{
    tr__fault *f = tr__fault_get(a);
    if (f == NULL && (f = calloc(1, sizeof *f)) != NULL)
        tr__fault_set(a, f);
    return f;
}

static void free_record(tr__fault *f)
{
    tr__asks_free(f->asks);
    tr__keyed_free(&f->links);
    tr__keyed_free(&f->watchers);
    tr__keyed_free(&f->refs);
    free(f);
}

/* An active entry for p, in room made (tr__keyed_room). */
static void push_link(tr__fault *f, tr_pid p)
{
    tr__keyed_push(&f->links, &LINKS, &(tr__link){p, 0});
    f->active++;
}

/* An active entry for p, unless there is one already (active or
 * unlinking: a link request that finds one is ignored, fault.h). False
 * if out of memory. */
static bool add_link(tr__fault *f, tr_pid p)
{
    if (find_link(f, p) >= 0)
        return true;
    if (!tr__keyed_room(&f->links, &LINKS))
        return false;
    push_link(f, p);
    return true;
}

static void drop_link(tr__fault *f, int i)
{
    f->active -= link_at(f, i)->unlinking == 0;
    tr__keyed_drop(&f->links, &LINKS, (uint32_t)i);
}

/* Entry i unlinking with id (0: active again). */
static void set_unlinking(tr__fault *f, int i, uint64_t id)
{
    tr__link *l = link_at(f, i);
    f->active += (id == 0) - (l->unlinking == 0);
    l->unlinking = id;
}

static uint32_t active_links(const tr__fault *f)
{
    return f != NULL ? f->active : 0;
}

/* ---- sending ---- */

static void fill_info(tr_exit_info *info, tr_pid pid, int reason, const char *text)
{
    memset(info, 0, sizeof *info);
    info->pid = pid;
    info->reason = reason;
    if (text != NULL)
        strncpy(info->text, text, sizeof info->text - 1);
}

static void send_signal(tr_runtime *rt, tr__worker *w, tr_pid from, tr_pid to, int reason,
                        const char *text, bool linked)
{
    tr__signal s;
    fill_info(&s.info, from, reason, text);
    s.linked = linked;
    (void)tr__send_owed(rt, w, from, to, TR__EXIT_SIGNAL, &s, sizeof s);
}

static void send_down(tr_runtime *rt, tr__worker *w, tr_pid who, tr_pid to, uint64_t ref,
                      int reason, const char *text)
{
    tr_down_info d;
    memset(&d, 0, sizeof d);
    d.ref = ref;
    d.pid = who;
    d.reason = reason;
    if (text != NULL)
        strncpy(d.text, text, sizeof d.text - 1);
    (void)tr__send_owed(rt, w, who, to, TR_DOWN, &d, sizeof d);
}

static uint64_t payload_ref(const tr_msg *m)
{
    uint64_t ref = 0;
    if (m->len >= sizeof ref)
        memcpy(&ref, m->data, sizeof ref);
    return ref;
}

/* Answers the unlink request m (its id in the payload), from m's target. */
static void ack_unlink(tr_runtime *rt, tr__worker *w, const tr_msg *m)
{
    uint64_t id = payload_ref(m);
    (void)tr__send_owed(rt, w, m->to, m->from, TR__UNLINK_ACK, &id, sizeof id);
}

void tr__fault_publish(tr__actor *a)
{
    const tr__fault *f = tr__fault_get(a);
    uint32_t links = active_links(f), monitors = f != NULL ? f->watchers.n + f->refs.n : 0;
    /* Its life, or before it is born the life it is about to have. */
    uint32_t life = ck_pr_load_32(&a->life) | 1;
    /* Zeros are what a record of another life reads as: an actor with
     * none need not touch its side record. */
    if (links == 0 && monitors == 0 && ck_pr_load_32(&tr__side_of(a)->own_life) != life)
        return;
    tr__side *s = tr__side_own(a, life);
    ck_pr_store_32(&s->links, links);
    ck_pr_store_32(&s->monitors, monitors);
}

/* ---- the turn's side ---- */

static int handle(tr__worker *w, tr__actor *a, tr_pid self, tr_msg *m, int *reason, char *text);

/* Whether handling a message of this type can change the actor's links
 * or monitors (handle below): only those republish the counts, not every
 * frame a linked connection actor gets. */
static bool changes_counts(uint32_t type)
{
    return type == TR__LINK_REQ || type == TR__UNLINK_REQ || type == TR__UNLINK_ACK ||
           type == TR__MONITOR_REQ ||
           type == TR__DEMONITOR_REQ || type == TR_DOWN || type == TR__EXIT_SIGNAL;
}

int tr__fault_handle(tr__worker *w, tr__actor *a, tr_pid self, tr_msg *m, int *reason,
                     char *text)
{
    bool changes = changes_counts(m->type); /* before handle: a trapped exit
                                              * signal becomes TR_EXIT */
    int verdict = handle(w, a, self, m, reason, text);
    if ((a->flags & TR__FAULTS) && changes)
        tr__fault_publish(a);
    return verdict;
}

static int handle(tr__worker *w, tr__actor *a, tr_pid self, tr_msg *m, int *reason, char *text)
{
    tr_runtime *rt = tr__turner_of(w)->rt;
    tr__fault *f = tr__fault_get(a);
    switch (m->type) {
    case TR__LINK_REQ:
        if ((f = tr__fault_of(a)) == NULL || !add_link(f, m->from)) /* no memory: refuse */
            send_signal(rt, w, self, m->from, TR_EXIT_NOPROC, "out of memory", true);
        return TR__CONSUMED;
    case TR__UNLINK_REQ: {
        /* Dropped if active; kept if this end is unlinking too (its own
         * ack drops it). Acknowledged either way, before anything else
         * this actor sends the other. */
        int i = find_link(f, m->from);
        if (i >= 0 && link_at(f, i)->unlinking == 0)
            drop_link(f, i);
        ack_unlink(rt, w, m);
        return TR__CONSUMED;
    }
    case TR__UNLINK_ACK: {
        int i = find_link(f, m->from);
        if (i >= 0 && link_at(f, i)->unlinking != 0 && link_at(f, i)->unlinking == payload_ref(m))
            drop_link(f, i);
        return TR__CONSUMED;
    }
    case TR__MONITOR_REQ:
        if ((f = tr__fault_of(a)) == NULL || !tr__keyed_room(&f->watchers, &WATCHERS)) {
            send_down(rt, w, self, m->from, payload_ref(m), TR_EXIT_NOPROC, "out of memory");
            return TR__CONSUMED;
        }
        tr__keyed_push(&f->watchers, &WATCHERS, &(tr__watcher){m->from, payload_ref(m)});
        return TR__CONSUMED;
    case TR__DEMONITOR_REQ: {
        int i = find_watcher(f, (tr__watcher){m->from, payload_ref(m)});
        if (i >= 0)
            tr__keyed_drop(&f->watchers, &WATCHERS, (uint32_t)i);
        return TR__CONSUMED;
    }
    case TR_DOWN: {
        int i = find_ref(f, payload_ref(m));
        if (i < 0)
            return TR__CONSUMED; /* demonitored: flushed */
        tr__keyed_drop(&f->refs, &REFS, (uint32_t)i);
        return TR__DELIVER;
    }
    case TR__EXIT_SIGNAL: {
        tr__signal s;
        if (m->len < sizeof s)
            return TR__CONSUMED;
        memcpy(&s, m->data, sizeof s);
        if (s.linked) {
            int i = find_link(f, s.info.pid);
            if (i < 0)
                return TR__CONSUMED; /* unlinked meanwhile */
            bool active = link_at(f, i)->unlinking == 0;
            drop_link(f, i); /* the other end is gone: its ack never comes */
            if (!active)
                return TR__CONSUMED; /* unlinking: not linked */
        }
        if (s.info.reason == TR_EXIT_KILL) {
            *reason = TR_EXIT_KILLED;
            strcpy(text, "killed");
            return TR__DIE;
        }
        if (a->flags & TR__TRAPS) {
            m->type = TR_EXIT; /* the payload starts with the tr_exit_info */
            m->len = sizeof(tr_exit_info);
            return TR__DELIVER;
        }
        if (s.info.reason == TR_EXIT_NORMAL)
            return TR__CONSUMED;
        *reason = s.info.reason;
        memcpy(text, s.info.text, TR_EXIT_TEXT_MAX);
        return TR__DIE;
    }
    case TR__START:
        return TR__INIT;
    default:
        return TR__DELIVER;
    }
}

void tr__fault_end(tr__worker *w, tr__actor *a, tr_pid self, int reason, const char *text)
{
    tr_runtime *rt = tr__turner_of(w)->rt;
    tr__fault *f = tr__fault_get(a);
    tr__fault_set(a, NULL);
    for (uint32_t i = 0; i < f->links.n; i++)
        if (link_at(f, (int)i)->unlinking == 0)
            send_signal(rt, w, self, link_at(f, (int)i)->pid, reason, text, true);
    for (uint32_t i = 0; i < f->watchers.n; i++) {
        const tr__watcher *v = watcher_at(&f->watchers, (int)i);
        send_down(rt, w, self, v->pid, v->ref, reason, text);
    }
    /* The actors it watched forget it, or they would keep a watcher list
     * growing with every short-lived client. */
    for (uint32_t i = 0; i < f->refs.n; i++) {
        const tr__watcher *r = watcher_at(&f->refs, (int)i);
        (void)tr__send_copy(rt, w, self, r->pid, TR__DEMONITOR_REQ, &r->ref, sizeof r->ref);
    }
    /* Its asks' timeout sweep would only fire into a dead letter, and the
     * hold it keeps while asks wait would keep the runtime open. */
    if (f->asks != NULL)
        tr__asks_cancel(w, f->asks);
    free_record(f);
}

void tr__fault_free(tr__fault *f)
{
    if (f != NULL)
        free_record(f);
}

void tr__fault_bounce(tr_runtime *rt, tr__worker *w, tr_msg *m)
{
    if (m->type == TR__LINK_REQ)
        send_signal(rt, w, m->to, m->from, TR_EXIT_NOPROC, "noproc", true);
    else if (m->type == TR__UNLINK_REQ) /* gone: unlinked, and its entry waits no longer */
        ack_unlink(rt, w, m);
    else if (m->type == TR__MONITOR_REQ)
        send_down(rt, w, m->to, m->from, payload_ref(m), TR_EXIT_NOPROC, "noproc");
    else if (m->type == TR__ASK)
        tr__ask_bounce(rt, w, m);
}

/* ---- the API ---- */

static bool in_turn(const tr_ctx *cx)
{
    return cx != NULL && cx->actor != NULL;
}

void tr_trap_exits(tr_ctx *cx, bool on)
{
    TR_MISUSE(!in_turn(cx), "tr_trap_exits outside a behaviour");
    if (in_turn(cx)) {
        tr__actor *a = cx->actor;
        tr__flags_store(a, on ? a->flags | TR__TRAPS : a->flags & ~TR__TRAPS);
    }
}

static int send_request(tr_ctx *cx, tr_pid to, uint32_t type, const void *data, size_t len)
{
    return tr__send_copy(cx->rt, cx->worker, cx->self, to, type, data, len);
}

int tr_link(tr_ctx *cx, tr_pid pid)
{
    if (!in_turn(cx) || pid == cx->self)
        return TR_EINVAL;
    tr__fault *f = tr__fault_of(cx->actor);
    int i = find_link(f, pid);
    if (i >= 0 && link_at(f, i)->unlinking == 0)
        return 0; /* linked: a request now could cross an unlink of the other's
                     and leave the link at one end only */
    /* New, or unlinking: active from here on, whatever our unlink's ack
     * says (it no longer matches). */
    uint64_t was = i >= 0 ? link_at(f, i)->unlinking : 0;
    if (i >= 0) {
        set_unlinking(f, i, 0);
    } else { /* none there: pushed without another search */
        if (f == NULL || !tr__keyed_room(&f->links, &LINKS))
            return TR_ENOMEM;
        push_link(f, pid);
        i = (int)f->links.n - 1;
    }
    int err = send_request(cx, pid, TR__LINK_REQ, NULL, 0);
    /* (i still holds: nothing pushed or dropped since) */
    if (err != 0 && was != 0)
        set_unlinking(f, i, was);
    else if (err != 0)
        drop_link(f, i);
    tr__fault_publish(cx->actor);
    return err;
}

int tr_unlink(tr_ctx *cx, tr_pid pid)
{
    if (!in_turn(cx))
        return TR_EINVAL;
    tr__fault *f = tr__fault_get(cx->actor);
    int i = find_link(f, pid);
    if (i < 0 || link_at(f, i)->unlinking != 0)
        return 0; /* not linked */
    uint64_t id = ++f->unlinks;
    set_unlinking(f, i, id);
    int err = send_request(cx, pid, TR__UNLINK_REQ, &id, sizeof id);
    if (err != 0) /* no ack will come: unlinked at this end alone */
        drop_link(f, i);
    tr__fault_publish(cx->actor);
    return err;
}

/* Spawns a child whose record, made here, already holds the link to the
 * running actor (or its monitor, with a fresh reference), so that it
 * cannot end unseen; the running actor's side is added once the pid is
 * known, in room made beforehand so that nothing can fail after the spawn. */
static int spawn_watched(tr_ctx *cx, const tr_actor_spec *spec, const tr__spawn_opts *o,
                         uint64_t *ref, tr_pid *pid)
{
    if (!in_turn(cx))
        return TR_EINVAL;
    bool link = ref == NULL;
    tr__fault *mine = tr__fault_of(cx->actor);
    tr__fault *child = calloc(1, sizeof *child);
    bool room = mine != NULL && child != NULL;
    if (room && link)
        room = tr__keyed_room(&mine->links, &LINKS) && add_link(child, cx->self);
    else if (room)
        room = tr__keyed_room(&mine->refs, &REFS) && tr__keyed_room(&child->watchers, &WATCHERS);
    if (!room) {
        tr__fault_free(child);
        return TR_ENOMEM;
    }
    uint64_t r = 0;
    if (!link) {
        r = ck_pr_faa_64(&tr__actors_of(cx->rt)->next_ref, 1) + 1;
        tr__keyed_push(&child->watchers, &WATCHERS, &(tr__watcher){cx->self, r});
    }
    tr__spawn_opts opts = {.resource_at = -1};
    if (o != NULL)
        opts = *o;
    opts.fault = child;
    tr_pid p;
    int err = tr__spawn_spec(cx->rt, cx->worker, cx->self, spec, &opts, &p);
    if (err != 0) {
        tr__fault_free(child);
        return err;
    }
    if (link) {
        push_link(mine, p);
    } else {
        tr__keyed_push(&mine->refs, &REFS, &(tr__watcher){p, r});
        *ref = r;
    }
    tr__fault_publish(cx->actor);
    if (pid != NULL)
        *pid = p;
    return 0;
}

int tr__spawn_link_spec(tr_ctx *cx, const tr_actor_spec *spec, const tr__spawn_opts *o,
                        tr_pid *pid)
{
    return spawn_watched(cx, spec, o, NULL, pid);
}

int tr_spawn_link_spec(tr_ctx *cx, const tr_actor_spec *spec, tr_pid *pid)
{
    return spawn_watched(cx, spec, NULL, NULL, pid);
}

int tr_spawn_link(tr_ctx *cx, tr_behaviour fn, const void *state, size_t state_size, tr_pid *pid)
{
    tr_actor_spec spec = {.behaviour = fn, .state = state, .state_size = state_size};
    return spawn_watched(cx, &spec, NULL, NULL, pid);
}

int tr_spawn_monitor(tr_ctx *cx, const tr_actor_spec *spec, tr_pid *pid, uint64_t *ref)
{
    uint64_t r;
    int err = spawn_watched(cx, spec, NULL, &r, pid);
    if (err == 0 && ref != NULL)
        *ref = r;
    return err;
}

/* tr_kill from the outside context: the signal comes from no actor. */
static int kill_outside(tr_runtime *rt, tr_pid pid, int reason)
{
    if (rt == NULL)
        return TR_EINVAL;
    tr__signal s;
    fill_info(&s.info, TR_PID_NONE, reason, reason == TR_EXIT_KILL ? "killed" : NULL);
    s.linked = false;
    tr_msg *m = tr__msg_new(TR__EXIT_SIGNAL, sizeof s);
    if (m == NULL)
        return TR_ENOMEM;
    memcpy(m->data, &s, sizeof s);
    return tr__send(rt, NULL, TR_PID_NONE, pid, m);
}

int tr_kill(tr_ctx *cx, tr_pid pid, int reason)
{
    if (tr__cx_outside(cx))
        return kill_outside(cx->rt, pid, reason);
    if (!in_turn(cx))
        return TR_EINVAL;
    tr__signal s;
    fill_info(&s.info, cx->self, reason, reason == TR_EXIT_KILL ? "killed" : NULL);
    s.linked = false;
    return send_request(cx, pid, TR__EXIT_SIGNAL, &s, sizeof s);
}

void tr__kill_owed(tr_ctx *cx, tr_pid pid, int reason)
{
    send_signal(cx->rt, cx->worker, cx->self, pid, reason,
                reason == TR_EXIT_KILL ? "killed" : NULL, false);
}


int tr_monitor(tr_ctx *cx, tr_pid pid, uint64_t *ref)
{
    if (!in_turn(cx))
        return TR_EINVAL;
    tr__fault *f = tr__fault_of(cx->actor);
    if (f == NULL || !tr__keyed_room(&f->refs, &REFS))
        return TR_ENOMEM;
    uint64_t r = ck_pr_faa_64(&tr__actors_of(cx->rt)->next_ref, 1) + 1;
    tr__keyed_push(&f->refs, &REFS, &(tr__watcher){pid, r});
    int err = send_request(cx, pid, TR__MONITOR_REQ, &r, sizeof r);
    if (err != 0) {
        tr__keyed_drop(&f->refs, &REFS, f->refs.n - 1);
        return err;
    }
    tr__fault_publish(cx->actor);
    if (ref != NULL)
        *ref = r;
    return 0;
}

int tr_demonitor(tr_ctx *cx, uint64_t ref)
{
    tr__fault *f = in_turn(cx) ? tr__fault_get(cx->actor) : NULL;
    int i = find_ref(f, ref);
    if (i < 0)
        return TR_EINVAL;
    tr_pid target = watcher_at(&f->refs, i)->pid;
    tr__keyed_drop(&f->refs, &REFS, (uint32_t)i);
    tr__fault_publish(cx->actor);
    /* A TR_DOWN already on its way is dropped on arrival, as the reference
     * is no longer held; the target forgets the watcher when this arrives
     * (if it has ended, the request is simply a dead letter). */
    send_request(cx, target, TR__DEMONITOR_REQ, &ref, sizeof ref);
    return 0;
}
