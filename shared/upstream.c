/* upstream.c - the upstream client and its keep-alive pool (see upstream.h). */
#include "upstream.h"

#include "http_resp.h"
#include "metrics.h"
#include "req_impl.h"

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define UPSTREAM_IDLE_CAP 4096 /* the flag's ceiling: the idle list is one array */

/* Why calls failed, for the counters: one per kind of error the 502/504 answers distinguish. */
enum upstream_err {
    UPSTREAM_ERR_REFUSED,   /* connect failed */
    UPSTREAM_ERR_RESET,     /* send or recv failed on an open connection */
    UPSTREAM_ERR_MALFORMED, /* not an HTTP/1.x answer we accept, or cut short */
    UPSTREAM_ERR_OVERSIZED, /* head or body past http_resp.h's bounds */
    UPSTREAM_ERR_STATUS,    /* complete, but not 200 */
    UPSTREAM_ERR_TIMEOUT,   /* no complete answer in time */
    UPSTREAM_ERR_KINDS,
};

static const char *const upstream_err_names[UPSTREAM_ERR_KINDS] = {
    "refused", "reset", "malformed", "oversized", "status", "timeout",
};

static struct {
    bool configured;
    struct sockaddr_storage addr;
    socklen_t addrlen;
    char host[272]; /* HOST:PORT, for the Host header */
    unsigned timeout_ms;
    unsigned idle_max;
    pthread_mutex_t lock; /* the idle list */
    int idle[UPSTREAM_IDLE_CAP];
    unsigned nidle;
    _Atomic unsigned long open, dials, reuses, retries, errors[UPSTREAM_ERR_KINDS];
} up = {.lock = PTHREAD_MUTEX_INITIALIZER};

enum upstream_phase { UP_START, UP_CONNECTING, UP_SENDING, UP_RECEIVING, UP_DONE };

struct upstream_call {
    enum upstream_phase phase;
    int fd;
    bool reused, retried, waited;
    uint64_t deadline_ms;
    char req[320];
    size_t req_len, sent, received;
    struct http_resp resp;
    int rc;
};

static uint64_t upstream_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* ---- configuration ------------------------------------------------------------------------- */

int upstream_init(const char *prog, const char *url, unsigned timeout_s, unsigned idle_max)
{
    up.configured = false;
    up.timeout_ms = timeout_s * 1000u;
    up.idle_max = idle_max < UPSTREAM_IDLE_CAP ? idle_max : UPSTREAM_IDLE_CAP;
    if (url == NULL || url[0] == '\0')
        return 0;
    /* http://HOST:PORT with an optional trailing slash; [v6]:PORT for IPv6 literals. */
    char host[256], port[8];
    const char *hp = strncmp(url, "http://", 7) == 0 ? url + 7 : NULL;
    const char *colon = hp ? strrchr(hp, ':') : NULL;
    size_t hlen = colon ? (size_t)(colon - hp) : 0;
    size_t plen = colon ? strcspn(colon + 1, "/") : 0;
    if (hp == NULL || colon == NULL || hlen == 0 || hlen >= sizeof(host) || plen == 0 ||
        plen >= sizeof(port) || (colon[1 + plen] != '\0' && strcmp(colon + 1 + plen, "/") != 0)) {
        fprintf(stderr, "%s: --upstream expects http://HOST:PORT, got '%s'\n", prog, url);
        return -EINVAL;
    }
    memcpy(host, hp, hlen);
    host[hlen] = '\0';
    memcpy(port, colon + 1, plen);
    port[plen] = '\0';
    snprintf(up.host, sizeof(up.host), "%s:%s", host, port);
    char *name = host;
    if (name[0] == '[' && name[hlen - 1] == ']') { /* an IPv6 literal */
        name[hlen - 1] = '\0';
        name++;
    }
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *res;
    int rc = getaddrinfo(name, port, &hints, &res);
    if (rc != 0) {
        fprintf(stderr, "%s: cannot resolve --upstream %s: %s\n", prog, url, gai_strerror(rc));
        return -EINVAL;
    }
    memcpy(&up.addr, res->ai_addr, res->ai_addrlen);
    up.addrlen = res->ai_addrlen;
    freeaddrinfo(res);
    up.configured = true;
    return 0;
}

bool upstream_configured(void)
{
    return up.configured;
}

/* ---- the pool ------------------------------------------------------------------------------ */

static void upstream_conn_close(int fd)
{
    close(fd);
    atomic_fetch_sub_explicit(&up.open, 1, memory_order_relaxed);
}

/* Is an idle connection still usable? Nothing to read yet: yes. End of file (the service
 * closed it) or unexpected bytes: no. */
static bool upstream_conn_alive(int fd)
{
    char b;
    ssize_t n = recv(fd, &b, 1, MSG_PEEK | MSG_DONTWAIT);
    return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
}

/* The most recently returned idle connection that still works, or -1. */
static int upstream_pool_take(void)
{
    for (;;) {
        pthread_mutex_lock(&up.lock);
        int fd = up.nidle > 0 ? up.idle[--up.nidle] : -1;
        pthread_mutex_unlock(&up.lock);
        if (fd < 0 || upstream_conn_alive(fd))
            return fd;
        upstream_conn_close(fd);
    }
}

static void upstream_pool_put(int fd)
{
    pthread_mutex_lock(&up.lock);
    bool kept = up.nidle < up.idle_max;
    if (kept)
        up.idle[up.nidle++] = fd;
    pthread_mutex_unlock(&up.lock);
    if (!kept)
        upstream_conn_close(fd);
}

void upstream_close(void)
{
    pthread_mutex_lock(&up.lock);
    while (up.nidle > 0)
        upstream_conn_close(up.idle[--up.nidle]);
    pthread_mutex_unlock(&up.lock);
}

/* A new non-blocking connection, connecting. Returns the descriptor (*pending: the connect
 * is in progress) or a negative errno. */
static int upstream_dial(bool *pending)
{
    int fd = socket(up.addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)); /* Go's and Node's default */
    atomic_fetch_add_explicit(&up.open, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&up.dials, 1, memory_order_relaxed);
    *pending = false;
    if (connect(fd, (const struct sockaddr *)&up.addr, up.addrlen) == 0)
        return fd;
    if (errno == EINPROGRESS) {
        *pending = true;
        return fd;
    }
    int e = -errno;
    upstream_conn_close(fd);
    return e;
}

/* ---- one call ------------------------------------------------------------------------------ */

struct upstream_call *upstream_call_create(unsigned ms)
{
    struct upstream_call *c = calloc(1, sizeof(*c));
    if (c == NULL)
        return NULL;
    c->fd = -1;
    int n = snprintf(c->req, sizeof(c->req),
                     "GET /io?ms=%u HTTP/1.1\r\nHost: %s\r\nUser-Agent: triad\r\n"
                     "Accept: application/json\r\n\r\n",
                     ms, up.host);
    c->req_len = n > 0 && (size_t)n < sizeof(c->req) ? (size_t)n : 0;
    return c;
}

void upstream_call_destroy(void *call)
{
    struct upstream_call *c = call;
    if (c != NULL && c->fd >= 0)
        upstream_conn_close(c->fd); /* a call abandoned half-way: never pooled */
    free(c);
}

int upstream_call_result(const struct upstream_call *c)
{
    return c->rc;
}

/* Each phase below returns true with the step's answer in *w (a wait, or REQ_DONE when the
 * call has ended), or false to go on with the next phase at once. */

static bool upstream_fail(struct upstream_call *c, enum upstream_err kind, int rc, enum req_wait *w)
{
    atomic_fetch_add_explicit(&up.errors[kind], 1, memory_order_relaxed);
    if (c->fd >= 0)
        upstream_conn_close(c->fd);
    c->fd = -1;
    c->rc = rc;
    c->phase = UP_DONE;
    *w = REQ_DONE;
    return true;
}

/* A reused connection that failed before any byte of the answer: the service had closed it.
 * Once, on a new connection. */
static bool upstream_retry(struct upstream_call *c)
{
    if (!c->reused || c->retried || c->received > 0)
        return false;
    upstream_conn_close(c->fd);
    c->fd = -1;
    c->retried = true;
    c->reused = false;
    c->sent = 0;
    c->phase = UP_START;
    atomic_fetch_add_explicit(&up.retries, 1, memory_order_relaxed);
    return true;
}

/* Waits for the socket with what is left of the call's deadline. */
static bool upstream_wait(struct req_task *t, struct upstream_call *c, unsigned events,
                          enum req_wait *w)
{
    uint64_t now = upstream_now_ms();
    if (now >= c->deadline_ms)
        return upstream_fail(c, UPSTREAM_ERR_TIMEOUT, -ETIMEDOUT, w);
    c->waited = true;
    *w = req_task_await_fd(t, t->pc, c->fd, events, (int)(c->deadline_ms - now));
    return true;
}

static bool upstream_connect(struct req_task *t, struct upstream_call *c, enum req_wait *w)
{
    if (c->deadline_ms == 0)
        c->deadline_ms = upstream_now_ms() + up.timeout_ms;
    if (!c->retried && (c->fd = upstream_pool_take()) >= 0) {
        c->reused = true;
        atomic_fetch_add_explicit(&up.reuses, 1, memory_order_relaxed);
        c->phase = UP_SENDING;
        return false;
    }
    bool pending = false;
    c->fd = upstream_dial(&pending);
    if (c->fd < 0)
        return upstream_fail(c, UPSTREAM_ERR_REFUSED, c->fd, w);
    c->phase = pending ? UP_CONNECTING : UP_SENDING;
    return pending && upstream_wait(t, c, REQ_FD_WRITE, w);
}

static bool upstream_connected(struct upstream_call *c, enum req_wait *w)
{
    int err = 0;
    socklen_t len = sizeof(err);
    if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0)
        err = errno;
    if (err != 0)
        return upstream_fail(c, UPSTREAM_ERR_REFUSED, -err, w);
    c->phase = UP_SENDING;
    return false;
}

static bool upstream_send(struct req_task *t, struct upstream_call *c, enum req_wait *w)
{
    ssize_t n = send(c->fd, c->req + c->sent, c->req_len - c->sent, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
        return upstream_wait(t, c, REQ_FD_WRITE, w);
    if (n < 0 && errno == EINTR)
        return false;
    if (n < 0)
        return !upstream_retry(c) && upstream_fail(c, UPSTREAM_ERR_RESET, -errno, w);
    c->sent += (size_t)n;
    if (c->sent == c->req_len) {
        http_resp_init(&c->resp);
        c->phase = UP_RECEIVING;
    }
    return false;
}

/* The answer is complete: a 200 with keep-alive and nothing after it goes back to the pool. */
static bool upstream_done(struct upstream_call *c, bool trailing, enum req_wait *w)
{
    if (c->resp.status != 200)
        return upstream_fail(c, UPSTREAM_ERR_STATUS, -EBADMSG, w);
    if (c->resp.keep_alive && !trailing)
        upstream_pool_put(c->fd);
    else
        upstream_conn_close(c->fd);
    c->fd = -1;
    c->rc = 0;
    c->phase = UP_DONE;
    *w = REQ_DONE;
    return true;
}

static bool upstream_recv(struct req_task *t, struct upstream_call *c, enum req_wait *w)
{
    char buf[4096];
    ssize_t n = recv(c->fd, buf, sizeof(buf), MSG_DONTWAIT);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
        return upstream_wait(t, c, REQ_FD_READ, w);
    if (n < 0 && errno == EINTR)
        return false;
    if (n <= 0 && upstream_retry(c))
        return false;
    if (n < 0)
        return upstream_fail(c, UPSTREAM_ERR_RESET, -errno, w);
    size_t used;
    int rc = http_resp_feed(&c->resp, buf, (size_t)n, &used);
    c->received += (size_t)n;
    if (rc == HTTP_RESP_TOO_LARGE)
        return upstream_fail(c, UPSTREAM_ERR_OVERSIZED, -EMSGSIZE, w);
    if (rc != 0)
        return upstream_fail(c, UPSTREAM_ERR_MALFORMED, -EPROTO, w);
    if (c->resp.state == HTTP_RESP_DONE)
        return upstream_done(c, used < (size_t)n, w);
    return false;
}

enum req_wait upstream_call_step(struct req_task *t, struct upstream_call *c)
{
    enum req_wait w = REQ_DONE;
    if (c->req_len == 0) { /* a Host too long for the request buffer */
        upstream_fail(c, UPSTREAM_ERR_MALFORMED, -ENAMETOOLONG, &w);
        return w;
    }
    if (c->waited && t->rc == -ETIMEDOUT) { /* back from a wait whose deadline passed */
        upstream_fail(c, UPSTREAM_ERR_TIMEOUT, -ETIMEDOUT, &w);
        return w;
    }
    c->waited = false;
    for (bool stop = false; !stop;) {
        switch (c->phase) {
        case UP_START:
            stop = upstream_connect(t, c, &w);
            break;
        case UP_CONNECTING:
            stop = upstream_connected(c, &w);
            break;
        case UP_SENDING:
            stop = upstream_send(t, c, &w);
            break;
        case UP_RECEIVING:
            stop = upstream_recv(t, c, &w);
            break;
        case UP_DONE:
            return REQ_DONE;
        }
    }
    return w;
}

/* ---- figures ------------------------------------------------------------------------------- */

size_t upstream_gauges(struct metrics_gauge *g, size_t cap)
{
    if (!up.configured || cap < 6 + UPSTREAM_ERR_KINDS)
        return 0;
    pthread_mutex_lock(&up.lock);
    unsigned idle = up.nidle;
    pthread_mutex_unlock(&up.lock);
    unsigned long open = atomic_load_explicit(&up.open, memory_order_relaxed);
    size_t n = 0;
    g[n++] = METRICS_GAUGE("upstream_connections_open", "Connections to the upstream service",
                           (double)open);
    g[n++] =
        METRICS_GAUGE("upstream_connections_idle", "Of those, idle in the keep-alive pool", idle);
    g[n++] = METRICS_GAUGE("upstream_connections_in_use", "Of those, carrying a call",
                           open > idle ? (double)(open - idle) : 0);
    g[n++] = METRICS_GAUGE("upstream_dials_total", "New connections to the upstream service",
                           (double)atomic_load(&up.dials));
    g[n++] = METRICS_GAUGE("upstream_reuses_total", "Calls made on a pooled connection",
                           (double)atomic_load(&up.reuses));
    g[n++] = METRICS_GAUGE("upstream_retries_total",
                           "Calls retried because a pooled connection had been closed",
                           (double)atomic_load(&up.retries));
    for (int k = 0; k < UPSTREAM_ERR_KINDS; k++)
        g[n++] =
            metrics_gauge_labeled("upstream_errors_total", "Failed upstream calls, by kind", "kind",
                                  upstream_err_names[k], (double)atomic_load(&up.errors[k]));
    return n;
}
