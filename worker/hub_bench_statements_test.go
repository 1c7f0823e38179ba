package worker_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"
)

// statementCounts counts the statements PostgreSQL ran for this database
// from a reset, with pg_stat_statements (loaded by `bin/streamspace
// testenv`), leaving out the benchmark's own polling (SELECT count(*)) but
// counting its publisher's inserts. Without the library it reports nothing.
type statementCounts struct {
	pool *pgxpool.Pool
	ok   bool
}

func countStatements(ctx context.Context, pool *pgxpool.Pool) statementCounts {
	_, err := pool.Exec(ctx, `CREATE EXTENSION IF NOT EXISTS pg_stat_statements`)
	if err == nil {
		_, err = pool.Exec(ctx, `SELECT pg_stat_statements_reset()`)
	}
	return statementCounts{pool: pool, ok: err == nil}
}

// report logs the statements per unit (all, and the five most called) and
// reports the total as a metric.
func (s statementCounts) report(ctx context.Context, b *testing.B, n int, unit string) {
	if !s.ok || n == 0 {
		return
	}
	rows, err := s.pool.Query(ctx, `SELECT calls, left(regexp_replace(query, '\s+', ' ', 'g'), 70)
		FROM pg_stat_statements WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())
			AND query NOT LIKE 'SELECT count(*)%'    -- the benchmark's own polling
		ORDER BY calls DESC`)
	if err != nil {
		b.Logf("pg_stat_statements: %v", err)
		return
	}
	defer rows.Close()
	var total int64
	var top []string
	for rows.Next() {
		var calls int64
		var query string
		if err := rows.Scan(&calls, &query); err != nil {
			b.Logf("pg_stat_statements: %v", err)
			return
		}
		total += calls
		if len(top) < 5 {
			top = append(top, fmt.Sprintf("%.2f %s", float64(calls)/float64(n), query))
		}
	}
	b.ReportMetric(float64(total)/float64(n), "statements/"+unit)
	b.Logf("PostgreSQL statements per %s: %.2f; most called: %s", unit, float64(total)/float64(n), strings.Join(top, " | "))
}
