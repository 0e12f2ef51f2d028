// Package clientaddr finds the address a request came from: the TCP peer,
// or behind trusted proxies the right-most untrusted X-Forwarded-For hop.
// Its CIDR parser is the one both the ChatReceiver reconciler (to validate
// allowedCIDRs) and the callback server (to check them, and to read
// --trusted-proxies) use, so that what is valid and what matches are the
// same thing (security audit I3).
package clientaddr

import (
	"fmt"
	"net"
	"net/netip"
	"strings"
)

// ParseCIDR parses one CIDR such as 10.0.0.0/8 or 2001:db8::/32. A bare
// address is not a CIDR: write 192.0.2.1/32.
func ParseCIDR(s string) (netip.Prefix, error) {
	p, err := netip.ParsePrefix(strings.TrimSpace(s))
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("%q is not a CIDR (such as 10.0.0.0/8 or 2001:db8::/32)", s)
	}
	return p.Masked(), nil
}

// ParseCIDRs parses a list of CIDRs; the error names the first bad one.
func ParseCIDRs(list []string) ([]netip.Prefix, error) {
	out := make([]netip.Prefix, 0, len(list))
	for _, s := range list {
		p, err := ParseCIDR(s)
		if err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, nil
}

// Contains reports whether addr is inside one of the prefixes. An
// IPv4-mapped IPv6 address counts as its IPv4 address.
func Contains(prefixes []netip.Prefix, addr netip.Addr) bool {
	addr = addr.Unmap()
	for _, p := range prefixes {
		if p.Contains(addr) {
			return true
		}
	}
	return false
}

// Peer parses a request's RemoteAddr ("host:port", or a bare address).
func Peer(remoteAddr string) (netip.Addr, bool) {
	host, _, err := net.SplitHostPort(remoteAddr)
	if err != nil {
		host = remoteAddr
	}
	addr, err := netip.ParseAddr(host)
	if err != nil {
		return netip.Addr{}, false
	}
	return addr.Unmap(), true
}

// Client is the address a request came from. It is the TCP peer, unless
// the peer is one of the trusted proxies: then it is the right-most
// X-Forwarded-For hop that is not a trusted proxy, since every hop left of
// it was written by the untrusted client and may be forged. If every hop
// is trusted, it is the left-most one. A hop that does not parse makes the
// address unknown (false), so that allowedCIDRs refuse the request rather
// than judging it by a proxy's address.
func Client(remoteAddr string, forwardedFor []string, trusted []netip.Prefix) (netip.Addr, bool) {
	peer, ok := Peer(remoteAddr)
	if !ok || !Contains(trusted, peer) {
		return peer, ok
	}
	hops := splitHops(forwardedFor)
	client := peer
	for i := len(hops) - 1; i >= 0; i-- {
		addr, ok := Peer(hops[i])
		if !ok {
			return netip.Addr{}, false
		}
		client = addr
		if !Contains(trusted, addr) {
			break
		}
	}
	return client, true
}

// splitHops splits X-Forwarded-For header values, which a request may
// carry several of, into one list of hops in order.
func splitHops(values []string) []string {
	var hops []string
	for _, v := range values {
		for h := range strings.SplitSeq(v, ",") {
			if h = strings.TrimSpace(h); h != "" {
				hops = append(hops, h)
			}
		}
	}
	return hops
}
