package clientaddr

import (
	"net/netip"
	"testing"

	. "github.com/onsi/gomega"
)

// TestClient_M3_rightMostUntrustedHop: only a trusted peer's
// X-Forwarded-For is read, and then its right-most untrusted hop is the
// client, whatever the client wrote to the left of it.
func TestClient_M3_rightMostUntrustedHop(t *testing.T) {
	g := NewWithT(t)
	trusted := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("fd00::/8")}
	cases := []struct {
		remote string
		xff    []string
		want   string // "" means unknown
	}{
		{"192.0.2.1:5000", []string{"203.0.113.7"}, "192.0.2.1"},                 // untrusted peer: header ignored
		{"10.1.2.3:5000", nil, "10.1.2.3"},                                       // trusted peer, no header
		{"10.1.2.3:5000", []string{"203.0.113.7"}, "203.0.113.7"},                // through the Ingress
		{"10.1.2.3:5000", []string{"203.0.113.7, 198.51.100.1"}, "198.51.100.1"}, // forged left hop
		{"10.1.2.3:5000", []string{"203.0.113.7", "10.9.9.9"}, "203.0.113.7"},    // two headers, trusted hop skipped
		{"[fd00::1]:5000", []string{"[2001:db8::7]:443"}, "2001:db8::7"},         // IPv6, hop with a port
		{"[::ffff:10.1.2.3]:5000", []string{"2001:db8::7"}, "2001:db8::7"},       // mapped peer is unmapped
		{"10.1.2.3:5000", []string{"10.5.5.5, 10.6.6.6"}, "10.5.5.5"},            // all trusted: left-most
		{"10.1.2.3:5000", []string{"203.0.113.7, bogus"}, ""},                    // unparsable hop: unknown
	}
	for _, c := range cases {
		got, ok := Client(c.remote, c.xff, trusted)
		if c.want == "" {
			g.Expect(ok).To(BeFalse(), "%v", c)
			continue
		}
		g.Expect(ok).To(BeTrue(), "%v", c)
		g.Expect(got).To(Equal(netip.MustParseAddr(c.want)), "%v", c)
	}
}

// TestParseCIDRs_I3_oneParserForValidationAndMatching: what the reconciler
// accepts is what the callback server matches; a bare address is refused
// in both, instead of being refused by one and matched by the other.
func TestParseCIDRs_I3_oneParserForValidationAndMatching(t *testing.T) {
	g := NewWithT(t)
	p, err := ParseCIDRs([]string{"10.0.0.1/8", " 2001:db8::/32"})
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(p).To(Equal([]netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("2001:db8::/32")}))
	g.Expect(Contains(p, netip.MustParseAddr("::ffff:10.2.3.4"))).To(BeTrue())
	_, err = ParseCIDRs([]string{"10.0.0.0/8", "10.0.0.1"})
	g.Expect(err).To(MatchError(ContainSubstring(`"10.0.0.1" is not a CIDR`)))
}
