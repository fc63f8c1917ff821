/* blocking.c - the blocking executor (see blocking.h). */
#include "blocking.h"

#include "check.h"
#include "db.h"
#include "hook.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <time.h>

/* A fan-out thread only sleeps: a small stack keeps a 1000-way fan-out cheap in address
 * space. (Python's threading.Thread would reserve the default 8 MiB.) */
#define BLOCKING_FANOUT_STACK (64 * 1024)

static const char *blocking_db_path;
static struct gil *blocking_gil;
/* Each thread's own sqlite connection: opened on first use, closed by the key's destructor
 * when the thread exits (libmicrohttpd's connection threads and the pool's workers alike). */
static pthread_key_t blocking_db_key;

static void blocking_db_close_cb(void *db)
{
    db_close(db);
}

int blocking_init(const char *db_path, struct gil *gil)
{
    blocking_db_path = db_path;
    blocking_gil = gil;
    return -pthread_key_create(&blocking_db_key, blocking_db_close_cb);
}

static struct db *blocking_thread_db(void)
{
    struct db *db = pthread_getspecific(blocking_db_key);
    if (db == NULL && db_open(blocking_db_path, &db) == 0)
        pthread_setspecific(blocking_db_key, db);
    return db;
}

/* Sleeps `ms` on the monotonic clock, whatever signals arrive. */
static void blocking_sleep_ms(unsigned ms)
{
    struct timespec deadline;
    clock_gettime(CLOCK_MONOTONIC, &deadline);
    deadline.tv_sec += ms / 1000;
    deadline.tv_nsec += (long)(ms % 1000) * 1000000;
    if (deadline.tv_nsec >= 1000000000) {
        deadline.tv_sec++;
        deadline.tv_nsec -= 1000000000;
    }
    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &deadline, NULL) == EINTR)
        ;
}

static void *blocking_fanout_call(void *arg)
{
    blocking_sleep_ms((unsigned)(uintptr_t)arg);
    return NULL;
}

/* One OS thread per call, then join them all: what a blocking program does to wait on N
 * things at once. Returns -EAGAIN if the threads could not be created (after joining the
 * ones that were). */
static int blocking_fanout(unsigned calls, unsigned ms)
{
    pthread_t *threads = malloc(calls * sizeof(*threads));
    pthread_attr_t attr;
    unsigned started = 0;
    if (threads == NULL)
        return -ENOMEM;
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, BLOCKING_FANOUT_STACK);
    while (started < calls && pthread_create(&threads[started], &attr, blocking_fanout_call,
                                             (void *)(uintptr_t)ms) == 0)
        started++;
    pthread_attr_destroy(&attr);
    for (unsigned i = 0; i < started; i++)
        pthread_join(threads[i], NULL);
    free(threads);
    return started == calls ? 0 : -EAGAIN;
}

/* Performs one wait; returns false if it could not be performed (the request is then
 * refused). */
static bool blocking_wait(struct req *r, enum req_wait w)
{
    struct db *db;
    int rc = 0;
    switch (w) {
    case REQ_DB:
        if ((db = blocking_thread_db()) == NULL)
            return false;
        req_db_run(r, db); /* each sqlite3_step releases the GIL through the hooks */
        return true;
    case REQ_SLEEP:
        hook_blocking_enter();
        blocking_sleep_ms(req_wait_ms(r));
        hook_blocking_exit();
        return true;
    case REQ_FANOUT:
        hook_blocking_enter();
        rc = blocking_fanout(req_wait_calls(r), req_wait_ms(r));
        hook_blocking_exit();
        return rc == 0;
    case REQ_DONE:
        break;
    }
    TRIAD_ASSERT(0, "unknown wait");
}

void blocking_run(struct req *r)
{
    if (blocking_gil)
        gil_take(blocking_gil);
    enum req_wait w;
    while ((w = req_step(r)) != REQ_DONE) {
        if (!blocking_wait(r, w)) {
            req_refuse(r, w == REQ_DB ? "database unavailable" : "cannot start threads");
            break;
        }
    }
    if (blocking_gil)
        gil_drop(blocking_gil);
}
