/* daemon_io.c - libmicrohttpd on the loop (see daemon_io.h). */
#include "daemon_io.h"

#include "check.h"

#include <errno.h>
#include <microhttpd.h>
#include <sys/epoll.h>

static void daemon_io_run(struct daemon_io *dio)
{
    dio->ran = true;
    dio->runs++;
    enum MHD_Result rc = MHD_run(dio->daemon);
    /* MHD_NO means a misused daemon (wrong flags, its epoll fd gone), never a bad connection:
     * libmicrohttpd closes those itself. */
    TRIAD_ASSERT(rc == MHD_YES, "MHD_run failed");
}

static void daemon_io_ready_cb(struct loop_io *io, uint32_t events)
{
    (void)events;
    daemon_io_run(TRIAD_CONTAINER_OF(io, struct daemon_io, io));
}

static void daemon_io_timeout_cb(struct loop_timer *t)
{
    struct daemon_io *dio = TRIAD_CONTAINER_OF(t, struct daemon_io, timer);
    /* If the poll already ran the daemon this iteration, that turn did what the timeout was
     * for; the next prepare asks again. */
    if (!dio->ran)
        daemon_io_run(dio);
}

/* Keeps the timer at the daemon's next deadline; the heap is touched only when it moves. */
static void daemon_io_prepare_cb(struct loop_hook *h)
{
    struct daemon_io *dio = TRIAD_CONTAINER_OF(h, struct daemon_io, prepare);
    MHD_UNSIGNED_LONG_LONG ms;
    dio->ran = false;
    if (MHD_get_timeout(dio->daemon, &ms) != MHD_YES) {
        loop_timer_stop(dio->loop, &dio->timer);
        return;
    }
    uint64_t deadline = loop_now(dio->loop) + ms;
    if (dio->timer.active && dio->timer.node.key == deadline)
        return;
    if (loop_timer_start(dio->loop, &dio->timer, ms, 0) != 0)
        daemon_io_run(dio); /* no memory for the heap: give the daemon its turn now instead */
}

int daemon_io_start(struct daemon_io *dio, struct loop *l, struct MHD_Daemon *daemon)
{
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(daemon, MHD_DAEMON_INFO_EPOLL_FD);
    if (info == NULL)
        return -EINVAL;
    *dio = (struct daemon_io){.loop = l, .daemon = daemon};
    loop_timer_init(&dio->timer, daemon_io_timeout_cb);
    int rc = loop_io_start(l, &dio->io, info->epoll_fd, EPOLLIN, daemon_io_ready_cb);
    if (rc != 0)
        return rc;
    loop_prepare_start(l, &dio->prepare, daemon_io_prepare_cb);
    return 0;
}

void daemon_io_feed(struct daemon_io *dio)
{
    loop_io_feed(dio->loop, &dio->io);
}

void daemon_io_stop(struct daemon_io *dio)
{
    loop_prepare_stop(dio->loop, &dio->prepare);
    loop_timer_stop(dio->loop, &dio->timer);
    loop_io_stop(dio->loop, &dio->io);
}
