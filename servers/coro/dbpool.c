/* dbpool.c - the connection pool (see dbpool.h). The lock is a plain mutex: it is never held
 * across a switch, only around a few pointer updates. */
#include "dbpool.h"

#include "coro.h"
#include "db.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>

struct dbpool_conn {
    struct db *db;
    struct dbpool_conn *next;
};

static struct {
    pthread_mutex_t lock;
    const char *path;
    unsigned max_idle;
    struct dbpool_conn *idle; /* a stack: the most recently used connection is warmest */
    _Atomic unsigned n_idle, n_open;
} dbpool;

int dbpool_init(const char *path, unsigned max_idle)
{
    pthread_mutex_init(&dbpool.lock, NULL);
    dbpool.path = path;
    dbpool.max_idle = max_idle;
    return 0;
}

void dbpool_close(void)
{
    pthread_mutex_lock(&dbpool.lock);
    while (dbpool.idle) {
        struct dbpool_conn *c = dbpool.idle;
        dbpool.idle = c->next;
        db_close(c->db);
        free(c);
        atomic_fetch_sub(&dbpool.n_idle, 1);
        atomic_fetch_sub(&dbpool.n_open, 1);
    }
    pthread_mutex_unlock(&dbpool.lock);
}

int dbpool_get(struct db **out)
{
    pthread_mutex_lock(&dbpool.lock);
    struct dbpool_conn *c = dbpool.idle;
    if (c) {
        dbpool.idle = c->next;
        atomic_fetch_sub(&dbpool.n_idle, 1);
    }
    pthread_mutex_unlock(&dbpool.lock);
    if (c) {
        *out = c->db;
        free(c);
        return 0;
    }
    coro_enter_syscall();
    int rc = db_open(dbpool.path, out);
    coro_exit_syscall();
    if (rc == 0)
        atomic_fetch_add(&dbpool.n_open, 1);
    return rc;
}

void dbpool_put(struct db *db)
{
    struct dbpool_conn *c = malloc(sizeof(*c));
    pthread_mutex_lock(&dbpool.lock);
    bool keep = c != NULL && atomic_load(&dbpool.n_idle) < dbpool.max_idle;
    if (keep) {
        c->db = db;
        c->next = dbpool.idle;
        dbpool.idle = c;
        atomic_fetch_add(&dbpool.n_idle, 1);
    }
    pthread_mutex_unlock(&dbpool.lock);
    if (keep)
        return; /* cppcheck-suppress memleak ; c is on the idle list */
    free(c);
    atomic_fetch_sub(&dbpool.n_open, 1);
    coro_enter_syscall();
    db_close(db);
    coro_exit_syscall();
}

unsigned dbpool_open_count(void)
{
    return atomic_load(&dbpool.n_open);
}

unsigned dbpool_idle_count(void)
{
    return atomic_load(&dbpool.n_idle);
}
