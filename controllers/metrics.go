package controllers

import (
	"github.com/prometheus/client_golang/prometheus"
	"sigs.k8s.io/controller-runtime/pkg/metrics"
)

// Custom metrics, on top of controller-runtime's reconcile metrics. Labels
// stay low-cardinality: never a group or user ID.
var (
	triggerMissedEntries = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "chatgroup_trigger_missed_entries_total",
		Help: "Journal entries that left a ChatGroup's journal ring before a matching trigger handled them.",
	}, []string{"namespace", "trigger"})

	triggerJobs = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "chatgroup_trigger_jobs_total",
		Help: "Jobs started by ChatGroupTriggers, by result (created, exists, rejected, error).",
	}, []string{"result"})

	unannouncedEntries = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "chatgroup_unannounced_journal_entries_total",
		Help: "Journal entries that were not published as Kubernetes Events (dropped from the ring or over the per-reconcile bound).",
	})
)

func init() {
	metrics.Registry.MustRegister(triggerMissedEntries, triggerJobs, unannouncedEntries)
}
