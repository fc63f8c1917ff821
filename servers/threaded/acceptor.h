/* acceptor.h - A, the acceptor thread: gunicorn gthread's main thread.
 *
 * gunicorn's gthread worker runs a selector loop on its main thread (selectors.DefaultSelector,
 * epoll on Linux): it accepts connections, waits for keep-alive connections to become readable
 * again, and hands each ready one to its ThreadPoolExecutor (workers/gthread.py, run and
 * enqueue_req); when a worker is done, the connection comes back to the selector. Here the
 * selector is the HTTP server's descriptor (http.h): an epoll instance holding every socket
 * of every connection. The acceptor thread blocks in poll(2) on it and on an eventfd, and each
 * wake-up runs the server once: accept, read, parse, hand complete requests to the pool.
 *
 * gthread's workers write their answers themselves (ThreadWorker.handle). So here: a worker
 * that has finished a request resumes it and runs the server once, which sends the answer,
 * under the lock that makes a server run by one thread at a time. If another thread is
 * running the server at that moment, that run may already be past the point where it picks
 * up resumed requests, so the worker wakes the acceptor (the eventfd) to run it again.
 *
 * Costs: a wake-up is O(ready connections), whatever the number of open ones (libmicrohttpd's
 * own poll(2) thread, which this replaces, scanned all of them each time: 10,000 idle
 * keep-alive connections made every wake-up a 10,000-entry poll); one eventfd write per batch
 * of finished requests (coalesced: a write only when the acceptor has not been woken since).
 */
#ifndef TRIAD_THREADED_ACCEPTOR_H
#define TRIAD_THREADED_ACCEPTOR_H

struct acceptor;
struct http_server;

/* The epoll instance and the eventfd; the thread starts in acceptor_start. */
int acceptor_create(struct acceptor **out);
/* The HTTP server's wake_cb, with the acceptor as its driver_ctx. Any thread. */
void acceptor_wake_cb(void *arg);
/* Starts the thread that drives `srv`. Returns 0 or a negative errno. */
int acceptor_start(struct acceptor *a, struct http_server *srv);
/* Makes the thread quiesce the server (http_server_quiesce, on its own thread) and returns
 * once it has. */
void acceptor_quiesce(struct acceptor *a);
/* Stops and joins the thread; the server is left to the caller to stop. */
void acceptor_stop(struct acceptor *a);
void acceptor_destroy(struct acceptor *a);

#endif
