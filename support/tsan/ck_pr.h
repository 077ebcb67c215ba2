/* ck_pr.h for ThreadSanitizer builds only (SAN=thread puts this folder
 * first on the include path).
 *
 * Concurrency Kit implements ck_pr with inline assembly and volatile
 * accesses, which TSan cannot see: every lock-free handoff would look like
 * a data race, and real races would hide among the false ones. This header
 * provides the subset of ck_pr that troupe and the CK structures it uses
 * (ck_ring) need, on the compiler's __atomic builtins, which TSan models.
 * Every operation is sequentially consistent: at least as strong as CK's
 * own, so code proven here is not weaker in the optimised build. Fences
 * are compiler barriers: with every ck_pr access sequentially consistent
 * (and so a release store and an acquire load) they add no ordering, and
 * TSan does not model standalone fences anyway.
 */
#ifndef CK_PR_H
#define CK_PR_H

#include <ck_cc.h>
#include <ck_md.h>
#include <ck_stdbool.h>
#include <ck_stdint.h>

#define TR_TSAN_MO __ATOMIC_SEQ_CST

CK_CC_INLINE static void ck_pr_barrier(void) { __asm__ __volatile__("" ::: "memory"); }
CK_CC_INLINE static void ck_pr_stall(void) { __asm__ __volatile__("" ::: "memory"); }

#define TR_TSAN_FENCE(name)                                                     \
    CK_CC_INLINE static void ck_pr_fence_##name(void) { ck_pr_barrier(); } \
    CK_CC_INLINE static void ck_pr_fence_strict_##name(void) { ck_pr_barrier(); }
TR_TSAN_FENCE(atomic)
TR_TSAN_FENCE(atomic_store)
TR_TSAN_FENCE(atomic_load)
TR_TSAN_FENCE(store_atomic)
TR_TSAN_FENCE(load_atomic)
TR_TSAN_FENCE(load_store)
TR_TSAN_FENCE(store_load)
TR_TSAN_FENCE(load)
TR_TSAN_FENCE(store)
TR_TSAN_FENCE(memory)
TR_TSAN_FENCE(acquire)
TR_TSAN_FENCE(release)
TR_TSAN_FENCE(acqrel)
TR_TSAN_FENCE(lock)
TR_TSAN_FENCE(unlock)
#undef TR_TSAN_FENCE

#define TR_TSAN_OPS(S, T)                                                       \
    CK_CC_INLINE static T ck_pr_load_##S(const T *t) { return __atomic_load_n(t, TR_TSAN_MO); } \
    CK_CC_INLINE static void ck_pr_store_##S(T *t, T v) { __atomic_store_n(t, v, TR_TSAN_MO); } \
    CK_CC_INLINE static T ck_pr_fas_##S(T *t, T v) { return __atomic_exchange_n(t, v, TR_TSAN_MO); } \
    CK_CC_INLINE static T ck_pr_faa_##S(T *t, T d) { return __atomic_fetch_add(t, d, TR_TSAN_MO); } \
    CK_CC_INLINE static void ck_pr_add_##S(T *t, T d) { (void)__atomic_fetch_add(t, d, TR_TSAN_MO); } \
    CK_CC_INLINE static void ck_pr_sub_##S(T *t, T d) { (void)__atomic_fetch_sub(t, d, TR_TSAN_MO); } \
    CK_CC_INLINE static void ck_pr_inc_##S(T *t) { (void)__atomic_fetch_add(t, 1, TR_TSAN_MO); } \
    CK_CC_INLINE static void ck_pr_dec_##S(T *t) { (void)__atomic_fetch_sub(t, 1, TR_TSAN_MO); } \
    CK_CC_INLINE static void ck_pr_dec_##S##_zero(T *t, bool *zero)             \
    { *zero = __atomic_sub_fetch(t, 1, TR_TSAN_MO) == 0; }                       \
    CK_CC_INLINE static void ck_pr_or_##S(T *t, T v) { (void)__atomic_fetch_or(t, v, TR_TSAN_MO); } \
    CK_CC_INLINE static void ck_pr_and_##S(T *t, T v) { (void)__atomic_fetch_and(t, v, TR_TSAN_MO); } \
    CK_CC_INLINE static bool ck_pr_cas_##S(T *t, T c, T s)                      \
    { return __atomic_compare_exchange_n(t, &c, s, false, TR_TSAN_MO, TR_TSAN_MO); } \
    CK_CC_INLINE static bool ck_pr_cas_##S##_value(T *t, T c, T s, T *v)        \
    {                                                                           \
        bool ok = __atomic_compare_exchange_n(t, &c, s, false, TR_TSAN_MO, TR_TSAN_MO); \
        *v = c;                                                                 \
        return ok;                                                              \
    }
TR_TSAN_OPS(64, uint64_t)
TR_TSAN_OPS(32, uint32_t)
TR_TSAN_OPS(16, uint16_t)
TR_TSAN_OPS(8, uint8_t)
TR_TSAN_OPS(uint, unsigned int)
TR_TSAN_OPS(int, int)
TR_TSAN_OPS(char, char)
#undef TR_TSAN_OPS

/* Pointer operations take the address of any pointer object, as CK's do. */
CK_CC_INLINE static void *tr_tsan_load_ptr(const void *t)
{ return __atomic_load_n((void *const *)t, TR_TSAN_MO); }
CK_CC_INLINE static void tr_tsan_store_ptr(void *t, const void *v)
{ __atomic_store_n((void **)t, (void *)(uintptr_t)v, TR_TSAN_MO); }
CK_CC_INLINE static void *tr_tsan_fas_ptr(void *t, const void *v)
{ return __atomic_exchange_n((void **)t, (void *)(uintptr_t)v, TR_TSAN_MO); }
CK_CC_INLINE static bool tr_tsan_cas_ptr(void *t, const void *c, const void *s)
{
    void *cv = (void *)(uintptr_t)c;
    return __atomic_compare_exchange_n((void **)t, &cv, (void *)(uintptr_t)s, false,
                                       TR_TSAN_MO, TR_TSAN_MO);
}
CK_CC_INLINE static bool tr_tsan_cas_ptr_value(void *t, const void *c, const void *s, void *v)
{
    void *cv = (void *)(uintptr_t)c;
    bool ok = __atomic_compare_exchange_n((void **)t, &cv, (void *)(uintptr_t)s, false,
                                          TR_TSAN_MO, TR_TSAN_MO);
    *(void **)v = cv;
    return ok;
}
#define ck_pr_load_ptr(t) tr_tsan_load_ptr((const void *)(t))
#define ck_pr_store_ptr(t, v) tr_tsan_store_ptr((void *)(t), (const void *)(v))
#define ck_pr_fas_ptr(t, v) tr_tsan_fas_ptr((void *)(t), (const void *)(v))
#define ck_pr_cas_ptr(t, c, s) tr_tsan_cas_ptr((void *)(t), (const void *)(c), (const void *)(s))
#define ck_pr_cas_ptr_value(t, c, s, v) \
    tr_tsan_cas_ptr_value((void *)(t), (const void *)(c), (const void *)(s), (void *)(v))

#endif /* CK_PR_H */
