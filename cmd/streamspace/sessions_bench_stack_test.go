package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/client"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/apimachinery/pkg/watch"

	"github.com/streamspace/enterprise/activities"
	"github.com/streamspace/enterprise/internal/kubestack"
	"github.com/streamspace/enterprise/internal/kubestack/kubetest"
	"github.com/streamspace/enterprise/internal/testenv"
	"github.com/streamspace/enterprise/schemas/kubeapi"
)

// sessionBench is the stack the session benchmarks start sessions on: a
// local kube-apiserver with simulated nodes, and the worker and the server
// as separate processes (this test binary re-executed) on a private
// database and task queue, signed in as the admin with a "desktop"
// template.
type sessionBench struct {
	kube      *activities.Kube
	pool      *pgxpool.Pool
	tc        client.Client
	api       *apiClient
	taskQueue string
	children  map[string]*exec.Cmd
	pids      map[string]int
}

func newSessionBench(b *testing.B, nodes int) *sessionBench {
	cluster := kubetest.Start(b, kubestack.Options{Nodes: nodes, InstallCRDs: true, WithoutMetrics: true,
		Node: kubestack.NodeSpec{CPU: "64", Memory: "256Gi", Pods: "110"}})
	kube, err := activities.NewKube(cluster.RESTConfig())
	require.NoError(b, err)
	kube.Namespace = kubetest.Namespace(b, cluster)

	s := &sessionBench{kube: kube, pool: testenv.EmptyDB(b), taskQueue: "bench-" + uuid.NewString(),
		children: map[string]*exec.Cmd{}, pids: map[string]int{"kube-apiserver": cluster.PIDs()["kube-apiserver"]}}
	cc := s.pool.Config().ConnConfig
	addr := freeAddr(b)
	env := append(os.Environ(),
		fmt.Sprintf("DATABASE_URL=postgres://%s:%s@%s:%d/%s?sslmode=disable", cc.User, cc.Password, cc.Host, cc.Port, cc.Database),
		"TEMPORAL_ADDRESS="+testenv.TemporalAddress(b),
		"TEMPORAL_NAMESPACE="+testenv.TemporalNamespace(),
		"TEMPORAL_TASK_QUEUE="+s.taskQueue,
		"TEMPORAL_WORKFLOW_ID_PREFIX="+benchIDPrefix,
		"KUBECONFIG="+cluster.Kubeconfig(),
		"SESSION_NAMESPACE="+kube.Namespace,
		"SESSION_QUOTA_MAX_SESSIONS=1000", "SESSION_QUOTA_CPU=0", "SESSION_QUOTA_MEMORY=0",
		"WEBHOOK_ALLOWED_CIDRS=127.0.0.0/8", "ENCRYPTION_KEY=000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f",
		"LISTEN_ADDR="+addr,
		"LOG_LEVEL=warn",
		"JWT_SECRET=bench-secret-0123456789abcdef0123456789",
		"BOOTSTRAP_ADMIN_PASSWORD=bench admin password",
		"RATE_LIMIT_ADMIN=1000000", "RATE_LIMIT_USER=1000000",
	)
	var out testenv.SyncBuffer
	migrate := exec.Command(os.Args[0])
	migrate.Env = append(slices.Clone(env), childEnv+"=migrate up")
	migrateOut, err := migrate.CombinedOutput()
	require.NoError(b, err, "%s", migrateOut)
	for _, role := range []string{"worker", "server"} {
		cmd := exec.Command(os.Args[0])
		cmd.Env = append(slices.Clone(env), childEnv+"="+role)
		cmd.Stdout, cmd.Stderr = &out, &out
		cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
		require.NoError(b, cmd.Start())
		s.children[role], s.pids[role] = cmd, cmd.Process.Pid
	}
	b.Cleanup(func() {
		for _, c := range s.children {
			_ = c.Process.Signal(syscall.SIGTERM)
			_ = c.Wait()
		}
	})

	s.api = &apiClient{api: "http://" + addr}
	require.NoError(b, wait.PollUntilContextTimeout(b.Context(), 50*time.Millisecond, time.Minute, true,
		func(context.Context) (bool, error) { return s.api.ready(), nil }), "server not ready:\n%s", out.String())
	s.api.token = s.api.login(b, "admin", "bench admin password")
	status, body := s.api.do("POST", "/api/templates", `{"id":"desktop","display_name":"Desktop",
		"base_image":"lscr.io/linuxserver/webtop:latest","default_resources":{"cpu":"500m","memory":"1Gi"}}`)
	require.Equal(b, http.StatusCreated, status, body)
	s.tc = testenv.TemporalClient(b, testenv.TemporalAddress(b))
	return s
}

// startRound is one round of session starts: when each session was posted,
// answered, its Session created, its pod's stages, and Running.
type startRound struct {
	all                                time.Duration
	posted, answered, created, running map[string]time.Time
	pods                               *podTimes
}

// latencies are the sessions' times from POST to Running, sorted.
func (r *startRound) latencies() []time.Duration {
	var lat []time.Duration
	for id, t0 := range r.posted {
		lat = append(lat, r.running[id].Sub(t0))
	}
	slices.Sort(lat)
	return lat
}

// report adds the round's figures, their names prefixed.
func (r *startRound) report(b *testing.B, prefix string) {
	lat := r.latencies()
	b.ReportMetric(r.all.Seconds(), prefix+"s-all-running")
	b.ReportMetric(float64(lat[len(lat)/2].Milliseconds()), prefix+"ms-p50")
	b.ReportMetric(float64(lat[len(lat)*99/100].Milliseconds()), prefix+"ms-p99")
}

// start posts n sessions from the given number of clients at once and
// waits until every one is Running.
func (s *sessionBench) start(b *testing.B, n, clients int) *startRound {
	r := &startRound{posted: map[string]time.Time{}, answered: map[string]time.Time{},
		created: map[string]time.Time{}, running: map[string]time.Time{}}
	var mu sync.Mutex
	r.pods = watchPods(b, s.kube, s.kube.Namespace)
	w, err := s.kube.Dynamic.Resource(kubeapi.SessionGVR).Namespace(s.kube.Namespace).Watch(b.Context(), metav1.ListOptions{})
	require.NoError(b, err)
	watchDone := make(chan struct{})
	go func() {
		defer close(watchDone)
		for ev := range w.ResultChan() {
			u, ok := ev.Object.(*unstructured.Unstructured)
			if !ok || ev.Type == watch.Deleted {
				continue
			}
			phase, _, _ := unstructured.NestedString(u.Object, "status", "phase")
			mu.Lock()
			if _, seen := r.created[u.GetName()]; !seen {
				r.created[u.GetName()] = time.Now()
			}
			if _, seen := r.running[u.GetName()]; phase == kubeapi.PhaseRunning && !seen {
				r.running[u.GetName()] = time.Now()
			}
			done := len(r.running) == n
			mu.Unlock()
			if done {
				return
			}
		}
	}()

	began := time.Now()
	queue := make(chan struct{}, n)
	for range n {
		queue <- struct{}{}
	}
	close(queue)
	var wg sync.WaitGroup
	for range clients {
		wg.Go(func() {
			for range queue {
				t0 := time.Now()
				status, body := s.api.do("POST", "/api/sessions", `{"template":"desktop"}`)
				if status != http.StatusAccepted {
					b.Errorf("POST /api/sessions: %d %s", status, body)
					return
				}
				var created struct{ ID string }
				_ = json.Unmarshal([]byte(body), &created)
				mu.Lock()
				r.posted[created.ID], r.answered[created.ID] = t0, time.Now()
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	select {
	case <-watchDone:
	case <-time.After(5 * time.Minute):
		mu.Lock()
		defer mu.Unlock()
		b.Fatalf("only %d of %d sessions Running after 5m", len(r.running), n)
	}
	w.Stop()
	r.all = time.Since(began)
	r.pods.stop()
	return r
}

// end deletes the round's sessions through the API.
func (s *sessionBench) end(b *testing.B, r *startRound) {
	for id := range r.posted {
		if status, body := s.api.do("DELETE", "/api/sessions/"+id, ""); status != http.StatusNoContent {
			b.Fatalf("DELETE %s: %d %s", id, status, body)
		}
	}
}
