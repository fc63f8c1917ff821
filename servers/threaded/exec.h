/* exec.h - the threaded executor: every wait blocks the task's own OS thread.
 *
 * Every model has an exec.c with the same functions, so that `diff servers/threaded/exec.c
 * servers/evloop/exec.c` shows how two runtimes wait, and nothing else:
 *
 *   exec_req_start_cb   the HTTP glue's start callback: where a request starts to run
 *   exec_task_run       steps a task, performing its waits, until it ends
 *   exec_wait           one switch over the wait kinds (no default: a new kind of wait does
 *                       not compile until every model performs it)
 *   exec_call, exec_timer, exec_fd, exec_join
 *                       one function per mechanism. Each returns 0 once the wait is over (the
 *                       task steps on), 1 if a callback will step it on later (only the event
 *                       loop says that), or a negative errno if it cannot be performed (the
 *                       task fails: a 503 for a request)
 *
 * Here every function returns 0 or an error: a wait is a blocking call on the task's thread,
 * with the GIL released around it, as CPython's socket, time and sqlite3 modules do.
 */
#ifndef TRIAD_THREADED_EXEC_H
#define TRIAD_THREADED_EXEC_H

#include "req.h"

struct gil;
struct pool;

struct exec_config {
    const char *db_path;
    struct gil *gil;  /* NULL: the free-threaded build */
    unsigned threads; /* the pool (gthread's --threads); 0: thread per connection, requests run
                       * on their connection's thread */
};

/* Starts the pool, if any. Returns 0 or a negative errno. */
int exec_init(const struct exec_config *cfg);
/* Lets the pool finish what is queued and joins it. */
void exec_close(void);
/* The pool, for the gauges; NULL in thread-per-connection mode. */
struct pool *exec_pool(void);

/* The model as the HTTP glue sees it. */
extern const struct http_model exec_http_model;

/* Runs task t to its end on the calling thread, which it blocks: the GIL is held while t's
 * steps run and released while it waits. */
void exec_task_run(struct req_task *t);

#endif
