package provider

// The vocabulary a provider's REST client and the resync loop share: a
// group as the provider reports it, the client interface, and API errors.

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"chatgroup.dev/chatgroup-operator/internal/groupstate"
)

// GroupSnapshot is one group as a provider's REST API reports it.
type GroupSnapshot struct {
	// GroupID is the provider's group ID.
	GroupID string
	// Gone is true when the provider says the group does not exist or was
	// dismissed (disbanded).
	Gone bool
	// Owner, Name and Type are the group's profile; Type is normalised as
	// callbacks normalise it, "" when the provider does not say.
	Owner, Name, Type string
	// Members is the full member list with roles, when MembersComplete.
	Members []groupstate.Member
	// MembersComplete is true when Members was read consistently: every
	// page agreed on the member count and the distinct members read add up
	// to it. A list that changed while it was read is not complete, and
	// resync then changes no member of the group (see docs/resync.md).
	MembersComplete bool
	// Err is a failure for this group alone (for example a per-group
	// error code inside a successful batch); the rest of the fields are
	// then unset, and the group is left as it is.
	Err error
}

// RESTClient is a provider's REST API as the resync loop uses it.
type RESTClient interface {
	// Snapshot reads the given groups (at most BatchSize of them): their
	// profile, whether they still exist, and their full member list. It
	// returns one snapshot per requested ID, in order, or an error when
	// the batch as a whole failed after retries.
	Snapshot(ctx context.Context, groupIDs []string) ([]GroupSnapshot, error)
	// BatchSize is the most groups one Snapshot call takes.
	BatchSize() int
	// Discover lists every group ID of the application.
	Discover(ctx context.Context) ([]string, error)
}

// APIError is an error reported by a provider's REST API in its response
// body (or an HTTP status the API answered with).
type APIError struct {
	// API is the endpoint called, for example get_group_info.
	API string
	// Code is the provider's error code, or the HTTP status for
	// transport-level failures.
	Code int
	// Message is the provider's error text.
	Message string
	// Retryable is true for errors that retrying may fix.
	Retryable bool
	// RetryAfter, when not 0, is how long the API asked the client to
	// wait before the next try (the Retry-After of a 429 or 503 answer).
	RetryAfter time.Duration
}

func (e *APIError) Error() string {
	return fmt.Sprintf("%s: error %d: %s", e.API, e.Code, e.Message)
}

// ErrorCode returns a metric label for an error of a REST call: the
// provider's error code, or "transport" for network failures and
// "malformed" for bodies that are not the documented JSON.
func ErrorCode(err error) string {
	var apiErr *APIError
	switch {
	case errors.As(err, &apiErr):
		return fmt.Sprint(apiErr.Code)
	case errors.Is(err, ErrMalformed):
		return "malformed"
	}
	return "transport"
}

// ErrMalformed marks a response body that is not the documented JSON.
var ErrMalformed = errors.New("malformed response")

// Retry is how a REST client retries a failing call.
type Retry struct {
	// Attempts is the number of tries; at least 1.
	Attempts int
	// Backoff is the first wait, doubled after each failure up to
	// MaxBackoff, with up to 50% jitter. An error asking for a longer
	// wait (APIError.RetryAfter) gets that wait instead.
	Backoff, MaxBackoff time.Duration
	// OnError, when set, is told of every failed attempt.
	OnError func(err error)
}

// DefaultRetry is the retry policy of the REST clients: four tries over
// about three seconds, longer when the API asks for it with Retry-After.
var DefaultRetry = Retry{Attempts: 4, Backoff: 250 * time.Millisecond, MaxBackoff: 2 * time.Second}

// Do calls fn until it succeeds, fails with an error that is not
// retryable, the attempts are used up, or ctx ends.
func (r Retry) Do(ctx context.Context, fn func() error) error {
	wait := r.Backoff
	var err error
	for attempt := 1; ; attempt++ {
		if err = fn(); err == nil {
			return nil
		}
		if r.OnError != nil {
			r.OnError(err)
		}
		if !retryable(err) || attempt >= r.Attempts {
			return err
		}
		jittered := wait + time.Duration(rand.Int64N(int64(wait/2)+1))
		select {
		case <-ctx.Done():
			return errors.Join(err, ctx.Err())
		case <-time.After(max(jittered, retryAfter(err))):
		}
		wait = min(2*wait, r.MaxBackoff)
	}
}

// retryAfter returns the wait an error asks for, capped at MaxRetryAfter.
func retryAfter(err error) time.Duration {
	var apiErr *APIError
	if errors.As(err, &apiErr) {
		return min(apiErr.RetryAfter, MaxRetryAfter)
	}
	return 0
}

// retryable reports whether an error of a REST call may go away on retry:
// transport errors, malformed bodies and errors the API marks retryable.
func retryable(err error) bool {
	var apiErr *APIError
	if errors.As(err, &apiErr) {
		return apiErr.Retryable
	}
	return !errors.Is(err, context.Canceled)
}
