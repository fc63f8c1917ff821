/* pg_sql.c - statements, connection options and results for PostgreSQL (see pg_sql.h). */
#include "pg_sql.h"

#include "db_impl.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PG_STR_(x) #x
#define PG_STR(x)  PG_STR_(x)

const char *const pg_stmt_name[PG_ST_COUNT] = {
    "world_get", "world_update", "fortunes",    "item_insert",
    "item_get",  "item_replace", "item_delete", "item_list",
};

/* Unquoted names fold to lower case: World is world, randomNumber is randomnumber, as in
 * TechEmpower's own PostgreSQL schema. */
const char *const pg_stmt_sql[PG_ST_COUNT] = {
    [PG_ST_WORLD_GET] = "SELECT id, randomNumber FROM World WHERE id = $1",
    [PG_ST_WORLD_UPDATE] = ("UPDATE World SET randomNumber = v.r FROM (SELECT unnest($1::int[]) "
                            "AS id, unnest($2::int[]) AS r) AS v WHERE World.id = v.id"),
    /* No ORDER BY: TechEmpower wants the sort done by the application. */
    [PG_ST_FORTUNES] = "SELECT id, message FROM Fortune",
    [PG_ST_ITEM_INSERT] = "INSERT INTO items (name, qty) VALUES ($1, $2) RETURNING id",
    [PG_ST_ITEM_GET] = "SELECT id, name, qty FROM items WHERE id = $1",
    [PG_ST_ITEM_REPLACE] = "UPDATE items SET name = $1, qty = $2 WHERE id = $3",
    [PG_ST_ITEM_DELETE] = "DELETE FROM items WHERE id = $1",
    [PG_ST_ITEM_LIST] = "SELECT id, name, qty FROM items WHERE id > $1 ORDER BY id LIMIT $2",
};

void pg_conn_params(const char *conninfo, const char **keys, const char **values)
{
    /* lock_timeout: sqlite's busy timeout, on the server: a statement that waits that long for
     * a lock held by another session (a long transaction, an administrator's LOCK TABLE) is
     * cancelled there, fails with 55P03 (a 503 "database busy") and leaves nothing behind; the
     * blocking path would otherwise wait forever, and a non-blocking operation that gave up on
     * its own would leave its statement queued for the lock, to commit after the 503.
     * connect_timeout: libpq's own bound on a blocking connect. tcp_user_timeout and the
     * keepalives: the kernel's bound on a peer that vanishes while we wait for it (5 s of
     * unacknowledged data; an idle connection probed after 5 s, given up after 2 more
     * probes 2 s apart), so that a cut network is an error, not a thread stuck forever. */
    static const char *const k[] = {"dbname",
                                    "application_name",
                                    "client_encoding",
                                    "connect_timeout",
                                    "tcp_user_timeout",
                                    "keepalives",
                                    "keepalives_idle",
                                    "keepalives_interval",
                                    "keepalives_count",
                                    "options",
                                    NULL};
    static const char *const v[] = {
        NULL,   "triad",
        "UTF8", "5",
        "5000", "1",
        "5",    "2",
        "2",    ("-c synchronous_commit=on -c lock_timeout=" PG_STR(DB_BUSY_TIMEOUT_MS))};
    for (int i = 0; k[i] != NULL; i++) {
        keys[i] = k[i];
        values[i] = i == 0 ? conninfo : v[i];
    }
    keys[10] = values[10] = NULL;
}

/* Notices (CREATE TABLE IF NOT EXISTS's "already exists, skipping") are not errors, and a
 * server never logs per request: dropped. */
static void pg_notice_cb(void *arg, const char *message)
{
    (void)arg;
    (void)message;
}

void pg_quiet(PGconn *conn)
{
    if (conn != NULL)
        PQsetNoticeProcessor(conn, pg_notice_cb, NULL);
}

PGconn *pg_connect_blocking(const char *conninfo)
{
    const char *keys[PG_PARAMS_MAX], *values[PG_PARAMS_MAX];
    pg_conn_params(conninfo, keys, values);
    PGconn *conn = PQconnectdbParams(keys, values, 1);
    pg_quiet(conn);
    return conn;
}

int pg_result_errno(const PGresult *res)
{
    if (res == NULL)
        return -EIO;
    switch (PQresultStatus(res)) {
    case PGRES_COMMAND_OK:
    case PGRES_TUPLES_OK:
        return 0;
    default:
        break;
    }
    const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
    if (state != NULL &&
        (strcmp(state, "40001") == 0 || strcmp(state, "40P01") == 0 || strcmp(state, "55P03") == 0))
        return -EBUSY; /* serialization failure, deadlock, lock_timeout: the request may retry */
    return -EIO;
}

bool pg_conn_broken(const PGconn *conn, const PGresult *res)
{
    if (PQstatus(conn) != CONNECTION_OK)
        return true;
    const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
    /* Class 08: connection exceptions; 57P01..57P03: the server is shutting down or not yet
     * accepting (an administrator's pg_terminate_backend is 57P01). */
    return state != NULL && (strncmp(state, "08", 2) == 0 || strncmp(state, "57P0", 4) == 0);
}

/* A column as an integer; false if it is not one. */
static bool pg_int(const PGresult *res, int row, int col, long long *out)
{
    char *end;
    const char *s = PQgetvalue(res, row, col);
    if (s == NULL || PQgetisnull(res, row, col))
        return false;
    *out = strtoll(s, &end, 10);
    return end != s && *end == '\0';
}

int pg_world_row(const PGresult *res, int32_t *random_number)
{
    long long v;
    if (PQntuples(res) == 0)
        return -ENOENT;
    if (!pg_int(res, 0, 1, &v))
        return -EIO;
    *random_number = (int32_t)v;
    return 0;
}

int pg_fortune_rows(const PGresult *res, db_fortune_cb cb, void *ctx)
{
    for (int i = 0; i < PQntuples(res); i++) {
        long long id;
        if (!pg_int(res, i, 0, &id))
            return -EIO;
        int stop = cb(ctx, (int32_t)id, PQgetvalue(res, i, 1), (size_t)PQgetlength(res, i, 1));
        if (stop != 0)
            return stop;
    }
    return 0;
}

int pg_id_row(const PGresult *res, int64_t *id)
{
    long long v;
    if (PQntuples(res) != 1 || !pg_int(res, 0, 0, &v))
        return -EIO;
    *id = v;
    return 0;
}

int pg_item_row(const PGresult *res, int row, struct db_item *out)
{
    long long id, qty;
    size_t len = (size_t)PQgetlength(res, row, 1);
    if (!pg_int(res, row, 0, &id) || !pg_int(res, row, 2, &qty) || len > DB_ITEM_NAME_MAX_BYTES)
        return -EIO; /* written outside the API: refuse rather than truncate */
    out->id = id;
    out->qty = qty;
    memcpy(out->name, PQgetvalue(res, row, 1), len);
    out->name[len] = '\0';
    out->name_len = len;
    return 0;
}

int pg_item_rows(const PGresult *res, db_item_cb cb, void *ctx)
{
    struct db_item item;
    for (int i = 0; i < PQntuples(res); i++) {
        int rc = pg_item_row(res, i, &item);
        if (rc == 0)
            rc = cb(ctx, &item);
        if (rc != 0)
            return rc;
    }
    return 0;
}

int pg_changed(const PGresult *res)
{
    const char *n = PQcmdTuples((PGresult *)res);
    return n != NULL && n[0] != '\0' && strcmp(n, "0") != 0 ? 0 : -ENOENT;
}

static int pg_row_cmp(const void *a, const void *b)
{
    const struct db_world *x = a, *y = b;
    return (x->id > y->id) - (x->id < y->id);
}

int pg_world_arrays(const struct db_world *rows, size_t n, struct pg_arrays *out)
{
    /* Sorted by id, stably, so that the last of equal ids wins, as in a loop of UPDATEs. */
    struct db_world *s = malloc(n * sizeof(*s));
    size_t cap = n * 12 + 3; /* "-2147483648," at most per number, plus braces and NUL */
    out->ids = malloc(cap);
    out->values = malloc(cap);
    if (s == NULL || out->ids == NULL || out->values == NULL) {
        free(s);
        pg_arrays_free(out);
        return -ENOMEM;
    }
    for (size_t i = 0; i < n; i++) {
        s[i] = rows[i];
        s[i].random_number = (int32_t)i; /* the original position, to keep the last */
    }
    qsort(s, n, sizeof(*s), pg_row_cmp);
    size_t ilen = 0, vlen = 0;
    out->ids[ilen++] = out->values[vlen++] = '{';
    for (size_t i = 0; i < n; i++) {
        size_t last = i;
        while (i + 1 < n && s[i + 1].id == s[i].id) /* qsort is not stable: take the latest */
            if (s[++i].random_number > s[last].random_number)
                last = i;
        const char *sep = ilen > 1 ? "," : "";
        ilen += (size_t)snprintf(out->ids + ilen, cap - ilen, "%s%d", sep, (int)s[last].id);
        vlen += (size_t)snprintf(out->values + vlen, cap - vlen, "%s%d", sep,
                                 (int)rows[s[last].random_number].random_number);
    }
    snprintf(out->ids + ilen, cap - ilen, "}");
    snprintf(out->values + vlen, cap - vlen, "}");
    free(s);
    return 0;
}

void pg_arrays_free(struct pg_arrays *a)
{
    free(a->ids);
    free(a->values);
    a->ids = a->values = NULL;
}
