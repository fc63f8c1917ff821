'use strict';
// app.js - the endpoints, answering the same bytes as triad's shared/ep_*.c: routing, the
// parameter rules (shared/param.c), the error messages (req_reply_error) and the fortunes page
// (shared/render.c). server.js's opening comment says what each endpoint exercises in Node.

const http = require('node:http');
const { setTimeout: sleep } = require('node:timers/promises');

const GET_ONLY = 'GET, HEAD';
const JSON_TYPE = 'application/json';
const COUNT_MAX = 500;
const WORLD_ROWS = 10000;
const ITERATIONS_MAX = 10000000;
const MS_MAX = 10000;
const CALLS_MAX = 1000;
const UPSTREAM_BODY_MAX = 65536; // an /io answer is a few bytes; more is not an /io answer

class HttpError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

// ---- parameters (shared/param.c) ----------------------------------------------------------

// TechEmpower's rule: missing, empty, not an integer or below 1 gives 1; above 500 gives 500.
function countParam(value) {
  if (!/^[0-9]+$/.test(value ?? '')) return 1;
  const n = Number(value); // a huge digit string becomes a huge number or Infinity: clamped
  return n < 1 ? 1 : Math.min(n, COUNT_MAX);
}

// Plain decimal digits within min..max, or a 400 with `message`.
function intParam(value, min, max, message) {
  if (!/^[0-9]+$/.test(value ?? '')) throw new HttpError(400, message);
  const n = Number(value);
  if (n < min || n > max) throw new HttpError(400, message);
  return n;
}

const msParam = (q) => intParam(q.get('ms'), 0, MS_MAX, 'ms must be an integer in 0..10000');
const callsParam = (q) =>
  intParam(q.get('calls'), 1, CALLS_MAX, 'calls must be an integer in 1..1000');

// ---- the TechEmpower endpoints ------------------------------------------------------------

const randomId = () => 1 + Math.floor(Math.random() * WORLD_ROWS);

// A new randomNumber that differs from the old one, as triad's /updates picks it.
function newNumber(old) {
  const v = 1 + Math.floor(Math.random() * (WORLD_ROWS - 1));
  return v >= old ? v + 1 : v;
}

// One SELECT per row, all in flight at once: TechEmpower forbids batching the reads.
async function loadWorlds(db, n) {
  const ids = Array.from({ length: n }, randomId);
  const numbers = await Promise.all(ids.map((id) => db.world(id)));
  return ids.map((id, i) => ({ id, randomNumber: numbers[i] }));
}

const ESCAPES = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };
const escapeHtml = (s) => s.replace(/[&<>"']/g, (c) => ESCAPES[c]);

function fortunesPage(rows) {
  rows.push({ id: 0, message: 'Additional fortune added at request time.' });
  // triad sorts by UTF-8 bytes; UTF-16 order is the same for text without astral characters.
  rows.sort((a, b) => (a.message < b.message ? -1 : a.message > b.message ? 1 : 0));
  const cells = rows.map((f) => `<tr><td>${f.id}</td><td>${escapeHtml(f.message)}</td></tr>`);
  return '<!DOCTYPE html><html><head><title>Fortunes</title></head><body><table>' +
         `<tr><th>id</th><th>message</th></tr>${cells.join('')}</table></body></html>`;
}

// ---- /cpu (shared/cpu.h) --------------------------------------------------------------------

const CPU_SEED = 0x243F6A8885A308D3n;
const CPU_MUL = 0x94D049BB133111EBn;

// JavaScript has no 64-bit integer type: BigInt.asUintN(64, ...) is the idiomatic way to get
// wrapping u64 arithmetic, at roughly 2 us per iteration against triad's 0.09 us in C.
function cpuDigest(iterations) {
  const n = BigInt(iterations);
  let x = CPU_SEED;
  for (let i = 0n; i < n; i++) {
    x = BigInt.asUintN(64, x + i);
    for (let r = 0; r < 64; r++) x = BigInt.asUintN(64, (x ^ (x >> 27n)) * CPU_MUL);
  }
  return x.toString(16).padStart(16, '0');
}

// ---- /upstream --------------------------------------------------------------------------------

// One GET /io?ms=M to the upstream. Rejects with an HttpError: 504 when the per-call deadline
// passed, 502 for anything else that is not a 200 with a small body.
function callUpstream(agent, base, ms, timeoutMs) {
  const signal = AbortSignal.timeout(timeoutMs);
  const failure = (why) =>
    signal.aborted ? new HttpError(504, 'upstream timed out') : new HttpError(502, why);
  return new Promise((resolve, reject) => {
    const req = http.get(new URL(`/io?ms=${ms}`, base), { agent, signal }, (res) => {
      let size = 0;
      res.on('data', (chunk) => {
        size += chunk.length;
        if (size > UPSTREAM_BODY_MAX) {
          res.destroy();
          reject(failure('upstream answer too large'));
        }
      });
      res.on('end', () => (res.statusCode === 200 ? resolve()
        : reject(failure('upstream answered with a status other than 200'))));
      res.on('error', () => reject(failure('upstream request failed')));
    });
    req.on('error', () => reject(failure('upstream request failed')));
  });
}

// ---- the application ------------------------------------------------------------------------

// Returns the request listener. Handlers return [status, content type, body] or throw.
function createApp({ db, model, upstream, upstreamTimeoutMs }) {
  // Keep-alive with Node's defaults otherwise: no cap on sockets per host, 256 kept idle.
  const agent = new http.Agent({ keepAlive: true });

  const json = (value) => [200, JSON_TYPE, JSON.stringify(value)];
  const routes = new Map([
    ['/plaintext', async () => [200, 'text/plain', 'Hello, World!']],
    ['/json', async () => json({ message: 'Hello, World!' })],
    ['/db', async () => {
      const id = randomId();
      return json({ id, randomNumber: await db.world(id) });
    }],
    ['/queries', async (q) => json(await loadWorlds(db, countParam(q.get('queries'))))],
    ['/updates', async (q) => {
      const rows = await loadWorlds(db, countParam(q.get('queries')));
      for (const row of rows) row.randomNumber = newNumber(row.randomNumber);
      await db.updateWorlds(rows); // committed before the answer
      return json(rows);
    }],
    ['/fortunes', async () =>
      [200, 'text/html; charset=utf-8', fortunesPage(await db.fortunes())]],
    ['/cpu', async (q) => {
      const n = intParam(q.get('iterations'), 0, ITERATIONS_MAX,
                         'iterations must be an integer in 0..10000000');
      return json({ iterations: n, digest: cpuDigest(n) });
    }],
    ['/io', async (q) => {
      const ms = msParam(q);
      await sleep(ms);
      return json({ waited_ms: ms });
    }],
    ['/fanout', async (q) => {
      const calls = callsParam(q);
      const ms = msParam(q);
      await Promise.all(Array.from({ length: calls }, () => sleep(ms)));
      return json({ calls, ms });
    }],
    ['/upstream', async (q) => {
      const calls = callsParam(q);
      const ms = msParam(q);
      if (!upstream) {
        throw new HttpError(503, 'no upstream configured: start the server with ' +
                                 '--upstream http://HOST:PORT');
      }
      const all = Array.from({ length: calls },
                             () => callUpstream(agent, upstream, ms, upstreamTimeoutMs));
      await Promise.all(all); // the first failure answers; the other calls run out
      return json({ calls, ms });
    }],
    ['/health', async () => json({ status: 'ok', model })],
  ]);

  return async function onRequest(req, res) {
    let reply;
    try {
      reply = await route(routes, req);
    } catch (err) {
      reply = errorReply(err);
    }
    const [status, type, body, headers = {}] = reply;
    res.writeHead(status, {
      Server: model,
      'Content-Type': type,
      'Content-Length': Buffer.byteLength(body),
      ...headers,
    });
    res.end(body); // Node sends no body for HEAD, and keeps the Content-Length
  };
}

async function route(routes, req) {
  const at = req.url.indexOf('?');
  const path = at < 0 ? req.url : req.url.slice(0, at);
  const handler = routes.get(path);
  if (!handler) throw new HttpError(404, 'no such resource');
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    const err = new HttpError(405, 'method not allowed for this resource');
    err.headers = { Allow: GET_ONLY };
    throw err;
  }
  if (await hasBody(req)) throw new HttpError(400, 'this request takes no body');
  return handler(new URLSearchParams(at < 0 ? '' : req.url.slice(at + 1)));
}

// No route here takes a body. One that says it has one is read to the end (and dropped) to
// see whether a byte came: triad's rule is "a body on a route that takes none is a 400".
async function hasBody(req) {
  const length = req.headers['content-length'];
  if (req.headers['transfer-encoding'] === undefined && (!length || length === '0')) {
    return false;
  }
  let bytes = 0;
  for await (const chunk of req) bytes += chunk.length;
  return bytes > 0;
}

function errorReply(err) {
  let status = err.status;
  let message = err.message;
  if (!status && typeof err.code === 'string' && err.code.startsWith('SQLITE_')) {
    status = 503; // triad's req_reply_db_error
    message = err.code.startsWith('SQLITE_BUSY') || err.code.startsWith('SQLITE_LOCKED')
      ? 'database busy' : 'database unavailable';
  } else if (!status) {
    console.error('node peer: unexpected error:', err);
    status = 500;
    message = 'internal error';
  }
  const headers = { ...err.headers };
  if (status === 503) headers['Retry-After'] = '1';
  return [status, JSON_TYPE, JSON.stringify({ error: message }), headers];
}

module.exports = { createApp, cpuDigest };
