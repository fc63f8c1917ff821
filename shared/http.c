/* http.c - the libmicrohttpd glue (see http.h for the life of a request). */
#include "http.h"

#include "check.h"
#include "cli.h"
#include "conn.h"
#include "http_check.h"
#include "linger.h"
#include "metrics.h"
#include "req_impl.h"
#include "route.h"
#include "trace.h"
#include "triad_config.h"

#include <errno.h>
#include <microhttpd.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <time.h>
#include <unistd.h>

struct http_server {
    struct MHD_Daemon *daemon;
    const struct http_model *model;
    struct req_limits req_limits;
    struct http_limits limits;
    unsigned max_inflight;
    enum http_drive drive;
    void (*wake_cb)(void *driver_ctx);
    void *driver_ctx;
    /* External drive: one epoll instance holding libmicrohttpd's own (data.ptr NULL) and the
     * lingering sockets, so that the model watches a single descriptor. */
    int epfd;
    struct linger_set linger;
    unsigned long runs;
    char server_header[64]; /* "triad/0.1.0 (threaded)" */
};

enum http_req_state {
    HTTP_REQ_NEW,       /* the request line is in (URI callback); the headers are coming */
    HTTP_REQ_RECEIVING, /* headers are in; the body is arriving */
    HTTP_REQ_RUNNING,   /* handed to the model, which finished it inline or suspended it */
    HTTP_REQ_ANSWERED,  /* the response is queued */
};

/* One per request, with the model's state right behind it in the same allocation. */
struct http_req {
    struct req req;
    struct http_server *srv;
    struct MHD_Connection *conn;
    enum http_req_state state;
    size_t discarded;       /* body bytes dropped after the limit was passed */
    const char *target_end; /* where the raw target's C string ends (see http_uri_cb) */
    bool suspended;         /* written only on the handler's thread: see http_access_cb */
    bool admitted;
    bool counted; /* in metrics' in-flight count */
    _Alignas(16) unsigned char model_ctx[];
};

/* Admitted requests in this process, across all its daemons, until their answer is queued. */
static _Atomic unsigned http_admitted;
/* Suspended requests: libmicrohttpd must not be stopped while there are any. */
static _Atomic unsigned http_suspended;
/* Open connections in this process, across all its daemons. */
static _Atomic unsigned http_open_connections;
/* Set by the first http_server_quiesce: the process is draining. */
static atomic_bool http_draining;

/* A client that keeps sending a chunked body after it went over the limit is cut off here:
 * the 413 can only be queued once libmicrohttpd has read the whole request. */
#define HTTP_DISCARD_MAX (4u << 20)

/* The sweep of slow connections (conn.h), at most this often in a process. */
#define HTTP_SWEEP_MS 1000

static const char *const http_ctype[] = {
    [REQ_CT_JSON] = "application/json",
    [REQ_CT_TEXT] = "text/plain",
    [REQ_CT_HTML] = "text/html; charset=utf-8",
    [REQ_CT_PROMETHEUS] = "text/plain; version=0.0.4",
};

/* The connection-table entry of a connection (conn.h); NULL if it is not tracked. */
static struct conn *http_conn_of(struct MHD_Connection *c)
{
    const union MHD_ConnectionInfo *info =
        MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    return info ? info->socket_context : NULL;
}

/* ---- queueing the response --------------------------------------------------------------- */

static void http_admit_release(struct http_req *h)
{
    if (h->admitted)
        atomic_fetch_sub_explicit(&http_admitted, 1, memory_order_relaxed);
    h->admitted = false;
}

static enum MHD_Result http_queue(struct http_req *h)
{
    struct req *r = &h->req;
    TRIAD_ASSERT(r->finished && h->state != HTTP_REQ_ANSWERED, "queueing twice");
    h->state = HTTP_REQ_ANSWERED;
    /* The model is done with it: admission counts work, not bytes on their way out. Released
     * here rather than at completion, so that a client that has read its answer never finds
     * its own finished request still counted against the next one. */
    http_admit_release(h);
    enum MHD_ResponseMemoryMode mode =
        r->out_owned ? MHD_RESPMEM_MUST_FREE : MHD_RESPMEM_PERSISTENT;
    struct MHD_Response *resp = MHD_create_response_from_buffer(r->out_len, (void *)r->out, mode);
    if (resp == NULL)
        return MHD_NO;    /* out of memory: libmicrohttpd closes the connection */
    r->out_owned = false; /* the response frees the body now */
    bool ok = MHD_add_response_header(resp, "Server", h->srv->server_header) == MHD_YES;
    if (r->status != 204) /* no body, so no type (RFC 9110, 15.3.5) */
        ok = ok && MHD_add_response_header(resp, "Content-Type", http_ctype[r->ctype]) == MHD_YES;
    if (r->hdr_name)
        ok = ok && MHD_add_response_header(resp, r->hdr_name, r->hdr_value) == MHD_YES;
    /* 413: the client may still be sending, do not read that as a request. While draining:
     * tell keep-alive clients to go elsewhere. */
    if (r->status == 413 || atomic_load(&http_draining))
        ok = ok && MHD_add_response_header(resp, "Connection", "close") == MHD_YES;
    enum MHD_Result rc = ok ? MHD_queue_response(h->conn, (unsigned)r->status, resp) : MHD_NO;
    MHD_destroy_response(resp);
    if (rc == MHD_YES)
        metrics_request_answer(r->status);
    return rc;
}

/* An answer before the request's body: libmicrohttpd closes the connection after sending it,
 * while the client may still be sending. The connection closes in stages (linger.h). */
static enum MHD_Result http_queue_early(struct http_req *h)
{
    conn_linger_set(http_conn_of(h->conn));
    return http_queue(h);
}

/* ---- the first call: routing and arguments ----------------------------------------------- */

static enum MHD_Result http_arg_cb(void *cls, enum MHD_ValueKind kind, const char *key,
                                   size_t key_size, const char *value, size_t value_size)
{
    (void)kind;
    (void)key_size;
    req_arg_add(cls, key, value, value ? value_size : 0);
    return MHD_YES;
}

static struct http_req *http_req_create(struct http_server *srv, struct MHD_Connection *conn)
{
    /* Zeroed field by field rather than by calloc: req_init clears the request itself, and
     * the rest is a handful of words (a request is created per request: this is hot). */
    struct http_req *h = malloc(sizeof(*h) + srv->model->task_ctx_size);
    if (h == NULL)
        return NULL;
    req_init(&h->req, srv->model->task_ctx_size ? h->model_ctx : NULL);
    h->srv = srv;
    h->conn = conn;
    h->state = HTTP_REQ_NEW;
    h->discarded = 0;
    h->target_end = NULL;
    h->suspended = false;
    h->admitted = false;
    h->counted = false;
    memset(h->model_ctx, 0, srv->model->task_ctx_size);
    return h;
}

/* libmicrohttpd calls this as soon as it has split the request line, with the raw target
 * (before unescaping and splitting off the query) and the version already NUL-terminated
 * right after it. Its return value becomes *req_cls, so the request starts here. Where the
 * target's C string ends tells, later, whether it had a NUL byte inside: then it ends before
 * the separator that precedes the version. */
static void *http_uri_cb(void *cls, const char *uri, struct MHD_Connection *conn)
{
    struct http_req *h = http_req_create(cls, conn);
    if (h != NULL)
        h->target_end = uri + strlen(uri);
    conn_req_set(http_conn_of(conn), h); /* freed when the connection closes, if not before */
    return h;
}

/* Headers are in: route, check the head, collect the arguments. */
static enum MHD_Result http_begin(struct http_req *h, const char *url, const char *method,
                                  const char *version)
{
    struct http_server *srv = h->srv;
    struct MHD_Connection *conn = h->conn;
    struct req *r = &h->req;
    h->state = HTTP_REQ_RECEIVING;
    conn_phase_set(http_conn_of(conn), CONN_BODY);
    req_route(r, method, url);
    struct http_head head = {method, url, version, false};
    head.target_cut = version != NULL && version[0] != '\0' && h->target_end + 1 != version;
    struct http_check verdict = http_check_head(conn, &head, &srv->limits);
    if (verdict.status != 0) {
        req_reply_error(r, verdict.status, verdict.why);
        if (verdict.close) /* queued on the first call: libmicrohttpd closes after it */
            return http_queue_early(h);
    }
    MHD_get_connection_values_n(conn, MHD_GET_ARGUMENT_KIND, http_arg_cb, r);
    req_content_type_set(
        r, MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_TYPE));
    /* A declared length over the limit is refused before a byte of it is read. */
    const char *cl =
        MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
    if (cl != NULL && strtoull(cl, NULL, 10) > srv->req_limits.max_body) {
        req_reply_error(r, 413, "request body too large");
        return http_queue_early(h);
    }
    return MHD_YES;
}

/* ---- the last call: admission, then the model -------------------------------------------- */

/* Admission control: past --max-inflight, refuse rather than queue without bound. Operations
 * endpoints are exempt so that a saturated server can still be observed. */
static bool http_admit(struct http_req *h)
{
    if (req_exempt(&h->req))
        return true;
    unsigned n = atomic_fetch_add_explicit(&http_admitted, 1, memory_order_relaxed);
    if (n >= h->srv->max_inflight) {
        atomic_fetch_sub_explicit(&http_admitted, 1, memory_order_relaxed);
        req_refuse(&h->req, "server saturated, retry later");
        return false;
    }
    h->admitted = true;
    return true;
}

static enum MHD_Result http_run(struct http_req *h)
{
    h->state = HTTP_REQ_RUNNING;
    conn_phase_set(http_conn_of(h->conn), CONN_BUSY);
    /* In flight from here: a request still waiting for its body is the client's business,
     * and must not hold up a drain (libmicrohttpd closes it when the daemon stops). */
    metrics_request_begin();
    h->counted = true;
    /* Seq_cst, pairing with the drain: either the drain counts this request in flight (we
     * began before it read zero), or we see http_draining here and never reach the model. */
    if (atomic_load(&http_draining) && !req_finished(&h->req))
        req_refuse(&h->req, "server shutting down");
    if (!req_input_done(&h->req) && http_admit(h))
        h->srv->model->start_cb(&h->req);
    /* If the model suspended the request it may already be running on another thread:
     * `suspended` was written by this thread, but nothing else about `h` may be read now. */
    if (h->suspended)
        return MHD_YES;
    TRIAD_ASSERT(req_finished(&h->req), "start_cb neither finished nor suspended the request");
    return http_queue(h);
}

static enum MHD_Result http_access_cb(void *cls, struct MHD_Connection *conn, const char *url,
                                      const char *method, const char *version,
                                      const char *upload_data, size_t *upload_data_size,
                                      void **req_cls)
{
    (void)cls;
    (void)conn;
    struct http_req *h = *req_cls;
    if (h == NULL)
        return MHD_NO; /* http_uri_cb ran out of memory: drop the connection */
    if (h->state == HTTP_REQ_NEW)
        return http_begin(h, url, method, version);
    if (*upload_data_size > 0) {
        size_t n = *upload_data_size;
        *upload_data_size = 0;
        if (h->state == HTTP_REQ_ANSWERED)
            return MHD_YES; /* a 413 is on its way; the rest of the body is dropped */
        /* Past the limit (a chunked body has no length to refuse up front), the rest is read
         * and dropped so that the 413 can be sent when the request ends; libmicrohttpd 0.9.75
         * refuses to queue a response in the middle of a body. */
        if (h->discarded > 0 || req_body_append(&h->req, upload_data, n, &h->srv->req_limits) != 0)
            h->discarded += n;
        return h->discarded > HTTP_DISCARD_MAX ? MHD_NO : MHD_YES;
    }
    switch (h->state) {
    case HTTP_REQ_RECEIVING:
        return http_run(h);
    case HTTP_REQ_NEW:
        break;
    case HTTP_REQ_RUNNING: /* called again after http_req_resume */
        TRIAD_ASSERT(h->suspended, "handler called again for a running request");
        h->suspended = false;
        trace_flow_end("resume", trace_req_id(&h->req)); /* in the driver's run (trace.h) */
        return http_queue(h);
    case HTTP_REQ_ANSWERED:
        break;
    }
    return MHD_YES;
}

static void http_req_destroy(struct http_req *h)
{
    /* `suspended` may still be set: a client that hung up while its request was suspended is
     * noticed only after the resume, and libmicrohttpd then completes the request without
     * calling the handler again. The model has let go of it by then (it resumed it). */
    http_admit_release(h); /* if it was never answered */
    bool counted = h->counted;
    req_release(&h->req);
    free(h);
    if (counted)
        metrics_request_end();
}

static void http_completed_cb(void *cls, struct MHD_Connection *conn, void **req_cls,
                              enum MHD_RequestTerminationCode toe)
{
    (void)cls;
    (void)toe;
    struct http_req *h = *req_cls;
    if (h == NULL)
        return;
    struct conn *c = http_conn_of(conn);
    conn_req_set(c, NULL);
    conn_phase_set(c, CONN_HEAD); /* waiting for the next request now */
    http_req_destroy(h);
    *req_cls = NULL;
}

static int http_hex(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

static void http_connection_cb(void *cls, struct MHD_Connection *conn, void **socket_ctx,
                               enum MHD_ConnectionNotificationCode toe)
{
    struct http_server *srv = cls;
    if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
        atomic_fetch_add_explicit(&http_open_connections, 1, memory_order_relaxed);
        const union MHD_ConnectionInfo *info =
            MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
        if (info)
            *socket_ctx =
                conn_open(info->connect_fd, srv->limits.idle_timeout_s, srv->limits.read_timeout_s);
    } else {
        atomic_fetch_sub_explicit(&http_open_connections, 1, memory_order_relaxed);
        /* libmicrohttpd has sent the last answer and half-closed; it closes the descriptor
         * when we return. A duplicate keeps the socket open for the staged close. */
        int linger_fd = conn_lingers(*socket_ctx) ? dup(conn_fd(*socket_ctx)) : -1;
        if (linger_fd >= 0 && srv->drive == HTTP_DRIVE_EXTERNAL)
            linger_add(&srv->linger, linger_fd);
        else if (linger_fd >= 0)
            linger_block(linger_fd); /* this connection's own thread: it may block */
        struct http_req *orphan = conn_close(*socket_ctx); /* before the descriptor closes */
        *socket_ctx = NULL;
        if (orphan != NULL) { /* its head never completed: the model never saw it */
            TRIAD_ASSERT(orphan->state == HTTP_REQ_NEW, "an orphan request that ran");
            http_req_destroy(orphan);
        }
    }
}

static uint64_t http_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* When the next sweep is due, in http_now_ms time; 0 before the first. */
static _Atomic uint64_t http_sweep_due;

void http_sweep(void)
{
    uint64_t now = http_now_ms(), due = atomic_load_explicit(&http_sweep_due, memory_order_relaxed);
    if (now < due || !atomic_compare_exchange_strong(&http_sweep_due, &due, now + HTTP_SWEEP_MS))
        return; /* not yet, or another thread is sweeping */
    conn_sweep();
}

/* Decodes %XX escapes in the path and arguments, except %00 and malformed ones, which stay as
 * they are: a NUL byte would make the C string the handler sees say less than the client sent
 * ("/json%00x" would route as "/json"). Never lengthens the string, as libmicrohttpd
 * requires. */
static size_t http_unescape_cb(void *cls, struct MHD_Connection *c, char *s)
{
    (void)cls;
    (void)c;
    char *out = s;
    for (const char *in = s; *in != '\0';) {
        int hi, lo;
        if (in[0] == '%' && (hi = http_hex(in[1])) >= 0 && (lo = http_hex(in[2])) >= 0 &&
            (hi | lo) != 0) {
            *out++ = (char)(hi * 16 + lo);
            in += 3;
        } else {
            *out++ = *in++;
        }
    }
    *out = '\0';
    return (size_t)(out - s);
}

/* ---- suspend and resume ------------------------------------------------------------------ */

void http_req_suspend(struct req *r)
{
    struct http_req *h = TRIAD_CONTAINER_OF(r, struct http_req, req);
    TRIAD_ASSERT(h->state == HTTP_REQ_RUNNING && !h->suspended, "suspend outside start_cb");
    h->suspended = true;
    atomic_fetch_add_explicit(&http_suspended, 1, memory_order_relaxed);
    MHD_suspend_connection(h->conn);
}

void http_req_resume(struct req *r)
{
    struct http_req *h = TRIAD_CONTAINER_OF(r, struct http_req, req);
    /* Read before the resume: once the driver has answered, a drain may stop and free the
     * server while this thread is still here (TSan saw it, with tracing slowing this thread). */
    void (*wake_cb)(void *) = h->srv->wake_cb;
    void *driver_ctx = h->srv->driver_ctx;
    atomic_fetch_sub_explicit(&http_suspended, 1, memory_order_relaxed);
    trace_flow_start("resume", trace_req_id(r)); /* to the driver that queues the answer */
    /* Only the connection and the server are touched: the driver's thread owns `h` again from
     * here on. libmicrohttpd takes its cleanup mutex and marks the connection; the driver
     * picks it up at its next run, which the wake-up asks for (see http.h). */
    MHD_resume_connection(h->conn);
    if (wake_cb != NULL)
        wake_cb(driver_ctx);
}

/* ---- the daemon -------------------------------------------------------------------------- */

/* External drive: libmicrohttpd's epoll instance inside ours, with the lingering sockets. */
static int http_drive_init(struct http_server *srv)
{
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(srv->daemon, MHD_DAEMON_INFO_EPOLL_FD);
    srv->epfd = epoll_create1(EPOLL_CLOEXEC);
    if (info == NULL || srv->epfd < 0)
        return -EIO;
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL};
    if (epoll_ctl(srv->epfd, EPOLL_CTL_ADD, info->epoll_fd, &ev) != 0)
        return -errno;
    linger_init(&srv->linger, srv->epfd);
    return 0;
}

int http_server_start(const struct http_config *cfg, struct http_server **out)
{
    TRIAD_ASSERT(cfg->drive == HTTP_DRIVE_THREAD_PER_CONNECTION || cfg->wake_cb != NULL,
                 "http_server_start: an external drive needs a wake-up");
    struct http_server *srv = calloc(1, sizeof(*srv));
    if (srv == NULL)
        return -ENOMEM;
    srv->model = cfg->model;
    srv->req_limits.max_body = cfg->limits.max_body;
    srv->max_inflight = cfg->limits.max_inflight;
    srv->limits = cfg->limits;
    srv->drive = cfg->drive;
    srv->wake_cb = cfg->drive == HTTP_DRIVE_EXTERNAL ? cfg->wake_cb : NULL;
    srv->driver_ctx = cfg->driver_ctx;
    srv->epfd = -1;
    snprintf(srv->server_header, sizeof(srv->server_header), "triad/%s (%s)", TRIAD_VERSION,
             cfg->model->name);
    req_task_ctx_size_set(cfg->model->task_ctx_size);
    /* External: libmicrohttpd's epoll, no thread of its own, suspend and resume. Thread per
     * connection: its threads, poll(2), no suspension (each thread finishes its requests).
     * MHD_USE_ITC lets MHD_quiesce_daemon wake its own threads. */
    unsigned int flags = cfg->drive == HTTP_DRIVE_EXTERNAL
                             ? MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME
                             : MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD |
                                   MHD_USE_POLL | MHD_USE_ITC;
    srv->daemon = MHD_start_daemon(
        flags, 0, NULL, NULL, http_access_cb, srv, MHD_OPTION_LISTEN_SOCKET,
        (MHD_socket)cfg->listen_fd, MHD_OPTION_NOTIFY_COMPLETED, http_completed_cb, srv,
        MHD_OPTION_NOTIFY_CONNECTION, http_connection_cb, srv, MHD_OPTION_UNESCAPE_CALLBACK,
        http_unescape_cb, srv, MHD_OPTION_URI_LOG_CALLBACK, http_uri_cb, srv,
        MHD_OPTION_CONNECTION_LIMIT, cfg->limits.max_connections, MHD_OPTION_CONNECTION_TIMEOUT,
        cfg->limits.idle_timeout_s, MHD_OPTION_CONNECTION_MEMORY_LIMIT, cfg->limits.conn_memory,
        MHD_OPTION_THREAD_STACK_SIZE, cfg->thread_stack_size, MHD_OPTION_END);
    int rc = srv->daemon == NULL ? -EIO : 0;
    if (rc == 0 && cfg->drive == HTTP_DRIVE_EXTERNAL)
        rc = http_drive_init(srv);
    if (rc != 0) {
        if (srv->daemon != NULL)
            MHD_stop_daemon(srv->daemon);
        if (srv->epfd >= 0)
            close(srv->epfd);
        free(srv);
        return rc;
    }
    *out = srv;
    return 0;
}

/* ---- the external drive ------------------------------------------------------------------ */

int http_server_fd(const struct http_server *s)
{
    return s->epfd;
}

/* Lingering sockets first (they share the epoll instance with libmicrohttpd's), then one
 * libmicrohttpd run: its own epoll_wait(0), accepts, reads, the access handler, writes, and
 * the walk of resumed connections. With nothing lingering, this is one MHD_run. */
void http_server_run(struct http_server *s)
{
    TRIAD_ASSERT(s->drive == HTTP_DRIVE_EXTERNAL, "http_server_run: not an external drive");
    s->runs++;
    if (s->linger.count > 0) {
        struct epoll_event ev[32];
        int n = epoll_wait(s->epfd, ev, (int)TRIAD_ARRAY_LEN(ev), 0);
        for (int i = 0; i < n; i++)
            if (ev[i].data.ptr != NULL)
                linger_ready(&s->linger, ev[i].data.ptr);
        linger_expire(&s->linger);
    }
    /* MHD_NO means a misused daemon (wrong flags, its epoll fd gone), never a bad connection:
     * libmicrohttpd closes those itself. */
    enum MHD_Result rc = MHD_run(s->daemon);
    TRIAD_ASSERT(rc == MHD_YES, "http_server_run: MHD_run failed");
    http_sweep();
}

static int http_min_timeout(int a, int b)
{
    return a < 0 ? b : b < 0 ? a : a < b ? a : b;
}

int http_server_timeout_ms(struct http_server *s)
{
    MHD_UNSIGNED_LONG_LONG mhd_ms;
    int ms = -1;
    if (MHD_get_timeout(s->daemon, &mhd_ms) == MHD_YES)
        ms = mhd_ms > INT32_MAX ? INT32_MAX : (int)mhd_ms;
    ms = http_min_timeout(ms, linger_timeout_ms(&s->linger));
    if (http_connections() > 0) {
        uint64_t now = http_now_ms(), due = atomic_load(&http_sweep_due);
        ms = http_min_timeout(ms, due > now ? (int)(due - now) : 0);
    }
    return ms;
}

unsigned long http_server_runs(const struct http_server *s)
{
    return s->runs;
}

/* ---- stopping ------------------------------------------------------------------------------ */

void http_server_quiesce(struct http_server *s)
{
    atomic_store(&http_draining, true);
    MHD_socket fd = MHD_quiesce_daemon(s->daemon);
    if (fd != MHD_INVALID_SOCKET)
        close(fd);
}

void http_server_stop(struct http_server *s)
{
    TRIAD_ASSERT(atomic_load(&http_suspended) == 0, "stopping a daemon with suspended requests");
    MHD_stop_daemon(s->daemon); /* its last closes may hand sockets to the linger set */
    if (s->drive == HTTP_DRIVE_EXTERNAL) {
        linger_close(&s->linger);
        close(s->epfd);
    }
    free(s);
}

struct http_limits http_limits_from(const struct cli_common *c)
{
    return (struct http_limits){
        .max_body = (size_t)c->max_body,
        .max_inflight = (unsigned)c->max_inflight,
        .max_connections = (unsigned)c->max_connections,
        .idle_timeout_s = (unsigned)c->idle_timeout,
        .read_timeout_s = (unsigned)c->read_timeout,
        .conn_memory = (size_t)c->conn_buffer,
        .max_url = (size_t)c->max_url,
        .max_headers = (unsigned)c->max_headers,
    };
}

unsigned http_connections(void)
{
    return atomic_load_explicit(&http_open_connections, memory_order_relaxed);
}
