/* db_sqlite.c - the sqlite backend: connections and the queries the API makes (see db.h). */
#include "db_impl.h"

#include "check.h"
#include "hook.h"

#include <errno.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>

enum db_stmt_id {
    DB_ST_WORLD_GET,
    DB_ST_WORLD_SET,
    DB_ST_FORTUNES,
    DB_ST_BEGIN,
    DB_ST_COMMIT,
    DB_ST_ROLLBACK,
    DB_ST_ITEM_INSERT,
    DB_ST_ITEM_GET,
    DB_ST_ITEM_REPLACE,
    DB_ST_ITEM_DELETE,
    DB_ST_ITEM_LIST,
    DB_ST_COUNT
};

static const char *const db_sql[DB_ST_COUNT] = {
    [DB_ST_WORLD_GET] = "SELECT id, randomNumber FROM World WHERE id = ?",
    [DB_ST_WORLD_SET] = "UPDATE World SET randomNumber = ? WHERE id = ?",
    /* No ORDER BY: TechEmpower wants the sort done by the application. */
    [DB_ST_FORTUNES] = "SELECT id, message FROM Fortune",
    /* IMMEDIATE takes the write lock up front: a DEFERRED transaction that upgrades from read
     * to write can fail with SQLITE_BUSY without the busy handler ever being consulted. */
    [DB_ST_BEGIN] = "BEGIN IMMEDIATE",
    [DB_ST_COMMIT] = "COMMIT",
    [DB_ST_ROLLBACK] = "ROLLBACK",
    [DB_ST_ITEM_INSERT] = "INSERT INTO items (name, qty) VALUES (?, ?)",
    [DB_ST_ITEM_GET] = "SELECT id, name, qty FROM items WHERE id = ?",
    [DB_ST_ITEM_REPLACE] = "UPDATE items SET name = ?, qty = ? WHERE id = ?",
    [DB_ST_ITEM_DELETE] = "DELETE FROM items WHERE id = ?",
    [DB_ST_ITEM_LIST] = "SELECT id, name, qty FROM items WHERE id > ? ORDER BY id LIMIT ?",
};

struct db_sqlite {
    struct db base;
    sqlite3 *conn;
    sqlite3_stmt *st[DB_ST_COUNT];
};

static struct db_sqlite *db_sqlite_of(struct db *db)
{
    return (struct db_sqlite *)(void *)db;
}

static int db_errno(int rc)
{
    switch (rc & 0xff) { /* primary result code */
    case SQLITE_OK:
    case SQLITE_ROW:
    case SQLITE_DONE:
        return 0;
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
        return -EBUSY;
    case SQLITE_NOMEM:
        return -ENOMEM;
    default:
        return -EIO;
    }
}

/* The one place sqlite does work that may block: it may wait on file locks (the busy handler
 * sleeps), read pages from disk, or write and sync the WAL. */
static int db_step(sqlite3_stmt *st)
{
    hook_blocking_enter();
    int rc = sqlite3_step(st);
    hook_blocking_exit();
    return rc;
}

/* Steps a statement that returns no rows, then resets it. */
static int db_exec(struct db_sqlite *db, enum db_stmt_id id)
{
    sqlite3_stmt *st = db->st[id];
    int rc = db_step(st);
    sqlite3_reset(st);
    return rc == SQLITE_DONE ? 0 : db_errno(rc);
}

static void db_sqlite_close(struct db *base);

static int db_sqlite_open(const char *path, struct db **out)
{
    int rc = -ENOMEM;
    struct db_sqlite *db = calloc(1, sizeof(*db));
    if (db == NULL)
        goto fail;
    db->base.be = &db_sqlite_backend;
    /* No SQLITE_OPEN_CREATE: db_setup made the file; if it has vanished, say so. */
    int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX;
    rc = db_errno(sqlite3_open_v2(path, &db->conn, flags, NULL));
    if (rc != 0)
        goto fail_close;
    sqlite3_busy_timeout(db->conn, DB_BUSY_TIMEOUT_MS);
    rc = db_errno(sqlite3_exec(db->conn, "PRAGMA synchronous=NORMAL;", NULL, NULL, NULL));
    for (int i = 0; rc == 0 && i < DB_ST_COUNT; i++)
        rc = db_errno(sqlite3_prepare_v3(db->conn, db_sql[i], -1, SQLITE_PREPARE_PERSISTENT,
                                         &db->st[i], NULL));
    if (rc != 0)
        goto fail_close;
    *out = &db->base;
    return 0;

fail_close:
    db_sqlite_close(&db->base);
    return rc < 0 ? rc : -EIO;
fail:
    return rc;
}

static void db_sqlite_close(struct db *base)
{
    struct db_sqlite *db = db_sqlite_of(base);
    for (int i = 0; i < DB_ST_COUNT; i++)
        sqlite3_finalize(db->st[i]);
    sqlite3_close(db->conn);
    free(db);
}

static int db_sqlite_world_get(struct db *base, int32_t id, int32_t *random_number)
{
    struct db_sqlite *db = db_sqlite_of(base);
    sqlite3_stmt *st = db->st[DB_ST_WORLD_GET];
    sqlite3_bind_int(st, 1, id);
    int rc = db_step(st);
    if (rc == SQLITE_ROW) {
        *random_number = sqlite3_column_int(st, 1);
        rc = 0;
    } else {
        rc = rc == SQLITE_DONE ? -ENOENT : db_errno(rc);
    }
    sqlite3_reset(st);
    return rc;
}

static int db_sqlite_world_update(struct db *base, const struct db_world *rows, size_t n)
{
    struct db_sqlite *db = db_sqlite_of(base);
    sqlite3_stmt *st = db->st[DB_ST_WORLD_SET];
    int rc = db_exec(db, DB_ST_BEGIN);
    if (rc != 0)
        return rc;
    for (size_t i = 0; i < n && rc == 0; i++) {
        sqlite3_bind_int(st, 1, rows[i].random_number);
        sqlite3_bind_int(st, 2, rows[i].id);
        rc = db_exec(db, DB_ST_WORLD_SET);
    }
    if (rc == 0)
        rc = db_exec(db, DB_ST_COMMIT);
    if (rc != 0)
        db_exec(db, DB_ST_ROLLBACK); /* may fail if sqlite already rolled back: harmless */
    return rc;
}

static int db_sqlite_fortune_each(struct db *base, db_fortune_cb cb, void *ctx)
{
    struct db_sqlite *db = db_sqlite_of(base);
    sqlite3_stmt *st = db->st[DB_ST_FORTUNES];
    int rc, stop = 0;
    while (stop == 0 && (rc = db_step(st)) == SQLITE_ROW) {
        const char *msg = (const char *)sqlite3_column_text(st, 1);
        size_t len = (size_t)sqlite3_column_bytes(st, 1);
        stop = cb(ctx, sqlite3_column_int(st, 0), msg ? msg : "", msg ? len : 0);
    }
    sqlite3_reset(st);
    if (stop != 0)
        return stop;
    return rc == SQLITE_DONE ? 0 : db_errno(rc);
}

static int db_sqlite_item_insert(struct db *base, const char *name, size_t name_len, int64_t qty,
                                 int64_t *id)
{
    struct db_sqlite *db = db_sqlite_of(base);
    sqlite3_stmt *st = db->st[DB_ST_ITEM_INSERT];
    sqlite3_bind_text(st, 1, name, (int)name_len, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, qty);
    int rc = db_step(st);
    /* Read the rowid before anything else can run on this connection. */
    if (rc == SQLITE_DONE)
        *id = sqlite3_last_insert_rowid(db->conn);
    sqlite3_clear_bindings(st);
    sqlite3_reset(st);
    return rc == SQLITE_DONE ? 0 : db_errno(rc);
}

/* Copies the current row of an items SELECT (id, name, qty) into `out`. */
static int db_item_row(sqlite3_stmt *st, struct db_item *out)
{
    const char *name = (const char *)sqlite3_column_text(st, 1);
    size_t len = (size_t)sqlite3_column_bytes(st, 1);
    if (name == NULL || len > DB_ITEM_NAME_MAX_BYTES)
        return -EIO; /* written outside the API: refuse rather than truncate */
    out->id = sqlite3_column_int64(st, 0);
    out->qty = sqlite3_column_int64(st, 2);
    memcpy(out->name, name, len);
    out->name[len] = '\0';
    out->name_len = len;
    return 0;
}

static int db_sqlite_item_get(struct db *base, int64_t id, struct db_item *out)
{
    struct db_sqlite *db = db_sqlite_of(base);
    sqlite3_stmt *st = db->st[DB_ST_ITEM_GET];
    sqlite3_bind_int64(st, 1, id);
    int rc = db_step(st);
    if (rc == SQLITE_ROW)
        rc = db_item_row(st, out);
    else
        rc = rc == SQLITE_DONE ? -ENOENT : db_errno(rc);
    sqlite3_reset(st);
    return rc;
}

static int db_sqlite_item_replace(struct db *base, const struct db_item *item)
{
    struct db_sqlite *db = db_sqlite_of(base);
    sqlite3_stmt *st = db->st[DB_ST_ITEM_REPLACE];
    sqlite3_bind_text(st, 1, item->name, (int)item->name_len, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, item->qty);
    sqlite3_bind_int64(st, 3, item->id);
    int rc = db_exec(db, DB_ST_ITEM_REPLACE);
    sqlite3_clear_bindings(st);
    if (rc == 0 && sqlite3_changes(db->conn) == 0)
        rc = -ENOENT;
    return rc;
}

static int db_sqlite_item_delete(struct db *base, int64_t id)
{
    struct db_sqlite *db = db_sqlite_of(base);
    sqlite3_bind_int64(db->st[DB_ST_ITEM_DELETE], 1, id);
    int rc = db_exec(db, DB_ST_ITEM_DELETE);
    if (rc == 0 && sqlite3_changes(db->conn) == 0)
        rc = -ENOENT;
    return rc;
}

static int db_sqlite_item_list(struct db *base, int64_t after, int limit, db_item_cb cb, void *ctx)
{
    struct db_sqlite *db = db_sqlite_of(base);
    sqlite3_stmt *st = db->st[DB_ST_ITEM_LIST];
    struct db_item item;
    int rc, stop = 0;
    sqlite3_bind_int64(st, 1, after);
    sqlite3_bind_int(st, 2, limit);
    while (stop == 0 && (rc = db_step(st)) == SQLITE_ROW) {
        stop = db_item_row(st, &item);
        if (stop == 0)
            stop = cb(ctx, &item);
    }
    sqlite3_reset(st);
    if (stop != 0)
        return stop;
    return rc == SQLITE_DONE ? 0 : db_errno(rc);
}

const struct db_backend db_sqlite_backend = {
    .open = db_sqlite_open,
    .close = db_sqlite_close,
    .world_get = db_sqlite_world_get,
    .world_update = db_sqlite_world_update,
    .fortune_each = db_sqlite_fortune_each,
    .item_insert = db_sqlite_item_insert,
    .item_get = db_sqlite_item_get,
    .item_replace = db_sqlite_item_replace,
    .item_delete = db_sqlite_item_delete,
    .item_list = db_sqlite_item_list,
};
