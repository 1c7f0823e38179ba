package schemas_test

import (
	"context"
	"log/slog"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/streamspace/enterprise/internal/testenv"
	"github.com/streamspace/enterprise/schemas"
)

func tableExists(t *testing.T, pool *pgxpool.Pool, name string) bool {
	t.Helper()
	var exists bool
	require.NoError(t, pool.QueryRow(context.Background(),
		`SELECT to_regclass($1) IS NOT NULL`, name).Scan(&exists))
	return exists
}

func TestMigrationsUpDownUp(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := testenv.EmptyDB(t)
	m, err := schemas.NewMigrator(pool, slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	defer m.Close()

	applied, err := m.Up(ctx)
	require.NoError(t, err)
	require.NotEmpty(t, applied)
	require.True(t, tableExists(t, pool, "events"))

	again, err := m.Up(ctx)
	require.NoError(t, err)
	require.Empty(t, again, "a second up applies nothing")

	rolledBack, err := m.DownTo(ctx, 0)
	require.NoError(t, err)
	require.Len(t, rolledBack, len(applied))
	require.False(t, tableExists(t, pool, "events"), "down removes what up created")

	reapplied, err := m.Up(ctx)
	require.NoError(t, err)
	require.Len(t, reapplied, len(applied))
	require.True(t, tableExists(t, pool, "events"))

	statuses, err := m.Status(ctx)
	require.NoError(t, err)
	for _, s := range statuses {
		require.False(t, s.AppliedAt.IsZero(), "%s should be applied", s.Source.Path)
	}
}
