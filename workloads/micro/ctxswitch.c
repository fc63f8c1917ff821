/* ctxswitch.c - micro-benchmark: what one goroutine context switch costs, asm against ucontext.
 *
 * Two contexts ping-pong through ctx_switch() (servers/coro/ctx.h) N times and we report the
 * time per switch (one direction; a round trip is two), best of a few runs, next to the figures
 * on record for Go and other switch mechanisms. It is a benchmark, not a test: it asserts
 * nothing about speed, and its numbers are only as steady as the machine (no CPU pinning).
 *
 * meson.build compiles this file twice. Once with CTXSWITCH_FALLBACK defined, against the
 * ucontext copy of the switch (whose names ctx.h maps to ucx_ctx_*), where it only defines
 * ctxswitch_run_fallback(). Once as the program, against the host's native backend.
 *
 * Usage: ctxswitch [MILLIONS]   round trips for the native backend (default 10); the ucontext
 * backend, ~20x slower, runs a tenth as many.
 */
#include "ctx.h"
#include "stack.h"

#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#define CTXSWITCH_RUNS 5

#ifdef CTXSWITCH_FALLBACK
#define CTXSWITCH_RUN ctxswitch_run_fallback
#else
#define CTXSWITCH_RUN ctxswitch_run_native
#endif

/* Nanoseconds per switch, best of CTXSWITCH_RUNS runs of `rounds` round trips. */
double ctxswitch_run_fallback(long rounds);
double ctxswitch_run_native(long rounds);

struct bench {
    struct ctx main, co;
    long rounds;
};

static void bench_fn(void *arg)
{
    struct bench *b = arg;
    for (;;)
        for (long i = 0; i < b->rounds; i++)
            ctx_switch(&b->co, &b->main);
}

static double now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

double CTXSWITCH_RUN(long rounds)
{
    static struct bench b;
    struct stack s;
    double best = -1;

    if (stack_create(64 * 1024, &s) != 0 || ctx_make(&b.co, s.lo, s.size, bench_fn, &b) != 0) {
        fprintf(stderr, "ctxswitch: cannot set up a context\n");
        abort();
    }
    ctx_init_thread(&b.main);
    b.rounds = rounds;
    ctx_switch(&b.main, &b.co); /* warm up: first entry, stack pages faulted in */
    for (int run = 0; run < CTXSWITCH_RUNS; run++) {
        double start = now_ns();
        for (long i = 0; i < rounds; i++)
            ctx_switch(&b.main, &b.co);
        double ns = (now_ns() - start) / (2.0 * (double)rounds);
        if (best < 0 || ns < best)
            best = ns;
    }
    ctx_destroy(&b.co); /* suspended mid-loop: allowed, see ctx.h */
    stack_destroy(&s);
    return best;
}

#ifndef CTXSWITCH_FALLBACK

/* Measured figures get a decimal, quoted ones are shown as precise as their source. */
static void row(const char *what, double ns, int decimals, const char *source)
{
    printf("  %-36s %9.*f  %s\n", what, decimals, ns, source);
}

int main(int argc, char **argv)
{
    double millions = argc > 1 ? atof(argv[1]) : 10;
    long native_rounds = (long)(millions * 1e6);
    long fallback_rounds = native_rounds / 10;
    if (native_rounds < 10) {
        fprintf(stderr, "usage: ctxswitch [MILLIONS of round trips, default 10]\n");
        return 2;
    }

    double native = ctxswitch_run_native(native_rounds);
    double fallback = ctxswitch_run_fallback(fallback_rounds);

    printf("context switch, one direction, best of %d runs (build: %s%s)\n", CTXSWITCH_RUNS,
           CTXSWITCH_BUILDTYPE, CTXSWITCH_SANITIZE);
    printf("  %-36s %9s  %s\n", "mechanism", "ns/switch", "source");
    char what[64];
    snprintf(what, sizeof(what), "triad ctx, %s backend", CTXSWITCH_BACKEND);
    row(what, native, 1, "measured now");
    row("triad ctx, ucontext fallback", fallback, 1, "measured now");
    row("boost.context fcontext", 9, 0, "Boost.Context doc/performance.qbk (Xeon E5-2620v4)");
    row("glibc swapcontext", 380, 0, "measured earlier on a 2-vCPU Xeon VM, glibc 2.36");
    row("Go runtime.Gosched(), no other G", 108, 0, "measured on that VM, Go 1.19.8, GOMAXPROCS=1");
    row("Go unbuffered chan hand-off", 243, 0, "measured on that VM, Go 1.19.8, GOMAXPROCS=1");
    printf("  (%ld and %ld round trips; Go's figures include its scheduler, ours are the bare "
           "switch)\n",
           native_rounds, fallback_rounds);
    return 0;
}

#endif
