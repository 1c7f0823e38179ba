// Package kubetest gives integration tests a real local Kubernetes
// (internal/kubestack): one shared cluster per test package, started on first
// use with 3 Ready simulated nodes and the StreamSpace CRDs installed, and
// stopped after the package's tests by Main. The binaries are built on first
// use if they are missing (about 10 minutes once on two cores, with progress
// on stderr; `make test` builds them before the tests run), never skipped.
//
//	func TestMain(m *testing.M) { kubetest.Main(m) }
//
//	func TestSomething(t *testing.T) {
//		cluster := kubetest.Cluster(t)
//		ns := kubetest.Namespace(t, cluster)
//		...
//	}
package kubetest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/streamspace/enterprise/internal/buildprogress"
	"github.com/streamspace/enterprise/internal/devstack"
	"github.com/streamspace/enterprise/internal/kubestack"
)

// SharedNodes is the number of simulated nodes of the shared cluster.
const SharedNodes = 3

var (
	mainRan bool // Main wraps the tests, so it stops the shared cluster

	binsOnce sync.Once
	bins     kubestack.Binaries
	binsErr  error

	sharedOnce sync.Once
	shared     *kubestack.Cluster
	sharedErr  error
)

// Main runs the package's tests, then stops the shared cluster (if a test
// started it) and exits.
func Main(m *testing.M) {
	mainRan = true
	code := m.Run()
	if shared != nil {
		if err := shared.Stop(); err != nil {
			fmt.Fprintln(os.Stderr, "kubetest: stop the shared cluster:", err)
		}
	}
	os.Exit(code)
}

// Binaries returns the control plane's binaries, building them first if
// they are missing. The cache is $STREAMSPACE_CACHE_DIR, else
// devstack.DefaultCacheDir(); deploy/k8sbins is found from the working
// directory (the test's package directory) upwards.
func Binaries(t testing.TB) kubestack.Binaries {
	t.Helper()
	binsOnce.Do(func() {
		cacheDir := os.Getenv("STREAMSPACE_CACHE_DIR")
		if cacheDir == "" {
			if cacheDir, binsErr = devstack.DefaultCacheDir(); binsErr != nil {
				return
			}
		}
		module, _ := kubestack.FindBuildModule(".") // only needed for a build; EnsureBinaries says so
		planned := kubestack.MissingBinaries(cacheDir)
		progress := buildprogress.New(Logger(), cacheDir, planned)
		if bins, binsErr = kubestack.EnsureBinaries(context.Background(), cacheDir, module, progress); binsErr == nil && len(planned) > 0 {
			progress.Finish() // the summary of a build; nothing when they were cached
		}
	})
	if binsErr != nil {
		t.Fatalf("kubetest: Kubernetes binaries: %v", binsErr)
	}
	return bins
}

// Cluster returns the package's shared cluster, starting it on first use:
// 3 Ready simulated nodes (kwok-node-0..2), the CRDs installed. Tests share
// it, so each should work in its own namespace (Namespace).
func Cluster(t testing.TB) *kubestack.Cluster {
	t.Helper()
	if !mainRan {
		t.Fatal("kubetest.Cluster needs `func TestMain(m *testing.M) { kubetest.Main(m) }` in the package, which stops the cluster")
	}
	b := Binaries(t)
	sharedOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		shared, sharedErr = kubestack.Start(ctx, kubestack.Options{Binaries: b, Nodes: SharedNodes, InstallCRDs: true, Logger: Logger()})
	})
	if sharedErr != nil {
		t.Fatalf("kubetest: start the shared cluster: %v", sharedErr)
	}
	return shared
}

// Start starts a private cluster with opts (Binaries filled in) for this
// test, stopped when it ends.
func Start(t testing.TB, opts kubestack.Options) *kubestack.Cluster {
	t.Helper()
	if opts.Binaries.Dir == "" {
		opts.Binaries = Binaries(t)
	}
	if opts.Logger == nil {
		opts.Logger = Logger()
	}
	c, err := kubestack.Start(t.Context(), opts)
	if err != nil {
		t.Fatalf("kubetest: start a cluster: %v", err)
	}
	t.Cleanup(func() {
		if err := c.Stop(); err != nil {
			t.Errorf("kubetest: stop the cluster: %v", err)
		}
	})
	return c
}

// Namespace creates a namespace for this test in c, deleted when it ends.
func Namespace(t testing.TB, c *kubestack.Cluster) string {
	t.Helper()
	client, err := c.Client()
	if err != nil {
		t.Fatal(err)
	}
	var b [4]byte
	_, _ = rand.Read(b[:])
	name := "test-" + hex.EncodeToString(b[:])
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}
	if _, err := client.CoreV1().Namespaces().Create(t.Context(), ns, metav1.CreateOptions{}); err != nil {
		t.Fatalf("kubetest: create namespace: %v", err)
	}
	t.Cleanup(func() {
		_ = client.CoreV1().Namespaces().Delete(context.Background(), name, metav1.DeleteOptions{})
	})
	return name
}

// Logger writes kubestack's notices (a build, start and stop times) to stderr.
func Logger() *slog.Logger {
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo})).With("pkg", "kubetest")
}
