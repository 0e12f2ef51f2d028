package localcluster

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	. "github.com/onsi/gomega"
)

// TestSamples_L5_shipNoTokens: config/samples holds no token Secret (a
// published token is a known credential, and for OpenIM it makes the
// webhook path computable), and every Secret its receivers name is one
// ApplySamples creates with a random token.
func TestSamples_L5_shipNoTokens(t *testing.T) {
	g := NewWithT(t)
	root, err := FindRepoRoot()
	g.Expect(err).NotTo(HaveOccurred())
	files, err := filepath.Glob(filepath.Join(root, "config", "samples", "*.yaml"))
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(files).NotTo(BeEmpty())
	secretRef := regexp.MustCompile(`(?m)^  secretRef:\n    name: (\S+)$`)
	var named []string
	for _, f := range files {
		b, err := os.ReadFile(f)
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(string(b)).NotTo(MatchRegexp(`(?m)^kind: Secret$`), f)
		g.Expect(string(b)).NotTo(MatchRegexp(`(?m)^\s+token:`), f)
		for _, m := range secretRef.FindAllStringSubmatch(string(b), -1) {
			named = append(named, m[1])
		}
	}
	g.Expect(named).To(ConsistOf(SampleTokenSecrets))
}

// TestRandomToken_L5_isLongAndRandom: 256 bits in hex, different each time.
func TestRandomToken_L5_isLongAndRandom(t *testing.T) {
	g := NewWithT(t)
	a, err := RandomToken()
	g.Expect(err).NotTo(HaveOccurred())
	b, err := RandomToken()
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(a).To(MatchRegexp(`^[0-9a-f]{64}$`))
	g.Expect(a).NotTo(Equal(b))
	g.Expect(strings.TrimSpace(a)).To(Equal(a))
}
