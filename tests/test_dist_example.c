/* test_dist_example.c — examples/dist-echo as the issue describes it: it
 * prints "dist-echo: NAME@localhost ready", echoes what an erl node sends
 * to {echo, 'NAME@localhost'}, ends cleanly on SIGTERM and leaves EPMD
 * without its name. */
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "dist_util.h"

static const char *example_path(void)
{
    static char path[4096];
    const char *build = getenv("BUILD");
    snprintf(path, sizeof path, "%s/examples/dist-echo",
             build != NULL && *build != '\0' ? build : "build/release");
    return path;
}

static const char script[] =
    "N = 'tt_ex@localhost', Self = self(),"
    "Ts = [{I, <<I:64>>, [x, I * 1.5], #{I => self()}} || I <- lists:seq(1, 50)],"
    "Good = length([ok || T <- Ts, begin {echo, N} ! {Self, T},"
    "  receive {Self, R} -> R =:= T after 15000 -> false end end]),"
    "io:format(\"ECHO ~p~n\", [Good]), halt().";

static void test_dist_echo_example_echoes_and_ends_on_sigterm(void)
{
    if (dt_skip())
        return;
    if (access(example_path(), X_OK) != 0) {
        printf("\n    SKIPPED: %s not built ", example_path());
        return;
    }
    uint16_t epmd = dt_epmd_start();
    CU_ASSERT_FATAL(epmd != 0);
    dt_erl ex, erl;
    const char *argv[] = {example_path(), "tt_ex", DT_COOKIE, NULL};
    TT_EQ(dt_run(&ex, epmd, argv), 0);
    CU_ASSERT(dt_read_until(&ex, "dist-echo: tt_ex@localhost ready\n", 30));

    TT_EQ(dt_erl_start(&erl, epmd, "tt_exerl@localhost", DT_COOKIE, script), 0);
    CU_ASSERT(dt_erl_wait(&erl, 60));
    CU_ASSERT(dt_erl_is(&erl, "ECHO", "50"));

    kill(ex.pid, SIGTERM);
    CU_ASSERT(dt_erl_wait(&ex, 30)); /* exit status 0 */

    /* Its name is gone from EPMD (the registration's socket closed). */
    char cmd[128];
    snprintf(cmd, sizeof cmd, "epmd -port %u -names | grep -q 'name tt_ex at'", (unsigned)epmd);
    CU_ASSERT(system(cmd) != 0);
    dt_epmd_stop(epmd);
}

void register_dist_example_tests(void)
{
    CU_pSuite s = tt_suite("dist_example");
    tt_test(s, "dist_echo_example_echoes_and_ends_on_sigterm",
            test_dist_echo_example_echoes_and_ends_on_sigterm);
}
