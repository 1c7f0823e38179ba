package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
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

// BenchmarkSessionStart200 starts 200 sessions through the API on 20
// simulated nodes, with the worker and the server as separate processes
// (this test binary re-executed), and reports the time until all are
// Running, each session's time from POST to Running (p50, p99), and the peak
// memory (VmHWM) of the kube-apiserver, the worker and the server.
//
//	make build && bin/streamspace testenv -- go test -run '^$' -bench SessionStart200 -benchtime 1x ./cmd/streamspace/
func BenchmarkSessionStart200(b *testing.B) {
	const sessions, nodes, clients = 200, 20, 16
	cluster := kubetest.Start(b, kubestack.Options{Nodes: nodes, InstallCRDs: true, WithoutMetrics: true,
		Node: kubestack.NodeSpec{CPU: "64", Memory: "256Gi", Pods: "110"}})
	kube, err := activities.NewKube(cluster.RESTConfig())
	require.NoError(b, err)
	ns := kubetest.Namespace(b, cluster)
	kube.Namespace = ns

	pool := testenv.EmptyDB(b)
	cc := pool.Config().ConnConfig
	addr := freeAddr(b)
	env := append(os.Environ(),
		fmt.Sprintf("DATABASE_URL=postgres://%s:%s@%s:%d/%s?sslmode=disable", cc.User, cc.Password, cc.Host, cc.Port, cc.Database),
		"TEMPORAL_ADDRESS="+testenv.TemporalAddress(b),
		"TEMPORAL_NAMESPACE="+testenv.TemporalNamespace(),
		"TEMPORAL_TASK_QUEUE=bench-"+uuid.NewString(),
		"KUBECONFIG="+cluster.Kubeconfig(),
		"SESSION_NAMESPACE="+ns,
		"SESSION_QUOTA_MAX_SESSIONS=1000", "SESSION_QUOTA_CPU=0", "SESSION_QUOTA_MEMORY=0",
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
	children := map[string]*exec.Cmd{}
	for _, role := range []string{"worker", "server"} {
		cmd := exec.Command(os.Args[0])
		cmd.Env = append(slices.Clone(env), childEnv+"="+role)
		cmd.Stdout, cmd.Stderr = &out, &out
		cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
		require.NoError(b, cmd.Start())
		children[role] = cmd
	}
	b.Cleanup(func() {
		for _, c := range children {
			_ = c.Process.Signal(syscall.SIGTERM)
			_ = c.Wait()
		}
	})

	api := "http://" + addr
	c := &apiClient{api: api}
	require.NoError(b, wait.PollUntilContextTimeout(b.Context(), 50*time.Millisecond, time.Minute, true,
		func(context.Context) (bool, error) { return c.ready(), nil }), "server not ready:\n%s", out.String())
	c.token = c.login(b, "admin", "bench admin password")
	status, body := c.do("POST", "/api/templates", `{"id":"desktop","display_name":"Desktop",
		"base_image":"lscr.io/linuxserver/webtop:latest","default_resources":{"cpu":"500m","memory":"1Gi"}}`)
	require.Equal(b, http.StatusCreated, status, body)

	sessionsAPI := kube.Dynamic.Resource(kubeapi.SessionGVR).Namespace(ns)
	tc := testenv.TemporalClient(b, testenv.TemporalAddress(b))
	for b.Loop() {
		posted := map[string]time.Time{}
		running := map[string]time.Time{}
		created := map[string]time.Time{}
		answered := map[string]time.Time{}
		var mu sync.Mutex
		pods := watchPods(b, kube, ns)
		w, err := sessionsAPI.Watch(b.Context(), metav1.ListOptions{})
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
				if _, seen := created[u.GetName()]; !seen {
					created[u.GetName()] = time.Now()
				}
				if _, seen := running[u.GetName()]; phase == kubeapi.PhaseRunning && !seen {
					running[u.GetName()] = time.Now()
				}
				n := len(running)
				mu.Unlock()
				if n == sessions {
					return
				}
			}
		}()

		began := time.Now()
		ids := make(chan string, sessions)
		queue := make(chan struct{}, sessions)
		for range sessions {
			queue <- struct{}{}
		}
		close(queue)
		var wg sync.WaitGroup
		for range clients {
			wg.Go(func() {
				for range queue {
					t0 := time.Now()
					status, body := c.do("POST", "/api/sessions", `{"template":"desktop"}`)
					if status != http.StatusAccepted {
						b.Errorf("POST /api/sessions: %d %s", status, body)
						return
					}
					var s struct{ ID string }
					_ = json.Unmarshal([]byte(body), &s)
					mu.Lock()
					posted[s.ID], answered[s.ID] = t0, time.Now()
					mu.Unlock()
					ids <- s.ID
				}
			})
		}
		wg.Wait()
		close(ids)
		select {
		case <-watchDone:
		case <-time.After(5 * time.Minute):
			b.Fatalf("only %d of %d sessions Running after 5m", len(running), sessions)
		}
		w.Stop()
		all := time.Since(began)

		var lat []time.Duration
		mu.Lock()
		for id, t0 := range posted {
			lat = append(lat, running[id].Sub(t0))
		}
		mu.Unlock()
		slices.Sort(lat)
		pods.stop()
		mu.Lock()
		reportStages(b, posted, answered, created, pods, running)
		var all200 []string
		for id := range posted {
			all200 = append(all200, id)
		}
		mu.Unlock()
		reportFirstStep(b, tc, all200)
		b.ReportMetric(all.Seconds(), "s-all-running")
		b.ReportMetric(float64(lat[len(lat)/2].Milliseconds()), "ms-p50")
		b.ReportMetric(float64(lat[len(lat)*99/100].Milliseconds()), "ms-p99")

		b.StopTimer()
		for id := range ids {
			if status, body := c.do("DELETE", "/api/sessions/"+id, ""); status != http.StatusNoContent {
				b.Fatalf("DELETE %s: %d %s", id, status, body)
			}
		}
		b.StartTimer()
	}
	b.ReportMetric(peakMiB(b, cluster.PIDs()["kube-apiserver"]), "MiB-apiserver")
	b.ReportMetric(peakMiB(b, children["worker"].Process.Pid), "MiB-worker")
	b.ReportMetric(peakMiB(b, children["server"].Process.Pid), "MiB-server")
}

// peakMiB is a process's peak resident memory (VmHWM).
func peakMiB(b *testing.B, pid int) float64 {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	require.NoError(b, err)
	for line := range strings.Lines(string(raw)) {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, err := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(rest), " kB"))
			require.NoError(b, err)
			return float64(kb) / 1024
		}
	}
	b.Fatalf("no VmHWM for pid %d", pid)
	return 0
}
