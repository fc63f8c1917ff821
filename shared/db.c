/* db.c - the database API: one backend per target, operations as data (see db.h). */
#include "db_impl.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* UTF-8: an em dash in rows 6 and 8, Japanese in row 12. */
const char *const db_fortunes[DB_FORTUNE_ROWS] = {
    "fortune: No such file or directory",
    "A computer scientist is someone who fixes things that aren't broken.",
    "After enough decimal places, nobody gives a damn.",
    "A bad random number generator: 1, 1, 1, 1, 1, 4.33e+67, 1, 1, 1",
    "A computer program does what you tell it to do, not what you want it to do.",
    "Emacs is a nice operating system, but I prefer UNIX. \xE2\x80\x94 Tom Christaensen",
    "Any program that runs right is obsolete.",
    "A list is only as strong as its weakest link. \xE2\x80\x94 Donald Knuth",
    "Feature: A bug with seniority.",
    "Computers make very fast, very accurate mistakes.",
    "<script>alert(\"This should not be displayed in a browser alert box.\");</script>",
    ("\xE3\x83\x95\xE3\x83\xAC\xE3\x83\xBC\xE3\x83\xA0\xE3\x83\xAF\xE3\x83\xBC\xE3\x82\xAF"
     "\xE3\x81\xAE\xE3\x83\x99\xE3\x83\xB3\xE3\x83\x81\xE3\x83\x9E\xE3\x83\xBC\xE3\x82\xAF"),
};

int db_fail(char *err, size_t errlen, int rc, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    for (char *p = err; *p; p++)
        if (*p == '\n' || *p == '\r')
            *p = ' ';
    return rc;
}

bool db_target_is_pg(const char *target)
{
    /* A libpq connection URI, or a keyword/value string (host=... dbname=...): a path to a
     * sqlite file has neither a scheme nor an '='. */
    return target != NULL &&
           (strncmp(target, "postgresql://", 13) == 0 || strncmp(target, "postgres://", 11) == 0 ||
            strchr(target, '=') != NULL);
}

int db_setup(const char *target, char *err, size_t errlen)
{
    return db_target_is_pg(target) ? db_pg_setup(target, err, errlen)
                                   : db_sqlite_setup(target, err, errlen);
}

int db_open(const char *target, struct db **out)
{
    const struct db_backend *be = db_target_is_pg(target) ? &db_pg_backend : &db_sqlite_backend;
    return be->open(target, out);
}

void db_close(struct db *db)
{
    if (db != NULL)
        db->be->close(db);
}

int db_world_get(struct db *db, int32_t id, int32_t *random_number)
{
    return db->be->world_get(db, id, random_number);
}

int db_world_update(struct db *db, const struct db_world *rows, size_t n)
{
    return db->be->world_update(db, rows, n);
}

int db_fortune_each(struct db *db, db_fortune_cb cb, void *ctx)
{
    return db->be->fortune_each(db, cb, ctx);
}

int db_item_insert(struct db *db, const char *name, size_t name_len, int64_t qty, int64_t *id)
{
    return db->be->item_insert(db, name, name_len, qty, id);
}

int db_item_get(struct db *db, int64_t id, struct db_item *out)
{
    return db->be->item_get(db, id, out);
}

int db_item_replace(struct db *db, const struct db_item *item)
{
    return db->be->item_replace(db, item);
}

int db_item_delete(struct db *db, int64_t id)
{
    return db->be->item_delete(db, id);
}

int db_item_list(struct db *db, int64_t after, int limit, db_item_cb cb, void *ctx)
{
    return db->be->item_list(db, after, limit, cb, ctx);
}

/* ---- operations ---------------------------------------------------------------------------- */

/* One SELECT per row that has no value yet, as TechEmpower requires. */
static int db_op_world_read(struct db *db, const struct db_op *op)
{
    for (unsigned i = 0; i < op->n; i++) {
        if (op->rows[i].random_number != 0)
            continue;
        int rc = db_world_get(db, op->rows[i].id, &op->rows[i].random_number);
        if (rc != 0)
            return rc;
    }
    return 0;
}

int db_op_run(struct db *db, const struct db_op *op)
{
    switch (op->kind) {
    case DB_OP_WORLD_READ:
        return db_op_world_read(db, op);
    case DB_OP_WORLD_WRITE:
        return db_world_update(db, op->rows, op->n);
    case DB_OP_FORTUNES:
        return db_fortune_each(db, op->fortune_cb, op->ctx);
    case DB_OP_ITEM_INSERT:
        return db_item_insert(db, op->item->name, op->item->name_len, op->item->qty, &op->item->id);
    case DB_OP_ITEM_GET:
        return db_item_get(db, op->id, op->item);
    case DB_OP_ITEM_REPLACE:
        return db_item_replace(db, op->item);
    case DB_OP_ITEM_DELETE:
        return db_item_delete(db, op->id);
    case DB_OP_ITEM_LIST:
        return db_item_list(db, op->after, op->limit, op->item_cb, op->ctx);
    }
    return -EINVAL;
}
