package provider

import (
	"net/http"
	"strconv"
	"strings"
	"time"
)

// MaxRetryAfter caps the wait a Retry-After header can ask for: a server
// asking for more is tried again after MaxRetryAfter (the try may fail
// again, using up an attempt).
const MaxRetryAfter = 30 * time.Second

// StatusError is the error of a REST call answered with an HTTP status
// other than 200. It is retryable; a 429 or 503 answer's Retry-After (in
// seconds or as an HTTP date) sets how long to wait before the next try.
func StatusError(api string, resp *http.Response, now time.Time) *APIError {
	err := &APIError{API: api, Code: resp.StatusCode, Message: http.StatusText(resp.StatusCode), Retryable: true}
	if resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusServiceUnavailable {
		err.RetryAfter = ParseRetryAfter(resp.Header.Get("Retry-After"), now)
	}
	return err
}

// ParseRetryAfter returns the wait a Retry-After value asks for at now:
// a number of seconds or an HTTP date, capped at MaxRetryAfter. It returns
// 0 for an empty or invalid value and for a date in the past.
func ParseRetryAfter(value string, now time.Time) time.Duration {
	value = strings.TrimSpace(value)
	if value == "" {
		return 0
	}
	var wait time.Duration
	if secs, err := strconv.ParseUint(value, 10, 32); err == nil {
		wait = time.Duration(secs) * time.Second
	} else if at, err := http.ParseTime(value); err == nil {
		wait = at.Sub(now)
	}
	return min(max(wait, 0), MaxRetryAfter)
}
