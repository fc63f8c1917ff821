// handlers.go - the endpoints, answering the same bytes as triad's shared/ep_*.c: routing, the
// parameter rules (shared/param.c), the error messages (req_reply_error) and the fortunes page
// (shared/render.c). main.go's opening comment says what each endpoint exercises in Go.
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"math/rand"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

const (
	countMax      = 500
	worldRows     = 10000
	iterationsMax = 10000000
	msMax         = 10000
	callsMax      = 1000
	jsonType      = "application/json"
)

// apiError is an answer other than 200, with triad's message.
type apiError struct {
	status int
	msg    string
}

func (e *apiError) Error() string { return e.msg }

func fail(status int, msg string) error { return &apiError{status, msg} }

// reply is a 200's body and its content type.
type reply struct {
	ctype string
	body  []byte
}

func jsonReply(v any) (reply, error) {
	b, err := json.Marshal(v) // compact, struct fields in declaration order
	return reply{jsonType, b}, err
}

type endpoint func(ctx context.Context, q url.Values) (reply, error)

type app struct {
	model    string
	db       store
	upstream *upstream // nil without --upstream
	routes   map[string]endpoint
}

func newApp(model string, db store, up *upstream) *app {
	a := &app{model: model, db: db, upstream: up}
	a.routes = map[string]endpoint{
		"/plaintext": func(context.Context, url.Values) (reply, error) {
			return reply{"text/plain", []byte("Hello, World!")}, nil
		},
		"/json": func(context.Context, url.Values) (reply, error) {
			return jsonReply(struct {
				Message string `json:"message"`
			}{"Hello, World!"})
		},
		"/db":       a.dbOne,
		"/queries":  a.queries,
		"/updates":  a.updates,
		"/fortunes": a.fortunes,
		"/cpu":      cpu,
		"/io":       ioWait,
		"/fanout":   fanout,
		"/upstream": a.callUpstream,
		"/health":   a.health,
	}
	return a
}

// ServeHTTP routes by exact path (net/http runs it on the connection's goroutine).
func (a *app) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	ep, ok := a.routes[r.URL.Path]
	var rep reply
	var err error
	switch {
	case !ok:
		err = fail(http.StatusNotFound, "no such resource")
	case r.Method != http.MethodGet && r.Method != http.MethodHead:
		w.Header().Set("Allow", "GET, HEAD")
		err = fail(http.StatusMethodNotAllowed, "method not allowed for this resource")
	case hasBody(r):
		err = fail(http.StatusBadRequest, "this request takes no body")
	default:
		rep, err = ep(r.Context(), r.URL.Query())
	}
	if err != nil {
		a.writeError(w, err)
		return
	}
	write(w, http.StatusOK, rep.ctype, rep.body)
}

// hasBody reads a body that was announced (and drops it) to see whether a byte came: no
// route takes one, and triad's rule is "a body on a route that takes none is a 400".
func hasBody(r *http.Request) bool {
	if r.ContentLength == 0 {
		return false // neither Content-Length nor chunked
	}
	n, _ := io.Copy(io.Discard, r.Body)
	return n > 0
}

func write(w http.ResponseWriter, status int, ctype string, body []byte) {
	h := w.Header()
	h.Set("Server", "go")
	h.Set("Content-Type", ctype)
	h.Set("Content-Length", strconv.Itoa(len(body))) // net/http drops the body of a HEAD
	w.WriteHeader(status)
	w.Write(body)
}

func (a *app) writeError(w http.ResponseWriter, err error) {
	e, ok := err.(*apiError)
	switch {
	case ok:
	case a.db.Busy(err): // triad's req_reply_db_error
		e = &apiError{http.StatusServiceUnavailable, "database busy"}
	default:
		log.Printf("go peer: %v", err)
		e = &apiError{http.StatusServiceUnavailable, "database unavailable"}
	}
	if e.status == http.StatusServiceUnavailable {
		w.Header().Set("Retry-After", "1")
	}
	body, _ := json.Marshal(struct {
		Error string `json:"error"`
	}{e.msg})
	write(w, e.status, jsonType, body)
}

// ---- parameters (shared/param.c) ----------------------------------------------------------

func digitsOnly(s string) bool {
	return s != "" && strings.Trim(s, "0123456789") == ""
}

// countParam is TechEmpower's rule: missing, empty, not an integer or below 1 gives 1; above
// 500 gives 500.
func countParam(s string) int {
	if !digitsOnly(s) {
		return 1
	}
	n, err := strconv.ParseUint(s, 10, 64)
	switch {
	case err != nil || n > countMax: // err: too large for 64 bits
		return countMax
	case n < 1:
		return 1
	}
	return int(n)
}

// intParam is plain decimal digits within min..max, or a 400 with msg.
func intParam(s string, min, max uint64, msg string) (int, error) {
	n, err := strconv.ParseUint(s, 10, 64)
	if !digitsOnly(s) || err != nil || n < min || n > max {
		return 0, fail(http.StatusBadRequest, msg)
	}
	return int(n), nil
}

func msParam(q url.Values) (int, error) {
	return intParam(q.Get("ms"), 0, msMax, "ms must be an integer in 0..10000")
}

func callsParam(q url.Values) (int, error) {
	return intParam(q.Get("calls"), 1, callsMax, "calls must be an integer in 1..1000")
}

// ---- the TechEmpower endpoints ------------------------------------------------------------

func randomID() int32 { return int32(rand.Intn(worldRows)) + 1 }

// newNumber is a randomNumber that differs from the old one, as triad's /updates picks it.
func newNumber(old int32) int32 {
	v := int32(rand.Intn(worldRows-1)) + 1
	if v >= old {
		v++
	}
	return v
}

// loadWorlds makes one SELECT per row, one after another on this goroutine: TechEmpower
// forbids batching the reads.
func (a *app) loadWorlds(ctx context.Context, n int) ([]world, error) {
	rows := make([]world, n)
	for i := range rows {
		rows[i].ID = randomID()
		rn, err := a.db.World(ctx, rows[i].ID)
		if err != nil {
			return nil, err
		}
		rows[i].RandomNumber = rn
	}
	return rows, nil
}

func (a *app) dbOne(ctx context.Context, _ url.Values) (reply, error) {
	rows, err := a.loadWorlds(ctx, 1)
	if err != nil {
		return reply{}, err
	}
	return jsonReply(rows[0])
}

func (a *app) queries(ctx context.Context, q url.Values) (reply, error) {
	rows, err := a.loadWorlds(ctx, countParam(q.Get("queries")))
	if err != nil {
		return reply{}, err
	}
	return jsonReply(rows)
}

func (a *app) updates(ctx context.Context, q url.Values) (reply, error) {
	rows, err := a.loadWorlds(ctx, countParam(q.Get("queries")))
	if err != nil {
		return reply{}, err
	}
	for i := range rows {
		rows[i].RandomNumber = newNumber(rows[i].RandomNumber)
	}
	if err := a.db.UpdateWorlds(ctx, rows); err != nil { // committed before the answer
		return reply{}, err
	}
	return jsonReply(rows)
}

// escapeHTML escapes the five characters triad's page escapes, with the same entities
// (html.EscapeString writes &#34; for a double quote where triad writes &quot;).
var escapeHTML = strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;", `"`, "&quot;",
	"'", "&#39;")

func (a *app) fortunes(ctx context.Context, _ url.Values) (reply, error) {
	rows, err := a.db.Fortunes(ctx)
	if err != nil {
		return reply{}, err
	}
	rows = append(rows, fortune{0, "Additional fortune added at request time."})
	// Go compares strings byte by byte: UTF-8 order, as triad's memcmp.
	sort.Slice(rows, func(i, j int) bool { return rows[i].Message < rows[j].Message })
	var b strings.Builder
	b.WriteString("<!DOCTYPE html><html><head><title>Fortunes</title></head><body><table>" +
		"<tr><th>id</th><th>message</th></tr>")
	for _, f := range rows {
		fmt.Fprintf(&b, "<tr><td>%d</td><td>%s</td></tr>", f.ID, escapeHTML.Replace(f.Message))
	}
	b.WriteString("</table></body></html>")
	return reply{"text/html; charset=utf-8", []byte(b.String())}, nil
}

// ---- /cpu, /io, /fanout -----------------------------------------------------------------

// cpuDigest is shared/cpu.h's digest; uint64 arithmetic wraps as C's does.
func cpuDigest(iterations uint64) string {
	x := uint64(0x243F6A8885A308D3)
	for i := uint64(0); i < iterations; i++ {
		x += i
		for r := 0; r < 64; r++ {
			x = (x ^ (x >> 27)) * 0x94D049BB133111EB
		}
	}
	return fmt.Sprintf("%016x", x)
}

func cpu(_ context.Context, q url.Values) (reply, error) {
	n, err := intParam(q.Get("iterations"), 0, iterationsMax,
		"iterations must be an integer in 0..10000000")
	if err != nil {
		return reply{}, err
	}
	return jsonReply(struct {
		Iterations int    `json:"iterations"`
		Digest     string `json:"digest"`
	}{n, cpuDigest(uint64(n))})
}

// ioWait parks this goroutine on the P's timer heap: no thread is held while it waits.
func ioWait(_ context.Context, q url.Values) (reply, error) {
	ms, err := msParam(q)
	if err != nil {
		return reply{}, err
	}
	time.Sleep(time.Duration(ms) * time.Millisecond)
	return jsonReply(struct {
		WaitedMs int `json:"waited_ms"`
	}{ms})
}

type fanoutAnswer struct {
	Calls int `json:"calls"`
	Ms    int `json:"ms"`
}

// fanout runs N goroutines that sleep M ms, joined by a WaitGroup.
func fanout(_ context.Context, q url.Values) (reply, error) {
	calls, err := callsParam(q)
	if err != nil {
		return reply{}, err
	}
	ms, err := msParam(q)
	if err != nil {
		return reply{}, err
	}
	var wg sync.WaitGroup
	for i := 0; i < calls; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			time.Sleep(time.Duration(ms) * time.Millisecond)
		}()
	}
	wg.Wait()
	return jsonReply(fanoutAnswer{calls, ms})
}

func (a *app) health(context.Context, url.Values) (reply, error) {
	return jsonReply(struct {
		Status string `json:"status"`
		Model  string `json:"model"`
	}{"ok", a.model})
}
