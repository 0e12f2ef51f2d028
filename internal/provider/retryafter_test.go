package provider_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"chatgroup.dev/chatgroup-operator/internal/provider"
)

func TestStatusError_retryAfter(t *testing.T) {
	now := time.Date(2026, 11, 23, 20, 0, 0, 0, time.UTC)
	tests := []struct {
		name   string
		status int
		value  string
		want   time.Duration
	}{
		{"a 503 with seconds waits that long", http.StatusServiceUnavailable, "7", 7 * time.Second},
		{"a 429 with seconds waits that long", http.StatusTooManyRequests, " 2 ", 2 * time.Second},
		{"an HTTP date waits until then", http.StatusServiceUnavailable, "Mon, 23 Nov 2026 20:00:05 GMT", 5 * time.Second},
		{"an RFC 850 date is an HTTP date too", http.StatusTooManyRequests, "Monday, 23-Nov-26 20:00:03 GMT", 3 * time.Second},
		{"a date in the past asks for no wait", http.StatusServiceUnavailable, "Mon, 23 Nov 2026 19:59:00 GMT", 0},
		{"a long wait is capped", http.StatusServiceUnavailable, "3600", provider.MaxRetryAfter},
		{"a far date is capped", http.StatusServiceUnavailable, "Tue, 24 Nov 2026 20:00:00 GMT", provider.MaxRetryAfter},
		{"a negative number is ignored", http.StatusServiceUnavailable, "-5", 0},
		{"a fraction is ignored", http.StatusServiceUnavailable, "1.5", 0},
		{"garbage is ignored", http.StatusServiceUnavailable, "soon", 0},
		{"no header asks for no wait", http.StatusServiceUnavailable, "", 0},
		{"other statuses ignore it", http.StatusBadGateway, "7", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp := &http.Response{StatusCode: tt.status, Header: http.Header{}}
			if tt.value != "" {
				resp.Header.Set("Retry-After", tt.value)
			}
			err := provider.StatusError("get_group_info", resp, now)
			if !err.Retryable || err.Code != tt.status {
				t.Errorf("error %+v, want a retryable HTTP %d", err, tt.status)
			}
			if err.RetryAfter != tt.want {
				t.Errorf("RetryAfter = %s, want %s", err.RetryAfter, tt.want)
			}
		})
	}
}

// The wait a failed try asks for replaces a shorter backoff.
func TestRetry_Do_waitsForRetryAfter(t *testing.T) {
	r := provider.Retry{Attempts: 3, Backoff: time.Millisecond, MaxBackoff: time.Millisecond}
	var tries []time.Time
	err := r.Do(context.Background(), func() error {
		tries = append(tries, time.Now())
		if len(tries) == 1 {
			return &provider.APIError{API: "a", Code: 503, Retryable: true, RetryAfter: 300 * time.Millisecond}
		}
		return nil
	})
	if err != nil || len(tries) != 2 {
		t.Fatalf("err %v after %d tries, want success on the second", err, len(tries))
	}
	if gap := tries[1].Sub(tries[0]); gap < 300*time.Millisecond {
		t.Errorf("second try %s after the first, want at least the 300ms asked for", gap)
	}
}
