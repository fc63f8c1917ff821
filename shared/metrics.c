/* metrics.c - counters and their two renderings (see metrics.h). */
#include "metrics.h"

#include "cache.h"
#include "check.h"
#include "pg_async.h"
#include "upstream.h"
#include "triad_config.h"

#include <math.h>

#include <stdarg.h>
#include <stdbool.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define METRICS_STATUS_MIN 100
#define METRICS_STATUS_MAX 599

static const char *metrics_model_name = "unknown";
static metrics_gauges_cb metrics_model_gauges;
static struct timespec metrics_started;
static _Atomic long metrics_inflight;
static _Atomic unsigned long metrics_total;
static _Atomic unsigned long metrics_by_status[METRICS_STATUS_MAX - METRICS_STATUS_MIN + 1];

void metrics_init(const char *model, metrics_gauges_cb gauges_cb)
{
    metrics_model_name = model;
    metrics_model_gauges = gauges_cb;
    clock_gettime(CLOCK_MONOTONIC, &metrics_started);
}

const char *metrics_model(void)
{
    return metrics_model_name;
}

void metrics_request_begin(void)
{
    /* Sequentially consistent, unlike the other counters: the drain relies on it (http.c). */
    atomic_fetch_add(&metrics_inflight, 1);
}

void metrics_request_answer(int status)
{
    TRIAD_ASSERT(status >= METRICS_STATUS_MIN && status <= METRICS_STATUS_MAX, "bad status");
    atomic_fetch_add_explicit(&metrics_total, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&metrics_by_status[status - METRICS_STATUS_MIN], 1,
                              memory_order_relaxed);
}

void metrics_request_end(void)
{
    atomic_fetch_sub_explicit(&metrics_inflight, 1, memory_order_relaxed);
}

long metrics_in_flight(void)
{
    return atomic_load(&metrics_inflight);
}

/* ---- gathering --------------------------------------------------------------------------- */

struct metrics_process {
    double threads, rss_bytes, cpu_s;
};

/* From /proc/self/stat (threads, utime, stime) and /proc/self/statm (resident pages). */
static void metrics_process_read(struct metrics_process *p)
{
    memset(p, 0, sizeof(*p));
    FILE *f = fopen("/proc/self/stat", "r");
    if (f) {
        char buf[1024];
        size_t n = fread(buf, 1, sizeof(buf) - 1, f);
        buf[n] = '\0';
        fclose(f);
        /* Fields after the command name, which is in parentheses and may contain spaces:
         * state(3) ... utime(14) stime(15) ... num_threads(20). */
        char *s = strrchr(buf, ')');
        unsigned long utime = 0, stime = 0;
        long threads = 0;
        if (s && sscanf(s + 2, /* NOLINT(cert-err34-c): the kernel's numbers; count checked */
                        "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu %*d %*d %*d "
                        "%*d %ld",
                        &utime, &stime, &threads) == 3) {
            p->threads = (double)threads;
            p->cpu_s = (double)(utime + stime) / (double)sysconf(_SC_CLK_TCK);
        }
    }
    f = fopen("/proc/self/statm", "r");
    if (f) {
        unsigned long size, resident;
        if (fscanf(f, "%lu %lu", &size, &resident) == 2) /* NOLINT(cert-err34-c): as above */
            p->rss_bytes = (double)resident * (double)sysconf(_SC_PAGESIZE);
        fclose(f);
    }
}

static double metrics_uptime(void)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (double)(now.tv_sec - metrics_started.tv_sec) +
           (double)(now.tv_nsec - metrics_started.tv_nsec) / 1e9;
}

/* Core gauges (the cache) followed by the model's. */
static size_t metrics_gauges(struct metrics_gauge *g, size_t cap)
{
    struct cache_stats cs;
    cache_stats_read(&cs);
    size_t n = 0;
    g[n++] = METRICS_GAUGE("cache_hits_total", "World cache hits", (double)cs.hits);
    g[n++] = METRICS_GAUGE("cache_misses_total", "World cache misses", (double)cs.misses);
    g[n++] =
        METRICS_GAUGE("cache_stale_fills_total", "Cache fills dropped because an update raced them",
                      (double)cs.stale_fills);
    if (metrics_model_gauges)
        n += metrics_model_gauges(g + n, cap - n);
    n += upstream_gauges(g + n, cap - n);
    n += pg_async_gauges(g + n, cap - n);
    return n;
}

/* ---- /stats ------------------------------------------------------------------------------ */

static json_t *metrics_status_json(void)
{
    json_t *by = json_object();
    for (int s = METRICS_STATUS_MIN; by && s <= METRICS_STATUS_MAX; s++) {
        unsigned long n =
            atomic_load_explicit(&metrics_by_status[s - METRICS_STATUS_MIN], memory_order_relaxed);
        char key[8];
        snprintf(key, sizeof(key), "%d", s);
        if (n > 0 && json_object_set_new(by, key, json_integer((json_int_t)n)) != 0) {
            json_decref(by);
            return NULL;
        }
    }
    return by;
}

struct metrics_gauge metrics_gauge_labeled(const char *name, const char *help, const char *label,
                                           const char *label_value, double value)
{
    struct metrics_gauge g = {.name = name, .help = help, .value = value, .label = label};
    snprintf(g.label_value, sizeof(g.label_value), "%s", label_value);
    return g;
}

static json_t *metrics_number(double v)
{
    /* Counts print as integers; only true fractions (delays, seconds) as reals. */
    bool whole = v == floor(v) && fabs(v) < 9007199254740992.0;
    return whole ? json_integer((json_int_t)v) : json_real(v);
}

/* One key per figure: the name (plus a summary's suffix); a labelled family is one object
 * keyed by the label's values. */
static void metrics_gauge_json(json_t *gauges, const struct metrics_gauge *g)
{
    char key[96];
    snprintf(key, sizeof(key), "%s%s", g->name, g->suffix ? g->suffix : "");
    if (g->label == NULL) {
        json_object_set_new(gauges, key, metrics_number(g->value));
        return;
    }
    json_t *family = json_object_get(gauges, key);
    if (family == NULL) {
        family = json_object();
        if (family == NULL || json_object_set_new(gauges, key, family) != 0)
            return;
    }
    json_object_set_new(family, g->label_value, metrics_number(g->value));
}

json_t *metrics_json(void)
{
    struct metrics_process p;
    struct metrics_gauge g[METRICS_GAUGES_MAX];
    metrics_process_read(&p);
    size_t ng = metrics_gauges(g, METRICS_GAUGES_MAX);
    json_t *gauges = json_object();
    for (size_t i = 0; gauges && i < ng; i++)
        metrics_gauge_json(gauges, &g[i]);
    unsigned long total = atomic_load_explicit(&metrics_total, memory_order_relaxed);
    return json_pack("{s:s, s:s, s:i, s:f, s:{s:I, s:I, s:o*}, s:{s:I, s:I, s:f}, s:o*}", "model",
                     metrics_model_name, "version", TRIAD_VERSION, "pid", (int)getpid(), "uptime_s",
                     metrics_uptime(), "requests", "total", (json_int_t)total, "in_flight",
                     (json_int_t)metrics_in_flight(), "by_status", metrics_status_json(), "process",
                     "threads", (json_int_t)p.threads, "rss_bytes", (json_int_t)p.rss_bytes,
                     "cpu_s", p.cpu_s, "gauges", gauges);
}

/* ---- /metrics ---------------------------------------------------------------------------- */

struct metrics_text {
    char *buf;
    size_t len, cap;
    int failed;
};

__attribute__((format(printf, 2, 3))) static void metrics_printf(struct metrics_text *t,
                                                                 const char *fmt, ...)
{
    va_list ap;
    for (int attempt = 0; attempt < 2 && !t->failed; attempt++) {
        va_start(ap, fmt);
        int n = vsnprintf(t->buf + t->len, t->cap - t->len, fmt, ap);
        va_end(ap);
        if (n >= 0 && (size_t)n < t->cap - t->len) {
            t->len += (size_t)n;
            return;
        }
        size_t cap = t->cap * 2 + (size_t)n + 1;
        char *grown = realloc(t->buf, cap);
        if (grown == NULL)
            t->failed = 1;
        else
            t->buf = grown, t->cap = cap;
    }
}

static void metrics_one(struct metrics_text *t, const char *name, const char *type,
                        const char *help, double value)
{
    metrics_printf(t, "# HELP triad_%s %s\n# TYPE triad_%s %s\ntriad_%s %.17g\n", name, help, name,
                   type, name, value);
}

/* A model's figure: HELP and TYPE once per family (the first of consecutive figures with the
 * same name), then the sample. */
static void metrics_gauge_text(struct metrics_text *t, const struct metrics_gauge *g,
                               const struct metrics_gauge *prev)
{
    if (prev == NULL || strcmp(prev->name, g->name) != 0) {
        const char *type = g->kind == METRICS_SUMMARY          ? "summary"
                           : strstr(g->name, "_total") != NULL ? "counter"
                                                               : "gauge";
        metrics_printf(t, "# HELP triad_%s %s\n# TYPE triad_%s %s\n", g->name, g->help, g->name,
                       type);
    }
    metrics_printf(t, "triad_%s%s", g->name, g->suffix ? g->suffix : "");
    if (g->label != NULL)
        metrics_printf(t, "{%s=\"%s\"}", g->label, g->label_value);
    metrics_printf(t, " %.17g\n", g->value);
}

char *metrics_prometheus(size_t *len)
{
    struct metrics_text t = {malloc(4096), 0, 4096, 0};
    struct metrics_process p;
    struct metrics_gauge g[METRICS_GAUGES_MAX];
    if (t.buf == NULL)
        return NULL;
    metrics_process_read(&p);
    metrics_printf(&t,
                   "# HELP triad_info The server's model and version.\n# TYPE triad_info "
                   "gauge\ntriad_info{model=\"%s\",version=\"%s\"} 1\n",
                   metrics_model_name, TRIAD_VERSION);
    metrics_printf(&t, "# HELP triad_requests_total Requests answered, by status.\n"
                       "# TYPE triad_requests_total counter\n");
    for (int s = METRICS_STATUS_MIN; s <= METRICS_STATUS_MAX; s++) {
        unsigned long n =
            atomic_load_explicit(&metrics_by_status[s - METRICS_STATUS_MIN], memory_order_relaxed);
        if (n > 0)
            metrics_printf(&t, "triad_requests_total{status=\"%d\"} %lu\n", s, n);
    }
    metrics_one(&t, "in_flight_requests", "gauge", "Requests being handled.",
                (double)metrics_in_flight());
    metrics_one(&t, "uptime_seconds", "gauge", "Seconds since start.", metrics_uptime());
    metrics_one(&t, "process_threads", "gauge", "OS threads in this process.", p.threads);
    metrics_one(&t, "process_resident_memory_bytes", "gauge", "Resident set size.", p.rss_bytes);
    metrics_one(&t, "process_cpu_seconds_total", "counter", "User and system CPU time.", p.cpu_s);
    size_t ng = metrics_gauges(g, METRICS_GAUGES_MAX);
    for (size_t i = 0; i < ng; i++)
        metrics_gauge_text(&t, &g[i], i > 0 ? &g[i - 1] : NULL);
    if (t.failed) {
        free(t.buf);
        return NULL;
    }
    *len = t.len;
    return t.buf;
}
