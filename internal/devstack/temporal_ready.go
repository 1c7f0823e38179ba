package devstack

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.temporal.io/api/enums/v1"
	"go.temporal.io/api/operatorservice/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	sdklog "go.temporal.io/sdk/log"

	"github.com/streamspace/enterprise/internal/localproc"
)

// waitReady polls until the frontend is healthy, the namespace exists and
// carries the search attributes (adding those an existing DB file lacks),
// and the UI (if any) accepts connections.
func (t *Temporal) waitReady(ctx context.Context, uiPort int, saTypes map[string]enums.IndexedValueType) error {
	delay := 50 * time.Millisecond
	var last error
	for {
		select {
		case <-t.proc.Exited():
			return fmt.Errorf("process exited: %v", t.proc.Err())
		default:
		}
		if last = t.checkReady(ctx, uiPort, saTypes); last == nil {
			return nil
		}
		select {
		case <-t.proc.Exited():
			return fmt.Errorf("process exited: %v", t.proc.Err())
		case <-ctx.Done():
			return fmt.Errorf("%w (last check: %v)", ctx.Err(), last)
		case <-time.After(delay):
		}
		delay = localproc.Backoff(delay, time.Second)
	}
}

func (t *Temporal) checkReady(ctx context.Context, uiPort int, saTypes map[string]enums.IndexedValueType) error {
	port, _ := strconv.Atoi(t.address[strings.LastIndexByte(t.address, ':')+1:])
	if !localproc.PortAccepts(port, time.Second) {
		return errors.New("frontend port not accepting connections yet")
	}
	actx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	c, err := client.DialContext(actx, client.Options{
		HostPort:  t.address,
		Namespace: t.namespace,
		Logger:    sdklog.NewStructuredLogger(slog.New(slog.DiscardHandler)),
	})
	if err != nil {
		return err
	}
	defer c.Close()
	if _, err := c.CheckHealth(actx, &client.CheckHealthRequest{}); err != nil {
		return err
	}
	if _, err := c.WorkflowService().DescribeNamespace(actx, &workflowservice.DescribeNamespaceRequest{Namespace: t.namespace}); err != nil {
		return fmt.Errorf("namespace %q: %w", t.namespace, err)
	}
	if len(saTypes) > 0 {
		if err := ensureSearchAttributes(actx, c, t.namespace, saTypes, t.logger); err != nil {
			return err
		}
	}
	if uiPort > 0 && !localproc.PortAccepts(uiPort, time.Second) {
		return errors.New("web UI not accepting connections yet")
	}
	return nil
}

// ensureSearchAttributes registers the attributes the namespace lacks (the
// dev server only registers them when it creates the namespace, so an
// existing DB file misses ones added later) and fails on a type mismatch.
func ensureSearchAttributes(ctx context.Context, c client.Client, ns string, want map[string]enums.IndexedValueType, logger *slog.Logger) error {
	resp, err := c.OperatorService().ListSearchAttributes(ctx, &operatorservice.ListSearchAttributesRequest{Namespace: ns})
	if err != nil {
		return fmt.Errorf("list search attributes: %w", err)
	}
	missing := map[string]enums.IndexedValueType{}
	for name, typ := range want {
		have, ok := resp.GetCustomAttributes()[name]
		switch {
		case !ok:
			missing[name] = typ
		case have != typ:
			return fmt.Errorf("search attribute %s is registered as %s, want %s (delete the Temporal DB file to start afresh)", name, have, typ)
		}
	}
	if len(missing) == 0 {
		return nil
	}
	logger.Info("registering search attributes missing from the Temporal database", "namespace", ns, "names", slices.Sorted(maps.Keys(missing)))
	_, err = c.OperatorService().AddSearchAttributes(ctx, &operatorservice.AddSearchAttributesRequest{Namespace: ns, SearchAttributes: missing})
	if err != nil {
		return fmt.Errorf("add search attributes: %w", err)
	}
	return errors.New("search attributes added; re-checking")
}

// parseSearchAttributes maps type names (case-insensitive, as the CLI
// accepts them) to enum values, failing early on unknown types.
func parseSearchAttributes(in map[string]string) (map[string]enums.IndexedValueType, error) {
	out := make(map[string]enums.IndexedValueType, len(in))
	for name, typ := range in {
		var v enums.IndexedValueType
		for short, ord := range enums.IndexedValueType_shorthandValue {
			if strings.EqualFold(short, typ) {
				v = enums.IndexedValueType(ord)
			}
		}
		if v == enums.INDEXED_VALUE_TYPE_UNSPECIFIED {
			return nil, fmt.Errorf("search attribute %s: unknown type %q (want Text, Keyword, Int, Double, Bool, Datetime or KeywordList)", name, typ)
		}
		out[name] = v
	}
	return out, nil
}
