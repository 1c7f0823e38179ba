package kubestack

import (
	"fmt"
	"os"
	"os/exec"
	"strings"
	"time"

	"github.com/streamspace/enterprise/internal/localproc"
)

// proc is one control-plane process: a localproc.Child (its own process
// group, so a terminal Ctrl-C reaches only the parent, which stops it in
// order; Pdeathsig, so it does not outlive a killed parent) with stdout and
// stderr appended to a log file.
type proc struct {
	name    string
	logPath string
	*localproc.Child
}

// startProc starts bin with args, logging to logPath.
func startProc(name, bin string, args []string, logPath string) (*proc, error) {
	logFile, err := os.OpenFile(logPath, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open %s log: %w", name, err)
	}
	defer logFile.Close() // the child keeps its own descriptor
	fmt.Fprintf(logFile, "\n=== %s %s %s\n", time.Now().Format(time.RFC3339), bin, strings.Join(args, " "))

	cmd := exec.Command(bin, args...)
	cmd.Dir = "/"
	cmd.Stdout, cmd.Stderr = logFile, logFile
	child, err := localproc.Start(cmd)
	if err != nil {
		return nil, fmt.Errorf("start %s: %w", bin, err)
	}
	return &proc{name: name, logPath: logPath, Child: child}, nil
}

// exitedErr reports, without waiting, whether the process has ended.
func (p *proc) exitedErr() (bool, error) {
	select {
	case <-p.Exited():
		return true, fmt.Errorf("%s exited: %v", p.name, p.Err())
	default:
		return false, nil
	}
}

// logTail is the end of the process's log, for error messages.
func (p *proc) logTail() string { return localproc.ReadTail(p.logPath, 8<<10) }

// stop sends SIGTERM to the process group, SIGKILL after grace, and waits.
func (p *proc) stop(grace time.Duration) error {
	if _, err := p.Stop(grace); err != nil {
		return fmt.Errorf("%s: %w", p.name, err)
	}
	return nil
}
