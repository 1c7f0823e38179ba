package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/streamspace/enterprise/schemas"
)

func cmdMigrate(ctx context.Context, args []string, lookup func(string) (string, bool), stdout, stderr io.Writer) error {
	if len(args) != 1 || (args[0] != "up" && args[0] != "down" && args[0] != "status") {
		return fmt.Errorf("%w: usage: streamspace migrate up|down|status", errConfig)
	}
	cfg, err := readMigrateConfig(lookup)
	if err != nil {
		return configError(err)
	}
	logger := newLogger(cfg.Log, stderr)
	pool, err := schemas.Connect(ctx, cfg.DatabaseURL)
	if err != nil {
		return err
	}
	defer pool.Close()
	if args[0] == "up" {
		return migrateUp(ctx, pool, stdout)
	}
	m, err := schemas.NewMigrator(pool, logger)
	if err != nil {
		return err
	}
	defer m.Close()
	switch args[0] {
	case "down":
		res, err := m.Down(ctx)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "rolled back %s\n", res.Source.Path)
		return nil
	default:
		statuses, err := m.Status(ctx)
		if err != nil {
			return err
		}
		for _, s := range statuses {
			applied := "pending"
			if !s.AppliedAt.IsZero() {
				applied = "applied " + s.AppliedAt.Format("2006-01-02 15:04:05")
			}
			fmt.Fprintf(stdout, "%5d  %-40s %s\n", s.Source.Version, s.Source.Path, applied)
		}
		return nil
	}
}

// migrateUp applies pending migrations and says which.
func migrateUp(ctx context.Context, pool *pgxpool.Pool, out io.Writer) error {
	m, err := schemas.NewMigrator(pool, slog.New(slog.DiscardHandler))
	if err != nil {
		return err
	}
	defer m.Close()
	results, err := m.Up(ctx)
	if err != nil {
		return err
	}
	for _, r := range results {
		fmt.Fprintf(out, "applied %s\n", r.Source.Path)
	}
	if len(results) == 0 {
		fmt.Fprintln(out, "database is up to date")
	}
	return nil
}
