/* db_sqlite_schema.c - creating, migrating and seeding a sqlite database (start-up only).
 *
 * The schema version lives in sqlite's `PRAGMA user_version`. Migration N takes a database from
 * version N-1 to N inside one transaction, so a crash mid-migration leaves the previous
 * version intact. A file newer than this build is refused rather than guessed at.
 */
#include "db_impl.h"

#include "rng.h"

#include <errno.h>
#include <sqlite3.h>
#include <stdio.h>

static const char *const db_migrations[DB_SCHEMA_VERSION] = {
    /* 1: the TechEmpower tables and the items resource. */
    "CREATE TABLE World (id INTEGER PRIMARY KEY, randomNumber INTEGER NOT NULL);"
    "CREATE TABLE Fortune (id INTEGER PRIMARY KEY, message TEXT NOT NULL);"
    "CREATE TABLE items (id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT NOT NULL,"
    " qty INTEGER NOT NULL CHECK (qty >= 0));",
};

/* Runs a prepared INSERT for each row; the caller owns the transaction. */
static int db_seed_rows(sqlite3 *conn, const char *sql, int nrows, int fortunes)
{
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(conn, sql, -1, &st, NULL);
    for (int i = 1; rc == SQLITE_OK && i <= nrows; i++) {
        sqlite3_bind_int(st, 1, i);
        if (fortunes)
            sqlite3_bind_text(st, 2, db_fortunes[i - 1], -1, SQLITE_STATIC);
        else
            sqlite3_bind_int(st, 2, (int)rng_between_1_and(10000));
        rc = sqlite3_step(st) == SQLITE_DONE ? SQLITE_OK : SQLITE_ERROR;
        sqlite3_reset(st);
    }
    sqlite3_finalize(st);
    return rc;
}

static int db_migrate(sqlite3 *conn, int from, char *err, size_t errlen)
{
    for (int v = from + 1; v <= DB_SCHEMA_VERSION; v++) {
        char bump[64];
        snprintf(bump, sizeof(bump), "PRAGMA user_version = %d;", v);
        int rc = sqlite3_exec(conn, "BEGIN IMMEDIATE;", NULL, NULL, NULL);
        if (rc == SQLITE_OK)
            rc = sqlite3_exec(conn, db_migrations[v - 1], NULL, NULL, NULL);
        if (rc == SQLITE_OK && v == 1)
            rc = db_seed_rows(conn, "INSERT INTO World (id, randomNumber) VALUES (?, ?)",
                              DB_WORLD_ROWS, 0);
        if (rc == SQLITE_OK && v == 1)
            rc = db_seed_rows(conn, "INSERT INTO Fortune (id, message) VALUES (?, ?)",
                              DB_FORTUNE_ROWS, 1);
        if (rc == SQLITE_OK)
            rc = sqlite3_exec(conn, bump, NULL, NULL, NULL);
        if (rc == SQLITE_OK)
            rc = sqlite3_exec(conn, "COMMIT;", NULL, NULL, NULL);
        if (rc != SQLITE_OK) {
            int e = db_fail(err, errlen, -EIO, "migration to schema version %d failed: %s", v,
                            sqlite3_errmsg(conn));
            sqlite3_exec(conn, "ROLLBACK;", NULL, NULL, NULL);
            return e;
        }
    }
    return 0;
}

static int db_pragma_int(sqlite3 *conn, const char *sql, int *out)
{
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(conn, sql, -1, &st, NULL);
    if (rc == SQLITE_OK && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        *out = sqlite3_column_int(st, 0);
        rc = SQLITE_OK;
    }
    sqlite3_finalize(st);
    return rc == SQLITE_OK ? 0 : -EIO;
}

/* `PRAGMA quick_check` reads every page: a few milliseconds for this database, and it turns a
 * corrupt file into a clear start-up error instead of a surprise on some later request. */
static int db_check_integrity(sqlite3 *conn, char *err, size_t errlen)
{
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(conn, "PRAGMA quick_check", -1, &st, NULL);
    if (rc == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW) {
        const char *verdict = (const char *)sqlite3_column_text(st, 0);
        if (verdict && sqlite3_stricmp(verdict, "ok") == 0) {
            sqlite3_finalize(st);
            return 0;
        }
        rc = db_fail(err, errlen, -EIO, "integrity check failed: %s", verdict ? verdict : "?");
        sqlite3_finalize(st);
        return rc;
    }
    rc = db_fail(err, errlen, -EIO, "integrity check failed: %s", sqlite3_errmsg(conn));
    sqlite3_finalize(st);
    return rc;
}

static int db_setup_conn(sqlite3 *conn, char *err, size_t errlen)
{
    int version = 0;
    sqlite3_busy_timeout(conn, DB_BUSY_TIMEOUT_MS);
    if (sqlite3_exec(conn, "PRAGMA journal_mode=WAL;", NULL, NULL, NULL) != SQLITE_OK)
        return db_fail(err, errlen, -EIO, "cannot use it: %s", sqlite3_errmsg(conn));
    if (db_pragma_int(conn, "PRAGMA user_version", &version) != 0)
        return db_fail(err, errlen, -EIO, "cannot read it: %s", sqlite3_errmsg(conn));
    if (version > DB_SCHEMA_VERSION)
        return db_fail(err, errlen, -EINVAL,
                       "schema version %d is newer than this build's %d: refusing to touch it",
                       version, DB_SCHEMA_VERSION);
    int rc = db_check_integrity(conn, err, errlen);
    if (rc == 0)
        rc = db_migrate(conn, version, err, errlen);
    return rc;
}

int db_sqlite_setup(const char *path, char *err, size_t errlen)
{
    sqlite3 *conn = NULL;
    int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX;
    int rc = sqlite3_open_v2(path, &conn, flags, NULL);
    if (rc != SQLITE_OK) {
        rc = db_fail(err, errlen, -EIO, "cannot open it: %s",
                     conn ? sqlite3_errmsg(conn) : sqlite3_errstr(rc));
        goto out;
    }
    rc = db_setup_conn(conn, err, errlen);
out:
    sqlite3_close(conn);
    return rc;
}
