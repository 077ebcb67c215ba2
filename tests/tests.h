/* tests.h — shared declarations and helpers for the troupe test runner.
 *
 * Every tests/NAME.c is linked into one CUnit runner (build/$SAN/tests/run).
 * Each suite file exposes register_<suite>_tests(), called from main.c.
 *
 * CUnit's assertions are not thread-safe, so code running on worker threads
 * (behaviours) or on helper threads records problems with TT_CHECK(), and the
 * test's own thread turns them into one assertion with TT_NO_ERRORS().
 */
#ifndef TROUPE_TESTS_H
#define TROUPE_TESTS_H

#include <CUnit/CUnit.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <troupe.h>

/* ---- suites ----------------------------------------------------------- */
void register_api_tests(void);
void register_mailbox_tests(void);
void register_runq_tests(void);
void register_pid_tests(void);
void register_quiescence_tests(void);
void register_sched_tests(void);
void register_idle_tests(void);
void register_wheel_tests(void);
void register_timer_tests(void);
void register_io_tests(void);
void register_frame_tests(void);
void register_net_tests(void);
void register_chat_tests(void);
void register_fault_tests(void);
void register_supervisor_tests(void);
void register_names_tests(void);
void register_slots_tests(void);
void register_backpressure_tests(void);
void register_depot_tests(void);
void register_poll_tests(void);
void register_writev_tests(void);
void register_ask_tests(void);

/* ---- sanitizer detection ---------------------------------------------- */
#if defined(__SANITIZE_THREAD__)
#  define TT_TSAN 1
#elif defined(__has_feature)
#  if __has_feature(thread_sanitizer)
#    define TT_TSAN 1
#  endif
#endif
#ifndef TT_TSAN
#  define TT_TSAN 0
#endif

#if defined(__SANITIZE_ADDRESS__)
#  define TT_ASAN 1
#elif defined(__has_feature)
#  if __has_feature(address_sanitizer)
#    define TT_ASAN 1
#  endif
#endif
#ifndef TT_ASAN
#  define TT_ASAN 0
#endif

/* Memory limits in tests are multiplied by this: ThreadSanitizer keeps
 * shadow memory and per-thread caches several times the size of what the
 * program itself touches. */
#define TT_RSS_FACTOR (TT_TSAN ? 8 : 1)

/* ---- registration ----------------------------------------------------- */
/* A suite whose tests each run under a watchdog (TROUPE_TEST_TIMEOUT
 * seconds, default 600, 0 = off): a test that hangs is named and the
 * runner exits with status 124 instead of blocking forever. */
CU_pSuite tt_suite(const char *name);
void tt_test(CU_pSuite suite, const char *name, CU_TestFunc fn);

/* ---- failures seen off the test thread --------------------------------- */
void tt_fail(const char *file, int line, const char *what);
unsigned long tt_errors(void);
void tt_reset_errors(void);
/* Any thread. Records a failure without touching CUnit. */
#define TT_CHECK(cond) \
    ((cond) ? (void)0 : tt_fail(__FILE__, __LINE__, #cond))
/* Test thread only: one CUnit assertion that no TT_CHECK failed; prints the
 * first failure and the count if one did. */
#define TT_NO_ERRORS() tt_assert_no_errors(__FILE__, __LINE__)
void tt_assert_no_errors(const char *file, unsigned line);

/* ---- assertions that print both sides ---------------------------------- */
void tt_assert_eq(long long got, long long want, const char *got_s,
                  const char *want_s, const char *file, unsigned line);
#define TT_EQ(got, want) \
    tt_assert_eq((long long)(got), (long long)(want), #got, #want, __FILE__, __LINE__)

/* ---- helpers ---------------------------------------------------------- */
/* A runtime with the given thread count and batch (0 = default). Asserts
 * (fatally) that creation succeeded. */
tr_runtime *tt_runtime(unsigned threads, unsigned batch);
void tt_sleep_ms(unsigned ms);
double tt_now(void); /* monotonic seconds */
/* Starts a thread, asserting (fatally) that it started. */
pthread_t tt_thread(void *(*fn)(void *), void *arg);
void tt_join(pthread_t t);
/* Waits (sleeping 1 ms at a time) until *flag is set; false after
 * `seconds`. */
bool tt_wait_flag(atomic_bool *flag, double seconds);
/* tr_runtime_join on a thread of its own, for tests that must see join
 * still blocked (returned stays false) or returning. */
struct tt_joiner {
    tr_runtime *rt;
    int rc;
    atomic_bool returned;
};
void *tt_joiner_main(void *joiner);
/* Spin-then-yield helper for busy waits: call with an increasing counter. */
void tt_relax(unsigned long *spins);
/* CLOCK_MONOTONIC in nanoseconds (the clock timers are defined on). */
uint64_t tt_now_ns(void);
/* A message's 8-byte payload (a failed check if it is not 8 bytes). */
uint64_t tt_u64(const tr_msg *m);
/* send and sendmsg calls the process has made on descriptor fd (the test
 * binary wraps both at link time). */
unsigned long tt_send_calls(int fd);
/* Resident memory of this process, in KiB (from /proc/self/statm). */
long tt_rss_kb(void);
/* CPU time (user + system) used by the whole process so far, in seconds. */
double tt_cpu_seconds(void);
/* tr_runtime_join on a started runtime, turning a hang into a failure: if
 * the runtime has not finished after `seconds`, it is stopped (so join
 * returns 1) and a note is printed. Returns what tr_runtime_join returned.
 * Use a bound far above the expected time: it is a safety net, not a
 * timing assertion. */
int tt_join_within(tr_runtime *rt, double seconds);

#endif
