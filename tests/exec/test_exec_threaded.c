/* test_exec_threaded.c - the wait scenarios on the threaded executor: each wait blocks the
 * task's thread (poll, clock_nanosleep, a thread per child), with the GIL on, so that waits
 * must release it for the children and peers to make progress. */
#include "scenarios.h"

#include "exec.h"
#include "gil.h"

#include "hook.h"
#include "http.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

static struct gil *test_gil;

/* The executor resumes requests only in pool mode, which these tests do not use. */
void http_req_suspend(struct req *r)
{
    (void)r;
}

void http_req_resume(struct req *r)
{
    (void)r;
}

static void test_gil_drop_cb(void)
{
    gil_drop(test_gil);
}

static void test_gil_take_cb(void)
{
    gil_take(test_gil);
}

/* Thread per connection: the request runs on the calling thread. */
static void test_run(struct req *r)
{
    exec_task_run(req_root(r));
}

int main(void)
{
    const struct CMUnitTest tests[] = {SCN_TESTS};
    if (gil_create(5000, &test_gil) != 0)
        return 1;
    hook_install(&(struct hook_ops){.blocking_enter_cb = test_gil_drop_cb,
                                    .blocking_exit_cb = test_gil_take_cb});
    struct exec_config cfg = {.db_path = NULL, .gil = test_gil, .threads = 0};
    if (exec_init(&cfg) != 0)
        return 1;
    scn_init(exec_http_model.task_ctx_size, test_run);
    int failed = cmocka_run_group_tests(tests, NULL, NULL);
    exec_close();
    gil_destroy(test_gil);
    return failed;
}
