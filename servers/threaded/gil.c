/* gil.c - the GIL (see gil.h). The structure follows CPython's ceval_gil.c: a boolean `locked`
 * guarded by `mutex` and `cond`, plus `switch_mutex` and `switch_cond` for the forced switch.
 *
 * Tracing (trace.h): the GIL has a track of its own whose slices are its holders (named after
 * their threads), with instants for drop requests and forced switches; a thread's own track
 * shows its "GIL wait" slices and its "forced switch" slices. The times that bound a holder's
 * slice are read under `mutex`, so that consecutive holders' slices cannot overlap.
 *
 * Invariants:
 *   - `locked` is true exactly while one thread is between gil_take and gil_drop.
 *   - `last_holder` names the thread that most recently took the GIL; `switch_number` counts
 *     changes of holder. A waiter compares `switch_number` before and after its timed wait to
 *     tell "someone else got it meanwhile" (be patient) from "the same holder kept it for a
 *     whole interval" (request a drop).
 */
#include "gil.h"

#include "check.h"
#include "trace.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <time.h>

struct gil {
    pthread_mutex_t mutex;
    pthread_cond_t cond; /* signalled when the GIL is released */
    bool locked;
    uint64_t switch_number;

    pthread_mutex_t switch_mutex;
    pthread_cond_t switch_cond;      /* signalled when a thread has taken the GIL */
    const void *_Atomic last_holder; /* identity of the last taker (see gil_self) */

    atomic_int drop_request; /* CPython's gil_drop_request, folded into its eval breaker */
    long interval_us;

    _Atomic uint64_t stat_switches, stat_drop_requests, stat_wait_ns;

    uint64_t trace_since;     /* under mutex: when the holder took it, 0 if not traced */
    const char *trace_holder; /* under mutex: the holder's track name */
};

/* A span of the GIL's own track (a holder) or of the calling thread's (tid 0). */
static void gil_trace_span(uint32_t tid, const char *name, uint64_t t0, uint64_t t1)
{
    if (t0 != 0 && trace_enabled())
        trace_record(&(struct trace_rec){.ts = t0, .end = t1, .name = name, .tid = tid, .ph = 'X'});
}

static void gil_trace_mark(const char *name)
{
    if (trace_enabled())
        trace_record(&(struct trace_rec){
            .name = name, .note = trace_self_name(), .tid = TRACE_TID_GIL, .ph = 'i'});
}

/* A thread's identity: the address of a thread-local byte, unique while the thread lives. */
static _Thread_local char gil_self_token;

static const void *gil_self(void)
{
    return &gil_self_token;
}

static uint64_t gil_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

int gil_create(long interval_us, struct gil **out)
{
    struct gil *g = calloc(1, sizeof(*g));
    pthread_condattr_t attr;
    if (g == NULL)
        return -ENOMEM;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_mutex_init(&g->mutex, NULL);
    pthread_cond_init(&g->cond, &attr);
    pthread_mutex_init(&g->switch_mutex, NULL);
    pthread_cond_init(&g->switch_cond, &attr);
    pthread_condattr_destroy(&attr);
    g->interval_us = interval_us;
    trace_track_name(TRACE_TID_GIL, "GIL", -1, 0);
    *out = g;
    return 0;
}

void gil_destroy(struct gil *g)
{
    if (g == NULL)
        return;
    TRIAD_ASSERT(!g->locked, "destroying a held GIL");
    pthread_cond_destroy(&g->switch_cond);
    pthread_mutex_destroy(&g->switch_mutex);
    pthread_cond_destroy(&g->cond);
    pthread_mutex_destroy(&g->mutex);
    free(g);
}

static struct timespec gil_deadline(long us)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    ts.tv_sec += us / 1000000;
    ts.tv_nsec += (us % 1000000) * 1000;
    if (ts.tv_nsec >= 1000000000) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000;
    }
    return ts;
}

/* Waits, with g->mutex held, until the GIL is free; asks the holder to drop it each time a
 * whole interval passes without any change of holder. */
static void gil_wait_free(struct gil *g)
{
    uint64_t start = gil_now_ns();
    while (g->locked) {
        uint64_t seen = g->switch_number;
        struct timespec deadline = gil_deadline(g->interval_us);
        int rc = pthread_cond_timedwait(&g->cond, &g->mutex, &deadline);
        if (rc == ETIMEDOUT && g->locked && g->switch_number == seen) {
            atomic_store_explicit(&g->drop_request, 1, memory_order_relaxed);
            atomic_fetch_add_explicit(&g->stat_drop_requests, 1, memory_order_relaxed);
            trace_instant("drop request", NULL, 0);
            gil_trace_mark("drop request");
        }
    }
    atomic_fetch_add_explicit(&g->stat_wait_ns, gil_now_ns() - start, memory_order_relaxed);
}

void gil_take(struct gil *g)
{
    uint64_t t0 = trace_begin();
    pthread_mutex_lock(&g->mutex);
    bool waited = g->locked;
    if (g->locked)
        gil_wait_free(g);
    g->locked = true;
    if (t0 != 0) {
        g->trace_since = trace_now();
        g->trace_holder = trace_self_name();
    }

    /* Tell a thread waiting in a forced switch that the GIL has changed hands. */
    pthread_mutex_lock(&g->switch_mutex);
    if (atomic_load_explicit(&g->last_holder, memory_order_relaxed) != gil_self()) {
        atomic_store_explicit(&g->last_holder, gil_self(), memory_order_relaxed);
        g->switch_number++;
        atomic_fetch_add_explicit(&g->stat_switches, 1, memory_order_relaxed);
    }
    pthread_cond_signal(&g->switch_cond);
    pthread_mutex_unlock(&g->switch_mutex);

    /* Whoever asked for a drop has what it wanted, or will ask again after another interval. */
    atomic_store_explicit(&g->drop_request, 0, memory_order_relaxed);
    uint64_t since = g->trace_since;
    pthread_mutex_unlock(&g->mutex);
    if (waited)
        gil_trace_span(0, "GIL wait", t0, since);
}

void gil_drop(struct gil *g)
{
    pthread_mutex_lock(&g->mutex);
    TRIAD_ASSERT(g->locked, "gil_drop: the GIL is not held");
    g->locked = false;
    uint64_t since = g->trace_since, until = since ? trace_now() : 0;
    const char *holder = g->trace_holder;
    g->trace_since = 0;
    pthread_cond_signal(&g->cond);
    pthread_mutex_unlock(&g->mutex);
    gil_trace_span(TRACE_TID_GIL, holder, since, until);
}

void gil_yield_if_requested(struct gil *g)
{
    if (!atomic_load_explicit(&g->drop_request, memory_order_relaxed))
        return;
    gil_drop(g);
    uint64_t t0 = trace_begin();
    gil_trace_mark("forced switch");
    /* Forced switch: wait until another thread has taken the GIL, or this thread, being hot
     * on the CPU, would usually win the race back and the waiter would starve. */
    pthread_mutex_lock(&g->switch_mutex);
    if (atomic_load_explicit(&g->last_holder, memory_order_relaxed) == gil_self()) {
        atomic_store_explicit(&g->drop_request, 0, memory_order_relaxed);
        pthread_cond_wait(&g->switch_cond, &g->switch_mutex);
    }
    pthread_mutex_unlock(&g->switch_mutex);
    gil_take(g);
    trace_slice(t0, "forced switch", NULL, 0);
}

void gil_stats_read(struct gil *g, struct gil_stats *out)
{
    out->switches = atomic_load_explicit(&g->stat_switches, memory_order_relaxed);
    out->drop_requests = atomic_load_explicit(&g->stat_drop_requests, memory_order_relaxed);
    out->wait_ns = atomic_load_explicit(&g->stat_wait_ns, memory_order_relaxed);
}
