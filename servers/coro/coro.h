/* coro.h - the goroutine runtime: what the coroutine server and the tests use.
 *
 * A small Go runtime in C (see proc.c for the essay): goroutines (G) on OS threads (M) that
 * hold processors (P), a work-stealing scheduler, per-P timers, a netpoller and sysmon. The
 * functions below mirror Go's: coro_go is `go f(arg)`, coro_yield is runtime.Gosched,
 * coro_sleep_ns is time.Sleep, coro_enter_syscall/coro_exit_syscall bracket a cgo call, and
 * the channel and WaitGroup types behave as Go's (parking, never spinning).
 *
 * Unless marked otherwise, a function may only be called from a goroutine.
 */
#ifndef TRIAD_CORO_H
#define TRIAD_CORO_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct g;

struct coro_config {
    unsigned procs;    /* GOMAXPROCS: the number of Ps */
    size_t stack_size; /* bytes reserved per goroutine stack (only touched pages count) */
};

/* Starts the runtime: Ps, sysmon, the netpoller. Ms start on demand. Call from a plain
 * thread, once. Returns 0 or a negative errno. */
int coro_start(const struct coro_config *cfg);
/* Stops every M and sysmon once no goroutine is left; call from a plain thread after
 * coro_wait_idle(). */
void coro_stop(void);
/* From a plain thread: blocks until the number of live goroutines is zero, or timeout_ns has
 * passed (< 0: no limit). Returns 0 or -ETIMEDOUT. */
int coro_wait_idle(int64_t timeout_ns);

/* `go fn(arg)`: from a goroutine (new G in runnext, as newproc) or from a plain thread (new G
 * on the global queue). Returns 0; -ENOMEM if no stack could be mapped (address space or
 * vm.max_map_count exhausted); -EAGAIN if the G needed an M for an idle P and no thread could
 * be started (Go would throw here; see newm in proc.c). On failure fn never runs: whatever
 * the caller meant to hand it (a suspended connection, a WaitGroup count) is still the
 * caller's to finish: the request executor refuses the request with a 503 and resumes the
 * connection itself. */
int coro_go(void (*fn)(void *), void *arg);
void coro_yield(void);
void coro_sleep_ns(uint64_t ns);
/* The safe point: yields if sysmon asked this goroutine to (it has run > 10 ms). */
void coro_safepoint(void);

/* Brackets a call that may block the thread (entersyscall / exitsyscall). Between the two the
 * goroutine may lose its P to another M, and may come back on a different OS thread. */
void coro_enter_syscall(void);
void coro_exit_syscall(void);

/* Runs fn(arg) as a new goroutine immediately, on this M, while the calling goroutine waits.
 * Returns 0 if it finished; 1 if it detached (coro_detach, or preemption) and was left
 * RUNNABLE-but-unqueued: the caller must then publish it with coro_detached_ready(); or
 * -ENOMEM if no stack could be mapped, and fn never ran (the caller refuses the request: it
 * has suspended nothing yet, so there is nothing to resume). This is the netpoller's fast
 * path: a request that never waits never leaves its M. Needs no new M. */
int coro_run_inline(void (*fn)(void *), void *arg, struct g **detached);
void coro_detached_ready(struct g *gp);
/* In a goroutine started by coro_run_inline: give the M back to the parent before waiting.
 * A no-op once detached, or in any other goroutine. */
void coro_detach(void);
/* True while the calling goroutine still runs inline on its parent's M. */
bool coro_attached(void);
/* Ps with nothing to run right now (a hint: it may change at once). Any thread. */
unsigned coro_procs_idle(void);

/* The netpoller: park the calling goroutine until fd may be readable, timeout_ns passes
 * (< 0: no timeout) or someone kicks it. Callers re-check their descriptor: wake-ups may be
 * spurious, never lost. */
struct coro_pollfd;
int coro_pollfd_open(int fd, struct coro_pollfd **out); /* any thread */
void coro_pollfd_wait(struct coro_pollfd *pd, int64_t timeout_ns);
void coro_pollfd_close(struct coro_pollfd *pd); /* nobody may be waiting */
/* Wakes the goroutine waiting on pd, if any, as if fd were readable. Any thread. */
void coro_pollfd_kick(struct coro_pollfd *pd);

/* Parks the calling goroutine until fd is ready for `events` (CORO_FD_READ, CORO_FD_WRITE), an
 * error or hang-up is pending, or timeout_ns passes (< 0: no deadline). Returns 0, -ETIMEDOUT,
 * or -ENOMEM (no poll descriptor to be had). Readiness is a hint: retry the call. */
#define CORO_FD_READ  0x1u
#define CORO_FD_WRITE 0x2u
int coro_fd_wait(int fd, unsigned events, int64_t timeout_ns);

/* The runtime's mutex (lock.c): may be released by the parking goroutine's g0. Zero is
 * unlocked. */
struct coro_lock {
    _Atomic uint32_t state;
};
void coro_lock(struct coro_lock *l);
void coro_unlock(struct coro_lock *l);

/* sync.WaitGroup */
struct coro_wg {
    struct coro_lock lock;
    long count;
    struct g *waiters; /* parked in coro_wg_wait */
};
void coro_wg_init(struct coro_wg *wg);
void coro_wg_add(struct coro_wg *wg, long delta);
void coro_wg_done(struct coro_wg *wg);
void coro_wg_wait(struct coro_wg *wg);

/* A channel: chan T with elements of elem_size bytes, buffered when cap > 0. */
struct coro_chan;
int coro_chan_create(size_t cap, size_t elem_size, struct coro_chan **out); /* any thread */
void coro_chan_destroy(struct coro_chan *c);                                /* any thread */
void coro_chan_send(struct coro_chan *c, const void *elem);                 /* panics if closed */
bool coro_chan_recv(struct coro_chan *c, void *elem); /* false: closed and drained */
void coro_chan_close(struct coro_chan *c);

/* Names the calling goroutine's run slices in a trace (gtrace.h): a static string, such as a
 * request's route. */
void coro_trace_label(const char *label);

/* Figures for /stats (any thread). */
struct coro_stats {
    unsigned procs, ms_total, ms_idle, ms_spinning, ms_in_syscall, ps_idle;
    uint64_t goroutines_live, goroutines_created, steals, stolen, preempt_requests, preemptions,
        handoffs, syscalls, global_runq, threads_failed;
    uint32_t runq_len[64]; /* per P, the first 64 */
};
void coro_stats_read(struct coro_stats *out);

#endif
