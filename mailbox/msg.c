/* mailbox/msg.c — messages from per-thread pools.
 *
 * Blocks come in seven size classes, 64 to 4096 bytes (header included);
 * larger messages are plain malloc. Each class has a magazine per thread
 * and a process-wide depot (see depot.h), shared by every runtime: a
 * message is only memory, so pools need not belong to one runtime.
 */
#include "msg.h"

#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "depot.h"
#include "troupe/error.h"

#define CLASSES TR__MSG_CLASSES
#define MIN_SHIFT 6 /* 64-byte blocks */
#define LARGE CLASSES

/* The header's layout, as troupe/msg.h spells it for C and C++ alike
 * (tests/cxx/hello.cc asserts the same figures from C++): the link first,
 * since a queue node is cast back to its message (actors/actor.c); then a
 * 32-byte header with the payload 16-byte aligned after it, in either
 * language, so that a C++ program and the library agree on every offset. */
_Static_assert(offsetof(tr_msg, tr__link) == 0, "a message is its own queue node");
_Static_assert(offsetof(tr_msg, data) == 32, "the header is 32 bytes");
_Static_assert(sizeof(tr_msg) == 32, "no padding after the header");
_Static_assert(_Alignof(tr_msg) == 16, "the payload is 16-byte aligned");

_Static_assert(sizeof(tr__msg_cache) == 192, "msg.h: the cache stays small for initial-exec TLS");

/* Per class, the depot holds at most 4 MiB of blocks. */
#define DEPOT_BYTES (UINT32_C(4) << 20)

_Static_assert(TR__MSG_SMALL + sizeof(tr_msg) == (size_t)1 << MIN_SHIFT,
               "msg.h's small messages are class 0");

typedef tr__msg_cache cache;

static tr__depot depots[CLASSES];
static pthread_once_t depots_once = PTHREAD_ONCE_INIT;
static int depots_ok;
static pthread_key_t cache_key;
static uint64_t pool_mallocs;
/* The model again: GCC takes it from the definition, not the extern. */
_Thread_local cache tr__msg_tls TR__TLS_MODEL;

static unsigned class_of(uint32_t len)
{
    size_t size = sizeof(tr_msg) + (size_t)len;
    if (size <= (size_t)1 << MIN_SHIFT)
        return 0;
    unsigned c = (unsigned)(64 - __builtin_clzll((unsigned long long)size - 1)) - MIN_SHIFT;
    return c < CLASSES ? c : LARGE;
}

static void free_chain(tr__node *n)
{
    while (n != NULL) {
        tr__node *next = n->next;
        free(n);
        n = next;
    }
}

/* Thread exit: the spare chains are full and can go to the depot; the
 * partial current chain is freed. */
static void cache_flush(void *p)
{
    cache *c = p;
    for (unsigned i = 0; i < CLASSES; i++) {
        tr__magazine *m = &c->mag[i];
        for (uint32_t k = 0; k < m->spares; k++)
            if (!tr__depot_put(&depots[i], m->spare[k]))
                free_chain(m->spare[k]);
        free_chain(m->cur);
    }
    free(c->mag[0].spare); /* the room of every class (cache_register) */
    for (unsigned i = 0; i < CLASSES; i++)
        tr__magazine_init(&c->mag[i], NULL);
    free(c->scratch);
    c->scratch = NULL;
    c->scratch_room = 0;
    c->registered = 0;
    c->flushed = 1;
}

static void reserve_fill(void); /* below: the reserve */

static void depots_init(void)
{
    for (unsigned i = 0; i < CLASSES; i++) {
        unsigned blocks_per_batch_bytes = TR__BATCH << (MIN_SHIFT + i);
        unsigned capacity = DEPOT_BYTES / blocks_per_batch_bytes;
        if (tr__depot_init(&depots[i], capacity) != 0)
            return;
    }
    if (pthread_key_create(&cache_key, cache_flush) != 0)
        return;
    reserve_fill();
    depots_ok = 1;
}

/* First use on this thread: set the pools up and register the cache for
 * flushing at thread exit. NULL if that fails, or if the thread is
 * exiting and its cache was flushed (a message sent from another key's
 * destructor: registering again would leave what it cached to no
 * destructor); then every message is a plain malloc. Kept out of line
 * so that my_cache inlines. */
static __attribute__((noinline)) cache *cache_register(cache *c)
{
    pthread_once(&depots_once, depots_init);
    if (!depots_ok || c->flushed)
        return NULL;
    tr__node **room = calloc((size_t)CLASSES * TR__MAG_SPARES, sizeof *room);
    if (room == NULL || pthread_setspecific(cache_key, c) != 0) {
        free(room);
        return NULL;
    }
    for (unsigned i = 0; i < CLASSES; i++)
        tr__magazine_init(&c->mag[i], room + i * TR__MAG_SPARES);
    c->registered = 1;
    return c;
}

/* The calling thread's cache, or NULL if pools could not be set up. */
static inline cache *my_cache(void)
{
    cache *c = &tr__msg_tls;
    return c->registered ? c : cache_register(c);
}

tr_msg *tr__msg_new_slow(uint32_t type, uint32_t len)
{
    unsigned cls = class_of(len);
    tr_msg *m = NULL;
    cache *c = cls == LARGE ? NULL : my_cache();

    if (c != NULL)
        m = (tr_msg *)tr__magazine_take(&c->mag[cls], &depots[cls]);
    if (m == NULL) {
        size_t size = cls == LARGE ? sizeof(tr_msg) + len : (size_t)1 << (MIN_SHIFT + cls);
        m = malloc(size);
        if (m == NULL)
            return NULL;
        ck_pr_inc_64(&pool_mallocs);
    }
    return tr__msg_init(m, type, len);
}

void tr__msg_release_slow(tr_msg *m)
{
    unsigned cls = class_of(m->len);
    cache *c = cls == LARGE ? NULL : my_cache();
    if (c == NULL) {
        free(m);
        return;
    }
    free_chain(tr__magazine_give(&c->mag[cls], &depots[cls], &m->tr__link,
                                  (size_t)1 << (MIN_SHIFT + cls)));
}

/* ---- the reserve ----
 * Some messages are owed: the runtime sends them on an actor's behalf,
 * and a promise rests on each — an exit signal to a link, a DOWN to a
 * monitor, an ask's failure, a readiness event (edge-triggered: the next
 * one may never come). When memory runs out there is no one to return
 * TR_ENOMEM to, and a lost one breaks the promise for good. So a few
 * blocks are held back for them: RESERVE blocks of the 128-byte class
 * (room for any of them), made with the pools, taken only when the pools
 * and malloc both fail (tr__msg_new_owed), and filled up again by the
 * next owed message that finds memory. A shortage longer than that still
 * loses some, said once on stderr. A taken block goes back to
 * the pools like any other (a block in a smaller class's pool is fine).
 * Cold: the reserve is touched only when an allocation fails, or while
 * it is not full; a lock is enough. */
#define RESERVE 256
#define RESERVE_CLASS 1

static pthread_mutex_t reserve_lock = PTHREAD_MUTEX_INITIALIZER;
static tr__node *reserve;
static uint32_t reserved; /* blocks in it; read without the lock to see if it is full */
static uint64_t owed_lost; /* owed messages lost: the first is said on stderr */

/* Tops the reserve up while memory lasts. */
static void reserve_fill(void)
{
    pthread_mutex_lock(&reserve_lock);
    while (reserved < RESERVE) {
        tr__node *n = malloc((size_t)1 << (MIN_SHIFT + RESERVE_CLASS));
        if (n == NULL)
            break;
        n->next = reserve;
        reserve = n;
        ck_pr_store_32(&reserved, reserved + 1);
    }
    pthread_mutex_unlock(&reserve_lock);
}

static tr_msg *reserve_take(void)
{
    pthread_mutex_lock(&reserve_lock);
    tr__node *n = reserve;
    if (n != NULL) {
        reserve = n->next;
        ck_pr_store_32(&reserved, reserved - 1);
    }
    pthread_mutex_unlock(&reserve_lock);
    return (tr_msg *)n;
}

tr_msg *tr__msg_new_owed(uint32_t type, uint32_t len)
{
    tr_msg *m = tr__msg_new(type, len);
    if (m != NULL) {
        if (ck_pr_load_32(&reserved) < RESERVE)
            reserve_fill();
        return m;
    }
    if (sizeof(tr_msg) + (size_t)len <= (size_t)1 << (MIN_SHIFT + RESERVE_CLASS) &&
        (m = reserve_take()) != NULL)
        return tr__msg_init(m, type, len);
    if (ck_pr_faa_64(&owed_lost, 1) == 0)
        fprintf(stderr, "troupe: out of memory: messages the runtime owes actors (exit "
                        "signals, DOWN, ask failures, readiness) are being lost\n");
    return NULL;
}

tr_msg *tr__scratch_msg_room(uint32_t type, size_t room)
{
    cache *c = my_cache();
    if (c == NULL)
        return NULL;
    if (room < TR__SCRATCH)
        room = TR__SCRATCH;
    if (c->scratch_room < room) {
        tr_msg *m = realloc(c->scratch, sizeof(tr_msg) + room);
        if (m == NULL)
            return NULL;
        c->scratch = m;
        c->scratch_room = room;
    }
    c->scratch->type = type;
    c->scratch->from = c->scratch->to = TR_PID_NONE;
    c->scratch->len = 0;
    return c->scratch;
}

tr_msg *tr__scratch_msg(uint32_t type)
{
    return tr__scratch_msg_room(type, TR__SCRATCH);
}

uint64_t tr__msg_pool_mallocs(void)
{
    return ck_pr_load_64(&pool_mallocs);
}

tr_msg *tr_msg_alloc(uint32_t type, size_t len)
{
    if (type >= TR_MSG_SYSTEM || len > TR_MSG_MAX_LEN)
        return NULL;
    return tr__msg_new(type, (uint32_t)len);
}

void tr_msg_free(tr_msg *m)
{
    if (m != NULL)
        tr__msg_release(m);
}
