/* req_impl.h - the request's insides, for the core only (endpoints, routing, HTTP glue, tests).
 *
 * Models see `struct req` through req.h alone. This header adds:
 *   - the input side: what the HTTP glue (or a test, or the fuzzer) fills in before the first
 *     step: method, route, query arguments, body;
 *   - the helpers endpoints use to write their steps: req_await_* to wait, req_reply_* to end;
 *   - the output side the glue turns into a libmicrohttpd response.
 */
#ifndef TRIAD_REQ_IMPL_H
#define TRIAD_REQ_IMPL_H

#include "db.h"
#include "req.h"

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#define REQ_ARGS_MAX 16 /* query arguments kept; more is a 400 */

enum req_method { REQ_GET, REQ_HEAD, REQ_POST, REQ_PUT, REQ_DELETE, REQ_OTHER };

enum req_ctype {
    REQ_CT_JSON,       /* application/json */
    REQ_CT_TEXT,       /* text/plain */
    REQ_CT_HTML,       /* text/html; charset=utf-8 */
    REQ_CT_PROMETHEUS, /* text/plain; version=0.0.4 */
};

typedef enum req_wait (*req_step_fn)(struct req *r);
typedef enum req_wait (*req_task_fn)(struct req_task *t);
typedef int (*req_call_fn)(struct req_task *t, struct db *db);

/* A step machine a model runs (req.h). The request's own task steps its endpoint; a join's
 * children step whatever the join gave them. */
struct req_task {
    req_task_fn step;
    struct req *req;
    struct req_task *parent; /* the task whose join started this one; NULL for the root */
    enum req_wait wait;      /* the wait the last step asked for */
    int pc;                  /* resume point: 0 on the first step */
    unsigned index;          /* a child's place in its parent's join */
    int rc;                  /* the last wait's result: a call's return value; -ETIMEDOUT for a
                              * descriptor whose deadline passed first; otherwise 0 */
    const char *failed;      /* why req_task_fail ended it, or NULL */
    bool finished;

    /* The current wait's parameters (req.h). */
    req_call_fn call;
    bool call_db;
    unsigned ms;
    int fd;
    unsigned events;
    int timeout_ms;
    unsigned nchildren;
    unsigned char *children; /* nchildren tasks, child_stride bytes apart, each with its
                              * model state behind it */
    size_t child_stride;

    void *arg;                 /* a child's input, from its parent */
    void *data;                /* a child's own state across waits */
    void (*data_free)(void *); /* how to free it */
    void *model_ctx;
};

struct route;

struct req_arg {
    const char *name;
    const char *value; /* owned by the caller of req_arg_add; must outlive the request */
    size_t value_len;
};

struct req_limits {
    size_t max_body; /* bytes; larger bodies get 413 */
};

struct req {
    /* Input, set before the first step. */
    enum req_method method;
    const struct route *route;
    req_step_fn step_fn; /* the endpoint */
    int64_t path_id;     /* {id} in /items/{id} */
    struct req_arg args[REQ_ARGS_MAX];
    unsigned nargs;
    bool args_overflow; /* more than REQ_ARGS_MAX arguments, or one with a NUL byte */
    bool body_is_json;  /* Content-Type is application/json */
    bool body_present;  /* the client sent body bytes (or declared a length) */
    char *body;         /* malloc'd, NUL-terminated, body_len bytes */
    size_t body_len, body_cap;

    /* The step machine: the endpoint runs as the root task (root.pc is its resume point). */
    struct req_task root;
    unsigned wait_ms, wait_calls; /* the parameters of the last sleep or fan-out */
    struct db_op db_op;           /* the work of a database wait */
    int db_rc;                    /* its result: 0 or a negative errno from db.h */
    void *db_async;               /* PostgreSQL's non-blocking path: the operation's state */
    void *scratch;                /* one heap block an endpoint may keep across steps */
    void (*scratch_free)(void *); /* how to free it, if free() is not enough */
    json_t *doc;                  /* a JSON document an endpoint may build across steps */
    union {                       /* endpoint locals that live across waits */
        struct {
            unsigned n;
            struct db_world *rows; /* n rows: `one`, or an array in scratch */
            struct db_world one;
            uint64_t *tickets; /* cache misses (/cached-queries), in scratch */
            unsigned misses;
        } worlds;
        struct {
            struct db_item item;
            int limit;
            int64_t after, next;
        } items;
    } ep;

    /* Output. */
    bool finished;
    int status;
    enum req_ctype ctype;
    const char *out; /* the body: static text, or heap memory if out_owned */
    size_t out_len;
    bool out_owned;
    const char *hdr_name; /* one extra header: Location, Allow or Retry-After */
    char hdr_value[48];
};

/* Input: called by the HTTP glue in this order. */
void req_init(struct req *r, void *model_ctx);
/* Routes the request. Unknown paths and methods become 404/405 answers right away. */
void req_route(struct req *r, const char *method, const char *path);
void req_arg_add(struct req *r, const char *name, const char *value, size_t value_len);
void req_content_type_set(struct req *r, const char *value);
/* Appends body bytes. Returns 0, or -E2BIG once the body passes limits->max_body (the caller
 * then answers with the 413 this has set up and closes the connection). */
int req_body_append(struct req *r, const char *data, size_t len, const struct req_limits *lim);
/* The input is complete. Returns true if the request already has its answer (a 4xx). */
bool req_input_done(struct req *r);
/* Frees everything the request owns apart from the struct itself. */
void req_release(struct req *r);

/* Looks up a query argument by name (the first one wins); NULL if absent. */
const char *req_arg(const struct req *r, const char *name);

/* Endpoint helpers: each returns the wait to return from the step function, and makes the
 * next req_step resume at `next_pc`. A database wait runs r->db_op (which the endpoint has
 * filled): a REQ_CALL that wants a connection, or, on PostgreSQL with a model whose drivers
 * wait on the socket, PostgreSQL's protocol stepped by the request's own task (pg_async.h);
 * either way the result is in r->db_rc at next_pc. A sleep is a REQ_TIMER; a fan-out is a
 * REQ_JOIN of `calls` children that each wait `ms` (if the children cannot be allocated, the
 * request is answered 503 instead). */
enum req_wait req_await_db(struct req *r, int next_pc);
enum req_wait req_await_sleep(struct req *r, int next_pc, unsigned ms);
enum req_wait req_await_fanout(struct req *r, int next_pc, unsigned calls, unsigned ms);
/* After a join: why the first child that failed did (req_task_fail), or NULL. */
const char *req_join_failure(const struct req_task *t);

/* Task helpers, for step functions of any task (req_task.c). Each returns the wait and makes
 * the next step resume at `next_pc`. */
enum req_wait req_task_await_call(struct req_task *t, int next_pc, req_call_fn fn, bool wants_db);
enum req_wait req_task_await_timer(struct req_task *t, int next_pc, unsigned ms);
enum req_wait req_task_await_fd(struct req_task *t, int next_pc, int fd, unsigned events,
                                int timeout_ms);
/* Prepares `n` children that run `step`, each with `arg` as its input; the caller then returns
 * REQ_JOIN. Returns 0, or -ENOMEM (nothing prepared: answer or fail instead). */
int req_task_join_start(struct req_task *t, int next_pc, unsigned n, req_task_fn step, void *arg);
/* A child's last step: marks it finished. */
enum req_wait req_task_end(struct req_task *t);
/* Sets up a task (the root's is set up by req_init). */
void req_task_init(struct req_task *t, struct req *r, req_task_fn step, void *model_ctx);
/* Frees the children of the task's last join, and its own data. */
void req_task_release(struct req_task *t);
/* Bytes of model state per task (http_model.task_ctx_size); set once, before any request. */
void req_task_ctx_size_set(size_t size);

/* Endpoint endings: each sets the response and returns REQ_DONE. */
enum req_wait req_reply_static(struct req *r, int status, enum req_ctype ct, const char *text);
enum req_wait req_reply_owned(struct req *r, int status, enum req_ctype ct, char *buf, size_t n);
/* Serialises and releases `doc` (which may be NULL after a failed allocation: then 503). */
enum req_wait req_reply_json(struct req *r, int status, json_t *doc);
/* {"error":"<msg>"}; a 503 also gets Retry-After. */
enum req_wait req_reply_error(struct req *r, int status, const char *msg);
/* The answer to a failed db.h call: 404 for -ENOENT, 503 for everything else. */
enum req_wait req_reply_db_error(struct req *r, int rc, const char *not_found_msg);
void req_header_set(struct req *r, const char *name, const char *value);

#endif
