/* dist/simepmd.c — the simulated EPMD: the name table several nodes of one
 * simulated process register with and look each other up in (dist/epmd.c
 * turns here when tr__sim_on).
 *
 * It keeps what EPMD answers with: per EPMD port, each alive name's port
 * and, since a node name's host is not resolved under simulation (that
 * would be a real lookup), the numeric address the node listens on. A
 * name that registers again gets the next creation, as ALIVE2_X does, so
 * a restarted node's pids differ from its earlier incarnation's. A
 * registration lasts until its node is freed (tr_node_stop), as EPMD's
 * lasts until the registration's connection closes.
 *
 * Fixed-size and process-wide: nothing to free at exit, and a new
 * simulation (tr__sim_epoch) starts from an empty table, so that the same
 * seed gives the same creations in every run of a process.
 */
#include <string.h>

#include "../base/sim.h"
#include "dist.h"

#define NAMES 64

typedef struct entry {
    char alive[TR__NODE_NAME_MAX + 1];
    char addr[64];
    uint64_t owner;     /* the registered node's id; 0: free (creation kept) */
    uint32_t creation;  /* the last one handed out for this name */
    uint16_t epmd_port, port;
} entry;

static struct {
    uint64_t epoch;
    unsigned n;
    entry e[NAMES];
} table;

static void fresh(void)
{
    if (table.epoch != tr__sim_epoch) {
        memset(&table, 0, sizeof table);
        table.epoch = tr__sim_epoch;
    }
}

static entry *find(uint16_t epmd_port, const char *alive)
{
    for (unsigned i = 0; i < table.n; i++)
        if (table.e[i].epmd_port == epmd_port && strcmp(table.e[i].alive, alive) == 0)
            return &table.e[i];
    return NULL;
}

/* Where peers connect: the listen address, a wildcard's loopback. */
static int listen_addr(const char *host, char *out, size_t cap)
{
    if (host == NULL || strcmp(host, "0.0.0.0") == 0)
        host = "127.0.0.1";
    else if (strcmp(host, "::") == 0)
        host = "::1";
    if (strlen(host) >= cap)
        return TR_EINVAL;
    strcpy(out, host);
    return 0;
}

int tr__simepmd_register(tr__dist_node *n, const char *listen_host)
{
    tr__dist_lock();
    fresh();
    entry *e = find(n->epmd_port, n->alive);
    int err = e != NULL && e->owner != 0 ? TR_EEXIST
              : e == NULL && table.n == NAMES ? TR_ENOMEM : 0;
    if (err == 0 && e == NULL) {
        e = &table.e[table.n++];
        strcpy(e->alive, n->alive);
        e->epmd_port = n->epmd_port;
    }
    if (err == 0)
        err = listen_addr(listen_host, e->addr, sizeof e->addr);
    if (err == 0) {
        e->creation = e->creation + 1 != 0 ? e->creation + 1 : 1;
        e->owner = n->id;
        e->port = n->port;
        n->creation = e->creation;
        n->sim_registered = true;
        tr__sim_mix(TR__EV_NET, e->port, e->creation);
    }
    tr__dist_unlock();
    return err;
}

int tr__simepmd_lookup(uint16_t epmd_port, const char *alive, uint16_t *port, char *addr)
{
    tr__dist_lock();
    fresh();
    entry *e = find(epmd_port, alive);
    int err = e == NULL || e->owner == 0 ? TR_EHOSTUNREACH : 0;
    if (err == 0) {
        *port = e->port;
        strcpy(addr, e->addr);
    }
    tr__dist_unlock();
    return err;
}

void tr__simepmd_unregister(tr__dist_node *n)
{
    tr__dist_lock();
    n->sim_registered = false;
    /* A table of an earlier simulation has nothing of n's. */
    entry *e = table.epoch == tr__sim_epoch ? find(n->epmd_port, n->alive) : NULL;
    if (e != NULL && e->owner == n->id)
        e->owner = 0;
    tr__dist_unlock();
}
