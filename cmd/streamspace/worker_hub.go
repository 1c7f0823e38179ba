package main

import (
	"time"

	"github.com/streamspace/enterprise/activities"
	"github.com/streamspace/enterprise/activities/notify"
	"github.com/streamspace/enterprise/internal/safehttp"
	"github.com/streamspace/enterprise/schemas"
)

// hubDeliveries builds the worker's delivery activities: webhooks through an
// SSRF-safe client, integrations through the notify senders, secrets opened
// with ENCRYPTION_KEY, outbound rate limits counted in PostgreSQL.
func hubDeliveries(cfg WorkerConfig, rt *runtime) (*activities.Deliveries, error) {
	box, err := openSecretBox(cfg.Security)
	if err != nil {
		return nil, err
	}
	userAgent := "StreamSpace-Webhooks/" + version()
	d := &activities.Deliveries{
		Store:   &schemas.Store{Pool: rt.Pool},
		HTTP:    safehttp.NewClient(cfg.Hub.SafeHTTP(userAgent)),
		Senders: notify.Senders(notify.Deps{HTTP: safehttp.NewClient(cfg.Hub.SafeHTTP("StreamSpace/" + version())), SMTP: cfg.SMTP}),
		Rate: schemas.NewRateCounter(rt.Pool, schemas.RateCounterOptions{Timeout: 2 * time.Second,
			Logger: rt.Logger.With("component", "delivery-rate-limit")}),
		UserAgent:               userAgent,
		DisableAfter:            cfg.Hub.DisableAfter,
		FirstAttemptParallelism: cfg.Hub.FirstAttemptParallelism,
		Logger:                  rt.Logger.With("component", "deliveries"),
	}
	if box != nil { // a nil *Box in the interface would not be nil
		d.Secrets = box
	} else {
		rt.Logger.Warn("ENCRYPTION_KEY is not set: webhook and integration deliveries fail until it is " +
			"(their secrets are sealed with it)")
	}
	return d, nil
}
