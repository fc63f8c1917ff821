/* pg_async.h - PostgreSQL without blocking: libpq's asynchronous API stepped over the
 * descriptor wait, for the models whose drivers wait on the socket.
 *
 * node-postgres runs the whole protocol on the event loop (no thread pool), and Go's pgx and
 * lib/pq park the goroutine on the netpoller; both write to the socket, and when an answer is
 * not there yet, wait for readability. This is that, once, in the core: an operation (db.h's
 * struct db_op) becomes a step machine over libpq's non-blocking calls (PQconnectStartParams
 * and PQconnectPoll to connect, PQsendPrepare and PQsendQueryPrepared to send, PQflush,
 * PQconsumeInput, PQisBusy, PQgetResult), and every time libpq would block, a REQ_FD wait on
 * PQsocket (req.h). The request's own task steps it (req.c), so the event loop waits with a
 * watcher and the goroutine model parks on the netpoller, each its own way, with no thread
 * blocked and no pool thread used.
 *
 * The connections: one pool per process, as pg.Pool or database/sql holds one. An operation
 * takes an idle connection (the most recently returned), or opens one if fewer than
 * `max_open` are open (0: no limit), or waits for one to be returned. Waiting is a REQ_FD on an
 * eventfd of the operation's own, written by whoever returns a connection: the connection goes
 * straight to the first waiter, in arrival order (pg.Pool's queue of callbacks; database/sql's
 * connRequests). Returned connections beyond `max_idle` are closed. Statements are prepared
 * once per connection, on its first use.
 *
 * Failures: a connection that breaks (PostgreSQL restarted, pg_terminate_backend, the network
 * cut) is closed, never returned to the pool, and its operation fails with -EIO (a 503 with
 * Retry-After); the next operation opens a new one, so the server reconnects on its own. No
 * wait lasts longer than PG_ASYNC_TIMEOUT_MS: past it the operation fails (-ETIMEDOUT, a 503)
 * and its connection, in an unknown state, is closed. A statement that waits for a lock is
 * cancelled by the server first (lock_timeout, pg_sql.c): a 503 "database busy".
 *
 * Pipelining (libpq 14's pipeline mode) is not used: node-postgres sends one query at a time
 * per client, and pgx batches only when the program asks for a batch. /queries?queries=20 is
 * twenty round trips, as it is for both drivers by default.
 */
#ifndef TRIAD_PG_ASYNC_H
#define TRIAD_PG_ASYNC_H

#include "req.h"

#include <stddef.h>

/* Past the sessions' lock_timeout (sqlite's busy timeout, pg_sql.c), so that a statement
 * waiting for a lock is cancelled by the server, with a "database busy" 503 and its connection
 * kept, before the operation gives up on its own. */
#define PG_ASYNC_TIMEOUT_MS 6000

struct db_op;
struct metrics_gauge;
struct pg_op;

/* Sets up the pool for `conninfo`. Returns 0 or -ENOMEM. */
int pg_async_init(const char *conninfo, unsigned max_open, unsigned max_idle);
/* Closes the idle connections (at shutdown: none may be in use). */
void pg_async_close(void);
bool pg_async_enabled(void);

/* An operation in progress. The db_op must outlive it. NULL when out of memory. */
struct pg_op *pg_op_create(const struct db_op *op);
/* Ends it; a connection it still holds is closed, not pooled (its state is unknown). */
void pg_op_destroy(struct pg_op *o);
/* Steps the operation on task t until it must wait (returns the REQ_FD wait, made with t's
 * current pc) or has ended (returns REQ_DONE; see pg_op_result). */
enum req_wait pg_op_step(struct req_task *t, struct pg_op *o);
/* 0, or a negative errno as db.h's calls return them. */
int pg_op_result(const struct pg_op *o);

/* The pool's figures, for /stats and /metrics. */
size_t pg_async_gauges(struct metrics_gauge *g, size_t cap);

#endif
