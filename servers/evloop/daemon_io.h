/* daemon_io.h - libmicrohttpd driven by the loop: its epoll set nested in ours.
 *
 * A daemon started with MHD_USE_EPOLL and no thread of its own keeps every socket it owns (the
 * listening socket, the connections, its inter-thread channel) in one epoll set and exports
 * that set's fd. A ready epoll fd is itself readable, so the loop watches it like any other
 * fd and calls MHD_run when it is; MHD_run then does its own epoll_wait(0) and works through
 * what it finds: accepts, reads, parses, calls the access handler, writes.
 *
 * libmicrohttpd also has work that no fd announces: connections whose input is already in
 * their buffers (pipelined requests), and idle connections to time out. MHD_get_timeout says
 * when it next needs a turn; a prepare hook asks it before every poll and keeps a loop timer
 * at that deadline, so the loop never sleeps past it. This is how libuv programs embed other
 * event-driven libraries (curl's multi interface, c-ares): an io watcher for the fd, a timer
 * for the timeout.
 *
 * Resuming a suspended connection is the one thing the loop must be told about. With a polling
 * thread of its own, MHD_resume_connection wakes libmicrohttpd through an eventfd (its ITC);
 * with external polling there is no ITC at all (microhttpd.h: MHD_USE_ITC "is ignored with
 * any external sockets polling"), so the resumed connection would sit until some other
 * socket woke the daemon. Whoever resumes connections calls daemon_io_feed, and the daemon
 * gets a turn in the loop's next pending round: one MHD_run for all the resumes since the
 * last, which picks them all up in one walk of its suspended list.
 */
#ifndef TRIAD_EVLOOP_DAEMON_IO_H
#define TRIAD_EVLOOP_DAEMON_IO_H

#include "loop.h"

#include <stdint.h>

struct MHD_Daemon;

struct daemon_io {
    struct loop *loop;
    struct MHD_Daemon *daemon;
    struct loop_io io;        /* the daemon's epoll fd */
    struct loop_timer timer;  /* the daemon's next timeout */
    struct loop_hook prepare; /* re-arms `timer` before each poll */
    bool ran;                 /* MHD_run was called since the last prepare */
    uint64_t runs;            /* MHD_run calls */
};

/* Attaches a started daemon (MHD_USE_EPOLL, no internal thread) to the loop. Returns 0 or a
 * negative errno. */
int daemon_io_start(struct daemon_io *dio, struct loop *l, struct MHD_Daemon *daemon);
/* Gives the daemon a turn in the next pending round: call after MHD_resume_connection. */
void daemon_io_feed(struct daemon_io *dio);
/* Detaches it; the daemon is not stopped. */
void daemon_io_stop(struct daemon_io *dio);

#endif
