/* sysmon.c - the system monitor: a thread with no P that watches the others (proc.go sysmon).
 *
 * Every tick it
 *   - polls the network if nobody has for 10 ms, so that readiness is not left waiting behind
 *     goroutines that never block (with --procs 1 and a CPU-bound request, this is how the
 *     next request gets noticed at all);
 *   - retakes Ps from Ms stuck in a blocking call for more than one tick, when there is other
 *     work, and hands them to another M (handoffp), creating a thread if needed;
 *   - asks a G to yield when its P has run the same time slice for 10 ms (preemption: the
 *     request is a flag the core's safe points check; see proc.c).
 *
 * The tick starts at 20 us and, after 50 idle ticks (about 1 ms) in which it found nothing to
 * do, doubles up to 10 ms. When every P is idle it stops ticking altogether and sleeps until a
 * P is taken again (acquirep wakes it): an idle server costs no CPU.
 */
#include "gmp.h"
#include "gtrace.h"

#include "check.h"

#include <time.h>
#include <unistd.h>

#define SYSMON_TICK_MIN_US         20
#define SYSMON_TICK_MAX_US         10000
#define SYSMON_IDLE_BEFORE_BACKOFF 50
#define FORCE_PREEMPT_NS           (10 * NS_PER_MS) /* proc.go forcePreemptNS */
#define NETPOLL_STALE_NS           (10 * NS_PER_MS)
#define SYSCALL_RETAKE_IDLE_NS     (10 * NS_PER_MS)

static pthread_t sysmon_thread;

void sysmon_wake(void)
{
    pthread_mutex_lock(&sched.sysmon_mu);
    atomic_store(&sched.sysmon_wait, false);
    pthread_cond_signal(&sched.sysmon_cv);
    pthread_mutex_unlock(&sched.sysmon_mu);
}

/* Sleeps while every P is idle (Go's sysmonwait). */
static void sysmon_deep_sleep(void)
{
    pthread_mutex_lock(&sched.sysmon_mu);
    atomic_store(&sched.sysmon_wait, true);
    /* Re-check after publishing sysmon_wait: acquirep reads it after taking a P. */
    while (atomic_load(&sched.sysmon_wait) && !atomic_load(&sched.stopping) &&
           atomic_load(&sched.npidle) == sched.nprocs)
        pthread_cond_wait(&sched.sysmon_cv, &sched.sysmon_mu);
    atomic_store(&sched.sysmon_wait, false);
    pthread_mutex_unlock(&sched.sysmon_mu);
}

static void preemptone(struct p *pp)
{
    struct m *mp = atomic_load(&pp->m);
    struct g *gp = mp ? atomic_load(&mp->curg) : NULL;
    if (gp && !atomic_exchange(&gp->preempt, true)) {
        atomic_fetch_add(&sched.n_preempt_requests, 1);
        trace_instant("preempt request", "p", pp->id);
        gtrace_p_instant(pp, "preempt request", NULL, 0); /* gp's fields are its M's */
    }
}

/* One look at a P in a blocking call: true if it was handed off. */
static bool sysmon_retake_syscall(struct p *pp, uint64_t now)
{
    uint32_t t = atomic_load(&pp->syscalltick);
    if (pp->sm_syscalltick != t) { /* a call we had not seen: give it one tick */
        pp->sm_syscalltick = t;
        pp->sm_syscallwhen = now;
        return false;
    }
    /* Nothing else to run and other Ms could take over: leave it up to 10 ms. */
    if (runqempty(pp) && atomic_load(&sched.nmspinning) + atomic_load(&sched.npidle) > 0 &&
        pp->sm_syscallwhen + SYSCALL_RETAKE_IDLE_NS > now)
        return false;
    int expect = P_SYSCALL;
    if (!atomic_compare_exchange_strong(&pp->status, &expect, P_IDLE))
        return false; /* the call returned meanwhile */
    atomic_fetch_add(&sched.n_handoffs, 1);
    trace_instant("handoff", "p", pp->id);
    gtrace_p_instant(pp, "handoff", NULL, 0);
    handoffp(pp);
    return true;
}

/* Preempts long time slices and retakes Ps from long calls; returns how many Ps it retook. */
static unsigned retake(uint64_t now)
{
    unsigned n = 0;
    for (unsigned i = 0; i < sched.nprocs; i++) {
        struct p *pp = &sched.allp[i];
        int s = atomic_load(&pp->status);
        if (s == P_RUNNING || s == P_SYSCALL) {
            uint32_t t = atomic_load(&pp->schedtick);
            if (pp->sm_schedtick != t) {
                pp->sm_schedtick = t;
                pp->sm_schedwhen = now;
            } else if (pp->sm_schedwhen + FORCE_PREEMPT_NS <= now) {
                preemptone(pp); /* again every tick until a new slice starts, as Go does */
            }
        }
        if (s == P_SYSCALL && sysmon_retake_syscall(pp, now))
            n++;
    }
    return n;
}

static void sysmon_poll_network(uint64_t now)
{
    uint64_t last = atomic_load(&sched.lastpoll);
    if (!netpoll_inited() || last == 0 || last + NETPOLL_STALE_NS > now)
        return;
    if (!atomic_compare_exchange_strong(&sched.lastpoll, &last, now))
        return;
    injectglist(netpoll(0));
}

static void *sysmon_main(void *arg)
{
    (void)arg;
    unsigned idle = 0, delay = SYSMON_TICK_MIN_US;
    trace_thread_name("sysmon", -1, 900);
    while (!atomic_load(&sched.stopping)) {
        if (idle == 0)
            delay = SYSMON_TICK_MIN_US;
        else if (idle > SYSMON_IDLE_BEFORE_BACKOFF && delay < SYSMON_TICK_MAX_US)
            delay = delay * 2 > SYSMON_TICK_MAX_US ? SYSMON_TICK_MAX_US : delay * 2;
        nanosleep(&(struct timespec){0, (long)delay * 1000}, NULL);
        if (atomic_load(&sched.npidle) == sched.nprocs) {
            sysmon_deep_sleep();
            idle = 0;
            continue;
        }
        uint64_t now = nanotime();
        sysmon_poll_network(now);
        if (retake(now) != 0)
            idle = 0;
        else
            idle++;
    }
    return NULL;
}

int sysmon_start(void)
{
    return -pthread_create(&sysmon_thread, NULL, sysmon_main, NULL);
}

void sysmon_stop(void)
{
    sysmon_wake();
    pthread_join(sysmon_thread, NULL);
}
