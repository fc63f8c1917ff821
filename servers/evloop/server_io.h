/* server_io.h - the HTTP server on the loop: its descriptor watched, its deadline a timer.
 *
 * The core drives libmicrohttpd (http.h); the loop only has to say when. The server's
 * descriptor (an epoll instance holding every socket behind it) is readable when there is
 * network work, so L watches it like any other descriptor and runs the server when it is;
 * http_server_timeout_ms says when the server next needs a turn with no network event
 * (pipelined requests already buffered, idle connections to time out, the sweep of slow
 * clients), so a prepare hook asks before every poll and keeps a loop timer at that deadline.
 * This is how libuv programs embed other event-driven libraries (curl's multi interface,
 * c-ares): an io watcher for the descriptor, a timer for the timeout.
 *
 * The wake-up (http.h): a request resumed by a callback on L feeds the watcher to the loop's
 * pending queue (libuv's uv__io_feed), so the server gets a turn in the next pending round:
 * right after the poll for requests resumed by a pool completion, at the start of the next
 * iteration for those resumed by a timer. One run for every resume of a phase, and one walk
 * of libmicrohttpd's suspended list.
 */
#ifndef TRIAD_EVLOOP_SERVER_IO_H
#define TRIAD_EVLOOP_SERVER_IO_H

#include "loop.h"

#include <stdbool.h>

struct http_server;

struct server_io {
    struct loop *loop;
    struct http_server *srv;
    struct loop_io io;        /* the server's descriptor */
    struct loop_timer timer;  /* the server's next deadline */
    struct loop_hook prepare; /* re-arms `timer` before each poll */
    bool ran;                 /* the server ran since the last prepare */
};

/* The HTTP server's wake_cb, with the server_io as its driver_ctx. On L only (every resume in
 * this model happens on L). */
void server_io_wake_cb(void *arg);
/* Attaches a started server to the loop. Returns 0 or a negative errno. */
int server_io_start(struct server_io *sio, struct loop *l, struct http_server *srv);
/* Detaches it; the server is not stopped. */
void server_io_stop(struct server_io *sio);

#endif
