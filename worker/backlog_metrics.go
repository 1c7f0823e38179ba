package worker

import (
	"context"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/streamspace/enterprise/schemas"
)

// backlogCollector exports the event pipeline's backlog, read from
// PostgreSQL at each scrape: every replica reports the same numbers, the
// whole system's.
type backlogCollector struct {
	store  *schemas.Store
	logger *slog.Logger
	descs  []*prometheus.Desc
}

// NewBacklogCollector registers the backlog gauges on reg:
// streamspace_outbox_pending_events, streamspace_outbox_oldest_pending_seconds,
// streamspace_outbox_in_flight_events, streamspace_deliveries_pending and
// streamspace_deliveries_oldest_pending_seconds.
func NewBacklogCollector(reg prometheus.Registerer, store *schemas.Store, logger *slog.Logger) {
	d := func(name, help string) *prometheus.Desc { return prometheus.NewDesc(name, help, nil, nil) }
	reg.MustRegister(&backlogCollector{store: store, logger: logger, descs: []*prometheus.Desc{
		d("streamspace_outbox_pending_events", "Events in the outbox not yet dispatched to a workflow run."),
		d("streamspace_outbox_oldest_pending_seconds", "Age of the oldest event not yet dispatched (0 when none)."),
		d("streamspace_outbox_in_flight_events", "Events dispatched to a run that has not finished them (the relay stops claiming at RELAY_MAX_IN_FLIGHT)."),
		d("streamspace_deliveries_pending", "Webhook and integration deliveries pending or waiting to retry."),
		d("streamspace_deliveries_oldest_pending_seconds", "Age of the oldest delivery pending or waiting to retry (0 when none)."),
	}})
}

func (c *backlogCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range c.descs {
		ch <- d
	}
}

func (c *backlogCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	b, err := c.store.ReadBacklog(ctx)
	if err != nil {
		c.logger.Warn("backlog metrics unavailable", "err", err)
		return
	}
	for i, v := range []float64{float64(b.PendingEvents), b.OldestPendingEvent.Seconds(), float64(b.EventsInFlight),
		float64(b.PendingDeliveries), b.OldestDelivery.Seconds()} {
		ch <- prometheus.MustNewConstMetric(c.descs[i], prometheus.GaugeValue, v)
	}
}
