/* gmp.h - the scheduler's objects, shared by its files (proc.c, runq.c, timer.c, sysmon.c,
 * netpoll.c, chan.c). Nothing outside servers/coro includes this; the public face is coro.h.
 *
 * The names follow Go's runtime where the concept is Go's (G, M, P, runq, runnext, schedtick,
 * gfree, nmspinning, npidle, lastpoll), so that proc.go can be read beside proc.c.
 */
#ifndef TRIAD_CORO_GMP_H
#define TRIAD_CORO_GMP_H

#include "coro.h"
#include "ctx.h"
#include "heap.h"
#include "stack.h"

#include <pthread.h>
#include <stddef.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#define RUNQ_SIZE         256  /* runtime2.go: runq [256]guintptr */
#define GFREE_LOCAL_MAX   64   /* proc.go gfput: move a batch to the global list at 64 ... */
#define GFREE_LOCAL_KEEP  32   /* ... until 32 remain */
#define GFREE_GLOBAL_MAX  1024 /* beyond this, stacks are unmapped (Go's GC frees them) */
#define STEAL_TRIES       4    /* proc.go stealWork: stealTries */
#define GLOBAL_CHECK_TICK 61   /* proc.go findRunnable: schedtick%61 == 0 */
#define NETPOLL_EVENTS    128  /* netpoll_epoll.go: var events [128]epollevent */

#define NS_PER_S  1000000000ll
#define NS_PER_MS 1000000ull
#define NS_PER_US 1000ull

/* ---- G: a goroutine ---------------------------------------------------------------------- */

enum g_status {
    G_IDLE,     /* cached on a free list, never run or finished */
    G_RUNNABLE, /* on a run queue, or about to be */
    G_RUNNING,  /* running on an M that holds a P */
    G_SYSCALL,  /* running on an M inside a blocking call; its P may be taken away */
    G_WAITING,  /* parked: a timer, a channel, a WaitGroup or the netpoller will ready it */
    G_DEAD,     /* finished; its stack waits to be cached */
};

/* How an inline child (see coro_run_inline) handed its M back to its parent. */
enum g_inline {
    G_INLINE_NONE,      /* not running inline */
    G_INLINE_RUNNING,   /* running inline on its parent's M */
    G_INLINE_FINISHED,  /* returned: the parent frees it */
    G_INLINE_WAITING,   /* detached before a wait: the parent queues it in runnext */
    G_INLINE_PREEMPTED, /* detached by preemption: the parent queues it globally */
};

struct g {
    struct ctx ctx;
    struct stack stack;
    void (*fn)(void *);
    void *arg;
    _Atomic int status;  /* enum g_status */
    struct g *schedlink; /* next on a run queue, a free list or a wait list */
    uint64_t goid;
    _Atomic bool preempt; /* sysmon's request: yield at the next safe point */
    struct g *inline_parent;
    enum g_inline inline_state;
    struct timer *sleep_timer; /* the timer of a coro_sleep in progress */
    void *param;               /* a value handed over by whoever readied it (channels) */
    const char *trace_label;   /* gtrace.h: what its run slices are called, or NULL */
    bool trace_readied;        /* gtrace.h: a "ready" flow waits for its next run */
};

/* ---- M: an OS thread --------------------------------------------------------------------- */

/* What a G asked its M's g0 to do after switching to it (Go runs these on g0 via mcall). */
enum m_action {
    M_ACT_NONE,
    M_ACT_PARK,         /* park_m: status -> WAITING, then run the unlock callback */
    M_ACT_YIELD,        /* gosched_m: onto the global queue */
    M_ACT_PREEMPT,      /* gopreempt_m: onto the global queue, counted */
    M_ACT_EXIT,         /* goexit0: cache the G and its stack */
    M_ACT_SYSCALL_EXIT, /* exitsyscall0: no P to return to */
};

struct m {
    struct ctx g0;          /* this thread's own stack: the scheduler runs here */
    struct g *_Atomic curg; /* the G running on this M, if any */
    struct p *p;            /* the P held, NULL when idle or in a handed-off syscall */
    struct p *oldp;         /* the P held before entersyscall */
    struct p *nextp;        /* the P startm hands over when waking this M */
    bool spinning;          /* looking for work, counted in sched.nmspinning */
    enum m_action act;
    void (*park_unlock)(struct g *gp, void *arg);
    void *park_arg;
    pthread_mutex_t note_mu; /* notesleep/notewakeup: how an idle M parks */
    pthread_cond_t note_cv;
    bool note;
    struct m *schedlink; /* next idle M */
    struct m *alllink;   /* next in sched.allm */
    pthread_t thread;
    unsigned id;
    /* gtrace.h, this M's own: when the current run and its stretch on a P began (0: not
     * traced), that P, and when the current blocking call began. */
    uint64_t trace_run_ts, trace_seg_ts, trace_sys_ts;
    struct p *trace_seg_p;
};

/* ---- P: the right to run Go code --------------------------------------------------------- */

enum p_status {
    P_IDLE,    /* on the idle list */
    P_RUNNING, /* owned by an M running a G or the scheduler */
    P_SYSCALL, /* its M is in a blocking call; sysmon may hand it to another M */
};

struct timer;

struct p {
    unsigned id;
    _Atomic int status;         /* enum p_status */
    struct m *_Atomic m;        /* the owner; NULL when idle or in P_SYSCALL */
    _Atomic uint32_t schedtick; /* new time slices started on this P */
    _Atomic uint32_t syscalltick;
    struct p *link; /* next idle P */

    /* The local run queue: a ring written only by the owner, taken from by anyone (SPMC). */
    _Atomic uint32_t runqhead, runqtail;
    struct g *_Atomic runq[RUNQ_SIZE];
    struct g *_Atomic runnext; /* readied by the running G: runs next, inheriting the slice */

    struct g *gfree; /* finished Gs with their stacks, for reuse (owner only) */
    unsigned gfree_n;

    pthread_mutex_t timers_lock;
    struct heap timers;
    _Atomic uint64_t timer0; /* earliest deadline in timers (ns), 0 if none */

    /* sysmon's view, touched only by sysmon. */
    uint32_t sm_schedtick, sm_syscalltick;
    uint64_t sm_schedwhen, sm_syscallwhen;
};

/* ---- timers (timer.c) -------------------------------------------------------------------- */

struct timer {
    struct heap_node node;       /* key: deadline in ns on CLOCK_MONOTONIC */
    struct p *_Atomic pp;        /* the heap it is in, or NULL */
    void (*fn)(struct timer *t); /* runs on an M that holds a P, with no lock held */
};

/* ---- the scheduler ----------------------------------------------------------------------- */

struct sched {
    pthread_mutex_t lock; /* sched.lock: global queue, idle lists, free list */
    struct g *runq_head, *runq_tail;
    _Atomic int runqsize;
    struct p *pidle;
    _Atomic unsigned npidle;
    struct m *midle;
    unsigned nmidle, mcount;
    struct m *allm; /* every M started, for shutdown */
    _Atomic unsigned nmspinning;
    struct g *gfree;
    _Atomic unsigned gfree_n; /* read without the lock as a hint */
    /* Gs whose stacks were given back after a burst. The structs themselves are never freed,
     * as in Go (sched.gFree.noStack, and allgs): sysmon reads a P's current G without a lock
     * and may flag one that has just finished. */
    struct g *gfree_nostack;

    unsigned nprocs;
    struct p *allp;
    size_t stack_size;

    _Atomic uint64_t lastpoll;  /* when the netpoller last ran; 0 while an M blocks in it */
    _Atomic uint64_t pollUntil; /* the deadline of that blocking poll */

    _Atomic bool stopping;
    pthread_mutex_t idle_mu; /* coro_wait_idle: signalled when n_live drops to 0 */
    pthread_cond_t idle_cv;
    _Atomic uint64_t goid_next;

    /* sysmon's deep sleep (sysmon.c) */
    pthread_mutex_t sysmon_mu;
    pthread_cond_t sysmon_cv;
    _Atomic bool sysmon_wait;

    /* counters for /stats */
    _Atomic uint64_t n_created, n_live, n_steals, n_stolen, n_preempt_requests, n_preemptions,
        n_handoffs, n_syscalls, n_msyscall, n_mfailed;
    _Atomic bool m_failing; /* the last attempt to start an M failed */
};

extern struct sched sched;

static inline struct g *g_of(struct ctx *c)
{
    return (struct g *)(void *)((char *)c - offsetof(struct g, ctx));
}

/* ---- proc.c ------------------------------------------------------------------------------ */
struct m *m_current(void);
void m_bind(struct m *mp);
void notewakeup(struct m *mp);
void *m_main(void *arg); /* schedule.c */
void g_free(struct p *pp, struct g *gp);
void acquirep(struct m *mp, struct p *pp);
struct p *releasep(struct m *mp);
void stopm(struct m *mp);
void resetspinning(struct m *mp);
uint64_t nanotime(void);
/* Both return false only if an M was needed and could not be started (see newm). */
bool wakep(void);
bool startm(struct p *pp, bool spinning);
void handoffp(struct p *pp);
void ready(struct g *gp, bool next);
void injectglist(struct g *list);
void park(void (*unlock)(struct g *gp, void *arg), void *arg);
/* The usual unlock callback: releases the coro_lock the parking G took (lock.c). */
void park_unlock_cb(struct g *gp, void *lock);
void sysmon_wake(void);

/* ---- runq.c ------------------------------------------------------------------------------ */
void runqput(struct p *pp, struct g *gp, bool next);
struct g *runqget(struct p *pp, bool *inherit_time);
bool runqempty(struct p *pp);
uint32_t runqlen(struct p *pp);
struct g *runqsteal(struct p *pp, struct p *victim, bool steal_runnext);
void globrunqput(struct g *gp);               /* sched.lock held */
void globrunqputbatch(struct g *list);        /* sched.lock held */
struct g *globrunqget(struct p *pp, int max); /* sched.lock held */
struct p *pidleget(void);                     /* sched.lock held */
void pidleput(struct p *pp);                  /* sched.lock held */

/* ---- timer.c ----------------------------------------------------------------------------- */
void timer_start(struct timer *t, uint64_t when, void (*fn)(struct timer *t));
bool timer_stop(struct timer *t);
/* Runs pp's expired timers; returns the next deadline (0 if none) and whether any ran. */
uint64_t timers_check(struct p *pp, uint64_t now, bool *ran);
uint64_t timers_next(void); /* earliest deadline over all Ps, 0 if none */

/* ---- sysmon.c ---------------------------------------------------------------------------- */
int sysmon_start(void);
void sysmon_stop(void);

/* ---- netpoll.c --------------------------------------------------------------------------- */
void netpoll_init(void);
void netpoll_close(void);
bool netpoll_inited(void);
bool netpoll_has_waiters(void);
struct g *netpoll(int64_t delay_ns); /* < 0 blocks, 0 polls; returns a list of readied Gs */
void netpoll_break(void);

#endif
