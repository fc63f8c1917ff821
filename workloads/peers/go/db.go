// db.go - the database: database/sql over mattn/go-sqlite3 (cgo, the system's libsqlite3).
package main

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"

	"github.com/mattn/go-sqlite3"
)

const schemaVersion = 1

type world struct {
	ID           int32 `json:"id"`
	RandomNumber int32 `json:"randomNumber"`
}

type fortune struct {
	ID      int32
	Message string
}

// store is what the endpoints need from a database. PostgreSQL goes here later as a second
// implementation over pgx (Debian's golang-github-jackc-pgx-v4-dev), picked by a
// postgres:// --db.
type store interface {
	World(ctx context.Context, id int32) (int32, error)
	Fortunes(ctx context.Context) ([]fortune, error)
	// UpdateWorlds writes every row in one transaction, committed when it returns nil.
	UpdateWorlds(ctx context.Context, rows []world) error
	// Busy tells a database that stayed locked past the busy timeout from other failures.
	Busy(err error) bool
	Close() error
}

type sqliteStore struct {
	db                        *sql.DB
	getWorld, setWorld, fetch *sql.Stmt
}

// openSQLite opens the file (creating and seeding it if it has no schema) with the pool's
// defaults apart from idle: no cap on open connections, and `idle` kept for reuse. Every
// connection the pool opens gets triad's settings from the DSN: a 5 s busy timeout, WAL,
// synchronous=NORMAL, and BEGIN IMMEDIATE for transactions.
func openSQLite(path string, idle int) (*sqliteStore, error) {
	params := url.Values{
		"_busy_timeout": {"5000"},
		"_journal_mode": {"WAL"},
		"_synchronous":  {"NORMAL"},
		"_txlock":       {"immediate"},
	}
	db, err := sql.Open("sqlite3", path+"?"+params.Encode())
	if err != nil {
		return nil, err
	}
	db.SetMaxIdleConns(idle)
	s := &sqliteStore{db: db}
	if err := s.setup(); err != nil {
		db.Close()
		return nil, err
	}
	for _, p := range []struct {
		stmt **sql.Stmt
		sql  string
	}{
		{&s.getWorld, "SELECT id, randomNumber FROM World WHERE id = ?"},
		{&s.setWorld, "UPDATE World SET randomNumber = ? WHERE id = ?"},
		// No ORDER BY: TechEmpower wants the sort done by the application.
		{&s.fetch, "SELECT id, message FROM Fortune"},
	} {
		if *p.stmt, err = db.Prepare(p.sql); err != nil {
			db.Close()
			return nil, err
		}
	}
	return s, nil
}

// setup does what triad's db_setup does (shared/db_schema.c): refuse a newer schema, check
// the file, then create and seed version 1 from ../schema.sql if the file has none. The
// version is read again inside the write transaction, so two processes starting on one new
// file cannot both seed it.
func (s *sqliteStore) setup() error {
	var version int
	if err := s.db.QueryRow("PRAGMA user_version").Scan(&version); err != nil {
		return fmt.Errorf("cannot read it: %w", err)
	}
	if version > schemaVersion {
		return fmt.Errorf("schema version %d is newer than this peer's %d: refusing to touch it",
			version, schemaVersion)
	}
	var verdict string
	if err := s.db.QueryRow("PRAGMA quick_check").Scan(&verdict); err != nil || verdict != "ok" {
		return fmt.Errorf("integrity check failed: %q %v", verdict, err)
	}
	if version == schemaVersion {
		return nil
	}
	schema, err := os.ReadFile(schemaPath())
	if err != nil {
		return err
	}
	tx, err := s.db.Begin()
	if err != nil {
		return err
	}
	defer tx.Rollback() // a no-op once committed
	if err := tx.QueryRow("PRAGMA user_version").Scan(&version); err != nil {
		return err
	}
	if version == 0 {
		if _, err := tx.Exec(string(schema)); err != nil { // the driver runs each statement
			return fmt.Errorf("creating schema version %d failed: %w", schemaVersion, err)
		}
	}
	return tx.Commit()
}

// schemaPath is ../schema.sql next to the binary: the same file every peer reads.
func schemaPath() string {
	exe, err := os.Executable()
	if err != nil {
		return "../schema.sql"
	}
	return filepath.Join(filepath.Dir(exe), "..", "schema.sql")
}

func (s *sqliteStore) World(ctx context.Context, id int32) (int32, error) {
	var got, n int32
	err := s.getWorld.QueryRowContext(ctx, id).Scan(&got, &n)
	return n, err
}

func (s *sqliteStore) Fortunes(ctx context.Context) ([]fortune, error) {
	rows, err := s.fetch.QueryContext(ctx)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []fortune
	for rows.Next() {
		var f fortune
		if err := rows.Scan(&f.ID, &f.Message); err != nil {
			return nil, err
		}
		out = append(out, f)
	}
	return out, rows.Err()
}

func (s *sqliteStore) UpdateWorlds(ctx context.Context, rows []world) error {
	tx, err := s.db.BeginTx(ctx, nil) // BEGIN IMMEDIATE (_txlock): the write lock up front
	if err != nil {
		return err
	}
	defer tx.Rollback()
	set := tx.StmtContext(ctx, s.setWorld)
	for _, w := range rows {
		if _, err := set.ExecContext(ctx, w.RandomNumber, w.ID); err != nil {
			return err
		}
	}
	return tx.Commit()
}

func (s *sqliteStore) Busy(err error) bool {
	var e sqlite3.Error
	return errors.As(err, &e) && (e.Code == sqlite3.ErrBusy || e.Code == sqlite3.ErrLocked)
}

func (s *sqliteStore) Close() error {
	return s.db.Close()
}

// sqliteVersion asks the library the driver links, for --version. Asking through a real
// connection also proves the binary was built with cgo: without it the driver is a stub that
// builds and fails on every call.
func sqliteVersion() (string, error) {
	db, err := sql.Open("sqlite3", ":memory:")
	if err != nil {
		return "", err
	}
	defer db.Close()
	var v string
	err = db.QueryRow("SELECT sqlite_version()").Scan(&v)
	return v, err
}
