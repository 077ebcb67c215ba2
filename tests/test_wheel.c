/* test_wheel.c — the reactor's hierarchical timing wheel (reactor/wheel.h),
 * tested as the plain single-threaded data structure it is: entries at
 * random due ticks on every level (and at or before now) fire exactly once,
 * never before their due tick and never after the advance that reaches it,
 * in due order, whatever the sizes of the steps; remove() removes;
 * tr__wheel_next() is never later than the earliest pending entry; fire
 * callbacks may re-insert (the periodic-timer pattern); advancing to
 * tr__wheel_next() reaches even the farthest entry in a few calls; and a
 * sweep, a few entries at a time between inserts, removes and advances,
 * takes out exactly the entries it is told are dead, each once, and
 * every one of them that stayed in its slot while it went by.
 *
 * "Effective due" below is the tick an entry must fire at: its due tick,
 * or now + 1 for one inserted when already due (see tr__wheel_insert). */
#include "tests.h"

#include <stdlib.h>
#include <string.h>

#include "../reactor/wheel.h"

#define LEVEL_TICKS(l) (UINT64_C(1) << (6 * (l)))
/* The random test files entries at most this far ahead: every level, and
 * all but the last top-level slot of the span. The last stretch of the span
 * and the entries beyond it have their own test (far_future_*), which fails
 * fast where a random test would step through ~2^30 ticks one by one. */
#define RANDOM_AHEAD (TR__WHEEL_SPAN - LEVEL_TICKS(5))

/* ---- entries, a min-heap of pending ones, failure reporting ------------- */

enum { ST_NEW = 0, ST_PENDING, ST_FIRED, ST_REMOVED, ST_SWEPT };

struct item {
    tr__wheel_entry e;    /* the wheel hands back this pointer */
    uint64_t eff;         /* effective due tick of the current filing */
    uint32_t id;
    int state;
    uint32_t pos;         /* index in the pending array */
    uint32_t fires;
    uint64_t period;      /* periodic test: re-insert eff + period; 0 = one-shot */
    uint32_t max_fires;   /* periodic test: stop re-inserting after this many */
    int reinsert_past;    /* periodic test: re-insert with a due tick <= now */
    int dead;             /* sweep tests: the sweep is to take it out */
    int before_sweep;     /* sweep tests: filed before the sweep began */
};

struct hnode {
    uint64_t eff;
    struct item *it;
};

struct harness {
    tr__wheel w;
    struct item *items;
    uint32_t n_items;
    struct item **pend; /* pending entries, unordered */
    uint32_t n_pend;
    struct hnode *heap; /* min-heap on eff; stale nodes skipped lazily */
    size_t heap_n, heap_cap;
    uint64_t to;        /* target of the advance in progress */
    uint64_t last_eff;  /* effective due of the last entry fired */
    uint64_t fired;
    unsigned long failures;
    uint64_t seed;
};

static void fail(struct harness *h, const char *what, const struct item *it, uint64_t a,
                 uint64_t b)
{
    if (h->failures++ < 5)
        printf("\n    wheel (seed %#" PRIx64 "): %s: entry %u due %" PRIu64 " (eff %" PRIu64
               "), %" PRIu64 " / %" PRIu64 ", wheel now %" PRIu64 "\n",
               h->seed, what, it != NULL ? it->id : 0u, it != NULL ? it->e.due : 0,
               it != NULL ? it->eff : 0, a, b, h->w.now);
}

static void heap_push(struct harness *h, struct item *it)
{
    if (h->heap_n == h->heap_cap) {
        h->heap_cap = h->heap_cap ? h->heap_cap * 2 : 1024;
        h->heap = realloc(h->heap, h->heap_cap * sizeof *h->heap);
        CU_ASSERT_FATAL(h->heap != NULL);
    }
    size_t i = h->heap_n++;
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (h->heap[p].eff <= it->eff)
            break;
        h->heap[i] = h->heap[p];
        i = p;
    }
    h->heap[i] = (struct hnode){ it->eff, it };
}

static void heap_pop(struct harness *h)
{
    struct hnode last = h->heap[--h->heap_n];
    size_t i = 0;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= h->heap_n)
            break;
        if (c + 1 < h->heap_n && h->heap[c + 1].eff < h->heap[c].eff)
            c++;
        if (h->heap[c].eff >= last.eff)
            break;
        h->heap[i] = h->heap[c];
        i = c;
    }
    if (h->heap_n > 0)
        h->heap[i] = last;
}

/* The earliest effective due tick among pending entries, UINT64_MAX if none. */
static uint64_t min_pending(struct harness *h)
{
    while (h->heap_n > 0) {
        struct hnode top = h->heap[0];
        if (top.it->state == ST_PENDING && top.it->eff == top.eff)
            return top.eff;
        heap_pop(h);
    }
    return UINT64_MAX;
}

static void pend_add(struct harness *h, struct item *it)
{
    it->pos = h->n_pend;
    h->pend[h->n_pend++] = it;
}

static void pend_del(struct harness *h, struct item *it)
{
    struct item *last = h->pend[--h->n_pend];
    h->pend[it->pos] = last;
    last->pos = it->pos;
}

static void harness_init(struct harness *h, uint64_t now, uint32_t n_items, uint64_t seed)
{
    memset(h, 0, sizeof *h);
    tr__wheel_init(&h->w, now);
    h->items = calloc(n_items, sizeof *h->items);
    h->pend = calloc(n_items, sizeof *h->pend);
    CU_ASSERT_FATAL(h->items != NULL && h->pend != NULL);
    h->n_items = n_items;
    h->seed = seed;
    for (uint32_t i = 0; i < n_items; i++)
        h->items[i].id = i;
}

static void harness_fini(struct harness *h)
{
    free(h->items);
    free(h->pend);
    free(h->heap);
}

/* Files `it` at due tick `due`, seen from the wheel's current tick. */
static void file_item(struct harness *h, struct item *it, uint64_t due)
{
    it->e.due = due;
    it->eff = due > h->w.now ? due : h->w.now + 1;
    it->state = ST_PENDING;
    uint64_t before = h->w.count;
    tr__wheel_insert(&h->w, &it->e);
    if (h->w.count != before + 1)
        fail(h, "count after insert", it, h->w.count, before + 1);
    pend_add(h, it);
    heap_push(h, it);
}

static void remove_item(struct harness *h, struct item *it)
{
    uint64_t before = h->w.count;
    tr__wheel_remove(&h->w, &it->e);
    if (h->w.count + 1 != before)
        fail(h, "count after remove", it, h->w.count, before - 1);
    it->state = ST_REMOVED;
    pend_del(h, it);
}

/* The fire callback: checks the entry was pending, is due by the advance
 * in progress (never early), and comes no earlier than the last one fired
 * (due order). A periodic entry is re-inserted from inside the callback. */
static void on_fire(tr__wheel_entry *e, void *arg)
{
    struct harness *h = arg;
    struct item *it = (struct item *)e;
    if (it < h->items || it >= h->items + h->n_items) {
        fail(h, "fired an entry that was never inserted", NULL, 0, 0);
        return;
    }
    if (it->state != ST_PENDING) {
        fail(h, it->state == ST_REMOVED ? "removed entry fired"
                : it->state == ST_SWEPT ? "swept entry fired" : "entry fired twice", it,
             it->fires, 0);
        return;
    }
    if (it->eff > h->to)
        fail(h, "fired early: effective due tick / advance target", it, it->eff, h->to);
    if (e->due > h->w.now)
        fail(h, "fired while the wheel's tick is before its due tick", it, e->due, h->w.now);
    if (it->eff < h->last_eff)
        fail(h, "fired out of due order: effective due / previous one's", it, it->eff,
             h->last_eff);
    h->last_eff = it->eff;
    it->fires++;
    h->fired++;
    it->state = ST_FIRED;
    pend_del(h, it);

    if (it->period != 0 && it->fires < it->max_fires) {
        uint64_t due = it->reinsert_past ? h->w.now - (it->fires % 2) : it->eff + it->period;
        file_item(h, it, due);
    }
}

/* Advances to `to` and checks what every advance must leave behind. */
static void advance_to(struct harness *h, uint64_t to)
{
    uint64_t old_now = h->w.now;
    h->to = to;
    tr__wheel_advance(&h->w, to, on_fire, h);
    uint64_t want_now = to > old_now ? to : old_now;
    if (h->w.now != want_now)
        fail(h, "wheel tick after advance / expected", NULL, h->w.now, want_now);
    uint64_t first = min_pending(h);
    if (first != UINT64_MAX && first <= to)
        fail(h, "an entry due by the advance target did not fire: due / target", NULL, first,
             to);
    if (h->w.count != h->n_pend)
        fail(h, "wheel count / pending entries", NULL, h->w.count, h->n_pend);
}

/* tr__wheel_next: UINT64_MAX exactly when empty, else after now and not
 * after the earliest pending entry. */
static void check_next(struct harness *h)
{
    uint64_t next = tr__wheel_next(&h->w);
    uint64_t first = min_pending(h);
    if (h->n_pend == 0) {
        if (next != UINT64_MAX)
            fail(h, "next on an empty wheel", NULL, next, UINT64_MAX);
        return;
    }
    if (next > first)
        fail(h, "next is later than the earliest pending due tick", NULL, next, first);
    if (next <= h->w.now)
        fail(h, "next is not after the wheel's tick", NULL, next, h->w.now);
}

/* ---- entries at random due ticks, advanced in random steps -------------- */

static uint64_t random_due(struct harness *h, uint64_t *rng)
{
    uint64_t now = h->w.now;
    switch (tt_rng_below(rng, 12)) {
    case 0: /* at or just before now */
        return now - tt_rng_below(rng, (now < 1000 ? now : 1000) + 1);
    case 1: /* anywhere in the past, 0 included */
        return tt_rng_below(rng, now + 1);
    case 2:
    case 3:
        return now + 1 + tt_rng_below(rng, 64);
    case 4:
        return now + 1 + tt_rng_below(rng, LEVEL_TICKS(2));
    case 5:
        return now + 1 + tt_rng_below(rng, LEVEL_TICKS(3));
    case 6:
        return now + 1 + tt_rng_below(rng, LEVEL_TICKS(4));
    case 7:
        return now + 1 + tt_rng_below(rng, LEVEL_TICKS(5));
    case 8:
    case 9:
        return now + 1 + tt_rng_below(rng, RANDOM_AHEAD);
    default: { /* on or next to a slot boundary of some level */
        uint64_t m = LEVEL_TICKS(1 + tt_rng_below(rng, 5));
        uint64_t b = (now / m + 1 + tt_rng_below(rng, 3)) * m + tt_rng_below(rng, 3) - 1;
        return b - now > RANDOM_AHEAD ? now + RANDOM_AHEAD : b;
    }
    }
}

static uint64_t random_target(struct harness *h, uint64_t *rng)
{
    uint64_t now = h->w.now;
    uint64_t first = min_pending(h);
    switch (tt_rng_below(rng, 11)) {
    case 0:
        return now; /* nothing may fire */
    case 1:
        return now + 1 + tt_rng_below(rng, 3);
    case 2:
        return now + tt_rng_below(rng, 64);
    case 3: {
        uint64_t next = tr__wheel_next(&h->w);
        return next == UINT64_MAX ? now + 1 : next;
    }
    case 4: /* just before the earliest entry: nothing may fire */
        return first != UINT64_MAX && first - 1 > now ? first - 1 : now;
    case 5:
    case 6: /* exactly the earliest entry */
        return first != UINT64_MAX ? first : now + 1;
    case 7:
        return first != UINT64_MAX ? first + tt_rng_below(rng, 64) : now + 1;
    case 8:
        return now + tt_rng_below(rng, LEVEL_TICKS(1 + tt_rng_below(rng, 6)));
    default: /* log-uniform, up to the span */
        return now + tt_rng_below(rng, UINT64_C(1) << tt_rng_below(rng, 37));
    }
}

static void random_round(uint64_t start, uint32_t n_items, uint64_t seed)
{
    struct harness h;
    harness_init(&h, start, n_items, seed);
    uint64_t rng = seed;
    uint32_t inserted = 0;
    unsigned long steps = 0, removed = 0;

    /* Half the entries up front, the rest interleaved with the steps. */
    while (inserted < n_items / 2) {
        struct item *it = &h.items[inserted++];
        file_item(&h, it, random_due(&h, &rng));
    }
    check_next(&h);
    while ((h.n_pend > 0 || inserted < n_items) && h.failures == 0) {
        unsigned op = (unsigned)tt_rng_below(&rng, 100);
        if (op < 8 && h.n_pend > 0) {
            remove_item(&h, h.pend[tt_rng_below(&rng, h.n_pend)]);
            removed++;
        } else if (op < 25 && inserted < n_items) {
            struct item *it = &h.items[inserted++];
            file_item(&h, it, random_due(&h, &rng));
        } else {
            advance_to(&h, random_target(&h, &rng));
            steps++;
        }
        check_next(&h);
    }

    /* Removed entries stay removed: nothing is left to fire, however far
     * the wheel goes. */
    advance_to(&h, h.w.now + 2 * TR__WHEEL_SPAN);
    TT_EQ(h.w.count, 0);
    TT_EQ(tr__wheel_next(&h.w), UINT64_MAX);
    uint64_t fired = 0;
    for (uint32_t i = 0; i < n_items; i++) {
        struct item *it = &h.items[i];
        if (it->state == ST_FIRED && it->fires == 1)
            fired++;
        else if (it->state != ST_REMOVED || it->fires != 0)
            fail(&h, "entry neither fired once nor removed: state / fires", it,
                 (uint64_t)it->state, it->fires);
    }
    TT_EQ(fired + removed, n_items);
    TT_EQ(h.fired, fired);
    if (h.failures != 0)
        printf("\n    %lu wheel failure(s) from start tick %" PRIu64 " after %lu steps\n",
               h.failures, start, steps);
    CU_ASSERT(h.failures == 0);
    harness_fini(&h);
}

static void test_random_entries(void)
{
    /* Start ticks: zero, small, at and around block boundaries of every
     * level, and a realistic CLOCK_MONOTONIC >> 19. */
    const uint64_t starts[] = {
        0, 5, 63, LEVEL_TICKS(2) - 1, LEVEL_TICKS(3) - 2, LEVEL_TICKS(5) + 7,
        LEVEL_TICKS(6) - 3, LEVEL_TICKS(6) * 5 + 12345, (UINT64_C(1) << 31) + 987654321,
        tt_now_ns() >> 19,
    };
    for (size_t i = 0; i < sizeof starts / sizeof starts[0]; i++)
        random_round(starts[i], 20000, UINT64_C(0x5eed0000) + i);
}

/* ---- remove ------------------------------------------------------------------ */

static void test_remove(void)
{
    struct harness h;
    harness_init(&h, 1000, 6 * 64, 1);
    uint64_t rng = 77;
    /* Several entries per slot on every level; remove heads, tails and
     * middles of slot lists, then everything of one level. */
    for (uint32_t i = 0; i < h.n_items; i++) {
        unsigned level = i % 6;
        uint64_t due = h.w.now + 1 + LEVEL_TICKS(level) + tt_rng_below(&rng, 3);
        if (level == 5)
            due = h.w.now + RANDOM_AHEAD - tt_rng_below(&rng, 3);
        file_item(&h, &h.items[i], due);
    }
    check_next(&h);
    unsigned long removed = 0;
    for (uint32_t i = 0; i < h.n_items; i++) {
        if (i % 3 == 0 || i % 6 == 4) {
            remove_item(&h, &h.items[i]);
            removed++;
            check_next(&h);
        }
    }
    while (h.n_pend > 0 && h.failures == 0) {
        uint64_t next = tr__wheel_next(&h.w);
        advance_to(&h, next);
        check_next(&h);
    }
    TT_EQ(h.fired + removed, h.n_items);
    for (uint32_t i = 0; i < h.n_items; i++)
        TT_EQ(h.items[i].fires, (i % 3 == 0 || i % 6 == 4) ? 0 : 1);

    /* Insert and remove at once, then a long way on: nothing fires. */
    harness_fini(&h);
    harness_init(&h, 42, 100, 2);
    for (uint32_t i = 0; i < h.n_items; i++) {
        file_item(&h, &h.items[i], i % 2 ? 40 : 43 + tt_rng_below(&rng, RANDOM_AHEAD));
        remove_item(&h, &h.items[i]);
    }
    TT_EQ(h.w.count, 0);
    TT_EQ(tr__wheel_next(&h.w), UINT64_MAX);
    advance_to(&h, 42 + TR__WHEEL_SPAN);
    TT_EQ(h.fired, 0);
    CU_ASSERT(h.failures == 0);
    harness_fini(&h);
}

/* ---- fire callbacks that re-insert (periodic entries) --------------------- */

static void test_periodic_reinsert(void)
{
    const uint64_t periods[] = { 1, 2, 3, 5, 63, 64, 65, 100, 4095, 4096, 4097, 50000, 262144 };
    const size_t n_periods = sizeof periods / sizeof periods[0];
    for (int round = 0; round < 3; round++) {
        uint64_t start = round == 0 ? 0 : round == 1 ? LEVEL_TICKS(3) - 10 : tt_now_ns() >> 19;
        struct harness h;
        harness_init(&h, start, 3000, 100 + (uint64_t)round);
        uint64_t rng = h.seed;
        for (uint32_t i = 0; i < h.n_items; i++) {
            struct item *it = &h.items[i];
            it->period = periods[i % n_periods];
            it->max_fires = 1 + (uint32_t)tt_rng_below(&rng, 200);
            it->reinsert_past = i % 97 == 0; /* "due at or before now": the next tick */
            file_item(&h, it, start - 5 + tt_rng_below(&rng, 1 << 16));
        }
        uint64_t end = start + (UINT64_C(1) << 23);
        while (h.w.now < end && h.failures == 0) {
            uint64_t to;
            switch (tt_rng_below(&rng, 4)) {
            case 0: {
                uint64_t next = tr__wheel_next(&h.w);
                to = next == UINT64_MAX ? h.w.now + 1 : next;
                break;
            }
            case 1:
                to = h.w.now + tt_rng_below(&rng, 70);
                break;
            default:
                to = h.w.now + tt_rng_below(&rng, UINT64_C(1) << tt_rng_below(&rng, 20));
            }
            advance_to(&h, to > end ? end : to);
            check_next(&h);
        }
        /* Every entry fired all its occurrences up to the end, each at its
         * tick (advance_to checked none was late, on_fire none early). */
        for (uint32_t i = 0; i < h.n_items && h.failures == 0; i++) {
            struct item *it = &h.items[i];
            if (it->fires < it->max_fires && (it->state != ST_PENDING || it->eff <= end))
                fail(&h, "periodic entry stopped early: fires / max", it, it->fires,
                     it->max_fires);
            if (it->fires > it->max_fires)
                fail(&h, "periodic entry fired too often: fires / max", it, it->fires,
                     it->max_fires);
        }
        if (h.failures != 0)
            printf("\n    %lu failure(s) in periodic round %d\n", h.failures, round);
        CU_ASSERT(h.failures == 0);
        harness_fini(&h);
    }
}

/* ---- the farthest entries: advancing to next reaches them in a few calls -- */

/* Inserts one entry `ahead` ticks after `start` and advances to
 * tr__wheel_next until it fires. Each call moves at least one level down
 * (or one revolution on, beyond the span), so a handful of calls must do;
 * a wheel that steps tick by tick would need up to 2^30. */
static void far_case(struct harness *h, uint64_t start, uint64_t ahead, unsigned long *worst)
{
    tr__wheel_init(&h->w, start);
    h->n_pend = 0;
    h->heap_n = 0;
    h->last_eff = 0;
    struct item *it = &h->items[0];
    memset(it, 0, sizeof *it);
    file_item(h, it, start + ahead);
    unsigned long cap = 2 * TR__WHEEL_LEVELS + 4 + 2 * (unsigned long)(ahead >> 36);
    unsigned long calls = 0;
    while (it->state == ST_PENDING && calls < cap) {
        uint64_t next = tr__wheel_next(&h->w);
        if (next > it->eff || next <= h->w.now) {
            fail(h, "next is not in (now, due]: next / due", it, next, it->eff);
            break;
        }
        advance_to(h, next);
        calls++;
    }
    if (it->state == ST_PENDING) {
        if (h->failures++ < 5)
            printf("\n    wheel: entry %" PRIu64 " ticks after %" PRIu64
                   " still pending after %lu advances to next (wheel now %" PRIu64
                   ", %" PRIu64 " ticks short; next %" PRIu64 ")\n",
                   ahead, start, calls, h->w.now, it->eff - h->w.now,
                   tr__wheel_next(&h->w));
        tr__wheel_remove(&h->w, &it->e);
    } else if (it->fires != 1) {
        fail(h, "fires", it, it->fires, 1);
    }
    if (calls > *worst)
        *worst = calls;
}

static void test_far_future_progress(void)
{
    struct harness h;
    harness_init(&h, 0, 1, 3);
    const uint64_t span = TR__WHEEL_SPAN;
    const uint64_t top = LEVEL_TICKS(5);
    const uint64_t aheads[] = {
        1, 63, 64, 65, 4095, 4096, LEVEL_TICKS(3) + 1, LEVEL_TICKS(4) - 1, top - 1, top,
        top + 1, span / 2, span - top, span - top + 1, span - top / 2, span - 64, span - 1,
        span, span + 1, span + top, 2 * span, 3 * span + 12345,
    };
    const uint64_t starts[] = { 0, 5, top - 3, top * 7 + 12345, LEVEL_TICKS(6) - 2,
                                (UINT64_C(1) << 31) + 987654321, tt_now_ns() >> 19 };
    unsigned long worst = 0;
    uint64_t rng = 99;
    for (size_t s = 0; s < sizeof starts / sizeof starts[0]; s++) {
        for (size_t a = 0; a < sizeof aheads / sizeof aheads[0]; a++)
            far_case(&h, starts[s], aheads[a], &worst);
        for (int k = 0; k < 20; k++) { /* random, mostly in the last top-level slot */
            far_case(&h, starts[s], span - tt_rng_below(&rng, top), &worst);
            far_case(&h, starts[s], span + tt_rng_below(&rng, 3 * span), &worst);
        }
    }
    printf("[at most %lu advances per entry] ", worst);
    if (h.failures != 0)
        printf("\n    %lu far-future failure(s)\n", h.failures);
    CU_ASSERT(h.failures == 0);
    harness_fini(&h);
}

/* ---- sweeps -------------------------------------------------------------- */

static bool sweep_dead(tr__wheel_entry *e, void *arg)
{
    struct harness *h = arg;
    struct item *it = (struct item *)e;
    if (it->state != ST_PENDING)
        fail(h, "the sweep looked at an entry not in the wheel: state", it,
             (uint64_t)it->state, 0);
    return it->dead;
}

static void sweep_drop(tr__wheel_entry *e, void *arg)
{
    struct harness *h = arg;
    struct item *it = (struct item *)e;
    if (!it->dead || it->state != ST_PENDING)
        fail(h, "the sweep took out a live entry, or one not in the wheel: dead / state", it,
             (uint64_t)it->dead, (uint64_t)it->state);
    it->state = ST_SWEPT;
    pend_del(h, it);
}

/* One sweep step of 1 to 40 looks; true when the sweep is over. Checks
 * the count against the entries the harness holds filed. */
static bool sweep_step(struct harness *h, uint64_t *rng)
{
    bool over = tr__wheel_sweep(&h->w, 1 + (unsigned)tt_rng_below(rng, 40), sweep_dead,
                                sweep_drop, h);
    if (h->w.count != h->n_pend)
        fail(h, "wheel count / filed entries after a sweep step", NULL, h->w.count, h->n_pend);
    if (over == tr__wheel_sweeping(&h->w))
        fail(h, "a sweep's result and its state disagree", NULL, over, 0);
    return over;
}

/* Removes a filed entry: the one the sweep goes on from, now and then. */
static void remove_some(struct harness *h, uint64_t *rng)
{
    struct item *it = h->pend[tt_rng_below(rng, h->n_pend)];
    if (h->w.sweep.at != NULL && tt_rng_below(rng, 2) == 0)
        it = (struct item *)h->w.sweep.at;
    remove_item(h, it);
}

/* Between inserts and removes, no advance: every entry dead when the
 * sweep began, and still filed, is taken out by the time it ends, and no
 * live one; the rest fire as ever. */
static void test_sweep_takes_dead_only(void)
{
    const uint64_t starts[] = { 0, LEVEL_TICKS(3) - 2, tt_now_ns() >> 19 };
    for (size_t round = 0; round < sizeof starts / sizeof starts[0]; round++) {
        const uint32_t n = 20000;
        struct harness h;
        harness_init(&h, starts[round], n, 0x5eeb + round);
        uint64_t rng = h.seed;
        uint32_t inserted = 0;
        while (inserted < n / 2) {
            struct item *it = &h.items[inserted++];
            it->dead = tt_rng_below(&rng, 3) != 0;
            it->before_sweep = 1;
            file_item(&h, it, random_due(&h, &rng));
        }
        tr__wheel_sweep_begin(&h.w);
        unsigned long steps = 0;
        for (;;) {
            unsigned op = (unsigned)tt_rng_below(&rng, 10);
            if (op == 0 && inserted < n) {
                struct item *it = &h.items[inserted++];
                it->dead = tt_rng_below(&rng, 2);
                file_item(&h, it, random_due(&h, &rng));
            } else if (op == 1 && h.n_pend > 0) {
                remove_some(&h, &rng);
            } else {
                steps++;
                if (sweep_step(&h, &rng))
                    break;
            }
        }
        unsigned long missed = 0, swept = 0;
        for (uint32_t i = 0; i < inserted; i++) {
            struct item *it = &h.items[i];
            missed += it->before_sweep && it->dead && it->state == ST_PENDING;
            swept += it->state == ST_SWEPT;
        }
        TT_EQ(missed, 0);
        CU_ASSERT(swept > n / 4);
        CU_ASSERT(steps > 100); /* a few looks at a time */
        /* What is left fires once, in order, never early. */
        while (h.n_pend > 0 && h.failures == 0)
            advance_to(&h, tr__wheel_next(&h.w));
        for (uint32_t i = 0; i < inserted; i++) {
            struct item *it = &h.items[i];
            int st = it->state;
            if (!(st == ST_SWEPT || st == ST_REMOVED || (st == ST_FIRED && it->fires == 1)))
                fail(&h, "entry neither swept, removed nor fired once: state", it, (uint64_t)st,
                     it->fires);
        }
        CU_ASSERT(h.failures == 0);
        harness_fini(&h);
    }
}

/* Sweeps one after another between inserts, removes (the sweep's next
 * entry among them) and advances that fire and cascade the slot it is
 * in: it never looks at an entry that has left the wheel, never takes out
 * a live one, and every entry ends once — fired, swept or removed. */
static void test_sweep_across_advances(void)
{
    const uint32_t n = 30000;
    struct harness h;
    harness_init(&h, tt_now_ns() >> 19, n, 0xfeed5);
    uint64_t rng = h.seed;
    uint32_t inserted = 0;
    unsigned long sweeps = 0;
    while ((h.n_pend > 0 || inserted < n) && h.failures == 0) {
        unsigned op = (unsigned)tt_rng_below(&rng, 100);
        if (op < 30 && inserted < n) {
            struct item *it = &h.items[inserted++];
            it->dead = tt_rng_below(&rng, 2);
            file_item(&h, it, random_due(&h, &rng));
        } else if (op < 36 && h.n_pend > 0) {
            remove_some(&h, &rng);
        } else if (op < 80) {
            if (!tr__wheel_sweeping(&h.w)) {
                tr__wheel_sweep_begin(&h.w);
                sweeps++;
            }
            sweep_step(&h, &rng);
        } else {
            advance_to(&h, random_target(&h, &rng));
        }
        check_next(&h);
    }
    advance_to(&h, h.w.now + 2 * TR__WHEEL_SPAN);
    TT_EQ(h.w.count, 0);
    unsigned long ends[5] = {0};
    for (uint32_t i = 0; i < inserted; i++) {
        struct item *it = &h.items[i];
        if (it->state == ST_FIRED && it->fires != 1)
            fail(&h, "fired more than once", it, it->fires, 1);
        ends[it->state]++;
    }
    TT_EQ(ends[ST_FIRED] + ends[ST_SWEPT] + ends[ST_REMOVED], n);
    CU_ASSERT(ends[ST_SWEPT] > 0 && sweeps > 10);
    if (h.failures != 0)
        printf("\n    %lu sweep failure(s)\n", h.failures);
    CU_ASSERT(h.failures == 0);
    harness_fini(&h);
}

void register_wheel_tests(void)
{
    CU_pSuite s = tt_suite("wheel");
    tt_test(s, "random_entries_fire_once_in_order", test_random_entries);
    tt_test(s, "remove_really_removes", test_remove);
    tt_test(s, "periodic_reinsert_from_fire", test_periodic_reinsert);
    tt_test(s, "far_future_next_makes_progress", test_far_future_progress);
    tt_test(s, "sweep_takes_the_dead_only", test_sweep_takes_dead_only);
    tt_test(s, "sweep_across_advances_each_entry_ends_once", test_sweep_across_advances);
}
