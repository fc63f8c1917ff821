/* render.c - JSON documents and the fortunes page (see render.h). */
#include "render.h"

#include <stdlib.h>
#include <string.h>

json_t *render_world(const struct db_world *w)
{
    json_t *o = json_object();
    /* set_new steals the value even on failure, so nothing leaks when memory runs out. */
    if (o && (json_object_set_new(o, "id", json_integer(w->id)) != 0 ||
              json_object_set_new(o, "randomNumber", json_integer(w->random_number)) != 0)) {
        json_decref(o);
        return NULL;
    }
    return o;
}

json_t *render_worlds(const struct db_world *rows, unsigned n)
{
    json_t *a = json_array();
    for (unsigned i = 0; a && i < n; i++) {
        if (json_array_append_new(a, render_world(&rows[i])) != 0) {
            json_decref(a);
            return NULL;
        }
    }
    return a;
}

json_t *render_item(const struct db_item *item)
{
    json_t *o = json_object();
    if (o && (json_object_set_new(o, "id", json_integer(item->id)) != 0 ||
              json_object_set_new(o, "name", json_stringn(item->name, item->name_len)) != 0 ||
              json_object_set_new(o, "qty", json_integer(item->qty)) != 0)) {
        json_decref(o);
        return NULL;
    }
    return o;
}

/* ---- the fortunes page ------------------------------------------------------------------- */

struct render_buf {
    char *data;
    size_t len, cap;
    int failed;
};

static void render_put(struct render_buf *b, const char *s, size_t n)
{
    if (b->failed)
        return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 2048;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *grown = realloc(b->data, cap);
        if (grown == NULL) {
            b->failed = 1;
            return;
        }
        b->data = grown;
        b->cap = cap;
    }
    memcpy(b->data + b->len, s, n);
    b->len += n;
    b->data[b->len] = '\0';
}

#define RENDER_LIT(b, lit) render_put((b), (lit), sizeof(lit) - 1)

/* Escapes the five characters that matter in HTML text and attributes. Runs of safe bytes are
 * copied in one go; UTF-8 passes through untouched (the page declares charset=utf-8). */
static void render_escaped(struct render_buf *b, const char *s, size_t n)
{
    size_t start = 0;
    for (size_t i = 0; i < n; i++) {
        const char *rep = NULL;
        switch (s[i]) {
        case '&':
            rep = "&amp;";
            break;
        case '<':
            rep = "&lt;";
            break;
        case '>':
            rep = "&gt;";
            break;
        case '"':
            rep = "&quot;";
            break;
        case '\'':
            rep = "&#39;";
            break;
        default:
            continue;
        }
        render_put(b, s + start, i - start);
        render_put(b, rep, strlen(rep));
        start = i + 1;
    }
    render_put(b, s + start, n - start);
}

static int render_fortune_cmp(const void *a, const void *b)
{
    const struct render_fortune *x = a, *y = b;
    size_t n = x->len < y->len ? x->len : y->len;
    int c = memcmp(x->message, y->message, n);
    if (c != 0)
        return c;
    return (x->len > y->len) - (x->len < y->len);
}

char *render_fortunes_html(struct render_fortune *rows, size_t n, size_t *len)
{
    struct render_buf b = {0};
    char id[16];
    qsort(rows, n, sizeof(*rows), render_fortune_cmp);
    RENDER_LIT(&b, "<!DOCTYPE html><html><head><title>Fortunes</title></head><body><table>"
                   "<tr><th>id</th><th>message</th></tr>");
    for (size_t i = 0; i < n; i++) {
        int idn = snprintf(id, sizeof(id), "%d", (int)rows[i].id);
        RENDER_LIT(&b, "<tr><td>");
        render_put(&b, id, (size_t)idn);
        RENDER_LIT(&b, "</td><td>");
        render_escaped(&b, rows[i].message, rows[i].len);
        RENDER_LIT(&b, "</td></tr>");
    }
    RENDER_LIT(&b, "</table></body></html>");
    if (b.failed) {
        free(b.data);
        return NULL;
    }
    *len = b.len;
    return b.data;
}
