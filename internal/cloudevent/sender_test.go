package cloudevent

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/google/go-github/v64/github"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"chatgroup.dev/chatgroup-operator/internal/cloudevent/cloudeventtest"
)

// testToken is a 32-byte token, as a trigger's Secret would hold.
var testToken = []byte("0123456789abcdef0123456789abcdef")

// newTestSender returns a Sender with short waits between attempts;
// correctness does not depend on them.
func newTestSender(t *testing.T, opts Options) *Sender {
	t.Helper()
	if opts.MinBackoff == 0 {
		opts.MinBackoff, opts.MaxBackoff = time.Millisecond, 5*time.Millisecond
	}
	s, err := NewSender(opts)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestSendToSDKReceiver(t *testing.T) {
	url, got := cloudeventtest.Sink(t)
	s := newTestSender(t, Options{})
	e := testEntry(7)

	res := s.Send(context.Background(), &Target{URL: url, Token: testToken, Extensions: map[string]string{"tenant": "a"}}, e)
	if res.Outcome != Delivered || res.Reason != ReasonDelivered || res.StatusCode != http.StatusAccepted || res.Attempts != 1 {
		t.Fatalf("result = %+v, want delivered with 202 in one attempt", res)
	}
	r := <-got
	ev := r.Event
	for name, c := range map[string][2]string{
		"specversion":     {ev.SpecVersion(), "1.0"},
		"id":              {ev.ID(), string(e.UID) + "-7"},
		"source":          {ev.Source(), "/apis/im.chatgroup.dev/v1alpha1/namespaces/team-a/chatgroups/tencent-tgs-1-0123456789abcdef"},
		"type":            {ev.Type(), "dev.chatgroup.v1alpha1.MembersJoined"},
		"subject":         {ev.Subject(), e.GroupID},
		"datacontenttype": {ev.DataContentType(), "application/json"},
		"data":            {string(ev.Data()), string(e.Data)},
		"result id":       {res.ID, ev.ID()},
	} {
		if c[0] != c[1] {
			t.Errorf("%s = %q, want %q", name, c[0], c[1])
		}
	}
	if !ev.Time().Equal(e.Time) {
		t.Errorf("time = %v, want %v", ev.Time(), e.Time)
	}
	if v := ev.Extensions()["tenant"]; v != "a" {
		t.Errorf("extension tenant = %v, want a", v)
	}

	// Binary mode: attributes in ce- headers, the data alone as the body.
	if ct := r.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type = %q, want application/json (binary mode)", ct)
	}
	if id := r.Header.Get("Ce-Id"); id != ev.ID() {
		t.Errorf("ce-id header = %q, want %q", id, ev.ID())
	}
	if !bytes.Equal(r.Body, e.Data) {
		t.Errorf("body = %s, want the data %s", r.Body, e.Data)
	}

	// The signature covers the exact body bytes, recomputed here and
	// checked with the function Flux's generic-hmac Receiver calls.
	mac := hmac.New(sha256.New, testToken)
	mac.Write(r.Body)
	want := "sha256=" + hex.EncodeToString(mac.Sum(nil))
	sig := r.Header.Get("X-Signature")
	if sig != want {
		t.Errorf("X-Signature = %q, want %q", sig, want)
	}
	if err := github.ValidateSignature(sig, r.Body, testToken); err != nil {
		t.Errorf("Flux's check refuses the signature: %v", err)
	}
	if err := github.ValidateSignature(sig, r.Body, []byte("another token, 32 bytes long....")); err == nil {
		t.Error("Flux's check accepts the signature with another token")
	}

	// Without a token, nothing is signed.
	if res := s.Send(context.Background(), &Target{URL: url}, testEntry(8)); res.Outcome != Delivered {
		t.Fatalf("unsigned result = %+v", res)
	}
	if r := <-got; r.Header.Get("X-Signature") != "" || r.Event.ID() != string(e.UID)+"-8" {
		t.Errorf("unsigned delivery: X-Signature %q, id %q", r.Header.Get("X-Signature"), r.Event.ID())
	}
}

// flakySink answers the first fails requests with code, then 200, and
// records every request's id, signature and answer.
type flakySink struct {
	mu       sync.Mutex
	code     int
	fails    int
	ids      []string
	sigs     []string
	acked    map[string]int
	requests int
}

func (f *flakySink) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	f.mu.Lock()
	defer f.mu.Unlock()
	f.requests++
	id := r.Header.Get("Ce-Id")
	f.ids = append(f.ids, id)
	f.sigs = append(f.sigs, r.Header.Get("X-Signature"))
	if err := github.ValidateSignature(r.Header.Get("X-Signature"), body, testToken); err != nil {
		http.Error(w, "bad signature", http.StatusUnauthorized)
		return
	}
	if f.requests <= f.fails {
		http.Error(w, "not now", f.code)
		return
	}
	f.acked[id]++
	w.WriteHeader(http.StatusOK)
}

func TestSendRetriesUntilDelivered(t *testing.T) {
	for _, code := range []int{http.StatusServiceUnavailable, http.StatusTooManyRequests, http.StatusBadGateway} {
		t.Run(fmt.Sprint(code), func(t *testing.T) {
			sink := &flakySink{code: code, fails: 2, acked: map[string]int{}}
			srv := httptest.NewServer(sink)
			defer srv.Close()
			s := newTestSender(t, Options{MaxAttempts: 5})
			before := testutil.ToFloat64(deliveriesTotal.WithLabelValues("delivered"))

			res := s.Send(context.Background(), &Target{URL: srv.URL, Token: testToken}, testEntry(3))
			if res.Outcome != Delivered || res.Attempts != 3 || res.StatusCode != http.StatusOK {
				t.Fatalf("result = %+v, want delivered on the third attempt", res)
			}
			sink.mu.Lock()
			defer sink.mu.Unlock()
			if sink.requests != 3 {
				t.Errorf("the sink saw %d requests, want 3", sink.requests)
			}
			for i, id := range sink.ids {
				if id != res.ID || sink.sigs[i] != sink.sigs[0] {
					t.Errorf("attempt %d: id %q signature %q; want the first attempt's %q %q", i+1, id, sink.sigs[i], res.ID, sink.sigs[0])
				}
			}
			if len(sink.acked) != 1 || sink.acked[res.ID] != 1 {
				t.Errorf("acknowledged deliveries = %v, want exactly one for %s", sink.acked, res.ID)
			}
			if after := testutil.ToFloat64(deliveriesTotal.WithLabelValues("delivered")); after != before+1 {
				t.Errorf("delivered counter went from %v to %v, want +1", before, after)
			}
		})
	}
}

func TestSendRetryableUntilBudget(t *testing.T) {
	sink := &flakySink{code: http.StatusServiceUnavailable, fails: 1000, acked: map[string]int{}}
	srv := httptest.NewServer(sink)
	defer srv.Close()
	s := newTestSender(t, Options{MaxAttempts: 3})

	res := s.Send(context.Background(), &Target{URL: srv.URL, Token: testToken}, testEntry(1))
	if res.Outcome != Retrying || res.Reason != ReasonSinkError || res.StatusCode != http.StatusServiceUnavailable || res.Attempts != 3 || res.RetryAfter <= 0 {
		t.Fatalf("result = %+v, want retrying after 3 attempts with HTTP 503 and a wait", res)
	}
	sink.mu.Lock()
	defer sink.mu.Unlock()
	if sink.requests != 3 || len(sink.acked) != 0 {
		t.Errorf("the sink saw %d requests and acknowledged %v; want 3 and none", sink.requests, sink.acked)
	}
}

func TestSendPermanentFailures(t *testing.T) {
	for name, tc := range map[string]struct {
		handler http.HandlerFunc
		code    int
	}{
		"400": {handler: func(w http.ResponseWriter, _ *http.Request) { http.Error(w, "no", http.StatusBadRequest) }, code: http.StatusBadRequest},
		"401": {handler: func(w http.ResponseWriter, _ *http.Request) { http.Error(w, "no", http.StatusUnauthorized) }, code: http.StatusUnauthorized},
		"404": {handler: func(w http.ResponseWriter, _ *http.Request) { http.NotFound(w, nil) }, code: http.StatusNotFound},
		"redirect": {handler: func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/moved" {
				t.Error("the redirect was followed")
			}
			http.Redirect(w, r, "/moved", http.StatusTemporaryRedirect)
		}, code: http.StatusTemporaryRedirect},
	} {
		t.Run(name, func(t *testing.T) {
			var mu sync.Mutex
			requests := 0
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				mu.Lock()
				requests++
				mu.Unlock()
				tc.handler(w, r)
			}))
			defer srv.Close()
			s := newTestSender(t, Options{MaxAttempts: 5})
			before := testutil.ToFloat64(deliveriesTotal.WithLabelValues("failed"))

			res := s.Send(context.Background(), &Target{URL: srv.URL + "/hook", Token: testToken}, testEntry(1))
			if res.Outcome != Failed || res.Reason != ReasonRejected || res.StatusCode != tc.code || res.Attempts != 1 {
				t.Fatalf("result = %+v, want failed permanently with %d after one attempt", res, tc.code)
			}
			mu.Lock()
			defer mu.Unlock()
			if requests != 1 {
				t.Errorf("the sink saw %d requests, want 1 (no retry)", requests)
			}
			if after := testutil.ToFloat64(deliveriesTotal.WithLabelValues("failed")); after != before+1 {
				t.Errorf("failed counter went from %v to %v, want +1", before, after)
			}
		})
	}
}

func TestSendInvalidInputsSendNothing(t *testing.T) {
	s := newTestSender(t, Options{})
	bad := testEntry(1)
	bad.Data = []byte("not json")
	if res := s.Send(context.Background(), &Target{URL: "http://127.0.0.1:1/"}, bad); res.Outcome != Failed || res.Reason != ReasonInvalidEvent || res.Attempts != 0 {
		t.Errorf("invalid event: %+v", res)
	}
	if res := s.Send(context.Background(), &Target{URL: "unix:///run/sink"}, testEntry(1)); res.Outcome != Failed || res.Reason != ReasonInvalidTarget || res.Attempts != 0 {
		t.Errorf("invalid target: %+v", res)
	}
}

// closedPort returns a loopback address nothing listens on.
func closedPort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	return addr
}

func TestSendDeadSink(t *testing.T) {
	s := newTestSender(t, Options{MaxAttempts: 3})
	res := s.Send(context.Background(), &Target{URL: "http://" + closedPort(t) + "/"}, testEntry(1))
	if res.Outcome != Retrying || res.Reason != ReasonNetworkError || res.StatusCode != 0 || res.Attempts != 3 {
		t.Fatalf("result = %+v, want retrying with a network error after 3 attempts", res)
	}
}

// hangingSink accepts requests and never answers until the client gives up
// or the test releases it. It announces each request on arrived.
type hangingSink struct {
	arrived chan string
	release chan struct{}
}

func newHangingSink(t *testing.T) (*hangingSink, string) {
	t.Helper()
	h := &hangingSink{arrived: make(chan string, 16), release: make(chan struct{})}
	srv := httptest.NewServer(h)
	t.Cleanup(func() {
		close(h.release)
		srv.Close()
	})
	return h, srv.URL
}

func (h *hangingSink) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h.arrived <- r.Header.Get("Ce-Id")
	select {
	case <-r.Context().Done():
	case <-h.release:
	}
	w.WriteHeader(http.StatusServiceUnavailable)
}

func TestSendHangingSinkTimesOut(t *testing.T) {
	h, url := newHangingSink(t)
	s := newTestSender(t, Options{MaxAttempts: 2, AttemptTimeout: 100 * time.Millisecond})

	res := s.Send(context.Background(), &Target{URL: url}, testEntry(1))
	if res.Outcome != Retrying || res.Reason != ReasonTimeout || res.Attempts != 2 {
		t.Fatalf("result = %+v, want retrying after two timed-out attempts", res)
	}
	for i := range 2 {
		if id := <-h.arrived; id != res.ID {
			t.Errorf("attempt %d carried id %q, want %q", i+1, id, res.ID)
		}
	}
}

func TestSendStopsAtCallerDeadline(t *testing.T) {
	h, url := newHangingSink(t)
	// Attempts alone would take for ever: the caller's context bounds Send.
	s := newTestSender(t, Options{MaxAttempts: 1000, AttemptTimeout: time.Hour})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan Result)
	go func() { done <- s.Send(ctx, &Target{URL: url}, testEntry(1)) }()
	<-h.arrived
	cancel()
	res := <-done
	if res.Outcome != Retrying || res.Reason != ReasonTimeout || res.Attempts != 1 {
		t.Fatalf("result = %+v, want retrying after the one attempt the caller's context cut short", res)
	}
}

// TestHangingSinkBlocksNobody: while one delivery hangs on a dead sink,
// another delivery through the same Sender completes, and a caller whose
// context ends while every slot is taken gets SenderBusy instead of waiting.
func TestHangingSinkBlocksNobody(t *testing.T) {
	h, hangURL := newHangingSink(t)
	fastURL, got := cloudeventtest.Sink(t)
	s := newTestSender(t, Options{MaxConcurrent: 2, MaxAttempts: 3, AttemptTimeout: time.Hour})

	hangCtx, cancelHang := context.WithCancel(context.Background())
	hung := make(chan Result, 1)
	go func() { hung <- s.Send(hangCtx, &Target{URL: hangURL}, testEntry(1)) }()
	<-h.arrived // the hanging delivery holds a slot and waits for an answer

	res := s.Send(context.Background(), &Target{URL: fastURL, Token: testToken}, testEntry(2))
	if res.Outcome != Delivered {
		t.Fatalf("delivery beside a hanging one = %+v, want delivered", res)
	}
	if r := <-got; r.Event.ID() != res.ID {
		t.Errorf("the fast sink got %q, want %q", r.Event.ID(), res.ID)
	}
	select {
	case r := <-hung:
		t.Fatalf("the hanging delivery ended before it was cancelled: %+v", r)
	default:
	}

	// Take the second slot too; a caller that cannot wait gets SenderBusy.
	hangCtx2, cancelHang2 := context.WithCancel(context.Background())
	hung2 := make(chan Result, 1)
	go func() { hung2 <- s.Send(hangCtx2, &Target{URL: hangURL}, testEntry(3)) }()
	<-h.arrived
	expired, cancelExpired := context.WithCancel(context.Background())
	cancelExpired()
	if res := s.Send(expired, &Target{URL: fastURL}, testEntry(4)); res.Outcome != Retrying || res.Reason != ReasonSenderBusy || res.Attempts != 0 {
		t.Errorf("with every slot taken: %+v, want retrying with SenderBusy and no attempt", res)
	}

	cancelHang()
	cancelHang2()
	for _, ch := range []chan Result{hung, hung2} {
		if r := <-ch; r.Outcome != Retrying || r.Attempts != 1 {
			t.Errorf("cancelled hanging delivery = %+v, want retrying after one attempt", r)
		}
	}
	// The slots are free again.
	if res := s.Send(context.Background(), &Target{URL: fastURL}, testEntry(5)); res.Outcome != Delivered {
		t.Errorf("after the hanging deliveries ended: %+v", res)
	}
	<-got
}
