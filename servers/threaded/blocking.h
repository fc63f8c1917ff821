/* blocking.h - executing the core's step contract the blocking way.
 *
 * A request runs start to finish on the calling thread: database work calls sqlite and
 * blocks, a wait sleeps, a fan-out starts one thread per call and joins them. With a GIL, the
 * thread holds it while endpoint code runs and releases it around every blocking call, the way
 * CPython's C code wraps blocking calls in Py_BEGIN_ALLOW_THREADS.
 */
#ifndef TRIAD_BLOCKING_H
#define TRIAD_BLOCKING_H

#include "gil.h"
#include "req.h"

/* `gil` may be NULL (free-threaded, as CPython's PEP 703 build). */
int blocking_init(const char *db_path, struct gil *gil);

/* Runs `r` until it is finished, on this thread, using this thread's database connection
 * (opened on first use, closed when the thread exits). */
void blocking_run(struct req *r);

#endif
