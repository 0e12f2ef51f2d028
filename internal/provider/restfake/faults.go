package restfake

import (
	"io"
	"net/http"
	"strconv"
	"testing"
	"time"
)

// Faults that ask the client to come back later, answered the same way by
// every provider's fake.
const (
	// FaultRetryAfter answers HTTP 503 with Retry-After: RetryAfterSeconds.
	FaultRetryAfter Fault = "retry-after"
	// FaultTooManyRequests answers HTTP 429 with Retry-After:
	// RetryAfterSeconds.
	FaultTooManyRequests Fault = "too-many-requests"
	// FaultRetryAfterDate answers HTTP 503 with Retry-After as an HTTP
	// date at least RetryAfterSeconds ahead.
	FaultRetryAfterDate Fault = "retry-after-date"
)

// RetryAfterSeconds is the Retry-After the retry-after faults ask for.
const RetryAfterSeconds = 1

// WriteFault serves the faults that look the same on every provider's
// API: the HTTP-level ones (Fault5xx, FaultTimeout and the retry-after
// faults). It reports false for the faults a fake renders in its own
// response shape (FaultMalformed, FaultUnknownCode). A timeout holds the
// request until the client hangs up or done is closed.
func WriteFault(w http.ResponseWriter, r *http.Request, fault Fault, done <-chan struct{}) bool {
	switch fault {
	case Fault5xx:
		http.Error(w, "bad gateway", http.StatusBadGateway)
	case FaultRetryAfter:
		w.Header().Set("Retry-After", strconv.Itoa(RetryAfterSeconds))
		http.Error(w, "busy", http.StatusServiceUnavailable)
	case FaultTooManyRequests:
		w.Header().Set("Retry-After", strconv.Itoa(RetryAfterSeconds))
		http.Error(w, "too many requests", http.StatusTooManyRequests)
	case FaultRetryAfterDate:
		// An HTTP date has whole seconds: one more keeps it ahead.
		at := time.Now().Truncate(time.Second).Add((RetryAfterSeconds + 1) * time.Second)
		w.Header().Set("Retry-After", at.UTC().Format(http.TimeFormat))
		http.Error(w, "busy", http.StatusServiceUnavailable)
	case FaultTimeout:
		// The server notices the client hanging up only once the body
		// is read.
		_, _ = io.Copy(io.Discard, r.Body)
		select {
		case <-r.Context().Done():
		case <-done:
		}
	default:
		return false
	}
	return true
}

// RetryAfterFaults are the faults that ask the client to wait.
var RetryAfterFaults = []Fault{FaultRetryAfter, FaultTooManyRequests, FaultRetryAfterDate}

// CheckRetryAfter checks a REST client against each of RetryAfterFaults:
// call starts a fake, injects the fault into its next answer, makes one
// call that must succeed, and returns the fake's truth and the API the
// fault was served to. The fake must have seen that API exactly twice, at
// least RetryAfterSeconds apart, though the client's own backoff may be
// milliseconds.
func CheckRetryAfter(t *testing.T, call func(t *testing.T, fault Fault) (*Truth, string)) {
	t.Helper()
	for _, fault := range RetryAfterFaults {
		t.Run(string(fault), func(t *testing.T) {
			truth, api := call(t, fault)
			times := truth.Times(api)
			if len(times) != 2 {
				t.Fatalf("%d calls of %s, want 2", len(times), api)
			}
			if gap := times[1].Sub(times[0]); gap < RetryAfterSeconds*time.Second {
				t.Errorf("tried again after %s, want at least the Retry-After of %ds", gap, RetryAfterSeconds)
			}
		})
	}
}
