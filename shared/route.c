/* route.c - the routing table.
 *
 * A linear scan of the table: a few hundred nanoseconds at worst, well below the cost of
 * parsing the request, and it keeps the whole API on one screen.
 */
#include "route.h"

#include "endpoints.h"
#include "param.h"

#include <errno.h>
#include <string.h>

#define GET_ONLY "GET, HEAD"

static const struct route route_table[] = {
    {"/plaintext", false, {[REQ_GET] = ep_plaintext}, 0, GET_ONLY},
    {"/json", false, {[REQ_GET] = ep_json}, 0, GET_ONLY},
    {"/db", false, {[REQ_GET] = ep_db}, 0, GET_ONLY},
    {"/queries", false, {[REQ_GET] = ep_queries}, 0, GET_ONLY},
    {"/updates", false, {[REQ_GET] = ep_updates}, 0, GET_ONLY},
    {"/fortunes", false, {[REQ_GET] = ep_fortunes}, 0, GET_ONLY},
    {"/cached-queries", false, {[REQ_GET] = ep_cached_queries}, 0, GET_ONLY},
    {"/cpu", false, {[REQ_GET] = ep_cpu}, 0, GET_ONLY},
    {"/io", false, {[REQ_GET] = ep_io}, 0, GET_ONLY},
    {"/fanout", false, {[REQ_GET] = ep_fanout}, 0, GET_ONLY},
    {"/upstream", false, {[REQ_GET] = ep_upstream}, 0, GET_ONLY},
    {"/items",
     false,
     {[REQ_GET] = ep_items_list, [REQ_POST] = ep_items_create},
     0,
     "GET, HEAD, POST"},
    {"/items",
     true,
     {[REQ_GET] = ep_item_get, [REQ_PUT] = ep_item_replace, [REQ_DELETE] = ep_item_delete},
     0,
     "GET, HEAD, PUT, DELETE"},
    {"/health", false, {[REQ_GET] = ep_health}, ROUTE_OPS, GET_ONLY},
    {"/stats", false, {[REQ_GET] = ep_stats}, ROUTE_OPS, GET_ONLY},
    {"/metrics", false, {[REQ_GET] = ep_metrics}, ROUTE_OPS, GET_ONLY},
};

/* Does `path` name this route? For /{id} routes, *id_text points at the id segment. */
static bool route_path_matches(const struct route *rt, const char *path, const char **id_text)
{
    size_t n = strlen(rt->path);
    if (strncmp(path, rt->path, n) != 0)
        return false;
    if (!rt->has_id)
        return path[n] == '\0';
    if (path[n] != '/')
        return false;
    *id_text = path + n + 1;
    return true;
}

int route_match(const char *path, enum req_method method, const struct route **route,
                req_step_fn *fn, int64_t *id)
{
    for (size_t i = 0; i < sizeof(route_table) / sizeof(route_table[0]); i++) {
        const struct route *rt = &route_table[i];
        const char *id_text = NULL;
        if (!route_path_matches(rt, path, &id_text))
            continue;
        *route = rt;
        enum req_method m = method == REQ_HEAD ? REQ_GET : method;
        if (m == REQ_OTHER || rt->on[m] == NULL)
            return -EOPNOTSUPP;
        if (rt->has_id && param_parse_id(id_text, id) != 0)
            return -ENOENT;
        *fn = rt->on[m];
        return 0;
    }
    return -ENOENT;
}
