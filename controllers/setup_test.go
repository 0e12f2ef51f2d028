package controllers

import (
	"flag"
	"testing"

	. "github.com/onsi/gomega"
)

func TestOptions_BindFlags(t *testing.T) {
	g := NewWithT(t)
	var opts Options
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	opts.BindFlags(fs)
	g.Expect(opts).To(Equal(DefaultOptions()))
	g.Expect(fs.Parse([]string{"--max-concurrent-reconciles=8", "--event-recorder-name=custom"})).To(Succeed())
	g.Expect(opts).To(Equal(Options{MaxConcurrentReconciles: 8, EventRecorderName: "custom"}))
	g.Expect(Options{}.withDefaults()).To(Equal(DefaultOptions()))
}
