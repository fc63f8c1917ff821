/* gil.h - a global interpreter lock with CPython's semantics (Python/ceval_gil.c).
 *
 * Not a mutex. A mutex would let the thread that just released it take it straight back (it
 * is already running and holds the cache lines), starving every other thread, and would never
 * take it away from a thread that does not release it. CPython's GIL adds two things:
 *
 *   switch interval  a thread that waits longer than the interval (5 ms by default,
 *                    sys.setswitchinterval) sets `drop_request`; the holder sees it at its next
 *                    eval-breaker check (here: hook_safepoint in CPU loops) and drops the GIL.
 *   forced switch    after such a drop, the old holder waits until another thread has actually
 *                    taken the GIL before it competes again (FORCE_SWITCHING).
 *
 * Threads release the GIL around blocking calls (sqlite3_step, sleeps), as CPython's C code
 * does with Py_BEGIN_ALLOW_THREADS, and take it back after; that re-acquisition is where the
 * convoy effect lives: an I/O-bound thread waits up to a whole interval behind a CPU-bound one
 * every time it comes back from I/O (bpo-7946).
 */
#ifndef TRIAD_GIL_H
#define TRIAD_GIL_H

#include <stdint.h>

struct gil;

struct gil_stats {
    uint64_t switches;      /* the GIL changed hands */
    uint64_t drop_requests; /* a waiter ran out of patience (one interval) */
    uint64_t wait_ns;       /* total time threads spent waiting to take it */
};

int gil_create(long interval_us, struct gil **out);
void gil_destroy(struct gil *g);

/* Blocks until the calling thread holds the GIL. */
void gil_take(struct gil *g);
/* Releases it; the calling thread must hold it. */
void gil_drop(struct gil *g);
/* The eval-breaker check: if a waiter asked for the GIL, hand it over (and wait until it has
 * been taken) before taking it back. Cheap when nobody asked: one relaxed atomic load. */
void gil_yield_if_requested(struct gil *g);

void gil_stats_read(struct gil *g, struct gil_stats *out);

#endif
