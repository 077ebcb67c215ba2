/* test_idle.c — an idle runtime (held open, nothing to do) sleeps: its
 * workers park instead of spinning. The only timing assertion of the suite. */
#include "tests.h"

#include <string.h>
#include <sys/resource.h>

enum { MSG_WAKE = 30 };

#define IDLE_SETTLE_MS 100
#define IDLE_MEASURE_MS 1000
#define IDLE_MAX_CPU_S 0.050 /* 5% of one core over the second */

static double cpu_seconds(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec * 1e-6 +
           (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec * 1e-6;
}

struct woken {
    atomic_ulong handled;
    _Atomic uint64_t value;
};

static void wake_actor(tr_ctx *cx, void *state, const tr_msg *m)
{
    struct woken *w = *(struct woken **)state;
    uint64_t v = 0;
    TT_CHECK(m->type == MSG_WAKE && m->len == sizeof v);
    TT_CHECK(m->from == TR_PID_NONE);
    TT_CHECK(m->to == tr_self(cx));
    memcpy(&v, m->data, sizeof v);
    atomic_store(&w->value, v);
    atomic_fetch_add(&w->handled, 1);
}

static void test_idle_workers_sleep(void)
{
    struct woken w = { 0 };
    struct woken *wp = &w;
    tr_runtime *rt = tt_runtime(2, 0);
    tr_pid p;
    TT_EQ(tr_spawn(tr_runtime_ctx(rt), wake_actor, &wp, sizeof wp, &p), 0);
    TT_EQ(tr_runtime_hold(rt), 0);
    TT_EQ(tr_runtime_start(rt), 0);

    tt_sleep_ms(IDLE_SETTLE_MS); /* let the workers park */
    double c0 = cpu_seconds();
    tt_sleep_ms(IDLE_MEASURE_MS);
    double used = cpu_seconds() - c0;
    printf("[idle cpu %.1f ms over %d ms] ", used * 1e3, IDLE_MEASURE_MS);
    if (used >= IDLE_MAX_CPU_S)
        printf("\n    idle runtime used %.1f ms of CPU in %d ms (limit %.0f ms)\n",
               used * 1e3, IDLE_MEASURE_MS, IDLE_MAX_CPU_S * 1e3);
    CU_ASSERT(used < IDLE_MAX_CPU_S);

    /* A parked runtime still wakes up for a message from outside. */
    uint64_t v = 0xfeedu;
    TT_EQ(tr_send(tr_runtime_ctx(rt), p, MSG_WAKE, &v, sizeof v), 0);
    TT_EQ(tr_runtime_release(rt), 0);
    TT_EQ(tr_runtime_join(rt), 0);
    TT_NO_ERRORS();
    TT_EQ(atomic_load(&w.handled), 1);
    TT_EQ(atomic_load(&w.value), 0xfeedu);

    tr_stats s;
    tr_runtime_stats(rt, &s);
    printf("[parks %" PRIu64 "] ", s.parks);
    CU_ASSERT(s.parks > 0);
    TT_EQ(s.messages_handled, 1);
    tr_runtime_destroy(rt);
}

void register_idle_tests(void)
{
    CU_pSuite s = tt_suite("idle");
    tt_test(s, "idle_workers_sleep", test_idle_workers_sleep);
}
