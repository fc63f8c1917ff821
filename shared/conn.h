/* conn.h - every open connection, its phase, and the deadlines that keep slow clients from
 * holding a slot (or, in the thread-per-connection model, a thread) forever.
 *
 * libmicrohttpd's own timeout is for inactivity: a client that sends one byte every few
 * seconds ("slowloris") is never inactive, and could take days to deliver one request head.
 * So each connection is in one of three phases, with a deadline on the first two:
 *
 *   HEAD  waiting for, or receiving, a request line and headers. Deadline: --idle-timeout
 *         after the connection opened or its previous response completed.
 *   BODY  receiving a request body. Deadline: --read-timeout after the head was complete.
 *   BUSY  the request is being served or answered: the server's own time, no deadline.
 *
 * conn_sweep(), called about once a second by each model, shuts down (shutdown(2), not
 * close) the socket of every connection past its deadline; libmicrohttpd then sees the error
 * on its next read and closes the connection itself, through its normal path. The table's
 * lock is held while shutting down, and libmicrohttpd reports a connection closed (conn_close)
 * before it closes the descriptor, so a descriptor number is never shut down after it was
 * reused. Cost: O(connections) per sweep, once a second.
 */
#ifndef TRIAD_CONN_H
#define TRIAD_CONN_H

#include <stdbool.h>

enum conn_phase { CONN_HEAD, CONN_BODY, CONN_BUSY };

struct conn;

/* Starts tracking a connection in phase HEAD. NULL when out of memory (it is then simply not
 * watched: libmicrohttpd's inactivity timeout still applies). */
struct conn *conn_open(int fd, unsigned head_timeout_s, unsigned body_timeout_s);
/* Stops tracking it; returns the request still set on it (conn_req_set), for the caller to
 * free: libmicrohttpd 0.9.75 never reports a request completed when it gave up on its head
 * after the URI callback (a head that exhausts the connection's memory pool). */
void *conn_close(struct conn *c);
void conn_phase_set(struct conn *c, enum conn_phase phase);
/* The request begun on this connection, or NULL once it completed. Its thread only. */
void conn_req_set(struct conn *c, void *req);

/* The connection's descriptor (libmicrohttpd's). */
int conn_fd(const struct conn *c);
/* Marks the connection for a staged close (linger.h): it was answered before its request was
 * read to the end. NULL-safe. */
void conn_linger_set(struct conn *c);
bool conn_lingers(const struct conn *c);

/* Shuts down every connection past its deadline; returns how many. Any thread. */
unsigned conn_sweep(void);

#endif
