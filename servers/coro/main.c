/* triad-coro: every request a goroutine, on an M:N work-stealing scheduler (Go's runtime).
 *
 * The model
 * =========
 *
 * Requests run as goroutines: coroutines with their own small stacks, multiplexed over a few
 * OS threads by a scheduler that is a C rendering of Go's (proc.c opens with its essay: G, M,
 * P, run queues, stealing, spinning, sysmon, the netpoller). A goroutine that waits (a timer, a
 * WaitGroup, a socket) parks and holds no thread; one that blocks in sqlite holds its thread
 * but, after a sysmon tick, not its P, so the other goroutines keep running on another thread.
 * CPU-bound goroutines are preempted after 10 ms at the core's safe points.
 *
 * Concepts:
 *
 *   S - shard (shard.c): one HTTP server of the core, driven from outside. There are
 *       GOMAXPROCS of them, all accepting from the shared listening socket; a connection stays
 *       on the shard that accepted it.
 *   D - shard driver: a goroutine per shard that parks on the netpoller until the shard's
 *       descriptor is readable, its deadline passes or a resume kicks it, then runs the server
 *       once (accept, read, parse, start request goroutines, write answers). Any M may run it;
 *       it is not bound to a thread.
 *   R - request goroutine (exec.c): runs the request's task; every wait parks it (exec.h lists
 *       how). When every P is busy, R runs inline on D's M at once (coro_run_inline): a request
 *       that never waits is answered before the server's run returns, with no suspend and no
 *       hand-off to another thread; at its first wait, or when preempted, R detaches: D
 *       suspends the connection and queues R in runnext. When a P is idle, D does what `go`
 *       does: suspends the connection, puts R in runnext and wakes the idle P, which steals it.
 *       Either way R finishes on whatever M runs it and resumes the connection.
 *   C - a database wait: sqlite through a connection checked out of a pool (dbpool.c,
 *       database/sql's shape), each sqlite3_step between entersyscall and exitsyscall (the
 *       core's blocking hooks); PostgreSQL through libpq's non-blocking API, R parked on the
 *       netpoller between the steps of the protocol, as pgx and lib/pq do (shared/pg_async.h).
 *   J - a join (/fanout, /upstream?calls=N): N goroutines and a WaitGroup. A call to the
 *       upstream service parks on the netpoller for connect, write and read, as a net.Conn does.
 *
 * What it mirrors, and how faithfully
 * ===================================
 *
 * Go 1.19's runtime: GOMAXPROCS Ps (--procs, else $GOMAXPROCS, else the CPUs in the affinity
 * mask), 256-slot local queues with runnext, the global queue checked every 61st tick, stealing
 * half a random victim's queue, the spinning-M rule, per-P timers, one netpoller, sysmon with
 * its 20 us to 10 ms tick, syscall hand-off after one tick, preemption after 10 ms. The sanitizer
 * builds run it all under ASan and TSan, with fiber annotations (ctx.c).
 *
 * Where it differs from a Go program:
 *   - net/http runs one goroutine per connection that parses, handles and writes; here
 *     libmicrohttpd parses and writes, sharded by GOMAXPROCS, and a goroutine runs per request.
 *   - net/http's Transport runs a read loop and a write loop goroutine per upstream connection
 *     (transport.go, persistConn.readLoop/writeLoop); here the call's own goroutine connects,
 *     writes and reads, parking on the netpoller at each step. The keep-alive pool keeps
 *     MaxIdleConnsPerHost = 2 idle connections, Go's default.
 *   - Preemption is only at safe points (Go's synchronous kind); see proc.c.
 *   - Stacks are fixed 64 KiB reservations, not 2 KiB stacks that grow: a parked goroutine
 *     costs its touched pages (4-8 KiB) where Go's costs 2-3 KiB.
 *   - A goroutine that cannot get a stack, or an M that cannot be started, is refused with a
 *     503 (coro.h); Go throws ("failed to create new OS thread") and the process dies.
 *   - No garbage collector.
 *
 * Rejected designs
 * ================
 *
 *   1. libmicrohttpd's own threads (an internal polling thread or its thread pool): network
 *      readiness would be handled by threads the scheduler does not know, and a hand-off to the
 *      scheduler would cost every request a cross-thread wake-up.
 *   2. One server driven by one goroutine: HTTP for the whole process would be serialised on
 *      one M, and /json could not scale with --procs.
 *   3. Running every request inline on the driver's M: with a P idle, the requests of one
 *      shard would run one after another on one M while the other P had nothing to do. (The
 *      opposite, spawning every request into runnext and suspending every connection as `go`
 *      does, makes a request that never waits pay a suspend, a wake-up and another run of the
 *      server: it is what happens, deliberately, only while a P is idle.)
 *   4. A sqlite connection per M: a goroutine that comes back from a blocking call on another
 *      M would use the first M's connection while that M runs someone else.
 *
 * Invariants
 * ==========
 *
 *   - A shard's server is run by its driver goroutine only (a server's run is not
 *     re-entrant).
 *   - A connection is suspended before its detached request goroutine is published, and
 *     resumed exactly once, by that goroutine (or, if the goroutine could not be started, by
 *     the driver that suspended it), when the request is finished.
 *   - A database connection is held by one goroutine at a time, for one database wait.
 */
#include "coro.h"
#include "exec.h"
#include "shard.h"

#include "check.h"
#include "cli.h"
#include "dbpool.h"
#include "hook.h"
#include "http.h"
#include "metrics.h"
#include "param.h"
#include "serve.h"

#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* The one server of this process. The hooks and the gauges carry no context pointer of ours. */
static struct {
    long long procs, stack_kib, db_idle, db_max_open;
    struct cli_common common;
    sigset_t signals;
    int listen_fd;
} coro;

/* ---- hooks and gauges -------------------------------------------------------------------- */

static const struct hook_ops coro_hooks = {
    .safepoint_cb = coro_safepoint,
    .blocking_enter_cb = coro_enter_syscall,
    .blocking_exit_cb = coro_exit_syscall,
};

static size_t coro_gauges_cb(struct metrics_gauge *g, size_t cap)
{
    struct coro_stats st;
    coro_stats_read(&st);
    struct metrics_gauge fixed[] = {
        METRICS_GAUGE("procs", "GOMAXPROCS: Ps", st.procs),
        METRICS_GAUGE("procs_idle", "Idle Ps", st.ps_idle),
        METRICS_GAUGE("goroutines", "Live goroutines", (double)st.goroutines_live),
        METRICS_GAUGE("goroutines_created_total", "Goroutines created",
                      (double)st.goroutines_created),
        METRICS_GAUGE("threads_started", "Ms (worker threads) started", st.ms_total),
        METRICS_GAUGE("threads_idle", "Ms parked", st.ms_idle),
        METRICS_GAUGE("threads_spinning", "Ms looking for work", st.ms_spinning),
        METRICS_GAUGE("threads_in_syscall", "Ms inside a blocking call", st.ms_in_syscall),
        METRICS_GAUGE("threads_failed_total", "Ms that could not be started",
                      (double)st.threads_failed),
        METRICS_GAUGE("runq_global_goroutines", "Goroutines on the global run queue",
                      (double)st.global_runq),
        METRICS_GAUGE("steals_total", "Successful steals", (double)st.steals),
        METRICS_GAUGE("stolen_total", "Goroutines moved by steals", (double)st.stolen),
        METRICS_GAUGE("preempt_requests_total", "Preemption requests by sysmon",
                      (double)st.preempt_requests),
        METRICS_GAUGE("preemptions_total", "Goroutines preempted at a safe point",
                      (double)st.preemptions),
        METRICS_GAUGE("handoffs_total", "Ps taken from Ms in blocking calls", (double)st.handoffs),
        METRICS_GAUGE("syscalls_total", "Blocking calls entered", (double)st.syscalls),
        METRICS_GAUGE("db_conns_open", "sqlite connections open", dbpool_open_count()),
        METRICS_GAUGE("db_conns_idle", "sqlite connections idle in the pool", dbpool_idle_count()),
        METRICS_GAUGE("connections", "Open connections", http_connections()),
    };
    size_t n = 0;
    for (; n < TRIAD_ARRAY_LEN(fixed) && n < cap; n++)
        g[n] = fixed[n];
    for (unsigned i = 0; i < st.procs && i < TRIAD_ARRAY_LEN(st.runq_len) && n < cap; i++) {
        char p[12];
        snprintf(p, sizeof(p), "%u", i);
        g[n++] = metrics_gauge_labeled("runq_goroutines", "Goroutines on a P's local run queue",
                                       "p", p, st.runq_len[i]);
    }
    return n;
}

/* ---- start and stop ---------------------------------------------------------------------- */

/* GOMAXPROCS: the environment if set and valid, else the CPUs we may run on. */
static long long coro_default_procs(void)
{
    uint64_t v;
    if (param_parse_u64(getenv("GOMAXPROCS"), 1, 1024, &v) == 0)
        return (long long)v;
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof(set), &set) == 0 && CPU_COUNT(&set) > 0)
        return CPU_COUNT(&set);
    return 1;
}

static int coro_serve(void)
{
    struct coro_config cfg = {.procs = (unsigned)coro.procs,
                              .stack_size = (size_t)coro.stack_kib * 1024};
    struct exec_config ec = {.db_path = coro.common.db,
                             .db_idle = (unsigned)coro.db_idle,
                             .db_max_open = (unsigned)coro.db_max_open};
    struct http_config hc = {.model = &exec_http_model,
                             .listen_fd = coro.listen_fd,
                             .limits = http_limits_from(&coro.common)};
    hook_install(&coro_hooks);
    if (exec_init(&ec) != 0 || coro_start(&cfg) != 0 || shard_start(cfg.procs, &hc) != 0) {
        log_error("cannot start: out of threads, descriptors or memory");
        return 1;
    }
    int sig = serve_signal_wait(&coro.signals);
    long drain_s = coro.common.drain_timeout;
    log_info("%s: finishing requests in flight", sig == SIGINT ? "SIGINT" : "SIGTERM");
    /* Whatever could not be started, the drain's deadline holds: goroutines that cannot
     * finish (no M to run them) end the process with status 1 rather than a hang. */
    if (shard_quiesce(drain_s) != 0 || serve_drain(drain_s) != 0) {
        log_error("requests still in flight after %lds: exiting without them", drain_s);
        return 1;
    }
    shard_stop();
    if (coro_wait_idle((int64_t)drain_s * 1000000000) != 0) {
        log_error("goroutines still running after %lds: exiting without them", drain_s);
        return 1;
    }
    /* The runtime first: until its Ms are joined, one of them may hold an event it took
     * from epoll for a shard's poll descriptor and be about to read it. */
    coro_stop();
    shard_close();
    exec_close();
    return 0;
}

int main(int argc, char **argv)
{
    coro.procs = coro_default_procs();
    coro.stack_kib = 64;
    coro.db_idle = 4 * coro.procs;
    cli_common_defaults(&coro.common);
    coro.common.upstream_idle = 2; /* http.Transport's DefaultMaxIdleConnsPerHost */
    const struct cli_opt opts[] = {
        {"procs", CLI_INT, &coro.procs, 1, 1024, "N", "GOMAXPROCS; default $GOMAXPROCS or CPUs"},
        {"stack-kib", CLI_INT, &coro.stack_kib, 16, 8192, "KIB", "stack reserved per goroutine"},
        {"db-idle", CLI_INT, &coro.db_idle, 0, 4096, "N",
         "idle database connections kept (database/sql's SetMaxIdleConns; Go's default is 2)"},
        {"db-max-open", CLI_INT, &coro.db_max_open, 0, 100000, "N",
         "PostgreSQL connections open at most (SetMaxOpenConns); 0: no limit, Go's default"},
    };
    const struct cli_model cli = {"triad-coro",
                                  "Goroutines on an M:N work-stealing scheduler (Go's runtime).",
                                  opts, sizeof(opts) / sizeof(opts[0])};
    int rc = serve_start(argc, argv, &cli, &coro.common, exec_http_model.name, coro_gauges_cb,
                         &coro.signals, &coro.listen_fd);
    if (rc >= 0)
        return rc;
    return coro_serve();
}
