/* actors/registry.c — named actors.
 *
 * An open-addressing table of fixed size, made on first use. Writers
 * (register, unregister, an actor ending) take a spinlock: naming is not
 * a hot path. Readers (tr_whereis) take no lock: each bucket carries a
 * sequence number, odd while a writer changes it, and a reader retries a
 * bucket whose number moved under it. Buckets are never freed or moved
 * while the runtime lives (deletion leaves a tombstone), so a reader never
 * touches freed memory and no epoch reclamation is needed; every field a
 * reader sees goes through ck_pr, so ThreadSanitizer follows it.
 *
 * Register racing with the actor's end: the registrant publishes the name,
 * marks the actor named, then checks it is still alive; the ending actor
 * publishes its end, then checks the mark (fences between). At least one
 * of them sees the other, and whoever does removes the entry.
 */
#include <stdlib.h>
#include <string.h>

#include "../sched/sched.h"
#include "actor.h"
#include "fault.h"
#include "troupe/error.h"

#define BUCKETS 16384 /* a power of two */
#define MAX_NAMES (BUCKETS / 4 * 3)
#define WORDS (TR_NAME_MAX / 8)
#define TOMBSTONE UINT64_MAX

typedef struct bucket {
    uint32_t seq;
    uint32_t hash;
    tr_pid pid; /* TR_PID_NONE: never used; TOMBSTONE: deleted */
    uint64_t name[WORDS];
} bucket;

typedef struct tr__registry {
    bucket b[BUCKETS];
    uint32_t live; /* registered names (tombstones are reused) */
} tr__registry;

static uint32_t hash_name(const uint64_t *w)
{
    uint64_t h = 0xcbf29ce484222325ull;
    for (int i = 0; i < WORDS; i++) {
        h ^= w[i];
        h *= 0x100000001b3ull;
        h ^= h >> 29;
    }
    return (uint32_t)(h ^ h >> 32);
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

static tr__registry *registry(tr_runtime *rt, bool create)
{
    tr__registry *r = ck_pr_load_ptr(&rt->registry);
    if (r != NULL || !create)
        return r;
    r = calloc(1, sizeof *r);
    if (r == NULL)
        return NULL;
    if (!ck_pr_cas_ptr(&rt->registry, NULL, r)) {
        free(r);
        r = ck_pr_load_ptr(&rt->registry);
    }
    return r;
}

static void lock(tr_runtime *rt)
{
    while (!ck_pr_cas_32(&rt->registry_lock, 0, 1))
        ck_pr_stall();
    ck_pr_fence_acquire();
}

static void unlock(tr_runtime *rt)
{
    ck_pr_fence_release();
    ck_pr_store_32(&rt->registry_lock, 0);
}

/* Writer side: set a bucket's fields inside an odd sequence number. */
static void bucket_write(bucket *b, uint32_t hash, tr_pid pid, const uint64_t *w)
{
    ck_pr_store_32(&b->seq, b->seq + 1);
    ck_pr_fence_store();
    ck_pr_store_32(&b->hash, hash);
    ck_pr_store_64(&b->pid, pid);
    for (int i = 0; i < WORDS; i++)
        ck_pr_store_64(&b->name[i], w != NULL ? w[i] : 0);
    ck_pr_fence_store();
    ck_pr_store_32(&b->seq, b->seq + 1);
}

/* Reader side: a consistent copy of a bucket. */
static void bucket_read(bucket *b, uint32_t *hash, tr_pid *pid, uint64_t *w)
{
    for (;;) {
        uint32_t s = ck_pr_load_32(&b->seq);
        if (s & 1) {
            ck_pr_stall();
            continue;
        }
        ck_pr_fence_load();
        *hash = ck_pr_load_32(&b->hash);
        *pid = ck_pr_load_64(&b->pid);
        for (int i = 0; i < WORDS; i++)
            w[i] = ck_pr_load_64(&b->name[i]);
        ck_pr_fence_load();
        if (ck_pr_load_32(&b->seq) == s)
            return;
    }
}

/* The bucket holding name (and the pid it held when read), or NULL.
 * Readers and writers alike. */
static bucket *find(tr__registry *r, const uint64_t *w, uint32_t h, tr_pid *found)
{
    for (uint32_t i = 0; i < BUCKETS; i++) {
        bucket *b = &r->b[(h + i) & (BUCKETS - 1)];
        uint32_t bh;
        tr_pid pid;
        uint64_t name[WORDS];
        bucket_read(b, &bh, &pid, name);
        if (pid == TR_PID_NONE)
            return NULL;
        if (pid != TOMBSTONE && bh == h && memcmp(name, w, TR_NAME_MAX) == 0) {
            *found = pid;
            return b;
        }
    }
    return NULL;
}

static bool alive(tr_runtime *rt, tr_pid pid, tr__actor **slot)
{
    tr__actor *a = TR_PID_NODE(pid) == 0 ? tr__table_lookup(&rt->table, pid) : NULL;
    *slot = a;
    return a != NULL && ck_pr_load_32(&a->life) == (TR_PID_GEN(pid) << 1 | 1) &&
           ck_pr_load_32(&a->aux) == 0;
}

static void erase(tr__registry *r, bucket *b)
{
    bucket_write(b, 0, TOMBSTONE, NULL);
    r->live--;
}

int tr_register(tr_runtime *rt, const char *name, tr_pid pid)
{
    uint64_t w[WORDS];
    tr__actor *a;
    if (rt == NULL || !pack(name, w) || pid == TR_PID_NONE)
        return TR_EINVAL;
    tr__registry *r = registry(rt, true);
    if (r == NULL)
        return TR_ENOMEM;
    if (!alive(rt, pid, &a))
        return TR_ENOPID;
    uint32_t h = hash_name(w);

    lock(rt);
    int err = 0;
    tr_pid holder;
    if (find(r, w, h, &holder) != NULL || ck_pr_load_16(&a->named)) {
        err = TR_EEXIST;
    } else if (r->live >= MAX_NAMES) {
        err = TR_EAGAIN;
    } else {
        bucket *b = NULL;
        for (uint32_t i = 0; i < BUCKETS; i++) {
            b = &r->b[(h + i) & (BUCKETS - 1)];
            if (b->pid == TR_PID_NONE || b->pid == TOMBSTONE)
                break;
        }
        bucket_write(b, h, pid, w);
        r->live++;
        ck_pr_store_16(&a->named, 1);
        ck_pr_fence_memory();
        if (!alive(rt, pid, &a)) {
            /* It ended meanwhile: undo. If its slot already holds a new
             * actor, the mark is on that one, and (registrations being
             * serialised by the lock) it is ours to take back. */
            erase(r, b);
            ck_pr_store_16(&a->named, 0);
            err = TR_ENOPID;
        }
    }
    unlock(rt);
    return err;
}

int tr_unregister(tr_runtime *rt, const char *name)
{
    uint64_t w[WORDS];
    if (rt == NULL || !pack(name, w))
        return TR_EINVAL;
    tr__registry *r = registry(rt, false);
    if (r == NULL)
        return TR_EINVAL;
    lock(rt);
    tr_pid holder;
    bucket *b = find(r, w, hash_name(w), &holder);
    int err = TR_EINVAL;
    if (b != NULL) {
        tr__actor *a;
        if (alive(rt, b->pid, &a))
            ck_pr_store_16(&a->named, 0);
        erase(r, b);
        err = 0;
    }
    unlock(rt);
    return err;
}

tr_pid tr_whereis(tr_runtime *rt, const char *name)
{
    uint64_t w[WORDS];
    tr__registry *r;
    tr_pid pid = TR_PID_NONE;
    if (rt == NULL || !pack(name, w) || (r = registry(rt, false)) == NULL)
        return TR_PID_NONE;
    find(r, w, hash_name(w), &pid);
    return pid;
}

void tr__registry_forget(tr_runtime *rt, tr_pid pid)
{
    tr__registry *r = registry(rt, false);
    if (r == NULL)
        return;
    lock(rt);
    for (uint32_t i = 0; i < BUCKETS; i++)
        if (r->b[i].pid == pid)
            erase(r, &r->b[i]);
    unlock(rt);
}

void tr__registry_fini(tr_runtime *rt)
{
    free(rt->registry);
    rt->registry = NULL;
}
