package cloudevent

import (
	"github.com/prometheus/client_golang/prometheus"
	"sigs.k8s.io/controller-runtime/pkg/metrics"
)

var (
	deliveriesTotal = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "chatgroup_cloudevent_deliveries_total",
		Help: "CloudEvent deliveries by outcome: delivered, retrying (the budget ran out on a retryable error) or failed (permanently).",
	}, []string{"outcome"})
	attemptsTotal = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "chatgroup_cloudevent_attempts_total",
		Help: "CloudEvent HTTP attempts by result: 2xx, 429, 4xx, 5xx, network or timeout.",
	}, []string{"result"})
	attemptDuration = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "chatgroup_cloudevent_attempt_duration_seconds",
		Help:    "Duration of CloudEvent HTTP attempts.",
		Buckets: prometheus.ExponentialBuckets(0.005, 4, 8),
	})
	inFlight = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "chatgroup_cloudevent_in_flight",
		Help: "CloudEvent deliveries holding a sender slot.",
	})
)

func init() {
	metrics.Registry.MustRegister(deliveriesTotal, attemptsTotal, attemptDuration, inFlight)
}
