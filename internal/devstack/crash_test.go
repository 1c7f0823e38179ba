package devstack

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/streamspace/enterprise/internal/localproc"
	"github.com/streamspace/enterprise/internal/localproc/proctest"
)

// TestHelperProcess is not a test: crashingParent runs the test binary with
// DEVSTACK_HELPER set, and this starts a dependency, prints "ready <pid>"
// and waits to be SIGKILLed, playing a `streamspace dev` that gets killed.
func TestHelperProcess(t *testing.T) {
	mode := os.Getenv("DEVSTACK_HELPER")
	if mode == "" {
		t.Skip("helper process only")
	}
	ctx := context.Background()
	switch mode {
	case "temporal":
		tp, err := StartTemporal(ctx, TemporalOptions{CLIPath: os.Getenv("DEVSTACK_HELPER_ARG"), UIPort: -1})
		if err != nil {
			fmt.Println("error", err)
			os.Exit(1)
		}
		fmt.Println("ready", tp.proc.Pid())
	case "postgres":
		p, err := StartPostgres(ctx, PostgresOptions{DataDir: os.Getenv("DEVSTACK_HELPER_ARG"), NoSync: true})
		if err != nil {
			fmt.Println("error", err)
			os.Exit(1)
		}
		fmt.Println("ready", p.Port())
	}
	select {}
}

// crashingParent starts the helper, returns the number it printed after
// "ready", and SIGKILLs the helper.
func crashingParent(t *testing.T, mode, arg string) int {
	t.Helper()
	n, err := strconv.Atoi(proctest.KillAfterReady(t, "DEVSTACK_HELPER="+mode, "DEVSTACK_HELPER_ARG="+arg))
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for delay := 10 * time.Millisecond; !cond(); delay = localproc.Backoff(delay, 500*time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(delay)
	}
}

// A killed parent takes its Temporal dev server with it (Pdeathsig).
func TestTemporalDiesWithParent(t *testing.T) {
	t.Parallel()
	pid := crashingParent(t, "temporal", temporalCLI(t))
	waitFor(t, fmt.Sprintf("orphaned Temporal server %d to exit", pid), 30*time.Second, func() bool {
		return !localproc.Alive(pid)
	})
}

// After a killed parent, the PostgreSQL server it left running is taken over
// by the next start on the same data directory.
func TestPostgresAfterKilledParent(t *testing.T) {
	t.Parallel()
	dataDir := filepath.Join(t.TempDir(), "pg")
	oldPort := crashingParent(t, "postgres", dataDir)
	if !localproc.PortAccepts(oldPort, time.Second) {
		t.Fatalf("the killed parent's server is not running on port %d", oldPort)
	}
	p := startTestPostgres(t, PostgresOptions{DataDir: dataDir, NoSync: true})
	if oldPort != p.Port() && localproc.PortAccepts(oldPort, time.Second) {
		t.Fatalf("the old server still listens on %d", oldPort)
	}
	query(t, p.URL(), "SELECT 1::text")
	stopPostgres(t, p)
	if _, err := os.Stat(filepath.Join(dataDir, "postmaster.pid")); !os.IsNotExist(err) {
		t.Fatalf("postmaster.pid after Stop: %v", err)
	}
}
