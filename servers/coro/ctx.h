/* ctx.h - the goroutine context switch: save one stack's registers, resume another's.
 *
 * This is the lowest layer of servers/coro, the piece Go's runtime does in gogo/mcall
 * (runtime/asm_amd64.s). A context is a suspended flow of control: a stack plus the registers the
 * ABI says a call must preserve. Switching saves ours on our stack, loads theirs from theirs, and
 * returns inside the ctx_switch call that last suspended them. Nothing else happens: no queue, no
 * state machine, no allocation. The scheduler above decides who runs; this file only moves.
 *
 * Contract
 *
 *   1. Two kinds of context. ctx_init_thread() describes the calling OS thread's own stack (the
 *      scheduler's g0 on each M). ctx_make() prepares a fresh context on a caller-supplied stack
 *      (see stack.h) that will call fn(arg) the first time it is switched to (a G).
 *   2. A context is either running (on exactly one thread) or suspended. Only a suspended context
 *      may be switched to; switching to a running one, or to yourself, panics.
 *   3. fn must never return. A goroutine that is done ends with ctx_switch_final() to some other
 *      context (normally its M's g0), which then destroys it and frees or caches its stack. It
 *      cannot do that itself: it is still standing on that stack. If fn returns, the entry
 *      trampoline panics with a message naming it.
 *   4. Nothing is bound to a thread, except a thread's own context: a made context may be created
 *      on thread A and resumed on thread B, and may move again at every switch (goroutines migrate
 *      between Ms). A thread's own context must only ever be resumed on its own thread.
 *   5. Publishing a suspended context to other threads (a run queue, a wait list) must happen
 *      after the switch away from it has returned on the other side, i.e. from the destination,
 *      as Go's park_m runs unlockf on g0 after mcall. Until the switch completes the context's
 *      registers are not yet saved and its stack is still in use.
 *   6. What a switch preserves per context: the callee-saved registers and stack pointer, and the
 *      floating-point control modes (x86-64: the MXCSR and the x87 control word; aarch64: FPCR),
 *      so fesetround() in one goroutine does not leak into another. A fresh context starts with
 *      its creator's modes, as a pthread does. Not preserved: the signal mask (the asm backends
 *      leave it with the thread; the ucontext fallback carries it with the context), and thread
 *      identity. The last one bites: after a switch, code may be on a different thread, but the
 *      compiler may reuse a thread-local address (errno's, or a __thread variable's) or a
 *      pthread_self() value computed before the call, since glibc declares those functions
 *      const. Never keep TLS pointers across a switch; re-read per-thread state through a
 *      noinline function after the switch, and save errno before switching.
 *
 * Sanitizers: when built with ASan or TSan the switch tells them about it (fibers). That needs
 * nothing from the caller beyond this contract; see ctx.c for the costs and caveats.
 */
#ifndef TRIAD_CORO_CTX_H
#define TRIAD_CORO_CTX_H

#include <stddef.h>

/* A made context needs at least this much stack: the entry frames and one switch. A goroutine
 * needs far more (the scheduler picks the size); this is only the floor ctx_make() checks. */
#define CTX_STACK_MIN 4096

/* One context. Public so the scheduler can embed it in its G and M structures; the fields belong
 * to ctx.c and the backend, callers only pass pointers. The layout is the same whatever the
 * backend or sanitizers, so every object in a build agrees on it. */
struct ctx {
    void *sp;          /* backend's saved state (the stack pointer); NULL while running. The asm
                          backends read and write it at offset 0. */
    void *stack_lo;    /* lowest usable byte of the stack; NULL for a thread's own context */
    size_t stack_size; /* usable bytes above stack_lo; 0 for a thread's own context */
    /* Sanitizer bookkeeping, unused (zero) unless built with ASan or TSan. */
    void *asan_fake_stack; /* ASan: fake frames parked while this context is suspended */
    const void *asan_lo;   /* ASan: stack bounds as ASan sees them, learned for a thread's own */
    size_t asan_size;      /*       context at its first switch away */
    void *tsan_fiber;      /* TSan: this context's fiber */
};

/* Describes the calling thread's own stack as context c, currently running. Call it on that
 * thread before its first switch, on its own stack (not from inside a made context). Never fails.
 * ctx_destroy() on it is optional and only clears it. */
void ctx_init_thread(struct ctx *c);

/* Prepares c, which must not hold a live context (ctx_destroy() it first), to run fn(arg) on the
 * stack [stack_lo, stack_lo + size) when first switched to. The stack must stay valid until
 * ctx_destroy(c); nothing but the entry frame at its top is written before the first switch (64
 * bytes on x86-64, 176 on aarch64, ~1 KiB with ucontext). fn must never return (see 3). Returns
 * 0, -EINVAL if size < CTX_STACK_MIN, or -ENOMEM (TSan could not make a fiber). */
int ctx_make(struct ctx *c, void *stack_lo, size_t size, void (*fn)(void *), void *arg);

/* Suspends the running context from (the caller must be running on it) and resumes the suspended
 * context to, on this thread. Returns when some thread later switches back to from, and returns
 * the context that did so, which has just been suspended or finished (useful to g0, which learns
 * which G parked or died). Cost: ~12 ns with the asm backends on the dev machine, ~200 ns with
 * ucontext (workloads/micro/ctxswitch). */
struct ctx *ctx_switch(struct ctx *from, struct ctx *to);

/* Like ctx_switch(), but from has finished for good and is never resumed: this lets ASan drop its
 * fake stack. Some other context (normally the one switched to) must then ctx_destroy(from)
 * before from or its stack is reused. */
_Noreturn void ctx_switch_final(struct ctx *from, struct ctx *to);

/* Releases what ctx_make() or ctx_init_thread() set up (the TSan fiber) but not the stack, which
 * belongs to the caller. c must not be running, unless it is the calling thread's own context.
 * Destroying a suspended context that did not end with ctx_switch_final() is allowed; under ASan
 * with detect_stack_use_after_return=1 it leaks that context's fake stack. */
void ctx_destroy(struct ctx *c);

/* Backend hooks: one set per backend file (ctx_x86_64.S, ctx_aarch64.S, ctx_ucontext.c), called
 * only by ctx.c. Not for callers.
 *
 * ctx__prepare builds the first frame of a fresh context below top (16-byte aligned by the hook)
 * and returns the value for c->sp, or NULL with errno set. ctx__jump saves the caller's registers
 * on its stack, stores the stack pointer in from->sp, loads to->sp, sets to->sp to NULL (to is
 * running now) and resumes to; it returns, in to, the from argument of the switch that resumed
 * it. A fresh context's first frame calls ctx__start(prev, fn, arg) with the ABI's 16-byte stack
 * alignment, prev being that from argument. */
void *ctx__prepare(void *stack_lo, void *top, void (*fn)(void *), void *arg);
struct ctx *ctx__jump(struct ctx *from, struct ctx *to);
_Noreturn void ctx__start(struct ctx *prev, void (*fn)(void *), void *arg);

#endif
