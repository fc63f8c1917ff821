/* triad-evloop: one event loop, a small thread pool, cluster processes.
 *
 * The model
 * =========
 *
 * One thread runs every request. It sleeps in epoll_wait until something is ready (a socket,
 * a timer, a finished query), runs the callback that was waiting for it to completion, and
 * goes back to sleep. A request that must wait does not hold the thread: it leaves a callback
 * behind and the thread serves others. Concurrency is the number of callbacks waiting, not
 * the number of threads; parallelism is one. This is how Node.js runs JavaScript on libuv,
 * and the model every "Node is fast at I/O, and one slow request stalls them all" claim is
 * about.
 *
 * Concepts:
 *
 *   L - the loop thread (loop.c): owns the epoll set, the timers and every request. Runs the
 *       HTTP server, routing, endpoint code, JSON and HTML. Never waits except in the poll.
 *       loop.c lists the phases of one iteration, in libuv's order.
 *   H - the HTTP server (server_io.c), driven by L: its descriptor watched like any other,
 *       its deadline a timer of L's, and a turn in the next pending round when a callback has
 *       resumed a request (libuv's uv__io_feed): one run of the server for all of them.
 *   R - a request: the core's task (shared/req.h), stepped only on L (exec.c). Between steps
 *       it is a suspended connection plus a callback that will step it on: a timer's, a
 *       watcher's, a pool completion's.
 *   T - a timer (loop.c): a deadline in L's min-heap. /io is one, /fanout is N and a countdown.
 *   S - a socket watcher: a call to the upstream service (/upstream) or a PostgreSQL query,
 *       written to in a callback and waited for with a level-triggered watcher (uv_poll_t).
 *   P - a pool thread (pool.c): 4 by default, started on the first sqlite query. Runs the
 *       database work of a step and nothing else (node-sqlite3's uv_queue_work).
 *   C - a completion: P puts the finished item on a queue and writes an eventfd; L runs the
 *       next step of R from it (uv_queue_work's after_work_cb, woken by uv_async_send).
 *   E - the loop-delay monitor (delay.c): a 10 ms timer that records how late it fires.
 *   W - a worker process (--cluster): a whole copy of the above, sharing the listening socket.
 *
 * What blocks the loop
 * ====================
 *
 * Whatever runs on L runs to completion while every other request, timer and completion
 * waits, and nothing here interrupts it, exactly as nothing interrupts a JavaScript function:
 *
 *   - /cpu: the digest runs on L for its whole length. No hook is installed (hook.h): the
 *     core's safe points are no-ops, because V8 has none a request could yield at. A 0.5 s
 *     /cpu delays a concurrent /json by about 0.5 s. That is the lesson; it is not hidden.
 *   - --db-on-loop: every sqlite3_step runs on L (the profile of better-sqlite3 and
 *     node:sqlite, whose APIs are synchronous). Query time becomes loop delay.
 *   - the protocol work of sockets: writing a request to the upstream service, parsing its
 *     answer, libpq's encoding and decoding of PostgreSQL messages, all on L.
 *   - rendering: JSON and HTML are built on L from the rows P fetched, as node-sqlite3 hands
 *     rows to JavaScript. /queries?queries=500 renders 500 objects on L.
 *   - libmicrohttpd's own work: parsing and writing every connection's bytes happen on L.
 *
 * What does not: sqlite work by default (P); PostgreSQL (no thread at all: L writes the
 * query and comes back when the socket is readable, as node-postgres does); /io, /fanout and
 * /upstream (timers and sockets: no thread sleeps, so 2,000 concurrent /io?ms=1000 cost 2,000
 * heap entries and 2,000 parked connections, and still one thread).
 *
 * What it mirrors, and how faithfully
 * ===================================
 *
 * libuv (src/unix/core.c uv_run, src/threadpool.c, src/unix/async.c): the phase order, the
 * level-triggered epoll_wait of up to 1024 events, millisecond timers in a min-heap with the
 * time cached once per iteration, the poll timeout (0 with pending or close work, else the
 * next timer, else forever), the pool (4 threads by default, UV_THREADPOOL_SIZE read once, at most
 * 1024, one FIFO under a mutex and a condition variable, started on first use) and its
 * completion path (a queue under a second mutex, a coalesced eventfd write, every finished
 * item run on L in the poll phase).
 *
 * Node: the sqlite3 package's profile by default (each query is pool work, so at most 4 run
 * at once and latency steps at 5, 9, 13... concurrent queries; UV_THREADPOOL_SIZE=8 moves
 * the steps), better-sqlite3's with --db-on-loop, node-postgres's with PostgreSQL (the
 * protocol on the loop, a pg.Pool of at most 10 connections: --pg-pool; queries beyond wait
 * in its queue), undici's and http.request's for /upstream (an http.Agent with keep-alive,
 * connections unlimited, up to 256 idle kept: maxFreeSockets), and the cluster module for
 * --cluster.
 *
 * Where it differs:
 *   - HTTP is parsed by libmicrohttpd in C, not by llhttp and Node's http module in
 *     JavaScript, and JSON is built by jansson, not V8: a request costs a fraction of what it
 *     costs in Node. The shape is mirrored (one core, head-of-line blocking, the pool's
 *     cap), not the absolute speed.
 *   - libmicrohttpd keeps its sockets in its own epoll set (edge-triggered, 128 events a
 *     batch, up to 10 accepts a turn) nested in the server's, nested in L's. One readiness
 *     event of L stands for all connections, and each run does another epoll_wait(0) inside.
 *     libuv has one level-triggered watcher per socket, one accept per event and 32 reads per
 *     stream.
 *   - A finished wait's response goes out in H's next turn (after the poll, or one iteration
 *     later for timers), and that turn walks libmicrohttpd's whole list of suspended
 *     connections, O(#suspended) per batch of resumes; Node's res.end() writes from inside
 *     the callback. With thousands of requests parked, every iteration that resumes some pays
 *     a scan of all of them.
 *   - A socket wait adds its watcher to L's epoll set and removes it after (two epoll_ctl per
 *     wait); libuv keeps a stream's watcher registered and changes only its events.
 *   - node-postgres resolves a query's promise and runs the continuation from the microtask
 *     queue; here the continuation runs in the readiness callback. node-postgres's default
 *     pool has no limit on how long a query waits for a client; here the wait (and every
 *     socket wait of a query) ends after 5 s with a 503.
 *   - A client that hangs up while its request waits is noticed only after the wait (a
 *     suspended connection is outside libmicrohttpd's poll); Node sees 'close' at once.
 *   - Each P has its own sqlite connection. node-sqlite3 has one per Database object and
 *     serialises statements on it, so an application with one Database runs one statement
 *     at a time while other pool threads wait on its mutex (node-sqlite3 #1395). And one
 *     step's database work (all 20 SELECTs of /queries?queries=20) is one pool item here;
 *     node-sqlite3 queues one per statement, each coming back through the loop.
 *   - Continuations run directly in the callback that ended the wait; Node would run them
 *     from the microtask queue right after it. Nothing observable changes.
 *   - Node groups JavaScript timers of equal duration in lists (O(1) to add); every T here
 *     is a heap entry (O(log n)). A 1000-way /fanout costs 1000 pushes.
 *   - The loop-delay figures subtract the 10 ms resolution (see delay.h); Node's include it.
 *   - --cluster uses Node's SCHED_NONE policy (NODE_CLUSTER_SCHED_POLICY=none): every W
 *     accepts from the shared socket and the kernel picks which, so the load can skew
 *     between processes (here, 49 of 60 connections opened one after another went to the
 *     same one of two workers): the reason Node made round-robin its default. Node's SCHED_RR
 *     has the primary accept and pass each socket to a worker in turn; with libmicrohttpd
 *     that would need an fd-passing channel from the primary and MHD_add_connection in each
 *     worker: an extra process hop per connection (see rejected designs).
 *   - Idle connections close after --idle-timeout (60 s, shared by every model so that all
 *     are measured on the same HTTP); Node's keepAliveTimeout is 5 s: pass --idle-timeout 5.
 *
 * Rejected designs
 * ================
 *
 *   1. MHD_USE_EPOLL_INTERNAL_THREAD, libmicrohttpd's own polling thread as the loop: its
 *      loop has no timers, no completion queue and no phases of ours. /io would need MHD's
 *      connection timeouts or another thread, completions would cross threads, and the loop
 *      would be libmicrohttpd's to explain, not ours.
 *   2. sqlite on the loop by default: a real Node profile (--db-on-loop), but the sqlite3
 *      package is the common one, and a loop that runs queries has query time as loop
 *      delay for every other request.
 *   3. SCHED_RR cluster (above): the primary accepting and passing fds over a socketpair,
 *      each W handing them to MHD_add_connection. It adds a second wake-up per connection
 *      and a supervisor on the accept path; SCHED_NONE is the policy Node itself ships as
 *      the alternative, and needs only the shared socket (shared/prefork.c).
 *   4. One timer per /fanout instead of N: cheaper, but not what N concurrent upstream calls
 *      are in Node (N sockets, N timers). The N heap entries are the honest cost.
 *   5. Running the server straight from each callback that resumes a connection: one run, and
 *      one walk of libmicrohttpd's suspended list, per finished request. Feeding H to the
 *      pending queue gives one run for all the resumes of a phase.
 *   6. PostgreSQL's blocking API on the pool threads: the node-sqlite3 shape applied to a
 *      network database. No popular Node driver works that way; node-postgres and undici own
 *      their sockets on the loop.
 *
 * Invariants
 * ==========
 *
 *   - Only L touches the HTTP server, the loop, the timers, the sockets and the tasks. A P
 *     touches a task only inside req_call_run, between pool_work_queue and the done callback;
 *     the pool's mutexes order its writes before L's next step.
 *   - A request is suspended at most once, at its first wait that leaves L, and resumed
 *     exactly once, by the callback that finishes it. One that never waits is never
 *     suspended.
 *   - Nothing yields inside a callback: no hooks are installed.
 *   - Threads: 1 until the first pool item, then 1 + the pool size, never more. With
 *     PostgreSQL, 1.
 *   - Each sqlite connection belongs to one thread: a P's own, opened on it; L's own with
 *     --db-on-loop.
 */
#include "delay.h"
#include "exec.h"
#include "loop.h"
#include "pool.h"
#include "server_io.h"

#include "check.h"
#include "cli.h"
#include "db.h"
#include "http.h"
#include "metrics.h"
#include "prefork.h"
#include "serve.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <unistd.h>

/* The one server of this process: its options and its parts. Everything but the pool's
 * threads runs on L, so nothing here is shared across threads except through the pool. */
static struct {
    long long pool_size, cluster, pg_pool;
    bool db_on_loop;
    struct cli_common common;
    sigset_t signals;
    int listen_fd;
    unsigned worker_index;

    struct loop *loop;
    struct pool *pool;
    struct delay *delay;
    struct http_server *http;
    struct server_io sio;
    struct db *loop_db; /* L's connection, with --db-on-loop */

    struct loop_io signal_io;
    struct loop_hook drain_check;
    struct loop_timer drain_timer;
    bool draining, drain_timed_out;
} evloop;

/* ---- gauges -------------------------------------------------------------------------------- */

static size_t evloop_gauges_cb(struct metrics_gauge *g, size_t cap)
{
    struct delay_stats ds = {0};
    size_t n = 0;
    delay_read(evloop.delay, &ds);
    TRIAD_ASSERT(cap >= 18, "too many gauges");
    static const char delay_help[] = "Event-loop delay: how late a 10 ms timer fires (quantiles "
                                     "over the last 10-20 s; sum and count since start)";
    g[n++] = metrics_gauge_labeled("loop_delay_seconds", delay_help, "quantile", "0.5", ds.p50_s);
    g[n++] = metrics_gauge_labeled("loop_delay_seconds", delay_help, "quantile", "0.99", ds.p99_s);
    g[n++] = (struct metrics_gauge){
        .name = "loop_delay_seconds", .help = delay_help, .value = ds.sum_s, .suffix = "_sum"};
    g[n++] = (struct metrics_gauge){.name = "loop_delay_seconds",
                                    .help = delay_help,
                                    .value = (double)ds.count,
                                    .suffix = "_count"};
    for (size_t i = n - 4; i < n; i++)
        g[i].kind = METRICS_SUMMARY;
    g[n++] = METRICS_GAUGE("loop_delay_max_seconds",
                           "Event-loop delay, maximum over the last 10-20 s", ds.max_s);
    g[n++] = METRICS_GAUGE("loop_iterations_total", "Loop iterations",
                           (double)loop_iterations(evloop.loop));
    g[n++] = METRICS_GAUGE("loop_timers", "Active loop timers", loop_timers_active(evloop.loop));
    g[n++] = METRICS_GAUGE("server_runs_total", "Turns of the HTTP server on the loop",
                           (double)http_server_runs(evloop.http));
    g[n++] =
        METRICS_GAUGE("requests_suspended", "Requests waiting on a callback", exec_suspended());
    g[n++] = METRICS_GAUGE("pool_size", "Pool threads configured (UV_THREADPOOL_SIZE)",
                           pool_size(evloop.pool));
    g[n++] = METRICS_GAUGE("pool_threads", "Pool threads started (0 until first use)",
                           pool_threads(evloop.pool));
    g[n++] = METRICS_GAUGE("pool_queue_depth", "Work items waiting for a pool thread",
                           pool_queued(evloop.pool));
    g[n++] = METRICS_GAUGE("pool_busy", "Pool threads running a work item", pool_busy(evloop.pool));
    g[n++] = METRICS_GAUGE("db_on_loop", "1 with --db-on-loop", evloop.db_on_loop);
    g[n++] = METRICS_GAUGE("connections", "Open connections", http_connections());
    g[n++] = METRICS_GAUGE("worker_process", "This process's index among --cluster",
                           evloop.worker_index);
    return n;
}

/* ---- signals and the drain ----------------------------------------------------------------- */

static void evloop_drain_check_cb(struct loop_hook *h)
{
    if (metrics_in_flight() > 0)
        return;
    loop_check_stop(evloop.loop, h);
    loop_stop(evloop.loop);
}

static void evloop_drain_timeout_cb(struct loop_timer *t)
{
    (void)t;
    evloop.drain_timed_out = true;
    loop_stop(evloop.loop);
}

/* SIGINT or SIGTERM: stop accepting, then let the loop run until nothing is in flight (the
 * check hook) or --drain-timeout passes (a timer). A second signal changes nothing. */
static void evloop_signal_cb(struct loop_io *io, uint32_t events)
{
    (void)events;
    struct signalfd_siginfo si;
    if (read(io->fd, &si, sizeof(si)) != (ssize_t)sizeof(si) || evloop.draining)
        return;
    log_info("%s: finishing requests in flight", si.ssi_signo == SIGINT ? "SIGINT" : "SIGTERM");
    evloop.draining = true;
    http_server_quiesce(evloop.http);
    loop_check_start(evloop.loop, &evloop.drain_check, evloop_drain_check_cb);
    loop_timer_init(&evloop.drain_timer, evloop_drain_timeout_cb);
    if (loop_timer_start(evloop.loop, &evloop.drain_timer,
                         (uint64_t)evloop.common.drain_timeout * 1000, 0) != 0)
        evloop_drain_timeout_cb(&evloop.drain_timer);
}

static int evloop_signals_start(void)
{
    int fd = signalfd(-1, &evloop.signals, SFD_NONBLOCK | SFD_CLOEXEC);
    if (fd < 0)
        return -errno;
    int rc = loop_io_start(evloop.loop, &evloop.signal_io, fd, EPOLLIN, evloop_signal_cb);
    if (rc != 0)
        close(fd);
    return rc;
}

static void evloop_signals_stop(void)
{
    loop_io_stop(evloop.loop, &evloop.signal_io);
    close(evloop.signal_io.fd);
}

/* ---- one worker process -------------------------------------------------------------------- */

static int evloop_http_start(void)
{
    struct http_config cfg = {
        .model = &exec_http_model,
        .drive = HTTP_DRIVE_EXTERNAL, /* L drives it: server_io.h */
        .listen_fd = evloop.listen_fd,
        .limits = http_limits_from(&evloop.common),
        .wake_cb = server_io_wake_cb,
        .driver_ctx = &evloop.sio,
    };
    int rc = http_server_start(&cfg, &evloop.http);
    if (rc != 0)
        return rc;
    rc = server_io_start(&evloop.sio, evloop.loop, evloop.http);
    if (rc != 0)
        http_server_stop(evloop.http);
    return rc;
}

/* Everything L needs; torn down in reverse order. */
static int evloop_start(void)
{
    int rc = loop_create(&evloop.loop);
    if (rc != 0)
        return rc;
    if ((rc = evloop_signals_start()) != 0)
        goto fail_loop;
    if ((rc = delay_create(evloop.loop, DELAY_RESOLUTION_MS, &evloop.delay)) != 0)
        goto fail_signals;
    if ((rc = pool_create(evloop.loop, (unsigned)evloop.pool_size, &evloop.pool)) != 0)
        goto fail_delay;
    /* --db-on-loop is sqlite's story (better-sqlite3); PostgreSQL always runs on L, without
     * blocking it (node-postgres). */
    if (evloop.db_on_loop && !db_target_is_pg(evloop.common.db) &&
        (rc = db_open(evloop.common.db, &evloop.loop_db)) != 0)
        goto fail_pool;
    struct exec_config ec = {.loop = evloop.loop,
                             .pool = evloop.pool,
                             .db_path = evloop.common.db,
                             .loop_db = evloop.loop_db,
                             .pg_pool = (unsigned)evloop.pg_pool};
    if ((rc = exec_init(&ec)) != 0)
        goto fail_db;
    if ((rc = evloop_http_start()) != 0)
        goto fail_exec;
    return 0;

fail_exec:
    exec_close();
fail_db:
    db_close(evloop.loop_db);
fail_pool:
    pool_destroy(evloop.pool);
fail_delay:
    delay_destroy(evloop.delay);
fail_signals:
    evloop_signals_stop();
fail_loop:
    loop_destroy(evloop.loop);
    return rc;
}

/* After a complete drain: nothing is suspended, no pool work is queued. */
static void evloop_stop(void)
{
    server_io_stop(&evloop.sio);
    http_server_stop(evloop.http); /* closes the idle keep-alive connections */
    pool_destroy(evloop.pool);     /* joins the Ps: their sqlite connections close */
    exec_close();
    db_close(evloop.loop_db);
    delay_destroy(evloop.delay);
    evloop_signals_stop();
    loop_destroy(evloop.loop);
}

static int evloop_serve(unsigned index, void *arg)
{
    (void)arg;
    evloop.worker_index = index;
    char why[64];
    int rc = evloop_start();
    if (rc != 0) {
        log_error("cannot start: %s", strerror_r(-rc, why, sizeof(why)));
        return 1;
    }
    rc = loop_run(evloop.loop);
    if (rc != 0) {
        log_error("epoll_wait failed: %s", strerror_r(-rc, why, sizeof(why)));
        return 1;
    }
    if (evloop.drain_timed_out) {
        log_error("requests still in flight after %llds: exiting without them",
                  evloop.common.drain_timeout);
        return 1;
    }
    loop_check_stop(evloop.loop, &evloop.drain_check);
    loop_timer_stop(evloop.loop, &evloop.drain_timer);
    evloop_stop();
    return 0;
}

/* ---- the command line ---------------------------------------------------------------------- */

/* libuv reads UV_THREADPOOL_SIZE once, with atoi: 0 becomes 1, past 1024 becomes 1024. Here
 * anything below 1 becomes 1 (libuv turns a negative number into 1024). --pool wins. */
static long long evloop_pool_size_env(void)
{
    const char *v = getenv("UV_THREADPOOL_SIZE");
    if (v == NULL)
        return POOL_SIZE_DEFAULT;
    long long n = strtoll(v, NULL, 10);
    return n < 1 ? 1 : n > POOL_SIZE_MAX ? POOL_SIZE_MAX : n;
}

int main(int argc, char **argv)
{
    evloop.pool_size = evloop_pool_size_env();
    evloop.cluster = 1;
    evloop.pg_pool = 10; /* pg.Pool's max */
    cli_common_defaults(&evloop.common);
    evloop.common.upstream_idle = 256; /* http.Agent's maxFreeSockets */
    const struct cli_opt opts[] = {
        {"pool", CLI_INT, &evloop.pool_size, 1, POOL_SIZE_MAX, "N",
         "pool threads for database work (UV_THREADPOOL_SIZE)"},
        {"pg-pool", CLI_INT, &evloop.pg_pool, 1, 100000, "N",
         "PostgreSQL connections open at most (pg.Pool's max)"},
        {"db-on-loop", CLI_FLAG, &evloop.db_on_loop, 0, 0, "",
         "run database work on the loop thread (better-sqlite3, node:sqlite)"},
        {"cluster", CLI_INT, &evloop.cluster, 1, 256, "N",
         "loop processes sharing the listening socket (Node's cluster, SCHED_NONE)"},
    };
    const struct cli_model cli = {"triad-evloop",
                                  "One event loop and a thread pool per process (Node.js/libuv).",
                                  opts, TRIAD_ARRAY_LEN(opts)};
    int rc = serve_start(argc, argv, &cli, &evloop.common, exec_http_model.name, evloop_gauges_cb,
                         &evloop.signals, &evloop.listen_fd);
    if (rc >= 0)
        return rc;
    if (evloop.cluster > 1)
        return prefork_run((unsigned)evloop.cluster, &evloop.signals, evloop.listen_fd,
                           evloop_serve, NULL);
    return evloop_serve(0, NULL);
}
