/* trace_cost - what a trace record costs (shared/trace.h), on and off.
 *
 *   BUILDDIR/workloads/micro/trace_cost [RECORDS_PER_THREAD]
 *
 * Off: a recording site with tracing off (a slice's begin and end: two branches), against the
 * same loop with no site, in ns per iteration. On: ns per record for an instant (one clock
 * read) and for a slice (two: its begin and its record), on one thread and on two at once
 * (each into its own buffer: the hot path shares nothing); then the writer's ns per record.
 * The file goes to $TMPDIR (or /tmp) and is removed. Numbers mean something only in an
 * optimised build without sanitizers. Not a test: it asserts nothing.
 */
#include "trace.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define TRACE_COST_OFF_ITERS 200000000ull

static uint64_t trace_cost_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* The loop's body: an opaque store the compiler must keep, with or without a site. */
static volatile uint64_t trace_cost_sink;

static double trace_cost_off(bool site)
{
    uint64_t t0 = trace_cost_now();
    for (uint64_t i = 0; i < TRACE_COST_OFF_ITERS; i++) {
        if (site) {
            uint64_t b = trace_begin();
            trace_cost_sink = i;
            trace_slice(b, "off", NULL, 0);
        } else {
            trace_cost_sink = i;
        }
    }
    return (double)(trace_cost_now() - t0) / (double)TRACE_COST_OFF_ITERS;
}

struct trace_cost_run {
    unsigned long n;
    bool slices;
    double ns;
};

static void *trace_cost_on(void *arg)
{
    struct trace_cost_run *r = arg;
    trace_thread_name_seq("bench-", 1);
    uint64_t t0 = trace_cost_now();
    if (r->slices) {
        for (unsigned long i = 0; i < r->n; i++) {
            uint64_t b = trace_begin();
            trace_slice(b, "slice", "i", i);
        }
    } else {
        for (unsigned long i = 0; i < r->n; i++)
            trace_instant("instant", "i", i);
    }
    r->ns = (double)(trace_cost_now() - t0) / (double)r->n;
    return NULL;
}

static double trace_cost_threads(unsigned nthreads, unsigned long n, bool slices)
{
    pthread_t t[2];
    struct trace_cost_run runs[2];
    double sum = 0;
    for (unsigned i = 0; i < nthreads; i++) {
        runs[i] = (struct trace_cost_run){.n = n, .slices = slices};
        pthread_create(&t[i], NULL, trace_cost_on, &runs[i]);
    }
    for (unsigned i = 0; i < nthreads; i++) {
        pthread_join(t[i], NULL);
        sum += runs[i].ns;
    }
    return sum / nthreads;
}

int main(int argc, char **argv)
{
    unsigned long n = argc > 1 ? strtoul(argv[1], NULL, 10) : 100000;
    char path[256];
    const char *dir = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
    snprintf(path, sizeof(path), "%s/trace_cost.%d.json", dir, (int)getpid());
    /* Room for every record below: 6 runs of up to 2 threads. */
    char budget[32];
    snprintf(budget, sizeof(budget), "%lu", 12 * n + 4096);
    setenv("TRIAD_TRACE_EVENTS", budget, 1); /* NOLINT(concurrency-mt-unsafe): one thread yet */

    printf("tracing off, %llu iterations:\n", TRACE_COST_OFF_ITERS);
    double base = trace_cost_off(false), site = trace_cost_off(true);
    printf("  loop without a site %.3f ns, with a slice's two sites %.3f ns: %+.3f ns\n", base,
           site, site - base);

    trace_start(path, "trace_cost");
    printf("tracing on, %lu records per thread:\n", n);
    for (int slices = 0; slices <= 1; slices++)
        for (unsigned th = 1; th <= 2; th++)
            printf("  %-7s x %u thread%s: %6.1f ns per record\n", slices ? "slice" : "instant", th,
                   th > 1 ? "s" : " ", trace_cost_threads(th, n, slices));
    uint64_t t0 = trace_cost_now();
    trace_stop();
    double w = (double)(trace_cost_now() - t0) / (double)(6 * n);
    printf("  writing the file: %.1f ns per record (%s)\n", w, path);
    unlink(path);
    return 0;
}
