/* actors/registry.c — named actors.
 *
 * An open-addressing hash table with linear probing, made on first use.
 * Writers (register, unregister, an actor ending) take a mutex: naming is
 * not a hot path, and growing holds the lock for a while, which a spinning
 * lock would turn into wasted CPU. Readers (tr_whereis) take no lock and
 * write nothing shared, so lookups from many threads do not contend.
 *
 * Buckets are seqlocked (ck_sequence): a bucket's number is odd while a
 * writer changes it, and a reader retries a bucket whose number moved under
 * it, so it never sees half an entry. Every field a reader sees goes
 * through ck_pr, so ThreadSanitizer follows it.
 *
 * Deletion leaves no tombstone: it shifts the entries after the deleted one
 * back into the gap (Knuth's Algorithm R). A table thus holds only live
 * names, and a lookup costs what the live names make it cost, however many
 * came and went before — tombstones would make churn decay lookups until a
 * rebuild, and a rebuild makes a new table (see below). A shift can carry
 * an entry past a reader that is scanning the same run, which would then
 * miss a name that was there all along; so a table counts its shifts (odd
 * while one runs), and a reader that found nothing checks that the count
 * stayed put, or looks again. A hit needs no check: while an entry moves,
 * both of its places hold a true copy.
 *
 * Growth: before the names pass 3/4 of the buckets, a table twice the size
 * is filled and published with one pointer store; writers use the newest
 * only. A reader holds a table pointer for one lookup, so a replaced table
 * is frozen — a consistent snapshot of the moment it was replaced — and
 * must stay readable while a reader may still be in it. It is kept on a
 * list until the runtime is destroyed. Why not reclaim it (epochs, hazard
 * pointers, reader counts): any thread may call tr_whereis, threads the
 * runtime never sees included, and each would have to register with a
 * reclaimer or write a shared counter on every lookup. Keeping old tables
 * costs less than the table in use (sizes double: 1/2 + 1/4 + ... < 1),
 * and only growth makes tables — deletion works in place, so churn never
 * does. The price: the registry never shrinks; its memory follows the peak
 * number of names: 64-byte buckets, at most 8/3 of them per name in the
 * table in use and fewer in the old ones, so under 350 bytes per name
 * (beyond the first 4 KiB table).
 *
 * An ending actor's entry is found in O(1) too: the registry keeps, by slot
 * index (fixed for a slot), the hash of the name its actor registered —
 * 4 bytes per slot up to the highest named one — and probes from there for
 * the pid. The slot itself keeps only the `named` flag (actors/actor.h):
 * its 112 bytes have no room for a hash, and unnamed actors end without
 * touching the registry.
 *
 * Register racing with the actor's end: the registrant publishes the name,
 * marks the actor named, then checks it is still alive; the ending actor
 * publishes its end, then checks the mark (fences between: a light one for
 * the actor, which ends often, and a system call for the registrant, which
 * is rare — base/fence.h). At least one of them sees the other, and
 * whoever does removes the entry.
 */
#include <ck_sequence.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "../base/fence.h"
#include "../base/sim.h"
#include "actors.h"
#include "actor.h"
#include "fault.h"
#include "registry.h"
#include "troupe/error.h"

#define FIRST_BUCKETS 64u /* a power of two */
#define MAX_BUCKETS (UINT64_C(1) << 31)
#define FIRST_SLOTS 1024u
#define WORDS (TR_NAME_MAX / 8)

typedef struct bucket {
    _Alignas(64) ck_sequence_t seq;
    uint32_t hash;
    tr_pid pid; /* TR_PID_NONE: empty */
    uint64_t name[WORDS];
} bucket;

_Static_assert(sizeof(bucket) == 64, "a bucket is one cache line");

typedef struct table {
    uint32_t mask;        /* buckets - 1 */
    ck_sequence_t shifts; /* odd while a deletion moves entries back */
    struct table *older;  /* the one this replaced (writers only) */
    bucket b[];
} table;

typedef struct tr__registry {
    table *table;         /* the newest, the only one writers change */
    pthread_mutex_t lock; /* writers */
    uint64_t seed;
    uint32_t live;        /* names in the table */
    uint32_t slots;       /* entries in slot_hash */
    uint32_t *slot_hash;  /* by slot index: the hash of its actor's name */
    uint64_t retired;     /* buckets of older tables */
    uint64_t probes;      /* buckets read by writers */
    uint32_t keep, set;   /* hash = (hash & keep) | set; all alike for tests */
} tr__registry;

/* Seeded per registry, so that one list of names that collide (a chat
 * server's rooms come from its clients) does not work on every server. A
 * mixer, not a keyed cryptographic hash: a hint, not a defence. */
static uint32_t hash_name(const tr__registry *r, const uint64_t *w)
{
    uint64_t h = r->seed;
    for (int i = 0; i < WORDS; i++) {
        h = (h ^ w[i]) * 0x9e3779b97f4a7c15ull;
        h ^= h >> 32;
    }
    h *= 0xd6e8feb86659fd93ull;
    return ((uint32_t)(h ^ h >> 32) & r->keep) | r->set;
}

static uint64_t new_seed(const void *salt)
{
    uint64_t seed;
    if (getrandom(&seed, sizeof seed, GRND_NONBLOCK) != (ssize_t)sizeof seed) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        seed = ((uint64_t)ts.tv_nsec * 0x9e3779b97f4a7c15ull) ^ (uintptr_t)salt;
    }
    return seed;
}

/* The name in zero-padded words; false if it is empty or too long. */
static bool pack(const char *name, uint64_t *w)
{
    size_t n = name != NULL ? strnlen(name, TR_NAME_MAX) : 0;
    if (n == 0 || n >= TR_NAME_MAX)
        return false;
    memset(w, 0, TR_NAME_MAX);
    memcpy(w, name, n);
    return true;
}

static table *table_new(uint64_t buckets)
{
    size_t size = sizeof(table) + (size_t)buckets * sizeof(bucket);
    table *t = aligned_alloc(_Alignof(bucket), size);
    if (t == NULL)
        return NULL;
    memset(t, 0, size);
    t->mask = (uint32_t)(buckets - 1);
    return t;
}

static tr__registry *registry(tr_runtime *rt, bool create)
{
    tr__registry *r = ck_pr_load_ptr(&tr__actors_of(rt)->registry);
    if (r != NULL || !create)
        return r;
    if ((r = calloc(1, sizeof *r)) == NULL)
        return NULL;
    if ((r->table = table_new(FIRST_BUCKETS)) == NULL ||
        pthread_mutex_init(&r->lock, NULL) != 0) {
        free(r->table);
        free(r);
        return NULL;
    }
    /* Under simulation the buckets, and so the registry's figures, must
     * repeat with the seed. */
    r->seed = tr__sim_on() ? tr__sim_rand() : new_seed(r);
    r->keep = UINT32_MAX;
    if (!ck_pr_cas_ptr(&tr__actors_of(rt)->registry, NULL, r)) {
        pthread_mutex_destroy(&r->lock);
        free(r->table);
        free(r);
        r = ck_pr_load_ptr(&tr__actors_of(rt)->registry);
    }
    return r;
}

/* Writer side: set a bucket's fields inside an odd sequence number. */
static void bucket_write(bucket *b, uint32_t hash, tr_pid pid, const uint64_t *w)
{
    ck_sequence_write_begin(&b->seq);
    ck_pr_store_32(&b->hash, hash);
    ck_pr_store_64(&b->pid, pid);
    for (int i = 0; i < WORDS; i++)
        ck_pr_store_64(&b->name[i], w != NULL ? w[i] : 0);
    ck_sequence_write_end(&b->seq);
}

/* Reader side: a consistent copy of a bucket. */
static void bucket_read(bucket *b, uint32_t *hash, tr_pid *pid, uint64_t *w)
{
    unsigned int s;
    do {
        s = ck_sequence_read_begin(&b->seq);
        *hash = ck_pr_load_32(&b->hash);
        *pid = ck_pr_load_64(&b->pid);
        for (int i = 0; i < WORDS; i++)
            w[i] = ck_pr_load_64(&b->name[i]);
    } while (ck_sequence_read_retry(&b->seq, s));
}

/* Reader side: the pid registered under name w (hash h) in t, or
 * TR_PID_NONE; counts the buckets read in *probes. A miss counts only if
 * no shift ran meanwhile (a hit needs no check: see the top). */
static tr_pid lookup(table *t, const uint64_t *w, uint32_t h, uint32_t *probes)
{
    unsigned int s;
    do {
        s = ck_sequence_read_begin(&t->shifts);
        /* A table always has empty buckets; the bound only stops a scan
         * that shifts keep outrunning, and the retry looks again. */
        for (uint32_t i = 0; i <= t->mask; i++) {
            uint32_t bh;
            tr_pid pid;
            uint64_t name[WORDS];
            bucket_read(&t->b[(h + i) & t->mask], &bh, &pid, name);
            ++*probes;
            if (pid == TR_PID_NONE)
                break;
            if (bh == h && memcmp(name, w, TR_NAME_MAX) == 0)
                return pid;
        }
    } while (ck_sequence_read_retry(&t->shifts, s));
    return TR_PID_NONE;
}

/* The rest are the writers', under the lock: they read buckets plainly,
 * since nobody else changes them. */

/* The bucket holding name w (hash h), or else the empty bucket that ends
 * its probe sequence; *found says which. */
static uint32_t slot_of_name(tr__registry *r, const uint64_t *w, uint32_t h, bool *found)
{
    table *t = r->table;
    for (uint32_t i = h & t->mask;; i = (i + 1) & t->mask) {
        const bucket *b = &t->b[i];
        r->probes++;
        *found = b->pid != TR_PID_NONE;
        if (!*found || (b->hash == h && memcmp(b->name, w, TR_NAME_MAX) == 0))
            return i;
    }
}

/* The bucket holding pid, whose name hashes to h, or UINT32_MAX. */
static uint32_t slot_of_pid(tr__registry *r, tr_pid pid, uint32_t h)
{
    table *t = r->table;
    for (uint32_t i = h & t->mask;; i = (i + 1) & t->mask) {
        tr_pid held = t->b[i].pid;
        r->probes++;
        if (held == pid)
            return i;
        if (held == TR_PID_NONE)
            return UINT32_MAX;
    }
}

/* Empties bucket i, moving back each later entry of its run that the gap
 * would cut off from its home bucket. */
static void erase(tr__registry *r, uint32_t i)
{
    table *t = r->table;
    uint32_t hole = i;
    bool moved = false;
    for (uint32_t j = (i + 1) & t->mask;; j = (j + 1) & t->mask) {
        const bucket *b = &t->b[j];
        r->probes++;
        if (b->pid == TR_PID_NONE)
            break;
        /* From its home to j, b passes the hole: it must fill it. */
        if (((j - b->hash) & t->mask) >= ((j - hole) & t->mask)) {
            if (!moved) { /* the first move: misses must look again */
                ck_sequence_write_begin(&t->shifts);
                moved = true;
            }
            bucket_write(&t->b[hole], b->hash, b->pid, b->name);
            hole = j;
        }
    }
    bucket_write(&t->b[hole], 0, TR_PID_NONE, NULL);
    if (moved)
        ck_sequence_write_end(&t->shifts);
    r->live--;
}

/* Room for one more name: doubles the table before it passes 3/4 full
 * (linear probing slows sharply beyond that). */
static int make_room(tr__registry *r)
{
    table *old = r->table;
    uint64_t buckets = (uint64_t)old->mask + 1;
    if (((uint64_t)r->live + 1) * 4 <= buckets * 3)
        return 0;
    table *t = buckets * 2 <= MAX_BUCKETS ? table_new(buckets * 2) : NULL;
    if (t == NULL)
        return TR_ENOMEM;
    for (uint32_t i = 0; i <= old->mask; i++) {
        const bucket *b = &old->b[i];
        if (b->pid == TR_PID_NONE)
            continue;
        uint32_t j = b->hash & t->mask;
        while (t->b[j].pid != TR_PID_NONE)
            j = (j + 1) & t->mask;
        t->b[j] = *b; /* not yet seen by anyone */
        ck_sequence_init(&t->b[j].seq);
    }
    r->probes += buckets;
    r->retired += buckets;
    t->older = old;
    ck_pr_fence_store();
    ck_pr_store_ptr(&r->table, t);
    return 0;
}

/* Room in slot_hash for slot index i. */
static int slot_room(tr__registry *r, uint32_t i)
{
    if (i < r->slots)
        return 0;
    uint32_t n = r->slots != 0 ? r->slots : FIRST_SLOTS;
    while (n <= i) /* i < 2^26: no overflow */
        n *= 2;
    uint32_t *more = realloc(r->slot_hash, (size_t)n * sizeof *more);
    if (more == NULL)
        return TR_ENOMEM;
    memset(more + r->slots, 0, (size_t)(n - r->slots) * sizeof *more);
    r->slot_hash = more;
    r->slots = n;
    return 0;
}

static bool alive(tr_runtime *rt, tr_pid pid, tr__actor **slot)
{
    tr__actor *a = TR__PID_NODE(pid) == 0 ? tr__table_lookup(&tr__actors_of(rt)->table, pid) : NULL;
    *slot = a;
    return a != NULL && tr__actor_live(a, pid);
}

static int insert(tr_runtime *rt, tr__registry *r, const uint64_t *w, uint32_t h, tr_pid pid)
{
    tr__actor *a;
    bool found;
    int err;
    if (!alive(rt, pid, &a)) /* again: it may have ended, and its slot been reused */
        return TR_ENOPID;
    if (ck_pr_load_16(&a->named))
        return TR_EEXIST; /* one name per actor */
    table *t = r->table;
    uint32_t i = slot_of_name(r, w, h, &found);
    if (found)
        return TR_EEXIST;
    if ((err = slot_room(r, TR__PID_INDEX(pid))) != 0 || (err = make_room(r)) != 0)
        return err;
    if (r->table != t) /* it grew */
        i = slot_of_name(r, w, h, &found);
    bucket_write(&r->table->b[i], h, pid, w);
    r->live++;
    r->slot_hash[TR__PID_INDEX(pid)] = h;
    ck_pr_store_16(&a->named, 1);
    tr__fence_slow(tr__actors_of(rt)->asym_fence); /* the ending actor's is light */
    if (!alive(rt, pid, &a)) {
        /* It ended meanwhile: undo. If its slot already holds a new
         * actor, the mark is on that one, and (registrations being
         * serialised by the lock) it is ours to take back. */
        erase(r, i);
        ck_pr_store_16(&a->named, 0);
        return TR_ENOPID;
    }
    return 0;
}

int tr_register(tr_runtime *rt, const char *name, tr_pid pid)
{
    uint64_t w[WORDS];
    tr__actor *a;
    if (rt == NULL || !pack(name, w) || pid == TR_PID_NONE)
        return TR_EINVAL;
    if (!alive(rt, pid, &a))
        return TR_ENOPID;
    tr__registry *r = registry(rt, true);
    if (r == NULL)
        return TR_ENOMEM;
    uint32_t h = hash_name(r, w);
    pthread_mutex_lock(&r->lock);
    int err = insert(rt, r, w, h, pid);
    pthread_mutex_unlock(&r->lock);
    return err;
}

int tr_unregister(tr_runtime *rt, const char *name)
{
    uint64_t w[WORDS];
    tr__registry *r;
    if (rt == NULL || !pack(name, w) || (r = registry(rt, false)) == NULL)
        return TR_EINVAL;
    uint32_t h = hash_name(r, w);
    bool found;
    pthread_mutex_lock(&r->lock);
    uint32_t i = slot_of_name(r, w, h, &found);
    if (found) {
        tr__actor *a;
        if (alive(rt, r->table->b[i].pid, &a))
            ck_pr_store_16(&a->named, 0);
        erase(r, i);
    }
    pthread_mutex_unlock(&r->lock);
    return found ? 0 : TR_EINVAL;
}

static tr_pid whereis(tr_runtime *rt, const char *name, uint32_t *probes)
{
    uint64_t w[WORDS];
    tr__registry *r;
    if (rt == NULL || !pack(name, w) || (r = registry(rt, false)) == NULL)
        return TR_PID_NONE;
    table *t = ck_pr_load_ptr(&r->table);
    ck_pr_fence_load();
    return lookup(t, w, hash_name(r, w), probes);
}

tr_pid tr_whereis(tr_runtime *rt, const char *name)
{
    uint32_t probes = 0;
    return whereis(rt, name, &probes);
}

void tr__registry_forget(tr_runtime *rt, tr_pid pid)
{
    tr__registry *r = registry(rt, false);
    uint32_t index = TR__PID_INDEX(pid);
    if (r == NULL)
        return;
    pthread_mutex_lock(&r->lock);
    /* Absent when a registration racing with the end took it back. */
    uint32_t i = index < r->slots ? slot_of_pid(r, pid, r->slot_hash[index]) : UINT32_MAX;
    if (i != UINT32_MAX)
        erase(r, i);
    pthread_mutex_unlock(&r->lock);
}

bool tr__registry_name_of(tr_runtime *rt, tr_pid pid, char *out, size_t size)
{
    tr__registry *r = registry(rt, false);
    uint32_t index = TR__PID_INDEX(pid);
    bool found = false;
    if (size != 0)
        out[0] = '\0';
    if (r == NULL || size == 0)
        return false;
    /* Under the writers' lock: a query, not a send, and the slot's hash
     * is only good with the table it was made for. */
    pthread_mutex_lock(&r->lock);
    uint64_t probes = r->probes; /* the stats count the writers' reads */
    uint32_t i = index < r->slots ? slot_of_pid(r, pid, r->slot_hash[index]) : UINT32_MAX;
    r->probes = probes;
    if (i != UINT32_MAX) {
        const char *name = (const char *)r->table->b[i].name;
        size_t n = strnlen(name, TR_NAME_MAX);
        n = n < size - 1 ? n : size - 1;
        memcpy(out, name, n);
        out[n] = '\0';
        found = true;
    }
    pthread_mutex_unlock(&r->lock);
    return found;
}

void tr__registry_fini(tr_runtime *rt)
{
    tr__registry *r = tr__actors_of(rt)->registry;
    if (r == NULL)
        return;
    for (table *t = r->table, *older; t != NULL; t = older) {
        older = t->older;
        free(t);
    }
    free(r->slot_hash);
    pthread_mutex_destroy(&r->lock);
    free(r);
    tr__actors_of(rt)->registry = NULL;
}

void tr__registry_stats_get(tr_runtime *rt, tr__registry_stats *s)
{
    tr__registry *r = registry(rt, false);
    memset(s, 0, sizeof *s);
    if (r == NULL)
        return;
    pthread_mutex_lock(&r->lock);
    s->live = r->live;
    s->buckets = r->table->mask + 1;
    s->retired = r->retired;
    s->probes = r->probes;
    pthread_mutex_unlock(&r->lock);
}

uint32_t tr__registry_lookup_cost(tr_runtime *rt, const char *name)
{
    uint32_t probes = 0;
    whereis(rt, name, &probes);
    return probes;
}

int tr__registry_collide(tr_runtime *rt)
{
    tr__registry *r = registry(rt, true);
    if (r == NULL)
        return TR_ENOMEM;
    pthread_mutex_lock(&r->lock);
    int err = r->live == 0 ? 0 : TR_EINVAL;
    if (err == 0) {
        r->keep = 0;
        r->set = UINT32_MAX; /* the last bucket: runs wrap around the end */
    }
    pthread_mutex_unlock(&r->lock);
    return err;
}
