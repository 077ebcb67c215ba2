/* base/debug.h — debug assertions (internal; every module may include it).
 *
 * TR_ASSERT(cond) states a rule the code relies on and a comment argues
 * (a consumer-only pop, a life or timer state transition, a combination
 * of flags). It is checked in debug builds — every SAN= build, and any
 * build with -DTR_DEBUG (`make DEBUG=1`) — where a broken rule prints
 * where and what, and aborts: it is the library's own bug, and going on
 * would turn it into a heisenbug elsewhere. Release builds compile it out,
 * condition and all, so a rule may be as costly to check as it needs to be.
 *
 * TR_MISUSE(cond, call) is for the caller's bugs in calls that return
 * void and so cannot return an error (tr_exit outside a behaviour, ...):
 * release builds ignore such a call, as documented; debug builds stop at
 * the first one with the call's name, so that the bug is found where it is.
 * Calls that return an error code return it in every build.
 */
#ifndef TR_BASE_DEBUG_H
#define TR_BASE_DEBUG_H

#ifdef TR_DEBUG
#include <stdio.h>
#include <stdlib.h>

#define TR_ASSERT(cond)                                                                   \
    ((cond) ? (void)0                                                                     \
            : (fprintf(stderr, "troupe: %s:%d: %s: rule broken: %s\n", __FILE__, __LINE__, \
                       __func__, #cond),                                                  \
               abort()))

#define TR_MISUSE(cond, call)                                                           \
    ((cond) ? (fprintf(stderr, "troupe: %s misused (%s); ignored in release builds\n", \
                       call, #cond),                                                    \
               abort())                                                                 \
            : (void)0)
#else
#define TR_ASSERT(cond) ((void)0)
#define TR_MISUSE(cond, call) ((void)0)
#endif

#endif
