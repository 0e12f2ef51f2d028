// Package cloudeventtest runs the CloudEvents SDK's own HTTP receiver as a
// sink for tests, so that what the operator sends is checked by the
// reference implementation of the protocol, not by a hand-written parser.
package cloudeventtest

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"testing"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/cloudevents/sdk-go/v2/protocol"
	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"
)

// Received is one event the sink took, with the raw request it came in.
type Received struct {
	Event  event.Event
	Header http.Header
	Body   []byte
}

// Sink starts the SDK's receiver on 127.0.0.1, answering 202, and hands
// every event to the returned channel (16 buffered). It stops when the
// test ends.
func Sink(t testing.TB) (url string, got <-chan Received) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ch := make(chan Received, 16)
	raws := make(chan Received, 16)
	keepRaw := func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			body, _ := io.ReadAll(r.Body)
			raws <- Received{Header: r.Header.Clone(), Body: body}
			r.Body = io.NopCloser(bytes.NewReader(body))
			next.ServeHTTP(w, r)
		})
	}
	p, err := cehttp.New(cehttp.WithListener(l), cehttp.WithMiddleware(keepRaw))
	if err != nil {
		t.Fatal(err)
	}
	c, err := cloudevents.NewClient(p)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := c.StartReceiver(ctx, func(ev event.Event) protocol.Result {
			r := <-raws
			r.Event = ev
			ch <- r
			return cehttp.NewResult(http.StatusAccepted, "")
		}); err != nil {
			t.Errorf("receiver: %v", err)
		}
	}()
	t.Cleanup(func() { cancel(); <-done })
	return "http://" + l.Addr().String() + "/", ch
}
