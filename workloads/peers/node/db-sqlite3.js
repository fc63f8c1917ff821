'use strict';
// db-sqlite3.js - the default driver: node-sqlite3 (the `sqlite3` package).
//
// Every call is one job on libuv's thread pool (4 threads, UV_THREADPOOL_SIZE): the loop
// hands the statement over and gets the row back in a later turn. One Database is one sqlite
// connection, opened FULLMUTEX, so jobs on several pool threads take turns on its mutex; that
// is how applications use it (one Database per process), and it differs from triad's evloop,
// whose pool threads have a connection each.

const sqlite3 = require('sqlite3');

const BUSY_TIMEOUT_MS = 5000; // triad's, and CPython's sqlite3.connect(timeout=5.0)

class PoolDb {
  constructor(conn) {
    this.conn = conn;
    this.worldStmt = null;
    this.fortuneStmt = null;
  }

  static open(file) {
    return new Promise((resolve, reject) => {
      const conn = new sqlite3.Database(file, (err) => {
        if (err) return reject(err);
        conn.configure('busyTimeout', BUSY_TIMEOUT_MS);
        const db = new PoolDb(conn);
        db.exec('PRAGMA synchronous=NORMAL').then(() => resolve(db), reject);
      });
    });
  }

  exec(sql) {
    return new Promise((resolve, reject) => {
      this.conn.exec(sql, (err) => (err ? reject(err) : resolve()));
    });
  }

  get(sql) {
    return new Promise((resolve, reject) => {
      this.conn.get(sql, (err, row) => (err ? reject(err) : resolve(row)));
    });
  }

  // Statements are prepared on first use: the schema may not exist when the file is opened.
  world(id) {
    this.worldStmt ||= this.conn.prepare('SELECT id, randomNumber FROM World WHERE id = ?');
    return new Promise((resolve, reject) => {
      this.worldStmt.get(id, (err, row) => {
        if (err) return reject(err);
        if (!row) return reject(new Error(`no World row ${id}`));
        resolve(row.randomNumber);
      });
    });
  }

  fortunes() {
    this.fortuneStmt ||= this.conn.prepare('SELECT id, message FROM Fortune');
    return new Promise((resolve, reject) => {
      this.fortuneStmt.all((err, rows) => (err ? reject(err) : resolve(rows)));
    });
  }

  // The whole transaction is one exec, so one pool job, like triad's evloop. Statements
  // queued one by one (db.serialize) would each be a pool trip, and other requests' statements
  // on this shared connection could land inside the transaction. The values are integers this
  // process generated, so writing them into the SQL text is safe.
  async updateWorlds(rows) {
    const updates = rows.map((r) =>
      `UPDATE World SET randomNumber = ${r.randomNumber | 0} WHERE id = ${r.id | 0};`);
    try {
      await this.exec(`BEGIN IMMEDIATE;${updates.join('')}COMMIT;`);
    } catch (err) {
      await this.exec('ROLLBACK').catch(() => {}); // no transaction left open: harmless
      throw err;
    }
  }

  close() {
    const stmts = [this.worldStmt, this.fortuneStmt].filter(Boolean);
    return Promise.all(stmts.map((s) => new Promise((resolve) => s.finalize(resolve))))
      .then(() => new Promise((resolve) => this.conn.close(() => resolve())));
  }
}

module.exports = { open: (file) => PoolDb.open(file), PoolDb };
