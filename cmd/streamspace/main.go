// Command streamspace is the one StreamSpace Enterprise binary: the API
// server, the Temporal worker, database migrations and the local dev stack.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

const usage = `usage: streamspace <command>

commands:
  server                 run the HTTP API (LISTEN_ADDR, default 127.0.0.1:8080)
  worker                 run the Temporal worker and the event outbox relay
  migrate up|down|status apply, roll back one, or list the database migrations
  dev                    run the whole local stack: PostgreSQL, Temporal + Web UI,
                         migrations, worker and server (Ctrl-C stops it all)
  publish TYPE JSON      publish a catalogued event into the outbox (DATABASE_URL)
  load-webhooks          measure webhook deliveries on a running stack (API, ADMIN,
                         DATABASE_URL; LOAD_RATE, LOAD_SECONDS, LOAD_WEBHOOKS)
  testenv -- CMD ARGS    run CMD with a private PostgreSQL and Temporal dev server
                         (DATABASE_URL and TEMPORAL_ADDRESS set); used by make test
  version                print the version

Configuration comes from environment variables; see README.md.
`

// errConfig marks a configuration error: exit status 2.
var errConfig = errors.New("configuration error")

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.LookupEnv, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run executes one subcommand and returns the process exit status.
func run(ctx context.Context, args []string, lookup func(string) (string, bool), stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	var err error
	switch args[0] {
	case "server":
		err = cmdServer(ctx, lookup, stderr)
	case "worker":
		err = cmdWorker(ctx, lookup, stderr)
	case "migrate":
		err = cmdMigrate(ctx, args[1:], lookup, stdout, stderr)
	case "dev":
		err = cmdDev(ctx, lookup, stdout, stderr)
	case "publish":
		err = cmdPublish(ctx, args[1:], lookup, stdout)
	case "load-webhooks":
		err = cmdLoadWebhooks(ctx, lookup, stdout)
	case "testenv":
		return cmdTestenv(ctx, args[1:], lookup, stdout, stderr)
	case "version":
		fmt.Fprintln(stdout, "streamspace", version())
		return 0
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return 0
	default:
		fmt.Fprintf(stderr, "streamspace: unknown command %q\n\n%s", args[0], usage)
		return 2
	}
	if err != nil {
		fmt.Fprintf(stderr, "streamspace %s: %v\n", args[0], err)
		if errors.Is(err, errConfig) {
			return 2
		}
		return 1
	}
	return 0
}

// configError wraps the problems found in the environment.
func configError(err error) error {
	return fmt.Errorf("%w:\n%w", errConfig, err)
}
