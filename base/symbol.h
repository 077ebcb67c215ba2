/* base/symbol.h — a behaviour's name for reports (tr_actor_info, dumps,
 * the watchdog, traces). */
#ifndef TR_BASE_SYMBOL_H
#define TR_BASE_SYMBOL_H

#include <dlfcn.h>
#include <inttypes.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* fn's symbol if dladdr finds one exactly there (exported: a program
 * linked with -rdynamic, or a shared library), else its address in hex.
 * Only an exact match: for a static function dladdr names the nearest
 * exported symbol before it, which would be another function. Any
 * thread. */
static inline void tr__symbol_name(const void *fn, char *buf, size_t size)
{
    Dl_info info;
    if (fn != NULL && dladdr(fn, &info) != 0 && info.dli_sname != NULL &&
        info.dli_saddr == fn)
        snprintf(buf, size, "%s", info.dli_sname);
    else
        snprintf(buf, size, "0x%" PRIxPTR, (uintptr_t)fn);
}

#endif
