/* proc.c - the goroutine scheduler: Go's G-M-P model, in C.
 *
 * The model
 * =========
 *
 * The scheduler's job is to distribute ready-to-run goroutines over worker threads. Three
 * kinds of object, named as in Go's runtime/proc.go:
 *
 *   G - goroutine. A function running on its own small stack (stack.c: 64 KiB reserved, only
 *       touched pages resident), switched in and out by ctx.c in a few dozen instructions.
 *   M - worker thread, an OS thread. It runs Gs, or sleeps in the kernel.
 *   P - processor, the right to run Gs. There are exactly GOMAXPROCS of them (--procs). An M
 *       must hold a P to run a G, but may sit in a blocking call without one.
 *
 * Each P owns a local run queue: a 256-slot ring plus a `runnext` slot (runq.c). A G readied
 * by the running G goes to runnext and runs next, inheriting the time slice; other new work
 * goes to the ring's tail; a full ring spills half of itself to the global queue. To stay
 * fair, every 61st new slice (schedtick % 61) looks at the global queue first.
 *
 * Finding work (findRunnable, below) goes: this P's timers, the global queue on every 61st
 * tick, the local queue, the global queue, a non-blocking look at the netpoller, then
 * stealing: four passes over all Ps in a random order with a coprime stride, taking half of a
 * victim's queue; only the last pass also runs victims' expired timers and may take their
 * runnext. Having found nothing, the M gives its P back and, if no other M is doing it,
 * blocks in the netpoller until the earliest timer; otherwise it parks.
 *
 * Spinning. An M that is out of work but looking for it is "spinning". The rule that keeps
 * CPUs busy without burning them: at most half the busy Ps may have a spinning M
 * (2*nmspinning < GOMAXPROCS - npidle), and a thread is unparked to spin (wakep) only if there
 * is an idle P and no M is spinning already. Whoever makes work (newproc, ready, netpoll)
 * enqueues it, then checks nmspinning (a StoreLoad pair with the spinner's decrement-then-
 * recheck), so that work is never stranded with every M asleep. When a spinning M finds work
 * and stops spinning, it wakes another spinner if it was the last one (resetspinning).
 *
 * Blocking calls (sqlite here, cgo in Go) are bracketed by entersyscall/exitsyscall. The M
 * keeps its P during the call; sysmon (sysmon.c) takes the P away once the call has lasted a
 * whole sysmon tick (>= 20 us) and there is other work, and hands it to another M (handoffp,
 * startm), creating a thread if none is idle. Coming back, the M takes its old P if it is
 * still there, else any idle P; with none, it puts its G on the global queue and parks.
 *
 * Preemption. sysmon sets a G's `preempt` flag when its P has run the same time slice for
 * 10 ms. The core's CPU loops call hook_safepoint() every few microseconds (cpu.h), which
 * yields if the flag is set: Go's synchronous preemption (its function prologues check a
 * poisoned stack guard). Go also preempts asynchronously, with SIGURG and a register spill,
 * code that makes no calls at all; C cannot switch stacks safely from a signal handler in
 * arbitrary code, so a loop with no safe point here runs until it ends, as Go code did before
 * 1.14 (or with GODEBUG=asyncpreemptoff=1).
 *
 * The netpoller (netpoll.c) and timers (timer.c) are per-process and per-P as in Go.
 *
 * Where this differs from Go, and why
 * ===================================
 *
 *   - No garbage collector, no stack growth: stacks are fixed reservations (stack.c).
 *   - The HTTP server is libmicrohttpd, not net/http: one goroutine per request, not per
 *     connection. Its connections are sharded over GOMAXPROCS servers, each run by a driver
 *     goroutine (shard.c) that any M may run.
 *   - The inline fast path (coro_run_inline): when every P is busy, the shard's driver runs a
 *     new request's goroutine immediately on its own M, waiting for it, and the request
 *     leaves the M only at its first wait (or preemption). Go would put the new G in runnext
 *     and run it after the driver G parks; both stay on one M, and a request that never waits
 *     pays no hand-off either way. Here it also lets the response be queued without
 *     suspending the connection. When a P is idle, exec.c does what Go does, so that the idle
 *     P can steal the request.
 *   - A G that cannot get a stack, or that needs an M that cannot be started, is refused
 *     (coro_go returns an error; coro.h); Go throws and the process dies.
 *   - M parking uses a mutex and condition variable per M, not a futex word (ThreadSanitizer
 *     understands the former).
 *   - Ms are never destroyed before shutdown (Go keeps them too, apart from locked threads).
 *
 * Rejected designs
 * ================
 *
 *   1. One global queue and a mutex (a thread pool of coroutines): every schedule contends on
 *      one lock and every wakeup crosses cores; no locality, no runnext, no stealing.
 *   2. Each M polls in a sleep loop when idle: burns CPU when idle and adds the sleep to every
 *      wakeup. Here idle Ms park and are woken by wakep; one M at most blocks in epoll.
 *   3. Waking an M on every newproc: a thundering herd of threads for every spawned G. wakep
 *      wakes one spinner at most, and only if none is spinning.
 *   4. ucontext for the switch: one rt_sigprocmask syscall per switch, ~20x slower (ctx.h).
 *
 * Invariants
 * ==========
 *
 *   - A G runs on at most one M; a P is held by at most one M; an M runs Gs only with a P.
 *   - npidle counts the idle-P list; nmspinning counts Ms with spinning == true.
 *   - A parked G is published to wakers (wait list, timer, netpoller) only by its unlock
 *     callback, which runs on g0 after the switch away from it has completed.
 *   - An inline child never switches anywhere but back to its parent until it has detached.
 */
#include "gmp.h"
#include "gtrace.h"

#include "check.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct sched sched;

/* The M this OS thread is, NULL on threads that are not Ms. Read through a function that the
 * compiler cannot inline or merge: a goroutine can continue on another thread after any
 * switch, so a cached thread-local address would be the old thread's (ctx.h, point 6). */
static _Thread_local struct m *m_self;

__attribute__((noinline)) struct m *m_current(void)
{
    return m_self;
}

void m_bind(struct m *mp)
{
    m_self = mp;
}

uint64_t nanotime(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* ---- notes: how an M sleeps -------------------------------------------------------------- */

static void notesleep(struct m *mp)
{
    pthread_mutex_lock(&mp->note_mu);
    while (!mp->note)
        pthread_cond_wait(&mp->note_cv, &mp->note_mu);
    mp->note = false;
    pthread_mutex_unlock(&mp->note_mu);
}

void notewakeup(struct m *mp)
{
    pthread_mutex_lock(&mp->note_mu);
    mp->note = true;
    pthread_cond_signal(&mp->note_cv);
    pthread_mutex_unlock(&mp->note_mu);
}

/* ---- Ps and Ms --------------------------------------------------------------------------- */

void acquirep(struct m *mp, struct p *pp)
{
    TRIAD_ASSERT(mp->p == NULL && atomic_load(&pp->m) == NULL, "acquirep: already wired");
    mp->p = pp;
    atomic_store(&pp->m, mp);
    atomic_store(&pp->status, P_RUNNING);
    if (atomic_load(&sched.sysmon_wait))
        sysmon_wake();
}

struct p *releasep(struct m *mp)
{
    struct p *pp = mp->p;
    TRIAD_ASSERT(pp != NULL && atomic_load(&pp->m) == mp, "releasep: not wired");
    mp->p = NULL;
    atomic_store(&pp->m, NULL);
    return pp;
}

/* Starts a new M holding pp (newm). On failure gives pp back and returns false.
 *
 * Go throws when it cannot create a thread ("runtime: failed to create new OS thread"); here
 * the runtime carries on with the Ms it has. The P goes back to the idle list, and the M
 * blocked in the netpoller (if one is) is woken to take it: otherwise work readied from a
 * plain thread (a kick at shutdown) could wait for a poll that never ends. */
static bool newm(struct p *pp, bool spinning)
{
    struct m *mp = calloc(1, sizeof(*mp));
    if (mp != NULL) {
        pthread_mutex_init(&mp->note_mu, NULL);
        pthread_cond_init(&mp->note_cv, NULL);
        mp->nextp = pp;
        mp->spinning = spinning;
    }
    pthread_mutex_lock(&sched.lock);
    /* No new M once shutdown has begun: coro_stop joins the Ms it saw then. */
    bool ok = mp != NULL && !atomic_load(&sched.stopping) &&
              pthread_create(&mp->thread, NULL, m_main, mp) == 0;
    if (ok) {
        mp->id = sched.mcount++;
        mp->alllink = sched.allm;
        sched.allm = mp;
    } else {
        pidleput(pp);
    }
    pthread_mutex_unlock(&sched.lock);
    if (ok) {
        atomic_store(&sched.m_failing, false);
        return true;
    }
    /* Logged once per run of failures, counted every time. */
    if (!atomic_exchange(&sched.m_failing, true) && !atomic_load(&sched.stopping))
        log_error("coro: cannot start a worker thread (new goroutines are refused until one "
                  "starts)");
    atomic_fetch_add(&sched.n_mfailed, 1);
    if (spinning)
        atomic_fetch_sub(&sched.nmspinning, 1);
    free(mp);
    if (netpoll_inited())
        netpoll_break();
    return false;
}

bool startm(struct p *pp, bool spinning)
{
    pthread_mutex_lock(&sched.lock);
    if (pp == NULL && (pp = pidleget()) == NULL) {
        pthread_mutex_unlock(&sched.lock);
        if (spinning)
            atomic_fetch_sub(&sched.nmspinning, 1); /* the caller counted us in */
        return true;
    }
    struct m *nmp = sched.midle;
    if (nmp) {
        sched.midle = nmp->schedlink;
        sched.nmidle--;
    }
    pthread_mutex_unlock(&sched.lock);
    if (nmp == NULL)
        return newm(pp, spinning);
    nmp->spinning = spinning;
    nmp->nextp = pp;
    notewakeup(nmp);
    return true;
}

/* Parks the calling M, which holds no P, until startm hands it one (or shutdown). */
void stopm(struct m *mp)
{
    TRIAD_ASSERT(mp->p == NULL && !mp->spinning, "stopm: holding a P or spinning");
    pthread_mutex_lock(&sched.lock);
    if (atomic_load(&sched.stopping)) {
        pthread_mutex_unlock(&sched.lock);
        return;
    }
    mp->schedlink = sched.midle;
    sched.midle = mp;
    sched.nmidle++;
    pthread_mutex_unlock(&sched.lock);
    notesleep(mp);
    if (mp->nextp) {
        acquirep(mp, mp->nextp);
        mp->nextp = NULL;
    }
}

bool wakep(void)
{
    /* The StoreLoad half of the submission pattern: our enqueue must be visible before we
     * read nmspinning, or a spinner that just gave up could miss it. */
    atomic_thread_fence(memory_order_seq_cst);
    if (atomic_load(&sched.npidle) == 0)
        return true;
    unsigned zero = 0;
    if (atomic_load(&sched.nmspinning) != 0 ||
        !atomic_compare_exchange_strong(&sched.nmspinning, &zero, 1))
        return true;
    return startm(NULL, true);
}

void resetspinning(struct m *mp)
{
    mp->spinning = false;
    unsigned left = atomic_fetch_sub(&sched.nmspinning, 1) - 1;
    if (left == 0 && atomic_load(&sched.npidle) > 0)
        wakep(); /* we were the last spinner: find a replacement, work may be left */
}

void handoffp(struct p *pp)
{
    if (!runqempty(pp) || atomic_load(&sched.runqsize) != 0) {
        startm(pp, false);
        return;
    }
    unsigned zero = 0;
    if (atomic_load(&sched.nmspinning) + atomic_load(&sched.npidle) == 0 &&
        atomic_compare_exchange_strong(&sched.nmspinning, &zero, 1)) {
        startm(pp, true);
        return;
    }
    pthread_mutex_lock(&sched.lock);
    if (atomic_load(&sched.runqsize) != 0 ||
        (atomic_load(&sched.npidle) == sched.nprocs - 1 && atomic_load(&sched.lastpoll) != 0)) {
        /* Work on the global queue, or this is the last P and nobody watches the network. */
        pthread_mutex_unlock(&sched.lock);
        startm(pp, false);
        return;
    }
    uint64_t when = atomic_load(&pp->timer0);
    pidleput(pp);
    pthread_mutex_unlock(&sched.lock);
    if (when != 0)
        netpoll_break(); /* its timers need a poller that knows their deadline */
}

/* ---- making Gs runnable ------------------------------------------------------------------ */

void ready(struct g *gp, bool next)
{
    TRIAD_ASSERT(atomic_load(&gp->status) == G_WAITING, "ready: goroutine is not waiting");
    atomic_store(&gp->status, G_RUNNABLE);
    gtrace_ready(gp, "ready");
    struct m *mp = m_current();
    if (mp && mp->p) {
        runqput(mp->p, gp, next);
    } else {
        pthread_mutex_lock(&sched.lock);
        globrunqput(gp);
        pthread_mutex_unlock(&sched.lock);
    }
    wakep();
}

/* Puts a list of Gs readied by the netpoller on run queues: as many as there are idle Ps go
 * to the global queue with an M started for each, the rest to our local queue. */
void injectglist(struct g *list)
{
    unsigned n = 0;
    for (struct g *gp = list; gp; gp = gp->schedlink, n++)
        atomic_store(&gp->status, G_RUNNABLE);
    if (n == 0)
        return;
    struct m *mp = m_current();
    unsigned nglobal = mp && mp->p ? atomic_load(&sched.npidle) : n;
    struct g *local = list;
    if (nglobal > 0) {
        struct g *last = list;
        for (unsigned i = 1; i < nglobal && last->schedlink; i++)
            last = last->schedlink;
        local = last->schedlink;
        last->schedlink = NULL;
        pthread_mutex_lock(&sched.lock);
        globrunqputbatch(list);
        pthread_mutex_unlock(&sched.lock);
        for (unsigned i = 0; i < nglobal && atomic_load(&sched.npidle) > 0; i++)
            startm(NULL, false);
    }
    while (local) {
        struct g *next = local->schedlink;
        runqput(mp->p, local, false);
        local = next;
    }
}

/* ---- G lifecycle: creation, the free lists, exit ----------------------------------------- */

static struct g *gfget(struct p *pp)
{
    if (pp->gfree == NULL && atomic_load_explicit(&sched.gfree_n, memory_order_relaxed) > 0) {
        pthread_mutex_lock(&sched.lock);
        while (pp->gfree_n < GFREE_LOCAL_KEEP && sched.gfree) {
            struct g *gp = sched.gfree;
            sched.gfree = gp->schedlink;
            sched.gfree_n--;
            gp->schedlink = pp->gfree;
            pp->gfree = gp;
            pp->gfree_n++;
        }
        pthread_mutex_unlock(&sched.lock);
    }
    struct g *gp = pp->gfree;
    if (gp) {
        pp->gfree = gp->schedlink;
        pp->gfree_n--;
    }
    return gp;
}

static void gfput(struct p *pp, struct g *gp)
{
    gp->schedlink = pp->gfree;
    pp->gfree = gp;
    if (++pp->gfree_n < GFREE_LOCAL_MAX)
        return;
    struct g *excess = NULL;
    pthread_mutex_lock(&sched.lock);
    while (pp->gfree_n > GFREE_LOCAL_KEEP) {
        struct g *g1 = pp->gfree;
        pp->gfree = g1->schedlink;
        pp->gfree_n--;
        if (sched.gfree_n >= GFREE_GLOBAL_MAX) { /* after a burst: give the memory back */
            g1->schedlink = excess;
            excess = g1;
            continue;
        }
        g1->schedlink = sched.gfree;
        sched.gfree = g1;
        sched.gfree_n++;
    }
    pthread_mutex_unlock(&sched.lock);
    if (excess == NULL)
        return;
    /* After a burst: the stacks go back to the system (munmap, outside the lock), the Gs
     * stay, on the list of Gs without a stack. */
    struct g *last = excess;
    for (struct g *g1 = excess; g1 != NULL; g1 = g1->schedlink) {
        stack_destroy(&g1->stack);
        last = g1;
    }
    pthread_mutex_lock(&sched.lock);
    last->schedlink = sched.gfree_nostack;
    sched.gfree_nostack = excess;
    pthread_mutex_unlock(&sched.lock);
}

static void g_entry(void *arg);

static int g_new(void (*fn)(void *), void *arg, struct g **out)
{
    struct m *mp = m_current();
    struct g *gp = NULL;
    if (mp && mp->p) {
        gp = gfget(mp->p);
    } else if (atomic_load_explicit(&sched.gfree_n, memory_order_relaxed) > 0) {
        pthread_mutex_lock(&sched.lock);
        if ((gp = sched.gfree) != NULL) {
            sched.gfree = gp->schedlink;
            sched.gfree_n--;
        }
        pthread_mutex_unlock(&sched.lock);
    }
    if (gp == NULL) { /* no cached G: map a fresh stack (the slow path Go's gFree avoids) */
        pthread_mutex_lock(&sched.lock);
        if ((gp = sched.gfree_nostack) != NULL)
            sched.gfree_nostack = gp->schedlink;
        pthread_mutex_unlock(&sched.lock);
        bool fresh = gp == NULL;
        if (fresh && (gp = calloc(1, sizeof(*gp))) == NULL)
            return -ENOMEM;
        if (stack_create(sched.stack_size, &gp->stack) != 0) {
            if (fresh) { /* never seen by anyone: it can go */
                free(gp);
            } else {
                pthread_mutex_lock(&sched.lock);
                gp->schedlink = sched.gfree_nostack;
                sched.gfree_nostack = gp;
                pthread_mutex_unlock(&sched.lock);
            }
            return -ENOMEM;
        }
    }
    if (ctx_make(&gp->ctx, gp->stack.lo, gp->stack.size, g_entry, gp) != 0) {
        if (mp && mp->p)
            gfput(mp->p, gp);
        return -ENOMEM;
    }
    gp->fn = fn;
    gp->arg = arg;
    gp->schedlink = NULL;
    gp->inline_parent = NULL;
    gp->inline_state = G_INLINE_NONE;
    gp->trace_label = NULL;
    gp->trace_readied = false;
    gp->goid = atomic_fetch_add(&sched.goid_next, 1);
    atomic_store(&gp->preempt, false);
    atomic_store(&gp->status, G_RUNNABLE);
    atomic_fetch_add(&sched.n_created, 1);
    atomic_fetch_add(&sched.n_live, 1);
    *out = gp;
    return 0;
}

/* A finished G: keep it and its stack for the next coro_go. */
void g_free(struct p *pp, struct g *gp)
{
    atomic_store(&gp->status, G_DEAD);
    ctx_destroy(&gp->ctx);
    atomic_store(&gp->status, G_IDLE);
    gfput(pp, gp);
    if (atomic_fetch_sub(&sched.n_live, 1) == 1) {
        pthread_mutex_lock(&sched.idle_mu);
        pthread_cond_broadcast(&sched.idle_cv);
        pthread_mutex_unlock(&sched.idle_mu);
    }
}

/* Every G starts here and ends by switching away for good (goexit). */
static void g_entry(void *arg)
{
    struct g *gp = arg;
    gp->fn(gp->arg);
    struct m *mp = m_current();
    if (gp->inline_parent) { /* finished inline: straight back to the parent, which frees us */
        gp->inline_state = G_INLINE_FINISHED;
        atomic_store(&mp->curg, gp->inline_parent);
        ctx_switch_final(&gp->ctx, &gp->inline_parent->ctx);
    }
    mp->act = M_ACT_EXIT;
    ctx_switch_final(&gp->ctx, &mp->g0);
}

int coro_go(void (*fn)(void *), void *arg)
{
    struct g *gp;
    int rc = g_new(fn, arg, &gp);
    if (rc != 0)
        return rc;
    gtrace_ready(gp, "go");
    struct m *mp = m_current();
    if (mp == NULL || mp->p == NULL) {
        pthread_mutex_lock(&sched.lock);
        globrunqput(gp);
        pthread_mutex_unlock(&sched.lock);
        wakep();
        return 0;
    }
    runqput(mp->p, gp, true); /* newproc: the new G runs next */
    if (wakep())
        return 0;
    /* An idle P wanted an M for it and none could be started. If the G is still in our
     * runnext, nobody has run it: take it back and refuse, so that the caller sheds the work
     * instead of queueing it behind a thread that does not exist. If a thief took it, an M
     * runs it, and the `go` succeeded. */
    struct g *expect = gp;
    if (!atomic_compare_exchange_strong(&mp->p->runnext, &expect, NULL))
        return 0;
    g_free(mp->p, gp);
    return -EAGAIN;
}

/* ---- switching out of a G ---------------------------------------------------------------- */

/* Switches from the running G to its M's g0, which then performs `act`. Returns when some M
 * runs the G again, possibly another one. */
static void g_switch_to_g0(enum m_action act)
{
    struct m *mp = m_current();
    struct g *gp = atomic_load(&mp->curg);
    mp->act = act;
    ctx_switch(&gp->ctx, &mp->g0);
}

/* An inline child hands its M back to its parent; it continues when some M schedules it. */
static void g_detach(struct g *gp, enum g_inline why)
{
    struct m *mp = m_current();
    gp->inline_state = why;
    atomic_store(&mp->curg, gp->inline_parent);
    ctx_switch(&gp->ctx, &gp->inline_parent->ctx);
}

static struct g *g_running(void)
{
    struct m *mp = m_current();
    return mp ? atomic_load(&mp->curg) : NULL;
}

unsigned coro_procs_idle(void)
{
    return atomic_load_explicit(&sched.npidle, memory_order_relaxed);
}

bool coro_attached(void)
{
    struct g *gp = g_running();
    return gp != NULL && gp->inline_parent != NULL;
}

void coro_detach(void)
{
    struct g *gp = g_running();
    if (gp && gp->inline_parent)
        g_detach(gp, G_INLINE_WAITING);
}

void park(void (*unlock)(struct g *gp, void *arg), void *arg)
{
    struct m *mp = m_current();
    /* Blocking operations detach before they take any lock: the lock is released by this M's
     * g0 after the switch, so it must have been taken on this M, by a G that will park. */
    TRIAD_ASSERT(atomic_load(&mp->curg)->inline_parent == NULL, "park: still attached");
    mp->park_unlock = unlock;
    mp->park_arg = arg;
    g_switch_to_g0(M_ACT_PARK);
}

void coro_yield(void)
{
    struct g *gp = g_running();
    TRIAD_ASSERT(gp != NULL, "coro_yield: not on a goroutine");
    if (gp->inline_parent)
        g_detach(gp, G_INLINE_PREEMPTED); /* the parent queues us globally: a Gosched */
    else
        g_switch_to_g0(M_ACT_YIELD);
}

void coro_safepoint(void)
{
    struct g *gp = g_running();
    if (gp == NULL || !atomic_load_explicit(&gp->preempt, memory_order_relaxed))
        return;
    atomic_store(&gp->preempt, false);
    if (gp->inline_parent)
        g_detach(gp, G_INLINE_PREEMPTED);
    else
        g_switch_to_g0(M_ACT_PREEMPT);
}

int coro_run_inline(void (*fn)(void *), void *arg, struct g **detached)
{
    struct m *mp = m_current();
    struct g *parent = atomic_load(&mp->curg);
    struct g *gp;
    TRIAD_ASSERT(parent && !parent->inline_parent, "coro_run_inline: not on a plain goroutine");
    /* No stack to be had: fn never runs. (Running it as a plain call on the parent's stack
     * would let its waits park the parent, and a caller that expects a detached G back
     * could not tell what happened.) */
    int rc = g_new(fn, arg, &gp);
    if (rc != 0)
        return rc;
    gp->inline_parent = parent;
    gp->inline_state = G_INLINE_RUNNING;
    atomic_store(&gp->status, G_RUNNING);
    atomic_store(&mp->curg, gp);
    uint64_t t0 = trace_begin();
    ctx_switch(&parent->ctx, &gp->ctx);
    /* Back on the parent (on the same M: an attached child never leaves it). */
    gtrace_inline_end(mp, gp, t0);
    if (gp->inline_state == G_INLINE_FINISHED) {
        g_free(m_current()->p, gp);
        return 0;
    }
    gp->inline_parent = NULL;
    atomic_store(&gp->status, G_RUNNABLE);
    *detached = gp;
    return 1;
}

void coro_detached_ready(struct g *gp)
{
    bool preempted = gp->inline_state == G_INLINE_PREEMPTED;
    gp->inline_state = G_INLINE_NONE;
    gtrace_ready(gp, preempted ? "preempted" : "detached");
    if (preempted) {
        atomic_fetch_add(&sched.n_preemptions, 1);
        pthread_mutex_lock(&sched.lock);
        globrunqput(gp);
        pthread_mutex_unlock(&sched.lock);
    } else {
        runqput(m_current()->p, gp, true);
    }
    wakep();
}

void coro_trace_label(const char *label)
{
    struct g *gp = g_running();
    if (gp != NULL)
        gp->trace_label = label;
}
