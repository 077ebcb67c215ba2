/* sys/simnet_next.c — a stand-in for the simulated network until it lands
 * (the network's sys/ files provide these; this file is then deleted):
 * no network event is ever due, and partitions are refused. */
#include <stdint.h>

#include "troupe/error.h"
#include "troupe/sim.h"

uint64_t tr__simnet_next_ns(void);

uint64_t tr__simnet_next_ns(void)
{
    return UINT64_MAX;
}

int tr_sim_partition(const char *a, const char *b, int one_way, uint64_t heal_after_ns)
{
    (void)a;
    (void)b;
    (void)one_way;
    (void)heal_after_ns;
    return TR_EINVAL;
}

void tr_sim_heal(void)
{
}
