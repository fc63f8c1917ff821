/* test_stack.c - unit tests of goroutine stacks (servers/coro/stack.h).
 *
 * The guard-page tests crash on purpose, so they run in a forked child and the parent checks how
 * it died. The memory test reads the process's resident set from /proc/self/statm, with no
 * allocation between two readings, and the stack's own pages with mincore(2); no timing.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "ctx.h"
#include "stack.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

static size_t page_size(void)
{
    return (size_t)sysconf(_SC_PAGESIZE);
}

static void test_sizes_round_to_pages(void **state)
{
    (void)state;
    size_t page = page_size();
    struct stack s;

    assert_int_equal(stack_create(1, &s), 0);
    assert_int_equal(s.size, page);
    assert_int_equal(s.guard, page);
    assert_int_equal((uintptr_t)s.lo % page, 0);
    stack_destroy(&s);
    assert_null(s.lo);
    stack_destroy(&s); /* destroying an empty stack is a no-op */

    assert_int_equal(stack_create(3 * page + 1, &s), 0);
    assert_int_equal(s.size, 4 * page);
    stack_destroy(&s);
}

static void test_create_rejects_bad_sizes(void **state)
{
    (void)state;
    struct stack s = {.lo = &s};
    assert_int_equal(stack_create(0, &s), -EINVAL);
    assert_null(s.lo);
    assert_int_equal(stack_create(SIZE_MAX, &s), -EINVAL);
    assert_null(s.lo);
}

static void test_whole_stack_is_writable(void **state)
{
    (void)state;
    struct stack s;
    assert_int_equal(stack_create(256 * 1024, &s), 0);
    volatile unsigned char *p = s.lo;
    for (size_t i = 0; i < s.size; i++)
        p[i] = (unsigned char)i;
    for (size_t i = 0; i < s.size; i++)
        assert_int_equal(p[i], (unsigned char)i);
    stack_destroy(&s);
}

/* ---- The guard page. ---- */

/* In a forked child: die of the default SIGSEGV action (not cmocka's or a sanitizer's handler,
 * and without writing a core file), then let the parent see how the child ended. */
static void child_prepare_to_fault(void)
{
    struct sigaction dfl = {.sa_handler = SIG_DFL};
    struct rlimit no_core = {0, 0};
    sigaction(SIGSEGV, &dfl, NULL);
    setrlimit(RLIMIT_CORE, &no_core);
}

static void assert_child_segfaults(pid_t pid)
{
    int status;
    assert_true(pid > 0);
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFSIGNALED(status));
    assert_int_equal(WTERMSIG(status), SIGSEGV);
}

static void test_write_below_stack_faults(void **state)
{
    (void)state;
    struct stack s;
    assert_int_equal(stack_create(64 * 1024, &s), 0);
    pid_t pid = fork();
    if (pid == 0) {
        child_prepare_to_fault();
        volatile char *lo = s.lo;
        lo[0] = 1;  /* the lowest usable byte is fine */
        lo[-1] = 1; /* the guard page is not */
        _exit(0);
    }
    assert_child_segfaults(pid);
    stack_destroy(&s);
}

struct overflow {
    struct ctx main, co;
};

/* Deep recursion (512 MiB worth): each frame holds a buffer, so the stack runs into the guard. */
__attribute__((noinline)) static int overflow_dig(int depth)
{
    volatile char frame[512];
    frame[0] = (char)depth;
    if (depth > (1 << 20))
        return 0;
    return overflow_dig(depth + 1) + frame[0];
}

static void overflow_fn(void *arg)
{
    (void)arg;
    overflow_dig(0);
}

static void test_overflow_in_context_faults(void **state)
{
    (void)state;
    struct stack s;
    assert_int_equal(stack_create(64 * 1024, &s), 0);
    pid_t pid = fork();
    if (pid == 0) {
        static struct overflow o;
        child_prepare_to_fault();
        ctx_init_thread(&o.main);
        if (ctx_make(&o.co, s.lo, s.size, overflow_fn, NULL) == 0)
            ctx_switch(&o.main, &o.co);
        _exit(0);
    }
    assert_child_segfaults(pid);
    stack_destroy(&s);
}

/* ---- Only touched pages are resident. ---- */

/* Resident pages of this process, read without allocating (no stdio). */
static long resident_pages(void)
{
    char buf[128];
    int fd = open("/proc/self/statm", O_RDONLY | O_CLOEXEC);
    assert_true(fd >= 0);
    ssize_t n = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    assert_true(n > 0);
    buf[n] = '\0';
    char *field = buf;
    strtol(field, &field, 10); /* size; resident follows */
    return strtol(field, NULL, 10);
}

/* Resident pages in [lo, lo + size), by mincore(2): exact, and blind to the shadow memory that
 * sanitizers add to RSS for every page the program touches. */
static long resident_in(void *lo, size_t size)
{
    static unsigned char vec[4096];
    size_t pages = size / page_size();
    long count = 0;
    assert_true(pages <= sizeof(vec));
    assert_int_equal(mincore(lo, size, vec), 0);
    for (size_t i = 0; i < pages; i++)
        count += vec[i] & 1;
    return count;
}

static void test_untouched_until_used(void **state)
{
    (void)state;
    struct stack s;
    /* A first round faults in the code and libc pages these calls use, which count in RSS too. */
    assert_int_equal(stack_create(1024 * 1024, &s), 0);
    stack_destroy(&s);
    resident_pages();
    long before = resident_pages();
    assert_int_equal(stack_create(1024 * 1024, &s), 0);
    long created = resident_pages();
    assert_true(created - before < 3);
    assert_int_equal(resident_in(s.lo, s.size), 0);

    volatile char *top = (char *)s.lo + s.size;
    top[-1] = 1; /* what a fresh context's first frame touches: one page */
    assert_int_equal(resident_in(s.lo, s.size), 1);

    long pages = (long)(s.size / page_size());
    for (long i = 0; i < pages; i++)
        ((volatile char *)s.lo)[(size_t)i * page_size()] = 1;
    assert_int_equal(resident_in(s.lo, s.size), pages);
    long all = resident_pages();
    assert_true(all - created >= pages - 3);

    stack_destroy(&s);
    assert_true(resident_pages() < all - pages / 2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sizes_round_to_pages),
        cmocka_unit_test(test_create_rejects_bad_sizes),
        cmocka_unit_test(test_whole_stack_is_writable),
        cmocka_unit_test(test_write_below_stack_faults),
        cmocka_unit_test(test_overflow_in_context_faults),
        cmocka_unit_test(test_untouched_until_used),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
