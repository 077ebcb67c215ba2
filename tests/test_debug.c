/* test_debug.c — the debug assertions of base/debug.h, seen from outside.
 *
 * Calls that return void cannot report misuse: release builds ignore
 * them, debug builds (SAN=, DEBUG=1) stop the program at the first one.
 * Each case runs in a child process, since stopping is what is checked.
 */
#include "tests.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <troupe.h>

/* Runs fn in a child with stderr silenced; its wait status. */
static int in_child(void (*fn)(void))
{
    fflush(NULL);
    pid_t child = fork();
    if (child == 0) {
        int null = open("/dev/null", O_WRONLY);
        if (null >= 0)
            dup2(null, STDERR_FILENO);
        fn();
        _exit(0);
    }
    int status = -1;
    CU_ASSERT_FATAL(child > 0);
    CU_ASSERT_FATAL(waitpid(child, &status, 0) == child);
    return status;
}

static void stop_outside(void) { tr_stop(NULL); }
static void exit_outside(void) { tr_exit(NULL, 3, "x"); }
static void trap_outside(void) { tr_trap_exits(NULL, true); }
static void pause_outside(void) { tr_tcp_pause(NULL); }
static void resume_outside(void) { tr_tcp_resume(NULL); }

static void test_void_calls_outside_a_turn(void)
{
    void (*cases[])(void) = {stop_outside, exit_outside, trap_outside, pause_outside,
                             resume_outside};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int status = in_child(cases[i]);
#ifdef TR_DEBUG
        CU_ASSERT(WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT);
#else
        CU_ASSERT(WIFEXITED(status) && WEXITSTATUS(status) == 0);
#endif
    }
}

void register_debug_tests(void)
{
    CU_pSuite s = tt_suite("debug");
    tt_test(s, "void_calls_outside_a_turn_stop_debug_builds_only",
            test_void_calls_outside_a_turn);
}
