/* db.h - the database layer: schema, seed data and every query the API makes.
 *
 * Two backends: sqlite, the default (a file path), and PostgreSQL (a libpq connection URI,
 * postgresql://..., or a keyword/value string, host=... dbname=...). Everything below holds for
 * both unless it says otherwise; the PostgreSQL specifics are in db_pg.c, and its non-blocking
 * path for the models whose drivers wait on the socket is pg_async.h.
 *
 * One `struct db` is one connection with its prepared statements. A connection is used
 * by one thread at a time and never concurrently (each model decides how: one per worker
 * thread, or checked out of a pool per wait); it is opened with SQLITE_OPEN_NOMUTEX because of
 * that. Every statement is prepared once at db_open and reused: no SQL text is ever built from
 * input.
 *
 * Every sqlite3_step is bracketed by hook_blocking_enter/exit (hook.h), so a GIL is released
 * and a goroutine's P can be handed off while sqlite works, as CPython and cgo do.
 *
 * Durability: WAL journal, synchronous=NORMAL. A transaction is committed when its COMMIT
 * returns, so a 2xx after a write means the write survives kill -9 of the server (the WAL is
 * in the OS page cache); only a power cut can lose the last commits. Write contention waits up
 * to DB_BUSY_TIMEOUT_MS in sqlite's busy handler, then fails with -EBUSY (a 503 to the client).
 *
 * Errors: 0 on success, -ENOENT (no such row), -EBUSY (locked past the busy timeout), -ENOMEM,
 * or -EIO (anything else: read-only or full disk, corruption).
 */
#ifndef TRIAD_DB_H
#define TRIAD_DB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define DB_SCHEMA_VERSION      1
#define DB_WORLD_ROWS          10000
#define DB_BUSY_TIMEOUT_MS     5000 /* CPython's sqlite3.connect(timeout=5.0) */
#define DB_ITEM_NAME_MAX_CHARS 200
#define DB_ITEM_NAME_MAX_BYTES (4 * DB_ITEM_NAME_MAX_CHARS) /* UTF-8: at most 4 bytes a char */

struct db;

struct db_world {
    int32_t id;            /* 1..DB_WORLD_ROWS */
    int32_t random_number; /* 1..10000 */
};

struct db_item {
    int64_t id;
    int64_t qty;
    size_t name_len;
    char name[DB_ITEM_NAME_MAX_BYTES + 1];
};

/* True if `target` names a PostgreSQL database rather than a sqlite file. */
bool db_target_is_pg(const char *target);

/* Creates the database (sqlite: the file) if needed, migrates it to DB_SCHEMA_VERSION, seeds
 * World (10,000 random rows) and Fortune (the 12 standard rows), and checks it (sqlite: switches
 * it to WAL and checks its integrity). Called once per process tree, before any connection is
 * opened. On failure writes a one-line message into err and returns a negative errno. */
int db_setup(const char *target, char *err, size_t errlen);

/* Opens a connection to a database that db_setup prepared. */
int db_open(const char *target, struct db **out);
void db_close(struct db *db);

/* World: one SELECT per call, as TechEmpower requires. */
int db_world_get(struct db *db, int32_t id, int32_t *random_number);
/* Writes every row's random_number in one transaction: BEGIN IMMEDIATE, one UPDATE per row,
 * COMMIT. Returns only after the commit. */
int db_world_update(struct db *db, const struct db_world *rows, size_t n);

/* Fortune: calls cb for every row, in table order; a non-zero return from cb stops the walk and
 * is returned. `message` is valid only during the call. */
typedef int (*db_fortune_cb)(void *ctx, int32_t id, const char *message, size_t len);
int db_fortune_each(struct db *db, db_fortune_cb cb, void *ctx);

/* Items: a name of at most DB_ITEM_NAME_MAX_BYTES bytes and a qty >= 0 (validated by the
 * caller). Ids come from AUTOINCREMENT and are never reused after a delete. */
int db_item_insert(struct db *db, const char *name, size_t name_len, int64_t qty, int64_t *id);
int db_item_get(struct db *db, int64_t id, struct db_item *out);
int db_item_replace(struct db *db, const struct db_item *item); /* -ENOENT if absent */
int db_item_delete(struct db *db, int64_t id);                  /* -ENOENT if absent */
/* Items with id > after, in id order, at most `limit` of them. */
typedef int (*db_item_cb)(void *ctx, const struct db_item *item);
int db_item_list(struct db *db, int64_t after, int limit, db_item_cb cb, void *ctx);

/* An operation: what an endpoint asks of the database in one wait, as data, so that it can be
 * run by a blocking call (db_op_run, any backend) or by PostgreSQL's non-blocking step machine
 * (pg_async.h) alike. The pointers stay valid until the operation has ended. */
enum db_op_kind {
    DB_OP_WORLD_READ,   /* rows[0..n): fill each random_number that is 0, one SELECT each */
    DB_OP_WORLD_WRITE,  /* rows[0..n): store every random_number, committed together */
    DB_OP_FORTUNES,     /* fortune_cb for every Fortune row */
    DB_OP_ITEM_INSERT,  /* *item (name, qty); sets item->id */
    DB_OP_ITEM_GET,     /* id; fills *item */
    DB_OP_ITEM_REPLACE, /* *item (id, name, qty) */
    DB_OP_ITEM_DELETE,  /* id */
    DB_OP_ITEM_LIST,    /* item_cb for items after `after`, at most `limit` */
};

struct db_op {
    enum db_op_kind kind;
    struct db_world *rows;
    unsigned n;
    struct db_item *item;
    int64_t id, after;
    int limit;
    db_fortune_cb fortune_cb;
    db_item_cb item_cb;
    void *ctx;
};

/* Runs an operation on a connection, blocking: 0 or a negative errno as above. */
int db_op_run(struct db *db, const struct db_op *op);

#endif
