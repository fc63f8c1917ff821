/* test_db.c - shared/db.c and db_schema.c against a real sqlite file. */
#include "db.h"
#include "driver.h"

#include <errno.h>
#include <setjmp.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

static const char *path;
static struct db *db;

static int setup(void **state)
{
    (void)state;
    path = drv_temp_db();
    return db_open(path, &db);
}

static int teardown(void **state)
{
    (void)state;
    db_close(db);
    return 0;
}

static void test_setup_is_idempotent(void **state)
{
    (void)state;
    char err[256];
    int32_t before, after;
    assert_int_equal(db_world_get(db, 1, &before), 0);
    assert_int_equal(db_setup(path, err, sizeof(err)), 0); /* no re-seed, no error */
    assert_int_equal(db_world_get(db, 1, &after), 0);
    assert_int_equal(before, after);
}

static void test_newer_schema_is_refused(void **state)
{
    (void)state;
    char p[256], err[256] = "";
    snprintf(p, sizeof(p), "%s.newer", path);
    sqlite3 *c;
    assert_int_equal(sqlite3_open(p, &c), SQLITE_OK);
    assert_int_equal(sqlite3_exec(c, "PRAGMA user_version = 99;", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(c);
    assert_int_equal(db_setup(p, err, sizeof(err)), -EINVAL);
    assert_non_null(strstr(err, "newer"));
}

static void test_corrupt_file_is_refused(void **state)
{
    (void)state;
    char p[256], err[256] = "";
    snprintf(p, sizeof(p), "%s.corrupt", path);
    FILE *f = fopen(p, "w");
    fputs("this is not a database, just 4096 bytes of text..................", f);
    for (int i = 0; i < 64; i++)
        fputs("................................................................", f);
    fclose(f);
    assert_int_equal(db_setup(p, err, sizeof(err)), -EIO);
    assert_true(strlen(err) > 0);
}

static void test_world(void **state)
{
    (void)state;
    int32_t v;
    for (int32_t id = 1; id <= DB_WORLD_ROWS; id += 999) {
        assert_int_equal(db_world_get(db, id, &v), 0);
        assert_true(v >= 1 && v <= 10000);
    }
    assert_int_equal(db_world_get(db, DB_WORLD_ROWS + 1, &v), -ENOENT);
    struct db_world rows[2] = {{5, 1111}, {6, 2222}};
    assert_int_equal(db_world_update(db, rows, 2), 0);
    assert_int_equal(db_world_get(db, 5, &v), 0);
    assert_int_equal(v, 1111);
    assert_int_equal(db_world_get(db, 6, &v), 0);
    assert_int_equal(v, 2222);
}

static int count_cb(void *ctx, int32_t id, const char *message, size_t len)
{
    (void)id;
    assert_int_equal(strlen(message), len);
    ++*(int *)ctx;
    return 0;
}

static void test_fortunes(void **state)
{
    (void)state;
    int n = 0;
    assert_int_equal(db_fortune_each(db, count_cb, &n), 0);
    assert_int_equal(n, 12);
}

static int list_cb(void *ctx, const struct db_item *it)
{
    int64_t *last = ctx;
    assert_true(it->id > *last);
    *last = it->id;
    return 0;
}

static void test_items(void **state)
{
    (void)state;
    int64_t id1, id2, last = 0;
    struct db_item it;
    assert_int_equal(db_item_insert(db, "apple", 5, 3, &id1), 0);
    assert_int_equal(db_item_insert(db, "pear", 4, 0, &id2), 0);
    assert_true(id2 > id1);
    assert_int_equal(db_item_get(db, id1, &it), 0);
    assert_string_equal(it.name, "apple");
    assert_int_equal(it.qty, 3);
    it.qty = 9;
    assert_int_equal(db_item_replace(db, &it), 0);
    assert_int_equal(db_item_get(db, id1, &it), 0);
    assert_int_equal(it.qty, 9);
    assert_int_equal(db_item_list(db, 0, 10, list_cb, &last), 0);
    assert_int_equal(last, id2);
    assert_int_equal(db_item_delete(db, id1), 0);
    assert_int_equal(db_item_delete(db, id1), -ENOENT);
    assert_int_equal(db_item_get(db, id1, &it), -ENOENT);
    it.id = id1;
    assert_int_equal(db_item_replace(db, &it), -ENOENT);
    int64_t id3;
    assert_int_equal(db_item_insert(db, "plum", 4, 1, &id3), 0);
    assert_true(id3 > id2); /* AUTOINCREMENT: a deleted id is never reused */
}

static void test_busy_writer_gets_ebusy(void **state)
{
    (void)state;
    sqlite3 *other;
    assert_int_equal(sqlite3_open(path, &other), SQLITE_OK);
    assert_int_equal(sqlite3_exec(other, "BEGIN IMMEDIATE;", NULL, NULL, NULL), SQLITE_OK);
    /* Our connection waits DB_BUSY_TIMEOUT_MS, then reports -EBUSY; nothing is written. */
    int32_t before, v;
    assert_int_equal(db_world_get(db, 9, &before), 0);
    struct db_world row = {9, before == 4242 ? 4243 : 4242};
    assert_int_equal(db_world_update(db, &row, 1), -EBUSY);
    assert_int_equal(sqlite3_exec(other, "ROLLBACK;", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(other);
    assert_int_equal(db_world_get(db, 9, &v), 0);
    assert_int_equal(v, before);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_setup_is_idempotent),
        cmocka_unit_test(test_newer_schema_is_refused),
        cmocka_unit_test(test_corrupt_file_is_refused),
        cmocka_unit_test(test_world),
        cmocka_unit_test(test_fortunes),
        cmocka_unit_test(test_items),
        cmocka_unit_test(test_busy_writer_gets_ebusy),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
