package schemas

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/streamspace/enterprise/schemas/kubeapi"
)

// CreateSession inserts a new session (phase Pending) and publishes
// session.created in one transaction, after checking the user's quota with
// the user's row locked, so concurrent creates of one user cannot overshoot
// it. When the quota would be broken it commits quota.exceeded instead and
// returns the *QuotaExceededError. def is the configured default quota.
// templateExists (nil: not checked) confirms the session's template still
// exists, under the template's lock, so a template deleted meanwhile
// (DeleteTemplateIfUnused) fails the create instead of leaving a session
// without its template.
func (s *Store) CreateSession(ctx context.Context, row *SessionRow, def Quota, templateExists func(context.Context) error) error {
	spec, err := json.Marshal(row.Spec)
	if err != nil {
		return fmt.Errorf("session spec: %w", err)
	}
	var exceeded *QuotaExceededError
	err = s.InTx(ctx, func(tx pgx.Tx) error {
		var active bool
		err := tx.QueryRow(ctx, `SELECT active FROM users WHERE id = $1 FOR UPDATE`, row.UserID).Scan(&active)
		if errors.Is(err, pgx.ErrNoRows) || (err == nil && !active) {
			// A deactivated user (or one being deleted) starts nothing.
			return fmt.Errorf("user %s: %w", row.UserID, ErrNotFound)
		} else if err != nil {
			return fmt.Errorf("lock user %s: %w", row.UserID, err)
		}
		if templateExists != nil {
			if err := lockTemplate(ctx, tx, row.Namespace, row.Template, false); err != nil {
				return err
			}
			if err := templateExists(ctx); err != nil {
				return err
			}
		}
		override, err := getQuotaOverride(ctx, tx, row.UserID)
		if err != nil {
			return err
		}
		usage, err := usageOf(ctx, tx, row.UserID, "")
		if err != nil {
			return err
		}
		if err := override.Apply(def).Check(usage, true, row.CPUMillis, row.MemoryBytes); err != nil {
			if errors.As(err, &exceeded) {
				return publishQuotaExceeded(ctx, tx, row.Username, exceeded)
			}
			return err
		}
		row.State, row.Phase = kubeapi.StateRunning, kubeapi.PhasePending
		err = tx.QueryRow(ctx, `INSERT INTO sessions (id, namespace, user_id, username, template, state, phase,
				node_name, cpu_millis, memory_bytes, spec)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) RETURNING created_at, updated_at`,
			row.ID, row.Namespace, row.UserID, row.Username, row.Template, row.State, row.Phase, row.NodeName,
			row.CPUMillis, row.MemoryBytes, spec).Scan(&row.CreatedAt, &row.UpdatedAt)
		if err != nil {
			var pgErr interface{ SQLState() string }
			if errors.As(err, &pgErr) && pgErr.SQLState() == "23505" {
				return fmt.Errorf("session %s: %w: the name is taken", row.ID, ErrConflict)
			}
			return fmt.Errorf("insert session %s: %w", row.ID, err)
		}
		_, err = Publish(ctx, tx, Event{Type: EventSessionCreated, Data: row.EventData("")})
		return err
	})
	if err != nil {
		return err
	}
	if exceeded != nil {
		return exceeded
	}
	return nil
}

func publishQuotaExceeded(ctx context.Context, tx pgx.Tx, username string, e *QuotaExceededError) error {
	_, err := Publish(ctx, tx, Event{Type: EventQuotaExceeded,
		Data: QuotaExceededData{User: username, Resource: e.Resource, Limit: e.Limit, Used: e.Used}})
	return err
}

// SessionTransition is one change of a session's recorded state, written
// with the event that reports it.
type SessionTransition struct {
	State    string // new desired state; "" keeps it
	Phase    string // new phase; "" keeps it
	Message  string // why (kept as given, also when empty)
	NodeName *string
	// Event is published in the same transaction when set (a session.*
	// type), with Reason as its reason.
	Event  EventType
	Reason string
	// WakeQuota, when set, re-checks the user's quota (this default, with
	// the user's overrides) first, as waking a hibernated session takes its
	// CPU and memory back: a *QuotaExceededError is returned, the row left
	// unchanged and quota.exceeded committed when it would be broken.
	WakeQuota *Quota
}

// TransitionSession applies t to session id in one transaction and returns
// the updated row. A session that has ended (Failed or Terminated) takes no
// further transitions: ErrSessionEnded.
func (s *Store) TransitionSession(ctx context.Context, id string, t SessionTransition) (SessionRow, error) {
	var (
		row      SessionRow
		exceeded *QuotaExceededError
	)
	err := s.InTx(ctx, func(tx pgx.Tx) error {
		var err error
		row, err = scanSession(tx.QueryRow(ctx, `SELECT `+sessionColumns+` FROM sessions WHERE id = $1 FOR UPDATE`, id))
		if err != nil {
			return fmt.Errorf("session %s: %w", id, err)
		}
		if !row.Live() {
			return fmt.Errorf("session %s is %s: %w", id, row.Phase, ErrSessionEnded)
		}
		if t.WakeQuota != nil {
			if err := checkWake(ctx, tx, row, *t.WakeQuota, &exceeded); err != nil || exceeded != nil {
				return err
			}
		}
		if t.State != "" {
			row.State = t.State
		}
		if t.Phase != "" {
			row.Phase = t.Phase
		}
		if t.NodeName != nil {
			row.NodeName = *t.NodeName
		}
		row.Message = t.Message
		err = tx.QueryRow(ctx, `UPDATE sessions SET state = $2, phase = $3, message = $4, node_name = $5,
				updated_at = now(),
				running_at = CASE WHEN $3 = 'Running' AND phase <> 'Running' THEN now() ELSE running_at END,
				ended_at = CASE WHEN $3 IN ('Failed', 'Terminated') THEN now() ELSE ended_at END
			WHERE id = $1 RETURNING updated_at, running_at, ended_at`,
			id, row.State, row.Phase, row.Message, row.NodeName).Scan(&row.UpdatedAt, &row.RunningAt, &row.EndedAt)
		if err != nil {
			return fmt.Errorf("update session %s: %w", id, err)
		}
		if t.Event != "" {
			if _, err := Publish(ctx, tx, Event{Type: t.Event, Data: row.EventData(t.Reason)}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return SessionRow{}, err
	}
	if exceeded != nil {
		return row, exceeded
	}
	return row, nil
}

func checkWake(ctx context.Context, tx pgx.Tx, row SessionRow, def Quota, exceeded **QuotaExceededError) error {
	override, err := getQuotaOverride(ctx, tx, row.UserID)
	if err != nil {
		return err
	}
	usage, err := usageOf(ctx, tx, row.UserID, row.ID)
	if err != nil {
		return err
	}
	// usage leaves the session itself out; adding it back counts it once.
	if err := override.Apply(def).Check(usage, true, row.CPUMillis, row.MemoryBytes); err != nil {
		if errors.As(err, exceeded) {
			return publishQuotaExceeded(ctx, tx, row.Username, *exceeded)
		}
		return err
	}
	return nil
}

// ErrSessionEnded is returned for changes to a session that has failed or
// been terminated.
var ErrSessionEnded = errors.New("session has ended")

// TouchSession records user activity on a live session.
func (s *Store) TouchSession(ctx context.Context, id string) error {
	_, err := s.Pool.Exec(ctx, `UPDATE sessions SET last_activity_at = now() WHERE id = $1`, id)
	if err != nil {
		return fmt.Errorf("touch session %s: %w", id, err)
	}
	return nil
}
