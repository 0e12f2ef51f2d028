package webhookserver

import (
	"github.com/prometheus/client_golang/prometheus"
	"sigs.k8s.io/controller-runtime/pkg/metrics"
)

// Metrics of the callback server (the committer has its own). Labels are
// low-cardinality: provider, known command names (anything else is
// "other") and fixed results.
const labelProvider = "provider"

var (
	callbacksTotal = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "chatgroup_callbacks_total",
		Help: "Callbacks received, by provider, command and result.",
	}, []string{labelProvider, "command", "result"})

	replySeconds = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "chatgroup_callback_reply_seconds",
		Help:    "Time from receiving a callback to replying, by provider and HTTP status class.",
		Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 1.5, 2, 5},
	}, []string{labelProvider, "code"})

	tokenMatches = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "chatgroup_token_matches_total",
		Help: "Authenticated callbacks by which token matched (current or previous), to follow a rotation.",
	}, []string{labelProvider, "token"})
)

func init() {
	metrics.Registry.MustRegister(callbacksTotal, replySeconds, tokenMatches)
}
