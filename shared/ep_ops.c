/* ep_ops.c - operations endpoints: /health, /stats, /metrics.
 *
 * These are answered even when the server refuses other work (route.h's ROUTE_OPS), so that a
 * saturated server can still be observed.
 */
#include "endpoints.h"

#include "metrics.h"

enum req_wait ep_health(struct req *r)
{
    json_t *doc = json_object();
    if (doc && (json_object_set_new(doc, "status", json_string("ok")) != 0 ||
                json_object_set_new(doc, "model", json_string(metrics_model())) != 0)) {
        json_decref(doc);
        doc = NULL;
    }
    return req_reply_json(r, 200, doc);
}

enum req_wait ep_stats(struct req *r)
{
    return req_reply_json(r, 200, metrics_json());
}

enum req_wait ep_metrics(struct req *r)
{
    size_t len;
    char *text = metrics_prometheus(&len);
    if (text == NULL)
        return req_reply_error(r, 503, "out of memory");
    return req_reply_owned(r, 200, REQ_CT_PROMETHEUS, text, len);
}
