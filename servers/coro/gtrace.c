/* gtrace.c - the scheduler's trace events (see gtrace.h). */
#include "gtrace.h"

static uint32_t gtrace_p_tid(const struct p *pp)
{
    return TRACE_TID_P0 + pp->id;
}

void gtrace_start(unsigned nprocs)
{
    for (unsigned i = 0; i < nprocs; i++)
        trace_track_name(TRACE_TID_P0 + i, "P", (long)i, 100 + (int)i);
}

/* A run of gp from t0 to t1 on track tid, named by its label or its goid. */
static void gtrace_run_slice(uint32_t tid, struct g *gp, uint64_t t0, uint64_t t1, const char *why)
{
    struct trace_rec r = {.ts = t0,
                          .end = t1,
                          .name = gp->trace_label ? gp->trace_label : "G",
                          .id = gp->goid,
                          .flags = gp->trace_label ? 0 : TRACE_NAME_NUM,
                          .key = "g",
                          .val = gp->goid,
                          .note = why,
                          .tid = tid,
                          .ph = 'X'};
    trace_record(&r);
}

void gtrace__run_begin(struct m *mp, struct g *gp)
{
    uint64_t now = trace_now();
    mp->trace_run_ts = now;
    mp->trace_seg_ts = now;
    mp->trace_seg_p = mp->p;
    struct p *pp = mp->p;
    if (gp->trace_readied) {
        gp->trace_readied = false;
        trace_record(&(struct trace_rec){
            .name = "ready", .id = gp->goid, .tid = gtrace_p_tid(pp), .ph = 'f'});
    }
    bool next = atomic_load_explicit(&pp->runnext, memory_order_relaxed) != NULL;
    trace_counter("runq P", (long)pp->id, runqlen(pp) + (next ? 1 : 0));
    trace_counter("runq global", -1,
                  (uint64_t)atomic_load_explicit(&sched.runqsize, memory_order_relaxed));
}

static const char *gtrace_why(enum m_action act)
{
    switch (act) {
    case M_ACT_PARK:
        return "park";
    case M_ACT_YIELD:
        return "yield";
    case M_ACT_PREEMPT:
        return "preempted";
    case M_ACT_EXIT:
        return "exit";
    case M_ACT_SYSCALL_EXIT:
        return "syscall, no P on return";
    case M_ACT_NONE:
        break;
    }
    return "?";
}

void gtrace__run_end(struct m *mp, struct g *gp, enum m_action act)
{
    uint64_t now = trace_now();
    const char *why = gtrace_why(act);
    if (mp->trace_seg_p != NULL)
        gtrace_run_slice(gtrace_p_tid(mp->trace_seg_p), gp, mp->trace_seg_ts, now, why);
    gtrace_run_slice(0, gp, mp->trace_run_ts, now, why);
    mp->trace_run_ts = 0;
    mp->trace_seg_p = NULL;
}

void gtrace__ready(struct g *gp, const char *why)
{
    if (gp->trace_readied) /* already marked (the netpoller marks, then injectglist) */
        return;
    uint64_t t0 = trace_now();
    gp->trace_readied = true;
    trace_flow_start("ready", gp->goid);
    trace_record(&(struct trace_rec){
        .ts = t0, .name = why, .key = "g", .val = gp->goid, .note = "ready", .ph = 'X'});
}

void gtrace__syscall_enter(struct m *mp)
{
    uint64_t now = trace_now();
    struct g *gp = atomic_load(&mp->curg);
    if (mp->trace_seg_p != NULL)
        gtrace_run_slice(gtrace_p_tid(mp->trace_seg_p), gp, mp->trace_seg_ts, now, "syscall");
    mp->trace_seg_p = NULL;
    mp->trace_sys_ts = now;
}

void gtrace__syscall_exit(struct m *mp, bool has_p)
{
    uint64_t now = trace_now();
    trace_record(&(struct trace_rec){.ts = mp->trace_sys_ts,
                                     .end = now,
                                     .name = "syscall",
                                     .note = has_p ? "kept a P" : "no P",
                                     .ph = 'X'});
    if (has_p) {
        mp->trace_seg_ts = now;
        mp->trace_seg_p = mp->p;
    }
}

void gtrace__inline_end(struct m *mp, struct g *gp, uint64_t t0)
{
    uint64_t now = trace_now();
    const char *why = gp->inline_state == G_INLINE_FINISHED  ? "exit"
                      : gp->inline_state == G_INLINE_WAITING ? "detached to wait"
                                                             : "preempted";
    if (mp->trace_seg_p != NULL)
        gtrace_run_slice(gtrace_p_tid(mp->trace_seg_p), gp, t0, now, why);
    if (mp->trace_run_ts != 0)
        gtrace_run_slice(0, gp, t0, now, why);
}

void gtrace__p_instant(struct p *pp, const char *what, const char *key, uint64_t val)
{
    trace_record(&(struct trace_rec){
        .name = what, .key = key, .val = val, .tid = gtrace_p_tid(pp), .ph = 'i'});
}
