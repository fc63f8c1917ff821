/* exec.h - the event-loop executor: tasks stepped on the loop thread, their waits callbacks.
 *
 * Every model has an exec.c with the same functions (see servers/threaded/exec.h for the
 * list and conventions), so that diffing two of them shows how two runtimes wait. Here a wait
 * is something the loop will call back, the way an async function's awaits become callbacks
 * in Node, and every exec_<wait> returns 1 ("a callback will step the task on") except a
 * database call with --db-on-loop, which runs there and then and returns 0:
 *
 *   REQ_CALL   a pool item (pool.h): the call runs on a pool thread (P) with that thread's
 *              own sqlite connection, and the done callback steps on, on the loop (L).
 *              --db-on-loop: a database call runs right here and L waits for it.
 *   REQ_TIMER  one loop timer.
 *   REQ_FD     a watcher on the descriptor in L's epoll set (uv_poll_t), and a loop timer for
 *              its deadline; whichever fires first stops the other and steps on.
 *   REQ_JOIN   every child started in turn, and a countdown; the last child to finish steps
 *              the parent on.
 *
 * A request that waits is suspended at its first wait (its connection leaves libmicrohttpd)
 * and resumed when it ends; the HTTP server then gets a turn in the loop's next pending round
 * (server_io.h). A request that never waits (/json, /cpu, or any with --db-on-loop) is
 * finished inside the start callback and never suspended.
 *
 * One executor per process; everything but the pool threads' calls happens on L.
 */
#ifndef TRIAD_EVLOOP_EXEC_H
#define TRIAD_EVLOOP_EXEC_H

#include "req.h"

struct db;
struct loop;
struct pool;

struct exec_config {
    struct loop *loop;
    struct pool *pool;   /* for REQ_CALL, unless loop_db takes a database call */
    const char *db_path; /* each pool thread opens its own connection to it */
    struct db *loop_db;  /* --db-on-loop: L's own connection; NULL otherwise */
    unsigned pg_pool;    /* PostgreSQL: connections open at most (pg.Pool's max) */
};

/* With PostgreSQL, sets up the non-blocking pool whose operations run on L (pg_async.h), as
 * node-postgres does: no pool thread ever touches the database. Returns 0 or a negative errno.
 * Before the first request. */
int exec_init(const struct exec_config *cfg);
/* After the pool has been destroyed (its threads closed their connections on exit). */
void exec_close(void);

/* The model as the HTTP glue sees it. */
extern const struct http_model exec_http_model;

/* Steps task t on L until it waits for a callback or ends. */
void exec_task_run(struct req_task *t);

/* Requests waiting on a callback: a gauge. */
unsigned exec_suspended(void);

#endif
