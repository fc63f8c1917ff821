/* cli.h - the command line every server shares, plus each model's own options.
 *
 * Options are tables: a model lists its own (name, type, destination, bounds, help) and the
 * parser handles `--name value` and `--name=value`, bounds, --help and --version uniformly.
 * Defaults are whatever the destinations hold before parsing, so a model can seed them from
 * the environment first (UV_THREADPOOL_SIZE, GOMAXPROCS) and still let a flag win.
 */
#ifndef TRIAD_CLI_H
#define TRIAD_CLI_H

#include <stdbool.h>
#include <stddef.h>

enum cli_kind {
    CLI_INT,    /* long long, within [min, max] */
    CLI_FLAG,   /* bool, set by its presence */
    CLI_STRING, /* const char *, pointing into argv */
};

struct cli_opt {
    const char *name; /* without the leading "--" */
    enum cli_kind kind;
    void *dest;
    long long min, max;
    const char *metavar; /* "N", "MS", "PATH" */
    const char *help;
};

/* Options every server takes. */
struct cli_common {
    const char *host;
    long long port;
    const char *db;
    long long max_inflight;
    long long max_body;
    long long max_connections;
    long long idle_timeout;
    long long drain_timeout;
    long long conn_buffer;
    long long max_url;
    long long max_headers;
    long long read_timeout;
    const char *upstream;       /* http://HOST:PORT of the upstream service, or "" */
    long long upstream_timeout; /* seconds for a whole call */
    long long upstream_idle;    /* idle keep-alive connections kept; each model sets its
                                 * runtime's default before parsing */
    const char *trace;          /* --trace FILE, or "": no trace (trace.h) */
};

struct cli_model {
    const char *prog;    /* "triad-threaded" */
    const char *summary; /* one line for --help */
    const struct cli_opt *opts;
    size_t nopts;
};

void cli_common_defaults(struct cli_common *c);

/* Returns 0 to run the server, 1 if --help or --version was answered (exit 0), or -EINVAL
 * after printing what was wrong to stderr (exit 2). */
int cli_parse(int argc, char **argv, const struct cli_model *m, struct cli_common *c);

/* Writes "name=value ..." for the model's options, for the start-up line. */
void cli_describe(const struct cli_model *m, char *buf, size_t len);

#endif
