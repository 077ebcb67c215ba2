/* sys/simpart.c — partitions of the simulated network: tr_sim_partition
 * and tr_sim_heal (troupe/sim.h).
 *
 * A partition is two groups of endpoints ("HOST" matches every port of
 * that address, "HOST:PORT" one); a path from a to b is cut while some
 * partition has its source in one group and its destination in the other
 * (only a to b when one-way). TCP checks the cut when a segment is due
 * (simtcp.c holds it), UDP when a datagram is sent (it is lost).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "../base/clock.h"
#include "simnet.h"
#include "troupe/error.h"

typedef struct pat {
    tr__saddr a;
    bool any_port;
} pat;

struct tr__part {
    tr__simev ev;       /* its healing, if it has a time */
    pat *g[2];
    size_t n[2];
    bool one_way;
    bool reserved;      /* holds a heap slot */
    struct tr__part *next;
};

static bool parse_port(const char *s, uint16_t *port)
{
    char *end;
    errno = 0;
    unsigned long v = strtoul(s, &end, 10);
    if (*s < '0' || *s > '9' || *end != '\0' || errno != 0 || v == 0 || v > 65535)
        return false;
    *port = (uint16_t)v;
    return true;
}

/* One endpoint: 1.2.3.4, 1.2.3.4:80, ::1, [::1]:80. */
static bool parse_one(char *t, pat *p)
{
    memset(p, 0, sizeof *p);
    p->any_port = true;
    char *host = t, *port = NULL;
    if (*t == '[') {
        char *close = strchr(t, ']');
        if (close == NULL || (close[1] != '\0' && close[1] != ':'))
            return false;
        *close = '\0';
        host = t + 1;
        port = close[1] == ':' ? close + 2 : NULL;
    } else {
        char *colon = strchr(t, ':');
        if (colon != NULL && strchr(colon + 1, ':') == NULL) {
            *colon = '\0';
            port = colon + 1;
        }
    }
    if (inet_pton(AF_INET, host, p->a.ip) == 1)
        p->a.family = AF_INET;
    else if (inet_pton(AF_INET6, host, p->a.ip) == 1)
        p->a.family = AF_INET6;
    else
        return false;
    if (port != NULL) {
        if (!parse_port(port, &p->a.port))
            return false;
        p->any_port = false;
    }
    return true;
}

static int parse_group(const char *g, pat **out, size_t *count)
{
    *out = NULL;
    *count = 0;
    if (g == NULL)
        return TR_EINVAL;
    char *copy = strdup(g);
    size_t cap = strlen(g) / 2 + 1;
    pat *ps = calloc(cap, sizeof *ps);
    if (copy == NULL || ps == NULL) {
        free(copy);
        free(ps);
        return TR_ENOMEM;
    }
    size_t n = 0;
    char *save = NULL;
    for (char *t = strtok_r(copy, " \t", &save); t != NULL; t = strtok_r(NULL, " \t", &save))
        if (n == cap || !parse_one(t, &ps[n++])) {
            n = 0;
            break;
        }
    free(copy);
    if (n == 0) {
        free(ps);
        return TR_EINVAL;
    }
    *out = ps;
    *count = n;
    return 0;
}

static bool in_group(const pat *g, size_t n, const tr__saddr *x)
{
    for (size_t i = 0; i < n; i++)
        if (tr__saddr_same_host(&g[i].a, x) && (g[i].any_port || g[i].a.port == x->port))
            return true;
    return false;
}

bool tr__simnet_cut(const tr__saddr *from, const tr__saddr *to)
{
    for (const struct tr__part *p = tr__w.parts; p != NULL; p = p->next)
        if ((in_group(p->g[0], p->n[0], from) && in_group(p->g[1], p->n[1], to)) ||
            (!p->one_way && in_group(p->g[1], p->n[1], from) && in_group(p->g[0], p->n[0], to)))
            return true;
    return false;
}

static void part_free(struct tr__part *p)
{
    if (p->reserved)
        tr__simnet_reserve(-1);
    free(p->g[0]);
    free(p->g[1]);
    free(p);
}

static void unlink_part(struct tr__part *p)
{
    struct tr__part **q;
    for (q = &tr__w.parts; *q != p; q = &(*q)->next)
        ;
    *q = p->next;
}

void tr__simnet_heal_due(struct tr__part *p)
{
    uint64_t at = p->ev.due;
    unlink_part(p);
    part_free(p);
    tr__simnet_trace(NET_HEAL, 0, at);
    tr__tcp_release_held(at);
}

void tr__simnet_parts_free(void)
{
    while (tr__w.parts != NULL) {
        struct tr__part *p = tr__w.parts;
        tr__w.parts = p->next;
        part_free(p);
    }
}

int tr_sim_partition(const char *a, const char *b, int one_way, uint64_t heal_after_ns)
{
    if (!tr__sim_on())
        return TR_EINVAL;
    tr__simnet_enter();
    struct tr__part *p = calloc(1, sizeof *p);
    if (p == NULL || tr__simnet_reserve(1) != 0) {
        free(p);
        return TR_ENOMEM;
    }
    p->reserved = true;
    int err = parse_group(a, &p->g[0], &p->n[0]);
    if (err == 0)
        err = parse_group(b, &p->g[1], &p->n[1]);
    if (err != 0) {
        part_free(p);
        return err;
    }
    p->one_way = one_way != 0;
    /* At the tail: the order of partitions never matters, but keep it fixed. */
    struct tr__part **q = &tr__w.parts;
    while (*q != NULL)
        q = &(*q)->next;
    *q = p;
    uint64_t now = tr__now_ns();
    tr__simnet_trace(NET_HOLD, (uint64_t)p->n[0] << 32 | p->n[1], now);
    if (heal_after_ns != 0)
        tr__simnet_schedule(&p->ev, EV_HEAL, p, 0,
                            heal_after_ns > UINT64_MAX - now ? UINT64_MAX : now + heal_after_ns);
    return 0;
}

void tr_sim_heal(void)
{
    if (!tr__sim_on())
        return;
    tr__simnet_enter();
    while (tr__w.parts != NULL) {
        struct tr__part *p = tr__w.parts;
        tr__w.parts = p->next;
        tr__simnet_cancel(&p->ev);
        part_free(p);
    }
    uint64_t now = tr__now_ns();
    tr__simnet_trace(NET_HEAL, 0, now);
    tr__tcp_release_held(now);
}
