/* actors/keyed.h — a list of fixed-size entries found by a key (internal):
 * an actor's links, its watchers and the monitors it holds (fault.c).
 *
 * The entries sit in one array in no particular order: an entry dropped
 * gives its place to the last one. Most actors hold a handful, which a
 * scan finds fastest; past TR__KEYED_SCAN_MAX an index by key comes on, so
 * that a supervisor linked to 100,000 children does not pay a scan of all
 * of them per link, exit signal or unlink (scans, and a count of active
 * links made by one, had a parent of 160,000 linked children take 8.3 s
 * to see them end; 0.095 s with the index, docs/design.md).
 *
 * The index is open addressing with linear probing, and a deletion moves
 * later entries of the probe run back (no tombstones: a list that churns
 * for the life of its actor never needs a clean-up pass). Each slot holds
 * the position + 1 of an entry and 32 bits of its key's hash, so a probe
 * reads the entry itself only when the hash matches. Keys need not be
 * unique: a lookup returns one entry with the key, and the index is kept
 * by position. CK's hash tables (ck_ht, ck_hs) were the other choice; they
 * are built for a writer beside concurrent readers (tombstones that want
 * ck_ht_gc passes, and version counters), which a list that only its
 * actor's turns touch does not need.
 *
 * The index is only a way to find entries faster: when it cannot grow (no
 * memory) it is dropped and scans find them, and it is built again as the
 * list passes the next power of two.
 */
#ifndef TR_ACTORS_KEYED_H
#define TR_ACTORS_KEYED_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define TR__KEYED_SCAN_MAX 8

/* What the entries of a list are: their size, and where their key is
 * within them (key_len: 8 or 16 bytes, compared as two words). */
typedef struct tr__keyed_kind {
    uint16_t size, key_at, key_len;
} tr__keyed_kind;

typedef struct tr__keyed_slot {
    uint32_t hash; /* of the entry's key */
    uint32_t at;   /* the entry's position + 1; 0: empty */
} tr__keyed_slot;

typedef struct tr__keyed {
    void *items;
    tr__keyed_slot *slots; /* NULL: no index (at most TR__KEYED_SCAN_MAX
                            * entries, or it could not be had) */
    uint32_t n, cap;
    uint32_t mask;         /* index slots - 1 */
} tr__keyed;

/* The position of an entry whose key is the key_len bytes at key, or -1. */
int tr__keyed_find(const tr__keyed *l, const tr__keyed_kind *k, const void *key);

/* Room for one more entry. False: no memory. */
bool tr__keyed_room(tr__keyed *l, const tr__keyed_kind *k);

/* Drops the entry at position i; the last entry takes its place. */
void tr__keyed_drop(tr__keyed *l, const tr__keyed_kind *k, uint32_t i);

/* Entry i (no check). */
static inline void *tr__keyed_at(const tr__keyed *l, const tr__keyed_kind *k, uint32_t i)
{
    return (char *)l->items + (size_t)i * k->size;
}

/* The position of entry e, a pointer into l's array. */
static inline uint32_t tr__keyed_pos(const tr__keyed *l, const tr__keyed_kind *k, const void *e)
{
    return (uint32_t)(((const char *)e - (const char *)l->items) / k->size);
}

/* For tr__keyed_push: entry i, just added, into the index (or the index
 * made, as the list outgrows scans). */
void tr__keyed_index(tr__keyed *l, const tr__keyed_kind *k, uint32_t i);

/* Appends a copy of item, in room made by tr__keyed_room; never fails.
 * Returns where it went. Inline, so that the copy is of a size known. */
static inline void *tr__keyed_push(tr__keyed *l, const tr__keyed_kind *k, const void *item)
{
    uint32_t i = l->n++;
    void *at = tr__keyed_at(l, k, i);
    memcpy(at, item, k->size);
    if (l->slots != NULL || l->n > TR__KEYED_SCAN_MAX)
        tr__keyed_index(l, k, i);
    return at;
}

void tr__keyed_free(tr__keyed *l);

#endif
