/* http.h - the libmicrohttpd glue every model shares.
 *
 * The glue turns libmicrohttpd's access-handler callbacks into requests (req.h) and requests
 * back into responses. The models differ only in the daemon flags they pass and in what their
 * start callback does; no model sees a header, a query string or a status line.
 *
 * The life of a request, as libmicrohttpd calls the access handler:
 *
 *   1st call     headers are in: route it, collect the query arguments. Nothing is queued
 *                here: libmicrohttpd 0.9.75 answers "Connection: close" to a response queued
 *                on the first call, which would turn keep-alive off for every client.
 *   body calls   append the body (413 past the limit, queued at once; the connection then
 *                closes, which is what a client that sent too much deserves).
 *   last call    the input is complete: answer errors (4xx), apply admission control (503),
 *                then call the model's start_cb.
 *   after resume libmicrohttpd calls the handler once more for a suspended request: queue.
 *
 * The model contract (start_cb), called on the thread that runs libmicrohttpd's handler:
 *
 *   - either finish the request before returning (req_step() until REQ_DONE, or req_refuse),
 *     and the glue queues the response right away;
 *   - or call http_req_suspend(r) and hand the request elsewhere, never touching it again on
 *     this thread; when it is finished, from any thread, call http_req_resume(r). The glue
 *     queues the response when libmicrohttpd calls the handler again.
 *
 * Suspended connections are invisible to libmicrohttpd's timeouts and to client hang-ups
 * until they are resumed, and stopping a daemon with suspended connections is undefined:
 * http_server_stop therefore requires that no request is in flight (drain first).
 */
#ifndef TRIAD_HTTP_H
#define TRIAD_HTTP_H

#include "req.h"

#include <stddef.h>

struct MHD_Daemon;
struct http_server;

struct http_model {
    const char *name;    /* "threaded", "evloop", "coro" */
    size_t req_ctx_size; /* bytes of model state per request (req_model_ctx) */
    void (*start_cb)(struct req *r);
};

struct http_limits {
    size_t max_body;          /* bytes; more gives 413 */
    unsigned max_inflight;    /* admitted requests in this process; more gives 503 */
    unsigned max_connections; /* per daemon; excess connections wait in the backlog */
    unsigned idle_timeout_s;  /* a request head must arrive within this; 0 = never */
    unsigned read_timeout_s;  /* a request body must arrive within this */
    size_t conn_memory;       /* per-connection buffer for the request line and headers */
    size_t max_url;           /* path plus query arguments; more gives 414 */
    unsigned max_headers;     /* more gives 431 */
};

struct cli_common;
/* The limits every model takes from the common command line. */
struct http_limits http_limits_from(const struct cli_common *c);

struct http_config {
    const struct http_model *model;
    unsigned int mhd_flags; /* the model's libmicrohttpd mode (MHD_USE_*) */
    int listen_fd;          /* a bound, listening socket; the daemon takes it over */
    struct http_limits limits;
    size_t thread_stack_size; /* for libmicrohttpd's own threads; 0 = the default */
    void *daemon_ctx;         /* the model's own pointer for this daemon (see below) */
};

int http_server_start(const struct http_config *cfg, struct http_server **out);
/* The daemon, for models that drive it themselves (MHD_run, the epoll fd). */
struct MHD_Daemon *http_server_daemon(struct http_server *s);
/* Stops accepting: the listen socket leaves the daemon and is closed. Open connections stay,
 * but from now on every new request on them, in every daemon of the process, is answered at
 * once with 503 and Connection: close, without reaching the model: keep-alive clients cannot
 * extend the drain, and nothing new is suspended after it (libmicrohttpd aborts if a daemon
 * is stopped with a suspended connection). */
void http_server_quiesce(struct http_server *s);
/* Closes every connection and frees the daemon. Only with no request suspended. */
void http_server_stop(struct http_server *s);
/* Open connections in this process, over all its daemons. Any thread. */
unsigned http_connections(void);

/* Closes connections that are too slow to deliver a request (conn.h). Every model calls it
 * about once a second, from any thread. */
void http_sweep(void);

/* See the contract above. suspend: only inside start_cb. resume: from any thread, once.
 *
 * In external polling mode (no MHD_USE_INTERNAL_POLLING_THREAD) libmicrohttpd 0.9.75 wakes
 * nobody on resume: its ITC is not in its own epoll set. The model must make the daemon's
 * driver call MHD_run again after http_req_resume, or the response waits for the next network
 * event on that daemon. */
void http_req_suspend(struct req *r);
void http_req_resume(struct req *r);

/* The daemon_ctx of the daemon that received the request. */
void *http_req_daemon_ctx(struct req *r);

#endif
