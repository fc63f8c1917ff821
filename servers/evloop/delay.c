/* delay.c - the loop-delay monitor (see delay.h). */
#include "delay.h"

#include "check.h"
#include "loop.h"
#include "trace.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define DELAY_WINDOW_MS 10000 /* each half of the window */
#define DELAY_SUB_BITS  4
#define DELAY_SUB       (1u << DELAY_SUB_BITS) /* buckets per power of two */
#define DELAY_MSB_MAX   40                     /* 2^41 us: 25 days */
#define DELAY_BUCKETS   (DELAY_SUB * (DELAY_MSB_MAX - DELAY_SUB_BITS + 2))

struct delay_hist {
    uint32_t counts[DELAY_BUCKETS];
    uint64_t total;
    uint64_t max_us;
};

struct delay {
    struct loop *loop;
    struct loop_timer timer;
    uint64_t resolution_ns;
    uint64_t prev_ns;         /* when the timer last fired */
    uint64_t window_start_ms; /* loop time the current half began */
    struct delay_hist cur, old;
    uint64_t count, sum_us; /* since start */
};

/* ---- the histogram ----------------------------------------------------------------------- */

/* Values below DELAY_SUB have a bucket each; above, each power of two [2^m, 2^(m+1)) is cut
 * into DELAY_SUB equal buckets, indexed by the DELAY_SUB_BITS bits after the leading one. */
static unsigned delay_bucket(uint64_t us)
{
    if (us < DELAY_SUB)
        return (unsigned)us;
    if (us >> (DELAY_MSB_MAX + 1) != 0)
        us = (UINT64_C(1) << (DELAY_MSB_MAX + 1)) - 1;
    unsigned msb = 63u - (unsigned)__builtin_clzll(us);
    unsigned shift = msb - DELAY_SUB_BITS;
    return DELAY_SUB + shift * DELAY_SUB + (unsigned)((us >> shift) & (DELAY_SUB - 1));
}

/* The largest value that falls into bucket i. */
static uint64_t delay_bucket_top(unsigned i)
{
    if (i < DELAY_SUB)
        return i;
    unsigned shift = (i - DELAY_SUB) / DELAY_SUB;
    uint64_t lead = DELAY_SUB + (i - DELAY_SUB) % DELAY_SUB;
    return ((lead + 1) << shift) - 1;
}

static void delay_hist_record(struct delay_hist *h, uint64_t us)
{
    h->counts[delay_bucket(us)]++;
    h->total++;
    if (us > h->max_us)
        h->max_us = us;
}

/* The q-quantile (0 < q <= 1) of both halves together, in microseconds. */
static uint64_t delay_quantile(const struct delay_hist *a, const struct delay_hist *b, double q)
{
    uint64_t total = a->total + b->total;
    uint64_t rank = (uint64_t)(q * (double)total + 0.999999);
    uint64_t seen = 0;
    uint64_t max = a->max_us > b->max_us ? a->max_us : b->max_us;
    if (rank == 0)
        rank = 1;
    for (unsigned i = 0; i < DELAY_BUCKETS; i++) {
        seen += (uint64_t)a->counts[i] + b->counts[i];
        if (seen >= rank) {
            uint64_t top = delay_bucket_top(i);
            return top < max ? top : max;
        }
    }
    return max;
}

/* ---- the monitor ------------------------------------------------------------------------- */

static uint64_t delay_hrtime_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void delay_tick_cb(struct loop_timer *t)
{
    struct delay *d = TRIAD_CONTAINER_OF(t, struct delay, timer);
    uint64_t now_ns = delay_hrtime_ns();
    uint64_t elapsed = now_ns - d->prev_ns;
    d->prev_ns = now_ns;
    if (loop_now(d->loop) - d->window_start_ms >= DELAY_WINDOW_MS) {
        d->old = d->cur;
        memset(&d->cur, 0, sizeof(d->cur));
        d->window_start_ms = loop_now(d->loop);
    }
    uint64_t late_ns = elapsed > d->resolution_ns ? elapsed - d->resolution_ns : 0;
    trace_counter("loop delay us", -1, late_ns / 1000);
    delay_hist_record(&d->cur, late_ns / 1000);
    d->count++;
    d->sum_us += late_ns / 1000;
}

int delay_create(struct loop *l, unsigned resolution_ms, struct delay **out)
{
    struct delay *d = calloc(1, sizeof(*d));
    if (d == NULL)
        return -ENOMEM;
    d->loop = l;
    d->resolution_ns = (uint64_t)resolution_ms * 1000000u;
    d->prev_ns = delay_hrtime_ns();
    d->window_start_ms = loop_now(l);
    loop_timer_init(&d->timer, delay_tick_cb);
    if (loop_timer_start(l, &d->timer, resolution_ms, resolution_ms) != 0) {
        free(d);
        return -ENOMEM;
    }
    *out = d;
    return 0;
}

void delay_destroy(struct delay *d)
{
    loop_timer_stop(d->loop, &d->timer);
    free(d);
}

void delay_read(const struct delay *d, struct delay_stats *out)
{
    uint64_t max = d->cur.max_us > d->old.max_us ? d->cur.max_us : d->old.max_us;
    out->samples = d->cur.total + d->old.total;
    out->p50_s = (double)delay_quantile(&d->cur, &d->old, 0.50) / 1e6;
    out->p99_s = (double)delay_quantile(&d->cur, &d->old, 0.99) / 1e6;
    out->max_s = (double)max / 1e6;
    out->count = d->count;
    out->sum_s = (double)d->sum_us / 1e6;
}
