/* loop.c - the event loop (see loop.h).
 *
 * One iteration, in libuv >= 1.45's order (Node 20 bundles 1.46), after the timers have run
 * once before the first:
 *
 *     pending -> prepare -> poll -> pending (again, up to 8 rounds) -> check -> close
 *             -> update time -> timers
 *
 *   pending  watchers fed since the last round (loop_io_feed, libuv's uv__io_feed, which libuv
 *            uses for write completions and connect errors): their callbacks run as if their
 *            fd were ready. libmicrohttpd's runs here after its connections were resumed:
 *            right after the poll for those resumed by a pool completion, at the start of
 *            the next iteration for those resumed by a timer.
 *   idle     (uv_idle_t) not implemented: nothing here must run on every iteration whatever
 *            the poll finds. An active idle handle would force a poll timeout of 0.
 *   prepare  hooks that must see the loop just before it may sleep: the libmicrohttpd source
 *            re-arms its timeout timer here.
 *   poll     epoll_wait, level-triggered, up to 1024 events, for as long as the nearest timer
 *            allows (0 if there is pending or close work, forever if there are no timers);
 *            then each ready watcher's callback. Pool completions arrive here through their
 *            eventfd. (libuv also re-polls up to 48 times while a batch comes back full; with
 *            three fds that never happens here.)
 *   check    hooks that run right after the poll (setImmediate): the shutdown drain.
 *   close    callbacks of handles whose memory may now be freed.
 *   timers   every timer due at the cached "now", in deadline order, ties in start order;
 *            a timer started during this phase waits for the next one even if already due.
 *
 * libuv <= 1.44 (Debian 12's libuv1) ran the timers first in each iteration instead. The
 * difference shows in ordering puzzles (setTimeout(0) against I/O callbacks), not in latency.
 *
 * Tracing (trace.h): each iteration is a slice on the loop's track with one slice per phase
 * inside ("epoll_wait" inside "poll" is the time asleep); the callbacks record their own.
 *
 * Costs: a timer start or stop is O(log n) in active timers; each iteration calls
 * clock_gettime twice (vDSO, ~20 ns) and epoll_wait once.
 */
#include "loop.h"

#include "check.h"
#include "trace.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#define LOOP_EVENTS_MAX     1024 /* libuv's uv__io_poll: struct epoll_event events[1024] */
#define LOOP_PENDING_ROUNDS 8    /* libuv's uv_run: pending rounds after the poll */

struct loop {
    int epfd;
    uint64_t now_ms;
    uint64_t iterations;
    struct heap timers;
    struct loop_hook *prepare, *check;
    struct loop_io *pending, *pending_tail; /* fed watchers, FIFO */
    unsigned npending;
    struct loop_closing *closing;
    bool stopping;
    /* The poll batch being dispatched, so that loop_io_stop can forget a watcher whose event
     * is still waiting in it (libuv's uv__platform_invalidate_fd). */
    struct epoll_event *batch;
    int batch_len;
    struct epoll_event events[LOOP_EVENTS_MAX];
};

/* ---- the clock --------------------------------------------------------------------------- */

static void loop_update_time(struct loop *l)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    l->now_ms = (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

uint64_t loop_now(const struct loop *l)
{
    return l->now_ms;
}

uint64_t loop_iterations(const struct loop *l)
{
    return l->iterations;
}

unsigned loop_timers_active(const struct loop *l)
{
    return (unsigned)heap_len(&l->timers);
}

/* ---- creation ---------------------------------------------------------------------------- */

int loop_create(struct loop **out)
{
    struct loop *l = calloc(1, sizeof(*l));
    if (l == NULL)
        return -ENOMEM;
    l->epfd = epoll_create1(EPOLL_CLOEXEC);
    if (l->epfd < 0) {
        int e = -errno;
        free(l);
        return e;
    }
    heap_init(&l->timers);
    loop_update_time(l);
    *out = l;
    return 0;
}

void loop_destroy(struct loop *l)
{
    TRIAD_ASSERT(heap_len(&l->timers) == 0 && l->prepare == NULL && l->check == NULL,
                 "loop_destroy: handles still active");
    heap_close(&l->timers);
    close(l->epfd);
    free(l);
}

void loop_stop(struct loop *l)
{
    l->stopping = true;
}

/* ---- io watchers ------------------------------------------------------------------------- */

int loop_io_start(struct loop *l, struct loop_io *io, int fd, uint32_t events, loop_io_cb cb)
{
    struct epoll_event ev = {.events = events, .data.ptr = io};
    io->fd = fd;
    io->cb = cb;
    io->pending = false;
    return epoll_ctl(l->epfd, EPOLL_CTL_ADD, fd, &ev) == 0 ? 0 : -errno;
}

static void loop_pending_remove(struct loop *l, struct loop_io *io)
{
    struct loop_io *prev = NULL;
    for (struct loop_io *p = l->pending; p != NULL; prev = p, p = p->pending_next) {
        if (p != io)
            continue;
        if (prev != NULL)
            prev->pending_next = io->pending_next;
        else
            l->pending = io->pending_next;
        if (l->pending_tail == io)
            l->pending_tail = prev;
        l->npending--;
        break;
    }
    io->pending = false;
}

void loop_io_stop(struct loop *l, struct loop_io *io)
{
    epoll_ctl(l->epfd, EPOLL_CTL_DEL, io->fd, NULL);
    for (int i = 0; i < l->batch_len; i++)
        if (l->batch[i].data.ptr == io)
            l->batch[i].data.ptr = NULL;
    if (io->pending)
        loop_pending_remove(l, io);
}

void loop_io_feed(struct loop *l, struct loop_io *io)
{
    if (io->pending)
        return;
    io->pending = true;
    io->pending_next = NULL;
    if (l->pending_tail != NULL)
        l->pending_tail->pending_next = io;
    else
        l->pending = io;
    l->pending_tail = io;
    l->npending++;
}

/* Runs the watchers that were fed before the phase began; those fed by its callbacks queue
 * behind them and wait for the next one. */
static void loop_run_pending(struct loop *l)
{
    for (unsigned n = l->npending; n > 0 && l->pending != NULL; n--) {
        struct loop_io *io = l->pending;
        l->pending = io->pending_next;
        if (l->pending == NULL)
            l->pending_tail = NULL;
        l->npending--;
        io->pending = false;
        io->cb(io, 0);
    }
}

/* ---- timers ------------------------------------------------------------------------------ */

void loop_timer_init(struct loop_timer *t, loop_timer_cb cb)
{
    *t = (struct loop_timer){.cb = cb};
}

int loop_timer_start(struct loop *l, struct loop_timer *t, uint64_t timeout_ms, uint64_t repeat_ms)
{
    if (t->active)
        loop_timer_stop(l, t);
    t->node.key = l->now_ms + timeout_ms;
    if (t->node.key < timeout_ms) /* past the end of time: never, in practice (libuv clamps too) */
        t->node.key = UINT64_MAX;
    t->repeat_ms = repeat_ms;
    if (heap_push(&l->timers, &t->node) != 0)
        return -ENOMEM;
    t->active = true;
    return 0;
}

void loop_timer_stop(struct loop *l, struct loop_timer *t)
{
    if (!t->active)
        return;
    heap_remove(&l->timers, &t->node);
    t->active = false;
}

/* Runs the timers due now that were started before this phase began: heap_push numbers
 * nodes in order, and a timer started (or re-armed) by a callback here gets a number past
 * `first_new`. Such a timer sorts after every older one with the same deadline, so meeting
 * it at the top means the older due timers are done. */
static void loop_run_timers(struct loop *l)
{
    uint64_t first_new = l->timers.next_seq;
    struct heap_node *n;
    while ((n = heap_peek(&l->timers)) != NULL && n->key <= l->now_ms && n->seq < first_new) {
        struct loop_timer *t = TRIAD_CONTAINER_OF(n, struct loop_timer, node);
        loop_timer_stop(l, t);
        if (t->repeat_ms != 0) /* re-armed before the callback, which may stop it (libuv) */
            loop_timer_start(l, t, t->repeat_ms, t->repeat_ms);
        t->cb(t); /* may free a one-shot timer: t is not touched again */
    }
}

/* ---- prepare and check hooks ------------------------------------------------------------- */

static void loop_hook_add(struct loop_hook **list, struct loop_hook *h, loop_hook_cb cb)
{
    if (h->active)
        return;
    h->cb = cb;
    h->next = *list;
    h->active = true;
    *list = h;
}

static void loop_hook_remove(struct loop_hook **list, struct loop_hook *h)
{
    if (!h->active)
        return;
    for (struct loop_hook **p = list; *p != NULL; p = &(*p)->next) {
        if (*p == h) {
            *p = h->next;
            break;
        }
    }
    h->active = false;
}

static void loop_hooks_run(struct loop_hook *h)
{
    while (h != NULL) {
        struct loop_hook *next = h->next; /* the callback may stop h */
        h->cb(h);
        h = next;
    }
}

void loop_prepare_start(struct loop *l, struct loop_hook *h, loop_hook_cb cb)
{
    loop_hook_add(&l->prepare, h, cb);
}

void loop_prepare_stop(struct loop *l, struct loop_hook *h)
{
    loop_hook_remove(&l->prepare, h);
}

void loop_check_start(struct loop *l, struct loop_hook *h, loop_hook_cb cb)
{
    loop_hook_add(&l->check, h, cb);
}

void loop_check_stop(struct loop *l, struct loop_hook *h)
{
    loop_hook_remove(&l->check, h);
}

/* ---- async ------------------------------------------------------------------------------- */

static void loop_async_io_cb(struct loop_io *io, uint32_t events)
{
    (void)events;
    struct loop_async *a = TRIAD_CONTAINER_OF(io, struct loop_async, io);
    uint64_t count;
    while (read(io->fd, &count, sizeof(count)) < 0 && errno == EINTR)
        ;
    /* Clear the flag before the callback looks for work: a send that lands after this point
     * writes the eventfd again and is seen next iteration; one that landed before it is
     * covered by this callback. (libuv's uv__async_io, minus its busy-wait for closing.) */
    if (atomic_exchange(&a->pending, 0) != 0)
        a->cb(a);
}

int loop_async_init(struct loop *l, struct loop_async *a, loop_async_cb cb)
{
    atomic_init(&a->pending, 0);
    a->cb = cb;
    int fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (fd < 0)
        return -errno;
    int rc = loop_io_start(l, &a->io, fd, EPOLLIN, loop_async_io_cb);
    if (rc != 0)
        close(fd);
    return rc;
}

void loop_async_send(struct loop_async *a)
{
    static const uint64_t one = 1;
    if (atomic_exchange(&a->pending, 1) != 0)
        return; /* already signalled, not yet run: coalesced */
    /* Only EAGAIN can fail here, when the counter is saturated, and the loop is awake then. */
    while (write(a->io.fd, &one, sizeof(one)) < 0 && errno == EINTR)
        ;
}

void loop_async_close(struct loop *l, struct loop_async *a)
{
    loop_io_stop(l, &a->io);
    close(a->io.fd);
}

/* ---- close ------------------------------------------------------------------------------- */

void loop_closing_add(struct loop *l, struct loop_closing *c, loop_closing_cb cb)
{
    c->cb = cb;
    c->next = l->closing;
    l->closing = c;
}

static void loop_run_closing(struct loop *l)
{
    struct loop_closing *c = l->closing;
    l->closing = NULL; /* handles closed by these callbacks wait for the next iteration */
    while (c != NULL) {
        struct loop_closing *next = c->next;
        c->cb(c);
        c = next;
    }
}

/* ---- poll -------------------------------------------------------------------------------- */

/* libuv's uv__backend_timeout: don't sleep with pending or close work waiting or a stop
 * requested; otherwise sleep until the nearest timer, or forever. */
static int loop_poll_timeout(const struct loop *l)
{
    if (l->stopping || l->pending != NULL || l->closing != NULL)
        return 0;
    struct heap_node *n = heap_peek(&l->timers);
    if (n == NULL)
        return -1;
    if (n->key <= l->now_ms)
        return 0;
    uint64_t ms = n->key - l->now_ms;
    return ms > INT_MAX ? INT_MAX : (int)ms;
}

static int loop_poll(struct loop *l, int timeout)
{
    uint64_t t0 = trace_begin();
    int n = epoll_wait(l->epfd, l->events, LOOP_EVENTS_MAX, timeout);
    trace_slice(t0, "epoll_wait", "events", n > 0 ? (uint64_t)n : 0);
    if (n < 0)
        return errno == EINTR ? 0 : -errno;
    loop_update_time(l); /* the callbacks see the time they woke up at */
    l->batch = l->events;
    l->batch_len = n;
    for (int i = 0; i < n; i++) {
        struct loop_io *io = l->events[i].data.ptr;
        if (io != NULL) /* NULL: stopped by an earlier callback of this batch */
            io->cb(io, l->events[i].events);
    }
    l->batch_len = 0;
    return 0;
}

/* ---- run --------------------------------------------------------------------------------- */

/* A phase's slice: one branch each way when tracing is off. */
#define LOOP_PHASE(name, call)                                                                     \
    do {                                                                                           \
        uint64_t t0_ = trace_begin();                                                              \
        call;                                                                                      \
        trace_slice(t0_, name, NULL, 0);                                                           \
    } while (0)

int loop_run(struct loop *l)
{
    int rc = 0;
    trace_thread_name("loop", -1, 1);
    loop_update_time(l);
    LOOP_PHASE("timers", loop_run_timers(l));
    while (!l->stopping && rc == 0) {
        uint64_t t0 = trace_begin();
        LOOP_PHASE("pending", loop_run_pending(l));
        /* idle: no idle handles here (see the top of the file) */
        LOOP_PHASE("prepare", loop_hooks_run(l->prepare));
        LOOP_PHASE("poll", rc = loop_poll(l, loop_poll_timeout(l)));
        for (int round = 0; round < LOOP_PENDING_ROUNDS && l->pending != NULL; round++)
            LOOP_PHASE("pending", loop_run_pending(l));
        LOOP_PHASE("check", loop_hooks_run(l->check));
        LOOP_PHASE("close", loop_run_closing(l));
        loop_update_time(l);
        LOOP_PHASE("timers", loop_run_timers(l));
        trace_slice(t0, "iteration", "n", l->iterations);
        l->iterations++;
    }
    l->stopping = false;
    loop_run_closing(l);
    return rc;
}
