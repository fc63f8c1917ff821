/*
 * triad-baseline-hello: the floor reference for the event-loop server.
 *
 * A bare libmicrohttpd "hello world" with no triad code in it, run the way the event-loop
 * server runs MHD: one thread, MHD_USE_EPOLL with no internal polling thread, and the
 * application's own epoll_wait loop over the epoll fd MHD exports
 * (MHD_DAEMON_INFO_EPOLL_FD), calling MHD_run on readiness and never sleeping longer than
 * MHD_get_timeout allows. Whatever this binary reaches on GET /json is what a single MHD
 * event loop can do on this machine; triad's target is that triad-evloop reaches at least 90%
 * of it, measured side by side by workloads/bench (scenario "hello", model "baseline").
 *
 * Routes: GET/HEAD /json gives {"message":"Hello, World!"} (application/json), GET/HEAD
 * /plaintext gives "Hello, World!" (text/plain). Bodies are rendered per request (snprintf
 * plus a copied MHD response), as a real handler would. Anything else is a 404, a method
 * other than GET/HEAD a 405; both with a JSON error body.
 *
 * The response is queued on the second call of the access handler, never the first:
 * libmicrohttpd 0.9.75 answers "Connection: close" to a response queued before it has seen
 * the (empty) request body, which would turn every keep-alive benchmark into a
 * connect-per-request one.
 *
 * Command line (the subset of the triad servers' flags the runner passes):
 *   --host ADDR      IPv4 address to bind (default 127.0.0.1)
 *   --port N         port, 0 picks a free one (default 8080)
 *   --db PATH        accepted and ignored (the runner passes it to every server)
 *   --max-connections N   MHD connection limit (default 100000, capped by RLIMIT_NOFILE)
 *   --conn-buffer BYTES   MHD per-connection memory (MHD_OPTION_CONNECTION_MEMORY_LIMIT);
 *                    default 8192, the triad servers' default, so that idle-connection memory
 *                    compares like with like (libmicrohttpd's own default is 32 KiB)
 *   --help, --version
 * It prints "triad-baseline-hello 0.1.0 listening on http://HOST:PORT (...)" once it is
 * accepting, and exits 0 on SIGTERM or SIGINT.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <microhttpd.h>

#define BASELINE_NAME    "triad-baseline-hello"
#define BASELINE_VERSION "0.1.0"
#define SERVER_HEADER    "triad-baseline/" BASELINE_VERSION " (mhd-epoll-external)"

/* Any non-NULL value marks "the access handler has seen this request once". */
static int request_seen_marker;

static enum MHD_Result send_body(struct MHD_Connection *conn, unsigned int status,
                                 const char *content_type, const char *body, size_t len,
                                 const char *allow)
{
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(len, (void *)body, MHD_RESPMEM_MUST_COPY);
    if (resp == NULL) {
        return MHD_NO;
    }
    if (MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, content_type) != MHD_YES ||
        MHD_add_response_header(resp, MHD_HTTP_HEADER_SERVER, SERVER_HEADER) != MHD_YES ||
        (allow != NULL && MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, allow) != MHD_YES)) {
        MHD_destroy_response(resp);
        return MHD_NO;
    }
    enum MHD_Result ret = MHD_queue_response(conn, status, resp);
    MHD_destroy_response(resp);
    return ret;
}

static enum MHD_Result handle_request(void *cls, struct MHD_Connection *conn, const char *url,
                                      const char *method, const char *version,
                                      const char *upload_data, size_t *upload_data_size,
                                      void **req_cls)
{
    (void)cls;
    (void)version;
    (void)upload_data;

    if (*req_cls == NULL) {
        /* First call: headers only. Queueing now would make MHD close the connection. */
        *req_cls = &request_seen_marker;
        return MHD_YES;
    }
    if (*upload_data_size != 0) {
        /* Discard any request body; answer once it has been consumed. */
        *upload_data_size = 0;
        return MHD_YES;
    }

    char body[128];
    int len;
    int is_get = strcmp(method, MHD_HTTP_METHOD_GET) == 0;
    int is_head = strcmp(method, MHD_HTTP_METHOD_HEAD) == 0;
    int is_json = strcmp(url, "/json") == 0;
    int is_plain = strcmp(url, "/plaintext") == 0;

    if (!is_json && !is_plain) {
        len = snprintf(body, sizeof body, "{\"error\":\"%s\"}", "no such route");
        return send_body(conn, MHD_HTTP_NOT_FOUND, "application/json", body, (size_t)len, NULL);
    }
    if (!is_get && !is_head) {
        len = snprintf(body, sizeof body, "{\"error\":\"%s\"}", "method not allowed");
        return send_body(conn, MHD_HTTP_METHOD_NOT_ALLOWED, "application/json", body, (size_t)len,
                         "GET, HEAD");
    }
    if (is_json) {
        len = snprintf(body, sizeof body, "{\"message\":\"%s\"}", "Hello, World!");
        return send_body(conn, MHD_HTTP_OK, "application/json", body, (size_t)len, NULL);
    }
    len = snprintf(body, sizeof body, "%s", "Hello, World!");
    return send_body(conn, MHD_HTTP_OK, "text/plain", body, (size_t)len, NULL);
}

static void request_completed(void *cls, struct MHD_Connection *conn, void **req_cls,
                              enum MHD_RequestTerminationCode toe)
{
    (void)cls;
    (void)conn;
    (void)toe;
    *req_cls = NULL;
}

static void usage(FILE *out)
{
    fprintf(out, "usage: " BASELINE_NAME " [--host ADDR] [--port N] [--db PATH (ignored)]\n"
                 "       [--max-connections N] [--conn-buffer BYTES] [--help] [--version]\n"
                 "A bare libmicrohttpd hello world (external epoll loop, one thread): the floor\n"
                 "reference for triad-evloop. Serves GET /json and GET /plaintext.\n");
}

static int parse_uint(const char *s, unsigned long max, unsigned long *out)
{
    if (s == NULL || *s < '0' || *s > '9') {
        return -1;
    }
    errno = 0;
    char *end = NULL;
    unsigned long v = strtoul(s, &end, 10);
    if (errno != 0 || *end != '\0' || v > max) {
        return -1;
    }
    *out = v;
    return 0;
}

/* Raise the soft descriptor limit to the hard one; returns the resulting soft limit. */
static rlim_t raise_nofile(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0) {
        return 1024;
    }
    if (rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        (void)setrlimit(RLIMIT_NOFILE, &rl);
        (void)getrlimit(RLIMIT_NOFILE, &rl);
    }
    return rl.rlim_cur;
}

int main(int argc, char **argv)
{
    const char *host = "127.0.0.1";
    unsigned long port = 8080;
    unsigned long max_conns = 100000;
    unsigned long conn_buffer = 8192;

    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = (i + 1 < argc) ? argv[i + 1] : NULL;
        if (strcmp(a, "--help") == 0) {
            usage(stdout);
            return 0;
        } else if (strcmp(a, "--version") == 0) {
            printf(BASELINE_NAME " " BASELINE_VERSION " (libmicrohttpd %s)\n", MHD_get_version());
            return 0;
        } else if (strcmp(a, "--host") == 0 && v != NULL) {
            host = v;
            i++;
        } else if (strcmp(a, "--port") == 0 &&
                   parse_uint(v, 65535, &port) == 0) { /* NOLINT(bugprone-branch-clone) */
            i++;
        } else if (strcmp(a, "--max-connections") == 0 &&
                   parse_uint(v, UINT_MAX, &max_conns) == 0 && max_conns > 0) {
            i++;
        } else if (strcmp(a, "--conn-buffer") == 0 && parse_uint(v, 1UL << 20, &conn_buffer) == 0 &&
                   conn_buffer >= 1024) {
            i++;
        } else if (strcmp(a, "--db") == 0 && v != NULL) {
            i++;
        } else {
            fprintf(stderr, BASELINE_NAME ": bad argument '%s'\n", a);
            usage(stderr);
            return 2;
        }
    }

    struct sockaddr_in addr;
    memset(&addr, 0, sizeof addr);
    addr.sin_family = AF_INET;
    addr.sin_port = htons((uint16_t)port);
    if (inet_pton(AF_INET, host, &addr.sin_addr) != 1) {
        fprintf(stderr, BASELINE_NAME ": --host must be an IPv4 address, got '%s'\n", host);
        return 2;
    }

    /* Leave room for the listen socket, the epoll fds and stdio. */
    rlim_t nofile = raise_nofile();
    if (nofile > 16 && (rlim_t)max_conns > nofile - 16) {
        max_conns = (unsigned long)(nofile - 16);
    }

    /* SIGTERM/SIGINT arrive on a signalfd in the same epoll loop. */
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGINT);
    if (pthread_sigmask(SIG_BLOCK, &sigs, NULL) != 0) {
        fprintf(stderr, BASELINE_NAME ": pthread_sigmask failed\n");
        return 1;
    }
    signal(SIGPIPE, SIG_IGN);
    int sfd = signalfd(-1, &sigs, SFD_NONBLOCK | SFD_CLOEXEC);
    if (sfd < 0) {
        perror(BASELINE_NAME ": signalfd");
        return 1;
    }

    struct MHD_Daemon *d = MHD_start_daemon(
        MHD_USE_EPOLL | MHD_USE_ERROR_LOG, (uint16_t)port, NULL, NULL, handle_request, NULL,
        MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&addr, MHD_OPTION_CONNECTION_LIMIT,
        (unsigned int)max_conns, MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)conn_buffer,
        MHD_OPTION_NOTIFY_COMPLETED, request_completed, NULL, MHD_OPTION_END);
    if (d == NULL) {
        fprintf(stderr, BASELINE_NAME ": cannot start libmicrohttpd on %s:%lu\n", host, port);
        return 1;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(d, MHD_DAEMON_INFO_EPOLL_FD);
    const union MHD_DaemonInfo *pinfo = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
    if (info == NULL || pinfo == NULL) {
        fprintf(stderr, BASELINE_NAME ": libmicrohttpd gave no epoll fd or port\n");
        MHD_stop_daemon(d);
        return 1;
    }
    int mhd_fd = info->epoll_fd;

    /* Our own loop: MHD's epoll fd is one readiness source, the signalfd the other. */
    int ep = epoll_create1(EPOLL_CLOEXEC);
    struct epoll_event ev;
    memset(&ev, 0, sizeof ev);
    ev.events = EPOLLIN;
    ev.data.fd = mhd_fd;
    int ok = ep >= 0 && epoll_ctl(ep, EPOLL_CTL_ADD, mhd_fd, &ev) == 0;
    ev.data.fd = sfd;
    ok = ok && epoll_ctl(ep, EPOLL_CTL_ADD, sfd, &ev) == 0;
    if (!ok) {
        perror(BASELINE_NAME ": epoll");
        MHD_stop_daemon(d);
        return 1;
    }

    printf(BASELINE_NAME " " BASELINE_VERSION
                         " listening on http://%s:%u (model=baseline mhd=epoll-external "
                         "threads=1 max_connections=%lu conn_buffer=%lu)\n",
           host, (unsigned)pinfo->port, max_conns, conn_buffer);
    fflush(stdout);

    int status = 0;
    for (;;) {
        MHD_UNSIGNED_LONG_LONG to_ms = 0;
        int timeout = -1;
        if (MHD_get_timeout(d, &to_ms) == MHD_YES) {
            timeout = to_ms > INT_MAX ? INT_MAX : (int)to_ms;
        }
        struct epoll_event events[2];
        int n = epoll_wait(ep, events, 2, timeout);
        if (n < 0 && errno != EINTR) {
            perror(BASELINE_NAME ": epoll_wait");
            status = 1;
            break;
        }
        int stop = 0;
        for (int i = 0; i < n; i++) {
            if (events[i].data.fd == sfd) {
                stop = 1;
            }
        }
        if (stop) {
            break;
        }
        if (MHD_run(d) != MHD_YES) {
            fprintf(stderr, BASELINE_NAME ": MHD_run failed\n");
            status = 1;
            break;
        }
    }

    MHD_stop_daemon(d);
    close(ep);
    close(sfd);
    return status;
}
