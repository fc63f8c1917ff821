/* runq.c - run queues: each P's local ring and runnext, the global queue, stealing, and the
 * idle-P list.
 *
 * The local queue is Go's (proc.go runqput/runqget/runqgrab): a 256-slot ring that only the
 * owning P writes at the tail, while the owner and thieves take from the head with a CAS. So a
 * put is a plain store plus a release store of the tail: no lock and no atomic read-modify-
 * write on the common path. When the ring is full, half of it moves to the global queue in one
 * batch under sched.lock (runqputslow), so the lock is taken once per 128 spills, not per G.
 *
 * runnext holds the G most recently readied by the running G. It runs next and inherits the
 * current time slice, so a pair of goroutines that ping-pong (a channel hand-off) share one
 * slice and cannot starve the rest of the queue for more than 10 ms. Only the last of the four
 * stealing passes may take a victim's runnext, and only after a 3 us pause if the victim is
 * running: Go's comment puts a channel hand-off at ~50 ns, so the victim is very likely about
 * to run it itself.
 *
 * Slots are atomics with relaxed ordering: a thief may read a slot the owner is about to
 * overwrite after the ring wraps; Go tolerates that read because the CAS on head then fails,
 * C11 requires the read itself to be atomic.
 */
#include "gmp.h"

#include "check.h"

#include <time.h>
#include <unistd.h>

static uint32_t load_acq(_Atomic uint32_t *v)
{
    return atomic_load_explicit(v, memory_order_acquire);
}

bool runqempty(struct p *pp)
{
    /* Re-read until head, tail and runnext are seen consistently (proc.go runqempty). */
    for (;;) {
        uint32_t head = load_acq(&pp->runqhead);
        uint32_t tail = load_acq(&pp->runqtail);
        struct g *next = atomic_load_explicit(&pp->runnext, memory_order_acquire);
        if (tail == load_acq(&pp->runqtail))
            return head == tail && next == NULL;
    }
}

uint32_t runqlen(struct p *pp)
{
    return load_acq(&pp->runqtail) - load_acq(&pp->runqhead);
}

/* The ring is full: move half of it plus gp to the global queue. Returns false if a thief
 * emptied part of the ring meanwhile (then the caller just retries the fast path). */
static bool runqputslow(struct p *pp, struct g *gp, uint32_t head, uint32_t tail)
{
    struct g *batch[RUNQ_SIZE / 2 + 1];
    uint32_t n = (tail - head) / 2;
    TRIAD_ASSERT(n == RUNQ_SIZE / 2, "runqputslow: queue is not full");
    for (uint32_t i = 0; i < n; i++)
        batch[i] = atomic_load_explicit(&pp->runq[(head + i) % RUNQ_SIZE], memory_order_relaxed);
    if (!atomic_compare_exchange_strong_explicit(&pp->runqhead, &head, head + n,
                                                 memory_order_release, memory_order_relaxed))
        return false;
    batch[n] = gp;
    for (uint32_t i = 0; i < n; i++)
        batch[i]->schedlink = batch[i + 1];
    batch[n]->schedlink = NULL;
    pthread_mutex_lock(&sched.lock);
    globrunqputbatch(batch[0]);
    pthread_mutex_unlock(&sched.lock);
    return true;
}

void runqput(struct p *pp, struct g *gp, bool next)
{
    if (next) {
        gp = atomic_exchange_explicit(&pp->runnext, gp, memory_order_acq_rel);
        if (gp == NULL)
            return;
        /* The G that was in runnext goes to the tail. */
    }
    for (;;) {
        uint32_t head = load_acq(&pp->runqhead);
        uint32_t tail = atomic_load_explicit(&pp->runqtail, memory_order_relaxed);
        if (tail - head < RUNQ_SIZE) {
            atomic_store_explicit(&pp->runq[tail % RUNQ_SIZE], gp, memory_order_relaxed);
            atomic_store_explicit(&pp->runqtail, tail + 1, memory_order_release);
            return;
        }
        if (runqputslow(pp, gp, head, tail))
            return;
    }
}

struct g *runqget(struct p *pp, bool *inherit_time)
{
    struct g *next = atomic_load_explicit(&pp->runnext, memory_order_acquire);
    /* Only the owner empties runnext other than by stealing, so a failed CAS means a thief
     * took it: fall through to the ring. */
    if (next != NULL &&
        atomic_compare_exchange_strong_explicit(&pp->runnext, &next, NULL, memory_order_acq_rel,
                                                memory_order_relaxed)) {
        *inherit_time = true;
        return next;
    }
    *inherit_time = false;
    for (;;) {
        uint32_t head = load_acq(&pp->runqhead);
        uint32_t tail = atomic_load_explicit(&pp->runqtail, memory_order_relaxed);
        if (tail == head)
            return NULL;
        struct g *gp = atomic_load_explicit(&pp->runq[head % RUNQ_SIZE], memory_order_relaxed);
        if (atomic_compare_exchange_weak_explicit(&pp->runqhead, &head, head + 1,
                                                  memory_order_release, memory_order_relaxed))
            return gp;
    }
}

/* Takes half of victim's ring into batch[]; with steal_runnext, its runnext when the ring is
 * empty. Returns how many were taken (proc.go runqgrab). */
static uint32_t runqgrab(struct p *victim, struct g **batch, bool steal_runnext)
{
    for (;;) {
        uint32_t head = load_acq(&victim->runqhead);
        uint32_t tail = load_acq(&victim->runqtail);
        uint32_t n = tail - head;
        n = n - n / 2;
        if (n == 0) {
            if (!steal_runnext)
                return 0;
            struct g *next = atomic_load_explicit(&victim->runnext, memory_order_acquire);
            if (next == NULL)
                return 0;
            if (atomic_load_explicit(&victim->status, memory_order_relaxed) == P_RUNNING)
                /* let the victim run it: ~50x a channel hand-off */
                nanosleep(&(struct timespec){0, 3000}, NULL);
            if (!atomic_compare_exchange_strong_explicit(
                    &victim->runnext, &next, NULL, memory_order_acq_rel, memory_order_relaxed))
                continue;
            batch[0] = next;
            return 1;
        }
        if (n > RUNQ_SIZE / 2)
            continue; /* read an inconsistent head/tail pair: retry */
        for (uint32_t i = 0; i < n; i++)
            batch[i] =
                atomic_load_explicit(&victim->runq[(head + i) % RUNQ_SIZE], memory_order_relaxed);
        if (atomic_compare_exchange_strong_explicit(&victim->runqhead, &head, head + n,
                                                    memory_order_release, memory_order_relaxed))
            return n;
    }
}

struct g *runqsteal(struct p *pp, struct p *victim, bool steal_runnext)
{
    struct g *batch[RUNQ_SIZE / 2];
    uint32_t n = runqgrab(victim, batch, steal_runnext);
    if (n == 0)
        return NULL;
    /* Keep one to run now; the rest go to our own (empty) ring. */
    uint32_t tail = atomic_load_explicit(&pp->runqtail, memory_order_relaxed);
    TRIAD_ASSERT(tail - load_acq(&pp->runqhead) + n - 1 < RUNQ_SIZE,
                 "runqsteal: no room in the thief's queue");
    for (uint32_t i = 1; i < n; i++)
        atomic_store_explicit(&pp->runq[(tail + i - 1) % RUNQ_SIZE], batch[i],
                              memory_order_relaxed);
    atomic_store_explicit(&pp->runqtail, tail + n - 1, memory_order_release);
    atomic_fetch_add_explicit(&sched.n_steals, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&sched.n_stolen, n, memory_order_relaxed);
    return batch[0];
}

/* ---- the global queue: a FIFO list under sched.lock ---------------------------------------- */

void globrunqput(struct g *gp)
{
    gp->schedlink = NULL;
    if (sched.runq_tail)
        sched.runq_tail->schedlink = gp;
    else
        sched.runq_head = gp;
    sched.runq_tail = gp;
    atomic_fetch_add_explicit(&sched.runqsize, 1, memory_order_relaxed);
}

void globrunqputbatch(struct g *list)
{
    while (list) {
        struct g *next = list->schedlink;
        globrunqput(list);
        list = next;
    }
}

/* Takes min(len/nprocs + 1, max, 128) Gs: returns one, puts the rest on pp's ring. Sharing out
 * by nprocs keeps one P from emptying the queue while others idle (proc.go globrunqget). */
struct g *globrunqget(struct p *pp, int max)
{
    int size = atomic_load_explicit(&sched.runqsize, memory_order_relaxed);
    if (size == 0)
        return NULL;
    int n = size / (int)sched.nprocs + 1;
    if (n > size)
        n = size;
    if (max > 0 && n > max)
        n = max;
    if (n > RUNQ_SIZE / 2)
        n = RUNQ_SIZE / 2;
    /* Callers take a batch only when the local ring is empty (or take one G), so the puts
     * below cannot spill back into the global queue, whose lock we hold. */
    TRIAD_ASSERT(n == 1 || runqlen(pp) + (uint32_t)n <= RUNQ_SIZE, "globrunqget: no room");
    atomic_fetch_sub_explicit(&sched.runqsize, n, memory_order_relaxed);
    struct g *gp = sched.runq_head;
    sched.runq_head = gp->schedlink;
    for (int i = 1; i < n; i++) {
        struct g *more = sched.runq_head;
        sched.runq_head = more->schedlink;
        runqput(pp, more, false);
    }
    if (sched.runq_head == NULL)
        sched.runq_tail = NULL;
    return gp;
}

/* ---- idle Ps: a stack under sched.lock --------------------------------------------------- */

void pidleput(struct p *pp)
{
    TRIAD_ASSERT(runqempty(pp), "pidleput: P has runnable Gs");
    atomic_store_explicit(&pp->status, P_IDLE, memory_order_release);
    pp->link = sched.pidle;
    sched.pidle = pp;
    atomic_fetch_add(&sched.npidle, 1);
}

struct p *pidleget(void)
{
    struct p *pp = sched.pidle;
    if (pp) {
        sched.pidle = pp->link;
        atomic_fetch_sub(&sched.npidle, 1);
    }
    return pp;
}
