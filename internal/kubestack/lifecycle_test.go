package kubestack_test

import (
	"context"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/streamspace/enterprise/internal/kubestack"
	"github.com/streamspace/enterprise/internal/kubestack/kubetest"
	"github.com/streamspace/enterprise/internal/localproc"
	"github.com/streamspace/enterprise/internal/localproc/proctest"
)

// Stop ends every process (reverse order, by PID), frees the ports and
// removes the temporary run directory; a second Stop is a no-op.
func TestStopLeavesNoProcess(t *testing.T) {
	began := time.Now()
	c := kubetest.Start(t, kubestack.Options{Nodes: 1})
	t.Logf("start with 1 node: %s", time.Since(began).Round(time.Millisecond))
	pids := c.PIDs()
	for _, name := range []string{kubestack.Etcd, kubestack.APIServer, kubestack.ControllerManager, kubestack.Scheduler, kubestack.Kwok, kubestack.MetricsServer} {
		if pids[name] == 0 {
			t.Fatalf("no %s in %v", name, pids)
		}
	}
	logRSS(t, pids)
	server := strings.TrimPrefix(c.Server(), "https://")

	began = time.Now()
	if err := c.Stop(); err != nil {
		t.Fatal(err)
	}
	t.Logf("stop: %s", time.Since(began).Round(time.Millisecond))
	for name, pid := range pids {
		if localproc.Alive(pid) {
			t.Errorf("%s (pid %d) still running after Stop", name, pid)
		}
	}
	if conn, err := net.DialTimeout("tcp", server, time.Second); err == nil {
		conn.Close()
		t.Errorf("apiserver port %s still accepts connections", server)
	}
	if _, err := os.Stat(c.RunDir()); !os.IsNotExist(err) {
		t.Errorf("temporary run directory %s left behind (%v)", c.RunDir(), err)
	}
	if err := c.Stop(); err != nil {
		t.Fatalf("second Stop: %v", err)
	}
	select {
	case <-c.Exited():
		t.Fatal("Exited closed by Stop")
	default:
	}
}

// A RunDir is kept: a second start finds the objects and the same token;
// while a cluster runs on it, another start on it is refused.
func TestRestartReusesRunDir(t *testing.T) {
	dir := t.TempDir()
	bins := kubetest.Binaries(t)
	start := func() *kubestack.Cluster {
		c, err := kubestack.Start(t.Context(), kubestack.Options{Binaries: bins, RunDir: dir, WithoutControllers: true, Nodes: 1, Logger: kubetest.Logger()})
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	c := start()
	if _, err := kubestack.Start(t.Context(), kubestack.Options{Binaries: bins, RunDir: dir, WithoutControllers: true}); err == nil || !strings.Contains(err.Error(), "in use") {
		t.Fatalf("second start on a live RunDir: err = %v", err)
	}
	client, err := c.Client()
	if err != nil {
		t.Fatal(err)
	}
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "kept", Namespace: "default"}, Data: map[string]string{"k": "v"}}
	if _, err := client.CoreV1().ConfigMaps("default").Create(t.Context(), cm, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	token := c.RESTConfig().BearerToken
	if err := c.Stop(); err != nil {
		t.Fatal(err)
	}

	c = start()
	defer c.Stop()
	if c.RESTConfig().BearerToken != token {
		t.Error("the admin token changed across a restart")
	}
	client, err = c.Client()
	if err != nil {
		t.Fatal(err)
	}
	if got, err := client.CoreV1().ConfigMaps("default").Get(t.Context(), "kept", metav1.GetOptions{}); err != nil || got.Data["k"] != "v" {
		t.Fatalf("object after restart: %v, %v", got, err)
	}
	if err := kubestack.WaitNodesReady(t.Context(), client, "kwok-node-0"); err != nil {
		t.Fatal(err)
	}
	// The kept node advertises this run's kwok (its "kubelet", which
	// metrics-server scrapes), not the last run's.
	node, err := client.CoreV1().Nodes().Get(t.Context(), "kwok-node-0", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if port := int(node.Status.DaemonEndpoints.KubeletEndpoint.Port); !localproc.PortAccepts(port, time.Second) {
		t.Fatalf("kept node's kubelet port %d: nothing listens there", port)
	}
}

// TestHelperProcess is not a test: TestClusterDiesWithParent runs the test
// binary with KUBESTACK_HELPER set, and this starts a cluster, prints
// "ready" and its pids, and waits to be SIGKILLed.
func TestHelperProcess(t *testing.T) {
	if os.Getenv("KUBESTACK_HELPER") == "" {
		t.Skip("helper process only")
	}
	c, err := kubestack.Start(context.Background(), kubestack.Options{Binaries: kubetest.Binaries(t), RunDir: os.Getenv("KUBESTACK_HELPER")})
	if err != nil {
		fmt.Println("error", err)
		os.Exit(1)
	}
	var pids []string
	for _, pid := range c.PIDs() {
		pids = append(pids, strconv.Itoa(pid))
	}
	fmt.Println("ready", strings.Join(pids, " "))
	select {}
}

// A killed parent takes its control plane with it (Pdeathsig), and the next
// start on its RunDir works at once (lock released, leftovers killed).
func TestClusterDiesWithParent(t *testing.T) {
	kubetest.Binaries(t) // build before the helper runs, not inside it
	dir := t.TempDir()
	line := proctest.KillAfterReady(t, "KUBESTACK_HELPER="+dir)
	fields := strings.Fields(line)
	if len(fields) != 6 {
		t.Fatalf("helper reported %d processes: %q", len(fields), line)
	}
	kubetest.Start(t, kubestack.Options{RunDir: dir, WithoutControllers: true, WithoutMetrics: true})
	deadline := time.Now().Add(30 * time.Second)
	for _, f := range fields {
		pid, _ := strconv.Atoi(f)
		for localproc.Alive(pid) {
			if time.Now().After(deadline) {
				_ = syscall.Kill(pid, syscall.SIGKILL)
				t.Fatalf("pid %d outlived its killed parent by 30s", pid)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
}

// logRSS logs each component's resident memory (VmRSS).
func logRSS(t *testing.T, pids map[string]int) {
	var parts []string
	for name, pid := range pids {
		status, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
		if err != nil {
			continue
		}
		for _, l := range strings.Split(string(status), "\n") {
			if strings.HasPrefix(l, "VmRSS:") {
				parts = append(parts, name+"="+strings.Join(strings.Fields(strings.TrimPrefix(l, "VmRSS:")), " "))
			}
		}
	}
	t.Logf("RSS: %s", strings.Join(parts, ", "))
}
