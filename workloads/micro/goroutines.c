/* goroutines.c - micro-benchmark: the scheduler's costs, beside Go's.
 *
 * Three figures, each measured the way Go 1.19.8's were measured on a 2-vCPU Xeon VM:
 *
 *   spawn+exit   `go f()` + WaitGroup.Done, per goroutine (Go: 1.3 us at GOMAXPROCS=1,
 *                0.58 us at 2)
 *   chan ping    one hand-off through an unbuffered channel, two goroutines ping-ponging
 *                (Go: 243 ns at 1, 248 ns at 2)
 *   yield        runtime.Gosched with no other goroutine (Go: 108 ns)
 *
 * A benchmark, not a test: it asserts nothing, and its numbers are as steady as the machine.
 * Usage: goroutines [PROCS...]   (default: 1 2)
 */
#include "coro.h"

#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#define SPAWNS 200000
#define BATCH  1000 /* live goroutines at once: each stack is two VMAs (stack.h) */
#define PINGS  1000000
#define YIELDS 2000000

static double now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

struct result {
    double spawn_ns, ping_ns, yield_ns;
};

static void done_cb(void *arg)
{
    coro_wg_done(arg);
}

static void spawn_bench(struct result *res)
{
    struct coro_wg wg;
    coro_wg_init(&wg);
    double t0 = now_ns();
    for (int b = 0; b < SPAWNS / BATCH; b++) {
        coro_wg_add(&wg, BATCH);
        for (int i = 0; i < BATCH; i++)
            if (coro_go(done_cb, &wg) != 0)
                coro_wg_done(&wg);
        coro_wg_wait(&wg);
    }
    res->spawn_ns = (now_ns() - t0) / SPAWNS;
}

struct pingpong {
    struct coro_chan *ping, *pong;
    struct coro_wg wg;
};

static void ponger_cb(void *arg)
{
    struct pingpong *pp = arg;
    int v;
    while (coro_chan_recv(pp->ping, &v))
        coro_chan_send(pp->pong, &v);
    coro_wg_done(&pp->wg);
}

static void ping_bench(struct result *res)
{
    struct pingpong pp;
    int v = 0;
    coro_chan_create(0, sizeof(int), &pp.ping);
    coro_chan_create(0, sizeof(int), &pp.pong);
    coro_wg_init(&pp.wg);
    coro_wg_add(&pp.wg, 1);
    coro_go(ponger_cb, &pp);
    double t0 = now_ns();
    for (int i = 0; i < PINGS; i++) {
        coro_chan_send(pp.ping, &v);
        coro_chan_recv(pp.pong, &v);
    }
    res->ping_ns = (now_ns() - t0) / (2.0 * PINGS); /* two hand-offs per round trip */
    coro_chan_close(pp.ping);
    coro_wg_wait(&pp.wg);
    coro_chan_destroy(pp.ping);
    coro_chan_destroy(pp.pong);
}

static void yield_bench(struct result *res)
{
    double t0 = now_ns();
    for (int i = 0; i < YIELDS; i++)
        coro_yield();
    res->yield_ns = (now_ns() - t0) / YIELDS;
}

static void main_cb(void *arg)
{
    struct result *res = arg;
    spawn_bench(res);
    ping_bench(res);
    yield_bench(res);
}

static struct result run(unsigned procs)
{
    struct result res = {0};
    struct coro_config cfg = {.procs = procs, .stack_size = 64 * 1024};
    if (coro_start(&cfg) != 0 || coro_go(main_cb, &res) != 0) {
        fprintf(stderr, "goroutines: cannot start the runtime\n");
        abort();
    }
    coro_wait_idle(-1);
    coro_stop();
    return res;
}

int main(int argc, char **argv)
{
    static const struct {
        double spawn, ping, yield;
    } go[] = {{1300, 243, 108}, {580, 248, 112}}; /* Go 1.19.8, 2-vCPU Xeon VM, GOMAXPROCS 1, 2 */
    printf("%-8s %-22s %12s %12s\n", "procs", "operation", "triad-coro", "Go 1.19");
    for (int a = 1; a < argc || a == 1; a++) {
        unsigned procs = argc > 1 ? (unsigned)strtoul(argv[a], NULL, 10) : 1;
        for (unsigned p = procs; p <= (argc > 1 ? procs : 2u); p++) {
            struct result r = run(p);
            int gi = p >= 2 ? 1 : 0;
            printf("%-8u %-22s %9.0f ns %9.0f ns\n", p, "spawn+exit (go+wg)", r.spawn_ns,
                   go[gi].spawn);
            printf("%-8u %-22s %9.0f ns %9.0f ns\n", p, "chan hand-off", r.ping_ns, go[gi].ping);
            printf("%-8u %-22s %9.0f ns %9.0f ns\n", p, "yield (Gosched)", r.yield_ns,
                   go[gi].yield);
        }
        if (argc <= 1)
            break;
    }
    return 0;
}
