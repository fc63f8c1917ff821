/* schedule.c - one round of scheduling: find a runnable G, run it, deal with how it stopped;
 * and the system-call bracket that lets a blocked M lose its P.
 *
 * Each M runs sched_loop on its own stack (g0). A G returns control to g0 by switching to it
 * with an action (park, yield, preempt, exit, syscall exit) recorded in its M; g0 carries the
 * action out after the switch has completed, when the G's registers are safely saved. That is
 * Go's mcall(park_m) / mcall(gosched_m) / goexit0 / exitsyscall0, one function here.
 *
 * findRunnable follows Go 1.19's order step by step; the numbered comments match it.
 */
#include "gmp.h"
#include "gtrace.h"

#include "check.h"

#include <stdlib.h>

/* Coprime strides for the stealing order: visiting Ps at start, start+s, start+2s... mod n
 * reaches every P once when gcd(s, n) == 1 (proc.go randomOrder). */
static unsigned steal_stride(unsigned n, unsigned r)
{
    for (unsigned s = 1 + r % n;; s = s % n + 1) {
        unsigned a = s, b = n;
        while (b) {
            unsigned t = a % b;
            a = b;
            b = t;
        }
        if (a == 1)
            return s;
    }
}

static unsigned fastrand(void)
{
    static _Thread_local uint32_t x;
    if (x == 0)
        x = (uint32_t)nanotime() | 1;
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    return x;
}

/* Steals from other Ps: four passes in random order, half a queue at a time; the last pass
 * also runs their expired timers and may take their runnext (proc.go stealWork). */
static struct g *steal_work(struct m *mp, uint64_t now, uint64_t *poll_until, bool *new_work)
{
    struct p *pp = mp->p;
    unsigned n = sched.nprocs;
    for (int pass = 0; pass < STEAL_TRIES; pass++) {
        bool last = pass == STEAL_TRIES - 1;
        unsigned r = fastrand(), start = r % n, stride = steal_stride(n, r >> 8);
        for (unsigned k = 0; k < n; k++) {
            struct p *p2 = &sched.allp[(start + k * stride) % n];
            if (p2 == pp)
                continue;
            if (last) {
                bool ran = false, inherit;
                uint64_t w = timers_check(p2, now, &ran);
                if (w != 0 && (*poll_until == 0 || w < *poll_until))
                    *poll_until = w;
                if (ran) { /* its timers readied Gs onto our queue */
                    struct g *gp = runqget(pp, &inherit);
                    if (gp)
                        return gp;
                    *new_work = true;
                }
            }
            if (atomic_load(&p2->status) != P_IDLE) {
                struct g *gp = runqsteal(pp, p2, last);
                if (gp) {
                    gtrace_p_instant(pp, "steal", "from", p2->id);
                    return gp;
                }
            }
        }
    }
    return NULL;
}

/* The spinning M has given its P back: look once more at every queue before sleeping, or work
 * submitted just before our decrement of nmspinning would be stranded (the "delicate dance"
 * in proc.go). Returns true if it took a P back to go after it. */
static bool recheck_after_spinning(struct m *mp)
{
    for (unsigned i = 0; i < sched.nprocs; i++) {
        if (runqempty(&sched.allp[i]))
            continue;
        pthread_mutex_lock(&sched.lock);
        struct p *pp = pidleget();
        pthread_mutex_unlock(&sched.lock);
        if (pp == NULL)
            return false;
        acquirep(mp, pp);
        mp->spinning = true;
        atomic_fetch_add(&sched.nmspinning, 1);
        return true;
    }
    return false;
}

/* Blocks in the netpoller until the earliest timer (step 11). Returns a G to run, or NULL
 * after setting *again when the caller should start over with a P. */
static struct g *block_in_netpoll(struct m *mp, uint64_t poll_until, bool was_spinning, bool *again)
{
    uint64_t now = nanotime();
    int64_t delay = poll_until == 0 ? -1 : poll_until > now ? (int64_t)(poll_until - now) : 0;
    atomic_store(&sched.pollUntil, poll_until);
    uint64_t t0 = trace_begin();
    struct g *list = atomic_load(&sched.stopping) ? NULL : netpoll(delay);
    trace_slice(t0, "netpoll", NULL, 0);
    atomic_store(&sched.pollUntil, 0);
    atomic_store(&sched.lastpoll, nanotime());
    pthread_mutex_lock(&sched.lock);
    struct p *pp = pidleget();
    pthread_mutex_unlock(&sched.lock);
    if (pp == NULL) {
        injectglist(list);
        return NULL;
    }
    acquirep(mp, pp);
    *again = true;
    if (list != NULL) {
        struct g *gp = list;
        atomic_store(&gp->status, G_RUNNABLE);
        injectglist(gp->schedlink);
        gp->schedlink = NULL;
        return gp;
    }
    if (was_spinning) {
        mp->spinning = true;
        atomic_fetch_add(&sched.nmspinning, 1);
    }
    return NULL;
}

/* Finds a runnable G, parking the M until there is one; NULL means shut down. */
static struct g *find_runnable(struct m *mp, bool *inherit)
{
    struct g *gp;
top:
    if (atomic_load(&sched.stopping)) {
        if (mp->p) {
            if (mp->spinning)
                resetspinning(mp);
            pthread_mutex_lock(&sched.lock);
            pidleput(releasep(mp));
            pthread_mutex_unlock(&sched.lock);
        }
        return NULL;
    }
    if (mp->p == NULL) { /* woken at shutdown without a P, or lost the race for one */
        stopm(mp);
        goto top;
    }
    struct p *pp = mp->p;
    uint64_t now = nanotime();
    bool ran = false, new_work = false;
    *inherit = false;
    /* 1. This P's timers. */
    uint64_t poll_until = timers_check(pp, now, &ran);
    /* 2. Fairness: every 61st slice, the global queue first. */
    if (atomic_load(&pp->schedtick) % GLOBAL_CHECK_TICK == 0 && atomic_load(&sched.runqsize) > 0) {
        pthread_mutex_lock(&sched.lock);
        gp = globrunqget(pp, 1);
        pthread_mutex_unlock(&sched.lock);
        if (gp)
            return gp;
    }
    /* 3. The local queue (runnext first). */
    if ((gp = runqget(pp, inherit)) != NULL)
        return gp;
    /* 4. The global queue. */
    if (atomic_load(&sched.runqsize) > 0) {
        pthread_mutex_lock(&sched.lock);
        gp = globrunqget(pp, 0);
        pthread_mutex_unlock(&sched.lock);
        if (gp)
            return gp;
    }
    /* 5. The netpoller, without blocking, if anyone waits on it and no M blocks in it. */
    if (netpoll_has_waiters() && atomic_load(&sched.lastpoll) != 0) {
        struct g *list = netpoll(0);
        if (list) {
            gp = list;
            injectglist(gp->schedlink);
            gp->schedlink = NULL;
            atomic_store(&gp->status, G_RUNNABLE);
            return gp;
        }
    }
    /* 6. Steal, if spinning is allowed: at most half the busy Ps may have a spinning M. */
    unsigned busy = sched.nprocs - atomic_load(&sched.npidle);
    if (mp->spinning || 2 * atomic_load(&sched.nmspinning) < busy) {
        if (!mp->spinning) {
            mp->spinning = true;
            atomic_fetch_add(&sched.nmspinning, 1);
        }
        if ((gp = steal_work(mp, now, &poll_until, &new_work)) != NULL)
            return gp;
        if (new_work)
            goto top;
    }
    /* 7. Nothing: give the P back, unless the global queue filled meanwhile. */
    pthread_mutex_lock(&sched.lock);
    if (atomic_load(&sched.runqsize) > 0) {
        gp = globrunqget(pp, 0);
        pthread_mutex_unlock(&sched.lock);
        return gp;
    }
    pidleput(releasep(mp));
    pthread_mutex_unlock(&sched.lock);
    /* 8. Stop spinning, then look again at every queue (see recheck_after_spinning). */
    bool was_spinning = mp->spinning;
    if (mp->spinning) {
        mp->spinning = false;
        atomic_fetch_sub(&sched.nmspinning, 1);
        atomic_thread_fence(memory_order_seq_cst);
        if (recheck_after_spinning(mp))
            goto top;
    }
    /* 9. Block in the netpoller until the earliest timer, if no other M does. */
    poll_until = timers_next();
    if (netpoll_inited() && (netpoll_has_waiters() || poll_until != 0) &&
        atomic_exchange(&sched.lastpoll, 0) != 0) {
        bool again = false;
        gp = block_in_netpoll(mp, poll_until, was_spinning, &again);
        if (gp)
            return gp;
        if (again)
            goto top;
    } else if (poll_until != 0 && netpoll_inited()) {
        uint64_t until = atomic_load(&sched.pollUntil);
        if (until == 0 || until > poll_until)
            netpoll_break(); /* the blocked poller must wake for our timer */
    }
    /* 10. Park until startm hands us a P. */
    stopm(mp);
    goto top;
}

/* exitsyscall0: the G came back from a blocking call and found no P. */
static struct g *exitsyscall0(struct m *mp, struct g *gp)
{
    pthread_mutex_lock(&sched.lock);
    struct p *pp = pidleget();
    atomic_store(&gp->status, G_RUNNABLE);
    if (pp == NULL) {
        gtrace_ready(gp, "syscall exit");
        globrunqput(gp);
    }
    pthread_mutex_unlock(&sched.lock);
    if (pp != NULL) {
        acquirep(mp, pp);
        return gp;
    }
    stopm(mp);
    return NULL;
}

/* Carries out what the G that just switched to g0 asked for. May return a G to run at once. */
static struct g *after_switch(struct m *mp, struct g *gp)
{
    atomic_store(&mp->curg, NULL);
    enum m_action act = mp->act;
    mp->act = M_ACT_NONE;
    gtrace_run_end(mp, gp, act);
    switch (act) {
    case M_ACT_PARK:
        atomic_store(&gp->status, G_WAITING);
        if (mp->park_unlock)
            mp->park_unlock(gp, mp->park_arg);
        mp->park_unlock = NULL;
        return NULL;
    case M_ACT_PREEMPT:
        atomic_fetch_add(&sched.n_preemptions, 1);
        /* fall through: a preempted G is yielded to the global queue, as gopreempt_m does */
    case M_ACT_YIELD:
        atomic_store(&gp->status, G_RUNNABLE);
        gtrace_ready(gp, act == M_ACT_PREEMPT ? "preempted" : "yield");
        pthread_mutex_lock(&sched.lock);
        globrunqput(gp);
        pthread_mutex_unlock(&sched.lock);
        wakep();
        return NULL;
    case M_ACT_EXIT:
        g_free(mp->p, gp);
        return NULL;
    case M_ACT_SYSCALL_EXIT:
        return exitsyscall0(mp, gp);
    case M_ACT_NONE:
        break;
    }
    TRIAD_ASSERT(0, "after_switch: a G switched to g0 without an action");
}

/* Runs gp until it switches back to g0; returns the G it switched back for (execute +
 * the return half of mcall). */
static struct g *execute(struct m *mp, struct g *gp, bool inherit_time)
{
    struct p *pp = mp->p;
    atomic_store(&gp->status, G_RUNNING);
    atomic_store(&gp->preempt, false);
    if (!inherit_time)
        atomic_fetch_add(&pp->schedtick, 1); /* a new time slice: sysmon's clock restarts */
    atomic_store(&mp->curg, gp);
    gtrace_run_begin(mp, gp);
    struct ctx *back = ctx_switch(&mp->g0, &gp->ctx);
    return g_of(back);
}

static void sched_loop(struct m *mp)
{
    bool inherit = false;
    struct g *gp = NULL;
    for (;;) {
        if (gp == NULL && (gp = find_runnable(mp, &inherit)) == NULL)
            return;
        if (mp->spinning)
            resetspinning(mp);
        struct g *back = execute(mp, gp, inherit);
        gp = after_switch(mp, back);
        inherit = false;
    }
}

void *m_main(void *arg)
{
    struct m *mp = arg;
    m_bind(mp);
    if (trace_enabled()) { /* newm numbers us under sched.lock, after pthread_create */
        pthread_mutex_lock(&sched.lock);
        unsigned id = mp->id;
        pthread_mutex_unlock(&sched.lock);
        trace_thread_name("M", (long)id, 200 + (int)id);
    }
    ctx_init_thread(&mp->g0);
    struct p *pp = mp->nextp;
    mp->nextp = NULL;
    acquirep(mp, pp);
    sched_loop(mp);
    ctx_destroy(&mp->g0);
    return NULL;
}

/* ---- system calls ------------------------------------------------------------------------ */

void coro_enter_syscall(void)
{
    coro_detach(); /* a blocking call never holds the netpoller's M */
    struct m *mp = m_current();
    struct g *gp = atomic_load(&mp->curg);
    struct p *pp = mp->p;
    TRIAD_ASSERT(gp != NULL && pp != NULL, "coro_enter_syscall: not on a goroutine");
    gtrace_syscall_enter(mp);
    atomic_store(&gp->status, G_SYSCALL);
    mp->oldp = pp;
    mp->p = NULL;
    atomic_store(&pp->m, NULL);
    atomic_fetch_add(&pp->syscalltick, 1);
    atomic_fetch_add(&sched.n_syscalls, 1);
    atomic_fetch_add(&sched.n_msyscall, 1);
    atomic_store(&pp->status, P_SYSCALL); /* from here on sysmon may take it */
}

void coro_exit_syscall(void)
{
    struct m *mp = m_current();
    struct g *gp = atomic_load(&mp->curg);
    struct p *oldp = mp->oldp;
    mp->oldp = NULL;
    atomic_fetch_sub(&sched.n_msyscall, 1);
    /* Fast path: our P is still ours (nobody needed it). */
    int expect = P_SYSCALL;
    if (atomic_compare_exchange_strong(&oldp->status, &expect, P_IDLE)) {
        acquirep(mp, oldp);
        atomic_fetch_add(&oldp->syscalltick, 1);
        atomic_store(&gp->status, G_RUNNING);
        gtrace_syscall_exit(mp, true);
        return;
    }
    /* It was handed off: any idle P will do. */
    if (atomic_load(&sched.npidle) > 0) {
        pthread_mutex_lock(&sched.lock);
        struct p *pp = pidleget();
        pthread_mutex_unlock(&sched.lock);
        if (pp != NULL) {
            acquirep(mp, pp);
            atomic_store(&gp->status, G_RUNNING);
            gtrace_syscall_exit(mp, true);
            return;
        }
    }
    gtrace_syscall_exit(mp, false);
    /* None: queue ourselves globally and let g0 park this M (exitsyscall0). We continue on
     * whichever M picks us up. */
    mp->act = M_ACT_SYSCALL_EXIT;
    ctx_switch(&gp->ctx, &mp->g0);
}
