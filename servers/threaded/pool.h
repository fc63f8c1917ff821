/* pool.h - a fixed pool of blocking worker threads fed by one FIFO (gunicorn's gthread).
 *
 * gunicorn's gthread worker runs a selector loop on its main thread and hands each connection
 * with a complete request to a ThreadPoolExecutor of `threads` threads; here libmicrohttpd's
 * polling thread plays the selector and this pool plays the executor. Each item runs start to
 * finish on one worker, blocking it: the pool's size is the process's concurrency.
 *
 * The queue is unbounded here because admission control (--max-inflight) bounds what can be in
 * it; extra work waits its turn rather than being refused, as in gunicorn.
 */
#ifndef TRIAD_POOL_H
#define TRIAD_POOL_H

#include <stddef.h>

struct pool;

/* Embedded in the caller's work item; the pool links items through it. */
struct pool_item {
    struct pool_item *next;
};

/* Starts `threads` workers; each runs run_cb(item) for the items it takes off the queue. */
int pool_start(unsigned threads, void (*run_cb)(struct pool_item *item), struct pool **out);
/* Queues an item; never blocks. */
void pool_submit(struct pool *p, struct pool_item *item);
/* Lets the workers finish what is queued, then joins them. */
void pool_stop(struct pool *p);

/* Gauges: items waiting, and workers running one. */
unsigned pool_queued(struct pool *p);
unsigned pool_busy(struct pool *p);

#endif
