package schemas

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// Refresh-token outcomes other than success.
var (
	ErrRefreshInvalid = errors.New("refresh token invalid or expired")
	// ErrRefreshReused means a rotated token was presented again: someone
	// holds a copy. The whole family has been revoked.
	ErrRefreshReused = errors.New("refresh token reused; session revoked")
)

// RefreshToken is an issued opaque refresh token; Token is only known at
// issue time (the table keeps its SHA-256).
type RefreshToken struct {
	Token     string
	ID        uuid.UUID
	FamilyID  uuid.UUID
	UserID    uuid.UUID
	ExpiresAt time.Time
}

func hashRefresh(token string) []byte {
	sum := sha256.Sum256([]byte(token))
	return sum[:]
}

func newRefresh(userID, family uuid.UUID, ttl time.Duration) (RefreshToken, error) {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return RefreshToken{}, err
	}
	id, err := uuid.NewV7()
	if err != nil {
		return RefreshToken{}, err
	}
	if family == uuid.Nil {
		family = id
	}
	return RefreshToken{Token: "ssr_" + base64.RawURLEncoding.EncodeToString(b[:]), ID: id, FamilyID: family,
		UserID: userID, ExpiresAt: time.Now().Add(ttl)}, nil
}

// execer is what a pool and a transaction have in common.
type execer interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
}

func insertRefresh(ctx context.Context, q execer, rt RefreshToken) error {
	_, err := q.Exec(ctx, `INSERT INTO refresh_tokens (id, family_id, user_id, token_hash, expires_at)
		VALUES ($1, $2, $3, $4, $5)`, rt.ID, rt.FamilyID, rt.UserID, hashRefresh(rt.Token), rt.ExpiresAt)
	return err
}

// IssueRefreshToken starts a new token family for a user (a login).
func (s *Store) IssueRefreshToken(ctx context.Context, userID uuid.UUID, ttl time.Duration) (RefreshToken, error) {
	rt, err := newRefresh(userID, uuid.Nil, ttl)
	if err != nil {
		return RefreshToken{}, err
	}
	if err := insertRefresh(ctx, s.Pool, rt); err != nil {
		return RefreshToken{}, fmt.Errorf("issue refresh token: %w", err)
	}
	return rt, nil
}

// RotateRefreshToken exchanges a valid token for a new one in the same
// family and returns it with the owner's ID. A token already rotated revokes
// the family and returns ErrRefreshReused; an unknown, revoked or expired
// one returns ErrRefreshInvalid.
func (s *Store) RotateRefreshToken(ctx context.Context, token string, ttl time.Duration) (RefreshToken, error) {
	var out RefreshToken
	var reused bool
	err := s.InTx(ctx, func(tx pgx.Tx) error {
		var id, family, user uuid.UUID
		var expires time.Time
		var used, revoked *time.Time
		err := tx.QueryRow(ctx, `SELECT id, family_id, user_id, expires_at, used_at, revoked_at
			FROM refresh_tokens WHERE token_hash = $1 FOR UPDATE`, hashRefresh(token)).
			Scan(&id, &family, &user, &expires, &used, &revoked)
		if errors.Is(err, pgx.ErrNoRows) {
			return ErrRefreshInvalid
		}
		if err != nil {
			return err
		}
		switch {
		case revoked != nil || time.Now().After(expires):
			return ErrRefreshInvalid
		case used != nil:
			reused = true
			_, err := tx.Exec(ctx, `UPDATE refresh_tokens SET revoked_at = now()
				WHERE family_id = $1 AND revoked_at IS NULL`, family)
			return err // commit the revocation
		}
		if _, err := tx.Exec(ctx, `UPDATE refresh_tokens SET used_at = now() WHERE id = $1`, id); err != nil {
			return err
		}
		out, err = newRefresh(user, family, ttl)
		if err != nil {
			return err
		}
		return insertRefresh(ctx, tx, out)
	})
	if err != nil {
		return RefreshToken{}, fmt.Errorf("rotate refresh token: %w", err)
	}
	if reused {
		return RefreshToken{}, ErrRefreshReused
	}
	return out, nil
}

// RevokeRefreshFamily revokes the family of the given token (logout). It
// reports whether the token was known.
func (s *Store) RevokeRefreshFamily(ctx context.Context, token string) (bool, error) {
	tag, err := s.Pool.Exec(ctx, `UPDATE refresh_tokens SET revoked_at = now()
		WHERE revoked_at IS NULL AND family_id = (SELECT family_id FROM refresh_tokens WHERE token_hash = $1)`,
		hashRefresh(token))
	if err != nil {
		return false, fmt.Errorf("revoke refresh tokens: %w", err)
	}
	return tag.RowsAffected() > 0, nil
}

// RevokeUserRefreshTokens revokes every refresh token of a user (password
// change, deactivation).
func RevokeUserRefreshTokens(ctx context.Context, tx pgx.Tx, userID uuid.UUID) error {
	_, err := tx.Exec(ctx, `UPDATE refresh_tokens SET revoked_at = now() WHERE user_id = $1 AND revoked_at IS NULL`, userID)
	return err
}
