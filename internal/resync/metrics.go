package resync

import (
	"github.com/prometheus/client_golang/prometheus"
	"sigs.k8s.io/controller-runtime/pkg/metrics"
)

var (
	driftCorrections = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "chatgroup_resync_drift_corrections_total",
		Help: "Drift corrections made by resync (events applied), by provider and event kind.",
	}, []string{"provider", "kind"})
	passDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "chatgroup_resync_pass_duration_seconds",
		Help:    "Duration of resync passes, by provider and result.",
		Buckets: prometheus.ExponentialBuckets(0.05, 2, 14),
	}, []string{"provider", "result"})
	apiErrors = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "chatgroup_resync_api_errors_total",
		Help: "Failed provider REST calls made by resync (each attempt), by provider and error code.",
	}, []string{"provider", "code"})
)

func init() {
	metrics.Registry.MustRegister(driftCorrections, passDuration, apiErrors)
}
