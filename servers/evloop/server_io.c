/* server_io.c - the HTTP server on the loop (see server_io.h). */
#include "server_io.h"

#include "check.h"
#include "http.h"
#include "trace.h"

#include <sys/epoll.h>

static void server_io_run(struct server_io *sio)
{
    sio->ran = true;
    uint64_t t0 = trace_begin();
    http_server_run(sio->srv); /* new requests' first steps run in here */
    trace_slice(t0, "http", NULL, 0);
}

static void server_io_ready_cb(struct loop_io *io, uint32_t events)
{
    (void)events;
    server_io_run(TRIAD_CONTAINER_OF(io, struct server_io, io));
}

static void server_io_timeout_cb(struct loop_timer *t)
{
    struct server_io *sio = TRIAD_CONTAINER_OF(t, struct server_io, timer);
    /* If the poll already ran the server this iteration, that turn did what the timeout was
     * for; the next prepare asks again. */
    if (!sio->ran)
        server_io_run(sio);
}

/* Keeps the timer at the server's next deadline; the heap is touched only when it moves. */
static void server_io_prepare_cb(struct loop_hook *h)
{
    struct server_io *sio = TRIAD_CONTAINER_OF(h, struct server_io, prepare);
    sio->ran = false;
    int ms = http_server_timeout_ms(sio->srv);
    if (ms < 0) {
        loop_timer_stop(sio->loop, &sio->timer);
        return;
    }
    uint64_t deadline = loop_now(sio->loop) + (uint64_t)ms;
    if (sio->timer.active && sio->timer.node.key == deadline)
        return;
    if (loop_timer_start(sio->loop, &sio->timer, (uint64_t)ms, 0) != 0)
        server_io_run(sio); /* no memory for the heap: give the server its turn now instead */
}

void server_io_wake_cb(void *arg)
{
    struct server_io *sio = arg;
    loop_io_feed(sio->loop, &sio->io);
}

int server_io_start(struct server_io *sio, struct loop *l, struct http_server *srv)
{
    sio->loop = l;
    sio->srv = srv;
    sio->ran = false;
    loop_timer_init(&sio->timer, server_io_timeout_cb);
    int rc = loop_io_start(l, &sio->io, http_server_fd(srv), EPOLLIN, server_io_ready_cb);
    if (rc != 0)
        return rc;
    loop_prepare_start(l, &sio->prepare, server_io_prepare_cb);
    return 0;
}

void server_io_stop(struct server_io *sio)
{
    loop_prepare_stop(sio->loop, &sio->prepare);
    loop_timer_stop(sio->loop, &sio->timer);
    loop_io_stop(sio->loop, &sio->io);
}
