/* driver.h - the request driver: the core's step machines on the loop, their waits as callbacks.
 *
 * libmicrohttpd calls start_cb on the loop thread (L) once a request is complete. The driver
 * steps it (req_step) until it ends or waits, and turns each wait into something the loop
 * will call back, the way an async function's awaits become callbacks in Node:
 *
 *   REQ_DB      queued to the pool (pool.h), one item per wait, run on a pool thread (P) with
 *               that thread's own sqlite connection; the done callback steps on, on L. With a
 *               loop connection (--db-on-loop) it runs right there instead, and L waits.
 *   REQ_SLEEP   one loop timer.
 *   REQ_FANOUT  N loop timers in one allocation, and a countdown; the last one steps on.
 *
 * A request that waits is suspended at its first wait (its connection leaves libmicrohttpd's
 * poll) and resumed when it ends, and the daemon is then fed to the loop's pending queue (see
 * daemon_io.h). A request that never waits (/json, /cpu, or any with --db-on-loop) is
 * finished inside start_cb and never suspended.
 *
 * One driver per process; everything but the pool threads' connections lives on L.
 */
#ifndef TRIAD_EVLOOP_DRIVER_H
#define TRIAD_EVLOOP_DRIVER_H

#include "http.h"

struct daemon_io;
struct db;
struct loop;
struct pool;

struct driver_config {
    struct loop *loop;
    struct pool *pool;     /* for REQ_DB, unless loop_db is set */
    struct daemon_io *dio; /* fed after every resume */
    const char *db_path;   /* each pool thread opens its own connection to it */
    struct db *loop_db;    /* --db-on-loop: L's own connection; NULL otherwise */
};

/* The model for http_server_start: name "evloop", start_cb and the per-request state. */
extern const struct http_model driver_http_model;

/* Returns 0 or a negative errno. Before the first request. */
int driver_init(const struct driver_config *cfg);
/* After the pool has been destroyed (its threads closed their connections on exit). */
void driver_close(void);

/* Requests waiting on a timer or the pool: a gauge. */
unsigned driver_suspended(void);

#endif
