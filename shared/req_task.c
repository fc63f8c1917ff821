/* req_task.c - tasks: the step machines a model runs, and the parameters of their waits (see
 * req.h for the contract, req_impl.h for the helpers step functions use).
 *
 * A join's children live in one allocation: the tasks, each followed by the model's state for
 * it, `child_stride` bytes apart. A 1000-way fan-out is one malloc, not a thousand.
 */
#include "req_impl.h"

#include "check.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static size_t req_task_ctx_size;

static size_t req_align16(size_t n)
{
    return (n + 15u) & ~(size_t)15u;
}

void req_task_ctx_size_set(size_t size)
{
    req_task_ctx_size = size;
}

void req_task_init(struct req_task *t, struct req *r, req_task_fn step, void *model_ctx)
{
    memset(t, 0, sizeof(*t));
    t->step = step;
    t->req = r;
    t->fd = -1;
    t->timeout_ms = -1;
    t->model_ctx = model_ctx;
}

/* Frees the children of the last join (which have finished: their parent is stepping). A
 * child's own children first: recursion as deep as joins nest (one level today). */
static void req_task_children_free(struct req_task *t) /* NOLINT(misc-no-recursion) */
{
    for (unsigned i = 0; i < t->nchildren; i++)
        req_task_release(req_join_child(t, i));
    free(t->children);
    t->children = NULL;
    t->nchildren = 0;
}

void req_task_release(struct req_task *t) /* NOLINT(misc-no-recursion): see above */
{
    req_task_children_free(t);
    if (t->data_free)
        t->data_free(t->data);
    t->data = NULL;
    t->data_free = NULL;
}

/* ---- the model's side (req.h) -------------------------------------------------------------- */

struct req *req_task_req(struct req_task *t)
{
    return t->req;
}

struct req_task *req_task_parent(struct req_task *t)
{
    return t->parent;
}

void *req_task_model_ctx(struct req_task *t)
{
    return t->model_ctx;
}

enum req_wait req_task_step(struct req_task *t)
{
    TRIAD_ASSERT(!t->finished, "stepping a finished task");
    enum req_wait w = t->step(t);
    TRIAD_ASSERT((w == REQ_DONE) == t->finished, "a step must end its task exactly when done");
    t->wait = w;
    return w;
}

void req_task_fail(struct req_task *t, const char *why)
{
    TRIAD_ASSERT(!t->finished, "failing a finished task");
    t->failed = why;
    if (t->parent == NULL) {
        req_refuse(t->req, why);
    } else {
        t->finished = true;
        t->wait = REQ_DONE;
    }
}

bool req_call_wants_db(const struct req_task *t)
{
    return t->call_db;
}

void req_call_run(struct req_task *t, struct db *db)
{
    TRIAD_ASSERT(t->wait == REQ_CALL && t->call != NULL, "no call pending");
    TRIAD_ASSERT(db != NULL || !t->call_db, "a database call without a connection");
    t->rc = t->call(t, db);
}

unsigned req_timer_ms(const struct req_task *t)
{
    return t->ms;
}

int req_fd(const struct req_task *t)
{
    return t->fd;
}

unsigned req_fd_events(const struct req_task *t)
{
    return t->events;
}

int req_fd_timeout_ms(const struct req_task *t)
{
    return t->timeout_ms;
}

void req_fd_expired(struct req_task *t)
{
    TRIAD_ASSERT(t->wait == REQ_FD, "no descriptor wait pending");
    t->rc = -ETIMEDOUT;
}

unsigned req_join_count(const struct req_task *t)
{
    return t->nchildren;
}

struct req_task *req_join_child(struct req_task *t, unsigned i)
{
    TRIAD_ASSERT(i < t->nchildren, "no such child");
    return (struct req_task *)(void *)(t->children + (size_t)i * t->child_stride);
}

/* ---- the step functions' side (req_impl.h) ------------------------------------------------- */

enum req_wait req_task_await_call(struct req_task *t, int next_pc, req_call_fn fn, bool wants_db)
{
    req_task_children_free(t);
    t->pc = next_pc;
    t->call = fn;
    t->call_db = wants_db;
    t->rc = 0;
    return REQ_CALL;
}

enum req_wait req_task_await_timer(struct req_task *t, int next_pc, unsigned ms)
{
    req_task_children_free(t);
    t->pc = next_pc;
    t->ms = ms;
    t->rc = 0;
    return REQ_TIMER;
}

enum req_wait req_task_await_fd(struct req_task *t, int next_pc, int fd, unsigned events,
                                int timeout_ms)
{
    TRIAD_ASSERT(fd >= 0 && events != 0 && (events & ~(REQ_FD_READ | REQ_FD_WRITE)) == 0,
                 "a descriptor wait needs a descriptor and events");
    req_task_children_free(t);
    t->pc = next_pc;
    t->fd = fd;
    t->events = events;
    t->timeout_ms = timeout_ms;
    t->rc = 0;
    return REQ_FD;
}

int req_task_join_start(struct req_task *t, int next_pc, unsigned n, req_task_fn step, void *arg)
{
    TRIAD_ASSERT(n >= 1, "a join of no children");
    req_task_children_free(t);
    size_t stride = req_align16(sizeof(struct req_task)) + req_align16(req_task_ctx_size);
    unsigned char *block = calloc(n, stride);
    if (block == NULL)
        return -ENOMEM;
    t->children = block;
    t->nchildren = n;
    t->child_stride = stride;
    for (unsigned i = 0; i < n; i++) {
        struct req_task *c = req_join_child(t, i);
        unsigned char *ctx = (unsigned char *)c + req_align16(sizeof(struct req_task));
        req_task_init(c, t->req, step, req_task_ctx_size ? ctx : NULL);
        c->parent = t;
        c->index = i;
        c->arg = arg;
    }
    t->pc = next_pc;
    t->rc = 0;
    return 0;
}

enum req_wait req_task_end(struct req_task *t)
{
    t->finished = true;
    return REQ_DONE;
}

const char *req_join_failure(const struct req_task *t)
{
    for (unsigned i = 0; i < t->nchildren; i++) {
        const struct req_task *c =
            (const struct req_task *)(const void *)(t->children + (size_t)i * t->child_stride);
        if (c->failed != NULL)
            return c->failed;
    }
    return NULL;
}
