module triad/peers/go

go 1.19

require github.com/mattn/go-sqlite3 v1.14.16

// Built offline: the driver's source is Debian's golang-github-mattn-go-sqlite3-dev. The
// PostgreSQL driver joins the same way: github.com/jackc/pgx/v4 from
// golang-github-jackc-pgx-v4-dev (and its dependencies' Debian packages), under
// /usr/share/gocode/src.
replace github.com/mattn/go-sqlite3 => /usr/share/gocode/src/github.com/mattn/go-sqlite3
