/* actors/registry.h — what the name registry tells tests about itself
 * (internal). The rest of its interface is tr__registry_forget and
 * tr__registry_fini in fault.h, and the tr_register family in
 * troupe/fault.h.
 *
 * Tests assert on counts, not times: how many buckets an operation reads
 * is what decides its cost, and it does not depend on the machine.
 */
#ifndef TR_ACTORS_REGISTRY_H
#define TR_ACTORS_REGISTRY_H

#include <stdint.h>

#include "troupe/actor.h"

typedef struct tr__registry_stats {
    uint32_t live;      /* names registered now */
    uint32_t buckets;   /* size of the table in use */
    uint64_t retired;   /* buckets of the tables it replaced, kept until destroy */
    uint64_t probes;    /* buckets read by register, unregister and actor ends */
} tr__registry_stats;

/* A snapshot (all zero before the first registration). Any thread. */
void tr__registry_stats_get(tr_runtime *rt, tr__registry_stats *s);

/* The buckets tr_whereis(rt, name) reads if nothing changes meanwhile;
 * 0 for a bad name or before the first registration. Any thread. */
uint32_t tr__registry_lookup_cost(tr_runtime *rt, const char *name);

/* From now on every name hashes alike (and starts its probe sequence at
 * the table's last bucket), so that all names form one run that wraps
 * around: for tests of moving entries only. Before any name is registered;
 * errors: TR_EINVAL (names are registered), TR_ENOMEM. */
int tr__registry_collide(tr_runtime *rt);

#endif
