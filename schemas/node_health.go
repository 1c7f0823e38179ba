package schemas

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// NodeHealthObservation is one observation of a node's health.
type NodeHealthObservation struct {
	Node string
	// Healthy: the node's Ready condition is True.
	Healthy bool
	// Reason is the Ready condition's reason and message.
	Reason string
	// Conditions lists what is wrong ("Ready=False", "MemoryPressure=True").
	Conditions []string
	// ReadySince is the Ready condition's lastTransitionTime. An observation
	// with one older than the recorded one comes from a watcher that lags
	// behind another, and is ignored. Zero: unknown, never ignored.
	ReadySince time.Time
}

// NodeHealthRecord is a node's last recorded health (table node_health).
type NodeHealthRecord struct {
	NodeName   string
	Healthy    bool
	Reason     string
	Conditions []string
	ReadySince *time.Time
	// UnhealthyEventID is the node.unhealthy event of the current unhealthy
	// spell; nil while healthy.
	UnhealthyEventID *uuid.UUID
	ChangedAt        time.Time // when Healthy last flipped, or the node was first seen
	ObservedAt       time.Time
}

// RecordNodeHealth is ObserveNodeHealth without a ReadySince.
func (s *Store) RecordNodeHealth(ctx context.Context, name string, healthy bool, reason string, conditions []string) (published bool, err error) {
	return s.ObserveNodeHealth(ctx, NodeHealthObservation{Node: name, Healthy: healthy, Reason: reason, Conditions: conditions})
}

// ObserveNodeHealth records o and, in the same transaction, publishes
// node.unhealthy when the node goes from healthy to unhealthy, or is first
// seen unhealthy. It reports whether it published.
//
// One upsert decides: it locks the node's row (or waits for a concurrent
// insert of it), so of several watchers reporting the same transition
// exactly one sees the row still healthy and publishes; the others find it
// already unhealthy. The event ID is chosen before the upsert and stored in
// the row only by the writer that made the transition, which is how that
// writer knows. A stale observation (ReadySince older than the row's)
// changes nothing and publishes nothing.
func (s *Store) ObserveNodeHealth(ctx context.Context, o NodeHealthObservation) (published bool, err error) {
	eventID, err := uuid.NewV7()
	if err != nil {
		return false, fmt.Errorf("event id: %w", err)
	}
	conditions := o.Conditions
	if conditions == nil {
		conditions = []string{}
	}
	var readySince *time.Time
	if !o.ReadySince.IsZero() {
		readySince = &o.ReadySince
	}
	const q = `INSERT INTO node_health AS n (node_name, healthy, reason, conditions, ready_since, unhealthy_event_id)
		VALUES ($1, $2, $3, $4, $5, CASE WHEN $2 THEN NULL ELSE $6::uuid END)
		ON CONFLICT (node_name) DO UPDATE SET
			healthy = EXCLUDED.healthy,
			reason = EXCLUDED.reason,
			conditions = EXCLUDED.conditions,
			ready_since = coalesce(EXCLUDED.ready_since, n.ready_since),
			observed_at = clock_timestamp(),
			changed_at = CASE WHEN n.healthy = EXCLUDED.healthy THEN n.changed_at ELSE clock_timestamp() END,
			unhealthy_event_id = CASE
				WHEN EXCLUDED.healthy THEN NULL
				WHEN n.healthy THEN EXCLUDED.unhealthy_event_id
				ELSE n.unhealthy_event_id END
		WHERE EXCLUDED.ready_since IS NULL OR n.ready_since IS NULL OR EXCLUDED.ready_since >= n.ready_since
		RETURNING coalesce(unhealthy_event_id = $6::uuid, false)`
	err = s.InTx(ctx, func(tx pgx.Tx) error {
		err := tx.QueryRow(ctx, q, o.Node, o.Healthy, o.Reason, conditions, readySince, eventID).Scan(&published)
		if errors.Is(err, pgx.ErrNoRows) {
			return nil // stale: a newer observation is recorded
		}
		if err != nil || !published {
			return err
		}
		_, err = Publish(ctx, tx, Event{ID: eventID, Type: EventNodeUnhealthy,
			Data: NodeUnhealthyData{NodeName: o.Node, Reason: o.Reason, Conditions: o.Conditions}})
		return err
	})
	if err != nil {
		return false, fmt.Errorf("record health of node %s: %w", o.Node, err)
	}
	return published, nil
}

// GetNodeHealth returns a node's last recorded health, or ErrNotFound.
func (s *Store) GetNodeHealth(ctx context.Context, name string) (NodeHealthRecord, error) {
	var r NodeHealthRecord
	err := s.Pool.QueryRow(ctx, `SELECT node_name, healthy, reason, conditions, ready_since, unhealthy_event_id,
		changed_at, observed_at FROM node_health WHERE node_name = $1`, name).
		Scan(&r.NodeName, &r.Healthy, &r.Reason, &r.Conditions, &r.ReadySince, &r.UnhealthyEventID, &r.ChangedAt, &r.ObservedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return NodeHealthRecord{}, fmt.Errorf("node %s: %w", name, ErrNotFound)
	}
	if err != nil {
		return NodeHealthRecord{}, fmt.Errorf("get health of node %s: %w", name, err)
	}
	return r, nil
}

// DeleteNodeHealth forgets a node that left the cluster: if a node of that
// name joins later, it is new.
func (s *Store) DeleteNodeHealth(ctx context.Context, name string) error {
	if _, err := s.Pool.Exec(ctx, `DELETE FROM node_health WHERE node_name = $1`, name); err != nil {
		return fmt.Errorf("delete health of node %s: %w", name, err)
	}
	return nil
}
