/* linger.h - closing a connection in stages, so that the client reads its answer.
 *
 * A server that answers before it has read the whole request (a 413 for a body it refuses, a
 * 400 for a head it will not parse further) and then closes its socket with unread input in
 * the receive buffer makes the kernel answer with a reset (RFC 9293 3.6.1: "data ... received
 * after CLOSE ... causes RST"). The reset can overtake the answer: a client still writing its
 * body sees EPIPE or ECONNRESET and never reads the 413. RFC 9112 9.6 asks for a staged close
 * instead: send the answer, half-close (shutdown SHUT_WR: our FIN follows the answer), keep
 * reading and dropping what the client still sends, and close once it has stopped (end of
 * file) or a bound is reached. nginx calls this lingering close (lingering_close,
 * lingering_time, lingering_timeout); Go's net/http half-closes and waits
 * (server.go closeWriteAndWait).
 *
 * libmicrohttpd 0.9.75 sends the answer, half-closes and closes at once. The glue takes over
 * such a connection in libmicrohttpd's connection-closed notification, which runs before it
 * closes the descriptor: it keeps a duplicate of the descriptor, so the socket outlives
 * libmicrohttpd's close, and drains it here.
 *
 * Bounds, so that a client cannot use the drain to hold a connection or waste bandwidth: at
 * most LINGER_TIME_MS after the handover, at most LINGER_BYTES_MAX bytes dropped, at most
 * LINGER_CONNS_MAX connections lingering per server (past it a connection closes at once, as
 * before). Whichever comes first ends the linger with close(2).
 *
 * Two ways to run it: a set of lingering sockets registered in an epoll instance that the
 * server's driver polls (linger_*), or, in the thread-per-connection mode, a blocking drain on
 * the connection's own thread (linger_block).
 */
#ifndef TRIAD_LINGER_H
#define TRIAD_LINGER_H

#include <stdint.h>

#define LINGER_TIME_MS   5000u               /* nginx's lingering_timeout default */
#define LINGER_BYTES_MAX (16u * 1024 * 1024) /* a refused upload of 10 MB still drains */
#define LINGER_CONNS_MAX 1024u

struct linger_conn;

struct linger_set {
    int epfd; /* the driver's epoll instance: lingering sockets are registered there */
    struct linger_conn *head, *tail; /* oldest first: deadlines are in this order */
    unsigned count;
};

/* Sockets will be registered in epfd, with data.ptr pointing at their linger_conn. */
void linger_init(struct linger_set *l, int epfd);
/* Takes over `fd` (a connection already half-closed after its answer): drains and closes it
 * within the bounds. Never fails: past LINGER_CONNS_MAX or out of memory it closes at once. */
void linger_add(struct linger_set *l, int fd);
/* An event for a lingering socket: drain what has arrived; close it at end of file or past a
 * bound. `ptr` is the event's data.ptr. */
void linger_ready(struct linger_set *l, void *ptr);
/* Closes the lingering sockets whose time is up. */
void linger_expire(struct linger_set *l);
/* Milliseconds until the oldest lingering socket's time is up; -1 with none. */
int linger_timeout_ms(const struct linger_set *l);
/* Closes every lingering socket. */
void linger_close(struct linger_set *l);

/* The same drain, blocking the calling thread (thread-per-connection mode). Closes fd. */
void linger_block(int fd);

#endif
