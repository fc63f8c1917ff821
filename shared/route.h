/* route.h - the routing table: path and method to endpoint. */
#ifndef TRIAD_ROUTE_H
#define TRIAD_ROUTE_H

#include "req_impl.h"

#define ROUTE_OPS 0x1u /* operations endpoint: answered even when the server is saturated */

struct route {
    const char *path; /* exact path, or the prefix before "/{id}" when has_id */
    bool has_id;
    req_step_fn on[REQ_OTHER]; /* per method; HEAD is served by the GET step */
    unsigned flags;
    const char *allow; /* the Allow header of a 405 */
};

/* Finds the endpoint for `path` and `method`. Returns 0 and sets *route, *fn and, for /{id}
 * routes, *id; -ENOENT for an unknown path (or an id that is not a valid integer); -EOPNOTSUPP
 * when the path exists but not for this method (*route is then set, for its Allow list). */
int route_match(const char *path, enum req_method method, const struct route **route,
                req_step_fn *fn, int64_t *id);

#endif
