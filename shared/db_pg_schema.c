/* db_pg_schema.c - creating, migrating and seeding a PostgreSQL database (start-up only).
 *
 * The same schema as sqlite's (db_sqlite_schema.c), in PostgreSQL's types: World and Fortune
 * as TechEmpower defines them, items with a bigserial id (a sequence: ids are never reused,
 * like sqlite's AUTOINCREMENT). The schema version lives in a one-row table, triad_meta, since
 * PostgreSQL has no user_version; a database newer than this build is refused. Tables that
 * already exist are kept, and World and Fortune are seeded only when empty, so triad also runs
 * on TechEmpower's own hello_world database.
 *
 * Several processes may start at once against one database: the whole migration runs in one
 * transaction under an advisory lock.
 */
#include "db_impl.h"
#include "pg_sql.h"

#include <errno.h>
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* pg_advisory_xact_lock's key: "triad" in ASCII. */
#define DB_PG_LOCK_KEY "495472696164"

static const char *const db_pg_migrations[DB_SCHEMA_VERSION] = {
    /* 1: the TechEmpower tables and the items resource. */
    "CREATE TABLE IF NOT EXISTS World (id integer PRIMARY KEY, randomNumber integer NOT NULL);"
    "CREATE TABLE IF NOT EXISTS Fortune (id integer PRIMARY KEY, message text NOT NULL);"
    "CREATE TABLE IF NOT EXISTS items (id bigserial PRIMARY KEY, name text NOT NULL,"
    " qty bigint NOT NULL CHECK (qty >= 0));"
    /* 1 + floor(random() * 10000): 1..10000, as rng_between_1_and gives sqlite's rows. */
    "INSERT INTO World (id, randomNumber) SELECT g, 1 + floor(random() * 10000)::int"
    " FROM generate_series(1, 10000) AS g WHERE NOT EXISTS (SELECT 1 FROM World);",
};

/* Runs sql; on failure writes the server's message into err. */
static int db_pg_run(PGconn *conn, const char *sql, char *err, size_t errlen)
{
    PGresult *res = PQexec(conn, sql);
    int rc = pg_result_errno(res);
    if (rc != 0)
        db_fail(err, errlen, -EIO, "%s", PQresultErrorMessage(res));
    PQclear(res);
    return rc;
}

static int db_pg_seed_fortunes(PGconn *conn, char *err, size_t errlen)
{
    PGresult *res = PQexec(conn, "SELECT count(*) FROM Fortune");
    bool empty = pg_result_errno(res) == 0 && strcmp(PQgetvalue(res, 0, 0), "0") == 0;
    PQclear(res);
    for (int i = 0; empty && i < DB_FORTUNE_ROWS; i++) {
        char id[8];
        const char *params[] = {id, db_fortunes[i]};
        snprintf(id, sizeof(id), "%d", i + 1);
        res = PQexecParams(conn, "INSERT INTO Fortune (id, message) VALUES ($1, $2)", 2, NULL,
                           params, NULL, NULL, 0);
        int rc = pg_result_errno(res);
        if (rc != 0)
            db_fail(err, errlen, rc, "seeding Fortune: %s", PQresultErrorMessage(res));
        PQclear(res);
        if (rc != 0)
            return rc;
    }
    return 0;
}

static int db_pg_version(PGconn *conn, int *version, char *err, size_t errlen)
{
    int rc =
        db_pg_run(conn, "CREATE TABLE IF NOT EXISTS triad_meta (schema_version integer NOT NULL);",
                  err, errlen);
    if (rc != 0)
        return rc;
    PGresult *res = PQexec(conn, "SELECT schema_version FROM triad_meta");
    rc = pg_result_errno(res);
    *version = rc == 0 && PQntuples(res) > 0 ? (int)strtol(PQgetvalue(res, 0, 0), NULL, 10) : 0;
    PQclear(res);
    return rc == 0 ? 0 : db_fail(err, errlen, rc, "cannot read triad_meta");
}

static int db_pg_migrate(PGconn *conn, char *err, size_t errlen)
{
    int version = 0;
    int rc =
        db_pg_run(conn, "BEGIN; SELECT pg_advisory_xact_lock(" DB_PG_LOCK_KEY ");", err, errlen);
    if (rc != 0 || (rc = db_pg_version(conn, &version, err, errlen)) != 0)
        goto rollback;
    if (version < 0 || version > DB_SCHEMA_VERSION) {
        rc = db_fail(err, errlen, -EINVAL,
                     "schema version %d is not one this build knows (up to %d): refusing to "
                     "touch it",
                     version, DB_SCHEMA_VERSION);
        goto rollback;
    }
    /* Migration i takes the database from version i to i + 1. */
    for (unsigned i = (unsigned)version; i < DB_SCHEMA_VERSION; i++) {
        char bump[96];
        snprintf(bump, sizeof(bump), "DELETE FROM triad_meta; INSERT INTO triad_meta VALUES (%u);",
                 i + 1);
        if ((rc = db_pg_run(conn, db_pg_migrations[i], err, errlen)) != 0 ||
            (rc = db_pg_run(conn, bump, err, errlen)) != 0)
            goto rollback;
    }
    /* Version 1's Fortune rows: parameters, not SQL text (they hold quotes and UTF-8). */
    if (version == 0 && (rc = db_pg_seed_fortunes(conn, err, errlen)) != 0)
        goto rollback;
    return db_pg_run(conn, "COMMIT;", err, errlen);

rollback:;
    char ignored[8];
    db_pg_run(conn, "ROLLBACK;", ignored, sizeof(ignored));
    return rc;
}

int db_pg_setup(const char *conninfo, char *err, size_t errlen)
{
    PGconn *conn = pg_connect_blocking(conninfo);
    if (conn == NULL)
        return db_fail(err, errlen, -ENOMEM, "out of memory");
    int rc;
    if (PQstatus(conn) != CONNECTION_OK)
        rc = db_fail(err, errlen, -EIO, "cannot connect: %s", PQerrorMessage(conn));
    else
        rc = db_pg_migrate(conn, err, errlen);
    PQfinish(conn);
    return rc;
}
