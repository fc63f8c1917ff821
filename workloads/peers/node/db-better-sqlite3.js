'use strict';
// db-better-sqlite3.js - the --db-on-loop driver: better-sqlite3, synchronous.
//
// Each call runs sqlite on the event loop's own thread and returns the row directly: no pool
// trip, no callback, and nothing else on the loop runs until it returns (a write that waits
// out the 5 s busy timeout stalls every connection of the process). better-sqlite3 compiles
// its own copy of SQLite into the addon (newer than the system's 3.40.1 that node-sqlite3,
// Go, CPython and triad use); the file format and WAL are the same.

const Database = require('better-sqlite3');

const BUSY_TIMEOUT_MS = 5000;

class LoopDb {
  constructor(conn) {
    this.conn = conn;
    this.stmts = new Map();
    // better-sqlite3 wraps a function in BEGIN ... COMMIT (ROLLBACK if it throws);
    // .immediate() makes it BEGIN IMMEDIATE, as triad does.
    this.writeWorlds = conn.transaction((rows) => {
      const update = this.stmt('UPDATE World SET randomNumber = ? WHERE id = ?');
      for (const r of rows) update.run(r.randomNumber, r.id);
    });
  }

  static open(file) {
    const conn = new Database(file, { timeout: BUSY_TIMEOUT_MS });
    conn.pragma('synchronous = NORMAL');
    return new LoopDb(conn);
  }

  // Prepared once, on first use (the schema may not exist when the file is opened).
  stmt(sql) {
    let s = this.stmts.get(sql);
    if (!s) this.stmts.set(sql, (s = this.conn.prepare(sql)));
    return s;
  }

  exec(sql) {
    this.conn.exec(sql);
  }

  get(sql) {
    return this.conn.prepare(sql).get();
  }

  world(id) {
    const row = this.stmt('SELECT id, randomNumber FROM World WHERE id = ?').get(id);
    if (!row) throw new Error(`no World row ${id}`);
    return row.randomNumber;
  }

  fortunes() {
    return this.stmt('SELECT id, message FROM Fortune').all();
  }

  updateWorlds(rows) {
    this.writeWorlds.immediate(rows);
  }

  close() {
    this.conn.close();
  }
}

module.exports = { open: (file) => LoopDb.open(file), LoopDb };
