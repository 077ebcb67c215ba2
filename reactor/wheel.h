/* reactor/wheel.h — a hierarchical timing wheel (internal).
 *
 * Six levels of 64 slots. A slot of level L spans 64^L ticks, so the wheel
 * covers 64^6 ticks (about 2.2 years at 1 ms). An entry sits at the level
 * of the highest 6-bit group in which its due tick differs from the
 * wheel's current tick; when the wheel reaches a slot above level 0, the
 * entries in it move down (cascade) to finer levels. Start and cancel are
 * O(1) (doubly linked slot lists); finding the next due slot is a rotate
 * and a count of trailing zeros on a 64-bit occupancy word per level.
 *
 * Single-threaded: only the holder of its lock touches a wheel (reactor.h, tr__timer_wheel).
 */
#ifndef TR_REACTOR_WHEEL_H
#define TR_REACTOR_WHEEL_H

#include <stdbool.h>
#include <stdint.h>

#define TR__WHEEL_LEVELS 6
#define TR__WHEEL_SLOTS 64

typedef struct tr__wheel_entry {
    struct tr__wheel_entry *next, *prev;
    uint64_t due; /* tick */
    unsigned level, slot;
} tr__wheel_entry;

/* Where a sweep (tr__wheel_sweep) goes on from: a slot, and the entry of
 * it to look at next (NULL: the slot's first). The wheel keeps `at` on an
 * entry of that slot: advancing past the slot or removing the entry
 * moves it. */
typedef struct tr__wheel_cursor {
    bool on;
    unsigned level, slot;
    struct tr__wheel_entry *at;
} tr__wheel_cursor;

typedef struct tr__wheel {
    uint64_t now;   /* the current tick; entries due at or before it have fired */
    uint64_t occupied[TR__WHEEL_LEVELS];
    tr__wheel_entry *slots[TR__WHEEL_LEVELS][TR__WHEEL_SLOTS];
    uint64_t count;
    tr__wheel_cursor sweep;
} tr__wheel;

/* Largest due tick a wheel at tick `now` can hold directly; later entries
 * are parked at the top and re-filed when their slot comes round. */
#define TR__WHEEL_SPAN ((UINT64_C(1) << (6 * TR__WHEEL_LEVELS)) - 1)

void tr__wheel_init(tr__wheel *w, uint64_t now);

/* Files e, due at tick e->due. An entry due at or before now is filed in
 * the slot of now + 1 (it fires at the next advance). Returns the tick
 * it is filed for. */
uint64_t tr__wheel_insert(tr__wheel *w, tr__wheel_entry *e);

/* Takes e out of the wheel. */
void tr__wheel_remove(tr__wheel *w, tr__wheel_entry *e);

/* The earliest tick at which some entry may be due, or UINT64_MAX if the
 * wheel is empty. */
uint64_t tr__wheel_next(const tr__wheel *w);

/* Moves the wheel to tick `to`, calling fire() for every entry due at or
 * before it, in due order across slots. fire() may insert entries (a
 * periodic timer re-arming); those due before `to` fire in this call too. */
void tr__wheel_advance(tr__wheel *w, uint64_t to,
                       void (*fire)(tr__wheel_entry *e, void *arg), void *arg);

/* A sweep: a walk over every slot, a few entries at a time between the
 * wheel's other calls, that takes out the entries dead() says are dead
 * and calls drop() for each. Begun by tr__wheel_sweep_begin (a sweep
 * under way starts over); each tr__wheel_sweep call looks at up to `max`
 * entries and returns true once the walk has passed the last slot (the
 * sweep is then over). An entry filed while a sweep is under way may be
 * looked at or not; every entry filed before it began and still filed
 * when it ends has been looked at, unless advance moved it (a cascade)
 * into a slot the sweep had passed. */
void tr__wheel_sweep_begin(tr__wheel *w);
bool tr__wheel_sweep(tr__wheel *w, unsigned max, bool (*dead)(tr__wheel_entry *e, void *arg),
                     void (*drop)(tr__wheel_entry *e, void *arg), void *arg);
static inline bool tr__wheel_sweeping(const tr__wheel *w)
{
    return w->sweep.on;
}

/* Takes every entry out, calling drop() for each, in no order. */
void tr__wheel_drain(tr__wheel *w, void (*drop)(tr__wheel_entry *e, void *arg), void *arg);

#endif
