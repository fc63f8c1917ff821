/* trace.c - recording (see trace.h); the file is written by trace_write.c. */
#include "trace_impl.h"

#include "check.h"
#include "req_impl.h"
#include "route.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

atomic_bool trace_on;
struct trace_state trace_state = {.mu = PTHREAD_MUTEX_INITIALIZER};

/* The calling thread's buffer. Read only inside trace_record and the naming functions, which
 * are not inlined into their callers: a goroutine that moves to another M between two records
 * must see the new thread's buffer (servers/coro/ctx.h, point 6). */
static _Thread_local struct trace_buf *trace_self;

uint64_t trace_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* ---- start, fork, exit ----------------------------------------------------------------- */

static void trace_atexit(void)
{
    trace_write();
}

/* Around fork (prefork.c): the parent only supervises, so it writes nothing; each worker
 * starts with an empty registry (the parent records nothing before forking, but its main
 * thread's buffer, if any, must not be written twice) and writes FILE.<pid>. */
static void trace_arena_init(void);

static void trace_atfork_parent(void)
{
    trace_state.forked_parent = true;
    if (trace_state.arena != NULL) /* it records nothing: give the memory back */
        munmap(trace_state.arena, (size_t)trace_state.nchunks * sizeof(struct trace_chunk));
    trace_state.arena = NULL;
}

static void trace_atfork_child(void)
{
    pthread_mutex_init(&trace_state.mu, NULL);
    if (trace_state.arena != NULL)
        munmap(trace_state.arena, (size_t)trace_state.nchunks * sizeof(struct trace_chunk));
    trace_state.arena = NULL;
    atomic_store(&trace_state.next_chunk, 0);
    trace_arena_init();
    trace_state.bufs = NULL;
    trace_state.forked_parent = false;
    trace_state.worker = true;
    trace_self = NULL;
}

static uint64_t trace_budget_from_env(void)
{
    const char *v = getenv("TRIAD_TRACE_EVENTS");
    char *end;
    errno = 0;
    unsigned long long n = v ? strtoull(v, &end, 10) : 0;
    if (v == NULL || errno != 0 || end == v || *end != '\0')
        return TRACE_EVENTS_DEFAULT;
    if (n < TRACE_CHUNK)
        n = TRACE_CHUNK;
    if (n > (1ull << 26)) /* 4 GiB of records: past that, the viewers cannot open the file */
        n = 1ull << 26;
    return n;
}

void trace_start(const char *path, const char *process)
{
    TRIAD_ASSERT(trace_state.path == NULL, "trace_start: called twice");
    trace_state.path = strdup(path);
    TRIAD_ASSERT(trace_state.path != NULL, "trace_start: out of memory");
    snprintf(trace_state.process, sizeof(trace_state.process), "%s", process);
    trace_state.budget = trace_budget_from_env();
    trace_state.nchunks = (long)(trace_state.budget / TRACE_CHUNK);
    trace_arena_init();
    pthread_atfork(NULL, trace_atfork_parent, trace_atfork_child);
    atexit(trace_atexit);
    atomic_store(&trace_on, true);
}

void trace_stop(void)
{
    trace_write();
    free(trace_state.path);
    trace_state.path = NULL;
}

/* ---- buffers --------------------------------------------------------------------------- */

/* The arena: mapped and touched page by page at trace_start (before the server announces
 * itself) and again in each forked worker, which must not write into its parent's copy (a
 * copy-on-write fault per page). Touched up front because a first touch is what costs: on the
 * reference VM a page fault costs 10-25 us (shadow paging), which spread over a page's 64
 * records would be 150-400 ns each, ten times the record itself. Touching the default 64 MiB
 * takes 0.2-0.4 s there. */
static void trace_arena_init(void)
{
    size_t bytes = (size_t)trace_state.nchunks * sizeof(struct trace_chunk);
    void *a = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (a == MAP_FAILED) {
        atomic_store(&trace_state.next_chunk, trace_state.nchunks); /* nothing to hand out */
        return;
    }
    long page = sysconf(_SC_PAGESIZE);
    for (size_t off = 0; off < bytes; off += (size_t)page)
        ((volatile char *)a)[off] = 0;
    trace_state.arena = a;
}

static struct trace_buf *trace_buf_get(void)
{
    struct trace_buf *b = trace_self;
    if (b != NULL)
        return b;
    b = calloc(1, sizeof(*b));
    if (b == NULL)
        return NULL;
    b->tid = (uint32_t)gettid();
    b->sort = 100;
    if (b->tid == (uint32_t)getpid()) /* the main thread, until it names itself */
        snprintf(b->name, sizeof(b->name), "main");
    pthread_mutex_lock(&trace_state.mu);
    b->next = trace_state.bufs;
    trace_state.bufs = b;
    pthread_mutex_unlock(&trace_state.mu);
    trace_self = b;
    return b;
}

/* A new chunk from the budget, or NULL once it is spent: then every thread stops recording
 * (`full`), so that the trace is a prefix in time rather than each thread's own prefix. */
static struct trace_chunk *trace_chunk_new(struct trace_buf *b)
{
    /* The arena was set up before any thread but the main one existed (or in this worker's
     * fork handler, likewise). */
    long i = atomic_fetch_add(&trace_state.next_chunk, 1);
    struct trace_chunk *c = i < trace_state.nchunks ? &trace_state.arena[i] : NULL;
    if (c == NULL) {
        if (!atomic_exchange(&trace_state.full, true))
            atomic_store(&trace_state.full_at, trace_now());
        return NULL;
    }
    if (b->tail != NULL)
        atomic_store_explicit(&b->tail->next, c, memory_order_release);
    else
        atomic_store_explicit(&b->head, c, memory_order_release);
    b->tail = c;
    return c;
}

__attribute__((noinline)) void trace_record(const struct trace_rec *r)
{
    struct trace_buf *b = trace_buf_get();
    if (b == NULL)
        return;
    if (atomic_load_explicit(&trace_state.full, memory_order_relaxed)) {
        atomic_fetch_add_explicit(&b->dropped, 1, memory_order_relaxed); /* this thread's line */
        return;
    }
    struct trace_chunk *c = b->tail;
    uint32_t n = c ? atomic_load_explicit(&c->n, memory_order_relaxed) : TRACE_CHUNK;
    if (n == TRACE_CHUNK) {
        if ((c = trace_chunk_new(b)) == NULL) {
            atomic_fetch_add_explicit(&b->dropped, 1, memory_order_relaxed);
            return;
        }
        n = 0;
    }
    struct trace_rec *d = &c->recs[n];
    *d = *r;
    uint64_t now = trace_now();
    if (d->ts == 0)
        d->ts = now;
    if (d->end == 0 && (d->ph == 'X' || d->ph == 'A'))
        d->end = now;
    if (d->tid == 0)
        d->tid = b->tid;
    atomic_store_explicit(&c->n, n + 1, memory_order_release);
}

/* ---- names ----------------------------------------------------------------------------- */

static void trace_name_format(char *dst, const char *name, long num)
{
    if (num < 0)
        snprintf(dst, TRACE_NAME_LEN, "%s", name);
    else
        snprintf(dst, TRACE_NAME_LEN, "%s%ld", name, num);
}

__attribute__((noinline)) void trace_thread_name(const char *name, long num, int sort)
{
    if (!trace_enabled())
        return;
    struct trace_buf *b = trace_buf_get();
    if (b == NULL)
        return;
    pthread_mutex_lock(&trace_state.mu);
    trace_name_format(b->name, name, num);
    b->sort = sort;
    pthread_mutex_unlock(&trace_state.mu);
}

__attribute__((noinline)) void trace_thread_name_seq(const char *name, int sort)
{
    if (!trace_enabled())
        return;
    long num = 0;
    pthread_mutex_lock(&trace_state.mu);
    unsigned i = 0;
    while (i < trace_state.nseqs && strcmp(trace_state.seqs[i].name, name) != 0)
        i++;
    if (i == trace_state.nseqs && i < TRACE_SEQS_MAX)
        trace_state.seqs[trace_state.nseqs++].name = name;
    if (i < TRACE_SEQS_MAX)
        num = (long)trace_state.seqs[i].next++;
    pthread_mutex_unlock(&trace_state.mu);
    trace_thread_name(name, num, sort);
}

void trace_track_name(uint32_t tid, const char *name, long num, int sort)
{
    if (!trace_enabled())
        return;
    pthread_mutex_lock(&trace_state.mu);
    unsigned i = 0;
    while (i < trace_state.ntracks && trace_state.tracks[i].tid != tid)
        i++;
    if (i < TRACE_TRACKS_MAX) {
        struct trace_track *t = &trace_state.tracks[i];
        if (i == trace_state.ntracks)
            trace_state.ntracks++;
        t->tid = tid;
        t->sort = sort;
        trace_name_format(t->name, name, num);
    }
    pthread_mutex_unlock(&trace_state.mu);
}

__attribute__((noinline)) const char *trace_self_name(void)
{
    struct trace_buf *b = trace_buf_get();
    /* The name is written under the mutex, by this thread only: reading it here, on the same
     * thread, needs no lock. */
    return b != NULL && b->name[0] != '\0' ? b->name : "?";
}

const char *trace_req_label(const struct req *r)
{
    return r->route != NULL ? r->route->path : "?";
}

int trace_task_pc(const struct req_task *t)
{
    return t->pc;
}
