/* troupe/api.h — what the library exports.
 *
 * libtroupe is built with -fvisibility=hidden: a function is part of the
 * shared library's interface only if its declaration carries TR_API. So
 * the internal tr__* functions, which other modules of the library call
 * across files, are not exported, cannot be interposed, and cost no PLT
 * indirection; and the interface is exactly what include/ declares
 * (support/check-exports.sh compares the two on every `make test`).
 *
 * Every public header includes this one, so TR_API is always defined
 * before it is used; a program never needs to include it itself.
 */
#ifndef TROUPE_API_H
#define TROUPE_API_H

#if defined(__GNUC__) || defined(__clang__)
#define TR_API __attribute__((visibility("default")))
#else
#define TR_API
#endif

#endif
