package commit

import (
	"github.com/prometheus/client_golang/prometheus"
	"sigs.k8s.io/controller-runtime/pkg/metrics"
)

// Metrics of the committer.
var (
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

	sliceRewrites = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "chatgroup_member_slice_rewrites_total",
		Help: "Whole generations of ChatGroupMemberSlices written (a group crossing the threshold, or a large change).",
	})

	sliceRepairs = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "chatgroup_member_slice_loads_total",
		Help: "Member lists of sliced ChatGroups loaded from their slices, each checked and repaired against the status.",
	})

	sliceWriteErrors = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "chatgroup_member_slice_write_errors_total",
		Help: "Failed member slice updates after a stored commit; the slices are repaired before the group's next commit.",
	})

	droppedEvents = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "chatgroup_dropped_events_total",
		Help: "Accepted events that could not be stored before the retry timeout or shutdown.",
	}, []string{"reason"})
)

func init() {
	metrics.Registry.MustRegister(commitBatchSize, commitConflicts, apiWrites, eventResults, dedupeHits, queueDepth, droppedEvents,
		sliceRewrites, sliceRepairs, sliceWriteErrors)
}
