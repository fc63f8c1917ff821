/* triad-threaded: blocking threads, one request per OS thread, with an optional GIL.
 *
 * The model
 * =========
 *
 * A request holds one OS thread from its first byte to its last. While it waits on the
 * database or on a slow upstream, the thread sleeps in the kernel and does nothing else;
 * concurrency is the number of threads. This is how CPython web servers run WSGI
 * applications, and the model every "Python is slow at concurrency" claim is really about.
 *
 * Concepts:
 *
 *   T - worker thread: runs a request's task straight through (exec.c). Every wait blocks it:
 *       a database call, clock_nanosleep, poll(2) on a socket, or joining one thread per
 *       child of a fan-out.
 *   A - acceptor (acceptor.c): gunicorn's main thread. It waits in poll(2) on the HTTP server's
 *       descriptor (an epoll instance of every connection) and on an eventfd the Ts write when
 *       they give a request back; at each wake-up it runs the server: accepts, reads, parses,
 *       hands complete requests to Q, writes the answers of finished ones. It never runs
 *       endpoint code.
 *   Q - the queue between A and the Ts (pool.c), FIFO, bounded by admission control.
 *   G - the GIL (gil.c, --gil): one per process. A T holds it while it runs endpoint code and
 *       releases it around every blocking call; a T that holds it too long is asked to drop it.
 *   W - worker process (--workers): a whole copy of the above, with its own GIL, forked by a
 *       supervising parent and sharing the listening socket (shared/prefork.c).
 *
 * Two shapes, both from gunicorn:
 *
 *   --threads N (default 8)  gunicorn's gthread worker. A accepts every connection and parks
 *                            idle keep-alive ones; a complete request is suspended out of the
 *                            server and queued to Q; one of N Ts runs it and resumes the
 *                            connection; A writes the response. More requests than Ts wait in
 *                            Q, in order; they are not refused or reset.
 *   --threads 0              thread per connection: libmicrohttpd starts one T per accepted
 *                            connection (the core's HTTP_DRIVE_THREAD_PER_CONNECTION) and runs
 *                            its requests on it. The shape of gunicorn's sync worker with
 *                            unlimited workers, or of Python's ThreadingHTTPServer; each idle
 *                            connection costs a thread.
 *
 * What it mirrors, and how faithfully
 * ===================================
 *
 * CPython (Python/ceval_gil.c): the GIL here is the real design, not a mutex. A thread that
 * waits more than the switch interval (5 ms, --switch-interval) sets a drop request; the holder
 * sees it at its next safe point (the core's CPU loops reach one every CPU_SAFEPOINT_EVERY
 * iterations, shared/cpu.h, as CPython checks its eval breaker at loop back-edges), drops the
 * GIL, and waits until another thread has taken it (FORCE_SWITCHING). The GIL is released
 * around each database call, as the sqlite3 module and psycopg2 do, and around sleeps and
 * socket waits, as time.sleep and the socket module do. Consequences that the benchmarks show:
 * CPU-bound throughput stays at one core however many threads there are; I/O-bound throughput
 * scales with threads; an I/O request that comes back from the database while another thread
 * burns CPU waits up to a whole interval for the GIL each time (the convoy effect, bpo-7946).
 *
 * gunicorn (workers/gthread.py, arbiter.py): the acceptor + pool + keep-alive parking shape,
 * and pre-forked worker processes with one interpreter (and GIL) each. Calls to the upstream
 * service (/upstream) are what requests/urllib3 do: a blocking socket per call, and N threads
 * joined for N calls (a ThreadPoolExecutor); the keep-alive pool keeps 10 idle connections,
 * requests.Session's default.
 *
 * Where it differs:
 *   - HTTP parsing runs in libmicrohttpd's C code without the GIL; gunicorn parses in Python
 *     holding it. Requests here are therefore cheaper to parse than in CPython. The GIL covers
 *     the application (endpoint code, JSON, HTML), which is where a WSGI app spends its time.
 *   - Without --gil, the model is CPython's free-threaded build (PEP 703), minus its overhead.
 *   - The sync worker's Connection: close on every response is not reproduced: both shapes
 *     here keep connections alive, so that every model is measured on the same HTTP.
 *
 * Rejected designs
 * ================
 *
 *   1. libmicrohttpd's MHD_OPTION_THREAD_POOL_SIZE as the gthread pool: each pool thread owns
 *      the connections it accepted, for life, and no thread can take work from another, so a
 *      slow request blocks every other request that happens to share its thread. gunicorn's
 *      pool is one queue served by any free thread; so is Q.
 *   2. Blocking inside the server's own thread (gthread shape without suspend): one slow
 *      request would stall every connection of the process.
 *   3. A plain mutex as the GIL: no switch interval, no forced switch; the running thread
 *      almost always wins the race to re-lock, and CPU-bound threads starve the rest.
 *   4. libmicrohttpd's internal epoll thread as A (gunicorn's selector is epoll on Linux):
 *      in 0.9.75 it can lose the wake-up of resumed connections. Measured here: one burst in
 *      six of exactly 256 simultaneous requests (two full batches of its 128 events) got no
 *      answer at all until another client connected. A drives the server from outside
 *      instead (http.h's external drive), and every resume wakes it through its own eventfd.
 *   5. libmicrohttpd's internal poll(2) thread as A: it scans every connection at every
 *      wake-up, O(connections); with 10,000 idle keep-alive connections it answered only
 *      6,948 of them within 15 s.
 *
 * Invariants
 * ==========
 *
 *   - A request runs on exactly one T, start to finish; a T runs one request at a time (a
 *     fan-out's children run on threads of their own, joined before the request goes on).
 *   - Every database connection belongs to one T (opened on first use, closed when T exits).
 *   - With --gil, endpoint code runs only while its T holds the GIL; blocking calls never do.
 *   - A suspended request is resumed exactly once, by the T that ran it.
 */
#include "acceptor.h"
#include "exec.h"
#include "gil.h"
#include "pool.h"

#include "check.h"
#include "cli.h"
#include "hook.h"
#include "http.h"
#include "metrics.h"
#include "prefork.h"
#include "serve.h"

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

/* The one server of this process: its options and its parts. Callbacks reach it from the
 * acceptor's, the pool's and libmicrohttpd's threads, which carry no context pointer of ours. */
static struct {
    long long threads, switch_interval_ms, workers;
    bool gil_enabled;
    struct cli_common common;
    sigset_t signals;
    int listen_fd;
    unsigned worker_index;
    struct gil *gil;
    struct acceptor *acceptor; /* NULL: thread per connection */
    struct http_server *http;
} threaded;

/* ---- the GIL's hooks into the core ------------------------------------------------------- */

static void threaded_safepoint_cb(void)
{
    gil_yield_if_requested(threaded.gil);
}

static void threaded_blocking_enter_cb(void)
{
    gil_drop(threaded.gil);
}

static void threaded_blocking_exit_cb(void)
{
    gil_take(threaded.gil);
}

/* ---- gauges ------------------------------------------------------------------------------ */

static size_t threaded_gauges_cb(struct metrics_gauge *g, size_t cap)
{
    struct gil_stats gs = {0};
    struct pool *pool = exec_pool();
    size_t n = 0;
    if (threaded.gil)
        gil_stats_read(threaded.gil, &gs);
    TRIAD_ASSERT(cap >= 9, "too many gauges");
    g[n++] = METRICS_GAUGE("worker_threads", "Pool threads (0: one per connection)",
                           (double)threaded.threads);
    g[n++] = METRICS_GAUGE("workers_busy", "Pool threads running a request",
                           pool ? (double)pool_busy(pool) : 0);
    g[n++] = METRICS_GAUGE("queue_depth", "Requests waiting for a pool thread",
                           pool ? (double)pool_queued(pool) : 0);
    g[n++] = METRICS_GAUGE("connections", "Open connections", http_connections());
    g[n++] = METRICS_GAUGE("gil_enabled", "1 with --gil", threaded.gil ? 1 : 0);
    g[n++] = METRICS_GAUGE("gil_switches_total", "Changes of GIL holder", (double)gs.switches);
    g[n++] =
        METRICS_GAUGE("gil_drop_requests_total", "Waiters that asked the holder to drop the GIL",
                      (double)gs.drop_requests);
    g[n++] = METRICS_GAUGE("gil_wait_seconds_total", "Time threads waited for the GIL",
                           (double)gs.wait_ns / 1e9);
    g[n++] = METRICS_GAUGE("worker_process", "This process's index among --workers",
                           (double)threaded.worker_index);
    return n;
}

/* ---- one worker process ------------------------------------------------------------------ */

static int threaded_http_start(void)
{
    struct http_config cfg = {
        .model = &exec_http_model,
        .listen_fd = threaded.listen_fd,
        .limits = http_limits_from(&threaded.common),
    };
    if (threaded.threads == 0) {
        cfg.drive = HTTP_DRIVE_THREAD_PER_CONNECTION;
        return http_server_start(&cfg, &threaded.http);
    }
    cfg.drive = HTTP_DRIVE_EXTERNAL;
    cfg.wake_cb = acceptor_wake_cb;
    int rc = acceptor_create(&threaded.acceptor);
    if (rc != 0)
        return rc;
    cfg.driver_ctx = threaded.acceptor;
    rc = http_server_start(&cfg, &threaded.http);
    return rc != 0 ? rc : acceptor_start(threaded.acceptor, threaded.http);
}

static int threaded_start(void)
{
    if (threaded.gil_enabled) {
        if (gil_create((long)threaded.switch_interval_ms * 1000, &threaded.gil) != 0)
            return -1;
        hook_install(&(struct hook_ops){.safepoint_cb = threaded_safepoint_cb,
                                        .blocking_enter_cb = threaded_blocking_enter_cb,
                                        .blocking_exit_cb = threaded_blocking_exit_cb});
    }
    struct exec_config cfg = {
        .db_path = threaded.common.db, .gil = threaded.gil, .threads = (unsigned)threaded.threads};
    if (exec_init(&cfg) != 0)
        return -1;
    return threaded_http_start();
}

static int threaded_serve(unsigned index, void *arg)
{
    (void)arg;
    threaded.worker_index = index;
    if (threaded_start() != 0) {
        log_error("cannot start: out of threads or memory");
        return 1;
    }
    int sig = serve_signal_wait(&threaded.signals);
    log_info("%s: finishing requests in flight", sig == SIGINT ? "SIGINT" : "SIGTERM");
    if (threaded.acceptor)
        acceptor_quiesce(threaded.acceptor);
    else
        http_server_quiesce(threaded.http);
    if (serve_drain(threaded.common.drain_timeout) != 0) {
        log_error("requests still in flight after %llds: exiting without them",
                  threaded.common.drain_timeout);
        return 1;
    }
    /* The pool first: a worker that resumed the last request may still be inside the
     * acceptor's wake-up, after the answer went out and the drain ended. */
    bool pooled = threaded.acceptor != NULL;
    if (pooled) {
        exec_close(); /* joins the pool: its sqlite connections close */
        acceptor_stop(threaded.acceptor);
    }
    http_server_stop(threaded.http); /* joins connection threads: their sqlite connections close */
    acceptor_destroy(threaded.acceptor);
    if (!pooled)
        exec_close();
    gil_destroy(threaded.gil);
    return 0;
}

int main(int argc, char **argv)
{
    threaded.threads = 8;
    threaded.switch_interval_ms = 5; /* CPython's sys.getswitchinterval() == 0.005 */
    threaded.workers = 1;
    cli_common_defaults(&threaded.common);
    threaded.common.upstream_idle = 10; /* requests.Session: urllib3's pool_maxsize */
    const struct cli_opt opts[] = {
        {"threads", CLI_INT, &threaded.threads, 0, 1024, "N",
         "worker threads per process; 0: one thread per connection"},
        {"gil", CLI_FLAG, &threaded.gil_enabled, 0, 0, "", "run endpoint code under a GIL"},
        {"switch-interval", CLI_INT, &threaded.switch_interval_ms, 1, 10000, "MS",
         "GIL switch interval"},
        {"workers", CLI_INT, &threaded.workers, 1, 256, "N", "pre-forked worker processes"},
    };
    const struct cli_model cli = {"triad-threaded",
                                  "Blocking threads, one request per OS thread (CPython/gunicorn).",
                                  opts, sizeof(opts) / sizeof(opts[0])};
    int rc = serve_start(argc, argv, &cli, &threaded.common, exec_http_model.name,
                         threaded_gauges_cb, &threaded.signals, &threaded.listen_fd);
    if (rc >= 0)
        return rc;
    if (threaded.workers > 1)
        return prefork_run((unsigned)threaded.workers, &threaded.signals, threaded.listen_fd,
                           threaded_serve, NULL);
    return threaded_serve(0, NULL);
}
