/* ep_bench.c - the seven TechEmpower test types.
 *
 * Each database endpoint follows the same shape:
 *
 *   step 0   decide what to read (random ids), then await the database
 *   step 1   turn rows into the response (or await the next database round trip)
 *
 * The database work is an operation (db.h's struct db_op) that only moves rows between the
 * database and the request; all JSON and HTML is built in the steps, so in the event-loop model
 * it happens on the loop thread, as node-sqlite3 and node-postgres hand rows to JavaScript.
 */
#include "endpoints.h"

#include "cache.h"
#include "param.h"
#include "render.h"
#include "rng.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

enum req_wait ep_plaintext(struct req *r)
{
    return req_reply_static(r, 200, REQ_CT_TEXT, "Hello, World!");
}

enum req_wait ep_json(struct req *r)
{
    /* A fresh object serialised per request, as the test type requires. */
    json_t *doc = json_object();
    if (doc && json_object_set_new(doc, "message", json_string("Hello, World!")) != 0) {
        json_decref(doc);
        doc = NULL;
    }
    return req_reply_json(r, 200, doc);
}

/* ---- World rows -------------------------------------------------------------------------- */

/* Picks n random ids. One row lives inside the request; more go to one heap block that also
 * holds the cache tickets /cached-queries needs. Returns -ENOMEM on failure. */
static int worlds_pick(struct req *r, unsigned n, bool with_tickets)
{
    struct db_world *rows = &r->ep.worlds.one;
    if (n > 1 || with_tickets) {
        size_t bytes = n * (sizeof(*rows) + (with_tickets ? sizeof(uint64_t) : 0));
        rows = r->scratch = malloc(bytes);
        if (rows == NULL)
            return -ENOMEM;
        if (with_tickets)
            r->ep.worlds.tickets = (uint64_t *)(void *)(rows + n);
    }
    for (unsigned i = 0; i < n; i++) {
        rows[i].id = (int32_t)rng_between_1_and(DB_WORLD_ROWS);
        rows[i].random_number = 0; /* 0: not read yet (World's values are 1..10000) */
    }
    r->ep.worlds.rows = rows;
    r->ep.worlds.n = n;
    return 0;
}

/* One SELECT per row: TechEmpower forbids IN (...) and other batching of reads. */
static enum req_wait worlds_await(struct req *r, int next_pc, enum db_op_kind kind)
{
    r->db_op = (struct db_op){.kind = kind, .rows = r->ep.worlds.rows, .n = r->ep.worlds.n};
    return req_await_db(r, next_pc);
}

/* Shared by /queries and /updates: pick, then load. */
static enum req_wait worlds_start(struct req *r, const char *count_arg)
{
    if (worlds_pick(r, (unsigned)param_count_clamp(req_arg(r, count_arg)), false) != 0)
        return req_reply_error(r, 503, "out of memory");
    return worlds_await(r, 1, DB_OP_WORLD_READ);
}

enum req_wait ep_db(struct req *r)
{
    if (r->root.pc == 0) {
        worlds_pick(r, 1, false); /* one row: no allocation, cannot fail */
        return worlds_await(r, 1, DB_OP_WORLD_READ);
    }
    if (r->db_rc != 0)
        return req_reply_db_error(r, r->db_rc, NULL);
    return req_reply_json(r, 200, render_world(r->ep.worlds.rows));
}

enum req_wait ep_queries(struct req *r)
{
    if (r->root.pc == 0)
        return worlds_start(r, "queries");
    if (r->db_rc != 0)
        return req_reply_db_error(r, r->db_rc, NULL);
    return req_reply_json(r, 200, render_worlds(r->ep.worlds.rows, r->ep.worlds.n));
}

/* A new randomNumber that differs from the old one, so that every row really changes. */
static int32_t worlds_new_number(int32_t old)
{
    int32_t v = (int32_t)rng_between_1_and(DB_WORLD_ROWS - 1);
    return v >= old ? v + 1 : v;
}

enum req_wait ep_updates(struct req *r)
{
    struct db_world *rows = r->ep.worlds.rows;
    switch (r->root.pc) {
    case 0:
        return worlds_start(r, "queries");
    case 1: /* rows read: pick new values, write them in one transaction */
        if (r->db_rc != 0)
            return req_reply_db_error(r, r->db_rc, NULL);
        for (unsigned i = 0; i < r->ep.worlds.n; i++)
            rows[i].random_number = worlds_new_number(rows[i].random_number);
        return worlds_await(r, 2, DB_OP_WORLD_WRITE);
    default: /* committed: only now may the cache forget the old values */
        if (r->db_rc != 0)
            return req_reply_db_error(r, r->db_rc, NULL);
        for (unsigned i = 0; i < r->ep.worlds.n; i++)
            cache_world_invalidate(rows[i].id);
        return req_reply_json(r, 200, render_worlds(rows, r->ep.worlds.n));
    }
}

/* Marks a row the cache had: a miss's ticket always has a value of 0 in its low half. */
#define CACHED_HIT UINT64_MAX

enum req_wait ep_cached_queries(struct req *r)
{
    if (r->root.pc == 0) {
        unsigned n = (unsigned)param_count_clamp(req_arg(r, "count"));
        if (worlds_pick(r, n, true) != 0)
            return req_reply_error(r, 503, "out of memory");
        struct db_world *rows = r->ep.worlds.rows;
        for (unsigned i = 0; i < n; i++) {
            r->ep.worlds.tickets[i] = CACHED_HIT; /* a miss overwrites it with its ticket */
            if (!cache_world_get(rows[i].id, &rows[i].random_number, &r->ep.worlds.tickets[i]))
                r->ep.worlds.misses++;
        }
        if (r->ep.worlds.misses > 0) /* the rows the cache did not have (still 0) */
            return worlds_await(r, 1, DB_OP_WORLD_READ);
    } else if (r->db_rc != 0) {
        return req_reply_db_error(r, r->db_rc, NULL);
    } else { /* read: offer them back to the cache, under the tickets of their misses */
        for (unsigned i = 0; i < r->ep.worlds.n; i++)
            if (r->ep.worlds.tickets[i] != CACHED_HIT)
                cache_world_fill(r->ep.worlds.rows[i].id, r->ep.worlds.rows[i].random_number,
                                 r->ep.worlds.tickets[i]);
    }
    return req_reply_json(r, 200, render_worlds(r->ep.worlds.rows, r->ep.worlds.n));
}

/* ---- Fortunes ---------------------------------------------------------------------------- */

/* The rows as read, plus room for the extra one. Messages are copied into the same list
 * because sqlite's text pointers die with the next step of the statement. */
struct fortune_list {
    size_t n, cap;
    struct render_fortune *rows;
};

static void fortune_list_free(void *p)
{
    struct fortune_list *fl = p;
    if (fl == NULL)
        return;
    for (size_t i = 0; i < fl->n; i++)
        free((void *)fl->rows[i].message);
    free(fl->rows);
    free(fl);
}

static int fortune_list_add(void *ctx, int32_t id, const char *message, size_t len)
{
    struct fortune_list *fl = ctx;
    if (fl->n == fl->cap) {
        size_t cap = fl->cap ? fl->cap * 2 : 16; /* sized as we go, not from the known 12 */
        struct render_fortune *grown = realloc(fl->rows, cap * sizeof(*grown));
        if (grown == NULL)
            return -ENOMEM;
        fl->rows = grown;
        fl->cap = cap;
    }
    char *copy = malloc(len + 1);
    if (copy == NULL)
        return -ENOMEM;
    memcpy(copy, message, len);
    copy[len] = '\0';
    fl->rows[fl->n++] = (struct render_fortune){id, copy, len};
    /* cppcheck-suppress memleak ; fl->rows owns the copy */
    return 0;
}

enum req_wait ep_fortunes(struct req *r)
{
    static const char extra[] = "Additional fortune added at request time.";
    if (r->root.pc == 0) {
        r->scratch = calloc(1, sizeof(struct fortune_list));
        r->scratch_free = fortune_list_free;
        if (r->scratch == NULL)
            return req_reply_error(r, 503, "out of memory");
        r->db_op = (struct db_op){
            .kind = DB_OP_FORTUNES, .fortune_cb = fortune_list_add, .ctx = r->scratch};
        return req_await_db(r, 1);
    }
    if (r->db_rc != 0)
        return req_reply_db_error(r, r->db_rc, NULL);
    struct fortune_list *fl = r->scratch;
    if (fortune_list_add(fl, 0, extra, sizeof(extra) - 1) != 0)
        return req_reply_error(r, 503, "out of memory");
    size_t len;
    char *html = render_fortunes_html(fl->rows, fl->n, &len);
    if (html == NULL)
        return req_reply_error(r, 503, "out of memory");
    return req_reply_owned(r, 200, REQ_CT_HTML, html, len);
}
