// Package proctest crashes a test's helper process on purpose, for tests
// of what a killed parent leaves behind.
package proctest

import (
	"bufio"
	"os"
	"os/exec"
	"strings"
	"testing"
)

// KillAfterReady re-runs the test binary with only its TestHelperProcess and
// env added, waits for the helper to print a line "ready <rest>", SIGKILLs
// it (so nothing it started is stopped cleanly) and returns <rest>.
func KillAfterReady(t testing.TB, env ...string) string {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperProcess$", "-test.v=false")
	cmd.Env = append(os.Environ(), env...)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(out).ReadString('\n')
	_ = cmd.Process.Kill()
	_ = cmd.Wait()
	if err != nil || !strings.HasPrefix(line, "ready ") {
		t.Fatalf("helper: %q, %v", line, err)
	}
	return strings.TrimSpace(strings.TrimPrefix(line, "ready "))
}
