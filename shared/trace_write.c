/* trace_write.c - the trace file: every thread's records, sorted per track, as the Trace
 * Event Format's JSON object form (see trace.h).
 *
 * Order in the file: by track (tid), then by time, and at equal times a slice before what it
 * contains (the longer first) and both before instants, counters and flow ends. Viewers sort
 * by themselves; the order is for tests/trace/check_trace.py, which checks that timestamps
 * never go backwards on a track, and for a reader of the raw file.
 *
 * Cost: one pass to count, one qsort of pointers (O(n log n): about a second for the default
 * budget of 2^20 records), and ~150 bytes of text per record. Written to FILE.tmp, then
 * renamed: a reader never sees half a file.
 */
#include "trace_impl.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* One event of the file. An async record becomes two ("b" at ts, "e" at end). */
struct trace_out {
    const struct trace_rec *r;
    uint64_t ts;
    char ph;
};

static int trace_rank(char ph)
{
    return ph == 'X' ? 0 : ph == 'e' ? 1 : 2;
}

static int trace_out_cmp(const void *pa, const void *pb)
{
    const struct trace_out *a = pa, *b = pb;
    if (a->r->tid != b->r->tid)
        return a->r->tid < b->r->tid ? -1 : 1;
    if (a->ts != b->ts)
        return a->ts < b->ts ? -1 : 1;
    if (trace_rank(a->ph) != trace_rank(b->ph))
        return trace_rank(a->ph) - trace_rank(b->ph);
    if (a->ph == 'X' && b->ph == 'X' && a->r->end != b->r->end)
        return a->r->end > b->r->end ? -1 : 1; /* the enclosing slice first */
    return a < b ? -1 : a > b;                 /* recording order within a buffer */
}

static void trace_put_str(FILE *f, const char *s)
{
    fputc('"', f);
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            fprintf(f, "\\%c", c);
        else if (c < 0x20)
            fprintf(f, "\\u%04x", c);
        else
            fputc(c, f);
    }
    fputc('"', f);
}

/* Microseconds with three decimals, from nanoseconds, without a double's rounding. */
static void trace_put_us(FILE *f, const char *key, uint64_t ns)
{
    fprintf(f, ",\"%s\":%llu.%03llu", key, (unsigned long long)(ns / 1000),
            (unsigned long long)(ns % 1000));
}

static void trace_put_name(FILE *f, const struct trace_rec *r)
{
    char buf[128];
    if (r->flags & TRACE_NAME_NUM)
        snprintf(buf, sizeof(buf), "%s%llu", r->name, (unsigned long long)r->id);
    else
        snprintf(buf, sizeof(buf), "%s", r->name);
    trace_put_str(f, buf);
}

static const char *trace_cat(char ph)
{
    switch (ph) {
    case 's':
    case 'f':
        return "flow";
    case 'b':
    case 'e':
        return "wait";
    case 'C':
        return "counter";
    default:
        return "triad";
    }
}

static void trace_put_event(FILE *f, const struct trace_out *o, int pid, bool first)
{
    const struct trace_rec *r = o->r;
    fputs(first ? "\n{\"name\":" : ",\n{\"name\":", f);
    trace_put_name(f, r);
    fprintf(f, ",\"cat\":\"%s\",\"ph\":\"%c\"", trace_cat(o->ph), o->ph);
    trace_put_us(f, "ts", o->ts);
    if (o->ph == 'X')
        trace_put_us(f, "dur", r->end > r->ts ? r->end - r->ts : 0);
    fprintf(f, ",\"pid\":%d,\"tid\":%u", pid, r->tid);
    if (o->ph == 's' || o->ph == 'f' || o->ph == 'b' || o->ph == 'e')
        fprintf(f, ",\"id\":\"0x%llx\"", (unsigned long long)r->id);
    if (o->ph == 'f')
        fputs(",\"bp\":\"e\"", f);
    if (o->ph == 'i')
        fputs(",\"s\":\"t\"", f);
    if (o->ph != 'e' && (r->key != NULL || r->note != NULL)) {
        fputs(",\"args\":{", f);
        if (r->key != NULL) {
            trace_put_str(f, r->key);
            fprintf(f, ":%llu", (unsigned long long)r->val);
        }
        if (r->note != NULL) {
            fputs(r->key != NULL ? "," : "", f);
            trace_put_str(f, (r->flags & TRACE_ID_ARG) ? r->note : "info");
            fputc(':', f);
            if (r->flags & TRACE_ID_ARG)
                fprintf(f, "%llu", (unsigned long long)r->id);
            else
                trace_put_str(f, r->note);
        }
        fputc('}', f);
    }
    fputc('}', f);
}

static void trace_put_meta(FILE *f, const char *what, int pid, uint32_t tid, const char *name,
                           int sort)
{
    fprintf(f,
            ",\n{\"name\":\"%s_name\",\"ph\":\"M\",\"pid\":%d,\"tid\":%u,\"args\":{\"name\":", what,
            pid, tid);
    trace_put_str(f, name);
    fprintf(f,
            "}},\n{\"name\":\"%s_sort_index\",\"ph\":\"M\",\"pid\":%d,\"tid\":%u,"
            "\"args\":{\"sort_index\":%d}}",
            what, pid, tid, sort);
}

/* Every published record of every buffer, async spans split in two. */
static struct trace_out *trace_collect(size_t *count, uint64_t *dropped)
{
    size_t n = 0, cap = 0;
    struct trace_out *out = NULL;
    *dropped = 0;
    for (struct trace_buf *b = trace_state.bufs; b != NULL; b = b->next) {
        *dropped += atomic_load_explicit(&b->dropped, memory_order_relaxed);
        struct trace_chunk *c = atomic_load_explicit(&b->head, memory_order_acquire);
        for (; c != NULL; c = atomic_load_explicit(&c->next, memory_order_acquire)) {
            uint32_t k = atomic_load_explicit(&c->n, memory_order_acquire);
            if (out == NULL || n + 2 * k > cap) {
                size_t ncap = cap ? cap * 2 : 4096;
                while (ncap < n + 2 * k)
                    ncap *= 2;
                struct trace_out *grown = realloc(out, ncap * sizeof(*out));
                if (grown == NULL)
                    goto done;
                out = grown;
                cap = ncap;
            }
            for (uint32_t i = 0; i < k; i++) {
                const struct trace_rec *r = &c->recs[i];
                if (r->ph == 'A') {
                    out[n++] = (struct trace_out){r, r->ts, 'b'};
                    out[n++] = (struct trace_out){r, r->end, 'e'};
                } else {
                    out[n++] = (struct trace_out){r, r->ts, r->ph};
                }
            }
        }
    }
done:
    *count = n;
    return out;
}

static void trace_put_all(FILE *f, struct trace_out *out, size_t n, uint64_t dropped, int pid)
{
    fputs("{\"displayTimeUnit\":\"ns\",\"traceEvents\":[", f);
    for (size_t i = 0; i < n; i++)
        trace_put_event(f, &out[i], pid, i == 0);
    if (n == 0)
        fprintf(f, "\n{\"name\":\"empty\",\"ph\":\"i\",\"s\":\"t\",\"ts\":0,\"pid\":%d,\"tid\":%d}",
                pid, pid);
    fprintf(
        f,
        ",\n{\"name\":\"process_name\",\"ph\":\"M\",\"pid\":%d,\"tid\":0,\"args\":{\"name\":", pid);
    trace_put_str(f, trace_state.process);
    fputs("}}", f);
    for (struct trace_buf *b = trace_state.bufs; b != NULL; b = b->next) {
        char name[TRACE_NAME_LEN + 16];
        if (b->name[0] != '\0')
            snprintf(name, sizeof(name), "%s", b->name);
        else
            snprintf(name, sizeof(name), "thread %u", b->tid);
        trace_put_meta(f, "thread", pid, b->tid, name, b->sort);
    }
    for (unsigned i = 0; i < trace_state.ntracks; i++)
        trace_put_meta(f, "thread", pid, trace_state.tracks[i].tid, trace_state.tracks[i].name,
                       trace_state.tracks[i].sort);
    uint64_t full_at = atomic_load(&trace_state.full_at);
    fprintf(f,
            "\n],\"otherData\":{\"tracer\":\"triad\",\"events\":%zu,\"dropped_events\":%llu,"
            "\"budget_events\":%llu,\"record_bytes\":%zu,\"stopped_at_us\":%llu}}\n",
            n, (unsigned long long)dropped, (unsigned long long)trace_state.budget,
            sizeof(struct trace_rec), (unsigned long long)(full_at / 1000));
}

void trace_write(void)
{
    if (trace_state.path == NULL || trace_state.forked_parent)
        return;
    atomic_store(&trace_on, false);
    char path[4096], tmp[4112];
    if (trace_state.worker)
        snprintf(path, sizeof(path), "%s.%d", trace_state.path, (int)getpid());
    else
        snprintf(path, sizeof(path), "%s", trace_state.path);
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    pthread_mutex_lock(&trace_state.mu);
    size_t n;
    uint64_t dropped;
    struct trace_out *out = trace_collect(&n, &dropped);
    if (n > 0)
        qsort(out, n, sizeof(*out), trace_out_cmp);
    FILE *f = fopen(tmp, "w");
    if (f == NULL) {
        fprintf(stderr, "trace: cannot write %s\n", tmp);
    } else {
        static char iobuf[1 << 20];
        setvbuf(f, iobuf, _IOFBF, sizeof(iobuf));
        trace_put_all(f, out, n, dropped, (int)getpid());
        if (fclose(f) != 0 || rename(tmp, path) != 0)
            fprintf(stderr, "trace: cannot write %s\n", path);
    }
    pthread_mutex_unlock(&trace_state.mu);
    free(out);
}
