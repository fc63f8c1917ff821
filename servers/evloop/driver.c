/* driver.c - the request driver (see driver.h). */
#include "driver.h"

#include "daemon_io.h"
#include "loop.h"
#include "pool.h"

#include "check.h"
#include "db.h"
#include "http.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>

/* The driver of this process. Only L touches it, apart from pool_db, which each P reads. */
static struct {
    struct driver_config cfg;
    pthread_key_t pool_db; /* each P's connection */
    unsigned suspended;    /* requests waiting on a timer or the pool */
} driver;

/* Per request: what its current wait needs. */
struct driver_req {
    struct req *req;
    bool suspended;
    bool db_failed;          /* the pool thread had no connection */
    struct pool_work work;   /* REQ_DB */
    struct loop_timer sleep; /* REQ_SLEEP */
};

/* REQ_FANOUT: N timers and a countdown, allocated per wait (up to 1000 timers). */
struct driver_call {
    struct loop_timer timer;
    struct driver_fanout *fanout;
};

struct driver_fanout {
    struct driver_req *owner;
    unsigned left;
    struct loop_closing closing;
    struct driver_call calls[];
};

static void driver_req_drive(struct driver_req *e);

/* ---- finishing ----------------------------------------------------------------------------- */

/* The request has its response. One that waited is resumed: libmicrohttpd's next turn calls
 * the handler again and sends it. One that never waited is answered by the glue when
 * start_cb returns. Either way, `e` is not touched again. */
static void driver_req_finish(struct driver_req *e)
{
    if (!e->suspended)
        return;
    driver.suspended--;
    http_req_resume(e->req);
    daemon_io_feed(driver.cfg.dio); /* libmicrohttpd has no ITC here to wake itself with */
}

/* A wait is about to leave L (or already has: the timers are armed): the connection leaves
 * libmicrohttpd's poll until the request is finished. Only the first wait does this. */
static void driver_req_suspend(struct driver_req *e)
{
    if (e->suspended)
        return;
    e->suspended = true;
    driver.suspended++;
    http_req_suspend(e->req);
}

/* ---- REQ_DB -------------------------------------------------------------------------------- */

static void driver_pool_db_close_cb(void *db)
{
    db_close(db);
}

/* The calling P's connection: opened on first use, closed by the key's destructor when the
 * thread exits in pool_destroy. */
static struct db *driver_pool_db(void)
{
    struct db *db = pthread_getspecific(driver.pool_db);
    if (db == NULL && db_open(driver.cfg.db_path, &db) == 0)
        pthread_setspecific(driver.pool_db, db);
    return db;
}

/* On a P: the only code of a request that runs off L. */
static void driver_db_work_cb(struct pool_work *w)
{
    struct driver_req *e = TRIAD_CONTAINER_OF(w, struct driver_req, work);
    struct db *db = driver_pool_db();
    e->db_failed = db == NULL;
    if (db != NULL)
        req_db_run(e->req, db);
}

/* Back on L, in the poll phase. */
static void driver_db_done_cb(struct pool_work *w)
{
    struct driver_req *e = TRIAD_CONTAINER_OF(w, struct driver_req, work);
    if (e->db_failed) {
        req_refuse(e->req, "database unavailable");
        driver_req_finish(e);
        return;
    }
    driver_req_drive(e);
}

/* Returns 1 (waiting: the pool has it), or -EAGAIN if no pool thread could be started. */
static int driver_db_offload(struct driver_req *e)
{
    if (pool_start(driver.cfg.pool) != 0) /* a no-op after the first call (libuv's uv_once) */
        return -EAGAIN;
    driver_req_suspend(e); /* before a P can see the request */
    pool_work_queue(driver.cfg.pool, &e->work, driver_db_work_cb, driver_db_done_cb);
    return 1;
}

/* --db-on-loop: the query runs here and now, and L waits for it. Returns 0 (done). */
static int driver_db_inline(struct driver_req *e)
{
    req_db_run(e->req, driver.cfg.loop_db);
    return 0;
}

/* ---- REQ_SLEEP and REQ_FANOUT -------------------------------------------------------------- */

static void driver_sleep_cb(struct loop_timer *t)
{
    driver_req_drive(TRIAD_CONTAINER_OF(t, struct driver_req, sleep));
}

/* Returns 1 (waiting on the timer), or -ENOMEM. */
static int driver_sleep_start(struct driver_req *e)
{
    loop_timer_init(&e->sleep, driver_sleep_cb);
    int rc = loop_timer_start(driver.cfg.loop, &e->sleep, req_wait_ms(e->req), 0);
    if (rc != 0)
        return rc;
    driver_req_suspend(e);
    return 1;
}

static void driver_fanout_free_cb(struct loop_closing *c)
{
    free(TRIAD_CONTAINER_OF(c, struct driver_fanout, closing));
}

/* One call's timer. The last one continues the request; the block holding every timer is
 * freed in the close phase, not inside the callback of a timer it contains. */
static void driver_call_done_cb(struct loop_timer *t)
{
    struct driver_fanout *f = TRIAD_CONTAINER_OF(t, struct driver_call, timer)->fanout;
    if (--f->left > 0)
        return;
    loop_closing_add(driver.cfg.loop, &f->closing, driver_fanout_free_cb);
    driver_req_drive(f->owner);
}

/* Returns 1 (waiting on every timer), or -ENOMEM with none left running. */
static int driver_fanout_start(struct driver_req *e)
{
    unsigned n = req_wait_calls(e->req), ms = req_wait_ms(e->req);
    TRIAD_ASSERT(n >= 1, "a fan-out of no calls");
    struct driver_fanout *f = malloc(sizeof(*f) + n * sizeof(f->calls[0]));
    if (f == NULL)
        return -ENOMEM;
    f->owner = e;
    f->left = n;
    for (unsigned i = 0; i < n; i++) {
        f->calls[i].fanout = f;
        loop_timer_init(&f->calls[i].timer, driver_call_done_cb);
        if (loop_timer_start(driver.cfg.loop, &f->calls[i].timer, ms, 0) != 0) {
            while (i-- > 0)
                loop_timer_stop(driver.cfg.loop, &f->calls[i].timer);
            free(f);
            return -ENOMEM;
        }
    }
    driver_req_suspend(e);
    return 1;
}

/* ---- the request driver -------------------------------------------------------------------- */

/* Starts wait `w`. Returns 1 if the request now waits for a callback, 0 if the wait was done
 * inline (--db-on-loop), or a negative errno if it cannot be performed. */
static int driver_req_wait(struct driver_req *e, enum req_wait w)
{
    switch (w) {
    case REQ_DB:
        return driver.cfg.loop_db != NULL ? driver_db_inline(e) : driver_db_offload(e);
    case REQ_SLEEP:
        return driver_sleep_start(e);
    case REQ_FANOUT:
        return driver_fanout_start(e);
    case REQ_DONE:
        break;
    }
    TRIAD_ASSERT(0, "unknown wait");
}

/* Steps the request on L until it waits for a callback or ends. Called by start_cb for a new
 * request, and by every callback that ends a wait. */
static void driver_req_drive(struct driver_req *e)
{
    enum req_wait w;
    while ((w = req_step(e->req)) != REQ_DONE) {
        int rc = driver_req_wait(e, w);
        if (rc > 0)
            return;
        if (rc < 0) {
            req_refuse(e->req, w == REQ_DB ? "database unavailable" : "out of memory");
            break;
        }
    }
    driver_req_finish(e);
}

static void driver_start_cb(struct req *r)
{
    struct driver_req *e = req_model_ctx(r);
    e->req = r;
    driver_req_drive(e);
}

const struct http_model driver_http_model = {
    .name = "evloop",
    .req_ctx_size = sizeof(struct driver_req),
    .start_cb = driver_start_cb,
};

/* ---- set-up ------------------------------------------------------------------------------ */

int driver_init(const struct driver_config *cfg)
{
    driver.cfg = *cfg;
    driver.suspended = 0;
    return -pthread_key_create(&driver.pool_db, driver_pool_db_close_cb);
}

void driver_close(void)
{
    TRIAD_ASSERT(driver.suspended == 0, "driver_close: requests still waiting");
    pthread_key_delete(driver.pool_db);
}

unsigned driver_suspended(void)
{
    return driver.suspended;
}
