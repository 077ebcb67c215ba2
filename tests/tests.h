/* tests.h — shared declarations and helpers for the troupe test runner.
 *
 * Every tests/NAME.c is linked into one CUnit runner (build/$SAN/tests/run).
 * Each suite file (test_<suite>.c, one concern each) exposes
 * register_<suite>_tests(), called from main.c. Helpers that several suites
 * of one area share live beside them: net_util.h (the TCP and UDP suites)
 * and chat_util.h (the chat suites). Tests are named for what they check,
 * as a short sentence: outside_spawns_2M_reuse_slots.
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
#include <semaphore.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

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
void register_tcp_echo_tests(void);
void register_tcp_framing_tests(void);
void register_tcp_backpressure_tests(void);
void register_tcp_bad_input_tests(void);
void register_tcp_faults_tests(void);
void register_tcp_connect_tests(void);
void register_tcp_close_tests(void);
void register_udp_tests(void);
void register_chat_nicks_tests(void);
void register_chat_rooms_tests(void);
void register_chat_messages_tests(void);
void register_chat_input_tests(void);
void register_chat_leaving_tests(void);
void register_chat_limits_tests(void);
void register_fault_tests(void);
void register_supervisor_tests(void);
void register_names_tests(void);
void register_slots_tests(void);
void register_backpressure_tests(void);
void register_depot_tests(void);
void register_keyed_tests(void);
void register_poll_tests(void);
void register_dist_proto_tests(void);
void register_dist_erl_tests(void);
void register_dist_handshake_tests(void);
void register_dist_example_tests(void);
void register_dist_link_tests(void);
void register_dist_fault_tests(void);
void register_dist_nodedown_tests(void);
void register_dist_bad_input_tests(void);
void register_dist_order_tests(void);
void register_dist_restart_tests(void);
void register_dist_lookup_tests(void);
void register_dist_race_tests(void);
void register_dist_big_tests(void);
void register_dist_ask_tests(void);
void register_writev_tests(void);
void register_debug_tests(void);
void register_errors_tests(void);
void register_spec_tests(void);
void register_on_stop_tests(void);
void register_simnet_tests(void);
void register_simnet_e2e_tests(void);
void register_sim_dist_tests(void);
void register_nomem_tests(void);
void register_ask_tests(void);
void register_http_parse_tests(void);
void register_http_keepalive_tests(void);
void register_http_pipeline_tests(void);
void register_http_limits_tests(void);
void register_http_bad_input_tests(void);
void register_http_slowloris_tests(void);
void register_http_example_tests(void);
void register_watchdog_tests(void);
void register_trace_tests(void);
void register_metrics_figures_tests(void);
void register_metrics_top_tests(void);
void register_metrics_dump_tests(void);
void register_metrics_workers_tests(void);
void register_metrics_serve_tests(void);
void register_troupe_top_tests(void);
void register_troupe_sim_tests(void);
void register_sim_tests(void);
void register_sim_chat_tests(void);

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
 * program itself touches, and a vector clock, as long as the process has
 * had threads, for every address an atomic has released through (slots:
 * 2,000 more slots in use in slots/outside_spawns_2M_reuse_slots took it
 * from 70 to 91 MB, where the plain build's RSS grew 1.5 MB either way). */
#define TT_RSS_FACTOR (TT_TSAN ? 16 : 1)

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
/* The next accept4 call of the process (the binary wraps it at link
 * time) fails with err, the connection left waiting; 0: none. Returns
 * the failure still pending before (0: none, or it was met). */
int tt_accept_fail_once(int err);
/* Allocations that fail: from this call on, malloc, calloc, realloc,
 * aligned_alloc and strdup calls number `first` to `first + count - 1`
 * (counting from 1, on every thread, the library's and the test's alike:
 * the binary wraps them at link time) return NULL. tt_alloc_fail(0, 0) turns failing and
 * counting off; tt_alloc_fail(ULONG_MAX, 0) only counts. Seen: the calls
 * counted from the last call that armed it to the one that turned it off
 * (or now); failed: those of them that returned NULL. (One caller is let
 * through: libei's buffer growth, which leaks its buffer when realloc
 * fails — util.c.) */
void tt_alloc_fail(unsigned long first, unsigned long count);
unsigned long tt_alloc_seen(void);
unsigned long tt_alloc_failed(void);
/* From this call on, the nth pthread_create call of the process (the
 * library's and the test's alike: the binary wraps it at link time) fails
 * with EAGAIN, as the real one does at a limit on threads; 0: none. */
void tt_thread_fail(unsigned long nth);
/* Threads of this process (from /proc/self/task), or -1. */
int tt_threads_running(void);
/* Resident memory of this process, in KiB (from /proc/self/statm). */
long tt_rss_kb(void);
/* Descriptors open in this process (the listing's own not counted). */
int tt_fds_open(void);
/* CPU time (user + system) used by the whole process so far, in seconds. */
double tt_cpu_seconds(void);
/* tr_runtime_join on a started runtime, turning a hang into a failure: if
 * the runtime has not finished after `seconds`, it is stopped (so join
 * returns 1) and a note is printed. Returns what tr_runtime_join returned.
 * Use a bound far above the expected time: it is a safety net, not a
 * timing assertion. */
int tt_join_within(tr_runtime *rt, double seconds);

/* ---- an example program as a child process (the chat and udp suites) ---- */
typedef struct tt_example {
    pid_t pid;
    int out;        /* its stdout */
    uint16_t port;
    char line[256]; /* what it printed up to its port's line (part of it) */
} tt_example;
/* Starts examples/<name> with the argument "0" (a port of the system's
 * choice) from $BUILD, else beside this runner (<build>/tests/run), else
 * build/release; waits until it has printed "127.0.0.1:<port>" and
 * catches SIGTERM. False (and a failed assertion) if it could not. */
bool tt_example_start(const char *name, tt_example *e);
/* The same with more arguments after "0" (args NULL-terminated; at most 13). */
bool tt_example_start_args(const char *name, const char *const *args, tt_example *e);
/* A program of the build, rel being e.g. "tools/troupe-top": under $BUILD,
 * else beside this runner, else build/release (a static buffer). */
const char *tt_build_path(const char *rel);
/* Runs the build's program rel (tt_build_path) with args (NULL-terminated,
 * at most 14), stdin from /dev/null, and returns its stdout — with its
 * stderr too if with_stderr — (malloc'd, 64 KiB at most) and, in *code,
 * its exit code (128 + signal) or -1 if it had not ended after wait_s
 * seconds (it is killed then). */
char *tt_run_program(const char *rel, const char *const *args, bool with_stderr, double wait_s,
                     int *code);
/* SIGTERM, then the exit status must be 0 (a clean shutdown; under a
 * sanitizer, also no leak or error report). */
void tt_example_stop(tt_example *e);
/* Its resident memory in KiB, or -1. */
long tt_example_rss_kb(const tt_example *e);

/* ---- a strict JSON checker (json_check.c) ------------------------------ */
/* What the checker shows of a document: each member of an object whose
 * value is a scalar, as raw spans (a string without its quotes, escapes
 * as written), and each object's end; depth is the object's (1: the
 * outermost). Either function may be NULL. */
typedef struct tt_json_sink {
    void (*member)(void *arg, unsigned depth, const char *key, size_t klen, const char *val,
                   size_t vlen);
    void (*end_object)(void *arg, unsigned depth);
    void *arg;
} tt_json_sink;
/* Whether text[0 .. len) is one valid JSON value (RFC 8259); if not, where
 * the checker stopped in *error_at (if not NULL). sink may be NULL. */
bool tt_json_check(const char *text, size_t len, const tt_json_sink *sink, size_t *error_at);

/* ---- deterministic randomness -------------------------------------------- */
/* The one generator of the test suites: splitmix64 (Steele, Lea and Flood).
 * A test keeps its own uint64_t state, seeded with a constant, so that a
 * failure repeats run after run; any seed (0 too) is fine, so helper
 * threads can each start from their own index. tt_mix64 is the generator's
 * output function on its own: a hash of one 64-bit word, for data that must
 * be generated at any offset without running the sequence up to it. */
uint64_t tt_rng_next(uint64_t *state);
/* A value in [0, n) (0 when n is 0); the modulo bias is irrelevant here. */
uint64_t tt_rng_below(uint64_t *state, uint64_t n);
uint64_t tt_mix64(uint64_t z);
/* ---- counted actors (suites spec and on_stop) ------------------------- */
/* An actor made from tt_counted_spec carries an id below TT_MAX_ACTORS in
 * its state; its init and on_stop count their calls per id in tt_counts
 * (with the last exit reason and init's spawner), and its behaviour checks
 * on every message that init has run. Messages it takes: */
enum { TT_PING = 0x7001, TT_STOP, TT_EXIT /* tr_exit(TT_EXIT_REASON) */,
       TT_LINK /* payload: u64 id; spawns a counted actor linked to it */ };

#define TT_MAGIC 0x5eedu
#define TT_EXIT_REASON 5
#define TT_INIT_FAIL 7      /* what init returns with TT_F_INIT_FAIL */
#define TT_MAX_ACTORS 8192
#define TT_ANY_INITS UINT32_MAX

/* Flags of a counted actor. */
#define TT_F_BIG 1u       /* state past TR__STATE_INLINE: on the heap */
#define TT_F_INIT_FAIL 2u /* init fails with TT_INIT_FAIL */
#define TT_F_NO_INIT 4u   /* a spec without init (the state starts with TT_MAGIC) */

struct tt_counted {
    uint32_t id;
    uint32_t magic; /* TT_MAGIC once init has run */
    uint32_t flags;
    uint32_t spare;
};

struct tt_counted_big {
    struct tt_counted s; /* first: the callbacks see a tt_counted either way */
    unsigned char pad[200];
};

struct tt_counts {
    atomic_uint inits[TT_MAX_ACTORS], stops[TT_MAX_ACTORS];
    atomic_int reason[TT_MAX_ACTORS];
    _Atomic tr_pid spawner[TT_MAX_ACTORS];
    _Atomic tr_pid pid[TT_MAX_ACTORS]; /* as spawn gave it, where the test stored it */
    atomic_ulong seen, stops_total;     /* messages the behaviours saw; on_stop calls */
};

extern struct tt_counts tt_counts;
/* Test thread, with no runtime running: all counts to zero. */
void tt_counts_reset(void);
/* The spec of counted actor `id` (name may be NULL), its state in *b. */
tr_actor_spec tt_counted_spec(struct tt_counted_big *b, uint32_t id, uint32_t flags,
                              const char *name);
/* Spawns counted actor `id` from outside (asserting success) and stores
 * its pid in tt_counts.pid[id]. Test thread. */
tr_pid tt_counted_spawn(tr_runtime *rt, uint32_t id, uint32_t flags, const char *name);
/* Test thread: each of ids [from, to) had init `inits` times (any number:
 * TT_ANY_INITS) and on_stop once, with `reason` (any: INT32_MIN). */
void tt_counted_ended(uint32_t from, uint32_t to, unsigned inits, int reason);

/* An actor that holds its worker: in its turn it sets in_turn and waits
 * until the test posts go. Its state is a struct tt_blocker *. */
struct tt_blocker {
    sem_t go;
    atomic_bool in_turn;
};
void tt_blocker_init(struct tt_blocker *b);
void tt_blocker_fini(struct tt_blocker *b);
void tt_blocking(tr_ctx *cx, void *state, const tr_msg *m);

/* Whether *v reaches want within seconds (polled every 2 ms). */
bool tt_wait_count(atomic_int *v, int want, double seconds);
/* The runtime's dead letters so far (tr_runtime_stats). */
uint64_t tt_dead_letters(tr_runtime *rt);

/* A behaviour that counts its messages in its state (a uint64_t). */
void tt_counter(tr_ctx *cx, void *state, const tr_msg *m);

#endif
