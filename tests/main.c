/* main.c — the troupe test runner.
 *
 *   run                    every suite
 *   run SUITE              one suite (api, mailbox, runq, pid, quiescence, sched,
 *                          idle, wheel, timer, io, frame, net, chat,
 *                          fault, supervisor, names, slots,
 *                          backpressure, depot, poll, writev, ask)
 *   run SUITE TEST         one test of a suite
 *
 * Exits 0 when every test passed, 1 when one failed, 2 on a CUnit error.
 * TROUPE_TEST_TIMEOUT=<seconds> sets the per-test watchdog (default 600, 0 off).
 */
#include "tests.h"

#include <CUnit/Basic.h>
#include <stdio.h>

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0);

    if (CU_initialize_registry() != CUE_SUCCESS) {
        fprintf(stderr, "CUnit: %s\n", CU_get_error_msg());
        return 2;
    }

    register_api_tests();
    register_mailbox_tests();
    register_runq_tests();
    register_pid_tests();
    register_quiescence_tests();
    register_sched_tests();
    register_idle_tests();
    register_wheel_tests();
    register_timer_tests();
    register_io_tests();
    register_frame_tests();
    register_net_tests();
    register_chat_tests();
    register_fault_tests();
    register_supervisor_tests();
    register_names_tests();
    register_slots_tests();
    register_backpressure_tests();
    register_depot_tests();
    register_poll_tests();
    register_writev_tests();
    register_ask_tests();

    if (CU_get_error() != CUE_SUCCESS) {
        fprintf(stderr, "CUnit registration failed: %s\n", CU_get_error_msg());
        CU_cleanup_registry();
        return 2;
    }

    CU_basic_set_mode(CU_BRM_VERBOSE);
    CU_ErrorCode err;
    if (argc > 1) {
        CU_pSuite suite = CU_get_suite(argv[1]);
        if (suite == NULL) {
            fprintf(stderr, "no suite named '%s'\n", argv[1]);
            CU_cleanup_registry();
            return 2;
        }
        if (argc > 2) {
            CU_pTest test = CU_get_test(suite, argv[2]);
            if (test == NULL) {
                fprintf(stderr, "no test named '%s' in suite '%s'\n", argv[2], argv[1]);
                CU_cleanup_registry();
                return 2;
            }
            err = CU_basic_run_test(suite, test);
        } else {
            err = CU_basic_run_suite(suite);
        }
    } else {
        err = CU_basic_run_tests();
    }
    printf("\n");

    unsigned failed_asserts = CU_get_number_of_failures();
    unsigned failed_tests = CU_get_number_of_tests_failed();
    unsigned failed_suites = CU_get_number_of_suites_failed();
    int status = 0;
    if (err != CUE_SUCCESS) {
        fprintf(stderr, "CUnit error: %s\n", CU_get_error_msg());
        status = 2;
    } else if (failed_asserts != 0 || failed_tests != 0 || failed_suites != 0) {
        status = 1;
    }
    if (status == 0)
        printf("troupe tests: all passed\n");
    else
        printf("troupe tests: FAILED (%u failed assertion(s) in %u test(s), "
               "%u suite(s) failed to initialise)\n",
               failed_asserts, failed_tests, failed_suites);
    CU_cleanup_registry();
    return status;
}
