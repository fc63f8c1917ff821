/* http.h - HTTP for every model: libmicrohttpd, driven by the core.
 *
 * The glue turns libmicrohttpd's access-handler callbacks into requests (req.h) and requests
 * back into responses, and it drives libmicrohttpd itself: the models differ only in how they
 * run requests and in which thread watches the server's descriptor. No model sees a header, a
 * query string, a status line or a libmicrohttpd call.
 *
 * The life of a request, as libmicrohttpd calls the access handler:
 *
 *   1st call     headers are in: route it, collect the query arguments. Nothing is queued
 *                here unless the request is refused before its body (a declared body over
 *                --max-body: 413; a head that smuggles: 400): libmicrohttpd 0.9.75 answers
 *                "Connection: close" to a response queued on the first call, which would
 *                turn keep-alive off for every client. A refused connection closes in stages
 *                (linger.h), so that the client reads the answer.
 *   body calls   append the body (a chunked body over the limit: read and dropped, 413 at the
 *                end).
 *   last call    the input is complete: answer errors (4xx), apply admission control (503),
 *                then call the model's start_cb.
 *   after resume libmicrohttpd calls the handler once more for a suspended request: queue.
 *
 * The model contract (start_cb), called on the thread that runs the server (see the drive
 * modes below):
 *
 *   - either finish the request before returning (its root task stepped to REQ_DONE, or
 *     req_refuse), and the glue queues the response right away;
 *   - or call http_req_suspend(r) and hand the request elsewhere, never touching it again on
 *     this thread; when it is finished, from any thread, call http_req_resume(r). The glue
 *     queues the response when it next runs the server.
 *
 * Drive modes
 * ===========
 *
 *   HTTP_DRIVE_EXTERNAL   the model watches one descriptor (http_server_fd: readable when
 *                         the server has network work) from a thread of its choosing (the
 *                         event loop, a goroutine on the netpoller, an acceptor thread),
 *                         and calls http_server_run when it is readable, when
 *                         http_server_timeout_ms has passed, and after the core has called
 *                         its wake_cb. http_server_run never blocks; it accepts, reads,
 *                         parses, calls start_cb, writes answers and closes connections.
 *                         One thread at a time per server.
 *   HTTP_DRIVE_THREAD_PER_CONNECTION
 *                         libmicrohttpd starts one thread per connection and runs
 *                         everything of that connection on it, start_cb included
 *                         (MHD_USE_THREAD_PER_CONNECTION, with poll(2), since select(2)
 *                         fails past descriptor 1024). start_cb must finish every request
 *                         before it returns: there is nothing to resume.
 *
 * Why the wake-up: a resumed connection is a change that no descriptor announces.
 * libmicrohttpd polled from outside does not wake itself on MHD_resume_connection (its
 * inter-thread channel is ignored with external polling, microhttpd.h), and it picks resumed
 * connections up only at the start of its next run, by walking its whole list of suspended
 * connections: O(suspended) per run. So every resume calls the model's wake_cb, from whatever
 * thread resumed, and the model makes its driver run the server soon: an eventfd write for a
 * thread blocked in epoll_wait, a fed watcher on the event loop, a kick of the goroutine
 * parked on the netpoller. Several resumes before that run cost one walk.
 *
 * Suspended connections are invisible to libmicrohttpd's timeouts and to client hang-ups
 * until they are resumed, and stopping a daemon with suspended connections is undefined:
 * http_server_stop therefore requires that no request is in flight (drain first).
 */
#ifndef TRIAD_HTTP_H
#define TRIAD_HTTP_H

#include "req.h"

#include <stddef.h>

struct http_server;

struct http_model {
    const char *name;     /* "threaded", "evloop", "coro" */
    size_t task_ctx_size; /* bytes of model state per task (req_task_model_ctx) */
    void (*start_cb)(struct req *r);
};

struct http_limits {
    size_t max_body;          /* bytes; more gives 413 */
    unsigned max_inflight;    /* admitted requests in this process; more gives 503 */
    unsigned max_connections; /* per server; excess connections wait in the backlog */
    unsigned idle_timeout_s;  /* a request head must arrive within this; 0 = never */
    unsigned read_timeout_s;  /* a request body must arrive within this */
    size_t conn_memory;       /* per-connection buffer for the request line and headers */
    size_t max_url;           /* path plus query arguments; more gives 414 */
    unsigned max_headers;     /* more gives 431 */
};

struct cli_common;
/* The limits every model takes from the common command line. */
struct http_limits http_limits_from(const struct cli_common *c);

enum http_drive {
    HTTP_DRIVE_EXTERNAL,
    HTTP_DRIVE_THREAD_PER_CONNECTION,
};

struct http_config {
    const struct http_model *model;
    enum http_drive drive;
    int listen_fd; /* a bound, listening socket; the server takes it over */
    struct http_limits limits;
    size_t thread_stack_size; /* thread per connection: each thread's stack; 0 = the default */
    /* External drive: called by the core, from any thread, each time a request of this
     * server is resumed; the model makes its driver call http_server_run soon. */
    void (*wake_cb)(void *driver_ctx);
    void *driver_ctx;
};

/* Starts a server. Returns 0 or a negative errno. */
int http_server_start(const struct http_config *cfg, struct http_server **out);

/* External drive (see above). The descriptor is level-triggered: it stays readable while
 * there is work. The timeout is -1 when nothing but the descriptor or a wake-up can make work;
 * it includes the once-a-second sweep of connections that are too slow (conn.h). */
int http_server_fd(const struct http_server *s);
void http_server_run(struct http_server *s);
int http_server_timeout_ms(struct http_server *s);
/* http_server_run calls so far (a gauge). */
unsigned long http_server_runs(const struct http_server *s);

/* Stops accepting: the listen socket leaves the server and is closed. Open connections stay,
 * but from now on every new request on them, in every server of the process, is answered at
 * once with 503 and Connection: close, without reaching the model: keep-alive clients cannot
 * extend the drain, and nothing new is suspended after it (libmicrohttpd aborts if a daemon
 * is stopped with a suspended connection). */
void http_server_quiesce(struct http_server *s);
/* Closes every connection and frees the server. Only with no request suspended. */
void http_server_stop(struct http_server *s);
/* Open connections in this process, over all its servers. Any thread. */
unsigned http_connections(void);

/* Closes connections that are too slow to deliver a request (conn.h). At most once a second
 * whoever calls it; any thread. The external drive calls it from http_server_run; a process
 * that runs only threads per connection calls it from its main thread. */
void http_sweep(void);

/* See the contract above. suspend: only inside start_cb. resume: from any thread, once. */
void http_req_suspend(struct req *r);
void http_req_resume(struct req *r);

#endif
