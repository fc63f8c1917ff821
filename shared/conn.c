/* conn.c - the connection table and its sweep (see conn.h). */
#include "conn.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <time.h>

struct conn {
    int fd;
    unsigned head_timeout_ms, body_timeout_ms; /* 0: no deadline */
    _Atomic int phase;                         /* enum conn_phase */
    _Atomic uint64_t since_ms;                 /* when the current phase began */
    void *req;   /* the request begun and not yet completed; the connection's thread only */
    bool linger; /* answered early: close in stages (the connection's thread only) */
    struct conn *prev, *next;
};

static pthread_mutex_t conn_lock = PTHREAD_MUTEX_INITIALIZER;
static struct conn *conn_list;

static uint64_t conn_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

struct conn *conn_open(int fd, unsigned head_timeout_s, unsigned body_timeout_s)
{
    struct conn *c = calloc(1, sizeof(*c));
    if (c == NULL)
        return NULL;
    c->fd = fd;
    c->head_timeout_ms = head_timeout_s * 1000u;
    c->body_timeout_ms = body_timeout_s * 1000u;
    atomic_store(&c->phase, CONN_HEAD);
    atomic_store(&c->since_ms, conn_now_ms());
    pthread_mutex_lock(&conn_lock);
    c->next = conn_list;
    if (conn_list)
        conn_list->prev = c;
    conn_list = c;
    pthread_mutex_unlock(&conn_lock);
    return c;
}

void *conn_close(struct conn *c)
{
    if (c == NULL)
        return NULL;
    void *orphan = c->req;
    pthread_mutex_lock(&conn_lock);
    if (c->prev)
        c->prev->next = c->next;
    else
        conn_list = c->next;
    if (c->next)
        c->next->prev = c->prev;
    pthread_mutex_unlock(&conn_lock);
    free(c);
    return orphan;
}

void conn_req_set(struct conn *c, void *req)
{
    if (c != NULL)
        c->req = req;
}

int conn_fd(const struct conn *c)
{
    return c->fd;
}

void conn_linger_set(struct conn *c)
{
    if (c != NULL)
        c->linger = true;
}

bool conn_lingers(const struct conn *c)
{
    return c != NULL && c->linger;
}

void conn_phase_set(struct conn *c, enum conn_phase phase)
{
    if (c == NULL)
        return;
    atomic_store_explicit(&c->since_ms, conn_now_ms(), memory_order_relaxed);
    atomic_store_explicit(&c->phase, phase, memory_order_relaxed);
}

unsigned conn_sweep(void)
{
    uint64_t now = conn_now_ms();
    unsigned n = 0;
    pthread_mutex_lock(&conn_lock);
    for (struct conn *c = conn_list; c != NULL; c = c->next) {
        int phase = atomic_load_explicit(&c->phase, memory_order_relaxed);
        unsigned limit = phase == CONN_HEAD   ? c->head_timeout_ms
                         : phase == CONN_BODY ? c->body_timeout_ms
                                              : 0;
        uint64_t since = atomic_load_explicit(&c->since_ms, memory_order_relaxed);
        if (limit != 0 && now > since && now - since > limit) {
            shutdown(c->fd, SHUT_RDWR);
            n++;
        }
    }
    pthread_mutex_unlock(&conn_lock);
    return n;
}
