/* pool.h - libuv's threadpool: blocking work off the loop, results back on it.
 *
 * The pair uv_queue_work / after_work_cb. The loop thread queues a work item; one of the pool's
 * threads takes it off a single FIFO and runs work_cb, which may block; the thread then puts
 * the item on the completion queue and wakes the loop through a loop_async (an eventfd write,
 * coalesced like uv_async_send). The loop runs done_cb in its poll phase, on its own thread.
 * work_cb and done_cb of one item never run at the same time, and the queues' mutexes order
 * everything work_cb wrote before everything done_cb reads.
 *
 * Sizing is libuv's: the caller passes the size (UV_THREADPOOL_SIZE, default 4, at most
 * POOL_SIZE_MAX), and no thread exists until the first piece of work needs one (libuv starts
 * its pool under uv_once on the first submission). A process that never queues work has no
 * pool threads at all.
 */
#ifndef TRIAD_EVLOOP_POOL_H
#define TRIAD_EVLOOP_POOL_H

#include <stddef.h>

#define POOL_SIZE_DEFAULT 4    /* libuv's default_threads[4] */
#define POOL_SIZE_MAX     1024 /* libuv's MAX_THREADPOOL_SIZE (128 before 1.30.0) */

struct loop;
struct pool;

/* Embedded in the caller's work item. */
struct pool_work {
    struct pool_work *next;
    void (*work_cb)(struct pool_work *w); /* on a pool thread; may block */
    void (*done_cb)(struct pool_work *w); /* then on the loop thread */
};

/* Creates a pool of `size` threads-to-be for the loop: no thread starts yet. Returns 0 or a
 * negative errno. On the loop thread. */
int pool_create(struct loop *loop, unsigned size, struct pool **out);
/* Starts the threads unless they run already. Returns 0 if at least one runs, or -EAGAIN. */
int pool_start(struct pool *p);
/* Queues work on a started pool; never blocks, never fails. On the loop thread. */
void pool_work_queue(struct pool *p, struct pool_work *w, void (*work_cb)(struct pool_work *),
                     void (*done_cb)(struct pool_work *));
/* Joins the threads once their queue is empty and frees the pool. Nothing may be in flight. */
void pool_destroy(struct pool *p);

/* Gauges: the configured size, threads running, items waiting for a thread, threads running
 * an item. Safe from any thread. */
unsigned pool_size(const struct pool *p);
unsigned pool_threads(const struct pool *p);
unsigned pool_queued(const struct pool *p);
unsigned pool_busy(const struct pool *p);

#endif
