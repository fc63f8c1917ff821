/* loop.h - the event loop: one thread, one epoll set, libuv's phases.
 *
 * A loop owns an epoll set and four kinds of handles, each the counterpart of a libuv one:
 *
 *   loop_io      a file descriptor watched for readiness (uv_poll_t, uv__io_t): level-triggered,
 *                like every libuv watcher on Linux. A watcher can also be fed: its callback
 *                then runs in the next pending round whatever the fd says (uv__io_feed).
 *   loop_timer   a deadline in milliseconds on the loop's cached clock, optionally repeating
 *                (uv_timer_t). Held in a binary min-heap (shared/heap.h).
 *   loop_hook    a callback run once per iteration, just before polling (prepare, uv_prepare_t)
 *                or just after (check, uv_check_t: Node's setImmediate lives there).
 *   loop_async   the one thread-safe door into the loop (uv_async_t): any thread calls
 *                loop_async_send, the loop runs the callback in its poll phase. Sends that
 *                arrive before the loop gets round to it are coalesced into one callback.
 *
 * and a close queue (uv_close): memory that holds a handle is released in the close phase,
 * never inside the handle's own callback.
 *
 * Every function here except loop_async_send must be called on the loop's thread. Handles
 * live in the caller's memory (init/start/stop), the loop itself behind an opaque pointer.
 * See loop.c for the phases.
 */
#ifndef TRIAD_EVLOOP_LOOP_H
#define TRIAD_EVLOOP_LOOP_H

#include "heap.h"

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

struct loop;

struct loop_io;
typedef void (*loop_io_cb)(struct loop_io *io, uint32_t events);
struct loop_io {
    int fd;
    loop_io_cb cb; /* gets the EPOLL* bits that fired, or 0 when fed (loop_io_feed) */
    struct loop_io *pending_next;
    bool pending;
};

struct loop_timer;
typedef void (*loop_timer_cb)(struct loop_timer *t);
struct loop_timer {
    struct heap_node node; /* node.key: the deadline, in loop milliseconds */
    uint64_t repeat_ms;    /* 0: fires once */
    loop_timer_cb cb;
    bool active;
};

struct loop_hook;
typedef void (*loop_hook_cb)(struct loop_hook *h);
struct loop_hook {
    struct loop_hook *next;
    loop_hook_cb cb;
    bool active;
};

struct loop_async;
typedef void (*loop_async_cb)(struct loop_async *a);
struct loop_async {
    struct loop_io io;  /* an eventfd */
    atomic_int pending; /* 1 once a send has written the eventfd and the loop has not run cb */
    loop_async_cb cb;
};

struct loop_closing;
typedef void (*loop_closing_cb)(struct loop_closing *c);
struct loop_closing {
    struct loop_closing *next;
    loop_closing_cb cb;
};

/* ---- the loop ---------------------------------------------------------------------------- */

/* Returns 0 or a negative errno (no epoll set, no memory). */
int loop_create(struct loop **out);
/* Every handle must have been stopped first. */
void loop_destroy(struct loop *l);

/* Runs iterations until loop_stop; returns 0, or a negative errno if polling failed. */
int loop_run(struct loop *l);
/* Makes loop_run return at the end of the current iteration. */
void loop_stop(struct loop *l);

/* The cached time, in milliseconds of CLOCK_MONOTONIC, updated once per iteration (and after
 * each poll): every callback of one phase sees the same "now", as in libuv. */
uint64_t loop_now(const struct loop *l);
/* Figures for the gauges. */
uint64_t loop_iterations(const struct loop *l);
unsigned loop_timers_active(const struct loop *l);

/* ---- handles ----------------------------------------------------------------------------- */

/* Watches fd for `events` (EPOLLIN...). Returns 0 or a negative errno. */
int loop_io_start(struct loop *l, struct loop_io *io, int fd, uint32_t events, loop_io_cb cb);
/* Stops watching; safe from any callback, including those of the same poll batch. */
void loop_io_stop(struct loop *l, struct loop_io *io);
/* Runs io's callback (with events 0) in the next pending round, once however often it is fed
 * before then: right after this iteration's poll if fed before its end, else at the start of
 * the next iteration, whose poll then does not sleep. */
void loop_io_feed(struct loop *l, struct loop_io *io);

void loop_timer_init(struct loop_timer *t, loop_timer_cb cb);
/* (Re)starts a timer: first fires timeout_ms after loop_now(), then every repeat_ms if not 0.
 * Returns 0, or -ENOMEM (the timer is then stopped). */
int loop_timer_start(struct loop *l, struct loop_timer *t, uint64_t timeout_ms, uint64_t repeat_ms);
void loop_timer_stop(struct loop *l, struct loop_timer *t);

/* Prepare hooks run before the poll, check hooks after. A hook's callback may stop that hook
 * but no other. */
void loop_prepare_start(struct loop *l, struct loop_hook *h, loop_hook_cb cb);
void loop_prepare_stop(struct loop *l, struct loop_hook *h);
void loop_check_start(struct loop *l, struct loop_hook *h, loop_hook_cb cb);
void loop_check_stop(struct loop *l, struct loop_hook *h);

/* Returns 0 or a negative errno (no eventfd). */
int loop_async_init(struct loop *l, struct loop_async *a, loop_async_cb cb);
/* From any thread: makes the loop run a->cb soon. Coalesced; never blocks. */
void loop_async_send(struct loop_async *a);
void loop_async_close(struct loop *l, struct loop_async *a);

/* Runs cb(c) in this or the next iteration's close phase. */
void loop_closing_add(struct loop *l, struct loop_closing *c, loop_closing_cb cb);

#endif
