/* runtime.c - starting and stopping the runtime, and its figures for /stats. */
#include "gmp.h"
#include "gtrace.h"

#include "check.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

int coro_start(const struct coro_config *cfg)
{
    TRIAD_ASSERT(cfg->procs >= 1 && cfg->procs <= 1024, "coro_start: bad procs");
    memset(&sched, 0, sizeof(sched)); /* a runtime may be started again after coro_stop */
    pthread_mutex_init(&sched.lock, NULL);
    pthread_mutex_init(&sched.sysmon_mu, NULL);
    pthread_cond_init(&sched.sysmon_cv, NULL);
    pthread_mutex_init(&sched.idle_mu, NULL);
    pthread_cond_init(&sched.idle_cv, NULL);
    sched.nprocs = cfg->procs;
    sched.stack_size = cfg->stack_size;
    sched.allp = calloc(cfg->procs, sizeof(struct p));
    if (sched.allp == NULL)
        return -ENOMEM;
    atomic_store(&sched.goid_next, 1);
    pthread_mutex_lock(&sched.lock);
    for (unsigned i = cfg->procs; i-- > 0;) { /* pushed in reverse, so P0 is taken first */
        struct p *pp = &sched.allp[i];
        pp->id = i;
        pthread_mutex_init(&pp->timers_lock, NULL);
        heap_init(&pp->timers);
        pidleput(pp);
    }
    pthread_mutex_unlock(&sched.lock);
    atomic_store(&sched.lastpoll, nanotime());
    gtrace_start(cfg->procs);
    netpoll_init();
    return sysmon_start();
}

int coro_wait_idle(int64_t timeout_ns)
{
    struct timespec deadline;
    clock_gettime(CLOCK_REALTIME, &deadline); /* pthread_cond_timedwait's default clock */
    deadline.tv_sec += timeout_ns / NS_PER_S;
    deadline.tv_nsec += timeout_ns % NS_PER_S;
    if (deadline.tv_nsec >= NS_PER_S) {
        deadline.tv_sec++;
        deadline.tv_nsec -= NS_PER_S;
    }
    int rc = 0;
    pthread_mutex_lock(&sched.idle_mu);
    while (atomic_load(&sched.n_live) > 0 && rc == 0)
        rc = timeout_ns < 0 ? pthread_cond_wait(&sched.idle_cv, &sched.idle_mu)
                            : pthread_cond_timedwait(&sched.idle_cv, &sched.idle_mu, &deadline);
    pthread_mutex_unlock(&sched.idle_mu);
    return rc == 0 ? 0 : -ETIMEDOUT;
}

/* Wakes every idle M; the ones that are running see `stopping` at their next findRunnable. */
static void coro_wake_all(void)
{
    pthread_mutex_lock(&sched.lock);
    struct m *mp;
    while ((mp = sched.midle) != NULL) {
        sched.midle = mp->schedlink;
        sched.nmidle--;
        mp->nextp = NULL;
        notewakeup(mp);
    }
    pthread_mutex_unlock(&sched.lock);
    netpoll_break();
}

static void coro_free_gs(struct g *gp)
{
    while (gp) {
        struct g *next = gp->schedlink;
        stack_destroy(&gp->stack);
        free(gp);
        gp = next;
    }
}

void coro_stop(void)
{
    TRIAD_ASSERT(atomic_load(&sched.n_live) == 0, "coro_stop: goroutines still running");
    pthread_mutex_lock(&sched.lock); /* under the lock: newm checks it there */
    atomic_store(&sched.stopping, true);
    pthread_mutex_unlock(&sched.lock);
    sysmon_stop();
    coro_wake_all();
    pthread_mutex_lock(&sched.lock);
    struct m *all = sched.allm;
    sched.allm = NULL;
    pthread_mutex_unlock(&sched.lock);
    while (all) {
        coro_wake_all(); /* an M may have been on its way to sleep the first time */
        pthread_join(all->thread, NULL);
        struct m *next = all->alllink;
        pthread_cond_destroy(&all->note_cv);
        pthread_mutex_destroy(&all->note_mu);
        free(all);
        all = next;
    }
    for (unsigned i = 0; i < sched.nprocs; i++) {
        struct p *pp = &sched.allp[i];
        coro_free_gs(pp->gfree);
        heap_close(&pp->timers);
        pthread_mutex_destroy(&pp->timers_lock);
    }
    coro_free_gs(sched.gfree);
    coro_free_gs(sched.gfree_nostack); /* stack_destroy ignores the missing stacks */
    sched.gfree = sched.gfree_nostack = NULL;
    netpoll_close();
    free(sched.allp);
    sched.allp = NULL;
    sched.nprocs = 0;
}

void coro_stats_read(struct coro_stats *out)
{
    *out = (struct coro_stats){0};
    out->procs = sched.nprocs;
    pthread_mutex_lock(&sched.lock);
    out->ms_total = sched.mcount;
    out->ms_idle = sched.nmidle;
    pthread_mutex_unlock(&sched.lock);
    out->ms_spinning = atomic_load(&sched.nmspinning);
    out->ms_in_syscall = (unsigned)atomic_load(&sched.n_msyscall);
    out->ps_idle = atomic_load(&sched.npidle);
    out->goroutines_live = atomic_load(&sched.n_live);
    out->goroutines_created = atomic_load(&sched.n_created);
    out->steals = atomic_load(&sched.n_steals);
    out->stolen = atomic_load(&sched.n_stolen);
    out->preempt_requests = atomic_load(&sched.n_preempt_requests);
    out->preemptions = atomic_load(&sched.n_preemptions);
    out->handoffs = atomic_load(&sched.n_handoffs);
    out->syscalls = atomic_load(&sched.n_syscalls);
    out->global_runq = (uint64_t)atomic_load(&sched.runqsize);
    out->threads_failed = atomic_load(&sched.n_mfailed);
    for (unsigned i = 0; i < sched.nprocs && i < 64; i++)
        out->runq_len[i] =
            runqlen(&sched.allp[i]) + (atomic_load(&sched.allp[i].runnext) != NULL ? 1 : 0);
}
