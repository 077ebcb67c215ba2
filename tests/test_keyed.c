/* test_keyed.c — lists found by key (actors/keyed.h): against a plain
 * array that is searched whole, through growth past the scans, drops in
 * random order down to none and back (the index kept by position, entries
 * moved by backward shifts), keys held twice, and 16-byte keys. After
 * every step each entry is found under its key, and no key that is not
 * held is found. */
#include "tests.h"
#include "../actors/keyed.h"

#include <stdlib.h>

typedef struct entry {
    uint64_t a, b; /* the key: a (8 bytes) or a and b (16) */
    uint32_t tag;  /* which push made it */
    uint32_t pad;
} entry;

static const tr__keyed_kind SHORT = {sizeof(entry), offsetof(entry, a), sizeof(uint64_t)};
static const tr__keyed_kind LONG = {sizeof(entry), offsetof(entry, a), 2 * sizeof(uint64_t)};

static uint64_t next_rand(uint64_t *s)
{
    *s = *s * 6364136223846793005u + 1442695040888963407u;
    return *s >> 17;
}

/* Every entry of l found under its key at a position holding that key;
 * the model's count; keys not held not found. Returns the faults seen. */
static unsigned check(const tr__keyed *l, const tr__keyed_kind *k, uint32_t model_n,
                      uint64_t *rnd)
{
    unsigned faults = l->n != model_n;
    for (uint32_t i = 0; i < l->n; i++) {
        const entry *e = tr__keyed_at(l, k, i);
        int j = tr__keyed_find(l, k, &e->a);
        if (j < 0) {
            faults++;
            continue;
        }
        const entry *f = tr__keyed_at(l, k, (uint32_t)j);
        faults += f->a != e->a || (k == &LONG && f->b != e->b);
    }
    for (int t = 0; t < 8; t++) {
        entry miss = {UINT64_C(1) << 62 | next_rand(rnd), next_rand(rnd), 0, 0};
        faults += tr__keyed_find(l, k, &miss.a) >= 0;
    }
    return faults;
}

/* Pushes and drops at random against a model; keys from a small range so
 * that some are held twice (kind 8 bytes) or share their first word
 * (16 bytes). */
static void churn(const tr__keyed_kind *k, uint32_t most, unsigned rounds, uint64_t seed)
{
    tr__keyed l = {0};
    entry *model = calloc(most, sizeof *model);
    CU_ASSERT_FATAL(model != NULL);
    uint32_t n = 0, tag = 0;
    unsigned faults = 0;
    uint64_t rnd = seed;
    for (unsigned r = 0; r < rounds; r++) {
        /* Grow to `most`, then shrink to 0, twice a round, in random steps. */
        bool growing = (r % 2) == 0;
        while (growing ? n < most : n > 0) {
            bool push = growing ? next_rand(&rnd) % 4 != 0 : next_rand(&rnd) % 4 == 0;
            if (push && n < most) {
                entry e = {next_rand(&rnd) % (4 * most), next_rand(&rnd) % 3, ++tag, 0};
                CU_ASSERT_FATAL(tr__keyed_room(&l, k));
                tr__keyed_push(&l, k, &e);
                model[n++] = e;
            } else if (!push && n > 0) {
                uint32_t i = (uint32_t)(next_rand(&rnd) % n);
                uint32_t want = ((entry *)tr__keyed_at(&l, k, i))->tag;
                tr__keyed_drop(&l, k, i);
                uint32_t m = 0;
                while (m < n && model[m].tag != want)
                    m++;
                faults += m == n;
                if (m < n)
                    model[m] = model[--n];
            }
            if (n % 7 == 0 || n < 3 * TR__KEYED_SCAN_MAX)
                faults += check(&l, k, n, &rnd);
        }
        /* The model's entries are the list's, whatever their order. */
        for (uint32_t i = 0; i < n; i++) {
            uint32_t j = 0;
            while (j < l.n && ((entry *)tr__keyed_at(&l, k, j))->tag != model[i].tag)
                j++;
            faults += j == l.n;
        }
    }
    TT_EQ(faults, 0);
    TT_EQ(l.n, n);
    tr__keyed_free(&l);
    free(model);
}

static void test_short_keys_churn(void)
{
    churn(&SHORT, 5000, 4, 7);
}

static void test_long_keys_churn(void)
{
    churn(&LONG, 3000, 4, 11);
}

/* Small lists stay unindexed; the index comes on past TR__KEYED_SCAN_MAX
 * and stays as the list shrinks (finding through it still). */
static void test_index_comes_on_past_the_scans(void)
{
    tr__keyed l = {0};
    for (uint32_t i = 0; i < TR__KEYED_SCAN_MAX; i++) {
        entry e = {1000 + i, 0, i, 0};
        CU_ASSERT_FATAL(tr__keyed_room(&l, &SHORT));
        tr__keyed_push(&l, &SHORT, &e);
    }
    TT_EQ(l.slots == NULL, true);
    entry e = {5000, 0, 99, 0};
    CU_ASSERT_FATAL(tr__keyed_room(&l, &SHORT));
    tr__keyed_push(&l, &SHORT, &e);
    TT_EQ(l.slots != NULL, true);
    while (l.n > 1)
        tr__keyed_drop(&l, &SHORT, 0);
    uint64_t last = ((entry *)tr__keyed_at(&l, &SHORT, 0))->a;
    TT_EQ(tr__keyed_find(&l, &SHORT, &last), 0);
    tr__keyed_drop(&l, &SHORT, 0);
    TT_EQ(tr__keyed_find(&l, &SHORT, &last), -1);
    tr__keyed_free(&l);
}

void register_keyed_tests(void)
{
    CU_pSuite s = tt_suite("keyed");
    tt_test(s, "short_keys_against_a_model", test_short_keys_churn);
    tt_test(s, "long_keys_against_a_model", test_long_keys_churn);
    tt_test(s, "index_comes_on_past_the_scans", test_index_comes_on_past_the_scans);
}
