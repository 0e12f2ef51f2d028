package main

import (
	"io"
	"net/http"
	"strings"
	"sync/atomic"

	"k8s.io/client-go/rest"
)

// writeMeter counts the write requests (POST, PUT, PATCH, DELETE) a client
// sends for ChatGroups and their member slices, their body bytes, and the
// bytes of the objects the API server returns: each write returns the
// object it stored, so that is what the API server decoded, validated,
// encoded and stored per write.
type writeMeter struct {
	writes atomic.Int64
	bytes  atomic.Int64
	stored atomic.Int64
}

// wrap returns a copy of cfg whose requests pass through the meter.
func (m *writeMeter) wrap(cfg *rest.Config) *rest.Config {
	c := rest.CopyConfig(cfg)
	c.QPS, c.Burst = 2000, 4000 // main.go's defaults
	c.Wrap(func(rt http.RoundTripper) http.RoundTripper {
		return roundTripFunc(func(req *http.Request) (*http.Response, error) {
			if req.Method == http.MethodGet || !strings.Contains(req.URL.Path, "/chatgroup") {
				return rt.RoundTrip(req)
			}
			m.writes.Add(1)
			m.bytes.Add(max(req.ContentLength, 0))
			resp, err := rt.RoundTrip(req)
			if err == nil {
				resp.Body = &countingBody{ReadCloser: resp.Body, n: &m.stored}
			}
			return resp, err
		})
	})
	return c
}

// meterReading is what a writeMeter counted up to a moment.
type meterReading struct{ writes, bytes, stored int64 }

// snapshot returns what the meter counted so far.
func (m *writeMeter) snapshot() meterReading {
	return meterReading{m.writes.Load(), m.bytes.Load(), m.stored.Load()}
}

// sub returns the counts between two readings.
func (r meterReading) sub(before meterReading) meterReading {
	return meterReading{r.writes - before.writes, r.bytes - before.bytes, r.stored - before.stored}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(req *http.Request) (*http.Response, error) { return f(req) }

// countingBody counts the bytes read from a response body (after any
// transparent decompression).
type countingBody struct {
	io.ReadCloser
	n *atomic.Int64
}

func (b *countingBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	b.n.Add(int64(n))
	return n, err
}
