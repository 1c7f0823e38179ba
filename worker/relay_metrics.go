package worker

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/streamspace/enterprise/schemas"
)

// RelayMetrics are the relay's Prometheus metrics.
type RelayMetrics struct {
	dispatched prometheus.Counter
	deferred   prometheus.Counter
	latency    prometheus.Histogram
}

// NewRelayMetrics registers the relay's metrics on reg.
func NewRelayMetrics(reg prometheus.Registerer) *RelayMetrics {
	m := &RelayMetrics{
		dispatched: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "streamspace_outbox_dispatched_total",
			Help: "Events whose DispatchEvent workflow the relay started.",
		}),
		deferred: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "streamspace_outbox_deferred_total",
			Help: "Workflow starts that failed and were deferred for a later attempt.",
		}),
		latency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "streamspace_outbox_dispatch_latency_seconds",
			Help:    "Time from an event's insert to the start of its DispatchEvent workflow.",
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 300},
		}),
	}
	reg.MustRegister(m.dispatched, m.deferred, m.latency)
	return m
}

func (m *RelayMetrics) observe(started []schemas.StoredEvent, failures int, at time.Time) {
	if m == nil {
		return
	}
	m.dispatched.Add(float64(len(started)))
	m.deferred.Add(float64(failures))
	for _, ev := range started {
		m.latency.Observe(at.Sub(ev.OccurredAt).Seconds())
	}
}
