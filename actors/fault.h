/* actors/fault.h — links, monitors and exit signals (internal).
 *
 * An actor's fault record lists whom it is linked to, who monitors it and
 * which monitors it holds. Only the actor's own turns touch it, so it
 * needs no locks: the other side of a link or monitor is reached by
 * messages (the request types below), and a request that finds its target
 * gone comes back as a NOPROC answer (tr__fault_bounce), so nothing waits
 * for an actor that no longer exists.
 *
 * Links follow the protocol OTP 23 brought in to keep a link whole at
 * both ends when an unlink crosses a new link (Erlang's distribution
 * protocol, "Link Protocol"; dist/signals.c carries it to Erlang nodes as
 * UNLINK_ID and UNLINK_ID_ACK). An unlink does not drop the entry at
 * once: it marks it unlinking with an id and sends TR__UNLINK_REQ with
 * that id; the other end drops its entry if active (one unlinking itself
 * keeps its own), and answers TR__UNLINK_ACK with the id before anything
 * else it sends; the ack drops the entry if the id is still its own. A
 * link request that finds an entry, active or unlinking, is ignored (the
 * other end is about to take our unlink, so both end up unlinked); one
 * sent by tr_link over an unlinking entry makes it active again. Only
 * active entries are links: they carry exit signals, count in the
 * figures and are told of the end; an exit signal through an entry drops
 * it either way. An unlink request that finds its target gone is
 * acknowledged by the bounce, so no entry waits for a dead actor.
 */
#ifndef TR_ACTORS_FAULT_H
#define TR_ACTORS_FAULT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "actor.h"
#include "keyed.h"
#include "troupe/fault.h"

typedef struct tr__worker tr__worker;
typedef struct tr__actor tr__actor;
typedef struct tr_ctx tr_ctx;
typedef struct tr_runtime tr_runtime;

/* Internal message types: this module's part of the internal range
 * (troupe/msgtypes.h). */
#define TR__LINK_REQ      (TR__MSG_FAULT_FIRST + 0)
#define TR__UNLINK_REQ    (TR__MSG_FAULT_FIRST + 1)
#define TR__EXIT_SIGNAL   (TR__MSG_FAULT_FIRST + 2) /* payload: tr__signal */
#define TR__MONITOR_REQ   (TR__MSG_FAULT_FIRST + 3) /* payload: uint64_t ref */
#define TR__DEMONITOR_REQ (TR__MSG_FAULT_FIRST + 4) /* payload: uint64_t ref */
#define TR__START         (TR__MSG_FAULT_FIRST + 5) /* runs a spec's init (actor.c) */
#define TR__UNLINK_ACK    (TR__MSG_FAULT_FIRST + 6) /* payload: uint64_t id, as the request's */
_Static_assert(TR__UNLINK_ACK <= TR__MSG_FAULT_LAST, "fault types past their range");

typedef struct tr__signal {
    tr_exit_info info; /* first: the payload of the TR_EXIT it may become */
    bool linked;       /* through a link (else tr_kill) */
} tr__signal;
_Static_assert(offsetof(tr__signal, info) == 0,
               "a trapped exit signal is delivered as TR_EXIT, its payload read as tr_exit_info");

/* One end of a link: active (unlinking 0), or the id of this end's
 * unlink request, not acknowledged yet. */
typedef struct tr__link {
    tr_pid pid;
    uint64_t unlinking;
} tr__link;

typedef struct tr__watcher {
    tr_pid pid;
    uint64_t ref;
} tr__watcher;

/* An actor's cold record: made on first use, or at spawn for a spec with
 * callbacks, so that actors without links, monitors or callbacks carry
 * none of it. */
typedef struct tr__fault {
    tr__keyed links;    /* tr__link by pid: active and unlinking (see the top) */
    uint32_t active;    /* the active ones among them */
    uint64_t unlinks;   /* the last unlink id this actor used */
    tr__keyed watchers; /* tr__watcher by (pid, ref): who monitors this actor */
    tr__keyed refs;     /* tr__watcher by ref: monitors this actor holds, (target, ref) */
    /* From the spec (actors/actor.c): the behaviour, while init has not
     * run; the callbacks, which get the state from user_at on; who spawned
     * the actor, for init. */
    tr_behaviour behaviour;
    int (*init)(tr_ctx *cx, void *state, tr_pid spawner);
    void (*on_stop)(void *state, int reason);
    tr_pid spawner;
    size_t user_at;
    struct tr__asks *asks; /* asks awaiting their answers (ask.c), or NULL */
} tr__fault;

/* What the turn does with a system message. TR__INIT: it is TR__START,
 * the turn runs the spec's init. TR__TRAILED: an ask or a reply,
 * delivered through tr__ask_open/close (ask.h). */
enum { TR__DELIVER, TR__CONSUMED, TR__DIE, TR__INIT, TR__TRAILED };

/* Actor a's record, made on first use; NULL when out of memory. Only in
 * a's own turns. */
tr__fault *tr__fault_of(tr__actor *a);

/* Handles a fault message for actor a (its pid `self`): any system message
 * but request/reply's (tr__ask_type: tr__ask_arrived takes those), the
 * rest delivered as they are. TR__DIE: the actor
 * must end with *reason and text. May rewrite m (an exit signal becomes
 * TR_EXIT for a trapping actor). */
int tr__fault_handle(tr__worker *w, tr__actor *a, tr_pid self, tr_msg *m, int *reason,
                     char *text);

/* The actor `self` in slot a is ending with reason: tell links and
 * watchers, drop its name, free the record. */
void tr__fault_end(tr__worker *w, tr__actor *a, tr_pid self, int reason, const char *text);

/* A message m that became a dead letter: answer requests with NOPROC. */
void tr__fault_bounce(tr_runtime *rt, tr__worker *w, tr_msg *m);

/* tr_kill from a turn, for the runtime's own protocols (a supervisor
 * stopping its children waits for their exits): the signal is owed, and
 * out of memory comes from the reserve (mailbox/msg.c). */
void tr__kill_owed(tr_ctx *cx, tr_pid pid, int reason);

void tr__fault_free(tr__fault *f);

/* Copies the record's link and monitor counts into a's figures, where
 * any thread may read them (the record itself is the turn's alone). In
 * a's own turn, or before it is born. */
void tr__fault_publish(tr__actor *a);

/* tr_spawn_link_spec with internal options (o may be NULL; o->fault is
 * ignored: the link's record is made here). */
int tr__spawn_link_spec(tr_ctx *cx, const tr_actor_spec *spec, const tr__spawn_opts *o,
                        tr_pid *pid);

/* The registry side of an ending actor (actors/registry.c). */
void tr__registry_forget(tr_runtime *rt, tr_pid pid);
void tr__registry_fini(tr_runtime *rt);
/* The name pid is registered under, copied into out (size bytes, cut
 * short if need be; "" and false if it has none). Any thread; takes the
 * writers' lock, so not for hot paths. */
bool tr__registry_name_of(tr_runtime *rt, tr_pid pid, char *out, size_t size);

#endif
