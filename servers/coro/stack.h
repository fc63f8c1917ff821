/* stack.h - goroutine stacks: page-granular mmap reservations with a guard page below.
 *
 * Go starts a goroutine on 2 KiB and grows it by copying (runtime/stack.go). C cannot move a
 * stack, because pointers into it are everywhere, so each goroutine here gets a fixed-size
 * reservation instead and lets the kernel back it lazily: only the pages a goroutine actually
 * touches count in RSS (4 KiB at a time), so a 64 KiB stack that never goes deep costs one or two
 * pages, against Go's 2-3 KiB. Overflowing it hits a PROT_NONE guard page and the process dies
 * with SIGSEGV, instead of silently overwriting a neighbour's stack or the heap.
 *
 *        high addresses
 *        +---------------------------+ <- lo + size: the first frame is built just below
 *        | usable stack (size bytes) |    grows down; pages appear in RSS when first touched
 *        |            ...            |
 *        +---------------------------+ <- lo
 *        | guard page (PROT_NONE)    |    a write here faults
 *        +---------------------------+ <- lo - guard: the start of the mapping
 *        low addresses
 *
 * Costs, honestly (dev machine, 20 k stacks of 64 KiB): stack_create() ~5 us (an mmap and an
 * mprotect), the first touch of each page ~6 us (a page fault), stack_destroy() ~10 us (munmap,
 * TLB shootdown). A goroutine switch is ~12 ns, so the scheduler must not create a stack per
 * goroutine: like Go's per-P gFree list, it keeps finished goroutines' stacks on a per-P free
 * list and reuses them, with their pages already faulted in, and only falls back to
 * stack_create() when the list is empty. The flip side: a cached stack keeps the pages its
 * deepest goroutine touched; madvise(MADV_DONTNEED) on it would give them back, at a fault each
 * on the next use. Each guarded stack is also two VMAs (the guard splits the mapping), and
 * vm.max_map_count defaults to 65530, so one process tops out near 32 k live stacks: past that,
 * mmap or mprotect fails with ENOMEM (raise the sysctl, or shrink the number of live stacks).
 */
#ifndef TRIAD_CORO_STACK_H
#define TRIAD_CORO_STACK_H

#include <stddef.h>

/* One stack. The usable range is [lo, lo + size); the guard page sits just below lo. */
struct stack {
    void *lo;     /* lowest usable byte, just above the guard */
    size_t size;  /* usable bytes, a multiple of the page size */
    size_t guard; /* guard bytes below lo (one page) */
};

/* Reserves a stack of at least usable_bytes (rounded up to whole pages) plus a guard page, and
 * describes it in *out. No page of it is touched. Returns 0, -EINVAL if usable_bytes is 0 or
 * absurdly large, or the negative errno of mmap/mprotect (-ENOMEM: out of address space, or
 * vm.max_map_count reached). On failure *out is left empty and nothing is mapped. */
int stack_create(size_t usable_bytes, struct stack *out);

/* Unmaps s, which must come from stack_create() and must not be in use by a live context (call
 * ctx_destroy() on its context first), and leaves *s empty. Destroying an empty stack is a
 * no-op. */
void stack_destroy(struct stack *s);

#endif
