/* troupe/dist.h — a troupe runtime as a node of an Erlang cluster.
 *
 * tr_node_start makes the runtime a distributed node that speaks Erlang's
 * own distribution protocol (EPMD, the version-6 handshake with the cookie
 * challenge, ticks): Erlang, Elixir and Gleam nodes, and other troupe
 * nodes, reach its actors and are reached by them.
 *
 * Remote processes are ordinary tr_pids: a pid whose node bits are not 0
 * names a process of another node, and tr_send works on it unchanged. A
 * table per peer node maps each Erlang pid {node, id, serial, creation} to
 * a tr_pid: the same Erlang pid gives the same tr_pid for as long as its
 * node stays connected; once the connection goes down, every tr_pid given
 * for that node is a dead letter, so a pid of an earlier incarnation never
 * reaches a later one (the peer's new pids come with new tr_pids). Our own
 * actors appear to Erlang as pids of this node: id = the pid's slot,
 * serial = its generation, creation = the one EPMD gave at start.
 *
 * Messages: a troupe message (type, bytes) travels as {Type, <<Bytes>>}.
 * A term of that shape arrives as that type and those bytes; any other
 * term arrives as TR_DIST_TERM whose payload is the term in external
 * format (131 first), and sending a TR_DIST_TERM message sends those bytes
 * back as the same term. m->from is the sender when it is known (Erlang's
 * SEND_SENDER and REG_SEND), else TR_PID_NONE. A TR_DIST_TERM has been
 * checked whole (every length within its bytes), but may nest as deep as
 * its bytes allow, as Erlang's terms may: ei's decoders recurse on
 * nesting, so bound the depth you read (or walk it without recursion).
 *
 * Links, monitors and exit signals work across nodes both ways (tr_link,
 * tr_monitor, tr_demonitor, tr_kill on a remote pid; Erlang's link/1,
 * monitor/2, exit/2 on ours), with the local guarantees (one TR_DOWN per
 * monitor, none after tr_demonitor); when a node connection goes down,
 * every link across it exits and every monitor fires once with
 * TR_EXIT_NOCONNECTION. An Erlang exit reason arrives as the troupe
 * reason of the same name (normal, killed, noproc, shutdown,
 * noconnection), a positive integer as itself, any other term as 1.
 *
 * Big messages and backpressure. A message whose control message and
 * term come to more than 64 KiB goes out in fragments of 64 KiB (Erlang's
 * DFLAG_FRAGMENTS, as OTP's own size), interleaved with ticks and with
 * other senders' messages, so that none waits behind a big one for more
 * than a few fragments; a sender's own messages and signals keep their
 * order behind it. A peer's fragments are put back together, several
 * sequences at once, within TR_DIST_MSG_MAX for the connection. Output a
 * connection has not yet written (the socket's queue and the fragments
 * waiting) is bounded by the busy limit (tr_node_opts.busy_limit, 1 MiB
 * by default as Erlang's dist_buf_busy_limit): past it, an actor that
 * sends to a pid of that node waits after its send, as it would for an
 * overloaded local actor (README, Guarantees: backpressure), until the output
 * drains; nothing is dropped and nothing reordered. Threads outside the
 * runtime never wait. A message over TR_DIST_MSG_MAX is refused.
 *
 * Asks: tr_ask, tr_reply and tr_call work on remote pids between troupe
 * nodes (of the same byte order): a target gone there answers
 * TR_ASK_FAILED as it would here, an ask to a pid of a connection
 * already down fails at once, and one in flight when its connection goes
 * down, or when this node stops, fails then (TR_ASK_NOCONNECTION), with
 * or without a timeout. An Erlang process sees an ask as a plain {Type,
 * <<Bytes>>} message and never answers it: the asker gets its timeout.
 */
#ifndef TROUPE_DIST_H
#define TROUPE_DIST_H

#include <stddef.h>
#include <stdint.h>

#include "actor.h"
#include "api.h"
#include "msgtypes.h" /* TR_DIST_TERM */
#include "pid.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct tr_node_opts {
    const char *name;    /* "name@host" (required): host as peers reach it, short
                            (erl -sname peers) or dotted, or an address (-name) */
    const char *cookie;  /* at most 255 bytes; NULL: $HOME/.erlang.cookie, read and
                            checked as erl does (owner-only, the cookie then only
                            whitespace; a refusal says why on stderr) */
    const char *host;    /* listen address; NULL = 0.0.0.0 */
    uint16_t port;       /* listen port; 0 = any free port */
    uint16_t epmd_port;  /* 0 = $ERL_EPMD_PORT, else 4369 */
    uint64_t tick_ns;    /* a peer silent this long is down; 0 = 60 s (net_ticktime) */
    uint64_t setup_ns;   /* a handshake not done this long after the connection is
                            made fails; 0 = 7 s (net_setuptime) */
    size_t busy_limit;   /* a connection's unwritten output past which senders wait;
                            0 = TR_DIST_BUSY_LIMIT; TR_DIST_BUSY_MIN..TR_DIST_MSG_MAX */
} tr_node_opts;

/* The largest message (its bytes: len, or a TR_DIST_TERM's term) a node
 * connection carries: 128 MiB. tr_send to a remote pid and tr_send_named
 * refuse a larger one with TR_EMSGSIZE and send nothing; a peer's frame,
 * or fragments adding up (all sequences under way together), past it and
 * 64 KiB for the control message close that connection (logged). */
#define TR_DIST_MSG_MAX (UINT32_C(128) << 20)

/* The busy limit's default (Erlang's dist_buf_busy_limit) and floor. */
#define TR_DIST_BUSY_LIMIT ((size_t)1 << 20)
#define TR_DIST_BUSY_MIN   ((size_t)64 << 10)

/* Makes the runtime a node: listens, registers the name with EPMD (and
 * starts `epmd -daemon` if none answers, as erl does), over a connection
 * kept open until tr_node_stop. Blocks the caller for the EPMD exchange
 * (bounded: about 5 s at worst). Errors: TR_EINVAL (no name, a name
 * without '@host', no cookie to be had, a busy limit out of range), TR_EBUSY (the runtime is a node
 * already), TR_EEXIST (EPMD has the name), TR_ETIMEDOUT / TR_ECONNABORTED
 * (no EPMD), the errors of tr_tcp_listen. Under simulation it registers
 * with the simulated EPMD instead and never blocks (docs/simulation.md).
 * A behaviour or outside context. */
TR_API int tr_node_start(tr_ctx *cx, const tr_node_opts *o);

/* Unregisters from EPMD, stops listening and closes every node
 * connection (their pids become dead letters). Call it before
 * tr_runtime_destroy. Errors: TR_ENOTCONN (not a node), TR_EINVAL. A
 * behaviour or outside context. */
TR_API int tr_node_stop(tr_ctx *cx);

/* The node's full name ("name@host"), or NULL when the runtime is not a
 * node. The string lives until tr_node_stop. Any thread. */
TR_API const char *tr_node_name(tr_runtime *rt);

/* Sends (type, bytes) to the process registered as `name` on `node`
 * (Erlang's {Name, Node} ! Msg; REG_SEND). A name crosses as the atom of
 * its characters, its bytes being their UTF-8, both ways: 'été' and
 * '名前' sent from Erlang reach the actors registered as "été" and
 * "名前". To this node's own name the message is delivered here, as
 * {Name, node()} ! Msg is: to the actor registered as `name`, from the
 * caller, as another node's would arrive (a TR_DIST_TERM {Type, <<Bytes>>}
 * of a user type as that type and those bytes, any other term as
 * TR_DIST_TERM); a name nobody holds here makes it a dead letter. With no
 * connection to node yet, the message waits while an actor asks node's
 * EPMD for its port and connects (the caller does not wait: a turn that
 * sends goes on at once); if EPMD does not know the node, does not answer
 * within about 1 s, or cannot be reached, what was sent to the node
 * meanwhile becomes dead letters (with a line on stderr), and the next
 * send looks again. A TR_DIST_TERM message sends its bytes as the term.
 * Errors: TR_EINVAL (bad node; a name empty, past 255 bytes or not UTF-8;
 * a TR_DIST_TERM that is not one term), TR_ENOTCONN (this runtime is not
 * a node), TR_EHOSTUNREACH (node's host does not resolve: resolved in the
 * calling thread, as tr_tcp_connect does), TR_EMSGSIZE, TR_ENOMEM,
 * TR_EAGAIN (actor table full). A behaviour or outside context. */
TR_API int tr_send_named(tr_ctx *cx, const char *name, const char *node, uint32_t type,
                         const void *data, size_t len);

#ifdef __cplusplus
}
#endif

#endif
