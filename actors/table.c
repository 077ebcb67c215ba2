/* actors/table.c — the pid table: type-stable actor slots. */
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../base/debug.h"
#include "../mailbox/msg.h"
#include "actor.h"
#include "fault.h"
#include "troupe/error.h"

#define CHUNKS (TR__MAX_SLOTS / TR__CHUNK_SLOTS)

static tr__actor *container_of_free(tr__node *n)
{
    return (tr__actor *)((char *)n - offsetof(tr__actor, state.free.link));
}

/* A chunk's memory, zeroed: its slots 64-byte aligned (every eighth slot
 * starts a line), then the side records (actor.h). calloc,
 * not malloc and memset: memory fresh from the system is not written, so
 * the side records of actors that never run stay out of the resident set
 * (bench/idlemem). The allocation's start is kept just before the slots. */
static tr__actor *chunk_new(void)
{
    char *raw = calloc(1, TR__CHUNK_BYTES + 64 + sizeof(void *));
    if (raw == NULL)
        return NULL;
    uintptr_t at = ((uintptr_t)raw + sizeof(void *) + 63) & ~(uintptr_t)63;
    ((void **)at)[-1] = raw;
    return (tr__actor *)at;
}

static void chunk_free(tr__actor *chunk)
{
    free(((void **)chunk)[-1]);
}

void tr__slot_cache_init(tr__slot_cache *c, tr__node **room)
{
    tr__magazine_init(&c->free, room);
    c->fresh = c->fresh_end = 0;
}

int tr__table_init(tr__table *t)
{
    t->next = 0;
    t->shared_lock = 0;
    tr__magazine_init(&t->shared, NULL); /* not a hot path: no spares */
    t->apart_base = t->apart_len = t->apart_k = 0;
    t->stash = NULL;
    t->chunks = calloc(CHUNKS, sizeof *t->chunks);
    /* Room for every slot, so that a free slot always fits. */
    if (t->chunks == NULL || tr__depot_init(&t->free, TR__MAX_SLOTS / TR__BATCH) != 0) {
        free(t->chunks);
        return TR_ENOMEM;
    }
    return 0;
}

void tr__table_fini(tr__table *t, tr_runtime *rt)
{
    for (uint32_t c = 0; c < CHUNKS; c++) {
        tr__actor *chunk = t->chunks[c];
        if (chunk == NULL)
            continue;
        for (uint32_t i = 0; i < TR__CHUNK_SLOTS; i++) {
            tr__actor *a = &chunk[i];
            tr__mailbox_fini(a);
            if (!(a->life & 1))
                continue;
            /* Alive, whether it ever ran or not: the workers are gone, so
             * this is its end. */
            tr__actor_release(rt, a, TR_EXIT_SHUTDOWN);
            tr__fault_free(tr__fault_get(a));
            tr__fault_set(a, NULL);
            if (a->flags & TR__HEAP_STATE)
                free(a->state.heap);
        }
        chunk_free(chunk);
    }
    free(t->chunks);
    tr__depot_fini(&t->free);
}

/* The chunk holding slot `index`, allocating it if this is its first
 * slot. Chunks are initialised before they are published. */
static tr__actor *chunk_get(tr__table *t, uint32_t index)
{
    tr__actor **cell = &t->chunks[index >> TR__CHUNK_BITS];
    tr__actor *chunk = ck_pr_load_ptr(cell);
    if (chunk != NULL)
        return chunk;

    chunk = chunk_new();
    if (chunk == NULL)
        return NULL;
    uint32_t base = index & ~(TR__CHUNK_SLOTS - 1);
    for (uint32_t i = 0; i < TR__CHUNK_SLOTS; i++) {
        tr__actor *a = &chunk[i];
        tr__mpsc_init_at(&a->mailbox, &a->mailbox_stub, &a->mailbox_end, true);
        a->life = 1u << 1; /* generation 1, not yet alive */
        a->index = base + i;
    }
    ck_pr_fence_store();
    if (!ck_pr_cas_ptr(cell, NULL, chunk)) {
        chunk_free(chunk);
        chunk = ck_pr_load_ptr(cell);
    }
    return chunk;
}

static void shared_lock(tr__table *t)
{
    while (!ck_pr_cas_32(&t->shared_lock, 0, 1))
        ck_pr_stall();
    ck_pr_fence_acquire();
}

static void shared_unlock(tr__table *t)
{
    ck_pr_fence_release();
    ck_pr_store_32(&t->shared_lock, 0);
}

/* The stash: full batches of free slots that the depot refused (its next
 * cell was still being emptied by a preempted thread: depot.h), so that
 * no slot is ever lost. A stack of batches linked through their first
 * slots (state.free.batch); pushed with a compare-and-swap and emptied
 * whole with an exchange, so it has no ABA problem. */
static tr__node *batch_link(tr__node *first)
{
    return &container_of_free(first)->state.free.batch;
}

static void stash_push(tr__table *t, tr__node *batch)
{
    tr__node *link = batch_link(batch), *top = ck_pr_load_ptr(&t->stash);
    do
        link->next = top;
    while (!ck_pr_cas_ptr_value(&t->stash, top, batch, &top));
}

/* One batch from the stash; the others go back to the depot (or to the
 * stash). NULL if the stash is empty. */
static tr__node *stash_take(tr__table *t)
{
    tr__node *batch = ck_pr_fas_ptr(&t->stash, NULL);
    if (batch == NULL)
        return NULL;
    for (tr__node *b = batch_link(batch)->next; b != NULL;) {
        tr__node *next = batch_link(b)->next;
        if (!tr__depot_put(&t->free, b))
            stash_push(t, b);
        b = next;
    }
    return batch;
}

/* How long a thread outside the runtime waits for a put to land before
 * it grows the table after all: a preempted thread is usually back
 * within a time slice; one stopped for longer (a debugger, a host that
 * froze the VM) must not stop spawns with it. */
#define OUTSIDE_WAIT_NS (10 * 1000 * 1000)
#define OUTSIDE_YIELDS 8
#define OUTSIDE_NAP_NS (50 * 1000)

/* A free slot, or NULL: then the caller takes a fresh one. A thread
 * preempted half-way through giving a batch to the depot makes the depot
 * look empty until it runs again (tr__depot_busy: a put claimed, not yet
 * published). A worker takes a fresh slot then: it never waits for
 * another thread, and the table grows by a slot for each such moment it
 * meets. A thread outside the runtime (not on any hot path) waits for the
 * put to land — it yields, then naps — so that a program whose main
 * thread keeps spawning does not grow the table, for good, while free
 * slots are on their way: it takes fresh ones only when none is, or after
 * OUTSIDE_WAIT_NS. (It used to yield 8 times and then grow: 1-2 slots in
 * 2 million spawns from outside in a release build here, and 86-350 with
 * -O0 coverage code, past the slots test's bound.) */
static tr__node *take_free(tr__table *t, tr__magazine *mag)
{
    tr__magazine *m = mag != NULL ? mag : &t->shared;
    tr__node *n = NULL, *batch;
    for (unsigned tries = 0;; tries++) {
        if (mag == NULL)
            shared_lock(t);
        if ((n = tr__magazine_take(m, &t->free)) == NULL && (batch = stash_take(t)) != NULL)
            n = tr__magazine_take_from(m, batch);
        if (mag == NULL)
            shared_unlock(t);
        if (n != NULL || mag != NULL || !tr__depot_busy(&t->free) ||
            tries >= OUTSIDE_YIELDS + OUTSIDE_WAIT_NS / OUTSIDE_NAP_NS)
            return n;
        if (tries < OUTSIDE_YIELDS)
            sched_yield();
        else
            nanosleep(&(struct timespec){.tv_nsec = OUTSIDE_NAP_NS}, NULL);
    }
}

/* The index of a fresh slot: the next of c's run, or the first of a new
 * run that ends at the latest where its chunk does. UINT32_MAX if the
 * table is full. */
static uint32_t take_fresh(tr__table *t, tr__slot_cache *c)
{
    if (c->fresh < c->fresh_end)
        return c->fresh++;
    uint32_t index = ck_pr_load_32(&t->next), run;
    do {
        if (index >= TR__MAX_SLOTS)
            return UINT32_MAX;
        uint32_t room = TR__CHUNK_SLOTS - (index & (TR__CHUNK_SLOTS - 1));
        run = room < TR__FRESH_RUN ? room : TR__FRESH_RUN;
    } while (!ck_pr_cas_32_value(&t->next, index, index + run, &index));
    c->fresh = index + 1;
    c->fresh_end = index + run;
    return index;
}

/* A fresh slot for a thread without a cache: from a run shared by all
 * such threads (under the shared lock), every other slot — the run's
 * odd offsets, then its even ones — so that no two actors spawned one
 * after the other from outside the runtime have neighbouring slots,
 * which share a cache line (a slot is 120 bytes: slots i and i + 2 are
 * 120 bytes apart). Odd first: the last of a run, at an even offset, is
 * not the neighbour of the next run's first. See actor.h, "Spawns from
 * outside". */
static uint32_t take_fresh_apart(tr__table *t)
{
    shared_lock(t);
    if (t->apart_k == t->apart_len) {
        tr__slot_cache run = { .fresh = 0, .fresh_end = 0 };
        uint32_t first = take_fresh(t, &run);
        if (first == UINT32_MAX) {
            shared_unlock(t);
            return UINT32_MAX;
        }
        t->apart_base = first;
        t->apart_len = run.fresh_end - first;
        t->apart_k = 0;
    }
    uint32_t odd = t->apart_len / 2, k = t->apart_k++;
    uint32_t index = t->apart_base + (k < odd ? 2 * k + 1 : 2 * (k - odd));
    shared_unlock(t);
    return index;
}

tr__actor *tr__table_alloc(tr__table *t, tr__slot_cache *c, int *err)
{
    tr__node *n = take_free(t, c != NULL ? &c->free : NULL);
    if (n != NULL)
        return container_of_free(n);
    uint32_t index = c != NULL ? take_fresh(t, c) : take_fresh_apart(t);
    if (index == UINT32_MAX) {
        *err = TR_EAGAIN;
        return NULL;
    }
    tr__actor *chunk = chunk_get(t, index);
    if (chunk == NULL) {
        *err = TR_ENOMEM;
        return NULL;
    }
    return &chunk[index & (TR__CHUNK_SLOTS - 1)];
}

void tr__table_end(tr__actor *a, uint32_t life)
{
    /* Only the incarnation's owner ends it, and once. */
    TR_ASSERT((life & 1) && ck_pr_load_32(&a->life) == life);
    ck_pr_fence_store();
    ck_pr_store_32(&a->life, ((life >> 1) + 1) << 1);
}

/* tr__table_give for a thread without a magazine: out of line, so that
 * the workers' path stays as it was. */
static void give_shared(tr__table *t, tr__actor *a)
{
    shared_lock(t);
    tr__node *refused = tr__magazine_give(&t->shared, &t->free, &a->state.free.link, sizeof *a);
    shared_unlock(t);
    if (refused != NULL)
        stash_push(t, refused);
}

void tr__table_give(tr__table *t, tr__slot_cache *c, tr__actor *a)
{
    /* A slot whose generations are used up is retired, so that a pid is
     * never issued twice. The depot has room for every slot; a batch it
     * refuses (a cell still being emptied) goes to the stash. */
    TR_ASSERT(!(ck_pr_load_32(&a->life) & 1)); /* only an ended slot goes back */
    if ((ck_pr_load_32(&a->life) >> 1) > TR__MAX_GEN)
        return;
    if (c == NULL) {
        give_shared(t, a);
        return;
    }
    tr__node *refused = tr__magazine_give(&c->free, &t->free, &a->state.free.link, sizeof *a);
    if (refused != NULL)
        stash_push(t, refused);
}

uint32_t tr__table_size(tr__table *t)
{
    return ck_pr_load_32(&t->next);
}
