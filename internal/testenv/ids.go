package testenv

import (
	"context"
	"math/rand/v2"
	"strconv"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// SpreadIDs restarts the identity column id of table at a random value.
// Every test database counts from 1, but all tests share one Temporal dev
// server, so workflow IDs derived from such ids (ipgrant/<id>) would meet
// runs of another test's database; spread apart they do not.
func SpreadIDs(t testing.TB, pool *pgxpool.Pool, table string) {
	t.Helper()
	start := 1_000_000 + rand.Int64N(1<<40)
	sql := "ALTER TABLE " + pgx.Identifier{table}.Sanitize() + " ALTER COLUMN id RESTART WITH " + strconv.FormatInt(start, 10)
	if _, err := pool.Exec(context.Background(), sql); err != nil {
		t.Fatalf("spread ids of %s: %v", table, err)
	}
}
