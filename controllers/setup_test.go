package controllers

import (
	"flag"
	"testing"
	"time"

	. "github.com/onsi/gomega"
)

func TestOptions_BindFlags(t *testing.T) {
	g := NewWithT(t)
	var opts Options
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	opts.BindFlags(fs)
	g.Expect(opts).To(Equal(DefaultOptions()))
	g.Expect(fs.Parse([]string{"--max-concurrent-reconciles=8", "--event-recorder-name=custom", "--secret-recheck-interval=10s"})).To(Succeed())
	g.Expect(opts).To(Equal(Options{MaxConcurrentReconciles: 8, EventRecorderName: "custom", SecretRecheckInterval: 10 * time.Second}))
	g.Expect(Options{}.withDefaults()).To(Equal(DefaultOptions()))
}
