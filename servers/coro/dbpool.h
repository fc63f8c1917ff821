/* dbpool.h - sqlite connections checked out per database wait, as Go's database/sql does.
 *
 * A goroutine can move between threads in the middle of a request (a blocking call may return
 * on another M), so a connection cannot belong to a thread the way it does in the threaded and
 * event-loop servers. It belongs to the goroutine for the duration of one REQ_DB wait: taken
 * from the pool's idle list (or opened), used, and put back. Opening is a blocking call, so it
 * goes through entersyscall like any other. database/sql keeps at most 2 idle connections by
 * default (SetMaxIdleConns); tuned servers raise it, and so does the default here (--db-idle),
 * because each extra open costs a file open and eleven statement preparations.
 */
#ifndef TRIAD_CORO_DBPOOL_H
#define TRIAD_CORO_DBPOOL_H

struct db;

int dbpool_init(const char *path, unsigned max_idle);
void dbpool_close(void); /* closes the idle connections; none may be checked out */

/* From a goroutine. Returns 0 or a negative errno (the database cannot be opened). */
int dbpool_get(struct db **out);
void dbpool_put(struct db *db);

/* Gauges: connections open (idle or checked out), and idle. */
unsigned dbpool_open_count(void);
unsigned dbpool_idle_count(void);

#endif
