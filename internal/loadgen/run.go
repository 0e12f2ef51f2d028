package loadgen

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	imv1 "chatgroup.dev/chatgroup-operator/api/v1alpha1"
	"chatgroup.dev/chatgroup-operator/internal/callbacks"
	"chatgroup.dev/chatgroup-operator/internal/provider/providertest"
)

// Target is where the callbacks go.
type Target struct {
	// BaseURLs are the callback servers, e.g. http://127.0.0.1:8082.
	// Deliveries are spread round-robin over them (several replicas).
	BaseURLs []string
	// WebhookPath is the receiver's status.webhookPath.
	WebhookPath string
	// Token and AppID are the receiver's, for providers that sign
	// requests or name the application.
	Token string
	AppID string
}

// Options shape the sending.
type Options struct {
	// Rate is the target deliveries per second; 0 sends as fast as
	// Concurrency allows.
	Rate float64
	// Concurrency is the number of requests in flight at most.
	Concurrency int
	// Timeout bounds one request.
	Timeout time.Duration
	// BadFraction mixes in this many invalid requests per delivery:
	// oversized, malformed, unsigned or misaddressed. Each must be refused.
	BadFraction float64
	// Progress, when set, receives a line every ProgressEvery.
	Progress      io.Writer
	ProgressEvery time.Duration
}

// Report is what happened, per delivery and per event.
type Report struct {
	Deliveries int
	// OK counts deliveries answered 200.
	OK int
	// Replays counts duplicate deliveries refused as replays of an already
	// accepted request (same signature and content), for providers whose
	// server refuses them: expected.
	Replays int
	// Failed counts other non-200 answers by status code.
	Failed map[int]int
	// TransportErrors counts requests without an HTTP answer.
	TransportErrors int
	// BadSent and BadAccepted count invalid requests and those wrongly
	// answered 200.
	BadSent, BadAccepted int
	// Elapsed is the wall time of all phases.
	Elapsed time.Duration
	// Latencies of every answered delivery, sorted.
	Latencies []time.Duration
	// Acked[i] is true when event i was acknowledged at least once.
	Acked []bool
	// Queued[i] is true when event i was answered 503 at least once: the
	// server keeps retrying it in the background, so it must land later.
	Queued []bool
}

// Accepted is the report as it must look once the server has committed
// every event it queued: each event answered 200 or 503 counts as
// acknowledged. Verify it after the background retries have had time.
func (r *Report) Accepted() *Report {
	accepted := *r
	accepted.Acked = make([]bool, len(r.Acked))
	for i := range r.Acked {
		accepted.Acked[i] = r.Acked[i] || r.Queued[i]
	}
	return &accepted
}

// Unanswered counts events that got neither 200 nor 503 on any delivery:
// only transport errors or other refusals.
func (r *Report) Unanswered() int {
	n := 0
	for i := range r.Acked {
		if !r.Acked[i] && !r.Queued[i] {
			n++
		}
	}
	return n
}

// AckedEvents counts distinct acknowledged events.
func (r *Report) AckedEvents() int {
	n := 0
	for _, a := range r.Acked {
		if a {
			n++
		}
	}
	return n
}

// Quantile returns the q-quantile of the reply latency.
func (r *Report) Quantile(q float64) time.Duration {
	if len(r.Latencies) == 0 {
		return 0
	}
	return r.Latencies[min(int(q*float64(len(r.Latencies))), len(r.Latencies)-1)]
}

// Throughput is acknowledged (200) deliveries per second.
func (r *Report) Throughput() float64 {
	return float64(r.OK) / r.Elapsed.Seconds()
}

// Summary is a one-line human summary.
func (r *Report) Summary() string {
	return fmt.Sprintf("%d deliveries (%d events acked) in %.1fs: %.0f/s, latency p50 %s p90 %s p99 %s max %s; replays refused %d, failed %v, transport errors %d, bad requests %d (accepted %d)",
		r.Deliveries, r.AckedEvents(), r.Elapsed.Seconds(), r.Throughput(),
		ms(r.Quantile(.5)), ms(r.Quantile(.9)), ms(r.Quantile(.99)), ms(r.Quantile(1)),
		r.Replays, r.Failed, r.TransportErrors, r.BadSent, r.BadAccepted)
}

func ms(d time.Duration) string { return fmt.Sprintf("%.1fms", float64(d.Microseconds())/1000) }

// Run sends the plan's deliveries, phase by phase, and reports.
func Run(ctx context.Context, plan *Plan, target Target, opts Options) (*Report, error) {
	if len(target.BaseURLs) == 0 {
		return nil, fmt.Errorf("no base URL")
	}
	if opts.Concurrency <= 0 {
		opts.Concurrency = 32
	}
	if opts.Timeout <= 0 {
		opts.Timeout = 10 * time.Second
	}
	sender, err := providertest.New(string(plan.Provider), target.AppID, target.Token)
	if err != nil {
		return nil, err
	}
	r := &runner{plan: plan, target: target, opts: opts, sender: sender,
		report: &Report{Failed: map[int]int{}, Acked: make([]bool, len(plan.Events)), Queued: make([]bool, len(plan.Events))},
		client: &http.Client{Timeout: opts.Timeout, Transport: &http.Transport{
			MaxIdleConnsPerHost: opts.Concurrency, MaxConnsPerHost: opts.Concurrency}},
		sentOnce: make([]atomic.Bool, len(plan.Events)),
	}
	defer r.client.CloseIdleConnections()
	start := time.Now()
	stopProgress := r.progress(start)
	for _, deliveries := range plan.Deliveries {
		if err := r.phase(ctx, deliveries); err != nil {
			stopProgress()
			return nil, err
		}
	}
	stopProgress()
	r.report.Elapsed = time.Since(start)
	slices.Sort(r.report.Latencies)
	return r.report, nil
}

type runner struct {
	plan     *Plan
	target   Target
	opts     Options
	sender   callbacks.Sender
	client   *http.Client
	sentOnce []atomic.Bool // an event was delivered before: a replay is expected
	next     atomic.Uint64 // round-robin over base URLs
	done     atomic.Int64

	mu     sync.Mutex
	report *Report
}

// job is one request to send: a delivery of an event, or a bad request.
type job struct {
	event int // -1 for a bad request
	bad   int
}

func (r *runner) phase(ctx context.Context, deliveries []int) error {
	jobs := make(chan job)
	var wg sync.WaitGroup
	for range r.opts.Concurrency {
		wg.Go(func() {
			for j := range jobs {
				r.send(ctx, j)
			}
		})
	}
	var interval time.Duration
	if r.opts.Rate > 0 {
		interval = time.Duration(float64(time.Second) / r.opts.Rate)
	}
	start := time.Now()
	badDebt := 0.0
	var err error
feed:
	for i, id := range deliveries {
		if interval > 0 {
			if wait := time.Until(start.Add(time.Duration(i) * interval)); wait > 0 {
				time.Sleep(wait)
			}
		}
		for badDebt += r.opts.BadFraction; badDebt >= 1; badDebt-- {
			select {
			case jobs <- job{event: -1, bad: i}:
			case <-ctx.Done():
				err = ctx.Err()
				break feed
			}
		}
		select {
		case jobs <- job{event: id}:
		case <-ctx.Done():
			err = ctx.Err()
			break feed
		}
	}
	close(jobs)
	wg.Wait()
	return err
}

func (r *runner) send(ctx context.Context, j job) {
	var req *http.Request
	var err error
	if j.event < 0 {
		req, err = r.badRequest(ctx, j.bad)
	} else {
		req, err = r.sender.Request(ctx, r.base(), r.target.WebhookPath, r.plan.Events[j.event].Callback)
	}
	if err != nil {
		panic(err) // only for impossible URLs: the plan is generated
	}
	begin := time.Now()
	resp, err := r.client.Do(req)
	var status int
	if err == nil {
		_, _ = io.Copy(io.Discard, resp.Body)
		_ = resp.Body.Close()
		status = resp.StatusCode
	}
	latency := time.Since(begin)
	r.done.Add(1)

	r.mu.Lock()
	defer r.mu.Unlock()
	rep := r.report
	if j.event < 0 {
		rep.BadSent++
		if status == http.StatusOK {
			rep.BadAccepted++
		}
		return
	}
	rep.Deliveries++
	repeat := r.sentOnce[j.event].Swap(true)
	switch {
	case err != nil:
		rep.TransportErrors++
		return
	case status == http.StatusOK:
		rep.OK++
		rep.Acked[j.event] = true
	case status == http.StatusUnauthorized && repeat && r.sender.RefusesReplays():
		rep.Replays++
	case status == http.StatusServiceUnavailable:
		rep.Failed[status]++
		rep.Queued[j.event] = true
	default:
		rep.Failed[status]++
	}
	rep.Latencies = append(rep.Latencies, latency)
}

// base picks the next callback server, round-robin.
func (r *runner) base() string {
	return r.target.BaseURLs[r.next.Add(1)%uint64(len(r.target.BaseURLs))]
}

// oversized is one byte past the server's default body limit.
var oversized = bytes.Repeat([]byte(" "), 4<<20+1)

// badRequest builds the i-th invalid request, cycling through the kinds.
func (r *runner) badRequest(ctx context.Context, i int) (*http.Request, error) {
	cb := r.plan.Events[i%len(r.plan.Events)].Callback
	path := r.target.WebhookPath
	switch i % 4 {
	case 0: // malformed JSON
		cb.Body = cb.Body[:len(cb.Body)/2]
	case 1: // unknown path
		path = imv1.WebhookPathPrefix + "0000"
	case 2: // unsigned, or a wrong payload type when the provider signs nothing
		return r.sender.Invalid(ctx, r.base(), path, cb)
	default: // oversized
		cb.Body = oversized
	}
	return r.sender.Request(ctx, r.base(), path, cb)
}

// progress prints a line every ProgressEvery until stopped.
func (r *runner) progress(start time.Time) (stop func()) {
	if r.opts.Progress == nil {
		return func() {}
	}
	every := r.opts.ProgressEvery
	if every <= 0 {
		every = 5 * time.Second
	}
	total := len(r.plan.Deliveries[0]) + len(r.plan.Deliveries[1])
	done := make(chan struct{})
	go func() {
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				n := r.done.Load()
				fmt.Fprintf(r.opts.Progress, "loadgen: %d/%d requests after %.0fs (%.0f/s)\n",
					n, total, time.Since(start).Seconds(), float64(n)/time.Since(start).Seconds())
			}
		}
	}()
	return func() { close(done) }
}
