package devstack

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"go.temporal.io/api/enums/v1"
	"go.temporal.io/api/operatorservice/v1"
	"go.temporal.io/sdk/client"

	"github.com/streamspace/enterprise/internal/localproc"
)

// temporalCLI returns the prebuilt CLI; tests never build it. Without it the
// test is skipped, unless STREAMSPACE_REQUIRE_TEMPORAL is set.
func temporalCLI(t *testing.T) string {
	t.Helper()
	path := TemporalCLIPath("")
	if !localproc.IsExecutable(path) {
		if os.Getenv("STREAMSPACE_REQUIRE_TEMPORAL") == "" {
			t.Skipf("no Temporal CLI at %q (set STREAMSPACE_REQUIRE_TEMPORAL to make this a failure)", path)
		}
		t.Fatalf("no Temporal CLI at %q and STREAMSPACE_REQUIRE_TEMPORAL is set", path)
	}
	return path
}

func startTestTemporal(t *testing.T, o TemporalOptions) *Temporal {
	t.Helper()
	o.Logger = testLogger(t)
	start := time.Now()
	tp, err := StartTemporal(t.Context(), o)
	if err != nil {
		t.Fatalf("StartTemporal: %v", err)
	}
	t.Logf("StartTemporal took %s (%s)", time.Since(start).Round(time.Millisecond), tp.Address())
	t.Cleanup(func() {
		if err := tp.Stop(); err != nil {
			t.Errorf("cleanup Stop: %v", err)
		}
	})
	return tp
}

func dialTemporal(t *testing.T, tp *Temporal) client.Client {
	t.Helper()
	c, err := client.DialContext(t.Context(), client.Options{HostPort: tp.Address(), Namespace: tp.Namespace()})
	if err != nil {
		t.Fatalf("dial %s: %v", tp.Address(), err)
	}
	t.Cleanup(c.Close)
	return c
}

func searchAttributes(t *testing.T, c client.Client, ns string) map[string]enums.IndexedValueType {
	t.Helper()
	resp, err := c.OperatorService().ListSearchAttributes(t.Context(), &operatorservice.ListSearchAttributesRequest{Namespace: ns})
	if err != nil {
		t.Fatalf("ListSearchAttributes: %v", err)
	}
	return resp.GetCustomAttributes()
}

func TestTemporalInMemoryHeadless(t *testing.T) {
	t.Parallel()
	logDir := filepath.Join(t.TempDir(), "logs")
	tp := startTestTemporal(t, TemporalOptions{
		CLIPath:          temporalCLI(t),
		UIPort:           -1,
		Namespace:        "streamspace-test",
		SearchAttributes: map[string]string{"StreamSpaceTenant": "Keyword"},
		LogFile:          filepath.Join(logDir, "temporal.log"),
	})
	if st, err := os.Stat(filepath.Join(logDir, "temporal.log")); err != nil {
		t.Fatalf("log file: %v", err)
	} else if st.Mode().Perm() != 0o600 {
		t.Fatalf("log file mode %v", st.Mode())
	}
	if tp.UIURL() != "" {
		t.Fatalf("UIURL() = %q for a headless server", tp.UIURL())
	}
	c := dialTemporal(t, tp)
	if _, err := c.CheckHealth(t.Context(), &client.CheckHealthRequest{}); err != nil {
		t.Fatalf("CheckHealth: %v", err)
	}
	if got := searchAttributes(t, c, "streamspace-test")["StreamSpaceTenant"]; got != enums.INDEXED_VALUE_TYPE_KEYWORD {
		t.Fatalf("StreamSpaceTenant registered as %v, want Keyword", got)
	}

	if err := tp.Stop(); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	if err := tp.Stop(); err != nil { // idempotent
		t.Fatalf("second Stop: %v", err)
	}
	select {
	case <-tp.Exited():
	default:
		t.Fatal("Stop returned before the process exited")
	}
	if err := syscall.Kill(-tp.proc.Pid(), 0); err == nil {
		t.Fatal("the server's process group survived Stop")
	}
}

// A SQLite file survives a killed server: the next start on it works, keeps
// its workflows and registers search attributes added since.
func TestTemporalDBFileAfterKill(t *testing.T) {
	t.Parallel()
	cli := temporalCLI(t)
	dir := t.TempDir()
	opts := TemporalOptions{
		CLIPath:          cli,
		DBFile:           filepath.Join(dir, ".data", "temporal.db"),
		Namespace:        "streamspace",
		SearchAttributes: map[string]string{"StreamSpaceTenant": "Keyword"},
	}
	first := startTestTemporal(t, opts)
	if first.UIURL() == "" {
		t.Fatal("no UI URL")
	}
	hc := &http.Client{Timeout: 10 * time.Second}
	resp, err := hc.Get(first.UIURL())
	if err != nil {
		t.Fatalf("GET %s: %v", first.UIURL(), err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s", first.UIURL(), resp.Status)
	}

	c := dialTemporal(t, first)
	run, err := c.ExecuteWorkflow(t.Context(), client.StartWorkflowOptions{ID: "devstack-test", TaskQueue: "devstack-test"}, "NoWorkerNeeded")
	if err != nil {
		t.Fatalf("ExecuteWorkflow: %v", err)
	}

	// Crash: SIGKILL the server, and drop the lock as the kernel would for a
	// dead parent.
	if err := syscall.Kill(-first.proc.Pid(), syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-first.Exited()
	first.lock.Unlock()

	opts.SearchAttributes = map[string]string{"StreamSpaceTenant": "Keyword", "StreamSpaceKind": "Keyword"}
	opts.UIPort = -1
	second := startTestTemporal(t, opts)
	c2 := dialTemporal(t, second)
	desc, err := c2.DescribeWorkflowExecution(t.Context(), run.GetID(), run.GetRunID())
	if err != nil {
		t.Fatalf("workflow lost across restart: %v", err)
	}
	if st := desc.GetWorkflowExecutionInfo().GetStatus(); st != enums.WORKFLOW_EXECUTION_STATUS_RUNNING {
		t.Fatalf("workflow status %v", st)
	}
	sas := searchAttributes(t, c2, "streamspace")
	for _, name := range []string{"StreamSpaceTenant", "StreamSpaceKind"} {
		if sas[name] != enums.INDEXED_VALUE_TYPE_KEYWORD {
			t.Fatalf("search attribute %s = %v after restart", name, sas[name])
		}
	}
	if _, err := StartTemporal(t.Context(), TemporalOptions{CLIPath: cli, DBFile: opts.DBFile, UIPort: -1}); err == nil {
		t.Fatal("a second server on the same DB file was allowed")
	}
	if err := second.Stop(); err != nil {
		t.Fatalf("Stop: %v", err)
	}
}

func TestTemporalRejectsUnknownSearchAttributeType(t *testing.T) {
	_, err := StartTemporal(context.Background(), TemporalOptions{
		CLIPath:          temporalCLI(t),
		SearchAttributes: map[string]string{"X": "Colour"},
	})
	if err == nil {
		t.Fatal("accepted an unknown search attribute type")
	}
}
