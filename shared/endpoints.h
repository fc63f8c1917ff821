/* endpoints.h - every endpoint of the API, each a step function (see req.h for the contract).
 *
 * Adding an endpoint: write its step function in the ep_*.c file of its family, declare it
 * here, add its path to the table in route.c, and add a check to tests/conformance. No model
 * changes: the models run whatever steps an endpoint returns.
 */
#ifndef TRIAD_ENDPOINTS_H
#define TRIAD_ENDPOINTS_H

#include "req_impl.h"

/* TechEmpower test types (ep_bench.c). */
enum req_wait ep_plaintext(struct req *r);
enum req_wait ep_json(struct req *r);
enum req_wait ep_db(struct req *r);
enum req_wait ep_queries(struct req *r);
enum req_wait ep_updates(struct req *r);
enum req_wait ep_fortunes(struct req *r);
enum req_wait ep_cached_queries(struct req *r);

/* Concurrency workloads (ep_work.c). */
enum req_wait ep_cpu(struct req *r);
enum req_wait ep_io(struct req *r);
enum req_wait ep_fanout(struct req *r);
enum req_wait ep_upstream(struct req *r);

/* The items resource (ep_items.c). */
enum req_wait ep_items_list(struct req *r);
enum req_wait ep_items_create(struct req *r);
enum req_wait ep_item_get(struct req *r);
enum req_wait ep_item_replace(struct req *r);
enum req_wait ep_item_delete(struct req *r);

/* Operations (ep_ops.c). */
enum req_wait ep_health(struct req *r);
enum req_wait ep_stats(struct req *r);
enum req_wait ep_metrics(struct req *r);

#endif
