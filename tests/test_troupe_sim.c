/* test_troupe_sim.c — tools/troupe-sim on programs whose failures the test
 * decides: `sh -c` scripts that read TROUPE_SIM_SEED, so nothing here
 * needs the simulator itself. Checked: the failing seed (the lowest of
 * those seen) and a reproduce line that, run by the shell, fails again
 * while its neighbour passes; no seed started after a failure is seen;
 * the count of passes and of distinct trace hashes; a hung run killed
 * with its process group; sanitizer and liveness lines as failures;
 * TROUPE_SIM passed on (--options, --pct, inherited) and in the command;
 * the traced rerun; and exit 2 with a usage line for bad arguments. The
 * last two run the simulator itself: PCT finds examples/sim-race's lost
 * update and the command replays it, hash for hash; a TROUPE_SIM_CHECK
 * sweep of pingpong passes and sees different hashes for different
 * seeds. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tests.h"

/* Generous: a sweep here runs a few dozen shells, or one 1-second hang. */
#define SIM_WAIT_S 120.0

/* Runs troupe-sim with args (NULL-terminated, at most 14); its stdout and
 * stderr together (malloc'd) and its exit code (-1 if it did not end). */
static char *sim(const char *const *args, int *code)
{
    return tt_run_program("tools/troupe-sim", args, true, SIM_WAIT_S, code);
}

/* Asserts that out holds text, printing out if not. */
#define HAS(out, text)                                                         \
    do {                                                                       \
        bool has_ = strstr((out), (text)) != NULL;                             \
        if (!has_)                                                             \
            printf("\n    no \"%s\" in:\n%s\n", (text), (out));                \
        CU_ASSERT(has_);                                                       \
    } while (0)

/* Asserts that s begins with the literal lit. */
#define STARTS(s, lit)                                                         \
    do {                                                                       \
        bool starts_ = strncmp((s), lit, sizeof(lit) - 1) == 0;                \
        if (!starts_)                                                          \
            printf("\n    \"%s\" does not begin with \"%s\"\n", (s), lit);   \
        CU_ASSERT(starts_);                                                    \
    } while (0)

/* The command troupe-sim printed to reproduce the failure (static). */
static const char *reproduce_line(const char *out)
{
    static char line[2048];
    const char *at = strstr(out, "reproduce with:\n    ");
    line[0] = '\0';
    if (at != NULL) {
        at += strlen("reproduce with:\n    ");
        snprintf(line, sizeof line, "%.*s", (int)strcspn(at, "\n"), at);
    }
    return line;
}

/* The exit code of a command run by the shell, its output discarded. */
static int shell(const char *cmd)
{
    char full[4200];
    snprintf(full, sizeof full, "%s >/dev/null 2>&1", cmd);
    int status = system(full);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128;
}

/* A scratch folder for the files the scripts write (static path). */
static const char *scratch(void)
{
    static char dir[64];
    snprintf(dir, sizeof dir, "/tmp/troupe-sim-test-XXXXXX");
    CU_ASSERT_FATAL(mkdtemp(dir) != NULL);
    return dir;
}

static void scratch_rm(const char *dir)
{
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    TT_EQ(shell(cmd), 0);
}

static void reports_seed_7_and_a_command_that_fails_again(void)
{
    unsetenv("TROUPE_SIM");
    const char *script = "echo \"trace hash=$TROUPE_SIM_SEED\" >&2; echo \"run $TROUPE_SIM_SEED\"; "
                         "[ \"$TROUPE_SIM_SEED\" != 7 ]";
    const char *const args[] = {"--seeds", "1-20", "-j", "4", "sh", "-c", script, NULL};
    int code;
    char *out = sim(args, &code);
    TT_EQ(code, 1);
    HAS(out, "troupe-sim: seed 7 failed: exit status 1\n");
    HAS(out, "    | run 7\n");
    HAS(out, "seeds to find it: 7 ");
    const char *cmd = reproduce_line(out);
    STARTS(cmd, "TROUPE_SIM_SEED=7 sh -c '");
    /* What the user pastes fails again, every time; its neighbour does not. */
    for (int i = 0; i < 3; i++)
        TT_EQ(shell(cmd), 1);
    char other[2100];
    snprintf(other, sizeof other, "TROUPE_SIM_SEED=8%s", cmd + strlen("TROUPE_SIM_SEED=7"));
    TT_EQ(shell(other), 0);
    free(out);
}

static void reports_the_lowest_failing_seed_of_those_in_flight(void)
{
    /* All 20 in flight at once; 5 fails at once, 3 a moment later: the
     * report is 3 whichever ends first. */
    const char *script = "case $TROUPE_SIM_SEED in 3) sleep 0.2; exit 3;; 5|11|19) exit 5;; esac";
    const char *const args[] = {"--seeds", "1-20", "-j", "20", "sh", "-c", script, NULL};
    int code;
    char *out = sim(args, &code);
    TT_EQ(code, 1);
    HAS(out, "troupe-sim: seed 3 failed: exit status 3\n");
    HAS(out, "(seeds 1-3; 20 runs made)");
    free(out);
}

static void starts_no_seed_after_a_failure(void)
{
    const char *dir = scratch();
    char script[256];
    snprintf(script, sizeof script, "echo $TROUPE_SIM_SEED >> %s/ran; [ $TROUPE_SIM_SEED != 3 ]", dir);
    const char *const args[] = {"--seeds", "1-100", "-j", "1", "sh", "-c", script, NULL};
    int code;
    char *out = sim(args, &code);
    TT_EQ(code, 1);
    HAS(out, "troupe-sim: seed 3 failed");
    HAS(out, "3 runs made");
    char path[128], ran[64] = "";
    snprintf(path, sizeof path, "%s/ran", dir);
    FILE *f = fopen(path, "r");
    CU_ASSERT_FATAL(f != NULL);
    size_t n = fread(ran, 1, sizeof ran - 1, f);
    ran[n] = '\0';
    fclose(f);
    CU_ASSERT_STRING_EQUAL(ran, "1\n2\n3\n");
    free(out);
    scratch_rm(dir);
}

static void all_pass_counts_seeds_and_distinct_hashes(void)
{
    const char *script = "echo \"trace hash=$((TROUPE_SIM_SEED % 8))\" >&2";
    const char *const args[] = {"--seeds", "1-40", "-j", "3", "sh", "-c", script, NULL};
    int code;
    char *out = sim(args, &code);
    TT_EQ(code, 0);
    HAS(out, "troupe-sim: 40 seeds passed, 8 distinct trace hashes\n");
    CU_ASSERT(strstr(out, "printed no") == NULL);
    free(out);

    /* One seed alone; a program that prints no hash is pointed out. */
    const char *const one[] = {"--seeds", "5", "true", NULL};
    out = sim(one, &code);
    TT_EQ(code, 0);
    HAS(out, "troupe-sim: 1 seed passed, 0 distinct trace hashes\n");
    HAS(out, "1 run printed no \"trace hash=\" line");
    free(out);
}

/* Whether process pid is gone (or a zombie no one has reaped yet). */
static bool gone(pid_t pid)
{
    char path[64], stat[256];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return true;
    size_t n = fread(stat, 1, sizeof stat - 1, f);
    stat[n] = '\0';
    fclose(f);
    const char *paren = strrchr(stat, ')');
    return paren != NULL && paren[1] == ' ' && paren[2] == 'Z';
}

static pid_t read_pid(const char *dir, const char *name)
{
    char path[128];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "r");
    int pid = 0;
    if (f != NULL) {
        if (fscanf(f, "%d", &pid) != 1)
            pid = 0;
        fclose(f);
    }
    return (pid_t)pid;
}

static void a_hung_run_is_killed_with_its_children(void)
{
    const char *dir = scratch();
    char script[512];
    /* Seed 2 starts a child of its own, then hangs. */
    snprintf(script, sizeof script,
             "[ $TROUPE_SIM_SEED != 2 ] && exit 0; echo $$ > %s/run; sleep 1000 & echo $! > %s/child; "
             "echo waiting; wait",
             dir, dir);
    const char *const args[] = {"--seeds", "1-3", "--timeout", "1", "sh", "-c", script, NULL};
    int code;
    char *out = sim(args, &code);
    TT_EQ(code, 1);
    HAS(out, "troupe-sim: seed 2 failed: hung: still running after 1 s (--timeout), killed\n");
    HAS(out, "    | waiting\n");
    pid_t run = read_pid(dir, "run"), child = read_pid(dir, "child");
    CU_ASSERT_FATAL(run > 0 && child > 0);
    CU_ASSERT(gone(run));
    /* The orphan is killed too; init reaps it when it gets to it. */
    double until = tt_now() + 30;
    while (!gone(child) && tt_now() < until)
        tt_sleep_ms(10);
    CU_ASSERT(gone(child));
    free(out);
    scratch_rm(dir);
}

static void sanitizer_and_liveness_lines_are_failures(void)
{
    static const struct {
        const char *line, *reason;
    } cases[] = {
        {"==9==ERROR: AddressSanitizer: heap-use-after-free", "AddressSanitizer report"},
        {"WARNING: ThreadSanitizer: data race (pid=9)", "ThreadSanitizer report"},
        {"==9==ERROR: LeakSanitizer: detected memory leaks", "LeakSanitizer report"},
        {"x.c:3:5: runtime error: signed integer overflow", "UndefinedBehaviorSanitizer report"},
        {"troupe: simulation: liveness failure at 604800 s", "liveness failure"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char script[256], want[128], tail[160];
        /* Exit 0: the line alone makes the failure. */
        snprintf(script, sizeof script, "[ $TROUPE_SIM_SEED = 2 ] && echo '%s' >&2; exit 0",
                 cases[i].line);
        const char *const args[] = {"--seeds", "1-4", "-j", "1", "sh", "-c", script, NULL};
        int code;
        char *out = sim(args, &code);
        TT_EQ(code, 1);
        snprintf(want, sizeof want, "troupe-sim: seed 2 failed: %s", cases[i].reason);
        HAS(out, want);
        snprintf(tail, sizeof tail, "    | %s\n", cases[i].line);
        HAS(out, tail);
        free(out);
    }
    /* With an exit status as well, both are said. */
    const char *const both[] = {"--seeds", "1", "sh", "-c", "echo 'ERROR: AddressSanitizer: x'; exit 23", NULL};
    int code;
    char *out = sim(both, &code);
    TT_EQ(code, 1);
    HAS(out, "seed 1 failed: AddressSanitizer report (exit status 23)\n");
    free(out);
}

static void options_reach_the_runs_and_the_command(void)
{
    /* Every run checks what it got; seed 3 fails on purpose. */
    const char *script = "[ \"$TROUPE_SIM\" = 'loss=0.5,sched=pct' ] || exit 9; [ $TROUPE_SIM_SEED != 3 ]";
    const char *const args[] = {"--seeds", "1-6", "-j", "2", "--pct", "--options",
                                "loss=0.5", "sh", "-c", script, NULL};
    int code;
    char *out = sim(args, &code);
    TT_EQ(code, 1);
    HAS(out, "troupe-sim: seed 3 failed: exit status 1\n");
    const char *cmd = reproduce_line(out);
    STARTS(cmd, "TROUPE_SIM='loss=0.5,sched=pct' TROUPE_SIM_SEED=3 sh -c '");
    TT_EQ(shell(cmd), 1);
    free(out);

    /* Without --options, the TROUPE_SIM inherited is the one used, and
     * the command says so. */
    setenv("TROUPE_SIM", "dup=0.25", 1);
    const char *inherit = "[ \"$TROUPE_SIM\" = dup=0.25 ] || exit 9; [ $TROUPE_SIM_SEED != 2 ]";
    const char *const args2[] = {"--seeds", "1-3", "sh", "-c", inherit, NULL};
    out = sim(args2, &code);
    unsetenv("TROUPE_SIM");
    TT_EQ(code, 1);
    HAS(out, "troupe-sim: seed 2 failed: exit status 1\n");
    HAS(out, "    TROUPE_SIM='dup=0.25' TROUPE_SIM_SEED=2 sh -c ");
    free(out);
}

static void trace_reruns_the_failing_seed(void)
{
    const char *dir = scratch();
    char trace[128], script[512];
    snprintf(trace, sizeof trace, "%s/seed.json", dir);
    /* The sweep's runs get no TROUPE_TRACE (even one inherited: exit 9);
     * the rerun writes its seed where it is told. */
    setenv("TROUPE_TRACE", "/nonexistent/inherited.json", 1);
    snprintf(script, sizeof script,
             "case \"$TROUPE_TRACE\" in '') ;; %s) echo $TROUPE_SIM_SEED > \"$TROUPE_TRACE\";; *) exit 9;; esac; "
             "[ $TROUPE_SIM_SEED != 4 ]",
             trace);
    const char *const args[] = {"--seeds", "1-9", "-j", "2", "--trace", trace, "sh", "-c", script, NULL};
    int code;
    char *out = sim(args, &code);
    unsetenv("TROUPE_TRACE");
    TT_EQ(code, 1);
    HAS(out, "troupe-sim: seed 4 failed: exit status 1\n");
    HAS(out, "troupe-sim: it failed again: exit status 1\n");
    HAS(out, "its trace is in ");
    FILE *f = fopen(trace, "r");
    int seed = 0;
    CU_ASSERT(f != NULL && fscanf(f, "%d", &seed) == 1);
    TT_EQ(seed, 4);
    if (f != NULL)
        fclose(f);
    free(out);

    /* A failure that does not come back is said to be so. */
    char flaky[512];
    snprintf(flaky, sizeof flaky, "[ -e %s/once ] && exit 0; touch %s/once; exit 1", dir, dir);
    const char *const args2[] = {"--seeds", "1", "--trace", trace, "sh", "-c", flaky, NULL};
    out = sim(args2, &code);
    TT_EQ(code, 1);
    HAS(out, "troupe-sim: it PASSED this time");
    HAS(out, "no trace was written to ");
    free(out);
    scratch_rm(dir);
}

static void bad_arguments_exit_2_with_usage(void)
{
    static const char *const bad[][6] = {
        {"true", NULL},                                  /* no --seeds */
        {"--seeds", "1-5", NULL},                        /* no program */
        {"--seeds", "5-3", "true", NULL},                /* backwards */
        {"--seeds", "0-3", "true", NULL},                /* 0 picks a seed */
        {"--seeds", "x", "true", NULL},
        {"--seeds", "1-", "true", NULL},
        {"--seeds", "-3", "true", NULL},
        {"--seeds", "99999999999999999999", "true", NULL},
        {"--seeds", "18446744073709551615", "true", NULL}, /* TR_SIM_ANY_SEED */
        {"--seeds", "1-2", "-j", "0", "true", NULL},
        {"--seeds", "1-2", "--timeout", "-1", "true", NULL},
        {"--seeds", "1-2", "--bogus", "true", NULL},
        {"--seeds", "1-2", "--timeout", NULL},           /* a value missing */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int code;
        char *out = sim(bad[i], &code);
        if (code != 2 || strstr(out, "usage: troupe-sim --seeds A-B") == NULL)
            printf("\n    case %zu (%s %s ...): exit %d, output:\n%s\n", i, bad[i][0],
                   bad[i][1] != NULL ? bad[i][1] : "", code, out);
        TT_EQ(code, 2);
        CU_ASSERT(strstr(out, "usage: troupe-sim --seeds A-B") != NULL);
        free(out);
    }
    /* A program that is not there: 2 and a message, not 20 failed seeds. */
    const char *const missing[] = {"--seeds", "1-20", "/nonexistent/program", NULL};
    int code;
    char *out = sim(missing, &code);
    TT_EQ(code, 2);
    HAS(out, "/nonexistent/program: not an executable file");
    free(out);
}

/* The real thing: examples/sim-race under the simulator. PCT shows its
 * lost update in about one seed in eight, so 200 seeds find it (which
 * seed depends on the simulator's draws, and is not asserted); the
 * printed command fails again with the same trace hash each time. */
static void pct_finds_sim_race_and_the_command_replays_it(void)
{
    char race[4096];
    snprintf(race, sizeof race, "%s", tt_build_path("examples/sim-race"));
    unsetenv("TROUPE_SIM");
    const char *const args[] = {"--seeds", "1-200", "--pct", race, NULL};
    int code;
    char *out = sim(args, &code);
    TT_EQ(code, 1);
    HAS(out, " failed: exit status 1\n");
    HAS(out, "    | sim-race: lost update: the counter ended at 1, not 2\n");
    const char *at = strstr(out, "    | trace hash=");
    char hash[17] = "";
    CU_ASSERT_FATAL(at != NULL && sscanf(at, "    | trace hash=%16[0-9a-f]", hash) == 1);
    char cmd[2200];
    snprintf(cmd, sizeof cmd, "%s", reproduce_line(out));
    STARTS(cmd, "TROUPE_SIM='sched=pct' TROUPE_SIM_SEED=");
    for (int i = 0; i < 3; i++) {
        char full[2400], line[64] = "";
        snprintf(full, sizeof full, "%s 2>&1 | grep '^trace hash='", cmd);
        FILE *p = popen(full, "r");
        CU_ASSERT_FATAL(p != NULL);
        if (fgets(line, sizeof line, p) == NULL)
            line[0] = '\0';
        pclose(p);
        char want[40];
        snprintf(want, sizeof want, "trace hash=%s\n", hash);
        CU_ASSERT_STRING_EQUAL(line, want);
        TT_EQ(shell(cmd), 1);
    }
    free(out);
}

/* Every seed of pingpong run twice under TROUPE_SIM_CHECK gives the same
 * hashes (troupe-sim passes the variable on), and different seeds give
 * different schedules: troupe-sim counts more than one hash. */
static void check_mode_sweep_counts_distinct_hashes(void)
{
    char pingpong[4096];
    snprintf(pingpong, sizeof pingpong, "%s", tt_build_path("examples/pingpong"));
    unsetenv("TROUPE_SIM");
    setenv("TROUPE_SIM_CHECK", "1", 1);
    const char *const args[] = {"--seeds", "1-30", pingpong, "200", NULL};
    int code;
    char *out = sim(args, &code);
    unsetenv("TROUPE_SIM_CHECK");
    TT_EQ(code, 0);
    unsigned passed = 0, distinct = 0;
    const char *at = strstr(out, "troupe-sim: ");
    CU_ASSERT(at != NULL &&
              sscanf(at, "troupe-sim: %u seeds passed, %u distinct", &passed, &distinct) == 2);
    TT_EQ(passed, 30);
    CU_ASSERT(distinct > 1);
    CU_ASSERT(strstr(out, "printed no") == NULL);
    free(out);
}

void register_troupe_sim_tests(void)
{
    CU_pSuite s = tt_suite("troupe_sim");
    tt_test(s, "reports_seed_7_and_a_command_that_fails_again",
            reports_seed_7_and_a_command_that_fails_again);
    tt_test(s, "reports_the_lowest_failing_seed_of_those_in_flight",
            reports_the_lowest_failing_seed_of_those_in_flight);
    tt_test(s, "starts_no_seed_after_a_failure", starts_no_seed_after_a_failure);
    tt_test(s, "all_pass_counts_seeds_and_distinct_hashes", all_pass_counts_seeds_and_distinct_hashes);
    tt_test(s, "a_hung_run_is_killed_with_its_children", a_hung_run_is_killed_with_its_children);
    tt_test(s, "sanitizer_and_liveness_lines_are_failures", sanitizer_and_liveness_lines_are_failures);
    tt_test(s, "options_reach_the_runs_and_the_command", options_reach_the_runs_and_the_command);
    tt_test(s, "trace_reruns_the_failing_seed", trace_reruns_the_failing_seed);
    tt_test(s, "bad_arguments_exit_2_with_usage", bad_arguments_exit_2_with_usage);
    tt_test(s, "pct_finds_sim_race_and_the_command_replays_it",
            pct_finds_sim_race_and_the_command_replays_it);
    tt_test(s, "check_mode_sweep_counts_distinct_hashes", check_mode_sweep_counts_distinct_hashes);
}
