/* test_heap.c - shared/heap.c: order, ties in insertion order, removal from the middle. */
#include "heap.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <cmocka.h>

#define N 1000

static void test_pops_in_order(void **state)
{
    (void)state;
    static struct heap_node nodes[N];
    struct heap h;
    heap_init(&h);
    srand(1);
    for (int i = 0; i < N; i++) {
        nodes[i].key = (uint64_t)(rand() % 100); /* many ties */
        assert_int_equal(heap_push(&h, &nodes[i]), 0);
    }
    /* Remove every third node from wherever it sits. */
    for (int i = 0; i < N; i += 3)
        heap_remove(&h, &nodes[i]);
    struct heap_node *prev = NULL, *n;
    size_t popped = 0;
    while ((n = heap_pop(&h)) != NULL) {
        assert_true((n - nodes) % 3 != 0);
        if (prev) {
            assert_true(prev->key <= n->key);
            if (prev->key == n->key)
                assert_true(prev < n); /* equal keys: insertion order */
        }
        prev = n;
        popped++;
    }
    assert_int_equal(popped, N - (N + 2) / 3);
    assert_null(heap_peek(&h));
    heap_close(&h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_pops_in_order)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
