/* ep_work.c - the concurrency workloads: CPU, a slow upstream call, and a fan-out of them.
 *
 * These are the axes the articles argue about. /cpu holds a CPU and never waits; /io waits and
 * holds nothing; /fanout waits on many things at once. The endpoints say only *what* to do;
 * how long a thread, a loop or a goroutine is held while doing it is the model's business.
 */
#include "endpoints.h"

#include "cpu.h"
#include "param.h"

#define WORK_MS_MAX    10000u /* one wait: at most ten seconds */
#define WORK_CALLS_MAX 1000u  /* one fan-out: at most a thousand concurrent waits */

enum req_wait ep_cpu(struct req *r)
{
    uint64_t n;
    char digest[CPU_DIGEST_LEN + 1];
    if (param_parse_u64(req_arg(r, "iterations"), 0, CPU_ITERATIONS_MAX, &n) != 0)
        return req_reply_error(r, 400, "iterations must be an integer in 0..10000000");
    cpu_digest(n, digest);
    json_t *doc = json_object();
    if (doc && (json_object_set_new(doc, "iterations", json_integer((json_int_t)n)) != 0 ||
                json_object_set_new(doc, "digest", json_string(digest)) != 0)) {
        json_decref(doc);
        doc = NULL;
    }
    return req_reply_json(r, 200, doc);
}

/* Replies {"<k1>":v1} or {"<k1>":v1,"<k2>":v2}: the echo the wait endpoints return. */
static enum req_wait work_reply(struct req *r, const char *k1, unsigned v1, const char *k2,
                                unsigned v2)
{
    json_t *doc = json_object();
    if (doc && (json_object_set_new(doc, k1, json_integer(v1)) != 0 ||
                (k2 && json_object_set_new(doc, k2, json_integer(v2)) != 0))) {
        json_decref(doc);
        doc = NULL;
    }
    return req_reply_json(r, 200, doc);
}

enum req_wait ep_io(struct req *r)
{
    uint64_t ms;
    if (r->root.pc == 1)
        return work_reply(r, "waited_ms", r->wait_ms, NULL, 0);
    if (param_parse_u64(req_arg(r, "ms"), 0, WORK_MS_MAX, &ms) != 0)
        return req_reply_error(r, 400, "ms must be an integer in 0..10000");
    return req_await_sleep(r, 1, (unsigned)ms);
}

enum req_wait ep_fanout(struct req *r)
{
    uint64_t calls, ms;
    if (r->root.pc == 1) {
        const char *why = req_join_failure(&r->root); /* a call the model could not start */
        if (why != NULL)
            return req_reply_error(r, 503, why);
        return work_reply(r, "calls", r->wait_calls, "ms", r->wait_ms);
    }
    if (param_parse_u64(req_arg(r, "calls"), 1, WORK_CALLS_MAX, &calls) != 0)
        return req_reply_error(r, 400, "calls must be an integer in 1..1000");
    if (param_parse_u64(req_arg(r, "ms"), 0, WORK_MS_MAX, &ms) != 0)
        return req_reply_error(r, 400, "ms must be an integer in 0..10000");
    return req_await_fanout(r, 1, (unsigned)calls, (unsigned)ms);
}
