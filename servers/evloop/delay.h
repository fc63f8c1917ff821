/* delay.h - event-loop delay, measured the way Node's perf_hooks.monitorEventLoopDelay does.
 *
 * A repeating loop timer of `resolution_ms` (Node's default: 10 ms) notes how late it fires.
 * The timer can only be as punctual as the loop is free: while a callback runs (a /cpu digest,
 * a query with --db-on-loop), nothing else runs, the timer included, and its lateness is
 * how long every other callback that became ready in the meantime waited too.
 *
 * What is recorded: the lateness of each tick, (time since the previous tick) - resolution,
 * clamped at 0, so that an idle loop reads about 0. Node's ELDHistogram records the whole
 * interval instead, resolution included, so its idle figures read about 10 ms; subtract the
 * resolution to compare.
 *
 * The window: percentiles cover the last 10 to 20 seconds (two 10 s halves, the older one
 * dropped at each turn), so that a burst shows up at once and fades away after it. Node keeps
 * everything until its caller calls reset(); several readers of /stats could not agree on
 * who resets, so the window resets itself.
 *
 * Exposed as a Prometheus summary (triad_loop_delay_seconds): the quantiles over the window,
 * and the count and sum since start, which is what a summary's _count and _sum mean.
 *
 * Precision: a log-linear histogram in microseconds with 16 buckets per power of two (the
 * shape of Node's HdrHistogram, coarser): a percentile is reported as the top of its bucket,
 * at most 1/16 above the true value; the maximum is exact.
 */
#ifndef TRIAD_EVLOOP_DELAY_H
#define TRIAD_EVLOOP_DELAY_H

#include <stdint.h>

#define DELAY_RESOLUTION_MS 10 /* monitorEventLoopDelay({resolution: 10}) */

struct loop;
struct delay;

struct delay_stats {
    double p50_s, p99_s, max_s; /* over the window */
    uint64_t samples;           /* ticks in the window */
    uint64_t count;             /* ticks since start */
    double sum_s;               /* their delays added up, since start */
};

/* Creates the monitor and starts its timer. Returns 0 or a negative errno. */
int delay_create(struct loop *l, unsigned resolution_ms, struct delay **out);
/* Stops the timer and frees the monitor. */
void delay_destroy(struct delay *d);
/* The current window. On the loop thread. */
void delay_read(const struct delay *d, struct delay_stats *out);

#endif
