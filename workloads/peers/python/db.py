"""db.py - the database: the standard library's sqlite3, one connection per thread.

sqlite3 connections refuse to be used from a thread other than the one that made them
(check_same_thread), so each of gunicorn's threads opens its own on first use and keeps it
(threading.local): the same arrangement as triad's threaded model, a connection per thread.
The module's statement cache keeps each query prepared on its connection. Every call blocks
its thread, with the GIL released while sqlite works (the module releases it around
sqlite3_step), so other threads run Python meanwhile.

PostgreSQL goes here later: the same four functions over psycopg2 (Debian's python3-psycopg2),
chosen when --db is a postgres:// URL.
"""

import os
import sqlite3
import threading

SCHEMA_VERSION = 1
SCHEMA_SQL = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "schema.sql")
BUSY_TIMEOUT_S = 5.0        # triad's busy timeout is CPython's default
_SQLITE_BUSY, _SQLITE_LOCKED = 5, 6

_path = None
_local = threading.local()


def configure(path):
    global _path
    _path = path


def _connection():
    conn = getattr(_local, "conn", None)
    if conn is None:
        # isolation_level=None: no implicit transactions; /updates says BEGIN IMMEDIATE itself.
        conn = sqlite3.connect(_path, timeout=BUSY_TIMEOUT_S, isolation_level=None)
        conn.execute("PRAGMA synchronous=NORMAL")
        _local.conn = conn
    return conn


def world(world_id):
    row = _connection().execute("SELECT id, randomNumber FROM World WHERE id = ?",
                                (world_id,)).fetchone()
    if row is None:
        raise sqlite3.DatabaseError("no World row %d" % world_id)
    return row[1]


def fortunes():
    # No ORDER BY: TechEmpower wants the sort done by the application.
    return _connection().execute("SELECT id, message FROM Fortune").fetchall()


def update_worlds(rows):
    """Writes [(id, randomNumber)] in one transaction, committed when it returns."""
    conn = _connection()
    conn.execute("BEGIN IMMEDIATE")     # the write lock up front, as triad takes it
    try:
        conn.executemany("UPDATE World SET randomNumber = ? WHERE id = ?",
                         [(number, world_id) for (world_id, number) in rows])
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise


def is_busy(err):
    """Did the database stay locked past the busy timeout (rather than fail otherwise)?"""
    code = getattr(err, "sqlite_errorcode", None)       # Python 3.11
    return code is not None and code & 0xFF in (_SQLITE_BUSY, _SQLITE_LOCKED)


def setup(path):
    """What triad's db_setup does (shared/db_schema.c): WAL, refuse a newer schema, check the
    file, then create and seed version 1 from ../schema.sql if the file has none. Raises
    RuntimeError with the reason."""
    conn = sqlite3.connect(path, timeout=BUSY_TIMEOUT_S, isolation_level=None)
    try:
        mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
        if mode.lower() != "wal":
            raise RuntimeError("cannot use it: journal_mode=WAL refused")
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise RuntimeError("schema version %d is newer than this peer's %d: refusing to "
                               "touch it" % (version, SCHEMA_VERSION))
        verdict = conn.execute("PRAGMA quick_check").fetchone()[0]
        if verdict != "ok":
            raise RuntimeError("integrity check failed: %s" % verdict)
        if version == SCHEMA_VERSION:
            return
        with open(SCHEMA_SQL, encoding="utf-8") as f:
            script = f.read()
        try:
            conn.executescript("BEGIN IMMEDIATE;\n%s\nCOMMIT;" % script)
        except sqlite3.Error as e:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            # Another process may have seeded the file since we looked: then all is well.
            if conn.execute("PRAGMA user_version").fetchone()[0] != SCHEMA_VERSION:
                raise RuntimeError("creating schema version %d failed: %s"
                                   % (SCHEMA_VERSION, e))
    except sqlite3.Error as e:
        raise RuntimeError(str(e))
    finally:
        conn.close()
