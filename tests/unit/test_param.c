/* test_param.c - shared/param.c: TechEmpower clamping and strict integers. */
#include "param.h"

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

static void test_count_clamp(void **state)
{
    (void)state;
    assert_int_equal(param_count_clamp(NULL), 1);
    assert_int_equal(param_count_clamp(""), 1);
    assert_int_equal(param_count_clamp("foo"), 1);
    assert_int_equal(param_count_clamp("0"), 1);
    assert_int_equal(param_count_clamp("-5"), 1);
    assert_int_equal(param_count_clamp("1.5"), 1);
    assert_int_equal(param_count_clamp("2"), 2);
    assert_int_equal(param_count_clamp("500"), 500);
    assert_int_equal(param_count_clamp("501"), 500);
    assert_int_equal(param_count_clamp("99999999999999999999999"), 500);
}

static void test_parse_u64(void **state)
{
    (void)state;
    uint64_t v = 7;
    assert_int_equal(param_parse_u64("0", 0, 10, &v), 0);
    assert_int_equal(v, 0);
    assert_int_equal(param_parse_u64("10", 0, 10, &v), 0);
    assert_int_equal(v, 10);
    assert_int_equal(param_parse_u64("11", 0, 10, &v), -ERANGE);
    assert_int_equal(param_parse_u64("0", 1, 10, &v), -ERANGE);
    assert_int_equal(param_parse_u64("18446744073709551616", 0, UINT64_MAX, &v), -ERANGE);
    assert_int_equal(param_parse_u64("18446744073709551615", 0, UINT64_MAX, &v), 0);
    assert_true(v == UINT64_MAX);
    const char *bad[] = {NULL, "", " 5", "5 ", "+5", "-5", "1e3", "0x10", "5a", "abc"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(param_parse_u64(bad[i], 0, 100, &v), -EINVAL);
}

static void test_parse_id(void **state)
{
    (void)state;
    int64_t id = 0;
    assert_int_equal(param_parse_id("1", &id), 0);
    assert_int_equal(id, 1);
    assert_int_equal(param_parse_id("9223372036854775807", &id), 0);
    assert_true(id == INT64_MAX);
    const char *bad[] = {NULL, "", "0", "007", "-1", "9223372036854775808", "abc", "1/2"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(param_parse_id(bad[i], &id), -EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_count_clamp),
        cmocka_unit_test(test_parse_u64),
        cmocka_unit_test(test_parse_id),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
