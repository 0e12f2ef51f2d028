package callbacks

import (
	"strings"
	"testing"

	. "github.com/onsi/gomega"
)

func TestParseAction(t *testing.T) {
	g := NewWithT(t)
	for _, a := range Actions {
		got, err := ParseAction(strings.ToUpper(string(a)))
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(got).To(Equal(a))
	}
	_, err := ParseAction("promote")
	g.Expect(err).To(MatchError(ContainSubstring("create, join, quit, kick, disband, info, owner, member-field")))
}
