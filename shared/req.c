/* req.c - the request: input, the step machine, and the response (see req.h, req_impl.h). */
#include "req_impl.h"

#include "check.h"
#include "pg_async.h"
#include "route.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* ---- input ------------------------------------------------------------------------------- */

static enum req_wait req_root_step_cb(struct req_task *t);

void req_init(struct req *r, void *model_ctx)
{
    memset(r, 0, sizeof(*r));
    req_task_init(&r->root, r, req_root_step_cb, model_ctx);
}

static enum req_method req_method_parse(const char *m)
{
    static const char *const names[] = {
        [REQ_GET] = "GET", [REQ_HEAD] = "HEAD",     [REQ_POST] = "POST",
        [REQ_PUT] = "PUT", [REQ_DELETE] = "DELETE",
    };
    for (int i = 0; i < REQ_OTHER; i++)
        if (strcmp(m, names[i]) == 0) /* methods are case-sensitive (RFC 9110, 9.1) */
            return (enum req_method)i;
    return REQ_OTHER;
}

void req_route(struct req *r, const char *method, const char *path)
{
    r->method = req_method_parse(method);
    int rc = route_match(path, r->method, &r->route, &r->step_fn, &r->path_id);
    if (rc == -EOPNOTSUPP) {
        req_reply_error(r, 405, "method not allowed for this resource");
        req_header_set(r, "Allow", r->route->allow);
    } else if (rc != 0) {
        req_reply_error(r, 404, "no such resource");
    }
}

void req_arg_add(struct req *r, const char *name, const char *value, size_t value_len)
{
    if (value == NULL)
        value = "";
    /* A NUL byte inside a value would make the C string say something else than the client. */
    if (r->nargs == REQ_ARGS_MAX || strlen(value) != value_len) {
        r->args_overflow = true;
        return;
    }
    r->args[r->nargs++] = (struct req_arg){name, value, value_len};
}

void req_content_type_set(struct req *r, const char *value)
{
    static const char json[] = "application/json";
    if (value == NULL)
        return;
    value += strspn(value, " \t");
    size_t n = strlen(json);
    /* The media type is case-insensitive and may carry parameters (; charset=utf-8). */
    r->body_is_json = strncasecmp(value, json, n) == 0 &&
                      (value[n] == '\0' || value[n] == ';' || value[n] == ' ' || value[n] == '\t');
}

int req_body_append(struct req *r, const char *data, size_t len, const struct req_limits *lim)
{
    r->body_present = true;
    if (len > lim->max_body || r->body_len > lim->max_body - len) {
        req_reply_error(r, 413, "request body too large");
        free(r->body); /* nothing more will be kept */
        r->body = NULL;
        r->body_len = r->body_cap = 0;
        return -E2BIG;
    }
    if (r->finished)
        return 0; /* already answered (404, 405...): read and drop the body, keep the connection */
    if (r->body_len + len + 1 > r->body_cap) {
        size_t cap = r->body_cap ? r->body_cap : 256;
        while (cap < r->body_len + len + 1)
            cap *= 2;
        char *grown = realloc(r->body, cap);
        if (grown == NULL) {
            req_reply_error(r, 503, "out of memory");
            return 0;
        }
        r->body = grown;
        r->body_cap = cap;
    }
    memcpy(r->body + r->body_len, data, len);
    r->body_len += len;
    r->body[r->body_len] = '\0';
    return 0;
}

bool req_input_done(struct req *r)
{
    bool takes_body = r->method == REQ_POST || r->method == REQ_PUT;
    if (r->finished)
        return true;
    if (r->args_overflow)
        req_reply_error(r, 400, "too many query parameters, or a NUL byte in one");
    else if (r->body_present && !takes_body)
        req_reply_error(r, 400, "this request takes no body");
    else if (takes_body && !r->body_is_json)
        req_reply_error(r, 415, "expected Content-Type: application/json");
    return r->finished;
}

void req_release(struct req *r)
{
    free(r->body);
    if (r->scratch_free)
        r->scratch_free(r->scratch);
    else
        free(r->scratch);
    json_decref(r->doc);
    if (r->out_owned)
        free((void *)r->out);
    req_task_release(&r->root);
    pg_op_destroy(r->db_async);
    r->db_async = NULL;
    r->body = r->scratch = NULL;
    r->doc = NULL;
    r->out = NULL;
    r->out_owned = false;
}

const char *req_arg(const struct req *r, const char *name)
{
    for (unsigned i = 0; i < r->nargs; i++)
        if (strcmp(r->args[i].name, name) == 0)
            return r->args[i].value;
    return NULL;
}

/* ---- the step machine -------------------------------------------------------------------- */

/* PostgreSQL's non-blocking path: steps the operation on the root task. Returns true with the
 * wait in *w while it goes on; false once it has ended, its result in db_rc. */
static bool req_db_async_step(struct req *r, enum req_wait *w)
{
    *w = pg_op_step(&r->root, r->db_async);
    if (*w != REQ_DONE)
        return true;
    r->db_rc = pg_op_result(r->db_async);
    pg_op_destroy(r->db_async);
    r->db_async = NULL;
    return false;
}

/* The root task runs the endpoint (and, in between, a non-blocking database operation). The
 * request's `finished` is the task's. */
static enum req_wait req_root_step_cb(struct req_task *t)
{
    struct req *r = t->req;
    TRIAD_ASSERT(r->step_fn != NULL, "stepping an unrouted request");
    enum req_wait w;
    if (r->db_async != NULL && req_db_async_step(r, &w))
        return w;
    w = r->step_fn(r);
    t->finished = r->finished;
    return w;
}

struct req_task *req_root(struct req *r)
{
    return &r->root;
}

enum req_wait req_step(struct req *r)
{
    return req_task_step(&r->root);
}

void req_refuse(struct req *r, const char *why)
{
    req_reply_error(r, 503, why);
    r->root.finished = true;
    r->root.wait = REQ_DONE;
}

bool req_exempt(const struct req *r)
{
    return r->route != NULL && (r->route->flags & ROUTE_OPS) != 0;
}

bool req_finished(const struct req *r)
{
    return r->finished;
}

void *req_model_ctx(struct req *r)
{
    return r->root.model_ctx;
}

/* A database wait of the root task, as a blocking call: the operation on the model's
 * connection. */
static int req_db_call_cb(struct req_task *t, struct db *db)
{
    struct req *r = t->req;
    r->db_rc = db_op_run(db, &r->db_op);
    return r->db_rc;
}

enum req_wait req_await_db(struct req *r, int next_pc)
{
    r->db_rc = 0;
    if (!pg_async_enabled())
        return req_task_await_call(&r->root, next_pc, req_db_call_cb, true);
    /* PostgreSQL for a model whose drivers wait on the socket: the request's own task runs
     * the protocol, starting now. */
    r->root.pc = next_pc;
    r->db_async = pg_op_create(&r->db_op);
    if (r->db_async == NULL)
        return req_reply_error(r, 503, "out of memory");
    return req_root_step_cb(&r->root);
}

enum req_wait req_await_sleep(struct req *r, int next_pc, unsigned ms)
{
    r->wait_ms = ms;
    return req_task_await_timer(&r->root, next_pc, ms);
}

/* One call of a fan-out: wait, then end. */
static enum req_wait req_fanout_call_cb(struct req_task *t)
{
    if (t->pc == 0)
        return req_task_await_timer(t, 1, t->req->wait_ms);
    return req_task_end(t);
}

enum req_wait req_await_fanout(struct req *r, int next_pc, unsigned calls, unsigned ms)
{
    r->wait_calls = calls;
    r->wait_ms = ms;
    if (req_task_join_start(&r->root, next_pc, calls, req_fanout_call_cb, NULL) != 0)
        return req_reply_error(r, 503, "out of memory");
    return REQ_JOIN;
}

/* ---- the response ------------------------------------------------------------------------ */

static void req_out_set(struct req *r, int status, enum req_ctype ct, const char *out, size_t n,
                        bool owned)
{
    if (r->out_owned)
        free((void *)r->out);
    r->status = status;
    r->ctype = ct;
    r->out = out;
    r->out_len = n;
    r->out_owned = owned;
    r->hdr_name = NULL;
    r->finished = true;
}

enum req_wait req_reply_static(struct req *r, int status, enum req_ctype ct, const char *text)
{
    req_out_set(r, status, ct, text, strlen(text), false);
    return REQ_DONE;
}

enum req_wait req_reply_owned(struct req *r, int status, enum req_ctype ct, char *buf, size_t n)
{
    req_out_set(r, status, ct, buf, n, true);
    return REQ_DONE;
}

enum req_wait req_reply_json(struct req *r, int status, json_t *doc)
{
    /* Most bodies are small: serialise into the stack and copy once, instead of letting
     * json_dumps grow a heap buffer by reallocation. Larger ones take json_dumps's path. */
    const size_t flags = JSON_COMPACT | JSON_REAL_PRECISION(9);
    char small[1024];
    size_t n = doc ? json_dumpb(doc, small, sizeof(small), flags) : 0;
    char *text = NULL;
    if (n > 0 && n <= sizeof(small) && (text = malloc(n)) != NULL)
        memcpy(text, small, n);
    else if (n > sizeof(small) && (text = json_dumps(doc, flags)) != NULL)
        n = strlen(text);
    json_decref(doc);
    if (text == NULL)
        return req_reply_error(r, 503, "out of memory");
    return req_reply_owned(r, status, REQ_CT_JSON, text, n);
}

enum req_wait req_reply_error(struct req *r, int status, const char *msg)
{
    /* Built by hand rather than with jansson so that it cannot fail for lack of memory: the
     * messages are the core's own constants and need no escaping. */
    static const char oom[] = "{\"error\":\"out of memory\"}";
    TRIAD_ASSERT(strpbrk(msg, "\"\\") == NULL, "error messages must need no JSON escaping");
    size_t n = strlen(msg) + sizeof("{\"error\":\"\"}");
    char *body = malloc(n);
    if (body == NULL) {
        req_out_set(r, 503, REQ_CT_JSON, oom, sizeof(oom) - 1, false);
        status = 503;
    } else {
        snprintf(body, n, "{\"error\":\"%s\"}", msg);
        req_out_set(r, status, REQ_CT_JSON, body, n - 1, true);
    }
    if (status == 503)
        req_header_set(r, "Retry-After", "1");
    return REQ_DONE;
}

enum req_wait req_reply_db_error(struct req *r, int rc, const char *not_found_msg)
{
    if (rc == -ENOENT && not_found_msg != NULL)
        return req_reply_error(r, 404, not_found_msg);
    if (rc == -EBUSY)
        return req_reply_error(r, 503, "database busy");
    if (rc == -ENOMEM)
        return req_reply_error(r, 503, "out of memory");
    return req_reply_error(r, 503, "database unavailable");
}

void req_header_set(struct req *r, const char *name, const char *value)
{
    r->hdr_name = name;
    snprintf(r->hdr_value, sizeof(r->hdr_value), "%s", value);
}
