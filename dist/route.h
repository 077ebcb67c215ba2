/* dist/route.h — the one entry the send path has into the distribution
 * (internal): kept apart from dist.h so that actors/ need not see ei. */
#ifndef TR_DIST_ROUTE_H
#define TR_DIST_ROUTE_H

#include "troupe/actor.h"
#include "troupe/msg.h"

typedef struct tr__worker tr__worker;

/* For a pid whose node bits are not 0 (actors/actor.c, tr__send): hands m
 * (a message, or a link or monitor request or signal) to that node's
 * connection actor. Owns m. 0 (handed over; or the pid's connection is
 * gone: a dead letter, and a link or monitor request is answered noproc,
 * an ask fails, as for a local actor that has ended), TR_ENOPID (this
 * runtime is not a node), TR_EMSGSIZE (past TR_DIST_MSG_MAX), TR_ENOMEM. */
int tr__dist_route(tr_runtime *rt, tr__worker *w, tr_pid from, tr_pid to, tr_msg *m);

/* tr_send of a TR_DIST_TERM to another node's pid (actors/actor.c): the
 * bytes must be one whole term (131 first), TR_EINVAL otherwise; then as
 * tr__dist_route, from the running actor (or from outside). */
int tr__dist_send_term(tr_ctx *cx, tr_pid to, const void *data, size_t len);

#endif
