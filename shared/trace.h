/* trace.h - execution traces in the Trace Event Format (Chrome's JSON, which Perfetto's UI and
 * Go's trace viewer read), written by `--trace FILE`.
 *
 * What a model records is its own business (each model's files say which events they emit);
 * this module gives them a few kinds of record and writes them out:
 *
 *   slice     a span of time on one track, recorded once it has ended (ph "X"). Slices on one
 *             track must nest: a model only records spans that begin and end on the same
 *             thread, or on a track only one thread owns at a time (a P, the GIL).
 *   async     a span that may overlap others of its track (ph "b"/"e", nestable async, one
 *             track per id): the waits of an event loop, which are all in flight at once.
 *   instant   a moment (ph "i", thread scope): a drop request, a steal, a preemption request.
 *   counter   a value over time (ph "C"): a run queue's length, the loop's delay.
 *   flow      an arrow from the slice enclosing its start to the slice enclosing its end
 *             (ph "s" and "f" with bp "e"): a request handed from one thread to another, a
 *             goroutine readied by one M and run by another. Both ends must lie inside a slice
 *             of their track: the writer does not check it, tests/trace/check_trace.py does.
 *
 * Tracks: every OS thread that records is one track (tid = its kernel thread id), named with
 * trace_thread_name. Synthetic tracks (a goroutine P, the GIL) have ids from TRACE_TID_SYNTH
 * up, which no kernel thread id reaches (pid_max is at most 2^22), and are named with
 * trace_track_name. One process is one pid.
 *
 * Cost. Off (the default): every recording site is one load and one predictable branch on
 * trace_on; nothing else runs. On: a record is 64 bytes appended to the calling thread's own
 * buffer (thread-local: no lock, no shared cache line on the hot path) plus one clock read;
 * workloads/micro/trace_cost measures it (README, "Traces"). A thread takes its buffer memory
 * in chunks of TRACE_CHUNK records from a global budget of $TRIAD_TRACE_EVENTS records
 * (default TRACE_EVENTS_DEFAULT, 64 MiB): when the budget is spent, recording stops in every
 * thread (trace_on goes false), the records already taken are kept, and the file says how
 * many were dropped (otherData.dropped_events). A stopped trace is a prefix in time, so its
 * slices are all whole.
 *
 * The file is written when the process exits (an atexit handler, so a SIGTERM drain, a drain
 * timeout and a start-up failure all write it), once every model has joined its threads on
 * the clean path. A process that forks workers (--workers, --cluster) writes nothing itself;
 * each worker writes FILE.<its pid>.
 *
 * Names and notes must be strings that live as long as the process (literals, route paths,
 * the names this module keeps): records hold the pointer, the writer reads it at exit.
 */
#ifndef TRIAD_TRACE_H
#define TRIAD_TRACE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#define TRACE_CHUNK          256       /* records per buffer chunk: 16 KiB */
#define TRACE_EVENTS_DEFAULT (1 << 20) /* records per process: 64 MiB */
#define TRACE_TID_SYNTH      0x40000000u

/* Synthetic tracks the models use. */
#define TRACE_TID_GIL (TRACE_TID_SYNTH + 0)
#define TRACE_TID_P0  (TRACE_TID_SYNTH + 1000) /* coro: P p is TRACE_TID_P0 + p */

/* Record flags. */
#define TRACE_NAME_NUM 0x1u /* the name is followed by the record's `id` in decimal ("G" 12) */
#define TRACE_ID_ARG   0x2u /* X and i: args[note] = id, a second numeric argument */

struct trace_rec {
    uint64_t ts;      /* ns, CLOCK_MONOTONIC; 0: now */
    uint64_t end;     /* X and async: when the span ended */
    uint64_t id;      /* flows and async spans: their id; otherwise the name's number */
    uint64_t val;     /* args[key]; a counter's value */
    const char *name; /* required */
    const char *key;  /* the numeric argument's name, or NULL for none */
    const char *note; /* args.info, or NULL; with TRACE_ID_ARG, the name of args[note] = id */
    uint32_t tid;     /* 0: the calling thread's own track */
    char ph;          /* 'X', 'A' (an async span: written as "b" and "e"), 'i', 'C', 's', 'f' */
    uint8_t flags;    /* TRACE_NAME_NUM, TRACE_ID_ARG */
};

/* True while recording. Relaxed: a site that races the budget running out records one more
 * record or one fewer, which the budget allows for. */
extern atomic_bool trace_on;

static inline bool trace_enabled(void)
{
    return __builtin_expect(atomic_load_explicit(&trace_on, memory_order_relaxed), 0);
}

/* Starts recording for the process, to write `path` at exit, with `process` as the process's
 * name. Call once, from the main thread, before any other thread exists. */
void trace_start(const char *path, const char *process);

/* Writes the file now and stops recording; the exit handler then writes nothing. For
 * programs that want the file before they exit (workloads/micro/trace_cost). */
void trace_stop(void);

/* The monotonic clock in ns (vDSO clock_gettime, ~20 ns). */
uint64_t trace_now(void);

/* Appends a record to the calling thread's buffer (see the cost above). Never blocks apart
 * from the first record of a thread and one chunk allocation per TRACE_CHUNK records. */
void trace_record(const struct trace_rec *r);

/* Names the calling thread's track: "name" if num < 0, else "name<num>"; `sort` orders the
 * tracks (lower first). trace_thread_name_seq numbers threads of one name 0, 1, 2... in the
 * order they ask ("pool-0", "pool-1"). Only while recording; a no-op otherwise. */
void trace_thread_name(const char *name, long num, int sort);
void trace_thread_name_seq(const char *name, int sort);
/* Names a synthetic track. Any thread. */
void trace_track_name(uint32_t tid, const char *name, long num, int sort);
/* The calling thread's track name (kept until exit), or "?" if it has none. */
const char *trace_self_name(void);

/* A request's label (its route's path, "/cpu") and id (stable while it lives), for slices and
 * flows. Core knowledge the models do not have. */
struct req;
const char *trace_req_label(const struct req *r);
struct req_task;
int trace_task_pc(const struct req_task *t); /* the step a task resumes at: 0 first */
static inline uint64_t trace_req_id(const struct req *r)
{
    return (uint64_t)(uintptr_t)r;
}

/* ---- shorthands: each is one branch when tracing is off ------------------------------------ */

/* The start of a slice: 0 when off, which the matching end then ignores. */
static inline uint64_t trace_begin(void)
{
    return trace_enabled() ? trace_now() : 0;
}

/* A slice on this thread from t0 to now, with an optional numeric argument. */
static inline void trace_slice(uint64_t t0, const char *name, const char *key, uint64_t val)
{
    if (t0 != 0 && trace_enabled())
        trace_record(
            &(struct trace_rec){.ts = t0, .name = name, .key = key, .val = val, .ph = 'X'});
}

/* The same with two numeric arguments. */
static inline void trace_slice2(uint64_t t0, const char *name, const char *key, uint64_t val,
                                const char *key2, uint64_t val2)
{
    if (t0 != 0 && trace_enabled())
        trace_record(&(struct trace_rec){.ts = t0,
                                         .name = name,
                                         .key = key,
                                         .val = val,
                                         .note = key2,
                                         .id = val2,
                                         .flags = TRACE_ID_ARG,
                                         .ph = 'X'});
}

static inline void trace_instant(const char *name, const char *key, uint64_t val)
{
    if (trace_enabled())
        trace_record(&(struct trace_rec){.name = name, .key = key, .val = val, .ph = 'i'});
}

/* A counter series `name` (plus `num` in decimal when num >= 0). */
static inline void trace_counter(const char *name, long num, uint64_t value)
{
    if (trace_enabled())
        trace_record(&(struct trace_rec){.name = name,
                                         .id = (uint64_t)num,
                                         .flags = num >= 0 ? TRACE_NAME_NUM : 0,
                                         .key = "value",
                                         .val = value,
                                         .ph = 'C'});
}

/* The two ends of a flow: `name` and `id` pair them. */
static inline void trace_flow_start(const char *name, uint64_t id)
{
    if (trace_enabled())
        trace_record(&(struct trace_rec){.name = name, .id = id, .ph = 's'});
}

static inline void trace_flow_end(const char *name, uint64_t id)
{
    if (trace_enabled())
        trace_record(&(struct trace_rec){.name = name, .id = id, .ph = 'f'});
}

/* An async span from t0 to now, on the track of `id`. */
static inline void trace_async(uint64_t t0, const char *name, uint64_t id, const char *key,
                               uint64_t val)
{
    if (t0 != 0 && trace_enabled())
        trace_record(&(struct trace_rec){
            .ts = t0, .name = name, .id = id, .key = key, .val = val, .ph = 'A'});
}

#endif
