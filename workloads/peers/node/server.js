'use strict';
/*
 * server.js - the Node.js peer of triad: the API of triad's evloop model, on the real runtime.
 *
 *   run --host H --port P --db PATH [--db-on-loop] [--cluster N]
 *       [--upstream http://HOST:PORT] [--upstream-timeout S]
 *
 * triad's evloop (servers/evloop/main.c) is a C mirror of Node: one loop thread, libuv's
 * phases, a 4-thread pool for the database. This file runs the same endpoints on Node itself,
 * written as a Node programmer would write them, so that a benchmark can set the mirror next
 * to the original. What each endpoint exercises here:
 *
 *   /plaintext, /json  node:http on the loop thread: llhttp parses the request, the handler
 *                      builds a string, the socket write is queued. Pure per-request overhead.
 *   /db, /queries,     node-sqlite3 (the `sqlite3` package): every statement is one job on
 *   /updates,          libuv's thread pool (uv_queue_work, 4 threads by default, set with
 *   /fortunes          UV_THREADPOOL_SIZE); the row comes back as a callback in a later loop
 *                      turn. /queries?queries=20 is 20 pool jobs in flight at once (triad's
 *                      mirror makes it one job). /updates writes its rows as one exec, one job.
 *                      With --db-on-loop, better-sqlite3 runs every statement on the loop
 *                      thread itself: no pool, no hop back, and the loop is blocked meanwhile.
 *   /cpu               JavaScript on the loop thread: while it runs, no other request on this
 *                      process moves (head-of-line blocking, as in triad's evloop). The u64
 *                      digest needs BigInt here, which costs ~20x the C loop per iteration.
 *   /io                a timer (setTimeout from node:timers/promises) in libuv's timer heap:
 *                      the request holds no thread while it waits.
 *   /fanout            N timers joined by Promise.all: N waits on one thread.
 *   /upstream          N concurrent http.get calls through one keep-alive http.Agent (no cap
 *                      on sockets per host, Node's default): sockets in the loop's epoll set.
 *   /health            the model's name, like triad's /health.
 *   --cluster N        node:cluster: N loop processes sharing one listening socket. The kernel
 *                      spreads connections (SCHED_NONE, as triad's evloop --cluster does);
 *                      Node's default on Linux is SCHED_RR, the primary accepting and handing
 *                      each connection over.
 *
 * Where it differs from triad's mirror: HTTP is llhttp and JavaScript rather than
 * libmicrohttpd; node-sqlite3 shares one connection (FULLMUTEX) between the pool threads,
 * where triad gives each pool thread its own; Node closes idle keep-alive connections after
 * 5 s (triad: 60 s) and says so in `Connection: keep-alive` and `Keep-Alive: timeout=5`
 * headers that triad does not send; the `Server` header is `node`. There is no /stats,
 * /metrics, /items or /cached-queries, no --max-inflight and no request limits beyond Node's
 * own (16 KiB of headers). SIGTERM or SIGINT: stop accepting, let requests in flight finish,
 * exit 0 (1 if they are not done within 30 s).
 */

const cluster = require('node:cluster');
const http = require('node:http');
const { parseArgs } = require('node:util');

const { createApp } = require('./app');
const { openDatabase, setupDatabase, driverVersions } = require('./db');

const MODEL = 'node';
const DRAIN_TIMEOUT_MS = 30000; // triad's --drain-timeout default

const USAGE = `usage: run [--host H] [--port P] [--db PATH] [--db-on-loop] [--cluster N]
           [--upstream http://HOST:PORT] [--upstream-timeout S] [--version] [--help]

  --host H              address to listen on (default 127.0.0.1)
  --port P              port (default 8080; 0 picks a free one)
  --db PATH             sqlite file, created and seeded if missing (default triad.db)
  --db-on-loop          run sqlite on the event loop (better-sqlite3) instead of libuv's
                        thread pool (node-sqlite3)
  --cluster N           loop processes sharing the listening socket (default 1)
  --upstream URL        the service /upstream calls (GET /io?ms=M)
  --upstream-timeout S  seconds to wait for each upstream call (default 30)
`;

function fail(message) {
  process.stderr.write(`node peer: ${message}\n`);
  process.exit(1);
}

function parseOptions(argv) {
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      options: {
        host: { type: 'string', default: '127.0.0.1' },
        port: { type: 'string', default: '8080' },
        db: { type: 'string', default: 'triad.db' },
        'db-on-loop': { type: 'boolean', default: false },
        cluster: { type: 'string', default: '1' },
        upstream: { type: 'string' },
        'upstream-timeout': { type: 'string', default: '30' },
        version: { type: 'boolean', default: false },
        help: { type: 'boolean', default: false },
      },
    }));
  } catch (err) {
    fail(`${err.message}\n${USAGE}`);
  }
  const int = (name, min, max) => {
    const v = values[name];
    if (!/^[0-9]+$/.test(v) || Number(v) < min || Number(v) > max) {
      fail(`--${name} must be an integer in ${min}..${max}`);
    }
    return Number(v);
  };
  const opts = {
    host: values.host,
    port: int('port', 0, 65535),
    db: values.db,
    dbOnLoop: values['db-on-loop'],
    cluster: int('cluster', 1, 256),
    upstreamTimeoutMs: int('upstream-timeout', 1, 3600) * 1000,
    upstream: null,
    version: values.version,
    help: values.help,
  };
  if (values.upstream !== undefined) {
    let url;
    try {
      url = new URL(values.upstream);
    } catch {
      fail(`--upstream ${values.upstream}: not a URL`);
    }
    if (url.protocol !== 'http:') fail('--upstream must be an http:// URL');
    opts.upstream = url;
  }
  return opts;
}

function versionLine() {
  const drivers = driverVersions();
  return `node peer: Node.js ${process.version}, sqlite3 ${drivers.sqlite3}, ` +
         `better-sqlite3 ${drivers['better-sqlite3']} (--db-on-loop)`;
}

function banner(opts, address) {
  const driver = opts.dbOnLoop ? 'better-sqlite3' : 'sqlite3';
  const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  return `node peer listening on http://${host}:${address.port} (model=${MODEL} ` +
         `node=${process.version} driver=${driver} cluster=${opts.cluster} db=${opts.db})`;
}

// One loop process: open the database, serve, drain on SIGTERM/SIGINT.
async function serve(opts) {
  const db = await openDatabase(opts.db, { onLoop: opts.dbOnLoop });
  if (!cluster.isWorker) await setupDatabase(db); // the primary did it for its workers
  const app = createApp({ db, model: MODEL, upstream: opts.upstream,
                          upstreamTimeoutMs: opts.upstreamTimeoutMs });
  const server = http.createServer(app);
  server.on('error', (err) => fail(`cannot listen on ${opts.host}:${opts.port}: ${err.message}`));
  server.listen(opts.port, opts.host, () => {
    if (!cluster.isWorker) console.log(banner(opts, server.address()));
  });
  const stop = () => {
    // close() stops accepting and closes idle keep-alive connections; its callback runs
    // once the requests in flight have been answered and their connections have closed.
    server.close(async () => {
      await db.close();
      process.exit(0);
    });
    server.closeIdleConnections();
    setTimeout(() => process.exit(1), DRAIN_TIMEOUT_MS).unref();
  };
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
}

// The cluster primary: create the schema once, fork, print the start-up line when every
// worker listens, and pass SIGTERM/SIGINT on to the workers.
async function primary(opts) {
  const db = await openDatabase(opts.db, { onLoop: opts.dbOnLoop });
  await setupDatabase(db);
  await db.close();
  cluster.schedulingPolicy = cluster.SCHED_NONE;
  let listening = 0;
  let stopping = false;
  let status = 0;
  cluster.on('listening', (worker, address) => {
    worker.served = true;
    if (++listening === opts.cluster) console.log(banner(opts, address));
  });
  cluster.on('exit', (worker, code, signal) => {
    if (code !== 0) status = 1;
    if (!stopping && worker.served) {
      // A worker that served and died is replaced, as a process manager would.
      process.stderr.write(`node peer: worker ${worker.process.pid} died (${signal || code}); ` +
                           'starting another\n');
      cluster.fork();
      return;
    }
    if (!stopping) stop(); // it never came up: the others would not either
    if (Object.keys(cluster.workers).length === 0) process.exit(status);
  });
  function stop() {
    stopping = true;
    for (const worker of Object.values(cluster.workers)) worker.process.kill('SIGTERM');
  }
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
  for (let i = 0; i < opts.cluster; i++) cluster.fork();
}

function main() {
  const opts = parseOptions(process.argv.slice(2));
  if (opts.help) return process.stdout.write(USAGE);
  if (opts.version) return console.log(versionLine());
  const start = cluster.isPrimary && opts.cluster > 1 ? primary : serve;
  start(opts).catch((err) => fail(`cannot use database ${opts.db}: ${err.message}`));
}

main();
