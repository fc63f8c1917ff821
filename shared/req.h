/* req.h - a request, and the contract between the core and the concurrency models.
 *
 * Endpoints are written once, in shared/, as steps separated by explicit waits. A model runs a
 * request by calling req_step() until it says REQ_DONE, performing each wait in between its own
 * way. This is the transformation async/await compiles to: the endpoint is a state machine
 * whose state (`pc`, the resume point, plus its locals) lives in the request, and every
 * `await` becomes "return the wait; resume at the next label when it completes".
 *
 * The waits:
 *
 *   REQ_DB      run database work: call req_db_run(r, db) with a connection that no other
 *               thread is using, on a thread that may block. sqlite calls inside it go through
 *               hook_blocking_enter/exit (hook.h).
 *   REQ_SLEEP   wait req_wait_ms(r) milliseconds the way a call to a slow upstream service
 *               would: holding no CPU.
 *   REQ_FANOUT  start req_wait_calls(r) such waits of req_wait_ms(r) each, all at once, and
 *               continue when the last one finishes.
 *
 * CPU work is not a wait: it runs inside req_step, on whatever thread the model runs endpoint
 * code, and passes through hook_safepoint() regularly.
 *
 * How each model executes the contract:
 *
 *   threaded  runs the steps straight through on the request's own OS thread: REQ_DB calls
 *             sqlite and blocks, REQ_SLEEP blocks in clock_nanosleep, REQ_FANOUT starts one
 *             blocking thread per call and joins them. With --gil, steps run holding the GIL
 *             and every wait releases it.
 *   evloop    runs steps on the loop thread. REQ_DB is queued to the worker pool and the next
 *             step runs from the completion callback back on the loop; REQ_SLEEP is a loop
 *             timer; REQ_FANOUT is N timers and a countdown. No step ever blocks the loop
 *             except CPU work, exactly as in Node.
 *   coro      runs steps in a goroutine. REQ_DB calls sqlite between entersyscall/exitsyscall;
 *             REQ_SLEEP parks the goroutine on its P's timer heap; REQ_FANOUT spawns N
 *             goroutines and parks on a WaitGroup.
 *
 * Threads: a request is stepped by one thread at a time, but successive steps may run on
 * different threads (pool worker, then loop; one M, then another). The model provides the
 * happens-before edge between them (a mutex, a queue, an eventfd, a scheduler hand-off).
 *
 * Lifetime: the HTTP glue (http.h) creates the request, hands it to the model once its input
 * is complete, and frees it after the response has been sent. The model must not touch it
 * after it has reported the request finished.
 */
#ifndef TRIAD_REQ_H
#define TRIAD_REQ_H

#include <stdbool.h>

struct db;
struct req;

enum req_wait {
    REQ_DONE,   /* finished: the response is ready */
    REQ_DB,     /* run req_db_run() with a connection, then step again */
    REQ_SLEEP,  /* wait req_wait_ms() holding no CPU, then step again */
    REQ_FANOUT, /* req_wait_calls() concurrent waits of req_wait_ms() each, then step again */
};

/* Runs endpoint code until the next wait or the end. Never blocks (apart from CPU work). */
enum req_wait req_step(struct req *r);

/* Performs the database work of a REQ_DB wait using `db`. May block. */
void req_db_run(struct req *r, struct db *db);

/* Parameters of the current wait. */
unsigned req_wait_ms(const struct req *r);
unsigned req_wait_calls(const struct req *r);

/* Ends the request with 503 and Retry-After because the model cannot take the work (a full
 * queue, no thread to spare). Instead of the next req_step; the request is then finished. */
void req_refuse(struct req *r, const char *why);

/* True for the operations endpoints (/health, /stats, /metrics): they never wait, and a model
 * that sheds load (no thread, no stack, a full queue) still runs them if it can run anything,
 * so that a saturated server can be observed. */
bool req_exempt(const struct req *r);

/* True once the response is ready (req_step returned REQ_DONE, or req_refuse was called). */
bool req_finished(const struct req *r);

/* The model's own per-request state: http_model.req_ctx_size bytes, zeroed, 16-byte aligned. */
void *req_model_ctx(struct req *r);

#endif
