/* netpoll.c - the network poller: one epoll instance shared by all Ps (Go's netpoll_epoll.go).
 *
 * A goroutine that waits for a descriptor parks on a poll descriptor (pd) and holds no thread.
 * Readiness is collected by whichever M polls: a non-blocking poll in findRunnable when
 * goroutines wait, sysmon when nobody has polled for 10 ms, and, when there is nothing else to
 * do, exactly one M that blocks in epoll_wait until the earliest timer. Readied goroutines go
 * to the run queues through injectglist. An eventfd breaks a blocked poll when an earlier timer
 * appears (Go 1.19 used a pipe).
 *
 * Two kinds of poll descriptor:
 *
 *   coro_pollfd   long-lived, for a descriptor that is itself an epoll instance (an HTTP
 *                 server's, http.h): readability only, a timeout per park, and kicks from
 *                 other threads (the server's wake-up).
 *   coro_fd_wait  one wait on any descriptor (a socket to the upstream service, a database
 *                 connection): readability and/or writability, with a deadline, the way
 *                 net.Conn reads and writes park in pollDesc.wait (runtime/netpoll.go
 *                 poll_runtime_pollWait). Its pd comes from a cache that is never freed, and
 *                 every event carries the pd's sequence number, so an event that arrives after
 *                 its wait ended (the deadline won, the goroutine moved on) is recognised and
 *                 dropped: Go's pollDesc cache and fdseq, for the same reason.
 *
 * Differences from Go:
 *   - Go registers a socket once, edge-triggered, for its life (netpollopen), and a wait costs
 *     no system call. Here each wait arms the descriptor one-shot (epoll_ctl MOD, or ADD the
 *     first time): one epoll_ctl per park. The descriptors belong to the core, which closes
 *     and reuses them without telling the netpoller; one-shot arming needs no such notice.
 *     libmicrohttpd's epoll instances are armed level-triggered and one-shot too: their
 *     readiness is not reliably edge-signalled after a partial drain.
 */
#include "gmp.h"
#include "gtrace.h"

#include "check.h"

#include <errno.h>
#include <pthread.h>
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

/* fd waits: epoll's data.u64 is (seq << 32) | (index << 1) | 1; a coro_pollfd's is its
 * (even) address, and the break eventfd's is 0. */
#define FDPD_CHUNK  256
#define FDPD_CHUNKS 4096 /* at most a million goroutines parked on descriptors at once */

struct fdpd {
    _Atomic uintptr_t rg;
    _Atomic uint32_t seq;
    uint32_t index;
    bool expired; /* the deadline, not readiness, woke the goroutine */
    int fd;
    uint32_t events;
    int64_t timeout_ns;
    struct timer deadline;
    struct fdpd *next_free;
};

static struct {
    pthread_mutex_t lock;
    struct fdpd *_Atomic chunks[FDPD_CHUNKS]; /* written once each, read without the lock */
    unsigned nchunks;
    struct fdpd *free;
} fdpd_cache = {.lock = PTHREAD_MUTEX_INITIALIZER};

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
    struct epoll_event ev = {.events = EPOLLIN, .data.u64 = 0};
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
static struct g *netpoll_unblock(_Atomic uintptr_t *rg)
{
    uintptr_t old = atomic_load(rg);
    for (;;) {
        if (old == PD_READY)
            return NULL;
        uintptr_t next = old == PD_EMPTY ? PD_READY : PD_EMPTY;
        if (atomic_compare_exchange_weak(rg, &old, next))
            break;
    }
    if (old == PD_EMPTY)
        return NULL;
    atomic_fetch_sub(&netpoll_waiters, 1);
    return (struct g *)old;
}

/* ---- one-shot descriptor waits ------------------------------------------------------------ */

/* A pd for one wait, with a new sequence number. NULL past the cache's ceiling or out of
 * memory. */
static struct fdpd *fdpd_get(void)
{
    pthread_mutex_lock(&fdpd_cache.lock);
    if (fdpd_cache.free == NULL && fdpd_cache.nchunks < FDPD_CHUNKS) {
        struct fdpd *chunk = calloc(FDPD_CHUNK, sizeof(*chunk));
        if (chunk != NULL) {
            uint32_t base = fdpd_cache.nchunks * FDPD_CHUNK;
            atomic_store_explicit(&fdpd_cache.chunks[fdpd_cache.nchunks++], chunk,
                                  memory_order_release);
            for (uint32_t i = FDPD_CHUNK; i-- > 0;) {
                chunk[i].index = base + i;
                chunk[i].next_free = fdpd_cache.free;
                fdpd_cache.free = &chunk[i];
            }
        }
    }
    struct fdpd *pd = fdpd_cache.free;
    if (pd != NULL)
        fdpd_cache.free = pd->next_free;
    pthread_mutex_unlock(&fdpd_cache.lock);
    if (pd != NULL) {
        atomic_fetch_add(&pd->seq, 1);
        atomic_store(&pd->rg, PD_EMPTY);
        pd->expired = false;
    }
    return pd;
}

/* Back to the cache; the sequence number moves on so that late events miss. */
static void fdpd_put(struct fdpd *pd)
{
    atomic_fetch_add(&pd->seq, 1);
    pthread_mutex_lock(&fdpd_cache.lock);
    pd->next_free = fdpd_cache.free;
    fdpd_cache.free = pd;
    pthread_mutex_unlock(&fdpd_cache.lock);
}

static uint64_t fdpd_tag(const struct fdpd *pd, uint32_t seq)
{
    return ((uint64_t)seq << 32) | ((uint64_t)pd->index << 1) | 1u;
}

/* An event for a one-shot wait: the goroutine to ready, unless the wait is over. */
static struct g *fdpd_unblock_tag(uint64_t tag)
{
    uint32_t index = (uint32_t)(tag & 0xffffffffu) >> 1, seq = (uint32_t)(tag >> 32);
    if (index / FDPD_CHUNK >= FDPD_CHUNKS)
        return NULL;
    struct fdpd *chunk =
        atomic_load_explicit(&fdpd_cache.chunks[index / FDPD_CHUNK], memory_order_acquire);
    struct fdpd *pd = chunk != NULL ? &chunk[index % FDPD_CHUNK] : NULL;
    if (pd == NULL || atomic_load(&pd->seq) != seq)
        return NULL; /* a stale event: that wait has ended */
    return netpoll_unblock(&pd->rg);
}

static void fdpd_deadline_cb(struct timer *t)
{
    struct fdpd *pd = TRIAD_CONTAINER_OF(t, struct fdpd, deadline);
    struct g *gp = netpoll_unblock(&pd->rg);
    if (gp) { /* we won the race with readiness: the wait timed out */
        pd->expired = true;
        ready(gp, false);
    }
}

/* On g0, after the goroutine switched away (see netpoll_park_cb for the order). */
static void fdpd_park_cb(struct g *gp, void *arg)
{
    struct fdpd *pd = arg;
    struct epoll_event ev = {.events = pd->events | EPOLLONESHOT,
                             .data.u64 = fdpd_tag(pd, atomic_load(&pd->seq))};
    if (epoll_ctl(netpoll_epfd, EPOLL_CTL_MOD, pd->fd, &ev) != 0 &&
        epoll_ctl(netpoll_epfd, EPOLL_CTL_ADD, pd->fd, &ev) != 0)
        atomic_store(&pd->rg, PD_READY); /* cannot watch it: let the caller find out */
    if (pd->timeout_ns >= 0)
        timer_start(&pd->deadline, nanotime() + (uint64_t)pd->timeout_ns, fdpd_deadline_cb);
    atomic_fetch_add(&netpoll_waiters, 1);
    uintptr_t expect = PD_EMPTY;
    if (atomic_compare_exchange_strong(&pd->rg, &expect, (uintptr_t)gp))
        return;
    atomic_fetch_sub(&netpoll_waiters, 1);
    atomic_store(&pd->rg, PD_EMPTY);
    ready(gp, true);
}

int coro_fd_wait(int fd, unsigned events, int64_t timeout_ns)
{
    struct fdpd *pd = fdpd_get();
    if (pd == NULL)
        return -ENOMEM;
    pd->fd = fd;
    pd->events = ((events & CORO_FD_READ) ? EPOLLIN | EPOLLRDHUP : 0) |
                 ((events & CORO_FD_WRITE) ? EPOLLOUT : 0);
    pd->timeout_ns = timeout_ns;
    park(fdpd_park_cb, pd);
    timer_stop(&pd->deadline);
    bool expired = pd->expired;
    fdpd_put(pd);
    return expired ? -ETIMEDOUT : 0;
}

/* ---- polling ------------------------------------------------------------------------------- */

struct g *netpoll(int64_t delay_ns)
{
    struct epoll_event events[NETPOLL_EVENTS];
    int ms = delay_ns < 0 ? -1 : delay_ns == 0 ? 0 : (int)((delay_ns + NS_PER_MS - 1) / NS_PER_MS);
    if (delay_ns > 1000 * (int64_t)NS_PER_MS * 1000)
        ms = 1000 * 1000; /* cap at 1000 s: a timeout, not a deadline */
    int n = epoll_wait(netpoll_epfd, events, NETPOLL_EVENTS, ms);
    struct g *list = NULL;
    for (int i = 0; i < n; i++) {
        uint64_t tag = events[i].data.u64;
        struct g *gp;
        if (tag == 0) { /* the break eventfd */
            uint64_t v;
            while (read(netpoll_breakfd, &v, sizeof(v)) < 0 && errno == EINTR)
                ;
            atomic_store(&netpoll_breaking, false);
            continue;
        }
        if (tag & 1u)
            gp = fdpd_unblock_tag(tag);
        else
            gp = netpoll_unblock(&((struct coro_pollfd *)events[i].data.ptr)->rg);
        if (gp == NULL)
            continue;
        atomic_store_explicit(&gp->status, G_RUNNABLE, memory_order_relaxed);
        gtrace_ready(gp, "netpoll");
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
    if (netpoll_epfd >= 0) /* else the runtime has stopped: the epoll instance went with it */
        epoll_ctl(netpoll_epfd, EPOLL_CTL_DEL, pd->fd, NULL);
    free(pd);
}

static void netpoll_deadline_cb(struct timer *t)
{
    struct g *gp = netpoll_unblock(&TRIAD_CONTAINER_OF(t, struct coro_pollfd, deadline)->rg);
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
    struct g *gp = netpoll_unblock(&pd->rg);
    if (gp)
        ready(gp, false);
}
