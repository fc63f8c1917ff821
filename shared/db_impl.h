/* db_impl.h - the database backends behind db.h, for the core only.
 *
 * A `struct db` is a connection of one backend: sqlite (db_sqlite.c, the default) or
 * PostgreSQL through libpq's blocking calls (db_pg.c). db.c dispatches the API's calls to the
 * connection's backend, and runs operations (db_op_run) through them. PostgreSQL's
 * non-blocking path (pg_async.h) does not go through here: it is a step machine, not a call.
 */
#ifndef TRIAD_DB_IMPL_H
#define TRIAD_DB_IMPL_H

#include "db.h"

#include <stddef.h>

struct db_backend {
    int (*open)(const char *target, struct db **out);
    void (*close)(struct db *db);
    int (*world_get)(struct db *db, int32_t id, int32_t *random_number);
    int (*world_update)(struct db *db, const struct db_world *rows, size_t n);
    int (*fortune_each)(struct db *db, db_fortune_cb cb, void *ctx);
    int (*item_insert)(struct db *db, const char *name, size_t name_len, int64_t qty, int64_t *id);
    int (*item_get)(struct db *db, int64_t id, struct db_item *out);
    int (*item_replace)(struct db *db, const struct db_item *item);
    int (*item_delete)(struct db *db, int64_t id);
    int (*item_list)(struct db *db, int64_t after, int limit, db_item_cb cb, void *ctx);
};

/* Every backend's connection starts with this. */
struct db {
    const struct db_backend *be;
};

extern const struct db_backend db_sqlite_backend;
extern const struct db_backend db_pg_backend;

int db_sqlite_setup(const char *path, char *err, size_t errlen);
int db_pg_setup(const char *conninfo, char *err, size_t errlen);

/* TechEmpower's 12 fortunes, verbatim, in id order (1..12). */
#define DB_FORTUNE_ROWS 12
extern const char *const db_fortunes[DB_FORTUNE_ROWS];

/* Formats a one-line error into err (multi-line messages are flattened) and returns rc. */
int db_fail(char *err, size_t errlen, int rc, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

#endif
