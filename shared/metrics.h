/* metrics.h - request counters, process figures and the model's own gauges.
 *
 * The core counts what every model has (requests by status, requests in flight, uptime, the
 * process's threads, memory and CPU time, the World cache); each model adds its own gauges
 * through a callback (threads, queue depths, event-loop delay, goroutines...). Both /stats
 * (JSON) and /metrics (Prometheus text format 0.0.4) render the same figures.
 *
 * Counters are relaxed atomics: safe from any thread, and a reader sees each one exactly, if
 * not all of them at the same instant.
 */
#ifndef TRIAD_METRICS_H
#define TRIAD_METRICS_H

#include <jansson.h>
#include <stddef.h>

#define METRICS_GAUGES_MAX 96

/* How a figure is exposed. Prometheus' rules (which `promtool check metrics` enforces): names
 * in base units (_seconds, _bytes), counters end in _total, one name with a label rather than
 * one name per instance, quantiles as a summary. */
enum metrics_kind {
    METRICS_GAUGE,   /* the default; a name ending in _total is exposed as a counter */
    METRICS_SUMMARY, /* a quantile (label "quantile"), or the summary's _sum or _count */
};

struct metrics_gauge {
    const char *name; /* snake_case; exported as triad_<name> */
    const char *help;
    double value;
    enum metrics_kind kind;
    /* Optional: one label. Consecutive figures with the same name form one metric family
     * (triad_runq_goroutines{p="0"}, {p="1"}...); in /stats they become one object keyed by
     * the label's values. */
    const char *label;
    char label_value[16];
    const char *suffix; /* a summary's "_sum" or "_count"; NULL otherwise */
};

/* An unlabelled gauge (or counter, if the name ends in _total). */
#define METRICS_GAUGE(n, h, v) ((struct metrics_gauge){.name = (n), .help = (h), .value = (v)})

/* A figure that is one series of a labelled family. */
struct metrics_gauge metrics_gauge_labeled(const char *name, const char *help, const char *label,
                                           const char *label_value, double value);

/* Fills at most `cap` gauges; returns how many. Called from whatever thread serves /stats. */
typedef size_t (*metrics_gauges_cb)(struct metrics_gauge *out, size_t cap);

void metrics_init(const char *model, metrics_gauges_cb gauges_cb);
const char *metrics_model(void);

void metrics_request_begin(void);        /* a request arrived */
void metrics_request_answer(int status); /* its response was queued */
void metrics_request_end(void);          /* it is gone (answered or abandoned) */
long metrics_in_flight(void);

json_t *metrics_json(void);
/* A malloc'd Prometheus text exposition; NULL when out of memory. */
char *metrics_prometheus(size_t *len);

#endif
