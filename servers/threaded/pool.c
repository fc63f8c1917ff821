/* pool.c - the gthread-style worker pool (see pool.h).
 *
 * One mutex, one condition variable, one intrusive FIFO. A worker sleeps on the condition
 * variable when the queue is empty; each submit wakes one. The hand-off costs a futex wake and
 * a context switch to another thread (about 5 us cross-core on the reference VM): the price the
 * threaded model pays per request, and the one the event loop and goroutines avoid.
 */
#include "pool.h"

#include "check.h"
#include "trace.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>

struct pool {
    pthread_mutex_t mutex;
    pthread_cond_t cond;
    struct pool_item *head, *tail;
    bool stopping;
    unsigned nthreads;
    pthread_t *threads;
    void (*run_cb)(struct pool_item *item);
    _Atomic unsigned queued, busy;
};

static struct pool_item *pool_pop(struct pool *p)
{
    pthread_mutex_lock(&p->mutex);
    while (p->head == NULL && !p->stopping)
        pthread_cond_wait(&p->cond, &p->mutex);
    struct pool_item *it = p->head;
    if (it != NULL) {
        p->head = it->next;
        if (p->head == NULL)
            p->tail = NULL;
        atomic_fetch_sub_explicit(&p->queued, 1, memory_order_relaxed);
    }
    pthread_mutex_unlock(&p->mutex);
    return it; /* NULL only when stopping with nothing left */
}

static void *pool_worker(void *arg)
{
    struct pool *p = arg;
    struct pool_item *it;
    trace_thread_name_seq("pool-", 10);
    while ((it = pool_pop(p)) != NULL) {
        atomic_fetch_add_explicit(&p->busy, 1, memory_order_relaxed);
        p->run_cb(it);
        atomic_fetch_sub_explicit(&p->busy, 1, memory_order_relaxed);
    }
    return NULL;
}

int pool_start(unsigned threads, void (*run_cb)(struct pool_item *item), struct pool **out)
{
    struct pool *p = calloc(1, sizeof(*p));
    if (p == NULL)
        return -ENOMEM;
    p->run_cb = run_cb;
    p->threads = calloc(threads, sizeof(pthread_t));
    if (p->threads == NULL)
        goto fail_free;
    pthread_mutex_init(&p->mutex, NULL);
    pthread_cond_init(&p->cond, NULL);
    for (; p->nthreads < threads; p->nthreads++)
        if (pthread_create(&p->threads[p->nthreads], NULL, pool_worker, p) != 0)
            goto fail_stop;
    *out = p;
    return 0;

fail_stop:
    pool_stop(p);
    return -EAGAIN;
fail_free:
    free(p);
    return -ENOMEM;
}

void pool_submit(struct pool *p, struct pool_item *item)
{
    item->next = NULL;
    pthread_mutex_lock(&p->mutex);
    TRIAD_ASSERT(!p->stopping, "pool_submit: the pool is stopping");
    if (p->tail)
        p->tail->next = item;
    else
        p->head = item;
    p->tail = item;
    atomic_fetch_add_explicit(&p->queued, 1, memory_order_relaxed);
    pthread_cond_signal(&p->cond);
    pthread_mutex_unlock(&p->mutex);
}

void pool_stop(struct pool *p)
{
    pthread_mutex_lock(&p->mutex);
    p->stopping = true;
    pthread_cond_broadcast(&p->cond);
    pthread_mutex_unlock(&p->mutex);
    for (unsigned i = 0; i < p->nthreads; i++)
        pthread_join(p->threads[i], NULL);
    pthread_cond_destroy(&p->cond);
    pthread_mutex_destroy(&p->mutex);
    free(p->threads);
    free(p);
}

unsigned pool_queued(struct pool *p)
{
    return atomic_load_explicit(&p->queued, memory_order_relaxed);
}

unsigned pool_busy(struct pool *p)
{
    return atomic_load_explicit(&p->busy, memory_order_relaxed);
}
