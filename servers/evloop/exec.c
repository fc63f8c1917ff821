/* exec.c - the event-loop executor (see exec.h).
 *
 * Tracing (trace.h): every step of a task is a slice on the loop's track, named by the
 * request's route, with the request and the step it resumed at; each callback that steps a
 * task is a slice around its steps ("timer", "fd", "after_work"; "http" in server_io.c). The
 * waits, all in flight at once, are async spans (one track per task). A pool call is a flow
 * from the loop to the pool thread's slice ("pool") and back ("after_work"). */
#include "exec.h"

#include "loop.h"
#include "pool.h"

#include "check.h"
#include "db.h"
#include "http.h"
#include "pg_async.h"
#include "trace.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <sys/epoll.h>

/* The executor of this process. Only L touches it, apart from db_key, which each P reads. */
static struct {
    struct exec_config cfg;
    pthread_key_t db_key; /* each P's connection */
    unsigned suspended;   /* requests waiting on a callback */
} exec;

/* Per task: whatever its current wait needs. */
struct exec_task {
    struct req_task *task;
    struct pool_work work;   /* REQ_CALL */
    struct loop_timer timer; /* REQ_TIMER; REQ_FD's deadline */
    struct loop_io io;       /* REQ_FD */
    unsigned join_left;      /* REQ_JOIN: children still running */
    bool call_failed;        /* the pool thread had no connection */
    bool suspended;          /* the root task of a request that waited */
    uint64_t trace_ts;       /* when the current wait began, if traced */
};

static uint64_t exec_trace_id(const struct exec_task *e)
{
    return (uint64_t)(uintptr_t)e;
}

/* The end of the task's current wait, as an async span on the task's track. Before the task
 * steps on: a finished child's memory may be freed by its parent's next step. */
static void exec_trace_wait_end(struct exec_task *e, const char *what)
{
    if (e->trace_ts != 0)
        trace_async(e->trace_ts, what, exec_trace_id(e), "req",
                    trace_req_id(req_task_req(e->task)));
    e->trace_ts = 0;
}

static struct exec_task *exec_task_of(struct req_task *t)
{
    struct exec_task *e = req_task_model_ctx(t);
    e->task = t;
    return e;
}

/* ---- finishing ----------------------------------------------------------------------------- */

/* A task has ended. A child counts down its parent's join, and the last one steps the parent
 * on. A request that waited is resumed: the HTTP server's next turn sends its answer. One that
 * never waited is answered by the glue when the start callback returns. */
/* Recursion, bounded: a child's end steps its parent (one level: joins do not nest), and a
 * join's children that end at once are counted by exec_join without stepping the parent. */
static void exec_task_done(struct req_task *t) /* NOLINT(misc-no-recursion): see above */
{
    struct req_task *parent = req_task_parent(t);
    if (parent != NULL) {
        struct exec_task *p = req_task_model_ctx(parent);
        if (--p->join_left == 0) {
            exec_trace_wait_end(p, "join");
            exec_task_run(parent);
        }
        return;
    }
    struct exec_task *e = req_task_model_ctx(t);
    if (!e->suspended)
        return;
    exec.suspended--;
    http_req_resume(req_task_req(t));
}

/* ---- REQ_CALL ------------------------------------------------------------------------------ */

static void exec_db_close_cb(void *db)
{
    db_close(db);
}

/* The calling P's connection: opened on first use, closed by the key's destructor when the
 * thread exits in pool_destroy. */
static struct db *exec_pool_db(void)
{
    struct db *db = pthread_getspecific(exec.db_key);
    if (db == NULL && db_open(exec.cfg.db_path, &db) == 0)
        pthread_setspecific(exec.db_key, db);
    return db;
}

/* On a P: the only code of a task that runs off L. */
static void exec_call_work_cb(struct pool_work *w)
{
    struct exec_task *e = TRIAD_CONTAINER_OF(w, struct exec_task, work);
    struct db *db = NULL;
    uint64_t t0 = trace_begin(), id = exec_trace_id(e);
    struct req *r = req_task_req(e->task);
    trace_flow_end("pool", id);
    e->call_failed = req_call_wants_db(e->task) && (db = exec_pool_db()) == NULL;
    if (!e->call_failed)
        req_call_run(e->task, db);
    trace_flow_start("after_work", id);
    trace_slice(t0, t0 ? trace_req_label(r) : NULL, "req", trace_req_id(r));
}

/* Back on L, in the poll phase. */
static void exec_call_done_cb(struct pool_work *w)
{
    struct exec_task *e = TRIAD_CONTAINER_OF(w, struct exec_task, work);
    uint64_t t0 = trace_begin();
    trace_flow_end("after_work", exec_trace_id(e));
    exec_trace_wait_end(e, "pool");
    if (e->call_failed) {
        req_task_fail(e->task, "database unavailable");
        exec_task_done(e->task);
    } else {
        exec_task_run(e->task);
    }
    trace_slice(t0, "after_work", NULL, 0);
}

/* To the pool (uv_queue_work); with --db-on-loop a database call runs here, and L waits for
 * it. */
static int exec_call(struct req_task *t)
{
    if (req_call_wants_db(t) && exec.cfg.loop_db != NULL) {
        req_call_run(t, exec.cfg.loop_db);
        return 0;
    }
    if (pool_start(exec.cfg.pool) != 0) /* a no-op after the first call (libuv's uv_once) */
        return -EAGAIN;
    struct exec_task *e = exec_task_of(t);
    e->trace_ts = trace_begin();
    trace_flow_start("pool", exec_trace_id(e));
    pool_work_queue(exec.cfg.pool, &e->work, exec_call_work_cb, exec_call_done_cb);
    return 1;
}

/* ---- REQ_TIMER ----------------------------------------------------------------------------- */

static void exec_timer_cb(struct loop_timer *timer)
{
    struct exec_task *e = TRIAD_CONTAINER_OF(timer, struct exec_task, timer);
    uint64_t t0 = trace_begin();
    exec_trace_wait_end(e, "timer");
    exec_task_run(e->task);
    trace_slice(t0, "timer", NULL, 0);
}

static int exec_timer(struct req_task *t)
{
    struct exec_task *e = exec_task_of(t);
    e->trace_ts = trace_begin();
    loop_timer_init(&e->timer, exec_timer_cb);
    int rc = loop_timer_start(exec.cfg.loop, &e->timer, req_timer_ms(t), 0);
    return rc == 0 ? 1 : rc;
}

/* ---- REQ_FD -------------------------------------------------------------------------------- */

static void exec_fd_ready_cb(struct loop_io *io, uint32_t events)
{
    (void)events; /* readiness, an error or a hang-up: the step finds out which */
    struct exec_task *e = TRIAD_CONTAINER_OF(io, struct exec_task, io);
    uint64_t t0 = trace_begin();
    exec_trace_wait_end(e, "fd");
    loop_timer_stop(exec.cfg.loop, &e->timer);
    loop_io_stop(exec.cfg.loop, &e->io);
    exec_task_run(e->task);
    trace_slice(t0, "fd", NULL, 0);
}

static void exec_fd_expired_cb(struct loop_timer *timer)
{
    struct exec_task *e = TRIAD_CONTAINER_OF(timer, struct exec_task, timer);
    uint64_t t0 = trace_begin();
    exec_trace_wait_end(e, "fd");
    loop_io_stop(exec.cfg.loop, &e->io);
    req_fd_expired(e->task);
    exec_task_run(e->task);
    trace_slice(t0, "fd", "expired", 1);
}

/* A watcher for the descriptor (level-triggered, like every libuv watcher) and, if the wait
 * has a deadline, a timer. Costs two epoll_ctl calls per wait (add, then delete); libuv keeps
 * a stream's watcher registered and only changes its events. */
static int exec_fd(struct req_task *t)
{
    struct exec_task *e = exec_task_of(t);
    e->trace_ts = trace_begin();
    uint32_t events = ((req_fd_events(t) & REQ_FD_READ) ? EPOLLIN | EPOLLRDHUP : 0) |
                      ((req_fd_events(t) & REQ_FD_WRITE) ? EPOLLOUT : 0);
    loop_timer_init(&e->timer, exec_fd_expired_cb);
    int timeout = req_fd_timeout_ms(t);
    if (timeout >= 0) {
        int rc = loop_timer_start(exec.cfg.loop, &e->timer, (uint64_t)timeout, 0);
        if (rc != 0)
            return rc;
    }
    int rc = loop_io_start(exec.cfg.loop, &e->io, req_fd(t), events, exec_fd_ready_cb);
    if (rc != 0) {
        loop_timer_stop(exec.cfg.loop, &e->timer);
        return rc;
    }
    return 1;
}

/* ---- REQ_JOIN ------------------------------------------------------------------------------ */

/* Every child starts now and runs until its first wait. The count starts one higher than the
 * number of children, so that children that finish at once (without waiting) cannot step the
 * parent on while it is still starting the others. */
static int exec_join(struct req_task *t) /* NOLINT(misc-no-recursion): see exec_task_done */
{
    struct exec_task *e = exec_task_of(t);
    unsigned n = req_join_count(t);
    e->trace_ts = trace_begin();
    e->join_left = n + 1;
    for (unsigned i = 0; i < n; i++)
        exec_task_run(req_join_child(t, i));
    if (--e->join_left != 0)
        return 1;
    e->trace_ts = 0; /* every child finished at once: no wait */
    return 0;
}

/* ---- running tasks ------------------------------------------------------------------------- */

static int exec_wait(struct req_task *t, enum req_wait w) /* NOLINT(misc-no-recursion) */
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

/* A request's first wait that leaves L: its connection leaves libmicrohttpd until it ends. */
static void exec_req_suspend(struct req_task *t)
{
    struct exec_task *e = req_task_model_ctx(t);
    if (req_task_parent(t) != NULL || e->suspended)
        return;
    e->suspended = true;
    exec.suspended++;
    http_req_suspend(req_task_req(t));
}

/* One step, traced: a slice named by the route, with the request and the step. */
static enum req_wait exec_step(struct req_task *t)
{
    uint64_t t0 = trace_begin();
    if (t0 == 0)
        return req_task_step(t);
    struct req *r = req_task_req(t);
    int pc = trace_task_pc(t);
    enum req_wait w = req_task_step(t);
    trace_slice2(t0, trace_req_label(r), "req", trace_req_id(r), "step", (uint64_t)pc);
    return w;
}

void exec_task_run(struct req_task *t) /* NOLINT(misc-no-recursion): see exec_task_done */
{
    enum req_wait w;
    while ((w = exec_step(t)) != REQ_DONE) {
        int rc = exec_wait(t, w);
        if (rc > 0) {
            exec_req_suspend(t);
            return;
        }
        if (rc < 0) {
            req_task_fail(t, w == REQ_CALL ? "database unavailable" : "out of memory");
            break;
        }
    }
    exec_task_done(t);
}

/* On L, inside the HTTP server's run: the request's first steps happen right here. */
static void exec_req_start_cb(struct req *r)
{
    exec_task_run(req_root(r));
}

const struct http_model exec_http_model = {
    .name = "evloop",
    .task_ctx_size = sizeof(struct exec_task),
    .start_cb = exec_req_start_cb,
};

/* ---- set-up -------------------------------------------------------------------------------- */

int exec_init(const struct exec_config *cfg)
{
    exec.cfg = *cfg;
    exec.suspended = 0;
    int rc = -pthread_key_create(&exec.db_key, exec_db_close_cb);
    /* pg.Pool keeps every client it opened until it has been idle for 10 s: max idle = max. */
    if (rc == 0 && db_target_is_pg(cfg->db_path))
        rc = pg_async_init(cfg->db_path, cfg->pg_pool, cfg->pg_pool);
    return rc;
}

void exec_close(void)
{
    TRIAD_ASSERT(exec.suspended == 0, "exec_close: requests still waiting");
    if (pg_async_enabled())
        pg_async_close();
    pthread_key_delete(exec.db_key);
}

unsigned exec_suspended(void)
{
    return exec.suspended;
}
