package webhookserver

import (
	"errors"
	"net"
	"net/netip"
	"sync"
	"time"

	"golang.org/x/time/rate"

	imv1 "chatgroup.dev/chatgroup-operator/api/v1alpha1"
)

// errReplay is returned for a signed request seen before.
var errReplay = errors.New("replayed request")

// replayCache remembers accepted signed requests for the signature window,
// so that an exact replay is rejected. A provider's replay ID (Tencent's
// Sign) may be shared by every callback signed in the same second, so the
// cache keys on the replay ID plus the event key, and only requests that
// were accepted are remembered (a retry of a failed request must get
// through).
type replayCache struct {
	mu     sync.Mutex
	seen   map[string]time.Time
	window time.Duration
	max    int
	swept  time.Time
}

func newReplayCache(window time.Duration, maxEntries int) *replayCache {
	return &replayCache{seen: map[string]time.Time{}, window: window, max: maxEntries}
}

func (c *replayCache) seenBefore(id string, now time.Time) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	at, ok := c.seen[id]
	return ok && now.Sub(at) <= 2*c.window
}

// record remembers an accepted request.
func (c *replayCache) record(id string, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if now.Sub(c.swept) > c.window || len(c.seen) >= c.max {
		for k, at := range c.seen {
			if now.Sub(at) > 2*c.window {
				delete(c.seen, k)
			}
		}
		c.swept = now
	}
	if len(c.seen) < c.max {
		c.seen[id] = now
	}
}

// sourceAllowed reports whether the request's source address is inside one
// of the CIDRs. An empty list allows every source.
func sourceAllowed(cidrs []string, remoteAddr string) bool {
	if len(cidrs) == 0 {
		return true
	}
	host, _, err := net.SplitHostPort(remoteAddr)
	if err != nil {
		host = remoteAddr
	}
	addr, err := netip.ParseAddr(host)
	if err != nil {
		return false
	}
	addr = addr.Unmap()
	for _, c := range cidrs {
		prefix, err := netip.ParsePrefix(c)
		if err != nil {
			if a, aerr := netip.ParseAddr(c); aerr == nil && a == addr {
				return true
			}
			continue
		}
		if prefix.Contains(addr) {
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
// spec.rateLimit changed.
func (s *Server) limiter(rcv *imv1.ChatReceiver) *rate.Limiter {
	spec := imv1.RateLimit{RequestsPerSecond: 2000, Burst: 4000}
	if rcv.Spec.RateLimit != nil {
		spec = *rcv.Spec.RateLimit
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
