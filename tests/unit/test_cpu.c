/* test_cpu.c - shared/cpu.c: the digest is the documented function, and safe points happen. */
#include "cpu.h"
#include "hook.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

/* Independently computed with the Python definition in cpu.h. */
static void test_digest_vectors(void **state)
{
    (void)state;
    char d[CPU_DIGEST_LEN + 1];
    cpu_digest(0, d);
    assert_string_equal(d, "243f6a8885a308d3");
    cpu_digest(1000, d);
    assert_string_equal(d, "7f055c91756e61d2");
}

static unsigned safepoints;

static void count_cb(void)
{
    safepoints++;
}

static void test_safepoints(void **state)
{
    (void)state;
    char d[CPU_DIGEST_LEN + 1];
    hook_install(&(struct hook_ops){.safepoint_cb = count_cb});
    cpu_digest(CPU_SAFEPOINT_EVERY * 10, d);
    assert_int_equal(safepoints, 10);
    cpu_digest(CPU_SAFEPOINT_EVERY - 1, d);
    assert_int_equal(safepoints, 10);
    hook_install(&(struct hook_ops){0});
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_digest_vectors),
        cmocka_unit_test(test_safepoints),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
