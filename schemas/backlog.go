package schemas

import (
	"context"
	"fmt"
	"time"
)

// Backlog is how much work the event pipeline has not done yet.
type Backlog struct {
	PendingEvents      int           // in the outbox, not yet dispatched
	OldestPendingEvent time.Duration // age of the oldest of them; 0 when none
	EventsInFlight     int           // dispatched, not yet finished
	PendingDeliveries  int           // deliveries pending or waiting to retry
	OldestDelivery     time.Duration // age of the oldest of them; 0 when none
}

// ReadBacklog measures the backlog in one statement (partial indexes keep
// it cheap however large the tables grow).
func (s *Store) ReadBacklog(ctx context.Context) (Backlog, error) {
	var b Backlog
	var oldestEvent, oldestDelivery float64
	err := s.Pool.QueryRow(ctx, `SELECT
		(SELECT count(*) FROM events WHERE dispatch_state = 'pending'),
		coalesce((SELECT extract(epoch FROM clock_timestamp() - min(occurred_at)) FROM events WHERE dispatch_state = 'pending'), 0),
		(SELECT count(*) FROM events WHERE dispatch_state = 'dispatched'),
		(SELECT count(*) FROM deliveries WHERE state IN ('pending', 'retrying')),
		coalesce((SELECT extract(epoch FROM clock_timestamp() - min(created_at)) FROM deliveries WHERE state IN ('pending', 'retrying')), 0)`).
		Scan(&b.PendingEvents, &oldestEvent, &b.EventsInFlight, &b.PendingDeliveries, &oldestDelivery)
	if err != nil {
		return Backlog{}, fmt.Errorf("read backlog: %w", err)
	}
	b.OldestPendingEvent = time.Duration(oldestEvent * float64(time.Second))
	b.OldestDelivery = time.Duration(oldestDelivery * float64(time.Second))
	return b, nil
}
