package server

import (
	"context"
	"fmt"
	"log/slog"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/client"
	tlog "go.temporal.io/sdk/log"
	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/streamspace/enterprise/activities"
	"github.com/streamspace/enterprise/internal/kubestack/kubetest"
	"github.com/streamspace/enterprise/internal/testenv"
	"github.com/streamspace/enterprise/schemas"
	"github.com/streamspace/enterprise/schemas/kubeapi"
	"github.com/streamspace/enterprise/worker"
	"github.com/streamspace/enterprise/worker/sessionctl"
	"github.com/streamspace/enterprise/worker/sessionwatch"
	"github.com/streamspace/enterprise/workflows"
)

// sessionAPI is newAPI's bundle served by a server with a Kubernetes
// namespace of its own (in the package's shared local cluster) and a
// workflow client on a task queue of its own (on the Temporal dev server).
type sessionAPI struct {
	*apiBundle
	kube      *activities.Kube
	temporal  client.Client
	workflows *workflows.Client
	queue     string       // the worker's task queue
	logger    *slog.Logger // the server's and the worker's
}

type sessionAPIOptions struct {
	// lifecycle runs a worker on the task queue and the session controller
	// on the namespace, so sessions really start, run on a kwok node,
	// hibernate, wake and end. Without it workflows are started but nothing
	// runs them.
	lifecycle bool
	// noWatch leaves the session watch out of the lifecycle until the test
	// calls startWatch.
	noWatch  bool
	sessions SessionConfig
	// temporalNamespace overrides the workflow client's namespace.
	temporalNamespace string
}

var searchAttrsOnce sync.Once

func newSessionAPI(t *testing.T, opts sessionAPIOptions) *sessionAPI {
	t.Helper()
	b := newAPI(t)
	cluster := kubetest.Cluster(t)
	kube, err := activities.NewKube(cluster.RESTConfig())
	require.NoError(t, err)
	kube.Namespace = kubetest.Namespace(t, cluster)

	tc := testenv.TemporalClient(t, testenv.TemporalAddress(t))
	wf := &workflows.Client{Temporal: tc, Namespace: testenv.TemporalNamespace(), TaskQueue: "server-test-" + uuid.NewString()}
	searchAttrsOnce.Do(func() { require.NoError(t, wf.EnsureSearchAttributes(context.Background())) })
	wfc := wf
	if opts.temporalNamespace != "" {
		other, err := client.NewLazyClient(client.Options{HostPort: testenv.TemporalAddress(t),
			Namespace: opts.temporalNamespace, Logger: tlog.NewStructuredLogger(slog.New(slog.DiscardHandler))})
		require.NoError(t, err)
		t.Cleanup(other.Close)
		wfc = &workflows.Client{Temporal: other, Namespace: opts.temporalNamespace, TaskQueue: wf.TaskQueue}
	}

	logger := slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))
	cfg := Config{MaxBodyBytes: 1 << 20, RefreshTTL: time.Hour, Sessions: opts.sessions, RateLimits: RateLimitConfig{
		UserLimit: 100000, AdminLimit: 100000, LoginPerAccountIP: 100000, LoginPerAccount: 100000, LoginPerIP: 100000}}
	s := New(cfg, Deps{Logger: logger, Registry: prometheus.NewRegistry(), Store: b.store, Tokens: b.tokens,
		Kube: kube, Workflows: wfc, Secrets: webhookTestBox(t), Outbound: webhookTestOutbound})
	srv := httptest.NewServer(s.Handler())
	t.Cleanup(srv.Close)
	b.srv, b.server = srv, s

	e := &sessionAPI{apiBundle: b, kube: kube, temporal: tc, workflows: wfc, queue: wf.TaskQueue, logger: logger}
	if opts.lifecycle {
		runLifecycle(t, tc, wf.TaskQueue, kube, b.store, cfg.Sessions.quota(), logger)
		if !opts.noWatch {
			e.startWatch()
		}
	}
	return e
}

// runLifecycle runs a worker (the session workflow and activities) and the
// session controller until the test ends.
func runLifecycle(t *testing.T, tc client.Client, queue string, kube *activities.Kube, store *schemas.Store,
	quota schemas.Quota, logger *slog.Logger) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	t.Cleanup(func() {
		cancel()
		wg.Wait()
	})
	wg.Go(func() {
		_ = worker.Run(ctx, tc, queue, worker.Deps{Store: store, Kube: kube, Quota: quota}, worker.Options{}, logger)
	})
	ctl, err := sessionctl.New(sessionctl.Config{Kube: kube, Workers: 2, Logger: logger})
	require.NoError(t, err)
	wg.Go(func() {
		if err := ctl.Run(ctx); err != nil {
			t.Errorf("session controller: %v", err)
		}
	})
	require.NoError(t, wait.PollUntilContextTimeout(t.Context(), 10*time.Millisecond, 30*time.Second, true,
		func(context.Context) (bool, error) { return ctl.HasSynced(), nil }), "session controller did not sync")
}

// startWatch runs the session watch on the namespace (as the worker does)
// until the test ends, and waits until it has synced.
func (e *sessionAPI) startWatch() {
	t := e.t
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	t.Cleanup(func() {
		cancel()
		wg.Wait()
	})
	watch := sessionwatch.New(sessionwatch.Config{Kube: e.kube, Logger: e.logger, Store: e.store,
		Signaler: &workflows.Client{Temporal: e.temporal, Namespace: testenv.TemporalNamespace(), TaskQueue: e.queue}})
	wg.Go(func() {
		if err := watch.Run(ctx); err != nil {
			t.Errorf("session watch: %v", err)
		}
	})
	require.NoError(t, wait.PollUntilContextTimeout(t.Context(), 10*time.Millisecond, 30*time.Second, true,
		func(context.Context) (bool, error) { return watch.HasSynced(), nil }), "session watch did not sync")
}

// firefoxTemplate is a template body as the API takes it.
func firefoxTemplate(id string) map[string]any {
	return map[string]any{
		"id": id, "display_name": "Firefox", "description": "Web browser", "category": "Web Browsers",
		"base_image":        "lscr.io/linuxserver/firefox:latest",
		"default_resources": map[string]any{"cpu": "500m", "memory": "1Gi"},
		"ports":             []any{map[string]any{"name": "http", "container_port": 3000}},
		"env":               []any{map[string]any{"name": "TZ", "value": "UTC"}},
		"vnc":               map[string]any{"enabled": true, "port": 3000, "protocol": "websocket"},
		"capabilities":      []string{"Network", "Clipboard"},
		"tags":              []string{"browser", "web"},
	}
}

// createTemplate creates a template through the API as the admin.
func (e *sessionAPI) createTemplate(id string) templateJSON {
	e.t.Helper()
	var out templateJSON
	e.callJSON("POST", "/api/templates", e.admin.Token, firefoxTemplate(id), 201, &out)
	return out
}

// waitSession polls GET /api/sessions/{id} as token until ok, and returns
// the last answer.
func (e *sessionAPI) waitSession(id, token, what string, ok func(sessionJSON) bool) sessionJSON {
	e.t.Helper()
	var last sessionJSON
	err := wait.PollUntilContextTimeout(e.t.Context(), 25*time.Millisecond, time.Minute, true, func(context.Context) (bool, error) {
		last = sessionJSON{}
		e.callJSON("GET", "/api/sessions/"+id, token, nil, 200, &last)
		return ok(last), nil
	})
	require.NoError(e.t, err, "session %s never became %s; last: %+v", id, what, last)
	return last
}

// outboxEvents lists the payloads of the events of type typ, oldest first.
func outboxEvents(t *testing.T, store *schemas.Store, typ schemas.EventType) []map[string]any {
	t.Helper()
	rows, err := store.Pool.Query(context.Background(), `SELECT payload FROM events WHERE type = $1 ORDER BY seq`, string(typ))
	require.NoError(t, err)
	defer rows.Close()
	var out []map[string]any
	for rows.Next() {
		var m map[string]any
		require.NoError(t, rows.Scan(&m))
		out = append(out, m)
	}
	require.NoError(t, rows.Err())
	return out
}

// insertSession writes a session row for u directly (no workflow), live or
// ended.
func insertSession(t testing.TB, b *apiBundle, u testUser, template string, ended bool) schemas.SessionRow {
	t.Helper()
	ctx := context.Background()
	ns := "streamspace"
	if b.server.deps.Kube != nil {
		ns = b.server.deps.Kube.Namespace
	}
	row := schemas.SessionRow{ID: newSessionID(u.Username, template), Namespace: ns, UserID: u.ID, Username: u.Username,
		Template: template, CPUMillis: 500, MemoryBytes: 1 << 30,
		Spec: kubeapi.SessionSpec{User: u.Username, Template: template, State: kubeapi.StateRunning}}
	require.NoError(t, b.store.CreateSession(ctx, &row, schemas.Quota{MaxSessions: 1000}, nil))
	if ended {
		var err error
		row, err = b.store.TransitionSession(ctx, row.ID, schemas.SessionTransition{State: kubeapi.StateTerminated,
			Phase: kubeapi.PhaseTerminated, Message: "test"})
		require.NoError(t, err)
	}
	return row
}

// Fixtures of the route table (rbac_test.go), made once per bundle.
var rbacFixtures sync.Map // *apiBundle → *sync.Map of name → string

func rbacOnce(b *apiBundle, name string, make func() string) string {
	m, _ := rbacFixtures.LoadOrStore(b, &sync.Map{})
	fixtures := m.(*sync.Map)
	if v, ok := fixtures.Load(name); ok {
		return v.(string)
	}
	v := make()
	fixtures.Store(name, v)
	return v
}

// rbacTemplate is a template every route test may use.
func rbacTemplate(b *apiBundle) string {
	return rbacOnce(b, "template", func() string { return rbacNewTemplate(b) })
}

// rbacNewTemplate creates a template for a destructive call.
func rbacNewTemplate(b *apiBundle) string {
	id := fmt.Sprintf("rbac-%d", seq.Add(1))
	resp, data := b.call("POST", "/api/templates", b.admin.Token, firefoxTemplate(id))
	require.Equal(b.t, 201, resp.StatusCode, "%s", data)
	return id
}

// rbacLiveSession is a live session of the user (alice), started through
// the API; its workflow takes signals though no worker runs it.
func rbacLiveSession(b *apiBundle) string {
	return rbacOnce(b, "live session", func() string {
		var out sessionJSON
		b.callJSON("POST", "/api/sessions", b.user.Token, map[string]any{"template": rbacTemplate(b)}, 202, &out)
		return out.ID
	})
}

// rbacHomesInUse gives alice, bob and the admin a live session each (whose
// home is in use, so deleting it is refused whatever ran before) and
// answers DELETE /api/users/me/home's path.
func rbacHomesInUse(b *apiBundle) string {
	return rbacOnce(b, "homes in use", func() string {
		for _, u := range []testUser{b.user, b.other, b.admin} {
			b.callJSON("POST", "/api/sessions", u.Token, map[string]any{"template": rbacTemplate(b)}, 202, nil)
		}
		return "/api/users/me/home"
	})
}

// rbacEndedSession is a terminated session of the user (alice).
func rbacEndedSession(b *apiBundle) string {
	return insertSession(b.t, b, b.user, rbacTemplate(b), true).ID
}
