package schemas

import (
	"context"
	"errors"
	"fmt"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgconn"
)

// DeploymentID is this installation's id: random, written once by a
// migration, the same for every replica and across restarts, and different
// for every database (a restored copy of a database keeps it).
func (s *Store) DeploymentID(ctx context.Context) (uuid.UUID, error) {
	var id uuid.UUID
	err := s.Pool.QueryRow(ctx, `SELECT id FROM deployment`).Scan(&id)
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "42P01" { // undefined_table
		return uuid.Nil, fmt.Errorf("deployment id: the database is not migrated (run `streamspace migrate`): %w", err)
	}
	if err != nil {
		return uuid.Nil, fmt.Errorf("deployment id: %w", err)
	}
	return id, nil
}
