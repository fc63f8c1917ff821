/* pool.c - the threadpool (see pool.h).
 *
 * Two queues, two mutexes, as in libuv's threadpool.c: the work queue (a FIFO, a mutex and a
 * condition variable the idle threads sleep on) and the completion queue (a mutex and the
 * async handle that wakes the loop). A thread never holds both mutexes at once.
 *
 * Costs per item: two mutex round trips, a futex wake if a thread was asleep, and an eventfd
 * write unless a wake-up is already pending; then one loop iteration before done_cb runs.
 * That hop is the price Node pays for every fs call and every query of the sqlite3 package.
 */
#include "pool.h"

#include "check.h"
#include "loop.h"
#include "trace.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>

struct pool {
    struct loop *loop;
    unsigned size;
    pthread_t *threads;
    atomic_uint nthreads; /* started; written on the loop thread, read by the gauges */

    pthread_mutex_t work_mutex; /* guards work_head/tail and stopping */
    pthread_cond_t work_cond;
    struct pool_work *work_head, *work_tail;
    bool stopping;

    pthread_mutex_t done_mutex; /* guards done_head/tail */
    struct pool_work *done_head, *done_tail;
    struct loop_async done_async;

    atomic_uint queued, busy;
};

static void pool_list_append(struct pool_work **head, struct pool_work **tail, struct pool_work *w)
{
    w->next = NULL;
    if (*tail != NULL)
        (*tail)->next = w;
    else
        *head = w;
    *tail = w;
}

/* ---- the threads ------------------------------------------------------------------------- */

/* Blocks until there is work; NULL once the pool stops with nothing left. */
static struct pool_work *pool_work_take(struct pool *p)
{
    pthread_mutex_lock(&p->work_mutex);
    while (p->work_head == NULL && !p->stopping)
        pthread_cond_wait(&p->work_cond, &p->work_mutex);
    struct pool_work *w = p->work_head;
    if (w != NULL) {
        p->work_head = w->next;
        if (p->work_head == NULL)
            p->work_tail = NULL;
        atomic_fetch_sub_explicit(&p->queued, 1, memory_order_relaxed);
        atomic_fetch_add_explicit(&p->busy, 1, memory_order_relaxed);
    }
    pthread_mutex_unlock(&p->work_mutex);
    return w;
}

static void pool_work_complete(struct pool *p, struct pool_work *w)
{
    atomic_fetch_sub_explicit(&p->busy, 1, memory_order_relaxed);
    pthread_mutex_lock(&p->done_mutex);
    pool_list_append(&p->done_head, &p->done_tail, w);
    pthread_mutex_unlock(&p->done_mutex);
    loop_async_send(&p->done_async);
}

static void *pool_thread_main(void *arg)
{
    struct pool *p = arg;
    struct pool_work *w;
    trace_thread_name_seq("pool-", 10);
    while ((w = pool_work_take(p)) != NULL) {
        w->work_cb(w);
        pool_work_complete(p, w);
    }
    return NULL;
}

/* ---- the loop's side --------------------------------------------------------------------- */

/* The loop's half of uv__work_done: take every finished item at once, then run their done
 * callbacks in completion order without holding the mutex. */
static void pool_done_cb(struct loop_async *a)
{
    struct pool *p = TRIAD_CONTAINER_OF(a, struct pool, done_async);
    pthread_mutex_lock(&p->done_mutex);
    struct pool_work *w = p->done_head;
    p->done_head = p->done_tail = NULL;
    pthread_mutex_unlock(&p->done_mutex);
    while (w != NULL) {
        struct pool_work *next = w->next; /* done_cb may free w */
        w->done_cb(w);
        w = next;
    }
}

int pool_create(struct loop *loop, unsigned size, struct pool **out)
{
    TRIAD_ASSERT(size >= 1 && size <= POOL_SIZE_MAX, "pool_create: bad size");
    struct pool *p = calloc(1, sizeof(*p));
    if (p == NULL)
        return -ENOMEM;
    p->threads = calloc(size, sizeof(*p->threads));
    if (p->threads == NULL)
        goto fail_free;
    int rc = loop_async_init(loop, &p->done_async, pool_done_cb);
    if (rc != 0)
        goto fail_threads;
    p->loop = loop;
    p->size = size;
    pthread_mutex_init(&p->work_mutex, NULL);
    pthread_cond_init(&p->work_cond, NULL);
    pthread_mutex_init(&p->done_mutex, NULL);
    *out = p;
    return 0;

fail_threads:
    free(p->threads);
fail_free:
    free(p);
    return -ENOMEM;
}

int pool_start(struct pool *p)
{
    unsigned n = atomic_load_explicit(&p->nthreads, memory_order_relaxed);
    if (n > 0)
        return 0;
    /* A pool that got some of its threads keeps them; one that got none tries again on the
     * next call. (libuv aborts the process when a pool thread cannot be created.) */
    for (; n < p->size; n++) {
        if (pthread_create(&p->threads[n], NULL, pool_thread_main, p) != 0)
            break;
        pthread_setname_np(p->threads[n], "evloop-pool");
    }
    atomic_store_explicit(&p->nthreads, n, memory_order_relaxed);
    return n > 0 ? 0 : -EAGAIN;
}

void pool_work_queue(struct pool *p, struct pool_work *w, void (*work_cb)(struct pool_work *),
                     void (*done_cb)(struct pool_work *))
{
    TRIAD_ASSERT(atomic_load_explicit(&p->nthreads, memory_order_relaxed) > 0,
                 "pool_work_queue: pool not started");
    w->work_cb = work_cb;
    w->done_cb = done_cb;
    pthread_mutex_lock(&p->work_mutex);
    pool_list_append(&p->work_head, &p->work_tail, w);
    unsigned queued = atomic_fetch_add_explicit(&p->queued, 1, memory_order_relaxed) + 1;
    trace_counter("pool queue", -1, queued);
    pthread_cond_signal(&p->work_cond);
    pthread_mutex_unlock(&p->work_mutex);
}

void pool_destroy(struct pool *p)
{
    pthread_mutex_lock(&p->work_mutex);
    TRIAD_ASSERT(p->work_head == NULL, "pool_destroy: work still queued");
    p->stopping = true;
    pthread_cond_broadcast(&p->work_cond);
    pthread_mutex_unlock(&p->work_mutex);
    unsigned n = atomic_load_explicit(&p->nthreads, memory_order_relaxed);
    for (unsigned i = 0; i < n; i++)
        pthread_join(p->threads[i], NULL);
    TRIAD_ASSERT(p->done_head == NULL, "pool_destroy: completions not run");
    loop_async_close(p->loop, &p->done_async);
    pthread_mutex_destroy(&p->done_mutex);
    pthread_cond_destroy(&p->work_cond);
    pthread_mutex_destroy(&p->work_mutex);
    free(p->threads);
    free(p);
}

/* ---- gauges ------------------------------------------------------------------------------ */

unsigned pool_size(const struct pool *p)
{
    return p->size;
}

unsigned pool_threads(const struct pool *p)
{
    return atomic_load_explicit(&p->nthreads, memory_order_relaxed);
}

unsigned pool_queued(const struct pool *p)
{
    return atomic_load_explicit(&p->queued, memory_order_relaxed);
}

unsigned pool_busy(const struct pool *p)
{
    return atomic_load_explicit(&p->busy, memory_order_relaxed);
}
