package schemas

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// MFA login challenges (migration 00008): the password was right and the
// login waits for its second factor. The client holds the mfa_token; the
// table keeps its SHA-256 (the caller hashes). Expiry is by the database
// clock.

// MFAChallenge is a pending login.
type MFAChallenge struct {
	ID        int64
	UserID    uuid.UUID
	ClientIP  netip.Addr // where the password was given; invalid when unknown
	Attempts  int
	CreatedAt time.Time
	ExpiresAt time.Time
}

const mfaChallengeColumns = `id, user_id, client_ip, attempts, created_at, expires_at`

func scanMFAChallenge(row pgx.Row) (MFAChallenge, error) {
	var c MFAChallenge
	var ip *netip.Prefix
	err := row.Scan(&c.ID, &c.UserID, &ip, &c.Attempts, &c.CreatedAt, &c.ExpiresAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return MFAChallenge{}, ErrNotFound
	}
	if err != nil {
		return MFAChallenge{}, err
	}
	if ip != nil {
		c.ClientIP = ip.Addr()
	}
	return c, nil
}

// challengePruneBatch bounds the expired challenges one CreateMFAChallenge
// deletes, so a backlog costs no single login much; the next ones go on.
const challengePruneBatch = 100

// CreateMFAChallenge stores a challenge for userID valid for ttl, keyed by
// the SHA-256 of its token. It also deletes a batch of challenges that
// expired more than a day ago (by the expiry index). ErrNotFound when the
// user does not exist.
func (s *Store) CreateMFAChallenge(ctx context.Context, userID uuid.UUID, tokenHash []byte, clientIP netip.Addr,
	ttl time.Duration) (MFAChallenge, error) {
	var ip *netip.Addr
	if clientIP.IsValid() {
		a := clientIP.Unmap().WithZone("")
		ip = &a
	}
	if _, err := s.Pool.Exec(ctx, `DELETE FROM mfa_challenges WHERE id IN (
			SELECT id FROM mfa_challenges WHERE expires_at < now() - interval '1 day' LIMIT $1)`,
		challengePruneBatch); err != nil {
		return MFAChallenge{}, fmt.Errorf("prune mfa challenges: %w", err)
	}
	c, err := scanMFAChallenge(s.Pool.QueryRow(ctx, `INSERT INTO mfa_challenges (token_hash, user_id, client_ip, expires_at)
		VALUES ($1, $2, $3, now() + $4::bigint * interval '1 microsecond')
		RETURNING `+mfaChallengeColumns, tokenHash, userID, ip, intervalMicros(ttl)))
	if isForeignKeyViolation(err) {
		err = ErrNotFound
	}
	if err != nil {
		return MFAChallenge{}, fmt.Errorf("create mfa challenge for user %s: %w", userID, err)
	}
	return c, nil
}

// GetMFAChallenge finds the challenge of a token hash; ErrNotFound unless it
// is unused, unexpired and has had fewer than maxAttempts failed tries.
func (s *Store) GetMFAChallenge(ctx context.Context, tokenHash []byte, maxAttempts int) (MFAChallenge, error) {
	c, err := scanMFAChallenge(s.Pool.QueryRow(ctx, `SELECT `+mfaChallengeColumns+` FROM mfa_challenges
		WHERE token_hash = $1 AND consumed_at IS NULL AND expires_at > now() AND attempts < $2`,
		tokenHash, maxAttempts))
	if err != nil {
		return MFAChallenge{}, fmt.Errorf("get mfa challenge: %w", err)
	}
	return c, nil
}

// FailMFAChallenge counts a wrong second factor against the challenge and
// answers its failed tries so far; ErrNotFound when it does not exist.
func (s *Store) FailMFAChallenge(ctx context.Context, id int64) (attempts int, err error) {
	err = s.Pool.QueryRow(ctx, `UPDATE mfa_challenges SET attempts = attempts + 1 WHERE id = $1 RETURNING attempts`,
		id).Scan(&attempts)
	if errors.Is(err, pgx.ErrNoRows) {
		err = ErrNotFound
	}
	if err != nil {
		return 0, fmt.Errorf("fail mfa challenge %d: %w", id, err)
	}
	return attempts, nil
}

// ConsumeMFAChallenge uses the challenge up when its second factor was
// right. It answers true only for the first caller, and only while the
// challenge is unexpired: of two requests racing to complete one login, one
// gets tokens.
func (s *Store) ConsumeMFAChallenge(ctx context.Context, id int64) (bool, error) {
	tag, err := s.Pool.Exec(ctx, `UPDATE mfa_challenges SET consumed_at = now()
		WHERE id = $1 AND consumed_at IS NULL AND expires_at > now()`, id)
	if err != nil {
		return false, fmt.Errorf("consume mfa challenge %d: %w", id, err)
	}
	return tag.RowsAffected() == 1, nil
}
