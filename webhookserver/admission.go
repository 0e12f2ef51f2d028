package webhookserver

import (
	"errors"
	"math"
	"net/netip"
	"sync"
	"time"

	"golang.org/x/time/rate"

	imv1 "chatgroup.dev/chatgroup-operator/api/v1alpha1"
	"chatgroup.dev/chatgroup-operator/internal/clientaddr"
)

// errReplay is returned for a signed request seen before.
var errReplay = errors.New("replayed request")

// errReplayCacheFull is returned when the replay cache cannot remember one
// more request: the server then refuses it rather than accept a request it
// could not recognise as a replay (security audit M9).
var errReplayCacheFull = errors.New("too many signed requests to check for replays; retry later")

// replayCache remembers accepted signed requests for twice the signature
// window, so that an exact replay is rejected. A provider's replay ID
// (Tencent's Sign) may be shared by every callback signed in the same
// second, so the cache keys on the replay ID plus the event key.
//
// Entries sit in one bucket per second and expire a whole bucket at a
// time, so no request scans the cache. The cache holds at most max
// entries, sized from the expected rate times the time an entry is kept;
// when it is full it fails closed: the request is refused with 503.
type replayCache struct {
	mu      sync.Mutex
	buckets map[int64]map[string]struct{}
	entries int
	keep    time.Duration
	max     int
}

// newReplayCache sizes the cache for perSecond signed requests, each kept
// for twice the window.
func newReplayCache(window time.Duration, perSecond float64) *replayCache {
	keep := 2 * window
	return &replayCache{buckets: map[int64]map[string]struct{}{}, keep: keep,
		max: max(1, int(math.Ceil(perSecond*keep.Seconds())))}
}

// reserve remembers a request before it is stored: errReplay if it was
// seen within the window, errReplayCacheFull if it cannot be remembered.
// A request whose event then fails to be stored is released, so that a
// retry gets through.
func (c *replayCache) reserve(id string, now time.Time) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.expire(now)
	for _, b := range c.buckets {
		if _, ok := b[id]; ok {
			return errReplay
		}
	}
	if c.entries >= c.max {
		return errReplayCacheFull
	}
	sec := now.Unix()
	b := c.buckets[sec]
	if b == nil {
		b = map[string]struct{}{}
		c.buckets[sec] = b
	}
	b[id] = struct{}{}
	c.entries++
	return nil
}

// release forgets a reserved request.
func (c *replayCache) release(id string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, b := range c.buckets {
		if _, ok := b[id]; ok {
			delete(b, id)
			c.entries--
			return
		}
	}
}

// expire drops the buckets older than keep; c.mu is held.
func (c *replayCache) expire(now time.Time) {
	oldest := now.Add(-c.keep).Unix()
	for sec, b := range c.buckets {
		if sec < oldest {
			c.entries -= len(b)
			delete(c.buckets, sec)
		}
	}
}

// sourceAllowed reports whether the request's client address is inside
// one of the CIDRs. An empty list allows every source; an unknown client
// address (see clientaddr.Client) or a CIDR that does not parse allows
// none, so a bad entry fails closed (the reconciler reports it).
func sourceAllowed(cidrs []string, client netip.Addr) bool {
	if len(cidrs) == 0 {
		return true
	}
	if !client.IsValid() {
		return false
	}
	for _, c := range cidrs {
		if p, err := clientaddr.ParseCIDR(c); err == nil && p.Contains(client) {
			return true
		}
	}
	return false
}

type receiverLimiter struct {
	limiter *rate.Limiter
	spec    imv1.RateLimit
}

// limiter returns the receiver's rate limiter, made anew when its
// spec.rateLimit changed. The limit is the receiver's own, capped by the
// operator's ceiling (--callback-max-receiver-rate and -burst), which is
// also the default.
func (s *Server) limiter(rcv *imv1.ChatReceiver) *rate.Limiter {
	ceiling := imv1.RateLimit{RequestsPerSecond: clampInt32(s.opts.MaxReceiverRate), Burst: clampInt32(float64(s.opts.MaxReceiverBurst))}
	spec := ceiling
	if rcv.Spec.RateLimit != nil {
		spec.RequestsPerSecond = min(rcv.Spec.RateLimit.RequestsPerSecond, ceiling.RequestsPerSecond)
		spec.Burst = min(rcv.Spec.RateLimit.Burst, ceiling.Burst)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	l, ok := s.limiters[rcv.UID]
	if !ok || l.spec != spec {
		l = &receiverLimiter{limiter: rate.NewLimiter(rate.Limit(spec.RequestsPerSecond), int(spec.Burst)), spec: spec}
		s.limiters[rcv.UID] = l
	}
	return l.limiter
}

// clampInt32 converts a positive option to the API's int32, at least 1.
func clampInt32(v float64) int32 {
	return int32(max(1, min(v, float64(1<<31-1))))
}

// maxFailureSources bounds the source addresses whose failed
// authentications are tracked.
const maxFailureSources = 10000

// failures holds each source address's budget of failed authentications.
// A source past its budget still gets its requests authenticated (behind a
// proxy, the platform and an attacker may share an address), but its
// failures are answered 429 without a log line each, so a flood of forged
// requests cannot flood the logs, and it is told to back off.
type failures struct {
	mu      sync.Mutex
	perSec  rate.Limit
	burst   int
	sources map[netip.Addr]*rate.Limiter
}

func newFailures(perSec float64, burst int) *failures {
	return &failures{perSec: rate.Limit(perSec), burst: burst, sources: map[netip.Addr]*rate.Limiter{}}
}

// charge spends one failed authentication of the source's budget, and
// reports false when the budget was already spent.
func (f *failures) charge(addr netip.Addr, now time.Time) bool {
	if !addr.IsValid() {
		return true
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	l, ok := f.sources[addr]
	if !ok {
		if len(f.sources) >= maxFailureSources {
			f.forgetRested(now)
		}
		l = rate.NewLimiter(f.perSec, f.burst)
		f.sources[addr] = l
	}
	return l.AllowN(now, 1)
}

// forgetRested drops the sources whose budget is full again (they are as
// good as new), and every source if that frees nothing.
func (f *failures) forgetRested(now time.Time) {
	for a, l := range f.sources {
		if l.TokensAt(now) >= float64(f.burst) {
			delete(f.sources, a)
		}
	}
	if len(f.sources) >= maxFailureSources {
		clear(f.sources)
	}
}
