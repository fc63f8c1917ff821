/* ctx_ucontext.c - the portable fallback backend of ctx.h: getcontext/makecontext/swapcontext.
 *
 * Only for hosts we have no assembly for (meson.build picks it; see coro_ctx_backend there).
 * swapcontext saves and restores the signal mask, which costs one rt_sigprocmask system call per
 * switch: 194 ns against 12 ns for ctx_x86_64.S on the dev machine (workloads/micro/ctxswitch;
 * 380 ns measured on a 2-vCPU Xeon VM, glibc 2.36), some 15-20x slower. On this backend the bare
 * switch alone costs as much as Go's whole scheduled one (~100-250 ns: runtime.Gosched and an
 * unbuffered chan hand-off, Go 1.19.8 on that VM), so the goroutine mirror would look slower
 * than Go for a reason Go does not have: benchmark results from it
 * misrepresent Go and must say so. It is also deprecated (removed from POSIX.1-2008), though glibc
 * keeps it.
 *
 * Where the saved state lives: a suspended context's ucontext_t sits on its own stack, in the
 * frame of the ctx__jump call that suspended it (or, for a fresh context, at the top of its
 * stack), and ctx->sp points at it. So struct ctx needs no backend-specific field, and nothing is
 * kept per thread: a context can be resumed on any thread. The one behavioural difference from
 * the asm backends: the signal mask travels with the context instead of staying with the thread.
 *
 * Under TSan, ctx__jump is instrumented C that runs after ctx.c's fiber switch: its entry is
 * recorded on the destination's fiber and popped there by the destination's own ctx__jump
 * returning, so every fiber's shadow call stack stays balanced (a fresh one keeps one stale
 * frame at its bottom, which only shows in reports).
 */
#include "ctx.h"

#include <stdint.h>
#include <ucontext.h>

/* What ctx->sp points at while a context is suspended. */
struct ucx_frame {
    ucontext_t uc;
    struct ctx *prev;   /* written by whoever resumes us: the from of that switch */
    void (*fn)(void *); /* fresh context only */
    void *arg;          /* fresh context only */
};

/* ctx__prepare aligns the frame to 16 bytes, which is all any glibc ucontext_t asks for. */
_Static_assert(_Alignof(struct ucx_frame) <= 16, "ucx_frame needs more than 16-byte alignment");

/* makecontext passes only int arguments, so the frame's address comes in two 32-bit halves. */
static void ucx_boot(unsigned int hi, unsigned int lo)
{
    struct ucx_frame *f = (struct ucx_frame *)(uintptr_t)(((uint64_t)hi << 32) | lo);
    ctx__start(f->prev, f->fn, f->arg);
}

/* getcontext() only fills in uc for makecontext() here; that it "returns twice" does not matter,
 * since the context it saves is never resumed. Kept out of line so the compiler does not have to
 * protect ctx__prepare's locals against a second return. */
__attribute__((noinline)) static int ucx_fill(ucontext_t *uc)
{
    return getcontext(uc);
}

void *ctx__prepare(void *stack_lo, void *top, void (*fn)(void *), void *arg)
{
    uintptr_t at = ((uintptr_t)top - sizeof(struct ucx_frame)) & ~(uintptr_t)15;
    struct ucx_frame *f = (struct ucx_frame *)at;

    if (ucx_fill(&f->uc) != 0)
        return NULL; /* errno is set */
    f->uc.uc_stack.ss_sp = stack_lo;
    f->uc.uc_stack.ss_size = at - (uintptr_t)stack_lo;
    f->uc.uc_link = NULL; /* ucx_boot never returns */
    f->prev = NULL;
    f->fn = fn;
    f->arg = arg;
    makecontext(&f->uc, (void (*)(void))ucx_boot, 2, (unsigned int)((uint64_t)at >> 32),
                (unsigned int)at);
    return f;
}

struct ctx *ctx__jump(struct ctx *from, struct ctx *to)
{
    struct ucx_frame here;
    struct ucx_frame *there = to->sp;

    /* ASan's swapcontext interceptor clears the shadow of the target's uc_stack; a context saved
     * by swapcontext never had one set, so make it an empty range rather than stack garbage. */
    here.uc.uc_stack.ss_sp = NULL;
    here.uc.uc_stack.ss_size = 0;
    there->prev = from;
    /* Our frame outlives this call in the only sense that matters: it stays put while we are
     * suspended in swapcontext, which is exactly as long as from->sp points at it. */
    from->sp = &here; /* cppcheck-suppress autoVariables */
    to->sp = NULL;
    swapcontext(&here.uc, &there->uc); /* fails only for invalid arguments */
    /* Whoever resumed us wrote here.prev through its `there` before swapping back. */
    return here.prev; /* cppcheck-suppress uninitvar */
}
