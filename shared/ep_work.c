/* ep_work.c - the concurrency workloads: CPU, a slow upstream call, and a fan-out of them.
 *
 * These are the axes the articles argue about. /cpu holds a CPU and never waits; /io waits and
 * holds nothing; /fanout waits on many things at once. The endpoints say only *what* to do;
 * how long a thread, a loop or a goroutine is held while doing it is the model's business.
 */
#include "endpoints.h"

#include "cpu.h"
#include "param.h"
#include "upstream.h"

#include <errno.h>

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

/* ---- /upstream ----------------------------------------------------------------------------- */

/* One call of the fan-out: the join's child runs it to its end. */
static enum req_wait upstream_child_step(struct req_task *t)
{
    if (t->data == NULL) {
        t->data = upstream_call_create(t->req->wait_ms);
        t->data_free = upstream_call_destroy;
        if (t->data == NULL) {
            req_task_fail(t, "out of memory");
            return REQ_DONE;
        }
    }
    enum req_wait w = upstream_call_step(t, t->data);
    return w == REQ_DONE ? req_task_end(t) : w;
}

/* Of two call results, the one that decides the answer: a timeout (504) before any other
 * failure (502), any failure before success. */
static int upstream_worse(int a, int b)
{
    return a == -ETIMEDOUT || b == 0 ? a : b;
}

static enum req_wait upstream_reply(struct req *r, int rc)
{
    switch (rc) {
    case 0:
        return work_reply(r, "calls", r->wait_calls, "ms", r->wait_ms);
    case -ETIMEDOUT:
        return req_reply_error(r, 504, "upstream timed out");
    case -EBADMSG:
        return req_reply_error(r, 502, "upstream answered with a status other than 200");
    case -EMSGSIZE:
        return req_reply_error(r, 502, "upstream answer too large");
    default: /* refused, reset, closed early, not HTTP */
        return req_reply_error(r, 502, "upstream request failed");
    }
}

/* A single call, on the request's own task. */
static enum req_wait upstream_single_step(struct req *r)
{
    enum req_wait w = upstream_call_step(&r->root, r->scratch);
    return w != REQ_DONE ? w : upstream_reply(r, upstream_call_result(r->scratch));
}

/* One call runs on the request's own task (step 1), as a program makes one call on its own
 * thread; N calls are a join of N children (step 2), as a program fans out. */
enum req_wait ep_upstream(struct req *r)
{
    uint64_t calls, ms;
    if (r->root.pc == 1)
        return upstream_single_step(r);
    if (r->root.pc == 2) {
        const char *why = req_join_failure(&r->root); /* a call the model could not start */
        if (why != NULL)
            return req_reply_error(r, 503, why);
        int rc = 0;
        for (unsigned i = 0; i < r->wait_calls; i++)
            rc = upstream_worse(rc, upstream_call_result(req_join_child(&r->root, i)->data));
        return upstream_reply(r, rc);
    }
    if (param_parse_u64(req_arg(r, "calls"), 1, WORK_CALLS_MAX, &calls) != 0)
        return req_reply_error(r, 400, "calls must be an integer in 1..1000");
    if (param_parse_u64(req_arg(r, "ms"), 0, WORK_MS_MAX, &ms) != 0)
        return req_reply_error(r, 400, "ms must be an integer in 0..10000");
    if (!upstream_configured())
        return req_reply_error(r, 503,
                               "no upstream configured: start the server with --upstream "
                               "http://HOST:PORT");
    r->wait_calls = (unsigned)calls;
    r->wait_ms = (unsigned)ms;
    if (calls == 1) {
        r->scratch = upstream_call_create((unsigned)ms);
        r->scratch_free = upstream_call_destroy;
        if (r->scratch == NULL)
            return req_reply_error(r, 503, "out of memory");
        r->root.pc = 1;
        return upstream_single_step(r);
    }
    if (req_task_join_start(&r->root, 2, (unsigned)calls, upstream_child_step, NULL) != 0)
        return req_reply_error(r, 503, "out of memory");
    return REQ_JOIN;
}
