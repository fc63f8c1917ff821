// The Go peer of triad: the API of triad's coro model, on Go's own runtime.
//
//	run --host H --port P --db PATH [--procs N] [--db-idle N]
//	    [--upstream http://HOST:PORT] [--upstream-timeout S]
//
// triad's coro (servers/coro/main.c, proc.c) is a C mirror of Go's G-M-P scheduler:
// goroutines on GOMAXPROCS Ps, a netpoller, sysmon, timers per P. This program runs the same
// endpoints on Go itself, written as a Go programmer would write them with the standard
// library, so that a benchmark can set the mirror next to the original. What each endpoint
// exercises here:
//
//	/plaintext, /json  net/http: one goroutine per connection, parked in the netpoller
//	                   (epoll) between requests; the request runs on that goroutine.
//	/db, /queries,     database/sql over mattn/go-sqlite3: every sqlite call is a cgo call,
//	/updates,          so the goroutine's M enters a syscall state; if the call lasts past a
//	/fortunes          sysmon tick (20 us) and other work waits, sysmon hands the P to
//	                   another M. The pool has no cap on open connections (one per goroutine
//	                   that reaches sqlite at once) and keeps --db-idle idle (Go's default,
//	                   2; triad's coro keeps 4 x procs).
//	/cpu               Go code on one P: other goroutines keep running on the other Ps, and
//	                   on this one after sysmon preempts it (10 ms; asynchronously, by signal,
//	                   since Go 1.14).
//	/io                time.Sleep: the goroutine parks on its P's timer heap, holding no M.
//	/fanout            N goroutines that sleep, joined by a sync.WaitGroup.
//	/upstream          N goroutines, each a call through http.Client's default Transport
//	                   (keep-alive, at most 2 idle connections kept per host), parked in the
//	                   netpoller while they wait.
//	/health            the model's name, like triad's /health.
//	--procs N          GOMAXPROCS (default: Go's, the CPUs this process may use).
//
// Where it differs from triad's mirror: Go runs a goroutine per connection where the mirror
// runs one per request (libmicrohttpd owns the sockets there); Go has a garbage collector and
// growable 2 KiB stacks; the HTTP parser is net/http's; the `Server` header is `go`, and there
// is no /stats, /metrics, /items or /cached-queries, no --max-inflight and no request limits
// beyond net/http's own (1 MiB of headers). SIGTERM or SIGINT: http.Server.Shutdown stops
// accepting, closes idle connections and waits for the requests in flight; exit 0 (1 if they
// are not done within 30 s).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log"
	"math/rand"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"runtime"
	"runtime/debug"
	"strconv"
	"syscall"
	"time"
)

const (
	model        = "go"
	drainTimeout = 30 * time.Second // triad's --drain-timeout default
)

type options struct {
	host, db, upstream  string
	port, procs, dbIdle int
	upstreamTimeout     int
	version             bool
}

func parseOptions() options {
	var o options
	flag.StringVar(&o.host, "host", "127.0.0.1", "address to listen on")
	flag.IntVar(&o.port, "port", 8080, "port (0 picks a free one)")
	flag.StringVar(&o.db, "db", "triad.db", "sqlite file, created and seeded if missing")
	flag.IntVar(&o.procs, "procs", 0, "GOMAXPROCS (0: Go's default)")
	flag.IntVar(&o.dbIdle, "db-idle", 2, "idle sqlite connections kept (SetMaxIdleConns)")
	flag.StringVar(&o.upstream, "upstream", "", "the service /upstream calls (http://HOST:PORT)")
	flag.IntVar(&o.upstreamTimeout, "upstream-timeout", 30, "seconds to wait for each upstream call")
	flag.BoolVar(&o.version, "version", false, "print the versions and exit")
	flag.Parse()
	if flag.NArg() > 0 || o.port < 0 || o.port > 65535 || o.procs < 0 || o.dbIdle < 0 ||
		o.upstreamTimeout < 1 {
		flag.Usage()
		os.Exit(2)
	}
	if o.upstream != "" {
		if u, err := url.Parse(o.upstream); err != nil || u.Scheme != "http" || u.Host == "" {
			log.Fatalf("go peer: --upstream %q: not an http://HOST:PORT URL", o.upstream)
		}
	}
	return o
}

// moduleVersion is the version of a dependency built into this binary.
func moduleVersion(path string) string {
	if info, ok := debug.ReadBuildInfo(); ok {
		for _, dep := range info.Deps {
			if dep.Path == path {
				return dep.Version
			}
		}
	}
	return "(unknown version)"
}

func main() {
	log.SetFlags(0) // messages name the peer; no timestamps, as the other peers
	o := parseOptions()
	if o.version {
		v, err := sqliteVersion()
		if err != nil {
			log.Fatalf("go peer: the sqlite driver does not work: %v", err)
		}
		fmt.Printf("go peer: Go %s, database/sql with mattn/go-sqlite3 %s (SQLite %s)\n",
			runtime.Version(), moduleVersion("github.com/mattn/go-sqlite3"), v)
		return
	}
	if o.procs > 0 {
		runtime.GOMAXPROCS(o.procs)
	}
	rand.Seed(time.Now().UnixNano()) // Go 1.19's global source starts from a fixed seed

	db, err := openSQLite(o.db, o.dbIdle)
	if err != nil {
		log.Fatalf("go peer: cannot use database %s: %v", o.db, err)
	}
	var up *upstream
	if o.upstream != "" {
		up = newUpstream(o.upstream, time.Duration(o.upstreamTimeout)*time.Second)
	}
	ln, err := net.Listen("tcp", net.JoinHostPort(o.host, strconv.Itoa(o.port)))
	if err != nil {
		log.Fatalf("go peer: cannot listen: %v", err)
	}
	srv := &http.Server{Handler: newApp(model, db, up)}
	// Signals are caught before the start-up line: from then on a SIGTERM means "drain".
	stop, cancel := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer cancel()
	fmt.Printf("go peer listening on http://%s (model=%s go=%s procs=%d db-idle=%d db=%s)\n",
		ln.Addr(), model, runtime.Version(), runtime.GOMAXPROCS(0), o.dbIdle, o.db)

	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	select {
	case err := <-served: // Serve returns only on failure before Shutdown
		log.Fatalf("go peer: %v", err)
	case <-stop.Done():
	}
	drain, cancelDrain := context.WithTimeout(context.Background(), drainTimeout)
	defer cancelDrain()
	if err := srv.Shutdown(drain); err != nil && !errors.Is(err, http.ErrServerClosed) {
		log.Printf("go peer: requests still in flight after %v: %v", drainTimeout, err)
		os.Exit(1)
	}
	db.Close()
}
