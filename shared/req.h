/* req.h - a request, and the contract between the core and the concurrency models.
 *
 * Endpoints are written once, in shared/, as steps separated by explicit waits. This is the
 * transformation async/await compiles to: an endpoint is a state machine whose state (`pc`, the
 * resume point, plus its locals) lives in the request, and every `await` becomes "return the
 * wait; resume at the next label when it completes".
 *
 * Tasks
 * =====
 *
 * What a model runs is a task: a step machine that returns waits. Every request has one, its
 * root (req_root). A join starts child tasks, which are step machines of their own (a timer of
 * /fanout, an HTTP call to the upstream service) and wait the same ways. A model runs any task
 * with one loop: req_task_step() until it returns REQ_DONE, performing each wait in between.
 *
 * The waits are mechanisms, not endpoints: every runtime triad mirrors is built from these four.
 *
 *   REQ_CALL   a call that may block its thread: database work (sqlite; libpq's blocking API),
 *              a host name lookup. req_call_run(t, db) with, if req_call_wants_db(t), a
 *              connection no other thread is using.
 *   REQ_TIMER  req_timer_ms(t) milliseconds, holding no CPU.
 *   REQ_FD     descriptor req_fd(t) ready for req_fd_events(t) (REQ_FD_READ, REQ_FD_WRITE), or
 *              req_fd_timeout_ms(t) passed first: then call req_fd_expired(t) before the next
 *              step. Readiness is a hint: the step retries its read or write, which may say
 *              EAGAIN again, or that the peer closed.
 *   REQ_JOIN   req_join_count(t) child tasks (req_join_child), all at once, each run to its end
 *              like any task; the parent steps again when the last one has finished.
 *
 * How each model performs each mechanism:
 *
 *              threaded (CPython)        evloop (Node/libuv)          coro (Go)
 *   REQ_CALL   call it on this thread,   queue it to the pool; step    call it between
 *              GIL released while it     on from the completion, on    entersyscall and
 *              blocks                    the loop (--db-on-loop: call  exitsyscall: sysmon hands
 *                                        it on the loop, blocking it)  the P to another M
 *   REQ_TIMER  clock_nanosleep, GIL      a loop timer                  park on the P's timer
 *              released                                                heap
 *   REQ_FD     poll(2) on this thread,   watch it in the loop's epoll  park on the netpoller
 *              GIL released (CPython's   (uv_poll_t); step on from     (pollDesc) until ready
 *              socket module)            the readiness callback        or the deadline
 *   REQ_JOIN   one thread per child,     start every child; a          one goroutine per
 *              then join them            countdown steps the parent    child, and a WaitGroup
 *
 * A wait the model cannot perform (no thread, no stack, no database connection) ends the task
 * with req_task_fail(t, why): a root task's request is answered 503 with Retry-After, a child
 * counts as done and its parent's join reports the failure. Either way the task is finished.
 *
 * CPU work is not a wait: it runs inside req_task_step, on whatever thread the model runs
 * steps, and passes through hook_safepoint() regularly (hook.h).
 *
 * Threads: a task is stepped by one thread at a time, but successive steps may run on
 * different threads (a pool worker, then the loop; one M, then another). The model provides the
 * happens-before edge between them (a mutex, a queue, an eventfd, a scheduler hand-off). The
 * children of one join may run at the same time on different threads: each touches only its
 * own state until it finishes.
 *
 * Lifetime: the HTTP glue (http.h) creates the request, hands it to the model once its input
 * is complete, and frees it after the response has been sent. A join's children live until
 * their parent's next wait (or the request's end). The model must not touch a task after it
 * has reported it finished (the root: resumed the request; a child: counted it done).
 */
#ifndef TRIAD_REQ_H
#define TRIAD_REQ_H

#include <stdbool.h>

struct db;
struct req;
struct req_task;

enum req_wait {
    REQ_DONE,  /* the task is finished */
    REQ_CALL,  /* run req_call_run() on a thread that may block, then step again */
    REQ_TIMER, /* wait req_timer_ms() holding no CPU, then step again */
    REQ_FD,    /* wait for req_fd() to be ready (or its timeout), then step again */
    REQ_JOIN,  /* run every child task to its end, then step again */
};

#define REQ_FD_READ  0x1u
#define REQ_FD_WRITE 0x2u

/* ---- tasks --------------------------------------------------------------------------------- */

/* The request's own task. */
struct req_task *req_root(struct req *r);
/* The request a task serves, and the task whose join started it (NULL for the root). */
struct req *req_task_req(struct req_task *t);
struct req_task *req_task_parent(struct req_task *t);

/* Runs the task's code until its next wait or its end. Never blocks (apart from CPU work). */
enum req_wait req_task_step(struct req_task *t);
/* The wait in progress could not be performed: ends the task (see above). Instead of the next
 * req_task_step. `why` is a constant string, shown to the client in a root's 503. */
void req_task_fail(struct req_task *t, const char *why);

/* The model's own state for a task: http_model.task_ctx_size bytes, zeroed when the task is
 * created, 16-byte aligned. A root task's is the request's (req_model_ctx). */
void *req_task_model_ctx(struct req_task *t);

/* ---- the parameters of each wait ------------------------------------------------------------ */

bool req_call_wants_db(const struct req_task *t);
/* Performs the call of a REQ_CALL wait. May block. `db` is NULL unless req_call_wants_db. */
void req_call_run(struct req_task *t, struct db *db);

unsigned req_timer_ms(const struct req_task *t);

int req_fd(const struct req_task *t);
unsigned req_fd_events(const struct req_task *t); /* REQ_FD_READ and/or REQ_FD_WRITE */
int req_fd_timeout_ms(const struct req_task *t);  /* -1: no deadline */
/* The deadline passed before the descriptor was ready. Call before stepping again. */
void req_fd_expired(struct req_task *t);

unsigned req_join_count(const struct req_task *t);
struct req_task *req_join_child(struct req_task *t, unsigned i);

/* ---- the request --------------------------------------------------------------------------- */

/* Steps the request's own task: req_task_step(req_root(r)). */
enum req_wait req_step(struct req *r);

/* Ends the request with 503 and Retry-After because the model cannot take the work (a full
 * queue, no thread to spare). Instead of the first req_step; the request is then finished. */
void req_refuse(struct req *r, const char *why);

/* True for the operations endpoints (/health, /stats, /metrics): they never wait, and a model
 * that sheds load (no thread, no stack, a full queue) still runs them if it can run anything,
 * so that a saturated server can be observed. */
bool req_exempt(const struct req *r);

/* True once the response is ready (the root task finished, or req_refuse was called). */
bool req_finished(const struct req *r);

/* The model's own per-request state: http_model.task_ctx_size bytes, zeroed, 16-byte aligned. */
void *req_model_ctx(struct req *r);

#endif
