package kubestack

import (
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/streamspace/enterprise/internal/localproc"
)

// Each running component has <RunDir>/pids/<name>.pid ("PID\nBINARY\n"),
// removed when Stop ends it. A file left behind means the owner was killed;
// Pdeathsig normally ends the component too, but one still shutting down (or
// started without Pdeathsig, outside Linux) would hold etcd's data or a port.

func pidFilePath(runDir, name string) string {
	return filepath.Join(runDir, "pids", name+".pid")
}

func writePidFile(runDir string, p *proc) {
	path := pidFilePath(runDir, p.name)
	_ = os.MkdirAll(filepath.Dir(path), 0o700)
	_ = os.WriteFile(path, []byte(strconv.Itoa(p.Pid())+"\n"+p.Cmd.Path+"\n"), 0o600)
}

func removePidFile(runDir string, p *proc) { _ = os.Remove(pidFilePath(runDir, p.name)) }

// killLeftovers SIGKILLs components a killed run left behind in runDir: a
// live process whose argv[0] is still the recorded binary (not a reused pid).
// Called with the RunDir lock held, so their owner is gone.
func killLeftovers(runDir string, logger *slog.Logger) {
	files, _ := filepath.Glob(filepath.Join(runDir, "pids", "*.pid"))
	for _, f := range files {
		b, err := os.ReadFile(f)
		_ = os.Remove(f)
		if err != nil {
			continue
		}
		pidStr, bin, _ := strings.Cut(strings.TrimSpace(string(b)), "\n")
		pid, err := strconv.Atoi(pidStr)
		if err != nil || !localproc.Alive(pid) {
			continue
		}
		if argv, ok := localproc.Args(pid); !ok || argv[0] != bin {
			continue
		}
		logger.Warn("killing a local Kubernetes component left by a killed run", "pid", pid, "binary", bin)
		_ = syscall.Kill(-pid, syscall.SIGKILL)
		_ = syscall.Kill(pid, syscall.SIGKILL)
		for deadline := time.Now().Add(10 * time.Second); localproc.Alive(pid) && time.Now().Before(deadline); {
			time.Sleep(50 * time.Millisecond)
		}
	}
}
