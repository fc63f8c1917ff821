/* test_exec_coro.c - the wait scenarios on the goroutine executor: the request runs in a
 * goroutine on two Ps; its waits park it on the netpoller, a timer or a WaitGroup, and a join
 * spawns a goroutine per child. */
#include "scenarios.h"

#include "coro.h"
#include "exec.h"

#include "http.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

/* The request goroutine is started directly here, not by the HTTP glue. */
void http_req_suspend(struct req *r)
{
    (void)r;
}

void http_req_resume(struct req *r)
{
    (void)r;
}

static void test_req_main(void *arg)
{
    exec_task_run(req_root(arg));
}

/* A fresh runtime per request; the test thread waits until every goroutine is done. */
static void test_run(struct req *r)
{
    struct coro_config cfg = {.procs = 2, .stack_size = 256 * 1024};
    assert_int_equal(coro_start(&cfg), 0);
    assert_int_equal(coro_go(test_req_main, r), 0);
    assert_int_equal(coro_wait_idle(-1), 0);
    coro_stop();
}

int main(void)
{
    const struct CMUnitTest tests[] = {SCN_TESTS};
    scn_init(exec_http_model.task_ctx_size, test_run);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
