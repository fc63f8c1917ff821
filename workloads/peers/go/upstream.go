// upstream.go - /upstream: N concurrent GET /io?ms=M calls to the --upstream service.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"sync"
	"time"
)

// An /io answer is a few bytes; more than this is not an /io answer.
const upstreamBodyMax = 65536

type upstream struct {
	base   string
	client *http.Client
}

// newUpstream uses http.Client with the default Transport, as most Go programs do: keep-alive,
// but at most 2 idle connections kept per host (MaxIdleConnsPerHost), so the other calls of a
// wide fan-out close their connections after use and the next fan-out dials again.
func newUpstream(base string, timeout time.Duration) *upstream {
	return &upstream{base: base, client: &http.Client{Timeout: timeout}}
}

// call makes one call; the error is an *apiError: 504 past the client's timeout, 502 for
// anything else than a 200 with a small body.
func (u *upstream) call(ctx context.Context, ms int) error {
	target := fmt.Sprintf("%s/io?ms=%d", u.base, ms)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
	if err != nil {
		return failure(err, "upstream request failed")
	}
	resp, err := u.client.Do(req)
	if err != nil {
		return failure(err, "upstream request failed")
	}
	defer resp.Body.Close()
	// Read to the end (within the limit): a drained body returns its connection to the pool.
	n, err := io.Copy(io.Discard, io.LimitReader(resp.Body, upstreamBodyMax+1))
	switch {
	case err != nil:
		return failure(err, "upstream request failed")
	case n > upstreamBodyMax:
		return fail(http.StatusBadGateway, "upstream answer too large")
	case resp.StatusCode != http.StatusOK:
		return fail(http.StatusBadGateway, "upstream answered with a status other than 200")
	}
	return nil
}

func failure(err error, msg string) error {
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return fail(http.StatusGatewayTimeout, "upstream timed out")
	}
	return fail(http.StatusBadGateway, msg)
}

// callUpstream runs the N calls in N goroutines, joined by a WaitGroup; the first call that
// failed (in call order) decides the answer once all have returned.
func (a *app) callUpstream(ctx context.Context, q url.Values) (reply, error) {
	calls, err := callsParam(q)
	if err != nil {
		return reply{}, err
	}
	ms, err := msParam(q)
	if err != nil {
		return reply{}, err
	}
	if a.upstream == nil {
		return reply{}, fail(http.StatusServiceUnavailable,
			"no upstream configured: start the server with --upstream http://HOST:PORT")
	}
	errs := make([]error, calls)
	var wg sync.WaitGroup
	for i := range errs {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			errs[i] = a.upstream.call(ctx, ms)
		}(i)
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return reply{}, err
		}
	}
	return jsonReply(fanoutAnswer{calls, ms})
}
