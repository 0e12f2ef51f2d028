package webhookserver

import (
	"github.com/prometheus/client_golang/prometheus"
	"sigs.k8s.io/controller-runtime/pkg/metrics"
)

// Metrics of the callback server. Labels are low-cardinality: provider,
// known command names (anything else is "other") and fixed results.
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

	commitBatchSize = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "chatgroup_commit_batch_events",
		Help:    "Events merged into one ChatGroup status write.",
		Buckets: []float64{1, 2, 4, 8, 16, 32, 64, 128, 256},
	})

	commitConflicts = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "chatgroup_commit_conflicts_total",
		Help: "ChatGroup status writes rejected for a stale resourceVersion and retried.",
	})

	apiWrites = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "chatgroup_commit_api_writes_total",
		Help: "API server writes made by the committer, by operation (create, status) and outcome.",
	}, []string{"operation", "outcome"})

	eventResults = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "chatgroup_events_total",
		Help: "Events committed, by result (applied, duplicate, stale).",
	}, []string{"result"})

	dedupeHits = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "chatgroup_dedupe_hits_total",
		Help: "Events recognised as duplicates of an already stored event.",
	}, []string{"provider"})

	queueDepth = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "chatgroup_commit_queue_depth",
		Help: "Accepted events waiting to be stored.",
	})

	droppedEvents = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "chatgroup_dropped_events_total",
		Help: "Accepted events that could not be stored before the retry timeout or shutdown.",
	}, []string{"reason"})

	tokenMatches = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "chatgroup_token_matches_total",
		Help: "Authenticated callbacks by which token matched (current or previous), to follow a rotation.",
	}, []string{labelProvider, "token"})
)

func init() {
	metrics.Registry.MustRegister(callbacksTotal, replySeconds, commitBatchSize, commitConflicts, apiWrites,
		eventResults, dedupeHits, queueDepth, droppedEvents, tokenMatches)
}
