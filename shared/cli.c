/* cli.c - table-driven option parsing (see cli.h). */
#include "cli.h"

#include "triad_config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CLI_COMMON_COUNT 16

static void cli_common_table(struct cli_common *c, struct cli_opt t[CLI_COMMON_COUNT])
{
    struct cli_opt table[CLI_COMMON_COUNT] = {
        {"host", CLI_STRING, &c->host, 0, 0, "ADDR", "address to listen on"},
        {"port", CLI_INT, &c->port, 0, 65535, "N", "port to listen on; 0 picks a free one"},
        {"db", CLI_STRING, &c->db, 0, 0, "PATH", "sqlite file, created and seeded if missing"},
        {"max-inflight", CLI_INT, &c->max_inflight, 1, 1000000, "N",
         "requests admitted at once; more get 503 + Retry-After"},
        {"max-body", CLI_INT, &c->max_body, 0, 16 << 20, "BYTES", "request body limit (413)"},
        {"max-connections", CLI_INT, &c->max_connections, 1, 1000000, "N",
         "open connections per process; more wait in the listen backlog (closed at once in "
         "thread-per-connection mode)"},
        {"idle-timeout", CLI_INT, &c->idle_timeout, 0, 86400, "S",
         "close connections idle this many seconds; 0 never"},
        {"drain-timeout", CLI_INT, &c->drain_timeout, 0, 3600, "S",
         "on SIGTERM, wait this long for requests in flight"},
        {"conn-buffer", CLI_INT, &c->conn_buffer, 4096, 1 << 20, "BYTES",
         "per-connection buffer: request line and headers must fit (431 otherwise)"},
        {"max-url", CLI_INT, &c->max_url, 16, 1 << 20, "BYTES",
         "path plus query arguments (414 beyond)"},
        {"max-headers", CLI_INT, &c->max_headers, 1, 10000, "N", "request headers (431 beyond)"},
        {"read-timeout", CLI_INT, &c->read_timeout, 1, 3600, "S",
         "a request body must arrive within this; a request head within --idle-timeout"},
        {"upstream", CLI_STRING, &c->upstream, 0, 0, "URL",
         "http://HOST:PORT of the service /upstream calls; none: /upstream answers 503"},
        {"upstream-timeout", CLI_INT, &c->upstream_timeout, 1, 3600, "S",
         "a whole upstream call (connect, write, read) must end within this (504 beyond)"},
        {"upstream-idle", CLI_INT, &c->upstream_idle, 0, 4096, "N",
         "idle keep-alive connections to the upstream service kept for reuse"},
        {"trace", CLI_STRING, &c->trace, 0, 0, "FILE",
         "write an execution trace (Trace Event Format JSON) to FILE at exit; with workers, "
         "FILE.<pid> each"},
    };
    memcpy(t, table, sizeof(table));
}

void cli_common_defaults(struct cli_common *c)
{
    *c = (struct cli_common){
        .host = "127.0.0.1",
        .port = 8080,
        .db = "triad.db",
        .max_inflight = 16384,
        .max_body = 65536,
        .max_connections = 10000,
        .idle_timeout = 60,
        .drain_timeout = 30,
        /* libmicrohttpd's pool, zeroed after every request, so each idle keep-alive
         * connection keeps it resident: 8 KiB (nginx's header buffer size), not MHD's 32. */
        .conn_buffer = 8192,
        .max_url = 4096,
        .max_headers = 64,
        .read_timeout = 30,
        .upstream = "",
        /* Longer than the longest /io the service can be asked for (10 s), so that only a
         * service that is really stuck times out. */
        .upstream_timeout = 30,
        .upstream_idle = 2,
        .trace = "",
    };
}

static void cli_default_text(const struct cli_opt *o, char *buf, size_t len)
{
    switch (o->kind) {
    case CLI_INT:
        snprintf(buf, len, "%lld", *(long long *)o->dest);
        break;
    case CLI_FLAG:
        snprintf(buf, len, "%s", *(bool *)o->dest ? "on" : "off");
        break;
    case CLI_STRING:
        snprintf(buf, len, "%s", *(const char **)o->dest);
        break;
    }
}

static void cli_usage_table(const struct cli_opt *t, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        char left[40], def[64];
        snprintf(left, sizeof(left), "--%s%s%s", t[i].name, t[i].kind == CLI_FLAG ? "" : " ",
                 t[i].kind == CLI_FLAG ? "" : t[i].metavar);
        cli_default_text(&t[i], def, sizeof(def));
        printf("  %-24s %s (default %s)\n", left, t[i].help, def);
    }
}

static void cli_usage(const struct cli_model *m, const struct cli_opt *common)
{
    printf("usage: %s [options]\n%s\n\ncommon options:\n", m->prog, m->summary);
    cli_usage_table(common, CLI_COMMON_COUNT);
    printf("\n%s options:\n", m->prog);
    cli_usage_table(m->opts, m->nopts);
    printf("  %-24s %s\n  %-24s %s\n", "--help", "print this and exit", "--version",
           "print the version and exit");
}

static const struct cli_opt *cli_find(const char *name, size_t len, const struct cli_opt *common,
                                      const struct cli_model *m)
{
    for (size_t i = 0; i < CLI_COMMON_COUNT; i++)
        if (strlen(common[i].name) == len && strncmp(common[i].name, name, len) == 0)
            return &common[i];
    for (size_t i = 0; i < m->nopts; i++)
        if (strlen(m->opts[i].name) == len && strncmp(m->opts[i].name, name, len) == 0)
            return &m->opts[i];
    return NULL;
}

static int cli_set(const struct cli_model *m, const struct cli_opt *o, const char *value)
{
    if (o->kind == CLI_STRING) {
        *(const char **)o->dest = value;
        return 0;
    }
    char *end;
    errno = 0;
    long long v = strtoll(value, &end, 10);
    if (errno != 0 || end == value || *end != '\0' || v < o->min || v > o->max) {
        fprintf(stderr, "%s: --%s expects an integer in %lld..%lld, got '%s'\n", m->prog, o->name,
                o->min, o->max, value);
        return -EINVAL;
    }
    *(long long *)o->dest = v;
    return 0;
}

int cli_parse(int argc, char **argv, const struct cli_model *m, struct cli_common *c)
{
    struct cli_opt common[CLI_COMMON_COUNT];
    cli_common_table(c, common);
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0) {
            cli_usage(m, common);
            return 1;
        }
        if (strcmp(arg, "--version") == 0) {
            printf("%s %s\n", m->prog, TRIAD_VERSION);
            return 1;
        }
        const char *eq = strchr(arg, '=');
        size_t len = eq ? (size_t)(eq - arg) - 2 : strlen(arg) - 2;
        const struct cli_opt *o =
            strncmp(arg, "--", 2) == 0 ? cli_find(arg + 2, len, common, m) : NULL;
        if (o == NULL) {
            fprintf(stderr, "%s: unknown option '%s' (see --help)\n", m->prog, arg);
            return -EINVAL;
        }
        if (o->kind == CLI_FLAG) {
            if (eq) {
                fprintf(stderr, "%s: --%s takes no value\n", m->prog, o->name);
                return -EINVAL;
            }
            *(bool *)o->dest = true;
            continue;
        }
        const char *value = eq ? eq + 1 : (i + 1 < argc ? argv[++i] : NULL);
        if (value == NULL) {
            fprintf(stderr, "%s: --%s needs a value\n", m->prog, o->name);
            return -EINVAL;
        }
        if (cli_set(m, o, value) != 0)
            return -EINVAL;
    }
    return 0;
}

void cli_describe(const struct cli_model *m, char *buf, size_t len)
{
    size_t used = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < m->nopts && used < len; i++) {
        char v[64];
        cli_default_text(&m->opts[i], v, sizeof(v));
        int n = snprintf(buf + used, len - used, "%s%s=%s", i ? " " : "", m->opts[i].name, v);
        if (n < 0)
            break;
        used += (size_t)n;
    }
}
