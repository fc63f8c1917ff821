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

#define METRICS_GAUGES_MAX 64

struct metrics_gauge {
    const char *name; /* snake_case; exported as triad_<name> */
    const char *help;
    double value;
};

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
