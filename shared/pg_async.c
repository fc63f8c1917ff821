/* pg_async.c - PostgreSQL over the descriptor wait (see pg_async.h). */
#include "pg_async.h"

#include "check.h"
#include "metrics.h"
#include "pg_sql.h"
#include "req_impl.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

/* A connection of the pool. */
struct pg_conn {
    PGconn *conn;
    bool prepared;
    struct pg_conn *next; /* on the idle list */
};

/* Everything an operation's steps need between waits. */
struct pg_op {
    const struct db_op *op;
    enum pg_phase {
        PG_ACQUIRE,    /* take, open or wait for a connection */
        PG_QUEUED,     /* waiting on `wakefd` for a returned connection */
        PG_CONNECTING, /* PQconnectPoll until it says OK */
        PG_PREPARING,  /* send the next PQsendPrepare, if any is left */
        PG_IDLE,       /* send the operation's next statement, if any is left */
        PG_SENT,       /* a prepare or a statement is out: flush it, then read its result */
        PG_DONE,
    } phase;
    PostgresPollingStatusType poll; /* PG_CONNECTING: what libpq waits for */
    bool sent_prepare;              /* PG_SENT: a PQsendPrepare (else a statement) */
    struct pg_conn *c;
    int prepare_next;
    unsigned next_row; /* DB_OP_WORLD_READ: the row whose SELECT comes next */
    unsigned sent_row; /* and the one whose answer is awaited */
    bool sent;         /* the one statement of other operations went out */
    PGresult *result;  /* the statement's result, kept until its end (NULL) */
    int wakefd;        /* PG_QUEUED */
    struct pg_op *next_waiter;
    bool waited; /* the last step returned a wait */
    int rc;
};

static struct {
    bool enabled;
    char *conninfo;
    unsigned max_open, max_idle;
    pthread_mutex_t lock; /* idle list, waiters, counts */
    struct pg_conn *idle;
    unsigned nidle, nopen;
    struct pg_op *waiters, *waiters_tail;
    _Atomic unsigned long connects, failures, waits;
} pga = {.lock = PTHREAD_MUTEX_INITIALIZER};

/* ---- the pool ------------------------------------------------------------------------------ */

int pg_async_init(const char *conninfo, unsigned max_open, unsigned max_idle)
{
    pga.conninfo = strdup(conninfo);
    if (pga.conninfo == NULL)
        return -ENOMEM;
    pga.max_open = max_open;
    pga.max_idle = max_idle;
    pga.enabled = true;
    return 0;
}

bool pg_async_enabled(void)
{
    return pga.enabled;
}

static void pg_conn_close(struct pg_conn *c)
{
    PQfinish(c->conn);
    free(c);
    pthread_mutex_lock(&pga.lock);
    pga.nopen--;
    pthread_mutex_unlock(&pga.lock);
}

void pg_async_close(void)
{
    pthread_mutex_lock(&pga.lock);
    struct pg_conn *c = pga.idle;
    pga.idle = NULL;
    pga.nidle = 0;
    pthread_mutex_unlock(&pga.lock);
    while (c != NULL) {
        struct pg_conn *next = c->next;
        pg_conn_close(c);
        c = next;
    }
    free(pga.conninfo);
    pga.conninfo = NULL;
    pga.enabled = false;
}

/* A connection back from an operation that used it cleanly: to the first waiter, else idle,
 * else closed. The waiter is woken through its eventfd and finds the connection in o->c. */
static void pg_conn_release(struct pg_conn *c)
{
    pthread_mutex_lock(&pga.lock);
    struct pg_op *w = pga.waiters;
    if (w != NULL) {
        pga.waiters = w->next_waiter;
        if (pga.waiters == NULL)
            pga.waiters_tail = NULL;
        w->c = c;
        pthread_mutex_unlock(&pga.lock);
        uint64_t one = 1;
        while (write(w->wakefd, &one, sizeof(one)) < 0 && errno == EINTR)
            ;
        return;
    }
    bool keep = pga.nidle < pga.max_idle;
    if (keep) {
        c->next = pga.idle;
        pga.idle = c;
        pga.nidle++;
    }
    pthread_mutex_unlock(&pga.lock);
    if (!keep)
        pg_conn_close(c);
}

/* A connection that is gone (or whose state is unknown): closed, and a waiter, if any, may
 * open one in its place. */
static void pg_conn_discard(struct pg_conn *c)
{
    atomic_fetch_add_explicit(&pga.failures, 1, memory_order_relaxed);
    pg_conn_close(c);
    pthread_mutex_lock(&pga.lock);
    struct pg_op *w = pga.waiters;
    if (w != NULL) {
        pga.waiters = w->next_waiter;
        if (pga.waiters == NULL)
            pga.waiters_tail = NULL;
    }
    pthread_mutex_unlock(&pga.lock);
    if (w != NULL) { /* no connection for it: it will try to open one */
        uint64_t one = 1;
        while (write(w->wakefd, &one, sizeof(one)) < 0 && errno == EINTR)
            ;
    }
}

/* ---- one operation ------------------------------------------------------------------------- */

struct pg_op *pg_op_create(const struct db_op *op)
{
    struct pg_op *o = calloc(1, sizeof(*o));
    if (o != NULL) {
        o->op = op;
        o->wakefd = -1;
    }
    return o;
}

int pg_op_result(const struct pg_op *o)
{
    return o->rc;
}

/* Leaves the waiters' queue (a timeout, or the end of the request). Returns the connection
 * handed to us meanwhile, if one was. */
static void pg_op_unqueue(struct pg_op *o)
{
    pthread_mutex_lock(&pga.lock);
    struct pg_op **p = &pga.waiters, *prev = NULL;
    while (*p != NULL && *p != o) {
        prev = *p;
        p = &(*p)->next_waiter;
    }
    if (*p == o) {
        *p = o->next_waiter;
        if (pga.waiters_tail == o)
            pga.waiters_tail = prev;
    }
    pthread_mutex_unlock(&pga.lock);
}

void pg_op_destroy(struct pg_op *o)
{
    if (o == NULL)
        return;
    if (o->phase == PG_QUEUED)
        pg_op_unqueue(o);
    PQclear(o->result);
    if (o->c != NULL) /* abandoned half-way: the session's state is unknown */
        pg_conn_discard(o->c);
    if (o->wakefd >= 0)
        close(o->wakefd);
    free(o);
}

static enum req_wait pg_op_end(struct pg_op *o, int rc)
{
    if (o->c != NULL) {
        if (rc == -EIO || rc == -ETIMEDOUT || pg_conn_broken(o->c->conn, o->result))
            pg_conn_discard(o->c);
        else
            pg_conn_release(o->c);
        o->c = NULL;
    }
    PQclear(o->result);
    o->result = NULL;
    o->rc = rc == -ETIMEDOUT ? -EIO : rc;
    o->phase = PG_DONE;
    return REQ_DONE;
}

/* Waits for the connection's socket (or the eventfd while queued). */
static enum req_wait pg_op_wait(struct req_task *t, struct pg_op *o, int fd, unsigned events)
{
    o->waited = true;
    return req_task_await_fd(t, t->pc, fd, events, PG_ASYNC_TIMEOUT_MS);
}

/* ---- connecting and preparing -------------------------------------------------------------- */

/* Each phase below returns true with the step's answer in *w (a wait, or REQ_DONE when the
 * operation has ended), or false to go on with the next phase at once. */
static bool pg_stop(enum req_wait *w, enum req_wait v)
{
    *w = v;
    return true;
}

/* Takes an idle connection, opens one, or queues for one. Returns false to go on at once. */
static bool pg_op_acquire(struct req_task *t, struct pg_op *o, enum req_wait *w)
{
    pthread_mutex_lock(&pga.lock);
    struct pg_conn *c = pga.idle;
    bool open = false;
    if (c != NULL) {
        pga.idle = c->next;
        pga.nidle--;
    } else if (pga.max_open == 0 || pga.nopen < pga.max_open) {
        pga.nopen++;
        open = true;
    } else {
        if (o->wakefd < 0)
            o->wakefd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
        if (o->wakefd >= 0) {
            o->next_waiter = NULL;
            if (pga.waiters_tail)
                pga.waiters_tail->next_waiter = o;
            else
                pga.waiters = o;
            pga.waiters_tail = o;
        }
    }
    pthread_mutex_unlock(&pga.lock);
    if (c != NULL) {
        o->c = c;
        o->phase = c->prepared ? PG_IDLE : PG_PREPARING;
        return false;
    }
    if (!open) {
        if (o->wakefd < 0)
            return pg_stop(w, pg_op_end(o, -ENOMEM));
        atomic_fetch_add_explicit(&pga.waits, 1, memory_order_relaxed);
        o->phase = PG_QUEUED;
        return pg_stop(w, pg_op_wait(t, o, o->wakefd, REQ_FD_READ));
    }
    const char *keys[PG_PARAMS_MAX], *values[PG_PARAMS_MAX];
    pg_conn_params(pga.conninfo, keys, values);
    atomic_fetch_add_explicit(&pga.connects, 1, memory_order_relaxed);
    o->c = calloc(1, sizeof(*o->c));
    if (o->c != NULL) {
        o->c->conn = PQconnectStartParams(keys, values, 1);
        pg_quiet(o->c->conn);
    }
    if (o->c == NULL || o->c->conn == NULL || PQstatus(o->c->conn) == CONNECTION_BAD ||
        PQsetnonblocking(o->c->conn, 1) != 0) {
        if (o->c == NULL) { /* nothing to discard: give the slot back */
            pthread_mutex_lock(&pga.lock);
            pga.nopen--;
            pthread_mutex_unlock(&pga.lock);
        }
        return pg_stop(w, pg_op_end(o, -EIO));
    }
    o->phase = PG_CONNECTING;
    o->poll = PGRES_POLLING_WRITING; /* libpq: wait for writability before the first poll */
    return pg_stop(w, pg_op_wait(t, o, PQsocket(o->c->conn), REQ_FD_WRITE));
}

/* Back from the queue: a connection was handed to us, or one was discarded and we may open
 * one, or our time ran out. */
static bool pg_op_queued(struct pg_op *o, enum req_wait *w)
{
    uint64_t n;
    while (read(o->wakefd, &n, sizeof(n)) < 0 && errno == EINTR)
        ;
    pthread_mutex_lock(&pga.lock);
    bool handed = o->c != NULL;
    pthread_mutex_unlock(&pga.lock);
    if (handed) {
        o->phase = o->c->prepared ? PG_IDLE : PG_PREPARING;
        return false;
    }
    if (o->waited) /* timed out in the queue (pg_op_step saw -ETIMEDOUT before us) */
        return pg_stop(w, pg_op_end(o, -EBUSY));
    o->phase = PG_ACQUIRE;
    return false;
}

static bool pg_op_connecting(struct req_task *t, struct pg_op *o, enum req_wait *w)
{
    o->poll = PQconnectPoll(o->c->conn);
    switch (o->poll) {
    case PGRES_POLLING_READING:
        return pg_stop(w, pg_op_wait(t, o, PQsocket(o->c->conn), REQ_FD_READ));
    case PGRES_POLLING_WRITING:
        return pg_stop(w, pg_op_wait(t, o, PQsocket(o->c->conn), REQ_FD_WRITE));
    case PGRES_POLLING_OK:
        o->phase = PG_PREPARING;
        o->prepare_next = 0;
        return false;
    default:
        return pg_stop(w, pg_op_end(o, -EIO));
    }
}

/* ---- statements ---------------------------------------------------------------------------- */

/* Sends the operation's next statement. Returns false when none is left. */
static bool pg_op_send(struct pg_op *o, int *rc)
{
    const struct db_op *op = o->op;
    char a[24], b[24], c[24];
    const char *p[3] = {a, b, c};
    enum pg_stmt st = PG_ST_FORTUNES;
    int n = 1;
    struct pg_arrays arr = {0};
    switch (op->kind) {
    case DB_OP_WORLD_READ: /* one SELECT per row not read yet */
        while (o->next_row < op->n && op->rows[o->next_row].random_number != 0)
            o->next_row++;
        if (o->next_row == op->n)
            return false;
        o->sent_row = o->next_row++;
        st = PG_ST_WORLD_GET;
        snprintf(a, sizeof(a), "%d", (int)op->rows[o->sent_row].id);
        break;
    case DB_OP_WORLD_WRITE:
        if (o->sent || (*rc = pg_world_arrays(op->rows, op->n, &arr)) != 0)
            return false;
        st = PG_ST_WORLD_UPDATE;
        p[0] = arr.ids;
        p[1] = arr.values;
        n = 2;
        break;
    case DB_OP_FORTUNES:
        st = PG_ST_FORTUNES;
        n = 0;
        break;
    case DB_OP_ITEM_INSERT:
    case DB_OP_ITEM_REPLACE:
        st = op->kind == DB_OP_ITEM_INSERT ? PG_ST_ITEM_INSERT : PG_ST_ITEM_REPLACE;
        p[0] = op->item->name;
        snprintf(b, sizeof(b), "%lld", (long long)op->item->qty);
        snprintf(c, sizeof(c), "%lld", (long long)op->item->id);
        n = op->kind == DB_OP_ITEM_INSERT ? 2 : 3;
        break;
    case DB_OP_ITEM_GET:
    case DB_OP_ITEM_DELETE:
        st = op->kind == DB_OP_ITEM_GET ? PG_ST_ITEM_GET : PG_ST_ITEM_DELETE;
        snprintf(a, sizeof(a), "%lld", (long long)op->id);
        break;
    case DB_OP_ITEM_LIST:
        st = PG_ST_ITEM_LIST;
        snprintf(a, sizeof(a), "%lld", (long long)op->after);
        snprintf(b, sizeof(b), "%d", op->limit);
        n = 2;
        break;
    }
    if (op->kind != DB_OP_WORLD_READ && o->sent)
        return false;
    o->sent = true;
    if (PQsendQueryPrepared(o->c->conn, pg_stmt_name[st], n, p, NULL, NULL, 0) == 0)
        *rc = -EIO;
    pg_arrays_free(&arr);
    return *rc == 0;
}

/* A statement's result, into the operation's destinations. */
static int pg_op_apply(struct pg_op *o, const PGresult *res)
{
    const struct db_op *op = o->op;
    int rc = pg_result_errno(res);
    if (rc != 0)
        return rc;
    switch (op->kind) {
    case DB_OP_WORLD_READ:
        return pg_world_row(res, &op->rows[o->sent_row].random_number);
    case DB_OP_WORLD_WRITE:
        return 0;
    case DB_OP_FORTUNES:
        return pg_fortune_rows(res, op->fortune_cb, op->ctx);
    case DB_OP_ITEM_INSERT:
        return pg_id_row(res, &op->item->id);
    case DB_OP_ITEM_GET:
        return PQntuples(res) == 1 ? pg_item_row(res, 0, op->item) : -ENOENT;
    case DB_OP_ITEM_REPLACE:
    case DB_OP_ITEM_DELETE:
        return pg_changed(res);
    case DB_OP_ITEM_LIST:
        return pg_item_rows(res, op->item_cb, op->ctx);
    }
    return -EINVAL;
}

/* Something is out: push it to the socket, then collect its result until libpq says the
 * command is complete (PQgetResult gives NULL). libpq's rule for a non-blocking connection: while
 * PQflush says more is left to send, wait for the socket to be writable or readable, and read
 * what arrives, or the server, blocked writing to us, may never read the rest. */
static bool pg_op_sent(struct req_task *t, struct pg_op *o, enum req_wait *w)
{
    PGconn *conn = o->c->conn;
    int fd = PQsocket(conn);
    int flushed = PQflush(conn);
    if (flushed < 0 || PQconsumeInput(conn) == 0)
        return pg_stop(w, pg_op_end(o, -EIO));
    if (flushed > 0)
        return pg_stop(w, pg_op_wait(t, o, fd, REQ_FD_READ | REQ_FD_WRITE));
    while (!PQisBusy(conn)) {
        PGresult *res = PQgetResult(conn);
        if (res == NULL) { /* the command is complete */
            int rc = o->sent_prepare ? pg_result_errno(o->result) : pg_op_apply(o, o->result);
            PQclear(o->result);
            o->result = NULL;
            if (rc != 0)
                return pg_stop(w, pg_op_end(o, rc));
            if (o->sent_prepare)
                o->prepare_next++;
            o->phase = o->sent_prepare ? PG_PREPARING : PG_IDLE;
            return false;
        }
        if (o->result == NULL)
            o->result = res;
        else
            PQclear(res); /* one result per statement here; anything more is dropped */
    }
    return pg_stop(w, pg_op_wait(t, o, fd, REQ_FD_READ));
}

static bool pg_op_next(struct pg_op *o, enum req_wait *w)
{
    int rc = 0;
    if (o->phase == PG_PREPARING) {
        if (o->prepare_next == PG_ST_COUNT) {
            o->c->prepared = true;
            o->phase = PG_IDLE;
            return false;
        }
        o->sent_prepare = true;
        if (PQsendPrepare(o->c->conn, pg_stmt_name[o->prepare_next], pg_stmt_sql[o->prepare_next],
                          0, NULL) == 0)
            return pg_stop(w, pg_op_end(o, -EIO));
        o->phase = PG_SENT;
        return false;
    }
    o->sent_prepare = false;
    if (pg_op_send(o, &rc)) {
        o->phase = PG_SENT;
        return false;
    }
    return pg_stop(w, pg_op_end(o, rc)); /* rc 0: every statement has had its answer */
}

enum req_wait pg_op_step(struct req_task *t, struct pg_op *o)
{
    enum req_wait w = REQ_DONE;
    bool timed_out = o->waited && t->rc == -ETIMEDOUT;
    if (timed_out && o->phase != PG_QUEUED)
        return pg_op_end(o, -ETIMEDOUT);
    if (timed_out)
        pg_op_unqueue(o); /* then pg_op_queued sees whether a connection came meanwhile */
    o->waited = timed_out;
    for (bool stop = false; !stop;) {
        switch (o->phase) {
        case PG_ACQUIRE:
            stop = pg_op_acquire(t, o, &w);
            break;
        case PG_QUEUED:
            stop = pg_op_queued(o, &w);
            break;
        case PG_CONNECTING:
            stop = pg_op_connecting(t, o, &w);
            break;
        case PG_PREPARING:
        case PG_IDLE:
            stop = pg_op_next(o, &w);
            break;
        case PG_SENT:
            stop = pg_op_sent(t, o, &w);
            break;
        case PG_DONE:
            return REQ_DONE;
        }
    }
    return w;
}

/* ---- figures ------------------------------------------------------------------------------- */

size_t pg_async_gauges(struct metrics_gauge *g, size_t cap)
{
    if (!pga.enabled || cap < 6)
        return 0;
    pthread_mutex_lock(&pga.lock);
    unsigned open = pga.nopen, idle = pga.nidle, waiting = 0;
    for (struct pg_op *o = pga.waiters; o != NULL; o = o->next_waiter)
        waiting++;
    pthread_mutex_unlock(&pga.lock);
    size_t n = 0;
    g[n++] = METRICS_GAUGE("pg_connections_open", "PostgreSQL connections of the pool", open);
    g[n++] = METRICS_GAUGE("pg_connections_idle", "Of those, idle", idle);
    g[n++] = METRICS_GAUGE("pg_connections_in_use", "Of those, running an operation",
                           open > idle ? open - idle : 0);
    g[n++] = METRICS_GAUGE("pg_waiting_operations", "Operations queued for a connection", waiting);
    g[n++] = METRICS_GAUGE("pg_connects_total", "Connections opened",
                           (double)atomic_load(&pga.connects));
    g[n++] = METRICS_GAUGE("pg_connection_failures_total",
                           "Connections closed because they broke or timed out",
                           (double)atomic_load(&pga.failures));
    return n;
}
