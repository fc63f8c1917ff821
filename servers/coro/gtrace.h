/* gtrace.h - the goroutine scheduler's trace events (trace.h), in the shape of Go's own
 * execution tracer (runtime/trace.go: GoStart, GoPark, GoUnpark, GoPreempt, GoSysCall,
 * ProcSteal...), written as Trace Event Format slices:
 *
 *   P tracks   (TRACE_TID_P0 + p, "P0"...): one slice per stretch of a goroutine's run while it
 *              holds that P, named by its label (a request's route, "shard") or "G<goid>",
 *              with args.g and args.info = how it ended: "park", "preempted", "yield",
 *              "exit", "syscall" (the P left with the M into a blocking call). Instants for
 *              steals ("steal", args.from = the victim), preemption requests and hand-offs.
 *   M tracks   (the OS thread, "M0"...): the same runs, each whole (a blocking call inside is a
 *              nested "syscall" slice, during which the P track shows someone else or nothing);
 *              "netpoll" while the M blocks in epoll_wait; a tiny "ready" slice where the M
 *              made a goroutine runnable.
 *   flows      "ready", id = goid: from the slice that readied a goroutine (a timer, a channel,
 *              the netpoller, `go`, a preemption) to the P slice where it next runs.
 *   counters   "runq P<p>" (local queue plus runnext) and "runq global", at each schedule.
 *   sysmon     its own track: preemption requests and hand-offs.
 *
 * Every function is a branch when tracing is off; the state lives in struct m and struct g.
 */
#ifndef TRIAD_CORO_GTRACE_H
#define TRIAD_CORO_GTRACE_H

#include "gmp.h"

#include "trace.h"

void gtrace__run_begin(struct m *mp, struct g *gp);
void gtrace__run_end(struct m *mp, struct g *gp, enum m_action act);
void gtrace__ready(struct g *gp, const char *why);
void gtrace__syscall_enter(struct m *mp);
void gtrace__syscall_exit(struct m *mp, bool has_p);
void gtrace__inline_end(struct m *mp, struct g *gp, uint64_t t0);
void gtrace__p_instant(struct p *pp, const char *what, const char *key, uint64_t val);
void gtrace_start(unsigned nprocs);

static inline void gtrace_run_begin(struct m *mp, struct g *gp)
{
    if (trace_enabled())
        gtrace__run_begin(mp, gp);
}

static inline void gtrace_run_end(struct m *mp, struct g *gp, enum m_action act)
{
    if (mp->trace_run_ts != 0)
        gtrace__run_end(mp, gp, act);
}

/* Before the goroutine is published (a run queue, the global queue): its runner reads what
 * this writes. */
static inline void gtrace_ready(struct g *gp, const char *why)
{
    if (trace_enabled())
        gtrace__ready(gp, why);
}

static inline void gtrace_syscall_enter(struct m *mp)
{
    if (mp->trace_run_ts != 0)
        gtrace__syscall_enter(mp);
}

static inline void gtrace_syscall_exit(struct m *mp, bool has_p)
{
    if (mp->trace_run_ts != 0)
        gtrace__syscall_exit(mp, has_p);
}

static inline void gtrace_inline_end(struct m *mp, struct g *gp, uint64_t t0)
{
    if (t0 != 0)
        gtrace__inline_end(mp, gp, t0);
}

static inline void gtrace_p_instant(struct p *pp, const char *what, const char *key, uint64_t val)
{
    if (trace_enabled())
        gtrace__p_instant(pp, what, key, val);
}

#endif
