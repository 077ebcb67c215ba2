/* actors/keyed.c — lists found by key, with an index past a few entries
 * (keyed.h says why and how). */
#include <stdlib.h>
#include <string.h>

#include "keyed.h"

static uint32_t hash_key(const tr__keyed_kind *k, const void *key)
{
    uint64_t a, b = 0;
    memcpy(&a, key, sizeof a);
    if (k->key_len > sizeof a)
        memcpy(&b, (const char *)key + sizeof a, sizeof b);
    uint64_t h = (a ^ b * UINT64_C(0xC2B2AE3D27D4EB4F)) * UINT64_C(0x9E3779B97F4A7C15);
    return (uint32_t)(h >> 32);
}

static const void *key_of(const tr__keyed *l, const tr__keyed_kind *k, uint32_t i)
{
    return (const char *)tr__keyed_at(l, k, i) + k->key_at;
}

static bool same_key(const tr__keyed *l, const tr__keyed_kind *k, uint32_t i, const void *key)
{
    const char *e = key_of(l, k, i);
    uint64_t a[2] = {0, 0}, b[2] = {0, 0};
    memcpy(a, e, sizeof a[0]);
    memcpy(b, key, sizeof b[0]);
    if (k->key_len > sizeof a[0]) {
        memcpy(&a[1], e + sizeof a[0], sizeof a[1]);
        memcpy(&b[1], (const char *)key + sizeof b[0], sizeof b[1]);
    }
    return a[0] == b[0] && a[1] == b[1];
}

/* Notes entry i (hash h) in the index; it has room (load at most 3/4). */
static void note(tr__keyed *l, uint32_t h, uint32_t i)
{
    uint32_t s = h & l->mask;
    while (l->slots[s].at != 0)
        s = (s + 1) & l->mask;
    l->slots[s] = (tr__keyed_slot){h, i + 1};
}

/* The index slot that holds entry i. */
static uint32_t slot_of(const tr__keyed *l, const tr__keyed_kind *k, uint32_t i)
{
    uint32_t s = hash_key(k, key_of(l, k, i)) & l->mask;
    while (l->slots[s].at != i + 1)
        s = (s + 1) & l->mask;
    return s;
}

/* An index of at least `want` entries at 3/4 load, over the n entries
 * there are; dropped (scans take over) if there is no memory for it. */
static void reindex(tr__keyed *l, const tr__keyed_kind *k, uint32_t want)
{
    uint32_t slots = 16;
    while (slots / 4 * 3 < want && slots < (UINT32_C(1) << 31))
        slots *= 2;
    free(l->slots);
    l->slots = calloc(slots, sizeof *l->slots);
    if (l->slots == NULL)
        return;
    l->mask = slots - 1;
    for (uint32_t i = 0; i < l->n; i++)
        note(l, hash_key(k, key_of(l, k, i)), i);
}

int tr__keyed_find(const tr__keyed *l, const tr__keyed_kind *k, const void *key)
{
    if (l->slots == NULL) {
        for (uint32_t i = 0; i < l->n; i++)
            if (same_key(l, k, i, key))
                return (int)i;
        return -1;
    }
    uint32_t h = hash_key(k, key);
    for (uint32_t s = h & l->mask; l->slots[s].at != 0; s = (s + 1) & l->mask)
        if (l->slots[s].hash == h && same_key(l, k, l->slots[s].at - 1, key))
            return (int)(l->slots[s].at - 1);
    return -1;
}

bool tr__keyed_room(tr__keyed *l, const tr__keyed_kind *k)
{
    if (l->n < l->cap)
        return true;
    if (l->cap > INT32_MAX / 2)
        return false;
    uint32_t cap = l->cap != 0 ? l->cap * 2 : 4;
    void *p = realloc(l->items, (size_t)cap * k->size);
    if (p == NULL)
        return false;
    l->items = p;
    l->cap = cap;
    return true;
}

void tr__keyed_index(tr__keyed *l, const tr__keyed_kind *k, uint32_t i)
{
    if (l->slots != NULL && l->n <= (l->mask + 1) / 4 * 3)
        note(l, hash_key(k, key_of(l, k, i)), i);
    else if (l->slots != NULL || l->n == TR__KEYED_SCAN_MAX + 1 || (l->n & (l->n - 1)) == 0)
        reindex(l, k, 2 * l->n); /* full; or none yet, as the list first
                                  * outgrows the scans, or at a power of
                                  * two after one could not be had */
}

/* Empties index slot s, moving back the entries of the probe run after it
 * that may not stay past the gap (their home is not between it and them). */
static void unslot(tr__keyed *l, uint32_t s)
{
    for (uint32_t j = (s + 1) & l->mask; l->slots[j].at != 0; j = (j + 1) & l->mask) {
        uint32_t home = l->slots[j].hash & l->mask;
        /* j may stay if its home lies cyclically in (s, j]. */
        bool stays = s <= j ? (s < home && home <= j) : (s < home || home <= j);
        if (!stays) {
            l->slots[s] = l->slots[j];
            s = j;
        }
    }
    l->slots[s].at = 0;
}

void tr__keyed_drop(tr__keyed *l, const tr__keyed_kind *k, uint32_t i)
{
    uint32_t last = l->n - 1;
    if (l->slots != NULL) {
        unslot(l, slot_of(l, k, i));
        if (i != last)
            l->slots[slot_of(l, k, last)].at = i + 1;
    }
    if (i != last)
        memcpy(tr__keyed_at(l, k, i), tr__keyed_at(l, k, last), k->size);
    l->n = last;
}

void tr__keyed_free(tr__keyed *l)
{
    if (l->items != NULL) /* (most lists of a record are never used) */
        free(l->items);
    if (l->slots != NULL)
        free(l->slots);
    *l = (tr__keyed){0};
}
