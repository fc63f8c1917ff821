/* db_pg.c - the PostgreSQL backend, blocking: libpq's PQexecPrepared on the calling thread.
 *
 * This is the connection psycopg2 gives a CPython thread: every query blocks the thread in
 * libpq (the GIL released around it, through the core's blocking hooks), one connection per
 * thread. The models whose drivers wait on the socket instead use pg_async.c, over the same
 * statements (pg_sql.h) and the same schema.
 *
 * A connection that breaks (PostgreSQL restarted, the network cut) answers -EIO, and the next
 * call on it reconnects (PQreset) before its query: a 503 per request while the database is
 * away, service again once it is back, without restarting triad. libpq blocks without a
 * deadline of its own, so the connection asks the kernel for one: connect_timeout for a
 * connect, tcp_user_timeout and keepalives for a peer that vanishes mid-query (pg_sql.h).
 */
#include "db_impl.h"
#include "pg_sql.h"

#include "hook.h"

#include <errno.h>
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct db_pg {
    struct db base;
    char *conninfo;
    PGconn *conn;
    bool prepared; /* the statements exist on this session */
};

static struct db_pg *db_pg_of(struct db *db)
{
    return (struct db_pg *)(void *)db;
}

/* Prepares every statement on a fresh session. */
static int db_pg_prepare(struct db_pg *db)
{
    for (int i = 0; i < PG_ST_COUNT; i++) {
        hook_blocking_enter();
        PGresult *res = PQprepare(db->conn, pg_stmt_name[i], pg_stmt_sql[i], 0, NULL);
        hook_blocking_exit();
        int rc = pg_result_errno(res);
        PQclear(res);
        if (rc != 0)
            return rc;
    }
    db->prepared = true;
    return 0;
}

/* A session that works, reconnecting first if the last one broke. */
static int db_pg_ready(struct db_pg *db)
{
    if (db->conn != NULL && PQstatus(db->conn) == CONNECTION_OK && db->prepared)
        return 0;
    hook_blocking_enter();
    if (db->conn == NULL)
        db->conn = pg_connect_blocking(db->conninfo);
    else
        PQreset(db->conn); /* keeps the notice processor */
    hook_blocking_exit();
    db->prepared = false;
    if (db->conn == NULL || PQstatus(db->conn) != CONNECTION_OK)
        return -EIO;
    return db_pg_prepare(db);
}

/* Runs a prepared statement with text parameters; the caller clears the result. */
static PGresult *db_pg_exec(struct db_pg *db, enum pg_stmt st, int nparams,
                            const char *const *params, int *rc)
{
    *rc = db_pg_ready(db);
    if (*rc != 0)
        return NULL;
    hook_blocking_enter();
    PGresult *res = PQexecPrepared(db->conn, pg_stmt_name[st], nparams, params, NULL, NULL, 0);
    hook_blocking_exit();
    *rc = pg_result_errno(res);
    if (*rc == -EIO && PQstatus(db->conn) != CONNECTION_OK)
        db->prepared = false; /* reconnect next time */
    return res;
}

static void db_pg_close(struct db *base)
{
    struct db_pg *db = db_pg_of(base);
    PQfinish(db->conn);
    free(db->conninfo);
    free(db);
}

static int db_pg_open(const char *target, struct db **out)
{
    struct db_pg *db = calloc(1, sizeof(*db));
    if (db == NULL || (db->conninfo = strdup(target)) == NULL) {
        free(db);
        return -ENOMEM;
    }
    db->base.be = &db_pg_backend;
    /* Connected now, to fail early when the database is unreachable; a later failure is a
     * 503 and a reconnect, not an error here. */
    int rc = db_pg_ready(db);
    if (rc != 0) {
        db_pg_close(&db->base);
        return rc;
    }
    *out = &db->base;
    return 0;
}

static int db_pg_world_get(struct db *base, int32_t id, int32_t *random_number)
{
    char a[16];
    const char *params[] = {a};
    snprintf(a, sizeof(a), "%d", (int)id);
    int rc;
    PGresult *res = db_pg_exec(db_pg_of(base), PG_ST_WORLD_GET, 1, params, &rc);
    if (rc == 0)
        rc = pg_world_row(res, random_number);
    PQclear(res);
    return rc;
}

static int db_pg_world_update(struct db *base, const struct db_world *rows, size_t n)
{
    struct pg_arrays arr;
    int rc = pg_world_arrays(rows, n, &arr);
    if (rc != 0)
        return rc;
    const char *params[] = {arr.ids, arr.values};
    PGresult *res = db_pg_exec(db_pg_of(base), PG_ST_WORLD_UPDATE, 2, params, &rc);
    PQclear(res);
    pg_arrays_free(&arr);
    return rc;
}

static int db_pg_fortune_each(struct db *base, db_fortune_cb cb, void *ctx)
{
    int rc;
    PGresult *res = db_pg_exec(db_pg_of(base), PG_ST_FORTUNES, 0, NULL, &rc);
    if (rc == 0)
        rc = pg_fortune_rows(res, cb, ctx);
    PQclear(res);
    return rc;
}

static int db_pg_item_insert(struct db *base, const char *name, size_t name_len, int64_t qty,
                             int64_t *id)
{
    (void)name_len; /* text parameters are C strings: the API refuses names with NUL */
    char q[24];
    const char *params[] = {name, q};
    snprintf(q, sizeof(q), "%lld", (long long)qty);
    int rc;
    PGresult *res = db_pg_exec(db_pg_of(base), PG_ST_ITEM_INSERT, 2, params, &rc);
    if (rc == 0)
        rc = pg_id_row(res, id);
    PQclear(res);
    return rc;
}

static int db_pg_item_get(struct db *base, int64_t id, struct db_item *out)
{
    char a[24];
    const char *params[] = {a};
    snprintf(a, sizeof(a), "%lld", (long long)id);
    int rc;
    PGresult *res = db_pg_exec(db_pg_of(base), PG_ST_ITEM_GET, 1, params, &rc);
    if (rc == 0)
        rc = PQntuples(res) == 1 ? pg_item_row(res, 0, out) : -ENOENT;
    PQclear(res);
    return rc;
}

static int db_pg_item_replace(struct db *base, const struct db_item *item)
{
    char q[24], a[24];
    const char *params[] = {item->name, q, a};
    snprintf(q, sizeof(q), "%lld", (long long)item->qty);
    snprintf(a, sizeof(a), "%lld", (long long)item->id);
    int rc;
    PGresult *res = db_pg_exec(db_pg_of(base), PG_ST_ITEM_REPLACE, 3, params, &rc);
    if (rc == 0)
        rc = pg_changed(res);
    PQclear(res);
    return rc;
}

static int db_pg_item_delete(struct db *base, int64_t id)
{
    char a[24];
    const char *params[] = {a};
    snprintf(a, sizeof(a), "%lld", (long long)id);
    int rc;
    PGresult *res = db_pg_exec(db_pg_of(base), PG_ST_ITEM_DELETE, 1, params, &rc);
    if (rc == 0)
        rc = pg_changed(res);
    PQclear(res);
    return rc;
}

static int db_pg_item_list(struct db *base, int64_t after, int limit, db_item_cb cb, void *ctx)
{
    char a[24], l[16];
    const char *params[] = {a, l};
    snprintf(a, sizeof(a), "%lld", (long long)after);
    snprintf(l, sizeof(l), "%d", limit);
    int rc;
    PGresult *res = db_pg_exec(db_pg_of(base), PG_ST_ITEM_LIST, 2, params, &rc);
    if (rc == 0)
        rc = pg_item_rows(res, cb, ctx);
    PQclear(res);
    return rc;
}

const struct db_backend db_pg_backend = {
    .open = db_pg_open,
    .close = db_pg_close,
    .world_get = db_pg_world_get,
    .world_update = db_pg_world_update,
    .fortune_each = db_pg_fortune_each,
    .item_insert = db_pg_item_insert,
    .item_get = db_pg_item_get,
    .item_replace = db_pg_item_replace,
    .item_delete = db_pg_item_delete,
    .item_list = db_pg_item_list,
};
