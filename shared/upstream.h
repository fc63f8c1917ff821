/* upstream.h - calls to an upstream HTTP service, written once, over the mechanism waits.
 *
 * /upstream makes N concurrent `GET /io?ms=M` calls to the service named by --upstream (any
 * triad server will do: its /io is the slow service). Each call is a step machine over
 * non-blocking sockets, exactly the way the runtimes' own clients are written in their own
 * languages over plain sockets: connect, write the request, read and parse the response
 * (http_resp.h), each step that would block returning a REQ_FD wait (req.h) with what is left
 * of the call's deadline. So every model waits on the socket its own way, with no code of its
 * own: a thread in poll(2) with the GIL released (urllib3 on CPython), a watcher on the loop
 * (undici and http.request on libuv), a goroutine parked on the netpoller (net/http's
 * Transport on Go).
 *
 * Keep-alive: a pool of idle connections, shared by the process (a requests.Session, an
 * http.Agent, an http.Transport). A call takes the most recently returned idle connection
 * (LIFO, as urllib3's pool and Go's idle list do) after checking that the service has not
 * closed it (urllib3's is_connection_dropped), or dials a new one; a call that ends with a
 * complete, keep-alive answer gives its connection back, unless --upstream-idle connections
 * are idle already (then it is closed, as urllib3 discards beyond maxsize). Connections in use
 * are not capped, as in all three runtimes by default. A call on a reused connection that
 * fails before any byte of the answer arrives (the service closed it meanwhile) is retried
 * once on a new connection, as Go's Transport and urllib3 do for idempotent requests.
 *
 * Errors, each a call's result (a negative errno) and a counter: refused or reset (the
 * connection failed), malformed, truncated or oversized answers, a status other than 200: a
 * 502 for the request; no complete answer within --upstream-timeout: a 504. A failed call
 * always closes its connection: it never goes back to the pool in a doubtful state.
 *
 * The host name is resolved once, at start-up (upstream_init). Node would resolve it with
 * dns.lookup, on the libuv thread pool, for every new connection; Go with its own resolver on
 * the netpoller; urllib3 with getaddrinfo on the calling thread.
 */
#ifndef TRIAD_UPSTREAM_H
#define TRIAD_UPSTREAM_H

#include "req.h"

#include <stdbool.h>
#include <stddef.h>

struct metrics_gauge;

/* Parses and resolves the --upstream URL ("http://HOST:PORT", or NULL/"" for none). Returns 0,
 * or -EINVAL after printing what was wrong. Call once, before serving. */
int upstream_init(const char *prog, const char *url, unsigned timeout_s, unsigned idle_max);
/* Closes the idle connections (at shutdown). */
void upstream_close(void);
bool upstream_configured(void);

/* One call in progress: its state lives in the task that makes it (a join's child, or the
 * request's own task for a single call). */
struct upstream_call;
/* A call of GET /io?ms=`ms`. Returns NULL when out of memory. */
struct upstream_call *upstream_call_create(unsigned ms);
void upstream_call_destroy(void *call);
/* Runs the call on task t until it must wait (returns the REQ_FD wait, made with t's current
 * pc, so that t steps back here) or has ended (returns REQ_DONE; see upstream_call_result). */
enum req_wait upstream_call_step(struct req_task *t, struct upstream_call *c);
/* 0, or the failure: -ETIMEDOUT (504) or another negative errno (502). */
int upstream_call_result(const struct upstream_call *c);

/* The pool's figures, for /stats and /metrics. Returns how many were written. */
size_t upstream_gauges(struct metrics_gauge *g, size_t cap);

#endif
