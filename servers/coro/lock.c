/* lock.c - the runtime's own mutex, for locks a goroutine holds while it parks.
 *
 * A channel's or WaitGroup's lock is taken by a goroutine and released by its M's g0 after
 * the switch away (park's unlock callback). A pthread mutex must be unlocked by its owner, and
 * ThreadSanitizer, which sees g0 and the goroutine as two fibers, calls that a wrong-thread
 * unlock. Go has the same need and uses its own futex-based lock (lock_futex.go); so do we.
 *
 * Three states, as in Drepper's "Futexes Are Tricky" (mutex 2): 0 unlocked, 1 locked,
 * 2 locked with possible waiters. Uncontended lock and unlock are one atomic operation each;
 * a contended unlock adds one futex wake. A waiter sleeps in the kernel holding its M (never
 * its P's other goroutines for long: these locks guard a few pointer updates).
 */
#include "gmp.h"

#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>

static void futex(_Atomic uint32_t *addr, int op, uint32_t val)
{
    syscall(SYS_futex, (uint32_t *)addr, op | FUTEX_PRIVATE_FLAG, val, NULL, NULL, 0);
}

void coro_lock(struct coro_lock *l)
{
    uint32_t c = 0;
    if (atomic_compare_exchange_strong_explicit(&l->state, &c, 1, memory_order_acquire,
                                                memory_order_relaxed))
        return;
    if (c != 2)
        c = atomic_exchange_explicit(&l->state, 2, memory_order_acquire);
    while (c != 0) {
        futex(&l->state, FUTEX_WAIT, 2);
        c = atomic_exchange_explicit(&l->state, 2, memory_order_acquire);
    }
}

void coro_unlock(struct coro_lock *l)
{
    if (atomic_exchange_explicit(&l->state, 0, memory_order_release) == 2)
        futex(&l->state, FUTEX_WAKE, 1);
}

void park_unlock_cb(struct g *gp, void *lock)
{
    (void)gp;
    coro_unlock(lock);
}
