/* netpoll.c - the network poller: one epoll instance shared by all Ps (Go's netpoll_epoll.go).
 *
 * A goroutine that waits for a descriptor parks on its poll descriptor (pd) and holds no
 * thread. Readiness is collected by whichever M polls: a non-blocking poll in findRunnable
 * when goroutines wait, sysmon when nobody has polled for 10 ms, and, when there is nothing
 * else to do, exactly one M that blocks in epoll_wait until the earliest timer. Readied
 * goroutines go to the run queues through injectglist. An eventfd breaks a blocked poll when an
 * earlier timer appears (Go 1.19 used a pipe).
 *
 * Differences from Go:
 *   - Go arms sockets edge-triggered once, for life. The descriptors here are libmicrohttpd's
 *     own epoll instances, nested in ours, whose readiness is not reliably edge-signalled after
 *     a partial drain; they are armed level-triggered and one-shot, and re-armed each time a
 *     goroutine parks on them: one epoll_ctl per park, which Go avoids.
 *   - Only readability is waited for: libmicrohttpd's instance reports writability of its
 *     sockets as readability of itself.
 */
#include "gmp.h"

#include "check.h"

#include <errno.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

/* Go's pollDesc.rg: one word that is empty, READY (readiness seen with nobody waiting), or
 * the goroutine waiting. Every transition is a CAS, so readiness, the deadline and a kick can
 * race each other and a parking goroutine without losing a wake-up or waking twice. */
#define PD_EMPTY ((uintptr_t)0)
#define PD_READY ((uintptr_t)1)

struct coro_pollfd {
    int fd;
    _Atomic uintptr_t rg;
    int64_t timeout_ns; /* the current park's timeout, < 0 for none */
    struct timer deadline;
};

static int netpoll_epfd = -1;
static int netpoll_breakfd = -1;
static _Atomic int netpoll_waiters; /* goroutines parked on a pd */
static _Atomic bool netpoll_breaking;

void netpoll_init(void)
{
    atomic_store(&netpoll_waiters, 0);
    atomic_store(&netpoll_breaking, false);
    netpoll_epfd = epoll_create1(EPOLL_CLOEXEC);
    netpoll_breakfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    TRIAD_ASSERT(netpoll_epfd >= 0 && netpoll_breakfd >= 0, "netpoll_init: out of descriptors");
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL};
    TRIAD_ASSERT(epoll_ctl(netpoll_epfd, EPOLL_CTL_ADD, netpoll_breakfd, &ev) == 0,
                 "netpoll_init: epoll_ctl");
}

void netpoll_close(void)
{
    close(netpoll_breakfd);
    close(netpoll_epfd);
    netpoll_epfd = netpoll_breakfd = -1;
}

bool netpoll_inited(void)
{
    return netpoll_epfd >= 0;
}

bool netpoll_has_waiters(void)
{
    return atomic_load(&netpoll_waiters) > 0;
}

void netpoll_break(void)
{
    /* Coalesced: one pending write is enough to wake the poller. */
    if (atomic_exchange(&netpoll_breaking, true))
        return;
    uint64_t one = 1;
    while (write(netpoll_breakfd, &one, sizeof(one)) < 0 && errno == EINTR)
        ;
}

/* Readiness (or a deadline, or a kick) for pd: returns the goroutine to ready, if one was
 * waiting; otherwise leaves pd READY for the next wait (proc.go netpollunblock). */
static struct g *netpoll_unblock(struct coro_pollfd *pd)
{
    uintptr_t old = atomic_load(&pd->rg);
    for (;;) {
        if (old == PD_READY)
            return NULL;
        uintptr_t next = old == PD_EMPTY ? PD_READY : PD_EMPTY;
        if (atomic_compare_exchange_weak(&pd->rg, &old, next))
            break;
    }
    if (old == PD_EMPTY)
        return NULL;
    atomic_fetch_sub(&netpoll_waiters, 1);
    return (struct g *)old;
}

struct g *netpoll(int64_t delay_ns)
{
    struct epoll_event events[NETPOLL_EVENTS];
    int ms = delay_ns < 0 ? -1 : delay_ns == 0 ? 0 : (int)((delay_ns + NS_PER_MS - 1) / NS_PER_MS);
    if (delay_ns > 1000 * (int64_t)NS_PER_MS * 1000)
        ms = 1000 * 1000; /* cap at 1000 s: a timeout, not a deadline */
    int n = epoll_wait(netpoll_epfd, events, NETPOLL_EVENTS, ms);
    struct g *list = NULL;
    for (int i = 0; i < n; i++) {
        struct coro_pollfd *pd = events[i].data.ptr;
        if (pd == NULL) { /* the break eventfd */
            uint64_t v;
            while (read(netpoll_breakfd, &v, sizeof(v)) < 0 && errno == EINTR)
                ;
            atomic_store(&netpoll_breaking, false);
            continue;
        }
        struct g *gp = netpoll_unblock(pd);
        if (gp == NULL)
            continue;
        atomic_store_explicit(&gp->status, G_RUNNABLE, memory_order_relaxed);
        gp->schedlink = list;
        list = gp;
    }
    return list;
}

int coro_pollfd_open(int fd, struct coro_pollfd **out)
{
    struct coro_pollfd *pd = calloc(1, sizeof(*pd));
    if (pd == NULL)
        return -ENOMEM;
    pd->fd = fd;
    /* Registered disarmed; each park arms it (one-shot). READY: check once before parking. */
    struct epoll_event ev = {.events = EPOLLIN | EPOLLONESHOT, .data.ptr = pd};
    if (epoll_ctl(netpoll_epfd, EPOLL_CTL_ADD, fd, &ev) != 0) {
        int e = -errno;
        free(pd);
        return e;
    }
    atomic_store(&pd->rg, PD_READY);
    *out = pd;
    return 0;
}

void coro_pollfd_close(struct coro_pollfd *pd)
{
    TRIAD_ASSERT(atomic_load(&pd->rg) <= PD_READY, "coro_pollfd_close: a goroutine is waiting");
    timer_stop(&pd->deadline);
    epoll_ctl(netpoll_epfd, EPOLL_CTL_DEL, pd->fd, NULL);
    free(pd);
}

static void netpoll_deadline_cb(struct timer *t)
{
    struct g *gp = netpoll_unblock(TRIAD_CONTAINER_OF(t, struct coro_pollfd, deadline));
    if (gp)
        ready(gp, false);
}

/* Runs on g0 after the goroutine has switched away. Arm everything that can wake it first,
 * then publish it: a wake-up that comes in between finds the word EMPTY and leaves it READY,
 * our CAS then fails, and we ready the goroutine ourselves. Publishing first would let
 * another M run it, and park it again, before this callback had finished. */
static void netpoll_park_cb(struct g *gp, void *arg)
{
    struct coro_pollfd *pd = arg;
    struct epoll_event ev = {.events = EPOLLIN | EPOLLONESHOT, .data.ptr = pd};
    epoll_ctl(netpoll_epfd, EPOLL_CTL_MOD, pd->fd, &ev);
    if (pd->timeout_ns >= 0)
        timer_start(&pd->deadline, nanotime() + (uint64_t)pd->timeout_ns, netpoll_deadline_cb);
    atomic_fetch_add(&netpoll_waiters, 1);
    uintptr_t expect = PD_EMPTY;
    if (atomic_compare_exchange_strong(&pd->rg, &expect, (uintptr_t)gp))
        return;
    /* READY arrived meanwhile: consume it and run again. */
    atomic_fetch_sub(&netpoll_waiters, 1);
    atomic_store(&pd->rg, PD_EMPTY);
    ready(gp, true);
}

void coro_pollfd_wait(struct coro_pollfd *pd, int64_t timeout_ns)
{
    uintptr_t ready_word = PD_READY;
    if (atomic_compare_exchange_strong(&pd->rg, &ready_word, PD_EMPTY))
        return;
    pd->timeout_ns = timeout_ns;
    park(netpoll_park_cb, pd);
    /* Woken by readiness, the deadline or a kick. A deadline still pending is dropped; one
     * that is firing right now will at worst wake the next wait early, which only costs the
     * caller an extra look. */
    timer_stop(&pd->deadline);
}

void coro_pollfd_kick(struct coro_pollfd *pd)
{
    struct g *gp = netpoll_unblock(pd);
    if (gp)
        ready(gp, false);
}
