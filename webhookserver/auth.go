package webhookserver

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"time"
)

// errReplay is returned for a signed Tencent request seen before.
var errReplay = errors.New("replayed request")

// tencentSign computes Tencent's callback signature:
// lower-hex sha256(token + RequestTime).
func tencentSign(token, requestTime string) string {
	sum := sha256.Sum256([]byte(token + requestTime))
	return hex.EncodeToString(sum[:])
}

// verifyTencentSign checks Sign against each token (current first) in
// constant time, and RequestTime against the window around now. It returns
// the index of the token that matched.
func verifyTencentSign(tokens []string, sign, requestTime string, now time.Time, window time.Duration) (int, error) {
	if sign == "" || requestTime == "" {
		return -1, errors.New("missing Sign or RequestTime")
	}
	secs, err := strconv.ParseInt(requestTime, 10, 64)
	if err != nil {
		return -1, fmt.Errorf("RequestTime %q is not a Unix time in seconds", requestTime)
	}
	if skew := now.Sub(time.Unix(secs, 0)); skew > window || skew < -window {
		return -1, fmt.Errorf("RequestTime is %s away from the server clock (allowed %s)", skew.Round(time.Second), window)
	}
	matched := -1
	for i, token := range tokens {
		// Check every token so the time taken does not say which matched.
		if subtle.ConstantTimeCompare([]byte(tencentSign(token, requestTime)), []byte(sign)) == 1 && matched < 0 {
			matched = i
		}
	}
	if matched < 0 {
		return -1, errors.New("signature mismatch")
	}
	return matched, nil
}

// replayCache remembers accepted signed requests for the signature window,
// so that an exact replay is rejected. A Tencent Sign covers only the token
// and RequestTime, so every callback sent in the same second carries the
// same Sign; the cache therefore keys on Sign plus the event key, and only
// requests that were accepted are remembered (a retry of a failed request
// must get through).
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

func (c *replayCache) remember(id string, now time.Time) {
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

// constantTimeEqual compares two secrets without leaking their contents
// through timing.
func constantTimeEqual(a, b string) bool {
	return subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1
}
