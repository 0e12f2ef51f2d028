package restfake_test

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"chatgroup.dev/chatgroup-operator/internal/provider/restfake"
)

// A held request (the timeout fault) must not keep Close from returning:
// Close releases it through Done, and the held request ends.
func TestServe_closeReleasesHeldRequests(t *testing.T) {
	truth := restfake.NewTruth()
	var srv *restfake.Server
	arrived := make(chan struct{})
	srv = restfake.Serve(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		truth.Count(r.URL.Path)
		close(arrived)
		restfake.WriteFault(w, r, restfake.FaultTimeout, srv.Done())
	}))
	u, err := url.Parse(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	if u.Hostname() != "127.0.0.1" {
		t.Errorf("server listens on %s, want 127.0.0.1", u.Host)
	}
	ended := make(chan struct{})
	go func() {
		defer close(ended)
		// The held request ends with an empty answer or a closed
		// connection; either will do.
		if resp, err := http.Post(srv.URL+"/held", "application/json", strings.NewReader("{}")); err == nil {
			_ = resp.Body.Close()
		}
	}()
	<-arrived
	select {
	case <-srv.Done():
		t.Fatal("Done is closed before Close")
	default:
	}
	closed := make(chan struct{})
	go func() {
		srv.Close()
		srv.Close() // a second Close does nothing
		close(closed)
	}()
	select {
	case <-closed:
	case <-time.After(time.Minute):
		t.Fatal("Close did not return while a request was held")
	}
	<-srv.Done()
	<-ended
	if got := truth.Calls("/held"); got != 1 {
		t.Errorf("calls: %d, want 1", got)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL, nil)
	if resp, err := http.DefaultClient.Do(req); err == nil {
		_ = resp.Body.Close()
		t.Error("the closed server still answers")
	} else if errors.Is(err, context.DeadlineExceeded) {
		t.Error("the closed server still accepts connections")
	}
}
