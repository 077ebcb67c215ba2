/* troupe.h — an actor runtime for C.
 *
 * Programs are actors: private state plus a behaviour that handles one
 * message at a time, run on a lock-free work-stealing scheduler.
 *
 *   troupe/error.h    error codes, tr_strerror
 *   troupe/pid.h      tr_pid: 64-bit actor names, safe after the actor ends
 *   troupe/msg.h      tr_msg: messages, zero-copy allocation, TR_PAYLOAD
 *   troupe/msgtypes.h the reserved message types, one range per subsystem
 *   troupe/actor.h    tr_actor_spec (behaviour, state, init, on_stop, name),
 *                     tr_spawn_spec, tr_send, tr_self, tr_stop (inside behaviours)
 *   troupe/runtime.h  the runtime: create, run, start/join, stop, stats
 *   troupe/timer.h    timers: tr_send_after, periodic timers, cancel
 *   troupe/io.h       descriptor watches and signals as messages
 *   troupe/net.h      TCP listeners and connections, UDP, framing
 *   troupe/http.h     HTTP/1.1 servers: requests as messages, tr_http_respond
 *   troupe/fault.h    exit reasons, links, monitors, named actors
 *   troupe/ask.h      request/reply: tr_ask, tr_reply, tr_call
 *   troupe/supervisor.h  supervisors: restart strategies and intensity
 *   troupe/dist.h     a node of an Erlang cluster: remote pids, EPMD, handshake
 *   troupe/metrics.h  seeing inside: counters, per-actor figures, top, dumps, /metrics
 *   troupe/version.h  TROUPE_VERSION and its numbers
 *   troupe/api.h      TR_API, the mark of what the library exports
 *
 * Usable from C++ as well: each header wraps its own declarations in
 * extern "C" (so any one of them can be included alone), and this one
 * declares nothing itself, so it needs no guard of its own: wrapping the
 * #includes below would also wrap the system headers they include.
 */
#ifndef TROUPE_H
#define TROUPE_H

#include "troupe/version.h"
#include "troupe/error.h"
#include "troupe/pid.h"
#include "troupe/msg.h"
#include "troupe/msgtypes.h"
#include "troupe/actor.h"
#include "troupe/runtime.h"
#include "troupe/timer.h"
#include "troupe/io.h"
#include "troupe/net.h"
#include "troupe/http.h"
#include "troupe/fault.h"
#include "troupe/ask.h"
#include "troupe/supervisor.h"
#include "troupe/dist.h"
#include "troupe/metrics.h"
#include "troupe/sim.h"

#endif
