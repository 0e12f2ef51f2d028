package cloudevent

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"strconv"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	"github.com/cloudevents/sdk-go/v2/protocol"
	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"
)

// Outcome is what became of a delivery.
type Outcome string

const (
	// Delivered means the sink answered 2xx. The caller may move its cursor.
	Delivered Outcome = "Delivered"
	// Retrying means the last attempt failed in a way that may pass (network
	// error, timeout, 429, 5xx, sender busy) and the budget ran out. The
	// caller keeps its cursor and calls Send again after RetryAfter.
	Retrying Outcome = "Retrying"
	// Failed means the event or the sink's answer (another 4xx, a redirect) is
	// permanently wrong; sending the same event again cannot succeed.
	Failed Outcome = "Failed"
)

// Reasons, CamelCase, for status and Events.
const (
	ReasonDelivered     = "Delivered"
	ReasonSinkError     = "SinkError"     // 5xx
	ReasonRateLimited   = "RateLimited"   // 429
	ReasonNetworkError  = "NetworkError"  // no HTTP answer
	ReasonTimeout       = "Timeout"       // an attempt or the caller's context ran out
	ReasonSenderBusy    = "SenderBusy"    // no free slot before the caller's context ended
	ReasonRejected      = "Rejected"      // 4xx other than 429, or 1xx/3xx
	ReasonInvalidEvent  = "InvalidEvent"  // the event cannot be built
	ReasonInvalidTarget = "InvalidTarget" // the sink URL is not usable
)

// Result is the outcome of one Send.
type Result struct {
	// ID is the event's id.
	ID      string
	Outcome Outcome
	// Reason is one of the Reason constants.
	Reason string
	// Message is for humans. It never contains the sink's URL or reply.
	Message string
	// StatusCode is the last HTTP status, or 0 when none was received.
	StatusCode int
	// Attempts counts the HTTP attempts made by this Send.
	Attempts int
	// RetryAfter, for Retrying, is how long to wait before sending again.
	RetryAfter time.Duration
}

// Options tune a Sender. Zero values take the defaults.
type Options struct {
	// MaxConcurrent bounds the deliveries in progress at once (default 16),
	// so slow sinks hold at most that many goroutines and connections.
	MaxConcurrent int
	// AttemptTimeout bounds each HTTP attempt (default 10s).
	AttemptTimeout time.Duration
	// MaxAttempts bounds the attempts of one Send (default 4).
	MaxAttempts int
	// MinBackoff and MaxBackoff bound the exponential, jittered wait
	// between attempts (defaults 500ms and 30s).
	MinBackoff, MaxBackoff time.Duration
	// Transport is the HTTP transport (default: a clone of
	// http.DefaultTransport).
	Transport http.RoundTripper
}

// Sender delivers events. It is safe for concurrent use; one Sender serves
// every trigger, and a slow or dead sink holds at most MaxConcurrent slots
// for at most MaxAttempts × (AttemptTimeout + MaxBackoff), or until the
// caller's context ends, whichever comes first.
type Sender struct {
	opts   Options
	client cloudevents.Client
	slots  chan struct{}
}

// NewSender returns a Sender.
func NewSender(opts Options) (*Sender, error) {
	if opts.MaxConcurrent <= 0 {
		opts.MaxConcurrent = 16
	}
	if opts.AttemptTimeout <= 0 {
		opts.AttemptTimeout = 10 * time.Second
	}
	if opts.MaxAttempts <= 0 {
		opts.MaxAttempts = 4
	}
	if opts.MinBackoff <= 0 {
		opts.MinBackoff = 500 * time.Millisecond
	}
	if opts.MaxBackoff < opts.MinBackoff {
		opts.MaxBackoff = max(30*time.Second, opts.MinBackoff)
	}
	if opts.Transport == nil {
		opts.Transport = http.DefaultTransport.(*http.Transport).Clone()
	}
	hc := http.Client{
		Transport: transport{base: opts.Transport},
		// A redirect would turn the POST into a GET, or send the
		// signed body elsewhere: the sink's URL must be the final one.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	c, err := cloudevents.NewClientHTTP(cehttp.WithClient(hc))
	if err != nil {
		return nil, fmt.Errorf("creating the CloudEvents client: %w", err)
	}
	return &Sender{opts: opts, client: c, slots: make(chan struct{}, opts.MaxConcurrent)}, nil
}

// Send delivers one entry to a target, retrying retryable failures with
// backoff until it is delivered, fails permanently, MaxAttempts is reached
// or ctx ends. It returns when ctx ends, so a reconciler can call it with a
// deadline and never block for longer. Every call sends the same id for the
// same entry, so redelivery is safe.
func (s *Sender) Send(ctx context.Context, t *Target, e *Entry) (res Result) {
	res.ID = e.ID()
	defer func() { deliveriesTotal.WithLabelValues(outcomeLabel(res.Outcome)).Inc() }()

	ev, err := Build(e, t.Extensions)
	if err != nil {
		return failed(res, ReasonInvalidEvent, err.Error())
	}
	if err := ValidateURL(t.URL); err != nil {
		return failed(res, ReasonInvalidTarget, "sink "+err.Error())
	}

	select {
	case s.slots <- struct{}{}:
	case <-ctx.Done():
		res.Outcome, res.Reason, res.RetryAfter = Retrying, ReasonSenderBusy, s.opts.MinBackoff
		res.Message = "every delivery slot is taken by slow sinks"
		return res
	}
	inFlight.Inc()
	defer func() {
		inFlight.Dec()
		<-s.slots
	}()

	for {
		res.Attempts++
		code, reason, permanent := s.attempt(ctx, t, ev)
		res.StatusCode, res.Reason = code, reason
		switch {
		case reason == ReasonDelivered:
			res.Outcome, res.Message = Delivered, "delivered with HTTP "+strconv.Itoa(code)
			return res
		case permanent:
			return failed(res, reason, describe(code, reason)+"; not retried")
		}
		res.Outcome = Retrying
		res.RetryAfter = s.backoff(res.Attempts)
		res.Message = fmt.Sprintf("%s after %d attempts; will retry", describe(code, reason), res.Attempts)
		if res.Attempts >= s.opts.MaxAttempts || ctx.Err() != nil {
			return res
		}
		if deadline, ok := ctx.Deadline(); ok && time.Until(deadline) < res.RetryAfter {
			return res
		}
		timer := time.NewTimer(res.RetryAfter)
		select {
		case <-timer.C:
		case <-ctx.Done():
			timer.Stop()
			return res
		}
	}
}

// attempt makes one HTTP attempt and classifies it.
func (s *Sender) attempt(ctx context.Context, t *Target, ev cloudevents.Event) (code int, reason string, permanent bool) {
	actx, cancel := context.WithTimeout(ctx, s.opts.AttemptTimeout)
	defer cancel()
	start := time.Now()
	result := s.client.Send(withToken(cloudevents.ContextWithTarget(actx, t.URL), t.Token), ev)
	attemptDuration.Observe(time.Since(start).Seconds())

	code, reason, permanent = Classify(result)
	if reason == ReasonNetworkError && actx.Err() != nil {
		reason = ReasonTimeout
	}
	attemptsTotal.WithLabelValues(attemptLabel(code, reason)).Inc()
	return code, reason, permanent
}

// Classify maps the SDK's result of one attempt to an HTTP status (0 when
// none), a reason, and whether the failure is permanent: 2xx is
// delivered; 429 and 5xx are retryable; no answer is a retryable network
// error (or timeout); anything else is permanent.
func Classify(result error) (code int, reason string, permanent bool) {
	var hr *cehttp.Result
	if !protocol.ResultAs(result, &hr) {
		if result == nil || protocol.IsACK(result) {
			// No HTTP status (not expected from the HTTP protocol).
			return 0, ReasonDelivered, false
		}
		var ne net.Error
		if errors.Is(result, context.DeadlineExceeded) || errors.As(result, &ne) && ne.Timeout() {
			return 0, ReasonTimeout, false
		}
		return 0, ReasonNetworkError, false
	}
	code = hr.StatusCode
	switch {
	case code >= 200 && code < 300:
		return code, ReasonDelivered, false
	case code == http.StatusTooManyRequests:
		return code, ReasonRateLimited, false
	case code >= 500:
		return code, ReasonSinkError, false
	default:
		return code, ReasonRejected, true
	}
}

// backoff is the wait after the given attempt: MinBackoff doubled per
// attempt, capped at MaxBackoff, with jitter in its upper half.
func (s *Sender) backoff(attempt int) time.Duration {
	d := s.opts.MaxBackoff
	if attempt < 32 {
		d = min(s.opts.MinBackoff<<(attempt-1), s.opts.MaxBackoff)
	}
	if d <= 1 {
		return d
	}
	return d/2 + rand.N(d/2)
}

func failed(res Result, reason, msg string) Result {
	res.Outcome, res.Reason, res.Message = Failed, reason, msg
	return res
}

func describe(code int, reason string) string {
	switch reason {
	case ReasonNetworkError:
		return "the sink could not be reached"
	case ReasonTimeout:
		return "the sink did not answer in time"
	case ReasonRejected:
		if code >= 300 && code < 400 {
			return "the sink answered HTTP " + strconv.Itoa(code) + " (redirects are not followed)"
		}
	}
	return "the sink answered HTTP " + strconv.Itoa(code)
}

func outcomeLabel(o Outcome) string {
	switch o {
	case Delivered:
		return "delivered"
	case Failed:
		return "failed"
	default:
		return "retrying"
	}
}

func attemptLabel(code int, reason string) string {
	switch {
	case reason == ReasonTimeout:
		return "timeout"
	case code == 0:
		return "network"
	case code == http.StatusTooManyRequests:
		return "429"
	default:
		return strconv.Itoa(code/100) + "xx"
	}
}
