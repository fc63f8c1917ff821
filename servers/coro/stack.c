/* stack.c - goroutine stacks (see stack.h for the layout and the costs). */
#include "stack.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

/* Same message shape as TRIAD_ASSERT in shared/check.h (see ctx.c for why it is a copy). */
#define STACK_ASSERT(cond, msg)                                                                    \
    do {                                                                                           \
        if (!(cond))                                                                               \
            stack_panic(__func__, __FILE__, __LINE__, #cond, (msg));                               \
    } while (0)

_Noreturn static void stack_panic(const char *func, const char *file, int line, const char *cond,
                                  const char *msg)
{
    fprintf(stderr, "triad: panic in %s (%s:%d): %s: %s\n", func, file, line, cond, msg);
    abort();
}

static size_t stack_page_size(void)
{
    long page = sysconf(_SC_PAGESIZE); /* glibc answers from memory, no system call */
    STACK_ASSERT(page > 0 && (page & (page - 1)) == 0, "odd page size");
    return (size_t)page;
}

int stack_create(size_t usable_bytes, struct stack *out)
{
    STACK_ASSERT(out != NULL, "no stack");
    *out = (struct stack){0};
    size_t page = stack_page_size();
    if (usable_bytes == 0 || usable_bytes > SIZE_MAX / 2)
        return -EINVAL;
    size_t size = (usable_bytes + page - 1) & ~(page - 1);

    /* MAP_NORESERVE: under the default overcommit policy the reservation is not charged against
     * commit until touched, so 10 k idle goroutines do not need 10 k x 64 KiB of commit.
     * MAP_STACK: a hint today, and since Linux 6.7 it also keeps transparent huge pages away
     * (stacks under 2 MiB cannot get one anyway). */
    char *map = mmap(NULL, page + size, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_STACK, -1, 0);
    if (map == MAP_FAILED)
        return -errno;
    /* The guard is the lowest page because stacks grow down. This splits the mapping into two
     * VMAs, which is where the vm.max_map_count limit of stack.h comes from. */
    if (mprotect(map, page, PROT_NONE) != 0)
        goto fail_unmap;

    *out = (struct stack){.lo = map + page, .size = size, .guard = page};
    return 0;

fail_unmap:;
    int err = errno;
    munmap(map, page + size);
    return -err;
}

void stack_destroy(struct stack *s)
{
    STACK_ASSERT(s != NULL, "no stack");
    if (s->lo == NULL)
        return;
    int rc = munmap((char *)s->lo - s->guard, s->guard + s->size);
    STACK_ASSERT(rc == 0, "munmap of a stack failed: not from stack_create()?");
    *s = (struct stack){0};
}
