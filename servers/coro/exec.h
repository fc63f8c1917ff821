/* exec.h - the goroutine executor: every task a goroutine, every wait a park.
 *
 * Every model has an exec.c with the same functions (see servers/threaded/exec.h for the
 * list and conventions), so that diffing two of them shows how two runtimes wait. Here a task
 * runs in a goroutine and its waits are written as blocking calls, as in Go; what blocks is
 * the goroutine, not the thread, and every exec_<wait> returns 0 (or an error):
 *
 *   REQ_CALL   database work between entersyscall and exitsyscall (the core's blocking hooks
 *              around every sqlite3_step), on a connection checked out of dbpool.c; sysmon
 *              hands the P to another M if the call outlasts a tick.
 *   REQ_TIMER  time.Sleep: a timer on the P's heap, the goroutine parked.
 *   REQ_FD     the netpoller (coro_fd_wait): parked until the descriptor is ready or its
 *              deadline passes, as a net.Conn read or write parks in pollDesc.wait.
 *   REQ_JOIN   one goroutine per child and a WaitGroup (`go` in a loop, then wg.Wait()).
 *
 * A request runs in its own goroutine: see exec_req_start_cb for when it runs inline on the
 * shard's M (every P busy), and when it is handed to an idle P.
 */
#ifndef TRIAD_CORO_EXEC_H
#define TRIAD_CORO_EXEC_H

#include "req.h"

/* The model as the HTTP glue sees it. */
extern const struct http_model exec_http_model;

struct exec_config {
    const char *db_path;  /* a sqlite file, or a PostgreSQL connection string */
    unsigned db_idle;     /* idle connections the pool keeps (database/sql's SetMaxIdleConns) */
    unsigned db_max_open; /* PostgreSQL: connections open at most (SetMaxOpenConns); 0: no cap */
};

/* Sets up the database pool: sqlite connections checked out per call (dbpool.c), or, for
 * PostgreSQL, the non-blocking pool whose operations park on the netpoller (pg_async.h), as
 * pgx and lib/pq do. Returns 0 or a negative errno. */
int exec_init(const struct exec_config *cfg);
/* Closes the idle connections; none may be checked out. */
void exec_close(void);

/* Runs task t to its end in the calling goroutine, parking it at each wait. */
void exec_task_run(struct req_task *t);

#endif
