/* troupe/msgtypes.h — every reserved message type, in one table.
 *
 * Types from TR_MSG_SYSTEM up belong to the runtime. Each subsystem owns a
 * range of them, listed in TR_MSG_RANGES; each public type is listed in
 * TR_MSG_TYPES with its range, and the asserts at the end check, at
 * compile time, that the ranges are in order without overlap and that
 * every type lies in its own. io.h, net.h and fault.h include this header,
 * so code that used those types keeps compiling. Types the library uses
 * only inside itself take their numbers from the internal range (and its
 * parts, below), in the headers of the modules that use them.
 *
 * To add a type: pick the next free number of its range, define it below,
 * and add it to TR_MSG_TYPES (the `errors` test suite checks the list at
 * run time, and its switch rejects a number used twice).
 */
#ifndef TROUPE_MSGTYPES_H
#define TROUPE_MSGTYPES_H

#include "msg.h"

#ifdef __cplusplus
#define TR__STATIC_ASSERT(cond, what) static_assert(cond, what)
#else
#define TR__STATIC_ASSERT(cond, what) _Static_assert(cond, what)
#endif

/* X(range, first, last): offsets from TR_MSG_SYSTEM, in increasing order.
 * TR_MSG_<range>_FIRST and _LAST are the bounds as message types. */
#define TR_MSG_RANGES(X)                                                                \
    X(IO, 0x0001, 0x001f)       /* descriptors and signals (io.h) */                    \
    X(NET, 0x0020, 0x003f)      /* TCP and UDP (net.h) */                               \
    X(FAULT, 0x0040, 0x005f)    /* exits, monitors, init, dead letters (fault.h) */     \
    X(ASK, 0x0060, 0x006f)      /* request/reply */                                     \
    X(TIMER, 0x0070, 0x007f)    /* timers (none yet: a timer sends its own message) */  \
    X(DIST, 0x0080, 0x008f)     /* Erlang distribution (dist.h) */                      \
    X(INTERNAL, 0x0100, 0xffff) /* the library's own, never seen by a behaviour */

#define TR_MSG_IO_FIRST       (TR_MSG_SYSTEM + 0x0001)
#define TR_MSG_IO_LAST        (TR_MSG_SYSTEM + 0x001f)
#define TR_MSG_NET_FIRST      (TR_MSG_SYSTEM + 0x0020)
#define TR_MSG_NET_LAST       (TR_MSG_SYSTEM + 0x003f)
#define TR_MSG_FAULT_FIRST    (TR_MSG_SYSTEM + 0x0040)
#define TR_MSG_FAULT_LAST     (TR_MSG_SYSTEM + 0x005f)
#define TR_MSG_ASK_FIRST      (TR_MSG_SYSTEM + 0x0060)
#define TR_MSG_ASK_LAST       (TR_MSG_SYSTEM + 0x006f)
#define TR_MSG_TIMER_FIRST    (TR_MSG_SYSTEM + 0x0070)
#define TR_MSG_TIMER_LAST     (TR_MSG_SYSTEM + 0x007f)
#define TR_MSG_DIST_FIRST     (TR_MSG_SYSTEM + 0x0080)
#define TR_MSG_DIST_LAST      (TR_MSG_SYSTEM + 0x008f)
#define TR_MSG_INTERNAL_FIRST (TR_MSG_SYSTEM + 0x0100)
#define TR_MSG_INTERNAL_LAST  (TR_MSG_SYSTEM + 0xffff)

/* Parts of the internal range, one per module (internal: not API). */
#define TR__MSG_FAULT_FIRST (TR_MSG_SYSTEM + 0x0100) /* actors/fault.h */
#define TR__MSG_FAULT_LAST  (TR_MSG_SYSTEM + 0x011f)
#define TR__MSG_SUP_FIRST   (TR_MSG_SYSTEM + 0x0120) /* actors/supervisor.c */
#define TR__MSG_SUP_LAST    (TR_MSG_SYSTEM + 0x013f)
#define TR__MSG_NET_FIRST   (TR_MSG_SYSTEM + 0x0200) /* net/net.h */
#define TR__MSG_NET_LAST    (TR_MSG_SYSTEM + 0x021f)
#define TR__MSG_DIST_FIRST  (TR_MSG_SYSTEM + 0x0220) /* dist/dist.h */
#define TR__MSG_DIST_LAST   (TR_MSG_SYSTEM + 0x023f)

/* ---- descriptors and signals (io.h); payload tr_io_event, or
 * tr_signal_event for TR_SIGNAL ---- */
#define TR_IO_READABLE (TR_MSG_SYSTEM + 0x01) /* data (or EOF) to read */
#define TR_IO_WRITABLE (TR_MSG_SYSTEM + 0x02) /* room to write */
#define TR_IO_HUP      (TR_MSG_SYSTEM + 0x03) /* peer closed (hang-up) */
#define TR_IO_ERROR    (TR_MSG_SYSTEM + 0x04) /* error pending on the descriptor */
#define TR_SIGNAL      (TR_MSG_SYSTEM + 0x05) /* a subscribed signal arrived */

/* ---- TCP and UDP (net.h) ---- */
#define TR_TCP_CONNECTED   (TR_MSG_SYSTEM + 0x20) /* payload: tr_tcp_info */
#define TR_TCP_DATA        (TR_MSG_SYSTEM + 0x21) /* raw framing: a chunk */
#define TR_TCP_LINE        (TR_MSG_SYSTEM + 0x22) /* one line, without "\n" or "\r\n" */
#define TR_TCP_MSGPACK     (TR_MSG_SYSTEM + 0x23) /* payload: one msgpack_object */
#define TR_TCP_THROTTLED   (TR_MSG_SYSTEM + 0x24)
#define TR_TCP_UNTHROTTLED (TR_MSG_SYSTEM + 0x25)
#define TR_TCP_ERROR       (TR_MSG_SYSTEM + 0x26) /* payload: tr_tcp_error */
#define TR_TCP_CLOSED      (TR_MSG_SYSTEM + 0x27) /* payload: tr_tcp_error */
#define TR_UDP_DATAGRAM    (TR_MSG_SYSTEM + 0x28) /* payload: tr_udp_datagram */
#define TR_HTTP_REQUEST    (TR_MSG_SYSTEM + 0x29) /* read with tr_http_request_view */

/* ---- failure and an actor's life (fault.h) ---- */
#define TR_EXIT        (TR_MSG_SYSTEM + 0x40) /* payload: tr_exit_info (trapping actors) */
#define TR_DOWN        (TR_MSG_SYSTEM + 0x41) /* payload: tr_down_info (monitors) */
#define TR_DEAD_LETTER (TR_MSG_SYSTEM + 0x43) /* payload: tr_dead_letter + bytes */

/* ---- request/reply ---- */
#define TR_REPLY      (TR_MSG_SYSTEM + 0x60) /* the answer to a request */
#define TR_ASK_FAILED (TR_MSG_SYSTEM + 0x61) /* a request that got no answer */

/* ---- Erlang distribution (dist.h) ---- */
#define TR_DIST_TERM (TR_MSG_SYSTEM + 0x80) /* payload: one term in external format, 131 first */

/* X(type, range): every public reserved type. */
#define TR_MSG_TYPES(X)                                                                 \
    X(TR_IO_READABLE, IO) X(TR_IO_WRITABLE, IO) X(TR_IO_HUP, IO) X(TR_IO_ERROR, IO)     \
    X(TR_SIGNAL, IO)                                                                    \
    X(TR_TCP_CONNECTED, NET) X(TR_TCP_DATA, NET) X(TR_TCP_LINE, NET)                    \
    X(TR_TCP_MSGPACK, NET) X(TR_TCP_THROTTLED, NET) X(TR_TCP_UNTHROTTLED, NET)          \
    X(TR_TCP_ERROR, NET) X(TR_TCP_CLOSED, NET) X(TR_UDP_DATAGRAM, NET)                  \
    X(TR_HTTP_REQUEST, NET)                                                             \
    X(TR_EXIT, FAULT) X(TR_DOWN, FAULT) X(TR_DEAD_LETTER, FAULT)                        \
    X(TR_REPLY, ASK) X(TR_ASK_FAILED, ASK)                                              \
    X(TR_DIST_TERM, DIST)

/* The ranges: within the reserved space, each non-empty, in order, apart;
 * the internal parts within the internal range, in order, apart. */
TR__STATIC_ASSERT(TR_MSG_IO_FIRST > TR_MSG_SYSTEM, "types start above TR_MSG_SYSTEM");
#define TR__MSG_RANGE_OK(range, first, last)                                            \
    TR__STATIC_ASSERT(TR_MSG_##range##_FIRST == TR_MSG_SYSTEM + (first) &&              \
                          TR_MSG_##range##_LAST == TR_MSG_SYSTEM + (last) &&            \
                          (first) <= (last) && (last) <= 0xffff,                        \
                      "range " #range " matches TR_MSG_RANGES");
TR_MSG_RANGES(TR__MSG_RANGE_OK)
#undef TR__MSG_RANGE_OK
TR__STATIC_ASSERT(TR_MSG_IO_LAST < TR_MSG_NET_FIRST, "IO and NET ranges overlap");
TR__STATIC_ASSERT(TR_MSG_NET_LAST < TR_MSG_FAULT_FIRST, "NET and FAULT ranges overlap");
TR__STATIC_ASSERT(TR_MSG_FAULT_LAST < TR_MSG_ASK_FIRST, "FAULT and ASK ranges overlap");
TR__STATIC_ASSERT(TR_MSG_ASK_LAST < TR_MSG_TIMER_FIRST, "ASK and TIMER ranges overlap");
TR__STATIC_ASSERT(TR_MSG_TIMER_LAST < TR_MSG_DIST_FIRST, "TIMER and DIST ranges overlap");
TR__STATIC_ASSERT(TR_MSG_DIST_LAST < TR_MSG_INTERNAL_FIRST, "DIST and INTERNAL overlap");
TR__STATIC_ASSERT(TR_MSG_INTERNAL_FIRST <= TR__MSG_FAULT_FIRST &&
                      TR__MSG_FAULT_FIRST <= TR__MSG_FAULT_LAST &&
                      TR__MSG_FAULT_LAST < TR__MSG_SUP_FIRST &&
                      TR__MSG_SUP_FIRST <= TR__MSG_SUP_LAST &&
                      TR__MSG_SUP_LAST < TR__MSG_NET_FIRST &&
                      TR__MSG_NET_FIRST <= TR__MSG_NET_LAST &&
                      TR__MSG_NET_LAST < TR__MSG_DIST_FIRST &&
                      TR__MSG_DIST_FIRST <= TR__MSG_DIST_LAST &&
                      TR__MSG_DIST_LAST <= TR_MSG_INTERNAL_LAST,
                  "internal parts overlap or leave the internal range");

/* Every type in its range. */
#define TR__MSG_TYPE_OK(type, range)                                                    \
    TR__STATIC_ASSERT(type >= TR_MSG_##range##_FIRST && type <= TR_MSG_##range##_LAST,  \
                      #type " lies outside range " #range);
TR_MSG_TYPES(TR__MSG_TYPE_OK)
#undef TR__MSG_TYPE_OK

#endif
