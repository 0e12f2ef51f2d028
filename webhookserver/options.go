package webhookserver

import (
	"errors"
	"flag"
	"fmt"
	"net/netip"
	"strings"
	"time"

	imv1 "chatgroup.dev/chatgroup-operator/api/v1alpha1"
	"chatgroup.dev/chatgroup-operator/internal/clientaddr"
	"chatgroup.dev/chatgroup-operator/internal/commit"
	"chatgroup.dev/chatgroup-operator/internal/groupstate"
)

// Options configures the callback server.
type Options struct {
	// Addr is the address the callback server listens on.
	Addr string
	// CommitBudget is how long a request waits for its event to be stored
	// before the server answers 503 and keeps retrying in the background.
	// Tencent times out after 2 s.
	CommitBudget time.Duration
	// RetryTimeout is how long an event that missed its budget is retried
	// before it is dropped (counted and reported as a Kubernetes Event).
	RetryTimeout time.Duration
	// MaxPending bounds the events waiting to be committed across all
	// groups; beyond it new callbacks get 503 at once.
	MaxPending int
	// SignWindow is the allowed difference between the time a signed
	// (Tencent) request was signed and the server clock.
	SignWindow time.Duration
	// MaxClockSkew is how far an event time may be ahead of the server
	// clock; later ones get 400.
	MaxClockSkew time.Duration
	// MaxBodyBytes bounds a callback body; larger ones get 413.
	MaxBodyBytes int64
	// CommitConcurrency bounds the groups committed in parallel.
	CommitConcurrency int
	// Limits bound each ChatGroup's status.
	Limits groupstate.Limits
	// MaxBodiesInFlight bounds the callback bodies read and decoded at
	// once: a maximum-size body costs several times its size while it is
	// decoded, so this bounds the memory a burst of large callbacks takes.
	MaxBodiesInFlight int
	// ReplayRate is the rate of signed (Tencent) callbacks per replica the
	// replay cache is sized for: it holds ReplayRate × 2 × SignWindow
	// entries, and beyond that refuses signed callbacks with 503.
	ReplayRate float64
	// MaxPendingPerReceiver bounds one receiver's events waiting to be
	// committed, so that one tenant's stuck events cannot fill the shared
	// queue (MaxPending).
	MaxPendingPerReceiver int
	// MaxGroupsPerReceiver bounds the ChatGroups one receiver creates; 0
	// means no bound.
	MaxGroupsPerReceiver int
	// MaxReceiverRate and MaxReceiverBurst are the operator's ceiling on
	// every receiver's spec.rateLimit: a tenant sets its own limit, but
	// never above these (per replica).
	MaxReceiverRate  float64
	MaxReceiverBurst int
	// FailedAuthRate and FailedAuthBurst are each source address's budget
	// of requests that fail authentication; beyond it the source gets 429
	// before its credentials are checked. Failed requests never spend a
	// receiver's own rate limit, so they cannot starve the platform.
	FailedAuthRate  float64
	FailedAuthBurst int
	// JournalTail is the journal kept once handled (see commit.Options).
	JournalTail int
	// SliceThreshold and SliceFill place the members of large groups in
	// ChatGroupMemberSlices (see commit.Options).
	SliceThreshold, SliceFill int
	// TrustedProxies are the proxies (an Ingress controller's Pods, a load
	// balancer) whose X-Forwarded-For header is believed: when the TCP
	// peer is in one of them, the client address that allowedCIDRs and the
	// failed-authentication budget see is the right-most hop of
	// X-Forwarded-For that is not (security audit M3). Empty: the TCP peer
	// is the client, and X-Forwarded-For is ignored.
	TrustedProxies []netip.Prefix
	// OneWritePerEvent disables merging: every event is its own status
	// write. It exists as the baseline for benchmarks.
	OneWritePerEvent bool
}

// DefaultOptions returns the defaults, which the flags show.
func DefaultOptions() Options {
	return Options{
		Addr:                  ":8082",
		CommitBudget:          1500 * time.Millisecond,
		RetryTimeout:          10 * time.Minute,
		MaxPending:            20000,
		SignWindow:            60 * time.Second,
		MaxClockSkew:          10 * time.Minute,
		MaxBodyBytes:          4 << 20,
		CommitConcurrency:     64,
		MaxBodiesInFlight:     64,
		ReplayRate:            1000,
		MaxPendingPerReceiver: 2000,
		MaxGroupsPerReceiver:  10000,
		MaxReceiverRate:       2000,
		MaxReceiverBurst:      4000,
		FailedAuthRate:        1,
		FailedAuthBurst:       20,
		SliceThreshold:        128,
		SliceFill:             64,
		JournalTail:           8,
		Limits: groupstate.Limits{
			MaxMembers:     200000,
			MaxDeparted:    1000,
			JournalSize:    64,
			DedupeWindow:   128,
			UntimedDedupe:  groupstate.DefaultUntimedDedupe,
			TombstoneTTL:   groupstate.DefaultTombstoneTTL,
			MaxStatusBytes: groupstate.DefaultMaxStatusBytes,
		},
	}
}

// BindFlags registers the options as command-line flags.
func (o *Options) BindFlags(fs *flag.FlagSet) {
	fs.StringVar(&o.Addr, "callback-bind-address", o.Addr, "Address the callback server listens on.")
	fs.DurationVar(&o.CommitBudget, "callback-commit-budget", o.CommitBudget,
		"How long a callback waits for its event to be stored before the reply is 503 (the event is still retried).")
	fs.DurationVar(&o.RetryTimeout, "callback-retry-timeout", o.RetryTimeout,
		"How long an accepted event that missed its budget is retried before it is dropped and reported.")
	fs.IntVar(&o.MaxPending, "callback-max-pending", o.MaxPending,
		"Maximum events waiting to be stored; beyond it callbacks get 503 at once.")
	fs.DurationVar(&o.SignWindow, "tencent-sign-window", o.SignWindow,
		"Allowed difference between the signing time of a Tencent callback and the server clock (at most 5m: a captured callback URL is valid this long).")
	fs.DurationVar(&o.MaxClockSkew, "callback-max-clock-skew", o.MaxClockSkew,
		"How far a callback's event time may be ahead of the server clock (400 beyond it).")
	fs.IntVar(&o.MaxBodiesInFlight, "callback-max-bodies-in-flight", o.MaxBodiesInFlight,
		"Maximum callback bodies read and decoded at once; beyond it callbacks get 503 at once.")
	fs.Float64Var(&o.ReplayRate, "callback-replay-rate", o.ReplayRate,
		"Signed (Tencent) callbacks per second per replica the replay cache is sized for (rate × 2 × sign window entries); beyond it they get 503.")
	fs.IntVar(&o.MaxPendingPerReceiver, "callback-max-pending-per-receiver", o.MaxPendingPerReceiver,
		"Maximum events of one ChatReceiver waiting to be stored; beyond it its callbacks get 429 at once.")
	fs.IntVar(&o.MaxGroupsPerReceiver, "max-chatgroups-per-receiver", o.MaxGroupsPerReceiver,
		"Maximum ChatGroups one ChatReceiver creates; callbacks for new groups beyond it get 429. 0: no limit.")
	fs.Float64Var(&o.MaxReceiverRate, "callback-max-receiver-rate", o.MaxReceiverRate,
		"Ceiling on every ChatReceiver's spec.rateLimit.requestsPerSecond, per replica.")
	fs.IntVar(&o.MaxReceiverBurst, "callback-max-receiver-burst", o.MaxReceiverBurst,
		"Ceiling on every ChatReceiver's spec.rateLimit.burst, per replica.")
	fs.Float64Var(&o.FailedAuthRate, "callback-failed-auth-rate", o.FailedAuthRate,
		"Requests per second each source address may fail authentication before it gets 429.")
	fs.IntVar(&o.FailedAuthBurst, "callback-failed-auth-burst", o.FailedAuthBurst,
		"Burst of failed authentications allowed per source address.")
	fs.Int64Var(&o.MaxBodyBytes, "callback-max-body-bytes", o.MaxBodyBytes, "Maximum callback body size (413 above it).")
	fs.IntVar(&o.CommitConcurrency, "callback-commit-concurrency", o.CommitConcurrency,
		"Maximum ChatGroups committed in parallel.")
	fs.IntVar(&o.Limits.MaxMembers, "max-members", o.Limits.MaxMembers,
		"Members listed per ChatGroup, in its status or its member slices; above it the list is truncated and memberCount stays exact.")
	fs.IntVar(&o.SliceThreshold, "member-slice-threshold", o.SliceThreshold,
		"Members above which a ChatGroup keeps its members in ChatGroupMemberSlices instead of its status.")
	fs.IntVar(&o.SliceFill, "member-slice-fill", o.SliceFill,
		"Average members per ChatGroupMemberSlice when the slices are written anew.")
	fs.IntVar(&o.Limits.MaxDeparted, "max-departed", o.Limits.MaxDeparted,
		"Departures (tombstones) kept per ChatGroup at most; they expire by age (tombstone-ttl) before that.")
	fs.DurationVar(&o.Limits.TombstoneTTL, "tombstone-ttl", o.Limits.TombstoneTTL,
		"How long a departure is kept as a tombstone, counted back from the group's newest event.")
	fs.IntVar(&o.Limits.JournalSize, "journal-size", o.Limits.JournalSize, "Journal entries kept per ChatGroup.")
	fs.IntVar(&o.JournalTail, "journal-tail", o.JournalTail,
		"Journal entries kept per ChatGroup once every trigger and the Kubernetes Events have handled them.")
	fs.IntVar(&o.Limits.DedupeWindow, "dedupe-window", o.Limits.DedupeWindow, "Event keys kept per ChatGroup for deduplication.")
	fs.Func("trusted-proxies",
		"Comma-separated CIDRs of proxies (such as the Ingress controller's Pods) whose X-Forwarded-For is believed: "+
			"behind them, allowedCIDRs and the failed-authentication budget see the right-most untrusted hop. Default: none.",
		func(v string) error {
			p, err := clientaddr.ParseCIDRs(strings.Split(v, ","))
			o.TrustedProxies = append(o.TrustedProxies, p...)
			return err
		})
	fs.BoolVar(&o.OneWritePerEvent, "one-write-per-event", o.OneWritePerEvent,
		"Write each event on its own instead of merging concurrent events (benchmark baseline).")
}

// Validate reports options outside what the CRD schema can store.
func (o *Options) Validate() error {
	var errs []error
	check := func(ok bool, format string, args ...any) {
		if !ok {
			errs = append(errs, fmt.Errorf(format, args...))
		}
	}
	check(o.CommitBudget > 0, "callback-commit-budget must be positive")
	check(o.RetryTimeout >= o.CommitBudget, "callback-retry-timeout must be at least the commit budget")
	check(o.MaxPending > 0, "callback-max-pending must be positive")
	check(o.MaxBodiesInFlight > 0, "callback-max-bodies-in-flight must be positive")
	check(o.ReplayRate > 0, "callback-replay-rate must be positive")
	check(o.MaxPendingPerReceiver > 0, "callback-max-pending-per-receiver must be positive")
	check(o.MaxGroupsPerReceiver >= 0, "max-chatgroups-per-receiver must not be negative")
	check(o.SignWindow > 0 && o.SignWindow <= MaxSignWindow, "tencent-sign-window must be in (0, %s]", MaxSignWindow)
	check(o.MaxReceiverRate > 0 && o.MaxReceiverBurst > 0, "callback-max-receiver-rate and -burst must be positive")
	check(o.FailedAuthRate > 0 && o.FailedAuthBurst > 0, "callback-failed-auth-rate and -burst must be positive")
	check(o.MaxClockSkew > 0, "callback-max-clock-skew must be positive")
	check(o.Limits.TombstoneTTL > o.RetryTimeout, "tombstone-ttl must exceed callback-retry-timeout")
	check(o.MaxBodyBytes > 0, "callback-max-body-bytes must be positive")
	check(o.CommitConcurrency > 0, "callback-commit-concurrency must be positive")
	check(o.Limits.MaxMembers > 0 && o.Limits.MaxMembers <= 1000000, "max-members must be in 1..1000000")
	check(o.SliceThreshold > 0 && o.SliceThreshold <= 50000, "member-slice-threshold must be in 1..50000")
	check(o.SliceFill > 0 && o.SliceFill <= imv1.MaxSliceMembers/4, "member-slice-fill must be in 1..%d", imv1.MaxSliceMembers/4)
	check(o.Limits.MaxDeparted > 0 && o.Limits.MaxDeparted <= 5000, "max-departed must be in 1..5000")
	check(o.Limits.JournalSize > 0 && o.Limits.JournalSize <= 1024, "journal-size must be in 1..1024")
	check(o.Limits.DedupeWindow > 0 && o.Limits.DedupeWindow <= 1024, "dedupe-window must be in 1..1024")
	check(o.JournalTail >= 0 && o.JournalTail <= o.Limits.JournalSize, "journal-tail must be in 0..journal-size")
	return errors.Join(errs...)
}

// MaxSignWindow caps --tencent-sign-window. A Tencent Sign covers only the
// token and the request time, so a captured callback URL can carry any
// body for the whole window (security audit M1).
const MaxSignWindow = 5 * time.Minute

// drainTimeout is how long queued events get to be stored on shutdown.
const drainTimeout = 5 * time.Second

// commitOptions are the committer's options.
func (o *Options) commitOptions() commit.Options {
	return commit.Options{
		Concurrency:      o.CommitConcurrency,
		MaxPending:       o.MaxPending,
		RetryTimeout:     o.RetryTimeout,
		DrainTimeout:     drainTimeout,
		OneWritePerEvent: o.OneWritePerEvent,
		Limits:           o.Limits,
		JournalTail:      o.JournalTail,
		SliceThreshold:   o.SliceThreshold,
		SliceFill:        o.SliceFill,
	}
}
