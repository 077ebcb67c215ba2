/* reactor/wheel.c — the hierarchical timing wheel. */
#include "wheel.h"

#include <string.h>

#define SLOT_BITS 6
#define SLOT_MASK (TR__WHEEL_SLOTS - 1)

void tr__wheel_init(tr__wheel *w, uint64_t now)
{
    memset(w, 0, sizeof *w);
    w->now = now;
}

/* The level for `due` seen from `now`: the highest 6-bit group where they
 * differ. Due ticks beyond the wheel's span are clamped to the top level. */
static unsigned level_for(uint64_t now, uint64_t due)
{
    uint64_t diff = (now ^ due) | SLOT_MASK;
    unsigned top_bit = 63 - (unsigned)__builtin_clzll(diff);
    unsigned level = top_bit / SLOT_BITS;
    return level < TR__WHEEL_LEVELS ? level : TR__WHEEL_LEVELS - 1;
}

static void link_entry(tr__wheel *w, tr__wheel_entry *e, uint64_t due)
{
    unsigned level = level_for(w->now, due);
    unsigned slot = (unsigned)(due >> (level * SLOT_BITS)) & SLOT_MASK;
    if (level == TR__WHEEL_LEVELS - 1) {
        /* Due beyond the wheel's span, or in the next revolution of the top
         * level at the current position: park it in the slot just behind
         * the current one, which comes due no later than the entry (so it
         * is re-filed in time) and not before a full revolution has begun. */
        unsigned pos = (unsigned)(w->now >> (level * SLOT_BITS)) & SLOT_MASK;
        if (due - w->now > TR__WHEEL_SPAN || slot == pos)
            slot = (pos - 1) & SLOT_MASK;
    }
    e->level = level;
    e->slot = slot;
    e->prev = NULL;
    e->next = w->slots[level][slot];
    if (e->next != NULL)
        e->next->prev = e;
    w->slots[level][slot] = e;
    w->occupied[level] |= UINT64_C(1) << slot;
}

uint64_t tr__wheel_insert(tr__wheel *w, tr__wheel_entry *e)
{
    uint64_t tick = e->due > w->now ? e->due : w->now + 1;
    link_entry(w, e, tick);
    w->count++;
    return tick;
}

/* The sweep has done its slot: on to the next, or over after the last. */
static void sweep_next_slot(tr__wheel_cursor *c)
{
    c->at = NULL;
    if (++c->slot == TR__WHEEL_SLOTS) {
        c->slot = 0;
        if (++c->level == TR__WHEEL_LEVELS)
            c->on = false;
    }
}

/* Unlinks e from its slot's list, keeping the sweep's cursor off it. */
static void unlink_entry(tr__wheel *w, tr__wheel_entry *e)
{
    if (w->sweep.at == e) {
        if (e->next != NULL)
            w->sweep.at = e->next;
        else
            sweep_next_slot(&w->sweep);
    }
    if (e->prev != NULL)
        e->prev->next = e->next;
    else
        w->slots[e->level][e->slot] = e->next;
    if (e->next != NULL)
        e->next->prev = e->prev;
    if (w->slots[e->level][e->slot] == NULL)
        w->occupied[e->level] &= ~(UINT64_C(1) << e->slot);
    e->next = e->prev = NULL;
    w->count--;
}

void tr__wheel_remove(tr__wheel *w, tr__wheel_entry *e)
{
    unlink_entry(w, e);
}

/* The first tick of the next occupied slot of `level` at or after now,
 * or UINT64_MAX. Slots behind the current position hold entries of the
 * next revolution. */
static uint64_t level_next(const tr__wheel *w, unsigned level)
{
    uint64_t occupied = w->occupied[level];
    if (occupied == 0)
        return UINT64_MAX;
    unsigned shift = level * SLOT_BITS;
    uint64_t slot_ticks = UINT64_C(1) << shift;
    uint64_t level_ticks = slot_ticks << SLOT_BITS;
    unsigned pos = (unsigned)(w->now >> shift) & SLOT_MASK;
    uint64_t rotated = (occupied >> pos) | (pos ? occupied << (64 - pos) : 0);
    unsigned ahead = (unsigned)__builtin_ctzll(rotated);
    uint64_t start = (w->now & ~(level_ticks - 1)) + (uint64_t)((pos + ahead) & SLOT_MASK) * slot_ticks;
    if (pos + ahead >= TR__WHEEL_SLOTS)
        start += level_ticks;
    /* The current slot of a level above 0 began before now; its entries
     * are due later within it, so it is looked at from now on. */
    return start > w->now ? start : w->now + (level == 0 ? 0 : 1);
}

void tr__wheel_drain(tr__wheel *w, void (*drop)(tr__wheel_entry *e, void *arg), void *arg)
{
    for (unsigned level = 0; level < TR__WHEEL_LEVELS; level++) {
        for (unsigned slot = 0; slot < TR__WHEEL_SLOTS; slot++) {
            tr__wheel_entry *e = w->slots[level][slot];
            w->slots[level][slot] = NULL;
            while (e != NULL) {
                tr__wheel_entry *next = e->next;
                e->next = e->prev = NULL;
                drop(e, arg);
                e = next;
            }
        }
        w->occupied[level] = 0;
    }
    w->count = 0;
    w->sweep = (tr__wheel_cursor){0};
}

void tr__wheel_sweep_begin(tr__wheel *w)
{
    w->sweep = (tr__wheel_cursor){.on = true};
}

bool tr__wheel_sweep(tr__wheel *w, unsigned max, bool (*dead)(tr__wheel_entry *e, void *arg),
                     void (*drop)(tr__wheel_entry *e, void *arg), void *arg)
{
    tr__wheel_cursor *c = &w->sweep;
    while (c->on && max > 0) {
        tr__wheel_entry *e = c->at != NULL ? c->at : w->slots[c->level][c->slot];
        for (; e != NULL && max > 0; max--) {
            tr__wheel_entry *next = e->next;
            if (dead(e, arg)) {
                c->at = NULL; /* e goes: unlink_entry must not move the cursor */
                unlink_entry(w, e);
                drop(e, arg);
            }
            e = next;
        }
        if (e == NULL)
            sweep_next_slot(c);
        else
            c->at = e;
    }
    return !c->on;
}

uint64_t tr__wheel_next(const tr__wheel *w)
{
    uint64_t best = UINT64_MAX;
    for (unsigned level = 0; level < TR__WHEEL_LEVELS; level++) {
        uint64_t t = level_next(w, level);
        if (t < best)
            best = t;
    }
    return best;
}

void tr__wheel_advance(tr__wheel *w, uint64_t to,
                       void (*fire)(tr__wheel_entry *e, void *arg), void *arg)
{
    for (;;) {
        /* Find the lowest level whose next occupied slot starts by `to`. */
        uint64_t t = UINT64_MAX;
        unsigned level = 0;
        for (unsigned l = 0; l < TR__WHEEL_LEVELS; l++) {
            uint64_t lt = level_next(w, l);
            if (lt < t) {
                t = lt;
                level = l;
            }
        }
        if (t > to)
            break;
        if (t > w->now)
            w->now = t;
        unsigned slot = (unsigned)(t >> (level * SLOT_BITS)) & SLOT_MASK;
        tr__wheel_entry *e = w->slots[level][slot];
        w->slots[level][slot] = NULL;
        w->occupied[level] &= ~(UINT64_C(1) << slot);
        if (w->sweep.level == level && w->sweep.slot == slot)
            w->sweep.at = NULL; /* its entries fire or move down: none is left */
        while (e != NULL) {
            tr__wheel_entry *next = e->next;
            if (e->due <= w->now) {
                w->count--;
                e->next = e->prev = NULL;
                fire(e, arg);
            } else {
                link_entry(w, e, e->due); /* cascade to a finer level */
            }
            e = next;
        }
    }
    if (to > w->now)
        w->now = to;
}
