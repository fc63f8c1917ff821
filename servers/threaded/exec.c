/* exec.c - the threaded executor (see exec.h). */
#include "exec.h"

#include "gil.h"
#include "pool.h"

#include "check.h"
#include "db.h"
#include "hook.h"
#include "http.h"
#include "trace.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <time.h>

/* A join's threads only wait and step their own small task: a small stack keeps a 1000-way
 * fan-out cheap in address space. (Python's threading.Thread would reserve the default
 * 8 MiB.) */
#define EXEC_CHILD_STACK (128 * 1024)

static struct {
    struct exec_config cfg;
    struct pool *pool;
    /* Each thread's own sqlite connection: opened on first use, closed by the key's
     * destructor when the thread exits (libmicrohttpd's connection threads and the pool's
     * workers alike), as CPython's sqlite3 module wants one connection per thread. */
    pthread_key_t db_key;
} exec;

/* Per task: the pool's link (a request's root task only). */
struct exec_task {
    struct pool_item item;
    struct req_task *task;
};

/* ---- REQ_CALL ------------------------------------------------------------------------------ */

static void exec_db_close_cb(void *db)
{
    db_close(db);
}

static struct db *exec_thread_db(void)
{
    struct db *db = pthread_getspecific(exec.db_key);
    if (db == NULL && db_open(exec.cfg.db_path, &db) == 0)
        pthread_setspecific(exec.db_key, db);
    return db;
}

/* Called here and now; each blocking call inside (every sqlite3_step) releases the GIL
 * through the core's hooks. */
static int exec_call(struct req_task *t)
{
    struct db *db = NULL;
    if (req_call_wants_db(t) && (db = exec_thread_db()) == NULL)
        return -EIO;
    uint64_t t0 = trace_begin();
    req_call_run(t, db);
    trace_slice(t0, "call", NULL, 0);
    return 0;
}

/* ---- REQ_TIMER ----------------------------------------------------------------------------- */

/* clock_nanosleep on an absolute deadline, so that a signal cannot stretch the wait. */
static int exec_timer(struct req_task *t)
{
    unsigned ms = req_timer_ms(t);
    struct timespec deadline;
    clock_gettime(CLOCK_MONOTONIC, &deadline);
    deadline.tv_sec += ms / 1000;
    deadline.tv_nsec += (long)(ms % 1000) * 1000000;
    if (deadline.tv_nsec >= 1000000000) {
        deadline.tv_sec++;
        deadline.tv_nsec -= 1000000000;
    }
    hook_blocking_enter();
    uint64_t t0 = trace_begin();
    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &deadline, NULL) == EINTR)
        ;
    trace_slice(t0, "sleep", "ms", ms);
    hook_blocking_exit();
    return 0;
}

/* ---- REQ_FD -------------------------------------------------------------------------------- */

static long long exec_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* poll(2) on the one descriptor, as CPython's socket module does for a socket with a timeout
 * (sock_call_ex: poll, then the call), GIL released. */
static int exec_fd(struct req_task *t)
{
    unsigned ev = req_fd_events(t);
    struct pollfd p = {
        .fd = req_fd(t),
        .events = (short)(((ev & REQ_FD_READ) ? POLLIN : 0) | ((ev & REQ_FD_WRITE) ? POLLOUT : 0))};
    int timeout = req_fd_timeout_ms(t);
    long long deadline = timeout < 0 ? -1 : exec_now_ms() + timeout;
    int n;
    hook_blocking_enter();
    uint64_t t0 = trace_begin();
    do {
        long long left = deadline < 0 ? -1 : deadline - exec_now_ms();
        n = poll(&p, 1, left < 0 && deadline >= 0 ? 0 : (int)left);
    } while (n < 0 && errno == EINTR);
    trace_slice(t0, "poll", "fd", (uint64_t)p.fd);
    hook_blocking_exit();
    if (n == 0)
        req_fd_expired(t);
    return 0; /* ready, or an error the step will meet on its next read or write */
}

/* ---- REQ_JOIN ------------------------------------------------------------------------------ */

static void *exec_child_main(void *arg)
{
    trace_thread_name("fanout", -1, 300);
    uint64_t t0 = trace_begin();
    exec_task_run(arg);
    trace_slice(t0, "child", "req", trace_req_id(req_task_req(arg)));
    return NULL;
}

/* One OS thread per child, then join them all: what a blocking program does to wait on N
 * things at once (a ThreadPoolExecutor as large as the fan-out). Children that could not get
 * a thread fail; the ones that did are joined. */
static int exec_join(struct req_task *t)
{
    unsigned n = req_join_count(t), started = 0;
    pthread_t *threads = malloc(n * sizeof(*threads));
    if (threads == NULL)
        return -ENOMEM;
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, EXEC_CHILD_STACK);
    hook_blocking_enter(); /* the children take the GIL for their own steps */
    uint64_t t0 = trace_begin();
    while (started < n && pthread_create(&threads[started], &attr, exec_child_main,
                                         req_join_child(t, started)) == 0)
        started++;
    for (unsigned i = started; i < n; i++)
        req_task_fail(req_join_child(t, i), "cannot start threads");
    for (unsigned i = 0; i < started; i++)
        pthread_join(threads[i], NULL);
    trace_slice(t0, "join", "threads", started);
    hook_blocking_exit();
    pthread_attr_destroy(&attr);
    free(threads);
    return 0;
}

/* ---- running tasks ------------------------------------------------------------------------- */

static int exec_wait(struct req_task *t, enum req_wait w)
{
    switch (w) {
    case REQ_CALL:
        return exec_call(t);
    case REQ_TIMER:
        return exec_timer(t);
    case REQ_FD:
        return exec_fd(t);
    case REQ_JOIN:
        return exec_join(t);
    case REQ_DONE:
        break;
    }
    TRIAD_ASSERT(0, "exec_wait: REQ_DONE is not a wait");
}

void exec_task_run(struct req_task *t)
{
    if (exec.cfg.gil)
        gil_take(exec.cfg.gil);
    enum req_wait w;
    while ((w = req_task_step(t)) != REQ_DONE) {
        int rc = exec_wait(t, w);
        if (rc < 0) {
            req_task_fail(t, rc == -EIO ? "database unavailable" : "out of memory");
            break;
        }
    }
    if (exec.cfg.gil)
        gil_drop(exec.cfg.gil);
}

/* A pool thread: the request, start to finish, then its connection back to the acceptor. */
static void exec_pool_run_cb(struct pool_item *item)
{
    struct exec_task *e = TRIAD_CONTAINER_OF(item, struct exec_task, item);
    struct req *r = req_task_req(e->task);
    /* The request's slice on this thread, named by its route; the flows tie it to the
     * acceptor's runs that queued it and that answer it. Nothing of r is read after the
     * resume: the acceptor may free it at once. */
    uint64_t t0 = trace_begin(), id = trace_req_id(r);
    const char *label = t0 ? trace_req_label(r) : NULL;
    trace_flow_end("queue", id);
    exec_task_run(e->task);
    http_req_resume(r);
    trace_slice(t0, label, "req", id);
}

/* On the acceptor (pool mode): out of its poll set and into the queue. On the connection's
 * own thread (thread per connection): run it here. */
static void exec_req_start_cb(struct req *r)
{
    if (exec.pool == NULL) {
        uint64_t t0 = trace_begin();
        if (t0 != 0)
            trace_thread_name("conn", -1, 50);
        exec_task_run(req_root(r));
        trace_slice(t0, t0 ? trace_req_label(r) : NULL, "req", trace_req_id(r));
        return;
    }
    struct exec_task *e = req_model_ctx(r);
    e->task = req_root(r);
    http_req_suspend(r);
    trace_flow_start("queue", trace_req_id(r));
    pool_submit(exec.pool, &e->item);
    trace_counter("queue", -1, pool_queued(exec.pool));
}

const struct http_model exec_http_model = {
    .name = "threaded",
    .task_ctx_size = sizeof(struct exec_task),
    .start_cb = exec_req_start_cb,
};

/* ---- set-up -------------------------------------------------------------------------------- */

int exec_init(const struct exec_config *cfg)
{
    exec.cfg = *cfg;
    exec.pool = NULL;
    int rc = -pthread_key_create(&exec.db_key, exec_db_close_cb);
    if (rc == 0 && cfg->threads > 0)
        rc = pool_start(cfg->threads, exec_pool_run_cb, &exec.pool);
    return rc;
}

void exec_close(void)
{
    if (exec.pool)
        pool_stop(exec.pool); /* joins the workers: their sqlite connections close */
    exec.pool = NULL;
    pthread_key_delete(exec.db_key);
}

struct pool *exec_pool(void)
{
    return exec.pool;
}
