package devstack

import (
	"bytes"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/streamspace/enterprise/internal/buildprogress"
	"github.com/streamspace/enterprise/internal/localproc"
)

func TestDefaultCacheDir(t *testing.T) {
	t.Setenv("XDG_CACHE_HOME", "/x/cache")
	if d, err := DefaultCacheDir(); err != nil || d != "/x/cache/streamspace" {
		t.Fatalf("with XDG_CACHE_HOME: %q, %v", d, err)
	}
	t.Setenv("XDG_CACHE_HOME", "")
	t.Setenv("HOME", "/home/someone")
	if d, err := DefaultCacheDir(); err != nil || d != "/home/someone/.cache/streamspace" {
		t.Fatalf("with HOME: %q, %v", d, err)
	}
	if got, want := TemporalCLIPath("/c"), "/c/bin/temporal-v1.5.1/temporal"; got != want {
		t.Fatalf("TemporalCLIPath = %q, want %q", got, want)
	}
}

// fakeGo writes a stand-in for the go command and returns its path.
func fakeGo(t *testing.T, script string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "go")
	if err := os.WriteFile(path, []byte("#!/bin/sh\n"+script), 0o755); err != nil {
		t.Fatal(err)
	}
	return path
}

// The build lands in a temporary directory and is renamed into place; a
// failed build leaves nothing; an existing binary is not rebuilt.
func TestEnsureTemporalCLIBuild(t *testing.T) {
	t.Parallel()
	cache := t.TempDir()
	want := TemporalCLIPath(cache)

	failing := fakeGo(t, `echo "compile error" >&2; printf 'half' > "$GOBIN/temporal"; exit 1`)
	if _, err := ensureTemporalCLI(t.Context(), cache, failing, nil); err == nil || !strings.Contains(err.Error(), "compile error") {
		t.Fatalf("failing build: err = %v", err)
	}
	if _, err := os.Stat(want); !os.IsNotExist(err) {
		t.Fatalf("failed build left %s: %v", want, err)
	}

	good := fakeGo(t, `[ "$1 $2" = "install github.com/temporalio/cli/cmd/temporal@v1.5.1" ] || { echo "bad args: $*" >&2; exit 2; }
[ "$GOWORK" = off ] || exit 3
printf '#!/bin/sh\necho fake temporal\n' > "$GOBIN/temporal" && chmod +x "$GOBIN/temporal"`)
	if got := MissingTemporalCLI(cache); len(got) != 1 || got[0] != TemporalCLIComponent {
		t.Fatalf("MissingTemporalCLI before the build = %q", got)
	}
	var log bytes.Buffer
	progress := buildprogress.New(slog.New(slog.NewTextHandler(&log, nil)), cache, MissingTemporalCLI(cache))
	got, err := ensureTemporalCLI(t.Context(), cache, good, progress)
	if err != nil || got != want || !localproc.IsExecutable(want) {
		t.Fatalf("build: %q, %v (want %q, executable)", got, err, want)
	}
	for _, line := range []string{"building 1 missing component once", "[1/1] building temporal-cli", "[1/1] built temporal-cli in "} {
		if !strings.Contains(log.String(), line) {
			t.Fatalf("progress lacks %q:\n%s", line, log.String())
		}
	}
	if got := MissingTemporalCLI(cache); len(got) != 0 {
		t.Fatalf("MissingTemporalCLI after the build = %q", got)
	}
	entries, _ := os.ReadDir(filepath.Dir(want))
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), ".build-") {
			t.Fatalf("leftover build directory %s", e.Name())
		}
	}

	if got, err := ensureTemporalCLI(t.Context(), cache, failing, nil); err != nil || got != want {
		t.Fatalf("existing binary was rebuilt: %q, %v", got, err)
	}
}

func TestEnsureTemporalCLIExisting(t *testing.T) {
	t.Parallel()
	want := temporalCLI(t)
	got, err := EnsureTemporalCLI(t.Context(), "", nil)
	if err != nil || got != want {
		t.Fatalf("EnsureTemporalCLI = %q, %v; want %q", got, err, want)
	}
}
