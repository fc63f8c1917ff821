/* ep_items.c - the items resource: a JSON API with writes.
 *
 *   POST   /items              201 + Location, the stored item
 *   GET    /items?limit&after  {"items":[...],"next":id|null}, keyset pagination
 *   GET    /items/{id}         200 / 404
 *   PUT    /items/{id}         200 / 404, full replacement
 *   DELETE /items/{id}         204 / 404
 *
 * Bodies are validated completely before the database is touched, so bad input changes
 * nothing. A 2xx after a write means the statement has committed (db.h).
 */
#include "endpoints.h"

#include "param.h"
#include "render.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ITEMS_LIMIT_DEFAULT 20
#define ITEMS_LIMIT_MAX     100

/* ---- body validation --------------------------------------------------------------------- */

/* True if no value in the text nests deeper than `max` levels. Checked before jansson parses:
 * jansson recurses once per level (up to 2048 levels), which would overflow a goroutine's small
 * stack long before its own limit; an item needs no nesting at all. */
static bool items_depth_ok(const char *s, size_t n, int max)
{
    int depth = 0;
    bool in_string = false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (in_string) {
            if (c == '\\')
                i++; /* skip the escaped character */
            else if (c == '"')
                in_string = false;
        } else if (c == '"') {
            in_string = true;
        } else if (c == '{' || c == '[') {
            if (++depth > max)
                return false;
        } else if (c == '}' || c == ']') {
            depth--;
        }
    }
    return true;
}

/* Unicode characters in valid UTF-8 (jansson has validated it): count the non-continuation
 * bytes. */
static size_t items_utf8_chars(const char *s, size_t n)
{
    size_t chars = 0;
    for (size_t i = 0; i < n; i++)
        chars += ((unsigned char)s[i] & 0xC0) != 0x80;
    return chars;
}

/* Checks a parsed body; returns NULL and fills `out`, or the error message. */
static const char *items_check(json_t *doc, struct db_item *out)
{
    const char *key;
    json_t *value;
    if (!json_is_object(doc))
        return "the body must be a JSON object";
    json_object_foreach(doc, key, value)
    {
        if (strcmp(key, "name") != 0 && strcmp(key, "qty") != 0)
            return "unknown key: only name and qty are allowed";
    }
    json_t *name = json_object_get(doc, "name");
    json_t *qty = json_object_get(doc, "qty");
    if (!json_is_string(name))
        return "name must be a string";
    if (!json_is_integer(qty) || json_integer_value(qty) < 0)
        return "qty must be an integer >= 0";
    size_t len = json_string_length(name);
    size_t chars = items_utf8_chars(json_string_value(name), len);
    if (chars < 1 || chars > DB_ITEM_NAME_MAX_CHARS)
        return "name must be 1..200 characters";
    memcpy(out->name, json_string_value(name), len);
    out->name[len] = '\0';
    out->name_len = len;
    out->qty = json_integer_value(qty);
    return NULL;
}

/* Parses and validates the request body into r->ep.items.item; NULL or an error message. */
static const char *items_parse_body(struct req *r)
{
    json_error_t err;
    if (r->body_len == 0)
        return "a JSON body is required";
    if (!items_depth_ok(r->body, r->body_len, 1))
        return "nested values are not allowed";
    /* Default flags also reject invalid UTF-8 and \u0000; duplicates are rejected explicitly.
     * jansson's own message is not echoed: it can quote the input. */
    json_t *doc = json_loadb(r->body, r->body_len, JSON_REJECT_DUPLICATES, &err);
    if (doc == NULL)
        return "malformed JSON";
    const char *msg = items_check(doc, &r->ep.items.item);
    json_decref(doc);
    return msg;
}

/* ---- endpoints --------------------------------------------------------------------------- */

static enum req_wait items_reply_item(struct req *r, int status)
{
    return req_reply_json(r, status, render_item(&r->ep.items.item));
}

/* A database wait on the request's item. */
static enum req_wait items_await(struct req *r, enum db_op_kind kind)
{
    r->db_op = (struct db_op){.kind = kind, .item = &r->ep.items.item, .id = r->path_id};
    return req_await_db(r, 1);
}

enum req_wait ep_items_create(struct req *r)
{
    if (r->root.pc == 0) {
        const char *msg = items_parse_body(r);
        if (msg != NULL)
            return req_reply_error(r, 400, msg);
        return items_await(r, DB_OP_ITEM_INSERT);
    }
    if (r->db_rc != 0)
        return req_reply_db_error(r, r->db_rc, NULL);
    char location[48];
    snprintf(location, sizeof(location), "/items/%lld", (long long)r->ep.items.item.id);
    items_reply_item(r, 201);
    if (r->status == 201)
        req_header_set(r, "Location", location);
    return REQ_DONE;
}

enum req_wait ep_item_get(struct req *r)
{
    if (r->root.pc == 0)
        return items_await(r, DB_OP_ITEM_GET);
    if (r->db_rc != 0)
        return req_reply_db_error(r, r->db_rc, "no such item");
    return items_reply_item(r, 200);
}

enum req_wait ep_item_replace(struct req *r)
{
    if (r->root.pc == 0) {
        const char *msg = items_parse_body(r);
        if (msg != NULL)
            return req_reply_error(r, 400, msg);
        r->ep.items.item.id = r->path_id;
        return items_await(r, DB_OP_ITEM_REPLACE);
    }
    if (r->db_rc != 0)
        return req_reply_db_error(r, r->db_rc, "no such item");
    return items_reply_item(r, 200);
}

enum req_wait ep_item_delete(struct req *r)
{
    if (r->root.pc == 0)
        return items_await(r, DB_OP_ITEM_DELETE);
    if (r->db_rc != 0)
        return req_reply_db_error(r, r->db_rc, "no such item");
    return req_reply_static(r, 204, REQ_CT_JSON, "");
}

/* ---- listing ----------------------------------------------------------------------------- */

/* Rows are copied into scratch (limit + 1 of them: the extra one only tells whether a next
 * page exists) and turned into JSON in the next step. */
struct items_page {
    int n;
    struct db_item rows[];
};

static int items_page_add(void *ctx, const struct db_item *item)
{
    struct items_page *page = ctx;
    page->rows[page->n++] = *item;
    return 0;
}

static json_t *items_page_render(const struct items_page *page, int limit)
{
    int shown = page->n < limit ? page->n : limit;
    json_t *items = json_array();
    for (int i = 0; items && i < shown; i++) {
        if (json_array_append_new(items, render_item(&page->rows[i])) != 0) {
            json_decref(items);
            items = NULL;
        }
    }
    json_t *next = page->n > limit ? json_integer(page->rows[limit - 1].id) : json_null();
    json_t *doc = json_object();
    if (doc && (json_object_set_new(doc, "items", items) != 0 ||
                json_object_set_new(doc, "next", next) != 0)) {
        json_decref(doc);
        return NULL;
    }
    if (doc == NULL) {
        json_decref(items);
        json_decref(next);
    }
    return doc;
}

enum req_wait ep_items_list(struct req *r)
{
    uint64_t limit = ITEMS_LIMIT_DEFAULT, after = 0;
    if (r->root.pc == 1) {
        if (r->db_rc != 0)
            return req_reply_db_error(r, r->db_rc, NULL);
        return req_reply_json(r, 200, items_page_render(r->scratch, r->ep.items.limit));
    }
    const char *l = req_arg(r, "limit"), *a = req_arg(r, "after");
    if (l != NULL && param_parse_u64(l, 1, ITEMS_LIMIT_MAX, &limit) != 0)
        return req_reply_error(r, 400, "limit must be an integer in 1..100");
    if (a != NULL && param_parse_u64(a, 0, INT64_MAX, &after) != 0)
        return req_reply_error(r, 400, "after must be an integer in 0..9223372036854775807");
    r->scratch = calloc(1, sizeof(struct items_page) + (limit + 1) * sizeof(struct db_item));
    if (r->scratch == NULL)
        return req_reply_error(r, 503, "out of memory");
    r->ep.items.limit = (int)limit;
    r->ep.items.after = (int64_t)after;
    r->db_op = (struct db_op){.kind = DB_OP_ITEM_LIST,
                              .after = (int64_t)after,
                              .limit = (int)limit + 1, /* one more: is there a next page? */
                              .item_cb = items_page_add,
                              .ctx = r->scratch};
    return req_await_db(r, 1);
}
