package schemas

import (
	"context"
	"fmt"
	"time"

	"github.com/google/uuid"
)

// Inputs of the alert rules (migration 00008): occurrences counted in a
// sliding window (security_signals), and the addresses and clients each user
// has logged in from (user_known_clients).

// SignalRetention is how long an occurrence is kept: the longest window a
// rule may count over. Each CountSignal prunes its subject's older rows;
// PruneSignals (hourly, the security-signals-prune schedule) everyone's.
const SignalRetention = 24 * time.Hour

// CountSignal records one occurrence of kind (e.g. "login_failure_account")
// for subject (e.g. a lower-cased username) now, and returns how many
// occurred within window before now, this one included: a sliding window,
// not fixed buckets, so a burst straddling a bucket boundary still counts
// whole. One statement (one round trip) inserts, counts and prunes the
// subject's rows older than SignalRetention.
//
// Concurrent calls for one subject may each miss the other's row (the count
// reads the statement's snapshot), so a rule should fire on count >=
// threshold, not ==: the next occurrence then catches up.
func (s *Store) CountSignal(ctx context.Context, kind, subject string, window time.Duration) (int, error) {
	if window <= 0 || window > SignalRetention {
		return 0, fmt.Errorf("count %s signal: window %s is outside (0, %s]", kind, window, SignalRetention)
	}
	// The CTEs' changes are invisible to the outer SELECT, which therefore
	// counts the earlier rows; + 1 is this occurrence.
	const q = `WITH pruned AS (
			DELETE FROM security_signals
			WHERE kind = $1 AND subject = $2 AND occurred_at < now() - $4::bigint * interval '1 microsecond'
		), added AS (
			INSERT INTO security_signals (kind, subject) VALUES ($1, $2)
		)
		SELECT count(*) + 1 FROM security_signals
		WHERE kind = $1 AND subject = $2 AND occurred_at > now() - $3::bigint * interval '1 microsecond'`
	var n int64
	err := s.Pool.QueryRow(ctx, q, kind, subject, window.Microseconds(), SignalRetention.Microseconds()).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("count %s signal: %w", kind, err)
	}
	return int(n), nil
}

// MaxSignalPruneBatch bounds one PruneSignals call, so deleting a huge
// backlog is many short transactions rather than one that holds its locks
// (and its WAL) for minutes.
const MaxSignalPruneBatch = 10000

// PruneSignals deletes up to limit occurrences older than SignalRetention,
// of any kind and subject, oldest first, and returns how many it deleted.
// CountSignal prunes only the subject it counts, so without this the rows of
// subjects never seen again (a username tried once, an address that moved
// on) would stay for ever. A result below limit means none was left.
func (s *Store) PruneSignals(ctx context.Context, limit int) (int, error) {
	if limit < 1 || limit > MaxSignalPruneBatch {
		return 0, fmt.Errorf("prune security signals: batch %d is outside [1, %d]", limit, MaxSignalPruneBatch)
	}
	// ctid picks the rows the index found (the table has no key); SKIP
	// LOCKED leaves rows another prune is deleting to it.
	tag, err := s.Pool.Exec(ctx, `DELETE FROM security_signals WHERE ctid = ANY (ARRAY(
			SELECT ctid FROM security_signals
			WHERE occurred_at < now() - $1::bigint * interval '1 microsecond'
			ORDER BY occurred_at LIMIT $2 FOR UPDATE SKIP LOCKED))`,
		SignalRetention.Microseconds(), limit)
	if err != nil {
		return 0, fmt.Errorf("prune security signals: %w", err)
	}
	return int(tag.RowsAffected()), nil
}

// Kinds of user_known_clients rows.
const (
	KnownClientIP     = "ip"     // a client address (IPv6 by its /64)
	KnownClientAgent  = "client" // a hash of the User-Agent
	maxKnownClientLen = 128
)

// SeenClient records that userID logged in from value (an address or a
// client) of kind and reports whether value is new for the user, and whether
// the user had no value of that kind before (their first login since the
// feature exists: nothing to compare with, so no alert). One statement:
// an upsert whose outer SELECT still sees the rows as they were before it.
func (s *Store) SeenClient(ctx context.Context, userID uuid.UUID, kind, value string) (firstOfKind, isNew bool, err error) {
	if kind != KnownClientIP && kind != KnownClientAgent {
		return false, false, fmt.Errorf("record known client: unknown kind %q", kind)
	}
	if value == "" || len(value) > maxKnownClientLen {
		return false, false, fmt.Errorf("record known %s: value must be 1 to %d bytes", kind, maxKnownClientLen)
	}
	const q = `WITH up AS (
			INSERT INTO user_known_clients (user_id, kind, value) VALUES ($1, $2, $3)
			ON CONFLICT (user_id, kind, value) DO UPDATE SET last_seen = now()
			RETURNING (xmax = 0) AS inserted
		)
		SELECT NOT EXISTS (SELECT 1 FROM user_known_clients WHERE user_id = $1 AND kind = $2),
			(SELECT inserted FROM up)`
	if err := s.Pool.QueryRow(ctx, q, userID, kind, value).Scan(&firstOfKind, &isNew); err != nil {
		return false, false, fmt.Errorf("record known %s of user %s: %w", kind, userID, err)
	}
	return firstOfKind, isNew, nil
}
