/* pg_sql.h - what both PostgreSQL paths share: the statements, how to connect, what results
 * mean. The blocking path (db_pg.c) and the non-blocking one (pg_async.c) differ only in how
 * they wait.
 *
 * Statements are prepared once per session and reused. Parameters and results travel in
 * text format. /updates writes all of its rows with one UPDATE from two arrays (TechEmpower
 * allows batching writes, not reads, and its fast PostgreSQL entries do this), sorted by id
 * and without duplicate ids, so that concurrent batches lock rows in the same order and cannot
 * deadlock each other.
 *
 * Durability: every session runs with synchronous_commit=on (PostgreSQL's default, whatever
 * the cluster says): a COMMIT returns once the WAL is flushed to disk, so an acknowledged write
 * survives a crash of PostgreSQL or of the machine. TechEmpower's cluster sets it off, which
 * makes commits cheaper and lets a crash of PostgreSQL lose the last few hundred milliseconds
 * of acknowledged writes (never corrupt them).
 *
 * Lock waits: every session runs with lock_timeout=DB_BUSY_TIMEOUT_MS, sqlite's busy timeout
 * on the server's side: a statement kept waiting that long for another session's lock is
 * cancelled (55P03, -EBUSY: a 503 "database busy"), and nothing of it is applied later.
 */
#ifndef TRIAD_PG_SQL_H
#define TRIAD_PG_SQL_H

#include "db.h"

#include <libpq-fe.h>
#include <stddef.h>

enum pg_stmt {
    PG_ST_WORLD_GET,
    PG_ST_WORLD_UPDATE,
    PG_ST_FORTUNES,
    PG_ST_ITEM_INSERT,
    PG_ST_ITEM_GET,
    PG_ST_ITEM_REPLACE,
    PG_ST_ITEM_DELETE,
    PG_ST_ITEM_LIST,
    PG_ST_COUNT
};

extern const char *const pg_stmt_name[PG_ST_COUNT];
extern const char *const pg_stmt_sql[PG_ST_COUNT];

/* The connection options triad adds to the user's: keyword/value arrays for
 * PQconnectdbParams/PQconnectStartParams, with the user's string as an expandable dbname.
 * `out` must hold PG_PARAMS_MAX entries (NULL-terminated). */
#define PG_PARAMS_MAX 12
void pg_conn_params(const char *conninfo, const char **keys, const char **values);
/* Drops the connection's notices. */
void pg_quiet(PGconn *conn);
/* A blocking connect with those options, quiet; NULL only when out of memory (check
 * PQstatus). */
PGconn *pg_connect_blocking(const char *conninfo);

/* A result's meaning: 0 (it succeeded), -EBUSY (a serialization failure or a deadlock: try
 * again), -EIO (anything else, a lost connection included). NULL counts as -EIO. */
int pg_result_errno(const PGresult *res);
/* True if the error says the session is gone (PostgreSQL restarted, the backend terminated,
 * the network cut): the connection must not be reused. */
bool pg_conn_broken(const PGconn *conn, const PGresult *res);

/* Results of the statements above. */
int pg_world_row(const PGresult *res, int32_t *random_number); /* -ENOENT for no row */
int pg_fortune_rows(const PGresult *res, db_fortune_cb cb, void *ctx);
int pg_id_row(const PGresult *res, int64_t *id);
int pg_item_row(const PGresult *res, int row, struct db_item *out);
int pg_item_rows(const PGresult *res, db_item_cb cb, void *ctx);
int pg_changed(const PGresult *res); /* 0 if a row changed, -ENOENT if none */

/* The two array parameters of PG_ST_WORLD_UPDATE: "{1,5,9}" and "{331,12,9000}", sorted by
 * id, the last value of a duplicate id kept. */
struct pg_arrays {
    char *ids, *values;
};
int pg_world_arrays(const struct db_world *rows, size_t n, struct pg_arrays *out);
void pg_arrays_free(struct pg_arrays *a);

#endif
