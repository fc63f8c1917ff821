/* acceptor.c - the acceptor thread (see acceptor.h). */
#include "acceptor.h"

#include "check.h"
#include "http.h"
#include "trace.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <time.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

enum acceptor_state { ACCEPTOR_SERVING, ACCEPTOR_QUIESCING, ACCEPTOR_QUIESCED, ACCEPTOR_STOPPING };

struct acceptor {
    /* Held by whoever runs the server: the acceptor, or a worker writing its own answer. A
     * server is run by one thread at a time (http.h). */
    pthread_mutex_t drive;
    int wakefd;
    atomic_bool woken; /* an eventfd write is pending: further wake-ups need none */
    _Atomic int state; /* enum acceptor_state */
    struct http_server *srv;
    pthread_t thread;
    bool started;
};

int acceptor_create(struct acceptor **out)
{
    struct acceptor *a = calloc(1, sizeof(*a));
    if (a == NULL)
        return -ENOMEM;
    pthread_mutex_init(&a->drive, NULL);
    a->wakefd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (a->wakefd < 0) {
        int e = -errno;
        free(a);
        return e;
    }
    *out = a;
    return 0;
}

/* Wakes the acceptor: its next run picks up what was resumed. */
static void acceptor_wake(struct acceptor *a)
{
    static const uint64_t one = 1;
    if (atomic_exchange(&a->woken, true))
        return; /* the acceptor has a wake-up coming and has not run since */
    while (write(a->wakefd, &one, sizeof(one)) < 0 && errno == EINTR)
        ;
}

/* A worker has resumed its request. gthread's workers write their answers themselves; here the
 * worker runs the server once to send it, unless another thread is running the server right
 * now, in which case that run may already be past the point where it picks up resumed
 * connections: the acceptor is woken for another one.
 *
 * A run can also end with work libmicrohttpd has seen but not done: a connection it has just
 * answered stays on its ready list, out of the epoll set, until a read finds its socket empty.
 * The server's timeout is then 0, but the acceptor sleeps on the timeout it computed before
 * this run (up to a second) and on an epoll set that will not report that socket: without a
 * wake-up, the next request on a keep-alive connection would wait for it. */
void acceptor_wake_cb(void *arg)
{
    struct acceptor *a = arg;
    if (atomic_load_explicit(&a->state, memory_order_relaxed) == ACCEPTOR_SERVING &&
        pthread_mutex_trylock(&a->drive) == 0) {
        uint64_t t0 = trace_begin();
        http_server_run(a->srv);
        trace_slice(t0, "MHD_run", NULL, 0);
        bool pending = http_server_timeout_ms(a->srv) == 0;
        pthread_mutex_unlock(&a->drive);
        if (!pending)
            return;
    }
    acceptor_wake(a);
}

static void acceptor_woken(struct acceptor *a)
{
    uint64_t count;
    while (read(a->wakefd, &count, sizeof(count)) < 0 && errno == EINTR)
        ;
    /* Cleared before the run below: a resume after this point writes the eventfd again. */
    atomic_store(&a->woken, false);
}

static void *acceptor_main(void *arg)
{
    struct acceptor *a = arg;
    struct pollfd pf[2] = {{.fd = http_server_fd(a->srv), .events = POLLIN},
                           {.fd = a->wakefd, .events = POLLIN}};
    trace_thread_name("acceptor", -1, 1);
    while (atomic_load(&a->state) != ACCEPTOR_STOPPING) {
        pthread_mutex_lock(&a->drive);
        int timeout = http_server_timeout_ms(a->srv);
        pthread_mutex_unlock(&a->drive);
        int n = poll(pf, 2, timeout);
        if (n > 0 && (pf[1].revents & POLLIN))
            acceptor_woken(a);
        pthread_mutex_lock(&a->drive);
        int expect = ACCEPTOR_QUIESCING;
        if (atomic_load(&a->state) == ACCEPTOR_QUIESCING) {
            http_server_quiesce(a->srv);
            atomic_compare_exchange_strong(&a->state, &expect, ACCEPTOR_QUIESCED);
        }
        uint64_t t0 = trace_begin();
        http_server_run(a->srv); /* where answers are written */
        trace_slice(t0, "MHD_run", NULL, 0);
        pthread_mutex_unlock(&a->drive);
    }
    return NULL;
}

int acceptor_start(struct acceptor *a, struct http_server *srv)
{
    a->srv = srv;
    int rc = pthread_create(&a->thread, NULL, acceptor_main, a);
    a->started = rc == 0;
    return -rc;
}

void acceptor_quiesce(struct acceptor *a)
{
    atomic_store(&a->state, ACCEPTOR_QUIESCING);
    acceptor_wake(a);
    /* Shutdown, not a hot path: a short sleep per look is fine. */
    struct timespec ms = {0, 1000000};
    while (atomic_load(&a->state) == ACCEPTOR_QUIESCING)
        nanosleep(&ms, NULL);
}

void acceptor_stop(struct acceptor *a)
{
    if (!a->started)
        return;
    atomic_store(&a->state, ACCEPTOR_STOPPING);
    atomic_store(&a->woken, false);
    acceptor_wake(a);
    pthread_join(a->thread, NULL);
    a->started = false;
}

void acceptor_destroy(struct acceptor *a)
{
    if (a == NULL)
        return;
    close(a->wakefd);
    pthread_mutex_destroy(&a->drive);
    free(a);
}
