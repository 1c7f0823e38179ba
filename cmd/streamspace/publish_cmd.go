package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"reflect"

	"github.com/jackc/pgx/v5"

	"github.com/streamspace/enterprise/schemas"
)

// cmdPublish publishes one catalogued event into the outbox, the way a
// feature does inside its own transaction; the relay then dispatches it.
// Operators use it to try a subscription or to re-announce a change.
func cmdPublish(ctx context.Context, args []string, lookup func(string) (string, bool), stdout io.Writer) error {
	if len(args) != 2 {
		return fmt.Errorf("%w: usage: streamspace publish EVENT_TYPE 'JSON_DATA'\n"+
			"  e.g. streamspace publish node.unhealthy '{\"node_name\":\"worker-1\",\"reason\":\"NotReady\"}'", errConfig)
	}
	spec, ok := schemas.LookupEvent(schemas.EventType(args[0]))
	if !ok {
		return fmt.Errorf("%w: %q is not a catalogued event type", errConfig, args[0])
	}
	data := reflect.New(spec.Payload).Interface()
	dec := json.NewDecoder(bytes.NewReader([]byte(args[1])))
	dec.DisallowUnknownFields()
	if err := dec.Decode(data); err != nil {
		return fmt.Errorf("%w: %s data: %v", errConfig, spec.Type, err)
	}
	cfg, err := readMigrateConfig(lookup)
	if err != nil {
		return configError(err)
	}
	pool, err := schemas.Connect(ctx, cfg.DatabaseURL)
	if err != nil {
		return err
	}
	defer pool.Close()
	store := &schemas.Store{Pool: pool}
	return store.InTx(ctx, func(tx pgx.Tx) error {
		id, err := schemas.Publish(ctx, tx, schemas.Event{Type: spec.Type, Data: data})
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "published %s event %s (GET /api/events/%s names the run that handles it)\n", spec.Type, id, id)
		return nil
	})
}
