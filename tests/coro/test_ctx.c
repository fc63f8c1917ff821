/* test_ctx.c - unit tests of the context switch (servers/coro/ctx.h).
 *
 * meson.build builds this file twice: against the host's native backend and against the ucontext
 * fallback, and always with optimisation, so that values held across a switch really live in
 * callee-saved registers. cmocka reports a failed assertion by longjmp() to its runner, which
 * must not happen from a coroutine stack or another thread: coroutines and threads only record
 * what they saw, and the test body checks it afterwards on the main stack.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "ctx.h"
#include "stack.h"

#include <errno.h>
#include <fenv.h>
#include <math.h>
#include <pthread.h>
#include <stdalign.h>
#if defined(__SSE__)
#include <xmmintrin.h>
#endif

/* Under TSan, the fiber TSan thinks is running must follow every switch. */
#if defined(__SANITIZE_THREAD__)
#define TEST_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define TEST_TSAN 1
#endif
#endif
#ifdef TEST_TSAN
#include <sanitizer/tsan_interface.h>
#define TSAN_FIBER_IS(c) (__tsan_get_current_fiber() == (c)->tsan_fiber)
#else
#define TSAN_FIBER_IS(c) 1
#endif

#define CO_STACK (64 * 1024)

/* A coroutine: a context on its own stack. */
struct co {
    struct ctx ctx;
    struct stack stack;
};

static void co_start(struct co *co, void (*fn)(void *), void *arg)
{
    assert_int_equal(stack_create(CO_STACK, &co->stack), 0);
    assert_int_equal(ctx_make(&co->ctx, co->stack.lo, co->stack.size, fn, arg), 0);
}

static void co_end(struct co *co)
{
    ctx_destroy(&co->ctx);
    stack_destroy(&co->stack);
}

/* ---- Ping-pong: strict alternation, and ctx_switch() returns who switched to us. ---- */

struct pingpong {
    struct ctx main;
    struct co co;
    long rounds, counter, out_of_order, wrong_fiber;
};

static void pingpong_fn(void *arg)
{
    struct pingpong *p = arg;
    for (long i = 0; i < p->rounds; i++) {
        p->out_of_order += p->counter != 2 * i + 1;
        p->wrong_fiber += !TSAN_FIBER_IS(&p->co.ctx);
        p->counter++;
        ctx_switch(&p->co.ctx, &p->main);
    }
    ctx_switch_final(&p->co.ctx, &p->main);
}

static void test_ping_pong(void **state)
{
    (void)state;
    static struct pingpong p = {.rounds = 100000};
    ctx_init_thread(&p.main);
    co_start(&p.co, pingpong_fn, &p);
    for (long i = 0; i < p.rounds; i++) {
        assert_int_equal(p.counter, 2 * i);
        p.counter++;
        assert_ptr_equal(ctx_switch(&p.main, &p.co.ctx), &p.co.ctx);
        assert_int_equal(p.counter, 2 * i + 2);
        assert_true(TSAN_FIBER_IS(&p.main));
    }
    assert_ptr_equal(ctx_switch(&p.main, &p.co.ctx), &p.co.ctx); /* it finishes */
    assert_int_equal(p.out_of_order, 0);
    assert_int_equal(p.wrong_fiber, 0);
    co_end(&p.co);
    ctx_destroy(&p.main);
}

/* ---- Many contexts, interleaved through main and handing off to each other directly. ---- */

#define RING_SIZE   64
#define RING_ROUNDS 50

struct ring {
    struct ctx main;
    struct co co[RING_SIZE];
    int log[RING_SIZE * RING_ROUNDS * 2];
    int logged;
};

static struct ring ring;

static void ring_fn(void *arg)
{
    int id = (int)(intptr_t)arg;
    for (int round = 0; round < RING_ROUNDS; round++) {
        ring.log[ring.logged++] = id; /* via main */
        ctx_switch(&ring.co[id].ctx, &ring.main);
        ring.log[ring.logged++] = id; /* along the ring: 0 -> 1 -> ... -> last -> main */
        struct ctx *next = id + 1 < RING_SIZE ? &ring.co[id + 1].ctx : &ring.main;
        ctx_switch(&ring.co[id].ctx, next);
    }
    ctx_switch_final(&ring.co[id].ctx, &ring.main);
}

static void test_many_interleaved(void **state)
{
    (void)state;
    ctx_init_thread(&ring.main);
    for (int i = 0; i < RING_SIZE; i++)
        co_start(&ring.co[i], ring_fn, (void *)(intptr_t)i);
    for (int round = 0; round < RING_ROUNDS; round++) {
        for (int i = 0; i < RING_SIZE; i++)
            assert_ptr_equal(ctx_switch(&ring.main, &ring.co[i].ctx), &ring.co[i].ctx);
        struct ctx *prev = ctx_switch(&ring.main, &ring.co[0].ctx);
        assert_ptr_equal(prev, &ring.co[RING_SIZE - 1].ctx); /* the ring came back around */
    }
    for (int i = 0; i < RING_SIZE; i++) {
        ctx_switch(&ring.main, &ring.co[i].ctx); /* each one finishes */
        co_end(&ring.co[i]);
    }
    assert_int_equal(ring.logged, RING_SIZE * RING_ROUNDS * 2);
    for (int k = 0; k < ring.logged; k++)
        assert_int_equal(ring.log[k], k % RING_SIZE);
}

/* ---- Callee-saved registers. ---- */

/* Twelve integers and eight doubles held across every switch: more live values than there are
 * callee-saved registers, so an optimising compiler keeps some in rbx, rbp, r12-r15 (aarch64:
 * x19-x28, d8-d15) and spills the rest to the stack. Each step feeds every value into its next
 * one, so a value clobbered once changes the final digest. */
#define LIVE_DECLARE(seed)                                                                         \
    uint64_t v0 = (seed) + 1, v1 = (seed)*3, v2 = (seed) ^ 0x9e3779b9u, v3 = (seed) + 17,          \
             v4 = (seed)*7, v5 = (seed) ^ 0x55u, v6 = (seed) + 101, v7 = (seed)*11,                \
             v8 = (seed) ^ 0xf00du, v9 = (seed) + 1009, v10 = (seed)*13, v11 = (seed) ^ 0xbeefu;   \
    double f0 = (double)((seed)&0xff), f1 = f0 + 1, f2 = f0 + 2, f3 = f0 + 3, f4 = f0 + 4,         \
           f5 = f0 + 5, f6 = f0 + 6, f7 = f0 + 7

#define LIVE_STEP()                                                                                \
    do {                                                                                           \
        v0 = v0 * 6364136223846793005u + 1442695040888963407u;                                     \
        v1 = (v1 ^ v0) * 3, v2 = (v2 ^ v1) * 5, v3 = (v3 ^ v2) * 7, v4 = (v4 ^ v3) * 9;            \
        v5 = (v5 ^ v4) * 11, v6 = (v6 ^ v5) * 13, v7 = (v7 ^ v6) * 15, v8 = (v8 ^ v7) * 17;        \
        v9 = (v9 ^ v8) * 19, v10 = (v10 ^ v9) * 21, v11 = (v11 ^ v10) * 23;                        \
        f0 += 1, f1 += f0, f2 += 2, f3 += f2, f4 += 3, f5 += f4, f6 += 4, f7 += f6;                \
    } while (0)

#define LIVE_DIGEST()                                                                              \
    (v0 ^ v1 ^ v2 ^ v3 ^ v4 ^ v5 ^ v6 ^ v7 ^ v8 ^ v9 ^ v10 ^ v11 ^                                 \
     (uint64_t)(f0 + f1 * 3 + f2 * 5 + f3 * 7 + f4 * 11 + f5 * 13 + f6 * 17 + f7 * 19))

#define LIVE_ROUNDS 1000

/* The same computation with no switches in between: what the digests must be. */
__attribute__((noinline)) static uint64_t live_expected(uint64_t seed, int rounds)
{
    LIVE_DECLARE(seed);
    for (int i = 0; i < rounds; i++)
        LIVE_STEP();
    return LIVE_DIGEST();
}

/* Overwrites the callee-saved registers it can name, so the other side must restore its own. */
static inline void trash_callee_saved(void)
{
#if defined(__x86_64__)
    __asm__ volatile("movq $-1, %%rbx\n\tmovq $-1, %%r12\n\tmovq $-1, %%r13\n\t"
                     "movq $-1, %%r14\n\tmovq $-1, %%r15" ::
                         : "rbx", "r12", "r13", "r14", "r15");
#elif defined(__aarch64__)
    __asm__ volatile("mov x19, #-1\n\tmov x20, #-1\n\tmov x21, #-1\n\tmov x22, #-1\n\t"
                     "mov x23, #-1\n\tmov x24, #-1\n\tmov x25, #-1\n\tmov x26, #-1\n\t"
                     "mov x27, #-1\n\tmov x28, #-1\n\tmovi d8, #-1\n\tmovi d9, #-1\n\t"
                     "movi d10, #-1\n\tmovi d11, #-1\n\tmovi d12, #-1\n\tmovi d13, #-1\n\t"
                     "movi d14, #-1\n\tmovi d15, #-1" ::
                         : "x19", "x20", "x21", "x22", "x23", "x24", "x25", "x26", "x27", "x28",
                           "v8", "v9", "v10", "v11", "v12", "v13", "v14", "v15");
#endif
}

/* Holds the live values across `rounds` switches from -> to: the side whose registers matter. */
__attribute__((noinline)) static uint64_t regs_hold(struct ctx *from, struct ctx *to, uint64_t seed)
{
    LIVE_DECLARE(seed);
    for (int i = 0; i < LIVE_ROUNDS; i++) {
        ctx_switch(from, to);
        LIVE_STEP();
    }
    return LIVE_DIGEST();
}

/* The other side: garbage in every callee-saved register it can name at each switch. */
__attribute__((noinline)) static void regs_trash(struct ctx *from, struct ctx *to, int rounds)
{
    for (int i = 0; i < rounds; i++) {
        trash_callee_saved();
        ctx_switch(from, to);
    }
}

struct regs {
    struct ctx main;
    struct co co;
    volatile uint64_t seed; /* volatile: the compiler cannot fold the digests */
    uint64_t co_digest;
};

static void regs_fn(void *arg)
{
    struct regs *r = arg;
    regs_trash(&r->co.ctx, &r->main, LIVE_ROUNDS);                      /* while main holds */
    r->co_digest = regs_hold(&r->co.ctx, &r->main, r->seed ^ 0xc0ffee); /* while main trashes */
    ctx_switch_final(&r->co.ctx, &r->main);
}

static void test_registers_preserved(void **state)
{
    (void)state;
    static struct regs r = {.seed = 0x1234567};
    ctx_init_thread(&r.main);
    co_start(&r.co, regs_fn, &r);
    uint64_t digest = regs_hold(&r.main, &r.co.ctx, r.seed);
    regs_trash(&r.main, &r.co.ctx, LIVE_ROUNDS + 1); /* + 1: the switch in which it finishes */
    assert_true(digest == live_expected(r.seed, LIVE_ROUNDS));
    assert_true(r.co_digest == live_expected(r.seed ^ 0xc0ffee, LIVE_ROUNDS));
    co_end(&r.co);
}

/* ---- Floating-point modes are per context. ---- */

struct fp {
    struct ctx main;
    struct co co;
    volatile double x; /* 2.3: rounds to 2 to nearest, 3 upward, 2 toward zero */
    int inherited, wrong;
};

static int fp_rounds_to(double want, double x)
{
    int ok = rint(x) == want;
#if defined(__x86_64__) || defined(__i386__)
    ok = ok && rintl((long double)x) == (long double)want; /* the x87 control word */
#endif
    return ok;
}

static void fp_fn(void *arg)
{
    struct fp *p = arg;
    p->inherited = fegetround() == FE_UPWARD && fp_rounds_to(3.0, p->x);
    fesetround(FE_TOWARDZERO);
    for (int i = 0; i < 1000; i++) {
        ctx_switch(&p->co.ctx, &p->main);
        if (fegetround() != FE_TOWARDZERO || !fp_rounds_to(2.0, p->x))
            p->wrong++;
    }
    ctx_switch_final(&p->co.ctx, &p->main);
}

static void test_fp_modes_per_context(void **state)
{
    (void)state;
    static struct fp p = {.x = 2.3};
    ctx_init_thread(&p.main);
    fesetround(FE_UPWARD); /* a fresh context inherits its creator's modes at ctx_make() */
    co_start(&p.co, fp_fn, &p);
    fesetround(FE_TONEAREST);
    for (int i = 0; i <= 1000; i++) {
        ctx_switch(&p.main, &p.co.ctx);
        assert_int_equal(fegetround(), FE_TONEAREST);
        assert_true(fp_rounds_to(2.0, p.x));
    }
    assert_true(p.inherited);
    assert_int_equal(p.wrong, 0);
    co_end(&p.co);
}

/* ---- The entry frame is aligned as the ABI promises. ---- */

struct align {
    struct ctx main, co;
    uintptr_t frame, local;
};

/* Not inlined, so its frame is laid out from an ABI-aligned call, as any function's would be. */
__attribute__((noinline)) static void align_probe(struct align *a)
{
    alignas(16) volatile unsigned char local[16];
    local[0] = 1;
    a->local = (uintptr_t)local;
    a->frame = (uintptr_t)__builtin_frame_address(0);
#if defined(__SSE__)
    volatile __m128 v = _mm_set1_ps(1.0f); /* an aligned 16-byte store: faults if misaligned */
    (void)v;
#endif
}

static void align_fn(void *arg)
{
    struct align *a = arg;
    align_probe(a);
    ctx_switch_final(&a->co, &a->main);
}

static void test_entry_stack_aligned(void **state)
{
    (void)state;
    struct stack s;
    assert_int_equal(stack_create(CO_STACK, &s), 0);
    /* An odd end address too: ctx_make() must align the top itself. */
    static const size_t trims[] = {0, 1, 8, 13};
    for (size_t t = 0; t < sizeof(trims) / sizeof(trims[0]); t++) {
        static struct align a;
        ctx_init_thread(&a.main);
        assert_int_equal(ctx_make(&a.co, s.lo, s.size - trims[t], align_fn, &a), 0);
        ctx_switch(&a.main, &a.co);
        assert_int_equal(a.frame % 16, 0);
        assert_int_equal(a.local % 16, 0);
        ctx_destroy(&a.co);
    }
    stack_destroy(&s);
}

/* ---- Finished contexts, and their stacks reused with different frame layouts. ---- */

struct reuse {
    struct ctx main, co;
    int depth;
};

/* Called through a pointer so the compiler does not see reuse_dig() as endless recursion. */
static void (*volatile reuse_end)(struct ctx *from, struct ctx *to) = ctx_switch_final;

__attribute__((noinline)) static void reuse_dig(struct reuse *r, int depth)
{
    volatile char frame[40 + 8 * (depth & 7)]; /* address-taken locals: ASan redzones */
    frame[0] = (char)depth;
    if (depth < r->depth)
        reuse_dig(r, depth + 1);
    else
        reuse_end(&r->co, &r->main); /* the frames above never return */
    (void)frame[0];
}

static void reuse_fn(void *arg)
{
    reuse_dig(arg, 0);
}

static void test_final_and_reuse(void **state)
{
    (void)state;
    static struct reuse r;
    struct stack s;
    assert_int_equal(stack_create(CO_STACK, &s), 0);
    ctx_init_thread(&r.main);
    for (int i = 0; i < 500; i++) {
        r.depth = i % 11;
        assert_int_equal(ctx_make(&r.co, s.lo, s.size, reuse_fn, &r), 0);
        assert_ptr_equal(ctx_switch(&r.main, &r.co), &r.co);
        ctx_destroy(&r.co);
    }
    stack_destroy(&s);
}

static void test_make_rejects_tiny_stack(void **state)
{
    (void)state;
    static char mem[CTX_STACK_MIN];
    struct ctx c;
    assert_int_equal(ctx_make(&c, mem, CTX_STACK_MIN - 1, reuse_fn, NULL), -EINVAL);
    assert_int_equal(ctx_make(&c, mem, CTX_STACK_MIN, reuse_fn, NULL), 0);
    ctx_destroy(&c);
}

/* ---- Contexts resumed on other threads: goroutines migrate between Ms. ---- */

/* glibc declares pthread_self() const, so a compiler may reuse its value across a switch in one
 * function (the hazard ctx.h warns about); a call through a volatile pointer cannot be reused. */
static pthread_t (*volatile thread_self)(void) = pthread_self;

/* The test thread makes a set of contexts and never runs them. Two other threads pass them back
 * and forth, each always to the other thread, so every context starts on a thread that did not
 * create it and every resume happens on a different thread than the last run: a scheduler's
 * migration, made certain. */
#define MIG_COS   16
#define MIG_STEPS 500

struct mig_co {
    struct co co;
    struct ctx *home; /* set by the thread that resumes it, before each switch */
    pthread_t first;  /* the thread it started on */
    int steps, moves, wrong_prev, done;
    uint64_t digest;
};

static struct mig {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    struct mig_co *inbox[2][MIG_COS]; /* one stack of contexts per thread */
    int count[2];
    int finished;
    struct mig_co cos[MIG_COS];
} mig = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};

static void mig_fn(void *arg)
{
    struct mig_co *m = arg;
    LIVE_DECLARE((uint64_t)(m - mig.cos));
    pthread_t last = m->first = thread_self();
    for (int i = 0; i < MIG_STEPS; i++) {
        LIVE_STEP();
        m->steps++;
        if (ctx_switch(&m->co.ctx, m->home) != m->home) /* m->home: the new resumer's */
            m->wrong_prev++;
        pthread_t now = thread_self();
        m->moves += !pthread_equal(now, last);
        last = now;
    }
    m->digest = LIVE_DIGEST();
    m->done = 1;
    ctx_switch_final(&m->co.ctx, m->home);
}

static void mig_push(int t, struct mig_co *m)
{
    pthread_mutex_lock(&mig.mu);
    mig.inbox[t][mig.count[t]++] = m;
    pthread_cond_broadcast(&mig.cv);
    pthread_mutex_unlock(&mig.mu);
}

/* The next context for thread t, or NULL once every context has finished. */
static struct mig_co *mig_pop(int t)
{
    struct mig_co *m = NULL;
    pthread_mutex_lock(&mig.mu);
    while (mig.count[t] == 0 && mig.finished < MIG_COS)
        pthread_cond_wait(&mig.cv, &mig.mu);
    if (mig.count[t] > 0)
        m = mig.inbox[t][--mig.count[t]];
    pthread_mutex_unlock(&mig.mu);
    return m;
}

static void *mig_thread(void *arg)
{
    int t = (int)(intptr_t)arg;
    struct ctx self;
    struct mig_co *m;
    ctx_init_thread(&self);
    while ((m = mig_pop(t)) != NULL) {
        m->home = &self;
        ctx_switch(&self, &m->co.ctx);
        if (!m->done) {
            mig_push(1 - t, m); /* published only now that the switch away has completed */
            continue;
        }
        ctx_destroy(&m->co.ctx);
        pthread_mutex_lock(&mig.mu);
        mig.finished++;
        pthread_cond_broadcast(&mig.cv);
        pthread_mutex_unlock(&mig.mu);
    }
    ctx_destroy(&self);
    return NULL;
}

static void test_migrating_between_threads(void **state)
{
    (void)state;
    pthread_t threads[2];
    for (int i = 0; i < MIG_COS; i++) {
        co_start(&mig.cos[i].co, mig_fn, &mig.cos[i]);
        mig_push(i % 2, &mig.cos[i]);
    }
    for (int t = 0; t < 2; t++)
        assert_int_equal(pthread_create(&threads[t], NULL, mig_thread, (void *)(intptr_t)t), 0);
    for (int t = 0; t < 2; t++)
        assert_int_equal(pthread_join(threads[t], NULL), 0);
    for (int i = 0; i < MIG_COS; i++) {
        struct mig_co *m = &mig.cos[i];
        assert_false(pthread_equal(m->first, pthread_self()));
        assert_int_equal(m->steps, MIG_STEPS);
        assert_int_equal(m->moves, MIG_STEPS);
        assert_int_equal(m->wrong_prev, 0);
        assert_true(m->digest == live_expected((uint64_t)i, MIG_STEPS));
        stack_destroy(&m->co.stack); /* its context was destroyed by the thread it finished on */
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ping_pong),
        cmocka_unit_test(test_many_interleaved),
        cmocka_unit_test(test_registers_preserved),
        cmocka_unit_test(test_fp_modes_per_context),
        cmocka_unit_test(test_entry_stack_aligned),
        cmocka_unit_test(test_final_and_reuse),
        cmocka_unit_test(test_make_rejects_tiny_stack),
        cmocka_unit_test(test_migrating_between_threads),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
