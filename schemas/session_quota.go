package schemas

import (
	"context"
	"errors"
	"fmt"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// Quota is what one user's sessions may hold at once. Zero CPUMillis or
// MemoryBytes means no limit on that resource; MaxSessions 0 means the user
// may start none.
type Quota struct {
	MaxSessions int
	CPUMillis   int64
	MemoryBytes int64
}

// QuotaOverride is a user's own limits; nil fields take the default.
type QuotaOverride struct {
	MaxSessions *int
	CPUMillis   *int64
	MemoryBytes *int64
}

// Apply fills the override's unset fields from def.
func (o QuotaOverride) Apply(def Quota) Quota {
	q := def
	if o.MaxSessions != nil {
		q.MaxSessions = *o.MaxSessions
	}
	if o.CPUMillis != nil {
		q.CPUMillis = *o.CPUMillis
	}
	if o.MemoryBytes != nil {
		q.MemoryBytes = *o.MemoryBytes
	}
	return q
}

// Usage is what a user's live sessions hold: every live session counts
// against MaxSessions, and the running or starting ones (not hibernated)
// against CPU and memory.
type Usage struct {
	Sessions    int
	CPUMillis   int64
	MemoryBytes int64
}

// QuotaExceededError says which limit a new or woken session would break.
type QuotaExceededError struct {
	Resource string // "sessions" | "cpu" | "memory"
	Limit    float64
	Used     float64 // including the requested session
}

func (e *QuotaExceededError) Error() string {
	return fmt.Sprintf("quota exceeded: %s limit %g, would use %g", e.Resource, e.Limit, e.Used)
}

// Check returns a *QuotaExceededError when usage plus a session holding
// (cpu, memory) would break q; newSession says whether it adds a session.
// CPU is reported in cores and memory in bytes.
func (q Quota) Check(u Usage, newSession bool, cpu, memory int64) error {
	sessions := u.Sessions
	if newSession {
		sessions++
	}
	switch {
	case sessions > q.MaxSessions:
		return &QuotaExceededError{Resource: "sessions", Limit: float64(q.MaxSessions), Used: float64(sessions)}
	case q.CPUMillis > 0 && u.CPUMillis+cpu > q.CPUMillis:
		return &QuotaExceededError{Resource: "cpu", Limit: float64(q.CPUMillis) / 1000, Used: float64(u.CPUMillis+cpu) / 1000}
	case q.MemoryBytes > 0 && u.MemoryBytes+memory > q.MemoryBytes:
		return &QuotaExceededError{Resource: "memory", Limit: float64(q.MemoryBytes), Used: float64(u.MemoryBytes + memory)}
	}
	return nil
}

// GetQuotaOverride loads a user's own limits (all nil when none are set).
func (s *Store) GetQuotaOverride(ctx context.Context, userID uuid.UUID) (QuotaOverride, error) {
	return getQuotaOverride(ctx, s.Pool, userID)
}

func getQuotaOverride(ctx context.Context, q interface {
	QueryRow(context.Context, string, ...any) pgx.Row
}, userID uuid.UUID) (QuotaOverride, error) {
	var o QuotaOverride
	err := q.QueryRow(ctx, `SELECT max_sessions, cpu_millis, memory_bytes FROM user_quotas WHERE user_id = $1`,
		userID).Scan(&o.MaxSessions, &o.CPUMillis, &o.MemoryBytes)
	if errors.Is(err, pgx.ErrNoRows) {
		return QuotaOverride{}, nil
	}
	if err != nil {
		return QuotaOverride{}, fmt.Errorf("quota of user %s: %w", userID, err)
	}
	return o, nil
}

// SetQuotaOverride replaces a user's own limits (nil fields: the default).
func (s *Store) SetQuotaOverride(ctx context.Context, userID uuid.UUID, o QuotaOverride) error {
	_, err := s.Pool.Exec(ctx, `INSERT INTO user_quotas (user_id, max_sessions, cpu_millis, memory_bytes)
		VALUES ($1, $2, $3, $4)
		ON CONFLICT (user_id) DO UPDATE SET max_sessions = $2, cpu_millis = $3, memory_bytes = $4, updated_at = now()`,
		userID, o.MaxSessions, o.CPUMillis, o.MemoryBytes)
	if err != nil {
		if isForeignKeyViolation(err) {
			return fmt.Errorf("quota of user %s: %w", userID, ErrNotFound)
		}
		return fmt.Errorf("set quota of user %s: %w", userID, err)
	}
	return nil
}

// UsageOf sums a user's live sessions inside tx.
func usageOf(ctx context.Context, tx pgx.Tx, userID uuid.UUID, except string) (Usage, error) {
	var u Usage
	err := tx.QueryRow(ctx, `SELECT count(*),
			coalesce(sum(cpu_millis) FILTER (WHERE state = 'running'), 0),
			coalesce(sum(memory_bytes) FILTER (WHERE state = 'running'), 0)
		FROM sessions WHERE user_id = $1 AND phase NOT IN ('Failed', 'Terminated') AND id <> $2`,
		userID, except).Scan(&u.Sessions, &u.CPUMillis, &u.MemoryBytes)
	if err != nil {
		return Usage{}, fmt.Errorf("session usage of user %s: %w", userID, err)
	}
	return u, nil
}

// UsageOf sums a user's live sessions.
func (s *Store) UsageOf(ctx context.Context, userID uuid.UUID) (Usage, error) {
	var u Usage
	err := s.InTx(ctx, func(tx pgx.Tx) (err error) {
		u, err = usageOf(ctx, tx, userID, "")
		return err
	})
	return u, err
}
