package kubestack

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/streamspace/enterprise/internal/buildprogress"
	"github.com/streamspace/enterprise/internal/localproc"
)

// fakeGo writes a stand-in for the go command and returns its path. It
// appends its arguments to $FAKEGO_LOG.
func fakeGo(t *testing.T, script string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "go")
	if err := os.WriteFile(path, []byte("#!/bin/sh\necho \"$*\" >> \"$FAKEGO_LOG\"\n"+script), 0o755); err != nil {
		t.Fatal(err)
	}
	return path
}

// goodGo "builds" each main package named after -o DIR/ (by base name), and
// `go install` into $GOBIN, checking the environment the real build needs.
const goodGo = `[ "$GOWORK" = off ] && [ "$CGO_ENABLED" = 0 ] || { echo "bad env" >&2; exit 3; }
if [ "$1" = build ]; then
  [ -f go.mod ] || { echo "not in the module" >&2; exit 4; }
  shift; out=
  while [ $# -gt 0 ]; do
    case "$1" in
      -o) out="$2"; shift 2 ;;
      -ldflags) shift 2 ;;
      -*) shift ;;
      *) printf '#!/bin/sh\n' > "$out$(basename "$1")"; chmod +x "$out$(basename "$1")"; shift ;;
    esac
  done
elif [ "$1" = install ]; then
  case "$5" in
    sigs.k8s.io/kwok/cmd/kwok@v0.8.0) bin=kwok ;;
    sigs.k8s.io/metrics-server/cmd/metrics-server@v0.9.0) bin=metrics-server ;;
    *) echo "bad install: $*" >&2; exit 5 ;;
  esac
  printf '#!/bin/sh\n' > "$GOBIN/$bin"; chmod +x "$GOBIN/$bin"
fi`

func TestEnsureBinariesBuildsWhatIsMissing(t *testing.T) {
	cache := t.TempDir()
	module, err := FindBuildModule(".")
	if err != nil {
		t.Fatal(err)
	}
	goLog := filepath.Join(t.TempDir(), "go.log")
	t.Setenv("FAKEGO_LOG", goLog)
	want := BinariesIn(cache)

	failing := fakeGo(t, `echo "compile error" >&2; [ "$1" = build ] && printf half > "$6kube-apiserver"; exit 1`)
	if _, err := ensureBinaries(t.Context(), cache, module, failing, nil); err == nil || !strings.Contains(err.Error(), "compile error") {
		t.Fatalf("failing build: err = %v", err)
	}
	for _, p := range []string{want.APIServer, want.Etcd, want.Kwok, want.MetricsServer} {
		if _, err := os.Stat(p); !os.IsNotExist(err) {
			t.Fatalf("a failed build left %s (%v)", p, err)
		}
	}

	good := fakeGo(t, goodGo)
	planned := MissingBinaries(cache)
	if want := []string{"kube-apiserver", "etcd", "kube-controller-manager", "kube-scheduler", "kubectl", "kwok", "metrics-server"}; !slices.Equal(planned, want) {
		t.Fatalf("MissingBinaries = %q, want %q", planned, want)
	}
	var log bytes.Buffer
	progress := buildprogress.New(slog.New(slog.NewTextHandler(&log, nil)), cache, planned)
	got, err := ensureBinaries(t.Context(), cache, module, good, progress)
	if err != nil || got != want {
		t.Fatalf("build: %+v, %v", got, err)
	}
	// One step per binary, numbered in the order of the plan.
	for i, name := range planned {
		for _, line := range []string{fmt.Sprintf("[%d/7] building %s (", i+1, name), fmt.Sprintf("[%d/7] built %s in ", i+1, name)} {
			if !strings.Contains(log.String(), line) {
				t.Fatalf("progress lacks %q:\n%s", line, log.String())
			}
		}
	}
	if m := MissingBinaries(cache); len(m) != 0 {
		t.Fatalf("MissingBinaries after the build = %q", m)
	}
	for _, p := range []string{got.APIServer, got.Etcd, got.ControllerManager, got.Scheduler, got.Kubectl, got.Kwok, got.MetricsServer} {
		if !localproc.IsExecutable(p) {
			t.Fatalf("%s not built", p)
		}
	}
	assertNoBuildDirs(t, got.Dir)
	assertNoBuildDirs(t, filepath.Dir(got.Kwok))
	assertNoBuildDirs(t, filepath.Dir(got.MetricsServer))

	// Only what is missing is built again; nothing when nothing is missing.
	_ = os.Remove(goLog)
	if err := os.Remove(got.Scheduler); err != nil {
		t.Fatal(err)
	}
	if _, err := ensureBinaries(t.Context(), cache, module, good, nil); err != nil {
		t.Fatal(err)
	}
	calls, _ := os.ReadFile(goLog)
	if !strings.Contains(string(calls), "k8s.io/kubernetes/cmd/kube-scheduler") || strings.Contains(string(calls), "kube-apiserver") ||
		strings.Contains(string(calls), "install") || strings.Count(string(calls), "\n") != 1 {
		t.Fatalf("rebuild ran:\n%s", calls)
	}
	_ = os.Remove(goLog)
	if _, err := ensureBinaries(t.Context(), cache, "", failing, nil); err != nil {
		t.Fatalf("nothing missing, no module: %v", err)
	}
	if calls, _ := os.ReadFile(goLog); len(calls) > 0 {
		t.Fatalf("go ran with nothing missing:\n%s", calls)
	}

	// Without the module, a missing Kubernetes binary is a clear error.
	_ = os.Remove(got.Etcd)
	if _, err := ensureBinaries(t.Context(), cache, "", good, nil); err == nil || !strings.Contains(err.Error(), "deploy/k8sbins") {
		t.Fatalf("missing module: err = %v", err)
	}
}

func assertNoBuildDirs(t *testing.T, dir string) {
	t.Helper()
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), ".build-") {
			t.Fatalf("leftover build directory %s/%s", dir, e.Name())
		}
	}
}

func TestFindBuildModule(t *testing.T) {
	got, err := FindBuildModule(".")
	if err != nil {
		t.Fatal(err)
	}
	want, _ := filepath.Abs("../../deploy/k8sbins")
	if got != want {
		t.Fatalf("FindBuildModule = %q, want %q", got, want)
	}
	if _, err := FindBuildModule(t.TempDir()); err == nil {
		t.Fatal("found a module outside the repository")
	}
}

// notifyHandler is a slog handler that sends each message on a channel.
type notifyHandler chan string

func (h notifyHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h notifyHandler) WithAttrs([]slog.Attr) slog.Handler       { return h }
func (h notifyHandler) WithGroup(string) slog.Handler            { return h }
func (h notifyHandler) Handle(_ context.Context, r slog.Record) error {
	h <- r.Message
	return nil
}

// While another process holds the build lock, EnsureBinaries says it waits
// and, once the lock is free, uses what that process built.
func TestEnsureBinariesWaitsForAnotherBuild(t *testing.T) {
	cache := t.TempDir()
	b := BinariesIn(cache)
	if err := os.MkdirAll(b.Dir, 0o755); err != nil {
		t.Fatal(err)
	}
	lock, err := localproc.TryLock(filepath.Join(b.Dir, ".build.lock"))
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("FAKEGO_LOG", filepath.Join(t.TempDir(), "go.log"))
	lines := make(notifyHandler, 100)
	progress := buildprogress.New(slog.New(lines), cache, MissingBinaries(cache))
	done := make(chan error, 1)
	go func() {
		_, err := ensureBinaries(t.Context(), cache, "", fakeGo(t, `echo "built while another held the lock" >&2; exit 1`), progress)
		done <- err
	}()
	deadline := time.After(10 * time.Second)
	for waiting := false; !waiting; {
		select {
		case m := <-lines:
			waiting = strings.HasPrefix(m, "waiting for another process building the Kubernetes binaries in "+b.Dir+": 0s so far")
		case <-deadline:
			t.Fatal("no line saying it waits for the other build")
		}
	}
	// The other process builds everything, then lets go.
	for _, path := range []string{b.APIServer, b.Etcd, b.ControllerManager, b.Scheduler, b.Kubectl, b.Kwok, b.MetricsServer} {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte("#!/bin/sh\n"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	lock.Unlock()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("after the wait: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("EnsureBinaries still waiting after the lock was released")
	}
}
