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
#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

enum acceptor_state { ACCEPTOR_SERVING, ACCEPTOR_QUIESCING, ACCEPTOR_QUIESCED, ACCEPTOR_STOPPING };

struct acceptor {
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
    a->wakefd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (a->wakefd < 0) {
        int e = -errno;
        free(a);
        return e;
    }
    *out = a;
    return 0;
}

void acceptor_wake_cb(void *arg)
{
    struct acceptor *a = arg;
    static const uint64_t one = 1;
    if (atomic_exchange(&a->woken, true))
        return; /* the acceptor has a wake-up coming and has not run since */
    while (write(a->wakefd, &one, sizeof(one)) < 0 && errno == EINTR)
        ;
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
        int n = poll(pf, 2, http_server_timeout_ms(a->srv));
        if (n > 0 && (pf[1].revents & POLLIN))
            acceptor_woken(a);
        int expect = ACCEPTOR_QUIESCING;
        if (atomic_load(&a->state) == ACCEPTOR_QUIESCING) {
            http_server_quiesce(a->srv);
            atomic_compare_exchange_strong(&a->state, &expect, ACCEPTOR_QUIESCED);
        }
        uint64_t t0 = trace_begin();
        http_server_run(a->srv); /* where requests are queued and answers written */
        trace_slice(t0, "MHD_run", NULL, 0);
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
    acceptor_wake_cb(a);
    /* Shutdown, not a hot path: a short sleep per look is fine. */
    while (atomic_load(&a->state) == ACCEPTOR_QUIESCING)
        usleep(1000);
}

void acceptor_stop(struct acceptor *a)
{
    if (!a->started)
        return;
    atomic_store(&a->state, ACCEPTOR_STOPPING);
    atomic_store(&a->woken, false);
    acceptor_wake_cb(a);
    pthread_join(a->thread, NULL);
    a->started = false;
}

void acceptor_destroy(struct acceptor *a)
{
    if (a == NULL)
        return;
    close(a->wakefd);
    free(a);
}
