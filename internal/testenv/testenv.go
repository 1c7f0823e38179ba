// Package testenv gives integration tests their real dependencies: a fresh,
// migrated PostgreSQL database per test and a client of the Temporal dev
// server. `make test` (streamspace testenv) starts both and exports
// DATABASE_URL and TEMPORAL_ADDRESS; a test run without them fails with a
// message saying so, rather than skipping silently.
package testenv

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"os"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/streamspace/enterprise/schemas"
)

func mustEnv(t testing.TB, name string) string {
	t.Helper()
	v := os.Getenv(name)
	if v == "" {
		t.Fatalf("%s is not set: run the integration tests with `make test` "+
			"(or `go run ./cmd/streamspace testenv -- go test ./...`)", name)
	}
	return v
}

// EmptyDB creates a new, empty database for this test, dropped when it ends.
func EmptyDB(t testing.TB) *pgxpool.Pool {
	t.Helper()
	ctx := context.Background()
	base := mustEnv(t, "DATABASE_URL")
	admin, err := pgx.Connect(ctx, base)
	if err != nil {
		t.Fatalf("connect to DATABASE_URL: %v", err)
	}
	defer admin.Close(ctx)
	var b [6]byte
	_, _ = rand.Read(b[:])
	name := "test_" + hex.EncodeToString(b[:])
	if _, err := admin.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatalf("create database: %v", err)
	}
	cfg, err := pgxpool.ParseConfig(base)
	if err != nil {
		t.Fatal(err)
	}
	cfg.ConnConfig.Database = name
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		t.Fatalf("open test database: %v", err)
	}
	t.Cleanup(func() {
		pool.Close()
		conn, err := pgx.Connect(ctx, base)
		if err != nil {
			t.Errorf("drop test database: %v", err)
			return
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, fmt.Sprintf("DROP DATABASE %s WITH (FORCE)", name)); err != nil {
			t.Errorf("drop test database: %v", err)
		}
	})
	return pool
}

// DB is EmptyDB with every migration applied.
func DB(t testing.TB) *pgxpool.Pool {
	t.Helper()
	pool := EmptyDB(t)
	m, err := schemas.NewMigrator(pool, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if _, err := m.Up(context.Background()); err != nil {
		t.Fatalf("migrate: %v", err)
	}
	return pool
}
