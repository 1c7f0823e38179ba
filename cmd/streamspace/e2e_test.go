package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"
	"go.temporal.io/api/enums/v1"

	"github.com/streamspace/enterprise/internal/kubestack/kubetest"
	"github.com/streamspace/enterprise/internal/testenv"
	"github.com/streamspace/enterprise/internal/wfid"
	"github.com/streamspace/enterprise/schemas"
	"github.com/streamspace/enterprise/workflows"
)

// TestEndToEnd runs `streamspace migrate up`, `worker` and `server` as the
// binary does, against the real PostgreSQL and Temporal dev server, then
// publishes an event in a transaction and watches the DispatchEvents run
// of its batch complete, and checks the server's probes and metrics over HTTP.
func TestEndToEnd(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	pool := testenv.EmptyDB(t)
	cc := pool.Config().ConnConfig
	dbURL := fmt.Sprintf("postgres://%s:%s@%s:%d/%s?sslmode=disable", cc.User, cc.Password, cc.Host, cc.Port, cc.Database)
	addr, workerMetrics := freeAddr(t), freeAddr(t)
	cluster := kubetest.Cluster(t)
	sessionNS := kubetest.Namespace(t, cluster)
	env := lookupFrom(map[string]string{
		"KUBECONFIG":               cluster.Kubeconfig(),
		"ENCRYPTION_KEY":           "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=",
		"WEBHOOK_ALLOWED_CIDRS":    "127.0.0.0/8",
		"SESSION_NAMESPACE":        sessionNS,
		"DATABASE_URL":             dbURL,
		"TEMPORAL_ADDRESS":         testenv.TemporalAddress(t),
		"TEMPORAL_NAMESPACE":       testenv.TemporalNamespace(),
		"TEMPORAL_TASK_QUEUE":      "e2e-" + uuid.NewString(),
		"LISTEN_ADDR":              addr,
		"WORKER_METRICS_ADDR":      workerMetrics,
		"LOG_LEVEL":                "warn",
		"JWT_SECRET":               "e2e-secret-0123456789abcdef0123456789",
		"BOOTSTRAP_ADMIN_PASSWORD": "e2e admin password",
		// the test client is the trusted proxy: X-Forwarded-For picks each
		// request's address in the security walk-through
		"TRUSTED_PROXIES": "127.0.0.1",
	})

	var out testenv.SyncBuffer
	require.Equal(t, 0, run(ctx, []string{"migrate", "up"}, env, &out, &out), out.String())
	require.Contains(t, out.String(), "applied 00001_events.sql")
	testenv.SpreadIDs(t, pool, "ip_allowlist") // ipgrant/<id> is unique on the shared dev server
	// TEMPORAL_WORKFLOW_ID_PREFIX is unset: the prefix comes from the
	// deployment id the migrations stored.
	deployment, err := (&schemas.Store{Pool: pool}).DeploymentID(ctx)
	require.NoError(t, err)
	prefix := wfid.FromDeployment(deployment)

	var wg sync.WaitGroup
	for _, cmd := range []string{"worker", "server"} {
		wg.Go(func() {
			if code := run(ctx, []string{cmd}, env, &out, &out); code != 0 {
				t.Errorf("%s exited %d:\n%s", cmd, code, out.String())
			}
		})
	}
	t.Cleanup(func() {
		cancel()
		wg.Wait()
	})

	// Listen for the event's completion before publishing it.
	listener, err := pgx.Connect(ctx, dbURL)
	require.NoError(t, err)
	defer listener.Close(context.Background())
	_, err = listener.Exec(ctx, "LISTEN "+schemas.FinishedChannel)
	require.NoError(t, err)

	// Publish through the CLI, which writes the event in a transaction.
	var pubOut testenv.SyncBuffer
	require.Equal(t, 0, run(ctx, []string{"publish", "node.unhealthy", `{"node_name":"worker-1","reason":"NotReady"}`},
		env, &pubOut, &pubOut), pubOut.String())
	fields := strings.Fields(pubOut.String()) // published node.unhealthy event <id>
	require.GreaterOrEqual(t, len(fields), 4, pubOut.String())
	id, err := uuid.Parse(fields[3])
	require.NoError(t, err, pubOut.String())
	store := &schemas.Store{Pool: pool}

	waitCtx, waitCancel := context.WithTimeout(ctx, 60*time.Second)
	defer waitCancel()
	for {
		n, err := listener.WaitForNotification(waitCtx)
		require.NoError(t, err, "the event's DispatchEvents run did not finish; output:\n%s", out.String())
		if n.Payload == id.String() {
			break
		}
	}

	// The event row names the batch run that handled it; wait for that run
	// to close.
	ev, err := store.GetEvent(ctx, id)
	require.NoError(t, err)
	require.Equal(t, schemas.DispatchCompleted, ev.DispatchState)
	require.True(t, strings.HasPrefix(ev.WorkflowID, prefix+"/events/"), ev.WorkflowID)
	require.NotEmpty(t, ev.RunID)
	tc := testenv.TemporalClient(t, testenv.TemporalAddress(t))
	var res workflows.DispatchBatchResult
	require.NoError(t, tc.GetWorkflow(waitCtx, ev.WorkflowID, ev.RunID).Get(waitCtx, &res))
	// Its batch may also hold the bootstrap admin's user.created.
	require.GreaterOrEqual(t, res.Handled, 1, "%+v", res)
	require.Zero(t, res.Skipped+res.Failed, "%+v", res)
	desc, err := tc.DescribeWorkflowExecution(ctx, ev.WorkflowID, ev.RunID)
	require.NoError(t, err)
	require.Equal(t, enums.WORKFLOW_EXECUTION_STATUS_COMPLETED, desc.WorkflowExecutionInfo.Status)
	require.Equal(t, "DispatchEvents", desc.WorkflowExecutionInfo.Type.Name)
	attrs := desc.WorkflowExecutionInfo.SearchAttributes.GetIndexedFields()
	require.Contains(t, string(attrs[workflows.EventTypesAttr.GetName()].GetData()), "node.unhealthy",
		"the run carries the event type search attribute")

	get := func(url string) (int, string) {
		resp, err := http.Get(url)
		require.NoError(t, err)
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		return resp.StatusCode, string(body)
	}
	// The server listens once it has migrated and bootstrapped: wait for
	// it to accept a connection.
	require.NoError(t, waitListening(waitCtx, addr), out.String())
	status, body := get("http://" + addr + "/readyz")
	require.Equal(t, http.StatusOK, status, body)
	require.JSONEq(t, `{"status":"ready","checks":{"postgres":{"status":"ok"},"temporal":{"status":"ok"},
		"kubernetes":{"status":"ok"}}}`, body)

	walkThroughIdentity(t, "http://"+addr)
	walkThroughSecurity(t, "http://"+addr)
	hook := startWebhookWalkThrough(t, "http://"+addr)
	walkThroughSessions(t, "http://"+addr, tc, prefix)
	hook.check(t)

	status, body = get("http://" + addr + "/metrics")
	require.Equal(t, http.StatusOK, status)
	requireMetric(t, body, `streamspace_http_requests_total{method="GET",route="/readyz",status="200"} 1`)
	requireMetric(t, body, `temporal_request_total{`)

	status, body = get("http://" + workerMetrics + "/metrics")
	require.Equal(t, http.StatusOK, status)
	// Our event, and the user.created events of the walk-through.
	if !regexp.MustCompile(`(?m)^streamspace_outbox_dispatched_total [1-9][0-9]*$`).MatchString(body) {
		t.Error("the worker's metrics do not count the dispatched events")
	}
	requireMetric(t, body, `temporal_workflow_completed_total{`)
	requireMetric(t, body, `temporal_local_activity_execution_latency_seconds_bucket{`)
}

// The walk-through of docs/identity.md, over HTTP against the running server: log in as
// the bootstrap admin, create a user, log in as that user, get 403 on an
// admin route, and find all of it in the audit log.
func walkThroughIdentity(t *testing.T, api string) {
	t.Helper()
	do := func(method, path, token, body string) (int, map[string]any) {
		req, err := http.NewRequest(method, api+path, strings.NewReader(body))
		require.NoError(t, err)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		var out map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&out)
		return resp.StatusCode, out
	}
	login := func(user, pw string) string {
		status, out := do("POST", "/api/auth/login", "", fmt.Sprintf(`{"username":%q,"password":%q}`, user, pw))
		require.Equal(t, http.StatusOK, status, "%v", out)
		return out["access_token"].(string)
	}
	admin := login("admin", "e2e admin password")
	status, out := do("POST", "/api/admin/users", admin, `{"username":"alice","password":"a long passphrase"}`)
	require.Equal(t, http.StatusCreated, status, "%v", out)
	alice := login("alice", "a long passphrase")
	status, out = do("GET", "/api/me", alice, "")
	require.Equal(t, http.StatusOK, status)
	require.Equal(t, "alice", out["username"])
	status, out = do("GET", "/api/admin/users", alice, "")
	require.Equal(t, http.StatusForbidden, status)
	require.Equal(t, "FORBIDDEN", out["error"].(map[string]any)["code"])

	status, out = do("GET", "/api/admin/audit?actor=admin", admin, "")
	require.Equal(t, http.StatusOK, status, "%v", out)
	actions := map[string]bool{}
	for _, e := range out["entries"].([]any) {
		actions[e.(map[string]any)["action"].(string)] = true
	}
	require.True(t, actions["auth.login"], "the admin's login is audited: %v", actions)
	require.True(t, actions["POST /api/admin/users"], "the user creation is audited: %v", actions)
}

func requireMetric(t *testing.T, exposition, want string) {
	t.Helper()
	if !strings.Contains(exposition, want) {
		t.Errorf("metrics lack %s", want)
	}
}

// waitListening returns once something accepts TCP connections on addr,
// or when ctx ends.
func waitListening(ctx context.Context, addr string) error {
	var d net.Dialer
	for {
		conn, err := d.DialContext(ctx, "tcp", addr)
		if err == nil {
			return conn.Close()
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("nothing listens on %s: %w", addr, err)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// freeAddr is an address for a listener the binary opens later (see
// testenv.FreeAddr: a port from outside the ephemeral range, which the
// cluster and the other packages' servers starting meanwhile cannot take).
func freeAddr(t testing.TB) string {
	t.Helper()
	return testenv.FreeAddr(t)
}
