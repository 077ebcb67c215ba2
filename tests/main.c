/* main.c — the troupe test runner.
 *
 *   run                    every suite
 *   run SUITE              one suite (api, mailbox, runq, pid, quiescence, sched,
 *                          idle, wheel, timer, io, frame, tcp_echo, tcp_framing,
 *                          tcp_backpressure, tcp_bad_input, tcp_faults,
 *                          tcp_connect, tcp_close, udp, chat_nicks, chat_rooms,
 *                          chat_messages, chat_input, chat_leaving, chat_limits,
 *                          fault, supervisor, names, slots, spec, on_stop, ask,
 *                          backpressure, depot, keyed, poll, writev, debug, errors,
 *                          http_parse, http_keepalive, http_pipeline, http_limits,
 *                          http_bad_input, http_slowloris, http_example,
 *                          metrics_serve, troupe_top, troupe_sim,
 *                          dist_proto, dist_erl, dist_handshake, dist_example,
 *                          dist_link, dist_fault, dist_nodedown,
 *                          dist_bad_input, dist_order, dist_restart, dist_race,
 *                          dist_lookup,
 *                          watchdog, trace, metrics_figures, metrics_top,
 *                          metrics_dump, metrics_workers, dist_big, dist_ask,
 *                          sim, simnet, simnet_e2e, sim_chat, sim_dist)
 *   run GROUP              every suite named GROUP_*: `run tcp`, `run chat`, `run http`, `run dist`,
 *                          `run metrics`
 *   run SUITE TEST         one test of a suite
 *
 * Exits 0 when every test passed, 1 when one failed, 2 on a CUnit error.
 * TROUPE_TEST_TIMEOUT=<seconds> sets the per-test watchdog (default 600, 0 off).
 */
#include "tests.h"

#include <CUnit/Basic.h>
#include <stdio.h>
#include <string.h>

/* Leaves active only the suites named group_*; false if there is none. */
static bool select_group(const char *group)
{
    size_t n = strlen(group);
    bool any = false;
    for (CU_pSuite s = CU_get_registry()->pSuite; s != NULL; s = s->pNext) {
        bool in = strncmp(s->pName, group, n) == 0 && s->pName[n] == '_';
        CU_set_suite_active(s, in ? CU_TRUE : CU_FALSE);
        any |= in;
    }
    return any;
}

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
    register_tcp_echo_tests();
    register_tcp_framing_tests();
    register_tcp_backpressure_tests();
    register_tcp_bad_input_tests();
    register_tcp_faults_tests();
    register_tcp_connect_tests();
    register_tcp_close_tests();
    register_udp_tests();
    register_chat_nicks_tests();
    register_chat_rooms_tests();
    register_chat_messages_tests();
    register_chat_input_tests();
    register_chat_leaving_tests();
    register_chat_limits_tests();
    register_fault_tests();
    register_supervisor_tests();
    register_names_tests();
    register_slots_tests();
    register_backpressure_tests();
    register_depot_tests();
    register_keyed_tests();
    register_poll_tests();
    register_writev_tests();
    register_debug_tests();
    register_errors_tests();
    register_spec_tests();
    register_on_stop_tests();
    register_ask_tests();
    register_http_parse_tests();
    register_http_keepalive_tests();
    register_http_pipeline_tests();
    register_http_limits_tests();
    register_http_bad_input_tests();
    register_http_slowloris_tests();
    register_http_example_tests();
    register_metrics_serve_tests();
    register_troupe_top_tests();
    register_troupe_sim_tests();
    register_dist_proto_tests();
    register_dist_erl_tests();
    register_dist_handshake_tests();
    register_dist_example_tests();
    register_dist_link_tests();
    register_dist_fault_tests();
    register_dist_nodedown_tests();
    register_dist_bad_input_tests();
    register_dist_order_tests();
    register_dist_restart_tests();
    register_dist_race_tests();
    register_dist_lookup_tests();
    register_watchdog_tests();
    register_trace_tests();
    register_metrics_figures_tests();
    register_metrics_top_tests();
    register_metrics_dump_tests();
    register_metrics_workers_tests();
    register_dist_big_tests();
    register_dist_ask_tests();
    register_sim_tests();
    register_simnet_tests();
    register_simnet_e2e_tests();
    register_sim_chat_tests();
    register_sim_dist_tests();
    register_nomem_tests();

    if (CU_get_error() != CUE_SUCCESS) {
        fprintf(stderr, "CUnit registration failed: %s\n", CU_get_error_msg());
        CU_cleanup_registry();
        return 2;
    }

    CU_basic_set_mode(CU_BRM_VERBOSE);
    CU_ErrorCode err;
    if (argc > 1) {
        CU_pSuite suite = CU_get_suite(argv[1]);
        if (suite == NULL && argc == 2 && select_group(argv[1])) {
            CU_set_fail_on_inactive(CU_FALSE); /* the other groups are not failures */
            err = CU_basic_run_tests();
        } else if (suite == NULL) {
            fprintf(stderr, "no suite named '%s'\n", argv[1]);
            CU_cleanup_registry();
            return 2;
        } else if (argc > 2) {
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
