/* serve.c - start-up and shutdown plumbing shared by every server (see serve.h). */
#include "serve.h"

#include "check.h"
#include "db.h"
#include "http.h"
#include "metrics.h"
#include "trace.h"
#include "triad_config.h"
#include "upstream.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define SERVE_BACKLOG 4096 /* glibc 2.36's SOMAXCONN; the kernel caps it at net.core.somaxconn */

void serve_signals_block(sigset_t *set)
{
    sigemptyset(set);
    sigaddset(set, SIGINT);
    sigaddset(set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, set, NULL);
    /* libmicrohttpd sends with MSG_NOSIGNAL, but a stray write to a closed pipe must never
     * kill a server; nor must a file-size limit (sqlite then gets EFBIG: a full disk, a 503). */
    signal(SIGPIPE, SIG_IGN);
    signal(SIGXFSZ, SIG_IGN);
}

int serve_signal_wait(const sigset_t *set)
{
    struct timespec tick = {1, 0};
    for (;;) {
        int sig = sigtimedwait(set, NULL, &tick);
        if (sig > 0)
            return sig;
        if (errno == EAGAIN) /* a second without a signal: the connection sweep's turn */
            http_sweep();
    }
}

void serve_rlimit_raise(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
}

static void serve_db_shown(const char *db, char *out, size_t len);

int serve_db_prepare(const char *prog, const char *path)
{
    char err[256] = "";
    if (db_setup(path, err, sizeof(err)) != 0) {
        char shown[512];
        serve_db_shown(path, shown, sizeof(shown)); /* a PostgreSQL password masked */
        fprintf(stderr, "%s: database %s: %s\n", prog, shown, err);
        return -1;
    }
    return 0;
}

static int serve_bind(const struct addrinfo *ai)
{
    int one = 1;
    int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
        bind(fd, ai->ai_addr, ai->ai_addrlen) != 0 || listen(fd, SERVE_BACKLOG) != 0) {
        int e = -errno;
        close(fd);
        return e;
    }
    return fd;
}

static int serve_port_of(int fd)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);
    memset(&ss, 0, sizeof(ss)); /* all of it: the analyzer cannot see getsockname fill it */
    if (getsockname(fd, (struct sockaddr *)&ss, &len) != 0)
        return -1;
    if (ss.ss_family == AF_INET6)
        return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
    return ntohs(((struct sockaddr_in *)&ss)->sin_port);
}

int serve_listen(const char *prog, const char *host, int port, int *bound_port)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC,
                             .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
    struct addrinfo *res = NULL;
    char service[8];
    snprintf(service, sizeof(service), "%d", port);
    int rc = getaddrinfo(host, service, &hints, &res);
    if (rc != 0) {
        fprintf(stderr, "%s: cannot resolve --host %s: %s\n", prog, host, gai_strerror(rc));
        return -EINVAL;
    }
    int fd = -EADDRNOTAVAIL;
    for (struct addrinfo *ai = res; ai != NULL && fd < 0; ai = ai->ai_next)
        fd = serve_bind(ai);
    freeaddrinfo(res);
    if (fd < 0) {
        char why[128];
        fprintf(stderr, "%s: cannot listen on %s:%d: %s\n", prog, host, port,
                strerror_r(-fd, why, sizeof(why)));
        return fd;
    }
    *bound_port = serve_port_of(fd);
    return fd;
}

/* The database as the start-up line shows it: a PostgreSQL password is replaced by "***"
 * (postgresql://user:secret@host/db, password=secret). */
static void serve_db_shown(const char *db, char *out, size_t len)
{
    const char *scheme = strstr(db, "://");
    const char *at = scheme ? strchr(scheme + 3, '@') : NULL;
    const char *colon = at ? memchr(scheme + 3, ':', (size_t)(at - scheme - 3)) : NULL;
    const char *pw = strstr(db, "password=");
    const char *cut = NULL, *resume = NULL;
    if (db_target_is_pg(db) && colon != NULL) {
        cut = colon + 1;
        resume = at;
    } else if (db_target_is_pg(db) && pw != NULL) {
        cut = pw + 9;
        resume = cut + strcspn(cut, " &");
    }
    if (cut == NULL)
        snprintf(out, len, "%s", db);
    else
        snprintf(out, len, "%.*s***%s", (int)(cut - db), db, resume);
}

void serve_announce(const char *prog, const struct cli_common *c, int port, const char *settings)
{
    bool v6 = strchr(c->host, ':') != NULL;
    char db[512];
    serve_db_shown(c->db, db, sizeof(db));
    printf("%s %s listening on http://%s%s%s:%d (model=%s %s db=%s)\n", prog, TRIAD_VERSION,
           v6 ? "[" : "", c->host, v6 ? "]" : "", port, metrics_model(), settings, db);
    fflush(stdout);
}

int serve_drain(long timeout_s)
{
    struct timespec tick = {0, 10 * 1000 * 1000};
    for (long waited_ms = 0; metrics_in_flight() > 0; waited_ms += 10) {
        if (waited_ms >= timeout_s * 1000)
            return -ETIMEDOUT;
        nanosleep(&tick, NULL);
    }
    return 0;
}

int serve_start(int argc, char **argv, const struct cli_model *cli, struct cli_common *c,
                const char *model, metrics_gauges_cb gauges_cb, sigset_t *signals, int *listen_fd)
{
    int port;
    char settings[256];
    log_init(cli->prog);
    int rc = cli_parse(argc, argv, cli, c);
    if (rc != 0)
        return rc > 0 ? 0 : 2;
    if (c->trace[0] != '\0') /* before any thread: see trace.h */
        trace_start(c->trace, cli->prog);
    serve_signals_block(signals);
    serve_rlimit_raise();
    metrics_init(model, gauges_cb);
    if (upstream_init(cli->prog, c->upstream, (unsigned)c->upstream_timeout,
                      (unsigned)c->upstream_idle) != 0)
        return 2;
    if (serve_db_prepare(cli->prog, c->db) != 0 ||
        (*listen_fd = serve_listen(cli->prog, c->host, (int)c->port, &port)) < 0)
        return 1;
    cli_describe(cli, settings, sizeof(settings));
    serve_announce(cli->prog, c, port, settings);
    return -1;
}
