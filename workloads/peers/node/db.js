'use strict';
// db.js - opening the database: picking the driver, and creating the schema on first start.
//
// Every driver offers the same small interface, so that app.js never knows which one runs:
//
//   exec(sql)              run statements that return nothing
//   get(sql)               the first row of a query, or undefined
//   world(id)              the randomNumber of World row `id`
//   fortunes()             every Fortune row, as {id, message}
//   updateWorlds(rows)     write each {id, randomNumber} in one IMMEDIATE transaction
//   close()
//
// Each method returns a promise or a plain value; callers always `await` it. With the pool
// driver that await is a trip through libuv's thread pool; with the synchronous one it only
// queues a microtask, and the event loop stays blocked for the whole call, as it is in Node.
//
// PostgreSQL goes here later: a db-pg.js with the same methods over `pg` (node-postgres,
// pure JavaScript, `npm install pg`), chosen when --db is a postgres:// URL.

const fs = require('node:fs');
const path = require('node:path');

const SCHEMA_VERSION = 1;
const SCHEMA_SQL = path.join(__dirname, '..', 'schema.sql');

// Picks the driver: node-sqlite3 (statements on libuv's pool) unless `onLoop`.
async function openDatabase(file, { onLoop = false } = {}) {
  const driver = onLoop ? require('./db-better-sqlite3') : require('./db-sqlite3');
  return driver.open(file);
}

// The drivers' versions and the SQLite each one runs, for --version.
function driverVersions() {
  const Database = require('better-sqlite3');
  const memory = new Database(':memory:');
  const bundled = memory.prepare('SELECT sqlite_version()').pluck().get();
  memory.close();
  return {
    sqlite3: `${require('sqlite3/package.json').version} (SQLite ${require('sqlite3').VERSION})`,
    'better-sqlite3': `${require('better-sqlite3/package.json').version} (SQLite ${bundled})`,
  };
}

// What triad's db_setup does (shared/db_schema.c): WAL, refuse a newer schema, check the
// file, then create and seed version 1 if the file has none. The version is read again
// inside the write transaction, so two processes starting on one new file cannot both seed it.
async function setupDatabase(db) {
  const mode = await db.get('PRAGMA journal_mode=WAL');
  if (!mode || String(mode.journal_mode).toLowerCase() !== 'wal') {
    throw new Error('cannot use it: journal_mode=WAL refused');
  }
  const version = await userVersion(db);
  if (version > SCHEMA_VERSION) {
    throw new Error(`schema version ${version} is newer than this peer's ${SCHEMA_VERSION}: ` +
                    'refusing to touch it');
  }
  const check = await db.get('PRAGMA quick_check');
  if (!check || check.quick_check !== 'ok') {
    throw new Error(`integrity check failed: ${check ? check.quick_check : '?'}`);
  }
  if (version === SCHEMA_VERSION) return;
  await db.exec('BEGIN IMMEDIATE');
  try {
    if (await userVersion(db) === 0) await db.exec(fs.readFileSync(SCHEMA_SQL, 'utf8'));
    await db.exec('COMMIT');
  } catch (err) {
    await Promise.resolve().then(() => db.exec('ROLLBACK')).catch(() => {});
    throw new Error(`creating schema version ${SCHEMA_VERSION} failed: ${err.message}`);
  }
}

async function userVersion(db) {
  return (await db.get('PRAGMA user_version')).user_version;
}

module.exports = { openDatabase, setupDatabase, driverVersions };
