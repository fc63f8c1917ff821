/* test_exec_evloop.c - the wait scenarios on the event-loop executor: every wait is a
 * callback on the loop thread (a watcher, a timer, a pool completion), and the loop runs until
 * the request is resumed. */
#include "scenarios.h"

#include "exec.h"
#include "loop.h"
#include "pool.h"

#include "http.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <cmocka.h>

static struct loop *test_loop;
static bool test_suspended, test_resumed;

/* The executor suspends a request at its first wait that leaves the loop, and resumes it when
 * it ends: here the resume ends the loop run. */
void http_req_suspend(struct req *r)
{
    (void)r;
    test_suspended = true;
}

void http_req_resume(struct req *r)
{
    (void)r;
    test_resumed = true;
    loop_stop(test_loop);
}

/* The test thread is the loop thread: the first steps run here, the rest from callbacks. */
static void test_run(struct req *r)
{
    test_suspended = test_resumed = false;
    exec_task_run(req_root(r));
    if (test_suspended) {
        assert_int_equal(loop_run(test_loop), 0);
        assert_true(test_resumed);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {SCN_TESTS};
    struct pool *pool;
    if (loop_create(&test_loop) != 0 || pool_create(test_loop, 4, &pool) != 0)
        return 1;
    struct exec_config cfg = {.loop = test_loop, .pool = pool};
    if (exec_init(&cfg) != 0)
        return 1;
    scn_init(exec_http_model.task_ctx_size, test_run);
    int failed = cmocka_run_group_tests(tests, NULL, NULL);
    pool_destroy(pool);
    exec_close();
    loop_destroy(test_loop);
    return failed;
}
