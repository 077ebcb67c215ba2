/* actors/fault.h — links, monitors and exit signals (internal).
 *
 * An actor's fault record lists whom it is linked to, who monitors it and
 * which monitors it holds. Only the actor's own turns touch it, so it
 * needs no locks: the other side of a link or monitor is reached by
 * messages (the request types below), and a request that finds its target
 * gone comes back as a NOPROC answer (tr__fault_bounce), so nothing waits
 * for an actor that no longer exists.
 */
#ifndef TR_ACTORS_FAULT_H
#define TR_ACTORS_FAULT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "troupe/fault.h"

typedef struct tr__worker tr__worker;
typedef struct tr__actor tr__actor;
typedef struct tr_ctx tr_ctx;
typedef struct tr_runtime tr_runtime;

/* Internal message types. */
#define TR__LINK_REQ      (TR_MSG_SYSTEM + 0x50)
#define TR__UNLINK_REQ    (TR_MSG_SYSTEM + 0x51)
#define TR__EXIT_SIGNAL   (TR_MSG_SYSTEM + 0x52) /* payload: tr__signal */
#define TR__MONITOR_REQ   (TR_MSG_SYSTEM + 0x53) /* payload: uint64_t ref */
#define TR__DEMONITOR_REQ (TR_MSG_SYSTEM + 0x54) /* payload: uint64_t ref */

typedef struct tr__signal {
    tr_exit_info info; /* first: the payload of the TR_EXIT it may become */
    bool linked;       /* through a link (else tr_kill) */
} tr__signal;

typedef struct tr__watcher {
    tr_pid pid;
    uint64_t ref;
} tr__watcher;

typedef struct tr__fault {
    bool trap;
    uint32_t nlinks, caplinks, nwatchers, capwatchers, nrefs, caprefs;
    tr_pid *links;
    tr__watcher *watchers;
    tr__watcher *refs; /* monitors this actor holds: (target, ref) */
    struct tr__asks *asks; /* asks awaiting their answers (ask.c), or NULL */
} tr__fault;

/* What the turn does with a system message. TR__TRAILED: an ask or a
 * reply, delivered through tr__ask_open/close (ask.h). */
enum { TR__DELIVER, TR__CONSUMED, TR__DIE, TR__TRAILED };

/* Actor a's record, made on first use; NULL when out of memory. Only in
 * a's own turns. */
tr__fault *tr__fault_of(tr__actor *a);

/* Handles a fault message for actor a (its pid `self`). TR__DIE: the actor
 * must end with *reason and text. May rewrite m (an exit signal becomes
 * TR_EXIT for a trapping actor). */
int tr__fault_handle(tr__worker *w, tr__actor *a, tr_pid self, tr_msg *m, int *reason,
                     char *text);

/* The actor `self` in slot a is ending with reason: tell links and
 * watchers, drop its name, free the record. */
void tr__fault_end(tr__worker *w, tr__actor *a, tr_pid self, int reason, const char *text);

/* A message m that became a dead letter: answer requests with NOPROC. */
void tr__fault_bounce(tr_runtime *rt, tr__worker *w, tr_msg *m);

/* A fresh fault record linked to `parent` (for spawn-and-link). */
tr__fault *tr__fault_linked_to(tr_pid parent);
void tr__fault_free(tr__fault *f);

/* tr_spawn_link for a state embedding a resource (see tr__spawn_with). */
int tr__spawn_link_with(tr_ctx *cx, tr_behaviour fn, const void *state, size_t state_size,
                        ptrdiff_t resource_at, tr_pid *pid);

/* The registry side of an ending actor (actors/registry.c). */
void tr__registry_forget(tr_runtime *rt, tr_pid pid);
void tr__registry_fini(tr_runtime *rt);

#endif
