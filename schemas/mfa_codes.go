package schemas

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// One-time codes sent by SMS or email (migration 00008). The caller makes
// the code, its salt and hash and compares them (internal/mfa); the store
// keeps one live code per method, counts tries and sends, and uses the
// database clock for every expiry, so replicas with skewed clocks agree.

// MFACode is a sent code, without its hash.
type MFACode struct {
	ID         int64
	MethodID   int64
	Attempts   int
	CreatedAt  time.Time
	ExpiresAt  time.Time
	ConsumedAt *time.Time
}

// ErrThrottled is returned (as a *ThrottledError) when a code was asked for
// too soon or too often.
var ErrThrottled = errors.New("too many codes requested")

// ErrNoCode is returned by CheckMFACode when the method has no code that can
// still be tried: none was sent, it expired, it was used, a newer one
// replaced it or its tries are spent. The user asks for a new one.
var ErrNoCode = errors.New("no valid code; request a new one")

// ThrottledError says when the next code may be sent. errors.Is(err,
// ErrThrottled) holds for it.
type ThrottledError struct {
	RetryAfter time.Duration
}

func (e *ThrottledError) Error() string {
	return fmt.Sprintf("%s; retry in %s", ErrThrottled, e.RetryAfter.Round(time.Second))
}

// Is makes errors.Is(err, ErrThrottled) true.
func (e *ThrottledError) Is(target error) bool { return target == ErrThrottled }

// CodeThrottle limits sending codes for one method: at least MinInterval
// between two, at most MaxSends within any Window. Zero fields do not limit.
type CodeThrottle struct {
	MinInterval time.Duration
	MaxSends    int
	Window      time.Duration
}

// codeRetention is how long sent codes are kept at least, for the throttle's
// counts; older ones are pruned when the method's next code is issued.
const codeRetention = 24 * time.Hour

// intervalMicros is d as a bigint of microseconds, for `$n * interval '1
// microsecond'` (PostgreSQL's interval resolution).
func intervalMicros(d time.Duration) int64 { return d.Microseconds() }

// IssueMFACode stores a new code for a method, valid for ttl, and returns it.
// The method's row is locked for the transaction, so concurrent requests are
// throttled one after the other: a request within throttle.MinInterval of
// the last code, or after throttle.MaxSends codes within throttle.Window,
// gets a *ThrottledError saying when to retry and stores nothing. Otherwise
// the method's earlier live codes are consumed (only the newest code works)
// and codes older than a day (or than the window) are pruned. ErrNotFound
// when the method does not exist.
func (s *Store) IssueMFACode(ctx context.Context, methodID int64, salt, hash []byte, ttl time.Duration,
	throttle CodeThrottle) (MFACode, error) {
	var c MFACode
	err := s.InTx(ctx, func(tx pgx.Tx) error {
		var one int
		err := tx.QueryRow(ctx, `SELECT 1 FROM mfa_methods WHERE id = $1 FOR UPDATE`, methodID).Scan(&one)
		if errors.Is(err, pgx.ErrNoRows) {
			return ErrNotFound
		}
		if err != nil {
			return err
		}
		if wait, err := codeThrottleWait(ctx, tx, methodID, throttle); err != nil {
			return err
		} else if wait > 0 {
			return &ThrottledError{RetryAfter: wait}
		}
		keep := max(codeRetention, throttle.Window, throttle.MinInterval)
		if _, err := tx.Exec(ctx, `DELETE FROM mfa_codes
			WHERE method_id = $1 AND created_at < now() - $2::bigint * interval '1 microsecond'`, methodID, intervalMicros(keep)); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `UPDATE mfa_codes SET consumed_at = now()
			WHERE method_id = $1 AND consumed_at IS NULL`, methodID); err != nil {
			return err
		}
		return tx.QueryRow(ctx, `INSERT INTO mfa_codes (method_id, code_hash, salt, expires_at)
			VALUES ($1, $2, $3, now() + $4::bigint * interval '1 microsecond')
			RETURNING id, method_id, attempts, created_at, expires_at, consumed_at`,
			methodID, hash, salt, intervalMicros(ttl)).Scan(&c.ID, &c.MethodID, &c.Attempts, &c.CreatedAt, &c.ExpiresAt, &c.ConsumedAt)
	})
	if err != nil {
		return MFACode{}, fmt.Errorf("issue code for mfa method %d: %w", methodID, err)
	}
	return c, nil
}

// codeThrottleWait answers how long the method must wait before its next
// code (≤ 0: it may be sent now), by the database clock.
func codeThrottleWait(ctx context.Context, tx pgx.Tx, methodID int64, t CodeThrottle) (time.Duration, error) {
	if t.MinInterval <= 0 && (t.MaxSends <= 0 || t.Window <= 0) {
		return 0, nil
	}
	// last is the newest code; nth the MaxSends-th newest: while it lies
	// within the window, MaxSends codes do. Sending is allowed again once it
	// leaves the window.
	var now time.Time
	var last, nth *time.Time
	err := tx.QueryRow(ctx, `SELECT now(),
			(SELECT max(created_at) FROM mfa_codes WHERE method_id = $1),
			(SELECT created_at FROM mfa_codes WHERE method_id = $1
				ORDER BY created_at DESC, id DESC OFFSET greatest($2::int - 1, 0) LIMIT 1)`,
		methodID, t.MaxSends).Scan(&now, &last, &nth)
	if err != nil {
		return 0, err
	}
	var wait time.Duration
	if t.MinInterval > 0 && last != nil {
		wait = last.Add(t.MinInterval).Sub(now)
	}
	if t.MaxSends > 0 && t.Window > 0 && nth != nil {
		wait = max(wait, nth.Add(t.Window).Sub(now))
	}
	return wait, nil
}

// CheckMFACode tries a code against the method's newest live code: not
// consumed, not expired by the database clock, fewer than maxAttempts tries.
// Without one it answers ErrNoCode. Every try counts, right or wrong; a
// match consumes the code, so it works once. The code's row is locked while
// match runs, so two requests with the same code cannot both succeed.
func (s *Store) CheckMFACode(ctx context.Context, methodID int64, maxAttempts int,
	match func(salt, hash []byte) bool) (bool, error) {
	var ok bool
	err := s.InTx(ctx, func(tx pgx.Tx) error {
		var id int64
		var salt, hash []byte
		err := tx.QueryRow(ctx, `SELECT id, salt, code_hash FROM mfa_codes
			WHERE method_id = $1 AND consumed_at IS NULL AND expires_at > now() AND attempts < $2
			ORDER BY created_at DESC, id DESC LIMIT 1 FOR UPDATE`, methodID, maxAttempts).Scan(&id, &salt, &hash)
		if errors.Is(err, pgx.ErrNoRows) {
			return ErrNoCode
		}
		if err != nil {
			return err
		}
		ok = match(salt, hash)
		_, err = tx.Exec(ctx, `UPDATE mfa_codes SET attempts = attempts + 1,
				consumed_at = CASE WHEN $2 THEN now() END
			WHERE id = $1`, id, ok)
		return err
	})
	if err != nil {
		return false, fmt.Errorf("check code for mfa method %d: %w", methodID, err)
	}
	return ok, nil
}
