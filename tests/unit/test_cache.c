/* test_cache.c - shared/cache.c: read-through, and no stale fill after an invalidation. */
#include "cache.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

static void test_miss_fill_hit(void **state)
{
    (void)state;
    int32_t v = 0;
    cache_ticket t;
    assert_false(cache_world_get(42, &v, &t));
    cache_world_fill(42, 1234, t);
    assert_true(cache_world_get(42, &v, &t));
    assert_int_equal(v, 1234);
}

static void test_invalidate_beats_stale_fill(void **state)
{
    (void)state;
    int32_t v = 0;
    cache_ticket t;
    assert_false(cache_world_get(7, &v, &t)); /* a reader misses and goes to the database */
    cache_world_invalidate(7);                /* meanwhile an update commits */
    cache_world_fill(7, 99, t);               /* the reader's (old) value must not stick */
    assert_false(cache_world_get(7, &v, &t));
    struct cache_stats s;
    cache_stats_read(&s);
    assert_true(s.stale_fills >= 1);
    cache_world_fill(7, 100, t); /* a fill with a fresh ticket works */
    assert_true(cache_world_get(7, &v, &t));
    assert_int_equal(v, 100);
    cache_world_invalidate(7);
    assert_false(cache_world_get(7, &v, &t));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_miss_fill_hit),
        cmocka_unit_test(test_invalidate_beats_stale_fill),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
