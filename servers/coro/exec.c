/* exec.c - the goroutine executor (see exec.h). */
#include "exec.h"

#include "coro.h"
#include "dbpool.h"

#include "check.h"
#include "db.h"
#include "http.h"
#include "pg_async.h"
#include "trace.h"

#include <errno.h>

/* Per task: the WaitGroup of its joins (only a task that joins uses it). */
struct exec_task {
    struct coro_wg wg;
};

/* ---- REQ_CALL ------------------------------------------------------------------------------ */

/* A connection is checked out for this one call, so that a goroutine that comes back from a
 * blocking call on another M still holds the connection it started with. */
static int exec_call(struct req_task *t)
{
    struct db *db = NULL;
    if (req_call_wants_db(t) && dbpool_get(&db) != 0)
        return -EIO;
    req_call_run(t, db); /* each sqlite3_step: entersyscall ... exitsyscall, through the hooks */
    if (db != NULL)
        dbpool_put(db);
    return 0;
}

/* ---- REQ_TIMER ----------------------------------------------------------------------------- */

static int exec_timer(struct req_task *t)
{
    coro_sleep_ns((uint64_t)req_timer_ms(t) * 1000000u);
    return 0;
}

/* ---- REQ_FD -------------------------------------------------------------------------------- */

static int exec_fd(struct req_task *t)
{
    unsigned ev = req_fd_events(t);
    int timeout = req_fd_timeout_ms(t);
    int rc = coro_fd_wait(req_fd(t),
                          ((ev & REQ_FD_READ) ? CORO_FD_READ : 0) |
                              ((ev & REQ_FD_WRITE) ? CORO_FD_WRITE : 0),
                          timeout < 0 ? -1 : (int64_t)timeout * 1000000);
    if (rc == -ETIMEDOUT)
        req_fd_expired(t);
    return rc == -ETIMEDOUT ? 0 : rc;
}

/* ---- REQ_JOIN ------------------------------------------------------------------------------ */

static void exec_child_main(void *arg)
{
    struct req_task *c = arg;
    if (trace_enabled())
        coro_trace_label("fanout child");
    struct exec_task *parent = req_task_model_ctx(req_task_parent(c));
    exec_task_run(c);
    coro_wg_done(&parent->wg);
}

/* `go` once per child, then wg.Wait(). A child that cannot get a goroutine (no stack, no M)
 * fails; the join waits for the ones that started. The children run in parallel with each
 * other and with us until we park. */
static int exec_join(struct req_task *t)
{
    struct exec_task *e = req_task_model_ctx(t);
    unsigned n = req_join_count(t), started = 0;
    coro_wg_init(&e->wg);
    coro_wg_add(&e->wg, (long)n);
    while (started < n && coro_go(exec_child_main, req_join_child(t, started)) == 0)
        started++;
    for (unsigned i = started; i < n; i++)
        req_task_fail(req_join_child(t, i), "cannot start goroutines");
    coro_wg_add(&e->wg, -(long)(n - started));
    coro_wg_wait(&e->wg);
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
    enum req_wait w;
    while ((w = req_task_step(t)) != REQ_DONE) {
        coro_detach(); /* a request running inline leaves the shard's M at its first wait */
        int rc = exec_wait(t, w);
        if (rc < 0) {
            req_task_fail(t, w == REQ_CALL ? "database unavailable" : "out of memory");
            break;
        }
    }
}

/* The request goroutine. */
static void exec_req_main(void *arg)
{
    struct req *r = arg;
    if (trace_enabled())
        coro_trace_label(trace_req_label(r));
    exec_task_run(req_root(r));
    if (coro_attached())
        return;         /* finished inline, never suspended: the glue queues the answer */
    http_req_resume(r); /* the core wakes the shard that holds the connection */
}

/* Called by the HTTP server's run, on a shard goroutine (shard.c). */
static void exec_req_start_cb(struct req *r)
{
    /* A P is idle: do what `go` does (newproc: runnext, then wakep), so that the idle P can
     * steal the request and run it in parallel. Running it inline would keep it on this M,
     * out of every queue, and leave the other P idle while this shard's requests run one
     * after another. The price: the connection is suspended and resumed. */
    if (coro_procs_idle() > 0) {
        http_req_suspend(r);
        int rc = coro_go(exec_req_main, r);
        if (rc == 0)
            return;
        /* No stack, or no M for the idle P: the goroutine never ran, so the connection we
         * suspended is ours to resume (coro.h), with a 503; an operations request runs here
         * instead (it needs no new M, and never waits). */
        if (rc == -EAGAIN && req_exempt(r)) {
            enum req_wait w = req_step(r);
            TRIAD_ASSERT(w == REQ_DONE, "exec_req_start_cb: an exempt request waited");
        } else {
            req_refuse(r, "cannot start goroutines");
        }
        http_req_resume(r);
        return;
    }
    /* Every P is busy: nobody could take the request sooner than this M, so run it here at
     * once, and a request that never waits is answered without leaving the M. */
    struct g *detached;
    int rc = coro_run_inline(exec_req_main, r, &detached);
    if (rc < 0) /* no stack: nothing was suspended; the glue queues the 503 now */
        req_refuse(r, "cannot start goroutines");
    if (rc <= 0)
        return; /* finished on this M: the glue queues the response now */
    /* It waited (or was preempted) and gave the M back: the connection leaves the server until
     * the goroutine resumes it, and the goroutine goes to our runnext. */
    http_req_suspend(r);
    coro_detached_ready(detached);
}

const struct http_model exec_http_model = {
    .name = "coro",
    .task_ctx_size = sizeof(struct exec_task),
    .start_cb = exec_req_start_cb,
};

int exec_init(const struct exec_config *cfg)
{
    if (db_target_is_pg(cfg->db_path))
        return pg_async_init(cfg->db_path, cfg->db_max_open, cfg->db_idle);
    return dbpool_init(cfg->db_path, cfg->db_idle);
}

void exec_close(void)
{
    if (pg_async_enabled())
        pg_async_close();
    else
        dbpool_close();
}
