/* scenarios.h - the same waits, performed by each model's executor, without HTTP.
 *
 * Each model's test program (test_exec_<model>.c) sets up its runtime and provides a runner
 * that takes a request whose root task has a test step function, runs it the model's way and
 * returns once it has finished. The scenarios below build such requests over socketpairs and
 * timers, and check what the tasks saw: a descriptor that becomes readable, one whose deadline
 * passes first, one whose peer closes, one that becomes writable again, a blocking call, and
 * a join that mixes timers and descriptors. No timing assertions: a peer thread waits a little
 * before it acts, so that the task is likely parked by then, but the outcome checked is the
 * same either way; a broken wait hangs, and the test's timeout fails it.
 *
 * The executors resume a finished request through http_req_resume and suspend one through
 * http_req_suspend; the test programs define those two (instead of the HTTP glue) to notice
 * the end of a request.
 */
#ifndef TRIAD_TEST_SCENARIOS_H
#define TRIAD_TEST_SCENARIOS_H

#include <stddef.h>

struct req;

typedef void (*scn_runner)(struct req *r);

/* Bytes of model state per task (the model's http_model.task_ctx_size). */
void scn_init(size_t task_ctx_size, scn_runner run);

/* cmocka test functions. */
void scn_fd_readable(void **state);
void scn_fd_deadline(void **state);
void scn_fd_peer_closes(void **state);
void scn_fd_writable(void **state);
void scn_call(void **state);
void scn_join_mixed(void **state);

#define SCN_TESTS                                                                                  \
    cmocka_unit_test(scn_fd_readable), cmocka_unit_test(scn_fd_deadline),                          \
        cmocka_unit_test(scn_fd_peer_closes), cmocka_unit_test(scn_fd_writable),                   \
        cmocka_unit_test(scn_call), cmocka_unit_test(scn_join_mixed)

#endif
