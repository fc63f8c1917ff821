/* render.h - turning rows into JSON documents and the fortunes page.
 *
 * JSON goes through jansson, built fresh for every response (TechEmpower forbids caching the
 * serialisation). Every function returns NULL when memory runs out; the caller then answers
 * 503 (req_reply_json does that for a NULL document).
 */
#ifndef TRIAD_RENDER_H
#define TRIAD_RENDER_H

#include "db.h"

#include <jansson.h>
#include <stddef.h>

struct render_fortune {
    int32_t id;
    const char *message;
    size_t len;
};

json_t *render_world(const struct db_world *w);                 /* {"id":..,"randomNumber":..} */
json_t *render_worlds(const struct db_world *rows, unsigned n); /* [ ... ] */
json_t *render_item(const struct db_item *item);                /* {"id":..,"name":..,"qty":..} */

/* Sorts `rows` by message (byte order, as strcmp) and renders the TechEmpower fortunes page
 * with every message HTML-escaped. Returns a malloc'd body and its length in *len. */
char *render_fortunes_html(struct render_fortune *rows, size_t n, size_t *len);

#endif
