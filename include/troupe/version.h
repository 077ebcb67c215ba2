/* troupe/version.h — the library's version, in one place.
 *
 * The Makefile reads these three numbers to name the shared library
 * (libtroupe.so.MAJOR.MINOR.PATCH, SONAME libtroupe.so.MAJOR) and to fill
 * in troupe.pc; nothing else spells the version out.
 *
 * While MAJOR is 0 the interface is still settling: a MINOR step may change
 * it (0.1 -> 0.2 is the API 2.0 of issue 12). From 1.0 on, MAJOR changes
 * exactly when the ABI breaks, so that the SONAME keeps programs built
 * against an older interface from loading a newer, incompatible one.
 */
#ifndef TROUPE_VERSION_H
#define TROUPE_VERSION_H

#define TROUPE_VERSION_MAJOR 0
#define TROUPE_VERSION_MINOR 2
#define TROUPE_VERSION_PATCH 0

/* Two steps, so that the numbers are expanded before they are quoted. */
#define TR__STRINGIFY(x) #x
#define TR__VERSION_STR(a, b, c) TR__STRINGIFY(a) "." TR__STRINGIFY(b) "." TR__STRINGIFY(c)

/* "MAJOR.MINOR.PATCH", e.g. "0.2.0". */
#define TROUPE_VERSION \
    TR__VERSION_STR(TROUPE_VERSION_MAJOR, TROUPE_VERSION_MINOR, TROUPE_VERSION_PATCH)

/* MAJOR, MINOR, PATCH as one number for #if: TROUPE_VERSION_NUMBER >= 0x000200. */
#define TROUPE_VERSION_NUMBER \
    (TROUPE_VERSION_MAJOR << 16 | TROUPE_VERSION_MINOR << 8 | TROUPE_VERSION_PATCH)

#endif
